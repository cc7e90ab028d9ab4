package spend

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
)

// ErrMalformed marks a price entry LoadLiteLLM cannot use; the error names its key.
var ErrMalformed = errors.New("malformed price entry")

// LoadLiteLLM reads a price table in the format of LiteLLM's
// model_prices_and_context_window.json (BerriAI/litellm): a JSON object from model key
// ("gpt-5.5", "claude-sonnet-4-5", "anthropic.claude-...", "groq/openai/gpt-oss-120b")
// to an entry with litellm_provider, mode, input_cost_per_token, output_cost_per_token,
// cache_read_input_token_cost, cache_creation_input_token_cost,
// output_cost_per_reasoning_token, input_cost_per_image, max_input_tokens,
// max_output_tokens and the long-context *_above_<N>k_tokens variants of the four token
// prices, all in USD per token.
//
// The "sample_spec" entry, unknown fields and null values are ignored, and so are
// entries with no per-token price (image generation, per-second audio, ...): they are
// valid LiteLLM entries tollgate cannot apply. A key with a "<provider>/" prefix is
// indexed under that provider and the rest of the key; a key without one under its
// litellm_provider and, as in LiteLLM, under the bare name for any provider. Costs are
// converted exactly from the decimal text into Rate (rounded half up to a picodollar).
// Every malformed entry (a cost that is not a non-negative number, an entry that is not
// an object) is reported, each wrapping ErrMalformed with its key, and no table is
// returned.
func LoadLiteLLM(r io.Reader) (*Prices, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read LiteLLM prices: %w", err)
	}
	p, err := parseLiteLLM(data)
	if err != nil {
		return nil, fmt.Errorf("LiteLLM prices: %w", err)
	}
	return p, nil
}

// The LiteLLM field names tollgate reads.
const (
	fieldProvider   = "litellm_provider"
	fieldMode       = "mode"
	fieldInput      = "input_cost_per_token"
	fieldOutput     = "output_cost_per_token"
	fieldCacheRead  = "cache_read_input_token_cost"
	fieldCacheWrite = "cache_creation_input_token_cost"
	fieldReasoning  = "output_cost_per_reasoning_token"
	fieldImage      = "input_cost_per_image"
	fieldMaxInput   = "max_input_tokens"
	fieldMaxOutput  = "max_output_tokens"
	fieldSource     = "source"
	fieldAsOf       = "as_of" // tollgate's own: the date the price held

	// tollgate's own time-of-day pricing (Price.OffPeak): the other rates are the peak
	// ones; off_peak_price_ratio (0.5) is what the off-peak ones are of them,
	// peak_hours_utc (["01:00-04:00", ...]) when the peak rates apply, and
	// peak_weekdays_only (true) leaves Saturdays and Sundays off-peak.
	fieldOffPeakRatio = "off_peak_price_ratio"
	fieldPeakHours    = "peak_hours_utc"
	fieldPeakWeekdays = "peak_weekdays_only"
)

// rawRates are one price band as read, nil where the file states nothing.
type rawRates struct {
	input, output, cacheRead, cacheWrite, reasoning *Rate
}

func parseLiteLLM(data []byte) (*Prices, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	keys := make([]string, 0, len(doc))
	for k := range doc {
		if k != "sample_spec" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys) // deterministic indexes and error order

	p := &Prices{byProvider: make(map[providerModel]int), bare: make(map[string]int)}
	prefixed := make(map[providerModel]bool) // byProvider slots taken by a prefixed key
	var errs []error
	for _, key := range keys {
		price, ok, err := parseEntry(key, doc[key])
		if err != nil {
			errs = append(errs, fmt.Errorf("%q: %w: %w", key, ErrMalformed, err))
			continue
		}
		if !ok {
			continue
		}
		i := len(p.entries)
		p.entries = append(p.entries, price)
		if price.Provider == "" {
			p.bare[key] = i
			continue
		}
		k := providerModel{price.Provider, price.Model}
		if price.Model != key {
			// A "provider/model" key is more specific than a bare key of the same model.
			p.byProvider[k] = i
			prefixed[k] = true
			continue
		}
		p.bare[key] = i
		if !prefixed[k] {
			p.byProvider[k] = i
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// parseEntry reads one entry. ok is false for a well-formed entry without a per-token
// price.
func parseEntry(key string, raw json.RawMessage) (price Price, ok bool, err error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return Price{}, false, errors.New("not a JSON object")
	}
	provider, err := stringField(fields, fieldProvider)
	if err != nil {
		return Price{}, false, err
	}
	price.Provider = canonicalProvider(provider)
	price.Model = key
	if prefix, rest, found := strings.Cut(key, "/"); found && price.Provider != "" && canonicalProvider(prefix) == price.Provider {
		price.Model = rest
	}
	if price.Mode, err = stringField(fields, fieldMode); err != nil {
		return Price{}, false, err
	}
	if price.Source, err = stringField(fields, fieldSource); err != nil {
		return Price{}, false, err
	}
	if price.AsOf, err = stringField(fields, fieldAsOf); err != nil {
		return Price{}, false, err
	}
	if price.InputPerImage, _, err = rateField(fields, fieldImage); err != nil {
		return Price{}, false, err
	}
	price.MaxInputTokens = intField(fields, fieldMaxInput)
	price.MaxOutputTokens = intField(fields, fieldMaxOutput)
	if price.OffPeak, err = offPeakFields(fields); err != nil {
		return Price{}, false, err
	}

	base, err := readRates(fields, "")
	if err != nil {
		return Price{}, false, err
	}
	if base.input == nil && base.output == nil {
		return Price{}, false, nil
	}
	// A missing input or output price is zero (embeddings have no output price); a
	// missing cache or reasoning price is the rate those tokens would otherwise pay.
	price.Input, price.Output = deref(base.input, 0), deref(base.output, 0)
	price.CacheRead = deref(base.cacheRead, price.Input)
	price.CacheWrite = deref(base.cacheWrite, price.Input)
	price.Reasoning = deref(base.reasoning, price.Output)

	thresholds, err := tierThresholds(fields)
	if err != nil {
		return Price{}, false, err
	}
	for _, above := range thresholds {
		t, err := readRates(fields, "_above_"+strconv.Itoa(above/1000)+"k_tokens")
		if err != nil {
			return Price{}, false, err
		}
		// A field the tier does not state keeps the base price when the base states
		// one, and otherwise follows the tier's own input or output price, as the base
		// does.
		tier := Tier{Above: above, Input: deref(t.input, price.Input), Output: deref(t.output, price.Output)}
		tier.CacheRead = deref(t.cacheRead, deref(base.cacheRead, tier.Input))
		tier.CacheWrite = deref(t.cacheWrite, deref(base.cacheWrite, tier.Input))
		tier.Reasoning = deref(t.reasoning, deref(base.reasoning, tier.Output))
		price.Tiers = append(price.Tiers, tier)
	}
	return price, true, nil
}

// readRates reads the token prices whose field names end in suffix.
func readRates(fields map[string]json.RawMessage, suffix string) (rawRates, error) {
	var r rawRates
	for _, f := range []struct {
		name string
		dst  **Rate
	}{
		{fieldInput, &r.input},
		{fieldOutput, &r.output},
		{fieldCacheRead, &r.cacheRead},
		{fieldCacheWrite, &r.cacheWrite},
		{fieldReasoning, &r.reasoning},
	} {
		v, ok, err := rateField(fields, f.name+suffix)
		if err != nil {
			return rawRates{}, err
		}
		if ok {
			*f.dst = &v
		}
	}
	return r, nil
}

// tierThresholds finds the long-context thresholds (in tokens, ascending) named by
// "<token price>_above_<N>k_tokens" fields. Other "_above_" fields (cache durations,
// priority or regional variants) are not token price tiers and are ignored.
func tierThresholds(fields map[string]json.RawMessage) ([]int, error) {
	var out []int
	for name := range fields {
		for _, base := range []string{fieldInput, fieldOutput, fieldCacheRead, fieldCacheWrite, fieldReasoning} {
			rest, ok := strings.CutPrefix(name, base+"_above_")
			if !ok {
				continue
			}
			n, ok := strings.CutSuffix(rest, "k_tokens")
			if !ok {
				continue
			}
			k, err := strconv.Atoi(n)
			if err != nil || k <= 0 || k > math.MaxInt32/1000 {
				return nil, fmt.Errorf("%s: threshold %q is not a positive number of thousands", name, n)
			}
			if !slices.Contains(out, k*1000) {
				out = append(out, k*1000)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// stringField reads an optional string field.
func stringField(fields map[string]json.RawMessage, name string) (string, error) {
	raw, ok := fields[name]
	if !ok || isNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%s: not a string", name)
	}
	return s, nil
}

// offPeakFields reads the time-of-day pricing fields: all of off_peak_price_ratio and
// peak_hours_utc, or neither.
func offPeakFields(fields map[string]json.RawMessage) (*OffPeak, error) {
	ratio, hasRatio := fields[fieldOffPeakRatio]
	hours, hasHours := fields[fieldPeakHours]
	if !hasRatio && !hasHours {
		return nil, nil
	}
	if !hasRatio || !hasHours {
		return nil, fmt.Errorf("%s and %s go together", fieldOffPeakRatio, fieldPeakHours)
	}
	// The ratio is read like a price, in millionths of a millionth, and must be whole
	// thousandths between 0 and 1.
	r, err := rateFromDecimal(string(bytes.TrimSpace(ratio)))
	if err != nil || r <= 0 || r > picosPerDollar || r%1_000_000_000 != 0 {
		return nil, fmt.Errorf("%s: %s is not a fraction between 0 and 1 in thousandths", fieldOffPeakRatio, ratio)
	}
	o := &OffPeak{Permille: r / 1_000_000_000}
	var windows []string
	if err := json.Unmarshal(hours, &windows); err != nil || len(windows) == 0 {
		return nil, fmt.Errorf("%s: want a list of \"HH:MM-HH:MM\" UTC windows", fieldPeakHours)
	}
	for _, w := range windows {
		from, to, ok := strings.Cut(w, "-")
		f, okF := minuteOfDay(from)
		t, okT := minuteOfDay(to)
		if !ok || !okF || !okT || f >= t {
			return nil, fmt.Errorf("%s: %q is not an HH:MM-HH:MM window within a UTC day", fieldPeakHours, w)
		}
		o.Peak = append(o.Peak, [2]int{f, t})
	}
	if raw, ok := fields[fieldPeakWeekdays]; ok && json.Unmarshal(raw, &o.WeekdaysOnly) != nil {
		return nil, fmt.Errorf("%s: not true or false", fieldPeakWeekdays)
	}
	return o, nil
}

// minuteOfDay parses "HH:MM" (00:00 to 24:00) as minutes after midnight.
func minuteOfDay(s string) (int, bool) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	hh, okH := digits(h)
	mm, okM := digits(m)
	if !ok || !okH || !okM || len(h) != 2 || len(m) != 2 || mm > 59 || hh*60+mm > 24*60 {
		return 0, false
	}
	return hh*60 + mm, true
}

// rateField reads an optional USD-per-unit price and converts it to a Rate.
func rateField(fields map[string]json.RawMessage, name string) (Rate, bool, error) {
	raw, ok := fields[name]
	if !ok || isNull(raw) {
		return 0, false, nil
	}
	r, err := rateFromDecimal(string(bytes.TrimSpace(raw)))
	if err != nil {
		return 0, false, fmt.Errorf("%s: %w", name, err)
	}
	return r, true, nil
}

// intField reads a token limit. Limits are informational, so a value that is not a
// whole number (LiteLLM's sample_spec documents them in prose) reads as 0, not as an
// error.
func intField(fields map[string]json.RawMessage, name string) int {
	var f float64
	if err := json.Unmarshal(fields[name], &f); err != nil || f != math.Trunc(f) || f < 0 || f > math.MaxInt32 {
		return 0
	}
	return int(f)
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

func deref(r *Rate, def Rate) Rate {
	if r == nil {
		return def
	}
	return *r
}

// picosPerDollar is a dollar in picodollars, the unit of Rate.
const picosPerDollar = 1_000_000_000_000

// picosPerUSD converts USD to picodollars.
var picosPerUSD = big.NewRat(picosPerDollar, 1)

// rateFromDecimal converts a JSON number of USD per unit ("3e-06", "0.000003") to a
// Rate exactly, rounding half up to the picodollar.
func rateFromDecimal(s string) (Rate, error) {
	if s == "" || !(s[0] == '-' || s[0] >= '0' && s[0] <= '9') {
		return 0, fmt.Errorf("%s is not a number", s)
	}
	// Bound the work big.Rat does on a hostile file: prices have a few significant
	// digits and exponents near -6.
	if len(s) > 64 {
		return 0, fmt.Errorf("%.20s... is too long for a price", s)
	}
	if _, exp, found := strings.Cut(strings.ToLower(s), "e"); found {
		if e, err := strconv.Atoi(exp); err != nil || e < -30 || e > 30 {
			return 0, fmt.Errorf("%s is out of range for a price", s)
		}
	}
	usd, ok := new(big.Rat).SetString(s)
	if !ok {
		return 0, fmt.Errorf("%s is not a number", s)
	}
	if usd.Sign() < 0 {
		return 0, fmt.Errorf("%s is negative", s)
	}
	picos := usd.Mul(usd, picosPerUSD)
	// Round half up: floor(picos + 1/2).
	half := big.NewRat(1, 2)
	picos.Add(picos, half)
	n := new(big.Int).Quo(picos.Num(), picos.Denom())
	if !n.IsInt64() {
		return 0, fmt.Errorf("%s is too large", s)
	}
	return Rate(n.Int64()), nil
}

// rateFromFloat converts a config.yaml cost (USD per token, already a float64) by way of
// its shortest decimal form, which is the number the user wrote.
func rateFromFloat(f float64) (Rate, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%v is not a finite number", f)
	}
	return rateFromDecimal(strconv.FormatFloat(f, 'g', -1, 64))
}

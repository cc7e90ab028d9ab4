// Package spend prices requests and records what they cost.
//
// Pricing: a built-in price table (prices.json, embedded, one entry per provider and
// model, each with the source and date of its prices), tables loaded from a LiteLLM
// model_prices_and_context_window.json file, their merge, lookups with LiteLLM's
// fallbacks, and the per-deployment overrides of config.yaml.
//
// Money is integer. A Rate is picodollars (1e-12 USD) per token, which is the same number
// as micro-dollars per million tokens, the unit providers publish: every published price
// is an exact integer Rate, and a request's cost is a sum of integer products (see
// Price.Cost), converted to micro-dollars only when it is read.
package spend

import (
	"cmp"
	_ "embed"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tollgate-dev/tollgate/config"
)

// Rate is a price in picodollars (1e-12 USD) per token, or per image for
// Price.InputPerImage. 1 Rate per token = $1 per trillion tokens = $0.000001 per million
// tokens, so $3 per million tokens is Rate 3_000_000.
type Rate int64

// PerMillionUSD is the rate in USD per million units, for display.
func (r Rate) PerMillionUSD() float64 { return float64(r) / 1e6 }

// Price is what one model costs. Every rate is resolved: a cache or reasoning rate the
// source does not state is the input or output rate it would otherwise be billed at.
type Price struct {
	// Provider and Model name the table entry that priced the request (after
	// fallbacks), or the deployment when config.yaml overrides the price.
	Provider, Model string
	// Mode is LiteLLM's mode ("chat", "embedding", ...); informational.
	Mode string

	Input      Rate // uncached prompt tokens
	Output     Rate // completion tokens that are not reasoning tokens
	CacheRead  Rate // prompt tokens read from the provider's cache
	CacheWrite Rate // prompt tokens written to the provider's cache
	Reasoning  Rate // completion tokens spent on reasoning

	// InputPerImage is input_cost_per_image for models that bill images per image. Cost
	// does not apply it: translate.Usage carries no image count, and every chat model in
	// the built-in table bills images as prompt tokens.
	InputPerImage Rate

	// Tiers are long-context prices, by ascending threshold (see Tier). The slice is
	// shared with the table: read it, do not modify it.
	Tiers []Tier

	MaxInputTokens, MaxOutputTokens int // 0 = not stated

	// OffPeak, when not nil, discounts every rate outside the provider's peak hours:
	// the rates above are the peak ones.
	OffPeak *OffPeak

	// Source is where the price was read (a URL), AsOf the date it held (YYYY-MM-DD).
	Source, AsOf string
}

// OffPeak is a provider's time-of-day pricing (DeepSeek bills half its rates outside
// 01:00-04:00 and 06:00-10:00 UTC on weekdays): tollgate's own price fields
// off_peak_price_ratio, peak_hours_utc and peak_weekdays_only.
type OffPeak struct {
	// Permille is the off-peak rate as thousandths of the peak rate (500: half).
	Permille Rate
	// Peak are the peak hours, as [from, to) minutes after midnight UTC.
	Peak [][2]int
	// WeekdaysOnly makes Saturdays and Sundays (UTC) off-peak all day.
	WeekdaysOnly bool
}

// IsPeak reports whether t is in the peak hours.
func (o *OffPeak) IsPeak(t time.Time) bool {
	t = t.UTC()
	if o.WeekdaysOnly && (t.Weekday() == time.Saturday || t.Weekday() == time.Sunday) {
		return false
	}
	m := t.Hour()*60 + t.Minute()
	for _, w := range o.Peak {
		if m >= w[0] && m < w[1] {
			return true
		}
	}
	return false
}

// Tier is a long-context price band: when a request's prompt (uncached, cached and
// cache-write tokens together) has more than Above tokens, every token of the request
// is billed at the tier's rates (LiteLLM's *_above_<N>k_tokens fields; Anthropic,
// OpenAI and Google all bill the whole request at the higher band).
type Tier struct {
	Above                                           int
	Input, Output, CacheRead, CacheWrite, Reasoning Rate
}

// Wildcard as the model of a table entry prices every model of its provider: the
// built-in table gives self-hosted providers (ollama, hosted_vllm) "provider/*" at 0.
const Wildcard = "*"

// Prices is a price table. It is immutable once built and safe for concurrent use.
type Prices struct {
	entries []Price
	// byProvider indexes entries by (provider, model); bare indexes entries whose
	// LiteLLM key is the model name alone, which LiteLLM also matches for any provider.
	byProvider map[providerModel]int
	bare       map[string]int
}

type providerModel struct{ provider, model string }

//go:embed prices.json
var builtinJSON []byte

var builtin = sync.OnceValue(func() *Prices {
	p, err := parseLiteLLM(builtinJSON)
	if err != nil {
		// The embedded table is part of the source code and its test parses it; a
		// malformed one is a build defect, like a bad regexp.MustCompile pattern.
		panic(fmt.Sprintf("spend: built-in prices.json: %v", err))
	}
	return p
})

// Builtin returns the built-in price table (prices.json). Every call returns the same
// table.
func Builtin() *Prices { return builtin() }

// Len is the number of priced entries in the table.
func (p *Prices) Len() int {
	if p == nil {
		return 0
	}
	return len(p.entries)
}

// Merge returns a table with over's entries in front of p's: an entry of over replaces
// p's entry for the same provider and model, and for the same bare model name. Neither
// table changes. Use it to put a --prices file over the built-in table.
func (p *Prices) Merge(over *Prices) *Prices {
	m := &Prices{
		byProvider: make(map[providerModel]int),
		bare:       make(map[string]int),
	}
	for _, t := range []*Prices{p, over} {
		if t == nil {
			continue
		}
		offset := len(m.entries)
		m.entries = append(m.entries, t.entries...)
		for k, i := range t.byProvider {
			m.byProvider[k] = i + offset
		}
		for k, i := range t.bare {
			m.bare[k] = i + offset
		}
	}
	return m
}

// Lookup finds the price of a model at a provider (LiteLLM provider prefixes: "openai",
// "anthropic", "bedrock", "vertex_ai", ...). It tries, in order, and returns the first
// match:
//
//  1. the entry for exactly that provider and model;
//  2. the same with a date suffix removed from the model ("claude-sonnet-4-5-20250929",
//     "gpt-5.5-2026-04-23" and "claude-sonnet-4-5@20250929" become "claude-sonnet-4-5"
//     and "gpt-5.5");
//  3. the provider's wildcard entry ("ollama/*"), which prices any of its models;
//  4. the bare model name, whatever its provider: LiteLLM keys OpenAI, Anthropic, Gemini
//     and Bedrock models by their name alone, so an Azure "gpt-5.5" or a Vertex AI
//     "gemini-2.5-pro" is priced at the model vendor's list price;
//  5. the bare model name with the date suffix removed.
//
// The provider's own entries come before the bare name, unlike LiteLLM, so a provider
// that prices a model differently is never priced as another provider's dated entry.
// An empty provider skips steps 1-3. Lookup allocates nothing.
func (p *Prices) Lookup(provider, model string) (Price, bool) {
	if p == nil || model == "" {
		return Price{}, false
	}
	provider = canonicalProvider(provider)
	undated := stripDate(model)
	if provider != "" {
		if i, ok := p.byProvider[providerModel{provider, model}]; ok {
			return p.entries[i], true
		}
		if undated != model {
			if i, ok := p.byProvider[providerModel{provider, undated}]; ok {
				return p.entries[i], true
			}
		}
		if i, ok := p.byProvider[providerModel{provider, Wildcard}]; ok {
			return p.entries[i], true
		}
	}
	if i, ok := p.bare[model]; ok {
		return p.entries[i], true
	}
	if undated != model {
		if i, ok := p.bare[undated]; ok {
			return p.entries[i], true
		}
	}
	return Price{}, false
}

// ForDeployment prices a config.yaml deployment. model_info.base_model, when set, names
// the table entry instead of litellm_params.model: "provider/model" is looked up as that
// provider's model (then as a bare name), a name without a slash as a bare model name
// (steps 4-5 of Lookup). So base_model: azure/gpt-5.5 or gpt-5.5 prices a deployment as
// gpt-5.5, and a self-hosted deployment with a base_model is priced as that model, not
// as free.
//
// The deployment's own prices (config.Costs: input_cost_per_token,
// output_cost_per_token, cache_read_input_token_cost, cache_creation_input_token_cost,
// output_cost_per_reasoning_token) override the table and price a deployment the table
// does not know. An overridden input rate is also the cache read and write rate, and an
// overridden output rate the reasoning rate, unless the deployment prices those too: the
// table's cache discounts describe the provider's list price, not a negotiated one. An
// override removes the long-context tiers and the off-peak rates for the same reason. A
// negative or non-finite override leaves the deployment unpriced.
//
// The result depends only on the table and the config, so callers resolve it once per
// deployment when the config loads, not per request.
func ForDeployment(p *Prices, d *config.Deployment) (Price, bool) {
	if d == nil {
		return Price{}, false
	}
	var price Price
	var ok bool
	if base := d.Info.BaseModel; base != "" {
		if provider, model, found := strings.Cut(base, "/"); found {
			price, ok = p.Lookup(provider, model)
		}
		if !ok {
			price, ok = p.Lookup("", base)
		}
	} else {
		price, ok = p.Lookup(d.Provider, d.Model)
	}
	c := d.Costs
	if !c.Set() {
		if ok && vertexRegionalClaude(d) {
			price = price.scaled(11, 10)
		}
		return price, ok
	}

	if !ok {
		price = Price{Mode: d.Info.Mode}
	}
	price.Provider, price.Model = d.Provider, d.Model
	price.Source, price.AsOf = "config.yaml model_list litellm_params of deployment "+d.ID, ""
	price.Tiers, price.OffPeak = nil, nil
	// A deployment's own input price is what its cache reads and writes cost unless it
	// prices those too; likewise its output price for reasoning tokens.
	if c.Input != nil {
		c.CacheRead, c.CacheWrite = cmp.Or(c.CacheRead, c.Input), cmp.Or(c.CacheWrite, c.Input)
	}
	if c.Output != nil {
		c.Reasoning = cmp.Or(c.Reasoning, c.Output)
	}
	for _, f := range []struct {
		cost *float64
		rate *Rate
	}{
		{c.Input, &price.Input}, {c.Output, &price.Output}, {c.CacheRead, &price.CacheRead},
		{c.CacheWrite, &price.CacheWrite}, {c.Reasoning, &price.Reasoning},
	} {
		if f.cost == nil {
			continue
		}
		r, err := rateFromFloat(*f.cost)
		if err != nil {
			return Price{}, false
		}
		*f.rate = r
	}
	return price, true
}

// vertexRegionalClaude reports whether d is Claude Sonnet 4.5 or a later Claude model
// on a regional (or multi-region) Vertex AI endpoint, which costs 10% more than the
// global endpoint, whose price is Anthropic's list price (Anthropic, Claude on Vertex
// AI, "Global vs regional endpoints",
// https://platform.claude.com/docs/en/build-with-claude/claude-on-vertex-ai, as of
// 2025-11-08). Earlier Claude models cost the same on every endpoint. A Vertex AI
// deployment without vertex_location is regional: LiteLLM's default, us-central1.
func vertexRegionalClaude(d *config.Deployment) bool {
	if canonicalProvider(d.Provider) != "vertex_ai" || d.VertexLocation == "global" {
		return false
	}
	major, minor, ok := claudeVersion(d.Model)
	return ok && (major > 4 || major == 4 && minor >= 5)
}

// claudeVersion reads the version of a Claude model name: claude-sonnet-4-5@20250929 is
// 4.5, claude-opus-4-6 is 4.6, claude-sonnet-4@20250514 is 4.0, claude-3-7-sonnet is 3.7.
func claudeVersion(model string) (major, minor int, ok bool) {
	parts := strings.Split(stripDate(model), "-")
	if len(parts) < 2 || parts[0] != "claude" {
		return 0, 0, false
	}
	var nums []int
	for _, p := range parts[1:] {
		if n, isNum := digits(p); isNum && len(p) <= 2 && len(nums) < 2 {
			nums = append(nums, n)
		}
	}
	switch len(nums) {
	case 0:
		return 0, 0, false
	case 1:
		return nums[0], 0, true
	}
	return nums[0], nums[1], true
}

// scaled is p with every rate multiplied by num/den.
func (p Price) scaled(num, den Rate) Price {
	for _, r := range []*Rate{&p.Input, &p.Output, &p.CacheRead, &p.CacheWrite, &p.Reasoning} {
		*r = *r * num / den
	}
	p.Tiers = slices.Clone(p.Tiers) // the table's, shared
	for i := range p.Tiers {
		t := &p.Tiers[i]
		for _, r := range []*Rate{&t.Input, &t.Output, &t.CacheRead, &t.CacheWrite, &t.Reasoning} {
			*r = *r * num / den
		}
	}
	return p
}

// Unpriced lists the IDs of cfg's deployments that no price covers, in config order,
// for tollgate check. Their requests are still served; their spend is recorded with the
// cost unknown.
func (p *Prices) Unpriced(cfg *config.Config) []string {
	if cfg == nil {
		return nil
	}
	var ids []string
	for _, d := range cfg.Deployments {
		if _, ok := ForDeployment(p, d); !ok {
			ids = append(ids, d.ID)
		}
	}
	return ids
}

// canonicalProvider maps LiteLLM's litellm_provider values onto the provider prefixes
// config.yaml uses: LiteLLM files split Vertex AI into "vertex_ai-language-models",
// "vertex_ai-anthropic_models", ... and Bedrock into "bedrock" and "bedrock_converse".
func canonicalProvider(p string) string {
	switch {
	case strings.HasPrefix(p, "vertex_ai-"):
		return "vertex_ai"
	case p == "bedrock_converse":
		return "bedrock"
	case p == "text-completion-openai":
		return "openai"
	}
	return p
}

// stripDate removes a trailing release date from a model name: "-YYYYMMDD",
// "-YYYY-MM-DD" or "@YYYYMMDD" (Vertex AI's Claude names). It returns model unchanged
// when there is none.
func stripDate(model string) string {
	n := len(model)
	if n > 11 && model[n-11] == '-' && model[n-6] == '-' && model[n-3] == '-' &&
		isDate(model[n-10:n-6], model[n-5:n-3], model[n-2:]) {
		return model[:n-11]
	}
	if n > 9 && (model[n-9] == '-' || model[n-9] == '@') &&
		isDate(model[n-8:n-4], model[n-4:n-2], model[n-2:]) {
		return model[:n-9]
	}
	return model
}

// isDate reports whether the digits form a plausible release date (2000-2099).
func isDate(year, month, day string) bool {
	y, ok1 := digits(year)
	m, ok2 := digits(month)
	d, ok3 := digits(day)
	return ok1 && ok2 && ok3 && y >= 2000 && y <= 2099 && m >= 1 && m <= 12 && d >= 1 && d <= 31
}

func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

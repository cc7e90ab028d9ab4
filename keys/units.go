package keys

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// period is one of LiteLLM's durations: "30s", "30m", "30h", "30d", "2w" or "1mo". Months
// are calendar months, so a monthly budget resets on the same day each month.
type period struct {
	n    int
	unit string // s, m, h, d, w or mo
}

// parsePeriod reads a LiteLLM duration. The error message names the field and shows the
// accepted forms.
func parsePeriod(field, s string) (period, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	if i <= 0 {
		return period{}, fail(ErrInvalidRequest, field, "%s %q is not a duration: use a number and a unit, as in \"30s\", \"30m\", \"30h\", \"30d\", \"2w\" or \"1mo\"", field, s)
	}
	n, err := strconv.Atoi(s[:i])
	unit := s[i:]
	switch {
	case err != nil || n <= 0 || n > 100_000:
		return period{}, fail(ErrInvalidRequest, field, "%s %q must be a positive whole number of units, as in \"30d\"", field, s)
	case unit == "s" || unit == "m" || unit == "h" || unit == "d" || unit == "w" || unit == "mo":
		return period{n: n, unit: unit}, nil
	}
	return period{}, fail(ErrInvalidRequest, field, "%s %q has unknown unit %q: use s, m, h, d, w or mo", field, s, unit)
}

// add returns t plus the period.
func (p period) add(t time.Time) time.Time {
	switch p.unit {
	case "mo":
		return t.AddDate(0, p.n, 0)
	case "w":
		return t.AddDate(0, 0, 7*p.n)
	case "d":
		return t.AddDate(0, 0, p.n)
	case "h":
		return t.Add(time.Duration(p.n) * time.Hour)
	case "m":
		return t.Add(time.Duration(p.n) * time.Minute)
	}
	return t.Add(time.Duration(p.n) * time.Second)
}

// next returns the first reset time after now on the schedule that started at from, so a
// replica that was down for several periods does not reset the budget several times.
func (p period) next(from, now time.Time) time.Time {
	t := p.add(from)
	if t.After(now) {
		return t
	}
	if p.unit != "mo" {
		// Fixed-length periods (times are UTC): skip the missed ones arithmetically.
		step := p.add(t).Sub(t)
		return t.Add((now.Sub(t)/step + 1) * step)
	}
	for !t.After(now) {
		t = p.add(t)
	}
	return t
}

// Money is micro-dollars in Postgres and Redis and float dollars in LiteLLM's API.
const microsPerUSD = 1_000_000

// maxUSD bounds budgets so micro-dollars stay exact in Lua's doubles (2^53).
const maxUSD = 1e9

// micros converts a dollar amount from the API.
func micros(field string, usdAmount float64) (int64, error) {
	if math.IsNaN(usdAmount) || usdAmount < 0 || usdAmount > maxUSD {
		return 0, fail(ErrInvalidRequest, field, "%s must be between 0 and %g dollars, not %v", field, float64(maxUSD), usdAmount)
	}
	return int64(math.Round(usdAmount * microsPerUSD)), nil
}

// dollars converts micro-dollars for the API.
func dollars(m int64) float64 { return float64(m) / microsPerUSD }

// usd formats micro-dollars for messages, without trailing zeros.
func usd(m int64) string { return strconv.FormatFloat(dollars(m), 'f', -1, 64) }

package spend

import (
	"math"
	"math/bits"

	"github.com/tollgate-dev/tollgate/translate"
)

// Cost is what one request cost, exactly, in picodollars (1e-12 USD). Known is false
// when the response reported no usage: the request is recorded with its cost unknown,
// never as free.
type Cost struct {
	Picodollars int64
	Known       bool
}

// picosPerMicro converts picodollars to micro-dollars.
const picosPerMicro = 1_000_000

// Microdollars is the cost in micro-dollars (1e-6 USD), the unit of tollgate's budget
// counters, rounded half up: 0.5 micro-dollars and more count as one. Costs are never
// negative, so half up is also half away from zero. Sum Picodollars instead when adding
// many requests, so that rounding happens once.
func (c Cost) Microdollars() int64 {
	return c.Picodollars/picosPerMicro + boolInt(c.Picodollars%picosPerMicro >= picosPerMicro/2)
}

// USD is the cost in dollars for display; it is a float and not for accounting.
func (c Cost) USD() float64 { return float64(c.Picodollars) / 1e12 }

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// Cost prices one request's usage.
//
// Token accounting follows OpenAI's convention, which every translator normalises to:
// PromptTokens includes the cached tokens and the cache-creation tokens, and
// CompletionTokens includes the reasoning tokens. (Anthropic's own input_tokens excludes
// both kinds of cache tokens; Gemini's candidatesTokenCount excludes thoughts; the
// translators add them back.) So the request is billed as
//
//	uncached prompt = PromptTokens - CachedTokens - CacheCreationTokens  at Input
//	cached          = CachedTokens                                       at CacheRead
//	cache writes    = CacheCreationTokens                                at CacheWrite
//	visible output  = CompletionTokens - ReasoningTokens                 at Output
//	reasoning       = ReasoningTokens                                    at Reasoning
//
// with the rates of the highest long-context tier whose threshold PromptTokens exceeds.
// Counts a provider reported inconsistently are billed, not dropped: a difference that
// would be negative is zero, so cached tokens beyond the prompt or reasoning tokens
// beyond the completion are still charged. Arithmetic is in integers and saturates at
// the largest int64 instead of overflowing. Cost allocates nothing.
func (p Price) Cost(u translate.Usage) Cost {
	if !u.Known {
		return Cost{}
	}
	prompt := nonNegative(u.PromptTokens)
	completion := nonNegative(u.CompletionTokens)
	cached := nonNegative(u.CachedTokens)
	created := nonNegative(u.CacheCreationTokens)
	reasoning := nonNegative(u.ReasoningTokens)

	in, out, cr, cw, rs := p.Input, p.Output, p.CacheRead, p.CacheWrite, p.Reasoning
	for _, t := range p.Tiers {
		if u.PromptTokens > t.Above {
			in, out, cr, cw, rs = t.Input, t.Output, t.CacheRead, t.CacheWrite, t.Reasoning
		}
	}

	var total uint64
	total = addSat(total, mulSat(sub(sub(prompt, cached), created), in))
	total = addSat(total, mulSat(cached, cr))
	total = addSat(total, mulSat(created, cw))
	total = addSat(total, mulSat(sub(completion, reasoning), out))
	total = addSat(total, mulSat(reasoning, rs))
	return Cost{Picodollars: int64(total), Known: true}
}

func nonNegative(n int) uint64 {
	if n < 0 {
		return 0
	}
	return uint64(n)
}

// sub is a - b, or 0 when b is larger.
func sub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

// mulSat multiplies tokens by a rate, saturating at math.MaxInt64. Rates are never
// negative: the loaders reject negative prices.
func mulSat(tokens uint64, r Rate) uint64 {
	hi, lo := bits.Mul64(tokens, uint64(r))
	if hi != 0 || lo > math.MaxInt64 {
		return math.MaxInt64
	}
	return lo
}

// addSat adds, saturating at math.MaxInt64.
func addSat(a, b uint64) uint64 {
	if s := a + b; s >= a && s <= math.MaxInt64 {
		return s
	}
	return math.MaxInt64
}

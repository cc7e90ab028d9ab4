package extproc

import (
	"context"
	"time"

	"github.com/tollgate-dev/tollgate/translate"
)

// Limits enforces the budgets and rate limits of virtual keys, their teams, users and end
// users. The router stage reserves a request's worst-case cost and tokens before the
// request goes upstream, so concurrent requests cannot together overspend a budget, and
// settles the reservation with the actual cost when the response ends.
type Limits interface {
	// Reserve admits the request or refuses it with a client-facing error (an
	// *translate.APIError, whose Headers carry retry-after and x-ratelimit-*). A nil
	// Reservation means no limit applies to p (the master key).
	Reserve(ctx context.Context, p *Principal, r LimitRequest) (Reservation, error)
}

// LimitRequest is what a request may consume, at worst.
type LimitRequest struct {
	Alias        string
	EndUser      string // the body's "user", LiteLLM's end user
	CostMicroUSD int64
	Tokens       int64
}

// Reservation is capacity held for one request. Exactly one of Settle and Release ends it.
type Reservation interface {
	// Settle replaces the reservation with what the request actually cost.
	Settle(ctx context.Context, costMicroUSD, tokens int64) error
	// Release returns the reservation of a request that consumed nothing.
	Release(ctx context.Context) error
	// Headers are response headers about the limits: x-ratelimit-*, a crossed soft budget.
	Headers() []translate.Header
}

// Pricer prices what a deployment's responses consume.
type Pricer interface {
	// Cost is what u costs on the deployment for a request that started at start (some
	// providers bill less off-peak), in micro-dollars; known is false when the
	// deployment has no price (the request is served and recorded with cost unknown).
	Cost(deploymentID string, u translate.Usage, start time.Time) (microUSD int64, known bool)
	// MaxOutputTokens is the longest response the deployment can give, for requests that
	// do not bound it themselves.
	MaxOutputTokens(deploymentID string) int
}

// bytesPerToken bounds a prompt's tokens from its size. Tokenizers average about four
// bytes of English per token; three keeps the estimate above the real count for most
// text, and the reservation is settled with the real count anyway.
const bytesPerToken = 3

// worstCase is the most a request of bodyLen bytes can cost on any deployment of the
// alias's chain: each attempt may land on any of them.
func (s *Server) worstCase(a *alias, bodyLen int, start time.Time) (costMicroUSD, tokens int64) {
	prompt := bodyLen/bytesPerToken + 1
	for _, d := range a.chain {
		out := s.pricer.MaxOutputTokens(d.id)
		tokens = max(tokens, int64(prompt+out))
		if c, known := s.pricer.Cost(d.id, translate.Usage{PromptTokens: prompt, CompletionTokens: out, Known: true}, start); known {
			costMicroUSD = max(costMicroUSD, c)
		}
	}
	return costMicroUSD, tokens
}

// reserve holds the worst case of the routed request against every limit of its key.
func (r *router) reserve(bodyLen int, endUser string) error {
	if r.s.limits == nil {
		return nil
	}
	cost, tokens := r.s.worstCase(r.alias, bodyLen, r.start)
	res, err := r.s.limits.Reserve(r.ctx, r.principal, LimitRequest{
		Alias: r.alias.name, EndUser: endUser, CostMicroUSD: cost, Tokens: tokens,
	})
	if err != nil {
		return err
	}
	r.res = res
	return nil
}

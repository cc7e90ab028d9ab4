package extproc

import (
	"context"
	"log/slog"
	"time"

	"github.com/tollgate-dev/tollgate/translate"
)

// SpendSink records what each request spent. Record must not block the request: it hands
// the record to a background writer.
type SpendSink interface {
	Record(*SpendRecord)
}

// SpendRecord is one request's spend, as the router stage saw it.
type SpendRecord struct {
	RequestID string
	Principal *Principal
	EndUser   string // the body's "user"
	Metadata  []byte // the body's "metadata" object (JSON), nil when absent
	Alias     string
	Endpoint  translate.Endpoint // what the client called: chat/completions, messages, ...
	// DeploymentID is the config.yaml deployment that answered, "" when none did; Provider
	// and ProviderModel are its provider prefix and model name.
	DeploymentID, Provider, ProviderModel string
	Usage                                 translate.Usage
	CostMicroUSD                          int64
	CostKnown                             bool
	Status                                int
	ErrorCode                             string
	Start, FirstByte, End                 time.Time
	Stream                                bool
	Attempts                              int // upstream attempts: 1 + retries and fallbacks
	// UsageEstimated: the provider reported no usage (a stream cut or abandoned), so the
	// tokens were estimated from the request's size and the events streamed.
	UsageEstimated bool
}

// estimateStream is the usage of a stream that ended without the provider's count: a
// token per bytesPerToken of request body, and a token per event streamed (providers
// stream about one token per event). The client received that much; it is charged.
func (r *router) estimateStream() translate.Usage {
	return translate.Usage{PromptTokens: r.bodyLen/bytesPerToken + 1, CompletionTokens: r.events, Known: true}
}

// finishTimeout bounds settling a reservation after the client has gone.
const finishTimeout = 5 * time.Second

// cost is what a request cost, in micro-dollars, when known.
type cost struct {
	microUSD int64
	known    bool
}

// done records a request whose response ended, with the usage the response reported,
// and returns its cost.
func (r *router) done(u translate.Usage) cost {
	return r.finish(r.ctx, u)
}

// close ends a stream that stopped before its response did (the client left, Envoy reset
// it): what a stream reported so far is charged; a request that consumed nothing known
// gives its reservation back.
func (r *router) close() {
	if r.finished || r.principal == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), finishTimeout)
	defer cancel()
	var u translate.Usage
	if r.sse != nil {
		u = r.sse.Usage()
	}
	if r.status == 0 {
		r.status = 499 // the client closed the request, in nginx's and Envoy's access-log terms
	}
	r.finish(ctx, u)
}

// finish settles the request's reservation and records its spend, once.
func (r *router) finish(ctx context.Context, u translate.Usage) cost {
	if r.finished {
		return cost{}
	}
	r.finished = true
	estimated := false
	if !u.Known && r.streaming && r.events > 0 {
		u, estimated = r.estimateStream(), true
	}
	rec := SpendRecord{
		UsageEstimated: estimated,
		RequestID:      r.requestID, Endpoint: r.route.ep, Principal: r.principal, EndUser: r.endUser, Metadata: r.metadata, Usage: u,
		Status: r.status, ErrorCode: r.errCode, Start: r.start, FirstByte: r.firstByte, End: time.Now(),
		Stream: r.stream, Attempts: r.attempts,
	}
	if r.alias != nil {
		rec.Alias = r.alias.name
	}
	if r.dep != nil {
		rec.DeploymentID, rec.Provider, rec.ProviderModel = r.dep.id, r.dep.target.Provider, r.dep.target.Model
		if r.s.pricer != nil && u.Known {
			rec.CostMicroUSD, rec.CostKnown = r.s.pricer.Cost(r.dep.id, u, r.start)
		}
	}
	if res := r.res; res != nil {
		r.res = nil
		var err error
		if u.Known {
			err = res.Settle(ctx, rec.CostMicroUSD, int64(u.PromptTokens+u.CompletionTokens))
		} else {
			err = res.Release(ctx)
		}
		if err != nil {
			r.s.log.Error("ending a budget reservation failed", "request_id", r.requestID, "err", err)
		}
	}
	if r.s.spend != nil && r.principal != nil {
		r.s.spend.Record(&rec)
	}
	if r.s.log.Enabled(ctx, slog.LevelDebug) {
		r.s.log.LogAttrs(ctx, slog.LevelDebug, "request done", slog.String("request_id", r.requestID),
			slog.String("alias", rec.Alias), slog.String("deployment", rec.DeploymentID), slog.Int("status", r.status),
			slog.Int("prompt_tokens", u.PromptTokens), slog.Int("completion_tokens", u.CompletionTokens),
			slog.Int64("cost_micro_usd", rec.CostMicroUSD))
	}
	return cost{rec.CostMicroUSD, rec.CostKnown}
}

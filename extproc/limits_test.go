package extproc

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/translate"
)

// fakeLimits records reservations, and refuses keys listed in refuse.
type fakeLimits struct {
	mu       sync.Mutex
	requests []LimitRequest
	events   []string // "settle <cost> <tokens>" or "release"
	refuse   map[string]*translate.APIError
	ended    chan struct{}
}

func newFakeLimits() *fakeLimits {
	return &fakeLimits{refuse: map[string]*translate.APIError{}, ended: make(chan struct{}, 10)}
}

func (f *fakeLimits) Reserve(_ context.Context, p *Principal, r LimitRequest) (Reservation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e := f.refuse[p.KeyHash]; e != nil {
		return nil, e
	}
	f.requests = append(f.requests, r)
	return &fakeReservation{f: f}, nil
}

type fakeReservation struct{ f *fakeLimits }

func (r *fakeReservation) Settle(_ context.Context, cost, tokens int64) error {
	r.f.end("settle", cost, tokens)
	return nil
}

func (r *fakeReservation) Release(context.Context) error {
	r.f.end("release", 0, 0)
	return nil
}

func (r *fakeReservation) Headers() []translate.Header {
	return []translate.Header{{Key: "x-ratelimit-remaining-requests", Value: "9"}}
}

func (f *fakeLimits) end(what string, cost, tokens int64) {
	f.mu.Lock()
	if what == "settle" {
		what += " " + itoa(cost) + " " + itoa(tokens)
	}
	f.events = append(f.events, what)
	f.mu.Unlock()
	f.ended <- struct{}{}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// fakePricer charges 10 micro-dollars per prompt token and 30 per completion token on
// every deployment, and caps responses at 100 tokens.
type fakePricer struct{}

func (fakePricer) Cost(_ string, u translate.Usage, _ time.Time) (int64, bool) {
	return int64(10*u.PromptTokens + 30*u.CompletionTokens), true
}
func (fakePricer) MaxOutputTokens(string) int { return 100 }

func TestLimitsReserveAndSettle(t *testing.T) {
	limits := newFakeLimits()
	_, c := startServerDeps(t, testConfig(), Deps{Auth: newFakeAuth(), Limits: limits, Pricer: fakePricer{}})
	e := routerStream(t, c)
	body := `{"model":"local-llama","messages":[{"role":"user","content":"hello there"}],"user":"customer-42"}`
	e.send(post("/v1/chat/completions", "authorization", "Bearer "+scopedKey))
	if got := summarize(e.send(requestBody(body))); got.Phase != "request_body" {
		t.Fatalf("request body answered %+v", got)
	}
	// Worst case: a token per 3 bytes of body, and the deployment's 100 output tokens.
	prompt := int64(len(body)/3 + 1)
	want := []LimitRequest{{Alias: "local-llama", EndUser: "customer-42", CostMicroUSD: prompt*10 + 100*30, Tokens: prompt + 100}}
	if diff := cmp.Diff(want, limits.requests); diff != "" {
		t.Errorf("reservation (-want +got):\n%s", diff)
	}
	hdrs := summarize(e.send(responseHeaders(false, ":status", "200", "content-type", "application/json", headerDeployment, "local-llama-0")))
	if hdrs.Set["x-ratelimit-remaining-requests"] != "9" {
		t.Errorf("response headers lack the reservation's: %v", hdrs.Set)
	}
	e.send(responseBody(`{"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2}}`, true))
	<-limits.ended
	if diff := cmp.Diff([]string{"settle 100 6"}, limits.events); diff != "" {
		t.Errorf("settlement (-want +got):\n%s", diff)
	}
}

// A stream that ends before its response (the client went away) gives its reservation
// back.
func TestLimitsReleaseWhenTheStreamEnds(t *testing.T) {
	limits := newFakeLimits()
	_, c := startServerDeps(t, testConfig(), Deps{Auth: newFakeAuth(), Limits: limits, Pricer: fakePricer{}})
	e := routerStream(t, c)
	e.send(post("/v1/chat/completions", "authorization", "Bearer "+scopedKey))
	e.send(requestBody(`{"model":"local-llama","messages":[]}`))
	e.stream.CloseSend()
	select {
	case <-limits.ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the reservation was neither settled nor released")
	}
	if diff := cmp.Diff([]string{"release"}, limits.events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestLimitsRefusal(t *testing.T) {
	limits := newFakeLimits()
	limits.refuse["hash-scoped"] = &translate.APIError{
		Status: 429, Type: "rate_limit_error", Code: "rate_limit_exceeded", Message: "rpm limit of 1 reached",
		Headers: []translate.Header{{Key: "retry-after", Value: "42"}},
	}
	_, c := startServerDeps(t, testConfig(), Deps{Auth: newFakeAuth(), Limits: limits, Pricer: fakePricer{}})
	e := routerStream(t, c)
	e.send(post("/v1/chat/completions", "authorization", "Bearer "+scopedKey))
	got := summarize(e.send(requestBody(`{"model":"local-llama","messages":[]}`)))
	if got.Phase != "immediate" || got.Status != 429 || got.Set["retry-after"] != "42" {
		t.Errorf("refusal = %+v", got)
	}
}

// fakeSpend collects spend records.
type fakeSpend struct{ records chan *SpendRecord }

func (f fakeSpend) Record(r *SpendRecord) { f.records <- r }

// A client that leaves mid-stream is still charged for what it received: the provider
// never sent its usage, so the tokens are estimated and the record says so.
func TestAbandonedStreamIsCharged(t *testing.T) {
	limits := newFakeLimits()
	sink := fakeSpend{records: make(chan *SpendRecord, 1)}
	_, c := startServerDeps(t, testConfig(), Deps{Auth: newFakeAuth(), Limits: limits, Pricer: fakePricer{}, Spend: sink})
	e := routerStream(t, c)
	body := `{"model":"local-llama","stream":true,"messages":[{"role":"user","content":"count to ten"}]}`
	e.send(post("/v1/chat/completions", "authorization", "Bearer "+scopedKey))
	e.send(requestBody(body))
	e.send(responseHeaders(false, ":status", "200", "content-type", "text/event-stream", headerDeployment, "local-llama-0"))
	e.send(responseBody("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"one\"}}]}\n\n"+
		"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" two\"}}]}\n\n", false))
	e.stream.CloseSend() // the client went away
	var rec *SpendRecord
	select {
	case rec = <-sink.records:
	case <-time.After(10 * time.Second):
		t.Fatal("no spend record for an abandoned stream")
	}
	prompt := len(body)/3 + 1
	want := translate.Usage{PromptTokens: prompt, CompletionTokens: 2, Known: true}
	if diff := cmp.Diff(want, rec.Usage); diff != "" || !rec.UsageEstimated || rec.Status != 200 {
		t.Errorf("record usage (-want +got):\n%s\nestimated %v, status %d", diff, rec.UsageEstimated, rec.Status)
	}
	if want := "settle " + itoa(int64(10*prompt+30*2)) + " " + itoa(int64(prompt+2)); len(limits.events) != 1 || limits.events[0] != want {
		t.Errorf("reservation ended with %v, want %q", limits.events, want)
	}
}

package providertest

import (
	"net/http"
	"sync"
)

// Request is one request a fake provider received.
type Request struct {
	Method string
	Path   string // with the query
	Header http.Header
	Body   []byte
}

// recorder is what every fake keeps about its traffic: the requests it received, and the
// failures FailNext queued for the next ones. Each fake embeds it.
type recorder struct {
	recordMu sync.Mutex // guards requests and failures, apart from the fake's own state
	requests []Request
	failures []int // statuses to answer the next requests with, in order
}

// FailNext makes the next len(statuses) requests fail with those statuses, in order, each
// with the error body the provider sends for its status. Requests the fake refuses
// anyway (a wrong path, missing credentials; see the fake's doc) do not use one up.
func (rec *recorder) FailNext(statuses ...int) {
	rec.recordMu.Lock()
	defer rec.recordMu.Unlock()
	rec.failures = append(rec.failures, statuses...)
}

// Requests returns what the fake received so far.
func (rec *recorder) Requests() []Request {
	rec.recordMu.Lock()
	defer rec.recordMu.Unlock()
	return append([]Request(nil), rec.requests...)
}

// record keeps r, whose body was read into body.
func (rec *recorder) record(r *http.Request, body []byte) {
	rec.recordMu.Lock()
	defer rec.recordMu.Unlock()
	rec.requests = append(rec.requests, Request{Method: r.Method, Path: r.URL.RequestURI(), Header: r.Header.Clone(), Body: body})
}

// nextFailure takes the status FailNext queued for this request, or returns 0.
func (rec *recorder) nextFailure() int {
	rec.recordMu.Lock()
	defer rec.recordMu.Unlock()
	if len(rec.failures) == 0 {
		return 0
	}
	fail := rec.failures[0]
	rec.failures = rec.failures[1:]
	return fail
}

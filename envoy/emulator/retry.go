package emulator

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

// retry_on conditions (source/common/router/retry_state_impl.cc, parseRetryOn).
const (
	retryOn5xx uint32 = 1 << iota
	retryOnGatewayError
	retryOnReset
	retryOnResetBeforeRequest
	retryOnConnectFailure
	retryOnEnvoyRateLimited
	retryOnRetriable4xx
	retryOnRefusedStream
	retryOnRetriableStatusCodes
	retryOnRetriableHeaders
	retryOnHTTP3PostConnectFailure
)

var retryOnNames = map[string]uint32{
	"5xx":                        retryOn5xx,
	"gateway-error":              retryOnGatewayError,
	"reset":                      retryOnReset,
	"reset-before-request":       retryOnResetBeforeRequest,
	"connect-failure":            retryOnConnectFailure,
	"envoy-ratelimited":          retryOnEnvoyRateLimited,
	"retriable-4xx":              retryOnRetriable4xx,
	"refused-stream":             retryOnRefusedStream,
	"retriable-status-codes":     retryOnRetriableStatusCodes,
	"retriable-headers":          retryOnRetriableHeaders,
	"http3-post-connect-failure": retryOnHTTP3PostConnectFailure,
}

// parseRetryOn returns the known conditions of a retry_on list and the unknown names.
func parseRetryOn(s string) (uint32, []string) {
	var bits uint32
	var unknown []string
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if b, ok := retryOnNames[name]; ok {
			bits |= b
		} else {
			unknown = append(unknown, name)
		}
	}
	return bits, unknown
}

// retryPolicy is a compiled RetryPolicy.
type retryPolicy struct {
	on             uint32
	numRetries     uint32
	perTryTimeout  time.Duration
	statusCodes    []uint32
	base, max      time.Duration
	respHeaders    []headerMatcher
	reqHeaders     []headerMatcher
	refreshCluster bool
}

func compileRetryPolicy(rp *routev3.RetryPolicy, path string, p *problems) *retryPolicy {
	p.unsupported(rp, path, "retry_on", "num_retries", "per_try_timeout", "retriable_status_codes",
		"retry_back_off", "retriable_headers", "retriable_request_headers", "refresh_cluster_on_retry",
		"host_selection_retry_max_attempts")
	on, unknown := parseRetryOn(rp.GetRetryOn())
	if len(unknown) > 0 {
		p.addf("%s.retry_on: conditions %v are not supported by the emulator", path, unknown)
	}
	out := &retryPolicy{
		on:             on,
		numRetries:     defaultNumRetries,
		perTryTimeout:  durationOr(rp.GetPerTryTimeout(), 0),
		statusCodes:    rp.GetRetriableStatusCodes(),
		base:           durationOr(rp.GetRetryBackOff().GetBaseInterval(), defaultRetryBase),
		refreshCluster: rp.GetRefreshClusterOnRetry(),
	}
	if rp.GetNumRetries() != nil {
		out.numRetries = rp.GetNumRetries().GetValue()
	}
	// Envoy caps the back-off at ten times the base unless max_interval is set.
	out.max = durationOr(rp.GetRetryBackOff().GetMaxInterval(), out.base*10)
	for i, h := range rp.GetRetriableHeaders() {
		out.respHeaders = append(out.respHeaders, compileHeaderMatcher(h, fmt.Sprintf("%s.retriable_headers[%d]", path, i), p))
	}
	for i, h := range rp.GetRetriableRequestHeaders() {
		out.reqHeaders = append(out.reqHeaders, compileHeaderMatcher(h, fmt.Sprintf("%s.retriable_request_headers[%d]", path, i), p))
	}
	return out
}

// retryState is the per-request retry bookkeeping of Envoy's RetryStateImpl.
type retryState struct {
	on          uint32
	remaining   uint32
	statusCodes []uint32
	respHeaders []headerMatcher
	base, max   time.Duration
	backoffs    int
}

// newRetryState builds the retry state and consumes the retry control headers, which are
// never forwarded upstream (RetryStateImpl::create). It returns nil when no retry can
// happen.
func newRetryState(pol *retryPolicy, h *headerMap) *retryState {
	defer func() {
		for _, k := range []string{"x-envoy-retry-on", "x-envoy-retry-grpc-on", "x-envoy-max-retries",
			"x-envoy-hedge-on-per-try-timeout", "x-envoy-retriable-header-names",
			"x-envoy-retriable-status-codes", "x-envoy-upstream-rq-per-try-timeout-ms"} {
			h.remove(k)
		}
	}()
	hdrOn, hasHdrOn := h.get("x-envoy-retry-on")
	if pol == nil && !hasHdrOn {
		return nil
	}
	if pol == nil {
		pol = &retryPolicy{numRetries: defaultNumRetries, base: defaultRetryBase, max: defaultRetryBase * 10}
	}
	if pol.on == 0 && !hasHdrOn {
		return nil
	}
	rs := &retryState{
		on:          pol.on,
		remaining:   pol.numRetries,
		statusCodes: append([]uint32(nil), pol.statusCodes...),
		respHeaders: pol.respHeaders,
		base:        pol.base,
		max:         pol.max,
	}
	if hasHdrOn {
		bits, _ := parseRetryOn(hdrOn)
		rs.on |= bits
	}
	if len(pol.reqHeaders) > 0 {
		matched := false
		for _, m := range pol.reqHeaders {
			if m.matches(h) {
				matched = true
				break
			}
		}
		if !matched {
			rs.on = 0
		}
	}
	// "The max retries header takes precedence if set", but only when some retry_on applies.
	if v, ok := h.get("x-envoy-max-retries"); ok && rs.on != 0 {
		if n, err := strconv.ParseUint(v, 10, 32); err == nil {
			rs.remaining = uint32(n)
		}
	}
	if v, ok := h.get("x-envoy-retriable-status-codes"); ok {
		for _, c := range strings.Split(v, ",") {
			if n, err := strconv.ParseUint(strings.TrimSpace(c), 10, 32); err == nil {
				rs.statusCodes = append(rs.statusCodes, uint32(n))
			}
		}
	}
	return rs
}

// wouldRetryHeaders is RetryStateImpl::wouldRetryFromHeaders for an HTTP (non-gRPC) request.
func (rs *retryState) wouldRetryHeaders(resp *headerMap) bool {
	if resp.has("x-envoy-ratelimited") {
		return rs.on&retryOnEnvoyRateLimited != 0
	}
	status, _ := strconv.Atoi(resp.value(":status"))
	if rs.on&retryOn5xx != 0 && status >= 500 && status < 600 {
		return true
	}
	if rs.on&retryOnGatewayError != 0 && status >= 502 && status <= 504 {
		return true
	}
	if rs.on&retryOnRetriable4xx != 0 && status == 409 {
		return true
	}
	if rs.on&retryOnRetriableStatusCodes != 0 {
		for _, c := range rs.statusCodes {
			if uint32(status) == c {
				return true
			}
		}
	}
	if rs.on&retryOnRetriableHeaders != 0 {
		for _, m := range rs.respHeaders {
			if m.matches(resp) {
				return true
			}
		}
	}
	return false
}

// resetKind classifies why an attempt ended without response headers.
type resetKind int

const (
	resetConnectFailure resetKind = iota // could not connect (or TLS handshake failed)
	resetRemote                          // connection reset or protocol error after connecting
	resetPerTryTimeout                   // per_try_timeout fired (a local reset)
)

// wouldRetryReset is RetryStateImpl::wouldRetryFromReset.
func (rs *retryState) wouldRetryReset(kind resetKind, requestStarted bool) bool {
	if kind == resetConnectFailure && rs.on&retryOnConnectFailure != 0 {
		return true
	}
	if rs.on&retryOnResetBeforeRequest != 0 && !requestStarted {
		return true
	}
	if rs.on&(retryOnReset|retryOn5xx|retryOnGatewayError) != 0 {
		return true
	}
	return false
}

// take consumes one retry if any remain.
func (rs *retryState) take() bool {
	if rs.remaining == 0 {
		return false
	}
	rs.remaining--
	return true
}

// backoff is Envoy's fully jittered exponential back-off: uniform in [0, min(base*2^n, max)).
func (rs *retryState) backoff() time.Duration {
	ceiling := rs.base << rs.backoffs
	if ceiling <= 0 || ceiling > rs.max {
		ceiling = rs.max
	} else {
		rs.backoffs++
	}
	if ceiling <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(ceiling)))
}

package emulator

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

var errPerTryTimeout = errors.New("per try timeout")

// upstreamResponse is what the router hands to the encoder filters.
type upstreamResponse struct {
	headers *headerMap
	body    bodySource
	abandon func() // resets the attempt when the router retries instead
}

// selectCluster resolves the route action's cluster for an attempt (1-based), the way the
// route entry does when it is created and when refresh_cluster_on_retry refreshes it.
func (x *exchange) selectCluster(a *routeAction, attempt int) string {
	switch {
	case a.cluster != "":
		return a.cluster
	case a.clusterHeader != "":
		return x.headers.value(a.clusterHeader)
	case len(a.weighted) > 0:
		g := pgGroup{clusters: a.weighted, total: a.totalWeight}
		return g.pick(x.random)
	case a.priority != nil:
		random := x.random
		if a.priority.valueHeader != "" {
			if v, err := strconv.ParseUint(x.headers.value(a.priority.valueHeader), 10, 64); err == nil {
				random = v
			}
		}
		return a.priority.selectCluster(x, attempt, random)
	}
	return ""
}

// resolveRoute matches the route and resolves its cluster for the first attempt, as the
// connection manager does when it caches the route (and again after a filter cleared it).
func (x *exchange) resolveRoute() {
	rt := x.e.hcm.routes.selectRoute(x.headers)
	cluster := ""
	if rt != nil && rt.action != nil {
		cluster = x.selectCluster(rt.action, 1)
	}
	x.mu.Lock()
	x.route, x.routeCleared, x.cluster = rt, false, cluster
	x.mu.Unlock()
	x.armIdleTimer(rt)
}

// routeForRouter returns the route the router sees: the cached one, or a fresh match when
// a filter cleared the route cache.
func (x *exchange) routeForRouter() (*route, string) {
	x.mu.Lock()
	cleared := x.routeCleared
	x.mu.Unlock()
	if cleared {
		x.resolveRoute()
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.route, x.cluster
}

// forward is the router filter (source/common/router/router.cc): route, cluster, timeouts,
// retry state, then attempts until a response can go downstream.
func (x *exchange) forward(body bodySource) (*upstreamResponse, error) {
	rt, clusterName := x.routeForRouter()
	if rt == nil {
		return nil, &replyError{&localReply{status: 404, details: "route_not_found"}}
	}
	if rt.direct != nil {
		return nil, &replyError{&localReply{status: rt.direct.status, body: rt.direct.body, details: "direct_response",
			modify: func(h *headerMap) { finalizeResponseHeaders(rt, h, "") }}}
	}
	a := rt.action
	if _, ok := x.e.clusters[clusterName]; !ok {
		return nil, &replyError{&localReply{status: a.notFoundCode, details: "cluster_not_found"}}
	}
	h := x.headers

	// FilterUtility::finalTimeout: x-envoy-upstream-rq-timeout-ms (set by a trusted client or
	// a filter) overrides the route timeout; a per-try timeout not below it is ignored.
	global := a.timeout
	if v, ok := h.get("x-envoy-upstream-rq-timeout-ms"); ok {
		if ms, err := strconv.ParseUint(v, 10, 64); err == nil {
			global = time.Duration(ms) * time.Millisecond
		}
		h.remove("x-envoy-upstream-rq-timeout-ms")
	}
	var perTry time.Duration
	if a.retry != nil {
		perTry = a.retry.perTryTimeout
	}
	if v, ok := h.get("x-envoy-upstream-rq-per-try-timeout-ms"); ok {
		if ms, err := strconv.ParseUint(v, 10, 64); err == nil {
			perTry = time.Duration(ms) * time.Millisecond
		}
	}
	if global > 0 && perTry >= global {
		perTry = 0
	}
	if expected := cmpOr(perTry, global); expected > 0 {
		h.set("x-envoy-expected-rq-timeout-ms", strconv.FormatInt(expected.Milliseconds(), 10))
	}
	attempt := 1
	if rt.vh.attemptCountReq {
		h.set("x-envoy-attempt-count", "1")
	}
	finalizeRequestHeaders(rt, h)
	rs := newRetryState(a.retry, h)

	var rb *replayBuffer
	limit := rt.bufferLimit(x.e.listenerLimit)
	if body != nil {
		rb = newReplayBuffer(&replyOnError{src: body, x: x}, limit)
	}
	if global > 0 {
		go func() {
			if rb != nil && rb.waitComplete() != nil {
				return
			}
			t := time.AfterFunc(global, func() { x.cancel(errGlobalTimeout) })
			<-x.ctx.Done()
			t.Stop()
		}()
	}
	modify := func(h *headerMap) {
		if rt.vh.attemptCountResp {
			h.set("x-envoy-attempt-count", strconv.Itoa(attempt))
		}
	}
	for {
		c := x.e.clusters[clusterName]
		x.mu.Lock()
		x.cluster = clusterName
		x.mu.Unlock()
		start := time.Now()
		res := x.attempt(c, rb, limit, perTry)
		canRetry := rs != nil && (rb == nil || !rb.hasOverflowed())
		switch {
		case res.err != nil:
			return nil, res.err
		case res.reply != nil:
			// Upstream filter local replies go out through the downstream filter manager and
			// are never retried (source/common/router/upstream_request.cc).
			return nil, &replyError{res.reply}
		case res.resp == nil:
			if !canRetry || !rs.wouldRetryReset(res.reset, res.reset != resetConnectFailure) || !rs.take() {
				return nil, &replyError{resetReply(res.reset, attempt > 1, modify)}
			}
		default:
			if !canRetry || !rs.wouldRetryHeaders(res.resp.headers) || !rs.take() {
				if !x.e.routerSuppressHeaders {
					res.resp.headers.set("x-envoy-upstream-service-time", strconv.FormatInt(time.Since(start).Milliseconds(), 10))
				}
				finalizeResponseHeaders(rt, res.resp.headers, clusterName)
				modify(res.resp.headers)
				return res.resp, nil
			}
			res.resp.abandon()
		}
		if err := x.sleep(rs.backoff()); err != nil {
			return nil, err
		}
		attempt++
		if a.retry != nil && a.retry.refreshCluster {
			clusterName = x.selectCluster(a, attempt)
		}
		if _, ok := x.e.clusters[clusterName]; !ok {
			return nil, &replyError{&localReply{status: 503, body: []byte("no healthy upstream"), details: "no_healthy_upstream", modify: modify}}
		}
		if rt.vh.attemptCountReq {
			h.set("x-envoy-attempt-count", strconv.Itoa(attempt))
		}
	}
}

func cmpOr(a, b time.Duration) time.Duration {
	if a > 0 {
		return a
	}
	return b
}

func (x *exchange) sleep(d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-x.ctx.Done():
		return x.ctx.Err()
	}
}

// resetReply is the router's local reply when the last attempt ended without headers.
func resetReply(kind resetKind, retried bool, modify func(*headerMap)) *localReply {
	if kind == resetPerTryTimeout {
		return &localReply{status: 504, body: []byte("upstream request timeout"), details: "upstream_per_try_timeout", modify: modify}
	}
	reason := "remote reset"
	if kind == resetConnectFailure {
		reason = "remote connection failure"
	}
	prefix := "upstream connect error or disconnect/reset before headers. "
	if retried {
		prefix += "retried and the latest "
	}
	return &localReply{status: 503, body: []byte(prefix + "reset reason: " + reason), details: "upstream_reset_before_response_started", modify: modify}
}

// finalizeRequestHeaders applies request_headers_to_add/remove of every level.
func finalizeRequestHeaders(rt *route, h *headerMap) {
	for _, ops := range rt.headerLevels() {
		for _, o := range ops.reqAdd {
			applyHeaderOption(h, o, formatHeaderValue(o.value, ""))
		}
		for _, k := range ops.reqRemove {
			h.remove(k)
		}
	}
}

// finalizeResponseHeaders applies response_headers_to_add/remove of every level, rendering
// %UPSTREAM_CLUSTER%.
func finalizeResponseHeaders(rt *route, h *headerMap, cluster string) {
	for _, ops := range rt.headerLevels() {
		for _, o := range ops.respAdd {
			applyHeaderOption(h, o, formatHeaderValue(o.value, cluster))
		}
		for _, k := range ops.respRemove {
			h.remove(k)
		}
	}
}

// attemptResult is how one upstream attempt ended.
type attemptResult struct {
	resp  *upstreamResponse
	reply *localReply
	reset resetKind
	err   error
}

// attempt runs one try: a fresh upstream filter chain (a fresh ext_proc stream per
// attempt) over the router's own, shared header map and a copy of the buffered body, then
// the upstream codec.
func (x *exchange) attempt(c *cluster, rb *replayBuffer, limit uint64, perTry time.Duration) attemptResult {
	ctx, cancel := context.WithCancelCause(x.ctx)
	// The per-try timeout starts once the downstream request is complete and stops
	// mattering when response headers arrive (UpstreamRequest::onPerTryTimeout).
	headersIn := make(chan struct{})
	if perTry > 0 {
		go func() {
			if rb != nil && rb.waitComplete() != nil {
				return
			}
			t := time.NewTimer(perTry)
			defer t.Stop()
			select {
			case <-t.C:
				cancel(errPerTryTimeout)
			case <-headersIn:
			case <-ctx.Done():
			}
		}()
	}
	var procs []*processor
	closeAll := func() {
		for _, p := range procs {
			p.close()
		}
	}
	for _, f := range c.filters {
		procs = append(procs, newProcessor(f, x, x.e.grpcConn(f), x.log, nil, func() string { return c.name }))
	}
	var body bodySource
	if rb != nil {
		body = rb.reader()
	}
	for _, p := range procs {
		var err error
		if body, err = p.process(dirRequest, x.headers, body, limit); err != nil {
			cancel(nil)
			closeAll()
			var re *replyError
			if errors.As(err, &re) {
				return attemptResult{reply: re.lr}
			}
			return attemptResult{err: err}
		}
	}
	resp, err := x.roundTrip(ctx, c, body)
	if err != nil {
		cause := context.Cause(ctx)
		cancel(nil)
		closeAll()
		var ce *connectError
		switch {
		case errors.Is(cause, errPerTryTimeout):
			return attemptResult{reset: resetPerTryTimeout}
		case x.ctx.Err() != nil:
			return attemptResult{err: x.ctx.Err()}
		case errors.As(err, &ce):
			return attemptResult{reset: resetConnectFailure}
		default:
			x.log.Debug("upstream reset", "cluster", c.name, "error", err)
			return attemptResult{reset: resetRemote}
		}
	}
	close(headersIn)
	rh := newHeaderMap()
	rh.add(":status", strconv.Itoa(resp.StatusCode))
	rh.addHTTP(resp.Header)
	for k := range hopByHop {
		rh.remove(k)
	}
	var rbody bodySource
	if resp.Body != nil && resp.Body != http.NoBody {
		rbody = &closingSource{src: newReaderSource(resp.Body), closer: resp.Body, done: func() { cancel(nil); closeAll() }}
	} else {
		_ = resp.Body.Close()
	}
	for i := len(procs) - 1; i >= 0; i-- {
		if rbody, err = procs[i].process(dirResponse, rh, rbody, x.e.listenerLimit); err != nil {
			cancel(nil)
			closeAll()
			var re *replyError
			if errors.As(err, &re) {
				return attemptResult{reply: re.lr}
			}
			return attemptResult{err: err}
		}
	}
	if rbody == nil {
		cancel(nil)
		closeAll()
	}
	abandon := func() {
		cancel(nil)
		closeAll()
		_ = resp.Body.Close()
	}
	return attemptResult{resp: &upstreamResponse{headers: rh, body: rbody, abandon: abandon}}
}

// roundTrip is the upstream codec: the shared header map becomes an HTTP/1.1 or HTTP/2
// request to the next endpoint of the cluster.
func (x *exchange) roundTrip(ctx context.Context, c *cluster, body bodySource) (*http.Response, error) {
	ep := c.pick()
	h := x.headers.clone()
	scheme := "http"
	if c.tls != nil {
		scheme = "https"
	}
	path := h.value(":path")
	u := &url.URL{Scheme: scheme, Host: ep.key}
	if p, q, ok := strings.Cut(path, "?"); ok {
		u.Opaque, u.RawQuery = p, q
	} else {
		u.Opaque = path
	}
	req := &http.Request{
		Method:     h.value(":method"),
		URL:        u,
		Host:       h.value(":authority"),
		Header:     http.Header{},
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
	}
	contentLength := int64(-1)
	for _, e := range h.entries {
		switch {
		case strings.HasPrefix(e.key, ":") || hopByHop[e.key] || e.key == "host":
		case e.key == "content-length":
			if n, err := strconv.ParseInt(e.value, 10, 64); err == nil {
				contentLength = n
			}
		default:
			req.Header[http.CanonicalHeaderKey(e.key)] = append(req.Header[http.CanonicalHeaderKey(e.key)], e.value)
		}
	}
	if _, ok := req.Header["User-Agent"]; !ok {
		// Keep Go from adding its own user agent: Envoy forwards only what it has.
		req.Header["User-Agent"] = []string{""}
	}
	if body == nil {
		req.ContentLength = 0
	} else {
		req.Body = io.NopCloser(&sourceReader{src: body})
		req.ContentLength = contentLength
		if contentLength == 0 {
			req.Body = http.NoBody
		}
	}
	return c.transport.RoundTrip(req.WithContext(ctx))
}

// sourceReader adapts a bodySource to io.Reader for the HTTP client.
type sourceReader struct {
	src  bodySource
	buf  []byte
	done bool
}

func (r *sourceReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.done {
			return 0, io.EOF
		}
		data, end, err := r.src.next()
		if err != nil {
			return 0, err
		}
		r.buf, r.done = data, end
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// closingSource closes the upstream body and ends the attempt when the body is done.
type closingSource struct {
	src    bodySource
	closer io.Closer
	done   func()
	ended  bool
}

func (s *closingSource) next() ([]byte, bool, error) {
	if s.ended {
		return nil, true, nil
	}
	data, end, err := s.src.next()
	if end || err != nil {
		s.ended = true
		_ = s.closer.Close()
		s.done()
	}
	return data, end, err
}

// replyOnError turns a local reply raised while the request body streams through the
// router-level filters (STREAMED mode) into an abort of the whole request, as Envoy's
// sendLocalReply resets the upstream request.
type replyOnError struct {
	src bodySource
	x   *exchange
}

func (r *replyOnError) next() ([]byte, bool, error) {
	data, end, err := r.src.next()
	var re *replyError
	if errors.As(err, &re) {
		r.x.abort(re.lr)
	}
	return data, end, err
}

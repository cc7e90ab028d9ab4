package emulator

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// Causes that cancel the upstream side of an exchange.
var (
	errAborted       = errors.New("a filter sent a local reply")
	errGlobalTimeout = errors.New("route timeout")
	errIdleTimeout   = errors.New("route idle timeout")
)

// localReply is a response Envoy generates itself (sendLocalReply): router errors, direct
// responses, ext_proc immediate responses and failures.
type localReply struct {
	status   int
	body     []byte
	mutation *extprocv3.HeaderMutation
	rules    *mutationRules
	details  string
	modify   func(h *headerMap)
}

// render builds the reply's headers the way Envoy's local reply does: ":status",
// content-length and, with a body, content-type text/plain.
func (lr *localReply) render() (*headerMap, []byte) {
	h := newHeaderMap()
	h.add(":status", strconv.Itoa(lr.status))
	h.add("content-length", strconv.Itoa(len(lr.body)))
	if len(lr.body) > 0 {
		h.add("content-type", "text/plain")
	}
	if lr.modify != nil {
		lr.modify(h)
	}
	if lr.mutation != nil && lr.rules != nil {
		// Rejected immediate-response mutations are only logged by Envoy.
		_ = applyHeaderMutation(lr.mutation, h, false, lr.rules, false)
	}
	return h, lr.body
}

// exchange is one downstream request through the listener: the HTTP connection manager's
// ActiveStream with its filter chain, router and upstream attempts.
type exchange struct {
	e      *Emulator
	log    *slog.Logger
	w      http.ResponseWriter
	r      *http.Request
	reqCtx context.Context
	ctx    context.Context // upstream work; cancelled on local replies and timeouts
	cancel context.CancelCauseFunc

	headers *headerMap
	random  uint64
	procs   []*processor

	mu              sync.Mutex
	meta            map[string]*structpb.Struct
	route           *route
	routeCleared    bool
	cluster         string
	respStatus      int
	pending         *localReply
	responseStarted bool
	idle            *time.Timer
}

func (e *Emulator) serveHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	x := &exchange{e: e, log: e.log, w: w, r: r, reqCtx: r.Context(), ctx: ctx, cancel: cancel, meta: map[string]*structpb.Struct{}}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	x.random = binary.LittleEndian.Uint64(rnd[:])
	x.run()
}

func (x *exchange) run() {
	x.headers = x.requestHeaders()
	hcm := x.e.hcm
	hcm.sanitize(x.headers, x.r, x.e.downstreamTLS)
	x.resolveRoute()
	x.mu.Lock()
	rt := x.route
	x.mu.Unlock()
	limit := x.e.listenerLimit
	if rt != nil {
		limit = rt.bufferLimit(x.e.listenerLimit)
	}
	for _, f := range hcm.filters {
		var pr *perRouteExtProc
		if rt != nil {
			pr = mergePerRoute(rt.perFilterConfigs(f.name))
		}
		x.procs = append(x.procs, newProcessor(f, x, x.e.grpcConn(f), x.log, pr, x.currentCluster))
	}
	defer func() {
		for _, p := range x.procs {
			p.close()
		}
		x.stopIdleTimer()
	}()

	var body bodySource
	if x.r.Body != nil && x.r.Body != http.NoBody {
		body = &activitySource{src: newReaderSource(x.r.Body), x: x}
	}
	for _, p := range x.procs {
		var err error
		if body, err = p.process(dirRequest, x.headers, body, limit); err != nil {
			x.fail(err, false)
			return
		}
	}
	resp, err := x.forward(body)
	if err != nil {
		x.fail(err, false)
		return
	}
	x.encode(resp.headers, resp.body, false)
}

// requestHeaders converts the Go request into Envoy's header map: HTTP/1 Host becomes
// :authority, header names are lower-case.
func (x *exchange) requestHeaders() *headerMap {
	h := newHeaderMap()
	scheme := "http"
	if x.r.TLS != nil {
		scheme = "https"
	}
	h.add(":authority", x.r.Host)
	h.add(":path", x.r.RequestURI)
	h.add(":method", x.r.Method)
	h.add(":scheme", scheme)
	keys := make([]string, 0, len(x.r.Header))
	for k := range x.r.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range x.r.Header[k] {
			h.add(strings.ToLower(k), v)
		}
	}
	return h
}

// encode runs a response through the router-level encoder filters (last filter first)
// and writes it downstream. A local reply raised here, once response headers exist, goes
// straight to the client as Envoy's sendDirectLocalReply does.
func (x *exchange) encode(h *headerMap, body bodySource, direct bool) {
	if status, err := strconv.Atoi(h.value(":status")); err == nil {
		x.mu.Lock()
		x.respStatus = status
		x.mu.Unlock()
	}
	if !direct {
		for i := len(x.procs) - 1; i >= 0; i-- {
			var err error
			if body, err = x.procs[i].process(dirResponse, h, body, x.e.listenerLimit); err != nil {
				x.fail(err, true)
				return
			}
		}
	}
	x.write(h, body)
}

// fail turns an error from the chain into the response Envoy would send: the local reply
// (through the encoder filters unless response headers already exist), or a reset when
// the response already started.
func (x *exchange) fail(err error, responseHeadersExist bool) {
	lr := x.replyFor(err)
	if lr == nil {
		return
	}
	x.mu.Lock()
	started := x.responseStarted
	x.mu.Unlock()
	if started {
		panic(http.ErrAbortHandler)
	}
	h, body := lr.render()
	var src bodySource
	if len(body) > 0 {
		src = bytesSource(body)
	}
	x.encode(h, src, responseHeadersExist)
}

func (x *exchange) replyFor(err error) *localReply {
	var re *replyError
	switch {
	case errors.As(err, &re):
		return re.lr
	case errors.Is(err, errClientGone) || x.reqCtx.Err() != nil:
		return nil
	}
	switch cause := context.Cause(x.ctx); {
	case errors.Is(cause, errAborted):
		x.mu.Lock()
		defer x.mu.Unlock()
		return x.pending
	case errors.Is(cause, errGlobalTimeout):
		return &localReply{status: 504, body: []byte("upstream request timeout"), details: "upstream_response_timeout"}
	case errors.Is(cause, errIdleTimeout):
		return &localReply{status: 504, body: []byte("stream timeout"), details: "stream_idle_timeout"}
	}
	x.log.Error("request failed", "error", err)
	return &localReply{status: 503, body: []byte("upstream connect error or disconnect/reset before headers. reset reason: " + err.Error())}
}

// write sends the response downstream, flushing every chunk as it arrives so streams are
// never buffered whole.
func (x *exchange) write(h *headerMap, body bodySource) {
	x.mu.Lock()
	x.responseStarted = true
	x.mu.Unlock()
	status, err := strconv.Atoi(h.value(":status"))
	if err != nil || status < 100 {
		status = 502
	}
	wh := x.w.Header()
	for _, e := range h.entries {
		if strings.HasPrefix(e.key, ":") || hopByHop[e.key] {
			continue
		}
		wh[http.CanonicalHeaderKey(e.key)] = append(wh[http.CanonicalHeaderKey(e.key)], e.value)
	}
	if x.e.hcm.serverName != "" {
		wh.Set("Server", x.e.hcm.serverName)
	}
	if body == nil && !h.has("content-length") && status != http.StatusNoContent && status != http.StatusNotModified {
		wh.Set("Content-Length", "0")
	}
	x.w.WriteHeader(status)
	rc := http.NewResponseController(x.w)
	_ = rc.Flush()
	if body == nil {
		return
	}
	for {
		data, end, err := body.next()
		if err != nil {
			// The response already started: Envoy resets the stream.
			x.log.Debug("response aborted after it started", "error", err)
			panic(http.ErrAbortHandler)
		}
		if len(data) > 0 {
			if _, err := x.w.Write(data); err != nil {
				return
			}
			_ = rc.Flush()
			x.touch()
		}
		if end {
			return
		}
	}
}

// procHost implementation.

func (x *exchange) setDynamicMetadata(ns string, s *structpb.Struct) {
	x.mu.Lock()
	defer x.mu.Unlock()
	cur, ok := x.meta[ns]
	if !ok {
		x.meta[ns] = proto.Clone(s).(*structpb.Struct)
		return
	}
	// StreamInfo::setDynamicMetadata merges the struct into the namespace.
	if cur.Fields == nil {
		cur.Fields = map[string]*structpb.Value{}
	}
	for k, v := range s.GetFields() {
		cur.Fields[k] = proto.Clone(v).(*structpb.Value)
	}
}

func (x *exchange) namespace(ns string) *structpb.Struct {
	x.mu.Lock()
	defer x.mu.Unlock()
	if s, ok := x.meta[ns]; ok {
		return proto.Clone(s).(*structpb.Struct)
	}
	return nil
}

func (x *exchange) forwardMetadata(untyped, _ []string) *corev3.Metadata {
	out := &corev3.Metadata{}
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, ns := range untyped {
		if s, ok := x.meta[ns]; ok {
			if out.FilterMetadata == nil {
				out.FilterMetadata = map[string]*structpb.Struct{}
			}
			out.FilterMetadata[ns] = proto.Clone(s).(*structpb.Struct)
		}
	}
	return out
}

func (x *exchange) clearRouteCache() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.routeCleared = true
}

func (x *exchange) abort(lr *localReply) {
	x.mu.Lock()
	if x.pending == nil {
		x.pending = lr
	}
	x.mu.Unlock()
	x.cancel(errAborted)
}

func (x *exchange) done() <-chan struct{} { return x.reqCtx.Done() }

func (x *exchange) currentCluster() string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.cluster
}

// attribute evaluates one ext_proc attribute against the live request.
func (x *exchange) attribute(name, cluster string) (*structpb.Value, bool) {
	h := x.headers
	path := h.value(":path")
	str := func(s string) (*structpb.Value, bool) { return structpb.NewStringValue(s), true }
	switch name {
	case "request.path":
		return str(path)
	case "request.url_path":
		p, _, _ := strings.Cut(path, "?")
		return str(p)
	case "request.query":
		_, q, _ := strings.Cut(path, "?")
		return str(q)
	case "request.host":
		return str(h.value(":authority"))
	case "request.scheme":
		return str(h.value(":scheme"))
	case "request.method":
		return str(h.value(":method"))
	case "request.referer":
		return str(h.value("referer"))
	case "request.useragent":
		return str(h.value("user-agent"))
	case "request.id":
		return str(h.value("x-request-id"))
	case "request.protocol":
		return str(x.r.Proto)
	case "response.code":
		x.mu.Lock()
		defer x.mu.Unlock()
		if x.respStatus == 0 {
			return nil, false
		}
		return structpb.NewNumberValue(float64(x.respStatus)), true
	case "xds.cluster_name":
		if cluster == "" {
			return nil, false
		}
		return str(cluster)
	case "xds.route_name", "xds.virtual_host_name":
		x.mu.Lock()
		rt := x.route
		x.mu.Unlock()
		if rt == nil {
			return nil, false
		}
		if name == "xds.route_name" {
			return str(rt.name)
		}
		return str(rt.vh.name)
	case "source.address":
		return str(x.r.RemoteAddr)
	case "destination.address":
		if a, ok := x.r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			return str(a.String())
		}
		return nil, false
	case "connection.mtls":
		return structpb.NewBoolValue(x.r.TLS != nil && len(x.r.TLS.PeerCertificates) > 0), true
	}
	return nil, false
}

// activitySource records request body activity for the route idle timeout.
type activitySource struct {
	src bodySource
	x   *exchange
}

func (a *activitySource) next() ([]byte, bool, error) {
	d, end, err := a.src.next()
	a.x.touch()
	return d, end, err
}

// armIdleTimer (re)arms the route's idle_timeout for the route now cached; the
// connection manager does so whenever the cached route changes.
func (x *exchange) armIdleTimer(rt *route) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.idle != nil {
		x.idle.Stop()
		x.idle = nil
	}
	if rt == nil || rt.action == nil || rt.action.idleTimeout <= 0 {
		return
	}
	x.idle = time.AfterFunc(rt.action.idleTimeout, func() { x.cancel(errIdleTimeout) })
}

func (x *exchange) touch() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.idle != nil && x.route != nil && x.route.action != nil {
		x.idle.Reset(x.route.action.idleTimeout)
	}
}

func (x *exchange) stopIdleTimer() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.idle != nil {
		x.idle.Stop()
	}
}

// sanitize is ConnectionManagerUtility::mutateRequestHeaders for what an HTTP client can
// observe: connection headers go, external requests lose the x-envoy control headers,
// x-forwarded-proto and x-request-id are set.
func (c *hcmConfig) sanitize(h *headerMap, r *http.Request, downstreamTLS bool) {
	for _, k := range []string{"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "x-envoy-internal"} {
		h.remove(k)
	}
	scheme := "http"
	if downstreamTLS {
		scheme = "https"
	}
	var remote netip.Addr
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		remote = ap.Addr().Unmap()
	}
	var final netip.Addr
	single := false
	if c.useRemoteAddress {
		single = !h.has("x-forwarded-for")
		if c.xffTrustedHops > 0 {
			final, _ = xffAddress(h, int(c.xffTrustedHops)-1)
		}
		if !final.IsValid() {
			final = remote
		}
		if remote.IsValid() {
			if xff, ok := h.get("x-forwarded-for"); ok {
				h.set("x-forwarded-for", xff+","+remote.String())
			} else {
				h.set("x-forwarded-for", remote.String())
			}
		}
		h.set("x-forwarded-proto", scheme)
	} else {
		final, single = xffAddress(h, int(c.xffTrustedHops))
	}
	if !h.has("x-forwarded-proto") {
		h.set("x-forwarded-proto", scheme)
	}
	internal := single && final.IsValid() && c.isInternal(final)
	edge := !internal && c.useRemoteAddress
	if internal {
		h.set("x-envoy-internal", "true")
	} else {
		if edge {
			for _, k := range []string{"x-envoy-decorator-operation", "x-envoy-downstream-service-cluster", "x-envoy-downstream-service-node"} {
				h.remove(k)
			}
		}
		for _, k := range cleanedInternalHeaders {
			h.remove(k)
		}
	}
	if edge && final.IsValid() {
		h.set("x-envoy-external-address", final.String())
	}
	if c.generateRequestID && (!h.has("x-request-id") || (edge && !c.preserveExternalRequestID)) {
		h.set("x-request-id", newUUID())
	}
}

// cleanedInternalHeaders are the headers ConnectionManagerUtility::cleanInternalHeaders
// removes from external requests.
var cleanedInternalHeaders = []string{
	"x-envoy-retriable-status-codes", "x-envoy-retriable-header-names", "x-envoy-retry-on",
	"x-envoy-retry-grpc-on", "x-envoy-max-retries", "x-envoy-upstream-alt-stat-name",
	"x-envoy-upstream-rq-timeout-ms", "x-envoy-upstream-rq-per-try-timeout-ms",
	"x-envoy-upstream-rq-timeout-alt-response", "x-envoy-expected-rq-timeout-ms",
	"x-envoy-force-trace", "x-envoy-ip-tags", "x-envoy-original-url",
	"x-envoy-hedge-on-per-try-timeout",
}

// xffAddress returns the address hops from the right of x-forwarded-for and whether the
// header holds a single address (Utility::getLastAddressFromXFF).
func xffAddress(h *headerMap, hops int) (netip.Addr, bool) {
	v, ok := h.get("x-forwarded-for")
	if !ok {
		return netip.Addr{}, false
	}
	parts := strings.Split(v, ",")
	if hops >= len(parts) {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(strings.TrimSpace(parts[len(parts)-1-hops]))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), len(parts) == 1
}

func (c *hcmConfig) isInternal(a netip.Addr) bool {
	for _, p := range c.internalCIDRs {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

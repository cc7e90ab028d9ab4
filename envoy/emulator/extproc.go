package emulator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// Traffic directions of one ext_proc stream.
const (
	dirRequest  = 0
	dirResponse = 1
)

// cbState is the ProcessorState::CallbackState of one direction: which answer the filter
// waits for. An answer of any other kind is a spurious message.
type cbState int

const (
	cbIdle cbState = iota
	cbHeaders
	cbBufferedBody
	cbStreamedBody
)

// dirMode is the processing mode of one direction.
type dirMode struct {
	sendHeaders bool
	body        extprocfilterv3.ProcessingMode_BodySendMode
}

func modesOf(m *extprocfilterv3.ProcessingMode) [2]dirMode {
	return [2]dirMode{
		{sendHeaders: m.GetRequestHeaderMode() != extprocfilterv3.ProcessingMode_SKIP, body: m.GetRequestBodyMode()},
		{sendHeaders: m.GetResponseHeaderMode() != extprocfilterv3.ProcessingMode_SKIP, body: m.GetResponseBodyMode()},
	}
}

// outcome is what a waiting data path receives for one message it sent.
type outcome struct {
	resp  *extprocv3.ProcessingResponse
	reply *localReply // processing failed or an immediate response arrived
	pass  bool        // processing ended without error: continue unchanged
}

// procHost is what a processor needs from the request it serves.
type procHost interface {
	setDynamicMetadata(ns string, s *structpb.Struct)
	forwardMetadata(untyped, typed []string) *corev3.Metadata
	attribute(name, cluster string) (*structpb.Value, bool)
	clearRouteCache()
	abort(lr *localReply)
	done() <-chan struct{}
}

// errClientGone aborts processing when the downstream client went away.
var errClientGone = errors.New("downstream client went away")

// replyError carries a local reply up through the filter chain.
type replyError struct{ lr *localReply }

func (e *replyError) Error() string { return fmt.Sprintf("local reply %d", e.lr.status) }

// processor plays Envoy's ext_proc filter for one request (or one upstream attempt): one
// lazily opened gRPC Process stream, one callback state per direction, and the message
// timer (source/extensions/filters/http/ext_proc/ext_proc.cc, processor_state.cc).
type processor struct {
	f                *extProcFilter
	host             procHost
	conn             *grpc.ClientConn
	log              *slog.Logger
	md               metadata.MD
	failureModeAllow bool
	cluster          func() string

	sendMu sync.Mutex // orders waiter registration with stream.Send

	mu                sync.Mutex
	modes             [2]dirMode
	state             [2]cbState
	waiters           [2][]chan outcome
	attrsSent         [2]bool
	protocolSent      bool
	complete          bool
	stream            extprocv3.ExternalProcessor_ProcessClient
	cancel            context.CancelFunc
	timer             *time.Timer
	timerGen          uint64
	timeoutOverridden bool
}

func newProcessor(f *extProcFilter, host procHost, conn *grpc.ClientConn, log *slog.Logger, pr *perRouteExtProc, cluster func() string) *processor {
	p := &processor{f: f, host: host, conn: conn, log: log, failureModeAllow: f.failureModeAllow, cluster: cluster}
	p.modes = modesOf(f.config)
	md := metadata.MD{}
	entries := append([]headerEntry(nil), f.initialMetadata...)
	if pr != nil {
		switch {
		case pr.disabled:
			// Per-route disabling skips every callback (allDisabledMode).
			p.modes = [2]dirMode{}
		case pr.mode != nil:
			p.modes = modesOf(pr.mode)
		}
		if pr.failureModeAllow != nil {
			p.failureModeAllow = *pr.failureModeAllow
		}
		// Per-route grpc_initial_metadata replaces entries of the same key.
		entries = append(entries, pr.initialMetadata...)
	}
	for _, h := range entries {
		md.Set(h.key, h.value)
	}
	p.md = md
	return p
}

// removesContentLength is ProcessorState::shouldRemoveContentLength.
func (p *processor) removesContentLength(m dirMode) bool {
	if p.f.allowContentLengthHeader {
		return false
	}
	return m.body == extprocfilterv3.ProcessingMode_STREAMED || (m.body == extprocfilterv3.ProcessingMode_BUFFERED && !m.sendHeaders)
}

func (p *processor) snapshot(dir int) (dirMode, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.modes[dir], p.complete
}

// call sends one message and returns the channel its answer arrives on. A nil channel
// with a nil reply means processing is over and the data continues unchanged.
func (p *processor) call(dir int, st cbState, fill func(*extprocv3.ProcessingRequest)) (<-chan outcome, *localReply) {
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	p.mu.Lock()
	if p.complete {
		p.mu.Unlock()
		return nil, nil
	}
	if p.stream == nil {
		p.mu.Unlock()
		ctx, cancel := context.WithCancel(metadata.NewOutgoingContext(context.Background(), p.md))
		stream, err := extprocv3.NewExternalProcessorClient(p.conn).Process(ctx)
		p.mu.Lock()
		if err != nil {
			cancel()
			p.complete = true
			p.mu.Unlock()
			p.log.Debug("ext_proc stream failed to open", "filter", p.f.name, "error", err)
			if p.failureModeAllow {
				return nil, nil
			}
			return nil, p.grpcErrorReply(err)
		}
		p.stream, p.cancel = stream, cancel
		go p.recvLoop(stream)
	}
	req := &extprocv3.ProcessingRequest{}
	fill(req)
	if attrs := p.attributesLocked(dir); attrs != nil {
		req.Attributes = map[string]*structpb.Struct{"envoy.filters.http.ext_proc": attrs}
	}
	req.MetadataContext = p.host.forwardMetadata(p.f.forwardUntyped, p.f.forwardTyped)
	if !p.protocolSent {
		p.protocolSent = true
		req.ProtocolConfig = &extprocv3.ProtocolConfiguration{RequestBodyMode: p.modes[dirRequest].body, ResponseBodyMode: p.modes[dirResponse].body}
	}
	ch := make(chan outcome, 1)
	p.waiters[dir] = append(p.waiters[dir], ch)
	p.state[dir] = st
	p.timeoutOverridden = false
	p.armTimerLocked(p.f.messageTimeout)
	stream := p.stream
	p.mu.Unlock()
	if err := stream.Send(req); err != nil {
		// The receive loop sees the same failure and answers the waiter.
		p.log.Debug("ext_proc send failed", "filter", p.f.name, "error", err)
	}
	return ch, nil
}

func (p *processor) attributesLocked(dir int) *structpb.Struct {
	names := p.f.reqAttrs
	if dir == dirResponse {
		names = p.f.respAttrs
	}
	if len(names) == 0 || p.attrsSent[dir] {
		return nil
	}
	p.attrsSent[dir] = true
	out := &structpb.Struct{Fields: map[string]*structpb.Value{}}
	cluster := ""
	if p.cluster != nil {
		cluster = p.cluster()
	}
	for _, n := range names {
		if v, ok := p.host.attribute(n, cluster); ok {
			out.Fields[n] = v
		}
	}
	return out
}

func (p *processor) wait(ch <-chan outcome) (outcome, error) {
	select {
	case o := <-ch:
		return o, nil
	case <-p.host.done():
		return outcome{}, errClientGone
	}
}

func (p *processor) recvLoop(stream extprocv3.ExternalProcessor_ProcessClient) {
	for {
		resp, err := stream.Recv()
		if err != nil {
			p.onStreamEnd(stream, err)
			return
		}
		p.onResponse(stream, resp)
	}
}

// onStreamEnd is onGrpcClose (clean end: continue without ext_proc) and onGrpcError
// (fail closed with status_on_error unless failure_mode_allow).
func (p *processor) onStreamEnd(stream extprocv3.ExternalProcessor_ProcessClient, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.complete || p.stream != stream {
		return
	}
	if errors.Is(err, io.EOF) || p.failureModeAllow {
		p.passAllLocked()
		return
	}
	p.terminalLocked(p.grpcErrorReply(err))
}

func (p *processor) grpcErrorReply(err error) *localReply {
	return &localReply{status: p.f.statusOnError, details: fmt.Sprintf("ext_proc_error_gRPC_error_%d", status.Code(err))}
}

func (p *processor) onResponse(stream extprocv3.ExternalProcessor_ProcessClient, resp *extprocv3.ProcessingResponse) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.complete || p.stream != stream {
		// Messages after processing completed are ignored.
		return
	}
	if resp.GetOverrideMessageTimeout() != nil {
		p.overrideTimeoutLocked(resp.GetOverrideMessageTimeout().AsDuration())
		return
	}
	if p.f.allowModeOverride && resp.GetModeOverride() != nil && (p.state[dirRequest] == cbHeaders || p.state[dirResponse] == cbHeaders) {
		p.modeOverrideLocked(resp.GetModeOverride())
	}
	valid := false
	dir := dirRequest
	switch r := resp.GetResponse().(type) {
	case *extprocv3.ProcessingResponse_RequestHeaders:
		valid = p.state[dirRequest] == cbHeaders
	case *extprocv3.ProcessingResponse_ResponseHeaders:
		dir, valid = dirResponse, p.state[dirResponse] == cbHeaders
	case *extprocv3.ProcessingResponse_RequestBody:
		valid = p.state[dirRequest] == cbBufferedBody || p.state[dirRequest] == cbStreamedBody
	case *extprocv3.ProcessingResponse_ResponseBody:
		dir = dirResponse
		valid = p.state[dirResponse] == cbBufferedBody || p.state[dirResponse] == cbStreamedBody
	case *extprocv3.ProcessingResponse_ImmediateResponse:
		if !p.f.disableImmediateResponse {
			p.setMetadataLocked(resp)
			p.terminalLocked(p.immediateReply(r.ImmediateResponse))
			return
		}
	}
	// Envoy stores the dynamic metadata before it checks the message against the state.
	p.setMetadataLocked(resp)
	if !valid {
		p.log.Warn("spurious ext_proc response message", "filter", p.f.name, "type", fmt.Sprintf("%T", resp.GetResponse()))
		if p.failureModeAllow {
			p.passAllLocked()
			return
		}
		p.terminalLocked(&localReply{status: p.f.statusOnError, details: "ext_proc_error_spurious_message"})
		return
	}
	ch := p.waiters[dir][0]
	p.waiters[dir] = p.waiters[dir][1:]
	if len(p.waiters[dir]) == 0 {
		p.state[dir] = cbIdle
	}
	p.stopTimerLocked()
	ch <- outcome{resp: resp}
}

func (p *processor) setMetadataLocked(resp *extprocv3.ProcessingResponse) {
	for ns, v := range resp.GetDynamicMetadata().GetFields() {
		for _, allowed := range p.f.receiving {
			if ns == allowed {
				p.host.setDynamicMetadata(ns, v.GetStructValue())
			}
		}
	}
}

// modeOverrideLocked applies mode_override: DEFAULT header modes keep the filter's
// configured mode, body modes are always explicit; allowed_override_modes restricts it.
func (p *processor) modeOverrideLocked(o *extprocfilterv3.ProcessingMode) {
	eff := &extprocfilterv3.ProcessingMode{
		RequestHeaderMode:   p.f.config.GetRequestHeaderMode(),
		ResponseHeaderMode:  p.f.config.GetResponseHeaderMode(),
		RequestTrailerMode:  p.f.config.GetRequestTrailerMode(),
		ResponseTrailerMode: p.f.config.GetResponseTrailerMode(),
		RequestBodyMode:     o.GetRequestBodyMode(),
		ResponseBodyMode:    o.GetResponseBodyMode(),
	}
	if o.GetRequestHeaderMode() != extprocfilterv3.ProcessingMode_DEFAULT {
		eff.RequestHeaderMode = o.GetRequestHeaderMode()
	}
	if o.GetResponseHeaderMode() != extprocfilterv3.ProcessingMode_DEFAULT {
		eff.ResponseHeaderMode = o.GetResponseHeaderMode()
	}
	if o.GetRequestTrailerMode() != extprocfilterv3.ProcessingMode_DEFAULT {
		eff.RequestTrailerMode = o.GetRequestTrailerMode()
	}
	if o.GetResponseTrailerMode() != extprocfilterv3.ProcessingMode_DEFAULT {
		eff.ResponseTrailerMode = o.GetResponseTrailerMode()
	}
	if len(p.f.allowedOverrideModes) > 0 {
		allowed := false
		for _, m := range p.f.allowedOverrideModes {
			if eff.GetRequestBodyMode() == m.GetRequestBodyMode() && eff.GetRequestTrailerMode() == m.GetRequestTrailerMode() &&
				eff.GetResponseHeaderMode() == m.GetResponseHeaderMode() && eff.GetResponseBodyMode() == m.GetResponseBodyMode() &&
				eff.GetResponseTrailerMode() == m.GetResponseTrailerMode() {
				allowed = true
				break
			}
		}
		if !allowed {
			return
		}
	}
	probs := &problems{}
	checkProcessingMode(eff, "mode_override", probs)
	if len(probs.errs) > 0 {
		p.log.Error("ext_proc mode_override asks for a mode the emulator does not support; ignored", "filter", p.f.name, "error", errors.Join(probs.errs...))
		return
	}
	p.modes = modesOf(eff)
}

// immediateReply builds the local reply of an ImmediateResponse; a status below 200 becomes
// 200, and the header mutation is checked with the filter's mutation rules.
func (p *processor) immediateReply(ir *extprocv3.ImmediateResponse) *localReply {
	code := 200
	if ir.GetStatus() != nil {
		code = int(ir.GetStatus().GetCode())
	}
	if code < 200 {
		code = 200
	}
	return &localReply{status: code, body: ir.GetBody(), mutation: ir.GetHeaders(), rules: &p.f.rules, details: ir.GetDetails()}
}

func (p *processor) armTimerLocked(d time.Duration) {
	p.stopTimerLocked()
	gen := p.timerGen
	p.timer = time.AfterFunc(d, func() { p.onTimeout(gen) })
}

func (p *processor) stopTimerLocked() {
	p.timerGen++
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
}

// overrideTimeoutLocked honours override_message_timeout once per call, within
// [1ms, max_message_timeout] (Filter::onNewTimeout).
func (p *processor) overrideTimeoutLocked(d time.Duration) {
	if p.timer == nil || p.timeoutOverridden || d < time.Millisecond || d > p.f.maxMessageTimeout {
		return
	}
	p.timeoutOverridden = true
	p.armTimerLocked(d)
}

// onTimeout is Filter::onMessageTimeout: 504 when failing closed, otherwise the rest of the
// request goes on without ext_proc.
func (p *processor) onTimeout(gen uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.complete || gen != p.timerGen {
		return
	}
	if p.failureModeAllow {
		p.passAllLocked()
		return
	}
	p.terminalLocked(&localReply{status: 504, details: "ext_proc_error_per-message_timeout_exceeded"})
}

// terminalLocked ends processing with a local reply. With nobody waiting, the reply
// interrupts the request (Envoy sends it at once from the callback).
func (p *processor) terminalLocked(lr *localReply) {
	waiters := p.endLocked()
	if len(waiters) == 0 {
		go p.host.abort(lr)
		return
	}
	for _, ch := range waiters {
		ch <- outcome{reply: lr}
	}
}

func (p *processor) passAllLocked() {
	for _, ch := range p.endLocked() {
		ch <- outcome{pass: true}
	}
}

func (p *processor) endLocked() []chan outcome {
	p.complete = true
	p.stopTimerLocked()
	p.closeLocked()
	waiters := append(p.waiters[dirRequest], p.waiters[dirResponse]...)
	p.waiters = [2][]chan outcome{}
	p.state = [2]cbState{}
	return waiters
}

func (p *processor) closeLocked() {
	if p.stream == nil || p.cancel == nil {
		return
	}
	stream, cancel := p.stream, p.cancel
	p.cancel = nil
	go func() {
		p.sendMu.Lock()
		_ = stream.CloseSend()
		p.sendMu.Unlock()
		cancel()
	}()
}

// close ends the stream when the filter is destroyed.
func (p *processor) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.complete = true
	p.stopTimerLocked()
	p.closeLocked()
}

// fail ends processing with a local reply the data path returns itself.
func (p *processor) fail(lr *localReply) *localReply {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ch := range p.endLocked() {
		ch <- outcome{reply: lr}
	}
	return lr
}

func (p *processor) errorReply(err error) *localReply {
	return p.fail(&localReply{status: p.f.statusOnError, details: err.Error()})
}

// process runs one direction through the filter: headers, then the body in the current
// mode. body is nil when the headers ended the stream. It returns the body that continues
// down the chain.
func (p *processor) process(dir int, h *headerMap, body bodySource, limit uint64) (bodySource, error) {
	mode, complete := p.snapshot(dir)
	if complete {
		return body, nil
	}
	replaced, newBody, err := p.headers(dir, h, body == nil, mode)
	if err != nil {
		return nil, err
	}
	if replaced {
		if body != nil {
			go drain(body)
		}
		return bytesSource(newBody), nil
	}
	mode, complete = p.snapshot(dir)
	if body == nil || complete {
		return body, nil
	}
	switch mode.body {
	case extprocfilterv3.ProcessingMode_BUFFERED:
		data, err := readAll(body, limit)
		if errors.Is(err, errOverLimit) {
			// The filter manager's buffer overflowed: 413 for a request, 500 for a response.
			if dir == dirRequest {
				return nil, &replyError{&localReply{status: 413, body: []byte("Payload Too Large"), details: "request_payload_too_large"}}
			}
			return nil, &replyError{&localReply{status: 500, body: []byte("Internal Server Error"), details: "response_payload_too_large"}}
		}
		if err != nil {
			return nil, err
		}
		out, err := p.bufferedBody(dir, h, data)
		if err != nil {
			return nil, err
		}
		return bytesSource(out), nil
	case extprocfilterv3.ProcessingMode_STREAMED:
		return p.streamed(dir, body), nil
	}
	return body, nil
}

// headers sends a headers message and applies the answer. It reports whether
// CONTINUE_AND_REPLACE replaced the body.
func (p *processor) headers(dir int, h *headerMap, endStream bool, mode dirMode) (bool, []byte, error) {
	if !mode.sendHeaders {
		if p.removesContentLength(mode) {
			h.remove("content-length")
		}
		if dir == dirResponse && mode.body == extprocfilterv3.ProcessingMode_NONE {
			// Nothing left to process on this stream (encoding_state_.noExternalProcess()).
			p.close()
		}
		return false, nil, nil
	}
	ch, lr := p.call(dir, cbHeaders, func(req *extprocv3.ProcessingRequest) {
		hh := &extprocv3.HttpHeaders{Headers: h.toProto(), EndOfStream: endStream}
		if dir == dirRequest {
			req.Request = &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: hh}
		} else {
			req.Request = &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: hh}
		}
	})
	if lr != nil {
		return false, nil, &replyError{lr}
	}
	if ch == nil {
		return false, nil, nil
	}
	// Envoy drops content-length as soon as the headers message is out, before the answer.
	if p.removesContentLength(mode) {
		h.remove("content-length")
	}
	o, err := p.wait(ch)
	if err != nil {
		return false, nil, err
	}
	if o.reply != nil {
		return false, nil, &replyError{o.reply}
	}
	if o.pass {
		return false, nil, nil
	}
	common := o.resp.GetRequestHeaders().GetResponse()
	if dir == dirResponse {
		common = o.resp.GetResponseHeaders().GetResponse()
	}
	replacing := common.GetStatus() == extprocv3.CommonResponse_CONTINUE_AND_REPLACE
	if common.GetHeaderMutation() != nil {
		now, _ := p.snapshot(dir)
		if err := applyHeaderMutation(common.GetHeaderMutation(), h, replacing, &p.f.rules, p.removesContentLength(now)); err != nil {
			return false, nil, &replyError{p.errorReply(err)}
		}
	}
	p.maybeClearRouteCache(dir, common)
	if !replacing {
		return false, nil, nil
	}
	// CONTINUE_AND_REPLACE: nothing more is sent for this direction.
	p.mu.Lock()
	p.modes[dir].body = extprocfilterv3.ProcessingMode_NONE
	p.mu.Unlock()
	if common.GetBodyMutation() == nil {
		return false, nil, nil
	}
	h.remove("content-length")
	return true, applyBodyMutation(common.GetBodyMutation(), nil), nil
}

// maybeClearRouteCache follows DecodingProcessorState::clearRouteCache: request direction
// only, never in an upstream filter, and only with a header_mutation in the same response.
func (p *processor) maybeClearRouteCache(dir int, common *extprocv3.CommonResponse) {
	if dir != dirRequest || p.f.upstream || common.GetHeaderMutation() == nil {
		return
	}
	switch p.f.routeCacheAction {
	case extprocfilterv3.ExternalProcessor_CLEAR:
		p.host.clearRouteCache()
	case extprocfilterv3.ExternalProcessor_DEFAULT:
		if common.GetClearRouteCache() {
			p.host.clearRouteCache()
		}
	}
}

// bufferedBody sends the whole body (BUFFERED) and applies the answer. The headers are
// still held, so header mutations apply, and a content-length that disagrees with a
// replaced body fails the request (ProcessorState::handleBodyResponse).
func (p *processor) bufferedBody(dir int, h *headerMap, body []byte) ([]byte, error) {
	ch, lr := p.call(dir, cbBufferedBody, func(req *extprocv3.ProcessingRequest) {
		hb := &extprocv3.HttpBody{Body: body, EndOfStream: true}
		if dir == dirRequest {
			req.Request = &extprocv3.ProcessingRequest_RequestBody{RequestBody: hb}
		} else {
			req.Request = &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: hb}
		}
	})
	if lr != nil {
		return nil, &replyError{lr}
	}
	if ch == nil {
		return body, nil
	}
	o, err := p.wait(ch)
	if err != nil {
		return nil, err
	}
	if o.reply != nil {
		return nil, &replyError{o.reply}
	}
	if o.pass {
		return body, nil
	}
	common := o.resp.GetRequestBody().GetResponse()
	if dir == dirResponse {
		common = o.resp.GetResponseBody().GetResponse()
	}
	if common.GetHeaderMutation() != nil {
		now, _ := p.snapshot(dir)
		if err := applyHeaderMutation(common.GetHeaderMutation(), h, false, &p.f.rules, p.removesContentLength(now)); err != nil {
			return nil, &replyError{p.errorReply(err)}
		}
	}
	if bm := common.GetBodyMutation(); bm != nil {
		if cl, ok := h.get("content-length"); ok {
			if n, err := strconv.ParseUint(cl, 10, 64); err == nil && n != uint64(len(bm.GetBody())) {
				return nil, &replyError{p.errorReply(errors.New("mismatch between content length and the length of the mutated body"))}
			}
		}
		body = applyBodyMutation(bm, body)
	}
	p.maybeClearRouteCache(dir, common)
	return body, nil
}

func applyBodyMutation(m *extprocv3.BodyMutation, body []byte) []byte {
	switch x := m.GetMutation().(type) {
	case *extprocv3.BodyMutation_Body:
		return append([]byte(nil), x.Body...)
	case *extprocv3.BodyMutation_ClearBody:
		if x.ClearBody {
			return nil
		}
	}
	return body
}

// streamed pipelines body chunks (STREAMED): each chunk goes out as it arrives, answers
// come back in order, and each answer applies to the oldest outstanding chunk.
func (p *processor) streamed(dir int, in bodySource) bodySource {
	s := &streamedSource{p: p, dir: dir, items: make(chan streamItem, 64)}
	go func() {
		defer close(s.items)
		for {
			data, end, err := in.next()
			if err != nil {
				s.push(streamItem{err: err})
				return
			}
			ch, lr := p.call(dir, cbStreamedBody, func(req *extprocv3.ProcessingRequest) {
				hb := &extprocv3.HttpBody{Body: data, EndOfStream: end}
				if dir == dirRequest {
					req.Request = &extprocv3.ProcessingRequest_RequestBody{RequestBody: hb}
				} else {
					req.Request = &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: hb}
				}
			})
			if !s.push(streamItem{data: data, end: end, ch: ch, reply: lr}) || end || lr != nil {
				return
			}
		}
	}()
	return s
}

// push queues an item for the consumer; it gives up when the request is gone, so a
// consumer that stopped reading cannot strand the sender.
func (s *streamedSource) push(it streamItem) bool {
	select {
	case s.items <- it:
		return true
	case <-s.p.host.done():
		return false
	}
}

type streamItem struct {
	data  []byte
	end   bool
	ch    <-chan outcome
	reply *localReply
	err   error
}

type streamedSource struct {
	p     *processor
	dir   int
	items chan streamItem
}

func (s *streamedSource) next() ([]byte, bool, error) {
	it, ok := <-s.items
	if !ok {
		return nil, true, nil
	}
	switch {
	case it.err != nil:
		return nil, false, it.err
	case it.reply != nil:
		return nil, false, &replyError{it.reply}
	case it.ch == nil:
		return it.data, it.end, nil
	}
	o, err := s.p.wait(it.ch)
	if err != nil {
		return nil, false, err
	}
	if o.reply != nil {
		return nil, false, &replyError{o.reply}
	}
	if o.pass {
		return it.data, it.end, nil
	}
	common := o.resp.GetRequestBody().GetResponse()
	if s.dir == dirResponse {
		common = o.resp.GetResponseBody().GetResponse()
	}
	data := it.data
	if bm := common.GetBodyMutation(); bm != nil {
		data = applyBodyMutation(bm, data)
	}
	s.p.maybeClearRouteCache(s.dir, common)
	return data, it.end, nil
}

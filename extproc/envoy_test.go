package extproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/tollgate-dev/tollgate/config"
)

// This file plays Envoy's side of ext_proc over a real gRPC connection on a unix socket:
// the message sequence, the protocol_config in the first message and raw_value headers
// are what Envoy sends.

const (
	masterKey = "sk-master-0123456789"
	scopedKey = "sk-scoped"
)

// testConfig is the seed article's config plus deployments the tests need: a second
// deployment of gpt-5.5 on Azure, a chat-only provider and an embedding model in an
// access group.
func testConfig() *config.Config {
	return &config.Config{
		Deployments: []*config.Deployment{
			{ID: "gpt-5.5-0", Alias: "gpt-5.5", Provider: "openai", Model: "gpt-5.5", APIBase: "https://api.openai.com/v1", APIKey: "sk-openai-secret", Organization: "org-1"},
			{ID: "gpt-5.5-1", Alias: "gpt-5.5", Provider: "azure", Model: "gpt55-eastus", APIBase: "https://tg.openai.azure.com", APIKey: "azure-secret", APIVersion: "2024-10-21"},
			{ID: "local-llama-0", Alias: "local-llama", Provider: "ollama", Model: "llama3.1", APIBase: "http://ollama:11434"},
			{ID: "fast-0", Alias: "fast", Provider: "groq", Model: "llama-3.1-8b-instant", APIKey: "gsk-secret"},
			{ID: "embedder-0", Alias: "embedder", Provider: "openai", Model: "text-embedding-3-small", APIBase: "https://api.openai.com/v1", APIKey: "sk-openai-secret",
				Info: config.ModelInfo{AccessGroups: []string{"cheap"}}},
		},
		MaxRequestBytes: 4096,
		KeyHeader:       "X-Litellm-Api-Key",
	}
}

// fakeAuth knows the master key and a few virtual keys, and fails the way a key store
// does for the others.
type fakeAuth struct {
	master *MasterKey
	keys   map[string]*Principal
	errs   map[string]error
}

func newFakeAuth() *fakeAuth {
	return &fakeAuth{
		master: NewMasterKey(masterKey),
		keys: map[string]*Principal{
			scopedKey: {KeyHash: "hash-scoped", Models: []string{"local-llama", "cheap"}},
		},
		errs: map[string]error{
			"sk-expired": fmt.Errorf("%w: it expired at 2026-01-01T00:00:00Z", ErrKeyExpired),
			"sk-blocked": fmt.Errorf("%w: an admin blocked it", ErrKeyBlocked),
			"sk-redis":   errors.New("dial tcp 127.0.0.1:6379: connection refused"),
		},
	}
}

func (f *fakeAuth) Authenticate(ctx context.Context, key string) (*Principal, error) {
	if err := f.errs[key]; err != nil {
		return nil, err
	}
	if p := f.keys[key]; p != nil {
		return p, nil
	}
	return f.master.Authenticate(ctx, key)
}

// startServer serves a Server for cfg on a unix socket and returns a client of it.
func startServer(t testing.TB, cfg *config.Config, auth Authenticator) (*Server, extprocv3.ExternalProcessorClient) {
	t.Helper()
	return startServerDeps(t, cfg, Deps{Auth: auth})
}

// startServerDeps is startServer with every dependency given.
func startServerDeps(t testing.TB, cfg *config.Config, deps Deps) (*Server, extprocv3.ExternalProcessorClient) {
	t.Helper()
	s, err := New(cfg, deps, nil)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "s")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(s.ServerOptions()...)
	s.Register(g)
	go g.Serve(l)
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return s, extprocv3.NewExternalProcessorClient(conn)
}

// envoyStream is one ext_proc stream as Envoy drives it.
type envoyStream struct {
	t      testing.TB
	stream extprocv3.ExternalProcessor_ProcessClient
	sent   bool
}

// routerStream opens a stream the way the router-level filter does.
func routerStream(t testing.TB, c extprocv3.ExternalProcessorClient) *envoyStream {
	return openStream(t, c, "x-tollgate-stage", "router")
}

// upstreamStream opens a stream the way deployment id's upstream filter does.
func upstreamStream(t testing.TB, c extprocv3.ExternalProcessorClient, id string) *envoyStream {
	return openStream(t, c, headerDeployment, id)
}

func openStream(t testing.TB, c extprocv3.ExternalProcessorClient, md ...string) *envoyStream {
	t.Helper()
	ctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(context.Background(), md...))
	t.Cleanup(cancel)
	stream, err := c.Process(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &envoyStream{t: t, stream: stream}
}

// send sends one message and returns the processor's answer to it. The first message
// carries protocol_config, as Envoy's does.
func (e *envoyStream) send(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
	e.t.Helper()
	if !e.sent {
		req.ProtocolConfig = &extprocv3.ProtocolConfiguration{
			RequestBodyMode:  extprocfilterv3.ProcessingMode_BUFFERED,
			ResponseBodyMode: extprocfilterv3.ProcessingMode_BUFFERED,
		}
		e.sent = true
	}
	if err := e.stream.Send(req); err != nil {
		e.t.Fatalf("send: %v", err)
	}
	resp, err := e.stream.Recv()
	if err != nil {
		e.t.Fatalf("recv: %v", err)
	}
	return resp
}

func headerMap(kv []string) *corev3.HeaderMap {
	m := &corev3.HeaderMap{}
	for i := 0; i+1 < len(kv); i += 2 {
		m.Headers = append(m.Headers, &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])})
	}
	return m
}

func requestHeaders(eos bool, kv ...string) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
		RequestHeaders: &extprocv3.HttpHeaders{Headers: headerMap(kv), EndOfStream: eos}}}
}

func requestBody(body string) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{
		RequestBody: &extprocv3.HttpBody{Body: []byte(body), EndOfStream: true}}}
}

func responseHeaders(eos bool, kv ...string) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{
		ResponseHeaders: &extprocv3.HttpHeaders{Headers: headerMap(kv), EndOfStream: eos}}}
}

func responseBody(body string, eos bool) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{
		ResponseBody: &extprocv3.HttpBody{Body: []byte(body), EndOfStream: eos}}}
}

// post is a client's POST to path with the given extra headers.
func post(path string, kv ...string) *extprocv3.ProcessingRequest {
	return requestHeaders(false, append([]string{
		":method", "POST", ":path", path, ":scheme", "https", ":authority", "gateway.example",
		"content-type", "application/json", "x-request-id", "req-1",
	}, kv...)...)
}

// get is a client's GET of path with the given extra headers.
func get(path string, kv ...string) *extprocv3.ProcessingRequest {
	return requestHeaders(true, append([]string{
		":method", "GET", ":path", path, ":scheme", "https", ":authority", "gateway.example", "x-request-id", "req-1",
	}, kv...)...)
}

// outcome is a ProcessingResponse reduced to what a test asserts on.
type outcome struct {
	Phase           string // which response oneof, or "immediate"
	Status          int    // immediate responses
	Set             map[string]string
	Remove          []string
	Body            *string // replaced body (immediate body for immediate responses)
	ClearBody       bool
	ClearRouteCache bool
	StreamedBody    bool // mode_override switched the response body to STREAMED
}

func summarize(r *extprocv3.ProcessingResponse) outcome {
	var o outcome
	var common *extprocv3.CommonResponse
	switch v := r.Response.(type) {
	case *extprocv3.ProcessingResponse_RequestHeaders:
		o.Phase, common = "request_headers", v.RequestHeaders.GetResponse()
	case *extprocv3.ProcessingResponse_RequestBody:
		o.Phase, common = "request_body", v.RequestBody.GetResponse()
	case *extprocv3.ProcessingResponse_ResponseHeaders:
		o.Phase, common = "response_headers", v.ResponseHeaders.GetResponse()
	case *extprocv3.ProcessingResponse_ResponseBody:
		o.Phase, common = "response_body", v.ResponseBody.GetResponse()
	case *extprocv3.ProcessingResponse_ImmediateResponse:
		o.Phase = "immediate"
		o.Status = int(v.ImmediateResponse.GetStatus().GetCode())
		o.Set = setHeaders(v.ImmediateResponse.GetHeaders())
		b := string(v.ImmediateResponse.GetBody())
		o.Body = &b
		return o
	default:
		o.Phase = "unexpected"
	}
	if common.GetStatus() != extprocv3.CommonResponse_CONTINUE {
		o.Phase += "/" + common.GetStatus().String()
	}
	o.Set = setHeaders(common.GetHeaderMutation())
	o.Remove = common.GetHeaderMutation().GetRemoveHeaders()
	sort.Strings(o.Remove)
	switch m := common.GetBodyMutation().GetMutation().(type) {
	case *extprocv3.BodyMutation_Body:
		b := string(m.Body)
		o.Body = &b
	case *extprocv3.BodyMutation_ClearBody:
		o.ClearBody = m.ClearBody
	}
	o.ClearRouteCache = common.GetClearRouteCache()
	o.StreamedBody = r.GetModeOverride().GetResponseBodyMode() == extprocfilterv3.ProcessingMode_STREAMED
	return o
}

// setHeaders collects a mutation's set_headers; it fails on entries Envoy would reject or
// misread (value instead of raw_value, append).
func setHeaders(m *extprocv3.HeaderMutation) map[string]string {
	if len(m.GetSetHeaders()) == 0 {
		return nil
	}
	out := map[string]string{}
	for _, h := range m.GetSetHeaders() {
		if h.GetHeader().GetValue() != "" || h.GetAppend().GetValue() {
			out["INVALID:"+h.GetHeader().GetKey()] = h.String()
			continue
		}
		out[h.GetHeader().GetKey()] = string(h.GetHeader().GetRawValue())
	}
	return out
}

func ptr(s string) *string { return &s }

// applyMutation changes headers the way Envoy applies a header mutation: removals first,
// then sets, each replacing the header.
func applyMutation(headers map[string]string, m *extprocv3.HeaderMutation) {
	for _, k := range m.GetRemoveHeaders() {
		delete(headers, k)
	}
	for _, h := range m.GetSetHeaders() {
		headers[h.GetHeader().GetKey()] = string(h.GetHeader().GetRawValue())
	}
}

// flatten turns a header map into the key/value list the message builders take, sorted
// so runs are reproducible.
func flatten(headers map[string]string) []string {
	keys := make([]string, 0, len(headers))
	for k := range headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var kv []string
	for _, k := range keys {
		kv = append(kv, k, headers[k])
	}
	return kv
}

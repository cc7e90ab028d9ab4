package emulator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"text/template"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/tollgate-dev/tollgate/envoy"
)

// fakeExtProc is a hand-written ext_proc server on a real gRPC socket: each stream runs
// handle, and every message it receives is recorded.
type fakeExtProc struct {
	extprocv3.UnimplementedExternalProcessorServer
	addr   string
	handle func(s *fakeStream) error

	mu      sync.Mutex
	streams []*fakeStream
}

type fakeStream struct {
	srv extprocv3.ExternalProcessor_ProcessServer
	md  metadata.MD

	mu   sync.Mutex
	reqs []*extprocv3.ProcessingRequest
}

func (s *fakeStream) recv() (*extprocv3.ProcessingRequest, error) {
	r, err := s.srv.Recv()
	if err == nil {
		s.mu.Lock()
		s.reqs = append(s.reqs, r)
		s.mu.Unlock()
	}
	return r, err
}

func (s *fakeStream) send(r *extprocv3.ProcessingResponse) error { return s.srv.Send(r) }

func (s *fakeStream) requests() []*extprocv3.ProcessingRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*extprocv3.ProcessingRequest(nil), s.reqs...)
}

func (f *fakeExtProc) Process(srv extprocv3.ExternalProcessor_ProcessServer) error {
	md, _ := metadata.FromIncomingContext(srv.Context())
	s := &fakeStream{srv: srv, md: md}
	f.mu.Lock()
	f.streams = append(f.streams, s)
	f.mu.Unlock()
	return f.handle(s)
}

func (f *fakeExtProc) allStreams() []*fakeStream {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*fakeStream(nil), f.streams...)
}

func startExtProc(t *testing.T, handle func(s *fakeStream) error) *fakeExtProc {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeExtProc{addr: ln.Addr().String(), handle: handle}
	srv := grpc.NewServer()
	extprocv3.RegisterExternalProcessorServer(srv, f)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return f
}

// answer serves a stream by answering every message with fn (nil sends nothing).
func answer(fn func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse) func(s *fakeStream) error {
	return func(s *fakeStream) error {
		for {
			req, err := s.recv()
			if err != nil {
				return nil
			}
			if resp := fn(req); resp != nil {
				if err := s.send(resp); err != nil {
					return nil
				}
			}
		}
	}
}

// cont answers any message with the matching empty "continue" response.
func cont(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
	return withCommon(req, &extprocv3.CommonResponse{})
}

// withCommon answers req with the matching response type carrying common.
func withCommon(req *extprocv3.ProcessingRequest, common *extprocv3.CommonResponse) *extprocv3.ProcessingResponse {
	switch req.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{Response: common}}}
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{Response: common}}}
	case *extprocv3.ProcessingRequest_RequestBody:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{Response: common}}}
	case *extprocv3.ProcessingRequest_ResponseBody:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{Response: common}}}
	}
	return nil
}

func setHeaders(kv ...string) *extprocv3.HeaderMutation {
	m := &extprocv3.HeaderMutation{}
	for i := 0; i+1 < len(kv); i += 2 {
		m.SetHeaders = append(m.SetHeaders, &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])}})
	}
	return m
}

// headerOf returns a header of a headers message.
func headerOf(hh *extprocv3.HttpHeaders, key string) (string, bool) {
	for _, h := range hh.GetHeaders().GetHeaders() {
		if h.GetKey() == key {
			return string(h.GetRawValue()), true
		}
	}
	return "", false
}

// upstream is an httptest server that records the requests it serves.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []recordedRequest
}

type recordedRequest struct {
	header http.Header
	body   string
	host   string
	path   string
}

func startUpstream(t *testing.T, h http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, recordedRequest{header: r.Header.Clone(), body: string(body), host: r.Host, path: r.URL.RequestURI()})
		u.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) requests() []recordedRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]recordedRequest(nil), u.reqs...)
}

func (u *upstream) hostPort() string { return strings.TrimPrefix(u.URL, "http://") }

func reply(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// bootstrap renders a test envoy.yaml: one listener with the given ext_proc filters, one
// virtual host and the given clusters. Snippets are written unindented.
type bootstrap struct {
	Filters  []string
	VHost    string // extra virtual host fields
	Routes   []string
	Clusters []string
	HCM      string // extra connection manager fields
	Listener string // extra listener fields
}

var bootstrapTmpl = template.Must(template.New("b").Funcs(template.FuncMap{"indent": indent}).Parse(`static_resources:
  listeners:
  - name: main
    address: {socket_address: {address: 127.0.0.1, port_value: 10000}}
{{indent 4 .Listener}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: test
{{indent 10 .HCM}}
          route_config:
            name: local
            virtual_hosts:
            - name: vh
              domains: ["*"]
{{indent 14 .VHost}}
              routes:
{{range .Routes}}{{indent 14 .}}
{{end}}          http_filters:
{{range .Filters}}{{indent 10 .}}
{{end}}          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
{{range .Clusters}}{{indent 2 .}}
{{end}}`))

func indent(n int, s string) string {
	pad := strings.Repeat(" ", n)
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = pad + l
		}
	}
	return strings.Join(lines, "\n")
}

func (b bootstrap) yaml(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := bootstrapTmpl.Execute(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// start compiles and serves b, returning the emulator's base URL.
func (b bootstrap) start(t *testing.T) string {
	t.Helper()
	bs, err := envoy.Parse(b.yaml(t))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, b.yaml(t))
	}
	e, err := New(bs, Options{ListenOverride: "127.0.0.1:0", Logger: testLogger()})
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = e.Close()
	})
	return "http://" + e.Addr()
}

func testLogger() *slog.Logger {
	if os.Getenv("EMULATOR_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

// extProcFilter renders a router-level or upstream ext_proc filter.
func extProcYAML(name, cluster, mode string, extra ...string) string {
	s := fmt.Sprintf(`- name: %s
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor
    grpc_service: {envoy_grpc: {cluster_name: %s}}
    processing_mode: %s
`, name, cluster, mode)
	for _, e := range extra {
		s += "    " + e + "\n"
	}
	return s
}

func grpcCluster(name, addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	return fmt.Sprintf(`- name: %s
  type: STATIC
  load_assignment:
    cluster_name: %s
    endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: %s, port_value: %s}}}}]}]
  typed_extension_protocol_options:
    envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
      "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
      explicit_http_config: {http2_protocol_options: {}}
`, name, name, host, port)
}

// httpCluster renders an HTTP/1.1 cluster; filters are upstream ext_proc filters.
func httpCluster(name, addr string, filters ...string) string {
	host, port, _ := net.SplitHostPort(addr)
	s := fmt.Sprintf(`- name: %s
  type: STATIC
  connect_timeout: 1s
  load_assignment:
    cluster_name: %s
    endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: %s, port_value: %s}}}}]}]
`, name, name, host, port)
	if len(filters) > 0 {
		s += `  typed_extension_protocol_options:
    envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
      "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
      explicit_http_config: {http_protocol_options: {}}
      http_filters:
`
		for _, f := range filters {
			s += indent(6, f) + "\n"
		}
		s += `      - name: envoy.filters.http.upstream_codec
        typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec}
`
	}
	return s
}

func do(t *testing.T, method, url, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatal(err)
	}
	return resp, string(b)
}

package emulator

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/tollgate-dev/tollgate/envoy"
)

// Each test here reproduces one Envoy behaviour tollgate relies on, with its own fake
// ext_proc server over real gRPC and real HTTP upstreams. The comment on each names the
// Envoy source it follows (paths in the envoyproxy/envoy repository).

const (
	modeReqBuffered  = `{request_header_mode: SEND, response_header_mode: SKIP, request_body_mode: BUFFERED}`
	modeHeadersOnly  = `{request_header_mode: SEND, response_header_mode: SKIP}`
	routeToUp        = "- match: {prefix: \"/\"}\n  route: {cluster: up}"
	priorityGroupsAB = `- match: {prefix: "/"}
  route:
    inline_cluster_specifier_plugin:
      extension:
        name: envoy.router.cluster_specifier_plugin.priority_group
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.router.cluster_specifiers.priority_group.v3.PriorityGroupClusterSpecifier
          override_metadata_namespace: tollgate
          priority_groups:
          - {name: a, clusters: [{cluster_name: a, weight: 1}]}
          - {name: b, clusters: [{cluster_name: b, weight: 1}]}
    retry_policy: {retry_on: "%s", retriable_status_codes: [429], num_retries: 1, refresh_cluster_on_retry: true, retry_back_off: {base_interval: 0.001s}}
  response_headers_to_add: [{header: {key: x-deployment, value: "%%UPSTREAM_CLUSTER%%"}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}]`
)

// upstreamExtProc renders the per-attempt ext_proc filter of a deployment cluster.
func upstreamExtProc(deployment string) string {
	return fmt.Sprintf(`- name: tollgate_upstream
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor
    grpc_service: {envoy_grpc: {cluster_name: extproc}, initial_metadata: [{key: x-deployment, value: %s}]}
    processing_mode: {request_header_mode: SEND, response_header_mode: SKIP, request_body_mode: BUFFERED, response_body_mode: NONE}
    request_attributes: [xds.cluster_name]
    message_timeout: 1s
    mutation_rules: {allow_all_routing: true}
`, deployment)
}

func bodyMutation(body string) *extprocv3.BodyMutation {
	return &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte(body)}}
}

// processor_state.cc (handleBodyResponse): in BUFFERED mode with headers SEND Envoy keeps
// content-length; a replaced body whose length disagrees with it fails the request
// ("mismatch between content length and the length of the mutated body").
func TestBufferedBodyReplacementChecksContentLength(t *testing.T) {
	tests := []struct {
		name       string
		mutation   *extprocv3.HeaderMutation
		wantStatus int
		wantBodies []string
	}{
		{name: "content-length set to the new length", mutation: setHeaders("content-length", "9"), wantStatus: 200, wantBodies: []string{"new-body!"}},
		{name: "stale content-length", wantStatus: 500},
		{name: "content-length removed", mutation: &extprocv3.HeaderMutation{RemoveHeaders: []string{"content-length"}}, wantStatus: 200, wantBodies: []string{"new-body!"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ep := startExtProc(t, answer(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				if req.GetRequestBody() != nil {
					return withCommon(req, &extprocv3.CommonResponse{HeaderMutation: tc.mutation, BodyMutation: bodyMutation("new-body!")})
				}
				return cont(req)
			}))
			up := startUpstream(t, reply(200, "ok"))
			url := bootstrap{
				Filters:  []string{extProcYAML("tollgate", "extproc", modeReqBuffered)},
				Routes:   []string{routeToUp},
				Clusters: []string{grpcCluster("extproc", ep.addr), httpCluster("up", up.hostPort())},
			}.start(t)
			resp, _ := do(t, "POST", url+"/v1/chat", "original")
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			var bodies []string
			for _, r := range up.requests() {
				bodies = append(bodies, r.body)
			}
			if diff := cmp.Diff(tc.wantBodies, bodies); diff != "" {
				t.Errorf("upstream bodies (-want +got):\n%s", diff)
			}
		})
	}
}

// processor_state.cc (DecodingProcessorState::clearRouteCache): clear_route_cache is
// ignored unless the same CommonResponse carries a header_mutation (an empty one is enough).
func TestClearRouteCacheRequiresHeaderMutation(t *testing.T) {
	tests := []struct {
		name   string
		common *extprocv3.CommonResponse
		want   string
	}{
		{name: "without header_mutation the cached route stays", common: &extprocv3.CommonResponse{ClearRouteCache: true}, want: "from-a"},
		{name: "with an empty header_mutation the route is re-evaluated", common: &extprocv3.CommonResponse{ClearRouteCache: true, HeaderMutation: &extprocv3.HeaderMutation{}}, want: "from-b"},
		{name: "no clear_route_cache", common: &extprocv3.CommonResponse{HeaderMutation: &extprocv3.HeaderMutation{}}, want: "from-a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ep := startExtProc(t, answer(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				switch {
				case req.GetRequestHeaders() != nil:
					// Sets the routing header without clearing the cache.
					return withCommon(req, &extprocv3.CommonResponse{HeaderMutation: setHeaders("x-route", "b")})
				case req.GetRequestBody() != nil:
					return withCommon(req, tc.common)
				}
				return cont(req)
			}))
			a := startUpstream(t, reply(200, "from-a"))
			b := startUpstream(t, reply(200, "from-b"))
			url := bootstrap{
				Filters: []string{extProcYAML("tollgate", "extproc", modeReqBuffered)},
				Routes: []string{
					"- match: {prefix: \"/\", headers: [{name: x-route, string_match: {exact: b}}]}\n  route: {cluster: b}",
					"- match: {prefix: \"/\"}\n  route: {cluster: a}",
				},
				Clusters: []string{grpcCluster("extproc", ep.addr), httpCluster("a", a.hostPort()), httpCluster("b", b.hostPort())},
			}.start(t)
			_, body := do(t, "POST", url+"/", "{}")
			if body != tc.want {
				t.Errorf("served by %q, want %q", body, tc.want)
			}
		})
	}
}

// ext_proc.cc (onReceiveMessage): a response that does not match the filter's state is
// spurious; fail-closed it ends the request with status_on_error (500), with
// failure_mode_allow the request continues without ext_proc.
func TestSpuriousMessage(t *testing.T) {
	tests := []struct {
		name       string
		extra      string
		wantStatus int
		wantHits   int
	}{
		{name: "fail closed", extra: "failure_mode_allow: false", wantStatus: 500},
		{name: "failure_mode_allow", extra: "failure_mode_allow: true", wantStatus: 200, wantHits: 1},
		{name: "status_on_error", extra: "status_on_error: {code: 503}", wantStatus: 503},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ep := startExtProc(t, answer(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				// A response_headers answer to a request_headers message.
				return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{}}}
			}))
			up := startUpstream(t, reply(200, "ok"))
			url := bootstrap{
				Filters:  []string{extProcYAML("tollgate", "extproc", modeHeadersOnly, tc.extra)},
				Routes:   []string{routeToUp},
				Clusters: []string{grpcCluster("extproc", ep.addr), httpCluster("up", up.hostPort())},
			}.start(t)
			resp, _ := do(t, "GET", url+"/", "")
			if resp.StatusCode != tc.wantStatus || len(up.requests()) != tc.wantHits {
				t.Errorf("status %d with %d upstream requests, want %d with %d", resp.StatusCode, len(up.requests()), tc.wantStatus, tc.wantHits)
			}
		})
	}
}

// router.cc (decodeHeaders): a cluster that does not exist, including the empty name of a
// missing cluster_header, gets the route's cluster_not_found_response_code, which
// defaults to 503 (route_components.proto), not 404.
func TestClusterHeader(t *testing.T) {
	up := startUpstream(t, reply(200, "ok"))
	tests := []struct {
		name       string
		route      string
		header     []string
		wantStatus int
	}{
		{name: "known cluster", route: "{cluster_header: x-cluster}", header: []string{"x-cluster", "up"}, wantStatus: 200},
		{name: "unknown cluster", route: "{cluster_header: x-cluster}", header: []string{"x-cluster", "nope"}, wantStatus: 503},
		{name: "missing header", route: "{cluster_header: x-cluster}", wantStatus: 503},
		{name: "unknown cluster with NOT_FOUND", route: "{cluster_header: x-cluster, cluster_not_found_response_code: NOT_FOUND}", header: []string{"x-cluster", "nope"}, wantStatus: 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url := bootstrap{
				Routes:   []string{"- match: {prefix: \"/\"}\n  route: " + tc.route},
				Clusters: []string{httpCluster("up", up.hostPort())},
			}.start(t)
			resp, _ := do(t, "GET", url+"/", "", tc.header...)
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.wantStatus)
			}
		})
	}
}

// conn_manager_utility.cc (cleanInternalHeaders) strips a client's x-envoy-max-retries;
// retry_state_impl.cc honours one set later by a filter, which ext_proc may only do with
// mutation_rules.allow_envoy (mutation_rules.cc).
func TestMaxRetriesHeader(t *testing.T) {
	tests := []struct {
		name      string
		client    bool
		filterSet bool
		allow     bool
		wantHits  int
	}{
		{name: "client header stripped", client: true, allow: true, wantHits: 1},
		{name: "filter header with allow_envoy", filterSet: true, allow: true, wantHits: 3},
		{name: "filter header without allow_envoy", filterSet: true, wantHits: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ep := startExtProc(t, answer(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				if req.GetRequestHeaders() != nil && tc.filterSet {
					return withCommon(req, &extprocv3.CommonResponse{HeaderMutation: setHeaders("x-envoy-max-retries", "2")})
				}
				return cont(req)
			}))
			up := startUpstream(t, reply(500, "boom"))
			extra := fmt.Sprintf("mutation_rules: {allow_envoy: %t}", tc.allow)
			var hdr []string
			if tc.client {
				hdr = []string{"x-envoy-max-retries", "2"}
			}
			url := bootstrap{
				Filters:  []string{extProcYAML("tollgate", "extproc", modeHeadersOnly, extra)},
				Routes:   []string{"- match: {prefix: \"/\"}\n  route: {cluster: up, retry_policy: {retry_on: 5xx, num_retries: 0, retry_back_off: {base_interval: 0.001s}}}"},
				Clusters: []string{grpcCluster("extproc", ep.addr), httpCluster("up", up.hostPort())},
			}.start(t)
			resp, _ := do(t, "GET", url+"/", "", hdr...)
			reqs := up.requests()
			if resp.StatusCode != 500 || len(reqs) != tc.wantHits {
				t.Fatalf("status %d after %d upstream requests, want 500 after %d", resp.StatusCode, len(reqs), tc.wantHits)
			}
			for _, r := range reqs {
				if v := r.header.Get("X-Envoy-Max-Retries"); v != "" {
					t.Errorf("upstream received x-envoy-max-retries %q; the router consumes it", v)
				}
			}
		})
	}
}

// ext_proc.cc (onReceiveMessage): mode_override is applied only with allow_mode_override
// and only while a headers response is awaited. Switched to STREAMED, response chunks
// reach the server as they arrive instead of as one buffered body.
func TestModeOverride(t *testing.T) {
	tests := []struct {
		name  string
		allow bool
		want  []string // the first and the last body message as "body|end_of_stream"
	}{
		// The last chunk may carry end_of_stream itself or come as an empty final frame.
		{name: "honoured with allow_mode_override", allow: true, want: []string{"a|false", "|true"}},
		{name: "ignored without allow_mode_override", allow: false, want: []string{"ab|true", "ab|true"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			firstChunk := make(chan struct{})
			var once sync.Once
			ep := startExtProc(t, answer(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				if req.GetResponseHeaders() != nil {
					r := cont(req)
					r.ModeOverride = &extprocfilterv3.ProcessingMode{ResponseBodyMode: extprocfilterv3.ProcessingMode_STREAMED}
					return r
				}
				if req.GetResponseBody() != nil {
					once.Do(func() { close(firstChunk) })
				}
				return cont(req)
			}))
			up := startUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, "a")
				w.(http.Flusher).Flush()
				if tc.allow {
					// The second chunk is only written once ext_proc has seen the first.
					select {
					case <-firstChunk:
					case <-r.Context().Done():
						return
					}
				}
				_, _ = io.WriteString(w, "b")
			})
			url := bootstrap{
				Filters: []string{extProcYAML("tollgate", "extproc", `{request_header_mode: SKIP, response_header_mode: SEND, response_body_mode: BUFFERED}`,
					fmt.Sprintf("allow_mode_override: %t", tc.allow))},
				Routes:   []string{routeToUp},
				Clusters: []string{grpcCluster("extproc", ep.addr), httpCluster("up", up.hostPort())},
			}.start(t)
			resp, body := do(t, "GET", url+"/", "")
			if resp.StatusCode != 200 || body != "ab" {
				t.Fatalf("got %d %q, want 200 \"ab\"", resp.StatusCode, body)
			}
			var msgs []*extprocv3.HttpBody
			for _, s := range ep.allStreams() {
				for _, r := range s.requests() {
					if b := r.GetResponseBody(); b != nil {
						msgs = append(msgs, b)
					}
				}
			}
			if len(msgs) == 0 {
				t.Fatal("no response body message")
			}
			first, last := msgs[0], msgs[len(msgs)-1]
			lastBody := string(last.GetBody())
			if len(msgs) > 1 {
				lastBody = "" // only its end_of_stream matters once chunks are split
			}
			got := []string{fmt.Sprintf("%s|%t", first.GetBody(), first.GetEndOfStream()), fmt.Sprintf("%s|%t", lastBody, last.GetEndOfStream())}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("response body messages (-want +got):\n%s", diff)
			}
		})
	}
}

// ext_proc.cc (sendImmediateResponse): an immediate_response ends processing with a local
// reply carrying its status, body and header mutation; the upstream is never contacted.
func TestImmediateResponse(t *testing.T) {
	ep := startExtProc(t, answer(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: &extprocv3.ImmediateResponse{
			Status:     &typev3.HttpStatus{Code: typev3.StatusCode_Forbidden},
			Body:       []byte(`{"error":"denied"}`),
			Headers:    setHeaders("content-type", "application/json", "x-reason", "key"),
			GrpcStatus: &extprocv3.GrpcStatus{Status: 7},
		}}}
	}))
	up := startUpstream(t, reply(200, "ok"))
	url := bootstrap{
		Filters:  []string{extProcYAML("tollgate", "extproc", modeHeadersOnly)},
		Routes:   []string{routeToUp},
		Clusters: []string{grpcCluster("extproc", ep.addr), httpCluster("up", up.hostPort())},
	}.start(t)
	resp, body := do(t, "GET", url+"/", "")
	got := fmt.Sprintf("%d %s %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("X-Reason"), body)
	if want := `403 application/json key {"error":"denied"}`; got != want || len(up.requests()) != 0 {
		t.Errorf("got %q with %d upstream requests, want %q with none", got, len(up.requests()), want)
	}
}

// ext_proc.cc (onMessageTimeout): no answer within message_timeout fails the request with
// 504 when failing closed; with failure_mode_allow the request continues without ext_proc.
func TestMessageTimeout(t *testing.T) {
	tests := []struct {
		name       string
		extra      string
		wantStatus int
	}{
		{name: "fail closed", wantStatus: 504},
		{name: "failure_mode_allow", extra: "failure_mode_allow: true", wantStatus: 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ep := startExtProc(t, answer(func(*extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse { return nil }))
			up := startUpstream(t, reply(200, "ok"))
			url := bootstrap{
				Filters:  []string{extProcYAML("tollgate", "extproc", modeHeadersOnly, "message_timeout: 0.05s", tc.extra)},
				Routes:   []string{routeToUp},
				Clusters: []string{grpcCluster("extproc", ep.addr), httpCluster("up", up.hostPort())},
			}.start(t)
			resp, _ := do(t, "GET", url+"/", "")
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.wantStatus)
			}
		})
	}
}

// ext_proc.cc (onGrpcError, onGrpcClose): a gRPC error fails closed with 500 unless
// failure_mode_allow; a clean close by the server means "continue without ext_proc".
func TestStreamEnd(t *testing.T) {
	tests := []struct {
		name       string
		end        error
		extra      string
		wantStatus int
	}{
		{name: "gRPC error fails closed", end: status.Error(codes.Internal, "boom"), wantStatus: 500},
		{name: "gRPC error with failure_mode_allow", end: status.Error(codes.Internal, "boom"), extra: "failure_mode_allow: true", wantStatus: 200},
		{name: "clean close continues", wantStatus: 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ep := startExtProc(t, func(s *fakeStream) error {
				if _, err := s.recv(); err != nil {
					return nil
				}
				return tc.end
			})
			up := startUpstream(t, reply(200, "ok"))
			url := bootstrap{
				Filters:  []string{extProcYAML("tollgate", "extproc", modeHeadersOnly, tc.extra)},
				Routes:   []string{routeToUp},
				Clusters: []string{grpcCluster("extproc", ep.addr), httpCluster("up", up.hostPort())},
			}.start(t)
			resp, _ := do(t, "GET", url+"/", "")
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.wantStatus)
			}
		})
	}
	t.Run("unreachable server fails closed", func(t *testing.T) {
		up := startUpstream(t, reply(200, "ok"))
		url := bootstrap{
			Filters:  []string{extProcYAML("tollgate", "extproc", modeHeadersOnly)},
			Routes:   []string{routeToUp},
			Clusters: []string{grpcCluster("extproc", deadAddr(t)), httpCluster("up", up.hostPort())},
		}.start(t)
		if resp, _ := do(t, "GET", url+"/", ""); resp.StatusCode != 500 {
			t.Errorf("status = %d, want 500", resp.StatusCode)
		}
	})
}

// upstreamFallback serves the priority-group configuration of the brief: deployment
// clusters a and b, each with a per-attempt upstream ext_proc filter.
func upstreamFallback(t *testing.T, ep *fakeExtProc, a, b string, retryOn string, routerFilters ...string) string {
	return bootstrap{
		Filters: routerFilters,
		Routes:  []string{fmt.Sprintf(priorityGroupsAB, retryOn)},
		Clusters: []string{
			grpcCluster("extproc", ep.addr),
			httpCluster("a", a, upstreamExtProc("a")),
			httpCluster("b", b, upstreamExtProc("b")),
		},
	}.start(t)
}

// Upstream ext_proc for the fallback tests: tags the shared header map with the
// deployment of the attempt and rewrites the body for it.
func deploymentTagger(s *fakeStream) error {
	dep := s.md.Get("x-deployment")[0]
	return answer(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
		switch {
		case req.GetRequestHeaders() != nil:
			return withCommon(req, &extprocv3.CommonResponse{HeaderMutation: setHeaders("x-seen-"+dep, "yes")})
		case req.GetRequestBody() != nil:
			body := "body-for-" + dep
			return withCommon(req, &extprocv3.CommonResponse{HeaderMutation: setHeaders("content-length", fmt.Sprint(len(body))), BodyMutation: bodyMutation(body)})
		}
		return cont(req)
	})(s)
}

// priority_group_cluster_specifier (priority_group.proto), router.cc (doRetry with
// refresh_cluster_on_retry) and upstream_request.cc: attempt 1 goes to group a, the retry
// to group b; every attempt runs a fresh upstream filter chain (its own ext_proc stream,
// fed the original buffered body) over the router's shared header map, so attempt 1's
// mutations are still there on attempt 2.
func TestPriorityGroupFallback(t *testing.T) {
	for _, firstStatus := range []int{500, 429} {
		t.Run(fmt.Sprint(firstStatus), func(t *testing.T) {
			ep := startExtProc(t, deploymentTagger)
			a := startUpstream(t, reply(firstStatus, "from-a"))
			b := startUpstream(t, reply(200, "from-b"))
			url := upstreamFallback(t, ep, a.hostPort(), b.hostPort(), "5xx,reset,connect-failure,retriable-status-codes")
			resp, body := do(t, "POST", url+"/v1/chat/completions", "hello")
			if resp.StatusCode != 200 || body != "from-b" || resp.Header.Get("X-Deployment") != "b" {
				t.Fatalf("got %d %q deployment %q, want 200 \"from-b\" b", resp.StatusCode, body, resp.Header.Get("X-Deployment"))
			}
			type seen struct{ SeenA, SeenB, Body string }
			var got []seen
			for _, r := range append(a.requests(), b.requests()...) {
				got = append(got, seen{r.header.Get("X-Seen-A"), r.header.Get("X-Seen-B"), r.body})
			}
			want := []seen{{"yes", "", "body-for-a"}, {"yes", "yes", "body-for-b"}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("upstream requests (-want +got):\n%s", diff)
			}
			type stream struct{ Deployment, Cluster, Body, SeenA string }
			var streams []stream
			for _, s := range ep.allStreams() {
				reqs := s.requests()
				if len(reqs) < 2 {
					t.Fatalf("stream %v got %d messages, want headers and body", s.md.Get("x-deployment"), len(reqs))
				}
				seenA, _ := headerOf(reqs[0].GetRequestHeaders(), "x-seen-a")
				streams = append(streams, stream{
					Deployment: s.md.Get("x-deployment")[0],
					Cluster:    reqs[0].GetAttributes()["envoy.filters.http.ext_proc"].GetFields()["xds.cluster_name"].GetStringValue(),
					Body:       string(reqs[1].GetRequestBody().GetBody()),
					SeenA:      seenA,
				})
			}
			wantStreams := []stream{{"a", "a", "hello", ""}, {"b", "b", "hello", "yes"}}
			if diff := cmp.Diff(wantStreams, streams); diff != "" {
				t.Errorf("upstream ext_proc streams (-want +got):\n%s", diff)
			}
		})
	}
}

// upstream_request.cc (UpstreamFilterManager::sendLocalReply): an upstream filter's local
// reply goes out through the downstream filter manager and is never retried, even with a
// retriable status.
func TestUpstreamImmediateResponseNotRetried(t *testing.T) {
	ep := startExtProc(t, answer(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: &extprocv3.ImmediateResponse{
			Status: &typev3.HttpStatus{Code: typev3.StatusCode_ServiceUnavailable}, Body: []byte("no credentials"),
		}}}
	}))
	a := startUpstream(t, reply(200, "from-a"))
	b := startUpstream(t, reply(200, "from-b"))
	url := upstreamFallback(t, ep, a.hostPort(), b.hostPort(), "5xx,retriable-status-codes")
	resp, body := do(t, "POST", url+"/", "hello")
	if resp.StatusCode != 503 || body != "no credentials" {
		t.Errorf("got %d %q, want 503 \"no credentials\"", resp.StatusCode, body)
	}
	if n := len(a.requests()) + len(b.requests()) + len(ep.allStreams()) - 1; n != 0 {
		t.Errorf("%d extra upstream requests or ext_proc streams, want a single attempt that never reached an upstream", n)
	}
}

// retry_state_impl.cc (wouldRetryFromReset): a connection failure is retried with
// connect-failure (or reset/5xx); without them the router answers 503.
func TestRetryOnConnectFailure(t *testing.T) {
	tests := []struct {
		name       string
		retryOn    string
		wantStatus int
		wantBody   string
	}{
		{name: "connect-failure", retryOn: "connect-failure", wantStatus: 200, wantBody: "from-b"},
		{name: "status codes only", retryOn: "retriable-status-codes", wantStatus: 503, wantBody: "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ep := startExtProc(t, deploymentTagger)
			b := startUpstream(t, reply(200, "from-b"))
			url := upstreamFallback(t, ep, deadAddr(t), b.hostPort(), tc.retryOn)
			resp, body := do(t, "POST", url+"/", "hello")
			if resp.StatusCode != tc.wantStatus || body != tc.wantBody {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, body, tc.wantStatus, tc.wantBody)
			}
		})
	}
}

// priority_group.proto (override_metadata_namespace): a filter's dynamic metadata
// replaces the groups for the request; a cluster that does not exist fails it like any
// unknown cluster (503), a malformed override falls back to the configured groups.
func TestPriorityGroupOverride(t *testing.T) {
	group := func(cluster string) *structpb.Struct {
		s, _ := structpb.NewStruct(map[string]any{"priority_groups": []any{
			map[string]any{"name": "x", "clusters": []any{map[string]any{"cluster_name": cluster, "weight": 1}}},
		}})
		return s
	}
	tests := []struct {
		name       string
		meta       *structpb.Struct
		wantStatus int
		wantBody   string
	}{
		{name: "override to b", meta: group("b"), wantStatus: 200, wantBody: "from-b"},
		{name: "unknown cluster", meta: group("nope"), wantStatus: 503},
		{name: "malformed", meta: &structpb.Struct{Fields: map[string]*structpb.Value{"priority_groups": structpb.NewStringValue("b")}}, wantStatus: 200, wantBody: "from-a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ep := startExtProc(t, func(s *fakeStream) error {
				if len(s.md.Get("x-deployment")) > 0 {
					return answer(cont)(s)
				}
				return answer(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
					r := withCommon(req, &extprocv3.CommonResponse{HeaderMutation: &extprocv3.HeaderMutation{}, ClearRouteCache: true})
					r.DynamicMetadata = &structpb.Struct{Fields: map[string]*structpb.Value{"tollgate": structpb.NewStructValue(tc.meta)}}
					return r
				})(s)
			})
			a := startUpstream(t, reply(200, "from-a"))
			b := startUpstream(t, reply(200, "from-b"))
			router := extProcYAML("tollgate", "extproc", modeHeadersOnly, "metadata_options: {receiving_namespaces: {untyped: [tollgate]}}")
			url := upstreamFallback(t, ep, a.hostPort(), b.hostPort(), "5xx", router)
			resp, body := do(t, "GET", url+"/", "")
			if resp.StatusCode != tc.wantStatus || (tc.wantBody != "" && body != tc.wantBody) {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, body, tc.wantStatus, tc.wantBody)
			}
		})
	}
}

// ext_proc.cc (mergePerRouteConfig): ExtProcPerRoute{disabled} skips every callback on that
// route, so no stream is opened.
func TestPerRouteDisabled(t *testing.T) {
	ep := startExtProc(t, answer(cont))
	up := startUpstream(t, reply(200, "ok"))
	url := bootstrap{
		Filters: []string{extProcYAML("tollgate", "extproc", modeHeadersOnly)},
		Routes: []string{`- match: {prefix: "/key/"}
  route: {cluster: up}
  typed_per_filter_config:
    tollgate: {"@type": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExtProcPerRoute, disabled: true}`, routeToUp},
		Clusters: []string{grpcCluster("extproc", ep.addr), httpCluster("up", up.hostPort())},
	}.start(t)
	do(t, "GET", url+"/key/info", "")
	if n := len(ep.allStreams()); n != 0 {
		t.Errorf("%d ext_proc streams on the disabled route, want 0", n)
	}
	do(t, "GET", url+"/v1/models", "")
	if n := len(ep.allStreams()); n != 1 {
		t.Errorf("%d ext_proc streams after an enabled route, want 1", n)
	}
}

// ext_proc.cc (STREAMED body mode): each chunk goes to the server as it arrives and its
// answer goes on downstream at once, so a server-sent event reaches the client before the
// upstream has produced the next one.
func TestServerSentEventsStreamChunkByChunk(t *testing.T) {
	ep := startExtProc(t, answer(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
		if b := req.GetResponseBody(); b != nil {
			return withCommon(req, &extprocv3.CommonResponse{BodyMutation: bodyMutation(strings.ToUpper(string(b.GetBody())))})
		}
		return cont(req)
	}))
	clientGotFirst := make(chan struct{})
	up := startUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-clientGotFirst:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "data: two\n\n")
	})
	url := bootstrap{
		Filters:  []string{extProcYAML("tollgate", "extproc", `{request_header_mode: SKIP, response_header_mode: SEND, response_body_mode: STREAMED}`)},
		Routes:   []string{routeToUp},
		Clusters: []string{grpcCluster("extproc", ep.addr), httpCluster("up", up.hostPort())},
	}.start(t)
	resp, err := http.Get(url + "/v1/chat/completions")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	readEvent := func() string {
		var ev string
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				t.Fatalf("read event: %v (so far %q)", err, ev)
			}
			ev += line
			if line == "\n" {
				return ev
			}
		}
	}
	if got := readEvent(); got != "DATA: ONE\n\n" {
		t.Fatalf("first event = %q", got)
	}
	close(clientGotFirst)
	if got := readEvent(); got != "DATA: TWO\n\n" {
		t.Fatalf("second event = %q", got)
	}
	if resp.ContentLength != -1 {
		t.Errorf("content-length %d, want none (ext_proc removes it in STREAMED mode)", resp.ContentLength)
	}
}

// ext_proc.cc (onData: StopIterationAndBuffer) and the filter manager's buffer limits: a
// BUFFERED body over the limit gets 413 for a request (the limit is the route's
// request_body_buffer_limit, inherited from the virtual host) and 500 for a response
// (per_connection_buffer_limit_bytes).
func TestBufferedBodyOverLimit(t *testing.T) {
	ep := startExtProc(t, answer(cont))
	up := startUpstream(t, reply(200, strings.Repeat("r", 4096)))
	url := bootstrap{
		Filters: []string{extProcYAML("tollgate", "extproc",
			`{request_header_mode: SEND, response_header_mode: SEND, request_body_mode: BUFFERED, response_body_mode: BUFFERED}`)},
		VHost:    "request_body_buffer_limit: 16",
		Listener: "per_connection_buffer_limit_bytes: 1024",
		Routes:   []string{routeToUp},
		Clusters: []string{grpcCluster("extproc", ep.addr), httpCluster("up", up.hostPort())},
	}.start(t)
	if resp, _ := do(t, "POST", url+"/", strings.Repeat("q", 100)); resp.StatusCode != 413 || len(up.requests()) != 0 {
		t.Errorf("request over limit: status %d after %d upstream requests, want 413 and none", resp.StatusCode, len(up.requests()))
	}
	if resp, _ := do(t, "POST", url+"/", "small"); resp.StatusCode != 500 {
		t.Errorf("response over limit: status %d, want 500", resp.StatusCode)
	}
}

// mutation_rules.cc (Checker) and mutation_utils.cc: ":" headers and host cannot be removed,
// routing headers need allow_all_routing, x-envoy-* needs allow_envoy, rejected mutations
// are ignored unless disallow_is_error, and only raw_value is read.
func TestHeaderMutationRules(t *testing.T) {
	tests := []struct {
		name       string
		rules      string
		mutation   *extprocv3.HeaderMutation
		wantStatus int
		want       string // host, path, x-envoy-foo, x-value-only, present x-value-only
	}{
		{name: "authority without allow_all_routing", mutation: setHeaders(":authority", "evil.example"), wantStatus: 200, want: "orig.example /p   false"},
		{name: "authority with allow_all_routing", rules: "allow_all_routing: true", mutation: setHeaders(":authority", "evil.example"), wantStatus: 200, want: "evil.example /p   false"},
		{name: "x-envoy without allow_envoy", mutation: setHeaders("x-envoy-foo", "1"), wantStatus: 200, want: "orig.example /p   false"},
		{name: "x-envoy with allow_envoy", rules: "allow_envoy: true", mutation: setHeaders("x-envoy-foo", "1"), wantStatus: 200, want: "orig.example /p 1  false"},
		{name: "remove :path ignored", mutation: &extprocv3.HeaderMutation{RemoveHeaders: []string{":path", "host"}}, wantStatus: 200, want: "orig.example /p   false"},
		{name: "value without raw_value", mutation: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-value-only", Value: "v"}}}}, wantStatus: 200, want: "orig.example /p   true"},
		{name: "disallow_is_error", rules: "disallow_is_error: true", mutation: setHeaders("x-envoy-foo", "1"), wantStatus: 500},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ep := startExtProc(t, answer(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				return withCommon(req, &extprocv3.CommonResponse{HeaderMutation: tc.mutation})
			}))
			up := startUpstream(t, reply(200, "ok"))
			url := bootstrap{
				Filters:  []string{extProcYAML("tollgate", "extproc", modeHeadersOnly, "mutation_rules: {"+tc.rules+"}")},
				Routes:   []string{routeToUp},
				Clusters: []string{grpcCluster("extproc", ep.addr), httpCluster("up", up.hostPort())},
			}.start(t)
			req, _ := http.NewRequest("GET", url+"/p", nil)
			req.Host = "orig.example"
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if tc.want == "" {
				return
			}
			r := up.requests()[0]
			_, present := r.header["X-Value-Only"]
			got := fmt.Sprintf("%s %s %s %s %t", r.host, r.path, r.header.Get("X-Envoy-Foo"), r.header.Get("X-Value-Only"), present)
			if got != tc.want {
				t.Errorf("upstream saw %q, want %q", got, tc.want)
			}
		})
	}
}

// conn_manager_utility.cc (mutateRequestHeaders): external clients lose their x-envoy
// control headers, x-request-id and x-forwarded-proto are added, and ext_proc receives
// lower-case keys with pseudo-headers, values in raw_value, protocol_config first.
func TestRequestHeaderSanitising(t *testing.T) {
	ep := startExtProc(t, answer(cont))
	up := startUpstream(t, reply(200, "ok"))
	url := bootstrap{
		Filters:  []string{extProcYAML("tollgate", "extproc", modeReqBuffered)},
		Routes:   []string{routeToUp},
		Clusters: []string{grpcCluster("extproc", ep.addr), httpCluster("up", up.hostPort())},
	}.start(t)
	do(t, "POST", url+"/v1/x?q=1", "{}", "X-Envoy-Retry-On", "5xx", "X-Envoy-Upstream-Rq-Timeout-Ms", "1", "X-Custom", "keep")
	r := up.requests()[0]
	if r.header.Get("X-Envoy-Retry-On") != "" || r.header.Get("X-Envoy-Upstream-Rq-Timeout-Ms") != "" {
		t.Errorf("client x-envoy headers reached the upstream: %v", r.header)
	}
	if r.header.Get("X-Request-Id") == "" || r.header.Get("X-Forwarded-Proto") != "http" || r.header.Get("X-Custom") != "keep" {
		t.Errorf("upstream headers %v, want x-request-id, x-forwarded-proto: http and x-custom", r.header)
	}
	first := ep.allStreams()[0].requests()[0]
	hh := first.GetRequestHeaders()
	path, _ := headerOf(hh, ":path")
	method, _ := headerOf(hh, ":method")
	custom, _ := headerOf(hh, "x-custom")
	got := fmt.Sprintf("%s %s %s %t %s", path, method, custom, hh.GetEndOfStream(), first.GetProtocolConfig().GetRequestBodyMode())
	if want := "/v1/x?q=1 POST keep false BUFFERED"; got != want {
		t.Errorf("ext_proc saw %q, want %q", got, want)
	}
	if first.GetMetadataContext() == nil {
		t.Error("metadata_context missing from the first message")
	}
}

// New refuses what it cannot emulate and reports every problem at once.
func TestNewRefusesUnsupportedConfig(t *testing.T) {
	b := bootstrap{
		Filters: []string{extProcYAML("tollgate", "extproc", `{request_body_mode: FULL_DUPLEX_STREAMED, request_trailer_mode: SEND}`)},
		Routes:  []string{"- match: {prefix: \"/\"}\n  route: {cluster: missing}"},
	}
	bs, err := envoy.Parse(b.yaml(t))
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(bs, Options{})
	if err == nil {
		t.Fatal("New accepted an unsupported configuration")
	}
	for _, want := range []string{"FULL_DUPLEX_STREAMED", "trailer mode SEND", `unknown cluster "missing"`, `unknown grpc cluster "extproc"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// selfSigned returns a PEM certificate and key for 127.0.0.1.
func selfSigned(t *testing.T) (certPEM, keyPEM []byte, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "emulator test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), pool
}

// Downstream TLS (DownstreamTlsContext with inline certificates, h2 over ALPN) and an
// HTTP/2 TLS upstream with sni and no validation_context, which Envoy does not verify.
func TestTLSAndHTTP2(t *testing.T) {
	certPEM, keyPEM, pool := selfSigned(t)
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprintf(w, "%s %s", r.Proto, r.TLS.ServerName)
	}))
	up.EnableHTTP2 = true
	up.StartTLS()
	t.Cleanup(up.Close)
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(up.URL, "https://"))
	cluster := fmt.Sprintf(`- name: up
  type: STATIC
  load_assignment:
    cluster_name: up
    endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: %s, port_value: %s}}}}]}]
  transport_socket:
    name: envoy.transport_sockets.tls
    typed_config: {"@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext, sni: api.example}
  typed_extension_protocol_options:
    envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
      "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
      explicit_http_config: {http2_protocol_options: {}}
`, host, port)
	b := bootstrap{Routes: []string{routeToUp}, Clusters: []string{cluster}}
	yaml := strings.Replace(string(b.yaml(t)), "    - filters:\n", fmt.Sprintf(`    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          common_tls_context:
            tls_certificates: [{certificate_chain: {inline_string: %q}, private_key: {inline_string: %q}}]
      filters:
`, certPEM, keyPEM), 1)
	bs, err := envoy.Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, yaml)
	}
	e, err := New(bs, Options{ListenOverride: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); _ = e.Close() })
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	resp, err := client.Get("https://" + e.Addr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	got := fmt.Sprintf("%s | %s", resp.Proto, body)
	if want := "HTTP/2.0 | HTTP/2.0 api.example"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// processor_state.cc (handleHeadersResponse): CONTINUE_AND_REPLACE in a headers response
// replaces the body, drops content-length and sends nothing more for that direction.
func TestContinueAndReplace(t *testing.T) {
	ep := startExtProc(t, answer(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
		return withCommon(req, &extprocv3.CommonResponse{Status: extprocv3.CommonResponse_CONTINUE_AND_REPLACE, BodyMutation: bodyMutation("replaced")})
	}))
	up := startUpstream(t, reply(200, "ok"))
	url := bootstrap{
		Filters:  []string{extProcYAML("tollgate", "extproc", modeReqBuffered)},
		Routes:   []string{routeToUp},
		Clusters: []string{grpcCluster("extproc", ep.addr), httpCluster("up", up.hostPort())},
	}.start(t)
	if resp, _ := do(t, "POST", url+"/", "original"); resp.StatusCode != 200 {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	r := up.requests()[0]
	if r.body != "replaced" || r.header.Get("Content-Length") != "" {
		t.Errorf("upstream got body %q content-length %q, want \"replaced\" and none", r.body, r.header.Get("Content-Length"))
	}
	if n := len(ep.allStreams()[0].requests()); n != 1 {
		t.Errorf("ext_proc got %d messages, want only the request headers", n)
	}
}

// router.cc (onPerTryTimeout, onResponseTimeout) and retry_state_impl.cc: a per-try
// timeout is a local reset, retried with 5xx; the route timeout answers 504.
func TestTimeouts(t *testing.T) {
	hang := func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	t.Run("per-try timeout retried on the next group", func(t *testing.T) {
		ep := startExtProc(t, deploymentTagger)
		a := startUpstream(t, hang)
		b := startUpstream(t, reply(200, "from-b"))
		url := bootstrap{
			Routes: []string{strings.Replace(fmt.Sprintf(priorityGroupsAB, "5xx"), "num_retries: 1,", "num_retries: 1, per_try_timeout: 0.5s,", 1)},
			Clusters: []string{grpcCluster("extproc", ep.addr), httpCluster("a", a.hostPort(), upstreamExtProc("a")),
				httpCluster("b", b.hostPort(), upstreamExtProc("b"))},
		}.start(t)
		if resp, body := do(t, "POST", url+"/", "hello"); resp.StatusCode != 200 || body != "from-b" {
			t.Errorf("got %d %q, want 200 \"from-b\"", resp.StatusCode, body)
		}
	})
	t.Run("route timeout", func(t *testing.T) {
		up := startUpstream(t, hang)
		url := bootstrap{
			Routes:   []string{"- match: {prefix: \"/\"}\n  route: {cluster: up, timeout: 0.05s}"},
			Clusters: []string{httpCluster("up", up.hostPort())},
		}.start(t)
		if resp, body := do(t, "GET", url+"/", ""); resp.StatusCode != 504 || body != "upstream request timeout" {
			t.Errorf("got %d %q, want 504 \"upstream request timeout\"", resp.StatusCode, body)
		}
	})
}

// router.cc (decodeData): a request body over the retry buffer limit
// (request_body_buffer_limit) makes the router give up on retries for that request.
func TestRetryBufferLimit(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		wantHits int
	}{
		{name: "within the limit", body: "small", wantHits: 2},
		{name: "over the limit", body: strings.Repeat("x", 100), wantHits: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := startUpstream(t, reply(500, "boom"))
			url := bootstrap{
				Routes:   []string{"- match: {prefix: \"/\"}\n  route: {cluster: up, retry_policy: {retry_on: 5xx, num_retries: 1, retry_back_off: {base_interval: 0.001s}}}\n  request_body_buffer_limit: 16"},
				Clusters: []string{httpCluster("up", up.hostPort())},
			}.start(t)
			resp, _ := do(t, "POST", url+"/", tc.body)
			if resp.StatusCode != 500 || len(up.requests()) != tc.wantHits {
				t.Errorf("status %d after %d attempts, want 500 after %d", resp.StatusCode, len(up.requests()), tc.wantHits)
			}
		})
	}
}

// With a validation_context Envoy checks the upstream chain against trusted_ca and, when
// listed, the subject alternative names (match_typed_subject_alt_names); a failed
// handshake is a connection failure (503).
func TestUpstreamCertificateValidation(t *testing.T) {
	certPEM, keyPEM, _ := selfSigned(t)
	otherPEM, _, _ := selfSigned(t)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewUnstartedServer(reply(200, "ok"))
	up.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	up.StartTLS()
	t.Cleanup(up.Close)
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(up.URL, "https://"))
	tests := []struct {
		name       string
		ca         []byte
		san        string
		wantStatus int
	}{
		{name: "trusted, IP SAN matches", ca: certPEM, san: "{san_type: IP_ADDRESS, matcher: {exact: 127.0.0.1}}", wantStatus: 200},
		{name: "trusted, DNS SAN missing", ca: certPEM, san: "{san_type: DNS, matcher: {exact: api.example}}", wantStatus: 503},
		{name: "untrusted", ca: otherPEM, san: "{san_type: IP_ADDRESS, matcher: {exact: 127.0.0.1}}", wantStatus: 503},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cluster := fmt.Sprintf(`- name: up
  type: STATIC
  load_assignment:
    cluster_name: up
    endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: %s, port_value: %s}}}}]}]
  transport_socket:
    name: envoy.transport_sockets.tls
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
      common_tls_context:
        validation_context:
          trusted_ca: {inline_string: %q}
          match_typed_subject_alt_names: [%s]
`, host, port, tc.ca, tc.san)
			url := bootstrap{Routes: []string{routeToUp}, Clusters: []string{cluster}}.start(t)
			if resp, _ := do(t, "GET", url+"/", ""); resp.StatusCode != tc.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.wantStatus)
			}
		})
	}
}

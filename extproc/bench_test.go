package extproc

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// benchRequest is a typical chat completion: a system prompt and a short conversation.
var benchRequest = `{"model":"gpt-5.5","messages":[` +
	`{"role":"system","content":"You are a helpful assistant. ` + strings.Repeat("Answer briefly and precisely. ", 12) + `"},` +
	`{"role":"user","content":"Summarize this in one line: ` + strings.Repeat("the quick brown fox jumps over the lazy dog ", 10) + `"},` +
	`{"role":"assistant","content":"A fox jumps over a dog."},` +
	`{"role":"user","content":"Shorter, please."}],"temperature":0.2,"max_tokens":64,"user":"bench"}`

const benchResponse = `{"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG","object":"chat.completion","created":1741570283,` +
	`"model":"gpt-5.5-2026-03-01","choices":[{"index":0,"message":{"role":"assistant","content":"Fox jumps dog.",` +
	`"refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":171,` +
	`"completion_tokens":5,"total_tokens":176,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},` +
	`"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,` +
	`"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_f9f4fb6dbf"}`

// benchMessages are the six messages Envoy sends for one non-streaming chat completion,
// in the order it sends them: router request headers and body, the upstream attempt's
// request headers and body, router response headers and body.
type benchMessages struct {
	routerReqHeaders, routerReqBody, upReqHeaders, upReqBody, respHeaders, respBody *extprocv3.ProcessingRequest
}

func newBenchMessages() benchMessages {
	m := benchMessages{
		routerReqHeaders: post("/v1/chat/completions", "authorization", "Bearer "+masterKey,
			"user-agent", "OpenAI/Python 2.1.0", "accept", "application/json", "accept-encoding", "gzip, deflate",
			"content-length", strconv.Itoa(len(benchRequest)), "x-forwarded-proto", "https"),
		routerReqBody: requestBody(benchRequest),
		upReqBody:     requestBody(benchRequest),
		respHeaders: responseHeaders(false, ":status", "200", "content-type", "application/json",
			"content-length", strconv.Itoa(len(benchResponse)), "openai-processing-ms", "412",
			"x-request-id", "req_abc", headerDeployment, "gpt-5.5-0"),
		respBody: responseBody(benchResponse, true),
	}
	up := routedHeaders(benchRequest)
	up["user-agent"] = "OpenAI/Python 2.1.0"
	m.upReqHeaders = requestHeaders(false, flatten(up)...)
	return m
}

// BenchmarkChatCompletion is one whole non-streaming request through the server over
// gRPC on a unix socket: both streams, all six messages. The server runs in a child
// process so that its CPU time per request (server-cpu-ns/op: what the performance
// budget limits) is measured apart from the client's, which plays Envoy; ns/op and
// allocs/op are the client's and the round trips'.
func BenchmarkChatCompletion(b *testing.B) {
	benchChatCompletion(b, "tollgate")
}

// BenchmarkTransportFloor sends the same messages to a server that answers each with an
// empty CONTINUE: the cost of gRPC and the kernel alone, which tollgate's own cost is
// added to.
func BenchmarkTransportFloor(b *testing.B) {
	benchChatCompletion(b, "floor")
}

func benchChatCompletion(b *testing.B, server string) {
	c, proc := startServerProcess(b, server)
	m := newBenchMessages()
	upCtx := metadata.AppendToOutgoingContext(context.Background(), headerDeployment, "gpt-5.5-0")
	routerCtx := metadata.AppendToOutgoingContext(context.Background(), "x-tollgate-stage", "router")
	b.ReportAllocs()
	cpu0 := proc.cpu()
	for b.Loop() {
		router := mustOpen(b, c, routerCtx)
		exchangeOne(b, router, m.routerReqHeaders, "request_headers")
		exchangeOne(b, router, m.routerReqBody, "request_body")
		up := mustOpen(b, c, upCtx)
		exchangeOne(b, up, m.upReqHeaders, "request_headers")
		exchangeOne(b, up, m.upReqBody, "request_body")
		closeStream(b, up)
		exchangeOne(b, router, m.respHeaders, "response_headers")
		exchangeOne(b, router, m.respBody, "response_body")
		closeStream(b, router)
	}
	b.ReportMetric(float64(proc.cpu()-cpu0)/float64(b.N), "server-cpu-ns/op")
}

// BenchmarkChatCompletionNoGRPC is the same request through the processors without
// gRPC: tollgate's own share of the work.
func BenchmarkChatCompletionNoGRPC(b *testing.B) {
	s, err := New(testConfig(), Deps{Auth: NewMasterKey(masterKey)}, nil)
	if err != nil {
		b.Fatal(err)
	}
	m := newBenchMessages()
	ctx := context.Background()
	b.ReportAllocs()
	cpu0 := processCPU(b)
	for b.Loop() {
		r := &router{s: s, ctx: ctx}
		u := s.newUpstream(ctx, "gpt-5.5-0")
		check(b, s.dispatch(ctx, r, m.routerReqHeaders), "request_headers")
		check(b, s.dispatch(ctx, r, m.routerReqBody), "request_body")
		check(b, s.dispatch(ctx, u, m.upReqHeaders), "request_headers")
		check(b, s.dispatch(ctx, u, m.upReqBody), "request_body")
		check(b, s.dispatch(ctx, r, m.respHeaders), "response_headers")
		check(b, s.dispatch(ctx, r, m.respBody), "response_body")
	}
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

func check(b *testing.B, resp *extprocv3.ProcessingResponse, phase string) {
	if got := phaseOf(resp); got != phase {
		b.Fatalf("answered %s, want %s", got, phase)
	}
}

// BenchmarkStreamChunk is one SSE chunk of a streamed response through a router stream
// in STREAMED mode, over gRPC.
func BenchmarkStreamChunk(b *testing.B) {
	_, c := startServer(b, testConfig(), NewMasterKey(masterKey))
	e := routerStream(b, c)
	e.send(post("/v1/chat/completions", "authorization", "Bearer "+masterKey))
	e.send(requestBody(`{"model":"gpt-5.5","stream":true,"messages":[]}`))
	if got := summarize(e.send(responseHeaders(false, ":status", "200", "content-type", "text/event-stream", headerDeployment, "gpt-5.5-0"))); !got.StreamedBody {
		b.Fatalf("response headers answered %+v, want STREAMED", got)
	}
	chunk := responseBody(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1741570283,"model":"gpt-5.5",`+
		`"choices":[{"index":0,"delta":{"content":" jumps"},"logprobs":null,"finish_reason":null}]}`+"\n\n", false)
	b.ReportAllocs()
	cpu0 := processCPU(b)
	for b.Loop() {
		exchangeOne(b, e.stream, chunk, "response_body")
	}
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

// TestMain lets the test binary double as the benchmark's server process.
func TestMain(m *testing.M) {
	if sock := os.Getenv(serveEnv); sock != "" {
		if err := serveBench(sock, os.Getenv(serverEnv)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	os.Exit(m.Run())
}

// serveEnv names the unix socket a child test binary serves the benchmark on, serverEnv
// which server: "tollgate" or "floor".
const (
	serveEnv  = "TOLLGATE_EXTPROC_BENCH_SOCKET"
	serverEnv = "TOLLGATE_EXTPROC_BENCH_SERVER"
)

// serveBench serves on sock, says "ready" on stdout once it listens, and runs until
// killed.
func serveBench(sock, server string) error {
	s, err := New(testConfig(), Deps{Auth: NewMasterKey(masterKey)}, nil)
	if err != nil {
		return err
	}
	g := grpc.NewServer(s.ServerOptions()...)
	if server == "floor" {
		extprocv3.RegisterExternalProcessorServer(g, floorServer{})
	} else {
		s.Register(g)
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	fmt.Println("ready")
	return g.Serve(l)
}

// floorServer answers every message with an empty CONTINUE and does nothing else.
type floorServer struct {
	extprocv3.UnimplementedExternalProcessorServer
}

func (floorServer) Process(stream extprocv3.ExternalProcessor_ProcessServer) error {
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		var resp *extprocv3.ProcessingResponse
		switch req.Request.(type) {
		case *extprocv3.ProcessingRequest_RequestHeaders:
			resp = headersResponse(true, &extprocv3.CommonResponse{})
		case *extprocv3.ProcessingRequest_ResponseHeaders:
			resp = headersResponse(false, &extprocv3.CommonResponse{})
		case *extprocv3.ProcessingRequest_RequestBody:
			resp = bodyResponse(true, &extprocv3.CommonResponse{})
		default:
			resp = bodyResponse(false, &extprocv3.CommonResponse{})
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

// serverProcess is a benchmark server running in a child process.
type serverProcess struct {
	b   *testing.B
	pid int
}

// startServerProcess runs the test binary as server on a socket in b.TempDir and returns
// a client of it.
func startServerProcess(b *testing.B, server string) (extprocv3.ExternalProcessorClient, *serverProcess) {
	sock := filepath.Join(b.TempDir(), "s")
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), serveEnv+"="+sock, serverEnv+"="+server)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
		b.Fatalf("server process: %q, %v", line, err)
	}
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return extprocv3.NewExternalProcessorClient(conn), &serverProcess{b: b, pid: cmd.Process.Pid}
}

// cpu is the CPU time the server process has used so far, in nanoseconds, from
// /proc/<pid>/stat (utime and stime, in clock ticks of 10 ms).
func (p *serverProcess) cpu() int64 {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid))
	if err != nil {
		p.b.Fatal(err)
	}
	// Fields after the parenthesised command name; utime and stime are fields 14 and 15.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		p.b.Fatalf("parse /proc/%d/stat: %v %v", p.pid, err1, err2)
	}
	const tick = int64(10 * time.Millisecond) // USER_HZ is 100 on Linux
	return (utime + stime) * tick
}

// processCPU is the CPU time this process has used so far, in nanoseconds.
func processCPU(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func mustOpen(b *testing.B, c extprocv3.ExternalProcessorClient, ctx context.Context) extprocv3.ExternalProcessor_ProcessClient {
	s, err := c.Process(ctx)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func exchangeOne(b *testing.B, s extprocv3.ExternalProcessor_ProcessClient, req *extprocv3.ProcessingRequest, phase string) {
	if err := s.Send(req); err != nil {
		b.Fatal(err)
	}
	resp, err := s.Recv()
	if err != nil {
		b.Fatal(err)
	}
	if got := phaseOf(resp); got != phase {
		b.Fatalf("answered %s, want %s", got, phase)
	}
}

// phaseOf names the response's kind without summarize's allocations.
func phaseOf(r *extprocv3.ProcessingResponse) string {
	switch r.Response.(type) {
	case *extprocv3.ProcessingResponse_RequestHeaders:
		return "request_headers"
	case *extprocv3.ProcessingResponse_RequestBody:
		return "request_body"
	case *extprocv3.ProcessingResponse_ResponseHeaders:
		return "response_headers"
	case *extprocv3.ProcessingResponse_ResponseBody:
		return "response_body"
	}
	return "other"
}

// closeStream ends a stream as Envoy does when the request is done.
func closeStream(b *testing.B, s extprocv3.ExternalProcessor_ProcessClient) {
	if err := s.CloseSend(); err != nil {
		b.Fatal(err)
	}
	if _, err := s.Recv(); !errors.Is(err, io.EOF) {
		b.Fatalf("stream end: %v", err)
	}
}

// BenchmarkMasterKeyMiss is the master-key check every virtual key's request passes
// through first: Authenticate (hash, compare, and an error for a miss), and Match (a
// compare of the digest the caller computed once for both checks).
func BenchmarkMasterKeyMiss(b *testing.B) {
	m := NewMasterKey(masterKey)
	const key = "sk-tollgate-virtual-key-abcdefghijklmnopqrstuvwxyz0123456789"
	b.Run("Authenticate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.Authenticate(context.Background(), key); err == nil {
				b.Fatal("a virtual key passed as the master key")
			}
		}
	})
	b.Run("Match", func(b *testing.B) {
		d := sha256.Sum256([]byte(key))
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := m.Match(d); ok {
				b.Fatal("a virtual key passed as the master key")
			}
		}
	})
}

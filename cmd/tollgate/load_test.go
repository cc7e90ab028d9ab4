package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/translate/providertest"
)

// BenchmarkGatewayAddedLatency is the load harness: it sends chat completions at a fixed
// rate (open loop: a request leaves on every tick whether or not earlier ones returned)
// first straight to the fake provider, then through the whole gateway (`tollgate dev`:
// emulator + ext_proc over gRPC), and reports the latency the gateway adds at p50 and p99,
// and the process's peak RSS. Client, gateway and provider share the machine's cores, as
// they would not in production. Run it alone:
//
//	go test -run '^$' -bench GatewayAddedLatency -benchtime 1x ./cmd/tollgate
//
// TOLLGATE_LOAD_RPS (default 1000) and TOLLGATE_LOAD_SECONDS (default 5) set the load.
func BenchmarkGatewayAddedLatency(b *testing.B) {
	rps := envInt("TOLLGATE_LOAD_RPS", 1000)
	seconds := envInt("TOLLGATE_LOAD_SECONDS", 5)
	_, srv := providertest.StartOpenAI(b, "sk-upstream")
	gw := startDev(b, `
model_list:
  - model_name: gpt-5.5
    litellm_params: {model: openai/gpt-5.5, api_base: `+srv.URL+`/v1, api_key: sk-upstream}
general_settings:
  master_key: `+masterKey+`
`)
	body := []byte(`{"model":"gpt-5.5","messages":[{"role":"user","content":"Summarize this in one line."}]}`)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4096, MaxConnsPerHost: 0}}
	for b.Loop() {
		direct := load(b, client, srv.URL+"/v1/chat/completions", "sk-upstream", body, rps, seconds)
		gateway := load(b, client, gw.URL+"/v1/chat/completions", masterKey, body, rps, seconds)
		b.ReportMetric(float64(rps), "req/s")
		b.ReportMetric(ms(percentile(direct, 50)), "direct-p50-ms")
		b.ReportMetric(ms(percentile(direct, 99)), "direct-p99-ms")
		b.ReportMetric(ms(percentile(gateway, 50)), "gateway-p50-ms")
		b.ReportMetric(ms(percentile(gateway, 99)), "gateway-p99-ms")
		b.ReportMetric(ms(percentile(gateway, 50)-percentile(direct, 50)), "added-p50-ms")
		b.ReportMetric(ms(percentile(gateway, 99)-percentile(direct, 99)), "added-p99-ms")
		b.ReportMetric(float64(peakRSS())/(1<<20), "peak-rss-MiB")
	}
}

// load sends rps requests a second for seconds and returns their latencies; any failure
// fails the benchmark.
func load(b *testing.B, client *http.Client, url, key string, body []byte, rps, seconds int) []time.Duration {
	n := rps * seconds
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failure error
	tick := time.NewTicker(time.Second / time.Duration(rps))
	defer tick.Stop()
	for i := range n {
		<-tick.C
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+key)
			req.Header.Set("Content-Type", "application/json")
			start := time.Now()
			resp, err := client.Do(req)
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					err = io.ErrUnexpectedEOF
				}
			}
			lat[i] = time.Since(start)
			if err != nil {
				mu.Lock()
				failure = err
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if failure != nil {
		b.Fatalf("a request to %s failed: %v", url, failure)
	}
	return lat
}

func percentile(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// peakRSS is the process's peak resident set (VmHWM), in bytes.
func peakRSS() int64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

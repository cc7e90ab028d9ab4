package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tollgate-dev/tollgate/translate/providertest"
)

// pgProxy forwards TCP to Postgres and can cut every connection and refuse new ones,
// which is what the gateway sees when Postgres restarts; the machine's Postgres, shared
// with other tests, keeps running.
type pgProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	down  bool
	conns []net.Conn
}

func startPGProxy(t *testing.T) *pgProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pgProxy{ln: ln}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			down := p.down
			p.mu.Unlock()
			if down {
				c.Close()
				continue
			}
			s, err := net.Dial("tcp", "127.0.0.1:5432")
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
	return p
}

func (p *pgProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// cut closes every connection and refuses new ones until restore.
func (p *pgProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *pgProxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// TestEndToEndSpendSurvivesPostgresOutageAndShutdown sends 10,000 requests through the
// gateway while Postgres goes away and comes back in the middle, then stops the gateway
// the way SIGTERM does, with requests still arriving: every request a client got an
// answer for has exactly one spend record, and the daily rollup agrees with the records.
func TestEndToEndSpendSurvivesPostgresOutageAndShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 requests")
	}
	dbURL := storesForTest(t) // postgres://postgres@127.0.0.1:5432/test?...&search_path=...
	proxy := startPGProxy(t)
	proxied := strings.Replace(dbURL, "127.0.0.1:5432", fmt.Sprintf("127.0.0.1:%d", proxy.port()), 1)
	_, srv := providertest.StartOpenAI(t, "")
	gw := startDev(t, fmt.Sprintf(`
model_list:
  - model_name: gpt-5.5
    litellm_params: {model: openai/gpt-5.5, api_base: %s/v1, api_key: sk-upstream, input_cost_per_token: 0.000001, output_cost_per_token: 0.000002}
general_settings:
  master_key: %s
  database_url: %s
`, srv.URL, masterKey, proxied), "--spool-dir", t.TempDir())

	const total, workers = 10_000, 8
	body := []byte(`{"model":"gpt-5.5","messages":[{"role":"user","content":"count me"}]}`)
	jobs := make(chan int)
	var mu sync.Mutex
	answered := map[string]bool{} // request ids of the responses clients received
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	for range workers {
		wg.Go(func() {
			for range jobs {
				req, _ := http.NewRequest(http.MethodPost, gw.URL+"/v1/chat/completions", strings.NewReader(string(body)))
				req.Header.Set("Authorization", "Bearer "+masterKey)
				resp, err := client.Do(req)
				if err != nil {
					continue // the gateway was stopping
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if id := resp.Header.Get("X-Tollgate-Request-Id"); resp.StatusCode == 200 && id != "" {
					mu.Lock()
					answered[id] = true
					mu.Unlock()
				}
			}
		})
	}
	for i := range total {
		switch i {
		case 3_000:
			proxy.cut() // Postgres goes away
		case 6_000:
			proxy.restore()
		case 9_000:
			go gw.Stop() // SIGTERM with 1,000 requests still to come
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	gw.Stop()

	if len(answered) < 9_000-workers { // the stop may cut the requests in flight
		t.Fatalf("only %d of the first 9,000 requests were answered", len(answered))
	}
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), `SELECT request_id, count(*) FROM tollgate_spend_logs GROUP BY request_id`)
	if err != nil {
		t.Fatal(err)
	}
	recorded := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		recorded[id] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	missing, duplicated := 0, 0
	for id := range answered {
		switch recorded[id] {
		case 0:
			missing++
		case 1:
		default:
			duplicated++
		}
	}
	if missing > 0 || duplicated > 0 {
		t.Errorf("%d answered requests: %d have no spend record, %d have more than one", len(answered), missing, duplicated)
	}
	var logSpend, rollupSpend, logCount, rollupCount int64
	if err := conn.QueryRow(context.Background(), `SELECT coalesce(sum(spend),0), count(*) FROM tollgate_spend_logs`).Scan(&logSpend, &logCount); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(context.Background(), `SELECT coalesce(sum(spend),0), coalesce(sum(requests),0) FROM tollgate_spend_daily`).Scan(&rollupSpend, &rollupCount); err != nil {
		t.Fatal(err)
	}
	if logSpend != rollupSpend || logCount != rollupCount || logSpend == 0 {
		t.Errorf("spend logs: %d records, %d µ$; daily rollup: %d requests, %d µ$", logCount, logSpend, rollupCount, rollupSpend)
	}
	t.Logf("%d requests answered, %d spend records", len(answered), logCount)
}

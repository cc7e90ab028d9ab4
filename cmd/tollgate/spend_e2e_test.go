package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tollgate-dev/tollgate/keys"
	"github.com/tollgate-dev/tollgate/translate/providertest"
)

// TestEndToEndSpendSurvivesPostgresRestart sends 10,000 requests through the gateway
// with a virtual key while Postgres goes away at the 3,000th and comes back at the
// 6,000th, then stops the gateway: every request is answered, and Postgres ends up with
// exactly one spend record for each, and daily rollups that add up to the records.
func TestEndToEndSpendSurvivesPostgresRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 requests")
	}
	dbURL := storesForTest(t) // postgres://postgres@127.0.0.1:5432/test?...&search_path=...
	// The machine's Postgres is shared with the other packages' tests, which run in
	// parallel with this one: restarting it would fail them. The gateway reaches Postgres
	// through a proxy instead, which drops every connection and refuses new ones, as a
	// restart does.
	proxy := providertest.StartProxy(t, "127.0.0.1:5432")
	proxied := strings.Replace(dbURL, "127.0.0.1:5432", proxy.Addr(), 1)
	_, srv := providertest.StartOpenAI(t, "")
	spoolDir := t.TempDir()
	gw := startDev(t, meteredConfig(srv.URL, proxied), "--spool-dir", spoolDir)
	key := generateKey(t, gw)

	const total, workers = 10_000, 8
	jobs := make(chan int)
	var mu sync.Mutex
	answered := map[string]bool{} // request ids of the 200 responses
	var failures []string         // what the other requests got
	var wg sync.WaitGroup
	client := loadClient(workers)
	for range workers {
		wg.Go(func() {
			for range jobs {
				status, id, err := postChat(client, gw.URL, key)
				mu.Lock()
				switch {
				case err != nil:
					failures = append(failures, err.Error())
				case status != http.StatusOK || id == "":
					failures = append(failures, fmt.Sprintf("status %d, request id %q", status, id))
				default:
					answered[id] = true
				}
				mu.Unlock()
			}
		})
	}
	for i := range total {
		switch i {
		case 3_000:
			proxy.Cut()
		case 6_000:
			// The writer tried Postgres during the outage and kept the records on disk.
			if len(spoolSegments(t, spoolDir)) == 0 {
				t.Error("nothing was spooled while Postgres was down: the outage did not reach the spend writer")
			}
			proxy.Restore()
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	gw.Stop()

	if len(failures) > 0 {
		t.Fatalf("%d of %d requests were not answered 200 with a request id; the first: %s",
			len(failures), total, failures[0])
	}
	if len(answered) != total {
		t.Fatalf("%d distinct request ids for %d requests", len(answered), total)
	}
	records := recordCounts(t, dbURL)
	missing, duplicated := 0, 0
	for id := range answered {
		switch records[id] {
		case 0:
			missing++
		case 1:
		default:
			duplicated++
		}
	}
	if missing > 0 || duplicated > 0 || len(records) != total {
		t.Errorf("%d requests, %d request ids recorded: %d requests have no record, %d more than one",
			total, len(records), missing, duplicated)
	}

	conn := connect(t, dbURL)
	ctx := context.Background()
	var logCount, logSpend, otherKeys, rollupRequests, rollupSpend, keySpend int64
	hash := keys.Hash(key)
	if err := conn.QueryRow(ctx, `SELECT count(*), coalesce(sum(spend), 0), count(*) FILTER (WHERE api_key <> $1) FROM tollgate_spend_logs`, hash).
		Scan(&logCount, &logSpend, &otherKeys); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT coalesce(sum(requests), 0), coalesce(sum(spend), 0) FROM tollgate_spend_daily`).
		Scan(&rollupRequests, &rollupSpend); err != nil {
		t.Fatal(err)
	}
	if logCount != total || rollupRequests != total || rollupSpend != logSpend || logSpend == 0 {
		t.Errorf("spend logs: %d records, %d µ$; daily rollups: %d requests, %d µ$; want %d records and requests, and equal non-zero spend",
			logCount, logSpend, rollupRequests, rollupSpend, total)
	}
	if otherKeys > 0 {
		t.Errorf("%d records do not carry the virtual key's hash", otherKeys)
	}
	if err := conn.QueryRow(ctx, `SELECT spend FROM tollgate_keys WHERE token = $1`, hash).Scan(&keySpend); err != nil {
		t.Fatal(err)
	}
	// The key's spend in Postgres, which Redis is rebuilt from, is counted from the
	// records as they land: through the outage it ends equal to their sum.
	if keySpend != logSpend {
		t.Errorf("tollgate_keys.spend = %d µ$, want the records' sum %d µ$", keySpend, logSpend)
	}
	t.Logf("%d requests answered, %d spend records, %d µ$ in the records, %d µ$ in tollgate_keys.spend",
		len(answered), logCount, logSpend, keySpend)
}

// meteredConfig is a config.yaml with one deployment, gpt-5.5 at the fake OpenAI
// provider providerURL, priced at $1 per million prompt tokens and $2 per million
// completion tokens, and the database at dbURL.
func meteredConfig(providerURL, dbURL string) string {
	return fmt.Sprintf(`
model_list:
  - model_name: gpt-5.5
    litellm_params: {model: openai/gpt-5.5, api_base: %s/v1, api_key: sk-upstream, input_cost_per_token: 0.000001, output_cost_per_token: 0.000002}
general_settings:
  master_key: %s
  database_url: %s
`, providerURL, masterKey, dbURL)
}

// generateKey mints a virtual key with the master key.
func generateKey(t *testing.T, gw *gatewayUnderTest) string {
	t.Helper()
	resp, body := gw.post(t, "/key/generate", masterKey, []byte(`{}`))
	var generated struct {
		Key string `json:"key"`
	}
	if err := json.Unmarshal(body, &generated); resp.StatusCode != http.StatusOK || err != nil || generated.Key == "" {
		t.Fatalf("/key/generate: %d %s", resp.StatusCode, body)
	}
	return generated.Key
}

// loadClient is an HTTP client for workers concurrent requests to one gateway.
func loadClient(workers int) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
}

// postChat sends one chat completion to the gateway at url and returns the response's
// status and X-Tollgate-Request-Id, having read its body.
func postChat(client *http.Client, url, key string) (status int, requestID string, err error) {
	req, err := http.NewRequest(http.MethodPost, url+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-5.5","messages":[{"role":"user","content":"count me"}]}`))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, "", err
	}
	return resp.StatusCode, resp.Header.Get("X-Tollgate-Request-Id"), nil
}

// connect opens a connection to the test's schema until the test ends.
func connect(t *testing.T, dbURL string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// recordCounts returns how many spend records each request id has.
func recordCounts(t *testing.T, dbURL string) map[string]int {
	t.Helper()
	rows, err := connect(t, dbURL).Query(context.Background(), `SELECT request_id, count(*) FROM tollgate_spend_logs GROUP BY request_id`)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		counts[id] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return counts
}

// spoolSegments lists the spend spool's segment files in dir: records not yet in
// Postgres (see package spend's spool).
func spoolSegments(t *testing.T, dir string) []string {
	t.Helper()
	segments, err := filepath.Glob(filepath.Join(dir, "*.spool"))
	if err != nil {
		t.Fatal(err)
	}
	return segments
}

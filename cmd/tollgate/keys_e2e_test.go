package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/translate/providertest"
)

// storesForTest gives a test its own Postgres schema and Redis database, so it runs on the
// machine's real servers without touching other tests' data. It returns the
// database_url to put in config.yaml.
func storesForTest(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	var b [6]byte
	rand.Read(b[:])
	schema := "e2e_" + hex.EncodeToString(b[:])
	base := "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Skipf("Postgres is not reachable (%v): .ci/run starts it", err)
	}
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		conn.Close(context.Background())
	})
	const redisDB = 14 // this package's; the keys tests use 11 and 12
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", DB: redisDB})
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		t.Skipf("Redis is not reachable (%v): .ci/run starts it", err)
	}
	rdb.Close()
	t.Setenv("REDIS_URL", fmt.Sprintf("redis://127.0.0.1:6379/%d", redisDB))
	return base + "&search_path=" + schema
}

// TestEndToEndVirtualKeys is the article's flow, through the gateway's one listener: the
// master key mints a key scoped to two models with a budget, the key works for those
// models only, stops when the budget is spent, and can be revoked alone.
func TestEndToEndVirtualKeys(t *testing.T) {
	dbURL := storesForTest(t)
	_, srv := providertest.StartOpenAI(t, "") // Ollama sends no key
	gw := startDev(t, fmt.Sprintf(`
model_list:
  - model_name: gpt-5.5
    litellm_params: {model: openai/gpt-5.5, api_base: %[1]s/v1, api_key: sk-upstream, input_cost_per_token: 0.001, output_cost_per_token: 0.002}
  - model_name: claude-sonnet
    litellm_params: {model: openai/claude-sonnet-5, api_base: %[1]s/v1, api_key: sk-upstream, input_cost_per_token: 0.001, output_cost_per_token: 0.002}
  - model_name: local-llama
    litellm_params: {model: ollama/llama3.1, api_base: %[1]s}
general_settings:
  master_key: %[2]s
  database_url: %[3]s
`, srv.URL, masterKey, dbURL), "--spool-dir", t.TempDir())

	// The article's curl, as written.
	resp, body := gw.post(t, "/key/generate", masterKey, []byte(`{"models": ["gpt-5.5", "claude-sonnet"], "max_budget": 50, "duration": "30d"}`))
	if resp.StatusCode != 200 {
		t.Fatalf("/key/generate: %d %s", resp.StatusCode, body)
	}
	var generated struct {
		Key     string `json:"key"`
		Expires string `json:"expires"`
	}
	if err := json.Unmarshal(body, &generated); err != nil || !strings.HasPrefix(generated.Key, "sk-") || generated.Expires == "" {
		t.Fatalf("/key/generate answered %s", body)
	}
	key := generated.Key
	chat := func(model string) string {
		return `{"model":"` + model + `","messages":[{"role":"user","content":"Summarize this in one line."}]}`
	}

	if resp, body := gw.post(t, "/v1/chat/completions", key, []byte(chat("gpt-5.5"))); resp.StatusCode != 200 {
		t.Fatalf("scoped key on gpt-5.5: %d %s", resp.StatusCode, body)
	}
	// The second request's headers carry the first one's cost as the key's spend so far.
	resp, body = gw.post(t, "/v1/chat/completions", key, []byte(chat("gpt-5.5")))
	if first := resp.Header.Get("X-Litellm-Key-Spend"); resp.StatusCode != 200 || first == "" || first == "0" {
		t.Errorf("x-litellm-key-spend after one priced request = %q (status %d %s)", first, resp.StatusCode, body)
	}
	resp, body = gw.post(t, "/v1/chat/completions", key, []byte(chat("local-llama")))
	if e := decodeError(t, body); resp.StatusCode != 401 || e.Code != "key_model_access_denied" || !strings.Contains(e.Message, "gpt-5.5") {
		t.Errorf("scoped key on local-llama: %d %s", resp.StatusCode, body)
	}
	if resp, body := gw.post(t, "/key/generate", key, []byte(`{}`)); resp.StatusCode != 403 {
		t.Errorf("a virtual key called the admin API: %d %s", resp.StatusCode, body)
	}

	// A key with a budget smaller than one request: the first is admitted, its settled
	// cost exhausts the budget, the next is refused with LiteLLM's budget_exceeded.
	_, body = gw.post(t, "/key/generate", masterKey, []byte(`{"models": ["gpt-5.5"], "max_budget": 0.001}`))
	json.Unmarshal(body, &generated)
	small := generated.Key
	tagged := `{"model":"gpt-5.5","messages":[{"role":"user","content":"hi"}],"metadata":{"tags":["batch-job"]},"user":"customer-7"}`
	if resp, body := gw.post(t, "/v1/chat/completions", small, []byte(tagged)); resp.StatusCode != 200 {
		t.Fatalf("first request on a small budget: %d %s", resp.StatusCode, body)
	}
	resp, body = gw.post(t, "/v1/chat/completions", small, []byte(chat("gpt-5.5")))
	if e := decodeError(t, body); resp.StatusCode != 400 || e.Code != "budget_exceeded" {
		t.Errorf("request over budget: %d %s", resp.StatusCode, body)
	}

	// Revoking one key leaves the others working.
	if resp, body := gw.post(t, "/key/block", masterKey, []byte(`{"key": "`+key+`"}`)); resp.StatusCode != 200 {
		t.Fatalf("/key/block: %d %s", resp.StatusCode, body)
	}
	resp, body = gw.post(t, "/v1/chat/completions", key, []byte(chat("gpt-5.5")))
	if e := decodeError(t, body); resp.StatusCode != 401 || e.Code != "key_blocked" {
		t.Errorf("blocked key: %d %s", resp.StatusCode, body)
	}
	if resp, body := gw.post(t, "/v1/chat/completions", masterKey, []byte(chat("local-llama"))); resp.StatusCode != 200 {
		t.Errorf("master key after a revocation: %d %s", resp.StatusCode, body)
	}

	// Expiry.
	_, body = gw.post(t, "/key/generate", masterKey, []byte(`{"duration": "1s"}`))
	json.Unmarshal(body, &generated)
	brief := generated.Key
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, body = gw.post(t, "/v1/chat/completions", brief, []byte(chat("local-llama")))
		if resp.StatusCode == 401 {
			if e := decodeError(t, body); e.Code != "key_expired" {
				t.Errorf("expired key: %s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a 1s key still works after 10s: %d %s", resp.StatusCode, body)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Every request above reaches the spend log, priced: the first request's cost is
	// what the settled budget counted.
	deadline = time.Now().Add(15 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, gw.URL+"/spend/logs?api_key="+small, nil)
		req.Header.Set("Authorization", "Bearer "+masterKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var logs []struct {
			RequestID string   `json:"request_id"`
			Spend     float64  `json:"spend"`
			Status    string   `json:"status"`
			Tags      []string `json:"request_tags"`
			EndUser   string   `json:"end_user"`
		}
		err = json.NewDecoder(resp.Body).Decode(&logs)
		resp.Body.Close()
		if err == nil && len(logs) == 2 {
			var total float64
			for _, l := range logs {
				total += l.Spend
			}
			if total <= 0 {
				t.Errorf("spend logs of the small key cost nothing: %+v", logs)
			}
			first := logs[len(logs)-1] // newest first
			if len(first.Tags) != 1 || first.Tags[0] != "batch-job" || first.EndUser != "customer-7" {
				t.Errorf("the tagged request's record: %+v", first)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("spend logs of the small key: %v %+v", err, logs)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// The spend of keys and of tags, as LiteLLM's /spend/keys and /spend/tags show them.
	var keyRows []struct {
		Token string  `json:"token"`
		Spend float64 `json:"spend"`
	}
	var tagRows []struct {
		Tag      string  `json:"individual_request_tag"`
		LogCount int     `json:"log_count"`
		Spend    float64 `json:"total_spend"`
	}
	for path, v := range map[string]any{"/spend/keys": &keyRows, "/spend/tags": &tagRows} {
		req, _ := http.NewRequest(http.MethodGet, gw.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+masterKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(v)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil {
			t.Fatalf("%s: status %d, %v", path, resp.StatusCode, err)
		}
	}
	if len(keyRows) == 0 || keyRows[0].Spend <= 0 {
		t.Errorf("/spend/keys does not start with a key that spent: %+v", keyRows)
	}
	if len(tagRows) != 1 || tagRows[0].Tag != "batch-job" || tagRows[0].LogCount != 1 || tagRows[0].Spend <= 0 {
		t.Errorf("/spend/tags = %+v, want batch-job once, with its cost", tagRows)
	}
}

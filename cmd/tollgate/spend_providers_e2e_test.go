package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/keys"
	"github.com/tollgate-dev/tollgate/translate/providertest"
)

// spendPrices is a --prices file in LiteLLM's model_prices_and_context_window.json format
// (USD per token) for the models of TestEndToEndSpendPerProvider: the way users who keep
// their own LiteLLM price file bring cache and reasoning rates (config.yaml's
// per-deployment prices are covered by config's and spend's tests). Every rate differs
// from every other, so a token kind billed at another kind's rate, or a provider at
// another's, changes the cost.
const spendPrices = `{
  "openai/tg-e2e-openai": {"litellm_provider": "openai", "mode": "chat",
    "input_cost_per_token": 0.000002, "output_cost_per_token": 0.000008,
    "cache_read_input_token_cost": 0.0000005, "output_cost_per_reasoning_token": 0.00001},
  "anthropic/tg-e2e-anthropic": {"litellm_provider": "anthropic", "mode": "chat",
    "input_cost_per_token": 0.000003, "output_cost_per_token": 0.000015,
    "cache_read_input_token_cost": 0.0000003, "cache_creation_input_token_cost": 0.00000375},
  "bedrock/tg-e2e-bedrock": {"litellm_provider": "bedrock", "mode": "chat",
    "input_cost_per_token": 0.000004, "output_cost_per_token": 0.00002,
    "cache_read_input_token_cost": 0.0000004, "cache_creation_input_token_cost": 0.000005},
  "gemini/tg-e2e-gemini": {"litellm_provider": "gemini", "mode": "chat",
    "input_cost_per_token": 0.00000125, "output_cost_per_token": 0.00001,
    "cache_read_input_token_cost": 0.000000125, "output_cost_per_reasoning_token": 0.000012},
  "vertex_ai/tg-e2e-vertex": {"litellm_provider": "vertex_ai", "mode": "chat",
    "input_cost_per_token": 0.0000015, "output_cost_per_token": 0.000009,
    "cache_read_input_token_cost": 0.00000015, "output_cost_per_reasoning_token": 0.000011}
}`

// The usage each fake reports, in its own wire format, for every answer. Each provider
// family reports the token kinds its format has: OpenAI and Gemini cached and reasoning
// tokens (no cache writes); Anthropic and Bedrock Converse cache reads and writes (no
// reasoning count: their thinking is part of the output tokens).
var (
	// OpenAI (prompt_tokens_details, completion_tokens_details): prompt_tokens includes the
	// cached tokens, completion_tokens the reasoning tokens.
	openAIUsage = map[string]any{
		"prompt_tokens": 5000, "completion_tokens": 900, "total_tokens": 5900,
		"prompt_tokens_details":     map[string]any{"cached_tokens": 3000},
		"completion_tokens_details": map[string]any{"reasoning_tokens": 600},
	}
	// Anthropic: input_tokens excludes the cache reads and writes.
	anthropicUsage = providertest.AnthropicUsage{
		InputTokens: 1200, CacheReadInputTokens: 3000, CacheCreationInputTokens: 800, OutputTokens: 500,
	}
	// Bedrock Converse TokenUsage: inputTokens excludes the cache reads and writes, as on
	// Anthropic's API (translate/bedrock_types.go).
	bedrockUsage = map[string]int{
		"inputTokens": 1200, "cacheReadInputTokens": 3000, "cacheWriteInputTokens": 800,
		"outputTokens": 500, "totalTokens": 5500,
	}
	// Gemini usageMetadata: promptTokenCount includes cachedContentTokenCount;
	// candidatesTokenCount excludes thoughtsTokenCount.
	geminiUsage = map[string]any{
		"promptTokenCount": 5000, "cachedContentTokenCount": 3000,
		"candidatesTokenCount": 300, "thoughtsTokenCount": 600, "totalTokenCount": 5900,
	}
)

// spendColumns are a spend record's token counts (OpenAI's convention: prompt includes
// the cache tokens, completion the reasoning tokens) and its cost in micro-dollars.
type spendColumns struct {
	Prompt, Completion, Cached, CacheCreation, Reasoning int64
	Spend                                                int64
}

// TestEndToEndSpendPerProvider sends one JSON and one streamed chat completion to an
// alias of each provider family, with a virtual key, and checks the spend record each
// one left in Postgres against costs worked out by hand from the prices above.
func TestEndToEndSpendPerProvider(t *testing.T) {
	dbURL := storesForTest(t)
	oa, oaSrv := providertest.StartOpenAI(t, "sk-openai")
	oa.Usage = openAIUsage
	an, anSrv := providertest.StartAnthropic(t, "sk-ant")
	an.Usage = &anthropicUsage
	br, brSrv := providertest.StartBedrock(t, "us-east-1", "AKIDSPEND", "spend-secret")
	br.Usage = bedrockUsage
	gm, gmSrv := providertest.StartGemini(t, "AIza-spend")
	gm.Usage = geminiUsage
	vx, vxSrv := providertest.StartVertex(t, "proj-spend", "us-central1")
	vx.Usage = geminiUsage
	dir := t.TempDir()
	saFile := filepath.Join(dir, "sa.json")
	pricesFile := filepath.Join(dir, "prices.json")
	if err := os.WriteFile(saFile, vx.ServiceAccountJSON(t), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pricesFile, []byte(spendPrices), 0o600); err != nil {
		t.Fatal(err)
	}
	gw := startDev(t, fmt.Sprintf(`
model_list:
  - model_name: openai-spend
    litellm_params: {model: openai/tg-e2e-openai, api_base: %[1]s/v1, api_key: sk-openai}
  - model_name: openai-config-spend
    litellm_params: {model: openai/tg-e2e-openai-config, api_base: %[1]s/v1, api_key: sk-openai, input_cost_per_token: 0.000001, output_cost_per_token: 0.000003}
  - model_name: anthropic-spend
    litellm_params: {model: anthropic/tg-e2e-anthropic, api_base: %[2]s, api_key: sk-ant}
  - model_name: bedrock-spend
    litellm_params:
      model: bedrock/tg-e2e-bedrock
      api_base: %[3]s
      aws_region_name: us-east-1
      aws_access_key_id: AKIDSPEND
      aws_secret_access_key: spend-secret
  - model_name: gemini-spend
    litellm_params: {model: gemini/tg-e2e-gemini, api_base: %[4]s, api_key: AIza-spend}
  - model_name: vertex-spend
    litellm_params:
      model: vertex_ai/tg-e2e-vertex
      api_base: %[5]s
      vertex_project: proj-spend
      vertex_location: us-central1
      vertex_credentials: %[6]s
general_settings:
  master_key: %[7]s
  database_url: %[8]s
`, oaSrv.URL, anSrv.URL, brSrv.URL, gmSrv.URL, vxSrv.URL, saFile, masterKey, dbURL),
		"--spool-dir", t.TempDir(), "--prices", pricesFile)
	key := generateKey(t, gw)

	// Costs by hand, in micro-dollars (µ$), from the rates of spendPrices as µ$ per token
	// (0.000002 USD = 2 µ$). Uncached prompt = prompt - cached - cache writes; visible
	// output = completion - reasoning.
	want := map[string]spendColumns{
		// (5000-3000)×2 + 3000×0.5 + (900-600)×8 + 600×10 = 4000+1500+2400+6000
		"openai-spend": {Prompt: 5000, Completion: 900, Cached: 3000, Reasoning: 600, Spend: 13_900},
		// config.yaml's override bills cached tokens at its input rate and reasoning
		// tokens at its output rate (spend.ForDeployment): 5000×1 + 900×3
		"openai-config-spend": {Prompt: 5000, Completion: 900, Cached: 3000, Reasoning: 600, Spend: 7_700},
		// prompt = 1200+3000+800; 1200×3 + 3000×0.3 + 800×3.75 + 500×15 = 3600+900+3000+7500
		"anthropic-spend": {Prompt: 5000, Completion: 500, Cached: 3000, CacheCreation: 800, Spend: 15_000},
		// prompt = 1200+3000+800; 1200×4 + 3000×0.4 + 800×5 + 500×20 = 4800+1200+4000+10000
		"bedrock-spend": {Prompt: 5000, Completion: 500, Cached: 3000, CacheCreation: 800, Spend: 20_000},
		// completion = 300+600; 2000×1.25 + 3000×0.125 + 300×10 + 600×12 = 2500+375+3000+7200
		"gemini-spend": {Prompt: 5000, Completion: 900, Cached: 3000, Reasoning: 600, Spend: 13_075},
		// completion = 300+600; 2000×1.5 + 3000×0.15 + 300×9 + 600×11 = 3000+450+2700+6600
		"vertex-spend": {Prompt: 5000, Completion: 900, Cached: 3000, Reasoning: 600, Spend: 12_750},
	}

	headerCost := map[string]string{} // request id -> x-litellm-response-cost
	client := gw.client(key)
	for alias := range want {
		resp, body := gw.post(t, "/v1/chat/completions", key,
			[]byte(`{"model":"`+alias+`","messages":[{"role":"user","content":"what did that cost"}]}`))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d: %s", alias, resp.StatusCode, body)
		}
		headerCost[resp.Header.Get("X-Tollgate-Request-Id")] = resp.Header.Get("X-Litellm-Response-Cost")
		r := streamChat(t, client, withUsage(userChat(alias, "and streamed")))
		if u := r.acc.Usage; u.PromptTokens != want[alias].Prompt || u.CompletionTokens != want[alias].Completion {
			t.Errorf("%s: streamed usage chunk %+v, want %d prompt and %d completion tokens",
				alias, u, want[alias].Prompt, want[alias].Completion)
		}
	}
	gw.Stop() // drains the spend writer

	conn := connect(t, dbURL)
	ctx := context.Background()
	rows, err := conn.Query(ctx, `SELECT request_id, model_group, stream, prompt_tokens, completion_tokens,
		cached_tokens, cache_creation_tokens, reasoning_tokens, spend, cost_known, usage_estimated, status_code, call_type
		FROM tollgate_spend_logs WHERE api_key = $1`, keys.Hash(key))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{} // alias -> records; bit 1 JSON, bit 2 streamed
	var total int64
	for rows.Next() {
		var id, alias, callType string
		var stream, known, estimated bool
		var status int
		var got spendColumns
		if err := rows.Scan(&id, &alias, &stream, &got.Prompt, &got.Completion, &got.Cached,
			&got.CacheCreation, &got.Reasoning, &got.Spend, &known, &estimated, &status, &callType); err != nil {
			t.Fatal(err)
		}
		if callType != "chat/completions" {
			t.Errorf("%s: call_type %q, want the endpoint the client called, chat/completions", alias, callType)
		}
		total += got.Spend
		if stream {
			seen[alias] |= 2
		} else {
			seen[alias] |= 1
		}
		if diff := cmp.Diff(want[alias], got); diff != "" {
			t.Errorf("%s (stream %t) record (-want +got):\n%s", alias, stream, diff)
		}
		if !known || estimated || status != http.StatusOK {
			t.Errorf("%s (stream %t): cost_known %t, usage_estimated %t, status %d; want true, false, 200",
				alias, stream, known, estimated, status)
		}
		if !stream {
			usd, err := strconv.ParseFloat(headerCost[id], 64)
			if err != nil || usd != float64(got.Spend)/1e6 {
				t.Errorf("%s: x-litellm-response-cost %q, want the record's %d µ$ in USD", alias, headerCost[id], got.Spend)
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for alias := range want {
		if seen[alias] != 3 {
			t.Errorf("%s: records seen %02b, want a JSON one and a streamed one", alias, seen[alias])
		}
	}
	var keySpend int64
	if err := conn.QueryRow(ctx, `SELECT spend FROM tollgate_keys WHERE token = $1`, keys.Hash(key)).Scan(&keySpend); err != nil {
		t.Fatal(err)
	}
	// 2 × (13900 + 7700 + 15000 + 20000 + 13075 + 12750)
	const wantTotal = 164_850
	if total != wantTotal || keySpend != wantTotal {
		t.Errorf("records sum to %d µ$, tollgate_keys.spend is %d µ$; want both %d", total, keySpend, wantTotal)
	}
}

// TestEndToEndClientDisconnectMidStreamIsCharged: a client reads the start of a slow
// stream and hangs up. The provider never sent its usage, so the gateway charges what
// was streamed, estimated, to the key.
func TestEndToEndClientDisconnectMidStreamIsCharged(t *testing.T) {
	dbURL := storesForTest(t)
	fake, srv := providertest.StartOpenAI(t, "")
	fake.StreamDelay = 20 * time.Millisecond
	gw := startDev(t, fmt.Sprintf(`
model_list:
  - model_name: slow
    litellm_params: {model: openai/slow-model, api_base: %s/v1, api_key: sk-upstream, input_cost_per_token: 0.000001, output_cost_per_token: 0.000002}
general_settings:
  master_key: %s
  database_url: %s
`, srv.URL, masterKey, dbURL), "--spool-dir", t.TempDir())
	key := generateKey(t, gw)

	// The reply repeats the prompt, one chunk per word: 300 chunks, 6s at 20ms each.
	const words = 300
	prompt := strings.TrimSpace(strings.Repeat("word ", words))
	req, err := http.NewRequest(http.MethodPost, gw.URL+"/v1/chat/completions", strings.NewReader(
		`{"model":"slow","stream":true,"messages":[{"role":"user","content":"`+prompt+`"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	events := 0
	sc := bufio.NewScanner(resp.Body)
	for events < 5 && sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: {") {
			events++
		}
	}
	if events < 5 {
		t.Fatalf("the stream ended after %d events: %v", events, sc.Err())
	}
	resp.Body.Close() // the client leaves mid-stream
	// The gateway records the request once the client's stream ends; give it time to
	// notice before shutting down.
	time.Sleep(500 * time.Millisecond)
	gw.Stop()

	var got spendColumns
	var known, estimated bool
	var status int
	var keySpend int64
	conn := connect(t, dbURL)
	ctx := context.Background()
	err = conn.QueryRow(ctx, `SELECT prompt_tokens, completion_tokens, spend, cost_known, usage_estimated, status_code
		FROM tollgate_spend_logs WHERE api_key = $1`, keys.Hash(key)).
		Scan(&got.Prompt, &got.Completion, &got.Spend, &known, &estimated, &status)
	if err != nil {
		t.Fatalf("the abandoned stream's record: %v", err)
	}
	if err := conn.QueryRow(ctx, `SELECT spend FROM tollgate_keys WHERE token = $1`, keys.Hash(key)).Scan(&keySpend); err != nil {
		t.Fatal(err)
	}
	// The client had received the 200 before it left: the record keeps that status
	// (extproc's close gives 499 only to a request that got no response headers).
	if !estimated || !known || status != http.StatusOK {
		t.Errorf("usage_estimated %t, cost_known %t, status %d; want true, true, 200", estimated, known, status)
	}
	if got.Prompt <= 0 || got.Completion <= 0 || got.Completion >= words {
		t.Errorf("estimated %d prompt and %d completion tokens; want some of each, fewer completion tokens than the %d words never all sent",
			got.Prompt, got.Completion, words)
	}
	// 1 µ$ per prompt token and 2 µ$ per completion token, the deployment's prices.
	if want := got.Prompt*1 + got.Completion*2; got.Spend != want || keySpend != want {
		t.Errorf("record spend %d µ$, tollgate_keys.spend %d µ$; want both %d (%d prompt, %d completion tokens)",
			got.Spend, keySpend, want, got.Prompt, got.Completion)
	}
	t.Logf("abandoned after %d events: %d prompt and %d completion tokens estimated, %d µ$", events, got.Prompt, got.Completion, got.Spend)
}

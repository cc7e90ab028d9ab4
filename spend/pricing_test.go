package spend

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/config"
)

// TestBuiltinTableEntries checks every entry of prices.json, read as plain JSON rather
// than through the loader, so an entry the loader would skip is caught too.
func TestBuiltinTableEntries(t *testing.T) {
	var raw map[string]map[string]any
	if err := json.Unmarshal(builtinJSON, &raw); err != nil {
		t.Fatalf("prices.json is not a JSON object of objects: %v", err)
	}
	for key, e := range raw {
		t.Run(key, func(t *testing.T) {
			if s, _ := e["source"].(string); !strings.HasPrefix(s, "https://") {
				t.Errorf("source = %q, want the https URL the price was read at", s)
			}
			asOf, _ := e["as_of"].(string)
			if d, err := time.Parse(time.DateOnly, asOf); err != nil {
				t.Errorf("as_of = %q, want a YYYY-MM-DD date", asOf)
			} else if d.After(time.Now()) {
				t.Errorf("as_of = %s is in the future", asOf)
			}
			if p, _ := e["litellm_provider"].(string); p == "" {
				t.Error("no litellm_provider")
			}
			for _, f := range []string{fieldInput, fieldOutput} {
				if _, ok := e[f].(float64); !ok {
					t.Errorf("%s missing or not a number", f)
				}
			}
			for f, v := range e {
				if !strings.Contains(f, "cost") {
					continue
				}
				if n, ok := v.(float64); !ok || n < 0 {
					t.Errorf("%s = %v, want a non-negative number", f, v)
				}
			}
		})
	}
	// Parse through the loader here, so a defect fails this test instead of panicking
	// in Builtin.
	p, err := parseLiteLLM(builtinJSON)
	if err != nil {
		t.Fatalf("prices.json: %v", err)
	}
	if p.Len() != len(raw) {
		t.Errorf("%d of prices.json's %d entries load as token prices", p.Len(), len(raw))
	}
}

// TestBuiltinProviders checks the table covers every provider it claims to.
func TestBuiltinProviders(t *testing.T) {
	have := map[string]bool{}
	for _, e := range Builtin().entries {
		have[e.Provider] = true
	}
	for _, p := range []string{"openai", "anthropic", "bedrock", "gemini", "groq", "deepseek", "xai",
		"perplexity", "openrouter", "ollama", "ollama_chat", "hosted_vllm", "azure", "mistral", "fireworks_ai",
		"together_ai"} {
		if !have[p] {
			t.Errorf("no built-in price for provider %q", p)
		}
	}
}

func TestBuiltinLookup(t *testing.T) {
	tests := []struct {
		provider, model string
		wantProvider    string
		wantModel       string
		wantInput       Rate
	}{
		// The seed article's models.
		{"openai", "gpt-5.5", "openai", "gpt-5.5", 5_000_000},
		{"anthropic", "claude-sonnet-5", "anthropic", "claude-sonnet-5", 2_000_000},
		{"ollama", "llama3.1", "ollama", Wildcard, 0},
		// Fallbacks into the built-in table.
		{"anthropic", "claude-sonnet-4-5-20250929", "anthropic", "claude-sonnet-4-5", 3_000_000},
		{"azure", "gpt-5.5", "openai", "gpt-5.5", 5_000_000},
		{"vertex_ai", "gemini-2.5-pro", "gemini", "gemini-2.5-pro", 1_250_000},
		{"hosted_vllm", "meta-llama/Llama-3.3-70B-Instruct", "hosted_vllm", Wildcard, 0},
		// Older OpenAI models, by bare name and with a snapshot date.
		{"openai", "gpt-4o", "openai", "gpt-4o", 2_500_000},
		{"openai", "gpt-4o-2024-08-06", "openai", "gpt-4o", 2_500_000},
		{"openai", "gpt-4.1-mini", "openai", "gpt-4.1-mini", 400_000},
		{"openai", "o4-mini-2025-04-16", "openai", "o4-mini", 1_100_000},
		{"openai", "text-embedding-3-small", "openai", "text-embedding-3-small", 20_000},
		// Azure's own entries, and the fallback to OpenAI's list price without one.
		{"azure", "gpt-4o", "azure", "gpt-4o", 2_500_000},
		{"azure", "gpt-4.1", "openai", "gpt-4.1", 2_000_000},
		{"gemini", "gemini-3-pro-preview", "gemini", "gemini-3-pro-preview", 2_000_000},
		{"mistral", "codestral-latest", "mistral", "codestral-latest", 300_000},
		{"fireworks_ai", "accounts/fireworks/models/gpt-oss-120b", "fireworks_ai", "accounts/fireworks/models/gpt-oss-120b", 150_000},
		// config.yaml names: together_ai/<org>/<model>, groq/openai/..., openrouter/<vendor>/<model>.
		{"together_ai", "meta-llama/Llama-3.3-70B-Instruct-Turbo", "together_ai", "meta-llama/Llama-3.3-70B-Instruct-Turbo", 1_040_000},
		{"together_ai", "deepseek-ai/DeepSeek-V4-Pro-0813", "together_ai", "deepseek-ai/DeepSeek-V4-Pro-0813", 1_320_000},
		{"groq", "openai/gpt-oss-20b", "groq", "openai/gpt-oss-20b", 75_000},
		{"deepseek", "deepseek-flash", "deepseek", "deepseek-flash", 300_000},
		{"deepseek", "deepseek-v4-pro", "deepseek", "deepseek-v4-pro", 1_320_000},
		{"openrouter", "openai/gpt-5", "openrouter", "openai/gpt-5", 1_250_000},
		// Vertex AI has no entries of its own: its Claude models (dated with "@") and
		// Gemini models fall back to the model vendor's entry.
		{"vertex_ai", "claude-sonnet-4-5@20250929", "anthropic", "claude-sonnet-4-5", 3_000_000},
		{"vertex_ai", "claude-sonnet-5", "anthropic", "claude-sonnet-5", 2_000_000},
		{"vertex_ai", "gemini-2.5-flash", "gemini", "gemini-2.5-flash", 300_000},
	}
	for _, tt := range tests {
		t.Run(tt.provider+"/"+tt.model, func(t *testing.T) {
			got, ok := Builtin().Lookup(tt.provider, tt.model)
			if !ok {
				t.Fatal("not found")
			}
			if got.Provider != tt.wantProvider || got.Model != tt.wantModel || got.Input != tt.wantInput {
				t.Errorf("Lookup = %s/%s input %d, want %s/%s input %d",
					got.Provider, got.Model, got.Input, tt.wantProvider, tt.wantModel, tt.wantInput)
			}
		})
	}
	if got, ok := Builtin().Lookup("openai", "no-such-model"); ok {
		t.Errorf("Lookup(openai, no-such-model) = %+v, want not found", got)
	}
}

func loadFixture(t *testing.T) *Prices {
	t.Helper()
	f, err := os.Open("testdata/litellm_prices.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := LoadLiteLLM(f)
	if err != nil {
		t.Fatalf("LoadLiteLLM: %v", err)
	}
	return p
}

func TestLoadLiteLLM(t *testing.T) {
	p := loadFixture(t)
	// sample_spec and the image-generation entry are not token prices.
	if got, want := p.Len(), 7; got != want {
		t.Errorf("Len() = %d, want %d", got, want)
	}
	tests := []struct {
		provider, model string
		want            Price
	}{
		{"openai", "acme-chat-1", Price{
			Provider: "openai", Model: "acme-chat-1", Mode: "chat",
			Input: 1_000_000, Output: 4_000_000, CacheRead: 250_000, CacheWrite: 1_000_000, Reasoning: 4_000_000,
			MaxInputTokens: 128000, MaxOutputTokens: 16384,
		}},
		// The azure/ key is Azure's own price, not the bare OpenAI entry.
		{"azure", "acme-chat-1", Price{
			Provider: "azure", Model: "acme-chat-1", Mode: "chat",
			Input: 1_100_000, Output: 4_400_000, CacheRead: 1_100_000, CacheWrite: 1_100_000, Reasoning: 4_400_000,
		}},
		// _above_1hr and _priority fields are not long-context tiers; the tier's
		// reasoning rate follows its output rate.
		{"anthropic", "acme-claude-2-20250101", Price{
			Provider: "anthropic", Model: "acme-claude-2-20250101", Mode: "chat",
			Input: 3_000_000, Output: 15_000_000, CacheRead: 300_000, CacheWrite: 3_750_000, Reasoning: 15_000_000,
			Tiers: []Tier{{Above: 200_000, Input: 6_000_000, Output: 22_500_000, CacheRead: 600_000,
				CacheWrite: 7_500_000, Reasoning: 22_500_000}},
			MaxInputTokens: 1_000_000, MaxOutputTokens: 64000,
		}},
		// bedrock_converse entries are Bedrock prices.
		{"bedrock", "acme.claude-2-20250101-v1:0", Price{
			Provider: "bedrock", Model: "acme.claude-2-20250101-v1:0", Mode: "chat",
			Input: 3_000_000, Output: 15_000_000, CacheRead: 300_000, CacheWrite: 3_750_000, Reasoning: 15_000_000,
		}},
		// vertex_ai-language-models is vertex_ai; the key's prefix is not the model's.
		{"vertex_ai", "acme-gemini-3", Price{
			Provider: "vertex_ai", Model: "acme-gemini-3", Mode: "chat",
			Input: 1_250_000, Output: 10_000_000, CacheRead: 125_000, CacheWrite: 1_250_000, Reasoning: 12_000_000,
			InputPerImage: 328_750_000,
		}},
		// Embeddings have no output price.
		{"openai", "acme-embed-1", Price{
			Provider: "openai", Model: "acme-embed-1", Mode: "embedding",
			Input: 20_000, CacheRead: 20_000, CacheWrite: 20_000,
		}},
		{"groq", "acme-oss-1", Price{
			Provider: "groq", Model: "acme-oss-1", Mode: "chat",
			Input: 150_000, Output: 600_000, CacheRead: 150_000, CacheWrite: 150_000, Reasoning: 600_000,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.provider+"/"+tt.model, func(t *testing.T) {
			got, ok := p.Lookup(tt.provider, tt.model)
			if !ok {
				t.Fatal("not found")
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Lookup mismatch (-want +got):\n%s", diff)
			}
		})
	}
	if _, ok := p.Lookup("openai", "1024-x-1024/dall-e-2"); ok {
		t.Error("an image-generation entry priced per pixel was loaded as a token price")
	}
}

func TestLoadLiteLLMMalformed(t *testing.T) {
	tests := []struct {
		name    string
		json    string
		badKeys []string
	}{
		{"not an object", `[1, 2]`, nil},
		{"bad entries", `{
			"good": {"litellm_provider": "openai", "input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06},
			"string-cost": {"litellm_provider": "openai", "input_cost_per_token": "0.000001"},
			"negative": {"litellm_provider": "openai", "input_cost_per_token": -1e-06},
			"not-object": 42,
			"provider-number": {"litellm_provider": 7, "input_cost_per_token": 1e-06},
			"bad-tier": {"litellm_provider": "openai", "input_cost_per_token": 1e-06, "input_cost_per_token_above_0k_tokens": 2e-06},
			"huge-exponent": {"litellm_provider": "openai", "input_cost_per_token": 1e999999}
		}`, []string{"string-cost", "negative", "not-object", "provider-number", "bad-tier", "huge-exponent"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := LoadLiteLLM(strings.NewReader(tt.json))
			if err == nil {
				t.Fatalf("LoadLiteLLM = %d entries, want an error", p.Len())
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v does not wrap ErrMalformed", err)
			}
			for _, k := range tt.badKeys {
				if !strings.Contains(err.Error(), `"`+k+`"`) {
					t.Errorf("error does not name entry %q:\n%v", k, err)
				}
			}
			if strings.Contains(err.Error(), `"good"`) {
				t.Errorf("error names the well-formed entry:\n%v", err)
			}
		})
	}
}

// fallbackTable has one entry for each lookup path.
const fallbackTable = `{
	"vendor-model": {"litellm_provider": "vendor", "input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06},
	"vendor-model-20250101": {"litellm_provider": "vendor", "input_cost_per_token": 9e-06, "output_cost_per_token": 9e-06},
	"cloud/vendor-model": {"litellm_provider": "cloud", "input_cost_per_token": 2e-06, "output_cost_per_token": 2e-06},
	"selfhost/*": {"litellm_provider": "selfhost", "input_cost_per_token": 0, "output_cost_per_token": 0}
}`

func TestLookupFallbacks(t *testing.T) {
	p, err := LoadLiteLLM(strings.NewReader(fallbackTable))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name            string
		provider, model string
		wantProvider    string // "" = not found
		wantModel       string
	}{
		{"exact", "vendor", "vendor-model", "vendor", "vendor-model"},
		{"exact dated entry wins over stripping", "vendor", "vendor-model-20250101", "vendor", "vendor-model-20250101"},
		{"provider's own entry", "cloud", "vendor-model", "cloud", "vendor-model"},
		{"date -YYYYMMDD", "cloud", "vendor-model-20260102", "cloud", "vendor-model"},
		{"date -YYYY-MM-DD", "vendor", "vendor-model-2026-01-02", "vendor", "vendor-model"},
		{"date @YYYYMMDD", "vendor", "vendor-model@20260102", "vendor", "vendor-model"},
		{"wildcard", "selfhost", "anything:8b", "selfhost", Wildcard},
		{"provider's wildcard before the bare name", "selfhost", "vendor-model", "selfhost", Wildcard},
		{"bare name for another provider", "azure", "vendor-model", "vendor", "vendor-model"},
		{"bare dated name", "azure", "vendor-model-20250101", "vendor", "vendor-model-20250101"},
		{"bare name after stripping", "azure", "vendor-model-20991231", "vendor", "vendor-model"},
		{"empty provider uses bare names", "", "vendor-model", "vendor", "vendor-model"},
		{"empty provider skips provider entries", "", "*", "", ""},
		{"not a date: month 13", "vendor", "vendor-model-20251301", "", ""},
		{"not a date: version suffix", "vendor", "vendor-model-0613", "", ""},
		{"prefixed key is not a bare name", "other", "cloud/vendor-model", "", ""},
		{"unknown model", "vendor", "unknown", "", ""},
		{"empty model", "vendor", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := p.Lookup(tt.provider, tt.model)
			if ok != (tt.wantProvider != "") {
				t.Fatalf("Lookup(%q, %q) found = %v (%s/%s), want %v", tt.provider, tt.model, ok, got.Provider, got.Model, !ok)
			}
			if got.Provider != tt.wantProvider || got.Model != tt.wantModel {
				t.Errorf("Lookup(%q, %q) = %s/%s, want %s/%s", tt.provider, tt.model, got.Provider, got.Model, tt.wantProvider, tt.wantModel)
			}
		})
	}
	var nilPrices *Prices
	if _, ok := nilPrices.Lookup("vendor", "vendor-model"); ok {
		t.Error("nil table found a price")
	}
}

func TestStripDate(t *testing.T) {
	tests := map[string]string{
		"claude-sonnet-4-5-20250929": "claude-sonnet-4-5",
		"gpt-5.5-2026-04-23":         "gpt-5.5",
		"claude-sonnet-4-5@20250929": "claude-sonnet-4-5",
		"gpt-5.5":                    "gpt-5.5",
		"mistral-large-2411":         "mistral-large-2411",
		"20250929":                   "20250929",
		"-20250929":                  "-20250929",
		"model-19990101":             "model-19990101",
		"model-20250132":             "model-20250132",
		"model-2025-1-01x":           "model-2025-1-01x",
		"anthropic.claude-3-5-sonnet-20241022-v2:0": "anthropic.claude-3-5-sonnet-20241022-v2:0",
	}
	for in, want := range tests {
		if got := stripDate(in); got != want {
			t.Errorf("stripDate(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMerge(t *testing.T) {
	base, err := LoadLiteLLM(strings.NewReader(fallbackTable))
	if err != nil {
		t.Fatal(err)
	}
	over, err := LoadLiteLLM(strings.NewReader(`{
		"vendor-model": {"litellm_provider": "vendor", "input_cost_per_token": 5e-06, "output_cost_per_token": 5e-06},
		"new-model": {"litellm_provider": "vendor", "input_cost_per_token": 7e-06, "output_cost_per_token": 7e-06}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	merged := base.Merge(over)
	tests := []struct {
		table           *Prices
		provider, model string
		wantInput       Rate
	}{
		{merged, "vendor", "vendor-model", 5_000_000},          // over replaces
		{merged, "azure", "vendor-model", 5_000_000},           // also as a bare name
		{merged, "vendor", "new-model", 7_000_000},             // over adds
		{merged, "cloud", "vendor-model", 2_000_000},           // base's other entries stay
		{merged, "vendor", "vendor-model-20250101", 9_000_000}, // an exact base entry beats a fallback to over
		{base, "vendor", "vendor-model", 1_000_000},            // base is unchanged
	}
	for _, tt := range tests {
		got, ok := tt.table.Lookup(tt.provider, tt.model)
		if !ok || got.Input != tt.wantInput {
			t.Errorf("Lookup(%q, %q) = %d, %v; want %d", tt.provider, tt.model, got.Input, ok, tt.wantInput)
		}
	}
	if got, want := merged.Len(), base.Len()+over.Len(); got != want {
		t.Errorf("merged Len() = %d, want %d", got, want)
	}
	if got := base.Merge(nil).Len(); got != base.Len() {
		t.Errorf("Merge(nil).Len() = %d, want %d", got, base.Len())
	}
}

func ptr(f float64) *float64 { return &f }

func TestForDeployment(t *testing.T) {
	p, err := LoadLiteLLM(strings.NewReader(`{
		"vendor-model": {"litellm_provider": "vendor", "input_cost_per_token": 1e-06, "output_cost_per_token": 4e-06,
			"cache_read_input_token_cost": 1e-07, "output_cost_per_reasoning_token": 5e-06,
			"input_cost_per_token_above_200k_tokens": 2e-06, "source": "https://example.com/vendor", "as_of": "2026-11-25"},
		"cloud/cloud-model": {"litellm_provider": "cloud", "input_cost_per_token": 3e-06, "output_cost_per_token": 6e-06},
		"selfhost/*": {"litellm_provider": "selfhost", "input_cost_per_token": 0, "output_cost_per_token": 0}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	vendor, _ := p.Lookup("vendor", "vendor-model")
	cloud, _ := p.Lookup("cloud", "cloud-model")
	selfhost, _ := p.Lookup("selfhost", "x")

	tests := []struct {
		name   string
		d      *config.Deployment
		want   Price
		wantOK bool
	}{
		{"table price", &config.Deployment{ID: "a-0", Provider: "vendor", Model: "vendor-model"}, vendor, true},
		{"self-hosted is free", &config.Deployment{ID: "a-0", Provider: "selfhost", Model: "llama"}, selfhost, true},
		{"unknown model", &config.Deployment{ID: "a-0", Provider: "vendor", Model: "other"}, Price{}, false},
		{"base_model names the entry",
			&config.Deployment{ID: "a-0", Provider: "azure", Model: "my-deployment", Info: config.ModelInfo{BaseModel: "vendor-model"}},
			vendor, true},
		{"base_model with a provider prefix",
			&config.Deployment{ID: "a-0", Provider: "selfhost", Model: "m", Info: config.ModelInfo{BaseModel: "cloud/cloud-model"}},
			cloud, true},
		{"base_model with an unknown prefix falls back to the bare name",
			&config.Deployment{ID: "a-0", Provider: "azure", Model: "m", Info: config.ModelInfo{BaseModel: "azure/vendor-model"}},
			vendor, true},
		{"base_model on a self-hosted deployment is not free",
			&config.Deployment{ID: "a-0", Provider: "selfhost", Model: "m", Info: config.ModelInfo{BaseModel: "vendor-model"}},
			vendor, true},
		{"unknown base_model is unpriced even for a free provider",
			&config.Deployment{ID: "a-0", Provider: "selfhost", Model: "m", Info: config.ModelInfo{BaseModel: "nope"}},
			Price{}, false},
		{"input override replaces input, cache and tiers; output stays",
			&config.Deployment{ID: "a-0", Provider: "vendor", Model: "vendor-model", Costs: config.Costs{Input: ptr(2e-06)}},
			Price{Provider: "vendor", Model: "vendor-model", Input: 2_000_000, CacheRead: 2_000_000, CacheWrite: 2_000_000,
				Output: 4_000_000, Reasoning: 5_000_000, Source: "config.yaml model_list litellm_params of deployment a-0"},
			true},
		{"override beats base_model",
			&config.Deployment{ID: "b-1", Provider: "azure", Model: "dep", Costs: config.Costs{Output: ptr(1.5e-05)},
				Info: config.ModelInfo{BaseModel: "vendor-model"}},
			Price{Provider: "azure", Model: "dep", Input: 1_000_000, CacheRead: 100_000, CacheWrite: 1_000_000,
				Output: 15_000_000, Reasoning: 15_000_000, Source: "config.yaml model_list litellm_params of deployment b-1"},
			true},
		{"overrides price a model the table lacks",
			&config.Deployment{ID: "c-0", Provider: "openai", Model: "custom", Costs: config.Costs{Input: ptr(1.1e-06),
				Output: ptr(0)}, Info: config.ModelInfo{Mode: "chat"}},
			Price{Provider: "openai", Model: "custom", Mode: "chat", Input: 1_100_000, CacheRead: 1_100_000, CacheWrite: 1_100_000,
				Source: "config.yaml model_list litellm_params of deployment c-0"},
			true},
		{"cache and reasoning overrides keep their own rates",
			&config.Deployment{ID: "d-0", Provider: "openai", Model: "custom", Costs: config.Costs{Input: ptr(2e-06),
				Output: ptr(8e-06), CacheRead: ptr(5e-07), CacheWrite: ptr(2.5e-06), Reasoning: ptr(1e-05)}},
			Price{Provider: "openai", Model: "custom", Input: 2_000_000, Output: 8_000_000, CacheRead: 500_000,
				CacheWrite: 2_500_000, Reasoning: 10_000_000, Source: "config.yaml model_list litellm_params of deployment d-0"},
			true},
		{"a cache override alone keeps the table's other rates",
			&config.Deployment{ID: "e-0", Provider: "vendor", Model: "vendor-model", Costs: config.Costs{CacheRead: ptr(5e-08)}},
			Price{Provider: "vendor", Model: "vendor-model", Input: 1_000_000, CacheRead: 50_000, CacheWrite: 1_000_000,
				Output: 4_000_000, Reasoning: 5_000_000, Source: "config.yaml model_list litellm_params of deployment e-0"},
			true},
		{"negative override is unpriced",
			&config.Deployment{ID: "a-0", Provider: "vendor", Model: "vendor-model", Costs: config.Costs{Input: ptr(-1e-06)}},
			Price{}, false},
		{"nil deployment", nil, Price{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ForDeployment(p, tt.d)
			if ok != tt.wantOK {
				t.Errorf("ForDeployment ok = %v, want %v", ok, tt.wantOK)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ForDeployment mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUnpriced(t *testing.T) {
	cfg := &config.Config{Deployments: []*config.Deployment{
		{ID: "gpt-5.5-0", Provider: "openai", Model: "gpt-5.5"},
		{ID: "mystery-0", Provider: "openai", Model: "gpt-9000"},
		{ID: "claude-sonnet-0", Provider: "anthropic", Model: "claude-sonnet-5"},
		{ID: "local-llama-0", Provider: "ollama", Model: "llama3.1"},
		{ID: "mystery-1", Provider: "vertex_ai", Model: "some-model"},
		{ID: "priced-by-config-0", Provider: "vertex_ai", Model: "some-model", Costs: config.Costs{Input: ptr(1e-06), Output: ptr(2e-06)}},
	}}
	want := []string{"mystery-0", "mystery-1"}
	if diff := cmp.Diff(want, Builtin().Unpriced(cfg)); diff != "" {
		t.Errorf("Unpriced mismatch (-want +got):\n%s", diff)
	}
	if got := Builtin().Unpriced(nil); got != nil {
		t.Errorf("Unpriced(nil) = %v, want nil", got)
	}
}

func TestRateFromDecimal(t *testing.T) {
	tests := []struct {
		in      string
		want    Rate
		wantErr bool
	}{
		{"3e-06", 3_000_000, false},
		{"0.000003", 3_000_000, false},
		{"3E-6", 3_000_000, false},
		{"1.875e-08", 18_750, false},
		{"0", 0, false},
		{"0.0", 0, false},
		{"5e-13", 1, false},   // half a picodollar rounds up
		{"4.9e-13", 0, false}, // less than half rounds down
		{"0.00032875", 328_750_000, false},
		{"-1e-06", 0, true},
		{"abc", 0, true},
		{`"1e-06"`, 0, true},
		{"true", 0, true},
		{"1e99", 0, true},
		{"1e7", 0, true}, // $10M per token does not fit an int64 of picodollars
		{"", 0, true},
	}
	for _, tt := range tests {
		got, err := rateFromDecimal(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("rateFromDecimal(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
	if got := Rate(3_750_000).PerMillionUSD(); got != 3.75 {
		t.Errorf("Rate(3_750_000).PerMillionUSD() = %v, want 3.75", got)
	}
	floats := []struct {
		in      float64
		want    Rate
		wantErr bool
	}{
		{3e-06, 3_000_000, false},
		{1.1e-06, 1_100_000, false}, // not exact in binary; its shortest decimal is
		{2.5e-07, 250_000, false},
		{0.000015, 15_000_000, false},
		{math.NaN(), 0, true},
		{math.Inf(1), 0, true},
	}
	for _, tt := range floats {
		got, err := rateFromFloat(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("rateFromFloat(%v) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

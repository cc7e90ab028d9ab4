package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tollgate-dev/tollgate/translate"
)

// envOf is an environment holding exactly m, standing in for os.LookupEnv.
func envOf(m map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

// defaultBase is the registry's base URL for provider, so tests do not copy it.
func defaultBase(t *testing.T, provider string) string {
	t.Helper()
	spec, ok := translate.Lookup(provider)
	if !ok {
		t.Fatalf("provider %s is not in the translate registry", provider)
	}
	return spec.DefaultBase
}

// problems splits a joined error into its messages.
func problems(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

func ptr[T any](v T) *T { return &v }

var cmpConfig = cmp.Options{cmpopts.IgnoreUnexported(Config{}), cmpopts.EquateEmpty()}

// The seed article's config must load unchanged.
func TestLoadArticle(t *testing.T) {
	env := envOf(map[string]string{
		"OPENAI_API_KEY":     "sk-openai-test",
		"ANTHROPIC_API_KEY":  "sk-ant-test",
		"LITELLM_MASTER_KEY": "sk-master-test",
	})
	got, err := Load("testdata/article.yaml", env)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := &Config{
		Deployments: []*Deployment{
			{ID: "gpt-5.5-0", Alias: "gpt-5.5", Provider: "openai", Model: "gpt-5.5",
				APIBase: defaultBase(t, "openai"), APIKey: "sk-openai-test"},
			{ID: "claude-sonnet-0", Alias: "claude-sonnet", Provider: "anthropic", Model: "claude-sonnet-5",
				APIBase: defaultBase(t, "anthropic"), APIKey: "sk-ant-test"},
			{ID: "local-llama-0", Alias: "local-llama", Provider: "ollama", Model: "llama3.1",
				APIBase: "http://ollama:11434"},
		},
		Fallbacks:       map[string][]string{"gpt-5.5": {"claude-sonnet", "local-llama"}},
		NumRetries:      DefaultNumRetries,
		RequestTimeout:  600 * time.Second,
		MasterKey:       "sk-master-test",
		MaxRequestBytes: 32 << 20,
	}
	if diff := cmp.Diff(want, got, cmpConfig); diff != "" {
		t.Errorf("Load(article) mismatch (-want +got):\n%s", diff)
	}

	if diff := cmp.Diff([]string{"claude-sonnet", "gpt-5.5", "local-llama"}, got.Aliases()); diff != "" {
		t.Errorf("Aliases() (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want.Deployments[2:], got.DeploymentsFor("local-llama")); diff != "" {
		t.Errorf("DeploymentsFor(local-llama) (-want +got):\n%s", diff)
	}
	if d, ok := got.Deployment("claude-sonnet-0"); !ok || d != got.Deployments[1] {
		t.Errorf("Deployment(claude-sonnet-0) = %v, %v; want the second deployment", d, ok)
	}
	if diff := cmp.Diff([]string{"claude-sonnet", "local-llama"}, got.FallbacksFor("gpt-5.5")); diff != "" {
		t.Errorf("FallbacksFor(gpt-5.5) (-want +got):\n%s", diff)
	}
}

// With no environment, every variable the article needs is reported at once, each with
// the file, line and setting.
func TestLoadArticleWithoutEnvironment(t *testing.T) {
	_, err := Load("testdata/article.yaml", envOf(nil))
	want := []string{
		"testdata/article.yaml:7: model_list[0].litellm_params.api_key: environment variable OPENAI_API_KEY is not set",
		"testdata/article.yaml:11: model_list[1].litellm_params.api_key: environment variable ANTHROPIC_API_KEY is not set",
		"testdata/article.yaml:19: general_settings.master_key: environment variable LITELLM_MASTER_KEY is not set",
	}
	if diff := cmp.Diff(want, problems(err)); diff != "" {
		t.Errorf("Load(article, no env) problems (-want +got):\n%s", diff)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.yaml", nil)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing file) = %v; want an error wrapping fs.ErrNotExist", err)
	}
}

func TestParse(t *testing.T) {
	openaiBase := defaultBase(t, "openai")
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want *Config
	}{
		{
			name: "defaults",
			yaml: `
model_list:
  - model_name: m
    litellm_params:
      model: openai/gpt-4o
      api_key: sk-x
`,
			want: &Config{
				Deployments:     []*Deployment{{ID: "m-0", Alias: "m", Provider: "openai", Model: "gpt-4o", APIBase: openaiBase, APIKey: "sk-x"}},
				NumRetries:      2,
				RequestTimeout:  600 * time.Second,
				MaxRequestBytes: 32 << 20,
			},
		},
		{
			name: "master key and database URL from the environment",
			yaml: `
model_list:
  - model_name: m
    litellm_params: {model: ollama/llama3}
`,
			env: map[string]string{"LITELLM_MASTER_KEY": "sk-env", "DATABASE_URL": "postgres://u:p@db:5432/litellm"},
			want: &Config{
				Deployments:     []*Deployment{{ID: "m-0", Alias: "m", Provider: "ollama", Model: "llama3", APIBase: defaultBase(t, "ollama")}},
				NumRetries:      2,
				RequestTimeout:  600 * time.Second,
				MaxRequestBytes: 32 << 20,
				MasterKey:       "sk-env",
				DatabaseURL:     "postgres://u:p@db:5432/litellm",
			},
		},
		{
			name: "config wins over the environment",
			yaml: `
model_list:
  - model_name: m
    litellm_params: {model: ollama/llama3}
general_settings:
  master_key: sk-file
  database_url: postgresql://file@db/x
`,
			env: map[string]string{"LITELLM_MASTER_KEY": "sk-env", "DATABASE_URL": "postgres://env@db/x"},
			want: &Config{
				Deployments:     []*Deployment{{ID: "m-0", Alias: "m", Provider: "ollama", Model: "llama3", APIBase: defaultBase(t, "ollama")}},
				NumRetries:      2,
				RequestTimeout:  600 * time.Second,
				MaxRequestBytes: 32 << 20,
				MasterKey:       "sk-file",
				DatabaseURL:     "postgresql://file@db/x",
			},
		},
		{
			name: "environment_variables are seen before the environment",
			yaml: `
environment_variables:
  OPENAI_API_KEY: sk-from-config
  LITELLM_MASTER_KEY: sk-master-from-config
  COPIED: os.environ/REAL
  EMPTY:
model_list:
  - model_name: m
    litellm_params:
      model: openai/gpt-4o
      api_key: os.environ/OPENAI_API_KEY
      organization: os.environ/COPIED
`,
			env: map[string]string{"OPENAI_API_KEY": "sk-from-env", "REAL": "org-1"},
			want: &Config{
				Deployments: []*Deployment{{ID: "m-0", Alias: "m", Provider: "openai", Model: "gpt-4o",
					APIBase: openaiBase, APIKey: "sk-from-config", Organization: "org-1"}},
				NumRetries:      2,
				RequestTimeout:  600 * time.Second,
				MaxRequestBytes: 32 << 20,
				MasterKey:       "sk-master-from-config",
				Environment: map[string]Secret{
					"OPENAI_API_KEY": "sk-from-config", "LITELLM_MASTER_KEY": "sk-master-from-config",
					"COPIED": "org-1", "EMPTY": "",
				},
			},
		},
		{
			name: "every litellm_params and model_info field",
			yaml: `
model_list:
  - model_name: azure-gpt
    litellm_params:
      model: azure/my-deployment
      api_key: os.environ/AZURE_KEY
      api_base: https://example.openai.azure.com/
      api_version: 2024-10-21
      organization: org-x
      extra_headers: {X-Team: blue, "x-Trace": "on"}
      timeout: 30
      stream_timeout: 2.5
      rpm: 600
      tpm: "100000"
      input_cost_per_token: 0.0000025
      output_cost_per_token: 1e-5
      cache_read_input_token_cost: 0.00000025
    model_info:
      id: azure-eu
      input_cost_per_token: 9
      cache_creation_input_token_cost: 0.000003
      mode: chat
      base_model: azure/gpt-4o
      access_groups: [beta, internal]
      max_input_tokens: 128000
      max_output_tokens: 16384
      supports_vision: true
  - model_name: bedrock
    litellm_params:
      model: openai/claude
      aws_region_name: eu-west-1
      aws_access_key_id: AKIA
      aws_secret_access_key: aws-secret
      aws_session_token: aws-token
      vertex_project: proj
      vertex_location: europe-west4
      vertex_credentials: /secrets/sa.json
      api_key: sk-y
    model_info:
      input_cost_per_token: 0.5
      output_cost_per_token: 1.5
      output_cost_per_reasoning_token: 2.5
      max_tokens: 4096
`,
			env: map[string]string{"AZURE_KEY": "az-key"},
			want: &Config{
				Deployments: []*Deployment{
					{
						ID: "azure-eu", Alias: "azure-gpt", Provider: "azure", Model: "my-deployment",
						APIBase: "https://example.openai.azure.com", APIKey: "az-key", APIVersion: "2024-10-21",
						Organization: "org-x", ExtraHeaders: map[string]string{"x-team": "blue", "x-trace": "on"},
						Timeout: 30 * time.Second, StreamTimeout: 2500 * time.Millisecond, RPM: 600, TPM: 100000,
						// litellm_params's prices win; model_info fills in the rest.
						Costs: Costs{Input: ptr(0.0000025), Output: ptr(1e-5), CacheRead: ptr(0.00000025), CacheWrite: ptr(0.000003)},
						Info: ModelInfo{Mode: "chat", BaseModel: "azure/gpt-4o", AccessGroups: []string{"beta", "internal"},
							MaxInputTokens: 128000, MaxOutputTokens: 16384},
					},
					{
						ID: "bedrock-0", Alias: "bedrock", Provider: "openai", Model: "claude",
						APIBase: openaiBase, APIKey: "sk-y",
						AWSRegion: "eu-west-1", AWSAccessKeyID: "AKIA", AWSSecretAccessKey: "aws-secret", AWSSessionToken: "aws-token",
						VertexProject: "proj", VertexLocation: "europe-west4", VertexCredentials: "/secrets/sa.json",
						Costs: Costs{Input: ptr(0.5), Output: ptr(1.5), Reasoning: ptr(2.5)},
						Info:  ModelInfo{MaxOutputTokens: 4096},
					},
				},
				NumRetries:      2,
				RequestTimeout:  600 * time.Second,
				MaxRequestBytes: 32 << 20,
			},
		},
		{
			name: "settings, IDs per alias, custom_llm_provider, YAML 1.1 scalars",
			yaml: `
model_list:
  - model_name: llama
    litellm_params: {model: ollama/llama3, api_base: "http://gpu-1:11434"}
  - model_name: 1.10
    litellm_params:
      model: my-model
      custom_llm_provider: hosted_vllm
      api_base: http://vllm:8000/v1
  - model_name: llama
    litellm_params:
      model: ollama_chat/llama3
      api_base: http://gpu-2:11434
  - model_name: big
    litellm_params:
      model: hosted_vllm/hosted_vllm/qwen
      custom_llm_provider: hosted_vllm
      api_base: http://vllm:8000/v1
      api_key: os.environ/UNSET_BUT_NOT_NEEDED
litellm_settings:
  num_retries: 1
  request_timeout: 120
  fallbacks:
    - llama: ["1.10"]
    - "1.10": []
  context_window_fallbacks: [{llama: [big]}]
  content_policy_fallbacks: [{big: [llama]}]
  default_fallbacks: [big, llama]
router_settings:
  routing_strategy: simple-shuffle
general_settings:
  max_request_size_mb: 1.5
  litellm_key_header_name: X-LiteLLM-Key
`,
			want: &Config{
				Deployments: []*Deployment{
					{ID: "llama-0", Alias: "llama", Provider: "ollama", Model: "llama3", APIBase: "http://gpu-1:11434"},
					{ID: "1.10-0", Alias: "1.10", Provider: "hosted_vllm", Model: "my-model", APIBase: "http://vllm:8000/v1"},
					{ID: "llama-1", Alias: "llama", Provider: "ollama_chat", Model: "llama3", APIBase: "http://gpu-2:11434"},
					{ID: "big-0", Alias: "big", Provider: "hosted_vllm", Model: "hosted_vllm/qwen", APIBase: "http://vllm:8000/v1"},
				},
				Fallbacks:              map[string][]string{"llama": {"1.10"}, "1.10": {}},
				ContextWindowFallbacks: map[string][]string{"llama": {"big"}},
				ContentPolicyFallbacks: map[string][]string{"big": {"llama"}},
				DefaultFallbacks:       []string{"big", "llama"},
				NumRetries:             1,
				RequestTimeout:         120 * time.Second,
				MaxRequestBytes:        3 << 19,
				KeyHeader:              "x-litellm-key",
			},
		},
		{
			name: "merge keys",
			yaml: `
model_list:
  - model_name: a
    litellm_params: &common
      model: openai/gpt-4o
      api_key: sk-shared
      rpm: 10
  - model_name: b
    litellm_params:
      <<: *common
      rpm: 20
`,
			want: &Config{
				Deployments: []*Deployment{
					{ID: "a-0", Alias: "a", Provider: "openai", Model: "gpt-4o", APIBase: openaiBase, APIKey: "sk-shared", RPM: 10},
					{ID: "b-0", Alias: "b", Provider: "openai", Model: "gpt-4o", APIBase: openaiBase, APIKey: "sk-shared", RPM: 20},
				},
				NumRetries:      2,
				RequestTimeout:  600 * time.Second,
				MaxRequestBytes: 32 << 20,
			},
		},
		{
			name: "null values are unset values",
			yaml: `
model_list:
  - model_name: m
    litellm_params:
      model: openai/gpt-4o
      api_key: sk-x
      api_base:
      rpm: ~
litellm_settings:
  num_retries:
  drop_params:
general_settings:
  master_key: null
`,
			env: map[string]string{"LITELLM_MASTER_KEY": "sk-env"},
			want: &Config{
				Deployments:     []*Deployment{{ID: "m-0", Alias: "m", Provider: "openai", Model: "gpt-4o", APIBase: openaiBase, APIKey: "sk-x"}},
				NumRetries:      2,
				RequestTimeout:  600 * time.Second,
				MaxRequestBytes: 32 << 20,
				MasterKey:       "sk-env",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.yaml), envOf(tt.env))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmpConfig); diff != "" {
				t.Errorf("Parse mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// Settings tollgate reads but does not act on load, each with a warning naming it.
func TestParseWarnings(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "ignored LiteLLM settings",
			yaml: `model_list:
  - model_name: m
    litellm_params:
      model: openai/gpt-4o
      api_key: sk-x
      max_retries: 3
    model_info:
      supports_function_calling: true
      my_note: hello
  - model_name: "openai/*"
    litellm_params: {model: "openai/*", api_key: sk-x}
litellm_settings:
  drop_params: true
  cache: true
router_settings:
  routing_strategy: least-busy
  redis_host: redis
general_settings:
  always_include_stream_usage: true
  disable_spend_logs: true
callback_settings: {}
`,
			want: []string{
				"line 6: model_list[0].litellm_params.max_retries: ignored: Envoy retries per alias: set num_retries",
				"line 9: unknown key model_list[0].model_info.my_note (ignored)",
				`line 10: model_list[1].model_name: "openai/*": wildcard model names are not supported; clients must ask for exactly this name`,
				"line 13: litellm_settings.drop_params: ignored: tollgate does not drop unsupported parameters yet",
				"line 14: litellm_settings.cache: ignored: tollgate does not cache responses",
				"line 16: router_settings.routing_strategy: least-busy is not supported; tollgate spreads requests evenly over an alias's deployments (simple-shuffle)",
				"line 17: router_settings.redis_host: ignored: tollgate's Redis is not configured here",
				"line 20: general_settings.disable_spend_logs: ignored: tollgate always records spend",
				"line 21: callback_settings: ignored: tollgate runs no LiteLLM callbacks",
			},
		},
		{
			name: "router_settings override litellm_settings",
			yaml: `model_list:
  - {model_name: m, litellm_params: {model: ollama/x}}
  - {model_name: n, litellm_params: {model: ollama/y}}
litellm_settings:
  num_retries: 1
  request_timeout: 10
  fallbacks: [{m: [n]}]
router_settings:
  num_retries: 3
  timeout: 20
  fallbacks: [{n: [m]}]
`,
			want: []string{
				"line 9: router_settings.num_retries: overrides litellm_settings.num_retries (router_settings wins, as in LiteLLM)",
				"line 10: router_settings.timeout: overrides litellm_settings.request_timeout (router_settings wins, as in LiteLLM)",
				"line 11: router_settings.fallbacks: overrides litellm_settings.fallbacks (router_settings wins, as in LiteLLM)",
			},
		},
		{
			name: "fallbacks are not chained",
			yaml: `model_list:
  - {model_name: a, litellm_params: {model: ollama/a}}
  - {model_name: b, litellm_params: {model: ollama/b}}
  - {model_name: c, litellm_params: {model: ollama/c}}
litellm_settings:
  fallbacks:
    - a: [b]
    - b: [a, c]
    - c: [a]
`,
			want: []string{
				"line 7: litellm_settings.fallbacks: a: tollgate does not chain fallbacks, so c (fallbacks of its fallbacks) will not be tried for a; add them to its list to try them",
				"line 9: litellm_settings.fallbacks: c: tollgate does not chain fallbacks, so b (fallbacks of its fallbacks) will not be tried for c; add them to its list to try them",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.yaml), nil)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, got.Warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRouterSettingsWin(t *testing.T) {
	got, err := Parse([]byte(`model_list:
  - {model_name: m, litellm_params: {model: ollama/x}}
  - {model_name: n, litellm_params: {model: ollama/y}}
litellm_settings: {num_retries: 1, request_timeout: 10, fallbacks: [{m: [n]}]}
router_settings: {num_retries: 3, timeout: 20, fallbacks: [{n: [m]}]}
`), nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	type settings struct {
		NumRetries     int
		RequestTimeout time.Duration
		Fallbacks      map[string][]string
	}
	want := settings{3, 20 * time.Second, map[string][]string{"n": {"m"}}}
	if diff := cmp.Diff(want, settings{got.NumRetries, got.RequestTimeout, got.Fallbacks}); diff != "" {
		t.Errorf("settings (-want +got):\n%s", diff)
	}
}

func TestParseErrors(t *testing.T) {
	providers := strings.Join(translate.Providers(), ", ")
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want []string
	}{
		{
			name: "missing environment variable names the variable",
			yaml: `model_list:
  - model_name: m
    litellm_params:
      model: openai/gpt-4o
      api_key: os.environ/OPENAI_API_KEY
      api_base: os.environ/OPENAI_BASE
`,
			want: []string{
				"line 5: model_list[0].litellm_params.api_key: environment variable OPENAI_API_KEY is not set",
				"line 6: model_list[0].litellm_params.api_base: environment variable OPENAI_BASE is not set",
			},
		},
		{
			name: "unknown keys",
			yaml: `model_list:
  - model_name: m
    litellm_prams: {model: openai/x}
general_settings:
  foo: 1
modle_list: []
`,
			want: []string{
				"line 2: model_list[0].litellm_params: required: where the model's requests go",
				"line 3: unknown key model_list[0].litellm_prams",
				"line 5: unknown key general_settings.foo",
				"line 6: unknown key modle_list",
			},
		},
		{
			name: "unknown provider lists the known ones",
			yaml: `model_list:
  - model_name: m
    litellm_params: {model: nope/x}
`,
			want: []string{`line 3: model_list[0].litellm_params.model: unknown provider "nope"; known providers: ` + providers},
		},
		{
			name: "model without a provider prefix",
			yaml: `model_list:
  - model_name: m
    litellm_params: {model: gpt-4o, api_key: sk-x}
`,
			want: []string{`line 3: model_list[0].litellm_params.model: "gpt-4o" has no provider prefix: write provider/name, e.g. openai/gpt-4o (known providers: ` + providers + `)`},
		},
		{
			name: "missing model, model_name and litellm_params",
			yaml: `model_list:
  - model_name: m
    litellm_params: {api_key: sk-x}
  - litellm_params: {model: "openai/"}
  - model_name: n
`,
			want: []string{
				"line 3: model_list[0].litellm_params.model: required: provider/name, e.g. openai/gpt-4o",
				"line 4: model_list[1].model_name: required: the model name clients ask for",
				`line 4: model_list[1].litellm_params.model: "openai/" has no model name after the provider`,
				"line 5: model_list[2].litellm_params: required: where the model's requests go",
			},
		},
		{
			name: "bad api_base",
			yaml: `model_list:
  - {model_name: a, litellm_params: {model: ollama/x, api_base: "ftp://h/"}}
  - {model_name: b, litellm_params: {model: ollama/x, api_base: "ollama:11434"}}
  - {model_name: c, litellm_params: {model: ollama/x, api_base: "/v1"}}
  - {model_name: d, litellm_params: {model: ollama/x, api_base: "http://user:hunter2@h"}}
  - {model_name: e, litellm_params: {model: ollama/x, api_base: "http://h/v1?key=1"}}
  - {model_name: f, litellm_params: {model: hosted_vllm/x}}
  - {model_name: g, litellm_params: {model: hosted_vllm/x, api_base: ""}}
`,
			want: []string{
				`line 2: model_list[0].litellm_params.api_base: "ftp://h/" must be an absolute http:// or https:// URL`,
				`line 3: model_list[1].litellm_params.api_base: "ollama:11434" must be an absolute http:// or https:// URL`,
				`line 4: model_list[2].litellm_params.api_base: "/v1" must be an absolute http:// or https:// URL`,
				`line 5: model_list[3].litellm_params.api_base: must not carry credentials (user:password@); use api_key`,
				`line 6: model_list[4].litellm_params.api_base: "http://h/v1?key=1" must not have a query or fragment`,
				`line 7: model_list[5].litellm_params.api_base: required for provider hosted_vllm`,
				`line 8: model_list[6].litellm_params.api_base: is empty; provider hosted_vllm has no default, so it is required`,
			},
		},
		{
			name: "provider that needs a key",
			yaml: `model_list:
  - {model_name: a, litellm_params: {model: openai/x}}
  - {model_name: b, litellm_params: {model: openai/x, api_key: os.environ/EMPTY}}
`,
			env: map[string]string{"EMPTY": ""},
			want: []string{
				"line 2: model_list[0].litellm_params.api_key: required for provider openai",
				"line 3: model_list[1].litellm_params.api_key: is empty; provider openai needs an API key",
			},
		},
		{
			name: "fallbacks name known models",
			yaml: `model_list:
  - {model_name: a, litellm_params: {model: ollama/x}}
  - {model_name: b, litellm_params: {model: ollama/x}}
litellm_settings:
  fallbacks: [{"a": ["claude-x", "a", "b", "b"]}, {"zz": ["a"]}, {"a": ["b"]}]
  context_window_fallbacks: {a: [b]}
  default_fallbacks: [b, nope]
router_settings:
  content_policy_fallbacks: [{b: a}]
`,
			want: []string{
				"line 5: litellm_settings.fallbacks: a falls back to unknown model claude-x; known models: a, b",
				"line 5: litellm_settings.fallbacks: a falls back to itself",
				"line 5: litellm_settings.fallbacks: a lists b twice",
				"line 5: litellm_settings.fallbacks: fallbacks for unknown model zz; known models: a, b",
				"line 5: litellm_settings.fallbacks: a is listed twice (first at line 5)",
				"line 6: litellm_settings.context_window_fallbacks: must be a list of {model: [fallback models]} maps, not a mapping",
				"line 7: litellm_settings.default_fallbacks: unknown model nope; known models: a, b",
				`line 9: router_settings.content_policy_fallbacks: b: its fallbacks must be a list of models, not the value "a"`,
			},
		},
		{
			name: "deployment IDs",
			yaml: `model_list:
  - {model_name: a, litellm_params: {model: ollama/x}}
  - {model_name: b, litellm_params: {model: ollama/x}, model_info: {id: a-0}}
  - {model_name: c, litellm_params: {model: ollama/x}, model_info: {id: shared}}
  - {model_name: d, litellm_params: {model: ollama/x}, model_info: {id: shared}}
  - {model_name: e, litellm_params: {model: ollama/x}, model_info: {id: tollgate_admin}}
  - {model_name: f, litellm_params: {model: ollama/x}, model_info: {id: "has space"}}
  - {model_name: "my model", litellm_params: {model: ollama/x}}
  - {model_name: " padded", litellm_params: {model: ollama/x}}
`,
			want: []string{
				`line 3: model_list[1].model_info.id: deployment ID "a-0" is already used by model_list[0]; set a unique model_info.id`,
				`line 5: model_list[3].model_info.id: deployment ID "shared" is already used by model_list[2]; set a unique model_info.id`,
				`line 6: model_list[4].model_info.id: "tollgate_admin" is reserved for tollgate's own Envoy cluster`,
				`line 7: model_list[5].model_info.id: "has space" must be printable ASCII without spaces: it names an Envoy cluster`,
				`line 8: model_list[6].model_name: the deployment ID "my model-0" made from it must be printable ASCII without spaces: it names an Envoy cluster; set model_info.id`,
				`line 9: model_list[7].model_name: " padded" starts or ends with white space`,
			},
		},
		{
			name: "master key and database URL",
			yaml: `model_list:
  - {model_name: a, litellm_params: {model: ollama/x}}
general_settings:
  master_key: my-secret-master
  database_url: mysql://u:hunter2@db/x
`,
			want: []string{
				`line 4: general_settings.master_key: must start with "sk-" (LiteLLM requires it)`,
				"line 5: general_settings.database_url: must be a postgres://user:password@host:port/db URL",
			},
		},
		{
			name: "master key and database URL from the environment",
			yaml: `model_list:
  - {model_name: a, litellm_params: {model: ollama/x}}
`,
			env: map[string]string{"LITELLM_MASTER_KEY": "my-secret-master", "DATABASE_URL": "db:5432"},
			want: []string{
				`general_settings.master_key: must start with "sk-" (LiteLLM requires it) (from LITELLM_MASTER_KEY)`,
				"general_settings.database_url: must be a postgres://user:password@host:port/db URL (from DATABASE_URL)",
			},
		},
		{
			name: "values of the wrong type",
			yaml: `model_list:
  - model_name: [a]
    litellm_params:
      model: ollama/x
      rpm: 1.5
      tpm: -1
      timeout: 0
      stream_timeout: soon
      input_cost_per_token: .nan
      extra_headers: {"bad header": x, ok: [1]}
    model_info: {access_groups: a}
litellm_settings:
  num_retries: three
  request_timeout: -5
router_settings:
  routing_strategy: fastest
general_settings:
  max_request_size_mb: 0
  litellm_key_header_name: "x key"
`,
			want: []string{
				`line 2: model_list[0].model_name: must be a single value, not a list`,
				`line 5: model_list[0].litellm_params.rpm: must be a whole number, not "1.5"`,
				`line 6: model_list[0].litellm_params.tpm: must be at least 0, not -1`,
				`line 7: model_list[0].litellm_params.timeout: must be a number of seconds above 0 and at most 9223372036`,
				`line 8: model_list[0].litellm_params.stream_timeout: must be a number, not "soon"`,
				`line 9: model_list[0].litellm_params.input_cost_per_token: must be a number, not ".nan"`,
				`line 10: model_list[0].litellm_params.extra_headers.bad header: is not a valid HTTP header name`,
				`line 10: model_list[0].litellm_params.extra_headers.ok: must be a single value, not a list`,
				`line 11: model_list[0].model_info.access_groups: must be a list, not the value "a"`,
				`line 13: litellm_settings.num_retries: must be a whole number, not "three"`,
				`line 14: litellm_settings.request_timeout: must not be negative`,
				`line 16: router_settings.routing_strategy: unknown routing strategy "fastest"; LiteLLM's are: simple-shuffle, least-busy, usage-based-routing, usage-based-routing-v2, latency-based-routing, cost-based-routing`,
				`line 18: general_settings.max_request_size_mb: must be above 0 and at most 1048576`,
				`line 19: general_settings.litellm_key_header_name: "x key" is not a valid HTTP header name`,
			},
		},
		{
			name: "refused settings",
			yaml: `include: [models.yaml]
model_list:
  - {model_name: a, litellm_params: {model: ollama/x}}
general_settings:
  allowed_ips: [10.0.0.1]
`,
			want: []string{
				"line 1: include: not supported: tollgate reads one file; paste the included files' sections into config.yaml",
				"line 5: general_settings.allowed_ips: not supported: tollgate cannot enforce it; restrict client IPs in Envoy (RBAC filter) and remove this key",
			},
		},
		{
			name: "duplicate keys",
			yaml: `model_list:
  - model_name: a
    model_name: b
    litellm_params: {model: ollama/x}
`,
			want: []string{"line 3: model_list[0].model_name: duplicate key (first at line 2)"},
		},
		{
			name: "empty config",
			yaml: "# nothing here\n",
			want: []string{"model_list: required: list at least one model"},
		},
		{
			name: "empty model list",
			yaml: "model_list: []\n",
			want: []string{"model_list: required: list at least one model"},
		},
		{
			name: "not a mapping",
			yaml: "- model_name: a\n",
			want: []string{"line 1: must be a mapping (key: value lines), not a list", "model_list: required: list at least one model"},
		},
		{
			name: "several problems reported together, in file order",
			yaml: `model_list:
  - model_name: gpt-5.5
    litellm_params:
      model: openai/gpt-5.5
      api_key: os.environ/OPENAI_API_KEY
  - model_name: local
    litellm_params: {model: vllm/x}
litellm_settings:
  fallbacks: [{"gpt-5.5": ["claude-sonnet"]}]
general_settings:
  master_key: hunter2
  foo: bar
`,
			want: []string{
				"line 5: model_list[0].litellm_params.api_key: environment variable OPENAI_API_KEY is not set",
				`line 7: model_list[1].litellm_params.model: unknown provider "vllm"; known providers: ` + providers,
				"line 9: litellm_settings.fallbacks: gpt-5.5 falls back to unknown model claude-sonnet; known models: gpt-5.5, local",
				`line 11: general_settings.master_key: must start with "sk-" (LiteLLM requires it)`,
				"line 12: unknown key general_settings.foo",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.yaml), envOf(tt.env))
			if err == nil {
				t.Fatalf("Parse succeeded with %+v; want errors", got)
			}
			if diff := cmp.Diff(tt.want, problems(err)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			for _, secret := range []string{"hunter2", "my-secret-master"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error message contains the secret %q:\n%v", secret, err)
				}
			}
		})
	}
}

func TestParseYAMLErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"syntax", "model_list:\n  - model_name: [a\n", "parse config: yaml: "},
		{"two documents", "model_list: []\n---\nmodel_list: []\n", "parse config: more than one YAML document; config.yaml must hold one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), nil)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("Parse = %v; want an error starting %q", err, tt.want)
			}
		})
	}
}

// environment_variables must not leak into the process environment: LiteLLM sets them
// with os.environ[...] = ..., tollgate keeps them in the Config.
func TestEnvironmentVariablesStayOutOfTheProcess(t *testing.T) {
	const name = "TOLLGATE_CONFIG_TEST_ONLY_VARIABLE"
	if _, set := os.LookupEnv(name); set {
		t.Skipf("%s is set in this environment", name)
	}
	cfg, err := Parse([]byte(`environment_variables:
  `+name+`: sk-abc
model_list:
  - {model_name: a, litellm_params: {model: openai/x, api_key: os.environ/`+name+`}}
`), os.LookupEnv)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got := cfg.Deployments[0].APIKey.Reveal(); got != "sk-abc" {
		t.Errorf("api_key = %q; want the environment_variables value", got)
	}
	if v, set := os.LookupEnv(name); set {
		t.Errorf("Parse set %s=%q in the process environment", name, v)
	}
}

// No way of printing a Config shows a secret.
func TestSecretsAreNotPrinted(t *testing.T) {
	secrets := map[string]string{
		"KEY": "sk-secret-key-1", "MASTER": "sk-secret-master-2", "DB": "postgres://u:secret-db-3@db/x",
		"AWS_ID": "secret-aws-id-4", "AWS_SECRET": "secret-aws-5", "AWS_TOKEN": "secret-aws-token-6",
		"VERTEX": "secret-vertex-7", "ENV_SECRET": "secret-env-8",
	}
	cfg, err := Parse([]byte(`environment_variables:
  ANOTHER: os.environ/ENV_SECRET
model_list:
  - model_name: a
    litellm_params:
      model: openai/x
      api_key: os.environ/KEY
      aws_access_key_id: os.environ/AWS_ID
      aws_secret_access_key: os.environ/AWS_SECRET
      aws_session_token: os.environ/AWS_TOKEN
      vertex_credentials: os.environ/VERTEX
general_settings:
  master_key: os.environ/MASTER
  database_url: os.environ/DB
`), envOf(secrets))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	printed := map[string]string{
		"%v": fmt.Sprintf("%v", cfg), "%+v": fmt.Sprintf("%+v", cfg), "%#v": fmt.Sprintf("%#v", cfg),
		"json":          string(js),
		"deployment %v": fmt.Sprintf("%v", cfg.Deployments[0]), "deployment %+v": fmt.Sprintf("%+v", *cfg.Deployments[0]),
		"deployment %#v": fmt.Sprintf("%#v", *cfg.Deployments[0]),
	}
	for how, out := range printed {
		for name, secret := range secrets {
			if strings.Contains(out, secret) {
				t.Errorf("%s of the Config shows %s's value:\n%s", how, name, out)
			}
		}
	}
	// The values are there for the code that needs them.
	if got := cfg.Deployments[0].AWSSecretAccessKey.Reveal(); got != secrets["AWS_SECRET"] {
		t.Errorf("AWSSecretAccessKey.Reveal() = %q; want %q", got, secrets["AWS_SECRET"])
	}
}

// A Config built by hand, as other packages' tests may, answers lookups like a loaded one.
func TestIndexOfHandBuiltConfig(t *testing.T) {
	a0 := &Deployment{ID: "a-0", Alias: "a"}
	b0 := &Deployment{ID: "b-0", Alias: "b"}
	a1 := &Deployment{ID: "a-1", Alias: "a"}
	cfg := &Config{
		Deployments:      []*Deployment{a0, b0, a1},
		Fallbacks:        map[string][]string{"b": {}},
		DefaultFallbacks: []string{"a", "b"},
	}
	if diff := cmp.Diff([]string{"a", "b"}, cfg.Aliases()); diff != "" {
		t.Errorf("Aliases() (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]*Deployment{a0, a1}, cfg.DeploymentsFor("a")); diff != "" {
		t.Errorf("DeploymentsFor(a) (-want +got):\n%s", diff)
	}
	if got := cfg.DeploymentsFor("zz"); got != nil {
		t.Errorf("DeploymentsFor(zz) = %v; want nil", got)
	}
	if d, ok := cfg.Deployment("a-1"); !ok || d != a1 {
		t.Errorf("Deployment(a-1) = %v, %v; want a1", d, ok)
	}
	if _, ok := cfg.Deployment("nope"); ok {
		t.Errorf("Deployment(nope) found a deployment")
	}
	tests := []struct {
		alias string
		want  []string
	}{
		{"a", []string{"b"}}, // default_fallbacks without itself
		{"b", nil},           // its own, empty, entry turns the defaults off
		{"c", []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run("FallbacksFor "+tt.alias, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, cfg.FallbacksFor(tt.alias), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("FallbacksFor(%s) (-want +got):\n%s", tt.alias, diff)
			}
		})
	}
}

func TestSpendRetention(t *testing.T) {
	base := "model_list:\n  - model_name: m\n    litellm_params: {model: ollama/llama3.1}\ngeneral_settings:\n  master_key: sk-x\n"
	for _, tc := range []struct {
		period string
		want   time.Duration
		bad    bool
	}{
		{"30d", 30 * 24 * time.Hour, false},
		{"6mo", 180 * 24 * time.Hour, false},
		{"2w", 14 * 24 * time.Hour, false},
		{"forever", 0, true},
		{"0d", 0, true},
	} {
		cfg, err := Parse([]byte(base+"  maximum_spend_logs_retention_period: "+tc.period+"\n"), nil)
		if tc.bad {
			if err == nil || !strings.Contains(err.Error(), "maximum_spend_logs_retention_period") {
				t.Errorf("%s: err = %v, want one naming the setting", tc.period, err)
			}
			continue
		}
		if err != nil || cfg.SpendRetention != tc.want {
			t.Errorf("%s: retention %v, err %v; want %v", tc.period, cfg.SpendRetention, err, tc.want)
		}
	}
}

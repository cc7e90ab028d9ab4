package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/envoy"
)

func runCmd(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// The article's config and the committed envoy.yaml agree, as `make check` relies on.
func TestCheckArticleConfig(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "placeholder")
	t.Setenv("ANTHROPIC_API_KEY", "placeholder")
	t.Setenv("LITELLM_MASTER_KEY", "sk-placeholder")
	out, _, err := runCmd(t, "check", "--config", "../../deploy/examples/article.yaml", "--envoy", "../../envoy/envoy.yaml")
	if err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}
	if !strings.HasPrefix(out, "ok: ") {
		t.Errorf("output = %q", out)
	}
}

// check lists every problem of both files, not just the first, and exits non-zero.
func TestCheckListsEveryProblem(t *testing.T) {
	t.Setenv("LITELLM_MASTER_KEY", "")
	cfg := writeFile(t, "config.yaml", `
model_list:
  - model_name: gpt-5.5
    litellm_params:
      model: openai/gpt-5.5
      api_key: os.environ/TOLLGATE_TEST_MISSING_KEY
  - model_name: other
    litellm_params:
      model: nosuchprovider/x
general_settings:
  master_key: sk-x
  colour: blue
`)
	envoyYAML := writeFile(t, "envoy.yaml", `
static_resources:
  clusters:
  - name: ""
`)
	out, _, err := runCmd(t, "check", "--config", cfg, "--envoy", envoyYAML)
	if err == nil {
		t.Fatalf("check passed a broken config:\n%s", out)
	}
	for _, want := range []string{"TOLLGATE_TEST_MISSING_KEY", "nosuchprovider", "general_settings.colour", "envoy.yaml"} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not mention %q:\n%s", want, out)
		}
	}
}

// envoy renders a file that parses, validates and agrees with the config it came from.
func TestEnvoyRendersACheckedFile(t *testing.T) {
	cfg := writeFile(t, "config.yaml", `
model_list:
  - model_name: gpt-5.5
    litellm_params: {model: openai/gpt-5.5, api_key: sk-provider}
  - model_name: local-llama
    litellm_params: {model: ollama/llama3.1, api_base: "http://ollama:11434"}
litellm_settings:
  fallbacks: [{"gpt-5.5": ["local-llama"]}]
general_settings:
  master_key: sk-master
`)
	out, _, err := runCmd(t, "envoy", "--config", cfg, "--listen", "0.0.0.0:8443",
		"--tls-cert", "/etc/tollgate/tls.crt", "--tls-key", "/etc/tollgate/tls.key")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "sk-provider") || strings.Contains(out, "sk-master") {
		t.Fatal("envoy.yaml contains a credential")
	}
	path := writeFile(t, "envoy.yaml", out)
	if out, _, err := runCmd(t, "check", "--config", cfg, "--envoy", path); err != nil {
		t.Fatalf("rendered file fails check: %v\n%s", err, out)
	}
	b, err := envoy.Parse([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if got := b.GetStaticResources().GetListeners()[0].GetFilterChains()[0].GetTransportSocket().GetName(); got != "envoy.transport_sockets.tls" {
		t.Errorf("listener transport socket = %q, want TLS", got)
	}
}

func TestUnknownCommand(t *testing.T) {
	if _, errOut, err := runCmd(t, "frobnicate"); err == nil || !strings.Contains(errOut, "usage: tollgate") {
		t.Errorf("err = %v, stderr %q", err, errOut)
	}
}

// check names deployments whose price tollgate does not know: they are served, but their
// spend is recorded as unknown.
func TestCheckReportsUnpricedDeployments(t *testing.T) {
	cfg := writeFile(t, "config.yaml", `
model_list:
  - model_name: mystery
    litellm_params: {model: openai/mystery-model-9000, api_key: sk-provider}
  - model_name: priced
    litellm_params: {model: openai/mystery-model-9000, api_key: sk-provider, input_cost_per_token: 0.000001, output_cost_per_token: 0.000002}
general_settings:
  master_key: sk-master
`)
	out, _, err := runCmd(t, "check", "--config", cfg)
	if err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}
	if !strings.Contains(out, "deployment mystery-0 has no known price") || strings.Contains(out, "priced-0") {
		t.Errorf("output:\n%s", out)
	}
}

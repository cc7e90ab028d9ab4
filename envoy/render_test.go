package envoy_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate-dev/tollgate/config"
	"github.com/tollgate-dev/tollgate/envoy"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// articleConfig is the seed article's config.yaml as config.Load returns it: three
// aliases, one deployment each, gpt-5.5 falling back to claude-sonnet then local-llama,
// LiteLLM's defaults (num_retries 2, request_timeout 600s, max_request_size_mb 32).
func articleConfig() *config.Config {
	return &config.Config{
		Deployments: []*config.Deployment{
			{ID: "gpt-5.5-0", Alias: "gpt-5.5", Provider: "openai", Model: "gpt-5.5", APIBase: "https://api.openai.com/v1"},
			{ID: "claude-sonnet-0", Alias: "claude-sonnet", Provider: "anthropic", Model: "claude-sonnet-5", APIBase: "https://api.anthropic.com"},
			{ID: "local-llama-0", Alias: "local-llama", Provider: "ollama", Model: "llama3.1", APIBase: "http://ollama:11434"},
		},
		Fallbacks:       map[string][]string{"gpt-5.5": {"claude-sonnet", "local-llama"}},
		NumRetries:      2,
		RequestTimeout:  600 * time.Second,
		MaxRequestBytes: 32 << 20,
	}
}

// articleOptions are the addresses `tollgate envoy` is given in the compose deployment.
func articleOptions() envoy.RenderOptions {
	return envoy.RenderOptions{GRPCAddr: "tollgate:9000", AdminAddr: "tollgate:4000"}
}

func renderArticle(t *testing.T) []byte {
	t.Helper()
	b, err := envoy.Render(articleConfig(), articleOptions())
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	out, err := envoy.MarshalYAML(b)
	if err != nil {
		t.Fatalf("MarshalYAML: %v", err)
	}
	return out
}

func TestRenderGolden(t *testing.T) {
	got := renderArticle(t)
	golden := filepath.Join("testdata", "article.envoy.yaml")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./envoy -run TestRenderGolden -update)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("rendered envoy.yaml differs from %s (-want +got):\n%s", golden, diff)
	}
}

func TestRenderIsStable(t *testing.T) {
	first := renderArticle(t)
	for range 5 {
		if again := renderArticle(t); !bytes.Equal(first, again) {
			t.Fatal("two renders of one config differ")
		}
	}
}

// TestRoundTrip renders, writes, reads back and checks: what `tollgate envoy` writes,
// `tollgate check` must accept.
func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		cfg  *config.Config
		opts envoy.RenderOptions
	}{
		{"article", articleConfig(), articleOptions()},
		{"tls listener, unix socket, ip endpoint", articleWith(func(c *config.Config) {
			c.Deployments = append(c.Deployments, &config.Deployment{
				ID: "local-llama-1", Alias: "local-llama", Provider: "ollama", APIBase: "https://10.0.0.7",
			})
			c.DefaultFallbacks = []string{"local-llama"}
		}), envoy.RenderOptions{
			Listen: "127.0.0.1:8443", TLSCert: "/etc/tollgate/tls.crt", TLSKey: "/etc/tollgate/tls.key",
			GRPCAddr: "unix:/run/tollgate/grpc.sock", AdminAddr: "127.0.0.1:4000", EnvoyAdmin: "127.0.0.1:9902",
		}},
		{"no retries, no timeout", articleWith(func(c *config.Config) {
			c.NumRetries = 0
			c.RequestTimeout = 0
		}), articleOptions()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := envoy.Render(tt.cfg, tt.opts)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			data, err := envoy.MarshalYAML(b)
			if err != nil {
				t.Fatalf("MarshalYAML: %v", err)
			}
			parsed, err := envoy.Parse(data)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !proto.Equal(b, parsed) {
				t.Errorf("Parse(MarshalYAML(b)) != b")
			}
			if err := envoy.Validate(parsed); err != nil {
				t.Errorf("Validate:\n%v", err)
			}
			if err := envoy.Check(tt.cfg, parsed); err != nil {
				t.Errorf("Check:\n%v", err)
			}
		})
	}
}

func articleWith(change func(*config.Config)) *config.Config {
	c := articleConfig()
	change(c)
	return c
}

func TestChain(t *testing.T) {
	tests := []struct {
		name  string
		cfg   *config.Config
		alias string
		want  []envoy.Group
	}{
		{"retries then fallbacks in order", articleConfig(), "gpt-5.5", []envoy.Group{
			{Name: "gpt-5.5", Alias: "gpt-5.5", Clusters: []string{"gpt-5.5-0"}},
			{Name: "gpt-5.5#retry1", Alias: "gpt-5.5", Clusters: []string{"gpt-5.5-0"}},
			{Name: "gpt-5.5#retry2", Alias: "gpt-5.5", Clusters: []string{"gpt-5.5-0"}},
			{Name: "claude-sonnet", Alias: "claude-sonnet", Clusters: []string{"claude-sonnet-0"}},
			{Name: "local-llama", Alias: "local-llama", Clusters: []string{"local-llama-0"}},
		}},
		{"no fallbacks", articleWith(func(c *config.Config) { c.NumRetries = 0 }), "local-llama", []envoy.Group{
			{Name: "local-llama", Alias: "local-llama", Clusters: []string{"local-llama-0"}},
		}},
		{"default fallbacks skip the alias itself and unknown aliases", articleWith(func(c *config.Config) {
			c.NumRetries = 0
			c.DefaultFallbacks = []string{"claude-sonnet", "nope", "local-llama"}
		}), "local-llama", []envoy.Group{
			{Name: "local-llama", Alias: "local-llama", Clusters: []string{"local-llama-0"}},
			{Name: "claude-sonnet", Alias: "claude-sonnet", Clusters: []string{"claude-sonnet-0"}},
		}},
		{"a load-balanced alias is one group of all its deployments", articleWith(func(c *config.Config) {
			c.NumRetries = 0
			c.Deployments = append(c.Deployments, &config.Deployment{ID: "gpt-5.5-azure", Alias: "gpt-5.5", APIBase: "https://x.openai.azure.com"})
			c.Fallbacks = nil
		}), "gpt-5.5", []envoy.Group{
			{Name: "gpt-5.5", Alias: "gpt-5.5", Clusters: []string{"gpt-5.5-0", "gpt-5.5-azure"}},
		}},
		{"unknown alias", articleConfig(), "nope", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, envoy.Chain(tt.cfg, tt.alias)); diff != "" {
				t.Errorf("Chain(%q) (-want +got):\n%s", tt.alias, diff)
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  *config.Config
		opts envoy.RenderOptions
		want []string // substrings of the error, all reported at once
	}{
		{"required addresses", articleConfig(), envoy.RenderOptions{TLSCert: "/c"}, []string{
			"gRPC address is required", "admin address is required", "both a certificate and a key",
		}},
		{"bad addresses", articleConfig(), envoy.RenderOptions{
			Listen: "example.com:80", GRPCAddr: "unix:relative", AdminAddr: "tollgate:0", EnvoyAdmin: "nope",
		}, []string{
			`listen address: "example.com:80": host must be an IP address`,
			`tollgate gRPC address: "unix:relative": unix socket path must be absolute`,
			`tollgate admin address: "tollgate:0": bad port "0"`,
			"envoy admin address",
		}},
		{"no body limit, negative timeout", articleWith(func(c *config.Config) {
			c.MaxRequestBytes = 0
			c.RequestTimeout = -time.Second
		}), articleOptions(), []string{
			"max request size 0: must be positive", "negative request timeout -1s",
		}},
		{"bad api_base and duplicate ids", articleWith(func(c *config.Config) {
			c.Deployments[0].APIBase = "ftp://files"
			c.Deployments[1].APIBase = ""
			c.Deployments[2].ID = envoy.ExtProcCluster
		}), articleOptions(), []string{
			`deployment "gpt-5.5-0": api_base: "ftp://files": scheme must be http or https`,
			`deployment "claude-sonnet-0": api_base: empty`,
			`deployment "tollgate_ext_proc": cluster name already used`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := envoy.Render(tt.cfg, tt.opts)
			if err == nil {
				t.Fatal("Render succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

package envoy_test

import (
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/config"
	"github.com/tollgate-dev/tollgate/envoy"
)

// TestRenderCloudClusters: bedrock/ and vertex_ai/ deployments without api_base get
// clusters for their region's or location's endpoint, over TLS with that host as SNI.
func TestRenderCloudClusters(t *testing.T) {
	env := map[string]string{
		"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_REGION": "eu-west-1",
		"SA": `{"type":"service_account","client_email":"a@p.iam.gserviceaccount.com","private_key":"k"}`,
	}
	cfg, err := config.Parse([]byte(`model_list:
  - model_name: claude
    litellm_params: {model: bedrock/anthropic.claude-3-haiku-20240307-v1:0}
  - model_name: gemini
    litellm_params: {model: vertex_ai/gemini-2.5-pro, vertex_project: p, vertex_location: europe-west4, vertex_credentials: os.environ/SA}
  - model_name: gemini-global
    litellm_params: {model: vertex_ai/gemini-2.5-pro, vertex_project: p, vertex_location: global, vertex_credentials: os.environ/SA}
`), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	b, err := envoy.Render(cfg, articleOptions())
	if err != nil {
		t.Fatal(err)
	}
	type endpoint struct {
		Host string
		Port uint32
		SNI  string
	}
	got := map[string]endpoint{}
	for _, c := range b.GetStaticResources().GetClusters() {
		if c.GetType() != clusterv3.Cluster_LOGICAL_DNS {
			continue
		}
		sa := c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
		var tls tlsv3.UpstreamTlsContext
		if err := c.GetTransportSocket().GetTypedConfig().UnmarshalTo(&tls); err != nil {
			t.Fatalf("%s: %v", c.GetName(), err)
		}
		got[c.GetName()] = endpoint{sa.GetAddress(), sa.GetPortValue(), tls.GetSni()}
	}
	want := map[string]endpoint{
		"claude-0":        {"bedrock-runtime.eu-west-1.amazonaws.com", 443, "bedrock-runtime.eu-west-1.amazonaws.com"},
		"gemini-0":        {"europe-west4-aiplatform.googleapis.com", 443, "europe-west4-aiplatform.googleapis.com"},
		"gemini-global-0": {"aiplatform.googleapis.com", 443, "aiplatform.googleapis.com"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("deployment clusters (-want +got):\n%s", diff)
	}
}

package spend

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/config"
)

// TestVertexRegionalClaude: Claude Sonnet 4.5 and later cost 10% more on a regional
// Vertex AI endpoint than on the global one (Anthropic's list price); earlier Claude
// models and Gemini cost the same everywhere; a deployment's own prices are never
// raised.
func TestVertexRegionalClaude(t *testing.T) {
	p := Builtin()
	list := func(model string) Price {
		t.Helper()
		price, ok := p.Lookup("anthropic", model)
		if !ok {
			t.Fatalf("no built-in price for %s", model)
		}
		return price
	}
	// plus10 is the list price with 10% on every rate, long-context tiers included.
	plus10 := func(list Price) Price {
		p := list
		p.Input, p.Output, p.CacheRead = list.Input*11/10, list.Output*11/10, list.CacheRead*11/10
		p.CacheWrite, p.Reasoning = list.CacheWrite*11/10, list.Reasoning*11/10
		p.Tiers = nil
		for _, tier := range list.Tiers {
			p.Tiers = append(p.Tiers, Tier{Above: tier.Above, Input: tier.Input * 11 / 10, Output: tier.Output * 11 / 10,
				CacheRead: tier.CacheRead * 11 / 10, CacheWrite: tier.CacheWrite * 11 / 10, Reasoning: tier.Reasoning * 11 / 10})
		}
		return p
	}
	sonnet45 := list("claude-sonnet-4-5")
	raised := plus10(sonnet45)
	if raised.Input != 3_300_000 || raised.Output != 16_500_000 { // $3.30 and $16.50 per million
		t.Fatalf("regional Sonnet 4.5 = %v in, %v out per token (pico-dollars), want 3,300,000 and 16,500,000", raised.Input, raised.Output)
	}
	gemini, _ := p.Lookup("vertex_ai", "gemini-2.5-pro")
	price := 2.0e-6
	for _, tc := range []struct {
		name string
		d    config.Deployment
		want Price
	}{
		{"regional Sonnet 4.5", config.Deployment{Provider: "vertex_ai", Model: "claude-sonnet-4-5@20250929", VertexLocation: "us-east5"}, raised},
		{"multi-region Sonnet 4.5", config.Deployment{Provider: "vertex_ai", Model: "claude-sonnet-4-5@20250929", VertexLocation: "eu"}, raised},
		{"global Sonnet 4.5", config.Deployment{Provider: "vertex_ai", Model: "claude-sonnet-4-5@20250929", VertexLocation: "global"}, sonnet45},
		{"regional Opus 4.6", config.Deployment{Provider: "vertex_ai", Model: "claude-opus-4-6", VertexLocation: "europe-west1"},
			plus10(list("claude-opus-4-6"))},
		{"regional Sonnet 4", config.Deployment{Provider: "vertex_ai", Model: "claude-sonnet-4@20250514", VertexLocation: "us-east5"},
			list("claude-sonnet-4")},
		{"regional Opus 4.1", config.Deployment{Provider: "vertex_ai", Model: "claude-opus-4-1@20250805", VertexLocation: "us-east5"},
			list("claude-opus-4-1")},
		{"Sonnet 4.5 from Anthropic", config.Deployment{Provider: "anthropic", Model: "claude-sonnet-4-5-20250929"}, sonnet45},
		{"regional Gemini", config.Deployment{Provider: "vertex_ai", Model: "gemini-2.5-pro", VertexLocation: "us-central1"}, gemini},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ForDeployment(p, &tc.d)
			if !ok {
				t.Fatal("not priced")
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("price (-want +got):\n%s", diff)
			}
		})
	}
	own := config.Deployment{Provider: "vertex_ai", Model: "claude-sonnet-4-5@20250929", VertexLocation: "us-east5",
		Costs: config.Costs{Input: &price}}
	if got, _ := ForDeployment(p, &own); got.Input != 2_000_000 {
		t.Errorf("a deployment's own input price became %v pico-dollars per token, want 2,000,000", got.Input)
	}
	if again := list("claude-sonnet-4-5"); !cmp.Equal(again, sonnet45) {
		t.Errorf("pricing a regional deployment changed the table's entry: %+v", again)
	}
}

package spend

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/config"
	"github.com/tollgate-dev/tollgate/translate"
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

// deepSeekFlash is DeepSeek's deepseek-flash as the built-in table has it: peak rates,
// half price off-peak (api-docs.deepseek.com/quick_start/pricing).
const deepSeekFlash = `{"deepseek/deepseek-flash": {"litellm_provider": "deepseek",
	"input_cost_per_token": 3e-07, "output_cost_per_token": 1.2e-06, "cache_read_input_token_cost": 6e-09,
	"off_peak_price_ratio": 0.5, "peak_hours_utc": ["01:00-04:00", "06:00-10:00"], "peak_weekdays_only": true}}`

func TestOffPeakPrices(t *testing.T) {
	p, err := LoadLiteLLM(strings.NewReader(deepSeekFlash))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := p.Lookup("deepseek", "deepseek-flash")
	for _, model := range []string{"deepseek-flash", "deepseek-v4-flash", "deepseek-v4-pro"} {
		if got, ok := Builtin().Lookup("deepseek", model); !ok || !cmp.Equal(got.OffPeak, want.OffPeak) {
			t.Errorf("built-in %s: off-peak %+v, want %+v", model, got.OffPeak, want.OffPeak)
		}
	}
	cfg := &config.Config{Deployments: []*config.Deployment{
		{ID: "ds-0", Provider: "deepseek", Model: "deepseek-flash"},
		{ID: "ds-own", Provider: "deepseek", Model: "deepseek-flash", Costs: config.Costs{Input: new(3e-07), Output: new(1.2e-06)}},
	}}
	book := NewPricebook(p, cfg)
	// 900,000 uncached prompt tokens at $0.30/M, 100,000 cached at $0.006/M and
	// 500,000 output tokens at $1.20/M: $0.8706 at peak, half of it off-peak.
	u := translate.Usage{PromptTokens: 1_000_000, CachedTokens: 100_000, CompletionTokens: 500_000, Known: true}
	const peak, offPeak = 870_600, 435_300
	wed := func(hhmm string) time.Time { // 2026-11-25 is a Wednesday
		t.Helper()
		at, err := time.Parse("2006-01-02 15:04 MST", "2026-11-25 "+hhmm+" UTC")
		if err != nil {
			t.Fatal(err)
		}
		return at
	}
	for _, tc := range []struct {
		name string
		at   time.Time
		want int64
	}{
		{"first peak window", wed("02:30"), peak},
		{"its end is off-peak", wed("04:00"), offPeak},
		{"between the windows", wed("05:59"), offPeak},
		{"second window opens", wed("06:00"), peak},
		{"second window's last minute", wed("09:59"), peak},
		{"evening", wed("22:00"), offPeak},
		{"peak hours read in UTC", wed("02:30").In(time.FixedZone("UTC+8", 8*3600)), peak},
		{"Saturday", wed("02:30").AddDate(0, 0, 3), offPeak},
	} {
		got, known := book.Cost("ds-0", u, tc.at)
		if !known || got != tc.want {
			t.Errorf("%s (%s): %d µ$ (known %v), want %d", tc.name, tc.at.Format(time.RFC3339), got, known, tc.want)
		}
	}
	// A deployment's own prices are its prices at any hour.
	// (They price cached tokens at the input rate: 1,000,000 prompt tokens at $0.30/M.)
	if got, _ := book.Cost("ds-own", u, wed("22:00")); got != 900_000 {
		t.Errorf("own prices off-peak: %d µ$, want 900000", got)
	}
}

func TestOffPeakFieldsAreChecked(t *testing.T) {
	for _, fields := range []string{
		`"off_peak_price_ratio": 0.5`,
		`"peak_hours_utc": ["01:00-04:00"]`,
		`"off_peak_price_ratio": 0, "peak_hours_utc": ["01:00-04:00"]`,
		`"off_peak_price_ratio": 1.5, "peak_hours_utc": ["01:00-04:00"]`,
		`"off_peak_price_ratio": 0.3333, "peak_hours_utc": ["01:00-04:00"]`,
		`"off_peak_price_ratio": 0.5, "peak_hours_utc": []`,
		`"off_peak_price_ratio": 0.5, "peak_hours_utc": ["04:00-01:00"]`,
		`"off_peak_price_ratio": 0.5, "peak_hours_utc": ["1:00-4:00"]`,
		`"off_peak_price_ratio": 0.5, "peak_hours_utc": ["23:00-24:30"]`,
		`"off_peak_price_ratio": 0.5, "peak_hours_utc": ["01:00-04:00"], "peak_weekdays_only": "yes"`,
	} {
		_, err := LoadLiteLLM(strings.NewReader(`{"m": {"litellm_provider": "p", "input_cost_per_token": 1e-06, ` + fields + `}}`))
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", fields, err)
		}
	}
}

package spend

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/translate"
)

// Prices shaped like each provider family's, in Rate (picodollars per token = micro-dollars
// per million tokens). They are written out here, not taken from prices.json, so the
// arithmetic is tested independently of the table's data.
var (
	// OpenAI: cached input at a tenth, reasoning at the output rate, 2x/1.5x over 272K.
	openAIFamily = Price{Input: 5_000_000, CacheRead: 500_000, CacheWrite: 5_000_000, Output: 30_000_000, Reasoning: 30_000_000,
		Tiers: []Tier{{Above: 272_000, Input: 10_000_000, CacheRead: 1_000_000, CacheWrite: 10_000_000, Output: 45_000_000, Reasoning: 45_000_000}}}
	// Anthropic: cache writes at 1.25x, reads at 0.1x, $6/$22.50 over 200K.
	anthropicFamily = Price{Input: 3_000_000, CacheRead: 300_000, CacheWrite: 3_750_000, Output: 15_000_000, Reasoning: 15_000_000,
		Tiers: []Tier{{Above: 200_000, Input: 6_000_000, CacheRead: 600_000, CacheWrite: 7_500_000, Output: 22_500_000, Reasoning: 22_500_000}}}
	// Anthropic with a 100K band, like Claude Haiku 5.5.
	bandedFamily = Price{Input: 100_000, CacheRead: 10_000, CacheWrite: 125_000, Output: 500_000, Reasoning: 500_000,
		Tiers: []Tier{{Above: 100_000, Input: 500_000, CacheRead: 50_000, CacheWrite: 625_000, Output: 2_500_000, Reasoning: 2_500_000}}}
	// Gemini-like, with a reasoning rate different from the output rate.
	geminiFamily = Price{Input: 1_250_000, CacheRead: 125_000, CacheWrite: 1_250_000, Output: 10_000_000, Reasoning: 12_000_000}
	// No cache price published: cached tokens pay the input rate.
	noCacheFamily = Price{Input: 140_000, CacheRead: 140_000, CacheWrite: 140_000, Output: 280_000, Reasoning: 280_000}
	selfHosted    = Price{}
)

func TestCost(t *testing.T) {
	tests := []struct {
		name  string
		price Price
		usage translate.Usage
		want  Cost
	}{
		{
			// uncached (1117-1024)=93 x 5,000,000 = 465,000,000
			// cached 1024 x 500,000                = 512,000,000
			// visible (46-12)=34 x 30,000,000      = 1,020,000,000
			// reasoning 12 x 30,000,000            = 360,000,000
			// total 2,357,000,000 ps = 2,357 µ$
			name: "openai cached and reasoning", price: openAIFamily,
			usage: translate.Usage{PromptTokens: 1117, CompletionTokens: 46, CachedTokens: 1024, ReasoningTokens: 12, Known: true},
			want:  Cost{Picodollars: 2_357_000_000, Known: true},
		},
		{
			// 300,000 prompt tokens > 272K: the whole request at the long-context rates.
			// uncached 200,000 x 10,000,000 = 2,000,000,000,000
			// cached 100,000 x 1,000,000    =   100,000,000,000
			// output 1,000 x 45,000,000     =    45,000,000,000
			// total 2,145,000,000,000 ps = $2.145
			name: "openai long context", price: openAIFamily,
			usage: translate.Usage{PromptTokens: 300_000, CompletionTokens: 1000, CachedTokens: 100_000, Known: true},
			want:  Cost{Picodollars: 2_145_000_000_000, Known: true},
		},
		{
			// Exactly at the threshold is not above it: base rates.
			// 272,000 x 5,000,000 = 1,360,000,000,000
			name: "openai at the threshold", price: openAIFamily,
			usage: translate.Usage{PromptTokens: 272_000, Known: true},
			want:  Cost{Picodollars: 1_360_000_000_000, Known: true},
		},
		{
			// Anthropic reported input_tokens 50, cache_read 10,000, cache_creation 2,000;
			// the translator's PromptTokens is their sum, 12,050.
			// uncached 50 x 3,000,000        =   150,000,000
			// cache read 10,000 x 300,000    = 3,000,000,000
			// cache write 2,000 x 3,750,000  = 7,500,000,000
			// output 300 x 15,000,000        = 4,500,000,000
			// total 15,150,000,000 ps = 15,150 µ$
			name: "anthropic cache read and write", price: anthropicFamily,
			usage: translate.Usage{PromptTokens: 12_050, CompletionTokens: 300, CachedTokens: 10_000, CacheCreationTokens: 2000, Known: true},
			want:  Cost{Picodollars: 15_150_000_000, Known: true},
		},
		{
			// Extended thinking: Anthropic bills thinking as output; the translator puts
			// it in both CompletionTokens and ReasoningTokens.
			// uncached 1,000 x 3,000,000              =  3,000,000,000
			// visible (2,000-1,500)=500 x 15,000,000  =  7,500,000,000
			// reasoning 1,500 x 15,000,000            = 22,500,000,000
			// total 33,000,000,000 ps = 33,000 µ$
			name: "anthropic thinking", price: anthropicFamily,
			usage: translate.Usage{PromptTokens: 1000, CompletionTokens: 2000, ReasoningTokens: 1500, Known: true},
			want:  Cost{Picodollars: 33_000_000_000, Known: true},
		},
		{
			// 250,000 cached + written + uncached tokens > 200K, so every token pays the
			// long-context band, cache reads and writes included.
			// uncached 50,000 x 6,000,000    = 300,000,000,000
			// cache read 150,000 x 600,000   =  90,000,000,000
			// cache write 50,000 x 7,500,000 = 375,000,000,000
			// output 1,000 x 22,500,000      =  22,500,000,000
			// total 787,500,000,000 ps = 787,500 µ$
			name: "anthropic long context with cache", price: anthropicFamily,
			usage: translate.Usage{PromptTokens: 250_000, CompletionTokens: 1000, CachedTokens: 150_000, CacheCreationTokens: 50_000, Known: true},
			want:  Cost{Picodollars: 787_500_000_000, Known: true},
		},
		{
			// 100,001 > 100K band: uncached 1 x 500,000 + cached 100,000 x 50,000
			// = 500,000 + 5,000,000,000 = 5,000,500,000; output 10 x 2,500,000 = 25,000,000
			// total 5,025,500,000 ps
			name: "banded price above the band", price: bandedFamily,
			usage: translate.Usage{PromptTokens: 100_001, CompletionTokens: 10, CachedTokens: 100_000, Known: true},
			want:  Cost{Picodollars: 5_025_500_000, Known: true},
		},
		{
			// 100,000 is not above the band: base rates.
			// uncached 1 x 100,000 + cached 99,999 x 10,000 = 100,000 + 999,990,000
			// output 10 x 500,000 = 5,000,000; total 1,005,090,000 ps
			name: "banded price at the band", price: bandedFamily,
			usage: translate.Usage{PromptTokens: 100_000, CompletionTokens: 10, CachedTokens: 99_999, Known: true},
			want:  Cost{Picodollars: 1_005_090_000, Known: true},
		},
		{
			// uncached 800 x 1,250,000            = 1,000,000,000
			// cached 200 x 125,000                =    25,000,000
			// visible (500-300)=200 x 10,000,000  = 2,000,000,000
			// reasoning 300 x 12,000,000          = 3,600,000,000
			// total 6,625,000,000 ps = 6,625 µ$
			name: "gemini reasoning rate", price: geminiFamily,
			usage: translate.Usage{PromptTokens: 1000, CompletionTokens: 500, CachedTokens: 200, ReasoningTokens: 300, Known: true},
			want:  Cost{Picodollars: 6_625_000_000, Known: true},
		},
		{
			// No cache rate: 100 uncached + 900 cached, all x 140,000 = 140,000,000;
			// output 100 x 280,000 = 28,000,000; total 168,000,000 ps = 168 µ$
			name: "no cache price", price: noCacheFamily,
			usage: translate.Usage{PromptTokens: 1000, CompletionTokens: 100, CachedTokens: 900, Known: true},
			want:  Cost{Picodollars: 168_000_000, Known: true},
		},
		{
			name: "self-hosted is free and known", price: selfHosted,
			usage: translate.Usage{PromptTokens: 5000, CompletionTokens: 500, Known: true},
			want:  Cost{Picodollars: 0, Known: true},
		},
		{
			name: "unknown usage", price: openAIFamily,
			usage: translate.Usage{PromptTokens: 5000},
			want:  Cost{},
		},
		{
			// Cached beyond the prompt: uncached is 0, all 20 cached tokens are billed:
			// 20 x 500,000 = 10,000,000. Reasoning beyond the completion: visible is 0,
			// all 7 reasoning tokens billed: 7 x 30,000,000 = 210,000,000. Total 220,000,000.
			name: "inconsistent counts are billed, not dropped", price: openAIFamily,
			usage: translate.Usage{PromptTokens: 10, CachedTokens: 20, CompletionTokens: 5, ReasoningTokens: 7, Known: true},
			want:  Cost{Picodollars: 220_000_000, Known: true},
		},
		{
			// Negative counts are zero; 10 output tokens x 30,000,000 = 300,000,000.
			name: "negative counts", price: openAIFamily,
			usage: translate.Usage{PromptTokens: -5, CachedTokens: -1, CompletionTokens: 10, ReasoningTokens: -3, Known: true},
			want:  Cost{Picodollars: 300_000_000, Known: true},
		},
		{
			name: "saturates instead of overflowing", price: Price{Input: math.MaxInt64, Output: math.MaxInt64},
			usage: translate.Usage{PromptTokens: math.MaxInt, CompletionTokens: math.MaxInt, Known: true},
			want:  Cost{Picodollars: math.MaxInt64, Known: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.price.Cost(tt.usage)); diff != "" {
				t.Errorf("Cost mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCostUnits(t *testing.T) {
	tests := []struct {
		picos  int64
		micros int64
		usd    float64
	}{
		{0, 0, 0},
		{499_999, 0, 0.000000499999},
		{500_000, 1, 0.0000005}, // half a micro-dollar rounds up
		{1_499_999, 1, 0.000001499999},
		{1_500_000, 2, 0.0000015},
		{2_357_000_000, 2357, 0.002357},
		{1_522_500_000_000, 1_522_500, 1.5225},
		{math.MaxInt64, 9_223_372_036_855, 9_223_372.036854775807},
	}
	for _, tt := range tests {
		c := Cost{Picodollars: tt.picos, Known: true}
		if got := c.Microdollars(); got != tt.micros {
			t.Errorf("Cost{%d}.Microdollars() = %d, want %d", tt.picos, got, tt.micros)
		}
		if got := c.USD(); math.Abs(got-tt.usd) > tt.usd*1e-12 {
			t.Errorf("Cost{%d}.USD() = %v, want %v", tt.picos, got, tt.usd)
		}
	}
}

// TestBuiltinArticleModels prices one request on the seed article's models with the
// built-in table (values as of the table's as_of dates).
func TestBuiltinArticleModels(t *testing.T) {
	u := translate.Usage{PromptTokens: 10_000, CompletionTokens: 1_000, CachedTokens: 8_000, ReasoningTokens: 400, Known: true}
	tests := []struct {
		provider, model string
		want            int64 // picodollars
	}{
		// gpt-5.5 at $5 / $0.50 cached / $30:
		// 2,000 x 5,000,000 + 8,000 x 500,000 + 600 x 30,000,000 + 400 x 30,000,000
		// = 10,000,000,000 + 4,000,000,000 + 18,000,000,000 + 12,000,000,000 = 44,000,000,000
		{"openai", "gpt-5.5", 44_000_000_000},
		// claude-sonnet-5 at $2 / $0.20 cache read / $10:
		// 2,000 x 2,000,000 + 8,000 x 200,000 + 1,000 x 10,000,000
		// = 4,000,000,000 + 1,600,000,000 + 10,000,000,000 = 15,600,000,000
		{"anthropic", "claude-sonnet-5", 15_600_000_000},
		{"ollama", "llama3.1", 0},
	}
	for _, tt := range tests {
		p, ok := Builtin().Lookup(tt.provider, tt.model)
		if !ok {
			t.Fatalf("%s/%s not in the built-in table", tt.provider, tt.model)
		}
		if got := p.Cost(u); got != (Cost{Picodollars: tt.want, Known: true}) {
			t.Errorf("%s/%s cost = %+v, want %d ps", tt.provider, tt.model, got, tt.want)
		}
	}
}

// benchUsage is a typical cached, reasoning chat completion.
var benchUsage = translate.Usage{PromptTokens: 12_050, CompletionTokens: 800, CachedTokens: 10_000, CacheCreationTokens: 2000, ReasoningTokens: 300, Known: true}

var lookupCases = []struct{ name, provider, model string }{
	{"exact", "anthropic", "claude-sonnet-5"},
	{"dated", "anthropic", "claude-sonnet-4-5-20250929"},
	{"bare", "azure", "gpt-5.5"},
	{"wildcard", "ollama", "llama3.1"},
	{"miss", "openai", "gpt-9000-2030-01-01"},
}

// TestLookupCostAllocatesNothing holds the per-request path to zero allocations; the
// count is deterministic, unlike timings.
func TestLookupCostAllocatesNothing(t *testing.T) {
	p := Builtin()
	for _, c := range lookupCases {
		allocs := testing.AllocsPerRun(100, func() {
			price, _ := p.Lookup(c.provider, c.model)
			_ = price.Cost(benchUsage)
		})
		if allocs != 0 {
			t.Errorf("%s: Lookup+Cost allocates %v times per request, want 0", c.name, allocs)
		}
	}
}

var sink Cost

func BenchmarkLookupCost(b *testing.B) {
	p := Builtin()
	for _, c := range lookupCases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				price, _ := p.Lookup(c.provider, c.model)
				sink = price.Cost(benchUsage)
			}
		})
	}
}

func BenchmarkCost(b *testing.B) {
	price, _ := Builtin().Lookup("anthropic", "claude-sonnet-4-5")
	b.ReportAllocs()
	for b.Loop() {
		sink = price.Cost(benchUsage)
	}
}

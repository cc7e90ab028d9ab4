package keys

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
)

func TestParsePeriod(t *testing.T) {
	start := time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in      string
		want    time.Time // start plus the period
		wantErr bool
	}{
		{in: "30s", want: start.Add(30 * time.Second)},
		{in: "30m", want: start.Add(30 * time.Minute)},
		{in: "30h", want: start.Add(30 * time.Hour)},
		{in: "30d", want: start.AddDate(0, 0, 30)},
		{in: "2w", want: start.AddDate(0, 0, 14)},
		{in: "1mo", want: start.AddDate(0, 1, 0)},
		{in: "", wantErr: true},
		{in: "d", wantErr: true},
		{in: "30", wantErr: true},
		{in: "0d", wantErr: true},
		{in: "-1d", wantErr: true},
		{in: "30y", wantErr: true},
		{in: "1.5h", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := parsePeriod("duration", tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidRequest) {
					t.Fatalf("parsePeriod(%q) error = %v, want ErrInvalidRequest", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := p.add(start); !got.Equal(tt.want) {
				t.Errorf("add = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPeriodNext(t *testing.T) {
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		period string
		now    time.Time
		want   time.Time
	}{
		{"1h", from.Add(30 * time.Minute), from.Add(time.Hour)},
		{"1h", from.Add(5*time.Hour + time.Minute), from.Add(6 * time.Hour)},
		{"1h", from.Add(5 * time.Hour), from.Add(6 * time.Hour)}, // a reset due exactly now schedules the next
		{"30d", from.AddDate(0, 0, 65), from.AddDate(0, 0, 90)},
		{"1mo", from.AddDate(0, 2, 3), from.AddDate(0, 3, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.period, func(t *testing.T) {
			p, err := parsePeriod("budget_duration", tt.period)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.next(from, tt.now); !got.Equal(tt.want) {
				t.Errorf("next(%v) = %v, want %v", tt.now, got, tt.want)
			}
		})
	}
}

func TestMicros(t *testing.T) {
	tests := []struct {
		usd     float64
		want    int64
		wantErr bool
	}{
		{usd: 50, want: 50_000_000},
		{usd: 0.000123, want: 123},
		{usd: 0.0000004, want: 0},
		{usd: 0, want: 0},
		{usd: -1, wantErr: true},
		{usd: 2e9, wantErr: true},
	}
	for _, tt := range tests {
		got, err := micros("max_budget", tt.usd)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("micros(%v) = %d, %v; want %d, error %v", tt.usd, got, err, tt.want, tt.wantErr)
		}
	}
	if got := usd(50_000_123); got != "50.000123" {
		t.Errorf("usd = %q", got)
	}
}

func TestEffectiveModels(t *testing.T) {
	tests := []struct {
		name       string
		key, owner []string
		want       []string
	}{
		{"both empty", nil, nil, nil},
		{"key only", []string{"a", "b"}, nil, []string{"a", "b"}},
		{"owner only", nil, []string{"a"}, []string{"a"}},
		{"intersection", []string{"a", "b"}, []string{"b", "c"}, []string{"b"}},
		{"all-team-models", []string{"all-team-models"}, []string{"c"}, []string{"c"}},
		{"all-proxy-models", []string{"all-proxy-models"}, nil, []string{}},
		{"disjoint", []string{"a"}, []string{"b"}, []string{"(none: the key's models and its owner's have nothing in common)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := effectiveModels(tt.key, tt.owner)
			if len(got) == 0 && len(tt.want) == 0 {
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("effectiveModels (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckModel(t *testing.T) {
	k := &Key{Principal: Principal{Models: []string{"gpt-5.5", "claude-sonnet", "fast"}}}
	tests := []struct {
		model  string
		groups []string
		want   string
	}{
		{"gpt-5.5", nil, "ok"},
		{"llama", []string{"fast"}, "ok"},
		{"local-llama", nil, "key_model_access_denied"},
	}
	for _, tt := range tests {
		if got := errCode(k.CheckModel(tt.model, tt.groups...)); got != tt.want {
			t.Errorf("CheckModel(%q) = %s, want %s", tt.model, got, tt.want)
		}
	}
	err := k.CheckModel("local-llama")
	if want := `this key may not use model "local-llama"; it may use: gpt-5.5, claude-sonnet, fast. Generate a key scoped to that model (/key/generate with "models")`; err.Error() != want {
		t.Errorf("message = %q", err)
	}
	if (&Key{}).CheckModel("anything") != nil {
		t.Error("a key without models may use every model")
	}
}

func TestHash(t *testing.T) {
	// LiteLLM's hash_token(key) is hashlib.sha256(key.encode()).hexdigest().
	if got, want := Hash("sk-1234"), "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b"; got != want {
		t.Errorf("Hash(sk-1234) = %s, want LiteLLM's %s", got, want)
	}
	long := "sk-" + strings.Repeat("x", 300) // longer than digest's stack buffer
	if sum := sha256.Sum256([]byte(long)); Hash(long) != hex.EncodeToString(sum[:]) {
		t.Error("Hash of a long key is not its SHA-256")
	}
	if tokenOf(Hash("sk-1234")) != Hash("sk-1234") || tokenOf("sk-1234") != Hash("sk-1234") {
		t.Error("tokenOf must accept a key or its hash")
	}
	key := newKey()
	if len(key) != 46 || key[:3] != "sk-" || key == newKey() {
		t.Errorf("newKey() = %q: want sk- and 43 random characters", key)
	}
	if keyName(key) != "sk-..."+key[len(key)-4:] {
		t.Errorf("keyName = %q", keyName(key))
	}
}

func TestRedisOptionsFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    redis.Options
		wantErr string
	}{
		{name: "url", env: map[string]string{"REDIS_URL": "redis://:secret@cache:6380/2"},
			want: redis.Options{Addr: "cache:6380", Password: "secret", DB: 2}},
		{name: "host and port", env: map[string]string{"REDIS_HOST": "cache", "REDIS_PORT": "6380", "REDIS_PASSWORD": "pw", "REDIS_DB": "3"},
			want: redis.Options{Addr: "cache:6380", Password: "pw", DB: 3}},
		{name: "default port", env: map[string]string{"REDIS_HOST": "cache"}, want: redis.Options{Addr: "cache:6379"}},
		{name: "nothing", env: map[string]string{}, wantErr: ErrRedisNotConfigured.Error()},
		{name: "bad port", env: map[string]string{"REDIS_HOST": "cache", "REDIS_PORT": "x"}, wantErr: `REDIS_PORT "x" is not a port number`},
		{name: "bad url", env: map[string]string{"REDIS_URL": "http://cache"}, wantErr: "REDIS_URL: redis: invalid URL scheme: http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RedisOptionsFromEnv(func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			type view struct {
				Addr, Password string
				DB             int
			}
			if diff := cmp.Diff(view{tt.want.Addr, tt.want.Password, tt.want.DB}, view{got.Addr, got.Password, got.DB}); diff != "" {
				t.Errorf("options (-want +got):\n%s", diff)
			}
			if got.ReadTimeout != time.Second {
				t.Errorf("ReadTimeout = %v, want 1s", got.ReadTimeout)
			}
		})
	}
	tlsOpts, err := RedisOptionsFromEnv(func(k string) (string, bool) {
		v, ok := map[string]string{"REDIS_HOST": "cache", "REDIS_SSL": "true"}[k]
		return v, ok
	})
	if err != nil || tlsOpts.TLSConfig == nil || tlsOpts.TLSConfig.ServerName != "cache" {
		t.Errorf("REDIS_SSL=true: %+v, %v", tlsOpts, err)
	}
}

func TestAPIError(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantType   string
		wantCode   string
		wantMsg    string
	}{
		{"unknown key", errUnknownKey, 401, "authentication_error", "invalid_api_key", errUnknownKey.Msg},
		{"budget", &LimitError{Kind: ErrBudgetExceeded, Scope: "team", ID: "t1", Spend: 50_000_100, MaxBudget: 50_000_000},
			400, "budget_exceeded", "budget_exceeded",
			`Budget has been exceeded! Current cost: 50.0001, Max budget: 50 (team "t1" budget; raise max_budget or wait for its budget_duration to reset it)`},
		{"rpm", &LimitError{Kind: ErrRateLimited, Scope: "key", Metric: "requests", Limit: 10, RetryAfter: 1500 * time.Millisecond},
			429, "rate_limit_error", "rate_limit_exceeded", "key rpm_limit of 10 requests per minute reached: retry in 2s"},
		{"end user", &LimitError{Kind: ErrEndUserBlocked, Scope: "end_user", ID: "bob"},
			403, "permission_error", "end_user_blocked", `end user "bob" is blocked: unblock it with /customer/unblock`},
		{"unavailable", errRedisDown, 503, "api_error", "service_unavailable", errRedisDown.Msg},
		{"internal", errors.New("boom"), 500, "api_error", "internal_error", "tollgate failed to process the request; the gateway log has the cause"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := APIError(tt.err)
			got := []any{e.Status, e.Type, e.Code, e.Message}
			if diff := cmp.Diff([]any{tt.wantStatus, tt.wantType, tt.wantCode, tt.wantMsg}, got); diff != "" {
				t.Errorf("APIError (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLimitErrorHeaders(t *testing.T) {
	e := &LimitError{Kind: ErrRateLimited, Scope: "key", Metric: "tokens", Limit: 1000, RetryAfter: 20 * time.Second}
	want := map[string]string{
		"retry-after":                  "20",
		"x-ratelimit-limit-tokens":     "1000",
		"x-ratelimit-remaining-tokens": "0",
		"x-ratelimit-reset-tokens":     "20s",
	}
	if diff := cmp.Diff(want, e.Headers()); diff != "" {
		t.Errorf("Headers (-want +got):\n%s", diff)
	}
	if h := (&LimitError{Kind: ErrBudgetExceeded}).Headers(); h != nil {
		t.Errorf("budget errors carry no rate-limit headers: %v", h)
	}
	rl := RateLimit{LimitRequests: 10, RemainingRequests: 3, LimitTokens: -1, Reset: 5 * time.Second}
	want = map[string]string{
		"x-ratelimit-limit-requests":     "10",
		"x-ratelimit-remaining-requests": "3",
		"x-ratelimit-reset-requests":     "5s",
	}
	if diff := cmp.Diff(want, rl.Headers()); diff != "" {
		t.Errorf("RateLimit.Headers (-want +got):\n%s", diff)
	}
}

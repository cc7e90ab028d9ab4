package spend

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tollgate-dev/tollgate/translate"
)

// Record is what one request cost: the row tollgate writes to tollgate_spend_logs. The
// request id identifies it: writing a record twice stores it once (see Writer).
//
// The columns follow LiteLLM's LiteLLM_SpendLogs in snake_case where LiteLLM has one, so
// its dashboards' queries port with renames only:
//
//	LiteLLM_SpendLogs     tollgate_spend_logs        Record
//	request_id            request_id                 RequestID
//	call_type             call_type                  CallType ("chat/completions", ...)
//	api_key               api_key                    KeyHash (SHA-256 hex, never the key)
//	spend (float USD)     spend (bigint micro-USD)   CostMicros
//	prompt_tokens         prompt_tokens              PromptTokens
//	completion_tokens     completion_tokens          CompletionTokens
//	total_tokens          total_tokens               PromptTokens + CompletionTokens
//	startTime             start_time                 Start
//	endTime               end_time                   End
//	completionStartTime   completion_start_time      FirstToken
//	model                 model                      ProviderModel
//	model_group           model_group                ModelAlias
//	model_id              model_id                   DeploymentID
//	custom_llm_provider   custom_llm_provider        Provider
//	api_base              api_base                   APIBase
//	user                  user_id                    UserID (user is reserved in SQL)
//	end_user              end_user                   EndUser
//	team_id               team_id                    TeamID
//	metadata              metadata                   Metadata
//	request_tags          request_tags               Tags
//	status (text)         status_code (integer)      Status (the HTTP status)
//
// and tollgate's own: key_alias, cached_tokens, cache_creation_tokens, reasoning_tokens,
// cost_known, usage_estimated, error_code, attempts, stream. Text columns are never
// NULL: an unknown team, user or end user is "".
type Record struct {
	RequestID string `json:"request_id"`
	CallType  string `json:"call_type,omitempty"`

	KeyHash  string `json:"api_key,omitempty"`
	KeyAlias string `json:"key_alias,omitempty"`
	TeamID   string `json:"team_id,omitempty"`
	UserID   string `json:"user_id,omitempty"`
	// EndUser is the customer the request was made for: the OpenAI request's "user" field.
	EndUser string `json:"end_user,omitempty"`

	ModelAlias    string `json:"model_group,omitempty"` // the model the client asked for
	DeploymentID  string `json:"model_id,omitempty"`    // the config.yaml deployment that answered
	Provider      string `json:"custom_llm_provider,omitempty"`
	ProviderModel string `json:"model,omitempty"` // the provider's name for the model
	APIBase       string `json:"api_base,omitempty"`

	// Token counts follow OpenAI's convention (see Price.Cost): PromptTokens includes the
	// cached and cache-creation tokens, CompletionTokens the reasoning tokens.
	PromptTokens        int64 `json:"prompt_tokens,omitempty"`
	CompletionTokens    int64 `json:"completion_tokens,omitempty"`
	CachedTokens        int64 `json:"cached_tokens,omitempty"`
	CacheCreationTokens int64 `json:"cache_creation_tokens,omitempty"`
	ReasoningTokens     int64 `json:"reasoning_tokens,omitempty"`

	// CostMicros is the cost in micro-dollars (1e-6 USD), the unit of tollgate's budget
	// counters. CostKnown is false when no price or no usage was known: the request is
	// recorded with its cost unknown (CostMicros 0), never silently as free.
	CostMicros int64 `json:"spend,omitempty"`
	CostKnown  bool  `json:"cost_known,omitempty"`
	// UsageEstimated is true when the provider sent no usage (a cut stream) and the token
	// counts were estimated from the text that was streamed.
	UsageEstimated bool `json:"usage_estimated,omitempty"`

	// Status is the HTTP status the client received; ErrorCode the OpenAI error code
	// ("budget_exceeded", ...) when it was an error.
	Status    int    `json:"status_code,omitempty"`
	ErrorCode string `json:"error_code,omitempty"`

	// Start is when the request arrived and End when its response ended. FirstToken is
	// when the first byte of the response body arrived, zero when none did. Times are
	// stored in UTC with microsecond precision, Postgres's.
	Start      time.Time `json:"start_time"`
	End        time.Time `json:"end_time"`
	FirstToken time.Time `json:"completion_start_time,omitzero"`

	Attempts int  `json:"attempts,omitempty"` // upstream attempts, retries and fallbacks included
	Stream   bool `json:"stream,omitempty"`

	// Tags are the request's tags: LiteLLM's metadata.tags, which the writer reads from
	// Metadata (off the request path) when Tags is nil. Metadata is the request's
	// metadata object, stored as JSON.
	Tags     []string        `json:"request_tags,omitempty"`
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

// SetUsage copies a response's token counts into r.
func (r *Record) SetUsage(u translate.Usage) {
	r.PromptTokens = int64(u.PromptTokens)
	r.CompletionTokens = int64(u.CompletionTokens)
	r.CachedTokens = int64(u.CachedTokens)
	r.CacheCreationTokens = int64(u.CacheCreationTokens)
	r.ReasoningTokens = int64(u.ReasoningTokens)
}

// SetCost records c, rounded to micro-dollars as budgets are.
func (r *Record) SetCost(c Cost) {
	r.CostMicros, r.CostKnown = c.Microdollars(), c.Known
	if !c.Known {
		r.CostMicros = 0
	}
}

// TimeToFirstToken is FirstToken - Start, or 0 when no response body arrived.
func (r *Record) TimeToFirstToken() time.Duration {
	if r.FirstToken.IsZero() {
		return 0
	}
	return r.FirstToken.Sub(r.Start)
}

// normalize makes r storable as it is, so that one bad record cannot fail the batch it
// is in: Postgres rejects text with NUL bytes or invalid UTF-8 (both can arrive from
// clients, in end-user ids and tags) and invalid JSON, and stores times in microseconds
// (the spool must hold what Postgres will, or a replay would not match the stored row).
// It is idempotent, and the common case allocates nothing.
func (r *Record) normalize() {
	for _, s := range []*string{
		&r.RequestID, &r.CallType, &r.KeyHash, &r.KeyAlias, &r.TeamID, &r.UserID, &r.EndUser,
		&r.ModelAlias, &r.DeploymentID, &r.Provider, &r.ProviderModel, &r.APIBase, &r.ErrorCode,
	} {
		*s = cleanText(*s)
	}
	r.Metadata = cleanJSON(r.Metadata)
	if r.Tags == nil && len(r.Metadata) > 0 {
		var tagged struct {
			Tags []string `json:"tags"`
		}
		if json.Unmarshal(r.Metadata, &tagged) == nil {
			r.Tags = tagged.Tags
		}
	}
	r.Tags = cleanTags(r.Tags)

	if r.End.IsZero() {
		r.End = r.Start
	}
	r.Start = storedTime(r.Start)
	r.End = storedTime(r.End)
	if !r.FirstToken.IsZero() {
		r.FirstToken = storedTime(r.FirstToken)
	}
}

// storedTime is t as Postgres stores it: UTC, whole microseconds, no monotonic reading.
func storedTime(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}

// cleanText makes s valid UTF-8 without NUL bytes.
func cleanText(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}

// cleanTags returns tags with every tag cleaned, copying only when one changes (the
// caller's slice may be shared with the request).
func cleanTags(tags []string) []string {
	for i, t := range tags {
		if cleanText(t) == t {
			continue
		}
		out := make([]string, len(tags))
		copy(out, tags[:i])
		for j := i; j < len(tags); j++ {
			out[j] = cleanText(tags[j])
		}
		return out
	}
	return tags
}

// cleanJSON makes metadata storable as jsonb: invalid JSON is kept as a JSON string of
// its text, and the escape \u0000, which jsonb refuses, is removed from strings.
func cleanJSON(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return nil
	}
	if !utf8.Valid(raw) {
		raw = bytes.ToValidUTF8(raw, []byte("\uFFFD"))
	}
	if !json.Valid(raw) {
		b, _ := json.Marshal(cleanText(string(raw))) // a string always marshals
		return b
	}
	if !bytes.Contains(raw, []byte(`\u0000`)) {
		return raw
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		b, _ := json.Marshal(cleanText(string(raw)))
		return b
	}
	b, _ := json.Marshal(stripNUL(v)) // values from Unmarshal always marshal
	return b
}

// stripNUL removes NUL characters from every string in a decoded JSON value.
func stripNUL(v any) any {
	switch v := v.(type) {
	case string:
		return strings.ReplaceAll(v, "\x00", "")
	case []any:
		for i := range v {
			v[i] = stripNUL(v[i])
		}
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[strings.ReplaceAll(k, "\x00", "")] = stripNUL(e)
		}
		return out
	}
	return v
}

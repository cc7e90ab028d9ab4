package keys

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/tollgate-dev/tollgate/translate"
)

// Kinds of failure. Every error this package returns wraps exactly one of them, with a
// message written for the client (it never contains a key).
var (
	// ErrNoKey: an admin request carried no key.
	ErrNoKey = errors.New("missing API key")
	// ErrKeyNotFound: no virtual key has this hash.
	ErrKeyNotFound = errors.New("invalid API key")
	// ErrKeyExpired: the key is past its expiry (duration at /key/generate).
	ErrKeyExpired = errors.New("API key expired")
	// ErrKeyBlocked: an admin blocked the key, or its team.
	ErrKeyBlocked = errors.New("API key blocked")
	// ErrModelNotAllowed: the key, or its team, may not use the requested model.
	ErrModelNotAllowed = errors.New("model not allowed for key")
	// ErrBudgetExceeded: a budget that applies to the request is used up. Returned as
	// *LimitError.
	ErrBudgetExceeded = errors.New("budget exceeded")
	// ErrRateLimited: an rpm, tpm or max_parallel_requests limit is reached. Returned as
	// *LimitError, whose RetryAfter says when to try again.
	ErrRateLimited = errors.New("rate limit exceeded")
	// ErrEndUserBlocked: the request's end user (its "user" field) is blocked.
	ErrEndUserBlocked = errors.New("end user blocked")
	// ErrUnavailable: Redis or Postgres cannot be reached, or Redis is being rebuilt.
	ErrUnavailable = errors.New("key store unavailable")

	// Admin API failures.

	// ErrInvalidRequest: the request body or query is malformed or inconsistent.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrNotFound: the key, team, user or end user named does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the id or alias is taken.
	ErrConflict = errors.New("already exists")
	// ErrForbidden: the caller's key may not call the admin API.
	ErrForbidden = errors.New("forbidden")
)

// errorKinds maps each kind to what a client sees. The codes are stable: scripts and
// dashboards match on them, and they double as metric labels.
var errorKinds = []struct {
	kind   error
	status int
	typ    string
	code   string
}{
	{ErrNoKey, http.StatusUnauthorized, "authentication_error", "missing_api_key"},
	{ErrKeyNotFound, http.StatusUnauthorized, "authentication_error", "invalid_api_key"},
	{ErrKeyExpired, http.StatusUnauthorized, "authentication_error", "key_expired"},
	{ErrKeyBlocked, http.StatusUnauthorized, "authentication_error", "key_blocked"},
	// LiteLLM answers 401 key_model_access_denied; the article's troubleshooting section
	// describes the 401.
	{ErrModelNotAllowed, http.StatusUnauthorized, "authentication_error", "key_model_access_denied"},
	// LiteLLM's choice (400, type budget_exceeded) rather than OpenAI's 429
	// insufficient_quota: OpenAI SDKs retry 429s, and retrying a spent budget only burns
	// time; LiteLLM users' scripts already match on budget_exceeded.
	{ErrBudgetExceeded, http.StatusBadRequest, "budget_exceeded", "budget_exceeded"},
	{ErrRateLimited, http.StatusTooManyRequests, "rate_limit_error", "rate_limit_exceeded"},
	{ErrEndUserBlocked, http.StatusForbidden, "permission_error", "end_user_blocked"},
	{ErrUnavailable, http.StatusServiceUnavailable, "api_error", "service_unavailable"},
	{ErrInvalidRequest, http.StatusBadRequest, "invalid_request_error", "invalid_request"},
	{ErrNotFound, http.StatusNotFound, "invalid_request_error", "not_found"},
	{ErrConflict, http.StatusConflict, "invalid_request_error", "already_exists"},
	{ErrForbidden, http.StatusForbidden, "permission_error", "forbidden"},
}

// Error is a failure of one kind with a message for the client.
type Error struct {
	Kind  error  // one of the Err* kinds
	Param string // the request field at fault, if any
	Msg   string
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Kind }

// fail returns an *Error of kind whose message is the formatted text.
func fail(kind error, param, format string, args ...any) error {
	return &Error{Kind: kind, Param: param, Msg: fmt.Sprintf(format, args...)}
}

// unavailable wraps a store failure as ErrUnavailable, keeping the cause for the log.
func unavailable(what string, err error) error {
	return &Error{Kind: ErrUnavailable, Msg: what + ": " + err.Error()}
}

// LimitError is a request refused by a budget or a rate limit.
type LimitError struct {
	Kind  error  // ErrBudgetExceeded, ErrRateLimited or ErrEndUserBlocked
	Scope string // whose limit: "key", "team", "team_member", "user", "end_user" or "model"
	ID    string // the team, user or end user id, or the model alias; empty for the key

	// Budgets, in micro-dollars: settled spend this budget period, and the maximum.
	Spend, MaxBudget int64

	// Rate limits.
	Metric     string // "requests", "tokens", "parallel_requests", or "budget" (held by requests in flight)
	Limit      int64
	RetryAfter time.Duration
}

func (e *LimitError) Unwrap() error { return e.Kind }

func (e *LimitError) Error() string {
	who := e.Scope
	if e.ID != "" {
		who += " " + strconv.Quote(e.ID)
	}
	switch e.Kind {
	case ErrBudgetExceeded:
		// LiteLLM's wording, which scripts match on, then what to do about it.
		return fmt.Sprintf("Budget has been exceeded! Current cost: %s, Max budget: %s (%s budget; raise max_budget or wait for its budget_duration to reset it)",
			usd(e.Spend), usd(e.MaxBudget), who)
	case ErrEndUserBlocked:
		return fmt.Sprintf("end user %q is blocked: unblock it with /customer/unblock", e.ID)
	}
	switch e.Metric {
	case "budget":
		return fmt.Sprintf("%s budget is held by requests in flight (spent %s of %s dollars): retry in %ds",
			who, usd(e.Spend), usd(e.MaxBudget), retrySeconds(e.RetryAfter))
	case "parallel_requests":
		return fmt.Sprintf("%s max_parallel_requests limit of %d reached: wait for a request in flight to finish", who, e.Limit)
	case "tokens":
		return fmt.Sprintf("%s tpm_limit of %d tokens per minute reached: retry in %ds", who, e.Limit, retrySeconds(e.RetryAfter))
	}
	return fmt.Sprintf("%s rpm_limit of %d requests per minute reached: retry in %ds", who, e.Limit, retrySeconds(e.RetryAfter))
}

// Headers are the response headers a refused request carries: retry-after and
// LiteLLM's and OpenAI's x-ratelimit-* values for the limit that was hit.
func (e *LimitError) Headers() map[string]string {
	if e.Kind != ErrRateLimited {
		return nil
	}
	h := map[string]string{"retry-after": strconv.Itoa(retrySeconds(e.RetryAfter))}
	switch e.Metric {
	case "requests":
		h["x-ratelimit-limit-requests"] = strconv.FormatInt(e.Limit, 10)
		h["x-ratelimit-remaining-requests"] = "0"
		h["x-ratelimit-reset-requests"] = strconv.Itoa(retrySeconds(e.RetryAfter)) + "s"
	case "tokens":
		h["x-ratelimit-limit-tokens"] = strconv.FormatInt(e.Limit, 10)
		h["x-ratelimit-remaining-tokens"] = "0"
		h["x-ratelimit-reset-tokens"] = strconv.Itoa(retrySeconds(e.RetryAfter)) + "s"
	}
	return h
}

// retrySeconds rounds up, so a client that waits that long finds the window reset.
func retrySeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

// APIError is the one place a keys error becomes the HTTP status and OpenAI error body a
// client receives. ok is false for errors of no known kind: those become a 500 whose
// message reveals nothing, and the caller logs the real error.
func APIError(err error) (e *translate.APIError, ok bool) {
	for _, k := range errorKinds {
		if !errors.Is(err, k.kind) {
			continue
		}
		e := &translate.APIError{Status: k.status, Type: k.typ, Code: k.code, Message: err.Error()}
		if ke, ok := errors.AsType[*Error](err); ok {
			e.Param = ke.Param
		}
		return e, true
	}
	return &translate.APIError{
		Status:  http.StatusInternalServerError,
		Type:    "api_error",
		Code:    "internal_error",
		Message: "tollgate failed to process the request; the gateway log has the cause",
	}, false
}

package extproc

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/tollgate-dev/tollgate/translate"
)

// Errors an Authenticator returns (wrapped, with a message for the client) when a key may
// not be used.
var (
	// ErrNoKey: the request carried no key at all.
	ErrNoKey = errors.New("missing API key")
	// ErrInvalidKey: the key is not one tollgate knows.
	ErrInvalidKey = errors.New("invalid API key")
	// ErrKeyExpired: the key is known but past its expiry.
	ErrKeyExpired = errors.New("API key expired")
	// ErrKeyBlocked: the key is known but blocked by an admin.
	ErrKeyBlocked = errors.New("API key blocked")
)

// Kinds of request failure the router and upstream stages detect themselves. Each is
// wrapped by a *requestError that carries the client's message.
var (
	errModelNotFound       = errors.New("model not found")
	errModelNotAllowed     = errors.New("model not allowed for key")
	errInvalidRequest      = errors.New("invalid request")
	errBodyTooLarge        = errors.New("request body too large")
	errUnknownPath         = errors.New("unknown path")
	errMethodNotAllowed    = errors.New("method not allowed")
	errUnsupportedEndpoint = errors.New("endpoint not supported by model")
	errConfigMismatch      = errors.New("config.yaml and envoy.yaml disagree")
	errBadProviderResponse = errors.New("provider response could not be translated")
)

// errorKinds maps every error kind to what the client sees. The codes are stable: clients
// and dashboards match on them, and they double as metric labels.
var errorKinds = []struct {
	kind   error
	status int
	typ    string
	code   string
}{
	{ErrNoKey, http.StatusUnauthorized, "authentication_error", "missing_api_key"},
	{ErrInvalidKey, http.StatusUnauthorized, "authentication_error", "invalid_api_key"},
	{ErrKeyExpired, http.StatusUnauthorized, "authentication_error", "key_expired"},
	{ErrKeyBlocked, http.StatusUnauthorized, "authentication_error", "key_blocked"},
	// LiteLLM answers 401 here (newer versions 403); the article's troubleshooting
	// section, which users will search for, describes the 401.
	{errModelNotAllowed, http.StatusUnauthorized, "authentication_error", "key_model_access_denied"},
	{errModelNotFound, http.StatusNotFound, "invalid_request_error", "model_not_found"},
	{errInvalidRequest, http.StatusBadRequest, "invalid_request_error", "invalid_request"},
	{errBodyTooLarge, http.StatusRequestEntityTooLarge, "invalid_request_error", "request_too_large"},
	{errUnknownPath, http.StatusNotFound, "invalid_request_error", "unknown_url"},
	{errMethodNotAllowed, http.StatusMethodNotAllowed, "invalid_request_error", "method_not_allowed"},
	{errUnsupportedEndpoint, http.StatusBadRequest, "invalid_request_error", "unsupported_endpoint"},
	{errConfigMismatch, http.StatusInternalServerError, "api_error", "config_mismatch"},
	{errBadProviderResponse, http.StatusBadGateway, "api_error", "bad_provider_response"},
}

// requestError is a failure with a message written for the client.
type requestError struct {
	kind  error
	param string // the request field at fault, if any
	msg   string
}

func (e *requestError) Error() string { return e.msg }
func (e *requestError) Unwrap() error { return e.kind }

// fail returns an error of kind whose client-facing message is the formatted text.
func fail(kind error, param, format string, args ...any) error {
	return &requestError{kind: kind, param: param, msg: fmt.Sprintf(format, args...)}
}

// apiError is the one place an error becomes the status and OpenAI error body a client
// receives. Unknown errors become a 500 whose message says nothing about the cause;
// internal reports whether that happened, so the caller logs the real error.
func apiError(err error) (e *translate.APIError, internal bool) {
	if ae, ok := errors.AsType[*translate.APIError](err); ok {
		return ae, false
	}
	for _, k := range errorKinds {
		if !errors.Is(err, k.kind) {
			continue
		}
		e := &translate.APIError{Status: k.status, Type: k.typ, Code: k.code, Message: err.Error()}
		if re, ok := errors.AsType[*requestError](err); ok {
			e.Param = re.param
		}
		return e, false
	}
	return &translate.APIError{
		Status:  http.StatusInternalServerError,
		Type:    "api_error",
		Code:    "internal_error",
		Message: "tollgate failed to process the request; the gateway log has the cause",
	}, true
}

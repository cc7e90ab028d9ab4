package translate

import "encoding/json"

// APIError is an error in OpenAI's shape: {"error":{"message","type","param","code"}}.
// Every failure a client sees is one of these, with the HTTP status it is sent with.
type APIError struct {
	Status  int
	Message string
	Type    string
	Param   string
	Code    string
	// Headers go on the error response (retry-after, x-ratelimit-*).
	Headers []Header
}

func (e *APIError) Error() string { return e.Message }

// JSON renders the error body.
func (e *APIError) JSON() []byte {
	var body struct {
		Error struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
			Code    *string `json:"code"`
		} `json:"error"`
	}
	body.Error.Message = e.Message
	body.Error.Type = e.Type
	if e.Param != "" {
		body.Error.Param = &e.Param
	}
	if e.Code != "" {
		body.Error.Code = &e.Code
	}
	b, _ := json.Marshal(body) // cannot fail: strings only
	return b
}

// StatusError is an APIError with the OpenAI error type that goes with status.
func StatusError(status int, message string) *APIError {
	t := "api_error"
	switch {
	case status == 400 || status == 404 || status == 413 || status == 422:
		t = "invalid_request_error" // OpenAI's type for unknown models (404) too
	case status == 401:
		t = "authentication_error"
	case status == 403:
		t = "permission_error"
	case status == 429:
		t = "rate_limit_error"
	}
	return &APIError{Status: status, Type: t, Message: message}
}

// StreamError renders err as the last events of an OpenAI server-sent event stream: an
// error event, then [DONE], so a client's stream ends with the reason instead of hanging.
func StreamError(err *APIError) []byte {
	out := make([]byte, 0, 64+len(err.Message))
	out = append(out, "data: "...)
	out = append(out, err.JSON()...)
	return append(out, "\n\ndata: [DONE]\n\n"...)
}

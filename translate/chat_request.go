package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"
)

// This file reads OpenAI chat completion requests for the translators that rewrite them
// (Anthropic, Bedrock, Gemini): decoding, and the 400s that name the parameter at fault.

// marshalJSON encodes v without escaping <, > and & (no provider API needs it), into a
// buffer sized from the input it was translated from.
func marshalJSON(v any, sizeHint int) ([]byte, error) {
	buf := bytes.NewBuffer(make([]byte, 0, sizeHint+256))
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// invalidParam is a 400 about one request parameter.
func invalidParam(param, format string, args ...any) *APIError {
	return &APIError{Status: 400, Type: "invalid_request_error", Param: param, Message: fmt.Sprintf(format, args...)}
}

// unsupportedParam is a 400 for an OpenAI parameter the provider cannot honour; why
// completes the sentence.
func unsupportedParam(param, why string) *APIError {
	return &APIError{Status: 400, Type: "invalid_request_error", Param: param, Code: "unsupported_parameter",
		Message: fmt.Sprintf("Unsupported parameter: '%s' %s", param, why)}
}

// unknownParam is the 400 for a request member no translator reads.
func unknownParam(param string) *APIError {
	return invalidParam(param, "Unrecognized request argument supplied: %s", param)
}

// decodeParam decodes one parameter, answering a 400 that names it when its type is
// wrong.
func decodeParam(raw json.RawMessage, v any, param string) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return invalidParam(param, "Invalid value for '%s': %v", param, err)
	}
	return nil
}

// decodeParamAt is decodeParam for a parameter whose name is built only when it is
// needed: the names of message parts cost an allocation each.
func decodeParamAt(raw json.RawMessage, v any, param func() string) error {
	if err := json.Unmarshal(raw, v); err != nil {
		p := param()
		return invalidParam(p, "Invalid value for '%s': %v", p, err)
	}
	return nil
}

// paramName is a fixed name for decodeParamAt.
func paramName(s string) func() string { return func() string { return s } }

// isNull reports whether a parameter is absent or JSON null.
func isNull(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }

// decodeChatRequest decodes body, one JSON object, into v, a pointer to a struct that
// declares every member a client may send (known lists their names, from knownParams).
func decodeChatRequest(body []byte, v any, known map[string]bool) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return chatDecodeError(body, err, known)
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalidParam("", "The request body has data after its JSON object")
	}
	return nil
}

// chatDecodeError turns a decoding failure into a 400 that names the parameter at fault.
func chatDecodeError(body []byte, err error, known map[string]bool) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return invalidParam(typeErr.Field, "Invalid type for '%s': expected %s, got %s",
			typeErr.Field, jsonKindName(typeErr.Type), typeErr.Value)
	case errors.As(err, &typeErr):
		return invalidParam("", "The request body must be a JSON object")
	case errors.As(err, &syntaxErr), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return invalidParam("", "The request body is not valid JSON: %v", err)
	}
	// DisallowUnknownFields: find the unknown name by reading the members again (this
	// path only runs for a request that is refused anyway).
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) == nil {
		names := make([]string, 0, len(fields))
		for k := range fields {
			if !known[k] {
				names = append(names, k)
			}
		}
		if len(names) > 0 {
			sort.Strings(names)
			return unknownParam(names[0])
		}
	}
	return invalidParam("", "Invalid request body: %v", err)
}

// knownParams are the JSON member names the struct T declares.
func knownParams[T any]() map[string]bool {
	known := map[string]bool{}
	t := reflect.TypeFor[T]()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		known[name] = true
	}
	return known
}

// jsonKindName describes a Go type as the JSON a client should have sent.
func jsonKindName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice:
		return "an array"
	}
	return "an object"
}

// parseStop reads "stop", a string or a list of them; an empty string is no stop.
func parseStop(raw json.RawMessage) ([]string, error) {
	if raw[0] == '"' {
		var s string
		if err := decodeParam(raw, &s, "stop"); err != nil || s == "" {
			return nil, err
		}
		return []string{s}, nil
	}
	var list []string
	if err := decodeParam(raw, &list, "stop"); err != nil {
		return nil, err
	}
	return list, nil
}

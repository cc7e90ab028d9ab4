package extproc

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
)

// value returns a header's value. Envoy sends raw_value (bytes); value is read too for
// Envoys started with envoy.reloadable_features.send_header_raw_value=false.
func value(h *corev3.HeaderValue) string {
	if len(h.RawValue) > 0 {
		return string(h.RawValue)
	}
	return h.Value
}

// set is a header mutation entry that replaces the header. Only raw_value is filled:
// Envoy rejects entries with both value and raw_value.
func set(key, val string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: key, RawValue: []byte(val)}}
}

// contentLength is the header mutation entry for a body of n bytes.
func contentLength(n int) *corev3.HeaderValueOption {
	return set("content-length", strconv.Itoa(n))
}

// headersResponse answers a request (request true) or response headers message.
func headersResponse(request bool, common *extprocv3.CommonResponse) *extprocv3.ProcessingResponse {
	hr := &extprocv3.HeadersResponse{Response: common}
	if request {
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: hr}}
	}
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: hr}}
}

// bodyResponse answers a request (request true) or response body message.
func bodyResponse(request bool, common *extprocv3.CommonResponse) *extprocv3.ProcessingResponse {
	br := &extprocv3.BodyResponse{Response: common}
	if request {
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: br}}
	}
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: br}}
}

// replaceBody is a CommonResponse that replaces a buffered body and sets the
// content-length that goes with it: Envoy fails a BUFFERED body mutation whose length
// disagrees with the content-length header, and does not fix the header itself.
func replaceBody(body []byte, headers ...*corev3.HeaderValueOption) *extprocv3.CommonResponse {
	return &extprocv3.CommonResponse{
		HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: append(headers, contentLength(len(body)))},
		BodyMutation:   &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: body}},
	}
}

// reply ends processing with a response tollgate writes itself: a JSON body with status.
func reply(status int, body []byte, requestID string, headers ...*corev3.HeaderValueOption) *extprocv3.ProcessingResponse {
	headers = append(headers, set("content-type", "application/json"))
	if requestID != "" {
		headers = append(headers, set(headerRequestID, requestID), set("x-litellm-call-id", requestID))
	}
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{
		ImmediateResponse: &extprocv3.ImmediateResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(status)},
			Headers: &extprocv3.HeaderMutation{SetHeaders: headers},
			Body:    body,
		},
	}}
}

// newRequestID returns a random UUID (version 4), the form Envoy's own x-request-id has.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails on supported platforms (crypto/rand docs)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}

// validRequestID reports whether a client-supplied x-request-id may be reused: it ends
// up in response headers, logs and spend records, so only short, plain tokens qualify.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

package providertest

import (
	"encoding/json"
	"net/http"
)

// anthropicCountPath is the token counting endpoint
// (https://docs.anthropic.com/en/api/messages-count-tokens).
const anthropicCountPath = "/v1/messages/count_tokens"

// anthropicCountFields are the members a count_tokens request may have: a Messages
// request's input, without its generation settings.
var anthropicCountFields = map[string]bool{
	"model": true, "messages": true, "system": true, "tools": true, "tool_choice": true, "thinking": true,
}

// countAnthropicTokens answers a count_tokens request, checked as a Messages request's
// input is (max_tokens, stream and the other generation settings are refused, as the API
// refuses them), with {"input_tokens": n}, one token per word as everywhere in the fake.
func countAnthropicTokens(w http.ResponseWriter, body []byte) {
	if msg := anthropicExtraInputs(body, anthropicCountFields); msg != "" {
		writeAnthropicError(w, 400, "invalid_request_error", msg)
		return
	}
	var req anthropicRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeAnthropicError(w, 400, "invalid_request_error", "There was an error parsing the body: "+err.Error())
		return
	}
	msg := ""
	switch {
	case req.Model == "":
		msg = "model: Field required"
	case len(req.Messages) == 0:
		msg = "messages: Field required"
	}
	for _, check := range []func() string{
		func() string { return checkAnthropicSystem(&req) },
		func() string { return checkAnthropicMessages(req.Messages) },
		func() string { return checkAnthropicTools(&req) },
	} {
		if msg == "" {
			msg = check()
		}
	}
	if msg != "" {
		writeAnthropicError(w, 400, "invalid_request_error", msg)
		return
	}
	writeJSON(w, map[string]int{"input_tokens": inputTokens(&req)})
}

// inputTokens counts a request's system prompt and messages, one token per word.
func inputTokens(req *anthropicRequest) int {
	n := 0
	for _, b := range req.system {
		n += countTokens(anthropicBlockText(b))
	}
	for _, m := range req.Messages {
		for _, b := range m.Content {
			n += countTokens(anthropicBlockText(b))
		}
	}
	return n
}

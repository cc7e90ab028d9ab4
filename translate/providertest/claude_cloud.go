package providertest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

// Claude on the clouds. Vertex AI and Bedrock take Anthropic's Messages body with
// "anthropic_version" in it and without "model" (the model is in the path):
// https://docs.anthropic.com/en/api/claude-on-vertex-ai and
// https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages-request-response.html.
// Bedrock picks streaming by operation, so it refuses "stream" too. Once checked, the
// request is answered as the Anthropic fake answers it: JSON, SSE for Vertex AI's
// streamRawPredict, and for Bedrock's InvokeModelWithResponseStream event-stream "chunk"
// frames each carrying one Anthropic event as {"bytes": base64}
// (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModelWithResponseStream.html).

// Required anthropic_version values.
const (
	vertexClaudeVersion  = "vertex-2023-10-16"
	bedrockClaudeVersion = "bedrock-2023-05-31"
)

// checkCloudClaude checks a cloud Claude body and returns it as an Anthropic request for
// model, or the problem.
func checkCloudClaude(body []byte, version, model string, stream, bedrock bool) (*anthropicRequest, string) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, "There was an error parsing the body: " + err.Error()
	}
	var v string
	if raw, ok := fields["anthropic_version"]; !ok || json.Unmarshal(raw, &v) != nil || v != version {
		return nil, fmt.Sprintf("anthropic_version: Input should be %q", version)
	}
	if _, ok := fields["model"]; ok {
		return nil, "model: Extra inputs are not permitted"
	}
	if _, ok := fields["stream"]; ok && bedrock {
		return nil, "stream: Extra inputs are not permitted"
	}
	delete(fields, "anthropic_version")
	fields["model"], _ = json.Marshal(model)
	fields["stream"], _ = json.Marshal(stream)
	b, _ := json.Marshal(fields)
	return checkAnthropicRequest(b)
}

// rawPredict answers :rawPredict and :streamRawPredict for a Claude model.
func (f *Google) rawPredict(w http.ResponseWriter, model string, body []byte, stream bool) {
	if m, err := url.PathUnescape(model); err == nil {
		model = m
	}
	req, msg := checkCloudClaude(body, vertexClaudeVersion, model, stream, false)
	if msg != "" {
		writeAnthropicError(w, 400, "invalid_request_error", msg)
		return
	}
	f.claude.respond(w, req, nil)
}

// countClaude answers Vertex AI's count-tokens:rawPredict for Claude
// (https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude/count-tokens):
// an Anthropic count_tokens body with "anthropic_version" and, as the endpoint is not a
// model's, the model in the body. The answer is Anthropic's {"input_tokens": n}.
func (f *Google) countClaude(w http.ResponseWriter, body []byte) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		writeAnthropicError(w, 400, "invalid_request_error", "There was an error parsing the body: "+err.Error())
		return
	}
	var v string
	if raw, ok := fields["anthropic_version"]; !ok || json.Unmarshal(raw, &v) != nil || v != vertexClaudeVersion {
		writeAnthropicError(w, 400, "invalid_request_error", fmt.Sprintf("anthropic_version: Input should be %q", vertexClaudeVersion))
		return
	}
	delete(fields, "anthropic_version")
	b, _ := json.Marshal(fields)
	countAnthropicTokens(w, b)
}

// countClaude answers Bedrock's CountTokens for a Claude model
// (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_CountTokens.html):
// {"input": {"invokeModel": {"body": base64}}}, the body an InvokeModel request would
// carry (max_tokens included), answered with {"inputTokens": n}. As Bedrock does, it
// counts for foundation model IDs only, not cross-region inference profiles.
func (f *Bedrock) countClaude(w http.ResponseWriter, model string, body []byte) {
	if strings.Index(model, "anthropic.") > 0 {
		writeBedrockError(w, 400, "ValidationException", "The provided model doesn't support counting tokens.")
		return
	}
	var req struct {
		Input struct {
			InvokeModel *struct {
				Body []byte `json:"body"` // a blob: base64 in JSON
			} `json:"invokeModel"`
		} `json:"input"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.Input.InvokeModel == nil {
		writeBedrockError(w, 400, "ValidationException", "input.invokeModel.body is required")
		return
	}
	inner, msg := checkCloudClaude(req.Input.InvokeModel.Body, bedrockClaudeVersion, "claude", false, true)
	if msg != "" {
		writeBedrockError(w, 400, "ValidationException", msg)
		return
	}
	writeJSON(w, map[string]int{"inputTokens": inputTokens(inner)})
}

// invokeClaude answers InvokeModel and InvokeModelWithResponseStream for a Claude model.
func (f *Bedrock) invokeClaude(w http.ResponseWriter, body []byte, stream bool) {
	req, msg := checkCloudClaude(body, bedrockClaudeVersion, "claude", stream, true)
	if msg != "" {
		writeBedrockError(w, 400, "ValidationException", msg)
		return
	}
	f.claude.respond(w, req, bedrockChunks)
}

// bedrockChunks writes each Anthropic stream event as an InvokeModelWithResponseStream
// chunk frame, flushed at once.
func bedrockChunks(w http.ResponseWriter) func(map[string]any) {
	w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
	w.Header().Set("X-Amzn-Requestid", "fake-request-id")
	w.WriteHeader(200)
	flusher, _ := w.(http.Flusher)
	enc := eventstream.NewEncoder()
	return func(ev map[string]any) {
		b, _ := json.Marshal(ev)
		payload, _ := json.Marshal(map[string]string{"bytes": base64.StdEncoding.EncodeToString(b)})
		enc.Encode(w, eventstream.Message{Headers: eventstream.Headers{
			{Name: ":event-type", Value: eventstream.StringValue("chunk")},
			{Name: ":content-type", Value: eventstream.StringValue("application/json")},
			{Name: ":message-type", Value: eventstream.StringValue("event")},
		}, Payload: payload})
		if flusher != nil {
			flusher.Flush()
		}
	}
}

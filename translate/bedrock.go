package translate

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go/encoding/httpbinding"
)

// The bedrock translator serves OpenAI clients from Amazon Bedrock. Chat completions go
// to the Converse API (ConverseStream when the client streams), which speaks one message
// format for every chat model Bedrock hosts; embeddings go to InvokeModel with the Titan
// or Cohere body. Decisions that are not forced by the formats:
//
//   - Requests are signed with AWS Signature Version 4 over the final body, using the
//     deployment's access key (Target.AWS). A deployment configured with a Bedrock API
//     key (api_key) and no access key sends it as a bearer token instead.
//   - Converse takes image bytes, never URLs, so http(s) image URLs are refused with a
//     400 that says so rather than fetched by the gateway.
//   - response_format json_object/json_schema is served as the anthropic translator (and
//     LiteLLM) serves it: a forced tool named bedrockJSONTool whose input is the answer.
//   - OpenAI parameters Converse cannot honour are refused with a 400 naming them, never
//     dropped; settings of OpenAI's own platform are ignored; unknown ones are refused.
//   - "thinking" and reasoning_effort become Anthropic's thinking parameter in
//     additionalModelRequestFields, as LiteLLM sends them; other model families reject
//     it themselves.
//   - LiteLLM's route prefixes in the model name (bedrock/converse/<id>,
//     bedrock/invoke/<id>) are dropped: tollgate always uses Converse for chat.

// bedrockService is the SigV4 signing name of the Bedrock Runtime API.
const bedrockService = "bedrock"

// bedrockJSONTool names the forced tool that carries response_format; LiteLLM uses the
// same name.
const bedrockJSONTool = "json_tool_call"

// bedrockThinkingOutput is the room left for the answer when thinking is on and the
// client set no max_tokens: Anthropic models need max_tokens above the thinking budget,
// and 4096 is LiteLLM's default answer length for them.
const bedrockThinkingOutput = 4096

// bedrockThinkingBudgets maps reasoning_effort to a thinking budget in tokens, LiteLLM's
// DEFAULT_REASONING_EFFORT_*_THINKING_BUDGET values.
var bedrockThinkingBudgets = map[string]int{"low": 1024, "medium": 2048, "high": 4096}

// bedrockSpec is the registry entry for the bedrock/ provider prefix. Its API base
// depends on the deployment's region (BedrockBase), so there is no DefaultBase.
var bedrockSpec = &Spec{
	Name:       "bedrock",
	Endpoints:  []Endpoint{ChatCompletions, Embeddings},
	Translator: bedrockTranslator{},
}

// bedrockTranslator converts OpenAI requests to and from Bedrock's Converse and
// InvokeModel APIs.
type bedrockTranslator struct {
	// now is the signing time and stamps "created"; nil means time.Now. Tests fix it so
	// signatures and outputs are reproducible.
	now func() time.Time
	// newID names chat completions, which Converse responses do not; nil means random.
	newID func() string
}

func (b bedrockTranslator) clock() time.Time {
	if b.now == nil {
		return time.Now()
	}
	return b.now()
}

func (b bedrockTranslator) completionID() string {
	if b.newID != nil {
		return b.newID()
	}
	var buf [12]byte
	rand.Read(buf[:]) // never fails (crypto/rand panics rather than return an error)
	return "chatcmpl-" + hex.EncodeToString(buf[:])
}

// BedrockBase is the Bedrock Runtime endpoint of an AWS region, the api_base of a
// bedrock/ deployment that configures none. It fails for a region name that could not
// be part of a host name, so a typo cannot redirect requests elsewhere.
func BedrockBase(region string) (string, error) {
	if region == "" || len(region) > 32 {
		return "", fmt.Errorf("bedrock: AWS region %q is not a region name", region)
	}
	for _, c := range region {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return "", fmt.Errorf("bedrock: AWS region %q is not a region name", region)
		}
	}
	return "https://bedrock-runtime." + region + ".amazonaws.com", nil
}

// Request translates a chat completion or embedding request into a signed Bedrock
// Runtime request.
func (b bedrockTranslator) Request(ep Endpoint, body []byte, t *Target) (*Upstream, error) {
	model := bedrockModelID(t.Model)
	var (
		out []byte
		op  string
		err error
	)
	switch ep {
	case ChatCompletions:
		var stream bool
		out, stream, err = bedrockChatRequest(body)
		op = "converse"
		if stream {
			op = "converse-stream"
		}
	case Embeddings:
		out, err = bedrockEmbedRequest(body, model)
		op = "invoke"
	default:
		return nil, &APIError{Status: 400, Type: "invalid_request_error", Code: "unsupported_endpoint",
			Message: fmt.Sprintf("bedrock deployments serve chat/completions and embeddings, not %s", ep)}
	}
	if err != nil {
		return nil, err
	}
	return b.upstream(t, model, op, out)
}

// upstream is the signed request for operation op of model with body.
func (b bedrockTranslator) upstream(t *Target, model, op string, body []byte) (*Upstream, error) {
	base, err := bedrockBaseURL(t)
	if err != nil {
		return nil, err
	}
	up := &Upstream{
		Path:      bedrockPath(base, model, op),
		Authority: bedrockAuthority(base),
		Headers:   bedrockHeaders(t),
		Body:      body,
	}
	if err := b.authorize(up, base.Scheme, t); err != nil {
		return nil, err
	}
	return up, nil
}

// bedrockModelID drops LiteLLM's route prefixes from a model name.
func bedrockModelID(model string) string {
	for _, prefix := range []string{"converse/", "invoke/"} {
		if rest, ok := strings.CutPrefix(model, prefix); ok {
			return rest
		}
	}
	return model
}

// bedrockBaseURL is api_base, or the region's endpoint.
func bedrockBaseURL(t *Target) (*url.URL, error) {
	if t.Base != nil {
		return t.Base, nil
	}
	region := ""
	if t.AWS != nil {
		region = t.AWS.Region
	}
	base, err := BedrockBase(region)
	if err != nil {
		return nil, fmt.Errorf("%w (set aws_region_name, AWS_REGION or api_base)", err)
	}
	return url.Parse(base)
}

// bedrockPath is the operation's path under api_base. The model ID is one path segment
// escaped as the AWS SDKs escape it (an inference-profile ARN's "/" and ":" included),
// which is also the form SigV4 signs.
func bedrockPath(base *url.URL, model, op string) string {
	p := strings.TrimSuffix(base.EscapedPath(), "/") + "/model/" + httpbinding.EscapePath(model, true) + "/" + op
	if base.RawQuery != "" {
		p += "?" + base.RawQuery
	}
	return p
}

// bedrockAuthority is the host the request is sent to and signed for. A default port
// is dropped: the SDK's signer leaves it out of the signed host, so the Host header must
// leave it out too for Bedrock to compute the same signature.
func bedrockAuthority(base *url.URL) string {
	host := base.Host
	switch {
	case base.Scheme == "https":
		host = strings.TrimSuffix(host, ":443")
	case base.Scheme == "http":
		host = strings.TrimSuffix(host, ":80")
	}
	return host
}

// bedrockComputedHeaders are set by signing, or by the proxy from the request itself;
// an extra_headers entry cannot replace them without breaking the signature.
var bedrockComputedHeaders = map[string]bool{
	"authorization": true, "x-amz-date": true, "x-amz-security-token": true,
	"x-amz-content-sha256": true, "host": true, "content-length": true,
}

// bedrockHeaders are content-type and the deployment's extra_headers (sorted, so the
// result and its signature are stable); credentials are added by authorize.
func bedrockHeaders(t *Target) []Header {
	hs := make([]Header, 0, 6+len(t.ExtraHeaders))
	hs = append(hs, Header{"content-type", "application/json"})
	keys := make([]string, 0, len(t.ExtraHeaders))
	for k := range t.ExtraHeaders {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch name := strings.ToLower(k); {
		case name == "content-type":
			hs[0].Value = t.ExtraHeaders[k]
		case !bedrockComputedHeaders[name]:
			hs = append(hs, Header{name, t.ExtraHeaders[k]})
		}
	}
	return hs
}

// authorize adds the credential headers: a SigV4 signature when the deployment has an
// AWS access key, else its Bedrock API key as a bearer token. A deployment with neither
// is a configuration fault, not the client's, so the error is not an *APIError.
func (b bedrockTranslator) authorize(up *Upstream, scheme string, t *Target) error {
	switch {
	case t.AWS != nil && t.AWS.AccessKeyID != "":
		return b.sign(up, scheme, t.AWS)
	case t.APIKey != "":
		up.Headers = append(up.Headers, Header{"authorization", "Bearer " + t.APIKey})
		return nil
	}
	return errors.New("bedrock: the deployment has no AWS credentials (aws_access_key_id and aws_secret_access_key, or the AWS_* environment) and no api_key")
}

// sign adds SigV4 headers computed by the AWS SDK's signer over the method, path, host,
// the headers already in up, and the SHA-256 of the body. Bedrock recomputes the same
// signature, so nothing signed may change after this: not the body, not the path.
func (b bedrockTranslator) sign(up *Upstream, scheme string, c *AWSCredentials) error {
	if c.SecretAccessKey == "" {
		return errors.New("bedrock: the deployment has an aws_access_key_id but no aws_secret_access_key")
	}
	if c.Region == "" {
		return errors.New("bedrock: the deployment has no AWS region to sign for (set aws_region_name or AWS_REGION)")
	}
	sum := sha256.Sum256(up.Body)
	payloadHash := hex.EncodeToString(sum[:])
	u, err := url.Parse(scheme + "://" + up.Authority + up.Path)
	if err != nil {
		return fmt.Errorf("bedrock: request URL: %w", err)
	}
	req := &http.Request{
		Method:        http.MethodPost,
		URL:           u,
		Host:          up.Authority,
		Header:        make(http.Header, len(up.Headers)+4),
		ContentLength: int64(len(up.Body)),
	}
	for _, h := range up.Headers {
		req.Header[http.CanonicalHeaderKey(h.Key)] = []string{h.Value}
	}
	req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	creds := aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}
	// A signer per request: the SDK's signer caches one derived key per region, checked
	// against the access key ID only, so a shared one would keep signing with a replaced
	// secret until midnight UTC, and deployments with different keys in one region would
	// evict each other's key anyway. Deriving the key costs four HMACs.
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, payloadHash, bedrockService, c.Region, b.clock()); err != nil {
		return fmt.Errorf("bedrock: sign request: %w", err)
	}
	up.Headers = append(up.Headers,
		Header{"x-amz-content-sha256", payloadHash},
		Header{"x-amz-date", req.Header.Get("X-Amz-Date")})
	if c.SessionToken != "" {
		up.Headers = append(up.Headers, Header{"x-amz-security-token", c.SessionToken})
	}
	up.Headers = append(up.Headers, Header{"authorization", req.Header.Get("Authorization")})
	return nil
}

// bedrockParams are the OpenAI chat parameters read in the first pass over the body.
type bedrockParams struct {
	maxTokens       *int
	stream          bool
	parallelTools   *bool
	responseFormat  json.RawMessage
	toolChoice      json.RawMessage
	thinking        json.RawMessage
	reasoningEffort string
	tools           []chatTool
	messages        []bedrockChatMessage
	inference       bedrockInferenceConfig
}

// bedrockChatRequest builds the Converse body for an OpenAI chat completion request and
// reports whether the client asked for a stream. Every client mistake is a 400
// *APIError naming its parameter.
func bedrockChatRequest(body []byte) ([]byte, bool, error) {
	fields, err := topLevelFields(body)
	if err != nil {
		return nil, false, invalidParam("", "The request body is not a JSON object: %v", err)
	}
	// Sorted, so that a request with several problems always reports the same one.
	keys := make([]string, 0, len(fields))
	for k, raw := range fields {
		if !isNull(raw) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var p bedrockParams
	for _, key := range keys {
		if err := p.read(key, fields[key], fields); err != nil {
			return nil, false, err
		}
	}
	req, err := bedrockBuild(&p)
	if err != nil {
		return nil, false, err
	}
	out, err := json.Marshal(req)
	if err != nil {
		// Only the client's own JSON (schemas, tool input) is copied in raw, and it was
		// decoded once already, so this is an internal fault.
		return nil, false, fmt.Errorf("encode converse request: %w", err)
	}
	return out, p.stream, nil
}

// read takes one top-level request parameter.
func (p *bedrockParams) read(key string, raw json.RawMessage, fields map[string]json.RawMessage) error {
	switch key {
	case "model", "stream_options", "store", "metadata", "service_tier", "prompt_cache_key",
		"prompt_cache_retention", "user", "safety_identifier":
		// Routing, or settings of OpenAI's own platform with no Converse meaning.
		return nil
	case "messages":
		return decodeParam(raw, &p.messages, key)
	case "max_tokens":
		// max_completion_tokens, the newer name, wins when both are set.
		if isNull(fields["max_completion_tokens"]) {
			return decodeParam(raw, &p.maxTokens, key)
		}
		return nil
	case "max_completion_tokens":
		return decodeParam(raw, &p.maxTokens, key)
	case "temperature":
		return decodeParam(raw, &p.inference.Temperature, key)
	case "top_p":
		return decodeParam(raw, &p.inference.TopP, key)
	case "stream":
		return decodeParam(raw, &p.stream, key)
	case "stop":
		stop, err := parseStop(raw)
		p.inference.StopSequences = stop
		return err
	case "tools":
		return decodeParam(raw, &p.tools, key)
	case "tool_choice":
		p.toolChoice = raw
		return nil
	case "parallel_tool_calls":
		return decodeParam(raw, &p.parallelTools, key)
	case "response_format":
		p.responseFormat = raw
		return nil
	case "thinking":
		if raw[0] != '{' {
			return invalidParam(key, "Invalid value for 'thinking': expected an object")
		}
		p.thinking = raw
		return nil
	case "reasoning_effort":
		return decodeParam(raw, &p.reasoningEffort, key)
	case "n":
		var n int
		if err := decodeParam(raw, &n, key); err != nil || n == 1 {
			return err
		}
		return unsupportedParam(key, "must be 1: Bedrock returns one choice per request")
	case "logprobs":
		var on bool
		if err := decodeParam(raw, &on, key); err != nil || !on {
			return err
		}
		return unsupportedParam(key, "is not available from Bedrock")
	case "top_logprobs":
		return unsupportedParam(key, "is not available from Bedrock")
	case "presence_penalty", "frequency_penalty":
		var v float64
		if err := decodeParam(raw, &v, key); err != nil || v == 0 {
			return err
		}
		return unsupportedParam(key, "is not supported by Bedrock's Converse API")
	case "logit_bias":
		var bias map[string]json.RawMessage
		if err := decodeParam(raw, &bias, key); err != nil || len(bias) == 0 {
			return err
		}
		return unsupportedParam(key, "is not supported by Bedrock's Converse API")
	case "modalities":
		var mods []string
		if err := decodeParam(raw, &mods, key); err != nil {
			return err
		}
		for _, m := range mods {
			if m != "text" {
				return unsupportedParam(key, "may only be [\"text\"]: Bedrock's Converse API answers in text")
			}
		}
		return nil
	case "seed", "audio", "prediction", "web_search_options", "verbosity", "top_k":
		return unsupportedParam(key, "is not supported by Bedrock's Converse API")
	case "functions", "function_call":
		return unsupportedParam(key, "is deprecated; use 'tools' and 'tool_choice'")
	}
	return unknownParam(key)
}

// bedrockBuild assembles the Converse request from the decoded parameters.
func bedrockBuild(p *bedrockParams) (*bedrockConverseRequest, error) {
	system, msgs, err := bedrockMessages(p.messages)
	if err != nil {
		return nil, err
	}
	req := &bedrockConverseRequest{Messages: msgs, System: system}
	budget, err := bedrockThinking(req, p)
	if err != nil {
		return nil, err
	}
	inf := p.inference
	switch {
	case p.maxTokens == nil:
		if budget > 0 {
			n := budget + bedrockThinkingOutput
			inf.MaxTokens = &n
		}
	case *p.maxTokens < 1:
		return nil, invalidParam("max_tokens", "max_tokens must be at least 1, got %d", *p.maxTokens)
	case budget > 0 && *p.maxTokens <= budget:
		return nil, invalidParam("max_tokens", "max_tokens (%d) must be greater than the thinking budget (%d tokens)", *p.maxTokens, budget)
	default:
		inf.MaxTokens = p.maxTokens
	}
	if inf.MaxTokens != nil || inf.Temperature != nil || inf.TopP != nil || len(inf.StopSequences) > 0 {
		req.InferenceConfig = &inf
	}
	if err := bedrockToolConfigFor(req, p); err != nil {
		return nil, err
	}
	return req, nil
}

// bedrockThinking puts Anthropic's thinking parameter into additionalModelRequestFields
// and returns the thinking budget in effect, which max_tokens must exceed.
func bedrockThinking(req *bedrockConverseRequest, p *bedrockParams) (int, error) {
	thinking := p.thinking
	if p.reasoningEffort != "" {
		if thinking != nil {
			return 0, invalidParam("reasoning_effort", "Set either 'reasoning_effort' or 'thinking', not both")
		}
		switch budget, ok := bedrockThinkingBudgets[p.reasoningEffort]; {
		case ok:
			thinking = json.RawMessage(fmt.Sprintf(`{"type":"enabled","budget_tokens":%d}`, budget))
		case p.reasoningEffort == "none" || p.reasoningEffort == "minimal":
			// No extended thinking is the closest to minimal reasoning.
		default:
			return 0, invalidParam("reasoning_effort", "Invalid value for 'reasoning_effort': %q (use low, medium or high)", p.reasoningEffort)
		}
	}
	if thinking == nil {
		return 0, nil
	}
	var th struct {
		Type         string `json:"type"`
		BudgetTokens int    `json:"budget_tokens"`
	}
	if err := decodeParam(thinking, &th, "thinking"); err != nil {
		return 0, err
	}
	req.AdditionalModelRequestFields = map[string]json.RawMessage{"thinking": thinking}
	if th.Type != "enabled" {
		return 0, nil
	}
	return th.BudgetTokens, nil
}

// bedrockToolConfigFor sets toolConfig from tools, tool_choice, parallel_tool_calls and
// response_format.
func bedrockToolConfigFor(req *bedrockConverseRequest, p *bedrockParams) error {
	tools, err := bedrockTools(p.tools)
	if err != nil {
		return err
	}
	choice, none, err := bedrockToolChoiceFor(p.toolChoice, tools)
	if err != nil {
		return err
	}
	if p.parallelTools != nil && !*p.parallelTools && len(tools) > 0 {
		return unsupportedParam("parallel_tool_calls", "cannot be false: Bedrock's Converse API has no way to limit a model to one tool call")
	}
	if none {
		tools, choice = nil, nil
	}
	if !isNull(p.responseFormat) {
		jsonTool, err := bedrockResponseFormat(p.responseFormat)
		if err != nil {
			return err
		}
		if jsonTool != nil {
			if len(tools) > 0 {
				return unsupportedParam("response_format",
					"cannot be combined with 'tools' for Bedrock models: tollgate serves JSON output through a forced tool")
			}
			tools = []bedrockTool{{ToolSpec: jsonTool}}
			choice = &bedrockToolChoice{Tool: &bedrockToolName{Name: bedrockJSONTool}}
		}
	}
	if len(tools) > 0 {
		req.ToolConfig = &bedrockToolConfig{Tools: tools, ToolChoice: choice}
		return nil
	}
	// Converse refuses toolUse and toolResult blocks without a toolConfig; say why in
	// the client's terms instead of passing on Bedrock's error.
	for _, m := range req.Messages {
		for _, b := range m.Content {
			if b.ToolUse == nil && b.ToolResult == nil {
				continue
			}
			if none {
				return unsupportedParam("tool_choice",
					"'none' cannot be sent to Bedrock in a conversation that has tool calls: Converse then requires the tools, and cannot forbid calling them")
			}
			return invalidParam("tools", "Bedrock requires 'tools' when the conversation contains tool calls or tool results: send the tools with every request")
		}
	}
	return nil
}

// bedrockTools maps function tools to tool specifications; a function without parameters
// takes an empty object, since inputSchema is required. A tool's cache_control becomes a
// cache point after it.
func bedrockTools(in []chatTool) ([]bedrockTool, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]bedrockTool, 0, len(in))
	for i, t := range in {
		p := fmt.Sprintf("tools[%d]", i)
		if t.Type != "function" {
			return nil, unsupportedParam(p+".type", fmt.Sprintf("%q: only function tools can be sent to Bedrock", t.Type))
		}
		if t.Function == nil || t.Function.Name == "" {
			return nil, invalidParam(p+".function.name", "%s.function.name is required", p)
		}
		spec := &bedrockToolSpec{Name: t.Function.Name, Description: t.Function.Description}
		spec.InputSchema.JSON = t.Function.Parameters
		if isNull(spec.InputSchema.JSON) {
			spec.InputSchema.JSON = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		out = append(out, bedrockTool{ToolSpec: spec})
		if !isNull(t.CacheControl) {
			out = append(out, bedrockTool{CachePoint: &bedrockCachePoint{Type: "default"}})
		}
	}
	return out, nil
}

// bedrockToolChoiceFor maps tool_choice: auto is auto, required is Converse's "any", a
// named function is a "tool" choice, and none (reported separately) drops the tools.
func bedrockToolChoiceFor(raw json.RawMessage, tools []bedrockTool) (choice *bedrockToolChoice, none bool, err error) {
	if isNull(raw) {
		return nil, false, nil
	}
	mode, name, err := parseToolChoice(raw, len(tools) > 0, "Bedrock", func(name string) bool {
		return slices.ContainsFunc(tools, func(t bedrockTool) bool { return t.ToolSpec != nil && t.ToolSpec.Name == name })
	})
	switch {
	case err != nil:
		return nil, false, err
	case name != "":
		return &bedrockToolChoice{Tool: &bedrockToolName{Name: name}}, false, nil
	case mode == "auto":
		return &bedrockToolChoice{Auto: &struct{}{}}, false, nil
	case mode == "required":
		return &bedrockToolChoice{Any: &struct{}{}}, false, nil
	}
	return nil, true, nil // none
}

// bedrockResponseFormat returns the forced tool that serves response_format, or nil for
// plain text.
func bedrockResponseFormat(raw json.RawMessage) (*bedrockToolSpec, error) {
	description, schema, ok, err := jsonToolFormat(raw, "Bedrock")
	if err != nil || !ok {
		return nil, err
	}
	tool := &bedrockToolSpec{Name: bedrockJSONTool, Description: description}
	tool.InputSchema.JSON = schema
	return tool, nil
}

// bedrockMessages splits OpenAI messages into system blocks and the conversation,
// merging consecutive turns of one role (tool results become user turns) because
// Converse requires user and assistant turns to alternate, starting with the user.
func bedrockMessages(in []bedrockChatMessage) ([]bedrockBlock, []bedrockMessage, error) {
	system, turns, err := chatConversation(len(in), func(i int) (string, []bedrockBlock, error) {
		m := &in[i]
		role, blocks, err := convertChatMessage(m.Role, i, "assistant", chatRoles[bedrockBlock]{
			system:    func() ([]bedrockBlock, error) { return bedrockParts(m.Content, i, bedrockTextOnly) },
			user:      func() ([]bedrockBlock, error) { return bedrockParts(m.Content, i, bedrockUserParts) },
			assistant: func() ([]bedrockBlock, error) { return bedrockAssistant(m, i) },
			tool:      func() ([]bedrockBlock, error) { return bedrockToolResultBlock(m, i) },
		})
		return role, bedrockCacheAfter(blocks, m.CacheControl), err
	})
	if err != nil {
		return nil, nil, err
	}
	if turns[0].role != "user" {
		return nil, nil, invalidParam("messages", "Bedrock requires the conversation to start with a user message (system messages aside)")
	}
	out := make([]bedrockMessage, len(turns))
	for i, t := range turns {
		out[i] = bedrockMessage{Role: t.role, Content: t.blocks}
	}
	return system, out, nil
}

// bedrockCacheAfter appends a cache point after blocks when a message carries LiteLLM's
// cache_control: Converse marks the end of a cached prefix with a block of its own.
func bedrockCacheAfter(blocks []bedrockBlock, cc json.RawMessage) []bedrockBlock {
	if isNull(cc) || len(blocks) == 0 || blocks[len(blocks)-1].CachePoint != nil {
		return blocks
	}
	return append(blocks, bedrockBlock{CachePoint: &bedrockCachePoint{Type: "default"}})
}

// Which content parts a role may carry.
const (
	bedrockTextOnly = iota // system, developer, tool
	bedrockUserParts
	bedrockAssistantParts
)

// bedrockParts converts a message's "content" (a string, an array of parts, or null)
// into blocks. Empty text is dropped: Converse rejects blank text blocks.
func bedrockParts(raw json.RawMessage, msg int, allowed int) ([]bedrockBlock, error) {
	if isNull(raw) {
		return nil, nil
	}
	param := fmt.Sprintf("messages[%d].content", msg)
	s, parts, err := decodeContent[chatPart](raw, paramName(param))
	if err != nil || (s != nil && *s == "") {
		return nil, err
	}
	if s != nil {
		return []bedrockBlock{{Text: s}}, nil
	}
	blocks := make([]bedrockBlock, 0, len(parts))
	for j := range parts {
		part := &parts[j]
		pp := fmt.Sprintf("%s[%d]", param, j)
		var b bedrockBlock
		switch {
		case part.Type == "text" || (part.Type == "refusal" && allowed == bedrockAssistantParts):
			text, err := chatPartText(part.Type, part.Text, part.Refusal, paramName(pp))
			if err != nil {
				return nil, err
			}
			if *text == "" {
				continue
			}
			b.Text = text
		case part.Type == "image_url" && allowed == bedrockUserParts:
			img, err := bedrockImageOf(part.ImageURL, pp)
			if err != nil {
				return nil, err
			}
			b.Image = img
		case part.Type == "file" && allowed == bedrockUserParts:
			doc, err := bedrockDocumentOf(part, pp, msg, j)
			if err != nil {
				return nil, err
			}
			b.Document = doc
		case part.Type == "input_audio" && allowed == bedrockUserParts:
			return nil, unsupportedParam(pp, "(input_audio) cannot be sent to Bedrock's Converse API")
		default:
			return nil, invalidParam(pp, "%s: content part type %q is not allowed here", pp, part.Type)
		}
		blocks = append(blocks, b)
		blocks = bedrockCacheAfter(blocks, part.CacheControl)
	}
	return blocks, nil
}

// bedrockImageFormats are the image media types Converse accepts, by their format name.
var bedrockImageFormats = map[string]string{
	"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/gif": "gif", "image/webp": "webp",
}

// bedrockImageOf maps an image_url holding a base64 data URL to an image block.
func bedrockImageOf(raw json.RawMessage, param string) (*bedrockImage, error) {
	u, err := imageURLOf(raw, paramName(param+".image_url"))
	if err != nil {
		return nil, err
	}
	media, data, ok := bedrockDataURL(u)
	if !ok {
		if strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
			return nil, unsupportedParam(param+".image_url.url",
				"is an http(s) URL: Bedrock's Converse API accepts images only as bytes; send the image as a base64 data URL (data:image/png;base64,...)")
		}
		return nil, invalidParam(param+".image_url.url", "%s.image_url.url must be a base64 data URL", param)
	}
	format, ok := bedrockImageFormats[media]
	if !ok {
		return nil, unsupportedParam(param+".image_url.url", fmt.Sprintf("has media type %q: Bedrock accepts png, jpeg, gif and webp images", media))
	}
	return &bedrockImage{Format: format, Source: bedrockSource{Bytes: data}}, nil
}

// bedrockDataURL is parseDataURL for Converse, whose JSON protocol takes the payload as
// it is: the payload must not be empty, and the media type is compared in lower case.
func bedrockDataURL(u string) (media, data string, ok bool) {
	media, data, ok = parseDataURL(u)
	if !ok || data == "" {
		return "", "", false
	}
	return strings.ToLower(media), data, true
}

// bedrockDocumentFormats are the document media types Converse accepts.
var bedrockDocumentFormats = map[string]string{
	"application/pdf": "pdf", "text/csv": "csv", "application/msword": "doc",
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
	"application/vnd.ms-excel": "xls",
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
	"text/html": "html", "text/plain": "txt", "text/markdown": "md",
}

// bedrockDocumentOf maps a file part sent as file_data to a document block. Converse
// requires a name, which only labels the document for the model; it is derived from the
// part's position so it is unique and uses only the characters Converse allows.
func bedrockDocumentOf(part *chatPart, param string, msg, idx int) (*bedrockDocument, error) {
	if part.File == nil || part.File.FileData == "" {
		return nil, unsupportedParam(param+".file", "needs 'file_data': OpenAI file IDs cannot be sent to Bedrock")
	}
	media, data, ok := bedrockDataURL(part.File.FileData)
	if !ok {
		return nil, invalidParam(param+".file.file_data", "%s.file.file_data must be a base64 data URL", param)
	}
	format, ok := bedrockDocumentFormats[media]
	if !ok {
		return nil, unsupportedParam(param+".file.file_data", fmt.Sprintf("has media type %q, which Bedrock does not accept as a document", media))
	}
	return &bedrockDocument{Format: format, Name: fmt.Sprintf("document-%d-%d", msg, idx), Source: bedrockSource{Bytes: data}}, nil
}

// bedrockAssistant converts an assistant message: LiteLLM-style thinking_blocks first
// (the signed reasoning that led to the text and tool calls), then text, then one
// toolUse per tool call.
func bedrockAssistant(m *bedrockChatMessage, i int) ([]bedrockBlock, error) {
	if !isNull(m.FunctionCall) {
		return nil, unsupportedParam(fmt.Sprintf("messages[%d].function_call", i), "is deprecated; use 'tool_calls'")
	}
	blocks := make([]bedrockBlock, 0, len(m.ThinkingBlocks)+1+len(m.ToolCalls))
	for j, tb := range m.ThinkingBlocks {
		switch tb.Type {
		case "thinking":
			blocks = append(blocks, bedrockBlock{ReasoningContent: &bedrockReasoning{
				ReasoningText: &bedrockReasoningText{Text: tb.Thinking, Signature: tb.Signature}}})
		case "redacted_thinking":
			blocks = append(blocks, bedrockBlock{ReasoningContent: &bedrockReasoning{RedactedContent: tb.Data}})
		default:
			p := fmt.Sprintf("messages[%d].thinking_blocks[%d].type", i, j)
			return nil, invalidParam(p, "%s must be thinking or redacted_thinking", p)
		}
	}
	text, err := bedrockParts(m.Content, i, bedrockAssistantParts)
	if err != nil {
		return nil, err
	}
	blocks = append(blocks, text...)
	for j, tc := range m.ToolCalls {
		p := fmt.Sprintf("messages[%d].tool_calls[%d]", i, j)
		if tc.Type != "" && tc.Type != "function" {
			return nil, unsupportedParam(p+".type", fmt.Sprintf("%q: only function tool calls can be sent to Bedrock", tc.Type))
		}
		if tc.ID == "" || tc.Function.Name == "" {
			return nil, invalidParam(p, "%s needs an 'id' and a 'function.name'", p)
		}
		args := strings.TrimSpace(tc.Function.Arguments)
		input := json.RawMessage(args)
		if args == "" {
			input = json.RawMessage("{}")
		} else if args[0] != '{' || !json.Valid(input) {
			return nil, invalidParam(p+".function.arguments", "%s.function.arguments must be a JSON object: Bedrock tool input is an object", p)
		}
		blocks = append(blocks, bedrockBlock{ToolUse: &bedrockToolUse{ToolUseID: tc.ID, Name: tc.Function.Name, Input: input}})
	}
	return blocks, nil
}

// bedrockToolResultBlock converts a role "tool" message into a toolResult block; the
// caller merges consecutive results into one user turn. A result without content is sent
// with an empty content list, since Converse rejects blank text.
func bedrockToolResultBlock(m *bedrockChatMessage, i int) ([]bedrockBlock, error) {
	if m.ToolCallID == "" {
		p := fmt.Sprintf("messages[%d].tool_call_id", i)
		return nil, invalidParam(p, "%s is required for a tool message", p)
	}
	content, err := bedrockParts(m.Content, i, bedrockTextOnly)
	if err != nil {
		return nil, err
	}
	if content == nil {
		content = []bedrockBlock{}
	}
	return []bedrockBlock{{ToolResult: &bedrockToolResult{ToolUseID: m.ToolCallID, Content: content}}}, nil
}

// Response translates a whole Converse or InvokeModel response (any status) into OpenAI
// format.
func (b bedrockTranslator) Response(ep Endpoint, status int, body []byte) ([]byte, Usage, error) {
	if status >= 400 {
		return bedrockError(status, body).JSON(), Usage{}, nil
	}
	if ep == Embeddings {
		return bedrockEmbedResponse(body)
	}
	var r bedrockConverseResponse
	if err := json.Unmarshal(body, &r); err != nil || r.Output.Message == nil {
		return nil, Usage{}, &APIError{Status: 502, Type: "api_error", Code: "bad_upstream_response",
			Message: "Amazon Bedrock returned a response that is not a Converse response"}
	}
	out := chatCompletion[bedrockChatOutMessage, chatUsage]{
		ID:      b.completionID(),
		Object:  "chat.completion",
		Created: b.clock().Unix(),
		Choices: []chatChoice[bedrockChatOutMessage]{{Message: bedrockChatOutMessage{Role: "assistant"}}},
	}
	msg := &out.Choices[0].Message
	var text, reasoning strings.Builder
	jsonMode := false
	for _, blk := range r.Output.Message.Content {
		switch {
		case blk.Text != nil:
			text.WriteString(*blk.Text)
		case blk.ToolUse != nil:
			args := string(blk.ToolUse.Input)
			if isNull(blk.ToolUse.Input) {
				args = "{}"
			}
			if blk.ToolUse.Name == bedrockJSONTool {
				jsonMode = true
				text.WriteString(args)
				continue
			}
			tc := chatToolCall{ID: blk.ToolUse.ToolUseID, Type: "function"}
			tc.Function.Name, tc.Function.Arguments = blk.ToolUse.Name, args
			msg.ToolCalls = append(msg.ToolCalls, tc)
		case blk.ReasoningContent != nil && blk.ReasoningContent.ReasoningText != nil:
			rt := blk.ReasoningContent.ReasoningText
			reasoning.WriteString(rt.Text)
			msg.ThinkingBlocks = append(msg.ThinkingBlocks, bedrockChatThinking{Type: "thinking", Thinking: rt.Text, Signature: rt.Signature})
		case blk.ReasoningContent != nil && blk.ReasoningContent.RedactedContent != "":
			msg.ThinkingBlocks = append(msg.ThinkingBlocks, bedrockChatThinking{Type: "redacted_thinking", Data: blk.ReasoningContent.RedactedContent})
		}
	}
	if text.Len() > 0 || len(msg.ToolCalls) == 0 {
		s := text.String()
		msg.Content = &s
	}
	msg.ReasoningContent = reasoning.String()
	out.Choices[0].FinishReason = bedrockFinishReason(r.StopReason, jsonMode)
	u := bedrockUsageOf(r.Usage)
	if u.Known {
		out.Usage = chatUsageOf(u)
	}
	body, err := json.Marshal(out)
	if err != nil {
		return nil, Usage{}, fmt.Errorf("encode chat completion: %w", err)
	}
	return body, u, nil
}

// bedrockFinishReason maps a Converse stopReason to finish_reason. In JSON mode the
// forced tool call is the answer, so it finishes with "stop".
func bedrockFinishReason(stop string, jsonMode bool) string {
	switch stop {
	case "max_tokens", "model_context_window_exceeded":
		return "length"
	case "tool_use":
		if jsonMode {
			return "stop"
		}
		return "tool_calls"
	case "guardrail_intervened", "content_filtered":
		return "content_filter"
	}
	return "stop" // end_turn, stop_sequence, malformed_* and reasons added later
}

// bedrockUsageOf normalises Converse usage to OpenAI's convention: prompt tokens count
// every input token, those read from and written to the cache included.
func bedrockUsageOf(u *bedrockUsage) Usage {
	if u == nil {
		return Usage{}
	}
	return Usage{
		PromptTokens:        u.InputTokens + u.CacheReadInputTokens + u.CacheWriteInputTokens,
		CompletionTokens:    u.OutputTokens,
		CachedTokens:        u.CacheReadInputTokens,
		CacheCreationTokens: u.CacheWriteInputTokens,
		Known:               true,
	}
}

// bedrockError maps a Bedrock error response
// (https://docs.aws.amazon.com/bedrock/latest/userguide/troubleshooting-api-error-codes.html)
// to an OpenAI error with the same status.
func bedrockError(status int, body []byte) *APIError {
	var eb bedrockErrorBody
	msg := ""
	if json.Unmarshal(body, &eb) == nil {
		msg = eb.Message
		if msg == "" {
			msg = eb.MessageUpper
		}
	}
	if msg == "" {
		// Not Bedrock's shape: a proxy or load balancer answered, and its body may be a
		// whole HTML page, so only the status is told.
		msg = fmt.Sprintf("Amazon Bedrock returned HTTP %d", status)
		if text := http.StatusText(status); text != "" {
			msg += " (" + text + ")"
		}
	}
	return bedrockAPIError(status, bedrockErrorType(eb.Type, eb.Code), msg)
}

// bedrockErrorType strips the namespace AWS sometimes adds to an exception name
// ("com.amazon.coral.service#UnrecognizedClientException", "ValidationException:http://...").
func bedrockErrorType(typ, code string) string {
	if typ == "" {
		typ = code
	}
	if i := strings.LastIndexByte(typ, '#'); i >= 0 {
		typ = typ[i+1:]
	}
	typ, _, _ = strings.Cut(typ, ":")
	return typ
}

// bedrockAPIError builds the OpenAI error for a Bedrock error. The OpenAI type follows the
// status; the code is the exception name when known, or context_length_exceeded when the
// prompt does not fit, which is what context-window fallbacks key on. Credential
// failures get tollgate's own message: the client authenticated to tollgate, it is the
// deployment's AWS credentials Bedrock refused, and AWS's text names the account.
func bedrockAPIError(status int, exception, msg string) *APIError {
	e := StatusError(status, msg)
	e.Code = exception
	switch {
	case status == 401 || status == 403:
		e.Message = fmt.Sprintf("Amazon Bedrock rejected the AWS credentials configured for this deployment (%s): check its aws_access_key_id, aws_secret_access_key, aws_session_token and region, and that they may invoke this model",
			bedrockOr(exception, fmt.Sprintf("HTTP %d", status)))
	case status == 400 && bedrockContextExceeded(msg):
		e.Code = "context_length_exceeded"
	}
	return e
}

func bedrockOr(s, fallback string) string {
	if s != "" {
		return s
	}
	return fallback
}

// bedrockContextExceeded recognises Bedrock's validation messages for a prompt longer
// than the model's context window: "Input is too long for requested model.", "Too many
// input tokens ...", and the Anthropic models' "prompt is too long: ..." and "input length
// and `max_tokens` exceed context limit". Only 400s are checked: a 429's "Too many
// tokens, please wait" is a rate limit.
func bedrockContextExceeded(msg string) bool {
	m := strings.ToLower(msg)
	for _, s := range []string{"input is too long", "too many input tokens", "too many tokens",
		"prompt is too long", "exceed context limit", "maximum context length", "context window"} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// bedrockExceptionStatus is the HTTP status Bedrock documents for an exception; a
// stream's exception frame carries the name only.
func bedrockExceptionStatus(exception string) int {
	switch exception {
	case "ValidationException":
		return 400
	case "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException":
		return 403
	case "ResourceNotFoundException":
		return 404
	case "ModelTimeoutException":
		return 408
	case "ModelStreamErrorException", "ModelErrorException":
		return 424
	case "ThrottlingException", "ModelNotReadyException", "ServiceQuotaExceededException":
		return 429
	case "ServiceUnavailableException":
		return 503
	}
	return 500 // InternalServerException and exceptions added later
}

// bedrockEmbedRequest builds the InvokeModel body for an OpenAI embeddings request. The
// model family decides the body: Titan embeds one text per request, Cohere a list.
// encoding_format is accepted either way: Bedrock answers floats, which every OpenAI
// client reads (the official SDKs ask for base64 by default and decode only strings).
func bedrockEmbedRequest(body []byte, model string) ([]byte, error) {
	var req struct {
		Input          json.RawMessage `json:"input"`
		EncodingFormat string          `json:"encoding_format"`
		Dimensions     *int            `json:"dimensions"`
		InputType      string          `json:"input_type"` // LiteLLM's extension for Cohere
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, invalidParam("", "The request body is not a valid embeddings request: %v", err)
	}
	if req.EncodingFormat != "" && req.EncodingFormat != "float" && req.EncodingFormat != "base64" {
		return nil, invalidParam("encoding_format", "Invalid value for 'encoding_format': %q (use float or base64)", req.EncodingFormat)
	}
	var inputs []string
	var one string
	switch {
	case isNull(req.Input):
		return nil, invalidParam("input", "'input' is required")
	case json.Unmarshal(req.Input, &one) == nil:
		inputs = []string{one}
	case json.Unmarshal(req.Input, &inputs) != nil:
		return nil, unsupportedParam("input", "must be a string or an array of strings: token arrays cannot be sent to Bedrock")
	}
	if len(inputs) == 0 {
		return nil, invalidParam("input", "'input' must not be empty")
	}
	var out any
	switch {
	case strings.Contains(model, "titan-embed"):
		if len(inputs) != 1 {
			return nil, unsupportedParam("input", "must be one string for Amazon Titan embedding models, which embed one text per request")
		}
		out = bedrockTitanEmbedRequest{InputText: inputs[0], Dimensions: req.Dimensions}
	case strings.Contains(model, "cohere.embed"):
		if req.Dimensions != nil {
			return nil, unsupportedParam("dimensions", "is not supported for Cohere Embed models on Bedrock")
		}
		inputType := req.InputType
		if inputType == "" {
			inputType = "search_document" // what documents stored for retrieval need, as in LiteLLM
		}
		out = bedrockCohereEmbedRequest{Texts: inputs, InputType: inputType}
	default:
		return nil, &APIError{Status: 400, Type: "invalid_request_error", Param: "model", Code: "unsupported_model",
			Message: fmt.Sprintf("bedrock embeddings support Amazon Titan (amazon.titan-embed-*) and Cohere Embed (cohere.embed-*) models, not %q", model)}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encode embeddings request: %w", err)
	}
	return b, nil
}

// bedrockEmbedResponse turns a Titan or Cohere embedding response into an OpenAI
// embedding list. The vectors are copied through as Bedrock wrote them. Only Titan
// reports its token count; a Cohere response's usage is unknown.
func bedrockEmbedResponse(body []byte) ([]byte, Usage, error) {
	bad := &APIError{Status: 502, Type: "api_error", Code: "bad_upstream_response",
		Message: "Amazon Bedrock returned a response that is not a Titan or Cohere embedding"}
	var raw struct {
		Embedding           json.RawMessage `json:"embedding"`
		InputTextTokenCount *int            `json:"inputTextTokenCount"`
		Embeddings          json.RawMessage `json:"embeddings"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, Usage{}, bad
	}
	var vectors []json.RawMessage
	var usage Usage
	switch {
	case !isNull(raw.Embedding):
		vectors = []json.RawMessage{raw.Embedding}
		if raw.InputTextTokenCount != nil {
			usage = Usage{PromptTokens: *raw.InputTextTokenCount, Known: true}
		}
	case !isNull(raw.Embeddings):
		if json.Unmarshal(raw.Embeddings, &vectors) != nil {
			var byType struct {
				Float []json.RawMessage `json:"float"`
			}
			if json.Unmarshal(raw.Embeddings, &byType) != nil || byType.Float == nil {
				return nil, Usage{}, bad
			}
			vectors = byType.Float
		}
	default:
		return nil, Usage{}, bad
	}
	list := bedrockEmbeddingList{Object: "list", Data: make([]bedrockEmbedding, len(vectors))}
	for i, v := range vectors {
		list.Data[i] = bedrockEmbedding{Object: "embedding", Index: i, Embedding: v}
	}
	list.Usage.PromptTokens, list.Usage.TotalTokens = usage.PromptTokens, usage.PromptTokens
	out, err := json.Marshal(list)
	if err != nil {
		return nil, Usage{}, bad // a vector that is not JSON
	}
	return out, usage, nil
}

// Stream starts translating one ConverseStream response. The output ends with the usage
// chunk (empty choices) before [DONE] when the client set stream_options.include_usage,
// as an OpenAI stream does; see bedrockStream.
func (b bedrockTranslator) Stream(_ Endpoint, o StreamOptions) Stream {
	return newBedrockStream(b, o.IncludeUsage)
}

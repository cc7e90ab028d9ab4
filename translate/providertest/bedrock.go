package providertest

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Bedrock is a fake Amazon Bedrock Runtime API: Converse
// (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html),
// ConverseStream, answered as application/vnd.amazon.eventstream frames
// (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html),
// and InvokeModel for the Titan and Cohere embedding models. Like the real service it
// authenticates every request by recomputing its AWS Signature Version 4 with the AWS
// SDK's signer, and rejects bad requests with Bedrock's exceptions, statuses and
// messages (https://docs.aws.amazon.com/bedrock/latest/userguide/troubleshooting-api-error-codes.html).
//
// Answers are deterministic: a reply repeats the last user text ("You said: ..."); when
// tools are declared and the text names one (or tool_choice forces one), the model calls
// it with {"prompt": <text>}; after a tool result it answers "Tool said: <result>".
type Bedrock struct {
	// Region is the region requests must be signed for.
	Region string
	// AccessKeyID and SecretAccessKey are the one access key the fake knows.
	AccessKeyID     string
	SecretAccessKey string
	// SessionToken, when set, must arrive as X-Amz-Security-Token, as temporary
	// credentials require.
	SessionToken string
	// APIKey, when set, is a Bedrock API key also accepted as "Authorization: Bearer".
	APIKey string
	// MaxInputTokens, when positive, is the context window: longer prompts fail with
	// ValidationException "Input is too long for requested model.".
	MaxInputTokens int
	// Now is the fake's clock for the signature's age check; nil means time.Now.
	Now func() time.Time
	// Usage, when set, is the TokenUsage object every Converse answer reports, whole or
	// in the stream's metadata event, in place of the word counts: for
	// cacheReadInputTokens and cacheWriteInputTokens, which the word counts never report.
	Usage map[string]int

	// recorder keeps the requests. FailNext failures fall on requests that pass
	// authentication, each with the exception Bedrock documents for its status.
	recorder

	// claude answers InvokeModel for Anthropic's models, as the Anthropic fake does.
	claude Anthropic

	mu             sync.Mutex
	streamFailures []string // exception types to end the next streams with; "" cuts
}

// bedrockMaxSkew is how far a request's X-Amz-Date may be from the server's clock, as AWS
// allows.
const bedrockMaxSkew = 5 * time.Minute

// StartBedrock serves a fake Bedrock Runtime API on a loopback port until the test ends.
// Its URL is the api_base of a bedrock/ deployment.
func StartBedrock(t testing.TB, region, accessKeyID, secretAccessKey string) (*Bedrock, *httptest.Server) {
	t.Helper()
	f := &Bedrock{Region: region, AccessKeyID: accessKeyID, SecretAccessKey: secretAccessKey}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

// FailStreamNext makes the next ConverseStream response end, after its first text delta,
// with an exception frame of the given type (ThrottlingException,
// ModelStreamErrorException, ...); "" instead cuts the connection there.
func (f *Bedrock) FailStreamNext(exceptionType string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.streamFailures = append(f.streamFailures, exceptionType)
}

// bedrockPath matches the operations the fake serves; the model ID is one escaped segment.
var bedrockPath = regexp.MustCompile(`^/model/([^/]+)/(converse|converse-stream|invoke|invoke-with-response-stream|count-tokens)$`)

func (f *Bedrock) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeBedrockError(w, 400, "ValidationException", "could not read the request body")
		return
	}
	f.record(r, body)

	if status, exception, msg := f.authenticate(r, body); status != 0 {
		writeBedrockError(w, status, exception, msg)
		return
	}
	rawPath, _, _ := strings.Cut(r.RequestURI, "?")
	m := bedrockPath.FindStringSubmatch(rawPath)
	if m == nil || r.Method != http.MethodPost {
		writeBedrockError(w, 404, "UnknownOperationException", "")
		return
	}
	model, err := url.PathUnescape(m[1])
	if err != nil || model == "" {
		writeBedrockError(w, 400, "ValidationException", "The provided model identifier is invalid.")
		return
	}
	fail := f.nextFailure()
	if fail != 0 {
		exception, msg := bedrockFailure(fail)
		writeBedrockError(w, fail, exception, msg)
		return
	}
	switch {
	case m[2] == "count-tokens" && strings.Contains(model, "anthropic."):
		f.countClaude(w, model, body)
	case m[2] == "count-tokens":
		writeBedrockError(w, 400, "ValidationException", "The provided model doesn't support counting tokens.")
	case strings.Contains(model, "anthropic.") && (m[2] == "invoke" || m[2] == "invoke-with-response-stream"):
		f.invokeClaude(w, body, m[2] == "invoke-with-response-stream")
	case m[2] == "invoke":
		f.invoke(w, model, body)
	case m[2] == "invoke-with-response-stream":
		writeBedrockError(w, 400, "ValidationException", "The provided model doesn't support streaming.")
	default:
		f.converse(w, body, m[2] == "converse-stream")
	}
}

// bedrockFailure is the exception and message Bedrock sends with a status.
func bedrockFailure(status int) (exception, msg string) {
	switch status {
	case 400:
		return "ValidationException", "The fake was told to fail this request."
	case 403:
		return "AccessDeniedException", "You don't have access to the model with the specified model ID."
	case 404:
		return "ResourceNotFoundException", "Model not found."
	case 408:
		return "ModelTimeoutException", "Model has timed out in processing the request. Try your request again."
	case 424:
		return "ModelErrorException", "The model returned an error. Try your request again."
	case 429:
		return "ThrottlingException", "Too many requests, please wait before trying again."
	case 503:
		return "ServiceUnavailableException", "Bedrock is unable to process your request."
	}
	return "InternalServerException", "The server encountered an internal error while processing the request."
}

// authenticate checks the request's credentials the way AWS's front door does and
// returns the rejection, or status 0. The signature is recomputed with the AWS SDK's
// signer over the request as received: its method, path and query, Host, the headers it
// says it signed, and its body.
func (f *Bedrock) authenticate(r *http.Request, body []byte) (status int, exception, msg string) {
	auth := r.Header.Get("Authorization")
	if f.APIKey != "" {
		if key, ok := strings.CutPrefix(auth, "Bearer "); ok {
			if subtle.ConstantTimeCompare([]byte(key), []byte(f.APIKey)) == 1 {
				return 0, "", ""
			}
			return 403, "AccessDeniedException", "Invalid API Key format: Must start with pre-defined prefix"
		}
	}
	if auth == "" {
		return 403, "MissingAuthenticationTokenException", "Missing Authentication Token"
	}
	const algorithm = "AWS4-HMAC-SHA256 "
	params, ok := strings.CutPrefix(auth, algorithm)
	if !ok {
		return 403, "IncompleteSignatureException", "Invalid key=value pair (missing equal-sign) in Authorization header."
	}
	fields := map[string]string{}
	for _, p := range strings.Split(params, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		fields[k] = v
	}
	credential, signedHeaders, signature := fields["Credential"], fields["SignedHeaders"], fields["Signature"]
	if credential == "" || signedHeaders == "" || signature == "" {
		return 403, "IncompleteSignatureException", "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters."
	}
	scope := strings.Split(credential, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" {
		return 403, "IncompleteSignatureException", "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '" + credential + "'"
	}
	if subtle.ConstantTimeCompare([]byte(scope[0]), []byte(f.AccessKeyID)) != 1 {
		return 403, "UnrecognizedClientException", "The security token included in the request is invalid."
	}
	if token := r.Header.Get("X-Amz-Security-Token"); subtle.ConstantTimeCompare([]byte(token), []byte(f.SessionToken)) != 1 {
		return 403, "UnrecognizedClientException", "The security token included in the request is invalid."
	}
	if scope[2] != f.Region {
		return 403, "InvalidSignatureException", "Credential should be scoped to a valid region. "
	}
	if scope[3] != "bedrock" {
		return 403, "InvalidSignatureException", "Credential should be scoped to correct service: 'bedrock'. "
	}
	date := r.Header.Get("X-Amz-Date")
	signedAt, err := time.Parse("20060102T150405Z", date)
	if err != nil || scope[1] != date[:8] {
		return 403, "IncompleteSignatureException", "Date must be in ISO-8601 'basic format' and match the credential scope."
	}
	now := time.Now()
	if f.Now != nil {
		now = f.Now()
	}
	if d := now.Sub(signedAt); d > bedrockMaxSkew || d < -bedrockMaxSkew {
		return 403, "InvalidSignatureException", fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - 5 min.)",
			date, now.Add(-bedrockMaxSkew).UTC().Format("20060102T150405Z"), now.UTC().Format("20060102T150405Z"))
	}
	signed := strings.Split(signedHeaders, ";")
	if !bedrockContains(signed, "host") || !bedrockContains(signed, "x-amz-date") {
		return 403, "InvalidSignatureException", "The request signature must sign the host and x-amz-date headers."
	}
	if !f.signatureMatches(r, body, signed, signedAt, signature) {
		return 403, "InvalidSignatureException", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	}
	return 0, "", ""
}

func (f *Bedrock) signatureMatches(r *http.Request, body []byte, signed []string, signedAt time.Time, signature string) bool {
	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	u, err := url.ParseRequestURI(r.RequestURI)
	if err != nil {
		return false
	}
	u.Scheme, u.Host = "http", r.Host
	req := &http.Request{Method: r.Method, URL: u, Host: r.Host, Header: http.Header{}}
	for _, h := range signed {
		switch h {
		case "host":
		case "content-length":
			req.ContentLength = r.ContentLength
		default:
			req.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	// The session token, when signed, is among the copied headers; the key has none of
	// its own so the signer adds nothing.
	creds := aws.Credentials{AccessKeyID: f.AccessKeyID, SecretAccessKey: f.SecretAccessKey}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, payloadHash, "bedrock", f.Region, signedAt); err != nil {
		return false
	}
	_, want, _ := strings.Cut(req.Header.Get("Authorization"), "Signature=")
	return subtle.ConstantTimeCompare([]byte(want), []byte(signature)) == 1
}

func bedrockContains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// bedrockRequest is the Converse request body, as the fake validates it.
type bedrockRequest struct {
	Messages        []bedrockMessage `json:"messages"`
	System          []bedrockBlock   `json:"system"`
	InferenceConfig *struct {
		MaxTokens     *int     `json:"maxTokens"`
		Temperature   *float64 `json:"temperature"`
		TopP          *float64 `json:"topP"`
		StopSequences []string `json:"stopSequences"`
	} `json:"inferenceConfig"`
	ToolConfig *struct {
		Tools []struct {
			ToolSpec *struct {
				Name        string `json:"name"`
				Description string `json:"description"`
				InputSchema struct {
					JSON json.RawMessage `json:"json"`
				} `json:"inputSchema"`
			} `json:"toolSpec"`
			CachePoint json.RawMessage `json:"cachePoint"`
		} `json:"tools"`
		ToolChoice map[string]json.RawMessage `json:"toolChoice"`
	} `json:"toolConfig"`
	AdditionalModelRequestFields json.RawMessage `json:"additionalModelRequestFields"`
}

type bedrockMessage struct {
	Role    string         `json:"role"`
	Content []bedrockBlock `json:"content"`
}

// bedrockBlock is any content block; it keeps every member so a block with none or
// several can be refused, as the union requires.
type bedrockBlock map[string]json.RawMessage

var bedrockToolName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// validate checks what Converse checks, with its messages.
func (req *bedrockRequest) validate() string {
	if len(req.Messages) == 0 {
		return "The messages field is required and must contain at least one message."
	}
	for i, b := range req.System {
		if len(b) != 1 || (b["text"] == nil && b["cachePoint"] == nil && b["guardContent"] == nil) {
			return fmt.Sprintf("The system content block at system.%d must set exactly one of text, cachePoint or guardContent.", i)
		}
		if msg := bedrockBlankText(b, fmt.Sprintf("system.%d", i)); msg != "" {
			return msg
		}
	}
	tools := map[string]bool{}
	if tc := req.ToolConfig; tc != nil {
		if len(tc.Tools) == 0 {
			return "The toolConfig.tools field must contain at least one tool."
		}
		for i, t := range tc.Tools {
			if t.ToolSpec == nil {
				if t.CachePoint == nil {
					return fmt.Sprintf("The tool at toolConfig.tools.%d must set toolSpec or cachePoint.", i)
				}
				continue
			}
			if !bedrockToolName.MatchString(t.ToolSpec.Name) {
				return fmt.Sprintf("Value at 'toolConfig.tools.%d.member.toolSpec.name' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_-]+", i)
			}
			var schema map[string]any
			if json.Unmarshal(t.ToolSpec.InputSchema.JSON, &schema) != nil {
				return fmt.Sprintf("The value at toolConfig.tools.%d.toolSpec.inputSchema.json.type must be object.", i)
			}
			tools[t.ToolSpec.Name] = true
		}
		if len(tc.ToolChoice) > 0 {
			if len(tc.ToolChoice) != 1 {
				return "The toolChoice field must set exactly one of auto, any or tool."
			}
			if raw, ok := tc.ToolChoice["tool"]; ok {
				var named struct {
					Name string `json:"name"`
				}
				if json.Unmarshal(raw, &named) != nil || !tools[named.Name] {
					return "The tool named in toolChoice.tool.name is not in toolConfig.tools."
				}
			} else if tc.ToolChoice["auto"] == nil && tc.ToolChoice["any"] == nil {
				return "The toolChoice field must set exactly one of auto, any or tool."
			}
		}
	}
	if ic := req.InferenceConfig; ic != nil {
		if ic.MaxTokens != nil && *ic.MaxTokens < 1 {
			return "Value at 'inferenceConfig.maxTokens' failed to satisfy constraint: Member must have value greater than or equal to 1"
		}
		if ic.Temperature != nil && (*ic.Temperature < 0 || *ic.Temperature > 1) {
			return "Value at 'inferenceConfig.temperature' failed to satisfy constraint: Member must have value less than or equal to 1"
		}
		if ic.TopP != nil && (*ic.TopP < 0 || *ic.TopP > 1) {
			return "Value at 'inferenceConfig.topP' failed to satisfy constraint: Member must have value less than or equal to 1"
		}
	}
	var lastToolUses []string
	for i, m := range req.Messages {
		switch {
		case m.Role != "user" && m.Role != "assistant":
			return fmt.Sprintf("Value '%s' at 'messages.%d.member.role' failed to satisfy constraint: Member must satisfy enum value set: [user, assistant]", m.Role, i)
		case i == 0 && m.Role != "user":
			return "A conversation must start with a user message. Try again with a conversation that starts with a user message."
		case i > 0 && m.Role == req.Messages[i-1].Role:
			return "A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again."
		case len(m.Content) == 0:
			return fmt.Sprintf("The content field in the Message object at messages.%d is empty. Add a ContentBlock object to the content field and try again.", i)
		}
		var toolUses, toolResults []string
		for j, b := range m.Content {
			at := fmt.Sprintf("messages.%d.content.%d", i, j)
			if msg := bedrockValidateBlock(b, at, m.Role); msg != "" {
				return msg
			}
			if raw, ok := b["toolUse"]; ok {
				toolUses = append(toolUses, bedrockToolUseID(raw))
			}
			if raw, ok := b["toolResult"]; ok {
				toolResults = append(toolResults, bedrockToolUseID(raw))
			}
		}
		if (len(toolUses) > 0 || len(toolResults) > 0) && req.ToolConfig == nil {
			return "The toolConfig field must be defined when using toolUse and toolResult content blocks."
		}
		if m.Role == "user" && len(toolResults) > 0 {
			if len(toolResults) > len(lastToolUses) {
				return fmt.Sprintf("The number of toolResult blocks at messages.%d.content exceeds the number of toolUse blocks of previous turn.", i)
			}
			for _, id := range toolResults {
				if !bedrockContains(lastToolUses, id) {
					return fmt.Sprintf("Expected toolResult blocks at messages.%d.content for the following Ids: %s", i, strings.Join(lastToolUses, ", "))
				}
			}
		}
		lastToolUses = toolUses
	}
	return ""
}

// validateBlock checks one message content block: a union with exactly one member, whose
// member is well formed.
func bedrockValidateBlock(b bedrockBlock, at, role string) string {
	if len(b) != 1 {
		return fmt.Sprintf("The ContentBlock object at %s must set exactly one of the members.", at)
	}
	if msg := bedrockBlankText(b, at); msg != "" {
		return msg
	}
	if raw, ok := b["image"]; ok {
		if role != "user" {
			return fmt.Sprintf("The ContentBlock object at %s contains an image, which only user messages may carry.", at)
		}
		var img struct {
			Format string `json:"format"`
			Source struct {
				Bytes string `json:"bytes"`
			} `json:"source"`
		}
		if json.Unmarshal(raw, &img) != nil || !bedrockContains([]string{"png", "jpeg", "gif", "webp"}, img.Format) {
			return fmt.Sprintf("Value at '%s.member.image.format' failed to satisfy constraint: Member must satisfy enum value set: [png, jpeg, gif, webp]", at)
		}
		if _, err := base64.StdEncoding.DecodeString(img.Source.Bytes); err != nil || img.Source.Bytes == "" {
			return "Unable to parse the image bytes at " + at + ".image.source.bytes: not valid base64."
		}
	}
	if raw, ok := b["document"]; ok {
		var doc struct {
			Format string `json:"format"`
			Name   string `json:"name"`
			Source struct {
				Bytes string `json:"bytes"`
			} `json:"source"`
		}
		if json.Unmarshal(raw, &doc) != nil || doc.Name == "" || doc.Format == "" {
			return fmt.Sprintf("The document at %s needs a format and a name.", at)
		}
		if _, err := base64.StdEncoding.DecodeString(doc.Source.Bytes); err != nil {
			return "Unable to parse the document bytes at " + at + ".document.source.bytes: not valid base64."
		}
	}
	if raw, ok := b["toolUse"]; ok {
		var tu struct {
			ToolUseID string          `json:"toolUseId"`
			Name      string          `json:"name"`
			Input     json.RawMessage `json:"input"`
		}
		if json.Unmarshal(raw, &tu) != nil || tu.ToolUseID == "" || tu.Name == "" || len(tu.Input) == 0 || tu.Input[0] != '{' {
			return fmt.Sprintf("The toolUse at %s needs a toolUseId, a name and an input object.", at)
		}
	}
	if raw, ok := b["toolResult"]; ok {
		var tr struct {
			ToolUseID string         `json:"toolUseId"`
			Content   []bedrockBlock `json:"content"`
		}
		if json.Unmarshal(raw, &tr) != nil || tr.ToolUseID == "" || tr.Content == nil {
			return fmt.Sprintf("The toolResult at %s needs a toolUseId and a content list.", at)
		}
		for k, c := range tr.Content {
			if len(c) != 1 {
				return fmt.Sprintf("The ToolResultContentBlock at %s.toolResult.content.%d must set exactly one of the members.", at, k)
			}
		}
	}
	return ""
}

// blankText is Converse's refusal of a text block with no text.
func bedrockBlankText(b bedrockBlock, at string) string {
	raw, ok := b["text"]
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) != nil || strings.TrimSpace(s) == "" {
		return fmt.Sprintf("The text field in the ContentBlock object at %s is blank. Add text to the text field, and try again.", at)
	}
	return ""
}

func bedrockToolUseID(raw json.RawMessage) string {
	var v struct {
		ToolUseID string `json:"toolUseId"`
	}
	json.Unmarshal(raw, &v)
	return v.ToolUseID
}

func bedrockBlockText(b bedrockBlock) string {
	var s string
	json.Unmarshal(b["text"], &s)
	return s
}

// bedrockReply is what the fake model answers.
type bedrockReply struct {
	text       string
	toolName   string // a tool call, when set
	toolInput  string
	stopReason string
	usage      map[string]int
}

// answer decides the deterministic reply to a valid request.
func (req *bedrockRequest) answer() bedrockReply {
	last := req.Messages[len(req.Messages)-1]
	var prompt, toolOutput []string
	for _, b := range last.Content {
		switch {
		case b["text"] != nil:
			prompt = append(prompt, bedrockBlockText(b))
		case b["toolResult"] != nil:
			var tr struct {
				Content []bedrockBlock `json:"content"`
			}
			json.Unmarshal(b["toolResult"], &tr)
			for _, c := range tr.Content {
				toolOutput = append(toolOutput, bedrockBlockText(c))
			}
		}
	}
	text := strings.Join(prompt, " ")
	r := bedrockReply{stopReason: "end_turn"}
	switch tool, forced := req.toolToCall(text); {
	case len(toolOutput) > 0:
		r.text = "Tool said: " + strings.Join(toolOutput, " ")
	case tool != "":
		// A model forced to call a tool calls it straight away; one that chose to says so.
		input, _ := json.Marshal(map[string]string{"prompt": text})
		r.toolName, r.toolInput, r.stopReason = tool, string(input), "tool_use"
		if !forced {
			r.text = "Calling " + tool + "."
		}
	default:
		r.text = "You said: " + text
	}
	if ic := req.InferenceConfig; ic != nil && r.toolName == "" {
		for _, stop := range ic.StopSequences {
			if i := strings.Index(r.text, stop); stop != "" && i >= 0 {
				r.text, r.stopReason = r.text[:i], "stop_sequence"
			}
		}
		if words := strings.SplitAfter(r.text, " "); ic.MaxTokens != nil && len(words) > *ic.MaxTokens {
			r.text, r.stopReason = strings.Join(words[:*ic.MaxTokens], ""), "max_tokens"
		}
	}
	input := req.inputTokens()
	output := bedrockWords(r.text) + bedrockWords(r.toolInput)
	r.usage = map[string]int{"inputTokens": input, "outputTokens": output, "totalTokens": input + output}
	return r
}

// toolToCall is the tool the fake model calls: the one tool_choice forces, the first one
// for "any", or one whose name the prompt mentions. forced says tool_choice decided.
func (req *bedrockRequest) toolToCall(prompt string) (name string, forced bool) {
	tc := req.ToolConfig
	if tc == nil {
		return "", false
	}
	var names []string
	for _, t := range tc.Tools {
		if t.ToolSpec != nil {
			names = append(names, t.ToolSpec.Name)
		}
	}
	if raw, ok := tc.ToolChoice["tool"]; ok {
		var named struct {
			Name string `json:"name"`
		}
		json.Unmarshal(raw, &named)
		return named.Name, true
	}
	if tc.ToolChoice["any"] != nil && len(names) > 0 {
		return names[0], true
	}
	for _, n := range names {
		if strings.Contains(prompt, n) {
			return n, false
		}
	}
	return "", false
}

// inputTokens approximates the prompt's size: one token per word of text, plus four per
// message for the turn markers.
func (req *bedrockRequest) inputTokens() int {
	n := 0
	for _, b := range req.System {
		n += bedrockWords(bedrockBlockText(b))
	}
	for _, m := range req.Messages {
		n += 4
		for _, b := range m.Content {
			n += bedrockWords(bedrockBlockText(b))
		}
	}
	return n
}

func (f *Bedrock) converse(w http.ResponseWriter, body []byte, stream bool) {
	var req bedrockRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeBedrockError(w, 400, "ValidationException", "Malformed input request, please reformat your input and try again.")
		return
	}
	if msg := req.validate(); msg != "" {
		writeBedrockError(w, 400, "ValidationException", msg)
		return
	}
	if f.MaxInputTokens > 0 && req.inputTokens() > f.MaxInputTokens {
		writeBedrockError(w, 400, "ValidationException", "Input is too long for requested model.")
		return
	}
	reply := req.answer()
	if f.Usage != nil {
		reply.usage = f.Usage
	}
	if stream {
		f.converseStream(w, reply)
		return
	}
	content := []any{}
	if reply.text != "" {
		content = append(content, map[string]any{"text": reply.text})
	}
	if reply.toolName != "" {
		content = append(content, map[string]any{"toolUse": map[string]any{
			"toolUseId": "tooluse_fake0", "name": reply.toolName, "input": json.RawMessage(reply.toolInput)}})
	}
	w.Header().Set("X-Amzn-Requestid", "fake-request-id")
	writeBedrockJSON(w, 200, map[string]any{
		"output":     map[string]any{"message": map[string]any{"role": "assistant", "content": content}},
		"stopReason": reply.stopReason,
		"usage":      reply.usage,
		"metrics":    map[string]any{"latencyMs": 42},
	})
}

// converseStream answers as ConverseStream does: messageStart, the text block's deltas
// word by word, a tool block with its input in two deltas, messageStop and metadata, one
// eventstream frame each, flushed as written. Like Bedrock, every event pads itself with
// a "p" member so frame sizes do not reveal the text.
func (f *Bedrock) converseStream(w http.ResponseWriter, reply bedrockReply) {
	f.mu.Lock()
	failure, fail := "", false
	if len(f.streamFailures) > 0 {
		failure, f.streamFailures, fail = f.streamFailures[0], f.streamFailures[1:], true
	}
	f.mu.Unlock()

	w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
	w.Header().Set("X-Amzn-Requestid", "fake-request-id")
	w.WriteHeader(200)
	flusher, _ := w.(http.Flusher)
	enc := eventstream.NewEncoder()
	pad := 0
	send := func(event string, payload map[string]any) {
		pad++
		payload["p"] = strings.Repeat("abcdefghijklmnopqrstuvwxyz", 2)[:pad%26+1]
		b, _ := json.Marshal(payload)
		enc.Encode(w, eventstream.Message{Headers: eventstream.Headers{
			{Name: ":event-type", Value: eventstream.StringValue(event)},
			{Name: ":content-type", Value: eventstream.StringValue("application/json")},
			{Name: ":message-type", Value: eventstream.StringValue("event")},
		}, Payload: b})
		if flusher != nil {
			flusher.Flush()
		}
	}
	send("messageStart", map[string]any{"role": "assistant"})
	if fail && reply.text == "" {
		f.endStream(w, enc, failure)
		return
	}
	block := 0
	if reply.text != "" {
		for i, word := range strings.SplitAfter(reply.text, " ") {
			send("contentBlockDelta", map[string]any{"contentBlockIndex": 0, "delta": map[string]any{"text": word}})
			if i == 0 && fail {
				f.endStream(w, enc, failure)
				return
			}
		}
		send("contentBlockStop", map[string]any{"contentBlockIndex": 0})
		block++
	}
	if reply.toolName != "" {
		send("contentBlockStart", map[string]any{"contentBlockIndex": block, "start": map[string]any{
			"toolUse": map[string]any{"toolUseId": "tooluse_fake0", "name": reply.toolName}}})
		half := len(reply.toolInput) / 2
		for _, part := range []string{reply.toolInput[:half], reply.toolInput[half:]} {
			send("contentBlockDelta", map[string]any{"contentBlockIndex": block, "delta": map[string]any{"toolUse": map[string]any{"input": part}}})
		}
		send("contentBlockStop", map[string]any{"contentBlockIndex": block})
	}
	send("messageStop", map[string]any{"stopReason": reply.stopReason})
	send("metadata", map[string]any{"usage": reply.usage, "metrics": map[string]any{"latencyMs": 42}})
}

// endStream ends a stream early: with an exception frame, or ("") by dropping the
// connection mid-stream as a failing upstream does.
func (f *Bedrock) endStream(w http.ResponseWriter, enc *eventstream.Encoder, exception string) {
	if exception != "" {
		_, msg := bedrockFailure(map[string]int{"ValidationException": 400, "ThrottlingException": 429,
			"ServiceUnavailableException": 503, "ModelStreamErrorException": 424}[exception])
		payload, _ := json.Marshal(map[string]string{"message": msg})
		enc.Encode(w, eventstream.Message{Headers: eventstream.Headers{
			{Name: ":exception-type", Value: eventstream.StringValue(exception)},
			{Name: ":content-type", Value: eventstream.StringValue("application/json")},
			{Name: ":message-type", Value: eventstream.StringValue("exception")},
		}, Payload: payload})
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		return // HTTP/2: ending the handler ends the stream, which is a cut too
	}
	if conn, buf, err := hj.Hijack(); err == nil {
		buf.Flush()
		conn.Close()
	}
}

// invoke serves InvokeModel for the embedding models.
func (f *Bedrock) invoke(w http.ResponseWriter, model string, body []byte) {
	switch {
	case strings.Contains(model, "titan-embed"):
		f.titanEmbed(w, model, body)
	case strings.Contains(model, "cohere.embed"):
		f.cohereEmbed(w, body)
	default:
		writeBedrockError(w, 400, "ValidationException", "The provided model identifier is invalid.")
	}
}

// titanEmbed follows
// https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html.
func (f *Bedrock) titanEmbed(w http.ResponseWriter, model string, body []byte) {
	var req map[string]json.RawMessage
	if json.Unmarshal(body, &req) != nil {
		writeBedrockError(w, 400, "ValidationException", "Malformed input request, please reformat your input and try again.")
		return
	}
	v2 := strings.Contains(model, "text-v2")
	for k := range req {
		if k != "inputText" && !(v2 && (k == "dimensions" || k == "normalize" || k == "embeddingTypes")) {
			writeBedrockError(w, 400, "ValidationException", "Malformed input request: extraneous key ["+k+"] is not permitted, please reformat your input and try again.")
			return
		}
	}
	var text string
	if json.Unmarshal(req["inputText"], &text) != nil || text == "" {
		writeBedrockError(w, 400, "ValidationException", "Malformed input request: #: required key [inputText] not found, please reformat your input and try again.")
		return
	}
	dims := 1536
	if v2 {
		dims = 1024
		if raw, ok := req["dimensions"]; ok {
			if json.Unmarshal(raw, &dims) != nil || (dims != 256 && dims != 512 && dims != 1024) {
				writeBedrockError(w, 400, "ValidationException", "Malformed input request: #/dimensions: 300 is not a valid enum value, please reformat your input and try again.")
				return
			}
		}
	}
	writeBedrockJSON(w, 200, map[string]any{"embedding": bedrockVector(text, dims), "inputTextTokenCount": bedrockWords(text)})
}

// cohereEmbed follows
// https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-embed-v3.html.
func (f *Bedrock) cohereEmbed(w http.ResponseWriter, body []byte) {
	var req struct {
		Texts     []string `json:"texts"`
		InputType string   `json:"input_type"`
	}
	if json.Unmarshal(body, &req) != nil {
		writeBedrockError(w, 400, "ValidationException", "Malformed input request, please reformat your input and try again.")
		return
	}
	if len(req.Texts) == 0 || len(req.Texts) > 96 {
		writeBedrockError(w, 400, "ValidationException", "Malformed input request: #/texts: expected between 1 and 96 texts, please reformat your input and try again.")
		return
	}
	if !bedrockContains([]string{"search_document", "search_query", "classification", "clustering"}, req.InputType) {
		writeBedrockError(w, 400, "ValidationException", "Malformed input request: #/input_type: "+req.InputType+" is not a valid enum value, please reformat your input and try again.")
		return
	}
	vectors := make([][]float32, len(req.Texts))
	for i, t := range req.Texts {
		vectors[i] = bedrockVector(t, 1024)
	}
	writeBedrockJSON(w, 200, map[string]any{"id": "fake-embed-id", "embeddings": vectors, "response_type": "embeddings_floats", "texts": req.Texts})
}

// bedrockVector is a deterministic unit vector derived from the text.
func bedrockVector(text string, dims int) []float32 {
	vec := make([]float32, dims)
	var norm float64
	seed := sha256.Sum256([]byte(text))
	for i := range vec {
		if i%32 == 0 && i > 0 {
			seed = sha256.Sum256(seed[:])
		}
		vec[i] = float32(int8(seed[i%32])) / 128
		norm += float64(vec[i]) * float64(vec[i])
	}
	for i := range vec {
		vec[i] /= float32(math.Sqrt(norm) + 1e-9)
	}
	return vec
}

func writeBedrockJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// writeBedrockError answers as AWS's REST-JSON services do: the exception name in
// x-amzn-ErrorType, the message in the body.
func writeBedrockError(w http.ResponseWriter, status int, exception, msg string) {
	w.Header().Set("X-Amzn-Errortype", exception+":http://internal.amazon.com/coral/com.amazon.bedrock/")
	w.Header().Set("X-Amzn-Requestid", "fake-request-id")
	if msg == "" {
		writeBedrockJSON(w, status, map[string]any{"Output": map[string]any{"__type": "com.amazon.coral.service#" + exception}, "Version": "1.0"})
		return
	}
	writeBedrockJSON(w, status, map[string]string{"message": msg})
}

// bedrockWords approximates a tokenizer: one token per word.
func bedrockWords(s string) int { return len(strings.Fields(s)) }

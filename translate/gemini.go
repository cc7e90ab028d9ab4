package translate

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"
)

// The gemini translator serves OpenAI clients from Google's Gemini models, through the
// Gemini API of Google AI Studio (gemini/, authenticated with an API key in
// x-goog-api-key) and through Vertex AI (vertex_ai/, authenticated with an OAuth2 access
// token of the deployment's service account). Both take the same generateContent body
// (https://ai.google.dev/api/generate-content); they differ in host, path, credentials and
// embedding API. Decisions that are not forced by the formats:
//
//   - The API key travels in the x-goog-api-key header, never in the URL's ?key=, so it
//     cannot end up in an access log.
//   - Consecutive turns of one role are merged and tool results become user turns of
//     functionResponse parts, so turns alternate as Gemini's function calling expects.
//     A tool result is matched to its call's function name through tool_call_id.
//   - Gemini function calls need no ID back, so tollgate makes one up (call_<random>).
//     When Gemini signs a call (thoughtSignature, which Gemini 3 requires on the calls of
//     later turns), the signature travels in the ID after "__thought__", as LiteLLM
//     carries it, because every OpenAI client sends tool call IDs back unchanged. A
//     Gemini 3 request replaying calls without a signature (a conversation begun on
//     another model) gets Google's documented placeholder signature.
//   - JSON Schemas (tool parameters, response_format) are reduced to the OpenAPI subset
//     Gemini's Schema accepts (https://ai.google.dev/api/caching#Schema); see
//     geminiSchemaConverter.
//   - Image and file URLs become fileData parts, which Gemini fetches itself; their media
//     type comes from the file extension, and a URL without a known one is refused:
//     translation never fetches anything.
//   - OpenAI parameters Gemini cannot honour, or that tollgate does not translate back
//     (logprobs), are refused with a 400 naming the parameter, never dropped silently.
//     Settings of OpenAI's own platform (store, metadata, service_tier, user, ...) are
//     ignored. Unknown parameters are refused, as OpenAI refuses them.
//   - reasoning_effort becomes a thinking budget (thinkingLevel for Gemini 3 models), and
//     LiteLLM's "thinking", "top_k" and "safety_settings" extensions are honoured.
//   - vertex_ai/ serves Google's own models here; Anthropic models on Vertex AI (claude-*)
//     use Anthropic's format at a different publisher path, and LookupModel gives their
//     deployments vertexAnthropicSpec instead (vertex_anthropic.go). This translator
//     still refuses them, should one reach it.

const (
	// geminiDefaultBase is the Gemini API's host.
	geminiDefaultBase = "https://generativelanguage.googleapis.com"
	// vertexGlobalBase is Vertex AI's global endpoint, also used by express mode.
	vertexGlobalBase = "https://aiplatform.googleapis.com"
	// vertexDefaultLocation is LiteLLM's default vertex_location.
	vertexDefaultLocation = "us-central1"
	// geminiThoughtSeparator joins a tool call ID and its thought signature; LiteLLM uses
	// the same separator, so conversations recorded through LiteLLM replay unchanged.
	geminiThoughtSeparator = "__thought__"
	// geminiPlaceholderSignature is the value Google documents for function calls whose
	// signature was never seen (https://ai.google.dev/gemini-api/docs/thought-signatures).
	geminiPlaceholderSignature = "skip_thought_signature_validator"
)

// geminiThinkingBudgets maps reasoning_effort to thinkingBudget for Gemini 2.5 models:
// LiteLLM's DEFAULT_REASONING_EFFORT_*_THINKING_BUDGET values, as for Anthropic. 128 is
// the smallest budget Gemini 2.5 Pro accepts.
var geminiThinkingBudgets = map[string]int{"minimal": 128, "low": 1024, "medium": 2048, "high": 4096}

// geminiSpec and vertexSpec are the registry entries for the gemini/ and vertex_ai/
// provider prefixes. Vertex AI's host depends on the deployment's location (VertexBase),
// so it has no DefaultBase.
var (
	geminiSpec = &Spec{
		Name:        "gemini",
		DefaultBase: geminiDefaultBase,
		KeyRequired: true,
		Endpoints:   []Endpoint{ChatCompletions, Embeddings},
		Translator:  geminiTranslator{},
	}
	vertexSpec = &Spec{
		Name:       "vertex_ai",
		Endpoints:  []Endpoint{ChatCompletions, Embeddings},
		Translator: geminiTranslator{vertex: true},
	}
)

// geminiTranslator converts OpenAI requests to and from the Gemini API (vertex false) or
// Vertex AI (vertex true).
type geminiTranslator struct {
	vertex bool
	// now stamps "created"; nil means time.Now. Tests fix it for golden files.
	now func() time.Time
	// newID is the unique part of generated completion and tool call IDs; nil means
	// random. Tests make it a counter.
	newID func() string
}

func (g geminiTranslator) created() int64 {
	if g.now == nil {
		return time.Now().Unix()
	}
	return g.now().Unix()
}

func (g geminiTranslator) uniqueID() string {
	if g.newID != nil {
		return g.newID()
	}
	var buf [12]byte
	rand.Read(buf[:]) // never fails (crypto/rand panics rather than return an error)
	return hex.EncodeToString(buf[:])
}

// callID names a function call for OpenAI clients, carrying its thought signature.
func (g geminiTranslator) callID(signature string) string {
	id := "call_" + g.uniqueID()
	if signature != "" {
		id += geminiThoughtSeparator + signature
	}
	return id
}

// name is the API's name as error messages give it.
func (g geminiTranslator) name() string {
	if g.vertex {
		return "Vertex AI"
	}
	return "The Gemini API"
}

// VertexBase is the Vertex AI endpoint of a location, the api_base of a vertex_ai/
// deployment that configures none: https://{location}-aiplatform.googleapis.com, or
// https://aiplatform.googleapis.com for "global". An empty location is us-central1, as in
// LiteLLM. It fails for a location that could not be part of a host name, so a typo
// cannot redirect requests elsewhere.
func VertexBase(location string) (string, error) {
	if location == "" {
		location = vertexDefaultLocation
	}
	if location == "global" {
		return vertexGlobalBase, nil
	}
	if len(location) > 32 {
		return "", fmt.Errorf("vertex_ai: location %q is not a location name", location)
	}
	for _, c := range location {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return "", fmt.Errorf("vertex_ai: location %q is not a location name", location)
		}
	}
	return "https://" + location + "-aiplatform.googleapis.com", nil
}

// Request translates a chat completion or embeddings request into a Gemini API or Vertex
// AI request.
func (g geminiTranslator) Request(ep Endpoint, body []byte, t *Target) (*Upstream, error) {
	model := strings.TrimPrefix(t.Model, "models/")
	var (
		out    []byte
		method string
		err    error
	)
	switch ep {
	case ChatCompletions:
		if g.vertex && strings.HasPrefix(model, "claude") {
			return nil, &APIError{Status: 400, Type: "invalid_request_error", Param: "model", Code: "unsupported_model",
				Message: fmt.Sprintf("vertex_ai deployments serve Google's Gemini models; %q is an Anthropic model, which Vertex AI serves in Anthropic's format, and tollgate does not route it there", model)}
		}
		var stream bool
		out, stream, err = geminiChatRequest(body, model)
		method = "generateContent"
		if stream {
			method = "streamGenerateContent"
		}
	case Embeddings:
		if g.vertex {
			out, err = vertexEmbedRequest(body)
			method = "predict"
		} else {
			out, err = geminiEmbedRequest(body, model)
			method = "batchEmbedContents"
		}
	default:
		return nil, &APIError{Status: 400, Type: "invalid_request_error", Code: "unsupported_endpoint",
			Message: fmt.Sprintf("%s deployments serve chat/completions and embeddings, not %s", g.prefix(), ep)}
	}
	if err != nil {
		return nil, err
	}
	up := &Upstream{Body: out}
	if err := g.route(up, t, model, method); err != nil {
		return nil, err
	}
	return up, nil
}

func (g geminiTranslator) prefix() string {
	if g.vertex {
		return "vertex_ai"
	}
	return "gemini"
}

// route sets the request's path, authority and headers. A deployment without the
// credentials its API needs is a configuration fault, not the client's, so those errors
// are not *APIError.
func (g geminiTranslator) route(up *Upstream, t *Target, model, method string) error {
	hs := make([]Header, 0, 2+len(t.ExtraHeaders))
	hs = append(hs, Header{"content-type", "application/json"})
	var (
		base   *url.URL
		prefix string
		err    error
	)
	switch gc := t.Google; {
	case !g.vertex:
		if base, err = geminiBase(t.Base, geminiDefaultBase); err != nil {
			return err
		}
		prefix = geminiVersioned(base, "/v1beta") + "/models/"
		if t.APIKey != "" {
			hs = append(hs, Header{"x-goog-api-key", t.APIKey})
		}
	case gc != nil && gc.AccessToken != "":
		if gc.Project == "" {
			return errors.New("vertex_ai: the deployment has no vertex_project")
		}
		loc := gc.Location
		if loc == "" {
			loc = vertexDefaultLocation
		}
		def, err := VertexBase(loc)
		if err != nil {
			return err
		}
		if base, err = geminiBase(t.Base, def); err != nil {
			return err
		}
		prefix = geminiVersioned(base, "/v1") + "/projects/" + url.PathEscape(gc.Project) +
			"/locations/" + loc + "/publishers/google/models/"
		hs = append(hs, Header{"authorization", "Bearer " + gc.AccessToken})
	case t.APIKey != "":
		// Vertex AI express mode: an API key instead of a project and a service account
		// (https://cloud.google.com/vertex-ai/generative-ai/docs/start/express-mode/overview).
		if base, err = geminiBase(t.Base, vertexGlobalBase); err != nil {
			return err
		}
		prefix = geminiVersioned(base, "/v1") + "/publishers/google/models/"
		hs = append(hs, Header{"x-goog-api-key", t.APIKey})
	default:
		return errors.New("vertex_ai: the deployment has no access token (vertex_credentials) and no api_key")
	}
	p := prefix + url.PathEscape(model) + ":" + method
	query := base.RawQuery
	if method == "streamGenerateContent" {
		if query != "" {
			query += "&"
		}
		query += "alt=sse"
	}
	if query != "" {
		p += "?" + query
	}
	up.Path = p
	up.Authority = geminiAuthority(base)
	up.Headers = geminiHeaders(hs, t.ExtraHeaders)
	return nil
}

// geminiBase is api_base, or the default base.
func geminiBase(base *url.URL, def string) (*url.URL, error) {
	if base != nil {
		return base, nil
	}
	u, err := url.Parse(def)
	if err != nil {
		return nil, fmt.Errorf("default base %q: %w", def, err)
	}
	return u, nil
}

// geminiVersioned is api_base's path with the API version appended, unless api_base
// already ends in a version segment (".../v1beta", ".../v1"): LiteLLM users write both.
func geminiVersioned(base *url.URL, version string) string {
	p := strings.TrimSuffix(base.EscapedPath(), "/")
	switch last := p[strings.LastIndexByte(p, '/')+1:]; last {
	case "v1", "v1beta", "v1beta1", "v1alpha":
		return p
	}
	return p + version
}

// geminiAuthority is the host the request goes to; a default port is dropped, as HTTP
// clients drop it from the Host header.
func geminiAuthority(base *url.URL) string {
	host := base.Host
	switch base.Scheme {
	case "https":
		host = strings.TrimSuffix(host, ":443")
	case "http":
		host = strings.TrimSuffix(host, ":80")
	}
	return host
}

// geminiHeaders appends the deployment's extra_headers (lower-cased, sorted so the result
// is stable) to hs; an extra header replaces a default one of the same name.
func geminiHeaders(hs []Header, extra map[string]string) []Header {
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
next:
	for _, k := range keys {
		name := strings.ToLower(k)
		for i := range hs {
			if hs[i].Key == name {
				hs[i].Value = extra[k]
				continue next
			}
		}
		hs = append(hs, Header{name, extra[k]})
	}
	return hs
}

// geminiChatRequest decodes an OpenAI chat completion request and encodes the
// generateContent body for model; stream says which method serves it. Every client
// mistake is a 400 *APIError naming its parameter.
func geminiChatRequest(body []byte, model string) ([]byte, bool, error) {
	var in gemChatRequest
	if err := decodeChatRequest(body, &in, gemKnownParams); err != nil {
		return nil, false, err
	}
	if err := geminiRefuse(&in); err != nil {
		return nil, false, err
	}
	req := &geminiRequest{}
	var err error
	if req.SystemInstruction, req.Contents, err = geminiContents(in.Messages, strings.Contains(model, "gemini-3")); err != nil {
		return nil, false, err
	}
	var names []string
	if req.Tools, names, err = geminiTools(in.Tools); err != nil {
		return nil, false, err
	}
	if req.ToolConfig, err = geminiToolChoice(in.ToolChoice, names); err != nil {
		return nil, false, err
	}
	if req.GenerationConfig, err = geminiGeneration(&in, model); err != nil {
		return nil, false, err
	}
	if !isNull(in.SafetySettings) {
		if in.SafetySettings[0] != '[' {
			return nil, false, invalidParam("safety_settings", "Invalid value for 'safety_settings': expected an array of Gemini safety settings")
		}
		req.SafetySettings = in.SafetySettings
	}
	out, err := marshalJSON(req, len(body))
	if err != nil {
		// Only the client's own JSON (schemas, arguments, safety settings) is copied in
		// raw, and it was decoded once already, so this is an internal fault.
		return nil, false, fmt.Errorf("encode gemini request: %w", err)
	}
	return out, in.Stream, nil
}

// gemKnownParams are the request members gemChatRequest declares.
var gemKnownParams = knownParams[gemChatRequest]()

// geminiRefuse answers the OpenAI parameters tollgate cannot send to Gemini, in a fixed
// order so a request with several always gets the same answer.
func geminiRefuse(in *gemChatRequest) error {
	switch {
	case in.Logprobs:
		return unsupportedParam("logprobs", "is not translated for Gemini deployments")
	case !isNull(in.TopLogprobs):
		return unsupportedParam("top_logprobs", "is not translated for Gemini deployments")
	case !isNull(in.LogitBias) && string(in.LogitBias) != "{}":
		return unsupportedParam("logit_bias", "is not supported by Gemini")
	case !isNull(in.Audio):
		return unsupportedParam("audio", "is not supported for Gemini deployments")
	case !isNull(in.Prediction):
		return unsupportedParam("prediction", "is not supported by Gemini")
	case !isNull(in.WebSearchOptions):
		return unsupportedParam("web_search_options", "is not supported for Gemini deployments")
	case !isNull(in.Verbosity):
		return unsupportedParam("verbosity", "is not supported by Gemini")
	case !isNull(in.Functions):
		return unsupportedParam("functions", "is deprecated; use 'tools' and 'tool_choice'")
	case !isNull(in.FunctionCall):
		return unsupportedParam("function_call", "is deprecated; use 'tools' and 'tool_choice'")
	case in.ParallelToolCalls != nil && !*in.ParallelToolCalls && len(in.Tools) > 0:
		return unsupportedParam("parallel_tool_calls", "cannot be false: Gemini decides how many functions to call in a turn")
	}
	for _, m := range in.Modalities {
		if m != "text" {
			return unsupportedParam("modalities", "may only be [\"text\"] for Gemini deployments")
		}
	}
	return nil
}

// geminiContents splits OpenAI messages into the system instruction and the
// conversation. Consecutive turns of one role are merged (tool results become user
// turns), so user and model turns alternate.
func geminiContents(in []gemChatMessage, gemini3 bool) (*geminiContent, []geminiContent, error) {
	calls := make(map[string]string) // tool_call_id -> function name, latest call winning
	system, turns, err := chatConversation(len(in), func(i int) (string, []geminiPart, error) {
		m := &in[i]
		return convertChatMessage(m.Role, i, "model", chatRoles[geminiPart]{
			system:    func() ([]geminiPart, error) { return geminiParts(m.Content, i, gemTextOnly) },
			user:      func() ([]geminiPart, error) { return geminiParts(m.Content, i, gemUserParts) },
			assistant: func() ([]geminiPart, error) { return geminiAssistant(m, i, calls, gemini3) },
			tool:      func() ([]geminiPart, error) { return geminiToolResult(m, i, calls) },
		})
	})
	if err != nil {
		return nil, nil, err
	}
	out := make([]geminiContent, len(turns))
	for i, t := range turns {
		out[i] = geminiContent{Role: t.role, Parts: t.blocks}
	}
	var sys *geminiContent
	if len(system) > 0 {
		sys = &geminiContent{Parts: system}
	}
	return sys, out, nil
}

// Which content parts a role may carry.
const (
	gemTextOnly = iota // system, developer, tool
	gemUserParts
	gemAssistantParts
)

// geminiParts converts a message's "content" (a string, an array of parts, or null) into
// parts. Empty text is dropped: a part must carry data.
func geminiParts(raw json.RawMessage, msg int, allowed int) ([]geminiPart, error) {
	if isNull(raw) {
		return nil, nil
	}
	s, parts, err := decodeContent[chatPart](raw, func() string { return fmt.Sprintf("messages[%d].content", msg) })
	if err != nil || (s != nil && *s == "") {
		return nil, err
	}
	if s != nil {
		return []geminiPart{{Text: *s}}, nil
	}
	out := make([]geminiPart, 0, len(parts))
	for j := range parts {
		part := &parts[j]
		pp := func() string { return fmt.Sprintf("messages[%d].content[%d]", msg, j) }
		var p geminiPart
		switch {
		case part.Type == "text" || (part.Type == "refusal" && allowed == gemAssistantParts):
			text, err := chatPartText(part.Type, part.Text, part.Refusal, pp)
			if err != nil {
				return nil, err
			}
			if *text == "" {
				continue
			}
			p.Text = *text
		case part.Type == "image_url" && allowed == gemUserParts:
			var err error
			if p, err = geminiImage(part.ImageURL, pp); err != nil {
				return nil, err
			}
		case part.Type == "input_audio" && allowed == gemUserParts:
			a := part.InputAudio
			if a == nil || a.Data == "" {
				return nil, invalidParam(pp()+".input_audio", "%s.input_audio needs 'data' and 'format'", pp())
			}
			switch a.Format {
			case "wav", "mp3", "aiff", "aac", "ogg", "flac":
			default:
				return nil, invalidParam(pp()+".input_audio.format", "%s.input_audio.format must be wav, mp3, aiff, aac, ogg or flac", pp())
			}
			p.InlineData = &geminiBlob{MimeType: "audio/" + a.Format, Data: a.Data}
		case part.Type == "file" && allowed == gemUserParts:
			var err error
			if p, err = geminiFile(part, pp); err != nil {
				return nil, err
			}
		default:
			return nil, invalidParam(pp(), "%s: content part type %q is not allowed here", pp(), part.Type)
		}
		out = append(out, p)
	}
	return out, nil
}

// geminiImage maps an image_url to a part: data URLs become inlineData, http(s) and gs://
// URLs fileData.
func geminiImage(raw json.RawMessage, part func() string) (geminiPart, error) {
	param := func() string { return part() + ".image_url" }
	u, err := imageURLOf(raw, param)
	if err != nil {
		return geminiPart{}, err
	}
	if media, data, ok := parseDataURL(u); ok {
		return geminiPart{InlineData: &geminiBlob{MimeType: media, Data: data}}, nil
	}
	return geminiFileURL(u, "", param()+".url")
}

// geminiFile maps a file part: inline data (a data URL in file_data) becomes inlineData;
// a file_id that is an http(s) or gs:// URL (LiteLLM's extension, with the MIME type in
// "format") becomes fileData. OpenAI file IDs name files Google cannot read.
func geminiFile(part *chatPart, pp func() string) (geminiPart, error) {
	f := part.File
	switch {
	case f == nil:
		return geminiPart{}, invalidParam(pp()+".file", "%s.file is required for a file part", pp())
	case f.FileData != "":
		media, data, ok := parseDataURL(f.FileData)
		if !ok {
			p := pp() + ".file.file_data"
			return geminiPart{}, invalidParam(p, "%s must be a base64 data URL", p)
		}
		return geminiPart{InlineData: &geminiBlob{MimeType: media, Data: data}}, nil
	case strings.Contains(f.FileID, "://"):
		return geminiFileURL(f.FileID, f.Format, pp()+".file.file_id")
	}
	return geminiPart{}, unsupportedParam(pp()+".file", "needs 'file_data', or a URL in 'file_id': OpenAI file IDs cannot be sent to Gemini")
}

// geminiMediaTypes are the media types of file extensions Gemini reads
// (https://ai.google.dev/gemini-api/docs/image-understanding and the document, audio and
// video pages beside it).
var geminiMediaTypes = map[string]string{
	".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
	".gif": "image/gif", ".heic": "image/heic", ".heif": "image/heif",
	".pdf": "application/pdf", ".txt": "text/plain", ".md": "text/md", ".html": "text/html",
	".csv": "text/csv", ".xml": "text/xml",
	".wav": "audio/wav", ".mp3": "audio/mp3", ".aiff": "audio/aiff", ".aac": "audio/aac",
	".ogg": "audio/ogg", ".flac": "audio/flac",
	".mp4": "video/mp4", ".mpeg": "video/mpeg", ".mov": "video/mov", ".avi": "video/avi",
	".webm": "video/webm", ".wmv": "video/wmv", ".3gp": "video/3gpp",
}

// geminiFileURL makes a fileData part for a URL Gemini fetches itself. Its media type is
// media when given, else the file extension's: Gemini needs one, and tollgate does not
// fetch the file to find out.
func geminiFileURL(u, media, param string) (geminiPart, error) {
	parsed, err := url.Parse(u)
	if err != nil || parsed.Host == "" || (parsed.Scheme != "https" && parsed.Scheme != "http" && parsed.Scheme != "gs") {
		return geminiPart{}, invalidParam(param, "%s must be an http(s) or gs:// URL, or a base64 data URL", param)
	}
	if media == "" {
		media = geminiMediaTypes[strings.ToLower(path.Ext(parsed.Path))]
	}
	if media == "" {
		return geminiPart{}, invalidParam(param, "%s: the media type of %q cannot be told from its extension; send the file as a base64 data URL", param, u)
	}
	return geminiPart{FileData: &geminiFileData{MimeType: media, FileURI: u}}, nil
}

// geminiAssistant converts an assistant message: its text, then one functionCall part per
// tool call, each with the thought signature its ID carries.
func geminiAssistant(m *gemChatMessage, i int, calls map[string]string, gemini3 bool) ([]geminiPart, error) {
	if !isNull(m.FunctionCall) {
		return nil, unsupportedParam(fmt.Sprintf("messages[%d].function_call", i), "is deprecated; use 'tool_calls'")
	}
	parts, err := geminiParts(m.Content, i, gemAssistantParts)
	if err != nil {
		return nil, err
	}
	for j := range m.ToolCalls {
		tc := &m.ToolCalls[j]
		p := func() string { return fmt.Sprintf("messages[%d].tool_calls[%d]", i, j) }
		if tc.Type != "" && tc.Type != "function" {
			return nil, unsupportedParam(p()+".type", fmt.Sprintf("%q: only function tool calls can be sent to Gemini", tc.Type))
		}
		if tc.ID == "" || tc.Function.Name == "" {
			return nil, invalidParam(p(), "%s needs an 'id' and a 'function.name'", p())
		}
		args := json.RawMessage(tc.Function.Arguments)
		if trimmed := bytes.TrimSpace(args); len(trimmed) == 0 {
			args = json.RawMessage("{}")
		} else if trimmed[0] != '{' || !json.Valid(trimmed) {
			return nil, invalidParam(p()+".function.arguments", "%s.function.arguments must be a JSON object: Gemini function arguments are an object", p())
		}
		_, sig, _ := strings.Cut(tc.ID, geminiThoughtSeparator)
		if sig == "" && tc.ExtraContent != nil {
			sig = tc.ExtraContent.Google.ThoughtSignature
		}
		if sig == "" && j == 0 && gemini3 {
			// Gemini 3 requires the first call of a turn to be signed.
			sig = geminiPlaceholderSignature
		}
		calls[tc.ID] = tc.Function.Name
		parts = append(parts, geminiPart{
			FunctionCall:     &geminiFunctionCall{Name: tc.Function.Name, Args: args},
			ThoughtSignature: sig,
		})
	}
	return parts, nil
}

// geminiToolResult converts a role "tool" message into a functionResponse part naming the
// function its call asked for. A JSON object result is the response as it is; anything
// else is wrapped as {"content": text}, since a functionResponse's response is an object.
func geminiToolResult(m *gemChatMessage, i int, calls map[string]string) ([]geminiPart, error) {
	if m.ToolCallID == "" {
		p := fmt.Sprintf("messages[%d].tool_call_id", i)
		return nil, invalidParam(p, "%s is required for a tool message", p)
	}
	name, ok := calls[m.ToolCallID]
	if !ok {
		p := fmt.Sprintf("messages[%d].tool_call_id", i)
		return nil, invalidParam(p, "%s %q answers no tool call of an earlier assistant message", p, m.ToolCallID)
	}
	parts, err := geminiParts(m.Content, i, gemTextOnly)
	if err != nil {
		return nil, err
	}
	var text string
	if len(parts) == 1 {
		text = parts[0].Text
	} else {
		var b strings.Builder
		for _, p := range parts {
			b.WriteString(p.Text)
		}
		text = b.String()
	}
	response := json.RawMessage(strings.TrimSpace(text))
	if len(response) == 0 || response[0] != '{' || !json.Valid(response) {
		wrapped, err := marshalJSON(struct {
			Content string `json:"content"`
		}{text}, len(text))
		if err != nil {
			return nil, fmt.Errorf("encode tool result: %w", err)
		}
		response = wrapped
	}
	return []geminiPart{{FunctionResponse: &geminiFunctionResponse{Name: name, Response: response}}}, nil
}

// geminiTools maps function tools to one Tool of function declarations, and returns the
// functions' names.
func geminiTools(in []chatTool) ([]geminiTool, []string, error) {
	if len(in) == 0 {
		return nil, nil, nil
	}
	decls := make([]geminiFunctionDeclaration, 0, len(in))
	names := make([]string, 0, len(in))
	for i := range in {
		t := &in[i]
		if t.Type != "function" {
			return nil, nil, unsupportedParam(fmt.Sprintf("tools[%d].type", i), fmt.Sprintf("%q: only function tools can be sent to Gemini", t.Type))
		}
		if t.Function == nil || t.Function.Name == "" {
			p := fmt.Sprintf("tools[%d].function.name", i)
			return nil, nil, invalidParam(p, "%s is required", p)
		}
		d := geminiFunctionDeclaration{Name: t.Function.Name, Description: t.Function.Description}
		if !isNull(t.Function.Parameters) {
			conv := geminiSchemaConverter{param: fmt.Sprintf("tools[%d].function.parameters", i)}
			schema, props, err := conv.root(t.Function.Parameters)
			if err != nil {
				return nil, nil, err
			}
			// Gemini refuses an OBJECT schema with no properties; a function that takes
			// none declares no parameters.
			if props {
				d.Parameters = schema
			}
		}
		decls = append(decls, d)
		names = append(names, d.Name)
	}
	return []geminiTool{{FunctionDeclarations: decls}}, names, nil
}

// geminiToolChoice maps tool_choice to a function calling mode: auto is AUTO, none is
// NONE, required is ANY, and a named function is ANY restricted to that function.
func geminiToolChoice(raw json.RawMessage, names []string) (*geminiToolConfig, error) {
	if isNull(raw) {
		return nil, nil
	}
	mode, name, err := parseToolChoice(raw, len(names) > 0, "Gemini", func(name string) bool { return slices.Contains(names, name) })
	if err != nil {
		return nil, err
	}
	cfg := geminiFunctionCallingConfig{Mode: "ANY"} // required, or the function named
	switch {
	case name != "":
		cfg.AllowedFunctionNames = []string{name}
	case mode == "auto":
		cfg.Mode = "AUTO"
	case mode == "none":
		cfg.Mode = "NONE"
	}
	return &geminiToolConfig{FunctionCallingConfig: cfg}, nil
}

// geminiGeneration builds generationConfig from the sampling, length, stop, format and
// reasoning parameters; nil when the client set none.
func geminiGeneration(in *gemChatRequest, model string) (*geminiGenerationConfig, error) {
	gc := &geminiGenerationConfig{
		Temperature:      in.Temperature,
		TopP:             in.TopP,
		TopK:             in.TopK,
		PresencePenalty:  in.PresencePenalty,
		FrequencyPenalty: in.FrequencyPenalty,
		Seed:             in.Seed,
	}
	maxTokens := in.MaxCompletionTokens // the newer name wins when both are set
	if maxTokens == nil {
		maxTokens = in.MaxTokens
	}
	if maxTokens != nil {
		if *maxTokens < 1 {
			return nil, invalidParam("max_tokens", "max_tokens must be at least 1, got %d", *maxTokens)
		}
		gc.MaxOutputTokens = maxTokens
	}
	if in.N != nil {
		if *in.N < 1 {
			return nil, invalidParam("n", "n must be at least 1, got %d", *in.N)
		}
		if *in.N > 1 {
			gc.CandidateCount = in.N
		}
	}
	if !isNull(in.Stop) {
		stop, err := parseStop(in.Stop)
		if err != nil {
			return nil, err
		}
		gc.StopSequences = stop
	}
	if err := geminiResponseFormat(gc, in.ResponseFormat); err != nil {
		return nil, err
	}
	var err error
	if gc.ThinkingConfig, err = geminiThinking(in, model); err != nil {
		return nil, err
	}
	if reflect.ValueOf(*gc).IsZero() {
		return nil, nil
	}
	return gc, nil
}

// geminiResponseFormat maps response_format to JSON output: json_object is
// responseMimeType application/json, and json_schema adds its schema as responseSchema.
func geminiResponseFormat(gc *geminiGenerationConfig, raw json.RawMessage) error {
	if isNull(raw) {
		return nil
	}
	var rf struct {
		Type       string `json:"type"`
		JSONSchema *struct {
			Schema json.RawMessage `json:"schema"`
		} `json:"json_schema"`
	}
	if err := decodeParamAt(raw, &rf, paramName("response_format")); err != nil {
		return err
	}
	switch rf.Type {
	case "text":
		return nil
	case "json_object":
	case "json_schema":
		if rf.JSONSchema == nil {
			return invalidParam("response_format.json_schema", "response_format of type json_schema needs 'json_schema'")
		}
		if !isNull(rf.JSONSchema.Schema) {
			conv := geminiSchemaConverter{param: "response_format.json_schema.schema", ordering: true}
			schema, _, err := conv.root(rf.JSONSchema.Schema)
			if err != nil {
				return err
			}
			gc.ResponseSchema = schema
		}
	default:
		return invalidParam("response_format", "Invalid value for 'response_format.type': %q", rf.Type)
	}
	gc.ResponseMimeType = "application/json"
	return nil
}

// geminiThinking maps reasoning_effort, or LiteLLM's Anthropic-style "thinking", to a
// thinkingConfig that also asks for the thoughts, which become reasoning_content.
func geminiThinking(in *gemChatRequest, model string) (*geminiThinkingConfig, error) {
	if in.ReasoningEffort != "" && !isNull(in.Thinking) {
		return nil, invalidParam("reasoning_effort", "Set either 'reasoning_effort' or 'thinking', not both")
	}
	if !isNull(in.Thinking) {
		var th struct {
			Type         string `json:"type"`
			BudgetTokens *int   `json:"budget_tokens"`
		}
		if err := decodeParamAt(in.Thinking, &th, paramName("thinking")); err != nil {
			return nil, err
		}
		switch {
		case th.Type == "disabled":
			zero := 0
			return &geminiThinkingConfig{ThinkingBudget: &zero}, nil
		case th.Type == "enabled" && th.BudgetTokens != nil:
			return &geminiThinkingConfig{IncludeThoughts: true, ThinkingBudget: th.BudgetTokens}, nil
		}
		return nil, invalidParam("thinking", "Invalid value for 'thinking': use {\"type\": \"enabled\", \"budget_tokens\": N} or {\"type\": \"disabled\"}")
	}
	effort := in.ReasoningEffort
	if effort == "" {
		return nil, nil
	}
	if strings.Contains(model, "gemini-3") {
		// Gemini 3 takes a thinking level and cannot stop thinking: LiteLLM's mapping.
		switch effort {
		case "none", "minimal", "low":
			return &geminiThinkingConfig{IncludeThoughts: effort != "none", ThinkingLevel: "low"}, nil
		case "medium", "high":
			return &geminiThinkingConfig{IncludeThoughts: true, ThinkingLevel: "high"}, nil
		}
	} else if effort == "none" {
		zero := 0
		return &geminiThinkingConfig{ThinkingBudget: &zero}, nil
	} else if budget, ok := geminiThinkingBudgets[effort]; ok {
		return &geminiThinkingConfig{IncludeThoughts: true, ThinkingBudget: &budget}, nil
	}
	return nil, invalidParam("reasoning_effort", "Invalid value for 'reasoning_effort': %q (use none, minimal, low, medium or high)", effort)
}

// Response translates a whole generateContent, batchEmbedContents or predict response
// (any status) into OpenAI format.
func (g geminiTranslator) Response(ep Endpoint, status int, body []byte) ([]byte, Usage, error) {
	if status >= 400 {
		return g.errorOf(status, body).JSON(), Usage{}, nil
	}
	if ep == Embeddings {
		return g.embedResponse(body)
	}
	var r geminiResponse
	if err := json.Unmarshal(body, &r); err != nil || (r.Candidates == nil && r.PromptFeedback == nil) {
		return nil, Usage{}, &APIError{Status: 502, Type: "api_error", Code: "bad_upstream_response",
			Message: g.name() + " returned a response that is not a GenerateContentResponse"}
	}
	out := chatCompletion[gemChatOutMessage, gemChatUsage]{
		ID:      r.ResponseID,
		Object:  "chat.completion",
		Created: g.created(),
		Model:   r.ModelVersion,
		Choices: make([]chatChoice[gemChatOutMessage], 0, max(1, len(r.Candidates))),
	}
	if out.ID == "" {
		out.ID = "chatcmpl-" + g.uniqueID()
	}
	for i := range r.Candidates {
		choice, err := g.choice(&r.Candidates[i])
		if err != nil {
			return nil, Usage{}, err
		}
		out.Choices = append(out.Choices, choice)
	}
	if len(out.Choices) == 0 {
		// The prompt itself was blocked (promptFeedback.blockReason): no candidates.
		empty := ""
		out.Choices = append(out.Choices, chatChoice[gemChatOutMessage]{
			Message:      gemChatOutMessage{Role: "assistant", Content: &empty},
			FinishReason: "content_filter",
		})
	}
	u := geminiUsageOf(r.UsageMetadata)
	if u.Known {
		out.Usage = gemChatUsageOf(u)
	}
	b, err := marshalJSON(out, len(body))
	if err != nil {
		return nil, Usage{}, fmt.Errorf("encode chat completion: %w", err)
	}
	return b, u, nil
}

// choice converts one candidate: text parts joined into content, thought parts into
// reasoning_content, function calls into tool calls.
func (g geminiTranslator) choice(c *geminiCandidate) (chatChoice[gemChatOutMessage], error) {
	ch := chatChoice[gemChatOutMessage]{Index: c.Index, Message: gemChatOutMessage{Role: "assistant"}}
	var text, reasoning strings.Builder
	if c.Content != nil {
		for i := range c.Content.Parts {
			p := &c.Content.Parts[i]
			switch {
			case p.FunctionCall != nil:
				args, err := geminiArgs(p.FunctionCall.Args)
				if err != nil {
					return ch, &APIError{Status: 502, Type: "api_error", Code: "bad_upstream_response",
						Message: g.name() + " returned a function call whose arguments are not a JSON object"}
				}
				tc := chatToolCall{ID: g.callID(p.ThoughtSignature), Type: "function"}
				tc.Function.Name, tc.Function.Arguments = p.FunctionCall.Name, args
				ch.Message.ToolCalls = append(ch.Message.ToolCalls, tc)
			case p.Thought:
				reasoning.WriteString(p.Text)
			default:
				text.WriteString(p.Text)
			}
		}
	}
	if text.Len() > 0 || len(ch.Message.ToolCalls) == 0 {
		s := text.String()
		ch.Message.Content = &s
	}
	ch.Message.ReasoningContent = reasoning.String()
	ch.FinishReason = geminiFinishReason(c.FinishReason, len(ch.Message.ToolCalls) > 0)
	return ch, nil
}

// geminiArgs is a function call's args as OpenAI's arguments string: compact JSON, "{}"
// for a call without arguments.
func geminiArgs(args json.RawMessage) (string, error) {
	if isNull(args) {
		return "{}", nil
	}
	var buf bytes.Buffer
	buf.Grow(len(args))
	if err := json.Compact(&buf, args); err != nil || buf.Bytes()[0] != '{' {
		return "", errors.New("function call arguments are not a JSON object")
	}
	return buf.String(), nil
}

// geminiFinishReason maps a candidate's finishReason
// (https://ai.google.dev/api/generate-content#FinishReason) to finish_reason. Gemini ends
// a turn of function calls with STOP, which OpenAI calls tool_calls. Reasons for a failed
// function call (MALFORMED_FUNCTION_CALL, ...) and reasons added later are "stop".
func geminiFinishReason(reason string, calls bool) string {
	switch reason {
	case "MAX_TOKENS":
		return "length"
	case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
		"IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION":
		return "content_filter"
	}
	if calls {
		return "tool_calls"
	}
	return "stop"
}

// geminiUsageOf normalises usageMetadata to OpenAI's convention: prompt tokens include the
// cached ones (promptTokenCount already does) and the results of Google's server-side
// tools; completion tokens include the thoughts, which Google bills as output.
func geminiUsageOf(m *geminiUsageMetadata) Usage {
	if m == nil {
		return Usage{}
	}
	return Usage{
		PromptTokens:     m.PromptTokenCount + m.ToolUsePromptTokenCount,
		CompletionTokens: m.CandidatesTokenCount + m.ThoughtsTokenCount,
		CachedTokens:     m.CachedContentTokenCount,
		ReasoningTokens:  m.ThoughtsTokenCount,
		Known:            true,
	}
}

func gemChatUsageOf(u Usage) *gemChatUsage {
	cu := &gemChatUsage{}
	cu.set(u)
	cu.CompletionTokensDetails.ReasoningTokens = u.ReasoningTokens
	return cu
}

// errorOf maps a Google API error response to an OpenAI error with the same status.
func (g geminiTranslator) errorOf(status int, body []byte) *APIError {
	eb, ok := geminiParseError(body)
	if !ok {
		// Not Google's shape: a proxy or load balancer answered, and its body may be a
		// whole HTML page, so only the status is told.
		msg := fmt.Sprintf("%s returned HTTP %d", g.name(), status)
		if text := http.StatusText(status); text != "" {
			msg += " (" + text + ")"
		}
		eb = geminiErrorBody{Message: msg}
	}
	return g.apiError(status, eb)
}

// geminiParseError reads {"error": {...}}, or the one-element array of it that
// streamGenerateContent answers without alt=sse.
func geminiParseError(body []byte) (geminiErrorBody, bool) {
	var env struct {
		Error geminiErrorBody `json:"error"`
	}
	if json.Unmarshal(body, &env) != nil {
		var list []struct {
			Error geminiErrorBody `json:"error"`
		}
		if json.Unmarshal(body, &list) != nil || len(list) == 0 {
			return geminiErrorBody{}, false
		}
		env.Error = list[0].Error
	}
	return env.Error, env.Error.Message != ""
}

// apiError builds the OpenAI error for a Google error. The OpenAI type follows the status;
// the code is Google's canonical status (RESOURCE_EXHAUSTED, ...) or the ErrorInfo reason
// of a credential failure, or context_length_exceeded when the prompt does not fit, which
// is what context-window fallbacks key on. Credential failures get tollgate's own message:
// the client authenticated to tollgate, it is the deployment's credentials Google refused,
// and Google's text is not repeated in case it quotes them. The Gemini API answers a bad
// key with 400 INVALID_ARGUMENT and reason API_KEY_INVALID, so the reason is checked too.
func (g geminiTranslator) apiError(status int, eb geminiErrorBody) *APIError {
	e := StatusError(status, eb.Message)
	e.Code = eb.Status
	reason := ""
	for _, d := range eb.Details {
		if d.Reason != "" {
			reason = d.Reason
			break
		}
	}
	switch {
	case strings.HasPrefix(reason, "API_KEY_") || reason == "ACCESS_TOKEN_EXPIRED" ||
		status == 401 || status == 403 || eb.Status == "UNAUTHENTICATED" || eb.Status == "PERMISSION_DENIED":
		what := reason
		if what == "" {
			what = eb.Status
		}
		if what == "" {
			what = fmt.Sprintf("HTTP %d", status)
		}
		if reason != "" {
			e.Code = reason
		}
		if g.vertex {
			e.Message = fmt.Sprintf("Vertex AI rejected the credentials configured for this deployment (%s): check its vertex_credentials, vertex_project and vertex_location (or api_key), and that the service account may use Vertex AI there", what)
		} else {
			e.Message = fmt.Sprintf("The Gemini API rejected the API key configured for this deployment (%s): check its api_key", what)
		}
	case status == 400 && geminiContextExceeded(eb.Message):
		e.Code = "context_length_exceeded"
	}
	return e
}

// geminiContextExceeded recognises Google's messages for a prompt longer than the model's
// context window: the Gemini API's "The input token count (1234567) exceeds the maximum
// number of tokens allowed (1048576)." and Vertex AI's "Unable to submit request because
// the input token count is 1234567 but model only supports up to 1048576."
func geminiContextExceeded(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "input token count") || strings.Contains(m, "exceeds the maximum number of tokens")
}

// geminiStatusCode is the HTTP status of a canonical Google error status
// (https://cloud.google.com/apis/design/errors#handling_errors); a stream's error event
// may carry the name without the code.
func geminiStatusCode(status string) int {
	switch status {
	case "INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE":
		return 400
	case "UNAUTHENTICATED":
		return 401
	case "PERMISSION_DENIED":
		return 403
	case "NOT_FOUND":
		return 404
	case "ABORTED", "ALREADY_EXISTS":
		return 409
	case "RESOURCE_EXHAUSTED":
		return 429
	case "CANCELLED":
		return 499
	case "NOT_IMPLEMENTED", "UNIMPLEMENTED":
		return 501
	case "UNAVAILABLE":
		return 503
	case "DEADLINE_EXCEEDED":
		return 504
	}
	return 500 // INTERNAL, UNKNOWN, DATA_LOSS and statuses added later
}

// geminiEmbedInputs decodes an OpenAI embeddings request and its input texts.
func geminiEmbedInputs(body []byte) (*gemChatEmbedRequest, []string, error) {
	var req gemChatEmbedRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return nil, nil, invalidParam(typeErr.Field, "Invalid type for '%s': expected %s, got %s",
				typeErr.Field, jsonKindName(typeErr.Type), typeErr.Value)
		}
		return nil, nil, invalidParam("", "The request body is not a valid embeddings request: %v", err)
	}
	if req.EncodingFormat != "" && req.EncodingFormat != "float" && req.EncodingFormat != "base64" {
		return nil, nil, invalidParam("encoding_format", "Invalid value for 'encoding_format': %q (use float or base64)", req.EncodingFormat)
	}
	if req.Dimensions != nil && *req.Dimensions < 1 {
		return nil, nil, invalidParam("dimensions", "dimensions must be at least 1, got %d", *req.Dimensions)
	}
	var inputs []string
	var one string
	switch {
	case isNull(req.Input):
		return nil, nil, invalidParam("input", "'input' is required")
	case json.Unmarshal(req.Input, &one) == nil:
		inputs = []string{one}
	case json.Unmarshal(req.Input, &inputs) != nil:
		return nil, nil, unsupportedParam("input", "must be a string or an array of strings: token arrays cannot be sent to Gemini")
	}
	if len(inputs) == 0 {
		return nil, nil, invalidParam("input", "'input' must not be empty")
	}
	for i, s := range inputs {
		if s == "" {
			p := fmt.Sprintf("input[%d]", i)
			return nil, nil, invalidParam(p, "%s must not be empty", p)
		}
	}
	return &req, inputs, nil
}

// geminiEmbedRequest builds a batchEmbedContents body: one request per input text.
// encoding_format is accepted either way: Gemini answers floats, which every OpenAI client
// reads (the official SDKs ask for base64 by default and decode only strings).
func geminiEmbedRequest(body []byte, model string) ([]byte, error) {
	req, inputs, err := geminiEmbedInputs(body)
	if err != nil {
		return nil, err
	}
	out := geminiBatchEmbedRequest{Requests: make([]geminiEmbedContent, len(inputs))}
	for i, s := range inputs {
		out.Requests[i] = geminiEmbedContent{
			Model:                "models/" + model,
			Content:              geminiContent{Parts: []geminiPart{{Text: s}}},
			TaskType:             req.TaskType,
			OutputDimensionality: req.Dimensions,
		}
	}
	b, err := marshalJSON(out, len(body))
	if err != nil {
		return nil, fmt.Errorf("encode embeddings request: %w", err)
	}
	return b, nil
}

// vertexEmbedRequest builds a Vertex AI text embedding :predict body: one instance per
// input text.
func vertexEmbedRequest(body []byte) ([]byte, error) {
	req, inputs, err := geminiEmbedInputs(body)
	if err != nil {
		return nil, err
	}
	out := vertexPredictEmbedRequest{Instances: make([]vertexEmbedInstance, len(inputs))}
	for i, s := range inputs {
		out.Instances[i] = vertexEmbedInstance{Content: s, TaskType: req.TaskType}
	}
	if req.Dimensions != nil {
		out.Parameters = &vertexEmbedParams{OutputDimensionality: req.Dimensions}
	}
	b, err := marshalJSON(out, len(body))
	if err != nil {
		return nil, fmt.Errorf("encode embeddings request: %w", err)
	}
	return b, nil
}

// embedResponse turns a batchEmbedContents or :predict response into an OpenAI embedding
// list. The vectors are copied through as Google wrote them. Only Vertex AI reports token
// counts; a Gemini API response's usage is unknown.
func (g geminiTranslator) embedResponse(body []byte) ([]byte, Usage, error) {
	bad := &APIError{Status: 502, Type: "api_error", Code: "bad_upstream_response",
		Message: g.name() + " returned a response that is not an embedding response"}
	var r geminiEmbedResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, Usage{}, bad
	}
	var list gemChatEmbeddingList
	list.Object = "list"
	var usage Usage
	if g.vertex {
		if len(r.Predictions) == 0 {
			return nil, Usage{}, bad
		}
		list.Data = make([]gemChatEmbedding, len(r.Predictions))
		for i, p := range r.Predictions {
			if isNull(p.Embeddings.Values) {
				return nil, Usage{}, bad
			}
			list.Data[i] = gemChatEmbedding{Object: "embedding", Index: i, Embedding: p.Embeddings.Values}
			if s := p.Embeddings.Statistics; s != nil {
				usage.PromptTokens += int(s.TokenCount)
				usage.Known = true
			}
		}
	} else {
		if len(r.Embeddings) == 0 {
			return nil, Usage{}, bad
		}
		list.Data = make([]gemChatEmbedding, len(r.Embeddings))
		for i, e := range r.Embeddings {
			if isNull(e.Values) {
				return nil, Usage{}, bad
			}
			list.Data[i] = gemChatEmbedding{Object: "embedding", Index: i, Embedding: e.Values}
		}
	}
	list.Usage.PromptTokens, list.Usage.TotalTokens = usage.PromptTokens, usage.PromptTokens
	out, err := marshalJSON(list, len(body))
	if err != nil {
		return nil, Usage{}, bad // a vector that is not JSON
	}
	return out, usage, nil
}

// Stream starts translating one streamGenerateContent?alt=sse response. The output ends
// with the usage chunk (empty choices) before [DONE] when the client set
// stream_options.include_usage, as an OpenAI stream does; see geminiStream.
func (g geminiTranslator) Stream(_ Endpoint, o StreamOptions) Stream {
	return newGeminiStream(g, o.IncludeUsage)
}

package providertest

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
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
)

// Google is a fake of Google's generative model APIs: the Gemini API
// (https://ai.google.dev/api/generate-content: POST /v1beta/models/{model}:generateContent,
// :streamGenerateContent, :batchEmbedContents) and Vertex AI
// (https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/inference: POST
// /v1/projects/{project}/locations/{location}/publishers/google/models/{model}:generateContent,
// :streamGenerateContent, :predict for embedding models; express mode's
// /v1/publishers/google/models/{model}:...), plus the OAuth 2.0 token endpoint a
// service-account key names (token_uri), so a real token source can be pointed at it.
//
// It checks requests the way the APIs document and behave: credentials (an API key in
// x-goog-api-key or ?key= for the Gemini API and express mode; "Authorization: Bearer"
// with a token it issued for Vertex AI), proto-JSON field names (an unknown one fails as
// `Unknown name "..."`), contents present with roles user and model, parts carrying
// exactly one kind of data, function calls following a user turn and answered by as many
// function responses, Gemini 3's thought signatures, function declarations and their
// OpenAPI-subset schemas, tool config and generation config ranges. Failures get Google's
// error shape {"error": {"code", "message", "status", "details"}} with the API's status.
//
// Answers are deterministic: the reply repeats the last user turn ("You said: ..."); when
// the function calling mode is ANY it calls the first allowed function with
// {"text": <the reply>}; with responseMimeType application/json the reply is the JSON
// object {"text": <the reply>}; with includeThoughts a thought part comes first. Token
// counts are one per word. Streams (?alt=sse) send one event per word, CRLF-terminated as
// Google writes them, the last with finishReason and the final usageMetadata.
type Google struct {
	// Key, when set, is the API key Gemini API and express-mode requests must carry.
	Key string
	// Project and Location are the Vertex AI project and location the fake serves.
	Project, Location string
	// MaxInputTokens, when positive, is the context window: longer prompts fail with the
	// API's 400 INVALID_ARGUMENT about the input token count.
	MaxInputTokens int
	// Usage, when set, is the usageMetadata of every complete answer (the JSON answer,
	// the stream's last event) in place of the word counts: for cachedContentTokenCount,
	// which the word counts never report.
	Usage map[string]any

	// recorder keeps the requests. FailNext failures fall on requests that pass
	// authentication, each with the canonical status Google sends for it (429 is
	// RESOURCE_EXHAUSTED, 503 UNAVAILABLE, ...).
	recorder

	// claude answers Anthropic's models (publishers/anthropic), as the Anthropic fake does.
	claude Anthropic

	mu       sync.Mutex
	url      string   // the server's URL, for the token_uri of service-account keys
	breaks   []string // how to end the next streams early; see BreakNextStream
	tokens   map[string]bool
	accounts map[string]*rsa.PublicKey // service account email -> its key
	key      *rsa.PrivateKey           // the service account ServiceAccountJSON returns
	ids      int
}

// StartGemini serves a fake Gemini API on a loopback port until the test ends; its URL is
// the api_base of a gemini/ deployment. key, when set, is the one API key it accepts.
func StartGemini(t testing.TB, key string) (*Google, *httptest.Server) {
	t.Helper()
	return startGoogle(t, &Google{Key: key})
}

// StartVertex serves a fake Vertex AI on a loopback port until the test ends; its URL is
// the api_base of a vertex_ai/ deployment for project and location. Requests need an
// access token from AccessToken or from the token endpoint (see ServiceAccountJSON).
func StartVertex(t testing.TB, project, location string) (*Google, *httptest.Server) {
	t.Helper()
	return startGoogle(t, &Google{Project: project, Location: location})
}

func startGoogle(t testing.TB, f *Google) (*Google, *httptest.Server) {
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f, srv
}

// BreakNextStream makes the next streamed answer stop after its first event: with an
// error event of the canonical status given (such as "UNAVAILABLE"), or, when status is
// "", by ending the response without a finishReason, as a dropped connection does.
func (f *Google) BreakNextStream(status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.breaks = append(f.breaks, status)
}

// AccessToken issues an OAuth2 access token Vertex AI requests may carry, as the token
// endpoint would.
func (f *Google) AccessToken() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.issue()
}

// RevokeTokens makes every access token issued so far invalid, as an expired token is.
func (f *Google) RevokeTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens = nil
}

// issue mints an access token; f.mu is held.
func (f *Google) issue() string {
	f.ids++
	tok := fmt.Sprintf("ya29.fake-%04d", f.ids)
	if f.tokens == nil {
		f.tokens = map[string]bool{}
	}
	f.tokens[tok] = true
	return tok
}

// ServiceAccountJSON returns a service-account key file (the JSON a vertex_credentials
// setting names) whose token_uri is this fake's token endpoint. Tokens obtained with it
// authenticate Vertex AI requests, and so do JWTs it signs itself, which Google's client
// libraries send instead for some APIs.
func (f *Google) ServiceAccountJSON(t testing.TB) []byte {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	email := "tollgate-test@" + strings.ToLower(googleOr(f.Project, "fake-project")) + ".iam.gserviceaccount.com"
	if f.key == nil {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		f.key = key
		if f.accounts == nil {
			f.accounts = map[string]*rsa.PublicKey{}
		}
		f.accounts[email] = &key.PublicKey
	}
	der, err := x509.MarshalPKCS8PrivateKey(f.key)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(map[string]string{
		"type":                        "service_account",
		"project_id":                  googleOr(f.Project, "fake-project"),
		"private_key_id":              "fake-key-1",
		"private_key":                 string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":                email,
		"client_id":                   "100000000000000000001",
		"auth_uri":                    f.url + "/o/oauth2/auth",
		"token_uri":                   f.url + "/token",
		"auth_provider_x509_cert_url": f.url + "/oauth2/v1/certs",
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func googleOr(s, fallback string) string {
	if s != "" {
		return s
	}
	return fallback
}

// googleStatuses are the canonical statuses Google answers with, by HTTP status
// (https://cloud.google.com/apis/design/errors#handling_errors).
var googleStatuses = map[int]string{
	400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
	409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED", 500: "INTERNAL",
	501: "NOT_IMPLEMENTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}

// googleCodes are the HTTP statuses of canonical statuses.
var googleCodes = func() map[string]int {
	m := map[string]int{"FAILED_PRECONDITION": 400, "OUT_OF_RANGE": 400}
	for code, status := range googleStatuses {
		m[status] = code
	}
	return m
}()

// googleError is a Google API error body.
type googleError struct {
	Code    int              `json:"code"`
	Message string           `json:"message"`
	Status  string           `json:"status"`
	Details []map[string]any `json:"details,omitempty"`
}

func writeGoogleError(w http.ResponseWriter, code int, message string, details ...map[string]any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	status := googleStatuses[code]
	if status == "" {
		status = "UNKNOWN"
	}
	b, _ := json.MarshalIndent(map[string]any{"error": googleError{Code: code, Message: message, Status: status, Details: details}}, "", "  ")
	w.Write(append(b, '\n'))
}

// googleReason is an ErrorInfo detail.
func googleReason(reason, service string) map[string]any {
	return map[string]any{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
		"domain": "googleapis.com", "metadata": map[string]string{"service": service}}
}

var (
	geminiPath = regexp.MustCompile(`^/(v1|v1beta)/models/([^/:]+):([A-Za-z]+)$`)
	vertexPath = regexp.MustCompile(`^/(v1|v1beta1)/projects/([^/]+)/locations/([^/]+)/publishers/google/models/([^/:]+):([A-Za-z]+)$`)
	// vertexClaudePath is Claude on Vertex AI
	// (https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude/use-claude).
	vertexClaudePath = regexp.MustCompile(`^/(v1|v1beta1)/projects/([^/]+)/locations/([^/]+)/publishers/anthropic/models/([^/:]+):(rawPredict|streamRawPredict)$`)
	expressPath      = regexp.MustCompile(`^/(v1|v1beta1)/publishers/google/models/([^/:]+):([A-Za-z]+)$`)
)

// ServeHTTP routes a request by its path to the Gemini API, Vertex AI (regional or express
// mode) or the token endpoint, after recording it.
func (f *Google) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeGoogleError(w, 400, "could not read the request body")
		return
	}
	f.record(r, body)
	if r.URL.Path == "/token" {
		f.token(w, r, body)
		return
	}
	if r.Method != http.MethodPost {
		writeGoogleError(w, 404, "Method not found.")
		return
	}
	var model, method, service string
	vertex := false
	switch m := r.URL.Path; {
	case geminiPath.MatchString(m):
		p := geminiPath.FindStringSubmatch(m)
		model, method, service = p[2], p[3], "generativelanguage.googleapis.com"
		if !f.checkKey(w, r, service) {
			return
		}
	case expressPath.MatchString(m):
		p := expressPath.FindStringSubmatch(m)
		model, method, service, vertex = p[2], p[3], "aiplatform.googleapis.com", true
		if !f.checkKey(w, r, service) {
			return
		}
	case vertexClaudePath.MatchString(m):
		p := vertexClaudePath.FindStringSubmatch(m)
		if !f.checkBearer(w, r) {
			return
		}
		if p[2] != f.Project || p[3] != f.Location {
			writeGoogleError(w, 403, fmt.Sprintf("Permission 'aiplatform.endpoints.predict' denied on resource '//aiplatform.googleapis.com/projects/%s/locations/%s/publishers/anthropic/models/%s' (or it may not exist).", p[2], p[3], p[4]),
				map[string]any{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "IAM_PERMISSION_DENIED", "domain": "aiplatform.googleapis.com"})
			return
		}
		if fail := f.nextFailure(); fail != 0 {
			writeGoogleError(w, fail, fmt.Sprintf("the fake provider was told to fail with %d", fail))
			return
		}
		if p[4] == "count-tokens" && p[5] == "rawPredict" {
			f.countClaude(w, body)
			return
		}
		f.rawPredict(w, p[4], body, p[5] == "streamRawPredict")
		return
	case vertexPath.MatchString(m):
		p := vertexPath.FindStringSubmatch(m)
		model, method, vertex = p[4], p[5], true
		if !f.checkBearer(w, r) {
			return
		}
		if p[2] != f.Project || p[3] != f.Location {
			writeGoogleError(w, 403, fmt.Sprintf("Permission 'aiplatform.endpoints.predict' denied on resource '//aiplatform.googleapis.com/projects/%s/locations/%s/publishers/google/models/%s' (or it may not exist).", p[2], p[3], model),
				map[string]any{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "IAM_PERMISSION_DENIED", "domain": "aiplatform.googleapis.com"})
			return
		}
	default:
		writeGoogleError(w, 404, "The requested URL "+r.URL.Path+" was not found on this server.")
		return
	}

	fail := f.nextFailure()
	if fail != 0 {
		writeGoogleError(w, fail, fmt.Sprintf("the fake provider was told to fail with %d", fail))
		return
	}
	switch {
	case method == "generateContent" || method == "streamGenerateContent":
		f.generate(w, r, model, body, vertex, method == "streamGenerateContent")
	case method == "batchEmbedContents" && !vertex:
		f.batchEmbed(w, model, body)
	case method == "predict" && vertex:
		f.predictEmbed(w, body)
	default:
		writeGoogleError(w, 404, fmt.Sprintf("models/%s is not found for API version %s, or is not supported for %s.", model, googleOr(strings.Split(r.URL.Path, "/")[1], "v1"), method))
	}
}

// checkKey authenticates a Gemini API or express-mode request by its API key, answering
// as the Gemini API does: 403 without a key, 400 API_KEY_INVALID with a wrong one.
func (f *Google) checkKey(w http.ResponseWriter, r *http.Request, service string) bool {
	key := r.Header.Get("x-goog-api-key")
	if key == "" {
		key = r.URL.Query().Get("key")
	}
	switch {
	case key == "":
		writeGoogleError(w, 403, "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
			googleReason("SERVICE_DISABLED", service))
		return false
	case f.Key != "" && subtle.ConstantTimeCompare([]byte(key), []byte(f.Key)) != 1:
		writeGoogleError(w, 400, "API key not valid. Please pass a valid API key.", googleReason("API_KEY_INVALID", service))
		return false
	}
	return true
}

// checkBearer authenticates a Vertex AI request: an access token the fake issued, or a
// JWT a known service account signed.
func (f *Google) checkBearer(w http.ResponseWriter, r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		writeGoogleError(w, 401, "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
			googleReason("CREDENTIALS_MISSING", "aiplatform.googleapis.com"))
		return false
	}
	f.mu.Lock()
	valid := f.tokens[tok]
	f.mu.Unlock()
	if !valid {
		if _, err := f.verifyJWT(tok, ""); err != nil {
			writeGoogleError(w, 401, "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
				googleReason("ACCESS_TOKEN_TYPE_UNSUPPORTED", "aiplatform.googleapis.com"))
			return false
		}
	}
	return true
}

// token is the OAuth 2.0 token endpoint for service accounts
// (https://developers.google.com/identity/protocols/oauth2/service-account#httprest): it
// exchanges a JWT signed with the account's key for an access token.
func (f *Google) token(w http.ResponseWriter, r *http.Request, body []byte) {
	oauthError := func(code int, typ, desc string) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]string{"error": typ, "error_description": desc})
	}
	if r.Method != http.MethodPost {
		oauthError(405, "invalid_request", "Method not allowed")
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		oauthError(400, "invalid_request", "Invalid request body")
		return
	}
	if gt := form.Get("grant_type"); gt != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		oauthError(400, "unsupported_grant_type", "Invalid grant_type: "+gt)
		return
	}
	claims, err := f.verifyJWT(form.Get("assertion"), f.url+"/token")
	if err != nil {
		oauthError(400, "invalid_grant", err.Error())
		return
	}
	if !strings.Contains(" "+claims.Scope+" ", " https://www.googleapis.com/auth/cloud-platform ") {
		oauthError(400, "invalid_scope", "Vertex AI needs the https://www.googleapis.com/auth/cloud-platform scope.")
		return
	}
	f.mu.Lock()
	tok := f.issue()
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "expires_in": 3599, "token_type": "Bearer"})
}

type jwtClaims struct {
	Iss   string `json:"iss"`
	Sub   string `json:"sub"`
	Aud   string `json:"aud"`
	Scope string `json:"scope"`
	Iat   int64  `json:"iat"`
	Exp   int64  `json:"exp"`
}

// verifyJWT checks an RS256 JWT signed by a known service account: its signature, issuer,
// lifetime and, when aud is set, its audience.
func (f *Google) verifyJWT(tok, aud string) (*jwtClaims, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("Invalid JWT: not a JWT")
	}
	var header struct {
		Alg string `json:"alg"`
	}
	var claims jwtClaims
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || json.Unmarshal(hb, &header) != nil || json.Unmarshal(cb, &claims) != nil {
		return nil, fmt.Errorf("Invalid JWT: malformed")
	}
	if header.Alg != "RS256" {
		return nil, fmt.Errorf("Invalid JWT: alg must be RS256")
	}
	f.mu.Lock()
	pub := f.accounts[claims.Iss]
	f.mu.Unlock()
	if pub == nil {
		return nil, fmt.Errorf("Invalid JWT Signature.")
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) != nil {
		return nil, fmt.Errorf("Invalid JWT Signature.")
	}
	now := time.Now().Unix()
	switch {
	case claims.Exp < now || claims.Iat > now+300 || claims.Exp-claims.Iat > 3600:
		return nil, fmt.Errorf("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.")
	case aud != "" && claims.Aud != aud:
		return nil, fmt.Errorf("Invalid JWT: audience %q is not %q", claims.Aud, aud)
	}
	return &claims, nil
}

// googleReq is a generateContent request as the fake reads it (after the field names
// were checked, camelCase or snake_case as proto JSON allows).
type googleReq struct {
	Contents          []googleContent `json:"contents"`
	SystemInstruction *googleContent  `json:"systemInstruction"`
	Tools             []struct {
		FunctionDeclarations []struct {
			Name        string          `json:"name"`
			Description string          `json:"description"`
			Parameters  json.RawMessage `json:"parameters"`
		} `json:"functionDeclarations"`
	} `json:"tools"`
	ToolConfig *struct {
		FunctionCallingConfig *struct {
			Mode                 string   `json:"mode"`
			AllowedFunctionNames []string `json:"allowedFunctionNames"`
		} `json:"functionCallingConfig"`
	} `json:"toolConfig"`
	SafetySettings []struct {
		Category  string `json:"category"`
		Threshold string `json:"threshold"`
	} `json:"safetySettings"`
	GenerationConfig *struct {
		StopSequences    []string        `json:"stopSequences"`
		ResponseMimeType string          `json:"responseMimeType"`
		ResponseSchema   json.RawMessage `json:"responseSchema"`
		CandidateCount   *int            `json:"candidateCount"`
		MaxOutputTokens  *int            `json:"maxOutputTokens"`
		Temperature      *float64        `json:"temperature"`
		TopP             *float64        `json:"topP"`
		TopK             *float64        `json:"topK"`
		ThinkingConfig   *struct {
			IncludeThoughts bool   `json:"includeThoughts"`
			ThinkingBudget  *int   `json:"thinkingBudget"`
			ThinkingLevel   string `json:"thinkingLevel"`
		} `json:"thinkingConfig"`
	} `json:"generationConfig"`
}

type googleContent struct {
	Role  string       `json:"role"`
	Parts []googlePart `json:"parts"`
}

type googlePart struct {
	Text       *string `json:"text"`
	Thought    bool    `json:"thought"`
	InlineData *struct {
		MimeType string `json:"mimeType"`
		Data     string `json:"data"`
	} `json:"inlineData"`
	FileData *struct {
		MimeType string `json:"mimeType"`
		FileURI  string `json:"fileUri"`
	} `json:"fileData"`
	FunctionCall *struct {
		Name string          `json:"name"`
		Args json.RawMessage `json:"args"`
	} `json:"functionCall"`
	FunctionResponse *struct {
		Name     string          `json:"name"`
		Response json.RawMessage `json:"response"`
	} `json:"functionResponse"`
	ExecutableCode      json.RawMessage `json:"executableCode"`
	CodeExecutionResult json.RawMessage `json:"codeExecutionResult"`
	ThoughtSignature    string          `json:"thoughtSignature"`
}

// googleFields are the fields each message of the request accepts, in proto JSON's
// lowerCamelCase; snake_case spellings are accepted too, as proto JSON parsers do.
var googleFields = map[string][]string{
	"GenerateContentRequest": {"contents", "systemInstruction", "tools", "toolConfig", "safetySettings", "generationConfig", "cachedContent", "labels", "model"},
	"Content":                {"role", "parts"},
	"Part":                   {"text", "thought", "thoughtSignature", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode", "codeExecutionResult", "videoMetadata", "mediaResolution", "partMetadata"},
	"Blob":                   {"mimeType", "data", "displayName"},
	"FileData":               {"mimeType", "fileUri", "displayName"},
	"FunctionCall":           {"id", "name", "args"},
	"FunctionResponse":       {"id", "name", "response", "parts", "willContinue", "scheduling"},
	"Tool":                   {"functionDeclarations", "googleSearch", "googleSearchRetrieval", "codeExecution", "urlContext", "retrieval", "googleMaps", "computerUse", "fileSearch"},
	"FunctionDeclaration":    {"name", "description", "parameters", "parametersJsonSchema", "response", "responseJsonSchema", "behavior"},
	"Schema":                 {"type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems", "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength", "pattern", "example", "anyOf", "propertyOrdering", "default", "items", "minimum", "maximum"},
	"ToolConfig":             {"functionCallingConfig", "retrievalConfig"},
	"FunctionCallingConfig":  {"mode", "allowedFunctionNames"},
	"SafetySetting":          {"category", "threshold", "method"},
	"GenerationConfig": {"stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema", "responseModalities", "candidateCount", "maxOutputTokens",
		"temperature", "topP", "topK", "seed", "presencePenalty", "frequencyPenalty", "responseLogprobs", "logprobs", "enableEnhancedCivicAnswers",
		"speechConfig", "thinkingConfig", "imageConfig", "mediaResolution"},
	"ThinkingConfig": {"includeThoughts", "thinkingBudget", "thinkingLevel"},
}

// googleCamel turns a snake_case field name into proto JSON's lowerCamelCase.
func googleCamel(k string) string {
	parts := strings.Split(k, "_")
	for i := 1; i < len(parts); i++ {
		if parts[i] != "" {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
	}
	return strings.Join(parts, "")
}

// googleSnake is the snake_case field path Google's messages quote.
func googleSnake(k string) string {
	var b strings.Builder
	for _, c := range k {
		if c >= 'A' && c <= 'Z' {
			b.WriteByte('_')
			c += 'a' - 'A'
		}
		b.WriteRune(c)
	}
	return b.String()
}

// checkFields walks raw as a message of type msg, failing on the first unknown field as
// a proto JSON parser does. It normalises field names to lowerCamelCase in place.
func checkFields(raw json.RawMessage, msg, at string) (json.RawMessage, string) {
	if len(bytes.TrimSpace(raw)) == 0 || string(raw) == "null" {
		return raw, ""
	}
	fields, known := googleFields[msg]
	if !known {
		return raw, ""
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		return nil, fmt.Sprintf("Invalid JSON payload received. Expected an object at '%s'.", at)
	}
	out := make(map[string]json.RawMessage, len(obj))
	for k, v := range obj {
		name := googleCamel(k)
		ok := false
		for _, f := range fields {
			ok = ok || f == name
		}
		if !ok {
			where := ""
			if at != "" {
				where = fmt.Sprintf(" at '%s'", at)
			}
			return nil, fmt.Sprintf("Invalid JSON payload received. Unknown name %q%s: Cannot find field.", k, where)
		}
		sub := googleSubMessages[msg+"."+name]
		path := googleSnake(name)
		if at != "" {
			path = at + "." + path
		}
		var msgErr string
		switch {
		case sub == "":
		case googleRepeated[msg+"."+name]:
			var list []json.RawMessage
			if json.Unmarshal(v, &list) != nil {
				return nil, fmt.Sprintf("Invalid JSON payload received. Expected a list at '%s'.", path)
			}
			for i := range list {
				if list[i], msgErr = checkFields(list[i], sub, fmt.Sprintf("%s[%d]", path, i)); msgErr != "" {
					return nil, msgErr
				}
			}
			v, _ = json.Marshal(list)
		case googleMaps[msg+"."+name]:
			var m map[string]json.RawMessage
			if json.Unmarshal(v, &m) != nil {
				return nil, fmt.Sprintf("Invalid JSON payload received. Expected an object at '%s'.", path)
			}
			for mk := range m {
				if m[mk], msgErr = checkFields(m[mk], sub, path+"["+mk+"]"); msgErr != "" {
					return nil, msgErr
				}
			}
			v, _ = json.Marshal(m)
		default:
			if v, msgErr = checkFields(v, sub, path); msgErr != "" {
				return nil, msgErr
			}
		}
		out[name] = v
	}
	b, _ := json.Marshal(out)
	return b, ""
}

// googleSubMessages are the message types of message-typed fields; scalars and free-form
// values (args, response, default, example) have none.
var googleSubMessages = map[string]string{
	"GenerateContentRequest.contents": "Content", "GenerateContentRequest.systemInstruction": "Content",
	"GenerateContentRequest.tools": "Tool", "GenerateContentRequest.toolConfig": "ToolConfig",
	"GenerateContentRequest.safetySettings": "SafetySetting", "GenerateContentRequest.generationConfig": "GenerationConfig",
	"Content.parts": "Part", "Part.inlineData": "Blob", "Part.fileData": "FileData",
	"Part.functionCall": "FunctionCall", "Part.functionResponse": "FunctionResponse",
	"Tool.functionDeclarations": "FunctionDeclaration", "FunctionDeclaration.parameters": "Schema",
	"FunctionDeclaration.response": "Schema", "Schema.properties": "Schema", "Schema.items": "Schema",
	"Schema.anyOf": "Schema", "ToolConfig.functionCallingConfig": "FunctionCallingConfig",
	"GenerationConfig.responseSchema": "Schema", "GenerationConfig.thinkingConfig": "ThinkingConfig",
}

var (
	googleRepeated = map[string]bool{
		"GenerateContentRequest.contents": true, "GenerateContentRequest.tools": true,
		"GenerateContentRequest.safetySettings": true, "Content.parts": true,
		"Tool.functionDeclarations": true, "Schema.anyOf": true,
	}
	googleMaps = map[string]bool{"Schema.properties": true}

	googleFunctionName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}$`)
	googleSchemaTypes  = map[string]bool{"STRING": true, "NUMBER": true, "INTEGER": true, "BOOLEAN": true, "ARRAY": true, "OBJECT": true, "NULL": true}
	googleFormats      = map[string]map[string]bool{
		"STRING": {"enum": true, "date-time": true}, "INTEGER": {"int32": true, "int64": true}, "NUMBER": {"float": true, "double": true},
	}
	googleMimeTypes = map[string]bool{"text/plain": true, "application/json": true, "text/x.enum": true}
)

// checkGenerate decodes and checks a generateContent request, returning the first
// problem as the API words it.
func checkGenerate(body []byte, model string, vertex bool) (*googleReq, string) {
	norm, msg := checkFields(body, "GenerateContentRequest", "")
	if msg != "" {
		return nil, msg
	}
	var req googleReq
	if err := json.Unmarshal(norm, &req); err != nil {
		return nil, "Invalid JSON payload received. " + err.Error()
	}
	if len(req.Contents) == 0 {
		return nil, "* GenerateContentRequest.contents: contents is not specified\n"
	}
	if si := req.SystemInstruction; si != nil {
		if len(si.Parts) == 0 {
			return nil, "* GenerateContentRequest.system_instruction.parts: contents.parts must not be empty.\n"
		}
		for j, p := range si.Parts {
			if p.Text == nil || *p.Text == "" {
				return nil, fmt.Sprintf("* GenerateContentRequest.system_instruction.parts[%d]: system instructions must be non-empty text\n", j)
			}
		}
	}
	gemini3 := strings.Contains(model, "gemini-3")
	var calls []string // the function calls of the previous model turn
	for i, c := range req.Contents {
		switch {
		case c.Role == "" && vertex:
			return nil, "Please use a valid role: user, model."
		case c.Role != "" && c.Role != "user" && c.Role != "model":
			return nil, "Please use a valid role: user, model."
		case len(c.Parts) == 0:
			return nil, fmt.Sprintf("* GenerateContentRequest.contents[%d].parts: contents.parts must not be empty.\n", i)
		}
		var turnCalls, responses []string
		for j, p := range c.Parts {
			at := fmt.Sprintf("GenerateContentRequest.contents[%d].parts[%d]", i, j)
			if msg := checkPart(p, at, vertex); msg != "" {
				return nil, msg
			}
			switch {
			case p.FunctionCall != nil && c.Role != "model":
				return nil, fmt.Sprintf("* %s.function_call: function calls are only allowed in model turns\n", at)
			case p.FunctionCall != nil:
				if gemini3 && len(turnCalls) == 0 && p.ThoughtSignature == "" {
					return nil, fmt.Sprintf("Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call `default_api:%s` , position %d. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details.", p.FunctionCall.Name, i+1)
				}
				turnCalls = append(turnCalls, p.FunctionCall.Name)
			case p.FunctionResponse != nil && c.Role == "model":
				return nil, fmt.Sprintf("* %s.function_response: function responses are only allowed in user turns\n", at)
			case p.FunctionResponse != nil:
				responses = append(responses, p.FunctionResponse.Name)
			}
		}
		if len(turnCalls) > 0 && (i == 0 || req.Contents[i-1].Role == "model") {
			return nil, "Please ensure that function call turn comes immediately after a user turn or after a function response turn."
		}
		if len(calls) > 0 {
			if len(responses) != len(calls) {
				return nil, "Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn."
			}
			for _, name := range responses {
				if !containsString(calls, name) {
					return nil, fmt.Sprintf("Please ensure that function response turn comes immediately after a function call turn. Function response %q answers no function call.", name)
				}
			}
		} else if len(responses) > 0 {
			return nil, "Please ensure that function response turn comes immediately after a function call turn."
		}
		calls = turnCalls
	}
	names := map[string]bool{}
	for i, t := range req.Tools {
		for j, d := range t.FunctionDeclarations {
			at := fmt.Sprintf("GenerateContentRequest.tools[%d].function_declarations[%d]", i, j)
			if !googleFunctionName.MatchString(d.Name) {
				return nil, fmt.Sprintf("* %s.name: Invalid function name. Must start with a letter or an underscore. Must be alphameric (a-z, A-Z, 0-9), underscores (_), dots (.), colons (:) or dashes (-), with a maximum length of 64.\n", at)
			}
			if names[d.Name] {
				return nil, fmt.Sprintf("* %s.name: Duplicate function declaration found: %s\n", at, d.Name)
			}
			names[d.Name] = true
			if msg := checkSchema(d.Parameters, at+".parameters"); msg != "" {
				return nil, msg
			}
		}
	}
	if tc := req.ToolConfig; tc != nil && tc.FunctionCallingConfig != nil {
		fc := tc.FunctionCallingConfig
		const at = "GenerateContentRequest.tool_config.function_calling_config"
		switch strings.ToUpper(fc.Mode) {
		case "", "MODE_UNSPECIFIED", "AUTO", "NONE":
			if len(fc.AllowedFunctionNames) > 0 {
				return nil, fmt.Sprintf("* %s.allowed_function_names: allowed_function_names can only be set when the mode is ANY or VALIDATED.\n", at)
			}
		case "ANY", "VALIDATED":
		default:
			return nil, fmt.Sprintf("Invalid value at 'tool_config.function_calling_config.mode' (type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), %q", fc.Mode)
		}
		for _, n := range fc.AllowedFunctionNames {
			if !names[n] {
				return nil, fmt.Sprintf("* %s.allowed_function_names: function %q is not declared in tools.\n", at, n)
			}
		}
	}
	for i, s := range req.SafetySettings {
		if s.Category == "" || s.Threshold == "" {
			return nil, fmt.Sprintf("* GenerateContentRequest.safety_settings[%d]: category and threshold are required\n", i)
		}
	}
	if gc := req.GenerationConfig; gc != nil {
		const at = "GenerateContentRequest.generation_config"
		switch {
		case gc.Temperature != nil && (*gc.Temperature < 0 || *gc.Temperature > 2):
			return nil, fmt.Sprintf("* %s.temperature: temperature must be between 0 and 2\n", at)
		case gc.TopP != nil && (*gc.TopP < 0 || *gc.TopP > 1):
			return nil, fmt.Sprintf("* %s.top_p: top_p must be between 0 and 1\n", at)
		case gc.CandidateCount != nil && (*gc.CandidateCount < 1 || *gc.CandidateCount > 8):
			return nil, fmt.Sprintf("* %s.candidate_count: candidate_count must be between 1 and 8\n", at)
		case gc.MaxOutputTokens != nil && *gc.MaxOutputTokens < 1:
			return nil, fmt.Sprintf("* %s.max_output_tokens: max_output_tokens must be positive\n", at)
		case len(gc.StopSequences) > 5:
			return nil, fmt.Sprintf("* %s.stop_sequences: at most 5 stop sequences are allowed\n", at)
		case gc.ResponseMimeType != "" && !googleMimeTypes[gc.ResponseMimeType]:
			return nil, fmt.Sprintf("* %s.response_mime_type: allowed mimetypes are `text/plain`, `application/json`, and `text/x.enum`.\n", at)
		case len(gc.ResponseSchema) > 0 && gc.ResponseMimeType != "application/json" && gc.ResponseMimeType != "text/x.enum":
			return nil, fmt.Sprintf("* %s.response_schema: response_mime_type must be application/json or text/x.enum when response_schema is set.\n", at)
		case gc.ThinkingConfig != nil && gc.ThinkingConfig.ThinkingBudget != nil && gc.ThinkingConfig.ThinkingLevel != "":
			return nil, "You can only set only one of thinking budget and thinking level."
		}
		if msg := checkSchema(gc.ResponseSchema, at+".response_schema"); msg != "" {
			return nil, msg
		}
	}
	return &req, ""
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// checkPart checks that a part carries exactly one kind of data, and that data.
func checkPart(p googlePart, at string, vertex bool) string {
	n := 0
	for _, set := range []bool{p.Text != nil, p.InlineData != nil, p.FileData != nil, p.FunctionCall != nil,
		p.FunctionResponse != nil, len(p.ExecutableCode) > 0, len(p.CodeExecutionResult) > 0} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return fmt.Sprintf("* %s.data: required oneof field 'data' must have one initialized field\n", at)
	case n > 1:
		return fmt.Sprintf("* %s.data: only one of the oneof fields of 'data' may be set\n", at)
	case p.Text != nil && *p.Text == "" && p.ThoughtSignature == "":
		return "Unable to submit request because it has an empty text parameter. Add a value to the parameter and try again."
	case p.InlineData != nil:
		if p.InlineData.MimeType == "" {
			return fmt.Sprintf("* %s.inline_data.mime_type: mime_type is required\n", at)
		}
		if _, err := base64.StdEncoding.DecodeString(p.InlineData.Data); err != nil || p.InlineData.Data == "" {
			return fmt.Sprintf("Invalid value at '%s.inline_data.data' (TYPE_BYTES), Base64 decoding failed", strings.TrimPrefix(at, "GenerateContentRequest."))
		}
	case p.FileData != nil:
		switch {
		case p.FileData.FileURI == "":
			return fmt.Sprintf("* %s.file_data.file_uri: file_uri is required\n", at)
		case vertex && p.FileData.MimeType == "":
			return fmt.Sprintf("* %s.file_data.mime_type: mime_type is required\n", at)
		case !strings.HasPrefix(p.FileData.FileURI, "https://") && !strings.HasPrefix(p.FileData.FileURI, "http://") && !strings.HasPrefix(p.FileData.FileURI, "gs://"):
			return fmt.Sprintf("* %s.file_data.file_uri: Unsupported file uri: %s\n", at, p.FileData.FileURI)
		}
	case p.FunctionCall != nil:
		if p.FunctionCall.Name == "" {
			return fmt.Sprintf("* %s.function_call.name: Name cannot be empty.\n", at)
		}
		if a := bytes.TrimSpace(p.FunctionCall.Args); len(a) > 0 && a[0] != '{' {
			return fmt.Sprintf("Invalid value at '%s.function_call.args' (type.googleapis.com/google.protobuf.Struct), expected an object", strings.TrimPrefix(at, "GenerateContentRequest."))
		}
	case p.FunctionResponse != nil:
		r := bytes.TrimSpace(p.FunctionResponse.Response)
		switch {
		case p.FunctionResponse.Name == "":
			return fmt.Sprintf("* %s.function_response.name: Name cannot be empty.\n", at)
		case len(r) == 0 || r[0] != '{':
			return fmt.Sprintf("Invalid value at '%s.function_response.response' (type.googleapis.com/google.protobuf.Struct), expected an object", strings.TrimPrefix(at, "GenerateContentRequest."))
		}
	}
	return ""
}

// checkSchema checks a Schema beyond its field names: types, formats, enums, object
// properties and required names.
func checkSchema(raw json.RawMessage, at string) string {
	if len(bytes.TrimSpace(raw)) == 0 || string(raw) == "null" {
		return ""
	}
	var s struct {
		Type       string                     `json:"type"`
		Format     string                     `json:"format"`
		Enum       []json.RawMessage          `json:"enum"`
		Properties map[string]json.RawMessage `json:"properties"`
		Required   []string                   `json:"required"`
		Items      json.RawMessage            `json:"items"`
		AnyOf      []json.RawMessage          `json:"anyOf"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return fmt.Sprintf("Invalid JSON payload received. %v at '%s'", err, at)
	}
	typ := strings.ToUpper(s.Type)
	var props map[string]bool
	if _, ok := rawMembers(raw)["properties"]; ok {
		props = map[string]bool{}
	}
	switch {
	case typ != "" && !googleSchemaTypes[typ]:
		return fmt.Sprintf("Invalid value at '%s.type' (type.googleapis.com/google.ai.generativelanguage.v1beta.Type), %q", strings.TrimPrefix(at, "GenerateContentRequest."), s.Type)
	case s.Format != "" && !googleFormats[typ][s.Format]:
		return fmt.Sprintf("* %s.format: only 'enum' and 'date-time' are supported for STRING type, 'int32' and 'int64' for INTEGER, 'float' and 'double' for NUMBER\n", at)
	case typ == "OBJECT" && props != nil && len(s.Properties) == 0:
		return fmt.Sprintf("* %s.properties: should be non-empty for OBJECT type\n", at)
	}
	for _, e := range s.Enum {
		if len(e) == 0 || e[0] != '"' {
			return fmt.Sprintf("Invalid value at '%s.enum' (TYPE_STRING), %s", strings.TrimPrefix(at, "GenerateContentRequest."), e)
		}
	}
	for i, r := range s.Required {
		if _, ok := s.Properties[r]; !ok {
			return fmt.Sprintf("* %s.required[%d]: property is not defined\n", at, i)
		}
	}
	for name, p := range s.Properties {
		if msg := checkSchema(p, at+".properties["+name+"].value"); msg != "" {
			return msg
		}
	}
	if msg := checkSchema(s.Items, at+".items"); msg != "" {
		return msg
	}
	for i, a := range s.AnyOf {
		if msg := checkSchema(a, fmt.Sprintf("%s.any_of[%d]", at, i)); msg != "" {
			return msg
		}
	}
	return ""
}

func rawMembers(raw json.RawMessage) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	json.Unmarshal(raw, &m)
	return m
}

// googleAnswer is what the fake says to a request.
type googleAnswer struct {
	thought string // a thought summary, when includeThoughts
	text    string
	tool    string // a function to call with {"text": text}
	sig     string // its thought signature (Gemini 3)
	prompt  int    // prompt tokens
}

func (a googleAnswer) args() json.RawMessage {
	b, _ := json.Marshal(map[string]string{"text": a.text})
	return b
}

// answer builds the reply to a checked request; f.mu is held.
func (f *Google) answer(req *googleReq, model string) googleAnswer {
	var prompt string
	words := 0
	count := func(c *googleContent) {
		for _, p := range c.Parts {
			if p.Text != nil {
				words += countTokens(*p.Text)
			}
			if p.FunctionResponse != nil {
				words += countTokens(string(p.FunctionResponse.Response))
			}
		}
	}
	if req.SystemInstruction != nil {
		count(req.SystemInstruction)
	}
	for i := range req.Contents {
		c := &req.Contents[i]
		count(c)
		if c.Role == "model" {
			continue
		}
		var texts, results []string
		for _, p := range c.Parts {
			switch {
			case p.Text != nil:
				texts = append(texts, *p.Text)
			case p.FunctionResponse != nil:
				results = append(results, string(p.FunctionResponse.Response))
			}
		}
		if len(texts) == 0 {
			texts = results
		}
		prompt = strings.Join(texts, " ")
	}
	a := googleAnswer{text: "You said: " + prompt, prompt: words}
	gc := req.GenerationConfig
	if gc != nil && gc.ResponseMimeType == "application/json" {
		a.text = string(a.args())
	}
	if gc != nil && gc.ThinkingConfig != nil && gc.ThinkingConfig.IncludeThoughts {
		a.thought = "Thinking about: " + prompt
	}
	if tc := req.ToolConfig; tc != nil && tc.FunctionCallingConfig != nil && strings.EqualFold(tc.FunctionCallingConfig.Mode, "ANY") {
		if names := tc.FunctionCallingConfig.AllowedFunctionNames; len(names) > 0 {
			a.tool = names[0]
		} else if len(req.Tools) > 0 && len(req.Tools[0].FunctionDeclarations) > 0 {
			a.tool = req.Tools[0].FunctionDeclarations[0].Name
		}
		if a.tool != "" && strings.Contains(model, "gemini-3") {
			f.ids++
			a.sig = base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("fake-signature-%d", f.ids)))
		}
	}
	return a
}

func (f *Google) generate(w http.ResponseWriter, r *http.Request, model string, body []byte, vertex, stream bool) {
	req, msg := checkGenerate(body, model, vertex)
	if msg != "" {
		writeGoogleError(w, 400, msg)
		return
	}
	f.mu.Lock()
	a := f.answer(req, model)
	f.ids++
	id := fmt.Sprintf("fake-response-%04d", f.ids)
	brk, broken := "", false
	if stream && len(f.breaks) > 0 {
		brk, f.breaks, broken = f.breaks[0], f.breaks[1:], true
	}
	f.mu.Unlock()
	if f.MaxInputTokens > 0 && a.prompt > f.MaxInputTokens {
		if vertex {
			writeGoogleError(w, 400, fmt.Sprintf("Unable to submit request because the input token count is %d but model only supports up to %d. Reduce the input token count and try again.", a.prompt, f.MaxInputTokens))
		} else {
			writeGoogleError(w, 400, fmt.Sprintf("The input token count (%d) exceeds the maximum number of tokens allowed (%d).", a.prompt, f.MaxInputTokens))
		}
		return
	}
	n := 1
	if gc := req.GenerationConfig; gc != nil && gc.CandidateCount != nil {
		n = *gc.CandidateCount
	}
	if stream {
		f.stream(w, r, model, id, a, n, brk, broken)
		return
	}
	var parts []map[string]any
	if a.thought != "" {
		parts = append(parts, map[string]any{"text": a.thought, "thought": true})
	}
	if a.tool != "" {
		parts = append(parts, googleCallPart(a))
	} else {
		parts = append(parts, map[string]any{"text": a.text})
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	b, _ := json.MarshalIndent(googleResponse(model, id, n, parts, "STOP", f.finalUsage(a, n)), "", "  ")
	w.Write(b)
}

func googleCallPart(a googleAnswer) map[string]any {
	p := map[string]any{"functionCall": map[string]any{"name": a.tool, "args": a.args()}}
	if a.sig != "" {
		p["thoughtSignature"] = a.sig
	}
	return p
}

func googleResponse(model, id string, n int, parts []map[string]any, finish string, usage map[string]any) map[string]any {
	cands := make([]map[string]any, n)
	for i := range cands {
		c := map[string]any{"index": i}
		if parts != nil {
			c["content"] = map[string]any{"parts": parts, "role": "model"}
		}
		if finish != "" {
			c["finishReason"] = finish
		}
		cands[i] = c
	}
	resp := map[string]any{"candidates": cands, "modelVersion": model, "responseId": id}
	if usage != nil {
		resp["usageMetadata"] = usage
	}
	return resp
}

// finalUsage is the usageMetadata of a complete answer: f.Usage when set.
func (f *Google) finalUsage(a googleAnswer, n int) map[string]any {
	if f.Usage != nil {
		return f.Usage
	}
	return googleUsage(a, n, true)
}

// googleUsage is usageMetadata; final says the answer is complete.
func googleUsage(a googleAnswer, n int, final bool) map[string]any {
	u := map[string]any{"promptTokenCount": a.prompt}
	out := 0
	if final {
		out = n * countTokens(a.text)
		u["candidatesTokenCount"] = out
	}
	total := a.prompt + out
	if a.thought != "" {
		th := n * countTokens(a.thought)
		u["thoughtsTokenCount"] = th
		total += th
	}
	u["totalTokenCount"] = total
	return u
}

// stream answers streamGenerateContent: with ?alt=sse, server-sent events with CRLF line
// endings, each flushed as it is written; without it, the JSON array of the same
// responses, as the API answers.
func (f *Google) stream(w http.ResponseWriter, r *http.Request, model, id string, a googleAnswer, n int, brk string, broken bool) {
	var events []map[string]any
	if a.thought != "" {
		events = append(events, googleResponse(model, id, n, []map[string]any{{"text": a.thought, "thought": true}}, "", googleUsage(a, n, false)))
	}
	if a.tool != "" {
		events = append(events, googleResponse(model, id, n, []map[string]any{googleCallPart(a)}, "", googleUsage(a, n, false)))
	} else {
		for _, word := range strings.SplitAfter(a.text, " ") {
			events = append(events, googleResponse(model, id, n, []map[string]any{{"text": word}}, "", googleUsage(a, n, false)))
		}
	}
	last := events[len(events)-1]
	for _, c := range last["candidates"].([]map[string]any) {
		c["finishReason"] = "STOP"
	}
	last["usageMetadata"] = f.finalUsage(a, n)

	if r.URL.Query().Get("alt") != "sse" {
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		b, _ := json.MarshalIndent(events, "", "  ")
		w.Write(b)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	flusher, _ := w.(http.Flusher)
	send := func(v any) {
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "data: %s\r\n\r\n", b)
		if flusher != nil {
			flusher.Flush()
		}
	}
	if broken && len(events) == 1 {
		for _, c := range last["candidates"].([]map[string]any) {
			delete(c, "finishReason")
		}
	}
	for i, ev := range events {
		send(ev)
		if i == 0 && broken {
			if brk != "" {
				code := googleCodes[brk]
				if code == 0 {
					code = 500
				}
				send(map[string]any{"error": googleError{Code: code, Message: "the fake provider was told to break this stream", Status: brk}})
			}
			return
		}
	}
}

// googleVector is a deterministic unit vector of dims dimensions derived from text.
func googleVector(text string, dims int) []float32 {
	if dims <= 0 {
		return embed(text)
	}
	vec := make([]float32, dims)
	var norm float64
	sum := sha256.Sum256([]byte(text))
	for i := range vec {
		if i%32 == 0 && i > 0 {
			sum = sha256.Sum256(sum[:])
		}
		vec[i] = float32(int8(sum[i%32])) / 128
		norm += float64(vec[i]) * float64(vec[i])
	}
	for i := range vec {
		vec[i] /= float32(math.Sqrt(norm) + 1e-9)
	}
	return vec
}

var googleTaskTypes = map[string]bool{
	"": true, "TASK_TYPE_UNSPECIFIED": true, "RETRIEVAL_QUERY": true, "RETRIEVAL_DOCUMENT": true,
	"SEMANTIC_SIMILARITY": true, "CLASSIFICATION": true, "CLUSTERING": true,
	"QUESTION_ANSWERING": true, "FACT_VERIFICATION": true, "CODE_RETRIEVAL_QUERY": true,
}

// batchEmbed answers models.batchEmbedContents.
func (f *Google) batchEmbed(w http.ResponseWriter, model string, body []byte) {
	var req struct {
		Requests []struct {
			Model   string `json:"model"`
			Content struct {
				Parts []struct {
					Text string `json:"text"`
				} `json:"parts"`
			} `json:"content"`
			TaskType             string `json:"taskType"`
			Title                string `json:"title"`
			OutputDimensionality int    `json:"outputDimensionality"`
		} `json:"requests"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeGoogleError(w, 400, "Invalid JSON payload received. "+err.Error())
		return
	}
	if len(req.Requests) == 0 {
		writeGoogleError(w, 400, "* BatchEmbedContentsRequest.requests: requests is not specified\n")
		return
	}
	out := make([]map[string]any, len(req.Requests))
	for i, r := range req.Requests {
		at := fmt.Sprintf("* BatchEmbedContentsRequest.requests[%d]", i)
		var text strings.Builder
		for _, p := range r.Content.Parts {
			text.WriteString(p.Text)
		}
		switch {
		case r.Model != "models/"+model:
			writeGoogleError(w, 400, fmt.Sprintf("%s.model: the model of every request must be the model of the URL (models/%s), not %q\n", at, model, r.Model))
			return
		case text.Len() == 0:
			writeGoogleError(w, 400, fmt.Sprintf("%s.content.parts: contents.parts must not be empty.\n", at))
			return
		case !googleTaskTypes[r.TaskType]:
			writeGoogleError(w, 400, fmt.Sprintf("Invalid value at 'requests[%d].task_type' (type.googleapis.com/google.ai.generativelanguage.v1beta.TaskType), %q", i, r.TaskType))
			return
		}
		out[i] = map[string]any{"values": googleVector(text.String(), r.OutputDimensionality)}
	}
	writeJSON(w, map[string]any{"embeddings": out})
}

// predictEmbed answers a Vertex AI text embedding model's :predict.
func (f *Google) predictEmbed(w http.ResponseWriter, body []byte) {
	var req struct {
		Instances []struct {
			Content  *string `json:"content"`
			TaskType string  `json:"task_type"`
			Title    string  `json:"title"`
		} `json:"instances"`
		Parameters *struct {
			OutputDimensionality int  `json:"outputDimensionality"`
			AutoTruncate         bool `json:"autoTruncate"`
		} `json:"parameters"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeGoogleError(w, 400, "Invalid JSON payload received. "+err.Error())
		return
	}
	if len(req.Instances) == 0 {
		writeGoogleError(w, 400, "* PredictRequest.instances: instances is not specified\n")
		return
	}
	dims := 0
	if req.Parameters != nil {
		dims = req.Parameters.OutputDimensionality
	}
	preds := make([]map[string]any, len(req.Instances))
	chars := 0
	for i, in := range req.Instances {
		switch {
		case in.Content == nil || *in.Content == "":
			writeGoogleError(w, 400, fmt.Sprintf("Unable to submit request because instance %d has no content. Add content and try again.", i))
			return
		case !googleTaskTypes[in.TaskType]:
			writeGoogleError(w, 400, fmt.Sprintf("Unable to submit request because task_type %q of instance %d is not supported.", in.TaskType, i))
			return
		}
		chars += len(*in.Content)
		preds[i] = map[string]any{"embeddings": map[string]any{
			"statistics": map[string]any{"truncated": false, "token_count": countTokens(*in.Content)},
			"values":     googleVector(*in.Content, dims),
		}}
	}
	writeJSON(w, map[string]any{"predictions": preds, "metadata": map[string]any{"billableCharacterCount": chars}})
}

package providertest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2/google"
)

// postGoogle sends body to the fake at path with headers.
func postGoogle(t *testing.T, base, path, body string, headers map[string]string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("content-type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, b
}

type googleErrorBody struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
		Details []struct {
			Reason string `json:"reason"`
		} `json:"details"`
	} `json:"error"`
}

func TestGoogleRejectsWhatTheAPIRejects(t *testing.T) {
	_, gemini := StartGemini(t, "AIza-right")
	vfake, vertex := StartVertex(t, "proj-1", "europe-west4")
	token := vfake.AccessToken()
	const gpath = "/v1beta/models/gemini-2.5-flash:generateContent"
	const vpath = "/v1/projects/proj-1/locations/europe-west4/publishers/google/models/gemini-2.5-flash:generateContent"
	key := map[string]string{"x-goog-api-key": "AIza-right"}
	bearer := map[string]string{"authorization": "Bearer " + token}
	const hi = `"contents":[{"role":"user","parts":[{"text":"hi"}]}]`
	const call = `{"role":"model","parts":[{"functionCall":{"name":"f","args":{}}}]}`
	tool := func(params string) string {
		return `{` + hi + `,"tools":[{"functionDeclarations":[{"name":"f","parameters":` + params + `}]}]}`
	}
	tests := []struct {
		name       string
		base, path string
		headers    map[string]string
		body       string
		status     int
		googleStat string
		message    string // a part of the message
	}{
		{"gemini without a key", gemini.URL, gpath, nil, `{` + hi + `}`, 403, "PERMISSION_DENIED", "unregistered callers"},
		{"gemini wrong key", gemini.URL, gpath, map[string]string{"x-goog-api-key": "AIza-wrong"}, `{` + hi + `}`, 400, "INVALID_ARGUMENT", "API key not valid"},
		{"gemini key in the query", gemini.URL, gpath + "?key=AIza-right", nil, `{` + hi + `}`, 200, "", ""},
		{"vertex without a token", vertex.URL, vpath, nil, `{` + hi + `}`, 401, "UNAUTHENTICATED", "missing required authentication credential"},
		{"vertex unknown token", vertex.URL, vpath, map[string]string{"authorization": "Bearer ya29.forged"}, `{` + hi + `}`, 401, "UNAUTHENTICATED", "invalid authentication credentials"},
		{"vertex API key instead of a token", vertex.URL, vpath, key, `{` + hi + `}`, 401, "UNAUTHENTICATED", "missing required authentication credential"},
		{"vertex other project", vertex.URL, strings.Replace(vpath, "proj-1", "proj-2", 1), bearer, `{` + hi + `}`, 403, "PERMISSION_DENIED", "aiplatform.endpoints.predict"},
		{"vertex other location", vertex.URL, strings.Replace(vpath, "europe-west4", "us-east1", 1), bearer, `{` + hi + `}`, 403, "PERMISSION_DENIED", "aiplatform.endpoints.predict"},
		{"unknown path", gemini.URL, "/v1beta/gemini-2.5-flash:generateContent", key, `{` + hi + `}`, 404, "NOT_FOUND", "was not found"},
		{"unknown method", gemini.URL, "/v1beta/models/gemini-2.5-flash:predict", key, `{` + hi + `}`, 404, "NOT_FOUND", "not supported for predict"},
		{"not JSON", gemini.URL, gpath, key, `{`, 400, "INVALID_ARGUMENT", "Invalid JSON payload"},
		{"unknown field", gemini.URL, gpath, key, `{` + hi + `,"temperature":1}`, 400, "INVALID_ARGUMENT", `Unknown name "temperature": Cannot find field.`},
		{"unknown nested field", gemini.URL, gpath, key, `{` + hi + `,"generationConfig":{"max_tokens":5}}`, 400, "INVALID_ARGUMENT", `Unknown name "max_tokens" at 'generation_config'`},
		{"snake_case fields", gemini.URL, gpath, key, `{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"generation_config":{"max_output_tokens":5},"system_instruction":{"parts":[{"text":"x"}]}}`, 200, "", ""},
		{"no contents", gemini.URL, gpath, key, `{"contents":[]}`, 400, "INVALID_ARGUMENT", "contents is not specified"},
		{"bad role", gemini.URL, gpath, key, `{"contents":[{"role":"assistant","parts":[{"text":"hi"}]}]}`, 400, "INVALID_ARGUMENT", "Please use a valid role: user, model."},
		{"vertex requires a role", vertex.URL, vpath, bearer, `{"contents":[{"parts":[{"text":"hi"}]}]}`, 400, "INVALID_ARGUMENT", "Please use a valid role"},
		{"gemini defaults the role", gemini.URL, gpath, key, `{"contents":[{"parts":[{"text":"hi"}]}]}`, 200, "", ""},
		{"empty parts", gemini.URL, gpath, key, `{"contents":[{"role":"user","parts":[]}]}`, 400, "INVALID_ARGUMENT", "contents.parts must not be empty"},
		{"empty text", gemini.URL, gpath, key, `{"contents":[{"role":"user","parts":[{"text":""}]}]}`, 400, "INVALID_ARGUMENT", "empty text parameter"},
		{"two kinds of data", gemini.URL, gpath, key, `{"contents":[{"role":"user","parts":[{"text":"a","inlineData":{"mimeType":"image/png","data":"AAAA"}}]}]}`, 400, "INVALID_ARGUMENT", "only one of the oneof fields"},
		{"bad base64", gemini.URL, gpath, key, `{"contents":[{"role":"user","parts":[{"inlineData":{"mimeType":"image/png","data":"not base64!"}}]}]}`, 400, "INVALID_ARGUMENT", "Base64 decoding failed"},
		{"vertex file without mime type", vertex.URL, vpath, bearer, `{"contents":[{"role":"user","parts":[{"fileData":{"fileUri":"gs://b/o.png"}}]}]}`, 400, "INVALID_ARGUMENT", "mime_type is required"},
		{"function call from the user", gemini.URL, gpath, key, `{"contents":[{"role":"user","parts":[{"functionCall":{"name":"f"}}]}]}`, 400, "INVALID_ARGUMENT", "only allowed in model turns"},
		{"function call first", gemini.URL, gpath, key, `{"contents":[` + call + `]}`, 400, "INVALID_ARGUMENT", "function call turn comes immediately after a user turn"},
		{"function call after a model turn", gemini.URL, gpath, key, `{"contents":[{"role":"user","parts":[{"text":"a"}]},{"role":"model","parts":[{"text":"b"}]},` + call + `]}`, 400, "INVALID_ARGUMENT", "function call turn comes immediately after a user turn"},
		{"function call unanswered", gemini.URL, gpath, key, `{"contents":[{"role":"user","parts":[{"text":"a"}]},` + call + `,{"role":"user","parts":[{"text":"b"}]}]}`, 400, "INVALID_ARGUMENT", "number of function response parts is equal to the number of function call parts"},
		{"function response without a call", gemini.URL, gpath, key, `{"contents":[{"role":"user","parts":[{"functionResponse":{"name":"f","response":{}}}]}]}`, 400, "INVALID_ARGUMENT", "function response turn comes immediately after a function call turn"},
		{"function response not an object", gemini.URL, gpath, key, `{"contents":[{"role":"user","parts":[{"text":"a"}]},` + call + `,{"role":"user","parts":[{"functionResponse":{"name":"f","response":"ok"}}]}]}`, 400, "INVALID_ARGUMENT", "expected an object"},
		{"function call answered", gemini.URL, gpath, key, `{"contents":[{"role":"user","parts":[{"text":"a"}]},` + call + `,{"role":"user","parts":[{"functionResponse":{"name":"f","response":{"ok":true}}}]}]}`, 200, "", ""},
		{"gemini 3 call without signature", gemini.URL, strings.Replace(gpath, "gemini-2.5-flash", "gemini-3-pro-preview", 1), key, `{"contents":[{"role":"user","parts":[{"text":"a"}]},` + call + `,{"role":"user","parts":[{"functionResponse":{"name":"f","response":{}}}]}]}`, 400, "INVALID_ARGUMENT", "missing a thought_signature"},
		{"schema with additionalProperties", gemini.URL, gpath, key, tool(`{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}`), 400, "INVALID_ARGUMENT", `Unknown name "additionalProperties" at 'tools[0].function_declarations[0].parameters'`},
		{"schema with $ref", gemini.URL, gpath, key, tool(`{"type":"object","properties":{"a":{"$ref":"#/$defs/A"}}}`), 400, "INVALID_ARGUMENT", `Unknown name "$ref"`},
		{"object without properties", gemini.URL, gpath, key, tool(`{"type":"object","properties":{}}`), 400, "INVALID_ARGUMENT", "should be non-empty for OBJECT type"},
		{"unsupported format", gemini.URL, gpath, key, tool(`{"type":"object","properties":{"a":{"type":"string","format":"email"}}}`), 400, "INVALID_ARGUMENT", "only 'enum' and 'date-time' are supported"},
		{"required but undefined", gemini.URL, gpath, key, tool(`{"type":"object","properties":{"a":{"type":"string"}},"required":["b"]}`), 400, "INVALID_ARGUMENT", "property is not defined"},
		{"bad type", gemini.URL, gpath, key, tool(`{"type":"object","properties":{"a":{"type":"text"}}}`), 400, "INVALID_ARGUMENT", `"text"`},
		{"bad function name", gemini.URL, gpath, key, `{` + hi + `,"tools":[{"functionDeclarations":[{"name":"get weather"}]}]}`, 400, "INVALID_ARGUMENT", "Invalid function name"},
		{"duplicate function", gemini.URL, gpath, key, `{` + hi + `,"tools":[{"functionDeclarations":[{"name":"f"},{"name":"f"}]}]}`, 400, "INVALID_ARGUMENT", "Duplicate function declaration"},
		{"allowed names with AUTO", gemini.URL, gpath, key, `{` + hi + `,"tools":[{"functionDeclarations":[{"name":"f"}]}],"toolConfig":{"functionCallingConfig":{"mode":"AUTO","allowedFunctionNames":["f"]}}}`, 400, "INVALID_ARGUMENT", "only be set when the mode is ANY"},
		{"allowed name undeclared", gemini.URL, gpath, key, `{` + hi + `,"tools":[{"functionDeclarations":[{"name":"f"}]}],"toolConfig":{"functionCallingConfig":{"mode":"ANY","allowedFunctionNames":["g"]}}}`, 400, "INVALID_ARGUMENT", `function "g" is not declared`},
		{"bad mode", gemini.URL, gpath, key, `{` + hi + `,"tools":[{"functionDeclarations":[{"name":"f"}]}],"toolConfig":{"functionCallingConfig":{"mode":"REQUIRED"}}}`, 400, "INVALID_ARGUMENT", `"REQUIRED"`},
		{"temperature out of range", gemini.URL, gpath, key, `{` + hi + `,"generationConfig":{"temperature":2.5}}`, 400, "INVALID_ARGUMENT", "temperature must be between 0 and 2"},
		{"too many candidates", gemini.URL, gpath, key, `{` + hi + `,"generationConfig":{"candidateCount":9}}`, 400, "INVALID_ARGUMENT", "candidate_count"},
		{"too many stop sequences", gemini.URL, gpath, key, `{` + hi + `,"generationConfig":{"stopSequences":["1","2","3","4","5","6"]}}`, 400, "INVALID_ARGUMENT", "at most 5 stop sequences"},
		{"schema without JSON", gemini.URL, gpath, key, `{` + hi + `,"generationConfig":{"responseSchema":{"type":"string"}}}`, 400, "INVALID_ARGUMENT", "response_mime_type must be application/json"},
		{"budget and level", gemini.URL, gpath, key, `{` + hi + `,"generationConfig":{"thinkingConfig":{"thinkingBudget":10,"thinkingLevel":"low"}}}`, 400, "INVALID_ARGUMENT", "only one of thinking budget and thinking level"},
		{"system instruction not text", gemini.URL, gpath, key, `{` + hi + `,"systemInstruction":{"parts":[{"inlineData":{"mimeType":"image/png","data":"AAAA"}}]}}`, 400, "INVALID_ARGUMENT", "non-empty text"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, out := postGoogle(t, tc.base, tc.path, tc.body, tc.headers)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, out)
			}
			if tc.status == 200 {
				return
			}
			var e googleErrorBody
			if err := json.Unmarshal(out, &e); err != nil {
				t.Fatalf("not Google's error shape: %s", out)
			}
			if e.Error.Code != tc.status || e.Error.Status != tc.googleStat || !strings.Contains(e.Error.Message, tc.message) {
				t.Errorf("error %+v, want %d %s containing %q", e.Error, tc.status, tc.googleStat, tc.message)
			}
		})
	}
}

type googleTestResponse struct {
	Candidates []struct {
		Content struct {
			Role  string `json:"role"`
			Parts []struct {
				Text         string `json:"text"`
				Thought      bool   `json:"thought"`
				FunctionCall *struct {
					Name string          `json:"name"`
					Args json.RawMessage `json:"args"`
				} `json:"functionCall"`
				ThoughtSignature string `json:"thoughtSignature"`
			} `json:"parts"`
		} `json:"content"`
		FinishReason string `json:"finishReason"`
		Index        int    `json:"index"`
	} `json:"candidates"`
	UsageMetadata struct {
		PromptTokenCount     int `json:"promptTokenCount"`
		CandidatesTokenCount int `json:"candidatesTokenCount"`
		ThoughtsTokenCount   int `json:"thoughtsTokenCount"`
		TotalTokenCount      int `json:"totalTokenCount"`
	} `json:"usageMetadata"`
	ModelVersion string `json:"modelVersion"`
	ResponseID   string `json:"responseId"`
}

func TestGoogleAnswersGenerateContent(t *testing.T) {
	_, srv := StartGemini(t, "")
	key := map[string]string{"x-goog-api-key": "any"}
	const path = "/v1beta/models/gemini-3-pro-preview:generateContent"
	tests := []struct {
		name, body string
		want       string // the parts as "kind:value" strings, per candidate
		usage      [4]int // prompt, candidates, thoughts, total
	}{
		{"text", `{"systemInstruction":{"parts":[{"text":"be brief"}]},"contents":[{"role":"user","parts":[{"text":"hello there"}]}]}`,
			`[text:You said: hello there]`, [4]int{4, 4, 0, 8}},
		{"last user turn", `{"contents":[{"role":"user","parts":[{"text":"one"}]},{"role":"model","parts":[{"text":"two"}]},{"role":"user","parts":[{"text":"three"},{"text":"four"}]}]}`,
			`[text:You said: three four]`, [4]int{4, 4, 0, 8}},
		{"json and thoughts", `{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"generationConfig":{"responseMimeType":"application/json","thinkingConfig":{"includeThoughts":true}}}`,
			`[thought:Thinking about: hi text:{"text":"You said: hi"}]`, [4]int{1, 3, 3, 7}},
		{"forced call", `{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"tools":[{"functionDeclarations":[{"name":"f"},{"name":"g"}]}],"toolConfig":{"functionCallingConfig":{"mode":"ANY","allowedFunctionNames":["g"]}}}`,
			`[call:g{"text":"You said: hi"} signed]`, [4]int{1, 3, 0, 4}},
		{"two candidates", `{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"generationConfig":{"candidateCount":2}}`,
			`[text:You said: hi] [text:You said: hi]`, [4]int{1, 6, 0, 7}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, out := postGoogle(t, srv.URL, path, tc.body, key)
			if status != 200 {
				t.Fatalf("%d %s", status, out)
			}
			var r googleTestResponse
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatal(err)
			}
			var got []string
			for i, c := range r.Candidates {
				if c.Index != i || c.FinishReason != "STOP" || c.Content.Role != "model" {
					t.Errorf("candidate %d: index %d, finishReason %q, role %q", i, c.Index, c.FinishReason, c.Content.Role)
				}
				var parts []string
				for _, p := range c.Content.Parts {
					switch {
					case p.FunctionCall != nil:
						var args bytes.Buffer
						if err := json.Compact(&args, p.FunctionCall.Args); err != nil {
							t.Fatal(err)
						}
						s := "call:" + p.FunctionCall.Name + args.String()
						if p.ThoughtSignature != "" {
							s += " signed"
						}
						parts = append(parts, s)
					case p.Thought:
						parts = append(parts, "thought:"+p.Text)
					default:
						parts = append(parts, "text:"+p.Text)
					}
				}
				got = append(got, "["+strings.Join(parts, " ")+"]")
			}
			if diff := cmp.Diff(tc.want, strings.Join(got, " ")); diff != "" {
				t.Errorf("parts (-want +got):\n%s", diff)
			}
			u := r.UsageMetadata
			if gotUsage := [4]int{u.PromptTokenCount, u.CandidatesTokenCount, u.ThoughtsTokenCount, u.TotalTokenCount}; gotUsage != tc.usage {
				t.Errorf("usage %v, want %v", gotUsage, tc.usage)
			}
			if r.ModelVersion != "gemini-3-pro-preview" || r.ResponseID == "" {
				t.Errorf("modelVersion %q, responseId %q", r.ModelVersion, r.ResponseID)
			}
		})
	}
}

// googleEvents splits an alt=sse body into its events' data, checking the CRLF framing
// Google writes.
func googleEvents(t *testing.T, b []byte) []googleTestResponse {
	t.Helper()
	if !bytes.HasSuffix(b, []byte("\r\n\r\n")) {
		t.Fatalf("the stream does not end with CRLF CRLF: %q", b)
	}
	var out []googleTestResponse
	for _, ev := range strings.Split(strings.TrimSuffix(string(b), "\r\n\r\n"), "\r\n\r\n") {
		payload, ok := strings.CutPrefix(ev, "data: ")
		var r googleTestResponse
		if !ok || json.Unmarshal([]byte(payload), &r) != nil {
			t.Fatalf("not a data event: %q", ev)
		}
		out = append(out, r)
	}
	return out
}

func TestGoogleStreamsServerSentEvents(t *testing.T) {
	fake, srv := StartVertex(t, "p", "us-central1")
	bearer := map[string]string{"authorization": "Bearer " + fake.AccessToken()}
	const path = "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-flash:streamGenerateContent"
	const body = `{"contents":[{"role":"user","parts":[{"text":"a b"}]}]}`

	status, out := postGoogle(t, srv.URL, path+"?alt=sse", body, bearer)
	if status != 200 {
		t.Fatalf("%d %s", status, out)
	}
	events := googleEvents(t, out)
	var text strings.Builder
	for i, ev := range events {
		if len(ev.Candidates) != 1 {
			t.Fatalf("event %d has %d candidates", i, len(ev.Candidates))
		}
		for _, p := range ev.Candidates[0].Content.Parts {
			text.WriteString(p.Text)
		}
		last := i == len(events)-1
		if (ev.Candidates[0].FinishReason == "STOP") != last {
			t.Errorf("event %d: finishReason %q", i, ev.Candidates[0].FinishReason)
		}
		if last && ev.UsageMetadata.CandidatesTokenCount != 4 {
			t.Errorf("final usage %+v", ev.UsageMetadata)
		}
	}
	if len(events) != 4 || text.String() != "You said: a b" {
		t.Errorf("%d events saying %q", len(events), text.String())
	}

	// Without alt=sse the API answers one JSON array of the same responses.
	status, out = postGoogle(t, srv.URL, path, body, bearer)
	var list []googleTestResponse
	if status != 200 || json.Unmarshal(out, &list) != nil || len(list) != len(events) {
		t.Errorf("without alt=sse: %d %s", status, out)
	}

	fake.BreakNextStream("UNAVAILABLE")
	_, out = postGoogle(t, srv.URL, path+"?alt=sse", body, bearer)
	if !bytes.HasSuffix(out, []byte(`"status":"UNAVAILABLE"}}`+"\r\n\r\n")) || bytes.Count(out, []byte("data: ")) != 2 {
		t.Errorf("broken stream with an error event: %q", out)
	}
	fake.BreakNextStream("")
	_, out = postGoogle(t, srv.URL, path+"?alt=sse", body, bearer)
	if events := googleEvents(t, out); len(events) != 1 || events[0].Candidates[0].FinishReason != "" {
		t.Errorf("cut stream: %q", out)
	}
}

func TestGoogleFailNext(t *testing.T) {
	fake, srv := StartGemini(t, "k")
	fake.FailNext(429, 503)
	key := map[string]string{"x-goog-api-key": "k"}
	const path = "/v1beta/models/gemini-2.5-flash:generateContent"
	const body = `{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`
	for _, want := range []struct {
		status int
		google string
	}{{429, "RESOURCE_EXHAUSTED"}, {503, "UNAVAILABLE"}, {200, ""}} {
		status, out := postGoogle(t, srv.URL, path, body, key)
		var e googleErrorBody
		_ = json.Unmarshal(out, &e)
		if status != want.status || e.Error.Status != want.google {
			t.Errorf("got %d %s, want %d %s", status, out, want.status, want.google)
		}
	}
	if n := len(fake.Requests()); n != 3 {
		t.Errorf("recorded %d requests, want 3", n)
	}
}

func TestGoogleContextWindow(t *testing.T) {
	for _, vertex := range []bool{false, true} {
		var (
			fake  *Google
			base  string
			path  string
			creds map[string]string
			want  string
		)
		if vertex {
			f, srv := StartVertex(t, "p", "global")
			fake, base = f, srv.URL
			path = "/v1/projects/p/locations/global/publishers/google/models/m:generateContent"
			creds = map[string]string{"authorization": "Bearer " + f.AccessToken()}
			want = "Unable to submit request because the input token count is 3 but model only supports up to 2."
		} else {
			f, srv := StartGemini(t, "")
			fake, base = f, srv.URL
			path = "/v1beta/models/m:generateContent"
			creds = map[string]string{"x-goog-api-key": "k"}
			want = "The input token count (3) exceeds the maximum number of tokens allowed (2)."
		}
		fake.MaxInputTokens = 2
		status, out := postGoogle(t, base, path, `{"contents":[{"role":"user","parts":[{"text":"one two three"}]}]}`, creds)
		var e googleErrorBody
		if err := json.Unmarshal(out, &e); err != nil || status != 400 || !strings.HasPrefix(e.Error.Message, want) {
			t.Errorf("vertex=%v: %d %s", vertex, status, out)
		}
	}
}

func TestGoogleEmbeddings(t *testing.T) {
	_, gsrv := StartGemini(t, "k")
	key := map[string]string{"x-goog-api-key": "k"}
	status, out := postGoogle(t, gsrv.URL, "/v1beta/models/gemini-embedding-001:batchEmbedContents",
		`{"requests":[{"model":"models/gemini-embedding-001","content":{"parts":[{"text":"a"}]},"outputDimensionality":40},{"model":"models/gemini-embedding-001","content":{"parts":[{"text":"b"}]}}]}`, key)
	var batch struct {
		Embeddings []struct {
			Values []float64 `json:"values"`
		} `json:"embeddings"`
	}
	if status != 200 || json.Unmarshal(out, &batch) != nil || len(batch.Embeddings) != 2 || len(batch.Embeddings[0].Values) != 40 || len(batch.Embeddings[1].Values) != 8 {
		t.Errorf("batchEmbedContents: %d %s", status, out)
	}
	status, out = postGoogle(t, gsrv.URL, "/v1beta/models/gemini-embedding-001:batchEmbedContents",
		`{"requests":[{"model":"models/other","content":{"parts":[{"text":"a"}]}}]}`, key)
	if status != 400 || !bytes.Contains(out, []byte("the model of every request must be the model of the URL")) {
		t.Errorf("mismatched model: %d %s", status, out)
	}

	vfake, vsrv := StartVertex(t, "p", "us-central1")
	bearer := map[string]string{"authorization": "Bearer " + vfake.AccessToken()}
	const predict = "/v1/projects/p/locations/us-central1/publishers/google/models/text-embedding-005:predict"
	status, out = postGoogle(t, vsrv.URL, predict, `{"instances":[{"content":"one two","task_type":"RETRIEVAL_QUERY"}],"parameters":{"outputDimensionality":16}}`, bearer)
	var pred struct {
		Predictions []struct {
			Embeddings struct {
				Values     []float64 `json:"values"`
				Statistics struct {
					TokenCount int `json:"token_count"`
				} `json:"statistics"`
			} `json:"embeddings"`
		} `json:"predictions"`
	}
	if status != 200 || json.Unmarshal(out, &pred) != nil || len(pred.Predictions) != 1 ||
		len(pred.Predictions[0].Embeddings.Values) != 16 || pred.Predictions[0].Embeddings.Statistics.TokenCount != 2 {
		t.Errorf("predict: %d %s", status, out)
	}
	for _, bad := range []string{`{"instances":[]}`, `{"instances":[{"content":""}]}`, `{"instances":[{"content":"a","task_type":"GUESS"}]}`, `{"instances":[{"text":"a"}]}`} {
		if status, out := postGoogle(t, vsrv.URL, predict, bad, bearer); status != 400 {
			t.Errorf("predict %s: %d %s", bad, status, out)
		}
	}
}

// TestVertexServiceAccountToken points Google's own token source (golang.org/x/oauth2/google,
// what tollgate's vertex_credentials use) at the fake with a service-account key from
// ServiceAccountJSON: the token it obtains must authenticate Vertex AI requests, and a
// revoked one must not.
func TestVertexServiceAccountToken(t *testing.T) {
	fake, srv := StartVertex(t, "proj-1", "us-central1")
	creds, err := google.CredentialsFromJSONWithType(context.Background(), fake.ServiceAccountJSON(t), google.ServiceAccount, "https://www.googleapis.com/auth/cloud-platform")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := creds.TokenSource.Token()
	if err != nil {
		t.Fatal(err)
	}
	if !tok.Valid() || !strings.HasPrefix(tok.AccessToken, "ya29.") || time.Until(tok.Expiry) < 50*time.Minute {
		t.Fatalf("token %+v", tok)
	}
	const path = "/v1/projects/proj-1/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent"
	const body = `{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`
	if status, out := postGoogle(t, srv.URL, path, body, map[string]string{"authorization": "Bearer " + tok.AccessToken}); status != 200 {
		t.Fatalf("with the service account's token: %d %s", status, out)
	}
	fake.RevokeTokens()
	if status, _ := postGoogle(t, srv.URL, path, body, map[string]string{"authorization": "Bearer " + tok.AccessToken}); status != 401 {
		t.Errorf("a revoked token: status %d, want 401", status)
	}

	// A JWT the service account signs itself is accepted too; one signed by another key,
	// or asking the token endpoint without the cloud-platform scope, is not.
	var sa struct {
		ClientEmail string `json:"client_email"`
		TokenURI    string `json:"token_uri"`
	}
	if err := json.Unmarshal(fake.ServiceAccountJSON(t), &sa); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	claims := map[string]any{"iss": sa.ClientEmail, "sub": sa.ClientEmail, "aud": "https://aiplatform.googleapis.com/", "iat": now, "exp": now + 3600}
	self := signJWT(t, fake.key, claims)
	if status, out := postGoogle(t, srv.URL, path, body, map[string]string{"authorization": "Bearer " + self}); status != 200 {
		t.Errorf("self-signed JWT: %d %s", status, out)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if status, _ := postGoogle(t, srv.URL, path, body, map[string]string{"authorization": "Bearer " + signJWT(t, other, claims)}); status != 401 {
		t.Errorf("JWT signed by another key: status %d, want 401", status)
	}
	claims["aud"], claims["scope"] = sa.TokenURI, "https://www.googleapis.com/auth/devstorage.read_only"
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {signJWT(t, fake.key, claims)}}
	res, err := http.PostForm(sa.TokenURI, form)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 400 {
		t.Errorf("token without the cloud-platform scope: status %d, want 400", res.StatusCode)
	}
}

func signJWT(t *testing.T, key *rsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signed := enc(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." + enc(claims)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"

	"github.com/tollgate-dev/tollgate/translate/providertest"
)

// streamResult is what a client made of a streamed chat completion.
type streamResult struct {
	acc         openai.ChatCompletionAccumulator
	chunks      int
	usageChunks int // chunks with no choices and a usage: the include_usage chunk
}

// streamChat streams params through client, as an application would.
func streamChat(t *testing.T, client openai.Client, params openai.ChatCompletionNewParams) *streamResult {
	t.Helper()
	stream := client.Chat.Completions.NewStreaming(context.Background(), params)
	r := &streamResult{}
	for stream.Next() {
		c := stream.Current()
		r.acc.AddChunk(c)
		r.chunks++
		if len(c.Choices) == 0 && c.Usage.TotalTokens > 0 {
			r.usageChunks++
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	return r
}

// checkUsageChunk asserts the client got the usage chunk exactly when it asked for it.
func (r *streamResult) checkUsageChunk(t *testing.T, asked bool) {
	t.Helper()
	switch {
	case asked && (r.usageChunks != 1 || r.acc.Usage.CompletionTokens == 0):
		t.Errorf("include_usage asked for: %d usage chunks, usage %+v; want one with the counts", r.usageChunks, r.acc.Usage)
	case !asked && (r.usageChunks != 0 || r.acc.Usage.TotalTokens != 0):
		t.Errorf("include_usage not asked for: %d usage chunks, usage %+v; want none", r.usageChunks, r.acc.Usage)
	}
}

func userChat(model, text string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("Be brief."), openai.UserMessage(text)},
	}
}

func withUsage(p openai.ChatCompletionNewParams) openai.ChatCompletionNewParams {
	p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	return p
}

// bedrockModel has a ":" that SigV4 signs in its escaped form: the signature only holds
// if nothing between the upstream stage and the provider rewrites the path.
const bedrockModel = "anthropic.claude-3-haiku-20240307-v1:0"

// TestEndToEndBedrock drives a bedrock/ deployment with the OpenAI SDK. The fake
// recomputes every request's SigV4 signature, so a request that reaches it unsigned,
// with a different body, path or host than the upstream stage signed, fails.
func TestEndToEndBedrock(t *testing.T) {
	fake, srv := providertest.StartBedrock(t, "us-east-1", "AKIDEXAMPLE", "bedrock-secret")
	fake.SessionToken = "bedrock-session"
	gw := startDev(t, fmt.Sprintf(`
model_list:
  - model_name: claude-bedrock
    litellm_params:
      model: bedrock/%s
      api_base: %s
      aws_region_name: us-east-1
      aws_access_key_id: AKIDEXAMPLE
      aws_secret_access_key: bedrock-secret
      aws_session_token: bedrock-session
general_settings:
  master_key: %s
`, bedrockModel, srv.URL, masterKey))
	client := gw.client(masterKey)

	t.Run("JSON", func(t *testing.T) {
		resp, err := client.Chat.Completions.New(context.Background(), userChat("claude-bedrock", "Summarize this in one line."))
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.Choices[0].Message.Content; got != "You said: Summarize this in one line." {
			t.Errorf("reply = %q", got)
		}
		if resp.Choices[0].FinishReason != "stop" || resp.Usage.PromptTokens == 0 || resp.Usage.CompletionTokens == 0 {
			t.Errorf("finish_reason %q, usage %+v", resp.Choices[0].FinishReason, resp.Usage)
		}
		reqs := fake.Requests()
		req := reqs[len(reqs)-1]
		if want := "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"; req.Path != want {
			t.Errorf("provider path = %q, want %q", req.Path, want)
		}
		if !strings.HasPrefix(req.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") {
			t.Errorf("Authorization = %q, want a SigV4 signature", req.Header.Get("Authorization"))
		}
		if strings.Contains(fmt.Sprint(req.Header), masterKey) {
			t.Error("the client's key reached Bedrock")
		}
	})

	tools := []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{
		Name:       "get_time",
		Parameters: openai.FunctionParameters{"type": "object", "properties": map[string]any{"prompt": map[string]any{"type": "string"}}},
	})}
	for _, asked := range []bool{true, false} {
		t.Run(fmt.Sprintf("stream with a tool call, include_usage=%t", asked), func(t *testing.T) {
			params := userChat("claude-bedrock", "what does get_time say")
			params.Tools = tools
			if asked {
				params = withUsage(params)
			}
			r := streamChat(t, client, params)
			choice := r.acc.Choices[0]
			if choice.FinishReason != "tool_calls" || len(choice.Message.ToolCalls) != 1 {
				t.Fatalf("finish_reason %q, tool calls %+v", choice.FinishReason, choice.Message.ToolCalls)
			}
			call := choice.Message.ToolCalls[0]
			var args struct{ Prompt string }
			if err := json.Unmarshal([]byte(call.Function.Arguments), &args); call.Function.Name != "get_time" || err != nil || args.Prompt != "what does get_time say" {
				t.Errorf("tool call %s(%s): %v", call.Function.Name, call.Function.Arguments, err)
			}
			if choice.Message.Content != "Calling get_time." {
				t.Errorf("content = %q", choice.Message.Content)
			}
			r.checkUsageChunk(t, asked)
			reqs := fake.Requests()
			if p := reqs[len(reqs)-1].Path; !strings.HasSuffix(p, "/converse-stream") {
				t.Errorf("provider path = %q, want ConverseStream", p)
			}
		})
	}

	t.Run("the client gets server-sent events", func(t *testing.T) {
		resp, body := gw.post(t, "/v1/chat/completions", masterKey,
			[]byte(`{"model":"claude-bedrock","stream":true,"messages":[{"role":"user","content":"a b"}]}`))
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" || resp.Header.Get("Content-Length") != "" {
			t.Errorf("status %d, content-type %q, content-length %q", resp.StatusCode, ct, resp.Header.Get("Content-Length"))
		}
		if !strings.HasPrefix(string(body), "data: {") || !strings.HasSuffix(string(body), "data: [DONE]\n\n") {
			t.Errorf("body = %q", body)
		}
	})
}

// TestEndToEndGemini drives a gemini/ deployment (Google AI Studio, API key).
func TestEndToEndGemini(t *testing.T) {
	fake, srv := providertest.StartGemini(t, "AIza-e2e")
	gw := startDev(t, fmt.Sprintf(`
model_list:
  - model_name: gemini-flash
    litellm_params: {model: gemini/gemini-2.5-flash, api_key: AIza-e2e, api_base: %s}
general_settings:
  master_key: %s
`, srv.URL, masterKey))
	client := gw.client(masterKey)

	resp, err := client.Chat.Completions.New(context.Background(), userChat("gemini-flash", "one two three"))
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Choices[0].Message.Content; got != "You said: one two three" || resp.Usage.TotalTokens == 0 {
		t.Errorf("reply %q, usage %+v", got, resp.Usage)
	}
	req := fake.Requests()[0]
	if req.Path != "/v1beta/models/gemini-2.5-flash:generateContent" || req.Header.Get("X-Goog-Api-Key") != "AIza-e2e" {
		t.Errorf("provider got path %q, x-goog-api-key %q", req.Path, req.Header.Get("X-Goog-Api-Key"))
	}
	if req.Header.Get("Authorization") != "" {
		t.Error("an Authorization header reached the Gemini API")
	}

	for _, asked := range []bool{true, false} {
		t.Run(fmt.Sprintf("stream, include_usage=%t", asked), func(t *testing.T) {
			params := userChat("gemini-flash", "four five six")
			if asked {
				params = withUsage(params)
			}
			r := streamChat(t, client, params)
			if got := r.acc.Choices[0].Message.Content; got != "You said: four five six" || r.chunks < 4 {
				t.Errorf("streamed reply %q in %d chunks", got, r.chunks)
			}
			r.checkUsageChunk(t, asked)
			reqs := fake.Requests()
			if p := reqs[len(reqs)-1].Path; p != "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse" {
				t.Errorf("provider path = %q", p)
			}
		})
	}
}

// TestEndToEndVertex drives a vertex_ai/ deployment whose service-account key the gateway
// exchanges for an access token at the key's token endpoint (the fake's), in the
// background, before any request needs it.
func TestEndToEndVertex(t *testing.T) {
	fake, srv := providertest.StartVertex(t, "proj-e2e", "europe-west4")
	keyFile := filepath.Join(t.TempDir(), "sa.json")
	if err := os.WriteFile(keyFile, fake.ServiceAccountJSON(t), 0o600); err != nil {
		t.Fatal(err)
	}
	gw := startDev(t, fmt.Sprintf(`
model_list:
  - model_name: gemini-pro
    litellm_params:
      model: vertex_ai/gemini-2.5-pro
      api_base: %s
      vertex_project: proj-e2e
      vertex_location: europe-west4
      vertex_credentials: %s
general_settings:
  master_key: %s
`, srv.URL, keyFile, masterKey))
	client := gw.client(masterKey)

	resp, err := client.Chat.Completions.New(context.Background(), userChat("gemini-pro", "one two three"))
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Choices[0].Message.Content; got != "You said: one two three" || resp.Usage.TotalTokens == 0 {
		t.Errorf("reply %q, usage %+v", got, resp.Usage)
	}
	r := streamChat(t, client, userChat("gemini-pro", "four five"))
	if got := r.acc.Choices[0].Message.Content; got != "You said: four five" {
		t.Errorf("streamed reply %q", got)
	}
	r.checkUsageChunk(t, false)

	var paths, tokens []string
	for _, req := range fake.Requests() {
		paths = append(paths, req.Path)
		if req.Path != "/token" {
			tokens = append(tokens, req.Header.Get("Authorization"))
		}
	}
	want := []string{
		"/token",
		"/v1/projects/proj-e2e/locations/europe-west4/publishers/google/models/gemini-2.5-pro:generateContent",
		"/v1/projects/proj-e2e/locations/europe-west4/publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse",
	}
	if strings.Join(paths, "\n") != strings.Join(want, "\n") {
		t.Errorf("provider requests:\n%s\nwant:\n%s", strings.Join(paths, "\n"), strings.Join(want, "\n"))
	}
	for _, tok := range tokens {
		if tok != "Bearer ya29.fake-0001" {
			t.Errorf("Authorization = %q, want the token the gateway obtained", tok)
		}
	}
}

// TestEndToEndInjectedStreamUsage: a client streams from an OpenAI-compatible deployment
// without asking for usage. The gateway asks the provider for it (spend must be exact)
// and hides the extra chunk from the client.
func TestEndToEndInjectedStreamUsage(t *testing.T) {
	fake, cfg := oneProvider(t)
	gw := startDev(t, cfg)
	r := streamChat(t, gw.client(masterKey), openai.ChatCompletionNewParams{
		Model:    "gpt-5.5",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("one two three")},
	})
	if got := r.acc.Choices[0].Message.Content; got != "You said: one two three" {
		t.Errorf("streamed reply = %q", got)
	}
	r.checkUsageChunk(t, false)

	reqs := fake.Requests()
	var body struct {
		Model         string `json:"model"`
		Stream        bool   `json:"stream"`
		StreamOptions *struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	if err := json.Unmarshal(reqs[len(reqs)-1].Body, &body); err != nil {
		t.Fatal(err)
	}
	if body.Model != "gpt-real" || !body.Stream || body.StreamOptions == nil || !body.StreamOptions.IncludeUsage {
		t.Errorf("provider body = %s; want the deployment's model and stream_options.include_usage true", reqs[len(reqs)-1].Body)
	}
}

// TestEndToEndFallbackBedrockToGemini: attempt 1 goes to Bedrock, signed, and fails;
// attempt 2 goes to the Gemini API. Envoy shares one header map between attempts, so
// attempt 2 must have removed every header attempt 1's signature added.
func TestEndToEndFallbackBedrockToGemini(t *testing.T) {
	bedrock, bsrv := providertest.StartBedrock(t, "eu-west-1", "AKIDFALLBACK", "fallback-secret")
	bedrock.SessionToken = "fallback-session"
	gemini, gsrv := providertest.StartGemini(t, "AIza-fallback")
	gw := startDev(t, fmt.Sprintf(`
model_list:
  - model_name: primary
    litellm_params:
      model: bedrock/%s
      api_base: %s
      aws_region_name: eu-west-1
      aws_access_key_id: AKIDFALLBACK
      aws_secret_access_key: fallback-secret
      aws_session_token: fallback-session
  - model_name: backup
    litellm_params: {model: gemini/gemini-2.5-flash, api_key: AIza-fallback, api_base: %s}
litellm_settings:
  num_retries: 0
  fallbacks: [{"primary": ["backup"]}]
general_settings:
  master_key: %s
`, bedrockModel, bsrv.URL, gsrv.URL, masterKey))
	bedrock.FailNext(503)

	client := gw.client(masterKey)
	resp, err := client.Chat.Completions.New(context.Background(), userChat("primary", "still there?"))
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Choices[0].Message.Content; got != "You said: still there?" {
		t.Errorf("reply = %q", got)
	}
	b := bedrock.Requests()
	if len(b) != 1 || b[0].Header.Get("X-Amz-Security-Token") != "fallback-session" || b[0].Header.Get("X-Amz-Date") == "" {
		t.Fatalf("Bedrock got %d requests; want one, signed with the session token", len(b))
	}
	g := gemini.Requests()
	if len(g) != 1 {
		t.Fatalf("Gemini got %d requests, want 1", len(g))
	}
	for _, h := range []string{"Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-Sha256"} {
		if v := g[0].Header.Get(h); v != "" {
			t.Errorf("attempt 1's %s reached the fallback: %q", h, v)
		}
	}
	if g[0].Header.Get("X-Goog-Api-Key") != "AIza-fallback" {
		t.Errorf("fallback x-goog-api-key = %q", g[0].Header.Get("X-Goog-Api-Key"))
	}
}

// TestEndToEndAnthropicNative is an Anthropic client (its wire format, as the Anthropic
// SDKs send it) using the gateway with a virtual key: /v1/messages and
// /v1/messages/count_tokens pass through to anthropic/ deployments with the deployment's
// model and key, streams pass unchanged, and errors come in Anthropic's shape.
func TestEndToEndAnthropicNative(t *testing.T) {
	fake, srv := providertest.StartAnthropic(t, "sk-ant-upstream")
	openaiFake, osrv := providertest.StartOpenAI(t, "sk-upstream")
	gw := startDev(t, fmt.Sprintf(`
model_list:
  - model_name: claude
    litellm_params: {model: anthropic/claude-sonnet-5, api_key: sk-ant-upstream, api_base: %s}
  - model_name: gpt
    litellm_params: {model: openai/gpt-real, api_key: sk-upstream, api_base: %s/v1}
general_settings:
  master_key: %s
`, srv.URL, osrv.URL, masterKey))
	anthropicHeaders := []string{"x-api-key", masterKey, "anthropic-version", "2023-06-01", "anthropic-beta", "prompt-caching-2024-07-31"}
	const messages = `"messages":[{"role":"user","content":"Summarize this in one line."}]`

	t.Run("message", func(t *testing.T) {
		resp, body := gw.post(t, "/v1/messages", "", []byte(`{"model":"claude","max_tokens":64,"system":"Be brief.",`+messages+`}`), anthropicHeaders...)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		var msg struct {
			Type, Model string
			Content     []struct{ Type, Text string }
			StopReason  string `json:"stop_reason"`
			Usage       struct {
				InputTokens  int `json:"input_tokens"`
				OutputTokens int `json:"output_tokens"`
			}
		}
		if err := json.Unmarshal(body, &msg); err != nil {
			t.Fatal(err)
		}
		if msg.Type != "message" || msg.Model != "claude-sonnet-5" || len(msg.Content) != 1 || msg.Content[0].Text != "You said: Summarize this in one line." ||
			msg.StopReason != "end_turn" || msg.Usage.InputTokens == 0 || msg.Usage.OutputTokens == 0 {
			t.Errorf("message = %s", body)
		}
		reqs := fake.Requests()
		req := reqs[len(reqs)-1]
		if req.Path != "/v1/messages" || req.Header.Get("X-Api-Key") != "sk-ant-upstream" || req.Header.Get("Anthropic-Beta") != "prompt-caching-2024-07-31" {
			t.Errorf("provider got path %q, x-api-key %q, anthropic-beta %q", req.Path, req.Header.Get("X-Api-Key"), req.Header.Get("Anthropic-Beta"))
		}
		if !strings.Contains(string(req.Body), `"model":"claude-sonnet-5"`) || strings.Contains(fmt.Sprint(req.Header), masterKey) {
			t.Errorf("provider got body %s, headers %v", req.Body, req.Header)
		}
	})

	t.Run("stream", func(t *testing.T) {
		resp, body := gw.post(t, "/v1/messages", "", []byte(`{"model":"claude","max_tokens":64,"stream":true,`+messages+`}`), anthropicHeaders...)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("status %d, content-type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		if types, text := nativeStream(t, body); strings.Join(types, " ") != wantNativeEvents || text != "You said: Summarize this in one line." {
			t.Errorf("events %v, text %q", types, text)
		}
		if strings.Contains(string(body), "chat.completion") {
			t.Error("the stream was translated to OpenAI's format")
		}
	})

	t.Run("count_tokens", func(t *testing.T) {
		resp, body := gw.post(t, "/v1/messages/count_tokens", "", []byte(`{"model":"claude",`+messages+`}`), anthropicHeaders...)
		if resp.StatusCode != 200 || string(body) != `{"input_tokens":5}`+"\n" {
			t.Errorf("status %d: %s", resp.StatusCode, body)
		}
		reqs := fake.Requests()
		if p := reqs[len(reqs)-1].Path; p != "/v1/messages/count_tokens" {
			t.Errorf("provider path = %q", p)
		}
	})

	errorsCases := []struct {
		name, model string
		headers     []string
		fail        int
		wantStatus  int
		wantType    string
		wantInMsg   string
	}{
		{"wrong key", "claude", []string{"x-api-key", "sk-wrong", "anthropic-version", "2023-06-01"}, 0, 401, "authentication_error", "invalid API key"},
		{"alias without Anthropic deployments", "gpt", anthropicHeaders, 0, 400, "invalid_request_error", "must be an Anthropic-format deployment"},
		{"provider error passes", "claude", anthropicHeaders, 400, 400, "invalid_request_error", "told to fail with 400"},
	}
	for _, tc := range errorsCases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fail != 0 {
				fake.FailNext(tc.fail)
			}
			resp, body := gw.post(t, "/v1/messages", "", []byte(`{"model":"`+tc.model+`","max_tokens":64,`+messages+`}`), tc.headers...)
			var e struct {
				Type  string
				Error struct{ Type, Message string }
			}
			if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != tc.wantStatus || e.Type != "error" ||
				e.Error.Type != tc.wantType || !strings.Contains(e.Error.Message, tc.wantInMsg) {
				t.Errorf("status %d, body %s; want %d %s mentioning %q", resp.StatusCode, body, tc.wantStatus, tc.wantType, tc.wantInMsg)
			}
		})
	}
	if n := len(openaiFake.Requests()); n != 0 {
		t.Errorf("the OpenAI deployment got %d requests", n)
	}
}

// TestEndToEndBedrockWebIdentity: on EKS with IRSA, a bedrock/ deployment has no keys,
// only AWS_ROLE_ARN and the token file AWS_WEB_IDENTITY_TOKEN_FILE. The gateway trades
// the token at STS (a fake, through AWS_ENDPOINT_URL_STS) for temporary credentials and
// signs Bedrock requests with them.
func TestEndToEndBedrockWebIdentity(t *testing.T) {
	const role, token = "arn:aws:iam::123456789012:role/tollgate-bedrock", "eyJhbGciOiJSUzI1NiJ9.oidc.token"
	sts, stsSrv := providertest.StartSTS(t, role, token)
	setAWSEnv(t, map[string]string{"AWS_ROLE_ARN": role, "AWS_WEB_IDENTITY_TOKEN_FILE": writeToken(t, token+"\n"),
		"AWS_ENDPOINT_URL_STS": stsSrv.URL})
	chatWithTemporaryKeys(t, sts.AccessKeyID, sts.SecretAccessKey, sts.SessionToken)

	exchanges := sts.Requests()
	if len(exchanges) != 1 {
		t.Fatalf("%d STS exchanges, want 1 (at start, off the request path)", len(exchanges))
	}
	form, _ := url.ParseQuery(string(exchanges[0].Body))
	if form.Get("RoleArn") != role || form.Get("WebIdentityToken") != token || form.Get("RoleSessionName") != "tollgate" {
		t.Errorf("STS exchange %v", form)
	}
}

// TestEndToEndBedrockPodIdentity: with EKS Pod Identity a bedrock/ deployment has no
// keys, only the container credentials endpoint and the file holding its authorization
// token. The gateway fetches temporary credentials there (a fake on loopback) and signs
// Bedrock requests with them.
func TestEndToEndBedrockPodIdentity(t *testing.T) {
	const podToken = "eks-pod-identity-token"
	creds, credsSrv := providertest.StartContainerCredentials(t, podToken)
	setAWSEnv(t, map[string]string{"AWS_CONTAINER_CREDENTIALS_FULL_URI": credsSrv.URL + "/v1/credentials",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": writeToken(t, podToken)})
	chatWithTemporaryKeys(t, creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken)

	if fetches := creds.Requests(); len(fetches) != 1 || fetches[0].Header.Get("Authorization") != podToken {
		t.Errorf("credential fetches %+v, want one with the pod's token", fetches)
	}
}

// setAWSEnv sets env for the test over an environment without other AWS credentials.
func setAWSEnv(t *testing.T, env map[string]string) {
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"} {
		t.Setenv(k, "") // an empty variable counts as unset
	}
	t.Setenv("AWS_REGION", "us-east-1")
	for k, v := range env {
		t.Setenv(k, v)
	}
}

// writeToken writes a token file and returns its path.
func writeToken(t *testing.T, token string) string {
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// chatWithTemporaryKeys sends a chat through a gateway whose bedrock/ deployment has no
// keys of its own, to a fake Bedrock that accepts only the given temporary credentials.
func chatWithTemporaryKeys(t *testing.T, id, secret, token string) {
	t.Helper()
	fake, srv := providertest.StartBedrock(t, "us-east-1", id, secret)
	fake.SessionToken = token
	gw := startDev(t, fmt.Sprintf(`
model_list:
  - model_name: claude-bedrock
    litellm_params:
      model: bedrock/%s
      api_base: %s
general_settings:
  master_key: %s
`, bedrockModel, srv.URL, masterKey))
	client := gw.client(masterKey)
	resp, err := client.Chat.Completions.New(context.Background(), userChat("claude-bedrock", "Hello from a pod."))
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Choices[0].Message.Content; got != "You said: Hello from a pod." {
		t.Errorf("reply = %q", got)
	}
	reqs := fake.Requests()
	if auth := reqs[len(reqs)-1].Header.Get("Authorization"); !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential="+id+"/") {
		t.Errorf("Authorization = %q, want a signature with the temporary credentials", auth)
	}
}

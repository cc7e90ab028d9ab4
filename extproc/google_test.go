package extproc

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"

	"github.com/tollgate-dev/tollgate/config"
	"github.com/tollgate-dev/tollgate/translate"
	"github.com/tollgate-dev/tollgate/translate/providertest"
)

func TestGoogleTokenRecord(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	g := googleToken("vertex-0", nil, translate.Target{Google: &translate.GoogleCredentials{}})
	unavailable := func(cause string) error {
		return &translate.APIError{Status: 503, Type: "api_error", Code: "provider_credentials_unavailable",
			Message: "deployment vertex-0: the Vertex AI credentials (vertex_credentials) could not be exchanged for an access token: " + cause}
	}
	current := func(at time.Time) (string, error) {
		t, err := g.current(at)
		if err != nil {
			return "", err
		}
		return t.Google.AccessToken, nil
	}

	if _, err := current(now); !cmp.Equal(err, unavailable("no exchange has completed yet")) {
		t.Errorf("before any exchange: %v", err)
	}
	backoff := time.Second
	steps := []struct {
		name      string
		tok       *oauth2.Token
		err       error
		at        time.Time // when the token is read afterwards
		wantWait  time.Duration
		wantToken string
		wantErr   error
	}{
		{name: "first token", tok: &oauth2.Token{AccessToken: "ya29.a", Expiry: now.Add(time.Hour)}, at: now,
			wantWait: 55 * time.Minute, wantToken: "ya29.a"},
		{name: "failure keeps the working token", err: errors.New("token endpoint answered HTTP 500"), at: now.Add(59 * time.Minute),
			wantWait: time.Second, wantToken: "ya29.a"},
		{name: "failures back off", err: errors.New("token endpoint answered HTTP 500"), at: now.Add(59 * time.Minute),
			wantWait: 2 * time.Second, wantToken: "ya29.a"},
		{name: "expired token is not sent", err: errors.New("dial tcp: connection refused"), at: now.Add(time.Hour),
			wantWait: 4 * time.Second, wantErr: unavailable("dial tcp: connection refused")},
		{name: "short-lived token refreshes at half its life", tok: &oauth2.Token{AccessToken: "ya29.b", Expiry: now.Add(4 * time.Minute)}, at: now,
			wantWait: 2 * time.Minute, wantToken: "ya29.b"},
		{name: "token without expiry", tok: &oauth2.Token{AccessToken: "ya29.c"}, at: now.Add(24 * time.Hour),
			wantWait: 30 * time.Minute, wantToken: "ya29.c"},
	}
	for _, st := range steps {
		var target *translate.Target
		var expiry time.Time
		if st.tok != nil {
			target, expiry = &translate.Target{Google: &translate.GoogleCredentials{AccessToken: st.tok.AccessToken}}, st.tok.Expiry
		}
		wait := g.record(target, expiry, st.err, now, &backoff)
		tok, err := current(st.at)
		if wait != st.wantWait || tok != st.wantToken || !cmp.Equal(err, st.wantErr) {
			t.Errorf("%s: wait %v, token %q, err %v; want %v, %q, %v", st.name, wait, tok, err, st.wantWait, st.wantToken, st.wantErr)
		}
	}
	if backoff != time.Second {
		t.Errorf("backoff after a success = %v, want it reset to 1s", backoff)
	}
	for i := 0; i < 10; i++ {
		g.record(nil, time.Time{}, errors.New("down"), now, &backoff)
	}
	if backoff != tokenRetryMax {
		t.Errorf("backoff after many failures = %v, want %v", backoff, tokenRetryMax)
	}
}

// withTokenURI returns a service-account key whose token endpoint is uri.
func withTokenURI(t *testing.T, key []byte, uri string) []byte {
	var m map[string]any
	if err := json.Unmarshal(key, &m); err != nil {
		t.Fatal(err)
	}
	m["token_uri"] = uri
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestExchangeServiceAccount trades keys for tokens at a fake Google token endpoint,
// which verifies the signed JWT the way Google does.
func TestExchangeServiceAccount(t *testing.T) {
	fake, _ := providertest.StartVertex(t, "proj", "us-central1")
	other, otherSrv := providertest.StartVertex(t, "proj", "us-central1")
	other.ServiceAccountJSON(t) // the other endpoint knows its own account only
	tok, err := exchangeServiceAccount(context.Background(), fake.ServiceAccountJSON(t))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok.AccessToken, "ya29.") || time.Until(tok.Expiry) < 50*time.Minute {
		t.Errorf("token %q expiring %v", tok.AccessToken, tok.Expiry)
	}

	_, err = exchangeServiceAccount(context.Background(), withTokenURI(t, fake.ServiceAccountJSON(t), otherSrv.URL+"/token"))
	if err == nil || !strings.HasPrefix(err.Error(), "token endpoint answered HTTP 400: invalid_grant") {
		t.Errorf("unknown account: err = %v, want the endpoint's invalid_grant", err)
	}
	_, err = exchangeServiceAccount(context.Background(), []byte(`{"type":"authorized_user"}`))
	if err == nil || !strings.Contains(err.Error(), `expected credential type "service_account"`) {
		t.Errorf("user credentials: err = %v", err)
	}
}

// TestUpstreamVertex runs attempts for vertex_ai deployments: New exchanges the key
// before it returns, and each attempt carries the current token; a deployment whose key
// cannot be exchanged fails its attempts with a 503 that says why.
func TestUpstreamVertex(t *testing.T) {
	fake, srv := providertest.StartVertex(t, "proj-1", "europe-west4")
	other, otherSrv := providertest.StartVertex(t, "proj-1", "europe-west4")
	other.ServiceAccountJSON(t)
	cfg := &config.Config{
		Deployments: []*config.Deployment{
			{ID: "gemini-0", Alias: "gemini", Provider: "vertex_ai", Model: "gemini-2.5-flash", APIBase: srv.URL,
				VertexProject: "proj-1", VertexLocation: "europe-west4", VertexCredentials: config.Secret(fake.ServiceAccountJSON(t))},
			{ID: "gemini-1", Alias: "gemini", Provider: "vertex_ai", Model: "gemini-2.5-flash", APIBase: srv.URL,
				VertexProject: "proj-1", VertexLocation: "europe-west4",
				VertexCredentials: config.Secret(withTokenURI(t, fake.ServiceAccountJSON(t), otherSrv.URL+"/token"))},
		},
		MaxRequestBytes: 4096,
	}
	s, c := startServer(t, cfg, NewMasterKey(masterKey))
	t.Cleanup(s.Close)

	const body = `{"model":"gemini","messages":[{"role":"user","content":"hi"}]}`
	headers := routedHeaders(body)
	headers[headerAlias] = "gemini"
	e := upstreamStream(t, c, "gemini-0")
	e.send(requestHeaders(false, flatten(headers)...))
	got := summarize(e.send(requestBody(body)))
	if got.Phase != "request_body" || got.Body == nil {
		t.Fatalf("request body answered %+v", got)
	}
	wantSet := map[string]string{
		":path":          "/v1/projects/proj-1/locations/europe-west4/publishers/google/models/gemini-2.5-flash:generateContent",
		":authority":     strings.TrimPrefix(srv.URL, "http://"),
		"authorization":  "Bearer ya29.fake-0001",
		"content-type":   "application/json",
		"content-length": strconv.Itoa(len(*got.Body)),
	}
	if diff := cmp.Diff(wantSet, got.Set); diff != "" {
		t.Errorf("headers set (-want +got):\n%s", diff)
	}

	e = upstreamStream(t, c, "gemini-1")
	e.send(requestHeaders(false, flatten(headers)...))
	got = summarize(e.send(requestBody(body)))
	if got.Phase != "immediate" || got.Status != 503 || !strings.Contains(*got.Body,
		"deployment gemini-1: the Vertex AI credentials (vertex_credentials) could not be exchanged for an access token: token endpoint answered HTTP 400: invalid_grant") {
		t.Errorf("attempt with an unusable key answered %+v", got)
	}
	if strings.Contains(*got.Body, "PRIVATE KEY") {
		t.Error("the key reached the client")
	}
}

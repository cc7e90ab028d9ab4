package providertest

import (
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"testing"
	"time"
)

// STS is a fake AWS Security Token Service answering AssumeRoleWithWebIdentity
// (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRoleWithWebIdentity.html)
// in the query protocol: a form POST, an XML answer. It trades Token for the temporary
// credentials AccessKeyID, SecretAccessKey and SessionToken of RoleARN, valid for
// Lifetime, and refuses another role (AccessDenied) or token (InvalidIdentityToken) as
// STS does. The call is not signed: the web identity token is the proof.
type STS struct {
	recorder
	RoleARN, Token                             string
	AccessKeyID, SecretAccessKey, SessionToken string
	Lifetime                                   time.Duration
}

// StartSTS serves a fake STS for roleARN and token, issuing fixed temporary credentials.
func StartSTS(t testing.TB, roleARN, token string) (*STS, *httptest.Server) {
	t.Helper()
	f := &STS{RoleARN: roleARN, Token: token, AccessKeyID: "ASIAFAKESTS0001", SecretAccessKey: "sts-secret",
		SessionToken: "sts-session-token", Lifetime: time.Hour}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

// stsSessionName is RoleSessionName's pattern and length (2 to 64).
var stsSessionName = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)

func (f *STS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeSTSError(w, 400, "InvalidRequest", "could not read the request body")
		return
	}
	f.record(r, body)
	form, err := url.ParseQuery(string(body))
	switch {
	case r.Method != http.MethodPost || err != nil || form.Get("Action") != "AssumeRoleWithWebIdentity":
		writeSTSError(w, 400, "InvalidAction", "Could not find operation "+form.Get("Action")+" for version "+form.Get("Version"))
	case form.Get("Version") != "2011-06-15":
		writeSTSError(w, 400, "InvalidAction", "Could not find operation AssumeRoleWithWebIdentity for version "+form.Get("Version"))
	case !stsSessionName.MatchString(form.Get("RoleSessionName")):
		writeSTSError(w, 400, "ValidationError", "1 validation error detected: Value at 'roleSessionName' failed to satisfy constraint")
	case form.Get("RoleArn") != f.RoleARN:
		writeSTSError(w, 403, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity")
	case form.Get("WebIdentityToken") != f.Token:
		writeSTSError(w, 400, "InvalidIdentityToken", "Couldn't retrieve verification key from your identity provider")
	default:
		if fail := f.nextFailure(); fail != 0 {
			writeSTSError(w, fail, "InternalFailure", "the fake was told to fail")
			return
		}
		type creds struct {
			AccessKeyID     string `xml:"AccessKeyId"`
			SecretAccessKey string
			SessionToken    string
			Expiration      string
		}
		writeSTSXML(w, 200, struct {
			XMLName xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ AssumeRoleWithWebIdentityResponse"`
			Result  struct {
				Credentials creds
			} `xml:"AssumeRoleWithWebIdentityResult"`
		}{Result: struct{ Credentials creds }{creds{f.AccessKeyID, f.SecretAccessKey, f.SessionToken,
			time.Now().Add(f.Lifetime).UTC().Format(time.RFC3339)}}})
	}
}

// writeSTSError answers in STS's error shape.
func writeSTSError(w http.ResponseWriter, status int, code, msg string) {
	type stsError struct {
		Type, Code, Message string
	}
	writeSTSXML(w, status, struct {
		XMLName xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ ErrorResponse"`
		Error   stsError
	}{Error: stsError{"Sender", code, msg}})
}

func writeSTSXML(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	io.WriteString(w, xml.Header)
	xml.NewEncoder(w).Encode(v)
}

// ContainerCredentials is a fake container credentials endpoint, as EKS Pod Identity
// and ECS serve it (https://docs.aws.amazon.com/sdkref/latest/guide/feature-container-credentials.html):
// GET answers temporary credentials as JSON, when the Authorization header carries
// AuthToken (if set; EKS sets one, ECS does not).
type ContainerCredentials struct {
	recorder
	AuthToken                                  string
	AccessKeyID, SecretAccessKey, SessionToken string
	Lifetime                                   time.Duration
}

// StartContainerCredentials serves a fake credentials endpoint at /v1/credentials.
func StartContainerCredentials(t testing.TB, authToken string) (*ContainerCredentials, *httptest.Server) {
	t.Helper()
	f := &ContainerCredentials{AuthToken: authToken, AccessKeyID: "ASIAFAKEPOD0001", SecretAccessKey: "pod-secret",
		SessionToken: "pod-session-token", Lifetime: time.Hour}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *ContainerCredentials) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.record(r, nil)
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method != http.MethodGet || r.URL.Path != "/v1/credentials":
		w.WriteHeader(404)
		io.WriteString(w, `{"Code":"NotFound","Message":"no such path"}`)
	case f.AuthToken != "" && r.Header.Get("Authorization") != f.AuthToken:
		w.WriteHeader(401)
		io.WriteString(w, `{"Code":"InvalidToken","Message":"Service account token cannot be empty or is invalid"}`)
	default:
		json.NewEncoder(w).Encode(map[string]string{
			"AccessKeyId": f.AccessKeyID, "SecretAccessKey": f.SecretAccessKey, "Token": f.SessionToken,
			"AccountId": "123456789012", "Expiration": time.Now().Add(f.Lifetime).UTC().Format(time.RFC3339),
		})
	}
}

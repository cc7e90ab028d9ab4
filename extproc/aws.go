package extproc

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/translate"
)

// AWS temporary credentials. A bedrock/ deployment without an access key or an api_key
// may run with
//   - a web identity, as IRSA gives pods on EKS: a role ARN and a file holding an OIDC
//     token, which STS trades for temporary credentials
//     (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRoleWithWebIdentity.html);
//   - the container credentials endpoint, as EKS Pod Identity and ECS task roles give:
//     a GET, with an authorization token on EKS, answering the credentials as JSON
//     (https://docs.aws.amazon.com/sdkref/latest/guide/feature-container-credentials.html).
// As with Vertex AI tokens, the exchange runs in the background (credential.run), never
// on the request path, and the upstream stage signs with the current credentials.

// awsKeys are temporary AWS credentials.
type awsKeys struct{ id, secret, token string }

// awsWebIdentity keeps a bedrock/ deployment's credentials current from its web identity.
func awsWebIdentity(id string, base translate.Target, region, endpoint, roleARN, session, tokenFile string) *credential[*translate.Target] {
	return targetCredential(id, "the AWS web identity (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE) could not be exchanged for credentials at STS", base,
		func(ctx context.Context) (awsKeys, time.Time, error) {
			return assumeRoleWithWebIdentity(ctx, endpoint, roleARN, session, tokenFile)
		}, setAWSKeys(region))
}

// setAWSKeys puts temporary keys for region into a target.
func setAWSKeys(region string) func(*translate.Target, awsKeys) {
	return func(t *translate.Target, k awsKeys) {
		t.AWS = &translate.AWSCredentials{Region: region, AccessKeyID: k.id, SecretAccessKey: k.secret, SessionToken: k.token}
	}
}

// assumeRoleWithWebIdentity trades the token in tokenFile for temporary credentials of
// roleARN at the STS endpoint. The call is not signed: the token is the proof. The file
// is read for every exchange, since the platform rotates the token in it.
func assumeRoleWithWebIdentity(ctx context.Context, endpoint, roleARN, session, tokenFile string) (awsKeys, time.Time, error) {
	token, err := os.ReadFile(tokenFile)
	if err != nil {
		return awsKeys{}, time.Time{}, fmt.Errorf("read the web identity token: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, tokenFetchTimeout)
	defer cancel()
	form := url.Values{
		"Action": {"AssumeRoleWithWebIdentity"}, "Version": {"2011-06-15"},
		"RoleArn": {roleARN}, "RoleSessionName": {session}, "WebIdentityToken": {strings.TrimSpace(string(token))},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(endpoint, "/")+"/", strings.NewReader(form.Encode()))
	if err != nil {
		return awsKeys{}, time.Time{}, fmt.Errorf("STS endpoint %q: %w", endpoint, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	status, body, err := fetchBody(req)
	if err != nil {
		return awsKeys{}, time.Time{}, err
	}
	if status != http.StatusOK {
		// Only the error's code and message: the rest of a body a proxy might fill.
		var e struct {
			Error struct{ Code, Message string } `xml:"Error"`
		}
		xml.Unmarshal(body, &e)
		msg := fmt.Sprintf("STS answered HTTP %d", status)
		if e.Error.Code != "" {
			msg += ": " + clip(e.Error.Code) + " (" + clip(e.Error.Message) + ")"
		}
		return awsKeys{}, time.Time{}, errors.New(msg)
	}
	var out struct {
		Credentials struct {
			AccessKeyID     string    `xml:"AccessKeyId"`
			SecretAccessKey string    `xml:"SecretAccessKey"`
			SessionToken    string    `xml:"SessionToken"`
			Expiration      time.Time `xml:"Expiration"`
		} `xml:"AssumeRoleWithWebIdentityResult>Credentials"`
	}
	if err := xml.Unmarshal(body, &out); err != nil || out.Credentials.AccessKeyID == "" || out.Credentials.SecretAccessKey == "" {
		return awsKeys{}, time.Time{}, errors.New("STS answered without credentials")
	}
	c := out.Credentials
	return awsKeys{id: c.AccessKeyID, secret: c.SecretAccessKey, token: c.SessionToken}, c.Expiration, nil
}

// awsContainerCredentials keeps a bedrock/ deployment's credentials current from the
// container credentials endpoint.
func awsContainerCredentials(id string, base translate.Target, region, uri, tokenFile, token string) *credential[*translate.Target] {
	return targetCredential(id, "the AWS container credentials endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI) gave no credentials", base,
		func(ctx context.Context) (awsKeys, time.Time, error) {
			return fetchContainerCredentials(ctx, uri, tokenFile, token)
		}, setAWSKeys(region))
}

// fetchContainerCredentials GETs credentials from uri, with the authorization token in
// tokenFile (read for every call, since EKS rotates it) or token.
func fetchContainerCredentials(ctx context.Context, uri, tokenFile, token string) (awsKeys, time.Time, error) {
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return awsKeys{}, time.Time{}, fmt.Errorf("read the authorization token: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	ctx, cancel := context.WithTimeout(ctx, tokenFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return awsKeys{}, time.Time{}, fmt.Errorf("credentials endpoint %q: %w", uri, err)
	}
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	status, body, err := fetchBody(req)
	if err != nil {
		return awsKeys{}, time.Time{}, err
	}
	var out struct {
		AccessKeyID     string    `json:"AccessKeyId"`
		SecretAccessKey string    `json:"SecretAccessKey"`
		Token           string    `json:"Token"`
		Expiration      time.Time `json:"Expiration"`
		Code, Message   string
	}
	json.Unmarshal(body, &out)
	if status != http.StatusOK {
		msg := fmt.Sprintf("credentials endpoint answered HTTP %d", status)
		if out.Code != "" {
			msg += ": " + clip(out.Code) + " (" + clip(out.Message) + ")"
		}
		return awsKeys{}, time.Time{}, errors.New(msg)
	}
	if out.AccessKeyID == "" || out.SecretAccessKey == "" {
		return awsKeys{}, time.Time{}, errors.New("credentials endpoint answered without credentials")
	}
	return awsKeys{id: out.AccessKeyID, secret: out.SecretAccessKey, token: out.Token}, out.Expiration, nil
}

// fetchBody sends req and reads at most 1 MiB of its answer.
func fetchBody(req *http.Request) (status int, body []byte, err error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body, err
}

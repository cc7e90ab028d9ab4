package extproc

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/translate"
	"github.com/tollgate-dev/tollgate/translate/providertest"
)

// TestAssumeRoleWithWebIdentity trades a web identity token for temporary credentials at
// a fake STS, and reports what STS refuses without the rest of its answer.
func TestAssumeRoleWithWebIdentity(t *testing.T) {
	const role = "arn:aws:iam::1:role/r"
	sts, srv := providertest.StartSTS(t, role, "good-token")
	dir := t.TempDir()
	file := func(name, token string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(token), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ctx := context.Background()

	keys, expiry, err := assumeRoleWithWebIdentity(ctx, srv.URL, role, "tollgate", file("good", "good-token\n"))
	if err != nil {
		t.Fatal(err)
	}
	if keys != (awsKeys{sts.AccessKeyID, sts.SecretAccessKey, sts.SessionToken}) {
		t.Errorf("credentials %+v", keys)
	}
	if left := time.Until(expiry); left < 59*time.Minute || left > time.Hour {
		t.Errorf("expiry in %v, want about an hour", left)
	}

	for _, tc := range []struct{ name, role, tokenFile, want string }{
		{"rotated-out token", role, file("bad", "old-token"), "STS answered HTTP 400: InvalidIdentityToken (Couldn't retrieve verification key from your identity provider)"},
		{"another role", "arn:aws:iam::1:role/other", file("good2", "good-token"), "STS answered HTTP 403: AccessDenied"},
		{"no token file", role, filepath.Join(dir, "missing"), "read the web identity token"},
	} {
		if _, _, err := assumeRoleWithWebIdentity(ctx, srv.URL, tc.role, "tollgate", tc.tokenFile); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}

	// A deployment whose exchange fails answers 503, saying why.
	c := awsWebIdentity("bedrock-0", translate.Target{}, "us-east-1", srv.URL, role, "tollgate", file("bad2", "old-token"))
	v, exp, err := c.fetch(ctx)
	c.record(v, exp, err, time.Now(), new(time.Duration))
	if _, err := c.current(time.Now()); err == nil || !strings.Contains(err.Error(), "deployment bedrock-0: the AWS web identity (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE) could not be exchanged for credentials at STS: STS answered HTTP 400: InvalidIdentityToken") {
		t.Errorf("current after a failed exchange: %v", err)
	}
}

// TestFetchContainerCredentials reads credentials from a fake EKS Pod Identity endpoint,
// sending the token in the file, and reports a refusal by its code.
func TestFetchContainerCredentials(t *testing.T) {
	creds, srv := providertest.StartContainerCredentials(t, "pod-token")
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good"), filepath.Join(dir, "bad")
	os.WriteFile(good, []byte("pod-token\n"), 0o600)
	os.WriteFile(bad, []byte("stale"), 0o600)
	ctx := context.Background()
	keys, expiry, err := fetchContainerCredentials(ctx, srv.URL+"/v1/credentials", good, "")
	if err != nil {
		t.Fatal(err)
	}
	if keys != (awsKeys{creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken}) || time.Until(expiry) < 59*time.Minute {
		t.Errorf("credentials %+v, expiry %v", keys, expiry)
	}
	_, _, err = fetchContainerCredentials(ctx, srv.URL+"/v1/credentials", bad, "")
	if err == nil || err.Error() != "credentials endpoint answered HTTP 401: InvalidToken (Service account token cannot be empty or is invalid)" {
		t.Errorf("stale token: %v", err)
	}
}

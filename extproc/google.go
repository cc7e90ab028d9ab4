package extproc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"

	"github.com/tollgate-dev/tollgate/translate"
)

// Vertex AI access tokens. A vertex_ai/ deployment authenticates with an OAuth2 access
// token its service-account key is exchanged for at Google's token endpoint. That
// exchange is a network round trip, and an ext_proc message must be answered within
// message_timeout (1 s), so it never runs on the request path: one goroutine per
// deployment fetches a token before the current one expires, and the upstream stage only
// reads the current token. This lives in extproc, not translate (which stays free of
// network calls) nor cmd/tollgate, because the tokens belong to the deployments New
// builds, and every server New returns, in `serve`, `dev` or a test, must work alike.

const (
	// cloudPlatformScope is the OAuth2 scope Vertex AI requests need.
	cloudPlatformScope = "https://www.googleapis.com/auth/cloud-platform"
	// tokenRefreshMargin is how long before expiry a token is replaced. Google's tokens
	// live an hour; five minutes leave room for retries while the old one still works.
	tokenRefreshMargin = 5 * time.Minute
	// tokenFetchTimeout bounds one exchange at the token endpoint.
	tokenFetchTimeout = 30 * time.Second
	// tokenRetryMax caps the back-off between failed exchanges.
	tokenRetryMax = time.Minute
	// firstTokenWait bounds how long New waits for the first exchanges, so that a
	// gateway that starts serving can already reach Vertex AI.
	firstTokenWait = 15 * time.Second
)

// credential keeps one deployment's short-lived credential current: a Vertex AI access
// token (credential[string]) or AWS temporary credentials from a web identity
// (credential[awsKeys]).
type credential[T any] struct {
	id   string // the deployment, for messages
	what string // what failed, for the 503: "the Vertex AI credentials (...) could not be ..."
	cur  atomic.Pointer[credState[T]]
	// fetch obtains a credential and when it expires (zero: not said); tests may
	// replace it.
	fetch func(ctx context.Context) (T, time.Time, error)
}

// credState is the outcome of the latest exchange.
type credState[T any] struct {
	v      T
	ok     bool      // v holds a credential
	expiry time.Time // zero: the endpoint gave no lifetime
	err    error     // why the latest exchange failed; nil after a success
}

// current returns the credential to use now, or why there is none: a 503, since the
// deployment cannot be reached until an exchange succeeds.
func (c *credential[T]) current(now time.Time) (T, error) {
	st := c.cur.Load()
	if st != nil && st.ok && (st.expiry.IsZero() || now.Before(st.expiry)) {
		return st.v, nil
	}
	cause := "no exchange has completed yet"
	if st != nil && st.err != nil {
		cause = st.err.Error()
	}
	var zero T
	return zero, &translate.APIError{Status: http.StatusServiceUnavailable, Type: "api_error", Code: "provider_credentials_unavailable",
		Message: fmt.Sprintf("deployment %s: %s: %s", c.id, c.what, cause)}
}

// run keeps the credential current until ctx ends, calling first once the first
// exchange has completed, successfully or not.
func (c *credential[T]) run(ctx context.Context, log *slog.Logger, first func()) {
	backoff := time.Second
	for {
		v, expiry, err := c.fetch(ctx)
		if ctx.Err() != nil {
			first()
			return
		}
		if err != nil {
			log.Warn("credential exchange failed", "deployment", c.id, "err", err, "retry_in", backoff)
		}
		wait := c.record(v, expiry, err, time.Now(), &backoff)
		first()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// record stores the outcome of an exchange finished at now and returns how long to wait
// before the next one: until shortly before the new credential expires, or, after a
// failure, *backoff, which doubles up to tokenRetryMax. A failure keeps a credential that
// still works.
func (c *credential[T]) record(v T, expiry time.Time, err error, now time.Time, backoff *time.Duration) time.Duration {
	if err != nil {
		st := &credState[T]{err: err}
		if old := c.cur.Load(); old != nil {
			st.v, st.ok, st.expiry = old.v, old.ok, old.expiry
		}
		c.cur.Store(st)
		wait := *backoff
		*backoff = min(2**backoff, tokenRetryMax)
		return wait
	}
	c.cur.Store(&credState[T]{v: v, ok: true, expiry: expiry})
	*backoff = time.Second
	return refreshIn(expiry, now)
}

// targetCredential keeps a deployment's attempt target current: fetch obtains a
// credential, and set puts it into a copy of base, so that an attempt reads a ready
// target and copies nothing.
func targetCredential[T any](id, what string, base translate.Target, fetch func(context.Context) (T, time.Time, error),
	set func(*translate.Target, T)) *credential[*translate.Target] {
	return &credential[*translate.Target]{id: id, what: what, fetch: func(ctx context.Context) (*translate.Target, time.Time, error) {
		v, expiry, err := fetch(ctx)
		if err != nil {
			return nil, time.Time{}, err
		}
		t := base
		set(&t, v)
		return &t, expiry, nil
	}}
}

// googleToken keeps a vertex_ai/ deployment's access token current, exchanging its
// service-account key.
func googleToken(id string, key []byte, base translate.Target) *credential[*translate.Target] {
	return targetCredential(id, "the Vertex AI credentials (vertex_credentials) could not be exchanged for an access token", base,
		func(ctx context.Context) (*oauth2.Token, time.Time, error) {
			tok, err := exchangeServiceAccount(ctx, key)
			if err != nil {
				return nil, time.Time{}, err
			}
			return tok, tok.Expiry, nil
		},
		func(t *translate.Target, tok *oauth2.Token) {
			g := *t.Google
			g.AccessToken = tok.AccessToken
			t.Google = &g
		})
}

// refreshIn is how long a token expiring at expiry is used before it is replaced:
// until tokenRefreshMargin before expiry, or half its lifetime for short-lived tokens.
func refreshIn(expiry, now time.Time) time.Duration {
	if expiry.IsZero() {
		return 30 * time.Minute
	}
	life := expiry.Sub(now)
	if life > 2*tokenRefreshMargin {
		return life - tokenRefreshMargin
	}
	return max(life/2, time.Second)
}

// exchangeServiceAccount trades a service-account key for an access token at the key's
// token_uri. The credentials are built afresh for every exchange: their token source
// caches the token until seconds before it expires, and a refresh must get a new one.
func exchangeServiceAccount(ctx context.Context, key []byte) (*oauth2.Token, error) {
	ctx, cancel := context.WithTimeout(ctx, tokenFetchTimeout)
	defer cancel()
	// The JWT token source posts without a context; this client ties each request to ctx
	// so that a slow endpoint cannot outlive the timeout or the server.
	ctx = context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: contextTransport{ctx}})
	creds, err := google.CredentialsFromJSONWithType(ctx, key, google.ServiceAccount, cloudPlatformScope)
	if err != nil {
		return nil, fmt.Errorf("read service-account key: %w", err)
	}
	tok, err := creds.TokenSource.Token()
	if err != nil {
		return nil, tokenError(err)
	}
	return tok, nil
}

// tokenError is a failed exchange, described by the status and the OAuth2 error fields
// (RFC 6749 section 5.2) only: the rest of a response body, which a proxy in front of the
// endpoint might fill with anything, is left out.
func tokenError(err error) error {
	if re, ok := errors.AsType[*oauth2.RetrieveError](err); ok {
		msg := fmt.Sprintf("token endpoint answered HTTP %d", re.Response.StatusCode)
		code, desc := re.ErrorCode, re.ErrorDescription
		if code == "" {
			// The JWT flow does not parse the error body.
			var body struct {
				Error            string `json:"error"`
				ErrorDescription string `json:"error_description"`
			}
			if json.Unmarshal(re.Body, &body) == nil {
				code, desc = body.Error, body.ErrorDescription
			}
		}
		if code != "" {
			msg += ": " + clip(code)
			if desc != "" {
				msg += " (" + clip(desc) + ")"
			}
		}
		return errors.New(msg)
	}
	// Transport errors name the endpoint's URL and the network failure; strip the
	// oauth2 package's prefixes.
	return errors.New(strings.TrimPrefix(err.Error(), "oauth2: "))
}

// clip shortens text from a token endpoint for a message.
func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// contextTransport sends every request with ctx.
type contextTransport struct{ ctx context.Context }

func (t contextTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return http.DefaultTransport.RoundTrip(r.WithContext(t.ctx))
}

// refreshers are the credential refreshers of a Server's deployments.
type refreshers struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startRefreshers starts a refresher for each deployment that needs one (nil when none
// does) and waits, up to firstTokenWait, until each has finished its first exchange. A
// failed exchange is not fatal: it is retried in the background, and requests get a 503
// until one succeeds.
func startRefreshers(deps map[string]*deployment, log *slog.Logger) *refreshers {
	var runs []func(context.Context, *slog.Logger, func())
	for _, d := range deps {
		if d.cred != nil {
			runs = append(runs, d.cred.run)
		}
	}
	if len(runs) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	rs := &refreshers{cancel: cancel}
	var firsts sync.WaitGroup
	for _, run := range runs {
		firsts.Add(1)
		rs.wg.Add(1)
		once := sync.OnceFunc(firsts.Done)
		go func() {
			defer rs.wg.Done()
			run(ctx, log, once)
		}()
	}
	done := make(chan struct{})
	go func() { firsts.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(firstTokenWait):
		log.Warn("credential exchanges are still running; requests to those deployments fail with 503 until they complete")
	}
	return rs
}

// stop ends the refreshers and waits for them.
func (rs *refreshers) stop() {
	rs.cancel()
	rs.wg.Wait()
}

// Close stops the background work New started: the refreshing of Vertex AI access
// tokens and AWS web-identity credentials. The server answers no request for those
// deployments after it.
func (s *Server) Close() {
	if s.refreshers != nil {
		s.refreshers.stop()
	}
}

// attemptTarget is the target of one attempt: the deployment's own or, for a deployment
// with short-lived credentials, the current one its refresher built. It never blocks.
func (d *deployment) attemptTarget(now time.Time) (*translate.Target, error) {
	if d.cred == nil {
		return &d.target, nil
	}
	return d.cred.current(now)
}

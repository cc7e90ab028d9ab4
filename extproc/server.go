// Package extproc is tollgate's Envoy ExternalProcessor gRPC service. Envoy opens one
// Process stream per request at the router level (the "router stage": authenticate,
// resolve the model alias, translate the response) and one per attempt in each
// deployment cluster's upstream filter chain (the "upstream stage": translate the request
// for that deployment). A stream whose gRPC metadata names a deployment
// (x-tollgate-deployment) is an upstream stream; every other stream is a router stream.
//
// Each stream gets its own processor holding that request's state, with one method per
// ext_proc phase. Everything the hot path needs is precomputed by New, so a request costs
// map lookups, one validating scan of the body and the translation itself.
package extproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/tollgate-dev/tollgate/config"
	"github.com/tollgate-dev/tollgate/translate"
)

// Header and metadata names of the protocol between tollgate, envoy.yaml and the
// emulator. Every x-tollgate-* header a client sends is removed before routing.
const (
	headerPrefix     = "x-tollgate-"
	headerAlias      = "x-tollgate-alias"
	headerEndpoint   = "x-tollgate-endpoint"
	headerRequestID  = "x-tollgate-request-id"
	headerDeployment = "x-tollgate-deployment" // gRPC metadata of upstream streams; response header at router level
)

// maxKeyHeaders is how many headers a key may arrive in: general_settings'
// litellm_key_header_name, Authorization, x-api-key and api-key.
const maxKeyHeaders = 4

// Server implements Envoy's ExternalProcessor service for both stages.
type Server struct {
	extprocv3.UnimplementedExternalProcessorServer

	auth   Authenticator
	limits Limits // nil: no budgets or rate limits
	pricer Pricer
	spend  SpendSink // nil: spend is not recorded
	log    *slog.Logger
	config *config.Config

	aliases     map[string]*alias
	aliasOrder  []*alias // config.yaml order, for listings and error messages
	aliasNames  string   // "a, b, c", for model_not_found messages
	deployments map[string]*deployment
	keyHeaders  []string    // request headers a key may arrive in, in precedence order; at most maxKeyHeaders
	created     int64       // "created" of every model in /v1/models
	allModels   []byte      // /v1/models for keys that may use every alias
	refreshers  *refreshers // keep Vertex AI tokens and AWS web-identity credentials current; see Close
}

// alias is one model_name and the deployments that serve it.
type alias struct {
	name        string
	deployments []*deployment
	chain       []*deployment // its deployments, then its fallbacks': where an attempt may go
	groups      []string      // model_info.access_groups of its deployments
}

// serves reports whether any deployment of the alias serves ep.
func (a *alias) serves(ep translate.Endpoint) bool {
	if ep.Native() {
		return a.speaksNative(ep)
	}
	for _, d := range a.deployments {
		if d.spec.Serves(ep) {
			return true
		}
	}
	return false
}

// deployment is one model_list entry, ready for translation.
type deployment struct {
	id     string
	alias  string
	spec   *translate.Spec
	target translate.Target
	// cred keeps the target current for a deployment with short-lived credentials: a
	// vertex_ai/ access token, or temporary AWS keys for bedrock/.
	cred *credential[*translate.Target]
}

// Deps are the stores the server reaches through the interfaces it declares.
type Deps struct {
	Auth Authenticator // required
	// Limits and Pricer enforce budgets and rate limits; both or neither.
	Limits Limits
	Pricer Pricer
	// Spend records every request's spend (needs Pricer to price it); nil records nothing.
	Spend SpendSink
}

// New precomputes everything the request path needs from cfg: each deployment's parsed
// target and translator, each alias's deployments and fallback chain. It fails when a
// deployment names an unknown provider or an unusable api_base, which config.Load should
// already have reported. A nil logger discards logs.
//
// For vertex_ai/ deployments with a service-account key, New starts refreshing their
// access tokens in the background and waits for the first exchanges (see
// startRefreshers); Close stops that.
func New(cfg *config.Config, deps Deps, logger *slog.Logger) (*Server, error) {
	if deps.Auth == nil {
		return nil, errors.New("extproc: no Authenticator")
	}
	if deps.Pricer == nil && (deps.Limits != nil || deps.Spend != nil) {
		return nil, errors.New("extproc: Limits and Spend need a Pricer")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		auth:        deps.Auth,
		limits:      deps.Limits,
		pricer:      deps.Pricer,
		spend:       deps.Spend,
		log:         logger.With("component", "extproc"),
		config:      cfg,
		aliases:     map[string]*alias{},
		deployments: map[string]*deployment{},
		created:     time.Now().Unix(),
	}
	var errs []error
	for _, d := range cfg.Deployments {
		dep, err := newDeployment(d)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := s.deployments[d.ID]; dup {
			errs = append(errs, fmt.Errorf("deployment id %q is used twice", d.ID))
			continue
		}
		s.deployments[d.ID] = dep
		a := s.aliases[d.Alias]
		if a == nil {
			a = &alias{name: d.Alias}
			s.aliases[d.Alias] = a
			s.aliasOrder = append(s.aliasOrder, a)
		}
		a.deployments = append(a.deployments, dep)
		a.groups = append(a.groups, d.Info.AccessGroups...)
	}
	for _, a := range s.aliasOrder {
		a.chain = a.deployments
		for _, fb := range cfg.FallbacksFor(a.name) {
			if f := s.aliases[fb]; f != nil {
				a.chain = append(a.chain[:len(a.chain):len(a.chain)], f.deployments...)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("extproc: %w", err)
	}
	names := make([]string, len(s.aliasOrder))
	for i, a := range s.aliasOrder {
		names[i] = a.name
	}
	s.aliasNames = strings.Join(names, ", ")
	s.keyHeaders = []string{"authorization", "x-api-key", "api-key"}
	if h := strings.ToLower(cfg.KeyHeader); h != "" && !slices.Contains(s.keyHeaders, h) {
		s.keyHeaders = slices.Insert(s.keyHeaders, 0, h) // the configured header wins
	}
	s.allModels = s.modelList(&Principal{})
	s.refreshers = startRefreshers(s.deployments, s.log)
	return s, nil
}

func newDeployment(d *config.Deployment) (*deployment, error) {
	spec, ok := translate.LookupModel(d.Provider, d.Model)
	if !ok {
		return nil, fmt.Errorf("deployment %s: unknown provider %q", d.ID, d.Provider)
	}
	base := d.APIBase
	if base == "" {
		base = spec.DefaultBase
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("deployment %s: api_base: %w", d.ID, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("deployment %s: api_base %q is not an http(s) URL with a host", d.ID, base)
	}
	dep := &deployment{
		id:    d.ID,
		alias: d.Alias,
		spec:  spec,
		target: translate.Target{
			Provider:     d.Provider,
			Model:        d.Model,
			Base:         u,
			APIKey:       d.APIKey.Reveal(),
			APIVersion:   d.APIVersion,
			Organization: d.Organization,
			ExtraHeaders: d.ExtraHeaders,
		},
	}
	dep.addCloudCredentials(d)
	return dep, nil
}

// Register adds the ExternalProcessor service to g.
func (s *Server) Register(g *grpc.Server) { extprocv3.RegisterExternalProcessorServer(g, s) }

// processor handles one stream's messages, one method per ext_proc phase. Each method
// returns exactly the one response Envoy expects for the message.
type processor interface {
	requestHeaders(*extprocv3.HttpHeaders) *extprocv3.ProcessingResponse
	requestBody(*extprocv3.HttpBody) *extprocv3.ProcessingResponse
	responseHeaders(*extprocv3.HttpHeaders) *extprocv3.ProcessingResponse
	responseBody(*extprocv3.HttpBody) *extprocv3.ProcessingResponse
}

// Process serves one ext_proc stream: one HTTP request at the router level, or one
// attempt at the upstream level.
func (s *Server) Process(stream extprocv3.ExternalProcessor_ProcessServer) error {
	var p processor
	md, _ := metadata.FromIncomingContext(stream.Context())
	if ids := md.Get(headerDeployment); len(ids) > 0 {
		p = s.newUpstream(stream.Context(), ids[0])
	} else {
		r := &router{s: s, ctx: stream.Context(), start: time.Now()}
		defer r.close()
		p = r
	}
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(s.dispatch(stream.Context(), p, req)); err != nil {
			return err
		}
	}
}

// dispatch routes one message to its phase. Trailers are never configured to be sent;
// should an envoy.yaml send them anyway, they are acknowledged unchanged rather than
// failing the request with a spurious message.
func (s *Server) dispatch(ctx context.Context, p processor, req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
	switch r := req.Request.(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		return p.requestHeaders(r.RequestHeaders)
	case *extprocv3.ProcessingRequest_RequestBody:
		return p.requestBody(r.RequestBody)
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		return p.responseHeaders(r.ResponseHeaders)
	case *extprocv3.ProcessingRequest_ResponseBody:
		return p.responseBody(r.ResponseBody)
	case *extprocv3.ProcessingRequest_RequestTrailers:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestTrailers{
			RequestTrailers: &extprocv3.TrailersResponse{}}}
	case *extprocv3.ProcessingRequest_ResponseTrailers:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseTrailers{
			ResponseTrailers: &extprocv3.TrailersResponse{}}}
	}
	// A message kind newer than this code: ending processing is the only safe answer.
	return s.reject(ctx, fmt.Errorf("unexpected ext_proc message %T", req.Request), "")
}

// reject ends a request with err, rendered as an OpenAI error by apiError. Client errors
// are logged at debug level; internal ones, whose cause the client is not told, at error
// level.
func (s *Server) reject(ctx context.Context, err error, requestID string, headers ...*corev3.HeaderValueOption) *extprocv3.ProcessingResponse {
	resp, _ := s.rejectAs(ctx, err, requestID, (*translate.APIError).JSON, headers...)
	return resp
}

// rejectAs is reject with the error body rendered by render: Anthropic's error shape for
// clients of its native API, OpenAI's for everyone else. It also returns the error as
// the client sees it.
func (s *Server) rejectAs(ctx context.Context, err error, requestID string, render func(*translate.APIError) []byte,
	headers ...*corev3.HeaderValueOption) (*extprocv3.ProcessingResponse, *translate.APIError) {
	e, internal := apiError(err)
	for _, h := range e.Headers {
		headers = append(headers, set(h.Key, h.Value))
	}
	if internal {
		s.log.LogAttrs(ctx, slog.LevelError, "request failed", slog.String("request_id", requestID), slog.Any("err", err))
	} else if s.log.Enabled(ctx, slog.LevelDebug) {
		s.log.LogAttrs(ctx, slog.LevelDebug, "request rejected", slog.String("request_id", requestID),
			slog.Int("status", e.Status), slog.String("code", e.Code), slog.String("message", e.Message))
	}
	return reply(e.Status, render(e), requestID, headers...), e
}

// ServerOptions are the options the gRPC server serving s must be created with.
//
// A BUFFERED body arrives as one message, so the receive limit must hold the largest
// body Envoy lets through (grpc-go's default of 4 MiB would fail bigger requests with a
// gRPC error, and Envoy with a 500). Fixed flow-control windows turn off grpc-go's
// bandwidth-delay-product estimator, which answers received data with PING frames: on a
// local socket to Envoy they buy nothing and cost a write and a read per probe.
func (s *Server) ServerOptions() []grpc.ServerOption {
	limit := max(s.config.MaxRequestBytes, minMessageBytes) + messageOverhead
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(int(limit)),
		grpc.InitialWindowSize(1 << 20),
		grpc.InitialConnWindowSize(1 << 24),
	}
}

const (
	// minMessageBytes bounds buffered response bodies, which MaxRequestBytes does not.
	minMessageBytes = 32 << 20
	// messageOverhead is room for the headers and framing around a body.
	messageOverhead = 1 << 20
)

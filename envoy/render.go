package envoy

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	upstreamcodecv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/upstream_codec/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	prioritygroupv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/router/cluster_specifiers/priority_group/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tollgate-dev/tollgate/config"
)

// Extension names Envoy registers its factories under.
const (
	extProcFilter       = "envoy.filters.http.ext_proc"
	routerFilter        = "envoy.filters.http.router"
	upstreamCodecFilter = "envoy.filters.http.upstream_codec"
	hcmFilter           = "envoy.filters.network.http_connection_manager"
	tlsTransportSocket  = "envoy.transport_sockets.tls"
	priorityGroupPlugin = "envoy.router.cluster_specifier_plugin.priority_group"
	// httpProtocolOptionsKey is the typed_extension_protocol_options key Envoy looks the
	// cluster's HTTP options (and upstream HTTP filters) up by.
	httpProtocolOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
)

// The route behaviour every alias route shares.
const (
	// retryOn retries provider errors, dropped connections and rate limits (429 through
	// retriable_status_codes); never 4xx client errors, which another provider would
	// reject too.
	retryOn = "5xx,reset,connect-failure,retriable-status-codes"
	// messageTimeout is both ext_proc filters' message_timeout. Envoy's default (200 ms)
	// is too short for translating a large body, and an upstream filter's timeout is a
	// local reply that is never retried.
	messageTimeout = time.Second
	// connectTimeout bounds connecting to a provider.
	connectTimeout = 10 * time.Second
	// localConnectTimeout bounds connecting to tollgate itself.
	localConnectTimeout = time.Second
)

// adminPrefixes are the paths tollgate's admin HTTP server answers, LiteLLM's admin API.
var adminPrefixes = []string{"/key/", "/team/", "/user/", "/customer/", "/spend/", "/global/", "/model/"}

// noRouteBody is the catch-all route's answer, in OpenAI's error format so SDKs show it.
const noRouteBody = `{"error":{"message":"tollgate: no model route matched this request","type":"invalid_request_error","param":null,"code":"route_not_found"}}`

// RenderOptions are the deployment-specific parts of the rendered envoy.yaml.
type RenderOptions struct {
	// Listen is the listener's host:port; the host must be an IP. Default 0.0.0.0:10000.
	Listen string
	// TLSCert and TLSKey are PEM file paths as Envoy sees them. The listener serves TLS
	// when both are set.
	TLSCert, TLSKey string
	// GRPCAddr is tollgate's ext_proc gRPC server: host:port or unix:/path. Required.
	GRPCAddr string
	// AdminAddr is tollgate's admin HTTP server: host:port or unix:/path. Required.
	AdminAddr string
	// EnvoyAdmin is Envoy's own admin interface, ip:port. Default 127.0.0.1:9901: it must
	// not be reachable from outside, it can shut Envoy down.
	EnvoyAdmin string
	// UpstreamCA is the CA bundle, as a file path Envoy sees, that provider certificates
	// are verified against. Default /etc/ssl/certs/ca-certificates.crt (present in the
	// envoyproxy/envoy images). Without it Envoy would send provider keys to any peer.
	UpstreamCA string
}

// withDefaults fills the documented defaults and checks the required fields.
func (o RenderOptions) withDefaults() (RenderOptions, error) {
	if o.Listen == "" {
		o.Listen = "0.0.0.0:10000"
	}
	if o.EnvoyAdmin == "" {
		o.EnvoyAdmin = "127.0.0.1:9901"
	}
	if o.UpstreamCA == "" {
		o.UpstreamCA = "/etc/ssl/certs/ca-certificates.crt"
	}
	var errs []error
	if o.GRPCAddr == "" {
		errs = append(errs, errors.New("the tollgate gRPC address is required"))
	}
	if o.AdminAddr == "" {
		errs = append(errs, errors.New("the tollgate admin address is required"))
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		errs = append(errs, errors.New("TLS needs both a certificate and a key file"))
	}
	return o, errors.Join(errs...)
}

// Render builds the envoy.yaml that runs tollgate behind Envoy (see the package README):
// one listener whose HTTP filters are the router-level ext_proc filter and the router,
// one route per model alias walking its fallback chain through priority groups, and one
// cluster per deployment carrying the per-attempt ext_proc filter. Every problem with
// cfg or o is reported at once.
func Render(cfg *config.Config, o RenderOptions) (*bootstrapv3.Bootstrap, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("render envoy.yaml: %w", err)
	}
	r := &renderer{cfg: cfg, o: o}
	listener := r.listener()
	clusters := r.clusters()
	admin, err := ipAddress(o.EnvoyAdmin)
	if err != nil {
		r.fail(fmt.Errorf("envoy admin address: %w", err))
	}
	if len(r.errs) > 0 {
		return nil, fmt.Errorf("render envoy.yaml: %w", errors.Join(r.errs...))
	}
	return &bootstrapv3.Bootstrap{
		Admin: &bootstrapv3.Admin{Address: admin},
		StaticResources: &bootstrapv3.Bootstrap_StaticResources{
			Listeners: []*listenerv3.Listener{listener},
			Clusters:  clusters,
		},
	}, nil
}

// renderer builds one Bootstrap, collecting every problem on the way.
type renderer struct {
	cfg  *config.Config
	o    RenderOptions
	errs []error
}

func (r *renderer) fail(err error) { r.errs = append(r.errs, err) }

// pack wraps m in an Any. Packing fails only on strings that are not UTF-8, which
// config.yaml cannot hold, but the problem is reported rather than assumed away.
func (r *renderer) pack(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		r.fail(fmt.Errorf("pack %s: %w", m.ProtoReflect().Descriptor().FullName(), err))
		return &anypb.Any{}
	}
	return a
}

// listener builds the listener with its HTTP connection manager.
func (r *renderer) listener() *listenerv3.Listener {
	addr, err := ipAddress(r.o.Listen)
	if err != nil {
		r.fail(fmt.Errorf("listen address: %w", err))
	}
	if r.cfg.MaxRequestBytes <= 0 {
		r.fail(fmt.Errorf("max request size %d: must be positive", r.cfg.MaxRequestBytes))
	}
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix: ListenerName,
		// The edge: trust the connection's peer address, not a client-sent
		// x-forwarded-for, so client requests count as external and Envoy strips their
		// x-envoy-* control headers (retries, timeouts) before any filter runs.
		UseRemoteAddress: wrapperspb.Bool(true),
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: &routev3.RouteConfiguration{
			Name: ListenerName,
			VirtualHosts: []*routev3.VirtualHost{{
				Name:    ListenerName,
				Domains: []string{"*"},
				// Retries replay the buffered request body; above this limit Envoy
				// gives up on retries, so it must hold the largest body tollgate accepts.
				RequestBodyBufferLimit: wrapperspb.UInt64(uint64(max(r.cfg.MaxRequestBytes, 0))),
				// x-envoy-attempt-count on the response tells the router stage how many
				// attempts (retries and fallbacks) the request took, for its spend record.
				IncludeAttemptCountInResponse: true,
				Routes:                        r.routes(),
			}},
		}},
		HttpFilters: []*hcmv3.HttpFilter{
			r.httpFilter(RouterFilterName, routerExtProc()),
			r.httpFilter(routerFilter, &routerv3.Router{}),
		},
	}
	chain := &listenerv3.FilterChain{
		Filters: []*listenerv3.Filter{{
			Name:       hcmFilter,
			ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: r.pack(hcm)},
		}},
	}
	if r.o.TLSCert != "" {
		chain.TransportSocket = r.transportSocket(&tlsv3.DownstreamTlsContext{
			CommonTlsContext: &tlsv3.CommonTlsContext{
				TlsCertificates: []*tlsv3.TlsCertificate{{
					CertificateChain: fileSource(r.o.TLSCert),
					PrivateKey:       fileSource(r.o.TLSKey),
				}},
				AlpnProtocols: []string{"h2", "http/1.1"},
			},
		})
	}
	return &listenerv3.Listener{
		Name:         ListenerName,
		Address:      addr,
		FilterChains: []*listenerv3.FilterChain{chain},
	}
}

// routerExtProc is the router-level ext_proc filter: one stream per request that sees
// the request headers and body and the response headers and body.
func routerExtProc() *extprocv3.ExternalProcessor {
	return &extprocv3.ExternalProcessor{
		GrpcService: grpcService(HeaderStage, StageRouter),
		ProcessingMode: &extprocv3.ProcessingMode{
			RequestHeaderMode: extprocv3.ProcessingMode_SEND,
			// BUFFERED, never STREAMED: with retries Envoy duplicates a streamed request
			// body (envoyproxy/envoy #36119, #45470).
			RequestBodyMode:     extprocv3.ProcessingMode_BUFFERED,
			RequestTrailerMode:  extprocv3.ProcessingMode_SKIP,
			ResponseHeaderMode:  extprocv3.ProcessingMode_SEND,
			ResponseBodyMode:    extprocv3.ProcessingMode_BUFFERED,
			ResponseTrailerMode: extprocv3.ProcessingMode_SKIP,
		},
		// The response-headers reply switches SSE responses to STREAMED.
		AllowModeOverride: true,
		MessageTimeout:    durationpb.New(messageTimeout),
		// allow_envoy lets the router stage set x-envoy-max-retries per request.
		MutationRules: &mutationrulesv3.HeaderMutationRules{AllowEnvoy: wrapperspb.Bool(true)},
		MetadataOptions: &extprocv3.MetadataOptions{
			ReceivingNamespaces: &extprocv3.MetadataOptions_MetadataNamespaces{
				Untyped: []string{MetadataNamespace},
			},
		},
		// Fail closed: without tollgate no request is authenticated.
		FailureModeAllow: false,
	}
}

// upstreamExtProc is the per-attempt ext_proc filter of one deployment's cluster: it sees
// the request headers and body of every attempt and translates them for the provider.
func upstreamExtProc(deploymentID string) *extprocv3.ExternalProcessor {
	return &extprocv3.ExternalProcessor{
		GrpcService: grpcService(HeaderDeployment, deploymentID),
		ProcessingMode: &extprocv3.ProcessingMode{
			RequestHeaderMode:   extprocv3.ProcessingMode_SEND,
			RequestBodyMode:     extprocv3.ProcessingMode_BUFFERED,
			RequestTrailerMode:  extprocv3.ProcessingMode_SKIP,
			ResponseHeaderMode:  extprocv3.ProcessingMode_SKIP,
			ResponseBodyMode:    extprocv3.ProcessingMode_NONE,
			ResponseTrailerMode: extprocv3.ProcessingMode_SKIP,
		},
		MessageTimeout: durationpb.New(messageTimeout),
		// The upstream stage sets :authority for the provider.
		MutationRules: &mutationrulesv3.HeaderMutationRules{AllowAllRouting: wrapperspb.Bool(true)},
		// Fail closed: failing open would send the client's request, and its virtual
		// key, to the provider untranslated.
		FailureModeAllow: false,
	}
}

// grpcService points an ext_proc filter at tollgate, tagging its streams with one
// metadata entry.
func grpcService(key, value string) *corev3.GrpcService {
	return &corev3.GrpcService{
		TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{
			ClusterName: ExtProcCluster,
		}},
		InitialMetadata: []*corev3.HeaderValue{{Key: key, Value: value}},
	}
}

// routes builds the admin routes, one route per alias and the catch-all.
func (r *renderer) routes() []*routev3.Route {
	var routes []*routev3.Route
	disabled := map[string]*anypb.Any{
		RouterFilterName: r.pack(&extprocv3.ExtProcPerRoute{
			Override: &extprocv3.ExtProcPerRoute_Disabled{Disabled: true},
		}),
	}
	for _, prefix := range adminPrefixes {
		routes = append(routes, &routev3.Route{
			Name:  "admin" + strings.TrimSuffix(prefix, "/"),
			Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: prefix}},
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{
				ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: AdminCluster},
			}},
			// The admin server authenticates its callers itself.
			TypedPerFilterConfig: disabled,
		})
	}
	if r.cfg.RequestTimeout < 0 {
		r.fail(fmt.Errorf("negative request timeout %v", r.cfg.RequestTimeout))
	}
	for _, alias := range r.cfg.Aliases() {
		routes = append(routes, r.aliasRoute(alias))
	}
	return append(routes, &routev3.Route{
		Name:  "no_route",
		Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
		Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{
			Status: 404,
			Body:   &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: noRouteBody}},
		}},
		ResponseHeadersToAdd: []*corev3.HeaderValueOption{setHeader("content-type", "application/json")},
	})
}

// aliasRoute is the route for one alias: selected by the x-tollgate-alias header the
// router stage sets, each attempt sent to the next priority group of the alias's chain.
func (r *renderer) aliasRoute(alias string) *routev3.Route {
	chain := Chain(r.cfg, alias)
	spec := &prioritygroupv3.PriorityGroupClusterSpecifier{OverrideMetadataNamespace: MetadataNamespace}
	for _, g := range chain {
		pg := &prioritygroupv3.PriorityGroup{Name: g.Name}
		for _, c := range g.Clusters {
			pg.Clusters = append(pg.Clusters, &prioritygroupv3.ClusterWeight{
				ClusterName: c,
				Weight:      wrapperspb.UInt32(1),
			})
		}
		spec.PriorityGroups = append(spec.PriorityGroups, pg)
	}
	retry := &routev3.RetryPolicy{
		RetryOn:              retryOn,
		RetriableStatusCodes: []uint32{429},
		NumRetries:           wrapperspb.UInt32(uint32(len(chain) - 1)),
		// Without it every retry stays on the first attempt's cluster.
		RefreshClusterOnRetry: true,
	}
	action := &routev3.RouteAction{
		ClusterSpecifier: &routev3.RouteAction_InlineClusterSpecifierPlugin{
			InlineClusterSpecifierPlugin: &routev3.ClusterSpecifierPlugin{
				Extension: &corev3.TypedExtensionConfig{Name: priorityGroupPlugin, TypedConfig: r.pack(spec)},
			},
		},
		RetryPolicy: retry,
		// No overall deadline: streams can run long. Each attempt is bounded instead.
		Timeout: durationpb.New(0),
	}
	if r.cfg.RequestTimeout > 0 {
		retry.PerTryTimeout = durationpb.New(r.cfg.RequestTimeout)
		action.IdleTimeout = durationpb.New(r.cfg.RequestTimeout)
	}
	return &routev3.Route{
		Name: "alias:" + alias,
		Match: &routev3.RouteMatch{
			PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"},
			Headers: []*routev3.HeaderMatcher{{
				Name: HeaderAlias,
				HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
					MatchPattern: &matcherv3.StringMatcher_Exact{Exact: alias},
				}},
			}},
		},
		Action: &routev3.Route_Route{Route: action},
		// Tells the router stage which deployment answered.
		ResponseHeadersToAdd: []*corev3.HeaderValueOption{setHeader(HeaderDeployment, "%UPSTREAM_CLUSTER%")},
	}
}

// clusters builds tollgate's two clusters and one cluster per deployment.
func (r *renderer) clusters() []*clusterv3.Cluster {
	extProc, err := localCluster(ExtProcCluster, r.o.GRPCAddr)
	if err != nil {
		r.fail(fmt.Errorf("tollgate gRPC address: %w", err))
	} else {
		// gRPC needs HTTP/2.
		extProc.TypedExtensionProtocolOptions = map[string]*anypb.Any{
			httpProtocolOptionsKey: r.pack(&httpv3.HttpProtocolOptions{UpstreamProtocolOptions: explicitHTTP2()}),
		}
	}
	admin, err := localCluster(AdminCluster, r.o.AdminAddr)
	if err != nil {
		r.fail(fmt.Errorf("tollgate admin address: %w", err))
	}
	clusters := []*clusterv3.Cluster{extProc, admin}
	seen := map[string]bool{ExtProcCluster: true, AdminCluster: true}
	for _, d := range r.cfg.Deployments {
		if seen[d.ID] {
			r.fail(fmt.Errorf("deployment %q: cluster name already used", d.ID))
			continue
		}
		seen[d.ID] = true
		if c := r.deploymentCluster(d); c != nil {
			clusters = append(clusters, c)
		}
	}
	return clusters
}

// localCluster is a cluster for a tollgate server: one address, STATIC for an IP or a
// unix socket, STRICT_DNS for a host name so every tollgate replica behind it gets streams.
func localCluster(name, addr string) (*clusterv3.Cluster, error) {
	a, static, err := serverAddress(addr)
	if err != nil {
		return nil, err
	}
	kind := clusterv3.Cluster_STRICT_DNS
	if static {
		kind = clusterv3.Cluster_STATIC
	}
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: kind},
		ConnectTimeout:       durationpb.New(localConnectTimeout),
		LoadAssignment:       loadAssignment(name, a),
	}, nil
}

// deploymentCluster is the cluster of one deployment: its provider endpoint, TLS with SNI
// for https, and the upstream HTTP filters that translate every attempt.
func (r *renderer) deploymentCluster(d *config.Deployment) *clusterv3.Cluster {
	host, port, tls, err := apiBaseEndpoint(d.APIBase)
	if err != nil {
		r.fail(fmt.Errorf("deployment %q: api_base: %w", d.ID, err))
		return nil
	}
	kind := clusterv3.Cluster_LOGICAL_DNS
	if net.ParseIP(host) != nil {
		kind = clusterv3.Cluster_STATIC
	}
	c := &clusterv3.Cluster{
		Name:                 d.ID,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: kind},
		ConnectTimeout:       durationpb.New(connectTimeout),
		LoadAssignment: loadAssignment(d.ID, &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: socketAddress(host, port),
		}}),
		TypedExtensionProtocolOptions: map[string]*anypb.Any{
			httpProtocolOptionsKey: r.pack(&httpv3.HttpProtocolOptions{
				UpstreamProtocolOptions: explicitHTTP1(),
				HttpFilters: []*hcmv3.HttpFilter{
					r.httpFilter(UpstreamFilterName, upstreamExtProc(d.ID)),
					r.httpFilter(upstreamCodecFilter, &upstreamcodecv3.UpstreamCodec{}),
				},
			}),
		},
	}
	if tls {
		c.TransportSocket = r.transportSocket(upstreamTLS(host, r.o.UpstreamCA))
	}
	return c
}

// upstreamTLS verifies the provider's certificate against the CA bundle and its name.
func upstreamTLS(host, caFile string) *tlsv3.UpstreamTlsContext {
	san := &tlsv3.SubjectAltNameMatcher{
		SanType: tlsv3.SubjectAltNameMatcher_DNS,
		Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: host}},
	}
	ctx := &tlsv3.UpstreamTlsContext{
		CommonTlsContext: &tlsv3.CommonTlsContext{
			ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{
				ValidationContext: &tlsv3.CertificateValidationContext{
					TrustedCa:                 fileSource(caFile),
					MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{san},
				},
			},
		},
	}
	if net.ParseIP(host) != nil {
		// SNI carries host names only (RFC 6066 section 3).
		san.SanType = tlsv3.SubjectAltNameMatcher_IP_ADDRESS
	} else {
		ctx.Sni = host
	}
	return ctx
}

// apiBaseEndpoint is where a deployment's api_base points: host, port (443 for https and
// 80 for http when absent) and whether to speak TLS.
func apiBaseEndpoint(apiBase string) (host string, port uint32, tls bool, err error) {
	if apiBase == "" {
		return "", 0, false, errors.New("empty")
	}
	u, err := url.Parse(apiBase)
	if err != nil {
		return "", 0, false, err
	}
	switch u.Scheme {
	case "https":
		tls, port = true, 443
	case "http":
		port = 80
	default:
		return "", 0, false, fmt.Errorf("%q: scheme must be http or https", apiBase)
	}
	host = u.Hostname()
	if host == "" {
		return "", 0, false, fmt.Errorf("%q: no host", apiBase)
	}
	if p := u.Port(); p != "" {
		n, err := parsePort(p)
		if err != nil {
			return "", 0, false, fmt.Errorf("%q: %w", apiBase, err)
		}
		port = n
	}
	return host, port, tls, nil
}

// serverAddress parses "host:port" or "unix:/path"; static reports an IP or a unix
// socket, which need no DNS.
func serverAddress(s string) (addr *corev3.Address, static bool, err error) {
	if path, ok := strings.CutPrefix(s, "unix:"); ok {
		if !strings.HasPrefix(path, "/") {
			return nil, false, fmt.Errorf("%q: unix socket path must be absolute", s)
		}
		return &corev3.Address{Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: path}}}, true, nil
	}
	host, port, err := hostPort(s)
	if err != nil {
		return nil, false, err
	}
	addr = &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: socketAddress(host, port)}}
	return addr, net.ParseIP(host) != nil, nil
}

// ipAddress parses "ip:port", the only form Envoy binds listeners and its admin to.
func ipAddress(s string) (*corev3.Address, error) {
	host, port, err := hostPort(s)
	if err != nil {
		return nil, err
	}
	if net.ParseIP(host) == nil {
		return nil, fmt.Errorf("%q: host must be an IP address", s)
	}
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: socketAddress(host, port)}}, nil
}

// hostPort splits "host:port" and checks the port.
func hostPort(s string) (string, uint32, error) {
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	if host == "" {
		return "", 0, fmt.Errorf("%q: no host", s)
	}
	port, err := parsePort(p)
	if err != nil {
		return "", 0, fmt.Errorf("%q: %w", s, err)
	}
	return host, port, nil
}

// parsePort parses a TCP port, 1 to 65535.
func parsePort(p string) (uint32, error) {
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("bad port %q", p)
	}
	return uint32(n), nil
}

// socketAddress is host:port as Envoy spells it.
func socketAddress(host string, port uint32) *corev3.SocketAddress {
	return &corev3.SocketAddress{
		Address:       host,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}
}

// loadAssignment is a cluster's one endpoint.
func loadAssignment(cluster string, addr *corev3.Address) *endpointv3.ClusterLoadAssignment {
	return &endpointv3.ClusterLoadAssignment{
		ClusterName: cluster,
		Endpoints: []*endpointv3.LocalityLbEndpoints{{
			LbEndpoints: []*endpointv3.LbEndpoint{{
				HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: addr}},
			}},
		}},
	}
}

// explicitHTTP1 makes a cluster speak HTTP/1.1, which every provider does.
func explicitHTTP1() *httpv3.HttpProtocolOptions_ExplicitHttpConfig_ {
	return &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
		ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions{
			HttpProtocolOptions: &corev3.Http1ProtocolOptions{},
		},
	}}
}

// explicitHTTP2 makes a cluster speak HTTP/2, which gRPC needs.
func explicitHTTP2() *httpv3.HttpProtocolOptions_ExplicitHttpConfig_ {
	return &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
		ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
			Http2ProtocolOptions: &corev3.Http2ProtocolOptions{},
		},
	}}
}

// httpFilter is a named HTTP filter with its typed config.
func (r *renderer) httpFilter(name string, config proto.Message) *hcmv3.HttpFilter {
	return &hcmv3.HttpFilter{Name: name, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: r.pack(config)}}
}

// transportSocket is a TLS transport socket with its typed config.
func (r *renderer) transportSocket(config proto.Message) *corev3.TransportSocket {
	return &corev3.TransportSocket{
		Name:       tlsTransportSocket,
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: r.pack(config)},
	}
}

// fileSource is a data source read from a file Envoy sees.
func fileSource(path string) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: path}}
}

// setHeader sets a header, replacing any value already there.
func setHeader(key, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: key, Value: value},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

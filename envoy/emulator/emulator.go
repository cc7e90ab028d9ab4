// Package emulator plays Envoy for tests and for `tollgate dev`: it loads the envoy.yaml
// that production Envoy runs (a Bootstrap from envoy.Parse), serves its listener and
// plays Envoy's side of the ext_proc protocol over real gRPC, following Envoy's source
// (ext_proc filter, router, retry state, priority_group cluster specifier, upstream
// filters) as closely as a Go process can. It refuses configuration it does not
// reproduce instead of ignoring it.
//
// It never imports tollgate's extproc package: like Envoy, it only talks gRPC to it.
package emulator

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/anypb"
)

// defaultConnectionBufferLimit is Listener.per_connection_buffer_limit_bytes' default.
const defaultConnectionBufferLimit = 1024 * 1024

const hcmType = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"

// Options tune an Emulator.
type Options struct {
	// Logger receives the emulator's logs; nil discards them.
	Logger *slog.Logger
	// ListenOverride replaces the listener's address: "host:port" (e.g. "127.0.0.1:0" in
	// tests) or "unix:/path".
	ListenOverride string
	// UpstreamRootCAs are trusted, in addition to trusted_ca, by clusters whose
	// UpstreamTlsContext has a validation_context (tests trust httptest certificates
	// this way). Clusters without a validation_context do not verify, as in Envoy.
	UpstreamRootCAs *x509.CertPool
}

// Emulator serves one envoy.yaml.
type Emulator struct {
	log                   *slog.Logger
	hcm                   *hcmConfig
	clusters              map[string]*cluster
	listenNetwork         string
	listenAddr            string
	tlsConfig             *tls.Config
	downstreamTLS         bool
	listenerLimit         uint64
	routerSuppressHeaders bool
	conns                 map[string]*grpc.ClientConn

	mu     sync.Mutex
	server *http.Server
	ln     net.Listener
}

// hcmConfig is the compiled HttpConnectionManager.
type hcmConfig struct {
	routes                    *routeTable
	filters                   []*extProcFilter
	codec                     hcmv3.HttpConnectionManager_CodecType
	useRemoteAddress          bool
	xffTrustedHops            uint32
	internalCIDRs             []netip.Prefix
	generateRequestID         bool
	preserveExternalRequestID bool
	serverName                string
}

// New compiles the bootstrap. It fails with every problem found when the configuration
// uses something the emulator cannot reproduce faithfully.
func New(b *bootstrapv3.Bootstrap, opts Options) (*Emulator, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Emulator{log: log.With("component", "envoy-emulator"), clusters: map[string]*cluster{}, conns: map[string]*grpc.ClientConn{}}
	p := &problems{}
	p.unsupported(b, "bootstrap", "node", "static_resources", "admin")
	sr := b.GetStaticResources()
	p.unsupported(sr, "static_resources", "listeners", "clusters")
	for _, c := range sr.GetClusters() {
		if _, dup := e.clusters[c.GetName()]; dup {
			p.addf("clusters[%s]: duplicate cluster name", c.GetName())
			continue
		}
		e.clusters[c.GetName()] = compileCluster(c, opts.UpstreamRootCAs, p)
	}
	if len(sr.GetListeners()) != 1 {
		p.addf("static_resources.listeners: the emulator serves exactly one listener, found %d", len(sr.GetListeners()))
	} else {
		e.compileListener(sr.GetListeners()[0], opts.ListenOverride, p)
	}
	if e.hcm != nil {
		e.checkReferences(p)
	}
	for _, c := range e.clusters {
		for _, f := range c.filters {
			e.dialExtProc(f, p)
		}
	}
	if e.hcm != nil {
		for _, f := range e.hcm.filters {
			e.dialExtProc(f, p)
		}
	}
	if len(p.errs) > 0 {
		e.closeConns()
		return nil, fmt.Errorf("envoy emulator: %w", errors.Join(p.errs...))
	}
	return e, nil
}

func (e *Emulator) compileListener(l *listenerv3.Listener, override string, p *problems) {
	path := "listeners[" + l.GetName() + "]"
	p.unsupported(l, path, "name", "address", "filter_chains", "per_connection_buffer_limit_bytes", "stat_prefix")
	e.listenerLimit = defaultConnectionBufferLimit
	if l.GetPerConnectionBufferLimitBytes() != nil {
		e.listenerLimit = uint64(l.GetPerConnectionBufferLimitBytes().GetValue())
	}
	switch {
	case override != "":
		if rest, ok := strings.CutPrefix(override, "unix:"); ok {
			e.listenNetwork, e.listenAddr = "unix", rest
		} else {
			e.listenNetwork, e.listenAddr = "tcp", override
		}
	case l.GetAddress().GetSocketAddress() != nil:
		sa := l.GetAddress().GetSocketAddress()
		e.listenNetwork, e.listenAddr = "tcp", net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue())))
	case l.GetAddress().GetPipe() != nil:
		e.listenNetwork, e.listenAddr = "unix", l.GetAddress().GetPipe().GetPath()
	default:
		p.addf("%s.address: a socket_address or pipe is required", path)
	}
	if len(l.GetFilterChains()) != 1 {
		p.addf("%s.filter_chains: the emulator supports exactly one filter chain", path)
		return
	}
	fc := l.GetFilterChains()[0]
	p.unsupported(fc, path+".filter_chains[0]", "name", "filters", "transport_socket")
	if ts := fc.GetTransportSocket(); ts != nil {
		e.tlsConfig = compileDownstreamTLS(ts, path+".filter_chains[0].transport_socket", p)
		e.downstreamTLS = true
	}
	if len(fc.GetFilters()) != 1 || fc.GetFilters()[0].GetTypedConfig().MessageName() != hcmType {
		p.addf("%s.filter_chains[0].filters: the emulator supports exactly one http_connection_manager", path)
		return
	}
	var hcm hcmv3.HttpConnectionManager
	if err := fc.GetFilters()[0].GetTypedConfig().UnmarshalTo(&hcm); err != nil {
		p.addf("%s: %w", path, err)
		return
	}
	e.compileHCM(&hcm, path+".http_connection_manager", p)
	if e.tlsConfig != nil && e.hcm != nil && e.hcm.codec != hcmv3.HttpConnectionManager_HTTP1 && len(e.tlsConfig.NextProtos) == 0 {
		e.tlsConfig.NextProtos = []string{"h2", "http/1.1"}
	}
}

func (e *Emulator) compileHCM(hcm *hcmv3.HttpConnectionManager, path string, p *problems) {
	// Connection-level timeouts and protocol options are accepted but not emulated.
	p.unsupported(hcm, path, "codec_type", "stat_prefix", "route_config", "http_filters", "use_remote_address",
		"xff_num_trusted_hops", "internal_address_config", "generate_request_id", "preserve_external_request_id",
		"server_name", "access_log", "common_http_protocol_options", "http_protocol_options",
		"http2_protocol_options", "stream_idle_timeout", "request_timeout", "request_headers_timeout",
		"drain_timeout", "delayed_close_timeout")
	c := &hcmConfig{
		codec:                     hcm.GetCodecType(),
		useRemoteAddress:          hcm.GetUseRemoteAddress().GetValue(),
		xffTrustedHops:            hcm.GetXffNumTrustedHops(),
		generateRequestID:         hcm.GetGenerateRequestId() == nil || hcm.GetGenerateRequestId().GetValue(),
		preserveExternalRequestID: hcm.GetPreserveExternalRequestId(),
		serverName:                hcm.GetServerName(),
	}
	if c.serverName == "" {
		c.serverName = "envoy"
	}
	if c.codec == hcmv3.HttpConnectionManager_HTTP3 {
		p.addf("%s.codec_type: HTTP3 is not supported by the emulator", path)
	}
	// Since Envoy 1.33 no address is internal unless internal_address_config lists it.
	iac := hcm.GetInternalAddressConfig()
	p.unsupported(iac, path+".internal_address_config", "cidr_ranges")
	for _, r := range iac.GetCidrRanges() {
		a, err := netip.ParseAddr(r.GetAddressPrefix())
		if err != nil {
			p.addf("%s.internal_address_config: %w", path, err)
			continue
		}
		c.internalCIDRs = append(c.internalCIDRs, netip.PrefixFrom(a, int(r.GetPrefixLen().GetValue())))
	}
	if hcm.GetRouteConfig() == nil {
		p.addf("%s: an inline route_config is required (rds and scoped routes are not supported by the emulator)", path)
	} else {
		c.routes = compileRouteTable(hcm.GetRouteConfig(), p)
	}
	filters := hcm.GetHttpFilters()
	for i, hf := range filters {
		at := fmt.Sprintf("%s.http_filters[%d]", path, i)
		p.unsupported(hf, at, "name", "typed_config")
		tc := hf.GetTypedConfig()
		last := i == len(filters)-1
		switch {
		case tc == nil:
			p.addf("%s: typed_config is required", at)
		case tc.MessageName() == routerType:
			if !last {
				p.addf("%s: the router must be the last HTTP filter", at)
			}
			var rc routerv3.Router
			if err := tc.UnmarshalTo(&rc); err != nil {
				p.addf("%s: %w", at, err)
			}
			p.unsupported(&rc, at+".typed_config", "suppress_envoy_headers", "dynamic_stats", "start_child_span")
			e.routerSuppressHeaders = rc.GetSuppressEnvoyHeaders()
		case tc.MessageName() == extProcType:
			var cfg extprocfilterv3.ExternalProcessor
			if err := tc.UnmarshalTo(&cfg); err != nil {
				p.addf("%s: %w", at, err)
				continue
			}
			c.filters = append(c.filters, compileExtProc(hf.GetName(), &cfg, false, at, p))
		default:
			p.addf("%s: HTTP filter %s is not supported by the emulator", at, tc.MessageName())
		}
		if last && (tc == nil || tc.MessageName() != routerType) {
			p.addf("%s: the last HTTP filter must be envoy.filters.http.router", at)
		}
	}
	e.hcm = c
}

// checkReferences validates what the emulator resolves by name: route clusters, priority
// group clusters and per-filter configs.
func (e *Emulator) checkReferences(p *problems) {
	t := e.hcm.routes
	if t == nil {
		return
	}
	names := map[string]bool{}
	for _, f := range e.hcm.filters {
		names[f.name] = true
	}
	for _, vh := range t.vhosts {
		for _, r := range vh.routes {
			at := fmt.Sprintf("route %q in virtual host %q", r.name, vh.name)
			if a := r.action; a != nil {
				if a.cluster != "" {
					e.requireCluster(a.cluster, at, p)
				}
				for _, w := range a.weighted {
					e.requireCluster(w.name, at, p)
				}
				if a.priority != nil {
					for _, g := range a.priority.groups {
						for _, c := range g.clusters {
							e.requireCluster(c.name, at+" priority group "+g.name, p)
						}
					}
				}
			}
		}
	}
	for _, m := range e.perFilterMaps() {
		for name, a := range m.configs {
			if !names[name] {
				p.addf("%s: typed_per_filter_config[%s] names no ext_proc filter of the chain", m.at, name)
				continue
			}
			compilePerRoute(a, m.at+".typed_per_filter_config["+name+"]", p)
		}
	}
}

// perFilterMap is one level's typed_per_filter_config.
type perFilterMap struct {
	at      string
	configs map[string]*anypb.Any
}

func (e *Emulator) perFilterMaps() []perFilterMap {
	t := e.hcm.routes
	out := []perFilterMap{{at: "route_config", configs: t.perFilter}}
	for _, vh := range t.vhosts {
		out = append(out, perFilterMap{at: "virtual host " + vh.name, configs: vh.perFilter})
		for _, r := range vh.routes {
			out = append(out, perFilterMap{at: fmt.Sprintf("route %q in virtual host %q", r.name, vh.name), configs: r.perFilter})
		}
	}
	return out
}

func (e *Emulator) requireCluster(name, at string, p *problems) {
	if _, ok := e.clusters[name]; !ok {
		p.addf("%s: unknown cluster %q", at, name)
	}
}

// dialExtProc prepares the gRPC channel of an ext_proc filter's envoy_grpc cluster.
func (e *Emulator) dialExtProc(f *extProcFilter, p *problems) {
	key := f.grpcCluster + "|" + f.authority
	if _, ok := e.conns[key]; ok {
		return
	}
	c, ok := e.clusters[f.grpcCluster]
	switch {
	case !ok:
		p.addf("ext_proc filter %q: unknown grpc cluster %q", f.name, f.grpcCluster)
		return
	case !c.http2:
		p.addf("ext_proc filter %q: cluster %q must speak HTTP/2 for gRPC", f.name, f.grpcCluster)
		return
	case c.tls != nil:
		p.addf("ext_proc filter %q: TLS to the gRPC cluster %q is not supported by the emulator", f.name, f.grpcCluster)
		return
	case len(c.endpoints) != 1:
		p.addf("ext_proc filter %q: the emulator needs exactly one endpoint in gRPC cluster %q", f.name, f.grpcCluster)
		return
	}
	ep := c.endpoints[0]
	target := "passthrough:///" + ep.address
	if ep.network == "unix" {
		target = "unix:" + ep.address
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithAuthority(f.authority))
	if err != nil {
		p.addf("ext_proc filter %q: %w", f.name, err)
		return
	}
	e.conns[key] = conn
}

func (e *Emulator) grpcConn(f *extProcFilter) *grpc.ClientConn {
	return e.conns[f.grpcCluster+"|"+f.authority]
}

func compileDownstreamTLS(ts *corev3.TransportSocket, path string, p *problems) *tls.Config {
	tc := ts.GetTypedConfig()
	if tc == nil || tc.MessageName() != downstreamTLSType {
		p.addf("%s: only DownstreamTlsContext is supported by the emulator", path)
		return nil
	}
	var dtc tlsv3.DownstreamTlsContext
	if err := tc.UnmarshalTo(&dtc); err != nil {
		p.addf("%s: %w", path, err)
		return nil
	}
	p.unsupported(&dtc, path, "common_tls_context")
	ctc := dtc.GetCommonTlsContext()
	p.unsupported(ctc, path+".common_tls_context", "tls_certificates", "alpn_protocols", "tls_params")
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: ctc.GetAlpnProtocols()}
	for i, c := range ctc.GetTlsCertificates() {
		at := fmt.Sprintf("%s.common_tls_context.tls_certificates[%d]", path, i)
		p.unsupported(c, at, "certificate_chain", "private_key")
		chain, err1 := dataSource(c.GetCertificateChain())
		key, err2 := dataSource(c.GetPrivateKey())
		if err := errors.Join(err1, err2); err != nil {
			p.addf("%s: %w", at, err)
			continue
		}
		pair, err := tls.X509KeyPair(chain, key)
		if err != nil {
			p.addf("%s: %w", at, err)
			continue
		}
		cfg.Certificates = append(cfg.Certificates, pair)
	}
	if len(cfg.Certificates) == 0 {
		p.addf("%s: a certificate is required", path)
	}
	return cfg
}

// Start binds the listener and serves in the background until ctx ends or Close.
func (e *Emulator) Start(ctx context.Context) error {
	if e.listenNetwork == "unix" {
		_ = os.Remove(e.listenAddr)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, e.listenNetwork, e.listenAddr)
	if err != nil {
		return fmt.Errorf("envoy emulator: listen: %w", err)
	}
	e.mu.Lock()
	e.ln = ln
	e.mu.Unlock()
	go func() {
		if err := e.Serve(ctx, ln); err != nil {
			e.log.Error("serve", "error", err)
		}
	}()
	return nil
}

// Serve serves the listener on ln until ctx ends or Close; it returns nil after a clean
// shutdown.
func (e *Emulator) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:  http.HandlerFunc(e.serveHTTP),
		ErrorLog: slog.NewLogLogger(e.log.Handler(), slog.LevelDebug),
	}
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(e.hcm.codec != hcmv3.HttpConnectionManager_HTTP2)
	if e.hcm.codec != hcmv3.HttpConnectionManager_HTTP1 {
		if e.tlsConfig != nil {
			srv.Protocols.SetHTTP2(true)
		} else {
			srv.Protocols.SetUnencryptedHTTP2(true)
		}
	}
	if e.tlsConfig != nil {
		srv.TLSConfig = e.tlsConfig
		ln = tls.NewListener(ln, e.tlsConfig)
	}
	e.mu.Lock()
	e.server, e.ln = srv, ln
	e.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { _ = srv.Close() })
	defer stop()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("envoy emulator: %w", err)
	}
	return nil
}

// Addr is the listener's address once serving ("127.0.0.1:port" or a socket path).
func (e *Emulator) Addr() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ln == nil {
		return ""
	}
	return e.ln.Addr().String()
}

// Close stops serving and releases upstream and gRPC connections.
func (e *Emulator) Close() error {
	e.mu.Lock()
	srv := e.server
	e.mu.Unlock()
	var err error
	if srv != nil {
		err = srv.Close()
	}
	for _, c := range e.clusters {
		c.transport.CloseIdleConnections()
	}
	e.closeConns()
	return err
}

func (e *Emulator) closeConns() {
	for _, c := range e.conns {
		_ = c.Close()
	}
}

package emulator

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

// defaultConnectTimeout is Cluster.connect_timeout's default.
const defaultConnectTimeout = 5 * time.Second

const (
	httpProtocolOptionsName = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
	upstreamTLSType         = "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
	downstreamTLSType       = "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
	extProcType             = "envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor"
	upstreamCodecType       = "envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec"
	routerType              = "envoy.extensions.filters.http.router.v3.Router"
)

// cluster is a compiled Cluster: endpoints balanced round robin, a transport per cluster.
type cluster struct {
	name           string
	endpoints      []endpoint
	next           atomic.Uint64
	tls            *tls.Config
	http2          bool
	filters        []*extProcFilter
	connectTimeout time.Duration
	transport      *http.Transport
}

type endpoint struct {
	network, address string
	key              string // host:port the transport pools connections under
}

// connectError marks a failure to establish the upstream connection (TCP or TLS), which
// Envoy reports as a connection failure reset (connect-failure retries).
type connectError struct{ err error }

func (e *connectError) Error() string { return "upstream connect error: " + e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

func compileCluster(c *clusterv3.Cluster, roots *x509.CertPool, p *problems) *cluster {
	path := fmt.Sprintf("clusters[%s]", c.GetName())
	p.unsupported(c, path, "name", "type", "connect_timeout", "load_assignment", "transport_socket",
		"typed_extension_protocol_options", "lb_policy", "dns_lookup_family", "alt_stat_name",
		"per_connection_buffer_limit_bytes", "dns_refresh_rate", "respect_dns_ttl", "circuit_breakers",
		"common_lb_config", "metadata")
	out := &cluster{name: c.GetName(), connectTimeout: durationOr(c.GetConnectTimeout(), defaultConnectTimeout)}
	switch c.GetType() {
	case clusterv3.Cluster_STATIC, clusterv3.Cluster_STRICT_DNS, clusterv3.Cluster_LOGICAL_DNS:
	default:
		p.addf("%s.type: %s is not supported by the emulator", path, c.GetType())
	}
	if c.GetLbPolicy() != clusterv3.Cluster_ROUND_ROBIN {
		p.addf("%s.lb_policy: only ROUND_ROBIN is supported by the emulator", path)
	}
	for _, lle := range c.GetLoadAssignment().GetEndpoints() {
		if lle.GetPriority() != 0 {
			p.addf("%s.load_assignment: endpoint priorities are not supported by the emulator", path)
		}
		for _, lbe := range lle.GetLbEndpoints() {
			addr := lbe.GetEndpoint().GetAddress()
			ep := endpoint{key: fmt.Sprintf("ep%d.invalid:1", len(out.endpoints))}
			switch {
			case addr.GetSocketAddress() != nil:
				sa := addr.GetSocketAddress()
				ep.network = "tcp"
				ep.address = net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue())))
			case addr.GetPipe() != nil:
				ep.network, ep.address = "unix", addr.GetPipe().GetPath()
			default:
				p.addf("%s.load_assignment: only socket_address and pipe endpoints are supported by the emulator", path)
				continue
			}
			out.endpoints = append(out.endpoints, ep)
		}
	}
	if len(out.endpoints) == 0 {
		p.addf("%s: no endpoints", path)
	}
	if ts := c.GetTransportSocket(); ts != nil {
		out.tls = compileUpstreamTLS(ts, roots, path+".transport_socket", p)
	}
	for name, a := range c.GetTypedExtensionProtocolOptions() {
		if name != httpProtocolOptionsName || a.MessageName() != httpProtocolOptionsName {
			p.addf("%s.typed_extension_protocol_options[%s]: not supported by the emulator", path, name)
			continue
		}
		var hpo upstreamhttpv3.HttpProtocolOptions
		if err := a.UnmarshalTo(&hpo); err != nil {
			p.addf("%s: %w", path, err)
			continue
		}
		out.compileProtocolOptions(&hpo, fmt.Sprintf("%s.typed_extension_protocol_options[%s]", path, name), p)
	}
	out.transport = out.newTransport()
	return out
}

func (c *cluster) compileProtocolOptions(hpo *upstreamhttpv3.HttpProtocolOptions, path string, p *problems) {
	p.unsupported(hpo, path, "explicit_http_config", "http_filters", "common_http_protocol_options")
	if ex := hpo.GetExplicitHttpConfig(); ex != nil {
		switch ex.GetProtocolConfig().(type) {
		case *upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions:
			c.http2 = true
		case *upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions:
		default:
			p.addf("%s.explicit_http_config: only HTTP/1.1 and HTTP/2 are supported by the emulator", path)
		}
	} else if hpo.GetUpstreamProtocolOptions() != nil {
		p.addf("%s: only explicit_http_config is supported by the emulator", path)
	}
	filters := hpo.GetHttpFilters()
	for i, hf := range filters {
		at := fmt.Sprintf("%s.http_filters[%d]", path, i)
		tc := hf.GetTypedConfig()
		last := i == len(filters)-1
		switch {
		case tc == nil:
			p.addf("%s: typed_config is required", at)
		case tc.MessageName() == upstreamCodecType:
			if !last {
				p.addf("%s: upstream_codec must be the last upstream filter", at)
			}
		case tc.MessageName() == extProcType:
			var cfg extprocfilterv3.ExternalProcessor
			if err := tc.UnmarshalTo(&cfg); err != nil {
				p.addf("%s: %w", at, err)
				continue
			}
			c.filters = append(c.filters, compileExtProc(hf.GetName(), &cfg, true, at, p))
		default:
			p.addf("%s: upstream filter %s is not supported by the emulator", at, tc.MessageName())
		}
		if last && (tc == nil || tc.MessageName() != upstreamCodecType) {
			p.addf("%s: the last upstream filter must be envoy.filters.http.upstream_codec", at)
		}
	}
}

func compileUpstreamTLS(ts *corev3.TransportSocket, roots *x509.CertPool, path string, p *problems) *tls.Config {
	tc := ts.GetTypedConfig()
	if tc == nil || tc.MessageName() != upstreamTLSType {
		p.addf("%s: only UpstreamTlsContext is supported by the emulator", path)
		return nil
	}
	var utc tlsv3.UpstreamTlsContext
	if err := tc.UnmarshalTo(&utc); err != nil {
		p.addf("%s: %w", path, err)
		return nil
	}
	p.unsupported(&utc, path, "sni", "common_tls_context")
	ctc := utc.GetCommonTlsContext()
	p.unsupported(ctc, path+".common_tls_context", "validation_context", "alpn_protocols", "tls_params")
	cfg := &tls.Config{ServerName: utc.GetSni(), MinVersion: tls.VersionTLS12}
	vc := ctc.GetValidationContext()
	if vc == nil {
		// Without a validation context Envoy does not verify the server certificate.
		cfg.InsecureSkipVerify = true
		return cfg
	}
	p.unsupported(vc, path+".common_tls_context.validation_context", "trusted_ca", "match_typed_subject_alt_names")
	var sans []sanMatcher
	for i, m := range vc.GetMatchTypedSubjectAltNames() {
		at := fmt.Sprintf("%s.common_tls_context.validation_context.match_typed_subject_alt_names[%d]", path, i)
		switch m.GetSanType() {
		case tlsv3.SubjectAltNameMatcher_DNS, tlsv3.SubjectAltNameMatcher_IP_ADDRESS, tlsv3.SubjectAltNameMatcher_URI, tlsv3.SubjectAltNameMatcher_EMAIL:
		default:
			p.addf("%s: SAN type %s is not supported by the emulator", at, m.GetSanType())
			continue
		}
		sans = append(sans, sanMatcher{kind: m.GetSanType(), str: compileStringMatcher(m.GetMatcher(), at+".matcher", p)})
	}
	pool := x509.NewCertPool()
	if roots != nil {
		pool = roots.Clone()
	}
	if vc.GetTrustedCa() != nil {
		pem, err := dataSource(vc.GetTrustedCa())
		if err != nil {
			p.addf("%s.trusted_ca: %w", path, err)
		} else if !pool.AppendCertsFromPEM(pem) {
			p.addf("%s.trusted_ca: no certificate found", path)
		}
	}
	// Envoy checks the chain against trusted_ca but matches no name unless
	// match_typed_subject_alt_names is set, so verification skips the host name.
	cfg.InsecureSkipVerify = true
	cfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
		certs := make([]*x509.Certificate, 0, len(raw))
		for _, r := range raw {
			c, err := x509.ParseCertificate(r)
			if err != nil {
				return fmt.Errorf("parse upstream certificate: %w", err)
			}
			certs = append(certs, c)
		}
		if len(certs) == 0 {
			return errors.New("upstream sent no certificate")
		}
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		if _, err := certs[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter}); err != nil {
			return err
		}
		if len(sans) > 0 && !matchesSAN(certs[0], sans) {
			return errors.New("upstream certificate matches no match_typed_subject_alt_names entry")
		}
		return nil
	}
	return cfg
}

// sanMatcher is one match_typed_subject_alt_names entry.
type sanMatcher struct {
	kind tlsv3.SubjectAltNameMatcher_SanType
	str  *stringMatcher
}

// matchesSAN reports whether any subject alternative name of cert satisfies a matcher.
// An exact DNS matcher also accepts a wildcard certificate name covering it, as Envoy's
// DefaultCertValidator does (dnsNameMatch).
func matchesSAN(cert *x509.Certificate, sans []sanMatcher) bool {
	for _, m := range sans {
		var names []string
		switch m.kind {
		case tlsv3.SubjectAltNameMatcher_DNS:
			names = cert.DNSNames
		case tlsv3.SubjectAltNameMatcher_IP_ADDRESS:
			for _, ip := range cert.IPAddresses {
				names = append(names, ip.String())
			}
		case tlsv3.SubjectAltNameMatcher_URI:
			for _, u := range cert.URIs {
				names = append(names, u.String())
			}
		case tlsv3.SubjectAltNameMatcher_EMAIL:
			names = cert.EmailAddresses
		}
		for _, n := range names {
			if m.str.match(n) || (m.kind == tlsv3.SubjectAltNameMatcher_DNS && m.str.exact != nil && dnsWildcardMatch(*m.str.exact, n)) {
				return true
			}
		}
	}
	return false
}

func dnsWildcardMatch(name, pattern string) bool {
	rest, ok := strings.CutPrefix(strings.ToLower(pattern), "*.")
	if !ok {
		return false
	}
	_, domain, found := strings.Cut(strings.ToLower(name), ".")
	return found && domain == rest
}

func (c *cluster) endpointByKey(key string) (endpoint, bool) {
	for _, ep := range c.endpoints {
		if ep.key == key {
			return ep, true
		}
	}
	return endpoint{}, false
}

// pick returns the next endpoint, round robin.
func (c *cluster) pick() endpoint {
	n := c.next.Add(1) - 1
	return c.endpoints[n%uint64(len(c.endpoints))]
}

func (c *cluster) newTransport() *http.Transport {
	dial := func(ctx context.Context, _, addr string) (net.Conn, error) {
		ep, ok := c.endpointByKey(addr)
		if !ok {
			return nil, &connectError{fmt.Errorf("unknown endpoint %s", addr)}
		}
		d := net.Dialer{Timeout: c.connectTimeout}
		conn, err := d.DialContext(ctx, ep.network, ep.address)
		if err != nil {
			return nil, &connectError{err}
		}
		return conn, nil
	}
	t := &http.Transport{
		DialContext:         dial,
		DisableCompression:  true,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     time.Minute,
	}
	switch {
	case c.tls != nil:
		cfg := c.tls.Clone()
		if c.http2 {
			cfg.NextProtos = []string{"h2"}
			t.ForceAttemptHTTP2 = true
		} else {
			cfg.NextProtos = []string{"http/1.1"}
			t.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		t.TLSClientConfig = cfg
		t.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			tc := tls.Client(conn, cfg.Clone())
			hctx, cancel := context.WithTimeout(ctx, c.connectTimeout)
			defer cancel()
			if err := tc.HandshakeContext(hctx); err != nil {
				_ = conn.Close()
				return nil, &connectError{err}
			}
			return tc, nil
		}
	case c.http2:
		t.Protocols = new(http.Protocols)
		t.Protocols.SetUnencryptedHTTP2(true)
	}
	return t
}

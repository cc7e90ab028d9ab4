package envoy

import (
	"fmt"
	"net"
	"sort"
	"strings"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	upstreamcodecv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/upstream_codec/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	prioritygroupv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/router/cluster_specifiers/priority_group/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/proto"
)

// The rules Envoy enforces in C++ while loading a config, which protoc-gen-validate
// cannot express. Each names the Envoy source (envoyproxy/envoy, v1.40) that enforces it.

// checkRules applies the C++ rules to a Bootstrap's static resources.
func checkRules(ps *problems, b *bootstrapv3.Bootstrap) {
	sr := b.GetStaticResources()
	clusters := map[string]*clusterv3.Cluster{}
	first := map[string]int{}
	for i, c := range sr.GetClusters() {
		p := fmt.Sprintf("static_resources.clusters[%d]", i)
		// source/common/upstream/cluster_manager_impl.cc (loadCluster): a static
		// cluster name may appear once ("cluster manager: duplicate cluster").
		if j, dup := first[c.GetName()]; dup {
			ps.add(join(p, "name"), "duplicate cluster %q (also clusters[%d])", c.GetName(), j)
			continue
		}
		first[c.GetName()] = i
		clusters[c.GetName()] = c
	}
	for i, c := range sr.GetClusters() {
		checkCluster(ps, fmt.Sprintf("static_resources.clusters[%d]", i), c, clusters)
	}
	names := map[string]int{}
	for i, l := range sr.GetListeners() {
		p := fmt.Sprintf("static_resources.listeners[%d]", i)
		// source/common/listener_manager/listener_manager_impl.cc
		// (addOrUpdateListenerInternal): a second listener with a name replaces the first,
		// or fails when its address differs. Either way one of them is lost.
		if j, dup := names[l.GetName()]; dup {
			ps.add(join(p, "name"), "duplicate listener %q (also listeners[%d])", l.GetName(), j)
		} else {
			names[l.GetName()] = i
		}
		for ci, fc := range l.GetFilterChains() {
			for fi, f := range fc.GetFilters() {
				if hcm, ok := unpack(f.GetTypedConfig()).(*hcmv3.HttpConnectionManager); ok {
					checkHCM(ps, fmt.Sprintf("%s.filter_chains[%d].filters[%d].typed_config", p, ci, fi), hcm, clusters)
				}
			}
		}
	}
}

// checkHCM applies the rules of an HTTP connection manager: its filter chain and its
// inline route configuration.
func checkHCM(ps *problems, path string, hcm *hcmv3.HttpConnectionManager, clusters map[string]*clusterv3.Cluster) {
	// source/common/http/filter_chain_helper.h (processFilters) calls
	// source/common/config/utility.cc (validateTerminalFilters) on every HTTP filter:
	// the router is a terminal filter and must be last, and a non-terminal filter
	// cannot be last.
	filters := hcm.GetHttpFilters()
	for i, f := range filters {
		p := fmt.Sprintf("%s.http_filters[%d]", path, i)
		last := i == len(filters)-1
		typed := unpack(f.GetTypedConfig())
		_, isRouter := typed.(*routerv3.Router)
		switch {
		case isRouter && !last:
			ps.add(p, "the router (filter %q) must be the last HTTP filter", f.GetName())
		case last && !isRouter && typed != nil:
			ps.add(p, "the last HTTP filter is %q (%s), not the router: the chain must end with envoy.filters.http.router", f.GetName(), typeName(typed))
		}
		if ep, ok := typed.(*extprocv3.ExternalProcessor); ok {
			checkExtProc(ps, join(p, "typed_config"), ep, clusters)
		}
	}
	if rc := hcm.GetRouteConfig(); rc != nil {
		checkRouteConfig(ps, join(path, "route_config"), rc, clusters)
	}
}

// checkRouteConfig applies the rules of an inline route configuration.
func checkRouteConfig(ps *problems, path string, rc *routev3.RouteConfiguration, clusters map[string]*clusterv3.Cluster) {
	// api/envoy/config/route/v3/route.proto (validate_clusters): an inline route
	// configuration's cluster references are checked at load time unless turned off.
	validateClusters := rc.GetValidateClusters() == nil || rc.GetValidateClusters().GetValue()
	domains := map[string]string{}
	for vi, vh := range rc.GetVirtualHosts() {
		vp := fmt.Sprintf("%s.virtual_hosts[%d]", path, vi)
		// source/common/router/config_impl.cc (RouteMatcher): "Only unique values for
		// domains are permitted".
		for di, d := range vh.GetDomains() {
			d = strings.ToLower(d)
			if prev, dup := domains[d]; dup {
				ps.add(fmt.Sprintf("%s.domains[%d]", vp, di), "duplicate domain %q (also %s)", d, prev)
				continue
			}
			domains[d] = fmt.Sprintf("%s.domains[%d]", vp, di)
		}
		if !validateClusters {
			continue
		}
		for ri, r := range vh.GetRoutes() {
			for _, ref := range routeClusters(fmt.Sprintf("%s.routes[%d].route", vp, ri), r.GetRoute()) {
				// source/common/router/config_impl.cc (validateClusters) and
				// source/extensions/router/cluster_specifiers/priority_group/
				// priority_group_cluster_specifier.cc (validateClusters): "route: unknown
				// cluster". Routes by cluster_header name their cluster per request, so
				// Envoy (and this check) cannot verify them at load time.
				if _, ok := clusters[ref.name]; !ok {
					ps.add(ref.path, "unknown cluster %q", ref.name)
				}
			}
		}
	}
}

// clusterRef is a cluster name a route sends to, with the path that names it.
type clusterRef struct{ path, name string }

// routeClusters lists the clusters a route action names: its cluster, its weighted
// clusters, or the clusters of its priority groups. path is the action's path.
func routeClusters(path string, a *routev3.RouteAction) []clusterRef {
	if a == nil {
		return nil
	}
	var refs []clusterRef
	switch spec := a.GetClusterSpecifier().(type) {
	case *routev3.RouteAction_Cluster:
		refs = append(refs, clusterRef{join(path, "cluster"), spec.Cluster})
	case *routev3.RouteAction_WeightedClusters:
		for i, c := range spec.WeightedClusters.GetClusters() {
			if c.GetName() != "" { // a cluster_header entry names its cluster per request
				refs = append(refs, clusterRef{fmt.Sprintf("%s.weighted_clusters.clusters[%d].name", path, i), c.GetName()})
			}
		}
	case *routev3.RouteAction_InlineClusterSpecifierPlugin:
		p := join(path, "inline_cluster_specifier_plugin.extension.typed_config")
		if pg, ok := unpack(spec.InlineClusterSpecifierPlugin.GetExtension().GetTypedConfig()).(*prioritygroupv3.PriorityGroupClusterSpecifier); ok {
			for gi, g := range pg.GetPriorityGroups() {
				for ci, c := range g.GetClusters() {
					refs = append(refs, clusterRef{fmt.Sprintf("%s.priority_groups[%d].clusters[%d].cluster_name", p, gi, ci), c.GetClusterName()})
				}
			}
		}
	}
	return refs
}

// checkExtProc applies the rules of an ext_proc filter, downstream or upstream.
func checkExtProc(ps *problems, path string, ep *extprocv3.ExternalProcessor, clusters map[string]*clusterv3.Cluster) {
	// The rules of source/extensions/filters/http/ext_proc/config.cc
	// (verifyFilterConfig, verifyProcessingModeConfig), quoted in the messages.
	mode := ep.GetProcessingMode()
	if (ep.GetGrpcService() != nil) == (ep.GetHttpService() != nil) {
		ps.add(path, "one and only one of grpc_service or http_service must be configured")
	}
	if ep.GetDisableClearRouteCache() && ep.GetRouteCacheAction() != extprocv3.ExternalProcessor_DEFAULT {
		ps.add(path, "disable_clear_route_cache and route_cache_action can not be set to none-default at the same time")
	}
	if ep.GetHttpService() != nil && (mode.GetRequestBodyMode() != extprocv3.ProcessingMode_NONE ||
		mode.GetResponseBodyMode() != extprocv3.ProcessingMode_NONE ||
		mode.GetRequestTrailerMode() == extprocv3.ProcessingMode_SEND ||
		mode.GetResponseTrailerMode() == extprocv3.ProcessingMode_SEND) {
		ps.add(join(path, "processing_mode"), "with http_service the processing modes can not send a body or trailers")
	}
	fullDuplex := false
	if mode.GetRequestBodyMode() == extprocv3.ProcessingMode_FULL_DUPLEX_STREAMED {
		fullDuplex = true
		if mode.GetRequestTrailerMode() != extprocv3.ProcessingMode_SEND {
			ps.add(join(path, "processing_mode.request_trailer_mode"), "request_body_mode FULL_DUPLEX_STREAMED requires request_trailer_mode SEND")
		}
	}
	if mode.GetResponseBodyMode() == extprocv3.ProcessingMode_FULL_DUPLEX_STREAMED {
		fullDuplex = true
		if mode.GetResponseTrailerMode() != extprocv3.ProcessingMode_SEND {
			ps.add(join(path, "processing_mode.response_trailer_mode"), "response_body_mode FULL_DUPLEX_STREAMED requires response_trailer_mode SEND")
		}
	}
	if fullDuplex && ep.GetFailureModeAllow() {
		ps.add(join(path, "failure_mode_allow"), "must be false when a body mode is FULL_DUPLEX_STREAMED")
	}
	if eg := ep.GetGrpcService().GetEnvoyGrpc(); eg != nil {
		checkGRPCCluster(ps, join(path, "grpc_service.envoy_grpc.cluster_name"), eg.GetClusterName(), clusters)
	}
}

// checkGRPCCluster checks the cluster of an Envoy gRPC client.
func checkGRPCCluster(ps *problems, path, name string, clusters map[string]*clusterv3.Cluster) {
	c, ok := clusters[name]
	if !ok {
		// source/common/grpc/async_client_manager_impl.cc (AsyncClientFactoryImpl) via
		// ClusterManagerImpl::checkActiveStaticCluster: "Unknown gRPC client cluster".
		ps.add(path, "unknown gRPC client cluster %q", name)
		return
	}
	// gRPC runs over HTTP/2 (docs/root/intro/arch_overview/other_protocols/grpc.rst):
	// Envoy loads an HTTP/1.1 cluster here, but every call on it fails.
	if !isHTTP2(c) {
		ps.add(path, "gRPC cluster %q does not speak HTTP/2: set typed_extension_protocol_options[%s].explicit_http_config.http2_protocol_options", name, httpProtocolOptionsKey)
	}
}

// isHTTP2 reports whether a cluster is configured to speak HTTP/2 to its endpoints.
func isHTTP2(c *clusterv3.Cluster) bool {
	if c.GetHttp2ProtocolOptions() != nil {
		return true
	}
	hpo, ok := unpack(c.GetTypedExtensionProtocolOptions()[httpProtocolOptionsKey]).(*httpv3.HttpProtocolOptions)
	return ok && hpo.GetExplicitHttpConfig().GetHttp2ProtocolOptions() != nil
}

// checkCluster applies the rules of one cluster: its endpoints and its upstream HTTP
// filters.
func checkCluster(ps *problems, path string, c *clusterv3.Cluster, clusters map[string]*clusterv3.Cluster) {
	switch c.GetType() {
	case clusterv3.Cluster_STATIC:
		// A STATIC cluster's endpoints are resolved as IP addresses, never looked up
		// (source/common/network/resolver_impl.cc, IpResolver): "malformed IP address".
		for _, ep := range endpoints(path, c) {
			if sa := ep.addr.GetSocketAddress(); sa != nil && net.ParseIP(sa.GetAddress()) == nil {
				ps.add(join(ep.path, "socket_address.address"), "%q is not an IP address: a STATIC cluster does not resolve names, use LOGICAL_DNS or STRICT_DNS", sa.GetAddress())
			}
		}
	case clusterv3.Cluster_LOGICAL_DNS:
		// source/extensions/clusters/logical_dns/logical_dns_cluster.cc: "LOGICAL_DNS
		// clusters must have a single locality_lb_endpoint and a single lb_endpoint".
		eps := c.GetLoadAssignment().GetEndpoints()
		if len(eps) != 1 || len(eps[0].GetLbEndpoints()) != 1 {
			ps.add(join(path, "load_assignment"), "a LOGICAL_DNS cluster must have a single locality_lb_endpoint and a single lb_endpoint")
		}
	}
	keys := make([]string, 0, len(c.GetTypedExtensionProtocolOptions()))
	for k := range c.GetTypedExtensionProtocolOptions() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		hpo, ok := unpack(c.GetTypedExtensionProtocolOptions()[k]).(*httpv3.HttpProtocolOptions)
		if !ok {
			continue
		}
		// source/common/upstream/upstream_impl.cc (ClusterInfoImpl): "The codec filter
		// is the only valid terminal upstream HTTP filter"; it is also terminal, so
		// validateTerminalFilters (source/common/config/utility.cc) rejects it anywhere
		// but last.
		filters := hpo.GetHttpFilters()
		p := fmt.Sprintf("%s.typed_extension_protocol_options[%s].http_filters", path, k)
		for i, f := range filters {
			fp := fmt.Sprintf("%s[%d]", p, i)
			typed := unpack(f.GetTypedConfig())
			_, isCodec := typed.(*upstreamcodecv3.UpstreamCodec)
			last := i == len(filters)-1
			switch {
			case isCodec && !last:
				ps.add(fp, "upstream_codec (filter %q) must be the last upstream HTTP filter", f.GetName())
			case last && !isCodec && typed != nil:
				ps.add(fp, "the last upstream HTTP filter is %q (%s): upstream HTTP filters must end with envoy.filters.http.upstream_codec", f.GetName(), typeName(typed))
			}
			if ep, ok := typed.(*extprocv3.ExternalProcessor); ok {
				checkExtProc(ps, join(fp, "typed_config"), ep, clusters)
			}
		}
	}
}

// endpointRef is an endpoint address with its path.
type endpointRef struct {
	path string
	addr *corev3.Address
}

// endpoints lists a cluster's endpoint addresses.
func endpoints(path string, c *clusterv3.Cluster) []endpointRef {
	var out []endpointRef
	for li, l := range c.GetLoadAssignment().GetEndpoints() {
		for ei, e := range l.GetLbEndpoints() {
			if a := e.GetEndpoint().GetAddress(); a != nil {
				out = append(out, endpointRef{
					path: fmt.Sprintf("%s.load_assignment.endpoints[%d].lb_endpoints[%d].endpoint.address", path, li, ei),
					addr: a,
				})
			}
		}
	}
	return out
}

// typeName is the full proto name of a message's type, for messages.
func typeName(m proto.Message) string {
	return string(m.ProtoReflect().Descriptor().FullName())
}

package envoy

import (
	"fmt"
	"slices"
	"strings"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	prioritygroupv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/router/cluster_specifiers/priority_group/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tollgate-dev/tollgate/config"
)

// minMessageTimeout is Envoy's default ext_proc message_timeout. Below it tollgate cannot
// translate a large body in time, and an upstream filter's timeout is never retried.
const minMessageTimeout = 200 * time.Millisecond

// Check reports, joined, every way b fails to run tollgate for cfg: the router-level
// ext_proc filter "tollgate" and its processing modes, one route per alias walking the
// alias's chain with retries that reach every group, one cluster per deployment carrying
// the "tollgate_upstream" filter, and retry buffers that hold the largest body. Envoy's
// own rules are Validate's: run both. Clusters that no route uses are accepted (ops may
// add them); routes to clusters that are not deployments are reported. Each problem is
// a *Problem.
func Check(cfg *config.Config, b *bootstrapv3.Bootstrap) error {
	var ps problems
	hcms := tollgateHCMs(b)
	if len(hcms) == 0 {
		ps.add("static_resources.listeners", "no HTTP connection manager has the ext_proc filter %q: requests would reach no tollgate", RouterFilterName)
	}
	for _, h := range hcms {
		checkRouterFilter(&ps, h.filterPath, h.filter)
		rc := h.hcm.GetRouteConfig()
		if rc == nil {
			ps.add(h.path, "routes must be inline (route_config): tollgate renders them from config.yaml")
			continue
		}
		checkRoutes(&ps, cfg, join(h.path, "route_config"), rc)
	}
	checkDeploymentClusters(&ps, cfg, b.GetStaticResources().GetClusters())
	return ps.err()
}

// tollgateHCM is an HTTP connection manager holding the router-level filter.
type tollgateHCM struct {
	path       string
	hcm        *hcmv3.HttpConnectionManager
	filterPath string
	filter     *extprocv3.ExternalProcessor
}

// tollgateHCMs finds the HTTP connection managers whose filter named "tollgate" is an
// ext_proc filter.
func tollgateHCMs(b *bootstrapv3.Bootstrap) []tollgateHCM {
	var out []tollgateHCM
	for li, l := range b.GetStaticResources().GetListeners() {
		for ci, fc := range l.GetFilterChains() {
			for fi, f := range fc.GetFilters() {
				hcm, ok := unpack(f.GetTypedConfig()).(*hcmv3.HttpConnectionManager)
				if !ok {
					continue
				}
				p := fmt.Sprintf("static_resources.listeners[%d].filter_chains[%d].filters[%d].typed_config", li, ci, fi)
				for hi, hf := range hcm.GetHttpFilters() {
					if ep, ok := unpack(hf.GetTypedConfig()).(*extprocv3.ExternalProcessor); ok && hf.GetName() == RouterFilterName {
						out = append(out, tollgateHCM{
							path:       p,
							hcm:        hcm,
							filterPath: fmt.Sprintf("%s.http_filters[%d].typed_config", p, hi),
							filter:     ep,
						})
						break
					}
				}
			}
		}
	}
	return out
}

// checkRouterFilter checks the router-level ext_proc filter against what the router
// stage of tollgate's ext_proc server expects.
func checkRouterFilter(ps *problems, path string, ep *extprocv3.ExternalProcessor) {
	checkTollgateService(ps, path, ep)
	for i, h := range ep.GetGrpcService().GetInitialMetadata() {
		if strings.EqualFold(h.GetKey(), HeaderDeployment) {
			ps.add(fmt.Sprintf("%s.grpc_service.initial_metadata[%d]", path, i), "%s marks an upstream (per-attempt) stream; the router filter must not send it", HeaderDeployment)
		}
	}
	mode := ep.GetProcessingMode()
	mp := join(path, "processing_mode")
	wantHeaderMode(ps, join(mp, "request_header_mode"), mode.GetRequestHeaderMode(), extprocv3.ProcessingMode_SEND, "the router stage authenticates and routes on the request headers")
	wantHeaderMode(ps, join(mp, "response_header_mode"), mode.GetResponseHeaderMode(), extprocv3.ProcessingMode_SEND, "the router stage learns the deployment and switches SSE to STREAMED there")
	wantHeaderMode(ps, join(mp, "request_trailer_mode"), mode.GetRequestTrailerMode(), extprocv3.ProcessingMode_SKIP, "tollgate does not process trailers")
	wantHeaderMode(ps, join(mp, "response_trailer_mode"), mode.GetResponseTrailerMode(), extprocv3.ProcessingMode_SKIP, "tollgate does not process trailers")
	if m := mode.GetRequestBodyMode(); m != extprocv3.ProcessingMode_BUFFERED {
		why := "the router stage reads the model from the whole body"
		if m == extprocv3.ProcessingMode_STREAMED || m == extprocv3.ProcessingMode_FULL_DUPLEX_STREAMED {
			why = "Envoy duplicates a streamed request body when it retries (envoyproxy/envoy #36119, #45470)"
		}
		ps.add(join(mp, "request_body_mode"), "is %s, must be BUFFERED: %s", m, why)
	}
	if m := mode.GetResponseBodyMode(); m != extprocv3.ProcessingMode_BUFFERED {
		ps.add(join(mp, "response_body_mode"), "is %s, must be BUFFERED: the router stage translates whole responses and switches SSE to STREAMED itself", m)
	}
	if !ep.GetAllowModeOverride() {
		ps.add(join(path, "allow_mode_override"), "must be true: the router stage switches SSE responses to STREAMED")
	}
	if !ep.GetMutationRules().GetAllowEnvoy().GetValue() {
		ps.add(join(path, "mutation_rules.allow_envoy"), "must be true: the router stage sets x-envoy-max-retries per request")
	}
	if !slices.Contains(ep.GetMetadataOptions().GetReceivingNamespaces().GetUntyped(), MetadataNamespace) {
		ps.add(join(path, "metadata_options.receiving_namespaces.untyped"), "must list %q: the router stage chooses the fallback chain through that metadata", MetadataNamespace)
	}
}

// checkTollgateService checks what both ext_proc filters share: they talk to tollgate,
// fail closed, and give it time.
func checkTollgateService(ps *problems, path string, ep *extprocv3.ExternalProcessor) {
	if c := ep.GetGrpcService().GetEnvoyGrpc().GetClusterName(); c != ExtProcCluster {
		ps.add(join(path, "grpc_service.envoy_grpc.cluster_name"), "is %q, must be %q", c, ExtProcCluster)
	}
	if ep.GetFailureModeAllow() {
		ps.add(join(path, "failure_mode_allow"), "must be false: failing open would pass requests on unauthenticated and untranslated")
	}
	if t := ep.GetMessageTimeout(); t != nil && t.AsDuration() < minMessageTimeout {
		ps.add(join(path, "message_timeout"), "%v is below %v: large bodies would time out", t.AsDuration(), minMessageTimeout)
	}
}

// wantHeaderMode reports a header or trailer mode other than want. DEFAULT means SEND
// for headers and SKIP for trailers, so it passes when it means want.
func wantHeaderMode(ps *problems, path string, got, want extprocv3.ProcessingMode_HeaderSendMode, why string) {
	effective := got
	if got == extprocv3.ProcessingMode_DEFAULT {
		effective = extprocv3.ProcessingMode_SEND
		if strings.HasSuffix(path, "trailer_mode") {
			effective = extprocv3.ProcessingMode_SKIP
		}
	}
	if effective != want {
		ps.add(path, "is %s, must be %s: %s", got, want, why)
	}
}

// checkRoutes checks the route for every alias and the clusters every route sends to.
func checkRoutes(ps *problems, cfg *config.Config, path string, rc *routev3.RouteConfiguration) {
	found := map[string]bool{}
	for vi, vh := range rc.GetVirtualHosts() {
		vp := fmt.Sprintf("%s.virtual_hosts[%d]", path, vi)
		vhostLimitChecked := false
		for ri, r := range vh.GetRoutes() {
			rp := fmt.Sprintf("%s.routes[%d]", vp, ri)
			if !tollgateDisabled(vh, r) {
				if r.GetRequestBodyBufferLimit() != nil {
					checkBufferLimit(ps, cfg, join(rp, "request_body_buffer_limit"), r.GetRequestBodyBufferLimit())
				} else if !vhostLimitChecked {
					vhostLimitChecked = true
					checkBufferLimit(ps, cfg, join(vp, "request_body_buffer_limit"), vh.GetRequestBodyBufferLimit())
				}
			}
			for _, ref := range routeClusters(join(rp, "route"), r.GetRoute()) {
				if _, ok := cfg.Deployment(ref.name); !ok && !strings.HasPrefix(ref.name, "tollgate_") {
					ps.add(ref.path, "cluster %q is not a deployment in config.yaml", ref.name)
				}
			}
			alias, ok := routeAlias(r)
			if !ok {
				continue
			}
			if len(cfg.DeploymentsFor(alias)) == 0 {
				ps.add(rp, "routes alias %q, which config.yaml does not define", alias)
				continue
			}
			if !found[alias] {
				found[alias] = true
				checkAliasRoute(ps, cfg, alias, rc, vh, rp, r)
			}
		}
	}
	for _, alias := range cfg.Aliases() {
		if !found[alias] {
			ps.add(path, "no route matches %s: %q: requests for that alias would get 404", HeaderAlias, alias)
		}
	}
}

// checkBufferLimit checks the request body buffer limit of a route the router stage runs
// on. The router stage buffers the whole body under the route matched before it chose
// the alias (413 above the limit), and Envoy's retry buffer holds it under the alias's
// route (no retries above the limit): both must hold max_request_size_mb.
func checkBufferLimit(ps *problems, cfg *config.Config, path string, limit *wrapperspb.UInt64Value) {
	want := uint64(max(cfg.MaxRequestBytes, 0))
	switch {
	case limit == nil:
		ps.add(path, "unset: the listener's per_connection_buffer_limit_bytes (1 MiB by default) limits request bodies instead of max_request_size_mb (%d bytes)", want)
	case limit.GetValue() < want:
		ps.add(path, "%d bytes is below max_request_size_mb (%d bytes): larger bodies get 413, or lose their retries", limit.GetValue(), want)
	}
}

// tollgateDisabled reports whether a route turns the router-level filter off, as the
// admin routes do.
func tollgateDisabled(vh *routev3.VirtualHost, r *routev3.Route) bool {
	cfg := r.GetTypedPerFilterConfig()[RouterFilterName]
	if cfg == nil {
		cfg = vh.GetTypedPerFilterConfig()[RouterFilterName]
	}
	per, ok := unpack(cfg).(*extprocv3.ExtProcPerRoute)
	return ok && per.GetDisabled()
}

// routeAlias is the alias a route matches: its exact match on x-tollgate-alias.
func routeAlias(r *routev3.Route) (string, bool) {
	for _, h := range r.GetMatch().GetHeaders() {
		if strings.EqualFold(h.GetName(), HeaderAlias) && !h.GetInvertMatch() {
			if exact := h.GetStringMatch().GetExact(); exact != "" {
				return exact, true
			}
		}
	}
	return "", false
}

// checkAliasRoute checks one alias's route: its priority groups are the alias's chain,
// its retries reach every group on a fresh cluster, and it tells the router stage which
// deployment answered.
func checkAliasRoute(ps *problems, cfg *config.Config, alias string, rc *routev3.RouteConfiguration, vh *routev3.VirtualHost, rp string, r *routev3.Route) {
	action := r.GetRoute()
	if action == nil {
		ps.add(rp, "the route for alias %q must forward (route), not redirect or answer directly", alias)
		return
	}
	ap := join(rp, "route")
	pp := join(ap, "inline_cluster_specifier_plugin.extension.typed_config")
	spec, ok := unpack(action.GetInlineClusterSpecifierPlugin().GetExtension().GetTypedConfig()).(*prioritygroupv3.PriorityGroupClusterSpecifier)
	if !ok {
		ps.add(ap, "the route for alias %q must choose its cluster with the %s cluster specifier: fallbacks depend on it", alias, priorityGroupPlugin)
		return
	}
	chain := Chain(cfg, alias)
	want := make([][]string, len(chain))
	for i, g := range chain {
		want[i] = g.Clusters
	}
	var got [][]string
	for _, g := range spec.GetPriorityGroups() {
		var cs []string
		for _, c := range g.GetClusters() {
			cs = append(cs, c.GetClusterName())
		}
		got = append(got, cs)
	}
	if !slices.EqualFunc(got, want, func(a, b []string) bool { return slices.Equal(sorted(a), sorted(b)) }) {
		ps.add(join(pp, "priority_groups"), "groups %v, want %v: the alias's deployments %d times (num_retries %d), then those of its fallbacks", got, want, cfg.NumRetries+1, cfg.NumRetries)
	}
	if spec.GetOverrideMetadataNamespace() != MetadataNamespace {
		ps.add(join(pp, "override_metadata_namespace"), "is %q, must be %q: the router stage chooses the chain per request there", spec.GetOverrideMetadataNamespace(), MetadataNamespace)
	}
	retry := action.GetRetryPolicy()
	if retry == nil {
		ps.add(ap, "no retry_policy: the fallbacks of alias %q would never be tried", alias)
	} else {
		if !retry.GetRefreshClusterOnRetry() {
			ps.add(join(ap, "retry_policy.refresh_cluster_on_retry"), "must be true: without it every retry goes to the first attempt's cluster")
		}
		if n := len(spec.GetPriorityGroups()) - 1; retry.GetNumRetries() == nil || int(retry.GetNumRetries().GetValue()) < n {
			ps.add(join(ap, "retry_policy.num_retries"), "is %d (unset is 1), below the %d retries that reach every priority group", numRetries(retry), n)
		}
	}
	if !tellsDeployment(rc.GetResponseHeadersToAdd()) && !tellsDeployment(vh.GetResponseHeadersToAdd()) && !tellsDeployment(r.GetResponseHeadersToAdd()) {
		ps.add(join(rp, "response_headers_to_add"), "must set %s: %%UPSTREAM_CLUSTER%%: the router stage learns there which deployment answered", HeaderDeployment)
	}
}

// numRetries is a retry policy's num_retries, 1 when unset as in Envoy.
func numRetries(r *routev3.RetryPolicy) uint32 {
	if r.GetNumRetries() == nil {
		return 1
	}
	return r.GetNumRetries().GetValue()
}

// tellsDeployment reports whether headers set x-tollgate-deployment to the cluster name.
func tellsDeployment(headers []*corev3.HeaderValueOption) bool {
	for _, h := range headers {
		v := h.GetHeader().GetValue()
		if strings.EqualFold(h.GetHeader().GetKey(), HeaderDeployment) && (v == "%UPSTREAM_CLUSTER%" || v == "%UPSTREAM_CLUSTER_RAW%") {
			return true
		}
	}
	return false
}

// checkDeploymentClusters checks that every deployment has its cluster, carrying the
// per-attempt filter that translates requests for it.
func checkDeploymentClusters(ps *problems, cfg *config.Config, clusters []*clusterv3.Cluster) {
	index := map[string]int{}
	for i, c := range clusters {
		if _, dup := index[c.GetName()]; !dup {
			index[c.GetName()] = i
		}
	}
	for _, d := range cfg.Deployments {
		i, ok := index[d.ID]
		if !ok {
			ps.add("static_resources.clusters", "no cluster %q for deployment %q of alias %q", d.ID, d.ID, d.Alias)
			continue
		}
		checkDeploymentCluster(ps, fmt.Sprintf("static_resources.clusters[%d]", i), d, clusters[i])
	}
}

// checkDeploymentCluster checks one deployment's cluster.
func checkDeploymentCluster(ps *problems, path string, d *config.Deployment, c *clusterv3.Cluster) {
	if c.GetAltStatName() != "" {
		// %UPSTREAM_CLUSTER% resolves to alt_stat_name when set
		// (source/common/formatter/stream_info_formatter.cc).
		ps.add(join(path, "alt_stat_name"), "must be empty: %%UPSTREAM_CLUSTER%% would report it instead of the deployment ID")
	}
	hp := fmt.Sprintf("%s.typed_extension_protocol_options[%s]", path, httpProtocolOptionsKey)
	hpo, ok := unpack(c.GetTypedExtensionProtocolOptions()[httpProtocolOptionsKey]).(*httpv3.HttpProtocolOptions)
	if !ok {
		ps.add(join(path, "typed_extension_protocol_options"), "no %s with the %q filter: attempts would reach the provider untranslated", httpProtocolOptionsKey, UpstreamFilterName)
		return
	}
	for i, f := range hpo.GetHttpFilters() {
		if f.GetName() != UpstreamFilterName {
			continue
		}
		fp := fmt.Sprintf("%s.http_filters[%d].typed_config", hp, i)
		ep, ok := unpack(f.GetTypedConfig()).(*extprocv3.ExternalProcessor)
		if !ok {
			ps.add(fp, "filter %q must be an ext_proc filter", UpstreamFilterName)
			return
		}
		checkUpstreamFilter(ps, fp, d, ep)
		return
	}
	ps.add(join(hp, "http_filters"), "no ext_proc filter %q: attempts would reach the provider untranslated, without its credentials", UpstreamFilterName)
}

// checkUpstreamFilter checks a deployment's per-attempt ext_proc filter against what the
// upstream stage of tollgate's ext_proc server expects.
func checkUpstreamFilter(ps *problems, path string, d *config.Deployment, ep *extprocv3.ExternalProcessor) {
	checkTollgateService(ps, path, ep)
	var got []string
	for _, h := range ep.GetGrpcService().GetInitialMetadata() {
		if strings.EqualFold(h.GetKey(), HeaderDeployment) {
			got = append(got, h.GetValue())
		}
	}
	if len(got) != 1 || got[0] != d.ID {
		ps.add(join(path, "grpc_service.initial_metadata"), "%s is %q, must be %q: it names the deployment tollgate translates for", HeaderDeployment, got, d.ID)
	}
	if !ep.GetMutationRules().GetAllowAllRouting().GetValue() {
		ps.add(join(path, "mutation_rules.allow_all_routing"), "must be true: the upstream stage sets :authority for the provider")
	}
	mode := ep.GetProcessingMode()
	mp := join(path, "processing_mode")
	wantHeaderMode(ps, join(mp, "request_header_mode"), mode.GetRequestHeaderMode(), extprocv3.ProcessingMode_SEND, "the upstream stage sets the provider's headers")
	if m := mode.GetRequestBodyMode(); m != extprocv3.ProcessingMode_BUFFERED {
		ps.add(join(mp, "request_body_mode"), "is %s, must be BUFFERED: the upstream stage translates the whole body", m)
	}
	wantHeaderMode(ps, join(mp, "response_header_mode"), mode.GetResponseHeaderMode(), extprocv3.ProcessingMode_SKIP, "responses are translated at router level; holding them upstream interferes with retries")
	if m := mode.GetResponseBodyMode(); m != extprocv3.ProcessingMode_NONE {
		ps.add(join(mp, "response_body_mode"), "is %s, must be NONE: responses are translated at router level", m)
	}
}

// sorted returns a sorted copy: a group's clusters are a weighted set, their order does
// not matter.
func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

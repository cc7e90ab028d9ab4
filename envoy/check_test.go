package envoy_test

import (
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tollgate-dev/tollgate/config"
	"github.com/tollgate-dev/tollgate/envoy"
)

// Paths into the rendered article envoy.yaml.
const (
	hcmPath    = "static_resources.listeners[0].filter_chains[0].filters[0].typed_config"
	routerPath = hcmPath + ".http_filters[0].typed_config"
	vhostPath  = hcmPath + ".route_config.virtual_hosts[0]"
	// Routes: 7 admin prefixes, then the aliases sorted, then the catch-all.
	gptRoute   = vhostPath + ".routes[8]"
	llamaRoute = vhostPath + ".routes[9]"
	// Clusters: tollgate_ext_proc, tollgate_admin, then the deployments in config order.
	gptUpstream = "static_resources.clusters[2].typed_extension_protocol_options[envoy.extensions.upstreams.http.v3.HttpProtocolOptions].http_filters[0].typed_config"
)

// TestCheck breaks one thing tollgate relies on per case, in the envoy.yaml rendered for
// the article's config or in the config it is checked against, and expects exactly the
// problems naming it (sorted).
func TestCheck(t *testing.T) {
	tests := []struct {
		name   string
		cfg    func(*config.Config)
		envoy  func(*testing.T, *bootstrapv3.Bootstrap)
		wanted []string
	}{
		{
			name: "request body STREAMED",
			envoy: editRouterFilter(func(ep *extprocv3.ExternalProcessor) {
				ep.ProcessingMode.RequestBodyMode = extprocv3.ProcessingMode_STREAMED
			}),
			wanted: []string{
				routerPath + ".processing_mode.request_body_mode: is STREAMED, must be BUFFERED: Envoy duplicates a streamed request body when it retries (envoyproxy/envoy #36119, #45470)",
			},
		},
		{
			name: "allow_envoy false",
			envoy: editRouterFilter(func(ep *extprocv3.ExternalProcessor) {
				ep.MutationRules.AllowEnvoy = wrapperspb.Bool(false)
			}),
			wanted: []string{
				routerPath + ".mutation_rules.allow_envoy: must be true: the router stage sets x-envoy-max-retries per request",
			},
		},
		{
			name: "router filter modes, fail open, short timeout, no namespace",
			envoy: editRouterFilter(func(ep *extprocv3.ExternalProcessor) {
				ep.ProcessingMode = &extprocv3.ProcessingMode{ // headers DEFAULT (SEND) pass
					RequestBodyMode:    extprocv3.ProcessingMode_NONE,
					RequestTrailerMode: extprocv3.ProcessingMode_SEND,
					ResponseBodyMode:   extprocv3.ProcessingMode_STREAMED,
				}
				ep.AllowModeOverride = false
				ep.FailureModeAllow = true
				ep.MessageTimeout = durationpb.New(100 * time.Millisecond)
				ep.MetadataOptions = nil
				ep.GrpcService.GetEnvoyGrpc().ClusterName = "other"
			}),
			wanted: []string{
				routerPath + `.allow_mode_override: must be true: the router stage switches SSE responses to STREAMED`,
				routerPath + `.failure_mode_allow: must be false: failing open would pass requests on unauthenticated and untranslated`,
				routerPath + `.grpc_service.envoy_grpc.cluster_name: is "other", must be "tollgate_ext_proc"`,
				routerPath + `.message_timeout: 100ms is below 200ms: large bodies would time out`,
				routerPath + `.metadata_options.receiving_namespaces.untyped: must list "tollgate": the router stage chooses the fallback chain through that metadata`,
				routerPath + `.processing_mode.request_body_mode: is NONE, must be BUFFERED: the router stage reads the model from the whole body`,
				routerPath + `.processing_mode.request_trailer_mode: is SEND, must be SKIP: tollgate does not process trailers`,
				routerPath + `.processing_mode.response_body_mode: is STREAMED, must be BUFFERED: the router stage translates whole responses and switches SSE to STREAMED itself`,
			},
		},
		{
			name: "no router-level filter",
			envoy: editHCM(func(h *hcmv3.HttpConnectionManager) {
				h.HttpFilters = h.HttpFilters[1:]
			}),
			wanted: []string{
				`static_resources.listeners: no HTTP connection manager has the ext_proc filter "tollgate": requests would reach no tollgate`,
			},
		},
		{
			name: "missing deployment cluster",
			envoy: func(t *testing.T, b *bootstrapv3.Bootstrap) {
				sr := b.GetStaticResources()
				sr.Clusters = append(sr.Clusters[:4], sr.Clusters[5:]...) // local-llama-0
			},
			wanted: []string{
				`static_resources.clusters: no cluster "local-llama-0" for deployment "local-llama-0" of alias "local-llama"`,
			},
		},
		{
			name: "deployment added to config.yaml but envoy.yaml not re-rendered",
			cfg: func(c *config.Config) {
				c.Deployments = append(c.Deployments, &config.Deployment{
					ID: "gpt-5.5-1", Alias: "gpt-5.5", Provider: "azure", APIBase: "https://x.openai.azure.com",
				})
			},
			wanted: []string{
				`static_resources.clusters: no cluster "gpt-5.5-1" for deployment "gpt-5.5-1" of alias "gpt-5.5"`,
				gptRoute + ".route.inline_cluster_specifier_plugin.extension.typed_config.priority_groups: groups [[gpt-5.5-0] [gpt-5.5-0] [gpt-5.5-0] [claude-sonnet-0] [local-llama-0]], want [[gpt-5.5-0 gpt-5.5-1] [gpt-5.5-0 gpt-5.5-1] [gpt-5.5-0 gpt-5.5-1] [claude-sonnet-0] [local-llama-0]]: the alias's deployments 3 times (num_retries 2), then those of its fallbacks",
			},
		},
		{
			name: "upstream filter missing",
			envoy: editUpstream(2, func(_ *testing.T, h *httpv3.HttpProtocolOptions) {
				h.HttpFilters = h.HttpFilters[1:]
			}),
			wanted: []string{
				`static_resources.clusters[2].typed_extension_protocol_options[envoy.extensions.upstreams.http.v3.HttpProtocolOptions].http_filters: no ext_proc filter "tollgate_upstream": attempts would reach the provider untranslated, without its credentials`,
			},
		},
		{
			name: "upstream filter for another deployment, wrong modes",
			envoy: editUpstream(2, func(t *testing.T, h *httpv3.HttpProtocolOptions) {
				editAny(t, h.HttpFilters[0].GetTypedConfig(), func(ep *extprocv3.ExternalProcessor) {
					ep.GrpcService.InitialMetadata[0].Value = "claude-sonnet-0"
					ep.MutationRules = nil
					ep.ProcessingMode.RequestBodyMode = extprocv3.ProcessingMode_STREAMED
					ep.ProcessingMode.ResponseHeaderMode = extprocv3.ProcessingMode_SEND
					ep.ProcessingMode.ResponseBodyMode = extprocv3.ProcessingMode_BUFFERED
					ep.FailureModeAllow = true
				})
			}),
			wanted: []string{
				gptUpstream + `.failure_mode_allow: must be false: failing open would pass requests on unauthenticated and untranslated`,
				gptUpstream + `.grpc_service.initial_metadata: x-tollgate-deployment is ["claude-sonnet-0"], must be "gpt-5.5-0": it names the deployment tollgate translates for`,
				gptUpstream + `.mutation_rules.allow_all_routing: must be true: the upstream stage sets :authority for the provider`,
				gptUpstream + `.processing_mode.request_body_mode: is STREAMED, must be BUFFERED: the upstream stage translates the whole body`,
				gptUpstream + `.processing_mode.response_body_mode: is BUFFERED, must be NONE: responses are translated at router level`,
				gptUpstream + `.processing_mode.response_header_mode: is SEND, must be SKIP: responses are translated at router level; holding them upstream interferes with retries`,
			},
		},
		{
			name: "alt_stat_name hides the deployment",
			envoy: func(t *testing.T, b *bootstrapv3.Bootstrap) {
				b.GetStaticResources().GetClusters()[3].AltStatName = "claude"
			},
			wanted: []string{
				"static_resources.clusters[3].alt_stat_name: must be empty: %UPSTREAM_CLUSTER% would report it instead of the deployment ID",
			},
		},
		{
			name: "retries that never reach the fallbacks",
			envoy: editRoutes(func(routes []*routev3.Route) {
				retry := routes[8].GetRoute().GetRetryPolicy()
				retry.RefreshClusterOnRetry = false
				retry.NumRetries = wrapperspb.UInt32(2)
				routes[9].GetRoute().RetryPolicy = nil
			}),
			wanted: []string{
				gptRoute + ".route.retry_policy.num_retries: is 2 (unset is 1), below the 4 retries that reach every priority group",
				gptRoute + ".route.retry_policy.refresh_cluster_on_retry: must be true: without it every retry goes to the first attempt's cluster",
				llamaRoute + `.route: no retry_policy: the fallbacks of alias "local-llama" would never be tried`,
			},
		},
		{
			name: "retry buffer below the body limit",
			envoy: editRoutes(func(routes []*routev3.Route) {
				routes[9].RequestBodyBufferLimit = wrapperspb.UInt64(1 << 20)
			}),
			wanted: []string{
				llamaRoute + ".request_body_buffer_limit: 1048576 bytes is below max_request_size_mb (33554432 bytes): larger bodies get 413, or lose their retries",
			},
		},
		{
			name: "body limit unset on the virtual host, where the router stage buffers",
			envoy: editHCM(func(h *hcmv3.HttpConnectionManager) {
				vh := h.GetRouteConfig().GetVirtualHosts()[0]
				vh.RequestBodyBufferLimit = nil
				for _, r := range vh.GetRoutes()[7:10] { // the alias routes keep theirs
					r.RequestBodyBufferLimit = wrapperspb.UInt64(64 << 20)
				}
			}),
			wanted: []string{
				vhostPath + ".request_body_buffer_limit: unset: the listener's per_connection_buffer_limit_bytes (1 MiB by default) limits request bodies instead of max_request_size_mb (33554432 bytes)",
			},
		},
		{
			name: "alias route lost, stale route kept, deployment header dropped",
			envoy: editRoutes(func(routes []*routev3.Route) {
				routes[8].ResponseHeadersToAdd = nil
				// The local-llama route now serves an alias config.yaml dropped.
				routes[9].GetMatch().GetHeaders()[0].GetStringMatch().MatchPattern = &matcherv3.StringMatcher_Exact{Exact: "llama-old"}
				routes[9].GetRoute().ClusterSpecifier = &routev3.RouteAction_Cluster{Cluster: "llama-old-0"}
			}),
			wanted: []string{
				gptRoute + ".response_headers_to_add: must set x-tollgate-deployment: %UPSTREAM_CLUSTER%: the router stage learns there which deployment answered",
				llamaRoute + `.route.cluster: cluster "llama-old-0" is not a deployment in config.yaml`,
				llamaRoute + `: routes alias "llama-old", which config.yaml does not define`,
				hcmPath + `.route_config: no route matches x-tollgate-alias: "local-llama": requests for that alias would get 404`,
			},
		},
		{
			name: "several problems at once",
			envoy: func(t *testing.T, b *bootstrapv3.Bootstrap) {
				editRouterFilter(func(ep *extprocv3.ExternalProcessor) {
					ep.ProcessingMode.RequestBodyMode = extprocv3.ProcessingMode_FULL_DUPLEX_STREAMED
					ep.MutationRules = nil
				})(t, b)
				b.GetStaticResources().Clusters = b.GetStaticResources().Clusters[:4]
			},
			wanted: []string{
				`static_resources.clusters: no cluster "local-llama-0" for deployment "local-llama-0" of alias "local-llama"`,
				routerPath + ".mutation_rules.allow_envoy: must be true: the router stage sets x-envoy-max-retries per request",
				routerPath + ".processing_mode.request_body_mode: is FULL_DUPLEX_STREAMED, must be BUFFERED: Envoy duplicates a streamed request body when it retries (envoyproxy/envoy #36119, #45470)",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := envoy.Render(articleConfig(), articleOptions())
			if err != nil {
				t.Fatal(err)
			}
			cfg := articleConfig()
			if tt.cfg != nil {
				tt.cfg(cfg)
			}
			if tt.envoy != nil {
				tt.envoy(t, b)
			}
			if diff := cmp.Diff(tt.wanted, problemStrings(envoy.Check(cfg, b))); diff != "" {
				t.Errorf("Check problems (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCheckAcceptsExtraClusters: ops may add clusters by hand; only routes to clusters
// that are not deployments are reported.
func TestCheckAcceptsExtraClusters(t *testing.T) {
	b, err := envoy.Render(articleConfig(), articleOptions())
	if err != nil {
		t.Fatal(err)
	}
	extra := proto.Clone(b.GetStaticResources().GetClusters()[4]).(*clusterv3.Cluster)
	extra.Name = "ops-mirror"
	b.GetStaticResources().Clusters = append(b.GetStaticResources().Clusters, extra)
	if err := envoy.Check(articleConfig(), b); err != nil {
		t.Errorf("Check:\n%v", err)
	}
	if err := envoy.Validate(b); err != nil {
		t.Errorf("Validate:\n%v", err)
	}
}

func editHCM(edit func(*hcmv3.HttpConnectionManager)) func(*testing.T, *bootstrapv3.Bootstrap) {
	return func(t *testing.T, b *bootstrapv3.Bootstrap) {
		editAny(t, hcmAny(b), edit)
	}
}

func editRouterFilter(edit func(*extprocv3.ExternalProcessor)) func(*testing.T, *bootstrapv3.Bootstrap) {
	return func(t *testing.T, b *bootstrapv3.Bootstrap) {
		editAny(t, hcmAny(b), func(h *hcmv3.HttpConnectionManager) {
			editAny(t, h.HttpFilters[0].GetTypedConfig(), edit)
		})
	}
}

func editRoutes(edit func([]*routev3.Route)) func(*testing.T, *bootstrapv3.Bootstrap) {
	return editHCM(func(h *hcmv3.HttpConnectionManager) {
		edit(h.GetRouteConfig().GetVirtualHosts()[0].GetRoutes())
	})
}

func editUpstream(cluster int, edit func(*testing.T, *httpv3.HttpProtocolOptions)) func(*testing.T, *bootstrapv3.Bootstrap) {
	return func(t *testing.T, b *bootstrapv3.Bootstrap) {
		c := b.GetStaticResources().GetClusters()[cluster]
		editAny(t, c.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"],
			func(h *httpv3.HttpProtocolOptions) { edit(t, h) })
	}
}

package emulator

import (
	"slices"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// defaultMessageTimeout is ext_proc's message_timeout default (ext_proc.proto).
const defaultMessageTimeout = 200 * time.Millisecond

// extProcFilter is a compiled ExternalProcessor filter, router level or upstream.
type extProcFilter struct {
	name                     string
	upstream                 bool
	grpcCluster              string
	authority                string
	initialMetadata          []headerEntry
	failureModeAllow         bool
	config                   *extprocfilterv3.ProcessingMode
	reqAttrs, respAttrs      []string
	messageTimeout           time.Duration
	maxMessageTimeout        time.Duration
	rules                    mutationRules
	allowModeOverride        bool
	allowedOverrideModes     []*extprocfilterv3.ProcessingMode
	disableImmediateResponse bool
	receiving                []string
	forwardUntyped           []string
	forwardTyped             []string
	routeCacheAction         extprocfilterv3.ExternalProcessor_RouteCacheAction
	statusOnError            int
	allowContentLengthHeader bool
}

// attributes the emulator can evaluate (ext_proc request_attributes/response_attributes,
// see Envoy's attribute documentation).
var knownAttributes = []string{
	"request.path", "request.url_path", "request.host", "request.scheme", "request.method",
	"request.referer", "request.useragent", "request.id", "request.protocol", "request.query",
	"response.code", "xds.cluster_name", "xds.route_name", "xds.virtual_host_name",
	"source.address", "destination.address", "connection.mtls",
}

func compileExtProc(name string, cfg *extprocfilterv3.ExternalProcessor, upstream bool, path string, p *problems) *extProcFilter {
	p.unsupported(cfg, path, "grpc_service", "failure_mode_allow", "processing_mode", "request_attributes",
		"response_attributes", "message_timeout", "stat_prefix", "mutation_rules", "max_message_timeout",
		"allow_mode_override", "disable_immediate_response", "metadata_options", "route_cache_action",
		"disable_clear_route_cache", "allowed_override_modes", "status_on_error", "allow_content_length_header",
		"filter_metadata", "emit_client_span", "deferred_close_timeout")
	f := &extProcFilter{
		name:                     name,
		upstream:                 upstream,
		failureModeAllow:         cfg.GetFailureModeAllow(),
		config:                   cfg.GetProcessingMode(),
		reqAttrs:                 cfg.GetRequestAttributes(),
		respAttrs:                cfg.GetResponseAttributes(),
		messageTimeout:           durationOr(cfg.GetMessageTimeout(), defaultMessageTimeout),
		maxMessageTimeout:        durationOr(cfg.GetMaxMessageTimeout(), 0),
		rules:                    compileMutationRules(cfg.GetMutationRules(), path+".mutation_rules", p),
		allowModeOverride:        cfg.GetAllowModeOverride(),
		allowedOverrideModes:     cfg.GetAllowedOverrideModes(),
		disableImmediateResponse: cfg.GetDisableImmediateResponse(),
		receiving:                cfg.GetMetadataOptions().GetReceivingNamespaces().GetUntyped(),
		forwardUntyped:           cfg.GetMetadataOptions().GetForwardingNamespaces().GetUntyped(),
		forwardTyped:             cfg.GetMetadataOptions().GetForwardingNamespaces().GetTyped(),
		routeCacheAction:         cfg.GetRouteCacheAction(),
		statusOnError:            500,
		allowContentLengthHeader: cfg.GetAllowContentLengthHeader(),
	}
	if f.config == nil {
		f.config = &extprocfilterv3.ProcessingMode{}
	}
	if cfg.GetStatusOnError() != nil {
		f.statusOnError = int(cfg.GetStatusOnError().GetCode())
	}
	if cfg.GetDisableClearRouteCache() {
		if f.routeCacheAction != extprocfilterv3.ExternalProcessor_DEFAULT {
			p.addf("%s: disable_clear_route_cache and route_cache_action cannot both be set", path)
		}
		f.routeCacheAction = extprocfilterv3.ExternalProcessor_RETAIN
	}
	p.unsupported(cfg.GetMetadataOptions(), path+".metadata_options", "forwarding_namespaces", "receiving_namespaces")
	checkProcessingMode(f.config, path+".processing_mode", p)
	for _, m := range f.allowedOverrideModes {
		checkProcessingMode(m, path+".allowed_override_modes", p)
	}
	for _, a := range slices.Concat(f.reqAttrs, f.respAttrs) {
		if !slices.Contains(knownAttributes, a) {
			p.addf("%s: attribute %q is not supported by the emulator", path, a)
		}
	}
	gs := cfg.GetGrpcService()
	p.unsupported(gs, path+".grpc_service", "envoy_grpc", "initial_metadata")
	if gs.GetEnvoyGrpc() == nil {
		p.addf("%s.grpc_service: only envoy_grpc is supported by the emulator", path)
	} else {
		p.unsupported(gs.GetEnvoyGrpc(), path+".grpc_service.envoy_grpc", "cluster_name", "authority")
		f.grpcCluster = gs.GetEnvoyGrpc().GetClusterName()
		f.authority = gs.GetEnvoyGrpc().GetAuthority()
		if f.authority == "" {
			f.authority = f.grpcCluster
		}
	}
	f.initialMetadata = metadataEntries(gs.GetInitialMetadata())
	return f
}

func metadataEntries(hv []*corev3.HeaderValue) []headerEntry {
	var out []headerEntry
	for _, h := range hv {
		v := h.GetValue()
		if len(h.GetRawValue()) > 0 {
			v = string(h.GetRawValue())
		}
		out = append(out, headerEntry{key: h.GetKey(), value: v})
	}
	return out
}

// checkProcessingMode refuses the modes the emulator does not reproduce.
func checkProcessingMode(m *extprocfilterv3.ProcessingMode, path string, p *problems) {
	for _, b := range []extprocfilterv3.ProcessingMode_BodySendMode{m.GetRequestBodyMode(), m.GetResponseBodyMode()} {
		switch b {
		case extprocfilterv3.ProcessingMode_NONE, extprocfilterv3.ProcessingMode_STREAMED, extprocfilterv3.ProcessingMode_BUFFERED:
		default:
			p.addf("%s: body mode %s is not supported by the emulator", path, b)
		}
	}
	if m.GetRequestTrailerMode() == extprocfilterv3.ProcessingMode_SEND || m.GetResponseTrailerMode() == extprocfilterv3.ProcessingMode_SEND {
		p.addf("%s: trailer mode SEND is not supported by the emulator", path)
	}
}

// perRouteExtProc is the merged ExtProcPerRoute for one request
// (FilterConfigPerRoute in source/extensions/filters/http/ext_proc/ext_proc.cc).
type perRouteExtProc struct {
	disabled         bool
	mode             *extprocfilterv3.ProcessingMode
	failureModeAllow *bool
	initialMetadata  []headerEntry
}

func compilePerRoute(a *anypb.Any, path string, p *problems) {
	var pr extprocfilterv3.ExtProcPerRoute
	if err := a.UnmarshalTo(&pr); err != nil {
		p.addf("%s: only ExtProcPerRoute is supported by the emulator: %v", path, err)
		return
	}
	p.unsupported(&pr, path, "disabled", "overrides")
	p.unsupported(pr.GetOverrides(), path+".overrides", "processing_mode", "failure_mode_allow", "grpc_initial_metadata")
	if pr.GetOverrides().GetProcessingMode() != nil {
		checkProcessingMode(pr.GetOverrides().GetProcessingMode(), path+".overrides.processing_mode", p)
	}
}

// mergePerRoute merges the per-route configs least specific first.
func mergePerRoute(anys []*anypb.Any) *perRouteExtProc {
	if len(anys) == 0 {
		return nil
	}
	out := &perRouteExtProc{}
	for _, a := range anys {
		var pr extprocfilterv3.ExtProcPerRoute
		if a.UnmarshalTo(&pr) != nil {
			continue
		}
		out.disabled = pr.GetDisabled()
		if pr.GetDisabled() {
			out.mode = nil
		} else if pr.GetOverrides().GetProcessingMode() != nil {
			out.mode = pr.GetOverrides().GetProcessingMode()
		}
		if pr.GetOverrides().GetFailureModeAllow() != nil {
			v := pr.GetOverrides().GetFailureModeAllow().GetValue()
			out.failureModeAllow = &v
		}
		for _, h := range metadataEntries(pr.GetOverrides().GetGrpcInitialMetadata()) {
			replaced := false
			for i := range out.initialMetadata {
				if out.initialMetadata[i].key == h.key {
					out.initialMetadata[i] = h
					replaced = true
				}
			}
			if !replaced {
				out.initialMetadata = append(out.initialMetadata, h)
			}
		}
	}
	return out
}

package emulator

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	pgv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/router/cluster_specifiers/priority_group/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// Envoy's defaults (api/envoy/config/route/v3/route_components.proto).
const (
	defaultRouteTimeout = 15 * time.Second
	defaultNumRetries   = 1
	defaultRetryBase    = 25 * time.Millisecond
)

// routeTable is a compiled RouteConfiguration.
type routeTable struct {
	vhosts    []*virtualHost
	perFilter map[string]*anypb.Any
	headers   headerOps
}

// headerOps are the request/response header additions and removals of one config level.
type headerOps struct {
	reqAdd     []headerOption
	reqRemove  []string
	respAdd    []headerOption
	respRemove []string
}

type headerOption struct {
	key, value string
	action     corev3.HeaderValueOption_HeaderAppendAction
	keepEmpty  bool
}

type virtualHost struct {
	name             string
	domains          []string
	routes           []*route
	perFilter        map[string]*anypb.Any
	headers          headerOps
	attemptCountReq  bool
	attemptCountResp bool
	bodyLimit        uint64 // 0 when unset
	retry            *retryPolicy
	table            *routeTable
}

type route struct {
	name      string
	vh        *virtualHost
	match     routeMatch
	direct    *directResponse
	action    *routeAction
	perFilter map[string]*anypb.Any
	headers   headerOps
	bodyLimit uint64
}

type directResponse struct {
	status int
	body   []byte
}

type routeMatch struct {
	prefix, path  string
	regex         *regexp.Regexp
	caseSensitive bool
	headers       []headerMatcher
}

type routeAction struct {
	cluster       string
	clusterHeader string
	weighted      []weightedCluster
	totalWeight   uint64
	priority      *priorityGroups
	notFoundCode  int
	timeout       time.Duration // 0 disables the route timeout
	idleTimeout   time.Duration // 0 means none
	retry         *retryPolicy
}

type weightedCluster struct {
	name   string
	weight uint64
}

// bufferLimit is the request body limit of the route: request_body_buffer_limit of the
// route, else of its virtual host, else the listener's per-connection limit
// (route_components.proto, request_body_buffer_limit precedence).
func (r *route) bufferLimit(listenerLimit uint64) uint64 {
	if r.bodyLimit > 0 {
		return r.bodyLimit
	}
	if r.vh.bodyLimit > 0 {
		return r.vh.bodyLimit
	}
	return listenerLimit
}

// perFilterConfigs returns the typed_per_filter_config entries for a filter name, least
// specific first (route configuration, virtual host, route), the order Envoy merges them.
func (r *route) perFilterConfigs(name string) []*anypb.Any {
	var out []*anypb.Any
	for _, m := range []map[string]*anypb.Any{r.vh.table.perFilter, r.vh.perFilter, r.perFilter} {
		if a, ok := m[name]; ok {
			out = append(out, a)
		}
	}
	return out
}

// headerLevels returns the header operations of the route, its virtual host and the route
// configuration, most specific first: Envoy applies them in that order unless
// most_specific_header_mutations_wins is set (source/common/router/config_impl.cc).
func (r *route) headerLevels() []headerOps {
	return []headerOps{r.headers, r.vh.headers, r.vh.table.headers}
}

func compileRouteTable(rc *routev3.RouteConfiguration, p *problems) *routeTable {
	path := "route_config"
	p.unsupported(rc, path, "name", "virtual_hosts", "typed_per_filter_config", "response_headers_to_add",
		"response_headers_to_remove", "request_headers_to_add", "request_headers_to_remove",
		"cluster_specifier_plugins", "validate_clusters")
	t := &routeTable{perFilter: rc.GetTypedPerFilterConfig()}
	t.headers = compileHeaderOps(path, rc.GetRequestHeadersToAdd(), rc.GetRequestHeadersToRemove(),
		rc.GetResponseHeadersToAdd(), rc.GetResponseHeadersToRemove(), p)
	plugins := map[string]*priorityGroups{}
	for i, csp := range rc.GetClusterSpecifierPlugins() {
		pg := compilePriorityGroups(csp, fmt.Sprintf("%s.cluster_specifier_plugins[%d]", path, i), p)
		if pg != nil {
			plugins[csp.GetExtension().GetName()] = pg
		}
	}
	for i, vh := range rc.GetVirtualHosts() {
		t.vhosts = append(t.vhosts, compileVirtualHost(t, vh, plugins, fmt.Sprintf("%s.virtual_hosts[%d]", path, i), p))
	}
	return t
}

func compileVirtualHost(t *routeTable, vh *routev3.VirtualHost, plugins map[string]*priorityGroups, path string, p *problems) *virtualHost {
	p.unsupported(vh, path, "name", "domains", "routes", "typed_per_filter_config", "request_headers_to_add",
		"request_headers_to_remove", "response_headers_to_add", "response_headers_to_remove",
		"include_request_attempt_count", "include_attempt_count_in_response", "retry_policy",
		"request_body_buffer_limit", "metadata")
	v := &virtualHost{
		name:             vh.GetName(),
		domains:          vh.GetDomains(),
		perFilter:        vh.GetTypedPerFilterConfig(),
		attemptCountReq:  vh.GetIncludeRequestAttemptCount(),
		attemptCountResp: vh.GetIncludeAttemptCountInResponse(),
		bodyLimit:        vh.GetRequestBodyBufferLimit().GetValue(),
		table:            t,
	}
	v.headers = compileHeaderOps(path, vh.GetRequestHeadersToAdd(), vh.GetRequestHeadersToRemove(),
		vh.GetResponseHeadersToAdd(), vh.GetResponseHeadersToRemove(), p)
	if vh.GetRetryPolicy() != nil {
		v.retry = compileRetryPolicy(vh.GetRetryPolicy(), path+".retry_policy", p)
	}
	for i, r := range vh.GetRoutes() {
		v.routes = append(v.routes, compileRoute(v, r, plugins, fmt.Sprintf("%s.routes[%d]", path, i), p))
	}
	return v
}

func compileRoute(vh *virtualHost, r *routev3.Route, plugins map[string]*priorityGroups, path string, p *problems) *route {
	p.unsupported(r, path, "name", "match", "route", "direct_response", "typed_per_filter_config",
		"request_headers_to_add", "request_headers_to_remove", "response_headers_to_add",
		"response_headers_to_remove", "request_body_buffer_limit", "metadata", "decorator", "stat_prefix")
	out := &route{
		name:      r.GetName(),
		vh:        vh,
		perFilter: r.GetTypedPerFilterConfig(),
		bodyLimit: r.GetRequestBodyBufferLimit().GetValue(),
	}
	out.headers = compileHeaderOps(path, r.GetRequestHeadersToAdd(), r.GetRequestHeadersToRemove(),
		r.GetResponseHeadersToAdd(), r.GetResponseHeadersToRemove(), p)
	out.match = compileRouteMatch(r.GetMatch(), path+".match", p)
	switch a := r.GetAction().(type) {
	case *routev3.Route_DirectResponse:
		p.unsupported(a.DirectResponse, path+".direct_response", "status", "body")
		body, err := dataSource(a.DirectResponse.GetBody())
		if err != nil {
			p.addf("%s.direct_response.body: %w", path, err)
		}
		out.direct = &directResponse{status: int(a.DirectResponse.GetStatus()), body: body}
	case *routev3.Route_Route:
		out.action = compileRouteAction(a.Route, plugins, path+".route", p)
		if out.action.retry == nil {
			out.action.retry = vh.retry
		}
	default:
		p.addf("%s: only route and direct_response actions are supported by the emulator", path)
	}
	return out
}

func compileRouteMatch(m *routev3.RouteMatch, path string, p *problems) routeMatch {
	p.unsupported(m, path, "prefix", "path", "safe_regex", "case_sensitive", "headers")
	out := routeMatch{caseSensitive: true}
	if m.GetCaseSensitive() != nil {
		out.caseSensitive = m.GetCaseSensitive().GetValue()
	}
	switch s := m.GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Prefix:
		out.prefix = s.Prefix
	case *routev3.RouteMatch_Path:
		out.path = s.Path
	case *routev3.RouteMatch_SafeRegex:
		re, err := regexp.Compile("^(?:" + s.SafeRegex.GetRegex() + ")$")
		if err != nil {
			p.addf("%s.safe_regex: %w", path, err)
		}
		out.regex = re
	default:
		p.addf("%s: a prefix, path or safe_regex path specifier is required", path)
	}
	for i, h := range m.GetHeaders() {
		out.headers = append(out.headers, compileHeaderMatcher(h, fmt.Sprintf("%s.headers[%d]", path, i), p))
	}
	return out
}

func compileRouteAction(a *routev3.RouteAction, plugins map[string]*priorityGroups, path string, p *problems) *routeAction {
	p.unsupported(a, path, "cluster", "cluster_header", "weighted_clusters", "cluster_specifier_plugin",
		"inline_cluster_specifier_plugin", "cluster_not_found_response_code", "timeout", "idle_timeout",
		"retry_policy")
	out := &routeAction{
		timeout:     durationOr(a.GetTimeout(), defaultRouteTimeout),
		idleTimeout: durationOr(a.GetIdleTimeout(), 0),
	}
	switch a.GetClusterNotFoundResponseCode() {
	case routev3.RouteAction_NOT_FOUND:
		out.notFoundCode = 404
	case routev3.RouteAction_INTERNAL_SERVER_ERROR:
		out.notFoundCode = 500
	default:
		out.notFoundCode = 503
	}
	switch s := a.GetClusterSpecifier().(type) {
	case *routev3.RouteAction_Cluster:
		out.cluster = s.Cluster
	case *routev3.RouteAction_ClusterHeader:
		out.clusterHeader = strings.ToLower(s.ClusterHeader)
	case *routev3.RouteAction_WeightedClusters:
		wc := s.WeightedClusters
		p.unsupported(wc, path+".weighted_clusters", "clusters", "total_weight")
		for i, c := range wc.GetClusters() {
			p.unsupported(c, fmt.Sprintf("%s.weighted_clusters.clusters[%d]", path, i), "name", "weight")
			out.weighted = append(out.weighted, weightedCluster{name: c.GetName(), weight: uint64(c.GetWeight().GetValue())})
			out.totalWeight += uint64(c.GetWeight().GetValue())
		}
		if out.totalWeight == 0 {
			p.addf("%s.weighted_clusters: total weight must be positive", path)
		}
	case *routev3.RouteAction_ClusterSpecifierPlugin:
		out.priority = plugins[s.ClusterSpecifierPlugin]
		if out.priority == nil {
			p.addf("%s.cluster_specifier_plugin: unknown plugin %q", path, s.ClusterSpecifierPlugin)
		}
	case *routev3.RouteAction_InlineClusterSpecifierPlugin:
		out.priority = compilePriorityGroups(s.InlineClusterSpecifierPlugin, path+".inline_cluster_specifier_plugin", p)
	default:
		p.addf("%s: no cluster specifier", path)
	}
	if a.GetRetryPolicy() != nil {
		out.retry = compileRetryPolicy(a.GetRetryPolicy(), path+".retry_policy", p)
	}
	return out
}

func compileHeaderOps(path string, reqAdd []*corev3.HeaderValueOption, reqRemove []string,
	respAdd []*corev3.HeaderValueOption, respRemove []string, p *problems) headerOps {
	ops := headerOps{}
	for _, r := range reqRemove {
		ops.reqRemove = append(ops.reqRemove, strings.ToLower(r))
	}
	for _, r := range respRemove {
		ops.respRemove = append(ops.respRemove, strings.ToLower(r))
	}
	ops.reqAdd = compileHeaderOptions(reqAdd, path+".request_headers_to_add", p)
	ops.respAdd = compileHeaderOptions(respAdd, path+".response_headers_to_add", p)
	return ops
}

func compileHeaderOptions(opts []*corev3.HeaderValueOption, path string, p *problems) []headerOption {
	var out []headerOption
	for i, o := range opts {
		at := fmt.Sprintf("%s[%d]", path, i)
		p.unsupported(o, at, "header", "append", "append_action", "keep_empty_value")
		h := headerOption{key: strings.ToLower(o.GetHeader().GetKey()), value: o.GetHeader().GetValue(),
			action: o.GetAppendAction(), keepEmpty: o.GetKeepEmptyValue()}
		if len(o.GetHeader().GetRawValue()) > 0 {
			h.value = string(o.GetHeader().GetRawValue())
		}
		if o.GetAppend() != nil {
			// The deprecated bool wins when set: true appends, false overwrites.
			h.action = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
			if o.GetAppend().GetValue() {
				h.action = corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD
			}
		}
		if err := checkFormatter(h.value); err != nil {
			p.addf("%s: %w", at, err)
		}
		out = append(out, h)
	}
	return out
}

// checkFormatter accepts the substitution commands the emulator can render.
func checkFormatter(v string) error {
	for rest := v; ; {
		i := strings.IndexByte(rest, '%')
		if i < 0 {
			return nil
		}
		rest = rest[i+1:]
		if strings.HasPrefix(rest, "%") {
			rest = rest[1:]
			continue
		}
		j := strings.IndexByte(rest, '%')
		if j < 0 {
			return fmt.Errorf("unterminated %% command in %q", v)
		}
		if cmd := rest[:j]; cmd != "UPSTREAM_CLUSTER" {
			return fmt.Errorf("header value command %%%s%% is not supported by the emulator", cmd)
		}
		rest = rest[j+1:]
	}
}

// formatHeaderValue renders the substitution commands checkFormatter accepted.
func formatHeaderValue(v, upstreamCluster string) string {
	if !strings.Contains(v, "%") {
		return v
	}
	v = strings.ReplaceAll(v, "%UPSTREAM_CLUSTER%", upstreamCluster)
	return strings.ReplaceAll(v, "%%", "%")
}

// applyHeaderOption applies one header_to_add entry (core/v3 HeaderValueOption semantics).
func applyHeaderOption(h *headerMap, o headerOption, value string) {
	if value == "" && !o.keepEmpty {
		return
	}
	switch o.action {
	case corev3.HeaderValueOption_ADD_IF_ABSENT:
		if !h.has(o.key) {
			h.add(o.key, value)
		}
	case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD:
		h.set(o.key, value)
	case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
		if h.has(o.key) {
			h.set(o.key, value)
		}
	default:
		h.add(o.key, value)
	}
}

func dataSource(ds *corev3.DataSource) ([]byte, error) {
	switch s := ds.GetSpecifier().(type) {
	case nil:
		return nil, nil
	case *corev3.DataSource_InlineString:
		return []byte(s.InlineString), nil
	case *corev3.DataSource_InlineBytes:
		return s.InlineBytes, nil
	case *corev3.DataSource_Filename:
		b, err := os.ReadFile(s.Filename)
		if err != nil {
			return nil, fmt.Errorf("read data source: %w", err)
		}
		return b, nil
	default:
		return nil, fmt.Errorf("data source kind %T is not supported by the emulator", s)
	}
}

// headerMatcher is a compiled route HeaderMatcher.
type headerMatcher struct {
	name           string
	present        *bool
	str            *stringMatcher
	invert         bool
	missingAsEmpty bool
}

func compileHeaderMatcher(m *routev3.HeaderMatcher, path string, p *problems) headerMatcher {
	out := headerMatcher{name: strings.ToLower(m.GetName()), invert: m.GetInvertMatch(), missingAsEmpty: m.GetTreatMissingHeaderAsEmpty()}
	switch s := m.GetHeaderMatchSpecifier().(type) {
	case *routev3.HeaderMatcher_ExactMatch:
		out.str = &stringMatcher{exact: &s.ExactMatch}
	case *routev3.HeaderMatcher_PrefixMatch:
		out.str = &stringMatcher{prefix: &s.PrefixMatch}
	case *routev3.HeaderMatcher_SuffixMatch:
		out.str = &stringMatcher{suffix: &s.SuffixMatch}
	case *routev3.HeaderMatcher_ContainsMatch:
		out.str = &stringMatcher{contains: &s.ContainsMatch}
	case *routev3.HeaderMatcher_SafeRegexMatch:
		re, err := regexp.Compile("^(?:" + s.SafeRegexMatch.GetRegex() + ")$")
		if err != nil {
			p.addf("%s.safe_regex_match: %w", path, err)
		}
		out.str = &stringMatcher{regex: re}
	case *routev3.HeaderMatcher_PresentMatch:
		v := s.PresentMatch
		out.present = &v
	case *routev3.HeaderMatcher_StringMatch:
		out.str = compileStringMatcher(s.StringMatch, path+".string_match", p)
	case nil:
		// No specifier: Envoy treats it as a presence match.
		v := true
		out.present = &v
	default:
		p.addf("%s: header match kind %T is not supported by the emulator", path, s)
	}
	return out
}

// matches follows Envoy's HeaderUtility::matchHeaders: multiple values are joined with ",".
func (m headerMatcher) matches(h *headerMap) bool {
	v, ok := h.joined(m.name)
	if !ok && m.missingAsEmpty {
		v, ok = "", true
	}
	var match bool
	switch {
	case m.present != nil:
		match = ok == *m.present
	case !ok:
		// A missing header never matches a value matcher, inverted or not.
		return false
	default:
		match = m.str.match(v)
	}
	return match != m.invert
}

type stringMatcher struct {
	exact, prefix, suffix, contains *string
	regex                           *regexp.Regexp
	ignoreCase                      bool
}

func compileStringMatcher(m *matcherv3.StringMatcher, path string, p *problems) *stringMatcher {
	out := &stringMatcher{ignoreCase: m.GetIgnoreCase()}
	switch s := m.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		out.exact = &s.Exact
	case *matcherv3.StringMatcher_Prefix:
		out.prefix = &s.Prefix
	case *matcherv3.StringMatcher_Suffix:
		out.suffix = &s.Suffix
	case *matcherv3.StringMatcher_Contains:
		out.contains = &s.Contains
	case *matcherv3.StringMatcher_SafeRegex:
		re, err := regexp.Compile("^(?:" + s.SafeRegex.GetRegex() + ")$")
		if err != nil {
			p.addf("%s.safe_regex: %w", path, err)
		}
		out.regex = re
	default:
		p.addf("%s: string match kind %T is not supported by the emulator", path, s)
	}
	return out
}

func (m *stringMatcher) match(v string) bool {
	cmp := func(a string) (string, string) {
		if m.ignoreCase {
			return strings.ToLower(v), strings.ToLower(a)
		}
		return v, a
	}
	switch {
	case m.exact != nil:
		x, a := cmp(*m.exact)
		return x == a
	case m.prefix != nil:
		x, a := cmp(*m.prefix)
		return strings.HasPrefix(x, a)
	case m.suffix != nil:
		x, a := cmp(*m.suffix)
		return strings.HasSuffix(x, a)
	case m.contains != nil:
		x, a := cmp(*m.contains)
		return strings.Contains(x, a)
	case m.regex != nil:
		return m.regex.MatchString(v)
	}
	return false
}

// selectRoute finds the virtual host by :authority and the first matching route.
func (t *routeTable) selectRoute(h *headerMap) *route {
	vh := t.selectVirtualHost(h.value(":authority"))
	if vh == nil {
		return nil
	}
	for _, r := range vh.routes {
		if r.match.matches(h) {
			return r
		}
	}
	return nil
}

// selectVirtualHost follows Envoy's domain search order: exact, suffix wildcard ("*.x"),
// prefix wildcard ("x*"), then "*"; the port is ignored when the host+port has no match.
func (t *routeTable) selectVirtualHost(authority string) *virtualHost {
	host := strings.ToLower(authority)
	if vh := t.findDomain(host); vh != nil {
		return vh
	}
	if i := strings.LastIndexByte(host, ':'); i > 0 && !strings.HasSuffix(host, "]") {
		return t.findDomain(host[:i])
	}
	return nil
}

func (t *routeTable) findDomain(host string) *virtualHost {
	var suffix, prefix, star *virtualHost
	suffixLen, prefixLen := -1, -1
	for _, vh := range t.vhosts {
		for _, d := range vh.domains {
			d = strings.ToLower(d)
			switch {
			case d == host:
				return vh
			case d == "*":
				if star == nil {
					star = vh
				}
			case strings.HasPrefix(d, "*") && strings.HasSuffix(host, d[1:]) && len(d) > suffixLen:
				suffix, suffixLen = vh, len(d)
			case strings.HasSuffix(d, "*") && strings.HasPrefix(host, d[:len(d)-1]) && len(d) > prefixLen:
				prefix, prefixLen = vh, len(d)
			}
		}
	}
	switch {
	case suffix != nil:
		return suffix
	case prefix != nil:
		return prefix
	}
	return star
}

func (m routeMatch) matches(h *headerMap) bool {
	full := h.value(":path")
	pathOnly := full
	if i := strings.IndexByte(pathOnly, '?'); i >= 0 {
		pathOnly = pathOnly[:i]
	}
	fold := func(s string) string {
		if m.caseSensitive {
			return s
		}
		return strings.ToLower(s)
	}
	switch {
	case m.regex != nil:
		if !m.regex.MatchString(pathOnly) {
			return false
		}
	case m.path != "":
		if fold(pathOnly) != fold(m.path) {
			return false
		}
	default:
		if !strings.HasPrefix(fold(full), fold(m.prefix)) {
			return false
		}
	}
	for _, hm := range m.headers {
		if !hm.matches(h) {
			return false
		}
	}
	return true
}

// priorityGroups is a compiled PriorityGroupClusterSpecifier
// (source/extensions/router/cluster_specifiers/priority_group/).
type priorityGroups struct {
	groups      []pgGroup
	byName      map[string]*pgGroup
	namespace   string
	valueHeader string
}

type pgGroup struct {
	name     string
	clusters []weightedCluster
	total    uint64
}

func compilePriorityGroups(csp *routev3.ClusterSpecifierPlugin, path string, p *problems) *priorityGroups {
	var cfg pgv3.PriorityGroupClusterSpecifier
	ext := csp.GetExtension()
	if ext.GetTypedConfig() == nil || ext.GetTypedConfig().MessageName() != "envoy.extensions.router.cluster_specifiers.priority_group.v3.PriorityGroupClusterSpecifier" {
		p.addf("%s: only the priority_group cluster specifier is supported by the emulator", path)
		return nil
	}
	if err := ext.GetTypedConfig().UnmarshalTo(&cfg); err != nil {
		p.addf("%s: %w", path, err)
		return nil
	}
	p.unsupported(&cfg, path+".typed_config", "priority_groups", "override_metadata_namespace", "header_name")
	out := &priorityGroups{byName: map[string]*pgGroup{}, namespace: cfg.GetOverrideMetadataNamespace(), valueHeader: strings.ToLower(cfg.GetHeaderName())}
	for _, g := range cfg.GetPriorityGroups() {
		grp := pgGroup{name: g.GetName()}
		for _, c := range g.GetClusters() {
			w := uint64(c.GetWeight().GetValue())
			if c.GetWeight() == nil {
				w = 1
			}
			grp.clusters = append(grp.clusters, weightedCluster{name: c.GetClusterName(), weight: w})
			grp.total += w
		}
		if grp.total == 0 {
			p.addf("%s: priority group %q has no weighted cluster", path, g.GetName())
		}
		out.groups = append(out.groups, grp)
	}
	if len(out.groups) == 0 {
		p.addf("%s: no priority groups", path)
	}
	for i := range out.groups {
		if _, dup := out.byName[out.groups[i].name]; !dup {
			out.byName[out.groups[i].name] = &out.groups[i]
		}
	}
	return out
}

func (g *pgGroup) pick(random uint64) string {
	v := random % g.total
	var begin uint64
	for _, c := range g.clusters {
		if v < begin+c.weight {
			return c.name
		}
		begin += c.weight
	}
	return g.clusters[len(g.clusters)-1].name
}

// metadataReader reads one namespace of the request's dynamic metadata.
type metadataReader interface {
	namespace(ns string) *structpb.Struct
}

// selectCluster picks the cluster for an attempt (1-based). The group of attempt n is
// groups[min(n-1, len-1)]: the last group serves every later attempt
// (priority_group.proto). A valid per-request override in the dynamic metadata namespace
// replaces the configured list; an invalid one falls back to it.
func (pg *priorityGroups) selectCluster(meta metadataReader, attempt int, random uint64) string {
	if pg.namespace != "" {
		if g := pg.override(meta, attempt); g != nil {
			return g.pick(random)
		}
	}
	return pg.groups[min(attempt-1, len(pg.groups)-1)].pick(random)
}

func (pg *priorityGroups) override(meta metadataReader, attempt int) *pgGroup {
	ns := meta.namespace(pg.namespace)
	if ns == nil {
		return nil
	}
	list := ns.GetFields()["priority_groups"].GetListValue().GetValues()
	if len(list) == 0 {
		return nil
	}
	v := list[min(attempt-1, len(list)-1)].GetStructValue()
	if v == nil {
		return nil
	}
	name := v.GetFields()["name"].GetStringValue()
	if name == "" {
		return nil
	}
	clusters := v.GetFields()["clusters"].GetListValue().GetValues()
	if len(clusters) == 0 {
		// Only the name is overridden: the configured group of that name is used.
		return pg.byName[name]
	}
	g := &pgGroup{name: name}
	for _, c := range clusters {
		fields := c.GetStructValue().GetFields()
		cn := fields["cluster_name"].GetStringValue()
		wv, ok := fields["weight"]
		w := wv.GetNumberValue()
		if cn == "" || !ok || !(w >= 1) || w > float64(^uint32(0)) {
			return nil
		}
		g.clusters = append(g.clusters, weightedCluster{name: cn, weight: uint64(w)})
		g.total += uint64(w)
	}
	return g
}

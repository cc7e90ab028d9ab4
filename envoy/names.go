package envoy

import (
	"strconv"

	"github.com/tollgate-dev/tollgate/config"
)

// The names the rendered envoy.yaml, the ext_proc server and the emulator agree on. Ops may
// edit a rendered envoy.yaml, but these names must stay: Check reports a file that lost them.
const (
	// ListenerName names the one listener, its route configuration and its virtual host.
	ListenerName = "tollgate"

	// RouterFilterName is the router-level ext_proc filter: one gRPC stream per request.
	RouterFilterName = "tollgate"
	// UpstreamFilterName is the per-attempt ext_proc filter in every deployment cluster.
	UpstreamFilterName = "tollgate_upstream"

	// ExtProcCluster is the cluster of the tollgate ext_proc gRPC server.
	ExtProcCluster = "tollgate_ext_proc"
	// AdminCluster is the cluster of tollgate's admin HTTP server (/key/*, /team/*, ...).
	AdminCluster = "tollgate_admin"

	// MetadataNamespace is the dynamic metadata namespace the router stage writes and the
	// priority_group cluster specifier reads its per-request overrides from.
	MetadataNamespace = "tollgate"
)

// Header names shared by the router stage, the routes and the upstream stage.
const (
	// HeaderAlias carries the model alias the router stage resolved; routes match on it.
	HeaderAlias = "x-tollgate-alias"
	// HeaderEndpoint carries the client API operation ("chat/completions", ...).
	HeaderEndpoint = "x-tollgate-endpoint"
	// HeaderRequestID carries tollgate's request id to the upstream stage and the client.
	HeaderRequestID = "x-tollgate-request-id"
	// HeaderDeployment names the deployment: gRPC metadata of an upstream stream, and the
	// response header through which the router stage learns which deployment answered.
	HeaderDeployment = "x-tollgate-deployment"
	// HeaderStage is gRPC metadata naming the stage of a stream ("router").
	HeaderStage = "x-tollgate-stage"
)

// StageRouter is the HeaderStage value of the router-level ext_proc filter.
const StageRouter = "router"

// Group is one priority group of an alias's chain: the deployments (cluster names) one
// attempt may go to, chosen by weight (all weights are 1).
type Group struct {
	// Name is unique within the chain. The router stage may reference a configured group
	// by name in its per-request override metadata.
	Name string
	// Alias is the model alias whose deployments make up the group.
	Alias string
	// Clusters are the deployment IDs, in config order.
	Clusters []string
}

// Chain returns the priority groups Envoy walks for alias, one group per attempt: the
// alias's own deployments NumRetries+1 times, then, per fallback alias in order
// (cfg.FallbacksFor), that alias's deployments. The route for alias retries len(Chain)-1
// times. Fallback aliases without deployments, repeated ones and the alias itself are
// left out: they add nothing to try.
func Chain(cfg *config.Config, alias string) []Group {
	own := deploymentIDs(cfg, alias)
	if len(own) == 0 {
		return nil
	}
	var groups []Group
	for i := 0; i <= cfg.NumRetries; i++ {
		name := alias
		if i > 0 {
			name = alias + "#retry" + strconv.Itoa(i)
		}
		groups = append(groups, Group{Name: name, Alias: alias, Clusters: own})
	}
	seen := map[string]bool{alias: true}
	for _, fb := range cfg.FallbacksFor(alias) {
		ids := deploymentIDs(cfg, fb)
		if seen[fb] || len(ids) == 0 {
			continue
		}
		seen[fb] = true
		groups = append(groups, Group{Name: fb, Alias: fb, Clusters: ids})
	}
	return groups
}

// deploymentIDs returns the IDs of alias's deployments in config order.
func deploymentIDs(cfg *config.Config, alias string) []string {
	var ids []string
	for _, d := range cfg.DeploymentsFor(alias) {
		ids = append(ids, d.ID)
	}
	return ids
}

package config

import "sort"

// index holds the lookups the request path makes, computed once so each is a map read.
type index struct {
	aliases []string
	byAlias map[string][]*Deployment
	byID    map[string]*Deployment
}

func newIndex(deps []*Deployment) *index {
	ix := &index{byAlias: map[string][]*Deployment{}, byID: map[string]*Deployment{}}
	for _, d := range deps {
		if _, seen := ix.byAlias[d.Alias]; !seen {
			ix.aliases = append(ix.aliases, d.Alias)
		}
		ix.byAlias[d.Alias] = append(ix.byAlias[d.Alias], d)
		ix.byID[d.ID] = d
	}
	sort.Strings(ix.aliases)
	return ix
}

// idx returns the index Load built. A Config built by hand (tests in other packages)
// has none, so one is computed on the spot rather than answering wrongly.
func (c *Config) idx() *index {
	if c.index != nil {
		return c.index
	}
	return newIndex(c.Deployments)
}

// Aliases returns the model names clients may ask for, sorted, each once. The slice is
// shared: callers must not modify it.
func (c *Config) Aliases() []string { return c.idx().aliases }

// DeploymentsFor returns the deployments serving alias, in model_list order, or nil for
// an unknown alias. The slice is shared: callers must not modify it. (It is not named
// Deployments because that is the field holding every deployment.)
func (c *Config) DeploymentsFor(alias string) []*Deployment { return c.idx().byAlias[alias] }

// Deployment returns the deployment whose ID is id: the Envoy cluster name an upstream
// ext_proc stream names in its x-tollgate-deployment metadata.
func (c *Config) Deployment(id string) (*Deployment, bool) {
	d, ok := c.idx().byID[id]
	return d, ok
}

// FallbacksFor returns the aliases tried, in order, after alias has failed: its own
// fallbacks entry, or else DefaultFallbacks without alias itself. The slice may be
// shared: callers must not modify it.
func (c *Config) FallbacksFor(alias string) []string {
	if fb, ok := c.Fallbacks[alias]; ok {
		return fb
	}
	var out []string
	for _, a := range c.DefaultFallbacks {
		if a != alias {
			out = append(out, a)
		}
	}
	return out
}

package config

import (
	"errors"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Readers for the top level, litellm_settings, router_settings and general_settings.

func readSection(keys []key[*Config]) func(*decoder, *yaml.Node, string, *Config) {
	return func(d *decoder, n *yaml.Node, path string, c *Config) { decodeMapping(d, n, path, keys, c, false) }
}

// readEnvironment reads environment_variables. Their own os.environ/ values resolve
// against the process environment only, so the result does not depend on key order.
func readEnvironment(d *decoder, n *yaml.Node, path string, c *Config) {
	vars := map[string]string{}
	for _, e := range d.entries(n, path) {
		name, p := e.key.Value, join(path, e.key.Value)
		if name == "" || strings.ContainsAny(name, "=\x00") {
			d.errorf(e.key, p, "is not a valid environment variable name")
			continue
		}
		v := ""
		if !isNull(e.value) {
			var ok bool
			if v, ok = d.value(e.value, p, false); !ok {
				continue
			}
		}
		vars[name] = v
	}
	d.vars = vars
	c.Environment = make(map[string]Secret, len(vars))
	for k, v := range vars {
		c.Environment[k] = Secret(v)
	}
}

func readNumRetries(d *decoder, n *yaml.Node, path string, c *Config) {
	d.shared("num_retries", path, n)
	if v, ok := d.integer(n, path, 0); ok {
		c.NumRetries = v
	}
}

// readRequestTimeout reads litellm_settings.request_timeout and router_settings.timeout,
// which LiteLLM's router treats as one setting (timeout or litellm.request_timeout).
func readRequestTimeout(d *decoder, n *yaml.Node, path string, c *Config) {
	d.shared("timeout", path, n)
	if v, ok := d.seconds(n, path); ok {
		c.RequestTimeout = v
	}
}

// routingStrategies are LiteLLM's router strategies; tollgate spreads an alias's requests
// evenly over its deployments, which is simple-shuffle.
var routingStrategies = []string{
	"simple-shuffle", "least-busy", "usage-based-routing", "usage-based-routing-v2",
	"latency-based-routing", "cost-based-routing",
}

func readRoutingStrategy(d *decoder, n *yaml.Node, path string, _ *Config) {
	s, ok := d.value(n, path, false)
	switch {
	case !ok, s == "simple-shuffle":
		// Already reported, or what tollgate does anyway.
	case slices.Contains(routingStrategies, s):
		d.warnf(n, path, "%s is not supported; tollgate spreads requests evenly over an alias's deployments (simple-shuffle)", s)
	default:
		d.errorf(n, path, "unknown routing strategy %q; LiteLLM's are: %s", s, strings.Join(routingStrategies, ", "))
	}
}

// readFallbacks reads one of the {alias: [aliases]} lists into the map field picks.
func readFallbacks(name string, field func(*Config) *map[string][]string) func(*decoder, *yaml.Node, string, *Config) {
	return func(d *decoder, n *yaml.Node, path string, c *Config) {
		d.shared(name, path, n)
		*field(c) = d.fallbacks(n, path)
	}
}

// fallbacks reads a list of {alias: [fallback aliases]} maps. LiteLLM writes one alias
// per map; a map with several is read as several entries rather than dropping all but the
// first, as LiteLLM would.
func (d *decoder) fallbacks(n *yaml.Node, path string) map[string][]string {
	items := deref(n)
	if items.Kind != yaml.SequenceNode {
		d.errorf(n, path, "must be a list of {model: [fallback models]} maps, not %s", kindName(items))
		return nil
	}
	out := map[string][]string{}
	from := map[string]*yaml.Node{}
	for i, item := range items.Content {
		for _, e := range d.entries(item, at(path, i)) {
			alias := e.key.Value
			switch {
			case !d.aliases[alias]:
				d.errorf(e.key, path, "fallbacks for unknown model %s; known models: %s", alias, d.knownModels())
				continue
			case from[alias] != nil:
				d.errorf(e.key, path, "%s is listed twice (first at line %d)", alias, from[alias].Line)
				continue
			}
			from[alias] = e.key
			out[alias] = d.fallbackList(alias, e.value, path)
		}
	}
	d.warnUnchained(out, from, path)
	return out
}

// fallbackList reads the aliases one alias falls back to; an empty list is kept: it turns
// default_fallbacks off for that alias.
func (d *decoder) fallbackList(alias string, n *yaml.Node, path string) []string {
	items := deref(n)
	if items.Kind != yaml.SequenceNode {
		d.errorf(n, path, "%s: its fallbacks must be a list of models, not %s", alias, kindName(items))
		return nil
	}
	out := []string{}
	for _, item := range items.Content {
		to, ok := d.value(item, path, false)
		switch {
		case !ok:
		case to == alias:
			d.errorf(item, path, "%s falls back to itself", alias)
		case !d.aliases[to]:
			d.errorf(item, path, "%s falls back to unknown model %s; known models: %s", alias, to, d.knownModels())
		case slices.Contains(out, to):
			d.errorf(item, path, "%s lists %s twice", alias, to)
		default:
			out = append(out, to)
		}
	}
	return out
}

// warnUnchained reports fallbacks LiteLLM would reach and tollgate will not. LiteLLM
// follows a fallback's own fallbacks (up to max_fallbacks); tollgate tries exactly the
// failing alias's list, which keeps every request's chain visible in envoy.yaml and makes
// cycles harmless. What a chain would have added is reported so it can be listed
// explicitly.
func (d *decoder) warnUnchained(fb map[string][]string, from map[string]*yaml.Node, path string) {
	aliases := make([]string, 0, len(fb))
	for a := range fb {
		aliases = append(aliases, a)
	}
	sort.Strings(aliases)
	for _, a := range aliases {
		var lost []string
		for _, to := range fb[a] {
			for _, next := range fb[to] {
				if next != a && !slices.Contains(fb[a], next) && !slices.Contains(lost, next) {
					lost = append(lost, next)
				}
			}
		}
		if len(lost) > 0 {
			d.warnf(from[a], path, "%s: tollgate does not chain fallbacks, so %s (fallbacks of its fallbacks) will not be tried for %s; add them to its list to try them",
				a, strings.Join(lost, ", "), a)
		}
	}
}

func readDefaultFallbacks(d *decoder, n *yaml.Node, path string, c *Config) {
	d.shared("default_fallbacks", path, n)
	items := deref(n)
	if items.Kind != yaml.SequenceNode {
		d.errorf(n, path, "must be a list of models, not %s", kindName(items))
		return
	}
	var out []string
	for _, item := range items.Content {
		to, ok := d.value(item, path, false)
		switch {
		case !ok:
		case !d.aliases[to]:
			d.errorf(item, path, "unknown model %s; known models: %s", to, d.knownModels())
		case slices.Contains(out, to):
			d.errorf(item, path, "lists %s twice", to)
		default:
			out = append(out, to)
		}
	}
	c.DefaultFallbacks = out
}

func readMasterKey(d *decoder, n *yaml.Node, path string, c *Config) {
	d.masterKey = n
	v, ok := d.value(n, path, false)
	if !ok {
		return
	}
	if err := checkMasterKey(v); err != nil {
		d.errorf(n, path, "%v", err)
	}
	c.MasterKey = Secret(v)
}

// checkMasterKey applies LiteLLM's rule. The value is never part of the message.
func checkMasterKey(v string) error {
	if !strings.HasPrefix(v, "sk-") {
		return errors.New(`must start with "sk-" (LiteLLM requires it)`)
	}
	return nil
}

func readDatabaseURL(d *decoder, n *yaml.Node, path string, c *Config) {
	d.databaseURL = n
	v, ok := d.value(n, path, false)
	if !ok {
		return
	}
	if err := checkDatabaseURL(v); err != nil {
		d.errorf(n, path, "%v", err)
	}
	c.DatabaseURL = Secret(v)
}

// checkDatabaseURL accepts the Postgres URLs LiteLLM's Prisma schema takes. The URL holds
// a password, so neither it nor url.Parse's error (which quotes it) is in the message.
func checkDatabaseURL(v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return errors.New("must be a postgres://user:password@host:port/db URL")
	}
	return nil
}

func readMaxRequestSize(d *decoder, n *yaml.Node, path string, c *Config) {
	mb, ok := d.number(n, path)
	if !ok {
		return
	}
	const maxMB = 1 << 20 // a terabyte: far above any sane body, far below overflow
	if mb == 0 || mb > maxMB {
		d.errorf(n, path, "must be above 0 and at most %d", maxMB)
		return
	}
	c.MaxRequestBytes = int64(mb * (1 << 20))
}

// retentionUnits are the units LiteLLM's retention periods are written in ("30d").
var retentionUnits = []struct {
	suffix string
	unit   time.Duration
}{
	{"mo", 30 * 24 * time.Hour}, {"w", 7 * 24 * time.Hour}, {"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second},
}

func readRetention(d *decoder, n *yaml.Node, path string, c *Config) {
	v, ok := d.value(n, path, false)
	if !ok {
		return
	}
	for _, u := range retentionUnits {
		if num, found := strings.CutSuffix(v, u.suffix); found {
			if count, err := strconv.Atoi(num); err == nil && count > 0 {
				c.SpendRetention = time.Duration(count) * u.unit
				return
			}
			break
		}
	}
	d.errorf(n, path, "must be a period like \"30d\", \"12w\" or \"6mo\", not %q", v)
}

func readKeyHeader(d *decoder, n *yaml.Node, path string, c *Config) {
	v, ok := d.value(n, path, false)
	if !ok {
		return
	}
	name := strings.ToLower(v)
	if !isToken(name) {
		d.errorf(n, path, "%q is not a valid HTTP header name", v)
		return
	}
	c.KeyHeader = name
}

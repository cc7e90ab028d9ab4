package config

import (
	"cmp"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Values are read from yaml.v3 nodes rather than decoded into structs, for three reasons:
// every problem carries its line; unknown keys are found; and a scalar is read as written,
// which avoids YAML 1.1's surprises (PyYAML, which LiteLLM uses, reads `model_name: 1.10`
// as the number 1.1 and `no` as false; here they are the strings "1.10" and "no").

// use is what tollgate does with a setting it knows.
type use int

const (
	// used settings configure tollgate.
	used use = iota + 1
	// ignored settings are LiteLLM's, and tollgate does not act on them yet: each one
	// present adds a warning, so nobody believes it works.
	ignored
	// accepted settings are descriptive and change nothing at the gateway (model_info's
	// supports_* facts, ...): accepted silently.
	accepted
	// refused settings are LiteLLM's, but ignoring them would make tollgate less safe or
	// silently different (allowed_ips, include, ...): the config does not load.
	refused
)

// key is one setting a mapping may hold.
type key[T any] struct {
	// name is the key; a trailing "*" matches every key with that prefix.
	name string
	use  use
	// note tells, for ignored and refused keys, why or what to do instead.
	note string
	// read decodes the value of a used key into T. Null values never reach it: in YAML
	// as in LiteLLM, `key:` with no value is the same as leaving the key out.
	read func(d *decoder, v *yaml.Node, path string, into T)
}

// defaultIgnoredNote explains an ignored key that has no note of its own.
const defaultIgnoredNote = "tollgate does not act on this LiteLLM setting yet"

// decodeMapping reads the mapping n at path with keys. Used keys are read in the order of
// keys, not of the file, so a table can rely on an earlier key having been read. Unknown
// keys are errors, or warnings when unknownWarns (for LiteLLM's free-form model_info).
func decodeMapping[T any](d *decoder, n *yaml.Node, path string, keys []key[T], into T, unknownWarns bool) {
	type pending struct {
		order int
		k     *key[T]
		e     entry
	}
	var reads []pending
	for _, e := range d.entries(n, path) {
		name := e.key.Value
		p := join(path, name)
		order, k := findKey(keys, name)
		switch {
		case k == nil && unknownWarns:
			d.warnf(e.key, "", "unknown key %s (ignored)", p)
		case k == nil:
			d.errorf(e.key, "", "unknown key %s", p)
		case isNull(e.value):
			// An empty value is an unset one: nothing to read or report.
		case k.use == used:
			reads = append(reads, pending{order, k, e})
		case k.use == ignored:
			d.warnf(e.key, p, "ignored: %s", cmp.Or(k.note, defaultIgnoredNote))
		case k.use == refused:
			d.errorf(e.key, p, "not supported: %s", k.note)
		case k.use == accepted:
			// Descriptive only: nothing to read, nothing to warn about.
		}
	}
	sort.SliceStable(reads, func(i, j int) bool { return reads[i].order < reads[j].order })
	for _, r := range reads {
		r.k.read(d, r.e.value, join(path, r.e.key.Value), into)
	}
}

func findKey[T any](keys []key[T], name string) (int, *key[T]) {
	for i := range keys {
		k := &keys[i]
		if prefix, ok := strings.CutSuffix(k.name, "*"); (ok && strings.HasPrefix(name, prefix)) || k.name == name {
			return i, k
		}
	}
	return 0, nil
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func at(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// entry is one key: value pair of a mapping.
type entry struct{ key, value *yaml.Node }

// entries returns the pairs of the mapping n, with YAML merge keys (<<: *anchor)
// expanded: keys written in the mapping win over merged ones, and among merged mappings
// the first wins, as YAML specifies. Duplicate keys are reported.
func (d *decoder) entries(n *yaml.Node, path string) []entry {
	m := deref(n)
	if m.Kind != yaml.MappingNode {
		d.errorf(n, path, "must be a mapping (key: value lines), not %s", kindName(m))
		return nil
	}
	var out, merged []entry
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		switch {
		case k.Kind != yaml.ScalarNode:
			d.errorf(k, path, "keys must be plain strings")
		case k.ShortTag() == "!!merge":
			merged = append(merged, d.mergeEntries(v, path)...)
		case seen[k.Value] != nil:
			d.errorf(k, join(path, k.Value), "duplicate key (first at line %d)", seen[k.Value].Line)
		default:
			seen[k.Value] = k
			out = append(out, entry{k, v})
		}
	}
	for _, e := range merged {
		if seen[e.key.Value] == nil {
			seen[e.key.Value] = e.key
			out = append(out, e)
		}
	}
	return out
}

func (d *decoder) mergeEntries(v *yaml.Node, path string) []entry {
	m := deref(v)
	switch m.Kind {
	case yaml.MappingNode:
		return d.entries(m, path)
	case yaml.SequenceNode:
		var out []entry
		for _, item := range m.Content {
			out = append(out, d.entries(item, path)...)
		}
		return out
	}
	d.errorf(v, path, "<< must merge a mapping or a list of mappings")
	return nil
}

// deref follows a YAML alias (*name) to the node it names.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = deref(n)
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func kindName(n *yaml.Node) string {
	if isNull(n) {
		return "empty"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("the value %q", n.Value)
	}
	return "empty"
}

// envRef is LiteLLM's prefix for a value read from an environment variable.
const envRef = "os.environ/"

// value reads the scalar n, resolving os.environ/VAR. ok is false when there is no usable
// value: null, or a problem it reported. A variable that is not set is reported unless
// optional.
func (d *decoder) value(n *yaml.Node, path string, optional bool) (string, bool) {
	s := deref(n)
	if s.Kind != yaml.ScalarNode {
		d.errorf(n, path, "must be a single value, not %s", kindName(s))
		return "", false
	}
	if isNull(s) {
		return "", false
	}
	name, isRef := strings.CutPrefix(s.Value, envRef)
	if !isRef {
		return s.Value, true
	}
	if name == "" {
		d.errorf(n, path, "%s needs a variable name", envRef)
		return "", false
	}
	v, ok := d.lookup(name)
	if !ok && !optional {
		d.errorf(n, path, "environment variable %s is not set", name)
	}
	return v, ok
}

// text reads a string setting; "" when it is unusable (and reported).
func (d *decoder) text(n *yaml.Node, path string) string {
	s, _ := d.value(n, path, false)
	return s
}

// integer reads a whole number >= min. Quoted numbers and os.environ/ values are accepted,
// as LiteLLM's pydantic models accept them.
func (d *decoder) integer(n *yaml.Node, path string, min int) (int, bool) {
	s, ok := d.value(n, path, false)
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		d.errorf(n, path, "must be a whole number, not %q", s)
		return 0, false
	}
	if i < min {
		d.errorf(n, path, "must be at least %d, not %d", min, i)
		return 0, false
	}
	return i, true
}

// number reads a finite number >= 0.
func (d *decoder) number(n *yaml.Node, path string) (float64, bool) {
	s, ok := d.value(n, path, false)
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		d.errorf(n, path, "must be a number, not %q", s)
		return 0, false
	}
	if f < 0 {
		d.errorf(n, path, "must not be negative")
		return 0, false
	}
	return f, true
}

// maxSeconds keeps a number of seconds within what time.Duration holds.
const maxSeconds = float64(math.MaxInt64 / int64(time.Second))

// seconds reads a positive number of seconds, LiteLLM's unit for every timeout.
func (d *decoder) seconds(n *yaml.Node, path string) (time.Duration, bool) {
	f, ok := d.number(n, path)
	if !ok {
		return 0, false
	}
	if f == 0 || f > maxSeconds {
		d.errorf(n, path, "must be a number of seconds above 0 and at most %.0f", maxSeconds)
		return 0, false
	}
	return time.Duration(f * float64(time.Second)), true
}

// list reads a list of strings. ok is false if any item was unusable.
func (d *decoder) list(n *yaml.Node, path string) ([]string, bool) {
	s := deref(n)
	if s.Kind != yaml.SequenceNode {
		d.errorf(n, path, "must be a list, not %s", kindName(s))
		return nil, false
	}
	out := make([]string, 0, len(s.Content))
	ok := true
	for i, item := range s.Content {
		v, good := d.value(item, at(path, i), false)
		if !good {
			if isNull(item) {
				d.errorf(item, at(path, i), "must not be empty")
			}
			ok = false
			continue
		}
		out = append(out, v)
	}
	return out, ok
}

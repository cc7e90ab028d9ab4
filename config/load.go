package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults for settings config.yaml leaves out.
const (
	// DefaultNumRetries is LiteLLM's: the OpenAI SDK's default max_retries.
	DefaultNumRetries = 2
	// DefaultRequestTimeout is LiteLLM's request_timeout default.
	DefaultRequestTimeout = 600 * time.Second
	// DefaultMaxRequestBytes is 32 MiB (max_request_size_mb: 32).
	DefaultMaxRequestBytes = 32 << 20
)

// Environment variables read when config.yaml leaves their setting out, as LiteLLM does.
const (
	masterKeyEnv   = "LITELLM_MASTER_KEY"
	databaseURLEnv = "DATABASE_URL"
)

// Load reads the config.yaml at path and validates it; see Parse. Messages name the file
// and line of each problem ("config.yaml:12: model_list[0]...").
func Load(path string, env func(string) (string, bool)) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	return parse(path, data, env)
}

// Parse decodes and validates a LiteLLM-compatible config.yaml. env looks up environment
// variables for os.environ/VAR values and for LITELLM_MASTER_KEY and DATABASE_URL
// (os.LookupEnv in production); entries of the environment_variables section are seen
// before it. A nil env is an empty environment.
//
// Every problem found is returned at once, joined with errors.Join, one message per
// problem in file order, each starting with the line ("line 12: ") and the setting's path
// ("model_list[0].litellm_params.api_key: "). Settings tollgate accepts but does not act
// on are listed in Config.Warnings; see keys.go for what each setting does.
func Parse(data []byte, env func(string) (string, bool)) (*Config, error) {
	return parse("", data, env)
}

func parse(file string, data []byte, env func(string) (string, bool)) (*Config, error) {
	root, err := decodeYAML(data)
	if err != nil {
		if file != "" {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		return nil, err
	}
	d := &decoder{
		file:     file,
		env:      env,
		aliases:  map[string]bool{},
		sharedBy: map[string]string{},
		cfg: &Config{
			NumRetries:      DefaultNumRetries,
			RequestTimeout:  DefaultRequestTimeout,
			MaxRequestBytes: DefaultMaxRequestBytes,
		},
	}
	if root != nil {
		decodeMapping(d, root, "", topLevelKeys, d.cfg, false)
	}
	d.finish()
	if len(d.errs) > 0 {
		return nil, errors.Join(render(d.errs)...)
	}
	d.cfg.Warnings = messages(d.warnings)
	return d.cfg, nil
}

// decodeYAML parses one YAML document into its root node; nil for an empty document.
func decodeYAML(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fmt.Errorf("parse config: %w", err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, errors.New("parse config: more than one YAML document; config.yaml must hold one")
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}

// decoder walks the YAML tree, filling a Config and collecting every problem.
type decoder struct {
	file string // for messages; "" when parsing bytes
	env  func(string) (string, bool)
	vars map[string]string // environment_variables, looked up before env

	cfg      *Config
	errs     []problem
	warnings []problem

	// aliases are the model_names in model_list, for checking fallbacks.
	aliases map[string]bool
	// sharedBy records which section set a setting litellm_settings and router_settings
	// share, so the override can be reported.
	sharedBy map[string]string
	// masterKey and databaseURL are the nodes of those settings, when written; the
	// environment fallbacks apply only when they are not.
	masterKey, databaseURL *yaml.Node
	sawModels              bool
}

// problem is one message about the config, at a line when it has one.
type problem struct {
	line int
	text string
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, d.problem(n, path, format, args...))
}

func (d *decoder) warnf(n *yaml.Node, path, format string, args ...any) {
	d.warnings = append(d.warnings, d.problem(n, path, format, args...))
}

func (d *decoder) problem(n *yaml.Node, path, format string, args ...any) problem {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	p := problem{text: msg}
	if n != nil {
		p.line = n.Line
	}
	switch {
	case d.file != "" && p.line > 0:
		p.text = fmt.Sprintf("%s:%d: %s", d.file, p.line, msg)
	case d.file != "":
		p.text = fmt.Sprintf("%s: %s", d.file, msg)
	case p.line > 0:
		p.text = fmt.Sprintf("line %d: %s", p.line, msg)
	}
	return p
}

// messages orders problems as the file does (those without a line last) and drops
// repeats, which a YAML anchor merged into several places would otherwise cause.
func messages(ps []problem) []string {
	sort.SliceStable(ps, func(i, j int) bool {
		li, lj := ps[i].line, ps[j].line
		if li == 0 || lj == 0 {
			return li != 0 && lj == 0
		}
		return li < lj
	})
	var out []string
	seen := map[string]bool{}
	for _, p := range ps {
		if !seen[p.text] {
			seen[p.text] = true
			out = append(out, p.text)
		}
	}
	return out
}

func render(ps []problem) []error {
	msgs := messages(ps)
	errs := make([]error, len(msgs))
	for i, m := range msgs {
		errs[i] = errors.New(m)
	}
	return errs
}

// lookup finds an environment variable, environment_variables first, as LiteLLM sets
// those into its process environment before reading the rest of the config.
func (d *decoder) lookup(name string) (string, bool) {
	if v, ok := d.vars[name]; ok {
		return v, true
	}
	if d.env == nil {
		return "", false
	}
	return d.env(name)
}

// finish applies what needs the whole file: required sections, environment fallbacks,
// the lookup index.
func (d *decoder) finish() {
	c := d.cfg
	if !d.sawModels {
		d.errorf(nil, "model_list", "required: list at least one model")
	}
	if d.masterKey == nil {
		if v, ok := d.lookup(masterKeyEnv); ok && v != "" {
			if err := checkMasterKey(v); err != nil {
				d.errorf(nil, "general_settings.master_key", "%s (from %s)", err, masterKeyEnv)
			}
			c.MasterKey = Secret(v)
		}
	}
	if d.databaseURL == nil {
		if v, ok := d.lookup(databaseURLEnv); ok && v != "" {
			if err := checkDatabaseURL(v); err != nil {
				d.errorf(nil, "general_settings.database_url", "%s (from %s)", err, databaseURLEnv)
			}
			c.DatabaseURL = Secret(v)
		}
	}
	c.index = newIndex(c.Deployments)
}

// shared records that path set one of the settings litellm_settings and router_settings
// share. router_settings is read second and wins, as in LiteLLM; the override is reported
// so that nobody edits the losing one in vain.
func (d *decoder) shared(name, path string, n *yaml.Node) {
	if prev, ok := d.sharedBy[name]; ok {
		d.warnf(n, path, "overrides %s (router_settings wins, as in LiteLLM)", prev)
	}
	d.sharedBy[name] = path
}

// knownModels lists the aliases for messages about unknown ones.
func (d *decoder) knownModels() string {
	names := make([]string, 0, len(d.aliases))
	for a := range d.aliases {
		names = append(names, a)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "(none)"
	}
	return strings.Join(names, ", ")
}

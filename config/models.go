package config

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/tollgate-dev/tollgate/translate"
)

// reservedIDs are the Envoy clusters tollgate renders for itself; no deployment may take
// their names.
var reservedIDs = map[string]bool{"tollgate_ext_proc": true, "tollgate_admin": true}

// draft is a model_list entry being read: the Deployment plus what is checked once the
// whole entry is known (the provider decides whether api_key and api_base are needed).
type draft struct {
	dep  *Deployment
	path string
	node *yaml.Node

	name, params, model, provider, apiKey, apiBase, id *yaml.Node
	modelValue, providerValue, apiBaseValue            string
	apiBaseOK                                          bool

	// model_info prices and max_tokens, used when litellm_params has none.
	infoCosts     Costs
	infoMaxTokens int
}

func readModelList(d *decoder, n *yaml.Node, path string, c *Config) {
	items := deref(n)
	if items.Kind != yaml.SequenceNode {
		d.errorf(n, path, "must be a list of models, not %s", kindName(items))
		return
	}
	d.sawModels = len(items.Content) > 0
	var drafts []*draft
	for i, item := range items.Content {
		dr := &draft{dep: &Deployment{}, path: at(path, i), node: item}
		decodeMapping(d, item, dr.path, modelKeys, dr, false)
		d.finishDeployment(dr)
		drafts = append(drafts, dr)
	}
	d.assignIDs(drafts)
	for _, dr := range drafts {
		c.Deployments = append(c.Deployments, dr.dep)
	}
}

func readModelName(d *decoder, n *yaml.Node, path string, dr *draft) {
	dr.name = n
	alias, ok := d.value(n, path, false)
	if !ok {
		return
	}
	if err := checkAlias(alias); err != nil {
		d.errorf(n, path, "%q %v", alias, err)
		return
	}
	if strings.Contains(alias, "*") {
		d.warnf(n, path, "%q: wildcard model names are not supported; clients must ask for exactly this name", alias)
	}
	dr.dep.Alias = alias
	d.aliases[alias] = true
}

// checkAlias keeps aliases usable as the x-tollgate-alias header value Envoy routes on.
func checkAlias(a string) error {
	if a == "" {
		return fmt.Errorf("is empty")
	}
	if strings.TrimSpace(a) != a {
		return fmt.Errorf("starts or ends with white space")
	}
	for _, r := range a {
		if r < 0x20 || r > 0x7e {
			return fmt.Errorf("must be printable ASCII: it travels in an HTTP header")
		}
	}
	return nil
}

// checkID keeps deployment IDs usable as Envoy cluster names and header values.
func checkID(id string) error {
	if reservedIDs[id] {
		return fmt.Errorf("is reserved for tollgate's own Envoy cluster")
	}
	if id == "" {
		return fmt.Errorf("is empty")
	}
	for _, r := range id {
		if r <= 0x20 || r > 0x7e {
			return fmt.Errorf("must be printable ASCII without spaces: it names an Envoy cluster")
		}
	}
	return nil
}

func readParams(d *decoder, n *yaml.Node, path string, dr *draft) {
	dr.params = n
	decodeMapping(d, n, path, paramKeys, dr, false)
}

func readInfo(d *decoder, n *yaml.Node, path string, dr *draft) {
	decodeMapping(d, n, path, infoKeys, dr, true)
}

// finishDeployment checks what needs the whole entry: required keys, the provider, the
// key and base URL the provider needs.
func (d *decoder) finishDeployment(dr *draft) {
	dep := dr.dep
	if dr.name == nil {
		d.errorf(dr.node, join(dr.path, "model_name"), "required: the model name clients ask for")
	}
	params := join(dr.path, "litellm_params")
	if dr.params == nil {
		d.errorf(dr.node, params, "required: where the model's requests go")
		return
	}
	if dr.model == nil {
		d.errorf(dr.params, join(params, "model"), "required: provider/name, e.g. openai/gpt-4o")
	}
	spec := d.provider(dr, params)
	provider := dep.Provider

	// A provider that needs no key may name a variable that is not set: LiteLLM then
	// sends no key, and so does tollgate.
	keyPath := join(params, "api_key")
	keyRequired := spec == nil || spec.KeyRequired
	keyOK := true
	if dr.apiKey != nil {
		var v string
		v, keyOK = d.value(dr.apiKey, keyPath, !keyRequired)
		dep.APIKey = Secret(v)
	}
	if spec != nil && spec.KeyRequired && keyOK && dep.APIKey == "" {
		if dr.apiKey != nil {
			d.errorf(dr.apiKey, keyPath, "is empty; provider %s needs an API key", provider)
		} else {
			d.errorf(dr.params, keyPath, "required for provider %s", provider)
		}
	}

	basePath := join(params, "api_base")
	switch {
	case dr.apiBase != nil && !dr.apiBaseOK:
		// Reported by value.
	case dr.apiBaseValue != "":
		base, err := checkBase(dr.apiBaseValue)
		if err != nil {
			d.errorf(dr.apiBase, basePath, "%v", err)
		}
		dep.APIBase = base
	case spec == nil:
	case spec.DefaultBase != "":
		dep.APIBase = spec.DefaultBase
	case provider == "bedrock" || provider == "vertex_ai":
		// Derived from the region or location by finishCloud.
	case dr.apiBase != nil:
		d.errorf(dr.apiBase, basePath, "is empty; provider %s has no default, so it is required", provider)
	default:
		d.errorf(dr.params, basePath, "required for provider %s", provider)
	}
	d.finishCloud(dr, params)

	dep.Costs = dep.Costs.orElse(dr.infoCosts)
	if dep.Info.MaxOutputTokens == 0 {
		dep.Info.MaxOutputTokens = dr.infoMaxTokens
	}
}

// provider splits litellm_params.model into the provider prefix and the provider's model
// name and finds the provider's spec; nil when that fails (reported).
func (d *decoder) provider(dr *draft, params string) *translate.Spec {
	if dr.model == nil || dr.modelValue == "" {
		return nil
	}
	modelPath := join(params, "model")
	prefix, name, hasPrefix := strings.Cut(dr.modelValue, "/")
	where, wherePath := dr.model, modelPath
	if dr.providerValue != "" {
		// custom_llm_provider names the provider; LiteLLM then strips the same prefix
		// from model when it is there and keeps model whole otherwise.
		prefix, where, wherePath = dr.providerValue, dr.provider, join(params, "custom_llm_provider")
		name = strings.TrimPrefix(dr.modelValue, prefix+"/")
	} else if !hasPrefix {
		d.errorf(dr.model, modelPath, "%q has no provider prefix: write provider/name, e.g. openai/%s (known providers: %s)",
			dr.modelValue, dr.modelValue, strings.Join(translate.Providers(), ", "))
		return nil
	}
	if name == "" {
		d.errorf(dr.model, modelPath, "%q has no model name after the provider", dr.modelValue)
		return nil
	}
	spec, ok := translate.Lookup(prefix)
	if !ok {
		d.errorf(where, wherePath, "unknown provider %q; known providers: %s", prefix, strings.Join(translate.Providers(), ", "))
		return nil
	}
	dr.dep.Provider, dr.dep.Model = prefix, name
	return spec
}

// checkBase returns api_base without trailing slashes if it is an absolute http(s) URL
// tollgate can send to: Envoy takes host and port from it, and translation appends paths.
func checkBase(s string) (string, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "", fmt.Errorf("is not a URL: %w", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%q must be an absolute http:// or https:// URL", s)
	case u.Hostname() == "":
		return "", fmt.Errorf("%q has no host", s)
	case u.User != nil:
		// Not echoed: the user info is a credential.
		return "", fmt.Errorf("must not carry credentials (user:password@); use api_key")
	case u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("%q must not have a query or fragment", s)
	}
	return strings.TrimRight(s, "/"), nil
}

// assignIDs gives every deployment its ID and checks IDs are valid and unique. A
// deployment without model_info.id is alias-n, n counting the alias's deployments in file
// order, so IDs stay stable as long as the model_list order does.
func (d *decoder) assignIDs(drafts []*draft) {
	perAlias := map[string]int{}
	owner := map[string]string{}
	for _, dr := range drafts {
		dep := dr.dep
		n := perAlias[dep.Alias]
		perAlias[dep.Alias]++
		where, path := dr.id, join(dr.path, "model_info.id")
		if dep.ID == "" {
			if dep.Alias == "" {
				continue // reported: no usable model_name
			}
			dep.ID = dep.Alias + "-" + strconv.Itoa(n)
			where, path = dr.name, join(dr.path, "model_name")
			if err := checkID(dep.ID); err != nil {
				d.errorf(where, path, "the deployment ID %q made from it %v; set model_info.id", dep.ID, err)
				continue
			}
		} else if err := checkID(dep.ID); err != nil {
			d.errorf(where, path, "%q %v", dep.ID, err)
			continue
		}
		if first, dup := owner[dep.ID]; dup {
			d.errorf(where, path, "deployment ID %q is already used by %s; set a unique model_info.id", dep.ID, first)
			continue
		}
		owner[dep.ID] = dr.path
	}
}

// Readers for litellm_params and model_info.

func setString(field func(*Deployment) *string) func(*decoder, *yaml.Node, string, *draft) {
	return func(d *decoder, n *yaml.Node, path string, dr *draft) { *field(dr.dep) = d.text(n, path) }
}

func setSecret(field func(*Deployment) *Secret) func(*decoder, *yaml.Node, string, *draft) {
	return func(d *decoder, n *yaml.Node, path string, dr *draft) { *field(dr.dep) = Secret(d.text(n, path)) }
}

func setInt(field func(*Deployment) *int) func(*decoder, *yaml.Node, string, *draft) {
	return func(d *decoder, n *yaml.Node, path string, dr *draft) {
		if v, ok := d.integer(n, path, 0); ok {
			*field(dr.dep) = v
		}
	}
}

func setCost(field func(*draft) **float64) func(*decoder, *yaml.Node, string, *draft) {
	return func(d *decoder, n *yaml.Node, path string, dr *draft) {
		if v, ok := d.number(n, path); ok {
			*field(dr) = &v
		}
	}
}

func readModel(d *decoder, n *yaml.Node, path string, dr *draft) {
	dr.model, dr.modelValue = n, d.text(n, path)
}

func readCustomProvider(d *decoder, n *yaml.Node, path string, dr *draft) {
	dr.provider, dr.providerValue = n, d.text(n, path)
}

// readAPIKey only keeps the node: whether a missing variable is a problem depends on the
// provider, known once the entry is read.
func readAPIKey(_ *decoder, n *yaml.Node, _ string, dr *draft) { dr.apiKey = n }

func readAPIBase(d *decoder, n *yaml.Node, path string, dr *draft) {
	dr.apiBase = n
	dr.apiBaseValue, dr.apiBaseOK = d.value(n, path, false)
}

func readTimeout(stream bool) func(*decoder, *yaml.Node, string, *draft) {
	return func(d *decoder, n *yaml.Node, path string, dr *draft) {
		if v, ok := d.seconds(n, path); ok {
			if stream {
				dr.dep.StreamTimeout = v
			} else {
				dr.dep.Timeout = v
			}
		}
	}
}

// readExtraHeaders reads header: value pairs. Names are lowercased, as HTTP/2 and Envoy
// carry them.
func readExtraHeaders(d *decoder, n *yaml.Node, path string, dr *draft) {
	headers := map[string]string{}
	for _, e := range d.entries(n, path) {
		name := strings.ToLower(e.key.Value)
		p := join(path, e.key.Value)
		if !isToken(name) {
			d.errorf(e.key, p, "is not a valid HTTP header name")
			continue
		}
		if _, dup := headers[name]; dup {
			d.errorf(e.key, p, "repeats header %s (names are case-insensitive)", name)
			continue
		}
		v, ok := d.value(e.value, p, false)
		if !ok {
			continue
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			d.errorf(e.value, p, "header values must not contain CR, LF or NUL")
			continue
		}
		headers[name] = v
	}
	dr.dep.ExtraHeaders = headers
}

// isToken reports whether s is an HTTP token (RFC 9110 section 5.6.2), what a header
// name must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r > 0x7e || r <= 0x20 || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

func readID(d *decoder, n *yaml.Node, path string, dr *draft) {
	dr.id = n
	dr.dep.ID = d.text(n, path)
}

func readAccessGroups(d *decoder, n *yaml.Node, path string, dr *draft) {
	if groups, ok := d.list(n, path); ok {
		dr.dep.Info.AccessGroups = groups
	}
}

func readMaxTokens(d *decoder, n *yaml.Node, path string, dr *draft) {
	if v, ok := d.integer(n, path, 0); ok {
		dr.infoMaxTokens = v
	}
}

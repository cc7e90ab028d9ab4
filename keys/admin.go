package keys

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/tollgate-dev/tollgate/translate"
)

// AdminHandler serves LiteLLM's management API over s: /key/*, /team/*, /user/*,
// /customer/* (also under LiteLLM's older /end_user/ name) and the spend of every key and
// user (/spend/keys, /spend/users), with LiteLLM's request and
// response fields. Only the master key (compared in constant time) or a key of a user
// with user_role proxy_admin may call it; a proxy_admin_viewer key may call the read-only
// endpoints; any other key gets 403. Errors are OpenAI-style JSON.
//
// Request fields LiteLLM accepts but tollgate would not enforce (guardrails, allowed
// routes, per-model rate limits, ...) are refused with a 400 that names them, rather than
// silently ignored; fields with no effect on what a key may do (send_invite_email, ...)
// are accepted.
func AdminHandler(s *Store, masterKey string) http.Handler {
	a := newAdmin(s, masterKey)
	a.routes = map[string]route{
		"/key/generate":   {http.MethodPost, true, a.generateKey},
		"/key/update":     {http.MethodPost, true, a.updateKey},
		"/key/delete":     {http.MethodPost, true, a.deleteKeys},
		"/key/info":       {http.MethodGet, false, a.keyInfo},
		"/key/list":       {http.MethodGet, false, a.listKeys},
		"/key/regenerate": {http.MethodPost, true, a.regenerateKey},
		"/key/block":      {http.MethodPost, true, a.blockKey(true)},
		"/key/unblock":    {http.MethodPost, true, a.blockKey(false)},

		"/team/new":           {http.MethodPost, true, a.newTeam},
		"/team/update":        {http.MethodPost, true, a.updateTeam},
		"/team/delete":        {http.MethodPost, true, a.deleteTeams},
		"/team/info":          {http.MethodGet, false, a.teamInfo},
		"/team/list":          {http.MethodGet, false, a.listTeams},
		"/team/member_add":    {http.MethodPost, true, a.addMembers},
		"/team/member_delete": {http.MethodPost, true, a.deleteMember},

		"/user/new":    {http.MethodPost, true, a.newUser},
		"/user/update": {http.MethodPost, true, a.updateUser},
		"/user/delete": {http.MethodPost, true, a.deleteUsers},
		"/user/info":   {http.MethodGet, false, a.userInfo},
		"/user/list":   {http.MethodGet, false, a.listUsers},

		"/spend/keys":  {http.MethodGet, false, a.spendKeys},
		"/spend/users": {http.MethodGet, false, a.spendUsers},

		"/customer/new":     {http.MethodPost, true, a.newCustomer},
		"/customer/update":  {http.MethodPost, true, a.updateCustomer},
		"/customer/delete":  {http.MethodPost, true, a.deleteCustomers},
		"/customer/info":    {http.MethodGet, false, a.customerInfo},
		"/customer/list":    {http.MethodGet, false, a.listCustomers},
		"/customer/block":   {http.MethodPost, true, a.blockCustomers(true)},
		"/customer/unblock": {http.MethodPost, true, a.blockCustomers(false)},
	}
	for path, rt := range a.routes {
		if rest, ok := strings.CutPrefix(path, "/customer/"); ok {
			a.routes["/end_user/"+rest] = rt
		}
	}
	return a
}

func newAdmin(s *Store, masterKey string) *admin {
	a := &admin{s: s}
	if masterKey != "" {
		a.master = sha256.Sum256([]byte(masterKey))
		a.hasMaster = true
	}
	return a
}

type admin struct {
	s         *Store
	master    [sha256.Size]byte
	hasMaster bool
	routes    map[string]route
}

// route is one endpoint: its method, whether it changes anything, and its handler, which
// returns the JSON response value.
type route struct {
	method string
	write  bool
	fn     func(ctx context.Context, r *http.Request) (any, error)
}

// maxBody bounds admin request bodies.
const maxBody = 1 << 20

func (a *admin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// name is the endpoint as logs show it: never a path that holds a key.
	name := r.URL.Path
	rt, ok := a.routes[name]
	if !ok {
		// LiteLLM's /key/{key}/regenerate.
		if key, found := strings.CutSuffix(strings.TrimPrefix(name, "/key/"), "/regenerate"); found && strings.HasPrefix(name, "/key/") && key != "" {
			name = "/key/{key}/regenerate"
			rt = route{http.MethodPost, true, func(ctx context.Context, r *http.Request) (any, error) {
				return a.regenerate(ctx, r, key)
			}}
			ok = true
		}
	}
	if !ok {
		a.reply(w, name, nil, fail(ErrNotFound, "", "tollgate has no admin endpoint %s %s", r.Method, r.URL.Path))
		return
	}
	if r.Method != rt.method {
		w.Header().Set("Allow", rt.method)
		a.reply(w, name, nil, &Error{Kind: errMethod, Msg: fmt.Sprintf("method %s is not allowed on %s: use %s", r.Method, name, rt.method)})
		return
	}
	if err := a.authorize(r, name, rt.write); err != nil {
		a.reply(w, name, nil, err)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	v, err := rt.fn(r.Context(), r)
	a.reply(w, name, v, err)
}

// errMethod is a 405, which only the admin router produces.
var errMethod = errors.New("method not allowed")

// authorize admits the master key and admin users' keys (viewers: reads only).
func (a *admin) authorize(r *http.Request, name string, write bool) error {
	key := ""
	for _, h := range []string{"Authorization", "X-Litellm-Api-Key", "X-Api-Key", "Api-Key"} {
		if v := r.Header.Get(h); v != "" {
			key = strings.TrimSpace(v)
			if len(key) > 7 && strings.EqualFold(key[:7], "bearer ") {
				key = strings.TrimSpace(key[7:])
			}
			break
		}
	}
	if key == "" {
		return fail(ErrNoKey, "", "missing API key: send Authorization: Bearer <master key>")
	}
	d := sha256.Sum256([]byte(key))
	if a.hasMaster && subtle.ConstantTimeCompare(d[:], a.master[:]) == 1 {
		return nil
	}
	k, err := a.s.Authenticate(r.Context(), key)
	switch {
	case err != nil:
		return err
	case k.Role == roleAdmin, k.Role == roleAdminViewer && !write:
		return nil
	case k.Role == roleAdminViewer:
		return fail(ErrForbidden, "", "this key's user is a proxy_admin_viewer, which may only read: %s needs the master key or a proxy_admin user's key", name)
	}
	return fail(ErrForbidden, "", "virtual keys may not call %s: use the master key or a key of a user with user_role proxy_admin", name)
}

// reply writes v as JSON, or err as an OpenAI error.
func (a *admin) reply(w http.ResponseWriter, name string, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		e, known := APIError(err)
		switch {
		case errors.Is(err, errMethod):
			e = translate.StatusError(http.StatusMethodNotAllowed, err.Error())
			e.Code = "method_not_allowed"
		case !known:
			a.s.log.Error("admin request failed", "endpoint", name, "err", err)
		case e.Status >= 500:
			a.s.log.Warn("admin request refused", "endpoint", name, "status", e.Status, "err", err)
		}
		w.WriteHeader(e.Status)
		w.Write(e.JSON())
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		a.reply(w, name, nil, err)
		return
	}
	w.Write(b)
}

// opt is a request field that may be absent, null or set: update endpoints change only
// the fields a request names, and null clears a limit.
type opt[T any] struct {
	Set  bool // present, possibly null
	Null bool
	V    T
}

func (o *opt[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if string(b) == "null" {
		o.Null = true
		return nil
	}
	return json.Unmarshal(b, &o.V)
}

// has reports whether the field is present and not null.
func (o opt[T]) has() bool { return o.Set && !o.Null }

func (opt[T]) valueType() reflect.Type { return reflect.TypeFor[T]() }

// ignoredFields are LiteLLM request fields with no effect on what a key may do; they are
// accepted and dropped.
var ignoredFields = []string{"send_invite_email", "key_type", "config", "permissions", "soft_budget_cooldown", "sso_user_id", "password"}

// refusedFields are LiteLLM request fields tollgate would not enforce. Sending one with a
// value (anything but null, false, "", [] or {}) is an error: ignoring it would leave the
// key less restricted than its creator asked.
var refusedFields = []string{
	"aliases", "allowed_routes", "allowed_passthrough_routes", "enforced_params", "guardrails", "policies",
	"prompts", "model_rpm_limit", "model_tpm_limit", "budget_id", "object_permission", "organization_id",
	"organizations", "project_id", "agent_id", "router_settings", "access_group_ids", "auto_rotate",
	"rotation_interval", "temp_budget_increase", "temp_budget_expiry", "allowed_vector_store_indexes",
	"rpm_limit_type", "tpm_limit_type", "team_member_budget", "team_member_rpm_limit", "team_member_tpm_limit",
	"team_member_key_duration", "team_member_budget_duration", "team_member_permissions", "model_aliases",
	"allowed_model_region", "default_model", "allowed_cache_controls", "new_master_key", "admins", "members",
	"secret_manager_settings", "enforced_batch_output_expires_after", "enforced_file_expires_after",
	"budget_reset_at",
}

// decode reads the JSON body into dst, a struct of opt fields (embedded structs allowed).
// Every problem is reported at once: unknown fields, refused fields and values of the
// wrong type, each by name.
func decode(r *http.Request, dst any) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return fail(ErrInvalidRequest, "", "request body is larger than %d bytes", maxBody)
		}
		return fail(ErrInvalidRequest, "", "request body could not be read: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return fail(ErrInvalidRequest, "", "request body must be a JSON object: %v", err)
	}
	fields := jsonFields(reflect.ValueOf(dst).Elem())
	var problems []string
	param := ""
	names := make([]string, 0, len(raw))
	for name := range raw {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		v := raw[name]
		f, known := fields[name]
		switch {
		case known:
			if err := json.Unmarshal(v, f.Addr().Interface()); err != nil {
				problems = append(problems, fmt.Sprintf("%q must be %s", name, describe(f)))
				param = name
			}
		case slices.Contains(ignoredFields, name):
		case slices.Contains(refusedFields, name):
			if !emptyJSON(v) {
				problems = append(problems, fmt.Sprintf("%q is not supported by tollgate and would not be enforced: remove it", name))
				param = name
			}
		default:
			problems = append(problems, fmt.Sprintf("unknown field %q", name))
			param = name
		}
	}
	if len(problems) > 0 {
		if len(problems) > 1 {
			param = ""
		}
		return fail(ErrInvalidRequest, param, "%s %s: %s", r.Method, r.URL.Path, strings.Join(problems, "; "))
	}
	return nil
}

// jsonFields maps the JSON names of v's fields (and its embedded structs') to the fields.
func jsonFields(v reflect.Value) map[string]reflect.Value {
	m := map[string]reflect.Value{}
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if f.Anonymous {
			for k, fv := range jsonFields(v.Field(i)) {
				m[k] = fv
			}
			continue
		}
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
			m[name] = v.Field(i)
		}
	}
	return m
}

// describe says in words what JSON a field takes.
func describe(f reflect.Value) string {
	t := f.Type()
	if o, ok := f.Addr().Interface().(interface{ valueType() reflect.Type }); ok {
		t = o.valueType()
	}
	return describeType(t)
}

func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64:
		return "a whole number"
	case reflect.Float64:
		return "a number"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 { // json.RawMessage
			return "JSON"
		}
		return "a list of " + strings.TrimPrefix(strings.TrimPrefix(describeType(t.Elem()), "a "), "an ") + "s"
	case reflect.Map, reflect.Struct:
		return "a JSON object"
	}
	return t.String()
}

// emptyJSON reports whether v is null, false, "", 0, [] or {}.
func emptyJSON(v json.RawMessage) bool {
	switch s := string(bytes.TrimSpace(v)); s {
	case "null", "false", `""`, "[]", "{}", "0":
		return true
	default:
		var x any
		if json.Unmarshal(v, &x) != nil {
			return false
		}
		switch x := x.(type) {
		case []any:
			return len(x) == 0
		case map[string]any:
			return len(x) == 0
		}
		return false
	}
}

// query reads optional query parameters.
type query struct{ r *http.Request }

func (q query) str(name string) string { return strings.TrimSpace(q.r.URL.Query().Get(name)) }

// int reads a whole-number parameter between lo and hi, def when absent.
func (q query) int(name string, def, lo, hi int) (int, error) {
	s := q.str(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fail(ErrInvalidRequest, name, "query parameter %s must be a whole number from %d to %d, not %q", name, lo, hi, s)
	}
	return n, nil
}

// bool reads a true/false parameter.
func (q query) bool(name string) (bool, error) {
	s := q.str(name)
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, fail(ErrInvalidRequest, name, "query parameter %s must be true or false, not %q", name, s)
	}
	return b, nil
}

// pages is the number of pages of size for total items.
func pages(total, size int) int { return (total + size - 1) / size }

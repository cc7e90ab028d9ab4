package keys

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestArticleCurl is the seed article's flow: generate a key scoped to two models with a
// $50 budget and a 30-day life, use it, get refused another model, exhaust the budget,
// revoke it.
func TestArticleCurl(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	before := time.Now()
	status, m := e.call("POST", "/key/generate", master, `{"models": ["gpt-5.5", "claude-sonnet"], "max_budget": 50, "duration": "30d"}`)
	if status != http.StatusOK {
		t.Fatalf("status %d: %v", status, m)
	}
	key, _ := m["key"].(string)
	if !strings.HasPrefix(key, "sk-") || len(key) < 35 {
		t.Fatalf("key = %q: want sk- and 32+ random characters", key)
	}
	expires, err := time.Parse(time.RFC3339Nano, m["expires"].(string))
	if err != nil || expires.Before(before.AddDate(0, 0, 30)) || expires.After(time.Now().AddDate(0, 0, 30)) {
		t.Errorf("expires = %v, want 30 days from now", m["expires"])
	}
	got := map[string]any{"token": m["token"], "token_id": m["token_id"], "key_name": m["key_name"], "models": m["models"], "max_budget": m["max_budget"], "spend": m["spend"]}
	want := map[string]any{"token": Hash(key), "token_id": Hash(key), "key_name": "sk-..." + key[len(key)-4:],
		"models": []any{"gpt-5.5", "claude-sonnet"}, "max_budget": 50.0, "spend": 0.0}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("/key/generate response (-want +got):\n%s", diff)
	}

	k, err := e.s().Authenticate(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"gpt-5.5", "claude-sonnet"}, k.Models); diff != "" {
		t.Errorf("Models (-want +got):\n%s", diff)
	}
	if err := k.CheckModel("local-llama"); !errors.Is(err, ErrModelNotAllowed) || !strings.Contains(err.Error(), "gpt-5.5, claude-sonnet") {
		t.Errorf("CheckModel(local-llama) = %v: want key_model_access_denied naming the allowed models", err)
	}

	// Spend $49.99, then $0.02: the second request is admitted (spend was below $50) and
	// the third is refused.
	req := Request{KeyHash: k.KeyHash, TeamID: k.TeamID, UserID: k.UserID, Model: "gpt-5.5", CostMicroUSD: 30_000}
	for _, cost := range []int64{49_990_000, 20_000} {
		res, err := e.s().Reserve(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.s().Settle(ctx, res, cost, 100); err != nil {
			t.Fatal(err)
		}
	}
	_, err = e.s().Reserve(ctx, req)
	if le, ok := errors.AsType[*LimitError](err); !ok || le.Kind != ErrBudgetExceeded {
		t.Fatalf("Reserve after $50.01 = %v, want budget_exceeded", err)
	}
	if want := "Budget has been exceeded! Current cost: 50.01, Max budget: 50 (key budget; raise max_budget or wait for its budget_duration to reset it)"; err.Error() != want {
		t.Errorf("message = %q\nwant      %q", err, want)
	}

	e.ok("POST", "/key/delete", map[string]any{"keys": []string{key}})
	if _, err := e.s().Authenticate(ctx, key); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("Authenticate after /key/delete = %v, want invalid_api_key", err)
	}
}

func TestAdminAuthorization(t *testing.T) {
	e := newEnv(t)
	virtual := e.generate(nil)
	admin := e.ok("POST", "/user/new", map[string]any{"user_id": "admin-" + randHex(3), "user_role": "proxy_admin"})["key"].(string)
	viewer := e.ok("POST", "/user/new", map[string]any{"user_id": "viewer-" + randHex(3), "user_role": "proxy_admin_viewer"})["key"].(string)
	tests := []struct {
		name         string
		method, path string
		key          string
		wantStatus   int
		wantCode     string
	}{
		{"master", "POST", "/key/generate", master, 200, ""},
		{"no key", "POST", "/key/generate", "", 401, "missing_api_key"},
		{"wrong key", "POST", "/key/generate", "sk-wrong-wrong-wrong", 401, "invalid_api_key"},
		{"not a key", "POST", "/key/generate", "hello", 401, "invalid_api_key"},
		{"virtual key", "POST", "/key/generate", virtual, 403, "forbidden"},
		{"virtual key reads", "GET", "/key/list", virtual, 403, "forbidden"},
		{"proxy_admin key", "POST", "/key/generate", admin, 200, ""},
		{"proxy_admin_viewer reads", "GET", "/key/list", viewer, 200, ""},
		{"proxy_admin_viewer writes", "POST", "/key/generate", viewer, 403, "forbidden"},
		{"unknown endpoint", "GET", "/key/nothing", master, 404, "not_found"},
		{"wrong method", "GET", "/key/generate", master, 405, "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, m := e.call(tt.method, tt.path, tt.key, nil)
			if status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %v", status, tt.wantStatus, m)
			}
			if tt.wantCode != "" {
				if code := m["error"].(map[string]any)["code"]; code != tt.wantCode {
					t.Errorf("code %v, want %s: %v", code, tt.wantCode, m)
				}
			}
		})
	}

	// LiteLLM's other key header.
	req, _ := http.NewRequest("GET", e.admin.URL+"/key/list", nil)
	req.Header.Set("x-litellm-api-key", master)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("x-litellm-api-key: status %d", resp.StatusCode)
	}
}

// call is one admin request in a table and what must come back.
type call struct {
	name         string
	method, path string
	body         any
	wantStatus   int
	wantCode     string // error code, for failures
	wantMsg      string // substring of the error message
	check        func(t *testing.T, m map[string]any)
}

func (e *env) runCalls(t *testing.T, calls []call) {
	t.Helper()
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			status, m := e.call(c.method, c.path, master, c.body)
			if status != c.wantStatus {
				t.Fatalf("status %d, want %d: %v", status, c.wantStatus, m)
			}
			if status >= 400 {
				em, _ := m["error"].(map[string]any)
				if em["code"] != c.wantCode {
					t.Errorf("code %v, want %s", em["code"], c.wantCode)
				}
				if msg, _ := em["message"].(string); !strings.Contains(msg, c.wantMsg) {
					t.Errorf("message %q does not contain %q", msg, c.wantMsg)
				}
			}
			if c.check != nil {
				c.check(t, m)
			}
		})
	}
}

func TestKeyEndpoints(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	team := "team-" + randHex(3)
	e.ok("POST", "/team/new", map[string]any{"team_id": team, "models": []string{"gpt-5.5"}})
	alias := "alias-" + randHex(3)
	custom := "sk-custom-" + randHex(8)
	var first string // a key made below
	field := func(name string, want any) func(*testing.T, map[string]any) {
		return func(t *testing.T, m map[string]any) {
			if diff := cmp.Diff(want, m[name]); diff != "" {
				t.Errorf("%s (-want +got):\n%s", name, diff)
			}
		}
	}
	e.runCalls(t, []call{
		{name: "generate with everything", method: "POST", path: "/key/generate", body: map[string]any{
			"key_alias": alias, "models": []string{"gpt-5.5", "claude-sonnet"}, "max_budget": 10, "soft_budget": 5,
			"budget_duration": "30d", "duration": "1h", "tpm_limit": 1000, "rpm_limit": 10, "max_parallel_requests": 2,
			"model_max_budget": map[string]any{"gpt-5.5": 1.5, "claude-sonnet": map[string]any{"budget_limit": 2, "time_period": "1d"}},
			"metadata":         map[string]any{"app": "x"}, "team_id": team, "user_id": "u-" + randHex(3), "tags": []string{"t"},
			"send_invite_email": true, "guardrails": []string{}, "aliases": map[string]any{},
		}, wantStatus: 200, check: func(t *testing.T, m map[string]any) {
			first = m["key"].(string)
			got := map[string]any{}
			for _, f := range []string{"key_alias", "max_budget", "soft_budget", "budget_duration", "tpm_limit", "rpm_limit",
				"max_parallel_requests", "model_max_budget", "metadata", "team_id", "tags", "blocked"} {
				got[f] = m[f]
			}
			want := map[string]any{"key_alias": alias, "max_budget": 10.0, "soft_budget": 5.0, "budget_duration": "30d",
				"tpm_limit": 1000.0, "rpm_limit": 10.0, "max_parallel_requests": 2.0,
				"model_max_budget": map[string]any{"gpt-5.5": map[string]any{"budget_limit": 1.5, "time_period": nil},
					"claude-sonnet": map[string]any{"budget_limit": 2.0, "time_period": "1d"}},
				"metadata": map[string]any{"app": "x"}, "team_id": team, "tags": []any{"t"}, "blocked": false}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
		}},
		{name: "generate custom key", method: "POST", path: "/key/generate", body: map[string]any{"key": custom},
			wantStatus: 200, check: field("key", custom)},
		{name: "generate same custom key", method: "POST", path: "/key/generate", body: map[string]any{"key": custom},
			wantStatus: 409, wantCode: "already_exists", wantMsg: "a key with this value already exists"},
		{name: "custom key without sk-", method: "POST", path: "/key/generate", body: map[string]any{"key": "my-key-123"},
			wantStatus: 400, wantCode: "invalid_request", wantMsg: "key must start with sk-"},
		{name: "alias taken", method: "POST", path: "/key/generate", body: map[string]any{"key_alias": alias},
			wantStatus: 409, wantCode: "already_exists", wantMsg: "key_alias \"" + alias + "\" is already used"},
		{name: "bad duration", method: "POST", path: "/key/generate", body: map[string]any{"duration": "30x"},
			wantStatus: 400, wantCode: "invalid_request", wantMsg: `duration "30x" has unknown unit "x"`},
		{name: "negative budget", method: "POST", path: "/key/generate", body: map[string]any{"max_budget": -1},
			wantStatus: 400, wantCode: "invalid_request", wantMsg: "max_budget must be between 0 and"},
		{name: "wrong type", method: "POST", path: "/key/generate", body: map[string]any{"max_budget": "lots", "models": "gpt"},
			wantStatus: 400, wantCode: "invalid_request", wantMsg: `"max_budget" must be a number; "models" must be a list of strings`},
		{name: "unknown field", method: "POST", path: "/key/generate", body: map[string]any{"budget": 5},
			wantStatus: 400, wantCode: "invalid_request", wantMsg: `unknown field "budget"`},
		{name: "unenforceable field", method: "POST", path: "/key/generate", body: map[string]any{"guardrails": []string{"pii"}},
			wantStatus: 400, wantCode: "invalid_request", wantMsg: `"guardrails" is not supported by tollgate and would not be enforced`},
		{name: "unknown team", method: "POST", path: "/key/generate", body: map[string]any{"team_id": "no-such-team"},
			wantStatus: 400, wantCode: "invalid_request", wantMsg: `team_id "no-such-team" does not exist`},
		{name: "bad model budget", method: "POST", path: "/key/generate", body: map[string]any{"model_max_budget": map[string]any{"m": "x"}},
			wantStatus: 400, wantCode: "invalid_request", wantMsg: "model_max_budget.m must be a number of dollars"},
		{name: "not JSON", method: "POST", path: "/key/generate", body: "{", wantStatus: 400, wantCode: "invalid_request",
			wantMsg: "request body must be a JSON object"},
	})
	if first == "" {
		t.Fatal("no key generated")
	}
	k, err := e.s().Authenticate(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"gpt-5.5"}, k.Models); diff != "" {
		t.Errorf("a team key's models are narrowed by the team's (-want +got):\n%s", diff)
	}

	e.runCalls(t, []call{
		{name: "update", method: "POST", path: "/key/update", body: map[string]any{"key": first, "max_budget": nil, "rpm_limit": 20,
			"models": []string{"gpt-5.5"}, "model_max_budget": map[string]any{"gpt-5.5": 3}},
			wantStatus: 200, check: func(t *testing.T, m map[string]any) {
				got := []any{m["key"], m["max_budget"], m["rpm_limit"], m["soft_budget"], m["model_max_budget"]}
				want := []any{first, nil, 20.0, 5.0, map[string]any{"gpt-5.5": map[string]any{"budget_limit": 3.0, "time_period": nil}}}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("update (-want +got):\n%s", diff)
				}
			}},
		{name: "update by hash", method: "POST", path: "/key/update", body: map[string]any{"key": Hash(first), "spend": 1.25},
			wantStatus: 200, check: field("spend", 1.25)},
		{name: "update without key", method: "POST", path: "/key/update", body: map[string]any{"rpm_limit": 1},
			wantStatus: 400, wantCode: "invalid_request", wantMsg: "key is required"},
		{name: "update unknown key", method: "POST", path: "/key/update", body: map[string]any{"key": "sk-nope-nope-nope"},
			wantStatus: 404, wantCode: "not_found", wantMsg: "key not found"},
		{name: "update never expires", method: "POST", path: "/key/update", body: map[string]any{"key": first, "duration": "-1"},
			wantStatus: 200, check: field("expires", nil)},
		{name: "info", method: "GET", path: "/key/info?key=" + first, wantStatus: 200, check: func(t *testing.T, m map[string]any) {
			info := m["info"].(map[string]any)
			if m["key"] != first || info["key_alias"] != alias || info["spend"] != 1.25 || info["token"] != nil {
				t.Errorf("info = %v", m)
			}
		}},
		{name: "info without key", method: "GET", path: "/key/info", wantStatus: 400, wantCode: "invalid_request", wantMsg: "key is required"},
		{name: "info unknown", method: "GET", path: "/key/info?key=sk-nope-nope", wantStatus: 404, wantCode: "not_found"},
		{name: "block", method: "POST", path: "/key/block", body: map[string]any{"key": first}, wantStatus: 200, check: field("blocked", true)},
		{name: "block unknown", method: "POST", path: "/key/block", body: map[string]any{"key": "sk-nope-nope"}, wantStatus: 404, wantCode: "not_found"},
	})
	if _, err := e.s().Authenticate(ctx, first); !errors.Is(err, ErrKeyBlocked) {
		t.Errorf("blocked key: %v", err)
	}
	e.ok("POST", "/key/unblock", map[string]any{"key": first})
	if _, err := e.s().Authenticate(ctx, first); err != nil {
		t.Errorf("unblocked key: %v", err)
	}

	e.runCalls(t, []call{
		{name: "list by team, hashes", method: "GET", path: "/key/list?team_id=" + team, wantStatus: 200, check: func(t *testing.T, m map[string]any) {
			want := map[string]any{"keys": []any{Hash(first)}, "total_count": 1.0, "current_page": 1.0, "total_pages": 1.0}
			if diff := cmp.Diff(want, m); diff != "" {
				t.Errorf("list (-want +got):\n%s", diff)
			}
		}},
		{name: "list by alias, full", method: "GET", path: "/key/list?return_full_object=true&key_alias=" + alias, wantStatus: 200,
			check: func(t *testing.T, m map[string]any) {
				keys := m["keys"].([]any)
				if len(keys) != 1 || keys[0].(map[string]any)["token"] != Hash(first) {
					t.Errorf("list = %v", m)
				}
			}},
		{name: "list bad size", method: "GET", path: "/key/list?size=1000", wantStatus: 400, wantCode: "invalid_request",
			wantMsg: "size must be a whole number from 1 to 100"},
	})
}

func TestKeyListPages(t *testing.T) {
	e := newEnv(t)
	user := "pager-" + randHex(3)
	for range 5 {
		e.generate(map[string]any{"user_id": user})
	}
	var seen []any
	for page := 1; page <= 3; page++ {
		m := e.ok("GET", fmt.Sprintf("/key/list?user_id=%s&size=2&page=%d", user, page), nil)
		if m["total_count"] != 5.0 || m["total_pages"] != 3.0 || m["current_page"] != float64(page) {
			t.Errorf("page %d: %v", page, m)
		}
		seen = append(seen, m["keys"].([]any)...)
	}
	if len(seen) != 5 {
		t.Errorf("pages hold %d keys, want 5: %v", len(seen), seen)
	}
}

func TestRegenerateAndDelete(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	old := e.generate(map[string]any{"max_budget": 1, "key_alias": "regen-" + randHex(3)})
	res, err := e.s().Reserve(ctx, Request{KeyHash: Hash(old), CostMicroUSD: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.s().Settle(ctx, res, 400_000, 10); err != nil {
		t.Fatal(err)
	}

	// With a grace period, both keys work and share one budget.
	m := e.ok("POST", "/key/regenerate", map[string]any{"key": old, "grace_period": "1h", "max_budget": 2})
	fresh := m["key"].(string)
	if m["token"] != Hash(fresh) || m["max_budget"] != 2.0 || fresh == old {
		t.Fatalf("regenerate = %v", m)
	}
	for _, key := range []string{old, fresh} {
		k, err := e.s().Authenticate(ctx, key)
		if err != nil {
			t.Fatalf("Authenticate(%s): %v", keyName(key), err)
		}
		if k.KeyHash != Hash(fresh) {
			t.Errorf("KeyHash = %s, want the new key's", k.KeyHash)
		}
	}
	info := e.ok("GET", "/key/info?key="+fresh, nil)["info"].(map[string]any)
	if info["spend"] != 0.4 {
		t.Errorf("spend after regenerate = %v, want 0.4 (kept)", info["spend"])
	}

	// Without one, the old key stops at once. new_key chooses the key.
	chosen := "sk-chosen-" + randHex(8)
	m = e.ok("POST", "/key/"+fresh+"/regenerate", map[string]any{"new_key": chosen})
	if m["key"] != chosen {
		t.Fatalf("regenerate with new_key = %v", m)
	}
	if _, err := e.s().Authenticate(ctx, fresh); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("replaced key: %v, want invalid_api_key", err)
	}
	if _, err := e.s().Authenticate(ctx, old); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("grace-period key of a replaced key: %v, want invalid_api_key", err)
	}
	if _, err := e.s().Authenticate(ctx, chosen); err != nil {
		t.Errorf("new key: %v", err)
	}

	e.runCalls(t, []call{
		{name: "regenerate unknown", method: "POST", path: "/key/regenerate", body: map[string]any{"key": "sk-none-none"},
			wantStatus: 404, wantCode: "not_found"},
		{name: "regenerate bad new_key", method: "POST", path: "/key/regenerate", body: map[string]any{"key": chosen, "new_key": "abc"},
			wantStatus: 400, wantCode: "invalid_request", wantMsg: "new_key must start with sk-"},
		{name: "regenerate bad grace", method: "POST", path: "/key/regenerate", body: map[string]any{"key": chosen, "grace_period": "soon"},
			wantStatus: 400, wantCode: "invalid_request", wantMsg: "grace_period"},
		{name: "delete nothing", method: "POST", path: "/key/delete", body: map[string]any{},
			wantStatus: 400, wantCode: "invalid_request", wantMsg: `pass "keys"`},
		{name: "delete unknown", method: "POST", path: "/key/delete", body: map[string]any{"keys": []string{chosen, "sk-none-abcd"}},
			wantStatus: 404, wantCode: "not_found", wantMsg: "no such key: sk-...abcd (nothing was deleted)"},
	})
	if _, err := e.s().Authenticate(ctx, chosen); err != nil {
		t.Errorf("a failed delete deleted: %v", err)
	}
	alias := "doomed-" + randHex(3)
	doomed := e.generate(map[string]any{"key_alias": alias})
	e.runCalls(t, []call{
		{name: "delete by alias", method: "POST", path: "/key/delete", body: map[string]any{"key_aliases": []string{alias}},
			wantStatus: 200, check: func(t *testing.T, m map[string]any) {
				if diff := cmp.Diff(map[string]any{"deleted_keys": []any{alias}}, m); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			}},
		{name: "delete by hash", method: "POST", path: "/key/delete", body: map[string]any{"keys": []string{Hash(chosen)}}, wantStatus: 200},
	})
	for _, key := range []string{doomed, chosen} {
		if _, err := e.s().Authenticate(ctx, key); !errors.Is(err, ErrKeyNotFound) {
			t.Errorf("deleted key %s: %v", keyName(key), err)
		}
	}
}

func TestTeamEndpoints(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	team := "team-" + randHex(3)
	alice, bob := "alice-"+randHex(3), "bob-"+randHex(3)
	var key string
	e.runCalls(t, []call{
		{name: "new", method: "POST", path: "/team/new", body: map[string]any{"team_id": team, "team_alias": "Team", "models": []string{"a", "b"},
			"max_budget": 100, "tpm_limit": 5000, "rpm_limit": 50, "metadata": map[string]any{"cost_center": 7},
			"members_with_roles": []any{map[string]any{"user_id": alice, "role": "admin"}}},
			wantStatus: 200, check: func(t *testing.T, m map[string]any) {
				got := []any{m["team_id"], m["team_alias"], m["models"], m["max_budget"], m["rpm_limit"], m["members_with_roles"]}
				want := []any{team, "Team", []any{"a", "b"}, 100.0, 50.0, []any{map[string]any{"user_id": alice, "role": "admin"}}}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			}},
		{name: "new generated id", method: "POST", path: "/team/new", body: map[string]any{"team_alias": "x"}, wantStatus: 200,
			check: func(t *testing.T, m map[string]any) {
				if id, _ := m["team_id"].(string); len(id) != 36 {
					t.Errorf("team_id = %v, want a UUID", m["team_id"])
				}
			}},
		{name: "new duplicate", method: "POST", path: "/team/new", body: map[string]any{"team_id": team}, wantStatus: 409, wantCode: "already_exists"},
		{name: "new bad member role", method: "POST", path: "/team/new", body: map[string]any{"members_with_roles": []any{map[string]any{"user_id": "x", "role": "owner"}}},
			wantStatus: 400, wantCode: "invalid_request", wantMsg: `member role must be "admin" or "user"`},
		{name: "member add", method: "POST", path: "/team/member_add", body: map[string]any{"team_id": team,
			"member": map[string]any{"user_id": bob, "role": "user"}, "max_budget_in_team": 10},
			wantStatus: 200, check: func(t *testing.T, m map[string]any) {
				ms := m["updated_team_memberships"].([]any)
				us := m["updated_users"].([]any)
				if len(ms) != 1 || ms[0].(map[string]any)["litellm_budget_table"].(map[string]any)["max_budget"] != 10.0 ||
					len(us) != 1 || us[0].(map[string]any)["user_id"] != bob || len(m["members_with_roles"].([]any)) != 2 {
					t.Errorf("member_add = %v", m)
				}
			}},
		{name: "member add twice", method: "POST", path: "/team/member_add", body: map[string]any{"team_id": team, "member": []any{map[string]any{"user_id": bob}}},
			wantStatus: 409, wantCode: "already_exists", wantMsg: "already a member"},
		{name: "member add unknown team", method: "POST", path: "/team/member_add", body: map[string]any{"team_id": "nope", "member": map[string]any{"user_id": bob}},
			wantStatus: 404, wantCode: "not_found"},
		{name: "update", method: "POST", path: "/team/update", body: map[string]any{"team_id": team, "models": []string{"a"}, "rpm_limit": nil},
			wantStatus: 200, check: func(t *testing.T, m map[string]any) {
				d := m["data"].(map[string]any)
				if m["team_id"] != team || d["rpm_limit"] != nil || len(d["models"].([]any)) != 1 {
					t.Errorf("update = %v", m)
				}
			}},
		{name: "update unknown", method: "POST", path: "/team/update", body: map[string]any{"team_id": "nope"}, wantStatus: 404, wantCode: "not_found"},
		{name: "update without id", method: "POST", path: "/team/update", body: map[string]any{}, wantStatus: 400, wantCode: "invalid_request"},
		{name: "key for team", method: "POST", path: "/key/generate", body: map[string]any{"team_id": team, "user_id": bob}, wantStatus: 200,
			check: func(t *testing.T, m map[string]any) { key = m["key"].(string) }},
		{name: "info", method: "GET", path: "/team/info?team_id=" + team, wantStatus: 200, check: func(t *testing.T, m map[string]any) {
			if m["team_id"] != team || len(m["keys"].([]any)) != 1 || len(m["team_memberships"].([]any)) != 2 {
				t.Errorf("info = %v", m)
			}
		}},
		{name: "info unknown", method: "GET", path: "/team/info?team_id=nope", wantStatus: 404, wantCode: "not_found"},
		{name: "list for user", method: "GET", path: "/team/list?user_id=" + bob, wantStatus: 200, check: func(t *testing.T, m map[string]any) {
			list := m["_list"].([]any)
			if len(list) != 1 || list[0].(map[string]any)["team_id"] != team {
				t.Errorf("list = %v", m)
			}
		}},
		{name: "member delete", method: "POST", path: "/team/member_delete", body: map[string]any{"team_id": team, "user_id": alice},
			wantStatus: 200, check: func(t *testing.T, m map[string]any) {
				if len(m["members_with_roles"].([]any)) != 1 {
					t.Errorf("member_delete = %v", m)
				}
			}},
		{name: "member delete again", method: "POST", path: "/team/member_delete", body: map[string]any{"team_id": team, "user_id": alice},
			wantStatus: 404, wantCode: "not_found"},
	})
	k, err := e.s().Authenticate(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a"}, k.Models); diff != "" {
		t.Errorf("team key models after /team/update (-want +got):\n%s", diff)
	}
	e.ok("POST", "/team/update", map[string]any{"team_id": team, "blocked": true})
	if _, err := e.s().Authenticate(ctx, key); !errors.Is(err, ErrKeyBlocked) || !strings.Contains(err.Error(), "team is blocked") {
		t.Errorf("key of a blocked team: %v", err)
	}
	e.runCalls(t, []call{
		{name: "delete unknown", method: "POST", path: "/team/delete", body: map[string]any{"team_ids": []string{team, "nope"}}, wantStatus: 404, wantCode: "not_found"},
		{name: "delete", method: "POST", path: "/team/delete", body: map[string]any{"team_ids": []string{team}}, wantStatus: 200},
	})
	if _, err := e.s().Authenticate(ctx, key); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("a deleted team's key: %v, want invalid_api_key", err)
	}
}

func TestUserEndpoints(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	team := "team-" + randHex(3)
	e.ok("POST", "/team/new", map[string]any{"team_id": team})
	user := "user-" + randHex(3)
	var key string
	e.runCalls(t, []call{
		{name: "new", method: "POST", path: "/user/new", body: map[string]any{"user_id": user, "user_email": user + "@example.com",
			"user_role": "internal_user", "max_budget": 20, "models": []string{"gpt-5.5"}, "teams": []any{team}, "key_alias": "k-" + user},
			wantStatus: 200, check: func(t *testing.T, m map[string]any) {
				key, _ = m["key"].(string)
				got := []any{m["user_id"], m["user_email"], m["max_budget"], m["teams"], m["token"], m["key_name"]}
				want := []any{user, user + "@example.com", 20.0, []any{team}, Hash(key), keyName(key)}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			}},
		{name: "new without key", method: "POST", path: "/user/new", body: map[string]any{"auto_create_key": false}, wantStatus: 200,
			check: func(t *testing.T, m map[string]any) {
				if m["key"] != nil || len(m["user_id"].(string)) != 36 {
					t.Errorf("new = %v", m)
				}
			}},
		{name: "new duplicate", method: "POST", path: "/user/new", body: map[string]any{"user_id": user}, wantStatus: 409, wantCode: "already_exists"},
		{name: "new bad role", method: "POST", path: "/user/new", body: map[string]any{"user_role": "root"}, wantStatus: 400, wantCode: "invalid_request",
			wantMsg: "user_role must be one of proxy_admin, proxy_admin_viewer, internal_user, internal_user_viewer"},
		{name: "new unknown team", method: "POST", path: "/user/new", body: map[string]any{"teams": []any{map[string]any{"team_id": "nope"}}},
			wantStatus: 404, wantCode: "not_found"},
		{name: "update by email", method: "POST", path: "/user/update", body: map[string]any{"user_email": user + "@example.com", "models": []string{}},
			wantStatus: 200, check: func(t *testing.T, m map[string]any) {
				if m["user_id"] != user || len(m["models"].([]any)) != 0 {
					t.Errorf("update = %v", m)
				}
			}},
		{name: "update unknown", method: "POST", path: "/user/update", body: map[string]any{"user_id": "nope"}, wantStatus: 404, wantCode: "not_found"},
		{name: "update neither", method: "POST", path: "/user/update", body: map[string]any{"max_budget": 1}, wantStatus: 400, wantCode: "invalid_request"},
		{name: "info", method: "GET", path: "/user/info?user_id=" + user, wantStatus: 200, check: func(t *testing.T, m map[string]any) {
			if m["user_id"] != user || len(m["keys"].([]any)) != 1 || len(m["teams"].([]any)) != 1 {
				t.Errorf("info = %v", m)
			}
		}},
		{name: "info unknown", method: "GET", path: "/user/info?user_id=nope", wantStatus: 404, wantCode: "not_found"},
		{name: "list", method: "GET", path: "/user/list?user_ids=" + user + ",nope&page_size=10", wantStatus: 200, check: func(t *testing.T, m map[string]any) {
			if m["total"] != 1.0 || m["total_pages"] != 1.0 || len(m["users"].([]any)) != 1 {
				t.Errorf("list = %v", m)
			}
		}},
	})
	k, err := e.s().Authenticate(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if len(k.Models) != 0 || k.UserID != user {
		t.Errorf("user's key after the user's models were cleared: %+v", k)
	}
	e.ok("POST", "/user/update", map[string]any{"user_id": user, "user_role": "proxy_admin"})
	if k, err := e.s().Authenticate(ctx, key); err != nil || !k.Admin {
		t.Errorf("key of a user made proxy_admin: %+v, %v", k, err)
	}
	e.runCalls(t, []call{
		{name: "delete unknown", method: "POST", path: "/user/delete", body: map[string]any{"user_ids": []string{"nope"}}, wantStatus: 404, wantCode: "not_found"},
		{name: "delete", method: "POST", path: "/user/delete", body: map[string]any{"user_ids": []string{user}}, wantStatus: 200},
	})
	if _, err := e.s().Authenticate(ctx, key); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("a deleted user's key: %v", err)
	}
}

func TestCustomerEndpoints(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cust := "cust-" + randHex(3)
	key := e.generate(nil)
	reserve := func() error {
		res, err := e.s().Reserve(ctx, Request{KeyHash: Hash(key), EndUser: cust, CostMicroUSD: 1})
		if err == nil {
			e.s().Release(ctx, res)
		}
		return err
	}
	e.runCalls(t, []call{
		{name: "new", method: "POST", path: "/customer/new", body: map[string]any{"user_id": cust, "alias": "Cust", "max_budget": 3, "budget_duration": "1mo"},
			wantStatus: 200, check: func(t *testing.T, m map[string]any) {
				b := m["litellm_budget_table"].(map[string]any)
				if m["user_id"] != cust || m["alias"] != "Cust" || m["blocked"] != false || b["max_budget"] != 3.0 || b["budget_duration"] != "1mo" {
					t.Errorf("new = %v", m)
				}
			}},
		{name: "new duplicate", method: "POST", path: "/customer/new", body: map[string]any{"user_id": cust}, wantStatus: 409, wantCode: "already_exists",
			wantMsg: "Customer already exists"},
		{name: "new without id", method: "POST", path: "/customer/new", body: map[string]any{}, wantStatus: 400, wantCode: "invalid_request"},
		{name: "new with budget_id", method: "POST", path: "/customer/new", body: map[string]any{"user_id": "x", "budget_id": "free"},
			wantStatus: 400, wantCode: "invalid_request", wantMsg: `"budget_id" is not supported`},
		{name: "update", method: "POST", path: "/customer/update", body: map[string]any{"user_id": cust, "max_budget": 4}, wantStatus: 200,
			check: func(t *testing.T, m map[string]any) {
				if m["litellm_budget_table"].(map[string]any)["max_budget"] != 4.0 {
					t.Errorf("update = %v", m)
				}
			}},
		{name: "update unknown", method: "POST", path: "/customer/update", body: map[string]any{"user_id": "nope"}, wantStatus: 404, wantCode: "not_found"},
		{name: "info", method: "GET", path: "/customer/info?end_user_id=" + cust, wantStatus: 200,
			check: func(t *testing.T, m map[string]any) {
				if m["user_id"] != cust {
					t.Errorf("info = %v", m)
				}
			}},
		{name: "info via end_user", method: "GET", path: "/end_user/info?end_user_id=" + cust, wantStatus: 200},
		{name: "info unknown", method: "GET", path: "/customer/info?end_user_id=nope", wantStatus: 404, wantCode: "not_found"},
		{name: "list", method: "GET", path: "/customer/list", wantStatus: 200},
		{name: "block", method: "POST", path: "/customer/block", body: map[string]any{"user_ids": []string{cust}}, wantStatus: 200,
			check: func(t *testing.T, m map[string]any) {
				if b := m["blocked_users"].([]any); len(b) != 1 || b[0].(map[string]any)["blocked"] != true {
					t.Errorf("block = %v", m)
				}
			}},
	})
	err := reserve()
	if le, ok := errors.AsType[*LimitError](err); !ok || le.Kind != ErrEndUserBlocked || le.ID != cust {
		t.Errorf("Reserve for a blocked end user = %v, want end_user_blocked", err)
	}
	e.ok("POST", "/customer/unblock", map[string]any{"user_ids": []string{cust}})
	if err := reserve(); err != nil {
		t.Errorf("Reserve after unblock: %v", err)
	}
	e.runCalls(t, []call{
		{name: "delete unknown", method: "POST", path: "/customer/delete", body: map[string]any{"user_ids": []string{cust, "nope"}},
			wantStatus: 404, wantCode: "not_found", wantMsg: "[nope] do not exist"},
		{name: "delete", method: "POST", path: "/customer/delete", body: map[string]any{"user_ids": []string{cust}}, wantStatus: 200,
			check: func(t *testing.T, m map[string]any) {
				if m["deleted_customers"] != 1.0 {
					t.Errorf("delete = %v", m)
				}
			}},
	})
}

// TestSpendKeysAndUsers: LiteLLM's /spend/keys and /spend/users list keys and users most
// spent first, with the live spend /key/info shows, to admins only.
func TestSpendKeysAndUsers(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	user := "spender-" + randHex(3)
	e.ok("POST", "/user/new", map[string]any{"user_id": user})
	light := e.generate(map[string]any{"user_id": user})
	heavy := e.generate(map[string]any{"user_id": user})
	for key, cost := range map[string]int64{light: 100, heavy: 300} {
		res, err := e.s().Reserve(ctx, Request{KeyHash: Hash(key), UserID: user, CostMicroUSD: cost})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.s().Settle(ctx, res, cost, 1); err != nil {
			t.Fatal(err)
		}
	}

	var order []string
	spend := map[string]any{}
	for _, k := range e.ok("GET", "/spend/keys", nil)["_list"].([]any) {
		k := k.(map[string]any)
		if tok := k["token"]; tok == Hash(light) || tok == Hash(heavy) {
			order = append(order, tok.(string))
			spend[tok.(string)] = k["spend"]
		}
	}
	if diff := cmp.Diff([]string{Hash(heavy), Hash(light)}, order); diff != "" {
		t.Errorf("/spend/keys order (-want +got):\n%s", diff)
	}
	if spend[Hash(heavy)] != 0.0003 || spend[Hash(light)] != 0.0001 {
		t.Errorf("/spend/keys spend = %v, want 0.0003 and 0.0001 (live, from Redis)", spend)
	}

	users := e.ok("GET", "/spend/users?user_id="+user, nil)["_list"].([]any)
	if len(users) != 1 || users[0].(map[string]any)["user_id"] != user || users[0].(map[string]any)["spend"] != 0.0004 {
		t.Errorf("/spend/users?user_id=%s = %v, want the user with spend 0.0004", user, users)
	}
	if status, m := e.call("GET", "/spend/users?user_id=nobody-"+user, master, nil); status != http.StatusNotFound || m["error"] == nil {
		t.Errorf("unknown user: status %d, %v; want 404 with an OpenAI error", status, m)
	}
	if status, _ := e.call("GET", "/spend/keys", heavy, nil); status != http.StatusForbidden {
		t.Errorf("/spend/keys with a virtual key: status %d, want 403", status)
	}
}

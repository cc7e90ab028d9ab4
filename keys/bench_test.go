package keys

import (
	"context"
	"testing"
)

// BenchmarkAuthenticateCached is the hot path: a key this process has seen.
func BenchmarkAuthenticateCached(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	key := e.generate(map[string]any{"models": []string{"gpt-5.5"}, "duration": "30d"})
	if _, err := e.s().Authenticate(ctx, key); err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.s().Authenticate(ctx, key); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := e.s().Authenticate(ctx, key); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkAuthenticateRedisMiss is a key not in the process cache: one Redis round trip.
func BenchmarkAuthenticateRedisMiss(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	key := e.generate(map[string]any{"models": []string{"gpt-5.5"}, "duration": "30d"})
	d := Digest(key)
	b.ReportAllocs()
	for b.Loop() {
		e.s().cache.invalidate(d)
		if _, err := e.s().Authenticate(ctx, key); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReserveSettle is one request's budget and rate-limit work: Reserve before it
// goes upstream, Settle when it ends; two Redis round trips. "key" has one scope; "all"
// has five (key, team, team member, end user, model budget).
func BenchmarkReserveSettle(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	team, user := "bench-"+randHex(3), "bench-user-"+randHex(3)
	e.ok("POST", "/team/new", map[string]any{"team_id": team, "max_budget": 1e6, "tpm_limit": 1e12,
		"members_with_roles": []any{map[string]any{"user_id": user}}})
	key := e.generate(map[string]any{"team_id": team, "user_id": user, "max_budget": 1e6, "max_parallel_requests": 1000,
		"model_max_budget": map[string]any{"gpt-5.5": 1e6}})
	for _, bc := range []struct {
		name string
		req  Request
	}{
		{"key", Request{KeyHash: Hash(key), CostMicroUSD: 1000, Tokens: 500}},
		{"all", Request{KeyHash: Hash(key), TeamID: team, UserID: user, EndUser: "bench-end-user", Model: "gpt-5.5", CostMicroUSD: 1000, Tokens: 500}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				res, err := e.s().Reserve(ctx, bc.req)
				if err != nil {
					b.Fatal(err)
				}
				if err := e.s().Settle(ctx, res, 1, 300); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

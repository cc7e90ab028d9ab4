package keys

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
)

// TestBudgetConcurrency: 200 concurrent requests on two replicas against a $0.05 budget.
// Recorded spend must never pass the budget by more than one request's actual cost.
func TestBudgetConcurrency(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.open(func(*Options) {})
	const budget, worst = 50_000, 1_000 // micro-dollars
	key := e.generate(map[string]any{"max_budget": 0.05})
	var admitted, refused atomic.Int64
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			s := e.stores[i%2]
			var res *Reservation
			var err error
			for {
				// While the rest of the budget is held by requests in flight, the answer is
				// "retry shortly" (429); once it is spent, "budget exceeded".
				res, err = s.Reserve(ctx, Request{KeyHash: Hash(key), Model: "gpt-5.5", CostMicroUSD: worst, Tokens: 100})
				if le, ok := errors.AsType[*LimitError](err); !ok || le.Metric != "budget" {
					break
				}
				time.Sleep(time.Millisecond)
			}
			if errors.Is(err, ErrBudgetExceeded) {
				refused.Add(1)
				return
			}
			if err != nil {
				t.Error(err)
				return
			}
			admitted.Add(1)
			actual := int64(200 + (i*37)%801) // 200..1000, at most the worst case
			if err := s.Settle(ctx, res, actual, 80); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	spend, reserved := e.counters(scope{scopeKey, Hash(key)})
	t.Logf("admitted %d, refused %d, spend %d of %d", admitted.Load(), refused.Load(), spend, budget)
	if spend < budget || spend >= budget+worst {
		t.Errorf("spend = %d micro-dollars: want at least the budget %d and less than one request (%d) over it", spend, budget, worst)
	}
	if reserved != 0 || refused.Load() == 0 {
		t.Errorf("reserved = %d, refused = %d: want 0 reserved after settlement and some refusals", reserved, refused.Load())
	}
}

// counters reads a scope's spend and reserved counters from Redis.
func (e *env) counters(sc scope) (spend, reserved int64) {
	e.t.Helper()
	v, err := e.rdb.HMGet(context.Background(), e.s().n.scope(sc), "spend", "reserved").Result()
	if err != nil {
		e.t.Fatal(err)
	}
	fmt.Sscan(fmt.Sprint(v[0]), &spend)
	fmt.Sscan(fmt.Sprint(v[1]), &reserved)
	return spend, reserved
}

// awayFromMinuteEdge waits, if needed, so a test of per-minute limits runs within one
// rate window of Redis's clock.
func (e *env) awayFromMinuteEdge() {
	now, err := e.rdb.Time(context.Background()).Result()
	if err != nil {
		e.t.Fatal(err)
	}
	if left := time.Minute - time.Duration(now.Unix()%60)*time.Second; left < 10*time.Second {
		time.Sleep(left + 100*time.Millisecond)
	}
}

func TestRateLimits(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.awayFromMinuteEdge()
	key := e.generate(map[string]any{"rpm_limit": 3, "tpm_limit": 1000})
	req := Request{KeyHash: Hash(key), Tokens: 300}
	var remaining [][2]int64
	var last *Reservation
	for range 3 {
		res, err := e.s().Reserve(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		remaining = append(remaining, [2]int64{res.RateLimit.RemainingRequests, res.RateLimit.RemainingTokens})
		last = res
	}
	if diff := cmp.Diff([][2]int64{{2, 700}, {1, 400}, {0, 100}}, remaining); diff != "" {
		t.Errorf("remaining requests, tokens (-want +got):\n%s", diff)
	}
	if h := last.RateLimit.Headers(); h["x-ratelimit-limit-requests"] != "3" || h["x-ratelimit-remaining-tokens"] != "100" {
		t.Errorf("headers %v", h)
	}
	_, err := e.s().Reserve(ctx, req)
	le, ok := errors.AsType[*LimitError](err)
	// The window slides: requests made early in a minute still count well into the next
	// one, so the wait can pass the minute's end, never the next minute's.
	if !ok || le.Kind != ErrRateLimited || le.Metric != "requests" || le.Limit != 3 || le.RetryAfter <= 0 || le.RetryAfter > 2*time.Minute {
		t.Fatalf("4th request: %#v", err)
	}
	if h := le.Headers(); h["retry-after"] == "" || h["x-ratelimit-remaining-requests"] != "0" {
		t.Errorf("headers %v", h)
	}

	// Tokens: 900 of 1000 counted; settling for 100 actual tokens frees 200.
	tokenKey := e.generate(map[string]any{"tpm_limit": 1000})
	treq := Request{KeyHash: Hash(tokenKey), Tokens: 500}
	first, err := e.s().Reserve(ctx, treq)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.s().Reserve(ctx, treq); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s().Reserve(ctx, treq); !errors.Is(err, ErrRateLimited) || !strings.Contains(err.Error(), "tpm_limit of 1000") {
		t.Fatalf("over tpm: %v", err)
	}
	if err := e.s().Settle(ctx, first, 1, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s().Reserve(ctx, treq); err != nil {
		t.Errorf("after settlement freed tokens: %v", err)
	}
}

// TestRateWindowsSlide: a minute's requests still count, in proportion, in the minute
// after it (a sliding window), so a client cannot send rpm_limit requests at the end of
// one minute and rpm_limit more at the start of the next.
func TestRateWindowsSlide(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.awayFromMinuteEdge()
	key := e.generate(map[string]any{"rpm_limit": 10})
	now, err := e.rdb.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	// The previous minute used the whole limit.
	minute := now.Unix() / 60
	prev := e.s().n.scope(scope{scopeKey, Hash(key)}) + ":w" + strconv.FormatInt(minute-1, 10)
	if err := e.rdb.HSet(ctx, prev, "r", 10, "t", 0).Err(); err != nil {
		t.Fatal(err)
	}
	admitted := 0
	var refusal error
	for range 10 {
		res, err := e.s().Reserve(ctx, Request{KeyHash: Hash(key)})
		if err != nil {
			refusal = err
			break
		}
		admitted++
		e.s().Release(ctx, res)
	}
	// A fraction f of this minute has passed: the previous minute's 10 requests count
	// as 10*(1-f), which leaves room for about 10*f more.
	elapsed := float64(now.Unix()%60) / 60
	if want := int(10 * elapsed); admitted < want-1 || admitted > want+1 {
		t.Errorf("%d requests admitted %.0f%% into the minute after a full one, want %d", admitted, 100*elapsed, want)
	}
	le, ok := errors.AsType[*LimitError](refusal)
	if !ok || le.Metric != "requests" || le.RetryAfter <= 0 || le.RetryAfter > 7*time.Second {
		// The next request fits once another tenth of the previous minute has slid out.
		t.Errorf("refusal %#v, want rpm_limit with a retry of at most 6s", refusal)
	}
}

// TestLimitsAcrossProcesses: a second replica in its own process shares the limits.
func TestLimitsAcrossProcesses(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	other := e.startChild()
	e.awayFromMinuteEdge()
	tests := []struct {
		name   string
		limits map[string]any
		allow  int
	}{
		{"max_parallel_requests", map[string]any{"max_parallel_requests": 4}, 4},
		{"rpm_limit", map[string]any{"rpm_limit": 7}, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := e.generate(tt.limits)
			var admitted atomic.Int64
			var wg sync.WaitGroup
			wg.Go(func() {
				for range 10 {
					if other.do(t, "reserve %s 1 1", Hash(key)) == "ok" {
						admitted.Add(1)
					}
				}
			})
			for range 10 {
				wg.Go(func() {
					if _, err := e.s().Reserve(ctx, Request{KeyHash: Hash(key), CostMicroUSD: 1, Tokens: 1}); err == nil {
						admitted.Add(1)
					} else if !errors.Is(err, ErrRateLimited) {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if got := admitted.Load(); got != int64(tt.allow) {
				t.Errorf("two replicas admitted %d requests, want %d", got, tt.allow)
			}
		})
	}
}

func TestReservationExpires(t *testing.T) {
	e := newEnvDB(t, testDB, func(o *Options) { o.ReservationTTL = 200 * time.Millisecond })
	ctx := context.Background()
	key := e.generate(map[string]any{"max_parallel_requests": 1, "max_budget": 1})
	req := Request{KeyHash: Hash(key), CostMicroUSD: 999_000}
	if _, err := e.s().Reserve(ctx, req); err != nil { // never settled: its process "died"
		t.Fatal(err)
	}
	_, err := e.s().Reserve(ctx, req)
	if le, ok := errors.AsType[*LimitError](err); !ok || le.Metric != "parallel_requests" {
		t.Fatalf("second request: %v, want max_parallel_requests", err)
	}
	waitFor(t, "the abandoned reservation to expire", func() bool {
		res, err := e.s().Reserve(ctx, req)
		if err == nil {
			e.s().Release(ctx, res)
		}
		return err == nil
	})
	if _, reserved := e.counters(scope{scopeKey, Hash(key)}); reserved != 0 {
		t.Errorf("reserved = %d after expiry and release, want 0", reserved)
	}
}

// TestScopes: every budget that applies is enforced, and the refusal names it.
func TestScopes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := randHex(3)
	team, member, user, cust := "team-"+id, "member-"+id, "user-"+id, "cust-"+id
	e.ok("POST", "/team/new", map[string]any{"team_id": team, "max_budget": 0.000_010})
	e.ok("POST", "/team/new", map[string]any{"team_id": team + "-m"})
	e.ok("POST", "/team/member_add", map[string]any{"team_id": team + "-m", "member": map[string]any{"user_id": member}, "max_budget_in_team": 0.000_010})
	e.ok("POST", "/user/new", map[string]any{"user_id": user, "max_budget": 0.000_010, "auto_create_key": false})
	e.ok("POST", "/customer/new", map[string]any{"user_id": cust, "max_budget": 0.000_010})
	tests := []struct {
		name      string
		key       map[string]any
		endUser   string
		model     string
		wantScope string
		wantID    string
	}{
		{"key", map[string]any{"max_budget": 0.000_010}, "", "", "key", ""},
		{"team", map[string]any{"team_id": team}, "", "", "team", team},
		{"team member", map[string]any{"team_id": team + "-m", "user_id": member}, "", "", "team_member", ""},
		{"user, personal key", map[string]any{"user_id": user}, "", "", "user", user},
		{"end user", nil, cust, "", "end_user", cust},
		{"model", map[string]any{"model_max_budget": map[string]any{"gpt-5.5": 0.000_010}}, "", "gpt-5.5", "model", "gpt-5.5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := e.s().Authenticate(ctx, e.generate(tt.key))
			if err != nil {
				t.Fatal(err)
			}
			req := Request{KeyHash: k.KeyHash, TeamID: k.TeamID, UserID: k.UserID, EndUser: tt.endUser, Model: tt.model, CostMicroUSD: 5}
			res, err := e.s().Reserve(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			e.s().Settle(ctx, res, 10, 1)
			_, err = e.s().Reserve(ctx, req)
			le, ok := errors.AsType[*LimitError](err)
			if !ok || le.Kind != ErrBudgetExceeded || le.Scope != tt.wantScope || le.ID != tt.wantID {
				t.Fatalf("Reserve = %v, want %s %q budget exceeded", err, tt.wantScope, tt.wantID)
			}
			if tt.model != "" {
				// Other models are not held to this model's budget.
				req.Model = "claude-sonnet"
				if _, err := e.s().Reserve(ctx, req); err != nil {
					t.Errorf("another model: %v", err)
				}
			}
		})
	}
}

func TestSoftBudget(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key := e.generate(map[string]any{"soft_budget": 0.000_010, "max_budget": 1})
	req := Request{KeyHash: Hash(key), CostMicroUSD: 5}
	res, err := e.s().Reserve(ctx, req)
	if err != nil || res.SoftBudget != "" {
		t.Fatalf("first request: %+v, %v", res, err)
	}
	e.s().Settle(ctx, res, 20, 1)
	res, err = e.s().Reserve(ctx, req)
	if err != nil || res.SoftBudget != "key" {
		t.Errorf("after the soft budget: %+v, %v; want served and flagged \"key\"", res, err)
	}
}

func TestSpendReachesPostgres(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := randHex(3)
	team, user, cust := "team-"+id, "user-"+id, "cust-"+id
	e.ok("POST", "/team/new", map[string]any{"team_id": team, "members_with_roles": []any{map[string]any{"user_id": user}}})
	key := e.generate(map[string]any{"team_id": team, "user_id": user, "model_max_budget": map[string]any{"m": 1}})
	res, err := e.s().Reserve(ctx, Request{KeyHash: Hash(key), TeamID: team, UserID: user, EndUser: cust, Model: "m", CostMicroUSD: 100})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.s().Settle(ctx, res, 77, 10); err != nil {
		t.Fatal(err)
	}
	// Settle counts in Redis only; Postgres counts the spend records as they land.
	pgSpend := func() (k, tm, m, c, mb int64) {
		t.Helper()
		err := testPG.QueryRow(ctx, `SELECT
			(SELECT spend FROM tollgate_keys WHERE token = $1),
			(SELECT spend FROM tollgate_teams WHERE team_id = $2),
			(SELECT spend FROM tollgate_team_members WHERE team_id = $2 AND user_id = $3),
			coalesce((SELECT spend FROM tollgate_end_users WHERE user_id = $4), 0),
			(SELECT spend FROM tollgate_key_model_budgets WHERE token = $1 AND model = 'm')`,
			Hash(key), team, user, cust).Scan(&k, &tm, &m, &c, &mb)
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	if k, tm, m, c, mb := pgSpend(); k+tm+m+c+mb != 0 {
		t.Errorf("Postgres spend before the record landed: %d %d %d %d %d, want 0", k, tm, m, c, mb)
	}
	rec := Spend{KeyHash: Hash(key), TeamID: team, UserID: user, EndUser: cust, Model: "m", MicroUSD: 77}
	e.record(rec, Spend{KeyHash: Hash(key), TeamID: team, UserID: user, EndUser: cust, Model: "other", MicroUSD: 0})
	if k, tm, m, c, mb := pgSpend(); k != 77 || tm != 77 || m != 77 || c != 77 || mb != 77 {
		t.Errorf("Postgres spend (key, team, member, end user, model budget) = %d %d %d %d %d, want 77 each", k, tm, m, c, mb)
	}
	// A key with no team answers to its user's budget instead.
	solo := e.generate(map[string]any{"user_id": user})
	e.record(Spend{KeyHash: Hash(solo), UserID: user, MicroUSD: 5}, Spend{KeyHash: Hash(solo), UserID: user, MicroUSD: 6})
	var keySpend, userSpend int64
	if err := testPG.QueryRow(ctx, `SELECT (SELECT spend FROM tollgate_keys WHERE token = $1), (SELECT spend FROM tollgate_users WHERE user_id = $2)`,
		Hash(solo), user).Scan(&keySpend, &userSpend); err != nil {
		t.Fatal(err)
	}
	if keySpend != 11 || userSpend != 11 {
		t.Errorf("team-less key: key spend %d, user spend %d, want 11 each", keySpend, userSpend)
	}
	info := e.ok("GET", "/customer/info?end_user_id="+cust, nil)
	if info["spend"] != 0.000077 {
		t.Errorf("end user created by its first request: %v", info)
	}
}

func TestBudgetReset(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key := e.generate(map[string]any{"max_budget": 0.000_010, "budget_duration": "1s"})
	req := Request{KeyHash: Hash(key), CostMicroUSD: 5}
	res, err := e.s().Reserve(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	e.s().Settle(ctx, res, 20, 1)
	if _, err := e.s().Reserve(ctx, req); !errors.Is(err, ErrBudgetExceeded) {
		t.Fatalf("spent: %v", err)
	}
	waitFor(t, "the budget to reset", func() bool {
		res, err := e.s().Reserve(ctx, req)
		if err == nil {
			e.s().Release(ctx, res)
		}
		return err == nil
	})
	// Redis is written before the reset's Postgres transaction commits.
	waitFor(t, "the reset in Postgres", func() bool {
		var spend int64
		var next time.Time
		err := testPG.QueryRow(ctx, `SELECT spend, budget_reset_at FROM tollgate_keys WHERE token = $1`, Hash(key)).Scan(&spend, &next)
		return err == nil && spend == 0 && next.After(time.Now().Add(-time.Second))
	})
}

// TestConcurrentSpendDoesNotDeadlock: the spend writer's batches in flight (and other
// replicas' writers) add to the same budgets at once. Each transaction here holds its
// row locks for a moment, as a real batch does while it copies its records, so
// transactions overlap; Postgres reports any deadlock between them (SQLSTATE 40P01).
func TestConcurrentSpendDoesNotDeadlock(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := randHex(3)
	teams := []string{"team-a-" + id, "team-b-" + id}
	users := []string{"user-a-" + id, "user-b-" + id}
	var spends []Spend
	for i, team := range teams {
		e.ok("POST", "/team/new", map[string]any{"team_id": team, "members_with_roles": []any{
			map[string]any{"user_id": users[0]}, map[string]any{"user_id": users[1]}}})
		for _, user := range users {
			key := e.generate(map[string]any{"team_id": team, "user_id": user, "model_max_budget": map[string]any{"m": 1}})
			spends = append(spends, Spend{KeyHash: Hash(key), TeamID: team, UserID: user,
				EndUser: "cust-" + id + strconv.Itoa(i), Model: "m", MicroUSD: 1})
		}
	}
	for _, user := range users { // team-less keys answer to their user's budget
		spends = append(spends, Spend{KeyHash: Hash(e.generate(map[string]any{"user_id": user})), UserID: user, MicroUSD: 1})
	}
	const workers, rounds = 4, 40
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for range rounds {
				batch := slices.Clone(spends)
				rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
				err := pgx.BeginFunc(ctx, testPG, func(tx pgx.Tx) error {
					if err := AddSpend(ctx, tx, batch); err != nil {
						return err
					}
					time.Sleep(time.Millisecond) // the rest of the writer's transaction
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	var total int64
	hashes := make([]string, len(spends))
	for i, sp := range spends {
		hashes[i] = sp.KeyHash
	}
	if err := testPG.QueryRow(ctx, `SELECT sum(spend) FROM tollgate_keys WHERE token = ANY($1)`, hashes).Scan(&total); err != nil {
		t.Fatal(err)
	}
	if want := int64(workers * rounds * len(spends)); total != want {
		t.Errorf("keys' spend = %d µ$, want %d", total, want)
	}
}

// TestSpendCountsInItsOwnPeriod: a spend record stored after a budget reset (a second
// later normally, hours later when Postgres was down and the record waited in the
// spool) counts in the period its request started in: not in the new one.
func TestSpendCountsInItsOwnPeriod(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := randHex(3)
	team, cust := "team-"+id, "cust-"+id
	e.ok("POST", "/team/new", map[string]any{"team_id": team, "max_budget": 10, "budget_duration": "30d"})
	key := e.generate(map[string]any{"team_id": team, "max_budget": 10, "budget_duration": "30d",
		"model_max_budget": map[string]any{"m": map[string]any{"budget_limit": 10, "time_period": "30d"}}})
	e.record(Spend{KeyHash: Hash(key), TeamID: team, EndUser: cust, Model: "m", MicroUSD: 1}) // creates the end user
	turn := time.Now().Add(-time.Minute).UTC().Truncate(time.Microsecond)
	for table, where := range map[string]string{ // each budget's period turned a minute ago
		"tollgate_keys": "token = '" + Hash(key) + "'", "tollgate_key_model_budgets": "token = '" + Hash(key) + "'",
		"tollgate_teams": "team_id = '" + team + "'", "tollgate_end_users": "user_id = '" + cust + "'",
	} {
		if _, err := testPG.Exec(ctx, `UPDATE `+table+` SET budget_duration = '30d', budget_reset_at = $1, spend = 1000 WHERE `+where, turn); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.s().resetBudgets(ctx); err != nil {
		t.Fatal(err)
	}
	e.record(
		Spend{KeyHash: Hash(key), TeamID: team, EndUser: cust, Model: "m", MicroUSD: 7, Start: turn.Add(-time.Second)},      // the old period's
		Spend{KeyHash: Hash(key), TeamID: team, EndUser: cust, Model: "m", MicroUSD: 11, Start: turn},                       // the new one's
		Spend{KeyHash: Hash(key), TeamID: team, EndUser: cust, Model: "m", MicroUSD: 13, Start: turn.Add(30 * time.Second)}, // the new one's
	)
	var k, m, tm, c int64
	var began time.Time
	if err := testPG.QueryRow(ctx, `SELECT
		(SELECT spend FROM tollgate_keys WHERE token = $1),
		(SELECT spend FROM tollgate_key_model_budgets WHERE token = $1 AND model = 'm'),
		(SELECT spend FROM tollgate_teams WHERE team_id = $2),
		(SELECT spend FROM tollgate_end_users WHERE user_id = $3),
		(SELECT budget_period_start FROM tollgate_keys WHERE token = $1)`,
		Hash(key), team, cust).Scan(&k, &m, &tm, &c, &began); err != nil {
		t.Fatal(err)
	}
	if k != 24 || m != 24 || tm != 24 || c != 24 {
		t.Errorf("spend after the reset (key, model budget, team, end user) = %d %d %d %d µ$, want 24 each (11 + 13, not the old period's 7)", k, m, tm, c)
	}
	if !began.Equal(turn) {
		t.Errorf("budget_period_start = %v, want the reset's turn %v", began, turn)
	}
}

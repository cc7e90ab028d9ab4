package keys

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Request is what Reserve needs to know about one API request. The first three fields
// are the authenticated Principal's.
type Request struct {
	KeyHash, TeamID, UserID string
	// EndUser is the request body's "user" field (LiteLLM's customer), if any.
	EndUser string
	// Model is the model alias requested: it selects the key's model_max_budget.
	Model string
	// CostMicroUSD is the worst-case cost of the request in micro-dollars: the prompt
	// estimate plus max_tokens (or the model's maximum output) at the deployment's prices.
	CostMicroUSD int64
	// Tokens is the worst-case token count, held against tpm limits until settlement.
	Tokens int64
}

// Reservation is budget and rate-limit capacity held for one request in flight. Exactly
// one of Settle or Release must follow Reserve; a reservation never settled is released
// by itself after Options.ReservationTTL.
type Reservation struct {
	// RateLimit describes the tightest rpm and tpm limits that apply, for the
	// x-ratelimit-* response headers.
	RateLimit RateLimit
	// SoftBudget names the scope ("key", "team", ...) whose soft_budget is already
	// crossed, or is empty. The request is served; the caller flags the response.
	SoftBudget string
	// KeySpend is the key's spend in its current budget period before this request, in
	// micro-dollars (LiteLLM's x-litellm-key-spend).
	KeySpend int64
	// Unchecked is set when Redis was unreachable and Options.ServeCachedWhenRedisDown
	// let the request through without checking budgets or limits.
	Unchecked bool

	id     string
	scopes []scope
	cost   int64
	tokens int64
	minute string // the rate window the request was counted in
}

// RateLimit is the tightest request and token limit of a reservation. Limits are -1 where
// none applies.
type RateLimit struct {
	LimitRequests, RemainingRequests int64
	LimitTokens, RemainingTokens     int64
	Reset                            time.Duration // until the current window ends
}

// Headers are LiteLLM's and OpenAI's x-ratelimit-* response headers for the limits that
// apply (none when no limit does).
func (r RateLimit) Headers() map[string]string {
	h := map[string]string{}
	reset := strconv.Itoa(retrySeconds(r.Reset)) + "s"
	if r.LimitRequests >= 0 {
		h["x-ratelimit-limit-requests"] = strconv.FormatInt(r.LimitRequests, 10)
		h["x-ratelimit-remaining-requests"] = strconv.FormatInt(r.RemainingRequests, 10)
		h["x-ratelimit-reset-requests"] = reset
	}
	if r.LimitTokens >= 0 {
		h["x-ratelimit-limit-tokens"] = strconv.FormatInt(r.LimitTokens, 10)
		h["x-ratelimit-remaining-tokens"] = strconv.FormatInt(r.RemainingTokens, 10)
		h["x-ratelimit-reset-tokens"] = reset
	}
	return h
}

// scopes lists the budgets and limits that apply to r. A team key answers to its team
// and the user's membership of it, and not to the user's personal budget (LiteLLM's
// rule); a key with no team answers to its user.
func (r *Request) scopes() []scope {
	sc := make([]scope, 0, 5)
	sc = append(sc, scope{scopeKey, r.KeyHash})
	switch {
	case r.TeamID != "":
		sc = append(sc, scope{scopeTeam, r.TeamID})
		if r.UserID != "" {
			sc = append(sc, scope{scopeMember, memberID(r.TeamID, r.UserID)})
		}
	case r.UserID != "":
		sc = append(sc, scope{scopeUser, r.UserID})
	}
	if r.EndUser != "" {
		sc = append(sc, scope{scopeEndUser, r.EndUser})
	}
	if r.Model != "" {
		sc = append(sc, scope{scopeModel, modelID(r.KeyHash, r.Model)})
	}
	return sc
}

// reserveScript checks every scope, then reserves in every scope, atomically: requests
// on any replica see each other's reservations. A scope's hash holds its limits (max,
// soft, rpm, tpm, par, blocked; absent means none) and its counters: spend (settled, this
// budget period) and reserved (held by requests in flight). A request is admitted while
// spend + reserved is below max, so spend can pass max by at most one request's cost; its
// worst-case cost is then held until settlement. A budget that is spent refuses for good
// ("budget"); one that is only held by requests in flight refuses until they settle
// ("budget_held"). Rate limits count requests and tokens per minute of Redis's clock,
// shared by all replicas, in a sliding window: the previous minute's counts weigh in by
// the part of it still inside the last 60 seconds (a request 15 s into a minute sees 75%
// of the previous minute and all of this one), so no burst across a minute boundary
// passes twice the limit. Reservations in flight are kept in a sorted set by deadline,
// which gives max_parallel_requests and lets reservations of crashed replicas expire.
//
// KEYS: primed, then per scope its hash and its in-flight set.
// ARGV: reservation id, cost, tokens, ttl ms, then per scope "1" to count it in rate
// windows (model budgets are not rate limited).
var reserveScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return {'unprimed'} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local m = math.floor(tonumber(t[1]) / 60)
local minute = tostring(m)
local reset = (m + 1) * 60000 - now
local left = reset / 60000 -- the share of the previous minute still in the window
-- wait is how long until a count of prev*left + cur, sliding, is at most allowed.
local function wait(prev, cur, allowed)
  if allowed < 0 then return reset end
  if cur <= allowed then -- within this minute, as the previous one slides out
    return math.max(math.ceil(reset - 60000 * (allowed - cur) / prev), 1)
  end
  return math.ceil(reset + 60000 * (1 - allowed / cur)) -- in the next, as this one does
end
local cost, tokens = tonumber(ARGV[2]), tonumber(ARGV[3])
local n = (#KEYS - 1) / 2
local limReq, remReq, limTok, remTok, soft, keySpend = -1, -1, -1, -1, 0, 0
for i = 1, n do
  local h, z = KEYS[2 * i], KEYS[2 * i + 1]
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', z, '-inf', now)) do
    local held = tonumber(string.match(m, ':(%d+)$'))
    if held > 0 then redis.call('HINCRBY', h, 'reserved', 0 - held) end
    redis.call('ZREM', z, m)
  end
  local f = redis.call('HMGET', h, 'blocked', 'max', 'soft', 'spend', 'reserved', 'rpm', 'tpm', 'par')
  if f[1] == '1' then return {'blocked', i} end
  local spend = tonumber(f[4]) or 0
  if i == 1 then keySpend = spend end
  local used = spend + (tonumber(f[5]) or 0)
  if f[2] and spend >= tonumber(f[2]) then return {'budget', i, spend, tonumber(f[2])} end
  if f[2] and used >= tonumber(f[2]) then return {'budget_held', i, spend, tonumber(f[2])} end
  if f[3] and soft == 0 and spend >= tonumber(f[3]) then soft = i end
  if ARGV[4 + i] == '1' then
    local w = redis.call('HMGET', h .. ':w' .. minute, 'r', 't')
    local p = redis.call('HMGET', h .. ':w' .. tostring(m - 1), 'r', 't')
    local pr, pt = tonumber(p[1]) or 0, tonumber(p[2]) or 0
    local cr, ct = tonumber(w[1]) or 0, tonumber(w[2]) or 0
    local r, tk = pr * left + cr, pt * left + ct
    if f[6] then
      local lim = tonumber(f[6])
      if r + 1 > lim then return {'requests', i, lim, wait(pr, cr, lim - 1)} end
      local rem = math.floor(lim - r - 1)
      if limReq < 0 or rem < remReq then limReq, remReq = lim, rem end
    end
    if f[7] then
      local lim = tonumber(f[7])
      if tk >= lim then return {'tokens', i, lim, wait(pt, ct, lim - 1)} end
      local rem = math.max(math.floor(lim - tk - tokens), 0)
      if limTok < 0 or rem < remTok then limTok, remTok = lim, rem end
    end
  end
  if f[8] and redis.call('ZCARD', z) >= tonumber(f[8]) then return {'parallel_requests', i, tonumber(f[8]), 1000} end
end
local member = ARGV[1] .. ':' .. ARGV[2]
for i = 1, n do
  local h, z = KEYS[2 * i], KEYS[2 * i + 1]
  redis.call('HINCRBY', h, 'reserved', cost)
  redis.call('ZADD', z, now + tonumber(ARGV[4]), member)
  if ARGV[4 + i] == '1' then
    local w = h .. ':w' .. minute
    redis.call('HINCRBY', w, 'r', 1)
    redis.call('HINCRBY', w, 't', tokens)
    redis.call('EXPIRE', w, 120)
  end
end
return {'ok', minute, limReq, remReq, limTok, remTok, soft, reset, keySpend}
`)

// settleScript ends a reservation: it frees the held cost (unless the reservation already
// expired), adds the actual cost to spend, and corrects the tokens counted in the
// request's rate window. It returns the scopes whose soft budget this crossed.
//
// KEYS: per scope its hash and its in-flight set.
// ARGV: reservation member, actual cost, token correction, rate window minute.
var settleScript = redis.NewScript(`
local member, actual, dt = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local cost = tonumber(string.match(member, ':(%d+)$'))
local crossed = {}
for i = 1, #KEYS / 2 do
  local h, z = KEYS[2 * i - 1], KEYS[2 * i]
  if redis.call('ZREM', z, member) == 1 and cost > 0 then redis.call('HINCRBY', h, 'reserved', 0 - cost) end
  if actual > 0 then
    local after = redis.call('HINCRBY', h, 'spend', actual)
    local soft = tonumber(redis.call('HGET', h, 'soft'))
    if soft and after >= soft and after - actual < soft then crossed[#crossed + 1] = i end
  end
  local w = h .. ':w' .. ARGV[4]
  if dt ~= 0 and redis.call('EXISTS', w) == 1 then redis.call('HINCRBY', w, 't', dt) end
end
return crossed
`)

// Reserve admits a request against every budget and rate limit that applies to it (the
// key's, its team's and team membership's or its user's, the end user's, and the key's
// budget for the model) and holds its worst-case cost until Settle or Release. It makes
// one Redis round trip.
//
// Refusals are *LimitError values: ErrBudgetExceeded when a budget is spent;
// ErrRateLimited (with RetryAfter) when an rpm, tpm or max_parallel_requests limit is
// reached, or when what is left of a budget is held by requests in flight (Metric
// "budget"); ErrEndUserBlocked. ErrUnavailable means Redis is unreachable or being
// rebuilt.
func (s *Store) Reserve(ctx context.Context, r Request) (*Reservation, error) {
	if r.KeyHash == "" {
		return nil, fmt.Errorf("keys: Reserve needs the key hash")
	}
	res := &Reservation{
		id:     s.ridPrefix + strconv.FormatUint(s.ridSeq.Add(1), 36),
		scopes: r.scopes(),
		cost:   max(r.CostMicroUSD, 0),
		tokens: max(r.Tokens, 0),
	}
	keys := make([]string, 0, 1+2*len(res.scopes))
	args := make([]any, 0, 4+len(res.scopes))
	keys = append(keys, s.n.primed())
	args = append(args, res.id, res.cost, res.tokens, s.opts.ReservationTTL.Milliseconds())
	for _, sc := range res.scopes {
		keys = append(keys, s.n.scope(sc), s.n.outstanding(sc))
		counted := "1"
		if sc.kind == scopeModel {
			counted = "0"
		}
		args = append(args, counted)
	}
	out, err := reserveScript.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if s.opts.ServeCachedWhenRedisDown {
			res.Unchecked = true
			res.RateLimit = RateLimit{LimitRequests: -1, LimitTokens: -1}
			s.log.Warn("Redis unreachable: request admitted without budget or rate-limit checks", "err", err)
			return res, nil
		}
		return nil, unavailable("tollgate cannot reach Redis to check budgets and rate limits", err)
	}
	return s.admitted(res, out)
}

// admitted reads the reserve script's answer.
func (s *Store) admitted(res *Reservation, out []any) (*Reservation, error) {
	num := func(i int) int64 { v, _ := out[i].(int64); return v }
	at := func(i int) scope { return res.scopes[num(i)-1] }
	switch out[0] {
	case "ok":
		res.minute, _ = out[1].(string)
		res.RateLimit = RateLimit{
			LimitRequests: num(2), RemainingRequests: num(3),
			LimitTokens: num(4), RemainingTokens: num(5),
			Reset: time.Duration(num(7)) * time.Millisecond,
		}
		if i := num(6); i > 0 {
			res.SoftBudget = res.scopes[i-1].kind
		}
		res.KeySpend = num(8)
		return res, nil
	case "unprimed":
		s.rebuildSoon()
		return nil, errRebuilding
	case "blocked":
		sc := at(1)
		return nil, &LimitError{Kind: ErrEndUserBlocked, Scope: sc.kind, ID: sc.id}
	case "budget":
		sc := at(1)
		return nil, &LimitError{Kind: ErrBudgetExceeded, Scope: sc.kind, ID: publicID(sc), Spend: num(2), MaxBudget: num(3)}
	case "budget_held":
		sc := at(1)
		return nil, &LimitError{Kind: ErrRateLimited, Metric: "budget", Scope: sc.kind, ID: publicID(sc),
			Spend: num(2), MaxBudget: num(3), RetryAfter: time.Second}
	default: // requests, tokens, parallel_requests
		sc := at(1)
		metric, _ := out[0].(string)
		return nil, &LimitError{Kind: ErrRateLimited, Scope: sc.kind, ID: publicID(sc), Metric: metric,
			Limit: num(2), RetryAfter: time.Duration(num(3)) * time.Millisecond}
	}
}

// publicID is how an error names a scope: teams, users and end users by id, a model budget
// by its model, and the key (which the client holds) not at all.
func publicID(sc scope) string {
	switch sc.kind {
	case scopeKey:
		return ""
	case scopeModel:
		return sc.id[hashLen+1:]
	case scopeMember:
		return ""
	}
	return sc.id
}

// Settle ends a request that went upstream: it frees the reservation and counts the
// actual cost (micro-dollars) and tokens against every scope in Redis. The cost reaches
// Postgres with the request's spend record (AddSpend).
func (s *Store) Settle(ctx context.Context, res *Reservation, actualMicroUSD, tokens int64) error {
	return s.finish(ctx, res, max(actualMicroUSD, 0), max(tokens, 0)-res.tokens)
}

// Release ends a request that failed before it cost anything: the reservation is freed
// and its tokens no longer count. The request still counts against rpm limits.
func (s *Store) Release(ctx context.Context, res *Reservation) error {
	return s.finish(ctx, res, 0, -res.tokens)
}

func (s *Store) finish(ctx context.Context, res *Reservation, actual, tokenDelta int64) error {
	if res.Unchecked {
		return nil
	}
	keys := make([]string, 0, 2*len(res.scopes))
	for _, sc := range res.scopes {
		keys = append(keys, s.n.scope(sc), s.n.outstanding(sc))
	}
	member := res.id + ":" + strconv.FormatInt(res.cost, 10)
	crossed, err := settleScript.Run(ctx, s.rdb, keys, member, actual, tokenDelta, res.minute).Int64Slice()
	if err != nil {
		// The reservation expires by itself; the spend still reaches Postgres with the
		// request's spend record.
		return unavailable("tollgate could not settle the request in Redis", err)
	}
	for _, i := range crossed {
		sc := res.scopes[i-1]
		s.log.Warn("soft budget crossed", "scope", sc.kind, "id", sc.id)
	}
	return nil
}

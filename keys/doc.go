// Package keys is tollgate's virtual keys, teams, users, end users, budgets and rate
// limits, and LiteLLM's admin API for them (AdminHandler).
//
// # Where things live
//
// Postgres is the system of record (deploy/migrations/0001_keys.sql): keys (only their
// SHA-256, LiteLLM's scheme, so LiteLLM keys can be imported), teams, users, team
// memberships, end users, per-model key budgets. Money is integer micro-dollars.
//
// Redis is the hot copy, under a configurable prefix (see names in store_redis.go): one
// JSON record per key, already combined with its team and user (models, blocked flag,
// role); one hash per budget holder ("scope") with its limits and live counters;
// per-minute rate counters, read as a sliding window; a sorted set per scope of
// reservations in flight; and a pub/sub channel for invalidations.
//
// Each process keeps an in-process cache of keys it has seen and a bounded set of hashes
// Redis did not know.
//
// # The request path never reads Postgres
//
// Authenticate answers a recently seen key from the in-process cache (no network, no
// allocation) and any other key with one Redis round trip. Every admin change to a key,
// or to a team or user its record depends on, rewrites the affected records in Redis and
// publishes their hashes; every replica drops them from its cache at once, so a blocked,
// deleted, regenerated or narrowed key is refused everywhere within milliseconds. The
// cache ttl (Options.CacheTTL) bounds staleness if a message is ever lost, and a lost
// subscription drops the whole cache. Expiry is checked on every call against the expiry
// the record carries.
//
// When Redis has lost its data (restart without persistence, FLUSHDB, eviction), a
// lookup cannot tell a missing key from a deleted one. A "primed" flag settles it: it is
// set only after a full copy from Postgres, so a key missing from a primed Redis does not
// exist, and a key missing from an unprimed Redis is refused with ErrUnavailable (503,
// "rebuilding") while a background rebuild (one replica at a time, typically seconds)
// copies Postgres into Redis. Keys already in process caches keep working throughout.
// Admin changes and rebuilds are serialized by a Postgres advisory lock (shared by
// writers, exclusive for a rebuild), and a change reaches Redis inside its transaction,
// before commit: a rebuild never overwrites a newer change with older data, and a change
// Redis cannot take is rolled back rather than left half-applied.
//
// # Budgets and rate limits hold under concurrency
//
// Before a request goes upstream the caller reserves its worst-case cost (Reserve): one
// Lua script checks and reserves, atomically, against every budget that applies (the
// key's; its team's and the user's membership of the team, or for a key with no team its
// user's; the end user's; the key's budget for the model) and every rpm, tpm and
// max_parallel_requests limit. A request is admitted while spend plus reservations in
// flight is below the budget, so recorded spend can exceed a budget by at most one
// request's cost, however many replicas and requests race. While the rest of a budget is
// held by requests in flight, a request is refused with a 429 and retry-after (it may fit
// once they settle); once the budget is spent, with budget_exceeded. Settle replaces the
// reservation with the actual cost; Release frees it when the request failed; a
// reservation of a crashed process expires by itself. Postgres's spend totals are the
// sum of the spend records: the spend writer adds each record's cost (AddSpend) in the
// transaction that stores it, off the request path; a rebuild restores Redis's counters
// from them. budget_duration resets are done by one replica (a Postgres advisory lock).
//
// # Failure modes
//
// Redis down: requests fail closed with ErrUnavailable (503) by default; with
// Options.ServeCachedWhenRedisDown, recently verified keys keep working from the cache
// and requests are admitted without budget or rate-limit checks (flagged Unchecked).
// Postgres down: authentication, budgets and limits keep working from Redis; admin
// changes fail with ErrUnavailable; spend reaches Postgres with the spend records, which
// wait in the spend writer's spool until Postgres returns.
//
// # Errors
//
// Every error wraps one of the Err* kinds; APIError maps them to HTTP statuses and
// OpenAI error JSON in one place. Budget exhaustion is LiteLLM's 400 "budget_exceeded"
// ("Budget has been exceeded! Current cost: X, Max budget: Y"), not OpenAI's 429
// insufficient_quota: OpenAI SDKs retry 429s, and retrying a spent budget only wastes
// time. Rate limits are 429 with retry-after and x-ratelimit-* headers
// (LimitError.Headers).
package keys

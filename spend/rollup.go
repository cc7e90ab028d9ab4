package spend

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// rollupKey is a tollgate_spend_daily row's primary key: a UTC day and the record's
// key, team, user, end user and model alias.
type rollupKey struct {
	day                                    time.Time
	apiKey, teamID, userID, endUser, model string
}

// rollupSums are the totals a batch adds to one daily rollup row.
type rollupSums struct {
	spend, prompt, completion, cached, cacheCreation, reasoning int64
	requests, failed, costUnknown                               int64
}

// rollupRow is one row of a batch's rollups.
type rollupRow struct {
	key  rollupKey
	sums rollupSums
}

// rollups totals recs per daily rollup row, in key order.
func rollups(recs []Record) []rollupRow {
	index := make(map[rollupKey]int)
	var rows []rollupRow
	for i := range recs {
		r := &recs[i]
		start := r.Start.UTC()
		k := rollupKey{
			day:    time.Date(start.Year(), start.Month(), start.Day(), 0, 0, 0, 0, time.UTC),
			apiKey: r.KeyHash, teamID: r.TeamID, userID: r.UserID, endUser: r.EndUser, model: r.ModelAlias,
		}
		j, ok := index[k]
		if !ok {
			j = len(rows)
			index[k] = j
			rows = append(rows, rollupRow{key: k})
		}
		s := &rows[j].sums
		s.spend += r.CostMicros
		s.prompt += r.PromptTokens
		s.completion += r.CompletionTokens
		s.cached += r.CachedTokens
		s.cacheCreation += r.CacheCreationTokens
		s.reasoning += r.ReasoningTokens
		s.requests++
		if r.Status >= 400 {
			s.failed++
		}
		if !r.CostKnown {
			s.costUnknown++
		}
	}
	// Writers on several replicas update the same rows: taking their locks in one
	// order keeps them from deadlocking.
	slices.SortFunc(rows, func(a, b rollupRow) int {
		return cmp.Or(a.key.day.Compare(b.key.day), cmp.Compare(a.key.apiKey, b.key.apiKey),
			cmp.Compare(a.key.teamID, b.key.teamID), cmp.Compare(a.key.userID, b.key.userID),
			cmp.Compare(a.key.endUser, b.key.endUser), cmp.Compare(a.key.model, b.key.model))
	})
	return rows
}

// upsertRollups adds a batch's totals to tollgate_spend_daily, one array per column.
const upsertRollups = `
INSERT INTO ` + dailyTable + ` AS d (day, api_key, team_id, user_id, end_user, model,
	spend, prompt_tokens, completion_tokens, cached_tokens, cache_creation_tokens,
	reasoning_tokens, requests, failed_requests, cost_unknown_requests)
SELECT * FROM unnest($1::date[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
	$7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[],
	$13::bigint[], $14::bigint[], $15::bigint[])
ON CONFLICT (day, api_key, team_id, user_id, end_user, model) DO UPDATE SET
	spend = d.spend + excluded.spend,
	prompt_tokens = d.prompt_tokens + excluded.prompt_tokens,
	completion_tokens = d.completion_tokens + excluded.completion_tokens,
	cached_tokens = d.cached_tokens + excluded.cached_tokens,
	cache_creation_tokens = d.cache_creation_tokens + excluded.cache_creation_tokens,
	reasoning_tokens = d.reasoning_tokens + excluded.reasoning_tokens,
	requests = d.requests + excluded.requests,
	failed_requests = d.failed_requests + excluded.failed_requests,
	cost_unknown_requests = d.cost_unknown_requests + excluded.cost_unknown_requests`

// addToRollups adds recs, which the transaction has just inserted, to the daily
// rollups. Counting inserted records only is what keeps replays from counting twice.
func addToRollups(ctx context.Context, tx pgx.Tx, recs []Record) error {
	rows := rollups(recs)
	n := len(rows)
	days := make([]time.Time, n)
	text := [5][]string{}
	nums := [9][]int64{}
	for i := range text {
		text[i] = make([]string, n)
	}
	for i := range nums {
		nums[i] = make([]int64, n)
	}
	for i, r := range rows {
		k, s := r.key, r.sums
		days[i] = k.day
		text[0][i], text[1][i], text[2][i], text[3][i], text[4][i] = k.apiKey, k.teamID, k.userID, k.endUser, k.model
		for j, v := range [9]int64{s.spend, s.prompt, s.completion, s.cached, s.cacheCreation,
			s.reasoning, s.requests, s.failed, s.costUnknown} {
			nums[j][i] = v
		}
	}
	_, err := tx.Exec(ctx, upsertRollups, days, text[0], text[1], text[2], text[3], text[4],
		nums[0], nums[1], nums[2], nums[3], nums[4], nums[5], nums[6], nums[7], nums[8])
	return err
}

package spend

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
)

// apiFixture is a small, hand-checkable set of records behind a real HTTP server.
type apiFixture struct {
	srv        *httptest.Server
	keyA, keyB string // hashes of sk-alpha and sk-beta
}

func day(d, hour int) time.Time { return time.Date(2026, 3, d, hour, 0, 0, 0, time.UTC) }

func newAPIFixture(t *testing.T) *apiFixture {
	s := newTestSchema(t)
	f := &apiFixture{keyA: hashKey("sk-alpha"), keyB: hashKey("sk-beta")}
	rec := func(id, key, team, user, endUser, model string, spend, in, out int64, start time.Time) Record {
		return Record{RequestID: id, KeyHash: key, TeamID: team, UserID: user, EndUser: endUser,
			ModelAlias: model, ProviderModel: model + "-2026", Provider: "openai",
			PromptTokens: in, CompletionTokens: out, CostMicros: spend, CostKnown: true,
			Status: 200, Start: start, End: start.Add(time.Second)}
	}
	r5 := rec("r5", f.keyA, "", "u1", "", "m2", 0, 3, 0, day(2, 11))
	r5.CostKnown = false
	r4 := rec("r4", f.keyB, "t2", "u2", "e1", "m1", 250_000, 1, 1, day(2, 10))
	r4.Status, r4.ErrorCode = 500, "api_error"
	recs := []Record{
		rec("r1", f.keyA, "t1", "u1", "e1", "m1", 1_000_000, 10, 5, day(1, 9)),
		rec("r2", f.keyA, "t1", "u1", "e2", "m2", 2_500_000, 20, 10, day(1, 10)),
		rec("r3", f.keyB, "t2", "u2", "e1", "m1", 500_000, 5, 5, day(1, 11)),
		r4, r5,
		rec("r6", hashKey("sk-gamma"), "t1", "u3", "e2", "m1", 4_000_000, 100, 50, day(5, 0)),
	}
	// Request tags, for /spend/tags.
	recs[0].Tags = []string{"job:a", "team:x"}
	recs[1].Tags = []string{"job:a"}
	recs[2].Tags = []string{"job:b"}
	recs[5].Tags = []string{"job:a"}
	w := newTestWriter(t, s, fastOptions(t, t.TempDir()))
	for _, r := range recs {
		w.Enqueue(r)
	}
	closeWriter(t, w)

	f.srv = httptest.NewServer(NewAPI(s.pool, testLogger(testWriter{t})))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *apiFixture) get(t *testing.T, path string, query url.Values) (int, []byte) {
	t.Helper()
	resp, err := http.Get(f.srv.URL + path + "?" + query.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func TestSpendLogsAPI(t *testing.T) {
	f := newAPIFixture(t)
	tests := []struct {
		name  string
		query url.Values
		want  []string // request ids, in order
	}{
		{"all, newest first", url.Values{}, []string{"r6", "r5", "r4", "r3", "r2", "r1"}},
		{"by key", url.Values{"api_key": {"sk-alpha"}}, []string{"r5", "r2", "r1"}},
		{"by key hash", url.Values{"api_key": {f.keyB}}, []string{"r4", "r3"}},
		{"by user", url.Values{"user_id": {"u2"}}, []string{"r4", "r3"}},
		{"by team", url.Values{"team_id": {"t1"}}, []string{"r6", "r2", "r1"}},
		{"by model alias", url.Values{"model": {"m2"}}, []string{"r5", "r2"}},
		{"by end user", url.Values{"end_user": {"e2"}}, []string{"r6", "r2"}},
		{"by request id", url.Values{"request_id": {"r3"}}, []string{"r3"}},
		{"by day range", url.Values{"start_date": {"2026-03-02"}, "end_date": {"2026-03-02"}}, []string{"r5", "r4"}},
		{"by instants, inclusive", url.Values{"start_date": {"2026-03-01T10:00:00Z"}, "end_date": {"2026-03-02T10:00:00Z"}},
			[]string{"r4", "r3", "r2"}},
		{"filters combine", url.Values{"api_key": {"sk-alpha"}, "end_date": {"2026-03-01"}, "model": {"m1"}}, []string{"r1"}},
		{"page 2 of 2-row pages", url.Values{"page": {"2"}, "page_size": {"2"}}, []string{"r4", "r3"}},
		{"past the last page", url.Values{"page": {"4"}, "page_size": {"2"}}, []string{}},
		{"no match", url.Values{"user_id": {"nobody"}}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := f.get(t, "/spend/logs", tt.query)
			if status != http.StatusOK {
				t.Fatalf("status %d: %s", status, body)
			}
			var rows []struct {
				RequestID string `json:"request_id"`
			}
			if err := json.Unmarshal(body, &rows); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			got := []string{}
			for _, r := range rows {
				got = append(got, r.RequestID)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("request ids (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("row shape", func(t *testing.T) {
		_, body := f.get(t, "/spend/logs", url.Values{"request_id": {"r4"}})
		want := `[{"request_id":"r4","call_type":"","api_key":"KEYB","spend":0.25,"total_tokens":2,
			"prompt_tokens":1,"completion_tokens":1,"startTime":"2026-03-02T10:00:00Z",
			"endTime":"2026-03-02T10:00:01Z","completionStartTime":null,"model":"m1-2026","model_id":"",
			"model_group":"m1","custom_llm_provider":"openai","api_base":"","user":"u2","end_user":"e1",
			"team_id":"t2","metadata":{},"request_tags":[],"status":"failure","key_alias":"",
			"spend_micros":250000,"cost_known":true,"usage_estimated":false,"cached_tokens":0,
			"cache_creation_tokens":0,"reasoning_tokens":0,"status_code":500,"error_code":"api_error",
			"attempts":0,"stream":false}]`
		want = strings.ReplaceAll(want, "KEYB", f.keyB)
		if diff := cmp.Diff(decodeJSON(t, []byte(want)), decodeJSON(t, body)); diff != "" {
			t.Errorf("/spend/logs row (-want +got):\n%s", diff)
		}
	})

	for _, bad := range []url.Values{
		{"page": {"0"}}, {"page_size": {"1001"}}, {"page_size": {"ten"}},
		{"start_date": {"yesterday"}}, {"end_date": {"2026-13-01"}},
	} {
		t.Run("rejects "+bad.Encode(), func(t *testing.T) {
			status, body := f.get(t, "/spend/logs", bad)
			if status != http.StatusBadRequest || !strings.Contains(string(body), `"invalid_request_error"`) {
				t.Errorf("status %d, body %s; want 400 with an OpenAI error", status, body)
			}
		})
	}
}

func TestSpendTagsAPI(t *testing.T) {
	f := newAPIFixture(t)
	for _, tt := range []struct {
		name  string
		query url.Values
		want  string
	}{
		{"all time, most spent first", url.Values{}, `[
			{"individual_request_tag":"job:a","log_count":3,"total_spend":7.5},
			{"individual_request_tag":"team:x","log_count":1,"total_spend":1},
			{"individual_request_tag":"job:b","log_count":1,"total_spend":0.5}]`},
		{"1 March", url.Values{"start_date": {"2026-03-01"}, "end_date": {"2026-03-01"}}, `[
			{"individual_request_tag":"job:a","log_count":2,"total_spend":3.5},
			{"individual_request_tag":"team:x","log_count":1,"total_spend":1},
			{"individual_request_tag":"job:b","log_count":1,"total_spend":0.5}]`},
		{"from 2 March", url.Values{"start_date": {"2026-03-02"}}, `[
			{"individual_request_tag":"job:a","log_count":1,"total_spend":4}]`},
		{"no tagged request", url.Values{"start_date": {"2026-03-02"}, "end_date": {"2026-03-04"}}, `[]`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, body := f.get(t, "/spend/tags", tt.query)
			if status != http.StatusOK {
				t.Fatalf("status %d: %s", status, body)
			}
			if diff := cmp.Diff(decodeJSON(t, []byte(tt.want)), decodeJSON(t, body)); diff != "" {
				t.Errorf("/spend/tags (-want +got):\n%s", diff)
			}
		})
	}
	if status, body := f.get(t, "/spend/tags", url.Values{"start_date": {"last week"}}); status != http.StatusBadRequest ||
		!strings.Contains(string(body), `"start_date"`) {
		t.Errorf("bad start_date: status %d, body %s; want 400 naming start_date", status, body)
	}
}

func decodeJSON(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return v
}

func TestGlobalSpendReportAPI(t *testing.T) {
	f := newAPIFixture(t)
	// 1 and 2 March; r6 (5 March) is outside the range.
	detail := func(model, key string, spend float64, tokens int) string {
		return `{"model":"` + model + `","api_key":"` + key + `","spend":` + jsonNum(spend) +
			`,"total_tokens":` + jsonNum(float64(tokens)) + `,"requests":1}`
	}
	tests := []struct {
		groupBy string
		want    string
	}{
		{"api_key", `[
			{"api_key":"KEYA","total_cost":3.5,"total_input_tokens":33,"total_output_tokens":15,"requests":3,
			 "model_details":[{"model":"m1","total_cost":1,"total_input_tokens":10,"total_output_tokens":5,"requests":1},
			                  {"model":"m2","total_cost":2.5,"total_input_tokens":23,"total_output_tokens":10,"requests":2}]},
			{"api_key":"KEYB","total_cost":0.75,"total_input_tokens":6,"total_output_tokens":6,"requests":2,
			 "model_details":[{"model":"m1","total_cost":0.75,"total_input_tokens":6,"total_output_tokens":6,"requests":2}]}]`},
		{"user", `[
			{"user_id":"u1","total_cost":3.5,"total_input_tokens":33,"total_output_tokens":15,"requests":3,
			 "model_details":[{"model":"m1","total_cost":1,"total_input_tokens":10,"total_output_tokens":5,"requests":1},
			                  {"model":"m2","total_cost":2.5,"total_input_tokens":23,"total_output_tokens":10,"requests":2}]},
			{"user_id":"u2","total_cost":0.75,"total_input_tokens":6,"total_output_tokens":6,"requests":2,
			 "model_details":[{"model":"m1","total_cost":0.75,"total_input_tokens":6,"total_output_tokens":6,"requests":2}]}]`},
		{"model", `[
			{"model":"m2","total_cost":2.5,"total_input_tokens":23,"total_output_tokens":10,"requests":2},
			{"model":"m1","total_cost":1.75,"total_input_tokens":16,"total_output_tokens":11,"requests":3}]`},
		{"team", `[
			{"group_by_day":"2026-03-01","teams":[
				{"team_name":"t1","team_id":"t1","total_spend":3.5,"requests":2,"metadata":[` +
			detail("m1", "KEYA", 1, 15) + `,` + detail("m2", "KEYA", 2.5, 30) + `]},
				{"team_name":"t2","team_id":"t2","total_spend":0.5,"requests":1,"metadata":[` + detail("m1", "KEYB", 0.5, 10) + `]}]},
			{"group_by_day":"2026-03-02","teams":[
				{"team_name":"","team_id":"","total_spend":0,"requests":1,"metadata":[` + detail("m2", "KEYA", 0, 3) + `]},
				{"team_name":"t2","team_id":"t2","total_spend":0.25,"requests":1,"metadata":[` + detail("m1", "KEYB", 0.25, 2) + `]}]}]`},
		{"customer", `[
			{"group_by_day":"2026-03-01","customers":[
				{"customer":"e1","total_spend":1.5,"requests":2,"metadata":[` + detail("m1", "KEYA", 1, 15) + `,` + detail("m1", "KEYB", 0.5, 10) + `]},
				{"customer":"e2","total_spend":2.5,"requests":1,"metadata":[` + detail("m2", "KEYA", 2.5, 30) + `]}]},
			{"group_by_day":"2026-03-02","customers":[
				{"customer":"","total_spend":0,"requests":1,"metadata":[` + detail("m2", "KEYA", 0, 3) + `]},
				{"customer":"e1","total_spend":0.25,"requests":1,"metadata":[` + detail("m1", "KEYB", 0.25, 2) + `]}]}]`},
		{"day", `[
			{"group_by_day":"2026-03-01","total_spend":4,"total_input_tokens":35,"total_output_tokens":20,"requests":3,
			 "metadata":[` + detail("m1", "KEYA", 1, 15) + `,` + detail("m1", "KEYB", 0.5, 10) + `,` + detail("m2", "KEYA", 2.5, 30) + `]},
			{"group_by_day":"2026-03-02","total_spend":0.25,"total_input_tokens":4,"total_output_tokens":1,"requests":2,
			 "metadata":[` + detail("m1", "KEYB", 0.25, 2) + `,` + detail("m2", "KEYA", 0, 3) + `]}]`},
	}
	tests = append(tests, struct{ groupBy, want string }{"end_user", tests[4].want})
	keys := strings.NewReplacer("KEYA", f.keyA, "KEYB", f.keyB)
	for _, tt := range tests {
		t.Run(tt.groupBy, func(t *testing.T) {
			status, body := f.get(t, "/global/spend/report", url.Values{
				"start_date": {"2026-03-01"}, "end_date": {"2026-03-02"}, "group_by": {tt.groupBy}})
			if status != http.StatusOK {
				t.Fatalf("status %d: %s", status, body)
			}
			if diff := cmp.Diff(decodeJSON(t, []byte(keys.Replace(tt.want))), decodeJSON(t, body)); diff != "" {
				t.Errorf("report (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("team is the default grouping", func(t *testing.T) {
		_, def := f.get(t, "/global/spend/report", url.Values{"start_date": {"2026-03-01"}, "end_date": {"2026-03-02"}})
		_, team := f.get(t, "/global/spend/report", url.Values{"start_date": {"2026-03-01"}, "end_date": {"2026-03-02"}, "group_by": {"team"}})
		if diff := cmp.Diff(decodeJSON(t, team), decodeJSON(t, def)); diff != "" {
			t.Errorf("default grouping (-team +default):\n%s", diff)
		}
	})

	for _, bad := range []url.Values{
		{"start_date": {"2026-03-01"}},
		{"start_date": {"2026-03-01"}, "end_date": {"2026-03-02"}, "group_by": {"planet"}},
		{"start_date": {"March"}, "end_date": {"2026-03-02"}},
	} {
		t.Run("rejects "+bad.Encode(), func(t *testing.T) {
			status, body := f.get(t, "/global/spend/report", bad)
			if status != http.StatusBadRequest {
				t.Errorf("status %d, body %s; want 400", status, body)
			}
		})
	}
}

func jsonNum(f float64) string {
	b, _ := json.Marshal(f)
	return string(b)
}

// TestSpendLogsFiltersUseIndexes plans each /spend/logs filter's WHERE clause as a
// prepared statement's generic plan (what a parameter gets once Postgres caches the
// plan), with sequential scans priced out and without the ORDER BY, so that only the
// filter's own index can serve it: a partial index whose predicate the query does not
// imply cannot, and the plan shows a sequential scan instead.
func TestSpendLogsFiltersUseIndexes(t *testing.T) {
	s := newTestSchema(t)
	w := newTestWriter(t, s, fastOptions(t, t.TempDir()))
	for _, r := range makeRecords(0, 100, testBase) {
		w.Enqueue(r)
	}
	closeWriter(t, w)
	ctx := context.Background()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SET enable_seqscan = off; SET plan_cache_mode = force_generic_plan`); err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct {
		q     url.Values
		index string
	}{
		{url.Values{"api_key": {"sk-test-1"}}, "tollgate_spend_logs_key"},
		{url.Values{"team_id": {"team-a"}}, "tollgate_spend_logs_team"},
		{url.Values{"user_id": {"user-1"}}, "tollgate_spend_logs_user"},
		{url.Values{"end_user": {"customer-1"}}, "tollgate_spend_logs_end_user"},
		{url.Values{"model": {"gpt-5.5"}}, "tollgate_spend_logs_model"},
		{url.Values{"request_id": {"req-0000007"}}, "tollgate_spend_logs_request"},
		{url.Values{"start_date": {"2026-03-14"}}, "tollgate_spend_logs_pkey"},
	} {
		sql, args, err := logsQuery(tc.q)
		if err != nil {
			t.Fatal(err)
		}
		_, where, _ := strings.Cut(sql, " WHERE ")
		where, _, _ = strings.Cut(where, " ORDER BY ")
		name := fmt.Sprintf("filter_%d", i)
		if _, err := conn.Conn().Prepare(ctx, name, `SELECT count(*) FROM `+logsTable+` WHERE `+where); err != nil {
			t.Fatal(err)
		}
		// EXECUTE takes literals, not parameters; the last two arguments are the page's.
		params := make([]string, len(args)-2)
		for j, a := range args[:len(params)] {
			switch v := a.(type) {
			case string:
				params[j] = "'" + strings.ReplaceAll(v, "'", "''") + "'"
			case time.Time:
				params[j] = "'" + v.Format(time.RFC3339Nano) + "'"
			default:
				t.Fatalf("argument %T", a)
			}
		}
		rows, err := conn.Query(ctx, `EXPLAIN EXECUTE `+name+`(`+strings.Join(params, ", ")+`)`)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		// Each month's partition has its own copy of the index, named after the parent's.
		plan := strings.Join(lines, "\n")
		if strings.Contains(plan, "Seq Scan") || !strings.Contains(plan, strings.TrimPrefix(tc.index, "tollgate_spend_logs")) {
			t.Errorf("/spend/logs?%s does not use %s:\n%s", tc.q.Encode(), tc.index, plan)
		}
	}
}

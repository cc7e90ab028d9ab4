package spend

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tollgate-dev/tollgate/translate"
)

// API serves LiteLLM's spend endpoints from Postgres:
//
//	GET /spend/logs            spend log rows, newest first, filtered and paged
//	GET /global/spend/report   spend grouped by key, team, user, end user, model or day
//
// It does no authentication: mount it behind the admin server's authorisation, which
// must admit only callers allowed to read every key's spend.
type API struct {
	pool *pgxpool.Pool
	log  *slog.Logger
}

// NewAPI returns the spend API over pool.
func NewAPI(pool *pgxpool.Pool, log *slog.Logger) *API {
	if log == nil {
		log = slog.Default()
	}
	return &API{pool: pool, log: log.With("component", "spend-api")}
}

// ServeHTTP routes /spend/logs, /spend/tags and /global/spend/report.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/spend/logs":
		a.Logs(w, r)
	case "/global/spend/report":
		a.Report(w, r)
	case "/spend/tags":
		a.Tags(w, r)
	default:
		writeError(w, translate.StatusError(http.StatusNotFound, "no such spend endpoint: "+r.URL.Path))
	}
}

// Page sizes of /spend/logs.
const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// logFilters are /spend/logs's equality filters besides api_key. The indexes on user,
// team and end user leave out the rows where those are empty (migration 0011), so their
// conditions also say the value is not empty: the planner uses a partial index only
// when the query implies its predicate, which a parameter alone does not.
var logFilters = []struct{ param, cond string }{
	{"user_id", "user_id = $%d AND user_id <> ''"},
	{"team_id", "team_id = $%d AND team_id <> ''"},
	{"end_user", "end_user = $%d AND end_user <> ''"},
	{"request_id", "request_id = $%d"},
	{"model", "model_group = $%d"},
}

// Logs serves GET /spend/logs. Query parameters, all optional and combined with AND:
//
//	api_key     a key ("sk-...", hashed here) or its SHA-256 hex hash
//	user_id, team_id, end_user, request_id
//	model       the model alias the client asked for (model_group)
//	start_date  YYYY-MM-DD (from that UTC day's start) or an RFC 3339 time
//	end_date    YYYY-MM-DD (through that UTC day's end) or an RFC 3339 time (inclusive)
//	page        1-based page number (1); page_size rows per page (100, at most 1000)
//
// The response is a JSON array of rows shaped like LiteLLM's LiteLLM_SpendLogs rows
// (spend in USD, startTime, "user", status "success"/"failure"), plus tollgate's own
// columns, newest first. Unlike LiteLLM, a date range never switches the response to
// per-day totals: /global/spend/report serves those.
func (a *API) Logs(w http.ResponseWriter, r *http.Request) {
	if !allowGET(w, r) {
		return
	}
	sql, args, err := logsQuery(r.URL.Query())
	if err != nil {
		writeError(w, err)
		return
	}
	rows, err := a.pool.Query(r.Context(), sql, args...)
	if err != nil {
		a.internalError(w, "query spend logs", err)
		return
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (logRow, error) {
		rec, err := scanRecord(row)
		return newLogRow(&rec), err
	})
	if err != nil {
		a.internalError(w, "read spend logs", err)
		return
	}
	writeJSON(w, out)
}

// where is a query's conditions and their arguments, the parameters numbered in order.
type where struct {
	conds []string
	args  []any
}

// add adds cond, whose "$%d" is arg's parameter.
func (w *where) add(cond string, arg any) {
	w.args = append(w.args, arg)
	w.conds = append(w.conds, fmt.Sprintf(cond, len(w.args)))
}

// dates adds start_date and end_date of q (dateRange) as bounds on start_time. A bound
// is a condition only when given, so that Postgres skips the months outside.
func (w *where) dates(q url.Values) error {
	from, to, err := dateRange(q.Get("start_date"), q.Get("end_date"))
	if err != nil {
		return err
	}
	if !from.IsZero() {
		w.add("start_time >= $%d", from)
	}
	if !to.IsZero() {
		w.add("start_time < $%d", to)
	}
	return nil
}

// sql is the WHERE clause, or "" when there is no condition.
func (w *where) sql() string {
	if len(w.conds) == 0 {
		return ""
	}
	return ` WHERE ` + strings.Join(w.conds, " AND ")
}

// logsQuery is the query /spend/logs runs for the parameters q, and its arguments.
func logsQuery(q url.Values) (sql string, args []any, err error) {
	var w where
	if key := q.Get("api_key"); key != "" {
		w.add("api_key = $%d", hashKey(key))
	}
	for _, f := range logFilters {
		if v := q.Get(f.param); v != "" {
			w.add(f.cond, v)
		}
	}
	if err := w.dates(q); err != nil {
		return "", nil, err
	}
	page, err := intParam(q.Get("page"), "page", 1, 1, 1<<30)
	if err != nil {
		return "", nil, err
	}
	size, err := intParam(q.Get("page_size"), "page_size", defaultPageSize, 1, maxPageSize)
	if err != nil {
		return "", nil, err
	}
	sql = `SELECT ` + strings.Join(logColumns, ", ") + ` FROM ` + logsTable + w.sql()
	args = append(w.args, size, (page-1)*size)
	sql += fmt.Sprintf(` ORDER BY start_time DESC, request_id DESC LIMIT $%d OFFSET $%d`, len(args)-1, len(args))
	return sql, args, nil
}

// scanRecord reads a row of logColumns.
func scanRecord(row pgx.Row) (Record, error) {
	var (
		r                Record
		status, attempts int32
		totalTokens      int64
		firstToken       *time.Time
		tags             []string
		metadata         []byte
	)
	err := row.Scan(&r.RequestID, &r.CallType, &r.KeyHash, &r.KeyAlias, &r.TeamID, &r.UserID, &r.EndUser,
		&r.ModelAlias, &r.DeploymentID, &r.Provider, &r.ProviderModel, &r.APIBase,
		&r.PromptTokens, &r.CompletionTokens, &totalTokens, &r.CachedTokens,
		&r.CacheCreationTokens, &r.ReasoningTokens, &r.CostMicros, &r.CostKnown, &r.UsageEstimated,
		&status, &r.ErrorCode, &r.Start, &r.End, &firstToken,
		&attempts, &r.Stream, &tags, &metadata)
	if err != nil {
		return Record{}, err
	}
	r.Status, r.Attempts = int(status), int(attempts)
	r.Start, r.End = r.Start.UTC(), r.End.UTC()
	if firstToken != nil {
		r.FirstToken = firstToken.UTC()
	}
	if len(tags) > 0 {
		r.Tags = tags
	}
	if string(metadata) != "{}" {
		r.Metadata = metadata
	}
	return r, nil
}

// logRow is a /spend/logs row: LiteLLM's LiteLLM_SpendLogs fields first, then
// tollgate's.
type logRow struct {
	RequestID           string          `json:"request_id"`
	CallType            string          `json:"call_type"`
	APIKey              string          `json:"api_key"`
	Spend               float64         `json:"spend"`
	TotalTokens         int64           `json:"total_tokens"`
	PromptTokens        int64           `json:"prompt_tokens"`
	CompletionTokens    int64           `json:"completion_tokens"`
	StartTime           time.Time       `json:"startTime"`
	EndTime             time.Time       `json:"endTime"`
	CompletionStartTime *time.Time      `json:"completionStartTime"`
	Model               string          `json:"model"`
	ModelID             string          `json:"model_id"`
	ModelGroup          string          `json:"model_group"`
	CustomLLMProvider   string          `json:"custom_llm_provider"`
	APIBase             string          `json:"api_base"`
	User                string          `json:"user"`
	EndUser             string          `json:"end_user"`
	TeamID              string          `json:"team_id"`
	Metadata            json.RawMessage `json:"metadata"`
	RequestTags         []string        `json:"request_tags"`
	Status              string          `json:"status"`

	KeyAlias            string `json:"key_alias"`
	SpendMicros         int64  `json:"spend_micros"`
	CostKnown           bool   `json:"cost_known"`
	UsageEstimated      bool   `json:"usage_estimated"`
	CachedTokens        int64  `json:"cached_tokens"`
	CacheCreationTokens int64  `json:"cache_creation_tokens"`
	ReasoningTokens     int64  `json:"reasoning_tokens"`
	StatusCode          int    `json:"status_code"`
	ErrorCode           string `json:"error_code"`
	Attempts            int    `json:"attempts"`
	Stream              bool   `json:"stream"`
}

func newLogRow(r *Record) logRow {
	row := logRow{
		RequestID: r.RequestID, CallType: r.CallType, APIKey: r.KeyHash,
		Spend:       usd(r.CostMicros),
		TotalTokens: r.PromptTokens + r.CompletionTokens, PromptTokens: r.PromptTokens, CompletionTokens: r.CompletionTokens,
		StartTime: r.Start, EndTime: r.End,
		Model: r.ProviderModel, ModelID: r.DeploymentID, ModelGroup: r.ModelAlias,
		CustomLLMProvider: r.Provider, APIBase: r.APIBase,
		User: r.UserID, EndUser: r.EndUser, TeamID: r.TeamID,
		Metadata: r.Metadata, RequestTags: r.Tags, Status: "success",

		KeyAlias: r.KeyAlias, SpendMicros: r.CostMicros, CostKnown: r.CostKnown, UsageEstimated: r.UsageEstimated,
		CachedTokens: r.CachedTokens, CacheCreationTokens: r.CacheCreationTokens, ReasoningTokens: r.ReasoningTokens,
		StatusCode: r.Status, ErrorCode: r.ErrorCode, Attempts: r.Attempts, Stream: r.Stream,
	}
	if !r.FirstToken.IsZero() {
		t := r.FirstToken
		row.CompletionStartTime = &t
	}
	if row.Metadata == nil {
		row.Metadata = json.RawMessage("{}")
	}
	if row.RequestTags == nil {
		row.RequestTags = []string{}
	}
	if r.Status >= 400 {
		row.Status = "failure"
	}
	return row
}

// usd converts micro-dollars to LiteLLM's float dollars.
func usd(micros int64) float64 { return float64(micros) / 1e6 }

// Report groupings: LiteLLM's team, customer and api_key, and tollgate's user, model
// and day. end_user is customer's other name.
var reportGroups = map[string]string{
	"team": "team_id", "customer": "end_user", "end_user": "end_user", "api_key": "api_key",
	"user": "user_id", "model": "model", "day": "",
}

// Report serves GET /global/spend/report from the daily rollups. start_date and
// end_date (YYYY-MM-DD, UTC, both required and inclusive) bound the days; group_by is
// one of team (the default, as in LiteLLM), customer or end_user, api_key, user, model
// or day. Spend is in USD. The shapes follow LiteLLM's:
//
//	team:             [{"group_by_day", "teams": [{"team_name", "team_id", "total_spend", "requests", "metadata": [per model and key]}]}]
//	customer/end_user:[{"group_by_day", "customers": [{"customer", "total_spend", "requests", "metadata": [...]}]}]
//	day:              [{"group_by_day", "total_spend", "total_input_tokens", "total_output_tokens", "requests", "metadata": [...]}]
//	api_key:          [{"api_key", "total_cost", "total_input_tokens", "total_output_tokens", "requests", "model_details": [per model]}]
//	user:             the same with "user_id"; model: the same with "model" and no details
//
// Days are "YYYY-MM-DD". LiteLLM's team_name is its team alias; here it is the team id
// (team aliases live with the keys). Flat groups are ordered by cost, highest first.
func (a *API) Report(w http.ResponseWriter, r *http.Request) {
	if !allowGET(w, r) {
		return
	}
	q := r.URL.Query()
	group := cmp.Or(q.Get("group_by"), "team")
	column, ok := reportGroups[group]
	if !ok {
		writeError(w, paramError("group_by", "group_by must be one of team, customer, end_user, api_key, user, model, day"))
		return
	}
	if q.Get("start_date") == "" || q.Get("end_date") == "" {
		writeError(w, paramError("start_date", "start_date and end_date are required (YYYY-MM-DD)"))
		return
	}
	from, err := parseDay(q.Get("start_date"), "start_date")
	if err != nil {
		writeError(w, err)
		return
	}
	to, err := parseDay(q.Get("end_date"), "end_date")
	if err != nil {
		writeError(w, err)
		return
	}
	var out any
	switch group {
	case "api_key", "user", "model":
		out, err = a.flatReport(r.Context(), group, column, from, to)
	default:
		out, err = a.dailyReport(r.Context(), group, column, from, to)
	}
	if err != nil {
		a.internalError(w, "spend report", err)
		return
	}
	writeJSON(w, out)
}

// tagSpend is one request tag's line of /spend/tags, LiteLLM's names.
type tagSpend struct {
	Tag        string  `json:"individual_request_tag"`
	LogCount   int64   `json:"log_count"`
	TotalSpend float64 `json:"total_spend"`
}

// Tags serves GET /spend/tags (LiteLLM's): each request tag's request count and spend in
// dollars, most spent first, over start_date to end_date (either may be left out, as in
// /spend/logs). A request with several tags counts under each.
func (a *API) Tags(w http.ResponseWriter, r *http.Request) {
	if !allowGET(w, r) {
		return
	}
	var cond where
	if err := cond.dates(r.URL.Query()); err != nil {
		writeError(w, err)
		return
	}
	rows, err := a.pool.Query(r.Context(), `SELECT tag, count(*), sum(spend)::bigint FROM `+logsTable+
		`, jsonb_array_elements_text(request_tags) AS tag`+cond.sql()+` GROUP BY tag ORDER BY 3 DESC, 1`, cond.args...)
	if err != nil {
		a.internalError(w, "spend by tag", err)
		return
	}
	out := []tagSpend{}
	var t tagSpend
	var micros int64
	if _, err := pgx.ForEachRow(rows, []any{&t.Tag, &t.LogCount, &micros}, func() error {
		t.TotalSpend = usd(micros)
		out = append(out, t)
		return nil
	}); err != nil {
		a.internalError(w, "spend by tag", err)
		return
	}
	writeJSON(w, out)
}

// reportTotals are summed rollup columns.
type reportTotals struct {
	spend, input, output, requests int64
}

func (t *reportTotals) add(o reportTotals) {
	t.spend += o.spend
	t.input += o.input
	t.output += o.output
	t.requests += o.requests
}

type modelDetail struct {
	Model        string  `json:"model"`
	TotalCost    float64 `json:"total_cost"`
	InputTokens  int64   `json:"total_input_tokens"`
	OutputTokens int64   `json:"total_output_tokens"`
	Requests     int64   `json:"requests"`
}

type flatEntry struct {
	APIKey       *string       `json:"api_key,omitempty"`
	UserID       *string       `json:"user_id,omitempty"`
	Model        *string       `json:"model,omitempty"`
	TotalCost    float64       `json:"total_cost"`
	InputTokens  int64         `json:"total_input_tokens"`
	OutputTokens int64         `json:"total_output_tokens"`
	Requests     int64         `json:"requests"`
	ModelDetails []modelDetail `json:"model_details,omitempty"`

	name   string // the key, user or model the entry totals
	micros int64
}

// flatReport totals the days per key, user or model, with per-model details.
func (a *API) flatReport(ctx context.Context, group, column string, from, to time.Time) ([]flatEntry, error) {
	rows, err := a.pool.Query(ctx, `SELECT `+column+`, model, sum(spend)::bigint, sum(prompt_tokens)::bigint,
		sum(completion_tokens)::bigint, sum(requests)::bigint
		FROM tollgate_spend_daily WHERE day BETWEEN $1 AND $2 GROUP BY 1, 2 ORDER BY 1, 2`, from, to)
	if err != nil {
		return nil, err
	}
	out := []flatEntry{}
	var (
		name, model string
		t           reportTotals
	)
	_, err = pgx.ForEachRow(rows, []any{&name, &model, &t.spend, &t.input, &t.output, &t.requests}, func() error {
		if len(out) == 0 || out[len(out)-1].name != name {
			e := flatEntry{name: name}
			v := name
			switch group {
			case "api_key":
				e.APIKey = &v
			case "user":
				e.UserID = &v
			case "model":
				e.Model = &v
			}
			out = append(out, e)
		}
		e := &out[len(out)-1]
		e.micros += t.spend
		e.InputTokens += t.input
		e.OutputTokens += t.output
		e.Requests += t.requests
		if group != "model" {
			e.ModelDetails = append(e.ModelDetails, modelDetail{model, usd(t.spend), t.input, t.output, t.requests})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].TotalCost = usd(out[i].micros)
	}
	slices.SortStableFunc(out, func(a, b flatEntry) int { return cmp.Compare(b.micros, a.micros) })
	return out, nil
}

type spendDetail struct {
	Model       string  `json:"model"`
	APIKey      string  `json:"api_key"`
	Spend       float64 `json:"spend"`
	TotalTokens int64   `json:"total_tokens"`
	Requests    int64   `json:"requests"`
}

type groupSpend struct {
	TeamName   *string       `json:"team_name,omitempty"`
	TeamID     *string       `json:"team_id,omitempty"`
	Customer   *string       `json:"customer,omitempty"`
	TotalSpend float64       `json:"total_spend"`
	Requests   int64         `json:"requests"`
	Metadata   []spendDetail `json:"metadata"`

	name   string // the team or end user the entry totals
	micros int64
}

type dayEntry struct {
	Day          string        `json:"group_by_day"`
	Teams        []groupSpend  `json:"teams,omitempty"`
	Customers    []groupSpend  `json:"customers,omitempty"`
	TotalSpend   *float64      `json:"total_spend,omitempty"`
	InputTokens  *int64        `json:"total_input_tokens,omitempty"`
	OutputTokens *int64        `json:"total_output_tokens,omitempty"`
	Requests     *int64        `json:"requests,omitempty"`
	Metadata     []spendDetail `json:"metadata,omitempty"`
}

// dailyReport totals each day per team or end user (or the whole day), with details
// per model and key.
func (a *API) dailyReport(ctx context.Context, group, column string, from, to time.Time) ([]dayEntry, error) {
	dim := "''"
	if column != "" {
		dim = column
	}
	rows, err := a.pool.Query(ctx, `SELECT day, `+dim+`, model, api_key, sum(spend)::bigint, sum(prompt_tokens)::bigint,
		sum(completion_tokens)::bigint, sum(requests)::bigint
		FROM tollgate_spend_daily WHERE day BETWEEN $1 AND $2 GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`, from, to)
	if err != nil {
		return nil, err
	}
	out := []dayEntry{}
	var (
		day              time.Time
		name, model, key string
		t                reportTotals
		dayTotal         reportTotals
	)
	finishDay := func() {
		if len(out) == 0 {
			return
		}
		d := &out[len(out)-1]
		for _, groups := range [][]groupSpend{d.Teams, d.Customers} {
			for i := range groups {
				groups[i].TotalSpend = usd(groups[i].micros)
			}
		}
		if group == "day" {
			spend, in, outTok, req := usd(dayTotal.spend), dayTotal.input, dayTotal.output, dayTotal.requests
			d.TotalSpend, d.InputTokens, d.OutputTokens, d.Requests = &spend, &in, &outTok, &req
		}
		dayTotal = reportTotals{}
	}
	_, err = pgx.ForEachRow(rows, []any{&day, &name, &model, &key, &t.spend, &t.input, &t.output, &t.requests}, func() error {
		ds := day.Format(time.DateOnly)
		if len(out) == 0 || out[len(out)-1].Day != ds {
			finishDay()
			out = append(out, dayEntry{Day: ds})
		}
		d := &out[len(out)-1]
		detail := spendDetail{Model: model, APIKey: key, Spend: usd(t.spend), TotalTokens: t.input + t.output, Requests: t.requests}
		dayTotal.add(t)
		var groups *[]groupSpend
		switch group {
		case "day":
			d.Metadata = append(d.Metadata, detail)
			return nil
		case "team":
			groups = &d.Teams
		default:
			groups = &d.Customers
		}
		if n := len(*groups); n == 0 || (*groups)[n-1].name != name {
			v := name
			g := groupSpend{name: name}
			if group == "team" {
				g.TeamName, g.TeamID = &v, &v
			} else {
				g.Customer = &v
			}
			*groups = append(*groups, g)
		}
		g := &(*groups)[len(*groups)-1]
		g.micros += t.spend
		g.Requests += t.requests
		g.Metadata = append(g.Metadata, detail)
		return nil
	})
	if err != nil {
		return nil, err
	}
	finishDay()
	return out, nil
}

// hashKey turns a virtual key into the hash the spend logs hold (SHA-256 hex, as
// package keys and LiteLLM store it); anything not shaped like a key is taken to be a
// hash already.
func hashKey(key string) string {
	if !strings.HasPrefix(key, "sk-") {
		return strings.ToLower(key)
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// dateRange parses /spend/logs's start_date and end_date into a half-open interval
// [from, to); a zero bound is open.
func dateRange(start, end string) (from, to time.Time, err error) {
	if start != "" {
		if from, _, err = parseInstant(start, "start_date"); err != nil {
			return
		}
	}
	if end != "" {
		var isDay bool
		if to, isDay, err = parseInstant(end, "end_date"); err != nil {
			return
		}
		if isDay {
			to = to.AddDate(0, 0, 1) // through the end of that day
		} else {
			to = to.Add(time.Microsecond) // inclusive, at Postgres's precision
		}
	}
	return from, to, nil
}

func parseInstant(s, param string) (t time.Time, isDay bool, err error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, true, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), false, nil
	}
	return time.Time{}, false, paramError(param, param+" must be YYYY-MM-DD or an RFC 3339 time")
}

func parseDay(s, param string) (time.Time, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, paramError(param, param+" must be YYYY-MM-DD")
	}
	return t, nil
}

func intParam(s, param string, def, lo, hi int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, paramError(param, fmt.Sprintf("%s must be an integer from %d to %d", param, lo, hi))
	}
	return n, nil
}

func paramError(param, msg string) *translate.APIError {
	e := translate.StatusError(http.StatusBadRequest, msg)
	e.Param = param
	return e
}

func allowGET(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	writeError(w, translate.StatusError(http.StatusMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path))
	return false
}

func (a *API) internalError(w http.ResponseWriter, op string, err error) {
	if errors.Is(err, context.Canceled) {
		return // the client went away
	}
	a.log.Error("spend api: "+op, "error", err)
	writeError(w, translate.StatusError(http.StatusInternalServerError, op+" failed"))
}

// writeError sends err, an *translate.APIError, as OpenAI error JSON.
func writeError(w http.ResponseWriter, err error) {
	var e *translate.APIError
	if !errors.As(err, &e) {
		e = translate.StatusError(http.StatusInternalServerError, "internal error")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	w.Write(e.JSON())
}

func writeJSON(w http.ResponseWriter, v any) {
	body, err := json.Marshal(v)
	if err != nil { // the response types always marshal
		writeError(w, translate.StatusError(http.StatusInternalServerError, "encode response"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

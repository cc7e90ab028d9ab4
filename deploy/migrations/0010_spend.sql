-- Spend records: one row per request, written by package spend's Writer, and the daily
-- rollups the spend reports read.
--
-- Columns follow LiteLLM's LiteLLM_SpendLogs in snake_case (startTime -> start_time, ...;
-- spend.Record documents the mapping). As in the keys tables, money is integer
-- micro-dollars: spend is bigint micro-USD where LiteLLM has a float of dollars, so
-- rollups add up exactly. Text columns are NOT NULL DEFAULT '' so that "no team" is one
-- value in the rollups' primary key.

-- Partitioned by month of start_time. The writer creates each month's partition ahead
-- of time (tollgate_spend_logs_YYYYMM) and drops the ones older than the retention
-- setting; the default partition catches any row no partition covers, so an insert
-- never fails for want of one, and the writer moves those rows when it creates the
-- month's partition.
CREATE TABLE tollgate_spend_logs (
    request_id            text        NOT NULL,
    call_type             text        NOT NULL DEFAULT '',
    api_key               text        NOT NULL DEFAULT '', -- SHA-256 hex of the key
    key_alias             text        NOT NULL DEFAULT '',
    team_id               text        NOT NULL DEFAULT '',
    user_id               text        NOT NULL DEFAULT '', -- LiteLLM's "user"
    end_user              text        NOT NULL DEFAULT '',
    model_group           text        NOT NULL DEFAULT '', -- the alias the client asked for
    model_id              text        NOT NULL DEFAULT '', -- the deployment that answered
    custom_llm_provider   text        NOT NULL DEFAULT '',
    model                 text        NOT NULL DEFAULT '', -- the provider's model name
    api_base              text        NOT NULL DEFAULT '',
    prompt_tokens         bigint      NOT NULL DEFAULT 0,
    completion_tokens     bigint      NOT NULL DEFAULT 0,
    total_tokens          bigint      NOT NULL DEFAULT 0,
    cached_tokens         bigint      NOT NULL DEFAULT 0,
    cache_creation_tokens bigint      NOT NULL DEFAULT 0,
    reasoning_tokens      bigint      NOT NULL DEFAULT 0,
    spend                 bigint      NOT NULL DEFAULT 0,     -- micro-USD; 0 when unknown
    cost_known            boolean     NOT NULL DEFAULT false, -- false: no price or no usage
    usage_estimated       boolean     NOT NULL DEFAULT false, -- tokens estimated from text
    status_code           integer     NOT NULL DEFAULT 0,     -- HTTP status sent to the client
    error_code            text        NOT NULL DEFAULT '',
    start_time            timestamptz NOT NULL,
    end_time              timestamptz NOT NULL,
    completion_start_time timestamptz,                        -- first response byte
    attempts              integer     NOT NULL DEFAULT 1,
    stream                boolean     NOT NULL DEFAULT false,
    request_tags          jsonb       NOT NULL DEFAULT '[]',
    metadata              jsonb       NOT NULL DEFAULT '{}',
    -- A partitioned table's unique keys must include the partition key. A record keeps
    -- its start time through spooling and replay, so this is the request id's key: the
    -- writer skips the keys already present, and this refuses a duplicate even so.
    PRIMARY KEY (request_id, start_time)
) PARTITION BY RANGE (start_time);

CREATE TABLE tollgate_spend_logs_default PARTITION OF tollgate_spend_logs DEFAULT;

-- /spend/logs: newest first, unfiltered or by one of these, within a time range.
CREATE INDEX tollgate_spend_logs_time     ON tollgate_spend_logs (start_time);
CREATE INDEX tollgate_spend_logs_key      ON tollgate_spend_logs (api_key, start_time);
CREATE INDEX tollgate_spend_logs_team     ON tollgate_spend_logs (team_id, start_time);
CREATE INDEX tollgate_spend_logs_user     ON tollgate_spend_logs (user_id, start_time);
CREATE INDEX tollgate_spend_logs_model    ON tollgate_spend_logs (model_group, start_time);
CREATE INDEX tollgate_spend_logs_end_user ON tollgate_spend_logs (end_user, start_time);

-- Daily totals (UTC days) per key, team, user, end user and model alias, added to in
-- the transaction that inserts the records, from the rows it inserted: a replayed
-- record is not counted twice. Kept forever; retention drops only spend log partitions.
CREATE TABLE tollgate_spend_daily (
    day                   date   NOT NULL,
    api_key               text   NOT NULL,
    team_id               text   NOT NULL,
    user_id               text   NOT NULL,
    end_user              text   NOT NULL,
    model                 text   NOT NULL, -- model_group
    spend                 bigint NOT NULL DEFAULT 0, -- micro-USD
    prompt_tokens         bigint NOT NULL DEFAULT 0,
    completion_tokens     bigint NOT NULL DEFAULT 0,
    cached_tokens         bigint NOT NULL DEFAULT 0,
    cache_creation_tokens bigint NOT NULL DEFAULT 0,
    reasoning_tokens      bigint NOT NULL DEFAULT 0,
    requests              bigint NOT NULL DEFAULT 0,
    failed_requests       bigint NOT NULL DEFAULT 0, -- status_code >= 400
    cost_unknown_requests bigint NOT NULL DEFAULT 0, -- cost_known = false
    PRIMARY KEY (day, api_key, team_id, user_id, end_user, model)
);

-- Virtual keys, teams, users, team memberships and end users: the system of record for
-- package keys. Redis holds the hot copy (key records, budget and rate-limit counters) and
-- is rebuilt from these tables when it is empty.
--
-- Money is integer micro-dollars (1 USD = 1,000,000), so budgets and spend add up exactly;
-- the admin API speaks LiteLLM's float dollars and converts at the edge. Every budget
-- holder has the same columns: max_budget (hard), soft_budget (flag only), spend in the
-- current budget period, budget_duration ("30d", LiteLLM's format) and budget_reset_at.

CREATE TABLE tollgate_teams (
    team_id               text PRIMARY KEY,
    team_alias            text,
    models                text[] NOT NULL DEFAULT '{}',
    blocked               boolean NOT NULL DEFAULT false,
    metadata              jsonb NOT NULL DEFAULT '{}',
    max_budget            bigint CHECK (max_budget >= 0),
    soft_budget           bigint CHECK (soft_budget >= 0),
    spend                 bigint NOT NULL DEFAULT 0,
    budget_duration       text,
    budget_reset_at       timestamptz,
    tpm_limit             bigint CHECK (tpm_limit >= 0),
    rpm_limit             bigint CHECK (rpm_limit >= 0),
    max_parallel_requests bigint CHECK (max_parallel_requests >= 0),
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tollgate_users (
    user_id               text PRIMARY KEY,
    user_email            text,
    user_alias            text,
    -- LiteLLM's roles; proxy_admin keys may call the admin API, proxy_admin_viewer keys may
    -- read it.
    user_role             text NOT NULL DEFAULT 'internal_user'
        CHECK (user_role IN ('proxy_admin', 'proxy_admin_viewer', 'internal_user', 'internal_user_viewer')),
    models                text[] NOT NULL DEFAULT '{}',
    metadata              jsonb NOT NULL DEFAULT '{}',
    max_budget            bigint CHECK (max_budget >= 0),
    soft_budget           bigint CHECK (soft_budget >= 0),
    spend                 bigint NOT NULL DEFAULT 0,
    budget_duration       text,
    budget_reset_at       timestamptz,
    tpm_limit             bigint CHECK (tpm_limit >= 0),
    rpm_limit             bigint CHECK (rpm_limit >= 0),
    max_parallel_requests bigint CHECK (max_parallel_requests >= 0),
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tollgate_users_email ON tollgate_users (lower(user_email));

-- A user's place in a team, with the per-member budget LiteLLM calls max_budget_in_team.
CREATE TABLE tollgate_team_members (
    team_id    text NOT NULL REFERENCES tollgate_teams ON DELETE CASCADE,
    user_id    text NOT NULL,
    role       text NOT NULL DEFAULT 'user' CHECK (role IN ('admin', 'user')),
    max_budget bigint CHECK (max_budget >= 0),
    spend      bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX tollgate_team_members_user ON tollgate_team_members (user_id);

-- Virtual keys. token is the SHA-256 hex of the whole key, as LiteLLM's
-- LiteLLM_VerificationToken.token, so LiteLLM keys can be imported row for row; the key
-- itself is never stored. A team's keys go with the team, as in LiteLLM.
CREATE TABLE tollgate_keys (
    token                 text PRIMARY KEY CHECK (token ~ '^[0-9a-f]{64}$'),
    key_name              text NOT NULL,
    key_alias             text UNIQUE,
    models                text[] NOT NULL DEFAULT '{}',
    team_id               text REFERENCES tollgate_teams ON DELETE CASCADE,
    user_id               text,
    expires               timestamptz,
    blocked               boolean NOT NULL DEFAULT false,
    metadata              jsonb NOT NULL DEFAULT '{}',
    tags                  text[] NOT NULL DEFAULT '{}',
    max_budget            bigint CHECK (max_budget >= 0),
    soft_budget           bigint CHECK (soft_budget >= 0),
    spend                 bigint NOT NULL DEFAULT 0,
    budget_duration       text,
    budget_reset_at       timestamptz,
    tpm_limit             bigint CHECK (tpm_limit >= 0),
    rpm_limit             bigint CHECK (rpm_limit >= 0),
    max_parallel_requests bigint CHECK (max_parallel_requests >= 0),
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tollgate_keys_team ON tollgate_keys (team_id);
CREATE INDEX tollgate_keys_user ON tollgate_keys (user_id);
CREATE INDEX tollgate_keys_created ON tollgate_keys (created_at DESC, token);

-- model_max_budget: a key's budget for one model alias, with its own period.
CREATE TABLE tollgate_key_model_budgets (
    token           text NOT NULL REFERENCES tollgate_keys ON UPDATE CASCADE ON DELETE CASCADE,
    model           text NOT NULL,
    max_budget      bigint NOT NULL CHECK (max_budget >= 0),
    spend           bigint NOT NULL DEFAULT 0,
    budget_duration text,
    budget_reset_at timestamptz,
    PRIMARY KEY (token, model)
);

-- Keys replaced by /key/regenerate with a grace_period: the old token keeps working, as the
-- new key (same limits, same spend), until revoke_at.
CREATE TABLE tollgate_deprecated_keys (
    token        text PRIMARY KEY,
    active_token text NOT NULL REFERENCES tollgate_keys (token) ON UPDATE CASCADE ON DELETE CASCADE,
    revoke_at    timestamptz NOT NULL
);
CREATE INDEX tollgate_deprecated_keys_active ON tollgate_deprecated_keys (active_token);

-- End users: the `user` field of API requests (LiteLLM's "customers").
CREATE TABLE tollgate_end_users (
    user_id               text PRIMARY KEY,
    alias                 text,
    blocked               boolean NOT NULL DEFAULT false,
    metadata              jsonb NOT NULL DEFAULT '{}',
    max_budget            bigint CHECK (max_budget >= 0),
    soft_budget           bigint CHECK (soft_budget >= 0),
    spend                 bigint NOT NULL DEFAULT 0,
    budget_duration       text,
    budget_reset_at       timestamptz,
    tpm_limit             bigint CHECK (tpm_limit >= 0),
    rpm_limit             bigint CHECK (rpm_limit >= 0),
    max_parallel_requests bigint CHECK (max_parallel_requests >= 0),
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);

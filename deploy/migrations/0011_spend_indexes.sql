-- Cheaper index maintenance for the spend writer: every index of tollgate_spend_logs is
-- updated for every record, and that is most of what a record costs Postgres.
--
-- 1. The ids and names the indexes hold sort bytewise (COLLATE "C"). The indexes serve
--    equality and time order, never a language's order, and a locale's collation (the
--    database default, often en_US.UTF-8) makes every comparison call strcoll.
ALTER TABLE tollgate_spend_logs
    ALTER COLUMN request_id  TYPE text COLLATE "C",
    ALTER COLUMN api_key     TYPE text COLLATE "C",
    ALTER COLUMN team_id     TYPE text COLLATE "C",
    ALTER COLUMN user_id     TYPE text COLLATE "C",
    ALTER COLUMN end_user    TYPE text COLLATE "C",
    ALTER COLUMN model_group TYPE text COLLATE "C";

ALTER TABLE tollgate_spend_daily
    ALTER COLUMN api_key  TYPE text COLLATE "C",
    ALTER COLUMN team_id  TYPE text COLLATE "C",
    ALTER COLUMN user_id  TYPE text COLLATE "C",
    ALTER COLUMN end_user TYPE text COLLATE "C",
    ALTER COLUMN model    TYPE text COLLATE "C";

-- 2. Requests without a team, user or end user ('' in those columns, which is most
--    requests in many deployments) are left out of those columns' indexes: nobody lists
--    the spend of "no team". /spend/logs adds "<> ''" to these filters so that the
--    planner can use the partial indexes with a parameter.
DROP INDEX tollgate_spend_logs_team, tollgate_spend_logs_user, tollgate_spend_logs_end_user;
CREATE INDEX tollgate_spend_logs_team     ON tollgate_spend_logs (team_id, start_time)  WHERE team_id <> '';
CREATE INDEX tollgate_spend_logs_user     ON tollgate_spend_logs (user_id, start_time)  WHERE user_id <> '';
CREATE INDEX tollgate_spend_logs_end_user ON tollgate_spend_logs (end_user, start_time) WHERE end_user <> '';

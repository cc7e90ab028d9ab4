-- When each budget's current period began: set by the budget reset to the instant the
-- period turned (the budget_reset_at it passed), NULL until the first reset.
--
-- Spend reaches these rows from the spend records as they are stored, which can be
-- after a reset: a second later normally, hours later after a Postgres outage (the
-- records wait in the spool). A record whose request started before its budget's
-- period began belongs to the period that ended; keys.AddSpend leaves it out.
ALTER TABLE tollgate_keys              ADD COLUMN budget_period_start timestamptz;
ALTER TABLE tollgate_teams             ADD COLUMN budget_period_start timestamptz;
ALTER TABLE tollgate_users             ADD COLUMN budget_period_start timestamptz;
ALTER TABLE tollgate_end_users         ADD COLUMN budget_period_start timestamptz;
ALTER TABLE tollgate_key_model_budgets ADD COLUMN budget_period_start timestamptz;

-- amp-sessions store, schema version 3: whole-run budgets and the benchmark runner.
-- - batches and bench runs record why they stopped early (a budget reached, an abort);
-- - bench runs get an abort flag (like batches) and the folder their predictions are written to;
-- - bench results may end `not_evaluated` (a patch was made, but no test command is known) and record how
--   the agent run itself ended. SQLite cannot change a CHECK constraint, so bench_results is rebuilt.

ALTER TABLE batches ADD COLUMN stop_reason TEXT;
ALTER TABLE bench_runs ADD COLUMN stop_reason TEXT;
ALTER TABLE bench_runs ADD COLUMN abort_requested INTEGER NOT NULL DEFAULT 0;
ALTER TABLE bench_runs ADD COLUMN out_dir TEXT;

CREATE TABLE bench_results_v3 (
    id            TEXT PRIMARY KEY,
    run_id        TEXT NOT NULL REFERENCES bench_runs (id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL DEFAULT 0,
    instance_id   TEXT NOT NULL,
    agent         TEXT NOT NULL,
    model         TEXT,
    repeat        INTEGER NOT NULL DEFAULT 0,
    session_id    TEXT REFERENCES sessions (id) ON DELETE SET NULL,
    status        TEXT NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued', 'running', 'resolved', 'unresolved', 'empty_patch',
                                    'not_evaluated', 'error', 'aborted')),
    agent_outcome TEXT,
    resolved      INTEGER,
    model_patch   TEXT,
    tests_passed  INTEGER,
    tests_failed  INTEGER,
    test_report   TEXT,                 -- JSON: FAIL_TO_PASS / PASS_TO_PASS success and failure lists
    error         TEXT,
    duration_ms   INTEGER,
    total_tokens  INTEGER,
    cost_usd      REAL,
    started_at    INTEGER,
    ended_at      INTEGER
);
INSERT INTO bench_results_v3 (id, run_id, instance_id, agent, model, repeat, session_id, status, resolved,
                              model_patch, tests_passed, tests_failed, test_report, error, duration_ms,
                              total_tokens, cost_usd, started_at, ended_at)
    SELECT id, run_id, instance_id, agent, model, repeat, session_id, status, resolved, model_patch,
           tests_passed, tests_failed, test_report, error, duration_ms, total_tokens, cost_usd, started_at,
           ended_at
    FROM bench_results;
DROP TABLE bench_results;
ALTER TABLE bench_results_v3 RENAME TO bench_results;
CREATE INDEX bench_results_run ON bench_results (run_id, seq);
CREATE INDEX sessions_bench_result ON sessions (bench_result_id) WHERE bench_result_id IS NOT NULL;

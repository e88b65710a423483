-- amp-sessions store, schema version 5: batches and benchmark runs on a cluster.
-- - a batch or benchmark run records where its items run (`local`, `slurm`, `kubernetes`);
-- - each submission to a cluster (a Slurm job array, a Kubernetes Indexed Job) is a cluster_submissions row
--   with the scheduler's id of it, so that a coordinator that restarts (or `abort` from another process)
--   finds its jobs again; cluster_tasks maps each index of a submission to the item it runs, and records
--   whether its result bundle was taken in.

ALTER TABLE batches ADD COLUMN executor TEXT NOT NULL DEFAULT 'local';
ALTER TABLE bench_runs ADD COLUMN executor TEXT NOT NULL DEFAULT 'local';

CREATE TABLE cluster_submissions (
    id           TEXT PRIMARY KEY,          -- also the name of its folder in the executor's work folder
    owner_kind   TEXT NOT NULL CHECK (owner_kind IN ('batch', 'bench')),
    owner_id     TEXT NOT NULL,
    executor     TEXT NOT NULL CHECK (executor IN ('slurm', 'kubernetes')),
    cluster_job  TEXT,                      -- the Slurm array job id or Kubernetes Job name, once submitted
    folder       TEXT NOT NULL,             -- where its tasks and result bundles are
    created_at   INTEGER NOT NULL,
    submitted_at INTEGER,
    ended_at     INTEGER,                   -- set when none of its tasks can still report
    cancelled_at INTEGER
);
CREATE INDEX cluster_submissions_owner ON cluster_submissions (owner_kind, owner_id);

CREATE TABLE cluster_tasks (
    submission_id TEXT NOT NULL REFERENCES cluster_submissions (id) ON DELETE CASCADE,
    idx           INTEGER NOT NULL,         -- SLURM_ARRAY_TASK_ID / JOB_COMPLETION_INDEX
    item_id       TEXT NOT NULL,            -- the batch item or benchmark result it runs
    state         TEXT NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'running', 'done', 'lost')),
    note          TEXT,                     -- why it was lost (the scheduler's state, a log tail)
    ingest_ms     INTEGER,                  -- how long taking its result in took
    PRIMARY KEY (submission_id, idx)
);
CREATE INDEX cluster_tasks_item ON cluster_tasks (item_id);

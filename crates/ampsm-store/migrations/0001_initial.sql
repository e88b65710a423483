-- amp-sessions store, schema version 1: the whole product's tables.
-- Times are Unix milliseconds; ids are 32 hex characters unless noted.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    repo_path     TEXT NOT NULL,
    base_branch   TEXT NOT NULL,          -- the branch or commit the user asked for
    base_commit   TEXT NOT NULL,          -- what it pointed at when the session was made
    branch        TEXT NOT NULL,
    worktree_path TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'idle'
                  CHECK (status IN ('idle', 'running', 'awaiting-input', 'error', 'done')),
    status_note   TEXT,
    agent         TEXT NOT NULL,
    model         TEXT,
    prompt        TEXT,
    script        TEXT,
    budget_usd    REAL,
    thread_id     TEXT,
    runner_pid    INTEGER,                -- the amp-sessions process running an iteration
    agent_pid     INTEGER,                -- the agent's process (group leader)
    creating_pid  INTEGER,                -- set while `new` has not finished; cleared at the end
    batch_item_id TEXT,
    bench_result_id TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    removed_at    INTEGER                 -- set by `rm`; the row stays so snapshots can be restored
);
CREATE UNIQUE INDEX sessions_live_name ON sessions (repo_path, name) WHERE removed_at IS NULL;
CREATE INDEX sessions_created ON sessions (created_at);
CREATE INDEX sessions_status ON sessions (status);

CREATE TABLE status_changes (
    id          INTEGER PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    from_status TEXT,
    to_status   TEXT NOT NULL,
    reason      TEXT,
    at          INTEGER NOT NULL
);
CREATE INDEX status_changes_session ON status_changes (session_id, id);

CREATE TABLE iterations (
    id              TEXT PRIMARY KEY,
    session_id      TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,
    kind            TEXT NOT NULL DEFAULT 'iterate' CHECK (kind IN ('iterate', 'chat')),
    prompt          TEXT,
    agent           TEXT NOT NULL,
    model           TEXT,
    thread_id       TEXT,
    started_at      INTEGER NOT NULL,
    ended_at        INTEGER,
    outcome         TEXT CHECK (outcome IN ('success', 'failed', 'timeout', 'cancelled', 'budget', 'crashed')),
    exit_code       INTEGER,
    signal          INTEGER,
    error           TEXT,
    awaiting_input  INTEGER NOT NULL DEFAULT 0,
    commit_sha      TEXT,
    test_exit_code  INTEGER,
    test_output     TEXT,
    test_duration_ms INTEGER,
    cost_usd        REAL,
    cost_source     TEXT,
    runner_pid      INTEGER,
    UNIQUE (session_id, seq)
);

-- Every raw line an agent printed, with its normalized events (a JSON array). Append-only.
CREATE TABLE agent_events (
    id           INTEGER PRIMARY KEY,
    session_id   TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    iteration_id TEXT REFERENCES iterations (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    ts           INTEGER NOT NULL,
    stream       TEXT NOT NULL DEFAULT 'stdout' CHECK (stream IN ('stdout', 'stderr', 'stdin')),
    kind         TEXT NOT NULL,
    raw          TEXT NOT NULL,
    normalized   TEXT NOT NULL,
    truncated    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX agent_events_session ON agent_events (session_id, id);
CREATE TRIGGER agent_events_append_only BEFORE UPDATE ON agent_events
BEGIN
    SELECT RAISE(ABORT, 'agent_events is append-only');
END;

CREATE TABLE tool_calls (
    id             INTEGER PRIMARY KEY,
    session_id     TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    iteration_id   TEXT REFERENCES iterations (id) ON DELETE CASCADE,
    call_id        TEXT NOT NULL,
    name           TEXT NOT NULL,
    input          TEXT,
    started_at     INTEGER NOT NULL,
    ended_at       INTEGER,
    duration_ms    INTEGER,
    success        INTEGER,               -- NULL: no result arrived
    exit_code      INTEGER,
    output_excerpt TEXT                   -- a call id is unique within its iteration (the writer keeps it so)
);
CREATE INDEX tool_calls_session ON tool_calls (session_id);

CREATE TABLE token_usage (
    id                 INTEGER PRIMARY KEY,
    session_id         TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    iteration_id       TEXT REFERENCES iterations (id) ON DELETE CASCADE,
    model              TEXT,
    input_tokens       INTEGER NOT NULL DEFAULT 0,   -- uncached input
    output_tokens      INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens  INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens   INTEGER NOT NULL DEFAULT 0,
    cost_usd           REAL,
    cost_source        TEXT NOT NULL DEFAULT 'unknown',  -- agent | price_table | unknown
    price_entry        TEXT,
    recorded_at        INTEGER NOT NULL
);
CREATE INDEX token_usage_session ON token_usage (session_id);

CREATE TABLE commits (
    session_id   TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    sha          TEXT NOT NULL,
    iteration_id TEXT REFERENCES iterations (id) ON DELETE SET NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('agent', 'manual', 'squash', 'rebase', 'merge')),
    subject      TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (session_id, sha)
);

CREATE TABLE file_changes (
    id            INTEGER PRIMARY KEY,
    session_id    TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    iteration_id  TEXT REFERENCES iterations (id) ON DELETE SET NULL,
    commit_sha    TEXT,
    path          TEXT NOT NULL,
    old_path      TEXT,
    lines_added   INTEGER,
    lines_removed INTEGER,
    binary        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX file_changes_session ON file_changes (session_id);

CREATE TABLE snapshots (
    id          INTEGER PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    refname     TEXT NOT NULL,
    sha         TEXT NOT NULL,
    branch      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    restored_at INTEGER,
    UNIQUE (session_id, seq)
);

CREATE TABLE merges (
    id           TEXT PRIMARY KEY,
    session_id   TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    strategy     TEXT NOT NULL CHECK (strategy IN ('squash', 'rebase', 'merge')),
    base_branch  TEXT NOT NULL,
    base_before  TEXT,
    base_after   TEXT,
    session_head TEXT,
    result       TEXT NOT NULL CHECK (result IN ('merged', 'conflicts', 'refused', 'dry-run', 'failed')),
    conflicts    TEXT,                  -- JSON array of paths
    message      TEXT,
    pushed       INTEGER NOT NULL DEFAULT 0,
    pr_url       TEXT,
    created_at   INTEGER NOT NULL
);

CREATE TABLE batches (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    file_path       TEXT,
    spec            TEXT NOT NULL,      -- the YAML as given
    status          TEXT NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'running', 'completed', 'failed', 'aborted')),
    concurrency     INTEGER NOT NULL,
    budget_usd      REAL,
    runner_pid      INTEGER,
    abort_requested INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    started_at      INTEGER,
    ended_at        INTEGER
);

CREATE TABLE batch_items (
    id            TEXT PRIMARY KEY,
    batch_id      TEXT NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL,
    item_name     TEXT NOT NULL,
    repo_path     TEXT NOT NULL,
    base_branch   TEXT,
    prompt        TEXT NOT NULL,
    script        TEXT,
    agent         TEXT NOT NULL,
    model         TEXT,
    timeout_ms    INTEGER,
    retries       INTEGER NOT NULL DEFAULT 0,
    merge_on_pass INTEGER NOT NULL DEFAULT 0,
    status        TEXT NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued', 'running', 'passed', 'failed', 'error', 'timeout', 'aborted')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    session_id    TEXT REFERENCES sessions (id) ON DELETE SET NULL,
    merged        INTEGER NOT NULL DEFAULT 0,
    error         TEXT,
    started_at    INTEGER,
    ended_at      INTEGER,
    UNIQUE (batch_id, seq)
);

CREATE TABLE bench_runs (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('swe-bench-lite', 'custom')),
    name         TEXT NOT NULL,
    config       TEXT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'queued'
                 CHECK (status IN ('queued', 'running', 'completed', 'failed', 'aborted')),
    concurrency  INTEGER NOT NULL DEFAULT 1,
    budget_usd   REAL,
    runner_pid   INTEGER,
    created_at   INTEGER NOT NULL,
    started_at   INTEGER,
    ended_at     INTEGER
);

CREATE TABLE bench_results (
    id           TEXT PRIMARY KEY,
    run_id       TEXT NOT NULL REFERENCES bench_runs (id) ON DELETE CASCADE,
    instance_id  TEXT NOT NULL,
    agent        TEXT NOT NULL,
    model        TEXT,
    repeat       INTEGER NOT NULL DEFAULT 0,
    session_id   TEXT REFERENCES sessions (id) ON DELETE SET NULL,
    status       TEXT NOT NULL DEFAULT 'queued'
                 CHECK (status IN ('queued', 'running', 'resolved', 'unresolved', 'empty_patch', 'error', 'aborted')),
    resolved     INTEGER,
    model_patch  TEXT,
    tests_passed INTEGER,
    tests_failed INTEGER,
    test_report  TEXT,                 -- JSON: FAIL_TO_PASS / PASS_TO_PASS success and failure lists
    error        TEXT,
    duration_ms  INTEGER,
    total_tokens INTEGER,
    cost_usd     REAL,
    started_at   INTEGER,
    ended_at     INTEGER
);
CREATE INDEX bench_results_run ON bench_results (run_id);

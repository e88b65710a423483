-- amp-sessions store, schema version 4: permission policies, approvals, denied tool calls, stop requests.
-- - a session records the permission policy chosen at `new` (NULL for older sessions: the config's default
--   applies when they run), and each iteration the policy it ran with and how many tool calls were denied;
-- - `stop` from another process asks the runner of an iteration to stop its agent (stop_requested_at);
-- - under the `ask` policy every tool call the agent wants approved is an approvals row, answered from any
--   terminal or the dashboard, or timed out to a denial.

ALTER TABLE sessions ADD COLUMN permissions TEXT;
ALTER TABLE iterations ADD COLUMN permissions TEXT;
ALTER TABLE iterations ADD COLUMN denials INTEGER NOT NULL DEFAULT 0;
ALTER TABLE iterations ADD COLUMN stop_requested_at INTEGER;
ALTER TABLE tool_calls ADD COLUMN denied INTEGER NOT NULL DEFAULT 0;

CREATE TABLE approvals (
    id           TEXT PRIMARY KEY,
    session_id   TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    iteration_id TEXT REFERENCES iterations (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,          -- 1, 2, … within the session: what `approve <s> N` names
    request_id   TEXT NOT NULL,             -- the agent's own id of the request
    call_id      TEXT,                      -- the tool call it is about, when the agent says
    tool         TEXT NOT NULL,
    input        TEXT NOT NULL,             -- JSON, secrets redacted
    status       TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'approved', 'denied', 'timed_out', 'cancelled')),
    message      TEXT,                      -- the reason given with a denial, or what ended it
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    decided_at   INTEGER,
    UNIQUE (session_id, seq)
);
CREATE INDEX approvals_pending ON approvals (status, created_at);

-- amp-sessions store, schema version 6: what a cluster task reports while it runs.
-- A worker rewrites a small progress file (its node, its session, lines recorded, tokens, what it spent, its
-- last event); the coordinator copies it here as it changes, so that `batch status`, `bench show` and the
-- dashboard follow an item running on a node as they follow a local one.

ALTER TABLE cluster_tasks ADD COLUMN progress TEXT;   -- JSON, as the worker last wrote it

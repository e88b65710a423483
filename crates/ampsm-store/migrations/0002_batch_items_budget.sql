-- amp-sessions store, schema version 2: batch items keep their own budget (from the batch YAML), so a
-- resumed batch gives its sessions the same limit; sessions are found by batch item quickly.

ALTER TABLE batch_items ADD COLUMN budget_usd REAL;
CREATE INDEX sessions_batch_item ON sessions (batch_item_id) WHERE batch_item_id IS NOT NULL;

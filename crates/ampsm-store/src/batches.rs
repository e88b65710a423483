//! Batch rows: a batch (its YAML, concurrency, runner and abort flag) and its items (one per item ×
//! repository), with the transitions the batch runner, `batch abort` and `batch resume` make, and the
//! per-item usage that `batch export` reports.
//!
//! Item statuses: `queued` → `running` → `passed` | `failed` | `error` | `timeout` | `aborted`; `resume`
//! puts `running` items of a dead runner and `aborted` items back to `queued`. Batch statuses: `queued`,
//! `running`, `completed` (every item passed), `failed` (some did not), `aborted`.

use crate::{Store, StoreError, money_column, text_column};
use ampsm_core::time::now_ms;
use ampsm_core::{BatchItemStatus, BatchStatus, Executor, Money};
use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;

/// What `batch start` records before anything runs.
#[derive(Debug, Clone)]
pub struct NewBatch {
    pub id: String,
    pub name: String,
    pub file_path: Option<String>,
    /// The YAML as given.
    pub spec: String,
    pub concurrency: i64,
    /// The budget of the whole batch in USD.
    pub budget_usd: Option<Money>,
    /// Where its items run.
    pub executor: Executor,
}

/// One item × repository of a new batch.
#[derive(Debug, Clone)]
pub struct NewBatchItem {
    pub id: String,
    pub seq: i64,
    pub item_name: String,
    pub repo_path: String,
    pub base_branch: Option<String>,
    pub prompt: String,
    pub script: Option<String>,
    pub agent: String,
    pub model: Option<String>,
    pub timeout_ms: Option<i64>,
    pub retries: i64,
    pub merge_on_pass: bool,
    pub budget_usd: Option<Money>,
}

/// A batch as stored (without its YAML; see [`Store::batch_spec`]).
#[derive(Debug, Clone, Serialize)]
pub struct Batch {
    pub id: String,
    pub name: String,
    pub file_path: Option<String>,
    pub status: BatchStatus,
    pub concurrency: i64,
    pub runner_pid: Option<i64>,
    pub abort_requested: bool,
    /// The budget of the whole batch in USD (its items' sessions may have their own too).
    pub budget_usd: Option<Money>,
    /// Why the batch stopped before running everything (its budget reached, an abort).
    pub stop_reason: Option<String>,
    /// Where its items run.
    pub executor: Executor,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
}

/// A batch item as stored.
#[derive(Debug, Clone, Serialize)]
pub struct BatchItem {
    pub id: String,
    pub batch_id: String,
    pub seq: i64,
    pub item_name: String,
    pub repo_path: String,
    pub base_branch: Option<String>,
    pub prompt: String,
    pub script: Option<String>,
    pub agent: String,
    pub model: Option<String>,
    pub timeout_ms: Option<i64>,
    pub retries: i64,
    pub merge_on_pass: bool,
    pub budget_usd: Option<Money>,
    pub status: BatchItemStatus,
    pub attempts: i64,
    pub session_id: Option<String>,
    pub merged: bool,
    pub error: Option<String>,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
}

impl BatchItem {
    /// Whether the item reached a final status.
    pub fn is_finished(&self) -> bool {
        self.status.is_finished()
    }
}

/// How many items are in each status.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct BatchCounts {
    pub total: i64,
    pub queued: i64,
    pub running: i64,
    pub passed: i64,
    pub failed: i64,
    pub error: i64,
    pub timeout: i64,
    pub aborted: i64,
    pub merged: i64,
}

impl BatchCounts {
    /// Counts `n` more items in `status`.
    pub fn add(&mut self, status: BatchItemStatus, n: i64) {
        self.total += n;
        let slot = match status {
            BatchItemStatus::Queued => &mut self.queued,
            BatchItemStatus::Running => &mut self.running,
            BatchItemStatus::Passed => &mut self.passed,
            BatchItemStatus::Failed => &mut self.failed,
            BatchItemStatus::Error => &mut self.error,
            BatchItemStatus::Timeout => &mut self.timeout,
            BatchItemStatus::Aborted => &mut self.aborted,
        };
        *slot += n;
    }

    /// Items in a final status.
    pub fn finished(&self) -> i64 {
        self.passed + self.failed + self.error + self.timeout + self.aborted
    }
}

/// A running item with the process facts of its current session.
#[derive(Debug, Clone)]
pub struct RunningItem {
    pub item_id: String,
    pub session_id: Option<String>,
    /// The process running the session's iteration.
    pub runner_pid: Option<i64>,
    /// The agent's process (leader of its process group).
    pub agent_pid: Option<i64>,
}

/// Usage of every session (all attempts) of one item.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ItemUsage {
    pub sessions: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    /// `None` when some usage has no known price (never a partial sum shown as whole).
    pub cost_usd: Option<Money>,
    pub commits: i64,
    pub lines_added: i64,
    pub lines_removed: i64,
}

const BATCH_COLUMNS: &str = "id, name, file_path, status, concurrency, runner_pid, abort_requested, budget_usd, stop_reason, created_at, \
     started_at, ended_at, executor";

const ITEM_COLUMNS: &str = "id, batch_id, seq, item_name, repo_path, base_branch, prompt, script, agent, model, \
     timeout_ms, retries, merge_on_pass, budget_usd, status, attempts, session_id, merged, error, started_at, ended_at";

fn batch_from_row(r: &Row<'_>) -> rusqlite::Result<Batch> {
    Ok(Batch {
        id: r.get(0)?,
        name: r.get(1)?,
        file_path: r.get(2)?,
        status: text_column(r, 3)?,
        concurrency: r.get(4)?,
        runner_pid: r.get(5)?,
        abort_requested: r.get::<_, i64>(6)? != 0,
        budget_usd: money_column(r, 7)?,
        stop_reason: r.get(8)?,
        created_at: r.get(9)?,
        started_at: r.get(10)?,
        ended_at: r.get(11)?,
        executor: text_column(r, 12)?,
    })
}

fn item_from_row(r: &Row<'_>) -> rusqlite::Result<BatchItem> {
    Ok(BatchItem {
        id: r.get(0)?,
        batch_id: r.get(1)?,
        seq: r.get(2)?,
        item_name: r.get(3)?,
        repo_path: r.get(4)?,
        base_branch: r.get(5)?,
        prompt: r.get(6)?,
        script: r.get(7)?,
        agent: r.get(8)?,
        model: r.get(9)?,
        timeout_ms: r.get(10)?,
        retries: r.get(11)?,
        merge_on_pass: r.get::<_, i64>(12)? != 0,
        budget_usd: money_column(r, 13)?,
        status: text_column(r, 14)?,
        attempts: r.get(15)?,
        session_id: r.get(16)?,
        merged: r.get::<_, i64>(17)? != 0,
        error: r.get(18)?,
        started_at: r.get(19)?,
        ended_at: r.get(20)?,
    })
}

impl Store {
    /// Records a batch and all its items (status `queued`) in one transaction.
    pub fn insert_batch(&mut self, b: &NewBatch, items: &[NewBatchItem]) -> Result<(), StoreError> {
        self.write_tx(|tx| {
            tx.execute(
                "INSERT INTO batches (id, name, file_path, spec, status, concurrency, budget_usd, created_at, executor) \
                 VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?6, ?7, ?8)",
                params![
                    b.id,
                    b.name,
                    b.file_path,
                    b.spec,
                    b.concurrency,
                    b.budget_usd.map(Money::usd),
                    now_ms(),
                    b.executor.as_str()
                ],
            )?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO batch_items (id, batch_id, seq, item_name, repo_path, base_branch, prompt, script, agent, \
                 model, timeout_ms, retries, merge_on_pass, budget_usd) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )?;
            for i in items {
                insert.execute(params![
                    i.id,
                    b.id,
                    i.seq,
                    i.item_name,
                    i.repo_path,
                    i.base_branch,
                    i.prompt,
                    i.script,
                    i.agent,
                    i.model,
                    i.timeout_ms,
                    i.retries,
                    i.merge_on_pass as i64,
                    i.budget_usd.map(Money::usd)
                ])?;
            }
            Ok(())
        })
    }

    /// Batches whose id is `reference` or starts with it, or whose name is `reference`; newest first.
    pub fn find_batches(&self, reference: &str) -> Result<Vec<Batch>, StoreError> {
        let reference = reference.trim();
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {BATCH_COLUMNS} FROM batches WHERE id = ?1 \
             UNION SELECT {BATCH_COLUMNS} FROM batches WHERE ?2 != '' AND substr(id, 1, length(?2)) = ?2 \
             UNION SELECT {BATCH_COLUMNS} FROM batches WHERE name = ?1 ORDER BY created_at DESC"
        ))?;
        let prefix = if ampsm_core::id::looks_like_id_prefix(reference) {
            reference.to_lowercase()
        } else {
            String::new()
        };
        let rows = stmt.query_map(params![reference, prefix], batch_from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// A batch by exact id.
    pub fn get_batch(&self, id: &str) -> Result<Option<Batch>, StoreError> {
        Ok(self
            .conn()
            .query_row(&format!("SELECT {BATCH_COLUMNS} FROM batches WHERE id = ?1"), [id], batch_from_row)
            .optional()?)
    }

    /// The YAML a batch was started from.
    pub fn batch_spec(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self.conn().query_row("SELECT spec FROM batches WHERE id = ?1", [id], |r| r.get(0)).optional()?)
    }

    /// Every batch, newest first.
    pub fn list_batches(&self) -> Result<Vec<Batch>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare_cached(&format!("SELECT {BATCH_COLUMNS} FROM batches ORDER BY created_at DESC, id"))?;
        let rows = stmt.query_map([], batch_from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The items of a batch, in order.
    pub fn batch_items(&self, batch_id: &str) -> Result<Vec<BatchItem>, StoreError> {
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {ITEM_COLUMNS} FROM batch_items WHERE batch_id = ?1 ORDER BY seq"
        ))?;
        let rows = stmt.query_map([batch_id], item_from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// One item by id.
    pub fn get_batch_item(&self, item_id: &str) -> Result<Option<BatchItem>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {ITEM_COLUMNS} FROM batch_items WHERE id = ?1"),
                [item_id],
                item_from_row,
            )
            .optional()?)
    }

    /// Item counts per status.
    pub fn batch_counts(&self, batch_id: &str) -> Result<BatchCounts, StoreError> {
        let mut c = BatchCounts::default();
        let mut stmt = self.conn().prepare_cached(
            "SELECT status, COUNT(*), SUM(merged) FROM batch_items WHERE batch_id = ?1 GROUP BY status",
        )?;
        let rows = stmt.query_map([batch_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        })?;
        for row in rows {
            let (status, n, merged) = row?;
            let status: BatchItemStatus = status.parse().map_err(StoreError::Corrupt)?;
            c.add(status, n);
            c.merged += merged;
        }
        Ok(c)
    }

    /// Marks the batch running under `runner_pid` (keeping the first start time).
    pub fn set_batch_running(&mut self, id: &str, runner_pid: i64) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE batches SET status = 'running', runner_pid = ?2, started_at = COALESCE(started_at, ?3), \
             ended_at = NULL WHERE id = ?1",
            params![id, runner_pid, now_ms()],
        )?;
        Ok(())
    }

    /// Records the end of a batch run with its final status and, when it stopped early, why.
    pub fn finish_batch(
        &mut self,
        id: &str,
        status: BatchStatus,
        stop_reason: Option<&str>,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE batches SET status = ?2, runner_pid = NULL, ended_at = ?3, stop_reason = ?4 WHERE id = ?1",
            params![id, status.as_str(), now_ms(), stop_reason],
        )?;
        Ok(())
    }

    /// Sets (or clears) the budget of a whole batch.
    pub fn set_batch_budget(&mut self, id: &str, budget_usd: Option<Money>) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE batches SET budget_usd = ?2 WHERE id = ?1",
            params![id, budget_usd.map(Money::usd)],
        )?;
        Ok(())
    }

    /// What the sessions of every attempt of a batch's items cost so far (usage with a known price).
    pub fn batch_spend_usd(&self, batch_id: &str) -> Result<Money, StoreError> {
        Ok(Money::from_usd(self.conn().query_row(
            "SELECT COALESCE(SUM(u.cost_usd), 0.0) FROM token_usage u JOIN sessions s ON s.id = u.session_id \
             WHERE s.batch_item_id IN (SELECT id FROM batch_items WHERE batch_id = ?1)",
            [batch_id],
            |r| r.get(0),
        )?))
    }

    /// Sets the abort flag; returns whether the batch exists.
    pub fn request_batch_abort(&mut self, id: &str) -> Result<bool, StoreError> {
        Ok(self.conn().execute("UPDATE batches SET abort_requested = 1 WHERE id = ?1", [id])? > 0)
    }

    /// Clears the abort flag (before a resume).
    pub fn clear_batch_abort(&mut self, id: &str) -> Result<(), StoreError> {
        self.conn().execute("UPDATE batches SET abort_requested = 0 WHERE id = ?1", [id])?;
        Ok(())
    }

    /// Whether an abort was requested.
    pub fn batch_abort_requested(&self, id: &str) -> Result<bool, StoreError> {
        let v: Option<i64> = self
            .conn()
            .query_row("SELECT abort_requested FROM batches WHERE id = ?1", [id], |r| r.get(0))
            .optional()?;
        Ok(v.unwrap_or(0) != 0)
    }

    /// Marks an item running for a new attempt; returns the attempt number (1-based), or `None` when the
    /// item is no longer queued or running (an abort marked it, or another runner finished it).
    pub fn start_batch_item_attempt(&mut self, item_id: &str) -> Result<Option<i64>, StoreError> {
        self.write_tx(|tx| {
            let changed = tx.execute(
                "UPDATE batch_items SET status = 'running', attempts = attempts + 1, error = NULL, \
                 started_at = COALESCE(started_at, ?2), ended_at = NULL \
                 WHERE id = ?1 AND status IN ('queued', 'running')",
                params![item_id, now_ms()],
            )?;
            if changed == 0 {
                return Ok(None);
            }
            Ok(Some(tx.query_row("SELECT attempts FROM batch_items WHERE id = ?1", [item_id], |r| r.get(0))?))
        })
    }

    /// Sets how many attempts an item made (a cluster worker made them, not this process).
    pub fn set_batch_item_attempts(&mut self, item_id: &str, attempts: i64) -> Result<(), StoreError> {
        self.conn()
            .execute("UPDATE batch_items SET attempts = ?2 WHERE id = ?1", params![item_id, attempts])?;
        Ok(())
    }

    /// Records the session of the item's current attempt.
    pub fn set_batch_item_session(&mut self, item_id: &str, session_id: &str) -> Result<(), StoreError> {
        self.conn()
            .execute("UPDATE batch_items SET session_id = ?2 WHERE id = ?1", params![item_id, session_id])?;
        Ok(())
    }

    /// Records an attempt's failure note while the item goes on to another attempt.
    pub fn set_batch_item_note(&mut self, item_id: &str, note: &str) -> Result<(), StoreError> {
        self.conn().execute("UPDATE batch_items SET error = ?2 WHERE id = ?1", params![item_id, note])?;
        Ok(())
    }

    /// Records how an item ended.
    pub fn finish_batch_item(
        &mut self,
        item_id: &str,
        status: BatchItemStatus,
        error: Option<&str>,
        merged: bool,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE batch_items SET status = ?2, error = ?3, merged = ?4, ended_at = ?5 WHERE id = ?1",
            params![item_id, status.as_str(), error, merged as i64, now_ms()],
        )?;
        Ok(())
    }

    /// Marks every queued item of the batch aborted; returns how many.
    pub fn abort_queued_items(&mut self, batch_id: &str, note: &str) -> Result<usize, StoreError> {
        Ok(self.conn().execute(
            "UPDATE batch_items SET status = 'aborted', error = ?2, ended_at = ?3 WHERE batch_id = ?1 AND status = 'queued'",
            params![batch_id, note, now_ms()],
        )?)
    }

    /// Marks every running item of the batch aborted (when its runner is gone); returns how many.
    pub fn abort_running_items(&mut self, batch_id: &str, note: &str) -> Result<usize, StoreError> {
        Ok(self.conn().execute(
            "UPDATE batch_items SET status = 'aborted', error = ?2, ended_at = ?3 WHERE batch_id = ?1 AND status = 'running'",
            params![batch_id, note, now_ms()],
        )?)
    }

    /// Puts unfinished items back in the queue for `resume`: `running` ones (their runner died) and
    /// `aborted` ones. Attempts are kept, so new sessions get new names; the runner gives each requeued
    /// item at least one more attempt. Returns how many.
    pub fn requeue_unfinished_items(&mut self, batch_id: &str) -> Result<usize, StoreError> {
        Ok(self.conn().execute(
            "UPDATE batch_items SET status = 'queued', ended_at = NULL, \
             error = CASE status WHEN 'running' THEN 'interrupted: the batch runner stopped; re-run by resume' ELSE error END \
             WHERE batch_id = ?1 AND status IN ('running', 'aborted')",
            [batch_id],
        )?)
    }

    /// Running items with the pids of their current session.
    pub fn running_batch_items(&self, batch_id: &str) -> Result<Vec<RunningItem>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT i.id, i.session_id, s.runner_pid, s.agent_pid FROM batch_items i \
             LEFT JOIN sessions s ON s.id = i.session_id WHERE i.batch_id = ?1 AND i.status = 'running'",
        )?;
        let rows = stmt.query_map([batch_id], |r| {
            Ok(RunningItem {
                item_id: r.get(0)?,
                session_id: r.get(1)?,
                runner_pid: r.get(2)?,
                agent_pid: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Agent pids of every session of the batch that is marked running (all attempts).
    pub fn batch_agent_pids(&self, batch_id: &str) -> Result<Vec<i64>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT s.agent_pid FROM sessions s JOIN batch_items i ON s.batch_item_id = i.id \
             WHERE i.batch_id = ?1 AND s.status = 'running' AND s.agent_pid IS NOT NULL",
        )?;
        let rows = stmt.query_map([batch_id], |r| r.get(0))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Ids of the live (not removed) sessions of the batch's items, all attempts, oldest first.
    pub fn batch_live_session_ids(&self, batch_id: &str) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT s.id FROM sessions s JOIN batch_items i ON s.batch_item_id = i.id \
             WHERE i.batch_id = ?1 AND s.removed_at IS NULL AND s.creating_pid IS NULL ORDER BY i.seq, s.created_at",
        )?;
        let rows = stmt.query_map([batch_id], |r| r.get(0))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Usage, cost, commits and lines changed of every session of each item (all attempts), by item id.
    pub fn batch_item_usage(
        &self,
        batch_id: &str,
    ) -> Result<std::collections::HashMap<String, ItemUsage>, StoreError> {
        let mut out: std::collections::HashMap<String, ItemUsage> = std::collections::HashMap::new();
        let mut stmt = self.conn().prepare_cached(
            "SELECT i.id, COUNT(DISTINCT s.id) FROM batch_items i JOIN sessions s ON s.batch_item_id = i.id \
             WHERE i.batch_id = ?1 GROUP BY i.id",
        )?;
        for row in stmt.query_map([batch_id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
            let (id, n) = row?;
            out.entry(id).or_default().sessions = n;
        }
        let mut stmt = self.conn().prepare_cached(
            "SELECT i.id, COALESCE(SUM(u.input_tokens), 0), COALESCE(SUM(u.output_tokens), 0), \
             COALESCE(SUM(u.cache_read_tokens), 0), COALESCE(SUM(u.cache_write_tokens), 0), \
             COALESCE(SUM(u.cost_usd), 0), \
             SUM(CASE WHEN u.cost_usd IS NULL AND (u.input_tokens + u.output_tokens + u.cache_read_tokens \
                 + u.cache_write_tokens) > 0 THEN 1 ELSE 0 END) \
             FROM batch_items i JOIN sessions s ON s.batch_item_id = i.id JOIN token_usage u ON u.session_id = s.id \
             WHERE i.batch_id = ?1 GROUP BY i.id",
        )?;
        let rows = stmt.query_map([batch_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, f64>(5)?,
                r.get::<_, i64>(6)?,
            ))
        })?;
        for row in rows {
            let (id, input, output, cache_read, cache_write, cost, unknown) = row?;
            let u = out.entry(id).or_default();
            u.input_tokens = input;
            u.output_tokens = output;
            u.cache_read_tokens = cache_read;
            u.cache_write_tokens = cache_write;
            u.cost_usd = if unknown > 0 { None } else { Some(Money::from_usd(cost)) };
        }
        // Items with sessions but no usage rows cost nothing that is known to be unpriced.
        for u in out.values_mut() {
            if u.sessions > 0 && u.cost_usd.is_none() && u.input_tokens + u.output_tokens == 0 {
                u.cost_usd = Some(Money::ZERO);
            }
        }
        let mut stmt = self.conn().prepare_cached(
            "SELECT i.id, COUNT(DISTINCT c.sha), \
             (SELECT COALESCE(SUM(f.lines_added), 0) FROM file_changes f JOIN sessions s2 ON f.session_id = s2.id \
              WHERE s2.batch_item_id = i.id), \
             (SELECT COALESCE(SUM(f.lines_removed), 0) FROM file_changes f JOIN sessions s2 ON f.session_id = s2.id \
              WHERE s2.batch_item_id = i.id) \
             FROM batch_items i JOIN sessions s ON s.batch_item_id = i.id \
             LEFT JOIN commits c ON c.session_id = s.id AND c.kind = 'agent' \
             WHERE i.batch_id = ?1 GROUP BY i.id",
        )?;
        let rows = stmt.query_map([batch_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?))
        })?;
        for row in rows {
            let (id, commits, added, removed) = row?;
            let u = out.entry(id).or_default();
            u.commits = commits;
            u.lines_added = added;
            u.lines_removed = removed;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(batch: &str, seq: i64) -> NewBatchItem {
        NewBatchItem {
            id: format!("{batch}-item{seq}"),
            seq,
            item_name: format!("item{seq}"),
            repo_path: "/r".into(),
            base_branch: Some("main".into()),
            prompt: "do it".into(),
            script: None,
            agent: "command".into(),
            model: None,
            timeout_ms: Some(1000),
            retries: 1,
            merge_on_pass: false,
            budget_usd: Some(Money::from_usd(2.0)),
        }
    }

    #[test]
    fn items_move_through_their_statuses_and_resume_requeues_the_unfinished() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("s.db")).unwrap();
        let id = "0123456789abcdef0123456789abcdef";
        let b = NewBatch {
            id: id.into(),
            name: "b".into(),
            file_path: None,
            spec: "x".into(),
            concurrency: 2,
            budget_usd: Some(Money::from_usd(3.5)),
            executor: Executor::Local,
        };
        let items: Vec<NewBatchItem> = (1..=4).map(|i| item(id, i)).collect();
        s.insert_batch(&b, &items).unwrap();
        assert_eq!(s.find_batches("0123").unwrap().len(), 1);
        assert_eq!(s.find_batches("b").unwrap().len(), 1);
        assert!(s.find_batches("ffff").unwrap().is_empty());
        assert_eq!(s.batch_items(id).unwrap()[0].budget_usd, Some(Money::from_usd(2.0)));

        assert_eq!(s.start_batch_item_attempt(&items[0].id).unwrap(), Some(1));
        s.finish_batch_item(&items[0].id, BatchItemStatus::Passed, None, true).unwrap();
        assert_eq!(s.start_batch_item_attempt(&items[1].id).unwrap(), Some(1));
        assert_eq!(s.start_batch_item_attempt(&items[1].id).unwrap(), Some(2));
        assert_eq!(s.start_batch_item_attempt(&items[2].id).unwrap(), Some(1));
        s.finish_batch_item(&items[2].id, BatchItemStatus::Aborted, Some("aborted"), false).unwrap();
        // A finished item cannot be started again.
        assert_eq!(s.start_batch_item_attempt(&items[0].id).unwrap(), None);
        let c = s.batch_counts(id).unwrap();
        assert_eq!((c.total, c.queued, c.running, c.passed, c.aborted, c.merged), (4, 1, 1, 1, 1, 1));

        assert_eq!(s.requeue_unfinished_items(id).unwrap(), 2);
        let all = s.batch_items(id).unwrap();
        assert_eq!(all[0].status, BatchItemStatus::Passed);
        assert_eq!((all[1].status, all[1].attempts), (BatchItemStatus::Queued, 2));
        assert_eq!((all[2].status, all[2].attempts), (BatchItemStatus::Queued, 1));
        assert_eq!(s.abort_queued_items(id, "aborted").unwrap(), 3);
        assert_eq!(s.batch_counts(id).unwrap().finished(), 4);

        assert!(!s.batch_abort_requested(id).unwrap());
        assert!(s.request_batch_abort(id).unwrap());
        assert!(s.batch_abort_requested(id).unwrap());
        s.set_batch_running(id, 42).unwrap();
        s.finish_batch(id, BatchStatus::Aborted, Some("the batch budget was reached")).unwrap();
        let b = s.get_batch(id).unwrap().unwrap();
        assert_eq!(
            (b.budget_usd, b.stop_reason.as_deref()),
            (Some(Money::from_usd(3.5)), Some("the batch budget was reached"))
        );
        assert_eq!(s.batch_spend_usd(id).unwrap(), Money::ZERO);
        s.set_batch_budget(id, Some(Money::from_usd(7.0))).unwrap();
        assert_eq!(s.get_batch(id).unwrap().unwrap().budget_usd, Some(Money::from_usd(7.0)));
        let got = s.get_batch(id).unwrap().unwrap();
        assert_eq!((got.status, got.runner_pid), (BatchStatus::Aborted, None));
    }
}

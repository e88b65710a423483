//! What batches and benchmark runs share in the store: ending one whose runner process died, in one
//! transaction and only while that process is still its runner of record (another process may have
//! resumed it in the meantime).

use crate::{Store, StoreError};
use ampsm_core::time::now_ms;
use rusqlite::params;

/// A kind of job with a runner: a batch (items) or a benchmark run (results).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Batch,
    Bench,
}

impl JobKind {
    /// The job table, its item table and the item column naming the job.
    fn tables(self) -> (&'static str, &'static str, &'static str) {
        match self {
            JobKind::Batch => ("batches", "batch_items", "batch_id"),
            JobKind::Bench => ("bench_runs", "bench_results", "run_id"),
        }
    }
}

/// What a settled job and its unfinished items are told.
#[derive(Debug, Clone)]
pub struct DeadRunnerNotes {
    /// The error of items that were running.
    pub interrupted: String,
    /// The error of items that had not started.
    pub not_started: String,
    /// The job's stop reason (kept when it already has one).
    pub reason: String,
}

impl Store {
    /// Ends job `id` of `kind` whose runner `pid` died: its running items end `aborted` with
    /// `notes.interrupted`, its queued ones `aborted` with `notes.not_started`, and the job `failed`. Only
    /// while `pid` is still its runner and it has not ended; returns whether it did.
    pub fn settle_dead_runner(
        &mut self,
        kind: JobKind,
        id: &str,
        pid: i64,
        notes: &DeadRunnerNotes,
    ) -> Result<bool, StoreError> {
        let (jobs, items, job_column) = kind.tables();
        self.write_tx(|tx| {
            let now = now_ms();
            let changed = tx.execute(
                &format!(
                    "UPDATE {jobs} SET status = 'failed', runner_pid = NULL, ended_at = ?3, \
                     stop_reason = COALESCE(stop_reason, ?4) \
                     WHERE id = ?1 AND runner_pid = ?2 AND status IN ('queued', 'running')"
                ),
                params![id, pid, now, notes.reason],
            )?;
            if changed == 0 {
                return Ok(false);
            }
            for (status, note) in [("running", &notes.interrupted), ("queued", &notes.not_started)] {
                tx.execute(
                    &format!(
                        "UPDATE {items} SET status = 'aborted', error = ?2, ended_at = ?3 \
                         WHERE {job_column} = ?1 AND status = ?4"
                    ),
                    params![id, note, now, status],
                )?;
            }
            Ok(true)
        })
    }

    /// Marks the items of job `id` that are in `status` (`queued` or `running`) `aborted` with `note`;
    /// returns how many.
    pub fn abort_job_items(
        &mut self,
        kind: JobKind,
        id: &str,
        status: &str,
        note: &str,
    ) -> Result<usize, StoreError> {
        let (_, items, job_column) = kind.tables();
        Ok(self.conn().execute(
            &format!(
                "UPDATE {items} SET status = 'aborted', error = ?2, ended_at = ?3 WHERE {job_column} = ?1 AND status = ?4"
            ),
            params![id, note, now_ms(), status],
        )?)
    }

    /// Ends job `id` with `status`, no runner, and `reason` as its stop reason (kept when it has one).
    pub fn finish_job(
        &mut self,
        kind: JobKind,
        id: &str,
        status: ampsm_core::JobStatus,
        reason: &str,
    ) -> Result<(), StoreError> {
        let (jobs, _, _) = kind.tables();
        self.conn().execute(
            &format!(
                "UPDATE {jobs} SET status = ?2, runner_pid = NULL, ended_at = ?3, \
                 stop_reason = COALESCE(stop_reason, ?4) WHERE id = ?1"
            ),
            params![id, status.as_str(), now_ms(), reason],
        )?;
        Ok(())
    }
}

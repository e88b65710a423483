//! Runs on a cluster: each submission of a batch's items (or a benchmark run's results) to a cluster
//! scheduler, the item each of its indexes runs, and taking in the store file a worker wrote on its node.
//!
//! - A **submission** is one Slurm job array or one Kubernetes Indexed Job. It is recorded before it is
//!   submitted (so a crash in between leaves a row without `cluster_job`, never a job nobody knows), gets
//!   the scheduler's id once submitted, and ends when none of its tasks can report any more.
//! - A **task** is one index of a submission: `pending` (submitted), `running` (its worker said it
//!   started), `done` (its result was taken in) or `lost` (the scheduler ended it without a result: the
//!   note says how).
//! - **Bundles.** A worker runs its item with a store of its own on its node and hands the file over;
//!   [`Store::import_session`] copies one session's rows out of it (iterations, events, tool calls,
//!   usage, commits, file changes, status changes, approvals) into a session of this store. Workers never
//!   open the coordinator's database: WAL files must not be shared over a network filesystem.

use crate::jobs::JobKind;
use crate::{Store, StoreError, text_column};
use ampsm_core::Executor;
use ampsm_core::time::now_ms;
use rusqlite::{OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// A submission to record (its tasks with it).
#[derive(Debug, Clone)]
pub struct NewSubmission {
    pub id: String,
    pub owner: JobKind,
    pub owner_id: String,
    pub executor: Executor,
    pub folder: String,
    /// (index, item id) of each task.
    pub tasks: Vec<(i64, String)>,
}

/// A submission as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Submission {
    pub id: String,
    pub owner_id: String,
    pub executor: Executor,
    /// The scheduler's id (a Slurm job id, a Kubernetes Job name), once submitted.
    pub cluster_job: Option<String>,
    pub folder: String,
    pub created_at: i64,
    pub submitted_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub cancelled_at: Option<i64>,
}

/// Where one task of a submission stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    Pending,
    Running,
    Done,
    Lost,
}

impl TaskState {
    fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::Running => "running",
            TaskState::Done => "done",
            TaskState::Lost => "lost",
        }
    }

    /// Whether nothing more will come of the task.
    pub fn is_final(self) -> bool {
        matches!(self, TaskState::Done | TaskState::Lost)
    }
}

impl std::str::FromStr for TaskState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [TaskState::Pending, TaskState::Running, TaskState::Done, TaskState::Lost]
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("unknown task state {s:?}"))
    }
}

/// One index of a submission.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterTask {
    pub submission_id: String,
    pub idx: i64,
    pub item_id: String,
    pub state: TaskState,
    pub note: Option<String>,
    /// How long taking its result in took, ms.
    pub ingest_ms: Option<i64>,
}

/// What a task's worker reports while it runs (`progress/<index>.json` in its submission folder), as the
/// coordinator last copied it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TaskProgress {
    /// The node it runs on.
    pub host: String,
    /// The attempt running (batch items; 1 for a benchmark result) and the name of its session there.
    pub attempt: i64,
    pub session: Option<String>,
    /// Lines of the agent's stream recorded so far in that session.
    pub events: i64,
    /// Tokens of its runs that ended so far (usage is stored when a run ends): input, output, cache
    /// reads and writes.
    pub tokens: i64,
    /// What it spent so far (known prices), USD.
    pub spent_usd: f64,
    /// The last recorded event, one line (as `logs` prints it).
    pub last: Option<String>,
    /// When the worker wrote it, ms since the epoch.
    pub at: i64,
}

impl TaskProgress {
    /// One line: lines recorded, tokens, and the last event cut to `last_chars` characters.
    pub fn note(&self, last_chars: usize) -> String {
        let last = match &self.last {
            Some(l) if l.chars().count() > last_chars => {
                format!("; {}…", l.chars().take(last_chars).collect::<String>())
            }
            Some(l) => format!("; {l}"),
            None => String::new(),
        };
        let lines = if self.events == 1 { "line" } else { "lines" };
        format!("{} {lines}, {} tokens{last}", self.events, self.tokens)
    }
}

/// How many rows of each kind [`Store::import_session`] copied.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ImportCounts {
    pub iterations: usize,
    pub events: usize,
    pub tool_calls: usize,
    pub usage_rows: usize,
    pub commits: usize,
}

fn owner_text(kind: JobKind) -> &'static str {
    match kind {
        JobKind::Batch => "batch",
        JobKind::Bench => "bench",
    }
}

const SUBMISSION_COLUMNS: &str =
    "id, owner_id, executor, cluster_job, folder, created_at, submitted_at, ended_at, cancelled_at";

fn submission_from_row(r: &Row<'_>) -> rusqlite::Result<Submission> {
    Ok(Submission {
        id: r.get(0)?,
        owner_id: r.get(1)?,
        executor: text_column(r, 2)?,
        cluster_job: r.get(3)?,
        folder: r.get(4)?,
        created_at: r.get(5)?,
        submitted_at: r.get(6)?,
        ended_at: r.get(7)?,
        cancelled_at: r.get(8)?,
    })
}

fn task_from_row(r: &Row<'_>) -> rusqlite::Result<ClusterTask> {
    Ok(ClusterTask {
        submission_id: r.get(0)?,
        idx: r.get(1)?,
        item_id: r.get(2)?,
        state: text_column(r, 3)?,
        note: r.get(4)?,
        ingest_ms: r.get(5)?,
    })
}

/// The tables a session's rows are copied from, parents first (iterations before what refers to them).
const SESSION_TABLES: &[&str] = &[
    "iterations",
    "status_changes",
    "agent_events",
    "tool_calls",
    "token_usage",
    "commits",
    "file_changes",
    "approvals",
];

impl Store {
    /// Writes a consistent copy of the whole database to the new file `to` (one file, no WAL beside
    /// it): what a worker hands over.
    pub fn copy_to(&self, to: &Path) -> Result<(), StoreError> {
        self.conn().execute("VACUUM INTO ?1", [to.to_string_lossy().as_ref()])?;
        Ok(())
    }

    /// The tokens (input, output, cache reads and writes) and the known cost of every session of this
    /// store so far (a worker's store holds its task's sessions only).
    pub fn usage_totals(&self) -> Result<(i64, ampsm_core::Money), StoreError> {
        let (tokens, usd): (i64, f64) = self.conn().query_row(
            "SELECT COALESCE(SUM(input_tokens + output_tokens + cache_read_tokens + cache_write_tokens), 0), \
             COALESCE(SUM(cost_usd), 0.0) FROM token_usage",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok((tokens, ampsm_core::Money::from_usd(usd)))
    }

    /// Records a submission and its tasks (`pending`), before it goes to the scheduler.
    pub fn insert_submission(&mut self, s: &NewSubmission) -> Result<(), StoreError> {
        self.write_tx(|tx| {
            tx.execute(
                "INSERT INTO cluster_submissions (id, owner_kind, owner_id, executor, folder, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![s.id, owner_text(s.owner), s.owner_id, s.executor.as_str(), s.folder, now_ms()],
            )?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO cluster_tasks (submission_id, idx, item_id) VALUES (?1, ?2, ?3)",
            )?;
            for (idx, item) in &s.tasks {
                insert.execute(params![s.id, idx, item])?;
            }
            Ok(())
        })
    }

    /// Records the scheduler's id of a submission once it accepted it.
    pub fn set_submitted(&mut self, id: &str, cluster_job: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE cluster_submissions SET cluster_job = ?2, submitted_at = ?3 WHERE id = ?1",
            params![id, cluster_job, now_ms()],
        )?;
        Ok(())
    }

    /// Marks a submission cancelled (an abort or a budget stop asked the scheduler to end it).
    pub fn set_submission_cancelled(&mut self, id: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE cluster_submissions SET cancelled_at = coalesce(cancelled_at, ?2) WHERE id = ?1",
            params![id, now_ms()],
        )?;
        Ok(())
    }

    /// Ends a submission: none of its tasks can report any more.
    pub fn end_submission(&mut self, id: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE cluster_submissions SET ended_at = coalesce(ended_at, ?2) WHERE id = ?1",
            params![id, now_ms()],
        )?;
        Ok(())
    }

    /// The submissions of a batch or benchmark run, oldest first.
    pub fn submissions_of(&self, owner: JobKind, owner_id: &str) -> Result<Vec<Submission>, StoreError> {
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {SUBMISSION_COLUMNS} FROM cluster_submissions WHERE owner_kind = ?1 AND owner_id = ?2 \
             ORDER BY created_at, id"
        ))?;
        let rows = stmt.query_map(params![owner_text(owner), owner_id], submission_from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// One submission.
    pub fn get_submission(&self, id: &str) -> Result<Option<Submission>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {SUBMISSION_COLUMNS} FROM cluster_submissions WHERE id = ?1"),
                [id],
                submission_from_row,
            )
            .optional()?)
    }

    /// The tasks of a submission, by index.
    pub fn tasks_of(&self, submission: &str) -> Result<Vec<ClusterTask>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT submission_id, idx, item_id, state, note, ingest_ms FROM cluster_tasks WHERE submission_id = ?1 \
             ORDER BY idx",
        )?;
        let rows = stmt.query_map([submission], task_from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Records how long taking a task's result in took.
    pub fn set_task_ingest_ms(&mut self, submission: &str, idx: i64, ms: u64) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE cluster_tasks SET ingest_ms = ?3 WHERE submission_id = ?1 AND idx = ?2",
            params![submission, idx, ms as i64],
        )?;
        Ok(())
    }

    /// Records what a task reports while it runs; returns whether it changed (a final task keeps none).
    pub fn set_task_progress(
        &mut self,
        submission: &str,
        idx: i64,
        progress: &TaskProgress,
    ) -> Result<bool, StoreError> {
        let json = serde_json::to_string(progress).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let n = self.conn().execute(
            "UPDATE cluster_tasks SET progress = ?3 WHERE submission_id = ?1 AND idx = ?2 \
             AND state NOT IN ('done', 'lost') AND progress IS NOT ?3",
            params![submission, idx, json],
        )?;
        Ok(n > 0)
    }

    /// What the running tasks of a batch or benchmark run report, by the item (result) they run.
    pub fn running_task_progress(
        &self,
        owner: JobKind,
        owner_id: &str,
    ) -> Result<HashMap<String, TaskProgress>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT t.item_id, t.progress FROM cluster_tasks t \
             JOIN cluster_submissions s ON s.id = t.submission_id \
             WHERE s.owner_kind = ?1 AND s.owner_id = ?2 AND t.state = 'running' AND t.progress IS NOT NULL",
        )?;
        let rows = stmt.query_map(params![owner_text(owner), owner_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = HashMap::new();
        for row in rows {
            let (item, json) = row?;
            // A row written by another version that does not parse is shown as nothing, not an error.
            if let Ok(p) = serde_json::from_str(&json) {
                out.insert(item, p);
            }
        }
        Ok(out)
    }

    /// Moves a task on; a final state is kept (a late report of a task already taken in or lost changes
    /// nothing). Returns whether it changed.
    pub fn set_task_state(
        &mut self,
        submission: &str,
        idx: i64,
        state: TaskState,
        note: Option<&str>,
    ) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "UPDATE cluster_tasks SET state = ?3, note = coalesce(?4, note) \
             WHERE submission_id = ?1 AND idx = ?2 AND state NOT IN ('done', 'lost')",
            params![submission, idx, state.as_str(), note],
        )?;
        Ok(n > 0)
    }

    /// Copies session `from` of the store file `bundle` (a worker's, same schema version) into session
    /// `into` of this store: every row of [`SESSION_TABLES`] with its session replaced (row ids of
    /// integer-keyed tables are given anew; iteration and approval ids are random and kept), and the
    /// session's status, note and thread. In one transaction: all of it or nothing.
    pub fn import_session(
        &mut self,
        bundle: &Path,
        from: &str,
        into: &ampsm_core::SessionId,
    ) -> Result<ImportCounts, StoreError> {
        let fail = |message: String| StoreError::Bundle { path: bundle.to_path_buf(), message };
        let uri = bundle.to_string_lossy().into_owned();
        self.conn().execute("ATTACH DATABASE ?1 AS bundle", [&uri])?;
        let result = (|| -> Result<ImportCounts, StoreError> {
            let version: i64 = self.conn().query_row("PRAGMA bundle.user_version", [], |r| r.get(0))?;
            let ours = crate::SCHEMA_VERSION;
            if version != ours {
                return Err(fail(format!(
                    "its schema version is {version}, this program's is {ours}: the worker must run the same \
                     amp-sessions version as the coordinator"
                )));
            }
            let exists: bool = self
                .conn()
                .query_row("SELECT count(*) FROM bundle.sessions WHERE id = ?1", [from], |r| {
                    r.get::<_, i64>(0)
                })
                .map(|n| n > 0)?;
            if !exists {
                return Err(fail(format!("it has no session {from}")));
            }
            let mut plan = Vec::new();
            for table in SESSION_TABLES {
                let mut columns = Vec::new();
                let mut stmt = self.conn().prepare(&format!("PRAGMA main.table_info({table})"))?;
                let rows = stmt.query_map([], |r| {
                    Ok((r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, i64>(5)?))
                })?;
                for row in rows {
                    let (name, ty, pk) = row?;
                    // An INTEGER PRIMARY KEY is the rowid: given anew here.
                    if pk == 1 && ty.eq_ignore_ascii_case("INTEGER") {
                        continue;
                    }
                    columns.push(name);
                }
                let select: Vec<String> = columns
                    .iter()
                    .map(|c| match c.as_str() {
                        "session_id" => "?1".to_string(),
                        // The worker's processes mean nothing here.
                        "runner_pid" => "NULL".to_string(),
                        other => other.to_string(),
                    })
                    .collect();
                plan.push(format!(
                    "INSERT INTO main.{table} ({}) SELECT {} FROM bundle.{table} WHERE session_id = ?2 ORDER BY rowid",
                    columns.join(", "),
                    select.join(", ")
                ));
            }
            let into = into.as_str().to_string();
            let from = from.to_string();
            self.write_tx(|tx| {
                let mut counts = ImportCounts::default();
                for (table, sql) in SESSION_TABLES.iter().zip(&plan) {
                    let n = tx.execute(sql, params![into, from])?;
                    match *table {
                        "iterations" => counts.iterations = n,
                        "agent_events" => counts.events = n,
                        "tool_calls" => counts.tool_calls = n,
                        "token_usage" => counts.usage_rows = n,
                        "commits" => counts.commits = n,
                        _ => {}
                    }
                }
                tx.execute(
                    "UPDATE main.sessions SET (status, status_note, thread_id, updated_at) = \
                     (SELECT status, status_note, thread_id, updated_at FROM bundle.sessions WHERE id = ?2) \
                     WHERE id = ?1",
                    params![into, from],
                )?;
                Ok(counts)
            })
        })();
        let detached = self.conn().execute("DETACH DATABASE bundle", []);
        let counts = result?;
        detached?;
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Submission `sub1` of batch `b1` on Slurm, its tasks running `items` in order.
    fn batch_submission(items: &[&str]) -> NewSubmission {
        NewSubmission {
            id: "sub1".into(),
            owner: JobKind::Batch,
            owner_id: "b1".into(),
            executor: Executor::Slurm,
            folder: "/w/sub1".into(),
            tasks: items.iter().enumerate().map(|(i, item)| (i as i64, item.to_string())).collect(),
        }
    }

    #[test]
    fn tasks_keep_their_final_state() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("s.db")).unwrap();
        s.insert_submission(&batch_submission(&["i1", "i2"])).unwrap();
        assert_eq!(s.get_submission("sub1").unwrap().unwrap().cluster_job, None);
        s.set_submitted("sub1", "42").unwrap();
        let got = s.submissions_of(JobKind::Batch, "b1").unwrap();
        assert_eq!((got.len(), got[0].cluster_job.as_deref()), (1, Some("42")));
        assert!(s.set_task_state("sub1", 0, TaskState::Running, None).unwrap());
        assert!(s.set_task_state("sub1", 0, TaskState::Done, None).unwrap());
        // A late report changes nothing.
        assert!(!s.set_task_state("sub1", 0, TaskState::Lost, Some("late")).unwrap());
        assert!(s.set_task_state("sub1", 1, TaskState::Lost, Some("CANCELLED")).unwrap());
        let tasks = s.tasks_of("sub1").unwrap();
        assert_eq!(tasks[0].state, TaskState::Done);
        assert_eq!((tasks[1].state, tasks[1].note.as_deref()), (TaskState::Lost, Some("CANCELLED")));
        assert!(s.submissions_of(JobKind::Bench, "b1").unwrap().is_empty());
    }

    #[test]
    fn progress_is_kept_for_running_tasks_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("s.db")).unwrap();
        s.insert_submission(&batch_submission(&["i1", "i2", "i3"])).unwrap();
        let p = TaskProgress {
            host: "node7".into(),
            attempt: 2,
            session: Some("fix-1a2b3c4d-2".into()),
            events: 1204,
            tokens: 18_330,
            spent_usd: 0.0412,
            last: Some(format!("tool_use Edit [toolu_1] {}", "x".repeat(200))),
            at: 1,
        };
        for idx in 0..3 {
            s.set_task_state("sub1", idx, TaskState::Running, None).unwrap();
            assert!(s.set_task_progress("sub1", idx, &p).unwrap());
        }
        // The same report again changes nothing; a task that ended keeps none.
        assert!(!s.set_task_progress("sub1", 0, &p).unwrap());
        s.set_task_state("sub1", 1, TaskState::Done, None).unwrap();
        s.set_task_state("sub1", 2, TaskState::Lost, Some("NODE_FAIL")).unwrap();
        assert!(!s.set_task_progress("sub1", 2, &TaskProgress { events: 1300, ..p.clone() }).unwrap());
        let running = s.running_task_progress(JobKind::Batch, "b1").unwrap();
        assert_eq!(running.keys().collect::<Vec<_>>(), ["i1"]);
        assert_eq!(running["i1"], p);
        assert!(s.running_task_progress(JobKind::Bench, "b1").unwrap().is_empty());
        let note = p.note(20);
        assert_eq!(note, "1204 lines, 18330 tokens; tool_use Edit [toolu…");
        assert_eq!(TaskProgress { events: 1, last: None, ..p }.note(20), "1 line, 18330 tokens");
    }
}

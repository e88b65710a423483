//! Read access for metrics, the timeline and exports: commits, merges and file changes of a session,
//! budget bookkeeping (spend so far, the budget itself, notes in the status history), error events, and
//! row-by-row iteration over every exported table. Exports walk a prepared statement one row at a time and
//! hand each row to a callback, so memory stays flat however many events a session holds.

use crate::runs::ToolCall;
use crate::{Store, StoreError};
use ampsm_core::time::now_ms;
use ampsm_core::{MergeResult, Money, SessionId};
use rusqlite::types::ValueRef;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

/// A commit recorded for a session.
#[derive(Debug, Clone, Serialize)]
pub struct CommitRecord {
    pub sha: String,
    pub iteration_id: Option<String>,
    pub kind: String,
    pub subject: String,
    pub created_at: i64,
}

/// A merge attempt recorded for a session.
#[derive(Debug, Clone, Serialize)]
pub struct MergeRecord {
    pub id: String,
    pub strategy: String,
    pub base_branch: String,
    pub base_before: Option<String>,
    pub base_after: Option<String>,
    pub session_head: Option<String>,
    pub result: MergeResult,
    pub conflicts: Vec<String>,
    pub message: Option<String>,
    pub pushed: bool,
    pub pr_url: Option<String>,
    pub created_at: i64,
}

/// A merge attempt to record (see [`Store::insert_merge`]).
#[derive(Debug, Clone)]
pub struct NewMerge<'a> {
    pub session: &'a SessionId,
    pub strategy: &'a str,
    pub base_branch: &'a str,
    pub base_before: Option<&'a str>,
    pub base_after: Option<&'a str>,
    pub session_head: Option<&'a str>,
    pub result: MergeResult,
    pub conflicts: &'a [String],
    pub message: Option<&'a str>,
    pub pr_url: Option<&'a str>,
}

/// What a session has spent so far according to its recorded usage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Spend {
    /// Sum of the known costs, USD.
    pub known_usd: Money,
    /// Usage rows with tokens but no known cost (their cost is not in `known_usd`).
    pub unpriced_rows: i64,
}

/// One error or retry the agent reported, from the event log.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorEvent {
    pub iteration_id: Option<String>,
    pub ts: i64,
    /// `error` or `retry`.
    pub kind: String,
    pub fatal: bool,
    pub message: String,
}

/// Errors and retries of a session (see [`Store::error_summary`]).
#[derive(Debug, Clone, Default)]
pub struct ErrorSummary {
    /// How many the agent reported.
    pub count: usize,
    /// The first of them, oldest first.
    pub first: Vec<ErrorEvent>,
    /// The latest of them, oldest first.
    pub latest: Vec<ErrorEvent>,
}

/// What was read of a session's event log for its errors: up to which line, and what it found.
#[derive(Debug, Clone, Default)]
struct ErrorScan {
    last_id: i64,
    keep: usize,
    summary: ErrorSummary,
}

/// Sessions whose error scans are remembered at most (the memory is dropped whole past that).
const ERROR_SCANS_KEPT: usize = 256;

type ErrorScans = std::sync::Mutex<std::collections::HashMap<(std::path::PathBuf, String), ErrorScan>>;

fn error_scans() -> &'static ErrorScans {
    static SCANS: std::sync::OnceLock<ErrorScans> = std::sync::OnceLock::new();
    SCANS.get_or_init(Default::default)
}

/// The tool calls of one tool in a session, counted in SQL (see [`Store::tool_stats`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolStats {
    pub name: String,
    pub count: usize,
    pub succeeded: usize,
    pub failed: usize,
    /// Calls that never got a result.
    pub no_result: usize,
    /// Calls that were not allowed (policy, sandbox or user).
    pub denied: usize,
    /// Sum of the durations of the calls with a result and a duration.
    pub duration_sum_ms: Option<i64>,
    /// How many durations that sum covers.
    pub durations: usize,
    pub max_duration_ms: Option<i64>,
    /// Nearest-rank 95th percentile of those durations.
    pub p95_duration_ms: Option<i64>,
}

/// One value of an exported row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

/// What an export covers.
#[derive(Debug, Clone)]
pub enum ExportScope {
    /// One session's rows.
    Session(String),
    /// One batch and its items (the items' sessions are exported as sessions).
    Batch(String),
    /// One benchmark run and its results.
    Bench(String),
}

/// A table as exported: its name and its columns, in a stable order (the CSV header and the JSON keys).
#[derive(Debug, Clone, Copy)]
pub struct ExportTable {
    pub name: &'static str,
    pub columns: &'static [&'static str],
    /// The column holding raw text that can be very long (CSV clips it), if any.
    pub long_text: &'static [&'static str],
    /// The SQL table the rows come from.
    source: &'static str,
    key: &'static str,
    order: &'static str,
}

/// Tables exported per session, in export order.
pub const SESSION_TABLES: &[ExportTable] = &[
    ExportTable {
        name: "sessions",
        columns: &[
            "id",
            "name",
            "repo_path",
            "base_branch",
            "base_commit",
            "branch",
            "worktree_path",
            "status",
            "status_note",
            "agent",
            "model",
            "prompt",
            "script",
            "budget_usd",
            "thread_id",
            "batch_item_id",
            "bench_result_id",
            "created_at",
            "updated_at",
            "removed_at",
        ],
        long_text: &[],
        source: "sessions",
        key: "id",
        order: "created_at",
    },
    ExportTable {
        name: "iterations",
        columns: &[
            "id",
            "session_id",
            "seq",
            "kind",
            "prompt",
            "agent",
            "model",
            "thread_id",
            "started_at",
            "ended_at",
            "outcome",
            "exit_code",
            "signal",
            "error",
            "awaiting_input",
            "commit_sha",
            "test_exit_code",
            "test_output",
            "test_duration_ms",
            "cost_usd",
            "cost_source",
        ],
        long_text: &["test_output"],
        source: "iterations",
        key: "session_id",
        order: "seq",
    },
    ExportTable {
        name: "events",
        columns: &[
            "id",
            "session_id",
            "iteration_id",
            "seq",
            "ts",
            "stream",
            "kind",
            "truncated",
            "raw",
            "normalized",
        ],
        long_text: &["raw", "normalized"],
        source: "agent_events",
        key: "session_id",
        order: "id",
    },
    ExportTable {
        name: "tool_calls",
        columns: &[
            "session_id",
            "iteration_id",
            "call_id",
            "name",
            "input",
            "started_at",
            "ended_at",
            "duration_ms",
            "success",
            "exit_code",
            "output_excerpt",
        ],
        long_text: &["input", "output_excerpt"],
        source: "tool_calls",
        key: "session_id",
        order: "started_at, id",
    },
    ExportTable {
        name: "token_usage",
        columns: &[
            "session_id",
            "iteration_id",
            "model",
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "reasoning_tokens",
            "cost_usd",
            "cost_source",
            "price_entry",
            "recorded_at",
        ],
        long_text: &[],
        source: "token_usage",
        key: "session_id",
        order: "id",
    },
    ExportTable {
        name: "commits",
        columns: &["session_id", "sha", "iteration_id", "kind", "subject", "created_at"],
        long_text: &[],
        source: "commits",
        key: "session_id",
        order: "created_at, rowid",
    },
    ExportTable {
        name: "file_changes",
        columns: &[
            "session_id",
            "iteration_id",
            "commit_sha",
            "path",
            "old_path",
            "lines_added",
            "lines_removed",
            "binary",
        ],
        long_text: &[],
        source: "file_changes",
        key: "session_id",
        order: "id",
    },
    ExportTable {
        name: "status_changes",
        columns: &["session_id", "from_status", "to_status", "reason", "at"],
        long_text: &[],
        source: "status_changes",
        key: "session_id",
        order: "id",
    },
    ExportTable {
        name: "merges",
        columns: &[
            "id",
            "session_id",
            "strategy",
            "base_branch",
            "base_before",
            "base_after",
            "session_head",
            "result",
            "conflicts",
            "message",
            "pushed",
            "pr_url",
            "created_at",
        ],
        long_text: &[],
        source: "merges",
        key: "session_id",
        order: "created_at, rowid",
    },
    ExportTable {
        name: "snapshots",
        columns: &["session_id", "seq", "refname", "sha", "branch", "reason", "created_at", "restored_at"],
        long_text: &[],
        source: "snapshots",
        key: "session_id",
        order: "seq",
    },
];

/// The batches table and its items.
pub const BATCH_TABLES: &[ExportTable] = &[
    ExportTable {
        name: "batches",
        columns: &[
            "id",
            "name",
            "file_path",
            "spec",
            "status",
            "concurrency",
            "budget_usd",
            "abort_requested",
            "stop_reason",
            "created_at",
            "started_at",
            "ended_at",
        ],
        long_text: &["spec"],
        source: "batches",
        key: "id",
        order: "created_at",
    },
    ExportTable {
        name: "batch_items",
        columns: &[
            "id",
            "batch_id",
            "seq",
            "item_name",
            "repo_path",
            "base_branch",
            "prompt",
            "script",
            "agent",
            "model",
            "timeout_ms",
            "retries",
            "merge_on_pass",
            "budget_usd",
            "status",
            "attempts",
            "session_id",
            "merged",
            "error",
            "started_at",
            "ended_at",
        ],
        long_text: &[],
        source: "batch_items",
        key: "batch_id",
        order: "seq",
    },
];

/// The benchmark runs table and its results.
pub const BENCH_TABLES: &[ExportTable] = &[
    ExportTable {
        name: "bench_runs",
        columns: &[
            "id",
            "kind",
            "name",
            "config",
            "status",
            "concurrency",
            "budget_usd",
            "abort_requested",
            "stop_reason",
            "out_dir",
            "created_at",
            "started_at",
            "ended_at",
        ],
        long_text: &["config"],
        source: "bench_runs",
        key: "id",
        order: "created_at",
    },
    ExportTable {
        name: "bench_results",
        columns: &[
            "id",
            "run_id",
            "seq",
            "instance_id",
            "agent",
            "model",
            "repeat",
            "session_id",
            "status",
            "agent_outcome",
            "resolved",
            "model_patch",
            "tests_passed",
            "tests_failed",
            "test_report",
            "error",
            "duration_ms",
            "total_tokens",
            "cost_usd",
            "started_at",
            "ended_at",
        ],
        long_text: &["model_patch", "test_report"],
        source: "bench_results",
        key: "run_id",
        order: "seq, rowid",
    },
];

/// Whether a column holds a Unix-millisecond time (exported as RFC 3339).
pub fn is_time_column(column: &str) -> bool {
    column == "ts" || column == "at" || column.ends_with("_at")
}

impl Store {
    /// Commits recorded for a session, oldest first.
    pub fn list_commits(&self, session: &SessionId) -> Result<Vec<CommitRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT sha, iteration_id, kind, subject, created_at FROM commits WHERE session_id = ?1 \
             ORDER BY created_at, rowid",
        )?;
        let rows = stmt.query_map([session.as_str()], |r| {
            Ok(CommitRecord {
                sha: r.get(0)?,
                iteration_id: r.get(1)?,
                kind: r.get(2)?,
                subject: r.get(3)?,
                created_at: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Records a merge attempt (not pushed yet) and returns its new id.
    pub fn insert_merge(&mut self, m: &NewMerge<'_>) -> Result<String, StoreError> {
        let id = ampsm_core::id::new_id();
        let conflicts = serde_json::to_string(m.conflicts).unwrap_or_else(|_| "[]".into());
        self.conn.execute(
            "INSERT INTO merges (id, session_id, strategy, base_branch, base_before, base_after, session_head, \
             result, conflicts, message, pushed, pr_url, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 0, ?11, ?12)",
            params![
                id,
                m.session.as_str(),
                m.strategy,
                m.base_branch,
                m.base_before,
                m.base_after,
                m.session_head,
                m.result.as_str(),
                conflicts,
                m.message,
                m.pr_url,
                now_ms()
            ],
        )?;
        Ok(id)
    }

    /// Marks a recorded merge as pushed to its remote.
    pub fn mark_merge_pushed(&mut self, merge_id: &str) -> Result<(), StoreError> {
        self.conn.execute("UPDATE merges SET pushed = 1 WHERE id = ?1", [merge_id])?;
        Ok(())
    }

    /// How many stream lines (agent events) the store holds over every session, and how many normalized
    /// events they carry.
    pub fn event_totals(&self) -> Result<(i64, i64), StoreError> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(json_array_length(normalized)), 0) FROM agent_events",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }

    /// How many commits the agents made, over every session.
    pub fn agent_commit_total(&self) -> Result<i64, StoreError> {
        Ok(self.conn.query_row("SELECT COUNT(*) FROM commits WHERE kind = 'agent'", [], |r| r.get(0))?)
    }

    /// Merge attempts of a session, oldest first.
    pub fn list_merges(&self, session: &SessionId) -> Result<Vec<MergeRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, strategy, base_branch, base_before, base_after, session_head, result, conflicts, message, \
             pushed, pr_url, created_at FROM merges WHERE session_id = ?1 ORDER BY created_at, rowid",
        )?;
        let rows = stmt.query_map([session.as_str()], |r| {
            let conflicts: Option<String> = r.get(7)?;
            Ok(MergeRecord {
                id: r.get(0)?,
                strategy: r.get(1)?,
                base_branch: r.get(2)?,
                base_before: r.get(3)?,
                base_after: r.get(4)?,
                session_head: r.get(5)?,
                result: crate::text_column(r, 6)?,
                conflicts: conflicts.and_then(|c| serde_json::from_str(&c).ok()).unwrap_or_default(),
                message: r.get(8)?,
                pushed: r.get(9)?,
                pr_url: r.get(10)?,
                created_at: r.get(11)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// What a session has spent so far: the sum of the known costs of its usage rows, and how many rows
    /// with tokens have no known cost.
    pub fn session_spend(&self, session: &SessionId) -> Result<Spend, StoreError> {
        Ok(self.conn.query_row(
            "SELECT COALESCE(SUM(cost_usd), 0.0), \
             COALESCE(SUM(CASE WHEN cost_usd IS NULL AND (input_tokens + output_tokens + cache_read_tokens \
             + cache_write_tokens) > 0 THEN 1 ELSE 0 END), 0) FROM token_usage WHERE session_id = ?1",
            [session.as_str()],
            |r| Ok(Spend { known_usd: Money::from_usd(r.get(0)?), unpriced_rows: r.get(1)? }),
        )?)
    }

    /// Sets (or clears, with `None`) a session's budget in USD.
    pub fn set_budget(&mut self, session: &SessionId, budget_usd: Option<Money>) -> Result<(), StoreError> {
        let n = self.conn.execute(
            "UPDATE sessions SET budget_usd = ?2, updated_at = ?3 WHERE id = ?1",
            params![session.as_str(), budget_usd.map(Money::usd), now_ms()],
        )?;
        if n == 0 {
            return Err(StoreError::SessionNotFound(session.to_string()));
        }
        Ok(())
    }

    /// Adds a note to a session's status history without changing its status (a row whose from and to
    /// status are the current one), e.g. "budget: 80 % reached".
    pub fn record_note(&mut self, session: &SessionId, note: &str) -> Result<(), StoreError> {
        self.write_tx(|tx| {
            let status: Option<String> = tx
                .query_row("SELECT status FROM sessions WHERE id = ?1", [session.as_str()], |r| r.get(0))
                .optional()?;
            let status = status.ok_or_else(|| StoreError::SessionNotFound(session.to_string()))?;
            tx.execute(
                "INSERT INTO status_changes (session_id, from_status, to_status, reason, at) VALUES (?1, ?2, ?2, ?3, ?4)",
                params![session.as_str(), status, note, now_ms()],
            )?;
            Ok(())
        })
    }

    /// Errors and retries the agent reported, oldest first: the count of all of them and the first `keep`.
    pub fn error_events(
        &self,
        session: &SessionId,
        keep: usize,
    ) -> Result<(usize, Vec<ErrorEvent>), StoreError> {
        let summary = self.error_summary(session, keep)?;
        Ok((summary.count, summary.first))
    }

    /// Errors and retries the agent reported: how many, the first `keep` and the latest `keep`. The event
    /// log is append-only, so what was read once is remembered for this database and session, and a later
    /// call reads only the lines added since (an index walk from the last line read): the first call reads
    /// the session's log once, one row at a time; the next ones are as fast for a session of 100,000 lines
    /// as for one of ten.
    pub fn error_summary(&self, session: &SessionId, keep: usize) -> Result<ErrorSummary, StoreError> {
        let key = (self.path().to_path_buf(), session.as_str().to_string());
        let cached = error_scans().lock().ok().and_then(|m| m.get(&key).filter(|c| c.keep == keep).cloned());
        let mut scan = cached.unwrap_or_else(|| ErrorScan { keep, ..ErrorScan::default() });
        // The scan stops at the last line there is now: lines written while it reads are left to the next
        // call, never skipped.
        let last: i64 = self.conn.query_row(
            "SELECT COALESCE(MAX(id), 0) FROM agent_events WHERE session_id = ?1",
            [session.as_str()],
            |r| r.get(0),
        )?;
        if last < scan.last_id {
            // Fewer lines than were read: not the log that was read (a database put back in its place).
            scan = ErrorScan { keep, ..ErrorScan::default() };
        }
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, iteration_id, ts, normalized FROM agent_events WHERE session_id = ?1 AND id > ?2 \
             AND id <= ?3 AND (instr(normalized, '\"kind\":\"error\"') > 0 OR instr(normalized, '\"kind\":\"retry\"') > 0) \
             ORDER BY id",
        )?;
        let before = scan.last_id;
        let mut rows = stmt.query(params![session.as_str(), before, last])?;
        while let Some(row) = rows.next()? {
            scan.last_id = row.get(0)?;
            let normalized: String = row.get(3)?;
            let Ok(events) = serde_json::from_str::<Vec<ampsm_core::AgentEvent>>(&normalized) else {
                continue;
            };
            for ev in events {
                let (kind, fatal, message) = match ev {
                    ampsm_core::AgentEvent::Error { message, fatal } => ("error", fatal, message),
                    ampsm_core::AgentEvent::Retry { message, .. } => ("retry", false, message),
                    _ => continue,
                };
                let e = ErrorEvent {
                    iteration_id: row.get(1)?,
                    ts: row.get(2)?,
                    kind: kind.to_string(),
                    fatal,
                    message,
                };
                scan.summary.count += 1;
                if scan.summary.first.len() < keep {
                    scan.summary.first.push(e.clone());
                }
                if keep > 0 {
                    if scan.summary.latest.len() == keep {
                        scan.summary.latest.remove(0);
                    }
                    scan.summary.latest.push(e);
                }
            }
        }
        drop(rows);
        // Lines without errors are not read again either: the scan covered the log up to `last`.
        scan.last_id = scan.last_id.max(last);
        if let Ok(mut m) = error_scans().lock() {
            if m.len() >= ERROR_SCANS_KEPT && !m.contains_key(&key) {
                m.clear();
            }
            let newer = m.get(&key).is_none_or(|c| c.keep != keep || c.last_id != scan.last_id);
            if newer {
                m.insert(key, scan.clone());
            }
        }
        Ok(scan.summary)
    }

    /// The sessions with at least `min_lines` stream lines, most lines first, at most `limit` of them
    /// (an index-only count).
    pub fn long_sessions(&self, min_lines: i64, limit: i64) -> Result<Vec<SessionId>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT session_id FROM agent_events GROUP BY session_id HAVING COUNT(*) >= ?1 \
             ORDER BY COUNT(*) DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![min_lines, limit], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<Vec<String>, _>>()?.into_iter().map(SessionId::from_stored).collect())
    }

    /// Tool calls of a session counted per tool (calls, results, denials, durations and their nearest-rank
    /// p95), most used first. Only four small columns of each call are read (never its input or output), one
    /// row at a time; what stays in memory is one duration per call with a result.
    pub fn tool_stats(&self, session: &SessionId) -> Result<Vec<ToolStats>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT name, success, denied, duration_ms FROM tool_calls WHERE session_id = ?1",
        )?;
        let mut rows = stmt.query([session.as_str()])?;
        let mut by_name: std::collections::BTreeMap<String, (ToolStats, Vec<i64>)> = Default::default();
        while let Some(row) = rows.next()? {
            let name = match row.get_ref(0)? {
                ValueRef::Text(t) => String::from_utf8_lossy(t),
                _ => std::borrow::Cow::Borrowed(""),
            };
            let success: Option<bool> = row.get(1)?;
            let denied: bool = row.get(2)?;
            let duration: Option<i64> = row.get(3)?;
            if !by_name.contains_key(name.as_ref()) {
                let empty = ToolStats {
                    name: name.to_string(),
                    count: 0,
                    succeeded: 0,
                    failed: 0,
                    no_result: 0,
                    denied: 0,
                    duration_sum_ms: None,
                    durations: 0,
                    max_duration_ms: None,
                    p95_duration_ms: None,
                };
                by_name.insert(name.to_string(), (empty, Vec::new()));
            }
            let Some((t, durations)) = by_name.get_mut(name.as_ref()) else { continue };
            t.count += 1;
            match success {
                Some(true) => t.succeeded += 1,
                Some(false) => t.failed += 1,
                None => t.no_result += 1,
            }
            if denied {
                t.denied += 1;
            }
            if let (Some(_), Some(d)) = (success, duration) {
                durations.push(d);
            }
        }
        let mut out: Vec<ToolStats> = by_name
            .into_values()
            .map(|(mut t, mut durations)| {
                durations.sort_unstable();
                t.durations = durations.len();
                if !durations.is_empty() {
                    t.duration_sum_ms = Some(durations.iter().sum());
                    t.max_duration_ms = durations.last().copied();
                    // Nearest rank: the ceil(0.95 × n)-th smallest.
                    let rank = (95 * durations.len()).div_ceil(100).clamp(1, durations.len());
                    t.p95_duration_ms = Some(durations[rank - 1]);
                }
                t
            })
            .collect();
        out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
        Ok(out)
    }

    /// The tool calls of a session that were not allowed, in call order (only those rows are read).
    pub fn denied_tool_calls(&self, session: &SessionId) -> Result<Vec<ToolCall>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {} FROM tool_calls WHERE session_id = ?1 AND denied = 1 ORDER BY started_at, id",
            crate::runs::TOOL_CALL_COLUMNS
        ))?;
        let rows = stmt.query_map([session.as_str()], crate::runs::tool_call_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Ids of every session created to the end (removed ones too), oldest first.
    pub fn all_session_ids(&self) -> Result<Vec<SessionId>, StoreError> {
        self.ids("SELECT id FROM sessions WHERE creating_pid IS NULL ORDER BY created_at, id", None)
    }

    /// Ids of the sessions of a batch's items, in item order.
    pub fn batch_session_ids(&self, batch_id: &str) -> Result<Vec<SessionId>, StoreError> {
        self.ids(
            "SELECT DISTINCT session_id FROM batch_items WHERE batch_id = ?1 AND session_id IS NOT NULL ORDER BY seq",
            Some(batch_id),
        )
    }

    /// Ids of the sessions of a benchmark run's results (every attempt's, after a `bench resume`).
    pub fn bench_session_ids(&self, run_id: &str) -> Result<Vec<SessionId>, StoreError> {
        self.ids(
            "SELECT s.id FROM sessions s JOIN bench_results r ON r.id = s.bench_result_id WHERE r.run_id = ?1 \
             ORDER BY r.seq, s.created_at, s.id",
            Some(run_id),
        )
    }

    /// Ids of every batch (`RunTable::Batches`) or benchmark run, oldest first.
    pub fn all_run_ids(&self, table: RunTable) -> Result<Vec<String>, StoreError> {
        let sql = match table {
            RunTable::Batches => "SELECT id FROM batches ORDER BY created_at, id",
            RunTable::BenchRuns => "SELECT id FROM bench_runs ORDER BY created_at, id",
        };
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn ids(&self, sql: &str, arg: Option<&str>) -> Result<Vec<SessionId>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let map = |r: &rusqlite::Row<'_>| r.get::<_, String>(0);
        let rows: Vec<String> = match arg {
            Some(a) => stmt.query_map([a], map)?.collect::<Result<_, _>>()?,
            None => stmt.query_map([], map)?.collect::<Result<_, _>>()?,
        };
        Ok(rows.into_iter().map(SessionId::from_stored).collect())
    }

    /// The full id of a batch (`table` = `batches`) or benchmark run (`bench_runs`) from its id, a unique
    /// id prefix, or its name; `None` when nothing matches, an error listing the candidates when several do.
    pub fn resolve_run_id(&self, table: RunTable, reference: &str) -> Result<Option<String>, StoreError> {
        let name = match table {
            RunTable::Batches => "batches",
            RunTable::BenchRuns => "bench_runs",
        };
        let reference = reference.trim();
        let mut stmt = self.conn.prepare(&format!(
            "SELECT id FROM {name} WHERE id = ?1 OR (length(?1) >= 4 AND id LIKE ?1 || '%') OR name = ?1 \
             ORDER BY created_at LIMIT 10"
        ))?;
        let found: Vec<String> =
            stmt.query_map([reference], |r| r.get::<_, String>(0))?.collect::<Result<_, _>>()?;
        if let Some(exact) = found.iter().find(|id| id.as_str() == reference) {
            return Ok(Some(exact.clone()));
        }
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.into_iter().next()),
            _ => Err(StoreError::AmbiguousSession {
                reference: reference.to_string(),
                candidates: found.join(", "),
            }),
        }
    }

    /// Walks the rows of `table` that belong to `scope`, one at a time, in a stable order; `f` gets the
    /// values in the order of `table.columns`. Returns the number of rows.
    pub fn export_rows<E: From<StoreError>>(
        &self,
        table: &ExportTable,
        scope: &ExportScope,
        mut f: impl FnMut(&[Cell]) -> Result<(), E>,
    ) -> Result<usize, E> {
        let key_value = match scope {
            ExportScope::Session(id) | ExportScope::Batch(id) | ExportScope::Bench(id) => id.as_str(),
        };
        let sql = format!(
            "SELECT {} FROM {} WHERE {} = ?1 ORDER BY {}",
            table.columns.join(", "),
            table.source,
            table.key,
            table.order
        );
        let mut stmt = self.conn.prepare(&sql).map_err(StoreError::from)?;
        let mut rows = stmt.query([key_value]).map_err(StoreError::from)?;
        let mut cells: Vec<Cell> = Vec::with_capacity(table.columns.len());
        let mut n = 0usize;
        while let Some(row) = rows.next().map_err(StoreError::from)? {
            cells.clear();
            for i in 0..table.columns.len() {
                let v = row.get_ref(i).map_err(StoreError::from)?;
                cells.push(match v {
                    ValueRef::Null => Cell::Null,
                    ValueRef::Integer(i) => Cell::Int(i),
                    ValueRef::Real(r) => Cell::Real(r),
                    ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Cell::Text(b.iter().map(|x| format!("{x:02x}")).collect()),
                });
            }
            f(&cells)?;
            n += 1;
        }
        Ok(n)
    }
}

/// The tables that hold runs of several sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunTable {
    Batches,
    BenchRuns,
}

//! Iterations and everything recorded while an agent runs: raw lines with their normalized events
//! (append-only, written in batches), tool calls paired by id, token usage with its cost source, commits and
//! file changes.

use crate::{Store, StoreError};
use ampsm_core::time::now_ms;
use ampsm_core::{AgentEvent, IterationOutcome, PermissionPolicy, SessionId, SessionStatus, TokenUsage};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

/// Longest tool output kept in `tool_calls.output_excerpt`.
pub const TOOL_OUTPUT_EXCERPT: usize = 4096;

/// A new iteration.
#[derive(Debug, Clone)]
pub struct NewIteration {
    pub id: String,
    pub session_id: SessionId,
    pub kind: &'static str,
    pub prompt: Option<String>,
    pub agent: String,
    pub model: Option<String>,
    pub thread_id: Option<String>,
    pub runner_pid: i64,
    /// The permission policy the run has.
    pub permissions: Option<PermissionPolicy>,
}

/// How an iteration's agent run ended.
#[derive(Debug, Clone)]
pub struct IterationEnd {
    pub outcome: IterationOutcome,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub error: Option<String>,
    pub awaiting_input: bool,
    pub thread_id: Option<String>,
    pub cost_usd: Option<f64>,
    pub cost_source: Option<String>,
    /// Tool calls the agent was not allowed to make.
    pub denials: i64,
}

impl IterationEnd {
    /// An end with `outcome` and nothing else known.
    pub fn new(outcome: IterationOutcome) -> IterationEnd {
        IterationEnd {
            outcome,
            exit_code: None,
            signal: None,
            error: None,
            awaiting_input: false,
            thread_id: None,
            cost_usd: None,
            cost_source: None,
            denials: 0,
        }
    }
}

/// An iteration as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Iteration {
    pub id: String,
    pub seq: i64,
    pub kind: String,
    pub prompt: Option<String>,
    pub agent: String,
    pub model: Option<String>,
    pub thread_id: Option<String>,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub outcome: Option<IterationOutcome>,
    pub exit_code: Option<i64>,
    pub signal: Option<i64>,
    pub error: Option<String>,
    pub awaiting_input: bool,
    pub commit_sha: Option<String>,
    pub test_exit_code: Option<i64>,
    pub test_output: Option<String>,
    pub test_duration_ms: Option<i64>,
    pub cost_usd: Option<f64>,
    pub cost_source: Option<String>,
    /// The permission policy the run had (`None` before policies existed).
    pub permissions: Option<String>,
    /// Tool calls the agent was not allowed to make.
    pub denials: i64,
}

/// One stream line to record. Built by the producer with [`EventRecord::new`], which does the costly part
/// (normalized JSON, what the line means for tool calls and the thread) so the single writer only inserts.
#[derive(Debug, Clone)]
pub struct EventRecord {
    pub session_id: String,
    pub iteration_id: String,
    pub seq: i64,
    pub ts: i64,
    pub stream: &'static str,
    pub raw: String,
    pub truncated: bool,
    /// Stable name of the first event's kind (`empty` when the line had none).
    pub kind: &'static str,
    /// The normalized events as a JSON array.
    pub normalized: String,
    /// What the line changes besides the event log.
    pub effects: Vec<EventEffect>,
}

/// What a stream line changes besides the event log.
#[derive(Debug, Clone, PartialEq)]
pub enum EventEffect {
    /// The agent reported its thread id.
    Thread(String),
    /// A tool call started.
    ToolUse { call_id: String, name: String, input: String },
    /// A tool call ended.
    ToolResult { call_id: String, ok: bool, exit_code: Option<i64>, output: String, duration_ms: Option<i64> },
    /// A tool call was not allowed (by the policy, a sandbox or the user).
    Denied { call_id: Option<String>, tool: String },
}

/// Where a line sits in a run: session, iteration, position and time.
#[derive(Debug, Clone)]
pub struct LinePosition {
    pub session_id: String,
    pub iteration_id: String,
    pub seq: i64,
    pub ts: i64,
    pub stream: &'static str,
}

impl EventRecord {
    /// A record of one line with its events: the normalized JSON and the effects are computed here.
    pub fn new(at: LinePosition, raw: String, truncated: bool, events: &[AgentEvent]) -> EventRecord {
        let normalized = serde_json::to_string(events).unwrap_or_else(|_| "[]".to_string());
        let kind = events.first().map(|e| e.kind().as_str()).unwrap_or("empty");
        let mut effects = Vec::new();
        for ev in events {
            match ev {
                AgentEvent::Init { thread_id: Some(t), .. } if !t.is_empty() => {
                    effects.push(EventEffect::Thread(t.clone()))
                }
                AgentEvent::ToolUse { call_id, name, input } => effects.push(EventEffect::ToolUse {
                    call_id: call_id.clone(),
                    name: name.clone(),
                    input: clip(&input.to_string(), TOOL_OUTPUT_EXCERPT).to_string(),
                }),
                AgentEvent::ToolResult { call_id, ok, output, exit_code, duration_ms } => {
                    effects.push(EventEffect::ToolResult {
                        call_id: call_id.clone(),
                        ok: *ok,
                        exit_code: *exit_code,
                        output: clip(output, TOOL_OUTPUT_EXCERPT).to_string(),
                        duration_ms: duration_ms.map(|d| d as i64),
                    })
                }
                AgentEvent::PermissionDenied { call_id, tool, .. } => {
                    effects.push(EventEffect::Denied { call_id: call_id.clone(), tool: tool.clone() })
                }
                _ => {}
            }
        }
        EventRecord {
            session_id: at.session_id,
            iteration_id: at.iteration_id,
            seq: at.seq,
            ts: at.ts,
            stream: at.stream,
            raw,
            truncated,
            kind,
            normalized,
            effects,
        }
    }
}

/// A stored stream line, for `logs`.
#[derive(Debug, Clone, Serialize)]
pub struct StoredEvent {
    pub id: i64,
    pub iteration_id: Option<String>,
    pub seq: i64,
    pub ts: i64,
    pub stream: String,
    pub kind: String,
    pub raw: String,
    pub truncated: bool,
    pub events: Vec<AgentEvent>,
}

/// A recorded tool call.
#[derive(Debug, Clone, Serialize)]
pub struct ToolCall {
    pub iteration_id: Option<String>,
    pub call_id: String,
    pub name: String,
    pub input: Option<serde_json::Value>,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub duration_ms: Option<i64>,
    pub success: Option<bool>,
    pub exit_code: Option<i64>,
    pub output_excerpt: Option<String>,
    /// The call was not allowed (policy, sandbox or user).
    pub denied: bool,
}

/// A token usage row.
#[derive(Debug, Clone, Serialize)]
pub struct UsageRow {
    pub iteration_id: Option<String>,
    pub model: Option<String>,
    pub usage: TokenUsage,
    pub cost_usd: Option<f64>,
    pub cost_source: String,
    pub price_entry: Option<String>,
    pub recorded_at: i64,
}

/// What a batch of events revealed that the caller acts on.
#[derive(Debug, Clone, Default)]
pub struct RecordSummary {
    pub lines: usize,
    /// The first thread id reported in the batch, already stored on the session and iteration.
    pub thread_id: Option<String>,
}

const ITERATION_COLUMNS: &str = "id, seq, kind, prompt, agent, model, thread_id, started_at, ended_at, outcome, exit_code, \
     signal, error, awaiting_input, commit_sha, test_exit_code, test_output, test_duration_ms, cost_usd, cost_source, \
     permissions, denials";

fn clip(s: &str, max: usize) -> &str {
    &s[..s.floor_char_boundary(max)]
}

impl Store {
    /// The sequence number the next iteration of `session` gets (1-based).
    pub fn next_iteration_seq(&self, session: &SessionId) -> Result<i64, StoreError> {
        Ok(self.conn.query_row(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM iterations WHERE session_id = ?1",
            [session.as_str()],
            |r| r.get(0),
        )?)
    }

    /// Records the start of an iteration in one transaction: its row, the session's move to `running`
    /// (with `note`) and the runner's pid. Nobody reading the store sees the new iteration without the
    /// `running` status, or the other way round. Returns the iteration's sequence number.
    pub fn begin_iteration(&mut self, it: &NewIteration, note: &str) -> Result<i64, StoreError> {
        self.write_tx(|tx| {
            // `rm` may have removed the session since it was looked up: a removed session runs nothing.
            let removed: Option<(String, Option<i64>)> = tx
                .query_row("SELECT name, removed_at FROM sessions WHERE id = ?1", [it.session_id.as_str()], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            match removed {
                None => return Err(StoreError::SessionNotFound(it.session_id.to_string())),
                Some((name, Some(_))) => return Err(StoreError::SessionRemoved(name)),
                Some(_) => {}
            }
            let seq: i64 = tx.query_row(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM iterations WHERE session_id = ?1",
                [it.session_id.as_str()],
                |r| r.get(0),
            )?;
            tx.execute(
                "INSERT INTO iterations (id, session_id, seq, kind, prompt, agent, model, thread_id, started_at, runner_pid, \
                 permissions) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    it.id,
                    it.session_id.as_str(),
                    seq,
                    it.kind,
                    it.prompt,
                    it.agent,
                    it.model,
                    it.thread_id,
                    now_ms(),
                    it.runner_pid,
                    it.permissions.map(PermissionPolicy::as_str)
                ],
            )?;
            crate::sessions::transition(tx, &it.session_id, SessionStatus::Running, Some(note))?;
            tx.execute(
                "UPDATE sessions SET runner_pid = ?2, agent_pid = NULL WHERE id = ?1",
                params![it.session_id.as_str(), it.runner_pid],
            )?;
            Ok(seq)
        })
    }

    /// Records how the agent run of an iteration ended.
    pub fn finish_iteration(&mut self, id: &str, end: &IterationEnd) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE iterations SET ended_at = ?2, outcome = ?3, exit_code = ?4, signal = ?5, error = ?6, awaiting_input = ?7, \
             thread_id = COALESCE(?8, thread_id), cost_usd = ?9, cost_source = ?10, denials = ?11 WHERE id = ?1",
            params![
                id,
                now_ms(),
                end.outcome.as_str(),
                end.exit_code,
                end.signal,
                end.error,
                end.awaiting_input,
                end.thread_id,
                end.cost_usd,
                end.cost_source,
                end.denials
            ],
        )?;
        Ok(())
    }

    /// Records the commit an iteration made.
    pub fn set_iteration_commit(&mut self, id: &str, sha: &str) -> Result<(), StoreError> {
        self.conn.execute("UPDATE iterations SET commit_sha = ?2 WHERE id = ?1", params![id, sha])?;
        Ok(())
    }

    /// Records the session test script's result for an iteration (output clipped to 64 KiB).
    pub fn set_iteration_test(
        &mut self,
        id: &str,
        exit_code: i32,
        output: &str,
        duration_ms: i64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE iterations SET test_exit_code = ?2, test_output = ?3, test_duration_ms = ?4 WHERE id = ?1",
            params![id, exit_code, clip(output, 64 * 1024), duration_ms],
        )?;
        Ok(())
    }

    /// Iterations of a session, oldest first.
    pub fn list_iterations(&self, session: &SessionId) -> Result<Vec<Iteration>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {ITERATION_COLUMNS} FROM iterations WHERE session_id = ?1 ORDER BY seq"
        ))?;
        let rows = stmt.query_map([session.as_str()], iteration_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Appends a batch of stream lines in one transaction: the raw line with its normalized events, tool
    /// calls opened and closed by id, and the thread id stored the moment it appears. A call id is recorded
    /// once per iteration; its result closes it by row id.
    pub fn record_events(&mut self, batch: &[EventRecord]) -> Result<RecordSummary, StoreError> {
        let mut open_calls = std::mem::take(&mut self.open_tool_calls);
        let result = self.write_tx(|tx| record_batch(tx, batch, &mut open_calls));
        self.open_tool_calls = open_calls;
        result
    }

    /// Stream lines of a session with an id above `after_id`, oldest first, at most `limit`.
    pub fn events_after(
        &self,
        session: &SessionId,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM agent_events WHERE session_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
        ))?;
        let rows = stmt.query_map(params![session.as_str(), after_id, limit], stored_event)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The last `limit` stored lines of a session, oldest first (an index walk backwards: as fast for a
    /// session of a million lines as for one of ten).
    pub fn last_events(&self, session: &SessionId, limit: i64) -> Result<Vec<StoredEvent>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM agent_events WHERE session_id = ?1 ORDER BY id DESC LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![session.as_str(), limit], stored_event)?;
        let mut out = rows.collect::<Result<Vec<_>, _>>()?;
        out.reverse();
        Ok(out)
    }

    /// The id of the last stored line of a session (0 when it has none).
    pub fn last_event_id(&self, session: &SessionId) -> Result<i64, StoreError> {
        Ok(self.conn.query_row(
            "SELECT COALESCE(MAX(id), 0) FROM agent_events WHERE session_id = ?1",
            [session.as_str()],
            |r| r.get(0),
        )?)
    }

    /// Number of stored stream lines of a session.
    pub fn count_events(&self, session: &SessionId) -> Result<i64, StoreError> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM agent_events WHERE session_id = ?1",
            [session.as_str()],
            |r| r.get(0),
        )?)
    }

    /// Tool calls of a session in call order.
    pub fn list_tool_calls(&self, session: &SessionId) -> Result<Vec<ToolCall>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {TOOL_CALL_COLUMNS} FROM tool_calls WHERE session_id = ?1 ORDER BY started_at, id"
        ))?;
        let rows = stmt.query_map([session.as_str()], tool_call_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Records the token usage of one model in one iteration.
    pub fn insert_usage(
        &mut self,
        session: &SessionId,
        iteration_id: &str,
        row: &UsageRow,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO token_usage (session_id, iteration_id, model, input_tokens, output_tokens, cache_read_tokens, \
             cache_write_tokens, reasoning_tokens, cost_usd, cost_source, price_entry, recorded_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                session.as_str(),
                iteration_id,
                row.model,
                row.usage.input as i64,
                row.usage.output as i64,
                row.usage.cache_read as i64,
                row.usage.cache_write as i64,
                row.usage.reasoning as i64,
                row.cost_usd,
                row.cost_source,
                row.price_entry,
                row.recorded_at
            ],
        )?;
        Ok(())
    }

    /// Usage rows of a session, oldest first.
    pub fn list_usage(&self, session: &SessionId) -> Result<Vec<UsageRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {USAGE_COLUMNS} FROM token_usage WHERE session_id = ?1 ORDER BY id"
        ))?;
        let rows = stmt.query_map([session.as_str()], usage_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Records a commit made in a session (ignored when already recorded).
    pub fn insert_commit(
        &mut self,
        session: &SessionId,
        sha: &str,
        iteration_id: Option<&str>,
        kind: &str,
        subject: &str,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR IGNORE INTO commits (session_id, sha, iteration_id, kind, subject, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![session.as_str(), sha, iteration_id, kind, subject, now_ms()],
        )?;
        Ok(())
    }

    /// Records a file changed by a commit, with the lines git counted (`None` for binary files).
    #[allow(clippy::too_many_arguments)]
    pub fn insert_file_change(
        &mut self,
        session: &SessionId,
        iteration_id: Option<&str>,
        commit_sha: &str,
        path: &str,
        old_path: Option<&str>,
        added: Option<u64>,
        removed: Option<u64>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO file_changes (session_id, iteration_id, commit_sha, path, old_path, lines_added, lines_removed, binary) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                session.as_str(),
                iteration_id,
                commit_sha,
                path,
                old_path,
                added.map(|a| a as i64),
                removed.map(|r| r as i64),
                added.is_none() && removed.is_none()
            ],
        )?;
        Ok(())
    }

    /// The thread id recorded for a session, if any.
    pub fn thread_id_of(&self, session: &SessionId) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT thread_id FROM sessions WHERE id = ?1", [session.as_str()], |r| r.get(0))
            .optional()?
            .flatten())
    }
}

/// Builds `?2, ?3, …` for an `IN (…)` list whose values follow the session id (`?1`).
fn placeholders(n: usize) -> String {
    (0..n).map(|i| format!("?{}", i + 2)).collect::<Vec<_>>().join(", ")
}

/// An `iterations` row read with [`ITERATION_COLUMNS`].
pub(crate) fn iteration_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Iteration> {
    Ok(Iteration {
        id: r.get(0)?,
        seq: r.get(1)?,
        kind: r.get(2)?,
        prompt: r.get(3)?,
        agent: r.get(4)?,
        model: r.get(5)?,
        thread_id: r.get(6)?,
        started_at: r.get(7)?,
        ended_at: r.get(8)?,
        outcome: crate::text_column_opt(r, 9)?,
        exit_code: r.get(10)?,
        signal: r.get(11)?,
        error: r.get(12)?,
        awaiting_input: r.get(13)?,
        commit_sha: r.get(14)?,
        test_exit_code: r.get(15)?,
        test_output: r.get(16)?,
        test_duration_ms: r.get(17)?,
        cost_usd: r.get(18)?,
        cost_source: r.get(19)?,
        permissions: r.get(20)?,
        denials: r.get(21)?,
    })
}

/// The columns [`usage_row`] reads, in its order.
const USAGE_COLUMNS: &str = "iteration_id, model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, \
     reasoning_tokens, cost_usd, cost_source, price_entry, recorded_at";

/// A `token_usage` row read with [`USAGE_COLUMNS`].
fn usage_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UsageRow> {
    Ok(UsageRow {
        iteration_id: r.get(0)?,
        model: r.get(1)?,
        usage: TokenUsage {
            input: r.get::<_, i64>(2)? as u64,
            output: r.get::<_, i64>(3)? as u64,
            cache_read: r.get::<_, i64>(4)? as u64,
            cache_write: r.get::<_, i64>(5)? as u64,
            reasoning: r.get::<_, i64>(6)? as u64,
        },
        cost_usd: r.get(7)?,
        cost_source: r.get(8)?,
        price_entry: r.get(9)?,
        recorded_at: r.get(10)?,
    })
}

/// The columns [`tool_call_row`] reads, in its order.
pub(crate) const TOOL_CALL_COLUMNS: &str = "iteration_id, call_id, name, input, started_at, ended_at, duration_ms, success, exit_code, output_excerpt, denied";

/// A `tool_calls` row read with [`TOOL_CALL_COLUMNS`].
pub(crate) fn tool_call_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ToolCall> {
    let input: Option<String> = r.get(3)?;
    Ok(ToolCall {
        iteration_id: r.get(0)?,
        call_id: r.get(1)?,
        name: r.get(2)?,
        input: input.map(|i| serde_json::from_str(&i).unwrap_or(serde_json::Value::String(i))),
        started_at: r.get(4)?,
        ended_at: r.get(5)?,
        duration_ms: r.get(6)?,
        success: r.get(7)?,
        exit_code: r.get(8)?,
        output_excerpt: r.get(9)?,
        denied: r.get(10)?,
    })
}

/// Paged reads for views that show a window of a long session (the dashboard's conversation): a page of
/// lines before a line id, and only the iterations, tool calls and usage of the lines shown.
impl Store {
    /// The last `limit` stored lines of a session with an id below `before_id` (all lines when `None`),
    /// oldest first: an index walk backwards, as fast at the start of a long session as at its end.
    pub fn events_before(
        &self,
        session: &SessionId,
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM agent_events WHERE session_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3"
        ))?;
        let rows =
            stmt.query_map(params![session.as_str(), before_id.unwrap_or(i64::MAX), limit], stored_event)?;
        let mut out = rows.collect::<Result<Vec<_>, _>>()?;
        out.reverse();
        Ok(out)
    }

    /// Whether a session has a stored line with an id below `id`.
    pub fn has_events_before(&self, session: &SessionId, id: i64) -> Result<bool, StoreError> {
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM agent_events WHERE session_id = ?1 AND id < ?2)",
            params![session.as_str(), id],
            |r| r.get(0),
        )?)
    }

    /// The iterations of a session with these ids, oldest first.
    pub fn iterations_by_ids(
        &self,
        session: &SessionId,
        ids: &[String],
    ) -> Result<Vec<Iteration>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {ITERATION_COLUMNS} FROM iterations WHERE session_id = ?1 AND id IN ({}) ORDER BY seq",
            placeholders(ids.len())
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let values = std::iter::once(session.as_str()).chain(ids.iter().map(String::as_str));
        let rows = stmt.query_map(rusqlite::params_from_iter(values), iteration_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The latest iteration of a session, if it has one.
    pub fn last_iteration(&self, session: &SessionId) -> Result<Option<Iteration>, StoreError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {ITERATION_COLUMNS} FROM iterations WHERE session_id = ?1 ORDER BY seq DESC LIMIT 1"),
                [session.as_str()],
                iteration_row,
            )
            .optional()?)
    }

    /// The tool calls of a session with these call ids, in call order.
    pub fn tool_calls_by_call_ids(
        &self,
        session: &SessionId,
        call_ids: &[String],
    ) -> Result<Vec<ToolCall>, StoreError> {
        let mut out = Vec::new();
        // SQLite allows 32,766 parameters; pages are far smaller, but stay well within it anyway.
        for chunk in call_ids.chunks(500) {
            let sql = format!(
                "SELECT {TOOL_CALL_COLUMNS} FROM tool_calls WHERE session_id = ?1 AND call_id IN ({}) \
                 ORDER BY started_at, id",
                placeholders(chunk.len())
            );
            let mut stmt = self.conn.prepare(&sql)?;
            let values = std::iter::once(session.as_str()).chain(chunk.iter().map(String::as_str));
            let rows = stmt.query_map(rusqlite::params_from_iter(values), tool_call_row)?;
            for row in rows {
                out.push(row?);
            }
        }
        Ok(out)
    }

    /// Number of recorded tool calls of a session.
    pub fn count_tool_calls(&self, session: &SessionId) -> Result<i64, StoreError> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM tool_calls WHERE session_id = ?1",
            [session.as_str()],
            |r| r.get(0),
        )?)
    }

    /// The usage rows of a session's iterations with these ids, oldest first.
    pub fn usage_of_iterations(
        &self,
        session: &SessionId,
        ids: &[String],
    ) -> Result<Vec<UsageRow>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {USAGE_COLUMNS} FROM token_usage WHERE session_id = ?1 AND iteration_id IN ({}) ORDER BY id",
            placeholders(ids.len())
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let values = std::iter::once(session.as_str()).chain(ids.iter().map(String::as_str));
        let rows = stmt.query_map(rusqlite::params_from_iter(values), usage_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
}

fn record_batch(
    tx: &rusqlite::Connection,
    batch: &[EventRecord],
    open_calls: &mut std::collections::HashMap<String, i64>,
) -> Result<RecordSummary, StoreError> {
    let mut summary = RecordSummary::default();
    let mut insert = tx.prepare_cached(
        "INSERT INTO agent_events (session_id, iteration_id, seq, ts, stream, kind, raw, normalized, truncated) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    let mut set_thread =
        tx.prepare_cached("UPDATE sessions SET thread_id = ?2, updated_at = ?3 WHERE id = ?1")?;
    let mut set_iteration_thread = tx.prepare_cached("UPDATE iterations SET thread_id = ?2 WHERE id = ?1")?;
    let mut open_call = tx.prepare_cached(
        "INSERT INTO tool_calls (session_id, iteration_id, call_id, name, input, started_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut close_call = tx.prepare_cached(
        "UPDATE tool_calls SET ended_at = ?2, duration_ms = COALESCE(?3, MAX(0, ?2 - started_at)), success = ?4, \
         exit_code = ?5, output_excerpt = ?6 WHERE id = ?1",
    )?;
    let mut deny_call = tx.prepare_cached(
        "UPDATE tool_calls SET denied = 1, success = 0 WHERE iteration_id = ?1 AND call_id = ?2",
    )?;
    let mut denied_unpaired = tx.prepare_cached(
        "INSERT INTO tool_calls (session_id, iteration_id, call_id, name, started_at, ended_at, duration_ms, success, \
         denied) VALUES (?1, ?2, ?3, ?4, ?5, ?5, 0, 0, 1)",
    )?;
    let mut orphan_result = tx.prepare_cached(
        "INSERT INTO tool_calls (session_id, iteration_id, call_id, name, started_at, ended_at, duration_ms, success, \
         exit_code, output_excerpt) VALUES (?1, ?2, ?3, '(unknown)', ?4, ?4, ?8, ?5, ?6, ?7)",
    )?;
    for rec in batch {
        insert.execute(params![
            rec.session_id,
            rec.iteration_id,
            rec.seq,
            rec.ts,
            rec.stream,
            rec.kind,
            rec.raw,
            rec.normalized,
            rec.truncated
        ])?;
        summary.lines += 1;
        for effect in &rec.effects {
            match effect {
                EventEffect::Thread(t) => {
                    set_thread.execute(params![rec.session_id, t, rec.ts])?;
                    set_iteration_thread.execute(params![rec.iteration_id, t])?;
                    if summary.thread_id.is_none() {
                        summary.thread_id = Some(t.clone());
                    }
                }
                EventEffect::ToolUse { call_id, name, input } => {
                    let key = format!("{}\0{call_id}", rec.iteration_id);
                    if let std::collections::hash_map::Entry::Vacant(slot) = open_calls.entry(key) {
                        open_call.execute(params![
                            rec.session_id,
                            rec.iteration_id,
                            call_id,
                            name,
                            input,
                            rec.ts
                        ])?;
                        slot.insert(tx.last_insert_rowid());
                    }
                }
                EventEffect::Denied { call_id, tool } => {
                    let updated = match call_id {
                        Some(c) => deny_call.execute(params![rec.iteration_id, c])?,
                        None => 0,
                    };
                    if updated == 0 {
                        // The agent reported no call of its own (a sandbox refusal): one of its own, denied.
                        let id = call_id.clone().unwrap_or_else(|| format!("denied-{}", rec.seq));
                        denied_unpaired.execute(params![
                            rec.session_id,
                            rec.iteration_id,
                            id,
                            tool,
                            rec.ts
                        ])?;
                    }
                }
                EventEffect::ToolResult { call_id, ok, exit_code, output, duration_ms } => {
                    let key = format!("{}\0{call_id}", rec.iteration_id);
                    match open_calls.remove(&key) {
                        Some(row) => {
                            close_call.execute(params![row, rec.ts, duration_ms, ok, exit_code, output])?;
                        }
                        None => {
                            // A result without its call (or a second result): keep it, unnamed.
                            orphan_result.execute(params![
                                rec.session_id,
                                rec.iteration_id,
                                call_id,
                                rec.ts,
                                ok,
                                exit_code,
                                output,
                                duration_ms.unwrap_or(0)
                            ])?;
                        }
                    }
                }
            }
        }
    }
    Ok(summary)
}

const EVENT_COLUMNS: &str = "id, iteration_id, seq, ts, stream, kind, raw, normalized, truncated";

fn stored_event(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEvent> {
    let normalized: String = r.get(7)?;
    Ok(StoredEvent {
        id: r.get(0)?,
        iteration_id: r.get(1)?,
        seq: r.get(2)?,
        ts: r.get(3)?,
        stream: r.get(4)?,
        kind: r.get(5)?,
        raw: r.get(6)?,
        truncated: r.get(8)?,
        events: serde_json::from_str(&normalized).unwrap_or_default(),
    })
}

//! Session rows: creation in two steps (a row marked `creating_pid`, then finished), lookup by id, id
//! prefix or name, filtered listing, status changes checked against the state machine and recorded in
//! `status_changes`, and removal that keeps the row for later recovery; and the sessions page's query
//! ([`SessionSearch`]): search, filters and one page, with each row's cost and +/− lines, in SQL.

use crate::{Store, StoreError};
use ampsm_core::id::looks_like_id_prefix;
use ampsm_core::time::now_ms;
use ampsm_core::{IterationOutcome, Money, PermissionPolicy, SessionId, SessionStatus};
use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;

/// A session as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Session {
    pub id: SessionId,
    pub name: String,
    pub repo_path: String,
    pub base_branch: String,
    pub base_commit: String,
    pub branch: String,
    pub worktree_path: String,
    pub status: SessionStatus,
    pub status_note: Option<String>,
    pub agent: String,
    pub model: Option<String>,
    pub prompt: Option<String>,
    pub script: Option<String>,
    pub budget_usd: Option<Money>,
    pub thread_id: Option<String>,
    pub runner_pid: Option<i64>,
    pub agent_pid: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creating_pid: Option<i64>,
    pub batch_item_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed_at: Option<i64>,
    /// The permission policy chosen at `new`; `None` for sessions made before policies existed (the
    /// config's default applies when they run).
    pub permissions: Option<PermissionPolicy>,
}

/// One recorded status change.
#[derive(Debug, Clone, Serialize)]
pub struct StatusChange {
    pub from: Option<String>,
    pub to: String,
    pub reason: Option<String>,
    pub at: i64,
}

/// What `new` records before it touches git.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: SessionId,
    pub name: String,
    pub repo_path: String,
    pub base_branch: String,
    pub base_commit: String,
    pub branch: String,
    pub worktree_path: String,
    pub agent: String,
    pub model: Option<String>,
    pub prompt: Option<String>,
    pub script: Option<String>,
    pub budget_usd: Option<Money>,
    pub batch_item_id: Option<String>,
    /// The benchmark result the session was made for.
    pub bench_result_id: Option<String>,
    pub creating_pid: i64,
    pub permissions: Option<PermissionPolicy>,
}

/// Filters of `list`.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    pub status: Option<SessionStatus>,
    pub repo_path: Option<String>,
    /// Include removed sessions.
    pub include_removed: bool,
}

/// The sessions page's query: a search, filters, an order and one page (see [`Store::search_sessions`]).
#[derive(Debug, Clone)]
pub struct SessionSearch {
    /// Words that must all appear (case-insensitive) in the name, branch, repository, agent or prompt.
    pub text: Option<String>,
    pub status: Option<SessionStatus>,
    /// The repository path exactly as stored (a repository root).
    pub repo_path: Option<String>,
    pub agent: Option<String>,
    /// Include removed sessions.
    pub include_removed: bool,
    /// Sort by repository first (then newest first), for a page grouped by repository.
    pub by_repo: bool,
    /// Rows per page (at least 1).
    pub limit: u32,
    /// Rows skipped before the page.
    pub offset: u64,
}

impl Default for SessionSearch {
    fn default() -> Self {
        SessionSearch {
            text: None,
            status: None,
            repo_path: None,
            agent: None,
            include_removed: false,
            by_repo: false,
            limit: 50,
            offset: 0,
        }
    }
}

/// One row of [`Store::search_sessions`]: the session and its aggregates.
#[derive(Debug, Clone, Serialize)]
pub struct SessionListRow {
    pub session: Session,
    /// Iterations (agent runs) recorded.
    pub iterations: i64,
    /// Usage rows with a known cost, and their sum.
    pub priced_rows: i64,
    pub known_cost_usd: Money,
    /// Usage rows without a known cost (an agent that reports none and no price in the table).
    pub unpriced_rows: i64,
    /// Lines added and removed by the session's recorded commits.
    pub lines_added: i64,
    pub lines_removed: i64,
}

/// A page of sessions with the counts the filters show.
#[derive(Debug, Clone, Serialize)]
pub struct SessionListPage {
    pub rows: Vec<SessionListRow>,
    /// How many sessions match (all pages).
    pub total: u64,
    /// Every repository with live sessions, with how many (for the filter and the New session picker).
    pub repos: Vec<(String, i64)>,
    /// Every agent sessions use.
    pub agents: Vec<String>,
}

const COLUMNS: &str = "id, name, repo_path, base_branch, base_commit, branch, worktree_path, status, status_note, \
     agent, model, prompt, script, budget_usd, thread_id, runner_pid, agent_pid, creating_pid, batch_item_id, \
     created_at, updated_at, removed_at, permissions";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Session> {
    let status: String = r.get(7)?;
    let status = status
        .parse::<SessionStatus>()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(7, rusqlite::types::Type::Text, e.into()))?;
    Ok(Session {
        id: SessionId::from_stored(r.get::<_, String>(0)?),
        name: r.get(1)?,
        repo_path: r.get(2)?,
        base_branch: r.get(3)?,
        base_commit: r.get(4)?,
        branch: r.get(5)?,
        worktree_path: r.get(6)?,
        status,
        status_note: r.get(8)?,
        agent: r.get(9)?,
        model: r.get(10)?,
        prompt: r.get(11)?,
        script: r.get(12)?,
        budget_usd: crate::money_column(r, 13)?,
        thread_id: r.get(14)?,
        runner_pid: r.get(15)?,
        agent_pid: r.get(16)?,
        creating_pid: r.get(17)?,
        batch_item_id: r.get(18)?,
        created_at: r.get(19)?,
        updated_at: r.get(20)?,
        removed_at: r.get(21)?,
        permissions: r.get::<_, Option<String>>(22)?.and_then(|p| p.parse().ok()),
    })
}

impl Store {
    /// Inserts a session marked as being created by `creating_pid`. Fails with
    /// [`StoreError::DuplicateName`] when the repository already has a live session of that name.
    pub fn insert_creating_session(&mut self, s: &NewSession) -> Result<(), StoreError> {
        self.write_tx(|tx| {
            let existing: Option<String> = tx
                .query_row(
                    "SELECT id FROM sessions WHERE repo_path = ?1 AND name = ?2 AND removed_at IS NULL",
                    params![s.repo_path, s.name],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(id) = existing {
                return Err(StoreError::DuplicateName { name: s.name.clone(), repo: s.repo_path.clone(), id });
            }
            let now = now_ms();
            tx.execute(
                "INSERT INTO sessions (id, name, repo_path, base_branch, base_commit, branch, worktree_path, status, \
                 agent, model, prompt, script, budget_usd, batch_item_id, creating_pid, created_at, updated_at, \
                 bench_result_id, permissions) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'idle', ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15, ?16, ?17)",
                params![
                    s.id.as_str(),
                    s.name,
                    s.repo_path,
                    s.base_branch,
                    s.base_commit,
                    s.branch,
                    s.worktree_path,
                    s.agent,
                    s.model,
                    s.prompt,
                    s.script,
                    s.budget_usd.map(Money::usd),
                    s.batch_item_id,
                    s.creating_pid,
                    now,
                    s.bench_result_id,
                    s.permissions.map(PermissionPolicy::as_str)
                ],
            )?;
            tx.execute(
                "INSERT INTO status_changes (session_id, from_status, to_status, reason, at) VALUES (?1, NULL, 'idle', 'created', ?2)",
                params![s.id.as_str(), now],
            )?;
            Ok(())
        })
    }

    /// Marks creation finished: the session becomes visible to `list` and `show`.
    pub fn finish_creating(&mut self, id: &SessionId) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE sessions SET creating_pid = NULL, updated_at = ?2 WHERE id = ?1",
            params![id.as_str(), now_ms()],
        )?;
        Ok(())
    }

    /// Deletes a session row outright (only for creations that never finished).
    pub fn delete_session_row(&mut self, id: &SessionId) -> Result<(), StoreError> {
        self.conn.execute("DELETE FROM sessions WHERE id = ?1", [id.as_str()])?;
        Ok(())
    }

    /// Sessions whose creation has not finished (live or crashed creators alike).
    pub fn unfinished_creations(&self) -> Result<Vec<Session>, StoreError> {
        self.query_sessions(&format!("SELECT {COLUMNS} FROM sessions WHERE creating_pid IS NOT NULL"), [])
    }

    /// Sessions with a run in progress, with their runner pids: marked running, or awaiting an approval
    /// while their runner waits (`awaiting-input` with a runner). Removed sessions too: `rm --force` may
    /// have raced a run that was starting, and its status must still be settled.
    pub fn running_sessions(&self) -> Result<Vec<Session>, StoreError> {
        self.query_sessions(
            &format!(
                "SELECT {COLUMNS} FROM sessions WHERE status = 'running' \
                 OR (status = 'awaiting-input' AND runner_pid IS NOT NULL)"
            ),
            [],
        )
    }

    /// A session by exact id.
    pub fn get_session(&self, id: &SessionId) -> Result<Session, StoreError> {
        self.conn
            .query_row(&format!("SELECT {COLUMNS} FROM sessions WHERE id = ?1"), [id.as_str()], from_row)
            .optional()?
            .ok_or_else(|| StoreError::SessionNotFound(id.to_string()))
    }

    /// Finds a live session by full id, unique id prefix, or name (a name shared by sessions of several
    /// repositories is ambiguous). Removed sessions are found only with `include_removed`.
    pub fn resolve_session(&self, reference: &str, include_removed: bool) -> Result<Session, StoreError> {
        let reference = reference.trim();
        if reference.is_empty() {
            return Err(StoreError::SessionNotFound(reference.to_string()));
        }
        let removed = if include_removed { "" } else { " AND removed_at IS NULL" };
        let mut found = Vec::new();
        if looks_like_id_prefix(reference) {
            let lower = reference.to_ascii_lowercase();
            found = self.query_sessions(
                &format!(
                    "SELECT {COLUMNS} FROM sessions WHERE id >= ?1 AND id < ?1 || 'g' AND creating_pid IS NULL{removed} \
                     ORDER BY created_at LIMIT 10"
                ),
                [lower.as_str()],
            )?;
            if let Some(exact) = found.iter().find(|s| s.id.as_str() == lower) {
                return Ok(exact.clone());
            }
        }
        if found.is_empty() {
            found = self.query_sessions(
                &format!(
                    "SELECT {COLUMNS} FROM sessions WHERE name = ?1 AND creating_pid IS NULL{removed} \
                     ORDER BY removed_at IS NOT NULL, created_at DESC LIMIT 10"
                ),
                [reference],
            )?;
            // With removed sessions included, a live one of that name wins over removed ones.
            if include_removed
                && found.len() > 1
                && found[0].removed_at.is_none()
                && found[1].removed_at.is_some()
            {
                found.truncate(1);
            }
        }
        match found.len() {
            0 => Err(StoreError::SessionNotFound(reference.to_string())),
            1 => Ok(found.remove(0)),
            _ => Err(StoreError::AmbiguousSession {
                reference: reference.to_string(),
                candidates: found
                    .iter()
                    .map(|s| format!("{} ({} in {})", s.id.short(), s.name, s.repo_path))
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// Sessions matching `filter`, newest first; unfinished creations are never listed.
    pub fn list_sessions(&self, filter: &SessionFilter) -> Result<Vec<Session>, StoreError> {
        let mut sql = format!("SELECT {COLUMNS} FROM sessions WHERE creating_pid IS NULL");
        let mut args: Vec<String> = Vec::new();
        if !filter.include_removed {
            sql.push_str(" AND removed_at IS NULL");
        }
        if let Some(st) = filter.status {
            args.push(st.as_str().to_string());
            sql.push_str(&format!(" AND status = ?{}", args.len()));
        }
        if let Some(repo) = &filter.repo_path {
            args.push(repo.clone());
            sql.push_str(&format!(" AND repo_path = ?{}", args.len()));
        }
        sql.push_str(" ORDER BY created_at DESC, id");
        self.query_sessions(&sql, rusqlite::params_from_iter(args.iter()))
    }

    /// A page of the sessions `search` selects, newest first (by repository first with `by_repo`), with
    /// each row's iterations, cost and lines, and the total count. Filtering, counting and paging happen
    /// here; the aggregates are read from indexed tables for the page's rows only (the page is chosen in
    /// an inner query: sorting with them would compute them for every matching row).
    pub fn search_sessions(&self, search: &SessionSearch) -> Result<SessionListPage, StoreError> {
        let mut filter = String::from(" WHERE creating_pid IS NULL");
        let mut args: Vec<String> = Vec::new();
        if !search.include_removed {
            filter.push_str(" AND removed_at IS NULL");
        }
        if let Some(st) = search.status {
            args.push(st.as_str().to_string());
            filter.push_str(&format!(" AND status = ?{}", args.len()));
        }
        if let Some(repo) = &search.repo_path {
            args.push(repo.clone());
            filter.push_str(&format!(" AND repo_path = ?{}", args.len()));
        }
        if let Some(agent) = &search.agent {
            args.push(agent.clone());
            filter.push_str(&format!(" AND agent = ?{}", args.len()));
        }
        for word in search.text.as_deref().unwrap_or("").split_whitespace().take(8) {
            args.push(format!("%{}%", like_escape(word)));
            let n = args.len();
            filter.push_str(&format!(
                " AND (name LIKE ?{n} ESCAPE '\\' OR branch LIKE ?{n} ESCAPE '\\' OR repo_path LIKE ?{n} ESCAPE '\\' \
                 OR agent LIKE ?{n} ESCAPE '\\' OR id LIKE ?{n} ESCAPE '\\' OR prompt LIKE ?{n} ESCAPE '\\')"
            ));
        }
        let total: i64 = self
            .conn
            .prepare_cached(&format!("SELECT COUNT(*) FROM sessions{filter}"))?
            .query_row(rusqlite::params_from_iter(args.iter()), |r| r.get(0))?;
        let order = if search.by_repo { "repo_path, created_at DESC, id" } else { "created_at DESC, id" };
        let sql = format!(
            "SELECT {COLUMNS}, \
             (SELECT COUNT(*) FROM iterations i WHERE i.session_id = s.id), \
             (SELECT COUNT(*) FROM token_usage u WHERE u.session_id = s.id AND u.cost_usd IS NOT NULL), \
             (SELECT COALESCE(SUM(u.cost_usd), 0.0) FROM token_usage u WHERE u.session_id = s.id), \
             (SELECT COUNT(*) FROM token_usage u WHERE u.session_id = s.id AND u.cost_usd IS NULL), \
             (SELECT COALESCE(SUM(f.lines_added), 0) FROM file_changes f WHERE f.session_id = s.id), \
             (SELECT COALESCE(SUM(f.lines_removed), 0) FROM file_changes f WHERE f.session_id = s.id) \
             FROM (SELECT * FROM sessions{filter} ORDER BY {order} LIMIT {} OFFSET {}) s ORDER BY {order}",
            search.limit.max(1),
            search.offset
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), |r| {
            Ok(SessionListRow {
                session: from_row(r)?,
                iterations: r.get(23)?,
                priced_rows: r.get(24)?,
                known_cost_usd: Money::from_usd(r.get(25)?),
                unpriced_rows: r.get(26)?,
                lines_added: r.get(27)?,
                lines_removed: r.get(28)?,
            })
        })?;
        let rows = rows.collect::<Result<Vec<_>, _>>()?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT repo_path, COUNT(*) FROM sessions WHERE removed_at IS NULL AND creating_pid IS NULL \
             GROUP BY repo_path ORDER BY repo_path",
        )?;
        let repos = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<Vec<_>, _>>()?;
        let mut stmt = self.conn.prepare_cached("SELECT DISTINCT agent FROM sessions ORDER BY agent")?;
        let agents = stmt.query_map([], |r| r.get(0))?.collect::<Result<Vec<_>, _>>()?;
        Ok(SessionListPage { rows, total: total.max(0) as u64, repos, agents })
    }

    /// Adds a failure of background work (a first run that could not start, a setup that could not run)
    /// to the session's history as a note, and shows it as the session's status note, without changing
    /// its status: both in one transaction.
    pub fn record_failure_note(&mut self, id: &SessionId, note: &str) -> Result<(), StoreError> {
        self.write_tx(|tx| {
            let status: String = tx
                .query_row("SELECT status FROM sessions WHERE id = ?1", [id.as_str()], |r| r.get(0))
                .optional()?
                .ok_or_else(|| StoreError::SessionNotFound(id.to_string()))?;
            let now = now_ms();
            tx.execute(
                "UPDATE sessions SET status_note = ?2, updated_at = ?3 WHERE id = ?1",
                params![id.as_str(), note, now],
            )?;
            tx.execute(
                "INSERT INTO status_changes (session_id, from_status, to_status, reason, at) VALUES (?1, ?2, ?2, ?3, ?4)",
                params![id.as_str(), status, note, now],
            )?;
            Ok(())
        })
    }

    fn query_sessions<P: rusqlite::Params>(&self, sql: &str, params: P) -> Result<Vec<Session>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map(params, from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Changes the status when the state machine allows it, recording the change and its reason.
    pub fn set_status(
        &mut self,
        id: &SessionId,
        to: SessionStatus,
        reason: Option<&str>,
    ) -> Result<SessionStatus, StoreError> {
        self.write_tx(|tx| transition(tx, id, to, reason))
    }

    /// Marks a session removed unless a run is going on in it, checked and changed in one transaction, so
    /// that no iteration can begin in it afterwards (`begin_iteration` refuses removed sessions).
    /// `Ok(Some(pid))`: a run is going on, by runner `pid` (not removed); `dead_runner` names a runner
    /// already known to be gone, whose run does not count. Fails with [`StoreError::SessionRemoved`] when
    /// it is removed already.
    pub fn claim_for_removal(
        &mut self,
        id: &SessionId,
        dead_runner: Option<i64>,
    ) -> Result<Option<i64>, StoreError> {
        self.write_tx(|tx| {
            let (name, status, runner, removed): (String, SessionStatus, Option<i64>, Option<i64>) = tx
                .query_row(
                    "SELECT name, status, runner_pid, removed_at FROM sessions WHERE id = ?1",
                    [id.as_str()],
                    |r| Ok((r.get(0)?, crate::text_column(r, 1)?, r.get(2)?, r.get(3)?)),
                )?;
            if removed.is_some() {
                return Err(StoreError::SessionRemoved(name));
            }
            if status.has_a_run()
                && let Some(pid) = runner.filter(|p| Some(*p) != dead_runner)
            {
                return Ok(Some(pid));
            }
            tx.execute(
                "UPDATE sessions SET removed_at = ?2, updated_at = ?2, runner_pid = NULL, agent_pid = NULL WHERE id = ?1",
                params![id.as_str(), now_ms()],
            )?;
            Ok(None)
        })
    }

    /// Undoes [`Store::claim_for_removal`] when the removal could not be done.
    pub fn unmark_removed(&mut self, id: &SessionId) -> Result<(), StoreError> {
        self.conn.execute("UPDATE sessions SET removed_at = NULL WHERE id = ?1", [id.as_str()])?;
        Ok(())
    }

    /// Brings a removed session back to life (`undo` recreated its worktree).
    pub fn mark_restored(&mut self, id: &SessionId) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE sessions SET removed_at = NULL, updated_at = ?2 WHERE id = ?1",
            params![id.as_str(), now_ms()],
        )?;
        Ok(())
    }

    /// The id of the live session of `repo_path` named `name`, if there is one.
    pub fn live_session_named(&self, repo_path: &str, name: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT id FROM sessions WHERE repo_path = ?1 AND name = ?2 AND removed_at IS NULL",
                params![repo_path, name],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Records the base a session builds on: a branch and its commit, or with `branch` `None` only the
    /// commit (after a finished rebase).
    pub fn set_base(&mut self, id: &SessionId, branch: Option<&str>, commit: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE sessions SET base_branch = COALESCE(?2, base_branch), base_commit = ?3, updated_at = ?4              WHERE id = ?1",
            params![id.as_str(), branch, commit, now_ms()],
        )?;
        Ok(())
    }

    /// Marks the run a crashed runner left (its runner is gone): status `error` with `note`, pids cleared;
    /// only if the session is still in that run (running, or awaiting an approval, with the runner `seen`
    /// when it was found), checked and changed in one transaction. Whether it did.
    pub fn mark_orphaned(
        &mut self,
        id: &SessionId,
        seen: Option<i64>,
        note: &str,
    ) -> Result<bool, StoreError> {
        self.write_tx(|tx| {
            let now: Option<(SessionStatus, Option<i64>)> = tx
                .query_row("SELECT status, runner_pid FROM sessions WHERE id = ?1", [id.as_str()], |r| {
                    Ok((crate::text_column(r, 0)?, r.get(1)?))
                })
                .optional()?;
            match now {
                Some((status, runner)) if status.has_a_run() && runner == seen => {
                    transition(tx, id, SessionStatus::Error, Some(note))?;
                    tx.execute(
                        "UPDATE sessions SET runner_pid = NULL, agent_pid = NULL WHERE id = ?1",
                        [id.as_str()],
                    )?;
                    Ok(true)
                }
                _ => Ok(false),
            }
        })
    }

    /// Records which processes run the session's iteration (`None` clears them).
    pub fn set_pids(
        &mut self,
        id: &SessionId,
        runner: Option<i64>,
        agent: Option<i64>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE sessions SET runner_pid = ?2, agent_pid = ?3, updated_at = ?4 WHERE id = ?1",
            params![id.as_str(), runner, agent, now_ms()],
        )?;
        Ok(())
    }

    /// Stores the agent thread id the moment the agent reports it.
    pub fn set_thread_id(&mut self, id: &SessionId, thread_id: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE sessions SET thread_id = ?2, updated_at = ?3 WHERE id = ?1",
            params![id.as_str(), thread_id, now_ms()],
        )?;
        Ok(())
    }

    /// Marks a session removed; the row (and its history and snapshots) stays.
    pub fn mark_removed(&mut self, id: &SessionId) -> Result<(), StoreError> {
        let now = now_ms();
        self.conn.execute(
            "UPDATE sessions SET removed_at = ?2, updated_at = ?2, runner_pid = NULL, agent_pid = NULL WHERE id = ?1",
            params![id.as_str(), now],
        )?;
        Ok(())
    }

    /// Status history of a session, oldest first.
    pub fn status_history(&self, id: &SessionId) -> Result<Vec<StatusChange>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT from_status, to_status, reason, at FROM status_changes WHERE session_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([id.as_str()], |r| {
            Ok(StatusChange { from: r.get(0)?, to: r.get(1)?, reason: r.get(2)?, at: r.get(3)? })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
}

impl Store {
    /// Marks iterations of `session` that never ended as crashed (used by repair).
    pub fn mark_running_iterations_crashed(&mut self, session: &SessionId) -> Result<usize, StoreError> {
        Ok(self.conn.execute(
            "UPDATE iterations SET outcome = ?3, ended_at = ?2, \
             error = COALESCE(error, 'the amp-sessions process running it ended unexpectedly') \
             WHERE session_id = ?1 AND ended_at IS NULL",
            params![session.as_str(), now_ms(), IterationOutcome::Crashed.as_str()],
        )?)
    }
}

/// `text` with LIKE's wildcards and the escape character escaped (by a backslash).
fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Moves session `id` to status `to` inside the caller's transaction, recording the change in
/// `status_changes` when the status differs; returns the status it had.
pub(crate) fn transition(
    tx: &rusqlite::Connection,
    id: &SessionId,
    to: SessionStatus,
    reason: Option<&str>,
) -> Result<SessionStatus, StoreError> {
    let from: String = tx
        .query_row("SELECT status FROM sessions WHERE id = ?1", [id.as_str()], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::SessionNotFound(id.to_string()))?;
    let from: SessionStatus = from.parse().map_err(StoreError::Corrupt)?;
    from.check_transition(to).map_err(|source| StoreError::Transition { session: id.to_string(), source })?;
    let now = now_ms();
    tx.execute(
        "UPDATE sessions SET status = ?2, status_note = ?3, updated_at = ?4 WHERE id = ?1",
        params![id.as_str(), to.as_str(), reason, now],
    )?;
    if from != to {
        tx.execute(
            "INSERT INTO status_changes (session_id, from_status, to_status, reason, at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id.as_str(), from.as_str(), to.as_str(), reason, now],
        )?;
    }
    Ok(from)
}

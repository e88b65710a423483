//! Approvals (the `ask` permission policy): each tool call an agent wants approved is a row, numbered
//! 1, 2, … within its session; it is answered once (`approved`/`denied`, a compare-and-swap from
//! `pending`, so two terminals cannot both answer), or ends `timed_out`, or `cancelled` when its run ended
//! first. Also the stop requests that `stop` leaves for the process running an iteration.

use crate::{Store, StoreError};
use ampsm_core::SessionId;
use ampsm_core::time::now_ms;
use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;

/// Where an approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Denied,
    /// Nobody answered in time: the tool call was denied.
    TimedOut,
    /// The run ended (stopped, failed, timed out) before an answer.
    Cancelled,
}

impl ApprovalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Denied => "denied",
            ApprovalStatus::TimedOut => "timed_out",
            ApprovalStatus::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> Option<ApprovalStatus> {
        [
            ApprovalStatus::Pending,
            ApprovalStatus::Approved,
            ApprovalStatus::Denied,
            ApprovalStatus::TimedOut,
            ApprovalStatus::Cancelled,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// A permission request of an agent, as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Approval {
    pub id: String,
    pub session_id: String,
    pub iteration_id: Option<String>,
    /// 1, 2, … within the session: what `approve <s> N` names.
    pub seq: i64,
    /// The agent's own id of the request.
    pub request_id: String,
    pub call_id: Option<String>,
    pub tool: String,
    /// The tool call's input (secrets redacted).
    pub input: serde_json::Value,
    pub status: ApprovalStatus,
    pub message: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub decided_at: Option<i64>,
}

/// A new permission request.
#[derive(Debug, Clone)]
pub struct NewApproval {
    pub id: String,
    pub session_id: SessionId,
    pub iteration_id: String,
    pub request_id: String,
    pub call_id: Option<String>,
    pub tool: String,
    /// JSON text, secrets already redacted.
    pub input: String,
    pub expires_at: i64,
}

const COLUMNS: &str = "id, session_id, iteration_id, seq, request_id, call_id, tool, input, status, message, \
     created_at, expires_at, decided_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Approval> {
    let input: String = r.get(7)?;
    let status: String = r.get(8)?;
    Ok(Approval {
        id: r.get(0)?,
        session_id: r.get(1)?,
        iteration_id: r.get(2)?,
        seq: r.get(3)?,
        request_id: r.get(4)?,
        call_id: r.get(5)?,
        tool: r.get(6)?,
        input: serde_json::from_str(&input).unwrap_or(serde_json::Value::String(input)),
        status: ApprovalStatus::parse(&status).unwrap_or(ApprovalStatus::Cancelled),
        message: r.get(9)?,
        created_at: r.get(10)?,
        expires_at: r.get(11)?,
        decided_at: r.get(12)?,
    })
}

impl Store {
    /// Records a pending request; returns it with its number in the session.
    pub fn insert_approval(&mut self, a: &NewApproval) -> Result<Approval, StoreError> {
        let now = now_ms();
        self.write_tx(|tx| {
            let seq: i64 = tx.query_row(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM approvals WHERE session_id = ?1",
                [a.session_id.as_str()],
                |r| r.get(0),
            )?;
            tx.execute(
                "INSERT INTO approvals (id, session_id, iteration_id, seq, request_id, call_id, tool, input, status, \
                 created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?9, ?10)",
                params![
                    a.id,
                    a.session_id.as_str(),
                    a.iteration_id,
                    seq,
                    a.request_id,
                    a.call_id,
                    a.tool,
                    a.input,
                    now,
                    a.expires_at
                ],
            )?;
            Ok(())
        })?;
        self.approval(&a.id)?
            .ok_or_else(|| StoreError::Corrupt(format!("approval {} was not recorded", a.id)))
    }

    /// One approval by its id.
    pub fn approval(&self, id: &str) -> Result<Option<Approval>, StoreError> {
        Ok(self
            .conn
            .query_row(&format!("SELECT {COLUMNS} FROM approvals WHERE id = ?1"), [id], from_row)
            .optional()?)
    }

    /// The pending requests, oldest first: of one session, or of all (`None`).
    pub fn pending_approvals(&self, session: Option<&SessionId>) -> Result<Vec<Approval>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM approvals WHERE status = 'pending' AND (?1 IS NULL OR session_id = ?1) \
             ORDER BY created_at, seq"
        ))?;
        let rows = stmt.query_map([session.map(SessionId::as_str)], from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Every request of a session, answered or not, oldest first.
    pub fn session_approvals(&self, session: &SessionId) -> Result<Vec<Approval>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM approvals WHERE session_id = ?1 ORDER BY seq"))?;
        let rows = stmt.query_map([session.as_str()], from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Answers (or ends) a pending request: `status` is any but `pending`. `Ok(None)` when it was no longer
    /// pending (answered elsewhere, timed out); the row is then unchanged.
    pub fn settle_approval(
        &mut self,
        id: &str,
        status: ApprovalStatus,
        message: Option<&str>,
    ) -> Result<Option<Approval>, StoreError> {
        let changed = self.conn.execute(
            "UPDATE approvals SET status = ?2, message = ?3, decided_at = ?4 WHERE id = ?1 AND status = 'pending'",
            params![id, status.as_str(), message, now_ms()],
        )?;
        if changed == 0 {
            return Ok(None);
        }
        self.approval(id)
    }

    /// Ends every request of an iteration still pending as `cancelled` (its run is over); returns how many.
    pub fn cancel_pending_approvals(&mut self, iteration_id: &str, why: &str) -> Result<usize, StoreError> {
        Ok(self.conn.execute(
            "UPDATE approvals SET status = 'cancelled', message = ?2, decided_at = ?3 \
             WHERE iteration_id = ?1 AND status = 'pending'",
            params![iteration_id, why, now_ms()],
        )?)
    }

    /// Ends every request of a session still pending as `cancelled` (its runner is gone); returns how many.
    pub fn cancel_session_approvals(&mut self, session: &SessionId, why: &str) -> Result<usize, StoreError> {
        Ok(self.conn.execute(
            "UPDATE approvals SET status = 'cancelled', message = ?2, decided_at = ?3 \
             WHERE session_id = ?1 AND status = 'pending'",
            params![session.as_str(), why, now_ms()],
        )?)
    }

    /// Asks the process running the session's current iteration to stop its agent. Returns that
    /// iteration's id, or `None` when no iteration of the session is running.
    pub fn request_stop(&mut self, session: &SessionId) -> Result<Option<String>, StoreError> {
        let id: Option<String> = self
            .conn
            .query_row(
                "SELECT id FROM iterations WHERE session_id = ?1 AND ended_at IS NULL ORDER BY seq DESC LIMIT 1",
                [session.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = &id {
            self.conn.execute(
                "UPDATE iterations SET stop_requested_at = COALESCE(stop_requested_at, ?2) WHERE id = ?1",
                params![id, now_ms()],
            )?;
        }
        Ok(id)
    }

    /// Whether `stop` asked this iteration to stop.
    pub fn stop_requested(&self, iteration_id: &str) -> Result<bool, StoreError> {
        let at: Option<Option<i64>> = self
            .conn
            .query_row("SELECT stop_requested_at FROM iterations WHERE id = ?1", [iteration_id], |r| r.get(0))
            .optional()?;
        Ok(at.flatten().is_some())
    }
}

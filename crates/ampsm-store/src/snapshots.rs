//! Snapshot records: every ref saved before a destructive step (`refs/ampsm/snapshots/<session>/<n>`), so
//! `undo` can restore the last one and `show` can list them.

use crate::{Store, StoreError};
use ampsm_core::SessionId;
use ampsm_core::time::now_ms;
use rusqlite::params;
use serde::Serialize;

/// One recorded snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotRecord {
    pub seq: i64,
    pub refname: String,
    pub sha: String,
    pub branch: String,
    pub reason: String,
    pub created_at: i64,
    pub restored_at: Option<i64>,
}

impl Store {
    /// Records a snapshot ref.
    pub fn insert_snapshot(
        &mut self,
        session: &SessionId,
        seq: i64,
        refname: &str,
        sha: &str,
        branch: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO snapshots (session_id, seq, refname, sha, branch, reason, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![session.as_str(), seq, refname, sha, branch, reason, now_ms()],
        )?;
        Ok(())
    }

    /// Snapshots of a session, oldest first.
    pub fn list_snapshots(&self, session: &SessionId) -> Result<Vec<SnapshotRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, refname, sha, branch, reason, created_at, restored_at FROM snapshots WHERE session_id = ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map([session.as_str()], |r| {
            Ok(SnapshotRecord {
                seq: r.get(0)?,
                refname: r.get(1)?,
                sha: r.get(2)?,
                branch: r.get(3)?,
                reason: r.get(4)?,
                created_at: r.get(5)?,
                restored_at: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Marks a snapshot as restored by `undo`.
    pub fn mark_snapshot_restored(&mut self, session: &SessionId, seq: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE snapshots SET restored_at = ?3 WHERE session_id = ?1 AND seq = ?2",
            params![session.as_str(), seq, now_ms()],
        )?;
        Ok(())
    }
}

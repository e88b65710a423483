//! Activity across all sessions, for watchers that tell the user what happened (the dashboard's browser
//! notifications): the status changes recorded after a given one, oldest first, with the session's name.

use crate::{Store, StoreError};
use ampsm_core::SessionId;

/// One recorded status change of some session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityChange {
    /// The change's row id: pass the last one seen to [`Store::status_changes_after`].
    pub id: i64,
    pub session_id: SessionId,
    pub session_name: String,
    pub from: Option<String>,
    pub to: String,
    pub reason: Option<String>,
    pub at: i64,
}

impl Store {
    /// How many live (not removed) sessions have each status, as `(status, count)` pairs of the statuses
    /// that have any: the desktop app's tray counts.
    pub fn session_status_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT status, COUNT(*) FROM sessions WHERE removed_at IS NULL GROUP BY status ORDER BY status",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The id of the newest status change (0 when there is none): where a watcher starts.
    pub fn last_status_change_id(&self) -> Result<i64, StoreError> {
        let mut stmt = self.conn.prepare_cached("SELECT COALESCE(MAX(id), 0) FROM status_changes")?;
        Ok(stmt.query_row([], |r| r.get(0))?)
    }

    /// Status changes of every session after the change `after`, oldest first, at most `limit`.
    pub fn status_changes_after(&self, after: i64, limit: i64) -> Result<Vec<ActivityChange>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT c.id, c.session_id, s.name, c.from_status, c.to_status, c.reason, c.at \
             FROM status_changes c JOIN sessions s ON s.id = c.session_id \
             WHERE c.id > ?1 ORDER BY c.id LIMIT ?2",
        )?;
        let rows = stmt.query_map([after, limit], |r| {
            Ok(ActivityChange {
                id: r.get(0)?,
                session_id: SessionId::from_stored(r.get::<_, String>(1)?),
                session_name: r.get(2)?,
                from: r.get(3)?,
                to: r.get(4)?,
                reason: r.get(5)?,
                at: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
}

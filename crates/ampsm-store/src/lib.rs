//! The SQLite store of amp-sessions: the one source of truth. Opening runs the numbered migrations (WAL,
//! busy timeout, foreign keys), refuses databases written by a newer version, and offers typed access to
//! sessions, their status history, iterations, agent events, metrics, snapshots, batches and benchmarks.

mod activity;
pub mod approvals;
pub mod batches;
pub mod bench;
mod checkpoint;
pub mod cluster;
mod error;
pub mod jobs;
pub mod metrics;
mod migrate;
pub mod runs;
pub mod sessions;
pub mod snapshots;

pub use activity::ActivityChange;
pub use approvals::{Approval, ApprovalStatus, NewApproval};
pub use checkpoint::Checkpointer;
pub use error::StoreError;
pub use migrate::{SCHEMA_VERSION, schema_version_of};
pub use runs::{
    EventEffect, EventRecord, Iteration, IterationEnd, LinePosition, NewIteration, RecordSummary,
    StoredEvent, ToolCall, UsageRow,
};
pub use sessions::{NewSession, Session, SessionFilter, StatusChange};
pub use snapshots::SnapshotRecord;

use rusqlite::Connection;
use rusqlite::Row;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A connection to the store. Cheap to open; one per thread.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Tool calls this connection opened and has not closed yet: `iteration\0call id` → row id. Lets a
    /// result find its call by row id instead of an index search (see `record_events`).
    open_tool_calls: std::collections::HashMap<String, i64>,
}

impl Store {
    /// Opens (creating when missing) the database at `path`, migrating an older schema forward.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)
                .map_err(|source| StoreError::Io { path: dir.to_path_buf(), source })?;
        }
        let conn = Connection::open(path).map_err(|e| StoreError::open(path, e))?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(|e| StoreError::open(path, e))?;
        migrate::check_and_migrate(&conn, path)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(|e| StoreError::open(path, e))?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(|e| StoreError::open(path, e))?;
        Ok(Store { conn, path: path.to_path_buf(), open_tool_calls: Default::default() })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(schema_version_of(&self.conn)?)
    }

    /// The underlying connection, for the modules of this crate.
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Runs `f` inside `BEGIN IMMEDIATE … COMMIT` (rolled back on error).
    pub fn write_tx<T>(
        &mut self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }
}

/// Reads a REAL column of dollars (NULL: none).
pub(crate) fn money_column(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<ampsm_core::Money>> {
    Ok(row.get::<_, Option<f64>>(idx)?.map(ampsm_core::Money::from_usd))
}

/// Reads a text column that may be NULL as one of the core's text enums.
pub(crate) fn text_column_opt<T>(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<T>>
where
    T: std::str::FromStr<Err = String>,
{
    match row.get::<_, Option<String>>(idx)? {
        Some(text) => text.parse::<T>().map(Some).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, e.into())
        }),
        None => Ok(None),
    }
}

/// Reads a text column as one of the core's text enums (a status, an outcome).
pub(crate) fn text_column<T>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T>
where
    T: std::str::FromStr<Err = String>,
{
    let text: String = row.get(idx)?;
    text.parse::<T>()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_database_is_wal_with_current_schema() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("a/b/sessions.db")).unwrap();
        let mode: String = store.conn().query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = store.conn().query_row("PRAGMA foreign_keys", [], |r| r.get(0)).unwrap();
        assert_eq!(fk, 1);
        assert_eq!(schema_version_of(store.conn()).unwrap(), SCHEMA_VERSION);
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    }
}

//! Numbered schema migrations kept in `migrations/NNNN_*.sql`, applied in order inside transactions and
//! tracked in `PRAGMA user_version`. A database from a newer version is refused before anything is written.

use crate::error::StoreError;
use rusqlite::{Connection, ErrorCode};
use std::path::Path;
use std::time::{Duration, Instant};

/// The migrations, in order; the schema version is their count.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_initial.sql"),
    include_str!("../migrations/0002_batch_items_budget.sql"),
    include_str!("../migrations/0003_run_budgets_and_bench.sql"),
    include_str!("../migrations/0004_permissions_and_approvals.sql"),
    include_str!("../migrations/0005_cluster_executors.sql"),
    include_str!("../migrations/0006_cluster_task_progress.sql"),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The schema version stored in an open database.
pub fn schema_version_of(conn: &Connection) -> Result<i64, rusqlite::Error> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

pub(crate) fn check_and_migrate(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    migrate_with(conn, path, MIGRATIONS)
}

fn migrate_with(conn: &Connection, path: &Path, migrations: &[&str]) -> Result<(), StoreError> {
    let known = migrations.len() as i64;
    // The stored version; a newer one than this build knows is refused.
    let version = || -> Result<i64, StoreError> {
        let found = retry_busy(|| schema_version_of(conn)).map_err(|e| StoreError::open(path, e))?;
        if found > known {
            return Err(StoreError::TooNew { path: path.to_path_buf(), found, known });
        }
        Ok(found)
    };
    if version()? == known {
        return Ok(());
    }
    // Two commands started at once on a new (or old) file: one migrates, the other waits for it, then
    // finds the schema current.
    let _lock = MigrationLock::take(path)?;
    let found = version()?;
    if found == known {
        return Ok(());
    }
    // WAL is a property of the file; set it once, when the file is new or being upgraded. Changing the
    // journal mode does not always wait for a reader's lock, hence the retries.
    let _mode: String = retry_busy(|| conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)))
        .map_err(|e| StoreError::open(path, e))?;
    if found > 0 {
        backup(conn, path, found)?;
    }
    for (i, sql) in migrations.iter().enumerate().skip(found as usize) {
        let version = i as i64 + 1;
        let fail = |e: rusqlite::Error| StoreError::Migration {
            path: path.to_path_buf(),
            version,
            message: e.to_string(),
        };
        conn.execute_batch("BEGIN IMMEDIATE").map_err(fail)?;
        // Another process may have migrated while we waited for the lock.
        let now = schema_version_of(conn).map_err(fail)?;
        if now >= version {
            conn.execute_batch("COMMIT").map_err(fail)?;
            continue;
        }
        let applied = conn
            .execute_batch(sql)
            .and_then(|_| conn.pragma_update(None, "user_version", version))
            .and_then(|_| {
                conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('written_by', ?1)",
                    [concat!("amp-sessions ", env!("CARGO_PKG_VERSION"))],
                )
                .map(|_| ())
            });
        match applied {
            Ok(()) => conn.execute_batch("COMMIT").map_err(fail)?,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(fail(e));
            }
        }
    }
    Ok(())
}

/// How long a busy database is retried when SQLite's own busy handler does not wait.
const BUSY_WAIT: Duration = Duration::from_secs(10);

/// Runs `f` again while the database is busy or locked (up to [`BUSY_WAIT`]).
fn retry_busy<T>(mut f: impl FnMut() -> Result<T, rusqlite::Error>) -> Result<T, rusqlite::Error> {
    let deadline = Instant::now() + BUSY_WAIT;
    loop {
        match f() {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(e.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// An exclusive lock on `<db>.migrate.lock`, held while one process migrates; released when dropped
/// (and by the OS if the process dies).
struct MigrationLock(std::fs::File);

impl MigrationLock {
    fn take(db: &Path) -> Result<MigrationLock, StoreError> {
        let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(".migrate.lock");
        let lock_path = db.with_file_name(name);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| StoreError::Io { path: lock_path.clone(), source })?;
        file.lock().map_err(|source| StoreError::Io { path: lock_path, source })?;
        Ok(MigrationLock(file))
    }
}

impl Drop for MigrationLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// Copies an existing database to `<file>.v<N>.bak` before migrating it (SQLite's online backup, so a WAL
/// file is included).
fn backup(conn: &Connection, path: &Path, version: i64) -> Result<(), StoreError> {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".v{version}.bak"));
    let target = path.with_file_name(name);
    let _ = std::fs::remove_file(&target);
    conn.execute("VACUUM INTO ?1", [target.to_string_lossy()]).map(|_| ()).map_err(|e| {
        StoreError::Migration {
            path: path.to_path_buf(),
            version: version + 1,
            message: format!("backup to {} failed: {e}", target.display()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str =
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL); CREATE TABLE t (a INTEGER);";
    const V2: &str = "ALTER TABLE t ADD COLUMN b TEXT DEFAULT 'x';";

    #[test]
    fn older_databases_migrate_forward_with_a_backup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        {
            let conn = Connection::open(&path).unwrap();
            migrate_with(&conn, &path, &[V1]).unwrap();
            conn.execute("INSERT INTO t (a) VALUES (7)", []).unwrap();
        }
        let conn = Connection::open(&path).unwrap();
        migrate_with(&conn, &path, &[V1, V2]).unwrap();
        assert_eq!(schema_version_of(&conn).unwrap(), 2);
        let (a, b): (i64, String) =
            conn.query_row("SELECT a, b FROM t", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        assert_eq!((a, b.as_str()), (7, "x"));
        assert!(dir.path().join("s.db.v1.bak").exists());
    }

    #[test]
    fn a_failing_migration_leaves_the_previous_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let conn = Connection::open(&path).unwrap();
        migrate_with(&conn, &path, &[V1]).unwrap();
        let err = migrate_with(&conn, &path, &[V1, "ALTER TABLE nope ADD COLUMN c;"]).unwrap_err();
        assert!(matches!(err, StoreError::Migration { version: 2, .. }), "{err}");
        assert_eq!(schema_version_of(&conn).unwrap(), 1);
    }
}

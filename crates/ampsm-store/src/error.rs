//! Store errors: each says which database or which session, and what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database {path}: {message}")]
    Open { path: PathBuf, message: String },
    #[error(
        "the database {path} has schema version {found}, newer than this amp-sessions understands ({known}); \
         upgrade amp-sessions, or set AMPSM_DB_PATH to another file (the database was not changed)"
    )]
    TooNew { path: PathBuf, found: i64, known: i64 },
    #[error(
        "migrating {path} to schema version {version} failed: {message} (the database was left at the previous version)"
    )]
    Migration { path: PathBuf, version: i64, message: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("no session matches {0:?}")]
    SessionNotFound(String),
    #[error("session {0:?} was removed; nothing runs in it")]
    SessionRemoved(String),
    #[error("{reference:?} matches several sessions: {candidates}; use more characters of the id")]
    AmbiguousSession { reference: String, candidates: String },
    #[error("a session named {name:?} already exists for {repo} (id {id})")]
    DuplicateName { name: String, repo: String, id: String },
    #[error("session {session}: {source}")]
    Transition { session: String, source: ampsm_core::TransitionError },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("corrupt value in the database: {0}")]
    Corrupt(String),
    #[error("cannot take in the result bundle {path}: {message}")]
    Bundle { path: PathBuf, message: String },
}

impl StoreError {
    /// What to do next: list the sessions, or bring a removed one's work back.
    pub fn hint(&self) -> Option<ampsm_core::Hint> {
        match self {
            StoreError::SessionNotFound(_) => Some(ampsm_core::Hint::ListSessions),
            StoreError::SessionRemoved(name) => Some(ampsm_core::Hint::Undo { session: name.clone() }),
            _ => None,
        }
    }

    /// What kind of failure this is: a session reference that matches nothing (or a removed session) is
    /// not found, an ambiguous reference or a taken name is bad input, the rest failed.
    pub fn kind(&self) -> ampsm_core::ErrorKind {
        use ampsm_core::ErrorKind;
        match self {
            StoreError::SessionNotFound(_) | StoreError::SessionRemoved(_) => ErrorKind::NotFound,
            StoreError::AmbiguousSession { .. } | StoreError::DuplicateName { .. } => ErrorKind::BadInput,
            StoreError::Open { .. }
            | StoreError::TooNew { .. }
            | StoreError::Migration { .. }
            | StoreError::Io { .. }
            | StoreError::Transition { .. }
            | StoreError::Sqlite(_)
            | StoreError::Corrupt(_)
            | StoreError::Bundle { .. } => ErrorKind::Failed,
        }
    }

    pub(crate) fn open(path: &std::path::Path, e: rusqlite::Error) -> StoreError {
        StoreError::Open { path: path.to_path_buf(), message: e.to_string() }
    }
}

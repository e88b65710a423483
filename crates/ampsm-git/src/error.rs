//! The error type shared by every git operation: each variant names the command, the directory and git's own words.

use std::path::PathBuf;
use std::time::Duration;

/// Result alias used throughout this crate.
pub type Result<T, E = GitError> = std::result::Result<T, E>;

/// Everything that can go wrong while driving the `git` command line.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The `git` executable could not be started (not installed, directory missing, ...).
    #[error("could not run `git {command}` in {dir}: {source}")]
    Spawn {
        /// The arguments, rendered for humans.
        command: String,
        /// Working directory of the attempt.
        dir: PathBuf,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },

    /// git ran and exited with a status the caller did not expect.
    #[error("`git {command}` failed in {dir} ({status}): {stderr}")]
    Failed {
        /// The arguments, rendered for humans.
        command: String,
        /// Working directory of the command.
        dir: PathBuf,
        /// `exit status N` or `killed by a signal`.
        status: String,
        /// The first lines of git's standard error, trimmed.
        stderr: String,
    },

    /// git did not finish in time; it was killed together with its process group.
    #[error("`git {command}` in {dir} did not finish within {}s and was killed", timeout.as_secs())]
    Timeout {
        /// The arguments, rendered for humans.
        command: String,
        /// Working directory of the command.
        dir: PathBuf,
        /// The limit that was exceeded.
        timeout: Duration,
    },

    /// The path is not inside a git repository (or does not exist).
    #[error("not a git repository: {}", path.display())]
    NotARepository {
        /// The path that was examined.
        path: PathBuf,
    },

    /// git printed something this crate does not understand.
    #[error("unexpected output from `git {command}` in {dir}: {detail}")]
    Parse {
        /// The arguments, rendered for humans.
        command: String,
        /// Working directory of the command.
        dir: PathBuf,
        /// What was wrong with the output.
        detail: String,
    },

    /// An argument was rejected before git was run (for example a revision starting with `-`).
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidArgument {
        /// What kind of value it is ("branch name", "revision", ...).
        what: &'static str,
        /// The offending value.
        value: String,
        /// Why it was rejected.
        reason: String,
    },

    /// A destructive operation was asked for in the user's main checkout.
    #[error(
        "refusing to {operation} in {}: it is the repository's main checkout, and amp-sessions only rewrites session worktrees",
        dir.display()
    )]
    MainCheckout {
        /// What was refused.
        operation: &'static str,
        /// The main checkout.
        dir: PathBuf,
    },

    /// The operation needs a clean checkout and this one has changes.
    #[error("refusing to {operation} in {}: it has uncommitted changes ({detail}); commit or stash them first", dir.display())]
    Dirty {
        /// What was refused.
        operation: &'static str,
        /// The checkout with changes.
        dir: PathBuf,
        /// A short list of the changed paths.
        detail: String,
    },

    /// A rebase, merge or similar is in progress and must be finished or aborted first.
    #[error("refusing to {operation} in {}: {state} is in progress; continue or abort it first", dir.display())]
    OperationInProgress {
        /// What was refused.
        operation: &'static str,
        /// The checkout concerned.
        dir: PathBuf,
        /// "a rebase", "a merge", ...
        state: &'static str,
    },

    /// The installed git is older than a feature needs.
    #[error("git {found} is too old: {feature} needs git {needed} or newer")]
    VersionTooOld {
        /// The installed version.
        found: String,
        /// The minimum version.
        needed: String,
        /// The feature that needs it.
        feature: &'static str,
    },

    /// Another process holds the per-repository lock.
    #[error(
        "timed out after {}s waiting for the lock on repository {} ({holder}); lock file: {}",
        waited.as_secs_f32(),
        repo.display(),
        lock_file.display()
    )]
    LockTimeout {
        /// The repository whose lock is busy.
        repo: PathBuf,
        /// The lock file.
        lock_file: PathBuf,
        /// How long we waited.
        waited: Duration,
        /// What the lock file says about its holder, if anything.
        holder: String,
    },

    /// A filesystem operation around git failed (lock files, temporary index, ...).
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done ("could not create", ...).
        action: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },
}

impl GitError {
    /// What kind of failure this is: a path or argument that is wrong is bad input, a checkout that must
    /// not be touched (main checkout, changes, an operation in progress) is a refusal, the rest failed.
    pub fn kind(&self) -> ampsm_core::ErrorKind {
        use ampsm_core::ErrorKind;
        match self {
            GitError::NotARepository { .. } | GitError::InvalidArgument { .. } => ErrorKind::BadInput,
            GitError::MainCheckout { .. } | GitError::Dirty { .. } | GitError::OperationInProgress { .. } => {
                ErrorKind::Refused
            }
            GitError::Spawn { .. }
            | GitError::Failed { .. }
            | GitError::Timeout { .. }
            | GitError::Parse { .. }
            | GitError::VersionTooOld { .. }
            | GitError::LockTimeout { .. }
            | GitError::Io { .. } => ErrorKind::Failed,
        }
    }

    /// git's standard error for [`GitError::Failed`], empty for other variants.
    pub fn stderr(&self) -> &str {
        match self {
            GitError::Failed { stderr, .. } => stderr,
            _ => "",
        }
    }
}

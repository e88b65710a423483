//! Errors of review and merge commands (status, diff, squash, rebase, merge, undo, clean-environment): each
//! names the session, branch, checkout or file concerned; what to do next is its [`Hint`]. They are carried by
//! [`crate::EngineError::Review`] and are refusals ([`ErrorKind::Refused`]) when they stop to protect work.

use ampsm_core::{ErrorKind, Hint};
use std::path::PathBuf;

/// A refused or failed review/merge step.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("the worktree of session {session} is missing ({})", path.display())]
    WorktreeMissing { session: String, short_id: String, path: PathBuf },

    #[error("session {session} has uncommitted changes ({detail}); commit or drop them before {operation}")]
    SessionDirty { session: String, short_id: String, detail: String, operation: &'static str },

    #[error("a rebase is in progress in session {session}; continue or abort it before {operation}")]
    RebaseInProgress { session: String, short_id: String, operation: &'static str },

    #[error("no rebase is in progress in session {session}")]
    NoRebaseInProgress { session: String, short_id: String },

    #[error("the rebase of session {session} onto {onto} stopped on conflicts in: {}", files.join(", "))]
    RebaseConflicts { session: String, short_id: String, onto: String, files: Vec<String>, worktree: PathBuf },

    #[error("conflict markers are still in: {} (session {session})", files.join(", "))]
    UnresolvedConflicts { session: String, short_id: String, files: Vec<String> },

    #[error("merging session {session} into {base} would conflict in: {}; nothing was changed", files.join(", "))]
    MergeConflicts { session: String, short_id: String, base: String, files: Vec<String> },

    #[error(
        "replaying the commits of session {session} onto {base} conflicts in: {}; the session branch was put back \
         as it was and {base} was not changed",
        files.join(", ")
    )]
    ReplayConflicts { session: String, short_id: String, base: String, files: Vec<String> },

    #[error(
        "refusing to merge session {session}: {branch} is checked out in {} and that checkout has uncommitted \
         changes ({detail}); nothing was changed. Commit or stash them there, then merge again",
        checkout.display()
    )]
    BaseCheckoutDirty { session: String, branch: String, checkout: PathBuf, detail: String },

    #[error(
        "refusing to merge session {session}: {branch} is {behind} commit(s) behind {upstream}; nothing was changed"
    )]
    BaseBehindRemote { session: String, short_id: String, branch: String, upstream: String, behind: u64 },

    #[error("could not fetch {remote} to check that {branch} is up to date: {reason}")]
    FetchFailed { remote: String, branch: String, reason: String },

    #[error("session {session} targets {base}, which is not a local branch; merge needs a branch to update")]
    BaseNotBranch { session: String, short_id: String, base: String },

    #[error("the base {base} of session {session} no longer exists, and neither does its recorded commit")]
    BaseMissing { session: String, base: String },

    #[error("session {session} has nothing to merge: every change on {branch} is already in {base}")]
    NothingToMerge { session: String, branch: String, base: String },

    #[error(
        "the test script of session {session} failed ({outcome}); nothing was merged. Last output: {tail}"
    )]
    TestsFailed { session: String, outcome: String, tail: String },

    #[error(
        "{what} moved while session {session} was being merged; nothing was changed on {base}. Run the merge again"
    )]
    Moved { session: String, what: String, base: String },

    #[error("nothing is staged in session {session}")]
    NothingStaged { session: String, short_id: String },

    #[error("session {session} has nothing to squash{detail}")]
    NothingToSquash { session: String, detail: String },

    #[error(
        "session {session} has merge commits since {base}; only a straight line of commits can be folded into the \
         agent's"
    )]
    NonLinearHistory { session: String, short_id: String, base: String },

    #[error("session {session} has no snapshot left to restore")]
    NoSnapshot { session: String, short_id: String },

    #[error("session {session} has no snapshot #{seq}")]
    UnknownSnapshot { session: String, short_id: String, seq: i64 },

    #[error("snapshot ref {refname} of session {session} is gone from {repo}; it cannot be restored")]
    SnapshotRefGone { session: String, refname: String, repo: String },

    #[error("cannot bring session {session} back: {reason}")]
    CannotRecreate { session: String, reason: String },

    #[error("{reason}")]
    BadRequest { reason: String },

    #[error("no paths were named, nor every changed path")]
    NoPaths,

    #[error("paths were named, and every changed path was asked for too")]
    PathsAndAll,

    #[error("{0}")]
    Remote(String),

    #[error("session {session} was merged into {base}, but pushing {base} to {remote} failed: {reason}")]
    PushFailed { session: String, base: String, remote: String, reason: String },

    #[error("could not open a pull request for session {session}: {reason}")]
    PrFailed { session: String, reason: String },

    #[error("could not run the test script of session {session} ({script:?}): {source}")]
    ScriptSpawn { session: String, script: String, source: std::io::Error },
}

impl ReviewError {
    /// What to do next, when the error has a next step.
    pub fn hint(&self) -> Option<Hint> {
        Some(match self {
            ReviewError::WorktreeMissing { short_id, .. } => {
                Hint::UndoOrForceRemove { session: short_id.clone() }
            }
            ReviewError::SessionDirty { short_id, .. } => {
                Hint::CommitOrRollback { session: short_id.clone() }
            }
            ReviewError::RebaseInProgress { short_id, .. } => {
                Hint::FinishRebase { session: short_id.clone() }
            }
            ReviewError::NoRebaseInProgress { short_id, .. } => {
                Hint::StartRebase { session: short_id.clone() }
            }
            ReviewError::RebaseConflicts { short_id, worktree, .. } => Hint::ResolveThenContinue {
                session: short_id.clone(),
                worktree: worktree.display().to_string(),
            },
            ReviewError::UnresolvedConflicts { short_id, .. } => {
                Hint::ContinueRebase { session: short_id.clone() }
            }
            ReviewError::MergeConflicts { short_id, .. } => {
                Hint::RebaseThenMerge { session: short_id.clone() }
            }
            ReviewError::ReplayConflicts { short_id, .. } => {
                Hint::RebaseOrOtherStrategy { session: short_id.clone() }
            }
            ReviewError::BaseBehindRemote { short_id, branch, .. } => {
                Hint::UpdateBaseThenRebase { session: short_id.clone(), branch: branch.clone() }
            }
            ReviewError::BaseNotBranch { short_id, .. } => {
                Hint::RebaseOntoBranch { session: short_id.clone() }
            }
            ReviewError::PushFailed { base, remote, .. } => {
                Hint::PushLater { remote: remote.clone(), branch: base.clone() }
            }
            ReviewError::NothingStaged { short_id, .. } => Hint::StageFirst { session: short_id.clone() },
            ReviewError::NoPaths => Hint::NamePathsOrAll,
            ReviewError::PathsAndAll => Hint::PathsOrAllNotBoth,
            ReviewError::NonLinearHistory { short_id, .. } => Hint::SquashAll { session: short_id.clone() },
            ReviewError::NoSnapshot { short_id, .. } | ReviewError::UnknownSnapshot { short_id, .. } => {
                Hint::ShowSnapshots { session: short_id.clone() }
            }
            _ => return None,
        })
    }

    /// What kind of failure this is: a wrong request is bad input (a missing snapshot number not found),
    /// a step stopped to protect work is a refusal, the rest failed.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ReviewError::BadRequest { .. }
            | ReviewError::NoPaths
            | ReviewError::PathsAndAll
            | ReviewError::BaseNotBranch { .. }
            | ReviewError::NoRebaseInProgress { .. } => ErrorKind::BadInput,
            ReviewError::UnknownSnapshot { .. } => ErrorKind::NotFound,
            ReviewError::SessionDirty { .. }
            | ReviewError::RebaseInProgress { .. }
            | ReviewError::UnresolvedConflicts { .. }
            | ReviewError::MergeConflicts { .. }
            | ReviewError::ReplayConflicts { .. }
            | ReviewError::RebaseConflicts { .. }
            | ReviewError::BaseCheckoutDirty { .. }
            | ReviewError::BaseBehindRemote { .. }
            | ReviewError::TestsFailed { .. }
            | ReviewError::Moved { .. }
            | ReviewError::NonLinearHistory { .. } => ErrorKind::Refused,
            _ => ErrorKind::Failed,
        }
    }
}

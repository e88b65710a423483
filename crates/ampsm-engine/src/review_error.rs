//! Errors of review and merge commands (status, diff, squash, rebase, merge, undo, clean-environment): each
//! names the session, branch, checkout or file concerned and says what to do next. They are carried by
//! [`crate::EngineError::Review`] and are refusals ([`ErrorKind::Refused`]) when they stop to protect work.

use ampsm_core::ErrorKind;
use std::path::PathBuf;

/// A refused or failed review/merge step.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error(
        "the worktree of session {session} is missing ({}); bring it back with `amp-sessions undo {short_id}` \
         or remove the session with `amp-sessions rm {short_id} --force`",
        path.display()
    )]
    WorktreeMissing { session: String, short_id: String, path: PathBuf },

    #[error(
        "session {session} has uncommitted changes ({detail}); commit them with `amp-sessions stage {short_id} --all` \
         and `amp-sessions commit {short_id} -m MSG`, or drop them with `amp-sessions rollback {short_id}`, before {operation}"
    )]
    SessionDirty { session: String, short_id: String, detail: String, operation: &'static str },

    #[error(
        "a rebase is in progress in session {session}; finish it with `amp-sessions rebase {short_id} --continue` or \
         `amp-sessions rebase {short_id} --abort` before {operation}"
    )]
    RebaseInProgress { session: String, short_id: String, operation: &'static str },

    #[error("no rebase is in progress in session {session}; start one with `amp-sessions rebase {short_id}`")]
    NoRebaseInProgress { session: String, short_id: String },

    #[error(
        "the rebase of session {session} onto {onto} stopped on conflicts in: {}; edit those files in {}, then run \
         `amp-sessions rebase {short_id} --continue` (or give up with `amp-sessions rebase {short_id} --abort`)",
        files.join(", "), worktree.display()
    )]
    RebaseConflicts { session: String, short_id: String, onto: String, files: Vec<String>, worktree: PathBuf },

    #[error(
        "conflict markers are still in: {} (session {session}); finish editing them, then run \
         `amp-sessions rebase {short_id} --continue` again",
        files.join(", ")
    )]
    UnresolvedConflicts { session: String, short_id: String, files: Vec<String> },

    #[error(
        "merging session {session} into {base} would conflict in: {}; nothing was changed. Bring the session up to \
         date with `amp-sessions rebase {short_id}`, resolve the conflicts, then merge again",
        files.join(", ")
    )]
    MergeConflicts { session: String, short_id: String, base: String, files: Vec<String> },

    #[error(
        "replaying the commits of session {session} onto {base} conflicts in: {}; the session branch was put back \
         as it was and {base} was not changed. Run `amp-sessions rebase {short_id}` to resolve them commit by \
         commit, or merge with --strategy squash or merge",
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
        "refusing to merge session {session}: {branch} is {behind} commit(s) behind {upstream}; nothing was changed. \
         Update {branch} (for example `git pull --ff-only` in your checkout), then run `amp-sessions rebase \
         {short_id}` and merge again"
    )]
    BaseBehindRemote { session: String, short_id: String, branch: String, upstream: String, behind: u64 },

    #[error("could not fetch {remote} to check that {branch} is up to date: {reason}")]
    FetchFailed { remote: String, branch: String, reason: String },

    #[error(
        "session {session} targets {base}, which is not a local branch; merge needs a branch to update (rebase the \
         session onto one with `amp-sessions rebase {short_id} --onto BRANCH`)"
    )]
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

    #[error(
        "nothing is staged in session {session}; stage files with `amp-sessions stage {short_id} PATH…` or --all"
    )]
    NothingStaged { session: String, short_id: String },

    #[error("session {session} has nothing to squash{detail}")]
    NothingToSquash { session: String, detail: String },

    #[error(
        "session {session} has merge commits since {base}; --agent-only only folds a straight line of commits. \
         Squash everything with `amp-sessions squash {short_id}` instead"
    )]
    NonLinearHistory { session: String, short_id: String, base: String },

    #[error(
        "session {session} has no snapshot left to restore; `amp-sessions show {short_id}` lists its snapshots"
    )]
    NoSnapshot { session: String, short_id: String },

    #[error("session {session} has no snapshot #{seq}; `amp-sessions show {short_id}` lists its snapshots")]
    UnknownSnapshot { session: String, short_id: String, seq: i64 },

    #[error("snapshot ref {refname} of session {session} is gone from {repo}; it cannot be restored")]
    SnapshotRefGone { session: String, refname: String, repo: String },

    #[error("cannot bring session {session} back: {reason}")]
    CannotRecreate { session: String, reason: String },

    #[error("{reason}")]
    BadRequest { reason: String },

    #[error("{0}")]
    Remote(String),

    #[error(
        "session {session} was merged into {base}, but pushing {base} to {remote} failed: {reason}; run `git push {remote} {base}` when the remote is reachable"
    )]
    PushFailed { session: String, base: String, remote: String, reason: String },

    #[error("could not open a pull request for session {session}: {reason}")]
    PrFailed { session: String, reason: String },

    #[error("could not run the test script of session {session} ({script:?}): {source}")]
    ScriptSpawn { session: String, script: String, source: std::io::Error },
}

impl ReviewError {
    /// What kind of failure this is: a wrong request is bad input (a missing snapshot number not found),
    /// a step stopped to protect work is a refusal, the rest failed.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ReviewError::BadRequest { .. }
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

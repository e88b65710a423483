//! Git for amp-sessions: a thin, typed wrapper over the `git` command line (never libgit2) for worktrees, status,
//! diffs, commits, snapshots, rebase and merge, plus a per-repository lock.
//!
//! Every command runs with argv (no shell), stdin closed unless a message is fed, `GIT_EDITOR=true`,
//! `GIT_SEQUENCE_EDITOR=true`, `GIT_TERMINAL_PROMPT=0`, `LC_ALL=C` and a timeout (120 s by default) after which
//! git and its process group are killed. Destructive operations refuse to run in the user's main checkout.

#![deny(unsafe_code)]

mod commit;
mod conflicts;
mod error;
mod exec;
mod history;
mod lock;
mod patch;
mod plumbing;
mod repo;
mod review;
mod snapshot;
mod status;
mod worktree;

pub use commit::{FALLBACK_EMAIL, FALLBACK_NAME};
pub use conflicts::ConflictedMerge;
pub use error::{GitError, Result};
pub use exec::{DEFAULT_TIMEOUT, Git, GitOutput};
pub use history::{CommitInfo, FileStat};
pub use lock::RepoLock;
pub use patch::PatchApply;
pub use repo::{MIN_GIT_VERSION, edit_distance, ensure_git_version, git_version, repo_root};
pub use review::{MergeOutcome, MergePreview, RebaseOutcome};
pub use snapshot::{SNAPSHOT_REF_PREFIX, Snapshot};
pub use status::{EntryKind, Status, StatusEntry};
pub use worktree::WorktreeInfo;

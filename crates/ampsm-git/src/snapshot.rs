//! Snapshots: record a session worktree's exact state (commits and uncommitted files, untracked included) under
//! `refs/ampsm/snapshots/<session>/<n>` without touching its files, index or the stash, and restore it later.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::error::{GitError, Result};
use crate::exec::{Git, Invocation};

/// Namespace of snapshot refs; shared by all worktrees of a repository.
pub const SNAPSHOT_REF_PREFIX: &str = "refs/ampsm/snapshots/";

/// Trailer in a synthetic snapshot commit naming the commit the branch pointed to.
const BASE_TRAILER: &str = "Ampsm-Snapshot-Base";

/// Distinguishes temporary index files of concurrent snapshots in one process.
static TEMP_INDEX_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A recorded state of a session worktree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// `refs/ampsm/snapshots/<session>/<n>`.
    pub refname: String,
    /// Sequence number within the session, from 1.
    pub n: u64,
    /// The commit the ref points to: HEAD itself, or a synthetic commit holding the uncommitted files.
    pub sha: String,
    /// The commit the branch pointed to when the snapshot was taken.
    pub base: String,
    /// True when `sha` is a synthetic commit (child of `base`) whose tree is the working tree at the time,
    /// untracked files included.
    pub captured_changes: bool,
    /// The reason given when it was taken (only stored in synthetic commits).
    pub reason: Option<String>,
}

impl Snapshot {
    /// The session namespace part of the ref name.
    pub fn namespace(&self) -> Option<&str> {
        let rest = self.refname.strip_prefix(SNAPSHOT_REF_PREFIX)?;
        rest.rsplit_once('/').map(|(ns, _)| ns)
    }
}

/// Deletes the temporary index (and its lock file) when dropped.
struct TempIndex(PathBuf);

impl Drop for TempIndex {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let mut lock = self.0.clone().into_os_string();
        lock.push(".lock");
        let _ = std::fs::remove_file(PathBuf::from(lock));
    }
}

impl Git {
    /// Record the current state of this worktree as `refs/ampsm/snapshots/<ns_session>/<n>`, `n` being one more
    /// than the highest existing number (from 1).
    ///
    /// When the worktree is clean the ref points at HEAD. Otherwise a synthetic commit is made whose parent is
    /// HEAD and whose tree is the working tree as `git add -A` would stage it (untracked files included, ignored
    /// files not), built in a temporary index file: the worktree's files, its index, HEAD and the stash list are
    /// not modified. The message holds `reason` and an `Ampsm-Snapshot-Base: <HEAD>` trailer.
    pub fn create_snapshot(&self, ns_session: &str, reason: &str) -> Result<Snapshot> {
        self.check_snapshot_namespace(ns_session)?;
        let head = self.resolve_commit("HEAD")?.ok_or_else(|| GitError::InvalidArgument {
            what: "snapshot source",
            value: self.dir().display().to_string(),
            reason: "the branch has no commits yet".to_string(),
        })?;
        let reason_line = reason.lines().next().unwrap_or("").trim();
        let status = self.status()?;
        let (sha, captured) = if status.is_clean() {
            (head.clone(), false)
        } else {
            (self.capture_worktree(&head, reason_line)?, true)
        };

        // Claim the next number with a create-only update, retrying if another process took it first.
        let mut attempts = 0;
        loop {
            let n = self.next_snapshot_number(ns_session)?;
            let refname = format!("{SNAPSHOT_REF_PREFIX}{ns_session}/{n}");
            let message = format!("amp-sessions snapshot: {reason_line}");
            let out =
                self.run_ok(&["update-ref", "-m", message.as_str(), refname.as_str(), sha.as_str(), ""])?;
            if out.success() {
                return Ok(Snapshot {
                    refname,
                    n,
                    sha,
                    base: head,
                    captured_changes: captured,
                    reason: captured.then(|| reason_line.to_string()),
                });
            }
            attempts += 1;
            if attempts >= 5 || self.resolve_commit(&refname)?.is_none() {
                return Err(self.failed(format!("update-ref {refname} {sha}"), &out));
            }
        }
    }

    /// All snapshots of a session, oldest (lowest number) first.
    pub fn list_snapshots(&self, ns_session: &str) -> Result<Vec<Snapshot>> {
        self.check_snapshot_namespace(ns_session)?;
        let prefix = format!("{SNAPSHOT_REF_PREFIX}{ns_session}/");
        let args = [
            "for-each-ref",
            "--format=%(refname)%00%(objectname)%00%(parent)%00%(contents)%00",
            prefix.as_str(),
        ];
        let out = self.run(&args)?;
        let mut tokens: Vec<&str> = out.split('\0').collect();
        if tokens.last().is_some_and(|t| t.trim().is_empty()) {
            tokens.pop();
        }
        if !tokens.len().is_multiple_of(4) {
            return Err(self.parse_error(&args, "records do not have four fields"));
        }
        let mut snapshots = Vec::new();
        for record in tokens.chunks(4) {
            let refname = record[0].trim_start_matches('\n');
            // Only `<prefix><number>` refs are snapshots of this session (not `<prefix>sub/<n>`).
            let Some(n) = refname.strip_prefix(&prefix).and_then(|n| n.parse::<u64>().ok()) else {
                continue;
            };
            let sha = record[1].to_string();
            let parents: Vec<&str> = record[2].split_whitespace().collect();
            let synthetic_base = synthetic_base(&parents, record[3]);
            snapshots.push(Snapshot {
                refname: refname.to_string(),
                n,
                base: synthetic_base.clone().unwrap_or_else(|| sha.clone()),
                captured_changes: synthetic_base.is_some(),
                reason: synthetic_base.map(|_| snapshot_reason(record[3])),
                sha,
            });
        }
        snapshots.sort_by_key(|s| s.n);
        Ok(snapshots)
    }

    /// The most recent snapshot of a session, if any.
    pub fn last_snapshot(&self, ns_session: &str) -> Result<Option<Snapshot>> {
        Ok(self.list_snapshots(ns_session)?.pop())
    }

    /// Put this worktree back in the state recorded by `snapshot`, after recording the current state as a new
    /// snapshot in the same session namespace (returned, so the restore itself can be undone).
    ///
    /// Exactly: the current branch (or detached HEAD) is reset to `snapshot.base` with `git reset --hard`,
    /// untracked files are removed with `git clean -fd` (ignored files are kept), and for a snapshot with
    /// captured changes the files of the synthetic commit are written into the working tree only
    /// (`git restore --source=<sha> --worktree`). Afterwards HEAD and the index equal `base`, and the captured
    /// changes are uncommitted again: modified and deleted files unstaged, new files untracked (which of them were
    /// staged before is not preserved). Refused in the main checkout and while a rebase or merge is in progress.
    pub fn restore_snapshot(&self, snapshot: &Snapshot) -> Result<Snapshot> {
        self.ensure_linked_worktree("restore a snapshot")?;
        self.ensure_no_operation_in_progress("restore a snapshot")?;
        let ns = snapshot.namespace().ok_or_else(|| GitError::InvalidArgument {
            what: "snapshot ref",
            value: snapshot.refname.clone(),
            reason: format!("it is not under {SNAPSHOT_REF_PREFIX}<session>/"),
        })?;
        if self.resolve_commit(&snapshot.sha)?.is_none() || self.resolve_commit(&snapshot.base)?.is_none() {
            return Err(GitError::InvalidArgument {
                what: "snapshot",
                value: snapshot.refname.clone(),
                reason: "its commits are no longer in the repository".to_string(),
            });
        }
        let safety = self.create_snapshot(ns, &format!("before restoring snapshot {}", snapshot.n))?;
        self.run(&["reset", "--quiet", "--hard", snapshot.base.as_str()])?;
        self.run(&["clean", "-f", "-d", "--quiet"])?;
        if snapshot.captured_changes {
            let source = format!("--source={}", snapshot.sha);
            self.run(&["restore", source.as_str(), "--worktree", "--", "."])?;
        }
        Ok(safety)
    }

    /// Delete one snapshot ref (only if it still points at `snapshot.sha`).
    pub fn delete_snapshot(&self, snapshot: &Snapshot) -> Result<()> {
        self.delete_ref(&snapshot.refname, Some(&snapshot.sha))
    }

    /// Build the synthetic snapshot commit for the current working tree, with `head` as parent.
    fn capture_worktree(&self, head: &str, reason: &str) -> Result<String> {
        let git_dir = self.git_dir()?;
        let temp = TempIndex(git_dir.join(format!(
            "ampsm-snapshot-index-{}-{}",
            std::process::id(),
            TEMP_INDEX_COUNTER.fetch_add(1, Ordering::Relaxed)
        )));
        // Starting from a copy of the real index keeps its stat data, so unchanged files are not re-read.
        let real_index = git_dir.join("index");
        let copied = real_index.is_file() && copy_file(&real_index, &temp.0).is_ok();
        let index_env = |args: &[&str]| Invocation::new(args).env("GIT_INDEX_FILE", &temp.0);
        if !copied {
            self.run_inv(index_env(&["read-tree", head]))?;
        }
        self.run_inv(index_env(&["-c", "core.splitIndex=false", "-c", "core.fsmonitor=false", "add", "-A"]))?;
        let tree = self.run_inv(index_env(&["write-tree"]))?;
        let tree = tree.trim();
        let message = format!("amp-sessions snapshot: {reason}\n\n{BASE_TRAILER}: {head}\n");
        let mut inv =
            Invocation::new(&["commit-tree", tree, "-p", head, "-F", "-"]).stdin(message.as_bytes());
        for (k, v) in self.identity_env()? {
            inv = inv.env(k, v);
        }
        let sha = self.run_inv(inv)?;
        Ok(sha.trim().to_string())
    }

    /// One more than the highest snapshot number of the session (1 when there is none).
    fn next_snapshot_number(&self, ns_session: &str) -> Result<u64> {
        let prefix = format!("{SNAPSHOT_REF_PREFIX}{ns_session}/");
        let highest =
            self.refs_under(&prefix)?.iter().filter_map(|n| n.parse::<u64>().ok()).max().unwrap_or(0);
        Ok(highest + 1)
    }

    /// A namespace is one ref component (no `/`), valid for git.
    fn check_snapshot_namespace(&self, ns: &str) -> Result<()> {
        let invalid = |reason: &str| GitError::InvalidArgument {
            what: "snapshot namespace",
            value: ns.to_string(),
            reason: reason.to_string(),
        };
        if ns.is_empty() || ns.contains('/') || ns.starts_with('-') {
            return Err(invalid("it must be one non-empty ref name component without '/'"));
        }
        let full = format!("{SNAPSHOT_REF_PREFIX}{ns}/1");
        if !self.run_ok(&["check-ref-format", full.as_str()])?.success() {
            return Err(invalid("git does not accept it in a ref name"));
        }
        Ok(())
    }
}

/// The base commit of a synthetic snapshot: its single parent, when the message names that parent in the
/// `Ampsm-Snapshot-Base` trailer.
fn synthetic_base(parents: &[&str], message: &str) -> Option<String> {
    let [parent] = parents else {
        return None;
    };
    let expected = format!("{BASE_TRAILER}: {parent}");
    message.lines().any(|line| line.trim() == expected).then(|| parent.to_string())
}

/// The reason stored in a synthetic snapshot's subject.
fn snapshot_reason(message: &str) -> String {
    let subject = message.lines().next().unwrap_or("");
    subject.strip_prefix("amp-sessions snapshot: ").unwrap_or(subject).to_string()
}

/// Copy a file, mapping the error to [`GitError::Io`].
fn copy_file(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to).map(|_| ()).map_err(|source| GitError::Io {
        action: "could not copy the index to",
        path: to.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_synthetic_commits() {
        let msg = "amp-sessions snapshot: before squash\n\nAmpsm-Snapshot-Base: abc\n";
        assert_eq!(synthetic_base(&["abc"], msg).as_deref(), Some("abc"));
        assert_eq!(synthetic_base(&["def"], msg), None);
        assert_eq!(synthetic_base(&["abc", "def"], msg), None);
        assert_eq!(snapshot_reason(msg), "before squash");
    }
}

//! Review and merge operations: hard reset and squash in session worktrees, rebase with conflict reporting,
//! conflict-free previews with `git merge-tree`, compare-and-swap ref updates, merges into a clean checkout,
//! and remotes (push, fetch).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{GitError, Result};
use crate::exec::{Git, Invocation, reject_option_like};

/// How a rebase (or `rebase --continue`) ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "files")]
pub enum RebaseOutcome {
    /// All commits were replayed.
    Done,
    /// The rebase stopped on conflicts in these files; it is still in progress.
    Conflicts(Vec<String>),
}

/// How a merge into a checkout ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum MergeOutcome {
    /// The merge commit (or fast-forward target) HEAD now points to.
    Merged {
        /// The new HEAD.
        sha: String,
    },
    /// The merge had conflicts in these files and was aborted; the checkout is as before.
    Conflicts {
        /// Conflicting paths.
        files: Vec<String>,
    },
}

/// What merging would do, computed without touching any checkout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergePreview {
    /// True when the merge has no conflicts.
    pub clean: bool,
    /// The merged tree when clean (`None` when there are conflicts).
    pub tree: Option<String>,
    /// Paths with conflicts, each listed once.
    pub conflicts: Vec<String>,
}

impl Git {
    /// `git reset --hard <rev>`: moves the current branch and discards every uncommitted change to tracked
    /// files. Only for session worktrees (refused in the main checkout); take a snapshot first.
    pub fn reset_hard(&self, rev: &str) -> Result<()> {
        self.ensure_linked_worktree("reset --hard")?;
        reject_option_like("revision", rev)?;
        self.run(&["reset", "--quiet", "--hard", rev, "--"])?;
        Ok(())
    }

    /// Replace the commits since the branch forked from `base` by one commit with `message` (and trailers):
    /// `git reset --soft <merge-base>` then commit. Returns the new SHA, or `None` when there was nothing to
    /// squash (no commits since the fork point and nothing staged) — or when the commits cancel out, in which case
    /// the branch is left at the fork point. Uncommitted changes stay as they were: staged ones become part of the
    /// squashed commit, unstaged and untracked files are untouched. Session worktrees only; snapshot first.
    pub fn squash(&self, base: &str, message: &str, trailers: &[(&str, &str)]) -> Result<Option<String>> {
        self.ensure_linked_worktree("squash")?;
        self.ensure_no_operation_in_progress("squash")?;
        let base_sha = self.require_commit(base)?;
        let head = self.require_commit("HEAD")?;
        let fork = self.merge_base(&base_sha, &head)?.ok_or_else(|| GitError::InvalidArgument {
            what: "squash base",
            value: base.to_string(),
            reason: "it shares no history with HEAD".to_string(),
        })?;
        if fork == head && !self.has_staged_changes()? {
            return Ok(None);
        }
        if message.trim().is_empty() {
            return Err(GitError::InvalidArgument {
                what: "commit message",
                value: message.to_string(),
                reason: "it is empty".to_string(),
            });
        }
        self.run(&["reset", "--quiet", "--soft", fork.as_str()])?;
        self.commit(message, trailers, false)
    }

    /// Rebase the current branch onto `onto` (`git rebase --no-autostash --no-update-refs <onto>`).
    ///
    /// Refused in the main checkout. Git itself refuses when there are uncommitted changes. On conflicts the
    /// rebase stays in progress and the conflicting files are returned; resolve, stage, then
    /// [`Git::rebase_continue`], or [`Git::rebase_abort`].
    pub fn rebase(&self, onto: &str) -> Result<RebaseOutcome> {
        self.ensure_linked_worktree("rebase")?;
        self.ensure_no_operation_in_progress("rebase")?;
        reject_option_like("revision", onto)?;
        let args = ["rebase", "--no-autostash", "--no-update-refs", onto];
        let out = self.run_ok(&args)?;
        self.rebase_outcome(args.join(" "), &out)
    }

    /// Continue a stopped rebase after the conflicts were resolved and staged (`git rebase --continue`, with
    /// the commit messages kept as they are). Returns the next conflicts if another commit stops.
    pub fn rebase_continue(&self) -> Result<RebaseOutcome> {
        if !self.rebase_in_progress()? {
            return Err(GitError::InvalidArgument {
                what: "operation",
                value: "rebase --continue".to_string(),
                reason: format!("no rebase is in progress in {}", self.dir().display()),
            });
        }
        let args = ["rebase", "--continue"];
        let out = self.run_ok(&args)?;
        self.rebase_outcome(args.join(" "), &out)
    }

    /// Abandon a rebase in progress and put the branch back where it was (`git rebase --abort`).
    pub fn rebase_abort(&self) -> Result<()> {
        self.run(&["rebase", "--abort"])?;
        Ok(())
    }

    /// Interpret the end of `rebase` / `rebase --continue`.
    fn rebase_outcome(&self, command: String, out: &crate::exec::GitOutput) -> Result<RebaseOutcome> {
        if out.success() {
            return Ok(RebaseOutcome::Done);
        }
        if self.rebase_in_progress()? {
            let conflicts: Vec<String> = self.status()?.conflicts().into_iter().map(str::to_string).collect();
            if !conflicts.is_empty() {
                return Ok(RebaseOutcome::Conflicts(conflicts));
            }
        }
        Err(self.failed(command, out))
    }

    /// True when a rebase is stopped in this worktree (`rebase-merge` or `rebase-apply` exists in its git dir).
    pub fn rebase_in_progress(&self) -> Result<bool> {
        let args = [
            "rev-parse",
            "--path-format=absolute",
            "--git-path",
            "rebase-merge",
            "--git-path",
            "rebase-apply",
        ];
        let out = self.run(&args)?;
        Ok(out.lines().any(|p| PathBuf::from(p).exists()))
    }

    /// True when a merge is stopped in this checkout (`MERGE_HEAD` exists).
    pub fn merge_in_progress(&self) -> Result<bool> {
        Ok(self.resolve_commit("MERGE_HEAD")?.is_some())
    }

    /// Fail with [`GitError::OperationInProgress`] while a rebase or merge is stopped here.
    pub(crate) fn ensure_no_operation_in_progress(&self, operation: &'static str) -> Result<()> {
        let state = if self.rebase_in_progress()? {
            "a rebase"
        } else if self.merge_in_progress()? {
            "a merge"
        } else {
            return Ok(());
        };
        Err(GitError::OperationInProgress { operation, dir: self.dir().to_path_buf(), state })
    }

    /// The paths that differ between two trees (or commits), `git diff-tree -r --name-only -z`.
    pub fn changed_paths(&self, from: &str, to: &str) -> Result<Vec<String>> {
        reject_option_like("revision", from)?;
        reject_option_like("revision", to)?;
        let out = self.run(&["diff-tree", "-r", "--name-only", "-z", from, to])?;
        Ok(out.split('\0').filter(|p| !p.is_empty()).map(str::to_string).collect())
    }

    /// Preview merging `other` into `base` without touching any checkout or ref
    /// (`git merge-tree --write-tree --name-only --no-messages -z`, git ≥ 2.38; exit 1 means conflicts).
    pub fn merge_tree(&self, base: &str, other: &str) -> Result<MergePreview> {
        reject_option_like("revision", base)?;
        reject_option_like("revision", other)?;
        let args = ["merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", base, other];
        let out = self.run_ok(&args)?;
        let mut tokens = out.stdout.split('\0').filter(|t| !t.is_empty());
        match out.code {
            Some(0) => {
                let tree = tokens.next().ok_or_else(|| self.parse_error(&args, "no tree in output"))?;
                Ok(MergePreview { clean: true, tree: Some(tree.trim().to_string()), conflicts: Vec::new() })
            }
            // Exit 1 also covers "not something we can merge"; a conflicted merge always prints its tree.
            Some(1) if tokens.clone().next().is_some_and(is_object_id) => {
                let _tree = tokens.next();
                let mut conflicts: Vec<String> = Vec::new();
                for path in tokens {
                    if !conflicts.iter().any(|p| p == path) {
                        conflicts.push(path.to_string());
                    }
                }
                Ok(MergePreview { clean: false, tree: None, conflicts })
            }
            _ => Err(self.failed(args.join(" "), &out)),
        }
    }

    /// Set `refname` to `new`, but only if it currently equals `old_expected` (compare-and-swap through
    /// `git update-ref`). `Some("")` demands that the ref does not exist yet; `None` skips the check.
    pub fn update_ref(&self, refname: &str, new: &str, old_expected: Option<&str>) -> Result<()> {
        reject_option_like("ref name", refname)?;
        reject_option_like("revision", new)?;
        let mut args = vec!["update-ref", "-m", "amp-sessions", refname, new];
        if let Some(old) = old_expected {
            args.push(old);
        }
        self.run(&args)?;
        Ok(())
    }

    /// Delete `refname`, only if it equals `old_expected` when that is given (`git update-ref -d`).
    pub fn delete_ref(&self, refname: &str, old_expected: Option<&str>) -> Result<()> {
        reject_option_like("ref name", refname)?;
        let mut args = vec!["update-ref", "-m", "amp-sessions", "-d", refname];
        if let Some(old) = old_expected {
            args.push(old);
        }
        self.run(&args)?;
        Ok(())
    }

    /// Fail with [`GitError::Dirty`] when tracked files have changes, and refuse while a rebase or merge is
    /// stopped. Untracked files are allowed: git itself refuses to overwrite them.
    pub fn ensure_clean_for_merge(&self, operation: &'static str) -> Result<()> {
        self.ensure_no_operation_in_progress(operation)?;
        let status = self.status()?;
        if status.has_uncommitted() {
            return Err(GitError::Dirty {
                operation,
                dir: self.dir().to_path_buf(),
                detail: status.summary(5),
            });
        }
        Ok(())
    }

    /// Fast-forward the checked-out branch to `rev` (`git merge --ff-only`); fails without changing anything
    /// when that is not a fast-forward. Refused when tracked files have uncommitted changes. Returns the new HEAD.
    pub fn merge_ff_only(&self, rev: &str) -> Result<String> {
        reject_option_like("revision", rev)?;
        self.ensure_clean_for_merge("fast-forward merge")?;
        self.run(&["merge", "--ff-only", "--quiet", rev])?;
        self.require_commit("HEAD")
    }

    /// Merge `rev` into the checked-out branch with a merge commit (`git merge --no-ff -m <message>`).
    ///
    /// Refused when tracked files have uncommitted changes. On conflicts the merge is aborted at once
    /// (`git merge --abort`), so the checkout is left exactly as it was, and the conflicting paths are returned.
    pub fn merge_no_ff(&self, rev: &str, message: &str) -> Result<MergeOutcome> {
        reject_option_like("revision", rev)?;
        self.ensure_clean_for_merge("merge")?;
        let args = ["merge", "--no-ff", "--no-edit", "--quiet", "-m", message, rev];
        let mut inv = Invocation::new(&args);
        for (k, v) in self.identity_env()? {
            inv = inv.env(k, v);
        }
        let out = self.exec(inv)?;
        if out.success() {
            return Ok(MergeOutcome::Merged { sha: self.require_commit("HEAD")? });
        }
        if self.merge_in_progress()? {
            let files: Vec<String> = self.status()?.conflicts().into_iter().map(str::to_string).collect();
            self.run(&["merge", "--abort"])?;
            return Ok(MergeOutcome::Conflicts { files });
        }
        Err(self.failed(crate::exec::render_args(&args.map(std::ffi::OsString::from)), &out))
    }

    /// Push the local branch to the same name on `remote` (`git push <remote> refs/heads/B:refs/heads/B`).
    /// Never forces.
    pub fn push(&self, remote: &str, branch: &str) -> Result<()> {
        reject_option_like("remote", remote)?;
        reject_option_like("branch name", branch)?;
        let refspec = format!("refs/heads/{branch}:refs/heads/{branch}");
        self.run(&["push", "--quiet", remote, refspec.as_str()])?;
        Ok(())
    }

    /// Names of the configured remotes.
    pub fn remotes(&self) -> Result<Vec<String>> {
        let out = self.run(&["remote"])?;
        Ok(out.lines().filter(|l| !l.is_empty()).map(str::to_string).collect())
    }

    /// Fetch from `remote` (`git fetch --quiet <remote>`).
    pub fn fetch(&self, remote: &str) -> Result<()> {
        reject_option_like("remote", remote)?;
        self.run(&["fetch", "--quiet", remote])?;
        Ok(())
    }
}

/// True for a full hexadecimal object id (SHA-1 or SHA-256).
fn is_object_id(text: &str) -> bool {
    matches!(text.len(), 40 | 64) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

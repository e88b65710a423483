//! `clean-environment [--yes]`: finds what sessions left behind and, only with `--yes`, removes it, always
//! reporting first and never losing work:
//! - orphaned worktrees under the worktree root that belong to no live session (one with uncommitted or
//!   untracked files is snapshotted before `git worktree remove --force`; a folder that is not a worktree is only
//!   removed when empty);
//! - session branches (`git.branch_prefix*`) of known repositories with no live session (commits that no other
//!   ref keeps alive are saved under a snapshot ref before the branch is deleted);
//! - live sessions whose worktree vanished (removed like `rm --force`, which snapshots unmerged work; when the
//!   repository itself is gone the row is only marked removed);
//! - lock files in `~/.ampsm/locks` that no process holds.

use crate::{Engine, EngineError};
use ampsm_git::{Git, RepoLock};
use ampsm_store::{Session, SessionFilter};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// One thing found.
#[derive(Debug, Clone, Serialize)]
pub struct CleanupItem {
    /// `orphaned-worktree`, `orphaned-branch`, `vanished-worktree`, `missing-repository` or `stale-lock`.
    pub kind: &'static str,
    pub target: String,
    pub repo: Option<String>,
    pub detail: String,
    /// What is (or would be) done.
    pub action: String,
    /// True when the action was carried out (never in a dry run).
    pub done: bool,
    /// The snapshot ref saved first, if any.
    pub snapshot: Option<String>,
    /// Why it is left alone, when it is.
    pub skipped: Option<String>,
}

/// What `clean-environment` found and did.
#[derive(Debug, Clone, Serialize)]
pub struct CleanupReport {
    pub dry_run: bool,
    pub items: Vec<CleanupItem>,
}

impl Engine {
    /// Scans (and with `apply`, cleans) the environment; see the module docs.
    pub fn clean_environment(&mut self, apply: bool) -> Result<CleanupReport, EngineError> {
        let mut items = Vec::new();
        let all = self.store.list_sessions(&SessionFilter { include_removed: true, ..Default::default() })?;
        let live: Vec<&Session> = all.iter().filter(|s| s.removed_at.is_none()).collect();
        let live_worktrees: BTreeSet<PathBuf> =
            live.iter().map(|s| normalize(Path::new(&s.worktree_path))).collect();
        let repos: BTreeSet<String> =
            all.iter().map(|s| s.repo_path.clone()).filter(|r| Path::new(r).exists()).collect();

        // 1. Orphaned worktrees.
        let root = self.config.worktree_root(&self.paths);
        for dir in worktree_dirs(&root) {
            if live_worktrees.contains(&normalize(&dir)) {
                continue;
            }
            let owner =
                all.iter().find(|s| normalize(Path::new(&s.worktree_path)) == normalize(&dir)).cloned();
            let item = self.orphan_worktree(&dir, owner.as_ref(), apply)?;
            items.push(item);
        }

        // 2. Live sessions whose worktree vanished.
        let vanished: Vec<Session> = live
            .iter()
            .filter(|s| !Path::new(&s.worktree_path).join(".git").exists())
            .map(|s| (*s).clone())
            .collect();
        for s in vanished {
            items.push(self.vanished_session(&s, apply)?);
        }

        // 3. Session branches with no live session.
        let live_now = self.store.list_sessions(&SessionFilter::default())?;
        let prefix = self.config.git.branch_prefix.clone();
        for repo_path in &repos {
            let repo = Git::new(repo_path);
            let Ok(branches) = repo.branches() else { continue };
            for branch in branches.into_iter().filter(|b| !prefix.is_empty() && b.starts_with(&prefix)) {
                if live_now.iter().any(|s| &s.repo_path == repo_path && s.branch == branch) {
                    continue;
                }
                let owner = all.iter().find(|s| &s.repo_path == repo_path && s.branch == branch).cloned();
                items.push(self.orphan_branch(&repo, repo_path, &branch, owner.as_ref(), apply)?);
            }
        }

        // 4. Lock files nobody holds.
        if let Ok(entries) = std::fs::read_dir(&self.paths.locks) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_none_or(|e| e != "lock") || RepoLock::is_held(&path) {
                    continue;
                }
                let done = apply && RepoLock::remove_if_unused(&path)?;
                items.push(CleanupItem {
                    kind: "stale-lock",
                    target: path.display().to_string(),
                    repo: None,
                    detail: "no amp-sessions process holds it".into(),
                    action: "delete the lock file".into(),
                    done,
                    snapshot: None,
                    skipped: None,
                });
            }
        }
        Ok(CleanupReport { dry_run: !apply, items })
    }

    fn orphan_worktree(
        &mut self,
        dir: &Path,
        owner: Option<&Session>,
        apply: bool,
    ) -> Result<CleanupItem, EngineError> {
        let mut item = CleanupItem {
            kind: "orphaned-worktree",
            target: dir.display().to_string(),
            repo: None,
            detail: match owner {
                Some(s) => format!("left by removed session {} ({})", s.name, s.id.short()),
                None => "belongs to no session".into(),
            },
            action: String::new(),
            done: false,
            snapshot: None,
            skipped: None,
        };
        if !dir.join(".git").exists() {
            let empty = std::fs::read_dir(dir).map(|mut d| d.next().is_none()).unwrap_or(false);
            if empty {
                item.action = "remove the empty folder".into();
                if apply {
                    std::fs::remove_dir(dir)
                        .map_err(|source| EngineError::Io { path: dir.to_path_buf(), source })?;
                    item.done = true;
                }
            } else {
                item.action = "none".into();
                item.skipped =
                    Some("not a git worktree and not empty; look at it and remove it yourself".into());
            }
            return Ok(item);
        }
        let wt = Git::new(dir);
        let repo_root = match wt.repo_root() {
            Ok(r) => r,
            Err(e) => {
                item.action = "none".into();
                item.skipped = Some(format!("its repository cannot be read ({e})"));
                return Ok(item);
            }
        };
        item.repo = Some(repo_root.display().to_string());
        let status = wt.status()?;
        let dirty = !status.is_clean();
        item.action = if dirty {
            format!("snapshot its uncommitted files ({}), then remove the worktree", status.summary(3))
        } else {
            "remove the worktree (it has no uncommitted files)".into()
        };
        if !apply {
            return Ok(item);
        }
        let _lock = RepoLock::acquire(&self.paths.locks, &repo_root, crate::sessions::LOCK_TIMEOUT)?;
        if dirty || wt.head_branch()?.is_none() {
            let ns = match owner {
                Some(s) => s.id.to_string(),
                None => format!(
                    "orphan-{}",
                    ampsm_core::slugify(&dir.file_name().unwrap_or_default().to_string_lossy())
                ),
            };
            let snap = wt.create_snapshot(&ns, "clean-environment: orphaned worktree")?;
            if let Some(s) = owner {
                self.store.insert_snapshot(
                    &s.id,
                    snap.n as i64,
                    &snap.refname,
                    &snap.sha,
                    &s.branch,
                    "clean-environment: orphaned worktree",
                )?;
            }
            item.snapshot = Some(snap.refname);
        }
        Git::new(&repo_root).worktree_remove(dir, true)?;
        item.done = true;
        Ok(item)
    }

    fn vanished_session(&mut self, s: &Session, apply: bool) -> Result<CleanupItem, EngineError> {
        let repo_exists = Path::new(&s.repo_path).join(".git").exists() || Path::new(&s.repo_path).is_dir();
        let mut item = CleanupItem {
            kind: if repo_exists { "vanished-worktree" } else { "missing-repository" },
            target: format!("session {} ({})", s.name, s.id.short()),
            repo: Some(s.repo_path.clone()),
            detail: if repo_exists {
                format!("its worktree {} is gone", s.worktree_path)
            } else {
                format!("its repository {} is gone", s.repo_path)
            },
            action: if repo_exists {
                "snapshot unmerged commits, delete the branch and mark the session removed (undo brings it back)".into()
            } else {
                "mark the session removed".into()
            },
            done: false,
            snapshot: None,
            skipped: None,
        };
        if s.status == ampsm_core::SessionStatus::Running
            && s.runner_pid.is_some_and(crate::process::pid_alive)
        {
            item.action = "none".into();
            item.skipped = Some("an iteration is running for it".into());
            return Ok(item);
        }
        if !apply {
            return Ok(item);
        }
        if repo_exists {
            let out = self.remove_session(s.id.as_str(), true, false)?;
            item.snapshot = out.snapshot.map(|r| r.refname);
        } else {
            self.store.mark_removed(&s.id)?;
        }
        item.done = true;
        Ok(item)
    }

    fn orphan_branch(
        &mut self,
        repo: &Git,
        repo_path: &str,
        branch: &str,
        owner: Option<&Session>,
        apply: bool,
    ) -> Result<CleanupItem, EngineError> {
        let full = format!("refs/heads/{branch}");
        let unique = repo.commits_only_on(&full)?;
        let checked_out =
            repo.worktree_list()?.into_iter().find(|w| w.branch.as_deref() == Some(branch)).map(|w| w.path);
        let mut item = CleanupItem {
            kind: "orphaned-branch",
            target: branch.to_string(),
            repo: Some(repo_path.to_string()),
            detail: match owner {
                Some(s) => format!(
                    "branch of removed session {} ({}); {unique} commit(s) only on it",
                    s.name,
                    s.id.short()
                ),
                None => format!("no session uses it; {unique} commit(s) only on it"),
            },
            action: if unique > 0 {
                "save its head under a snapshot ref, then delete the branch".into()
            } else {
                "delete the branch (every commit is on another ref)".into()
            },
            done: false,
            snapshot: None,
            skipped: None,
        };
        if let Some(path) = checked_out {
            let orphan_root = self.config.worktree_root(&self.paths);
            // In a dry run an orphaned worktree still holds it; that worktree is listed above.
            if apply || !path.starts_with(&orphan_root) {
                item.action = "none".into();
                item.skipped = Some(format!("it is checked out in {}", path.display()));
                return Ok(item);
            }
        }
        if !apply {
            return Ok(item);
        }
        let _lock =
            RepoLock::acquire(&self.paths.locks, Path::new(repo_path), crate::sessions::LOCK_TIMEOUT)?;
        if unique > 0 {
            let refname = match owner {
                Some(s) => self.take_snapshot(s, &format!("clean-environment: branch {branch}"))?.refname,
                None => {
                    let ns = format!("branch-{}", ampsm_core::slugify(branch));
                    let n = repo.list_snapshots(&ns)?.last().map(|s| s.n).unwrap_or(0) + 1;
                    let refname = format!("{}{ns}/{n}", ampsm_git::SNAPSHOT_REF_PREFIX);
                    let sha = repo.require_commit(&full)?;
                    repo.update_ref(&refname, &sha, Some(""))?;
                    refname
                }
            };
            item.snapshot = Some(refname);
        }
        repo.delete_branch(branch, true)?;
        item.done = true;
        Ok(item)
    }
}

/// Folders two levels under the worktree root (`<root>/<repo>/<session>`).
fn worktree_dirs(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(repos) = std::fs::read_dir(root) else { return out };
    for repo in repos.flatten() {
        if !repo.path().is_dir() {
            continue;
        }
        if let Ok(dirs) = std::fs::read_dir(repo.path()) {
            for d in dirs.flatten() {
                if d.path().is_dir() {
                    out.push(d.path());
                }
            }
        }
    }
    out.sort();
    out
}

/// A path made comparable: canonical when it exists.
fn normalize(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

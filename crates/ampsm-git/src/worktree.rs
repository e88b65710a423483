//! Linked worktrees: create one per session (`git worktree add -b`), list, remove, prune, and delete branches.
//! Creating a worktree never touches the main checkout's HEAD, index, files or stash.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::exec::{Git, reject_option_like};

/// One entry of `git worktree list --porcelain -z`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorktreeInfo {
    /// Absolute path of the worktree (for a bare repository: the repository itself).
    pub path: PathBuf,
    /// The commit checked out, `None` for a bare repository or an unborn branch.
    pub head: Option<String>,
    /// The branch checked out (short name), `None` when detached or bare.
    pub branch: Option<String>,
    /// True for the entry of a bare repository.
    pub bare: bool,
    /// True when HEAD is detached.
    pub detached: bool,
    /// True when the worktree is locked (`git worktree lock`).
    pub locked: bool,
    /// Why it is locked, when a reason was given.
    pub lock_reason: Option<String>,
    /// True when git considers it prunable (its directory is gone).
    pub prunable: bool,
}

impl Git {
    /// Create a new linked worktree at `path` on a new branch `branch` starting at `base`
    /// (`git worktree add --no-track -b <branch> <path> <base>`).
    ///
    /// Run it on a handle for the repository root. The branch must not exist yet; the new branch does not track
    /// `base` even when `base` is a remote-tracking branch. A relative `path` is taken relative to this handle's
    /// directory. The main checkout's HEAD, index, working tree and stash are left alone.
    pub fn worktree_add(&self, branch: &str, path: &Path, base: &str) -> Result<()> {
        self.ensure_branch_name(branch)?;
        reject_option_like("base revision", base)?;
        let path = self.absolute(path);
        let args: Vec<OsString> = vec![
            "worktree".into(),
            "add".into(),
            "--quiet".into(),
            "--no-track".into(),
            "-b".into(),
            branch.into(),
            path.into_os_string(),
            base.into(),
        ];
        self.run(&args)?;
        Ok(())
    }

    /// Remove the linked worktree at `path` (`git worktree remove [--force] <path>`).
    ///
    /// Without `force` git refuses when the worktree has modified or untracked files; with `force` those are
    /// deleted, so callers must take a snapshot first. Locked worktrees are never removed. The branch is kept.
    pub fn worktree_remove(&self, path: &Path, force: bool) -> Result<()> {
        let path = self.absolute(path);
        let mut args: Vec<OsString> = vec!["worktree".into(), "remove".into()];
        if force {
            args.push("--force".into());
        }
        args.push(path.into_os_string());
        self.run(&args)?;
        Ok(())
    }

    /// All worktrees of the repository, the main one first (`git worktree list --porcelain -z`).
    pub fn worktree_list(&self) -> Result<Vec<WorktreeInfo>> {
        let out = self.run(&["worktree", "list", "--porcelain", "-z"])?;
        Ok(parse_worktree_list(&out))
    }

    /// Forget worktrees whose directories no longer exist (`git worktree prune`).
    pub fn worktree_prune(&self) -> Result<()> {
        self.run(&["worktree", "prune"])?;
        Ok(())
    }

    /// Delete the local branch `name`: `git branch -d` refuses unmerged work, `force` (`-D`) does not, so callers
    /// must snapshot the branch first. Fails when the branch is checked out in any worktree.
    pub fn delete_branch(&self, name: &str, force: bool) -> Result<()> {
        reject_option_like("branch name", name)?;
        let flag = if force { "-D" } else { "-d" };
        self.run(&["branch", flag, "--", name])?;
        Ok(())
    }

    /// `path` made absolute against this handle's directory.
    pub(crate) fn absolute(&self, path: &Path) -> PathBuf {
        if path.is_absolute() { path.to_path_buf() } else { self.dir().join(path) }
    }
}

/// Parse NUL-separated porcelain records: attribute fields end with NUL, an empty field ends a record.
pub(crate) fn parse_worktree_list(text: &str) -> Vec<WorktreeInfo> {
    let mut list = Vec::new();
    let mut current: Option<WorktreeInfo> = None;
    for field in text.split('\0') {
        if field.is_empty() {
            if let Some(done) = current.take() {
                list.push(done);
            }
            continue;
        }
        let (key, value) = match field.split_once(' ') {
            Some((k, v)) => (k, Some(v)),
            None => (field, None),
        };
        if key == "worktree" {
            if let Some(done) = current.take() {
                list.push(done);
            }
            current = Some(WorktreeInfo {
                path: PathBuf::from(value.unwrap_or_default()),
                head: None,
                branch: None,
                bare: false,
                detached: false,
                locked: false,
                lock_reason: None,
                prunable: false,
            });
            continue;
        }
        let Some(entry) = current.as_mut() else {
            continue;
        };
        match key {
            "HEAD" => {
                entry.head = value.filter(|v| !v.chars().all(|c| c == '0')).map(str::to_string);
            }
            "branch" => {
                entry.branch = value.map(|v| v.strip_prefix("refs/heads/").unwrap_or(v).to_string());
            }
            "bare" => entry.bare = true,
            "detached" => entry.detached = true,
            "locked" => {
                entry.locked = true;
                entry.lock_reason = value.filter(|v| !v.is_empty()).map(str::to_string);
            }
            "prunable" => entry.prunable = true,
            _ => {}
        }
    }
    if let Some(done) = current {
        list.push(done);
    }
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_porcelain_records() {
        let text = "worktree /r\0HEAD 1111\0branch refs/heads/main\0\0\
                    worktree /w/a b\0HEAD 2222\0detached\0locked moving it\0\0\
                    worktree /w/gone\0HEAD 3333\0branch refs/heads/s/x\0prunable gitdir file points to non-existent location\0\0";
        let list = parse_worktree_list(text);
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].path, PathBuf::from("/r"));
        assert_eq!(list[0].branch.as_deref(), Some("main"));
        assert_eq!(list[1].path, PathBuf::from("/w/a b"));
        assert!(list[1].detached && list[1].locked && list[1].branch.is_none());
        assert_eq!(list[1].lock_reason.as_deref(), Some("moving it"));
        assert_eq!(list[2].branch.as_deref(), Some("s/x"));
        assert!(list[2].prunable && !list[2].locked);
    }
}

//! Plumbing for building results without touching any checkout: trees of commits, `commit-tree`, upstreams,
//! commits that only one ref keeps alive, and worktrees on existing branches (used when bringing a removed
//! session back).

use std::ffi::OsString;
use std::path::Path;

use crate::error::Result;
use crate::exec::{Git, Invocation, reject_option_like};

impl Git {
    /// The tree of a commit (`git rev-parse <rev>^{tree}`).
    pub fn tree_of(&self, rev: &str) -> Result<String> {
        reject_option_like("revision", rev)?;
        let spec = format!("{rev}^{{tree}}");
        Ok(self.run(&["rev-parse", "--verify", spec.as_str()])?.trim().to_string())
    }

    /// Make a commit object from `tree` with these parents and `message` (given on stdin), without moving any
    /// ref or touching any index or file (`git commit-tree`). Uses the configured identity, or the fallback
    /// identity of [`Git::commit`]. Returns the new SHA.
    pub fn commit_tree(&self, tree: &str, parents: &[&str], message: &str) -> Result<String> {
        reject_option_like("tree", tree)?;
        let mut args: Vec<OsString> = vec!["commit-tree".into(), tree.into()];
        for parent in parents {
            reject_option_like("revision", parent)?;
            args.push("-p".into());
            args.push((*parent).into());
        }
        args.push("-F".into());
        args.push("-".into());
        let mut body = message.trim_end().to_string();
        body.push('\n');
        let mut inv = Invocation::new(&args).stdin(body.as_bytes());
        for (k, v) in self.identity_env()? {
            inv = inv.env(k, v);
        }
        Ok(self.run_inv(inv)?.trim().to_string())
    }

    /// The upstream of a local branch as a short name such as `origin/main`
    /// (`git rev-parse --abbrev-ref <branch>@{upstream}`), or `None` when none is configured.
    pub fn upstream_of(&self, branch: &str) -> Result<Option<String>> {
        reject_option_like("branch name", branch)?;
        let spec = format!("{branch}@{{upstream}}");
        let out = self.run_ok(&["rev-parse", "--abbrev-ref", "--symbolic-full-name", spec.as_str()])?;
        let name = out.stdout.trim();
        Ok((out.success() && !name.is_empty()).then(|| name.to_string()))
    }

    /// True when `name` is a remote-tracking branch (`refs/remotes/<name>` exists).
    pub fn is_remote_branch(&self, name: &str) -> Result<bool> {
        if name.is_empty() || name.starts_with('-') {
            return Ok(false);
        }
        let full = format!("refs/remotes/{name}");
        Ok(self.run_ok(&["show-ref", "--verify", "--quiet", full.as_str()])?.success())
    }

    /// How many commits reachable from `refname` (a full ref name) are reachable from no other ref
    /// (`git rev-list --count <ref> --not --exclude=<ref> --all`). Snapshot refs count as other refs, and so do
    /// the HEADs of all worktrees (`--all` includes them): a branch checked out somewhere keeps its commits alive
    /// through that worktree's HEAD, so remove the worktree before relying on this count.
    pub fn commits_only_on(&self, refname: &str) -> Result<u64> {
        reject_option_like("ref name", refname)?;
        let exclude = format!("--exclude={refname}");
        let args = ["rev-list", "--count", refname, "--not", exclude.as_str(), "--all"];
        let out = self.run(&args)?;
        out.trim().parse().map_err(|_| self.parse_error(&args, format!("not a number: {:?}", out.trim())))
    }

    /// Add a linked worktree at `path` for the existing local branch `branch` (`git worktree add <path>
    /// <branch>`). Fails when the branch is checked out elsewhere or `path` exists and is not empty.
    pub fn worktree_add_existing(&self, branch: &str, path: &Path) -> Result<()> {
        reject_option_like("branch name", branch)?;
        let path = self.absolute(path);
        let args: Vec<OsString> =
            vec!["worktree".into(), "add".into(), "--quiet".into(), path.into_os_string(), branch.into()];
        self.run(&args)?;
        Ok(())
    }
}

//! Patches between commits and onto worktrees: the whole change from one commit to another as `git diff
//! --binary` bytes (with some paths left out), and applying a patch file with a three-way fallback. The
//! benchmark runner takes a model's patch and applies it, and the hidden tests, in its evaluation trees.

use std::ffi::OsStr;
use std::path::Path;

use crate::error::Result;
use crate::exec::{Git, Invocation, reject_option_like};

/// What [`Git::apply_patch_file`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatchApply {
    /// The patch is applied to the worktree.
    Applied,
    /// Neither a plain nor a three-way apply took it: git's first lines of stderr. The worktree is back at
    /// HEAD.
    Rejected(String),
}

/// How many lines of git's stderr a rejection quotes.
const REJECT_LINES: usize = 4;

impl Git {
    /// The change from `base` to `head` over the whole tree as `git diff --binary --full-index` bytes (no
    /// color, external diff, text conversion or rename detection), leaving out the `excluded` paths (taken
    /// literally, from the top of the repository).
    pub fn diff_binary(&self, base: &str, head: &str, excluded: &[String]) -> Result<Vec<u8>> {
        reject_option_like("revision", base)?;
        reject_option_like("revision", head)?;
        let mut args: Vec<String> = [
            "diff",
            "--binary",
            "--full-index",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "--no-renames",
            base,
            head,
            "--",
            ":/",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        args.extend(excluded.iter().map(|p| format!(":(top,exclude,literal){p}")));
        self.run_bytes(Invocation::new(&args))
    }

    /// Applies the patch in `patch_file` to this worktree: `git apply`, then `git apply --3way`. A failed
    /// attempt may leave conflict markers, so the worktree is put back to HEAD (tracked files restored,
    /// untracked ones removed) after each one.
    pub fn apply_patch_file(&self, patch_file: &Path) -> Result<PatchApply> {
        let mut last = String::new();
        for extra in [&[][..], &["--3way"][..]] {
            let mut args: Vec<&OsStr> = vec![OsStr::new("apply"), OsStr::new("--whitespace=nowarn")];
            args.extend(extra.iter().map(OsStr::new));
            args.push(patch_file.as_os_str());
            let out = self.run_ok(&args)?;
            if out.success() {
                return Ok(PatchApply::Applied);
            }
            last = out.stderr.lines().take(REJECT_LINES).collect::<Vec<_>>().join(" | ");
            let _ = self.run_ok(&["checkout", "--force", "HEAD", "--", "."]);
            let _ = self.run_ok(&["clean", "-fdq"]);
        }
        Ok(PatchApply::Rejected(last))
    }
}

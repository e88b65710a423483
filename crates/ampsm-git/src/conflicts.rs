//! What a merge that would conflict looks like, without touching any checkout: the tree `git merge-tree`
//! writes even when it conflicts (its conflicting files hold the conflict markers), and the contents of a
//! file in a tree, bounded, for reading those markers.

use crate::Result;
use crate::exec::{Git, Invocation, reject_option_like};

/// A conflicting merge as `git merge-tree` wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictedMerge {
    /// The tree with the merged files; the conflicting ones hold conflict markers.
    pub tree: String,
    /// The conflicting paths, each once.
    pub paths: Vec<String>,
}

impl Git {
    /// Merges `other` into `base` in memory (`git merge-tree --write-tree`, git ≥ 2.38) and returns the
    /// written tree and the conflicting paths when there are conflicts; `None` when the merge is clean.
    /// The conflict markers are labelled with `base` and `other` as given (pass branch names for readable
    /// labels).
    pub fn merge_tree_conflicted(&self, base: &str, other: &str) -> Result<Option<ConflictedMerge>> {
        reject_option_like("revision", base)?;
        reject_option_like("revision", other)?;
        let args = ["merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", base, other];
        let out = self.run_ok(&args)?;
        if out.code == Some(0) {
            return Ok(None);
        }
        let mut tokens = out.stdout.split('\0').filter(|t| !t.is_empty());
        match (out.code, tokens.next()) {
            (Some(1), Some(tree)) if is_hex_id(tree.trim()) => {
                let mut paths: Vec<String> = Vec::new();
                for p in tokens {
                    if !paths.iter().any(|q| q == p) {
                        paths.push(p.to_string());
                    }
                }
                Ok(Some(ConflictedMerge { tree: tree.trim().to_string(), paths }))
            }
            _ => Err(self.failed(args.join(" "), &out)),
        }
    }

    /// The contents of `path` in `tree` (`git cat-file blob <tree>:<path>`), or `None` when it is not there
    /// or is larger than `max_bytes` (its size is checked first).
    pub fn blob_in_tree(&self, tree: &str, path: &str, max_bytes: u64) -> Result<Option<Vec<u8>>> {
        reject_option_like("revision", tree)?;
        let spec = format!("{tree}:{path}");
        let size = self.run_ok(&["cat-file", "-s", spec.as_str()])?;
        let Some(n) = size.stdout.trim().parse::<u64>().ok().filter(|_| size.code == Some(0)) else {
            return Ok(None);
        };
        if n > max_bytes {
            return Ok(None);
        }
        self.run_bytes(Invocation::new(&["cat-file", "blob", spec.as_str()])).map(Some)
    }
}

fn is_hex_id(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

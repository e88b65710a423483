//! The conflicts of a rebase or merge stopped in a session's worktree, read from the files themselves: for
//! each conflicting file, its conflict hunks (the text between `<<<<<<<`, `|||||||`, `=======` and
//! `>>>>>>>` markers) with line numbers, each side's label, and the steps that finish or abandon the
//! operation. Bounded: large files, many hunks and long sides are cut, and say so.

use crate::review::label;
use crate::{Engine, EngineError};
use serde::Serialize;
use std::path::Path;

/// Files larger than this are not read (their hunks are not shown; the file is still named).
const MAX_FILE_BYTES: u64 = 2 * 1024 * 1024;
/// At most this many hunks per file.
const MAX_HUNKS: usize = 50;
/// At most this many lines per side of a hunk.
const MAX_SIDE_LINES: usize = 200;
/// Lines of context shown before and after each hunk.
const CONTEXT: usize = 3;

/// One side of a conflict hunk.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ConflictSide {
    /// The marker's label (`HEAD`, a commit and its subject, a branch).
    pub label: String,
    /// The line number in the worktree file of the side's first line.
    pub start_line: usize,
    pub lines: Vec<String>,
    /// More lines than shown.
    pub truncated: bool,
}

/// One `<<<<<<< … >>>>>>>` region.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ConflictHunk {
    /// The line of `<<<<<<<` in the worktree file (1-based).
    pub start_line: usize,
    /// The line of `>>>>>>>`.
    pub end_line: usize,
    /// Lines before the hunk (up to 3).
    pub before: Vec<String>,
    /// Lines after the hunk (up to 3).
    pub after: Vec<String>,
    /// The side checked out when the operation stopped (during a rebase: the base with the commits replayed
    /// so far).
    pub ours: ConflictSide,
    /// The common ancestor, when the file was written with `merge.conflictStyle=diff3`.
    pub base: Option<ConflictSide>,
    /// The side being applied (during a rebase: the session's commit).
    pub theirs: ConflictSide,
}

/// A conflicting file and its hunks.
#[derive(Debug, Clone, Serialize)]
pub struct ConflictFile {
    pub path: String,
    pub hunks: Vec<ConflictHunk>,
    /// Why hunks are missing or cut (too large, not a text file, deleted on one side, …).
    pub note: Option<String>,
}

/// What `conflicts` found.
#[derive(Debug, Clone, Serialize)]
pub struct ConflictReport {
    pub session_id: String,
    pub worktree: String,
    /// `rebase`, `merge`, or None when nothing is stopped.
    pub operation: Option<&'static str>,
    pub files: Vec<ConflictFile>,
    /// What to do next, in order.
    pub next_steps: Vec<String>,
}

impl Engine {
    /// The conflicts of a rebase or merge stopped in the session's worktree, with their hunks.
    pub fn review_conflicts(&self, reference: &str) -> Result<ConflictReport, EngineError> {
        let s = self.live_session(reference)?;
        let wt = self.session_worktree(&s)?;
        let operation = if wt.rebase_in_progress()? {
            Some("rebase")
        } else if wt.merge_in_progress()? {
            Some("merge")
        } else {
            None
        };
        let st = wt.status()?;
        let root = Path::new(&s.worktree_path);
        let files: Vec<ConflictFile> = st.conflicts().into_iter().map(|p| conflict_file(root, p)).collect();
        let short = s.id.short();
        let mut next_steps = Vec::new();
        if !files.is_empty() {
            next_steps.push(format!(
                "Edit each file in {} to keep the right text and delete the conflict markers",
                s.worktree_path
            ));
            next_steps.push(format!("Stage the resolved files (`amp-sessions stage {short} <path>`)"));
        }
        match operation {
            Some("rebase") => {
                next_steps.push(format!("Continue the rebase (`amp-sessions rebase {short} --continue`)"));
                next_steps.push(format!(
                    "Or abort it to put {} back as it was (`amp-sessions rebase {short} --abort`)",
                    label(&s)
                ));
            }
            Some(_) => next_steps.push("Commit the resolution to finish the merge".to_string()),
            None => {}
        }
        Ok(ConflictReport {
            session_id: s.id.to_string(),
            worktree: s.worktree_path.clone(),
            operation,
            files,
            next_steps,
        })
    }
}

impl Engine {
    /// The conflicts merging the session into its base would have, as `git merge-tree` writes them (no
    /// checkout or ref is touched), with their hunks: ours is the base branch, theirs the session branch.
    pub fn merge_conflicts(&self, reference: &str) -> Result<ConflictReport, EngineError> {
        let s = self.live_session(reference)?;
        let repo = ampsm_git::Git::new(&s.repo_path);
        let merged = repo.merge_tree_conflicted(&s.base_branch, &s.branch)?;
        let files: Vec<ConflictFile> = match &merged {
            Some(m) => m
                .paths
                .iter()
                .map(|p| match repo.blob_in_tree(&m.tree, p, MAX_FILE_BYTES) {
                    Ok(Some(b)) => from_bytes(p, &b),
                    Ok(None) => ConflictFile {
                        path: p.clone(),
                        hunks: Vec::new(),
                        note: Some(
                            "deleted on one side, or over 2 MiB: rebase to resolve it in the worktree".into(),
                        ),
                    },
                    Err(e) => ConflictFile { path: p.clone(), hunks: Vec::new(), note: Some(e.to_string()) },
                })
                .collect(),
            None => Vec::new(),
        };
        let short = s.id.short();
        let next_steps = if files.is_empty() {
            Vec::new()
        } else {
            vec![
                format!(
                    "Rebase the session onto {} (`amp-sessions rebase {short}`): it stops at each conflict so you can resolve it in the worktree",
                    s.base_branch
                ),
                "Resolve, stage and continue the rebase, then merge again".to_string(),
            ]
        };
        Ok(ConflictReport {
            session_id: s.id.to_string(),
            worktree: s.worktree_path.clone(),
            operation: merged.as_ref().map(|_| "merge-preview"),
            files,
            next_steps,
        })
    }
}

/// Reads one conflicting file (bounded) and finds its hunks.
fn conflict_file(root: &Path, path: &str) -> ConflictFile {
    let full = root.join(path);
    let note =
        |n: &str| ConflictFile { path: path.to_string(), hunks: Vec::new(), note: Some(n.to_string()) };
    let meta = match std::fs::symlink_metadata(&full) {
        Ok(m) => m,
        Err(_) => {
            return note(
                "the file is not in the worktree (deleted on one side): keep or remove it, then stage",
            );
        }
    };
    if !meta.is_file() {
        return note("not a regular file; resolve it in the worktree");
    }
    if meta.len() > MAX_FILE_BYTES {
        return note("the file is over 2 MiB; open it in the worktree to see its conflicts");
    }
    match std::fs::read(&full) {
        Ok(b) => from_bytes(path, &b),
        Err(e) => note(&format!("could not read it: {e}")),
    }
}

/// A conflicting file from its contents.
fn from_bytes(path: &str, bytes: &[u8]) -> ConflictFile {
    if bytes.contains(&0) {
        let n = "a binary file: pick one side in the worktree (git checkout --ours/--theirs), then stage";
        return ConflictFile { path: path.to_string(), hunks: Vec::new(), note: Some(n.to_string()) };
    }
    let text = String::from_utf8_lossy(bytes);
    let (hunks, more) = parse_conflicts(&text);
    let note = if hunks.is_empty() {
        Some("no conflict markers left in the file: stage it when it is right".to_string())
    } else if more {
        Some(format!("only the first {MAX_HUNKS} conflicts are shown"))
    } else {
        None
    };
    ConflictFile { path: path.to_string(), hunks, note }
}

/// Which part of a hunk the parser is in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Ours,
    Base,
    Theirs,
}

/// The text after a 7-character marker (`<<<<<<< HEAD` → `HEAD`), when `line` is that marker.
fn marker<'a>(line: &'a str, m: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(m)?;
    if rest.is_empty() {
        return Some("");
    }
    rest.strip_prefix(' ').map(str::trim_end)
}

/// The conflict hunks of a file's text, and whether there were more than [`MAX_HUNKS`].
pub fn parse_conflicts(text: &str) -> (Vec<ConflictHunk>, bool) {
    let lines: Vec<&str> = text.lines().collect();
    let mut hunks = Vec::new();
    let mut cur: Option<(ConflictHunk, Part)> = None;
    let push = |side: &mut ConflictSide, line: &str| {
        if side.lines.len() < MAX_SIDE_LINES {
            side.lines.push(line.to_string());
        } else {
            side.truncated = true;
        }
    };
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        match cur.as_mut() {
            None => {
                if let Some(l) = marker(line, "<<<<<<<") {
                    if hunks.len() == MAX_HUNKS {
                        return (hunks, true);
                    }
                    let before = lines[i.saturating_sub(CONTEXT)..i].iter().map(|s| s.to_string()).collect();
                    let h = ConflictHunk {
                        start_line: n,
                        before,
                        ours: ConflictSide { label: l.to_string(), start_line: n + 1, ..Default::default() },
                        ..Default::default()
                    };
                    cur = Some((h, Part::Ours));
                }
            }
            Some((h, part)) => {
                if let Some(l) = marker(line, "|||||||").filter(|_| *part == Part::Ours) {
                    h.base =
                        Some(ConflictSide { label: l.to_string(), start_line: n + 1, ..Default::default() });
                    *part = Part::Base;
                } else if *line == "=======" && *part != Part::Theirs {
                    h.theirs.start_line = n + 1;
                    *part = Part::Theirs;
                } else if let Some(l) = marker(line, ">>>>>>>").filter(|_| *part == Part::Theirs) {
                    h.theirs.label = l.to_string();
                    h.end_line = n;
                    h.after =
                        lines[n..(n + CONTEXT).min(lines.len())].iter().map(|s| s.to_string()).collect();
                    if let Some((done, _)) = cur.take() {
                        hunks.push(done);
                    }
                } else {
                    match part {
                        Part::Ours => push(&mut h.ours, line),
                        Part::Base => {
                            if let Some(b) = h.base.as_mut() {
                                push(b, line);
                            }
                        }
                        Part::Theirs => push(&mut h.theirs, line),
                    }
                }
            }
        }
    }
    (hunks, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hunks_with_labels_line_numbers_and_context() {
        let text = "a\nb\nc\nd\n<<<<<<< HEAD\nbase line 2\n=======\nsession line 2\nmore\n>>>>>>> 1234567 (amp: edit)\ne\nf\ng\nh\n";
        let (h, more) = parse_conflicts(text);
        assert!(!more);
        assert_eq!(h.len(), 1);
        let h = &h[0];
        assert_eq!((h.start_line, h.end_line), (5, 10));
        assert_eq!(h.before, vec!["b", "c", "d"]);
        assert_eq!(h.after, vec!["e", "f", "g"]);
        assert_eq!(h.ours.label, "HEAD");
        assert_eq!((h.ours.start_line, h.ours.lines.clone()), (6, vec!["base line 2".to_string()]));
        assert_eq!(h.theirs.label, "1234567 (amp: edit)");
        assert_eq!(h.theirs.start_line, 8);
        assert_eq!(h.theirs.lines, vec!["session line 2", "more"]);
        assert!(h.base.is_none());
    }

    #[test]
    fn diff3_base_empty_sides_and_unterminated_markers() {
        let text = "<<<<<<< ours\n||||||| base\nold\n=======\nnew\n>>>>>>> theirs\nx\n<<<<<<< HEAD\n=======\n>>>>>>> b\n<<<<<<< never closed\ny\n";
        let (h, _) = parse_conflicts(text);
        assert_eq!(h.len(), 2);
        assert!(h[0].ours.lines.is_empty());
        assert_eq!(h[0].base.as_ref().unwrap().lines, vec!["old"]);
        assert_eq!(h[0].base.as_ref().unwrap().label, "base");
        assert_eq!(h[0].theirs.lines, vec!["new"]);
        assert!(h[1].ours.lines.is_empty() && h[1].theirs.lines.is_empty());
        assert_eq!(h[1].start_line, 8);
        // A line merely starting with the marker characters is text.
        let (h, _) = parse_conflicts("<<<<<<<<< not a marker\n");
        assert!(h.is_empty());
    }

    #[test]
    fn bounded_hunks_and_sides() {
        let mut text = String::new();
        for _ in 0..(MAX_HUNKS + 2) {
            text.push_str("<<<<<<< a\n1\n=======\n2\n>>>>>>> b\n");
        }
        let (h, more) = parse_conflicts(&text);
        assert_eq!(h.len(), MAX_HUNKS);
        assert!(more);
        let long = format!("<<<<<<< a\n{}=======\n>>>>>>> b\n", "x\n".repeat(MAX_SIDE_LINES + 5));
        let (h, _) = parse_conflicts(&long);
        assert_eq!(h[0].ours.lines.len(), MAX_SIDE_LINES);
        assert!(h[0].ours.truncated);
    }
}

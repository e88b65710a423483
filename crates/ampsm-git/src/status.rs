//! Working-tree status: `git status --porcelain=v2 -z --branch --untracked-files=all` parsed into typed entries
//! (changed, renamed, unmerged, untracked) plus branch, upstream and ahead/behind counts.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::exec::Git;

/// The state of a checkout.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The checked-out branch; `None` when HEAD is detached.
    pub branch: Option<String>,
    /// The commit HEAD points to; `None` on an unborn branch.
    pub head: Option<String>,
    /// The upstream branch, when one is configured.
    pub upstream: Option<String>,
    /// Commits on this branch not on the upstream (0 without upstream).
    pub ahead: u64,
    /// Commits on the upstream not on this branch (0 without upstream).
    pub behind: u64,
    /// Changed, renamed, unmerged, untracked (and, if asked for, ignored) paths.
    pub entries: Vec<StatusEntry>,
}

/// One path in [`Status`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusEntry {
    /// Path relative to the top of the checkout (the new path for a rename).
    pub path: String,
    /// The old path of a rename or copy.
    pub orig_path: Option<String>,
    /// State in the index compared with HEAD, git's letter: `.` unchanged, `M`, `T`, `A`, `D`, `R`, `C`, `U`;
    /// `?` for untracked and `!` for ignored paths.
    pub index: char,
    /// State in the working tree compared with the index, same letters.
    pub worktree: char,
    /// Which kind of line git printed.
    pub kind: EntryKind,
}

/// The kind of a [`StatusEntry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// An ordinary change to a tracked path.
    Changed,
    /// A rename or copy (in the index).
    Renamed,
    /// A path with merge conflicts.
    Unmerged,
    /// A file git does not track.
    Untracked,
    /// A file excluded by `.gitignore`.
    Ignored,
}

impl StatusEntry {
    /// True when the change is staged (differs between HEAD and the index).
    pub fn is_staged(&self) -> bool {
        matches!(self.kind, EntryKind::Changed | EntryKind::Renamed) && self.index != '.'
    }

    /// True when the working tree differs from the index (including untracked files and conflicts).
    pub fn is_unstaged(&self) -> bool {
        match self.kind {
            EntryKind::Changed | EntryKind::Renamed => self.worktree != '.',
            EntryKind::Unmerged | EntryKind::Untracked => true,
            EntryKind::Ignored => false,
        }
    }
}

impl Status {
    /// True when nothing differs from HEAD: no staged, unstaged, unmerged or untracked paths (ignored files do
    /// not count).
    pub fn is_clean(&self) -> bool {
        self.entries.iter().all(|e| e.kind == EntryKind::Ignored)
    }

    /// True when tracked files have staged, unstaged or unmerged changes (untracked files do not count).
    pub fn has_uncommitted(&self) -> bool {
        self.entries
            .iter()
            .any(|e| matches!(e.kind, EntryKind::Changed | EntryKind::Renamed | EntryKind::Unmerged))
    }

    /// True when there are untracked (not ignored) files.
    pub fn has_untracked(&self) -> bool {
        self.entries.iter().any(|e| e.kind == EntryKind::Untracked)
    }

    /// Paths with merge conflicts.
    pub fn conflicts(&self) -> Vec<&str> {
        self.entries.iter().filter(|e| e.kind == EntryKind::Unmerged).map(|e| e.path.as_str()).collect()
    }

    /// Up to `max` changed paths joined with ", " for messages, with a count of the rest.
    pub fn summary(&self, max: usize) -> String {
        let paths: Vec<&str> =
            self.entries.iter().filter(|e| e.kind != EntryKind::Ignored).map(|e| e.path.as_str()).collect();
        let mut out = paths.iter().take(max).copied().collect::<Vec<_>>().join(", ");
        if paths.len() > max {
            out.push_str(&format!(" and {} more", paths.len() - max));
        }
        out
    }
}

impl Git {
    /// The status of this checkout, untracked files listed one by one.
    ///
    /// Runs with `GIT_OPTIONAL_LOCKS=0`, so it never rewrites the index (safe on the user's main checkout).
    pub fn status(&self) -> Result<Status> {
        let args = ["status", "--porcelain=v2", "-z", "--branch", "--untracked-files=all", "--renames"];
        let out = self.run(&args)?;
        parse_status(&out).map_err(|detail| self.parse_error(&args, detail))
    }
}

/// Parse porcelain v2 output with `-z`.
pub(crate) fn parse_status(text: &str) -> std::result::Result<Status, String> {
    let mut status = Status::default();
    let mut fields = text.split('\0');
    while let Some(record) = fields.next() {
        if record.is_empty() {
            continue;
        }
        if let Some(header) = record.strip_prefix("# ") {
            let (key, value) = header.split_once(' ').unwrap_or((header, ""));
            match key {
                "branch.oid" if value != "(initial)" => status.head = Some(value.to_string()),
                "branch.head" if value != "(detached)" => status.branch = Some(value.to_string()),
                "branch.upstream" => status.upstream = Some(value.to_string()),
                "branch.ab" => {
                    for part in value.split_whitespace() {
                        if let Some(n) = part.strip_prefix('+') {
                            status.ahead = n.parse().map_err(|_| format!("bad ahead count in {record:?}"))?;
                        } else if let Some(n) = part.strip_prefix('-') {
                            status.behind =
                                n.parse().map_err(|_| format!("bad behind count in {record:?}"))?;
                        }
                    }
                }
                _ => {}
            }
            continue;
        }
        let (tag, rest) = record.split_at(1);
        let rest = rest.strip_prefix(' ').unwrap_or(rest);
        let entry = match tag {
            "1" => {
                let parts: Vec<&str> = rest.splitn(8, ' ').collect();
                let [xy, _sub, _mh, _mi, _mw, _hh, _hi, path] = parts[..] else {
                    return Err(format!("short changed-entry record {record:?}"));
                };
                let (index, worktree) = xy_chars(xy)?;
                StatusEntry {
                    path: path.to_string(),
                    orig_path: None,
                    index,
                    worktree,
                    kind: EntryKind::Changed,
                }
            }
            "2" => {
                let parts: Vec<&str> = rest.splitn(9, ' ').collect();
                let [xy, _sub, _mh, _mi, _mw, _hh, _hi, _score, path] = parts[..] else {
                    return Err(format!("short rename record {record:?}"));
                };
                let (index, worktree) = xy_chars(xy)?;
                let orig =
                    fields.next().ok_or_else(|| format!("rename record without original path {record:?}"))?;
                StatusEntry {
                    path: path.to_string(),
                    orig_path: Some(orig.to_string()),
                    index,
                    worktree,
                    kind: EntryKind::Renamed,
                }
            }
            "u" => {
                let parts: Vec<&str> = rest.splitn(10, ' ').collect();
                let [xy, _sub, _m1, _m2, _m3, _mw, _h1, _h2, _h3, path] = parts[..] else {
                    return Err(format!("short unmerged record {record:?}"));
                };
                let (index, worktree) = xy_chars(xy)?;
                StatusEntry {
                    path: path.to_string(),
                    orig_path: None,
                    index,
                    worktree,
                    kind: EntryKind::Unmerged,
                }
            }
            "?" | "!" => {
                let letter = if tag == "?" { '?' } else { '!' };
                StatusEntry {
                    path: rest.to_string(),
                    orig_path: None,
                    index: letter,
                    worktree: letter,
                    kind: if tag == "?" { EntryKind::Untracked } else { EntryKind::Ignored },
                }
            }
            _ => return Err(format!("unknown record {record:?}")),
        };
        status.entries.push(entry);
    }
    Ok(status)
}

/// The two status letters of an `XY` field.
fn xy_chars(xy: &str) -> std::result::Result<(char, char), String> {
    let mut chars = xy.chars();
    match (chars.next(), chars.next(), chars.next()) {
        (Some(x), Some(y), None) => Ok((x, y)),
        _ => Err(format!("bad XY field {xy:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_headers_and_entries() {
        let text = "# branch.oid 0123\0# branch.head feat\0# branch.upstream origin/feat\0# branch.ab +2 -3\0\
                    1 .M N... 100644 100644 100644 aaa aaa src/a b.rs\0\
                    2 R. N... 100644 100644 100644 bbb bbb R100 new.rs\0old.rs\0\
                    u UU N... 100644 100644 100644 100644 c1 c2 c3 conflict.txt\0\
                    ? new dir/file.txt\0";
        let status = parse_status(text).expect("parses");
        assert_eq!(status.branch.as_deref(), Some("feat"));
        assert_eq!(status.head.as_deref(), Some("0123"));
        assert_eq!(status.upstream.as_deref(), Some("origin/feat"));
        assert_eq!((status.ahead, status.behind), (2, 3));
        assert_eq!(status.entries.len(), 4);
        assert_eq!(status.entries[0].path, "src/a b.rs");
        assert_eq!((status.entries[0].index, status.entries[0].worktree), ('.', 'M'));
        assert_eq!(status.entries[1].orig_path.as_deref(), Some("old.rs"));
        assert_eq!(status.entries[1].kind, EntryKind::Renamed);
        assert_eq!(status.conflicts(), vec!["conflict.txt"]);
        assert_eq!(status.entries[3].path, "new dir/file.txt");
        assert!(status.has_uncommitted() && status.has_untracked() && !status.is_clean());
    }

    #[test]
    fn detached_and_initial() {
        let status = parse_status("# branch.oid (initial)\0# branch.head (detached)\0").expect("parses");
        assert_eq!(status.branch, None);
        assert_eq!(status.head, None);
        assert!(status.is_clean());
    }
}

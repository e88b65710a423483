//! Git's unified patch (`git diff` output) parsed into files, hunks and lines with their old and new line
//! numbers, for the review page's unified and side-by-side layouts. Handles renames and copies, new and
//! deleted files, mode changes, binary files (`Binary files … differ` and `GIT binary patch`), quoted paths
//! and `\ No newline at end of file`. Parsing never fails: what it does not recognise is skipped.

/// What happened to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStatus {
    Modified,
    Added,
    Deleted,
    Renamed,
    Copied,
}

impl FileStatus {
    /// The word shown beside the file's name.
    pub fn as_str(self) -> &'static str {
        match self {
            FileStatus::Modified => "modified",
            FileStatus::Added => "added",
            FileStatus::Deleted => "deleted",
            FileStatus::Renamed => "renamed",
            FileStatus::Copied => "copied",
        }
    }
}

/// A line of a hunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    Context,
    Added,
    Removed,
}

/// One line of a hunk, with its numbers in the old and new file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub kind: LineKind,
    pub old: Option<u32>,
    pub new: Option<u32>,
    /// The text without its `+`/`-`/space marker and without the newline.
    pub text: String,
    /// Followed by `\ No newline at end of file`.
    pub no_newline: bool,
}

/// One `@@ -a,b +c,d @@ section` hunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hunk {
    pub old_start: u32,
    pub old_count: u32,
    pub new_start: u32,
    pub new_count: u32,
    /// The text after the second `@@` (often the enclosing function), trimmed.
    pub section: String,
    pub lines: Vec<Line>,
}

/// One file of the patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDiff {
    /// The path before (None for a new file).
    pub old_path: Option<String>,
    /// The path after (None for a deleted file).
    pub new_path: Option<String>,
    pub status: FileStatus,
    pub binary: bool,
    /// `similarity index N%` of a rename or copy.
    pub similarity: Option<u8>,
    /// `old mode → new mode` when the mode changed.
    pub mode_change: Option<(String, String)>,
    pub hunks: Vec<Hunk>,
    pub added: usize,
    pub removed: usize,
}

impl FileDiff {
    /// The path the file has now (or had, when deleted).
    pub fn path(&self) -> &str {
        self.new_path.as_deref().or(self.old_path.as_deref()).unwrap_or("")
    }

    /// How many hunk lines the file has.
    pub fn line_count(&self) -> usize {
        self.hunks.iter().map(|h| h.lines.len()).sum()
    }

    fn new(old: Option<String>, new: Option<String>) -> FileDiff {
        FileDiff {
            old_path: old,
            new_path: new,
            status: FileStatus::Modified,
            binary: false,
            similarity: None,
            mode_change: None,
            hunks: Vec::new(),
            added: 0,
            removed: 0,
        }
    }
}

/// Parses a whole `git diff` patch.
pub fn parse(patch: &str) -> Vec<FileDiff> {
    let mut files: Vec<FileDiff> = Vec::new();
    let mut cur: Option<FileDiff> = None;
    // Within a hunk: the next old and new line numbers and what is left of each side.
    let mut left = (0u32, 0u32);
    let mut next = (0u32, 0u32);
    let mut in_binary_patch = false;
    for raw in patch.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if let Some(rest) = line.strip_prefix("diff --git ") {
            files.extend(cur.take());
            let (a, b) = split_git_header(rest);
            cur = Some(FileDiff::new(a, b));
            left = (0, 0);
            in_binary_patch = false;
            continue;
        }
        let Some(f) = cur.as_mut() else { continue };
        if left.0 > 0 || left.1 > 0 {
            // Inside a hunk: every line is a hunk line (even one that looks like a header).
            let (kind, text) = match line.as_bytes().first() {
                Some(b'+') => (LineKind::Added, &line[1..]),
                Some(b'-') => (LineKind::Removed, &line[1..]),
                Some(b' ') => (LineKind::Context, &line[1..]),
                Some(b'\\') => {
                    mark_no_newline(f);
                    continue;
                }
                // An empty line inside a hunk is an empty context line from a tool that trimmed it.
                None => (LineKind::Context, ""),
                Some(_) => {
                    left = (0, 0);
                    continue;
                }
            };
            push_line(f, kind, text, &mut next, &mut left);
            continue;
        }
        if let Some(h) = parse_hunk_header(line) {
            left = (h.old_count, h.new_count);
            next = (h.old_start, h.new_start);
            f.hunks.push(h);
            in_binary_patch = false;
            continue;
        }
        if line.starts_with('\\') {
            // `\ No newline` right after the last line of a hunk (both counts used up).
            mark_no_newline(f);
            continue;
        }
        if in_binary_patch {
            continue;
        }
        header_line(f, line, &mut in_binary_patch);
    }
    files.extend(cur);
    files
}

/// Applies one extended header line (`new file mode`, `rename from`, `---`, `Binary files`, …).
fn header_line(f: &mut FileDiff, line: &str, in_binary_patch: &mut bool) {
    if line.starts_with("new file mode") {
        f.status = FileStatus::Added;
        f.old_path = None;
    } else if line.starts_with("deleted file mode") {
        f.status = FileStatus::Deleted;
        f.new_path = None;
    } else if let Some(p) = line.strip_prefix("rename from ") {
        f.status = FileStatus::Renamed;
        f.old_path = Some(unquote(p));
    } else if let Some(p) = line.strip_prefix("rename to ") {
        f.status = FileStatus::Renamed;
        f.new_path = Some(unquote(p));
    } else if let Some(p) = line.strip_prefix("copy from ") {
        f.status = FileStatus::Copied;
        f.old_path = Some(unquote(p));
    } else if let Some(p) = line.strip_prefix("copy to ") {
        f.status = FileStatus::Copied;
        f.new_path = Some(unquote(p));
    } else if let Some(n) = line.strip_prefix("similarity index ") {
        f.similarity = n.trim_end_matches('%').parse().ok();
    } else if let Some(m) = line.strip_prefix("old mode ") {
        f.mode_change = Some((m.to_string(), String::new()));
    } else if let Some(m) = line.strip_prefix("new mode ") {
        if let Some(mc) = f.mode_change.as_mut() {
            mc.1 = m.to_string();
        }
    } else if line.starts_with("Binary files ") && line.ends_with(" differ") {
        f.binary = true;
    } else if line == "GIT binary patch" {
        f.binary = true;
        *in_binary_patch = true;
    } else if let Some(p) = line.strip_prefix("--- ") {
        if f.status != FileStatus::Added {
            f.old_path = side_path(p, "a/").or(f.old_path.take());
        }
    } else if let Some(p) = line.strip_prefix("+++ ")
        && f.status != FileStatus::Deleted
    {
        f.new_path = side_path(p, "b/").or(f.new_path.take());
    }
}

fn push_line(f: &mut FileDiff, kind: LineKind, text: &str, next: &mut (u32, u32), left: &mut (u32, u32)) {
    let (old, new) = match kind {
        LineKind::Context => {
            let n = (Some(next.0), Some(next.1));
            next.0 += 1;
            next.1 += 1;
            left.0 = left.0.saturating_sub(1);
            left.1 = left.1.saturating_sub(1);
            n
        }
        LineKind::Added => {
            let n = (None, Some(next.1));
            next.1 += 1;
            left.1 = left.1.saturating_sub(1);
            f.added += 1;
            n
        }
        LineKind::Removed => {
            let n = (Some(next.0), None);
            next.0 += 1;
            left.0 = left.0.saturating_sub(1);
            f.removed += 1;
            n
        }
    };
    if let Some(h) = f.hunks.last_mut() {
        h.lines.push(Line { kind, old, new, text: text.to_string(), no_newline: false });
    }
}

fn mark_no_newline(f: &mut FileDiff) {
    if let Some(l) = f.hunks.last_mut().and_then(|h| h.lines.last_mut()) {
        l.no_newline = true;
    }
}

/// `@@ -a,b +c,d @@ section` (a missing count is 1).
fn parse_hunk_header(line: &str) -> Option<Hunk> {
    let rest = line.strip_prefix("@@ -")?;
    let (ranges, section) = rest.split_once(" @@")?;
    let (old, new) = ranges.split_once(" +")?;
    let range = |r: &str| -> Option<(u32, u32)> {
        match r.split_once(',') {
            Some((s, c)) => Some((s.parse().ok()?, c.parse().ok()?)),
            None => Some((r.parse().ok()?, 1)),
        }
    };
    let (old_start, old_count) = range(old)?;
    let (new_start, new_count) = range(new)?;
    Some(Hunk {
        old_start,
        old_count,
        new_start,
        new_count,
        section: section.trim().to_string(),
        lines: Vec::new(),
    })
}

/// The path of a `---`/`+++` line without its `a/`/`b/` prefix; None for `/dev/null`.
fn side_path(p: &str, prefix: &str) -> Option<String> {
    let p = unquote(p.trim_end_matches('\t'));
    if p == "/dev/null" {
        return None;
    }
    Some(p.strip_prefix(prefix).map(str::to_string).unwrap_or(p))
}

/// The two paths of `diff --git a/x b/y` (best effort: the `---`/`+++` and rename lines correct them).
fn split_git_header(rest: &str) -> (Option<String>, Option<String>) {
    if rest.starts_with('"') {
        // Quoted: `"a/x" "b/y"` or `"a/x" b/y`.
        if let Some(end) = closing_quote(rest) {
            let a = unquote(&rest[..=end]);
            let b = unquote(rest[end + 1..].trim_start());
            return (a.strip_prefix("a/").map(str::to_string), b.strip_prefix("b/").map(str::to_string));
        }
    }
    // Unquoted: the same path twice is the common case, so split in the middle when both halves agree.
    let bytes = rest.len();
    if bytes % 2 == 1 {
        let mid = bytes / 2;
        if rest.is_char_boundary(mid)
            && let (Some(a), Some(b)) = (rest[..mid].strip_prefix("a/"), rest[mid + 1..].strip_prefix("b/"))
            && a == b
        {
            return (Some(a.to_string()), Some(b.to_string()));
        }
    }
    match rest.split_once(" b/") {
        Some((a, b)) => (Some(a.strip_prefix("a/").unwrap_or(a).to_string()), Some(unquote(b))),
        None => (None, None),
    }
}

fn closing_quote(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// Git's C-style quoting (`"a/tab\there"`, octal escapes for bytes) undone; unquoted text is returned as is.
fn unquote(s: &str) -> String {
    let Some(inner) = s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) else {
        return s.to_string();
    };
    let mut out: Vec<u8> = Vec::with_capacity(inner.len());
    let b = inner.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' || i + 1 >= b.len() {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let c = b[i + 1];
        i += 2;
        match c {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                let mut n = 1;
                while n < 3 && i < b.len() && (b'0'..=b'7').contains(&b[i]) {
                    v = v * 8 + u32::from(b[i] - b'0');
                    i += 1;
                    n += 1;
                }
                out.push((v & 0xff) as u8);
            }
            other => out.push(other),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A row of the side-by-side layout: the index (in the hunk's lines) of the old line on the left and of the
/// new line on the right (either may be empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitRow {
    pub left: Option<usize>,
    pub right: Option<usize>,
}

/// Pairs a hunk's lines for the side-by-side layout: context on both sides, each run of removed lines
/// beside the run of added lines that follows it.
pub fn split_rows(h: &Hunk) -> Vec<SplitRow> {
    let mut rows = Vec::with_capacity(h.lines.len());
    let mut i = 0;
    let lines = &h.lines;
    while i < lines.len() {
        match lines[i].kind {
            LineKind::Context => {
                rows.push(SplitRow { left: Some(i), right: Some(i) });
                i += 1;
            }
            _ => {
                let del_start = i;
                while i < lines.len() && lines[i].kind == LineKind::Removed {
                    i += 1;
                }
                let add_start = i;
                while i < lines.len() && lines[i].kind == LineKind::Added {
                    i += 1;
                }
                let (dels, adds) = (add_start - del_start, i - add_start);
                for k in 0..dels.max(adds) {
                    rows.push(SplitRow {
                        left: (k < dels).then_some(del_start + k),
                        right: (k < adds).then_some(add_start + k),
                    });
                }
            }
        }
    }
    rows
}

/// Syntax highlighting of a file's hunk lines with syntect (its default syntaxes, loaded once), as HTML
/// spans with a few `hl-*` classes that the page colours from the theme's variables.
pub mod highlight {
    use super::{FileDiff, LineKind};
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};
    use syntect::parsing::{ParseState, Scope, ScopeStack, SyntaxReference, SyntaxSet};

    /// Lines longer than this are not highlighted (minified files would cost a lot for nothing).
    const MAX_LINE: usize = 1000;

    /// Scope prefixes and their class, most specific first.
    const CLASSES: [(&str, &str); 15] = [
        ("comment", "hl-c"),
        ("string", "hl-s"),
        ("constant.numeric", "hl-n"),
        ("constant.character", "hl-n"),
        ("constant.language", "hl-n"),
        ("constant", "hl-n"),
        ("entity.name.function", "hl-f"),
        ("support.function", "hl-f"),
        ("entity.name.tag", "hl-g"),
        ("entity.other.attribute-name", "hl-a"),
        ("entity.name", "hl-t"),
        ("support.type", "hl-t"),
        ("keyword", "hl-k"),
        ("storage", "hl-k"),
        ("variable.language", "hl-k"),
    ];

    struct Syntaxes {
        set: SyntaxSet,
        classes: Vec<(Scope, &'static str)>,
    }

    fn syntaxes() -> &'static Syntaxes {
        static SYNTAXES: OnceLock<Syntaxes> = OnceLock::new();
        SYNTAXES.get_or_init(|| Syntaxes {
            set: SyntaxSet::load_defaults_nonewlines(),
            classes: CLASSES.iter().filter_map(|(s, c)| Scope::new(s).ok().map(|s| (s, *c))).collect(),
        })
    }

    /// The syntax of a path (by extension, then by its whole name, then by the first line), or None for
    /// plain text.
    fn syntax_for<'a>(set: &'a SyntaxSet, path: &str, first_line: &str) -> Option<&'a SyntaxReference> {
        let name = path.rsplit('/').next().unwrap_or(path);
        let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
        let found = (!ext.is_empty())
            .then(|| set.find_syntax_by_extension(ext))
            .flatten()
            .or_else(|| set.find_syntax_by_extension(name))
            .or_else(|| set.find_syntax_by_first_line(first_line))?;
        (found.name != "Plain Text").then_some(found)
    }

    /// HTML-escapes `text` onto `out`.
    pub fn escape_into(text: &str, out: &mut String) {
        for c in text.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                _ => out.push(c),
            }
        }
    }

    /// One side (old or new) of a file being highlighted.
    struct Side<'a> {
        state: ParseState,
        stack: ScopeStack,
        set: &'a SyntaxSet,
        classes: &'a [(Scope, &'static str)],
    }

    impl Side<'_> {
        fn class(&self) -> Option<&'static str> {
            self.stack
                .as_slice()
                .iter()
                .rev()
                .find_map(|s| self.classes.iter().find(|(p, _)| p.is_prefix_of(*s)).map(|(_, c)| *c))
        }

        fn line(&mut self, text: &str) -> String {
            let mut out = String::with_capacity(text.len() + 16);
            if text.len() > MAX_LINE {
                escape_into(text, &mut out);
                return out;
            }
            let Ok(ops) = self.state.parse_line(text, self.set) else {
                escape_into(text, &mut out);
                return out;
            };
            // Adjacent pieces of the same class share one span.
            let mut open: Option<&'static str> = None;
            let mut emit = |class: Option<&'static str>, piece: &str, out: &mut String| {
                if piece.is_empty() {
                    return;
                }
                if class != open {
                    if open.is_some() {
                        out.push_str("</span>");
                    }
                    if let Some(c) = class {
                        out.push_str("<span class=\"");
                        out.push_str(c);
                        out.push_str("\">");
                    }
                    open = class;
                }
                escape_into(piece, out);
            };
            let mut pos = 0;
            for (i, op) in ops {
                let i = i.min(text.len());
                if i > pos && text.is_char_boundary(i) {
                    emit(self.class(), &text[pos..i], &mut out);
                    pos = i;
                }
                let _ = self.stack.apply(&op);
            }
            emit(self.class(), &text[pos..], &mut out);
            if open.is_some() {
                out.push_str("</span>");
            }
            out
        }
    }

    /// How much highlighting a page may do: lines, and a time after which the rest is plain text.
    pub struct Budget {
        pub lines: usize,
        pub until: Instant,
    }

    impl Budget {
        /// `lines` lines, within `time` from now (the syntaxes are loaded first, once per process, so the
        /// time is all highlighting).
        pub fn new(lines: usize, time: Duration) -> Budget {
            syntaxes();
            Budget { lines, until: Instant::now() + time }
        }
    }

    /// The HTML of every hunk line of `f` (indexed like `f.hunks[h].lines[l]`), highlighted when the file
    /// has a known syntax and the budget allows (its lines, its time); otherwise escaped text. Takes the
    /// lines it highlighted off the budget; past the budget's time the rest of the file is plain.
    pub fn file_lines(f: &FileDiff, budget: &mut Budget) -> Vec<Vec<String>> {
        let plain = || -> Vec<Vec<String>> {
            f.hunks
                .iter()
                .map(|h| {
                    h.lines
                        .iter()
                        .map(|l| {
                            let mut s = String::with_capacity(l.text.len());
                            escape_into(&l.text, &mut s);
                            s
                        })
                        .collect()
                })
                .collect()
        };
        let n = f.line_count();
        if n == 0 || n > budget.lines || Instant::now() >= budget.until {
            return plain();
        }
        let sx = syntaxes();
        let first = f.hunks.first().and_then(|h| h.lines.first()).map(|l| l.text.as_str()).unwrap_or("");
        let Some(syntax) = syntax_for(&sx.set, f.path(), first) else { return plain() };
        budget.lines -= n;
        let until = budget.until;
        let mut done = 0usize;
        let mut late = false;
        let side = || Side {
            state: ParseState::new(syntax),
            stack: ScopeStack::new(),
            set: &sx.set,
            classes: &sx.classes,
        };
        let (mut old, mut new) = (side(), side());
        f.hunks
            .iter()
            .map(|h| {
                h.lines
                    .iter()
                    .map(|l| {
                        done += 1;
                        if done.is_multiple_of(128) && !late {
                            late = Instant::now() >= until;
                        }
                        if late {
                            let mut s = String::with_capacity(l.text.len());
                            escape_into(&l.text, &mut s);
                            return s;
                        }
                        match l.kind {
                            LineKind::Removed => old.line(&l.text),
                            LineKind::Added => new.line(&l.text),
                            LineKind::Context => {
                                let _ = old.line(&l.text);
                                new.line(&l.text)
                            }
                        }
                    })
                    .collect()
            })
            .collect()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn rust_is_highlighted_text_is_escaped_and_the_budget_is_kept() {
            let p = "diff --git a/src/m.rs b/src/m.rs\n--- a/src/m.rs\n+++ b/src/m.rs\n@@ -1,2 +1,2 @@\n-fn old() {}\n+fn main() { let s = \"<b>\"; } // hi\n x\n";
            let f = &crate::diff::parse(p)[0];
            let mut budget = Budget::new(100, Duration::from_secs(60));
            let html = file_lines(f, &mut budget);
            assert_eq!(budget.lines, 97);
            let added = &html[0][1];
            assert!(added.contains("<span class=\"hl-k\">fn</span>"), "{added}");
            assert!(added.contains("hl-s") && added.contains("&lt;b&gt;"), "{added}");
            assert!(added.contains("<span class=\"hl-c\">// hi</span>"), "{added}");
            assert!(!added.contains("<b>"), "{added}");
            // Out of budget: escaped, not highlighted.
            let mut none = Budget::new(2, Duration::from_secs(60));
            let html = file_lines(f, &mut none);
            assert_eq!(none.lines, 2);
            assert!(!html[0][1].contains("<span") && html[0][1].contains("&lt;b&gt;"));
            // Out of time: escaped too.
            let mut late = Budget::new(100, Duration::ZERO);
            let html = file_lines(f, &mut late);
            assert!(!html[0][1].contains("<span") && html[0][1].contains("&lt;b&gt;"));
            // Plain text is not highlighted.
            let t = "diff --git a/n.txt b/n.txt\n--- a/n.txt\n+++ b/n.txt\n@@ -1 +1 @@\n-a\n+fn b\n";
            let mut budget = Budget::new(100, Duration::from_secs(60));
            let html = file_lines(&crate::diff::parse(t)[0], &mut budget);
            assert_eq!((budget.lines, html[0][1].as_str()), (100, "fn b"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_modified_file_has_hunks_with_old_and_new_numbers() {
        let p = "diff --git a/src/lib.rs b/src/lib.rs\nindex 1111111..2222222 100644\n--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -3,4 +3,5 @@ fn main() {\n one\n-two\n+deux\n+zwei\n three\n four\n@@ -20 +21 @@\n-x\n+y\n";
        let f = parse(p);
        assert_eq!(f.len(), 1);
        let f = &f[0];
        assert_eq!(f.status, FileStatus::Modified);
        assert_eq!(f.path(), "src/lib.rs");
        assert_eq!(f.old_path.as_deref(), Some("src/lib.rs"));
        assert_eq!((f.added, f.removed), (3, 2));
        assert_eq!(f.hunks.len(), 2);
        let h = &f.hunks[0];
        assert_eq!((h.old_start, h.old_count, h.new_start, h.new_count), (3, 4, 3, 5));
        assert_eq!(h.section, "fn main() {");
        let nums: Vec<_> = h.lines.iter().map(|l| (l.kind, l.old, l.new, l.text.as_str())).collect();
        assert_eq!(
            nums,
            vec![
                (LineKind::Context, Some(3), Some(3), "one"),
                (LineKind::Removed, Some(4), None, "two"),
                (LineKind::Added, None, Some(4), "deux"),
                (LineKind::Added, None, Some(5), "zwei"),
                (LineKind::Context, Some(5), Some(6), "three"),
                (LineKind::Context, Some(6), Some(7), "four"),
            ]
        );
        let h2 = &f.hunks[1];
        assert_eq!((h2.old_start, h2.old_count, h2.new_start, h2.new_count), (20, 1, 21, 1));
        assert_eq!(h2.lines[0].old, Some(20));
        assert_eq!(h2.lines[1].new, Some(21));
    }

    #[test]
    fn new_and_deleted_files() {
        let p = "diff --git a/new.txt b/new.txt\nnew file mode 100644\nindex 0000000..ce01362\n--- /dev/null\n+++ b/new.txt\n@@ -0,0 +1,2 @@\n+hello\n+world\ndiff --git a/old.txt b/old.txt\ndeleted file mode 100644\nindex ce01362..0000000\n--- a/old.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-bye\n";
        let f = parse(p);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].status, FileStatus::Added);
        assert_eq!((f[0].old_path.as_deref(), f[0].new_path.as_deref()), (None, Some("new.txt")));
        assert_eq!(f[0].hunks[0].lines[1].new, Some(2));
        assert_eq!(f[0].added, 2);
        assert_eq!(f[1].status, FileStatus::Deleted);
        assert_eq!((f[1].old_path.as_deref(), f[1].new_path.as_deref()), (Some("old.txt"), None));
        assert_eq!(f[1].path(), "old.txt");
        assert_eq!(f[1].hunks[0].lines[0].old, Some(1));
        assert_eq!(f[1].removed, 1);
    }

    #[test]
    fn renames_with_and_without_changes_and_quoted_paths() {
        let p = "diff --git a/a.txt b/b.txt\nsimilarity index 100%\nrename from a.txt\nrename to b.txt\ndiff --git a/src/x.rs b/src/y z.rs\nsimilarity index 90%\nrename from src/x.rs\nrename to src/y z.rs\nindex 1..2 100644\n--- a/src/x.rs\n+++ b/src/y z.rs\n@@ -1 +1 @@\n-a\n+b\ndiff --git \"a/t\\tab.txt\" \"b/t\\tab.txt\"\nindex 1..2 100644\n--- \"a/t\\tab.txt\"\n+++ \"b/t\\tab.txt\"\n@@ -1 +1 @@\n-\\303\\251\n+e\n";
        let f = parse(p);
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].status, FileStatus::Renamed);
        assert_eq!((f[0].old_path.as_deref(), f[0].new_path.as_deref()), (Some("a.txt"), Some("b.txt")));
        assert_eq!(f[0].similarity, Some(100));
        assert!(f[0].hunks.is_empty());
        assert_eq!(f[1].status, FileStatus::Renamed);
        assert_eq!(f[1].new_path.as_deref(), Some("src/y z.rs"));
        assert_eq!(f[1].old_path.as_deref(), Some("src/x.rs"));
        assert_eq!((f[1].added, f[1].removed), (1, 1));
        assert_eq!(f[2].path(), "t\tab.txt");
        assert_eq!(unquote("\"\\303\\251t\\303\\251\""), "été");
    }

    #[test]
    fn binary_files_both_forms() {
        let p = "diff --git a/img.png b/img.png\nnew file mode 100644\nindex 0000000..1234567\nGIT binary patch\nliteral 5\nMcmZ?wbY)~@00041000\n\nliteral 0\nHcmV?d00001\n\ndiff --git a/b.bin b/b.bin\nindex 1..2 100644\nBinary files a/b.bin and b/b.bin differ\ndiff --git a/t.txt b/t.txt\n--- a/t.txt\n+++ b/t.txt\n@@ -1 +1 @@\n-a\n+b\n";
        let f = parse(p);
        assert_eq!(f.len(), 3);
        assert!(f[0].binary && f[0].hunks.is_empty());
        assert_eq!(f[0].status, FileStatus::Added);
        assert_eq!(f[0].path(), "img.png");
        assert!(f[1].binary);
        assert_eq!(f[1].path(), "b.bin");
        assert!(!f[2].binary);
        assert_eq!(f[2].added, 1);
    }

    #[test]
    fn no_newline_at_end_of_file_marks_the_line() {
        let p = "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n keep\n-old\n\\ No newline at end of file\n+new\n\\ No newline at end of file\n";
        let f = parse(p);
        let lines = &f[0].hunks[0].lines;
        assert_eq!(lines.len(), 3);
        assert!(!lines[0].no_newline);
        assert!(lines[1].no_newline && lines[1].kind == LineKind::Removed);
        assert!(lines[2].no_newline && lines[2].kind == LineKind::Added);
        assert_eq!((f[0].added, f[0].removed), (1, 1));
    }

    #[test]
    fn hunk_headers_with_and_without_counts_and_lines_that_look_like_headers() {
        let h = parse_hunk_header("@@ -1 +1,0 @@").unwrap();
        assert_eq!((h.old_start, h.old_count, h.new_start, h.new_count), (1, 1, 1, 0));
        assert_eq!(h.section, "");
        let h = parse_hunk_header("@@ -10,7 +12,9 @@ impl Foo {").unwrap();
        assert_eq!((h.old_start, h.old_count, h.new_start, h.new_count), (10, 7, 12, 9));
        assert_eq!(h.section, "impl Foo {");
        assert!(parse_hunk_header("@@ nonsense @@").is_none());
        // A removed line whose text is "-- x" and an added "++ y" are hunk lines, not headers.
        let p = "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1,1 +1,1 @@\n--- x\n+++ y\n";
        let f = parse(p);
        assert_eq!(f[0].hunks[0].lines.len(), 2);
        assert_eq!(f[0].hunks[0].lines[0].text, "-- x");
        assert_eq!(f[0].hunks[0].lines[1].text, "++ y");
        assert_eq!(f[0].path(), "f");
    }

    #[test]
    fn mode_changes_and_split_rows() {
        let p = "diff --git a/run.sh b/run.sh\nold mode 100644\nnew mode 100755\n";
        let f = parse(p);
        assert_eq!(f[0].mode_change, Some(("100644".into(), "100755".into())));
        let p = "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1,5 +1,3 @@\n a\n-b\n-c\n+B\n d\n-e\n";
        let f = parse(p);
        let h = &f[0].hunks[0];
        let text = |i: Option<usize>| i.map(|i| h.lines[i].text.as_str());
        let shape: Vec<_> = split_rows(h).iter().map(|r| (text(r.left), text(r.right))).collect();
        assert_eq!(
            shape,
            vec![
                (Some("a"), Some("a")),
                (Some("b"), Some("B")),
                (Some("c"), None),
                (Some("d"), Some("d")),
                (Some("e"), None),
            ]
        );
    }
}

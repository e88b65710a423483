//! Reading history and diffs: commits between two revisions, ancestry, merge bases, `diff --numstat -z`,
//! name-only and textual diffs, and patches for export.

use std::ffi::OsString;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::exec::{Git, reject_option_like};

/// One commit as read by [`Git::commits_between`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitInfo {
    /// Full SHA.
    pub sha: String,
    /// Parent SHAs (two or more for a merge).
    pub parents: Vec<String>,
    /// Author name.
    pub author: String,
    /// Author email.
    pub email: String,
    /// Author time, seconds since the Unix epoch.
    pub time: i64,
    /// First line(s) of the message, joined as git's `%s` does.
    pub subject: String,
    /// The rest of the message (`%b`), trailers included.
    pub body: String,
}

/// Line counts for one file, from `git diff --numstat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStat {
    /// Path (the new path of a rename).
    pub path: String,
    /// The old path of a rename.
    pub old_path: Option<String>,
    /// Lines added; `None` for binary files.
    pub added: Option<u64>,
    /// Lines removed; `None` for binary files.
    pub removed: Option<u64>,
    /// True when git treats the file as binary.
    pub binary: bool,
}

/// Options that keep user configuration from changing diff output we parse.
const DIFF_PLUMBING: [&str; 3] = ["--no-ext-diff", "--no-color", "--no-relative"];

impl Git {
    /// Commits reachable from `head` but not from `base`, oldest first (`git log --reverse base..head`).
    pub fn commits_between(&self, base: &str, head: &str) -> Result<Vec<CommitInfo>> {
        reject_option_like("revision", base)?;
        reject_option_like("revision", head)?;
        let range = format!("{base}..{head}");
        let args = [
            "log",
            "--reverse",
            "--no-show-signature",
            "-z",
            "--format=%H%x00%P%x00%an%x00%ae%x00%at%x00%s%x00%b",
            range.as_str(),
            "--",
        ];
        let out = self.run(&args)?;
        parse_log(&out).map_err(|detail| self.parse_error(&args, detail))
    }

    /// Number of commits in `range` (`git rev-list --count <range>`), e.g. `main..HEAD`.
    pub fn count_commits(&self, range: &str) -> Result<u64> {
        reject_option_like("revision range", range)?;
        let args = ["rev-list", "--count", range, "--"];
        let out = self.run(&args)?;
        out.trim().parse().map_err(|_| self.parse_error(&args, format!("not a number: {:?}", out.trim())))
    }

    /// True when `ancestor` is an ancestor of (or equal to) `descendant`.
    pub fn is_ancestor(&self, ancestor: &str, descendant: &str) -> Result<bool> {
        reject_option_like("revision", ancestor)?;
        reject_option_like("revision", descendant)?;
        let args = ["merge-base", "--is-ancestor", ancestor, descendant];
        let out = self.run_ok(&args)?;
        match out.code {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => Err(self.failed(args.join(" "), &out)),
        }
    }

    /// The best common ancestor of `a` and `b`, or `None` when the histories are unrelated.
    pub fn merge_base(&self, a: &str, b: &str) -> Result<Option<String>> {
        reject_option_like("revision", a)?;
        reject_option_like("revision", b)?;
        let args = ["merge-base", a, b];
        let out = self.run_ok(&args)?;
        match out.code {
            Some(0) => Ok(Some(out.stdout.trim().to_string())),
            Some(1) if out.stdout.trim().is_empty() => Ok(None),
            _ => Err(self.failed(args.join(" "), &out)),
        }
    }

    /// Per-file added/removed line counts with rename detection (`git diff --numstat -z -M`).
    ///
    /// With `to = Some(rev)` it compares two commits; with `to = None` it compares `from` with the working
    /// tree (staged and unstaged changes to tracked files; untracked files are not included — see
    /// [`Git::status`]).
    pub fn diff_numstat(&self, from: &str, to: Option<&str>) -> Result<Vec<FileStat>> {
        let mut args: Vec<OsString> = vec!["diff".into(), "--numstat".into(), "-z".into(), "-M".into()];
        args.extend(DIFF_PLUMBING.iter().map(OsString::from));
        push_revs(&mut args, from, to)?;
        let out = self.run(&args)?;
        parse_numstat(&out).map_err(|detail| self.parse_error(&args, detail))
    }

    /// Paths that differ between `from` and `to` (or the working tree when `to` is `None`).
    pub fn diff_name_only(&self, from: &str, to: Option<&str>) -> Result<Vec<String>> {
        let mut args: Vec<OsString> = vec!["diff".into(), "--name-only".into(), "-z".into()];
        args.extend(DIFF_PLUMBING.iter().map(OsString::from));
        push_revs(&mut args, from, to)?;
        let out = self.run(&args)?;
        Ok(out.split('\0').filter(|p| !p.is_empty()).map(str::to_string).collect())
    }

    /// A textual diff: `git diff --no-ext-diff --no-color <args>`; `args` are passed as given (options,
    /// revisions, `--` and paths), so they must come from the program, not be split from user text.
    pub fn diff_text(&self, args: &[&str]) -> Result<String> {
        let mut all: Vec<&str> = vec!["diff"];
        all.extend(DIFF_PLUMBING);
        all.extend_from_slice(args);
        self.run(&all)
    }

    /// One patch with everything `head` changed since it forked from `base` (`git diff --binary base...head`),
    /// suitable for `git apply`.
    pub fn diff_patch(&self, base: &str, head: &str) -> Result<String> {
        reject_option_like("revision", base)?;
        reject_option_like("revision", head)?;
        let range = format!("{base}...{head}");
        let mut args: Vec<&str> = vec!["diff", "--binary", "--full-index"];
        args.extend(DIFF_PLUMBING);
        args.extend([range.as_str(), "--"]);
        self.run(&args)
    }

    /// The commits `base..head` as an mbox of patches (`git format-patch --stdout --binary`), suitable for
    /// `git am`.
    pub fn format_patch(&self, base: &str, head: &str) -> Result<String> {
        reject_option_like("revision", base)?;
        reject_option_like("revision", head)?;
        let range = format!("{base}..{head}");
        self.run(&[
            "format-patch",
            "--stdout",
            "--binary",
            "--no-color",
            "--no-signature",
            range.as_str(),
            "--",
        ])
    }
}

/// Append `from [to] --` after checking neither looks like an option.
fn push_revs(args: &mut Vec<OsString>, from: &str, to: Option<&str>) -> Result<()> {
    reject_option_like("revision", from)?;
    args.push(from.into());
    if let Some(to) = to {
        reject_option_like("revision", to)?;
        args.push(to.into());
    }
    args.push("--".into());
    Ok(())
}

/// Parse `git log -z` output with seven NUL-separated fields per commit.
pub(crate) fn parse_log(text: &str) -> std::result::Result<Vec<CommitInfo>, String> {
    const FIELDS: usize = 7;
    let mut tokens: Vec<&str> = text.split('\0').collect();
    // Every commit ends with a NUL, which leaves one empty token at the end.
    if tokens.last().is_some_and(|t| t.trim().is_empty()) {
        tokens.pop();
    }
    if !tokens.len().is_multiple_of(FIELDS) {
        return Err(format!("{} fields is not a multiple of {FIELDS}", tokens.len()));
    }
    tokens
        .chunks(FIELDS)
        .map(|c| {
            Ok(CommitInfo {
                sha: c[0].trim_start_matches('\n').to_string(),
                parents: c[1].split_whitespace().map(str::to_string).collect(),
                author: c[2].to_string(),
                email: c[3].to_string(),
                time: c[4].parse().map_err(|_| format!("bad author time {:?}", c[4]))?,
                subject: c[5].to_string(),
                body: c[6].trim_end().to_string(),
            })
        })
        .collect()
}

/// Parse `git diff --numstat -z`: `added\tremoved\tpath\0`, or for renames `added\tremoved\t\0old\0new\0`.
pub(crate) fn parse_numstat(text: &str) -> std::result::Result<Vec<FileStat>, String> {
    let mut stats = Vec::new();
    let mut tokens = text.split('\0');
    while let Some(token) = tokens.next() {
        let token = token.trim_start_matches('\n');
        if token.is_empty() {
            continue;
        }
        let mut parts = token.splitn(3, '\t');
        let (Some(added), Some(removed), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("bad numstat record {token:?}"));
        };
        let count = |s: &str| -> std::result::Result<Option<u64>, String> {
            if s == "-" { Ok(None) } else { s.parse().map(Some).map_err(|_| format!("bad line count {s:?}")) }
        };
        let (added, removed) = (count(added)?, count(removed)?);
        let (path, old_path) = if path.is_empty() {
            let old = tokens.next().ok_or("rename without old path")?;
            let new = tokens.next().ok_or("rename without new path")?;
            (new.to_string(), Some(old.to_string()))
        } else {
            (path.to_string(), None)
        };
        stats.push(FileStat { path, old_path, binary: added.is_none() && removed.is_none(), added, removed });
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numstat_records() {
        let text = "3\t1\tsrc/lib.rs\0-\t-\timg.png\0\
                    0\t0\t\0old name.txt\0new name.txt\0";
        let stats = parse_numstat(text).expect("parses");
        assert_eq!(stats.len(), 3);
        assert_eq!((stats[0].added, stats[0].removed), (Some(3), Some(1)));
        assert!(stats[1].binary && stats[1].added.is_none());
        assert_eq!(stats[2].path, "new name.txt");
        assert_eq!(stats[2].old_path.as_deref(), Some("old name.txt"));
    }

    #[test]
    fn log_records() {
        let text = "aaa\0\0Ann\0a@x\x00100\0first\0\0bbb\0aaa\0Bob\0b@x\x00200\0second\0body\nline\n\0";
        let commits = parse_log(text).expect("parses");
        assert_eq!(commits.len(), 2);
        assert!(commits[0].parents.is_empty());
        assert_eq!(commits[1].parents, vec!["aaa".to_string()]);
        assert_eq!(commits[1].time, 200);
        assert_eq!(commits[1].body, "body\nline");
        assert!(parse_log("a\0b\0").is_err());
    }
}

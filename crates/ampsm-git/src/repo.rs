//! Repository discovery and refs: git's version, the main checkout of a repository, commits and branches by name,
//! the default branch, and "did you mean" suggestions for mistyped refs.

use std::path::{Path, PathBuf};

use crate::error::{GitError, Result};
use crate::exec::{Git, reject_option_like};

/// The oldest git amp-sessions supports (`git merge-tree --write-tree` appeared in 2.38).
pub const MIN_GIT_VERSION: (u32, u32, u32) = (2, 38, 0);

/// How many suggestions [`Git::suggest_refs`] returns at most.
const MAX_SUGGESTIONS: usize = 5;

/// The installed git's version as `(major, minor, patch)`, from `git --version`
/// (vendor suffixes such as `.windows.1` or `(Apple Git-137)` are ignored).
pub fn git_version() -> Result<(u32, u32, u32)> {
    let git = Git::new(std::env::temp_dir());
    let out = git.run(&["--version"])?;
    parse_version(&out)
        .ok_or_else(|| git.parse_error(&["--version"], format!("no version in {:?}", out.trim())))
}

/// Fail with [`GitError::VersionTooOld`] unless the installed git is at least `needed`.
pub fn ensure_git_version(needed: (u32, u32, u32), feature: &'static str) -> Result<()> {
    let found = git_version()?;
    if found >= needed {
        Ok(())
    } else {
        Err(GitError::VersionTooOld {
            found: format!("{}.{}.{}", found.0, found.1, found.2),
            needed: format!("{}.{}.{}", needed.0, needed.1, needed.2),
            feature,
        })
    }
}

/// Parse `git version 2.47.3` (and variants) into numbers; missing parts count as 0.
pub(crate) fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let word = text.split_whitespace().find(|w| w.starts_with(|c: char| c.is_ascii_digit()))?;
    let mut parts = word.split('.').map(|p| {
        let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u32>().ok()
    });
    let major = parts.next().flatten()?;
    let minor = parts.next().flatten().unwrap_or(0);
    let patch = parts.next().flatten().unwrap_or(0);
    Some((major, minor, patch))
}

/// The top-level directory of the repository's main checkout for any path inside it, including paths inside a
/// linked worktree (for a bare repository: the repository directory itself).
///
/// Uses `git rev-parse --path-format=absolute --git-common-dir`: the main checkout is the parent of the common
/// `.git` directory; when the git directory lives elsewhere (`--separate-git-dir`, submodules) the first entry of
/// `git worktree list` is used instead. Fails with [`GitError::NotARepository`] naming `path`.
pub fn repo_root(path: &Path) -> Result<PathBuf> {
    if !path.is_dir() {
        return Err(GitError::NotARepository { path: path.to_path_buf() });
    }
    let git = Git::new(path);
    let args = ["rev-parse", "--path-format=absolute", "--git-common-dir", "--is-bare-repository"];
    let out = git.run_ok(&args)?;
    if !out.success() {
        if out.stderr.contains("not a git repository") {
            return Err(GitError::NotARepository { path: path.to_path_buf() });
        }
        return Err(git.failed(args.join(" "), &out));
    }
    let mut lines = out.stdout.lines();
    let (Some(common), Some(bare)) = (lines.next(), lines.next()) else {
        return Err(git.parse_error(&args, "expected two lines"));
    };
    let common = PathBuf::from(common);
    if bare.trim() == "true" {
        return Ok(common);
    }
    if common.file_name().is_some_and(|n| n == ".git")
        && let Some(parent) = common.parent()
    {
        return Ok(parent.to_path_buf());
    }
    let worktrees = git.worktree_list()?;
    worktrees
        .into_iter()
        .next()
        .map(|w| w.path)
        .ok_or_else(|| git.parse_error(&["worktree", "list"], "no worktrees listed"))
}

impl Git {
    /// The main checkout of the repository this directory belongs to; see [`repo_root`].
    pub fn repo_root(&self) -> Result<PathBuf> {
        repo_root(self.dir())
    }

    /// The absolute git directory of this checkout (for a linked worktree: `.git/worktrees/<name>`).
    pub fn git_dir(&self) -> Result<PathBuf> {
        let out = self.run(&["rev-parse", "--path-format=absolute", "--git-dir"])?;
        Ok(PathBuf::from(out.trim_end_matches('\n')))
    }

    /// True when this directory is the repository's main checkout (or a bare repository) rather than a linked
    /// worktree. Destructive operations refuse to run there.
    pub fn is_main_worktree(&self) -> Result<bool> {
        let args = ["rev-parse", "--path-format=absolute", "--git-dir", "--git-common-dir"];
        let out = self.run(&args)?;
        let mut lines = out.lines();
        match (lines.next(), lines.next()) {
            (Some(dir), Some(common)) => Ok(dir == common),
            _ => Err(self.parse_error(&args, "expected two lines")),
        }
    }

    /// Fail with [`GitError::MainCheckout`] when this is the main checkout.
    pub(crate) fn ensure_linked_worktree(&self, operation: &'static str) -> Result<()> {
        if self.is_main_worktree()? {
            Err(GitError::MainCheckout { operation, dir: self.dir().to_path_buf() })
        } else {
            Ok(())
        }
    }

    /// The full SHA of the commit `rev` names (`git rev-parse --verify --quiet <rev>^{commit}`), or `None` when it
    /// names nothing or something that is not a commit.
    pub fn resolve_commit(&self, rev: &str) -> Result<Option<String>> {
        if rev.is_empty() || rev.starts_with('-') {
            return Ok(None);
        }
        let spec = format!("{rev}^{{commit}}");
        let out = self.run_ok(&["rev-parse", "--verify", "--quiet", spec.as_str()])?;
        match out.code {
            Some(0) => Ok(Some(out.stdout.trim().to_string())),
            Some(1) => Ok(None),
            _ => Err(self.failed(format!("rev-parse --verify --quiet {spec}"), &out)),
        }
    }

    /// Like [`Git::resolve_commit`] but a missing commit is an error that lists close branch names.
    pub fn require_commit(&self, rev: &str) -> Result<String> {
        match self.resolve_commit(rev)? {
            Some(sha) => Ok(sha),
            None => {
                let suggestions = self.suggest_refs(rev).unwrap_or_default();
                let reason = if suggestions.is_empty() {
                    "no such commit or branch".to_string()
                } else {
                    format!("no such commit or branch; did you mean: {}?", suggestions.join(", "))
                };
                Err(GitError::InvalidArgument { what: "revision", value: rev.to_string(), reason })
            }
        }
    }

    /// The branch checked out here (short name, e.g. `main`), or `None` when HEAD is detached. An unborn branch
    /// (no commits yet) is still reported.
    pub fn head_branch(&self) -> Result<Option<String>> {
        let out = self.run_ok(&["symbolic-ref", "--quiet", "HEAD"])?;
        match out.code {
            Some(0) => {
                let full = out.stdout.trim();
                Ok(Some(full.strip_prefix("refs/heads/").unwrap_or(full).to_string()))
            }
            Some(1) => Ok(None),
            _ => Err(self.failed("symbolic-ref --quiet HEAD".to_string(), &out)),
        }
    }

    /// The branch new sessions should start from when none is given: the branch `origin/HEAD` points to (the
    /// local branch of that name if it exists, else `origin/<name>`), else `main` or `master` if one exists
    /// locally, else the branch checked out here, else `HEAD`.
    pub fn default_branch(&self) -> Result<String> {
        let out = self.run_ok(&["symbolic-ref", "--quiet", "refs/remotes/origin/HEAD"])?;
        if out.success()
            && let Some(name) = out.stdout.trim().strip_prefix("refs/remotes/origin/")
        {
            if self.branch_exists(name)? {
                return Ok(name.to_string());
            }
            return Ok(format!("origin/{name}"));
        }
        for name in ["main", "master"] {
            if self.branch_exists(name)? {
                return Ok(name.to_string());
            }
        }
        Ok(self.head_branch()?.unwrap_or_else(|| "HEAD".to_string()))
    }

    /// Local branch names (`refs/heads/*`, short form), sorted.
    pub fn branches(&self) -> Result<Vec<String>> {
        self.refs_under("refs/heads/")
    }

    /// Remote-tracking branch names such as `origin/main` (`refs/remotes/*`), without the symbolic `*/HEAD`.
    pub fn remote_branches(&self) -> Result<Vec<String>> {
        Ok(self.refs_under("refs/remotes/")?.into_iter().filter(|name| !name.ends_with("/HEAD")).collect())
    }

    /// Ref names under `prefix`, with the prefix removed.
    pub(crate) fn refs_under(&self, prefix: &str) -> Result<Vec<String>> {
        let out = self.run(&["for-each-ref", "--format=%(refname)", prefix])?;
        Ok(out.lines().filter_map(|line| line.strip_prefix(prefix)).map(str::to_string).collect())
    }

    /// True when the local branch `name` exists.
    pub fn branch_exists(&self, name: &str) -> Result<bool> {
        if name.is_empty() || name.starts_with('-') {
            return Ok(false);
        }
        let full = format!("refs/heads/{name}");
        let out = self.run_ok(&["show-ref", "--verify", "--quiet", full.as_str()])?;
        match out.code {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => Err(self.failed(format!("show-ref --verify --quiet {full}"), &out)),
        }
    }

    /// Whether the repository has any commit at all (a fresh `git init` has none, so no base can name one).
    pub fn has_commits(&self) -> Result<bool> {
        Ok(!self.run(&["rev-list", "-n", "1", "--all"])?.trim().is_empty())
    }

    /// Ref names to offer when `wrong` names nothing: the default branch first, then local and remote-tracking
    /// branches that start with `wrong` or are within a small edit distance of it (transpositions count once),
    /// closest first; at most 5 names.
    pub fn suggest_refs(&self, wrong: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let default = self.default_branch()?;
        if default != "HEAD" {
            out.push(default);
        }
        let wrong_lower = wrong.to_lowercase();
        let limit = (wrong_lower.chars().count() / 3).max(2);
        let mut scored: Vec<(usize, String)> = Vec::new();
        let mut candidates = self.branches()?;
        candidates.extend(self.remote_branches()?);
        for name in candidates {
            if name == wrong || out.contains(&name) {
                continue;
            }
            let lower = name.to_lowercase();
            let short = lower.split_once('/').map(|(_, rest)| rest.to_string());
            let mut distance = edit_distance(&wrong_lower, &lower);
            if let Some(short) = &short {
                distance = distance.min(edit_distance(&wrong_lower, short));
            }
            let prefix = !wrong_lower.is_empty()
                && (lower.starts_with(&wrong_lower)
                    || short.as_deref().is_some_and(|s| s.starts_with(&wrong_lower)));
            if prefix {
                scored.push((0, name));
            } else if distance <= limit {
                scored.push((distance, name));
            }
        }
        scored.sort();
        for (_, name) in scored {
            if out.len() >= MAX_SUGGESTIONS {
                break;
            }
            if !out.contains(&name) {
                out.push(name);
            }
        }
        out.truncate(MAX_SUGGESTIONS);
        Ok(out)
    }

    /// True when `name` is acceptable as a new branch name (`git check-ref-format --branch`); names starting
    /// with `-` or containing `@{` (reflog syntax) are refused too.
    pub fn check_ref_format_branch(&self, name: &str) -> Result<bool> {
        if reject_option_like("branch name", name).is_err() || name.contains("@{") {
            return Ok(false);
        }
        let out = self.run_ok(&["check-ref-format", "--branch", name])?;
        Ok(out.success())
    }

    /// Fail with [`GitError::InvalidArgument`] unless `name` is a valid new branch name.
    pub(crate) fn ensure_branch_name(&self, name: &str) -> Result<()> {
        if self.check_ref_format_branch(name)? {
            Ok(())
        } else {
            Err(GitError::InvalidArgument {
                what: "branch name",
                value: name.to_string(),
                reason: "git does not accept it as a branch name (see `git check-ref-format --branch`)"
                    .to_string(),
            })
        }
    }
}

/// Edit distance between two strings counting insertions, deletions, substitutions and swaps of two adjacent
/// characters as one step each (optimal string alignment).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    // Three rows: two back (for swaps), previous, current.
    let mut before: Vec<usize> = vec![0; width];
    let mut prev: Vec<usize> = (0..width).collect();
    let mut cur: Vec<usize> = vec![0; width];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before[j - 2] + 1);
            }
            cur[j] = best;
        }
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("mian", "main"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
        assert_eq!(edit_distance("develop", "devel"), 2);
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("git version 2.47.3\n"), Some((2, 47, 3)));
        assert_eq!(parse_version("git version 2.39.2.windows.1"), Some((2, 39, 2)));
        assert_eq!(parse_version("git version 2.37.1 (Apple Git-137.1)"), Some((2, 37, 1)));
        assert_eq!(parse_version("git version 3.0"), Some((3, 0, 0)));
        assert_eq!(parse_version("nothing here"), None);
    }
}

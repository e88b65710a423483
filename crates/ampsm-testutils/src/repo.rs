//! Fixture git repositories for tests: real `git` in temporary directories.
//!
//! These helpers panic on failure on purpose: they exist to set up test
//! fixtures, where an early loud failure with git's stderr is the most useful
//! outcome.

use std::path::{Path, PathBuf};

use tempfile::TempDir;

/// The git runner of the product (`ampsm-git`: repository-redirecting variables removed, no editor or
/// prompt, `LC_ALL=C`, a timeout, its own process group), reading neither the global nor the system
/// configuration, so results do not depend on the machine.
fn runner(dir: &Path) -> ampsm_git::Git {
    ampsm_git::Git::new(dir).with_env("GIT_CONFIG_NOSYSTEM", "1").with_env("GIT_CONFIG_GLOBAL", "/dev/null")
}

/// Runs `git <args>` in `dir` and returns its stdout.
///
/// Panics with git's message when git cannot be started or exits non-zero.
pub fn git(dir: &Path, args: &[&str]) -> String {
    match runner(dir).run(args) {
        Ok(out) => out,
        Err(err) => panic!("git {args:?} in {} failed: {err}", dir.display()),
    }
}

/// `git <args>` in `dir` like [`git`], but its stdout whatever its exit status (empty when it could not
/// run), for queries that fail on purpose (`symbolic-ref -q` on a detached HEAD).
pub fn git_soft(dir: &Path, args: &[&str]) -> String {
    runner(dir).run_ok(args).map(|o| o.stdout).unwrap_or_default()
}

/// Creates a git repository in `dir` (created if missing) on branch `main`,
/// with a local user name and email, and one commit adding `README.md`.
///
/// Returns the canonical path of the repository. Panics on any git failure.
pub fn init_repo(dir: &Path) -> PathBuf {
    if let Err(err) = std::fs::create_dir_all(dir) {
        panic!("could not create {}: {err}", dir.display());
    }
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["config", "user.name", "Fixture User"]);
    git(dir, &["config", "user.email", "fixture@example.invalid"]);
    git(dir, &["config", "commit.gpgsign", "false"]);
    if let Err(err) = std::fs::write(dir.join("README.md"), "# fixture\n\nA repository made by a test.\n") {
        panic!("could not write README.md in {}: {err}", dir.display());
    }
    git(dir, &["add", "README.md"]);
    git(dir, &["commit", "-q", "-m", "Initial commit"]);
    match dir.canonicalize() {
        Ok(path) => path,
        Err(err) => panic!("could not canonicalize {}: {err}", dir.display()),
    }
}

/// A fresh temporary directory meant to be used as `HOME` (and for agent
/// config dirs such as `CLAUDE_CONFIG_DIR` or `CODEX_HOME`) so a test never
/// reads or writes the real user's files. Removed when dropped.
pub fn temp_home() -> TempDir {
    match tempfile::Builder::new().prefix("ampsm-home-").tempdir() {
        Ok(dir) => dir,
        Err(err) => panic!("could not create a temporary HOME: {err}"),
    }
}

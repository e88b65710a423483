//! Fixture git repositories for tests: real `git` in temporary directories.
//!
//! These helpers panic on failure on purpose: they exist to set up test
//! fixtures, where an early loud failure with git's stderr is the most useful
//! outcome.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// Environment variables that would make git read the developer's own
/// configuration or point at another repository; cleared for every call.
const GIT_ENV_TO_CLEAR: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CEILING_DIRECTORIES",
];

/// Runs `git <args>` in `dir` and returns its stdout.
///
/// Global and system git configuration are ignored so results do not depend on
/// the machine. Panics with git's stderr when git cannot be started or exits
/// non-zero.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir).args(args);
    for var in GIT_ENV_TO_CLEAR {
        cmd.env_remove(var);
    }
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C");
    let out = match cmd.output() {
        Ok(out) => out,
        Err(err) => panic!("could not run git {args:?} in {}: {err}", dir.display()),
    };
    if !out.status.success() {
        panic!(
            "git {args:?} in {} failed ({}):\nstderr: {}\nstdout: {}",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `git <args>` in `dir` like [`git`], but its stdout even when git fails (empty then), for queries that
/// fail on purpose (`symbolic-ref -q` on a detached HEAD).
pub fn git_soft(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default()
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

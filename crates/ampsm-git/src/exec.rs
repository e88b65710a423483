//! Running the `git` executable: argv only (no shell), a fixed non-interactive environment, a timeout that kills
//! git's whole process group, and errors that quote the command, the directory and git's stderr.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::error::{GitError, Result};

/// Default limit for one git invocation.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// How much of git's stderr is kept in memory.
const STDERR_CAP: usize = 64 * 1024;

/// How many lines of stderr an error message quotes.
const STDERR_LINES: usize = 8;

/// Variables that would point git at another repository, index or object store. They are inherited when
/// amp-sessions itself runs from a git hook, so they are always removed (the list of `git rev-parse
/// --local-env-vars`).
const REPO_LOCAL_VARS: &[&str] = &[
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_OBJECT_DIRECTORY",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_IMPLICIT_WORK_TREE",
    "GIT_GRAFT_FILE",
    "GIT_INDEX_FILE",
    "GIT_NO_REPLACE_OBJECTS",
    "GIT_REPLACE_REF_BASE",
    "GIT_PREFIX",
    "GIT_SHALLOW_FILE",
    "GIT_COMMON_DIR",
];

/// A handle on one directory (a checkout, a worktree or a bare repository) in which git commands run.
///
/// It is cheap to clone and holds no open resources; every method starts a fresh `git` process.
#[derive(Debug, Clone)]
pub struct Git {
    dir: PathBuf,
    timeout: Duration,
    env: Vec<(OsString, OsString)>,
}

/// What a finished git command produced, for commands whose exit status is information rather than failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitOutput {
    /// The exit code; `None` when git was killed by a signal.
    pub code: Option<i32>,
    /// Standard output (invalid UTF-8 replaced by U+FFFD).
    pub stdout: String,
    /// Standard error (at most 64 KiB are kept).
    pub stderr: String,
}

impl GitOutput {
    /// True when git exited with status 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// One invocation: arguments plus per-call environment and standard input.
#[derive(Debug, Default)]
pub(crate) struct Invocation<'a> {
    pub(crate) args: Vec<OsString>,
    pub(crate) env: Vec<(OsString, OsString)>,
    pub(crate) stdin: Option<&'a [u8]>,
}

impl<'a> Invocation<'a> {
    /// An invocation with these arguments and nothing else.
    pub(crate) fn new<S: AsRef<OsStr>>(args: &[S]) -> Self {
        Invocation { args: args.iter().map(|a| a.as_ref().to_os_string()).collect(), ..Default::default() }
    }

    /// Add one environment variable for this call only.
    pub(crate) fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }

    /// Feed these bytes to git's standard input (otherwise it is `/dev/null`).
    pub(crate) fn stdin(mut self, input: &'a [u8]) -> Self {
        self.stdin = Some(input);
        self
    }
}

impl Git {
    /// A handle that runs git in `dir`, with the default 120 s timeout. Nothing is checked until a command runs.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Git { dir: dir.into(), timeout: DEFAULT_TIMEOUT, env: Vec::new() }
    }

    /// The same handle with another per-command timeout (for example for `fetch` or `push` on slow networks).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The same handle with one more environment variable set for every command (for example
    /// `GIT_CONFIG_GLOBAL` in tests). Variables that redirect git to another repository are still removed.
    pub fn with_env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }

    /// The directory commands run in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The per-command timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The value of an extra environment variable given with [`Git::with_env`], if any.
    pub(crate) fn extra_env(&self, key: &str) -> Option<&OsStr> {
        self.env.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_os_str())
    }

    /// Run `git <args>` and return its standard output; any non-zero exit is a [`GitError::Failed`].
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<String> {
        self.run_inv(Invocation::new(args))
    }

    /// Run `git <args>` and return its output whatever the exit status, for commands whose status is an answer
    /// (`merge-base --is-ancestor`, `diff --quiet`, ...). Only failing to start and timeouts are errors.
    pub fn run_ok<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<GitOutput> {
        self.exec(Invocation::new(args))
    }

    /// Run an invocation and return stdout, failing on a non-zero status.
    pub(crate) fn run_inv(&self, inv: Invocation<'_>) -> Result<String> {
        let command = render_args(&inv.args);
        let out = self.exec(inv)?;
        if out.success() { Ok(out.stdout) } else { Err(self.failed(command, &out)) }
    }

    /// Build the [`GitError::Failed`] for a finished command.
    pub(crate) fn failed(&self, command: String, out: &GitOutput) -> GitError {
        GitError::Failed {
            command,
            dir: self.dir.clone(),
            status: match out.code {
                Some(code) => format!("exit status {code}"),
                None => "killed by a signal".to_string(),
            },
            stderr: summarize_stderr(&out.stderr),
        }
    }

    /// Build a [`GitError::Parse`] for output of `args` that could not be understood.
    pub(crate) fn parse_error<S: AsRef<OsStr>>(&self, args: &[S], detail: impl Into<String>) -> GitError {
        let args: Vec<OsString> = args.iter().map(|a| a.as_ref().to_os_string()).collect();
        GitError::Parse { command: render_args(&args), dir: self.dir.clone(), detail: detail.into() }
    }

    /// Start git, feed stdin, collect stdout and stderr, and enforce the timeout.
    pub(crate) fn exec(&self, inv: Invocation<'_>) -> Result<GitOutput> {
        let (code, stdout, stderr) = self.exec_bytes(inv)?;
        Ok(GitOutput { code, stdout: String::from_utf8_lossy(&stdout).into_owned(), stderr })
    }

    /// Run an invocation and return stdout as raw bytes (file contents kept as they are), failing on a
    /// non-zero status.
    pub(crate) fn run_bytes(&self, inv: Invocation<'_>) -> Result<Vec<u8>> {
        let command = render_args(&inv.args);
        let (code, stdout, stderr) = self.exec_bytes(inv)?;
        if code == Some(0) {
            Ok(stdout)
        } else {
            Err(self.failed(command, &GitOutput { code, stdout: String::new(), stderr }))
        }
    }

    /// [`Git::exec`] with standard output as bytes: the exit code, stdout and stderr.
    fn exec_bytes(&self, inv: Invocation<'_>) -> Result<(Option<i32>, Vec<u8>, String)> {
        let command = render_args(&inv.args);
        let mut cmd = Command::new("git");
        cmd.args(&inv.args)
            .current_dir(&self.dir)
            .stdin(if inv.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Own process group, so a timeout can kill hooks and helpers git started.
            .process_group(0);
        for var in REPO_LOCAL_VARS {
            cmd.env_remove(var);
        }
        cmd.env("GIT_EDITOR", "true")
            .env("GIT_SEQUENCE_EDITOR", "true")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_OPTIONAL_LOCKS", "0")
            .env("GIT_ADVICE", "0")
            .env("LC_ALL", "C");
        for (k, v) in self.env.iter().chain(inv.env.iter()) {
            cmd.env(k, v);
        }

        let spawn_error =
            |source| GitError::Spawn { command: command.clone(), dir: self.dir.clone(), source };
        let mut child = cmd.spawn().map_err(spawn_error)?;
        let deadline = ampsm_core::duration::deadline_after(Instant::now(), self.timeout);

        let stdout_rx = child.stdout.take().map(|pipe| read_in_background(pipe, usize::MAX));
        let stderr_rx = child.stderr.take().map(|pipe| read_in_background(pipe, STDERR_CAP));
        if let (Some(mut pipe), Some(input)) = (child.stdin.take(), inv.stdin) {
            let input = input.to_vec();
            // A git that stops reading early closes the pipe; the write error is then irrelevant.
            std::thread::spawn(move || {
                let _ = pipe.write_all(&input);
            });
        }

        let pid = child.id();
        let (status_tx, status_rx) = mpsc::channel::<std::io::Result<ExitStatus>>();
        std::thread::spawn(move || {
            let _ = status_tx.send(child.wait());
        });

        let timeout_error =
            || GitError::Timeout { command: command.clone(), dir: self.dir.clone(), timeout: self.timeout };
        let status = match status_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(status) => status.map_err(spawn_error)?,
            Err(_) => {
                kill_group(pid);
                // Reap the child (the waiter thread returns promptly after SIGKILL).
                let _ = status_rx.recv_timeout(Duration::from_secs(5));
                return Err(timeout_error());
            }
        };

        // Output pipes close when git exits, unless a detached helper inherited them; do not wait forever.
        let grace = deadline.saturating_duration_since(Instant::now()).max(Duration::from_secs(1));
        let stdout = match stdout_rx {
            Some(rx) => rx.recv_timeout(grace).map_err(|_| timeout_error())?,
            None => Vec::new(),
        };
        let stderr = match stderr_rx {
            Some(rx) => rx.recv_timeout(grace).unwrap_or_default(),
            None => Vec::new(),
        };
        Ok((status.code(), stdout, String::from_utf8_lossy(&stderr).into_owned()))
    }
}

/// Read a pipe to its end on a thread, keeping at most `cap` bytes, and send the bytes back.
fn read_in_background(mut pipe: impl Read + Send + 'static, cap: usize) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let room = cap.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        let _ = tx.send(kept);
    });
    rx
}

/// Kill git and everything in its process group.
fn kill_group(pid: u32) {
    if let Ok(raw) = i32::try_from(pid) {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(raw), nix::sys::signal::Signal::SIGKILL);
    }
}

/// Render arguments for an error message: quoted when needed, and shortened when very long.
pub(crate) fn render_args(args: &[OsString]) -> String {
    const MAX: usize = 300;
    let mut out = String::new();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let arg = arg.to_string_lossy();
        if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"') {
            out.push_str(&format!("{arg:?}"));
        } else {
            out.push_str(&arg);
        }
    }
    if out.chars().count() > MAX {
        let mut short: String = out.chars().take(MAX).collect();
        short.push('…');
        short
    } else {
        out
    }
}

/// The first lines of git's stderr, trimmed, with a note of how many were left out.
pub(crate) fn summarize_stderr(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.trim().lines().map(str::trim_end).filter(|l| !l.is_empty()).collect();
    if lines.is_empty() {
        return "(no error output)".to_string();
    }
    let mut out = lines.iter().take(STDERR_LINES).copied().collect::<Vec<_>>().join("\n");
    if lines.len() > STDERR_LINES {
        out.push_str(&format!("\n… ({} more lines)", lines.len() - STDERR_LINES));
    }
    out
}

/// Refuse values that git would read as an option (a revision or name starting with `-`), or that are empty.
pub(crate) fn reject_option_like(what: &'static str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(GitError::InvalidArgument {
            what,
            value: value.to_string(),
            reason: "it is empty".to_string(),
        });
    }
    if value.starts_with('-') {
        return Err(GitError::InvalidArgument {
            what,
            value: value.to_string(),
            reason: "it starts with '-' and would be read as an option".to_string(),
        });
    }
    Ok(())
}

//! What a run asks for ([`RunSpec`]), what an adapter turns it into ([`CommandSpec`]), and how the process
//! ended ([`ExitInfo`]). Plain data; no IO.

use ampsm_core::{ModelUsage, PermissionPolicy};
use serde::Serialize;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The default cap on one stream line: 1 MiB.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;

/// The default wall-clock limit of one run (`amp.timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// One agent run, as the engine asks for it.
#[derive(Clone, PartialEq)]
pub struct RunSpec {
    /// The user's message.
    pub prompt: String,
    /// The worktree the agent works in.
    pub cwd: PathBuf,
    /// Model (Claude, Codex, Gemini, OpenCode) or mode (Amp), passed through as given.
    pub model: Option<String>,
    /// Continue this thread instead of starting a new one.
    pub thread_id: Option<String>,
    /// Wall-clock limit; the process group is stopped when it is reached.
    pub timeout: Duration,
    /// Run this binary instead of the agent's default name (`amp.path`, `agents.<name>.path`).
    pub program: Option<PathBuf>,
    /// Extra arguments appended after the adapter's own (`agents.<name>.args`).
    pub extra_args: Vec<String>,
    /// Extra environment for the child (`agents.<name>.env`). Values may be secrets: never log them.
    pub env: Vec<(String, String)>,
    /// What the agent may do without asking; each adapter maps it onto its CLI's flags
    /// ([`crate::AgentAdapter::permission_support`]).
    pub permissions: PermissionPolicy,
    /// Lines longer than this are cut and marked truncated. `0` means [`DEFAULT_MAX_LINE_BYTES`].
    pub max_line_bytes: usize,
    /// When continuing `thread_id`: the usage the earlier runs of that thread reported (the sum of their
    /// outcomes' `usage`, per model, with their reported costs). Claude Code (`modelUsage`, cost) and
    /// Codex (`turn.completed`) report the *thread's* running totals on a resumed run; their parsers
    /// subtract this to count the run's own tokens once. Empty: not known (see each parser's fallback).
    pub prior_usage: Vec<ModelUsage>,
    /// The run's tag ([`crate::contain::RUN_TAG_VAR`] in the environment of every process it starts), by
    /// which its processes are found and stopped even after they left its process group. `None`: a tag of
    /// its own is made for the run.
    pub run_tag: Option<String>,
}

impl RunSpec {
    /// A spec with the defaults: new thread, default model, 300 s, no overrides, the `auto` policy.
    pub fn new(prompt: impl Into<String>, cwd: impl Into<PathBuf>) -> Self {
        RunSpec {
            prompt: prompt.into(),
            cwd: cwd.into(),
            model: None,
            thread_id: None,
            timeout: DEFAULT_TIMEOUT,
            program: None,
            extra_args: Vec::new(),
            env: Vec::new(),
            permissions: PermissionPolicy::Auto,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            prior_usage: Vec::new(),
            run_tag: None,
        }
    }

    /// The line cap in effect.
    pub fn line_cap(&self) -> usize {
        if self.max_line_bytes == 0 { DEFAULT_MAX_LINE_BYTES } else { self.max_line_bytes }
    }
}

impl fmt::Debug for RunSpec {
    /// Environment values are left out: they are often API keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunSpec")
            .field("prompt", &self.prompt)
            .field("cwd", &self.cwd)
            .field("model", &self.model)
            .field("thread_id", &self.thread_id)
            .field("timeout", &self.timeout)
            .field("program", &self.program)
            .field("extra_args", &self.extra_args)
            .field("env_keys", &self.env.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>())
            .field("permissions", &self.permissions)
            .field("max_line_bytes", &self.max_line_bytes)
            .field("prior_usage", &self.prior_usage)
            .field("run_tag", &self.run_tag)
            .finish()
    }
}

/// What the child's stdin gets.
#[derive(Clone, PartialEq, Eq)]
pub enum StdinMode {
    /// Write this text, then close stdin (EOF).
    Text(String),
    /// `/dev/null`.
    Null,
    /// Keep a pipe open for messages sent later (interactive sessions).
    Interactive,
    /// One run over a message pipe: write this line (the prompt as a message), keep stdin open for the
    /// answers to the agent's permission requests, and close it once the run's result line arrived.
    Conversation(String),
}

impl fmt::Debug for StdinMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StdinMode::Text(t) => write!(f, "Text({} bytes)", t.len()),
            StdinMode::Null => f.write_str("Null"),
            StdinMode::Interactive => f.write_str("Interactive"),
            StdinMode::Conversation(t) => write!(f, "Conversation({} bytes)", t.len()),
        }
    }
}

/// The exact process to start: program, argv (no shell involved), extra environment, stdin.
#[derive(Clone, PartialEq, Eq)]
pub struct CommandSpec {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Added to the inherited environment. Values may be secrets: never log them.
    pub env: Vec<(String, String)>,
    pub stdin: StdinMode,
}

impl CommandSpec {
    /// The value of an environment entry set by the adapter, if any (for tests and `doctor`).
    pub fn env_value(&self, key: &str) -> Option<&str> {
        self.env.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// A one-line rendering for logs: program and arguments, never the environment values.
    pub fn display_line(&self) -> String {
        let mut out = self.program.display().to_string();
        for a in &self.args {
            out.push(' ');
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"') {
                out.push('\'');
                out.push_str(&a.replace('\'', "'\\''"));
                out.push('\'');
            } else {
                out.push_str(a);
            }
        }
        out
    }
}

impl fmt::Debug for CommandSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandSpec")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("env_keys", &self.env.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>())
            .field("stdin", &self.stdin)
            .finish()
    }
}

/// How the process ended. Given to [`crate::StreamParser::finish`] and kept in the run report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExitInfo {
    /// Exit status, when the process exited on its own terms.
    pub code: Option<i32>,
    /// The signal that ended it, when one did.
    pub signal: Option<i32>,
    /// The run hit its timeout and was stopped.
    pub timed_out: bool,
    /// The run was cancelled by the caller and stopped.
    pub cancelled: bool,
    /// The last 64 KiB of stderr.
    pub stderr_tail: String,
}

impl ExitInfo {
    /// A clean exit with status 0 (handy in tests).
    pub fn success() -> Self {
        ExitInfo { code: Some(0), ..Default::default() }
    }

    /// An exit with `code` and this stderr.
    pub fn code(code: i32, stderr: &str) -> Self {
        ExitInfo { code: Some(code), stderr_tail: stderr.to_string(), ..Default::default() }
    }

    /// Exit 0, not stopped by us and not by a signal.
    pub fn is_clean_success(&self) -> bool {
        self.code == Some(0) && self.signal.is_none() && !self.timed_out && !self.cancelled
    }

    /// Why the process did not end cleanly, in words; `None` for a clean exit 0.
    pub fn failure_reason(&self) -> Option<String> {
        if self.timed_out {
            Some("timed out and was stopped".to_string())
        } else if self.cancelled {
            Some("cancelled".to_string())
        } else if let Some(sig) = self.signal {
            Some(format!("killed by signal {sig}"))
        } else {
            match self.code {
                Some(0) => None,
                Some(c) => Some(format!("exited with code {c}")),
                None => Some("ended without an exit status".to_string()),
            }
        }
    }
}

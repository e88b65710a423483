//! The two traits every agent implements: [`AgentAdapter`] (argv, environment, credentials, capabilities)
//! and [`StreamParser`] (vendor stream lines → normalized [`AgentEvent`]s and a [`RunOutcome`]).

use crate::error::AgentError;
use crate::process::MessageFormat;
use crate::spec::{CommandSpec, ExitInfo, RunSpec};
use ampsm_core::{AgentEvent, PermissionPolicy, RunOutcome};
use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// What "continue this session" means for an agent (shown in the UI, see LESSONS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContinueMode {
    /// The agent resumes the same thread with its full context.
    Resume,
    /// The agent continues from a copy of the thread under a new id.
    Fork,
    /// Earlier turns are not resumed by the agent; a recorded or textual replay stands in for them.
    Replay,
    /// Every run starts from nothing.
    None,
}

/// What an agent can do, as declared by its adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    pub continue_mode: ContinueMode,
    /// Supports a long-lived session fed with user messages ([`crate::spawn_interactive`]).
    pub interactive: bool,
    /// The stream reports cost in USD.
    pub reports_cost: bool,
    /// How credentials are checked without spending anything.
    pub credential_check: &'static str,
}

/// The result of a credential check. Never holds the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CredentialCheck {
    pub ok: bool,
    /// Where the credential was found: an environment variable name or a file path.
    pub source: Option<String>,
    /// When `ok`, a short description; otherwise how to log in.
    pub message: String,
}

impl CredentialCheck {
    pub(crate) fn found(source: impl Into<String>, what: &str) -> Self {
        let source = source.into();
        CredentialCheck { ok: true, message: format!("{what} found in {source}"), source: Some(source) }
    }

    pub(crate) fn missing(message: impl Into<String>) -> Self {
        CredentialCheck { ok: false, source: None, message: message.into() }
    }

    pub(crate) fn not_needed() -> Self {
        CredentialCheck { ok: true, source: None, message: "no credentials needed".to_string() }
    }
}

/// What a credential check may look at. It holds no secret: values are read through `env` when needed
/// and never kept.
#[derive(Clone, Copy)]
pub struct CredentialContext<'a> {
    /// Looks up an environment variable (the engine: the run's extra environment, then the process's).
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// The names of the variables that are set, for checks that accept any `*_API_KEY`; empty when unknown.
    pub env_names: &'a [String],
    /// The user's home directory.
    pub home: &'a Path,
    /// The directory the agent runs in (project settings live there), when known.
    pub cwd: Option<&'a Path>,
    /// The agent's extra arguments (`agents.<name>.args`), which may pick a profile or a provider.
    pub args: &'a [String],
}

impl<'a> CredentialContext<'a> {
    /// A context with only an environment lookup and a home: no cwd, no extra arguments.
    pub fn new(env: &'a dyn Fn(&str) -> Option<String>, home: &'a Path) -> Self {
        CredentialContext { env, env_names: &[], home, cwd: None, args: &[] }
    }

    /// The variable's value when it is set to something other than blanks.
    pub fn var(&self, key: &str) -> Option<String> {
        (self.env)(key).filter(|v| !v.trim().is_empty())
    }
}

impl fmt::Debug for CredentialContext<'_> {
    /// Names and paths only: no variable value, and only the number of arguments (they may hold a token).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialContext")
            .field("env_names", &self.env_names)
            .field("home", &self.home)
            .field("cwd", &self.cwd)
            .field("args", &self.args.len())
            .finish()
    }
}

/// Whether an agent can honour a permission policy, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "support", rename_all = "snake_case")]
pub enum PolicySupport {
    /// Honoured; `how` says with which of the CLI's flags or settings.
    Honoured { how: &'static str },
    /// Not honoured; `why` says why and what to use instead.
    Unsupported { why: &'static str },
}

impl PolicySupport {
    pub fn is_honoured(&self) -> bool {
        matches!(self, PolicySupport::Honoured { .. })
    }

    /// The explanation: how it is honoured, or why not.
    pub fn text(&self) -> &'static str {
        match self {
            PolicySupport::Honoured { how } => how,
            PolicySupport::Unsupported { why } => why,
        }
    }
}

/// One agent: how to start it and how to read it.
pub trait AgentAdapter: Send + Sync {
    /// The agent's name (`amp`, `claude`, …), as used in the config and on the command line.
    fn name(&self) -> &'static str;

    fn capabilities(&self) -> Capabilities;

    /// The process for a one-shot run of `spec`.
    fn command(&self, spec: &RunSpec) -> Result<CommandSpec, AgentError>;

    /// A fresh parser for one run of `spec`.
    fn parser(&self, spec: &RunSpec) -> Box<dyn StreamParser + Send>;

    /// Whether credentials are present for a run, without spending anything and without reading out the
    /// secret: every way the CLI itself authenticates (environment, its login files, its settings and
    /// config, the run's project settings in `ctx.cwd` and the extra arguments in `ctx.args`).
    fn check_credentials_in(&self, ctx: &CredentialContext<'_>) -> CredentialCheck;

    /// [`AgentAdapter::check_credentials_in`] with only an environment lookup and the home directory.
    fn check_credentials(&self, env: &dyn Fn(&str) -> Option<String>, home: &Path) -> CredentialCheck {
        self.check_credentials_in(&CredentialContext::new(env, home))
    }

    /// Whether a run must be refused when [`AgentAdapter::check_credentials_in`] fails: true only for CLIs
    /// known to hang without credentials (Amp waits forever on an interactive login). For the others a
    /// failed check is a warning and the run goes ahead, bounded by its timeout.
    fn credentials_required(&self) -> bool {
        false
    }

    /// How to install the agent's CLI (a command line), when there is a standard way: the registry's
    /// [`ampsm_core::agents::AgentInfo::install`].
    fn install_hint(&self) -> Option<&'static str> {
        ampsm_core::agents::find_agent(self.name()).and_then(|info| info.install)
    }

    /// The program a run of `spec` would start, resolved: as given when it has a slash (it must exist and
    /// be executable), else found on the `PATH` of the run (its extra environment's, else the process's).
    /// [`AgentError::NotFound`] (with [`AgentAdapter::install_hint`]) when it is not installed.
    fn locate_program(&self, spec: &RunSpec) -> Result<PathBuf, AgentError> {
        let program = self.command(spec)?.program;
        let path_var = spec
            .env
            .iter()
            .rev()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| std::ffi::OsString::from(v))
            .or_else(|| std::env::var_os("PATH"));
        crate::adapters::find_program(&program, path_var.as_deref()).ok_or_else(|| AgentError::NotFound {
            agent: self.name(),
            program,
            config_key: self.config_key(),
            install: self.install_hint(),
        })
    }

    /// Arguments that make the program print its version (empty: the agent has no version to ask).
    fn version_args(&self) -> Vec<String>;

    /// The config key that sets this agent's program path.
    fn config_key(&self) -> String {
        format!("agents.{}.path", self.name())
    }

    /// The process for a long-lived interactive session fed with user messages on stdin.
    fn interactive_command(&self, spec: &RunSpec) -> Result<CommandSpec, AgentError> {
        let _ = spec;
        Err(AgentError::Unsupported {
            agent: self.name(),
            what: "interactive chat".to_string(),
            hint: ampsm_core::Hint::IterateInstead,
        })
    }

    /// The parser for an interactive session (turns end without a `result` line in some agents).
    fn interactive_parser(&self, spec: &RunSpec) -> Box<dyn StreamParser + Send> {
        self.parser(spec)
    }

    /// How this agent honours `policy`: the CLI flags or settings it maps to, or why it cannot (then a
    /// session with that policy is refused at `new`, before anything runs).
    fn permission_support(&self, policy: PermissionPolicy) -> PolicySupport;

    /// The stdin line that answers the agent's permission request `request_id` under the `ask` policy;
    /// `input` is the tool call's input as the agent sent it. `None`: the agent takes no answers.
    fn permission_answer(
        &self,
        request_id: &str,
        input: &serde_json::Value,
        allow: bool,
        message: &str,
    ) -> Option<String> {
        let _ = (request_id, input, allow, message);
        None
    }

    /// How user messages are written on stdin in an interactive session.
    fn message_format(&self) -> MessageFormat {
        MessageFormat::ContentBlocks
    }
}

/// Reads one run's stdout, line by line. Must never panic, whatever the input.
pub trait StreamParser {
    /// The events of one stdout line (without its newline). Blank lines give nothing; lines that are not
    /// JSON give an [`AgentEvent::Output`]; unknown line types give an [`AgentEvent::Notice`].
    fn parse_line(&mut self, line: &str) -> Vec<AgentEvent>;

    /// Events found in one stderr line, beyond the line itself (which is always recorded as output): some
    /// agents report refused tool calls only there (Codex's sandbox). Default: none.
    fn parse_stderr_line(&mut self, line: &str) -> Vec<AgentEvent> {
        let _ = line;
        Vec::new()
    }

    /// The run's outcome, once the process has ended.
    fn finish(&mut self, exit: &ExitInfo) -> RunOutcome;
}

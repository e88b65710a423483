//! The two traits every agent implements: [`AgentAdapter`] (argv, environment, credentials, capabilities)
//! and [`StreamParser`] (vendor stream lines → normalized [`AgentEvent`]s and a [`RunOutcome`]).

use crate::error::AgentError;
use crate::process::MessageFormat;
use crate::spec::{CommandSpec, ExitInfo, RunSpec};
use ampsm_core::{AgentEvent, RunOutcome};
use serde::Serialize;
use std::path::Path;

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

/// One agent: how to start it and how to read it.
pub trait AgentAdapter: Send + Sync {
    /// The agent's name (`amp`, `claude`, …), as used in the config and on the command line.
    fn name(&self) -> &'static str;

    fn capabilities(&self) -> Capabilities;

    /// The process for a one-shot run of `spec`.
    fn command(&self, spec: &RunSpec) -> Result<CommandSpec, AgentError>;

    /// A fresh parser for one run of `spec`.
    fn parser(&self, spec: &RunSpec) -> Box<dyn StreamParser + Send>;

    /// Whether credentials are present, without spending anything and without reading out the secret.
    /// `env` looks up environment variables; `home` is the user's home directory.
    fn check_credentials(&self, env: &dyn Fn(&str) -> Option<String>, home: &Path) -> CredentialCheck;

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
            hint: "use `iterate` to run it one prompt at a time".to_string(),
        })
    }

    /// The parser for an interactive session (turns end without a `result` line in some agents).
    fn interactive_parser(&self, spec: &RunSpec) -> Box<dyn StreamParser + Send> {
        self.parser(spec)
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

    /// The run's outcome, once the process has ended.
    fn finish(&mut self, exit: &ExitInfo) -> RunOutcome;
}

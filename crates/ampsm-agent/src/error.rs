//! The errors of this crate. Each one names the agent, the program when there is one, and what to do next.

use std::path::{Path, PathBuf};

/// Something went wrong before or while running an agent. Agent *failures* (a bad key, a failed turn) are
/// not errors here: they come back in [`ampsm_core::RunOutcome`]; these are the cases where no run could
/// take place or where talking to the process broke.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The agent name is not one of ours.
    #[error("unknown agent `{name}`: valid agents are {valid}")]
    UnknownAgent { name: String, valid: String },

    /// The program is not installed: not on PATH, or the configured path is wrong. `install` is the
    /// command that installs the agent's CLI, when there is a standard one.
    #[error("{}", not_found_text(agent, program, config_key, *install))]
    NotFound { agent: &'static str, program: PathBuf, config_key: String, install: Option<&'static str> },

    /// The adapter needs a program and none was configured (the `command` agent).
    #[error(
        "{agent}: no program to run; set `{config_key}` to the program (and its arguments in `agents.{agent}.args`)"
    )]
    MissingProgram { agent: &'static str, config_key: String },

    /// The program exists but could not be started.
    #[error(
        "{agent}: could not start `{}` in `{}`: {source}; check that the program is executable and \
         that the directory exists",
        program.display(),
        cwd.display()
    )]
    Spawn {
        agent: &'static str,
        program: PathBuf,
        cwd: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Reading from or writing to the running process failed.
    #[error("{agent}: I/O error while talking to `{}`: {source}", program.display())]
    Io {
        agent: &'static str,
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The adapter cannot do what was asked (e.g. an interactive session with an agent that has none).
    #[error("{agent}: {what} is not supported by this agent")]
    Unsupported { agent: &'static str, what: String, hint: ampsm_core::Hint },

    /// An interactive session was already closed, or its process has ended.
    #[error("{agent}: the interactive session has ended; start a new one to send more messages")]
    Closed { agent: &'static str },
}

impl AgentError {
    /// What to do instead, when the agent cannot do what was asked.
    pub fn hint(&self) -> Option<ampsm_core::Hint> {
        match self {
            AgentError::Unsupported { hint, .. } => Some(hint.clone()),
            _ => None,
        }
    }

    /// What kind of failure this is: an unknown agent, a missing `command` program or an unsupported
    /// request is bad input; a missing install and a broken process failed.
    pub fn kind(&self) -> ampsm_core::ErrorKind {
        use ampsm_core::ErrorKind;
        match self {
            AgentError::UnknownAgent { .. }
            | AgentError::MissingProgram { .. }
            | AgentError::Unsupported { .. } => ErrorKind::BadInput,
            AgentError::NotFound { .. }
            | AgentError::Spawn { .. }
            | AgentError::Io { .. }
            | AgentError::Closed { .. } => ErrorKind::Failed,
        }
    }
}

/// The one-line message of [`AgentError::NotFound`].
fn not_found_text(agent: &str, program: &Path, config_key: &str, install: Option<&str>) -> String {
    let where_ = if program.components().count() > 1 {
        "does not exist or is not executable"
    } else {
        "was not found on PATH"
    };
    let install = match install {
        Some(cmd) => format!("install it with {cmd}, or"),
        None => "install it, or".to_string(),
    };
    format!(
        "{agent} is not installed: `{}` {where_}; {install} set `{config_key}` to its full path",
        program.display()
    )
}

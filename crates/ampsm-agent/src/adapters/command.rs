//! The `command` agent: any program (`agents.command.path`, or the session's script) with
//! `agents.command.args`. The prompt goes to stdin and to `AMPSM_PROMPT`; every output line is an `Output`
//! event; exit 0 is success.

use super::MAX_PROMPT_ARG_BYTES;
use crate::adapter::{
    AgentAdapter, Capabilities, ContinueMode, CredentialCheck, CredentialContext, PolicySupport, StreamParser,
};
use crate::error::AgentError;
use crate::parsers::command::CommandParser;
use crate::spec::{CommandSpec, RunSpec, StdinMode};
use ampsm_core::PermissionPolicy;

/// Runs an arbitrary program as the agent.
#[derive(Debug, Clone, Copy, Default)]
pub struct CommandAdapter;

impl AgentAdapter for CommandAdapter {
    fn name(&self) -> &'static str {
        "command"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            continue_mode: ContinueMode::None,
            interactive: false,
            reports_cost: false,
            credential_check: "none needed",
        }
    }

    /// `AMPSM_PROMPT` is set only when the prompt fits in one environment string (100 KiB); stdin always
    /// has it. `AMPSM_MODEL` carries the model when one was asked for.
    fn command(&self, spec: &RunSpec) -> Result<CommandSpec, AgentError> {
        let program = match &spec.program {
            Some(p) if !p.as_os_str().is_empty() => p.clone(),
            _ => return Err(AgentError::MissingProgram { agent: "command", config_key: self.config_key() }),
        };
        let mut env = spec.env.clone();
        if spec.prompt.len() <= MAX_PROMPT_ARG_BYTES {
            env.push(("AMPSM_PROMPT".to_string(), spec.prompt.clone()));
        }
        if let Some(model) = &spec.model {
            env.push(("AMPSM_MODEL".to_string(), model.clone()));
        }
        Ok(CommandSpec {
            program,
            args: spec.extra_args.clone(),
            env,
            stdin: StdinMode::Text(spec.prompt.clone()),
        })
    }

    fn parser(&self, _spec: &RunSpec) -> Box<dyn StreamParser + Send> {
        Box::new(CommandParser::new())
    }

    fn permission_support(&self, policy: PermissionPolicy) -> PolicySupport {
        match policy {
            PermissionPolicy::Auto | PermissionPolicy::Full => PolicySupport::Honoured {
                how: "runs the configured program as it is: amp-sessions cannot limit what it does",
            },
            PermissionPolicy::Ask | PermissionPolicy::ReadOnly => PolicySupport::Unsupported {
                why: "an arbitrary program cannot be held to a policy; use auto or full",
            },
        }
    }

    /// Nothing to check: the program only has to exist ([`AgentAdapter::locate_program`]).
    fn check_credentials_in(&self, _ctx: &CredentialContext<'_>) -> CredentialCheck {
        CredentialCheck::not_needed()
    }

    fn version_args(&self) -> Vec<String> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_a_program() {
        let mut spec = RunSpec::new("do it", "/w");
        let err = CommandAdapter.command(&spec).unwrap_err().to_string();
        assert!(err.contains("agents.command.path"), "{err}");
        spec.program = Some("/bin/sh".into());
        spec.extra_args = vec!["-c".into(), "echo hi".into()];
        let cmd = CommandAdapter.command(&spec).unwrap();
        assert_eq!(cmd.args, ["-c", "echo hi"]);
        assert_eq!(cmd.env_value("AMPSM_PROMPT"), Some("do it"));
        assert_eq!(cmd.stdin, StdinMode::Text("do it".into()));
    }
}

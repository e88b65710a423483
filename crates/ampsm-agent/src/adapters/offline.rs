//! The `offline` adapter: runs the built-in demo agent ([`crate::offline`]) as a real subprocess of the
//! main binary (`amp-sessions __offline-agent --stream-json`) and reads it with the Amp parser, so the demo
//! goes through exactly the path a real Amp run takes.

use crate::adapter::{
    AgentAdapter, Capabilities, ContinueMode, CredentialCheck, CredentialContext, PolicySupport, StreamParser,
};
use crate::error::AgentError;
use crate::offline::OFFLINE_SUBCOMMAND;
use crate::parsers::amp::{AmpParser, AmpParserOptions};
use crate::spec::{CommandSpec, RunSpec, StdinMode};
use ampsm_core::PermissionPolicy;
use std::path::PathBuf;

/// The demo agent.
///
/// Its continue mode is [`ContinueMode::Replay`]: the demo keeps no conversation, so continuing a thread
/// replays a second recorded transcript (which, like Amp, first repeats the earlier turn) under the same
/// thread id, instead of resuming a real context.
#[derive(Debug, Clone, Copy, Default)]
pub struct OfflineAdapter;

impl OfflineAdapter {
    fn program(spec: &RunSpec) -> Result<PathBuf, AgentError> {
        match &spec.program {
            Some(p) if !p.as_os_str().is_empty() => Ok(p.clone()),
            _ => std::env::current_exe().map_err(|_| AgentError::NotFound {
                agent: "offline",
                program: PathBuf::from("amp-sessions (the running executable)"),
                config_key: "agents.offline.path".to_string(),
                install: None,
            }),
        }
    }

    fn args(spec: &RunSpec, interactive: bool) -> Vec<String> {
        let mut args = vec![OFFLINE_SUBCOMMAND.to_string()];
        if let Some(id) = &spec.thread_id {
            args.extend(["threads".to_string(), "continue".to_string(), id.clone()]);
        }
        args.push("--stream-json".to_string());
        if interactive {
            args.push("--stream-json-input".to_string());
        }
        if spec.permissions == PermissionPolicy::ReadOnly {
            args.push("--read-only".to_string());
        }
        args.extend(spec.extra_args.iter().cloned());
        args
    }
}

impl AgentAdapter for OfflineAdapter {
    fn name(&self) -> &'static str {
        "offline"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            continue_mode: ContinueMode::Replay,
            interactive: true,
            reports_cost: false,
            credential_check: "none needed (built-in demo, no network)",
        }
    }

    fn command(&self, spec: &RunSpec) -> Result<CommandSpec, AgentError> {
        Ok(CommandSpec {
            program: Self::program(spec)?,
            args: Self::args(spec, false),
            env: spec.env.clone(),
            stdin: StdinMode::Text(format!("{}\n", spec.prompt.trim_end_matches('\n'))),
        })
    }

    fn permission_support(&self, policy: PermissionPolicy) -> PolicySupport {
        match policy {
            PermissionPolicy::Auto | PermissionPolicy::Full => PolicySupport::Honoured {
                how: "the demo applies its recorded edits in the worktree (its shell results are replayed)",
            },
            PermissionPolicy::ReadOnly => PolicySupport::Honoured {
                how: "--read-only: the demo refuses its edits and commands and reports them as denied",
            },
            PermissionPolicy::Ask => PolicySupport::Unsupported {
                why: "the recorded demo cannot wait for approvals; use auto or read-only",
            },
        }
    }

    fn parser(&self, spec: &RunSpec) -> Box<dyn StreamParser + Send> {
        Box::new(AmpParser::new(AmpParserOptions {
            prompt: spec.prompt.clone(),
            continued: spec.thread_id.is_some(),
            interactive: false,
            agent: "offline",
        }))
    }

    fn check_credentials_in(&self, _ctx: &CredentialContext<'_>) -> CredentialCheck {
        CredentialCheck::not_needed()
    }

    fn version_args(&self) -> Vec<String> {
        vec![OFFLINE_SUBCOMMAND.to_string(), "--version".to_string()]
    }

    fn interactive_command(&self, spec: &RunSpec) -> Result<CommandSpec, AgentError> {
        Ok(CommandSpec {
            program: Self::program(spec)?,
            args: Self::args(spec, true),
            env: spec.env.clone(),
            stdin: StdinMode::Interactive,
        })
    }

    fn interactive_parser(&self, spec: &RunSpec) -> Box<dyn StreamParser + Send> {
        Box::new(AmpParser::new(AmpParserOptions {
            prompt: spec.prompt.clone(),
            continued: false,
            interactive: true,
            agent: "offline",
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn argv_routes_to_the_hidden_subcommand() {
        let mut spec = RunSpec::new("p", "/w");
        let cmd = OfflineAdapter.command(&spec).unwrap();
        assert_eq!(cmd.program, std::env::current_exe().unwrap());
        assert_eq!(cmd.args, ["__offline-agent", "--stream-json"]);
        spec.thread_id = Some("T-1".into());
        assert_eq!(
            OfflineAdapter.command(&spec).unwrap().args,
            ["__offline-agent", "threads", "continue", "T-1", "--stream-json"]
        );
        assert!(OfflineAdapter.check_credentials(&|_| None, Path::new("/nonexistent")).ok);
        assert_eq!(OfflineAdapter.capabilities().continue_mode, ContinueMode::Replay);
    }
}

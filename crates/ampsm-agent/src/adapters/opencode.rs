//! OpenCode (agent-protocols.md §5): `opencode run --format json [-m provider/model] [-s <id>] <prompt>`.
//! `run` approves every tool by itself, so `allow_all` adds nothing (newer builds' skip flag can go in
//! `agents.opencode.args`). A prompt that starts with `-` or is too long for one argument goes on stdin,
//! which `run` appends to its message.

use super::{MAX_PROMPT_ARG_BYTES, data_home, first_env, has_material, program_or, read_small_json};
use crate::adapter::{AgentAdapter, Capabilities, ContinueMode, CredentialCheck, StreamParser};
use crate::error::AgentError;
use crate::parsers::opencode::OpenCodeParser;
use crate::spec::{CommandSpec, RunSpec, StdinMode};
use std::path::Path;

/// The OpenCode CLI.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenCodeAdapter;

/// Provider keys OpenCode picks up from the environment.
const PROVIDER_KEYS: &[&str] = &[
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_GENERATIVE_AI_API_KEY",
    "OPENROUTER_API_KEY",
    "GROQ_API_KEY",
    "XAI_API_KEY",
    "DEEPSEEK_API_KEY",
    "MISTRAL_API_KEY",
    "GITHUB_TOKEN",
];

impl AgentAdapter for OpenCodeAdapter {
    fn name(&self) -> &'static str {
        "opencode"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            continue_mode: ContinueMode::Resume,
            interactive: false,
            reports_cost: true,
            credential_check: "$XDG_DATA_HOME/opencode/auth.json (~/.local/share/opencode/auth.json) or a provider \
                               key such as ANTHROPIC_API_KEY; presence only (`opencode auth list` confirms)",
        }
    }

    fn command(&self, spec: &RunSpec) -> Result<CommandSpec, AgentError> {
        let mut args: Vec<String> = ["run", "--format", "json"].map(String::from).to_vec();
        if let Some(model) = &spec.model {
            args.extend(["-m".to_string(), model.clone()]);
        }
        if let Some(id) = &spec.thread_id {
            args.extend(["-s".to_string(), id.clone()]);
        }
        args.extend(spec.extra_args.iter().cloned());
        let stdin = if spec.prompt.len() <= MAX_PROMPT_ARG_BYTES && !spec.prompt.starts_with('-') {
            args.push(spec.prompt.clone());
            StdinMode::Null
        } else {
            StdinMode::Text(spec.prompt.clone())
        };
        Ok(CommandSpec { program: program_or(&spec.program, "opencode"), args, env: spec.env.clone(), stdin })
    }

    fn parser(&self, spec: &RunSpec) -> Box<dyn StreamParser + Send> {
        Box::new(OpenCodeParser::new(spec.model.clone()))
    }

    fn check_credentials(&self, env: &dyn Fn(&str) -> Option<String>, home: &Path) -> CredentialCheck {
        let auth = data_home(env, home).join("opencode").join("auth.json");
        if read_small_json(&auth).is_some_and(|v| has_material(&v)) {
            return CredentialCheck::found(auth.display().to_string(), "OpenCode login");
        }
        if let Some(var) = first_env(env, PROVIDER_KEYS) {
            return CredentialCheck::found(var, "provider key");
        }
        CredentialCheck::missing(format!(
            "OpenCode has no provider credentials: run `opencode auth login`, or set a provider key such as \
             ANTHROPIC_API_KEY or OPENAI_API_KEY (looked in the environment and {})",
            auth.display()
        ))
    }

    fn version_args(&self) -> Vec<String> {
        vec!["--version".to_string()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv() {
        let mut spec = RunSpec::new("fix it", "/w");
        spec.model = Some("anthropic/claude-sonnet-4-5".into());
        spec.thread_id = Some("ses_7f3a".into());
        let cmd = OpenCodeAdapter.command(&spec).unwrap();
        assert_eq!(
            cmd.args,
            ["run", "--format", "json", "-m", "anthropic/claude-sonnet-4-5", "-s", "ses_7f3a", "fix it"]
        );
        assert_eq!(cmd.stdin, StdinMode::Null);
        spec.prompt = "--help me".into();
        let cmd = OpenCodeAdapter.command(&spec).unwrap();
        assert_eq!(cmd.args.last().unwrap(), "ses_7f3a");
        assert_eq!(cmd.stdin, StdinMode::Text("--help me".into()));
    }

    #[test]
    fn credentials() {
        let home = tempfile::tempdir().unwrap();
        let none = |_: &str| None;
        assert!(!OpenCodeAdapter.check_credentials(&none, home.path()).ok);
        let dir = home.path().join(".local/share/opencode");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("auth.json"), r#"{"anthropic":{"type":"api","key":"k"}}"#).unwrap();
        assert!(OpenCodeAdapter.check_credentials(&none, home.path()).ok);
    }
}

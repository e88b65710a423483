//! OpenAI Codex (agent-protocols.md §3): `codex exec --json --skip-git-repo-check [-m M] [sandbox] -` with
//! the prompt on stdin; `codex exec --json [opts] resume <id> -` to continue.

use super::{dir_from_env, first_env, has_material, program_or, read_small_json};
use crate::adapter::{AgentAdapter, Capabilities, ContinueMode, CredentialCheck, StreamParser};
use crate::error::AgentError;
use crate::parsers::codex::CodexParser;
use crate::spec::{CommandSpec, RunSpec, StdinMode};
use ampsm_core::TokenUsage;
use std::path::Path;

/// The Codex CLI.
#[derive(Debug, Clone, Copy, Default)]
pub struct CodexAdapter;

impl AgentAdapter for CodexAdapter {
    fn name(&self) -> &'static str {
        "codex"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            continue_mode: ContinueMode::Resume,
            interactive: false,
            reports_cost: false,
            credential_check: "CODEX_API_KEY or OPENAI_API_KEY, else $CODEX_HOME/auth.json (~/.codex/auth.json); \
                               presence only (`codex login status` confirms)",
        }
    }

    fn command(&self, spec: &RunSpec) -> Result<CommandSpec, AgentError> {
        let mut args: Vec<String> = ["exec", "--json", "--skip-git-repo-check"].map(String::from).to_vec();
        if let Some(model) = &spec.model {
            args.extend(["-m".to_string(), model.clone()]);
        }
        if spec.allow_all {
            args.push("--dangerously-bypass-approvals-and-sandbox".to_string());
        } else {
            args.extend(["-s".to_string(), "workspace-write".to_string()]);
        }
        // Options belong to `exec` and so come before `resume`.
        args.extend(spec.extra_args.iter().cloned());
        if let Some(id) = &spec.thread_id {
            args.extend(["resume".to_string(), id.clone()]);
        }
        args.push("-".to_string());
        Ok(CommandSpec {
            program: program_or(&spec.program, "codex"),
            args,
            env: spec.env.clone(),
            stdin: StdinMode::Text(spec.prompt.clone()),
        })
    }

    fn parser(&self, spec: &RunSpec) -> Box<dyn StreamParser + Send> {
        match spec.thread_id {
            Some(_) => {
                let mut prior = TokenUsage::default();
                for m in &spec.prior_usage {
                    prior.add(&m.usage);
                }
                Box::new(CodexParser::resumed(spec.model.clone(), prior))
            }
            None => Box::new(CodexParser::new(spec.model.clone())),
        }
    }

    fn check_credentials(&self, env: &dyn Fn(&str) -> Option<String>, home: &Path) -> CredentialCheck {
        if let Some(var) = first_env(env, &["CODEX_API_KEY", "OPENAI_API_KEY"]) {
            return CredentialCheck::found(var, "OpenAI key");
        }
        let auth = dir_from_env(env, "CODEX_HOME", home.join(".codex")).join("auth.json");
        if read_small_json(&auth).is_some_and(|v| has_material(&v)) {
            return CredentialCheck::found(auth.display().to_string(), "Codex login");
        }
        CredentialCheck::missing(format!(
            "Codex is not logged in: run `codex login` (or `printenv OPENAI_API_KEY | codex login \
             --with-api-key`), or set CODEX_API_KEY (looked in the environment and {})",
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
        let mut spec = RunSpec::new("p", "/w");
        let cmd = CodexAdapter.command(&spec).unwrap();
        assert_eq!(cmd.args, ["exec", "--json", "--skip-git-repo-check", "-s", "workspace-write", "-"]);
        assert_eq!(cmd.stdin, StdinMode::Text("p".into()));
        spec.model = Some("gpt-5".into());
        spec.allow_all = true;
        spec.thread_id = Some("0199a213".into());
        spec.extra_args = vec!["-c".into(), "model_reasoning_effort=\"high\"".into()];
        let cmd = CodexAdapter.command(&spec).unwrap();
        assert_eq!(
            cmd.args,
            [
                "exec",
                "--json",
                "--skip-git-repo-check",
                "-m",
                "gpt-5",
                "--dangerously-bypass-approvals-and-sandbox",
                "-c",
                "model_reasoning_effort=\"high\"",
                "resume",
                "0199a213",
                "-"
            ]
        );
    }

    #[test]
    fn credentials() {
        let home = tempfile::tempdir().unwrap();
        let none = |_: &str| None;
        assert!(!CodexAdapter.check_credentials(&none, home.path()).message.is_empty());
        assert!(!CodexAdapter.check_credentials(&none, home.path()).ok);
        std::fs::create_dir_all(home.path().join(".codex")).unwrap();
        std::fs::write(
            home.path().join(".codex/auth.json"),
            r#"{"OPENAI_API_KEY":null,"tokens":{"id_token":"x"}}"#,
        )
        .unwrap();
        assert!(CodexAdapter.check_credentials(&none, home.path()).ok);
        std::fs::write(home.path().join(".codex/auth.json"), r#"{"OPENAI_API_KEY":null}"#).unwrap();
        assert!(!CodexAdapter.check_credentials(&none, home.path()).ok);
    }
}

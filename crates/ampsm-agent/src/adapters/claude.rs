//! Claude Code (agent-protocols.md §2): `claude -p --output-format stream-json --verbose` with the prompt on
//! stdin, `--resume <id>`, `--model`, `--dangerously-skip-permissions` (with `IS_SANDBOX=1` when running as
//! root, which the CLI otherwise refuses), `--input-format stream-json` for chat.

use super::{dir_from_env, first_env, has_material, program_or, read_small_json};
use crate::adapter::{AgentAdapter, Capabilities, ContinueMode, CredentialCheck, StreamParser};
use crate::error::AgentError;
use crate::parsers::claude::ClaudeParser;
use crate::process::MessageFormat;
use crate::spec::{CommandSpec, RunSpec, StdinMode};
use std::path::Path;

/// The Claude Code CLI.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClaudeAdapter;

fn running_as_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn build(spec: &RunSpec, interactive: bool, as_root: bool) -> CommandSpec {
    let mut args = vec!["-p".to_string()];
    if interactive {
        args.extend(["--input-format".to_string(), "stream-json".to_string()]);
    }
    args.extend(["--output-format", "stream-json", "--verbose"].map(String::from));
    if let Some(id) = &spec.thread_id {
        args.extend(["--resume".to_string(), id.clone()]);
    }
    if let Some(model) = &spec.model {
        args.extend(["--model".to_string(), model.clone()]);
    }
    let mut env = spec.env.clone();
    if spec.allow_all {
        args.push("--dangerously-skip-permissions".to_string());
        if as_root && !env.iter().any(|(k, _)| k == "IS_SANDBOX") {
            env.push(("IS_SANDBOX".to_string(), "1".to_string()));
        }
    }
    args.extend(spec.extra_args.iter().cloned());
    CommandSpec {
        program: program_or(&spec.program, "claude"),
        args,
        env,
        stdin: if interactive { StdinMode::Interactive } else { StdinMode::Text(spec.prompt.clone()) },
    }
}

impl AgentAdapter for ClaudeAdapter {
    fn name(&self) -> &'static str {
        "claude"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            continue_mode: ContinueMode::Resume,
            interactive: true,
            reports_cost: true,
            credential_check: "ANTHROPIC_API_KEY, CLAUDE_CODE_OAUTH_TOKEN or ANTHROPIC_AUTH_TOKEN (or Bedrock/Vertex \
                               switches), else $CLAUDE_CONFIG_DIR or ~/.claude: .credentials.json, or an \
                               apiKeyHelper in settings.json; presence only (`claude auth status` confirms)",
        }
    }

    fn command(&self, spec: &RunSpec) -> Result<CommandSpec, AgentError> {
        Ok(build(spec, false, running_as_root()))
    }

    fn parser(&self, spec: &RunSpec) -> Box<dyn StreamParser + Send> {
        match spec.thread_id {
            Some(_) => Box::new(ClaudeParser::resumed(spec.prior_usage.clone())),
            None => Box::new(ClaudeParser::new()),
        }
    }

    fn check_credentials(&self, env: &dyn Fn(&str) -> Option<String>, home: &Path) -> CredentialCheck {
        if let Some(var) = first_env(
            env,
            &[
                "ANTHROPIC_API_KEY",
                "CLAUDE_CODE_OAUTH_TOKEN",
                "ANTHROPIC_AUTH_TOKEN",
                "CLAUDE_CODE_USE_BEDROCK",
                "CLAUDE_CODE_USE_VERTEX",
            ],
        ) {
            return CredentialCheck::found(var, "Claude credential");
        }
        let dir = dir_from_env(env, "CLAUDE_CONFIG_DIR", home.join(".claude"));
        let creds = dir.join(".credentials.json");
        if read_small_json(&creds).is_some_and(|v| has_material(&v)) {
            return CredentialCheck::found(creds.display().to_string(), "Claude login");
        }
        let settings = dir.join("settings.json");
        if read_small_json(&settings).is_some_and(|v| {
            v.get("apiKeyHelper").and_then(|h| h.as_str()).is_some_and(|h| !h.trim().is_empty())
        }) {
            return CredentialCheck::found(
                format!("{} (apiKeyHelper)", settings.display()),
                "Claude key helper",
            );
        }
        CredentialCheck::missing(format!(
            "Claude Code is not logged in: run `claude` then `/login` (or `claude setup-token` and set \
             CLAUDE_CODE_OAUTH_TOKEN), or set ANTHROPIC_API_KEY (looked in the environment and {}; on macOS \
             the login lives in the keychain, check it with `claude auth status`)",
            creds.display()
        ))
    }

    fn version_args(&self) -> Vec<String> {
        vec!["--version".to_string()]
    }

    fn interactive_command(&self, spec: &RunSpec) -> Result<CommandSpec, AgentError> {
        Ok(build(spec, true, running_as_root()))
    }

    fn message_format(&self) -> MessageFormat {
        MessageFormat::ContentString
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv() {
        let mut spec = RunSpec::new("hi", "/w");
        let cmd = build(&spec, false, false);
        assert_eq!(cmd.program, Path::new("claude"));
        assert_eq!(cmd.args, ["-p", "--output-format", "stream-json", "--verbose"]);
        assert_eq!(cmd.stdin, StdinMode::Text("hi".into()));
        spec.thread_id = Some("6b0d9f2e".into());
        spec.model = Some("opus".into());
        spec.allow_all = true;
        let cmd = build(&spec, false, false);
        assert_eq!(
            cmd.args,
            [
                "-p",
                "--output-format",
                "stream-json",
                "--verbose",
                "--resume",
                "6b0d9f2e",
                "--model",
                "opus",
                "--dangerously-skip-permissions"
            ]
        );
        assert_eq!(cmd.env_value("IS_SANDBOX"), None);
        assert_eq!(build(&spec, false, true).env_value("IS_SANDBOX"), Some("1"));
        spec.allow_all = false;
        assert_eq!(build(&spec, false, true).env_value("IS_SANDBOX"), None);
        let chat = build(&spec, true, false);
        assert_eq!(&chat.args[..3], ["-p", "--input-format", "stream-json"]);
        assert_eq!(chat.stdin, StdinMode::Interactive);
    }

    #[test]
    fn credentials() {
        let home = tempfile::tempdir().unwrap();
        let none = |_: &str| None;
        assert!(!ClaudeAdapter.check_credentials(&none, home.path()).ok);
        let token = |k: &str| (k == "CLAUDE_CODE_OAUTH_TOKEN").then(|| "sk-ant-oat-secret".to_string());
        let check = ClaudeAdapter.check_credentials(&token, home.path());
        assert_eq!(check.source.as_deref(), Some("CLAUDE_CODE_OAUTH_TOKEN"));
        assert!(!format!("{check:?}").contains("secret"));
        std::fs::create_dir_all(home.path().join(".claude")).unwrap();
        std::fs::write(
            home.path().join(".claude/.credentials.json"),
            r#"{"claudeAiOauth":{"accessToken":"t"}}"#,
        )
        .unwrap();
        assert!(ClaudeAdapter.check_credentials(&none, home.path()).ok);
        let other = tempfile::tempdir().unwrap();
        let dir = other.path().display().to_string();
        let config_dir = move |k: &str| (k == "CLAUDE_CONFIG_DIR").then(|| dir.clone());
        assert!(!ClaudeAdapter.check_credentials(&config_dir, home.path()).ok);
    }
}

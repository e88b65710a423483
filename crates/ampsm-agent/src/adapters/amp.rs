//! Amp (agent-protocols.md §1): `amp -x --stream-json` with the prompt on stdin, `threads continue <id>` to
//! continue, `--mode` for the model family, `--stream-json-input` for chat.

use super::{data_home, first_env, program_or, read_small_json};
use crate::adapter::{
    AgentAdapter, Capabilities, ContinueMode, CredentialCheck, CredentialContext, PolicySupport, StreamParser,
};
use crate::error::AgentError;
use crate::parsers::amp::{AmpParser, AmpParserOptions};
use crate::spec::{CommandSpec, RunSpec, StdinMode};
use ampsm_core::PermissionPolicy;
use serde_json::Value;
use std::path::Path;

/// The Amp CLI.
#[derive(Debug, Clone, Copy, Default)]
pub struct AmpAdapter;

/// argv shared by one-shot and interactive runs, without `extra_args`.
fn base_args(spec: &RunSpec) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(thread) = &spec.thread_id {
        args.extend(["threads".to_string(), "continue".to_string(), thread.clone()]);
    }
    args.extend(["-x".to_string(), "--stream-json".to_string()]);
    if let Some(mode) = &spec.model {
        args.extend(["--mode".to_string(), mode.clone()]);
    }
    if spec.permissions == PermissionPolicy::Full {
        args.push("--dangerously-allow-all".to_string());
    }
    args.extend(["--no-notifications", "--no-color", "--no-ide"].map(String::from));
    args
}

/// Whether Amp has a stored or exported key, and where. Shared with `verify-amp`.
pub(crate) fn amp_credentials(env: &dyn Fn(&str) -> Option<String>, home: &Path) -> CredentialCheck {
    if let Some(var) = first_env(env, &["AMP_API_KEY"]) {
        return CredentialCheck::found(var, "Amp API key");
    }
    let secrets = data_home(env, home).join("amp").join("secrets.json");
    let stored = read_small_json(&secrets).is_some_and(|v| match v {
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| k.starts_with("apiKey") && v.as_str().is_some_and(|s| !s.trim().is_empty())),
        _ => false,
    });
    if stored {
        return CredentialCheck::found(secrets.display().to_string(), "Amp API key");
    }
    CredentialCheck::missing(format!(
        "Amp has no API key: run `amp login` or set AMP_API_KEY (looked in the environment and {}); \
         without one `amp -x` waits forever on an interactive login",
        secrets.display()
    ))
}

impl AgentAdapter for AmpAdapter {
    fn name(&self) -> &'static str {
        "amp"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            continue_mode: ContinueMode::Resume,
            interactive: true,
            reports_cost: false,
            credential_check: "AMP_API_KEY, or an apiKey… entry in $XDG_DATA_HOME/amp/secrets.json \
                               (~/.local/share/amp/secrets.json); presence only, nothing is spent",
        }
    }

    fn command(&self, spec: &RunSpec) -> Result<CommandSpec, AgentError> {
        let mut args = base_args(spec);
        args.extend(spec.extra_args.iter().cloned());
        Ok(CommandSpec {
            program: program_or(&spec.program, "amp"),
            args,
            env: spec.env.clone(),
            stdin: StdinMode::Text(format!("{}\n", spec.prompt.trim_end_matches('\n'))),
        })
    }

    fn permission_support(&self, policy: PermissionPolicy) -> PolicySupport {
        match policy {
            PermissionPolicy::Auto => PolicySupport::Honoured {
                how: "Amp's own permission rules (amp.permissions): file edits and the commands its rules allow \
                      run; a command its rules would ask about is rejected in execute mode and recorded as denied",
            },
            PermissionPolicy::Ask => PolicySupport::Unsupported {
                why: "Amp sends no permission request on its stream, so nobody can answer one; use auto, or \
                      amp.permissions rules in Amp's settings",
            },
            PermissionPolicy::ReadOnly => PolicySupport::Unsupported {
                why: "Amp has no read-only switch on its command line; use auto with `reject` rules in \
                      amp.permissions, or another agent",
            },
            PermissionPolicy::Full => PolicySupport::Honoured {
                how: "--dangerously-allow-all: every tool call runs, no rule applies",
            },
        }
    }

    fn parser(&self, spec: &RunSpec) -> Box<dyn StreamParser + Send> {
        Box::new(AmpParser::new(AmpParserOptions {
            prompt: spec.prompt.clone(),
            continued: spec.thread_id.is_some(),
            interactive: false,
            agent: "amp",
        }))
    }

    fn check_credentials_in(&self, ctx: &CredentialContext<'_>) -> CredentialCheck {
        amp_credentials(ctx.env, ctx.home)
    }

    /// Without a key `amp -x` opens an interactive login and waits forever.
    fn credentials_required(&self) -> bool {
        true
    }

    fn version_args(&self) -> Vec<String> {
        vec!["--version".to_string()]
    }

    fn config_key(&self) -> String {
        "amp.path".to_string()
    }

    fn interactive_command(&self, spec: &RunSpec) -> Result<CommandSpec, AgentError> {
        let mut args = base_args(spec);
        args.push("--stream-json-input".to_string());
        args.extend(spec.extra_args.iter().cloned());
        Ok(CommandSpec {
            program: program_or(&spec.program, "amp"),
            args,
            env: spec.env.clone(),
            stdin: StdinMode::Interactive,
        })
    }

    fn interactive_parser(&self, spec: &RunSpec) -> Box<dyn StreamParser + Send> {
        Box::new(AmpParser::new(AmpParserOptions {
            prompt: spec.prompt.clone(),
            continued: spec.thread_id.is_some() && !spec.prompt.trim().is_empty(),
            interactive: true,
            agent: "amp",
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn spec() -> RunSpec {
        RunSpec::new("fix the bug", "/tmp/wt")
    }

    #[test]
    fn one_shot_argv_and_stdin() {
        let cmd = AmpAdapter.command(&spec()).unwrap();
        assert_eq!(cmd.program, Path::new("amp"));
        assert_eq!(cmd.args, ["-x", "--stream-json", "--no-notifications", "--no-color", "--no-ide"]);
        assert_eq!(cmd.stdin, StdinMode::Text("fix the bug\n".into()));
    }

    #[test]
    fn continue_mode_and_allow_all() {
        let mut s = spec();
        assert!(!AmpAdapter.command(&s).unwrap().args.contains(&"--dangerously-allow-all".to_string()));
        s.thread_id = Some("T-1234".into());
        s.model = Some("some-new-mode".into());
        s.permissions = PermissionPolicy::Full;
        s.extra_args = vec!["--label".into(), "x".into()];
        s.program = Some("/opt/amp/bin/amp".into());
        let cmd = AmpAdapter.command(&s).unwrap();
        assert_eq!(cmd.program, Path::new("/opt/amp/bin/amp"));
        assert_eq!(
            cmd.args,
            [
                "threads",
                "continue",
                "T-1234",
                "-x",
                "--stream-json",
                "--mode",
                "some-new-mode",
                "--dangerously-allow-all",
                "--no-notifications",
                "--no-color",
                "--no-ide",
                "--label",
                "x"
            ]
        );
        let chat = AmpAdapter.interactive_command(&s).unwrap();
        assert!(chat.args.contains(&"--stream-json-input".to_string()));
        assert_eq!(chat.stdin, StdinMode::Interactive);
    }

    #[test]
    fn credentials_from_env_file_or_missing() {
        let home = tempfile::tempdir().unwrap();
        let empty: HashMap<&'static str, String> = HashMap::new();
        fn lookup(m: &HashMap<&'static str, String>) -> impl Fn(&str) -> Option<String> + use<> {
            let m = m.clone();
            move |k: &str| m.get(k).cloned()
        }
        let check = AmpAdapter.check_credentials(&lookup(&empty), home.path());
        assert!(!check.ok);
        assert!(check.message.contains("amp login") && check.message.contains("AMP_API_KEY"));

        let with_key: HashMap<&'static str, String> =
            [("AMP_API_KEY", "sgamp_user_secret".to_string())].into();
        let check = AmpAdapter.check_credentials(&lookup(&with_key), home.path());
        assert!(check.ok);
        assert_eq!(check.source.as_deref(), Some("AMP_API_KEY"));
        assert!(!format!("{check:?}").contains("sgamp_user_secret"));

        let dir = home.path().join(".local/share/amp");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("secrets.json"), r#"{"other":"x"}"#).unwrap();
        assert!(!AmpAdapter.check_credentials(&lookup(&empty), home.path()).ok);
        std::fs::write(dir.join("secrets.json"), r#"{"apiKey@https://ampcode.com/":"sgamp_user_secret"}"#)
            .unwrap();
        let check = AmpAdapter.check_credentials(&lookup(&empty), home.path());
        assert!(check.ok);
        assert!(check.source.unwrap().ends_with("amp/secrets.json"));
        assert!(!check.message.contains("sgamp_user_secret"));

        // XDG_DATA_HOME moves the file.
        let xdg = tempfile::tempdir().unwrap();
        let moved: HashMap<&'static str, String> =
            [("XDG_DATA_HOME", xdg.path().display().to_string())].into();
        assert!(!AmpAdapter.check_credentials(&lookup(&moved), home.path()).ok);
        std::fs::create_dir_all(xdg.path().join("amp")).unwrap();
        std::fs::write(xdg.path().join("amp/secrets.json"), r#"{"apiKey@https://x/":"k"}"#).unwrap();
        assert!(AmpAdapter.check_credentials(&lookup(&moved), home.path()).ok);
    }
}

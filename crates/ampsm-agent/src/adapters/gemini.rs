//! Gemini CLI (agent-protocols.md §4): headless `gemini -o stream-json [-m M] [-y] [-r <id>] -p <prompt>`.
//! A prompt too long for one argument goes on stdin (which Gemini prepends to the `-p` text) with a short
//! `-p` pointing at it.

use super::{MAX_PROMPT_ARG_BYTES, dir_from_env, first_env, has_material, program_or, read_small_json};
use crate::adapter::{AgentAdapter, Capabilities, ContinueMode, CredentialCheck, StreamParser};
use crate::error::AgentError;
use crate::parsers::gemini::GeminiParser;
use crate::spec::{CommandSpec, RunSpec, StdinMode};
use std::path::Path;

/// The Gemini CLI.
#[derive(Debug, Clone, Copy, Default)]
pub struct GeminiAdapter;

/// The `-p` text used when the prompt itself travels on stdin.
pub const STDIN_PROMPT_POINTER: &str = "Follow the instructions given above.";

impl AgentAdapter for GeminiAdapter {
    fn name(&self) -> &'static str {
        "gemini"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            continue_mode: ContinueMode::Resume,
            interactive: false,
            reports_cost: false,
            credential_check: "GEMINI_API_KEY, GOOGLE_API_KEY or Vertex/ADC variables, else ~/.gemini: \
                               oauth_creds.json or a key in .env; presence only (Gemini has no status command)",
        }
    }

    fn command(&self, spec: &RunSpec) -> Result<CommandSpec, AgentError> {
        let mut args: Vec<String> = ["-o", "stream-json"].map(String::from).to_vec();
        if let Some(model) = &spec.model {
            args.extend(["-m".to_string(), model.clone()]);
        }
        if spec.allow_all {
            args.push("-y".to_string());
        }
        if let Some(id) = &spec.thread_id {
            args.extend(["-r".to_string(), id.clone()]);
        }
        args.extend(spec.extra_args.iter().cloned());
        let stdin = if spec.prompt.len() <= MAX_PROMPT_ARG_BYTES {
            args.extend(["-p".to_string(), spec.prompt.clone()]);
            StdinMode::Null
        } else {
            args.extend(["-p".to_string(), STDIN_PROMPT_POINTER.to_string()]);
            StdinMode::Text(format!("{}\n\n", spec.prompt))
        };
        Ok(CommandSpec { program: program_or(&spec.program, "gemini"), args, env: spec.env.clone(), stdin })
    }

    fn parser(&self, spec: &RunSpec) -> Box<dyn StreamParser + Send> {
        Box::new(GeminiParser::new(spec.model.clone()))
    }

    fn check_credentials(&self, env: &dyn Fn(&str) -> Option<String>, home: &Path) -> CredentialCheck {
        if let Some(var) =
            first_env(env, &["GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_APPLICATION_CREDENTIALS"])
        {
            return CredentialCheck::found(var, "Gemini credential");
        }
        if first_env(env, &["GOOGLE_GENAI_USE_VERTEXAI"]).is_some()
            && first_env(env, &["GOOGLE_CLOUD_PROJECT"]).is_some()
        {
            return CredentialCheck::found("GOOGLE_GENAI_USE_VERTEXAI", "Vertex AI setting");
        }
        let dir = dir_from_env(env, "GEMINI_CLI_HOME", home.to_path_buf()).join(".gemini");
        let oauth = dir.join("oauth_creds.json");
        if read_small_json(&oauth).is_some_and(|v| has_material(&v)) {
            return CredentialCheck::found(oauth.display().to_string(), "Google sign-in");
        }
        let dotenv = dir.join(".env");
        let in_dotenv = std::fs::metadata(&dotenv).is_ok_and(|m| m.is_file() && m.len() < 1 << 20)
            && std::fs::read_to_string(&dotenv).is_ok_and(|text| {
                text.lines().any(|l| {
                    let l = l.trim().trim_start_matches("export ").trim();
                    ["GEMINI_API_KEY=", "GOOGLE_API_KEY="].iter().any(|k| {
                        l.strip_prefix(k).is_some_and(|v| !v.trim().trim_matches(['"', '\'']).is_empty())
                    })
                })
            });
        if in_dotenv {
            return CredentialCheck::found(dotenv.display().to_string(), "Gemini key");
        }
        CredentialCheck::missing(format!(
            "Gemini has no credentials: set GEMINI_API_KEY (from aistudio.google.com), or run `gemini` once \
             and sign in with Google (looked in the environment, {} and {})",
            oauth.display(),
            dotenv.display()
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
        let mut spec = RunSpec::new("-fix it", "/w");
        spec.model = Some("gemini-2.5-pro".into());
        spec.allow_all = true;
        spec.thread_id = Some("c8f1e2a4".into());
        let cmd = GeminiAdapter.command(&spec).unwrap();
        assert_eq!(
            cmd.args,
            ["-o", "stream-json", "-m", "gemini-2.5-pro", "-y", "-r", "c8f1e2a4", "-p", "-fix it"]
        );
        assert_eq!(cmd.stdin, StdinMode::Null);
        spec.prompt = "x".repeat(MAX_PROMPT_ARG_BYTES + 1);
        let cmd = GeminiAdapter.command(&spec).unwrap();
        assert_eq!(cmd.args.last().unwrap(), STDIN_PROMPT_POINTER);
        assert!(matches!(cmd.stdin, StdinMode::Text(ref t) if t.starts_with("xxx")));
    }

    #[test]
    fn credentials() {
        let home = tempfile::tempdir().unwrap();
        let none = |_: &str| None;
        assert!(!GeminiAdapter.check_credentials(&none, home.path()).ok);
        std::fs::create_dir_all(home.path().join(".gemini")).unwrap();
        std::fs::write(home.path().join(".gemini/.env"), "GEMINI_API_KEY=\n").unwrap();
        assert!(!GeminiAdapter.check_credentials(&none, home.path()).ok);
        std::fs::write(home.path().join(".gemini/.env"), "export GEMINI_API_KEY=\"abc\"\n").unwrap();
        assert!(GeminiAdapter.check_credentials(&none, home.path()).ok);
        let key = |k: &str| (k == "GEMINI_API_KEY").then(|| "k".to_string());
        assert_eq!(
            GeminiAdapter.check_credentials(&key, home.path()).source.as_deref(),
            Some("GEMINI_API_KEY")
        );
    }
}

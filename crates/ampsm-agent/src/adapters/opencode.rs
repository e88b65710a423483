//! OpenCode (agent-protocols.md §5): `opencode run --format json [-m provider/model] [-s <id>] <prompt>`.
//! `run` approves every tool by itself, so the `auto` and `full` policies add nothing (newer builds' skip
//! flag can go in `agents.opencode.args`); `read-only` runs OpenCode's built-in `plan` agent. A prompt that starts with `-` or is too long for one argument goes on stdin,
//! which `run` appends to its message.

use super::{
    MAX_PROMPT_ARG_BYTES, data_home, dir_from_env, first_env, has_material, program_or, read_small_json,
    read_small_jsonc,
};
use crate::adapter::{
    AgentAdapter, Capabilities, ContinueMode, CredentialCheck, CredentialContext, PolicySupport, StreamParser,
};
use crate::error::AgentError;
use crate::parsers::opencode::OpenCodeParser;
use crate::spec::{CommandSpec, RunSpec, StdinMode};
use ampsm_core::PermissionPolicy;
use serde_json::Value;

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
    "AWS_BEARER_TOKEN_BEDROCK",
    "AWS_ACCESS_KEY_ID",
];

/// The configs OpenCode reads, each with a label: `OPENCODE_CONFIG_CONTENT`, the file `OPENCODE_CONFIG`
/// names, the project's `opencode.json(c)` in the run's directory or a parent, and the global
/// `~/.config/opencode/opencode.json(c)` or `config.json`.
fn configs(ctx: &CredentialContext<'_>) -> Vec<(String, Value)> {
    let mut found = Vec::new();
    if let Some(text) = ctx.var("OPENCODE_CONFIG_CONTENT")
        && let Some(v) =
            serde_json::from_str(&text).ok().or_else(|| serde_json::from_str(&super::strip_jsonc(&text)).ok())
    {
        found.push(("OPENCODE_CONFIG_CONTENT".to_string(), v));
    }
    let mut paths = Vec::new();
    if let Some(p) = ctx.var("OPENCODE_CONFIG") {
        paths.push(std::path::PathBuf::from(p));
    }
    if let Some(cwd) = ctx.cwd {
        for dir in cwd.ancestors() {
            paths.push(dir.join("opencode.json"));
            paths.push(dir.join("opencode.jsonc"));
        }
    }
    let global = dir_from_env(ctx.env, "XDG_CONFIG_HOME", ctx.home.join(".config")).join("opencode");
    for name in ["opencode.json", "opencode.jsonc", "config.json"] {
        paths.push(global.join(name));
    }
    for path in paths {
        if let Some(v) = read_small_jsonc(&path) {
            found.push((path.display().to_string(), v));
        }
    }
    found
}

/// A provider in a config that carries its own credentials (`options.apiKey`, set or `{env:VAR}` with the
/// variable set) or points at its own server (`options.baseURL`, which may need no key): its source.
fn configured_provider(
    ctx: &CredentialContext<'_>,
    label: &str,
    config: &Value,
) -> Option<(String, &'static str)> {
    let providers = config.get("provider")?.as_object()?;
    for (id, p) in providers {
        let options = p.get("options");
        let key = options.and_then(|o| o.get("apiKey")).and_then(Value::as_str).map(str::trim).unwrap_or("");
        let usable = match key.strip_prefix("{env:").and_then(|k| k.strip_suffix('}')) {
            Some(var) => ctx.var(var.trim()).is_some(),
            None => !key.is_empty(),
        };
        if usable {
            return Some((format!("{label} (provider.{id}.options.apiKey)"), "provider key"));
        }
    }
    for (id, p) in providers {
        let base = p.get("options").and_then(|o| o.get("baseURL")).and_then(Value::as_str);
        if base.is_some_and(|b| !b.trim().is_empty()) {
            return Some((
                format!("{label} (provider.{id}.options.baseURL)"),
                "provider with its own server",
            ));
        }
    }
    None
}

/// Where OpenCode's credentials are: its stored logins, a provider's variable, or a config's provider.
fn opencode_credentials(ctx: &CredentialContext<'_>) -> CredentialCheck {
    let auth = data_home(ctx.env, ctx.home).join("opencode").join("auth.json");
    if read_small_json(&auth).is_some_and(|v| has_material(&v)) {
        return CredentialCheck::found(auth.display().to_string(), "OpenCode login");
    }
    if let Some(var) = first_env(ctx.env, PROVIDER_KEYS) {
        return CredentialCheck::found(var, "provider key");
    }
    // Any provider's `*_API_KEY` (Amp's key is not a model provider's).
    if let Some(var) = ctx
        .env_names
        .iter()
        .find(|k| k.ends_with("_API_KEY") && k.as_str() != "AMP_API_KEY" && ctx.var(k).is_some())
    {
        return CredentialCheck::found(var.clone(), "provider key");
    }
    for (label, config) in configs(ctx) {
        if let Some((source, what)) = configured_provider(ctx, &label, &config) {
            return CredentialCheck::found(source, what);
        }
    }
    CredentialCheck::missing(format!(
        "OpenCode has no provider credentials: run `opencode auth login`, or set a provider key such as \
         ANTHROPIC_API_KEY or OPENAI_API_KEY, or give a provider an options.apiKey in opencode.json (looked in \
         the environment, the OpenCode configs and {})",
        auth.display()
    ))
}

impl AgentAdapter for OpenCodeAdapter {
    fn name(&self) -> &'static str {
        "opencode"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            continue_mode: ContinueMode::Resume,
            interactive: false,
            reports_cost: true,
            credential_check: "$XDG_DATA_HOME/opencode/auth.json (~/.local/share/opencode/auth.json), a provider \
                               variable (any *_API_KEY, GITHUB_TOKEN, AWS credentials), or a provider with \
                               options.apiKey or its own baseURL in OPENCODE_CONFIG_CONTENT, OPENCODE_CONFIG, \
                               the project's opencode.json(c) or ~/.config/opencode; presence only \
                               (`opencode auth list` confirms)",
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
        if spec.permissions == PermissionPolicy::ReadOnly {
            args.extend(["--agent", "plan"].map(String::from));
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

    fn permission_support(&self, policy: PermissionPolicy) -> PolicySupport {
        match policy {
            PermissionPolicy::Auto => PolicySupport::Honoured {
                how: "`opencode run` approves edits and commands by itself (no sandbox: the same as full)",
            },
            PermissionPolicy::Ask => PolicySupport::Unsupported {
                why: "`opencode run` has no approval channel on its stream; use auto or read-only",
            },
            PermissionPolicy::ReadOnly => PolicySupport::Honoured {
                how: "--agent plan: OpenCode's built-in planning agent, whose edits and commands are denied",
            },
            PermissionPolicy::Full => {
                PolicySupport::Honoured { how: "`opencode run` as is: every tool call runs, no sandbox" }
            }
        }
    }

    fn check_credentials_in(&self, ctx: &CredentialContext<'_>) -> CredentialCheck {
        opencode_credentials(ctx)
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

    fn check_in(
        env: &[(&str, &str)],
        home: &std::path::Path,
        cwd: Option<&std::path::Path>,
    ) -> CredentialCheck {
        let names: Vec<String> = env.iter().map(|(k, _)| k.to_string()).collect();
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let lookup = move |k: &str| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        let ctx = CredentialContext { env: &lookup, env_names: &names, home, cwd, args: &[] };
        OpenCodeAdapter.check_credentials_in(&ctx)
    }

    #[test]
    fn any_provider_key_variable_counts() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        for var in ["OPENROUTER_API_KEY", "GEMINI_API_KEY", "TOGETHER_API_KEY", "GITHUB_TOKEN"] {
            let check = check_in(&[(var, "v-secret")], h, None);
            assert_eq!(check.source.as_deref(), Some(var));
            assert!(!format!("{check:?}").contains("v-secret"));
        }
        assert!(!check_in(&[("TOGETHER_API_KEY", " ")], h, None).ok);
        assert!(!check_in(&[("AMP_API_KEY", "sgamp")], h, None).ok, "Amp's key is not a provider's");
    }

    #[test]
    fn providers_in_the_configs() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        let inline = r#"{"provider":{"mine":{"options":{"apiKey":"k-secret"}}}}"#;
        let check = check_in(&[("OPENCODE_CONFIG_CONTENT", inline)], h, None);
        assert_eq!(check.source.as_deref(), Some("OPENCODE_CONFIG_CONTENT (provider.mine.options.apiKey)"));
        assert!(!format!("{check:?}").contains("k-secret"));
        // `{env:VAR}` counts when the variable is set.
        let by_env = r#"{"provider":{"mine":{"options":{"apiKey":"{env:MY_LLM}"}}}}"#;
        assert!(!check_in(&[("OPENCODE_CONFIG_CONTENT", by_env)], h, None).ok);
        assert!(check_in(&[("OPENCODE_CONFIG_CONTENT", by_env), ("MY_LLM", "x")], h, None).ok);
        // The global config (JSONC), and the project's.
        std::fs::create_dir_all(h.join(".config/opencode")).unwrap();
        std::fs::write(
            h.join(".config/opencode/opencode.jsonc"),
            "{\n  // local server\n  \"provider\": {\"ollama\": {\"options\": {\"baseURL\": \"http://127.0.0.1:11434/v1\"},},},\n}",
        )
        .unwrap();
        let check = check_in(&[], h, None);
        assert!(check.ok && check.source.unwrap().ends_with("(provider.ollama.options.baseURL)"));
        std::fs::remove_file(h.join(".config/opencode/opencode.jsonc")).unwrap();
        let project = tempfile::tempdir().unwrap();
        let sub = project.path().join("sub");
        std::fs::create_dir_all(&sub).unwrap();
        assert!(!check_in(&[], h, Some(&sub)).ok);
        std::fs::write(project.path().join("opencode.json"), inline).unwrap();
        assert!(check_in(&[], h, Some(&sub)).ok);
    }
}

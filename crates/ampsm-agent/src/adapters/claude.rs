//! Claude Code (agent-protocols.md §2): `claude -p --output-format stream-json --verbose` with the prompt on
//! stdin, `--resume <id>`, `--model`, `--dangerously-skip-permissions` (with `IS_SANDBOX=1` when running as
//! root, which the CLI otherwise refuses), `--input-format stream-json` for chat.

use super::{dir_from_env, has_material, program_or, read_small_json, truthy};
use crate::adapter::{
    AgentAdapter, Capabilities, ContinueMode, CredentialCheck, CredentialContext, PolicySupport, StreamParser,
};
use crate::error::AgentError;
use crate::parsers::claude::ClaudeParser;
use crate::process::MessageFormat;
use crate::spec::{CommandSpec, RunSpec, StdinMode};
use ampsm_core::PermissionPolicy;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The Claude Code CLI.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClaudeAdapter;

fn running_as_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn build(spec: &RunSpec, interactive: bool, as_root: bool) -> CommandSpec {
    let ask = spec.permissions == PermissionPolicy::Ask && !interactive;
    let mut args = vec!["-p".to_string()];
    if interactive || ask {
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
    // The mode is always given, so a `defaultMode` in the user's settings cannot loosen the policy.
    match spec.permissions {
        PermissionPolicy::Auto => {
            args.extend(["--permission-mode", "acceptEdits", "--allowedTools", "Bash"].map(String::from))
        }
        PermissionPolicy::ReadOnly => args.extend(["--permission-mode", "plan"].map(String::from)),
        PermissionPolicy::Ask => {
            args.extend(["--permission-mode", "default"].map(String::from));
            if ask {
                args.extend(["--permission-prompt-tool", "stdio"].map(String::from));
            }
        }
        PermissionPolicy::Full => {
            args.push("--dangerously-skip-permissions".to_string());
            if as_root && !env.iter().any(|(k, _)| k == "IS_SANDBOX") {
                env.push(("IS_SANDBOX".to_string(), "1".to_string()));
            }
        }
    }
    args.extend(spec.extra_args.iter().cloned());
    let stdin = if interactive {
        StdinMode::Interactive
    } else if ask {
        StdinMode::Conversation(MessageFormat::ContentString.line(&spec.prompt))
    } else {
        StdinMode::Text(spec.prompt.clone())
    };
    CommandSpec { program: program_or(&spec.program, "claude"), args, env, stdin }
}

/// A Claude credential among a set of variables (the environment, or the `env` of a settings file): the
/// variable and what it is. Bedrock and Vertex count only when switched on with a true value (`1`,
/// `true`); `0` or `false` is off.
fn env_credential(get: &dyn Fn(&str) -> Option<String>) -> Option<(&'static str, &'static str)> {
    let set = |k: &str| get(k).is_some_and(|v| !v.trim().is_empty());
    if set("ANTHROPIC_API_KEY") {
        return Some(("ANTHROPIC_API_KEY", "Anthropic API key"));
    }
    if set("CLAUDE_CODE_OAUTH_TOKEN") {
        return Some(("CLAUDE_CODE_OAUTH_TOKEN", "Claude OAuth token"));
    }
    if set("ANTHROPIC_AUTH_TOKEN") {
        let what = if set("ANTHROPIC_BASE_URL") {
            "Anthropic auth token (for the server in ANTHROPIC_BASE_URL)"
        } else {
            "Anthropic auth token"
        };
        return Some(("ANTHROPIC_AUTH_TOKEN", what));
    }
    if truthy(get("CLAUDE_CODE_USE_BEDROCK").as_deref()) {
        return Some(("CLAUDE_CODE_USE_BEDROCK", "Amazon Bedrock switch (AWS credentials are used)"));
    }
    if truthy(get("CLAUDE_CODE_USE_VERTEX").as_deref()) {
        return Some(("CLAUDE_CODE_USE_VERTEX", "Google Vertex AI switch (Google credentials are used)"));
    }
    None
}

/// The settings files Claude Code reads for a run, most specific first: `--settings <file|json>` in the
/// extra arguments, the project's `.claude/settings.local.json` and `.claude/settings.json` in the run's
/// directory, and the user's `settings.json`. Each with a label and its content, when readable.
fn settings_files(ctx: &CredentialContext<'_>, config_dir: &Path) -> Vec<(String, Value)> {
    let mut files = Vec::new();
    let mut args = ctx.args.iter();
    while let Some(arg) = args.next() {
        let value = match arg.strip_prefix("--settings=") {
            Some(v) => Some(v.to_string()),
            None if arg == "--settings" => args.next().cloned(),
            None => None,
        };
        let Some(value) = value else { continue };
        if value.trim_start().starts_with('{') {
            if let Ok(v) = serde_json::from_str(&value) {
                files.push(("--settings (in the agent's args)".to_string(), v));
            }
        } else {
            let path = match ctx.cwd {
                Some(cwd) if Path::new(&value).is_relative() => cwd.join(&value),
                _ => PathBuf::from(&value),
            };
            if let Some(v) = read_small_json(&path) {
                files.push((path.display().to_string(), v));
            }
        }
    }
    let mut paths = Vec::new();
    if let Some(cwd) = ctx.cwd {
        paths.push(cwd.join(".claude").join("settings.local.json"));
        paths.push(cwd.join(".claude").join("settings.json"));
    }
    paths.push(config_dir.join("settings.json"));
    for path in paths {
        if let Some(v) = read_small_json(&path) {
            files.push((path.display().to_string(), v));
        }
    }
    files
}

/// Where Claude Code's credentials for a run are, if anywhere: the environment, then the settings files
/// (their `env` entries and `apiKeyHelper`), then the stored login.
fn claude_credentials(ctx: &CredentialContext<'_>) -> CredentialCheck {
    if let Some((var, what)) = env_credential(ctx.env) {
        return CredentialCheck::found(var, what);
    }
    let dir = dir_from_env(ctx.env, "CLAUDE_CONFIG_DIR", ctx.home.join(".claude"));
    for (label, settings) in settings_files(ctx, &dir) {
        let env = settings.get("env").and_then(Value::as_object).cloned().unwrap_or_default();
        let get = move |k: &str| env.get(k).and_then(Value::as_str).map(str::to_string);
        if let Some((var, what)) = env_credential(&get) {
            return CredentialCheck::found(format!("{label} (env.{var})"), what);
        }
        if settings.get("apiKeyHelper").and_then(Value::as_str).is_some_and(|h| !h.trim().is_empty()) {
            return CredentialCheck::found(format!("{label} (apiKeyHelper)"), "Claude key helper");
        }
    }
    let creds = dir.join(".credentials.json");
    if read_small_json(&creds).is_some_and(|v| has_material(&v)) {
        return CredentialCheck::found(creds.display().to_string(), "Claude login");
    }
    // An API key stored by `/login` in the global config file (older versions keep it there).
    let global = match ctx.var("CLAUDE_CONFIG_DIR") {
        Some(_) => dir.join(".claude.json"),
        None => ctx.home.join(".claude.json"),
    };
    if read_small_json(&global)
        .is_some_and(|v| v.get("primaryApiKey").and_then(Value::as_str).is_some_and(|k| !k.trim().is_empty()))
    {
        return CredentialCheck::found(format!("{} (primaryApiKey)", global.display()), "Claude API key");
    }
    let off: Vec<&str> = ["CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX"]
        .into_iter()
        .filter(|k| ctx.var(k).is_some())
        .collect();
    let off = if off.is_empty() {
        String::new()
    } else {
        format!("; {} is set but not to a true value (1 or true), so it is off", off.join(" and "))
    };
    CredentialCheck::missing(format!(
        "Claude Code is not logged in: run `claude` then `/login` (or `claude setup-token` and set \
         CLAUDE_CODE_OAUTH_TOKEN), or set ANTHROPIC_API_KEY, ANTHROPIC_AUTH_TOKEN, CLAUDE_CODE_USE_BEDROCK=1 \
         or CLAUDE_CODE_USE_VERTEX=1, or an apiKeyHelper or env in settings.json (looked in the environment, \
         the settings files and {}; on macOS the login lives in the keychain, check it with `claude auth \
         status`){off}",
        creds.display()
    ))
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
            credential_check: "ANTHROPIC_API_KEY, CLAUDE_CODE_OAUTH_TOKEN or ANTHROPIC_AUTH_TOKEN, or \
                               CLAUDE_CODE_USE_BEDROCK/CLAUDE_CODE_USE_VERTEX set to a true value, in the \
                               environment or in the `env` of a settings file; an apiKeyHelper in a settings \
                               file (--settings, the project's .claude/settings.local.json and \
                               .claude/settings.json, $CLAUDE_CONFIG_DIR or ~/.claude settings.json); else the \
                               login in .credentials.json; presence only (`claude auth status` confirms)",
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

    fn check_credentials_in(&self, ctx: &CredentialContext<'_>) -> CredentialCheck {
        claude_credentials(ctx)
    }

    fn version_args(&self) -> Vec<String> {
        vec!["--version".to_string()]
    }

    fn interactive_command(&self, spec: &RunSpec) -> Result<CommandSpec, AgentError> {
        if spec.permissions == PermissionPolicy::Ask {
            return Err(AgentError::Unsupported {
                agent: "claude",
                what: "chat under the `ask` permission policy".to_string(),
                hint: ampsm_core::Hint::IterateOrOtherPolicy,
            });
        }
        Ok(build(spec, true, running_as_root()))
    }

    fn message_format(&self) -> MessageFormat {
        MessageFormat::ContentString
    }

    fn permission_support(&self, policy: PermissionPolicy) -> PolicySupport {
        let how = match policy {
            PermissionPolicy::Auto => {
                "--permission-mode acceptEdits --allowedTools Bash: edits inside the worktree and shell commands \
                 run unattended; writes outside it are denied (commands are sandboxed only if Claude Code's own \
                 sandbox is on in its settings)"
            }
            PermissionPolicy::Ask => {
                "--permission-prompt-tool stdio: each tool call that needs approval waits for approve/deny \
                 (stream-json control protocol, can_use_tool)"
            }
            PermissionPolicy::ReadOnly => {
                "--permission-mode plan: reads and plans; writes and commands are denied"
            }
            PermissionPolicy::Full => {
                "--dangerously-skip-permissions (IS_SANDBOX=1 as root): no check at all"
            }
        };
        PolicySupport::Honoured { how }
    }

    fn permission_answer(
        &self,
        request_id: &str,
        input: &Value,
        allow: bool,
        message: &str,
    ) -> Option<String> {
        let decision = if allow {
            serde_json::json!({"behavior": "allow", "updatedInput": input})
        } else {
            serde_json::json!({"behavior": "deny", "message": message})
        };
        let line = serde_json::json!({
            "type": "control_response",
            "response": {"subtype": "success", "request_id": request_id, "response": decision},
        });
        Some(line.to_string())
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
        assert_eq!(
            cmd.args,
            [
                "-p",
                "--output-format",
                "stream-json",
                "--verbose",
                "--permission-mode",
                "acceptEdits",
                "--allowedTools",
                "Bash"
            ]
        );
        assert_eq!(cmd.stdin, StdinMode::Text("hi".into()));
        spec.thread_id = Some("6b0d9f2e".into());
        spec.model = Some("opus".into());
        spec.permissions = PermissionPolicy::Full;
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
        spec.permissions = PermissionPolicy::ReadOnly;
        let cmd = build(&spec, false, true);
        assert_eq!(cmd.env_value("IS_SANDBOX"), None);
        assert_eq!(&cmd.args[cmd.args.len() - 2..], ["--permission-mode", "plan"]);
        let chat = build(&spec, true, false);
        assert_eq!(&chat.args[..3], ["-p", "--input-format", "stream-json"]);
        assert_eq!(chat.stdin, StdinMode::Interactive);
    }

    #[test]
    fn ask_runs_over_the_control_protocol() {
        let mut spec = RunSpec::new("fix it", "/w");
        spec.permissions = PermissionPolicy::Ask;
        let cmd = build(&spec, false, false);
        assert_eq!(&cmd.args[..3], ["-p", "--input-format", "stream-json"]);
        assert!(cmd.args.windows(2).any(|w| w == ["--permission-prompt-tool", "stdio"]), "{:?}", cmd.args);
        assert!(cmd.args.windows(2).any(|w| w == ["--permission-mode", "default"]), "{:?}", cmd.args);
        let StdinMode::Conversation(first) = &cmd.stdin else { panic!("{:?}", cmd.stdin) };
        let msg: Value = serde_json::from_str(first).unwrap();
        assert_eq!(msg["message"]["content"], "fix it");
        assert!(ClaudeAdapter.interactive_command(&spec).is_err());
        let input = serde_json::json!({"file_path": "/w/a.txt"});
        let allow: Value =
            serde_json::from_str(&ClaudeAdapter.permission_answer("r1", &input, true, "").unwrap()).unwrap();
        assert_eq!(allow["type"], "control_response");
        assert_eq!(allow["response"]["request_id"], "r1");
        assert_eq!(allow["response"]["response"]["behavior"], "allow");
        assert_eq!(allow["response"]["response"]["updatedInput"], input);
        let deny: Value =
            serde_json::from_str(&ClaudeAdapter.permission_answer("r2", &input, false, "no").unwrap())
                .unwrap();
        assert_eq!(deny["response"]["response"], serde_json::json!({"behavior": "deny", "message": "no"}));
        for p in PermissionPolicy::ALL {
            assert!(ClaudeAdapter.permission_support(p).is_honoured());
        }
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

    fn check_in(env: &[(&str, &str)], home: &Path, cwd: Option<&Path>, args: &[&str]) -> CredentialCheck {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let lookup = move |k: &str| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let ctx = CredentialContext { env: &lookup, env_names: &[], home, cwd, args: &args };
        ClaudeAdapter.check_credentials_in(&ctx)
    }

    #[test]
    fn bedrock_and_vertex_count_only_when_switched_on() {
        let home = tempfile::tempdir().unwrap();
        for off in ["0", "false", "", "no"] {
            let check = check_in(&[("CLAUDE_CODE_USE_BEDROCK", off)], home.path(), None, &[]);
            assert!(!check.ok, "CLAUDE_CODE_USE_BEDROCK={off:?} is off");
            if !off.is_empty() {
                assert!(check.message.contains("CLAUDE_CODE_USE_BEDROCK is set but not to a true value"));
            }
        }
        for on in ["1", "true", "TRUE"] {
            let check = check_in(&[("CLAUDE_CODE_USE_BEDROCK", on)], home.path(), None, &[]);
            assert_eq!(check.source.as_deref(), Some("CLAUDE_CODE_USE_BEDROCK"), "{on}");
        }
        let check = check_in(
            &[("CLAUDE_CODE_USE_VERTEX", "0"), ("CLAUDE_CODE_USE_BEDROCK", "0")],
            home.path(),
            None,
            &[],
        );
        assert!(!check.ok);
        assert_eq!(
            check_in(&[("CLAUDE_CODE_USE_VERTEX", "1")], home.path(), None, &[]).source.as_deref(),
            Some("CLAUDE_CODE_USE_VERTEX")
        );
    }

    #[test]
    fn auth_token_with_a_base_url() {
        let home = tempfile::tempdir().unwrap();
        let env = [("ANTHROPIC_AUTH_TOKEN", "tok-secret"), ("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")];
        let check = check_in(&env, home.path(), None, &[]);
        assert!(check.ok);
        assert_eq!(check.source.as_deref(), Some("ANTHROPIC_AUTH_TOKEN"));
        assert!(check.message.contains("ANTHROPIC_BASE_URL"), "{}", check.message);
        let shown = format!("{check:?}");
        assert!(!shown.contains("tok-secret") && !shown.contains("127.0.0.1"), "{shown}");
    }

    #[test]
    fn project_settings_api_key_helper_and_settings_env() {
        let home = tempfile::tempdir().unwrap();
        let project = tempfile::tempdir().unwrap();
        let cwd = project.path();
        assert!(!check_in(&[], home.path(), Some(cwd), &[]).ok);
        std::fs::create_dir_all(cwd.join(".claude")).unwrap();
        std::fs::write(cwd.join(".claude/settings.json"), r#"{"apiKeyHelper":"~/bin/get-key.sh"}"#).unwrap();
        let check = check_in(&[], home.path(), Some(cwd), &[]);
        assert!(check.ok, "{}", check.message);
        assert!(check.source.unwrap().ends_with(".claude/settings.json (apiKeyHelper)"));
        // Without the run's directory the project's settings are not seen.
        assert!(!check_in(&[], home.path(), None, &[]).ok);
        std::fs::remove_file(cwd.join(".claude/settings.json")).unwrap();

        std::fs::write(
            cwd.join(".claude/settings.local.json"),
            r#"{"env":{"ANTHROPIC_API_KEY":"sk-ant-secret"}}"#,
        )
        .unwrap();
        let check = check_in(&[], home.path(), Some(cwd), &[]);
        assert!(check.ok);
        assert!(check.source.as_deref().unwrap().ends_with("settings.local.json (env.ANTHROPIC_API_KEY)"));
        assert!(!format!("{check:?}").contains("sk-ant-secret"));
        std::fs::write(cwd.join(".claude/settings.local.json"), r#"{"env":{"CLAUDE_CODE_USE_BEDROCK":"0"}}"#)
            .unwrap();
        assert!(!check_in(&[], home.path(), Some(cwd), &[]).ok, "an off switch in settings is off too");

        // The user's settings, and --settings in the agent's args (inline JSON or a file).
        std::fs::create_dir_all(home.path().join(".claude")).unwrap();
        std::fs::write(
            home.path().join(".claude/settings.json"),
            r#"{"env":{"CLAUDE_CODE_USE_VERTEX":"1"}}"#,
        )
        .unwrap();
        assert!(check_in(&[], home.path(), Some(cwd), &[]).ok);
        std::fs::remove_file(home.path().join(".claude/settings.json")).unwrap();
        let inline = check_in(&[], home.path(), Some(cwd), &["--settings", r#"{"apiKeyHelper":"x"}"#]);
        assert_eq!(inline.source.as_deref(), Some("--settings (in the agent's args) (apiKeyHelper)"));
        std::fs::write(cwd.join("s.json"), r#"{"apiKeyHelper":"x"}"#).unwrap();
        assert!(check_in(&[], home.path(), Some(cwd), &["--settings=s.json"]).ok);
    }

    #[test]
    fn a_key_stored_in_the_global_config() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join(".claude.json"), r#"{"primaryApiKey":""}"#).unwrap();
        assert!(!check_in(&[], home.path(), None, &[]).ok);
        std::fs::write(home.path().join(".claude.json"), r#"{"primaryApiKey":"sk-ant-x"}"#).unwrap();
        let check = check_in(&[], home.path(), None, &[]);
        assert!(check.ok);
        assert!(!format!("{check:?}").contains("sk-ant-x"));
    }
}

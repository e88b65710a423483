//! OpenAI Codex (agent-protocols.md §3): `codex exec --json --skip-git-repo-check [-m M] [sandbox] -` with
//! the prompt on stdin; `codex exec --json [opts] resume <id> -` to continue. Its credential check follows
//! the model provider the run will use (`$CODEX_HOME/config.toml`, its profiles, and `-c`/`--profile`/
//! `--oss` in the extra arguments): OpenAI's login or key, a custom provider's `env_key`, or nothing.

use super::{dir_from_env, has_material, program_or, read_dotenv, read_small_json, read_small_text};
use crate::adapter::{
    AgentAdapter, Capabilities, ContinueMode, CredentialCheck, CredentialContext, PolicySupport, StreamParser,
};
use crate::error::AgentError;
use crate::parsers::codex::CodexParser;
use crate::spec::{CommandSpec, RunSpec, StdinMode};
use ampsm_core::{PermissionPolicy, TokenUsage};
use std::path::Path;
use toml::{Table, Value};

/// The Codex CLI.
#[derive(Debug, Clone, Copy, Default)]
pub struct CodexAdapter;

/// Providers built into Codex that run locally and need no key.
const LOCAL_PROVIDERS: &[&str] = &["oss", "ollama", "lmstudio"];

/// What the extra arguments of a run say about Codex's configuration.
#[derive(Default)]
struct CodexArgs {
    /// `-c key=value` / `--config key=value`, in order.
    overrides: Vec<(String, String)>,
    /// `-p NAME` / `--profile NAME`.
    profile: Option<String>,
    /// `--oss`: the local open-source provider.
    oss: bool,
    /// `--ignore-user-config`: config.toml is not read.
    ignore_user_config: bool,
}

fn parse_args(args: &[String]) -> CodexArgs {
    let mut out = CodexArgs::default();
    let mut it = args.iter();
    let override_ = |text: &str, out: &mut CodexArgs| {
        if let Some((k, v)) = text.split_once('=') {
            out.overrides.push((k.trim().to_string(), v.trim().to_string()));
        }
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-c" | "--config" => {
                if let Some(v) = it.next() {
                    override_(v, &mut out);
                }
            }
            "-p" | "--profile" => out.profile = it.next().cloned(),
            "--oss" => out.oss = true,
            "--ignore-user-config" => out.ignore_user_config = true,
            "--" => break,
            a => {
                if let Some(v) = a.strip_prefix("--config=") {
                    override_(v, &mut out);
                } else if let Some(v) = a.strip_prefix("--profile=") {
                    out.profile = Some(v.to_string());
                } else if let Some(v) = a.strip_prefix("-c").filter(|_| !a.starts_with("--")) {
                    override_(v.strip_prefix('=').unwrap_or(v), &mut out);
                } else if let Some(v) = a.strip_prefix("-p").filter(|_| !a.starts_with("--")) {
                    out.profile = Some(v.strip_prefix('=').unwrap_or(v).to_string());
                }
            }
        }
    }
    out
}

/// Sets a dotted key (`model_providers.x.env_key`) in `table`, creating the tables on the way. The value
/// is read as TOML, and taken as a plain string when it is not TOML (as Codex does).
fn apply_override(table: &mut Table, key: &str, raw: &str) {
    let value = format!("v = {raw}")
        .parse::<Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(raw.trim_matches(['"', '\'']).to_string()));
    let parts: Vec<&str> = key.split('.').map(|p| p.trim().trim_matches(['"', '\''])).collect();
    let Some((last, path)) = parts.split_last() else { return };
    let mut current = table;
    for part in path {
        let entry = current.entry(part.to_string()).or_insert_with(|| Value::Table(Table::new()));
        if !entry.is_table() {
            *entry = Value::Table(Table::new());
        }
        let Value::Table(next) = entry else { return };
        current = next;
    }
    current.insert(last.to_string(), value);
}

/// `$CODEX_HOME/config.toml` as a table, and a note when it exists but is not TOML (then it counts as
/// empty). The note gives the line, never the file's text (it may hold a token).
fn read_config(path: &Path) -> (Table, Option<String>) {
    let Some(text) = read_small_text(path) else { return (Table::new(), None) };
    match text.parse::<Table>() {
        Ok(t) => (t, None),
        Err(e) => {
            let line =
                e.span().and_then(|s| text.get(..s.start)).map(|before| before.matches('\n').count() + 1);
            let at = line.map(|l| format!(" (line {l})")).unwrap_or_default();
            (
                Table::new(),
                Some(format!(
                    "{} is not valid TOML{at}, so it was ignored here (Codex itself will refuse it)",
                    path.display()
                )),
            )
        }
    }
}

fn str_of<'a>(t: &'a Table, key: &str) -> Option<&'a str> {
    t.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

/// Where Codex's credentials for a run are, following the model provider the run will use.
fn codex_credentials(ctx: &CredentialContext<'_>) -> CredentialCheck {
    let codex_home = dir_from_env(ctx.env, "CODEX_HOME", ctx.home.join(".codex"));
    let config_path = codex_home.join("config.toml");
    let args = parse_args(ctx.args);
    let (mut config, note) =
        if args.ignore_user_config { (Table::new(), None) } else { read_config(&config_path) };
    for (key, value) in &args.overrides {
        apply_override(&mut config, key, value);
    }
    // Codex also loads `$CODEX_HOME/.env` (but not its CODEX_* variables).
    let dotenv = codex_home.join(".env");
    let dotenv_vars = read_dotenv(&dotenv).unwrap_or_default();
    let find_var = |var: &str| -> Option<String> {
        if ctx.var(var).is_some() {
            Some(var.to_string())
        } else if !var.starts_with("CODEX_") && dotenv_vars.get(var).is_some_and(|v| !v.trim().is_empty()) {
            Some(format!("{} ({var})", dotenv.display()))
        } else {
            None
        }
    };
    let with_note = |mut check: CredentialCheck| {
        if let Some(n) = &note {
            check.message = format!("{}; note: {n}", check.message);
        }
        check
    };

    let profile_name = args.profile.clone().or_else(|| str_of(&config, "profile").map(str::to_string));
    let profile = match &profile_name {
        Some(name) => {
            match config
                .get("profiles")
                .and_then(Value::as_table)
                .and_then(|p| p.get(name))
                .and_then(Value::as_table)
            {
                Some(p) => Some(p),
                None => {
                    return with_note(CredentialCheck::missing(format!(
                        "Codex's profile `{name}` is not defined: add [profiles.{name}] to {} or pick another \
                         profile",
                        config_path.display()
                    )));
                }
            }
        }
        None => None,
    };
    let provider = if args.oss {
        "oss".to_string()
    } else {
        profile
            .and_then(|p| str_of(p, "model_provider"))
            .or_else(|| str_of(&config, "model_provider"))
            .unwrap_or("openai")
            .to_string()
    };
    let chosen_by = match (&profile_name, profile.and_then(|p| str_of(p, "model_provider"))) {
        _ if args.oss => "--oss".to_string(),
        (Some(name), Some(_)) => format!("profile `{name}`"),
        _ if provider == "openai" => String::new(),
        _ => "model_provider".to_string(),
    };

    if LOCAL_PROVIDERS.contains(&provider.as_str()) {
        return with_note(CredentialCheck {
            ok: true,
            source: None,
            message: format!("Codex uses the local provider `{provider}` ({chosen_by}); no key needed"),
        });
    }
    if provider != "openai" {
        let Some(def) =
            config.get("model_providers").and_then(Value::as_table).and_then(|m| m.get(&provider))
        else {
            return with_note(CredentialCheck::missing(format!(
                "Codex's model provider `{provider}` ({chosen_by}) is not defined: add \
                 [model_providers.{provider}] to {}",
                config_path.display()
            )));
        };
        let def = def.as_table().cloned().unwrap_or_default();
        let requires_openai = def.get("requires_openai_auth").and_then(Value::as_bool).unwrap_or(false);
        if !requires_openai {
            if let Some(var) = str_of(&def, "env_key") {
                return with_note(match find_var(var) {
                    Some(source) => {
                        CredentialCheck::found(source, &format!("key of model provider `{provider}`"))
                    }
                    None => CredentialCheck::missing(format!(
                        "Codex's model provider `{provider}` ({chosen_by}) reads its key from {var}, which is not \
                         set: set {var} in the environment or in agents.codex.env"
                    )),
                });
            }
            if str_of(&def, "experimental_bearer_token").is_some() {
                return with_note(CredentialCheck::found(
                    format!(
                        "{} (model_providers.{provider}.experimental_bearer_token)",
                        config_path.display()
                    ),
                    "bearer token",
                ));
            }
            return with_note(CredentialCheck {
                ok: true,
                source: None,
                message: format!(
                    "Codex's model provider `{provider}` ({chosen_by}) has no env_key: no key needed"
                ),
            });
        }
    }

    // OpenAI itself (or a provider that uses OpenAI's login).
    for var in ["CODEX_API_KEY", "OPENAI_API_KEY"] {
        if let Some(source) = find_var(var) {
            return with_note(CredentialCheck::found(source, "OpenAI key"));
        }
    }
    let auth = codex_home.join("auth.json");
    if read_small_json(&auth).is_some_and(|v| has_material(&v)) {
        return with_note(CredentialCheck::found(auth.display().to_string(), "Codex login"));
    }
    if provider == "openai" && ctx.var("OPENAI_BASE_URL").is_some() {
        return with_note(CredentialCheck {
            ok: true,
            source: Some("OPENAI_BASE_URL".to_string()),
            message: "no OpenAI key, but OPENAI_BASE_URL points Codex at another server, which may need none"
                .to_string(),
        });
    }
    let for_provider =
        if provider == "openai" { String::new() } else { format!(" (model provider `{provider}` uses it)") };
    with_note(CredentialCheck::missing(format!(
        "Codex is not logged in{for_provider}: run `codex login` (or `printenv OPENAI_API_KEY | codex login \
         --with-api-key`), set CODEX_API_KEY, or configure a model_provider with an env_key in {} (looked in \
         the environment, {} and {})",
        config_path.display(),
        dotenv.display(),
        auth.display()
    )))
}

impl AgentAdapter for CodexAdapter {
    fn name(&self) -> &'static str {
        "codex"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            continue_mode: ContinueMode::Resume,
            interactive: false,
            reports_cost: false,
            credential_check: "the model provider the run uses ($CODEX_HOME/config.toml, its profile, -c/--profile/\
                               --oss in agents.codex.args): a custom provider's env_key variable (none needed \
                               without one, or for local providers); for OpenAI CODEX_API_KEY or OPENAI_API_KEY \
                               (also in $CODEX_HOME/.env), else $CODEX_HOME/auth.json, else OPENAI_BASE_URL \
                               pointing at another server; presence only (`codex login status` confirms)",
        }
    }

    fn command(&self, spec: &RunSpec) -> Result<CommandSpec, AgentError> {
        let mut args: Vec<String> = ["exec", "--json", "--skip-git-repo-check"].map(String::from).to_vec();
        if let Some(model) = &spec.model {
            args.extend(["-m".to_string(), model.clone()]);
        }
        match spec.permissions {
            PermissionPolicy::Full => args.push("--dangerously-bypass-approvals-and-sandbox".to_string()),
            PermissionPolicy::ReadOnly => args.extend(["-s", "read-only"].map(String::from)),
            // `ask` is refused at `new` (see `permission_support`); a run that gets here anyway keeps the
            // sandbox.
            PermissionPolicy::Auto | PermissionPolicy::Ask => {
                args.extend(["-s", "workspace-write"].map(String::from))
            }
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

    fn permission_support(&self, policy: PermissionPolicy) -> PolicySupport {
        match policy {
            PermissionPolicy::Auto => PolicySupport::Honoured {
                how: "-s workspace-write: Codex's sandbox lets it edit the worktree and run commands there \
                      (no network, nothing written outside it)",
            },
            PermissionPolicy::Ask => PolicySupport::Unsupported {
                why: "`codex exec` never asks for approval (it has no approval channel on its stream); use \
                      auto (its workspace-write sandbox) or read-only",
            },
            PermissionPolicy::ReadOnly => PolicySupport::Honoured {
                how: "-s read-only: Codex's sandbox refuses every write; refused patches are recorded as denied",
            },
            PermissionPolicy::Full => PolicySupport::Honoured {
                how: "--dangerously-bypass-approvals-and-sandbox: no sandbox and no approval at all",
            },
        }
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

    fn check_credentials_in(&self, ctx: &CredentialContext<'_>) -> CredentialCheck {
        codex_credentials(ctx)
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
        spec.permissions = PermissionPolicy::ReadOnly;
        let cmd = CodexAdapter.command(&spec).unwrap();
        assert_eq!(cmd.args, ["exec", "--json", "--skip-git-repo-check", "-s", "read-only", "-"]);
        assert!(!CodexAdapter.permission_support(PermissionPolicy::Ask).is_honoured());
        spec.model = Some("gpt-5".into());
        spec.permissions = PermissionPolicy::Full;
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

    fn check_in(env: &[(&str, &str)], home: &Path, args: &[&str]) -> CredentialCheck {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let lookup = move |k: &str| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let ctx = CredentialContext { env: &lookup, env_names: &[], home, cwd: None, args: &args };
        CodexAdapter.check_credentials_in(&ctx)
    }

    fn write_config(home: &Path, text: &str) {
        std::fs::create_dir_all(home.join(".codex")).unwrap();
        std::fs::write(home.join(".codex/config.toml"), text).unwrap();
    }

    const AZURE: &str = r#"
model = "gpt-5"
model_provider = "azure"

[model_providers.azure]
name = "Azure"
base_url = "https://example.openai.azure.com/openai"
env_key = "AZURE_OPENAI_API_KEY"
wire_api = "responses"
"#;

    #[test]
    fn a_custom_provider_needs_its_env_key_and_nothing_else() {
        let home = tempfile::tempdir().unwrap();
        write_config(home.path(), AZURE);
        let check = check_in(&[], home.path(), &[]);
        assert!(!check.ok);
        assert!(
            check.message.contains("`azure`") && check.message.contains("AZURE_OPENAI_API_KEY"),
            "{check:?}"
        );
        assert!(!check.message.contains("not logged in"), "{check:?}");
        // An OpenAI key does not help a provider that reads another variable.
        assert!(!check_in(&[("OPENAI_API_KEY", "sk-x")], home.path(), &[]).ok);
        let check = check_in(&[("AZURE_OPENAI_API_KEY", "az-secret")], home.path(), &[]);
        assert!(check.ok, "{check:?}");
        assert_eq!(check.source.as_deref(), Some("AZURE_OPENAI_API_KEY"));
        assert!(!format!("{check:?}").contains("az-secret"));
        // Codex's own .env counts.
        std::fs::write(home.path().join(".codex/.env"), "AZURE_OPENAI_API_KEY=az-secret\n").unwrap();
        let check = check_in(&[], home.path(), &[]);
        assert!(check.ok && check.source.unwrap().contains(".codex/.env"));
        // CODEX_HOME moves everything.
        let other = tempfile::tempdir().unwrap();
        let dir = other.path().display().to_string();
        assert!(!check_in(&[("CODEX_HOME", &dir)], home.path(), &[]).ok, "no config there: OpenAI, no key");
    }

    #[test]
    fn a_provider_without_env_key_needs_no_key() {
        let home = tempfile::tempdir().unwrap();
        write_config(
            home.path(),
            "model_provider = \"local\"\n[model_providers.local]\nbase_url = \"http://127.0.0.1:8080/v1\"\n\
             requires_openai_auth = false\n",
        );
        let check = check_in(&[], home.path(), &[]);
        assert!(check.ok, "{check:?}");
        assert!(check.message.contains("no key needed"));
        // One that asks for OpenAI's login needs it.
        write_config(
            home.path(),
            "model_provider = \"proxy\"\n[model_providers.proxy]\nbase_url = \"http://x\"\nrequires_openai_auth = true\n",
        );
        assert!(!check_in(&[], home.path(), &[]).ok);
        assert!(check_in(&[("OPENAI_API_KEY", "k")], home.path(), &[]).ok);
        // The built-in local providers and --oss need nothing.
        write_config(home.path(), "model_provider = \"ollama\"\n");
        assert!(check_in(&[], home.path(), &[]).ok);
        write_config(home.path(), "");
        assert!(!check_in(&[], home.path(), &[]).ok);
        assert!(check_in(&[], home.path(), &["--oss"]).ok);
        // A provider that is named but not defined is reported as such.
        write_config(home.path(), "model_provider = \"nowhere\"\n");
        let check = check_in(&[("OPENAI_API_KEY", "k")], home.path(), &[]);
        assert!(!check.ok && check.message.contains("[model_providers.nowhere]"), "{check:?}");
    }

    #[test]
    fn profiles_and_overrides_in_the_agents_args_pick_the_provider() {
        let home = tempfile::tempdir().unwrap();
        let config = format!(
            "{}\n[model_providers.openrouter]\nbase_url = \"https://openrouter.ai/api/v1\"\n\
             env_key = \"OPENROUTER_API_KEY\"\n[profiles.or]\nmodel_provider = \"openrouter\"\n\
             [profiles.plain]\nmodel = \"gpt-5\"\n",
            AZURE.replace("model_provider = \"azure\"\n", "")
        );
        write_config(home.path(), &config);
        let or_key = [("OPENROUTER_API_KEY", "k")];
        // No provider set: OpenAI.
        assert!(!check_in(&or_key, home.path(), &[]).ok);
        // --profile / -p pick the profile's provider.
        assert!(check_in(&or_key, home.path(), &["--profile", "or"]).ok);
        assert!(check_in(&or_key, home.path(), &["-p", "or"]).ok);
        assert!(check_in(&or_key, home.path(), &["--profile=or"]).ok);
        assert!(!check_in(&[], home.path(), &["--profile", "or"]).ok);
        // A profile without a provider keeps the default.
        assert!(!check_in(&or_key, home.path(), &["-p", "plain"]).ok);
        // A profile that does not exist is named.
        let check = check_in(&or_key, home.path(), &["-p", "nope"]);
        assert!(!check.ok && check.message.contains("profile `nope`"), "{check:?}");
        // `profile = ...` in the config.
        write_config(home.path(), &format!("profile = \"or\"\n{config}"));
        assert!(check_in(&or_key, home.path(), &[]).ok);
        // -c model_provider=... (quoted TOML or bare), and providers defined with -c alone.
        write_config(home.path(), &config);
        assert!(check_in(&or_key, home.path(), &["-c", "model_provider=\"openrouter\""]).ok);
        assert!(check_in(&or_key, home.path(), &["--config", "model_provider=openrouter"]).ok);
        let az = [("AZURE_OPENAI_API_KEY", "k")];
        assert!(check_in(&az, home.path(), &["-c", "model_provider='azure'"]).ok);
        let empty = tempfile::tempdir().unwrap();
        let args = ["-c", "model_provider=\"mine\"", "-c", "model_providers.mine.env_key=\"MINE_KEY\""];
        assert!(!check_in(&[], empty.path(), &args).ok);
        assert!(check_in(&[("MINE_KEY", "x")], empty.path(), &args).ok);
        // --ignore-user-config: the file's provider no longer applies.
        write_config(home.path(), AZURE);
        assert!(check_in(&az, home.path(), &[]).ok);
        assert!(!check_in(&az, home.path(), &["--ignore-user-config"]).ok);
    }

    #[test]
    fn openai_base_url_is_understood() {
        let home = tempfile::tempdir().unwrap();
        let check = check_in(&[("OPENAI_BASE_URL", "http://user:pw@127.0.0.1:11434/v1")], home.path(), &[]);
        assert!(check.ok, "{check:?}");
        assert_eq!(check.source.as_deref(), Some("OPENAI_BASE_URL"));
        assert!(!format!("{check:?}").contains("pw@"), "the URL itself is not shown");
        // A key wins as the source.
        let both = [("OPENAI_BASE_URL", "http://127.0.0.1:1/v1"), ("OPENAI_API_KEY", "k")];
        assert_eq!(check_in(&both, home.path(), &[]).source.as_deref(), Some("OPENAI_API_KEY"));
        // It does not stand in for a custom provider's key.
        write_config(home.path(), AZURE);
        assert!(!check_in(&[("OPENAI_BASE_URL", "http://127.0.0.1:1/v1")], home.path(), &[]).ok);
    }

    #[test]
    fn a_broken_config_counts_as_none_and_is_mentioned() {
        let home = tempfile::tempdir().unwrap();
        write_config(home.path(), "model = \"gpt-5\"\nexperimental_bearer_token = \"tok-secret\n[oops\n");
        let check = check_in(&[], home.path(), &[]);
        assert!(!check.ok);
        assert!(check.message.contains("config.toml is not valid TOML (line "), "{check:?}");
        assert!(!check.message.contains("tok-secret"));
        let check = check_in(&[("OPENAI_API_KEY", "k")], home.path(), &[]);
        assert!(check.ok && check.message.contains("not valid TOML"), "{check:?}");
        assert!(!check.message.contains('\n'));
    }
}

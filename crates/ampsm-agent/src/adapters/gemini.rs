//! Gemini CLI (agent-protocols.md §4): headless `gemini -o stream-json [-m M] [-y] [-r <id>] -p <prompt>`.
//! A prompt too long for one argument goes on stdin (which Gemini prepends to the `-p` text) with a short
//! `-p` pointing at it.

use super::{
    MAX_PROMPT_ARG_BYTES, dir_from_env, has_material, program_or, read_dotenv, read_small_json, truthy,
};
use crate::adapter::{
    AgentAdapter, Capabilities, ContinueMode, CredentialCheck, CredentialContext, PolicySupport, StreamParser,
};
use crate::error::AgentError;
use crate::parsers::gemini::GeminiParser;
use crate::spec::{CommandSpec, RunSpec, StdinMode};
use ampsm_core::PermissionPolicy;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The Gemini CLI.
#[derive(Debug, Clone, Copy, Default)]
pub struct GeminiAdapter;

/// The `-p` text used when the prompt itself travels on stdin.
pub const STDIN_PROMPT_POINTER: &str = "Follow the instructions given above.";

/// The `.env` file Gemini loads, as it looks for it: `.gemini/.env`, then `.env`, in the run's directory
/// and each parent; then `~/.gemini/.env` and `~/.env`.
fn gemini_dotenv(cwd: Option<&Path>, home_gemini: &Path, home: &Path) -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(cwd) = cwd {
        for dir in cwd.ancestors() {
            candidates.push(dir.join(".gemini").join(".env"));
            candidates.push(dir.join(".env"));
        }
    }
    candidates.push(home_gemini.join(".env"));
    candidates.push(home.join(".env"));
    candidates.into_iter().find(|p| p.is_file())
}

/// Where Gemini's credentials for a run are: its variables (in the environment or the `.env` it loads),
/// Application Default Credentials with a project, or its cached Google sign-in.
fn gemini_credentials(ctx: &CredentialContext<'_>) -> CredentialCheck {
    let dir = dir_from_env(ctx.env, "GEMINI_CLI_HOME", ctx.home.to_path_buf()).join(".gemini");
    let dotenv = gemini_dotenv(ctx.cwd, &dir, ctx.home);
    let dotenv_vars: BTreeMap<String, String> = dotenv.as_deref().and_then(read_dotenv).unwrap_or_default();
    // The variable's value (the environment wins over the .env file, as in Gemini) and where it came from.
    let get = |k: &str| -> Option<(String, String)> {
        if let Some(v) = ctx.var(k) {
            return Some((v, k.to_string()));
        }
        let v = dotenv_vars.get(k).filter(|v| !v.trim().is_empty())?;
        Some((v.clone(), format!("{} ({k})", dotenv.as_deref().unwrap_or(Path::new(".env")).display())))
    };
    let source = |k: &str| get(k).map(|(_, s)| s);
    let on = |k: &str| truthy(get(k).map(|(v, _)| v).as_deref());

    // Application Default Credentials: the file GOOGLE_APPLICATION_CREDENTIALS names, or gcloud's.
    let gcloud = dir_from_env(ctx.env, "CLOUDSDK_CONFIG", ctx.home.join(".config").join("gcloud"))
        .join("application_default_credentials.json");
    let adc = match get("GOOGLE_APPLICATION_CREDENTIALS") {
        Some((path, src)) if Path::new(&path).is_file() => Some(src),
        Some(_) => None,
        None => {
            read_small_json(&gcloud).is_some_and(|v| has_material(&v)).then(|| gcloud.display().to_string())
        }
    };
    let project = source("GOOGLE_CLOUD_PROJECT");
    let oauth = dir.join("oauth_creds.json");
    let signed_in = read_small_json(&oauth).is_some_and(|v| has_material(&v));

    if let Some(src) = source("GEMINI_API_KEY") {
        return CredentialCheck::found(src, "Gemini API key");
    }
    if on("GOOGLE_GENAI_USE_VERTEXAI") {
        if let Some(src) = source("GOOGLE_API_KEY") {
            return CredentialCheck::found(src, "Vertex AI API key");
        }
        if let (Some(adc), Some(_)) = (&adc, &project) {
            return CredentialCheck::found(
                adc.clone(),
                "Vertex AI: Application Default Credentials with GOOGLE_CLOUD_PROJECT",
            );
        }
        return CredentialCheck::missing(format!(
            "Gemini is set to use Vertex AI (GOOGLE_GENAI_USE_VERTEXAI) but has no credentials for it: set \
             GOOGLE_API_KEY, or GOOGLE_CLOUD_PROJECT (and GOOGLE_CLOUD_LOCATION) with Application Default \
             Credentials (`gcloud auth application-default login`, or GOOGLE_APPLICATION_CREDENTIALS; looked \
             for {})",
            gcloud.display()
        ));
    }
    if signed_in {
        return CredentialCheck::found(oauth.display().to_string(), "Google sign-in");
    }
    if on("GOOGLE_GENAI_USE_GCA") {
        return CredentialCheck::missing(format!(
            "Gemini is set to sign in with Google (GOOGLE_GENAI_USE_GCA) but has no cached sign-in: run `gemini` \
             once and sign in (looked for {})",
            oauth.display()
        ));
    }
    if let (Some(adc), Some(_)) = (&adc, &project) {
        return CredentialCheck::found(
            adc.clone(),
            "Application Default Credentials with GOOGLE_CLOUD_PROJECT",
        );
    }
    let google_key = if source("GOOGLE_API_KEY").is_some() {
        "; GOOGLE_API_KEY is set, but Gemini uses it only with GOOGLE_GENAI_USE_VERTEXAI=true"
    } else {
        ""
    };
    let looked = match &dotenv {
        Some(p) => format!("the environment, {}, {} and {}", p.display(), oauth.display(), gcloud.display()),
        None => format!("the environment, {} and {}; no .env file", oauth.display(), gcloud.display()),
    };
    CredentialCheck::missing(format!(
        "Gemini has no credentials: set GEMINI_API_KEY (from aistudio.google.com; also read from ~/.gemini/.env \
         or ~/.env), or run `gemini` once and sign in with Google, or use Vertex AI (GOOGLE_GENAI_USE_VERTEXAI=true \
         with GOOGLE_API_KEY or GOOGLE_CLOUD_PROJECT and Application Default Credentials) (looked in \
         {looked}){google_key}"
    ))
}

impl AgentAdapter for GeminiAdapter {
    fn name(&self) -> &'static str {
        "gemini"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            continue_mode: ContinueMode::Resume,
            interactive: false,
            reports_cost: false,
            credential_check: "GEMINI_API_KEY; with GOOGLE_GENAI_USE_VERTEXAI=true, GOOGLE_API_KEY or \
                               GOOGLE_CLOUD_PROJECT with Application Default Credentials \
                               (GOOGLE_APPLICATION_CREDENTIALS or ~/.config/gcloud); the Google sign-in cached in \
                               ~/.gemini/oauth_creds.json; variables also from the .env Gemini loads (project \
                               .gemini/.env or .env, ~/.gemini/.env, ~/.env); presence only (no status command)",
        }
    }

    fn command(&self, spec: &RunSpec) -> Result<CommandSpec, AgentError> {
        let mut args: Vec<String> = ["-o", "stream-json"].map(String::from).to_vec();
        if let Some(model) = &spec.model {
            args.extend(["-m".to_string(), model.clone()]);
        }
        match spec.permissions {
            PermissionPolicy::Auto => args.extend(
                ["--approval-mode", "auto_edit", "--allowed-tools", "run_shell_command"].map(String::from),
            ),
            // Headless Gemini leaves out every tool that would need a confirmation.
            PermissionPolicy::ReadOnly | PermissionPolicy::Ask => {
                args.extend(["--approval-mode", "default"].map(String::from))
            }
            PermissionPolicy::Full => args.push("-y".to_string()),
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

    fn permission_support(&self, policy: PermissionPolicy) -> PolicySupport {
        match policy {
            PermissionPolicy::Auto => PolicySupport::Honoured {
                how: "--approval-mode auto_edit --allowed-tools run_shell_command: edits and shell commands run \
                      unattended (sandboxed only when Gemini's own --sandbox is configured)",
            },
            PermissionPolicy::Ask => PolicySupport::Unsupported {
                why: "headless Gemini cannot ask for approval (it leaves such tools out); use auto or read-only",
            },
            PermissionPolicy::ReadOnly => PolicySupport::Honoured {
                how: "--approval-mode default: headless Gemini leaves out every tool that writes or runs commands",
            },
            PermissionPolicy::Full => PolicySupport::Honoured { how: "-y (yolo): every tool call runs" },
        }
    }

    fn parser(&self, spec: &RunSpec) -> Box<dyn StreamParser + Send> {
        Box::new(GeminiParser::new(spec.model.clone()))
    }

    fn check_credentials_in(&self, ctx: &CredentialContext<'_>) -> CredentialCheck {
        gemini_credentials(ctx)
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
        spec.permissions = PermissionPolicy::Full;
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

    fn check_in(env: &[(&str, &str)], home: &Path, cwd: Option<&Path>) -> CredentialCheck {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let lookup = move |k: &str| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        let ctx = CredentialContext { env: &lookup, env_names: &[], home, cwd, args: &[] };
        GeminiAdapter.check_credentials_in(&ctx)
    }

    #[test]
    fn vertex_needs_its_switch_and_a_key_or_adc_with_a_project() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        let check = check_in(&[("GOOGLE_API_KEY", "g")], h, None);
        assert!(!check.ok && check.message.contains("only with GOOGLE_GENAI_USE_VERTEXAI"), "{check:?}");
        let check = check_in(&[("GOOGLE_API_KEY", "g"), ("GOOGLE_GENAI_USE_VERTEXAI", "true")], h, None);
        assert_eq!(check.source.as_deref(), Some("GOOGLE_API_KEY"));
        assert!(!check_in(&[("GOOGLE_API_KEY", "g"), ("GOOGLE_GENAI_USE_VERTEXAI", "false")], h, None).ok);
        // ADC: a credentials file named by GOOGLE_APPLICATION_CREDENTIALS, or gcloud's, with a project.
        let sa = h.join("sa.json");
        std::fs::write(&sa, r#"{"type":"service_account","private_key":"secret"}"#).unwrap();
        let sa = sa.display().to_string();
        assert!(!check_in(&[("GOOGLE_APPLICATION_CREDENTIALS", &sa)], h, None).ok, "no project");
        let check =
            check_in(&[("GOOGLE_APPLICATION_CREDENTIALS", &sa), ("GOOGLE_CLOUD_PROJECT", "p")], h, None);
        assert_eq!(check.source.as_deref(), Some("GOOGLE_APPLICATION_CREDENTIALS"));
        let missing =
            [("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent.json"), ("GOOGLE_CLOUD_PROJECT", "p")];
        assert!(!check_in(&missing, h, None).ok);
        let vertex = [("GOOGLE_GENAI_USE_VERTEXAI", "true"), ("GOOGLE_CLOUD_PROJECT", "p")];
        let check = check_in(&vertex, h, None);
        assert!(!check.ok && check.message.contains("application-default login"), "{check:?}");
        std::fs::create_dir_all(h.join(".config/gcloud")).unwrap();
        std::fs::write(
            h.join(".config/gcloud/application_default_credentials.json"),
            r#"{"type":"authorized_user","refresh_token":"r"}"#,
        )
        .unwrap();
        let check = check_in(&vertex, h, None);
        assert!(check.ok && check.source.unwrap().ends_with("application_default_credentials.json"));
        assert!(!format!("{:?}", check_in(&vertex, h, None)).contains("secret"));
    }

    #[test]
    fn cached_sign_in_and_the_env_files_gemini_reads() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        std::fs::create_dir_all(h.join(".gemini")).unwrap();
        std::fs::write(h.join(".gemini/oauth_creds.json"), r#"{"refresh_token":"r"}"#).unwrap();
        assert!(check_in(&[], h, None).ok);
        std::fs::remove_file(h.join(".gemini/oauth_creds.json")).unwrap();
        // ~/.env is read when there is no ~/.gemini/.env.
        std::fs::write(h.join(".env"), "GEMINI_API_KEY=abc\n").unwrap();
        let check = check_in(&[], h, None);
        assert!(check.ok && check.source.as_deref().unwrap().ends_with(".env (GEMINI_API_KEY)"), "{check:?}");
        assert!(!format!("{check:?}").contains("abc"));
        // The project's .env comes first, and only the first file found is read (as Gemini does).
        let project = tempfile::tempdir().unwrap();
        std::fs::write(project.path().join(".env"), "OTHER=1\n").unwrap();
        assert!(!check_in(&[], h, Some(project.path())).ok);
        std::fs::write(project.path().join(".env"), "GOOGLE_GENAI_USE_VERTEXAI=true\nGOOGLE_API_KEY=k\n")
            .unwrap();
        assert!(check_in(&[], h, Some(project.path())).ok);
    }
}

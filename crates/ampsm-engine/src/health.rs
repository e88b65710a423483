//! Health checks: `doctor` (git version, agents and their versions, credentials present, database and
//! config readable, leftovers: orphaned worktrees and branches, vanished worktrees, stale locks) and `verify-amp` (amp found, its version, a key present, and a cheap
//! authenticated call — `amp usage` — only when a key exists; never an agent run that bills).

use crate::{Engine, EngineError};
use ampsm_agent::{AgentAdapter, RunSpec};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a version or login probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Ok,
    Warn,
    Fail,
}

impl CheckStatus {
    /// `ok`, `warn` or `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Ok => "ok",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "fail",
        }
    }
}

impl std::fmt::Display for CheckStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How `verify-amp`'s authenticated call came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthCheck {
    Ok,
    Failed,
    /// No key: nothing was sent.
    Skipped,
}

impl std::fmt::Display for AuthCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AuthCheck::Ok => "ok",
            AuthCheck::Failed => "failed",
            AuthCheck::Skipped => "skipped",
        })
    }
}

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub status: CheckStatus,
    pub detail: String,
}

impl Check {
    fn new(name: impl Into<String>, status: CheckStatus, detail: impl Into<String>) -> Check {
        Check { name: name.into(), status, detail: detail.into() }
    }
}

/// Everything `doctor` found.
#[derive(Debug, Clone, Serialize)]
pub struct DoctorReport {
    pub checks: Vec<Check>,
    pub agents: Vec<AgentHealth>,
}

impl DoctorReport {
    /// Whether any check failed.
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.status == CheckStatus::Fail)
    }
}

/// What `doctor` knows about one agent.
#[derive(Debug, Clone, Serialize)]
pub struct AgentHealth {
    pub agent: String,
    pub program: String,
    pub found: Option<String>,
    pub version: Option<String>,
    pub credentials: bool,
    pub credentials_detail: String,
    /// Whether a run is refused when the credential check fails (Amp); otherwise it is only a warning.
    pub credentials_required: bool,
    /// How to install the agent's CLI, when there is a standard way.
    pub install_hint: Option<String>,
    pub capabilities: ampsm_agent::Capabilities,
}

/// What `verify-amp` found.
#[derive(Debug, Clone, Serialize)]
pub struct AmpVerification {
    pub program: String,
    pub found: Option<String>,
    pub version: Option<String>,
    pub key_present: bool,
    pub key_source: Option<String>,
    pub auth_check: AuthCheck,
    pub auth_detail: String,
}

impl AmpVerification {
    /// Whether amp is usable: found, a key, and the authenticated check passed.
    pub fn ok(&self) -> bool {
        self.found.is_some() && self.key_present && self.auth_check == AuthCheck::Ok
    }
}

impl Engine {
    /// The `doctor` checks.
    pub fn doctor(&mut self) -> Result<DoctorReport, EngineError> {
        let mut checks = Vec::new();
        match ampsm_git::git_version() {
            Ok((a, b, c)) => {
                let ok = (a, b, c) >= ampsm_git::MIN_GIT_VERSION;
                let (ma, mb, mc) = ampsm_git::MIN_GIT_VERSION;
                checks.push(Check::new(
                    "git",
                    if ok { CheckStatus::Ok } else { CheckStatus::Fail },
                    format!(
                        "git {a}.{b}.{c}{}",
                        if ok { String::new() } else { format!(" (needs {ma}.{mb}.{mc} or newer)") }
                    ),
                ));
            }
            Err(e) => checks.push(Check::new("git", CheckStatus::Fail, e.to_string())),
        }
        let config_detail = if self.config_warnings.is_empty() {
            format!(
                "{} ({})",
                self.paths.config.display(),
                if self.paths.config.exists() { "read" } else { "not present: defaults" }
            )
        } else {
            format!(
                "{}: {}",
                self.paths.config.display(),
                self.config_warnings
                    .iter()
                    .map(|w| format!("unknown key `{}`", w.key))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        checks.push(Check::new(
            "config",
            if self.config_warnings.is_empty() { CheckStatus::Ok } else { CheckStatus::Warn },
            config_detail,
        ));
        let version = self.store.schema_version()?;
        let sessions = self.store.list_sessions(&Default::default())?.len();
        checks.push(Check::new(
            "database",
            CheckStatus::Ok,
            format!("{} (schema {version}, {sessions} live sessions)", self.paths.db.display()),
        ));
        let root = self.config.worktree_root(&self.paths);
        checks.push(Check::new("worktree root", CheckStatus::Ok, root.display().to_string()));
        // A mistyped `repos.<path>` would silently apply to nothing.
        for (written, path) in self.config.repo_paths() {
            let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
            let (status, detail) = match ampsm_git::repo_root(&path) {
                Ok(found) if canonical(&found) == canonical(&path) => {
                    let setup = self.config.setup_for(&path).unwrap_or_else(|| "no setup".into());
                    (CheckStatus::Ok, format!("setup: {setup}"))
                }
                Ok(found) => (
                    CheckStatus::Warn,
                    format!(
                        "is inside the repository {}: name its root, or these settings apply to no session",
                        found.display()
                    ),
                ),
                Err(_) => (
                    CheckStatus::Warn,
                    "is not a git repository: these settings apply to no session".to_string(),
                ),
            };
            checks.push(Check::new(format!("repos.{written}"), status, detail));
        }

        let mut agents = Vec::new();
        for name in ampsm_core::agents::agent_names() {
            let adapter = ampsm_agent::adapter_for(name)?;
            let health = self.agent_health(adapter.as_ref());
            let status = match (&health.found, health.credentials) {
                (Some(_), true) => CheckStatus::Ok,
                (Some(_), false) => CheckStatus::Warn,
                (None, _) => CheckStatus::Warn,
            };
            let detail = match &health.found {
                Some(path) => format!(
                    "{} {}; {}{}",
                    path,
                    health.version.clone().unwrap_or_else(|| "(version unknown)".into()),
                    health.credentials_detail,
                    if health.credentials || health.credentials_required {
                        ""
                    } else {
                        " (a run starts anyway, with a warning)"
                    }
                ),
                None if health.program.is_empty() => {
                    format!("no program configured (set {})", adapter.config_key())
                }
                None => match &health.install_hint {
                    Some(hint) => format!(
                        "`{}` not installed (install: {hint}; or set {} to its path)",
                        health.program,
                        adapter.config_key()
                    ),
                    None => {
                        format!("`{}` not installed (set {} to use it)", health.program, adapter.config_key())
                    }
                },
            };
            checks.push(Check::new(format!("agent {name}"), status, detail));
            agents.push(health);
        }

        match self.clean_environment(false) {
            Ok(report) => {
                let n = report.items.len();
                checks.push(Check::new(
                    "leftovers",
                    if n == 0 { CheckStatus::Ok } else { CheckStatus::Warn },
                    if n == 0 {
                        "no orphaned worktrees or branches, vanished worktrees or stale locks".to_string()
                    } else {
                        format!("{}; see `amp-sessions clean-environment`", leftovers_text(&report.items))
                    },
                ));
            }
            Err(e) => checks.push(Check::new("leftovers", CheckStatus::Warn, e.to_string())),
        }
        Ok(DoctorReport { checks, agents })
    }

    /// Program, version, credentials and capabilities of one agent.
    pub fn agent_health(&self, adapter: &dyn AgentAdapter) -> AgentHealth {
        let mut spec = RunSpec::new("", std::env::temp_dir());
        self.apply_agent_overrides(adapter, &mut spec);
        let program = adapter.command(&spec).map(|c| c.program).unwrap_or_default();
        let found = adapter.locate_program(&spec).ok();
        let version = match (&found, adapter.version_args()) {
            (Some(path), args) if !args.is_empty() => {
                probe(path, &args, &spec.env).ok().map(|(_, out)| first_line(&out))
            }
            _ => None,
        };
        let cred = self.credentials(adapter, &spec);
        AgentHealth {
            agent: adapter.name().to_string(),
            program: program.display().to_string(),
            found: found.map(|p| p.display().to_string()),
            version,
            credentials: cred.ok,
            credentials_detail: cred.message,
            credentials_required: adapter.credentials_required(),
            install_hint: adapter.install_hint().map(str::to_string),
            capabilities: adapter.capabilities(),
        }
    }

    /// The `verify-amp` checks: found, version, key, and `amp usage` (the cheapest authenticated call; it
    /// reads the credit balance and bills nothing) when a key exists.
    pub fn verify_amp(&self) -> Result<AmpVerification, EngineError> {
        let adapter = ampsm_agent::adapter_for("amp")?;
        let health = self.agent_health(adapter.as_ref());
        let mut spec = RunSpec::new("", std::env::temp_dir());
        self.apply_agent_overrides(adapter.as_ref(), &mut spec);
        let cred = self.credentials(adapter.as_ref(), &spec);
        let mut env = spec.env;
        let (auth_check, auth_detail) = match (&health.found, cred.ok) {
            (None, _) => (
                AuthCheck::Skipped,
                format!(
                    "amp is not installed (`{}` not found): install it with {}, or set amp.path",
                    health.program,
                    adapter.install_hint().unwrap_or("its installer")
                ),
            ),
            (Some(_), false) => (AuthCheck::Skipped, format!("no key, nothing was sent: {}", cred.message)),
            (Some(path), true) => {
                env.push(("NO_COLOR".into(), "1".into()));
                match probe(Path::new(path), &["usage".to_string()], &env) {
                    Ok((0, out)) => (AuthCheck::Ok, first_line(&out)),
                    Ok((code, out)) => {
                        (AuthCheck::Failed, format!("`amp usage` exited {code}: {}", first_line(&out)))
                    }
                    Err(e) => (AuthCheck::Failed, e),
                }
            }
        };
        Ok(AmpVerification {
            program: health.program,
            found: health.found,
            version: health.version,
            key_present: cred.ok,
            key_source: cred.source,
            auth_check,
            auth_detail,
        })
    }
}

/// The program's path: as given when it has a slash, else the first match on PATH.
pub fn find_program(program: &Path) -> Option<PathBuf> {
    ampsm_agent::adapters::find_program(program, std::env::var_os("PATH").as_deref())
}

/// Runs `program args` with stdin closed and a timeout; returns the exit code and stdout+stderr. The
/// process is killed on timeout.
fn probe(program: &Path, args: &[String], env: &[(String, String)]) -> Result<(i32, String), String> {
    let mut child = Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if started.elapsed() > PROBE_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{} {} did not answer within {}s",
                    program.display(),
                    args.join(" "),
                    PROBE_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(e.to_string()),
        }
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok((out.status.code().unwrap_or(-1), text))
}

fn first_line(text: &str) -> String {
    text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("").chars().take(200).collect()
}

/// What `clean-environment` found, each kind named for what it is: "1 orphaned worktree, 2 stale locks".
fn leftovers_text(items: &[crate::sessions::cleanup::CleanupItem]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for item in items {
        match counts.iter_mut().find(|(k, _)| *k == item.kind) {
            Some((_, n)) => *n += 1,
            None => counts.push((item.kind, 1)),
        }
    }
    counts
        .iter()
        .map(|(kind, n)| {
            let (one, many) = match *kind {
                "orphaned-worktree" => ("orphaned worktree", "orphaned worktrees"),
                "orphaned-branch" => ("orphaned session branch", "orphaned session branches"),
                "vanished-worktree" => {
                    ("session whose worktree vanished", "sessions whose worktree vanished")
                }
                "missing-repository" => {
                    ("session whose repository is gone", "sessions whose repository is gone")
                }
                "stale-lock" => ("stale lock", "stale locks"),
                other => (other, other),
            };
            format!("{n} {}", if *n == 1 { one } else { many })
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod leftover_tests {
    use super::leftovers_text;
    use crate::sessions::cleanup::CleanupItem;

    fn item(kind: &'static str) -> CleanupItem {
        CleanupItem {
            kind,
            target: String::new(),
            repo: None,
            detail: String::new(),
            action: String::new(),
            done: false,
            snapshot: None,
            skipped: None,
        }
    }

    #[test]
    fn stale_locks_are_named_for_what_they_are() {
        let text = leftovers_text(&[item("stale-lock"), item("orphaned-worktree"), item("stale-lock")]);
        assert_eq!(text, "2 stale locks, 1 orphaned worktree");
        assert!(!text.contains("orphans"));
    }
}

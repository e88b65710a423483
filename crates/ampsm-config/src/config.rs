//! `config.yaml`: every key of PRODUCT.md with its default, typed; loading warns about unknown keys and
//! fails on invalid values with file, line and column; `get`/`set`/`list` work on dotted keys.

use crate::error::ConfigError;
use crate::yaml;
use ampsm_core::PermissionPolicy;
use ampsm_core::pricing::{ModelPrice, PriceTable};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The whole configuration. Every field has a default, so an empty or missing file is valid.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub git: GitConfig,
    pub amp: AmpConfig,
    pub session: SessionConfig,
    /// Defaults of batches (`batch.budget_usd`).
    pub batch: RunConfig,
    /// Defaults of benchmark runs (`bench.budget_usd`).
    pub bench: RunConfig,
    /// Per-agent overrides: `agents.<name>.path|args|env`.
    pub agents: BTreeMap<String, AgentConfig>,
    pub notifications: NotificationsConfig,
    pub telemetry: TelemetryConfig,
    pub ui: UiConfig,
    /// Price overrides: `pricing.<model>.{input,output,cache_read,cache_write}` in USD per million tokens.
    pub pricing: BTreeMap<String, ModelPrice>,
    /// Per-repository settings: `repos.<path>.setup|copy_files`, the path as the repository's root
    /// (`~/` allowed).
    pub repos: BTreeMap<String, RepoConfig>,
    /// Where batch items and benchmark results run besides this machine: `executors.slurm.*`,
    /// `executors.kubernetes.*`.
    pub executors: ExecutorsConfig,
}

/// The cluster executors' settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecutorsConfig {
    pub slurm: SlurmConfig,
    pub kubernetes: KubernetesConfig,
}

/// How runs go to a Slurm cluster (`--executor slurm`): one job array per run, through the Slurm CLI.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SlurmConfig {
    /// `sbatch --partition`.
    pub partition: Option<String>,
    /// `sbatch --account`.
    pub account: Option<String>,
    /// `sbatch --time` of each task; default: the item's agent timeout (times its attempts) plus 10
    /// minutes for the set-up, the script and the bundle.
    pub time_limit: Option<String>,
    /// The most tasks running at once (`--array=…%K`); default: the run's concurrency.
    pub max_concurrent: Option<u32>,
    /// More `sbatch` arguments, as they are (`["--qos=low", "--mem=4G"]`).
    pub extra_args: Vec<String>,
    /// A folder every node sees at the same path (NFS, Lustre…) where tasks and their result bundles
    /// go; default `<AMPSM_HOME>/cluster` (right for a cluster of one machine only).
    pub work_dir: Option<String>,
    /// How a node gets the repository: `path` (the repository's own path is visible on the nodes, a
    /// shared folder) or `remote` (a clone of its `origin` remote at the base commit).
    pub repository: Option<String>,
    /// The amp-sessions program on the nodes; default the path of the program that submits.
    pub program: Option<String>,
}

/// How runs go to a Kubernetes cluster (`--executor kubernetes`): one Indexed Job per run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct KubernetesConfig {
    /// The kubeconfig file; default `$KUBECONFIG`, else `~/.kube/config`.
    pub kubeconfig: Option<String>,
    /// The kubeconfig context; default its current context.
    pub context: Option<String>,
    /// The namespace of the Jobs; default the context's, else `default`.
    pub namespace: Option<String>,
    /// The image with amp-sessions and the agent CLIs (see docs/cluster.md for a recipe).
    pub image: Option<String>,
    pub service_account: Option<String>,
    /// Requests and limits of each pod: `cpu: "2"`, `memory: "4Gi"`.
    pub cpu: Option<String>,
    pub memory: Option<String>,
    /// A Secret whose keys become the worker's environment (the agents' API keys).
    pub secret: Option<String>,
    /// A Secret with the repository credentials (`GIT_ASKPASS`-style `username`/`password` keys) for
    /// `repository: remote`.
    pub repository_secret: Option<String>,
    /// The volume that holds tasks and bundles: a PersistentVolumeClaim name, mounted at `work_dir`.
    pub volume_claim: Option<String>,
    /// Where the shared volume is mounted (on the pods and on this machine); default
    /// `<AMPSM_HOME>/cluster`.
    pub work_dir: Option<String>,
    /// How a pod gets the repository: `remote` (default: a clone of `origin`) or `path` (the
    /// repositories' paths mounted into the pods from the nodes, `hostPath`).
    pub repository: Option<String>,
    /// The amp-sessions program in the image; default `amp-sessions` (on the image's PATH).
    pub program: Option<String>,
}

/// Settings of one repository (a project), on top of the global ones.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RepoConfig {
    /// The setup command of new sessions on this repository (instead of `session.setup`).
    pub setup: Option<String>,
    /// Ignored files copied into new worktrees, besides `git.copy_files`.
    pub copy_files: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct GitConfig {
    /// Base branch of new sessions when `--base` is not given and the repository has no better default.
    pub default_base_branch: String,
    /// Prefix of agent commit subjects.
    pub commit_prefix: String,
    /// Prefix of session branch names (`amp/<slug>-<short id>`).
    pub branch_prefix: String,
    /// Where worktrees go; default `<AMPSM_HOME>/worktrees`.
    pub worktree_root: Option<String>,
    /// Ignored files (such as `.env`) copied from the repository into each new worktree.
    pub copy_files: Vec<String>,
}

impl Default for GitConfig {
    fn default() -> Self {
        GitConfig {
            default_base_branch: "main".into(),
            commit_prefix: "amp:".into(),
            branch_prefix: "amp/".into(),
            worktree_root: None,
            copy_files: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AmpConfig {
    /// Amp `--mode` for new sessions (passed through as is).
    pub default_model: Option<String>,
    /// Timeout of one agent run, e.g. `300s`, `10m`.
    pub timeout: String,
    /// Path of the `amp` binary (default: found on PATH).
    pub path: Option<String>,
    /// The old spelling of `session.permissions: full` (read as such, with a warning, where no
    /// permission policy is set).
    pub dangerously_allow_all: bool,
}

impl Default for AmpConfig {
    fn default() -> Self {
        AmpConfig { default_model: None, timeout: "300s".into(), path: None, dangerously_allow_all: false }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionConfig {
    /// Agent of new sessions when `--agent` is not given.
    pub default_agent: String,
    /// Budget in USD of new sessions when `--budget` is not given.
    pub budget_usd: Option<f64>,
    /// A shell command run in every new session's worktree once it is made (`npm ci`, `make deps`), unless
    /// `repos.<path>.setup` or `new --setup` says otherwise.
    pub setup: Option<String>,
    /// How long a setup command may take before its process group is killed.
    pub setup_timeout: String,
    /// The permission policy of new sessions when neither `new --permissions` nor
    /// `agents.<name>.permissions` sets one: `auto` (default), `ask`, `read-only` or `full`.
    pub permissions: Option<String>,
    /// Under the `ask` policy, how long a tool call waits for an answer before it is denied.
    pub ask_timeout: String,
    /// The most output lines one agent run may record; past it the run is stopped (what was recorded
    /// stays).
    pub max_run_lines: u64,
    /// The most output one agent run may record, in MiB; past it the run is stopped.
    pub max_run_mib: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            default_agent: "amp".into(),
            budget_usd: None,
            setup: None,
            setup_timeout: "10m".into(),
            permissions: None,
            ask_timeout: "10m".into(),
            max_run_lines: 200_000,
            max_run_mib: 256,
        }
    }
}

/// Defaults of a batch or benchmark run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RunConfig {
    /// Budget in USD of the whole run when neither its YAML nor `--budget` sets one.
    pub budget_usd: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentConfig {
    pub path: Option<String>,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// This agent's default permission policy (over `session.permissions`).
    pub permissions: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct NotificationsConfig {
    pub desktop: bool,
    pub command: Option<String>,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        NotificationsConfig { desktop: true, command: None }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct TelemetryConfig {
    /// Local metrics recording only; nothing is ever sent anywhere.
    pub enabled: bool,
    pub export_formats: Vec<String>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig { enabled: true, export_formats: vec!["jsonl".into(), "csv".into()] }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct UiConfig {
    pub theme: String,
    pub port: u16,
    pub auto_update: bool,
    /// Folders the dashboard's folder browser may show besides the user's home (`ui.roots`).
    pub roots: Vec<String>,
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig { theme: "gruvbox".into(), port: 7878, auto_update: true, roots: Vec::new() }
    }
}

/// A key in the file that amp-sessions does not know (it is ignored), or one read under an old name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    pub path: PathBuf,
    pub line: u64,
    pub key: String,
    /// What to say instead of "unknown config key" (an old spelling, and the key that replaces it).
    pub note: Option<String>,
}

impl std::fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pos = if self.line > 0 { format!(":{}", self.line) } else { String::new() };
        match &self.note {
            Some(note) => write!(f, "{}{pos}: `{}` {note}", self.path.display(), self.key),
            None => write!(f, "{}{pos}: unknown config key `{}` (ignored)", self.path.display(), self.key),
        }
    }
}

/// A loaded config with the warnings found while loading.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: Config,
    pub warnings: Vec<ConfigWarning>,
    /// Whether the file existed.
    pub from_file: bool,
}

const AGENT_FIELDS: &[&str] = &["path", "args", "env", "permissions"];
const REPO_FIELDS: &[&str] = &["setup", "copy_files"];
const PRICE_FIELDS: &[&str] = &["input", "output", "cache_read", "cache_write"];
const THEMES: &[&str] = &["gruvbox", "gruvbox-light", "light", "dark"];

impl Config {
    /// Loads `path`; a missing file gives the defaults.
    pub fn load(path: &Path) -> Result<LoadedConfig, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(LoadedConfig { config: Config::default(), warnings: vec![], from_file: false });
            }
            Err(source) => return Err(ConfigError::Read { path: path.to_path_buf(), source }),
        };
        let (config, warnings) = Config::parse(path, &text)?;
        Ok(LoadedConfig { config, warnings, from_file: true })
    }

    /// Parses config text; `path` is only used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<(Config, Vec<ConfigWarning>), ConfigError> {
        if text.trim().is_empty() {
            return Ok((Config::default(), vec![]));
        }
        let raw: Value = yaml::parse(path, text)?;
        let raw = if raw.is_null() { Value::Object(Default::default()) } else { raw };
        if !raw.is_object() {
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                line: 1,
                column: 1,
                message: "the config must be a mapping of keys (like `git:`), not a single value".into(),
            });
        }
        let config: Config = yaml::parse(path, text)?;
        let mut warnings = Vec::new();
        let known = Config::default().known_keys_value();
        collect_unknown(&raw, &known, "", &mut |key| {
            warnings.push(ConfigWarning {
                path: path.to_path_buf(),
                line: yaml::line_of_key(text, &key),
                key,
                note: None,
            })
        });
        if config.amp.dangerously_allow_all {
            let key = "amp.dangerously_allow_all".to_string();
            warnings.push(ConfigWarning {
                path: path.to_path_buf(),
                line: yaml::line_of_key(text, &key),
                key,
                note: Some(
                    "is the old spelling of `session.permissions: full` (no guard at all, for every agent); \
                     it is still read as that where no permissions are set: set `session.permissions` (or \
                     `agents.<name>.permissions`) instead"
                        .to_string(),
                ),
            });
        }
        config.validate(path, text)?;
        Ok((config, warnings))
    }

    fn known_keys_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Checks values serde cannot: durations, themes, formats, prices.
    fn validate(&self, path: &Path, text: &str) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            line: yaml::line_of_key(text, key),
            column: 0,
            message: format!("{key}: {message}"),
        };
        ampsm_core::parse_duration(&self.amp.timeout).map_err(|m| bad("amp.timeout", m))?;
        ampsm_core::parse_duration(&self.session.setup_timeout)
            .map_err(|m| bad("session.setup_timeout", m))?;
        ampsm_core::parse_duration(&self.session.ask_timeout).map_err(|m| bad("session.ask_timeout", m))?;
        for (key, v) in [
            ("session.max_run_lines", self.session.max_run_lines),
            ("session.max_run_mib", self.session.max_run_mib),
        ] {
            if v == 0 {
                return Err(bad(key, "must be at least 1".into()));
            }
        }
        let agent = &self.session.default_agent;
        if !ampsm_core::agents::is_agent_name(agent) {
            return Err(bad("session.default_agent", ampsm_core::agents::unknown_agent_text(agent)));
        }
        if let Some(p) = &self.session.permissions {
            p.parse::<PermissionPolicy>().map_err(|m| bad("session.permissions", m))?;
        }
        for (name, agent) in &self.agents {
            if let Some(p) = &agent.permissions {
                p.parse::<PermissionPolicy>().map_err(|m| bad(&format!("agents.{name}.permissions"), m))?;
            }
        }
        if !THEMES.contains(&self.ui.theme.as_str()) {
            return Err(bad(
                "ui.theme",
                format!("unknown theme {:?} (one of: {})", self.ui.theme, THEMES.join(", ")),
            ));
        }
        for f in &self.telemetry.export_formats {
            if !ampsm_core::ExportFormat::ALL.iter().any(|x| x.as_str() == f) {
                return Err(bad(
                    "telemetry.export_formats",
                    format!("unknown format {f:?} (one of: json, csv, jsonl)"),
                ));
            }
        }
        if self.git.commit_prefix.contains('\n') {
            return Err(bad("git.commit_prefix", "must be one line".into()));
        }
        if self.git.branch_prefix.contains("..") || self.git.branch_prefix.starts_with('/') {
            return Err(bad("git.branch_prefix", "must be a relative ref prefix like `amp/`".into()));
        }
        for (model, p) in &self.pricing {
            for (field, v) in [
                ("input", p.input),
                ("output", p.output),
                ("cache_read", p.cache_read),
                ("cache_write", p.cache_write),
            ] {
                if !(v.is_finite() && v >= 0.0) {
                    return Err(bad(
                        &format!("pricing.{model}.{field}"),
                        format!("must be a non-negative number, got {v}"),
                    ));
                }
            }
        }
        if let Some(repo) = self.repos.keys().find(|r| !is_anchored(r)) {
            return Err(bad(
                &format!("repos.{repo}"),
                format!(
                    "{repo:?} is relative; name the repository by an absolute path or one starting with ~/"
                ),
            ));
        }
        if let Some(t) = &self.executors.slurm.time_limit {
            ampsm_core::parse_duration(t).map_err(|m| bad("executors.slurm.time_limit", m))?;
        }
        if self.executors.slurm.max_concurrent == Some(0) {
            return Err(bad("executors.slurm.max_concurrent", "must be at least 1".into()));
        }
        for (key, v) in [
            ("executors.slurm.repository", &self.executors.slurm.repository),
            ("executors.kubernetes.repository", &self.executors.kubernetes.repository),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !["path", "remote"].contains(v)) {
                return Err(bad(key, format!("unknown way {v:?} (one of: path, remote)")));
            }
        }
        for (key, budget) in [
            ("session.budget_usd", self.session.budget_usd),
            ("batch.budget_usd", self.batch.budget_usd),
            ("bench.budget_usd", self.bench.budget_usd),
        ] {
            if let Some(b) = budget
                && !ampsm_core::Money::from_usd(b).is_positive()
            {
                return Err(bad(key, format!("must be a positive number, got {b}")));
            }
        }
        Ok(())
    }

    /// The agent run timeout.
    pub fn agent_timeout(&self) -> Duration {
        ampsm_core::parse_duration(&self.amp.timeout).unwrap_or(Duration::from_secs(300))
    }

    /// The permission policy of a new session of `agent` when `new` names none, and where it came from
    /// (the config key). `agents.<agent>.permissions` wins over `session.permissions`; the old
    /// `amp.dangerously_allow_all: true` counts as `full`; else `auto`.
    pub fn permissions_for(&self, agent: &str) -> (PermissionPolicy, &'static str) {
        let parsed = |v: &Option<String>| v.as_deref().and_then(|p| p.parse::<PermissionPolicy>().ok());
        if let Some(p) = parsed(&self.agents.get(agent).and_then(|a| a.permissions.clone())) {
            return (p, "agents.<name>.permissions");
        }
        if let Some(p) = parsed(&self.session.permissions) {
            return (p, "session.permissions");
        }
        if self.amp.dangerously_allow_all {
            return (PermissionPolicy::Full, "amp.dangerously_allow_all");
        }
        (PermissionPolicy::Auto, "default")
    }

    /// Under the `ask` policy, how long a tool call waits for an answer.
    pub fn ask_timeout(&self) -> Duration {
        ampsm_core::parse_duration(&self.session.ask_timeout).unwrap_or(Duration::from_secs(600))
    }

    /// How long a setup command may take.
    pub fn setup_timeout(&self) -> Duration {
        ampsm_core::parse_duration(&self.session.setup_timeout).unwrap_or(Duration::from_secs(600))
    }

    /// The settings of the repository whose root is `root` (`repos.<path>`, compared as canonical paths).
    pub fn repo_settings(&self, root: &Path) -> Option<&RepoConfig> {
        let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        let root = canonical(root);
        self.repos.iter().find(|(path, _)| canonical(&expand_tilde(path)) == root).map(|(_, r)| r)
    }

    /// The repositories of `repos:` as written, each with the path it means (`~/` expanded).
    pub fn repo_paths(&self) -> Vec<(String, PathBuf)> {
        self.repos.keys().map(|k| (k.clone(), expand_tilde(k))).collect()
    }

    /// The setup command of a new session on `root`: `repos.<path>.setup`, else `session.setup`; an empty
    /// command means none.
    pub fn setup_for(&self, root: &Path) -> Option<String> {
        self.repo_settings(root)
            .and_then(|r| r.setup.clone())
            .or_else(|| self.session.setup.clone())
            .filter(|s| !s.trim().is_empty())
    }

    /// The setup command of a new session on `root` when `explicit` may name one: an explicit command
    /// wins (an empty one means none), else the configured one ([`Config::setup_for`]).
    pub fn setup_or(&self, explicit: Option<&str>, root: &Path) -> Option<String> {
        match explicit {
            Some(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
            None => self.setup_for(root),
        }
    }

    /// The ignored files copied into a new worktree of `root`: `git.copy_files` then `repos.<path>.copy_files`.
    pub fn copy_files_for(&self, root: &Path) -> Vec<String> {
        let mut files = self.git.copy_files.clone();
        for f in self.repo_settings(root).map(|r| r.copy_files.clone()).unwrap_or_default() {
            if !files.contains(&f) {
                files.push(f);
            }
        }
        files
    }

    /// The price table with the config's overrides applied.
    pub fn price_table(&self) -> PriceTable {
        let mut table = PriceTable::builtin();
        for (model, p) in &self.pricing {
            table.set_override(model, *p);
        }
        table
    }

    /// The worktree root: `git.worktree_root` (with `~` expanded) or the default under the home folder.
    pub fn worktree_root(&self, paths: &crate::Paths) -> PathBuf {
        match self.git.worktree_root.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(root) => expand_tilde(root),
            None => paths.default_worktree_root.clone(),
        }
    }

    /// The effective value of a dotted key (`git.commit_prefix`, `agents.claude.path`).
    pub fn get(&self, key: &str) -> Result<Value, ConfigError> {
        check_key(key)?;
        let all = self.known_keys_value();
        let mut cur = &all;
        for part in &split_key(key) {
            match cur.get(part) {
                Some(v) => cur = v,
                None => return Ok(Value::Null),
            }
        }
        Ok(cur.clone())
    }

    /// Every leaf key with its effective value, sorted.
    pub fn list(&self) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        flatten(&self.known_keys_value(), "", &mut out);
        out
    }
}

/// Reads the file, sets `key` to `value_text` (read as a YAML scalar or list), validates the whole result
/// and writes it back atomically. Comments in the file are not kept. Concurrent sets (from any process)
/// are serialized by an exclusive lock on `<file>.lock` held across the read, change and write, so none
/// is lost; the new text goes to a temporary file of its own, synced, then renamed over the file.
pub fn set_in_file(path: &Path, key: &str, value_text: &str) -> Result<Config, ConfigError> {
    check_key(key)?;
    let write_error = |source| ConfigError::Write { path: path.to_path_buf(), source };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(write_error)?;
    }
    let _lock = lock_config(path)?;
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => return Err(ConfigError::Read { path: path.to_path_buf(), source }),
    };
    let mut doc: Value =
        if text.trim().is_empty() { Value::Object(Default::default()) } else { yaml::parse(path, &text)? };
    if !doc.is_object() {
        doc = Value::Object(Default::default());
    }
    let value = parse_value(key, value_text)?;
    let mut parts = split_key(key);
    // A repository given relative to where the command runs is stored as the absolute path it means.
    if parts.len() == 3 && parts[0] == "repos" && !is_anchored(&parts[1]) {
        let here =
            std::env::current_dir().map_err(|source| ConfigError::Read { path: ".".into(), source })?;
        let full = here.join(&parts[1]);
        parts[1] = std::fs::canonicalize(&full).unwrap_or(full).to_string_lossy().into_owned();
    }
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    if let Value::Object(map) = &mut doc {
        set_path(map, &parts, value);
    }
    let new_text = serde_saphyr::to_string(&doc)
        .map_err(|e| ConfigError::BadValue { key: key.into(), message: e.to_string() })?;
    let (config, _) = Config::parse(path, &new_text).map_err(|e| match e {
        ConfigError::Invalid { message, .. } => {
            let message = message.strip_prefix(&format!("{key}: ")).map(str::to_string).unwrap_or(message);
            ConfigError::BadValue { key: key.into(), message }
        }
        other => other,
    })?;
    write_atomically(path, new_text.as_bytes())?;
    Ok(config)
}

/// Replaces the whole config file with `text` after the same checks as loading it (a bad value is one
/// error naming its line and key, and nothing is written), written atomically under the config lock.
/// `expected` is the text the caller started from: when the file changed since (another process's
/// `config set`), nothing is written. Returns the new config and its warnings (unknown keys).
pub fn save_text(
    path: &Path,
    expected: &str,
    text: &str,
) -> Result<(Config, Vec<ConfigWarning>), ConfigError> {
    let write_error = |source| ConfigError::Write { path: path.to_path_buf(), source };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(write_error)?;
    }
    let _lock = lock_config(path)?;
    let now = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => return Err(ConfigError::Read { path: path.to_path_buf(), source }),
    };
    if now != expected {
        return Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            line: 0,
            column: 0,
            message:
                "the file changed since this text was loaded (another `config set`?); nothing was written: \
                      load it again and redo the change"
                    .into(),
        });
    }
    let parsed = Config::parse(path, text)?;
    write_atomically(path, text.as_bytes())?;
    Ok(parsed)
}

/// Takes the exclusive lock of the config file `path` (on `<file>.lock` beside it, which stays), waiting
/// for another process's set to finish; released when the returned file is dropped.
fn lock_config(path: &Path) -> Result<std::fs::File, ConfigError> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    let lock_path = path.with_file_name(name);
    let lock_error = |source| ConfigError::Write { path: lock_path.clone(), source };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(lock_error)?;
    file.lock().map_err(lock_error)?;
    Ok(file)
}

/// Writes `bytes` to `path` so readers see the old or the new text, never a part: a temporary file of
/// this process's own in the same folder, synced, renamed over `path` (removed again if anything fails).
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ConfigError> {
    use std::io::Write;
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(".{}.{}.tmp", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)));
    let tmp = path.with_file_name(name);
    let written = (|| {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    if let Err(source) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(ConfigError::Write { path: tmp, source });
    }
    if let Err(source) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(ConfigError::Write { path: path.to_path_buf(), source });
    }
    // The rename itself is durable once the folder is synced (best effort: not every filesystem can).
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Reads a value given on the command line as YAML (`true`, `300`, `[a, b]`, `{K: v}`); text that YAML
/// would read as a mapping without braces (such as `wip:`) is taken as the plain string it was meant to be.
fn parse_value(key: &str, text: &str) -> Result<Value, ConfigError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(Value::String(String::new()));
    }
    match serde_saphyr::from_str::<Value>(text) {
        Ok(Value::Object(_)) if !trimmed.starts_with('{') => Ok(Value::String(text.to_string())),
        Ok(v) => Ok(v),
        Err(_) if !trimmed.starts_with(['{', '[', '"', '\'']) => Ok(Value::String(text.to_string())),
        Err(e) => Err(ConfigError::BadValue { key: key.into(), message: e.without_snippet().to_string() }),
    }
}

/// Sets (or with a null value, removes) `parts` inside `map`, creating intermediate mappings.
fn set_path(map: &mut serde_json::Map<String, Value>, parts: &[&str], value: Value) {
    match parts {
        [] => {}
        [last] => {
            if value.is_null() {
                map.remove(*last);
            } else {
                map.insert(last.to_string(), value);
            }
        }
        [first, rest @ ..] => {
            let child = map.entry(first.to_string()).or_insert_with(|| Value::Object(Default::default()));
            if !child.is_object() {
                *child = Value::Object(Default::default());
            }
            if let Value::Object(child_map) = child {
                set_path(child_map, rest, value);
            }
        }
    }
}

/// The parts of a dotted key. A repository path may hold dots itself, so `repos.<path>.<field>` is split
/// at its first and last dot only.
fn split_key(key: &str) -> Vec<String> {
    if let Some(rest) = key.strip_prefix("repos.") {
        return match rest.rsplit_once('.') {
            Some((path, field)) if REPO_FIELDS.contains(&field) => {
                vec!["repos".into(), path.to_string(), field.to_string()]
            }
            _ => vec!["repos".into(), rest.to_string()],
        };
    }
    key.split('.').map(str::to_string).collect()
}

/// Whether `key` names a known setting (fixed keys, or `agents.<name>.<field>` / `pricing.<model>.<field>` /
/// `repos.<path>.<field>`).
fn check_key(key: &str) -> Result<(), ConfigError> {
    let split = split_key(key);
    let parts: Vec<&str> = split.iter().map(String::as_str).collect();
    let ok = match parts.as_slice() {
        ["repos", path, field] => !path.is_empty() && REPO_FIELDS.contains(field),
        ["agents", name, field] => !name.is_empty() && AGENT_FIELDS.contains(field),
        ["agents", name, "env", var] => !name.is_empty() && !var.is_empty(),
        ["agents", name] | ["pricing", name] => !name.is_empty(),
        ["pricing", model, field] => !model.is_empty() && PRICE_FIELDS.contains(field),
        _ => {
            let all = Config::default().known_keys_value();
            let mut cur = &all;
            let mut found = true;
            for part in &parts {
                match cur.get(part) {
                    Some(v) => cur = v,
                    None => {
                        found = false;
                        break;
                    }
                }
            }
            found
        }
    };
    if ok {
        return Ok(());
    }
    let known: Vec<String> = Config::default().list().into_iter().map(|(k, _)| k).collect();
    let close: Vec<&String> = known.iter().filter(|k| similar(k, key)).take(3).collect();
    let hint = if close.is_empty() {
        " (see `amp-sessions config list`)".to_string()
    } else {
        format!(" (did you mean {}?)", close.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "))
    };
    Err(ConfigError::UnknownKey { key: key.into(), hint })
}

fn similar(known: &str, wanted: &str) -> bool {
    let last_k = known.rsplit('.').next().unwrap_or(known);
    let last_w = wanted.rsplit('.').next().unwrap_or(wanted);
    known.starts_with(wanted) || last_k == last_w || (last_w.len() > 3 && last_k.contains(last_w))
}

fn collect_unknown(raw: &Value, known: &Value, prefix: &str, report: &mut dyn FnMut(String)) {
    let Value::Object(map) = raw else { return };
    for (k, v) in map {
        let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match (prefix, known.get(k)) {
            ("agents", _) => {
                if let Value::Object(fields) = v {
                    for f in fields.keys().filter(|f| !AGENT_FIELDS.contains(&f.as_str())) {
                        report(format!("{path}.{f}"));
                    }
                }
            }
            ("pricing", _) => {
                if let Value::Object(fields) = v {
                    for f in fields.keys().filter(|f| !PRICE_FIELDS.contains(&f.as_str())) {
                        report(format!("{path}.{f}"));
                    }
                }
            }
            ("repos", _) => {
                if let Value::Object(fields) = v {
                    for f in fields.keys().filter(|f| !REPO_FIELDS.contains(&f.as_str())) {
                        report(format!("{path}.{f}"));
                    }
                }
            }
            (_, None) => report(path),
            (_, Some(Value::Object(_))) => collect_unknown(v, &known[k.as_str()], &path, report),
            (_, Some(known_leaf)) if known_leaf.is_null() || !v.is_object() => {}
            (_, Some(_)) => {}
        }
    }
}

fn flatten(v: &Value, prefix: &str, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(map) if !map.is_empty() || prefix.is_empty() => {
            for (k, child) in map {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(child, &key, out);
            }
        }
        other => out.push((prefix.to_string(), other.clone())),
    }
}

/// Words in a dotted config key that mark its value as secret.
const SECRET_WORDS: &[&str] = &["env", "key", "token", "secret", "password", "auth"];

/// Whether the value of a config key (`agents.claude.env.ANTHROPIC_API_KEY`) must not be shown in
/// listings (the dashboard's settings, `config list`); `config get` of the key itself still prints it.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.split(['.', '_', '-']).any(|part| SECRET_WORDS.contains(&part))
}

/// Whether a repository path in `repos:` means the same wherever amp-sessions runs.
fn is_anchored(path: &str) -> bool {
    path.starts_with('/') || path.starts_with("~/")
}

fn expand_tilde(p: &str) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    PathBuf::from(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> PathBuf {
        PathBuf::from("/h/config.yaml")
    }

    #[test]
    fn seed_example_loads_without_warnings() {
        let text = "git:\n  default_base_branch: \"main\"\n  commit_prefix: \"amp:\"\namp:\n  default_model: \"claude-3-5-sonnet\"\n  timeout: \"300s\"\nnotifications:\n  desktop: true\ntelemetry:\n  enabled: true\n  export_formats: [\"jsonl\", \"csv\"]\nui:\n  theme: \"gruvbox\"\n  auto_update: true\n";
        let (c, w) = Config::parse(&p(), text).unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.amp.default_model.as_deref(), Some("claude-3-5-sonnet"));
        assert_eq!(c.agent_timeout(), Duration::from_secs(300));
    }

    #[test]
    fn unknown_keys_warn_with_line() {
        let text = "git:\n  comit_prefix: x\nagents:\n  claude:\n    pth: /bin/claude\nbogus: 1\n";
        let (_, w) = Config::parse(&p(), text).unwrap();
        let keys: Vec<_> = w.iter().map(|w| (w.key.as_str(), w.line)).collect();
        assert_eq!(keys, vec![("agents.claude.pth", 5), ("bogus", 6), ("git.comit_prefix", 2)]);
        assert_eq!(w[2].to_string(), "/h/config.yaml:2: unknown config key `git.comit_prefix` (ignored)");
    }

    #[test]
    fn invalid_values_fail_with_position() {
        let err = Config::parse(&p(), "notifications:\n  desktop: maybe\n").unwrap_err().to_string();
        assert_eq!(err, "/h/config.yaml:2:12: notifications.desktop: expected true or false, got maybe");
        let err = Config::parse(&p(), "ui:\n  theme: light\n  port: 70000\n").unwrap_err().to_string();
        assert!(err.ends_with("ui.port: expected a whole number from 0 to 65535, got 70000"), "{err}");
        let err = Config::parse(&p(), "amp:\n  timeout: soon\n").unwrap_err().to_string();
        assert!(err.starts_with("/h/config.yaml:2: amp.timeout: invalid duration"), "{err}");
        let err = Config::parse(&p(), "git: [\n").unwrap_err().to_string();
        assert!(err.starts_with("/h/config.yaml:1:"), "{err}");
        assert!(Config::parse(&p(), "just a string").is_err());
    }

    #[test]
    fn batch_and_bench_budgets_are_known_keys_and_must_be_positive() {
        let (c, w) = Config::parse(&p(), "batch:\n  budget_usd: 20\nbench:\n  budget_usd: 5.5\n").unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!((c.batch.budget_usd, c.bench.budget_usd), (Some(20.0), Some(5.5)));
        let err = Config::parse(&p(), "bench:\n  budget_usd: 0\n").unwrap_err().to_string();
        assert!(err.starts_with("/h/config.yaml:2: bench.budget_usd: must be a positive number"), "{err}");
    }

    #[test]
    fn permission_policies_per_agent_then_global_then_the_old_allow_all() {
        let (c, w) = Config::parse(&p(), "").unwrap();
        assert!(w.is_empty());
        assert_eq!(c.permissions_for("claude"), (PermissionPolicy::Auto, "default"));
        let text = "amp:\n  dangerously_allow_all: true\n";
        let (c, w) = Config::parse(&p(), text).unwrap();
        assert_eq!(c.permissions_for("codex").0, PermissionPolicy::Full);
        let warning = w.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n");
        assert!(warning.contains(":2: `amp.dangerously_allow_all` is the old spelling"), "{warning}");
        assert!(warning.contains("session.permissions"), "{warning}");
        let text = "amp:\n  dangerously_allow_all: true\nsession:\n  permissions: read-only\nagents:\n  claude:\n    permissions: ask\n";
        let (c, _) = Config::parse(&p(), text).unwrap();
        assert_eq!(c.permissions_for("claude"), (PermissionPolicy::Ask, "agents.<name>.permissions"));
        assert_eq!(c.permissions_for("codex"), (PermissionPolicy::ReadOnly, "session.permissions"));
        let err = Config::parse(&p(), "session:\n  permissions: yolo\n").unwrap_err().to_string();
        assert!(
            err.contains(":2") && err.contains("session.permissions") && err.contains("read-only"),
            "{err}"
        );
        let err = Config::parse(&p(), "agents:\n  codex:\n    permissions: nope\n").unwrap_err().to_string();
        assert!(err.contains("agents.codex.permissions"), "{err}");
        let err = Config::parse(&p(), "session:\n  ask_timeout: soon\n").unwrap_err().to_string();
        assert!(err.contains("session.ask_timeout"), "{err}");
    }

    #[test]
    fn get_set_list() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        set_in_file(&path, "git.commit_prefix", "\"wip:\"").unwrap();
        set_in_file(&path, "agents.claude.path", "/opt/claude").unwrap();
        set_in_file(&path, "pricing.my-model.input", "2.5").unwrap_err();
        let loaded = Config::load(&path).unwrap();
        assert_eq!(loaded.config.get("git.commit_prefix").unwrap(), Value::String("wip:".into()));
        assert_eq!(loaded.config.get("agents.claude.path").unwrap(), Value::String("/opt/claude".into()));
        assert_eq!(loaded.config.get("amp.timeout").unwrap(), Value::String("300s".into()));
        assert!(matches!(loaded.config.get("git.nope"), Err(ConfigError::UnknownKey { .. })));
        let err = set_in_file(&path, "amp.timeout", "forever").unwrap_err().to_string();
        assert!(err.contains("amp.timeout"), "{err}");
        assert!(loaded.config.list().iter().any(|(k, _)| k == "ui.port"));
        let err = set_in_file(&path, "git.prefx", "x").unwrap_err().to_string();
        assert!(err.contains("unknown config key"), "{err}");
    }

    #[test]
    fn per_repository_setup_and_copy_files() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("my.app");
        let other = dir.path().join("other");
        std::fs::create_dir_all(&app).unwrap();
        std::fs::create_dir_all(&other).unwrap();
        let path = dir.path().join("config.yaml");
        set_in_file(&path, "session.setup", "make deps").unwrap();
        set_in_file(&path, "git.copy_files", "[.env]").unwrap();
        // A path with a dot in it: split at the first and last dot only.
        let key = format!("repos.{}.setup", app.display());
        set_in_file(&path, &key, "npm ci").unwrap();
        set_in_file(&path, &format!("repos.{}.copy_files", app.display()), "[.env, .npmrc]").unwrap();
        let loaded = Config::load(&path).unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let c = loaded.config;
        assert_eq!(c.get(&key).unwrap(), Value::String("npm ci".into()));
        assert_eq!(c.setup_for(&app).as_deref(), Some("npm ci"));
        assert_eq!(c.setup_for(&other).as_deref(), Some("make deps"), "the global setup elsewhere");
        assert_eq!(c.copy_files_for(&app), vec![".env".to_string(), ".npmrc".to_string()]);
        assert_eq!(c.copy_files_for(&other), vec![".env".to_string()]);
        // An empty command turns the global one off for that repository.
        set_in_file(&path, &format!("repos.{}.setup", other.display()), "\"\"").unwrap();
        assert_eq!(Config::load(&path).unwrap().config.setup_for(&other), None);
        let err = set_in_file(&path, &format!("repos.{}.setpu", app.display()), "x").unwrap_err().to_string();
        assert!(err.contains("unknown config key"), "{err}");
        let (_, w) = Config::parse(&p(), "repos:\n  /src/app:\n    setpu: x\n").unwrap();
        assert_eq!(w[0].key, "repos./src/app.setpu");
        let err = Config::parse(&p(), "repos:\n  ./app:\n    setup: x\n").unwrap_err().to_string();
        assert!(err.contains("is relative; name the repository by an absolute path"), "{err}");
        let err = Config::parse(&p(), "session:\n  setup_timeout: soon\n").unwrap_err().to_string();
        assert!(err.contains("session.setup_timeout"), "{err}");
    }
}

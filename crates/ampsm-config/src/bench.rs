//! Benchmark inputs: the custom bench YAML of `amp-sessions bench custom --config F` and the SWE-bench
//! datasets (JSONL, or a JSON array) of `amp-sessions bench swe-bench-lite --dataset F`.
//!
//! ```yaml
//! name: "shout-bench"
//! concurrency: 2
//! repeats: 1            # each problem × agent runs this many times
//! timeout: 5m           # per agent run
//! test_timeout: 10m     # per evaluation command (default 10m)
//! setup: "npm ci"       # run in each agent worktree and each evaluation tree (a problem's own wins)
//! budget: 2.0           # USD for the whole run
//! executor: slurm       # optional: local (default), slurm or kubernetes (`executors.*` in the config)
//! agents:               # the matrix: a name, or {agent, model}
//!   - agent: claude
//!     model: claude-sonnet-4-5
//!   - codex
//! problems:
//!   - id: shout
//!     repo: ./demo                      # relative to the YAML file
//!     base: main                        # branch or commit (default: the repository's default branch)
//!     prompt: "Make greet shout"
//!     test: "sh tests/shout_test.sh"    # evaluation command; exit 0 = resolved
//!     test_patch: ./hidden.patch        # applied only for evaluation, never shown to the agent
//!     setup: "pip install -e ."         # this problem's setup ("" for none)
//! ```
//!
//! Unknown keys are warnings (with their line); bad values fail with `file:line:col: field: reason`.
//!
//! SWE-bench rows carry `instance_id, repo, base_commit, problem_statement, test_patch, FAIL_TO_PASS,
//! PASS_TO_PASS` and optionally `hints_text`, `version`, `test_cmd`; other fields (the gold `patch`
//! among them) are ignored and never kept. `FAIL_TO_PASS`/`PASS_TO_PASS` are JSON-encoded strings of lists
//! on the hub, or plain arrays: both are accepted. Errors name the file, the line and the field.

use crate::error::ConfigError;
use crate::spec::{DurationText, absolute, invalid, read_spec};
use crate::yaml;
use ampsm_core::agents::{is_agent_name, unknown_agent_text};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use serde_saphyr::Spanned;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Most results running at once.
pub const MAX_CONCURRENCY: u32 = 64;
/// Most repeats of one problem × agent.
pub const MAX_REPEATS: u32 = 100;
/// Largest test patch file read.
const MAX_PATCH_BYTES: u64 = 16 * 1024 * 1024;

/// One column of the matrix: an agent and, optionally, its model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BenchAgent {
    pub agent: String,
    pub model: Option<String>,
}

impl BenchAgent {
    /// An agent as typed on a command line or in a form: `agent` or `agent:model`.
    pub fn from_text(text: &str) -> BenchAgent {
        match text.split_once(':') {
            Some((agent, model)) if !model.trim().is_empty() => {
                BenchAgent { agent: agent.trim().to_string(), model: Some(model.trim().to_string()) }
            }
            _ => BenchAgent { agent: text.trim().trim_end_matches(':').to_string(), model: None },
        }
    }

    /// `agent` or `agent/model` (the `model_name_or_path` of predictions).
    pub fn label(&self) -> String {
        match &self.model {
            Some(m) => format!("{}/{m}", self.agent),
            None => self.agent.clone(),
        }
    }
}

/// A problem of a custom bench, checked.
#[derive(Debug, Clone, Serialize)]
pub struct CustomProblem {
    pub id: String,
    /// Absolute (relative paths were resolved against the YAML file's folder).
    pub repo: PathBuf,
    /// The repository as written.
    pub repo_written: String,
    pub base: Option<String>,
    pub prompt: String,
    /// The evaluation command (`sh -c`); exit 0 = resolved. `None`: results are `not_evaluated`.
    pub test: Option<String>,
    /// The setup command (`sh -c`) run in the agent's new worktree and in the evaluation tree before the
    /// test: the problem's own, else the file's top-level `setup`; `Some("")` runs none.
    pub setup: Option<String>,
    /// The file given as `test_patch`, and its content.
    pub test_patch_file: Option<PathBuf>,
    #[serde(skip)]
    pub test_patch: Option<String>,
    /// Where the problem, its `repo` and its `base` are written (for errors found later).
    pub line: u64,
    pub repo_at: (u64, u64),
    pub base_at: (u64, u64),
}

/// A checked custom bench file.
#[derive(Debug, Clone, Serialize)]
pub struct CustomBench {
    pub name: String,
    /// The YAML file (absolute).
    pub file: PathBuf,
    pub concurrency: u32,
    pub repeats: u32,
    pub timeout: Option<Duration>,
    pub test_timeout: Option<Duration>,
    pub budget_usd: Option<f64>,
    /// Where the results run (top-level `executor:`); `None`: not said (`--executor`, else local).
    pub executor: Option<ampsm_core::Executor>,
    pub agents: Vec<BenchAgent>,
    pub problems: Vec<CustomProblem>,
    /// Unknown keys, ignored.
    #[serde(skip)]
    pub warnings: Vec<BenchWarning>,
}

/// An unknown key of a bench file (ignored).
#[derive(Debug, Clone, PartialEq)]
pub struct BenchWarning {
    pub path: PathBuf,
    pub line: u64,
    pub key: String,
}

impl std::fmt::Display for BenchWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: unknown key `{}` (ignored)", crate::error::place(&self.path, self.line, 0), self.key)
    }
}

impl CustomBench {
    /// Reads and checks the bench file at `path` (and the test patches it names).
    pub fn load(path: &Path) -> Result<CustomBench, ConfigError> {
        let (file, text) = read_spec(path)?;
        CustomBench::parse(&file, &text)
    }

    /// Parses and checks bench YAML; `path` names the file in errors and anchors relative paths.
    pub fn parse(path: &Path, text: &str) -> Result<CustomBench, ConfigError> {
        let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        CustomBench::parse_in(path, Some(&base_dir), text)
    }

    /// Parses and checks bench YAML that has no file (pasted in the dashboard): errors and warnings name
    /// [`crate::error::PASTED`] and the line, and a relative path is an error (there is no folder to
    /// resolve it against).
    pub fn parse_pasted(text: &str) -> Result<CustomBench, ConfigError> {
        CustomBench::parse_in(Path::new(crate::error::PASTED), None, text)
    }

    fn parse_in(path: &Path, base_dir: Option<&Path>, text: &str) -> Result<CustomBench, ConfigError> {
        if text.trim().is_empty() {
            return Err(invalid(
                path,
                1,
                1,
                "the bench file is empty; it needs `name:`, `agents:` and `problems:`",
            ));
        }
        let shape: Value = yaml::parse(path, text)?;
        if !shape.is_object() {
            return Err(invalid(
                path,
                1,
                1,
                "the bench file must be a mapping with `name:`, `agents:` and `problems:`",
            ));
        }
        let raw: RawBench = yaml::parse(path, text)?;
        let check = Checker { path, base_dir };
        let mut bench = check.bench(raw)?;
        bench.warnings = unknown_keys(path, text, &shape, &bench);
        Ok(bench)
    }
}

// ---- the YAML as written ----

const TOP_KEYS: &[&str] =
    &["name", "concurrency", "repeats", "timeout", "test_timeout", "budget", "setup", "agents", "problems"];
const PROBLEM_KEYS: &[&str] = &["id", "repo", "base", "prompt", "test", "test_patch", "setup"];
const AGENT_KEYS: &[&str] = &["agent", "model"];

#[derive(Debug, Deserialize)]
struct RawBench {
    name: Spanned<String>,
    #[serde(default)]
    concurrency: Option<Spanned<i64>>,
    #[serde(default)]
    repeats: Option<Spanned<i64>>,
    #[serde(default)]
    timeout: Option<Spanned<DurationText>>,
    #[serde(default)]
    test_timeout: Option<Spanned<DurationText>>,
    #[serde(default)]
    budget: Option<Spanned<f64>>,
    #[serde(default)]
    setup: Option<String>,
    #[serde(default)]
    executor: Option<Spanned<String>>,
    agents: Spanned<Vec<Spanned<RawAgent>>>,
    problems: Spanned<Vec<Spanned<RawProblem>>>,
}

#[derive(Debug, Deserialize)]
struct RawProblem {
    id: Spanned<String>,
    repo: Spanned<String>,
    #[serde(default)]
    base: Option<Spanned<String>>,
    prompt: Spanned<String>,
    #[serde(default)]
    test: Option<Spanned<String>>,
    #[serde(default)]
    test_patch: Option<Spanned<String>>,
    #[serde(default)]
    setup: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawAgentMap {
    agent: Spanned<String>,
    #[serde(default)]
    model: Option<Spanned<String>>,
}

/// An entry of `agents:`: a name, or `{agent, model}`.
#[derive(Debug)]
enum RawAgent {
    Name(String),
    Map(RawAgentMap),
}

impl<'de> Deserialize<'de> for RawAgent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct AgentVisitor;
        impl<'de> Visitor<'de> for AgentVisitor {
            type Value = RawAgent;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an agent name, or a mapping with `agent` (and optionally `model`)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawAgent, E> {
                Ok(RawAgent::Name(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawAgent, A::Error> {
                Ok(RawAgent::Map(RawAgentMap::deserialize(de::value::MapAccessDeserializer::new(map))?))
            }
        }
        d.deserialize_any(AgentVisitor)
    }
}

// ---- checks ----

struct Checker<'a> {
    path: &'a Path,
    /// Where relative paths resolve (none for pasted text: they are refused).
    base_dir: Option<&'a Path>,
}

impl Checker<'_> {
    /// `written` made absolute against the file's folder; relative in pasted text: the error to give.
    fn resolve(&self, written: &str) -> Result<PathBuf, String> {
        let p = Path::new(written);
        match self.base_dir {
            _ if p.is_absolute() => Ok(normalize(p)),
            Some(dir) => Ok(normalize(&dir.join(p))),
            None => Err(crate::spec::relative_in_pasted(written)),
        }
    }
}

impl Checker<'_> {
    fn at<T>(&self, s: &Spanned<T>, field: &str, message: impl std::fmt::Display) -> ConfigError {
        invalid(self.path, s.referenced.line(), s.referenced.column(), format!("{field}: {message}"))
    }

    fn count(&self, v: Option<&Spanned<i64>>, field: &str, max: u32) -> Result<u32, ConfigError> {
        match v {
            None => Ok(1),
            Some(c) if c.value >= 1 && c.value <= max as i64 => Ok(c.value as u32),
            Some(c) => Err(self.at(c, field, format!("must be between 1 and {max}, got {}", c.value))),
        }
    }

    fn duration(
        &self,
        v: Option<&Spanned<DurationText>>,
        field: &str,
    ) -> Result<Option<Duration>, ConfigError> {
        let Some(t) = v else { return Ok(None) };
        t.value.timeout().map(Some).map_err(|m| self.at(t, field, m))
    }

    fn bench(&self, raw: RawBench) -> Result<CustomBench, ConfigError> {
        let name = raw.name.value.trim().to_string();
        if name.is_empty() {
            return Err(self.at(&raw.name, "name", "must not be empty"));
        }
        let concurrency = self.count(raw.concurrency.as_ref(), "concurrency", MAX_CONCURRENCY)?;
        let repeats = self.count(raw.repeats.as_ref(), "repeats", MAX_REPEATS)?;
        let timeout = self.duration(raw.timeout.as_ref(), "timeout")?;
        let test_timeout = self.duration(raw.test_timeout.as_ref(), "test_timeout")?;
        let budget_usd = match &raw.budget {
            None => None,
            Some(b) if ampsm_core::Money::from_usd(b.value).is_positive() => Some(b.value),
            Some(b) => {
                return Err(self.at(
                    b,
                    "budget",
                    format!("must be a positive amount in USD, got {}", b.value),
                ));
            }
        };
        if raw.agents.value.is_empty() {
            return Err(self.at(
                &raw.agents,
                "agents",
                "the bench has no agents; add at least one (e.g. `- claude`)",
            ));
        }
        let mut agents: Vec<BenchAgent> = Vec::new();
        for (i, entry) in raw.agents.value.iter().enumerate() {
            let field = format!("agents[{i}]");
            let agent = self.agent(entry, &field)?;
            if agents.contains(&agent) {
                return Err(self.at(entry, &field, format!("{} is listed twice", agent.label())));
            }
            agents.push(agent);
        }
        if raw.problems.value.is_empty() {
            return Err(self.at(
                &raw.problems,
                "problems",
                "the bench has no problems; add at least one `- id: … repo: … prompt: …`",
            ));
        }
        let mut problems: Vec<CustomProblem> = Vec::new();
        for (i, p) in raw.problems.value.iter().enumerate() {
            let mut problem = self.problem(&p.value, &format!("problems[{i}]"), p.referenced.line())?;
            if problem.setup.is_none() {
                problem.setup = raw.setup.as_ref().map(|s| s.trim().to_string());
            }
            if problems.iter().any(|x| x.id == problem.id) {
                return Err(self.at(
                    &p.value.id,
                    &format!("problems[{i}].id"),
                    format!("the id {:?} is used by an earlier problem; ids must be unique", problem.id),
                ));
            }
            problems.push(problem);
        }
        let executor = match &raw.executor {
            None => None,
            Some(e) => Some(e.value.trim().parse().map_err(|m: String| self.at(e, "executor", m))?),
        };
        Ok(CustomBench {
            name,
            file: self.path.to_path_buf(),
            concurrency,
            repeats,
            timeout,
            test_timeout,
            budget_usd,
            executor,
            agents,
            problems,
            warnings: Vec::new(),
        })
    }

    fn agent(&self, entry: &Spanned<RawAgent>, field: &str) -> Result<BenchAgent, ConfigError> {
        let (name, at, model) = match &entry.value {
            RawAgent::Name(n) => (n.clone(), (entry.referenced.line(), entry.referenced.column()), None),
            RawAgent::Map(m) => (
                m.agent.value.clone(),
                (m.agent.referenced.line(), m.agent.referenced.column()),
                m.model.as_ref(),
            ),
        };
        let name = name.trim().to_string();
        if !is_agent_name(&name) {
            let field =
                if matches!(entry.value, RawAgent::Map(_)) { format!("{field}.agent") } else { field.into() };
            return Err(invalid(self.path, at.0, at.1, format!("{field}: {}", unknown_agent_text(&name))));
        }
        let model = match model {
            None => None,
            Some(m) if m.value.trim().is_empty() => {
                return Err(self.at(
                    m,
                    &format!("{field}.model"),
                    "must not be empty (leave it out for the agent's default)",
                ));
            }
            Some(m) => Some(m.value.trim().to_string()),
        };
        Ok(BenchAgent { agent: name, model })
    }

    fn problem(&self, raw: &RawProblem, field: &str, line: u64) -> Result<CustomProblem, ConfigError> {
        let id = raw.id.value.trim().to_string();
        if let Err(reason) = check_instance_id(&id) {
            return Err(self.at(&raw.id, &format!("{field}.id"), reason));
        }
        let repo_written = raw.repo.value.trim().to_string();
        if repo_written.is_empty() {
            return Err(self.at(&raw.repo, &format!("{field}.repo"), "must not be empty"));
        }
        let repo =
            self.resolve(&repo_written).map_err(|m| self.at(&raw.repo, &format!("{field}.repo"), m))?;
        let base = match &raw.base {
            None => None,
            Some(b) if b.value.trim().is_empty() => {
                return Err(self.at(
                    b,
                    &format!("{field}.base"),
                    "must not be empty (leave it out for the default branch)",
                ));
            }
            Some(b) if b.value.trim().starts_with('-') => {
                return Err(self.at(b, &format!("{field}.base"), "a branch or commit cannot start with '-'"));
            }
            Some(b) => Some(b.value.trim().to_string()),
        };
        let prompt = raw.prompt.value.trim().to_string();
        if prompt.is_empty() {
            return Err(self.at(&raw.prompt, &format!("{field}.prompt"), "must not be empty"));
        }
        let test = raw.test.as_ref().map(|t| t.value.trim().to_string()).filter(|t| !t.is_empty());
        let (test_patch_file, test_patch) = match &raw.test_patch {
            None => (None, None),
            Some(tp) => {
                let written = tp.value.trim();
                if written.is_empty() {
                    return Err(self.at(tp, &format!("{field}.test_patch"), "must not be empty"));
                }
                let file =
                    self.resolve(written).map_err(|m| self.at(tp, &format!("{field}.test_patch"), m))?;
                let text = read_patch(&file).map_err(|m| self.at(tp, &format!("{field}.test_patch"), m))?;
                (Some(file), Some(text))
            }
        };
        Ok(CustomProblem {
            id,
            repo,
            repo_written,
            base,
            prompt,
            test,
            setup: raw.setup.as_ref().map(|s| s.trim().to_string()),
            test_patch_file,
            test_patch,
            line,
            repo_at: (raw.repo.referenced.line(), raw.repo.referenced.column()),
            base_at: raw
                .base
                .as_ref()
                .map(|b| (b.referenced.line(), b.referenced.column()))
                .unwrap_or((raw.repo.referenced.line(), raw.repo.referenced.column())),
        })
    }
}

/// Reads a patch file (text, at most 16 MiB).
fn read_patch(file: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    if meta.len() > MAX_PATCH_BYTES {
        return Err(format!("{} is larger than 16 MiB", file.display()));
    }
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let text = String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8 text", file.display()))?;
    if !looks_like_patch(&text) {
        return Err(format!(
            "{} is not a patch: it has no `diff --git` line and no `---`/`+++` file headers (make it with `git diff`)",
            file.display()
        ));
    }
    Ok(text)
}

/// Whether `text` is a unified diff: a `diff --git` line, or a `--- ` line followed by a `+++ ` line.
fn looks_like_patch(text: &str) -> bool {
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.starts_with("diff --git ") {
            return true;
        }
        if line.starts_with("--- ") && lines.peek().is_some_and(|next| next.starts_with("+++ ")) {
            return true;
        }
    }
    false
}

/// An instance or problem id: 1–128 characters of letters, digits, `-`, `_`, `.`, `/`, `:`, `+`, `@`,
/// not starting with `-` or `.`. (It names result rows and prediction lines, never files.)
pub fn check_instance_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("must not be empty".into());
    }
    if id.chars().count() > 128 {
        return Err("longer than 128 characters".into());
    }
    if let Some(c) = id.chars().find(|c| !(c.is_ascii_alphanumeric() || "-_./:+@".contains(*c))) {
        return Err(format!("{id:?} contains {c:?} (use letters, digits, '-', '_', '.')"));
    }
    if id.starts_with(['-', '.']) {
        return Err(format!("{id:?} must not start with '-' or '.'"));
    }
    Ok(())
}

/// Unknown keys of the file, with the line where each is written.
fn unknown_keys(path: &Path, text: &str, shape: &Value, bench: &CustomBench) -> Vec<BenchWarning> {
    let mut out = Vec::new();
    let Value::Object(top) = shape else { return out };
    let mut warn = |key: String, from_line: u64| {
        let last = key.rsplit('.').next().unwrap_or(&key).to_string();
        out.push(BenchWarning {
            path: path.to_path_buf(),
            line: line_of_key_from(text, &last, from_line),
            key,
        });
    };
    for (k, v) in top {
        if !TOP_KEYS.contains(&k.as_str()) {
            warn(k.clone(), 1);
            continue;
        }
        let list = match v {
            Value::Array(list) => list,
            _ => continue,
        };
        let (keys, from): (&[&str], Vec<u64>) = match k.as_str() {
            "problems" => (PROBLEM_KEYS, bench.problems.iter().map(|p| p.line).collect()),
            "agents" => (AGENT_KEYS, vec![1; list.len()]),
            _ => continue,
        };
        for (i, entry) in list.iter().enumerate() {
            if let Value::Object(fields) = entry {
                for f in fields.keys().filter(|f| !keys.contains(&f.as_str())) {
                    warn(format!("{k}[{i}].{f}"), from.get(i).copied().unwrap_or(1));
                }
            }
        }
    }
    out
}

/// The 1-based line where `key:` is written at or after `from_line`; 0 when not found.
fn line_of_key_from(text: &str, key: &str, from_line: u64) -> u64 {
    let skip = from_line.saturating_sub(1) as usize;
    let tail: String = text.lines().skip(skip).collect::<Vec<_>>().join("\n");
    match yaml::line_of_key(&tail, key) {
        0 => yaml::line_of_key(text, key),
        n => n + skip as u64,
    }
}

/// Removes `.` and resolves `..` lexically.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

// ---- SWE-bench datasets ----

/// One SWE-bench instance, as the runner needs it. The gold `patch` is never read.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SweInstance {
    pub instance_id: String,
    /// `owner/name`.
    pub repo: String,
    pub base_commit: String,
    pub problem_statement: String,
    pub hints_text: Option<String>,
    pub test_patch: String,
    #[serde(rename = "FAIL_TO_PASS")]
    pub fail_to_pass: Vec<String>,
    #[serde(rename = "PASS_TO_PASS")]
    pub pass_to_pass: Vec<String>,
    pub version: Option<String>,
    /// A test command given on the row (overridden by `--test-cmd`).
    pub test_cmd: Option<String>,
    /// Where the row is in the file (1-based).
    pub line: u64,
}

impl SweInstance {
    /// `owner` and `name` of the repository.
    pub fn owner_and_name(&self) -> (&str, &str) {
        self.repo.split_once('/').unwrap_or(("", self.repo.as_str()))
    }
}

/// Reads a SWE-bench dataset: JSONL (one row per line) or a JSON array of rows.
pub fn load_dataset(path: &Path) -> Result<Vec<SweInstance>, ConfigError> {
    let file = absolute(path);
    let text =
        std::fs::read_to_string(&file).map_err(|source| ConfigError::Read { path: file.clone(), source })?;
    parse_dataset(&file, &text)
}

/// Parses dataset text; `path` names the file in errors. A UTF-8 byte order mark in front is skipped (as
/// Python's `utf-8-sig` does: tools that write one are common on Windows).
pub fn parse_dataset(path: &Path, text: &str) -> Result<Vec<SweInstance>, ConfigError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let rows: Vec<(u64, Value)> = if text.trim_start().starts_with('[') {
        array_rows(path, text)?
    } else {
        let mut rows = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let n = i as u64 + 1;
            let v: Value = serde_json::from_str(line).map_err(|e| {
                invalid(path, n, e.column() as u64, format!("not a JSON object: {}", strip_position(&e)))
            })?;
            rows.push((n, v));
        }
        rows
    };
    if rows.is_empty() {
        return Err(invalid(
            path,
            0,
            0,
            "the dataset has no rows (expected JSONL, one SWE-bench instance per line)",
        ));
    }
    let mut out: Vec<SweInstance> = Vec::with_capacity(rows.len());
    for (line, v) in rows {
        let inst = instance(path, line, &v)?;
        if let Some(first) = out.iter().find(|x| x.instance_id == inst.instance_id) {
            return Err(invalid(
                path,
                line,
                0,
                format!(
                    "instance_id: {:?} is also on line {}; ids must be unique",
                    inst.instance_id, first.line
                ),
            ));
        }
        out.push(inst);
    }
    Ok(out)
}

fn strip_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// The elements of a JSON array file, each with the line it starts on.
fn array_rows(path: &Path, text: &str) -> Result<Vec<(u64, Value)>, ConfigError> {
    let all: Vec<Value> = serde_json::from_str(text).map_err(|e| {
        invalid(
            path,
            e.line() as u64,
            e.column() as u64,
            format!("not a JSON array of rows: {}", strip_position(&e)),
        )
    })?;
    let starts = element_lines(text);
    Ok(all.into_iter().enumerate().map(|(i, v)| (starts.get(i).copied().unwrap_or(0), v)).collect())
}

/// The 1-based lines where the elements of the top-level JSON array in `text` start.
fn element_lines(text: &str) -> Vec<u64> {
    let mut out = Vec::new();
    let (mut depth, mut in_string, mut escaped, mut line, mut expecting) =
        (0usize, false, false, 1u64, false);
    for c in text.chars() {
        if c == '\n' {
            line += 1;
        }
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        if depth == 1 && expecting && !c.is_whitespace() && c != ']' {
            out.push(line);
            expecting = false;
        }
        match c {
            '"' => in_string = true,
            '[' | '{' => {
                depth += 1;
                if depth == 1 {
                    expecting = true;
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            ',' if depth == 1 => expecting = true,
            _ => {}
        }
    }
    out
}

/// Checks one row.
fn instance(path: &Path, line: u64, v: &Value) -> Result<SweInstance, ConfigError> {
    let Value::Object(row) = v else {
        return Err(invalid(path, line, 0, "expected a JSON object (one SWE-bench instance)"));
    };
    let id_for_errors = row.get("instance_id").and_then(Value::as_str).unwrap_or("").to_string();
    let fail = |field: &str, reason: String| {
        let who =
            if id_for_errors.is_empty() { String::new() } else { format!("instance {id_for_errors}: ") };
        invalid(path, line, 0, format!("{who}{field}: {reason}"))
    };
    let text = |field: &str, required: bool| -> Result<Option<String>, ConfigError> {
        match row.get(field) {
            None | Some(Value::Null) if required => Err(fail(field, "missing".into())),
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(fail(field, format!("expected a string, got {}", kind(other)))),
        }
    };
    let instance_id = text("instance_id", true)?.unwrap_or_default().trim().to_string();
    check_instance_id(&instance_id).map_err(|r| fail("instance_id", r))?;
    let repo = text("repo", true)?.unwrap_or_default().trim().to_string();
    check_repo_name(&repo).map_err(|r| fail("repo", r))?;
    let base_commit = text("base_commit", true)?.unwrap_or_default().trim().to_string();
    if base_commit.is_empty() || base_commit.starts_with('-') || base_commit.contains(char::is_whitespace) {
        return Err(fail("base_commit", format!("{base_commit:?} is not a commit id")));
    }
    let problem_statement = text("problem_statement", true)?.unwrap_or_default();
    if problem_statement.trim().is_empty() {
        return Err(fail("problem_statement", "must not be empty".into()));
    }
    let test_patch = text("test_patch", false)?.unwrap_or_default();
    let fail_to_pass = test_list(row.get("FAIL_TO_PASS")).map_err(|r| fail("FAIL_TO_PASS", r))?;
    let pass_to_pass = test_list(row.get("PASS_TO_PASS")).map_err(|r| fail("PASS_TO_PASS", r))?;
    let version = match row.get("version") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(other) => return Err(fail("version", format!("expected a string, got {}", kind(other)))),
    };
    Ok(SweInstance {
        instance_id,
        repo,
        base_commit,
        problem_statement,
        hints_text: text("hints_text", false)?.filter(|h| !h.trim().is_empty()),
        test_patch,
        fail_to_pass,
        pass_to_pass,
        version,
        test_cmd: text("test_cmd", false)?.filter(|c| !c.trim().is_empty()),
        line,
    })
}

/// A list of test ids: a JSON array of strings, or a string holding one (as on the hub). Missing = empty.
fn test_list(v: Option<&Value>) -> Result<Vec<String>, String> {
    let list = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a.clone(),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(Vec::new()),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Array(a)) => a,
            _ => {
                return Err(format!(
                    "expected a list of test ids (or a JSON string of one), got the string {:?}",
                    clip(s)
                ));
            }
        },
        Some(other) => return Err(format!("expected a list of test ids, got {}", kind(other))),
    };
    list.into_iter()
        .enumerate()
        .map(|(i, t)| match t {
            Value::String(s) if !s.trim().is_empty() => Ok(s),
            other => Err(format!("item {i}: expected a test id (a non-empty string), got {}", kind(&other))),
        })
        .collect()
}

fn clip(s: &str) -> String {
    if s.chars().count() <= 60 {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(59).collect::<String>())
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// `owner/name` with safe path segments (it becomes a folder name under `--repos-dir`).
fn check_repo_name(repo: &str) -> Result<(), String> {
    let Some((owner, name)) = repo.split_once('/') else {
        return Err(format!("{repo:?} is not `owner/name`"));
    };
    for part in [owner, name] {
        let ok = !part.is_empty()
            && part != "."
            && part != ".."
            && part.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !ok {
            return Err(format!("{repo:?} is not `owner/name` (letters, digits, '-', '_', '.')"));
        }
    }
    Ok(())
}

/// The paths a unified diff touches (old and new sides of every file), in order, without duplicates.
pub fn patch_paths(patch: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |p: &str| {
        let p = p.trim_end_matches('\r');
        let p = p.split('\t').next().unwrap_or(p);
        let p = p.strip_prefix("a/").or_else(|| p.strip_prefix("b/")).unwrap_or(p);
        if p != "/dev/null" && !p.is_empty() && !out.iter().any(|x| x == p) {
            out.push(p.to_string());
        }
    };
    for line in patch.lines() {
        if let Some(rest) = line.strip_prefix("diff --git ") {
            // `a/X b/Y` without quoting: split at the " b/" that makes both halves equal when they are.
            if let Some((a, b)) = split_git_header(rest) {
                add(&a);
                add(&b);
            }
        } else if let Some(rest) = line.strip_prefix("--- ").or_else(|| line.strip_prefix("+++ ")) {
            add(rest);
        } else if let Some(rest) =
            line.strip_prefix("rename from ").or_else(|| line.strip_prefix("rename to "))
        {
            add(rest);
        }
    }
    out
}

/// The files a unified diff leaves behind: the new side of every `diff --git` header, in order, without
/// duplicates (deleted files, whose new side is `/dev/null` in the `+++` line, are still named by the header).
pub fn patch_new_paths(patch: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in patch.lines() {
        if let Some((_, b)) = line.strip_prefix("diff --git ").and_then(split_git_header) {
            let b = b.trim_end_matches('\r');
            let b = b.strip_prefix("b/").unwrap_or(b);
            if !out.iter().any(|x| x == b) {
                out.push(b.to_string());
            }
        }
    }
    out
}

/// `a/X b/Y` → (`a/X`, `b/Y`).
fn split_git_header(rest: &str) -> Option<(String, String)> {
    let rest = rest.trim_end();
    if !rest.starts_with("a/") {
        return None;
    }
    // Prefer the split where both sides name the same path.
    let mut candidates = rest.match_indices(" b/").map(|(i, _)| i).collect::<Vec<_>>();
    candidates.sort_unstable();
    for &i in &candidates {
        let (a, b) = (&rest[..i], &rest[i + 1..]);
        if a[2..] == b[2..] {
            return Some((a.to_string(), b.to_string()));
        }
    }
    candidates.first().map(|&i| (rest[..i].to_string(), rest[i + 1..].to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"name: "shout-bench"
concurrency: 2
repeats: 1
timeout: 5m
budget: 2.0
agents:
  - agent: claude
    model: claude-sonnet-4-5
  - codex
problems:
  - id: shout
    repo: ./demo
    base: main
    prompt: "Make greet shout"
    test: "sh tests/shout_test.sh"
"#;

    fn parse(text: &str) -> Result<CustomBench, String> {
        CustomBench::parse(Path::new("/w/b.yaml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn pasted_yaml_errors_and_warnings_name_the_pasted_yaml_and_the_line() {
        let err = CustomBench::parse_pasted(EXAMPLE).unwrap_err().to_string();
        assert!(err.starts_with("the pasted YAML, line "), "{err}");
        assert!(err.contains("problems[0].repo: \"./demo\" is a relative path"), "{err}");
        let text =
            "name: x\nagents: [claude]\nextra: 1\nproblems:\n  - id: p\n    repo: /abs/r\n    prompt: go\n";
        let b = CustomBench::parse_pasted(text).unwrap();
        let w: Vec<String> = b.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(w, vec!["the pasted YAML, line 3: unknown key `extra` (ignored)".to_string()]);
    }

    #[test]
    fn the_example_parses() {
        let b = parse(EXAMPLE).unwrap();
        assert_eq!((b.name.as_str(), b.concurrency, b.repeats), ("shout-bench", 2, 1));
        assert_eq!(b.timeout, Some(Duration::from_secs(300)));
        assert_eq!(b.budget_usd, Some(2.0));
        assert_eq!(
            b.agents,
            vec![
                BenchAgent { agent: "claude".into(), model: Some("claude-sonnet-4-5".into()) },
                BenchAgent { agent: "codex".into(), model: None }
            ]
        );
        assert_eq!(b.agents[0].label(), "claude/claude-sonnet-4-5");
        let p = &b.problems[0];
        assert_eq!(p.repo, PathBuf::from("/w/demo"));
        assert_eq!((p.base.as_deref(), p.test.as_deref()), (Some("main"), Some("sh tests/shout_test.sh")));
        assert_eq!(p.line, 11);
        assert!(b.warnings.is_empty());
    }

    #[test]
    fn a_test_patch_that_is_not_a_patch_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "just some notes\n").unwrap();
        std::fs::write(dir.path().join("plain.patch"), "--- a/t\n+++ b/t\n@@ -1 +1 @@\n-x\n+y\n").unwrap();
        assert!(read_patch(&dir.path().join("plain.patch")).is_ok());
        let err = read_patch(&dir.path().join("notes.txt")).unwrap_err();
        assert!(err.contains("notes.txt is not a patch"), "{err}");
    }

    #[test]
    fn the_test_patch_is_read_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hidden.patch"), "diff --git a/t b/t\n").unwrap();
        let file = dir.path().join("b.yaml");
        let text = "name: x\nagents: [claude]\nproblems:\n  - id: p\n    repo: r\n    prompt: q\n    test_patch: ./hidden.patch\n";
        let b = CustomBench::parse(&file, text).unwrap();
        assert_eq!(b.problems[0].test_patch.as_deref(), Some("diff --git a/t b/t\n"));
        let missing = text.replace("hidden", "nope");
        let err = CustomBench::parse(&file, &missing).unwrap_err().to_string();
        assert!(err.contains(":7:17: problems[0].test_patch: cannot read"), "{err}");
    }

    #[test]
    fn unknown_keys_warn_with_their_line() {
        let text = format!("{EXAMPLE}    tset: oops\ncolour: red\n");
        let b = parse(&text).unwrap();
        let w: Vec<String> = b.warnings.iter().map(ToString::to_string).collect();
        assert!(w.contains(&"/w/b.yaml:17: unknown key `colour` (ignored)".to_string()), "{w:?}");
        assert!(w.contains(&"/w/b.yaml:16: unknown key `problems[0].tset` (ignored)".to_string()), "{w:?}");
    }

    #[test]
    fn bad_values_name_line_column_and_field() {
        let err = parse(&EXAMPLE.replace("timeout: 5m", "timeout: soon")).unwrap_err();
        assert!(err.starts_with("/w/b.yaml:4:10: timeout: invalid duration"), "{err}");
        let err = parse(&EXAMPLE.replace("- codex", "- gpt")).unwrap_err();
        assert!(err.starts_with("/w/b.yaml:9:5: agents[1]: unknown agent \"gpt\""), "{err}");
        let err = parse(&EXAMPLE.replace("agent: claude", "agent: cloud")).unwrap_err();
        assert!(err.starts_with("/w/b.yaml:7:12: agents[0].agent: unknown agent"), "{err}");
        let err = parse(&EXAMPLE.replace("budget: 2.0", "budget: -1")).unwrap_err();
        assert!(err.starts_with("/w/b.yaml:5:9: budget: must be a positive amount"), "{err}");
        let err = parse(&EXAMPLE.replace("budget: 2.0", "budget: 2.0\nexecutor: ray")).unwrap_err();
        assert!(err.starts_with("/w/b.yaml:6:11: executor: unknown executor \"ray\""), "{err}");
        let ok = parse(&EXAMPLE.replace("budget: 2.0", "budget: 2.0\nexecutor: kubernetes")).unwrap();
        assert_eq!(ok.executor, Some(ampsm_core::Executor::Kubernetes));
        let err = parse(&EXAMPLE.replace("repeats: 1", "repeats: 0")).unwrap_err();
        assert!(err.starts_with("/w/b.yaml:3:10: repeats: must be between 1 and 100"), "{err}");
        let err = parse(&EXAMPLE.replace("id: shout", "id: \"a b\"")).unwrap_err();
        assert!(err.starts_with("/w/b.yaml:11:9: problems[0].id:"), "{err}");
        let err = parse(&EXAMPLE.replace("    prompt: \"Make greet shout\"\n", "")).unwrap_err();
        assert!(
            err.starts_with("/w/b.yaml:") && err.contains("problems[0]: missing field `prompt`"),
            "{err}"
        );
        let err = parse(&EXAMPLE.replace("  - codex\n", "  - {agent: claude, model: claude-sonnet-4-5}\n"))
            .unwrap_err();
        assert!(err.contains("agents[1]") && err.contains("twice"), "{err}");
        let err = parse("").unwrap_err();
        assert!(err.starts_with("/w/b.yaml:1:1:"), "{err}");
        let err = parse("name: x\nagents: []\nproblems: []\n").unwrap_err();
        assert!(err.starts_with("/w/b.yaml:2:9: agents: the bench has no agents"), "{err}");
    }

    fn row(f2p: &str) -> String {
        format!(
            r#"{{"instance_id": "octo__demo-1", "repo": "octo/demo", "base_commit": "abc123", "patch": "GOLD", "problem_statement": "Fix it", "test_patch": "diff --git a/t.sh b/t.sh\n", "FAIL_TO_PASS": {f2p}, "PASS_TO_PASS": [], "hints_text": "", "created_at": "2024-01-01"}}"#
        )
    }

    #[test]
    fn dataset_rows_accept_hub_strings_and_plain_lists() {
        let text = format!(
            "{}\n\n{}\n",
            row(r#""[\"t1.sh\", \"t2.sh\"]""#),
            row(r#"["t1.sh"]"#).replace("demo-1", "demo-2")
        );
        let rows = parse_dataset(Path::new("/d.jsonl"), &text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].fail_to_pass, vec!["t1.sh", "t2.sh"]);
        assert_eq!(rows[1].fail_to_pass, vec!["t1.sh"]);
        assert_eq!((rows[0].line, rows[1].line), (1, 3));
        assert_eq!(rows[0].hints_text, None);
        assert_eq!(rows[0].owner_and_name(), ("octo", "demo"));
        // The gold patch is not kept anywhere.
        assert!(!serde_json::to_string(&rows).unwrap().contains("GOLD"));
        // A JSON array file works too, with the line each row starts on.
        let array = format!("[\n  {},\n  {}\n]\n", row("[]"), row("[]").replace("demo-1", "demo-2"));
        let rows = parse_dataset(Path::new("/d.json"), &array).unwrap();
        assert_eq!((rows[0].line, rows[1].line), (2, 3));
        // A byte order mark in front (as some Windows tools write) is skipped, in both forms.
        let rows = parse_dataset(Path::new("/d.jsonl"), &format!("\u{feff}{text}")).unwrap();
        assert_eq!((rows[0].line, rows[1].line), (1, 3));
        let rows = parse_dataset(Path::new("/d.json"), &format!("\u{feff}{array}")).unwrap();
        assert_eq!((rows[0].line, rows[1].line), (2, 3));
    }

    #[test]
    fn dataset_errors_name_file_line_instance_and_field() {
        let text = format!("{}\n{}\n", row("[]"), row("5").replace("demo-1", "demo-2"));
        let err = parse_dataset(Path::new("/d.jsonl"), &text).unwrap_err().to_string();
        assert_eq!(
            err,
            "/d.jsonl:2: instance octo__demo-2: FAIL_TO_PASS: expected a list of test ids, got a number"
        );
        let err = parse_dataset(Path::new("/d.jsonl"), &row(r#""not json""#)).unwrap_err().to_string();
        assert!(err.starts_with("/d.jsonl:1: instance octo__demo-1: FAIL_TO_PASS: expected a list"), "{err}");
        let err = parse_dataset(Path::new("/d.jsonl"), "{\"instance_id\": \"x\"}\n").unwrap_err().to_string();
        assert_eq!(err, "/d.jsonl:1: instance x: repo: missing");
        let err = parse_dataset(Path::new("/d.jsonl"), &format!("{}\n{{oops\n", row("[]")))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("/d.jsonl:2:2: not a JSON object"), "{err}");
        let err = parse_dataset(Path::new("/d.jsonl"), &row("[]").replace("octo/demo", "../x"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("repo: \"../x\" is not `owner/name`"), "{err}");
        let err = parse_dataset(Path::new("/d.jsonl"), &format!("{}\n{}\n", row("[]"), row("[]")))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("/d.jsonl:2: instance_id: \"octo__demo-1\" is also on line 1"), "{err}");
        let err = parse_dataset(Path::new("/d.jsonl"), "\n").unwrap_err().to_string();
        assert!(err.contains("no rows"), "{err}");
    }

    #[test]
    fn patch_paths_lists_every_touched_file() {
        let patch = "diff --git a/tests/test_x.py b/tests/test_x.py\nindex 1..2 100644\n--- a/tests/test_x.py\n+++ b/tests/test_x.py\n@@ -1 +1 @@\n-a\n+b\ndiff --git a/new b/file.sh b/new b/file.sh\nnew file mode 100644\n--- /dev/null\n+++ b/new b/file.sh\n@@ -0,0 +1 @@\n+x\ndiff --git a/old.txt b/moved.txt\nrename from old.txt\nrename to moved.txt\n";
        assert_eq!(patch_paths(patch), vec!["tests/test_x.py", "new b/file.sh", "old.txt", "moved.txt"]);
    }
}

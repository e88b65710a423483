//! Benchmarks: a matrix of problems × agents (× repeats) run in fresh sessions and evaluated in clean
//! checkouts, for custom suites (`ampsm_config::bench::CustomBench`) and SWE-bench datasets.
//!
//! - **Plan.** [`Engine::plan_custom_bench`] / [`Engine::plan_swe_bench`] check every repository is a git
//!   repository and every base resolves (custom: errors point at the YAML line; SWE-bench: the repository of
//!   `owner/name` is looked for under `--repos-dir DIR` as `DIR/owner__name`, `DIR/owner/name` or
//!   `DIR/name`, and its `base_commit` must exist there). The plan is stored, normalized, with the run.
//! - **One result** = one problem × agent × repeat: a fresh session whose worktree starts at the base commit
//!   and whose agent sees only the prompt (`problem_statement` for SWE-bench, plus `hints_text` with
//!   `--hints`), one `iterate` with the timeout, then `model_patch = git diff <base> <session HEAD>` (binary
//!   patches included; paths touched by `test_patch` are left out, since the hidden tests own them).
//! - **Evaluation** happens in a clean detached worktree at the base under `AMPSM_HOME/bench/<run>/eval`
//!   (never in the user's checkout; removed afterwards): the model patch is applied (`git apply`, then
//!   `--3way`), then the `test_patch`, then the test command runs with a timeout that kills its whole process
//!   group. Custom: resolved iff `test` exits 0. SWE-bench: the command is `--test-cmd`, else the row's
//!   `test_cmd`, else the official harness's command for the repository ([`crate::jobs::swe_harness`]: its runner
//!   aimed at the test files of `test_patch`). With `{test}` in the command it runs once per
//!   `FAIL_TO_PASS`/`PASS_TO_PASS` id (exit 0 = pass); otherwise once (`{tests}` = every id, `{files}` =
//!   the test files, `{harness}` = the harness's command), and the repository's log format (pytest,
//!   Django, sympy) decides each id; resolved = every listed test passes. `PYTHONPATH` starts with the
//!   evaluation tree. With no test command a result is `not_evaluated` (never a guessed "unresolved"), as
//!   when the harness's runner is not installed (exit 127); an empty patch is `empty_patch`.
//! - **Predictions** go to `<out>/predictions.jsonl` in the official format (`instance_id`,
//!   `model_name_or_path` = `agent[/model]`, `model_patch`), rewritten as results finish; when the run has
//!   several agent configs or repeats, `<out>/predictions/<config>[-rN].jsonl` hold one valid file each.
//! - **Budget.** A run with a budget shares one [`BudgetPool`] across all its agents; once it is spent, the
//!   running agents are stopped (their results are still evaluated, `agent_outcome` = `budget`), nothing new
//!   starts, the rest is `aborted`, and the run ends `aborted` with its `stop_reason`.
//! - **Abort** ([`Engine::abort_bench`], from any process, or Ctrl-C/SIGTERM through
//!   [`crate::jobs::abort_on_signal_for`]) stops the running agents' process groups and marks unstarted
//!   results `aborted`. A run whose runner died (`kill -9`) is settled as `failed` with a note the next time
//!   it is looked at ([`Engine::settle_dead_runners`]).

use crate::jobs::swe_harness::{LogFormat, builtin_command, shell_quote, test_directives};
use crate::jobs::{AbortTarget, Flow, JobAbort, run_workers};
use crate::process::{own_pid, pid_alive};
use crate::reports::metrics_error::MetricsError;
use crate::runs::budget::BudgetPool;
use crate::runs::iterate::IterateRequest;
use crate::runs::script::{ScriptRun, run_script};
use crate::sessions::{CreateSession, LOCK_TIMEOUT};
use crate::{Engine, EngineError};
use ampsm_config::bench::{BenchAgent, CustomBench, SweInstance, load_dataset, patch_paths};
use ampsm_config::{ConfigError, Paths};
use ampsm_core::errorkind::BenchCount;
use ampsm_core::id::{new_id, short_id};
use ampsm_core::{BenchResultStatus, BenchRunStatus, IterationOutcome, Money};
use ampsm_git::{Git, PatchApply, RepoLock};
use ampsm_store::Store;
use ampsm_store::bench::{BenchCounts, BenchResult, BenchRun, NewBenchResult, NewBenchRun, ResultEnd};
use ampsm_store::metrics::RunTable;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Default limit of one evaluation command.
pub const DEFAULT_TEST_TIMEOUT: Duration = Duration::from_secs(600);
/// Largest evaluation output kept in a log file per result.
const LOG_CAP: u64 = 8 * 1024 * 1024;

/// A refused or failed bench command.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("no bench run matches {0:?}")]
    NotFound(String),
    #[error("{reference:?} matches several bench runs: {candidates}; use more characters of the id")]
    Ambiguous { reference: String, candidates: String },
    #[error("{}", missing_repo_text(instance, repo, tried))]
    MissingRepo { instance: String, repo: String, tried: Vec<PathBuf> },
    #[error(
        "instance {instance}: base_commit {commit} is not in {repo}; fetch it with `git -C {repo} fetch origin \
         {commit}` (or clone the full history)"
    )]
    MissingCommit { instance: String, repo: String, commit: String },
    #[error("{0}")]
    BadSelection(String),
    #[error("agent {0} is named twice")]
    AgentTwice(String),
    #[error("{} must be at least 1", .0.describe())]
    CountZero(BenchCount),
    #[error("bench run {run} is running (runner process {pid})")]
    Running { run: String, short: String, pid: i64 },
    #[error("bench run {run} has nothing left to run (every result finished: {summary})")]
    NothingToResume { run: String, summary: String },
    #[error("bench run {run} has spent its budget (${spent:.4} of {})", ampsm_core::dollars(*.budget))]
    BudgetSpent { run: String, short: String, spent: f64, budget: f64 },
    #[error("bench run {run}: {message}")]
    Other { run: String, message: String },
}

impl BenchError {
    /// An unknown run is not found, a wrong reference, repository, commit or selection is bad input, a
    /// stop that protects a running run or the budget is a refusal, the rest failed.
    pub fn kind(&self) -> ampsm_core::ErrorKind {
        use ampsm_core::ErrorKind;
        match self {
            BenchError::NotFound(_) => ErrorKind::NotFound,
            BenchError::Ambiguous { .. }
            | BenchError::MissingRepo { .. }
            | BenchError::MissingCommit { .. }
            | BenchError::BadSelection(_)
            | BenchError::AgentTwice(_)
            | BenchError::CountZero(_)
            | BenchError::NothingToResume { .. } => ErrorKind::BadInput,
            BenchError::Running { .. } | BenchError::BudgetSpent { .. } => ErrorKind::Refused,
            BenchError::Other { .. } => ErrorKind::Failed,
        }
    }

    /// What to do next, when there is more to say than the message.
    pub fn hint(&self) -> Option<ampsm_core::Hint> {
        match self {
            BenchError::NotFound(_) => Some(ampsm_core::Hint::ListBenches),
            BenchError::Running { short, .. } => Some(ampsm_core::Hint::AbortBench { run: short.clone() }),
            BenchError::BudgetSpent { short, .. } => {
                Some(ampsm_core::Hint::ResumeBenchWithBudget { run: short.clone() })
            }
            BenchError::AgentTwice(agent) => {
                Some(ampsm_core::Hint::GiveEachAgentOnce { agent: agent.clone() })
            }
            BenchError::CountZero(count) => Some(ampsm_core::Hint::CountAtLeastOne { count: *count }),
            _ => None,
        }
    }
}

/// One problem of a plan, with everything the runner needs (the test parts are never shown to the agent).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchProblem {
    pub id: String,
    /// The repository root.
    pub repo: PathBuf,
    /// The base as given (branch or commit).
    pub base: String,
    /// What it resolved to when the run was planned.
    pub base_commit: String,
    /// What the agent sees.
    pub prompt: String,
    /// The evaluation command (custom: exit 0 = resolved; SWE-bench: a template with `{test}`/`{tests}`/
    /// `{files}`/`{harness}`, or the harness's own command).
    pub test: Option<String>,
    /// Where `test` came from: `--test-cmd`, `dataset` (the row's `test_cmd`) or `built-in` (SWE-bench).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_from: Option<String>,
    pub test_patch: Option<String>,
    #[serde(rename = "FAIL_TO_PASS")]
    pub fail_to_pass: Vec<String>,
    #[serde(rename = "PASS_TO_PASS")]
    pub pass_to_pass: Vec<String>,
    /// How the test runner names each test in its output (SWE-bench).
    #[serde(default)]
    pub log_format: LogFormat,
    /// The official harness's command for this instance, when its repository is one of SWE-bench's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harness: Option<String>,
    /// The test files of `test_patch` as the runner takes them (`{files}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub test_files: Vec<String>,
    /// The setup command run in each agent worktree (as `new --setup`) and in each evaluation tree (after
    /// the patches, before the test): the problem's or the run's own, else the config's for the
    /// repository, fixed when the run is planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup: Option<String>,
}

/// A checked benchmark: problems × agents × repeats, stored (as JSON) with the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchPlan {
    /// `custom` or `swe-bench-lite`.
    pub kind: String,
    pub name: String,
    /// The YAML or dataset file.
    pub source: PathBuf,
    pub concurrency: u32,
    pub repeats: u32,
    pub timeout_ms: u64,
    pub test_timeout_ms: u64,
    pub budget_usd: Option<Money>,
    pub agents: Vec<BenchAgent>,
    pub problems: Vec<BenchProblem>,
    /// Where predictions go (default `AMPSM_HOME/bench/<run id>`).
    pub out_dir: Option<PathBuf>,
    /// Where the results run (`--executor`); plans stored before executors existed ran locally.
    #[serde(default)]
    pub executor: ampsm_core::Executor,
    /// Warnings found while reading the input (unknown keys).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl BenchPlan {
    /// How many results the plan makes.
    pub fn result_count(&self) -> usize {
        self.problems.len() * self.agents.len() * self.repeats as usize
    }

    fn is_swe(&self) -> bool {
        self.kind == "swe-bench-lite"
    }
}

/// What `bench swe-bench-lite` asks for.
#[derive(Debug, Clone, Default)]
pub struct SweBenchOptions {
    pub dataset: PathBuf,
    pub instances: Vec<String>,
    pub limit: Option<usize>,
    pub repos_dir: Option<PathBuf>,
    /// The matrix of agents (each with its model, or `model` below); empty: `session.default_agent`.
    pub agents: Vec<BenchAgent>,
    /// The model of agents that name none.
    pub model: Option<String>,
    pub concurrency: Option<u32>,
    pub repeats: Option<u32>,
    pub timeout: Option<Duration>,
    pub test_timeout: Option<Duration>,
    pub budget_usd: Option<f64>,
    pub test_cmd: Option<String>,
    /// The setup command of every agent worktree and evaluation tree (`Some("")`: none; `None`: the
    /// config's for the repository).
    pub setup: Option<String>,
    pub hints: bool,
    pub out: Option<PathBuf>,
}

/// One agent config's figures in a run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ConfigSummary {
    /// `agent` or `agent/model`.
    pub label: String,
    pub agent: String,
    pub model: Option<String>,
    pub results: i64,
    pub resolved: i64,
    /// Results whose outcome is known (resolved, unresolved or empty patch).
    pub evaluated: i64,
    /// `resolved / results`; `None` when nothing was evaluated.
    pub resolve_rate: Option<f64>,
    /// `None` when some result's cost is unknown (an unpriced model).
    pub cost_usd: Option<Money>,
    pub mean_cost_usd: Option<Money>,
    pub mean_duration_ms: Option<f64>,
    pub total_tokens: i64,
    /// Results per status.
    pub statuses: BTreeMap<String, i64>,
    /// With repeats (the same problem run k times by this config): how stable the figure is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeats: Option<RepeatStats>,
}

/// What k repeats of every problem say beyond the overall rate.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RepeatStats {
    /// k: the repeats of each problem.
    pub k: i64,
    /// The resolve rate of each repeat (repeat 1, 2, …), over that repeat's results.
    pub rates: Vec<f64>,
    /// The sample standard deviation of `rates`.
    pub rate_stddev: f64,
    /// Problems resolved by at least one of the k repeats, over all problems (pass@k).
    pub pass_at_k: f64,
    /// Problems resolved by every one of the k repeats, over all problems (consistency).
    pub pass_all_k: f64,
}

/// A result as `bench show` presents it (the patch itself is in exports and predictions).
#[derive(Debug, Clone, Serialize)]
pub struct ResultView {
    #[serde(flatten)]
    pub result: BenchResult,
    pub label: String,
    pub session_name: Option<String>,
    pub branch: Option<String>,
    /// How a result running on a cluster node is doing, as its worker last reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<ampsm_store::cluster::TaskProgress>,
}

/// A run with its counts, per-config summary and results.
#[derive(Debug, Clone, Serialize)]
pub struct BenchView {
    #[serde(flatten)]
    pub run: BenchRun,
    /// Whether the runner process recorded for the run is alive.
    pub runner_alive: bool,
    pub note: Option<String>,
    pub counts: BenchCounts,
    /// The scheduler's ids of its cluster jobs, oldest first.
    pub cluster_jobs: Vec<String>,
    pub summary: Vec<ConfigSummary>,
    pub results: Vec<ResultView>,
}

/// `bench compare a b`.
#[derive(Debug, Clone, Serialize)]
pub struct BenchComparison {
    pub a: BenchView,
    pub b: BenchView,
    /// Every config label of either run, in order, with its summary in each.
    pub rows: Vec<(String, Option<ConfigSummary>, Option<ConfigSummary>)>,
    /// Instances resolved (by any config) in `a` and not in `b`, and the other way round.
    pub only_a: Vec<String>,
    pub only_b: Vec<String>,
}

/// What `bench abort` did.
#[derive(Debug, Clone, Serialize)]
pub struct BenchAbortReport {
    pub run_id: String,
    pub name: String,
    #[serde(flatten)]
    pub abort: JobAbort,
}

/// What the runner reports while it works (from its worker threads; observers must be quick).
#[derive(Debug, Clone)]
pub enum BenchEvent {
    Started { result: BenchResult, session: String },
    Finished { result: BenchResult, done: usize, total: usize },
}

/// How a runner's work ended.
#[derive(Debug, Clone, Serialize)]
pub struct BenchOutcome {
    pub run_id: String,
    pub status: BenchRunStatus,
    pub stop_reason: Option<String>,
    pub counts: BenchCounts,
    pub out_dir: Option<String>,
    pub predictions: Option<String>,
    pub took_ms: u64,
}

/// What a result's run cost: unknown (never $0) when the agent reported no usage at all, as with an
/// agent that reports no cost and no price is known; else unknown when some usage has no price.
fn reported_cost(spend: &ampsm_store::bench::SessionSpend) -> Option<Money> {
    if spend.total_tokens == 0 { None } else { spend.cost_usd }
}

fn at(file: &Path, (line, column): (u64, u64), message: String) -> EngineError {
    ConfigError::Invalid { path: file.to_path_buf(), line, column, message }.into()
}

impl Engine {
    /// Reads and checks a custom bench file (see `ampsm_config::bench`): every repository a git repository,
    /// every base a branch or commit there, with errors pointing at the YAML line. `budget` overrides the
    /// file's `budget:`.
    pub fn plan_custom_bench(&self, file: &Path, budget: Option<f64>) -> Result<BenchPlan, EngineError> {
        self.plan_custom_spec(CustomBench::load(file)?, budget)
    }

    /// [`Engine::plan_custom_bench`] for YAML that has no file (pasted in the dashboard): nothing is
    /// written anywhere, errors and warnings say "the pasted YAML, line N: …", and paths must be absolute.
    /// The plan (every problem with its prompt, test and patch) is kept with the run, so resuming needs
    /// no file either.
    pub fn plan_custom_bench_text(&self, text: &str, budget: Option<f64>) -> Result<BenchPlan, EngineError> {
        self.plan_custom_spec(CustomBench::parse_pasted(text)?, budget)
    }

    fn plan_custom_spec(&self, spec: CustomBench, budget: Option<f64>) -> Result<BenchPlan, EngineError> {
        let mut problems = Vec::new();
        for (i, p) in spec.problems.iter().enumerate() {
            let field = format!("problems[{i}]");
            if !p.repo.is_dir() {
                return Err(at(
                    &spec.file,
                    p.repo_at,
                    format!(
                        "{field}.repo: repository {:?} does not exist (resolved to {}; relative paths are relative \
                         to the bench file)",
                        p.repo_written,
                        p.repo.display()
                    ),
                ));
            }
            let root = ampsm_git::repo_root(&p.repo).map_err(|e| {
                at(
                    &spec.file,
                    p.repo_at,
                    format!("{field}.repo: {:?} is not a git repository ({e})", p.repo_written),
                )
            })?;
            let git = Git::new(&root);
            let base = match &p.base {
                Some(b) => b.clone(),
                None => self.default_base_of(&git)?,
            };
            let Some(commit) = git.resolve_commit(&base)? else {
                if !git.has_commits()? {
                    let why = crate::sessions::no_commits(&root);
                    return Err(at(&spec.file, p.repo_at, format!("{field}.repo: {why}")));
                }
                let hint = git.suggest_refs(&base).unwrap_or_default();
                let hint = if hint.is_empty() {
                    String::new()
                } else {
                    format!("; did you mean: {}?", hint.join(", "))
                };
                return Err(at(
                    &spec.file,
                    p.base_at,
                    format!("{field}.base: {base:?} is not a branch or commit in {}{hint}", root.display()),
                ));
            };
            let setup = self.config.setup_or(p.setup.as_deref(), &root);
            problems.push(BenchProblem {
                id: p.id.clone(),
                repo: root,
                base,
                base_commit: commit,
                prompt: p.prompt.clone(),
                test: p.test.clone(),
                test_from: None,
                test_patch: p.test_patch.clone(),
                fail_to_pass: Vec::new(),
                pass_to_pass: Vec::new(),
                log_format: LogFormat::default(),
                harness: None,
                test_files: Vec::new(),
                setup,
            });
        }
        Ok(BenchPlan {
            kind: "custom".into(),
            name: spec.name.clone(),
            source: spec.file.clone(),
            concurrency: spec.concurrency,
            repeats: spec.repeats,
            timeout_ms: spec.timeout.unwrap_or_else(|| self.config.agent_timeout()).as_millis() as u64,
            test_timeout_ms: spec.test_timeout.unwrap_or(DEFAULT_TEST_TIMEOUT).as_millis() as u64,
            budget_usd: budget.or(spec.budget_usd).or(self.config.bench.budget_usd).map(Money::from_usd),
            agents: spec.agents.clone(),
            problems,
            out_dir: None,
            executor: spec.executor.unwrap_or_default(),
            warnings: spec.warnings.iter().map(ToString::to_string).collect(),
        })
    }

    /// Reads a SWE-bench dataset, selects instances (`--instances`, `--limit`) and finds each repository and
    /// base commit under the repos folder (default `AMPSM_HOME/repos`).
    pub fn plan_swe_bench(&self, o: &SweBenchOptions) -> Result<BenchPlan, EngineError> {
        let rows = load_dataset(&o.dataset)?;
        let dataset = if o.dataset.is_absolute() {
            o.dataset.clone()
        } else {
            std::env::current_dir().map(|d| d.join(&o.dataset)).unwrap_or_else(|_| o.dataset.clone())
        };
        let mut selected: Vec<SweInstance> = if o.instances.is_empty() {
            rows
        } else {
            let unknown: Vec<&String> =
                o.instances.iter().filter(|id| !rows.iter().any(|r| &r.instance_id == *id)).collect();
            if !unknown.is_empty() {
                return Err(BenchError::BadSelection(format!(
                    "{}: no instance {} in the dataset",
                    dataset.display(),
                    unknown.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ")
                ))
                .into());
            }
            rows.into_iter().filter(|r| o.instances.contains(&r.instance_id)).collect()
        };
        if let Some(n) = o.limit {
            if n == 0 {
                return Err(BenchError::CountZero(BenchCount::Limit).into());
            }
            selected.truncate(n);
        }
        let repos_dir = match &o.repos_dir {
            Some(d) if d.is_absolute() => d.clone(),
            Some(d) => std::env::current_dir().map(|c| c.join(d)).unwrap_or_else(|_| d.clone()),
            None => self.paths.home.join("repos"),
        };
        let mut agents: Vec<BenchAgent> = if o.agents.is_empty() {
            vec![BenchAgent { agent: self.config.session.default_agent.clone(), model: None }]
        } else {
            o.agents.clone()
        };
        for a in &mut agents {
            if !ampsm_core::agents::is_agent_name(&a.agent) {
                return Err(EngineError::UnknownAgent(a.agent.clone()));
            }
            if a.model.is_none() {
                a.model = o.model.clone();
            }
        }
        if let Some(twice) = agents.iter().enumerate().find(|(i, a)| agents[..*i].contains(a)).map(|(_, a)| a)
        {
            return Err(BenchError::AgentTwice(twice.label()).into());
        }
        let mut problems = Vec::new();
        for inst in &selected {
            let root = find_swe_repo(&repos_dir, inst)?;
            let git = Git::new(&root);
            let Some(commit) = git.resolve_commit(&format!("{}^{{commit}}", inst.base_commit))? else {
                return Err(BenchError::MissingCommit {
                    instance: inst.instance_id.clone(),
                    repo: root.display().to_string(),
                    commit: inst.base_commit.clone(),
                }
                .into());
            };
            let mut prompt = inst.problem_statement.trim().to_string();
            if o.hints
                && let Some(h) = &inst.hints_text
            {
                prompt.push_str("\n\nHints:\n");
                prompt.push_str(h.trim());
            }
            let harness = builtin_command(&inst.repo, inst.version.as_deref(), &inst.test_patch);
            let (test, test_from) = match (&o.test_cmd, &inst.test_cmd, &harness) {
                (Some(t), _, _) => (Some(t.clone()), Some("--test-cmd")),
                (None, Some(t), _) => (Some(t.clone()), Some("dataset")),
                (None, None, Some(h)) => (Some(h.clone()), Some("built-in")),
                (None, None, None) => (None, None),
            };
            if harness.is_none()
                && let Some(t) = test.as_deref().filter(|t| t.contains("{harness}"))
            {
                return Err(BenchError::BadSelection(format!(
                    "{}:{}: instance {}: the test command {t:?} uses {{harness}}, but {} is not a SWE-bench \
                     repository with a known test command",
                    dataset.display(),
                    inst.line,
                    inst.instance_id,
                    inst.repo
                ))
                .into());
            }
            let setup = self.config.setup_or(o.setup.as_deref(), &root);
            problems.push(BenchProblem {
                id: inst.instance_id.clone(),
                repo: root,
                base: inst.base_commit.clone(),
                base_commit: commit,
                prompt,
                test,
                test_from: test_from.map(str::to_string),
                test_patch: Some(inst.test_patch.clone()).filter(|t| !t.trim().is_empty()),
                fail_to_pass: inst.fail_to_pass.clone(),
                pass_to_pass: inst.pass_to_pass.clone(),
                log_format: LogFormat::for_repo(&inst.repo),
                harness,
                test_files: test_directives(&inst.repo, &inst.test_patch),
                setup,
            });
        }
        if problems.is_empty() {
            return Err(
                BenchError::BadSelection(format!("{}: no instance selected", dataset.display())).into()
            );
        }
        for (count, v) in [(BenchCount::Concurrency, o.concurrency), (BenchCount::Repeats, o.repeats)] {
            if v == Some(0) {
                return Err(BenchError::CountZero(count).into());
            }
        }
        let name = format!(
            "{} {}",
            dataset
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "swe-bench".into()),
            agents.iter().map(BenchAgent::label).collect::<Vec<_>>().join(" vs ")
        );
        Ok(BenchPlan {
            kind: "swe-bench-lite".into(),
            name,
            source: dataset,
            concurrency: o.concurrency.unwrap_or(1).min(ampsm_config::bench::MAX_CONCURRENCY),
            repeats: o.repeats.unwrap_or(1).min(ampsm_config::bench::MAX_REPEATS),
            timeout_ms: o.timeout.unwrap_or_else(|| self.config.agent_timeout()).as_millis() as u64,
            test_timeout_ms: o.test_timeout.unwrap_or(DEFAULT_TEST_TIMEOUT).as_millis() as u64,
            budget_usd: o.budget_usd.or(self.config.bench.budget_usd).map(Money::from_usd),
            agents,
            problems,
            out_dir: o.out.clone(),
            executor: ampsm_core::Executor::Local,
            warnings: Vec::new(),
        })
    }

    fn default_base_of(&self, git: &Git) -> Result<String, EngineError> {
        let configured = &self.config.git.default_base_branch;
        if !configured.is_empty() && git.resolve_commit(configured)?.is_some() {
            return Ok(configured.clone());
        }
        Ok(git.default_branch()?)
    }

    /// Records a planned run (running under this process) with all its results queued.
    pub fn create_bench_run(&mut self, plan: &BenchPlan) -> Result<BenchRun, EngineError> {
        if let Some(b) = plan.budget_usd.filter(|b| !b.is_positive()) {
            return Err(MetricsError::BadBudget(b.usd()).into());
        }
        for a in &plan.agents {
            if !ampsm_core::agents::is_agent_name(&a.agent) {
                return Err(EngineError::UnknownAgent(a.agent.clone()));
            }
        }
        let id = new_id();
        let out_dir = match &plan.out_dir {
            Some(d) if d.is_absolute() => d.clone(),
            Some(d) => std::env::current_dir().map(|c| c.join(d)).unwrap_or_else(|_| d.clone()),
            None => self.paths.home.join("bench").join(&id),
        };
        std::fs::create_dir_all(&out_dir)
            .map_err(|source| EngineError::Io { path: out_dir.clone(), source })?;
        let mut stored = plan.clone();
        stored.out_dir = Some(out_dir.clone());
        stored.warnings.clear();
        let config = serde_json::to_string(&stored)
            .map_err(|e| EngineError::Invalid(format!("cannot record the bench plan: {e}")))?;
        let mut results = Vec::new();
        for p in &plan.problems {
            for a in &plan.agents {
                for r in 0..plan.repeats {
                    results.push(NewBenchResult {
                        id: new_id(),
                        seq: results.len() as i64 + 1,
                        instance_id: p.id.clone(),
                        agent: a.agent.clone(),
                        model: a.model.clone(),
                        repeat: r as i64,
                    });
                }
            }
        }
        self.store.insert_bench_run(
            &NewBenchRun {
                id: id.clone(),
                kind: plan.kind.clone(),
                name: plan.name.clone(),
                config,
                concurrency: plan.concurrency.max(1) as i64,
                budget_usd: plan.budget_usd,
                out_dir: Some(out_dir.to_string_lossy().into_owned()),
                runner_pid: own_pid(),
            },
            &results,
        )?;
        self.store.set_bench_executor(&id, plan.executor)?;
        self.store.get_bench_run(&id)?.ok_or_else(|| other(&id, "the run was not recorded"))
    }

    /// Finds a run by full id, unique id prefix, or name (the oldest of that name).
    pub fn resolve_bench_run(&self, reference: &str) -> Result<BenchRun, EngineError> {
        let id = match self.store.resolve_run_id(RunTable::BenchRuns, reference) {
            Ok(Some(id)) => id,
            Ok(None) => return Err(BenchError::NotFound(reference.to_string()).into()),
            Err(ampsm_store::StoreError::AmbiguousSession { reference, candidates }) => {
                let candidates =
                    candidates.split(", ").map(|c| short_id(c).to_string()).collect::<Vec<_>>().join(", ");
                return Err(BenchError::Ambiguous { reference, candidates }.into());
            }
            Err(e) => return Err(e.into()),
        };
        self.store.get_bench_run(&id)?.ok_or_else(|| BenchError::NotFound(reference.to_string()).into())
    }

    /// Makes a run ready to go on in this process (`bench resume`): a run whose runner died is settled
    /// first; refuses while a runner is alive, when nothing is left to run, or when the budget (the run's,
    /// or `budget_usd` which replaces it) is already spent. Results that did not finish are queued again
    /// (each gets a fresh session); finished results are kept.
    pub fn prepare_bench_resume(
        &mut self,
        reference: &str,
        budget_usd: Option<f64>,
    ) -> Result<BenchRun, EngineError> {
        self.settle_dead_runners()?;
        let run = self.resolve_bench_run(reference)?;
        let label = format!("{} ({})", run.name, short_id(&run.id));
        if let Some(pid) = run.runner_pid.filter(|p| *p != own_pid() && pid_alive(*p)) {
            return Err(BenchError::Running { run: label, short: short_id(&run.id).to_string(), pid }.into());
        }
        let budget_usd = budget_usd.map(Money::from_usd);
        if let Some(b) = budget_usd.filter(|b| !b.is_positive()) {
            return Err(MetricsError::BadBudget(b.usd()).into());
        }
        let counts = self.store.bench_counts(&run.id)?;
        if counts.aborted + counts.queued + counts.running == 0 {
            return Err(BenchError::NothingToResume { run: label, summary: counts.summary() }.into());
        }
        if let Some(budget) = budget_usd.or(run.budget_usd) {
            let spent = self.store.bench_spend_usd(&run.id)?;
            if spent.reached(budget) {
                return Err(BenchError::BudgetSpent {
                    run: label,
                    short: short_id(&run.id).to_string(),
                    spent: spent.usd(),
                    budget: budget.usd(),
                }
                .into());
            }
        }
        self.store.resume_bench_run(&run.id, own_pid(), budget_usd)?;
        self.store.get_bench_run(&run.id)?.ok_or_else(|| BenchError::NotFound(reference.to_string()).into())
    }

    /// A run with its counts, per-config summary and results, as `bench show` presents it.
    pub fn bench_view(&self, reference: &str) -> Result<BenchView, EngineError> {
        let run = self.resolve_bench_run(reference)?;
        let counts = self.store.bench_counts(&run.id)?;
        // Results running on cluster nodes (none for a local run).
        let mut remote = self.store.running_task_progress(ampsm_store::jobs::JobKind::Bench, &run.id)?;
        let mut results = Vec::new();
        for r in self.store.bench_results(&run.id)? {
            let session = r
                .session_id
                .as_ref()
                .and_then(|id| self.store.get_session(&ampsm_core::SessionId::from_stored(id.clone())).ok());
            results.push(ResultView {
                remote: remote.remove(&r.id).filter(|_| r.status == BenchResultStatus::Running),
                label: r.config_label(),
                session_name: session.as_ref().map(|s| s.name.clone()),
                branch: session.map(|s| s.branch),
                result: BenchResult { model_patch: None, ..r },
            });
        }
        let summary = summarize(&results.iter().map(|v| &v.result).collect::<Vec<_>>());
        let runner_alive = run.runner_pid.is_some_and(pid_alive);
        let note = match (run.status, &run.stop_reason) {
            (BenchRunStatus::Running, _) if !runner_alive => Some(format!(
                "the runner of this run ({}) is gone; its unfinished results will be marked aborted",
                run.runner_pid.map(|p| format!("process {p}")).unwrap_or_else(|| "unknown process".into())
            )),
            (_, Some(reason)) => Some(format!("stopped early: {reason}")),
            _ => None,
        };
        let cluster_jobs = self
            .store
            .submissions_of(ampsm_store::jobs::JobKind::Bench, &run.id)?
            .into_iter()
            .filter_map(|s| s.cluster_job)
            .collect();
        Ok(BenchView { run, runner_alive, note, counts, cluster_jobs, summary, results })
    }

    /// Two runs side by side.
    pub fn compare_bench(&self, a: &str, b: &str) -> Result<BenchComparison, EngineError> {
        let (a, b) = (self.bench_view(a)?, self.bench_view(b)?);
        let mut labels: Vec<String> = a.summary.iter().map(|s| s.label.clone()).collect();
        for s in &b.summary {
            if !labels.contains(&s.label) {
                labels.push(s.label.clone());
            }
        }
        let find = |v: &BenchView, l: &str| v.summary.iter().find(|s| s.label == l).cloned();
        let rows = labels.iter().map(|l| (l.clone(), find(&a, l), find(&b, l))).collect();
        let resolved = |v: &BenchView| -> Vec<String> {
            let mut ids: Vec<String> = Vec::new();
            for r in &v.results {
                if r.result.status == BenchResultStatus::Resolved && !ids.contains(&r.result.instance_id) {
                    ids.push(r.result.instance_id.clone());
                }
            }
            ids
        };
        let (ra, rb) = (resolved(&a), resolved(&b));
        let only_a = ra.iter().filter(|i| !rb.contains(i)).cloned().collect();
        let only_b = rb.iter().filter(|i| !ra.contains(i)).cloned().collect();
        Ok(BenchComparison { a, b, rows, only_a, only_b })
    }

    /// Stops a run from any process: sets the abort flag, marks queued results aborted and stops the
    /// process group of every running agent of the run (see [`crate::jobs`]). Returns within about two
    /// seconds.
    pub fn abort_bench(&mut self, reference: &str) -> Result<BenchAbortReport, EngineError> {
        let run = self.resolve_bench_run(reference)?;
        let job = AbortTarget::Bench(run.id.clone());
        let abort = self.abort_job(&job, run.status, "aborted by `amp-sessions bench abort`")?;
        Ok(BenchAbortReport { run_id: run.id, name: run.name, abort })
    }
}

/// The repository of an instance under `dir`: `dir/owner__name`, `dir/owner/name` or `dir/name`, each a
/// repository of its own (a folder inside another repository does not count).
fn find_swe_repo(dir: &Path, inst: &SweInstance) -> Result<PathBuf, EngineError> {
    let (owner, name) = inst.owner_and_name();
    let candidates = [dir.join(format!("{owner}__{name}")), dir.join(owner).join(name), dir.join(name)];
    for c in &candidates {
        if c.join(".git").exists()
            && let Ok(root) = ampsm_git::repo_root(c)
        {
            return Ok(root);
        }
    }
    Err(BenchError::MissingRepo {
        instance: inst.instance_id.clone(),
        repo: inst.repo.clone(),
        tried: candidates.to_vec(),
    }
    .into())
}

fn missing_repo_text(instance: &str, repo: &str, tried: &[PathBuf]) -> String {
    let first = tried.first().cloned().unwrap_or_default();
    let dir = first.parent().map(|d| d.display().to_string()).unwrap_or_default();
    format!(
        "instance {instance}: no clone of {repo} under {dir} (tried {}); clone it with `git clone \
         https://github.com/{repo} {}`",
        tried.iter().map(|c| c.display().to_string()).collect::<Vec<_>>().join(", "),
        first.display()
    )
}

pub(crate) fn other(run: &str, message: &str) -> EngineError {
    BenchError::Other { run: short_id(run).to_string(), message: message.to_string() }.into()
}

/// Per-config figures, in the order configs first appear.
fn summarize(results: &[&BenchResult]) -> Vec<ConfigSummary> {
    let mut out: Vec<ConfigSummary> = Vec::new();
    let mut costs: HashMap<String, (Money, i64, bool)> = HashMap::new();
    let mut durations: HashMap<String, (i64, i64)> = HashMap::new();
    for r in results {
        let label = r.config_label();
        let i = match out.iter().position(|s| s.label == label) {
            Some(i) => i,
            None => {
                out.push(ConfigSummary {
                    label: label.clone(),
                    agent: r.agent.clone(),
                    model: r.model.clone(),
                    results: 0,
                    resolved: 0,
                    evaluated: 0,
                    resolve_rate: None,
                    cost_usd: None,
                    mean_cost_usd: None,
                    mean_duration_ms: None,
                    total_tokens: 0,
                    statuses: BTreeMap::new(),
                    repeats: None,
                });
                out.len() - 1
            }
        };
        let s = &mut out[i];
        s.results += 1;
        *s.statuses.entry(r.status.to_string()).or_default() += 1;
        if r.status == BenchResultStatus::Resolved {
            s.resolved += 1;
        }
        if r.status.is_judged() {
            s.evaluated += 1;
        }
        s.total_tokens += r.total_tokens.unwrap_or(0);
        if r.session_id.is_some() && r.agent_outcome.is_some() {
            let c = costs.entry(label.clone()).or_insert((Money::ZERO, 0, false));
            match r.cost_usd {
                Some(v) => c.0 += v,
                None => c.2 = true,
            }
            c.1 += 1;
        }
        if let Some(d) = r.duration_ms {
            let e = durations.entry(label).or_insert((0, 0));
            e.0 += d;
            e.1 += 1;
        }
    }
    for s in &mut out {
        if s.evaluated > 0 {
            s.resolve_rate = Some(s.resolved as f64 / s.results as f64);
        }
        match costs.get(&s.label) {
            Some((sum, n, unknown)) if !unknown => {
                s.cost_usd = Some(*sum);
                s.mean_cost_usd = (*n > 0).then(|| *sum / *n as f64);
            }
            Some(_) => {}
            None => s.cost_usd = Some(Money::ZERO),
        }
        if let Some((sum, n)) = durations.get(&s.label).filter(|(_, n)| *n > 0) {
            s.mean_duration_ms = Some(*sum as f64 / *n as f64);
        }
        if s.evaluated > 0 {
            let mine: Vec<&BenchResult> =
                results.iter().copied().filter(|r| r.config_label() == s.label).collect();
            s.repeats = repeat_stats(&mine);
        }
    }
    out
}

/// [`RepeatStats`] of one config's results, when they hold more than one repeat.
fn repeat_stats(results: &[&BenchResult]) -> Option<RepeatStats> {
    let mut by_repeat: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    let mut by_problem: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for r in results {
        let ok = i64::from(r.status == BenchResultStatus::Resolved);
        let e = by_repeat.entry(r.repeat).or_default();
        e.0 += ok;
        e.1 += 1;
        let p = by_problem.entry(r.instance_id.as_str()).or_default();
        p.0 += ok;
        p.1 += 1;
    }
    if by_repeat.len() < 2 {
        return None;
    }
    let rates: Vec<f64> = by_repeat.values().map(|(ok, n)| *ok as f64 / *n as f64).collect();
    let mean = rates.iter().sum::<f64>() / rates.len() as f64;
    let variance = rates.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (rates.len() - 1) as f64;
    let problems = by_problem.len() as f64;
    Some(RepeatStats {
        k: by_repeat.len() as i64,
        rates,
        rate_stddev: variance.sqrt(),
        pass_at_k: by_problem.values().filter(|(ok, _)| *ok > 0).count() as f64 / problems,
        pass_all_k: by_problem.values().filter(|(ok, n)| ok == n).count() as f64 / problems,
    })
}

// ---- the runner ----

/// What the workers share.
struct Shared {
    run: BenchRun,
    plan: BenchPlan,
    out_dir: PathBuf,
    eval_root: PathBuf,
    queue: Mutex<VecDeque<BenchResult>>,
    abort: Arc<AtomicBool>,
    pool: Option<Arc<BudgetPool>>,
    observer: Arc<dyn Fn(&BenchEvent) + Send + Sync>,
    done: Mutex<usize>,
    total: usize,
    /// Serializes rewrites of the predictions files.
    predictions: Mutex<()>,
}

/// Runs the queued results of a run to the end (see the module docs). `observer` is called from the worker
/// threads as results start and finish.
pub fn run_bench(
    paths: &Paths,
    run_id: &str,
    observer: Arc<dyn Fn(&BenchEvent) + Send + Sync>,
) -> Result<BenchOutcome, EngineError> {
    run_bench_in(paths, run_id, observer, None)
}

/// [`run_bench`] with the run's budget pool given (a cluster worker reports its live spend from it).
pub(crate) fn run_bench_in(
    paths: &Paths,
    run_id: &str,
    observer: Arc<dyn Fn(&BenchEvent) + Send + Sync>,
    given_pool: Option<Arc<BudgetPool>>,
) -> Result<BenchOutcome, EngineError> {
    let started = Instant::now();
    let mut engine = Engine::open_at(paths.clone())?;
    let run = engine.store.get_bench_run(run_id)?.ok_or_else(|| BenchError::NotFound(run_id.to_string()))?;
    if let Some(pid) = run.runner_pid.filter(|p| *p != own_pid() && pid_alive(*p)) {
        return Err(BenchError::Running {
            run: format!("{} ({})", run.name, short_id(run_id)),
            short: short_id(run_id).to_string(),
            pid,
        }
        .into());
    }
    let config = engine.store.bench_run_config(run_id)?.unwrap_or_default();
    let plan: BenchPlan = serde_json::from_str(&config)
        .map_err(|e| other(run_id, &format!("its stored plan cannot be read: {e}")))?;
    let out_dir = plan.out_dir.clone().unwrap_or_else(|| paths.home.join("bench").join(run_id));
    std::fs::create_dir_all(&out_dir).map_err(|source| EngineError::Io { path: out_dir.clone(), source })?;
    if plan.executor != ampsm_core::Executor::Local {
        // Every front end (the CLI's runner, the dashboard) comes through here.
        return crate::jobs::cluster::bench::run_bench_on_cluster(
            engine, run, plan, out_dir, observer, started,
        );
    }
    let pool = match given_pool {
        Some(p) => Some(p),
        None => run
            .budget_usd
            .filter(|b| b.is_positive())
            .map(|limit| -> Result<_, EngineError> {
                // After a resume, what the earlier attempts spent counts.
                let spent = engine.store.bench_spend_usd(run_id)?;
                Ok(BudgetPool::new(format!("bench run {}", short_id(run_id)), limit, spent))
            })
            .transpose()?,
    };
    let queue: VecDeque<BenchResult> = engine
        .store
        .bench_results(run_id)?
        .into_iter()
        .filter(|r| r.status == BenchResultStatus::Queued)
        .collect();
    let total = queue.len();
    let workers = (run.concurrency.max(1) as usize).min(total).max(1);
    let abort = Arc::new(AtomicBool::new(engine.store.bench_abort_requested(run_id)?));
    let shared = Arc::new(Shared {
        run: run.clone(),
        eval_root: paths.home.join("bench").join(run_id).join("eval"),
        plan,
        out_dir: out_dir.clone(),
        queue: Mutex::new(queue),
        abort: abort.clone(),
        pool: pool.clone(),
        observer,
        done: Mutex::new(0),
        total,
        predictions: Mutex::new(()),
    });
    let next = || shared.queue.lock().ok().and_then(|mut q| q.pop_front());
    let work =
        |engine: &mut Engine, result: BenchResult| run_result(engine, &shared, result).map(|()| Flow::Next);
    let job = AbortTarget::Bench(run_id.to_string());
    let first_error = run_workers(paths, &job, workers, &abort, &next, &work);
    let _ = std::fs::remove_dir_all(&shared.eval_root);

    let aborted = abort.load(Ordering::SeqCst);
    let budget_reason = pool.as_ref().and_then(|p| p.stop_reason());
    end_bench_run(&mut engine, &run, &shared.plan, &out_dir, (aborted, budget_reason), first_error, started)
}

/// Ends a benchmark run whose runner is done (local or on a cluster): unstarted results end `aborted`
/// when it was stopped (`stopped.0`, or the abort flag in the store; `stopped.1`, its budget's reason)
/// or its runner failed, the predictions are written, the run gets its final status and stop reason, and
/// one notification tells how it ended.
pub(crate) fn end_bench_run(
    engine: &mut Engine,
    run: &BenchRun,
    plan: &BenchPlan,
    out_dir: &Path,
    stopped: (bool, Option<String>),
    first_error: Option<EngineError>,
    started: Instant,
) -> Result<BenchOutcome, EngineError> {
    let run_id = run.id.as_str();
    let (aborted, budget_reason) = stopped;
    let aborted = aborted || engine.store.bench_abort_requested(run_id)?;
    let stop_reason = if aborted {
        engine.store.abort_queued_bench_results(run_id, "aborted before it started")?;
        Some("aborted (Ctrl-C, SIGTERM or `amp-sessions bench abort`)".to_string())
    } else if let Some(reason) = &budget_reason {
        engine.store.abort_queued_bench_results(run_id, &format!("not started: {reason}"))?;
        Some(reason.clone())
    } else if let Some(e) = &first_error {
        engine.store.abort_queued_bench_results(run_id, &format!("not started: the runner failed: {e}"))?;
        Some(format!("the runner failed: {e}"))
    } else {
        None
    };
    let status = BenchRunStatus::final_for(aborted || budget_reason.is_some(), first_error.is_none());
    let predictions = write_predictions_of(&engine.store, run_id, plan, out_dir).ok();
    engine.store.finish_bench_run(run_id, status, stop_reason.as_deref())?;
    let counts = engine.store.bench_counts(run_id)?;
    crate::notify::notify_run_end(
        engine,
        (crate::notify::Subject::Bench, run_id),
        &run.name,
        status,
        stop_reason.as_deref(),
        budget_reason.is_some() && !aborted,
        format!("bench run {}: {status}: {} resolved", run.name, counts.resolved_text()),
    );
    if let Some(e) = first_error {
        return Err(e);
    }
    Ok(BenchOutcome {
        run_id: run_id.to_string(),
        status,
        stop_reason: engine.store.get_bench_run(run_id)?.and_then(|r| r.stop_reason),
        counts,
        out_dir: Some(out_dir.display().to_string()),
        predictions: predictions.map(|p| p.display().to_string()),
        took_ms: started.elapsed().as_millis() as u64,
    })
}

/// Runs one result to its final status.
fn run_result(engine: &mut Engine, sh: &Shared, result: BenchResult) -> Result<(), EngineError> {
    let finish = |engine: &mut Engine, end: ResultEnd| -> Result<(), EngineError> {
        engine.store.finish_bench_result(&result.id, &end)?;
        let done = match sh.done.lock() {
            Ok(mut d) => {
                *d += 1;
                *d
            }
            Err(_) => 0,
        };
        if let Ok(_guard) = sh.predictions.lock() {
            let _ = write_predictions(&engine.store, sh);
        }
        if let Some(row) = engine.store.get_bench_result(&result.id)? {
            (sh.observer)(&BenchEvent::Finished { result: row, done, total: sh.total });
        }
        Ok(())
    };
    let not_started =
        |error: String| ResultEnd { error: Some(error), ..ResultEnd::new(BenchResultStatus::Aborted) };
    if sh.abort.load(Ordering::SeqCst) {
        if engine.store.get_bench_result(&result.id)?.is_some_and(|r| !r.is_finished()) {
            return finish(engine, not_started("aborted before it started".into()));
        }
        return Ok(());
    }
    if let Some(reason) = sh.pool.as_ref().and_then(|p| p.stop_reason()) {
        return finish(engine, not_started(format!("not started: {reason}")));
    }
    let Some(problem) = sh.plan.problems.iter().find(|p| p.id == result.instance_id).cloned() else {
        return finish(
            engine,
            ResultEnd {
                error: Some(format!("problem {:?} is not in the run's plan", result.instance_id)),
                ..ResultEnd::new(BenchResultStatus::Error)
            },
        );
    };
    if !engine.store.start_bench_result(&result.id)? {
        // `bench abort` marked it meanwhile.
        return Ok(());
    }
    let session = match engine.create_session(CreateSession {
        repo: problem.repo.clone(),
        name: session_name(
            &result.instance_id,
            &sh.run.id,
            result.seq,
            engine.store.bench_result_sessions(&result.id)? + 1,
        ),
        prompt: Some(problem.prompt.clone()),
        base: Some(problem.base_commit.clone()),
        agent: Some(result.agent.clone()),
        model: result.model.clone(),
        script: None,
        budget_usd: None,
        batch_item_id: None,
        bench_result_id: Some(result.id.clone()),
        // The plan fixed the setup (an empty command runs none).
        setup: Some(problem.setup.clone().unwrap_or_default()),
        ..Default::default()
    }) {
        Ok(s) => s,
        Err(e) => {
            return finish(
                engine,
                ResultEnd {
                    error: Some(format!("cannot create the session: {e}")),
                    ..ResultEnd::new(BenchResultStatus::Error)
                },
            );
        }
    };
    engine.store.set_bench_result_session(&result.id, session.id.as_str())?;
    (sh.observer)(&BenchEvent::Started { result: result.clone(), session: session.name.clone() });
    let request = IterateRequest {
        session: session.id.to_string(),
        prompt: None,
        timeout: Some(Duration::from_millis(sh.plan.timeout_ms.max(1))),
        budget_pool: sh.pool.clone(),
        interrupt: None,
    };
    let iterated = engine.iterate(request, &mut |_| {});
    let (agent_outcome, agent_note, duration_ms) = match iterated {
        Ok(report) => {
            let outcome = report.iteration.outcome.unwrap_or(IterationOutcome::Failed);
            let note = (outcome != IterationOutcome::Success).then(|| {
                report.iteration.error.clone().unwrap_or_else(|| format!("the agent run ended: {outcome}"))
            });
            let took = report.iteration.ended_at.map(|e| e - report.iteration.started_at);
            (Some(outcome), note, took)
        }
        Err(EngineError::Metrics(MetricsError::PoolExhausted { reason, .. })) => {
            // Nothing ran in it: the session is removed (its row stays, named by the result).
            let _ = engine.remove_session(session.id.as_str(), false, false);
            return finish(
                engine,
                ResultEnd {
                    error: Some(format!("not started: {reason}")),
                    ..ResultEnd::new(BenchResultStatus::Aborted)
                },
            );
        }
        Err(e) => {
            let spend = engine.store.bench_session_spend(session.id.as_str())?;
            return finish(
                engine,
                ResultEnd {
                    error: Some(format!("the agent run failed: {e}")),
                    total_tokens: Some(spend.total_tokens),
                    cost_usd: reported_cost(&spend),
                    ..ResultEnd::new(BenchResultStatus::Error)
                },
            );
        }
    };
    let spend = engine.store.bench_session_spend(session.id.as_str())?;
    let mut end = ResultEnd {
        agent_outcome,
        duration_ms,
        total_tokens: Some(spend.total_tokens),
        cost_usd: reported_cost(&spend),
        // Every path below sets the final status.
        ..ResultEnd::new(BenchResultStatus::Error)
    };
    let notes: Vec<String> = agent_note.into_iter().collect();
    let head =
        Git::new(&session.worktree_path).resolve_commit("HEAD")?.unwrap_or(problem.base_commit.clone());
    let hidden = problem.test_patch.as_deref().map(patch_paths).unwrap_or_default();
    let patch = match Git::new(&problem.repo).diff_binary(&problem.base_commit, &head, &hidden) {
        Ok(p) => p,
        Err(e) => {
            end.status = BenchResultStatus::Error;
            end.error = Some(join_notes(&notes, &format!("cannot take the model patch: {e}")));
            return finish(engine, end);
        }
    };
    // The stored and exported copy of the patch never holds a secret value; the user is told where one was.
    let mut notes = notes;
    let patch_text = String::from_utf8_lossy(&patch).into_owned();
    let redactor = crate::runs::leaks::agents_redactor(&engine.config);
    let leaks = crate::runs::leaks::leaks_in_diff(&patch_text, &redactor);
    if !leaks.is_empty() {
        notes.push(format!(
            "the agent's change holds secret values ({}); they are redacted in the stored patch",
            crate::runs::leaks::describe(&leaks)
        ));
    }
    end.model_patch = Some(redactor.apply(patch_text));
    if engine.store.bench_abort_requested(&sh.run.id)? {
        // `bench abort` may have stopped the agent before the watcher saw the flag.
        sh.abort.store(true, Ordering::SeqCst);
    }
    if sh.abort.load(Ordering::SeqCst) {
        // The user asked to stop: what the agent did is kept (session branch, patch), not evaluated; an
        // agent stopped before it changed anything is aborted too (not an empty patch), so that resume runs it.
        end.status = BenchResultStatus::Aborted;
        end.error = Some(join_notes(&notes, "aborted while the agent ran (not evaluated)"));
        return finish(engine, end);
    }
    if patch.iter().all(u8::is_ascii_whitespace) {
        end.status = BenchResultStatus::EmptyPatch;
        end.resolved = Some(false);
        end.error = Some(join_notes(&notes, "the agent changed nothing (outside the test files)"));
        return finish(engine, end);
    }
    let Some(test) = problem.test.clone() else {
        end.status = BenchResultStatus::NotEvaluated;
        end.error = Some(join_notes(
            &notes,
            if sh.plan.is_swe() {
                "not evaluated: no test command (the repository is not one of SWE-bench's, whose commands are \
                 built in; pass --test-cmd, e.g. 'python -m pytest -rA {tests}')"
            } else {
                "not evaluated: the problem has no `test:` command"
            },
        ));
        return finish(engine, end);
    };
    match evaluate(engine, sh, &result, &problem, &test, &patch) {
        Ok(ev) => {
            end.status = ev.status;
            end.resolved = ev.resolved;
            end.tests_passed = ev.passed;
            end.tests_failed = ev.failed;
            end.test_report = Some(ev.report.to_string());
            end.error = match (ev.note, notes.is_empty()) {
                (Some(n), _) => Some(join_notes(&notes, &n)),
                (None, false) => Some(notes.join("; ")),
                (None, true) => None,
            };
        }
        Err(e) => {
            end.status = BenchResultStatus::Error;
            end.error = Some(join_notes(&notes, &format!("evaluation failed: {e}")));
        }
    }
    finish(engine, end)
}

fn join_notes(notes: &[String], last: &str) -> String {
    let mut all = notes.to_vec();
    all.push(last.to_string());
    all.join("; ")
}

/// The session name of a result: `<instance>-<run short id>-<seq>`, within the 64-character limit.
/// `<instance>-<run short id>-<seq>`, and `-<attempt>` after it for the attempts of a resumed run.
pub(crate) fn session_name(instance: &str, run_id: &str, seq: i64, attempt: i64) -> String {
    let suffix = match attempt {
        ..=1 => format!("-{}-{seq}", short_id(run_id)),
        n => format!("-{}-{seq}-{n}", short_id(run_id)),
    };
    let keep = ampsm_core::names::MAX_NAME_LEN.saturating_sub(suffix.len());
    let cleaned: String = instance
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '-' })
        .take(keep)
        .collect();
    let head = cleaned.trim_start_matches(['.', '-', '_']).trim_end_matches(['.', '-']);
    let name = format!("{head}{suffix}");
    if ampsm_core::validate_session_name(&name).is_ok() { name } else { format!("bench{suffix}") }
}

/// What an evaluation found.
struct Evaluation {
    status: BenchResultStatus,
    resolved: Option<bool>,
    passed: Option<i64>,
    failed: Option<i64>,
    report: serde_json::Value,
    note: Option<String>,
}

/// A clean detached worktree at the base, removed when dropped.
struct EvalTree {
    repo: PathBuf,
    path: PathBuf,
    locks: PathBuf,
}

impl EvalTree {
    fn add(paths: &Paths, repo: &Path, path: &Path, base: &str) -> Result<EvalTree, EngineError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|source| EngineError::Io { path: parent.to_path_buf(), source })?;
        }
        if path.exists() {
            let _ = std::fs::remove_dir_all(path);
        }
        let _lock = RepoLock::acquire(&paths.locks, repo, LOCK_TIMEOUT)?;
        Git::new(repo).run(&[
            std::ffi::OsStr::new("worktree"),
            "add".as_ref(),
            "--detach".as_ref(),
            "--quiet".as_ref(),
            path.as_os_str(),
            base.as_ref(),
        ])?;
        Ok(EvalTree { repo: repo.to_path_buf(), path: path.to_path_buf(), locks: paths.locks.clone() })
    }
}

impl Drop for EvalTree {
    fn drop(&mut self) {
        let lock = RepoLock::acquire(&self.locks, &self.repo, LOCK_TIMEOUT);
        let git = Git::new(&self.repo);
        let _ = git.worktree_remove(&self.path, true);
        if self.path.exists() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
        let _ = git.worktree_prune();
        drop(lock);
    }
}

/// Applies `patch_file` in `tree` (see [`Git::apply_patch_file`]); the error says why it did not apply.
fn apply_patch(tree: &Path, patch_file: &Path) -> Result<(), String> {
    match Git::new(tree).apply_patch_file(patch_file) {
        Ok(PatchApply::Applied) => Ok(()),
        Ok(PatchApply::Rejected(why)) => Err(why),
        Err(e) => Err(e.to_string()),
    }
}

fn evaluate(
    engine: &Engine,
    sh: &Shared,
    result: &BenchResult,
    problem: &BenchProblem,
    test: &str,
    patch: &[u8],
) -> Result<Evaluation, EngineError> {
    let work = sh.eval_root.join(format!("{}", result.seq));
    let tree_path = work.join("tree");
    let io = |path: &Path, source| EngineError::Io { path: path.to_path_buf(), source };
    std::fs::create_dir_all(&work).map_err(|e| io(&work, e))?;
    let tree = EvalTree::add(&engine.paths, &problem.repo, &tree_path, &problem.base_commit)?;
    let model_file = work.join("model.patch");
    std::fs::write(&model_file, patch).map_err(|e| io(&model_file, e))?;
    let failed_apply = |what: &str, why: String| Evaluation {
        status: BenchResultStatus::Error,
        resolved: Some(false),
        passed: None,
        failed: None,
        report: serde_json::json!({ "patch_applied": false, "error": format!("{what}: {why}") }),
        note: Some(format!("{what} does not apply to the base: {why}")),
    };
    if let Err(why) = apply_patch(&tree.path, &model_file) {
        return Ok(failed_apply("the model patch", why));
    }
    if let Some(tp) = &problem.test_patch {
        let test_file = work.join("test.patch");
        std::fs::write(&test_file, tp).map_err(|e| io(&test_file, e))?;
        if let Err(why) = apply_patch(&tree.path, &test_file) {
            return Ok(failed_apply("the test patch", why));
        }
    }
    let log_dir = sh.out_dir.join("logs");
    std::fs::create_dir_all(&log_dir).map_err(|e| io(&log_dir, e))?;
    let log = log_dir.join(format!("{:04}-{}.log", result.seq, file_safe(&result.instance_id)));
    let timeout = Duration::from_millis(sh.plan.test_timeout_ms.max(1));
    if let Some(setup) = &problem.setup {
        let run = run_logged(&tree.path, setup, timeout, &log, &work)?;
        if !run.passed() {
            // The environment, not the agent's work, failed: nothing can be said about the result.
            return Ok(Evaluation {
                status: BenchResultStatus::Error,
                resolved: None,
                passed: None,
                failed: None,
                report: serde_json::json!({ "patch_applied": true, "setup": setup, "setup_exit_code": run.exit_code, "log": log }),
                note: Some(format!(
                    "the setup `{setup}` failed in the evaluation tree ({}): {}",
                    run.outcome(),
                    run.short_tail()
                )),
            });
        }
    }
    if !sh.plan.is_swe() {
        let run = run_logged(&tree.path, test, timeout, &log, &work)?;
        let ok = run.passed();
        return Ok(Evaluation {
            status: if ok { BenchResultStatus::Resolved } else { BenchResultStatus::Unresolved },
            resolved: Some(ok),
            passed: Some(i64::from(ok)),
            failed: Some(i64::from(!ok)),
            report: serde_json::json!({
                "patch_applied": true,
                "command": test,
                "exit_code": run.exit_code,
                "timed_out": run.timed_out,
                "duration_ms": run.duration_ms,
                "log": log,
            }),
            note: (!ok).then(|| format!("the test failed ({}): {}", run.outcome(), run.short_tail())),
        });
    }
    let ids: Vec<&String> = problem.fail_to_pass.iter().chain(problem.pass_to_pass.iter()).collect();
    if ids.is_empty() {
        return Ok(Evaluation {
            status: BenchResultStatus::NotEvaluated,
            resolved: None,
            passed: None,
            failed: None,
            report: serde_json::json!({ "patch_applied": true }),
            note: Some("not evaluated: the instance lists no FAIL_TO_PASS or PASS_TO_PASS tests".into()),
        });
    }
    // The tree's own sources come first on Python's path, whatever the environment has installed.
    let python_path = format!(
        "export PYTHONPATH={}${{PYTHONPATH:+:$PYTHONPATH}}\n",
        shell_quote(&tree.path.to_string_lossy())
    );
    let files = problem.test_files.iter().map(|f| shell_quote(f)).collect::<Vec<_>>().join(" ");
    let test = test.replace("{harness}", problem.harness.as_deref().unwrap_or("")).replace("{files}", &files);
    let builtin = problem.test_from.as_deref() == Some("built-in");
    let mut passed_ids: std::collections::HashSet<String> = Default::default();
    if test.contains("{test}") {
        for id in &ids {
            let cmd = format!("{python_path}{}", test.replace("{test}", &shell_quote(id)));
            if run_logged(&tree.path, &cmd, timeout, &log, &work)?.passed() {
                passed_ids.insert((*id).clone());
            }
        }
    } else {
        let all = ids.iter().map(|i| shell_quote(i)).collect::<Vec<_>>().join(" ");
        let cmd = format!("{python_path}{}", test.replace("{tests}", &all));
        let run = run_logged(&tree.path, &cmd, timeout, &log, &work)?;
        let output = read_capped(&work.join("last-output.txt"));
        let parsed = problem.log_format.parse(&output);
        if parsed.is_empty() && builtin {
            // The harness's runner reported nothing: its environment is missing or broken. That is not
            // the agent's failure, so nothing is graded.
            let why = format!(
                "the {} runner reported no test results ({}): {}",
                problem.log_format.as_str(),
                run.outcome(),
                run.short_tail()
            );
            let (status, note) = if run.exit_code == Some(127) {
                (
                    BenchResultStatus::NotEvaluated,
                    format!(
                        "not evaluated: {why}; install the repository's Python environment (or activate it) \
                         before `bench`, or pass --test-cmd"
                    ),
                )
            } else {
                (
                    BenchResultStatus::Error,
                    format!("{why}; is the repository's Python environment installed?"),
                )
            };
            return Ok(Evaluation {
                status,
                resolved: (status == BenchResultStatus::Error).then_some(false),
                passed: None,
                failed: None,
                report: serde_json::json!({
                    "patch_applied": true,
                    "command": test,
                    "exit_code": run.exit_code,
                    "log": log,
                }),
                note: Some(note),
            });
        }
        if parsed.is_empty() {
            // No per-test lines: the exit status speaks for every listed test.
            if run.passed() {
                passed_ids.extend(ids.iter().map(|i| (*i).clone()));
            }
        } else {
            for id in &ids {
                if parsed.get(id.as_str()).is_some_and(|s| s.is_pass()) {
                    passed_ids.insert((*id).clone());
                }
            }
        }
    }
    let split = |list: &[String]| {
        let (ok, bad): (Vec<&String>, Vec<&String>) = list.iter().partition(|i| passed_ids.contains(*i));
        serde_json::json!({ "success": ok, "failure": bad })
    };
    let report = serde_json::json!({
        "patch_applied": true,
        "command": test,
        "log_format": problem.log_format.as_str(),
        "FAIL_TO_PASS": split(&problem.fail_to_pass),
        "PASS_TO_PASS": split(&problem.pass_to_pass),
        "log": log,
    });
    let passed = ids.iter().filter(|i| passed_ids.contains(**i)).count() as i64;
    let failed = ids.len() as i64 - passed;
    let resolved = failed == 0;
    Ok(Evaluation {
        status: if resolved { BenchResultStatus::Resolved } else { BenchResultStatus::Unresolved },
        resolved: Some(resolved),
        passed: Some(passed),
        failed: Some(failed),
        report,
        note: (!resolved).then(|| format!("{failed} of {} tests failed", ids.len())),
    })
}

/// Runs `cmd` (sh -c) in `dir` with its whole output going to `work/last-output.txt` (and appended to
/// `log`, up to 8 MiB).
fn run_logged(
    dir: &Path,
    cmd: &str,
    timeout: Duration,
    log: &Path,
    work: &Path,
) -> Result<ScriptRun, EngineError> {
    let out_file = work.join("last-output.txt");
    let wrapped = format!("exec >{} 2>&1\n{cmd}", shell_quote(&out_file.to_string_lossy()));
    let mut run = run_script(dir, &wrapped, timeout)
        .map_err(|source| EngineError::Io { path: dir.to_path_buf(), source })?;
    let output = read_capped(&out_file);
    // The environment's secrets never reach the log (nor the copy the test report is read from).
    let output = match ampsm_core::Redactor::from_environment(&[]).redact(&output) {
        Some(clean) => {
            let _ = std::fs::write(&out_file, &clean);
            clean
        }
        None => output,
    };
    run.script = cmd.to_string();
    run.output_tail = tail(&output, 8 * 1024);
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(log)
        && f.metadata().map(|m| m.len()).unwrap_or(0) < LOG_CAP
    {
        let _ = writeln!(f, "$ {cmd}\n{output}\n[{}]\n", run.outcome());
    }
    Ok(run)
}

fn read_capped(path: &Path) -> String {
    use std::io::Read;
    let mut buf = Vec::new();
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(LOG_CAP).read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_string()
}

fn file_safe(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
        .collect()
}

/// Writes `<out>/predictions.jsonl` (every result that produced a patch, in order) and, when the run has
/// several configs or repeats, one file per config and repeat under `<out>/predictions/`.
fn write_predictions(store: &Store, sh: &Shared) -> Result<PathBuf, EngineError> {
    write_predictions_of(store, &sh.run.id, &sh.plan, &sh.out_dir)
}

/// Rewrites the predictions files of run `run_id` in `out_dir` (see the module docs).
pub(crate) fn write_predictions_of(
    store: &Store,
    run_id: &str,
    plan: &BenchPlan,
    out_dir: &Path,
) -> Result<PathBuf, EngineError> {
    let results = store.bench_results(run_id)?;
    let lines: Vec<(&BenchResult, String)> = results
        .iter()
        .filter(|r| r.model_patch.is_some())
        .map(|r| {
            let line = serde_json::json!({
                "instance_id": r.instance_id,
                "model_name_or_path": r.config_label(),
                "model_patch": r.model_patch.clone().unwrap_or_default(),
            });
            (r, line.to_string())
        })
        .collect();
    let write = |path: &Path, rows: &mut dyn Iterator<Item = &String>| -> Result<(), EngineError> {
        let io = |source| EngineError::Io { path: path.to_path_buf(), source };
        let partial = path.with_extension("jsonl.partial");
        let mut f = std::io::BufWriter::new(std::fs::File::create(&partial).map_err(io)?);
        for row in rows {
            f.write_all(row.as_bytes()).map_err(io)?;
            f.write_all(b"\n").map_err(io)?;
        }
        f.flush().map_err(io)?;
        drop(f);
        std::fs::rename(&partial, path).map_err(io)
    };
    let main = out_dir.join("predictions.jsonl");
    write(&main, &mut lines.iter().map(|(_, l)| l))?;
    if plan.agents.len() > 1 || plan.repeats > 1 {
        let dir = out_dir.join("predictions");
        std::fs::create_dir_all(&dir).map_err(|source| EngineError::Io { path: dir.clone(), source })?;
        for a in &plan.agents {
            for rep in 0..plan.repeats as i64 {
                let label = a.label();
                let name = if plan.repeats > 1 {
                    format!("{}-r{}.jsonl", file_safe(&label), rep + 1)
                } else {
                    format!("{}.jsonl", file_safe(&label))
                };
                write(
                    &dir.join(name),
                    &mut lines
                        .iter()
                        .filter(|(r, _)| r.config_label() == label && r.repeat == rep)
                        .map(|(_, l)| l),
                )?;
            }
        }
    }
    Ok(main)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(instance: &str, agent: &str, repeat: i64, status: BenchResultStatus) -> BenchResult {
        BenchResult {
            id: format!("{instance}-{agent}-{repeat}"),
            run_id: "run".into(),
            seq: 0,
            instance_id: instance.into(),
            agent: agent.into(),
            model: None,
            repeat,
            session_id: None,
            status,
            agent_outcome: None,
            resolved: Some(status == BenchResultStatus::Resolved),
            model_patch: None,
            tests_passed: None,
            tests_failed: None,
            test_report: None,
            error: None,
            duration_ms: None,
            total_tokens: None,
            cost_usd: None,
            started_at: None,
            ended_at: None,
        }
    }

    #[test]
    fn repeats_give_per_repeat_rates_their_spread_and_pass_at_k() {
        // 3 problems × 2 repeats: a is always resolved, b once, c never.
        let rs = [
            result("a", "claude", 1, BenchResultStatus::Resolved),
            result("b", "claude", 1, BenchResultStatus::Resolved),
            result("c", "claude", 1, BenchResultStatus::Unresolved),
            result("a", "claude", 2, BenchResultStatus::Resolved),
            result("b", "claude", 2, BenchResultStatus::Unresolved),
            result("c", "claude", 2, BenchResultStatus::Unresolved),
            result("a", "codex", 1, BenchResultStatus::Resolved),
        ];
        let refs: Vec<&BenchResult> = rs.iter().collect();
        let summary = summarize(&refs);
        let claude = &summary[0];
        assert_eq!(claude.resolve_rate, Some(0.5));
        let st = claude.repeats.as_ref().unwrap();
        assert_eq!(st.k, 2);
        assert_eq!(st.rates.len(), 2);
        assert!((st.rates[0] - 2.0 / 3.0).abs() < 1e-12 && (st.rates[1] - 1.0 / 3.0).abs() < 1e-12);
        // The sample standard deviation of 2/3 and 1/3: sqrt(2 × (1/6)² / 1).
        assert!((st.rate_stddev - (1.0f64 / 18.0).sqrt()).abs() < 1e-12, "{}", st.rate_stddev);
        assert!((st.pass_at_k - 2.0 / 3.0).abs() < 1e-12);
        assert!((st.pass_all_k - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(summary[1].repeats, None, "one repeat: nothing to add");
    }

    #[test]
    fn session_names_fit_and_stay_valid() {
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(session_name("astropy__astropy-12907", id, 3, 1), "astropy__astropy-12907-01234567-3");
        assert_eq!(session_name("astropy__astropy-12907", id, 3, 2), "astropy__astropy-12907-01234567-3-2");
        let n = session_name(&"x".repeat(100), id, 12, 1);
        assert!(n.len() <= 64 && n.ends_with("-01234567-12"), "{n}");
        assert_eq!(session_name("a/b:c", id, 1, 1), "a-b-c-01234567-1");
        assert_eq!(session_name("...", id, 1, 1), "bench-01234567-1");
    }

    #[test]
    fn model_patches_leave_out_the_test_files() {
        let dir = tempfile::tempdir().unwrap();
        let repo = ampsm_testutils_free_repo(dir.path());
        let base = git_out(&repo, &["rev-parse", "HEAD"]);
        std::fs::write(repo.join("src.txt"), "fixed\n").unwrap();
        std::fs::create_dir_all(repo.join("tests")).unwrap();
        std::fs::write(repo.join("tests/t1.sh"), "exit 0\n").unwrap();
        std::fs::write(repo.join("bin.dat"), [0u8, 159, 146, 150, 255]).unwrap();
        git_out(&repo, &["add", "-A"]);
        git_out(&repo, &["commit", "-qm", "work"]);
        let head = git_out(&repo, &["rev-parse", "HEAD"]);
        let hidden =
            patch_paths("diff --git a/tests/t1.sh b/tests/t1.sh\n--- /dev/null\n+++ b/tests/t1.sh\n");
        let patch = String::from_utf8(Git::new(&repo).diff_binary(&base, &head, &hidden).unwrap()).unwrap();
        assert!(patch.contains("src.txt") && patch.contains("GIT binary patch"), "{patch}");
        assert!(!patch.contains("tests/t1.sh"), "{patch}");
        let all = String::from_utf8(Git::new(&repo).diff_binary(&base, &head, &[]).unwrap()).unwrap();
        assert!(all.contains("tests/t1.sh"));
    }

    fn git_out(dir: &Path, args: &[&str]) -> String {
        Git::new(dir)
            .with_env("GIT_CONFIG_GLOBAL", "/dev/null")
            .with_env("GIT_AUTHOR_NAME", "t")
            .with_env("GIT_AUTHOR_EMAIL", "t@example.com")
            .with_env("GIT_COMMITTER_NAME", "t")
            .with_env("GIT_COMMITTER_EMAIL", "t@example.com")
            .run(args)
            .unwrap()
            .trim()
            .to_string()
    }

    fn ampsm_testutils_free_repo(dir: &Path) -> PathBuf {
        let repo = dir.join("r");
        std::fs::create_dir_all(&repo).unwrap();
        git_out(&repo, &["init", "-q", "-b", "main"]);
        std::fs::write(repo.join("src.txt"), "broken\n").unwrap();
        git_out(&repo, &["add", "-A"]);
        git_out(&repo, &["commit", "-qm", "base"]);
        repo
    }
}

//! Batch runs: many prompts × many repositories from one YAML file (see `ampsm_config::batch`).
//!
//! - **Plan.** [`Engine::plan_batch`] reads the file, checks every repository is a git repository and every
//!   base resolves (errors point at the YAML line), and lists the runs: each item on each of its repositories.
//! - **Queue and concurrency.** [`run_batch`] takes the queued items in order. `concurrency` bounds the agents
//!   running at once (agent slots); twice as many worker threads (each with its own [`Engine`]: a SQLite
//!   connection is not shared between threads) make the next sessions and commit/record finished runs while
//!   the slots are busy, so per-item overhead (worktree add, commit, database) overlaps with agent time. A
//!   slot is taken right before `iterate` and given back as soon as the agent's process group is gone (a
//!   watcher thread sees it through the session's recorded `agent_pid`); an item with a validation script
//!   keeps its slot until the script has run too.
//! - **One attempt** = a fresh session (worktree on a new branch from the item's base, the item's `script` as
//!   the session's test script) and one `iterate` with the item's timeout. The item passes when the agent run
//!   succeeds and the script exits 0; then, with `mergeOnPass`, the session is merged through the normal
//!   review-and-merge path ([`Engine::merge_session`], squash, with its preflight).
//! - **Retries** start a *new session* per attempt (named `<item>-<batch>-<n>`), so a failed attempt's commits
//!   never reach a later attempt or the merge; every attempt's session is kept for review.
//! - **Timeouts** are the agent run's (the whole process group is killed on expiry); an item whose last attempt
//!   timed out ends `timeout`.
//! - **Abort** ([`Engine::abort_batch`], from any process): sets `abort_requested`, marks queued items
//!   `aborted` and stops the process group of every running agent of the batch (TERM, KILL after 0.5 s). The
//!   runner polls the flag every 100 ms, stops the agents it still sees, takes no new item, and ends
//!   `aborted`.
//! - **Budget of the whole batch** (top-level `budget:` or `batch start --budget USD`): one
//!   [`BudgetPool`] shared by every item's run (sessions may still have their own `budget:`). It warns once
//!   at 80 %; at 100 % every running agent of the batch is stopped (its iteration ends `budget`, its work is
//!   committed, the item fails without retry), queued items end `aborted` ("not started: …"), and the batch
//!   ends `aborted` with the reason in `stop_reason`. `batch resume <id> --budget USD` continues with a
//!   higher budget (what the batch already spent counts).
//! - **Resume** ([`Engine::prepare_resume`]) after a runner crash (`kill -9`, which ends the batch `failed`:
//!   see [`crate::jobs`]): only items still `queued` and `aborted` items run again; finished items never
//!   re-run.
//! - **Detach** ([`crate::jobs::runner`]): the engine starts the front end's hidden runner command, which
//!   calls [`crate::jobs::detach_from_terminal`] (a new session, no controlling terminal) and logs to
//!   `AMPSM_HOME/logs/batch-<id>.log`.

use crate::jobs::{ABORT_POLL, AbortTarget, Flow, JobAbort, run_workers};
use crate::process::{group_alive, own_pid, pid_alive};
use crate::reports::metrics_error::MetricsError;
use crate::review::merge::MergeRequest;
use crate::runs::budget::BudgetPool;
use crate::runs::iterate::IterateRequest;
use crate::sessions::CreateSession;
use crate::{Engine, EngineError};
use ampsm_config::batch::BatchSpec;
use ampsm_config::{ConfigError, Paths};
use ampsm_core::id::{new_id, short_id};
use ampsm_core::{BatchItemStatus, BatchStatus, IterationOutcome, MergeResult, Money};
use ampsm_git::Git;
use ampsm_store::Store;
use ampsm_store::batches::{Batch, BatchCounts, BatchItem, ItemUsage, NewBatch, NewBatchItem};
use ampsm_store::jobs::JobKind;
use serde::Serialize;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a free slot waits for an earlier item that is still making its session before a later, ready
/// item may take it. Making a session (a worktree, a setup) can take a second on a loaded machine; 150 ms
/// let later items overtake earlier ones there, so items did not start in file order.
const IN_ORDER_GRACE: Duration = Duration::from_secs(2);
/// How often the slot watcher looks for agents that have exited.
const SLOT_POLL: Duration = Duration::from_millis(3);

/// A refused or failed batch command.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("no batch matches {0:?}")]
    NotFound(String),
    #[error("{reference:?} matches several batches: {candidates}; use more characters of the id")]
    Ambiguous { reference: String, candidates: String },
    #[error("batch {batch} is running (runner process {pid})")]
    Running { batch: String, short: String, pid: i64 },
    #[error("batch {batch} has nothing left to run (every item finished: {summary})")]
    NothingToResume { batch: String, summary: String },
    #[error("cannot start the background runner of batch {batch}: {message}; see {log}")]
    Detach { batch: String, message: String, log: String },
    #[error("batch {batch} has spent its budget (${spent:.4} of {})", ampsm_core::dollars(*.budget))]
    BudgetSpent { batch: String, short: String, spent: f64, budget: f64 },
    #[error("batch {batch}: {message}")]
    Other { batch: String, message: String },
}

impl BatchError {
    /// An unknown batch is not found, an ambiguous reference or nothing to resume is bad input, a stop
    /// that protects a running batch or the budget is a refusal, the rest failed.
    pub fn kind(&self) -> ampsm_core::ErrorKind {
        use ampsm_core::ErrorKind;
        match self {
            BatchError::NotFound(_) => ErrorKind::NotFound,
            BatchError::Ambiguous { .. } | BatchError::NothingToResume { .. } => ErrorKind::BadInput,
            BatchError::Running { .. } | BatchError::BudgetSpent { .. } => ErrorKind::Refused,
            BatchError::Detach { .. } | BatchError::Other { .. } => ErrorKind::Failed,
        }
    }

    /// What to do next, when there is more to say than the message.
    pub fn hint(&self) -> Option<ampsm_core::Hint> {
        match self {
            BatchError::NotFound(_) => Some(ampsm_core::Hint::ListBatches),
            BatchError::Running { short, .. } => {
                Some(ampsm_core::Hint::FollowOrAbortBatch { batch: short.clone() })
            }
            BatchError::BudgetSpent { short, .. } => {
                Some(ampsm_core::Hint::ResumeBatchWithBudget { batch: short.clone() })
            }
            _ => None,
        }
    }
}

/// One run of the plan: an item on one repository, with its settings resolved.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedRun {
    pub seq: i64,
    pub item: String,
    pub repo: String,
    pub base_branch: String,
    pub agent: String,
    pub model: Option<String>,
    pub timeout_ms: u64,
    pub retries: u32,
    pub merge_on_pass: bool,
    pub budget_usd: Option<Money>,
    pub script: Option<String>,
    pub prompt: String,
}

/// A checked batch file and its runs.
#[derive(Debug, Clone, Serialize)]
pub struct BatchPlan {
    pub name: String,
    pub file: PathBuf,
    pub concurrency: u32,
    /// The budget of the whole batch (top-level `budget:` or `batch start --budget`).
    pub budget_usd: Option<Money>,
    /// Where its items run (top-level `executor:`, or `batch start --executor`).
    pub executor: ampsm_core::Executor,
    pub items: usize,
    pub repos: usize,
    pub runs: Vec<PlannedRun>,
    #[serde(skip)]
    pub yaml: String,
}

/// The current session of an item, for status views.
#[derive(Debug, Clone, Serialize)]
pub struct ItemSession {
    pub id: String,
    pub name: String,
    pub branch: String,
    pub worktree_path: String,
    pub status: String,
    pub agent_pid: Option<i64>,
}

/// One item as `batch status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ItemView {
    #[serde(flatten)]
    pub item: BatchItem,
    pub duration_ms: Option<i64>,
    pub session: Option<ItemSession>,
    /// How an item running on a cluster node is doing, as its worker last reported (its sessions are
    /// made here when its result is taken in).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<ampsm_store::cluster::TaskProgress>,
    /// Tokens and cost of all the item's attempts (cost `None`: unknown, as in `batch export`).
    #[serde(skip)]
    pub usage: ItemUsage,
}

/// A batch with its counts and items.
#[derive(Debug, Clone, Serialize)]
pub struct BatchView {
    #[serde(flatten)]
    pub batch: Batch,
    /// Whether the runner process recorded for the batch is alive.
    pub runner_alive: bool,
    /// A note when the batch needs attention (e.g. its runner died).
    pub note: Option<String>,
    pub counts: BatchCounts,
    /// What the batch's sessions cost so far (usage with a known price).
    pub spent_usd: Money,
    /// The scheduler's ids of its cluster jobs (a Slurm job array per submission), oldest first.
    pub cluster_jobs: Vec<String>,
    pub items: Vec<ItemView>,
}

impl BatchView {
    /// Whether nothing more will happen without a user action (finished, or its runner is gone).
    pub fn is_settled(&self) -> bool {
        self.batch.status.is_finished() || !self.runner_alive
    }
}

/// What `batch abort` did.
#[derive(Debug, Clone, Serialize)]
pub struct AbortReport {
    pub batch_id: String,
    pub name: String,
    #[serde(flatten)]
    pub abort: JobAbort,
}

/// What `batch clean` did for one session.
#[derive(Debug, Clone, Serialize)]
pub struct CleanedSession {
    pub session_id: String,
    pub name: String,
    pub worktree_removed: bool,
    pub branch_deleted: bool,
    /// The snapshot ref saved first when there was unmerged or uncommitted work.
    pub snapshot: Option<String>,
    pub error: Option<String>,
}

/// What `batch clean` did.
#[derive(Debug, Clone, Serialize)]
pub struct CleanReport {
    pub batch_id: String,
    pub sessions: Vec<CleanedSession>,
    /// The submission folders of a cluster batch that were left in the executor's work folder (those
    /// with tasks lost on the cluster keep their logs until now), removed.
    pub cluster_folders: Vec<String>,
}

/// One exported row: an item with its session and usage.
#[derive(Debug, Clone, Serialize)]
pub struct ExportRow {
    pub batch_id: String,
    pub batch_name: String,
    pub item_id: String,
    pub seq: i64,
    pub item: String,
    pub repo_path: String,
    pub base_branch: Option<String>,
    pub agent: String,
    pub model: Option<String>,
    pub status: BatchItemStatus,
    pub attempts: i64,
    pub merged: bool,
    pub session_id: Option<String>,
    pub session_name: Option<String>,
    pub branch: Option<String>,
    pub error: Option<String>,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub duration_ms: Option<i64>,
    #[serde(flatten)]
    pub usage: ItemUsage,
}

/// What the runner reports while it works.
#[derive(Debug, Clone)]
pub enum BatchEvent {
    /// An attempt started.
    Started { item: BatchItem, attempt: i64, session: Option<String> },
    /// An attempt did not pass and another follows.
    Retrying { item: BatchItem, attempt: i64, reason: String },
    /// The item reached its final status.
    Finished { item: BatchItem },
}

/// How a runner's work ended.
#[derive(Debug, Clone, Serialize)]
pub struct BatchOutcome {
    pub batch_id: String,
    pub status: BatchStatus,
    pub counts: BatchCounts,
    /// Why the batch stopped before running everything (its budget reached, an abort).
    pub stop_reason: Option<String>,
    /// What the batch has spent, when it has a budget.
    pub spent_usd: Option<Money>,
    pub took_ms: u64,
}

impl Engine {
    /// Reads and checks a batch file: the YAML (see `ampsm_config::batch`), then every repository (a git
    /// repository) and base (a branch or commit there), with errors pointing at the YAML line.
    pub fn plan_batch(&self, file: &Path) -> Result<BatchPlan, EngineError> {
        let spec = BatchSpec::load(file)?;
        let yaml = std::fs::read_to_string(&spec.file)
            .map_err(|source| ConfigError::Read { path: spec.file.clone(), source })?;
        self.plan_batch_spec(spec, yaml)
    }

    /// [`Engine::plan_batch`] for YAML that has no file (pasted in the dashboard): nothing is written
    /// anywhere, errors say "the pasted YAML, line N: …", and repository paths must be absolute. The
    /// text is kept with the batch (as a file's is), so resuming needs no file either.
    pub fn plan_batch_text(&self, text: &str) -> Result<BatchPlan, EngineError> {
        let spec = BatchSpec::parse_pasted(text)?;
        self.plan_batch_spec(spec, text.to_string())
    }

    fn plan_batch_spec(&self, spec: BatchSpec, yaml: String) -> Result<BatchPlan, EngineError> {
        let mut roots: Vec<(PathBuf, PathBuf, String)> = Vec::new(); // (written path, root, default base)
        let mut runs = Vec::new();
        let mut repos = std::collections::BTreeSet::new();
        for (item, repo) in spec.plan() {
            let at = |message: String| ConfigError::Invalid {
                path: spec.file.clone(),
                line: repo.line,
                column: repo.column,
                message,
            };
            let (root, default_base) = match roots.iter().find(|(p, _, _)| *p == repo.path) {
                Some((_, root, base)) => (root.clone(), base.clone()),
                None => {
                    if !repo.path.is_dir() {
                        return Err(at(format!(
                            "{}: repository {:?} does not exist (resolved to {}; relative paths are relative to the \
                             batch file)",
                            repo.field,
                            repo.written,
                            repo.path.display()
                        ))
                        .into());
                    }
                    let root = ampsm_git::repo_root(&repo.path).map_err(|e| {
                        at(format!("{}: {:?} is not a git repository ({e})", repo.field, repo.written))
                    })?;
                    let git = Git::new(&root);
                    let configured = &self.config.git.default_base_branch;
                    let base = if !configured.is_empty() && git.resolve_commit(configured)?.is_some() {
                        configured.clone()
                    } else {
                        git.default_branch()?
                    };
                    roots.push((repo.path.clone(), root.clone(), base.clone()));
                    (root, base)
                }
            };
            let base = repo.base_branch.clone().unwrap_or(default_base);
            let git = Git::new(&root);
            if base.starts_with('-') || git.resolve_commit(&base)?.is_none() {
                if !git.has_commits()? {
                    return Err(at(format!("{}: {}", repo.field, crate::sessions::no_commits(&root))).into());
                }
                let hint = git.suggest_refs(&base).unwrap_or_default();
                let hint = if hint.is_empty() {
                    String::new()
                } else {
                    format!("; did you mean: {}?", hint.join(", "))
                };
                return Err(at(format!(
                    "{}.baseBranch: {base:?} is not a branch or commit in {}{hint}",
                    repo.field,
                    root.display()
                ))
                .into());
            }
            repos.insert(root.clone());
            let agent = item.agent.clone().unwrap_or_else(|| self.config.session.default_agent.clone());
            runs.push(PlannedRun {
                seq: runs.len() as i64 + 1,
                item: item.name.clone(),
                repo: root.to_string_lossy().into_owned(),
                base_branch: base,
                agent,
                model: item.model.clone(),
                timeout_ms: item.timeout.unwrap_or_else(|| self.config.agent_timeout()).as_millis() as u64,
                retries: item.retries,
                merge_on_pass: item.merge_on_pass,
                budget_usd: item.budget_usd.map(Money::from_usd),
                script: item.script.clone(),
                prompt: item.prompt.clone(),
            });
        }
        Ok(BatchPlan {
            name: spec.name.clone(),
            file: spec.file.clone(),
            concurrency: spec.concurrency,
            budget_usd: spec.budget_usd.or(self.config.batch.budget_usd).map(Money::from_usd),
            executor: spec.executor.unwrap_or_default(),
            items: spec.items.len(),
            repos: repos.len(),
            runs,
            yaml,
        })
    }

    /// Records a planned batch with all its items queued; nothing runs yet.
    pub fn create_batch(&mut self, plan: &BatchPlan) -> Result<Batch, EngineError> {
        let id = new_id();
        let items: Vec<NewBatchItem> = plan
            .runs
            .iter()
            .map(|r| NewBatchItem {
                id: new_id(),
                seq: r.seq,
                item_name: r.item.clone(),
                repo_path: r.repo.clone(),
                base_branch: Some(r.base_branch.clone()),
                prompt: r.prompt.clone(),
                script: r.script.clone(),
                agent: r.agent.clone(),
                model: r.model.clone(),
                timeout_ms: Some(r.timeout_ms as i64),
                retries: r.retries as i64,
                merge_on_pass: r.merge_on_pass,
                budget_usd: r.budget_usd,
            })
            .collect();
        self.store.insert_batch(
            &NewBatch {
                id: id.clone(),
                name: plan.name.clone(),
                // Pasted YAML has no file to name.
                file_path: (plan.file != Path::new(ampsm_config::error::PASTED))
                    .then(|| plan.file.to_string_lossy().into_owned()),
                spec: plan.yaml.clone(),
                concurrency: plan.concurrency as i64,
                budget_usd: plan.budget_usd,
                executor: plan.executor,
            },
            &items,
        )?;
        self.store.get_batch(&id)?.ok_or_else(|| other(&id, "the batch was not recorded"))
    }

    /// Finds a batch by full id, unique id prefix, or name (the newest of that name).
    pub fn resolve_batch(&self, reference: &str) -> Result<Batch, EngineError> {
        let found = self.store.find_batches(reference)?;
        if let Some(exact) = found.iter().find(|b| b.id == reference.trim()) {
            return Ok(exact.clone());
        }
        let by_id: Vec<&Batch> =
            found.iter().filter(|b| b.id.starts_with(&reference.trim().to_lowercase())).collect();
        match (by_id.len(), found.len()) {
            (1, _) => Ok(by_id[0].clone()),
            (0, 0) => Err(BatchError::NotFound(reference.to_string()).into()),
            (0, _) => Ok(found[0].clone()), // by name: the newest
            _ => Err(BatchError::Ambiguous {
                reference: reference.to_string(),
                candidates: by_id
                    .iter()
                    .map(|b| format!("{} ({})", short_id(&b.id), b.name))
                    .collect::<Vec<_>>()
                    .join(", "),
            }
            .into()),
        }
    }

    /// A batch with its counts and items, as `batch status` shows it.
    pub fn batch_view(&self, reference: &str) -> Result<BatchView, EngineError> {
        let batch = self.resolve_batch(reference)?;
        let counts = self.store.batch_counts(&batch.id)?;
        let mut usage = self.store.batch_item_usage(&batch.id)?;
        // Items running on cluster nodes (none for a local batch).
        let mut remote = self.store.running_task_progress(JobKind::Batch, &batch.id)?;
        let mut items = Vec::new();
        for item in self.store.batch_items(&batch.id)? {
            let session = match &item.session_id {
                Some(id) => {
                    self.store.get_session(&ampsm_core::SessionId::from_stored(id.clone())).ok().map(|s| {
                        ItemSession {
                            id: s.id.to_string(),
                            name: s.name,
                            branch: s.branch,
                            worktree_path: s.worktree_path,
                            status: if s.removed_at.is_some() {
                                "removed".into()
                            } else {
                                s.status.as_str().into()
                            },
                            agent_pid: s.agent_pid,
                        }
                    })
                }
                None => None,
            };
            let duration_ms = match (item.started_at, item.ended_at) {
                (Some(a), Some(b)) => Some(b - a),
                (Some(a), None) if item.status == BatchItemStatus::Running => {
                    Some(ampsm_core::time::now_ms() - a)
                }
                _ => None,
            };
            let mut usage = usage.remove(&item.id).unwrap_or_default();
            let tokens =
                usage.input_tokens + usage.output_tokens + usage.cache_read_tokens + usage.cache_write_tokens;
            if tokens == 0 {
                // The agent reported no usage at all (as one that reports no cost): unknown, never $0.
                usage.cost_usd = None;
            }
            let remote = remote.remove(&item.id).filter(|_| item.status == BatchItemStatus::Running);
            items.push(ItemView { item, duration_ms, session, remote, usage });
        }
        let runner_alive = batch.runner_pid.is_some_and(pid_alive);
        let note = match (batch.status, &batch.stop_reason) {
            (BatchStatus::Running, _) if !runner_alive => Some(format!(
                "the runner of this batch ({}) is gone; continue with `amp-sessions batch resume {}`",
                batch.runner_pid.map(|p| format!("process {p}")).unwrap_or_else(|| "unknown process".into()),
                short_id(&batch.id)
            )),
            (BatchStatus::Failed | BatchStatus::Aborted, Some(reason))
                if counts.aborted + counts.queued > 0 =>
            {
                Some(format!(
                    "stopped early: {reason}; continue with `amp-sessions batch resume {}`",
                    short_id(&batch.id)
                ))
            }
            (BatchStatus::Queued, _) if counts.finished() < counts.total && !runner_alive => Some(format!(
                "no runner has started this batch; start it with `amp-sessions batch resume {}`",
                short_id(&batch.id)
            )),
            _ => None,
        };
        let spent_usd = self.store.batch_spend_usd(&batch.id)?;
        let cluster_jobs = self
            .store
            .submissions_of(JobKind::Batch, &batch.id)?
            .into_iter()
            .filter_map(|s| s.cluster_job)
            .collect();
        Ok(BatchView { batch, runner_alive, note, counts, spent_usd, cluster_jobs, items })
    }

    /// Stops a batch from any process (see the module docs). Returns within about two seconds.
    pub fn abort_batch(&mut self, reference: &str) -> Result<AbortReport, EngineError> {
        let batch = self.resolve_batch(reference)?;
        let job = AbortTarget::Batch(batch.id.clone());
        // Cluster jobs first: the scheduler stops them whether or not a coordinator is alive.
        if let Err(e) = self.cancel_cluster_jobs(&batch) {
            tracing::warn!("batch {}: cancelling its cluster jobs: {e}", short_id(&batch.id));
        }
        let abort = self.abort_job(&job, batch.status, "aborted on request (`batch abort`)")?;
        Ok(AbortReport { batch_id: batch.id, name: batch.name, abort })
    }

    /// Makes a batch ready to run again after its runner stopped: refuses while a runner is alive, puts
    /// `running` (runner dead) and `aborted` items back in the queue and clears the abort flag. Finished
    /// items stay as they are. `budget_usd` replaces the whole batch's budget; a batch whose budget is
    /// already spent is refused (nothing changes) until it is given a higher one.
    pub fn prepare_resume(&mut self, reference: &str, budget_usd: Option<f64>) -> Result<Batch, EngineError> {
        let batch = self.resolve_batch(reference)?;
        if let Some(pid) = batch.runner_pid.filter(|p| pid_alive(*p) && *p != own_pid()) {
            return Err(BatchError::Running {
                batch: label(&batch),
                short: short_id(&batch.id).to_string(),
                pid,
            }
            .into());
        }
        let budget_usd = budget_usd.map(Money::from_usd);
        if let Some(b) = budget_usd.filter(|b| !b.is_positive()) {
            return Err(crate::reports::metrics_error::MetricsError::BadBudget(b.usd()).into());
        }
        if let Some(budget) = budget_usd.or(batch.budget_usd) {
            let spent = self.store.batch_spend_usd(&batch.id)?;
            if spent.reached(budget) {
                return Err(BatchError::BudgetSpent {
                    batch: label(&batch),
                    short: short_id(&batch.id).to_string(),
                    spent: spent.usd(),
                    budget: budget.usd(),
                }
                .into());
            }
        }
        if budget_usd.is_some() {
            self.store.set_batch_budget(&batch.id, budget_usd)?;
        }
        self.store.requeue_unfinished_items(&batch.id)?;
        self.store.clear_batch_abort(&batch.id)?;
        let counts = self.store.batch_counts(&batch.id)?;
        if counts.queued == 0 {
            return Err(BatchError::NothingToResume {
                batch: label(&batch),
                summary: format!(
                    "{} passed, {} failed, {} error, {} timeout",
                    counts.passed, counts.failed, counts.error, counts.timeout
                ),
            }
            .into());
        }
        self.store.finish_batch(&batch.id, BatchStatus::Queued, None)?;
        self.store.get_batch(&batch.id)?.ok_or_else(|| other(&batch.id, "the batch disappeared"))
    }

    /// Removes the worktrees and branches of every session of the batch (all attempts). Unmerged or
    /// uncommitted work is saved in a snapshot first (`amp-sessions undo <session>` restores it). Refuses
    /// while the batch runs.
    pub fn clean_batch(&mut self, reference: &str) -> Result<CleanReport, EngineError> {
        let batch = self.resolve_batch(reference)?;
        if let Some(pid) = batch.runner_pid.filter(|p| pid_alive(*p)) {
            return Err(BatchError::Running {
                batch: label(&batch),
                short: short_id(&batch.id).to_string(),
                pid,
            }
            .into());
        }
        let mut sessions = Vec::new();
        for sid in self.store.batch_live_session_ids(&batch.id)? {
            let name = self
                .store
                .get_session(&ampsm_core::SessionId::from_stored(sid.clone()))
                .map(|s| s.name)
                .unwrap_or_default();
            match self.remove_session(&sid, true, false) {
                Ok(out) => sessions.push(CleanedSession {
                    session_id: sid,
                    name,
                    worktree_removed: out.worktree_removed,
                    branch_deleted: out.branch_deleted,
                    snapshot: out.snapshot.map(|s| s.refname),
                    error: None,
                }),
                Err(e) => sessions.push(CleanedSession {
                    session_id: sid,
                    name,
                    worktree_removed: false,
                    branch_deleted: false,
                    snapshot: None,
                    error: Some(e.to_string()),
                }),
            }
        }
        let cluster_folders = self.remove_submission_folders(JobKind::Batch, &batch.id)?;
        Ok(CleanReport { batch_id: batch.id, sessions, cluster_folders })
    }

    /// The rows of `batch export`: one per item, with its current session and the usage of all attempts.
    pub fn batch_export_rows(&self, reference: &str) -> Result<(Batch, Vec<ExportRow>), EngineError> {
        let view = self.batch_view(reference)?;
        let rows = view
            .items
            .iter()
            .map(|v| ExportRow {
                batch_id: view.batch.id.clone(),
                batch_name: view.batch.name.clone(),
                item_id: v.item.id.clone(),
                seq: v.item.seq,
                item: v.item.item_name.clone(),
                repo_path: v.item.repo_path.clone(),
                base_branch: v.item.base_branch.clone(),
                agent: v.item.agent.clone(),
                model: v.item.model.clone(),
                status: v.item.status,
                attempts: v.item.attempts,
                merged: v.item.merged,
                session_id: v.item.session_id.clone(),
                session_name: v.session.as_ref().map(|s| s.name.clone()),
                branch: v.session.as_ref().map(|s| s.branch.clone()),
                error: v.item.error.clone(),
                started_at: v.item.started_at,
                ended_at: v.item.ended_at,
                duration_ms: v.duration_ms,
                usage: v.usage.clone(),
            })
            .collect();
        Ok((view.batch, rows))
    }
}

fn label(b: &Batch) -> String {
    format!("{} ({})", b.name, short_id(&b.id))
}

fn other(batch: &str, message: &str) -> EngineError {
    BatchError::Other { batch: short_id(batch).to_string(), message: message.to_string() }.into()
}

/// Runs the queued items of a batch to the end (see the module docs). `observer` is called from the worker
/// threads as items start and finish; it must be quick.
pub fn run_batch(
    paths: &Paths,
    batch_id: &str,
    observer: Arc<dyn Fn(&BatchEvent) + Send + Sync>,
) -> Result<BatchOutcome, EngineError> {
    let started = Instant::now();
    let mut engine = Engine::open_at(paths.clone())?;
    let batch =
        engine.store.get_batch(batch_id)?.ok_or_else(|| BatchError::NotFound(batch_id.to_string()))?;
    if let Some(pid) = batch.runner_pid.filter(|p| pid_alive(*p) && *p != own_pid()) {
        return Err(
            BatchError::Running { batch: label(&batch), short: short_id(batch_id).to_string(), pid }.into()
        );
    }
    // What earlier runs of the batch (before a resume) spent counts against its budget.
    let limit = batch.budget_usd.filter(|b| b.is_positive());
    let spent = match limit {
        Some(limit) => {
            let spent = engine.store.batch_spend_usd(batch_id)?;
            if spent.reached(limit) {
                return Err(BatchError::BudgetSpent {
                    batch: label(&batch),
                    short: short_id(batch_id).to_string(),
                    spent: spent.usd(),
                    budget: limit.usd(),
                }
                .into());
            }
            spent
        }
        None => Money::ZERO,
    };
    if batch.executor != ampsm_core::Executor::Local {
        // Every front end (the CLI's runner, the dashboard) comes through here: a cluster batch is the
        // cluster coordinator's.
        return crate::jobs::cluster::coordinator::run_batch_on_cluster(engine, batch, observer, started);
    }
    // The whole batch's budget: one pool shared by every item's run.
    let pool = limit.map(|limit| BudgetPool::new(format!("batch {}", short_id(batch_id)), limit, spent));
    engine.store.set_batch_running(batch_id, own_pid())?;
    let queue: VecDeque<BatchItem> = engine
        .store
        .batch_items(batch_id)?
        .into_iter()
        .filter(|i| i.status == BatchItemStatus::Queued)
        .collect();
    let concurrency = batch.concurrency.max(1) as usize;
    // Twice as many workers as agent slots: while `concurrency` agents run, the other workers create the
    // next sessions and commit/record finished runs.
    let workers = (concurrency * 2).min(queue.len()).max(1);
    let queue = Mutex::new(queue);
    let abort = AtomicBool::new(engine.store.batch_abort_requested(batch_id)?);
    let done = Arc::new(AtomicBool::new(false));
    let gate = Arc::new(Gate::new(concurrency));
    let slot_watcher = {
        let (db, gate, done) = (paths.db.clone(), gate.clone(), done.clone());
        std::thread::spawn(move || gate.watch_agents(&db, &done))
    };
    // Taken and put in line for a slot under one lock: slots go out in the file's order.
    let next = || queue.lock().ok().and_then(|mut q| q.pop_front().inspect(|item| gate.enqueue(item.seq)));
    let work = |engine: &mut Engine, item: BatchItem| -> Result<Flow, EngineError> {
        if abort.load(Ordering::SeqCst) {
            gate.leave(item.seq);
            engine.store.abort_queued_items(batch_id, "aborted before it started")?;
            return Ok(Flow::Stop);
        }
        if let Some(reason) = pool.as_ref().and_then(|p| p.stop_reason()) {
            gate.leave(item.seq);
            engine.store.abort_queued_items(batch_id, &format!("not started: {reason}"))?;
            return Ok(Flow::Stop);
        }
        let ctx = Ctx { abort: &abort, gate: &gate, observer: observer.as_ref(), pool: pool.as_ref() };
        run_item(engine, batch_id, item, &ctx)?;
        Ok(Flow::Next)
    };
    let job = AbortTarget::Batch(batch_id.to_string());
    let first_error = run_workers(paths, &job, workers, &abort, &next, &work);
    done.store(true, Ordering::SeqCst);
    let _ = slot_watcher.join();

    let user_abort = abort.load(Ordering::SeqCst);
    let budget_stop = pool.as_ref().and_then(|p| p.stop_reason());
    let (status, counts, stop_reason) =
        end_batch(&mut engine, &batch, user_abort, budget_stop, first_error.is_none())?;
    if let Some(e) = first_error {
        return Err(e);
    }
    Ok(BatchOutcome {
        batch_id: batch_id.to_string(),
        status,
        counts,
        stop_reason,
        spent_usd: pool.as_ref().map(|p| p.spent_usd()),
        took_ms: started.elapsed().as_millis() as u64,
    })
}

/// Ends a batch whose runner is done (local or on a cluster): queued items end `aborted` when it was
/// stopped (`user_abort`, or the abort flag in the store; `budget_stop`), the batch gets its final status
/// and stop reason, and one notification tells how it ended. Returns the status, the counts and the
/// stop reason.
pub(crate) fn end_batch(
    engine: &mut Engine,
    batch: &Batch,
    user_abort: bool,
    budget_stop: Option<String>,
    no_error: bool,
) -> Result<(BatchStatus, BatchCounts, Option<String>), EngineError> {
    let batch_id = batch.id.as_str();
    let user_abort = user_abort || engine.store.batch_abort_requested(batch_id)?;
    let stop_reason = if user_abort {
        engine.store.abort_queued_items(batch_id, "aborted before it started")?;
        Some("aborted on request (`batch abort` or a signal)".to_string())
    } else if let Some(reason) = &budget_stop {
        engine.store.abort_queued_items(batch_id, &format!("not started: {reason}"))?;
        Some(reason.clone())
    } else {
        None
    };
    let counts = engine.store.batch_counts(batch_id)?;
    let all_passed = no_error && counts.queued + counts.running == 0 && counts.passed == counts.total;
    let status = BatchStatus::final_for(stop_reason.is_some(), all_passed);
    engine.store.finish_batch(batch_id, status, stop_reason.as_deref())?;
    let summary = format!(
        "batch {}: {status}: {} of {} passed, {} merged",
        batch.name, counts.passed, counts.total, counts.merged
    );
    crate::notify::notify_run_end(
        engine,
        (crate::notify::Subject::Batch, batch_id),
        &batch.name,
        status,
        stop_reason.as_deref(),
        budget_stop.is_some() && !user_abort,
        summary,
    );
    Ok((status, counts, stop_reason))
}

/// The session name of an attempt: `<item>-<batch short id>-<attempt>`, within the 64-character limit.
pub(crate) fn session_name(item: &str, batch_id: &str, attempt: i64) -> String {
    let suffix = format!("-{}-{attempt}", short_id(batch_id));
    let keep = ampsm_core::names::MAX_NAME_LEN.saturating_sub(suffix.len());
    let head: String = item.chars().take(keep).collect();
    let head = head.trim_end_matches(['.', '-']);
    let name = format!("{head}{suffix}");
    if ampsm_core::validate_session_name(&name).is_ok() { name } else { format!("item{suffix}") }
}

/// An item's place in the line for a slot, left when dropped.
struct InLine<'a> {
    gate: &'a Gate,
    seq: i64,
}

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        self.gate.leave(self.seq);
    }
}

/// What a worker shares with the others.
struct Ctx<'a> {
    abort: &'a AtomicBool,
    gate: &'a Gate,
    observer: &'a (dyn Fn(&BatchEvent) + Send + Sync),
    /// The whole batch's budget, when it has one.
    pool: Option<&'a Arc<BudgetPool>>,
}

/// Runs one item to its final status: attempts until one passes or none is left, then the merge when asked.
/// Each attempt: a fresh session (made before taking an agent slot), then a slot, then `iterate`.
fn run_item(engine: &mut Engine, batch_id: &str, item: BatchItem, ctx: &Ctx<'_>) -> Result<(), EngineError> {
    let last_attempt = (item.retries + 1).max(item.attempts + 1);
    let mut attempt = item.attempts + 1;
    // Out of the line for a slot whichever way this returns.
    let _line = InLine { gate: ctx.gate, seq: item.seq };
    let finish = |engine: &mut Engine,
                  status: BatchItemStatus,
                  error: Option<&str>,
                  merged: bool|
     -> Result<(), EngineError> {
        engine.store.finish_batch_item(&item.id, status, error, merged)?;
        if let Some(row) = engine.store.get_batch_item(&item.id)? {
            (ctx.observer)(&BatchEvent::Finished { item: row });
        }
        Ok(())
    };
    loop {
        if ctx.abort.load(Ordering::SeqCst) {
            if engine.store.get_batch_item(&item.id)?.is_some_and(|i| !i.is_finished()) {
                return finish(engine, BatchItemStatus::Aborted, Some("aborted before it started"), false);
            }
            return Ok(());
        }
        if let Some(reason) = ctx.pool.and_then(|p| p.stop_reason()) {
            return finish(engine, BatchItemStatus::Aborted, Some(&format!("not started: {reason}")), false);
        }
        let session = match prepare_session(engine, batch_id, &item, attempt) {
            Ok(s) => s,
            // Creating a session fails the same way again (bad base, name, disk): no retry.
            Err(e) => {
                return finish(
                    engine,
                    BatchItemStatus::Error,
                    Some(&format!("cannot create the session: {e}")),
                    false,
                );
            }
        };
        let Some(slot) = ctx.gate.acquire(item.seq, ctx.abort) else {
            discard_unused_session(engine, &session);
            return finish(engine, BatchItemStatus::Aborted, Some("aborted before it started"), false);
        };
        if let Some(reason) = ctx.pool.and_then(|p| p.stop_reason()) {
            // The batch's budget ran out while this item waited for a slot.
            ctx.gate.release(slot);
            discard_unused_session(engine, &session);
            return finish(engine, BatchItemStatus::Aborted, Some(&format!("not started: {reason}")), false);
        }
        let Some(started) = engine.store.start_batch_item_attempt(&item.id)? else {
            // `batch abort` marked it meanwhile.
            ctx.gate.release(slot);
            discard_unused_session(engine, &session);
            return Ok(());
        };
        attempt = started;
        engine.store.set_batch_item_session(&item.id, session.id.as_str())?;
        (ctx.observer)(&BatchEvent::Started {
            item: item.clone(),
            attempt,
            session: Some(session.name.clone()),
        });
        // Without a validation script the slot is free as soon as the agent's process group is gone;
        // otherwise it is held until the script has run too.
        if item.script.as_deref().is_none_or(|s| s.trim().is_empty()) {
            ctx.gate.release_when_agent_exits(slot, session.id.as_str());
        }
        let request = IterateRequest {
            session: session.id.to_string(),
            prompt: None,
            timeout: item.timeout_ms.map(|ms| Duration::from_millis(ms.max(1) as u64)),
            budget_pool: ctx.pool.cloned(),
            interrupt: None,
        };
        let result = engine.iterate(request, &mut |_| {});
        let (status, reason) = match result {
            Ok(report) if report.passed() => {
                let (merged, note) = if item.merge_on_pass {
                    match merge_in_turn(engine, session.id.as_str()) {
                        Ok(r) if r.result == MergeResult::Merged => (true, None),
                        Ok(r) => {
                            (false, Some(format!("passed, not merged: the merge ended with {}", r.result)))
                        }
                        Err(e) => (false, Some(format!("passed, not merged: {e}"))),
                    }
                } else {
                    (false, None)
                };
                ctx.gate.release(slot);
                return finish(engine, BatchItemStatus::Passed, note.as_deref(), merged);
            }
            Ok(report) => attempt_failure(&report),
            Err(EngineError::Metrics(MetricsError::PoolExhausted { reason, .. })) => {
                ctx.gate.release(slot);
                discard_unused_session(engine, &session);
                return finish(
                    engine,
                    BatchItemStatus::Aborted,
                    Some(&format!("not started: {reason}")),
                    false,
                );
            }
            Err(e) => (BatchItemStatus::Error, e.to_string()),
        };
        ctx.gate.release(slot);
        // The flag in the database too: `batch abort` stops the agent at once, before this runner's
        // watcher has seen the flag.
        if ctx.abort.load(Ordering::SeqCst) || engine.store.batch_abort_requested(batch_id)? {
            return finish(engine, BatchItemStatus::Aborted, Some(&format!("aborted: {reason}")), false);
        }
        if ctx.pool.is_some_and(|p| p.exhausted()) {
            // No retry once the batch's money is gone.
            return finish(engine, status, Some(&reason), false);
        }
        if attempt >= last_attempt {
            return finish(engine, status, Some(&reason), false);
        }
        engine.store.set_batch_item_note(&item.id, &format!("attempt {attempt}: {reason}"))?;
        (ctx.observer)(&BatchEvent::Retrying { item: item.clone(), attempt, reason });
        attempt += 1;
        ctx.gate.enqueue(item.seq);
    }
}

/// The status and reason of an attempt whose run did not pass: `timeout` when the agent ran out of time,
/// else `failed` with the first thing that went wrong (the run, the script, denied tool calls, a question).
pub(crate) fn attempt_failure(report: &crate::IterationReport) -> (BatchItemStatus, String) {
    let outcome = report.iteration.outcome.unwrap_or(IterationOutcome::Failed);
    let reason = if outcome != IterationOutcome::Success {
        report.iteration.error.clone().unwrap_or_else(|| format!("the agent run ended: {outcome}"))
    } else if let Some(t) = report.tests.as_ref().filter(|t| !t.passed()) {
        format!("the script failed ({}): {}", t.outcome(), t.short_tail())
    } else if !report.outcome.denials.is_empty() {
        report.session.status_note.clone().unwrap_or_else(|| "tool calls were denied".to_string())
    } else {
        "the agent is waiting for input".to_string()
    };
    let status =
        if outcome == IterationOutcome::Timeout { BatchItemStatus::Timeout } else { BatchItemStatus::Failed };
    (status, reason)
}

/// The session of an attempt. A session of that name left by an earlier runner that crashed before the
/// attempt started (same item, never iterated) is taken over instead of failing on the name.
fn prepare_session(
    engine: &mut Engine,
    batch_id: &str,
    item: &BatchItem,
    attempt: i64,
) -> Result<ampsm_store::Session, EngineError> {
    let made = engine.create_session(CreateSession {
        repo: PathBuf::from(&item.repo_path),
        name: session_name(&item.item_name, batch_id, attempt),
        prompt: Some(item.prompt.clone()),
        base: item.base_branch.clone(),
        agent: Some(item.agent.clone()),
        model: item.model.clone(),
        script: item.script.clone(),
        budget_usd: item.budget_usd,
        batch_item_id: Some(item.id.clone()),
        bench_result_id: None,
        // The configured setup (`repos.<path>.setup`, `session.setup`) runs as for `new`.
        ..Default::default()
    });
    match made {
        Err(EngineError::Store(ampsm_store::StoreError::DuplicateName { id, name, repo })) => {
            let existing = engine.store.get_session(&ampsm_core::SessionId::from_stored(id.clone()))?;
            let unused = existing.batch_item_id.as_deref() == Some(item.id.as_str())
                && engine.store.list_iterations(&existing.id)?.is_empty();
            if unused {
                Ok(existing)
            } else {
                Err(ampsm_store::StoreError::DuplicateName { id, name, repo }.into())
            }
        }
        other => other,
    }
}

/// Removes a session made for an attempt that never started (nothing in it can be lost).
fn discard_unused_session(engine: &mut Engine, session: &ampsm_store::Session) {
    let _ = engine.remove_session(session.id.as_str(), false, false);
}

/// The agent slots of a runner: at most `concurrency` agents at once. A slot is taken before `iterate`
/// and given back when the attempt ends, or earlier — as soon as the agent's process group is gone — when
/// asked with [`Gate::release_when_agent_exits`] (the [`Gate::watch_agents`] thread sees that).
struct Gate {
    state: Mutex<GateState>,
    freed: Condvar,
}

struct GateState {
    free: usize,
    /// The last slot token handed out.
    next: u64,
    /// Items (by their place in the file) taken by a worker and not started yet, with when they joined the
    /// line and whether their session is ready.
    waiting: std::collections::BTreeMap<i64, (Instant, bool)>,
    /// Slots held, by token.
    held: std::collections::HashMap<u64, Held>,
}

#[derive(Default)]
struct Held {
    /// Give the slot back when this session's agent has exited.
    session: Option<String>,
    /// The agent's process group, once recorded.
    pgid: Option<i64>,
}

impl Gate {
    fn new(slots: usize) -> Gate {
        Gate {
            state: Mutex::new(GateState {
                free: slots,
                next: 0,
                waiting: Default::default(),
                held: Default::default(),
            }),
            freed: Condvar::new(),
        }
    }

    /// Puts an item in line for a slot (items are served in order of their place in the file).
    fn enqueue(&self, seq: i64) {
        if let Ok(mut st) = self.state.lock() {
            st.waiting.insert(seq, (Instant::now(), false));
        }
    }

    /// Takes an item out of the line (it will not ask for a slot, or not now).
    fn leave(&self, seq: i64) {
        if let Ok(mut st) = self.state.lock()
            && st.waiting.remove(&seq).is_some()
        {
            self.freed.notify_all();
        }
    }

    /// Waits for a free slot; `None` when the batch is aborted meanwhile. Slots go to items in file order:
    /// the first ready item in line gets it, unless an earlier item is still making its session — then it
    /// waits for that one, but at most [`IN_ORDER_GRACE`] after the earlier one joined the line.
    fn acquire(&self, seq: i64, abort: &AtomicBool) -> Option<u64> {
        let mut st = self.state.lock().ok()?;
        let since = st.waiting.get(&seq).map(|w| w.0).unwrap_or_else(Instant::now);
        st.waiting.insert(seq, (since, true));
        loop {
            if abort.load(Ordering::SeqCst) {
                st.waiting.remove(&seq);
                self.freed.notify_all();
                return None;
            }
            let now = Instant::now();
            let first_ready = st.waiting.iter().find(|(_, w)| w.1).map(|(s, _)| *s);
            let held_back = st.waiting.range(..seq).any(|(_, w)| !w.1 && now - w.0 < IN_ORDER_GRACE);
            if st.free > 0 && first_ready == Some(seq) && !held_back {
                st.waiting.remove(&seq);
                st.free -= 1;
                st.next += 1;
                let token = st.next;
                st.held.insert(token, Held::default());
                // Another slot may be free for the next in line.
                self.freed.notify_all();
                return Some(token);
            }
            let wait = if st.free > 0 { Duration::from_millis(5) } else { ABORT_POLL };
            st = self.freed.wait_timeout(st, wait).ok()?.0;
        }
    }

    /// Gives a slot back (once; later calls do nothing).
    fn release(&self, token: u64) {
        if let Ok(mut st) = self.state.lock()
            && st.held.remove(&token).is_some()
        {
            st.free += 1;
            self.freed.notify_all();
        }
    }

    fn release_when_agent_exits(&self, token: u64, session: &str) {
        if let Ok(mut st) = self.state.lock()
            && let Some(h) = st.held.get_mut(&token)
        {
            h.session = Some(session.to_string());
        }
    }

    /// The watcher thread: every few milliseconds, learns the agent pid of watched sessions from the store
    /// and gives the slot back once that process group is gone.
    fn watch_agents(&self, db: &Path, done: &AtomicBool) {
        let Ok(store) = Store::open(db) else { return };
        while !done.load(Ordering::SeqCst) {
            let watched: Vec<(u64, String, Option<i64>)> = match self.state.lock() {
                Ok(st) => {
                    st.held.iter().filter_map(|(t, h)| h.session.clone().map(|s| (*t, s, h.pgid))).collect()
                }
                Err(_) => return,
            };
            for (token, session, pgid) in watched {
                match pgid {
                    Some(p) if !group_alive(p) => self.release(token),
                    Some(_) => {}
                    None => {
                        let sid = ampsm_core::SessionId::from_stored(session);
                        if let Ok(Some(p)) = store.get_session(&sid).map(|s| s.agent_pid)
                            && let Ok(mut st) = self.state.lock()
                            && let Some(h) = st.held.get_mut(&token)
                        {
                            h.pgid = Some(p);
                        }
                    }
                }
            }
            std::thread::sleep(SLOT_POLL);
        }
    }
}

/// Merges of passing items into their base branch queue here, one at a time in this process.
static MERGE_QUEUE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// How often a merge is tried again when its base branch moved under it (another merge landed).
const MERGE_TRIES: u32 = 5;

/// `mergeOnPass`: merges one at a time (other workers of the batch wait their turn), and when the base
/// branch moved while it was merged (a merge by another process landed first) tries again onto the moved
/// base, so every passing item lands or reports a real conflict.
pub(crate) fn merge_in_turn(
    engine: &mut Engine,
    session: &str,
) -> Result<crate::review::merge::MergeReport, EngineError> {
    let _turn = MERGE_QUEUE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut attempt = 1;
    loop {
        match engine.merge_session(session, &MergeRequest::default()) {
            Err(EngineError::Review(crate::review::error::ReviewError::Moved { .. }))
                if attempt < MERGE_TRIES =>
            {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(100 * u64::from(attempt)));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_fit_and_stay_valid() {
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(session_name("jwt-auth", id, 1), "jwt-auth-01234567-1");
        let long = "a".repeat(64);
        let n = session_name(&long, id, 12);
        assert!(n.len() <= 64 && n.ends_with("-01234567-12"), "{n}");
        assert!(ampsm_core::validate_session_name(&session_name("x.y.", id, 1)).is_ok());
    }
}

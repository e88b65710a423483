//! Batches and benchmark runs on a cluster: the items of a batch (or the results of a benchmark run) run as
//! the tasks of one cluster job per submission (a Slurm job array, a Kubernetes Indexed Job), each task
//! being this same program in worker mode on some node.
//!
//! - **One coordinator** ([`coordinator`]). The run's runner (the process `batch start` or `bench` detaches,
//!   as for a local run) writes each queued unit as a task file in a submission folder under the executor's
//!   shared work folder, records the submission in the store, submits it, and then watches: a worker's
//!   *started* marker makes its unit `running`; its *result* is taken in as it arrives ([`ingest`] for
//!   batch items, [`bench`] for benchmark results): the branch fetched from its git bundle into the user's
//!   repository and checked out in a worktree of a session made here, the session's rows copied from the
//!   worker's store file, the unit finished (a batch item merged with `mergeOnPass`, a benchmark's
//!   predictions rewritten), so that status views, exports, merges and the dashboard see it as if it had
//!   run here. Only the coordinator writes the database.
//! - **Workers** ([`worker`]) never open the coordinator's home. A worker makes a home of its own on its
//!   node, clones the repository (from its shared path, or its remote), runs the unit there with the
//!   coordinator's config (the same permission policy, timeout, budget and retries), reports what it spends
//!   while it runs, and writes its result folder atomically (a temporary folder renamed into place). It
//!   exits 0 whenever it wrote a result, so that the scheduler never retries a unit: retries are the run's.
//! - **Abort** (`batch abort`, `bench abort`, a signal) and the run's **budget** cancel every live
//!   submission through the scheduler (`scancel`, a Job deleted in the background); the workers get
//!   SIGTERM, stop their agent (the work is committed) and still write their result, which is taken in if
//!   it arrives while the coordinator watches.
//! - **Restart.** The scheduler's job id is stored: after the coordinator dies (`kill -9`), `resume` takes
//!   in the results that arrived meanwhile, keeps watching the tasks that still run, and submits only the
//!   units that have neither.
//!
//! The shared folder: `<work_dir>/<submission id>/` with `config.json` (the coordinator's config),
//! `tasks/<index>.json`, `started/<index>.json`, `spend/<index>` (what the task spent so far, for the
//! run's budget), `progress/<index>.json` (its node, session, lines, tokens and last event while it runs,
//! copied into the store for the views), `results/<index>/` (`result.json`, `store.sqlite`, the git
//! bundles) and `logs/` (the scheduler's output of each task). A result folder is removed once it is taken in, and the submission
//! folder once all of its results were; one with lost tasks keeps its task files and logs (without the
//! config copy) until `batch clean`.

pub mod bench;
pub mod coordinator;
pub mod ingest;
pub mod kubernetes;
pub mod slurm;
pub mod worker;

use crate::EngineError;
use ampsm_core::{BatchItemStatus, Executor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The version of the task and result files; a worker refuses files of another version.
pub const FORMAT: u32 = 1;

/// How a node gets the repository of a task.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RepoSource {
    /// A path every node sees (a shared folder, or one machine).
    Path(String),
    /// A URL to clone (the repository's `origin`).
    Remote(String),
}

/// One batch item as a worker runs it (`tasks/<index>.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Task {
    pub format: u32,
    pub batch_id: String,
    pub item_id: String,
    pub item_name: String,
    pub repo: RepoSource,
    /// The base branch as the batch names it (sessions made here record it) and the commit it was at
    /// when the task was written (what the worker starts from).
    pub base_branch: String,
    pub base_commit: String,
    pub prompt: String,
    pub script: Option<String>,
    pub agent: String,
    pub model: Option<String>,
    pub timeout_ms: Option<i64>,
    /// The attempts to make: `first_attempt..=last_attempt` until one passes.
    pub first_attempt: i64,
    pub last_attempt: i64,
    /// The item's own budget (each attempt's session), USD.
    pub budget_usd: Option<f64>,
    /// What is left of the whole batch's budget when the task was written: the most the worker may
    /// spend, USD.
    pub budget_cap_usd: Option<f64>,
    /// The setup command of the item's sessions (resolved for the user's repository; "" for none).
    pub setup: String,
    /// The commit author of the user's repository (`user.name`, `user.email`), which a fresh clone lacks.
    pub git_identity: Option<(String, String)>,
}

/// A session a worker made, as its result hands it over.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionBundle {
    /// The session's name and id in the worker's store.
    pub session_name: String,
    pub session_id: String,
    /// The session's branch on the worker (the ref in the bundle).
    pub branch: String,
    /// The branch's last commit (the base commit when the agent changed nothing).
    pub head_commit: String,
    /// The git bundle of the branch against the base commit (relative to the result folder), when it has
    /// commits of its own.
    pub bundle: Option<String>,
}

/// One attempt a worker made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttemptResult {
    pub attempt: i64,
    #[serde(flatten)]
    pub session: SessionBundle,
    pub status: BatchItemStatus,
    pub passed: bool,
    pub reason: Option<String>,
}

/// What a worker reports (`results/<index>/result.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskResult {
    pub format: u32,
    pub item_id: String,
    /// The item's final status as the worker saw it (`aborted` when it was stopped by a signal).
    pub status: BatchItemStatus,
    pub error: Option<String>,
    pub attempts: Vec<AttemptResult>,
    /// The worker's store file (relative to the result folder), when any session was made.
    pub store: Option<String>,
    /// The node it ran on, and for how long.
    pub host: String,
    pub took_ms: u64,
}

/// The folders of a submission.
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn new(root: impl Into<PathBuf>) -> Layout {
        Layout { root: root.into() }
    }
    pub fn config(&self) -> PathBuf {
        self.root.join("config.json")
    }
    pub fn task(&self, idx: i64) -> PathBuf {
        self.root.join("tasks").join(format!("{idx}.json"))
    }
    pub fn started(&self, idx: i64) -> PathBuf {
        self.root.join("started").join(format!("{idx}.json"))
    }
    pub fn result_dir(&self, idx: i64) -> PathBuf {
        self.root.join("results").join(idx.to_string())
    }
    /// What task `idx` spent so far (USD, as text), rewritten by its worker while it runs.
    pub fn spend(&self, idx: i64) -> PathBuf {
        self.root.join("spend").join(idx.to_string())
    }
    /// How task `idx` is doing (JSON: `ampsm_store::cluster::TaskProgress`), rewritten by its worker.
    pub fn progress(&self, idx: i64) -> PathBuf {
        self.root.join("progress").join(format!("{idx}.json"))
    }
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }
    /// The scheduler's output file of task `idx`.
    pub fn log(&self, idx: i64) -> PathBuf {
        self.logs().join(format!("{idx}.out"))
    }
}

/// Where the scheduler has a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskPhase {
    /// Waiting for a node.
    Pending,
    Running,
    /// Ended; `ok` when it exited 0. `state` is the scheduler's word (COMPLETED, FAILED, CANCELLED,
    /// TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, …).
    Ended {
        state: String,
        ok: bool,
    },
}

/// What is submitted: the tasks of one submission folder.
#[derive(Debug, Clone)]
pub struct SubmitRequest {
    /// A short job name (`ampsm-<batch>`).
    pub name: String,
    pub layout: Layout,
    pub indexes: Vec<i64>,
    /// The most tasks running at once.
    pub max_concurrent: u32,
    /// The wall-clock limit of each task.
    pub time_limit: Duration,
    /// The amp-sessions program on the nodes.
    pub program: PathBuf,
}

/// A cluster scheduler: submits a submission's tasks, tells where they are, cancels them.
pub trait Scheduler: Send + Sync {
    /// Submits; returns the scheduler's id of the job.
    fn submit(&self, req: &SubmitRequest) -> Result<String, EngineError>;
    /// The tasks the scheduler still knows of `job`, by index (a task it forgot is absent).
    fn phases(&self, job: &str) -> Result<BTreeMap<i64, TaskPhase>, EngineError>;
    /// Cancels every task of `job` that has not ended.
    fn cancel(&self, job: &str) -> Result<(), EngineError>;
    /// The last line task `idx` printed, when the scheduler keeps it (Kubernetes' pod logs); tasks that
    /// write into the submission's `logs/` need none.
    fn log_tail(&self, _job: &str, _idx: i64) -> Option<String> {
        None
    }
}

/// The scheduler of `executor` with the config's settings; `repos` are the repositories its tasks work
/// on (Kubernetes mounts them into the pods with `repository: path`).
pub fn scheduler_for(
    executor: Executor,
    config: &ampsm_config::Config,
    repos: &[String],
) -> Result<Box<dyn Scheduler>, EngineError> {
    match executor {
        Executor::Slurm => Ok(Box::new(slurm::Slurm::from_config(&config.executors.slurm))),
        Executor::Kubernetes => {
            let c = &config.executors.kubernetes;
            let mounted = if c.repository.as_deref() == Some("path") { repos.to_vec() } else { Vec::new() };
            Ok(Box::new(kubernetes::Kubernetes::from_config(c).with_repositories(mounted)))
        }
        Executor::Local => Err(EngineError::Invalid("the local executor has no cluster scheduler".into())),
    }
}

/// Writes `bytes` to `path` through a temporary file renamed into place (readers on other nodes never see
/// half a file).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), EngineError> {
    let io = |source| EngineError::Io { path: path.to_path_buf(), source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Reads a JSON file of this module (`what` names it in errors).
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<T, EngineError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| EngineError::Io { path: path.to_path_buf(), source })?;
    serde_json::from_str(&text)
        .map_err(|e| EngineError::Invalid(format!("{}: not a valid {what}: {e}", path.display())))
}

/// Array indexes as a compact list: `0-3,7,9-10`.
pub fn index_ranges(indexes: &[i64]) -> String {
    let mut sorted = indexes.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        parts.push(if start == end { start.to_string() } else { format!("{start}-{end}") });
        i += 1;
    }
    parts.join(",")
}

/// The indexes of a compact list (`3-5%2`, `1,4`): the inverse of [`index_ranges`], with Slurm's `%K`
/// suffix ignored.
pub fn parse_index_ranges(text: &str) -> Option<Vec<i64>> {
    let text = text.split('%').next()?;
    let mut out = Vec::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (a.parse::<i64>().ok()?, b.parse::<i64>().ok()?);
                if b < a || b - a > 1_000_000 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_lists_compress_and_expand() {
        assert_eq!(index_ranges(&[3, 0, 1, 2, 7, 9, 10]), "0-3,7,9-10");
        assert_eq!(index_ranges(&[5]), "5");
        assert_eq!(parse_index_ranges("0-3,7,9-10"), Some(vec![0, 1, 2, 3, 7, 9, 10]));
        assert_eq!(parse_index_ranges("4-6%2"), Some(vec![4, 5, 6]));
        assert_eq!(parse_index_ranges("x"), None);
        assert_eq!(parse_index_ranges("5-3"), None);
    }
}

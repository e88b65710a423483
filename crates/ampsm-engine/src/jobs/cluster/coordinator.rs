//! The coordinator of a batch on a cluster (see [`super`]): submits the queued items, watches the
//! submission folders and the scheduler, takes results in as they arrive, cancels on abort or when the
//! batch's budget is spent, and ends the batch as a local runner would.

use super::{Layout, RepoSource, Scheduler, SubmitRequest, Task, TaskPhase, write_atomic};
use crate::jobs::batch::{BatchError, BatchEvent, BatchOutcome};
use crate::process::{own_pid, pid_alive};
use crate::{Engine, EngineError};
use ampsm_config::Paths;
use ampsm_core::id::{new_id, short_id};
use ampsm_core::{BatchItemStatus, Executor, Money};
use ampsm_git::Git;
use ampsm_store::batches::{Batch, BatchItem};
use ampsm_store::cluster::{NewSubmission, Submission, TaskState};
use ampsm_store::jobs::JobKind;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the coordinator looks at the submission folders.
const WATCH: Duration = Duration::from_millis(250);
/// How often it asks the scheduler where the tasks are.
const ASK_SCHEDULER: Duration = Duration::from_secs(2);
/// How long a task the scheduler says ended may take to show its result (a shared folder may show it
/// late; a cancelled worker still writes its own) before it counts as lost.
const RESULT_GRACE: Duration = Duration::from_secs(20);
/// The time each task gets on top of its agent runs: clone, set-up, scripts, bundles.
const TASK_OVERHEAD: Duration = Duration::from_secs(600);

/// The settings of a submission, from the config.
struct Settings {
    work_dir: PathBuf,
    program: PathBuf,
    remote: bool,
    max_concurrent: u32,
    time_limit: Option<Duration>,
}

impl Settings {
    fn of(engine: &Engine, executor: Executor, batch: &Batch) -> Result<Settings, EngineError> {
        let home_dir = engine.paths.home.join("cluster");
        let program = |p: &Option<String>| -> Result<PathBuf, EngineError> {
            match p {
                Some(p) => Ok(PathBuf::from(p)),
                None => std::env::current_exe()
                    .map_err(|e| EngineError::Invalid(format!("cannot tell this program's path: {e}"))),
            }
        };
        Ok(match executor {
            Executor::Slurm => {
                let c = &engine.config.executors.slurm;
                Settings {
                    work_dir: c.work_dir.as_ref().map(PathBuf::from).unwrap_or(home_dir),
                    program: program(&c.program)?,
                    remote: c.repository.as_deref() == Some("remote"),
                    max_concurrent: c.max_concurrent.unwrap_or(batch.concurrency.max(1) as u32),
                    time_limit: c.time_limit.as_deref().and_then(|t| ampsm_core::parse_duration(t).ok()),
                }
            }
            Executor::Kubernetes => {
                let c = &engine.config.executors.kubernetes;
                Settings {
                    work_dir: c.work_dir.as_ref().map(PathBuf::from).unwrap_or(home_dir),
                    program: PathBuf::from("amp-sessions"),
                    remote: c.repository.as_deref() != Some("path"),
                    max_concurrent: batch.concurrency.max(1) as u32,
                    time_limit: None,
                }
            }
            Executor::Local => {
                return Err(EngineError::Invalid("a local batch has no cluster settings".into()));
            }
        })
    }
}

/// A submission being watched.
struct Watched {
    sub: Submission,
    layout: Layout,
    /// When the scheduler was last asked, and what it said.
    asked: Option<Instant>,
    phases: BTreeMap<i64, TaskPhase>,
    /// Since when a task has been seen ended without its result.
    ended_since: HashMap<i64, Instant>,
}

/// Runs the queued items of a cluster batch to the end (see the module docs).
pub fn run_batch_on_cluster(
    paths: &Paths,
    batch_id: &str,
    observer: Arc<dyn Fn(&BatchEvent) + Send + Sync>,
) -> Result<BatchOutcome, EngineError> {
    let started = Instant::now();
    let mut engine = Engine::open_at(paths.clone())?;
    let notifications = engine.config.notifications.clone();
    engine.config.notifications.desktop = false;
    engine.config.notifications.command = None;
    let batch =
        engine.store.get_batch(batch_id)?.ok_or_else(|| BatchError::NotFound(batch_id.to_string()))?;
    let label = format!("{} ({})", batch.name, short_id(batch_id));
    if let Some(pid) = batch.runner_pid.filter(|p| pid_alive(*p) && *p != own_pid()) {
        return Err(BatchError::Running { batch: label, short: short_id(batch_id).to_string(), pid }.into());
    }
    let spent = engine.store.batch_spend_usd(batch_id)?;
    if let Some(limit) = batch.budget_usd.filter(|b| b.is_positive() && spent.reached(*b)) {
        return Err(BatchError::BudgetSpent {
            batch: label,
            short: short_id(batch_id).to_string(),
            spent: spent.usd(),
            budget: limit.usd(),
        }
        .into());
    }
    let mut repos: Vec<String> =
        engine.store.batch_items(batch_id)?.into_iter().map(|i| i.repo_path).collect();
    repos.sort();
    repos.dedup();
    let scheduler = super::scheduler_for(batch.executor, &engine.config, &repos)?;
    let settings = Settings::of(&engine, batch.executor, &batch)?;
    engine.store.set_batch_running(batch_id, own_pid())?;

    // Earlier submissions that may still report (a coordinator before this one died).
    let mut watched: Vec<Watched> = engine
        .store
        .submissions_of(JobKind::Batch, batch_id)?
        .into_iter()
        .filter(|s| s.ended_at.is_none())
        .map(|sub| Watched {
            layout: Layout::new(&sub.folder),
            sub,
            asked: None,
            phases: BTreeMap::new(),
            ended_since: HashMap::new(),
        })
        .collect();
    let mut covered = HashSet::new();
    for w in &watched {
        for t in engine.store.tasks_of(&w.sub.id)? {
            if !t.state.is_final() {
                covered.insert(t.item_id);
            }
        }
    }
    let queued: Vec<BatchItem> = engine
        .store
        .batch_items(batch_id)?
        .into_iter()
        .filter(|i| i.status == BatchItemStatus::Queued && !covered.contains(&i.id))
        .collect();
    let mut abort = engine.store.batch_abort_requested(batch_id)?;
    let mut budget_stop: Option<String> = None;
    let mut first_error: Option<EngineError> = None;
    if !queued.is_empty() && !abort {
        match submit(&mut engine, &batch, &settings, scheduler.as_ref(), &queued) {
            Ok(w) => watched.push(w),
            Err(e) => {
                let note = format!("not started: the submission to the cluster failed: {e}");
                for item in &queued {
                    engine.store.finish_batch_item(&item.id, BatchItemStatus::Error, Some(&note), false)?;
                }
                first_error = Some(e);
            }
        }
    }

    let mut cancelled = false;
    loop {
        if !abort && engine.store.batch_abort_requested(batch_id)? {
            abort = true;
        }
        if (abort || budget_stop.is_some()) && !cancelled {
            cancelled = true;
            let note = match &budget_stop {
                Some(reason) => format!("not started: {reason}"),
                None => "aborted before it started".to_string(),
            };
            for w in &watched {
                cancel(&mut engine, scheduler.as_ref(), &w.sub);
                for t in engine.store.tasks_of(&w.sub.id)? {
                    let Some(item) = engine.store.get_batch_item(&t.item_id)? else { continue };
                    match item.status {
                        BatchItemStatus::Queued => {
                            engine.store.finish_batch_item(
                                &item.id,
                                BatchItemStatus::Aborted,
                                Some(&note),
                                false,
                            )?;
                        }
                        BatchItemStatus::Running if budget_stop.is_none() => {
                            let why = "aborted: its cluster task was cancelled (`batch abort` or a signal)";
                            engine.store.finish_batch_item(
                                &item.id,
                                BatchItemStatus::Aborted,
                                Some(why),
                                false,
                            )?;
                        }
                        _ => {}
                    }
                }
            }
            engine.store.abort_queued_items(batch_id, &note)?;
        }
        let mut open = false;
        for w in watched.iter_mut() {
            if w.sub.ended_at.is_some() {
                continue;
            }
            match watch_submission(&mut engine, scheduler.as_ref(), w, observer.as_ref()) {
                Ok(true) => {
                    engine.store.end_submission(&w.sub.id)?;
                    w.sub.ended_at = Some(ampsm_core::time::now_ms());
                }
                Ok(false) => open = true,
                Err(e) => {
                    tracing::warn!("watching submission {}: {e}", w.sub.id);
                    open = true;
                }
            }
        }
        if budget_stop.is_none()
            && let Some(limit) = batch.budget_usd.filter(|b| b.is_positive())
        {
            let spent = engine.store.batch_spend_usd(batch_id)?;
            if spent.reached(limit) {
                budget_stop = Some(format!(
                    "the batch's budget of {} is spent ({} so far)",
                    ampsm_core::dollars(limit.usd()),
                    ampsm_core::dollars(spent.usd())
                ));
            }
        }
        if !open {
            break;
        }
        std::thread::sleep(WATCH);
    }

    // Notifications were off while items were taken in (merges, sessions): the batch's end is told once.
    engine.config.notifications = notifications;
    let (status, counts, stop_reason) =
        crate::jobs::batch::end_batch(&mut engine, &batch, abort, budget_stop, first_error.is_none())?;
    if let Some(e) = first_error {
        return Err(e);
    }
    Ok(BatchOutcome {
        batch_id: batch_id.to_string(),
        status,
        counts,
        stop_reason,
        spent_usd: batch.budget_usd.map(|_| engine.store.batch_spend_usd(batch_id)).transpose()?,
        took_ms: started.elapsed().as_millis() as u64,
    })
}

/// Writes the tasks of `items` into a new submission folder, records the submission and submits it.
fn submit(
    engine: &mut Engine,
    batch: &Batch,
    settings: &Settings,
    scheduler: &dyn Scheduler,
    items: &[BatchItem],
) -> Result<Watched, EngineError> {
    let id = new_id();
    let layout = Layout::new(settings.work_dir.join(&id));
    let config =
        serde_json::to_vec_pretty(&engine.config).map_err(|e| EngineError::Invalid(e.to_string()))?;
    write_atomic(&layout.config(), &config)?;
    let spent = engine.store.batch_spend_usd(&batch.id)?;
    let cap = batch.budget_usd.filter(|b| b.is_positive()).map(|b| (b.usd() - spent.usd()).max(0.0));
    let mut tasks = Vec::new();
    let mut longest = Duration::ZERO;
    for (idx, item) in items.iter().enumerate() {
        let idx = idx as i64;
        let root = PathBuf::from(&item.repo_path);
        let git = Git::new(&root);
        let base_branch = item.base_branch.clone().unwrap_or_else(|| "HEAD".into());
        let base_commit = git.resolve_commit(&base_branch)?.ok_or_else(|| {
            EngineError::Invalid(format!(
                "item {}: base {base_branch:?} is not in {}",
                item.item_name,
                root.display()
            ))
        })?;
        let repo = if settings.remote {
            let out = git.run_ok(&["remote", "get-url", "origin"])?;
            if !out.success() {
                return Err(EngineError::Invalid(format!(
                    "item {}: {} has no `origin` remote to clone on the nodes (repository: remote)",
                    item.item_name,
                    root.display()
                )));
            }
            RepoSource::Remote(out.stdout.trim().to_string())
        } else {
            RepoSource::Path(item.repo_path.clone())
        };
        let identity = |key: &str| {
            git.run_ok(&["config", key]).ok().filter(|o| o.success()).map(|o| o.stdout.trim().to_string())
        };
        let first_attempt = item.attempts + 1;
        let last_attempt = (item.retries + 1).max(first_attempt);
        let per_attempt = item
            .timeout_ms
            .map(|ms| Duration::from_millis(ms.max(1) as u64))
            .unwrap_or(engine.config.agent_timeout());
        longest = longest.max(per_attempt * (last_attempt - first_attempt + 1) as u32);
        let task = Task {
            format: super::FORMAT,
            batch_id: batch.id.clone(),
            item_id: item.id.clone(),
            item_name: item.item_name.clone(),
            repo,
            base_branch,
            base_commit,
            prompt: item.prompt.clone(),
            script: item.script.clone(),
            agent: item.agent.clone(),
            model: item.model.clone(),
            timeout_ms: item.timeout_ms,
            first_attempt,
            last_attempt,
            budget_usd: item.budget_usd.map(Money::usd),
            budget_cap_usd: cap,
            setup: engine.config.setup_for(&root).unwrap_or_default(),
            git_identity: identity("user.name").zip(identity("user.email")),
        };
        let json = serde_json::to_vec_pretty(&task).map_err(|e| EngineError::Invalid(e.to_string()))?;
        write_atomic(&layout.task(idx), &json)?;
        tasks.push((idx, item.id.clone()));
    }
    engine.store.insert_submission(&NewSubmission {
        id: id.clone(),
        owner: JobKind::Batch,
        owner_id: batch.id.clone(),
        executor: batch.executor,
        folder: layout.root.to_string_lossy().into_owned(),
        tasks: tasks.clone(),
    })?;
    let req = SubmitRequest {
        name: format!("ampsm-{}", short_id(&batch.id)),
        layout: layout.clone(),
        indexes: tasks.iter().map(|t| t.0).collect(),
        max_concurrent: settings.max_concurrent,
        time_limit: settings.time_limit.unwrap_or(longest + TASK_OVERHEAD),
        program: settings.program.clone(),
    };
    let job = match scheduler.submit(&req) {
        Ok(job) => job,
        Err(e) => {
            engine.store.end_submission(&id)?;
            return Err(e);
        }
    };
    engine.store.set_submitted(&id, &job)?;
    let sub = engine
        .store
        .get_submission(&id)?
        .ok_or_else(|| EngineError::Invalid("the submission was not recorded".into()))?;
    Ok(Watched { sub, layout, asked: None, phases: BTreeMap::new(), ended_since: HashMap::new() })
}

/// Cancels a submission's job (errors are logged: the scheduler may have forgotten it already).
fn cancel(engine: &mut Engine, scheduler: &dyn Scheduler, sub: &Submission) {
    if let Some(job) = &sub.cluster_job {
        if let Err(e) = scheduler.cancel(job) {
            tracing::warn!("cancelling cluster job {job}: {e}");
        }
        let _ = engine.store.set_submission_cancelled(&sub.id);
    }
}

/// One look at a submission: starts, results, and tasks the scheduler ended without a result. Returns
/// whether every task of it is final.
fn watch_submission(
    engine: &mut Engine,
    scheduler: &dyn Scheduler,
    w: &mut Watched,
    observer: &(dyn Fn(&BatchEvent) + Send + Sync),
) -> Result<bool, EngineError> {
    let tasks = engine.store.tasks_of(&w.sub.id)?;
    let open: Vec<_> = tasks.into_iter().filter(|t| !t.state.is_final()).collect();
    if open.is_empty() {
        return Ok(true);
    }
    let ask = w.asked.is_none_or(|at| at.elapsed() >= ASK_SCHEDULER);
    if ask && let Some(job) = &w.sub.cluster_job {
        w.phases = scheduler.phases(job)?;
        w.asked = Some(Instant::now());
    }
    for t in open {
        let Some(item) = engine.store.get_batch_item(&t.item_id)? else {
            engine.store.set_task_state(&w.sub.id, t.idx, TaskState::Lost, Some("its item is gone"))?;
            continue;
        };
        let result_dir = w.layout.result_dir(t.idx);
        if result_dir.join("result.json").is_file() {
            let task: Task = super::read_json(&w.layout.task(t.idx), "task file")?;
            let done = engine.ingest_result(&item, &task.base_commit, &result_dir);
            match done {
                Ok(ingested) => {
                    engine.store.set_task_state(&w.sub.id, t.idx, TaskState::Done, None)?;
                    engine.store.set_task_ingest_ms(&w.sub.id, t.idx, ingested.took_ms)?;
                }
                Err(e) => {
                    let note = format!("its result could not be taken in: {e}");
                    engine.store.set_task_state(&w.sub.id, t.idx, TaskState::Lost, Some(&note))?;
                    if !item.is_finished() {
                        engine.store.finish_batch_item(
                            &item.id,
                            BatchItemStatus::Error,
                            Some(&note),
                            false,
                        )?;
                    }
                }
            }
            if let Some(row) = engine.store.get_batch_item(&item.id)? {
                observer(&BatchEvent::Finished { item: row });
            }
            continue;
        }
        if t.state == TaskState::Pending && w.layout.started(t.idx).is_file() {
            engine.store.set_task_state(&w.sub.id, t.idx, TaskState::Running, None)?;
            if item.status == BatchItemStatus::Queued
                && let Some(attempt) = engine.store.start_batch_item_attempt(&item.id)?
            {
                observer(&BatchEvent::Started { item: item.clone(), attempt, session: None });
            }
        }
        // Ended (or forgotten) by the scheduler without a result: lost after a grace.
        let gone = match w.phases.get(&t.idx) {
            Some(TaskPhase::Ended { state, .. }) => Some(state.clone()),
            None if w.asked.is_some() && w.sub.cluster_job.is_some() => {
                Some("no longer known to the scheduler".into())
            }
            _ => None,
        };
        match gone {
            Some(state) => {
                let since = *w.ended_since.entry(t.idx).or_insert_with(Instant::now);
                if since.elapsed() >= RESULT_GRACE {
                    let mut tail = log_tail(&w.layout.log(t.idx));
                    if tail.is_empty()
                        && let Some(job) = &w.sub.cluster_job
                    {
                        tail = scheduler.log_tail(job, t.idx).unwrap_or_default();
                    }
                    let note = format!(
                        "its cluster task ended without a result ({state}){}",
                        if tail.is_empty() { String::new() } else { format!(": {tail}") }
                    );
                    engine.store.set_task_state(&w.sub.id, t.idx, TaskState::Lost, Some(&note))?;
                    if !item.is_finished() {
                        let status = if w.sub.cancelled_at.is_some() || state == "CANCELLED" {
                            BatchItemStatus::Aborted
                        } else if state == "TIMEOUT" {
                            BatchItemStatus::Timeout
                        } else {
                            BatchItemStatus::Error
                        };
                        engine.store.finish_batch_item(&item.id, status, Some(&note), false)?;
                        if let Some(row) = engine.store.get_batch_item(&item.id)? {
                            observer(&BatchEvent::Finished { item: row });
                        }
                    }
                }
            }
            None => {
                w.ended_since.remove(&t.idx);
            }
        }
    }
    if w.sub.cancelled_at.is_none()
        && let Some(s) = engine.store.get_submission(&w.sub.id)?
    {
        w.sub.cancelled_at = s.cancelled_at;
    }
    Ok(engine.store.tasks_of(&w.sub.id)?.iter().all(|t| t.state.is_final()))
}

/// The last non-empty line of a task's log, for a lost task's note.
fn log_tail(path: &Path) -> String {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| {
            t.lines().rev().find(|l| !l.trim().is_empty()).map(|l| l.trim().chars().take(300).collect())
        })
        .unwrap_or_default()
}

impl Engine {
    /// Cancels the cluster jobs of a batch that may still run (for `batch abort` when no coordinator is
    /// alive to do it); returns how many it asked the scheduler to cancel.
    pub(crate) fn cancel_cluster_jobs(&mut self, batch: &Batch) -> Result<usize, EngineError> {
        if batch.executor == Executor::Local {
            return Ok(0);
        }
        let scheduler = super::scheduler_for(batch.executor, &self.config, &[])?;
        let mut n = 0;
        for sub in self.store.submissions_of(JobKind::Batch, &batch.id)? {
            if sub.ended_at.is_none() && sub.cluster_job.is_some() {
                cancel(self, scheduler.as_ref(), &sub);
                n += 1;
            }
        }
        Ok(n)
    }
}

//! The coordinator of a batch or a benchmark run on a cluster (see [`super`]): submits the queued units
//! (batch items, benchmark results), watches the submission folders and the scheduler, takes results in
//! as they arrive, cancels on abort or when the run's budget is spent. What differs between batches and
//! benchmark runs (their rows, task files, how a result is taken in) is behind [`Units`]; the loop here is
//! the same for both.

use super::{Layout, RepoSource, Scheduler, SubmitRequest, Task, TaskPhase, write_atomic};
use crate::jobs::batch::{BatchEvent, BatchOutcome};
use crate::process::own_pid;
use crate::{Engine, EngineError};
use ampsm_core::id::{new_id, short_id};
use ampsm_core::{BatchItemStatus, Executor, Money};
use ampsm_git::Git;
use ampsm_store::batches::{Batch, BatchItem};
use ampsm_store::cluster::{NewSubmission, Submission, TaskProgress, TaskState};
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
pub(crate) struct Settings {
    pub work_dir: PathBuf,
    pub program: PathBuf,
    pub remote: bool,
    pub max_concurrent: u32,
    pub time_limit: Option<Duration>,
}

impl Settings {
    fn of(engine: &Engine, executor: Executor, concurrency: u32) -> Result<Settings, EngineError> {
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
                    max_concurrent: c.max_concurrent.unwrap_or(concurrency.max(1)),
                    time_limit: c.time_limit.as_deref().and_then(|t| ampsm_core::parse_duration(t).ok()),
                }
            }
            Executor::Kubernetes => {
                let c = &engine.config.executors.kubernetes;
                Settings {
                    work_dir: c.work_dir.as_ref().map(PathBuf::from).unwrap_or(home_dir),
                    program: PathBuf::from(c.program.clone().unwrap_or_else(|| "amp-sessions".into())),
                    remote: c.repository.as_deref() != Some("path"),
                    max_concurrent: concurrency.max(1),
                    time_limit: None,
                }
            }
            Executor::Local => {
                return Err(EngineError::Invalid("a local run has no cluster settings".into()));
            }
        })
    }

    /// How a node gets `root`: its path, or its `origin` (`what` names the unit in errors).
    pub(crate) fn repo_source(&self, root: &Path, what: &str) -> Result<RepoSource, EngineError> {
        if !self.remote {
            return Ok(RepoSource::Path(root.to_string_lossy().into_owned()));
        }
        let out = Git::new(root).run_ok(&["remote", "get-url", "origin"])?;
        if !out.success() {
            return Err(EngineError::Invalid(format!(
                "{what}: {} has no `origin` remote to clone on the nodes (repository: remote)",
                root.display()
            )));
        }
        Ok(RepoSource::Remote(out.stdout.trim().to_string()))
    }
}

/// The commit author of the repository at `root` (`user.name`, `user.email`), which a clone lacks.
pub(crate) fn git_identity(root: &Path) -> Option<(String, String)> {
    let git = Git::new(root);
    let get = |key: &str| {
        git.run_ok(&["config", key]).ok().filter(|o| o.success()).map(|o| o.stdout.trim().to_string())
    };
    get("user.name").zip(get("user.email"))
}

/// How a unit ended without a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lost {
    /// Cancelled (an abort).
    Aborted,
    /// The scheduler's time limit.
    Timeout,
    /// Anything else: a node failure, a worker that could not write its result.
    Error,
}

/// What the coordinator runs: the units of a batch (items) or of a benchmark run (results), with their
/// rows and task files.
pub(crate) trait Units {
    fn kind(&self) -> JobKind;
    fn id(&self) -> &str;
    /// The budget of the whole run, and what it spent so far.
    fn budget(&self) -> Option<Money>;
    fn spent(&self, e: &Engine) -> Result<Money, EngineError>;
    fn abort_requested(&self, e: &Engine) -> Result<bool, EngineError>;
    /// The units waiting to run.
    fn queued(&self, e: &Engine) -> Result<Vec<String>, EngineError>;
    /// Whether a unit ended (`None`: it is gone) and whether it runs.
    fn state(&self, e: &Engine, unit: &str) -> Result<Option<UnitState>, EngineError>;
    /// Writes the task file of `unit`; returns the time its task may need.
    fn write_task(
        &self,
        e: &Engine,
        unit: &str,
        path: &Path,
        settings: &Settings,
        cap: Option<f64>,
    ) -> Result<Duration, EngineError>;
    /// Its worker started on a node.
    fn started(&self, e: &mut Engine, unit: &str) -> Result<(), EngineError>;
    /// Takes its result in (and ends it); returns how long that took, ms.
    fn take_in(&self, e: &mut Engine, unit: &str, task: &Path, result: &Path) -> Result<u64, EngineError>;
    /// Ends it without a result.
    fn end(&self, e: &mut Engine, unit: &str, how: Lost, note: &str) -> Result<(), EngineError>;
    /// Ends every unit still queued, `aborted` with `note`.
    fn stop_queued(&self, e: &mut Engine, note: &str) -> Result<(), EngineError>;
}

/// Where a unit stands, for the coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnitState {
    Queued,
    Running,
    Finished,
}

/// How the coordinator's loop ended.
pub(crate) struct Stopped {
    pub user_abort: bool,
    pub budget_stop: Option<String>,
    pub first_error: Option<EngineError>,
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
    /// What each running task last reported (as stored).
    progress: HashMap<i64, TaskProgress>,
    /// Since when looking at the submission fails (the scheduler cannot be asked).
    failing_since: Option<Instant>,
}

/// The coordinator's loop for `units` (see the module docs): adopts earlier submissions that may still
/// report, submits the queued units nobody covers, then watches until every task is final.
pub(crate) fn run_on_cluster(
    engine: &mut Engine,
    units: &dyn Units,
    executor: Executor,
    concurrency: u32,
    repos: &[String],
) -> Result<Stopped, EngineError> {
    let scheduler = super::scheduler_for(executor, &engine.config, repos)?;
    let settings = Settings::of(engine, executor, concurrency)?;
    let mut watched: Vec<Watched> = engine
        .store
        .submissions_of(units.kind(), units.id())?
        .into_iter()
        .filter(|s| s.ended_at.is_none())
        .map(|sub| Watched {
            layout: Layout::new(&sub.folder),
            sub,
            asked: None,
            phases: BTreeMap::new(),
            ended_since: HashMap::new(),
            progress: HashMap::new(),
            failing_since: None,
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
    let queued: Vec<String> = units.queued(engine)?.into_iter().filter(|u| !covered.contains(u)).collect();
    let mut abort = units.abort_requested(engine)?;
    let mut budget_stop: Option<String> = None;
    let mut first_error: Option<EngineError> = None;
    if !queued.is_empty() && !abort {
        match submit(engine, units, executor, &settings, scheduler.as_ref(), &queued) {
            Ok(w) => watched.push(w),
            Err(e) => {
                let note = format!("not started: the submission to the cluster failed: {e}");
                for unit in &queued {
                    units.end(engine, unit, Lost::Error, &note)?;
                }
                first_error = Some(e);
            }
        }
    }
    let mut cancelled = false;
    loop {
        if !abort && units.abort_requested(engine)? {
            abort = true;
        }
        if (abort || budget_stop.is_some()) && !cancelled {
            cancelled = true;
            let note = match &budget_stop {
                Some(reason) => format!("not started: {reason}"),
                None => "aborted before it started".to_string(),
            };
            for w in &watched {
                cancel(engine, scheduler.as_ref(), &w.sub);
                for t in engine.store.tasks_of(&w.sub.id)? {
                    match units.state(engine, &t.item_id)? {
                        Some(UnitState::Queued) => units.end(engine, &t.item_id, Lost::Aborted, &note)?,
                        Some(UnitState::Running) if budget_stop.is_none() => {
                            let why = "aborted: its cluster task was cancelled (an abort or a signal)";
                            units.end(engine, &t.item_id, Lost::Aborted, why)?;
                        }
                        _ => {}
                    }
                }
            }
            units.stop_queued(engine, &note)?;
        }
        let mut open = false;
        for w in watched.iter_mut() {
            if w.sub.ended_at.is_some() {
                continue;
            }
            match watch_submission(engine, units, scheduler.as_ref(), w) {
                Ok(true) => {
                    engine.store.end_submission(&w.sub.id)?;
                    w.sub.ended_at = Some(ampsm_core::time::now_ms());
                    tidy_submission(engine, &w.sub.id, &w.layout)?;
                }
                Ok(false) => {
                    w.failing_since = None;
                    open = true;
                }
                Err(e) => {
                    tracing::warn!("watching submission {}: {e}", w.sub.id);
                    let since = *w.failing_since.get_or_insert_with(Instant::now);
                    if cancelled && since.elapsed() >= RESULT_GRACE {
                        // Stopped, and the cluster cannot be asked any more (its scheduler is down or
                        // gone): what did not report ends here instead of being waited for forever.
                        give_up(engine, units, w, &e)?;
                    } else {
                        open = true;
                    }
                }
            }
        }
        if budget_stop.is_none()
            && let Some(limit) = units.budget().filter(|b| b.is_positive())
        {
            // What was taken in, and what the tasks still going say they spent so far.
            let spent = Money::from_usd(units.spent(engine)?.usd() + live_spend(engine, &watched)?);
            if spent.reached(limit) {
                budget_stop = Some(format!(
                    "the run's budget of {} is spent ({} so far)",
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
    Ok(Stopped { user_abort: abort, budget_stop, first_error })
}

/// Runs the queued items of a cluster batch to the end (see the module docs), for the batch runner
/// ([`crate::jobs::batch::run_batch`]), which opened `engine` and checked that no other runner holds the
/// batch and that its budget is not spent.
pub(crate) fn run_batch_on_cluster(
    mut engine: Engine,
    batch: Batch,
    observer: Arc<dyn Fn(&BatchEvent) + Send + Sync>,
    started: Instant,
) -> Result<BatchOutcome, EngineError> {
    let batch_id = batch.id.as_str();
    let notifications = engine.config.notifications.clone();
    engine.config.notifications.desktop = false;
    engine.config.notifications.command = None;
    let mut repos: Vec<String> =
        engine.store.batch_items(batch_id)?.into_iter().map(|i| i.repo_path).collect();
    repos.sort();
    repos.dedup();
    engine.store.set_batch_running(batch_id, own_pid())?;
    let units = BatchUnits { batch: batch.clone(), observer };
    let stopped =
        run_on_cluster(&mut engine, &units, batch.executor, batch.concurrency.max(1) as u32, &repos)?;
    // Notifications were off while items were taken in (merges, sessions): the batch's end is told once.
    engine.config.notifications = notifications;
    let Stopped { user_abort, budget_stop, first_error } = stopped;
    let (status, counts, stop_reason) =
        crate::jobs::batch::end_batch(&mut engine, &batch, user_abort, budget_stop, first_error.is_none())?;
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

/// The items of a batch as [`Units`].
struct BatchUnits {
    batch: Batch,
    observer: Arc<dyn Fn(&BatchEvent) + Send + Sync>,
}

impl BatchUnits {
    fn item(&self, e: &Engine, unit: &str) -> Result<Option<BatchItem>, EngineError> {
        Ok(e.store.get_batch_item(unit)?)
    }

    fn tell_finished(&self, e: &Engine, unit: &str) -> Result<(), EngineError> {
        if let Some(row) = self.item(e, unit)? {
            (self.observer)(&BatchEvent::Finished { item: row });
        }
        Ok(())
    }
}

impl Units for BatchUnits {
    fn kind(&self) -> JobKind {
        JobKind::Batch
    }
    fn id(&self) -> &str {
        &self.batch.id
    }
    fn budget(&self) -> Option<Money> {
        self.batch.budget_usd
    }
    fn spent(&self, e: &Engine) -> Result<Money, EngineError> {
        Ok(e.store.batch_spend_usd(&self.batch.id)?)
    }
    fn abort_requested(&self, e: &Engine) -> Result<bool, EngineError> {
        Ok(e.store.batch_abort_requested(&self.batch.id)?)
    }
    fn queued(&self, e: &Engine) -> Result<Vec<String>, EngineError> {
        Ok(e.store
            .batch_items(&self.batch.id)?
            .into_iter()
            .filter(|i| i.status == BatchItemStatus::Queued)
            .map(|i| i.id)
            .collect())
    }
    fn state(&self, e: &Engine, unit: &str) -> Result<Option<UnitState>, EngineError> {
        Ok(self.item(e, unit)?.map(|i| match i.status {
            BatchItemStatus::Queued => UnitState::Queued,
            BatchItemStatus::Running => UnitState::Running,
            _ => UnitState::Finished,
        }))
    }
    fn write_task(
        &self,
        e: &Engine,
        unit: &str,
        path: &Path,
        settings: &Settings,
        cap: Option<f64>,
    ) -> Result<Duration, EngineError> {
        let item =
            self.item(e, unit)?.ok_or_else(|| EngineError::Invalid(format!("batch item {unit} is gone")))?;
        let root = PathBuf::from(&item.repo_path);
        let base_branch = item.base_branch.clone().unwrap_or_else(|| "HEAD".into());
        let base_commit = Git::new(&root).resolve_commit(&base_branch)?.ok_or_else(|| {
            EngineError::Invalid(format!(
                "item {}: base {base_branch:?} is not in {}",
                item.item_name,
                root.display()
            ))
        })?;
        let first_attempt = item.attempts + 1;
        let last_attempt = (item.retries + 1).max(first_attempt);
        let per_attempt = item
            .timeout_ms
            .map(|ms| Duration::from_millis(ms.max(1) as u64))
            .unwrap_or(e.config.agent_timeout());
        let task = Task {
            format: super::FORMAT,
            batch_id: self.batch.id.clone(),
            item_id: item.id.clone(),
            item_name: item.item_name.clone(),
            repo: settings.repo_source(&root, &format!("item {}", item.item_name))?,
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
            setup: e.config.setup_for(&root).unwrap_or_default(),
            git_identity: git_identity(&root),
        };
        let json = serde_json::to_vec_pretty(&task).map_err(|e| EngineError::Invalid(e.to_string()))?;
        write_atomic(path, &json)?;
        Ok(per_attempt * (last_attempt - first_attempt + 1) as u32)
    }
    fn started(&self, e: &mut Engine, unit: &str) -> Result<(), EngineError> {
        if let Some(item) = self.item(e, unit)?.filter(|i| i.status == BatchItemStatus::Queued)
            && let Some(attempt) = e.store.start_batch_item_attempt(&item.id)?
        {
            (self.observer)(&BatchEvent::Started { item, attempt, session: None });
        }
        Ok(())
    }
    fn take_in(&self, e: &mut Engine, unit: &str, task: &Path, result: &Path) -> Result<u64, EngineError> {
        let item =
            self.item(e, unit)?.ok_or_else(|| EngineError::Invalid(format!("batch item {unit} is gone")))?;
        let task: Task = super::read_json(task, "task file")?;
        let ingested = e.ingest_result(&item, &task.base_commit, result)?;
        self.tell_finished(e, unit)?;
        Ok(ingested.took_ms)
    }
    fn end(&self, e: &mut Engine, unit: &str, how: Lost, note: &str) -> Result<(), EngineError> {
        if self.item(e, unit)?.is_none_or(|i| i.is_finished()) {
            return Ok(());
        }
        let status = match how {
            Lost::Aborted => BatchItemStatus::Aborted,
            Lost::Timeout => BatchItemStatus::Timeout,
            Lost::Error => BatchItemStatus::Error,
        };
        e.store.finish_batch_item(unit, status, Some(note), false)?;
        self.tell_finished(e, unit)
    }
    fn stop_queued(&self, e: &mut Engine, note: &str) -> Result<(), EngineError> {
        e.store.abort_queued_items(&self.batch.id, note)?;
        Ok(())
    }
}

/// Writes the tasks of `queued` into a new submission folder, records the submission and submits it.
fn submit(
    engine: &mut Engine,
    units: &dyn Units,
    executor: Executor,
    settings: &Settings,
    scheduler: &dyn Scheduler,
    queued: &[String],
) -> Result<Watched, EngineError> {
    let id = new_id();
    let layout = Layout::new(settings.work_dir.join(&id));
    let config =
        serde_json::to_vec_pretty(&engine.config).map_err(|e| EngineError::Invalid(e.to_string()))?;
    write_atomic(&layout.config(), &config)?;
    let cap = units
        .budget()
        .filter(|b| b.is_positive())
        .map(|b| (b.usd() - units.spent(engine).map(|s| s.usd()).unwrap_or(0.0)).max(0.0));
    let mut tasks = Vec::new();
    let mut longest = Duration::ZERO;
    for (idx, unit) in queued.iter().enumerate() {
        let idx = idx as i64;
        longest = longest.max(units.write_task(engine, unit, &layout.task(idx), settings, cap)?);
        tasks.push((idx, unit.clone()));
    }
    engine.store.insert_submission(&NewSubmission {
        id: id.clone(),
        owner: units.kind(),
        owner_id: units.id().to_string(),
        executor,
        folder: layout.root.to_string_lossy().into_owned(),
        tasks: tasks.clone(),
    })?;
    let req = SubmitRequest {
        name: format!("ampsm-{}", short_id(units.id())),
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
    Ok(Watched {
        sub,
        layout,
        asked: None,
        phases: BTreeMap::new(),
        ended_since: HashMap::new(),
        progress: HashMap::new(),
        failing_since: None,
    })
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
    units: &dyn Units,
    scheduler: &dyn Scheduler,
    w: &mut Watched,
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
        if units.state(engine, &t.item_id)?.is_none() {
            engine.store.set_task_state(&w.sub.id, t.idx, TaskState::Lost, Some("its unit is gone"))?;
            continue;
        }
        let result_dir = w.layout.result_dir(t.idx);
        if result_dir.join("result.json").is_file() {
            match units.take_in(engine, &t.item_id, &w.layout.task(t.idx), &result_dir) {
                Ok(ms) => {
                    engine.store.set_task_state(&w.sub.id, t.idx, TaskState::Done, None)?;
                    engine.store.set_task_ingest_ms(&w.sub.id, t.idx, ms)?;
                    // Its sessions, rows and branches are here now: the worker's copies go.
                    remove_folder(&result_dir);
                }
                Err(e) => {
                    let note = format!("its result could not be taken in: {e}");
                    engine.store.set_task_state(&w.sub.id, t.idx, TaskState::Lost, Some(&note))?;
                    units.end(engine, &t.item_id, Lost::Error, &note)?;
                }
            }
            continue;
        }
        let mut running = t.state == TaskState::Running;
        if t.state == TaskState::Pending && w.layout.started(t.idx).is_file() {
            engine.store.set_task_state(&w.sub.id, t.idx, TaskState::Running, None)?;
            units.started(engine, &t.item_id)?;
            running = true;
        }
        // How it is doing, for the views (a file half-written on a slow shared folder is read next time).
        if running
            && let Ok(p) = super::read_json::<TaskProgress>(&w.layout.progress(t.idx), "progress file")
            && w.progress.get(&t.idx) != Some(&p)
        {
            engine.store.set_task_progress(&w.sub.id, t.idx, &p)?;
            w.progress.insert(t.idx, p);
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
                // A task that never started on a node (cancelled while pending) has no result to wait for.
                let never_started = !w.layout.started(t.idx).is_file();
                if never_started || since.elapsed() >= RESULT_GRACE {
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
                    let how = if w.sub.cancelled_at.is_some() || state == "CANCELLED" {
                        Lost::Aborted
                    } else if state == "TIMEOUT" || state == "DeadlineExceeded" {
                        Lost::Timeout
                    } else {
                        Lost::Error
                    };
                    units.end(engine, &t.item_id, how, &note)?;
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

/// Ends a stopped submission whose scheduler cannot be asked any more: its tasks that did not report are
/// lost (their units aborted), the submission ended and tidied.
fn give_up(
    engine: &mut Engine,
    units: &dyn Units,
    w: &mut Watched,
    error: &EngineError,
) -> Result<(), EngineError> {
    let note =
        format!("aborted: the cluster could not be asked about its task after the run was stopped ({error})");
    for t in engine.store.tasks_of(&w.sub.id)?.into_iter().filter(|t| !t.state.is_final()) {
        engine.store.set_task_state(&w.sub.id, t.idx, TaskState::Lost, Some(&note))?;
        units.end(engine, &t.item_id, Lost::Aborted, &note)?;
    }
    engine.store.end_submission(&w.sub.id)?;
    w.sub.ended_at = Some(ampsm_core::time::now_ms());
    tidy_submission(engine, &w.sub.id, &w.layout)
}

/// After a submission's last task is final: when every result was taken in, nothing in its folder is
/// needed any more and the folder goes; otherwise the logs and task files stay (they explain the lost
/// tasks; `batch clean` removes them) and only the config copy goes, which may hold keys.
fn tidy_submission(engine: &Engine, submission: &str, layout: &Layout) -> Result<(), EngineError> {
    if engine.store.tasks_of(submission)?.iter().all(|t| t.state == TaskState::Done) {
        remove_folder(&layout.root);
    } else if let Err(e) = std::fs::remove_file(layout.config())
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!("removing {}: {e}", layout.config().display());
    }
    Ok(())
}

/// Removes a folder of a submission; a failure is logged (the run's results are not affected by it).
pub(crate) fn remove_folder(path: &Path) {
    if let Err(e) = std::fs::remove_dir_all(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!("removing {}: {e}", path.display());
    }
}

/// What the tasks that are not final yet spent so far, from their spend files (USD).
fn live_spend(engine: &Engine, watched: &[Watched]) -> Result<f64, EngineError> {
    let mut usd = 0.0;
    for w in watched.iter().filter(|w| w.sub.ended_at.is_none()) {
        for t in engine.store.tasks_of(&w.sub.id)?.iter().filter(|t| !t.state.is_final()) {
            if let Ok(text) = std::fs::read_to_string(w.layout.spend(t.idx)) {
                usd += text.trim().parse::<f64>().unwrap_or(0.0);
            }
        }
    }
    Ok(usd)
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

    /// Removes the folders of the ended submissions of a batch or benchmark run that are still in the
    /// work folder (those with lost tasks keep their logs until then); returns the folders removed.
    pub(crate) fn remove_submission_folders(
        &mut self,
        owner: JobKind,
        owner_id: &str,
    ) -> Result<Vec<String>, EngineError> {
        let mut removed = Vec::new();
        for sub in self.store.submissions_of(owner, owner_id)? {
            if sub.ended_at.is_some() && Path::new(&sub.folder).exists() {
                remove_folder(Path::new(&sub.folder));
                if !Path::new(&sub.folder).exists() {
                    removed.push(sub.folder);
                }
            }
        }
        Ok(removed)
    }
}

//! Benchmark runs on a cluster: each result (problem × agent × repeat) is one task.
//!
//! - **The worker** clones the problem's repository at its base commit and runs the result exactly as a
//!   local run does, with the benchmark runner itself on a run of one result in its own store: the agent
//!   in a fresh session with the run's timeout (and what is left of the run's budget), then the
//!   evaluation in a clean checkout on the node (the model patch, the hidden test patch, the test command).
//!   SIGTERM (the scheduler cancelling it) aborts that run the way Ctrl-C aborts a local one. Its result
//!   folder holds the session's branch as a git bundle, a copy of its store and `result.json`.
//! - **The coordinator** takes a result in by making the session here (its branch fetched into the
//!   problem's repository, its rows copied), copying the result's row (status, resolved, tests, model
//!   patch, report, tokens, cost) from the worker's store, and rewriting the predictions files, so that
//!   `bench show`, `compare`, exports and the dashboard see it as if it had run here.

use super::coordinator::{Lost, Settings, Stopped, UnitState, Units, git_identity, run_on_cluster};
use super::worker::{Scratch, WorkerOutcome, bundle_session, prepare_clone};
use super::{FORMAT, RepoSource, SessionBundle, write_atomic};
use crate::jobs::bench::{BenchEvent, BenchOutcome, BenchPlan, other, write_predictions_of};
use crate::jobs::{AbortTarget, abort_on_signal_for};
use crate::process::own_pid;
use crate::sessions::CreateSession;
use crate::{Engine, EngineError};
use ampsm_core::id::{new_id, short_id};
use ampsm_core::{BenchResultStatus, Money};
use ampsm_store::bench::{BenchResult, BenchRun, NewBenchResult, NewBenchRun, ResultEnd};
use ampsm_store::jobs::JobKind;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One benchmark result as a worker runs it (`tasks/<index>.json`, `"kind": "bench-result"`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchTask {
    pub format: u32,
    pub kind: String,
    pub run_id: String,
    pub result_id: String,
    pub seq: i64,
    pub instance_id: String,
    pub agent: String,
    pub model: Option<String>,
    pub repeat: i64,
    /// The run's plan with this result's problem and agent only.
    pub plan: BenchPlan,
    pub repo: RepoSource,
    /// What is left of the run's budget when the task was written, USD.
    pub budget_cap_usd: Option<f64>,
    pub git_identity: Option<(String, String)>,
}

/// What a benchmark worker reports (`results/<index>/result.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchTaskResult {
    pub format: u32,
    pub result_id: String,
    /// The result's id in the worker's store (its row is copied from there).
    pub worker_result_id: Option<String>,
    pub status: BenchResultStatus,
    pub error: Option<String>,
    pub session: Option<SessionBundle>,
    pub store: Option<String>,
    pub host: String,
    pub took_ms: u64,
}

/// Runs a benchmark task on this node (see the module docs).
pub(super) fn run_bench_task(task: &BenchTask, scratch: &Scratch) -> Result<WorkerOutcome, EngineError> {
    let mut result = BenchTaskResult {
        format: FORMAT,
        result_id: task.result_id.clone(),
        worker_result_id: None,
        status: BenchResultStatus::Error,
        error: None,
        session: None,
        store: None,
        host: scratch.host.clone(),
        took_ms: 0,
    };
    match task.plan.problems.first() {
        None => result.error = Some("the task names no problem".into()),
        Some(problem) => {
            let dest = scratch.dir.path().join("repo");
            match prepare_clone(&task.repo, &problem.base_commit, task.git_identity.as_ref(), &dest) {
                Err(e) => result.error = Some(e),
                Ok(clone) => run_one(task, scratch, &clone, &problem.base_commit, &mut result)?,
            }
        }
    }
    result.took_ms = scratch.started.elapsed().as_millis() as u64;
    if !scratch.finish(&result)? {
        return Ok(WorkerOutcome::AlreadyDone);
    }
    Ok(WorkerOutcome::Ran {
        unit: result.result_id,
        status: result.status.to_string(),
        error: result.error,
        took_ms: result.took_ms,
    })
}

/// The result's run of one in the worker's store, then its session's bundle and the store copy.
fn run_one(
    task: &BenchTask,
    scratch: &Scratch,
    clone: &Path,
    base_commit: &str,
    result: &mut BenchTaskResult,
) -> Result<(), EngineError> {
    let mut plan = task.plan.clone();
    for p in &mut plan.problems {
        p.repo = clone.to_path_buf();
    }
    plan.out_dir = Some(scratch.dir.path().join("out"));
    plan.concurrency = 1;
    plan.repeats = 1;
    plan.executor = ampsm_core::Executor::Local;
    plan.budget_usd = task.budget_cap_usd.map(Money::from_usd);
    let run_id = new_id();
    let worker_result = new_id();
    {
        let mut engine = Engine::open_at(scratch.paths.clone())?;
        let config = serde_json::to_string(&plan).map_err(|e| EngineError::Invalid(e.to_string()))?;
        engine.store.insert_bench_run(
            &NewBenchRun {
                id: run_id.clone(),
                kind: plan.kind.clone(),
                name: plan.name.clone(),
                config,
                concurrency: 1,
                budget_usd: plan.budget_usd,
                out_dir: plan.out_dir.as_ref().map(|d| d.to_string_lossy().into_owned()),
                runner_pid: own_pid(),
            },
            &[NewBenchResult {
                id: worker_result.clone(),
                seq: task.seq,
                instance_id: task.instance_id.clone(),
                agent: task.agent.clone(),
                model: task.model.clone(),
                repeat: task.repeat,
            }],
        )?;
    }
    // SIGTERM from the scheduler aborts the run (the agent stopped, its work kept), as Ctrl-C does here.
    let _signals = abort_on_signal_for(&scratch.paths, AbortTarget::Bench(run_id.clone()));
    // What is left of the run's budget is this worker's ceiling; its live spend is reported.
    let pool = plan.budget_usd.map(|cap| {
        crate::runs::budget::BudgetPool::new(
            format!("bench run {}", short_id(&task.run_id)),
            cap,
            Money::ZERO,
        )
    });
    let reporter = scratch.report(pool.clone(), 1);
    let ran = crate::jobs::bench::run_bench_in(&scratch.paths, &run_id, Arc::new(|_| {}), pool);
    drop(reporter);
    let engine = Engine::open_at(scratch.paths.clone())?;
    let row = engine.store.get_bench_result(&worker_result)?;
    result.worker_result_id = Some(worker_result);
    match (&ran, &row) {
        (_, Some(r)) => {
            result.status = r.status;
            result.error = r.error.clone();
        }
        (Err(e), None) => result.error = Some(e.to_string()),
        (Ok(_), None) => result.error = Some("the result disappeared from the worker's store".into()),
    }
    if let Some(sid) = row.as_ref().and_then(|r| r.session_id.clone()) {
        let session = engine.store.get_session(&ampsm_core::SessionId::from_stored(sid))?;
        let (bundled, failed) = bundle_session(clone, &session, base_commit, &scratch.out, "session.bundle");
        if let Some(e) = failed {
            return Err(EngineError::Invalid(e));
        }
        result.session = Some(bundled);
    }
    drop(engine);
    result.store = Some(scratch.copy_store()?);
    // The evaluation's logs (its report names them) go with the result: the node's folder goes.
    let logs = scratch.dir.path().join("out").join("logs");
    for entry in std::fs::read_dir(&logs).into_iter().flatten().flatten() {
        let to = scratch.out.join("logs").join(entry.file_name());
        std::fs::create_dir_all(scratch.out.join("logs"))
            .and_then(|()| std::fs::copy(entry.path(), &to))
            .map_err(|source| EngineError::Io { path: to.clone(), source })?;
    }
    Ok(())
}

/// A worker's test report with its `log` moved here: the log the worker brought back (`logs/<name>` in
/// its result folder) is copied into the run's `logs/` and the report names that copy; a log that did
/// not come back is left out of the report rather than naming a folder of a node.
fn bring_log(report: &str, result: &Path, out_dir: &Path) -> Result<String, EngineError> {
    let Ok(mut doc) = serde_json::from_str::<serde_json::Value>(report) else {
        return Ok(report.to_string());
    };
    let Some(name) = doc.get("log").and_then(|l| l.as_str()).and_then(|l| Path::new(l).file_name()) else {
        return Ok(report.to_string());
    };
    let name = name.to_owned();
    let from = result.join("logs").join(&name);
    let to = out_dir.join("logs").join(&name);
    if let Some(map) = doc.as_object_mut() {
        if from.is_file() {
            std::fs::create_dir_all(out_dir.join("logs"))
                .and_then(|()| std::fs::copy(&from, &to))
                .map_err(|source| EngineError::Io { path: to.clone(), source })?;
            map.insert("log".into(), serde_json::Value::String(to.to_string_lossy().into_owned()));
        } else {
            map.remove("log");
        }
    }
    Ok(doc.to_string())
}

/// The results of a benchmark run as [`Units`].
struct BenchUnits {
    run: BenchRun,
    plan: BenchPlan,
    out_dir: PathBuf,
    observer: Arc<dyn Fn(&BenchEvent) + Send + Sync>,
    done: Mutex<usize>,
    total: usize,
}

impl BenchUnits {
    fn row(&self, e: &Engine, unit: &str) -> Result<Option<BenchResult>, EngineError> {
        Ok(e.store.get_bench_result(unit)?)
    }

    fn tell_finished(&self, e: &Engine, unit: &str) -> Result<(), EngineError> {
        let _ = write_predictions_of(&e.store, &self.run.id, &self.plan, &self.out_dir);
        let done = match self.done.lock() {
            Ok(mut d) => {
                *d += 1;
                *d
            }
            Err(_) => 0,
        };
        if let Some(result) = self.row(e, unit)? {
            (self.observer)(&BenchEvent::Finished { result, done, total: self.total });
        }
        Ok(())
    }
}

impl Units for BenchUnits {
    fn kind(&self) -> JobKind {
        JobKind::Bench
    }
    fn id(&self) -> &str {
        &self.run.id
    }
    fn budget(&self) -> Option<Money> {
        self.run.budget_usd
    }
    fn spent(&self, e: &Engine) -> Result<Money, EngineError> {
        Ok(e.store.bench_spend_usd(&self.run.id)?)
    }
    fn abort_requested(&self, e: &Engine) -> Result<bool, EngineError> {
        Ok(e.store.bench_abort_requested(&self.run.id)?)
    }
    fn queued(&self, e: &Engine) -> Result<Vec<String>, EngineError> {
        Ok(e.store
            .bench_results(&self.run.id)?
            .into_iter()
            .filter(|r| r.status == BenchResultStatus::Queued)
            .map(|r| r.id)
            .collect())
    }
    fn state(&self, e: &Engine, unit: &str) -> Result<Option<UnitState>, EngineError> {
        Ok(self.row(e, unit)?.map(|r| match r.status {
            BenchResultStatus::Queued => UnitState::Queued,
            BenchResultStatus::Running => UnitState::Running,
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
        let r = self.row(e, unit)?.ok_or_else(|| other(&self.run.id, &format!("result {unit} is gone")))?;
        let problem =
            self.plan.problems.iter().find(|p| p.id == r.instance_id).cloned().ok_or_else(|| {
                other(&self.run.id, &format!("problem {:?} is not in the run's plan", r.instance_id))
            })?;
        let mut plan = self.plan.clone();
        plan.agents.retain(|a| a.agent == r.agent && a.model == r.model);
        let repo = settings.repo_source(&problem.repo, &format!("problem {}", problem.id))?;
        let identity = git_identity(&problem.repo);
        plan.problems = vec![problem];
        let task = BenchTask {
            format: FORMAT,
            kind: "bench-result".into(),
            run_id: self.run.id.clone(),
            result_id: r.id.clone(),
            seq: r.seq,
            instance_id: r.instance_id.clone(),
            agent: r.agent.clone(),
            model: r.model.clone(),
            repeat: r.repeat,
            plan,
            repo,
            budget_cap_usd: cap,
            git_identity: identity,
        };
        let json = serde_json::to_vec_pretty(&task).map_err(|e| EngineError::Invalid(e.to_string()))?;
        write_atomic(path, &json)?;
        Ok(Duration::from_millis(self.plan.timeout_ms + self.plan.test_timeout_ms))
    }
    fn started(&self, e: &mut Engine, unit: &str) -> Result<(), EngineError> {
        if e.store.start_bench_result(unit)?
            && let Some(result) = self.row(e, unit)?
        {
            (self.observer)(&BenchEvent::Started { result, session: "(on a cluster node)".into() });
        }
        Ok(())
    }
    fn take_in(&self, e: &mut Engine, unit: &str, _task: &Path, result: &Path) -> Result<u64, EngineError> {
        let started = Instant::now();
        let r = self.row(e, unit)?.ok_or_else(|| other(&self.run.id, &format!("result {unit} is gone")))?;
        let problem =
            self.plan.problems.iter().find(|p| p.id == r.instance_id).cloned().ok_or_else(|| {
                other(&self.run.id, &format!("problem {:?} is not in the run's plan", r.instance_id))
            })?;
        let reported: BenchTaskResult = super::read_json(&result.join("result.json"), "result file")?;
        let store_file = reported.store.as_ref().map(|s| result.join(s));
        if let (Some(s), Some(file)) = (&reported.session, &store_file) {
            let req = CreateSession {
                repo: problem.repo.clone(),
                name: s.session_name.clone(),
                prompt: Some(problem.prompt.clone()),
                base: Some(problem.base_commit.clone()),
                agent: Some(r.agent.clone()),
                model: r.model.clone(),
                bench_result_id: Some(r.id.clone()),
                ..Default::default()
            };
            let (session, _) = e.adopt_session(req, s, result, &problem.base_commit, Some(file))?;
            e.store.set_bench_result_session(unit, session.id.as_str())?;
        }
        if r.is_finished() {
            // An abort ended it meanwhile: its session is kept, its status too.
            return Ok(started.elapsed().as_millis() as u64);
        }
        let end = match (&reported.worker_result_id, &store_file) {
            (Some(id), Some(file)) => {
                let worker = ampsm_store::Store::open(file)?;
                let row = worker.get_bench_result(id)?.ok_or_else(|| {
                    EngineError::Invalid(format!("{}: the worker's store has no result {id}", file.display()))
                })?;
                ResultEnd {
                    status: row.status,
                    agent_outcome: row.agent_outcome,
                    resolved: row.resolved,
                    model_patch: row.model_patch,
                    tests_passed: row.tests_passed,
                    tests_failed: row.tests_failed,
                    test_report: row.test_report.map(|t| bring_log(&t, result, &self.out_dir)).transpose()?,
                    error: row.error,
                    duration_ms: row.duration_ms,
                    total_tokens: row.total_tokens,
                    cost_usd: row.cost_usd,
                }
            }
            _ => ResultEnd { error: reported.error.clone(), ..ResultEnd::new(reported.status) },
        };
        e.store.finish_bench_result(unit, &end)?;
        self.tell_finished(e, unit)?;
        Ok(started.elapsed().as_millis() as u64)
    }
    fn end(&self, e: &mut Engine, unit: &str, how: Lost, note: &str) -> Result<(), EngineError> {
        if self.row(e, unit)?.is_none_or(|r| r.is_finished()) {
            return Ok(());
        }
        let status = match how {
            Lost::Aborted => BenchResultStatus::Aborted,
            Lost::Timeout | Lost::Error => BenchResultStatus::Error,
        };
        e.store.finish_bench_result(
            unit,
            &ResultEnd { error: Some(note.to_string()), ..ResultEnd::new(status) },
        )?;
        self.tell_finished(e, unit)
    }
    fn stop_queued(&self, e: &mut Engine, note: &str) -> Result<(), EngineError> {
        e.store.abort_queued_bench_results(&self.run.id, note)?;
        Ok(())
    }
}

/// Runs the queued results of a benchmark run on its cluster executor to the end, then ends the run as
/// a local runner does (status, stop reason, predictions, one notification). For the benchmark runner
/// ([`crate::jobs::bench::run_bench`]), which opened `engine`, checked that no other runner holds the run
/// and made its output folder `out_dir`.
pub(crate) fn run_bench_on_cluster(
    mut engine: Engine,
    run: BenchRun,
    plan: BenchPlan,
    out_dir: PathBuf,
    observer: Arc<dyn Fn(&BenchEvent) + Send + Sync>,
    started: Instant,
) -> Result<BenchOutcome, EngineError> {
    let run_id = run.id.as_str();
    let notifications = engine.config.notifications.clone();
    engine.config.notifications.desktop = false;
    engine.config.notifications.command = None;
    let mut repos: Vec<String> =
        plan.problems.iter().map(|p| p.repo.to_string_lossy().into_owned()).collect();
    repos.sort();
    repos.dedup();
    let total =
        engine.store.bench_results(run_id)?.iter().filter(|r| r.status == BenchResultStatus::Queued).count();
    let executor = plan.executor;
    let units =
        BenchUnits { run: run.clone(), plan, out_dir: out_dir.clone(), observer, done: Mutex::new(0), total };
    let Stopped { user_abort, budget_stop, first_error } =
        run_on_cluster(&mut engine, &units, executor, run.concurrency.max(1) as u32, &repos)?;
    engine.config.notifications = notifications;
    let plan = units.plan.clone();
    crate::jobs::bench::end_bench_run(
        &mut engine,
        &run,
        &plan,
        &out_dir,
        (user_abort, budget_stop),
        first_error,
        started,
    )
}

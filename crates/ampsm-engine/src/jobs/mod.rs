//! What batches and benchmark runs share: one pool of worker threads and one policy for a runner that
//! died.
//!
//! - **Workers** (`run_workers`): each worker thread opens its own [`Engine`] (a SQLite connection is
//!   not shared between threads) with notifications off (the job sends one when it ends) and runs the
//!   entries the job hands out until there are none or the work says stop; beside them a watcher polls
//!   the job's abort flag and, once it is set, keeps stopping the job's running agents. The first error a
//!   worker ends with (a panic included) is returned after every worker is done.
//! - **Abort** (`Engine::abort_job`, from any process): sets the job's abort flag, marks its queued
//!   items `aborted` and stops the process group of every running agent of the job, looking again for a
//!   moment for agents that were just starting; when no runner is alive to finish the running items, they
//!   end `aborted` and so does the job. It returns within about two seconds.
//! - **A dead runner** ([`Engine::settle_dead_runners`], run whenever an engine opens): a batch or a
//!   benchmark run that has not ended while its recorded runner process is gone is ended `failed`, with
//!   why; its running items end `aborted` ("interrupted …") and its queued ones `aborted` ("not started
//!   …"), so that `resume` runs all of them again. Agents the dead runner left behind are stopped by the
//!   session repair of the same pass.

pub mod batch;
pub mod batch_export;
pub mod bench;
pub mod cluster;
pub mod runner;
pub mod swe_harness;

use crate::process::{group_alive, own_pid, pid_alive, signal_group};
use crate::{Engine, EngineError};
use ampsm_config::Paths;
use ampsm_core::JobStatus;
use ampsm_core::id::short_id;
use ampsm_store::Store;
use ampsm_store::jobs::{DeadRunnerNotes, JobKind};
use nix::sys::signal::Signal;
use serde::Serialize;
use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often a runner's watcher looks at the abort flag.
pub(crate) const ABORT_POLL: Duration = Duration::from_millis(100);
/// How long a stopped agent's process group gets between TERM and KILL.
pub(crate) const STOP_GRACE: Duration = Duration::from_millis(500);

/// Whether a worker goes on to the next entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Next,
    Stop,
}

/// Runs `work` on every entry `next` hands out, on `workers` threads, while a watcher stops the agents
/// of `job` once `abort` is set or an abort of it is requested (see the module docs). Returns the first
/// error a worker ended with.
pub(crate) fn run_workers<T: Send>(
    paths: &Paths,
    job: &AbortTarget,
    workers: usize,
    abort: &AtomicBool,
    next: &(dyn Fn() -> Option<T> + Sync),
    work: &(dyn Fn(&mut Engine, T) -> Result<Flow, EngineError> + Sync),
) -> Option<EngineError> {
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let watcher = scope.spawn(|| watch_abort_for(&paths.db, job, abort, &done));
        let handles: Vec<_> = (0..workers.max(1))
            .map(|_| {
                scope.spawn(|| -> Result<(), EngineError> {
                    let mut engine = Engine::open_at(paths.clone())?;
                    engine.config.notifications.desktop = false;
                    engine.config.notifications.command = None;
                    while let Some(entry) = next() {
                        if work(&mut engine, entry)? == Flow::Stop {
                            break;
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        let mut first_error = None;
        for h in handles {
            let ended = h.join().unwrap_or_else(|_| {
                Err(EngineError::Invalid(format!("a worker thread of {} panicked", job.label())))
            });
            if let Err(e) = ended {
                first_error.get_or_insert(e);
            }
        }
        done.store(true, Ordering::SeqCst);
        let _ = watcher.join();
        first_error
    })
}

/// The runner of record of a job that has not ended, when that process is gone (and is not this one).
fn dead_runner(status: JobStatus, runner_pid: Option<i64>) -> Option<i64> {
    let pid = runner_pid.filter(|_| !status.is_finished())?;
    (pid != own_pid() && !pid_alive(pid)).then_some(pid)
}

impl Engine {
    /// Ends every batch and benchmark run whose runner died (see the module docs); returns what it ended,
    /// as "batch NAME (ID)" / "bench run NAME (ID)".
    pub fn settle_dead_runners(&mut self) -> Result<Vec<String>, EngineError> {
        let mut dead = Vec::new();
        for b in self.store.list_batches()? {
            if let Some(pid) = dead_runner(b.status, b.runner_pid) {
                dead.push((JobKind::Batch, b.id, b.name, pid));
            }
        }
        for r in self.store.list_bench_runs()? {
            if let Some(pid) = dead_runner(r.status, r.runner_pid) {
                dead.push((JobKind::Bench, r.id, r.name, pid));
            }
        }
        let mut settled = Vec::new();
        for (kind, id, name, pid) in dead {
            let (what, runner, unit) = match kind {
                JobKind::Batch => ("batch", "batch runner", "item"),
                JobKind::Bench => ("bench run", "bench runner", "result"),
            };
            let notes = DeadRunnerNotes {
                interrupted: format!(
                    "interrupted: the {runner} (process {pid}) stopped before this {unit} finished"
                ),
                not_started: format!("not started: the {runner} (process {pid}) stopped"),
                reason: format!(
                    "the runner (process {pid}) stopped before the run finished (killed or crashed)"
                ),
            };
            if self.store.settle_dead_runner(kind, &id, pid, &notes)? {
                settled.push(format!("{what} {name} ({})", short_id(&id)));
            }
        }
        Ok(settled)
    }
}

/// Stops several process groups at once: TERM to all, KILL after `grace` to those left, then waits up to
/// `grace` for them to go.
pub fn stop_groups(pgids: &[i64], grace: Duration) {
    let live: Vec<i64> = pgids.iter().copied().filter(|p| signal_group(*p, Signal::SIGTERM)).collect();
    if live.is_empty() {
        return;
    }
    let wait_until = |deadline: Instant| {
        while Instant::now() < deadline && live.iter().any(|p| group_alive(*p)) {
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_until(ampsm_core::duration::deadline_after(Instant::now(), grace));
    for p in &live {
        if group_alive(*p) {
            signal_group(*p, Signal::SIGKILL);
        }
    }
    wait_until(ampsm_core::duration::deadline_after(Instant::now(), grace));
}

/// Puts this process in a session of its own (no controlling terminal), for the detached runner: closing the
/// terminal that started it does not stop it.
pub fn detach_from_terminal() -> Result<(), EngineError> {
    nix::unistd::setsid()
        .map(|_| ())
        .map_err(|e| EngineError::Invalid(format!("cannot detach the batch runner from the terminal: {e}")))
}

/// While alive, turns Ctrl-C (SIGINT) and SIGTERM into an abort request for the batch, so a runner stopped
/// from its terminal stops its agents too instead of leaving them orphaned. Dropping it stops listening
/// (the signals stay ignored until the process ends).
pub struct SignalAbort {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for SignalAbort {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What a runner can be asked to abort: a batch or a benchmark run. Both keep an abort flag in the store
/// and know the agent processes of their running sessions, so the signal handler and the abort watcher
/// below serve both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AbortTarget {
    Batch(String),
    Bench(String),
}

impl AbortTarget {
    /// "batch 1a2b3c4d", "bench run 1a2b3c4d".
    pub fn label(&self) -> String {
        match self {
            AbortTarget::Batch(id) => format!("batch {}", short_id(id)),
            AbortTarget::Bench(id) => format!("bench run {}", short_id(id)),
        }
    }

    /// Sets the abort flag.
    pub fn request(&self, store: &mut Store) -> Result<bool, ampsm_store::StoreError> {
        match self {
            AbortTarget::Batch(id) => store.request_batch_abort(id),
            AbortTarget::Bench(id) => store.request_bench_abort(id),
        }
    }

    /// Whether the abort flag is set.
    pub fn requested(&self, store: &Store) -> bool {
        match self {
            AbortTarget::Batch(id) => store.batch_abort_requested(id),
            AbortTarget::Bench(id) => store.bench_abort_requested(id),
        }
        .unwrap_or(false)
    }

    /// Agent process groups of the target's running sessions.
    pub fn agent_pids(&self, store: &Store) -> Vec<i64> {
        match self {
            AbortTarget::Batch(id) => store.batch_agent_pids(id),
            AbortTarget::Bench(id) => store.bench_agent_pids(id),
        }
        .unwrap_or_default()
    }
}

/// Starts listening for SIGINT/SIGTERM on behalf of a batch or bench run (see [`SignalAbort`]).
pub fn abort_on_signal_for(paths: &Paths, target: AbortTarget) -> SignalAbort {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let db = paths.db.clone();
    let thread = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        rt.block_on(async move {
            let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            else {
                return;
            };
            let signalled = tokio::select! {
                _ = tokio::signal::ctrl_c() => true,
                _ = term.recv() => true,
                _ = rx => false,
            };
            if signalled {
                eprintln!("stopping {}: aborting its running agents…", target.label());
                if let Ok(mut store) = Store::open(&db) {
                    let _ = target.request(&mut store);
                }
            }
        });
    });
    SignalAbort { stop: Some(tx), thread: Some(thread) }
}

/// The abort watcher of a batch or bench runner: polls the target's flag every 100 ms; once it is set (or
/// `abort` is set in this process), keeps stopping the target's running agents until `done`.
pub fn watch_abort_for(db: &Path, target: &AbortTarget, abort: &AtomicBool, done: &AtomicBool) {
    let Ok(store) = Store::open(db) else { return };
    while !done.load(Ordering::SeqCst) {
        if !abort.load(Ordering::SeqCst) && target.requested(&store) {
            abort.store(true, Ordering::SeqCst);
        }
        if abort.load(Ordering::SeqCst) {
            let pids: Vec<i64> = target.agent_pids(&store).into_iter().filter(|p| group_alive(*p)).collect();
            stop_groups(&pids, STOP_GRACE);
        }
        std::thread::sleep(ABORT_POLL);
    }
}

/// What an abort did (the batch and bench reports carry these figures).
#[derive(Debug, Clone, Serialize)]
pub struct JobAbort {
    /// False when the job had already finished.
    pub was_active: bool,
    pub queued_aborted: usize,
    pub running_aborted: usize,
    /// Agent process groups signalled.
    pub agents_stopped: usize,
    /// Agent process groups still alive at the end (should be 0).
    pub agents_left: usize,
    pub status: JobStatus,
    pub took_ms: u64,
}

impl AbortTarget {
    fn kind_and_id(&self) -> (JobKind, &str) {
        match self {
            AbortTarget::Batch(id) => (JobKind::Batch, id),
            AbortTarget::Bench(id) => (JobKind::Bench, id),
        }
    }

    /// The job's status as stored now (`None`: it is gone).
    fn status(&self, store: &Store) -> Result<Option<JobStatus>, EngineError> {
        Ok(match self {
            AbortTarget::Batch(id) => store.get_batch(id)?.map(|b| b.status),
            AbortTarget::Bench(id) => store.get_bench_run(id)?.map(|r| r.status),
        })
    }

    /// Whether the job's runner of record is alive.
    fn runner_alive(&self, store: &Store) -> Result<bool, EngineError> {
        let pid = match self {
            AbortTarget::Batch(id) => store.get_batch(id)?.and_then(|b| b.runner_pid),
            AbortTarget::Bench(id) => store.get_bench_run(id)?.and_then(|r| r.runner_pid),
        };
        Ok(pid.is_some_and(pid_alive))
    }

    /// How many of its items are queued and how many run.
    fn unfinished(&self, store: &Store) -> Result<(i64, i64), EngineError> {
        Ok(match self {
            AbortTarget::Batch(id) => store.batch_counts(id).map(|c| (c.queued, c.running))?,
            AbortTarget::Bench(id) => store.bench_counts(id).map(|c| (c.queued, c.running))?,
        })
    }
}

impl Engine {
    /// Aborts `job` (see the module docs); `reason` is its stop reason when this ends it. `status` is its
    /// status when it was looked up.
    pub(crate) fn abort_job(
        &mut self,
        job: &AbortTarget,
        status: JobStatus,
        reason: &str,
    ) -> Result<JobAbort, EngineError> {
        let started = Instant::now();
        let (kind, id) = job.kind_and_id();
        let (queued, running) = job.unfinished(&self.store)?;
        let active = !status.is_finished() || queued + running > 0;
        let mut r = JobAbort {
            was_active: active,
            queued_aborted: 0,
            running_aborted: 0,
            agents_stopped: 0,
            agents_left: 0,
            status,
            took_ms: 0,
        };
        if !active {
            return Ok(r);
        }
        job.request(&mut self.store)?;
        r.queued_aborted = self.store.abort_job_items(kind, id, "queued", "aborted before it started")?;
        // Stop every agent of the job now; keep looking for a moment for agents that were just starting
        // (the runner's own watcher keeps stopping them after that, until its workers are done).
        let quiet_after = started + Duration::from_millis(300);
        let deadline = started + Duration::from_millis(1_200);
        let mut stopped = HashSet::new();
        loop {
            let live: Vec<i64> =
                job.agent_pids(&self.store).into_iter().filter(|p| group_alive(*p)).collect();
            stopped.extend(live.iter().copied());
            stop_groups(&live, STOP_GRACE);
            if job.unfinished(&self.store)?.1 == 0 || !job.runner_alive(&self.store)? {
                break;
            }
            let now = Instant::now();
            if now >= deadline || (now >= quiet_after && live.is_empty()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        r.agents_stopped = stopped.len();
        r.agents_left = stopped.iter().filter(|p| group_alive(**p)).count();
        if !job.runner_alive(&self.store)? {
            // Nobody will finish what still runs: the runner crashed or never started.
            r.running_aborted =
                self.store.abort_job_items(kind, id, "running", "aborted (its runner had stopped)")?;
            if !job.status(&self.store)?.is_some_and(JobStatus::is_finished) {
                self.store.finish_job(kind, id, JobStatus::Aborted, reason)?;
            }
        }
        r.status = job.status(&self.store)?.unwrap_or(r.status);
        r.took_ms = started.elapsed().as_millis() as u64;
        Ok(r)
    }
}

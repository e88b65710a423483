//! What batches and benchmark runs share: one pool of worker threads and one policy for a runner that
//! died.
//!
//! - **Workers** ([`run_workers`]): each worker thread opens its own [`Engine`] (a SQLite connection is
//!   not shared between threads) with notifications off (the job sends one when it ends) and runs the
//!   entries the job hands out until there are none or the work says stop; beside them a watcher polls
//!   the job's abort flag and, once it is set, keeps stopping the job's running agents. The first error a
//!   worker ends with (a panic included) is returned after every worker is done.
//! - **A dead runner** ([`Engine::settle_dead_runners`], run whenever an engine opens): a batch or a
//!   benchmark run that has not ended while its recorded runner process is gone is ended `failed`, with
//!   why; its running items end `aborted` ("interrupted …") and its queued ones `aborted` ("not started
//!   …"), so that `resume` runs all of them again. Agents the dead runner left behind are stopped by the
//!   session repair of the same pass.

pub mod batch;
pub mod batch_export;
pub mod bench;
pub mod runner;
pub mod swe_harness;

use crate::jobs::batch::{AbortTarget, watch_abort_for};
use crate::process::{own_pid, pid_alive};
use crate::{Engine, EngineError};
use ampsm_config::Paths;
use ampsm_core::JobStatus;
use ampsm_core::id::short_id;
use ampsm_store::jobs::{DeadRunnerNotes, JobKind};
use std::sync::atomic::{AtomicBool, Ordering};

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

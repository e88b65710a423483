//! Background runners of batches and benchmark runs: a front end asks the engine to start one (its own
//! program again, with the hidden arguments it chose, stdin closed, output to a log file), and the engine
//! waits until the new process has taken the job over — for a batch, when it marked the batch running;
//! for a benchmark run, when it replaced the process that recorded the run as its runner of record
//! ([`Engine::take_over_bench_run`]). A runner that does not take over within 10 s, or exits first, is an
//! error that quotes the last line of its log; a benchmark run it was meant to run is then ended as
//! `failed` so that it can be resumed.

use crate::jobs::batch::BatchError;
use crate::jobs::bench::BenchError;
use crate::jobs::{AbortTarget, SignalAbort, abort_on_signal_for};
use crate::process::{own_pid, pid_alive};
use crate::{Engine, EngineError};
use ampsm_core::JobStatus;
use ampsm_core::id::short_id;
use serde::Serialize;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a new background runner may take to take its job over.
pub const TAKE_OVER_WITHIN: Duration = Duration::from_secs(10);

/// How to start a background runner: a program and its arguments (the front end's hidden runner
/// command for the job).
#[derive(Debug, Clone)]
pub struct RunnerCommand {
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

/// A background runner that took its job over.
#[derive(Debug, Clone, Serialize)]
pub struct Detached {
    /// The runner's process id.
    pub runner_pid: u32,
    /// Where it writes its progress lines.
    pub log: PathBuf,
}

impl Engine {
    /// Where the background runner of `job` writes: for a batch `logs/batch-<id>.log` (started afresh);
    /// for a benchmark run `runner.log` in its output folder, or `logs/bench-<id>.log` without one
    /// (appended to, so that a resumed run keeps the earlier runner's lines).
    pub fn runner_log(&self, job: &AbortTarget) -> Result<(PathBuf, bool), EngineError> {
        Ok(match job {
            AbortTarget::Batch(id) => (self.paths.logs.join(format!("batch-{id}.log")), false),
            AbortTarget::Bench(id) => {
                let run = self.store.get_bench_run(id)?.ok_or_else(|| BenchError::NotFound(id.clone()))?;
                let log = match &run.out_dir {
                    Some(dir) if Path::new(dir).is_dir() => PathBuf::from(dir).join("runner.log"),
                    _ => self.paths.logs.join(format!("bench-{id}.log")),
                };
                (log, true)
            }
        })
    }

    /// Starts the background runner of `job` with `command` and waits until it has taken the job over
    /// (see the module docs).
    pub fn start_runner(
        &mut self,
        job: &AbortTarget,
        command: &RunnerCommand,
    ) -> Result<Detached, EngineError> {
        let (log, append) = self.runner_log(job)?;
        let bench_label = match job {
            AbortTarget::Bench(id) => {
                self.store.get_bench_run(id)?.map(|r| format!("{} ({})", r.name, short_id(id)))
            }
            AbortTarget::Batch(_) => None,
        };
        let fail = |message: String| -> EngineError {
            match job {
                AbortTarget::Batch(id) => BatchError::Detach {
                    batch: short_id(id).to_string(),
                    message,
                    log: log.display().to_string(),
                }
                .into(),
                AbortTarget::Bench(id) => BenchError::Other {
                    run: bench_label.clone().unwrap_or_else(|| short_id(id).to_string()),
                    message: format!("cannot start the background runner: {message}; see {}", log.display()),
                }
                .into(),
            }
        };
        match self.spawn_and_wait(job, command, &log, append, &fail) {
            Ok(pid) => Ok(Detached { runner_pid: pid, log }),
            Err(e) => {
                if let AbortTarget::Bench(id) = job {
                    self.settle_unstarted_bench_run(id)?;
                }
                Err(e)
            }
        }
    }

    /// Spawns `command` with its output going to `log` and polls the store (every 20 ms, at most
    /// [`TAKE_OVER_WITHIN`]) until the runner has taken `job` over; returns its pid.
    fn spawn_and_wait(
        &self,
        job: &AbortTarget,
        command: &RunnerCommand,
        log: &Path,
        append: bool,
        fail: &dyn Fn(String) -> EngineError,
    ) -> Result<u32, EngineError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(log)
            .map_err(|e| fail(format!("cannot create the log file: {e}")))?;
        let err_file = file.try_clone().map_err(|e| fail(e.to_string()))?;
        let mut child = std::process::Command::new(&command.program)
            .args(&command.args)
            .stdin(std::process::Stdio::null())
            .stdout(file)
            .stderr(err_file)
            .spawn()
            .map_err(|e| fail(format!("cannot start {}: {e}", command.program.display())))?;
        let deadline = Instant::now() + TAKE_OVER_WITHIN;
        loop {
            if self.runner_took_over(job)? {
                return Ok(child.id());
            }
            if let Ok(Some(status)) = child.try_wait() {
                let tail = std::fs::read_to_string(log).unwrap_or_default();
                let last =
                    tail.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no output").to_string();
                return Err(fail(format!("it exited ({status}): {last}")));
            }
            if Instant::now() >= deadline {
                return Err(fail(format!("it did not take over within {} s", TAKE_OVER_WITHIN.as_secs())));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether a new runner has taken `job` over: a batch that left `queued` or has a runner; a benchmark
    /// run that ended or whose runner of record is no longer this process.
    fn runner_took_over(&self, job: &AbortTarget) -> Result<bool, EngineError> {
        Ok(match job {
            AbortTarget::Batch(id) => self
                .store
                .get_batch(id)?
                .is_some_and(|b| b.status != JobStatus::Queued || b.runner_pid.is_some()),
            AbortTarget::Bench(id) => self
                .store
                .get_bench_run(id)?
                .is_none_or(|r| r.is_finished() || r.runner_pid != Some(own_pid())),
        })
    }

    /// Ends a benchmark run that this process still holds as its runner of record because its background
    /// runner did not start: queued results aborted, the run `failed` (so that it can be resumed).
    fn settle_unstarted_bench_run(&mut self, run_id: &str) -> Result<(), EngineError> {
        if self.store.get_bench_run(run_id)?.is_some_and(|r| r.runner_pid == Some(own_pid())) {
            self.store
                .abort_queued_bench_results(run_id, "not started: the background runner did not start")?;
            self.store.finish_bench_run(
                run_id,
                JobStatus::Failed,
                Some("the background runner did not start"),
            )?;
        }
        Ok(())
    }

    /// Makes this process the runner of record of benchmark run `run_id`, in place of the process that
    /// started it (its parent) or of a runner that is gone; refuses a run that ended or that another live
    /// runner holds.
    pub fn take_over_bench_run(&mut self, run_id: &str) -> Result<(), EngineError> {
        let run =
            self.store.get_bench_run(run_id)?.ok_or_else(|| BenchError::NotFound(run_id.to_string()))?;
        let label = format!("{} ({})", run.name, short_id(&run.id));
        let other =
            |message: String| -> EngineError { BenchError::Other { run: label.clone(), message }.into() };
        if run.is_finished() {
            return Err(other(format!("it already ended ({})", run.status)));
        }
        let parent = std::os::unix::process::parent_id() as i64;
        if let Some(pid) = run.runner_pid.filter(|p| *p != parent && *p != own_pid() && pid_alive(*p)) {
            return Err(BenchError::Running {
                run: label.clone(),
                short: short_id(&run.id).to_string(),
                pid,
            }
            .into());
        }
        // Only if nothing changed since it was read: another process may have ended or taken the run meanwhile.
        if !self.store.take_bench_runner(&run.id, run.runner_pid, own_pid())? {
            return Err(other(
                "it changed while its background runner started (ended, or taken by another runner)".into(),
            ));
        }
        Ok(())
    }

    /// While the returned guard lives, Ctrl-C and SIGTERM ask `job` to abort (see [`SignalAbort`]).
    pub fn abort_on_signal(&self, job: AbortTarget) -> SignalAbort {
        abort_on_signal_for(&self.paths, job)
    }

    /// Runs the queued items of a batch to the end on this process's worker threads.
    pub fn run_batch(
        &self,
        batch_id: &str,
        observer: std::sync::Arc<dyn Fn(&crate::jobs::batch::BatchEvent) + Send + Sync>,
    ) -> Result<crate::jobs::batch::BatchOutcome, EngineError> {
        crate::jobs::batch::run_batch(&self.paths, batch_id, observer)
    }

    /// Runs the queued results of a benchmark run to the end on this process's worker threads.
    pub fn run_bench(
        &self,
        run_id: &str,
        observer: std::sync::Arc<dyn Fn(&crate::jobs::bench::BenchEvent) + Send + Sync>,
    ) -> Result<crate::jobs::bench::BenchOutcome, EngineError> {
        crate::jobs::bench::run_bench(&self.paths, run_id, observer)
    }
}

//! Worker mode: one task of a submission, run on whatever node the scheduler chose (`amp-sessions batch
//! worker <submission folder> <index>`).
//!
//! 1. Reads `tasks/<index>.json` and the coordinator's `config.json`; a result that is already there (the
//!    scheduler ran the task again) is left alone.
//! 2. Writes `started/<index>.json` (the node, its process), which the coordinator turns into `running`.
//! 3. Makes a home of its own in the node's temporary folder (`$AMPSM_WORKER_TMP`, else `$TMPDIR`), clones
//!    the repository there (its shared path, or its remote) and gives the clone the user's commit
//!    author.
//! 4. Runs the attempts as a local batch runs an item: a fresh session per attempt from the task's base
//!    commit, one `iterate` with the item's timeout, its budget and what is left of the batch's, until an
//!    attempt passes. SIGTERM (the scheduler cancelling the task) stops the agent the way Ctrl-C does: the
//!    work so far is committed, the item is reported `aborted`.
//! 5. Writes the result folder: `attempt-<n>.bundle` (each attempt's branch as a git bundle against the
//!    base commit), `store.sqlite` (a copy of its store: events, usage, tool calls, test output) and
//!    `result.json`, in a temporary folder renamed into place; then removes its home.
//!
//! A benchmark result's task (`"kind": "bench-result"`) goes through the same steps, its step 4 being
//! the benchmark runner on a run of that one result ([`super::bench`]).

use super::{
    AttemptResult, FORMAT, Layout, RepoSource, SessionBundle, Task, TaskResult, read_json, write_atomic,
};
use crate::jobs::batch::{attempt_failure, session_name};
use crate::runs::budget::BudgetPool;
use crate::runs::iterate::IterateRequest;
use crate::sessions::CreateSession;
use crate::{Engine, EngineError, Interrupt};
use ampsm_config::Paths;
use ampsm_core::{BatchItemStatus, Money};
use ampsm_git::Git;
use ampsm_store::cluster::TaskProgress;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What `batch worker` did.
#[derive(Debug, Clone)]
pub enum WorkerOutcome {
    /// It ran the task and wrote its result: the unit (batch item or benchmark result), its status.
    Ran { unit: String, status: String, error: Option<String>, took_ms: u64 },
    /// A result was already there; nothing was run.
    AlreadyDone,
}

/// A worker's scratch space on its node and where its result goes.
pub(super) struct Scratch {
    /// Removed when dropped.
    pub dir: tempfile::TempDir,
    /// The worker's own home (config copied from the coordinator).
    pub paths: Paths,
    /// The result folder being written, renamed to `result_dir` at the end.
    pub out: PathBuf,
    pub result_dir: PathBuf,
    /// Where the worker tells what it spent so far, and how it is doing.
    pub spend: PathBuf,
    pub progress: PathBuf,
    pub host: String,
    pub started: Instant,
}

/// Tells the coordinator how a worker is doing, every half second while alive: its spend file (from its
/// budget pool; the coordinator adds these up against the run's budget and cancels what runs once it is
/// reached) and its progress file (its node, session, lines recorded, tokens, last event; rewritten only
/// when something changed), read from the worker's own store. Stops and writes a last figure when dropped.
pub(super) struct Reporter {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What a [`Reporter`] reads and where it writes.
struct ReporterFiles {
    db: PathBuf,
    spend: PathBuf,
    progress: PathBuf,
    host: String,
    /// The number of the worker's first attempt (an item resumed after a failed attempt starts later).
    first_attempt: i64,
}

impl Reporter {
    fn start(files: ReporterFiles, pool: Option<std::sync::Arc<BudgetPool>>) -> Reporter {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut store: Option<ampsm_store::Store> = None;
            let mut written: Option<TaskProgress> = None;
            loop {
                let last = flag.load(Ordering::SeqCst);
                if let Some(pool) = &pool {
                    let _ = write_atomic(&files.spend, format!("{:.6}", pool.spent_usd().usd()).as_bytes());
                }
                // The store appears once the worker's engine has made it.
                if store.is_none() && files.db.is_file() {
                    store = ampsm_store::Store::open(&files.db).ok();
                }
                if let Some(store) = &store
                    && let Ok(mut now) = progress_of(store, &files, pool.as_deref())
                    && written.as_ref().is_none_or(|w| TaskProgress { at: now.at, ..w.clone() } != now)
                {
                    now.at = ampsm_core::time::now_ms();
                    if let Ok(json) = serde_json::to_vec(&now)
                        && write_atomic(&files.progress, &json).is_ok()
                    {
                        written = Some(now);
                    }
                }
                if last {
                    return;
                }
                for _ in 0..5 {
                    if flag.load(Ordering::SeqCst) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        });
        Reporter { stop, thread: Some(thread) }
    }
}

/// The worker's progress as its store has it: the newest session (the attempt running), its lines and
/// last event, the tokens of every session; what was spent, from the pool when there is one (live) else
/// from the stored usage.
fn progress_of(
    store: &ampsm_store::Store,
    files: &ReporterFiles,
    pool: Option<&BudgetPool>,
) -> Result<TaskProgress, EngineError> {
    let ids = store.all_session_ids()?;
    let (tokens, stored) = store.usage_totals()?;
    let mut progress = TaskProgress {
        host: files.host.clone(),
        attempt: files.first_attempt + (ids.len() as i64 - 1).max(0),
        tokens,
        spent_usd: pool.map(|p| p.spent_usd()).unwrap_or(stored).usd(),
        ..TaskProgress::default()
    };
    if let Some(id) = ids.last() {
        progress.session = Some(store.get_session(id)?.name);
        progress.events = store.count_events(id)?;
        progress.last = store.last_events(id, 1)?.pop().map(|ev| match ev.events.last() {
            Some(e) => e.summary(),
            None => format!("{}: {}", ev.stream, ev.raw.chars().take(160).collect::<String>()),
        });
    }
    Ok(progress)
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Scratch {
    /// Makes the scratch home with the coordinator's config and the partial result folder, and writes
    /// the started marker.
    fn prepare(layout: &Layout, index: i64) -> Result<Scratch, EngineError> {
        let started = Instant::now();
        let config_text = std::fs::read_to_string(layout.config())
            .map_err(|source| EngineError::Io { path: layout.config(), source })?;
        let host = host_name();
        let marker =
            serde_json::json!({ "host": host, "pid": std::process::id(), "at": ampsm_core::time::now_ms() });
        write_atomic(&layout.started(index), marker.to_string().as_bytes())?;
        let scratch_root =
            std::env::var_os("AMPSM_WORKER_TMP").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
        std::fs::create_dir_all(&scratch_root)
            .map_err(|source| EngineError::Io { path: scratch_root.clone(), source })?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("ampsm-worker-{index}-"))
            .tempdir_in(&scratch_root)
            .map_err(|source| EngineError::Io { path: scratch_root.clone(), source })?;
        let home = dir.path().join("home");
        let paths = Paths::with_home(home.clone(), None);
        paths.ensure_home().map_err(|source| EngineError::Io { path: home.clone(), source })?;
        std::fs::write(&paths.config, &config_text)
            .map_err(|source| EngineError::Io { path: paths.config.clone(), source })?;
        let result_dir = layout.result_dir(index);
        let out = result_dir.with_file_name(format!("{index}.partial-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out).map_err(|source| EngineError::Io { path: out.clone(), source })?;
        Ok(Scratch {
            dir,
            paths,
            out,
            result_dir,
            spend: layout.spend(index),
            progress: layout.progress(index),
            host,
            started,
        })
    }

    /// Starts telling how this worker's runs go (see [`Reporter`]); what they spend comes from `pool`
    /// when there is one (its live figure: usage is stored only when a run ends). `first_attempt`
    /// numbers the attempt of the first session made here.
    pub fn report(&self, pool: Option<std::sync::Arc<BudgetPool>>, first_attempt: i64) -> Reporter {
        let files = ReporterFiles {
            db: self.paths.db.clone(),
            spend: self.spend.clone(),
            progress: self.progress.clone(),
            host: self.host.clone(),
            first_attempt,
        };
        Reporter::start(files, pool)
    }

    /// Copies the worker's store into the result.
    pub fn copy_store(&self) -> Result<String, EngineError> {
        let store = ampsm_store::Store::open(&self.paths.db)?;
        store.copy_to(&self.out.join("store.sqlite"))?;
        Ok("store.sqlite".into())
    }

    /// Writes `result.json` and moves the result into place; false when another run of the same task
    /// got there first (its result is kept).
    pub fn finish(&self, result: &impl serde::Serialize) -> Result<bool, EngineError> {
        let json = serde_json::to_vec_pretty(result).map_err(|e| EngineError::Invalid(e.to_string()))?;
        write_atomic(&self.out.join("result.json"), &json)?;
        if let Err(source) = std::fs::rename(&self.out, &self.result_dir) {
            let _ = std::fs::remove_dir_all(&self.out);
            if !self.result_dir.join("result.json").is_file() {
                return Err(EngineError::Io { path: self.result_dir.clone(), source });
            }
            return Ok(false);
        }
        Ok(true)
    }
}

/// Runs task `index` of the submission in `folder` (see the module docs): a batch item, or a benchmark
/// result (`"kind": "bench-result"` in its task file).
pub fn run_task(folder: &Path, index: i64) -> Result<WorkerOutcome, EngineError> {
    let layout = Layout::new(folder);
    if layout.result_dir(index).join("result.json").is_file() {
        return Ok(WorkerOutcome::AlreadyDone);
    }
    let raw: serde_json::Value = read_json(&layout.task(index), "task file")?;
    let format = raw["format"].as_u64().unwrap_or(0);
    if format != u64::from(FORMAT) {
        return Err(EngineError::Invalid(format!(
            "{}: task format {format} but this amp-sessions reads format {FORMAT}; run the same version on the \
             nodes",
            layout.task(index).display(),
        )));
    }
    if raw["kind"] == "bench-result" {
        let task: super::bench::BenchTask = read_json(&layout.task(index), "task file")?;
        let scratch = Scratch::prepare(&layout, index)?;
        return super::bench::run_bench_task(&task, &scratch);
    }
    let task: Task = read_json(&layout.task(index), "task file")?;
    let scratch = Scratch::prepare(&layout, index)?;
    let interrupt = Interrupt::install(|| {});
    let mut result = TaskResult {
        format: FORMAT,
        item_id: task.item_id.clone(),
        status: BatchItemStatus::Error,
        error: None,
        attempts: Vec::new(),
        store: None,
        host: scratch.host.clone(),
        took_ms: 0,
    };
    match prepare_clone(
        &task.repo,
        &task.base_commit,
        task.git_identity.as_ref(),
        &scratch.dir.path().join("repo"),
    ) {
        Err(e) => result.error = Some(e),
        Ok(clone) => {
            let mut engine = Engine::open_at(scratch.paths.clone())?;
            engine.config.notifications.desktop = false;
            engine.config.notifications.command = None;
            // What is left of the batch's budget is this worker's ceiling; its live spend is reported.
            let pool = task.budget_cap_usd.map(|cap| {
                BudgetPool::new(
                    format!("batch {}", ampsm_core::id::short_id(&task.batch_id)),
                    Money::from_usd(cap),
                    Money::ZERO,
                )
            });
            let reporter = scratch.report(pool.clone(), task.first_attempt);
            run_attempts(&mut engine, &task, &clone, &interrupt, &scratch.out, pool, &mut result);
            drop(reporter);
            drop(engine);
            result.store = Some(scratch.copy_store()?);
        }
    }
    result.took_ms = scratch.started.elapsed().as_millis() as u64;
    if !scratch.finish(&result)? {
        return Ok(WorkerOutcome::AlreadyDone);
    }
    Ok(WorkerOutcome::Ran {
        unit: result.item_id,
        status: result.status.to_string(),
        error: result.error,
        took_ms: result.took_ms,
    })
}

/// Clones `repo` into `dest` and checks `base_commit` is there; errors are the unit's (one line, for its
/// `error`).
pub(super) fn prepare_clone(
    repo: &RepoSource,
    base_commit: &str,
    identity: Option<&(String, String)>,
    dest: &Path,
) -> Result<PathBuf, String> {
    let source = match repo {
        RepoSource::Path(p) => p.clone(),
        RepoSource::Remote(url) => url.clone(),
    };
    let parent = dest.parent().unwrap_or(Path::new("/"));
    let mut args: Vec<String> = Vec::new();
    // Credentials from the environment (a Kubernetes Secret) answer git's questions for this clone
    // only: they are never written into the clone's config or its remote URL.
    if std::env::var_os("AMPSM_GIT_USERNAME").is_some() && std::env::var_os("AMPSM_GIT_PASSWORD").is_some() {
        args.push("-c".into());
        args.push(
            "credential.helper=!f() { echo \"username=$AMPSM_GIT_USERNAME\"; echo \"password=$AMPSM_GIT_PASSWORD\"; }; f"
                .into(),
        );
    }
    args.extend(["clone", "--quiet", "--no-checkout", source.as_str()].map(String::from));
    args.push(dest.to_string_lossy().into_owned());
    let cloned = Git::new(parent).with_timeout(Duration::from_secs(1800)).run_ok(&args);
    match cloned {
        Ok(o) if o.success() => {}
        Ok(o) => return Err(format!("cannot clone {source} on this node: {}", o.stderr.trim())),
        Err(e) => return Err(format!("cannot clone {source} on this node: {e}")),
    }
    let git = Git::new(dest);
    if git.resolve_commit(&format!("{base_commit}^{{commit}}")).ok().flatten().is_none() {
        return Err(format!(
            "the base commit {} is not in {source}; push it (or use `repository: path` on a shared folder)",
            &base_commit[..base_commit.len().min(12)]
        ));
    }
    let _ = git.run_ok(&["checkout", "--quiet", "--detach", base_commit]);
    if let Some((name, email)) = identity {
        let _ = git.run_ok(&["config", "user.name", name.as_str()]);
        let _ = git.run_ok(&["config", "user.email", email.as_str()]);
    }
    Ok(dest.to_path_buf())
}

/// The attempts of the task (see the module docs), each recorded in `result`.
fn run_attempts(
    engine: &mut Engine,
    task: &Task,
    clone: &Path,
    interrupt: &Interrupt,
    out: &Path,
    pool: Option<std::sync::Arc<BudgetPool>>,
    result: &mut TaskResult,
) {
    for attempt in task.first_attempt..=task.last_attempt.max(task.first_attempt) {
        if interrupt.interrupted() {
            result.status = BatchItemStatus::Aborted;
            result.error.get_or_insert_with(|| "aborted: the task was cancelled".into());
            return;
        }
        let name = session_name(&task.item_name, &task.batch_id, attempt);
        let made = engine.create_session(CreateSession {
            repo: clone.to_path_buf(),
            name: name.clone(),
            prompt: Some(task.prompt.clone()),
            base: Some(task.base_commit.clone()),
            agent: Some(task.agent.clone()),
            model: task.model.clone(),
            script: task.script.clone(),
            budget_usd: task.budget_usd.map(Money::from_usd),
            batch_item_id: Some(task.item_id.clone()),
            setup: Some(task.setup.clone()),
            interrupt: Some(interrupt.clone()),
            ..Default::default()
        });
        let session = match made {
            Ok(s) => s,
            Err(e) => {
                result.status = BatchItemStatus::Error;
                result.error = Some(format!("cannot create the session: {e}"));
                return;
            }
        };
        let ran = engine.iterate(
            IterateRequest {
                session: session.id.to_string(),
                prompt: None,
                timeout: task.timeout_ms.map(|ms| Duration::from_millis(ms.max(1) as u64)),
                budget_pool: pool.clone(),
                interrupt: Some(interrupt.clone()),
            },
            &mut |_| {},
        );
        let (status, reason, passed) = match &ran {
            Ok(report) if report.passed() => (BatchItemStatus::Passed, None, true),
            Ok(report) => {
                let (status, reason) = attempt_failure(report);
                (status, Some(reason), false)
            }
            Err(e) => (BatchItemStatus::Error, Some(e.to_string()), false),
        };
        let (session, failed) =
            bundle_session(clone, &session, &task.base_commit, out, &format!("attempt-{attempt}.bundle"));
        result.attempts.push(AttemptResult { attempt, session, status, passed, reason: reason.clone() });
        if let Some(e) = failed {
            result.status = BatchItemStatus::Error;
            result.error = Some(e);
            return;
        }
        result.status = status;
        result.error = reason;
        if interrupt.interrupted() {
            result.status = BatchItemStatus::Aborted;
            result.error = Some(format!(
                "aborted: {}",
                result.error.clone().unwrap_or_else(|| "the task was cancelled".into())
            ));
            return;
        }
        if passed
            || matches!(ran, Err(EngineError::Metrics(_)))
            || pool.as_ref().is_some_and(|p| p.exhausted())
        {
            return;
        }
    }
}

/// Hands over `session` of the clone: its branch as the git bundle `file` in `out` against `base_commit`
/// (none when the branch has no commit of its own). When git cannot make the bundle, the session is
/// described without one and the failure (one line, the unit's error) comes with it.
pub(super) fn bundle_session(
    clone: &Path,
    session: &ampsm_store::Session,
    base_commit: &str,
    out: &Path,
    file: &str,
) -> (SessionBundle, Option<String>) {
    let git = Git::new(clone);
    let head = git.resolve_commit(&session.branch).ok().flatten().unwrap_or_else(|| base_commit.to_string());
    let mut failed = None;
    let bundle = if head != base_commit {
        let range = format!("^{base_commit}");
        let made =
            git.run_ok(&["bundle", "create", &out.join(file).to_string_lossy(), &session.branch, &range]);
        match made {
            Ok(o) if o.success() => Some(file.to_string()),
            Ok(o) => {
                failed = Some(format!("cannot bundle the branch {}: {}", session.branch, o.stderr.trim()));
                None
            }
            Err(e) => {
                failed = Some(format!("cannot bundle the branch {}: {e}", session.branch));
                None
            }
        }
    } else {
        None
    };
    let bundled = SessionBundle {
        session_name: session.name.clone(),
        session_id: session.id.to_string(),
        branch: session.branch.clone(),
        head_commit: head,
        bundle,
    };
    (bundled, failed)
}

/// This node's name.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

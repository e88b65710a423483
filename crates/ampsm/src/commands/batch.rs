//! `amp-sessions batch …`: start a batch from YAML (foreground with progress bars, or `--detach`ed in the
//! background), follow its status, list, abort from any terminal, resume after a crash, export the items
//! as CSV/JSON/JSONL, and clean the sessions' worktrees. The work itself is in `ampsm_engine::jobs::batch`.

use crate::commands::{CliError, open_engine};
use crate::output::{self, print_json};
use ampsm_core::id::short_id;
use ampsm_core::time::{format_ms, now_ms};
use ampsm_core::{BatchItemStatus, BatchStatus, ExportFormat, dollars};
use ampsm_engine::jobs::AbortTarget as Job;
use ampsm_engine::jobs::batch::{BatchEvent, BatchPlan, BatchView};
use ampsm_engine::jobs::runner::RunnerCommand;
use ampsm_engine::records::{Batch, BatchItem};
use ampsm_engine::{Engine, EngineError};
use clap::{Args, Subcommand};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use owo_colors::OwoColorize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum BatchCommand {
    /// Start a batch from a YAML file: items × repositories, under a concurrency bound.
    Start(StartArgs),
    /// Show a batch's progress and its items (--follow: until it ends).
    Status(StatusArgs),
    /// List batches, newest first.
    List,
    /// Stop a batch from any terminal: running agents are stopped, queued items marked aborted.
    Abort(BatchRef),
    /// Continue a batch whose runner stopped (crash, kill, abort): only unfinished items run.
    Resume(ResumeArgs),
    /// Export a batch's items with results, sessions, tokens and cost.
    Export(ExportArgs),
    /// Remove the worktrees and branches of a batch's sessions (unmerged work is snapshotted first).
    Clean(BatchRef),
    /// The background runner started by `--detach` (internal).
    #[command(name = "run-detached", hide = true)]
    RunDetached(BatchRef),
    /// One task of a batch on a cluster node: what a Slurm array task or a Kubernetes pod runs
    /// (internal).
    #[command(name = "worker", hide = true)]
    Worker(WorkerArgs),
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The submission folder (in the executor's shared work folder).
    pub folder: PathBuf,
    /// The task's index (`$SLURM_ARRAY_TASK_ID`, `$JOB_COMPLETION_INDEX`).
    pub index: i64,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// The batch YAML (name, repos, items, concurrency, defaults).
    #[arg(long, short)]
    pub file: PathBuf,
    /// Check the file and print the plan (items × repositories); run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Run in the background; print the batch id and return.
    #[arg(long)]
    pub detach: bool,
    /// Budget in USD for the whole batch (overrides the file's top-level `budget:`): warn at 80 %, stop
    /// every running agent and start no more items at 100 %.
    #[arg(long, value_name = "USD", allow_negative_numbers = true)]
    pub budget: Option<f64>,
    /// Where the items run: local (this machine), slurm (one job array) or kubernetes (one Indexed
    /// Job); overrides the file's `executor:`. Settings: `executors.<name>.*` in the config.
    #[arg(long, value_parser = executor_arg())]
    pub executor: Option<ampsm_core::Executor>,
}

/// `--executor`: the core's executor names.
pub(crate) fn executor_arg() -> impl clap::builder::TypedValueParser<Value = ampsm_core::Executor> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(ampsm_core::Executor::ALL.iter().map(|f| f.as_str()))
        .try_map(|s| s.parse::<ampsm_core::Executor>())
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Batch id, unique id prefix, or name.
    pub batch: String,
    /// Keep printing item changes until the batch ends (JSON lines with --json).
    #[arg(long, short)]
    pub follow: bool,
}

#[derive(Debug, Args)]
pub struct BatchRef {
    /// Batch id, unique id prefix, or name.
    pub batch: String,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// Batch id, unique id prefix, or name.
    pub batch: String,
    /// Run in the background; print the batch id and return.
    #[arg(long)]
    pub detach: bool,
    /// A new budget in USD for the whole batch (what it already spent counts against it).
    #[arg(long, value_name = "USD", allow_negative_numbers = true)]
    pub budget: Option<f64>,
}

/// `--format` of the exports: the core's one export format type, with its names listed in `--help`.
pub(crate) fn export_format_arg() -> impl clap::builder::TypedValueParser<Value = ExportFormat> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(ExportFormat::ALL.iter().map(|f| f.as_str()))
        .try_map(|s| s.parse::<ExportFormat>())
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Batch id, unique id prefix, or name.
    pub batch: String,
    #[arg(long, default_value = "json", value_parser = export_format_arg())]
    pub format: ExportFormat,
    /// Write to this file instead of stdout; a folder (existing, or ending in '/') gets
    /// `batch-<name>-<id>.<format>`.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs one `batch` subcommand.
pub fn run(cmd: BatchCommand, json: bool) -> Result<(), CliError> {
    match cmd {
        BatchCommand::Start(a) => start(a, json),
        BatchCommand::Status(a) => status(&a.batch, a.follow, json),
        BatchCommand::List => list(json),
        BatchCommand::Abort(a) => abort(&a.batch, json),
        BatchCommand::Resume(a) => resume(&a.batch, a.detach, a.budget, json),
        BatchCommand::Export(a) => export(a, json),
        BatchCommand::Clean(a) => clean(&a.batch, json),
        BatchCommand::RunDetached(a) => run_detached(&a.batch),
        BatchCommand::Worker(a) => worker(&a),
    }
}

fn start(a: StartArgs, json: bool) -> Result<(), CliError> {
    let mut engine = open_engine()?;
    let mut plan = engine.plan_batch(&a.file)?;
    if let Some(b) = a.budget {
        if !ampsm_core::Money::from_usd(b).is_positive() {
            return Err(
                EngineError::from(ampsm_engine::reports::metrics_error::MetricsError::BadBudget(b)).into()
            );
        }
        plan.budget_usd = Some(ampsm_core::Money::from_usd(b));
    }
    if let Some(e) = a.executor {
        plan.executor = e;
    }
    if a.dry_run {
        return print_plan(&plan, json);
    }
    let batch = engine.create_batch(&plan)?;
    if a.detach {
        return detach(&mut engine, &batch, json);
    }
    if !json {
        println!(
            "Batch {} ({}): {} runs ({} items × {} repositories), concurrency {}",
            batch.name,
            short_id(&batch.id),
            plan.runs.len(),
            plan.items,
            plan.repos,
            plan.concurrency
        );
        if let Some(b) = plan.budget_usd {
            println!("Budget of the whole batch: {}", dollars(b));
        }
    }
    foreground(engine, &batch, json)
}

/// `batch worker FOLDER INDEX`: runs one cluster task; prints its result as one JSON line. Exits 0 when
/// it wrote a result (whatever the item's status), so that the scheduler never retries an item.
fn worker(a: &WorkerArgs) -> Result<(), CliError> {
    use ampsm_engine::jobs::cluster::worker::{WorkerOutcome, run_task};
    match run_task(&a.folder, a.index)? {
        WorkerOutcome::Ran { unit, status, error, took_ms } => {
            println!("{}", json!({"unit": unit, "status": status, "error": error, "took_ms": took_ms}));
        }
        WorkerOutcome::AlreadyDone => println!("{}", json!({"index": a.index, "status": "already-done"})),
    }
    Ok(())
}

fn resume(reference: &str, detach_flag: bool, budget: Option<f64>, json: bool) -> Result<(), CliError> {
    let mut engine = open_engine()?;
    let batch = engine.prepare_resume(reference, budget)?;
    if detach_flag {
        return detach(&mut engine, &batch, json);
    }
    if !json {
        let counts = engine.batch_counts(&batch.id)?;
        println!(
            "Resuming batch {} ({}): {} of {} items left to run",
            batch.name,
            short_id(&batch.id),
            counts.queued,
            counts.total
        );
    }
    foreground(engine, &batch, json)
}

fn print_plan(plan: &BatchPlan, json: bool) -> Result<(), CliError> {
    if json {
        return Ok(print_json(plan)?);
    }
    println!(
        "Plan of batch {:?} ({}): {} runs = {} items × {} repositories, concurrency {} (dry run: nothing was started)",
        plan.name,
        plan.file.display(),
        plan.runs.len(),
        plan.items,
        plan.repos,
        plan.concurrency
    );
    if let Some(b) = plan.budget_usd {
        println!("Budget of the whole batch: {} (warn at 80 %, stop at 100 %)", dollars(b));
    }
    let mut t =
        output::table(&["#", "ITEM", "REPO", "BASE", "AGENT", "TIMEOUT", "RETRIES", "MERGE", "SCRIPT"]);
    for r in &plan.runs {
        t.add_row(vec![
            r.seq.to_string(),
            r.item.clone(),
            r.repo.clone(),
            r.base_branch.clone(),
            match &r.model {
                Some(m) => format!("{} ({m})", r.agent),
                None => r.agent.clone(),
            },
            ampsm_core::duration::format_duration(Duration::from_millis(r.timeout_ms)),
            r.retries.to_string(),
            if r.merge_on_pass { "on pass".into() } else { "no".into() },
            r.script.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    output::print_table(&t);
    Ok(())
}

/// Starts the background runner and waits until it has taken the batch (at most 10 s).
fn detach(engine: &mut Engine, batch: &Batch, json: bool) -> Result<(), CliError> {
    let d = engine.start_runner(
        &Job::Batch(batch.id.clone()),
        &runner_command(&["batch", "run-detached", &batch.id])?,
    )?;
    let (pid, log) = (d.runner_pid, d.log);
    if json {
        print_json(&json!({
            "id": batch.id,
            "name": batch.name,
            "runner_pid": pid,
            "log": log,
            "detached": true,
        }))?;
    } else {
        println!("{}", batch.id);
        eprintln!(
            "Batch {} runs in the background (process {pid}, log {}). Follow it with: amp-sessions batch status {} --follow",
            batch.name,
            log.display(),
            short_id(&batch.id)
        );
    }
    Ok(())
}

/// This program again with `args` (a hidden `… run-detached <id>` subcommand), for a background runner.
pub(crate) fn runner_command(args: &[&str]) -> Result<RunnerCommand, CliError> {
    let program = std::env::current_exe()
        .map_err(|e| CliError::Output(std::io::Error::other(format!("cannot find this program: {e}"))))?;
    Ok(RunnerCommand { program, args: args.iter().map(Into::into).collect() })
}

/// The hidden `batch run-detached <id>`: a new session without a terminal, lines to the log file.
fn run_detached(batch_id: &str) -> Result<(), CliError> {
    ampsm_engine::jobs::detach_from_terminal()?;
    let engine = open_engine()?;
    println!("{} runner {} started batch {batch_id}", format_ms(now_ms()), std::process::id());
    let observer = Arc::new(|e: &BatchEvent| {
        let line = match e {
            BatchEvent::Started { item, attempt, session } => format!(
                "started {} on {} (attempt {attempt}, session {})",
                item.item_name,
                item.repo_path,
                session.as_deref().unwrap_or("-")
            ),
            BatchEvent::Retrying { item, attempt, reason } => {
                format!("retrying {} on {} after attempt {attempt}: {reason}", item.item_name, item.repo_path)
            }
            BatchEvent::Finished { item } => finished_line(item),
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{} {line}", format_ms(now_ms()));
        let _ = out.flush();
    });
    let interrupt = engine.abort_on_signal(Job::Batch(batch_id.to_string()));
    let outcome = engine.run_batch(batch_id, observer);
    drop(interrupt);
    match outcome {
        Ok(o) => {
            println!("{} batch {} ended: {} ({} ms)", format_ms(now_ms()), batch_id, o.status, o.took_ms);
            Ok(())
        }
        Err(e) => {
            println!("{} batch {batch_id} stopped: {e}", format_ms(now_ms()));
            Err(e.into())
        }
    }
}

fn finished_line(item: &BatchItem) -> String {
    let took = match (item.started_at, item.ended_at) {
        (Some(a), Some(b)) => format!(" in {:.1}s", (b - a) as f64 / 1000.0),
        _ => String::new(),
    };
    let merged = if item.merged { ", merged" } else { "" };
    let note = item.error.as_deref().map(|e| format!(": {}", one_line(e, 160))).unwrap_or_default();
    format!(
        "{} {} on {} (attempt {}{took}{merged}){note}",
        item_word(item.status),
        item.item_name,
        short_path(&item.repo_path),
        item.attempts
    )
}

/// Runs the batch in this process with progress: bars on a terminal, one line per event otherwise, and
/// nothing but the final document with --json.
fn foreground(engine: Engine, batch: &Batch, json: bool) -> Result<(), CliError> {
    let total = engine.batch_counts(&batch.id)?;
    let to_run = total.queued as u64;
    let progress = Arc::new(Progress::new(to_run, !json));
    let observer = {
        let progress = progress.clone();
        Arc::new(move |e: &BatchEvent| progress.event(e))
    };
    let interrupt = engine.abort_on_signal(Job::Batch(batch.id.clone()));
    let outcome = engine.run_batch(&batch.id, observer);
    drop(interrupt);
    progress.finish();
    let outcome = outcome?;
    drop(engine);
    let engine = open_engine()?;
    let view = engine.batch_view(&batch.id)?;
    if json {
        print_json(&view)?;
    } else {
        print_summary(&view, outcome.took_ms);
    }
    let c = &view.counts;
    match outcome.status {
        BatchStatus::Completed => Ok(()),
        BatchStatus::Aborted => Err(CliError::Reported {
            message: format!(
                "batch {} was aborted ({} of {} items passed){}",
                short_id(&batch.id),
                c.passed,
                c.total,
                view.batch.stop_reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
            ),
            kind: ampsm_core::ErrorKind::Failed,
        }),
        _ => Err(CliError::Reported {
            message: format!(
                "{} of {} items did not pass (see `amp-sessions batch status {}`)",
                c.total - c.passed,
                c.total,
                short_id(&batch.id)
            ),
            kind: ampsm_core::ErrorKind::Failed,
        }),
    }
}

/// Progress of a foreground run: an overall bar and a spinner per running item on a terminal; plain lines
/// otherwise.
struct Progress {
    enabled: bool,
    bars: Option<(MultiProgress, ProgressBar)>,
    running: Mutex<HashMap<String, ProgressBar>>,
    done: Mutex<u64>,
    total: u64,
}

impl Progress {
    fn new(total: u64, enabled: bool) -> Progress {
        let tty = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let bars = (enabled && tty).then(|| {
            let mp = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
            let overall = mp.add(ProgressBar::new(total));
            overall.set_style(
                ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} items, {elapsed} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            overall.set_prefix("batch");
            overall.enable_steady_tick(Duration::from_millis(200));
            (mp, overall)
        });
        Progress { enabled, bars, running: Mutex::new(HashMap::new()), done: Mutex::new(0), total }
    }

    fn event(&self, e: &BatchEvent) {
        if !self.enabled {
            return;
        }
        match (&self.bars, e) {
            (Some((mp, _)), BatchEvent::Started { item, attempt, .. }) => {
                let bar = mp.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_message(format!(
                    "{} on {} (attempt {attempt})",
                    item.item_name,
                    short_path(&item.repo_path)
                ));
                bar.enable_steady_tick(Duration::from_millis(120));
                if let Ok(mut r) = self.running.lock()
                    && let Some(old) = r.insert(item.id.clone(), bar)
                {
                    old.finish_and_clear();
                }
            }
            (Some((mp, _)), BatchEvent::Retrying { item, attempt, reason }) => {
                let _ = mp.println(format!(
                    "retry    {} after attempt {attempt}: {}",
                    item.item_name,
                    one_line(reason, 120)
                ));
            }
            (Some((mp, overall)), BatchEvent::Finished { item }) => {
                if let Ok(mut r) = self.running.lock()
                    && let Some(bar) = r.remove(&item.id)
                {
                    bar.finish_and_clear();
                    mp.remove(&bar);
                }
                let _ = mp.println(finished_line(item));
                overall.inc(1);
            }
            (None, BatchEvent::Started { item, attempt, session }) => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(
                    out,
                    "started  {} on {} (attempt {attempt}, session {})",
                    item.item_name,
                    short_path(&item.repo_path),
                    session.as_deref().unwrap_or("-")
                );
            }
            (None, BatchEvent::Retrying { item, attempt, reason }) => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(
                    out,
                    "retry    {} after attempt {attempt}: {}",
                    item.item_name,
                    one_line(reason, 160)
                );
            }
            (None, BatchEvent::Finished { item }) => {
                let n = match self.done.lock() {
                    Ok(mut d) => {
                        *d += 1;
                        *d
                    }
                    Err(_) => 0,
                };
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "[{n}/{}] {}", self.total, finished_line(item));
            }
        }
    }

    fn finish(&self) {
        if let Some((_, overall)) = &self.bars {
            overall.finish_and_clear();
        }
        if let Ok(mut r) = self.running.lock() {
            for (_, bar) in r.drain() {
                bar.finish_and_clear();
            }
        }
    }
}

fn print_summary(view: &BatchView, took_ms: u64) {
    let c = &view.counts;
    println!(
        "Batch {} ({}) {} in {:.1}s: {} passed, {} failed, {} error, {} timeout, {} aborted; {} merged",
        view.batch.name,
        short_id(&view.batch.id),
        batch_word(view.batch.status),
        took_ms as f64 / 1000.0,
        c.passed,
        c.failed,
        c.error,
        c.timeout,
        c.aborted,
        c.merged
    );
    if let Some(budget) = view.batch.budget_usd {
        println!("Spent ${:.4} of the batch's {} budget", view.spent_usd, dollars(budget));
    }
    if let Some(reason) = &view.batch.stop_reason {
        println!("Stopped: {reason}");
    }
}

fn status(reference: &str, follow: bool, json: bool) -> Result<(), CliError> {
    let mut engine = open_engine()?;
    let view = engine.batch_view(reference)?;
    if !follow {
        if json {
            return Ok(print_json(&view)?);
        }
        print_view(&view);
        return Ok(());
    }
    // Follow: the full picture once, then one line per item change until the batch settles.
    let mut seen: HashMap<String, (BatchItemStatus, i64)> = HashMap::new();
    let mut view = view;
    let mut first = true;
    loop {
        let mut out = std::io::stdout().lock();
        for v in &view.items {
            let key = (v.item.status, v.item.attempts);
            if seen.get(&v.item.id) == Some(&key) {
                continue;
            }
            seen.insert(v.item.id.clone(), key);
            if json {
                let line = json!({"event": "item", "batch_id": view.batch.id, "item": v});
                writeln!(out, "{line}")?;
            } else if !first {
                let line = if v.item.status == BatchItemStatus::Running {
                    format!(
                        "started  {} on {} (attempt {})",
                        v.item.item_name,
                        short_path(&v.item.repo_path),
                        v.item.attempts
                    )
                } else if v.item.is_finished() {
                    finished_line(&v.item)
                } else {
                    format!("{} {} on {}", v.item.status, v.item.item_name, short_path(&v.item.repo_path))
                };
                writeln!(out, "{} {line}", time_of_day())?;
            }
        }
        if first && !json {
            drop(out);
            print_view(&view);
            out = std::io::stdout().lock();
        }
        first = false;
        out.flush()?;
        drop(out);
        if view.is_settled() {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
        engine.settle_dead_runners()?;
        view = engine.batch_view(&view.batch.id)?;
    }
    if json {
        let mut doc = serde_json::to_value(&view).map_err(std::io::Error::other)?;
        if let Value::Object(m) = &mut doc {
            m.remove("items");
            m.insert("event".into(), Value::String("batch".into()));
        }
        println!("{doc}");
    } else {
        print_summary(&view, duration_of(&view.batch));
        if let Some(note) = &view.note {
            println!("note: {note}");
        }
    }
    Ok(())
}

fn duration_of(b: &Batch) -> u64 {
    match (b.started_at, b.ended_at) {
        (Some(a), Some(e)) => (e - a).max(0) as u64,
        (Some(a), None) => (now_ms() - a).max(0) as u64,
        _ => 0,
    }
}

fn time_of_day() -> String {
    let t = format_ms(now_ms());
    t.get(11..19).unwrap_or(&t).to_string()
}

fn print_view(view: &BatchView) {
    let b = &view.batch;
    let c = &view.counts;
    let runner = match (b.runner_pid, view.runner_alive) {
        (Some(p), true) => format!("running in process {p}"),
        (Some(p), false) => format!("process {p} is gone"),
        (None, _) => "-".into(),
    };
    output::print_fields(&[
        ("batch", format!("{} ({})", b.name, b.id)),
        ("status", batch_word(b.status)),
        ("file", b.file_path.clone().unwrap_or_else(|| "-".into())),
        ("runner", runner),
        (
            "executor",
            match (b.executor, view.cluster_jobs.as_slice()) {
                (ampsm_core::Executor::Local, _) => "local".to_string(),
                (e, []) => format!("{e} (nothing submitted yet)"),
                (e, jobs) => format!("{e}: job {}", jobs.join(", ")),
            },
        ),
        ("concurrency", b.concurrency.to_string()),
        (
            "spent",
            match b.budget_usd {
                Some(budget) => format!(
                    "${:.4} of a {} budget ({:.0} %)",
                    view.spent_usd,
                    dollars(budget),
                    view.spent_usd.percent_of(budget)
                ),
                None => format!("${:.4} (no budget for the whole batch)", view.spent_usd),
            },
        ),
        (
            "progress",
            format!(
                "{}/{} finished: {} passed, {} failed, {} error, {} timeout, {} aborted; {} running, {} queued; {} merged",
                c.finished(),
                c.total,
                c.passed,
                c.failed,
                c.error,
                c.timeout,
                c.aborted,
                c.running,
                c.queued,
                c.merged
            ),
        ),
        ("created", format_ms(b.created_at)),
    ]);
    if let Some(reason) = &b.stop_reason {
        println!("stopped: {reason}");
    }
    if let Some(note) = &view.note {
        println!("note: {note}");
    }
    let mut t = output::table(&["#", "ITEM", "REPO", "STATUS", "TRIES", "SESSION", "TIME", "NOTE"]);
    for v in &view.items {
        let i = &v.item;
        t.add_row(vec![
            i.seq.to_string(),
            i.item_name.clone(),
            short_path(&i.repo_path),
            format!("{}{}", item_word(i.status), if i.merged { " (merged)" } else { "" }),
            i.attempts.to_string(),
            match (&v.remote, &v.session) {
                // Running on a cluster node: its session there, and the node.
                (Some(r), _) => format!("{} on {}", r.session.as_deref().unwrap_or("-"), r.host),
                (None, Some(s)) => s.name.clone(),
                (None, None) => "-".into(),
            },
            v.duration_ms.map(|d| format!("{:.1}s", d as f64 / 1000.0)).unwrap_or_else(|| "-".into()),
            match (&i.error, &v.remote) {
                (Some(e), _) => one_line(e, 80),
                (None, Some(r)) => r.note(60),
                (None, None) => String::new(),
            },
        ]);
    }
    output::print_table(&t);
}

fn list(json: bool) -> Result<(), CliError> {
    let engine = open_engine()?;
    let rows: Vec<_> = engine
        .batches()?
        .into_iter()
        .map(|(b, counts)| {
            let runner_alive = b.runner_pid.is_some_and(ampsm_engine::process::pid_alive);
            (b, counts, runner_alive)
        })
        .collect();
    if json {
        let docs: Vec<Value> = rows
            .iter()
            .map(|(b, c, alive)| {
                output::json_with(
                    b,
                    vec![
                        ("counts", serde_json::to_value(c).unwrap_or(Value::Null)),
                        ("runner_alive", Value::Bool(*alive)),
                    ],
                )
            })
            .collect();
        return Ok(print_json(&docs)?);
    }
    if rows.is_empty() {
        println!("No batches yet. Start one with: amp-sessions batch start --file batch.yaml");
        return Ok(());
    }
    let now = now_ms();
    let mut t = output::table(&["ID", "NAME", "STATUS", "PASSED", "FINISHED", "RUNNING", "AGE"]);
    for (b, c, alive) in &rows {
        // A batch whose runner died ends failed with items aborted (or one still marked running).
        let interrupted = match b.status {
            BatchStatus::Running => !alive,
            BatchStatus::Failed => c.aborted > 0,
            _ => false,
        };
        let status = if interrupted { "interrupted (resume)".to_string() } else { batch_word(b.status) };
        t.add_row(vec![
            short_id(&b.id).to_string(),
            b.name.clone(),
            status,
            format!("{}/{}", c.passed, c.total),
            format!("{}/{}", c.finished(), c.total),
            c.running.to_string(),
            ampsm_core::time::age(b.created_at, now),
        ]);
    }
    output::print_table(&t);
    Ok(())
}

fn abort(reference: &str, json: bool) -> Result<(), CliError> {
    let mut engine = open_engine()?;
    let r = engine.abort_batch(reference)?;
    if json {
        return Ok(print_json(&r)?);
    }
    if !r.abort.was_active {
        println!(
            "Batch {} ({}) had already ended ({}); nothing to abort.",
            r.name,
            short_id(&r.batch_id),
            r.abort.status
        );
        return Ok(());
    }
    println!(
        "Aborted batch {} ({}) in {:.1}s: {} agent process group(s) stopped, {} queued item(s) marked aborted{}.",
        r.name,
        short_id(&r.batch_id),
        r.abort.took_ms as f64 / 1000.0,
        r.abort.agents_stopped,
        r.abort.queued_aborted,
        if r.abort.running_aborted > 0 {
            format!(", {} interrupted item(s) marked aborted", r.abort.running_aborted)
        } else {
            String::new()
        }
    );
    if r.abort.agents_left > 0 {
        eprintln!("warning: {} agent process group(s) did not stop yet", r.abort.agents_left);
    }
    println!("Continue later with: amp-sessions batch resume {}", short_id(&r.batch_id));
    Ok(())
}

fn export(a: ExportArgs, json: bool) -> Result<(), CliError> {
    let engine = open_engine()?;
    let format = a.format;
    let Some(out) = &a.out else {
        let table = engine.batch_results_table(&a.batch, format)?;
        std::io::stdout().lock().write_all(table.text.as_bytes())?;
        return Ok(());
    };
    let (table, path) = engine.write_batch_results_table(&a.batch, format, out)?;
    if json {
        print_json(&json!({"batch_id": table.batch_id, "out": path, "rows": table.rows}))?;
    } else {
        println!("Wrote {} item(s) of batch {} to {}", table.rows, short_id(&table.batch_id), path.display());
    }
    Ok(())
}

fn clean(reference: &str, json: bool) -> Result<(), CliError> {
    let mut engine = open_engine()?;
    let r = engine.clean_batch(reference)?;
    if json {
        return Ok(print_json(&r)?);
    }
    for folder in &r.cluster_folders {
        println!("removed cluster folder {folder}");
    }
    if r.sessions.is_empty() {
        println!("Batch {} has no sessions left to clean.", short_id(&r.batch_id));
        return Ok(());
    }
    for s in &r.sessions {
        match (&s.error, &s.snapshot) {
            (Some(e), _) => println!("kept    {}: {}", s.name, one_line(e, 200)),
            (None, Some(snap)) => println!(
                "removed {} (unmerged work saved in {snap}; `amp-sessions undo {}` restores it)",
                s.name,
                short_id(&s.session_id)
            ),
            (None, None) => println!("removed {}", s.name),
        }
    }
    let failed = r.sessions.iter().filter(|s| s.error.is_some()).count();
    println!(
        "Cleaned {} of {} session(s) of batch {}.",
        r.sessions.len() - failed,
        r.sessions.len(),
        short_id(&r.batch_id)
    );
    if failed > 0 {
        return Err(CliError::Reported {
            message: format!("{failed} session(s) could not be removed"),
            kind: ampsm_core::ErrorKind::Failed,
        });
    }
    Ok(())
}

fn item_word(status: BatchItemStatus) -> String {
    let padded = format!("{:<7}", status.as_str());
    if !output::color() {
        return padded;
    }
    match status {
        BatchItemStatus::Passed => padded.green().to_string(),
        BatchItemStatus::Failed | BatchItemStatus::Error | BatchItemStatus::Timeout => {
            padded.red().to_string()
        }
        BatchItemStatus::Aborted => padded.yellow().to_string(),
        BatchItemStatus::Running => padded.cyan().to_string(),
        BatchItemStatus::Queued => padded,
    }
}

fn batch_word(status: BatchStatus) -> String {
    let text = status.as_str();
    if !output::color() {
        return text.to_string();
    }
    match status {
        BatchStatus::Completed => text.green().to_string(),
        BatchStatus::Failed => text.red().to_string(),
        BatchStatus::Aborted => text.yellow().to_string(),
        BatchStatus::Running => text.cyan().to_string(),
        BatchStatus::Queued => text.to_string(),
    }
}

fn short_path(path: &str) -> String {
    std::path::Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.to_string())
}

fn one_line(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        format!("{}…", flat.chars().take(max - 1).collect::<String>())
    }
}

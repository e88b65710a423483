//! `amp-sessions bench …`: run SWE-bench instances or a custom suite across agents and models (in the
//! foreground with progress on stderr as results finish and the summary on stdout, or `--detach`ed in the
//! background with a log file), list runs, show one (per agent/model: resolve rate, cost, time, tokens;
//! then every result; `--follow` until it ends), compare two, export one through the export engine, and
//! abort one from any terminal. The work itself is in `ampsm_engine::jobs::bench`.

use crate::commands::{CliError, open_engine};
use crate::output::{self, print_json};
use ampsm_config::bench::BenchAgent;
use ampsm_core::id::short_id;
use ampsm_core::time::{format_ms, now_ms};
use ampsm_core::{BenchResultStatus, BenchRunStatus, dollars};
use ampsm_engine::jobs::AbortTarget;
use ampsm_engine::jobs::bench::{
    BenchComparison, BenchEvent, BenchPlan, BenchView, ConfigSummary, SweBenchOptions,
};
use ampsm_engine::records::{BenchResult, BenchRun};
use ampsm_engine::reports::export::{ExportFormat, ExportRequest};
use ampsm_engine::reports::metrics_error::MetricsError;
use ampsm_engine::{Engine, EngineError};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Run SWE-bench instances (JSONL rows: instance_id, repo, base_commit, problem_statement, test_patch,
    /// FAIL_TO_PASS, PASS_TO_PASS) on local clones; writes predictions.jsonl, evaluates with --test-cmd.
    #[command(name = "swe-bench-lite")]
    SweBenchLite(Box<SweArgs>),
    /// Run a custom suite from YAML: problems × agents (× repeats), each evaluated by its `test:` command.
    Custom(CustomArgs),
    /// List bench runs, newest first.
    List,
    /// Show a run: per agent/model resolve rate, cost, time and tokens, then every result (--follow: until
    /// it ends).
    Show(ShowArgs),
    /// Compare two runs side by side, with the instances resolved in one and not the other.
    Compare(CompareArgs),
    /// Export a run (the run, its results and their sessions) as CSV, JSON or JSONL.
    Export(ExportArgs),
    /// Stop a run from any terminal: running agents are stopped, unstarted results marked aborted.
    Abort(BenchRef),
    /// Go on with a run that stopped (abort, budget, crash): results that did not finish run again, each in
    /// a fresh session; finished results are kept.
    Resume(ResumeArgs),
    /// The background runner started by `--detach` (internal).
    #[command(name = "run-detached", hide = true)]
    RunDetached(BenchRef),
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Run id, unique id prefix, or name.
    pub run: String,
    /// Keep printing result changes until the run ends (JSON lines with --json).
    #[arg(long, short)]
    pub follow: bool,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// Run id, unique id prefix, or name.
    pub run: String,
    /// A new budget in USD for the whole run (what it already spent counts against it).
    #[arg(long, value_name = "USD", allow_negative_numbers = true)]
    pub budget: Option<f64>,
    /// Run in the background; print the run id and return.
    #[arg(long)]
    pub detach: bool,
}

#[derive(Debug, Args)]
pub struct SweArgs {
    /// The dataset: JSONL (one instance per line) or a JSON array.
    #[arg(long)]
    pub dataset: PathBuf,
    /// Only these instance ids (space- or comma-separated).
    #[arg(long, num_args = 1.., value_delimiter = ',')]
    pub instances: Vec<String>,
    /// At most this many instances (after --instances).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Where the repositories are cloned: DIR/<owner>__<name>, DIR/<owner>/<name> or DIR/<name>
    /// (default: AMPSM_HOME/repos).
    #[arg(long)]
    pub repos_dir: Option<PathBuf>,
    /// The agent, or `agent:model`; repeat it to compare agents and models in one run, e.g. `--agent
    /// claude:claude-sonnet-4-5 --agent codex:gpt-5` (default: session.default_agent).
    #[arg(long = "agent", value_name = "AGENT[:MODEL]")]
    pub agents: Vec<String>,
    /// The model of agents given without one (Amp: its mode).
    #[arg(long)]
    pub model: Option<String>,
    /// Results running at once (default 1).
    #[arg(long)]
    pub concurrency: Option<u32>,
    /// Runs of each instance (default 1).
    #[arg(long)]
    pub repeats: Option<u32>,
    /// Limit of each agent run (e.g. 10m; default amp.timeout).
    #[arg(long)]
    pub timeout: Option<String>,
    /// Limit of each evaluation command (default 10m).
    #[arg(long)]
    pub test_timeout: Option<String>,
    /// USD for the whole run: warn at 80 %, stop every agent at 100 %.
    #[arg(long)]
    pub budget: Option<f64>,
    /// Evaluation command run in a clean checkout with the model patch and test_patch applied: `{test}` runs
    /// it once per test id (exit 0 = pass), `{tests}` once with all ids (pytest -rA lines decide).
    #[arg(long)]
    pub test_cmd: Option<String>,
    /// Setup command run in each agent worktree and each evaluation tree before the tests (e.g. "pip
    /// install -e ."; default: repos.<path>.setup, else session.setup; "" for none).
    #[arg(long, value_name = "CMD")]
    pub setup: Option<String>,
    /// Show the agent hints_text too (the leaderboard default is no hints).
    #[arg(long)]
    pub hints: bool,
    /// Where predictions.jsonl and logs go (default AMPSM_HOME/bench/<run id>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Where the results run: local (this machine), slurm (one job array) or kubernetes (one Indexed
    /// Job); settings in `executors.<name>.*` of the config.
    #[arg(long, value_parser = crate::commands::batch::executor_arg())]
    pub executor: Option<ampsm_core::Executor>,
    /// Check everything and print the plan; run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Run in the background; print the run id and return.
    #[arg(long)]
    pub detach: bool,
}

#[derive(Debug, Args)]
pub struct CustomArgs {
    /// The bench YAML (name, agents, problems, concurrency, repeats, timeout, budget).
    #[arg(long, short)]
    pub config: PathBuf,
    /// USD for the whole run (overrides `budget:`).
    #[arg(long)]
    pub budget: Option<f64>,
    /// Where predictions.jsonl and logs go (default AMPSM_HOME/bench/<run id>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Where the results run: local (this machine), slurm (one job array) or kubernetes (one Indexed
    /// Job); settings in `executors.<name>.*` of the config.
    #[arg(long, value_parser = crate::commands::batch::executor_arg())]
    pub executor: Option<ampsm_core::Executor>,
    /// Check everything and print the plan; run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Run in the background; print the run id and return.
    #[arg(long)]
    pub detach: bool,
}

#[derive(Debug, Args)]
pub struct BenchRef {
    /// Run id, unique id prefix, or name.
    pub run: String,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The first run (id, unique id prefix, or name).
    pub a: String,
    /// The second run.
    pub b: String,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Run id, unique id prefix, or name.
    pub run: String,
    #[arg(long, default_value = "json", value_parser = crate::commands::batch::export_format_arg())]
    pub format: ExportFormat,
    /// A file (JSON, JSONL; default stdout) or a folder (CSV, required).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs one `bench` subcommand.
pub fn run(cmd: BenchCommand, json: bool) -> Result<(), CliError> {
    match cmd {
        BenchCommand::SweBenchLite(a) => swe(*a, json),
        BenchCommand::Custom(a) => custom(a, json),
        BenchCommand::List => list(json),
        BenchCommand::Show(a) => show(&a.run, a.follow, json),
        BenchCommand::Compare(a) => compare(&a.a, &a.b, json),
        BenchCommand::Export(a) => export(a, json),
        BenchCommand::Abort(a) => abort(&a.run, json),
        BenchCommand::Resume(a) => resume(&a.run, a.budget, a.detach, json),
        BenchCommand::RunDetached(a) => run_detached(&a.run),
    }
}

fn duration_arg(flag: &str, v: Option<&String>) -> Result<Option<Duration>, CliError> {
    let Some(text) = v else { return Ok(None) };
    match super::duration_flag(flag, text)? {
        d if d.is_zero() => Err(CliError::Usage { message: format!("{flag}: must be longer than zero") }),
        d => Ok(Some(d)),
    }
}

fn budget_arg(v: Option<f64>) -> Result<Option<f64>, CliError> {
    match v {
        Some(b) if !ampsm_core::Money::from_usd(b).is_positive() => {
            Err(EngineError::from(MetricsError::BadBudget(b)).into())
        }
        other => Ok(other),
    }
}

fn swe(a: SweArgs, json: bool) -> Result<(), CliError> {
    let mut engine = open_engine()?;
    let options = SweBenchOptions {
        dataset: a.dataset,
        instances: a.instances.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
        limit: a.limit,
        repos_dir: a.repos_dir,
        agents: a.agents.iter().map(|text| BenchAgent::from_text(text)).collect(),
        model: a.model,
        concurrency: a.concurrency,
        repeats: a.repeats,
        timeout: duration_arg("--timeout", a.timeout.as_ref())?,
        test_timeout: duration_arg("--test-timeout", a.test_timeout.as_ref())?,
        budget_usd: budget_arg(a.budget)?,
        test_cmd: a.test_cmd.filter(|c| !c.trim().is_empty()),
        setup: a.setup,
        hints: a.hints,
        out: a.out,
    };
    let mut plan = engine.plan_swe_bench(&options)?;
    if let Some(e) = a.executor {
        plan.executor = e;
    }
    start(&mut engine, plan, a.dry_run, a.detach, json)
}

fn custom(a: CustomArgs, json: bool) -> Result<(), CliError> {
    let mut engine = open_engine()?;
    let mut plan = engine.plan_custom_bench(&a.config, budget_arg(a.budget)?)?;
    plan.out_dir = a.out;
    if let Some(e) = a.executor {
        plan.executor = e;
    }
    start(&mut engine, plan, a.dry_run, a.detach, json)
}

/// Prints the plan (dry run), or records the run and runs it here with progress on stderr (or in the
/// background with `--detach`).
fn start(
    engine: &mut Engine,
    plan: BenchPlan,
    dry_run: bool,
    detach_flag: bool,
    json: bool,
) -> Result<(), CliError> {
    for w in &plan.warnings {
        eprintln!("warning: {w}");
    }
    if dry_run {
        return print_plan(&plan, json);
    }
    let run = engine.create_bench_run(&plan)?;
    eprintln!(
        "Bench run {} ({}): {} results = {} problems × {} agent configs × {} repeats, concurrency {}{}",
        run.name,
        short_id(&run.id),
        plan.result_count(),
        plan.problems.len(),
        plan.agents.len(),
        plan.repeats,
        plan.concurrency,
        plan.budget_usd.map(|b| format!(", budget {}", dollars(b))).unwrap_or_default()
    );
    if detach_flag {
        return detach(engine, &run, json);
    }
    run_here(engine, &run, json)
}

fn resume(reference: &str, budget: Option<f64>, detach_flag: bool, json: bool) -> Result<(), CliError> {
    let mut engine = open_engine()?;
    let run = engine.prepare_bench_resume(reference, budget_arg(budget)?)?;
    let counts = engine.bench_counts(&run.id)?;
    eprintln!(
        "Resuming bench run {} ({}): {} of {} results left to run{}",
        run.name,
        short_id(&run.id),
        counts.queued,
        counts.total,
        run.budget_usd
            .map(|b| format!(
                ", budget {} (${:.4} spent)",
                dollars(b),
                engine.bench_spend_usd(&run.id).unwrap_or_default()
            ))
            .unwrap_or_default()
    );
    if detach_flag {
        return detach(&mut engine, &run, json);
    }
    run_here(&mut engine, &run, json)
}

/// Runs a recorded run in this process with progress on stderr, then prints its view.
fn run_here(engine: &mut Engine, run: &BenchRun, json: bool) -> Result<(), CliError> {
    let observer = Arc::new(|e: &BenchEvent| {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{}", event_line(e));
    });
    let interrupt = engine.abort_on_signal(AbortTarget::Bench(run.id.clone()));
    let outcome = engine.run_bench(&run.id, observer);
    drop(interrupt);
    let outcome = outcome?;
    let engine = open_engine()?;
    let view = engine.bench_view(&run.id)?;
    if json {
        let mut doc = serde_json::to_value(&view).map_err(std::io::Error::other)?;
        if let Value::Object(m) = &mut doc {
            m.insert("predictions".into(), json!(outcome.predictions));
            m.insert("took_ms".into(), json!(outcome.took_ms));
        }
        print_json(&doc)?;
    } else {
        print_view(&view);
        if let Some(p) = &outcome.predictions {
            println!("Predictions: {p}");
        }
    }
    match outcome.status {
        BenchRunStatus::Completed => Ok(()),
        status => Err(CliError::Reported {
            message: format!(
                "bench run {} {status}{} ({} of {} resolved)",
                short_id(&run.id),
                outcome.stop_reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default(),
                outcome.counts.resolved,
                outcome.counts.total
            ),
            kind: ampsm_core::ErrorKind::Failed,
        }),
    }
}

/// One progress line of the runner.
fn event_line(e: &BenchEvent) -> String {
    match e {
        BenchEvent::Started { result, session } => format!(
            "started  {} with {}{} (session {session})",
            result.instance_id,
            result.config_label(),
            repeat_text(result)
        ),
        BenchEvent::Finished { result, done, total } => format!("[{done}/{total}] {}", finished_line(result)),
    }
}

/// Starts the background runner of a recorded run (which this process holds as its runner until then) and
/// waits until it has taken the run over (at most 10 s). When it does not, the engine ends the run as
/// `failed` so that it can be resumed.
fn detach(engine: &mut Engine, run: &BenchRun, json: bool) -> Result<(), CliError> {
    let short = short_id(&run.id).to_string();
    let command = crate::commands::batch::runner_command(&["bench", "run-detached", &run.id])?;
    let d = engine.start_runner(&AbortTarget::Bench(run.id.clone()), &command)?;
    let (pid, log) = (d.runner_pid, d.log);
    if json {
        print_json(&json!({
            "id": run.id,
            "name": run.name,
            "runner_pid": pid,
            "log": log,
            "out_dir": run.out_dir,
            "detached": true,
        }))?;
    } else {
        println!("{}", run.id);
        eprintln!(
            "Bench run {} ({short}) runs in the background (process {pid}, log {}).",
            run.name,
            log.display()
        );
        eprintln!("Follow it with: amp-sessions bench show {short} --follow");
        eprintln!("Stop it with:   amp-sessions bench abort {short}");
    }
    Ok(())
}

/// The hidden `bench run-detached <id>`: a new session without a terminal, progress lines to the log file.
/// It takes the run over from the process that started it (`--detach`), then runs it to the end.
fn run_detached(run_id: &str) -> Result<(), CliError> {
    ampsm_engine::jobs::detach_from_terminal()?;
    let mut engine = open_engine()?;
    let stamp = || format_ms(now_ms());
    if let Err(e) = engine.take_over_bench_run(run_id) {
        println!("{} bench run {run_id} not started: {e}", stamp());
        return Err(e.into());
    }
    println!("{} runner {} started bench run {run_id}", stamp(), std::process::id());
    let observer = Arc::new(|e: &BenchEvent| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{} {}", format_ms(now_ms()), event_line(e));
        let _ = out.flush();
    });
    let interrupt = engine.abort_on_signal(AbortTarget::Bench(run_id.to_string()));
    let outcome = engine.run_bench(run_id, observer);
    drop(interrupt);
    match outcome {
        Ok(o) => {
            println!(
                "{} bench run {run_id} ended: {}{} ({} resolved, {} ms)",
                stamp(),
                o.status,
                o.stop_reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default(),
                o.counts.resolved_text(),
                o.took_ms
            );
            if let Some(p) = &o.predictions {
                println!("{} predictions: {p}", stamp());
            }
            Ok(())
        }
        Err(e) => {
            println!("{} bench run {run_id} stopped: {e}", stamp());
            Err(e.into())
        }
    }
}

fn repeat_text(r: &BenchResult) -> String {
    if r.repeat > 0 { format!(" (repeat {})", r.repeat + 1) } else { String::new() }
}

fn finished_line(r: &BenchResult) -> String {
    let took = r.duration_ms.map(|d| format!(" in {:.1}s", d as f64 / 1000.0)).unwrap_or_default();
    let cost = r.cost_usd.map(|c| format!(", ${c:.4}")).unwrap_or_default();
    let note = r.error.as_deref().map(|e| format!(": {}", one_line(e, 160))).unwrap_or_default();
    format!(
        "{:<13} {} with {}{}{took}{cost}{note}",
        r.status,
        r.instance_id,
        r.config_label(),
        repeat_text(r)
    )
}

fn print_plan(plan: &BenchPlan, json: bool) -> Result<(), CliError> {
    if json {
        let problems: Vec<Value> = plan
            .problems
            .iter()
            .map(|p| {
                json!({
                    "id": p.id, "repo": p.repo, "base": p.base, "base_commit": p.base_commit,
                    "test": p.test, "test_from": p.test_from, "log_format": p.log_format.as_str(),
                    "has_test_patch": p.test_patch.is_some(), "setup": p.setup,
                    "fail_to_pass": p.fail_to_pass.len(), "pass_to_pass": p.pass_to_pass.len(),
                })
            })
            .collect();
        return Ok(print_json(&json!({
            "kind": plan.kind, "name": plan.name, "source": plan.source, "results": plan.result_count(),
            "concurrency": plan.concurrency, "repeats": plan.repeats, "timeout_ms": plan.timeout_ms,
            "test_timeout_ms": plan.test_timeout_ms, "budget_usd": plan.budget_usd, "agents": plan.agents,
            "problems": problems, "out_dir": plan.out_dir, "dry_run": true,
        }))?);
    }
    println!(
        "Plan of bench {:?} ({}): {} results = {} problems × {} agent configs × {} repeats, concurrency {}, \
         timeout {}{} (dry run: nothing was started)",
        plan.name,
        plan.source.display(),
        plan.result_count(),
        plan.problems.len(),
        plan.agents.len(),
        plan.repeats,
        plan.concurrency,
        ampsm_core::duration::format_duration(Duration::from_millis(plan.timeout_ms)),
        plan.budget_usd.map(|b| format!(", budget {}", dollars(b))).unwrap_or_default()
    );
    println!("Agents: {}", plan.agents.iter().map(|a| a.label()).collect::<Vec<_>>().join(", "));
    let mut t = output::table(&["PROBLEM", "REPO", "BASE", "SETUP", "TEST", "HIDDEN TESTS"]);
    for p in &plan.problems {
        t.add_row(vec![
            p.id.clone(),
            p.repo.display().to_string(),
            if p.base == p.base_commit { short_id(&p.base_commit).to_string() } else { p.base.clone() },
            p.setup.clone().unwrap_or_else(|| "-".into()),
            match (&p.test, &p.test_from) {
                (Some(t), Some(from)) if from == "built-in" => format!("{t} (built-in)"),
                (Some(t), _) => t.clone(),
                (None, _) => "- (not evaluated)".into(),
            },
            match (&p.test_patch, p.fail_to_pass.len() + p.pass_to_pass.len()) {
                (None, 0) => "-".into(),
                (Some(_), 0) => "test_patch".into(),
                (_, n) => format!("test_patch, {n} tests"),
            },
        ]);
    }
    output::print_table(&t);
    Ok(())
}

fn money(v: Option<ampsm_core::Money>) -> String {
    ampsm_engine::reports::export::usd(v)
}

fn rate(s: &ConfigSummary) -> String {
    match s.resolve_rate {
        Some(r) => format!("{:.1}%", r * 100.0),
        None => "not evaluated".into(),
    }
}

fn secs(ms: Option<f64>) -> String {
    ms.map(|m| format!("{:.1}s", m / 1000.0)).unwrap_or_else(|| "-".into())
}

/// Per agent/model figures; with repeats also the spread of the per-repeat rates, pass@k (resolved by
/// some repeat) and all-k (resolved by every repeat).
fn summary_table(summary: &[ConfigSummary]) {
    let repeats = summary.iter().any(|s| s.repeats.is_some());
    let mut header = vec!["AGENT/MODEL", "RESULTS", "RESOLVED", "RATE"];
    if repeats {
        header.extend(["± SD", "PASS@K", "ALL K"]);
    }
    header.extend(["COST", "MEAN COST", "MEAN TIME", "TOKENS"]);
    let mut t = output::table(&header);
    let pct = |v: f64| format!("{:.1}%", v * 100.0);
    for s in summary {
        let mut row = vec![s.label.clone(), s.results.to_string(), s.resolved.to_string(), rate(s)];
        if repeats {
            match &s.repeats {
                Some(st) => row.extend([
                    pct(st.rate_stddev),
                    format!("{} (k={})", pct(st.pass_at_k), st.k),
                    pct(st.pass_all_k),
                ]),
                None => row.extend(["-".to_string(), "-".to_string(), "-".to_string()]),
            }
        }
        row.extend([
            money(s.cost_usd),
            if s.cost_usd.is_some() { money(s.mean_cost_usd) } else { "unknown".into() },
            secs(s.mean_duration_ms),
            s.total_tokens.to_string(),
        ]);
        t.add_row(row);
    }
    output::print_table(&t);
}

fn print_view(v: &BenchView) {
    let r = &v.run;
    let runner = match (r.runner_pid, v.runner_alive) {
        (Some(p), true) => format!("running in process {p}"),
        (Some(p), false) => format!("process {p} is gone"),
        (None, _) => "-".into(),
    };
    let c = &v.counts;
    let took = match (r.started_at, r.ended_at) {
        (Some(a), Some(b)) => format!("{:.1}s", (b - a) as f64 / 1000.0),
        (Some(a), None) => format!("{:.1}s so far", (now_ms() - a) as f64 / 1000.0),
        _ => "-".into(),
    };
    output::print_fields(&[
        ("bench run", format!("{} ({})", r.name, r.id)),
        ("kind", r.kind.clone()),
        ("status", r.status.to_string()),
        ("runner", runner),
        ("results", c.summary()),
        ("budget", r.budget_usd.map(dollars).unwrap_or_else(|| "-".into())),
        ("output", r.out_dir.clone().unwrap_or_else(|| "-".into())),
        ("created", format_ms(r.created_at)),
        ("took", took),
    ]);
    if let Some(note) = &v.note {
        println!("note: {note}");
    }
    println!();
    summary_table(&v.summary);
    println!();
    let mut t = output::table(&[
        "#",
        "INSTANCE",
        "AGENT/MODEL",
        "REP",
        "STATUS",
        "AGENT RUN",
        "TESTS",
        "TIME",
        "COST",
        "SESSION",
        "NOTE",
    ]);
    for rv in &v.results {
        let x = &rv.result;
        t.add_row(vec![
            x.seq.to_string(),
            x.instance_id.clone(),
            rv.label.clone(),
            (x.repeat + 1).to_string(),
            x.status.to_string(),
            x.agent_outcome.map_or_else(|| "-".into(), |o| o.to_string()),
            match (x.tests_passed, x.tests_failed) {
                (Some(p), Some(f)) => format!("{p}/{}", p + f),
                _ => "-".into(),
            },
            x.duration_ms.map(|d| format!("{:.1}s", d as f64 / 1000.0)).unwrap_or_else(|| "-".into()),
            if x.agent_outcome.is_some() { money(x.cost_usd) } else { "-".into() },
            rv.session_name.clone().unwrap_or_else(|| "-".into()),
            x.error.as_deref().map(|e| one_line(e, 70)).unwrap_or_default(),
        ]);
    }
    output::print_table(&t);
}

fn show(reference: &str, follow_flag: bool, json: bool) -> Result<(), CliError> {
    let engine = open_engine()?;
    let view = engine.bench_view(reference)?;
    if follow_flag {
        return follow(engine, view, json);
    }
    if json {
        return Ok(print_json(&view)?);
    }
    print_view(&view);
    Ok(())
}

/// Whether a followed run will change no more: it ended (a run whose runner died is ended by
/// `settle_dead_runners`), or nothing runs it.
fn settled(view: &BenchView) -> bool {
    view.run.is_finished() || view.run.runner_pid.is_none()
}

/// `bench show --follow`: the full view once, then one line per result change until the run ends, then
/// its summary. With --json: one document per line, `{"event": "result", …}` per change (every result at
/// first) and `{"event": "run", …}` (the whole view) at the end.
fn follow(mut engine: Engine, mut view: BenchView, json: bool) -> Result<(), CliError> {
    let mut seen: HashMap<String, (BenchResultStatus, Option<String>)> = HashMap::new();
    let mut first = true;
    loop {
        let mut out = std::io::stdout().lock();
        for rv in &view.results {
            let r = &rv.result;
            let key = (r.status, r.session_id.clone());
            if seen.get(&r.id) == Some(&key) {
                continue;
            }
            seen.insert(r.id.clone(), key);
            if json {
                let line = json!({"event": "result", "run_id": view.run.id, "result": rv});
                writeln!(out, "{line}")?;
            } else if !first {
                let line = if r.status == BenchResultStatus::Running {
                    format!(
                        "started  {} with {}{}{}",
                        r.instance_id,
                        rv.label,
                        repeat_text(r),
                        rv.session_name.as_deref().map(|s| format!(" (session {s})")).unwrap_or_default()
                    )
                } else if r.is_finished() {
                    finished_line(r)
                } else {
                    format!("{:<13} {} with {}{}", r.status, r.instance_id, rv.label, repeat_text(r))
                };
                writeln!(out, "{} {line}", time_of_day())?;
            }
        }
        if first && !json {
            drop(out);
            print_view(&view);
            println!();
            out = std::io::stdout().lock();
        }
        first = false;
        out.flush()?;
        drop(out);
        if settled(&view) {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
        engine.settle_dead_runners()?;
        view = engine.bench_view(&view.run.id)?;
    }
    if json {
        let mut doc = serde_json::to_value(&view).map_err(std::io::Error::other)?;
        if let Value::Object(m) = &mut doc {
            m.insert("event".into(), Value::String("run".into()));
        }
        println!("{doc}");
        return Ok(());
    }
    let r = &view.run;
    println!("Bench run {} ({}) {}: {}", r.name, short_id(&r.id), r.status, view.counts.summary());
    if let Some(note) = &view.note {
        println!("note: {note}");
    }
    summary_table(&view.summary);
    Ok(())
}

fn time_of_day() -> String {
    let t = format_ms(now_ms());
    t.get(11..19).unwrap_or(&t).to_string()
}

fn list(json: bool) -> Result<(), CliError> {
    let engine = open_engine()?;
    let rows: Vec<_> = engine
        .bench_runs()?
        .into_iter()
        .map(|(r, counts)| {
            let runner_alive = r.runner_pid.is_some_and(ampsm_engine::process::pid_alive);
            (r, counts, runner_alive)
        })
        .collect();
    if json {
        let docs: Vec<Value> = rows
            .iter()
            .map(|(r, c, alive)| {
                output::json_with(
                    r,
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
        println!("No bench runs yet. Start one with: amp-sessions bench custom --config bench.yaml");
        return Ok(());
    }
    let now = now_ms();
    let mut t = output::table(&["ID", "NAME", "KIND", "STATUS", "RESOLVED", "FINISHED", "AGE", "NOTE"]);
    for (r, c, _) in &rows {
        t.add_row(vec![
            short_id(&r.id).to_string(),
            r.name.clone(),
            r.kind.clone(),
            r.status.to_string(),
            c.resolved_text(),
            format!("{}/{}", c.finished(), c.total),
            ampsm_core::time::age(r.created_at, now),
            r.stop_reason.as_deref().map(|s| one_line(s, 70)).unwrap_or_default(),
        ]);
    }
    output::print_table(&t);
    Ok(())
}

fn compare(a: &str, b: &str, json: bool) -> Result<(), CliError> {
    let engine = open_engine()?;
    let cmp = engine.compare_bench(a, b)?;
    if json {
        return Ok(print_json(&compare_json(&cmp))?);
    }
    let (ra, rb) = (&cmp.a.run, &cmp.b.run);
    println!("A: {} ({}), {}", ra.name, short_id(&ra.id), ra.status);
    println!("B: {} ({}), {}", rb.name, short_id(&rb.id), rb.status);
    let mut t = output::table(&[
        "AGENT/MODEL",
        "A RESOLVED",
        "A RATE",
        "A COST",
        "A MEAN TIME",
        "B RESOLVED",
        "B RATE",
        "B COST",
        "B MEAN TIME",
    ]);
    let cells = |s: &Option<ConfigSummary>| -> Vec<String> {
        match s {
            Some(s) => vec![
                format!("{}/{}", s.resolved, s.results),
                rate(s),
                money(s.cost_usd),
                secs(s.mean_duration_ms),
            ],
            None => vec!["-".into(); 4],
        }
    };
    for (label, sa, sb) in &cmp.rows {
        let mut row = vec![label.clone()];
        row.extend(cells(sa));
        row.extend(cells(sb));
        t.add_row(row);
    }
    output::print_table(&t);
    let list = |ids: &[String]| if ids.is_empty() { "none".to_string() } else { ids.join(", ") };
    println!("Resolved only in A: {}", list(&cmp.only_a));
    println!("Resolved only in B: {}", list(&cmp.only_b));
    Ok(())
}

fn compare_json(c: &BenchComparison) -> Value {
    let brief = |v: &BenchView| {
        json!({ "id": v.run.id, "name": v.run.name, "kind": v.run.kind, "status": v.run.status,
                "counts": v.counts, "summary": v.summary })
    };
    json!({
        "a": brief(&c.a),
        "b": brief(&c.b),
        "configs": c.rows.iter().map(|(l, a, b)| json!({"label": l, "a": a, "b": b})).collect::<Vec<_>>(),
        "resolved_only_in_a": c.only_a,
        "resolved_only_in_b": c.only_b,
    })
}

fn export(a: ExportArgs, json: bool) -> Result<(), CliError> {
    let engine = open_engine()?;
    let run = engine.resolve_bench_run(&a.run)?;
    let format = a.format;
    if format == ExportFormat::Csv && a.out.is_none() {
        return Err(EngineError::from(MetricsError::CsvNeedsFolder).into());
    }
    let to_stdout = a.out.is_none();
    let req =
        ExportRequest { sessions: Vec::new(), batch: None, bench: Some(run.id.clone()), format, out: a.out };
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    let summary = engine.export(&req, &mut lock)?;
    drop(lock);
    if to_stdout {
        return Ok(());
    }
    if json {
        return Ok(print_json(&summary)?);
    }
    println!(
        "Exported bench run {} ({} results, {} sessions) to {}",
        short_id(&run.id),
        summary.rows.get("bench_results").copied().unwrap_or(0),
        summary.sessions,
        summary.out.as_deref().unwrap_or("stdout")
    );
    Ok(())
}

fn abort(reference: &str, json: bool) -> Result<(), CliError> {
    let mut engine = open_engine()?;
    let r = engine.abort_bench(reference)?;
    if json {
        return Ok(print_json(&r)?);
    }
    if !r.abort.was_active {
        println!(
            "Bench run {} ({}) had already ended ({}); nothing to abort.",
            r.name,
            short_id(&r.run_id),
            r.abort.status
        );
        return Ok(());
    }
    println!(
        "Aborted bench run {} ({}) in {:.1}s: {} agent process group(s) stopped, {} unstarted result(s) marked \
         aborted{}.",
        r.name,
        short_id(&r.run_id),
        r.abort.took_ms as f64 / 1000.0,
        r.abort.agents_stopped,
        r.abort.queued_aborted,
        if r.abort.running_aborted > 0 {
            format!(", {} interrupted result(s) marked aborted", r.abort.running_aborted)
        } else {
            String::new()
        }
    );
    if r.abort.agents_left > 0 {
        eprintln!("warning: {} agent process group(s) did not stop yet", r.abort.agents_left);
    }
    Ok(())
}

fn one_line(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        format!("{}…", flat.chars().take(max - 1).collect::<String>())
    }
}

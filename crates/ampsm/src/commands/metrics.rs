//! Metrics commands: `metrics <s>`, `timeline <s>`, `export`, `report <s>` and `budget <s>`.

use super::{CliError, open_engine};
use crate::output::{self, heading, print_fields, print_json};
use ampsm_core::dollars;
use ampsm_core::time::format_ms;
use ampsm_engine::reports::export::{ExportFormat, ExportRequest, usd};
use ampsm_engine::reports::metrics::SessionMetrics;
use ampsm_engine::reports::metrics_error::MetricsError;
use ampsm_engine::{BudgetChange, EngineError, SessionBudget};
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum MetricsCommand {
    /// Tokens/s, cost/min, tokens and cost by model, tool usage, lines changed (from git), errors and
    /// iterations of a session.
    Metrics(MetricsArgs),
    /// Iterations, commits, status changes, merges and snapshots of a session, in time order.
    Timeline(MetricsArgs),
    /// Export sessions, batches and benchmark runs as JSON, CSV (one file per table) or JSONL
    /// (layout: docs/exports.md).
    Export(ExportArgs),
    /// A Markdown report of a session: summary, models, tools, files, iterations, errors, timeline.
    Report(ReportArgs),
    /// Show, set or clear a session's cost budget (warning at 80 %, the agent stopped at 100 %).
    Budget(BudgetArgs),
}

#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// Session id, unique id prefix, or name.
    pub session: String,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A session to export (id, prefix or name); repeat for several. With no --session, --batch or
    /// --bench, everything is exported.
    #[arg(long = "session", value_name = "S")]
    pub sessions: Vec<String>,
    /// A batch (id, prefix or name): the batch, its items and their sessions.
    #[arg(long, value_name = "B")]
    pub batch: Option<String>,
    /// A benchmark run (id, prefix or name): the run, its results and their sessions.
    #[arg(long, value_name = "R")]
    pub bench: Option<String>,
    /// json, csv or jsonl (default: the first of telemetry.export_formats).
    #[arg(long)]
    pub format: Option<String>,
    /// Output file (json, jsonl; default: stdout) or folder (csv, required).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Session id, unique id prefix, or name.
    pub session: String,
    /// Write the Markdown to this file instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BudgetArgs {
    /// Session id, unique id prefix, or name.
    pub session: String,
    /// The new budget in USD.
    #[arg(allow_negative_numbers = true)]
    pub usd: Option<f64>,
    /// Remove the budget.
    #[arg(long, conflicts_with = "usd")]
    pub clear: bool,
}

/// Runs one metrics command.
pub fn run(cmd: MetricsCommand, json: bool) -> Result<(), CliError> {
    match cmd {
        MetricsCommand::Metrics(a) => metrics(&a.session, json),
        MetricsCommand::Timeline(a) => timeline(&a.session, json),
        MetricsCommand::Export(a) => export(a, json),
        MetricsCommand::Report(a) => report(a, json),
        MetricsCommand::Budget(a) => budget(a, json),
    }
}

fn ms_text(ms: i64) -> String {
    if ms < 10_000 { format!("{ms} ms") } else { format!("{:.1} s", ms as f64 / 1000.0) }
}

fn metrics(session: &str, json: bool) -> Result<(), CliError> {
    let engine = open_engine()?;
    let m = engine.metrics(session)?;
    if json {
        return Ok(print_json(&m)?);
    }
    print_metrics(&m);
    Ok(())
}

fn print_metrics(m: &SessionMetrics) {
    let s = &m.session;
    heading(&format!("Metrics of {} ({})", s.name, &s.id[..s.id.len().min(12)]));
    let mut fields = vec![
        (
            "agent",
            format!("{}{}", s.agent, s.model.as_deref().map(|x| format!(" ({x})")).unwrap_or_default()),
        ),
        ("status", output::status_word(s.status)),
        ("iterations", m.iterations_count.to_string()),
        ("agent time", ms_text(m.agent_time_ms)),
        (
            "tokens",
            format!(
                "{} in, {} out, {} cache read, {} cache write",
                m.tokens.input, m.tokens.output, m.tokens.cache_read, m.tokens.cache_write
            ),
        ),
        (
            "tokens/s",
            m.tokens_per_sec
                .map(|v| format!("{v:.1} output tokens per second of agent time"))
                .unwrap_or_else(|| "-".into()),
        ),
        (
            "cost",
            match m.cost.usd {
                Some(c) => format!("${c:.4} ({})", m.cost.source.replace('_', " ")),
                None => format!(
                    "unknown (${:.4} known; {} usage row(s) have no price: set pricing.<model> in the config)",
                    m.cost.known_usd, m.cost.unpriced_rows
                ),
            },
        ),
        (
            "cost/min",
            m.cost_per_min
                .map(|c| format!("${c:.4} per minute of agent time"))
                .unwrap_or_else(|| "unknown".into()),
        ),
    ];
    if !m.cost.price_entries.is_empty() {
        fields.push(("prices", m.cost.price_entries.join(", ")));
    }
    if let Some(b) = &m.budget {
        fields.push((
            "budget",
            format!(
                "${:.4} of {} spent ({:.0} %){}",
                b.spent_usd,
                dollars(b.budget_usd),
                b.percent,
                if b.stops > 0 { format!(", stopped {} time(s)", b.stops) } else { String::new() }
            ),
        ));
    }
    fields.push((
        "files (git)",
        match &m.files.note {
            Some(n) => n.clone(),
            None => format!(
                "{} changed, +{} −{} ({})",
                m.files.files_changed,
                m.files.lines_added,
                m.files.lines_removed,
                m.files.range.as_deref().unwrap_or("-")
            ),
        },
    ));
    fields.push((
        "errors",
        format!(
            "{} failed iteration(s), {} error/retry event(s) from the agent",
            m.errors.failed_iterations, m.errors.agent_errors
        ),
    ));
    print_fields(&fields);

    if !m.models.is_empty() {
        println!();
        heading("Tokens by model");
        let mut t =
            output::table(&["MODEL", "INPUT", "OUTPUT", "CACHE READ", "CACHE WRITE", "COST", "PRICE"]);
        for mm in &m.models {
            t.add_row(vec![
                mm.model.clone().unwrap_or_else(|| "(not reported)".into()),
                mm.tokens.input.to_string(),
                mm.tokens.output.to_string(),
                mm.tokens.cache_read.to_string(),
                mm.tokens.cache_write.to_string(),
                usd(mm.cost_usd),
                if mm.price_entries.is_empty() {
                    mm.cost_source.replace('_', " ")
                } else {
                    mm.price_entries.join(", ")
                },
            ]);
        }
        output::print_table(&t);
    }
    if !m.tools.is_empty() {
        println!();
        let denied =
            if m.tool_calls_denied > 0 { format!(", {} denied", m.tool_calls_denied) } else { String::new() };
        heading(&format!("Tools ({} calls{denied})", m.tool_calls));
        let mut t =
            output::table(&["TOOL", "CALLS", "OK", "FAILED", "DENIED", "NO RESULT", "SUCCESS", "AVG", "P95"]);
        for tm in &m.tools {
            t.add_row(vec![
                tm.name.clone(),
                tm.count.to_string(),
                tm.succeeded.to_string(),
                tm.failed.to_string(),
                tm.denied.to_string(),
                tm.no_result.to_string(),
                tm.success_rate.map(|r| format!("{:.0} %", r * 100.0)).unwrap_or_else(|| "-".into()),
                tm.avg_duration_ms.map(|d| ms_text(d.round() as i64)).unwrap_or_else(|| "-".into()),
                tm.p95_duration_ms.map(ms_text).unwrap_or_else(|| "-".into()),
            ]);
        }
        output::print_table(&t);
    }
    if !m.files.files.is_empty() {
        println!();
        heading("Files");
        let mut t = output::table(&["FILE", "+", "−"]);
        for f in &m.files.files {
            let path = match &f.old_path {
                Some(old) => format!("{old} → {}", f.path),
                None => f.path.clone(),
            };
            t.add_row(vec![
                path,
                f.added.map(|a| a.to_string()).unwrap_or_else(|| "bin".into()),
                f.removed.map(|a| a.to_string()).unwrap_or_else(|| "bin".into()),
            ]);
        }
        output::print_table(&t);
    }
    if !m.iterations.is_empty() {
        println!();
        heading("Iterations");
        let mut t = output::table(&[
            "#", "STARTED", "DURATION", "OUTCOME", "EXIT", "TESTS", "TOKENS", "COST", "COMMIT",
        ]);
        for it in &m.iterations {
            t.add_row(vec![
                it.seq.to_string(),
                format_ms(it.started_at),
                it.duration_ms.map(ms_text).unwrap_or_else(|| "running".into()),
                it.outcome.map_or_else(|| "running".into(), |o| o.to_string()),
                match (it.exit_code, it.signal) {
                    (Some(c), _) => c.to_string(),
                    (None, Some(sig)) => format!("signal {sig}"),
                    _ => "-".into(),
                },
                match (&it.test, it.test_duration_ms) {
                    (Some(t), Some(d)) => format!("{t} ({})", ms_text(d)),
                    (Some(t), None) => t.clone(),
                    _ => "-".into(),
                },
                it.tokens.total.to_string(),
                usd(it.cost_usd),
                it.commit_sha
                    .as_deref()
                    .map(|c| c[..c.len().min(12)].to_string())
                    .unwrap_or_else(|| "-".into()),
            ]);
        }
        output::print_table(&t);
    }
    if !m.errors.iteration_errors.is_empty() || !m.errors.events.is_empty() {
        println!();
        heading("Errors");
        for (seq, e) in &m.errors.iteration_errors {
            println!("iteration {seq}: {e}");
        }
        for e in &m.errors.events {
            println!(
                "{}  {}{}: {}",
                format_ms(e.ts),
                e.kind,
                if e.fatal { " (fatal)" } else { "" },
                e.message
            );
        }
        if m.errors.agent_errors > m.errors.events.len() {
            println!(
                "… and {} more (see `amp-sessions logs`)",
                m.errors.agent_errors - m.errors.events.len()
            );
        }
    }
}

fn timeline(session: &str, json: bool) -> Result<(), CliError> {
    let engine = open_engine()?;
    let t = engine.timeline(session)?;
    if json {
        return Ok(print_json(&t)?);
    }
    let mut tbl = output::table(&["TIME", "EVENT", "WHAT"]);
    for e in &t.entries {
        tbl.add_row(vec![format_ms(e.at), e.kind.clone(), e.summary.clone()]);
    }
    output::print_table(&tbl);
    Ok(())
}

fn export(a: ExportArgs, json: bool) -> Result<(), CliError> {
    let engine = open_engine()?;
    let format_text = a
        .format
        .clone()
        .or_else(|| engine.config().telemetry.export_formats.first().cloned())
        .unwrap_or_else(|| "jsonl".into());
    let format: ExportFormat = format_text
        .parse()
        .map_err(|message: String| CliError::Usage { message: format!("--format: {message}") })?;
    if format == ExportFormat::Csv && a.out.is_none() {
        return Err(EngineError::from(MetricsError::CsvNeedsFolder).into());
    }
    let to_stdout = a.out.is_none();
    let req = ExportRequest { sessions: a.sessions, batch: a.batch, bench: a.bench, format, out: a.out };
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    let summary = engine.export(&req, &mut lock)?;
    drop(lock);
    if to_stdout {
        // The export itself is the output.
        return Ok(());
    }
    if json {
        return Ok(print_json(&summary)?);
    }
    let rows: Vec<String> =
        summary.rows.iter().filter(|(_, n)| **n > 0).map(|(t, n)| format!("{t} {n}")).collect();
    println!(
        "Exported {} session(s), {} batch(es), {} benchmark run(s) as {} to {}",
        summary.sessions,
        summary.batches,
        summary.bench_runs,
        format_text.to_ascii_lowercase(),
        summary.out.as_deref().unwrap_or("stdout")
    );
    if !rows.is_empty() {
        println!("rows: {}", rows.join(", "));
    }
    Ok(())
}

fn report(a: ReportArgs, json: bool) -> Result<(), CliError> {
    let engine = open_engine()?;
    let markdown = engine.report_markdown(&a.session)?;
    if let Some(path) = &a.out {
        std::fs::write(path, &markdown)
            .map_err(|source| EngineError::from(MetricsError::Write { path: path.clone(), source }))?;
        if json {
            return Ok(print_json(&serde_json::json!({ "out": path, "bytes": markdown.len() }))?);
        }
        println!("Wrote the report to {}", path.display());
        return Ok(());
    }
    if json {
        return Ok(print_json(&serde_json::json!({ "markdown": markdown }))?);
    }
    std::io::stdout().lock().write_all(markdown.as_bytes())?;
    Ok(())
}

fn budget(a: BudgetArgs, json: bool) -> Result<(), CliError> {
    let mut engine = open_engine()?;
    let change = match (a.usd, a.clear) {
        (Some(v), _) => BudgetChange::Set(v),
        (None, true) => BudgetChange::Clear,
        (None, false) => BudgetChange::Keep,
    };
    let SessionBudget { session: s, spent_usd, unpriced_rows } =
        engine.set_session_budget(&a.session, change)?;
    if json {
        return Ok(print_json(&serde_json::json!({
            "session": s.id,
            "budget_usd": s.budget_usd,
            "spent_usd": spent_usd,
            "unpriced_rows": unpriced_rows,
        }))?);
    }
    let mut fields = vec![
        ("session", format!("{} ({})", s.name, s.id.short())),
        ("budget", s.budget_usd.map(dollars).unwrap_or_else(|| "none".into())),
        ("spent", format!("${spent_usd:.4}")),
    ];
    if unpriced_rows > 0 {
        fields.push(("unpriced", format!("{unpriced_rows} usage row(s) without a price are not counted")));
    }
    print_fields(&fields);
    Ok(())
}

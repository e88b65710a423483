//! `export` (JSON, CSV, JSONL) and `report` (Markdown). The layout of every format is described in
//! `docs/exports.md`; in short:
//!
//! - JSON: one document, `{format, version, exported_at, sessions: [{session, metrics, iterations, events,
//!   tool_calls, token_usage, commits, file_changes, status_changes, merges, snapshots}], batches: [{batch,
//!   items}], bench_runs: [{run, results}]}`.
//! - CSV: one file per table in a folder (RFC 4180, written by the `csv` crate), every file always written
//!   with its stable header, even when it has no rows.
//! - JSONL: one JSON object per line, each with a `type` (`session`, `event`, …); every agent event is a
//!   line of its own.
//!
//! Rows are read with one prepared statement per table and written as they come, so exporting a session
//! with hundreds of thousands of events takes the memory of one row, not of the session. Times are
//! RFC 3339 in UTC with milliseconds; durations stay in milliseconds; booleans are `true`/`false`.

use crate::reports::metrics::SessionMetrics;
use crate::reports::metrics_error::MetricsError;
use crate::{Engine, EngineError};
use ampsm_core::time::{format_ms, now_ms};
use ampsm_core::{IterationOutcome, SessionId};
use ampsm_store::metrics::{
    BATCH_TABLES, BENCH_TABLES, Cell, ExportScope, ExportTable, RunTable, SESSION_TABLES, is_time_column,
};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Version of the export layout (bumped when a field changes meaning or disappears).
pub const EXPORT_VERSION: u32 = 1;

/// Longest text cell in a CSV file: below the 32,767 characters a spreadsheet cell holds and the 131,072
/// of Python's csv module. Longer text is clipped with a marker; JSON and JSONL keep it whole.
pub const CSV_CELL_MAX: usize = 32_000;

/// Columns holding 0/1 that are exported as booleans.
const BOOL_COLUMNS: &[&str] = &[
    "truncated",
    "awaiting_input",
    "success",
    "binary",
    "pushed",
    "abort_requested",
    "merge_on_pass",
    "merged",
    "resolved",
];

/// The per-session metrics summary table of CSV exports.
pub const METRICS_COLUMNS: &[&str] = &[
    "session_id",
    "name",
    "agent",
    "model",
    "status",
    "iterations",
    "agent_time_ms",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "tokens_per_sec",
    "cost_usd",
    "cost_known_usd",
    "cost_source",
    "price_entries",
    "cost_per_min",
    "budget_usd",
    "tool_calls",
    "tool_failures",
    "files_changed",
    "lines_added",
    "lines_removed",
    "failed_iterations",
    "agent_errors",
];

pub use ampsm_core::ExportFormat;

/// What to export. With no session, batch or run named, everything is exported.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub sessions: Vec<String>,
    pub batch: Option<String>,
    pub bench: Option<String>,
    pub format: ExportFormat,
    /// A file (JSON, JSONL; default stdout) or a folder (CSV, required).
    pub out: Option<PathBuf>,
}

/// What an export wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ExportSummary {
    pub format: ExportFormat,
    /// The file or folder written; `None` for stdout.
    pub out: Option<String>,
    /// The files written (CSV: one per table).
    pub files: Vec<String>,
    pub sessions: usize,
    pub batches: usize,
    pub bench_runs: usize,
    /// Rows written per table.
    pub rows: BTreeMap<String, usize>,
}

/// The resolved scope of an export.
struct Scope {
    sessions: Vec<SessionId>,
    batches: Vec<String>,
    bench_runs: Vec<String>,
}

/// Singular record names used as JSONL `type`s.
fn record_type(table: &str) -> &'static str {
    match table {
        "sessions" => "session",
        "iterations" => "iteration",
        "events" => "event",
        "tool_calls" => "tool_call",
        "token_usage" => "token_usage",
        "commits" => "commit",
        "file_changes" => "file_change",
        "status_changes" => "status_change",
        "merges" => "merge",
        "snapshots" => "snapshot",
        "batches" => "batch",
        "batch_items" => "batch_item",
        "bench_runs" => "bench_run",
        "bench_results" => "bench_result",
        _ => "record",
    }
}

impl Engine {
    /// Runs an export; `stdout` receives JSON/JSONL when no `--out` file is given.
    pub fn export(&self, req: &ExportRequest, stdout: &mut dyn Write) -> Result<ExportSummary, EngineError> {
        let scope = self.export_scope(req)?;
        let mut summary = ExportSummary {
            format: req.format,
            out: req.out.as_ref().map(|p| p.display().to_string()),
            files: Vec::new(),
            sessions: scope.sessions.len(),
            batches: scope.batches.len(),
            bench_runs: scope.bench_runs.len(),
            rows: BTreeMap::new(),
        };
        match req.format {
            ExportFormat::Csv => {
                let dir = req.out.clone().ok_or(MetricsError::CsvNeedsFolder)?;
                self.export_csv(&scope, &dir, &mut summary)?;
            }
            ExportFormat::Json | ExportFormat::Jsonl => match &req.out {
                Some(path) => {
                    // Written beside the target and renamed at the end: a failed export never leaves half a
                    // file under the name asked for.
                    let partial = partial_path(path);
                    let file = File::create(&partial).map_err(|source| write_err(&partial, source))?;
                    let mut w = BufWriter::with_capacity(256 * 1024, file);
                    let result = self
                        .export_stream(&scope, req.format, &mut w, &mut summary)
                        .and_then(|_| w.flush().map_err(|e| write_err(path, e).into()));
                    drop(w);
                    if let Err(e) = result {
                        let _ = std::fs::remove_file(&partial);
                        return Err(e);
                    }
                    std::fs::rename(&partial, path).map_err(|source| write_err(path, source))?;
                    summary.files.push(path.display().to_string());
                }
                None => {
                    let mut w = BufWriter::with_capacity(256 * 1024, stdout);
                    self.export_stream(&scope, req.format, &mut w, &mut summary)?;
                    w.flush().map_err(|e| write_err(Path::new("stdout"), e))?;
                }
            },
        }
        Ok(summary)
    }

    fn export_scope(&self, req: &ExportRequest) -> Result<Scope, EngineError> {
        let mut scope = Scope { sessions: Vec::new(), batches: Vec::new(), bench_runs: Vec::new() };
        for reference in &req.sessions {
            let s = self.store.resolve_session(reference, true)?;
            if !scope.sessions.contains(&s.id) {
                scope.sessions.push(s.id);
            }
        }
        if let Some(b) = &req.batch {
            let id = self
                .store
                .resolve_run_id(RunTable::Batches, b)?
                .ok_or_else(|| MetricsError::BatchNotFound(b.clone()))?;
            for s in self.store.batch_session_ids(&id)? {
                if !scope.sessions.contains(&s) {
                    scope.sessions.push(s);
                }
            }
            scope.batches.push(id);
        }
        if let Some(r) = &req.bench {
            let id = self
                .store
                .resolve_run_id(RunTable::BenchRuns, r)?
                .ok_or_else(|| MetricsError::BenchNotFound(r.clone()))?;
            for s in self.store.bench_session_ids(&id)? {
                if !scope.sessions.contains(&s) {
                    scope.sessions.push(s);
                }
            }
            scope.bench_runs.push(id);
        }
        if req.sessions.is_empty() && req.batch.is_none() && req.bench.is_none() {
            scope.sessions = self.store.all_session_ids()?;
            scope.batches = self.store.all_run_ids(RunTable::Batches)?;
            scope.bench_runs = self.store.all_run_ids(RunTable::BenchRuns)?;
        }
        Ok(scope)
    }

    /// JSON or JSONL to `w`.
    fn export_stream(
        &self,
        scope: &Scope,
        format: ExportFormat,
        w: &mut dyn Write,
        summary: &mut ExportSummary,
    ) -> Result<(), EngineError> {
        let target = summary.out.clone().map(PathBuf::from).unwrap_or_else(|| PathBuf::from("stdout"));
        let io = |e: std::io::Error| EngineError::from(write_err(&target, e));
        let json = format == ExportFormat::Json;
        if json {
            write!(
                w,
                "{{\"format\":\"amp-sessions-export\",\"version\":{EXPORT_VERSION},\"exported_at\":\"{}\",\"sessions\":[",
                format_ms(now_ms())
            )
            .map_err(io)?;
        }
        for (i, id) in scope.sessions.iter().enumerate() {
            let metrics = self.metrics(id.as_str())?;
            if json {
                if i > 0 {
                    w.write_all(b",").map_err(io)?;
                }
                w.write_all(b"\n{\"session\":").map_err(io)?;
                self.one_row(&SESSION_TABLES[0], id.as_str(), w, summary, None)?;
                w.write_all(b",\"metrics\":").map_err(io)?;
                serde_json::to_writer(&mut *w, &metrics).map_err(|e| io(e.into()))?;
                for table in &SESSION_TABLES[1..] {
                    write!(w, ",\"{}\":[", table.name).map_err(io)?;
                    self.json_rows(table, &ExportScope::Session(id.to_string()), w, summary, None, ",")?;
                    w.write_all(b"]").map_err(io)?;
                }
                w.write_all(b"}").map_err(io)?;
            } else {
                let scope = ExportScope::Session(id.to_string());
                self.json_rows(&SESSION_TABLES[0], &scope, w, summary, Some("session"), "\n")?;
                w.write_all(b"\n").map_err(io)?;
                w.write_all(b"{\"type\":\"metrics\",\"metrics\":").map_err(io)?;
                serde_json::to_writer(&mut *w, &metrics).map_err(|e| io(e.into()))?;
                w.write_all(b"}\n").map_err(io)?;
                for table in &SESSION_TABLES[1..] {
                    let n = self.json_rows(table, &scope, w, summary, Some(record_type(table.name)), "\n")?;
                    if n > 0 {
                        w.write_all(b"\n").map_err(io)?;
                    }
                }
            }
        }
        for (group, ids, tables, parent_key, child_key) in [
            ("batches", &scope.batches, BATCH_TABLES, "batch", "items"),
            ("bench_runs", &scope.bench_runs, BENCH_TABLES, "run", "results"),
        ] {
            if json {
                write!(w, "],\"{group}\":[").map_err(io)?;
            }
            for (i, id) in ids.iter().enumerate() {
                let scope = match group {
                    "batches" => ExportScope::Batch(id.clone()),
                    _ => ExportScope::Bench(id.clone()),
                };
                if json {
                    if i > 0 {
                        w.write_all(b",").map_err(io)?;
                    }
                    write!(w, "\n{{\"{parent_key}\":").map_err(io)?;
                    self.one_row(&tables[0], id, w, summary, Some(&scope))?;
                    write!(w, ",\"{child_key}\":[").map_err(io)?;
                    self.json_rows(&tables[1], &scope, w, summary, None, ",")?;
                    w.write_all(b"]}").map_err(io)?;
                } else {
                    for table in tables {
                        let n =
                            self.json_rows(table, &scope, w, summary, Some(record_type(table.name)), "\n")?;
                        if n > 0 {
                            w.write_all(b"\n").map_err(io)?;
                        }
                    }
                }
            }
        }
        if json {
            w.write_all(b"]}\n").map_err(io)?;
        }
        Ok(())
    }

    /// Writes the single row of a parent table (a session, batch or run) as a JSON object, `null` if gone.
    fn one_row(
        &self,
        table: &ExportTable,
        id: &str,
        w: &mut dyn Write,
        summary: &mut ExportSummary,
        scope: Option<&ExportScope>,
    ) -> Result<(), EngineError> {
        let scope = scope.cloned().unwrap_or_else(|| ExportScope::Session(id.to_string()));
        let n = self.json_rows(table, &scope, w, summary, None, ",")?;
        if n == 0 {
            w.write_all(b"null").map_err(|e| write_err(Path::new("export"), e))?;
        }
        Ok(())
    }

    /// Writes the rows of `table` in `scope` as JSON objects separated by `sep`; returns how many.
    fn json_rows(
        &self,
        table: &ExportTable,
        scope: &ExportScope,
        w: &mut dyn Write,
        summary: &mut ExportSummary,
        type_tag: Option<&str>,
        sep: &str,
    ) -> Result<usize, EngineError> {
        let mut first = true;
        let n = self.store.export_rows(table, scope, |cells| -> Result<(), EngineError> {
            if !first {
                w.write_all(sep.as_bytes()).map_err(|e| write_err(Path::new("export"), e))?;
            }
            first = false;
            write_json_row(w, table, cells, type_tag).map_err(|e| write_err(Path::new("export"), e))?;
            Ok(())
        })?;
        *summary.rows.entry(table.name.to_string()).or_default() += n;
        Ok(n)
    }

    /// One CSV file per table in `dir`.
    fn export_csv(&self, scope: &Scope, dir: &Path, summary: &mut ExportSummary) -> Result<(), EngineError> {
        if dir.is_file() {
            return Err(MetricsError::OutIsFile { path: dir.to_path_buf() }.into());
        }
        std::fs::create_dir_all(dir).map_err(|source| write_err(dir, source))?;
        let all: Vec<&ExportTable> = SESSION_TABLES.iter().chain(BATCH_TABLES).chain(BENCH_TABLES).collect();
        let mut writers: BTreeMap<&str, (PathBuf, csv::Writer<BufWriter<File>>)> = BTreeMap::new();
        for table in &all {
            let path = dir.join(format!("{}.csv", table.name));
            let mut wr = csv_writer(&path)?;
            wr.write_record(table.columns).map_err(|e| csv_err(&path, e))?;
            writers.insert(table.name, (path, wr));
        }
        let metrics_path = dir.join("session_metrics.csv");
        let mut metrics_writer = csv_writer(&metrics_path)?;
        metrics_writer.write_record(METRICS_COLUMNS).map_err(|e| csv_err(&metrics_path, e))?;

        let mut record: Vec<String> = Vec::new();
        let mut write_table = |engine: &Engine,
                               table: &ExportTable,
                               scope: &ExportScope,
                               summary: &mut ExportSummary|
         -> Result<(), EngineError> {
            let Some((path, wr)) = writers.get_mut(table.name) else { return Ok(()) };
            let n = engine.store.export_rows(table, scope, |cells| -> Result<(), EngineError> {
                record.clear();
                for (col, cell) in table.columns.iter().zip(cells) {
                    record.push(csv_cell(col, cell));
                }
                wr.write_record(&record).map_err(|e| csv_err(path, e))?;
                Ok(())
            })?;
            *summary.rows.entry(table.name.to_string()).or_default() += n;
            Ok(())
        };
        for id in &scope.sessions {
            let s_scope = ExportScope::Session(id.to_string());
            for table in SESSION_TABLES {
                write_table(self, table, &s_scope, summary)?;
            }
            let m = self.metrics(id.as_str())?;
            metrics_writer.write_record(metrics_record(&m)).map_err(|e| csv_err(&metrics_path, e))?;
            *summary.rows.entry("session_metrics".into()).or_default() += 1;
        }
        for id in &scope.batches {
            for table in BATCH_TABLES {
                write_table(self, table, &ExportScope::Batch(id.clone()), summary)?;
            }
        }
        for id in &scope.bench_runs {
            for table in BENCH_TABLES {
                write_table(self, table, &ExportScope::Bench(id.clone()), summary)?;
            }
        }
        for (_, (path, mut wr)) in writers {
            wr.flush().map_err(|e| write_err(&path, e))?;
            summary.files.push(path.display().to_string());
        }
        metrics_writer.flush().map_err(|e| write_err(&metrics_path, e))?;
        summary.files.push(metrics_path.display().to_string());
        Ok(())
    }

    /// `report <s>`: the session's metrics and timeline as Markdown.
    pub fn report_markdown(&self, reference: &str) -> Result<String, EngineError> {
        let m = self.metrics(reference)?;
        let t = self.timeline(reference)?;
        Ok(render_markdown(&m, &t))
    }
}

fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".partial");
    path.with_file_name(name)
}

fn write_err(path: &Path, source: std::io::Error) -> MetricsError {
    MetricsError::Write { path: path.to_path_buf(), source }
}

fn csv_err(path: &Path, e: csv::Error) -> MetricsError {
    write_err(path, std::io::Error::other(e.to_string()))
}

fn csv_writer(path: &Path) -> Result<csv::Writer<BufWriter<File>>, MetricsError> {
    let file = File::create(path).map_err(|source| write_err(path, source))?;
    // RFC 4180: comma separated, CRLF line ends, fields quoted when they hold a comma, quote or line break.
    Ok(csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(BufWriter::with_capacity(64 * 1024, file)))
}

fn is_bool_column(col: &str) -> bool {
    BOOL_COLUMNS.contains(&col)
}

/// One value as CSV text.
fn csv_cell(col: &str, cell: &Cell) -> String {
    match cell {
        Cell::Null => String::new(),
        Cell::Int(i) if is_bool_column(col) => (if *i != 0 { "true" } else { "false" }).to_string(),
        Cell::Int(i) if is_time_column(col) => format_ms(*i),
        Cell::Int(i) => i.to_string(),
        Cell::Real(r) => r.to_string(),
        Cell::Text(t) => csv_text(t),
    }
}

/// A text cell of a CSV file: clipped to [`CSV_CELL_MAX`] characters and marked when it looks like a
/// formula. Shared by every CSV the program writes.
pub fn csv_text(t: &str) -> String {
    guard_formula(clip_cell(t))
}

/// Text that a spreadsheet would take for a formula (it starts with `=`, `+`, `-`, `@`, a tab or a
/// carriage return) gets a leading `'`, so that it is shown as the text it is and never run: prompts, tool
/// output and commit subjects come from agents, and a cell like `=HYPERLINK(…)` must not become a live link
/// or a call. JSON and JSONL keep the text as it is.
fn guard_formula(t: String) -> String {
    if t.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{t}") } else { t }
}

/// Clips text longer than [`CSV_CELL_MAX`] characters, saying so in the cell.
fn clip_cell(t: &str) -> String {
    if t.len() <= CSV_CELL_MAX {
        return t.to_string();
    }
    let chars = t.chars().count();
    if chars <= CSV_CELL_MAX {
        return t.to_string();
    }
    let mut out: String = t.chars().take(CSV_CELL_MAX - 100).collect();
    out.push_str(&format!("…[clipped: {chars} characters; the JSON and JSONL exports keep the whole text]"));
    out
}

/// One row as a JSON object (with a `type` first for JSONL).
fn write_json_row(
    w: &mut dyn Write,
    table: &ExportTable,
    cells: &[Cell],
    type_tag: Option<&str>,
) -> std::io::Result<()> {
    w.write_all(b"{")?;
    let mut first = true;
    if let Some(t) = type_tag {
        write!(w, "\"type\":\"{t}\"")?;
        first = false;
    }
    for (col, cell) in table.columns.iter().zip(cells) {
        if !first {
            w.write_all(b",")?;
        }
        first = false;
        write!(w, "\"{col}\":")?;
        match cell {
            Cell::Null => w.write_all(b"null")?,
            Cell::Int(i) if is_bool_column(col) => w.write_all(if *i != 0 { b"true" } else { b"false" })?,
            Cell::Int(i) if is_time_column(col) => write!(w, "\"{}\"", format_ms(*i))?,
            Cell::Int(i) => write!(w, "{i}")?,
            Cell::Real(r) if r.is_finite() => serde_json::to_writer(&mut *w, r)?,
            Cell::Real(_) => w.write_all(b"null")?,
            // The normalized events are JSON already: embed them as JSON, not as a string.
            Cell::Text(t)
                if *col == "normalized" && serde_json::from_str::<serde::de::IgnoredAny>(t).is_ok() =>
            {
                w.write_all(t.as_bytes())?
            }
            Cell::Text(t) => serde_json::to_writer(&mut *w, t)?,
        }
    }
    w.write_all(b"}")
}

fn opt_num(v: Option<f64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

fn metrics_record(m: &SessionMetrics) -> Vec<String> {
    let tool_failures: usize = m.tools.iter().map(|t| t.failed).sum();
    vec![
        m.session.id.clone(),
        m.session.name.clone(),
        m.session.agent.clone(),
        m.session.model.clone().unwrap_or_default(),
        m.session.status.to_string(),
        m.iterations_count.to_string(),
        m.agent_time_ms.to_string(),
        m.tokens.input.to_string(),
        m.tokens.output.to_string(),
        m.tokens.cache_read.to_string(),
        m.tokens.cache_write.to_string(),
        m.tokens.reasoning.to_string(),
        opt_num(m.tokens_per_sec),
        // Unknown cost stays visibly unknown.
        m.cost.usd.map(|c| c.to_string()).unwrap_or_else(|| "unknown".into()),
        m.cost.known_usd.to_string(),
        m.cost.source.clone(),
        m.cost.price_entries.join(" "),
        m.cost_per_min.map(|c| c.to_string()).unwrap_or_else(|| "unknown".into()),
        m.budget.as_ref().map(|b| b.budget_usd.to_string()).unwrap_or_default(),
        m.tool_calls.to_string(),
        tool_failures.to_string(),
        m.files.files_changed.to_string(),
        m.files.lines_added.to_string(),
        m.files.lines_removed.to_string(),
        m.errors.failed_iterations.to_string(),
        m.errors.agent_errors.to_string(),
    ]
}

/// `$0.1234`, or `unknown`.
pub fn usd(v: Option<impl Into<f64>>) -> String {
    let v: Option<f64> = v.map(Into::into);
    v.map(|c| format!("${c:.4}")).unwrap_or_else(|| "unknown".into())
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn render_markdown(m: &SessionMetrics, t: &crate::reports::metrics::Timeline) -> String {
    let mut o = String::new();
    let s = &m.session;
    o.push_str(&format!("# Session report: {}\n\n", md_escape(&s.name)));
    o.push_str(&format!(
        "- Session: `{}`\n- Agent: {}{}\n- Branch: `{}` (base `{}`)\n- Status: {}\n- Generated: {}\n\n",
        s.id,
        s.agent,
        s.model.as_deref().map(|x| format!(" ({x})")).unwrap_or_default(),
        s.branch,
        s.base_branch,
        s.status,
        format_ms(now_ms())
    ));
    o.push_str("## Summary\n\n| Metric | Value |\n|---|---|\n");
    let rows: Vec<(&str, String)> = vec![
        ("Iterations", m.iterations_count.to_string()),
        ("Agent time", format!("{:.1} s", m.agent_time_ms as f64 / 1000.0)),
        (
            "Tokens",
            format!(
                "{} in, {} out, {} cache read, {} cache write",
                m.tokens.input, m.tokens.output, m.tokens.cache_read, m.tokens.cache_write
            ),
        ),
        ("Output tokens/s", m.tokens_per_sec.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into())),
        ("Cost", format!("{} ({})", usd(m.cost.usd), m.cost.source.replace('_', " "))),
        ("Cost/min", m.cost_per_min.map(|v| format!("${v:.4}")).unwrap_or_else(|| "unknown".into())),
        (
            "Files changed (git)",
            format!("{} (+{} −{})", m.files.files_changed, m.files.lines_added, m.files.lines_removed),
        ),
        ("Tool calls", m.tool_calls.to_string()),
        (
            "Errors",
            format!(
                "{} failed iteration(s), {} agent error/retry event(s)",
                m.errors.failed_iterations, m.errors.agent_errors
            ),
        ),
    ];
    for (k, v) in rows {
        o.push_str(&format!("| {k} | {} |\n", md_escape(&v)));
    }
    if let Some(b) = &m.budget {
        o.push_str(&format!(
            "| Budget | ${:.4} of {} spent ({:.0} %), {} stop(s) |\n",
            b.spent_usd,
            ampsm_core::dollars(b.budget_usd),
            b.percent,
            b.stops
        ));
    }
    if !m.cost.price_entries.is_empty() {
        o.push_str(&format!("\nPrices: {}\n", m.cost.price_entries.join(", ")));
    }
    o.push_str("\n## Tokens by model\n\n| Model | Input | Output | Cache read | Cache write | Cost | Source |\n|---|---:|---:|---:|---:|---:|---|\n");
    for mm in &m.models {
        o.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            md_escape(mm.model.as_deref().unwrap_or("(not reported)")),
            mm.tokens.input,
            mm.tokens.output,
            mm.tokens.cache_read,
            mm.tokens.cache_write,
            usd(mm.cost_usd),
            if mm.price_entries.is_empty() { mm.cost_source.clone() } else { mm.price_entries.join(", ") }
        ));
    }
    o.push_str(
        "\n## Tools\n\n| Tool | Calls | Success rate | Avg ms | p95 ms |\n|---|---:|---:|---:|---:|\n",
    );
    for tm in &m.tools {
        o.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            md_escape(&tm.name),
            tm.count,
            tm.success_rate.map(|r| format!("{:.0} %", r * 100.0)).unwrap_or_else(|| "-".into()),
            tm.avg_duration_ms.map(|d| format!("{d:.0}")).unwrap_or_else(|| "-".into()),
            tm.p95_duration_ms.map(|d| d.to_string()).unwrap_or_else(|| "-".into()),
        ));
    }
    o.push_str(&format!("\n## Files (git diff --numstat {})\n\n", m.files.range.as_deref().unwrap_or("-")));
    if let Some(note) = &m.files.note {
        o.push_str(&format!("{note}\n"));
    } else {
        o.push_str("| File | + | − |\n|---|---:|---:|\n");
        for f in &m.files.files {
            o.push_str(&format!(
                "| {} | {} | {} |\n",
                md_escape(&f.path),
                f.added.map(|a| a.to_string()).unwrap_or_else(|| "bin".into()),
                f.removed.map(|a| a.to_string()).unwrap_or_else(|| "bin".into())
            ));
        }
    }
    o.push_str("\n## Iterations\n\n| # | Outcome | Duration | Exit | Tests | Cost | Commit |\n|---:|---|---:|---:|---|---:|---|\n");
    for it in &m.iterations {
        o.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            it.seq,
            it.outcome.map_or("running", IterationOutcome::as_str),
            it.duration_ms.map(|d| format!("{:.1} s", d as f64 / 1000.0)).unwrap_or_else(|| "-".into()),
            it.exit_code.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
            it.test.as_deref().unwrap_or("-"),
            usd(it.cost_usd),
            it.commit_sha
                .as_deref()
                .map(|c| format!("`{}`", &c[..c.len().min(12)]))
                .unwrap_or_else(|| "-".into()),
        ));
    }
    if !m.errors.iteration_errors.is_empty() || !m.errors.events.is_empty() {
        o.push_str("\n## Errors\n\n");
        for (seq, e) in &m.errors.iteration_errors {
            o.push_str(&format!("- iteration {seq}: {}\n", md_escape(e)));
        }
        for e in &m.errors.events {
            o.push_str(&format!("- {} {}: {}\n", format_ms(e.ts), e.kind, md_escape(&e.message)));
        }
    }
    o.push_str("\n## Timeline\n\n");
    for e in &t.entries {
        o.push_str(&format!("- {} **{}** {}\n", format_ms(e.at), e.kind, md_escape(&e.summary)));
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_cells_are_clipped_with_a_marker() {
        let long = "é".repeat(CSV_CELL_MAX + 10);
        let c = clip_cell(&long);
        assert!(c.chars().count() <= CSV_CELL_MAX);
        assert!(c.contains("clipped: 32010 characters"));
        assert_eq!(clip_cell("short"), "short");
    }

    #[test]
    fn text_that_looks_like_a_formula_is_shown_as_text() {
        let text = |t: &str| csv_cell("prompt", &Cell::Text(t.to_string()));
        assert_eq!(text("=HYPERLINK(\"http://x\")"), "'=HYPERLINK(\"http://x\")");
        assert_eq!(text("+1"), "'+1");
        assert_eq!(text("--- FAIL: x"), "'--- FAIL: x");
        assert_eq!(text("@sum"), "'@sum");
        assert_eq!(text("\tx"), "'\tx");
        assert_eq!(text("plain = fine"), "plain = fine");
        assert_eq!(text(""), "");
        // Numbers are numbers, negative ones too.
        assert_eq!(csv_cell("exit_code", &Cell::Int(-1)), "-1");
    }

    #[test]
    fn cells_render_times_booleans_and_nulls() {
        assert_eq!(csv_cell("ts", &Cell::Int(0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(csv_cell("success", &Cell::Int(1)), "true");
        assert_eq!(csv_cell("cost_usd", &Cell::Null), "");
        assert_eq!(csv_cell("duration_ms", &Cell::Int(42)), "42");
    }
}

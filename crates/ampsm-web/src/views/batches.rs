//! Batches: the list, starting one from YAML (pasted or a file path, with an optional budget for the
//! whole batch) on a background thread of the server with `run_batch` (the runner behind `batch start`),
//! its live progress and per-item results, abort (`batch abort`), resume with an optional new budget
//! (`batch resume`), the results table (`batch export`), clean (`batch clean`), and exports.

use crate::error::WebError;
use crate::state::AppState;
use crate::views::layout::{
    self, Page, Section, csrf, error_line, executor_note, ms_text, notice_line, remote_cell, short, status,
};
use crate::views::sessions::{Notice, notice_text};
use crate::views::{YamlSource, budget_field, export, live_mark, live_mark_now, yaml_source};
use ampsm_engine::jobs::batch::{BatchPlan, BatchView, run_batch};
use ampsm_engine::records::{Batch, BatchCounts};
use ampsm_engine::reports::export::ExportFormat;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use std::sync::Arc;

/// The start form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct StartForm {
    pub yaml: String,
    pub file: String,
    /// "on": only show the plan.
    pub dry_run: Option<String>,
    /// A budget in USD for the whole batch, over the file's `budget:` (empty: the file's).
    pub budget: String,
}

/// The resume form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ResumeForm {
    /// A new budget in USD for the whole batch (empty: keep its budget).
    pub budget: String,
}

/// `?format=` of the results table.
#[derive(Debug, Deserialize)]
pub struct TableQuery {
    pub format: String,
}

/// `GET /batches`.
pub async fn list(State(state): State<AppState>, Query(n): Query<Notice>) -> Result<Response, WebError> {
    render(state, StartForm::default(), None, notice_text(n.done.as_deref()), html! {}, StatusCode::OK).await
}

async fn render(
    state: AppState,
    form: StartForm,
    error: Option<String>,
    notice: Option<&str>,
    extra: Markup,
    code: StatusCode,
) -> Result<Response, WebError> {
    let st = state.clone();
    let (mark, batches) = state.engine(move |e| Ok((live_mark_now(&st, "batches"), e.batches()?))).await?;
    let body = html! {
        h1 { "Batches" }
        (live_mark(mark.as_deref()))
        (notice_line(notice))
        div #batches-live data-live { (batch_table(&batches)) }
        h2 #start { "Start a batch" }
        (error_line(error.as_deref()))
        (extra)
        form method="post" action="/batches" #batch-form {
            (csrf(&state))
            p { label for="file" { "YAML file path " } input #file name="file" size="60" value=(form.file) placeholder="/path/to/batch.yaml"; }
            p { label for="yaml" { "or paste the YAML" } br;
                textarea #yaml name="yaml" rows="12" placeholder="name: \"…\"\nrepos:\n  - path: /abs/path/to/repo\nitems:\n  - name: task\n    prompt: \"…\"" { (form.yaml) } }
            p.dim { "Pasted YAML has no folder: write repository paths as absolute paths. Nothing is saved to disk; the text is kept with the batch." }
            p { label for="budget" { "Budget for the whole batch, USD " } input #budget name="budget" inputmode="decimal" size="8" value=(form.budget);
                span.dim { " (over the file's " code { "budget:" } "; warn at 80 %, stop at 100 %)" } }
            p { label { input type="checkbox" name="dry_run" checked[form.dry_run.is_some()]; " only show the plan" } " "
                button.primary type="submit" { "Start batch" } }
        }
    };
    let page = layout::page(
        &state,
        Page { title: "Batches", section: Section::Batches, live: Some("batches".into()), body },
    );
    Ok((code, page).into_response())
}

fn counts_text(c: &BatchCounts) -> String {
    format!(
        "{}/{} done · {} passed · {} failed · {} error · {} timeout · {} aborted · {} running · {} queued",
        c.finished(),
        c.total,
        c.passed,
        c.failed,
        c.error,
        c.timeout,
        c.aborted,
        c.running,
        c.queued
    )
}

fn batch_table(batches: &[(Batch, BatchCounts)]) -> Markup {
    html! {
        @if batches.is_empty() { p.dim { "No batches yet." } }
        @else {
            table #batches {
                tr { th { "Name" } th { "Status" } th { "Progress" } th { "Created" } }
                @for (b, c) in batches {
                    tr { td { a href={ "/batches/" (b.id) } { (b.name) } " " span.dim { (short(&b.id)) } }
                         td { (status(b.status.as_str())) } td { (counts_text(c)) } td.dim { (layout::time_text(b.created_at)) } }
                }
            }
        }
    }
}

/// `POST /batches`: plan (and unless dry run, create and run) a batch.
pub async fn start(State(state): State<AppState>, Form(f): Form<StartForm>) -> Result<Response, WebError> {
    let file = f.file.clone();
    let yaml = f.yaml.clone();
    let dry = f.dry_run.is_some();
    let budget = budget_field(&f.budget);
    let planned = state
        .engine(move |e| {
            let mut plan = match yaml_source(&file, &yaml, "batch")? {
                YamlSource::File(path) => e.plan_batch(&path)?,
                YamlSource::Pasted(text) => e.plan_batch_text(&text)?,
            };
            if let Some(b) = budget? {
                plan.budget_usd = Some(ampsm_core::Money::from_usd(b));
            }
            if dry {
                return Ok((plan, None));
            }
            let batch = e.create_batch(&plan)?;
            Ok((plan, Some(batch)))
        })
        .await;
    match planned {
        Ok((plan, None)) => {
            let extra = plan_view(&plan);
            render(state, f, None, None, extra, StatusCode::OK).await
        }
        Ok((_, Some(batch))) => {
            spawn_batch(&state, batch.id.clone());
            Ok(Redirect::to(&format!("/batches/{}?done=batch", batch.id)).into_response())
        }
        Err(e) => {
            let code = e.status();
            render(state, f, Some(e.line()), None, html! {}, code).await
        }
    }
}

fn spawn_batch(state: &AppState, id: String) {
    let (paths, bid) = (state.inner.paths.clone(), id.clone());
    state.spawn_job(
        id,
        |bg| &mut bg.batches,
        move || run_batch(&paths, &bid, Arc::new(|_| {})).map(|_| ()).map_err(WebError::from),
    );
}

fn plan_view(p: &BatchPlan) -> Markup {
    html! {
        div.note #plan {
            b { "Plan of " (p.name) } ": " (p.runs.len()) " run(s) (" (p.items) " item(s) × " (p.repos) " repositor(ies)), concurrency " (p.concurrency)
            @if let Some(b) = p.budget_usd { ", budget " (ampsm_core::dollars(b)) }
            ". Nothing runs in a dry run."
            table {
                tr { th { "#" } th { "Item" } th { "Repository" } th { "Base" } th { "Agent" } th { "Script" } }
                @for r in &p.runs {
                    tr { td { (r.seq) } td { (r.item) } td { (r.repo) } td { (r.base_branch) } td { (r.agent) @if let Some(m) = &r.model { " (" (m) ")" } } td { (r.script.clone().unwrap_or_default()) } }
                }
            }
        }
    }
}

/// `GET /batches/{id}`.
pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(n): Query<Notice>,
) -> Result<Response, WebError> {
    let st = state.clone();
    let (mark, v): (Option<String>, BatchView) = state
        .engine(move |e| {
            let b = e.resolve_batch(&id)?;
            Ok((live_mark_now(&st, &format!("batch:{}", b.id)), e.batch_view(&b.id)?))
        })
        .await?;
    let bid = v.batch.id.clone();
    let body = html! {
        h1 { (v.batch.name) " " span.dim { (short(&bid)) } }
        (live_mark(mark.as_deref()))
        (notice_line(notice_text(n.done.as_deref())))
        div #batch-progress data-live {
            p { (status(v.batch.status.as_str())) " " (counts_text(&v.counts))
                " · spent " (spent_text(&v))
                (executor_note(v.batch.executor, &v.cluster_jobs, "batch-executor")) }
            @if let Some(r) = &v.batch.stop_reason { div.err.warn { "Stopped: " (r) } }
            @if let Some(n) = &v.note { div.err.warn { (n) } }
            @if let Some(f) = state.failure(&bid) { div.err { (f) } }
            @if v.counts.total > 0 {
                progress max=(v.counts.total) value=(v.counts.finished()) style="width:30em" {}
            }
            @if !v.is_settled() {
                form method="post" action={ "/batches/" (bid) "/abort" } {
                    (csrf(&state)) button.danger type="submit" { "Abort batch" }
                }
            } @else if v.counts.queued + v.counts.running + v.counts.aborted > 0 {
                form method="post" action={ "/batches/" (bid) "/resume" } #resume-form {
                    (csrf(&state))
                    label for="resume-budget" { "New budget for the whole batch, USD (empty: keep it)" } " "
                    input #resume-budget name="budget" inputmode="decimal" size="8" value="";
                    " " button.primary type="submit" { "Resume batch" }
                }
            }
            @if v.is_settled() {
                form method="post" action={ "/batches/" (bid) "/clean" } #clean-form {
                    (csrf(&state))
                    button type="submit" { "Clean worktrees" }
                    span.dim { " Removes the sessions' worktrees and branches; unmerged work is snapshotted first." }
                }
            }
            table #items {
                tr { th { "#" } th { "Item" } th { "Repository" } th { "Agent" } th { "Status" } th.n { "Attempts" } th.n { "Duration" } th.n { "Tokens" } th.n { "Cost" } th { "Session" } th { "Error" } }
                @for it in &v.items {
                    tr {
                        td { (it.item.seq) } td { (it.item.item_name) } td { (it.item.repo_path) }
                        td { (it.item.agent) @if let Some(m) = &it.item.model { " (" (m) ")" } }
                        td { (status(it.item.status.as_str())) @if it.item.merged { " " span.badge { "merged" } } }
                        td.n { (it.item.attempts) }
                        td.n { (it.duration_ms.map(ms_text).unwrap_or_default()) }
                        td.n { @if it.item.attempts > 0 { (it.usage.input_tokens + it.usage.output_tokens + it.usage.cache_read_tokens + it.usage.cache_write_tokens) } }
                        td.n.cost { @if it.item.attempts > 0 { (ampsm_engine::reports::export::usd(it.usage.cost_usd)) } }
                        td {
                            @if let Some(r) = &it.remote {
                                (remote_cell(r))
                            } @else if let Some(s) = &it.session {
                                a href={ "/s/" (s.id) } { (s.name) } " " (status(&s.status))
                            }
                        }
                        td { (it.item.error.clone().unwrap_or_default()) }
                    }
                }
            }
        }
        p { "Results table (one row per item): "
            @for f in [ExportFormat::Csv, ExportFormat::Json, ExportFormat::Jsonl] { a href={ "/batches/" (bid) "/results?format=" (f) } { (f) } " " } }
        p { (export::links("batch", &bid)) }
    };
    Ok(layout::page(
        &state,
        Page { title: &v.batch.name, section: Section::Batches, live: Some(format!("batch:{bid}")), body },
    )
    .into_response())
}

/// What the batch spent: known costs, "unknown" when no item's cost is known, and a word when some are
/// unknown (never a partial sum shown as the whole).
fn spent_text(v: &BatchView) -> String {
    let started: Vec<_> = v.items.iter().filter(|i| i.item.attempts > 0).collect();
    let unknown = started.iter().filter(|i| i.usage.cost_usd.is_none()).count();
    let budget = v.batch.budget_usd.map(|b| format!(" of {}", ampsm_core::dollars(b))).unwrap_or_default();
    match unknown {
        0 => format!("${:.4}{budget}", v.spent_usd),
        n if n == started.len() => format!("unknown{budget}"),
        n => format!("${:.4}{budget} (and the unknown cost of {n} item(s))", v.spent_usd),
    }
}

/// `POST /batches/{id}/abort`.
pub async fn abort(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, WebError> {
    let r = state.engine(move |e| Ok(e.abort_batch(&id)?)).await?;
    Ok(Redirect::to(&format!("/batches/{}?done=aborted", r.batch_id)).into_response())
}

/// `POST /batches/{id}/resume`: `batch resume [--budget USD]`, run on a background thread of the server.
pub async fn resume(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(f): Form<ResumeForm>,
) -> Result<Response, WebError> {
    let budget = budget_field(&f.budget)?;
    let batch = state.engine(move |e| Ok(e.prepare_resume(&id, budget)?)).await?;
    spawn_batch(&state, batch.id.clone());
    Ok(Redirect::to(&format!("/batches/{}?done=resumed", batch.id)).into_response())
}

/// `POST /batches/{id}/clean`: `batch clean` (unmerged work is snapshotted before a worktree goes).
pub async fn clean(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, WebError> {
    let r = state.engine(move |e| Ok(e.clean_batch(&id)?)).await?;
    let failed = r.sessions.iter().filter(|s| s.error.is_some()).count();
    if failed > 0 {
        let first = r.sessions.iter().find_map(|s| s.error.clone()).unwrap_or_default();
        state
            .lock()
            .failures
            .insert(r.batch_id.clone(), format!("{failed} session(s) could not be removed: {first}"));
    }
    Ok(Redirect::to(&format!("/batches/{}?done=cleaned", r.batch_id)).into_response())
}

/// `GET /batches/{id}/results?format=csv|json|jsonl`: the results table of `batch export`, as a download.
pub async fn results(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<TableQuery>,
) -> Result<Response, WebError> {
    let format: ExportFormat = q.format.parse().map_err(WebError::BadRequest)?;
    let table = state.engine(move |e| Ok(e.batch_results_table(&id, format)?)).await?;
    let (ext, ctype) = (format.extension(), format.content_type());
    let name = format!("batch-{}-{}.{ext}", ampsm_core::slugify(&table.batch_name), short(&table.batch_id));
    Ok(export::download(table.text.into_bytes(), ctype, &name))
}

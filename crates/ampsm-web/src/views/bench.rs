//! Benchmarks: the runs (`bench list`), starting a custom suite from YAML (pasted or a file path, with an
//! optional budget) on a background thread with `run_bench`, a run's live progress, per-agent/model summary
//! (resolve rate, cost, time) and results (`bench show`), abort, resume with an optional new budget
//! (`bench resume`), the comparison of two runs (`bench compare`) and exports.

use crate::error::WebError;
use crate::state::AppState;
use crate::views::layout::{
    self, Page, Section, csrf, error_line, executor_note, ms_text, notice_line, remote_cell, short, status,
};
use crate::views::sessions::{Notice, notice_text};
use crate::views::{YamlSource, budget_field, export, live_mark, live_mark_now, yaml_source};
use ampsm_config::bench::BenchAgent;
use ampsm_engine::jobs::bench::{
    BenchComparison, BenchPlan, BenchView, ConfigSummary, SweBenchOptions, run_bench,
};
use ampsm_engine::records::{BenchCounts, BenchRun};
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
    pub dry_run: Option<String>,
    /// A budget in USD for the whole run, over the file's `budget:` (empty: the file's).
    pub budget: String,
    /// Where predictions and logs go (empty: AMPSM_HOME/bench/<run id>).
    pub out: String,
}

/// The resume form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ResumeForm {
    /// A new budget in USD for the whole run (empty: keep its budget).
    pub budget: String,
}

/// The SWE-bench Lite form (the fields of `bench swe-bench-lite`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SweForm {
    pub dataset: String,
    /// Instance ids, space- or comma-separated (empty: all).
    pub instances: String,
    pub limit: String,
    pub repos_dir: String,
    /// `agent` or `agent:model`, space- or comma-separated (empty: the default agent).
    pub agents: String,
    pub model: String,
    pub concurrency: String,
    pub repeats: String,
    pub timeout: String,
    pub test_timeout: String,
    pub budget: String,
    pub test_cmd: String,
    pub setup: String,
    pub out: String,
    pub hints: Option<String>,
    pub dry_run: Option<String>,
}

impl SweForm {
    /// The options `plan_swe_bench` takes; a bad field is a one-line error naming it.
    fn options(&self) -> Result<SweBenchOptions, WebError> {
        let text = |v: &str| Some(v.trim().to_string()).filter(|t| !t.is_empty());
        let words = |v: &str| -> Vec<String> {
            v.split([',', ' ', '\n']).map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect()
        };
        fn number<T: std::str::FromStr>(field: &str, v: &str) -> Result<Option<T>, WebError> {
            let v = v.trim();
            if v.is_empty() {
                return Ok(None);
            }
            v.parse()
                .map(Some)
                .map_err(|_| WebError::BadRequest(format!("{field}: {v:?} is not a whole number")))
        }
        let duration = |field: &str, v: &str| -> Result<Option<std::time::Duration>, WebError> {
            let Some(t) = text(v) else { return Ok(None) };
            match ampsm_core::parse_duration(&t) {
                Ok(d) if d.is_zero() => {
                    Err(WebError::BadRequest(format!("{field}: must be longer than zero")))
                }
                Ok(d) => Ok(Some(d)),
                Err(m) => Err(WebError::BadRequest(format!("{field}: {m}"))),
            }
        };
        let Some(dataset) = text(&self.dataset) else {
            return Err(WebError::BadRequest(
                "dataset: give the path of the SWE-bench JSONL or JSON file".into(),
            ));
        };
        Ok(SweBenchOptions {
            dataset: dataset.into(),
            instances: words(&self.instances),
            limit: number("limit", &self.limit)?,
            repos_dir: text(&self.repos_dir).map(Into::into),
            agents: words(&self.agents).iter().map(|a| BenchAgent::from_text(a)).collect(),
            model: text(&self.model),
            concurrency: number("concurrency", &self.concurrency)?,
            repeats: number("repeats", &self.repeats)?,
            timeout: duration("timeout", &self.timeout)?,
            test_timeout: duration("test timeout", &self.test_timeout)?,
            budget_usd: budget_field(&self.budget)?,
            test_cmd: text(&self.test_cmd),
            // Empty means the config's setup for the repository, as when the flag is left out.
            setup: text(&self.setup),
            hints: self.hints.is_some(),
            out: text(&self.out).map(Into::into),
        })
    }
}

/// `?a=…&b=…` of the comparison.
#[derive(Debug, Deserialize)]
pub struct CompareQuery {
    pub a: String,
    pub b: String,
}

fn rate(s: &ConfigSummary) -> String {
    s.resolve_rate.map(|r| format!("{:.0} %", r * 100.0)).unwrap_or_else(|| "-".into())
}

fn money(v: Option<ampsm_core::Money>) -> String {
    ampsm_engine::reports::export::usd(v)
}

fn mean_time(v: Option<f64>) -> String {
    v.map(|ms| ms_text(ms.round() as i64)).unwrap_or_else(|| "-".into())
}

/// `GET /bench`.
pub async fn list(State(state): State<AppState>, Query(n): Query<Notice>) -> Result<Response, WebError> {
    let forms = Forms::default();
    render(state, forms, None, notice_text(n.done.as_deref()), html! {}, StatusCode::OK).await
}

/// The two start forms of the page, as the user filled them, and which one the error is about.
#[derive(Default)]
struct Forms {
    custom: StartForm,
    swe: SweForm,
    /// The error (if any) is about the SWE-bench form.
    swe_failed: bool,
}

async fn render(
    state: AppState,
    forms: Forms,
    error: Option<String>,
    notice: Option<&str>,
    extra: Markup,
    code: StatusCode,
) -> Result<Response, WebError> {
    let st = state.clone();
    let (mark, runs): (Option<String>, Vec<(BenchRun, BenchCounts)>) =
        state.engine(move |e| Ok((live_mark_now(&st, "benches"), e.bench_runs()?))).await?;
    let body = html! {
        h1 { "Benchmarks" }
        (live_mark(mark.as_deref()))
        (notice_line(notice))
        @if runs.is_empty() { p.dim { "No benchmark runs yet." } }
        @else {
            div #bench-runs-live data-live { table #bench-runs {
                tr { th { "Name" } th { "Kind" } th { "Status" } th { "Resolved" } th { "Progress" } th { "Created" } }
                @for (r, c) in &runs {
                    tr { td { a href={ "/bench/" (r.id) } { (r.name) } " " span.dim { (short(&r.id)) } }
                         td { (r.kind) } td { (status(r.status.as_str())) } td { (c.resolved_text()) }
                         td { (c.finished()) "/" (c.total) } td.dim { (layout::time_text(r.created_at)) } }
                }
            } }
            @if runs.len() >= 2 {
                form method="get" action="/bench/compare" #compare-form {
                    "Compare "
                    select name="a" { @for (r, _) in &runs { option value=(r.id) { (r.name) " (" (short(&r.id)) ")" } } }
                    " with "
                    select name="b" { @for (i, (r, _)) in runs.iter().enumerate() { option value=(r.id) selected[i == 1] { (r.name) " (" (short(&r.id)) ")" } } }
                    " " button type="submit" { "Compare" }
                }
            }
        }
        h2 #start { "Start a custom benchmark" }
        @if !forms.swe_failed { (error_line(error.as_deref())) (extra) }
        form method="post" action="/bench" #bench-form {
            (csrf(&state))
            p { label for="file" { "Bench YAML file path " } input #file name="file" size="60" value=(forms.custom.file) placeholder="/path/to/bench.yaml"; }
            p { label for="yaml" { "or paste the YAML" } br;
                textarea #yaml name="yaml" rows="10" placeholder="name: my-suite\nagents: [claude, codex]\nproblems:\n  - id: p1\n    repo: /abs/path/to/repo\n    prompt: \"…\"\n    test: \"make test\"" { (forms.custom.yaml) } }
            p.dim { "Pasted YAML has no folder: write repository and patch paths as absolute paths. Nothing is saved to disk; the plan is kept with the run." }
            p { label for="out" { "Output folder " } input #out name="out" size="50" value=(forms.custom.out) placeholder="(AMPSM_HOME/bench/<run id>)"; }
            p { label for="budget" { "Budget for the whole run, USD " } input #budget name="budget" inputmode="decimal" size="8" value=(forms.custom.budget);
                span.dim { " (over the file's " code { "budget:" } ")" } }
            p { label { input type="checkbox" name="dry_run" checked[forms.custom.dry_run.is_some()]; " only show the plan" } " "
                button.primary type="submit" { "Start benchmark" } }
        }
        h2 #swe { "Start a SWE-bench Lite run" }
        @if forms.swe_failed { (error_line(error.as_deref())) (extra) }
        (swe_form(&state, &forms.swe))
    };
    let page = layout::page(
        &state,
        Page { title: "Benchmarks", section: Section::Benchmarks, live: Some("benches".into()), body },
    );
    Ok((code, page).into_response())
}

/// `POST /bench`: plan a custom bench (and unless dry run, record and run it in the background).
pub async fn start(State(state): State<AppState>, Form(f): Form<StartForm>) -> Result<Response, WebError> {
    let file = f.file.clone();
    let yaml = f.yaml.clone();
    let dry = f.dry_run.is_some();
    let budget = budget_field(&f.budget);
    let out = Some(f.out.trim()).filter(|o| !o.is_empty()).map(std::path::PathBuf::from);
    let planned = state
        .engine(move |e| {
            let mut plan = match yaml_source(&file, &yaml, "bench")? {
                YamlSource::File(path) => e.plan_custom_bench(&path, budget?)?,
                YamlSource::Pasted(text) => e.plan_custom_bench_text(&text, budget?)?,
            };
            plan.out_dir = out;
            if dry {
                return Ok((plan, None));
            }
            let run = e.create_bench_run(&plan)?;
            Ok((plan, Some(run)))
        })
        .await;
    match planned {
        Ok((plan, None)) => {
            let extra = plan_view(&plan);
            render(state, Forms { custom: f, ..Forms::default() }, None, None, extra, StatusCode::OK).await
        }
        Ok((_, Some(run))) => {
            spawn_run(&state, run.id.clone());
            Ok(Redirect::to(&format!("/bench/{}?done=bench", run.id)).into_response())
        }
        Err(e) => {
            let code = e.status();
            render(state, Forms { custom: f, ..Forms::default() }, Some(e.line()), None, html! {}, code).await
        }
    }
}

/// `POST /bench/swe`: plan a SWE-bench Lite run (as `bench swe-bench-lite`), and unless dry run, record it
/// and run it on a background thread of the server.
pub async fn start_swe(State(state): State<AppState>, Form(f): Form<SweForm>) -> Result<Response, WebError> {
    let options = f.options();
    let dry = f.dry_run.is_some();
    let planned = state
        .engine(move |e| {
            let plan = e.plan_swe_bench(&options?)?;
            if dry {
                return Ok((plan, None));
            }
            let run = e.create_bench_run(&plan)?;
            Ok((plan, Some(run)))
        })
        .await;
    let forms = |swe: SweForm| Forms { swe, swe_failed: true, ..Forms::default() };
    match planned {
        Ok((plan, None)) => render(state, forms(f), None, None, plan_view(&plan), StatusCode::OK).await,
        Ok((_, Some(run))) => {
            spawn_run(&state, run.id.clone());
            Ok(Redirect::to(&format!("/bench/{}?done=bench", run.id)).into_response())
        }
        Err(e) => {
            let code = e.status();
            render(state, forms(f), Some(e.line()), None, html! {}, code).await
        }
    }
}

/// The SWE-bench Lite form, with what the user typed.
fn swe_form(state: &AppState, f: &SweForm) -> Markup {
    let field = |id: &str, label: &str, value: &str, size: u32, hint: &str| {
        html! { label for=(id) { (label) } div { input id=(id) name=(id) size=(size) value=(value); @if !hint.is_empty() { " " span.dim { (hint) } } } }
    };
    html! {
        form.grid method="post" action="/bench/swe" #swe-form {
            (csrf(state))
            (field("dataset", "Dataset", &f.dataset, 60, "JSONL (one instance per line) or a JSON array"))
            (field("instances", "Instances", &f.instances, 60, "ids, space- or comma-separated (empty: all)"))
            (field("limit", "At most", &f.limit, 6, "instances"))
            (field("repos_dir", "Repositories", &f.repos_dir, 60, "clones as DIR/<owner>__<name> (empty: AMPSM_HOME/repos)"))
            (field("agents", "Agents", &f.agents, 60, "agent or agent:model, space-separated (empty: the default agent)"))
            (field("model", "Model", &f.model, 30, "for agents given without one"))
            (field("concurrency", "Concurrency", &f.concurrency, 6, "results at once (default 1)"))
            (field("repeats", "Repeats", &f.repeats, 6, "runs of each instance (default 1)"))
            (field("timeout", "Agent timeout", &f.timeout, 8, "e.g. 10m"))
            (field("test_timeout", "Test timeout", &f.test_timeout, 8, "each evaluation (default 10m)"))
            (field("budget", "Budget, USD", &f.budget, 8, "for the whole run: warn at 80 %, stop at 100 %"))
            (field("test_cmd", "Test command", &f.test_cmd, 60, "{test} once per test id, or {tests} once with all"))
            (field("setup", "Setup command", &f.setup, 60, "in each worktree and evaluation tree"))
            (field("out", "Output folder", &f.out, 60, "predictions.jsonl and logs (empty: AMPSM_HOME/bench/<id>)"))
            label for="hints" { "Hints" }
            div { input #hints type="checkbox" name="hints" checked[f.hints.is_some()]; " show the agent the instance's hints_text" }
            span {}
            div { label { input type="checkbox" name="dry_run" checked[f.dry_run.is_some()]; " only show the plan" } " "
                  button.primary type="submit" { "Start SWE-bench Lite" } }
        }
    }
}

fn spawn_run(state: &AppState, id: String) {
    let (paths, rid) = (state.inner.paths.clone(), id.clone());
    state.spawn_job(
        id,
        |bg| &mut bg.benches,
        move || run_bench(&paths, &rid, Arc::new(|_| {})).map(|_| ()).map_err(WebError::from),
    );
}

fn plan_view(p: &BenchPlan) -> Markup {
    html! {
        div.note #plan {
            b { "Plan of " (p.name) } ": " (p.result_count()) " result(s) = " (p.problems.len()) " problem(s) × "
            (p.agents.len()) " agent config(s) × " (p.repeats) " repeat(s), concurrency " (p.concurrency)
            @if let Some(b) = p.budget_usd { ", budget " (ampsm_core::dollars(b)) }
            ". Nothing runs in a dry run."
            @for w in &p.warnings { div.dim { "warning: " (w) } }
            ul { @for pr in &p.problems { li { code { (pr.id) } " in " (pr.repo.display()) } } }
        }
    }
}

fn summary_table(id: &str, rows: &[ConfigSummary]) -> Markup {
    let repeats = rows.iter().any(|s| s.repeats.is_some());
    let pct = |v: f64| format!("{:.0} %", v * 100.0);
    html! {
        table id=(id) {
            tr { th { "Agent/model" } th.n { "Resolved" } th.n { "Rate" }
                 @if repeats { th.n title="sample standard deviation of the per-repeat rates" { "± SD" }
                               th.n title="problems resolved by at least one repeat" { "Pass@k" }
                               th.n title="problems resolved by every repeat" { "All k" } }
                 th.n { "Cost" } th.n { "Mean cost" } th.n { "Mean time" } th.n { "Tokens" } }
            @for s in rows {
                tr { td { (s.label) } td.n { (s.resolved) "/" (s.results) } td.n data-rate=(s.label) { (rate(s)) }
                     @if repeats {
                         @match &s.repeats {
                             Some(st) => { td.n { (pct(st.rate_stddev)) } td.n { (pct(st.pass_at_k)) " (k=" (st.k) ")" } td.n { (pct(st.pass_all_k)) } }
                             None => { td.n { "-" } td.n { "-" } td.n { "-" } }
                         }
                     }
                     td.n { (money(s.cost_usd)) } td.n { (money(s.mean_cost_usd)) } td.n { (mean_time(s.mean_duration_ms)) }
                     td.n { (s.total_tokens) } }
            }
        }
    }
}

/// `GET /bench/{id}`.
pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(n): Query<Notice>,
) -> Result<Response, WebError> {
    let st = state.clone();
    let (mark, v): (Option<String>, BenchView) = state
        .engine(move |e| {
            let r = e.resolve_bench_run(&id)?;
            Ok((live_mark_now(&st, &format!("bench:{}", r.id)), e.bench_view(&r.id)?))
        })
        .await?;
    let rid = v.run.id.clone();
    let active = !v.run.is_finished() && v.runner_alive;
    let body = html! {
        h1 { (v.run.name) " " span.dim { (short(&rid)) " · " (v.run.kind) } }
        (live_mark(mark.as_deref()))
        (notice_line(notice_text(n.done.as_deref())))
        div #bench-progress data-live {
            p { (status(v.run.status.as_str())) " " (v.counts.summary())
                (executor_note(v.run.executor, &v.cluster_jobs, "bench-executor")) }
            @if let Some(r) = &v.run.stop_reason { div.err.warn { "Stopped: " (r) } }
            @if let Some(n) = &v.note { div.err.warn { (n) } }
            @if let Some(f) = state.failure(&rid) { div.err { (f) } }
            @if v.counts.total > 0 { progress max=(v.counts.total) value=(v.counts.finished()) style="width:30em" {} }
            @if active {
                form method="post" action={ "/bench/" (rid) "/abort" } { (csrf(&state)) button.danger type="submit" { "Abort run" } }
            } @else if v.counts.queued + v.counts.running + v.counts.aborted > 0 {
                form method="post" action={ "/bench/" (rid) "/resume" } #resume-form {
                    (csrf(&state))
                    label for="resume-budget" { "New budget for the whole run, USD (empty: keep it)" } " "
                    input #resume-budget name="budget" inputmode="decimal" size="8" value="";
                    " " button.primary type="submit" { "Resume run" }
                }
            }
            h2 { "By agent and model" }
            (summary_table("bench-summary", &v.summary))
            h2 { "Results" }
            table #bench-results {
                tr { th { "#" } th { "Instance" } th { "Agent/model" } th.n { "Repeat" } th { "Status" } th { "Tests" } th.n { "Time" } th.n { "Tokens" } th.n { "Cost" } th { "Session" } th { "Error" } }
                @for r in &v.results {
                    tr {
                        td { (r.result.seq) } td { code { (r.result.instance_id) } } td { (r.label) } td.n { (r.result.repeat + 1) }
                        td { (status(r.result.status.as_str())) }
                        td { @if let (Some(p), Some(f)) = (r.result.tests_passed, r.result.tests_failed) { (p) " passed, " (f) " failed" } }
                        td.n { (r.result.duration_ms.map(ms_text).unwrap_or_default()) }
                        td.n { (r.result.total_tokens.map(|t| t.to_string()).unwrap_or_default()) }
                        td.n { @if r.result.session_id.is_some() && r.result.status.is_finished() { (money(r.result.cost_usd)) } }
                        td {
                            @if let Some(p) = &r.remote {
                                (remote_cell(p))
                            } @else if let Some(s) = &r.result.session_id {
                                a href={ "/s/" (s) } { (r.session_name.clone().unwrap_or_else(|| short(s).to_string())) }
                            }
                        }
                        td { (r.result.error.clone().unwrap_or_default()) }
                    }
                }
            }
        }
        p { (export::links("bench", &rid)) }
    };
    Ok(layout::page(
        &state,
        Page { title: &v.run.name, section: Section::Benchmarks, live: Some(format!("bench:{rid}")), body },
    )
    .into_response())
}

/// `POST /bench/{id}/abort`.
pub async fn abort(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, WebError> {
    let r = state.engine(move |e| Ok(e.abort_bench(&id)?)).await?;
    Ok(Redirect::to(&format!("/bench/{}?done=aborted", r.run_id)).into_response())
}

/// `POST /bench/{id}/resume`: `bench resume [--budget USD]`, run on a background thread of the server.
pub async fn resume(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(f): Form<ResumeForm>,
) -> Result<Response, WebError> {
    let budget = budget_field(&f.budget)?;
    let run = state.engine(move |e| Ok(e.prepare_bench_resume(&id, budget)?)).await?;
    spawn_run(&state, run.id.clone());
    Ok(Redirect::to(&format!("/bench/{}?done=resumed", run.id)).into_response())
}

/// `GET /bench/compare?a=…&b=…`.
pub async fn compare(
    State(state): State<AppState>,
    Query(q): Query<CompareQuery>,
) -> Result<Response, WebError> {
    let c: BenchComparison = state.engine(move |e| Ok(e.compare_bench(&q.a, &q.b)?)).await?;
    let cell = |s: &Option<ConfigSummary>| -> Markup {
        match s {
            Some(s) => {
                html! { td.n { (s.resolved) "/" (s.results) } td.n { (rate(s)) } td.n { (money(s.cost_usd)) } td.n { (mean_time(s.mean_duration_ms)) } }
            }
            None => html! { td.n { "-" } td.n { "-" } td.n { "-" } td.n { "-" } },
        }
    };
    let list = |ids: &[String]| if ids.is_empty() { "none".to_string() } else { ids.join(", ") };
    let body = html! {
        h1 { "Compare benchmark runs" }
        p { "A: " a href={ "/bench/" (c.a.run.id) } { (c.a.run.name) } " (" (short(&c.a.run.id)) "), " (status(c.a.run.status.as_str())) }
        p { "B: " a href={ "/bench/" (c.b.run.id) } { (c.b.run.name) } " (" (short(&c.b.run.id)) "), " (status(c.b.run.status.as_str())) }
        table #bench-compare {
            tr { th { "Agent/model" } th.n { "A resolved" } th.n { "A rate" } th.n { "A cost" } th.n { "A mean time" }
                 th.n { "B resolved" } th.n { "B rate" } th.n { "B cost" } th.n { "B mean time" } }
            @for (label, sa, sb) in &c.rows { tr { td { (label) } (cell(sa)) (cell(sb)) } }
        }
        p { "Resolved only in A: " (list(&c.only_a)) }
        p { "Resolved only in B: " (list(&c.only_b)) }
    };
    Ok(layout::page(&state, Page { title: "Compare", section: Section::Benchmarks, live: None, body })
        .into_response())
}

//! Session → Overview: the numbers of `amp-sessions metrics` and `timeline` (same engine calls), as
//! cards, tables and SVG charts, with budget, export links and the session's header and tabs shared by
//! the Interactive and Git views.

use crate::charts;
use crate::error::WebError;
use crate::state::AppState;
use crate::views::layout::{self, Page, Section, csrf, error_line, ms_text, notice_line, short, status};
use crate::views::sessions::{Notice, notice_text};
use crate::views::{approvals, export};
use ampsm_core::{PermissionPolicy, SessionStatus};
use ampsm_engine::BudgetChange;
use ampsm_engine::records::{ApprovalStatus, Session, ToolCall};
use ampsm_engine::reports::export::usd;
use ampsm_engine::reports::metrics::{SessionMetrics, Timeline};
use ampsm_engine::runs::permissions::ApprovalView;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

/// Which tab of a session is shown.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Overview,
    Interactive,
    Git,
}

/// The session's title line, status and tabs.
pub fn header(state: &AppState, s: &Session, tab: Tab) -> Markup {
    let id = s.id.as_str();
    let t = |which: Tab, href: String, label: &str| {
        html! { a href=(href) class=[(tab == which).then_some("on")] { (label) } }
    };
    html! {
        h1 { (s.name) " " span.dim { (short(id)) } }
        div #session-status data-live {
            (status(s.status.as_str()))
            @if let Some(n) = &s.status_note { " " span.dim { (n) } }
            @if matches!(s.status, SessionStatus::Running | SessionStatus::AwaitingInput)
                && (s.runner_pid.is_some() || s.agent_pid.is_some()) {
                (approvals::stop_form(state, s))
            }
            @if let Some(f) = state.failure(id) { div.err role="alert" { "Last background run: " (f) } }
        }
        p.dim {
            (s.agent) @if let Some(m) = &s.model { " (" (m) ")" }
            " · branch " code { (s.branch) } " from " code { (s.base_branch) }
            " · worktree " code { (s.worktree_path) }
            " · permissions " b.policy { (s.permissions.map(|p| p.as_str()).unwrap_or("config default")) }
        }
        nav.tabs {
            (t(Tab::Overview, format!("/s/{id}"), "Overview"))
            (t(Tab::Interactive, format!("/s/{id}/interactive"), "Conversation"))
            (t(Tab::Git, format!("/s/{id}/git"), "Git"))
        }
    }
}

/// `GET /s/{id}`: the overview.
pub async fn overview(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(n): Query<Notice>,
) -> Result<Response, WebError> {
    render(state, id, notice_text(n.done.as_deref()), None, StatusCode::OK).await
}

/// What the overview shows besides the metrics: the policy, approvals and the denied tool calls (only
/// those are read: the tool table's figures are counted in SQL).
struct Extra {
    policy: PermissionPolicy,
    approvals: Vec<ApprovalView>,
    denied: Vec<ToolCall>,
}

/// Timeline entries shown on the overview (the latest; the others are counted, and `amp-sessions
/// timeline` and the exports have them all).
const TIMELINE_SHOWN: usize = 100;
/// Iterations listed in the overview's table (the latest).
const ITERATIONS_SHOWN: usize = 50;
/// Iteration errors listed (the latest).
const ERRORS_SHOWN: usize = 20;

/// The overview with a notice or an error line (an action that failed on this page shows it here).
pub async fn render(
    state: AppState,
    id: String,
    notice: Option<&str>,
    error: Option<String>,
    code: StatusCode,
) -> Result<Response, WebError> {
    let (session, m, t, x) = state
        .engine(move |e| {
            let s = e.session(&id, true)?;
            let m = e.metrics(s.id.as_str())?;
            let t = e.timeline(s.id.as_str())?;
            let x = Extra {
                policy: e.session_policy(&s),
                approvals: e.session_approvals(&s)?,
                denied: e.denied_tool_calls(&s.id)?,
            };
            Ok((s, m, t, x))
        })
        .await?;
    let sid = session.id.to_string();
    let pending: Vec<ApprovalView> =
        x.approvals.iter().filter(|v| v.approval.status == ApprovalStatus::Pending).cloned().collect();
    let denied: Vec<&ToolCall> = x.denied.iter().collect();
    let body = html! {
        (header(&state, &session, Tab::Overview))
        (notice_line(notice))
        (error_line(error.as_deref()))
        (approvals::session_pending(&state, &pending))
        div #overview data-live {
            (cards(&m))
            (charts_of(&m))
            (models(&m))
            (tools(&m))
            (files(&m))
            (iterations(&m))
            (errors(&m))
            (timeline(&t, &sid))
        }
        section { (approvals::session_permissions(&session, x.policy, &x.approvals, &denied)) }
        section {
            h2 { "Budget" }
            (budget_form(&state, &session))
        }
        section {
            h2 { "Export" }
            p { (export::links("session", &sid)) " · " a href={ "/s/" (sid) "/metrics.json" } { "metrics JSON" } }
        }
        section {
            h2 { "Remove" }
            form.inline method="post" action={ "/s/" (sid) "/remove" }
                data-confirm={ "Remove session " (session.name) "? Its worktree and branch are deleted (unmerged work is refused unless forced, which snapshots it first)." } {
                (csrf(&state))
                label { input type="checkbox" name="force"; " force (unmerged work is snapshotted first)" } " "
                button.danger type="submit" { "Remove session" }
            }
        }
    };
    let page = layout::page(
        &state,
        Page { title: &session.name, section: Section::Sessions, live: Some(format!("session:{sid}")), body },
    );
    Ok((code, page).into_response())
}

/// `GET /s/{id}/metrics.json`: what `amp-sessions metrics <s> --json` prints.
pub async fn metrics_json(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SessionMetrics>, WebError> {
    Ok(Json(state.engine(move |e| Ok(e.metrics(&id)?)).await?))
}

fn card(label: &str, key: &str, value: String) -> Markup {
    html! { div.card { div.dim { (label) } div.v data-metric=(key) { (value) } } }
}

fn cards(m: &SessionMetrics) -> Markup {
    html! {
        div.cards {
            (card("Iterations", "iterations", m.iterations_count.to_string()))
            (card("Agent time", "agent-time", ms_text(m.agent_time_ms)))
            (card("Tokens/s (output)", "tokens-per-sec", m.tokens_per_sec.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into())))
            (card("Cost", "cost", cost_text(m)))
            (card("Cost/min", "cost-per-min", match (m.cost_per_min, cost_unknown(m)) {
                (Some(c), false) => format!("${c:.4}"),
                _ => "unknown".into(),
            }))
            (card("Tokens in", "tokens-input", m.tokens.input.to_string()))
            (card("Tokens out", "tokens-output", m.tokens.output.to_string()))
            (card("Cache read", "tokens-cache-read", m.tokens.cache_read.to_string()))
            (card("Cache write", "tokens-cache-write", m.tokens.cache_write.to_string()))
            (card("Tool calls", "tool-calls", m.tool_calls.to_string()))
            @if m.tool_calls_denied > 0 { (card("Denied tool calls", "tool-calls-denied", m.tool_calls_denied.to_string())) }
            (card("Files (git)", "files-changed", match &m.files.note {
                Some(n) => n.clone(),
                None => format!("{} +{} −{}", m.files.files_changed, m.files.lines_added, m.files.lines_removed),
            }))
            (card("Errors", "errors", format!("{} failed, {} from agent", m.errors.failed_iterations, m.errors.agent_errors)))
            @if let Some(b) = &m.budget {
                (card("Budget", "budget", format!("${:.4} of {} ({:.0} %)", b.spent_usd, ampsm_core::dollars(b.budget_usd), b.percent)))
            }
        }
        @if m.cost.usd.is_none() && m.cost.unpriced_rows > 0 {
            div.err.warn { (m.cost.unpriced_rows) " usage row(s) have no price: set pricing.<model> in the config." }
        }
        @if !m.cost.price_entries.is_empty() {
            p.dim { "Cost source: " (m.cost.source.replace('_', " ")) "; prices: " (m.cost.price_entries.join(", ")) }
        }
    }
}

/// Whether nobody knows what the session cost: a usage row has no price, or runs happened and neither the
/// agent reported a cost nor a price was known (the total would read $0.0000 when it is not zero).
fn cost_unknown(m: &SessionMetrics) -> bool {
    m.cost.usd.is_none()
        || (m.iterations_count > 0
            && !m.cost.known_usd.is_positive()
            && matches!(m.cost.source.as_str(), "none" | "unknown"))
}

/// The Cost card: the total, "unknown" (with the known part when there is one), or "-" before any run.
fn cost_text(m: &SessionMetrics) -> String {
    match m.cost.usd {
        _ if m.iterations_count == 0 && m.cost.source == "none" => "-".into(),
        Some(c) if !cost_unknown(m) => format!("${c:.4}"),
        _ if m.cost.known_usd.is_positive() => format!("unknown (${:.4} known)", m.cost.known_usd),
        _ => "unknown".into(),
    }
}

fn charts_of(m: &SessionMetrics) -> Markup {
    if m.iterations.is_empty() {
        return html! {};
    }
    // One bar per iteration, for the latest ones only (as the table below).
    let hidden = m.iterations.len().saturating_sub(ITERATIONS_SHOWN);
    let tokens: Vec<(String, f64)> =
        m.iterations[hidden..].iter().map(|it| (format!("#{}", it.seq), it.tokens.total as f64)).collect();
    let bars_title = if hidden > 0 {
        format!("Tokens per iteration (latest {ITERATIONS_SHOWN})")
    } else {
        "Tokens per iteration".into()
    };
    let mut total = 0.0;
    let mut cost: Vec<(i64, f64)> = Vec::new();
    if let Some(first) = m.iterations.first() {
        cost.push((first.started_at, 0.0));
    }
    for it in &m.iterations {
        total += it.cost_usd.unwrap_or(0.0);
        cost.push((it.ended_at.unwrap_or(it.started_at), total));
    }
    html! {
        div.cards {
            (charts::bars(&bars_title, &tokens, ""))
            (charts::steps("Cost over time (known prices)", &cost, "$"))
        }
    }
}

fn models(m: &SessionMetrics) -> Markup {
    html! {
        @if !m.models.is_empty() {
            h2 { "Tokens by model" }
            table #models {
                tr { th { "Model" } th.n { "Input" } th.n { "Output" } th.n { "Cache read" } th.n { "Cache write" } th.n { "Cost" } th { "Price" } }
                @for mm in &m.models {
                    tr {
                        td { (mm.model.clone().unwrap_or_else(|| "(not reported)".into())) }
                        td.n { (mm.tokens.input) } td.n { (mm.tokens.output) }
                        td.n { (mm.tokens.cache_read) } td.n { (mm.tokens.cache_write) }
                        td.n { (usd(mm.cost_usd)) }
                        td.dim { @if mm.price_entries.is_empty() { (mm.cost_source.replace('_', " ")) } @else { (mm.price_entries.join(", ")) } }
                    }
                }
            }
        }
    }
}

fn tools(m: &SessionMetrics) -> Markup {
    html! {
        @if !m.tools.is_empty() {
            h2 { "Tools (" (m.tool_calls) " calls)" }
            table #tools {
                tr { th { "Tool" } th.n { "Calls" } th.n { "OK" } th.n { "Failed" } th.n { "No result" } th.n { "Denied" } th.n { "Success" } th.n { "Avg" } th.n { "p95" } }
                @for t in &m.tools {
                    tr {
                        td { (t.name) } td.n { (t.count) } td.n { (t.succeeded) } td.n { (t.failed) } td.n { (t.no_result) } td.n { (t.denied) }
                        td.n { (t.success_rate.map(|r| format!("{:.0} %", r * 100.0)).unwrap_or_else(|| "-".into())) }
                        td.n { (t.avg_duration_ms.map(|d| ms_text(d.round() as i64)).unwrap_or_else(|| "-".into())) }
                        td.n { (t.p95_duration_ms.map(ms_text).unwrap_or_else(|| "-".into())) }
                    }
                }
            }
        }
    }
}

fn files(m: &SessionMetrics) -> Markup {
    html! {
        @if !m.files.files.is_empty() {
            h2 { "Files changed" @if let Some(r) = &m.files.range { " " span.dim { (r) } } }
            table #files {
                tr { th { "File" } th.n { "+" } th.n { "−" } }
                @for f in &m.files.files {
                    tr {
                        td { @if let Some(old) = &f.old_path { (old) " → " } (f.path) }
                        td.n { (f.added.map(|a| a.to_string()).unwrap_or_else(|| "bin".into())) }
                        td.n { (f.removed.map(|a| a.to_string()).unwrap_or_else(|| "bin".into())) }
                    }
                }
            }
        }
    }
}

fn iterations(m: &SessionMetrics) -> Markup {
    let hidden = m.iterations.len().saturating_sub(ITERATIONS_SHOWN);
    html! {
        @if !m.iterations.is_empty() {
            h2 { "Iterations" }
            @if hidden > 0 { p.dim #iterations-more { "The latest " (ITERATIONS_SHOWN) " of " (m.iterations.len()) "; the export has them all." } }
            table #iterations {
                tr { th { "#" } th { "Started" } th.n { "Duration" } th { "Outcome" } th { "Tests" } th.n { "Tokens" } th.n { "Cost" } th { "Commit" } th { "Policy" } th.n { "Denied" } }
                @for it in &m.iterations[hidden..] {
                    tr data-iteration=(it.seq) {
                        td { (it.seq) } td.dim { (layout::time_text(it.started_at)) }
                        td.n { (it.duration_ms.map(ms_text).unwrap_or_else(|| "running".into())) }
                        td { (status(it.outcome.map_or("running", ampsm_core::IterationOutcome::as_str))) }
                        td { (it.test.clone().unwrap_or_else(|| "-".into())) }
                        td.n { (it.tokens.total) } td.n { (usd(it.cost_usd)) }
                        td { code { (it.commit_sha.as_deref().map(|c| &c[..c.len().min(12)]).unwrap_or("-")) } }
                        td { (it.permissions.clone().unwrap_or_else(|| "-".into())) }
                        td.n.denials { @match it.denials {
                            0 => { "0" }
                            n => { span.s-denied { (n) } }
                        } }
                    }
                }
            }
        }
    }
}

fn errors(m: &SessionMetrics) -> Markup {
    let it_errors = &m.errors.iteration_errors;
    let it_hidden = it_errors.len().saturating_sub(ERRORS_SHOWN);
    let ev_hidden = m.errors.agent_errors.saturating_sub(m.errors.latest_events.len());
    html! {
        @if !it_errors.is_empty() || !m.errors.latest_events.is_empty() {
            h2 { "Errors" }
            @if it_hidden + ev_hidden > 0 {
                p.dim #errors-more {
                    "The latest " (it_errors.len() - it_hidden) " of " (it_errors.len()) " failed iteration(s) and "
                    (m.errors.latest_events.len()) " of " (m.errors.agent_errors) " agent error(s); "
                    code { "amp-sessions metrics" } " and " code { "logs" } " have the rest."
                }
            }
            ul #errors {
                @for (seq, e) in &it_errors[it_hidden..] { li { "iteration " (seq) ": " (e) } }
                @for e in &m.errors.latest_events {
                    li { span.dim { (layout::time_text(e.ts)) } " " (e.kind) @if e.fatal { " (fatal)" } ": " (e.message) }
                }
            }
        }
    }
}

fn timeline(t: &Timeline, sid: &str) -> Markup {
    let hidden = t.entries.len().saturating_sub(TIMELINE_SHOWN);
    html! {
        h2 { "Timeline" }
        @if hidden > 0 {
            p.dim #timeline-more {
                (hidden) " earlier entries are not shown; " code { "amp-sessions timeline " (short(sid)) }
                " lists all " (t.entries.len()) "."
            }
        }
        table #timeline {
            tr { th { "Time" } th { "Event" } th { "What" } }
            @for e in &t.entries[hidden..] {
                tr { td.dim { (layout::time_text(e.at)) } td { (e.kind) } td { (e.summary) } }
            }
        }
    }
}

fn budget_form(state: &AppState, s: &Session) -> Markup {
    html! {
        form.inline method="post" action={ "/s/" (s.id.as_str()) "/budget" } {
            (csrf(state))
            "Budget (USD) "
            input name="usd" size="8" value=(s.budget_usd.map(|b| b.to_string()).unwrap_or_default()) placeholder="none";
            " " button type="submit" { "Set" }
            " " button type="submit" name="clear" value="1" { "Clear" }
        }
    }
}

/// The budget form's fields.
#[derive(Debug, serde::Deserialize)]
pub struct BudgetForm {
    #[serde(default)]
    pub usd: String,
    pub clear: Option<String>,
}

/// `POST /s/{id}/budget`: sets or clears the budget (as `amp-sessions budget` does).
pub async fn set_budget(
    State(state): State<AppState>,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<BudgetForm>,
) -> Result<Response, WebError> {
    let value = if f.clear.is_some() { None } else { crate::views::budget_field(&f.usd)? };
    let sid = state
        .engine(move |e| {
            let change = value.map_or(BudgetChange::Clear, BudgetChange::Set);
            Ok(e.set_session_budget(&id, change)?.session.id.to_string())
        })
        .await?;
    Ok(Redirect::to(&format!("/s/{sid}")).into_response())
}

/// The remove form's fields.
#[derive(Debug, serde::Deserialize)]
pub struct RemoveForm {
    pub force: Option<String>,
}

/// `POST /s/{id}/remove`: `amp-sessions rm` (refuses unmerged work unless forced, which snapshots).
pub async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<RemoveForm>,
) -> Result<Response, WebError> {
    let force = f.force.is_some();
    let id2 = id.clone();
    match state.engine(move |e| Ok(e.remove_session(&id2, force, false)?)).await {
        Ok(_) => Ok(Redirect::to("/?done=removed").into_response()),
        Err(e) => {
            let session = state.engine(move |en| Ok(en.session(&id, true)?)).await?;
            let body = html! {
                (header(&state, &session, Tab::Overview))
                (error_line(Some(&e.line())))
                p { a href={ "/s/" (session.id.as_str()) } { "Back to the overview" } }
            };
            Ok((
                e.status(),
                layout::page(
                    &state,
                    Page { title: &session.name, section: Section::Sessions, live: None, body },
                ),
            )
                .into_response())
        }
    }
}

//! Approvals of the `ask` permission policy and Stop: the inbox of every session's pending tool calls
//! (`/approvals`, what `amp-sessions approvals` lists), the same list and the answered history on a
//! session's page, the answers (`approve`, `deny` with an optional message for the agent) and the Stop of
//! a running agent (`amp-sessions stop`). Every answer goes through the engine, whose answer is a
//! compare-and-swap: one that lost a race (answered meanwhile in a terminal, or timed out) shows the
//! engine's one line, with 409.

use crate::error::WebError;
use crate::state::AppState;
use crate::views::layout::{self, Page, Section, csrf, error_line, notice_line, short, status};
use crate::views::session;
use crate::views::sessions::{Notice, notice_text};
use ampsm_core::time::{age, now_ms};
use ampsm_engine::EngineError;
use ampsm_engine::records::{ApprovalStatus, Session, ToolCall};
use ampsm_engine::runs::permissions::ApprovalView;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use std::time::Duration;

/// How long the Stop button waits for the run to end before the agent's group is killed outright.
pub const STOP_WAIT: Duration = Duration::from_secs(10);

/// Where an answer form was posted from (where to go back to).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Back {
    Inbox,
    Session,
}

impl Back {
    fn as_str(self) -> &'static str {
        match self {
            Back::Inbox => "inbox",
            Back::Session => "session",
        }
    }
}

/// `GET /approvals`: every pending request of every session.
pub async fn inbox(State(state): State<AppState>, Query(n): Query<Notice>) -> Result<Response, WebError> {
    render_inbox(state, notice_text(n.done.as_deref()), None, StatusCode::OK).await
}

async fn render_inbox(
    state: AppState,
    notice: Option<&str>,
    error: Option<String>,
    code: StatusCode,
) -> Result<Response, WebError> {
    let list = state.engine(|e| Ok(e.pending_approvals(None)?)).await?;
    let body = html! {
        h1 { "Approvals" }
        (notice_line(notice))
        (error_line(error.as_deref()))
        div #approvals data-live {
            @if list.is_empty() {
                p.dim { "No tool call is waiting for approval." }
            } @else {
                p { (list.len()) " tool call(s) waiting for an answer, oldest first." }
                (pending_list(&state, &list, Back::Inbox))
            }
        }
        p.dim {
            "Sessions with the " code { "ask" } " permission policy wait here for each tool call that needs approval; "
            "an unanswered one is denied when " code { "session.ask_timeout" } " passes. The same answers from a terminal: "
            code { "amp-sessions approve <session> <#>" } " or " code { "amp-sessions deny <session> <#> -m WHY" } "."
        }
    };
    let page = layout::page(
        &state,
        Page { title: "Approvals", section: Section::Approvals, live: Some("approvals".into()), body },
    );
    Ok((code, page).into_response())
}

/// Pending requests, each with its input as JSON and the Approve and Deny forms.
pub fn pending_list(state: &AppState, list: &[ApprovalView], from: Back) -> Markup {
    let now = now_ms();
    html! {
        @for v in list {
            @let a = &v.approval;
            @let key = format!("{}-{}", short(&a.session_id), a.seq);
            @let base = format!("/s/{}/approvals/{}", a.session_id, a.seq);
            div.approval id={ "approval-" (key) } data-approval=(key) {
                div {
                    @if from == Back::Inbox {
                        a href={ "/s/" (a.session_id) } { (v.session_name) } " " span.dim { (short(&a.session_id)) } " · "
                    }
                    b { "#" (a.seq) } " " code.summary { (v.summary) }
                }
                div.dim {
                    "asked " (age(a.created_at, now)) " ago · "
                    span.left { (time_left(a.expires_at, now)) }
                }
                pre.input aria-label={ "Input of tool call #" (a.seq) } { (pretty(&a.input)) }
                div.answer {
                    form.inline.approve method="post" action={ (base) "/approve" } {
                        (csrf(state))
                        input type="hidden" name="from" value=(from.as_str());
                        button.primary type="submit" aria-label={ "Approve #" (a.seq) " of " (v.session_name) ": " (v.summary) } { "Approve" }
                    }
                    " "
                    form.inline.deny method="post" action={ (base) "/deny" } {
                        (csrf(state))
                        input type="hidden" name="from" value=(from.as_str());
                        label for={ "deny-message-" (key) } { "Message for the agent (optional)" } " "
                        input id={ "deny-message-" (key) } name="message" size="40" placeholder="why it should not, or what to do instead";
                        " "
                        button.danger type="submit" aria-label={ "Deny #" (a.seq) " of " (v.session_name) ": " (v.summary) } { "Deny" }
                    }
                }
            }
        }
    }
}

/// `answer within 9m48s`, or that the time is up.
fn time_left(expires_at: i64, now: i64) -> String {
    let left = expires_at - now;
    if left > 0 {
        let d = Duration::from_secs(u64::try_from(left / 1000).unwrap_or(0));
        format!("answer within {} (then it is denied)", ampsm_core::duration::format_duration(d))
    } else {
        "the time to answer is up: it is being denied".into()
    }
}

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// The session page's part: its pending requests (with the forms). A live region, so a request that
/// arrives while the page is open shows up (and an answered one goes) without a reload.
pub fn session_pending(state: &AppState, pending: &[ApprovalView]) -> Markup {
    html! {
        div #session-pending data-live {
            @if !pending.is_empty() {
                section #pending-approvals {
                    h2 { "Waiting for approval (" (pending.len()) ")" }
                    (pending_list(state, pending, Back::Session))
                }
            }
        }
    }
}

/// The session page's policy, its denied tool calls and its answered approvals.
pub fn session_permissions(
    s: &Session,
    policy: ampsm_core::PermissionPolicy,
    all: &[ApprovalView],
    denied: &[&ToolCall],
) -> Markup {
    let answered: Vec<&ApprovalView> =
        all.iter().filter(|v| v.approval.status != ApprovalStatus::Pending).collect();
    html! {
        div #permissions data-live {
            h2 { "Permissions" }
            p #policy {
                "Policy " b data-policy=(policy.as_str()) { (policy.as_str()) }
                @if s.permissions.is_none() { span.dim { " (the config's default for " (s.agent) ")" } }
                ": " (policy.meaning())
            }
            @if !denied.is_empty() {
                h3 { "Denied tool calls (" (denied.len()) ")" }
                table #denied-calls {
                    tr { th { "Tool" } th { "Input" } th { "Why" } }
                    @for c in denied {
                        tr {
                            td { (status_word("DENIED", "denied")) " " (c.name) }
                            td { code { (clip(&c.input.as_ref().map(|i| i.to_string()).unwrap_or_default(), 160)) } }
                            td { (clip(c.output_excerpt.as_deref().unwrap_or(""), 200)) }
                        }
                    }
                }
            }
            @if !answered.is_empty() {
                h3 { "Answered approvals (" (answered.len()) ")" }
                table #approval-history {
                    tr { th.n { "#" } th { "Tool call" } th { "Answer" } th { "Message" } th { "Asked" } th { "Answered" } }
                    @for v in answered {
                        @let a = &v.approval;
                        tr data-seq=(a.seq) {
                            td.n { (a.seq) }
                            td { code { (v.summary) } }
                            td { (status(a.status.as_str())) }
                            td { (a.message.clone().unwrap_or_default()) }
                            td.dim { (layout::time_text(a.created_at)) }
                            td.dim { (a.decided_at.map(layout::time_text).unwrap_or_default()) }
                        }
                    }
                }
            }
        }
    }
}

/// A status badge with its own text.
pub fn status_word(text: &str, class: &str) -> Markup {
    html! { span class={ "badge s-" (class) } { (text) } }
}

/// The Stop button (for the session header, while the agent runs or waits for an approval).
pub fn stop_form(state: &AppState, s: &Session) -> Markup {
    html! {
        form.inline #stop-form method="post" action={ "/s/" (s.id.as_str()) "/stop" } {
            (csrf(state))
            " "
            button.danger type="submit" aria-label={ "Stop the agent of session " (s.name) } { "Stop" }
        }
    }
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    }
}

/// The fields of the Approve and Deny forms.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AnswerForm {
    /// A denial's message for the agent.
    pub message: String,
    /// `inbox` or `session`: where to go back to.
    pub from: String,
}

/// `POST /s/{id}/approvals/{seq}/approve|deny`: `amp-sessions approve <s> <seq>` / `deny <s> <seq> -m …`.
pub async fn answer(
    State(state): State<AppState>,
    Path((id, seq, action)): Path<(String, i64, String)>,
    Form(f): Form<AnswerForm>,
) -> Result<Response, WebError> {
    let allow = match action.as_str() {
        "approve" => true,
        "deny" => false,
        other => return Err(WebError::NotFound(format!("no approval action {other:?}"))),
    };
    let from = if f.from == "session" { Back::Session } else { Back::Inbox };
    let message = Some(f.message.trim().to_string()).filter(|m| !m.is_empty());
    let answered = state
        .engine(move |e| {
            let s = e.session(&id, false)?;
            match e.answer_approval(s.id.as_str(), Some(seq), allow, message.as_deref()) {
                Ok(_) => Ok((s.id.to_string(), None)),
                Err(err) => {
                    // Answered already (elsewhere, or timed out): a conflict, not a bad request.
                    let settled = e.session_approvals(&s)?.iter().any(|a| a.approval.seq == seq);
                    let err = WebError::from(err);
                    let code = if settled { StatusCode::CONFLICT } else { err.status() };
                    Ok((s.id.to_string(), Some((err.line(), code))))
                }
            }
        })
        .await?;
    let (sid, failed) = answered;
    let done = if allow { "approved" } else { "denied" };
    match (failed, from) {
        (None, Back::Inbox) => Ok(Redirect::to(&format!("/approvals?done={done}")).into_response()),
        (None, Back::Session) => Ok(Redirect::to(&format!("/s/{sid}?done={done}")).into_response()),
        (Some((line, code)), Back::Inbox) => render_inbox(state, None, Some(line), code).await,
        (Some((line, code)), Back::Session) => session::render(state, sid, None, Some(line), code).await,
    }
}

/// `POST /s/{id}/stop`: `amp-sessions stop <s>`. The engine asks the run's runner (this server's thread
/// or another process) to stop and waits for it on a blocking thread, so other requests go on meanwhile.
pub async fn stop(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, WebError> {
    let id2 = id.clone();
    match state.engine(move |e| Ok(e.stop_session(&id2, STOP_WAIT)?)).await {
        Ok(out) => {
            let done = if out.how.contains("gone") { "stopped-repaired" } else { "stopped" };
            Ok(Redirect::to(&format!("/s/{}?done={done}", out.session.id)).into_response())
        }
        Err(e) => {
            let code = match &e {
                WebError::Engine(EngineError::NotRunning { .. }) => StatusCode::CONFLICT,
                other => other.status(),
            };
            if code == StatusCode::NOT_FOUND {
                return Err(e);
            }
            session::render(state, id, None, Some(e.line()), code).await
        }
    }
}

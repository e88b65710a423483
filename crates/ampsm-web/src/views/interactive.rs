//! Session → Interactive: the agent's events (the latest ones rendered by the server, then new ones
//! streamed live from `/s/{id}/feed`), its tool calls with their results, and a message box that runs one
//! iteration with that message on a background thread, continuing the agent's thread as `iterate` does.

use crate::error::WebError;
use crate::live::{event_kind, shown};
use crate::state::AppState;
use crate::views::approvals;
use crate::views::layout::{self, Page, Section, csrf, error_line, ms_text, notice_line};
use crate::views::session::{Tab, header};
use crate::views::sessions::{Notice, notice_text};
use ampsm_core::SessionStatus;
use ampsm_engine::records::{Capabilities, Session, StoredEvent, ToolCall};
use ampsm_engine::runs::permissions::ApprovalView;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;

/// Stored lines rendered with the page (older ones are in `amp-sessions logs` and the exports).
const LINES_ON_PAGE: i64 = 400;

/// Appends `line` events from the feed to `#feed`, after the last line the server rendered.
const FEED_JS: &str = "(function(){var f=document.getElementById('feed');if(!f||!window.EventSource)return;\
var after=f.getAttribute('data-after')||'0';var es=new EventSource(f.getAttribute('data-src')+'?after='+after);\
es.addEventListener('line',function(m){var d=JSON.parse(m.data);var stick=f.scrollTop+f.clientHeight>=f.scrollHeight-30;\
d.items.forEach(function(it){var el=document.createElement('div');el.className='ev-'+it.kind;el.setAttribute('data-id',d.id);\
var t=document.createElement('span');t.className='dim';t.textContent=d.ts.substring(11,23)+'  ';el.appendChild(t);\
el.appendChild(document.createTextNode(it.text));f.appendChild(el)});if(stick)f.scrollTop=f.scrollHeight});})();";

const FEED_CSS: &str = ".ev-tool{color:var(--yellow)}.ev-result{color:var(--aqua)}.ev-error{color:var(--red)}\
.ev-user{color:var(--purple)}";

/// `GET /s/{id}/interactive`.
pub async fn page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(n): Query<Notice>,
) -> Result<Response, WebError> {
    render(state, id, None, String::new(), notice_text(n.done.as_deref()), StatusCode::OK).await
}

struct Data {
    session: Session,
    lines: Vec<StoredEvent>,
    first_shown: i64,
    tools: Vec<ToolCall>,
    capabilities: Option<Capabilities>,
    pending: Vec<ApprovalView>,
}

/// Whether an agent run of the session is under way (running, or waiting for an approval).
fn busy(s: &Session) -> bool {
    match s.status {
        SessionStatus::Running => true,
        SessionStatus::AwaitingInput => s.runner_pid.is_some_and(ampsm_engine::process::pid_alive),
        _ => false,
    }
}

async fn render(
    state: AppState,
    id: String,
    error: Option<String>,
    draft: String,
    notice: Option<&str>,
    code: StatusCode,
) -> Result<Response, WebError> {
    let d = state
        .engine(move |e| {
            let session = e.session(&id, true)?;
            let total = e.event_count(&session.id)?;
            let skip = (total - LINES_ON_PAGE).max(0);
            let lines = e.last_events(&session.id, LINES_ON_PAGE)?;
            let tools = e.tool_calls(&session.id)?;
            let capabilities = e.agent_capabilities(&session.agent);
            let pending = e.pending_approvals(Some(session.id.as_str()))?;
            Ok(Data { session, lines, first_shown: skip, tools, capabilities, pending })
        })
        .await?;
    let s = &d.session;
    let sid = s.id.to_string();
    let last_id = d.lines.last().map(|l| l.id).unwrap_or(0);
    let body = html! {
        style { (PreEscaped(FEED_CSS)) }
        (header(&state, s, Tab::Interactive))
        (notice_line(notice))
        (approvals::session_pending(&state, &d.pending))
        @if let Some(c) = &d.capabilities {
            p.dim {
                "Continue: " (format!("{:?}", c.continue_mode).to_lowercase())
                " · interactive input: " (if c.interactive { "yes" } else { "no" })
                " · reports cost: " (if c.reports_cost { "yes" } else { "no" })
            }
        }
        h2 { "Agent events" }
        @if d.first_shown > 0 { p.dim { (d.first_shown) " earlier line(s) not shown; see " code { "amp-sessions logs " (s.id.short()) } } }
        div #feed data-src={ "/s/" (sid) "/feed" } data-after=(last_id) {
            @for row in &d.lines {
                @for ev in row.events.iter().filter(|ev| shown(ev)) {
                    div class={ "ev-" (event_kind(ev)) } data-id=(row.id) {
                        span.dim { (layout::time_text(row.ts).get(11..23).unwrap_or("")) "  " }
                        (ev.summary())
                    }
                }
            }
        }
        h2 { "Message" }
        (error_line(error.as_deref()))
        form method="post" action={ "/s/" (sid) "/message" } #message-form {
            (csrf(&state))
            textarea name="prompt" #message rows="3" placeholder="Tell the agent what to do next (runs one iteration, continuing its thread)" { (draft) }
            div { button.primary type="submit" disabled[busy(s)] { "Send" }
                  @if busy(s) { span.dim { " the agent is running" } } }
        }
        (tool_table(&d.tools))
        @if state.inner.auto_update { script { (PreEscaped(FEED_JS)) } }
    };
    let page = layout::page(
        &state,
        Page { title: &s.name, section: Section::Sessions, live: Some(format!("session:{sid}")), body },
    );
    Ok((code, page).into_response())
}

fn tool_table(calls: &[ToolCall]) -> Markup {
    html! {
        div #tool-calls data-live {
            h2 { "Tool calls (" (calls.len()) ")" }
            @if !calls.is_empty() {
                table {
                    tr { th { "Tool" } th { "Result" } th.n { "Duration" } th.n { "Exit" } th { "Input" } th { "Output" } }
                    @for c in calls {
                        tr {
                            td { (c.name) }
                            td { @if c.denied { (approvals::status_word("DENIED", "denied")) }
                                 @else { (layout::status(match c.success { Some(true) => "ok", Some(false) => "failed", None => "no result" })) } }
                            td.n { (c.duration_ms.map(ms_text).unwrap_or_default()) }
                            td.n { (c.exit_code.map(|e| e.to_string()).unwrap_or_default()) }
                            td { code { (clip(&c.input.as_ref().map(|i| i.to_string()).unwrap_or_default(), 160)) } }
                            td { code { (clip(c.output_excerpt.as_deref().unwrap_or(""), 200)) } }
                        }
                    }
                }
            }
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

/// The message form.
#[derive(Debug, Deserialize)]
pub struct MessageForm {
    #[serde(default)]
    pub prompt: String,
}

/// `POST /s/{id}/message`: one iteration with this message, on a background thread.
pub async fn message(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(f): Form<MessageForm>,
) -> Result<Response, WebError> {
    if f.prompt.trim().is_empty() {
        return render(
            state,
            id,
            Some("the message is empty".into()),
            f.prompt,
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let id2 = id.clone();
    let session = state.engine(move |e| Ok(e.session(&id2, false)?)).await?;
    let sid = session.id.to_string();
    let running = session.status == SessionStatus::Running
        && session.runner_pid.is_some_and(ampsm_engine::process::pid_alive);
    if running || busy(&session) {
        let line = format!("session {} is running; wait for it to finish", session.name);
        return render(state, sid, Some(line), f.prompt, None, StatusCode::CONFLICT).await;
    }
    state.spawn_iteration(sid.clone(), Some(f.prompt));
    Ok(Redirect::to(&format!("/s/{sid}/interactive?done=sent")).into_response())
}

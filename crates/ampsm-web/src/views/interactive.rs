//! Session → Conversation (the tab's URL stays `/s/{id}/interactive`): one block per iteration (prompt,
//! outcome, tests, commit, tokens, cost, time), the agent's messages as sanitized Markdown, its tool calls
//! as collapsible cards (an edit shows its diff, a shell call its command, exit code and output, a read
//! its path), newest at the bottom. The server renders one bounded page of lines (the engine's
//! [`conversation`](ampsm_engine::reports::conversation) read model); "Load earlier" asks for the page
//! before (`?before=<line id>`, or just its blocks with `&fragment=1`), and while the agent runs
//! `/s/{id}/feed` streams new entries rendered by the same functions. The message box runs one iteration
//! with that message on a background thread, continuing the agent's thread as `iterate` does; it is
//! disabled while a run is going (a live region, so it comes back when the run ends).

use crate::error::WebError;
use crate::markdown;
use crate::state::AppState;
use crate::views::approvals;
use crate::views::layout::{self, Page, Section, csrf, error_line, ms_text, notice_line};
use crate::views::session::{Tab, header};
use crate::views::sessions::notice_text;
use ampsm_core::SessionStatus;
use ampsm_engine::records::{Capabilities, Session};
use ampsm_engine::reports::conversation::{
    ConversationPage, Entry, Item, IterationSummary, PAGE_LINES, ToolCard, ToolOutcome,
};
use ampsm_engine::runs::permissions::ApprovalView;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;
use serde_json::Value;

/// The view's script: live entries from the feed (coalesced per animation frame, the oldest dropped
/// beyond a bound), "Load earlier" without leaving the page, and the running iteration's clock.
const CONVERSATION_JS: &str = include_str!("../../assets/conversation.js");
/// The view's styles (theme variables only).
const CONVERSATION_CSS: &str = include_str!("../../assets/conversation.css");

/// Longest tool input or output text shown in a card (the store keeps 4 KiB of outputs anyway).
const MAX_SHOWN: usize = 8 * 1024;

/// The query of the page: `?done=` (a notice), `?before=` (an earlier page), `?fragment=1` (only the
/// blocks, for "Load earlier").
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    pub done: Option<String>,
    pub before: Option<i64>,
    pub fragment: Option<u8>,
}

/// `GET /s/{id}/interactive`.
pub async fn page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Response, WebError> {
    if q.fragment.is_some() {
        return fragment(state, id, q.before).await;
    }
    let view =
        View { error: None, draft: String::new(), notice: notice_text(q.done.as_deref()), before: q.before };
    render(state, id, view, StatusCode::OK).await
}

struct Data {
    session: Session,
    page: ConversationPage,
    capabilities: Option<Capabilities>,
    pending: Vec<ApprovalView>,
}

struct View {
    error: Option<String>,
    draft: String,
    notice: Option<&'static str>,
    before: Option<i64>,
}

/// Whether an agent run of the session is under way (running, or waiting for an approval).
fn busy(s: &Session) -> bool {
    match s.status {
        SessionStatus::Running => true,
        SessionStatus::AwaitingInput => s.runner_pid.is_some_and(ampsm_engine::process::pid_alive),
        _ => false,
    }
}

async fn render(state: AppState, id: String, v: View, code: StatusCode) -> Result<Response, WebError> {
    let before = v.before;
    let d = state
        .engine(move |e| {
            let session = e.session(&id, true)?;
            let page = e.conversation(&session.id, before, PAGE_LINES)?;
            let capabilities = e.agent_capabilities(&session.agent);
            let pending = e.pending_approvals(Some(session.id.as_str()))?;
            Ok(Data { session, page, capabilities, pending })
        })
        .await?;
    let s = &d.session;
    let sid = s.id.to_string();
    let live = state.inner.auto_update && v.before.is_none();
    let body = html! {
        style { (PreEscaped(CONVERSATION_CSS)) }
        (header(&state, s, Tab::Interactive))
        (notice_line(v.notice))
        (approvals::session_pending(&state, &d.pending))
        @if let Some(c) = &d.capabilities {
            p.dim {
                "Continue: " (format!("{:?}", c.continue_mode).to_lowercase())
                " · interactive input: " (if c.interactive { "yes" } else { "no" })
                " · reports cost: " (if c.reports_cost { "yes" } else { "no" })
                " · " span #tool-calls { "Tool calls (" (d.page.tool_call_count) ")" }
            }
        }
        h2 #conversation-title { "Conversation" }
        (earlier_link(&sid, d.page.earlier))
        div #feed role="log" aria-labelledby="conversation-title" data-session=(sid)
            data-src=[live.then(|| format!("/s/{sid}/feed"))] data-after=(d.page.last_id) {
            (blocks(&d.page))
            @if d.page.entries.is_empty() && d.page.iterations.is_empty() {
                p.dim.empty { "Nothing yet: send a message to start the agent." }
            }
        }
        @if v.before.is_some() {
            p { a href={ "/s/" (sid) "/interactive" } { "Back to the latest" } }
        }
        (control(&state, s, v.error.as_deref(), &v.draft))
        script { (PreEscaped(CONVERSATION_JS)) }
    };
    let page = layout::page(
        &state,
        Page { title: &s.name, section: Section::Sessions, live: Some(format!("session:{sid}")), body },
    );
    Ok((code, page).into_response())
}

/// `?fragment=1`: the blocks of the page before line `before`, with the next "Load earlier" link.
async fn fragment(state: AppState, id: String, before: Option<i64>) -> Result<Response, WebError> {
    let (sid, page) = state
        .engine(move |e| {
            let session = e.session(&id, true)?;
            let page = e.conversation(&session.id, before, PAGE_LINES)?;
            Ok((session.id.to_string(), page))
        })
        .await?;
    let markup = html! { (earlier_link(&sid, page.earlier)) (blocks(&page)) };
    Ok(Html(markup.into_string()).into_response())
}

fn earlier_link(sid: &str, earlier: Option<i64>) -> Markup {
    html! {
        p #earlier {
            @if let Some(b) = earlier {
                a #load-earlier href={ "/s/" (sid) "/interactive?before=" (b) } data-before=(b) { "Load earlier" }
            }
        }
    }
}

/// The page's entries grouped into one block per iteration, in order.
fn blocks(page: &ConversationPage) -> Markup {
    let mut groups: Vec<(Option<&str>, Vec<&Entry>)> = Vec::new();
    for e in &page.entries {
        match groups.last_mut() {
            Some((it, list)) if *it == e.iteration_id.as_deref() => list.push(e),
            _ => groups.push((e.iteration_id.as_deref(), vec![e])),
        }
    }
    // Iterations with nothing on the page yet (one that just started) still get their block.
    for it in &page.iterations {
        let last_ts = page.entries.last().map(|e| e.ts).unwrap_or(0);
        if !groups.iter().any(|(i, _)| *i == Some(it.iteration.id.as_str()))
            && it.iteration.started_at >= last_ts
        {
            groups.push((Some(it.iteration.id.as_str()), Vec::new()));
        }
    }
    html! {
        @for (it, list) in &groups {
            section.iteration data-iteration=(it.unwrap_or("")) {
                @if let Some(summary) = it.and_then(|i| page.iterations.iter().find(|s| s.iteration.id == i)) {
                    (iteration_header(summary))
                }
                div.entries {
                    @for e in list { (entry(e)) }
                }
            }
        }
    }
}

/// An iteration's header: a live region, so its outcome, tests, commit, tokens and cost arrive by
/// themselves.
pub fn iteration_header(s: &IterationSummary) -> Markup {
    let it = &s.iteration;
    let outcome = match (&it.outcome, it.ended_at) {
        (Some(o), _) => o.as_str().to_string(),
        (None, None) => "running".to_string(),
        (None, Some(_)) => "ended".to_string(),
    };
    html! {
        header.it-head id={ "it-" (it.id) } data-live data-started=(it.started_at) data-ended=[it.ended_at] {
            div.it-line {
                b { "Iteration " (it.seq) } " "
                (layout::status(&outcome))
                @if let Some(code) = it.test_exit_code {
                    " " @if code == 0 { (approvals::status_word("tests passed", "passed")) }
                    @else { (approvals::status_word(&format!("tests failed ({code})"), "failed")) }
                }
                @if it.denials > 0 { " " (approvals::status_word(&format!("{} denied", it.denials), "denied")) }
                span.dim {
                    @if let Some(sha) = &it.commit_sha { " · commit " code { (layout::short(sha)) } }
                    " · " span.tokens { (tokens_text(s.tokens.total())) " tokens" }
                    " · " span.cost { (cost_text(s.cost_usd)) }
                    " · " span.elapsed { (it.ended_at.map(|e| ms_text(e - it.started_at)).unwrap_or_else(|| "running".into())) }
                    " · " (layout::time_text(it.started_at).get(..19).unwrap_or(""))
                }
            }
            @if let Some(p) = it.prompt.as_deref().filter(|p| !p.trim().is_empty()) {
                div.prompt.md { (PreEscaped(markdown::to_html(p))) }
            }
            @if let Some(err) = &it.error { div.err { (err) } }
        }
    }
}

fn tokens_text(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.2}M", n as f64 / 1e6),
    }
}

fn cost_text(c: Option<f64>) -> String {
    c.map(|c| format!("${c:.4}")).unwrap_or_else(|| "cost unknown".into())
}

/// One entry, as the page and the live feed render it.
pub fn entry(e: &Entry) -> Markup {
    let id = e.line_id;
    html! {
        @match &e.item {
            Item::User { text } => div.entry.user data-id=(id) { div.who { "You" } div.md { (PreEscaped(markdown::to_html(text))) } },
            Item::Assistant { text } => div.entry.assistant id={ "m-" (id) } data-id=(id) { div.md { (PreEscaped(markdown::to_html(text))) } },
            Item::Thinking { text } => details.entry.thinking data-id=(id) { summary { "Thinking" } div.md { (PreEscaped(markdown::to_html(text))) } },
            Item::Tool(card) => (tool_card(id, e.iteration_id.as_deref(), card)),
            Item::ToolResult { call_id, result } => div.entry.result data-id=(id) data-call=(call_id) {
                span.dim { "Result of call " code { (call_id) } " " } (outcome_badge(Some(result), false)) (result_body(result))
            },
            Item::Denied { tool, detail, .. } => div.entry.denied data-id=(id) {
                (approvals::status_word("DENIED", "denied")) " " b { (tool) } @if let Some(d) = detail { " " span.dim { (d) } }
            },
            Item::Permission { tool, input } => div.entry.permission data-id=(id) {
                "Asks to run " b { (tool) } pre { (clip(&pretty(input), MAX_SHOWN)) }
            },
            Item::Error { message } => div.entry.error data-id=(id) role="note" { (message) },
            Item::Notice { text } => div.entry.notice.dim data-id=(id) { (text) },
            Item::Output { text } => div.entry.output data-id=(id) { (text) },
            Item::FileChange { path, change } => div.entry.notice.dim data-id=(id) { (change) " " code { (path) } },
            Item::RunResult { ok, error, duration_ms, .. } => div.entry.run-result data-id=(id) {
                "Run ended " (layout::status(if *ok { "ok" } else { "failed" }))
                @if let Some(d) = duration_ms { span.dim { " after " (ms_text(*d as i64)) } }
                @if let Some(err) = error { div.err { (err) } }
            },
            Item::Usage { .. } => {},
        }
    }
}

/// What kind of tool a call is, by its name and input.
#[derive(PartialEq)]
enum ToolKind {
    Edit,
    Shell,
    Read,
    Other,
}

fn tool_kind(name: &str, input: &Value) -> ToolKind {
    let n = name.to_lowercase();
    let has = |k: &str| input.get(k).is_some();
    if has("old_string")
        || has("new_string")
        || has("old_str")
        || has("new_str")
        || has("patch")
        || has("edits")
        || n.contains("edit")
        || n.contains("write")
        || n.contains("patch")
        || n == "create_file"
    {
        ToolKind::Edit
    } else if has("command") || has("cmd") || n == "bash" || n.contains("shell") || n.contains("exec") {
        ToolKind::Shell
    } else if n.contains("read") || n == "view" || (has("file_path") || has("path")) && !has("content") {
        ToolKind::Read
    } else {
        ToolKind::Other
    }
}

fn str_field<'a>(input: &'a Value, keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|k| input.get(*k).and_then(Value::as_str))
}

fn command_of(input: &Value) -> Option<String> {
    match input.get("command").or_else(|| input.get("cmd")) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(a)) => Some(
            a.iter()
                .map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        _ => None,
    }
}

fn path_of(input: &Value) -> Option<&str> {
    str_field(
        input,
        &["file_path", "path", "filePath", "filename", "target_file", "notebook_path", "pattern", "url"],
    )
}

/// A tool call card: what was called, on what, how it ended; the details open on a click.
pub fn tool_card(line_id: i64, iteration: Option<&str>, c: &ToolCard) -> Markup {
    let kind = tool_kind(&c.name, &c.input);
    let what = match kind {
        ToolKind::Shell => command_of(&c.input),
        _ => path_of(&c.input).map(str::to_string),
    };
    html! {
        details.entry.tool data-id=(line_id) data-call=(c.call_id) data-iteration=[iteration] {
            summary {
                span.tool-name { (c.name) } " "
                @if let Some(w) = &what { code.what { (clip(w, 200)) } " " }
                span.badge-slot { (outcome_badge(c.result.as_ref(), c.denied)) }
                @if let Some(d) = c.result.as_ref().and_then(|r| r.duration_ms) { span.dim.dur { " " (ms_text(d)) } }
            }
            div.tool-body {
                @match kind {
                    ToolKind::Edit => (edit_body(&c.input)),
                    ToolKind::Shell => pre.cmd { "$ " (clip(&command_of(&c.input).unwrap_or_default(), MAX_SHOWN)) },
                    ToolKind::Read => p { "Path: " code { (path_of(&c.input).unwrap_or("")) } },
                    ToolKind::Other => pre.input { (clip(&pretty(&c.input), MAX_SHOWN)) },
                }
                div.result-slot {
                    @if let Some(r) = &c.result { (result_body(r)) }
                }
            }
        }
    }
}

/// The badge of a call: ok, failed (with its exit code), DENIED, or running.
pub fn outcome_badge(r: Option<&ToolOutcome>, denied: bool) -> Markup {
    html! {
        @if denied { (approvals::status_word("DENIED", "denied")) }
        @else { @match r {
            Some(r) if r.ok => (layout::status("ok")),
            Some(r) => (approvals::status_word(&r.exit_code.map(|c| format!("failed (exit {c})")).unwrap_or_else(|| "failed".into()), "failed")),
            None => (approvals::status_word("running", "running")),
        } }
    }
}

/// A call's result: exit code and output.
pub fn result_body(r: &ToolOutcome) -> Markup {
    html! {
        @if let Some(code) = r.exit_code { p.dim.exit { "exit code " (code) } }
        @if !r.output.trim().is_empty() { pre.output { (clip(&r.output, MAX_SHOWN)) } }
    }
}

/// An edit's diff: the old and new strings of each edit, a patch as it was sent, or a new file's text.
fn edit_body(input: &Value) -> Markup {
    let path = path_of(input);
    let pairs: Vec<(&str, &str)> = match input.get("edits").and_then(Value::as_array) {
        Some(list) => list
            .iter()
            .map(|e| {
                (
                    str_field(e, &["old_string", "old_str"]).unwrap_or(""),
                    str_field(e, &["new_string", "new_str"]).unwrap_or(""),
                )
            })
            .collect(),
        None => {
            match (str_field(input, &["old_string", "old_str"]), str_field(input, &["new_string", "new_str"]))
            {
                (None, None) => Vec::new(),
                (o, n) => vec![(o.unwrap_or(""), n.unwrap_or(""))],
            }
        }
    };
    let patch = str_field(input, &["patch", "diff", "input"]);
    let content = str_field(input, &["content", "contents", "file_text"]);
    html! {
        @if let Some(p) = path { p { "Path: " code { (p) } } }
        @if !pairs.is_empty() {
            pre.diff {
                @for (old, new) in &pairs {
                    @for l in clip(old, MAX_SHOWN).lines() { span.del { "-" (l) "\n" } }
                    @for l in clip(new, MAX_SHOWN).lines() { span.add { "+" (l) "\n" } }
                }
            }
        } @else if let Some(p) = patch {
            pre.diff {
                @for l in clip(p, MAX_SHOWN).lines() {
                    @if l.starts_with("+++") || l.starts_with("---") || l.starts_with("***") { span.file { (l) "\n" } }
                    @else if l.starts_with('+') { span.add { (l) "\n" } }
                    @else if l.starts_with('-') { span.del { (l) "\n" } }
                    @else if l.starts_with("@@") { span.hunk { (l) "\n" } }
                    @else { (l) "\n" }
                }
            }
        } @else if let Some(c) = content {
            pre.diff { @for l in clip(c, MAX_SHOWN).lines() { span.add { "+" (l) "\n" } } }
        } @else {
            pre.input { (clip(&pretty(input), MAX_SHOWN)) }
        }
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let end = s.floor_char_boundary(max);
    format!("{}… ({} more bytes)", &s[..end], s.len() - end)
}

/// The message form and, while the agent runs, Stop: a live region, so Send comes back by itself.
fn control(state: &AppState, s: &Session, error: Option<&str>, draft: &str) -> Markup {
    let sid = s.id.as_str();
    let running = busy(s);
    html! {
        div #control data-live data-busy=(running) {
            h2 { "Message" }
            (error_line(error))
            form method="post" action={ "/s/" (sid) "/message" } #message-form {
                (csrf(state))
                label for="message" { "Message to the agent" }
                textarea name="prompt" #message rows="3"
                    placeholder="Tell the agent what to do next (runs one iteration, continuing its thread)" { (draft) }
                div.actions {
                    button.primary #send type="submit" disabled[running] { "Send" }
                    @if running { span.dim #send-why { " the agent is running" } }
                }
            }
            @if running {
                form.inline #control-stop method="post" action={ "/s/" (sid) "/stop" } {
                    (csrf(state))
                    button.danger type="submit" aria-label={ "Stop the agent of session " (s.name) } { "Stop" }
                }
            }
        }
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
        let view =
            View { error: Some("the message is empty".into()), draft: f.prompt, notice: None, before: None };
        return render(state, id, view, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let id2 = id.clone();
    let session = state.engine(move |e| Ok(e.session(&id2, false)?)).await?;
    let sid = session.id.to_string();
    let running = session.status == SessionStatus::Running
        && session.runner_pid.is_some_and(ampsm_engine::process::pid_alive);
    if running || busy(&session) {
        let line = format!("session {} is running; wait for it to finish", session.name);
        let view = View { error: Some(line), draft: f.prompt, notice: None, before: None };
        return render(state, sid, view, StatusCode::CONFLICT).await;
    }
    state.spawn_iteration(sid.clone(), Some(f.prompt));
    Ok(Redirect::to(&format!("/s/{sid}/interactive?done=sent")).into_response())
}

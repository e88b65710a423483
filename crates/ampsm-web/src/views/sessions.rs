//! Sessions: the list with live status, and the "New session" form (with an optional first run on a
//! background thread). Engine errors are shown in one line above the form, which keeps what was typed.

use crate::error::WebError;
use crate::state::AppState;
use crate::views::layout::{self, Page, Section, csrf, error_line, notice_line, short, status};
use ampsm_core::PermissionPolicy;
use ampsm_engine::CreateSession;
use ampsm_engine::SessionQuery;
use ampsm_engine::records::Session;
use ampsm_engine::runs::permissions::AgentPolicies;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;

/// What the "New session" form posts.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NewSessionForm {
    pub repo: String,
    pub name: String,
    pub base: String,
    pub agent: String,
    pub model: String,
    pub script: String,
    /// A setup command for the new worktree; empty: the configured one, if any.
    #[serde(default)]
    pub setup: String,
    pub budget: String,
    pub prompt: String,
    /// `auto`, `ask`, `read-only`, `full`; empty: the config's default for the agent.
    pub permissions: String,
    /// "on" when the first iteration should start right away.
    pub run: Option<String>,
}

/// `?done=` notices after a redirect.
#[derive(Debug, Default, Deserialize)]
pub struct Notice {
    pub done: Option<String>,
}

/// The text of a `?done=` code (codes only, so a link cannot put arbitrary text on the page).
pub fn notice_text(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "removed" => "Session removed.",
        "created" => "Session created.",
        "started" => "Session created; its first iteration is running.",
        "setup" => "Session created; its setup command is running (then the first iteration, if asked).",
        "sent" => "Message sent; the agent is running.",
        "staged" => "Staged.",
        "unstaged" => "Unstaged.",
        "committed" => "Committed.",
        "squashed" => "Squashed (a snapshot was saved first; Undo brings it back).",
        "rebased" => "Rebased.",
        "merged" => "Merged.",
        "undone" => "Restored the last snapshot.",
        "batch" => "Batch started.",
        "bench" => "Benchmark run started.",
        "aborted" => "Abort requested.",
        "resumed" => "Resumed: the unfinished items run again.",
        "cleaned" => "Worktrees cleaned (unmerged work was snapshotted first).",
        "approved" => "Approved: the agent goes on with that tool call.",
        "denied" => "Denied: the agent was told (with your message, if any).",
        "stopped" => "Stopped: the agent's processes are ended and its work so far is committed.",
        "stopped-repaired" => {
            "Stopped: its runner was gone, so the agent's processes were ended and the session repaired; \
             uncommitted changes are kept in the worktree."
        }
        _ => return None,
    })
}

/// `GET /`: the sessions list and the form.
pub async fn index(State(state): State<AppState>, Query(n): Query<Notice>) -> Result<Response, WebError> {
    let defaults = NewSessionForm { agent: String::new(), ..Default::default() };
    render(state, defaults, None, notice_text(n.done.as_deref()), StatusCode::OK).await
}

async fn render(
    state: AppState,
    form: NewSessionForm,
    error: Option<String>,
    notice: Option<&str>,
    code: StatusCode,
) -> Result<Response, WebError> {
    let (sessions, default_agent, policies) = state
        .engine(|e| {
            let list = e.sessions(&SessionQuery::default())?;
            Ok((list, e.config().session.default_agent.clone(), e.agent_policies()))
        })
        .await?;
    let body = html! {
        h1 { "Sessions" }
        (notice_line(notice))
        (session_table(&state, &sessions))
        h2 #new { "New session" }
        (error_line(error.as_deref()))
        (new_form(&state, &form, &default_agent, &policies))
    };
    let page = layout::page(
        &state,
        Page { title: "Sessions", section: Section::Sessions, live: Some("sessions".into()), body },
    );
    Ok((code, page).into_response())
}

fn session_table(state: &AppState, sessions: &[Session]) -> Markup {
    html! {
        div #sessions data-live {
            @if sessions.is_empty() {
                p.dim { "No sessions yet. Create one with the form below." }
            } @else {
                table {
                    tr { th { "Name" } th { "Status" } th { "Agent" } th { "Branch" } th { "Repository" } th { "Created" } }
                    @for s in sessions {
                        tr data-session=(s.id.as_str()) {
                            td { a href={ "/s/" (s.id.as_str()) } { (s.name) } " " span.dim { (short(s.id.as_str())) } }
                            td.status {
                                (status(s.status.as_str()))
                                @if let Some(f) = state.failure(s.id.as_str()) { div.dim { (f) } }
                                @else if let Some(n) = &s.status_note { div.dim { (n) } }
                            }
                            td { (s.agent) @if let Some(m) = &s.model { span.dim { " (" (m) ")" } } }
                            td { code { (s.branch) } }
                            td { (s.repo_path) }
                            td.dim { (layout::time_text(s.created_at)) }
                        }
                    }
                }
            }
        }
    }
}

/// Sets the text of the Permissions select's first option to the chosen agent's default.
const POLICY_JS: &str = "(function(){var a=document.getElementById('agent'),p=document.getElementById('permissions');\
if(!a||!p)return;var d=JSON.parse(p.getAttribute('data-defaults')||'{}');function f(){var o=p.querySelector('option[value=\"\"]');\
if(o&&d[a.value])o.textContent='default (from config: '+d[a.value]+')'}a.addEventListener('change',f);f()})();";

fn new_form(state: &AppState, f: &NewSessionForm, default_agent: &str, policies: &[AgentPolicies]) -> Markup {
    let agent = if f.agent.is_empty() { default_agent } else { f.agent.as_str() };
    let defaults: serde_json::Map<String, serde_json::Value> =
        policies.iter().map(|p| (p.agent.to_string(), p.default.as_str().into())).collect();
    let default_text = match policies.iter().find(|p| p.agent == agent) {
        Some(p) => format!("default (from config: {})", p.default.as_str()),
        None => "default (from config)".to_string(),
    };
    html! {
        form.grid method="post" action="/sessions" #new-session {
            (csrf(state))
            label for="repo" { "Repository path" }
            input #repo name="repo" required value=(f.repo) placeholder="/path/to/repo";
            label for="name" { "Name" }
            input #name name="name" required value=(f.name) placeholder="jwt-auth";
            label for="base" { "Base branch" }
            input #base name="base" value=(f.base) placeholder="(default branch)";
            label for="agent" { "Agent" }
            select #agent name="agent" {
                @for a in ampsm_core::agents::agent_names() { option value=(a) selected[a == agent] { (a) } }
            }
            label for="model" { "Model" }
            input #model name="model" value=(f.model) placeholder="(agent default; Amp: mode)";
            label for="script" { "Test script" }
            input #script name="script" value=(f.script) placeholder="npm test";
            label for="setup" { "Setup" }
            input #setup name="setup" value=(f.setup) placeholder="(the configured one; e.g. npm ci)";
            label for="permissions" { "Permissions" }
            div {
                select #permissions name="permissions" aria-describedby="permissions-help"
                    data-defaults=(serde_json::Value::Object(defaults).to_string()) {
                    option value="" selected[f.permissions.trim().is_empty()] { (default_text) }
                    @for p in PermissionPolicy::ALL {
                        option value=(p.as_str()) title=(p.meaning()) selected[f.permissions.trim() == p.as_str()] { (p.as_str()) }
                    }
                }
                ul #permissions-help.dim {
                    @for p in PermissionPolicy::ALL { li { b { (p.as_str()) } ": " (p.meaning()) } }
                    li { "default: the config's " code { "agents.<name>.permissions" } ", else " code { "session.permissions" }
                         " (" @for (i, p) in policies.iter().enumerate() { @if i > 0 { ", " } (p.agent) " " (p.default.as_str()) } ")" }
                }
            }
            label for="budget" { "Budget (USD)" }
            input #budget name="budget" value=(f.budget) inputmode="decimal" placeholder="(none)";
            label for="prompt" { "Prompt" }
            textarea #prompt name="prompt" rows="4" { (f.prompt) }
            span {}
            label { input type="checkbox" name="run" #run checked[f.run.is_some()]; " run the first iteration now" }
            span {}
            div { button.primary type="submit" { "Create session" } }
        }
        script { (PreEscaped(POLICY_JS)) }
    }
}

fn opt(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// `POST /sessions`: creates the session; with "run now", starts its first iteration in the background.
pub async fn create(
    State(state): State<AppState>,
    Form(f): Form<NewSessionForm>,
) -> Result<Response, WebError> {
    let budget = match opt(&f.budget) {
        None => None,
        Some(b) => match b.trim_start_matches('$').parse::<f64>() {
            Ok(v) => Some(v),
            Err(_) => {
                let msg = format!("budget must be an amount in USD, got {b:?}");
                return render(state, f, Some(msg), None, StatusCode::UNPROCESSABLE_ENTITY).await;
            }
        },
    };
    let permissions = match opt(&f.permissions).map(|p| p.parse::<PermissionPolicy>()) {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(msg)) => return render(state, f, Some(msg), None, StatusCode::UNPROCESSABLE_ENTITY).await,
    };
    let req = CreateSession {
        repo: f.repo.trim().into(),
        name: f.name.trim().to_string(),
        prompt: opt(&f.prompt),
        base: opt(&f.base),
        agent: opt(&f.agent),
        model: opt(&f.model),
        script: opt(&f.script),
        budget_usd: budget.map(ampsm_core::Money::from_usd),
        permissions,
        // The configured setup runs in the background once the session exists (it may take minutes).
        setup: Some(String::new()),
        ..Default::default()
    };
    if f.repo.trim().is_empty() {
        return render(
            state,
            f,
            Some("the repository path is empty".into()),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let explicit_setup = opt(&f.setup);
    let made = state
        .engine(move |e| {
            let session = e.create_session(req)?;
            let setup =
                explicit_setup.or_else(|| e.config().setup_for(std::path::Path::new(&session.repo_path)));
            Ok((session, setup))
        })
        .await;
    match made {
        Ok((session, setup)) => {
            let id = session.id.to_string();
            if let Some(command) = setup {
                state.spawn_setup(id.clone(), command, f.run.is_some());
                Ok(Redirect::to(&format!("/s/{id}?done=setup")).into_response())
            } else if f.run.is_some() {
                state.spawn_iteration(id.clone(), None);
                Ok(Redirect::to(&format!("/s/{id}?done=started")).into_response())
            } else {
                Ok(Redirect::to(&format!("/s/{id}?done=created")).into_response())
            }
        }
        Err(e) => {
            let line = e.line();
            render(state, f, Some(line), None, StatusCode::UNPROCESSABLE_ENTITY).await
        }
    }
}

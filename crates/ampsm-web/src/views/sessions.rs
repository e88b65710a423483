//! Sessions: the list (search, filters by status, repository and agent, 50 to a page, optional grouping
//! by repository, cost and +/− columns, relative times; every view a link: `?q=&status=&repo=&agent=
//! &group=repo&page=`), and "New session" at the top: a dialog (a collapsible section without
//! JavaScript) with a picker of known repositories, a folder browser, the base branch chosen from the
//! repository's branches and an installed agent by default. A first run asked for is checked before the
//! page says it started; a failure of it in the background is recorded in the session's timeline.
//! Engine errors are shown in one line above the form, which keeps what was typed.

use crate::error::WebError;
use crate::state::AppState;
use crate::views::layout::{self, Page, Section, csrf, error_line, notice_line, short, status};
use ampsm_core::{PermissionPolicy, SessionStatus};
use ampsm_engine::CreateSession;
use ampsm_engine::runs::permissions::AgentPolicies;
use ampsm_engine::sessions::list::{AgentInstall, SessionListPage, SessionListQuery, SessionListRow};
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;

/// Sessions on one page.
pub const PER_PAGE: u32 = 50;

/// The page's own styles (the theme's variables only).
const CSS: &str = include_str!("../../assets/sessions.css");
/// The dialog, the repository picker, the folder browser, the branch list and relative times.
const JS: &str = include_str!("../../assets/sessions.js");

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

/// The list's view, from the URL: search, filters, grouping and page (all optional; unknown values are
/// ignored), a `?done=` notice, and `new_repo` (a repository chosen in the folder browser without
/// JavaScript) to open the New session form with.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ListParams {
    pub q: String,
    pub status: String,
    pub repo: String,
    pub agent: String,
    /// `repo`: group the rows by repository.
    pub group: String,
    pub page: String,
    pub done: Option<String>,
    pub new_repo: String,
}

impl ListParams {
    fn status(&self) -> Option<SessionStatus> {
        self.status.parse().ok()
    }

    fn grouped(&self) -> bool {
        self.group == "repo"
    }

    fn page(&self) -> u64 {
        self.page.trim().parse::<u64>().ok().filter(|p| *p >= 1).unwrap_or(1)
    }

    /// The query string of this view on another page (empty values left out).
    fn link(&self, page: u64) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("q", self.q.trim()),
            ("status", self.status.as_str()),
            ("repo", self.repo.as_str()),
            ("agent", self.agent.as_str()),
            ("group", self.group.as_str()),
        ] {
            if !v.is_empty() {
                parts.push(format!("{k}={}", encode(v)));
            }
        }
        if page > 1 {
            parts.push(format!("page={page}"));
        }
        if parts.is_empty() { "/".to_string() } else { format!("/?{}", parts.join("&")) }
    }

    fn filtered(&self) -> bool {
        !self.q.trim().is_empty()
            || self.status().is_some()
            || !self.repo.is_empty()
            || !self.agent.is_empty()
    }
}

/// Percent-encodes a query value (everything but unreserved characters).
pub fn encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
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

/// `GET /`: the sessions list and the New session form.
pub async fn index(State(state): State<AppState>, Query(p): Query<ListParams>) -> Result<Response, WebError> {
    let form = NewSessionForm { repo: p.new_repo.clone(), ..Default::default() };
    let notice = notice_text(p.done.as_deref());
    let open = !p.new_repo.is_empty();
    render(state, p, form, None, notice, open, StatusCode::OK).await
}

/// What the page reads from the engine.
struct Data {
    page: SessionListPage,
    installs: Vec<AgentInstall>,
    default_agent: String,
    policies: Vec<AgentPolicies>,
    /// The branches of the form's repository, when one is filled in and readable.
    branches: Option<ampsm_engine::sessions::list::RepoBranches>,
}

async fn render(
    state: AppState,
    params: ListParams,
    form: NewSessionForm,
    error: Option<String>,
    notice: Option<&str>,
    open: bool,
    code: StatusCode,
) -> Result<Response, WebError> {
    let query = SessionListQuery {
        text: Some(params.q.trim().to_string()),
        status: params.status(),
        repo: Some(params.repo.clone()),
        agent: Some(params.agent.clone()),
        include_removed: false,
        by_repo: params.grouped(),
        page: params.page(),
        per_page: PER_PAGE,
    };
    let form_repo = form.repo.trim().to_string();
    let data = state
        .engine(move |e| {
            let page = e.session_page(&query)?;
            let installs = e.agent_installs();
            let default_agent = e.default_installed_agent(&installs);
            let branches = if form_repo.is_empty() {
                None
            } else {
                e.repo_branches(std::path::Path::new(&form_repo)).ok()
            };
            Ok(Data { page, installs, default_agent, policies: e.agent_policies(), branches })
        })
        .await?;
    let body = html! {
        style { (PreEscaped(CSS)) }
        div.sessions-head {
            h1 { "Sessions" }
            a.button.primary #new-session-button href="#new" aria-haspopup="dialog" { "New session" }
        }
        (notice_line(notice))
        details #new.new-session open[open || error.is_some()] {
            summary { h2 #new-title { "New session" } }
            div #new-body {
                (error_line(error.as_deref()))
                (new_form(&state, &form, &data))
            }
        }
        (filters(&params, &data.page))
        (session_table(&state, &params, &data.page))
        script { (PreEscaped(JS)) }
    };
    let page = layout::page(
        &state,
        Page { title: "Sessions", section: Section::Sessions, live: Some("sessions".into()), body },
    );
    Ok((code, page).into_response())
}

/// The search and filter bar (a GET form: the view is in the URL).
fn filters(p: &ListParams, page: &SessionListPage) -> Markup {
    let status = p.status();
    html! {
        form.filters method="get" action="/" role="search" aria-label="Search and filter sessions" {
            input #q type="search" name="q" value=(p.q) aria-label="Search sessions"
                placeholder="Search name, branch, repository, prompt…";
            select #f-status name="status" aria-label="Status" {
                option value="" { "any status" }
                @for s in SessionStatus::ALL {
                    option value=(s.as_str()) selected[status == Some(s)] { (s.as_str()) }
                }
            }
            select #f-repo name="repo" aria-label="Repository" {
                option value="" { "any repository" }
                @for (r, n) in &page.repos {
                    option value=(r) selected[&p.repo == r] { (repo_name(r)) " (" (n) ")" }
                }
            }
            select #f-agent name="agent" aria-label="Agent" {
                option value="" { "any agent" }
                @for a in &page.agents {
                    option value=(a) selected[&p.agent == a] { (a) }
                }
            }
            label { input #f-group type="checkbox" name="group" value="repo" checked[p.grouped()]; " group by repository" }
            button type="submit" { "Filter" }
            @if p.filtered() || p.grouped() { a href="/" { "Clear" } }
        }
    }
}

/// The last folder of a repository path (the whole path is in its `title`).
fn repo_name(path: &str) -> &str {
    path.trim_end_matches('/').rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or(path)
}

fn session_table(state: &AppState, p: &ListParams, page: &SessionListPage) -> Markup {
    let now = ampsm_core::time::now_ms();
    let pages = page.total.div_ceil(u64::from(PER_PAGE)).max(1);
    let current = p.page().min(pages);
    // Each row with whether a repository heading goes before it (grouped view only).
    let headed: Vec<(bool, &SessionListRow)> = page
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let first = i == 0 || page.rows[i - 1].session.repo_path != r.session.repo_path;
            (p.grouped() && first, r)
        })
        .collect();
    html! {
        div #sessions data-live {
            @if page.total == 0 {
                @if p.filtered() {
                    p.dim { "No session matches. " a href="/" { "Show all sessions" } }
                } @else {
                    p.dim { "No sessions yet. Create one with New session." }
                }
            } @else {
                p.dim.count #session-count {
                    (page.total) " session" @if page.total != 1 { "s" }
                    @if pages > 1 { " · page " (current) " of " (pages) }
                }
                table.sessions {
                    thead { tr {
                        th scope="col" { "Name" } th scope="col" { "Status" } th scope="col" { "Agent" }
                        th scope="col" { "Repository · branch" } th.n scope="col" { "Cost" }
                        th.n scope="col" { abbr title="lines added / removed by the session's commits" { "+/−" } }
                        th scope="col" { "Created" }
                    } }
                    tbody {
                        @for (heading, row) in &headed {
                            @if *heading {
                                tr.group { th colspan="7" scope="rowgroup" title=(row.session.repo_path) {
                                    (repo_name(&row.session.repo_path)) " " span.dim { (row.session.repo_path) }
                                } }
                            }
                            (session_row(state, row, now))
                        }
                    }
                }
                @if pages > 1 {
                    nav.pager aria-label="Pages" {
                        @if current > 1 { a rel="prev" href=(p.link(current - 1)) { "← Previous" } }
                        span { "Page " (current) " of " (pages) }
                        @if current < pages { a rel="next" href=(p.link(current + 1)) { "Next →" } }
                    }
                }
            }
        }
    }
}

fn session_row(state: &AppState, row: &SessionListRow, now: i64) -> Markup {
    let s = &row.session;
    html! {
        tr data-session=(s.id.as_str()) {
            td { a href={ "/s/" (s.id.as_str()) } { (s.name) } " " span.dim { (short(s.id.as_str())) } }
            td.status {
                (status(s.status.as_str()))
                @if let Some(f) = state.failure(s.id.as_str()) { div.dim.note-line { (f) } }
                @else if let Some(n) = &s.status_note { div.dim.note-line { (n) } }
            }
            td { (s.agent) @if let Some(m) = &s.model { span.dim { " (" (m) ")" } } }
            td {
                span title=(s.repo_path) { (repo_name(&s.repo_path)) } " · " code { (s.branch) }
            }
            td.n.cost { (cost_text(row)) }
            td.n.lines {
                @if row.lines_added == 0 && row.lines_removed == 0 {
                    span.dim { "—" }
                } @else {
                    span.add { "+" (row.lines_added) } " " span.del { "−" (row.lines_removed) }
                }
            }
            td.dim { (when(s.created_at, now)) }
        }
    }
}

/// A session's cost: `—` before any run, the sum when every usage row is priced, else `unknown` (with
/// what is known, if anything): never `$0.0000` for an agent that reports no cost.
pub fn cost_text(row: &SessionListRow) -> String {
    if row.iterations == 0 && row.priced_rows == 0 && row.unpriced_rows == 0 {
        return "—".to_string();
    }
    if row.priced_rows > 0 && row.unpriced_rows == 0 {
        return row.known_cost_usd.text();
    }
    if row.priced_rows > 0 {
        return format!("unknown (≥ {})", row.known_cost_usd.text());
    }
    "unknown".to_string()
}

/// A time as "3 min ago", with the exact time in a `<time>` element's `datetime` and `title`.
pub fn when(ms: i64, now: i64) -> Markup {
    let exact = layout::time_text(ms);
    html! { time datetime=(exact) title=(exact) data-rel { (relative(ms, now)) } }
}

/// "just now", "5 min ago", "3 h ago", "yesterday", "4 days ago", else the date.
pub fn relative(ms: i64, now: i64) -> String {
    let secs = (now - ms) / 1000;
    match secs {
        s if s < 45 => "just now".to_string(),
        s if s < 90 => "1 min ago".to_string(),
        s if s < 3600 => format!("{} min ago", (s + 30) / 60),
        s if s < 86_400 => format!("{} h ago", s / 3600),
        s if s < 2 * 86_400 => "yesterday".to_string(),
        s if s < 30 * 86_400 => format!("{} days ago", s / 86_400),
        _ => layout::time_text(ms).chars().take(10).collect(),
    }
}

/// Sets the text of the Permissions select's first option to the chosen agent's default.
const POLICY_JS: &str = "(function(){var a=document.getElementById('agent'),p=document.getElementById('permissions');\
if(!a||!p)return;var d=JSON.parse(p.getAttribute('data-defaults')||'{}');function f(){var o=p.querySelector('option[value=\"\"]');\
if(o&&d[a.value])o.textContent='default (from config: '+d[a.value]+')'}a.addEventListener('change',f);f()})();";

fn new_form(state: &AppState, f: &NewSessionForm, data: &Data) -> Markup {
    let policies = &data.policies;
    let agent = if f.agent.is_empty() { data.default_agent.as_str() } else { f.agent.as_str() };
    let defaults: serde_json::Map<String, serde_json::Value> =
        policies.iter().map(|p| (p.agent.to_string(), p.default.as_str().into())).collect();
    let default_text = match policies.iter().find(|p| p.agent == agent) {
        Some(p) => format!("default (from config: {})", p.default.as_str()),
        None => "default (from config)".to_string(),
    };
    let base_default = match &data.branches {
        Some(b) => format!("default ({})", b.default_base),
        None => "default branch".to_string(),
    };
    html! {
        form.grid method="post" action="/sessions" #new-session {
            (csrf(state))
            label for="repo" { "Repository" }
            div.repo-field {
                div.row {
                    input #repo name="repo" required value=(f.repo) placeholder="/path/to/repo" list="known-repos"
                        autocomplete="off" aria-describedby="repo-help";
                    a.button #browse-button href="/browse" { "Browse…" }
                    // The desktop app's native folder picker (shown by sessions.js only inside the app).
                    button #pick-folder type="button" hidden { "Choose folder…" }
                }
                datalist #known-repos {
                    @for (r, _) in &data.page.repos { option value=(r) {} }
                }
                @if !data.page.repos.is_empty() {
                    div.row #known-repo-row hidden {
                        select #known-repo aria-label="Known repositories" {
                            option value="" { "Pick a known repository…" }
                            @for (r, n) in &data.page.repos {
                                option value=(r) { (repo_name(r)) " — " (r) " (" (n) " session" @if *n != 1 { "s" } ")" }
                            }
                        }
                    }
                }
                div #folder-browser.folder-browser hidden {}
                div.dim #repo-help { "A git repository: pick a known one, browse your folders, or type its path." }
            }
            label for="name" { "Name" }
            input #name name="name" required value=(f.name) placeholder="jwt-auth";
            label for="base" { "Base branch" }
            div {
                select #base name="base" aria-describedby="base-help" {
                    option value="" selected[f.base.is_empty()] { (base_default) }
                    @if let Some(b) = &data.branches {
                        @for br in &b.branches {
                            option value=(br) selected[f.base == *br] { (br) }
                        }
                    }
                    @if !f.base.is_empty() && !data.branches.as_ref().is_some_and(|b| b.branches.contains(&f.base)) {
                        option value=(f.base) selected { (f.base) }
                    }
                }
                div.dim #base-help { "The repository's branches; the session starts from the one chosen." }
            }
            label for="agent" { "Agent" }
            select #agent name="agent" {
                @for a in &data.installs {
                    option value=(a.agent) selected[a.agent == agent] {
                        (a.agent) @if !a.installed { " (not installed)" }
                    }
                }
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
                details.dim #permissions-help {
                    summary { "What the policies mean" }
                    ul {
                        @for p in PermissionPolicy::ALL { li { b { (p.as_str()) } ": " (p.meaning()) } }
                        li { "default: the config's " code { "agents.<name>.permissions" } ", else " code { "session.permissions" }
                             " (" @for (i, p) in policies.iter().enumerate() { @if i > 0 { ", " } (p.agent) " " (p.default.as_str()) } ")" }
                    }
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

/// The form again with an error line (status 422), the dialog open.
async fn form_error(state: AppState, f: NewSessionForm, line: String) -> Result<Response, WebError> {
    render(state, ListParams::default(), f, Some(line), None, true, StatusCode::UNPROCESSABLE_ENTITY).await
}

/// `POST /sessions`: creates the session; with "run now", checks that the first iteration can start
/// (agent installed, a prompt, …) and starts it in the background. When it cannot start, the session
/// page shows why (and the session's timeline keeps it), not that it runs.
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
                return form_error(state, f, msg).await;
            }
        },
    };
    let permissions = match opt(&f.permissions).map(|p| p.parse::<PermissionPolicy>()) {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(msg)) => return form_error(state, f, msg).await,
    };
    if f.repo.trim().is_empty() {
        return form_error(state, f, "the repository path is empty".into()).await;
    }
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
    let explicit_setup = opt(&f.setup);
    let run = f.run.is_some();
    let made = state
        .engine(move |e| {
            let session = e.create_session(req)?;
            let setup =
                explicit_setup.or_else(|| e.config().setup_for(std::path::Path::new(&session.repo_path)));
            // "Run now": the checks of a run, before anything says it started; a refusal is recorded.
            let blocked = if run {
                match e.check_can_run(session.id.as_str()) {
                    Ok(()) => None,
                    Err(err) => {
                        let line = WebError::from(err).line();
                        e.record_background_failure(&session.id, "first run", &line)?;
                        Some(line)
                    }
                }
            } else {
                None
            };
            Ok((session, setup, blocked))
        })
        .await;
    match made {
        Ok((session, setup, blocked)) => {
            let id = session.id.to_string();
            if let Some(line) = blocked {
                state.lock().failures.insert(id.clone(), format!("the first run did not start: {line}"));
                if let Some(command) = setup {
                    state.spawn_setup(id.clone(), command, false);
                }
                return Ok(Redirect::to(&format!("/s/{id}")).into_response());
            }
            if let Some(command) = setup {
                state.spawn_setup(id.clone(), command, run);
                Ok(Redirect::to(&format!("/s/{id}?done=setup")).into_response())
            } else if run {
                state.spawn_iteration(id.clone(), None);
                Ok(Redirect::to(&format!("/s/{id}?done=started")).into_response())
            } else {
                Ok(Redirect::to(&format!("/s/{id}?done=created")).into_response())
            }
        }
        Err(e) => {
            let line = e.line();
            form_error(state, f, line).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_read_like_speech() {
        let now = 10 * 86_400_000;
        assert_eq!(relative(now - 5_000, now), "just now");
        assert_eq!(relative(now - 3 * 60_000, now), "3 min ago");
        assert_eq!(relative(now - 2 * 3_600_000, now), "2 h ago");
        assert_eq!(relative(now - 4 * 86_400_000, now), "4 days ago");
    }

    #[test]
    fn links_keep_the_view() {
        let p = ListParams {
            q: "jwt auth".into(),
            status: "error".into(),
            group: "repo".into(),
            ..Default::default()
        };
        assert_eq!(p.link(2), "/?q=jwt%20auth&status=error&group=repo&page=2");
        assert_eq!(ListParams::default().link(1), "/");
        assert_eq!(encode("a&b=c"), "a%26b%3Dc");
    }
}

//! Session → Git: the worktree's staged, unstaged and untracked files, the diff (branch against base, or
//! uncommitted), history and snapshots, and the review actions of the CLI (stage, unstage, commit,
//! squash, rebase with continue/abort, merge with a dry-run preview first, undo), each one engine call.
//! Conflicts are listed per file with the engine's next steps.

use crate::error::WebError;
use crate::state::AppState;
use crate::views::layout::{self, Page, Section, csrf, error_line, notice_line, short, status};
use crate::views::session::{Tab, header};
use crate::views::sessions::notice_text;
use ampsm_core::{MergeResult, RebaseResult};
use ampsm_engine::review::merge::{MergeReport, MergeRequest, MergeStrategy};
use ampsm_engine::review::{DiffMode, DiffReport, DiffRequest, LogEntry, RebaseReport, ReviewStatus};
use ampsm_engine::{Engine, SessionDetails};
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

/// The largest patch shown on the page.
const MAX_PATCH_BYTES: usize = 512 * 1024;

/// `?uncommitted=1&path=…&done=…`.
#[derive(Debug, Default, Deserialize)]
pub struct GitQuery {
    pub uncommitted: Option<String>,
    pub path: Option<String>,
    pub done: Option<String>,
}

struct Data {
    details: SessionDetails,
    status: Option<ReviewStatus>,
    diff: Option<DiffReport>,
    log: Vec<LogEntry>,
    problem: Option<String>,
}

fn load(e: &Engine, id: &str, uncommitted: bool, path: Option<String>) -> Result<Data, WebError> {
    let details = e.session_details(id)?;
    let sid = details.session.id.to_string();
    let mut problem = None;
    let status = match e.review_status(&sid) {
        Ok(s) => Some(s),
        Err(err) => {
            problem = Some(WebError::from(err).line());
            None
        }
    };
    let diff = if status.is_some() {
        let req = DiffRequest { mode: DiffMode::Patch, uncommitted, paths: path.into_iter().collect() };
        e.review_diff(&sid, &req).ok()
    } else {
        None
    };
    let log = if status.is_some() { e.review_log(&sid).unwrap_or_default() } else { Vec::new() };
    Ok(Data { details, status, diff, log, problem })
}

/// `GET /s/{id}/git`.
pub async fn page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<GitQuery>,
) -> Result<Response, WebError> {
    let notice = notice_text(q.done.as_deref());
    render(state, id, q, None, notice, html! {}, StatusCode::OK).await
}

async fn render(
    state: AppState,
    id: String,
    q: GitQuery,
    error: Option<String>,
    notice: Option<&str>,
    result: Markup,
    code: StatusCode,
) -> Result<Response, WebError> {
    let uncommitted = q.uncommitted.is_some();
    let path = q.path.clone().filter(|p| !p.is_empty());
    let d = state.engine(move |e| load(e, &id, uncommitted, path)).await?;
    let s = &d.details.session;
    let sid = s.id.to_string();
    let base = format!("/s/{sid}/git");
    let act = |a: &str| format!("{base}/{a}");
    let body = html! {
        (header(&state, s, Tab::Git))
        (notice_line(notice))
        (error_line(error.as_deref()))
        (result)
        (error_line(d.problem.as_deref()))
        @if let Some(st) = &d.status {
            div #git-status data-live {
                p {
                    "Head " code { (st.head.as_deref().map(short).unwrap_or("-")) }
                    " · " (st.ahead) " commit(s) ahead of " code { (st.base) } ", " (st.behind) " behind"
                    @if st.clean { " · " span.s-done { "clean" } }
                }
                @if st.rebase_in_progress {
                    div.err.warn {
                        "A rebase is in progress"
                        @if !st.conflicts.is_empty() { "; conflicts in: " (st.conflicts.join(", ")) }
                        ". Resolve the files in " code { (st.worktree) } ", stage them, then continue."
                        form.inline method="post" action=(act("rebase-continue")) { (csrf(&state)) " " button.primary { "Continue rebase" } }
                        form.inline method="post" action=(act("rebase-abort")) { (csrf(&state)) " " button.danger { "Abort rebase" } }
                    }
                }
                (file_lists(&state, &act, st))
            }
            section {
                h2 { "Commit" }
                form.inline method="post" action=(act("commit")) {
                    (csrf(&state))
                    input name="message" size="60" placeholder="Commit message (commits what is staged)" required;
                    " " button.primary type="submit" { "Commit" }
                }
            }
        }
        section {
            h2 { "Diff" }
            p {
                @if uncommitted { a href=(base) { "branch against base" } " · " b { "uncommitted" } }
                @else { b { "branch against base" } " · " a href={ (base) "?uncommitted=1" } { "uncommitted" } }
                @if let Some(p) = &q.path { " · only " code { (p) } " (" a href=(base) { "all files" } ")" }
            }
            @if let Some(diff) = &d.diff { (diff_view(&base, diff, uncommitted)) }
        }
        section {
            h2 { "History" }
            @if d.log.is_empty() { p.dim { "No commits on the branch yet." } }
            @else {
                table #history {
                    tr { th { "Commit" } th { "Subject" } th { "Author" } th {} }
                    @for e in &d.log {
                        tr { td { code { (short(&e.commit.sha)) } } td { (e.commit.subject) } td.dim { (e.commit.author) } td { @if e.agent { span.badge { "agent" } } } }
                    }
                }
            }
            h2 { "Snapshots" }
            @if d.details.snapshots.is_empty() { p.dim { "None yet (one is saved before every squash, rebase, merge or forced removal)." } }
            @else {
                table #snapshots {
                    tr { th { "#" } th { "Ref" } th { "Commit" } th { "Reason" } th { "Taken" } th { "Restored" } }
                    @for sn in &d.details.snapshots {
                        tr { td { (sn.seq) } td { code { (sn.refname) } } td { code { (short(&sn.sha)) } } td { (sn.reason) }
                             td.dim { (layout::time_text(sn.created_at)) } td.dim { (sn.restored_at.map(layout::time_text).unwrap_or_default()) } }
                    }
                }
            }
        }
        section {
            h2 { "Squash, rebase, merge" }
            form method="post" action=(act("squash")) {
                (csrf(&state))
                input name="message" size="50" placeholder="Message (default: from the commits)";
                label { " " input type="checkbox" name="agent_only"; " only the agent's commits" }
                " " button type="submit" { "Squash" }
            }
            p {}
            form method="post" action=(act("rebase")) {
                (csrf(&state))
                input name="onto" size="30" placeholder={ "onto (default: " (s.base_branch) ")" };
                " " button type="submit" { "Rebase" }
            }
            p {}
            form method="post" action=(act("merge-preview")) #merge-form {
                (csrf(&state))
                select name="strategy" { option value="squash" { "squash" } option value="rebase" { "rebase" } option value="merge" { "merge" } }
                " " input name="message" size="40" placeholder="Message (squash/merge)";
                " " button.primary type="submit" { "Preview merge" }
                span.dim { " (a dry run first: checks and conflicts; nothing changes)" }
            }
            p {}
            form method="post" action=(act("undo")) {
                (csrf(&state))
                button.danger type="submit" { "Undo" } span.dim { " restores the last snapshot (the current state is saved first)" }
            }
        }
    };
    let page = layout::page(
        &state,
        Page { title: &s.name, section: Section::Sessions, live: Some(format!("session:{sid}")), body },
    );
    Ok((code, page).into_response())
}

fn file_lists(state: &AppState, act: &dyn Fn(&str) -> String, st: &ReviewStatus) -> Markup {
    html! {
        div.cards {
            div.card {
                b { "Staged (" (st.staged.len()) ")" }
                @if !st.staged.is_empty() {
                    form.inline method="post" action=(act("unstage")) { (csrf(state)) input type="hidden" name="all" value="1"; " " button { "Unstage all" } }
                }
                ul #staged {
                    @for e in &st.staged {
                        li { code { (e.index) } " " (e.path)
                            form.inline method="post" action=(act("unstage")) { (csrf(state)) input type="hidden" name="path" value=(e.path); " " button { "unstage" } } }
                    }
                }
            }
            div.card {
                b { "Unstaged (" (st.unstaged.len() + st.untracked.len()) ")" }
                @if !st.unstaged.is_empty() || !st.untracked.is_empty() {
                    form.inline method="post" action=(act("stage")) { (csrf(state)) input type="hidden" name="all" value="1"; " " button { "Stage all" } }
                }
                ul #unstaged {
                    @for e in &st.unstaged {
                        li { code { (e.worktree) } " " (e.path)
                            form.inline method="post" action=(act("stage")) { (csrf(state)) input type="hidden" name="path" value=(e.path); " " button { "stage" } } }
                    }
                    @for p in &st.untracked {
                        li { code { "?" } " " (p)
                            form.inline method="post" action=(act("stage")) { (csrf(state)) input type="hidden" name="path" value=(p); " " button { "stage" } } }
                    }
                }
            }
        }
    }
}

fn diff_view(base: &str, d: &DiffReport, uncommitted: bool) -> Markup {
    let extra = if uncommitted { "uncommitted=1&" } else { "" };
    html! {
        p.dim { code { (short(&d.from)) } " → " code { (short(&d.to)) }
            @if d.uncommitted_not_shown > 0 { " · " (d.uncommitted_not_shown) " uncommitted file(s) not in this diff" } }
        @if d.files.is_empty() { p.dim { "No changes." } }
        @else {
            table #diff-files {
                tr { th { "File" } th.n { "+" } th.n { "−" } }
                @for f in &d.files {
                    tr {
                        td { a href={ (base) "?" (extra) "path=" (crate::views::export::enc(&f.path)) } { @if let Some(o) = &f.old_path { (o) " → " } (f.path) } }
                        td.n { (f.added.map(|a| a.to_string()).unwrap_or_else(|| "bin".into())) }
                        td.n { (f.removed.map(|a| a.to_string()).unwrap_or_else(|| "bin".into())) }
                    }
                }
            }
        }
        @if !d.untracked.is_empty() { p.dim { "Untracked (not in the diff): " (d.untracked.join(", ")) } }
        @if let Some(patch) = &d.patch {
            @if patch.len() > MAX_PATCH_BYTES {
                p.dim { "The patch is " (patch.len() / 1024) " KiB; pick a file above to see its part." }
            } @else if !patch.is_empty() {
                pre.diff #patch {
                    @for line in patch.lines() {
                        @let class = if line.starts_with("diff --git") || line.starts_with("+++") || line.starts_with("---") { "file" }
                            else if line.starts_with('+') { "add" } else if line.starts_with('-') { "del" }
                            else if line.starts_with("@@") { "hunk" } else { "" };
                        span class=(class) { (line) } "\n"
                    }
                }
            }
        }
    }
}

/// Fields of every git action form (each uses what it needs).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ActionForm {
    pub path: Option<String>,
    pub all: Option<String>,
    pub message: Option<String>,
    pub agent_only: Option<String>,
    pub onto: Option<String>,
    pub strategy: Option<String>,
}

/// What an action left to show.
enum Outcome {
    Redirect(&'static str),
    Show(Markup),
}

/// `POST /s/{id}/git/{action}`.
pub async fn action(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    Form(f): Form<ActionForm>,
) -> Result<Response, WebError> {
    let sid = id.clone();
    let csrf_markup = csrf(&state);
    let result = state
        .engine(move |e| {
            let msg = f.message.clone().filter(|m| !m.trim().is_empty());
            let paths: Vec<String> = f.path.iter().cloned().collect();
            let all = f.all.is_some();
            Ok(match action.as_str() {
                "stage" => {
                    e.review_stage(&sid, &paths, all)?;
                    Outcome::Redirect("staged")
                }
                "unstage" => {
                    e.review_unstage(&sid, &paths, all)?;
                    Outcome::Redirect("unstaged")
                }
                "commit" => {
                    e.review_commit(&sid, msg.as_deref().unwrap_or(""))?;
                    Outcome::Redirect("committed")
                }
                "squash" => {
                    e.review_squash(&sid, msg.as_deref(), f.agent_only.is_some())?;
                    Outcome::Redirect("squashed")
                }
                "rebase" => {
                    let onto = f.onto.clone().filter(|o| !o.trim().is_empty());
                    Outcome::Show(rebase_view(&e.review_rebase(&sid, onto.as_deref())?))
                }
                "rebase-continue" => Outcome::Show(rebase_view(&e.review_rebase_continue(&sid)?)),
                "rebase-abort" => Outcome::Show(rebase_view(&e.review_rebase_abort(&sid)?)),
                "merge-preview" | "merge" => {
                    let strategy: MergeStrategy =
                        f.strategy.as_deref().unwrap_or("squash").parse().map_err(WebError::BadRequest)?;
                    let dry_run = action == "merge-preview";
                    let req = MergeRequest {
                        strategy,
                        message: msg.clone(),
                        dry_run,
                        push: false,
                        pr: false,
                        ..Default::default()
                    };
                    let r = e.merge_session(&sid, &req)?;
                    if dry_run {
                        Outcome::Show(merge_view(&r, &sid, msg.as_deref(), csrf_markup))
                    } else {
                        Outcome::Show(merge_view(&r, &sid, None, html! {}))
                    }
                }
                "undo" => {
                    e.review_undo(&sid, None)?;
                    Outcome::Redirect("undone")
                }
                other => return Err(WebError::NotFound(format!("no git action {other:?}"))),
            })
        })
        .await;
    match result {
        Ok(Outcome::Redirect(done)) => Ok(Redirect::to(&format!("/s/{id}/git?done={done}")).into_response()),
        Ok(Outcome::Show(m)) => render(state, id, GitQuery::default(), None, None, m, StatusCode::OK).await,
        Err(e @ WebError::NotFound(_)) => Err(e),
        Err(e) => {
            let code = e.status();
            render(state, id, GitQuery::default(), Some(e.line()), None, html! {}, code).await
        }
    }
}

fn rebase_view(r: &RebaseReport) -> Markup {
    html! {
        div.note #rebase-result {
            @for w in &r.warnings { div { "warning: " (w) } }
            @match r.outcome {
                RebaseResult::Done => { "Rebased onto " code { (r.onto) } "; head is now " code { (r.head.as_deref().map(short).unwrap_or("-")) } "." }
                RebaseResult::UpToDate => { "Already up to date with " code { (r.onto) } "." }
                RebaseResult::Aborted => { "Rebase aborted; the branch is back at " code { (r.head.as_deref().map(short).unwrap_or("-")) } "." }
                RebaseResult::Conflicts => {
                    "The rebase stopped on conflicts in:"
                    ul { @for f in &r.conflicts { li { code { (f) } } } }
                }
            }
            @if let Some(s) = &r.snapshot { div.dim { "Snapshot #" (s.seq) " was saved before the rebase." } }
            @if !r.next_steps.is_empty() { div { "Next:" ul { @for n in &r.next_steps { li { (n) } } } } }
        }
    }
}

fn merge_view(r: &MergeReport, sid: &str, message: Option<&str>, confirm_csrf: Markup) -> Markup {
    let dry = r.result == MergeResult::DryRun;
    html! {
        div class=(if dry && !r.would_merge { "err warn" } else { "note" }) #merge-result {
            table {
                @for c in &r.checks {
                    tr { td { (status(if c.ok { "ok" } else { "fail" })) } td { (c.name) } td { (c.detail) } }
                }
            }
            @if !r.conflicts.is_empty() {
                "Conflicting files:"
                ul { @for f in &r.conflicts { li { code { (f) } } } }
                p { "Rebase the session (it stops at each conflict so you can resolve it in the worktree), or pick another strategy." }
            }
            @if dry {
                p { "Dry run: " (if r.would_merge { "the merge would go ahead" } else { "the merge would be refused" })
                    " (" (r.commits_landed) " commit(s), strategy " (r.strategy.as_str()) "). Nothing was changed." }
                @if r.would_merge {
                    form method="post" action={ "/s/" (sid) "/git/merge" } #merge-confirm {
                        (confirm_csrf)
                        input type="hidden" name="strategy" value=(r.strategy.as_str());
                        @if let Some(m) = message { input type="hidden" name="message" value=(m); }
                        button.primary type="submit" { "Merge now (" (r.strategy.as_str()) " into " (r.base_branch) ")" }
                    }
                }
            } @else {
                p { "Merged " (r.name) " into " code { (r.base_branch) } " (" (r.strategy.as_str()) "): "
                    code { (r.base_before.as_deref().map(short).unwrap_or("-")) } " → " code { (r.base_after.as_deref().map(short).unwrap_or("-")) } "." }
                @if let Some(u) = &r.base_update { p.dim { "Base update: " (u) } }
            }
            @for n in &r.notes { div.dim { "note: " (n) } }
        }
    }
}

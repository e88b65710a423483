//! Session → Git: the worktree's staged, unstaged and untracked files, the diff (branch against base, or
//! uncommitted) with line numbers and syntax highlighting, unified or side by side, one collapsible section
//! per file behind a file list with +/−; history and snapshots; and the review actions of the CLI (stage,
//! unstage, commit, squash, rebase with continue/abort, merge with a dry-run preview first, then locally,
//! with a push or as a pull request; undo), each one engine call, the ones that rewrite history behind a
//! `data-confirm` question. Conflicts show their hunks (ours/theirs with line numbers): in a merge preview,
//! and in a rebase stopped in the worktree, with the next steps.

use crate::diff::{self, FileStatus, LineKind};
use crate::error::WebError;
use crate::state::AppState;
use crate::views::export::enc;
use crate::views::layout::{self, Page, Section, csrf, error_line, notice_line, short, status};
use crate::views::session::{Tab, header};
use crate::views::sessions::notice_text;
use ampsm_core::{MergeResult, RebaseResult};
use ampsm_engine::review::conflicts::{ConflictHunk, ConflictReport, ConflictSide};
use ampsm_engine::review::merge::{MergeReport, MergeRequest, MergeStrategy};
use ampsm_engine::review::{DiffMode, DiffReport, DiffRequest, LogEntry, RebaseReport, ReviewStatus};
use ampsm_engine::{Engine, SessionDetails};
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;

/// The largest patch shown on the page.
const MAX_PATCH_BYTES: usize = 512 * 1024;

/// `?uncommitted=1&path=…&done=…&view=split`.
#[derive(Debug, Default, Deserialize)]
pub struct GitQuery {
    pub uncommitted: Option<String>,
    pub path: Option<String>,
    pub done: Option<String>,
    /// `split` for the side-by-side layout (else unified).
    pub view: Option<String>,
}

struct Data {
    details: SessionDetails,
    status: Option<ReviewStatus>,
    diff: Option<DiffReport>,
    log: Vec<LogEntry>,
    conflicts: Option<ConflictReport>,
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
    let stopped = status.as_ref().is_some_and(|s| s.rebase_in_progress || !s.conflicts.is_empty());
    let conflicts = if stopped { e.review_conflicts(&sid).ok() } else { None };
    Ok(Data { details, status, diff, log, conflicts, problem })
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
                        form.inline method="post" action=(act("rebase-abort")) data-confirm="Abort the rebase and put the branch back as it was before it?" {
                            (csrf(&state)) " " button.danger { "Abort rebase" } }
                    }
                }
                @if let Some(c) = &d.conflicts { (conflicts_view(c, "conflicts")) }
                (file_lists(&state, &act, st))
            }
            section {
                h2 { "Commit" }
                form.inline method="post" action=(act("commit")) {
                    (csrf(&state))
                    input name="message" size="60" aria-label="Commit message" placeholder="Commit message (commits what is staged)" required;
                    " " button.primary type="submit" { "Commit" }
                }
            }
        }
        section {
            h2 { "Diff" }
            p {
                @let split_q = if q.view.as_deref() == Some("split") { "view=split" } else { "" };
                @if uncommitted { a href={ (base) "?" (split_q) } { "branch against base" } " · " b { "uncommitted" } }
                @else { b { "branch against base" } " · " a href={ (base) "?uncommitted=1&" (split_q) } { "uncommitted" } }
                @if let Some(p) = &q.path { " · only " code { (p) } " (" a href={ (base) "?" (if uncommitted { "uncommitted=1&" } else { "" }) (split_q) } { "all files" } ")" }
            }
            @if let Some(diff) = &d.diff { (diff_view(&base, diff, &q)) }
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
            form method="post" action=(act("squash")) #squash-form
                data-confirm="Squash the session's commits into one? A snapshot is saved first, so Undo can bring them back." {
                (csrf(&state))
                input name="message" size="50" aria-label="Squash message" placeholder="Message (default: from the commits)";
                label { " " input type="checkbox" name="agent_only"; " only the agent's commits" }
                " " button type="submit" { "Squash" }
            }
            p {}
            form method="post" action=(act("rebase")) {
                (csrf(&state))
                input name="onto" size="30" aria-label="Rebase onto" placeholder={ "onto (default: " (s.base_branch) ")" };
                " " button type="submit" { "Rebase" }
            }
            p {}
            form method="post" action=(act("merge-preview")) #merge-form {
                (csrf(&state))
                select name="strategy" aria-label="Merge strategy" { option value="squash" { "squash" } option value="rebase" { "rebase" } option value="merge" { "merge" } }
                " " input name="message" size="40" aria-label="Merge message" placeholder="Message (squash/merge)";
                " " select name="land" aria-label="Then" {
                    option value="" { "merge locally" }
                    option value="push" { "merge and push the base branch" }
                    option value="pr" { "push the branch and open a pull request (gh) instead" }
                }
                " " button.primary type="submit" { "Preview merge" }
                span.dim { " (a dry run first: checks and conflicts; nothing changes)" }
            }
            p {}
            form method="post" action=(act("undo")) #undo-form
                data-confirm="Undo: restore the last snapshot? The current state is saved first." {
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

/// Hunk lines highlighted per page at most, and the time highlighting may take; the rest is plain text.
const HIGHLIGHT_LINES: usize = 3_000;
const HIGHLIGHT_TIME: std::time::Duration = std::time::Duration::from_millis(150);

/// Shows the Collapse all / Expand all buttons (they need JavaScript) and opens or closes every file.
const FOLD_JS: &str = "(function(){var p=document.currentScript.parentNode,f=p.querySelector('.diff-fold');\
f.hidden=false;f.addEventListener('click',function(e){var v=e.target.getAttribute('data-fold');if(!v)return;\
document.querySelectorAll('#patch details.dfile').forEach(function(d){d.open=v==='open'})})})();";

/// The diff's own styles (line numbers, the two layouts, token colours from the theme's variables).
const DIFF_CSS: &str = include_str!("../../assets/diff.css");

/// The diff: the from → to line, the layout toggle, a file list with +/− linking to each file, then each
/// file as a collapsible section (unified or side by side, with line numbers and highlighting).
fn diff_view(base: &str, d: &DiffReport, q: &GitQuery) -> Markup {
    let uncommitted = q.uncommitted.is_some();
    let split = q.view.as_deref() == Some("split");
    let extra = if uncommitted { "uncommitted=1&" } else { "" };
    let path_q =
        q.path.as_deref().filter(|p| !p.is_empty()).map(|p| format!("path={}&", enc(p))).unwrap_or_default();
    let only = |p: &str| format!("{base}?{extra}{}path={}", if split { "view=split&" } else { "" }, enc(p));
    let patch_len = d.patch.as_ref().map_or(0, String::len);
    let too_big = patch_len > MAX_PATCH_BYTES;
    // One file picked and still too large: its first MAX_PATCH_BYTES (whole lines) are shown.
    let one_file = q.path.as_deref().is_some_and(|p| !p.is_empty());
    let files = match &d.patch {
        Some(p) if !too_big => diff::parse(p),
        Some(p) if one_file => {
            let cut = p[..p.floor_char_boundary(MAX_PATCH_BYTES)].rfind('\n').unwrap_or(0);
            diff::parse(&p[..cut])
        }
        _ => Vec::new(),
    };
    let anchor = |path: &str| files.iter().position(|f| f.path() == path).map(|i| format!("#f{i}"));
    html! {
        style { (PreEscaped(DIFF_CSS)) }
        p.dim { code { (short(&d.from)) } " → " code { (short(&d.to)) }
            @if d.uncommitted_not_shown > 0 { " · " (d.uncommitted_not_shown) " uncommitted file(s) not in this diff" } }
        @if d.files.is_empty() { p.dim { "No changes." } }
        @else {
            p #diff-layout {
                "Layout: "
                @if split {
                    a href={ (base) "?" (extra) (path_q) } { "unified" } " · " b aria-current="true" { "side by side" }
                } @else {
                    b aria-current="true" { "unified" } " · " a href={ (base) "?" (extra) (path_q) "view=split" } { "side by side" }
                }
                span.diff-fold hidden {
                    " · " button type="button" data-fold="close" { "Collapse all" }
                    " " button type="button" data-fold="open" { "Expand all" }
                }
                script { (PreEscaped(FOLD_JS)) }
            }
            table #diff-files {
                tr { th { "File" } th.n { "+" } th.n { "−" } th {} }
                @for f in &d.files {
                    tr {
                        td {
                            @let label = html! { @if let Some(o) = &f.old_path { (o) " → " } (f.path) };
                            @match anchor(&f.path) {
                                Some(a) => { a href=(a) { (label) } }
                                None => { a href=(only(&f.path)) { (label) } }
                            }
                        }
                        td.n.add-n { (f.added.map(|a| format!("+{a}")).unwrap_or_else(|| "bin".into())) }
                        td.n.del-n { (f.removed.map(|a| format!("−{a}")).unwrap_or_else(|| "bin".into())) }
                        td { a.dim href=(only(&f.path)) { "only this file" } }
                    }
                }
            }
        }
        @if !d.untracked.is_empty() { p.dim { "Untracked (not in the diff): " (d.untracked.join(", ")) } }
        @if too_big && !one_file {
            p.dim #diff-too-big { "The patch is " (patch_len / 1024)
                " KiB, too large to show at once; pick a file above to see its part." }
        } @else {
            @if too_big {
                p.dim #diff-cut { "This file's patch is " (patch_len / 1024) " KiB: its first "
                    (MAX_PATCH_BYTES / 1024) " KiB are shown; see the rest in the worktree." }
            }
            @let mut budget = diff::highlight::Budget::new(HIGHLIGHT_LINES, HIGHLIGHT_TIME);
            div #patch {
                @for (i, f) in files.iter().enumerate() {
                    (file_view(i, f, split, &mut budget))
                }
            }
        }
    }
}

/// One file of the diff: a collapsible section with its name, status and +/−, then its hunks.
fn file_view(i: usize, f: &diff::FileDiff, split: bool, budget: &mut diff::highlight::Budget) -> Markup {
    let lines = diff::highlight::file_lines(f, budget);
    let cols = if split { 4 } else { 3 };
    html! {
        details.dfile open id={ "f" (i) } {
            summary {
                code.fname { @if f.status == FileStatus::Renamed || f.status == FileStatus::Copied { (f.old_path.as_deref().unwrap_or("")) " → " } (f.path()) }
                " " span.badge { (f.status.as_str()) @if let Some(s) = f.similarity { " " (s) "%" } }
                @if f.binary { " " span.badge { "binary" } }
                @else { " " span.add-n { "+" (f.added) } " " span.del-n { "−" (f.removed) } }
            }
            @if let Some((a, b)) = &f.mode_change { p.dim { "mode " (a) " → " (b) } }
            @if f.binary { p.dim { "Binary file; not shown." } }
            @else if f.hunks.is_empty() { p.dim { "No changes to the content." } }
            @else {
                table class={ "d " (if split { "split" } else { "unified" }) } {
                    @if split { colgroup { col.ln; col; col.ln; col; } } @else { colgroup { col.ln; col.ln; col; } }
                    @for (h, hunk) in f.hunks.iter().enumerate() {
                        tbody {
                            tr.hunk { td colspan=(cols) { "@@ -" (hunk.old_start) "," (hunk.old_count) " +" (hunk.new_start) "," (hunk.new_count) " @@ " (hunk.section) } }
                            @if split {
                                @for row in diff::split_rows(hunk) {
                                    tr {
                                        (side_cells(row.left, hunk, &lines[h], true))
                                        (side_cells(row.right, hunk, &lines[h], false))
                                    }
                                }
                            } @else {
                                @for (l, line) in hunk.lines.iter().enumerate() {
                                    tr class=(kind_class(line.kind)) {
                                        td.ln { (num(line.old)) }
                                        td.ln { (num(line.new)) }
                                        td.code { (sign(line.kind)) (PreEscaped(&lines[h][l])) (eol(line)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The number and code cells of one side of a side-by-side row (empty when that side has no line).
fn side_cells(idx: Option<usize>, hunk: &diff::Hunk, html: &[String], old_side: bool) -> Markup {
    let Some((idx, line)) = idx.and_then(|i| hunk.lines.get(i).map(|l| (i, l))) else {
        return html! { td.ln.empty {} td.code.empty {} };
    };
    let n = if old_side { line.old } else { line.new };
    html! {
        td class={ "ln " (kind_class(line.kind)) } { (num(n)) }
        td class={ "code " (kind_class(line.kind)) } { (sign(line.kind)) (PreEscaped(html.get(idx).map(String::as_str).unwrap_or(""))) (eol(line)) }
    }
}

fn kind_class(k: LineKind) -> &'static str {
    match k {
        LineKind::Added => "add",
        LineKind::Removed => "del",
        LineKind::Context => "ctx",
    }
}

fn sign(k: LineKind) -> &'static str {
    match k {
        LineKind::Added => "+",
        LineKind::Removed => "-",
        LineKind::Context => " ",
    }
}

fn num(n: Option<u32>) -> String {
    n.map(|n| n.to_string()).unwrap_or_default()
}

fn eol(l: &diff::Line) -> Markup {
    html! { @if l.no_newline { " " span.noeol title="No newline at end of file" { "⏎̸ no newline at end of file" } } }
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
    /// After the merge: `push` (the base branch) or `pr` (a pull request instead of a local merge).
    pub land: Option<String>,
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
                    let land = Land::from_field(f.land.as_deref())?;
                    let req = MergeRequest {
                        strategy,
                        message: msg.clone(),
                        dry_run,
                        push: land == Land::Push,
                        pr: land == Land::Pr,
                        ..Default::default()
                    };
                    let r = e.merge_session(&sid, &req)?;
                    let hunks = if r.conflicts.is_empty() { None } else { e.merge_conflicts(&sid).ok() };
                    let view = MergeView { r: &r, sid: &sid, land, hunks: hunks.as_ref() };
                    if dry_run {
                        Outcome::Show(merge_view(&view, msg.as_deref(), csrf_markup))
                    } else {
                        Outcome::Show(merge_view(&view, None, html! {}))
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

/// What happens after the merge's checks pass: a local merge, a merge then a push of the base branch, or
/// a pull request instead (`merge --push`, `merge --pr`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Land {
    Local,
    Push,
    Pr,
}

impl Land {
    fn from_field(v: Option<&str>) -> Result<Land, WebError> {
        match v.unwrap_or("") {
            "" | "local" => Ok(Land::Local),
            "push" => Ok(Land::Push),
            "pr" => Ok(Land::Pr),
            other => Err(WebError::BadRequest(format!("unknown merge option {other:?} (one of: push, pr)"))),
        }
    }

    fn field(self) -> &'static str {
        match self {
            Land::Local => "",
            Land::Push => "push",
            Land::Pr => "pr",
        }
    }
}

/// What the merge result shows: the report, the session, what happens after the merge, and the hunks
/// of the conflicts the merge would have.
struct MergeView<'a> {
    r: &'a MergeReport,
    sid: &'a str,
    land: Land,
    hunks: Option<&'a ConflictReport>,
}

fn merge_view(v: &MergeView<'_>, message: Option<&str>, confirm_csrf: Markup) -> Markup {
    let (r, sid, land) = (v.r, v.sid, v.land);
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
                @if let Some(c) = v.hunks { (conflicts_view(c, "merge-conflicts")) }
            }
            @if dry {
                p { "Dry run: " (if r.would_merge { "the merge would go ahead" } else { "the merge would be refused" })
                    " (" (r.commits_landed) " commit(s), strategy " (r.strategy.as_str()) "). Nothing was changed." }
                @if r.would_merge {
                    @let question = match land {
                        Land::Local => format!("Merge {} into {} ({})?", r.name, r.base_branch, r.strategy.as_str()),
                        Land::Push => format!("Merge {} into {} ({}) and push {} to its remote?", r.name, r.base_branch, r.strategy.as_str(), r.base_branch),
                        Land::Pr => format!("Push the branch of {} and open a pull request against {}?", r.name, r.base_branch),
                    };
                    form method="post" action={ "/s/" (sid) "/git/merge" } #merge-confirm data-confirm=(question) {
                        (confirm_csrf)
                        input type="hidden" name="strategy" value=(r.strategy.as_str());
                        @if land != Land::Local { input type="hidden" name="land" value=(land.field()); }
                        @if let Some(m) = message { input type="hidden" name="message" value=(m); }
                        button.primary type="submit" {
                            @match land {
                                Land::Local => { "Merge now (" (r.strategy.as_str()) " into " (r.base_branch) ")" }
                                Land::Push => { "Merge and push (" (r.strategy.as_str()) " into " (r.base_branch) ")" }
                                Land::Pr => { "Open pull request (against " (r.base_branch) ")" }
                            }
                        }
                    }
                }
            } @else if r.result == MergeResult::PullRequest {
                p #pr-result { "Pushed " (r.name) "'s branch to " code { (r.pushed.as_deref().unwrap_or("-")) } " and opened a pull request: "
                    @if let Some(u) = &r.pr_url { a href=(u) rel="noreferrer noopener" target="_blank" { (u) } } @else { "(no address printed)" } }
            } @else {
                p { "Merged " (r.name) " into " code { (r.base_branch) } " (" (r.strategy.as_str()) "): "
                    code { (r.base_before.as_deref().map(short).unwrap_or("-")) } " → " code { (r.base_after.as_deref().map(short).unwrap_or("-")) } "." }
                @if let Some(u) = &r.base_update { p.dim { "Base update: " (u) } }
                @if let Some(remote) = &r.pushed { p #push-result { "Pushed " code { (r.base_branch) } " to " code { (remote) } "." } }
            }
            @for n in &r.notes { div.dim { "note: " (n) } }
        }
    }
}

/// The hunks of a stopped rebase or merge, per file, with each side's lines and numbers, then the steps.
/// `id` names the section (the page's stopped rebase, or a merge preview's conflicts).
fn conflicts_view(c: &ConflictReport, id: &str) -> Markup {
    let heading = format!("{id}-h");
    html! {
        section id=(id) aria-labelledby=(heading) {
            h2 id=(heading) { @if c.operation == Some("merge-preview") { "The conflicts the merge would have" } @else { "Conflicts" } }
            @match c.operation {
                Some("rebase") => {
                    p.dim { "During a rebase, " b { "ours" } " is the base with the commits replayed so far, and "
                        b { "theirs" } " is the session's commit being replayed." }
                }
                Some("merge-preview") => {
                    p.dim { b { "Ours" } " is the base branch, " b { "theirs" } " the session's branch (nothing was changed)." }
                }
                _ => {}
            }
            @for f in &c.files {
                details.dfile.conflict open {
                    summary { code.fname { (f.path) } " " span.badge { (f.hunks.len()) " conflict(s)" } }
                    @if let Some(n) = &f.note { p.dim { (n) } }
                    @for h in &f.hunks { (conflict_hunk(h)) }
                }
            }
            @if !c.next_steps.is_empty() {
                div #conflict-steps { "Next:" ol { @for n in &c.next_steps { li { (n) } } } }
            }
        }
    }
}

fn conflict_hunk(h: &ConflictHunk) -> Markup {
    let context = |lines: &[String], first: usize| {
        html! {
            @for (k, l) in lines.iter().enumerate() {
                tr { td.ln { (first + k) } td.code.ctx { " " (l) } }
            }
        }
    };
    let side = |s: &ConflictSide, which: &str, class: &str| {
        html! {
            tr { th colspan="2" { (which) @if !s.label.is_empty() { " · " code { (s.label) } } } }
            @for (k, l) in s.lines.iter().enumerate() {
                tr { td.ln { (s.start_line + k) } td class={ "code " (class) } { (l) } }
            }
            @if s.lines.is_empty() { tr { td.ln {} td.code.dim { "(nothing)" } } }
            @if s.truncated { tr { td.ln {} td.code.dim { "… more lines in the file" } } }
        }
    };
    html! {
        table.d.unified.conflict-hunk {
            colgroup { col.ln; col; }
            tbody {
                tr.hunk { td colspan="2" { "lines " (h.start_line) "–" (h.end_line) } }
                (context(&h.before, h.start_line.saturating_sub(h.before.len())))
                (side(&h.ours, "ours", "ours"))
                @if let Some(b) = &h.base { (side(b, "common ancestor", "ctx")) }
                (side(&h.theirs, "theirs", "theirs"))
                (context(&h.after, h.end_line + 1))
            }
        }
    }
}

//! The New session form's helpers: the folder browser (`GET /browse?path=`: the sub-folders, never
//! files, of a folder within the user's home or `ui.roots`, symlinks resolved before the check, git
//! repositories marked; JSON with `format=json` for the dialog, else a page that works without
//! JavaScript) and a repository's branches (`GET /browse/branches?repo=`, JSON). A refused or unreadable
//! folder is one line: `{"error": …}` in JSON, the error page otherwise.

use crate::error::WebError;
use crate::state::AppState;
use crate::views::layout::{self, Page, Section};
use crate::views::sessions::encode;
use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;
use std::path::PathBuf;

/// `?path=` (empty: the home folder) and `format=json`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct BrowseParams {
    pub path: String,
    pub format: String,
}

/// `?repo=`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct BranchParams {
    pub repo: String,
}

/// An error as one JSON line, with the status of its kind.
fn json_error(e: WebError) -> Response {
    (e.status(), Json(serde_json::json!({ "error": e.line() }))).into_response()
}

/// `GET /browse`: the sub-folders of a folder.
pub async fn folders(State(state): State<AppState>, Query(p): Query<BrowseParams>) -> Response {
    let json = p.format == "json";
    let path = (!p.path.trim().is_empty()).then(|| PathBuf::from(p.path.trim()));
    let listing = state.engine(move |e| Ok(e.list_folders(path.as_deref())?)).await;
    match (listing, json) {
        (Ok(l), true) => Json(l).into_response(),
        (Err(e), true) => json_error(e),
        (Err(e), false) => e.into_response(),
        (Ok(l), false) => {
            let body = html! {
                h1 { "Choose a repository" }
                p { "Folder " code #browse-path { (l.path) }
                    @if l.git { " — a git repository: " a href={ "/?new_repo=" (encode(&l.path)) "#new" } { "use it" } } }
                ul.folders #folders {
                    @if let Some(parent) = &l.parent {
                        li { a href={ "/browse?path=" (encode(parent)) } { "↑ " (parent) } }
                    }
                    @for f in &l.folders {
                        li data-git=[f.git.then_some("1")] {
                            a href={ "/browse?path=" (encode(&f.path)) } { (f.name) "/" }
                            @if f.git {
                                " " span.badge { "git" } " "
                                a href={ "/?new_repo=" (encode(&f.path)) "#new" } { "use this repository" }
                            }
                        }
                    }
                    @if l.folders.is_empty() { li.dim { "No sub-folders." } }
                }
                @if l.more > 0 { p.dim { (l.more) " more folders not listed." } }
                p.dim { "Allowed folders: " (l.roots.join(", ")) " (add others with the ui.roots setting)." }
                p { a href="/#new" { "Back to New session" } }
            };
            layout::page(
                &state,
                Page { title: "Choose a repository", section: Section::Sessions, live: None, body },
            )
            .into_response()
        }
    }
}

/// `GET /browse/branches`: the repository's branches and the default base, as JSON.
pub async fn branches(State(state): State<AppState>, Query(p): Query<BranchParams>) -> Response {
    let repo = p.repo.trim().to_string();
    if repo.is_empty() {
        return json_error(WebError::BadRequest("give the repository path (repo=)".into()));
    }
    match state.engine(move |e| Ok(e.repo_branches(std::path::Path::new(&repo))?)).await {
        Ok(b) => Json(b).into_response(),
        Err(e) => json_error(e),
    }
}

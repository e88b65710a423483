//! Errors of the dashboard and the one place they become responses: a status code and a page (or a plain
//! line for API and stream requests) with the engine's one-line reason and its hint.

use ampsm_core::errorkind::BenchCount;
use ampsm_core::{ErrorKind, Hint};
use ampsm_engine::EngineError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::path::PathBuf;

/// Any failure of a dashboard request or of starting the server.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// No valid token or cookie.
    #[error("this dashboard needs its token: open the URL that `amp-sessions ui` printed")]
    Unauthorized,
    /// A request that must not be served (foreign Host, cross-site POST, missing CSRF token).
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// A background task panicked or the runtime failed.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The one table from an error's kind to its HTTP status.
pub fn status_for(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadInput => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Refused => StatusCode::CONFLICT,
        ErrorKind::Interrupted => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Failed => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl WebError {
    /// What kind of failure this is. A missing token or a forbidden request has none of its own: it is
    /// refused (its status is set apart in [`WebError::status`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            WebError::Engine(e) => e.kind(),
            WebError::BadRequest(_) => ErrorKind::BadInput,
            WebError::NotFound(_) => ErrorKind::NotFound,
            WebError::Unauthorized | WebError::Forbidden(_) => ErrorKind::Refused,
            WebError::Bind { .. } | WebError::Io { .. } | WebError::Internal(_) => ErrorKind::Failed,
        }
    }

    /// The HTTP status for this error: 401 and 403 for the guards, else [`status_for`] its kind.
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::Unauthorized => StatusCode::UNAUTHORIZED,
            WebError::Forbidden(_) => StatusCode::FORBIDDEN,
            other => status_for(other.kind()),
        }
    }

    /// The one-line message shown to the user, with the engine's hint when it has one.
    pub fn line(&self) -> String {
        let message = self.to_string().replace('\n', " ");
        match self {
            WebError::Engine(e) => match e.hint() {
                Some(h) => format!("{message} (hint: {})", hint_text(&h)),
                None => message,
            },
            _ => message,
        }
    }
}

/// What to do next, in the dashboard's words.
pub fn hint_text(hint: &Hint) -> String {
    match hint {
        Hint::ListSessions => "the Sessions page lists every session".into(),
        Hint::ListBatches => "the Batches page lists every batch".into(),
        Hint::ListBenches => "the Benchmarks page lists every benchmark run".into(),
        Hint::PassRepo => "choose the folder of a git repository".into(),
        Hint::ChoosePolicy => {
            "choose another permission policy (auto, ask, read-only, full); the Settings page lists what each \
             agent supports"
                .into()
        }
        Hint::MergeOrForceRemove { .. } => "merge or export its work first, or force the removal (a snapshot is \
                                            saved first, and undo brings it back)"
            .into(),
        Hint::WaitOrForceStop => "wait for it to finish, or stop it first".into(),
        Hint::Undo { .. } => "undo brings its work back".into(),
        Hint::RepairOrUndo { .. } => "repair settles the session; undo brings its worktree back".into(),
        Hint::GivePrompt => "write a prompt".into(),
        Hint::IterateInstead => "run it one prompt at a time from the session's page".into(),
        Hint::IterateOrOtherPolicy => {
            "run it one prompt at a time from the session's page (its tool calls wait for your answers), or \
             choose another policy"
                .into()
        }
        Hint::ListApprovals { .. } => "the session's page lists its approvals".into(),
        Hint::RerunSetupOrRemove { .. } => "run the setup again, or remove the session".into(),
        Hint::UndoOrForceRemove { .. } => "bring it back with undo, or remove the session for good".into(),
        Hint::CommitOrRollback { .. } => {
            "commit them (stage, then commit) or roll them back on the session's Git page".into()
        }
        Hint::FinishRebase { .. } => "continue or abort it on the session's Git page".into(),
        Hint::StartRebase { .. } => "start one with Rebase on the session's Git page".into(),
        Hint::ResolveThenContinue { worktree, .. } => {
            format!("edit those files in {worktree}, then use Continue rebase (or Abort rebase)")
        }
        Hint::ContinueRebase { .. } => "finish editing them, then use Continue rebase again".into(),
        Hint::RebaseThenMerge { session } => format!(
            "bring the session up to date with Rebase on its Git page (or `amp-sessions rebase {session}`), \
             resolve the conflicts, then merge again"
        ),
        Hint::RebaseOrOtherStrategy { .. } => {
            "rebase the session to resolve them commit by commit, or merge with the squash or merge strategy".into()
        }
        Hint::UpdateBaseThenRebase { branch, .. } => format!(
            "update {branch} (for example `git pull --ff-only` in your checkout), then rebase the session and \
             merge again"
        ),
        Hint::RebaseOntoBranch { .. } => "rebase the session onto a local branch first".into(),
        Hint::PushLater { remote, branch } => format!("push {branch} to {remote} when the remote is reachable"),
        Hint::StageFirst { .. } => "stage files on the session's Git page first".into(),
        Hint::SquashAll { .. } => "squash all of the session's commits instead".into(),
        Hint::ShowSnapshots { .. } => "the session's page lists its snapshots".into(),
        Hint::ExportToFolder => "export to a folder".into(),
        Hint::RaiseOrClearBudget { .. } => "raise or clear the session's budget".into(),
        Hint::FollowOrAbortBatch { .. } | Hint::AbortBench { .. } => {
            "wait for it on its page, or abort it there".into()
        }
        Hint::ResumeBatchWithBudget { .. } | Hint::ResumeBenchWithBudget { .. } => {
            "resume it with a higher budget on its page".into()
        }
        Hint::GiveSetupCommand => "give the setup command to run, or set repos.<path>.setup or session.setup \
                                   in the config"
            .into(),
        Hint::GiveEachAgentOnce { agent } => format!("choose {agent} once: each agent (with its model) runs once"),
        Hint::CountAtLeastOne { count } => format!("set {} to 1 or more", count_field(*count)),
        Hint::NamePathsOrAll => "choose the files to use, or all of them".into(),
        Hint::PathsOrAllNotBoth => "choose some files or all of them, not both".into(),
    }
}

/// The field of the benchmark form that sets a count.
fn count_field(count: BenchCount) -> &'static str {
    match count {
        BenchCount::Limit => "At most",
        BenchCount::Concurrency => "Concurrency",
        BenchCount::Repeats => "Repeats",
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = self.status();
        let line = self.line();
        let body = crate::views::layout::error_page(status, &line);
        (status, body).into_response()
    }
}

/// Joins a blocking task, turning a panic into [`WebError::Internal`].
pub fn joined<T>(r: Result<Result<T, WebError>, tokio::task::JoinError>) -> Result<T, WebError> {
    r.map_err(|e| WebError::Internal(format!("a background task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use ampsm_engine::reports::metrics_error::MetricsError;

    #[test]
    fn a_missing_batch_is_404_and_a_refusal_409() {
        let missing = WebError::Engine(EngineError::Metrics(MetricsError::BatchNotFound("b1".into())));
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        assert!(missing.line().contains("(hint: the Batches page lists every batch)"), "{}", missing.line());
        let refused = WebError::Engine(EngineError::Running { session: "s".into(), pid: 1 });
        assert_eq!(refused.status(), StatusCode::CONFLICT);
        assert_eq!(WebError::Engine(EngineError::Invalid("x".into())).status(), StatusCode::BAD_REQUEST);
        assert_eq!(WebError::Unauthorized.status(), StatusCode::UNAUTHORIZED);
    }
}

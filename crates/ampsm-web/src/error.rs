//! Errors of the dashboard and the one place they become responses: a status code and a page (or a plain
//! line for API and stream requests) with the engine's one-line reason and its hint.

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
        Hint::ListBenches => "the Bench page lists every benchmark run".into(),
        Hint::PassRepo => "choose the folder of a git repository".into(),
        Hint::ChoosePolicy => {
            "choose another permission policy (auto, ask, read-only, full); the Health page lists what each \
             agent supports"
                .into()
        }
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

//! Errors of the dashboard and the one place they become responses: a status code and a page (or a plain
//! line for API and stream requests) with the engine's one-line reason and its hint.

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

impl WebError {
    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::Unauthorized => StatusCode::UNAUTHORIZED,
            WebError::Forbidden(_) => StatusCode::FORBIDDEN,
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Engine(e) => match e.exit_code() {
                2 if is_not_found(e) => StatusCode::NOT_FOUND,
                2 => StatusCode::BAD_REQUEST,
                3 => StatusCode::CONFLICT,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
            WebError::Bind { .. } | WebError::Io { .. } | WebError::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The one-line message shown to the user, with the engine's hint when it has one.
    pub fn line(&self) -> String {
        let message = self.to_string().replace('\n', " ");
        match self {
            WebError::Engine(e) => match e.hint() {
                Some(h) => format!("{message} (hint: {h})"),
                None => message,
            },
            _ => message,
        }
    }

    /// The process exit code when the server cannot start.
    pub fn exit_code(&self) -> i32 {
        match self {
            WebError::Engine(e) => e.exit_code(),
            WebError::BadRequest(_) => 2,
            _ => 1,
        }
    }
}

fn is_not_found(e: &EngineError) -> bool {
    matches!(e, EngineError::Store(ampsm_store::StoreError::SessionNotFound(_)))
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = self.status();
        let line = self.line();
        let body = crate::views::layout::error_page(status, &line);
        (status, body).into_response()
    }
}

impl From<ampsm_store::StoreError> for WebError {
    fn from(e: ampsm_store::StoreError) -> Self {
        WebError::Engine(EngineError::Store(e))
    }
}

/// Joins a blocking task, turning a panic into [`WebError::Internal`].
pub fn joined<T>(r: Result<Result<T, WebError>, tokio::task::JoinError>) -> Result<T, WebError> {
    r.map_err(|e| WebError::Internal(format!("a background task failed: {e}")))?
}

//! Engine errors: each names the session, repository, file or ref concerned, and carries a hint saying
//! what to do next. The CLI renders them in one place.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Config(#[from] ampsm_config::ConfigError),
    #[error(transparent)]
    Store(#[from] ampsm_store::StoreError),
    #[error(transparent)]
    Git(#[from] ampsm_git::GitError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Name(#[from] ampsm_core::NameError),
    #[error("base {base:?} does not name a branch or commit in {repo}{}", suggestions_text(suggestions))]
    BadBase { base: String, repo: PathBuf, suggestions: Vec<String> },
    #[error("unknown agent {0:?} (one of: amp, claude, codex, gemini, opencode, command, offline)")]
    UnknownAgent(String),
    #[error("the worktree folder {0} already exists; choose another name or remove that folder")]
    WorktreeExists(PathBuf),
    #[error(
        "session {session} has {what}; merge or export it first, or use --force (a snapshot is saved first, \
         and `amp-sessions undo {short_id}` brings it back)"
    )]
    UnmergedWork { session: String, short_id: String, what: String },
    #[error("session {session} is running (process {pid}); wait for it to finish, or use --force to stop it")]
    Running { session: String, pid: i64 },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Agent(#[from] ampsm_agent::AgentError),
    #[error("{agent} is not logged in: {message}")]
    NotLoggedIn { agent: String, message: String },
    #[error(transparent)]
    Review(#[from] crate::review_error::ReviewError),
    #[error(transparent)]
    Batch(#[from] crate::batch::BatchError),
    #[error(transparent)]
    Bench(#[from] crate::bench::BenchError),
    #[error(transparent)]
    Metrics(#[from] crate::metrics_error::MetricsError),
    #[error("interrupted before the agent of session {session} started; nothing ran")]
    Interrupted { session: String },
    #[error("{0}")]
    SetupFailed(Box<crate::sessions::SetupFailure>),
    #[error("agent {agent} cannot honour the `{policy}` permission policy: {why}")]
    PolicyUnsupported { agent: String, policy: ampsm_core::PermissionPolicy, why: String },
    #[error("session {session} is not running (it is {status}); there is nothing to stop")]
    NotRunning { session: String, status: String },
}

fn suggestions_text(s: &[String]) -> String {
    if s.is_empty() { String::new() } else { format!("; did you mean: {}?", s.join(", ")) }
}

impl EngineError {
    /// A short hint for the user, when there is one beyond the message.
    pub fn hint(&self) -> Option<String> {
        match self {
            EngineError::Git(ampsm_git::GitError::NotARepository { .. }) => {
                Some("pass --repo with the path of a git repository".into())
            }
            EngineError::Store(ampsm_store::StoreError::SessionNotFound(_)) => {
                Some("run `amp-sessions list` to see sessions".into())
            }
            EngineError::PolicyUnsupported { .. } => Some(
                "choose another policy with --permissions (auto, ask, read-only, full); `amp-sessions doctor` \
                 lists what each agent supports"
                    .into(),
            ),
            EngineError::Batch(e) => e.hint(),
            EngineError::Bench(e) => e.hint(),
            _ => None,
        }
    }

    /// The process exit code for this error: 2 for bad input, 3 for refusals that protect work, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            EngineError::Config(_)
            | EngineError::Name(_)
            | EngineError::BadBase { .. }
            | EngineError::UnknownAgent(_)
            | EngineError::Invalid(_)
            | EngineError::PolicyUnsupported { .. }
            | EngineError::NotRunning { .. }
            | EngineError::Git(ampsm_git::GitError::NotARepository { .. }) => 2,
            EngineError::Store(ampsm_store::StoreError::SessionNotFound(_))
            | EngineError::Store(ampsm_store::StoreError::SessionRemoved(_))
            | EngineError::Store(ampsm_store::StoreError::AmbiguousSession { .. })
            | EngineError::Store(ampsm_store::StoreError::DuplicateName { .. }) => 2,
            EngineError::UnmergedWork { .. }
            | EngineError::Running { .. }
            | EngineError::WorktreeExists(_) => 3,
            EngineError::Review(e) => e.exit_code(),
            EngineError::Batch(e) => e.exit_code(),
            EngineError::Bench(e) => e.exit_code(),
            EngineError::Metrics(e) => e.exit_code(),
            EngineError::Interrupted { .. } => 130,
            EngineError::SetupFailed(f) if f.interrupted => 130,
            _ => 1,
        }
    }
}

//! Engine errors: each names the session, repository, file or ref concerned, and has a kind ([`ErrorKind`])
//! and, where there is one, a [`Hint`] saying what to do next; the CLI and the dashboard word and map them.

use ampsm_core::{ErrorKind, Hint};
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
    #[error("{}", ampsm_core::agents::unknown_agent_text(.0))]
    UnknownAgent(String),
    #[error("the worktree folder {0} already exists; choose another name or remove that folder")]
    WorktreeExists(PathBuf),
    #[error("session {session} has {what}")]
    UnmergedWork { session: String, short_id: String, what: String },
    #[error("session {session} is running (process {pid})")]
    Running { session: String, pid: i64 },
    #[error("{0}")]
    Invalid(String),
    #[error("session {session}: its worktree {path} is missing")]
    WorktreeGone { session: String, short_id: String, path: String },
    #[error("session {session} has no prompt")]
    NoPrompt { session: String },
    #[error("session {session} has no approval #{seq}")]
    NoApproval { session: String, name: String, seq: i64 },
    #[error(transparent)]
    Agent(#[from] ampsm_agent::AgentError),
    #[error("{agent} is not logged in: {message}")]
    NotLoggedIn { agent: String, message: String },
    #[error(transparent)]
    Review(#[from] crate::review::error::ReviewError),
    #[error(transparent)]
    Batch(#[from] crate::jobs::batch::BatchError),
    #[error(transparent)]
    Bench(#[from] crate::jobs::bench::BenchError),
    #[error(transparent)]
    Metrics(#[from] crate::reports::metrics_error::MetricsError),
    #[error("interrupted before the agent of session {session} started; nothing ran")]
    Interrupted { session: String },
    #[error("{0}")]
    SetupFailed(Box<crate::sessions::SetupFailure>),
    #[error("agent {agent} cannot honour the `{policy}` permission policy: {why}")]
    PolicyUnsupported { agent: String, policy: ampsm_core::PermissionPolicy, why: String },
    #[error(
        "session {session} has no setup command: none was given, and the config sets none for its repository"
    )]
    NoSetupCommand { session: String },
    #[error("session {session} is not running (it is {status}); there is nothing to stop")]
    NotRunning { session: String, status: String },
}

fn suggestions_text(s: &[String]) -> String {
    if s.is_empty() { String::new() } else { format!("; did you mean: {}?", s.join(", ")) }
}

impl EngineError {
    /// What to do next, when there is more to say than the message; each front end words it.
    pub fn hint(&self) -> Option<Hint> {
        match self {
            EngineError::Git(ampsm_git::GitError::NotARepository { .. }) => Some(Hint::PassRepo),
            EngineError::Store(e) => e.hint(),
            EngineError::UnmergedWork { short_id, .. } => {
                Some(Hint::MergeOrForceRemove { session: short_id.clone() })
            }
            EngineError::Running { .. } => Some(Hint::WaitOrForceStop),
            EngineError::WorktreeGone { short_id, .. } => {
                Some(Hint::RepairOrUndo { session: short_id.clone() })
            }
            EngineError::NoPrompt { .. } => Some(Hint::GivePrompt),
            EngineError::NoSetupCommand { .. } => Some(Hint::GiveSetupCommand),
            EngineError::NoApproval { name, .. } => Some(Hint::ListApprovals { session: name.clone() }),
            EngineError::SetupFailed(f) => Some(Hint::RerunSetupOrRemove { session: f.name.clone() }),
            EngineError::Review(e) => e.hint(),
            EngineError::Metrics(e) => e.hint(),
            EngineError::Agent(e) => e.hint(),
            EngineError::PolicyUnsupported { .. } => Some(Hint::ChoosePolicy),
            EngineError::Batch(e) => e.hint(),
            EngineError::Bench(e) => e.hint(),
            _ => None,
        }
    }

    /// What kind of failure this is, which front ends turn into an exit code or an HTTP status.
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::Config(e) => e.kind(),
            EngineError::Store(e) => e.kind(),
            EngineError::Git(e) => e.kind(),
            EngineError::Agent(e) => e.kind(),
            EngineError::Review(e) => e.kind(),
            EngineError::Batch(e) => e.kind(),
            EngineError::Bench(e) => e.kind(),
            EngineError::Metrics(e) => e.kind(),
            EngineError::Name(_)
            | EngineError::BadBase { .. }
            | EngineError::UnknownAgent(_)
            | EngineError::Invalid(_)
            | EngineError::WorktreeGone { .. }
            | EngineError::NoPrompt { .. }
            | EngineError::NoSetupCommand { .. }
            | EngineError::NoApproval { .. }
            | EngineError::PolicyUnsupported { .. }
            | EngineError::NotRunning { .. } => ErrorKind::BadInput,
            EngineError::UnmergedWork { .. }
            | EngineError::Running { .. }
            | EngineError::WorktreeExists(_) => ErrorKind::Refused,
            EngineError::Interrupted { .. } => ErrorKind::Interrupted,
            EngineError::SetupFailed(f) if f.interrupted => ErrorKind::Interrupted,
            EngineError::SetupFailed(_) | EngineError::Io { .. } | EngineError::NotLoggedIn { .. } => {
                ErrorKind::Failed
            }
        }
    }
}

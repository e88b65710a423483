//! The one error vocabulary every crate shares: what kind of failure an error is ([`ErrorKind`]) and what
//! the user can do next ([`Hint`]). Front ends turn a kind into an exit code or an HTTP status and word a
//! hint themselves; libraries never choose a number or name a command-line flag.

use serde::Serialize;

/// What kind of failure an error is; each front end maps these once (the CLI to exit codes, the web to
/// HTTP statuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request itself is wrong: a bad flag value, an unknown agent, an invalid config or name.
    BadInput,
    /// The thing asked for (session, batch, bench run, snapshot) does not exist.
    NotFound,
    /// Refused to protect work or money: uncommitted changes, a running process, conflicts, a spent budget.
    Refused,
    /// Stopped by the user (Ctrl-C) before it finished.
    Interrupted,
    /// Tried and failed: IO, git, the database, an agent process.
    Failed,
}

/// What the user can do next, as a fact: the CLI words it with its commands and flags, the dashboard
/// with its pages and buttons. Sessions, batches and runs are named by the short reference the user typed
/// or would type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "hint", rename_all = "snake_case")]
pub enum Hint {
    /// See which sessions exist.
    ListSessions,
    /// See which batches exist.
    ListBatches,
    /// See which benchmark runs exist.
    ListBenches,
    /// Point at a git repository (the CLI's `--repo`).
    PassRepo,
    /// Pick another permission policy; the health check lists what each agent supports.
    ChoosePolicy,
}

//! The one error vocabulary every crate shares: what kind of failure an error is ([`ErrorKind`]) and what
//! the user can do next ([`Hint`]). Front ends turn a kind into an exit code or an HTTP status and word a
//! hint themselves; libraries choose no exit code or status and leave out the front ends' commands.

use serde::Serialize;

/// What kind of failure an error is; each front end maps these once (the CLI to exit codes, the web to
/// HTTP statuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
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

impl ErrorKind {
    /// The kind's name as front ends print it (`bad-input`, `not-found`, `refused`, `interrupted`,
    /// `failed`), the same text serde gives.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadInput => "bad-input",
            ErrorKind::NotFound => "not-found",
            ErrorKind::Refused => "refused",
            ErrorKind::Interrupted => "interrupted",
            ErrorKind::Failed => "failed",
        }
    }
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
    /// Point at a git repository.
    PassRepo,
    /// Pick another permission policy; the health check lists what each agent supports.
    ChoosePolicy,
    /// Merge or export the session's work first, or force the removal (a snapshot is saved first and
    /// undo brings it back).
    MergeOrForceRemove { session: String },
    /// Wait for the session's run to end, or force it to stop.
    WaitOrForceStop,
    /// Bring the session's work back from its last snapshot.
    Undo { session: String },
    /// Let repair settle the session, or bring its worktree back from a snapshot.
    RepairOrUndo { session: String },
    /// Run the agent one prompt at a time instead of in a chat.
    IterateInstead,
    /// Run one prompt at a time (its tool calls wait for answers), or choose another permission policy.
    IterateOrOtherPolicy,
    /// Give the prompt for the run.
    GivePrompt,
    /// See the session's approvals and their numbers.
    ListApprovals { session: String },
    /// Run the fixed setup again, or remove the session.
    RerunSetupOrRemove { session: String },
    /// Restore the missing worktree from a snapshot, or remove the session for good.
    UndoOrForceRemove { session: String },
    /// Commit the session's changes (stage, then commit), or roll them back.
    CommitOrRollback { session: String },
    /// Continue or abort the rebase in progress.
    FinishRebase { session: String },
    /// Start a rebase of the session onto its base.
    StartRebase { session: String },
    /// Edit the conflicted files in `worktree`, then continue the rebase (or abort it).
    ResolveThenContinue { session: String, worktree: String },
    /// Finish editing the conflict markers, then continue the rebase again.
    ContinueRebase { session: String },
    /// Rebase the session onto its base, resolve the conflicts, then merge again.
    RebaseThenMerge { session: String },
    /// Rebase commit by commit, or merge with the squash or merge strategy.
    RebaseOrOtherStrategy { session: String },
    /// Update the local `branch` from its upstream, rebase the session, then merge again.
    UpdateBaseThenRebase { session: String, branch: String },
    /// Rebase the session onto a local branch, which merge can update.
    RebaseOntoBranch { session: String },
    /// Push `branch` to `remote` once the remote is reachable.
    PushLater { remote: String, branch: String },
    /// Stage files (some paths, or all) first.
    StageFirst { session: String },
    /// Squash all of the session's commits instead of only the agent's.
    SquashAll { session: String },
    /// The session's details list its snapshots.
    ShowSnapshots { session: String },
    /// A CSV export needs a folder (created when missing) to write its files into.
    ExportToFolder,
    /// Raise the session's budget, or clear it.
    RaiseOrClearBudget { session: String },
    /// Wait for the running batch, follow it, or abort it.
    FollowOrAbortBatch { batch: String },
    /// Resume the batch with a higher budget.
    ResumeBatchWithBudget { batch: String },
    /// Wait for the running benchmark run, or abort it.
    AbortBench { run: String },
    /// Resume the benchmark run with a higher budget.
    ResumeBenchWithBudget { run: String },
    /// Give the setup command to run, or configure one for the repository or for every session.
    GiveSetupCommand,
    /// Name each agent (with its model) once: the same one twice compares nothing.
    GiveEachAgentOnce { agent: String },
    /// Set this count of a benchmark run to 1 or more.
    CountAtLeastOne { count: BenchCount },
    /// Name the paths to use, or ask for all of them.
    NamePathsOrAll,
    /// Name some paths or ask for all of them, not both.
    PathsOrAllNotBoth,
}

/// A count a benchmark run is started with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BenchCount {
    /// The most instances taken from the dataset.
    Limit,
    /// How many results run at once.
    Concurrency,
    /// How many times each instance runs per agent.
    Repeats,
}

impl BenchCount {
    /// The count's name, as the plan of a run and its options spell it: `limit`, `concurrency`, `repeats`.
    pub fn as_str(self) -> &'static str {
        match self {
            BenchCount::Limit => "limit",
            BenchCount::Concurrency => "concurrency",
            BenchCount::Repeats => "repeats",
        }
    }

    /// What the count is, in a sentence: "the limit on instances", …
    pub fn describe(self) -> &'static str {
        match self {
            BenchCount::Limit => "the limit on instances",
            BenchCount::Concurrency => "the concurrency",
            BenchCount::Repeats => "the number of repeats",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_prints_as_it_serializes() {
        for kind in [
            ErrorKind::BadInput,
            ErrorKind::NotFound,
            ErrorKind::Refused,
            ErrorKind::Interrupted,
            ErrorKind::Failed,
        ] {
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{}\"", kind.as_str()));
        }
        assert_eq!(ErrorKind::BadInput.as_str(), "bad-input");
    }
}

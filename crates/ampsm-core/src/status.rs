//! The session state machine: `idle`, `running`, `awaiting-input`, `error`, `done`, and the transitions
//! allowed between them. Every status change in the store goes through [`SessionStatus::check_transition`].
//!
//! Beside it, the other states and outcomes that are stored or printed as text: the status of a batch or a
//! benchmark run ([`JobStatus`]), of a batch item ([`BatchItemStatus`]) and of a benchmark result
//! ([`BenchResultStatus`]), how an iteration's agent run ended ([`IterationOutcome`]), and what a merge
//! ([`MergeResult`]) or a rebase ([`RebaseResult`]) came to. Each keeps the exact text the database and the
//! JSON output have always used.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where a session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SessionStatus {
    /// Created, or between iterations; nothing runs.
    Idle,
    /// An agent process works in the worktree.
    Running,
    /// The agent ended its turn with a question or a stop reason that needs the user.
    AwaitingInput,
    /// The last run failed (agent error, timeout, crash found by repair).
    Error,
    /// The user (or a merge) declared the work finished.
    Done,
}

/// A refused status change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a session cannot go from {from} to {to}")]
pub struct TransitionError {
    pub from: SessionStatus,
    pub to: SessionStatus,
}

impl SessionStatus {
    pub const ALL: [SessionStatus; 5] = [
        SessionStatus::Idle,
        SessionStatus::Running,
        SessionStatus::AwaitingInput,
        SessionStatus::Error,
        SessionStatus::Done,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Idle => "idle",
            SessionStatus::Running => "running",
            SessionStatus::AwaitingInput => "awaiting-input",
            SessionStatus::Error => "error",
            SessionStatus::Done => "done",
        }
    }

    /// The states reachable from `self` in one step (staying put is always allowed).
    ///
    /// - `idle` → `running` (iterate, chat), `done` (declared finished or merged), `error` (repair found the
    ///   worktree gone).
    /// - `running` → `idle` (run ended, nothing asked), `awaiting-input` (the agent asked), `error` (failure,
    ///   timeout, budget stop, crash).
    /// - `awaiting-input` → `running` (the user answered), `idle`, `done`, `error`.
    /// - `error` → `running` (retry), `idle` (reset by repair or the user), `done`.
    /// - `done` → `running` (more work on the same branch), `idle` (reopened).
    pub fn allowed_next(self) -> &'static [SessionStatus] {
        use SessionStatus::*;
        match self {
            Idle => &[Running, Done, Error],
            Running => &[Idle, AwaitingInput, Error],
            AwaitingInput => &[Running, Idle, Done, Error],
            Error => &[Running, Idle, Done],
            Done => &[Running, Idle],
        }
    }

    /// Whether a run is under way (`running`, or `awaiting-input` while an agent waits for an answer).
    pub fn has_a_run(self) -> bool {
        matches!(self, SessionStatus::Running | SessionStatus::AwaitingInput)
    }

    /// Ok when `self → to` is allowed.
    pub fn check_transition(self, to: SessionStatus) -> Result<(), TransitionError> {
        if self == to || self.allowed_next().contains(&to) {
            Ok(())
        } else {
            Err(TransitionError { from: self, to })
        }
    }
}

impl fmt::Display for SessionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SessionStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SessionStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s || (s == "awaiting_input" && *st == SessionStatus::AwaitingInput))
            .ok_or_else(|| {
                format!("unknown status {s:?} (expected one of: idle, running, awaiting-input, error, done)")
            })
    }
}

/// An enum stored and printed as fixed text: `as_str`, `ALL`, `Display`, `FromStr` and serde, all through
/// the same text.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in the order of the lifecycle.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored (and printed) text.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl fmt::Display for $name {
            /// The text, padded when a width is asked for (`{:<13}`), as a `&str` would be.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| {
                    let known: Vec<&str> = $name::ALL.iter().map(|v| v.as_str()).collect();
                    format!("unknown {} {s:?} (expected one of: {})", $what, known.join(", "))
                })
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

text_enum! {
    /// Where a batch or a benchmark run stands: `queued` → `running` → `completed` (everything passed or was
    /// evaluated), `failed` (something did not) or `aborted`.
    pub enum JobStatus ("status") {
        /// Recorded, no runner yet.
        Queued => "queued",
        /// A runner works on it.
        Running => "running",
        /// Every item ran to a good end.
        Completed => "completed",
        /// Every item ran; some did not end well.
        Failed => "failed",
        /// Stopped before the end (on request, a budget, a dead runner).
        Aborted => "aborted",
    }
}

/// The status of a batch.
pub type BatchStatus = JobStatus;
/// The status of a benchmark run.
pub type BenchRunStatus = JobStatus;

impl JobStatus {
    /// Whether the job reached a final status.
    pub fn is_finished(self) -> bool {
        match self {
            JobStatus::Queued | JobStatus::Running => false,
            JobStatus::Completed | JobStatus::Failed | JobStatus::Aborted => true,
        }
    }

    /// The final status of a job whose items all ended: `aborted` when it was stopped, else `failed` when
    /// some item did not end well, else `completed`.
    pub fn final_for(stopped: bool, all_good: bool) -> JobStatus {
        if stopped {
            JobStatus::Aborted
        } else if all_good {
            JobStatus::Completed
        } else {
            JobStatus::Failed
        }
    }
}

text_enum! {
    /// Where one batch item stands: `queued` → `running` → `passed` | `failed` | `error` | `timeout` |
    /// `aborted`.
    pub enum BatchItemStatus ("batch item status") {
        /// Waiting for a free slot.
        Queued => "queued",
        /// An attempt runs.
        Running => "running",
        /// The agent finished and the item's checks passed.
        Passed => "passed",
        /// The agent or the checks failed on every attempt.
        Failed => "failed",
        /// The item could not be run (its session could not be made, …).
        Error => "error",
        /// The last attempt ran out of time.
        Timeout => "timeout",
        /// Stopped or never started (abort, budget, dead runner).
        Aborted => "aborted",
    }
}

impl BatchItemStatus {
    /// Whether the item reached a final status.
    pub fn is_finished(self) -> bool {
        match self {
            BatchItemStatus::Queued | BatchItemStatus::Running => false,
            BatchItemStatus::Passed
            | BatchItemStatus::Failed
            | BatchItemStatus::Error
            | BatchItemStatus::Timeout
            | BatchItemStatus::Aborted => true,
        }
    }
}

text_enum! {
    /// Where one benchmark result (problem × agent × repeat) stands: `queued` → `running` → `resolved` |
    /// `unresolved` | `empty_patch` | `not_evaluated` | `error` | `aborted`.
    pub enum BenchResultStatus ("bench result status") {
        /// Waiting for a free slot.
        Queued => "queued",
        /// The agent or the evaluation runs.
        Running => "running",
        /// The patch made the failing tests pass and kept the passing ones.
        Resolved => "resolved",
        /// The patch was evaluated and did not resolve the problem.
        Unresolved => "unresolved",
        /// The agent changed nothing.
        EmptyPatch => "empty_patch",
        /// There was no way to evaluate the patch (never shown as unresolved).
        NotEvaluated => "not_evaluated",
        /// The run or the evaluation broke.
        Error => "error",
        /// Stopped or never started.
        Aborted => "aborted",
    }
}

impl BenchResultStatus {
    /// Whether the result reached a final status.
    pub fn is_finished(self) -> bool {
        !matches!(self, BenchResultStatus::Queued | BenchResultStatus::Running)
    }

    /// Whether the patch was judged (resolved, unresolved or empty).
    pub fn is_judged(self) -> bool {
        matches!(
            self,
            BenchResultStatus::Resolved | BenchResultStatus::Unresolved | BenchResultStatus::EmptyPatch
        )
    }
}

text_enum! {
    /// How one agent run (an iteration) ended; also a benchmark result's agent outcome.
    pub enum IterationOutcome ("run outcome") {
        /// The agent finished its turn.
        Success => "success",
        /// The agent (or its output limit) failed the run.
        Failed => "failed",
        /// The run passed its time limit and was stopped.
        Timeout => "timeout",
        /// The user stopped it (Ctrl-C, `stop`).
        Cancelled => "cancelled",
        /// A budget stopped it.
        Budget => "budget",
        /// Its runner died while it ran (found by repair).
        Crashed => "crashed",
    }
}

text_enum! {
    /// What a merge attempt came to (`merges.result`; `pull-request` is only reported, never stored).
    pub enum MergeResult ("merge result") {
        /// The session's work landed on its base.
        Merged => "merged",
        /// Nothing changed: a preview of what a merge would do.
        DryRun => "dry-run",
        /// A pull request was opened instead of merging locally.
        PullRequest => "pull-request",
        /// A preflight check refused the merge.
        Refused => "refused",
        /// The work conflicts with the base.
        Conflicts => "conflicts",
        /// The merge broke while landing.
        Failed => "failed",
    }
}

text_enum! {
    /// What a rebase (or its `--continue` or `--abort`) came to.
    pub enum RebaseResult ("rebase outcome") {
        /// Every commit was replayed onto the new base.
        Done => "done",
        /// The rebase stopped on conflicts and is still in progress.
        Conflicts => "conflicts",
        /// The rebase was given up; the branch is back where it was.
        Aborted => "aborted",
        /// The branch already contains its base; nothing was done.
        UpToDate => "up-to-date",
    }
}

text_enum! {
    /// Where the items of a batch or the results of a benchmark run execute: on this machine, as jobs of a
    /// Slurm cluster (one job array per run), or as a Kubernetes Indexed Job.
    #[derive(Default)]
    pub enum Executor ("executor") {
        /// Worker threads of the runner process, on this machine (the reference behaviour).
        #[default]
        Local => "local",
        /// One Slurm job array per run, through `sbatch`/`squeue`/`scancel`.
        Slurm => "slurm",
        /// One Kubernetes Indexed Job per run.
        Kubernetes => "kubernetes",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_follow_the_table() {
        use SessionStatus::*;
        assert!(Idle.check_transition(Running).is_ok());
        assert!(Running.check_transition(AwaitingInput).is_ok());
        assert!(Running.check_transition(Done).is_err());
        assert!(Idle.check_transition(AwaitingInput).is_err());
        assert!(Done.check_transition(Error).is_err());
        for s in SessionStatus::ALL {
            assert!(s.check_transition(s).is_ok());
            assert_eq!(s.as_str().parse::<SessionStatus>(), Ok(s));
        }
    }

    #[test]
    fn text_enums_round_trip_through_their_text() {
        for s in JobStatus::ALL {
            assert_eq!(s.as_str().parse::<JobStatus>(), Ok(*s));
        }
        for s in BenchResultStatus::ALL {
            assert_eq!(serde_json::to_string(s).unwrap(), format!("\"{s}\""));
            assert_eq!(serde_json::from_str::<BenchResultStatus>(&format!("\"{s}\"")).unwrap(), *s);
        }
        assert_eq!(BenchResultStatus::NotEvaluated.as_str(), "not_evaluated");
        assert_eq!(MergeResult::DryRun.to_string(), "dry-run");
        assert_eq!(RebaseResult::UpToDate.as_str(), "up-to-date");
        assert_eq!(format!("{:<9}|", JobStatus::Failed), "failed   |");
        assert!("nope".parse::<BatchItemStatus>().unwrap_err().contains("passed"));
        assert!(BatchItemStatus::Timeout.is_finished() && !BatchItemStatus::Running.is_finished());
        assert_eq!("slurm".parse::<Executor>(), Ok(Executor::Slurm));
        assert!("ray".parse::<Executor>().unwrap_err().contains("local, slurm, kubernetes"));
    }
}

//! The session state machine: `idle`, `running`, `awaiting-input`, `error`, `done`, and the transitions
//! allowed between them. Every status change in the store goes through [`SessionStatus::check_transition`].

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
}

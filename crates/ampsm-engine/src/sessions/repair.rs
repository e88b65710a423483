//! Reconciliation after crashes, run at every start (cheap: two indexed queries when nothing is wrong)
//! and by `amp-sessions repair`: creations interrupted by `kill -9` are undone, sessions marked running
//! whose runner process is gone become `error` with a note, and batches and benchmark runs whose runner
//! is gone end `failed` (see [`crate::jobs`]). Uncommitted agent changes are kept.

use crate::process::{pid_alive, stop_run};
use crate::{Engine, EngineError};
use ampsm_git::Git;
use serde::Serialize;
use std::path::PathBuf;

/// What a repair pass changed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RepairReport {
    /// Interrupted creations that were undone: `(session id, name)`.
    pub undone_creations: Vec<(String, String)>,
    /// Sessions that were running under a process that is gone: `(session id, name)`.
    pub orphaned_runs: Vec<(String, String)>,
    /// Batches and benchmark runs whose runner process was gone ("batch NAME (ID)", "bench run …").
    pub dead_runners: Vec<String>,
}

impl RepairReport {
    pub fn is_empty(&self) -> bool {
        self.undone_creations.is_empty() && self.orphaned_runs.is_empty() && self.dead_runners.is_empty()
    }
}

impl Engine {
    /// The start-up pass (see the module docs).
    pub fn repair_quick(&mut self) -> Result<RepairReport, EngineError> {
        let mut report = RepairReport::default();
        for s in self.store.unfinished_creations()? {
            if s.creating_pid.is_some_and(pid_alive) {
                continue;
            }
            let git = Git::new(&s.repo_path);
            self.undo_creation(&git, &s.id, &s.branch, &PathBuf::from(&s.worktree_path), &s.base_commit);
            report.undone_creations.push((s.id.to_string(), s.name.clone()));
        }
        for s in self.store.running_sessions()? {
            if s.runner_pid.is_some_and(pid_alive) {
                continue;
            }
            // The runner died; its agent (or test script, or setup) may still be running in its own process
            // group, and what left the group still carries the run's tag.
            stop_run(s.id.as_str(), s.runner_pid, s.agent_pid, std::time::Duration::from_secs(2));
            let note = format!(
                "the process running this session ({}) ended unexpectedly; uncommitted changes were kept in the worktree",
                s.runner_pid.map(|p| p.to_string()).unwrap_or_else(|| "unknown".into())
            );
            // Only if it is still that run: it may have ended normally since it was read.
            if !self.store.mark_orphaned(&s.id, s.runner_pid, &note)? {
                continue;
            }
            self.store.mark_running_iterations_crashed(&s.id)?;
            self.store.cancel_session_approvals(&s.id, "the process running the session ended")?;
            report.orphaned_runs.push((s.id.to_string(), s.name.clone()));
        }
        report.dead_runners = self.settle_dead_runners()?;
        Ok(report)
    }
}

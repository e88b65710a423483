//! What front ends read: lists of sessions, batches and benchmark runs with their counts, a session's
//! iterations, tool calls, usage rows and recent events, and a follower of its events. Each read takes a
//! session reference the way the user typed it (id, unique id prefix or name) or a record the engine gave
//! out before; the store queries themselves live in `ampsm-store`.

use crate::records::{
    Batch, BatchCounts, BenchCounts, BenchRun, Iteration, Session, StoredEvent, ToolCall, UsageRow,
};
use crate::runs::feed::SessionFeed;
use crate::{Engine, EngineError};
use ampsm_core::{SessionId, SessionStatus};
use ampsm_store::SessionFilter;
use std::path::PathBuf;

/// Which sessions [`Engine::sessions`] lists.
#[derive(Debug, Clone, Default)]
pub struct SessionQuery {
    /// Only sessions in this status.
    pub status: Option<SessionStatus>,
    /// Only sessions of the repository that holds this path (any folder inside it).
    pub repo: Option<PathBuf>,
    /// Also sessions that were removed.
    pub include_removed: bool,
}

impl Engine {
    /// The sessions `query` selects, newest first.
    pub fn sessions(&self, query: &SessionQuery) -> Result<Vec<Session>, EngineError> {
        let repo_path = match &query.repo {
            Some(p) => Some(ampsm_git::repo_root(p)?.to_string_lossy().into_owned()),
            None => None,
        };
        let filter =
            SessionFilter { status: query.status, repo_path, include_removed: query.include_removed };
        Ok(self.store.list_sessions(&filter)?)
    }

    /// The session `reference` names (id, unique id prefix or name); removed ones only with
    /// `include_removed`.
    pub fn session(&self, reference: &str, include_removed: bool) -> Result<Session, EngineError> {
        Ok(self.store.resolve_session(reference, include_removed)?)
    }

    /// The session with this id as it is stored now.
    pub fn session_by_id(&self, id: &SessionId) -> Result<Session, EngineError> {
        Ok(self.store.get_session(id)?)
    }

    /// The iterations of a session, oldest first.
    pub fn iterations(&self, session: &SessionId) -> Result<Vec<Iteration>, EngineError> {
        Ok(self.store.list_iterations(session)?)
    }

    /// The tool calls of a session, in the order they were made.
    pub fn tool_calls(&self, session: &SessionId) -> Result<Vec<ToolCall>, EngineError> {
        Ok(self.store.list_tool_calls(session)?)
    }

    /// The token usage rows of a session with their prices.
    pub fn usage_rows(&self, session: &SessionId) -> Result<Vec<UsageRow>, EngineError> {
        Ok(self.store.list_usage(session)?)
    }

    /// How many event lines a session has stored.
    pub fn event_count(&self, session: &SessionId) -> Result<i64, EngineError> {
        Ok(self.store.count_events(session)?)
    }

    /// The last `limit` event lines of a session, oldest first.
    pub fn last_events(&self, session: &SessionId, limit: i64) -> Result<Vec<StoredEvent>, EngineError> {
        Ok(self.store.last_events(session, limit)?)
    }

    /// A follower of a session's event lines (from the first one with `from_start`, else from now), on a
    /// connection of its own so that it can live on another thread.
    pub fn follow_events(&self, session: &SessionId, from_start: bool) -> Result<SessionFeed, EngineError> {
        SessionFeed::open(&self.paths.db, session, from_start)
    }

    /// A follower of `session`'s event lines from the line after `after` (what a page already shows).
    pub fn follow_events_after(&self, session: &SessionId, after: i64) -> Result<SessionFeed, EngineError> {
        SessionFeed::open_after(&self.paths.db, session, after)
    }

    /// Every batch, newest first, with the counts of its items.
    pub fn batches(&self) -> Result<Vec<(Batch, BatchCounts)>, EngineError> {
        let mut out = Vec::new();
        for b in self.store.list_batches()? {
            let counts = self.store.batch_counts(&b.id)?;
            out.push((b, counts));
        }
        Ok(out)
    }

    /// The counts of a batch's items by status.
    pub fn batch_counts(&self, batch_id: &str) -> Result<BatchCounts, EngineError> {
        Ok(self.store.batch_counts(batch_id)?)
    }

    /// Every benchmark run, newest first, with the counts of its results.
    pub fn bench_runs(&self) -> Result<Vec<(BenchRun, BenchCounts)>, EngineError> {
        let mut out = Vec::new();
        for r in self.store.list_bench_runs()? {
            let counts = self.store.bench_counts(&r.id)?;
            out.push((r, counts));
        }
        Ok(out)
    }

    /// The counts of a benchmark run's results by status.
    pub fn bench_counts(&self, run_id: &str) -> Result<BenchCounts, EngineError> {
        Ok(self.store.bench_counts(run_id)?)
    }

    /// What a benchmark run has spent so far (priced usage of its sessions), in USD.
    pub fn bench_spend_usd(&self, run_id: &str) -> Result<ampsm_core::Money, EngineError> {
        Ok(self.store.bench_spend_usd(run_id)?)
    }

    /// Where the setup command of a session wrote its output (the file may not exist).
    pub fn setup_log(&self, session: &SessionId) -> PathBuf {
        self.paths.logs.join(format!("setup-{session}.log"))
    }

    /// The folder under AMPSM_HOME where a front end keeps files it was handed (the dashboard's pasted
    /// batch and benchmark YAML): `kind` names the folder.
    pub fn uploads_dir(&self, kind: &str) -> PathBuf {
        self.paths.home.join(kind)
    }
}

impl Engine {
    /// What the CLI of agent `name` can do; `None` for an agent this build does not know.
    pub fn agent_capabilities(&self, name: &str) -> Option<crate::records::Capabilities> {
        ampsm_agent::adapter_for(name).ok().map(|a| a.capabilities())
    }
}

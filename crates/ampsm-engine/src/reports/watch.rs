//! Change marks for live views: a [`Watcher`] holds a read connection of its own (so that it can poll on
//! a thread of its own) and turns a [`WatchTopic`] into a text that changes whenever what the topic covers
//! changes — the sessions list, the approvals inbox, one session, the batches, one batch, the benchmark
//! runs or one benchmark run. Every mark also covers the pending approvals of all sessions, which every
//! page shows as a badge. A batch's or run's mark covers everything its page shows: status, stop reason,
//! runner, counts, each item's or result's status, attempts, session (and its status), tokens, cost,
//! time, tests and error.

use crate::EngineError;
use ampsm_config::Paths;
use ampsm_core::SessionId;
use ampsm_store::jobs::JobKind;
use ampsm_store::{SessionFilter, Store};
use std::fmt::Write;

/// What a live view watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchTopic {
    /// The list of sessions.
    Sessions,
    /// The approvals inbox.
    Approvals,
    /// One session: status, events, iterations, approvals.
    Session(String),
    /// The list of batches: each one's status and counts.
    Batches,
    /// One batch: status, items, their usage and the statuses of their sessions.
    Batch(String),
    /// The list of benchmark runs: each one's status and counts.
    Benches,
    /// One benchmark run: status and results.
    Bench(String),
}

impl std::str::FromStr for WatchTopic {
    type Err = String;

    /// `sessions`, `approvals`, `batches`, `benches`, `session:<id>`, `batch:<id>` or `bench:<id>`.
    fn from_str(s: &str) -> Result<WatchTopic, String> {
        let topic = match s.split_once(':') {
            None if s == "sessions" => WatchTopic::Sessions,
            None if s == "approvals" => WatchTopic::Approvals,
            None if s == "batches" => WatchTopic::Batches,
            None if s == "benches" => WatchTopic::Benches,
            Some(("session", id)) if !id.is_empty() => WatchTopic::Session(id.to_string()),
            Some(("batch", id)) if !id.is_empty() => WatchTopic::Batch(id.to_string()),
            Some(("bench", id)) if !id.is_empty() => WatchTopic::Bench(id.to_string()),
            _ => {
                return Err(format!(
                    "unknown live topic {s:?} (one of: sessions, approvals, batches, benches, session:<id>, batch:<id>, \
                     bench:<id>)"
                ));
            }
        };
        Ok(topic)
    }
}

/// A short digest of a mark, for a page to carry (the mark itself can be long): the live stream compares
/// it with its first mark, so a change between the page's render and the stream's start is not missed.
pub fn digest(mark: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    mark.hash(&mut h);
    format!("{:016x}", h.finish())
}

/// Sessions running and waiting, from [`Watcher::activity_counts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActivityCounts {
    pub running: usize,
    pub waiting: usize,
}

/// A read-only view of the store for live pages (see the module docs).
pub struct Watcher {
    store: Store,
}

impl Watcher {
    /// Opens a read connection to the store under `paths`.
    pub fn open(paths: &Paths) -> Result<Watcher, EngineError> {
        Ok(Watcher { store: Store::open(&paths.db)? })
    }

    /// The id of the newest recorded status change of any session (where a watcher of activity starts).
    pub fn last_status_change_id(&self) -> Result<i64, EngineError> {
        Ok(self.store.last_status_change_id()?)
    }

    /// Status changes of every session after the change `after`, oldest first, at most `limit`.
    pub fn status_changes_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<ampsm_store::ActivityChange>, EngineError> {
        Ok(self.store.status_changes_after(after, limit)?)
    }

    /// The name of the session `id`, if it exists.
    pub fn session_name(&self, id: &str) -> Result<Option<String>, EngineError> {
        match self.store.get_session(&SessionId::from_stored(id)) {
            Ok(s) => Ok(Some(s.name)),
            Err(ampsm_store::StoreError::SessionNotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The tool calls of all sessions that wait for an answer.
    pub fn pending_approvals(&self) -> Result<Vec<ampsm_store::Approval>, EngineError> {
        Ok(self.store.pending_approvals(None)?)
    }

    /// How many sessions run an agent now, and how many wait for the user (for input, or for an answer
    /// to a tool call): the desktop app's tray.
    pub fn activity_counts(&self) -> Result<ActivityCounts, EngineError> {
        let mut counts = ActivityCounts::default();
        for (status, n) in self.store.session_status_counts()? {
            let n = usize::try_from(n).unwrap_or(0);
            match status.parse::<ampsm_core::SessionStatus>() {
                Ok(ampsm_core::SessionStatus::Running) => counts.running += n,
                Ok(ampsm_core::SessionStatus::AwaitingInput) => counts.waiting += n,
                _ => {}
            }
        }
        Ok(counts)
    }

    /// How many tool calls of all sessions wait for an answer.
    pub fn pending_approval_count(&self) -> Result<usize, EngineError> {
        Ok(self.store.pending_approvals(None)?.len())
    }

    /// A text that changes whenever what `topic` covers changes. `extra` adds what the front end keeps
    /// about an id the topic covers (a failure of work it started), so that a change of it shows too.
    pub fn mark(
        &self,
        topic: &WatchTopic,
        extra: &dyn Fn(&str) -> Option<String>,
    ) -> Result<String, EngineError> {
        let store = &self.store;
        let mut out = String::new();
        for a in store.pending_approvals(None)? {
            let _ = write!(out, "{};", a.id);
        }
        out.push('|');
        match topic {
            WatchTopic::Approvals => {}
            WatchTopic::Sessions => {
                for s in store.list_sessions(&SessionFilter::default())? {
                    let _ =
                        write!(out, "{}:{}:{:?}:{:?};", s.id, s.status, s.status_note, extra(s.id.as_str()));
                }
            }
            WatchTopic::Session(id) => {
                let sid = SessionId::from_stored(id);
                let s = store.get_session(&sid)?;
                let _ = write!(
                    out,
                    "{}:{:?}:{}:{}:{:?}",
                    s.status,
                    s.status_note,
                    store.last_event_id(&sid)?,
                    store.list_iterations(&sid)?.len(),
                    extra(id)
                );
                for a in store.session_approvals(&sid)? {
                    let _ = write!(out, "{}:{};", a.seq, a.status.as_str());
                }
            }
            WatchTopic::Batches => {
                for b in store.list_batches()? {
                    let c = store.batch_counts(&b.id)?;
                    let _ = write!(out, "{}:{}:{:?}:{:?};", b.id, b.status, c, b.runner_pid);
                }
            }
            WatchTopic::Batch(id) => {
                if let Some(b) = store.get_batch(id)? {
                    let _ = write!(
                        out,
                        "{}:{:?}:{:?}:{:?}:{:?};",
                        b.status,
                        b.stop_reason,
                        b.runner_pid,
                        b.budget_usd,
                        extra(id)
                    );
                    for i in store.batch_items(id)? {
                        let _ = write!(
                            out,
                            "{}:{}:{}:{:?}:{}:{:?};",
                            i.id, i.status, i.attempts, i.session_id, i.merged, i.error
                        );
                    }
                    let mut usage: Vec<_> = store.batch_item_usage(id)?.into_iter().collect();
                    usage.sort_by(|a, b| a.0.cmp(&b.0));
                    for (item, u) in usage {
                        let _ = write!(out, "{item}:{u:?};");
                    }
                    for sid in store.batch_live_session_ids(id)? {
                        let s = store.get_session(&SessionId::from_stored(sid))?;
                        let _ = write!(out, "{}:{}:{:?};", s.id, s.status, s.removed_at);
                    }
                    remote_progress(&mut out, store, JobKind::Batch, id)?;
                }
            }
            WatchTopic::Benches => {
                for r in store.list_bench_runs()? {
                    let c = store.bench_counts(&r.id)?;
                    let _ = write!(out, "{}:{}:{:?};", r.id, r.status, c);
                }
            }
            WatchTopic::Bench(id) => {
                if let Some(r) = store.get_bench_run(id)? {
                    let _ =
                        write!(out, "{}:{:?}:{:?}:{:?};", r.status, r.stop_reason, r.runner_pid, extra(id));
                    for res in store.bench_results(id)? {
                        // Everything a result row shows (status, tests, time, tokens, cost, error).
                        let _ = write!(out, "{res:?};");
                    }
                    remote_progress(&mut out, store, JobKind::Bench, id)?;
                }
            }
        }
        Ok(out)
    }
}

/// What the units of a run that run on cluster nodes report (see [`ampsm_store::cluster::TaskProgress`]),
/// in a fixed order, for a mark.
fn remote_progress(out: &mut String, store: &Store, owner: JobKind, id: &str) -> Result<(), EngineError> {
    let mut running: Vec<_> = store.running_task_progress(owner, id)?.into_iter().collect();
    running.sort_by(|a, b| a.0.cmp(&b.0));
    for (unit, p) in running {
        let _ = write!(out, "{unit}:{p:?};");
    }
    Ok(())
}

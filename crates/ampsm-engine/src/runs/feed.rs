//! Live followers: a [`SessionFeed`] subscribes to one session's agent events and yields each stored line
//! once, in order, as it lands in the database. The database is the bus: the writer of a run may be this
//! process or another one (an `iterate` in another terminal, a batch runner), and every follower sees the
//! same sequence, `logs --follow` now and the dashboard's SSE streams later. Waiting backs off from 10 ms
//! to 200 ms while nothing arrives, so an idle follower costs next to nothing.

use crate::EngineError;
use ampsm_core::{SessionId, SessionStatus};
use ampsm_store::{Store, StoredEvent};
use std::path::Path;
use std::time::{Duration, Instant};

/// Lines fetched per read.
const PAGE: i64 = 2_000;
const MIN_WAIT: Duration = Duration::from_millis(10);
const MAX_WAIT: Duration = Duration::from_millis(200);

/// A subscription to one session's event lines.
pub struct SessionFeed {
    store: Store,
    session: SessionId,
    after: i64,
    /// The last line that existed when the follower subscribed; a later line means a run was seen.
    known_at_open: i64,
    seen_running: bool,
}

impl SessionFeed {
    /// Subscribes to `session` from its first recorded line (`from_start`) or from now on.
    pub fn open(db: &Path, session: &SessionId, from_start: bool) -> Result<SessionFeed, EngineError> {
        SessionFeed::open_at(db, session, if from_start { Some(0) } else { None })
    }

    /// Subscribes to `session` from the line after `after` (a page that already shows the lines up to it).
    pub fn open_after(db: &Path, session: &SessionId, after: i64) -> Result<SessionFeed, EngineError> {
        SessionFeed::open_at(db, session, Some(after))
    }

    /// From the line after `after`, or (`None`) from now on.
    fn open_at(db: &Path, session: &SessionId, after: Option<i64>) -> Result<SessionFeed, EngineError> {
        let store = Store::open(db)?;
        let known_at_open = store.last_event_id(session)?;
        let after = after.unwrap_or(known_at_open);
        let seen_running = store.get_session(session)?.status == SessionStatus::Running;
        Ok(SessionFeed { store, session: session.clone(), after, known_at_open, seen_running })
    }

    /// The lines stored since the last call (at most a page), without waiting.
    pub fn poll(&mut self) -> Result<Vec<StoredEvent>, EngineError> {
        let rows = self.store.events_after(&self.session, self.after, PAGE)?;
        if let Some(last) = rows.last() {
            self.after = last.id;
            if last.id > self.known_at_open {
                self.seen_running = true;
            }
        }
        Ok(rows)
    }

    /// Waits up to `timeout` for new lines; an empty result means none arrived.
    pub fn next(&mut self, timeout: Duration) -> Result<Vec<StoredEvent>, EngineError> {
        let deadline = ampsm_core::duration::deadline_after(Instant::now(), timeout);
        let mut wait = MIN_WAIT;
        loop {
            let rows = self.poll()?;
            if !rows.is_empty() || Instant::now() >= deadline {
                return Ok(rows);
            }
            std::thread::sleep(wait.min(deadline.saturating_duration_since(Instant::now())));
            wait = (wait * 2).min(MAX_WAIT);
        }
    }

    /// Whether a run the follower saw (or that was running when it subscribed) has ended and every line
    /// it wrote has been delivered. A follower that subscribed to an idle session waits for a run first.
    pub fn run_finished(&mut self) -> Result<bool, EngineError> {
        let status = self.store.get_session(&self.session)?.status;
        if status == SessionStatus::Running {
            self.seen_running = true;
            return Ok(false);
        }
        Ok(self.seen_running && self.store.events_after(&self.session, self.after, 1)?.is_empty())
    }
}

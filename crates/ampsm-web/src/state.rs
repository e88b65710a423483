//! The server's shared state: where the data lives, the session token and CSRF token, the theme, and
//! the background work this server started (agent runs, batches), so that errors of that work can be shown
//! and Ctrl-C can stop it cleanly; such a failure is also recorded in the session's timeline through the
//! engine, so it outlives this server. Engine access goes through [`AppState::engine`], which opens one engine
//! per request on a blocking thread (the engine is synchronous and holds a SQLite connection).

use crate::error::{WebError, joined};
use ampsm_config::Paths;
use ampsm_engine::Engine;
use ampsm_engine::reports::watch::Watcher;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Shared by every request.
#[derive(Clone)]
pub struct AppState {
    pub inner: Arc<Inner>,
}

/// What [`AppState`] shares.
pub struct Inner {
    pub paths: Paths,
    /// The secret in the printed URL and the cookie.
    pub token: String,
    /// The form field every POST must carry.
    pub csrf: String,
    pub port: u16,
    /// `gruvbox` (dark) or `light`.
    pub theme: String,
    /// Whether pages update themselves (ui.auto_update).
    pub auto_update: bool,
    /// Work running on threads of this server.
    pub background: Mutex<Background>,
    /// Tells live streams to end (server shutting down).
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

/// Background work started by this server.
#[derive(Default)]
pub struct Background {
    /// Sessions whose iteration runs on a thread of this server, by session id.
    pub running: HashMap<String, std::thread::JoinHandle<()>>,
    /// Batches run by this server, by batch id.
    pub batches: HashMap<String, std::thread::JoinHandle<()>>,
    /// Benchmark runs run by this server, by run id.
    pub benches: HashMap<String, std::thread::JoinHandle<()>>,
    /// The last failure of background work, by session or batch id (one line).
    pub failures: HashMap<String, String>,
}

impl AppState {
    /// Runs `f` with a freshly opened engine on a blocking thread.
    pub async fn engine<T, F>(&self, f: F) -> Result<T, WebError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Engine) -> Result<T, WebError> + Send + 'static,
    {
        let paths = self.inner.paths.clone();
        joined(
            tokio::task::spawn_blocking(move || {
                let mut engine = Engine::open_at(paths)?;
                f(&mut engine)
            })
            .await,
        )
    }

    /// How many tool calls of all sessions wait for an answer (the navigation's badge). A quick read of
    /// its own; 0 when the database cannot be read (the pages say why elsewhere).
    pub fn pending_approval_count(&self) -> usize {
        let read = || Watcher::open(&self.inner.paths).and_then(|w| w.pending_approval_count()).unwrap_or(0);
        // Rendering runs on the async workers: let them hand other requests on while this reads.
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(read)
            }
            _ => read(),
        }
    }

    /// The failure recorded for background work on `id`, if any.
    pub fn failure(&self, id: &str) -> Option<String> {
        self.lock().failures.get(id).cloned()
    }

    /// Locks the background registry (a poisoned lock is still usable: it holds plain data).
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Background> {
        self.inner.background.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `job` (a batch or bench run, by `id`) on a new thread kept in the registry `list` picks (so
    /// Ctrl-C can stop it); its failure (one line) is kept for the pages.
    pub fn spawn_job(
        &self,
        id: String,
        list: fn(&mut Background) -> &mut HashMap<String, std::thread::JoinHandle<()>>,
        job: impl FnOnce() -> Result<(), WebError> + Send + 'static,
    ) {
        let state = self.clone();
        let key = id.clone();
        let handle = std::thread::spawn(move || {
            if let Err(e) = job() {
                state.lock().failures.insert(key, e.line());
            }
        });
        let mut bg = self.lock();
        let jobs = list(&mut bg);
        jobs.retain(|_, h| !h.is_finished());
        jobs.insert(id, handle);
    }

    /// Runs `work` for a session on a new thread kept in the registry (so Ctrl-C can stop what it
    /// started); the failure line it returns, if any, is kept for the pages.
    fn spawn_for_session(
        &self,
        session_id: String,
        work: impl FnOnce(&AppState, Paths, &str) -> Option<String> + Send + 'static,
    ) {
        let paths = self.inner.paths.clone();
        let state = self.clone();
        let id = session_id.clone();
        let mut bg = self.lock();
        bg.failures.remove(&session_id);
        bg.running.retain(|_, h| !h.is_finished());
        let handle = std::thread::spawn(move || {
            if let Some(f) = work(&state, paths, &id) {
                state.lock().failures.insert(id, f);
            }
        });
        bg.running.insert(session_id, handle);
    }

    /// Runs the setup command of a new session on a new thread, then (with `then_run`) its first
    /// iteration; a failure is kept for the pages.
    pub fn spawn_setup(&self, session_id: String, command: String, then_run: bool) {
        self.spawn_for_session(session_id, move |state, paths, id| {
            match Engine::open_at(paths.clone())
                .and_then(|mut engine| engine.rerun_setup(id, Some(&command), None))
            {
                Ok(_) if then_run => {
                    state.spawn_iteration(id.to_string(), None);
                    None
                }
                Ok(_) => None,
                // A setup that ran and failed is in the session's history already (status `error`).
                Err(e @ ampsm_engine::EngineError::SetupFailed(_)) => Some(WebError::from(e).line()),
                Err(e) => {
                    let line = WebError::from(e).line();
                    record_failure(paths, id, "setup", &line);
                    Some(line)
                }
            }
        });
    }

    /// Runs one iteration of `session` on a new thread; its failure (if any) is kept for the pages.
    pub fn spawn_iteration(&self, session_id: String, prompt: Option<String>) {
        self.spawn_for_session(session_id, move |_, paths, id| {
            let result = Engine::open_at(paths.clone()).and_then(|mut engine| {
                let req =
                    ampsm_engine::IterateRequest { session: id.to_string(), prompt, ..Default::default() };
                engine.iterate(req, &mut |_| {})
            });
            match result {
                // Stopped on purpose (the Stop button, `amp-sessions stop`): the status note says so.
                Ok(report) => report.failure(),
                // Refused before the agent started (or failed around it): nothing else records it.
                Err(e) => {
                    let line = WebError::from(e).line();
                    record_failure(paths, id, "run started from the dashboard", &line);
                    Some(line)
                }
            }
        });
    }
}

/// Records a failure of background work in the session's history (best effort: the line is also kept
/// in memory for the pages, and a store that cannot be opened has nothing to record it in).
fn record_failure(paths: Paths, session_id: &str, what: &str, line: &str) {
    if let Ok(mut engine) = Engine::open_at(paths) {
        let id = ampsm_core::SessionId::from_stored(session_id);
        if let Err(e) = engine.record_background_failure(&id, what, line) {
            eprintln!("warning: could not record the failure of session {session_id}: {e}");
        }
    }
}

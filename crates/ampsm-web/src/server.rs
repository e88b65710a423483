//! Starting and stopping the dashboard: bind 127.0.0.1 (the `--port`, else `ui.port`, else a free
//! port), make the token, print the URL (or one JSON line), maybe open a browser, serve until Ctrl-C or
//! SIGTERM, then end live streams and stop the agent runs, batches and benchmark runs this server started.
//! [`Embedded`] serves the same dashboard inside another program (the desktop app).

use crate::auth::{self, random_secret};
use crate::error::{WebError, joined};
use crate::state::{AppState, Background, Inner};
use crate::views;
use ampsm_config::Paths;
use ampsm_engine::Engine;
use axum::Router;
use axum::routing::{get, post};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// How `amp-sessions ui` was asked to run.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub paths: Paths,
    /// `--port`; `Some(0)` asks for a free port.
    pub port: Option<u16>,
    /// Try to open the URL in a browser.
    pub open_browser: bool,
    /// Print `{"url":…,"port":…}` instead of text.
    pub json: bool,
}

/// Runs the dashboard until Ctrl-C or SIGTERM.
pub fn serve(opts: ServeOptions) -> Result<(), WebError> {
    let engine = Engine::open_at(opts.paths.clone())?;
    for w in engine.config_warnings() {
        eprintln!("warning: {w}");
    }
    let ui = engine.config().ui.clone();
    drop(engine);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| WebError::Internal(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(run(opts, ui))
}

async fn bind(explicit: Option<u16>, configured: u16) -> Result<TcpListener, WebError> {
    let port = explicit.unwrap_or(configured);
    match TcpListener::bind(("127.0.0.1", port)).await {
        Ok(l) => Ok(l),
        // The configured port is taken (another dashboard?): any free port will do.
        Err(_) if explicit.is_none() => TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|source| WebError::Bind { addr: "127.0.0.1:0".into(), source }),
        Err(source) => Err(WebError::Bind { addr: format!("127.0.0.1:{port}"), source }),
    }
}

/// The shared state of a dashboard on `port` whose live streams end when `shutdown` turns true; its long
/// sessions' error scans start warming in the background, so their Overview is fast from the start.
fn new_state(
    paths: &Paths,
    port: u16,
    ui: &ampsm_config::config::UiConfig,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> AppState {
    let state = AppState {
        inner: Arc::new(Inner {
            paths: paths.clone(),
            token: random_secret(),
            csrf: random_secret(),
            port,
            theme: ui.theme.clone(),
            auto_update: ui.auto_update,
            background: Mutex::new(Background::default()),
            shutdown,
        }),
    };
    let warm = state.clone();
    tokio::spawn(async move { warm.engine(|e| Ok(e.warm_metrics()?)).await });
    state
}

async fn run(opts: ServeOptions, ui: ampsm_config::config::UiConfig) -> Result<(), WebError> {
    let listener = bind(opts.port, ui.port).await?;
    let port =
        listener.local_addr().map_err(|source| WebError::Bind { addr: "127.0.0.1".into(), source })?.port();
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let state = new_state(&opts.paths, port, &ui, shutdown_rx.clone());
    // Listen for Ctrl-C and SIGTERM before the URL is out: a signal right after it must stop us cleanly.
    let signals = Signals::install()?;
    let url = format!("http://127.0.0.1:{port}/?token={}", state.inner.token);
    {
        let mut out = std::io::stdout().lock();
        let line = if opts.json {
            serde_json::json!({ "url": url, "port": port }).to_string()
        } else {
            format!("Dashboard: {url}\nPress Ctrl-C to stop.")
        };
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
    if opts.open_browser {
        open_browser(&url);
    }
    let app = router(state.clone());
    let mut stopped = shutdown_rx.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        signals.wait().await;
        let _ = shutdown_tx.send(true);
    });
    let served = tokio::select! {
        r = server => r.map_err(|e| WebError::Internal(format!("the server failed: {e}"))),
        // Connections that stay open after the signal get a few seconds, no more.
        _ = async move {
            let _ = stopped.wait_for(|s| *s).await;
            tokio::time::sleep(Duration::from_secs(3)).await;
        } => Ok(()),
    };
    let st = state.clone();
    let _ = tokio::task::spawn_blocking(move || stop_background(&st)).await;
    if !opts.json {
        println!("Dashboard stopped.");
    }
    served
}

/// The dashboard served inside another program (the desktop app): the same routes, guard (loopback Host,
/// token cookie, Origin and CSRF checks) and background work as `amp-sessions ui`, on a free loopback port
/// of the caller's tokio runtime. The program hands [`Embedded::login_url`] to its own window, so nobody
/// copies the token.
pub struct Embedded {
    state: AppState,
    base: String,
    shutdown: tokio::sync::watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
}

/// Work that a dashboard started and that has not ended yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unfinished {
    pub runs: usize,
    pub batches: usize,
    pub benches: usize,
}

impl Unfinished {
    pub fn is_empty(&self) -> bool {
        self.runs + self.batches + self.benches == 0
    }
}

impl Embedded {
    /// Opens the engine under `paths` (its configuration warnings go to stderr), binds a free port of
    /// 127.0.0.1 and starts serving on the current runtime.
    pub async fn start(paths: Paths) -> Result<Embedded, WebError> {
        let open = paths.clone();
        let ui = joined(
            tokio::task::spawn_blocking(move || {
                let engine = Engine::open_at(open)?;
                for w in engine.config_warnings() {
                    eprintln!("warning: {w}");
                }
                Ok(engine.config().ui.clone())
            })
            .await,
        )?;
        let listener = bind(Some(0), 0).await?;
        let port = listener
            .local_addr()
            .map_err(|source| WebError::Bind { addr: "127.0.0.1".into(), source })?
            .port();
        let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
        let state = new_state(&paths, port, &ui, shutdown_rx.clone());
        let app = router(state.clone());
        let mut stopped = shutdown_rx;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await;
        });
        Ok(Embedded { state, base: format!("http://127.0.0.1:{port}"), shutdown, server })
    }

    /// `http://127.0.0.1:PORT`: a window may load pages under it once it holds the cookie.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The address that sets the token's cookie and then shows `path` (such as `/` or `/s/<id>`).
    pub fn login_url(&self, path: &str) -> String {
        let path = if path.starts_with('/') { path } else { "/" };
        let sep = if path.contains('?') { '&' } else { '?' };
        format!("{}{path}{sep}token={}", self.base, self.state.inner.token)
    }

    /// Where the data lives.
    pub fn paths(&self) -> &Paths {
        &self.state.inner.paths
    }

    /// The runs, batches and benchmark runs this dashboard started that are still going.
    pub fn unfinished(&self) -> Unfinished {
        let bg = self.state.lock();
        let count = |m: &std::collections::HashMap<String, std::thread::JoinHandle<()>>| {
            m.values().filter(|h| !h.is_finished()).count()
        };
        Unfinished { runs: count(&bg.running), batches: count(&bg.batches), benches: count(&bg.benches) }
    }

    /// Stops what [`Embedded::unfinished`] counts the way Ctrl-C stops `amp-sessions ui`: agents get their
    /// process groups stopped and their work so far committed, batches and benchmark runs are aborted.
    /// Blocks (at most about 12 seconds): call it from a blocking thread.
    pub fn stop_background(&self) {
        stop_background(&self.state);
    }

    /// Ends the live streams and the server (connections get 3 seconds at most). Background work is not
    /// touched: stop it first with [`Embedded::stop_background`] unless it should go on.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let mut server = self.server;
        if tokio::time::timeout(Duration::from_secs(3), &mut server).await.is_err() {
            server.abort();
        }
    }
}

/// All routes behind the guard.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(views::sessions::index))
        .route("/sessions", post(views::sessions::create))
        .route("/browse", get(views::browse::folders))
        .route("/browse/branches", get(views::browse::branches))
        .route("/s/{id}", get(views::session::overview))
        .route("/s/{id}/metrics.json", get(views::session::metrics_json))
        .route("/s/{id}/budget", post(views::session::set_budget))
        .route("/s/{id}/remove", post(views::session::remove))
        .route("/s/{id}/stop", post(views::approvals::stop))
        .route("/s/{id}/approvals/{seq}/{action}", post(views::approvals::answer))
        .route("/approvals", get(views::approvals::inbox))
        .route("/s/{id}/interactive", get(views::interactive::page))
        .route("/s/{id}/message", post(views::interactive::message))
        .route("/s/{id}/feed", get(crate::live::feed))
        .route("/s/{id}/git", get(views::git::page))
        .route("/s/{id}/git/{action}", post(views::git::action))
        .route("/batches", get(views::batches::list).post(views::batches::start))
        .route("/batches/{id}", get(views::batches::show))
        .route("/batches/{id}/abort", post(views::batches::abort))
        .route("/batches/{id}/resume", post(views::batches::resume))
        .route("/batches/{id}/clean", post(views::batches::clean))
        .route("/batches/{id}/results", get(views::batches::results))
        .route("/bench", get(views::bench::list).post(views::bench::start))
        .route("/bench/compare", get(views::bench::compare))
        .route("/bench/swe", post(views::bench::start_swe))
        .route("/bench/{id}", get(views::bench::show))
        .route("/bench/{id}/abort", post(views::bench::abort))
        .route("/bench/{id}/resume", post(views::bench::resume))
        .route("/settings", get(views::settings::page))
        .route("/settings/config", post(views::settings::save))
        .route("/export", get(views::export::export))
        .route("/live", get(crate::live::live))
        .route("/notifications", get(crate::notify::stream))
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::guard))
        .with_state(state)
}

/// Ctrl-C and SIGTERM, registered when made (not when first awaited).
struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Signals, WebError> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let failed = |e: std::io::Error| WebError::Internal(format!("cannot listen for signals: {e}"));
            Ok(Signals {
                interrupt: signal(SignalKind::interrupt()).map_err(failed)?,
                terminate: signal(SignalKind::terminate()).map_err(failed)?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    async fn wait(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Stops the agents of runs this server started (their whole process groups) and aborts its batches,
/// then waits a little for their threads to record how they ended.
fn stop_background(state: &AppState) {
    type Work = Vec<(String, std::thread::JoinHandle<()>)>;
    let (runs, batches, benches): (Work, Work, Work) = {
        let mut bg = state.lock();
        (bg.running.drain().collect(), bg.batches.drain().collect(), bg.benches.drain().collect())
    };
    let unfinished = |w: Work| -> Work { w.into_iter().filter(|(_, h)| !h.is_finished()).collect() };
    let (runs, batches, benches) = (unfinished(runs), unfinished(batches), unfinished(benches));
    if runs.is_empty() && batches.is_empty() && benches.is_empty() {
        return;
    }
    eprintln!(
        "Stopping {} agent run(s), {} batch(es) and {} benchmark run(s) started by the dashboard…",
        runs.len(),
        batches.len(),
        benches.len()
    );
    if let Ok(mut engine) = Engine::open_at(state.inner.paths.clone()) {
        for (id, _) in &batches {
            let _ = engine.abort_batch(id);
        }
        for (id, _) in &benches {
            let _ = engine.abort_bench(id);
        }
        for (id, _) in &runs {
            if let Ok(s) = engine.session_by_id(&ampsm_core::SessionId::from_stored(id.as_str()))
                && let Some(pid) = s.agent_pid
            {
                ampsm_engine::process::stop_group(pid, Duration::from_secs(2));
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for (_, h) in runs.into_iter().chain(batches).chain(benches) {
        while !h.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if h.is_finished() {
            let _ = h.join();
        }
    }
}

/// Opens `url` with the desktop's opener; a missing opener is not an error.
fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
    let child = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    match child {
        Ok(mut c) => {
            std::thread::spawn(move || {
                let _ = c.wait();
            });
        }
        Err(_) => eprintln!("(could not start {opener}; open the URL above in your browser)"),
    }
}

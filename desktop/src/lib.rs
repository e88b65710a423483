//! The desktop app of amp-sessions: the dashboard's pages in a native window, with the engine in the same
//! process.
//!
//! The window shows the dashboard served by [`ampsm_web::Embedded`] on a free loopback port of this
//! process, with the dashboard's rules unchanged (loopback Host, a random token, Origin and CSRF checks):
//! the app hands the token to its own window, so nobody pastes it. (A custom URI scheme would need no port,
//! but WebKitGTK's scheme handlers ignore cookies and answer with one whole response, so the live pages'
//! Server-Sent Events could not pass; see `docs/desktop.md`.) Around it:
//!
//! - native notifications for the engine's notifications of this process ([`notifier`]); a click opens the
//!   session;
//! - a tray item and the window title with the counts of running and waiting sessions, an app menu with
//!   shortcuts ([`menus`]);
//! - the native folder picker for New session (the `pick_folder` command, the only one the page may call);
//! - one instance at a time (a second launch brings the first one's window up), the window's size and
//!   position and the last page remembered ([`prefs`]);
//! - closing the window while runs started from it go on asks once, in the window's page, whether they keep
//!   running (the app then stays in the tray) or stop (`assets/desktop.js`; the answer comes back as a
//!   navigation the app stops); stopping, Quit, Ctrl-C and SIGTERM stop them the way Ctrl-C stops
//!   `amp-sessions ui`: agents are stopped and their work so far is committed.

#![deny(unsafe_code)]

pub mod menus;
pub mod notifier;
pub mod prefs;

use ampsm_config::Paths;
use ampsm_web::Embedded;
use prefs::Prefs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use tauri::{AppHandle, Manager, RunEvent, Runtime, WebviewUrl, WebviewWindowBuilder, WindowEvent};
use tauri_plugin_dialog::DialogExt;

/// The main window's label.
pub const MAIN: &str = "main";

/// What every handler shares.
pub struct Ctx {
    pub paths: Paths,
    /// `http://127.0.0.1:PORT` of the embedded dashboard.
    base: String,
    embedded: Mutex<Option<Embedded>>,
    runtime: tokio::runtime::Handle,
    prefs: Mutex<Prefs>,
    prefs_file: PathBuf,
    /// Set once the app is on its way out (no second question, no second stop).
    quitting: AtomicBool,
}

impl Ctx {
    /// A copy of the remembered settings.
    pub fn prefs(&self) -> Prefs {
        self.prefs.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Changes the remembered settings and writes them (a failure to write is reported, not fatal).
    pub fn update_prefs(&self, f: impl FnOnce(&mut Prefs)) {
        let mut p = self.prefs.lock().unwrap_or_else(|p| p.into_inner());
        let before = p.clone();
        f(&mut p);
        if *p != before
            && let Err(e) = p.save(&self.prefs_file)
        {
            eprintln!("warning: {e}");
        }
    }

    fn embedded(&self) -> MutexGuard<'_, Option<Embedded>> {
        self.embedded.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The address that logs the window in and shows `path`.
    fn login_url(&self, path: &str) -> Option<String> {
        self.embedded().as_ref().map(|e| e.login_url(path))
    }
}

/// Starts the app; returns when it ends (or an error line when it cannot start).
pub fn run() -> Result<(), String> {
    let paths = Paths::from_env().map_err(|e| e.to_string())?;
    paths.ensure_home().map_err(|e| format!("cannot create {}: {e}", paths.home.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    // Tauri's own tasks run on the same runtime; it lives as long as the process.
    let runtime: &'static tokio::runtime::Runtime = Box::leak(Box::new(runtime));
    tauri::async_runtime::set(runtime.handle().clone());
    let embedded = runtime.block_on(Embedded::start(paths.clone())).map_err(|e| e.line())?;
    let prefs_file = prefs::file_in(&paths.home);
    let (prefs, warning) = Prefs::load(&prefs_file);
    if let Some(w) = warning {
        eprintln!("warning: {w}");
    }
    let ctx = Ctx {
        paths,
        base: embedded.base().to_string(),
        embedded: Mutex::new(Some(embedded)),
        runtime: runtime.handle().clone(),
        prefs: Mutex::new(prefs),
        prefs_file,
        quitting: AtomicBool::new(false),
    };

    let app = tauri::Builder::default()
        // First: a second launch only wakes this one up and exits.
        .plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| {
            eprintln!("another launch: showing this window");
            open_page(app, "");
        }))
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_window_state::Builder::default().build())
        .manage(ctx)
        .invoke_handler(tauri::generate_handler![pick_folder])
        .menu(|app| {
            let keep = app.state::<Ctx>().prefs().keep_runs_on_close.unwrap_or(false);
            menus::app_menu(app, keep)
        })
        .on_menu_event(menus::on_menu)
        .setup(|app| {
            let handle = app.handle().clone();
            main_window(&handle)?;
            menus::tray(&handle)?;
            let ctx = handle.state::<Ctx>();
            register(&ctx.paths);
            notifier::install(handle.clone(), ctx.paths.clone());
            watch_signals(handle);
            Ok(())
        })
        .on_window_event(|window, event| {
            if window.label() == MAIN
                && let WindowEvent::CloseRequested { api, .. } = event
            {
                api.prevent_close();
                close_requested(window.app_handle());
            }
        })
        .build(tauri::generate_context!())
        .map_err(|e| format!("cannot start the app: {e}"))?;
    app.run(|app, event| {
        if let RunEvent::Exit = event {
            let ctx = app.state::<Ctx>();
            let _ = std::fs::remove_file(ampsm_engine::notify::desktop_app_file(&ctx.paths.home));
            let embedded = ctx.embedded().take();
            if let Some(e) = embedded {
                ctx.runtime.block_on(e.shutdown());
            }
        }
    });
    Ok(())
}

/// Writes `desktop.pid` into the home: other processes of this home leave the notifications of status
/// changes to this app while it runs (see [`notifier`]).
fn register(paths: &Paths) {
    let file = ampsm_engine::notify::desktop_app_file(&paths.home);
    if let Err(e) = std::fs::write(&file, format!("{}\n", std::process::id())) {
        eprintln!("warning: cannot write {}: {e}; terminals will notify on their own", file.display());
    }
}

/// Creates the main window on the remembered page (or the sessions list).
fn main_window<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<()> {
    let ctx = app.state::<Ctx>();
    let last = ctx.prefs().last_path.unwrap_or_else(|| "/".to_string());
    let login = ctx.login_url(&last).unwrap_or_else(|| ctx.base.clone());
    let url = login
        .parse()
        .map_err(|_: url::ParseError| tauri::Error::InvalidWebviewUrl("the dashboard address"))?;
    let base = ctx.base.clone();
    let page_base = ctx.base.clone();
    let page_app = app.clone();
    let nav_app = app.clone();
    WebviewWindowBuilder::new(app, MAIN, WebviewUrl::External(url))
        .title("amp-sessions")
        .inner_size(1280.0, 860.0)
        .min_inner_size(640.0, 480.0)
        // Tells the page scripts they run in the app, and holds the close question.
        .initialization_script(include_str!("../assets/desktop.js"))
        .on_navigation(move |url| {
            if url.as_str().starts_with(&format!("{base}/__desktop/close?")) {
                let keep = url.query_pairs().any(|(k, v)| k == "keep" && v == "1");
                close_answered(&nav_app, keep);
                return false;
            }
            if url.as_str().starts_with(&format!("{base}/")) || url.as_str() == base {
                return true;
            }
            // Links out of the dashboard (a pull request's address) open in the browser.
            if matches!(url.scheme(), "http" | "https") {
                open_externally(url.as_str());
            }
            false
        })
        .on_page_load(move |_window, payload| {
            if payload.event() != tauri::webview::PageLoadEvent::Finished {
                return;
            }
            let url = payload.url();
            let Some(rest) = url.as_str().strip_prefix(&page_base) else { return };
            if rest.contains("token=") || !prefs::is_dashboard_path(rest) {
                return;
            }
            let path = rest.to_string();
            page_app.state::<Ctx>().update_prefs(|p| p.last_path = Some(path));
        })
        .build()?;
    Ok(())
}

/// Shows the main window, brought to the front, on `path` (`""` leaves the page as it is).
pub fn open_page<R: Runtime>(app: &AppHandle<R>, path: &str) {
    let Some(w) = app.get_webview_window(MAIN) else { return };
    let _ = w.show();
    let _ = w.unminimize();
    let _ = w.set_focus();
    if path.is_empty() {
        return;
    }
    let ctx = app.state::<Ctx>();
    if let Ok(url) = format!("{}{path}", ctx.base).parse() {
        let _ = w.navigate(url);
    }
}

/// Runs `js` in the main window's page.
pub fn run_script<R: Runtime>(app: &AppHandle<R>, js: &str) {
    if let Some(w) = app.get_webview_window(MAIN) {
        let _ = w.eval(js);
    }
}

/// The window is to close: with no run of this app going, the app quits; otherwise the remembered answer
/// (asked once) says whether the runs go on (the window hides, the tray stays) or stop first.
pub fn close_requested<R: Runtime>(app: &AppHandle<R>) {
    let ctx = app.state::<Ctx>();
    if ctx.quitting.load(Ordering::SeqCst) {
        return;
    }
    let unfinished = ctx.embedded().as_ref().map(|e| e.unfinished()).unwrap_or_default();
    if unfinished.is_empty() {
        quit(app);
        return;
    }
    match ctx.prefs().keep_runs_on_close {
        Some(true) => hide(app),
        Some(false) => quit(app),
        None => {
            let text = format!(
                "{} started from this window still going.\n\nKeep them running in the background (amp-sessions \
                 stays in the tray), or stop them now? Stopped agents have their work so far committed. This is \
                 asked once; the menu item \"Keep runs going when the window closes\" changes it.",
                describe(unfinished)
            );
            let shown = app.get_webview_window(MAIN).is_some_and(|w| {
                let _ = w.show();
                let _ = w.set_focus();
                let call = format!("window.__ampsmAskClose({})", serde_json::Value::from(text));
                w.eval(&call).is_ok()
            });
            // No page to ask in: the default answer.
            if !shown {
                quit(app);
            }
        }
    }
}

/// The answer to the close question (`keep`), kept for the next time and acted on.
fn close_answered<R: Runtime>(app: &AppHandle<R>, keep: bool) {
    app.state::<Ctx>().update_prefs(|p| p.keep_runs_on_close = Some(keep));
    if let Some(item) = app.menu().and_then(|m| m.get("keep-runs"))
        && let Some(check) = item.as_check_menuitem()
    {
        let _ = check.set_checked(keep);
    }
    if keep { hide(app) } else { quit(app) }
}

fn describe(u: ampsm_web::Unfinished) -> String {
    let mut parts = Vec::new();
    let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    if u.runs > 0 {
        parts.push(plural(u.runs, "agent run", "agent runs"));
    }
    if u.batches > 0 {
        parts.push(plural(u.batches, "batch", "batches"));
    }
    if u.benches > 0 {
        parts.push(plural(u.benches, "benchmark run", "benchmark runs"));
    }
    let verb = if u.runs + u.batches + u.benches == 1 { "is" } else { "are" };
    format!("{} {verb}", parts.join(", "))
}

fn hide<R: Runtime>(app: &AppHandle<R>) {
    eprintln!("window closed; runs go on (the app stays in the tray)");
    if let Some(w) = app.get_webview_window(MAIN) {
        let _ = w.hide();
    }
}

/// Quits: stops this app's runs the way Ctrl-C does (on a thread of its own: it may take seconds), then
/// ends the app.
pub fn quit<R: Runtime>(app: &AppHandle<R>) {
    let ctx = app.state::<Ctx>();
    if ctx.quitting.swap(true, Ordering::SeqCst) {
        return;
    }
    if let Some(w) = app.get_webview_window(MAIN) {
        let _ = w.hide();
    }
    let app = app.clone();
    std::thread::spawn(move || {
        {
            let ctx = app.state::<Ctx>();
            let guard = ctx.embedded();
            if let Some(e) = guard.as_ref() {
                let u = e.unfinished();
                if !u.is_empty() {
                    eprintln!("Stopping {} started from the window…", describe(u).trim_end_matches(" is"));
                    e.stop_background();
                }
            }
        }
        app.exit(0);
    });
}

/// Ctrl-C and SIGTERM quit the way the Quit item does.
fn watch_signals<R: Runtime>(app: AppHandle<R>) {
    let rt = app.state::<Ctx>().runtime.clone();
    rt.spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut int), Ok(mut term)) =
                (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
            else {
                return;
            };
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        eprintln!("signal: quitting");
        quit(&app);
    });
}

/// The native folder picker of New session: the chosen folder's path, or nothing when cancelled.
#[tauri::command]
async fn pick_folder<R: Runtime>(app: AppHandle<R>) -> Option<String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let mut dialog = app.dialog().file().set_title("Choose the repository");
    if let Some(home) = std::env::var_os("HOME") {
        dialog = dialog.set_directory(home);
    }
    dialog.pick_folder(move |path| {
        let _ = tx.send(path);
    });
    let path = rx.await.ok()??;
    path.into_path().ok().map(|p| p.display().to_string())
}

/// Opens `url` with the desktop's opener.
fn open_externally(url: &str) {
    let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
    match std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        Ok(mut child) => {
            std::thread::spawn(move || {
                let _ = child.wait();
            });
        }
        Err(e) => eprintln!("warning: cannot open {url} with {opener}: {e}"),
    }
}

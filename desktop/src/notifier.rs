//! Native notifications, through the desktop's notification service; clicking one brings the window up on
//! the page of that session, batch or run.
//!
//! - The engine's notifications of this process (a run started from the window ends, waits for input or
//!   for an approval, fails, stops at its budget, or a merge hits a conflict; a batch or benchmark run
//!   ends) come through the engine's desktop sink.
//! - Sessions run by other processes (`amp-sessions iterate` in a terminal) are told from the store's
//!   status changes, which this app follows; while it runs, its `desktop.pid` in the home tells those
//!   processes to leave such notifications to it, so none is told twice. A status change that the sink
//!   has just told (a run of this process) is not told again.

use ampsm_config::Paths;
use ampsm_engine::notify::{Notification, Subject, status_change_event};
use ampsm_engine::reports::watch::Watcher;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use tauri::{AppHandle, Runtime};

/// How often the status changes are read.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);
/// A status change is looked at once it is this old: the sink of the process that made it has told it by
/// then (the engine notifies right after it records the change).
const SETTLE_MS: i64 = 1500;
/// How long a note of the sink's stays good for the change it stands for.
const TOLD_FOR: Duration = Duration::from_secs(60);

/// Sessions whose status-change event the sink told, and when.
fn told_here() -> &'static Mutex<HashMap<String, Instant>> {
    static TOLD: OnceLock<Mutex<HashMap<String, Instant>>> = OnceLock::new();
    TOLD.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Installs the native notifier for this process's engine notifications (`notifications.desktop`) and
/// follows the status changes of other processes' sessions.
pub fn install<R: Runtime>(app: AppHandle<R>, paths: Paths) {
    let sink_app = app.clone();
    let sink = move |n: &Notification| {
        if n.subject == Subject::Session && n.event.told_by_status() {
            told_here()
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(n.session_id.clone(), Instant::now());
        }
        show(&sink_app, n)
    };
    if !ampsm_engine::notify::set_desktop_sink(Box::new(sink)) {
        eprintln!("warning: desktop notifications were set up twice; the first notifier stays");
    }
    std::thread::spawn(move || follow(&app, &paths));
}

/// Tells the status changes of sessions run elsewhere (see the module docs). Honours
/// `notifications.desktop` as the engine does.
fn follow<R: Runtime>(app: &AppHandle<R>, paths: &Paths) {
    let desktop_on = || {
        ampsm_config::config::Config::load(&paths.config)
            .map(|l| l.config.notifications.desktop)
            .unwrap_or(true)
    };
    // Nothing from before the app started is told.
    let mut after: Option<i64> = Watcher::open(paths).and_then(|w| w.last_status_change_id()).ok();
    let mut open: Option<Watcher> = None;
    loop {
        std::thread::sleep(FOLLOW_EVERY);
        if open.is_none() {
            open = Watcher::open(paths).ok();
        }
        let Some(watcher) = open.as_ref() else { continue };
        let Some(start) = after else {
            after = watcher.last_status_change_id().ok();
            continue;
        };
        let Ok(changes) = watcher.status_changes_after(start, 200) else {
            // Opened again next time (the database may have been replaced).
            open = None;
            continue;
        };
        let settled = now_ms() - SETTLE_MS;
        for c in changes.into_iter().take_while(|c| c.at <= settled) {
            after = Some(c.id);
            let Some(event) = status_change_event(c.from.as_deref(), &c.to, c.reason.as_deref()) else {
                continue;
            };
            let id = c.session_id.to_string();
            let mut told = told_here().lock().unwrap_or_else(|p| p.into_inner());
            told.retain(|_, at| at.elapsed() < TOLD_FOR);
            if told.remove(&id).is_some() || !desktop_on() {
                continue;
            }
            drop(told);
            let n = Notification {
                event,
                subject: Subject::Session,
                session_id: id,
                session_name: c.session_name.clone(),
                status: c.to.clone(),
                message: c.reason.clone().unwrap_or_else(|| c.to.clone()),
            };
            show(app, &n);
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Shows `n`; a click opens its page in the main window. False when the notification service refused it
/// (the engine then tries `notifications.command`).
fn show<R: Runtime>(app: &AppHandle<R>, n: &Notification) -> bool {
    let (title, body) = n.desktop_text();
    let mut note = notify_rust::Notification::new();
    note.appname("amp-sessions").summary(&title).body(&body).icon("amp-sessions-desktop");
    #[cfg(all(unix, not(target_os = "macos")))]
    note.action("default", "Open").action("open", "Open").hint(notify_rust::Hint::Category(category(n)));
    match note.show() {
        Ok(handle) => {
            eprintln!("notification: {title}: {body}");
            follow_click(app.clone(), n.link(), handle);
            true
        }
        Err(e) => {
            eprintln!("warning: the desktop notification could not be shown: {e}");
            false
        }
    }
}

/// The freedesktop category of a notification (lets the desktop group and style them).
#[cfg(all(unix, not(target_os = "macos")))]
fn category(n: &Notification) -> String {
    use ampsm_engine::notify::NotifyEvent;
    match n.event {
        NotifyEvent::Completed => "transfer.complete",
        NotifyEvent::Failed | NotifyEvent::Conflict | NotifyEvent::Budget => "transfer.error",
        NotifyEvent::AwaitingInput => "im.received",
    }
    .to_string()
}

/// Waits on a thread of its own for the user's click (or the notification's close) and then opens `link`.
#[cfg(all(unix, not(target_os = "macos")))]
fn follow_click<R: Runtime>(app: AppHandle<R>, link: String, handle: notify_rust::NotificationHandle) {
    std::thread::spawn(move || {
        handle.wait_for_action(|action| {
            if action == "default" || action == "open" {
                crate::open_page(&app, &link);
            }
        });
    });
}

/// macOS and Windows deliver the click to the app itself, which shows its window.
#[cfg(not(all(unix, not(target_os = "macos"))))]
fn follow_click<R: Runtime, H>(_app: AppHandle<R>, _link: String, _handle: H) {}

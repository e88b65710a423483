//! Native notifications: the engine's notifications of this process (a run started from the window ends,
//! waits for input or for an approval, fails, stops at its budget, or a merge hits a conflict; a batch or
//! benchmark run ends) go to the desktop's notification service instead of `notify-send`, and clicking one
//! brings the window up on the page of that session, batch or run.

use ampsm_engine::notify::Notification;
use tauri::{AppHandle, Runtime};

/// Installs the native notifier for this process's engine notifications (`notifications.desktop`).
pub fn install<R: Runtime>(app: AppHandle<R>) {
    let sink = move |n: &Notification| show(&app, n);
    if !ampsm_engine::notify::set_desktop_sink(Box::new(sink)) {
        eprintln!("warning: desktop notifications were set up twice; the first notifier stays");
    }
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

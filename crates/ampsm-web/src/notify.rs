//! Browser notifications: `GET /notifications` streams a `session` event whenever a session's run
//! finishes, fails, or stops to wait for input, and whenever a tool call starts waiting for approval. It
//! follows the recorded status changes (not snapshots of the statuses, so a run that starts and ends
//! between two looks is still told). The page script turns each into a desktop notification, only after
//! the user turned them on in that browser; nothing that happened before the stream opened is sent.

use crate::error::WebError;
use crate::live::{EventStream, sse_from};
use crate::state::AppState;
use ampsm_core::SessionStatus;
use ampsm_engine::notify::{NotifyEvent, status_change_event};
use ampsm_engine::records::ActivityChange;
use ampsm_engine::reports::watch::Watcher;
use axum::extract::State;
use axum::response::sse::Event;
use std::collections::HashSet;
use std::time::Duration;
use tokio::sync::mpsc;

/// How often the store is checked.
const CHECK_EVERY: Duration = Duration::from_millis(1000);
/// Status changes read per check at most (the rest wait for the next one).
const CHANGES_PER_CHECK: i64 = 200;

/// The notification text for a status change, if it is worth one (the engine's events of status
/// changes, and a session marked done).
fn change_text(c: &ActivityChange) -> Option<&'static str> {
    if c.to == SessionStatus::Done.as_str() && c.from.as_deref() != Some(c.to.as_str()) {
        return Some("The session is done.");
    }
    match status_change_event(c.from.as_deref(), &c.to, c.reason.as_deref())? {
        NotifyEvent::Completed => Some("The agent finished its run."),
        NotifyEvent::Failed => Some("The run failed."),
        NotifyEvent::AwaitingInput => Some("The agent is waiting for your input."),
        NotifyEvent::Budget | NotifyEvent::Conflict => None,
    }
}

/// The event of a status change worth telling.
fn change_event(c: &ActivityChange) -> Option<serde_json::Value> {
    let text = change_text(c)?;
    Some(
        serde_json::json!({ "id": c.session_id.as_str(), "name": c.session_name, "status": c.to, "text": text }),
    )
}

/// Pending approvals: (session id, number) → the session's name.
type Pending = HashSet<(String, i64)>;

fn pending(watcher: &Watcher) -> Result<Pending, WebError> {
    Ok(watcher.pending_approvals()?.into_iter().map(|a| (a.session_id, a.seq)).collect())
}

/// `GET /notifications`.
pub async fn stream(State(state): State<AppState>) -> Result<EventStream, WebError> {
    let (tx, rx) = mpsc::channel::<Event>(64);
    let st = state.clone();
    std::thread::spawn(move || {
        let send = |value: serde_json::Value| {
            tx.blocking_send(Event::default().event("session").data(value.to_string())).is_ok()
        };
        let watch = || -> Result<(), WebError> {
            let watcher = Watcher::open(&st.inner.paths)?;
            let mut after = watcher.last_status_change_id()?;
            let mut waiting = pending(&watcher)?;
            while !tx.is_closed() && !*st.inner.shutdown.borrow() {
                std::thread::sleep(CHECK_EVERY);
                for c in watcher.status_changes_after(after, CHANGES_PER_CHECK)? {
                    after = c.id;
                    if let Some(event) = change_event(&c)
                        && !send(event)
                    {
                        return Ok(());
                    }
                }
                let now = pending(&watcher)?;
                for (id, seq) in now.difference(&waiting) {
                    let name = watcher.session_name(id)?.unwrap_or_else(|| id.clone());
                    let text = format!("Tool call #{seq} is waiting for your approval.");
                    if !send(
                        serde_json::json!({ "id": id, "name": name, "status": "approval", "text": text }),
                    ) {
                        return Ok(());
                    }
                }
                waiting = now;
            }
            Ok(())
        };
        if let Err(e) = watch() {
            let _ = tx.blocking_send(Event::default().event("error").data(e.line()));
        }
    });
    Ok(sse_from(rx, &state))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(from: Option<&str>, to: &str) -> ActivityChange {
        ActivityChange {
            id: 1,
            session_id: ampsm_core::SessionId::from_stored("s1"),
            session_name: "notes".into(),
            from: from.map(str::to_string),
            to: to.into(),
            reason: None,
            at: 0,
        }
    }

    #[test]
    fn finished_failed_and_waiting_runs_are_told() {
        assert_eq!(change_text(&change(Some("running"), "idle")), Some("The agent finished its run."));
        assert_eq!(change_text(&change(Some("running"), "error")), Some("The run failed."));
        assert_eq!(
            change_text(&change(Some("running"), "awaiting-input")),
            Some("The agent is waiting for your input.")
        );
        assert_eq!(change_text(&change(Some("idle"), "done")), Some("The session is done."));
        let event = change_event(&change(Some("running"), "idle")).unwrap();
        assert_eq!(event["id"], "s1");
        assert_eq!(event["name"], "notes");
    }

    #[test]
    fn runs_the_user_stopped_are_not_news() {
        let mut c = change(Some("running"), "idle");
        c.reason = Some(format!("stopped by `amp-sessions stop`: {}", ampsm_engine::notify::STOPPED_NOTE));
        assert_eq!(change_text(&c), None);
        c.reason = Some("tests passed".into());
        assert_eq!(change_text(&c), Some("The agent finished its run."));
    }

    #[test]
    fn starts_creations_and_notes_are_not_news() {
        assert_eq!(change_text(&change(Some("idle"), "running")), None);
        assert_eq!(change_text(&change(None, "idle")), None);
        assert_eq!(change_text(&change(Some("idle"), "idle")), None);
        assert_eq!(change_text(&change(Some("error"), "idle")), None);
    }
}

//! Browser notifications: `GET /notifications` streams a `session` event whenever a session finishes,
//! fails, starts waiting for input, or gets a tool call waiting for approval. The page script turns each
//! into a desktop notification (only after the user turned them on in that browser); nothing is sent for
//! what was already so when the stream opened.

use crate::error::WebError;
use crate::live::{EventStream, sse_from};
use crate::state::AppState;
use ampsm_core::SessionStatus;
use ampsm_engine::{Engine, SessionQuery};
use axum::extract::State;
use axum::response::sse::Event;
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use tokio::sync::mpsc;

/// How often sessions are checked.
const CHECK_EVERY: Duration = Duration::from_millis(1500);

/// What one check saw: each session's name and status, and the pending approvals (session id, number).
struct Seen {
    sessions: HashMap<String, (String, SessionStatus)>,
    approvals: HashSet<(String, i64)>,
}

fn look(engine: &Engine) -> Result<Seen, WebError> {
    let sessions = engine
        .sessions(&SessionQuery::default())?
        .into_iter()
        .map(|s| (s.id.to_string(), (s.name, s.status)))
        .collect();
    let approvals = engine
        .pending_approvals(None)?
        .into_iter()
        .map(|v| (v.approval.session_id.clone(), v.approval.seq))
        .collect();
    Ok(Seen { sessions, approvals })
}

/// The notification text for a status a session moved to, if it is worth one.
fn status_text(before: Option<SessionStatus>, now: SessionStatus) -> Option<&'static str> {
    if before == Some(now) {
        return None;
    }
    match now {
        SessionStatus::Idle if before == Some(SessionStatus::Running) => Some("The agent finished its run."),
        SessionStatus::Done => Some("The session is done."),
        SessionStatus::Error => Some("The run failed."),
        SessionStatus::AwaitingInput => Some("The agent is waiting for your input."),
        _ => None,
    }
}

/// The events between two checks.
fn changes(before: &Seen, now: &Seen) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for (id, (name, status)) in &now.sessions {
        let was = before.sessions.get(id).map(|(_, s)| *s);
        if let Some(text) = status_text(was, *status) {
            out.push(serde_json::json!({ "id": id, "name": name, "status": status.as_str(), "text": text }));
        }
    }
    for (id, seq) in now.approvals.difference(&before.approvals) {
        let name = now.sessions.get(id).map(|(n, _)| n.as_str()).unwrap_or(id.as_str());
        let text = format!("Tool call #{seq} is waiting for your approval.");
        out.push(serde_json::json!({ "id": id, "name": name, "status": "approval", "text": text }));
    }
    out
}

/// `GET /notifications`.
pub async fn stream(State(state): State<AppState>) -> Result<EventStream, WebError> {
    let (tx, rx) = mpsc::channel::<Event>(64);
    let st = state.clone();
    std::thread::spawn(move || {
        let watch = || -> Result<(), WebError> {
            let engine = Engine::open_at(st.inner.paths.clone())?;
            let mut before = look(&engine)?;
            while !tx.is_closed() && !*st.inner.shutdown.borrow() {
                std::thread::sleep(CHECK_EVERY);
                let now = look(&engine)?;
                for change in changes(&before, &now) {
                    let event = Event::default().event("session").data(change.to_string());
                    if tx.blocking_send(event).is_err() {
                        return Ok(());
                    }
                }
                before = now;
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

    fn seen(list: &[(&str, SessionStatus)], approvals: &[(&str, i64)]) -> Seen {
        Seen {
            sessions: list.iter().map(|(id, s)| (id.to_string(), (format!("name-{id}"), *s))).collect(),
            approvals: approvals.iter().map(|(id, n)| (id.to_string(), *n)).collect(),
        }
    }

    #[test]
    fn a_finished_failed_or_waiting_session_is_told_once() {
        let a = seen(
            &[("a", SessionStatus::Running), ("b", SessionStatus::Running), ("c", SessionStatus::Idle)],
            &[],
        );
        let b = seen(
            &[("a", SessionStatus::Idle), ("b", SessionStatus::Error), ("c", SessionStatus::Idle)],
            &[("c", 1)],
        );
        let mut got: Vec<String> =
            changes(&a, &b).iter().map(|v| format!("{} {}", v["id"], v["status"])).collect();
        got.sort();
        assert_eq!(got, ["\"a\" \"idle\"", "\"b\" \"error\"", "\"c\" \"approval\""]);
        assert!(changes(&b, &b).is_empty(), "nothing changed, nothing told");
    }

    #[test]
    fn a_new_idle_session_is_not_news() {
        let a = seen(&[], &[]);
        let b = seen(&[("n", SessionStatus::Idle)], &[]);
        assert!(changes(&a, &b).is_empty());
    }
}

//! Server-Sent Events. `/live?topic=…` tells a page that what it shows changed (the page then fetches
//! itself again and swaps its `data-live` regions); `/s/{id}/feed` streams a session's agent events as
//! they land in the database, through the engine's [`SessionFeed`] (the follower behind `logs --follow`).
//! Each stream is one thread with its own read connection; it ends when the browser goes away or the
//! server shuts down.

use crate::error::WebError;
use crate::state::AppState;
use ampsm_core::AgentEvent;
use ampsm_engine::reports::watch::{WatchTopic, Watcher};
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::mpsc;

/// How often a watched topic is checked.
const WATCH_EVERY: Duration = Duration::from_millis(700);
/// Events buffered per stream before the reader waits (backpressure).
const STREAM_BUFFER: usize = 256;

/// `?topic=` of `/live`.
#[derive(Debug, Deserialize)]
pub struct Topic {
    pub topic: String,
}

type BoxedEvents = std::pin::Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>>;
pub(crate) type EventStream = Sse<axum::response::sse::KeepAliveStream<BoxedEvents>>;

/// Turns a channel into an SSE response that also ends when the server shuts down.
pub(crate) fn sse_from(rx: mpsc::Receiver<Event>, state: &AppState) -> EventStream {
    let shutdown = state.inner.shutdown.clone();
    let stream = futures_util::stream::unfold((rx, shutdown), |(mut rx, mut shutdown)| async move {
        if *shutdown.borrow() {
            return None;
        }
        tokio::select! {
            ev = rx.recv() => ev.map(|e| (Ok(e), (rx, shutdown))),
            _ = shutdown.changed() => None,
        }
    });
    Sse::new(Box::pin(stream) as BoxedEvents).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// `GET /live?topic=sessions|approvals|session:<id>|batch:<id>|bench:<id>`: a `change` event whenever
/// what the topic covers changes. Every topic also covers the pending approvals of all sessions (the
/// navigation's badge is on every page).
pub async fn live(State(state): State<AppState>, Query(t): Query<Topic>) -> Result<EventStream, WebError> {
    let topic: WatchTopic = t.topic.parse().map_err(WebError::BadRequest)?;
    let (tx, rx) = mpsc::channel::<Event>(STREAM_BUFFER);
    let st = state.clone();
    std::thread::spawn(move || {
        let watcher = match Watcher::open(&st.inner.paths) {
            Ok(w) => w,
            Err(e) => {
                let _ = tx.blocking_send(Event::default().event("error").data(e.to_string()));
                return;
            }
        };
        let failure = |id: &str| st.failure(id);
        let mut last: Option<String> = None;
        while !tx.is_closed() && !*st.inner.shutdown.borrow() {
            let now = watcher.mark(&topic, &failure).unwrap_or_else(|e| format!("error: {e}"));
            if last.as_deref() != Some(now.as_str()) {
                if last.is_some() && tx.blocking_send(Event::default().event("change").data("1")).is_err() {
                    return;
                }
                last = Some(now);
            }
            std::thread::sleep(WATCH_EVERY);
        }
    });
    Ok(sse_from(rx, &state))
}

/// `?after=` of the feed: the last line id the page already shows.
#[derive(Debug, Default, Deserialize)]
pub struct After {
    pub after: Option<i64>,
}

/// `GET /s/{id}/feed[?after=N]`: every stored line of the session after line `N` (or the browser's
/// `Last-Event-ID` when it reconnects), then new ones as they land, as `line` events whose data is a JSON
/// object `{id, ts, kind, items: [{kind, text}]}`.
pub async fn feed(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(a): Query<After>,
    headers: axum::http::HeaderMap,
) -> Result<EventStream, WebError> {
    let resumed =
        headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<i64>().ok());
    let after = a.after.unwrap_or(0).max(resumed.unwrap_or(0));
    let feed = state
        .engine(move |e| {
            let session = e.session(&id, true)?;
            Ok(e.follow_events(&session.id, true))
        })
        .await?;
    let (tx, rx) = mpsc::channel::<Event>(STREAM_BUFFER);
    let st = state.clone();
    std::thread::spawn(move || {
        let mut feed = match feed {
            Ok(f) => f,
            Err(e) => {
                let _ = tx.blocking_send(Event::default().event("error").data(e.to_string()));
                return;
            }
        };
        while !tx.is_closed() && !*st.inner.shutdown.borrow() {
            let rows = match feed.next(Duration::from_millis(500)) {
                Ok(r) => r,
                Err(e) => {
                    let _ = tx.blocking_send(Event::default().event("error").data(e.to_string()));
                    return;
                }
            };
            for row in rows.into_iter().filter(|r| r.id > after) {
                let items: Vec<serde_json::Value> = row
                    .events
                    .iter()
                    .filter(|ev| shown(ev))
                    .map(|ev| serde_json::json!({ "kind": event_kind(ev), "text": ev.summary() }))
                    .collect();
                if items.is_empty() {
                    continue;
                }
                let data = serde_json::json!({
                    "id": row.id,
                    "ts": ampsm_core::time::format_ms(row.ts),
                    "kind": row.kind,
                    "items": items,
                });
                let ev = Event::default().event("line").id(row.id.to_string()).data(data.to_string());
                if tx.blocking_send(ev).is_err() {
                    return;
                }
            }
        }
    });
    Ok(sse_from(rx, &state))
}

/// Whether an event is worth a line in the live view (bookkeeping events are not).
pub fn shown(ev: &AgentEvent) -> bool {
    match ev {
        AgentEvent::Usage { .. } | AgentEvent::TurnEnd { .. } | AgentEvent::UserText { replay: true, .. } => {
            false
        }
        AgentEvent::Output { text, .. } => !text.trim().is_empty(),
        _ => true,
    }
}

/// A short class name for an event's kind (used for colors).
pub fn event_kind(ev: &AgentEvent) -> &'static str {
    match ev {
        AgentEvent::ToolUse { .. } => "tool",
        AgentEvent::ToolResult { .. } => "result",
        AgentEvent::AssistantText { .. } => "assistant",
        AgentEvent::UserText { .. } => "user",
        AgentEvent::Error { .. } | AgentEvent::Retry { .. } => "error",
        _ => "other",
    }
}

//! Server-Sent Events. `/live?topic=…` tells a page that what it shows changed (the page then fetches
//! itself again and swaps its `data-live` regions); `/s/{id}/feed` streams a session's agent events as
//! they land in the database, through the engine's [`SessionFeed`] (the follower behind `logs --follow`).
//! Each stream is one thread with its own read connection; it ends when the browser goes away or the
//! server shuts down.

use crate::error::WebError;
use crate::state::AppState;
use crate::views::interactive;
use ampsm_core::AgentEvent;
use ampsm_engine::records::StoredEvent;
use ampsm_engine::reports::conversation::{Entry, Item, entries_of};
use ampsm_engine::reports::watch::{WatchTopic, Watcher, digest};
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
    /// The digest of the mark the page was rendered with (its `#live-mark`, see
    /// [`ampsm_engine::reports::watch::digest`]): a change made between the render and this stream's
    /// first look is announced at once instead of being missed.
    #[serde(default)]
    pub mark: Option<String>,
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
                let missed = last.is_none() && t.mark.as_deref().is_some_and(|m| m != digest(&now));
                if (last.is_some() || missed)
                    && tx.blocking_send(Event::default().event("change").data("1")).is_err()
                {
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
    /// `batch=1`: the Conversation view's form, `cards` events of many lines each (see [`feed`]).
    pub batch: Option<u8>,
}

/// `GET /s/{id}/feed[?after=N]`: every stored line of the session after line `N` (or the browser's
/// `Last-Event-ID` when it reconnects), then new ones as they land, as `line` events whose data is a JSON
/// object `{id, ts, kind, items: [{kind, text}], cards: [...]}`. `items` are one-line summaries;
/// `cards` are the Conversation view's entries rendered by the same functions as its page
/// (`{kind, line, iteration, call, html}`; a result or a denial also carries the `slot` and `badge` of
/// its call's card, a continued message the id of the element it `replace`s). With `batch=1` the cards
/// of many lines come together instead, as `cards` events `{last, cards}`. Lines before `N` are never
/// read.
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
            Ok(e.follow_events_after(&session.id, after))
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
        let mut out =
            Out { tx, sent: after, message: Message::default(), batch: a.batch.is_some(), cards: Vec::new() };
        while !out.tx.is_closed() && !*st.inner.shutdown.borrow() {
            let rows = match feed.next(Duration::from_millis(500)) {
                Ok(r) => r,
                Err(e) => {
                    let _ = out.tx.blocking_send(Event::default().event("error").data(e.to_string()));
                    return;
                }
            };
            for row in rows {
                if !out.line(&row) {
                    return;
                }
            }
            if !out.flush() {
                return;
            }
        }
    });
    Ok(sse_from(rx, &state))
}

/// The agent's message being written in parts (text deltas): its element and its text so far.
#[derive(Default)]
struct Message {
    element: Option<String>,
    iteration: Option<String>,
    text: String,
}

/// Cards sent in one `cards` event at most.
const CARDS_PER_EVENT: usize = 250;

/// Where a feed's lines go: one `line` event per line, or (`batch`) their cards gathered into `cards`
/// events of up to [`CARDS_PER_EVENT`], so that a burst of lines costs the page a few messages, not one
/// per line.
struct Out {
    tx: mpsc::Sender<Event>,
    /// The last line sent.
    sent: i64,
    message: Message,
    batch: bool,
    cards: Vec<serde_json::Value>,
}

impl Out {
    /// Sends (or gathers) one stored line unless it was sent already; false when the browser went away.
    fn line(&mut self, row: &StoredEvent) -> bool {
        if row.id <= self.sent {
            return true;
        }
        self.sent = row.id;
        let delta = matches!(row.events.first(), Some(AgentEvent::AssistantText { delta: true, .. }));
        let cards: Vec<serde_json::Value> =
            entries_of(row).into_iter().filter_map(|e| card_json(e, delta, &mut self.message)).collect();
        if self.batch {
            self.cards.extend(cards);
            return self.cards.len() < CARDS_PER_EVENT || self.flush();
        }
        let items: Vec<serde_json::Value> = row
            .events
            .iter()
            .filter(|ev| shown(ev))
            .map(|ev| serde_json::json!({ "kind": event_kind(ev), "text": ev.summary() }))
            .collect();
        if items.is_empty() && cards.is_empty() {
            return true;
        }
        let data = serde_json::json!({
            "id": row.id,
            "ts": ampsm_core::time::format_ms(row.ts),
            "kind": row.kind,
            "items": items,
            "cards": cards,
        });
        let ev = Event::default().event("line").id(row.id.to_string()).data(data.to_string());
        self.tx.blocking_send(ev).is_ok()
    }

    /// Sends the gathered cards, if any; false when the browser went away.
    fn flush(&mut self) -> bool {
        if self.cards.is_empty() {
            return true;
        }
        let cards = std::mem::take(&mut self.cards);
        let data = serde_json::json!({ "last": self.sent, "cards": cards });
        let ev = Event::default().event("cards").id(self.sent.to_string()).data(data.to_string());
        self.tx.blocking_send(ev).is_ok()
    }
}

/// One entry as the Conversation view's script applies it.
fn card_json(e: Entry, delta: bool, message: &mut Message) -> Option<serde_json::Value> {
    let base = |kind: &str, e: &Entry, call: Option<&str>, html: String| serde_json::json!({ "kind": kind, "line": e.line_id, "iteration": e.iteration_id, "call": call, "html": html });
    Some(match &e.item {
        Item::Usage { .. } => return None,
        Item::Assistant { text } => {
            let continues = delta && message.element.is_some() && message.iteration == e.iteration_id;
            if !continues {
                message.element = Some(format!("m-{}", e.line_id));
                message.iteration = e.iteration_id.clone();
                message.text.clear();
            }
            message.text.push_str(text);
            let element = message.element.clone().unwrap_or_default();
            let first_line = element.trim_start_matches("m-").parse().unwrap_or(e.line_id);
            let whole = Entry {
                line_id: first_line,
                ts: e.ts,
                iteration_id: e.iteration_id.clone(),
                item: Item::Assistant { text: message.text.clone() },
            };
            let mut v = base("assistant", &whole, None, interactive::entry(&whole).into_string());
            if continues {
                v["replace"] = serde_json::Value::String(element);
            }
            v
        }
        Item::Tool(card) => {
            message.element = None;
            base("tool", &e, Some(&card.call_id), interactive::entry(&e).into_string())
        }
        Item::ToolResult { call_id, result } => {
            let mut v = base("result", &e, Some(call_id), interactive::entry(&e).into_string());
            v["slot"] = interactive::result_body(result).into_string().into();
            v["badge"] = interactive::outcome_badge(Some(result), false).into_string().into();
            v
        }
        Item::Denied { call_id, .. } => {
            let mut v = base("denied", &e, call_id.as_deref(), interactive::entry(&e).into_string());
            v["badge"] = interactive::outcome_badge(None, true).into_string().into();
            v
        }
        _ => {
            message.element = None;
            base("entry", &e, None, interactive::entry(&e).into_string())
        }
    })
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

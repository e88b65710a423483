//! A session's conversation, a page at a time: the read model of the dashboard's Conversation view.
//! A page is at most a bounded number of stored lines (the newest ones, or those before a line id for
//! "load earlier"), turned into entries (messages, tool calls paired with their results, errors, the
//! run's result), with only the iterations, tool calls and token usage of those lines. Nothing here reads
//! all the events or all the tool calls of a session, so a page of a session of a million lines costs what
//! a page of a short one does. [`entries_of`] turns one line into entries the same way, for live streams.

use crate::records::{Iteration, StoredEvent, ToolCall};
use crate::{Engine, EngineError};
use ampsm_core::{AgentEvent, SessionId, TokenUsage};
use std::collections::{HashMap, HashSet};

/// Stored lines on one page of the conversation.
pub const PAGE_LINES: i64 = 300;

/// One page of a session's conversation, oldest entry first.
#[derive(Debug, Clone, Default)]
pub struct ConversationPage {
    pub entries: Vec<Entry>,
    /// The iterations the entries belong to (and the session's latest one), oldest first.
    pub iterations: Vec<IterationSummary>,
    /// The id of the first line shown when older lines exist (the `before` of the previous page).
    pub earlier: Option<i64>,
    /// The id of the last line of the page (0 when it has none): where a live stream goes on.
    pub last_id: i64,
    /// How many tool calls the whole session has recorded.
    pub tool_call_count: i64,
}

/// An iteration with what it cost.
#[derive(Debug, Clone)]
pub struct IterationSummary {
    pub iteration: Iteration,
    /// Tokens: the recorded usage once the run ended; while it runs, what its usage lines on the page add
    /// up to (a live stream adds the rest).
    pub tokens: TokenUsage,
    /// Cost in USD when known.
    pub cost_usd: Option<f64>,
}

/// One thing said or done in the conversation.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The id of the stored line it comes from (the first one, for a message in several parts).
    pub line_id: i64,
    pub ts: i64,
    pub iteration_id: Option<String>,
    pub item: Item,
}

/// What an entry is.
#[derive(Debug, Clone)]
pub enum Item {
    /// A user message (the prompt as the agent received it).
    User { text: String },
    /// The agent's text (Markdown).
    Assistant { text: String },
    /// The agent's reasoning, when it shows it.
    Thinking { text: String },
    /// A tool call, with its result once it has one.
    Tool(ToolCard),
    /// The result of a tool call whose call is not on this page (or a live result for a card shown
    /// before).
    ToolResult { call_id: String, result: ToolOutcome },
    /// A tool call that was not allowed; `call_id` names the call when the agent made one.
    Denied { call_id: Option<String>, tool: String, detail: Option<String> },
    /// The agent asks whether it may run a tool call.
    Permission { tool: String, input: serde_json::Value },
    /// An error the agent reported, or a retry.
    Error { message: String },
    /// An informational line.
    Notice { text: String },
    /// A plain output line.
    Output { text: String },
    /// A file the agent says it changed.
    FileChange { path: String, change: String },
    /// The run's final line.
    RunResult { ok: bool, text: Option<String>, error: Option<String>, duration_ms: Option<u64> },
    /// Token usage of one model call (shown as a live figure, not as an entry).
    Usage { model: Option<String>, usage: TokenUsage, message_id: Option<String> },
}

/// A tool call card.
#[derive(Debug, Clone)]
pub struct ToolCard {
    pub call_id: String,
    pub name: String,
    pub input: serde_json::Value,
    pub result: Option<ToolOutcome>,
    pub denied: bool,
}

/// How a tool call ended.
#[derive(Debug, Clone)]
pub struct ToolOutcome {
    pub ok: bool,
    pub exit_code: Option<i64>,
    pub output: String,
    pub duration_ms: Option<i64>,
}

/// The entries of one stored line, in order. Bookkeeping events (turn ends, replayed user turns, blank
/// output) give none; usage gives an [`Item::Usage`] that views count rather than show.
pub fn entries_of(line: &StoredEvent) -> Vec<Entry> {
    let entry = |item| Entry { line_id: line.id, ts: line.ts, iteration_id: line.iteration_id.clone(), item };
    let mut out = Vec::new();
    for ev in &line.events {
        let item = match ev {
            AgentEvent::UserText { replay: true, .. }
            | AgentEvent::TurnEnd { .. }
            | AgentEvent::Init { .. } => {
                continue;
            }
            AgentEvent::Output { text, .. } if text.trim().is_empty() => continue,
            AgentEvent::UserText { text, .. } => Item::User { text: text.clone() },
            AgentEvent::AssistantText { text, .. } => Item::Assistant { text: text.clone() },
            AgentEvent::Thinking { text } => Item::Thinking { text: text.clone() },
            AgentEvent::ToolUse { call_id, name, input } => Item::Tool(ToolCard {
                call_id: call_id.clone(),
                name: name.clone(),
                input: input.clone(),
                result: None,
                denied: false,
            }),
            AgentEvent::ToolResult { call_id, ok, output, exit_code, duration_ms } => Item::ToolResult {
                call_id: call_id.clone(),
                result: ToolOutcome {
                    ok: *ok,
                    exit_code: *exit_code,
                    output: output.clone(),
                    duration_ms: duration_ms.map(|d| d as i64),
                },
            },
            AgentEvent::Usage { model, usage, message_id } => {
                Item::Usage { model: model.clone(), usage: *usage, message_id: message_id.clone() }
            }
            AgentEvent::FileChange { path, change } => {
                Item::FileChange { path: path.clone(), change: change.clone() }
            }
            AgentEvent::Result { ok, text, error, duration_ms, .. } => Item::RunResult {
                ok: *ok,
                text: text.clone(),
                error: error.clone(),
                duration_ms: *duration_ms,
            },
            AgentEvent::Retry { attempt, message } => Item::Error {
                message: match attempt {
                    Some(a) => format!("retry {a}: {message}"),
                    None => format!("retry: {message}"),
                },
            },
            AgentEvent::Error { message, .. } => Item::Error { message: message.clone() },
            AgentEvent::Notice { subtype, message } => Item::Notice { text: format!("{subtype}: {message}") },
            AgentEvent::PermissionRequest { tool, input, .. } => {
                Item::Permission { tool: tool.clone(), input: input.clone() }
            }
            AgentEvent::PermissionDenied { call_id, tool, detail, reason } => Item::Denied {
                call_id: call_id.clone(),
                tool: tool.clone(),
                detail: detail.clone().or_else(|| reason.clone()),
            },
            AgentEvent::Output { text, .. } => Item::Output { text: text.clone() },
        };
        out.push(entry(item));
    }
    out
}

/// Usage lines of an iteration per model, and the provider message ids already counted.
type UsageSoFar = (HashMap<Option<String>, TokenUsage>, HashSet<String>);

/// Whether an assistant text event continues the message before it.
fn is_delta(line: &StoredEvent) -> bool {
    matches!(line.events.first(), Some(AgentEvent::AssistantText { delta: true, .. }))
}

impl Engine {
    /// One page of a session's conversation: the last `limit` lines before line `before` (the newest
    /// ones when `None`), as entries with tool calls paired with their results.
    pub fn conversation(
        &self,
        session: &SessionId,
        before: Option<i64>,
        limit: i64,
    ) -> Result<ConversationPage, EngineError> {
        let lines = self.store.events_before(session, before, limit.max(1))?;
        let earlier = match lines.first() {
            Some(first) if self.store.has_events_before(session, first.id)? => Some(first.id),
            _ => None,
        };
        let last_id = lines.last().map(|l| l.id).unwrap_or(0);
        let mut entries: Vec<Entry> = Vec::new();
        let mut cards: HashMap<(Option<String>, String), usize> = HashMap::new();
        let mut usage: HashMap<String, UsageSoFar> = HashMap::new();
        for line in &lines {
            let delta = is_delta(line);
            for e in entries_of(line) {
                match e.item {
                    Item::Assistant { text } if delta => match entries.last_mut() {
                        Some(Entry { item: Item::Assistant { text: prev }, iteration_id, .. })
                            if *iteration_id == e.iteration_id =>
                        {
                            prev.push_str(&text)
                        }
                        _ => entries.push(Entry { item: Item::Assistant { text }, ..e }),
                    },
                    Item::Tool(card) => {
                        cards.insert((e.iteration_id.clone(), card.call_id.clone()), entries.len());
                        entries.push(Entry { item: Item::Tool(card), ..e });
                    }
                    Item::ToolResult { call_id, result } => {
                        match cards
                            .get(&(e.iteration_id.clone(), call_id.clone()))
                            .and_then(|i| entries.get_mut(*i))
                        {
                            Some(Entry { item: Item::Tool(card), .. }) if card.result.is_none() => {
                                card.result = Some(result)
                            }
                            _ => entries.push(Entry { item: Item::ToolResult { call_id, result }, ..e }),
                        }
                    }
                    Item::Usage { usage: u, message_id, model } => {
                        let slot = usage.entry(e.iteration_id.clone().unwrap_or_default()).or_default();
                        let fresh = match message_id {
                            Some(m) => slot.1.insert(m),
                            None => true,
                        };
                        if fresh {
                            slot.0.entry(model).or_default().add(&u);
                        }
                    }
                    item => entries.push(Entry { item, ..e }),
                }
            }
        }
        // The recorded calls of the cards on the page: denials, and results that land after the page.
        let call_ids: Vec<String> = {
            let mut seen = HashSet::new();
            cards.keys().map(|(_, c)| c.clone()).filter(|c| seen.insert(c.clone())).collect()
        };
        let recorded: HashMap<(Option<String>, String), ToolCall> = self
            .store
            .tool_calls_by_call_ids(session, &call_ids)?
            .into_iter()
            .map(|c| ((c.iteration_id.clone(), c.call_id.clone()), c))
            .collect();
        for (key, index) in &cards {
            let (Some(Entry { item: Item::Tool(card), .. }), Some(call)) =
                (entries.get_mut(*index), recorded.get(key))
            else {
                continue;
            };
            card.denied = call.denied;
            if card.result.is_none() && call.ended_at.is_some() && !call.denied {
                card.result = Some(ToolOutcome {
                    ok: call.success.unwrap_or(false),
                    exit_code: call.exit_code,
                    output: call.output_excerpt.clone().unwrap_or_default(),
                    duration_ms: call.duration_ms,
                });
            }
        }
        // A denial of a call shown on the page is the card's badge, not an entry of its own.
        entries.retain(|e| match &e.item {
            Item::Denied { call_id: Some(c), .. } => {
                !cards.contains_key(&(e.iteration_id.clone(), c.clone()))
            }
            _ => true,
        });
        let mut ids: Vec<String> = Vec::new();
        for l in &lines {
            if let Some(i) = &l.iteration_id
                && !ids.contains(i)
            {
                ids.push(i.clone());
            }
        }
        let mut its = self.store.iterations_by_ids(session, &ids)?;
        if before.is_none()
            && let Some(last) = self.store.last_iteration(session)?
            && !its.iter().any(|i| i.id == last.id)
        {
            its.push(last);
        }
        let rows =
            self.store.usage_of_iterations(session, &its.iter().map(|i| i.id.clone()).collect::<Vec<_>>())?;
        let table = self.config.price_table();
        let iterations = its
            .into_iter()
            .map(|it| {
                let mine: Vec<_> =
                    rows.iter().filter(|r| r.iteration_id.as_deref() == Some(it.id.as_str())).collect();
                let (tokens, cost_usd) = if mine.is_empty() {
                    let mut tokens = TokenUsage::default();
                    let mut cost: Option<f64> = None;
                    for (model, u) in usage.get(&it.id).map(|u| &u.0).into_iter().flatten() {
                        tokens.add(u);
                        if let Some(c) = table.cost(model.as_deref().or(it.model.as_deref()), u).usd {
                            cost = Some(cost.unwrap_or(0.0) + c);
                        }
                    }
                    (tokens, it.cost_usd.or(if it.ended_at.is_none() { cost } else { None }))
                } else {
                    let mut t = TokenUsage::default();
                    mine.iter().for_each(|r| t.add(&r.usage));
                    let known: Vec<f64> = mine.iter().filter_map(|r| r.cost_usd).collect();
                    (t, it.cost_usd.or((!known.is_empty()).then(|| known.iter().sum())))
                };
                IterationSummary { iteration: it, tokens, cost_usd }
            })
            .collect();
        let tool_call_count = self.store.count_tool_calls(session)?;
        Ok(ConversationPage { entries, iterations, earlier, last_id, tool_call_count })
    }

    /// What `usage` of `model` costs by the configured price table, when the model is in it.
    pub fn estimate_cost(&self, model: Option<&str>, usage: &TokenUsage) -> Option<f64> {
        self.config.price_table().cost(model, usage).usd
    }
}

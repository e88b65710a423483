//! Codex's `exec --json` stream → events and outcome (agent-protocols.md §3.2–3.4).
//!
//! Token rule: `turn.completed.usage` is the thread's running total — checked against the real CLI, a
//! resumed thread (`exec resume`) reports the earlier runs' tokens plus its own. So the run's usage is the
//! last `turn.completed` minus, on a resumed thread, [`RunSpec::prior_usage`](crate::RunSpec::prior_usage)
//! (when that is not known the running total is all there is, and it is reported as is). For a new thread
//! with one turn this is the same as adding up the turns. `cached_input_tokens` (and
//! `cache_write_input_tokens`, when present) are subsets of `input_tokens`, so
//! `input = input_tokens − cached − cache_write`, `cache_read = cached_input_tokens`. `reasoning_output_tokens` are, as in OpenAI's usage reports, already
//! part of `output_tokens`: they go to `reasoning` (display only) and `output` stays `output_tokens` — unless
//! a report has more reasoning than output, which can only mean they were counted apart; then they are
//! added to `output`. Codex names no model in the stream: the model is the one asked for with `-m`, or
//! unknown.
//!
//! Items: `command_execution` → a `shell` tool call (started → `ToolUse`, completed → `ToolResult` with the
//! exit code); `file_change` → `FileChange` events inside a `file_change` tool call; `mcp_tool_call` →
//! `mcp:<server>/<tool>`; `web_search` → `web_search`. Success: a `turn.completed`, no `turn.failed`, no
//! fatal `error` after the last completed turn, and exit 0. `error` lines that say `Reconnecting...` are
//! retries, not failures.
//!
//! Refusals: a `declined` command is a denied `shell` call. Codex 0.169 does not put a call its sandbox
//! refused on the stream at all; it only logs `patch rejected: …` on stderr (checked against the real CLI
//! under `-s read-only`), which [`StreamParser::parse_stderr_line`] turns into a denied `apply_patch`.

use super::{
    UsageByModel, clip_json, compose_error, content_text, ends_with_question, i64_of, parse_object,
    push_bounded, str_of, truncate_output, u64_of,
};
use crate::adapter::StreamParser;
use crate::spec::ExitInfo;
use ampsm_core::{AgentEvent, RunOutcome, TokenUsage};
use serde_json::{Value, json};
use std::collections::HashSet;

/// Parser for Codex's stream.
#[derive(Debug, Default)]
pub struct CodexParser {
    model: Option<String>,
    thread_id: Option<String>,
    /// The last running total seen.
    running_total: Option<TokenUsage>,
    /// What the thread had used before this run (resumed threads only).
    prior: TokenUsage,
    started: HashSet<String>,
    turn_completed: bool,
    turn_failed: Option<String>,
    pending_fatal: Option<String>,
    last_text: Option<String>,
    awaiting_input: bool,
}

impl CodexParser {
    /// `model`: the model passed with `-m`, if any.
    pub fn new(model: Option<String>) -> Self {
        CodexParser { model, ..Default::default() }
    }

    /// A parser for `exec resume`: `prior` is what the thread's earlier runs reported (zero if unknown).
    pub fn resumed(model: Option<String>, prior: TokenUsage) -> Self {
        CodexParser { model, prior, ..Default::default() }
    }

    /// This run's share of a running total.
    fn since_before(&self, total: &TokenUsage) -> TokenUsage {
        let before = self.running_total.unwrap_or(self.prior);
        super::minus(total, &before)
    }

    fn turn_usage(u: &Value) -> TokenUsage {
        let input_tokens = u64_of(u, "input_tokens").unwrap_or(0);
        let cached = u64_of(u, "cached_input_tokens").unwrap_or(0);
        let cache_write = u64_of(u, "cache_write_input_tokens").unwrap_or(0);
        let output_tokens = u64_of(u, "output_tokens").unwrap_or(0);
        let reasoning = u64_of(u, "reasoning_output_tokens").unwrap_or(0);
        let output =
            if reasoning > output_tokens { output_tokens.saturating_add(reasoning) } else { output_tokens };
        TokenUsage {
            input: input_tokens.saturating_sub(cached).saturating_sub(cache_write),
            output,
            cache_read: cached,
            cache_write,
            reasoning,
        }
    }

    fn tool_use_of(item: &Value, id: &str) -> Option<AgentEvent> {
        let (name, input) = match str_of(item, "type")? {
            "command_execution" => {
                ("shell".to_string(), json!({"command": item.get("command").cloned().unwrap_or(Value::Null)}))
            }
            "file_change" => (
                "file_change".to_string(),
                json!({"changes": item.get("changes").cloned().unwrap_or(Value::Null)}),
            ),
            "mcp_tool_call" => (
                format!(
                    "mcp:{}/{}",
                    str_of(item, "server").unwrap_or("?"),
                    str_of(item, "tool").unwrap_or("?")
                ),
                item.get("arguments").cloned().unwrap_or(Value::Null),
            ),
            "web_search" => (
                "web_search".to_string(),
                json!({"query": item.get("query").cloned().unwrap_or(Value::Null)}),
            ),
            "collab_tool_call" => (
                str_of(item, "tool").unwrap_or("collab_tool_call").to_string(),
                item.get("arguments").cloned().unwrap_or_else(|| item.clone()),
            ),
            _ => return None,
        };
        Some(AgentEvent::ToolUse { call_id: id.to_string(), name, input })
    }

    fn on_item(&mut self, ty: &str, item: &Value) -> Vec<AgentEvent> {
        let id = str_of(item, "id").unwrap_or("").to_string();
        let item_type = str_of(item, "type").unwrap_or("");
        let status = str_of(item, "status").unwrap_or("");
        let mut events = Vec::new();
        match (ty, item_type) {
            ("item.started", _) => {
                if let Some(ev) = Self::tool_use_of(item, &id) {
                    self.started.insert(id);
                    events.push(ev);
                } else if item_type == "todo_list" {
                    events.push(todo_notice(item));
                }
            }
            ("item.updated", "todo_list") => events.push(todo_notice(item)),
            ("item.updated", _) => {}
            (_, "agent_message") => {
                let text = str_of(item, "text").unwrap_or("").to_string();
                let mut bounded = String::new();
                push_bounded(&mut bounded, &text);
                self.last_text = Some(bounded);
                events.push(AgentEvent::AssistantText { text, delta: false });
            }
            (_, "reasoning") => {
                events.push(AgentEvent::Thinking { text: str_of(item, "text").unwrap_or("").to_string() })
            }
            (_, "plan") => events.push(AgentEvent::Notice {
                subtype: "plan".to_string(),
                message: str_of(item, "text").unwrap_or("").to_string(),
            }),
            (_, "todo_list") => events.push(todo_notice(item)),
            (_, "error") => events.push(AgentEvent::Error {
                message: str_of(item, "message").unwrap_or("error").to_string(),
                fatal: false,
            }),
            (
                _,
                "command_execution" | "file_change" | "mcp_tool_call" | "web_search" | "collab_tool_call",
            ) => {
                if !self.started.remove(&id) {
                    events.extend(Self::tool_use_of(item, &id));
                }
                let failed_status = matches!(status, "failed" | "declined");
                let (ok, output, exit_code) = match item_type {
                    "command_execution" => {
                        let exit_code = i64_of(item, "exit_code");
                        let mut output = str_of(item, "aggregated_output").unwrap_or("").to_string();
                        if status == "declined" && output.is_empty() {
                            output = "declined".to_string();
                        }
                        (!failed_status && exit_code.is_none_or(|c| c == 0), output, exit_code)
                    }
                    "file_change" => {
                        let mut lines = Vec::new();
                        for change in item.get("changes").and_then(Value::as_array).into_iter().flatten() {
                            let path = str_of(change, "path").unwrap_or("").to_string();
                            let kind = str_of(change, "kind").unwrap_or("update").to_string();
                            lines.push(format!("{kind} {path}"));
                            events.push(AgentEvent::FileChange { path, change: kind });
                        }
                        (!failed_status, lines.join("\n"), None)
                    }
                    "mcp_tool_call" => {
                        let error = item.get("error").filter(|e| !e.is_null());
                        let output = match (error, item.get("result")) {
                            (Some(e), _) => {
                                str_of(e, "message").map(str::to_string).unwrap_or_else(|| e.to_string())
                            }
                            (None, Some(r)) if !r.is_null() => {
                                content_text(r.get("content").unwrap_or(&Value::Null))
                            }
                            _ => String::new(),
                        };
                        (!failed_status && error.is_none(), output, None)
                    }
                    _ => (!failed_status, String::new(), None),
                };
                if status == "declined" {
                    events.push(AgentEvent::PermissionDenied {
                        call_id: Some(id.clone()),
                        tool: "shell".to_string(),
                        detail: item.get("command").and_then(super::input_detail_of_value),
                        reason: Some("declined".to_string()),
                    });
                }
                events.push(AgentEvent::ToolResult {
                    call_id: id,
                    ok,
                    output: truncate_output(&output),
                    exit_code,
                    duration_ms: None,
                });
            }
            (_, other) => events.push(AgentEvent::Notice {
                subtype: format!("item/{}", if other.is_empty() { "unknown" } else { other }),
                message: clip_json(item),
            }),
        }
        events
    }
}

fn todo_notice(item: &Value) -> AgentEvent {
    let items: Vec<String> = item
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|i| {
            let done = i.get("completed").and_then(Value::as_bool).unwrap_or(false);
            format!("[{}] {}", if done { "x" } else { " " }, str_of(i, "text").unwrap_or(""))
        })
        .collect();
    AgentEvent::Notice { subtype: "todo_list".to_string(), message: items.join("\n") }
}

impl StreamParser for CodexParser {
    fn parse_stderr_line(&mut self, line: &str) -> Vec<AgentEvent> {
        // `… ERROR codex_core::tools::router: error=patch rejected: writing is blocked by read-only sandbox; …`
        match line.find("patch rejected:") {
            Some(at) => vec![AgentEvent::PermissionDenied {
                call_id: None,
                tool: "apply_patch".to_string(),
                detail: None,
                reason: Some(super::prefix_at_boundary(line[at..].trim(), 300).to_string()),
            }],
            None => Vec::new(),
        }
    }

    fn parse_line(&mut self, line: &str) -> Vec<AgentEvent> {
        let obj = match parse_object(line) {
            Ok(map) => Value::Object(map),
            Err(events) => return events,
        };
        let ty = str_of(&obj, "type").unwrap_or("");
        match ty {
            "thread.started" => {
                self.thread_id = str_of(&obj, "thread_id").map(str::to_string);
                vec![AgentEvent::Init {
                    thread_id: self.thread_id.clone(),
                    model: self.model.clone(),
                    cwd: None,
                    tools: Vec::new(),
                }]
            }
            "turn.started" => Vec::new(),
            "turn.completed" => {
                self.turn_completed = true;
                self.pending_fatal = None;
                let mut events = Vec::new();
                if let Some(u) = obj.get("usage").filter(|u| u.is_object()) {
                    let total = Self::turn_usage(u);
                    let usage = self.since_before(&total);
                    self.running_total = Some(total);
                    events.push(AgentEvent::Usage { model: self.model.clone(), usage, message_id: None });
                }
                events.push(AgentEvent::TurnEnd { stop_reason: Some("completed".to_string()) });
                events
            }
            "turn.failed" => {
                let message = obj
                    .get("error")
                    .and_then(|e| str_of(e, "message").map(str::to_string))
                    .unwrap_or_else(|| "turn failed".to_string());
                self.turn_failed = Some(message.clone());
                vec![AgentEvent::Error { message, fatal: true }]
            }
            "item.started" | "item.updated" | "item.completed" => {
                let item = obj.get("item").cloned().unwrap_or(Value::Null);
                if item.is_object() {
                    self.on_item(ty, &item)
                } else {
                    vec![AgentEvent::Notice { subtype: ty.to_string(), message: clip_json(&obj) }]
                }
            }
            "item.plan.delta" => Vec::new(),
            "request_user_input" => {
                self.awaiting_input = true;
                let questions = match obj.get("questions") {
                    Some(Value::Array(qs)) => qs
                        .iter()
                        .map(|q| match q {
                            Value::String(s) => s.clone(),
                            other => str_of(other, "question")
                                .or_else(|| str_of(other, "text"))
                                .map(str::to_string)
                                .unwrap_or_else(|| other.to_string()),
                        })
                        .collect::<Vec<_>>()
                        .join("\n"),
                    Some(other) => content_text(other),
                    None => String::new(),
                };
                vec![AgentEvent::Notice { subtype: "request_user_input".to_string(), message: questions }]
            }
            "error" => {
                let message = str_of(&obj, "message").unwrap_or("error").to_string();
                if let Some(rest) = message.strip_prefix("Reconnecting...") {
                    let attempt = rest
                        .split_whitespace()
                        .next()
                        .and_then(|n| n.split('/').next())
                        .and_then(|n| n.parse::<u64>().ok());
                    vec![AgentEvent::Retry { attempt, message }]
                } else {
                    self.pending_fatal = Some(message.clone());
                    vec![AgentEvent::Error { message, fatal: true }]
                }
            }
            other => vec![AgentEvent::Notice {
                subtype: if other.is_empty() { "unknown".to_string() } else { other.to_string() },
                message: clip_json(&obj),
            }],
        }
    }

    fn finish(&mut self, exit: &ExitInfo) -> RunOutcome {
        let success = exit.is_clean_success()
            && self.turn_completed
            && self.turn_failed.is_none()
            && self.pending_fatal.is_none();
        let error = if success {
            None
        } else {
            let reported = self.turn_failed.clone().or_else(|| self.pending_fatal.clone()).or_else(|| {
                (exit.is_clean_success() && !self.turn_completed)
                    .then(|| "codex exited without completing a turn".to_string())
            });
            Some(compose_error("codex", exit, reported.as_deref(), None))
        };
        // A completed turn is Codex's end of turn; it has no other stop reason.
        let awaiting_input =
            self.awaiting_input || (success && self.last_text.as_deref().is_some_and(ends_with_question));
        RunOutcome {
            thread_id: self.thread_id.clone(),
            success,
            usage: {
                let mut by_model = UsageByModel::default();
                if let Some(total) = &self.running_total {
                    by_model.add(self.model.as_deref(), &super::minus(total, &self.prior), None);
                }
                by_model.into_model_usage()
            },
            reported_cost_usd: None,
            final_text: self.last_text.clone(),
            stop_reason: if self.turn_completed { Some("completed".to_string()) } else { None },
            error,
            awaiting_input,
            num_turns: None,
            denials: Vec::new(),
        }
    }
}

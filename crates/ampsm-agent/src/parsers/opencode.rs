//! OpenCode's `run --format json` stream → events and outcome (agent-protocols.md §5).
//!
//! The thread id is the `sessionID` every line carries; `Init` is emitted with the first one. A `tool_use`
//! line is one *finished* call, so it gives both `ToolUse` and `ToolResult` (with the duration from
//! `state.time`). Token rule: `step_finish.part.tokens` are summed over steps (`input`, `output`,
//! `cache.read`, `cache.write`; `reasoning` is kept for display and not added to output), and
//! `step_finish.part.cost` is summed as the reported cost. Success: the last `step_finish` has a reason
//! other than `tool-calls`, no `error` line came after it, and exit 0.

use super::{
    UsageByModel, clip_json, compose_error, ends_with_question, f64_of, i64_of, parse_object, push_bounded,
    str_of, truncate_output, u64_of,
};
use crate::adapter::StreamParser;
use crate::spec::ExitInfo;
use ampsm_core::{AgentEvent, RunOutcome, TokenUsage};
use serde_json::Value;

/// Parser for OpenCode's stream.
#[derive(Debug, Default)]
pub struct OpenCodeParser {
    model: Option<String>,
    thread_id: Option<String>,
    usage: UsageByModel,
    cost: Option<f64>,
    /// `(messageID, text so far)` of the latest message that had text.
    text: Option<(String, String)>,
    last_finish_reason: Option<String>,
    error_after_finish: Option<String>,
    steps: u64,
}

impl OpenCodeParser {
    /// `model`: the `provider/model` passed with `-m`, if any.
    pub fn new(model: Option<String>) -> Self {
        OpenCodeParser { model, ..Default::default() }
    }

    fn on_text(&mut self, part: &Value) -> AgentEvent {
        let text = str_of(part, "text").unwrap_or("").to_string();
        let message_id = str_of(part, "messageID").unwrap_or("").to_string();
        match &mut self.text {
            Some((id, acc)) if *id == message_id => {
                if !acc.is_empty() && !acc.ends_with('\n') {
                    push_bounded(acc, "\n");
                }
                push_bounded(acc, &text);
            }
            _ => {
                let mut acc = String::new();
                push_bounded(&mut acc, &text);
                self.text = Some((message_id, acc));
            }
        }
        AgentEvent::AssistantText { text, delta: false }
    }

    fn on_tool(part: &Value) -> Vec<AgentEvent> {
        let call_id = str_of(part, "callID").or_else(|| str_of(part, "id")).unwrap_or("").to_string();
        let name = str_of(part, "tool").unwrap_or("").to_string();
        let state = part.get("state").unwrap_or(&Value::Null);
        let status = str_of(state, "status").unwrap_or("");
        let mut events = vec![AgentEvent::ToolUse {
            call_id: call_id.clone(),
            name,
            input: state.get("input").cloned().unwrap_or(Value::Null),
        }];
        if matches!(status, "pending" | "running") {
            return events;
        }
        let output = match (state.get("output"), state.get("error")) {
            (Some(Value::String(s)), _) => s.clone(),
            (_, Some(Value::String(e))) => e.clone(),
            (_, Some(e)) if !e.is_null() => {
                str_of(e, "message").map(str::to_string).unwrap_or_else(|| e.to_string())
            }
            (Some(o), _) if !o.is_null() => o.to_string(),
            _ => String::new(),
        };
        let exit_code = state.get("metadata").and_then(|m| i64_of(m, "exit"));
        let time = state.get("time").unwrap_or(&Value::Null);
        let duration_ms = match (u64_of(time, "start"), u64_of(time, "end")) {
            (Some(s), Some(e)) if e >= s => Some(e - s),
            _ => None,
        };
        events.push(AgentEvent::ToolResult {
            call_id,
            ok: status == "completed" && exit_code.is_none_or(|c| c == 0),
            output: truncate_output(&output),
            exit_code,
            duration_ms,
        });
        events
    }

    fn on_step_finish(&mut self, part: &Value) -> Vec<AgentEvent> {
        self.steps += 1;
        let mut events = Vec::new();
        let cost = f64_of(part, "cost");
        if let Some(c) = cost {
            self.cost = Some(self.cost.unwrap_or(0.0) + c);
        }
        if let Some(t) = part.get("tokens").filter(|t| t.is_object()) {
            let cache = t.get("cache").unwrap_or(&Value::Null);
            let usage = TokenUsage {
                input: u64_of(t, "input").unwrap_or(0),
                output: u64_of(t, "output").unwrap_or(0),
                cache_read: u64_of(cache, "read").unwrap_or(0),
                cache_write: u64_of(cache, "write").unwrap_or(0),
                reasoning: u64_of(t, "reasoning").unwrap_or(0),
            };
            self.usage.add(self.model.as_deref(), &usage, cost);
            events.push(AgentEvent::Usage {
                model: self.model.clone(),
                usage,
                message_id: str_of(part, "messageID").map(str::to_string),
            });
        }
        let reason = str_of(part, "reason").map(str::to_string);
        self.last_finish_reason = reason.clone();
        self.error_after_finish = None;
        if reason.as_deref() != Some("tool-calls") {
            events.push(AgentEvent::TurnEnd { stop_reason: reason });
        }
        events
    }
}

impl StreamParser for OpenCodeParser {
    fn parse_line(&mut self, line: &str) -> Vec<AgentEvent> {
        let obj = match parse_object(line) {
            Ok(map) => Value::Object(map),
            Err(events) => return events,
        };
        let mut events = Vec::new();
        if self.thread_id.is_none() {
            let id = str_of(&obj, "sessionID")
                .or_else(|| obj.get("part").and_then(|p| str_of(p, "sessionID")))
                .filter(|s| !s.is_empty());
            if let Some(id) = id {
                self.thread_id = Some(id.to_string());
                events.push(AgentEvent::Init {
                    thread_id: self.thread_id.clone(),
                    model: self.model.clone(),
                    cwd: None,
                    tools: Vec::new(),
                });
            }
        }
        let part = obj.get("part").unwrap_or(&Value::Null);
        match str_of(&obj, "type").unwrap_or("") {
            "step_start" => {}
            "text" => events.push(self.on_text(part)),
            "reasoning" => {
                events.push(AgentEvent::Thinking { text: str_of(part, "text").unwrap_or("").to_string() })
            }
            "tool_use" => events.extend(Self::on_tool(part)),
            "step_finish" => events.extend(self.on_step_finish(part)),
            "error" => {
                let err = obj.get("error").unwrap_or(&Value::Null);
                let message = err
                    .get("data")
                    .and_then(|d| str_of(d, "message"))
                    .or_else(|| str_of(err, "message"))
                    .or_else(|| str_of(err, "name"))
                    .map(str::to_string)
                    .unwrap_or_else(|| clip_json(&obj));
                let message = match str_of(err, "name") {
                    Some(name) if !message.contains(name) => format!("{name}: {message}"),
                    _ => message,
                };
                self.error_after_finish = Some(message.clone());
                events.push(AgentEvent::Error { message, fatal: true });
            }
            other => events.push(AgentEvent::Notice {
                subtype: if other.is_empty() { "unknown".to_string() } else { other.to_string() },
                message: clip_json(&obj),
            }),
        }
        events
    }

    fn finish(&mut self, exit: &ExitInfo) -> RunOutcome {
        let finished = self.last_finish_reason.as_deref().is_some_and(|r| r != "tool-calls");
        let success = exit.is_clean_success() && finished && self.error_after_finish.is_none();
        let final_text = self.text.as_ref().map(|(_, t)| t.clone()).filter(|t| !t.is_empty());
        let error = if success {
            None
        } else {
            let reported = self.error_after_finish.clone().or_else(|| {
                (exit.is_clean_success() && !finished)
                    .then(|| "opencode exited before its final step".to_string())
            });
            Some(compose_error("opencode", exit, reported.as_deref(), None))
        };
        RunOutcome {
            thread_id: self.thread_id.clone(),
            success,
            usage: self.usage.clone().into_model_usage(),
            reported_cost_usd: self.cost,
            awaiting_input: success
                && self.last_finish_reason.as_deref() == Some("stop")
                && final_text.as_deref().is_some_and(ends_with_question),
            final_text,
            stop_reason: self.last_finish_reason.clone(),
            error,
            num_turns: (self.steps > 0).then_some(self.steps),
            denials: Vec::new(),
        }
    }
}

//! Gemini CLI's `-o stream-json` stream → events and outcome (agent-protocols.md §4).
//!
//! Token rule: usage comes once, from `result.stats`: per model from `stats.models` when present, else the
//! totals under the model named by `init`. `input = input_tokens − cached`, `cache_read = cached`. Assistant
//! text arrives as deltas; the final text is the concatenation after the last tool call. Success: a
//! `result` with `status: success` and exit 0; the documented exit codes (41 auth, 42 input, 52 config,
//! 53 turn limit, 54 tool error) are named in the error.

use super::{
    UsageByModel, bool_of, clip_json, compose_error, ends_with_question, parse_object, push_bounded, str_of,
    truncate_output, u64_of,
};
use crate::adapter::StreamParser;
use crate::spec::ExitInfo;
use ampsm_core::{AgentEvent, RunOutcome, TokenUsage};
use serde_json::Value;

#[derive(Debug, Clone)]
struct GeminiResult {
    ok: bool,
    error: Option<String>,
}

/// Parser for Gemini CLI's stream.
#[derive(Debug, Default)]
pub struct GeminiParser {
    thread_id: Option<String>,
    model: Option<String>,
    usage: UsageByModel,
    current_text: String,
    result: Option<GeminiResult>,
    last_error: Option<String>,
}

impl GeminiParser {
    /// `model`: the model passed with `-m`, used until `init` names one.
    pub fn new(model: Option<String>) -> Self {
        GeminiParser { model, ..Default::default() }
    }

    fn stats_usage(s: &Value) -> TokenUsage {
        let cached = u64_of(s, "cached").unwrap_or(0);
        let input = match u64_of(s, "input_tokens") {
            Some(total) => total.saturating_sub(cached),
            None => u64_of(s, "input").unwrap_or(0),
        };
        TokenUsage {
            input,
            output: u64_of(s, "output_tokens").unwrap_or(0),
            cache_read: cached,
            ..Default::default()
        }
    }

    fn error_text(obj: &Value) -> Option<String> {
        match obj.get("error") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(e @ Value::Object(_)) => {
                let message = str_of(e, "message").unwrap_or("error");
                Some(match str_of(e, "type") {
                    Some(t) => format!("{message} ({t})"),
                    None => message.to_string(),
                })
            }
            _ => None,
        }
    }
}

fn exit_code_meaning(code: i32) -> Option<&'static str> {
    match code {
        41 => Some("authentication failed: gemini exit code 41 (auth error); set GEMINI_API_KEY or sign in"),
        42 => Some("gemini exit code 42 (input error)"),
        52 => Some("gemini exit code 52 (configuration error)"),
        53 => Some("gemini exit code 53 (turn limit reached)"),
        54 => Some("gemini exit code 54 (fatal tool error)"),
        130 => Some("gemini exit code 130 (interrupted)"),
        _ => None,
    }
}

impl StreamParser for GeminiParser {
    fn parse_line(&mut self, line: &str) -> Vec<AgentEvent> {
        let obj = match parse_object(line) {
            Ok(map) => Value::Object(map),
            Err(events) => return events,
        };
        match str_of(&obj, "type").unwrap_or("") {
            "init" => {
                self.thread_id = str_of(&obj, "session_id").map(str::to_string);
                if let Some(m) = str_of(&obj, "model") {
                    self.model = Some(m.to_string());
                }
                vec![AgentEvent::Init {
                    thread_id: self.thread_id.clone(),
                    model: self.model.clone(),
                    cwd: None,
                    tools: Vec::new(),
                }]
            }
            "message" => {
                let text = match obj.get("content") {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => super::content_text(other),
                    None => String::new(),
                };
                let delta = bool_of(&obj, "delta").unwrap_or(false);
                if str_of(&obj, "role") == Some("user") {
                    self.current_text.clear();
                    vec![AgentEvent::UserText { text, replay: false }]
                } else {
                    if !delta {
                        self.current_text.clear();
                    }
                    push_bounded(&mut self.current_text, &text);
                    vec![AgentEvent::AssistantText { text, delta }]
                }
            }
            "tool_use" => {
                self.current_text.clear();
                vec![AgentEvent::ToolUse {
                    call_id: str_of(&obj, "tool_id").unwrap_or("").to_string(),
                    name: str_of(&obj, "tool_name").unwrap_or("").to_string(),
                    input: obj.get("parameters").cloned().unwrap_or(Value::Null),
                }]
            }
            "tool_result" => {
                let ok = str_of(&obj, "status") == Some("success");
                let output = match (str_of(&obj, "output"), Self::error_text(&obj)) {
                    (Some(o), _) if ok || !o.is_empty() => o.to_string(),
                    (_, Some(e)) => e,
                    (Some(o), None) => o.to_string(),
                    (None, None) => String::new(),
                };
                vec![AgentEvent::ToolResult {
                    call_id: str_of(&obj, "tool_id").unwrap_or("").to_string(),
                    ok,
                    output: truncate_output(&output),
                    exit_code: None,
                    duration_ms: None,
                }]
            }
            "error" => {
                let message = str_of(&obj, "message").unwrap_or("error").to_string();
                if str_of(&obj, "severity") == Some("error") {
                    self.last_error = Some(message.clone());
                }
                vec![AgentEvent::Error { message, fatal: false }]
            }
            "result" => {
                let ok = str_of(&obj, "status") == Some("success");
                let error = if ok {
                    None
                } else {
                    Some(Self::error_text(&obj).unwrap_or_else(|| "gemini reported an error".to_string()))
                };
                let mut events = Vec::new();
                let mut by_model = UsageByModel::default();
                if let Some(stats) = obj.get("stats").filter(|s| s.is_object()) {
                    let models = stats.get("models").and_then(Value::as_object).filter(|m| !m.is_empty());
                    match models {
                        Some(models) => {
                            for (name, m) in models {
                                by_model.add(Some(name), &Self::stats_usage(m), None);
                            }
                        }
                        None => by_model.add(self.model.as_deref(), &Self::stats_usage(stats), None),
                    }
                }
                for m in by_model.clone().into_model_usage() {
                    events.push(AgentEvent::Usage { model: m.model, usage: m.usage, message_id: None });
                }
                self.usage = by_model;
                self.result = Some(GeminiResult { ok, error: error.clone() });
                let final_text = (!self.current_text.is_empty()).then(|| self.current_text.clone());
                events.push(AgentEvent::Result {
                    ok,
                    subtype: str_of(&obj, "status").map(str::to_string),
                    text: final_text,
                    error,
                    duration_ms: obj.get("stats").and_then(|s| u64_of(s, "duration_ms")),
                    num_turns: None,
                    cost_usd: None,
                });
                events
            }
            other => vec![AgentEvent::Notice {
                subtype: if other.is_empty() { "unknown".to_string() } else { other.to_string() },
                message: clip_json(&obj),
            }],
        }
    }

    fn finish(&mut self, exit: &ExitInfo) -> RunOutcome {
        let success = self.result.as_ref().is_some_and(|r| r.ok) && exit.is_clean_success();
        let final_text = (!self.current_text.is_empty()).then(|| self.current_text.clone());
        let error = if success {
            None
        } else {
            let from_code = exit.code.and_then(exit_code_meaning).map(str::to_string);
            let reported = match &self.result {
                Some(r) if !r.ok => r.error.clone(),
                Some(_) => None,
                None if exit.is_clean_success() => Some("gemini exited without a result line".to_string()),
                None => self.last_error.clone(),
            };
            let reported = match (from_code, reported) {
                (Some(c), Some(r)) => Some(format!("{c}: {r}")),
                (c, r) => c.or(r),
            };
            Some(compose_error("gemini", exit, reported.as_deref(), None))
        };
        RunOutcome {
            thread_id: self.thread_id.clone(),
            success,
            usage: self.usage.clone().into_model_usage(),
            reported_cost_usd: None,
            // A success result is Gemini's end of turn; it has no other stop reason.
            awaiting_input: success && final_text.as_deref().is_some_and(ends_with_question),
            final_text,
            stop_reason: None,
            error,
            num_turns: None,
            denials: Vec::new(),
        }
    }
}

//! Claude Code's `--output-format stream-json --verbose` stream → events and outcome (agent-protocols.md
//! §2.2–2.4).
//!
//! Token rule: every content block comes as its own `assistant` line repeating the message's `usage` (with
//! a provisional `output_tokens`), so per-line usage is never added up. The totals come from the `result`
//! line: `modelUsage` per model (with `costUSD`), or `usage` when `modelUsage` is empty; `total_cost_usd` is
//! the run's reported cost. `Usage` events are emitted once per message id, for display. Without a
//! `result` line (a killed run) the last usage seen per message id is summed instead.
//!
//! Resumed sessions (`--resume`): checked against the real CLI (2.x), the result's `usage` and `num_turns`
//! cover this run only, but `modelUsage` and `total_cost_usd` are the *session's* running totals. So on a
//! resumed run `modelUsage` minus [`RunSpec::prior_usage`](crate::RunSpec::prior_usage) is this run's share
//! (cost too); when that is not known (or does not add up), the run's tokens are the result's `usage`
//! under the session's model and its cost is left unknown (the price table prices it). Success is `!is_error` on the result line — `subtype` does
//! not follow it.
//!
//! Permissions: a refused tool call comes as a `system/permission_denied` line (and again in the result's
//! `permission_denials`, from which only calls not seen before are taken); under `--permission-prompt-tool
//! stdio` a `control_request` of subtype `can_use_tool` asks for approval and becomes a
//! [`AgentEvent::PermissionRequest`].

use super::anthropic_blocks::{assistant_blocks, user_blocks};
use super::{
    UsageByModel, anthropic_usage, as_u64_lenient, bool_of, clip_json, compose_error, ends_with_question,
    f64_of, input_detail, minus, note_session_id, parse_object, push_bounded, result_denials, str_of,
    sum_usage, u64_of,
};
use crate::adapter::StreamParser;
use crate::spec::ExitInfo;
use ampsm_core::{AgentEvent, ModelUsage, RunOutcome, TokenUsage};
use serde_json::Value;
use std::collections::HashMap;

#[derive(Debug, Clone)]
struct ClaudeResult {
    ok: bool,
    text: Option<String>,
    error: Option<String>,
    api_error_status: Option<u64>,
    num_turns: Option<u64>,
    stop_reason: Option<String>,
    total_cost_usd: Option<f64>,
    /// `modelUsage`, per model.
    model_usage: Vec<ModelUsage>,
    /// `usage`: this run's tokens, all models of the main loop together.
    run_usage: Option<TokenUsage>,
}

/// Parser for Claude Code's stream.
#[derive(Debug, Default)]
pub struct ClaudeParser {
    thread_id: Option<String>,
    init_emitted: bool,
    model: Option<String>,
    /// Last usage seen per message id, in first-seen order (fallback when no result line comes).
    per_message: Vec<(Option<String>, TokenUsage)>,
    message_index: HashMap<String, usize>,
    current_message: Option<String>,
    /// Last text block of the current assistant message.
    current_text: Option<String>,
    /// Stop reason of the current assistant message (Claude sends `null` on all but its last line).
    current_stop: Option<String>,
    last_stop_reason: Option<String>,
    last_text: Option<String>,
    last_assistant_error: Option<String>,
    last_retry: Option<String>,
    result: Option<ClaudeResult>,
    pending_usage_fallback_model: Option<String>,
    resumed: bool,
    prior: Vec<ModelUsage>,
    /// What each tool call was about (its path or command), for denial reports; bounded.
    call_details: HashMap<String, String>,
    /// Tool calls reported denied so far.
    denied: std::collections::HashSet<String>,
}

impl ClaudeParser {
    /// A parser for a fresh session.
    pub fn new() -> Self {
        Self::default()
    }

    /// A parser for a run that resumes a session; `prior` is what its earlier runs reported (may be empty).
    pub fn resumed(prior: Vec<ModelUsage>) -> Self {
        ClaudeParser { resumed: true, prior, ..Self::default() }
    }

    fn on_assistant(&mut self, obj: &Value) -> Vec<AgentEvent> {
        let msg = obj.get("message").unwrap_or(&Value::Null);
        let id = str_of(msg, "id").map(str::to_string);
        if id.is_none() || id != self.current_message {
            self.current_message = id.clone();
            self.current_text = None;
            self.current_stop = None;
        }
        let model = str_of(msg, "model").map(str::to_string);
        if model.is_some() {
            self.pending_usage_fallback_model = model.clone();
        }
        let (mut events, last_text) = assistant_blocks(msg.get("content").unwrap_or(&Value::Null));
        for ev in &events {
            if let AgentEvent::ToolUse { call_id, input, .. } = ev
                && self.call_details.len() < 10_000
                && let Some(detail) = input_detail(input)
            {
                self.call_details.insert(call_id.clone(), detail);
            }
        }
        if let Some(t) = last_text {
            let mut bounded = String::new();
            push_bounded(&mut bounded, &t);
            self.current_text = Some(bounded.clone());
            self.last_text = Some(bounded);
        }
        let stop_reason = str_of(msg, "stop_reason").map(str::to_string);
        if let Some(err) = str_of(obj, "error") {
            self.last_assistant_error = Some(err.to_string());
            events.push(AgentEvent::Error { message: err.to_string(), fatal: false });
        }
        if let Some(u) = msg.get("usage").filter(|u| u.is_object()) {
            let usage = anthropic_usage(u);
            let key = id.clone().unwrap_or_else(|| format!("#line{}", self.per_message.len()));
            match self.message_index.get(&key) {
                Some(&i) => {
                    if let Some(slot) = self.per_message.get_mut(i) {
                        slot.1 = usage;
                    }
                }
                None => {
                    self.message_index.insert(key, self.per_message.len());
                    self.per_message.push((model.clone(), usage));
                    events.push(AgentEvent::Usage { model: model.clone(), usage, message_id: id.clone() });
                }
            }
        }
        if let Some(reason) = &stop_reason {
            self.last_stop_reason = Some(reason.clone());
            self.current_stop = Some(reason.clone());
            if reason != "tool_use" {
                events.push(AgentEvent::TurnEnd { stop_reason: Some(reason.clone()) });
            }
        }
        events
    }

    fn on_result(&mut self, obj: &Value) -> Vec<AgentEvent> {
        let subtype = str_of(obj, "subtype").map(str::to_string);
        let ok = !bool_of(obj, "is_error").unwrap_or(false);
        let text = str_of(obj, "result").map(str::to_string);
        let errors: Vec<String> = obj
            .get("errors")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter().map(|e| e.as_str().map(str::to_string).unwrap_or_else(|| e.to_string())).collect()
            })
            .unwrap_or_default();
        let error = if ok {
            None
        } else if !errors.is_empty() {
            Some(errors.join("; "))
        } else {
            Some(
                text.clone()
                    .filter(|t| !t.is_empty())
                    .or_else(|| subtype.clone())
                    .unwrap_or_else(|| "error".into()),
            )
        };
        let total_cost_usd = f64_of(obj, "total_cost_usd");
        let model_usage = Self::model_usage_of(obj);
        let run_usage = obj.get("usage").filter(|u| u.is_object()).map(anthropic_usage);
        let num_turns = u64_of(obj, "num_turns");
        self.result = Some(ClaudeResult {
            ok,
            text: text.clone(),
            error: error.clone(),
            api_error_status: obj.get("api_error_status").and_then(as_u64_lenient),
            num_turns,
            stop_reason: str_of(obj, "stop_reason").map(str::to_string),
            total_cost_usd,
            model_usage,
            run_usage,
        });
        vec![AgentEvent::Result {
            ok,
            subtype,
            text,
            error,
            duration_ms: u64_of(obj, "duration_ms"),
            num_turns,
            cost_usd: total_cost_usd,
        }]
    }

    /// `modelUsage` of a result line, per model, with `costUSD`.
    fn model_usage_of(obj: &Value) -> Vec<ModelUsage> {
        let mut by_model = UsageByModel::default();
        if let Some(map) = obj.get("modelUsage").and_then(Value::as_object) {
            for (model, m) in map {
                let usage = TokenUsage {
                    input: u64_of(m, "inputTokens").unwrap_or(0),
                    output: u64_of(m, "outputTokens").unwrap_or(0),
                    cache_read: u64_of(m, "cacheReadInputTokens").unwrap_or(0),
                    cache_write: u64_of(m, "cacheCreationInputTokens").unwrap_or(0),
                    reasoning: 0,
                };
                by_model.add(Some(model), &usage, f64_of(m, "costUSD"));
            }
        }
        by_model.into_model_usage()
    }

    /// The run's usage and cost from its result line (see the module docs for resumed sessions).
    fn result_totals(&self, r: &ClaudeResult) -> (Vec<ModelUsage>, Option<f64>) {
        let cost_of = |usage: &[ModelUsage]| {
            let costs: Vec<f64> = usage.iter().filter_map(|m| m.reported_cost_usd).collect();
            if costs.is_empty() { None } else { Some(costs.iter().sum::<f64>()) }
        };
        let main_model = self.model.as_deref().or(self.pending_usage_fallback_model.as_deref());
        let run_only = |cost: Option<f64>| {
            let mut by_model = UsageByModel::default();
            if let Some(u) = &r.run_usage {
                by_model.add(main_model, u, None);
            }
            (by_model.into_model_usage(), cost)
        };
        if r.model_usage.is_empty() {
            return run_only(if self.resumed { None } else { r.total_cost_usd });
        }
        let models_total = sum_usage(&r.model_usage);
        // A fresh session, or a resumed one whose modelUsage covers this run only after all.
        if !self.resumed || r.run_usage.is_some_and(|u| u == models_total) {
            return (r.model_usage.clone(), r.total_cost_usd.or_else(|| cost_of(&r.model_usage)));
        }
        if !self.prior.is_empty() {
            let delta: Vec<ModelUsage> = r
                .model_usage
                .iter()
                .map(|m| {
                    let before: Vec<&ModelUsage> = self.prior.iter().filter(|p| p.model == m.model).collect();
                    let mut used = TokenUsage::default();
                    let mut cost_before = 0.0;
                    for p in &before {
                        used.add(&p.usage);
                        cost_before += p.reported_cost_usd.unwrap_or(0.0);
                    }
                    ModelUsage {
                        model: m.model.clone(),
                        usage: minus(&m.usage, &used),
                        reported_cost_usd: m.reported_cost_usd.map(|c| (c - cost_before).max(0.0)),
                    }
                })
                .filter(|m| !m.usage.is_zero())
                .collect();
            let delta_total = sum_usage(&delta);
            // The share must at least hold the tokens the run itself reports; otherwise `prior` is off.
            if r.run_usage.is_none_or(|u| delta_total.total() >= u.total()) {
                let prior_cost: f64 = self.prior.iter().filter_map(|p| p.reported_cost_usd).sum();
                let cost = r.total_cost_usd.map(|c| (c - prior_cost).max(0.0)).or_else(|| cost_of(&delta));
                return (delta, cost);
            }
        }
        run_only(None)
    }

    fn fallback_usage(&self) -> Vec<ModelUsage> {
        let mut by_model = UsageByModel::default();
        for (model, usage) in &self.per_message {
            by_model.add(model.as_deref(), usage, None);
        }
        by_model.into_model_usage()
    }
}

impl StreamParser for ClaudeParser {
    fn parse_line(&mut self, line: &str) -> Vec<AgentEvent> {
        let obj = match parse_object(line) {
            Ok(map) => Value::Object(map),
            Err(events) => return events,
        };
        let kind = (str_of(&obj, "type").unwrap_or(""), str_of(&obj, "subtype").unwrap_or(""));
        let mut events = Vec::new();
        note_session_id(&obj, kind, &mut self.thread_id, &mut self.init_emitted, &mut events);
        match kind {
            ("system", "init") => {
                if let Some(id) = str_of(&obj, "session_id").filter(|s| !s.is_empty()) {
                    self.thread_id = Some(id.to_string());
                }
                self.model = str_of(&obj, "model").map(str::to_string);
                self.init_emitted = true;
                events.push(AgentEvent::Init {
                    thread_id: self.thread_id.clone(),
                    model: self.model.clone(),
                    cwd: str_of(&obj, "cwd").map(str::to_string),
                    tools: obj
                        .get("tools")
                        .and_then(Value::as_array)
                        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                        .unwrap_or_default(),
                });
            }
            ("system", "api_retry") => {
                let status = obj.get("error_status").and_then(as_u64_lenient);
                let err = match obj.get("error") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Null) | None => "error".to_string(),
                    Some(other) => other.to_string(),
                };
                let message = match status {
                    Some(s) => format!("{err} (HTTP {s})"),
                    None => err,
                };
                self.last_retry = Some(message.clone());
                events.push(AgentEvent::Retry { attempt: u64_of(&obj, "attempt"), message });
            }
            ("system", "permission_denied") => {
                let call_id = str_of(&obj, "tool_use_id").map(str::to_string);
                if let Some(c) = &call_id {
                    self.denied.insert(c.clone());
                }
                events.push(AgentEvent::PermissionDenied {
                    detail: call_id.as_ref().and_then(|c| self.call_details.get(c).cloned()),
                    call_id,
                    tool: str_of(&obj, "tool_name").unwrap_or("tool").to_string(),
                    reason: str_of(&obj, "message").map(str::to_string),
                });
            }
            ("system", sub) => {
                events.push(AgentEvent::Notice { subtype: format!("system/{sub}"), message: clip_json(&obj) })
            }
            ("control_request", _) => {
                let request = obj.get("request").unwrap_or(&Value::Null);
                match (str_of(request, "subtype"), str_of(&obj, "request_id")) {
                    (Some("can_use_tool"), Some(id)) => events.push(AgentEvent::PermissionRequest {
                        request_id: id.to_string(),
                        call_id: str_of(request, "tool_use_id").map(str::to_string),
                        tool: str_of(request, "tool_name").unwrap_or("tool").to_string(),
                        input: request.get("input").cloned().unwrap_or(Value::Null),
                    }),
                    _ => events.push(AgentEvent::Notice {
                        subtype: "control_request".to_string(),
                        message: clip_json(&obj),
                    }),
                }
            }
            ("assistant", _) => events.extend(self.on_assistant(&obj)),
            ("user", _) => {
                let content = obj.get("message").and_then(|m| m.get("content")).unwrap_or(&Value::Null);
                let replay = bool_of(&obj, "isReplay").unwrap_or(false);
                events.extend(user_blocks(content, replay).0);
            }
            ("result", _) => {
                events.extend(self.on_result(&obj));
                let denials = result_denials(&obj, &self.denied);
                for d in &denials {
                    if let AgentEvent::PermissionDenied { call_id: Some(c), .. } = d {
                        self.denied.insert(c.clone());
                    }
                }
                events.extend(denials);
            }
            // Partial-message deltas repeat what the full assistant lines carry; the raw line is kept.
            ("stream_event", _) => {}
            (other, _) => events.push(AgentEvent::Notice {
                subtype: if other.is_empty() { "unknown".to_string() } else { other.to_string() },
                message: clip_json(&obj),
            }),
        }
        events
    }

    fn finish(&mut self, exit: &ExitInfo) -> RunOutcome {
        let result_ok = self.result.as_ref().is_some_and(|r| r.ok);
        let success = result_ok && exit.is_clean_success();
        let result_stop = self.result.as_ref().and_then(|r| r.stop_reason.clone());
        let stop_reason = result_stop.clone().or_else(|| self.last_stop_reason.clone());
        let final_stop = self.current_stop.clone().or(result_stop);
        let awaiting_input = success
            && final_stop.as_deref() == Some("end_turn")
            && self.current_text.as_deref().is_some_and(ends_with_question);
        let final_text = self
            .result
            .as_ref()
            .filter(|r| r.ok)
            .and_then(|r| r.text.clone())
            .filter(|t| !t.is_empty())
            .or_else(|| self.last_text.clone());
        let error = if success {
            None
        } else {
            let (reported, status) = match &self.result {
                Some(r) if !r.ok => (r.error.clone(), r.api_error_status),
                Some(_) => (None, None),
                None => {
                    let detail = match (&self.last_assistant_error, &self.last_retry) {
                        (Some(e), _) => Some(e.clone()),
                        (None, Some(r)) => Some(format!("last retry: {r}")),
                        (None, None) if exit.is_clean_success() => {
                            Some("claude exited without a result line".to_string())
                        }
                        (None, None) => None,
                    };
                    (detail, None)
                }
            };
            Some(compose_error("claude", exit, reported.as_deref(), status))
        };
        let (usage, reported_cost_usd) = match &self.result {
            Some(r) => self.result_totals(r),
            None => (self.fallback_usage(), None),
        };
        RunOutcome {
            thread_id: self.thread_id.clone(),
            success,
            usage,
            reported_cost_usd,
            final_text,
            stop_reason,
            error,
            awaiting_input,
            num_turns: self.result.as_ref().and_then(|r| r.num_turns),
            denials: Vec::new(),
        }
    }
}

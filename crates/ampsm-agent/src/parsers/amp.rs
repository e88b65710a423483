//! Amp's `--stream-json` (Claude-compatible) stream → events and outcome (agent-protocols.md §1.3–1.5).
//!
//! Token rule: Amp's `result` line carries no usage, so the run's usage is the sum of
//! `assistant.message.usage` over assistant messages (a message id seen twice counts once). On a continued
//! thread Amp may replay the earlier messages first; then only the assistant messages after the last user
//! text equal to the prompt we sent are counted (or, if the prompt is never echoed, those after the last
//! user text). The model is `message.model` when present (real captures lack it), else unknown.

use super::anthropic_blocks::{assistant_blocks, user_blocks};
use super::{
    UsageByModel, anthropic_usage, bool_of, classify_error, clip_json, compose_error, ends_with_question,
    note_session_id, parse_object, push_bounded, str_of, u64_of,
};
use crate::adapter::StreamParser;
use crate::spec::ExitInfo;
use ampsm_core::{AgentEvent, RunOutcome};
use serde_json::Value;
use std::collections::HashSet;

/// How the Amp parser was started.
#[derive(Debug, Clone, Default)]
pub struct AmpParserOptions {
    /// The prompt sent on stdin (compared with the echoed user text).
    pub prompt: String,
    /// `threads continue` was used: earlier messages may be replayed before ours.
    pub continued: bool,
    /// `--stream-json-input` session: turns end without `result` lines; a clean exit is a success.
    pub interactive: bool,
    /// The agent name used in error texts (`amp`, or `offline` for the demo agent).
    pub agent: &'static str,
}

#[derive(Debug, Clone)]
struct AmpResult {
    ok: bool,
    text: Option<String>,
    error: Option<String>,
    num_turns: Option<u64>,
}

/// Parser for Amp's stream (also used for the offline demo agent, which speaks the same format).
#[derive(Debug)]
pub struct AmpParser {
    opts: AmpParserOptions,
    prompt_trimmed: String,
    thread_id: Option<String>,
    all: UsageByModel,
    since_user_text: UsageByModel,
    since_prompt: Option<UsageByModel>,
    seen_ids: HashSet<String>,
    /// `(stop_reason, last text block)` of the latest assistant message.
    last_assistant: Option<(Option<String>, Option<String>)>,
    last_text: Option<String>,
    result: Option<AmpResult>,
    last_error: Option<String>,
    login_prompt_seen: bool,
    init_emitted: bool,
    /// Tool name and what it was about, per call id (bounded), for denial reports.
    calls: std::collections::HashMap<String, (String, Option<String>)>,
    /// Calls reported denied so far.
    denied: HashSet<String>,
}

impl AmpParser {
    pub fn new(opts: AmpParserOptions) -> Self {
        let prompt_trimmed = opts.prompt.trim().to_string();
        AmpParser {
            opts,
            prompt_trimmed,
            thread_id: None,
            all: UsageByModel::default(),
            since_user_text: UsageByModel::default(),
            since_prompt: None,
            seen_ids: HashSet::new(),
            last_assistant: None,
            last_text: None,
            result: None,
            last_error: None,
            login_prompt_seen: false,
            init_emitted: false,
            calls: Default::default(),
            denied: HashSet::new(),
        }
    }

    fn agent(&self) -> &'static str {
        if self.opts.agent.is_empty() { "amp" } else { self.opts.agent }
    }

    /// Whether assistant messages at this point count towards the run's usage.
    fn counting_now(&self) -> bool {
        !self.opts.continued || self.since_prompt.is_some()
    }

    fn on_user(&mut self, obj: &Value) -> Vec<AgentEvent> {
        let content = obj.get("message").and_then(|m| m.get("content")).unwrap_or(&Value::Null);
        let explicit_replay = bool_of(obj, "isReplay").unwrap_or(false);
        // Texts equal to our prompt are ours; on a continued thread, other texts before it are replays.
        let texts: Vec<String> = match content {
            Value::String(s) => vec![s.clone()],
            Value::Array(blocks) => blocks
                .iter()
                .filter(|b| str_of(b, "type") == Some("text"))
                .map(|b| str_of(b, "text").unwrap_or("").to_string())
                .collect(),
            _ => Vec::new(),
        };
        let is_prompt =
            !self.prompt_trimmed.is_empty() && texts.iter().any(|t| t.trim() == self.prompt_trimmed);
        let replay = explicit_replay || (self.opts.continued && self.since_prompt.is_none() && !is_prompt);
        let (mut events, texts) = user_blocks(content, replay);
        // Amp has no permission events: a refused call shows as a tool error that says so.
        let mut denials = Vec::new();
        for ev in &events {
            if let AgentEvent::ToolResult { call_id, ok: false, output, .. } = ev
                && !self.denied.contains(call_id)
                && super::says_permission_denied(output)
            {
                let (tool, detail) =
                    self.calls.get(call_id).cloned().unwrap_or_else(|| ("tool".to_string(), None));
                self.denied.insert(call_id.clone());
                denials.push(AgentEvent::PermissionDenied {
                    call_id: Some(call_id.clone()),
                    tool,
                    detail,
                    reason: output.lines().next().map(|l| super::prefix_at_boundary(l, 300).to_string()),
                });
            }
        }
        events.extend(denials);
        // A sub-agent's (Task) own user messages carry the parent tool call; they are not the user's.
        let from_subagent = obj.get("parent_tool_use_id").is_some_and(|p| !p.is_null());
        if !texts.is_empty() && !from_subagent {
            self.since_user_text = UsageByModel::default();
            if is_prompt {
                self.since_prompt = Some(UsageByModel::default());
            }
        }
        events
    }

    fn on_assistant(&mut self, obj: &Value) -> Vec<AgentEvent> {
        let msg = obj.get("message").unwrap_or(&Value::Null);
        let (mut events, last_text) = assistant_blocks(msg.get("content").unwrap_or(&Value::Null));
        for ev in &events {
            if let AgentEvent::ToolUse { call_id, name, input } = ev
                && self.calls.len() < 10_000
            {
                self.calls.insert(call_id.clone(), (name.clone(), super::input_detail(input)));
            }
        }
        let stop_reason = str_of(msg, "stop_reason").map(str::to_string);
        if let Some(t) = &last_text {
            let mut bounded = String::new();
            push_bounded(&mut bounded, t);
            self.last_text = Some(bounded);
        }
        self.last_assistant = Some((stop_reason.clone(), last_text));
        if let Some(err) = str_of(obj, "error") {
            self.last_error = Some(err.to_string());
            events.push(AgentEvent::Error { message: err.to_string(), fatal: false });
        }

        let first_time = match str_of(msg, "id") {
            Some(id) => self.seen_ids.insert(id.to_string()),
            None => true,
        };
        if let (true, Some(u)) = (first_time, msg.get("usage")) {
            let usage = anthropic_usage(u);
            let model = str_of(msg, "model");
            self.all.add(model, &usage, None);
            self.since_user_text.add(model, &usage, None);
            if let Some(acc) = self.since_prompt.as_mut() {
                acc.add(model, &usage, None);
            }
            if self.counting_now() {
                events.push(AgentEvent::Usage {
                    model: model.map(str::to_string),
                    usage,
                    message_id: str_of(msg, "id").map(str::to_string),
                });
            }
        }
        if let Some(reason) = stop_reason.filter(|r| r != "tool_use") {
            events.push(AgentEvent::TurnEnd { stop_reason: Some(reason) });
        }
        events
    }

    fn on_result(&mut self, obj: &Value) -> Vec<AgentEvent> {
        let subtype = str_of(obj, "subtype").map(str::to_string);
        let is_error = bool_of(obj, "is_error").unwrap_or(false);
        let ok = subtype.as_deref() == Some("success") && !is_error;
        let text = str_of(obj, "result").map(str::to_string);
        let error = if ok {
            None
        } else {
            Some(
                str_of(obj, "error")
                    .map(str::to_string)
                    .or_else(|| text.clone())
                    .or_else(|| subtype.clone())
                    .unwrap_or_else(|| "error".to_string()),
            )
        };
        let num_turns = u64_of(obj, "num_turns");
        self.result = Some(AmpResult { ok, text: text.clone(), error: error.clone(), num_turns });
        let mut events = vec![AgentEvent::Result {
            ok,
            subtype,
            text,
            error,
            duration_ms: u64_of(obj, "duration_ms"),
            num_turns,
            cost_usd: None,
        }];
        events.extend(super::result_denials(obj, &self.denied));
        events
    }

    fn counted_usage(&self) -> UsageByModel {
        if !self.opts.continued {
            return self.all.clone();
        }
        match &self.since_prompt {
            Some(acc) => acc.clone(),
            None => self.since_user_text.clone(),
        }
    }
}

impl StreamParser for AmpParser {
    fn parse_line(&mut self, line: &str) -> Vec<AgentEvent> {
        let map = match parse_object(line) {
            Ok(map) => map,
            Err(events) => {
                let lower = line.to_lowercase();
                if lower.contains("no api key found") || lower.contains("starting login flow") {
                    self.login_prompt_seen = true;
                }
                return events;
            }
        };
        let obj = Value::Object(map);
        let kind = (str_of(&obj, "type").unwrap_or(""), str_of(&obj, "subtype").unwrap_or(""));
        let mut events = Vec::new();
        note_session_id(&obj, kind, &mut self.thread_id, &mut self.init_emitted, &mut events);
        events.extend(self.dispatch(kind, &obj));
        events
    }

    fn finish(&mut self, exit: &ExitInfo) -> RunOutcome {
        self.outcome(exit)
    }
}

impl AmpParser {
    fn dispatch(&mut self, kind: (&str, &str), obj: &Value) -> Vec<AgentEvent> {
        match kind {
            ("system", "init") => {
                if let Some(id) = str_of(obj, "session_id").filter(|s| !s.is_empty()) {
                    self.thread_id = Some(id.to_string());
                }
                self.init_emitted = true;
                vec![AgentEvent::Init {
                    thread_id: self.thread_id.clone(),
                    model: str_of(obj, "model").map(str::to_string),
                    cwd: str_of(obj, "cwd").map(str::to_string),
                    tools: obj
                        .get("tools")
                        .and_then(Value::as_array)
                        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                        .unwrap_or_default(),
                }]
            }
            ("system", sub) => {
                vec![AgentEvent::Notice { subtype: format!("system/{sub}"), message: clip_json(obj) }]
            }
            ("user", _) => self.on_user(obj),
            ("assistant", _) => self.on_assistant(obj),
            ("result", _) => self.on_result(obj),
            ("error", _) => {
                let message = str_of(obj, "error")
                    .or_else(|| str_of(obj, "message"))
                    .map(str::to_string)
                    .unwrap_or_else(|| clip_json(obj));
                self.last_error = Some(message.clone());
                vec![AgentEvent::Error { message, fatal: true }]
            }
            (other, _) => vec![AgentEvent::Notice {
                subtype: if other.is_empty() { "unknown".to_string() } else { other.to_string() },
                message: clip_json(obj),
            }],
        }
    }

    fn outcome(&mut self, exit: &ExitInfo) -> RunOutcome {
        let agent = self.agent();
        let result_ok = match &self.result {
            Some(r) => r.ok,
            // Interactive sessions have no result lines: a clean exit after closing stdin is a success.
            None => self.opts.interactive && self.last_error.is_none(),
        };
        let success = result_ok && exit.is_clean_success();
        let final_text = self
            .result
            .as_ref()
            .and_then(|r| r.text.clone())
            .filter(|t| !t.is_empty())
            .or(self.last_text.clone());
        let stop_reason = self.last_assistant.as_ref().and_then(|(s, _)| s.clone());
        let awaiting_input = success
            && matches!(&self.last_assistant, Some((Some(s), Some(t))) if s == "end_turn" && ends_with_question(t));
        let error = if success {
            None
        } else if self.login_prompt_seen {
            Some(format!(
                "authentication failed: {agent} has no API key and started an interactive login; run \
                 `amp login` or set AMP_API_KEY"
            ))
        } else {
            let reported = match &self.result {
                Some(r) if !r.ok => r.error.clone(),
                Some(_) => None,
                None if exit.is_clean_success() && !self.opts.interactive => {
                    Some(format!("{agent} exited without a result line"))
                }
                None => self.last_error.clone(),
            };
            Some(compose_error(agent, exit, reported.as_deref(), None))
        };
        RunOutcome {
            thread_id: self.thread_id.clone(),
            success,
            usage: self.counted_usage().into_model_usage(),
            reported_cost_usd: None,
            final_text,
            stop_reason,
            error: error.map(|e| classify_error(&e, None)),
            awaiting_input,
            num_turns: self.result.as_ref().and_then(|r| r.num_turns),
            denials: Vec::new(),
        }
    }
}

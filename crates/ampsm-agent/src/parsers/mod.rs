//! Stream parsers, one per vendor, and the helpers they share: bounded text, tolerant JSON field access,
//! error classification (authentication, credits, rate limits), the awaiting-input rule.

pub mod amp;
mod anthropic_blocks;
pub mod claude;
pub mod codex;
pub mod command;
pub mod gemini;
pub mod opencode;

use crate::spec::ExitInfo;
use ampsm_core::event::OutputStream;
use ampsm_core::{AgentEvent, ModelUsage, TokenUsage};
use serde_json::Value;

/// Tool outputs are cut to this many bytes.
pub const MAX_TOOL_OUTPUT_BYTES: usize = 64 * 1024;

/// Final texts kept by parsers are cut to this many bytes (the events hold the full text).
pub(crate) const MAX_FINAL_TEXT_BYTES: usize = 256 * 1024;

/// How much of the stderr tail goes into an error message.
const STDERR_IN_ERROR_BYTES: usize = 2000;

/// The largest prefix of `s` of at most `max` bytes that ends on a char boundary.
pub(crate) fn prefix_at_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The largest suffix of `s` of at most `max` bytes that starts on a char boundary.
pub(crate) fn suffix_at_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while start < s.len() && !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// `s` cut to [`MAX_TOOL_OUTPUT_BYTES`], with a note saying how much was dropped.
pub fn truncate_output(s: &str) -> String {
    truncate_with_note(s, MAX_TOOL_OUTPUT_BYTES)
}

pub(crate) fn truncate_with_note(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let kept = prefix_at_boundary(s, max);
    format!("{kept}\n… [truncated {} bytes]", s.len() - kept.len())
}

/// A short one-line rendering of a JSON value for notices.
pub(crate) fn clip_json(v: &Value) -> String {
    let s = v.to_string();
    truncate_with_note(&s, 400)
}

/// The stdout line as plain output (not JSON, or a command adapter's output).
pub(crate) fn plain_output(line: &str) -> AgentEvent {
    AgentEvent::Output { stream: OutputStream::Stdout, text: line.to_string(), truncated: false }
}

/// Parses a line that should hold one JSON object. `Err` holds the events for a line that is not one
/// (nothing for a blank line, plain output otherwise).
pub(crate) fn parse_object(line: &str) -> Result<serde_json::Map<String, Value>, Vec<AgentEvent>> {
    let trimmed = line.trim();
    if trimmed.is_empty() {
        return Err(Vec::new());
    }
    match serde_json::from_str::<Value>(trimmed) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(vec![plain_output(line)]),
    }
}

pub(crate) fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// A non-negative integer field; also accepts a non-negative finite float (truncated).
pub(crate) fn u64_of(v: &Value, key: &str) -> Option<u64> {
    as_u64_lenient(v.get(key)?)
}

pub(crate) fn as_u64_lenient(v: &Value) -> Option<u64> {
    if let Some(n) = v.as_u64() {
        return Some(n);
    }
    let f = v.as_f64()?;
    if f.is_finite() && f >= 0.0 && f < u64::MAX as f64 { Some(f as u64) } else { None }
}

pub(crate) fn i64_of(v: &Value, key: &str) -> Option<i64> {
    let x = v.get(key)?;
    x.as_i64().or_else(|| x.as_f64().filter(|f| f.is_finite() && f.fract() == 0.0).map(|f| f as i64))
}

pub(crate) fn f64_of(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64).filter(|f| f.is_finite())
}

pub(crate) fn bool_of(v: &Value, key: &str) -> Option<bool> {
    v.get(key).and_then(Value::as_bool)
}

/// Text of a content value: a string, or the `text` of the blocks of an array joined by newlines, or
/// the JSON itself for anything else.
pub(crate) fn content_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let mut parts = Vec::new();
            for item in items {
                match item {
                    Value::String(s) => parts.push(s.clone()),
                    other => match str_of(other, "text") {
                        Some(t) => parts.push(t.to_string()),
                        None => parts.push(other.to_string()),
                    },
                }
            }
            parts.join("\n")
        }
        other => other.to_string(),
    }
}

/// The awaiting-input rule on text: its last non-empty line ends with a question mark.
pub(crate) fn ends_with_question(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .is_some_and(|l| l.ends_with('?') || l.ends_with('？'))
}

/// Whether `text` contains `code` as a whole number (not inside a longer number).
fn contains_number(text: &str, code: &str) -> bool {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(pos) = text[from..].find(code) {
        let start = from + pos;
        let end = start + code.len();
        let before_ok = start == 0 || !bytes[start - 1].is_ascii_digit();
        let after_ok = end >= bytes.len() || !bytes[end].is_ascii_digit();
        if before_ok && after_ok {
            return true;
        }
        from = start + 1;
        if from >= text.len() {
            break;
        }
    }
    false
}

/// The class prefixes put in front of agent error texts.
pub const AUTH_PREFIX: &str = "authentication failed: ";
pub const CREDITS_PREFIX: &str = "out of credits: ";
pub const RATE_PREFIX: &str = "rate limited: ";
pub const OVERLOADED_PREFIX: &str = "service overloaded: ";

/// Puts a class prefix in front of an error text when it is about authentication, credits, rate limits
/// or overload; `status` is an HTTP status the agent reported alongside, if any.
pub fn classify_error(text: &str, status: Option<u64>) -> String {
    let lower = text.to_lowercase();
    if [AUTH_PREFIX, CREDITS_PREFIX, RATE_PREFIX, OVERLOADED_PREFIX].iter().any(|p| lower.starts_with(p)) {
        return text.to_string();
    }
    let has = |needles: &[&str]| needles.iter().any(|n| lower.contains(n));
    let prefix = if matches!(status, Some(401) | Some(403))
        || contains_number(&lower, "401")
        || has(&[
            "invalid api key",
            "invalid x-api-key",
            "authentication_failed",
            "authentication failed",
            "authentication error",
            "unauthorized",
            "please run /login",
            "not logged in",
            "oauth token has expired",
            "no api key found",
        ]) {
        Some(AUTH_PREFIX)
    } else if status == Some(402)
        || has(&["credit", "insufficient_quota", "billing_error", "billing error", "out of funds"])
    {
        Some(CREDITS_PREFIX)
    } else if status == Some(429)
        || contains_number(&lower, "429")
        || has(&[
            "rate limit",
            "rate_limit",
            "ratelimit",
            "too many requests",
            "usage limit",
            "session limit",
        ])
    {
        Some(RATE_PREFIX)
    } else if status == Some(529) || contains_number(&lower, "529") || has(&["overloaded"]) {
        Some(OVERLOADED_PREFIX)
    } else {
        None
    };
    match prefix {
        Some(p) => format!("{p}{text}"),
        None => text.to_string(),
    }
}

/// The error text of a failed run: the agent's own error when it gave one, what happened to the process,
/// and the end of stderr, classified.
pub(crate) fn compose_error(
    agent: &str,
    exit: &ExitInfo,
    reported: Option<&str>,
    status: Option<u64>,
) -> String {
    let reported = reported.map(str::trim).filter(|r| !r.is_empty());
    let mut msg = match (exit.failure_reason(), reported) {
        (Some(reason), Some(rep)) => format!("{agent} {reason}: {rep}"),
        (None, Some(rep)) => rep.to_string(),
        (Some(reason), None) => format!("{agent} {reason}"),
        (None, None) => format!("{agent} ended without reporting a result"),
    };
    let stderr = suffix_at_boundary(exit.stderr_tail.trim(), STDERR_IN_ERROR_BYTES).trim();
    if !stderr.is_empty() && !msg.contains(stderr) {
        msg.push_str("; stderr: ");
        msg.push_str(stderr);
    }
    classify_error(&msg, status)
}

/// Usage added up per model, in first-seen order.
#[derive(Debug, Clone, Default)]
pub(crate) struct UsageByModel {
    entries: Vec<(Option<String>, TokenUsage, Option<f64>)>,
}

impl UsageByModel {
    pub(crate) fn add(&mut self, model: Option<&str>, usage: &TokenUsage, cost: Option<f64>) {
        match self.entries.iter_mut().find(|(m, _, _)| m.as_deref() == model) {
            Some((_, u, c)) => {
                u.add(usage);
                if let Some(x) = cost {
                    *c = Some(c.unwrap_or(0.0) + x);
                }
            }
            None => self.entries.push((model.map(str::to_string), *usage, cost)),
        }
    }

    pub(crate) fn into_model_usage(self) -> Vec<ModelUsage> {
        self.entries
            .into_iter()
            .filter(|(_, u, c)| !u.is_zero() || c.is_some_and(|c| c > 0.0))
            .map(|(model, usage, reported_cost_usd)| ModelUsage { model, usage, reported_cost_usd })
            .collect()
    }
}

/// Anthropic-style usage (`input_tokens`, `cache_creation_input_tokens`, `cache_read_input_tokens`,
/// `output_tokens`). `max_tokens`, `service_tier` and the like are not usage and are ignored.
pub(crate) fn anthropic_usage(u: &Value) -> TokenUsage {
    TokenUsage {
        input: u64_of(u, "input_tokens").unwrap_or(0),
        output: u64_of(u, "output_tokens").unwrap_or(0),
        cache_read: u64_of(u, "cache_read_input_tokens").unwrap_or(0),
        cache_write: u64_of(u, "cache_creation_input_tokens").unwrap_or(0),
        reasoning: 0,
    }
}

/// `a − b` field by field, never below zero.
pub(crate) fn minus(a: &TokenUsage, b: &TokenUsage) -> TokenUsage {
    TokenUsage {
        input: a.input.saturating_sub(b.input),
        output: a.output.saturating_sub(b.output),
        cache_read: a.cache_read.saturating_sub(b.cache_read),
        cache_write: a.cache_write.saturating_sub(b.cache_write),
        reasoning: a.reasoning.saturating_sub(b.reasoning),
    }
}

/// All models' usage added up.
pub(crate) fn sum_usage(usage: &[ModelUsage]) -> TokenUsage {
    let mut total = TokenUsage::default();
    for m in usage {
        total.add(&m.usage);
    }
    total
}

/// A bounded text accumulator for the final answer.
pub(crate) fn push_bounded(buf: &mut String, text: &str) {
    if buf.len() >= MAX_FINAL_TEXT_BYTES {
        return;
    }
    let room = MAX_FINAL_TEXT_BYTES - buf.len();
    buf.push_str(prefix_at_boundary(text, room));
}

/// Whether a tool's error output says the call was not allowed (a permission rule, a sandbox, the user),
/// judged on its first 300 bytes so that a long log that mentions permissions somewhere does not count.
pub(crate) fn says_permission_denied(output: &str) -> bool {
    let head = prefix_at_boundary(output, 300).to_lowercase();
    (head.contains("permission")
        && (head.contains("denied") || head.contains("reject") || head.contains("not granted")))
        || head.contains("requires approval")
        || head.contains("needs approval")
        || head.contains("rejected by the user")
        || head.contains("not allowed by")
}

/// A value that is itself the detail (a command string or argv array), shortened.
pub(crate) fn input_detail_of_value(v: &Value) -> Option<String> {
    input_detail(&serde_json::json!({ "command": v }))
}

/// A short description of what a tool call is about, for denial lists: its path or command.
pub fn input_detail(input: &Value) -> Option<String> {
    for key in ["file_path", "path", "notebook_path", "command", "cmd", "filePattern", "pattern", "url"] {
        match input.get(key) {
            Some(Value::String(s)) if !s.trim().is_empty() => {
                return Some(prefix_at_boundary(s.trim(), 200).to_string());
            }
            Some(Value::Array(parts)) if !parts.is_empty() => {
                let joined: Vec<&str> = parts.iter().filter_map(Value::as_str).collect();
                return Some(prefix_at_boundary(&joined.join(" "), 200).to_string());
            }
            _ => {}
        }
    }
    None
}

/// The `permission_denials` of a result line as events: Claude Code's objects (`tool_name`, `tool_use_id`,
/// `tool_input`) or Amp's tool names. Calls whose id is in `seen` (already reported) are left out.
pub(crate) fn result_denials(obj: &Value, seen: &std::collections::HashSet<String>) -> Vec<AgentEvent> {
    let Some(list) = obj.get("permission_denials").and_then(Value::as_array) else { return Vec::new() };
    list.iter()
        .filter_map(|d| match d {
            Value::String(tool) => Some(AgentEvent::PermissionDenied {
                call_id: None,
                tool: tool.clone(),
                detail: None,
                reason: None,
            }),
            Value::Object(_) => {
                let call_id = str_of(d, "tool_use_id").map(str::to_string);
                if call_id.as_ref().is_some_and(|c| seen.contains(c)) {
                    return None;
                }
                Some(AgentEvent::PermissionDenied {
                    call_id,
                    tool: str_of(d, "tool_name").unwrap_or("tool").to_string(),
                    detail: d.get("tool_input").and_then(input_detail),
                    reason: None,
                })
            }
            _ => None,
        })
        .collect()
}

/// Claude-compatible streams (Amp, Claude Code) put the thread id on every line as `session_id`. Remembers
/// the first one and, when a line other than `system/init` comes before init, emits an `Init` for it, so the
/// engine stores the thread id as soon as it appears.
pub(crate) fn note_session_id(
    obj: &Value,
    kind: (&str, &str),
    thread_id: &mut Option<String>,
    init_emitted: &mut bool,
    events: &mut Vec<AgentEvent>,
) {
    let Some(id) = str_of(obj, "session_id").filter(|s| !s.is_empty()) else { return };
    if thread_id.is_none() {
        *thread_id = Some(id.to_string());
    }
    if !*init_emitted && kind != ("system", "init") {
        *init_emitted = true;
        events.push(AgentEvent::Init {
            thread_id: Some(id.to_string()),
            model: None,
            cwd: None,
            tools: Vec::new(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_rule_looks_at_last_non_empty_line_only() {
        assert!(ends_with_question("Done.\n\nShould I also update the docs?\n\n"));
        assert!(!ends_with_question("Is this right? I fixed it.\nAll tests pass."));
        assert!(!ends_with_question(""));
        assert!(!ends_with_question("What now?\nNothing else."));
    }

    #[test]
    fn classification() {
        assert_eq!(
            classify_error("Invalid API key · Please run /login", Some(401)),
            "authentication failed: Invalid API key · Please run /login"
        );
        assert!(classify_error("HTTP 401 from server", None).starts_with(AUTH_PREFIX));
        assert!(!classify_error("took 4012 ms", None).starts_with(AUTH_PREFIX));
        assert!(classify_error("Credit balance is too low", None).starts_with(CREDITS_PREFIX));
        assert!(classify_error("Rate limit exceeded", None).starts_with(RATE_PREFIX));
        assert!(classify_error("status 429", None).starts_with(RATE_PREFIX));
        assert!(
            classify_error("upstream model returned 529 overloaded", None).starts_with(OVERLOADED_PREFIX)
        );
        assert_eq!(classify_error("disk full", None), "disk full");
        let once = classify_error("Rate limit", None);
        assert_eq!(classify_error(&once, None), once);
    }

    #[test]
    fn truncation_keeps_char_boundaries() {
        let s = "é".repeat(40_000); // 80 000 bytes
        let t = truncate_output(&s);
        assert!(t.len() < 64 * 1024 + 64);
        assert!(t.contains("[truncated"));
        assert_eq!(suffix_at_boundary("aé", 1), "");
        assert_eq!(prefix_at_boundary("éa", 1), "");
    }

    #[test]
    fn compose_error_mentions_process_and_stderr() {
        let exit = ExitInfo::code(1, "Error: Couldn't connect to the Amp server at http://127.0.0.1:9.\n");
        let e = compose_error("amp", &exit, None, None);
        assert_eq!(
            e,
            "amp exited with code 1; stderr: Error: Couldn't connect to the Amp server at http://127.0.0.1:9."
        );
        let timed = ExitInfo { timed_out: true, ..Default::default() };
        assert_eq!(compose_error("codex", &timed, None, None), "codex timed out and was stopped");
    }
}

//! Content blocks of the Claude-compatible stream that Amp and Claude Code share: assistant text, thinking,
//! tool calls, and user tool results (with Amp's `{"output","exitCode"}` Bash results).

use super::{bool_of, clip_json, content_text, i64_of, str_of, truncate_output};
use ampsm_core::AgentEvent;
use serde_json::Value;

/// The events of an assistant message's `content`, and the last text block in it.
pub(crate) fn assistant_blocks(content: &Value) -> (Vec<AgentEvent>, Option<String>) {
    let mut events = Vec::new();
    let mut last_text = None;
    match content {
        Value::String(s) => {
            events.push(AgentEvent::AssistantText { text: s.clone(), delta: false });
            last_text = Some(s.clone());
        }
        Value::Array(blocks) => {
            for block in blocks {
                match str_of(block, "type").unwrap_or("") {
                    "text" => {
                        let text = str_of(block, "text").unwrap_or("").to_string();
                        last_text = Some(text.clone());
                        events.push(AgentEvent::AssistantText { text, delta: false });
                    }
                    "thinking" => events.push(AgentEvent::Thinking {
                        text: str_of(block, "thinking").unwrap_or("").to_string(),
                    }),
                    "redacted_thinking" => {
                        events.push(AgentEvent::Thinking { text: "[redacted thinking]".to_string() })
                    }
                    "tool_use" | "server_tool_use" => events.push(AgentEvent::ToolUse {
                        call_id: str_of(block, "id").unwrap_or("").to_string(),
                        name: str_of(block, "name").unwrap_or("").to_string(),
                        input: block.get("input").cloned().unwrap_or(Value::Null),
                    }),
                    "web_search_tool_result" => events.push(tool_result(block)),
                    other => events.push(AgentEvent::Notice {
                        subtype: format!("assistant_block/{other}"),
                        message: clip_json(block),
                    }),
                }
            }
        }
        Value::Null => {}
        other => events
            .push(AgentEvent::Notice { subtype: "assistant_content".to_string(), message: clip_json(other) }),
    }
    (events, last_text)
}

/// The events of a user message's `content`; the texts it carried are returned too (in order).
pub(crate) fn user_blocks(content: &Value, replay: bool) -> (Vec<AgentEvent>, Vec<String>) {
    let mut events = Vec::new();
    let mut texts = Vec::new();
    match content {
        Value::String(s) => {
            texts.push(s.clone());
            events.push(AgentEvent::UserText { text: s.clone(), replay });
        }
        Value::Array(blocks) => {
            for block in blocks {
                match str_of(block, "type").unwrap_or("") {
                    "text" => {
                        let text = str_of(block, "text").unwrap_or("").to_string();
                        texts.push(text.clone());
                        events.push(AgentEvent::UserText { text, replay });
                    }
                    "tool_result" => events.push(tool_result(block)),
                    other => events.push(AgentEvent::Notice {
                        subtype: format!("user_block/{other}"),
                        message: clip_json(block),
                    }),
                }
            }
        }
        Value::Null => {}
        other => {
            events.push(AgentEvent::Notice { subtype: "user_content".to_string(), message: clip_json(other) })
        }
    }
    (events, texts)
}

/// One `tool_result` block. Amp's Bash puts a JSON *string* `{"output": …, "exitCode": N}` in `content`:
/// then the exit code is taken from it and the call is ok only when it is 0 and `is_error` is false.
pub(crate) fn tool_result(block: &Value) -> AgentEvent {
    let call_id = str_of(block, "tool_use_id").unwrap_or("").to_string();
    let is_error = bool_of(block, "is_error").unwrap_or(false);
    let raw = content_text(block.get("content").unwrap_or(&Value::Null));
    let mut exit_code = None;
    let mut output = None;
    if raw.trim_start().starts_with('{')
        && let Ok(inner @ Value::Object(_)) = serde_json::from_str::<Value>(&raw)
        && let Some(code) = i64_of(&inner, "exitCode")
    {
        exit_code = Some(code);
        output = Some(match inner.get("output") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        });
    }
    let ok = !is_error && exit_code.is_none_or(|c| c == 0);
    AgentEvent::ToolResult {
        call_id,
        ok,
        output: truncate_output(output.as_deref().unwrap_or(&raw)),
        exit_code,
        duration_ms: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn amp_bash_result_takes_exit_code_from_the_json_string() {
        let block = json!({"type":"tool_result","tool_use_id":"t1",
            "content":"{\"output\":\"boom\\n\",\"exitCode\":2}","is_error":false});
        assert_eq!(
            tool_result(&block),
            AgentEvent::ToolResult {
                call_id: "t1".into(),
                ok: false,
                output: "boom\n".into(),
                exit_code: Some(2),
                duration_ms: None
            }
        );
        let ok =
            json!({"type":"tool_result","tool_use_id":"t2","content":"{\"output\":\"\",\"exitCode\":0}"});
        assert!(matches!(tool_result(&ok), AgentEvent::ToolResult { ok: true, exit_code: Some(0), .. }));
        let err = json!({"type":"tool_result","tool_use_id":"t3","content":"{\"output\":\"\",\"exitCode\":0}",
            "is_error":true});
        assert!(matches!(tool_result(&err), AgentEvent::ToolResult { ok: false, .. }));
    }

    #[test]
    fn plain_and_block_contents() {
        let block = json!({"type":"tool_result","tool_use_id":"t","content":[{"type":"text","text":"a"},
            {"type":"text","text":"b"}]});
        assert!(
            matches!(tool_result(&block), AgentEvent::ToolResult { ref output, ok: true, exit_code: None, .. }
            if output == "a\nb")
        );
    }
}

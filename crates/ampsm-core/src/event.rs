//! The normalized agent event model. Every adapter maps its vendor's stream lines onto [`AgentEvent`]; the
//! store keeps each raw line next to its normalized form, and metrics are computed from these events and
//! from the run's [`RunOutcome`], never from prose.

use serde::{Deserialize, Serialize};

/// Token counts. `input` is *uncached* input: for OpenAI-style reports (where cached tokens are a subset of
/// input) adapters store `input_tokens − cached_input_tokens` here and the cached part in `cache_read`, so
/// `input + cache_read` is always the prompt size the model saw. `output` includes reasoning tokens;
/// `reasoning` repeats how many of them were reasoning, for display only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    #[serde(default)]
    pub input: u64,
    #[serde(default)]
    pub output: u64,
    #[serde(default)]
    pub cache_read: u64,
    #[serde(default)]
    pub cache_write: u64,
    #[serde(default)]
    pub reasoning: u64,
}

impl TokenUsage {
    /// All tokens billed: input + output + cache reads + cache writes.
    pub fn total(&self) -> u64 {
        self.input + self.output + self.cache_read + self.cache_write
    }

    pub fn add(&mut self, other: &TokenUsage) {
        self.input += other.input;
        self.output += other.output;
        self.cache_read += other.cache_read;
        self.cache_write += other.cache_write;
        self.reasoning += other.reasoning;
    }

    pub fn is_zero(&self) -> bool {
        self.total() == 0 && self.reasoning == 0
    }
}

/// Usage of one model within a run, with the cost the agent itself reported when it did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelUsage {
    /// The model name as the agent reported it; `None` when the stream does not say (Amp).
    pub model: Option<String>,
    pub usage: TokenUsage,
    /// Cost in USD reported by the agent for this model, if it reports cost.
    pub reported_cost_usd: Option<f64>,
}

/// One normalized agent event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AgentEvent {
    /// The agent started (or resumed) a thread. `thread_id` is what continues it later.
    Init {
        thread_id: Option<String>,
        model: Option<String>,
        cwd: Option<String>,
        #[serde(default)]
        tools: Vec<String>,
    },
    /// A user message: the prompt echoed back, or a replayed earlier turn (`replay`).
    UserText {
        text: String,
        #[serde(default)]
        replay: bool,
    },
    /// Assistant text. `delta` marks a fragment that continues the previous text event.
    AssistantText {
        text: String,
        #[serde(default)]
        delta: bool,
    },
    /// Reasoning text, when the agent shows it.
    Thinking { text: String },
    /// The agent called a tool.
    ToolUse { call_id: String, name: String, input: serde_json::Value },
    /// A tool call ended; `call_id` pairs it with its [`AgentEvent::ToolUse`].
    ToolResult {
        call_id: String,
        ok: bool,
        /// The tool's output, truncated to a bounded length.
        output: String,
        exit_code: Option<i64>,
        /// How long the tool ran, when the agent reports it (OpenCode sends start and end in one line, so
        /// the timestamps of the two stored lines cannot give it). `None`: derive it from the line times.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_ms: Option<u64>,
    },
    /// Token usage reported by one model call (informational; the run's totals are in [`RunOutcome`]).
    Usage {
        model: Option<String>,
        usage: TokenUsage,
        /// Provider message id, when usage lines repeat per content block.
        message_id: Option<String>,
    },
    /// A file the agent changed, when the agent reports it (Codex `file_change`).
    FileChange { path: String, change: String },
    /// The agent ended a turn.
    TurnEnd { stop_reason: Option<String> },
    /// The run's final line.
    Result {
        ok: bool,
        subtype: Option<String>,
        text: Option<String>,
        error: Option<String>,
        duration_ms: Option<u64>,
        num_turns: Option<u64>,
        cost_usd: Option<f64>,
    },
    /// The agent retries a failed model call.
    Retry { attempt: Option<u64>, message: String },
    /// An error the agent reported. `fatal` errors end the run.
    Error { message: String, fatal: bool },
    /// Informational line (system subtypes, hooks, notices, unknown types).
    Notice { subtype: String, message: String },
    /// The agent asks whether it may run a tool call (the `ask` policy). `request_id` is the agent's id of
    /// the request, used in the answer.
    PermissionRequest { request_id: String, call_id: Option<String>, tool: String, input: serde_json::Value },
    /// A tool call was not allowed (by the policy, the agent's sandbox, or the user).
    PermissionDenied { call_id: Option<String>, tool: String, detail: Option<String>, reason: Option<String> },
    /// Plain output: a non-JSON line, or output of a command adapter. `truncated` when the line was cut at
    /// the length cap.
    Output {
        stream: OutputStream,
        text: String,
        #[serde(default)]
        truncated: bool,
    },
}

/// Which pipe a plain output line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// Stable short names for [`AgentEvent`] variants (stored in the `kind` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Init,
    UserText,
    AssistantText,
    Thinking,
    ToolUse,
    ToolResult,
    Usage,
    FileChange,
    TurnEnd,
    Result,
    Retry,
    Error,
    Notice,
    PermissionRequest,
    PermissionDenied,
    Output,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Init => "init",
            EventKind::UserText => "user_text",
            EventKind::AssistantText => "assistant_text",
            EventKind::Thinking => "thinking",
            EventKind::ToolUse => "tool_use",
            EventKind::ToolResult => "tool_result",
            EventKind::Usage => "usage",
            EventKind::FileChange => "file_change",
            EventKind::TurnEnd => "turn_end",
            EventKind::Result => "result",
            EventKind::Retry => "retry",
            EventKind::Error => "error",
            EventKind::Notice => "notice",
            EventKind::PermissionRequest => "permission_request",
            EventKind::PermissionDenied => "permission_denied",
            EventKind::Output => "output",
        }
    }
}

impl AgentEvent {
    pub fn kind(&self) -> EventKind {
        match self {
            AgentEvent::Init { .. } => EventKind::Init,
            AgentEvent::UserText { .. } => EventKind::UserText,
            AgentEvent::AssistantText { .. } => EventKind::AssistantText,
            AgentEvent::Thinking { .. } => EventKind::Thinking,
            AgentEvent::ToolUse { .. } => EventKind::ToolUse,
            AgentEvent::ToolResult { .. } => EventKind::ToolResult,
            AgentEvent::Usage { .. } => EventKind::Usage,
            AgentEvent::FileChange { .. } => EventKind::FileChange,
            AgentEvent::TurnEnd { .. } => EventKind::TurnEnd,
            AgentEvent::Result { .. } => EventKind::Result,
            AgentEvent::Retry { .. } => EventKind::Retry,
            AgentEvent::Error { .. } => EventKind::Error,
            AgentEvent::Notice { .. } => EventKind::Notice,
            AgentEvent::PermissionRequest { .. } => EventKind::PermissionRequest,
            AgentEvent::PermissionDenied { .. } => EventKind::PermissionDenied,
            AgentEvent::Output { .. } => EventKind::Output,
        }
    }

    /// A one-line human rendering for `logs`.
    pub fn summary(&self) -> String {
        fn clip(s: &str) -> String {
            let one_line = s.replace('\n', " ⏎ ");
            if one_line.chars().count() > 160 {
                format!("{}…", one_line.chars().take(160).collect::<String>())
            } else {
                one_line
            }
        }
        match self {
            AgentEvent::Init { thread_id, model, .. } => format!(
                "init thread={} model={}",
                thread_id.as_deref().unwrap_or("-"),
                model.as_deref().unwrap_or("-")
            ),
            AgentEvent::UserText { text, replay } => {
                format!("{}user: {}", if *replay { "(replay) " } else { "" }, clip(text))
            }
            AgentEvent::AssistantText { text, .. } => format!("assistant: {}", clip(text)),
            AgentEvent::Thinking { text } => format!("thinking: {}", clip(text)),
            AgentEvent::ToolUse { name, input, call_id } => {
                format!("tool_use {name} [{call_id}] {}", clip(&input.to_string()))
            }
            AgentEvent::ToolResult { call_id, ok, output, .. } => {
                format!("tool_result [{call_id}] {} {}", if *ok { "ok" } else { "FAILED" }, clip(output))
            }
            AgentEvent::Usage { model, usage, .. } => format!(
                "usage model={} in={} out={} cache_read={} cache_write={}",
                model.as_deref().unwrap_or("-"),
                usage.input,
                usage.output,
                usage.cache_read,
                usage.cache_write
            ),
            AgentEvent::FileChange { path, change } => format!("file {change} {path}"),
            AgentEvent::TurnEnd { stop_reason } => {
                format!("turn end ({})", stop_reason.as_deref().unwrap_or("-"))
            }
            AgentEvent::Result { ok, text, error, .. } => format!(
                "result {}: {}",
                if *ok { "success" } else { "error" },
                clip(error.as_deref().or(text.as_deref()).unwrap_or(""))
            ),
            AgentEvent::Retry { attempt, message } => {
                format!("retry {}: {}", attempt.map(|a| a.to_string()).unwrap_or_default(), clip(message))
            }
            AgentEvent::Error { message, fatal } => {
                format!("{}error: {}", if *fatal { "fatal " } else { "" }, clip(message))
            }
            AgentEvent::Notice { subtype, message } => format!("{subtype}: {}", clip(message)),
            AgentEvent::PermissionRequest { tool, input, .. } => {
                format!("asks permission: {tool} {}", clip(&input.to_string()))
            }
            AgentEvent::PermissionDenied { tool, detail, reason, .. } => format!(
                "DENIED {tool}{}{}",
                detail.as_deref().map(|d| format!(" ({})", clip(d))).unwrap_or_default(),
                reason.as_deref().map(|r| format!(": {}", clip(r))).unwrap_or_default()
            ),
            AgentEvent::Output { stream, text, truncated } => format!(
                "{}{}: {}",
                match stream {
                    OutputStream::Stdout => "stdout",
                    OutputStream::Stderr => "stderr",
                },
                if *truncated { " (truncated)" } else { "" },
                clip(text)
            ),
        }
    }
}

/// What one agent run amounted to, computed by the adapter's parser once the stream ended. Token totals
/// here are counted once, by the rule of each vendor's stream (see the adapters).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunOutcome {
    /// Thread/session id to continue later.
    pub thread_id: Option<String>,
    /// Whether the agent reported success (a success result, or exit 0 for agents without one).
    pub success: bool,
    /// Usage per model, counted once.
    pub usage: Vec<ModelUsage>,
    /// Total cost reported by the agent, when it reports cost.
    pub reported_cost_usd: Option<f64>,
    /// The final assistant text.
    pub final_text: Option<String>,
    pub stop_reason: Option<String>,
    pub error: Option<String>,
    /// The agent ended its turn waiting for the user (a question, or a stop reason that asks).
    pub awaiting_input: bool,
    pub num_turns: Option<u64>,
    /// Tool calls the agent was not allowed to make, in the order they were refused.
    #[serde(default)]
    pub denials: Vec<crate::Denial>,
}

impl RunOutcome {
    /// Sum over all models.
    pub fn total_usage(&self) -> TokenUsage {
        let mut total = TokenUsage::default();
        for m in &self.usage {
            total.add(&m.usage);
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_as_tagged_json() {
        let ev = AgentEvent::ToolResult {
            call_id: "t1".into(),
            ok: true,
            output: "done".into(),
            exit_code: Some(0),
            duration_ms: None,
        };
        let json = serde_json::to_string(&ev).unwrap();
        assert!(json.contains("\"kind\":\"tool_result\""));
        let back: AgentEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(back, ev);
        assert_eq!(back.kind().as_str(), "tool_result");
    }

    #[test]
    fn usage_sums() {
        let mut a = TokenUsage { input: 1, output: 2, cache_read: 3, cache_write: 4, reasoning: 0 };
        a.add(&TokenUsage { input: 10, ..Default::default() });
        assert_eq!(a.total(), 20);
    }
}

//! Every vendor parser on the fixture lines of agent-protocols.md: exact token totals, paired tool calls,
//! thread ids, success and failure, awaiting-input.

use ampsm_agent::parsers::amp::{AmpParser, AmpParserOptions};
use ampsm_agent::parsers::claude::ClaudeParser;
use ampsm_agent::parsers::codex::CodexParser;
use ampsm_agent::parsers::command::CommandParser;
use ampsm_agent::parsers::gemini::GeminiParser;
use ampsm_agent::parsers::opencode::OpenCodeParser;
use ampsm_agent::{ExitInfo, RunSpec, StreamParser, adapter_for};
use ampsm_core::event::OutputStream;
use ampsm_core::{AgentEvent, ModelUsage, TokenUsage};

const AMP_ONESHOT: &str = include_str!("fixtures/amp_oneshot.jsonl");
const AMP_ERROR: &str = include_str!("fixtures/amp_error.jsonl");
const AMP_CONTINUED: &str = include_str!("fixtures/amp_continued.jsonl");
const CLAUDE_ONESHOT: &str = include_str!("fixtures/claude_oneshot.jsonl");
const CLAUDE_ERRORS: &str = include_str!("fixtures/claude_errors.jsonl");
const CODEX_ONESHOT: &str = include_str!("fixtures/codex_oneshot.jsonl");
const CODEX_FAILURE: &str = include_str!("fixtures/codex_failure.jsonl");
const GEMINI_ONESHOT: &str = include_str!("fixtures/gemini_oneshot.jsonl");
const OPENCODE_ONESHOT: &str = include_str!("fixtures/opencode_oneshot.jsonl");

const AMP_PROMPT: &str = "Resolve the following GitHub issue in this repository.\n\nModeling's separability_matrix \
                          does not compute separability correctly for nested CompoundModels";

fn feed(parser: &mut dyn StreamParser, text: &str) -> Vec<AgentEvent> {
    text.lines().flat_map(|l| parser.parse_line(l)).collect()
}

fn amp(prompt: &str, continued: bool) -> AmpParser {
    AmpParser::new(AmpParserOptions { prompt: prompt.into(), continued, interactive: false, agent: "amp" })
}

fn usage(input: u64, output: u64, cache_read: u64, cache_write: u64) -> TokenUsage {
    TokenUsage { input, output, cache_read, cache_write, reasoning: 0 }
}

/// `(call_id, name, ok, exit_code)` of every ToolUse, checked to have exactly one ToolResult after it.
fn paired_tools(events: &[AgentEvent]) -> Vec<(String, String, bool, Option<i64>)> {
    let mut out = Vec::new();
    for (i, ev) in events.iter().enumerate() {
        if let AgentEvent::ToolUse { call_id, name, .. } = ev {
            let results: Vec<_> = events
                .iter()
                .enumerate()
                .filter(|(_, e)| matches!(e, AgentEvent::ToolResult { call_id: c, .. } if c == call_id))
                .collect();
            assert_eq!(results.len(), 1, "tool call {call_id} must have exactly one result");
            let (j, AgentEvent::ToolResult { ok, exit_code, .. }) = results[0] else { unreachable!() };
            assert!(j > i, "the result of {call_id} comes after its call");
            out.push((call_id.clone(), name.clone(), *ok, *exit_code));
        }
    }
    let results = events.iter().filter(|e| matches!(e, AgentEvent::ToolResult { .. })).count();
    assert_eq!(results, out.len(), "every result has a call");
    out
}

fn first_init_thread(events: &[AgentEvent]) -> Option<String> {
    events.iter().find_map(|e| match e {
        AgentEvent::Init { thread_id, .. } => thread_id.clone(),
        _ => None,
    })
}

// ---------------------------------------------------------------- Amp

#[test]
fn amp_one_shot_sums_assistant_usage_and_pairs_tools() {
    let mut p = amp(AMP_PROMPT, false);
    let events = feed(&mut p, AMP_ONESHOT);
    assert!(matches!(&events[0], AgentEvent::Init { thread_id: Some(t), cwd: Some(c), tools, .. }
        if t == "T-019a6f3e-5c21-7d40-9b8e-2f4a1c0d9e73" && c.ends_with("astropy__astropy-12907") && tools.len() == 11));
    assert!(matches!(&events[1], AgentEvent::UserText { text, replay: false } if text == AMP_PROMPT));
    assert!(events.iter().any(|e| matches!(e, AgentEvent::Thinking { text } if text.contains("_cstack"))));
    let tools = paired_tools(&events);
    let names: Vec<_> = tools.iter().map(|t| t.1.as_str()).collect();
    assert_eq!(names, ["Grep", "Read", "edit_file", "Bash"]);
    assert!(tools.iter().all(|t| t.2));
    assert_eq!(tools[3].3, Some(0), "Bash exit code comes from the JSON string");
    let bash_output = events.iter().find_map(|e| match e {
        AgentEvent::ToolResult { call_id, output, .. } if call_id == "toolu_01Bs3JfU8w" => {
            Some(output.clone())
        }
        _ => None,
    });
    assert_eq!(bash_output.unwrap(), "...............\n15 passed in 0.41s\n");

    let out = p.finish(&ExitInfo::success());
    assert!(out.success, "{out:?}");
    assert_eq!(out.thread_id.as_deref(), Some("T-019a6f3e-5c21-7d40-9b8e-2f4a1c0d9e73"));
    // 6+8+8+8+8 input, 96+71+188+54+41 output, cache reads 0+14210+14520+14922+15182,
    // cache writes 14210+310+402+260+120; max_tokens/service_tier are not usage.
    assert_eq!(
        out.usage,
        vec![ModelUsage { model: None, usage: usage(38, 450, 58_834, 15_302), reported_cost_usd: None }]
    );
    assert_eq!(out.reported_cost_usd, None);
    assert_eq!(out.num_turns, Some(6));
    assert_eq!(out.stop_reason.as_deref(), Some("end_turn"));
    assert!(out.final_text.unwrap().starts_with("Fixed `_cstack`"));
    assert!(!out.awaiting_input);
    assert_eq!(out.error, None);
    // One Usage event per assistant message, for display.
    assert_eq!(events.iter().filter(|e| matches!(e, AgentEvent::Usage { .. })).count(), 5);
}

#[test]
fn amp_success_result_with_bad_exit_is_a_failure() {
    let mut p = amp(AMP_PROMPT, false);
    feed(&mut p, AMP_ONESHOT);
    let out = p.finish(&ExitInfo::code(1, "Error: something broke\n"));
    assert!(!out.success);
    let err = out.error.unwrap();
    assert!(err.contains("exited with code 1") && err.contains("something broke"), "{err}");
}

#[test]
fn amp_error_result() {
    let mut p = amp("x", false);
    let events = feed(&mut p, AMP_ERROR);
    assert_eq!(first_init_thread(&events).as_deref(), Some("T-019a6f40-0b11-7c2e-8d31-55e0a9f1b2c4"));
    assert!(matches!(events.last(), Some(AgentEvent::Result { ok: false, .. })));
    let out = p.finish(&ExitInfo::code(1, ""));
    assert!(!out.success);
    assert_eq!(out.thread_id.as_deref(), Some("T-019a6f40-0b11-7c2e-8d31-55e0a9f1b2c4"));
    let err = out.error.unwrap();
    assert!(err.starts_with("service overloaded: "), "{err}");
    assert!(err.contains("Inference failed: upstream model returned 529 overloaded"), "{err}");
}

#[test]
fn amp_classifies_auth_credit_and_rate_errors() {
    for (text, prefix) in [
        ("Unauthorized: 401 invalid token", "authentication failed: "),
        ("Out of credit: add credits at ampcode.com", "out of credits: "),
        ("rate limit exceeded (429)", "rate limited: "),
    ] {
        let mut p = amp("x", false);
        let line = serde_json::json!({"type":"result","subtype":"error_during_execution","is_error":true,
            "error":text,"session_id":"T-1"})
        .to_string();
        p.parse_line(&line);
        let err = p.finish(&ExitInfo::code(1, "")).error.unwrap();
        assert!(err.starts_with(prefix), "{err}");
    }
}

#[test]
fn amp_without_result_line_fails_even_on_exit_0() {
    let mut p = amp(AMP_PROMPT, false);
    let without_result: String = AMP_ONESHOT.lines().take(11).map(|l| format!("{l}\n")).collect();
    feed(&mut p, &without_result);
    let out = p.finish(&ExitInfo::success());
    assert!(!out.success);
    assert!(out.error.unwrap().contains("without a result line"));
    // The tokens seen so far are still reported.
    assert_eq!(out.usage[0].usage.output, 450);
}

#[test]
fn amp_login_prompt_becomes_an_auth_error() {
    let mut p = amp("x", false);
    let events =
        p.parse_line("No API key found. Starting login flow... visit: http://127.0.0.1:9/auth/cli-login");
    assert!(matches!(&events[0], AgentEvent::Output { stream: OutputStream::Stdout, .. }));
    let out = p.finish(&ExitInfo { timed_out: true, ..Default::default() });
    let err = out.error.unwrap();
    assert!(err.starts_with("authentication failed: ") && err.contains("amp login"), "{err}");
}

#[test]
fn amp_continued_thread_counts_only_messages_after_our_prompt() {
    let prompt = "Now add a docstring to the function";
    let mut p = amp(prompt, true);
    let events = feed(&mut p, AMP_CONTINUED);
    let user_texts: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::UserText { text, replay } => Some((text.as_str(), *replay)),
            _ => None,
        })
        .collect();
    assert_eq!(user_texts, [("Fix the failing test in utils.py", true), (prompt, false)]);
    // Only the two messages after the prompt give Usage events (display must not count the replay).
    let shown: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::Usage { usage, .. } => Some(usage.output),
            _ => None,
        })
        .collect();
    assert_eq!(shown, [90, 30]);
    let out = p.finish(&ExitInfo::success());
    assert!(out.success);
    assert_eq!(
        out.usage,
        vec![ModelUsage { model: None, usage: usage(10, 120, 25_100, 650), reported_cost_usd: None }]
    );
    // The final message ended its turn with a question.
    assert!(out.awaiting_input);
    // The replayed Bash call failed (exit code 1 in its JSON string).
    let tools = paired_tools(&events);
    assert_eq!(tools[0], ("toolu_old1".into(), "Bash".into(), false, Some(1)));
}

#[test]
fn amp_continued_without_prompt_echo_counts_after_last_user_text() {
    let mut p = amp("a prompt Amp never echoes", true);
    feed(&mut p, AMP_CONTINUED);
    let out = p.finish(&ExitInfo::success());
    assert_eq!(out.usage[0].usage, usage(10, 120, 25_100, 650));
    // The same stream read as a one-shot counts everything.
    let mut p = amp("Now add a docstring to the function", false);
    feed(&mut p, AMP_CONTINUED);
    assert_eq!(p.finish(&ExitInfo::success()).usage[0].usage, usage(22, 220, 37_100, 12_950));
}

#[test]
fn amp_subagent_user_texts_do_not_reset_the_count() {
    // A continued thread whose prompt is never echoed, with a Task sub-agent after the last user text.
    let lines = [
        r#"{"type":"user","message":{"role":"user","content":[{"type":"text","text":"old prompt"}]},"parent_tool_use_id":null,"session_id":"T-1"}"#,
        r#"{"type":"assistant","message":{"content":[],"stop_reason":"end_turn","usage":{"input_tokens":1000}},"parent_tool_use_id":null,"session_id":"T-1"}"#,
        r#"{"type":"user","message":{"role":"user","content":[{"type":"text","text":"new prompt, echoed differently"}]},"parent_tool_use_id":null,"session_id":"T-1"}"#,
        r#"{"type":"assistant","message":{"content":[{"type":"tool_use","id":"task1","name":"Task","input":{}}],"stop_reason":"tool_use","usage":{"input_tokens":10}},"parent_tool_use_id":null,"session_id":"T-1"}"#,
        r#"{"type":"user","message":{"role":"user","content":[{"type":"text","text":"sub-agent instructions"}]},"parent_tool_use_id":"task1","session_id":"T-1"}"#,
        r#"{"type":"assistant","message":{"content":[],"stop_reason":"end_turn","usage":{"input_tokens":20}},"parent_tool_use_id":"task1","session_id":"T-1"}"#,
        r#"{"type":"user","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"task1","content":"done"}]},"parent_tool_use_id":null,"session_id":"T-1"}"#,
        r#"{"type":"assistant","message":{"content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn","usage":{"input_tokens":30}},"parent_tool_use_id":null,"session_id":"T-1"}"#,
        r#"{"type":"result","subtype":"success","is_error":false,"result":"ok","session_id":"T-1"}"#,
    ];
    let mut p = amp("new prompt", true);
    for l in lines {
        p.parse_line(l);
    }
    assert_eq!(p.finish(&ExitInfo::success()).usage[0].usage.input, 60);
}

#[test]
fn amp_model_comes_from_the_message_when_present() {
    let mut p = amp("x", false);
    let lines = [
        r#"{"type":"assistant","message":{"model":"claude-sonnet-4-5","content":[{"type":"text","text":"a"}],"stop_reason":"tool_use","usage":{"input_tokens":1,"output_tokens":2}},"session_id":"T-1"}"#,
        r#"{"type":"assistant","message":{"model":"claude-haiku-4-5","content":[],"stop_reason":"tool_use","usage":{"input_tokens":10,"output_tokens":20}},"session_id":"T-1"}"#,
        r#"{"type":"assistant","message":{"content":[{"type":"text","text":"Done?"}],"stop_reason":"max_tokens","usage":{"input_tokens":100}},"session_id":"T-1"}"#,
        r#"{"type":"result","subtype":"success","is_error":false,"result":"Done?","session_id":"T-1"}"#,
    ];
    for l in lines {
        p.parse_line(l);
    }
    let out = p.finish(&ExitInfo::success());
    let models: Vec<_> = out.usage.iter().map(|m| (m.model.clone(), m.usage.input)).collect();
    assert_eq!(
        models,
        [(Some("claude-sonnet-4-5".into()), 1), (Some("claude-haiku-4-5".into()), 10), (None, 100)]
    );
    // A question, but the turn ended on max_tokens: not awaiting input.
    assert!(!out.awaiting_input);
}

// ---------------------------------------------------------------- Claude Code

#[test]
fn claude_totals_come_from_the_result_line() {
    let mut p = ClaudeParser::new();
    let events = feed(&mut p, CLAUDE_ONESHOT);
    assert!(matches!(&events[0], AgentEvent::Init { thread_id: Some(t), model: Some(m), .. }
        if t == "6b0d9f2e-4c8a-4e1b-9a3d-7f25c1e8b401" && m == "claude-sonnet-4-5-20250929"));
    let tools = paired_tools(&events);
    let names: Vec<_> = tools.iter().map(|t| t.1.as_str()).collect();
    assert_eq!(names, ["Grep", "Edit", "Bash"]);
    assert!(tools.iter().all(|t| t.2 && t.3.is_none()));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, AgentEvent::Retry { attempt: Some(1), message } if message.contains("529")))
    );
    // One Usage event per distinct message id, although msg_01XbQ7hV2kL9 repeats its usage on two lines.
    let ids: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::Usage { message_id, .. } => message_id.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(ids, ["msg_01XbQ7hV2kL9", "msg_01Rt5MwC9pZ2", "msg_01Wd8HsK4nY6", "msg_01Zk1PfJ7qR3"]);

    let out = p.finish(&ExitInfo::success());
    assert!(out.success);
    assert_eq!(out.thread_id.as_deref(), Some("6b0d9f2e-4c8a-4e1b-9a3d-7f25c1e8b401"));
    assert_eq!(
        out.usage,
        vec![ModelUsage {
            model: Some("claude-sonnet-4-5-20250929".into()),
            usage: usage(22, 297, 55_894, 19_250),
            reported_cost_usd: Some(0.093_476_7),
        }]
    );
    assert_eq!(out.reported_cost_usd, Some(0.093_476_7));
    assert_eq!(out.num_turns, Some(5));
    assert_eq!(out.stop_reason.as_deref(), Some("end_turn"));
    assert!(out.final_text.unwrap().starts_with("Anchored the username regexes"));
    assert!(!out.awaiting_input);
}

#[test]
fn claude_auth_failure_and_max_turns() {
    let mut lines = CLAUDE_ERRORS.lines();
    let mut p = ClaudeParser::new();
    p.parse_line(lines.next().unwrap());
    let out = p.finish(&ExitInfo::code(1, ""));
    assert!(!out.success);
    assert_eq!(out.thread_id.as_deref(), Some("1d4e7c90-2b3a-4f5e-8c6d-9a0b1c2d3e4f"));
    let err = out.error.unwrap();
    assert!(err.starts_with("authentication failed: ") && err.contains("Invalid API key"), "{err}");
    assert!(out.usage.is_empty());
    assert_eq!(out.reported_cost_usd, Some(0.0));

    // `is_error` is authoritative: error_max_turns with is_error false is a success.
    let mut p = ClaudeParser::new();
    p.parse_line(lines.next().unwrap());
    let out = p.finish(&ExitInfo::success());
    assert!(out.success, "{out:?}");
    assert_eq!(
        out.usage,
        vec![ModelUsage {
            model: Some("claude-sonnet-4-6".into()),
            usage: usage(10, 3449, 336_903, 44_182),
            reported_cost_usd: Some(0.318_518_4),
        }]
    );
    assert_eq!(out.stop_reason.as_deref(), Some("tool_use"));
}

#[test]
fn claude_two_models_and_usage_fallback() {
    let mut p = ClaudeParser::new();
    p.parse_line(r#"{"type":"result","subtype":"success","is_error":false,"result":"ok","session_id":"s","total_cost_usd":0.5,"usage":{"input_tokens":999},"modelUsage":{"claude-sonnet-4-5":{"inputTokens":1,"outputTokens":2,"cacheReadInputTokens":3,"cacheCreationInputTokens":4,"costUSD":0.4},"claude-haiku-4-5":{"inputTokens":10,"outputTokens":20,"costUSD":0.1}}}"#);
    let out = p.finish(&ExitInfo::success());
    let of = |model: &str| out.usage.iter().find(|m| m.model.as_deref() == Some(model)).unwrap().clone();
    assert_eq!(out.usage.len(), 2);
    assert_eq!(of("claude-sonnet-4-5").usage, usage(1, 2, 3, 4));
    assert_eq!(of("claude-sonnet-4-5").reported_cost_usd, Some(0.4));
    assert_eq!(of("claude-haiku-4-5").usage, usage(10, 20, 0, 0));
    assert_eq!(out.reported_cost_usd, Some(0.5));

    // modelUsage empty: the result's `usage`, under the init model.
    let mut p = ClaudeParser::new();
    p.parse_line(r#"{"type":"system","subtype":"init","session_id":"s","model":"claude-opus-4-5"}"#);
    p.parse_line(r#"{"type":"result","subtype":"success","is_error":false,"session_id":"s","usage":{"input_tokens":7,"output_tokens":8},"modelUsage":{}}"#);
    let out = p.finish(&ExitInfo::success());
    assert_eq!(out.usage[0].model.as_deref(), Some("claude-opus-4-5"));
    assert_eq!(out.usage[0].usage, usage(7, 8, 0, 0));

    // Killed before the result line: last usage per message id, each message once.
    let mut p = ClaudeParser::new();
    let no_result: String = CLAUDE_ONESHOT.lines().take(10).map(|l| format!("{l}\n")).collect();
    feed(&mut p, &no_result);
    let out = p.finish(&ExitInfo { timed_out: true, ..Default::default() });
    assert!(!out.success);
    assert!(out.error.unwrap().contains("timed out"));
    assert_eq!(
        out.usage[0].usage,
        usage(4 + 6 + 6 + 6, 3 + 164 + 92 + 38, 18_230 + 18_642 + 19_022, 18_230 + 412 + 380 + 228)
    );
}

#[test]
fn claude_awaiting_input_needs_end_turn_and_a_final_question() {
    let ask = |text: &str, stop: &str| {
        let mut p = ClaudeParser::new();
        let msg = serde_json::json!({"type":"assistant","session_id":"s","message":{"id":"m1","model":"x",
            "content":[{"type":"text","text":text}],"stop_reason":stop}});
        p.parse_line(&msg.to_string());
        p.parse_line(r#"{"type":"result","subtype":"success","is_error":false,"session_id":"s"}"#);
        p.finish(&ExitInfo::success()).awaiting_input
    };
    assert!(ask("I found two options.\n\nWhich one do you prefer?", "end_turn"));
    assert!(!ask("Which one? I picked the first.", "end_turn"));
    assert!(!ask("Which one do you prefer?", "max_tokens"));
}

#[test]
fn claude_resumed_session_counts_only_this_runs_share() {
    // Captured from Claude Code 2.x resuming a session against the scripted server: `usage` is this run's,
    // `modelUsage` and `total_cost_usd` are the session's running totals.
    let line = r#"{"type":"result","subtype":"success","is_error":false,"num_turns":1,"result":"It says hi. Anything else?","stop_reason":"end_turn","session_id":"4dcabcda-7388-4f08-991e-0aa1b56772cd","total_cost_usd":0.000994,"usage":{"input_tokens":3,"cache_creation_input_tokens":0,"cache_read_input_tokens":50,"output_tokens":4},"modelUsage":{"claude-opus-5-5":{"inputTokens":19,"outputTokens":32,"cacheReadInputTokens":90,"cacheCreationInputTokens":52,"costUSD":0.000994}}}"#;
    let init = r#"{"type":"system","subtype":"init","session_id":"4dcabcda-7388-4f08-991e-0aa1b56772cd","model":"claude-opus-5-5"}"#;
    let first = ModelUsage {
        model: Some("claude-opus-5-5".into()),
        usage: usage(16, 28, 40, 52),
        reported_cost_usd: Some(0.000892),
    };
    let run_share = usage(3, 4, 50, 0);

    let mut p = ClaudeParser::resumed(vec![first.clone()]);
    p.parse_line(init);
    p.parse_line(line);
    let out = p.finish(&ExitInfo::success());
    assert_eq!(out.usage.len(), 1);
    assert_eq!(out.usage[0].usage, run_share);
    assert!((out.reported_cost_usd.unwrap() - 0.000102).abs() < 1e-9, "{:?}", out.reported_cost_usd);

    // Without the earlier runs' totals: this run's tokens, cost unknown (never the session's).
    let mut p = ClaudeParser::resumed(Vec::new());
    p.parse_line(init);
    p.parse_line(line);
    let out = p.finish(&ExitInfo::success());
    assert_eq!(
        out.usage,
        vec![ModelUsage { model: Some("claude-opus-5-5".into()), usage: run_share, reported_cost_usd: None }]
    );
    assert_eq!(out.reported_cost_usd, None);

    // Earlier totals that cannot be right (more than the session's) fall back the same way.
    let mut wrong = first;
    wrong.usage = usage(1000, 1000, 1000, 1000);
    let mut p = ClaudeParser::resumed(vec![wrong]);
    p.parse_line(init);
    p.parse_line(line);
    assert_eq!(p.finish(&ExitInfo::success()).total_usage(), run_share);

    // Read as a fresh session, the same line's modelUsage is the run's.
    let mut p = ClaudeParser::new();
    p.parse_line(line);
    assert_eq!(p.finish(&ExitInfo::success()).total_usage(), usage(19, 32, 90, 52));
}

// ---------------------------------------------------------------- Codex

#[test]
fn codex_turn_usage_and_items() {
    let mut p = CodexParser::new(Some("gpt-5-codex".into()));
    let events = feed(&mut p, CODEX_ONESHOT);
    assert_eq!(first_init_thread(&events).as_deref(), Some("0199a213-81c0-7800-8aa1-bbab2a035a53"));
    assert!(matches!(&events[1], AgentEvent::Thinking { text } if text.contains("separability")));
    let tools = paired_tools(&events);
    assert_eq!(
        tools,
        [
            ("item_1".into(), "shell".into(), true, Some(0)),
            ("item_2".into(), "file_change".into(), true, None),
            ("item_3".into(), "shell".into(), true, Some(0)),
        ]
    );
    assert!(events.iter().any(|e| matches!(e, AgentEvent::FileChange { path, change }
        if path.ends_with("separable.py") && change == "update")));
    let out = p.finish(&ExitInfo::success());
    assert!(out.success);
    assert_eq!(out.thread_id.as_deref(), Some("0199a213-81c0-7800-8aa1-bbab2a035a53"));
    assert_eq!(
        out.usage,
        vec![ModelUsage {
            model: Some("gpt-5-codex".into()),
            usage: usage(315, 122, 24_448, 0),
            reported_cost_usd: None
        }]
    );
    assert!(out.final_text.unwrap().starts_with("Fixed `_cstack`"));
    assert!(!out.awaiting_input);
}

#[test]
fn codex_failure_and_retries() {
    let mut p = CodexParser::new(None);
    let events = feed(&mut p, CODEX_FAILURE);
    assert!(events.iter().any(|e| matches!(e, AgentEvent::Retry { attempt: Some(2), .. })));
    let out = p.finish(&ExitInfo::code(1, ""));
    assert!(!out.success);
    assert!(out.error.unwrap().contains("stream disconnected before completion: Connection failed"));
    assert!(out.usage.is_empty());
    // A completed turn but exit 1 is a failure too; a turn that never completed with exit 0 also.
    let mut p = CodexParser::new(None);
    feed(&mut p, CODEX_ONESHOT);
    assert!(!p.finish(&ExitInfo::code(1, "")).success);
    let mut p = CodexParser::new(None);
    p.parse_line(r#"{"type":"thread.started","thread_id":"t"}"#);
    let out = p.finish(&ExitInfo::success());
    assert!(!out.success);
    assert!(out.error.unwrap().contains("without completing a turn"));
}

#[test]
fn codex_usage_is_a_running_total_with_reasoning_inside_output() {
    let mut p = CodexParser::new(None);
    let shown: Vec<TokenUsage> = [
        r#"{"type":"turn.completed","usage":{"input_tokens":100,"cached_input_tokens":40,"output_tokens":50,"reasoning_output_tokens":30}}"#,
        r#"{"type":"turn.completed","usage":{"input_tokens":110,"cached_input_tokens":40,"output_tokens":55,"reasoning_output_tokens":38}}"#,
    ]
    .iter()
    .flat_map(|l| p.parse_line(l))
    .filter_map(|e| match e {
        AgentEvent::Usage { usage, .. } => Some(usage),
        _ => None,
    })
    .collect();
    // Display events show each turn's own share.
    assert_eq!(shown[1], TokenUsage { input: 10, output: 5, cache_read: 0, cache_write: 0, reasoning: 8 });
    let out = p.finish(&ExitInfo::success());
    // 38 reasoning tokens are part of the 55 output tokens.
    assert_eq!(
        out.usage[0].usage,
        TokenUsage { input: 70, output: 55, cache_read: 40, cache_write: 0, reasoning: 38 }
    );

    // More reasoning than output can only mean they were counted apart; cache writes are part of input.
    let mut p = CodexParser::new(None);
    p.parse_line(r#"{"type":"turn.completed","usage":{"input_tokens":10,"cached_input_tokens":2,"cache_write_input_tokens":3,"output_tokens":5,"reasoning_output_tokens":8}}"#);
    let out = p.finish(&ExitInfo::success());
    assert_eq!(
        out.usage[0].usage,
        TokenUsage { input: 5, output: 13, cache_read: 2, cache_write: 3, reasoning: 8 }
    );

    let mut p = CodexParser::new(None);
    let events = p.parse_line(r#"{"type":"item.completed","item":{"id":"item_9","type":"command_execution","command":"false","aggregated_output":"","exit_code":1,"status":"failed"}}"#);
    assert!(
        matches!(&events[..], [AgentEvent::ToolUse { name, .. }, AgentEvent::ToolResult { ok: false, exit_code: Some(1), .. }] if name == "shell")
    );
}

#[test]
fn codex_resumed_thread_subtracts_what_earlier_runs_used() {
    // Captured from codex-cli against the scripted server: the resumed run's running total.
    let line = r#"{"type":"turn.completed","usage":{"input_tokens":236,"cached_input_tokens":77,"cache_write_input_tokens":0,"output_tokens":28,"reasoning_output_tokens":6}}"#;
    let first = TokenUsage { input: 150, output: 26, cache_read: 37, cache_write: 0, reasoning: 6 };
    let mut p = CodexParser::resumed(None, first);
    p.parse_line(line);
    let out = p.finish(&ExitInfo::success());
    assert_eq!(
        out.usage[0].usage,
        TokenUsage { input: 9, output: 2, cache_read: 40, cache_write: 0, reasoning: 0 }
    );
    // Unknown history: the running total is all there is.
    let mut p = CodexParser::resumed(None, TokenUsage::default());
    p.parse_line(line);
    assert_eq!(p.finish(&ExitInfo::success()).usage[0].usage.input, 159);
}

#[test]
fn codex_request_user_input_means_awaiting_input() {
    let mut p = CodexParser::new(None);
    feed(&mut p, CODEX_ONESHOT);
    let events = p.parse_line(r#"{"type":"request_user_input","id":"r1","call_id":"c1","questions":[{"question":"Which branch?"}]}"#);
    assert!(matches!(&events[0], AgentEvent::Notice { message, .. } if message == "Which branch?"));
    assert!(p.finish(&ExitInfo::success()).awaiting_input);
}

// ---------------------------------------------------------------- Gemini

#[test]
fn gemini_stats_and_tools() {
    let mut p = GeminiParser::new(None);
    let events = feed(&mut p, GEMINI_ONESHOT);
    assert!(matches!(&events[0], AgentEvent::Init { thread_id: Some(t), model: Some(m), .. }
        if t == "c8f1e2a4-7b3d-4e5f-9a6b-1c2d3e4f5a6b" && m == "gemini-2.5-pro"));
    let tools = paired_tools(&events);
    assert_eq!(tools.len(), 2);
    assert_eq!((tools[0].1.as_str(), tools[0].2), ("search_file_content", true));
    assert_eq!((tools[1].1.as_str(), tools[1].2), ("replace", false));
    assert!(events.iter().any(|e| matches!(e, AgentEvent::ToolResult { ok: false, output, .. }
        if output.contains("expected 1 occurrence"))));
    assert!(events.iter().any(|e| matches!(e, AgentEvent::Error { fatal: false, .. })));
    let out = p.finish(&ExitInfo::success());
    assert!(out.success);
    assert_eq!(
        out.usage,
        vec![ModelUsage {
            model: Some("gemini-2.5-pro".into()),
            usage: usage(18_810, 1224, 41_200, 0),
            reported_cost_usd: None
        }]
    );
    assert_eq!(out.final_text.as_deref(), Some("Fixed `_cstack` so the right operand keeps its matrix."));
}

#[test]
fn gemini_per_model_stats_and_exit_codes() {
    let mut p = GeminiParser::new(None);
    p.parse_line(r#"{"type":"result","status":"success","stats":{"input_tokens":30,"output_tokens":3,"cached":10,"models":{"gemini-2.5-pro":{"input_tokens":20,"output_tokens":2,"cached":10},"gemini-2.5-flash":{"input_tokens":10,"output_tokens":1,"cached":0}}}}"#);
    let out = p.finish(&ExitInfo::success());
    let of = |model: &str| out.usage.iter().find(|m| m.model.as_deref() == Some(model)).unwrap().usage;
    assert_eq!(out.usage.len(), 2);
    assert_eq!(of("gemini-2.5-pro"), usage(10, 2, 10, 0));
    assert_eq!(of("gemini-2.5-flash"), usage(10, 1, 0, 0));

    let mut p = GeminiParser::new(None);
    let out = p.finish(&ExitInfo::code(41, "Please set an Auth method"));
    assert!(out.error.unwrap().starts_with("authentication failed: "));
    let mut p = GeminiParser::new(None);
    p.parse_line(r#"{"type":"result","status":"error","error":{"type":"FatalTurnLimitedError","message":"Reached max session turns"}}"#);
    let err = p.finish(&ExitInfo::code(53, "")).error.unwrap();
    assert!(err.contains("turn limit") && err.contains("Reached max session turns"), "{err}");
}

// ---------------------------------------------------------------- OpenCode

#[test]
fn opencode_steps_tools_and_cost() {
    let mut p = OpenCodeParser::new(Some("anthropic/claude-sonnet-4-5".into()));
    let events = feed(&mut p, OPENCODE_ONESHOT);
    assert_eq!(first_init_thread(&events).as_deref(), Some("ses_7f3a9c1e2ffeAbCdEf"));
    assert!(matches!(&events[0], AgentEvent::Init { .. }));
    let tools = paired_tools(&events);
    assert_eq!(tools, [("call_9xQ2".into(), "bash".into(), true, Some(0))]);
    assert!(events.iter().any(|e| matches!(e, AgentEvent::ToolResult { duration_ms: Some(580), .. })));
    let out = p.finish(&ExitInfo::success());
    assert!(out.success);
    assert_eq!(out.usage.len(), 1);
    assert_eq!(out.usage[0].usage, usage(432, 103, 34_712, 0));
    assert!((out.reported_cost_usd.unwrap() - 0.0164).abs() < 1e-12);
    assert_eq!(out.final_text.as_deref(), Some("Fixed `_cstack`; tests pass."));
    assert_eq!(out.stop_reason.as_deref(), Some("stop"));
    assert_eq!(out.thread_id.as_deref(), Some("ses_7f3a9c1e2ffeAbCdEf"));
}

#[test]
fn opencode_unfinished_or_errored_runs_fail() {
    let mut p = OpenCodeParser::new(None);
    let first_step: String = OPENCODE_ONESHOT.lines().take(3).map(|l| format!("{l}\n")).collect();
    feed(&mut p, &first_step);
    let out = p.finish(&ExitInfo::success());
    assert!(!out.success);
    assert!(out.error.unwrap().contains("before its final step"));

    let mut p = OpenCodeParser::new(None);
    feed(&mut p, OPENCODE_ONESHOT);
    p.parse_line(r#"{"type":"error","timestamp":1,"sessionID":"ses_x","error":{"name":"ProviderAuthError","data":{"message":"Invalid API key"}}}"#);
    let err = p.finish(&ExitInfo::success()).error.unwrap();
    assert!(err.starts_with("authentication failed: ") && err.contains("ProviderAuthError"), "{err}");
}

// ---------------------------------------------------------------- command and common rules

#[test]
fn command_output_and_exit() {
    let mut p = CommandParser::new();
    assert_eq!(
        p.parse_line("{\"type\":\"result\"}"),
        [AgentEvent::Output {
            stream: OutputStream::Stdout,
            text: "{\"type\":\"result\"}".into(),
            truncated: false
        }]
    );
    p.parse_line("all done");
    let out = p.finish(&ExitInfo::success());
    assert!(out.success);
    assert_eq!(out.final_text.as_deref(), Some("{\"type\":\"result\"}\nall done"));
    let out = CommandParser::new().finish(&ExitInfo::code(3, "boom\n"));
    assert!(!out.success);
    assert_eq!(out.error.as_deref(), Some("command exited with code 3; stderr: boom"));
}

#[test]
fn every_parser_skips_blanks_keeps_plain_lines_and_notes_unknown_types() {
    for name in ["amp", "claude", "codex", "gemini", "opencode", "offline"] {
        let adapter = adapter_for(name).unwrap();
        let mut p = adapter.parser(&RunSpec::new("p", "/tmp"));
        assert!(p.parse_line("").is_empty(), "{name}");
        assert!(p.parse_line("   \t").is_empty(), "{name}");
        assert_eq!(
            p.parse_line("Warning: something on stdout"),
            [AgentEvent::Output {
                stream: OutputStream::Stdout,
                text: "Warning: something on stdout".into(),
                truncated: false
            }],
            "{name}"
        );
        assert!(matches!(p.parse_line("[1,2,3]").as_slice(), [AgentEvent::Output { .. }]), "{name}");
        let unknown = p.parse_line(r#"{"type":"brand_new_event","extra":{"x":1}}"#);
        assert!(
            matches!(unknown.as_slice(), [AgentEvent::Notice { subtype, .. }] if subtype == "brand_new_event"),
            "{name}: {unknown:?}"
        );
    }
}

#[test]
fn tool_output_is_truncated_to_64_kib() {
    let big = "y".repeat(200_000);
    let line = serde_json::json!({"type":"user","message":{"role":"user","content":[
        {"type":"tool_result","tool_use_id":"t","content":big,"is_error":false}]},"session_id":"T-1"})
    .to_string();
    let events = amp("x", false).parse_line(&line);
    let output = events.iter().find_map(|e| match e {
        AgentEvent::ToolResult { output, .. } => Some(output.clone()),
        _ => None,
    });
    let output = output.unwrap();
    assert!(output.len() < 64 * 1024 + 100 && output.len() >= 64 * 1024, "{}", output.len());
    assert!(output.ends_with("[truncated 134464 bytes]"));
}

/// Claude Code 2.1.330 in its default mode under `-p` (captured against the scripted server): each refused
/// call is a `system/permission_denied` line and again in the result's `permission_denials`; it is
/// reported once, with what it was about.
#[test]
fn claude_permission_denials_are_reported_once_each() {
    let mut p = ClaudeParser::new();
    let events = feed(&mut p, include_str!("fixtures/claude_denied.jsonl"));
    let denied: Vec<(Option<String>, String, Option<String>)> = events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::PermissionDenied { call_id, tool, detail, .. } => {
                Some((call_id.clone(), tool.clone(), detail.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(denied.len(), 2, "{denied:?}");
    assert_eq!(denied[0].1, "Write");
    assert_eq!(denied[0].0.as_deref(), Some("toolu_mock000000000002"));
    assert_eq!(denied[0].2.as_deref(), Some("/tmp/exp/wt/hello.txt"));
    assert_eq!(denied[1].1, "Bash");
    assert_eq!(denied[1].2.as_deref(), Some("echo ran > ran.txt && ls"));
    let outcome = p.finish(&ExitInfo::success());
    assert!(outcome.success, "a run with denials still ended normally");
}

/// Under `--permission-prompt-tool stdio` Claude Code asks with a `control_request` of subtype
/// `can_use_tool`; its request id is what the answer names.
#[test]
fn claude_can_use_tool_requests_become_permission_requests() {
    let mut p = ClaudeParser::new();
    let events = feed(&mut p, include_str!("fixtures/claude_can_use_tool.jsonl"));
    match events.as_slice() {
        [AgentEvent::PermissionRequest { request_id, call_id, tool, input }] => {
            assert_eq!(request_id, "ef8e34da-27b1-4bb0-8a89-21409625cc89");
            assert_eq!(call_id.as_deref(), Some("toolu_mock000000000002"));
            assert_eq!(tool, "Write");
            assert_eq!(input["file_path"], "/tmp/exp/wt/hello.txt");
        }
        other => panic!("{other:?}"),
    }
    // Another control request is only a notice.
    let other =
        p.parse_line(r#"{"type":"control_request","request_id":"r9","request":{"subtype":"hook_callback"}}"#);
    assert!(matches!(other.as_slice(), [AgentEvent::Notice { .. }]), "{other:?}");
}

/// Codex 0.169 under `-s read-only` puts a refused patch on stderr only (captured line).
#[test]
fn codex_sandbox_refusals_on_stderr_are_denials() {
    let mut p = CodexParser::new(None);
    let line = "2026-12-03T20:24:54.120572Z ERROR codex_core::tools::router: error=patch rejected: writing is \
                blocked by read-only sandbox; rejected by user approval settings";
    match p.parse_stderr_line(line).as_slice() {
        [AgentEvent::PermissionDenied { tool, reason, .. }] => {
            assert_eq!(tool, "apply_patch");
            assert!(reason.as_deref().unwrap().starts_with("patch rejected: writing is blocked"));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        p.parse_stderr_line("WARNING: proceeding, even though we could not create PATH aliases").is_empty()
    );
    let declined = r#"{"type":"item.completed","item":{"id":"item_3","type":"command_execution","command":"rm -rf build","aggregated_output":"","exit_code":null,"status":"declined"}}"#;
    let events = p.parse_line(declined);
    assert!(
        events.iter().any(|e| matches!(e, AgentEvent::PermissionDenied { tool, detail: Some(d), .. } if tool == "shell" && d == "rm -rf build")),
        "{events:?}"
    );
}

/// Amp reports no permission events: a tool error that says so is a denial, and the result's
/// `permission_denials` (tool names) adds the ones not seen.
#[test]
fn amp_tool_errors_that_say_permission_and_result_denials() {
    let mut p = amp("do it", false);
    let lines = [
        r#"{"type":"assistant","message":{"type":"message","role":"assistant","content":[{"type":"tool_use","id":"t1","name":"Bash","input":{"cmd":"rm -rf /"}}],"stop_reason":"tool_use"},"session_id":"T-1"}"#,
        r#"{"type":"user","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"Permission denied: command rejected by amp.permissions","is_error":true}]},"session_id":"T-1"}"#,
        r#"{"type":"assistant","message":{"type":"message","role":"assistant","content":[{"type":"tool_use","id":"t2","name":"Bash","input":{"cmd":"false"}}],"stop_reason":"tool_use"},"session_id":"T-1"}"#,
        r#"{"type":"user","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"t2","content":"exit 1","is_error":true}]},"session_id":"T-1"}"#,
        r#"{"type":"result","subtype":"success","is_error":false,"result":"done","permission_denials":["edit_file"],"session_id":"T-1"}"#,
    ];
    let events: Vec<AgentEvent> = lines.iter().flat_map(|l| p.parse_line(l)).collect();
    let denied: Vec<(Option<&str>, &str)> = events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::PermissionDenied { call_id, tool, .. } => Some((call_id.as_deref(), tool.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(denied, [(Some("t1"), "Bash"), (None, "edit_file")]);
}

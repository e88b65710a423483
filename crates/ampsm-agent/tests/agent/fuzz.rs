//! Fuzzing the parsers with proptest: arbitrary text, arbitrary JSON, typed lines with random fields, and
//! mutated fixture lines go to every parser and then to `finish` with an arbitrary exit. Nothing may panic,
//! and the outcome must stay coherent (an error exactly when not a success, no success without a clean
//! exit, bounded tool outputs, no zero usage rows). Also: repeated Claude usage lines never change totals.

use ampsm_agent::parsers::claude::ClaudeParser;
use ampsm_agent::{ExitInfo, RunSpec, StreamParser, adapter_for};
use ampsm_core::AgentEvent;
use proptest::prelude::*;
use serde_json::{Map, Value};

const FIXTURES: &[&str] = &[
    include_str!("fixtures/amp_oneshot.jsonl"),
    include_str!("fixtures/amp_error.jsonl"),
    include_str!("fixtures/amp_continued.jsonl"),
    include_str!("fixtures/claude_oneshot.jsonl"),
    include_str!("fixtures/claude_errors.jsonl"),
    include_str!("fixtures/codex_oneshot.jsonl"),
    include_str!("fixtures/codex_failure.jsonl"),
    include_str!("fixtures/gemini_oneshot.jsonl"),
    include_str!("fixtures/opencode_oneshot.jsonl"),
];

const KNOWN_TYPES: &[&str] = &[
    "system",
    "user",
    "assistant",
    "result",
    "stream_event",
    "error",
    "thread.started",
    "turn.started",
    "turn.completed",
    "turn.failed",
    "item.started",
    "item.updated",
    "item.completed",
    "request_user_input",
    "init",
    "message",
    "tool_use",
    "tool_result",
    "step_start",
    "step_finish",
    "text",
    "reasoning",
];

const KEYS: &[&str] = &[
    "type",
    "subtype",
    "session_id",
    "sessionID",
    "thread_id",
    "message",
    "content",
    "usage",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "cached_input_tokens",
    "reasoning_output_tokens",
    "id",
    "model",
    "stop_reason",
    "tool_use_id",
    "is_error",
    "result",
    "errors",
    "error",
    "modelUsage",
    "total_cost_usd",
    "item",
    "status",
    "exit_code",
    "aggregated_output",
    "changes",
    "part",
    "state",
    "time",
    "start",
    "end",
    "tokens",
    "cache",
    "cost",
    "reason",
    "stats",
    "models",
    "cached",
    "delta",
    "role",
    "text",
    "tool_id",
    "exitCode",
    "output",
    "metadata",
    "exit",
    "questions",
    "api_error_status",
];

fn lines_of_fixtures() -> Vec<&'static str> {
    FIXTURES.iter().flat_map(|f| f.lines()).collect()
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null)),
        "\\PC{0,16}".prop_map(Value::from),
        prop::sample::select(KNOWN_TYPES).prop_map(Value::from),
        prop::sample::select(
            &[
                "success",
                "end_turn",
                "tool_use",
                "completed",
                "failed",
                "tool-calls",
                "stop",
                "init",
                "text",
                "tool_result",
                "command_execution",
                "file_change",
                "mcp_tool_call",
                "{\"output\":\"x\",\"exitCode\":2}",
                "Reconnecting... 1/5"
            ][..]
        )
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (prop_oneof![prop::sample::select(KEYS).prop_map(str::to_string), "[a-z]{1,6}"], inner),
                0..8
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// An object with a known `type` (and sometimes `subtype`) and random other fields.
fn typed_line() -> impl Strategy<Value = String> {
    (
        prop::sample::select(KNOWN_TYPES),
        prop::option::of(prop::sample::select(&["init", "api_retry", "success", "error_max_turns"][..])),
        prop::collection::vec((prop::sample::select(KEYS), json_value()), 0..8),
    )
        .prop_map(|(ty, sub, fields)| {
            let mut map: Map<String, Value> = fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            map.insert("type".into(), Value::from(ty));
            if let Some(s) = sub {
                map.insert("subtype".into(), Value::from(s));
            }
            Value::Object(map).to_string()
        })
}

/// Replaces the value at a random path of `v` with `new`.
fn replace_at(v: &mut Value, path: &[usize], new: Value) {
    let Some((first, rest)) = path.split_first() else {
        *v = new;
        return;
    };
    match v {
        Value::Object(map) if !map.is_empty() => {
            let key = map.keys().nth(first % map.len()).unwrap().clone();
            replace_at(map.get_mut(&key).unwrap(), rest, new);
        }
        Value::Array(items) if !items.is_empty() => {
            let len = items.len();
            replace_at(&mut items[first % len], rest, new);
        }
        other => *other = new,
    }
}

/// A fixture line, mutated in its structure or in its bytes.
fn mutated_fixture_line() -> impl Strategy<Value = String> {
    let lines = lines_of_fixtures();
    (
        prop::sample::select(lines),
        prop::collection::vec(any::<usize>(), 0..6),
        json_value(),
        0usize..4,
        any::<usize>(),
        "\\PC{0,4}",
    )
        .prop_map(|(line, path, new, how, at, junk)| match how {
            0 => {
                let mut v: Value = serde_json::from_str(line).unwrap();
                replace_at(&mut v, &path, new);
                v.to_string()
            }
            1 => {
                // Cut at a char boundary (a line truncated by the length cap).
                let mut cut = at % (line.len() + 1);
                while !line.is_char_boundary(cut) {
                    cut -= 1;
                }
                line[..cut].to_string()
            }
            2 => {
                let mut cut = at % (line.len() + 1);
                while !line.is_char_boundary(cut) {
                    cut -= 1;
                }
                format!("{}{junk}{}", &line[..cut], &line[cut..])
            }
            _ => line.to_string(),
        })
}

fn any_line() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[{}\\[\\]\":,a-z0-9 .\\-]{0,120}",
        json_value().prop_map(|v| v.to_string()),
        typed_line(),
        mutated_fixture_line(),
        mutated_fixture_line(),
    ]
}

fn exit_info() -> impl Strategy<Value = ExitInfo> {
    (prop::option::of(-1i32..300), prop::option::of(1i32..32), any::<bool>(), any::<bool>(), "\\PC{0,64}")
        .prop_map(|(code, signal, timed_out, cancelled, stderr_tail)| ExitInfo {
            code,
            signal,
            timed_out,
            cancelled,
            stderr_tail,
        })
}

/// Every parser in every mode it can be built in.
fn all_parsers(model: Option<String>, thread: Option<String>) -> Vec<(String, Box<dyn StreamParser + Send>)> {
    let mut spec = RunSpec::new("Fix the failing test in utils.py", "/tmp");
    if thread.is_some() {
        spec.prior_usage = vec![ampsm_core::ModelUsage {
            model: model.clone(),
            usage: ampsm_core::TokenUsage {
                input: 5,
                output: 5,
                cache_read: 5,
                cache_write: 5,
                reasoning: 1,
            },
            reported_cost_usd: Some(0.01),
        }];
    }
    spec.model = model;
    spec.thread_id = thread;
    let mut out = Vec::new();
    for name in ["amp", "claude", "codex", "gemini", "opencode", "command", "offline"] {
        let adapter = adapter_for(name).unwrap();
        out.push((name.to_string(), adapter.parser(&spec)));
        out.push((format!("{name}/interactive"), adapter.interactive_parser(&spec)));
    }
    out
}

fn check_events(events: &[AgentEvent]) {
    for ev in events {
        if let AgentEvent::ToolResult { output, .. } = ev {
            assert!(output.len() <= 64 * 1024 + 64, "tool output not bounded: {}", output.len());
        }
        // Every event serializes (the store keeps them as JSON).
        serde_json::to_string(ev).unwrap();
    }
}

fn feed_all(lines: &[String], exit: &ExitInfo, model: Option<String>, thread: Option<String>) {
    for (name, mut parser) in all_parsers(model, thread) {
        for line in lines {
            check_events(&parser.parse_line(line));
        }
        let out = parser.finish(exit);
        assert_eq!(out.success, out.error.is_none(), "{name}: error iff not success: {out:?}");
        if out.success {
            assert!(exit.is_clean_success(), "{name}: success without a clean exit");
        }
        assert!(out.error.as_deref().is_none_or(|e| !e.is_empty()), "{name}: empty error");
        assert!(out.usage.iter().all(|m| !m.usage.is_zero() || m.reported_cost_usd.is_some()), "{name}");
        serde_json::to_string(&out).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_lines_never_panic(
        lines in prop::collection::vec(any_line(), 0..24),
        exit in exit_info(),
        model in prop::option::of("[a-z0-9./-]{1,12}"),
        thread in prop::option::of("T-[a-f0-9-]{1,12}"),
    ) {
        feed_all(&lines, &exit, model, thread);
    }

    #[test]
    fn fixture_streams_with_mutations_never_panic(
        fixture in prop::sample::select(FIXTURES),
        mutations in prop::collection::vec((any::<prop::sample::Index>(), mutated_fixture_line()), 0..4),
        exit in exit_info(),
    ) {
        let mut lines: Vec<String> = fixture.lines().map(str::to_string).collect();
        for (at, line) in mutations {
            let i = at.index(lines.len() + 1);
            lines.insert(i, line);
        }
        feed_all(&lines, &exit, None, Some("T-019a7000-1111-7222-8333-444455556666".into()));
    }

    #[test]
    fn arbitrary_json_values_never_panic(values in prop::collection::vec(json_value(), 0..12), exit in exit_info()) {
        let lines: Vec<String> = values.iter().map(Value::to_string).collect();
        feed_all(&lines, &exit, Some("gpt-5".into()), None);
    }

    /// Claude repeats a message's usage on each of its content-block lines: however often an assistant line
    /// is repeated, the totals stay those of the result line, and without a result line each message
    /// counts once.
    #[test]
    fn claude_repeated_usage_lines_never_double_count(repeats in prop::collection::vec(1usize..4, 11)) {
        let fixture = include_str!("fixtures/claude_oneshot.jsonl");
        let (mut with_result, mut without_result) = (ClaudeParser::new(), ClaudeParser::new());
        for (line, n) in fixture.lines().zip(&repeats) {
            let times = if line.contains("\"type\":\"assistant\"") { *n } else { 1 };
            for _ in 0..times {
                with_result.parse_line(line);
                if !line.contains("\"type\":\"result\"") {
                    without_result.parse_line(line);
                }
            }
        }
        let a = with_result.finish(&ExitInfo::success()).total_usage();
        let b = without_result.finish(&ExitInfo::success()).total_usage();
        prop_assert_eq!((a.input, a.output, a.cache_read, a.cache_write), (22, 297, 55_894, 19_250));
        prop_assert_eq!((b.input, b.output, b.cache_read, b.cache_write), (22, 297, 55_894, 19_250));
    }
}

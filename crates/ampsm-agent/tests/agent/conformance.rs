//! Conformance: each adapter's real argv and parser, run end to end through `run_agent`,
//! - against the shared `fake-agent` (ampsm-testutils), which accepts exactly the vendors' flags and plays
//!   the recorded scenarios: totals must match each scenario's `expected_usage`, files must be edited,
//!   failures must be classified, hangs must be stopped with their whole process group;
//! - against the real Claude Code and Codex CLIs (installed by `.ci/install-agents.sh`; ignored without them) talking to
//!   the scripted model server on 127.0.0.1: one-shot, resume, and chat.

use ampsm_agent::{RunReport, RunSpec, StreamItem, adapter_for, run_agent, spawn_interactive};
use ampsm_core::{AgentEvent, TokenUsage};
use ampsm_testutils::{
    ModelServer, Script, Tool, Turn, Usage, claude_offline_env, codex_offline_env, fake_agent_path, require,
    requires, scenario_path, temp_home, write_codex_home,
};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

fn scenario(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(scenario_path(name)).unwrap()).unwrap()
}

fn fake_spec(prompt: &str, scenario_name: &str, dir: &Path) -> RunSpec {
    let mut spec = RunSpec::new(prompt, dir);
    spec.program = Some(fake_agent_path());
    spec.env = vec![
        ("FAKE_AGENT_SCENARIO".into(), scenario_path(scenario_name).display().to_string()),
        ("AMP_API_KEY".into(), "sgamp_test".into()),
    ];
    spec.timeout = Duration::from_secs(30);
    spec.permissions = ampsm_core::PermissionPolicy::Full;
    spec
}

async fn run(agent: &str, spec: &RunSpec) -> (RunReport, Vec<StreamItem>) {
    let adapter = adapter_for(agent).unwrap();
    let mut items = Vec::new();
    let report = run_agent(adapter.as_ref(), spec, None, &mut |_| {}, &mut |i| items.push(i)).await.unwrap();
    (report, items)
}

fn n(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or(0)
}

/// A scenario's `expected_usage` in our terms (uncached input, cache reads apart).
fn expected_usage(format: &str, e: &Value) -> TokenUsage {
    match format {
        "amp" | "claude" => TokenUsage {
            input: n(e, "input_tokens"),
            output: n(e, "output_tokens"),
            cache_read: n(e, "cache_read_input_tokens"),
            cache_write: n(e, "cache_creation_input_tokens"),
            reasoning: 0,
        },
        "codex" => TokenUsage {
            input: n(e, "input_tokens") - n(e, "cached_input_tokens"),
            output: n(e, "output_tokens"),
            cache_read: n(e, "cached_input_tokens"),
            ..Default::default()
        },
        "gemini" => TokenUsage {
            input: n(e, "input_tokens") - n(e, "cached"),
            output: n(e, "output_tokens"),
            cache_read: n(e, "cached"),
            ..Default::default()
        },
        "opencode" => TokenUsage {
            input: n(e, "input"),
            output: n(e, "output"),
            cache_read: n(e, "cache_read"),
            cache_write: n(e, "cache_write"),
            reasoning: n(e, "reasoning"),
        },
        other => panic!("unknown format {other}"),
    }
}

fn check_files(dir: &Path, expected: &Value) {
    for (path, content) in expected.as_object().into_iter().flatten() {
        let actual = std::fs::read_to_string(dir.join(path)).unwrap();
        assert_eq!(actual, content.as_str().unwrap(), "{path}");
    }
}

#[tokio::test]
async fn fake_agent_scenarios_give_the_expected_totals_and_files() {
    for (agent, name) in [
        ("amp", "amp_oneshot"),
        ("amp", "amp_garbage_lines"),
        ("claude", "claude"),
        ("codex", "codex"),
        ("gemini", "gemini"),
        ("opencode", "opencode"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let scen = scenario(name);
        let (report, items) = run(agent, &fake_spec("Fix the bug", name, dir.path())).await;
        let out = &report.outcome;
        assert!(out.success, "{name}: {out:?}\nstderr: {}", report.exit.stderr_tail);
        assert!(out.thread_id.is_some(), "{name}");
        assert_eq!(out.total_usage(), expected_usage(agent, &scen["expected_usage"]), "{name}");
        if let Some(cost) = scen["expected_cost_usd"].as_f64() {
            assert!(
                (out.reported_cost_usd.unwrap() - cost).abs() < 1e-9,
                "{name}: {:?}",
                out.reported_cost_usd
            );
        }
        check_files(dir.path(), &scen["expected_files"]);
        let events: Vec<&AgentEvent> = items.iter().flat_map(|i| &i.events).collect();
        let uses = events.iter().filter(|e| matches!(e, AgentEvent::ToolUse { .. })).count();
        let results = events.iter().filter(|e| matches!(e, AgentEvent::ToolResult { .. })).count();
        assert_eq!(uses, results, "{name}: tool calls paired");
        if name == "amp_garbage_lines" {
            assert!(events.iter().any(|e| matches!(e, AgentEvent::Output { .. })));
            assert!(events.iter().any(|e| matches!(e, AgentEvent::Notice { .. })));
        }
    }
}

#[tokio::test]
async fn fake_agent_continuations_reuse_the_thread() {
    for (agent, name) in [("amp", "amp_continue"), ("claude", "claude"), ("codex", "codex")] {
        let dir = tempfile::tempdir().unwrap();
        let scen = scenario(name);
        let (first, _) = run(agent, &fake_spec("Write the first note.", name, dir.path())).await;
        assert!(first.outcome.success, "{name}: {:?}", first.outcome);
        let thread = first.outcome.thread_id.clone().unwrap();
        let mut spec = fake_spec("Add the second line.", name, dir.path());
        spec.thread_id = Some(thread.clone());
        let (second, _) = run(agent, &spec).await;
        assert!(second.outcome.success, "{name}: {:?}\n{}", second.outcome, second.exit.stderr_tail);
        assert_eq!(second.outcome.thread_id.as_deref(), Some(thread.as_str()), "{name}");
        if let Some(expected) = scen.get("expected_usage_continue") {
            assert_eq!(second.outcome.total_usage(), expected_usage(agent, expected), "{name}");
        }
        if let Some(files) = scen.get("expected_files_continue") {
            check_files(dir.path(), files);
        }
    }
}

#[tokio::test]
async fn fake_agent_failures_are_reported_and_classified() {
    let dir = tempfile::tempdir().unwrap();

    let (r, _) = run("amp", &fake_spec("x", "amp_error_result", dir.path())).await;
    assert!(!r.outcome.success);
    assert_eq!(
        r.outcome.total_usage(),
        expected_usage("amp", &scenario("amp_error_result")["expected_usage"])
    );

    let (r, _) = run("amp", &fake_spec("x", "amp_exit_error", dir.path())).await;
    assert!(!r.outcome.success);
    let err = r.outcome.error.unwrap();
    assert!(err.contains("exited with code 1") && err.contains("stderr: "), "{err}");

    let (r, _) = run("claude", &fake_spec("x", "claude_auth_failure", dir.path())).await;
    assert!(r.outcome.error.unwrap().starts_with("authentication failed: "));

    let (r, _) = run("codex", &fake_spec("x", "codex_turn_failed", dir.path())).await;
    assert!(!r.outcome.success);
    assert!(r.outcome.error.is_some());

    // No key: the login prompt blocks forever; the timeout stops it and the error says what to do.
    let mut spec = fake_spec("x", "amp_auth_failure", dir.path());
    spec.env.retain(|(k, _)| k != "AMP_API_KEY");
    spec.env.push(("AMP_API_KEY".into(), String::new()));
    spec.timeout = Duration::from_millis(800);
    let (r, _) = run("amp", &spec).await;
    assert!(r.exit.timed_out);
    let err = r.outcome.error.unwrap();
    assert!(err.starts_with("authentication failed: ") && err.contains("amp login"), "{err}");
}

#[tokio::test]
async fn fake_agent_hang_and_big_line_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = fake_spec("x", "amp_hang_with_child", dir.path());
    spec.timeout = Duration::from_millis(800);
    let start = Instant::now();
    let (r, _) = run("amp", &spec).await;
    assert!(r.exit.timed_out && start.elapsed() < Duration::from_secs(10));
    let grandchild: Option<i32> = r
        .exit
        .stderr_tail
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .find(|p| *p > 1);
    if let Some(pid) = grandchild {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(stat.is_empty() || stat.contains(") Z"), "grandchild {pid} left behind: {stat}");
    }

    let (r, items) = run("amp", &fake_spec("x", "amp_big_line", dir.path())).await;
    assert!(r.outcome.success, "{:?}", r.outcome);
    let big = items.iter().find(|i| i.truncated).expect("the 10 MiB line is cut");
    assert_eq!(big.raw.len(), ampsm_agent::DEFAULT_MAX_LINE_BYTES);
    assert!(items.iter().all(|i| i.raw.len() <= ampsm_agent::DEFAULT_MAX_LINE_BYTES));
}

// ---------------------------------------------------------------- real CLIs

fn u(input: u64, output: u64, cache_read: u64, cache_write: u64, reasoning: u64) -> Usage {
    Usage {
        input_tokens: input,
        output_tokens: output,
        cache_read_input_tokens: cache_read,
        cache_creation_input_tokens: cache_write,
        reasoning_tokens: reasoning,
    }
}

#[requires(claude)]
#[tokio::test]
async fn real_claude_code_one_shot_resume_and_chat() {
    let claude = require(Tool::Claude);
    let repo = tempfile::tempdir().unwrap();
    let home = temp_home();
    let server = ModelServer::start(Script::new(vec![
        Turn::tool_call("Write", json!({"file_path": repo.path().join("hello.txt"), "content": "hi\n"}))
            .with_text("I'll create the file.")
            .with_usage(u(11, 22, 33, 44, 0)),
        Turn::text("Created hello.txt.").with_usage(u(5, 6, 7, 8, 0)),
        Turn::text("It says hi. Anything else?").with_usage(u(3, 4, 50, 0, 0)),
    ]))
    .unwrap();
    let mut spec = RunSpec::new("Create hello.txt", repo.path());
    spec.program = Some(claude);
    spec.env = claude_offline_env(&server.url(), home.path());
    spec.permissions = ampsm_core::PermissionPolicy::Full;
    spec.timeout = Duration::from_secs(120);

    let (r, items) = run("claude", &spec).await;
    assert!(r.outcome.success, "{:?}\n{}", r.outcome, r.exit.stderr_tail);
    assert_eq!(std::fs::read_to_string(repo.path().join("hello.txt")).unwrap(), "hi\n");
    assert_eq!(
        r.outcome.total_usage(),
        TokenUsage { input: 16, output: 28, cache_read: 40, cache_write: 52, reasoning: 0 }
    );
    assert!(r.outcome.reported_cost_usd.is_some());
    assert_eq!(r.outcome.final_text.as_deref(), Some("Created hello.txt."));
    let events: Vec<&AgentEvent> = items.iter().flat_map(|i| &i.events).collect();
    assert!(
        matches!(events.first(), Some(AgentEvent::Init { thread_id: Some(_), .. })),
        "{:?}",
        events.first()
    );
    let write_ok = events.iter().any(|e| matches!(e, AgentEvent::ToolResult { ok: true, .. }));
    assert!(
        events.iter().any(|e| matches!(e, AgentEvent::ToolUse { name, .. } if name == "Write")) && write_ok
    );

    let mut resume = spec.clone();
    resume.prompt = "What does it say?".into();
    resume.thread_id = r.outcome.thread_id.clone();
    resume.prior_usage = r.outcome.usage.clone();
    let (r2, _) = run("claude", &resume).await;
    assert!(r2.outcome.success, "{:?}\n{}", r2.outcome, r2.exit.stderr_tail);
    assert_eq!(r2.outcome.final_text.as_deref(), Some("It says hi. Anything else?"));
    // The resumed result's modelUsage and cost are the session's running totals: this run's share is
    // what is left after the first run's.
    assert_eq!(
        r2.outcome.total_usage(),
        TokenUsage { input: 3, output: 4, cache_read: 50, ..Default::default() }
    );
    let (first_cost, second_cost) =
        (r.outcome.reported_cost_usd.unwrap(), r2.outcome.reported_cost_usd.unwrap());
    assert!(second_cost > 0.0 && second_cost < first_cost, "{first_cost} then {second_cost}");
    assert!(r2.outcome.awaiting_input);

    // Chat: one message over --input-format stream-json, then close.
    server.set_script(Script::new(vec![Turn::text("Hello from chat.").with_usage(u(2, 3, 0, 0, 0))]));
    let chat_repo = tempfile::tempdir().unwrap();
    let mut chat_spec = spec.clone();
    chat_spec.cwd = chat_repo.path().to_path_buf();
    chat_spec.prompt = "Say hello".into();
    let adapter = adapter_for("claude").unwrap();
    let mut chat = spawn_interactive(adapter.as_ref(), &chat_spec).await.unwrap();
    let mut answered = false;
    while !answered {
        let item = tokio::time::timeout(Duration::from_secs(120), chat.recv()).await.unwrap().unwrap();
        answered = item.events.iter().any(|e| matches!(e, AgentEvent::Result { .. }));
    }
    let report = chat.close(Duration::from_secs(20)).await.unwrap();
    assert!(report.outcome.success, "{:?}\n{}", report.outcome, report.exit.stderr_tail);
    assert_eq!(report.outcome.final_text.as_deref(), Some("Hello from chat."));
}

#[requires(codex)]
#[tokio::test]
async fn real_codex_one_shot_and_resume() {
    let codex = require(Tool::Codex);
    let repo = tempfile::tempdir().unwrap();
    let home = temp_home();
    let codex_home = home.path().join(".codex");
    let server = ModelServer::start(Script::new(vec![
        Turn::tool_call("exec_command", json!({"cmd": "printf 'from the shell\\n' > shell.txt"}))
            .with_usage(u(100, 20, 30, 0, 5)),
        Turn::text("Wrote shell.txt.").with_usage(u(50, 6, 7, 0, 1)),
        Turn::text("Still there.").with_usage(u(9, 2, 40, 0, 0)),
    ]))
    .unwrap();
    write_codex_home(&codex_home, &server.openai_base_url(), ampsm_testutils::real_cli::CODEX_TEST_MODEL)
        .unwrap();
    let mut spec = RunSpec::new("Write shell.txt", repo.path());
    spec.program = Some(codex);
    spec.env = codex_offline_env(&codex_home, home.path());
    spec.permissions = ampsm_core::PermissionPolicy::Full;
    spec.timeout = Duration::from_secs(120);

    let (r, items) = run("codex", &spec).await;
    assert!(r.outcome.success, "{:?}\n{}", r.outcome, r.exit.stderr_tail);
    assert_eq!(std::fs::read_to_string(repo.path().join("shell.txt")).unwrap(), "from the shell\n");
    assert_eq!(
        r.outcome.total_usage(),
        TokenUsage { input: 150, output: 26, cache_read: 37, cache_write: 0, reasoning: 6 }
    );
    assert_eq!(r.outcome.final_text.as_deref(), Some("Wrote shell.txt."));
    let events: Vec<&AgentEvent> = items.iter().flat_map(|i| &i.events).collect();
    assert!(events.iter().any(|e| matches!(e, AgentEvent::ToolResult { ok: true, exit_code: Some(0), .. })));

    let mut resume = spec.clone();
    resume.prompt = "Is it still there?".into();
    resume.thread_id = r.outcome.thread_id.clone();
    resume.prior_usage = r.outcome.usage.clone();
    let (r2, _) = run("codex", &resume).await;
    assert!(r2.outcome.success, "{:?}\n{}", r2.outcome, r2.exit.stderr_tail);
    assert_eq!(r2.outcome.thread_id, r.outcome.thread_id);
    assert_eq!(r2.outcome.final_text.as_deref(), Some("Still there."));
    // turn.completed of a resumed thread is the thread's running total; the first run's share is taken off.
    assert_eq!(
        r2.outcome.total_usage(),
        TokenUsage { input: 9, output: 2, cache_read: 40, ..Default::default() }
    );
}

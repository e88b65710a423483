//! The demo agent in-process: its edits make the demo repository's tests pass, its stream reads back with
//! the Amp parser, and it fails loudly when the files are not the demo's.

use super::*;
use crate::StreamParser;
use crate::parsers::amp::{AmpParser, AmpParserOptions};
use crate::spec::ExitInfo;
use ampsm_core::AgentEvent;
use std::process::Command;

fn demo_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in demo_repo_files() {
        let full = dir.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
    }
    dir
}

fn run(args: &[&str], prompt: &str, cwd: &Path) -> (i32, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let mut out = Vec::new();
    let code = run_offline_agent_with(&args, prompt.as_bytes(), &mut out, cwd, Pacing::NONE);
    (code, String::from_utf8(out).unwrap())
}

fn sh(cwd: &Path, script: &str) -> (bool, String) {
    let out = Command::new("sh").arg("-c").arg(script).current_dir(cwd).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn the_demo_repo_passes_its_tests_before_and_after_and_gains_the_flag() {
    let repo = demo_repo();
    assert!(sh(repo.path(), DEMO_TEST_SCRIPT).0);
    assert_eq!(sh(repo.path(), "sh hello.sh Ada").1, "Hello, Ada!\n");
    // Before the demo, --shout is just a name.
    assert_eq!(sh(repo.path(), "sh hello.sh --shout").1, "Hello, --shout!\n");

    let (code, stream) = run(&[OFFLINE_SUBCOMMAND, "--stream-json"], DEMO_PROMPT, repo.path());
    assert_eq!(code, 0, "{stream}");

    let (ok, out) = sh(repo.path(), DEMO_TEST_SCRIPT);
    assert!(ok, "{out}");
    assert_eq!(out, "ok   tests/hello_test.sh\nok   tests/shout_test.sh\n");
    assert_eq!(sh(repo.path(), "sh hello.sh --shout Ada").1, "HELLO, ADA!\n");
    assert_eq!(sh(repo.path(), "sh hello.sh Ada").1, "Hello, Ada!\n");

    // The new test really tests the flag: with the old hello.sh it fails.
    std::fs::write(repo.path().join("hello.sh"), HELLO_SH).unwrap();
    assert!(!sh(repo.path(), DEMO_TEST_SCRIPT).0);
}

#[test]
fn the_stream_reads_back_as_a_successful_amp_run() {
    let repo = demo_repo();
    let (_, stream) = run(&["--stream-json"], "Please add the flag", repo.path());
    let mut parser = AmpParser::new(AmpParserOptions {
        prompt: "Please add the flag".into(),
        continued: false,
        interactive: false,
        agent: "offline",
    });
    let events: Vec<AgentEvent> = stream.lines().flat_map(|l| parser.parse_line(l)).collect();
    let out = parser.finish(&ExitInfo::success());
    assert!(out.success, "{out:?}");
    let thread = out.thread_id.clone().unwrap();
    assert!(thread.starts_with("T-") && thread.len() == 38, "{thread}");
    assert!(matches!(&events[0], AgentEvent::Init { cwd: Some(c), .. } if Path::new(c) == repo.path()));
    assert!(matches!(&events[1], AgentEvent::UserText { text, .. } if text == "Please add the flag"));
    let results: Vec<(String, bool)> = events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::ToolResult { output, ok, .. } => Some((output.clone(), *ok)),
            _ => None,
        })
        .collect();
    assert_eq!(results.len(), 5);
    assert!(results.iter().all(|(_, ok)| *ok));
    // The Read results are the real file, numbered.
    assert!(results[0].0.starts_with("1: #!/bin/sh\n2: # Greets someone"), "{}", results[0].0);
    assert_eq!(results[2].0, "Edited hello.sh");
    assert_eq!(results[3].0, "Created tests/shout_test.sh");
    assert_eq!(out.usage.len(), 1);
    assert_eq!(out.usage[0].model.as_deref(), Some("claude-sonnet-4-5"));
    let u = out.usage[0].usage;
    assert_eq!((u.input, u.output, u.cache_read, u.cache_write), (33, 827, 51_906, 11_122));
}

#[test]
fn continuation_replays_then_documents_the_flag_under_the_same_thread() {
    let repo = demo_repo();
    run(&["--stream-json"], DEMO_PROMPT, repo.path());
    let (code, stream) = run(
        &[OFFLINE_SUBCOMMAND, "threads", "continue", "T-0000-test", "--stream-json"],
        DEMO_FOLLOW_UP_PROMPT,
        repo.path(),
    );
    assert_eq!(code, 0, "{stream}");
    let readme = std::fs::read_to_string(repo.path().join("README.md")).unwrap();
    assert!(readme.contains("sh hello.sh --shout  # HELLO, WORLD!"), "{readme}");
    let mut parser = AmpParser::new(AmpParserOptions {
        prompt: DEMO_FOLLOW_UP_PROMPT.into(),
        continued: true,
        interactive: false,
        agent: "offline",
    });
    let events: Vec<AgentEvent> = stream.lines().flat_map(|l| parser.parse_line(l)).collect();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, AgentEvent::UserText { text, replay: true } if text == DEMO_PROMPT))
    );
    let out = parser.finish(&ExitInfo::success());
    assert!(out.success);
    assert_eq!(out.thread_id.as_deref(), Some("T-0000-test"));
    let u = out.usage[0].usage;
    // Only the three messages after the new prompt count; the replayed one does not.
    assert_eq!((u.input, u.output, u.cache_read, u.cache_write), (15, 194, 36_831, 1_966));
    assert!(sh(repo.path(), DEMO_TEST_SCRIPT).0);
}

#[test]
fn a_changed_file_gives_an_error_tool_result_and_a_failed_run() {
    let repo = demo_repo();
    std::fs::write(repo.path().join("hello.sh"), "#!/bin/sh\necho hi\n").unwrap();
    let (code, stream) = run(&["--stream-json"], DEMO_PROMPT, repo.path());
    assert_eq!(code, 1);
    assert_eq!(std::fs::read_to_string(repo.path().join("hello.sh")).unwrap(), "#!/bin/sh\necho hi\n");
    assert!(!repo.path().join("tests/shout_test.sh").exists(), "the replay stops at the failed edit");
    let mut parser = AmpParser::new(AmpParserOptions { agent: "offline", ..Default::default() });
    let events: Vec<AgentEvent> = stream.lines().flat_map(|l| parser.parse_line(l)).collect();
    assert!(events.iter().any(|e| matches!(e, AgentEvent::ToolResult { ok: false, output, .. }
        if output.contains("old_str was not found in hello.sh"))));
    let out = parser.finish(&ExitInfo::code(code, ""));
    assert!(!out.success);
    assert!(out.error.unwrap().contains("old_str was not found"));
}

#[test]
fn plain_mode_version_and_empty_prompt() {
    let repo = demo_repo();
    let (code, out) = run(&[], DEMO_PROMPT, repo.path());
    assert_eq!(code, 0);
    assert!(out.starts_with("Added a `--shout` flag") && out.lines().count() == 1, "{out}");
    let (code, out) = run(&["--version"], "", repo.path());
    assert_eq!(code, 0);
    assert!(out.starts_with("amp-sessions offline demo agent"));
    let (code, out) = run(&["--stream-json"], "  \n", repo.path());
    assert_eq!((code, out.as_str()), (1, ""));
}

#[test]
fn chat_mode_answers_each_message_without_result_lines() {
    let input = concat!(
        r#"{"type":"user","message":{"role":"user","content":[{"type":"text","text":"hello there"}]}}"#,
        "\n",
        r#"{"type":"user","message":{"role":"user","content":"and again"}}"#,
        "\n"
    );
    let (code, out) = run(&["--stream-json", "--stream-json-input"], input, Path::new("/tmp"));
    assert_eq!(code, 0);
    let lines: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 5);
    assert!(lines.iter().all(|l| l["type"] != "result"));
    assert_eq!(lines[3]["message"]["content"][0]["text"], "and again");
    assert_eq!(lines[4]["message"]["stop_reason"], "end_turn");
}

#[test]
fn thread_ids_look_like_amp_ones_and_differ() {
    let a = new_thread_id();
    let b = new_thread_id();
    assert_ne!(a, b);
    let parts: Vec<&str> = a.trim_start_matches("T-").split('-').collect();
    assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12]);
    assert!(parts[2].starts_with('7'));
}

#[test]
fn pacing_sleeps_within_bounds() {
    let pacing = Pacing { min: Duration::from_millis(5), max: Duration::from_millis(15) };
    let start = Instant::now();
    for i in 0..4 {
        pacing.pause(i);
    }
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(20) && took < Duration::from_millis(500), "{took:?}");
}

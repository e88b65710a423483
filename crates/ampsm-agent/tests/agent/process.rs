//! Process supervision with real subprocesses: lines as they arrive, stdin, exit codes, the timeout and
//! cancellation stopping the whole process group (grandchildren included), line caps, missing programs,
//! and the offline demo agent end to end (one-shot, continuation, chat).

use ampsm_agent::offline::{DEMO_FOLLOW_UP_PROMPT, DEMO_PROMPT, DEMO_TEST_SCRIPT, demo_repo_files};
use ampsm_agent::{AgentError, RunReport, RunSpec, StreamItem, adapter_for, run_agent, spawn_interactive};
use ampsm_core::AgentEvent;
use ampsm_core::event::OutputStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn sh_spec(script: &str, dir: &Path) -> RunSpec {
    let mut spec = RunSpec::new("the prompt", dir);
    spec.program = Some(PathBuf::from("/bin/sh"));
    spec.extra_args = vec!["-c".into(), script.into()];
    spec.timeout = Duration::from_secs(20);
    spec
}

async fn run(name: &str, spec: &RunSpec) -> Result<(RunReport, Vec<StreamItem>, Option<u32>), AgentError> {
    let adapter = adapter_for(name).unwrap();
    let mut items = Vec::new();
    let mut spawned = None;
    let report =
        run_agent(adapter.as_ref(), spec, None, &mut |pid| spawned = Some(pid), &mut |item| items.push(item))
            .await?;
    Ok((report, items, spawned))
}

fn stdout_lines(items: &[StreamItem]) -> Vec<String> {
    items.iter().filter(|i| i.stream == OutputStream::Stdout).map(|i| i.raw.clone()).collect()
}

/// Whether a process is gone (or a zombie waiting for a reaper that is not us).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

#[tokio::test]
async fn lines_stdin_env_and_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let spec = sh_spec(
        "read line; echo \"got:$line\"; echo \"env:$AMPSM_PROMPT\"; echo oops >&2; exit 3",
        dir.path(),
    );
    let (report, items, spawned) = run("command", &spec).await.unwrap();
    assert_eq!(spawned, Some(report.pid));
    assert_eq!(stdout_lines(&items), ["got:the prompt", "env:the prompt"]);
    let err_item = items.iter().find(|i| i.stream == OutputStream::Stderr).unwrap();
    assert_eq!(
        err_item.events,
        [AgentEvent::Output { stream: OutputStream::Stderr, text: "oops".into(), truncated: false }]
    );
    let seqs: Vec<u64> = items.iter().map(|i| i.seq).collect();
    assert_eq!(seqs, (0..items.len() as u64).collect::<Vec<_>>());
    assert!(items.windows(2).all(|w| w[0].ts_ms <= w[1].ts_ms));
    assert_eq!(report.exit.code, Some(3));
    assert_eq!(report.exit.stderr_tail, "oops\n");
    assert!(!report.outcome.success);
    assert_eq!(report.outcome.error.as_deref(), Some("command exited with code 3; stderr: oops"));

    let (report, _, _) = run("command", &sh_spec("echo fine", dir.path())).await.unwrap();
    assert!(report.outcome.success);
    assert_eq!(report.outcome.final_text.as_deref(), Some("fine"));
}

#[tokio::test]
async fn lines_are_delivered_while_the_agent_still_runs() {
    let dir = tempfile::tempdir().unwrap();
    let spec = sh_spec("echo first; sleep 1; echo second", dir.path());
    let adapter = adapter_for("command").unwrap();
    let start = Instant::now();
    let mut arrivals = Vec::new();
    run_agent(adapter.as_ref(), &spec, None, &mut |_| {}, &mut |item| {
        arrivals.push((item.raw, start.elapsed()))
    })
    .await
    .unwrap();
    assert_eq!(arrivals.len(), 2);
    assert!(arrivals[0].1 < Duration::from_millis(800), "{arrivals:?}");
    assert!(arrivals[1].1 >= Duration::from_millis(900), "{arrivals:?}");
}

#[tokio::test]
async fn timeout_stops_the_whole_group_including_grandchildren() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = sh_spec("sleep 1000 & echo $!; sleep 1000 >/dev/null 2>&1 & echo $!; wait", dir.path());
    spec.timeout = Duration::from_millis(500);
    let start = Instant::now();
    let (report, items, _) = run("command", &spec).await.unwrap();
    assert!(start.elapsed() < Duration::from_secs(8), "{:?}", start.elapsed());
    assert!(report.exit.timed_out);
    assert!(!report.outcome.success);
    assert!(report.outcome.error.unwrap().contains("timed out"));
    let grandchildren: Vec<i32> = stdout_lines(&items).iter().map(|l| l.parse().unwrap()).collect();
    assert_eq!(grandchildren.len(), 2);
    for pid in grandchildren {
        assert!(gone(pid), "grandchild {pid} was left behind");
    }
    assert!(gone(report.pid as i32));
}

#[tokio::test]
async fn a_child_ignoring_int_and_term_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = sh_spec("trap '' INT TERM; echo ready; sleep 1000; sleep 1000", dir.path());
    spec.timeout = Duration::from_millis(300);
    let start = Instant::now();
    let (report, items, _) = run("command", &spec).await.unwrap();
    let took = start.elapsed();
    assert_eq!(stdout_lines(&items), ["ready"]);
    // INT, then TERM after 2 s, then KILL after 2 more.
    assert!(took >= Duration::from_millis(4200) && took < Duration::from_secs(10), "{took:?}");
    assert!(report.exit.timed_out);
    assert_eq!(report.exit.signal, Some(9));
}

#[tokio::test]
async fn cancellation_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let spec = sh_spec("echo started; sleep 1000", dir.path());
    let adapter = adapter_for("command").unwrap();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        tx.send(true).unwrap();
        tx
    });
    let start = Instant::now();
    let report = run_agent(adapter.as_ref(), &spec, Some(rx), &mut |_| {}, &mut |_| {}).await.unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(report.exit.cancelled && !report.exit.timed_out);
    assert_eq!(report.outcome.error.as_deref(), Some("command cancelled"));
    drop(canceller.await.unwrap());
}

#[tokio::test]
async fn leftovers_are_stopped_after_a_normal_exit() {
    let dir = tempfile::tempdir().unwrap();
    // One leftover keeps stdout open, one does not; the leader exits at once.
    let spec = sh_spec("sleep 1000 >/dev/null 2>&1 & echo $!; (sleep 1000) & echo $!; exit 0", dir.path());
    let start = Instant::now();
    let (report, items, _) = run("command", &spec).await.unwrap();
    assert!(start.elapsed() < Duration::from_secs(8), "{:?}", start.elapsed());
    assert!(report.outcome.success, "{:?}", report.outcome);
    assert!(!report.exit.timed_out);
    for pid in stdout_lines(&items) {
        assert!(gone(pid.parse().unwrap()), "leftover {pid} still runs");
    }
}

#[tokio::test]
async fn a_slow_reader_still_gets_every_line_after_the_agent_exited() {
    let dir = tempfile::tempdir().unwrap();
    let spec = sh_spec("awk 'BEGIN { for (i = 1; i <= 1500; i++) print i }'", dir.path());
    let adapter = adapter_for("command").unwrap();
    let mut seen = Vec::new();
    let report = run_agent(adapter.as_ref(), &spec, None, &mut |_| {}, &mut |item| {
        // A store that takes its time: 1500 lines × 2 ms is longer than any drain grace.
        std::thread::sleep(Duration::from_millis(2));
        seen.push(item.raw);
    })
    .await
    .unwrap();
    assert!(report.outcome.success);
    assert_eq!(seen.len(), 1500);
    assert_eq!(seen.last().map(String::as_str), Some("1500"));
}

#[tokio::test]
async fn long_lines_are_cut_and_reading_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = sh_spec(
        "s=$(printf '%300000s' '' | tr ' ' x); printf '%s\\nnext\\n%s\\n' \"$s\" \"$s\"; printf 'héllo\\n'",
        dir.path(),
    );
    spec.max_line_bytes = 1000;
    let (report, items, _) = run("command", &spec).await.unwrap();
    assert!(report.outcome.success);
    let lines: Vec<(usize, bool)> = items.iter().map(|i| (i.raw.len(), i.truncated)).collect();
    assert_eq!(lines, [(1000, true), (4, false), (1000, true), (6, false)]);
    assert!(matches!(&items[0].events[0], AgentEvent::Output { truncated: true, .. }));
    assert_eq!(items[3].raw, "héllo");

    // A cut in the middle of a multi-byte character does not leave half of it.
    spec.extra_args = vec!["-c".into(), "printf 'aé\\n'".into()];
    spec.max_line_bytes = 2;
    let (_, items, _) = run("command", &spec).await.unwrap();
    assert_eq!((items[0].raw.as_str(), items[0].truncated), ("a", true));
}

#[tokio::test]
async fn missing_programs_name_the_config_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = RunSpec::new("p", dir.path());
    spec.program = Some(PathBuf::from("/nonexistent/bin/amp"));
    let err = run("amp", &spec).await.err().unwrap();
    assert!(matches!(err, AgentError::NotFound { .. }));
    let msg = err.to_string();
    assert!(msg.contains("/nonexistent/bin/amp") && msg.contains("amp.path"), "{msg}");
    spec.program = Some(PathBuf::from("ampsm-no-such-claude"));
    let msg = run("claude", &spec).await.err().unwrap().to_string();
    assert!(msg.contains("agents.claude.path"), "{msg}");
    // A missing worktree is not reported as a missing program.
    let gone_dir = dir.path().join("removed");
    let err = run("command", &sh_spec("true", &gone_dir)).await.err().unwrap();
    assert!(matches!(err, AgentError::Spawn { .. }), "{err}");
}

// ---------------------------------------------------------------- the offline demo agent, end to end

fn offline_spec(prompt: &str, dir: &Path) -> RunSpec {
    let mut spec = RunSpec::new(prompt, dir);
    spec.program = Some(PathBuf::from(env!("CARGO_BIN_EXE_ampsm-offline-agent")));
    spec.env = vec![("AMPSM_OFFLINE_FAST".into(), "1".into())];
    spec.timeout = Duration::from_secs(30);
    spec
}

fn demo_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in demo_repo_files() {
        let full = dir.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
    }
    dir
}

fn run_tests(dir: &Path) -> bool {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(DEMO_TEST_SCRIPT)
        .current_dir(dir)
        .status()
        .unwrap()
        .success()
}

#[tokio::test]
async fn offline_demo_runs_as_a_real_subprocess() {
    let repo = demo_repo();
    let (report, items, _) = run("offline", &offline_spec(DEMO_PROMPT, repo.path())).await.unwrap();
    assert!(report.outcome.success, "{:?}", report.outcome);
    assert!(report.exit.stderr_tail.is_empty());
    let thread = report.outcome.thread_id.clone().unwrap();
    assert!(thread.starts_with("T-"));
    // The Init event arrives on the first line, so the thread id can be stored right away.
    assert!(matches!(&items[0].events[0], AgentEvent::Init { thread_id: Some(t), .. } if *t == thread));
    let tool_uses =
        items.iter().flat_map(|i| &i.events).filter(|e| matches!(e, AgentEvent::ToolUse { .. })).count();
    assert_eq!(tool_uses, 5);
    let u = report.outcome.total_usage();
    assert_eq!((u.input, u.output, u.cache_read, u.cache_write), (33, 827, 51_906, 11_122));
    assert!(run_tests(repo.path()));
    assert!(repo.path().join("tests/shout_test.sh").exists());

    let mut follow_up = offline_spec(DEMO_FOLLOW_UP_PROMPT, repo.path());
    follow_up.thread_id = Some(thread.clone());
    let (report, _, _) = run("offline", &follow_up).await.unwrap();
    assert!(report.outcome.success, "{:?}", report.outcome);
    assert_eq!(report.outcome.thread_id.as_deref(), Some(thread.as_str()));
    let u = report.outcome.total_usage();
    assert_eq!((u.input, u.output, u.cache_read, u.cache_write), (15, 194, 36_831, 1_966));
    let readme = std::fs::read_to_string(repo.path().join("README.md")).unwrap();
    assert!(readme.contains("--shout"));
}

#[tokio::test]
async fn offline_demo_is_paced_unless_fast() {
    let repo = demo_repo();
    let mut spec = offline_spec(DEMO_PROMPT, repo.path());
    spec.env.clear();
    let (report, items, _) = run("offline", &spec).await.unwrap();
    assert!(report.outcome.success);
    // 14 lines at 50–150 ms each.
    assert!(report.duration >= Duration::from_millis(700), "{:?}", report.duration);
    let first = items.first().unwrap().ts_ms;
    let last = items.last().unwrap().ts_ms;
    assert!(last - first >= 600, "lines arrive over time, not at once");
}

#[tokio::test]
async fn offline_chat_session() {
    let repo = demo_repo();
    let adapter = adapter_for("offline").unwrap();
    let spec = offline_spec("hello demo", repo.path());
    let mut chat = spawn_interactive(adapter.as_ref(), &spec).await.unwrap();
    assert!(chat.pid() > 0);
    let mut turns = 0;
    let mut texts = Vec::new();
    while turns < 1 {
        let item = tokio::time::timeout(Duration::from_secs(10), chat.recv()).await.unwrap().unwrap();
        for ev in item.events {
            match ev {
                AgentEvent::TurnEnd { .. } => turns += 1,
                AgentEvent::AssistantText { text, .. } => texts.push(text),
                _ => {}
            }
        }
    }
    chat.send_user_message("second message").await.unwrap();
    while turns < 2 {
        let item = tokio::time::timeout(Duration::from_secs(10), chat.recv()).await.unwrap().unwrap();
        turns += item.events.iter().filter(|e| matches!(e, AgentEvent::TurnEnd { .. })).count();
    }
    assert!(texts[0].contains("hello demo"));
    let report = chat.close(Duration::from_secs(5)).await.unwrap();
    assert!(report.outcome.success, "{:?}", report.outcome);
    assert!(!report.exit.cancelled);
    let u = report.outcome.total_usage();
    assert_eq!(u.output, 2 * 38);
}

#[tokio::test]
async fn chat_close_stops_an_agent_that_does_not_exit() {
    let dir = tempfile::tempdir().unwrap();
    // A fake Amp that ignores EOF on stdin.
    let script = dir.path().join("amp");
    std::fs::write(&script, "#!/bin/sh\necho '{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"T-9\"}'\nexec sleep 1000\n")
        .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut spec = RunSpec::new("", dir.path());
    spec.program = Some(script);
    let adapter = adapter_for("amp").unwrap();
    let mut chat = spawn_interactive(adapter.as_ref(), &spec).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), chat.recv()).await.unwrap().unwrap();
    assert!(matches!(&first.events[0], AgentEvent::Init { thread_id: Some(t), .. } if t == "T-9"));
    let pid = chat.pid() as i32;
    let report = chat.close(Duration::from_millis(300)).await.unwrap();
    assert!(report.exit.cancelled);
    assert!(!report.outcome.success);
    assert_eq!(report.outcome.thread_id.as_deref(), Some("T-9"));
    assert!(gone(pid));
}

#[tokio::test]
async fn agents_without_chat_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let adapter = adapter_for("codex").unwrap();
    let err = spawn_interactive(adapter.as_ref(), &RunSpec::new("x", dir.path())).await.err().unwrap();
    assert!(matches!(err, AgentError::Unsupported { .. }));
    assert!(err.to_string().contains("codex"));
}

#[tokio::test]
async fn a_timeout_longer_than_an_instant_can_reach_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    for timeout in [Duration::MAX, Duration::from_secs(5_000_000_000_000_000 * 3600)] {
        let mut spec = sh_spec("echo fine", dir.path());
        spec.timeout = timeout;
        let (report, _, _) = run("command", &spec).await.unwrap();
        assert!(report.outcome.success, "{:?}", report.outcome);
        assert_eq!(report.outcome.final_text.as_deref(), Some("fine"));
    }
}

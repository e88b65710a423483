//! Processes that leave the agent's process group (`setsid`, daemons) are still part of the run: they are
//! stopped at the timeout, on cancel and when the agent exits, and they cannot hold the run up by keeping
//! its stdout open.

use ampsm_agent::contain::tagged_pids;
use ampsm_agent::{RunReport, RunSpec, adapter_for, run_agent};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn sh_spec(script: &str, dir: &Path, tag: &str) -> RunSpec {
    let mut spec = RunSpec::new("the prompt", dir);
    spec.program = Some(PathBuf::from("/bin/sh"));
    spec.extra_args = vec!["-c".into(), script.into()];
    spec.timeout = Duration::from_secs(20);
    spec.run_tag = Some(tag.to_string());
    spec
}

async fn run(spec: &RunSpec, cancel_after: Option<Duration>) -> (RunReport, Duration) {
    let adapter = adapter_for("command").unwrap();
    let (tx, rx) = tokio::sync::watch::channel(false);
    if let Some(after) = cancel_after {
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = tx.send(true);
            // Keep the sender alive until the run is over.
            tokio::time::sleep(Duration::from_secs(120)).await;
        });
    }
    let started = Instant::now();
    let report = run_agent(adapter.as_ref(), spec, Some(rx), &mut |_| {}, &mut |_| {}).await.unwrap();
    let took = started.elapsed();
    eprintln!("the run took {took:?} (timeout {:?})", spec.timeout);
    (report, took)
}

/// Whether a process is gone (or a zombie).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

/// What /proc says about a process (for failure messages).
fn describe(pid: i32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    let keep: Vec<&str> = status
        .lines()
        .filter(|l| l.starts_with("State") || l.starts_with("Sig") || l.starts_with("PPid"))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    format!("{keep:?} env {:?} gone 500ms later: {}", String::from_utf8_lossy(&env), gone(pid))
}

/// Waits for `file` to hold a pid, and returns it.
fn read_pid(file: &Path) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(pid) = std::fs::read_to_string(file).ok().and_then(|t| t.trim().parse().ok()) {
            return pid;
        }
        assert!(Instant::now() < deadline, "{} was not written", file.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Asserts that `file` does not grow any more.
fn stops_growing(file: &Path) {
    let size = || std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    let before = size();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(size(), before, "{} still grows", file.display());
}

/// A daemon in a session of its own that writes into the worktree and holds the agent's stdout and
/// stderr open without writing to them; another that writes to stdout every 300 ms.
const ESCAPING: &str = "setsid sh -c 'echo $$ > quiet.pid; while :; do date >> escaped.txt; sleep 0.2; done' & \
    setsid sh -c 'echo $$ > chatty.pid; while :; do echo tick; sleep 0.3; done' & \
    setsid sleep 60 & sleep 30";

#[tokio::test]
async fn processes_that_left_the_group_are_stopped_at_the_timeout_within_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let tag = ampsm_agent::contain::new_run_tag();
    let mut spec = sh_spec(ESCAPING, dir.path(), &tag);
    spec.timeout = Duration::from_secs(2);
    let (report, took) = run(&spec, None).await;
    assert!(report.exit.timed_out, "{:?}", report.exit);
    assert!(took < Duration::from_secs(8), "the run took {took:?}");
    for f in ["quiet.pid", "chatty.pid"] {
        let pid = read_pid(&dir.path().join(f));
        assert!(gone(pid), "the escaped process {pid} ({f}) still runs: {}", describe(pid));
    }
    assert!(tagged_pids(&tag).is_empty(), "tagged processes left: {:?}", tagged_pids(&tag));
    stops_growing(&dir.path().join("escaped.txt"));
}

#[tokio::test]
async fn a_cancel_stops_processes_that_left_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let tag = ampsm_agent::contain::new_run_tag();
    let spec = sh_spec(ESCAPING, dir.path(), &tag);
    let (report, took) = run(&spec, Some(Duration::from_millis(800))).await;
    assert!(report.exit.cancelled, "{:?}", report.exit);
    assert!(took < Duration::from_secs(7), "the run took {took:?}");
    assert!(tagged_pids(&tag).is_empty(), "tagged processes left: {:?}", tagged_pids(&tag));
    stops_growing(&dir.path().join("escaped.txt"));
}

#[tokio::test]
async fn daemons_left_by_an_agent_that_finished_are_stopped_and_do_not_hold_it_up() {
    let dir = tempfile::tempdir().unwrap();
    let tag = ampsm_agent::contain::new_run_tag();
    // The daemon double-forks (its parent exits at once) and keeps stdout open, writing to it.
    let script = "(setsid sh -c 'echo $$ > chatty.pid; while :; do echo tick; sleep 0.3; done' &); \
        while [ ! -s chatty.pid ]; do sleep 0.05; done; echo done";
    let spec = sh_spec(script, dir.path(), &tag);
    let (report, took) = run(&spec, None).await;
    assert!(report.outcome.success, "{:?}", report.outcome);
    assert!(took < Duration::from_secs(6), "the run took {took:?}");
    let pid = read_pid(&dir.path().join("chatty.pid"));
    assert!(gone(pid), "the daemon {pid} still runs: {}", describe(pid));
    assert!(tagged_pids(&tag).is_empty());
}

#[tokio::test]
async fn an_untagged_escapee_writing_to_stdout_holds_the_run_up_only_a_few_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let tag = ampsm_agent::contain::new_run_tag();
    // `env -i` scrubs the tag: nothing can find it, but the run must still end soon after the agent.
    let script = "env -i setsid sh -c 'echo $$ > chatty.pid; while :; do echo tick; sleep 0.3; done' & \
        while [ ! -s chatty.pid ]; do sleep 0.05; done; echo done";
    let spec = sh_spec(script, dir.path(), &tag);
    let (report, took) = run(&spec, None).await;
    assert!(report.outcome.success, "{:?} {:?}", report.outcome, report.exit);
    let pid = read_pid(&dir.path().join("chatty.pid"));
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    assert!(took < Duration::from_secs(10), "the run took {took:?}");
}

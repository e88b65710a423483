//! Every process a run starts (agent, test script, setup, their descendants, daemonized or not) is stopped
//! with the run: at the timeout, on Ctrl-C, on `stop`, and by `repair` after a `kill -9` of the runner; and a
//! descendant that keeps the agent's stdout open cannot hold the command up.

use crate::support::{World, command_world, ctrl_c};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Live (non-zombie) processes whose working directory is `dir` or inside it: pid and command line.
fn processes_in(dir: &Path) -> Vec<(i64, String)> {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i64>() else { continue };
        let Ok(cwd) = std::fs::read_link(entry.path().join("cwd")) else { continue };
        let zombie = std::fs::read_to_string(entry.path().join("stat"))
            .map(|s| s.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z')))
            .unwrap_or(true);
        if cwd.starts_with(&dir) && !zombie {
            let cmd = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            found.push((pid, String::from_utf8_lossy(&cmd).replace('\0', " ")));
        }
    }
    found
}

/// Kills whatever is left in `dir`, so a failing test leaves nothing running.
struct Reaper(PathBuf);

impl Drop for Reaper {
    fn drop(&mut self) {
        for (pid, _) in processes_in(&self.0) {
            let _ = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

fn worktree(w: &World, session: &str) -> PathBuf {
    PathBuf::from(w.json(&["show", session])["session"]["worktree_path"].as_str().unwrap())
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(Instant::now() < deadline, "{what} did not happen");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Asserts that no process is left in `dir` and that `file` no longer grows.
fn all_stopped(dir: &Path, file: &Path) {
    // A killed process may take a moment to be reaped.
    let deadline = Instant::now() + Duration::from_secs(3);
    while !processes_in(dir).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(processes_in(dir).is_empty(), "processes left in {}: {:?}", dir.display(), processes_in(dir));
    let size = || std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    let before = size();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(size(), before, "{} still grows", file.display());
}

/// An agent that starts a daemon in a session of its own writing into the worktree (and holding stdout
/// open without writing to it), one that writes to stdout every second, and a silent `setsid sleep 60`
/// that keeps stdout open; then works for 30 s.
const ESCAPING_AGENT: &str = "setsid sh -c 'while :; do date >> escaped.txt; sleep 0.2; done' &\n\
     setsid sh -c 'while :; do date; sleep 1; done' &\n\
     setsid sleep 60 &\n\
     sleep 30";

fn new_session(w: &World, name: &str, extra: &[&str]) -> PathBuf {
    let mut args =
        vec!["new", "--repo", w.repo_arg(), "--name", name, "--agent", "command", "--prompt", "go"];
    args.extend_from_slice(extra);
    w.ok(&args);
    worktree(w, name)
}

#[test]
fn processes_that_left_the_agents_group_are_stopped_at_the_timeout_and_the_command_returns_in_seconds() {
    let w = command_world(ESCAPING_AGENT);
    let wt = new_session(&w, "escapes", &[]);
    let _reaper = Reaper(wt.clone());
    let started = Instant::now();
    let out = w.run(&["iterate", "escapes", "--timeout", "3s", "--json"]);
    let took = started.elapsed();
    eprintln!("iterate --timeout 3s returned after {took:?}");
    assert!(took < Duration::from_secs(10), "iterate --timeout 3s took {took:?}");
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["iteration"]["outcome"], "timeout", "{report}");
    assert!(wt.join("escaped.txt").exists(), "the daemon ran");
    all_stopped(&wt, &wt.join("escaped.txt"));
}

#[test]
fn ctrl_c_stops_processes_that_left_the_agents_group() {
    let w = command_world(ESCAPING_AGENT);
    let wt = new_session(&w, "ctrlc", &[]);
    let _reaper = Reaper(wt.clone());
    let child = w.spawn(&["iterate", "ctrlc"]);
    wait_for("the daemon's first write", || wt.join("escaped.txt").exists());
    let started = Instant::now();
    ctrl_c(child.id());
    let out = child.wait_with_output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    all_stopped(&wt, &wt.join("escaped.txt"));
}

#[test]
fn repair_after_a_kill_9_of_the_runner_stops_the_agent_and_its_escaped_daemon() {
    let w = command_world(ESCAPING_AGENT);
    let wt = new_session(&w, "orphan", &[]);
    let _reaper = Reaper(wt.clone());
    let mut runner = w.spawn(&["iterate", "orphan"]);
    wait_for("the agent and its daemon", || {
        wt.join("escaped.txt").exists() && w.json(&["show", "orphan"])["session"]["agent_pid"].is_i64()
    });
    runner.kill().unwrap(); // SIGKILL
    runner.wait().unwrap();
    assert!(!processes_in(&wt).is_empty(), "the agent outlives its runner until repair");
    let text = w.ok(&["repair"]);
    assert!(text.contains("orphan"), "{text}");
    all_stopped(&wt, &wt.join("escaped.txt"));
    assert_eq!(w.json(&["show", "orphan"])["session"]["status"], "error");
}

#[test]
fn repair_after_a_kill_9_of_the_runner_stops_its_test_script_and_the_scripts_daemon() {
    let w = command_world("echo done > done.txt");
    let script = "setsid sh -c 'while :; do date >> script-escaped.txt; sleep 0.2; done' &\n\
                  while :; do date >> script.txt; sleep 0.2; done";
    let wt = new_session(&w, "tests", &["--script", script]);
    let _reaper = Reaper(wt.clone());
    let mut runner = w.spawn(&["iterate", "tests"]);
    wait_for("the test script and its daemon", || {
        wt.join("script.txt").exists() && wt.join("script-escaped.txt").exists()
    });
    runner.kill().unwrap(); // SIGKILL
    runner.wait().unwrap();
    w.ok(&["repair"]);
    all_stopped(&wt, &wt.join("script.txt"));
    all_stopped(&wt, &wt.join("script-escaped.txt"));
    assert_eq!(w.json(&["show", "tests"])["session"]["status"], "error");
}

#[test]
fn repair_after_a_kill_9_during_setup_stops_the_setup_and_its_daemon() {
    let w = World::new();
    let marker = w.dir.path().join("setup-dir");
    let setup = format!(
        "pwd > {}; setsid sh -c 'while :; do date >> setup-escaped.txt; sleep 0.2; done' &\nsleep 60",
        marker.display()
    );
    let mut runner = w.spawn(&["new", "--repo", w.repo_arg(), "--name", "slow", "--setup", &setup]);
    wait_for("the setup's daemon", || {
        std::fs::read_to_string(&marker).is_ok_and(|d| Path::new(d.trim()).join("setup-escaped.txt").exists())
    });
    let wt = PathBuf::from(std::fs::read_to_string(&marker).unwrap().trim());
    let _reaper = Reaper(wt.clone());
    runner.kill().unwrap(); // SIGKILL
    runner.wait().unwrap();
    w.ok(&["repair"]);
    all_stopped(&wt, &wt.join("setup-escaped.txt"));
}

#[test]
fn stop_stops_processes_that_left_the_agents_group_whether_the_runner_reacts_or_not() {
    let w = command_world(ESCAPING_AGENT);
    let wt = new_session(&w, "stopme", &[]);
    let _reaper = Reaper(wt.clone());

    // The runner reacts: it stops the whole run.
    let runner = w.spawn(&["iterate", "stopme"]);
    wait_for("the daemon's first write", || wt.join("escaped.txt").exists());
    let started = Instant::now();
    w.ok(&["stop", "stopme"]);
    let out = runner.wait_with_output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    all_stopped(&wt, &wt.join("escaped.txt"));

    // The runner is stuck (stopped with SIGSTOP): `stop` kills the run's processes itself.
    std::fs::remove_file(wt.join("escaped.txt")).unwrap();
    let mut runner = w.spawn(&["iterate", "stopme"]);
    wait_for("the daemon's first write", || wt.join("escaped.txt").exists());
    let frozen = std::process::Command::new("kill").args(["-STOP", &runner.id().to_string()]).status();
    assert!(frozen.unwrap().success());
    w.ok(&["stop", "stopme", "--wait", "1s"]);
    let left = processes_in(&wt);
    let _ = runner.kill();
    let _ = runner.wait();
    assert!(left.is_empty(), "processes left in the worktree: {left:?}");
    all_stopped(&wt, &wt.join("escaped.txt"));
}

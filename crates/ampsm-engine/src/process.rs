//! Process facts the engine needs without spawning anything: whether a pid is alive, stopping a process
//! group, and stopping every process of a session's run by its tag ([`ampsm_agent::contain`]), which also
//! finds what left the group (`setsid`, daemons), even after the runner was killed.

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// Whether a process with this pid exists (a zombie counts as alive until reaped).
pub fn pid_alive(pid: i64) -> bool {
    if pid <= 0 || pid > i32::MAX as i64 {
        return false;
    }
    match kill(Pid::from_raw(pid as i32), None) {
        Ok(()) => true,
        Err(Errno::EPERM) => true,
        Err(_) => false,
    }
}

/// Fault injection for crash tests: when `AMPSM_FAULT_PAUSE` names `point`, print a marker on stderr and
/// sleep for a minute, so a test can `kill -9` the process exactly there. Costs one env lookup otherwise.
pub fn fault_point(point: &str) {
    if std::env::var("AMPSM_FAULT_PAUSE").is_ok_and(|v| v == point) {
        eprintln!("fault point reached: {point}");
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}

/// The pid of this process.
pub fn own_pid() -> i64 {
    std::process::id() as i64
}

/// Sends `signal` to the process group led by `pgid`; a group already gone is not an error.
pub fn signal_group(pgid: i64, signal: Signal) -> bool {
    if pgid <= 1 || pgid > i32::MAX as i64 {
        return false;
    }
    killpg(Pid::from_raw(pgid as i32), signal).is_ok()
}

/// Stops a process group: TERM, then KILL after `grace`, waiting until it is gone (at most `grace` twice).
pub fn stop_group(pgid: i64, grace: std::time::Duration) {
    if !signal_group(pgid, Signal::SIGTERM) {
        return;
    }
    let deadline = ampsm_core::duration::deadline_after(std::time::Instant::now(), grace);
    while std::time::Instant::now() < deadline {
        if !group_alive(pgid) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    signal_group(pgid, Signal::SIGKILL);
    let deadline = ampsm_core::duration::deadline_after(std::time::Instant::now(), grace);
    while group_alive(pgid) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Whether any process of the group is left.
pub fn group_alive(pgid: i64) -> bool {
    pgid > 1 && pgid <= i32::MAX as i64 && killpg(Pid::from_raw(pgid as i32), None).is_ok()
}

/// The tag of a session's run (agent, test script or setup) under the runner `runner_pid`: what every
/// process the run starts carries in [`ampsm_agent::contain::RUN_TAG_VAR`]. Made of what the session row
/// records (its id and `runner_pid`), so `repair` and `stop` find the run's processes after the runner
/// is gone; no other run has it (one runner runs one session's steps one after the other).
pub fn run_tag(session_id: &str, runner_pid: i64) -> String {
    format!("{session_id}.{runner_pid}")
}

/// Stops every process of a session's run whose runner is gone or does not react: the group of its agent
/// (or test script, or setup) when known, then whatever carries the run's tag (TERM, KILL after `grace`).
pub fn stop_run(
    session_id: &str,
    runner_pid: Option<i64>,
    agent_pid: Option<i64>,
    grace: std::time::Duration,
) {
    if let Some(agent) = agent_pid.filter(|p| group_alive(*p)) {
        stop_group(agent, grace);
    }
    if let Some(runner) = runner_pid {
        ampsm_agent::contain::stop_tagged(&run_tag(session_id, runner), grace);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_nonsense_is_not() {
        assert!(pid_alive(own_pid()));
        assert!(!pid_alive(0));
        assert!(!pid_alive(-5));
        assert!(!pid_alive(i32::MAX as i64));
    }
}

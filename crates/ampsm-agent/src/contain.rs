//! Containment of a run's processes beyond its process group. Every process a run starts (agent, test
//! script, setup command) gets [`RUN_TAG_VAR`]`=<tag>` in its environment; its children, grandchildren and
//! daemons that call `setsid` or double-fork inherit it (unless they scrub their environment). A run is
//! stopped by its process group and then by scanning `/proc/*/environ` for its tag, so a process that left
//! the group is found too, even after the runner itself was killed (`repair` knows the tag from the
//! database). No root, no cgroups: `/proc/<pid>/environ` of our own processes is readable (others are
//! skipped).

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The environment variable naming the run a process belongs to.
pub const RUN_TAG_VAR: &str = "AMPSM_RUN_ID";

/// How often the processes are looked for again while waiting for them to go.
const POLL: Duration = Duration::from_millis(50);

/// After SIGKILL, how long to keep looking for processes forked meanwhile.
const KILL_ROUNDS_FOR: Duration = Duration::from_secs(2);

/// A tag no other run of any process carries: `p<pid>-<unique>`.
pub fn new_run_tag() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    format!("p{}-{:x}-{}", std::process::id(), nanos, NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The live processes (not this one, not zombies) whose environment holds `RUN_TAG_VAR=tag`. Processes
/// whose environment cannot be read (another user's, or gone meanwhile) are skipped.
pub fn tagged_pids(tag: &str) -> Vec<i32> {
    if tag.is_empty() {
        return Vec::new();
    }
    let needle = format!("{RUN_TAG_VAR}={tag}");
    let needle = needle.as_bytes();
    let own = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut found = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        if pid == own || pid <= 1 {
            continue;
        }
        // A zombie's environment reads empty; EACCES and ENOENT are skipped.
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else { continue };
        if environ.split(|&b| b == 0).any(|entry| entry == needle) {
            found.push(pid);
        }
    }
    found
}

/// Whether any process of the run tagged `tag` is left.
pub fn any_tagged(tag: &str) -> bool {
    !tagged_pids(tag).is_empty()
}

/// Sends `signal` to every process tagged `tag`; returns those it was sent to.
pub fn signal_tagged(tag: &str, signal: Signal) -> Vec<i32> {
    tagged_pids(tag).into_iter().filter(|p| kill(Pid::from_raw(*p), signal).is_ok()).collect()
}

/// Whether a process has ended: gone, or a zombie. A process that is exiting no longer shows its
/// environment (so [`tagged_pids`] misses it) a moment before it is a zombie: what was signalled is
/// watched by pid until it ended.
pub fn ended(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // pid (comm) state …; comm may hold spaces and parentheses.
        Ok(stat) => match stat.rsplit_once(')') {
            Some((_, rest)) => matches!(rest.trim_start().chars().next(), Some('Z' | 'X' | 'x') | None),
            None => true,
        },
    }
}

/// Stops every process tagged `tag`: SIGTERM, then SIGKILL to those left after `grace` (at once when
/// `grace` is zero), again and again while new ones appear (a daemon may fork while it is killed), and
/// waits until each one found has ended; for at most `grace` plus two seconds. Returns how many distinct
/// processes were found.
pub fn stop_tagged(tag: &str, grace: Duration) -> usize {
    let mut seen = std::collections::HashSet::new();
    let left = |seen: &std::collections::HashSet<i32>| seen.iter().any(|p| !ended(*p));
    if !grace.is_zero() {
        let until = Instant::now() + grace;
        loop {
            let pids = tagged_pids(tag);
            if pids.is_empty() && !left(&seen) {
                return seen.len();
            }
            for p in pids {
                // Each process gets TERM once; later scans only catch new ones.
                if seen.insert(p) {
                    let _ = kill(Pid::from_raw(p), Signal::SIGTERM);
                }
            }
            if Instant::now() >= until {
                break;
            }
            std::thread::sleep(POLL);
        }
    }
    let until = Instant::now() + KILL_ROUNDS_FOR;
    loop {
        let pids = tagged_pids(tag);
        if pids.is_empty() && !left(&seen) {
            break;
        }
        for p in pids {
            seen.insert(p);
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
        }
        if Instant::now() >= until {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    seen.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn tags_are_unique() {
        assert_ne!(new_run_tag(), new_run_tag());
    }

    #[test]
    fn finds_and_stops_a_tagged_daemon_that_left_its_group() {
        let tag = new_run_tag();
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("daemon.pid");
        // The daemon ignores TERM and forks a grandchild of its own.
        let script = format!(
            "setsid sh -c 'trap \"\" TERM; sleep 60 & echo $$ > {}; while :; do sleep 0.1; done' </dev/null \
             >/dev/null 2>&1 &",
            pid_file.display()
        );
        let status = Command::new("sh").arg("-c").arg(&script).env(RUN_TAG_VAR, &tag).status().unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        while !pid_file.exists() || tagged_pids(&tag).len() < 2 {
            assert!(Instant::now() < deadline, "the daemon did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!any_tagged(&new_run_tag()), "another tag matches nothing");
        let started = Instant::now();
        assert!(stop_tagged(&tag, Duration::from_millis(300)) >= 2);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(tagged_pids(&tag).is_empty(), "left: {:?}", tagged_pids(&tag));
        let daemon: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
        assert!(ended(daemon));
        assert!(!ended(std::process::id() as i32));
    }
}

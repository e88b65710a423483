//! Running a session's test script: the user's shell command (`sh -c SCRIPT`, the one place a shell string is
//! right, since the script is a shell command by definition) in the session worktree, in its own process group,
//! with stdin closed, a timeout that kills the whole group, and only the tail of its output kept. Every process
//! it starts carries a run tag ([`ampsm_agent::contain`]): what it leaves behind, in its group or not
//! (`setsid`, daemons), is killed when it ends, and `repair` finds it by the tag after a crash.

use serde::Serialize;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Default limit for a test script run by `merge`.
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(600);

/// How many bytes of the script's output are kept (the end of it).
const OUTPUT_TAIL: usize = 8 * 1024;

/// How one script run ended.
#[derive(Debug, Clone, Serialize)]
pub struct ScriptRun {
    /// The command as given.
    pub script: String,
    /// Exit code; `None` when killed (timeout or signal).
    pub exit_code: Option<i32>,
    /// True when the timeout killed it.
    pub timed_out: bool,
    /// True when it was killed because the user interrupted (Ctrl-C).
    pub interrupted: bool,
    /// The last bytes of stdout and stderr, interleaved per stream as read.
    pub output_tail: String,
    pub duration_ms: u64,
}

impl ScriptRun {
    /// True when the script exited 0 in time.
    pub fn passed(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out && !self.interrupted
    }

    /// "exit code 1", "timed out after 5s", "killed by a signal".
    pub fn outcome(&self) -> String {
        if self.timed_out {
            format!("timed out after {:.1}s", self.duration_ms as f64 / 1000.0)
        } else if self.interrupted {
            "interrupted".into()
        } else {
            match self.exit_code {
                Some(c) => format!("exit code {c}"),
                None => "killed by a signal".into(),
            }
        }
    }

    /// The last few lines of output on one line, for error messages.
    pub fn short_tail(&self) -> String {
        let lines: Vec<&str> = self.output_tail.lines().filter(|l| !l.trim().is_empty()).collect();
        let start = lines.len().saturating_sub(3);
        let text = lines[start..].join(" | ");
        if text.is_empty() { "(no output)".into() } else { text }
    }
}

/// Runs `script` with `sh -c` in `dir`, killing its process group after `timeout`.
pub fn run_script(dir: &Path, script: &str, timeout: Duration) -> std::io::Result<ScriptRun> {
    run_script_with(dir, script, timeout, &|| false, None, &mut |_| {})
}

/// [`run_script`], also killing the group as soon as `stop` says so (polled every 20 ms), copying the
/// whole output (not only its tail) to `log` as it arrives, and telling `on_spawn` the pid of the script's
/// shell (which leads its process group) once it started.
pub fn run_script_with(
    dir: &Path,
    script: &str,
    timeout: Duration,
    stop: &dyn Fn() -> bool,
    log: Option<&mut dyn Write>,
    on_spawn: &mut dyn FnMut(u32),
) -> std::io::Result<ScriptRun> {
    let tag = ampsm_agent::contain::new_run_tag();
    run_script_tagged(dir, script, timeout, stop, log, on_spawn, &tag)
}

/// [`run_script_with`] with the run's tag given (a session's, [`crate::process::run_tag`], so that `repair`
/// can find the script's processes after a crash).
pub fn run_script_tagged(
    dir: &Path,
    script: &str,
    timeout: Duration,
    stop: &dyn Fn() -> bool,
    mut log: Option<&mut dyn Write>,
    on_spawn: &mut dyn FnMut(u32),
    tag: &str,
) -> std::io::Result<ScriptRun> {
    let started = Instant::now();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .env(ampsm_agent::contain::RUN_TAG_VAR, tag)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()?;
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let mut readers = 0;
    if let Some(out) = child.stdout.take() {
        spawn_reader(out, tx.clone());
        readers += 1;
    }
    if let Some(err) = child.stderr.take() {
        spawn_reader(err, tx.clone());
        readers += 1;
    }
    drop(tx);
    let pid = child.id();
    on_spawn(pid);
    // What the script prints is kept (tail, log): the environment's secrets are replaced first.
    let redactor = ampsm_core::Redactor::from_environment(&[]);
    let mut tail: Vec<u8> = Vec::new();
    let mut finished = 0;
    let mut take = |chunk: Vec<u8>, finished: &mut usize| {
        if chunk.is_empty() {
            *finished += 1;
            return;
        }
        let chunk = match std::str::from_utf8(&chunk).ok().and_then(|t| redactor.redact(t)) {
            Some(clean) => clean.into_bytes(),
            None => chunk,
        };
        if let Some(w) = log.as_mut() {
            let _ = w.write_all(&chunk);
        }
        tail.extend_from_slice(&chunk);
        if tail.len() > OUTPUT_TAIL {
            tail.drain(..tail.len() - OUTPUT_TAIL);
        }
    };
    let (mut timed_out, mut interrupted) = (false, false);
    let status = loop {
        while let Ok(chunk) = rx.try_recv() {
            take(chunk, &mut finished);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() >= timeout || stop() {
            timed_out = started.elapsed() >= timeout;
            interrupted = !timed_out;
            kill_group(pid);
            ampsm_agent::contain::stop_tagged(tag, Duration::ZERO);
            break child.wait()?;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // The group may have left helpers holding the pipes (in the group or not); never wait long for them.
    kill_group(pid);
    ampsm_agent::contain::stop_tagged(tag, Duration::ZERO);
    let grace = Instant::now() + Duration::from_secs(2);
    while finished < readers {
        match rx.recv_timeout(grace.saturating_duration_since(Instant::now())) {
            Ok(chunk) => take(chunk, &mut finished),
            Err(_) => break,
        }
    }
    if let Some(w) = log.as_mut() {
        let _ = w.flush();
    }
    Ok(ScriptRun {
        script: script.to_string(),
        exit_code: if timed_out || interrupted { None } else { status.code() },
        timed_out,
        interrupted,
        // Again on the whole tail: a secret may have been split between two reads.
        output_tail: redactor.apply(String::from_utf8_lossy(&tail).into_owned()),
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

/// Reads a pipe in chunks and sends them; an empty chunk marks the end.
fn spawn_reader(mut pipe: impl Read + Send + 'static, tx: mpsc::Sender<Vec<u8>>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = tx.send(Vec::new());
    });
}

fn kill_group(pid: u32) {
    if let Ok(raw) = i32::try_from(pid) {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(raw), nix::sys::signal::Signal::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_fails_and_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let ok = run_script(dir.path(), "echo hello; exit 0", Duration::from_secs(10)).unwrap();
        assert!(ok.passed(), "{ok:?}");
        assert!(ok.output_tail.contains("hello"));
        let bad = run_script(dir.path(), "echo broken >&2; exit 3", Duration::from_secs(10)).unwrap();
        assert_eq!(bad.exit_code, Some(3));
        assert!(bad.short_tail().contains("broken"));
        let slow = run_script(dir.path(), "sleep 30", Duration::from_millis(300)).unwrap();
        assert!(slow.timed_out && !slow.passed());
        assert!(slow.duration_ms < 10_000);
    }

    #[test]
    fn a_stop_kills_the_group_and_the_log_gets_the_whole_output() {
        let dir = tempfile::tempdir().unwrap();
        let mut log: Vec<u8> = Vec::new();
        let script = "i=0; while [ $i -lt 3000 ]; do echo line $i; i=$((i+1)); done";
        let full = run_script_with(
            dir.path(),
            script,
            Duration::from_secs(20),
            &|| false,
            Some(&mut log),
            &mut |_| {},
        )
        .unwrap();
        assert!(full.passed());
        let text = String::from_utf8(log).unwrap();
        assert_eq!(text.lines().count(), 3000, "the log has every line");
        assert!(full.output_tail.len() <= OUTPUT_TAIL && full.output_tail.ends_with("line 2999\n"));

        let started = Instant::now();
        let stopped = run_script_with(
            dir.path(),
            "sleep 30 & sleep 30; wait",
            Duration::from_secs(60),
            &|| started.elapsed() > Duration::from_millis(200),
            None,
            &mut |_| {},
        )
        .unwrap();
        assert!(stopped.interrupted && !stopped.timed_out && !stopped.passed(), "{stopped:?}");
        assert_eq!(stopped.outcome(), "interrupted");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn what_a_script_leaves_outside_its_group_is_stopped_with_it() {
        let dir = tempfile::tempdir().unwrap();
        for (script, timeout) in [
            // Exits at once, leaving a daemon that writes into the directory and holds the pipes.
            (
                "setsid sh -c 'while :; do date >> a.txt; sleep 0.1; done' & while [ ! -s a.txt ]; do sleep 0.05; done",
                20,
            ),
            // Runs into its timeout with the daemon.
            ("setsid sh -c 'while :; do date >> b.txt; sleep 0.1; done' & sleep 30", 1),
        ] {
            let tag = ampsm_agent::contain::new_run_tag();
            let started = Instant::now();
            let run = run_script_tagged(
                dir.path(),
                script,
                Duration::from_secs(timeout),
                &|| false,
                None,
                &mut |_| {},
                &tag,
            )
            .unwrap();
            assert!(started.elapsed() < Duration::from_secs(8), "{script}: {:?}", started.elapsed());
            assert_eq!(run.timed_out, timeout == 1, "{run:?}");
            assert!(ampsm_agent::contain::tagged_pids(&tag).is_empty(), "{script}: processes left");
        }
    }

    #[test]
    fn scripts_get_a_run_tag() {
        let dir = tempfile::tempdir().unwrap();
        let run = run_script_tagged(
            dir.path(),
            "echo \"$AMPSM_RUN_ID\"",
            Duration::from_secs(10),
            &|| false,
            None,
            &mut |_| {},
            "s1.42",
        )
        .unwrap();
        assert_eq!(run.output_tail, "s1.42\n");
    }
}

//! The Slurm scheduler, through its command-line tools (the stable interface: slurmrestd's schema changes
//! with every release).
//!
//! - **Submit**: `sbatch --parsable --array=<indexes>%K` of a small script that runs `batch worker <folder>
//!   $SLURM_ARRAY_TASK_ID`, with `--job-name`, `--time` (minutes, rounded up), `--output` into the
//!   submission's `logs/`, the configured partition, account and extra arguments; the environment of
//!   the coordinator goes along (`--export=ALL`, Slurm's default). It prints `ID` or `ID;cluster`.
//! - **Phases**: `scontrol -o show job ID` prints one line per array task (pending tasks may share a line,
//!   `ArrayTaskId=3-7%2`) with `JobState=`; tasks that ended longer than `MinJobAge` ago are gone from it.
//!   "Invalid job id" means every task is gone.
//! - **Cancel**: `scancel ID` (every task of the array).

use super::{Scheduler, SubmitRequest, TaskPhase, index_ranges, parse_index_ranges};
use crate::EngineError;
use ampsm_config::config::SlurmConfig;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

/// Slurm through `sbatch`, `scontrol` and `scancel` on `PATH`.
#[derive(Debug, Clone)]
pub struct Slurm {
    partition: Option<String>,
    account: Option<String>,
    extra_args: Vec<String>,
}

impl Slurm {
    pub fn from_config(c: &SlurmConfig) -> Slurm {
        Slurm { partition: c.partition.clone(), account: c.account.clone(), extra_args: c.extra_args.clone() }
    }

    /// The `sbatch` arguments of a submission (without the script).
    pub fn sbatch_args(&self, req: &SubmitRequest) -> Vec<String> {
        let minutes = req.time_limit.as_secs().div_ceil(60).max(1);
        let mut args = vec![
            "--parsable".to_string(),
            format!("--array={}%{}", index_ranges(&req.indexes), req.max_concurrent.max(1)),
            format!("--job-name={}", req.name),
            format!("--time={minutes}"),
            format!("--output={}", req.layout.logs().join("%a.out").display()),
            format!("--chdir={}", req.layout.root.display()),
            "--export=ALL".to_string(),
        ];
        if let Some(p) = &self.partition {
            args.push(format!("--partition={p}"));
        }
        if let Some(a) = &self.account {
            args.push(format!("--account={a}"));
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }
}

/// How long a Slurm tool may take: one that cannot reach its controller retries for a while (and longer
/// when the controller's host is gone), and the coordinator must not hang on it.
const TOOL_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs a Slurm tool, stopped after [`TOOL_TIMEOUT`]; its failure is one line naming the tool and what it
/// said.
fn run(tool: &str, args: &[String]) -> Result<std::process::Output, EngineError> {
    use std::io::Read;
    use std::process::Stdio;
    let mut child =
        Command::new(tool).args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().map_err(
            |e| {
                EngineError::Invalid(if e.kind() == std::io::ErrorKind::NotFound {
                    format!("`{tool}` was not found on PATH: the slurm executor needs the Slurm client tools (sbatch, scontrol, scancel) on this machine")
                } else {
                    format!("cannot run `{tool}`: {e}")
                })
            },
        )?;
    // Read both outputs beside the wait (a full pipe would stall the tool).
    let reader = |mut pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(p) = pipe.as_mut() {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = reader(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = reader(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < TOOL_TIMEOUT => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(EngineError::Invalid(format!(
                    "`{tool}` did not answer within {} s (is the Slurm controller up?)",
                    TOOL_TIMEOUT.as_secs()
                )));
            }
            Err(e) => return Err(EngineError::Invalid(format!("cannot wait for `{tool}`: {e}"))),
        }
    };
    Ok(std::process::Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

fn said(out: &std::process::Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    let text = if err.trim().is_empty() { String::from_utf8_lossy(&out.stdout) } else { err };
    text.trim().lines().last().unwrap_or("no output").to_string()
}

impl Scheduler for Slurm {
    fn submit(&self, req: &SubmitRequest) -> Result<String, EngineError> {
        std::fs::create_dir_all(req.layout.logs())
            .map_err(|source| EngineError::Io { path: req.layout.logs(), source })?;
        let script = req.layout.root.join("task.sh");
        let text = format!(
            "#!/bin/sh\n# A task of amp-sessions: runs one batch item on this node.\nexec {} batch worker {} \"$SLURM_ARRAY_TASK_ID\"\n",
            shell_quote(&req.program.to_string_lossy()),
            shell_quote(&req.layout.root.to_string_lossy())
        );
        super::write_atomic(&script, text.as_bytes())?;
        let mut args = self.sbatch_args(req);
        args.push(script.to_string_lossy().into_owned());
        let out = run("sbatch", &args)?;
        if !out.status.success() {
            return Err(EngineError::Invalid(format!("sbatch refused the job: {}", said(&out))));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let id = stdout.trim().split(';').next().unwrap_or("").trim().to_string();
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(EngineError::Invalid(format!("sbatch printed no job id: {:?}", stdout.trim())));
        }
        Ok(id)
    }

    fn phases(&self, job: &str) -> Result<BTreeMap<i64, TaskPhase>, EngineError> {
        let out = run("scontrol", &["-o".into(), "show".into(), "job".into(), job.to_string()])?;
        if !out.status.success() {
            let message = said(&out);
            if message.contains("Invalid job id") {
                return Ok(BTreeMap::new());
            }
            return Err(EngineError::Invalid(format!("scontrol cannot show job {job}: {message}")));
        }
        Ok(parse_scontrol(&String::from_utf8_lossy(&out.stdout)))
    }

    fn cancel(&self, job: &str) -> Result<(), EngineError> {
        let out = run("scancel", &[job.to_string()])?;
        if !out.status.success() {
            let message = said(&out);
            // Already gone: nothing to cancel.
            if !message.contains("Invalid job id") && !message.contains("already completing or completed") {
                return Err(EngineError::Invalid(format!("scancel {job} failed: {message}")));
            }
        }
        Ok(())
    }
}

/// The phase of each array task in `scontrol -o show job` output.
pub fn parse_scontrol(text: &str) -> BTreeMap<i64, TaskPhase> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let field = |name: &str| {
            line.split_whitespace().find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
        };
        let (Some(tasks), Some(state)) = (field("ArrayTaskId"), field("JobState")) else { continue };
        let Some(indexes) = parse_index_ranges(tasks) else { continue };
        let phase = match state {
            "PENDING" | "REQUEUED" | "REQUEUE_HOLD" | "REQUEUE_FED" | "SUSPENDED" | "CONFIGURING" => {
                TaskPhase::Pending
            }
            "RUNNING" | "COMPLETING" | "STAGE_OUT" | "SIGNALING" | "RESIZING" => TaskPhase::Running,
            other => TaskPhase::Ended { state: other.to_string(), ok: other == "COMPLETED" },
        };
        for i in indexes {
            out.insert(i, phase.clone());
        }
    }
    out
}

/// `text` in single quotes for `sh`.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::cluster::Layout;
    use std::time::Duration;

    #[test]
    fn sbatch_gets_the_array_the_limit_and_the_settings() {
        let slurm =
            Slurm { partition: Some("gpu".into()), account: None, extra_args: vec!["--qos=low".into()] };
        let req = SubmitRequest {
            name: "ampsm-1a2b3c4d".into(),
            layout: Layout::new("/shared/w/s1"),
            indexes: vec![0, 1, 2, 5],
            max_concurrent: 4,
            time_limit: Duration::from_secs(601),
            program: "/usr/bin/amp-sessions".into(),
        };
        let args = slurm.sbatch_args(&req);
        assert!(args.contains(&"--array=0-2,5%4".to_string()), "{args:?}");
        assert!(args.contains(&"--time=11".to_string()), "{args:?}");
        assert!(args.contains(&"--output=/shared/w/s1/logs/%a.out".to_string()), "{args:?}");
        assert!(args.contains(&"--partition=gpu".to_string()) && args.ends_with(&["--qos=low".to_string()]));
    }

    #[test]
    fn scontrol_lines_give_each_task_its_phase() {
        let text = "JobId=12 ArrayJobId=10 ArrayTaskId=2-4%2 JobName=x JobState=PENDING Reason=JobArrayTaskLimit\n\
                    JobId=11 ArrayJobId=10 ArrayTaskId=1 JobName=x JobState=RUNNING Reason=None\n\
                    JobId=10 ArrayJobId=10 ArrayTaskId=0 JobName=x JobState=FAILED Reason=NonZeroExitCode ExitCode=1:0\n\
                    JobId=13 ArrayJobId=10 ArrayTaskId=5 JobName=x JobState=COMPLETED Reason=None\n";
        let p = parse_scontrol(text);
        assert_eq!(p[&3], TaskPhase::Pending);
        assert_eq!(p[&1], TaskPhase::Running);
        assert_eq!(p[&0], TaskPhase::Ended { state: "FAILED".into(), ok: false });
        assert_eq!(p[&5], TaskPhase::Ended { state: "COMPLETED".into(), ok: true });
        assert_eq!(p.len(), 6);
    }
}

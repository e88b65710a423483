//! Shared pieces of the benchmark programs: finding (or building) the release binary, timing runs and
//! reading peak memory of child processes.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// The workspace root (the folder holding `bench/`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(PathBuf::from).unwrap_or_default()
}

/// The release `amp-sessions` binary: `AMPSM_BIN` if set, else `target/release/amp-sessions`, built with
/// `cargo build --release` when missing.
pub fn release_binary() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("AMPSM_BIN") {
        return Ok(PathBuf::from(p));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let bin = target.join("release").join("amp-sessions");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--quiet", "-p", "ampsm", "--bin", "amp-sessions"])
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("cannot run cargo to build amp-sessions: {e}"))?;
    if !status.success() || !bin.exists() {
        return Err(format!("building {} failed", bin.display()));
    }
    Ok(bin)
}

/// Runs `git args` in `dir` through the git crate (its environment scrubbing and timeout), failing with
/// git's message.
pub fn git(dir: &std::path::Path, args: &[&str]) -> Result<(), String> {
    ampsm_git::Git::new(dir).run(args).map(|_| ()).map_err(|e| e.to_string())
}

/// Peak resident set size of all waited-for children so far, in KiB (Linux reports ru_maxrss in KiB).
pub fn children_peak_rss_kib() -> i64 {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .map(|u| u.max_rss())
        .unwrap_or(-1)
}

/// Median and 95th percentile of durations (sorted in place).
pub fn median_p95(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    if samples.is_empty() {
        return (Duration::ZERO, Duration::ZERO);
    }
    let median = samples[samples.len() / 2];
    let p95 =
        samples[((samples.len() as f64 * 0.95).ceil() as usize).saturating_sub(1).min(samples.len() - 1)];
    (median, p95)
}

/// Prints one figure line: `name: value (target ...) PASS|FAIL` and returns whether it passed.
pub fn report(name: &str, value: f64, unit: &str, target: f64, lower_is_better: bool) -> bool {
    let pass = if lower_is_better { value <= target } else { value >= target };
    let cmp = if lower_is_better { "<=" } else { ">=" };
    println!(
        "{name}: {value:.2} {unit} (target {cmp} {target} {unit}) {}",
        if pass { "PASS" } else { "FAIL" }
    );
    pass
}

//! Event ingestion: `amp-sessions iterate` on an agent that prints 200,000 stream lines as fast as it can.
//! Prints events persisted, events per second over the whole `iterate` command, and peak RSS, against the
//! targets of issue 3 (all persisted, ≥ 100,000 events/s, ≤ 64 MB). Run:
//! `cargo run --release -p ampsm-bench --bin ingest-bench`.

use ampsm_bench::{children_peak_rss_kib, git, release_binary, report};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const EVENTS: u64 = 200_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let result = if args.get(1).map(String::as_str) == Some("--measure") && args.len() == 5 {
        measure(Path::new(&args[2]), Path::new(&args[3]), Path::new(&args[4]))
    } else {
        run()
    };
    if let Err(e) = result {
        eprintln!("ingest-bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let bin = release_binary()?;
    let firehose = bin.with_file_name("event-firehose");
    if !firehose.exists() {
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "--quiet", "-p", "ampsm-bench", "--bin", "event-firehose"])
            .current_dir(ampsm_bench::workspace_root())
            .status()
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err("building event-firehose failed".into());
        }
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let status = Command::new(me)
        .arg("--measure")
        .arg(&bin)
        .arg(&firehose)
        .arg(dir.path())
        .status()
        .map_err(|e| e.to_string())?;
    if status.success() { Ok(()) } else { Err("a target was missed".into()) }
}

fn measure(bin: &Path, firehose: &Path, dir: &Path) -> Result<(), String> {
    let home = dir.join("home");
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).map_err(|e| e.to_string())?;
    git(&repo, &["init", "-q", "-b", "main"])?;
    std::fs::write(repo.join("README.md"), "bench\n").map_err(|e| e.to_string())?;
    git(&repo, &["add", "README.md"])?;
    git(&repo, &["-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-q", "-m", "init"])?;
    std::fs::create_dir_all(&home).map_err(|e| e.to_string())?;
    std::fs::write(
        home.join("config.yaml"),
        // One run of 200,000 lines plus its init and result lines passes the default cap of recorded lines
        // per run (`session.max_run_lines`, 200,000): this benchmark measures ingestion, so it raises it.
        format!("amp:\n  path: {}\n  timeout: 10m\nsession:\n  max_run_lines: 1000000\n", firehose.display()),
    )
    .map_err(|e| e.to_string())?;
    let run = |args: &[&str]| -> Result<std::process::Output, String> {
        Command::new(bin)
            .args(args)
            .env("AMPSM_HOME", &home)
            .env("AMP_API_KEY", "bench")
            .env("FIREHOSE_EVENTS", EVENTS.to_string())
            .env_remove("AMPSM_DB_PATH")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))
    };
    let repo_arg: PathBuf = repo.clone();
    let out = run(&[
        "new",
        "--repo",
        repo_arg.to_str().unwrap_or("."),
        "--name",
        "firehose",
        "--agent",
        "amp",
        "--prompt",
        "go",
    ])?;
    if !out.status.success() {
        return Err(format!("new failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let started = Instant::now();
    let out = run(&["iterate", "firehose", "--json"])?;
    let took = started.elapsed();
    if !out.status.success() {
        return Err(format!("iterate failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let report_json: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let recorded = report_json["lines_recorded"].as_u64().unwrap_or(0);
    // Count what is really in the database.
    let store = ampsm_store::Store::open(&home.join("sessions.db")).map_err(|e| e.to_string())?;
    let (persisted, normalized) = store.event_totals().map_err(|e| e.to_string())?;
    let rate = persisted as f64 / took.as_secs_f64();
    let rss_mb = children_peak_rss_kib() as f64 * 1024.0 / 1_000_000.0;
    println!(
        "iterate on an agent printing {EVENTS} stream lines: {:.2} s, {recorded} recorded",
        took.as_secs_f64()
    );
    println!(
        "normalized events stored with them: {normalized} ({:.0}/s); the rate below counts lines",
        normalized as f64 / took.as_secs_f64()
    );
    let all = report("events persisted", persisted as f64, "events", EVENTS as f64, false);
    let fast = report("ingestion rate", rate, "events/s", 100_000.0, false);
    let small = report("peak RSS", rss_mb, "MB", 64.0, true);
    if all && fast && small { Ok(()) } else { Err("a target was missed".into()) }
}

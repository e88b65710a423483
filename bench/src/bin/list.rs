//! `list --json` over 1,000 sessions: median wall time and peak RSS of the release binary, against the
//! targets of issue 2 (median ≤ 15 ms, peak RSS ≤ 16 MiB). Run: `cargo run --release -p ampsm-bench --bin list-bench`.

use ampsm_bench::{children_peak_rss_kib, median_p95, release_binary, report};
use ampsm_core::SessionId;
use ampsm_store::{NewSession, Store};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SESSIONS: usize = 1_000;
const RUNS: usize = 60;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // Measuring happens in a child process of its own, so its peak-RSS figure covers only the `list`
    // runs (not the cargo build that may have produced the binary).
    if args.get(1).map(String::as_str) == Some("--measure") && args.len() == 4 {
        if let Err(e) = measure(std::path::Path::new(&args[2]), std::path::Path::new(&args[3])) {
            eprintln!("list-bench: {e}");
            std::process::exit(1);
        }
        return;
    }
    if let Err(e) = run() {
        eprintln!("list-bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let bin = release_binary()?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let home = dir.path().join("home");
    // Sessions are recorded through the store exactly as `new` records them; `list` reads only the store,
    // so 1,000 real worktrees would measure git, not `list`.
    {
        let mut store = Store::open(&home.join("sessions.db")).map_err(|e| e.to_string())?;
        for i in 0..SESSIONS {
            let id = SessionId::new_random();
            let repo = format!("/home/dev/src/project-{}", i % 20);
            let s = NewSession {
                name: format!("task-{i}"),
                branch: format!("amp/task-{i}-{}", id.short()),
                worktree_path: format!(
                    "{}/.ampsm/worktrees/project-{}/task-{i}-{}",
                    "/home/dev",
                    i % 20,
                    id.short()
                ),
                id: id.clone(),
                repo_path: repo,
                base_branch: "main".into(),
                base_commit: "4b825dc642cb6eb9a060e54bf8d69288fbee4904".into(),
                agent: ["amp", "claude", "codex"][i % 3].into(),
                model: Some("smart".into()),
                prompt: Some(format!("Implement feature number {i} with tests and documentation")),
                script: Some("npm test".into()),
                budget_usd: None,
                batch_item_id: None,
                bench_result_id: None,
                creating_pid: 1,
                permissions: None,
            };
            store.insert_creating_session(&s).map_err(|e| e.to_string())?;
            store.finish_creating(&id).map_err(|e| e.to_string())?;
        }
    }
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let status = Command::new(me)
        .arg("--measure")
        .arg(&bin)
        .arg(&home)
        .status()
        .map_err(|e| format!("cannot start the measuring process: {e}"))?;
    if status.success() { Ok(()) } else { Err("a target was missed".into()) }
}

fn measure(bin: &std::path::Path, home: &std::path::Path) -> Result<(), String> {
    let mut samples = Vec::with_capacity(RUNS);
    let mut bytes = 0usize;
    for i in 0..RUNS + 3 {
        let start = Instant::now();
        let out = Command::new(bin)
            .args(["list", "--json"])
            .env("AMPSM_HOME", home)
            .env_remove("AMPSM_DB_PATH")
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        let took = start.elapsed();
        if !out.status.success() {
            return Err(format!("list --json failed: {}", out.status));
        }
        if i == 0 {
            let parsed: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
            let n = parsed.as_array().map(|a| a.len()).unwrap_or(0);
            if n != SESSIONS {
                return Err(format!("list returned {n} sessions, expected {SESSIONS}"));
            }
        }
        bytes = out.stdout.len();
        if i >= 3 {
            samples.push(took); // the first runs warm the page cache
        }
    }
    let (median, p95) = median_p95(&mut samples);
    let rss_mib = children_peak_rss_kib() as f64 / 1024.0;
    println!("list --json over {SESSIONS} sessions, {RUNS} runs, {bytes} bytes of JSON each");
    let ok_time = report("median wall time", ms(median), "ms", 15.0, true);
    println!("p95 wall time: {:.2} ms", ms(p95));
    let ok_rss = report("peak RSS", rss_mib, "MiB", 16.0, true);
    if ok_time && ok_rss { Ok(()) } else { Err("a target was missed".into()) }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

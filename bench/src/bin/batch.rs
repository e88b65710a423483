//! Batch throughput: `amp-sessions batch start` on 100 items at concurrency 8 with an agent that takes
//! 0.5 s and writes a file (the `command` agent running `bash -c 'sleep 0.5; …'`, stamping its start and
//! end so the bench also checks that no more than 8 agents ever ran at once). Each item gets its own
//! session (worktree + branch), the agent's work is committed and recorded. Prints the wall time of the whole
//! command against the ideal (100 / 8 × 0.5 s = 6.25 s) and checks every item is accounted for: target
//! ratio ≤ 1.15 (issue 6). Run: `cargo run --release -p ampsm-bench --bin batch-bench`
//! (`--items N --concurrency C --repos R` to vary; items are spread over R repositories).

use ampsm_bench::{git, release_binary, report};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

const AGENT_SECONDS: f64 = 0.5;

struct Options {
    items: usize,
    concurrency: usize,
    repos: usize,
}

fn main() {
    let mut o = Options { items: 100, concurrency: 8, repos: 1 };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().and_then(|v| v.parse::<usize>().ok()).filter(|v| *v > 0);
        match (flag.as_str(), value) {
            ("--items", Some(v)) => o.items = v,
            ("--concurrency", Some(v)) => o.concurrency = v,
            ("--repos", Some(v)) => o.repos = v,
            _ => {
                eprintln!("usage: batch-bench [--items N] [--concurrency C] [--repos R]");
                std::process::exit(2);
            }
        }
    }
    match run(&o) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("batch-bench: {e}");
            std::process::exit(1);
        }
    }
}

fn run(o: &Options) -> Result<bool, String> {
    let bin = release_binary()?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).map_err(|e| e.to_string())?;
    // bash's $EPOCHREALTIME stamps the agent's start and end without another process.
    let agents_log = dir.path().join("agents.log");
    let agent = format!(
        "echo \"s $EPOCHREALTIME\" >> {log}; sleep {AGENT_SECONDS}; echo \"e $EPOCHREALTIME\" >> {log}; \
         echo \"$AMPSM_PROMPT\" > result.txt",
        log = agents_log.display()
    );
    let bash = if Path::new("/bin/bash").exists() { "/bin/bash" } else { "/usr/bin/bash" };
    std::fs::write(
        home.join("config.yaml"),
        format!(
            "agents:\n  command:\n    path: {bash}\n    args: [\"-c\", {}]\n",
            serde_json::to_string(&agent).map_err(|e| e.to_string())?
        ),
    )
    .map_err(|e| e.to_string())?;
    let mut yaml = format!(
        "name: throughput\nconcurrency: {}\ndefaults:\n  agent: command\n  timeout: 60s\nitems:\n",
        o.concurrency
    );
    for r in 0..o.repos {
        let repo = dir.path().join(format!("repo{r}"));
        std::fs::create_dir_all(&repo).map_err(|e| e.to_string())?;
        git(&repo, &["init", "-q", "-b", "main"])?;
        std::fs::write(repo.join("README.md"), "bench\n").map_err(|e| e.to_string())?;
        git(&repo, &["add", "README.md"])?;
        git(
            &repo,
            &["-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-q", "-m", "init"],
        )?;
    }
    for i in 0..o.items {
        yaml.push_str(&format!(
            "  - name: item-{i:03}\n    prompt: \"task {i}\"\n    repos: [./repo{}]\n",
            i % o.repos
        ));
    }
    let file = dir.path().join("batch.yaml");
    std::fs::write(&file, yaml).map_err(|e| e.to_string())?;

    let started = Instant::now();
    let out = Command::new(&bin)
        .args(["batch", "start", "--file"])
        .arg(&file)
        .arg("--json")
        .env("AMPSM_HOME", &home)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env_remove("AMPSM_DB_PATH")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let took = started.elapsed().as_secs_f64();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!("batch start printed no JSON ({e}): {}", String::from_utf8_lossy(&out.stderr))
    })?;

    // Every item accounted for: passed, with its own session and one commit of the agent's file.
    let items = doc["items"].as_array().cloned().unwrap_or_default();
    let passed = items.iter().filter(|i| i["status"] == "passed").count();
    let sessions: std::collections::HashSet<&str> =
        items.iter().filter_map(|i| i["session"]["id"].as_str()).collect();
    let store = ampsm_store::Store::open(&home.join("sessions.db")).map_err(|e| e.to_string())?;
    let commits = store.agent_commit_total().map_err(|e| e.to_string())?;

    let ideal = o.items as f64 / o.concurrency as f64 * AGENT_SECONDS;
    println!(
        "batch of {} items on {} repo(s) at concurrency {}, agent {AGENT_SECONDS} s each: {took:.2} s \
         (ideal {ideal:.2} s); {passed} passed, {} sessions, {commits} agent commits; status {}",
        o.items,
        o.repos,
        o.concurrency,
        sessions.len(),
        doc["status"].as_str().unwrap_or("?")
    );
    let peak = peak_agents(&agents_log)?;
    println!("most agents running at once: {peak} (bound {})", o.concurrency);
    let all_there = passed == o.items && sessions.len() == o.items && commits == o.items as i64;
    println!("every item accounted for: {}", if all_there { "PASS" } else { "FAIL" });
    let ratio_ok = report("wall time / ideal", took / ideal, "x", 1.15, true);
    Ok(all_there && ratio_ok && peak <= o.concurrency)
}

/// The largest number of agents between their start and end stamps at any moment.
fn peak_agents(log: &Path) -> Result<usize, String> {
    let text = std::fs::read_to_string(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut events: Vec<(f64, i32)> = text
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(k, t)| t.trim().parse::<f64>().ok().map(|t| (t, if k == "s" { 1 } else { -1 })))
        .collect();
    // Ends before starts at the same instant.
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut now, mut peak) = (0i32, 0i32);
    for (_, d) in events {
        now += d;
        peak = peak.max(now);
    }
    Ok(peak.max(0) as usize)
}

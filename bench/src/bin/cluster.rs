//! Batches and benchmark runs on a cluster (issue 15): the same batch of 40 items over 4 repositories (an
//! agent of 2 s that writes a file; every fifth item's script fails), and the same benchmark of 12 results
//! (4 problems × 3 repeats with that agent; one problem's hidden test fails), run with `--executor local`
//! and then with `--executor slurm` on a single-node Slurm cluster on loopback (Debian's `slurm-wlm` and
//! `munge`, started here as the tests do; run as root after `bash .ci/install-slurm.sh`). Prints the wall
//! times, whether every item and result ended the same way, and the coordinator's costs: its CPU time per
//! item (the `batch start` process and its git children; the agents run under Slurm), the wall time per
//! item it adds over the local run, and the time to take one result bundle in (median, p95, max). Run:
//! `cargo run --release -p ampsm-bench --bin cluster-bench` (`--items N --repos R --concurrency C`).

use ampsm_bench::{git, release_binary, report};
use ampsm_testutils::slurm::SlurmCluster;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const AGENT_SECONDS: f64 = 2.0;

struct Options {
    items: usize,
    repos: usize,
    concurrency: usize,
}

fn main() {
    let mut o = Options { items: 40, repos: 4, concurrency: 2 };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().and_then(|v| v.parse::<usize>().ok()).filter(|v| *v > 0);
        match (flag.as_str(), value) {
            ("--items", Some(v)) => o.items = v,
            ("--repos", Some(v)) => o.repos = v,
            ("--concurrency", Some(v)) => o.concurrency = v,
            _ => {
                eprintln!("usage: cluster-bench [--items N] [--repos R] [--concurrency C]");
                std::process::exit(2);
            }
        }
    }
    match run(&o) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("cluster-bench: {e}");
            std::process::exit(1);
        }
    }
}

/// One run of the batch: its wall time, the CPU time of the command and its children, and each item's
/// status by name.
struct Run {
    wall: Duration,
    cpu: Duration,
    statuses: BTreeMap<String, String>,
}

fn cpu_of_children() -> Duration {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .map(|u| {
            let t =
                |tv: nix::sys::time::TimeVal| Duration::new(tv.tv_sec() as u64, tv.tv_usec() as u32 * 1000);
            t(u.user_time()) + t(u.system_time())
        })
        .unwrap_or_default()
}

/// Runs `bin args… file --json` in the home `home` with `env`, and reads what it printed.
fn run_json(
    bin: &Path,
    args: &[&str],
    file: &Path,
    home: &Path,
    env: &[(String, String)],
) -> Result<serde_json::Value, String> {
    let out = Command::new(bin)
        .args(args)
        .arg(file)
        .arg("--json")
        .env("AMPSM_HOME", home)
        .env_remove("AMPSM_DB_PATH")
        .envs(env.iter().cloned())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    serde_json::from_slice(&out.stdout).map_err(|e| {
        format!("{} printed no JSON ({e}): {}", args[..2].join(" "), String::from_utf8_lossy(&out.stderr))
    })
}

fn run(o: &Options) -> Result<bool, String> {
    let bin = release_binary()?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let bash = if Path::new("/bin/bash").exists() { "/bin/bash" } else { "/usr/bin/bash" };
    let agent = format!("sleep {AGENT_SECONDS}; echo \"$AMPSM_PROMPT\" > result.txt");
    let config = format!(
        "agents:\n  command:\n    path: {bash}\n    args: [\"-c\", {}]\nexecutors:\n  slurm:\n    work_dir: {}\n",
        serde_json::to_string(&agent).map_err(|e| e.to_string())?,
        dir.path().join("shared").display()
    );
    let mut yaml = format!(
        "name: cluster-bench\nconcurrency: {}\ndefaults:\n  agent: command\n  timeout: 120s\nitems:\n",
        o.concurrency
    );
    for r in 0..o.repos {
        let repo = dir.path().join(format!("repo{r}"));
        std::fs::create_dir_all(&repo).map_err(|e| e.to_string())?;
        git(&repo, &["init", "-q", "-b", "main"])?;
        git(&repo, &["config", "user.name", "bench"])?;
        git(&repo, &["config", "user.email", "bench@localhost"])?;
        std::fs::write(repo.join("README.md"), "bench\n").map_err(|e| e.to_string())?;
        git(&repo, &["add", "README.md"])?;
        git(&repo, &["commit", "-q", "-m", "init"])?;
    }
    for i in 0..o.items {
        let script = if i % 5 == 4 { "grep -q never result.txt" } else { "test -f result.txt" };
        yaml.push_str(&format!(
            "  - name: item-{i:03}\n    prompt: \"task {i}\"\n    repos: [./repo{}]\n    script: \"{script}\"\n",
            i % o.repos
        ));
    }
    let file = dir.path().join("batch.yaml");
    std::fs::write(&file, yaml).map_err(|e| e.to_string())?;

    let batch = |executor: &str, env: &[(String, String)]| -> Result<Run, String> {
        let home = dir.path().join(format!("home-{executor}"));
        std::fs::create_dir_all(&home).map_err(|e| e.to_string())?;
        std::fs::write(home.join("config.yaml"), &config).map_err(|e| e.to_string())?;
        let cpu_before = cpu_of_children();
        let started = Instant::now();
        let doc = run_json(&bin, &["batch", "start", "--executor", executor, "--file"], &file, &home, env)?;
        let wall = started.elapsed();
        let cpu = cpu_of_children().saturating_sub(cpu_before);
        let statuses = doc["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|i| {
                (
                    i["item_name"].as_str().unwrap_or("?").to_string(),
                    i["status"].as_str().unwrap_or("?").to_string(),
                )
            })
            .collect();
        Ok(Run { wall, cpu, statuses })
    };

    let local = batch("local", &[])?;
    println!(
        "local: {} items on {} repositories at concurrency {}, agent {AGENT_SECONDS} s: {:.1} s",
        o.items,
        o.repos,
        o.concurrency,
        local.wall.as_secs_f64()
    );
    let started = Instant::now();
    let cluster = SlurmCluster::start();
    println!(
        "slurm: a single-node cluster ({} CPUs) up in {:.1} s",
        cluster.cpus(),
        started.elapsed().as_secs_f64()
    );
    let slurm = batch("slurm", &cluster.env())?;
    println!("slurm: the same batch: {:.1} s", slurm.wall.as_secs_f64());

    let passed = local.statuses.values().filter(|s| *s == "passed").count();
    let same = local.statuses == slurm.statuses && local.statuses.len() == o.items;
    println!(
        "every item ended the same way ({passed} passed, {} failed): {}",
        o.items - passed,
        if same { "PASS" } else { "FAIL" }
    );
    if !same {
        for (name, s) in &local.statuses {
            let other = slurm.statuses.get(name).map(String::as_str).unwrap_or("missing");
            if other != s {
                println!("  {name}: local {s}, slurm {other}");
            }
        }
    }
    let store = ampsm_store::Store::open(&dir.path().join("home-slurm").join("sessions.db"))
        .map_err(|e| e.to_string())?;
    let mut ingest: Vec<Duration> = Vec::new();
    for batch in store.list_batches().map_err(|e| e.to_string())? {
        for sub in
            store.submissions_of(ampsm_store::jobs::JobKind::Batch, &batch.id).map_err(|e| e.to_string())?
        {
            for t in store.tasks_of(&sub.id).map_err(|e| e.to_string())? {
                if let Some(ms) = t.ingest_ms {
                    ingest.push(Duration::from_millis(ms as u64));
                }
            }
        }
    }
    let (median, p95) = ampsm_bench::median_p95(&mut ingest);
    let max = ingest.iter().max().copied().unwrap_or_default();
    println!(
        "taking one result bundle in ({} bundles): median {} ms, p95 {} ms, max {} ms",
        ingest.len(),
        median.as_millis(),
        p95.as_millis(),
        max.as_millis()
    );
    let per_item_cpu = slurm.cpu.as_secs_f64() / o.items as f64;
    let per_item_wall = (slurm.wall.as_secs_f64() - local.wall.as_secs_f64()) / o.items as f64;
    println!("wall time the cluster adds per item over the local run: {:.2} s", per_item_wall);
    let cpu_ok = report("coordinator CPU time per item", per_item_cpu, "s", 0.5, true);
    let ingest_ok = report("p95 time to take a bundle in", p95.as_secs_f64(), "s", 1.0, true);

    // The benchmark: 4 problems (one per repository) × 3 repeats, the same agent.
    let mut suite = format!(
        "name: cluster-bench-suite\nconcurrency: {}\nrepeats: 3\ntimeout: 2m\nagents: [command]\nproblems:\n",
        o.concurrency
    );
    for p in 0..4 {
        let test = if p == 3 { "grep -q never result.txt" } else { "test -f result.txt" };
        suite.push_str(&format!(
            "  - id: problem-{p}\n    repo: ./repo{}\n    prompt: \"problem {p}\"\n    test: \"{test}\"\n",
            p % o.repos
        ));
    }
    let suite_file = dir.path().join("suite.yaml");
    std::fs::write(&suite_file, suite).map_err(|e| e.to_string())?;
    let bench =
        |executor: &str, env: &[(String, String)]| -> Result<(Duration, BTreeMap<String, String>), String> {
            let home = dir.path().join(format!("home-{executor}"));
            let started = Instant::now();
            let doc = run_json(
                &bin,
                &["bench", "custom", "--executor", executor, "--config"],
                &suite_file,
                &home,
                env,
            )?;
            let results = doc["results"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|r| {
                    (
                        format!("{}#{}", r["instance_id"].as_str().unwrap_or("?"), r["repeat"]),
                        r["status"].as_str().unwrap_or("?").to_string(),
                    )
                })
                .collect();
            Ok((started.elapsed(), results))
        };
    let (local_took, local_results) = bench("local", &[])?;
    let (slurm_took, slurm_results) = bench("slurm", &cluster.env())?;
    let resolved = local_results.values().filter(|s| *s == "resolved").count();
    let bench_same = local_results == slurm_results && local_results.len() == 12;
    println!(
        "benchmark of 12 results (4 problems × 3 repeats): local {:.1} s, slurm {:.1} s; every result ended the \
         same way ({resolved} resolved): {}",
        local_took.as_secs_f64(),
        slurm_took.as_secs_f64(),
        if bench_same { "PASS" } else { "FAIL" }
    );
    Ok(same && bench_same && cpu_ok && ingest_ok && ingest.len() == o.items)
}

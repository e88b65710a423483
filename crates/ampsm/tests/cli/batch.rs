//! Batch runs from YAML, driven through the real binary: the seed example as written (with an Amp
//! stand-in and a fake `npm`), dry runs, validation errors with file:line:column, retries in fresh
//! sessions, merge on pass, timeouts, abort from another process (every agent process group gone within
//! 2 s), resume after `kill -9` of the runner (nothing finished re-runs), exports and clean.

use crate::support::{World, command_world, one_line, processes_in_groups, real_claude_world};
use ampsm_testutils::repo::{git, init_repo};
use ampsm_testutils::{install_fake_agent_as, requires};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The seed's YAML, exactly as PRODUCT.md writes it.
const SEED: &str = r#"name: "Authentication Features"
repos:
  - path: "./frontend"
    baseBranch: "main"
  - path: "./backend"
    baseBranch: "develop"
items:
  - name: "jwt-auth"
    prompt: "Implement JWT authentication middleware"
    script: "npm test"
  - name: "refresh-tokens"
    prompt: "Add refresh token rotation"
concurrency: 2
"#;

/// An Amp stand-in that writes `work.txt` (with the prompt) and reports success.
const AMP_WRITES: &str = r#"{"format": "amp", "steps": [
  {"emit": {"type": "system", "subtype": "init", "cwd": "{{cwd}}", "session_id": "{{thread_id}}", "tools": [], "mcp_servers": []}},
  {"sleep_ms": 100},
  {"write_file": {"path": "work.txt", "content": "{{prompt}}\n"}},
  {"emit": {"type": "result", "subtype": "success", "duration_ms": 100, "is_error": false, "num_turns": 1, "result": "done", "session_id": "{{thread_id}}"}}
]}"#;

/// A world with `frontend` (main) and `backend` (main + develop) next to the batch file, and `amp` played
/// by the fake agent.
fn seed_world(scenario: &str) -> World {
    let w = World::new();
    init_repo(&w.dir.path().join("frontend"));
    let backend = init_repo(&w.dir.path().join("backend"));
    git(&backend, &["branch", "develop"]);
    let bin = w.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let amp = install_fake_agent_as(&bin, "amp");
    w.write_config(&format!("amp:\n  path: {}\n", amp.display()));
    w.set_env("FAKE_AGENT_SCENARIO", scenario);
    w.set_env("AMP_API_KEY", "sgamp_test_key");
    w
}

fn write(w: &World, name: &str, text: &str) -> PathBuf {
    let p = w.dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn status(w: &World, id: &str) -> Value {
    w.json(&["batch", "status", id])
}

fn item_statuses(v: &Value) -> Vec<String> {
    v["items"].as_array().unwrap().iter().map(|i| i["status"].as_str().unwrap().to_string()).collect()
}

/// Polls `batch status` until `done` holds (at most `limit`).
fn wait_for(w: &World, id: &str, limit: Duration, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let v = status(w, id);
        if done(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {v:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_seed_example_runs_as_written_and_exports_its_results() {
    let w = seed_world(AMP_WRITES);
    // `npm test` is the item's script: a stand-in npm that passes when the agent's file is there.
    let bin = w.dir.path().join("bin");
    std::fs::write(bin.join("npm"), "#!/bin/sh\n[ \"$1\" = test ] && test -f work.txt\n").unwrap();
    std::process::Command::new("chmod").arg("+x").arg(bin.join("npm")).status().unwrap();
    w.set_env("PATH", &format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()));
    let file = write(&w, "batch-config.yaml", SEED);
    let file = file.to_str().unwrap();

    // The dry run prints the plan (2 items × 2 repositories) and starts nothing.
    let plan = w.ok(&["batch", "start", "--file", file, "--dry-run"]);
    assert!(plan.contains("4 runs = 2 items × 2 repositories, concurrency 2"), "{plan}");
    assert!(plan.contains("develop") && plan.contains("npm test"), "{plan}");
    let plan = w.json(&["batch", "start", "--file", file, "--dry-run"]);
    let runs = plan["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    assert_eq!(runs[1]["item"], "jwt-auth");
    assert!(runs[1]["repo"].as_str().unwrap().ends_with("/backend"));
    assert_eq!(runs[1]["base_branch"], "develop");
    assert_eq!(runs[1]["agent"], "amp");
    assert_eq!(w.json(&["batch", "list"]).as_array().unwrap().len(), 0, "a dry run records nothing");

    // The real run, from the folder of the file (relative paths resolve against the file, not the cwd).
    let out = w.cmd().args(["batch", "start", "--file", file]).current_dir("/").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("[4/4] passed"), "plain progress lines when stdout is not a terminal: {stdout}");
    assert!(!stdout.contains('\u{1b}'), "no escape codes when stdout is not a terminal: {stdout:?}");

    let list = w.json(&["batch", "list"]);
    let id = list[0]["id"].as_str().unwrap().to_string();
    assert_eq!(list[0]["status"], "completed");
    let v = status(&w, &id[..8]);
    assert_eq!(v["counts"]["passed"], 4, "{v:#}");
    assert_eq!(item_statuses(&v), ["passed"; 4]);
    // Each run is a session on its own branch from the item's base, with the agent's work committed.
    let backend_item = &v["items"][1];
    assert_eq!(backend_item["base_branch"], "develop");
    let session = &backend_item["session"];
    let wt = PathBuf::from(session["worktree_path"].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(wt.join("work.txt")).unwrap().trim(),
        "Implement JWT authentication middleware"
    );
    assert_eq!(git(&wt, &["status", "--porcelain"]), "");
    let shown = w.json(&["show", session["id"].as_str().unwrap()]);
    assert_eq!(shown["session"]["script"], "npm test");
    assert_eq!(shown["session"]["base_branch"], "develop");

    // Exports: CSV with a header and one row per item, JSON lines, and a JSON document to a file.
    let csv = w.ok(&["batch", "export", &id, "--format", "csv"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 5, "{csv}");
    assert!(
        lines[0].starts_with("batch_id,batch_name,item_id,seq,item,repo_path,base_branch,agent"),
        "{csv}"
    );
    assert!(lines[1].contains(",jwt-auth,") && lines[1].contains(",passed,"), "{csv}");
    assert!(lines[1].contains("Authentication Features"));
    assert!(csv.contains("\r\n"), "RFC 4180 line ends");
    let jwt = csv::ReaderBuilder::new()
        .from_reader(csv.as_bytes())
        .deserialize::<BTreeMap<String, String>>()
        .next();
    let jwt = jwt.unwrap().unwrap();
    assert!(
        jwt["started_at"].ends_with('Z') && jwt["started_at"].contains('T'),
        "times as RFC 3339: {jwt:?}"
    );
    // --out a folder: a file named after the batch inside it.
    let results = w.dir.path().join("results");
    std::fs::create_dir(&results).unwrap();
    let wrote = w.json(&["batch", "export", &id, "--format", "csv", "--out", results.to_str().unwrap()]);
    let file = PathBuf::from(wrote["out"].as_str().unwrap());
    assert_eq!(file.parent().unwrap(), results);
    assert_eq!(
        file.file_name().unwrap().to_str().unwrap(),
        format!("batch-authentication-features-{}.csv", &id[..8])
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), csv);
    let jsonl = w.ok(&["batch", "export", &id, "--format", "jsonl"]);
    let rows: Vec<Value> = jsonl.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 4);
    assert!(
        rows.iter().all(|r| r["status"] == "passed" && r["sessions"] == 1 && r["commits"] == 1),
        "{rows:?}"
    );
    let out = w.dir.path().join("export.json");
    w.ok(&["batch", "export", &id, "--format", "json", "--out", out.to_str().unwrap()]);
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(doc["batch"]["name"], "Authentication Features");
    assert_eq!(doc["items"].as_array().unwrap().len(), 4);

    // Clean removes every worktree; the unmerged work is kept in a snapshot first.
    let cleaned = w.json(&["batch", "clean", &id]);
    let sessions = cleaned["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 4);
    assert!(
        sessions.iter().all(|s| s["worktree_removed"] == true && s["snapshot"].is_string()),
        "{cleaned:#}"
    );
    assert!(!wt.exists());
    let snap = sessions[1]["snapshot"].as_str().unwrap();
    assert_eq!(
        git(&w.dir.path().join("backend"), &["show", &format!("{snap}:work.txt")]).trim(),
        "Implement JWT authentication middleware"
    );
}

#[test]
fn batch_files_are_checked_with_file_line_column_and_field() {
    let w = command_world("true");
    let cases: &[(&str, &str)] = &[
        (
            "name: x\nrepos: [./repo]\nitems:\n  - name: a\n    prompt: p\n    retry: 3\n",
            ":6:5: unknown field `retry`",
        ),
        (
            "name: x\nrepos: [./repo]\nitems:\n  - name: a\n    prompt: p\n    timeout: soon\n",
            ":6:14: items[0].timeout: invalid duration",
        ),
        (
            "name: x\nrepos: [./repo]\ndefaults:\n  agent: robot\nitems:\n  - name: a\n    prompt: p\n",
            ":4:10: defaults.agent: unknown agent \"robot\"",
        ),
        (
            "name: x\nrepos:\n  - path: ./nowhere\nitems:\n  - name: a\n    prompt: p\n",
            ":3:11: repos[0]: repository \"./nowhere\" does not exist",
        ),
        (
            "name: x\nrepos:\n  - path: ./repo\n    baseBranch: develop\nitems:\n  - name: a\n    prompt: p\n",
            ":3:11: repos[0].baseBranch: \"develop\" is not a branch or commit",
        ),
        ("name: x\nrepos: [./repo]\nitems:\n  - name: a\n", ":4:5: items[0]: missing field `prompt`"),
    ];
    for (yaml, expected) in cases {
        let file = write(&w, "b.yaml", yaml);
        let (code, err) = w.fails(&["batch", "start", "--file", file.to_str().unwrap()]);
        let line = one_line(&err);
        assert_eq!(code, 2, "{line}");
        assert!(
            line.starts_with(&format!("error: {}{expected}", file.display())),
            "{line}\nexpected {expected}"
        );
    }
    assert_eq!(w.json(&["batch", "list"]).as_array().unwrap().len(), 0, "nothing was recorded");
    let (code, err) = w.fails(&["batch", "status", "feedbeef"]);
    assert_eq!(code, 2);
    assert!(one_line(&err).contains("no batch matches \"feedbeef\""), "{err}");
}

#[test]
fn retries_use_fresh_sessions_merge_on_pass_merges_and_timeouts_are_reported() {
    // The agent writes out.txt; the script fails the first time it runs for an item, then passes.
    let w =
        command_world("case \"$AMPSM_PROMPT\" in slow*) sleep 30;; esac; echo \"$AMPSM_PROMPT\" > out.txt");
    let marks = w.dir.path().join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    let yaml = format!(
        "name: retries\nrepos: [./repo]\ndefaults:\n  agent: command\n  retries: 1\n  budget: 2.5\n  model: small\nitems:\n  - name: flaky\n    prompt: flaky work\n    mergeOnPass: true\n    script: \"test -f {m}/flaky || {{ touch {m}/flaky; exit 1; }}\"\n  - name: slow\n    prompt: slow work\n    timeout: 1s\n    retries: 0\n",
        m = marks.display()
    );
    let file = write(&w, "retries.yaml", &yaml);
    let started = Instant::now();
    let out = w.run(&["batch", "start", "--file", file.to_str().unwrap(), "--json"]);
    assert!(started.elapsed() < Duration::from_secs(20), "the timeout stopped the slow agent");
    assert_eq!(out.status.code(), Some(1), "not every item passed");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "failed");
    let flaky = &v["items"][0];
    assert_eq!(flaky["status"], "passed", "{v:#}");
    assert_eq!(flaky["attempts"], 2);
    assert_eq!(flaky["merged"], true, "{flaky:#}");
    assert!(flaky["session"]["name"].as_str().unwrap().ends_with("-2"), "a new session for the retry");
    let shown = w.json(&["show", flaky["session"]["id"].as_str().unwrap()]);
    assert_eq!(shown["session"]["budget_usd"], 2.5, "defaults reach the session: {shown:#}");
    assert_eq!(shown["session"]["model"], "small");
    let slow = &v["items"][1];
    assert_eq!(slow["status"], "timeout", "{slow:#}");
    assert_eq!(slow["attempts"], 1);

    // The first attempt's session is kept for review; the merge landed on main in the user's checkout.
    let sessions = w.json(&["list"]);
    let names: Vec<&str> = sessions.as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert!(names.iter().any(|n| n.starts_with("flaky-") && n.ends_with("-1")), "{names:?}");
    assert_eq!(git(&w.repo, &["show", "main:out.txt"]).trim(), "flaky work");
    assert_eq!(std::fs::read_to_string(w.repo.join("out.txt")).unwrap().trim(), "flaky work");
    assert_eq!(git(&w.repo, &["status", "--porcelain"]), "");
}

#[test]
fn abort_from_another_process_stops_every_agent_and_the_queue_at_once() {
    let w = seed_world(&ampsm_testutils::scenario_path("amp_hang_with_child").display().to_string());
    let yaml = "name: hang\nrepos: [./frontend, ./backend]\nconcurrency: 3\nitems:\n  - name: one\n    prompt: wait\n  - name: two\n    prompt: wait\n  - name: three\n    prompt: wait\n";
    let file = write(&w, "hang.yaml", yaml);
    let started = w.json(&["batch", "start", "--file", file.to_str().unwrap(), "--detach"]);
    let id = started["id"].as_str().unwrap().to_string();
    let runner = started["runner_pid"].as_i64().unwrap();

    // Three agents (each with a grandchild) run; three items wait in the queue.
    let v = wait_for(&w, &id, Duration::from_secs(30), "three running agents", |v| {
        v["items"].as_array().unwrap().iter().filter(|i| i["session"]["agent_pid"].is_i64()).count() == 3
    });
    assert_eq!(v["status"], "running");
    assert_eq!(v["counts"]["queued"], 3, "{v:#}");
    let groups: HashSet<i64> =
        v["items"].as_array().unwrap().iter().filter_map(|i| i["session"]["agent_pid"].as_i64()).collect();
    std::thread::sleep(Duration::from_millis(300)); // let the grandchildren start
    assert!(processes_in_groups(&groups).len() >= 3, "agents are running");

    // While it runs, resume and clean refuse (exit 3) and change nothing.
    for cmd in ["resume", "clean"] {
        let (code, err) = w.fails(&["batch", cmd, &id]);
        assert_eq!(code, 3, "{err}");
        assert!(one_line(&err).contains("is running (runner process"), "{err}");
    }

    let t = Instant::now();
    let report = w.json(&["batch", "abort", &id[..8]]);
    let took = t.elapsed();
    // A guard against a hang, not a speed check: the command looks again for agents that were just
    // starting for up to two seconds (see the engine's jobs module), and a loaded machine adds its own
    // start-up; `batch-bench` measures how long runs take.
    assert!(took < Duration::from_secs(10), "abort took {took:?}");
    assert_eq!(report["was_active"], true);
    assert_eq!(report["queued_aborted"], 3);
    assert_eq!(report["agents_left"], 0, "{report:#}");
    let left = processes_in_groups(&groups);
    assert!(left.is_empty(), "agent processes left after abort: {left:?}");

    // The runner notices, marks the interrupted items aborted and ends.
    let v = wait_for(&w, &id, Duration::from_secs(15), "the runner to end", |v| v["status"] == "aborted");
    assert_eq!(item_statuses(&v), ["aborted"; 6], "{v:#}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{runner}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!Path::new(&format!("/proc/{runner}/cmdline")).exists() || runner_is_zombie(runner));
    let log = std::fs::read_to_string(w.home().join("logs").join(format!("batch-{id}.log"))).unwrap();
    assert!(log.contains("ended: aborted"), "{log}");
    // Aborting again is harmless.
    assert_eq!(w.json(&["batch", "abort", &id])["was_active"], false);
}

fn runner_is_zombie(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z')))
        .unwrap_or(true)
}

#[test]
fn resume_after_kill_9_runs_only_what_had_not_finished() {
    // Every run appends its prompt to runs.log; `slow` hangs the first time only.
    let dir_marker = "$AMPSM_TEST_DIR";
    let w = command_world(&format!(
        "echo \"$AMPSM_PROMPT\" >> {dir_marker}/runs.log; \
         if [ \"$AMPSM_PROMPT\" = slow ] && [ ! -f {dir_marker}/slow-once ]; then touch {dir_marker}/slow-once; sleep 60; fi; \
         echo \"$AMPSM_PROMPT\" > out.txt"
    ));
    w.set_env("AMPSM_TEST_DIR", w.dir.path().to_str().unwrap());
    let yaml = "name: crashy\nrepos: [./repo]\ndefaults:\n  agent: command\nitems:\n  - name: first\n    prompt: first\n  - name: slow\n    prompt: slow\n  - name: last\n    prompt: last\n";
    let file = write(&w, "crashy.yaml", yaml);
    let started = w.json(&["batch", "start", "--file", file.to_str().unwrap(), "--detach"]);
    let id = started["id"].as_str().unwrap().to_string();
    let runner = started["runner_pid"].as_i64().unwrap();
    let v = wait_for(&w, &id, Duration::from_secs(30), "first passed, slow running", |v| {
        v["items"][0]["status"] == "passed" && v["items"][1]["session"]["agent_pid"].is_i64()
    });
    assert_eq!(item_statuses(&v), ["passed", "running", "queued"]);
    let agent_group: HashSet<i64> = [v["items"][1]["session"]["agent_pid"].as_i64().unwrap()].into();

    // kill -9 the runner: the next look at the batch ends it failed (the one policy for a dead runner of a
    // batch or a bench run), its unfinished items aborted, and says how to go on.
    std::process::Command::new("kill").args(["-9", &runner.to_string()]).status().unwrap();
    let v =
        wait_for(&w, &id, Duration::from_secs(10), "the runner to be gone", |v| v["runner_alive"] == false);
    assert_eq!(v["status"], "failed", "{v:#}");
    assert_eq!(item_statuses(&v), ["passed", "aborted", "aborted"]);
    assert!(v["items"][1]["error"].as_str().unwrap().starts_with("interrupted"), "{v:#}");
    assert!(v["stop_reason"].as_str().unwrap().contains("stopped before the run finished"), "{v:#}");
    assert!(v["note"].as_str().unwrap().contains("batch resume"), "{v:#}");
    let listed = w.ok(&["batch", "list"]);
    assert!(listed.contains("interrupted (resume)"), "{listed}");

    // Resume: the interrupted item and the queued one run; the finished one does not.
    let out = w.run(&["batch", "resume", &id[..8]]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(processes_in_groups(&agent_group).is_empty(), "the orphaned agent was stopped");
    let v = status(&w, &id);
    assert_eq!(v["status"], "completed");
    assert_eq!(item_statuses(&v), ["passed", "passed", "passed"]);
    assert_eq!(v["items"][0]["attempts"], 1);
    assert_eq!(v["items"][1]["attempts"], 2, "the interrupted attempt counts, and a new session ran");
    let runs = std::fs::read_to_string(w.dir.path().join("runs.log")).unwrap();
    let runs: Vec<&str> = runs.lines().collect();
    assert_eq!(runs.iter().filter(|r| **r == "first").count(), 1, "{runs:?}");
    assert_eq!(runs.iter().filter(|r| **r == "slow").count(), 2, "{runs:?}");
    assert_eq!(runs.iter().filter(|r| **r == "last").count(), 1, "{runs:?}");

    // Nothing is left to resume now.
    let (code, err) = w.fails(&["batch", "resume", &id]);
    assert_eq!(code, 2);
    assert!(one_line(&err).contains("nothing left to run"), "{err}");
}

#[test]
fn status_follow_streams_json_lines_until_the_batch_ends() {
    let w = command_world("sleep 0.3; echo done > out.txt");
    let yaml = "name: follow\nrepos: [./repo]\nconcurrency: 2\ndefaults:\n  agent: command\nitems:\n  - name: a\n    prompt: a\n  - name: b\n    prompt: b\n  - name: c\n    prompt: c\n";
    let file = write(&w, "follow.yaml", yaml);
    let started = w.json(&["batch", "start", "--file", file.to_str().unwrap(), "--detach"]);
    let id = started["id"].as_str().unwrap();
    let out = w.run(&["batch", "status", id, "--follow", "--json"]);
    assert!(out.status.success());
    let lines: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let last = lines.last().unwrap();
    assert_eq!(last["event"], "batch");
    assert_eq!(last["status"], "completed", "{last:#}");
    assert_eq!(last["counts"]["passed"], 3);
    for name in ["a", "b", "c"] {
        assert!(
            lines.iter().any(|l| l["event"] == "item"
                && l["item"]["item_name"] == name
                && l["item"]["status"] == "passed"),
            "{name} passed: {lines:?}"
        );
    }
}

#[test]
fn concurrency_bounds_the_agents_running_at_once() {
    // Each agent logs its start and end; at most 3 may overlap, and they really do run side by side.
    let w = command_world(
        "echo \"s $(date +%s%N)\" >> \"$AMPSM_TEST_DIR/agents.log\"; sleep 0.3; \
         echo \"e $(date +%s%N)\" >> \"$AMPSM_TEST_DIR/agents.log\"; echo x > out.txt",
    );
    w.set_env("AMPSM_TEST_DIR", w.dir.path().to_str().unwrap());
    let mut yaml =
        String::from("name: bounded\nrepos: [./repo]\nconcurrency: 3\ndefaults:\n  agent: command\nitems:\n");
    for i in 0..9 {
        yaml.push_str(&format!("  - name: i{i}\n    prompt: p{i}\n"));
    }
    let file = write(&w, "bounded.yaml", &yaml);
    let t = Instant::now();
    let v = w.json(&["batch", "start", "--file", file.to_str().unwrap()]);
    let took = t.elapsed();
    assert_eq!(v["counts"]["passed"], 9, "{v:#}");
    let log = std::fs::read_to_string(w.dir.path().join("agents.log")).unwrap();
    let mut events: Vec<(u128, i32)> = log
        .lines()
        .map(|l| {
            let (kind, ts) = l.split_once(' ').unwrap();
            (ts.parse().unwrap(), if kind == "s" { 1 } else { -1 })
        })
        .collect();
    assert_eq!(events.len(), 18, "{log}");
    events.sort();
    let (mut now, mut peak) = (0, 0);
    for (_, d) in events {
        now += d;
        peak = peak.max(now);
    }
    assert!(peak <= 3, "{peak} agents ran at once:\n{log}");
    assert!(peak >= 2, "agents never overlapped:\n{log}");
    assert!(took < Duration::from_millis(9 * 300), "faster than one at a time: {took:?}");
}

#[test]
fn a_batch_notifies_once_when_it_ends_not_once_per_item() {
    let w = command_world("echo x > out.txt");
    let notes = w.dir.path().join("notes.log");
    let file = write(
        &w,
        "notify.yaml",
        "name: quiet\nrepos: [./repo]\ndefaults:\n  agent: command\nitems:\n  - name: a\n    prompt: a\n  - name: b\n    prompt: b\n  - name: c\n    prompt: c\n",
    );
    let v = w.json(&["batch", "start", "--file", file.to_str().unwrap()]);
    assert_eq!(v["counts"]["passed"], 3, "{v:#}");
    let lines: Vec<String> = std::fs::read_to_string(&notes).unwrap().lines().map(str::to_string).collect();
    assert_eq!(lines, ["completed|batch quiet: completed: 3 of 3 passed, 0 merged"]);
}

#[test]
fn a_whole_batch_budget_stops_every_running_agent_and_starts_nothing_more() {
    // Claude Code stand-ins that each cost $0.0615 after their first message and $0.0813 after their
    // second, then keep going for 6 s: two of them together pass the batch's $0.15 budget.
    let w = World::new();
    let bin = w.dir.path().join("bin");
    let claude = install_fake_agent_as(&bin, "claude");
    let notes = w.dir.path().join("notifications.log");
    w.write_config(&format!(
        "agents:\n  claude:\n    path: {}\nbatch:\n  budget_usd: 0.15\nnotifications:\n  desktop: false\n  command: 'echo \"$AMPSM_EVENT|$AMPSM_STATUS|$AMPSM_MESSAGE\" >> {}'\n",
        claude.display(),
        notes.display()
    ));
    w.set_env("FAKE_AGENT_SCENARIO", ampsm_testutils::scenario_path("claude_budget").to_str().unwrap());
    w.set_env("ANTHROPIC_API_KEY", "sk-ant-test");
    let file = write(
        &w,
        "capped.yaml",
        "name: capped\nrepos: [./repo]\ndefaults:\n  agent: claude\nconcurrency: 2\nitems:\n  \
         - {name: one, prompt: p1}\n  - {name: two, prompt: p2}\n  - {name: three, prompt: p3}\n",
    );
    let plan = w.ok(&["batch", "start", "--file", file.to_str().unwrap(), "--dry-run"]);
    // The budget comes from the config (`batch.budget_usd`); the file's own `budget:` and the flag win.
    assert!(plan.contains("Budget of the whole batch: $0.15"), "{plan}");
    let own =
        write(&w, "own.yaml", "name: own\nrepos: [./repo]\nbudget: 0.5\nitems:\n  - {name: a, prompt: p}\n");
    let plan = w.json(&["batch", "start", "--file", own.to_str().unwrap(), "--dry-run"]);
    assert_eq!(plan["budget_usd"], 0.5);
    let plan = w.json(&["batch", "start", "--file", own.to_str().unwrap(), "--dry-run", "--budget", "2"]);
    assert_eq!(plan["budget_usd"], 2.0);
    let (code, err) = w.fails(&["batch", "start", "--file", own.to_str().unwrap(), "--budget", "-1"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("a budget must be a positive amount in USD, got -1"), "{err}");

    let started = Instant::now();
    let out = w.run(&["batch", "start", "--file", file.to_str().unwrap(), "--json"]);
    let took = started.elapsed();
    assert!(!out.status.success(), "a batch stopped by its budget is not a success");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = v["id"].as_str().unwrap().to_string();
    // The agents would have run 6 s more: the stop came long before.
    assert!(took < Duration::from_secs(6), "took {took:?}");
    assert!(stderr.contains("warning: budget: batch"), "the 80 % warning: {stderr}");
    assert_eq!(v["status"], "aborted", "{v:#}");
    let reason = v["stop_reason"].as_str().unwrap();
    assert!(reason.contains(&format!("the budget of batch {} was reached", &id[..8])), "{reason}");
    assert!(v["spent_usd"].as_f64().unwrap() >= 0.15, "{v:#}");
    assert!(stderr.contains("its running agents were stopped"), "{stderr}");

    let items = v["items"].as_array().unwrap();
    let by_name = |n: &str| items.iter().find(|i| i["item_name"] == n).unwrap();
    let mut planned = 0;
    for n in ["one", "two"] {
        let item = by_name(n);
        assert_eq!(item["status"], "failed", "{item:#}");
        assert_eq!(item["attempts"], 1, "no retry after the budget: {item:#}");
        assert!(item["error"].as_str().unwrap().starts_with("stopped at the budget of batch"), "{item:#}");
        // The partial work is committed on the session branch; nothing after the stop happened.
        let wt = PathBuf::from(item["session"]["worktree_path"].as_str().unwrap());
        assert_eq!(git(&wt, &["status", "--porcelain"]), "");
        assert!(!wt.join("LATE.md").exists(), "{n} ran past the budget");
        // On a loaded machine one agent can be stopped before it wrote anything (the other's second
        // message reached the budget); what an agent did write is in the commit.
        if wt.join("PLAN.md").exists() {
            assert!(git(&wt, &["show", "HEAD:PLAN.md"]).starts_with("# Plan"), "{n}");
            assert!(git(&wt, &["log", "-1", "--format=%s"]).contains("(agent run: budget)"));
            planned += 1;
        }
        let m = w.json(&["metrics", item["session"]["id"].as_str().unwrap()]);
        assert_eq!(m["iterations"][0]["outcome"], "budget", "{m}");
    }
    // $0.15 takes one agent past its first message, so at least that one had written its plan.
    assert!(planned >= 1, "no agent had written its plan when the budget stopped them");
    let three = by_name("three");
    assert_eq!(three["status"], "aborted", "{three:#}");
    assert!(three["error"].as_str().unwrap().starts_with("not started: the budget of batch"), "{three:#}");

    // The reason shows in the status view; the batch notified once.
    let text = w.ok(&["batch", "status", &id]);
    assert!(text.contains("stopped: the budget of batch"), "{text}");
    assert!(text.contains("of a $0.15 budget"), "{text}");
    let sent = std::fs::read_to_string(&notes).unwrap();
    assert_eq!(sent.lines().count(), 1, "{sent}");
    assert!(
        sent.starts_with("budget|aborted|batch capped: aborted") && sent.contains("was reached"),
        "{sent}"
    );

    // Resuming with the spent budget is refused (nothing changes); a higher budget counts what was
    // already spent: $0.0615 more for the third item passes $0.20 at its first message.
    let (code, err) = w.fails(&["batch", "resume", &id]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("has spent its budget") && err.contains("--budget USD"), "{err}");
    assert_eq!(status(&w, &id)["items"][2]["status"], "aborted");
    let out = w.run(&["batch", "resume", &id, "--budget", "0.20", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "aborted", "{v:#}");
    assert_eq!(v["budget_usd"], 0.2);
    let three = &v["items"][2];
    assert_eq!(three["status"], "failed", "{three:#}");
    assert!(three["error"].as_str().unwrap().starts_with("stopped at the budget of batch"), "{three:#}");
    assert_eq!(item_statuses(&v), ["failed", "failed", "failed"]);
}

#[requires(claude)]
#[test]
fn the_real_claude_code_batch_is_stopped_at_the_whole_batch_budget() {
    use ampsm_testutils::model_server::{Script, Turn, Usage};
    let (w, server) = real_claude_world();
    let usage = |output_tokens, cache_creation_input_tokens| Usage {
        input_tokens: 10,
        output_tokens,
        cache_read_input_tokens: 0,
        cache_creation_input_tokens,
        reasoning_tokens: 0,
    };
    // One item at a time; every conversation gets the same replies: write work.txt (+$0.00753), think
    // (+$0.03003: $0.0376 passes the batch's $0.03), and 8 s later write late.txt. The first item is stopped
    // at its second reply; the second item must never start.
    server.set_script(Script::new(vec![
        Turn::tool_call(
            "Bash",
            serde_json::json!({"command": "printf 'work\\n' > work.txt", "description": "write"}),
        )
        .with_usage(usage(500, 0)),
        Turn::text("Thinking about more.").with_usage(usage(2000, 0)).with_delay_ms(300),
        Turn::tool_call(
            "Bash",
            serde_json::json!({"command": "printf 'late\\n' > late.txt", "description": "write"}),
        )
        .with_usage(usage(10, 0))
        .with_delay_ms(8_000),
        Turn::text("Done.").with_usage(usage(10, 0)),
    ]));
    let file = write(
        &w,
        "real.yaml",
        "name: real\nrepos: [./repo]\ndefaults:\n  agent: claude\n  model: claude-sonnet-4-5\n  timeout: 120s\n\
         budget: 0.03\nconcurrency: 1\nitems:\n  - {name: first, prompt: Write one}\n  \
         - {name: second, prompt: Write two}\n",
    );
    let started = Instant::now();
    let out = w.run(&["batch", "start", "--file", file.to_str().unwrap(), "--json"]);
    let took = started.elapsed();
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(v["status"], "aborted", "{v:#}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(took < Duration::from_secs(8), "the stop came before the 8 s reply: took {took:?}");
    assert!(v["stop_reason"].as_str().unwrap().contains("budget of batch"), "{v:#}");
    assert_eq!(item_statuses(&v), ["failed", "aborted"], "{v:#}");
    let first = &v["items"][0];
    assert!(first["error"].as_str().unwrap().starts_with("stopped at the budget of batch"), "{first:#}");
    assert!(
        v["items"][1]["error"].as_str().unwrap().starts_with("not started: the budget of batch"),
        "{v:#}"
    );
    let wt = PathBuf::from(first["session"]["worktree_path"].as_str().unwrap());
    assert_eq!(git(&wt, &["show", "HEAD:work.txt"]), "work\n");
    assert!(!wt.join("late.txt").exists(), "the agent ran past the budget");
    assert!(v["spent_usd"].as_f64().unwrap() >= 0.03, "{v:#}");
    let m = w.json(&["metrics", first["session"]["id"].as_str().unwrap()]);
    assert_eq!(m["iterations"][0]["outcome"], "budget", "{m}");
}

/// `mergeOnPass` with several workers: every passing item lands on the base branch (merges queue and
/// retry onto the moved base), none fails with "moved while being merged".
#[test]
fn merge_on_pass_at_concurrency_four_merges_every_passing_item() {
    let w = command_world("echo \"$AMPSM_PROMPT\" > \"$AMPSM_PROMPT.txt\"");
    let items: String = (0..8)
        .map(|i| {
            format!("  - name: item{i}\n    prompt: file{i}\n    mergeOnPass: true\n    script: \"true\"\n")
        })
        .collect();
    let yaml =
        format!("name: many\nrepos: [./repo]\nconcurrency: 4\ndefaults:\n  agent: command\nitems:\n{items}");
    let file = write(&w, "many.yaml", &yaml);
    let out = w.run(&["batch", "start", "--file", file.to_str().unwrap(), "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success(), "{v:#}\n{}", String::from_utf8_lossy(&out.stderr));
    for item in v["items"].as_array().unwrap() {
        assert_eq!(item["status"], "passed", "{item:#}");
        assert_eq!(item["merged"], true, "{item:#}");
    }
    for i in 0..8 {
        assert_eq!(git(&w.repo, &["show", &format!("main:file{i}.txt")]).trim(), format!("file{i}"));
    }
}

//! `metrics`, `timeline`, `export`, `report`, budgets and notifications, checked the way a user would:
//! a Claude Code stand-in (the fake agent) plays a recorded stream, and every figure is compared with what
//! that stream said and with what git says.

use crate::support::{World, one_line, real_claude_world};
use ampsm_testutils::repo::git;
use ampsm_testutils::{Tool, install_fake_agent_as, require, requires, scenario_path};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A world whose `claude` is the fake agent playing `scenario`, with notifications going to a log file
/// through `notifications.command`. Returns the world and the notification log.
fn claude_world(scenario: &str) -> (World, PathBuf) {
    let w = World::new();
    let bin = w.dir.path().join("bin");
    let claude = install_fake_agent_as(&bin, "claude");
    let notes = w.dir.path().join("notifications.log");
    w.write_config(&format!(
        "agents:\n  claude:\n    path: {}\nnotifications:\n  desktop: false\n  command: 'printf \"%s|%s|%s|%s\\n\" \
         \"$AMPSM_EVENT\" \"$AMPSM_SESSION\" \"$AMPSM_STATUS\" \"$AMPSM_MESSAGE\" >> {}'\n",
        claude.display(),
        notes.display()
    ));
    w.set_env("FAKE_AGENT_SCENARIO", scenario_path(scenario).to_str().unwrap());
    w.set_env("ANTHROPIC_API_KEY", "sk-ant-test");
    (w, notes)
}

fn scenario(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(scenario_path(name)).unwrap()).unwrap()
}

/// What the scenario's stream says: the tool calls it makes (name per call id) and its retry lines.
fn stream_tools(scen: &Value) -> (BTreeMap<String, String>, usize) {
    let mut calls = BTreeMap::new();
    let mut retries = 0;
    for step in scen["steps"].as_array().unwrap() {
        let Some(line) = step.get("emit") else { continue };
        if line["subtype"] == "api_retry" {
            retries += 1;
        }
        for block in line["message"]["content"].as_array().map(Vec::as_slice).unwrap_or_default() {
            if block["type"] == "tool_use" {
                calls.insert(
                    block["id"].as_str().unwrap().to_string(),
                    block["name"].as_str().unwrap().to_string(),
                );
            }
        }
    }
    (calls, retries)
}

fn notifications(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_string).collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// `git diff --numstat base...branch` in the repository, as path → (added, removed).
fn git_numstat(repo: &Path, range: &str) -> BTreeMap<String, (u64, u64)> {
    git(repo, &["diff", "--numstat", range])
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[2].to_string(), (f[0].parse().unwrap(), f[1].parse().unwrap()))
        })
        .collect()
}

#[requires(python3)]
#[test]
fn metrics_and_every_export_match_the_agents_stream_and_git() {
    let (w, notes) = claude_world("claude_timed");
    let scen = scenario("claude_timed");
    let s = w.json(&[
        "new",
        "--repo",
        w.repo_arg(),
        "--name",
        "timed",
        "--agent",
        "claude",
        "--prompt",
        "Write the notes",
        "--script",
        "test -f NOTES.md",
    ]);
    let id = s["id"].as_str().unwrap().to_string();
    let report = w.json(&["iterate", "timed"]);
    assert_eq!(report["iteration"]["outcome"], "success", "{report}");

    let m = w.json(&["metrics", "timed"]);
    // Tokens and cost as the stream's result line states them (each message id counted once).
    let e = &scen["expected_usage"];
    assert_eq!(m["tokens"]["input"], e["input_tokens"], "{m}");
    assert_eq!(m["tokens"]["output"], e["output_tokens"]);
    assert_eq!(m["tokens"]["cache_read"], e["cache_read_input_tokens"]);
    assert_eq!(m["tokens"]["cache_write"], e["cache_creation_input_tokens"]);
    assert!(close(m["cost"]["usd"].as_f64().unwrap(), scen["expected_cost_usd"].as_f64().unwrap()), "{m}");
    assert_eq!(m["cost"]["source"], "agent");
    assert_eq!(m["models"][0]["model"], "claude-sonnet-4-5-20250929");
    assert_eq!(m["models"][0]["tokens"]["output"], e["output_tokens"]);

    // Tool calls: the stream's calls, paired, with the pauses the agent made between call and result.
    let (calls, retries) = stream_tools(&scen);
    assert_eq!(m["tool_calls"].as_u64().unwrap() as usize, calls.len());
    let tools = w.json(&["tools", "timed"]);
    let tools = tools.as_array().unwrap();
    for (name, want) in scen["expected_tools"].as_object().unwrap() {
        let tm = m["tools"].as_array().unwrap().iter().find(|t| t["name"] == name.as_str()).expect(name);
        assert_eq!(tm["count"], want["count"], "{name}: {tm}");
        assert_eq!(tm["failed"], want["failed"], "{name}: {tm}");
        assert_eq!(tm["count"].as_u64().unwrap() as usize, calls.values().filter(|n| *n == name).count());
        let mut durations: Vec<i64> = tools
            .iter()
            .filter(|t| t["name"] == name.as_str())
            .map(|t| t["duration_ms"].as_i64().unwrap())
            .collect();
        durations.sort();
        let avg = durations.iter().sum::<i64>() as f64 / durations.len() as f64;
        assert!(close(tm["avg_duration_ms"].as_f64().unwrap(), avg), "{name}: {tm} vs {durations:?}");
        assert_eq!(tm["p95_duration_ms"].as_i64().unwrap(), *durations.last().unwrap());
        assert!(durations[0] >= want["min_ms"].as_i64().unwrap(), "{name}: {durations:?}");
    }
    let bash = m["tools"].as_array().unwrap().iter().find(|t| t["name"] == "Bash").unwrap();
    assert!(close(bash["success_rate"].as_f64().unwrap(), 0.5), "{bash}");
    assert_eq!(m["errors"]["agent_errors"].as_u64().unwrap() as usize, retries);

    // Lines changed: what git says about the branch against its base.
    let branch = s["branch"].as_str().unwrap();
    let want = git_numstat(&w.repo, &format!("main...{branch}"));
    assert_eq!(want.get("NOTES.md"), Some(&(3, 0)));
    assert_eq!(m["files"]["files_changed"].as_u64().unwrap() as usize, want.len());
    assert_eq!(m["files"]["lines_added"].as_u64().unwrap(), want.values().map(|v| v.0).sum::<u64>());
    assert_eq!(m["files"]["lines_removed"].as_u64().unwrap(), want.values().map(|v| v.1).sum::<u64>());

    // Per iteration, time and rates.
    let it = &m["iterations"][0];
    assert_eq!(it["outcome"], "success");
    assert_eq!(it["exit_code"], 0);
    assert_eq!(it["test"], "passed");
    let agent_ms = m["agent_time_ms"].as_i64().unwrap();
    assert!(agent_ms >= 550, "the agent paused 550 ms in all: {agent_ms}");
    assert_eq!(it["duration_ms"].as_i64().unwrap(), agent_ms);
    let tps = m["tokens_per_sec"].as_f64().unwrap();
    assert!(close(tps, 510.0 / (agent_ms as f64 / 1000.0)), "{tps}");
    let cpm = m["cost_per_min"].as_f64().unwrap();
    assert!(close(cpm, scen["expected_cost_usd"].as_f64().unwrap() / (agent_ms as f64 / 60_000.0)));
    let human = w.ok(&["metrics", "timed"]);
    assert!(
        human.contains("tokens/s") && human.contains("cost/min") && human.contains("NOTES.md"),
        "{human}"
    );

    // Timeline: in time order, with the iteration, its commit and its tests.
    let t = w.json(&["timeline", "timed"]);
    let entries = t["entries"].as_array().unwrap();
    let ats: Vec<i64> = entries.iter().map(|e| e["at"].as_i64().unwrap()).collect();
    assert!(ats.windows(2).all(|p| p[0] <= p[1]), "{t}");
    let pos =
        |kind: &str| entries.iter().position(|e| e["kind"] == kind).unwrap_or_else(|| panic!("{kind}: {t}"));
    assert!(pos("created") < pos("iteration-start"));
    assert!(pos("iteration-start") < pos("iteration-end"));
    assert!(pos("iteration-end") < pos("commit"));
    assert!(pos("commit") < pos("test"));
    assert!(
        entries
            .iter()
            .any(|e| e["kind"] == "status" && e["summary"].as_str().unwrap().contains("running → idle"))
    );

    // The events as `logs` shows them.
    let logs = w.ok(&["logs", "timed", "--json"]);
    let log_lines = logs.lines().count();
    assert!(
        log_lines >= scen["steps"].as_array().unwrap().iter().filter(|s| s.get("emit").is_some()).count()
    );

    // JSON export: nested, the same numbers.
    let json_path = w.dir.path().join("export.json");
    w.ok(&["export", "--session", "timed", "--format", "json", "--out", json_path.to_str().unwrap()]);
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(doc["format"], "amp-sessions-export");
    assert_eq!(doc["version"], 1);
    let js = &doc["sessions"][0];
    assert_eq!(js["session"]["id"], id.as_str());
    assert_eq!(js["events"].as_array().unwrap().len(), log_lines);
    assert!(js["events"][0]["normalized"].is_array(), "normalized events are embedded as JSON");
    assert_eq!(js["tool_calls"].as_array().unwrap().len(), calls.len());
    let out_sum: u64 =
        js["token_usage"].as_array().unwrap().iter().map(|r| r["output_tokens"].as_u64().unwrap()).sum();
    assert_eq!(out_sum, e["output_tokens"].as_u64().unwrap());
    assert_eq!(js["metrics"]["tokens"], m["tokens"]);
    assert_eq!(js["metrics"]["files"]["lines_added"], m["files"]["lines_added"]);
    let durations_json: Vec<i64> =
        js["tool_calls"].as_array().unwrap().iter().map(|c| c["duration_ms"].as_i64().unwrap()).collect();
    let durations_cli: Vec<i64> = tools.iter().map(|c| c["duration_ms"].as_i64().unwrap()).collect();
    assert_eq!(durations_json, durations_cli);
    assert!(js["commits"].as_array().unwrap().len() == 1 && js["iterations"][0]["test_exit_code"] == 0);

    // JSONL: one event per line, every line a JSON object with a type.
    let jsonl = w.ok(&["export", "--session", "timed", "--format", "jsonl"]);
    let rows: Vec<Value> = jsonl.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.iter().filter(|r| r["type"] == "event").count(), log_lines);
    assert_eq!(rows.iter().filter(|r| r["type"] == "tool_call").count(), calls.len());
    assert!(rows.iter().all(|r| r["type"].is_string()));

    // CSV: one file per table with the documented headers, loaded by Python's csv module in strict mode.
    let csv_dir = w.dir.path().join("csv");
    let summary =
        w.json(&["export", "--session", "timed", "--format", "csv", "--out", csv_dir.to_str().unwrap()]);
    assert_eq!(summary["rows"]["events"].as_u64().unwrap() as usize, log_lines);
    let header =
        |file: &str| std::fs::read_to_string(csv_dir.join(file)).unwrap().lines().next().unwrap().to_string();
    assert_eq!(
        header("events.csv"),
        "id,session_id,iteration_id,seq,ts,stream,kind,truncated,raw,normalized"
    );
    assert_eq!(
        header("tool_calls.csv"),
        "session_id,iteration_id,call_id,name,input,started_at,ended_at,duration_ms,success,exit_code,output_excerpt"
    );
    assert!(
        std::fs::read_to_string(csv_dir.join("events.csv")).unwrap().contains("\r\n"),
        "RFC 4180 line ends"
    );
    let check = r#"
import csv, glob, json, os, sys
counts = {}
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.csv"))):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, strict=True))
    width = len(rows[0])
    assert all(len(r) == width for r in rows), path
    counts[os.path.basename(path)] = rows
m = counts["session_metrics.csv"]
head, row = m[0], m[1]
print(json.dumps({"counts": {k: len(v) - 1 for k, v in counts.items()}, "metrics": dict(zip(head, row)),
                  "durations": [r[7] for r in counts["tool_calls.csv"][1:]]}))
"#;
    match Command::new("python3").arg("-c").arg(check).arg(&csv_dir).output() {
        Ok(out) if out.status.success() => {
            let got: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(got["counts"]["events.csv"].as_u64().unwrap() as usize, log_lines);
            assert_eq!(got["counts"]["tool_calls.csv"].as_u64().unwrap() as usize, calls.len());
            assert_eq!(got["counts"]["batches.csv"], 0, "empty tables still get their header");
            let row = &got["metrics"];
            assert_eq!(row["output_tokens"], e["output_tokens"].to_string().as_str());
            assert_eq!(row["lines_added"], "3");
            assert!(close(
                row["cost_usd"].as_str().unwrap().parse().unwrap(),
                scen["expected_cost_usd"].as_f64().unwrap()
            ));
            let csv_durations: Vec<i64> = got["durations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_str().unwrap().parse().unwrap())
                .collect();
            assert_eq!(csv_durations, durations_cli);
        }
        Ok(out) => panic!("the CSV files did not load:\n{}", String::from_utf8_lossy(&out.stderr)),
        Err(e) => panic!("python3 did not run: {e}"),
    }

    // The Markdown report.
    let md = w.ok(&["report", "timed"]);
    assert!(md.starts_with("# Session report: timed"), "{md}");
    assert!(md.contains("| NOTES.md | 3 | 0 |") && md.contains("## Timeline"), "{md}");

    // The completion was announced through notifications.command, with the event in the environment.
    assert_eq!(notifications(&notes), vec![format!("completed|{id}|idle|tests passed")]);
}

#[test]
fn a_budget_below_the_agents_cost_stops_it_and_keeps_its_partial_work() {
    let (w, notes) = claude_world("claude_budget");
    let scen = scenario("claude_budget");
    let s = w.json(&[
        "new",
        "--repo",
        w.repo_arg(),
        "--name",
        "capped",
        "--agent",
        "claude",
        "--prompt",
        "Plan it",
        "--budget",
        "0.10",
    ]);
    let id = s["id"].as_str().unwrap().to_string();
    let wt = PathBuf::from(s["worktree_path"].as_str().unwrap());

    let started = Instant::now();
    let out = w.run(&["iterate", "capped", "--json"]);
    let took = started.elapsed();
    assert!(!out.status.success(), "a budget stop is not a success");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["iteration"]["outcome"], "budget", "{report}");
    assert_eq!(report["session"]["status"], "error");
    assert!(report["iteration"]["error"].as_str().unwrap().contains("stopped at the budget"), "{report}");
    assert_eq!(report["budget"]["warned"], true);
    assert_eq!(report["budget"]["stopped"], true);
    assert!(stderr.contains("warning: budget: 81 % used"), "{stderr}");
    assert!(stderr.contains("budget reached"), "{stderr}");
    // The agent paused 6 s before its next step: the stop came well before that.
    assert!(took < Duration::from_secs(6), "took {took:?}");

    // Nothing after the stop point happened, and what it did before is committed.
    assert!(!wt.join("LATE.md").exists(), "the agent ran past the budget");
    assert!(!w.ok(&["logs", "capped", "--raw"]).contains("MUST NEVER ARRIVE"));
    let commit = report["commit"].as_str().expect("the partial work is committed");
    let plan = scen["expected_files"]["PLAN.md"].as_str().unwrap();
    assert_eq!(git(&wt, &["show", &format!("{commit}:PLAN.md")]), plan);
    assert_eq!(git(&wt, &["status", "--porcelain"]), "");
    assert!(git(&wt, &["log", "-1", "--format=%s"]).contains("(agent run: budget)"));

    // The spend was counted once per message and priced from the table.
    let m = w.json(&["metrics", "capped"]);
    let e = &scen["expected_stop_usage"];
    assert_eq!(m["tokens"]["input"], e["input_tokens"], "{m}");
    assert_eq!(m["tokens"]["output"], e["output_tokens"]);
    assert_eq!(m["tokens"]["cache_read"], e["cache_read_input_tokens"]);
    assert_eq!(m["tokens"]["cache_write"], e["cache_creation_input_tokens"]);
    let cost = scen["expected_stop_cost_usd"].as_f64().unwrap();
    assert!(close(m["cost"]["usd"].as_f64().unwrap(), cost), "{m}");
    assert!(close(report["budget"]["run_usd"].as_f64().unwrap(), cost), "{report}");
    assert_eq!(m["cost"]["source"], "price_table");
    assert!(m["cost"]["price_entries"][0].as_str().unwrap().starts_with("builtin:claude-sonnet-4-5@"), "{m}");
    assert_eq!(m["budget"]["stops"], 1);
    assert_eq!(m["iterations"][0]["outcome"], "budget");

    // The warning and the stop are in the timeline; the stop was announced.
    let t = w.json(&["timeline", "capped"]);
    let notes_in_timeline: Vec<&str> = t["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "note")
        .map(|e| e["summary"].as_str().unwrap())
        .collect();
    assert!(notes_in_timeline.iter().any(|n| n.contains("81 % used")), "{t}");
    assert!(notes_in_timeline.iter().any(|n| n.contains("budget reached")), "{t}");
    let sent = notifications(&notes);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].starts_with(&format!("budget|{id}|error|stopped at the budget")), "{sent:?}");

    // A spent budget refuses the next run before the agent starts; raising it is one command.
    let (code, err) = w.fails(&["iterate", "capped"]);
    assert_eq!(code, 3);
    let line = one_line(&err);
    assert!(line.contains("budget") && line.contains("amp-sessions budget"), "{err}");
    assert_eq!(w.json(&["metrics", "capped"])["iterations_count"], 1);
    // Amounts keep the digits that matter: a budget of $0.125 is not shown as $0.13.
    let text = w.ok(&["budget", "capped", "0.125"]);
    assert!(text.contains("$0.125"), "{text}");
    assert!(w.ok(&["metrics", "capped"]).contains(" of $0.125 spent"));
    let b = w.json(&["budget", "capped", "0.5"]);
    assert_eq!(b["budget_usd"], 0.5);
    assert!(close(b["spent_usd"].as_f64().unwrap(), cost));
    let (code, _) = w.fails(&["budget", "capped", "--", "-1"]);
    assert_eq!(code, 2);
}

#[test]
fn conflicts_are_announced_and_a_failing_notifier_never_fails_a_command() {
    let (w, notes) = claude_world("claude_timed");
    let s = w.json(&["new", "--repo", w.repo_arg(), "--name", "clash", "--agent", "claude", "--prompt", "x"]);
    let id = s["id"].as_str().unwrap().to_string();
    let wt = PathBuf::from(s["worktree_path"].as_str().unwrap());
    std::fs::write(wt.join("README.md"), "session version\n").unwrap();
    w.ok(&["stage", "clash", "--all"]);
    w.ok(&["commit", "clash", "-m", "session edit"]);
    std::fs::write(w.repo.join("README.md"), "main version\n").unwrap();
    git(&w.repo, &["commit", "-qam", "main edit"]);
    let (code, _) = w.fails(&["merge", "clash"]);
    assert_ne!(code, 0);
    let sent = notifications(&notes);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0].starts_with(&format!("conflict|{id}|")) && sent[0].ends_with("conflicts in README.md"),
        "{sent:?}"
    );
    let t = w.json(&["timeline", "clash"]);
    assert!(
        t["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "merge" && e["summary"].as_str().unwrap().contains("README.md")),
        "{t}"
    );
    // The engine announces a rebase that stops on conflicts too (whichever front end asked for it).
    let (code, _) = w.fails(&["rebase", "clash"]);
    assert_ne!(code, 0);
    let sent = notifications(&notes);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(
        sent[1].starts_with(&format!("conflict|{id}|")) && sent[1].ends_with("conflicts in README.md"),
        "{sent:?}"
    );
    w.ok(&["rebase", "clash", "--abort"]);

    // A notifier that fails, or takes its time, changes nothing about the command's result.
    let bin = w.dir.path().join("bin").join("claude");
    w.write_config(&format!(
        "agents:\n  claude:\n    path: {}\nnotifications:\n  desktop: false\n  command: 'echo boom >&2; exit 7'\n",
        bin.display()
    ));
    let report = w.json(&["iterate", "clash"]);
    assert_eq!(report["iteration"]["outcome"], "success");
}

/// A world whose `amp` is the fake agent playing `scenario` (Amp's stream names no model).
fn amp_world(scenario: &str) -> World {
    let w = World::new();
    let amp = install_fake_agent_as(&w.dir.path().join("bin"), "amp");
    w.write_config(&format!("amp:\n  path: {}\nnotifications:\n  desktop: false\n", amp.display()));
    w.set_env("FAKE_AGENT_SCENARIO", scenario_path(scenario).to_str().unwrap());
    w.set_env("AMP_API_KEY", "sgamp_test_key");
    w
}

#[test]
fn an_unknown_price_shows_unknown_everywhere_and_is_never_counted_as_zero() {
    let w = amp_world("amp_oneshot");
    w.ok(&[
        "new",
        "--repo",
        w.repo_arg(),
        "--name",
        "unpriced",
        "--agent",
        "amp",
        "--prompt",
        "x",
        "--budget",
        "0.01",
    ]);
    let out = w.run(&["iterate", "unpriced", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The budget cannot count tokens it cannot price; it says so instead of guessing.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("has no price").count(), 1, "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["budget"]["unpriced_tokens"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["budget"]["stopped"], false);

    let m = w.json(&["metrics", "unpriced"]);
    assert!(m["tokens"]["total"].as_u64().unwrap() > 0);
    assert!(m["cost"]["usd"].is_null(), "{m}");
    assert!(m["cost_per_min"].is_null());
    assert_eq!(m["cost"]["source"], "unknown");
    assert!(m["models"][0]["model"].is_null() && m["models"][0]["cost_usd"].is_null(), "{m}");
    let human = w.ok(&["metrics", "unpriced"]);
    assert!(human.contains("cost         unknown"), "{human}");
    assert!(!human.contains("$0.0000 ("), "an unknown cost must not look like zero: {human}");
    assert!(w.ok(&["report", "unpriced"]).contains("| Cost | unknown (unknown) |"));
    let csv_dir = w.dir.path().join("csv");
    w.ok(&["export", "--session", "unpriced", "--format", "csv", "--out", csv_dir.to_str().unwrap()]);
    let summary = std::fs::read_to_string(csv_dir.join("session_metrics.csv")).unwrap();
    let row: Vec<&str> = summary.lines().nth(1).unwrap().split(',').collect();
    let head: Vec<&str> = summary.lines().next().unwrap().split(',').collect();
    let col = |name: &str| row[head.iter().position(|h| *h == name).unwrap()];
    assert_eq!(col("cost_usd"), "unknown");
    assert_eq!(col("cost_per_min"), "unknown");
    let usage = std::fs::read_to_string(csv_dir.join("token_usage.csv")).unwrap();
    assert!(usage.lines().nth(1).unwrap().contains(",,unknown,"), "empty cost, source unknown: {usage}");
}

#[requires(python3)]
#[test]
fn a_huge_stream_line_exports_whole_in_jsonl_and_clipped_in_csv_that_still_loads() {
    let w = amp_world("amp_big_line");
    w.ok(&["new", "--repo", w.repo_arg(), "--name", "big", "--agent", "amp", "--prompt", "x"]);
    let _ = w.run(&["iterate", "big", "--json"]);
    let logs = w.ok(&["logs", "big", "--json"]);
    let longest =
        logs.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["raw"].as_str().unwrap().len()).max();
    let longest = longest.unwrap();
    assert!(longest > 100_000, "the test needs a line longer than a CSV cell: {longest}");
    let jsonl = w.ok(&["export", "--session", "big", "--format", "jsonl"]);
    let exported = jsonl
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["type"] == "event")
        .map(|r| r["raw"].as_str().unwrap().len())
        .max();
    assert_eq!(exported, Some(longest), "JSONL keeps the line as stored");
    let csv_dir = w.dir.path().join("csv");
    w.ok(&["export", "--session", "big", "--format", "csv", "--out", csv_dir.to_str().unwrap()]);
    let check = r#"
import csv, sys
with open(sys.argv[1], newline="", encoding="utf-8") as f:
    rows = list(csv.reader(f, strict=True))
print(max(len(c) for r in rows for c in r), sum("[clipped:" in c for r in rows for c in r))
"#;
    match Command::new("python3").arg("-c").arg(check).arg(csv_dir.join("events.csv")).output() {
        Ok(out) => {
            assert!(
                out.status.success(),
                "events.csv did not load: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8(out.stdout).unwrap();
            let nums: Vec<usize> = text.split_whitespace().map(|n| n.parse().unwrap()).collect();
            assert!(nums[0] <= 32_000, "{text}");
            assert!(nums[1] >= 1, "{text}");
        }
        Err(e) => panic!("python3 did not run: {e}"),
    }
}

#[requires(claude)]
#[test]
fn the_real_claude_code_is_stopped_at_the_budget_with_its_first_file_committed() {
    use ampsm_testutils::model_server::{Script, Turn, Usage};
    let (w, server) = real_claude_world();
    let s = w.json(&[
        "new",
        "--repo",
        w.repo_arg(),
        "--name",
        "real-capped",
        "--agent",
        "claude",
        "--model",
        "claude-sonnet-4-5",
        "--prompt",
        "Write the files",
        "--budget",
        "0.10",
    ]);
    let wt = PathBuf::from(s["worktree_path"].as_str().unwrap());
    let usage = |output_tokens, cache_creation_input_tokens| Usage {
        input_tokens: 10,
        output_tokens,
        cache_read_input_tokens: 0,
        cache_creation_input_tokens,
        reasoning_tokens: 0,
    };
    // $0.06753, then +$0.03003 (97.6 %), then +$0.03003 (over the budget); the fourth reply would come 8 s
    // later and write a file that must never appear.
    server.set_script(Script::new(vec![
        Turn::tool_call("Write", serde_json::json!({"file_path": wt.join("one.txt"), "content": "one\n"}))
            .with_usage(usage(2000, 10_000)),
        Turn::tool_call("Write", serde_json::json!({"file_path": wt.join("two.txt"), "content": "two\n"}))
            .with_usage(usage(2000, 0)),
        Turn::text("Thinking about the third file.").with_usage(usage(2000, 0)).with_delay_ms(300),
        Turn::tool_call("Write", serde_json::json!({"file_path": wt.join("late.txt"), "content": "late\n"}))
            .with_usage(usage(10, 0))
            .with_delay_ms(8_000),
    ]));
    let started = Instant::now();
    let out = w.run(&["iterate", "real-capped", "--json", "--timeout", "120s"]);
    let took = started.elapsed();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["iteration"]["outcome"],
        "budget",
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(took < Duration::from_secs(8), "took {took:?}");
    let commit = report["commit"].as_str().expect("the partial work is committed");
    assert_eq!(git(&wt, &["show", &format!("{commit}:one.txt")]), "one\n");
    assert!(!wt.join("late.txt").exists());
    let m = w.json(&["metrics", "real-capped"]);
    assert!(m["cost"]["usd"].as_f64().unwrap() >= 0.10, "{m}");
    assert_eq!(m["budget"]["stops"], 1);
}

#[test]
fn desktop_notifications_go_through_notify_send_and_fall_back_to_the_command_when_it_fails() {
    let (w, notes) = claude_world("claude_timed");
    // A desktop session: a bus address and a `notify-send` on PATH that records its arguments.
    let bin = w.dir.path().join("desktop-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let shown = w.dir.path().join("desktop.log");
    let notify_send = bin.join("notify-send");
    std::fs::write(
        &notify_send,
        format!(
            "#!/bin/sh\nif [ -e {fail} ]; then exit 1; fi\nprintf '%s|' \"$@\" >> {log}\necho >> {log}\n",
            fail = w.dir.path().join("fail-desktop").display(),
            log = shown.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&notify_send, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    w.set_env("PATH", &format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()));
    w.set_env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus");
    let claude = w.dir.path().join("bin").join("claude");
    w.write_config(&format!(
        "agents:\n  claude:\n    path: {}\nnotifications:\n  desktop: true\n  command: 'printf \"%s|%s\\n\" \
         \"$AMPSM_EVENT\" \"$AMPSM_SESSION_NAME\" >> {}'\n",
        claude.display(),
        notes.display()
    ));
    w.ok(&["new", "--repo", w.repo_arg(), "--name", "desk", "--agent", "claude", "--prompt", "x"]);
    let report = w.json(&["iterate", "desk"]);
    assert_eq!(report["iteration"]["outcome"], "success");
    let desktop = std::fs::read_to_string(&shown).unwrap();
    assert_eq!(desktop.lines().count(), 1, "{desktop}");
    assert!(
        desktop.starts_with("--app-name=amp-sessions|--|amp-sessions: session completed|desk: "),
        "{desktop}"
    );
    assert!(notifications(&notes).is_empty(), "the desktop took it: {:?}", notifications(&notes));

    // When the desktop notifier fails, the command gets the notification instead.
    std::fs::write(w.dir.path().join("fail-desktop"), "").unwrap();
    let report = w.json(&["iterate", "desk", "--prompt", "again"]);
    assert_eq!(report["iteration"]["outcome"], "success");
    assert_eq!(notifications(&notes), ["completed|desk"]);
    assert_eq!(std::fs::read_to_string(&shown).unwrap().lines().count(), 1);
}

/// Converts every `*.csv` in `from` with `soffice` (`filter` as its `--infilter`, or none) to `to` as
/// `format`; returns what it printed when it failed.
fn soffice_convert(
    bin: &Path,
    profile: &Path,
    filter: Option<&str>,
    format: &str,
    files: &[PathBuf],
    to: &Path,
) {
    let mut c = Command::new(bin);
    c.arg(format!("-env:UserInstallation=file://{}", profile.display())).arg("--headless");
    if let Some(f) = filter {
        c.arg(format!("--infilter={f}"));
    }
    let out = c.arg("--convert-to").arg(format).arg("--outdir").arg(to).args(files).output().unwrap();
    assert!(out.status.success(), "soffice failed: {}", String::from_utf8_lossy(&out.stderr));
}

fn read_csv(path: &Path) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

#[requires(soffice)]
#[test]
fn csv_exports_load_in_a_spreadsheet_cell_for_cell() {
    // Prompts a spreadsheet would run as formulas, with quotes, a comma, a line break and non-ASCII text.
    let (w, _) = claude_world("claude");
    let prompt = "=1+1 then \"quote\", and -x @y\nsecond line: ünïcödé ✓";
    w.ok(&["new", "--repo", w.repo_arg(), "--name", "sheet", "--agent", "claude", "--prompt", prompt]);
    w.ok(&["iterate", "sheet"]);
    w.ok(&["iterate", "sheet", "--prompt", "=1+1 and a second run"]);
    let csv_dir = w.dir.path().join("csv");
    w.ok(&["export", "--session", "sheet", "--format", "csv", "--out", csv_dir.to_str().unwrap()]);
    let bin = require(Tool::Soffice);

    // Load every file as a spreadsheet would (UTF-8, comma, double quotes, formulas evaluated), save it
    // as a workbook, and write each workbook back out as CSV to compare with what was exported.
    let mut files: Vec<PathBuf> = std::fs::read_dir(&csv_dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert_eq!(files.len(), 15, "{files:?}");
    let profile = w.dir.path().join("lo-profile");
    let books = w.dir.path().join("xlsx");
    let back = w.dir.path().join("back");
    soffice_convert(
        &bin,
        &profile,
        Some("CSV:44,34,76,1,,0,false,false,false,false,false,true"),
        "xlsx",
        &files,
        &books,
    );
    let workbooks: Vec<PathBuf> =
        files.iter().map(|f| books.join(f.file_name().unwrap()).with_extension("xlsx")).collect();
    soffice_convert(
        &bin,
        &profile,
        None,
        "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,true,false",
        &workbooks,
        &back,
    );

    let mut cells = 0;
    for f in &files {
        let written = read_csv(f);
        let loaded = read_csv(&back.join(f.file_name().unwrap()));
        assert_eq!(written.len(), loaded.len(), "{}: rows", f.display());
        for (row, (a, b)) in written.iter().zip(&loaded).enumerate() {
            assert_eq!(a.len(), b.len(), "{} row {row}: columns", f.display());
            for (col, (x, y)) in a.iter().zip(b).enumerate() {
                cells += 1;
                let same = x == y
                    || (matches!(x.as_str(), "true" | "false") && *y == x.to_uppercase())
                    || x.parse::<f64>().ok().zip(y.parse::<f64>().ok()).is_some_and(|(p, q)| close(p, q));
                assert!(
                    same,
                    "{} row {row} column {}: wrote {x:?}, the spreadsheet shows {y:?}",
                    f.display(),
                    written[0][col]
                );
            }
        }
    }
    assert!(cells > 200, "{cells} cells compared");
    // The formula-looking prompts are there as text, marked so a spreadsheet never runs them.
    let iterations = read_csv(&csv_dir.join("iterations.csv"));
    let col = iterations[0].iter().position(|h| h == "prompt").unwrap();
    assert_eq!(iterations[1][col], format!("'{prompt}"));
    assert_eq!(iterations[2][col], "'=1+1 and a second run");
}

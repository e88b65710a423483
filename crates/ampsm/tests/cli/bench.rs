//! Benchmarks driven through the real binary: a custom suite of 2 problems × 2 agent configs (a Claude
//! Code stand-in that fixes the problem, a Codex stand-in that does not) evaluated with a hidden test patch;
//! a SWE-bench-style JSONL dataset on a local clone with hub-style FAIL_TO_PASS strings, graded per test and
//! written as official predictions; `not_evaluated` and `empty_patch` without a test command; one-line
//! errors with file, line and field; compare, export, abort and a runner killed with `kill -9`; and a run
//! budget that stops the agents and keeps their partial work.

use crate::support::{World, one_line, processes_in_groups};
use ampsm_testutils::repo::{git, init_repo};
use ampsm_testutils::{install_fake_agent_as, scenario_path};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A Claude Code stand-in that makes `greet.sh` shout and notes the prompt in NOTES.md; it reports its cost.
pub(crate) const CLAUDE_FIXES: &str = r#"{"format": "claude", "steps": [
 {"emit": {"type": "system", "subtype": "init", "cwd": "{{cwd}}", "session_id": "{{thread_id}}", "tools": [], "mcp_servers": [], "model": "claude-sonnet-4-5-20250929"}},
 {"write_file": {"path": "greet.sh", "content": "echo HELLO\n"}},
 {"write_file": {"path": "NOTES.md", "content": "{{prompt}}\n"}},
 {"emit": {"type": "assistant", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929", "content": [{"type": "text", "text": "Done."}], "stop_reason": "end_turn", "usage": {"input_tokens": 1000, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 200}}, "session_id": "{{thread_id}}"}},
 {"emit": {"type": "result", "subtype": "success", "is_error": false, "duration_ms": 100, "num_turns": 1, "result": "Done.", "session_id": "{{thread_id}}", "total_cost_usd": 0.006, "usage": {"input_tokens": 1000, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 200}}}
]}"#;

/// A Codex stand-in that capitalizes instead of shouting (the hidden test fails) and notes the prompt.
pub(crate) const CODEX_MISSES: &str = r#"{"format": "codex", "steps": [
 {"emit": {"type": "thread.started", "thread_id": "{{thread_id}}"}},
 {"emit": {"type": "turn.started"}},
 {"write_file": {"path": "greet.sh", "content": "echo Hello\n"}},
 {"write_file": {"path": "NOTES.md", "content": "{{prompt}}\n"}},
 {"emit": {"type": "item.completed", "item": {"id": "item_0", "type": "agent_message", "text": "Capitalized."}}},
 {"emit": {"type": "turn.completed", "usage": {"input_tokens": 500, "cached_input_tokens": 0, "output_tokens": 50}}}
]}"#;

/// A Claude Code stand-in that writes its prompt to fix.txt, and also (wrongly) a test file that the
/// dataset's test_patch owns.
pub(crate) const CLAUDE_ECHOES: &str = r#"{"format": "claude", "steps": [
 {"emit": {"type": "system", "subtype": "init", "cwd": "{{cwd}}", "session_id": "{{thread_id}}", "tools": [], "mcp_servers": [], "model": "claude-sonnet-4-5-20250929"}},
 {"write_file": {"path": "fix.txt", "content": "{{prompt}}\n"}},
 {"write_file": {"path": "tests/t1.sh", "content": "exit 0\n"}},
 {"emit": {"type": "result", "subtype": "success", "is_error": false, "duration_ms": 100, "num_turns": 1, "result": "Done.", "session_id": "{{thread_id}}", "total_cost_usd": 0.01, "usage": {"input_tokens": 10, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 5}}}
]}"#;

/// The hidden test of the `shout` problem.
pub(crate) const HIDDEN_PATCH: &str = "diff --git a/tests/shout_test.sh b/tests/shout_test.sh\nnew file mode 100644\n\
--- /dev/null\n+++ b/tests/shout_test.sh\n@@ -0,0 +1 @@\n+test \"$(sh greet.sh)\" = \"HELLO\"\n";

pub(crate) fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, text).unwrap();
    p
}

/// A world with a `demo` repository (greet.sh says hello), `claude` and `codex` played by the fake agent
/// with their own scenarios (through `agents.<name>.env`), and credentials for both.
pub(crate) fn bench_world(claude: &str, codex: &str) -> World {
    let w = World::new();
    let d = w.dir.path();
    let demo = init_repo(&d.join("demo"));
    std::fs::write(demo.join("greet.sh"), "echo hello\n").unwrap();
    git(&demo, &["add", "greet.sh"]);
    git(&demo, &["commit", "-qm", "greet"]);
    let bin = d.join("bin");
    let claude_bin = install_fake_agent_as(&bin, "claude");
    let codex_bin = install_fake_agent_as(&bin, "codex");
    let claude_scen = write(d, "scenarios/claude.json", claude);
    let codex_scen = write(d, "scenarios/codex.json", codex);
    w.write_config(&format!(
        "agents:\n  claude:\n    path: {}\n    env:\n      FAKE_AGENT_SCENARIO: {}\n  codex:\n    path: {}\n    env:\n      \
         FAKE_AGENT_SCENARIO: {}\nnotifications:\n  desktop: false\n",
        claude_bin.display(),
        claude_scen.display(),
        codex_bin.display(),
        codex_scen.display()
    ));
    w.set_env("ANTHROPIC_API_KEY", "sk-ant-test");
    w.set_env("OPENAI_API_KEY", "sk-test");
    w
}

pub(crate) const SHOUT_BENCH: &str = r#"name: "shout-bench"
concurrency: 2
repeats: 1
timeout: 1m
agents:
  - agent: claude
    model: claude-sonnet-4-5
  - codex
problems:
  - id: shout
    repo: ./demo
    base: main
    prompt: "Make greet shout"
    test: "sh tests/shout_test.sh"
    test_patch: ./hidden.patch
  - id: notes
    repo: ./demo
    prompt: "Write notes"
    test: "grep -q 'Write notes' NOTES.md"
"#;

pub(crate) fn results_by(view: &Value) -> Vec<(String, String, String, Value)> {
    view["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["instance_id"].as_str().unwrap().to_string(),
                r["label"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
                r.clone(),
            )
        })
        .collect()
}

fn summary_of<'a>(view: &'a Value, label: &str) -> &'a Value {
    view["summary"].as_array().unwrap().iter().find(|s| s["label"] == label).unwrap()
}

/// Splits CSV text into records of fields (RFC 4180: quoted fields may hold commas, quotes and newlines).
fn csv_records(text: &str) -> Vec<Vec<String>> {
    let (mut records, mut record, mut field) = (Vec::new(), Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, '\r') => {}
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    records
}

/// The outcomes of the shout suite with `CLAUDE_FIXES` and `CODEX_MISSES`: claude resolves both
/// problems, codex only `notes`. `results` as [`results_by`] lists them.
fn assert_shout_outcomes(results: &[(String, String, String, Value)]) {
    let status_of = |id: &str, label: &str| {
        results.iter().find(|r| r.0 == id && r.1 == label).map(|r| r.2.clone()).unwrap()
    };
    assert_eq!(status_of("shout", "claude/claude-sonnet-4-5"), "resolved");
    assert_eq!(status_of("shout", "codex"), "unresolved");
    assert_eq!(status_of("notes", "claude/claude-sonnet-4-5"), "resolved");
    assert_eq!(status_of("notes", "codex"), "resolved");
}

#[test]
fn a_custom_bench_evaluates_every_problem_with_every_agent_against_hidden_tests() {
    let w = bench_world(CLAUDE_FIXES, CODEX_MISSES);
    let d = w.dir.path();
    write(d, "hidden.patch", HIDDEN_PATCH);
    let file = write(d, "bench.yaml", &format!("{SHOUT_BENCH}    tset: typo\n"));
    let file = file.to_str().unwrap();

    // The dry run checks everything, warns about the unknown key with its line, and starts nothing.
    let out = w.run(&["bench", "custom", "--config", file, "--dry-run"]);
    assert!(out.status.success());
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(plan.contains("4 results = 2 problems × 2 agent configs × 1 repeats"), "{plan}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bench.yaml:20: unknown key `problems[1].tset` (ignored)"), "{stderr}");
    assert_eq!(w.json(&["bench", "list"]), serde_json::json!([]));

    let out = w.run(&["bench", "custom", "--config", file, "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Progress lines on stderr as results finish.
    assert!(stderr.contains("[4/4]") && stderr.contains("unresolved    shout with codex"), "{stderr}");
    let view: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(view["status"], "completed");
    let results = results_by(&view);
    assert_shout_outcomes(&results);
    let claude = summary_of(&view, "claude/claude-sonnet-4-5");
    assert_eq!((claude["results"].as_i64(), claude["resolved"].as_i64()), (Some(2), Some(2)));
    assert_eq!(claude["resolve_rate"], 1.0);
    assert!((claude["cost_usd"].as_f64().unwrap() - 0.012).abs() < 1e-9, "{claude}");
    assert!(claude["total_tokens"].as_i64().unwrap() > 0);
    assert_eq!(summary_of(&view, "codex")["resolve_rate"], 0.5);
    let missed = results.iter().find(|r| r.0 == "shout" && r.1 == "codex").unwrap();
    assert_eq!(missed.3["agent_outcome"], "success");
    assert_eq!(missed.3["tests_failed"], 1);

    // The hidden test never reached the agent's branch; the agent's own work did.
    let repo = w.dir.path().join("demo");
    let branch = missed.3["branch"].as_str().unwrap();
    let files = git(&repo, &["ls-tree", "-r", "--name-only", branch]);
    assert!(files.contains("greet.sh") && files.contains("NOTES.md"), "{files}");
    assert!(!files.contains("shout_test"), "{files}");
    assert_eq!(git(&repo, &["show", &format!("{branch}:greet.sh")]), "echo Hello\n");
    // Evaluation worktrees are gone; the user's checkout is untouched.
    let worktrees = git(&repo, &["worktree", "list"]);
    assert!(!worktrees.contains("/eval/"), "{worktrees}");
    assert_eq!(git(&repo, &["status", "--porcelain"]), "");

    // predictions.jsonl in the official format, one line per result.
    let out_dir = PathBuf::from(view["out_dir"].as_str().unwrap());
    let preds: Vec<Value> = std::fs::read_to_string(out_dir.join("predictions.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(preds.len(), 4);
    for p in &preds {
        let keys: Vec<&String> = p.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["instance_id", "model_name_or_path", "model_patch"]);
        assert!(p["model_patch"].as_str().unwrap().starts_with("diff --git a/"), "{p}");
    }
    assert_eq!(preds[0]["model_name_or_path"], "claude/claude-sonnet-4-5");
    assert!(out_dir.join("predictions/codex.jsonl").is_file());

    // show (by unique id prefix) prints the summary and the per-result table.
    let id = view["id"].as_str().unwrap().to_string();
    let text = w.ok(&["bench", "show", &id[..6]]);
    assert!(text.contains("claude/claude-sonnet-4-5") && text.contains("100.0%"), "{text}");
    assert!(text.contains("50.0%") && text.contains("unresolved"), "{text}");
    let list = w.json(&["bench", "list"]);
    assert_eq!(list[0]["status"], "completed");
    assert_eq!(list[0]["counts"]["resolved"], 3);

    // export: CSV tables that load, with the run's results.
    let csv_dir = w.dir.path().join("export");
    w.ok(&["bench", "export", &id[..8], "--format", "csv", "--out", csv_dir.to_str().unwrap()]);
    let rows = csv_records(&std::fs::read_to_string(csv_dir.join("bench_results.csv")).unwrap());
    let header = &rows[0];
    for col in ["seq", "instance_id", "agent", "model", "status", "agent_outcome", "resolved", "model_patch"]
    {
        assert!(header.iter().any(|h| h == col), "{col} missing from {header:?}");
    }
    assert_eq!(rows.len(), 5, "a header and 4 results");
    assert!(rows[1..].iter().all(|r| r.len() == header.len()));
    let status_col = header.iter().position(|h| h == "status").unwrap();
    assert_eq!(rows[1..].iter().filter(|r| r[status_col] == "resolved").count(), 3);
    let runs = csv_records(&std::fs::read_to_string(csv_dir.join("bench_runs.csv")).unwrap());
    assert!(runs[0].iter().any(|h| h == "stop_reason") && runs.len() == 2);
    let jsonl = w.ok(&["bench", "export", &id, "--format", "jsonl"]);
    assert_eq!(jsonl.lines().filter(|l| l.contains("\"type\":\"bench_result\"")).count(), 4);

    // compare: a second run with the Codex config only.
    let only_codex = SHOUT_BENCH.replace("  - agent: claude\n    model: claude-sonnet-4-5\n", "");
    let file2 = write(d, "codex.yaml", &only_codex.replace("shout-bench", "codex-only"));
    let second = w.run(&["bench", "custom", "--config", file2.to_str().unwrap(), "--json"]);
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    let cmp = w.json(&["bench", "compare", &id, "codex-only"]);
    assert_eq!(cmp["resolved_only_in_a"], serde_json::json!(["shout"]));
    assert_eq!(cmp["resolved_only_in_b"], serde_json::json!([]));
    let text = w.ok(&["bench", "compare", &id, "codex-only"]);
    assert!(text.contains("Resolved only in A: shout"), "{text}");
    assert!(text.contains("codex") && text.contains("1/2"), "{text}");
}

/// A local clone of `octo/demo` under `repos/octo__demo` with a passing `tests/p.sh`; returns its base.
pub(crate) fn swe_repo(w: &World) -> String {
    let repo = init_repo(&w.dir.path().join("repos/octo__demo"));
    write(&repo, "tests/p.sh", "exit 0\n");
    write(&repo, "fix.txt", "base\n");
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "base"]);
    git(&repo, &["rev-parse", "HEAD"]).trim().to_string()
}

pub(crate) fn swe_row(id: &str, base: &str, statement: &str) -> String {
    let test_patch = "diff --git a/tests/t1.sh b/tests/t1.sh\nnew file mode 100644\n--- /dev/null\n+++ b/tests/t1.sh\n\
                      @@ -0,0 +1 @@\n+grep -q FIX fix.txt\n";
    serde_json::json!({
        "instance_id": id, "repo": "octo/demo", "base_commit": base, "patch": "GOLD PATCH",
        "problem_statement": statement, "hints_text": "", "created_at": "2024-01-01T00:00:00Z", "version": "1.0",
        "test_patch": test_patch,
        "FAIL_TO_PASS": "[\"tests/t1.sh\"]",
        "PASS_TO_PASS": "[\"tests/p.sh\"]",
        "environment_setup_commit": base,
    })
    .to_string()
}

#[test]
fn a_swe_bench_dataset_is_graded_per_test_and_written_as_official_predictions() {
    let w = bench_world(CLAUDE_ECHOES, CODEX_MISSES);
    let base = swe_repo(&w);
    let data = format!(
        "{}\n{}\n",
        swe_row("octo__demo-1", &base, "Please FIX it"),
        swe_row("octo__demo-2", &base, "Please do it")
    );
    let dataset = write(w.dir.path(), "lite.jsonl", &data);
    let args = [
        "bench",
        "swe-bench-lite",
        "--dataset",
        dataset.to_str().unwrap(),
        "--repos-dir",
        "repos",
        "--agent",
        "claude",
        "--test-cmd",
        "sh {test}",
        "--concurrency",
        "2",
        "--json",
    ];
    let out = w.run(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let view: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(view["kind"], "swe-bench-lite");
    let results = results_by(&view);
    let one = &results.iter().find(|r| r.0 == "octo__demo-1").unwrap().3;
    let two = &results.iter().find(|r| r.0 == "octo__demo-2").unwrap().3;
    assert_eq!((one["status"].as_str(), one["resolved"].as_bool()), (Some("resolved"), Some(true)));
    assert_eq!((two["status"].as_str(), two["resolved"].as_bool()), (Some("unresolved"), Some(false)));
    let report: Value = serde_json::from_str(two["test_report"].as_str().unwrap()).unwrap();
    assert_eq!(report["FAIL_TO_PASS"]["failure"], serde_json::json!(["tests/t1.sh"]));
    assert_eq!(report["PASS_TO_PASS"]["success"], serde_json::json!(["tests/p.sh"]));
    assert_eq!((two["tests_passed"].as_i64(), two["tests_failed"].as_i64()), (Some(1), Some(1)));
    assert_eq!(summary_of(&view, "claude")["resolve_rate"], 0.5);

    // The official predictions: the agent saw only the problem statement, and the test file it wrote is left
    // out of its patch (the test_patch owns it).
    let preds: Vec<Value> =
        std::fs::read_to_string(PathBuf::from(view["out_dir"].as_str().unwrap()).join("predictions.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    assert_eq!(preds.len(), 2);
    assert_eq!(preds[0]["instance_id"], "octo__demo-1");
    assert_eq!(preds[0]["model_name_or_path"], "claude");
    let patch = preds[0]["model_patch"].as_str().unwrap();
    assert!(patch.contains("+Please FIX it"), "{patch}");
    assert!(!patch.contains("tests/t1.sh"), "{patch}");
    let all = serde_json::to_string(&w.json(&["bench", "show", view["id"].as_str().unwrap()])).unwrap();
    assert!(!all.contains("GOLD PATCH"));

    // --instances / --limit select, and a missing clone is a clear error with the clone command.
    let only = w.json(&[
        "bench",
        "swe-bench-lite",
        "--dataset",
        dataset.to_str().unwrap(),
        "--repos-dir",
        "repos",
        "--agent",
        "claude",
        "--instances",
        "octo__demo-2",
        "--dry-run",
    ]);
    assert_eq!(only["results"], 1);
    assert_eq!(only["problems"][0]["id"], "octo__demo-2");
    // Several agents (each with its model, or --model) make one run's matrix; the same one twice is refused.
    let matrix = w.json(&[
        "bench",
        "swe-bench-lite",
        "--dataset",
        dataset.to_str().unwrap(),
        "--repos-dir",
        "repos",
        "--agent",
        "claude:claude-sonnet-4-5",
        "--agent",
        "codex",
        "--model",
        "gpt-5",
        "--repeats",
        "2",
        "--dry-run",
    ]);
    assert_eq!(matrix["results"], 8, "{matrix}");
    let labels: Vec<String> = matrix["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| format!("{}/{}", a["agent"].as_str().unwrap(), a["model"].as_str().unwrap()))
        .collect();
    assert_eq!(labels, ["claude/claude-sonnet-4-5", "codex/gpt-5"], "{matrix}");
    let (code, err) = w.fails(&[
        "bench",
        "swe-bench-lite",
        "--dataset",
        dataset.to_str().unwrap(),
        "--repos-dir",
        "repos",
        "--agent",
        "codex",
        "--agent",
        "codex",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--agent codex is given twice"), "{err}");
    let (code, err) = w.fails(&[
        "bench",
        "swe-bench-lite",
        "--dataset",
        dataset.to_str().unwrap(),
        "--repos-dir",
        "elsewhere",
        "--dry-run",
    ]);
    assert_eq!(code, 2);
    let line = one_line(&err);
    assert!(line.contains("instance octo__demo-1: no clone of octo/demo under"), "{line}");
    assert!(line.contains("git clone https://github.com/octo/demo") && line.contains("octo__demo"), "{line}");
}

#[test]
fn without_a_test_command_results_are_not_evaluated_and_no_change_is_an_empty_patch() {
    let w = bench_world(CLAUDE_ECHOES, CODEX_MISSES);
    let base = swe_repo(&w);
    let dataset =
        write(w.dir.path(), "lite.jsonl", &format!("{}\n", swe_row("octo__demo-1", &base, "Please FIX it")));
    let view = w.json(&[
        "bench",
        "swe-bench-lite",
        "--dataset",
        dataset.to_str().unwrap(),
        "--repos-dir",
        w.dir.path().join("repos").to_str().unwrap(),
        "--agent",
        "claude",
    ]);
    let r = &view["results"][0];
    assert_eq!(r["status"], "not_evaluated", "{r}");
    assert!(r["resolved"].is_null(), "never a guessed unresolved");
    assert!(r["error"].as_str().unwrap().contains("--test-cmd"), "{r}");
    assert!(summary_of(&view, "claude")["resolve_rate"].is_null());
    let text = w.ok(&["bench", "show", view["id"].as_str().unwrap()]);
    assert!(text.contains("not evaluated"), "{text}");

    // An agent that changes nothing makes an empty patch (the `command` agent here runs `true`).
    let w2 = World::new();
    w2.write_config("agents:\n  command:\n    path: /bin/sh\n    args: [\"-c\", \"true\"]\n");
    let file = write(
        w2.dir.path(),
        "b.yaml",
        "name: idle\nagents: [command]\nproblems:\n  - id: p\n    repo: ./repo\n    prompt: do nothing\n    test: \"true\"\n",
    );
    let view = w2.json(&["bench", "custom", "--config", file.to_str().unwrap()]);
    assert_eq!(view["results"][0]["status"], "empty_patch", "{view}");
    assert_eq!(view["results"][0]["model_patch"], Value::Null, "the patch is in exports, not in show");
}

#[test]
fn bad_bench_files_and_datasets_are_one_line_errors_naming_file_line_and_field() {
    let w = World::new();
    let d = w.dir.path();
    let bad_value = write(
        d,
        "b.yaml",
        "name: x\nagents: [claude]\nconcurrency: 0\nproblems:\n  - id: p\n    repo: ./repo\n    prompt: q\n",
    );
    let (code, err) = w.fails(&["bench", "custom", "--config", bad_value.to_str().unwrap(), "--dry-run"]);
    assert_eq!(code, 2);
    assert!(one_line(&err).contains("b.yaml:3:14: concurrency: must be between 1 and 64"), "{err}");
    let bad_agent = write(
        d,
        "a.yaml",
        "name: x\nagents:\n  - agent: gpt\nproblems:\n  - id: p\n    repo: ./repo\n    prompt: q\n",
    );
    let (_, err) = w.fails(&["bench", "custom", "--config", bad_agent.to_str().unwrap()]);
    assert!(one_line(&err).contains("a.yaml:3:12: agents[0].agent: unknown agent \"gpt\""), "{err}");
    let missing = write(
        d,
        "m.yaml",
        "name: x\nagents: [claude]\nproblems:\n  - id: p\n    repo: ./nope\n    prompt: q\n",
    );
    let (code, err) = w.fails(&["bench", "custom", "--config", missing.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        one_line(&err).contains("m.yaml:5:11: problems[0].repo: repository \"./nope\" does not exist"),
        "{err}"
    );
    let bad_base = write(
        d,
        "c.yaml",
        "name: x\nagents: [claude]\nproblems:\n  - id: p\n    repo: ./repo\n    base: mian\n    prompt: q\n",
    );
    let (_, err) = w.fails(&["bench", "custom", "--config", bad_base.to_str().unwrap()]);
    assert!(
        one_line(&err).contains("c.yaml:6:11: problems[0].base: \"mian\" is not a branch or commit"),
        "{err}"
    );
    assert!(err.contains("did you mean: main"), "{err}");

    let good = r#"{"instance_id": "o__r-1", "repo": "o/r", "base_commit": "abc", "problem_statement": "x", "FAIL_TO_PASS": "[]", "PASS_TO_PASS": []}"#;
    let data = write(
        d,
        "d.jsonl",
        &format!("{good}\n{}\n", good.replace("o__r-1", "o__r-2").replace("\"[]\"", "7")),
    );
    let (code, err) = w.fails(&["bench", "swe-bench-lite", "--dataset", data.to_str().unwrap(), "--dry-run"]);
    assert_eq!(code, 2);
    assert!(
        one_line(&err)
            .ends_with("d.jsonl:2: instance o__r-2: FAIL_TO_PASS: expected a list of test ids, got a number"),
        "{err}"
    );
    let only_good = write(d, "g.jsonl", &format!("{good}\n"));
    let broken = write(d, "e.jsonl", &format!("{good}\n{{\"instance_id\": \n"));
    let (_, err) = w.fails(&["bench", "swe-bench-lite", "--dataset", broken.to_str().unwrap()]);
    assert!(one_line(&err).contains("e.jsonl:2:"), "{err}");
    let (code, err) = w.fails(&[
        "bench",
        "swe-bench-lite",
        "--dataset",
        only_good.to_str().unwrap(),
        "--instances",
        "nope",
        "--dry-run",
    ]);
    assert_eq!(code, 2);
    assert!(one_line(&err).contains("no instance \"nope\" in the dataset"), "{err}");
    let (code, err) = w.fails(&["bench", "show", "nope"]);
    assert_eq!(code, 2);
    assert!(one_line(&err).contains("no bench run matches \"nope\""), "{err}");
}

#[test]
fn a_bench_budget_stops_the_agents_keeps_their_work_and_starts_nothing_more() {
    let w = World::new();
    let bin = w.dir.path().join("bin");
    let claude = install_fake_agent_as(&bin, "claude");
    w.write_config(&format!(
        "agents:\n  claude:\n    path: {}\nnotifications:\n  desktop: false\n",
        claude.display()
    ));
    w.set_env("FAKE_AGENT_SCENARIO", scenario_path("claude_budget").to_str().unwrap());
    w.set_env("ANTHROPIC_API_KEY", "sk-ant-test");
    let file = write(
        w.dir.path(),
        "b.yaml",
        "name: capped\nbudget: 0.10\nagents: [claude]\nproblems:\n  - id: plan\n    repo: ./repo\n    prompt: Plan it\n    \
         test: test -f PLAN.md\n  - id: later\n    repo: ./repo\n    prompt: Plan again\n    test: test -f PLAN.md\n",
    );
    let started = Instant::now();
    let out = w.run(&["bench", "custom", "--config", file.to_str().unwrap(), "--json"]);
    assert!(started.elapsed() < Duration::from_secs(6), "the agent was not stopped at the budget");
    assert!(!out.status.success(), "a run stopped by its budget is not a success");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("budget"), "{stderr}");
    let view: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(view["status"], "aborted");
    assert!(view["stop_reason"].as_str().unwrap().contains("budget of bench run"), "{view}");
    assert_eq!(view["budget_usd"], 0.1);
    let first = &view["results"][0];
    assert_eq!(first["agent_outcome"], "budget", "{first}");
    // Stopped at the budget, and still evaluated on what it had done.
    assert_eq!(first["status"], "resolved", "{first}");
    let second = &view["results"][1];
    assert_eq!(second["status"], "aborted");
    assert!(
        second["error"].as_str().unwrap().starts_with("not started: the budget of bench run"),
        "{second}"
    );
    assert!(second["session_id"].is_null());

    // The partial work is on the session branch, and nothing after the stop happened.
    let branch = first["branch"].as_str().unwrap();
    let plan = git(&w.repo, &["show", &format!("{branch}:PLAN.md")]);
    assert!(plan.starts_with("# Plan"), "{plan}");
    let files = git(&w.repo, &["ls-tree", "-r", "--name-only", branch]);
    assert!(!files.contains("LATE.md"), "{files}");
    let list = w.json(&["bench", "list"]);
    assert_eq!(list[0]["status"], "aborted");
    assert!(list[0]["stop_reason"].as_str().unwrap().contains("was reached"));

    // Resuming with the spent budget is refused and changes nothing; a higher budget runs what had not
    // started, counting what the run already spent ($0.1086): the second result stops at $0.20.
    let id = view["id"].as_str().unwrap().to_string();
    let (code, err) = w.fails(&["bench", "resume", &id]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("has spent its budget") && err.contains("--budget USD"), "{err}");
    assert_eq!(w.json(&["bench", "show", &id])["results"][1]["status"], "aborted");
    let out = w.run(&["bench", "resume", &id, "--budget", "0.20", "--json"]);
    assert!(!out.status.success(), "stopped at the new budget");
    let resumed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(resumed["status"], "aborted", "{resumed}");
    assert_eq!(resumed["budget_usd"], 0.2);
    assert!(resumed["stop_reason"].as_str().unwrap().contains("of $0.20 spent"), "{resumed}");
    assert_eq!(resumed["results"][0]["session_id"], first["session_id"], "a finished result is kept");
    let again = &resumed["results"][1];
    assert_eq!(again["agent_outcome"], "budget", "{again}");
    assert_eq!(again["status"], "resolved", "{again}");
    assert!(again["session_id"].is_string(), "{again}");
    let (code, err) = w.fails(&["bench", "resume", &id, "--budget", "5"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("has nothing left to run"), "{err}");

    // Without `budget:` in the file, `bench.budget_usd` from the config applies; `--budget` wins over both.
    let open = write(
        w.dir.path(),
        "open.yaml",
        "name: open\nagents: [claude]\nproblems:\n  - {id: p, repo: ./repo, prompt: x, test: \"true\"}\n",
    );
    let plan = w.json(&["bench", "custom", "--config", open.to_str().unwrap(), "--dry-run"]);
    assert!(plan["budget_usd"].is_null(), "{plan}");
    w.write_config(&format!(
        "agents:\n  claude:\n    path: {}\nbench:\n  budget_usd: 3\nnotifications:\n  desktop: false\n",
        claude.display()
    ));
    let plan = w.json(&["bench", "custom", "--config", open.to_str().unwrap(), "--dry-run"]);
    assert_eq!(plan["budget_usd"], 3.0, "{plan}");
    let plan =
        w.json(&["bench", "custom", "--config", open.to_str().unwrap(), "--dry-run", "--budget", "0.5"]);
    assert_eq!(plan["budget_usd"], 0.5, "{plan}");
}

/// A Claude Code stand-in that works for a while (long enough to be aborted or killed).
const CLAUDE_SLOW: &str = r#"{"format": "claude", "steps": [
 {"emit": {"type": "system", "subtype": "init", "cwd": "{{cwd}}", "session_id": "{{thread_id}}", "tools": [], "mcp_servers": [], "model": "claude-sonnet-4-5-20250929"}},
 {"write_file": {"path": "started.txt", "content": "yes\n"}},
 {"sleep_ms": 8000},
 {"emit": {"type": "result", "subtype": "success", "is_error": false, "duration_ms": 100, "num_turns": 1, "result": "Done.", "session_id": "{{thread_id}}", "total_cost_usd": 0.01, "usage": {"input_tokens": 10, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 5}}}
]}"#;

fn wait_for(w: &World, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = w.run(&["bench", "show", id, "--json"]);
        if out.status.success() {
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            if done(&v) {
                return v;
            }
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A suite of two problems for claude alone (run with `CLAUDE_SLOW`: its agent works for seconds).
fn slow_suite(w: &World) -> PathBuf {
    write(
        w.dir.path(),
        "slow.yaml",
        "name: slow\nagents: [claude]\nproblems:\n  - id: a\n    repo: ./demo\n    prompt: go\n    test: \"true\"\n  - id: b\n    \
         repo: ./demo\n    prompt: go\n    test: \"true\"\n",
    )
}

#[test]
fn bench_abort_from_another_terminal_and_a_killed_runner_end_the_run() {
    let w = bench_world(CLAUDE_SLOW, CODEX_MISSES);
    let file = slow_suite(&w);
    // abort from another process: the running agent is stopped, the unstarted result marked aborted.
    let mut runner = w
        .cmd()
        .args(["bench", "custom", "--config", file.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = wait_for(&w, "slow", "the first result to run", |v| {
        v["results"][0]["status"] == "running" && v["results"][0]["session_name"].is_string()
    });
    std::thread::sleep(Duration::from_millis(300));
    let id = started["id"].as_str().unwrap().to_string();
    let report = w.json(&["bench", "abort", &id]);
    assert!(report["was_active"].as_bool().unwrap());
    assert_eq!(report["queued_aborted"], 1);
    let status = runner.wait().unwrap();
    assert!(!status.success());
    let view = w.json(&["bench", "show", &id]);
    assert_eq!(view["status"], "aborted");
    assert_eq!(view["results"][1]["status"], "aborted");
    let stopped = &view["results"][0];
    assert_eq!(stopped["status"], "aborted", "{view}");
    assert_ne!(stopped["agent_outcome"], "success", "{view}");
    assert!(stopped["error"].as_str().unwrap().contains("aborted while the agent ran"), "{view}");

    // kill -9 of the runner: the run shows as failed with a note, not running forever.
    let file2 = write(
        w.dir.path(),
        "slow2.yaml",
        &std::fs::read_to_string(&file).unwrap().replace("name: slow", "name: killed"),
    );
    let mut runner = w
        .cmd()
        .args(["bench", "custom", "--config", file2.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&w, "killed", "the first result to run", |v| v["results"][0]["status"] == "running");
    runner.kill().unwrap();
    runner.wait().unwrap();
    let list = w.json(&["bench", "list"]);
    let killed = list.as_array().unwrap().iter().find(|r| r["name"] == "killed").unwrap();
    assert_eq!(killed["status"], "failed", "{killed}");
    assert!(killed["stop_reason"].as_str().unwrap().contains("stopped before the run finished"), "{killed}");
    let view = w.json(&["bench", "show", "killed"]);
    assert!(view["note"].as_str().unwrap().contains("stopped early"), "{view}");
    assert_eq!(view["results"][0]["status"], "aborted");
    assert!(view["results"][0]["error"].as_str().unwrap().starts_with("interrupted"));
    // The orphaned agent finishes on its own (it sleeps 8 s); stop it now so the test leaves nothing behind.
    let pids = recorded_agent_pids(&w);
    for p in pids {
        let _ = std::process::Command::new("kill").args(["-9", &format!("-{p}")]).status();
    }
}

/// Agent process groups recorded for the world's sessions (from `list --json`).
fn recorded_agent_pids(w: &World) -> Vec<i64> {
    let list = w.json(&["list", "--all"]);
    list.as_array().map(|a| a.iter().filter_map(|s| s["agent_pid"].as_i64()).collect()).unwrap_or_default()
}

/// Whether `pid` is gone (or a zombie nobody reaped yet).
fn process_gone(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z')))
        .unwrap_or(true)
}

fn wait_until_gone(pid: i64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !process_gone(pid) {
        assert!(Instant::now() < deadline, "{what} (process {pid}) is still running");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `bench show <id> --follow --json`, to its end: every line one JSON document.
fn follow_json(w: &World, id: &str) -> Vec<Value> {
    let out = w.run(&["bench", "show", id, "--follow", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

#[test]
fn a_detached_custom_bench_returns_its_id_and_follow_streams_it_to_the_end() {
    let w = bench_world(CLAUDE_FIXES, CODEX_MISSES);
    let d = w.dir.path();
    write(d, "hidden.patch", HIDDEN_PATCH);
    let file = write(d, "bench.yaml", SHOUT_BENCH);
    let file = file.to_str().unwrap();

    // --json: one document with the id, the runner and its log; the run goes on in the background.
    let started = w.json(&["bench", "custom", "--config", file, "--detach"]);
    assert_eq!(started["detached"], true, "{started}");
    assert_eq!(started["name"], "shout-bench");
    let id = started["id"].as_str().unwrap().to_string();
    let runner = started["runner_pid"].as_i64().unwrap();
    assert!(runner > 0);
    let log = PathBuf::from(started["log"].as_str().unwrap());
    assert!(log.starts_with(started["out_dir"].as_str().unwrap()), "{started}");

    // Follow: one JSON line per result change, then the whole run once it ended.
    let lines = follow_json(&w, &id[..8]);
    let last = lines.last().unwrap();
    assert_eq!(last["event"], "run", "{last}");
    assert_eq!(last["id"], id.as_str());
    assert_eq!(last["status"], "completed", "{last:#}");
    assert_eq!(last["counts"]["resolved"], 3, "{last:#}");
    assert_eq!(last["counts"]["unresolved"], 1, "{last:#}");
    let results = results_by(last);
    assert_shout_outcomes(&results);
    for l in &lines[..lines.len() - 1] {
        assert_eq!(l["event"], "result", "{l}");
        assert_eq!(l["run_id"], id.as_str());
    }
    for (instance, label, status, _) in &results {
        assert!(
            lines.iter().any(|l| l["event"] == "result"
                && l["result"]["instance_id"] == instance.as_str()
                && l["result"]["label"] == label.as_str()
                && l["result"]["status"] == status.as_str()),
            "{instance} with {label} ended {status} on some line: {lines:?}"
        );
    }
    assert_eq!(w.json(&["bench", "show", &id])["status"], "completed");
    wait_until_gone(runner, "the runner of a finished run");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("ended: completed"), "{text}");
    assert!(text.contains("[4/4]"), "{text}");
    let out_dir = PathBuf::from(started["out_dir"].as_str().unwrap());
    assert_eq!(std::fs::read_to_string(out_dir.join("predictions.jsonl")).unwrap().lines().count(), 4);

    // Without --json: the id alone on stdout, how to follow and stop it on stderr; --follow prints the run,
    // then its changes, and ends with its summary.
    let out = w.run(&["bench", "custom", "--config", file, "--detach"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let id2 = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(id2.len(), 32, "{id2}");
    assert!(stderr.contains(&format!("amp-sessions bench show {} --follow", &id2[..8])), "{stderr}");
    assert!(stderr.contains(&format!("amp-sessions bench abort {}", &id2[..8])), "{stderr}");
    assert!(stderr.contains("runs in the background (process "), "{stderr}");
    let shown = w.ok(&["bench", "show", &id2, "--follow"]);
    assert!(shown.contains(&format!("Bench run shout-bench ({}) completed", &id2[..8])), "{shown}");
    assert!(shown.contains("AGENT/MODEL"), "{shown}");

    // A finished run's follow ends at once with the run; nothing is left to resume.
    let lines = follow_json(&w, &id2);
    assert_eq!(lines.last().unwrap()["status"], "completed");
    assert_eq!(lines.len(), 5, "four results and the run: {lines:?}");
    let (code, err) = w.fails(&["bench", "resume", &id2, "--detach"]);
    assert_eq!(code, 2, "{err}");
    assert!(one_line(&err).contains("nothing left to run"), "{err}");
    // The internal runner refuses a run that ended, in one line.
    let (code, err) = w.fails(&["bench", "run-detached", &id2]);
    assert_eq!(code, 1, "{err}");
    assert!(one_line(&err).contains("it already ended (completed)"), "{err}");
    let (code, err) = w.fails(&["bench", "show", "nosuch", "--follow"]);
    assert_eq!(code, 2, "{err}");
    assert!(one_line(&err).contains("no bench run matches \"nosuch\""), "{err}");
}

#[test]
fn bench_abort_stops_a_detached_run_and_follow_ends_when_its_runner_dies() {
    let w = bench_world(CLAUDE_SLOW, CODEX_MISSES);
    let file = slow_suite(&w);
    let file = file.to_str().unwrap();
    let started = w.json(&["bench", "custom", "--config", file, "--detach"]);
    let id = started["id"].as_str().unwrap().to_string();
    let runner = started["runner_pid"].as_i64().unwrap();
    // The command came back while the run goes on (its agent works for 8 s), under the background runner.
    let v = w.json(&["bench", "show", &id]);
    assert_eq!(v["status"], "running", "{v}");
    assert_eq!(v["runner_pid"], runner, "{v}");
    wait_for(&w, &id, "the first agent to run", |v| v["results"][0]["status"] == "running");
    let deadline = Instant::now() + Duration::from_secs(20);
    let groups = loop {
        let pids = recorded_agent_pids(&w);
        if !pids.is_empty() {
            break pids;
        }
        assert!(Instant::now() < deadline, "no agent process was recorded");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!processes_in_groups(&groups).is_empty(), "the agent runs");

    // A follower in another terminal, then the abort from a third one.
    let follower = w.spawn(&["bench", "show", &id, "--follow", "--json"]);
    let report = w.json(&["bench", "abort", &id[..8]]);
    assert_eq!(report["was_active"], true, "{report}");
    assert_eq!(report["queued_aborted"], 1, "{report}");
    assert_eq!(report["agents_left"], 0, "{report}");
    let left = processes_in_groups(&groups);
    assert!(left.is_empty(), "agent processes left after abort: {left:?}");
    wait_until_gone(runner, "the runner of an aborted run");
    let out = follower.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "run", "{text}");
    assert_eq!(last["status"], "aborted", "{last:#}");
    assert_eq!(last["counts"]["running"], 0, "{last:#}");
    assert_eq!(last["counts"]["queued"], 0, "{last:#}");
    assert_eq!(last["results"][1]["status"], "aborted", "{last:#}");
    let log = std::fs::read_to_string(started["log"].as_str().unwrap()).unwrap();
    assert!(log.contains("ended: aborted"), "{log}");
    // Aborting again is harmless.
    assert_eq!(w.json(&["bench", "abort", &id])["was_active"], false);

    // Resumed in the background, then its runner killed: follow ends with the run failed, not running forever.
    let resumed = w.json(&["bench", "resume", &id, "--detach"]);
    assert_eq!(resumed["detached"], true, "{resumed}");
    assert_eq!(resumed["log"], started["log"], "the resumed runner writes to the same log");
    let runner = resumed["runner_pid"].as_i64().unwrap();
    wait_for(&w, &id, "the resumed agent to run", |v| {
        v["status"] == "running" && v["results"].as_array().unwrap().iter().any(|r| r["status"] == "running")
    });
    std::process::Command::new("kill").args(["-9", &runner.to_string()]).status().unwrap();
    let lines = follow_json(&w, &id);
    let last = lines.last().unwrap();
    assert_eq!(last["status"], "failed", "{last:#}");
    assert!(last["stop_reason"].as_str().unwrap().contains("stopped before the run finished"), "{last:#}");
    assert_eq!(last["counts"]["running"], 0, "{last:#}");
    let log = std::fs::read_to_string(started["log"].as_str().unwrap()).unwrap();
    assert_eq!(log.matches("started bench run").count(), 2, "{log}");
    // The orphaned agent of the killed runner would finish on its own; stop it so nothing is left behind.
    for p in recorded_agent_pids(&w) {
        let _ = std::process::Command::new("kill").args(["-9", &format!("-{p}")]).status();
    }
}

#[test]
fn a_bench_setup_prepares_every_agent_worktree_and_evaluation_tree() {
    let w = bench_world(CLAUDE_FIXES, CODEX_MISSES);
    let d = w.dir.path();
    // The setup makes a file the tests need and that git ignores, so only the setup can provide it.
    std::fs::write(d.join("demo/.git/info/exclude"), ".ready\n").unwrap();
    let runs = d.join("setup-runs.log");
    let file = write(
        d,
        "setup.yaml",
        &format!(
            "name: prepared\nagents: [claude]\nsetup: \"echo \\\"$PWD\\\" >> {runs}; touch .ready\"\nproblems:\n  - id: needs\n    \
             repo: ./demo\n    prompt: go\n    test: \"test -f .ready && test \\\"$(sh greet.sh)\\\" = HELLO\"\n  - id: bare\n    \
             repo: ./demo\n    prompt: go\n    setup: \"\"\n    test: \"test ! -f .ready\"\n",
            runs = runs.display()
        ),
    );
    let file = file.to_str().unwrap();
    let plan = w.json(&["bench", "custom", "--config", file, "--dry-run"]);
    assert_eq!(plan["problems"][1]["setup"], Value::Null, "an empty setup runs none: {plan}");
    assert!(plan["problems"][0]["setup"].as_str().unwrap().starts_with("echo"), "{plan}");
    let view = w.json(&["bench", "custom", "--config", file]);
    assert_eq!(view["counts"]["resolved"], 2, "{view:#}");
    // Once in the agent's worktree, once in the evaluation tree, for the one problem with a setup.
    let ran = std::fs::read_to_string(&runs).unwrap();
    let dirs: Vec<&str> = ran.lines().collect();
    assert_eq!(dirs.len(), 2, "{ran}");
    assert!(dirs.iter().any(|d| d.contains("/worktrees/")), "{ran}");
    assert!(dirs.iter().any(|d| d.contains("/eval/")), "{ran}");

    // A setup that fails in the evaluation tree is the environment's error, not an unresolved result.
    let broken = write(
        d,
        "broken.yaml",
        "name: broken\nagents: [claude]\nproblems:\n  - id: env\n    repo: ./demo\n    prompt: go\n    \
         setup: 'case \"$PWD\" in */eval/*) exit 7;; esac'\n    test: \"true\"\n",
    );
    let view = w.json(&["bench", "custom", "--config", broken.to_str().unwrap()]);
    let r = &view["results"][0];
    assert_eq!(r["status"], "error", "{view:#}");
    assert!(r["error"].as_str().unwrap().contains("failed in the evaluation tree (exit code 7)"), "{r}");
}

#[test]
fn repeats_show_their_spread_pass_at_k_and_all_k() {
    let w = bench_world(CLAUDE_FIXES, CODEX_MISSES);
    let d = w.dir.path();
    write(d, "hidden.patch", HIDDEN_PATCH);
    let file = write(d, "bench.yaml", &SHOUT_BENCH.replace("repeats: 1", "repeats: 2"));
    let view = w.json(&["bench", "custom", "--config", file.to_str().unwrap()]);
    assert_eq!(view["counts"]["total"], 8, "{view:#}");
    let claude = summary_of(&view, "claude/claude-sonnet-4-5");
    assert_eq!(claude["repeats"]["k"], 2, "{claude}");
    assert_eq!(claude["repeats"]["rates"], serde_json::json!([1.0, 1.0]));
    assert_eq!(claude["repeats"]["pass_at_k"], 1.0);
    let codex = summary_of(&view, "codex");
    // codex resolves `notes` and never `shout`, in both repeats.
    assert_eq!(codex["repeats"]["rates"], serde_json::json!([0.5, 0.5]), "{codex}");
    assert_eq!(codex["repeats"]["rate_stddev"], 0.0);
    assert_eq!(
        (codex["repeats"]["pass_at_k"].as_f64(), codex["repeats"]["pass_all_k"].as_f64()),
        (Some(0.5), Some(0.5))
    );
    let shown = w.ok(&["bench", "show", view["id"].as_str().unwrap()]);
    assert!(shown.contains("PASS@K") && shown.contains("50.0% (k=2)"), "{shown}");
}

#[test]
fn a_swe_bench_lite_run_starts_from_the_dashboard_like_the_cli_one() {
    let w = bench_world(CLAUDE_ECHOES, CODEX_MISSES);
    let base = swe_repo(&w);
    let data = format!("{}\n", swe_row("octo__demo-1", &base, "Please FIX it"));
    let dataset = write(w.dir.path(), "lite.jsonl", &data);
    let repos = w.dir.path().join("repos");
    let d = crate::web_support::Dashboard::start(&w);
    let fields = |extra: &[(&'static str, &'static str)]| -> Vec<(&'static str, String)> {
        let mut f = vec![
            ("dataset", dataset.display().to_string()),
            ("repos_dir", repos.display().to_string()),
            ("agents", "claude".to_string()),
            ("test_cmd", "sh {test}".to_string()),
        ];
        f.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        f
    };
    let post = |f: &[(&str, String)]| {
        let refs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
        d.post("/bench/swe", &refs)
    };
    // A bad field is one line naming it, and the form keeps what was typed.
    let r = post(&fields(&[("timeout", "ten minutes")]));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("timeout: ") && r.body.contains("ten minutes"), "{}", r.body);
    assert!(r.body.contains(&format!("value=\"{}\"", dataset.display())), "{}", r.body);
    // A dry run shows the plan and records nothing.
    let r = post(&fields(&[("dry_run", "on")]));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("id=\"plan\"") && r.body.contains("octo__demo-1"), "{}", r.body);
    assert_eq!(w.json(&["bench", "list"]).as_array().unwrap().len(), 0);

    let r = post(&fields(&[("budget", "2")]));
    assert_eq!(r.status, 303, "{}", r.body);
    let id = r.location.unwrap().trim_start_matches("/bench/").split('?').next().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    let view = loop {
        let v = w.json(&["bench", "show", &id]);
        if v["status"] != "running" && v["status"] != "queued" {
            break v;
        }
        assert!(Instant::now() < deadline, "the run did not finish: {v}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(view["kind"], "swe-bench-lite", "{view}");
    assert_eq!(view["budget_usd"], 2.0, "{view}");
    assert_eq!(view["counts"]["resolved"], 1, "{view}");
    assert!(PathBuf::from(view["out_dir"].as_str().unwrap()).join("predictions.jsonl").is_file());
}

//! SWE-bench evaluation with the official harness's own commands, driven through the real binary: local
//! clones named like SWE-bench's repositories (`django/django`, `pallets/flask`, `sympy/sympy`) hold a tiny
//! Python package with a bug; no `--test-cmd` is given, so each instance is graded by its repository's
//! built-in runner (a unittest stand-in for Django's `tests/runtests.py`, the pinned real pytest, a missing
//! sympy `bin/test`) and the matching log parser, test by test.

use crate::bench::{bench_world, results_by, write};
use crate::support::World;
use ampsm_testutils::repo::{git, init_repo};
use ampsm_testutils::{Tool, require, requires};
use serde_json::Value;

/// A Claude Code stand-in that fixes `add`.
const CLAUDE_FIXES_ADD: &str = r#"{"format": "claude", "steps": [
 {"emit": {"type": "system", "subtype": "init", "cwd": "{{cwd}}", "session_id": "{{thread_id}}", "tools": [], "mcp_servers": [], "model": "claude-sonnet-4-5-20250929"}},
 {"write_file": {"path": "mini/calc.py", "content": "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n"}},
 {"emit": {"type": "result", "subtype": "success", "is_error": false, "duration_ms": 100, "num_turns": 1, "result": "Fixed add.", "session_id": "{{thread_id}}", "total_cost_usd": 0.01, "usage": {"input_tokens": 100, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 20}}}
]}"#;

/// A Codex stand-in that "fixes" `add` into a product.
const CODEX_BREAKS_ADD: &str = r#"{"format": "codex", "steps": [
 {"emit": {"type": "thread.started", "thread_id": "{{thread_id}}"}},
 {"emit": {"type": "turn.started"}},
 {"write_file": {"path": "mini/calc.py", "content": "def add(a, b):\n    return a * b\n\n\ndef sub(a, b):\n    return a - b\n"}},
 {"emit": {"type": "item.completed", "item": {"id": "item_0", "type": "agent_message", "text": "Changed add."}}},
 {"emit": {"type": "turn.completed", "usage": {"input_tokens": 50, "cached_input_tokens": 0, "output_tokens": 5}}}
]}"#;

const CALC_WITH_BUG: &str = "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n";

/// A stand-in for Django's `tests/runtests.py`: unittest at the asked verbosity over module labels, with
/// only the tests folder on its path (the package under test must come from PYTHONPATH).
const RUNTESTS: &str = r#"#!/usr/bin/env python3
import argparse, os, sys, unittest
p = argparse.ArgumentParser()
p.add_argument("--verbosity", type=int, default=1)
p.add_argument("--settings")
p.add_argument("--parallel")
p.add_argument("labels", nargs="*")
args = p.parse_args()
sys.path[0] = os.path.dirname(os.path.abspath(__file__))
suite = unittest.defaultTestLoader.loadTestsFromNames(args.labels)
sys.exit(not unittest.TextTestRunner(verbosity=args.verbosity).run(suite).wasSuccessful())
"#;

/// Commits a clone under `repos/<folder>` with the buggy package, `extra` files (executable when they start
/// with `#!`) and `test_file` holding `base_tests`; returns (base commit, test_patch that turns the test file into `patched_tests`).
fn clone_with(
    w: &World,
    folder: &str,
    extra: &[(&str, &str)],
    test_file: &str,
    base_tests: &str,
    patched_tests: &str,
) -> (String, String) {
    let repo = init_repo(&w.dir.path().join("repos").join(folder));
    write(&repo, "mini/__init__.py", "");
    write(&repo, "mini/calc.py", CALC_WITH_BUG);
    for (path, text) in extra {
        let file = write(&repo, path, text);
        if text.starts_with("#!") {
            std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        }
    }
    write(&repo, test_file, base_tests);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "base"]);
    let base = git(&repo, &["rev-parse", "HEAD"]).trim().to_string();
    write(&repo, test_file, patched_tests);
    let test_patch = git(&repo, &["diff"]);
    git(&repo, &["checkout", "--", test_file]);
    (base, test_patch)
}

fn row(id: &str, repo: &str, base: &str, test_patch: &str, fail: &[&str], pass: &[&str]) -> String {
    serde_json::json!({
        "instance_id": id, "repo": repo, "base_commit": base, "patch": "GOLD",
        "problem_statement": "add() subtracts; make it add", "hints_text": "", "version": "3.0",
        "created_at": "2024-01-01T00:00:00Z", "environment_setup_commit": base, "test_patch": test_patch,
        "FAIL_TO_PASS": serde_json::to_string(fail).unwrap(),
        "PASS_TO_PASS": serde_json::to_string(pass).unwrap(),
    })
    .to_string()
}

#[requires(python3, pytest)]
#[test]
fn swe_bench_instances_are_graded_by_their_repositorys_own_runner_and_log_format() {
    // `.ci/python`: its `bin/pytest` and the modules, for PATH and PYTHONPATH.
    let pytest = require(Tool::Pytest).ancestors().nth(2).unwrap().to_path_buf();
    let w = bench_world(CLAUDE_FIXES_ADD, CODEX_BREAKS_ADD);
    w.set_env("PATH", &format!("{}:{}", pytest.join("bin").display(), std::env::var("PATH").unwrap()));
    w.set_env("PYTHONPATH", pytest.to_str().unwrap());

    // Django: labels under tests/, unittest's verbose lines; a docstring names the new test.
    let unittest_tests = "import unittest\nfrom mini.calc import add, sub\n\n\nclass CalcTests(unittest.TestCase):\n    \
                          def test_sub(self):\n        self.assertEqual(sub(5, 3), 2)\n";
    let unittest_patched = format!(
        "{unittest_tests}\n    def test_add(self):\n        \"\"\"Adds two numbers.\"\"\"\n        self.assertEqual(add(2, 3), 5)\n"
    );
    let (dj_base, dj_patch) = clone_with(
        &w,
        "django__django",
        &[("tests/runtests.py", RUNTESTS), ("tests/calc/__init__.py", "")],
        "tests/calc/tests.py",
        unittest_tests,
        &unittest_patched,
    );
    // Python 3.11 names a test `test_sub (calc.tests.CalcTests.test_sub)`, older ones without the method.
    let new_names = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.version_info >= (3, 11))"])
        .output()
        .unwrap();
    let sub_id = if String::from_utf8_lossy(&new_names.stdout).trim() == "True" {
        "test_sub (calc.tests.CalcTests.test_sub)"
    } else {
        "test_sub (calc.tests.CalcTests)"
    };

    // Flask: pytest node ids from the -rA summary.
    let pytest_tests = "from mini.calc import add, sub\n\n\ndef test_sub():\n    assert sub(5, 3) == 2\n";
    let pytest_patched = format!("{pytest_tests}\n\ndef test_add():\n    assert add(2, 3) == 5\n");
    let (fl_base, fl_patch) =
        clone_with(&w, "pallets__flask", &[], "tests/test_calc.py", pytest_tests, &pytest_patched);

    // sympy, whose bin/test this clone lacks: the runner is missing, so nothing is graded.
    let (sy_base, sy_patch) =
        clone_with(&w, "sympy__sympy", &[], "sympy/tests/test_calc.py", pytest_tests, &pytest_patched);

    let data = [
        row("django__django-1", "django/django", &dj_base, &dj_patch, &["Adds two numbers."], &[sub_id]),
        row(
            "pallets__flask-1",
            "pallets/flask",
            &fl_base,
            &fl_patch,
            &["tests/test_calc.py::test_add"],
            &["tests/test_calc.py::test_sub"],
        ),
        row("sympy__sympy-1", "sympy/sympy", &sy_base, &sy_patch, &["test_add"], &["test_sub"]),
    ]
    .join("\n");
    let dataset = write(w.dir.path(), "lite.jsonl", &data);
    let dataset = dataset.to_str().unwrap();

    // The plan says which command grades each instance, and where it came from.
    let plan = w.json(&[
        "bench",
        "swe-bench-lite",
        "--dataset",
        dataset,
        "--repos-dir",
        "repos",
        "--agent",
        "claude",
        "--dry-run",
    ]);
    let dj = &plan["problems"][0];
    assert_eq!(dj["test_from"], "built-in", "{plan}");
    assert_eq!(
        dj["test"], "./tests/runtests.py --verbosity 2 --settings=test_sqlite --parallel 1 calc.tests",
        "{plan}"
    );
    assert_eq!(
        plan["problems"][1]["test"],
        "pytest --no-header -rA --tb=no -p no:cacheprovider tests/test_calc.py"
    );

    let view = w.json(&[
        "bench",
        "swe-bench-lite",
        "--dataset",
        dataset,
        "--repos-dir",
        "repos",
        "--agent",
        "claude",
        "--agent",
        "codex",
        "--concurrency",
        "3",
    ]);
    let results = results_by(&view);
    let get = |id: &str, label: &str| -> &Value {
        &results
            .iter()
            .find(|r| r.0 == id && r.1 == label)
            .unwrap_or_else(|| panic!("{id} {label}: {view}"))
            .3
    };
    for id in ["django__django-1", "pallets__flask-1"] {
        let fixed = get(id, "claude");
        assert_eq!(fixed["status"], "resolved", "{fixed}");
        assert_eq!((fixed["tests_passed"].as_i64(), fixed["tests_failed"].as_i64()), (Some(2), Some(0)));
        let broken = get(id, "codex");
        assert_eq!(broken["status"], "unresolved", "{broken}");
        let report: Value = serde_json::from_str(broken["test_report"].as_str().unwrap()).unwrap();
        assert_eq!(report["FAIL_TO_PASS"]["success"], serde_json::json!([]), "{report}");
        assert_eq!(report["PASS_TO_PASS"]["failure"], serde_json::json!([]), "{report}");
    }
    let dj_report: Value =
        serde_json::from_str(get("django__django-1", "claude")["test_report"].as_str().unwrap()).unwrap();
    assert_eq!(dj_report["log_format"], "django");
    assert_eq!(dj_report["PASS_TO_PASS"]["success"], serde_json::json!([sub_id]));
    for label in ["claude", "codex"] {
        let r = get("sympy__sympy-1", label);
        assert_eq!(r["status"], "not_evaluated", "{r}");
        assert!(r["resolved"].is_null(), "never a guessed unresolved: {r}");
        let note = r["error"].as_str().unwrap();
        assert!(note.contains("sympy runner reported no test results (exit code 127)"), "{note}");
        assert!(note.contains("install the repository's Python environment"), "{note}");
    }
    // The per-run logs keep what each runner printed.
    let logs = std::fs::read_dir(std::path::Path::new(view["out_dir"].as_str().unwrap()).join("logs"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(logs.contains("Adds two numbers. ... ok"), "{logs}");
    assert!(logs.contains("PASSED tests/test_calc.py::test_add"), "{logs}");

    // A command of one's own can still use the harness's: `{harness}` after a setup step, `{files}` alone.
    for cmd in ["echo set up && {harness}", "pytest -rA {files}"] {
        let view = w.json(&[
            "bench",
            "swe-bench-lite",
            "--dataset",
            dataset,
            "--repos-dir",
            "repos",
            "--agent",
            "claude",
            "--instances",
            "pallets__flask-1",
            "--test-cmd",
            cmd,
        ]);
        let r = &view["results"][0];
        assert_eq!(r["status"], "resolved", "{cmd}: {r}");
        let report: Value = serde_json::from_str(r["test_report"].as_str().unwrap()).unwrap();
        assert!(report["command"].as_str().unwrap().ends_with(" tests/test_calc.py"), "{report}");
    }
}

//! What the official SWE-bench harness knows about each repository, restated for local evaluation:
//!
//! - **Test commands.** [`builtin_command`] gives the runner the harness uses for the 12 repositories of
//!   SWE-bench (pytest with `-rA` for most, Django's `tests/runtests.py`, sympy's `bin/test`, tox for
//!   Sphinx), aimed at the test files that the instance's `test_patch` touches ([`test_directives`]; for
//!   Django those become module labels, `tests/a/b.py` → `a.b`). The runner itself must be installed: the
//!   repository's Python environment is the user's (the harness builds one per instance in Docker).
//! - **Log formats.** [`LogFormat`] turns a runner's output into one [`TestStatus`] per test name, in the
//!   spelling the dataset's `FAIL_TO_PASS` / `PASS_TO_PASS` use: pytest node ids from the `-rA` summary,
//!   Django's `test_x (module.Class)` (or a docstring's first line) from its verbose lines, sympy's bare
//!   function names from `bin/test --verbose`.
//!
//! The figures this gives are local ones: versions of Python packages differ from the harness images, so a
//! result can differ from the official one (the README says so).

use ampsm_config::bench::patch_new_paths;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A test's outcome as a runner reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestStatus {
    Passed,
    Failed,
    Error,
    Skipped,
    XFail,
    XPass,
}

impl TestStatus {
    /// Whether SWE-bench grading counts it as passing (PASSED, XFAIL).
    pub fn is_pass(self) -> bool {
        matches!(self, TestStatus::Passed | TestStatus::XFail)
    }

    /// pytest's words: `PASSED`, `FAILED`, `ERROR`, `SKIPPED`, `XFAIL`, `XPASS`.
    fn from_pytest(word: &str) -> Option<TestStatus> {
        Some(match word {
            "PASSED" => TestStatus::Passed,
            "FAILED" => TestStatus::Failed,
            "ERROR" => TestStatus::Error,
            "SKIPPED" => TestStatus::Skipped,
            "XFAIL" => TestStatus::XFail,
            "XPASS" => TestStatus::XPass,
            _ => return None,
        })
    }
}

/// How a runner prints per-test outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// `PASSED id` / `FAILED id - message` summary lines (`-rA`) and `id PASSED [ 50%]` verbose lines.
    #[default]
    Pytest,
    /// unittest's verbose lines, `name ... ok|FAIL|ERROR|skipped …`, and `FAIL: name` headers.
    Django,
    /// `bin/test --verbose`: `test_name ok|F|E|f|X|s|w|T`.
    Sympy,
}

impl LogFormat {
    /// The format of the runner the harness uses for `owner/name`.
    pub fn for_repo(repo: &str) -> LogFormat {
        match repo {
            "django/django" => LogFormat::Django,
            "sympy/sympy" => LogFormat::Sympy,
            _ => LogFormat::Pytest,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Pytest => "pytest",
            LogFormat::Django => "django",
            LogFormat::Sympy => "sympy",
        }
    }

    /// Per-test outcomes found in `output`; when a test is reported twice, the later line wins.
    pub fn parse(self, output: &str) -> HashMap<String, TestStatus> {
        match self {
            LogFormat::Pytest => parse_pytest(output),
            LogFormat::Django => parse_django(output),
            LogFormat::Sympy => parse_sympy(output),
        }
    }
}

const PYTEST: &str = "pytest --no-header -rA --tb=no -p no:cacheprovider";
const PYTEST_ASTROPY: &str = "pytest -rA -vv -o console_output_style=classic --tb=no";
const PYTEST_SEABORN: &str = "pytest --no-header -rA";
const DJANGO: &str = "./tests/runtests.py --verbosity 2 --settings=test_sqlite --parallel 1";
const DJANGO_SERIAL: &str = "./tests/runtests.py --verbosity 2";
const SPHINX: &str = "tox --current-env -epy39 -v --";
const SYMPY: &str = "PYTHONWARNINGS='ignore::UserWarning,ignore::SyntaxWarning' bin/test -C --verbose";

/// The runner the harness uses for `repo` at `version`, without the test files; `None` for a repository
/// outside SWE-bench.
pub fn runner_for(repo: &str, version: Option<&str>) -> Option<&'static str> {
    Some(match repo {
        "astropy/astropy" => PYTEST_ASTROPY,
        "django/django" if version == Some("1.9") => DJANGO_SERIAL,
        "django/django" => DJANGO,
        "mwaskom/seaborn" => PYTEST_SEABORN,
        "sphinx-doc/sphinx" => SPHINX,
        "sympy/sympy" => SYMPY,
        "matplotlib/matplotlib"
        | "pallets/flask"
        | "psf/requests"
        | "pydata/xarray"
        | "pylint-dev/pylint"
        | "pytest-dev/pytest"
        | "scikit-learn/scikit-learn" => PYTEST,
        _ => return None,
    })
}

/// Files that a `test_patch` may touch but that are data, not tests to run.
const DATA_EXTENSIONS: [&str; 11] =
    [".json", ".png", ".csv", ".txt", ".md", ".jpg", ".jpeg", ".pkl", ".yml", ".yaml", ".toml"];

/// What the runner is pointed at: the files `test_patch` leaves behind (data files left out); for Django,
/// module labels relative to `tests/` (`tests/admin_views/tests.py` → `admin_views.tests`).
pub fn test_directives(repo: &str, test_patch: &str) -> Vec<String> {
    patch_new_paths(test_patch)
        .into_iter()
        .filter(|p| !DATA_EXTENSIONS.iter().any(|ext| p.ends_with(ext)))
        .map(|p| {
            if repo != "django/django" {
                return p;
            }
            let p = p.strip_suffix(".py").unwrap_or(&p);
            let p = p.strip_prefix("tests/").unwrap_or(p);
            p.replace('/', ".")
        })
        .collect()
}

/// The whole command the harness would run for an instance: its runner followed by the test files of
/// `test_patch`, each quoted for `sh`.
pub fn builtin_command(repo: &str, version: Option<&str>, test_patch: &str) -> Option<String> {
    let runner = runner_for(repo, version)?;
    let mut cmd = runner.to_string();
    for d in test_directives(repo, test_patch) {
        cmd.push(' ');
        cmd.push_str(&shell_quote(&d));
    }
    Some(cmd)
}

/// Quotes `s` for `sh` (single quotes; a quote inside becomes `'\''`).
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c)) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn parse_pytest(output: &str) -> HashMap<String, TestStatus> {
    let mut out = HashMap::new();
    for line in output.lines() {
        let line = line.trim();
        let (first, rest) = line.split_once(' ').unwrap_or((line, ""));
        if let Some(status) = TestStatus::from_pytest(first) {
            let id = strip_message(rest.trim());
            if !id.is_empty() {
                out.insert(id.to_string(), status);
            }
            continue;
        }
        // Verbose form: `path::test STATUS [ NN%]`.
        let mut tokens = line.split_whitespace();
        if let (Some(id), Some(word)) = (tokens.next(), tokens.next())
            && id.contains("::")
            && let Some(status) = TestStatus::from_pytest(word)
        {
            out.insert(id.to_string(), status);
        }
    }
    out
}

/// `id - message` → `id` (a ` - ` inside the brackets of a parametrized id is kept).
fn strip_message(rest: &str) -> &str {
    let search_from = match (rest.find('['), rest.rfind(']')) {
        (Some(open), Some(close)) if close > open => close,
        _ => 0,
    };
    match rest[search_from..].find(" - ") {
        Some(i) => rest[..search_from + i].trim_end(),
        None => rest,
    }
}

/// unittest's verdict words after ` ... `.
fn django_verdict(word: &str) -> Option<TestStatus> {
    let word = word.trim();
    Some(if word.starts_with("ok") || word == "OK" {
        TestStatus::Passed
    } else if word.starts_with("FAIL") {
        TestStatus::Failed
    } else if word.starts_with("ERROR") {
        TestStatus::Error
    } else if word.starts_with("skipped") {
        TestStatus::Skipped
    } else if word.starts_with("expected failure") {
        TestStatus::XFail
    } else if word.starts_with("unexpected success") {
        TestStatus::XPass
    } else {
        return None;
    })
}

fn parse_django(output: &str) -> HashMap<String, TestStatus> {
    let mut out = HashMap::new();
    // A test that prints while it runs has its verdict on a later line of its own.
    let mut pending: Option<String> = None;
    for line in output.lines() {
        let line = line.trim();
        if let Some((name, verdict)) = line.split_once(" ... ") {
            let name = name.trim().to_string();
            match django_verdict(verdict) {
                Some(status) => {
                    out.insert(name, status);
                    pending = None;
                }
                None => pending = Some(name),
            }
            continue;
        }
        if let Some(name) = line.strip_suffix(" ...") {
            pending = Some(name.trim().to_string());
            continue;
        }
        for (prefix, status) in [("FAIL: ", TestStatus::Failed), ("ERROR: ", TestStatus::Error)] {
            if let Some(name) = line.strip_prefix(prefix) {
                out.insert(name.trim().to_string(), status);
            }
        }
        if let Some(name) = pending.as_ref()
            && let Some(status) = django_verdict(line).filter(|_| line.split_whitespace().count() <= 3)
        {
            out.insert(name.clone(), status);
            pending = None;
        }
    }
    out
}

fn parse_sympy(output: &str) -> HashMap<String, TestStatus> {
    let mut out = HashMap::new();
    for line in output.lines() {
        let line = line.trim();
        let mut tokens = line.split_whitespace();
        let (Some(name), Some(last)) = (tokens.next(), line.split_whitespace().last()) else {
            continue;
        };
        if name.starts_with("test_") && name != last {
            let status = match last {
                "ok" => TestStatus::Passed,
                "F" | "T" => TestStatus::Failed,
                "E" => TestStatus::Error,
                "f" => TestStatus::XFail,
                "X" => TestStatus::XPass,
                "s" | "w" => TestStatus::Skipped,
                _ => continue,
            };
            out.insert(name.to_string(), status);
            continue;
        }
        // The report after the run: `____ sympy/core/tests/test_x.py:test_y ____` heads each failure.
        if line.starts_with('_')
            && let Some((_, test)) = line.trim_matches('_').trim().split_once(".py:")
        {
            let test = test.trim();
            if !test.is_empty() && out.get(test).is_none_or(|s| s.is_pass()) {
                out.insert(test.to_string(), TestStatus::Failed);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn django_verbose_lines_docstrings_and_late_verdicts_are_read() {
        let out = "\
Testing against Django installed in '/testbed/django'
test_add (admin_views.tests.AdminViewTests) ... ok
test_delete (admin_views.tests.AdminViewTests) ... FAIL
test_gone (admin_views.tests.AdminViewTests) ... ERROR
test_later (admin_views.tests.AdminViewTests) ... skipped 'needs postgres'
test_known (admin_views.tests.AdminViewTests) ... expected failure
test_docs (admin_views.tests.AdminViewTests)
A change list keeps its filters. ... ok
test_noisy (admin_views.tests.AdminViewTests) ... printed something
ok
test_new_style (admin_views.tests.AdminViewTests.test_new_style) ... ok

======================================================================
FAIL: test_delete (admin_views.tests.AdminViewTests)
----------------------------------------------------------------------
Ran 8 tests in 0.123s

FAILED (failures=1, errors=1, skipped=1)
";
        let m = LogFormat::Django.parse(out);
        assert_eq!(m["test_add (admin_views.tests.AdminViewTests)"], TestStatus::Passed);
        assert_eq!(m["test_delete (admin_views.tests.AdminViewTests)"], TestStatus::Failed);
        assert_eq!(m["test_gone (admin_views.tests.AdminViewTests)"], TestStatus::Error);
        assert_eq!(m["test_later (admin_views.tests.AdminViewTests)"], TestStatus::Skipped);
        assert!(m["test_known (admin_views.tests.AdminViewTests)"].is_pass());
        assert_eq!(m["A change list keeps its filters."], TestStatus::Passed);
        assert_eq!(m["test_noisy (admin_views.tests.AdminViewTests)"], TestStatus::Passed);
        assert_eq!(m["test_new_style (admin_views.tests.AdminViewTests.test_new_style)"], TestStatus::Passed);
        assert!(!m.contains_key("Ran 8 tests in 0.123s"));
    }

    #[test]
    fn sympy_verbose_lines_and_failure_headers_are_read() {
        let out = "\
============================= test process starts ==============================
executable:         /usr/bin/python3  (3.9.7-final-0) [CPython]
sympy/core/tests/test_basic.py[4]
test__aresame ok
test_structure ok
test_issue_20590 F
test_broken E
test_slow_thing w
test_known_bug f

________________________________________________________________________________
_____________ sympy/core/tests/test_basic.py:test_issue_20590 __________________
AssertionError
_____________ sympy/core/tests/test_basic.py:test_only_in_report _______________
";
        let m = LogFormat::Sympy.parse(out);
        assert_eq!(m["test__aresame"], TestStatus::Passed);
        assert_eq!(m["test_structure"], TestStatus::Passed);
        assert_eq!(m["test_issue_20590"], TestStatus::Failed);
        assert_eq!(m["test_broken"], TestStatus::Error);
        assert_eq!(m["test_slow_thing"], TestStatus::Skipped);
        assert!(m["test_known_bug"].is_pass());
        assert_eq!(m["test_only_in_report"], TestStatus::Failed);
        assert!(!m.contains_key("executable:"));
    }

    #[test]
    fn builtin_commands_aim_the_repositorys_runner_at_the_patched_test_files() {
        let patch = "\
diff --git a/tests/admin_views/tests.py b/tests/admin_views/tests.py
--- a/tests/admin_views/tests.py
+++ b/tests/admin_views/tests.py
@@ -1 +1 @@
-a
+b
diff --git a/tests/admin_views/fixtures/data.json b/tests/admin_views/fixtures/data.json
--- a/tests/admin_views/fixtures/data.json
+++ b/tests/admin_views/fixtures/data.json
@@ -1 +1 @@
-1
+2
";
        assert_eq!(
            builtin_command("django/django", Some("3.0"), patch).unwrap(),
            format!("{DJANGO} admin_views.tests")
        );
        assert_eq!(
            builtin_command("django/django", Some("1.9"), patch).unwrap(),
            format!("{DJANGO_SERIAL} admin_views.tests")
        );
        assert_eq!(
            builtin_command("psf/requests", None, patch).unwrap(),
            format!("{PYTEST} tests/admin_views/tests.py")
        );
        assert!(builtin_command("sympy/sympy", Some("1.7"), patch).unwrap().starts_with("PYTHONWARNINGS="));
        assert_eq!(builtin_command("someone/else", None, patch), None);
        assert_eq!(LogFormat::for_repo("django/django"), LogFormat::Django);
        assert_eq!(LogFormat::for_repo("pydata/xarray"), LogFormat::Pytest);
    }

    #[test]
    fn pytest_summary_lines_give_each_tests_outcome() {
        let out = "\
============================= test session starts ==============================
tests/test_a.py::test_one PASSED                                         [ 33%]
tests/test_a.py::test_two FAILED                                         [ 66%]
=========================== short test summary info ============================
PASSED tests/test_a.py::test_one
PASSED tests/test_a.py::test_p[a - b]
FAILED tests/test_a.py::test_two - AssertionError: assert 1 == 2
ERROR tests/test_b.py::test_setup - RuntimeError
XFAIL tests/test_a.py::test_known - reason
SKIPPED [1] tests/test_c.py:3: no db
==================== 1 failed, 2 passed, 1 error in 0.12s =====================
";
        let m = LogFormat::Pytest.parse(out);
        assert_eq!(m.get("tests/test_a.py::test_one"), Some(&TestStatus::Passed));
        assert_eq!(m.get("tests/test_a.py::test_p[a - b]"), Some(&TestStatus::Passed));
        assert_eq!(m.get("tests/test_a.py::test_two"), Some(&TestStatus::Failed));
        assert_eq!(m.get("tests/test_b.py::test_setup"), Some(&TestStatus::Error));
        assert!(m.get("tests/test_a.py::test_known").is_some_and(|s| s.is_pass()));
        assert!(!TestStatus::Error.is_pass() && !TestStatus::Skipped.is_pass());
        assert!(LogFormat::Pytest.parse("all good\n").is_empty());
    }

    #[test]
    fn shell_quoting_keeps_ids_whole() {
        assert_eq!(shell_quote("tests/t1.sh"), "tests/t1.sh");
        assert_eq!(shell_quote("test_x (module.Class)"), "'test_x (module.Class)'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}

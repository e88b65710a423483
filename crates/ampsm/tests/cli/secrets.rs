//! Secrets never reach the database, logs or exports, whatever form they take in the recorded text (as
//! they are, JSON-escaped once or twice, non-ASCII as `\u` escapes), and a secret value written into the
//! agent's committed change is named (variable and file) and redacted in every stored copy of the change
//! (a benchmark's `model_patch`, `predictions.jsonl`, exports). Recorded output is bounded too: an
//! agent that floods its output is stopped at the limit of one run.

use crate::support::World;
use std::path::{Path, PathBuf};

/// A password with a quote, a backslash and a non-ASCII letter: JSON escapes each of them.
const VALUE: &str = "pa\"ss\\w\u{f6}rd-0123456789";

/// The forms of `VALUE` a stored line can hold.
fn forms() -> Vec<String> {
    let once = serde_json::to_string(VALUE).unwrap();
    let once = once[1..once.len() - 1].to_string();
    let twice = serde_json::to_string(&once).unwrap();
    let twice = twice[1..twice.len() - 1].to_string();
    let ascii = once.replace('\u{f6}', "\\u00f6");
    vec![VALUE.to_string(), once, twice, ascii]
}

/// Every file under `root` but the worktrees: none holds any form of the value.
fn assert_nowhere(root: &Path) {
    let forms = forms();
    let refs: Vec<&str> = forms.iter().map(String::as_str).collect();
    crate::support::assert_no_file_holds(root, &refs);
}

/// A world whose `command` agent prints the secret in each encoding (as JSON lines, as Amp and Claude
/// stream them) and writes its environment into env.txt, which it commits with its work.
fn leaky_world() -> World {
    let w = World::new();
    let f = forms();
    w.set_env("DB_PASSWORD", VALUE);
    w.set_env("ONCE", &f[1]);
    w.set_env("TWICE", &f[2]);
    w.set_env("ASCII", &f[3]);
    let script = "printf '{\"out\":\"%s\"}\\n' \"$ONCE\"; printf '{\"content\":\"{\\\\\"output\\\\\":\\\\\"%s\\\\\"}\"}\\n' \"$TWICE\"; \
                  printf '{\"out\":\"%s\"}\\n' \"$ASCII\"; env > env.txt; echo fixed > fix.txt";
    w.write_config(&format!(
        "agents:\n  command:\n    path: /bin/sh\n    args: [\"-c\", {}]\nnotifications:\n  desktop: false\n",
        serde_json::to_string(script).unwrap()
    ));
    w
}

#[test]
fn secrets_in_every_encoding_are_redacted_and_a_committed_secret_is_named() {
    let w = leaky_world();
    w.ok(&["new", "--repo", w.repo_arg(), "--name", "leaky", "--agent", "command", "--prompt", "go"]);
    let out = w.run(&["iterate", "leaky"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: the agent's committed change holds secret values: DB_PASSWORD in env.txt"),
        "{stderr}"
    );
    let logs = w.ok(&["logs", "leaky", "--raw"]);
    assert_eq!(logs.matches("[redacted:DB_PASSWORD]").count(), 3, "{logs}");
    let show = w.ok(&["show", "leaky"]);
    assert!(show.contains("DB_PASSWORD in env.txt"), "the note is in the status history: {show}");
    let export = w.ok(&["export", "--session", "leaky", "--format", "json"]);
    for form in forms() {
        assert!(!logs.contains(&form) && !export.contains(&form), "{form}");
    }
    assert_nowhere(&w.home());
}

#[test]
fn a_benchmark_patch_that_holds_a_secret_is_stored_and_exported_redacted() {
    let w = leaky_world();
    let file: PathBuf = w.dir.path().join("b.yaml");
    std::fs::write(
        &file,
        "name: leaky\nagents: [command]\nproblems:\n  - id: p\n    repo: ./repo\n    prompt: go\n    test: \"test -f fix.txt\"\n",
    )
    .unwrap();
    let view = w.json(&["bench", "custom", "--config", file.to_str().unwrap()]);
    let r = &view["results"][0];
    assert_eq!(r["status"], "resolved", "{view}");
    assert!(r["error"].as_str().unwrap_or_default().contains("DB_PASSWORD in env.txt"), "{r}");
    let id = view["id"].as_str().unwrap();
    let export = w.ok(&["bench", "export", id, "--format", "jsonl"]);
    assert!(export.contains("[redacted:DB_PASSWORD]"), "the patch is exported, redacted: {export}");
    let mut files = vec![w.home()];
    if let Some(dir) = view["out_dir"].as_str() {
        files.push(PathBuf::from(dir));
    }
    for root in files {
        assert_nowhere(&root);
    }
}

/// An agent that floods its output (`yes`) is stopped at the default limit of one run; what it printed
/// before is recorded, nothing after, and the database stays small.
#[test]
fn an_agent_that_floods_its_output_is_stopped_at_the_default_limit() {
    let w = crate::support::command_world("echo started > started.txt; yes");
    w.ok(&["new", "--repo", w.repo_arg(), "--name", "flood", "--agent", "command", "--prompt", "go"]);
    let started = std::time::Instant::now();
    let out = w.run(&["iterate", "flood", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "took {:?}", started.elapsed());
    let error = report["iteration"]["error"].as_str().unwrap();
    assert!(error.contains("200000 lines") && error.contains("session.max_run_lines"), "{error}");
    assert_eq!(report["lines_recorded"], 200_000, "{report}");
    assert_eq!(report["session"]["status"], "error");
    // Its work before the flood is committed.
    let commit = report["commit"].as_str().expect("a commit");
    let wt = std::path::PathBuf::from(report["session"]["worktree_path"].as_str().unwrap());
    assert_eq!(ampsm_testutils::repo::git(&wt, &["show", &format!("{commit}:started.txt")]), "started\n");
    let db = std::fs::metadata(w.home().join("sessions.db")).unwrap().len();
    assert!(db < 100 * 1024 * 1024, "database of {db} bytes");
}

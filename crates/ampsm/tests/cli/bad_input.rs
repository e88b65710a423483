//! Bad input met the way a new user meets it: out-of-range durations in the config, flags and YAML files,
//! many `config set` at once, an unknown default agent, a dataset with a byte order mark, cryptic YAML
//! errors and a repository without commits. Each is a one-line error naming what is wrong (never a panic,
//! never a lost update).

use crate::support::{World, command_world, one_line};
use std::path::PathBuf;

fn write(w: &World, name: &str, text: &str) -> PathBuf {
    let p = w.dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Asserts a failure with exit code 2 (bad input) and a one-line error containing every one of `parts`.
fn refused(w: &World, args: &[&str], parts: &[&str]) {
    let out = w.run(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "amp-sessions {args:?} should be refused as bad input:\n{err}");
    let line = one_line(&err);
    for p in parts {
        assert!(line.contains(p), "amp-sessions {args:?}: expected {p:?} in:\n{err}");
    }
}

#[test]
fn durations_out_of_range_are_one_line_errors_naming_the_field_and_the_limit() {
    let w = command_world("touch started");
    let config = w.home().join("config.yaml");
    let good_config = std::fs::read_to_string(&config).unwrap();

    // In config.yaml: every command, even `list`, says which key on which line, and the limit.
    std::fs::write(&config, format!("{good_config}amp:\n  timeout: 99999999999999999999999s\n")).unwrap();
    let line = good_config.lines().count() + 2;
    refused(&w, &["list"], &[&format!("config.yaml:{line}:"), "amp.timeout", "30d"]);
    std::fs::write(&config, format!("{good_config}session:\n  ask_timeout: 5000000000000000h\n")).unwrap();
    refused(&w, &["list"], &[&format!("config.yaml:{line}:"), "session.ask_timeout", "30d"]);
    std::fs::write(&config, &good_config).unwrap();

    // Through `config set`: refused, and the file is unchanged.
    for (key, value) in [
        ("amp.timeout", "99999999999999999999999s"),
        ("amp.timeout", "5000000000000000h"),
        ("session.setup_timeout", "31d"),
    ] {
        refused(&w, &["config", "set", key, value], &[key, "30d"]);
    }
    assert_eq!(std::fs::read_to_string(&config).unwrap(), good_config);
    w.ok(&["config", "set", "amp.timeout", "30d"]);
    w.ok(&["config", "set", "amp.timeout", "5m"]);

    // Flags: refused before anything starts.
    let s = w.json(&["new", "--repo", w.repo_arg(), "--name", "t", "--agent", "command"]);
    let wt = PathBuf::from(s["worktree_path"].as_str().unwrap());
    for t in ["5000000000000000h", "99999999999999999999999s", "2592001"] {
        refused(&w, &["iterate", "t", "--timeout", t], &["--timeout", "30d"]);
    }
    assert!(!wt.join("started").exists(), "the agent never started");
    refused(&w, &["stop", "t", "--wait", "99999999999999999999999s"], &["--wait", "30d"]);
    refused(
        &w,
        &["merge", "t", "--script-timeout", "99999999999999999999999s"],
        &["--script-timeout", "30d"],
    );

    // YAML files, also with --dry-run: file:line:column: field.
    let batch = write(
        &w,
        "b.yaml",
        "name: x\nrepos: [./repo]\nitems:\n  - name: a\n    prompt: p\n    timeout: 99999999999999999999999s\n",
    );
    refused(
        &w,
        &["batch", "start", "--file", batch.to_str().unwrap(), "--dry-run"],
        &["b.yaml:6:14: items[0].timeout:", "30d"],
    );
    let bench = write(
        &w,
        "c.yaml",
        "name: x\nagents: [claude]\ntimeout: 5000000000000000h\nproblems:\n  - id: p\n    repo: ./repo\n    prompt: q\n",
    );
    refused(
        &w,
        &["bench", "custom", "--config", bench.to_str().unwrap(), "--dry-run"],
        &["c.yaml:3:10: timeout:", "30d"],
    );
    let good = r#"{"instance_id": "o__r-1", "repo": "o/r", "base_commit": "abc", "problem_statement": "x", "FAIL_TO_PASS": [], "PASS_TO_PASS": []}"#;
    let data = write(&w, "d.jsonl", &format!("{good}\n"));
    let dataset = data.to_str().unwrap();
    for flag in ["--timeout", "--test-timeout"] {
        refused(
            &w,
            &["bench", "swe-bench-lite", "--dataset", dataset, flag, "99999999999999999999999s", "--dry-run"],
            &[flag, "30d"],
        );
    }
}

#[test]
fn concurrent_config_sets_all_succeed_and_none_is_lost() {
    let w = World::new();
    w.ok(&["config", "set", "git.commit_prefix", "wip:"]);
    const PROCESSES: usize = 8;
    const SETS: usize = 20;
    const KEYS: usize = 5;
    let key = |p: usize, k: usize| format!("agents.agent{p}.env.K{k}");
    // Each process sets its own keys in turn, each key several times; the last set of a key must stick.
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..PROCESSES)
            .map(|p| {
                let commands: Vec<_> = (0..SETS)
                    .map(|j| {
                        let mut c = w.cmd();
                        c.args(["config", "set", &key(p, j % KEYS), &format!("v{p}-{j}")]);
                        c
                    })
                    .collect();
                scope.spawn(move || {
                    let mut failures = Vec::new();
                    for (j, mut c) in commands.into_iter().enumerate() {
                        let out = c.output().unwrap();
                        if !out.status.success() {
                            failures.push(format!("{p}/{j}: {}", String::from_utf8_lossy(&out.stderr)));
                        }
                    }
                    failures
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {} sets failed:\n{}",
        failures.len(),
        PROCESSES * SETS,
        failures.join("")
    );
    for p in 0..PROCESSES {
        for k in 0..KEYS {
            let last = (0..SETS).filter(|j| j % KEYS == k).max().unwrap();
            assert_eq!(w.ok(&["config", "get", &key(p, k)]).trim(), format!("v{p}-{last}"), "{}", key(p, k));
        }
    }
    assert_eq!(w.ok(&["config", "get", "git.commit_prefix"]).trim(), "wip:");
    let leftovers: Vec<_> = std::fs::read_dir(w.home())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

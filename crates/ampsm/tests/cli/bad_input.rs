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

#[test]
fn an_unknown_default_agent_is_refused_at_load_naming_the_key_and_the_agents() {
    let w = World::new();
    w.write_config("git:\n  commit_prefix: \"amp:\"\nsession:\n  default_agent: gtp\n");
    refused(
        &w,
        &["list"],
        &["config.yaml:4:", "session.default_agent", "unknown agent \"gtp\"", "amp, claude, codex"],
    );
    w.write_config("");
    refused(
        &w,
        &["config", "set", "session.default_agent", "gtp"],
        &["session.default_agent", "unknown agent \"gtp\""],
    );
    w.ok(&["config", "set", "session.default_agent", "claude"]);
    assert_eq!(w.ok(&["config", "get", "session.default_agent"]).trim(), "claude");
}

#[test]
fn a_dataset_with_a_byte_order_mark_is_read_like_one_without() {
    let w = World::new();
    let good = r#"{"instance_id": "o__r-1", "repo": "o/r", "base_commit": "abc", "problem_statement": "x", "FAIL_TO_PASS": [], "PASS_TO_PASS": []}"#;
    for (name, text) in
        [("bom.jsonl", format!("\u{feff}{good}\n")), ("bom.json", format!("\u{feff}[{good}]\n"))]
    {
        let data = write(&w, name, &text);
        // The dataset is read (the instance asked for is looked up in it), not refused at line 1.
        refused(
            &w,
            &[
                "bench",
                "swe-bench-lite",
                "--dataset",
                data.to_str().unwrap(),
                "--instances",
                "nope",
                "--dry-run",
            ],
            &["no instance \"nope\" in the dataset"],
        );
    }
}

#[test]
fn yaml_shape_and_size_errors_say_which_field_and_what_was_expected() {
    let w = command_world("true");
    let cases: &[(&str, &str)] = &[
        (
            "name: x\nrepos: ./repo\nitems:\n  - name: a\n    prompt: p\n",
            ":2:8: repos: expected a list ([a, b], or one \"- item\" per line), got ./repo",
        ),
        ("name: x\nrepos: [./repo]\nitems:\n  name: a\n  prompt: p\n", ":4:3: items: expected a list"),
        ("name: x\nrepos: [./repo]\nitems:\n  - a\n", ":4:5: items[0]: expected a mapping"),
        (
            "name: x\nrepos: [./repo]\nitems: [{name: a, prompt: p}, b]\n",
            ":3:31: items[1]: expected a mapping",
        ),
        (
            "name: [x]\nrepos: [./repo]\nitems:\n  - name: a\n    prompt: p\n",
            ":1:7: name: expected a single value",
        ),
        (
            "name: x\nrepos: [./repo]\nitems:\n  - name: a\n    prompt:\n      - p\n",
            ":6:7: items[0].prompt: expected a single value",
        ),
    ];
    for (yaml, expected) in cases {
        let file = write(&w, "b.yaml", yaml);
        refused(
            &w,
            &["batch", "start", "--file", file.to_str().unwrap(), "--dry-run"],
            &[&format!("b.yaml{expected}")],
        );
    }
    let bench = write(
        &w,
        "c.yaml",
        "name: x\nagents: claude\nproblems:\n  - id: p\n    repo: ./repo\n    prompt: q\n",
    );
    refused(
        &w,
        &["bench", "custom", "--config", bench.to_str().unwrap(), "--dry-run"],
        &["c.yaml:2:9: agents: expected a list"],
    );
    let config = w.home().join("config.yaml");
    let good_config = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, "git: 5\n").unwrap();
    refused(&w, &["list"], &["config.yaml:1:6: git: expected a mapping", "got 5"]);
    std::fs::write(&config, &good_config).unwrap();

    // Too big for a YAML file: the limit is said.
    let mut big = String::from("name: big\nrepos: [./repo]\nitems:\n");
    for i in 0..60_000 {
        big.push_str(&format!("  - name: i{i}\n    prompt: p\n"));
    }
    let file = write(&w, "big.yaml", &big);
    refused(
        &w,
        &["batch", "start", "--file", file.to_str().unwrap(), "--dry-run"],
        &["big.yaml", "more than 250000", "split"],
    );
}

#[test]
fn a_repository_without_commits_says_so_and_how_to_make_one() {
    let w = World::new();
    let empty = w.dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    ampsm_testutils::git(&empty, &["init", "-q", "-b", "main"]);
    let out = w.run(&["new", "--repo", empty.to_str().unwrap(), "--name", "x"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let line = one_line(&err);
    assert!(line.contains("has no commits yet") && line.contains("commit --allow-empty"), "{err}");
    assert!(!line.contains("did you mean"), "{err}");
    // The same in batch and bench files, at the repository's entry.
    let batch = write(&w, "b.yaml", "name: x\nrepos: [./empty]\nitems:\n  - name: a\n    prompt: p\n");
    refused(
        &w,
        &["batch", "start", "--file", batch.to_str().unwrap(), "--dry-run"],
        &["b.yaml:2:", "repos[0]: the repository", "has no commits yet"],
    );
    let bench = write(
        &w,
        "c.yaml",
        "name: x\nagents: [claude]\nproblems:\n  - id: p\n    repo: ./empty\n    prompt: q\n",
    );
    refused(
        &w,
        &["bench", "custom", "--config", bench.to_str().unwrap(), "--dry-run"],
        &["c.yaml:5:11: problems[0].repo: the repository", "has no commits yet"],
    );
}

#[test]
fn json_errors_give_their_kind_beside_the_message_and_the_hint() {
    let w = World::new();
    let error_of = |args: &[&str]| -> serde_json::Value {
        let out = w.run(args);
        assert!(!out.status.success(), "amp-sessions {args:?} should fail");
        serde_json::from_slice(&out.stderr).unwrap_or_else(|e| panic!("{args:?}: not one JSON object: {e}"))
    };
    let missing = error_of(&["show", "missing", "--json"]);
    assert_eq!((&missing["kind"], &missing["exit_code"]), (&"not-found".into(), &2.into()), "{missing}");

    w.json(&["new", "--repo", w.repo_arg(), "--name", "k"]);
    // The engine says what is wrong; the flag to use is the CLI's hint.
    let neither = error_of(&["stage", "k", "--json"]);
    assert_eq!(neither["kind"], "bad-input", "{neither}");
    assert!(!neither["error"].as_str().unwrap().contains("--all"), "{neither}");
    assert_eq!(neither["hint"], "name the paths to use, or pass --all", "{neither}");
    let both = error_of(&["stage", "k", "a.txt", "--all", "--json"]);
    assert_eq!(both["hint"], "give either paths or --all, not both", "{both}");
    let (code, err) = w.fails(&["unstage", "k"]);
    assert_eq!(code, 2, "{err}");
    assert!(one_line(&err).ends_with("hint: name the paths to use, or pass --all"), "{err}");
}

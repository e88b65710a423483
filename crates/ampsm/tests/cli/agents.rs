//! Agent runs through `iterate`: an Amp stand-in speaking the published stream format (the fake agent),
//! the missing-key refusal (Amp only; other agents run with a warning), agents that are not installed,
//! timeouts, and the real Claude Code and Codex CLIs against the scripted model server.

use crate::support::{World, command_world, ctrl_c, one_line, processes_in_groups};
use ampsm_testutils::model_server::{ModelServer, Script, Turn, Usage};
use ampsm_testutils::repo::git;
use ampsm_testutils::{Tool, install_fake_agent_as, require, requires, scenario_path};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A world whose `amp` is the fake agent playing `scenario`, with a key set.
fn amp_world(scenario: &str) -> (World, PathBuf) {
    let w = World::new();
    let bin = w.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let amp = install_fake_agent_as(&bin, "amp");
    let log = w.dir.path().join("fake-agent.log");
    w.write_config(&format!("amp:\n  path: {}\n", amp.display()));
    w.set_env("FAKE_AGENT_SCENARIO", scenario_path(scenario).to_str().unwrap());
    w.set_env("FAKE_AGENT_LOG", log.to_str().unwrap());
    w.set_env("AMP_API_KEY", "sgamp_test_key");
    (w, log)
}

fn fake_log(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn scenario(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(scenario_path(name)).unwrap()).unwrap()
}

/// Token totals of one iteration from `usage --json`.
fn iteration_usage(w: &World, session: &str, iteration_id: &str) -> (u64, u64, u64, u64) {
    let usage = w.json(&["usage", session]);
    let mut t = (0, 0, 0, 0);
    for row in usage["usage"].as_array().unwrap() {
        if row["iteration_id"] == iteration_id {
            t.0 += row["usage"]["input"].as_u64().unwrap();
            t.1 += row["usage"]["output"].as_u64().unwrap();
            t.2 += row["usage"]["cache_read"].as_u64().unwrap();
            t.3 += row["usage"]["cache_write"].as_u64().unwrap();
        }
    }
    t
}

fn expected(v: &Value) -> (u64, u64, u64, u64) {
    (
        v["input_tokens"].as_u64().unwrap(),
        v["output_tokens"].as_u64().unwrap(),
        v["cache_read_input_tokens"].as_u64().unwrap(),
        v["cache_creation_input_tokens"].as_u64().unwrap(),
    )
}

#[test]
fn amp_stand_in_records_tokens_tools_thread_and_continues_the_thread() {
    let (w, log) = amp_world("amp_continue");
    let scen = scenario("amp_continue");
    let s = w.json(&[
        "new",
        "--repo",
        w.repo_arg(),
        "--name",
        "notes",
        "--agent",
        "amp",
        "--prompt",
        "Write the first note.",
    ]);
    let id = s["id"].as_str().unwrap().to_string();
    let wt = PathBuf::from(s["worktree_path"].as_str().unwrap());

    let first = w.json(&["iterate", "notes"]);
    assert_eq!(first["iteration"]["outcome"], "success", "{first}");
    let thread = first["outcome"]["thread_id"].as_str().unwrap().to_string();
    assert!(thread.starts_with("T-"), "{thread}");
    assert_eq!(w.json(&["show", "notes"])["session"]["thread_id"], thread.as_str());
    let it1 = first["iteration"]["id"].as_str().unwrap().to_string();
    assert_eq!(iteration_usage(&w, &id, &it1), expected(&scen["expected_usage"]));

    // Argv as Amp wants it: execute mode, stream JSON, headless flags, prompt on stdin.
    let calls = fake_log(&log);
    let argv: Vec<&str> = calls[0]["argv"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    for flag in ["-x", "--stream-json", "--no-notifications", "--no-color", "--no-ide"] {
        assert!(argv.contains(&flag), "{argv:?}");
    }
    assert!(!argv.contains(&"--dangerously-allow-all"), "only when configured: {argv:?}");
    assert_eq!(calls[0]["stdin"].as_str().unwrap().trim(), "Write the first note.");

    // The work is committed with the trailers, and the tool calls are paired with their results.
    let commit = first["commit"].as_str().unwrap();
    let message = git(&wt, &["log", "-1", "--format=%B", commit]);
    assert!(message.starts_with("amp: Write the first note."), "{message}");
    assert!(message.contains(&format!("Amp-Thread: {thread}")), "{message}");
    assert!(message.contains(&format!("Session: {id}")), "{message}");
    assert_eq!(git(&wt, &["show", &format!("{commit}:NOTES.md")]), "first line\n");
    let tools = w.json(&["tools", "notes"]);
    let tools = tools.as_array().unwrap();
    assert!(!tools.is_empty());
    assert!(tools.iter().all(|t| t["success"] == true && t["ended_at"].is_i64()), "{tools:?}");
    assert!(tools.iter().any(|t| t["name"] == "create_file"));

    // The second iteration continues the thread and counts only the new turn's tokens.
    let second = w.json(&["iterate", "notes", "--prompt", "Add the second line."]);
    assert_eq!(second["iteration"]["outcome"], "success", "{second}");
    let calls = fake_log(&log);
    let argv: Vec<&str> = calls[1]["argv"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    let pos = argv.iter().position(|a| *a == "threads").expect("threads continue");
    assert_eq!(&argv[pos..pos + 3], ["threads", "continue", thread.as_str()]);
    let it2 = second["iteration"]["id"].as_str().unwrap();
    assert_eq!(iteration_usage(&w, &id, it2), expected(&scen["expected_usage_continue"]));
    assert_eq!(std::fs::read_to_string(wt.join("NOTES.md")).unwrap(), "first line\nsecond line\n");
    assert_eq!(git(&wt, &["status", "--porcelain"]), "", "everything is committed");
    assert_eq!(
        git(&wt, &["rev-list", "--count", "HEAD", &format!("^{}", s["base_commit"].as_str().unwrap())])
            .trim(),
        "2"
    );

    // Every raw line was stored next to its normalized form.
    let logs = w.ok(&["logs", "notes", "--json"]);
    let rows: Vec<Value> = logs.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(rows.iter().all(|r| r["raw"].is_string() && r["events"].is_array()));
    assert!(rows.iter().any(|r| r["kind"] == "init"));
    let human = w.ok(&["logs", "notes"]);
    assert!(human.contains("tool_use create_file"), "{human}");
}

#[test]
fn amp_without_a_key_is_refused_quickly_and_nothing_is_started() {
    let (w, log) = amp_world("amp_auth_failure");
    w.remove_env("AMP_API_KEY");
    w.ok(&["new", "--repo", w.repo_arg(), "--name", "nokey", "--agent", "amp", "--prompt", "hello"]);
    let started = Instant::now();
    let (code, err) = w.fails(&["iterate", "nokey"]);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_ne!(code, 0);
    let line = one_line(&err);
    assert!(
        line.contains("amp is not logged in") && line.contains("amp login") && line.contains("AMP_API_KEY"),
        "{err}"
    );
    assert!(fake_log(&log).is_empty(), "the agent must not be started without credentials");
    assert_eq!(w.json(&["show", "nokey"])["session"]["status"], "idle");
}

#[test]
fn codex_with_its_own_model_provider_runs_and_without_its_key_runs_with_a_warning() {
    let (w, log) = amp_world("codex");
    let codex = install_fake_agent_as(&w.dir.path().join("bin"), "codex");
    let codex_home = w.dir.path().join("codex-home");
    std::fs::create_dir_all(&codex_home).unwrap();
    std::fs::write(
        codex_home.join("config.toml"),
        "model_provider = \"azure\"\n\n[model_providers.azure]\nname = \"Azure\"\n\
         base_url = \"https://example.invalid/openai\"\nenv_key = \"AZURE_OPENAI_API_KEY\"\n",
    )
    .unwrap();
    w.write_config(&format!("agents:\n  codex:\n    path: {}\n", codex.display()));
    w.set_env("CODEX_HOME", codex_home.to_str().unwrap());
    w.set_env("AZURE_OPENAI_API_KEY", "az-test-key-0123456789");
    w.ok(&["new", "--repo", w.repo_arg(), "--name", "azure", "--agent", "codex", "--prompt", "go"]);
    // No OpenAI key or login anywhere: the provider's own key is what counts.
    let iterate = |w: &World| {
        w.cmd()
            .args(["iterate", "azure", "--json"])
            .env_remove("OPENAI_API_KEY")
            .env_remove("CODEX_API_KEY")
            .env_remove("OPENAI_BASE_URL")
            .output()
            .unwrap()
    };
    let out = iterate(&w);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("warning:") && !stderr.contains("not logged in"), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["iteration"]["outcome"], "success", "{report}");
    assert_eq!(fake_log(&log).len(), 1, "codex was started");

    // Without that key the check fails, but only Amp is refused: codex runs, with a one-line warning that
    // is also noted in the session's history, and no secret anywhere.
    w.remove_env("AZURE_OPENAI_API_KEY");
    let out = iterate(&w);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(warnings[0].contains("`azure`") && warnings[0].contains("AZURE_OPENAI_API_KEY"), "{stderr}");
    assert_eq!(fake_log(&log).len(), 2, "codex was started again");
    let shown = w.json(&["show", "azure"]);
    let noted = shown["status_history"]
        .as_array()
        .unwrap_or_else(|| panic!("no status_history: {shown}"))
        .iter()
        .any(|h| h["reason"].as_str().is_some_and(|r| r.contains("AZURE_OPENAI_API_KEY")));
    assert!(noted, "{shown}");
    assert!(!stderr.contains("az-test-key") && !shown.to_string().contains("az-test-key"));
}

#[test]
fn an_agent_that_is_not_installed_is_reported_before_any_credential_check() {
    let (w, log) = amp_world("amp_oneshot");
    // No key either: "not installed" must win over "not logged in".
    w.remove_env("AMP_API_KEY");
    w.write_config(
        "amp:\n  path: ampsm-amp-not-installed\nagents:\n  codex:\n    path: ampsm-codex-not-installed\n\
         \x20 claude:\n    path: /nonexistent/bin/claude\n",
    );
    let cases = [
        ("amp", "`ampsm-amp-not-installed` was not found on PATH", "npm install -g @ampcode/cli", "amp.path"),
        ("codex", "`ampsm-codex-not-installed`", "npm install -g @openai/codex", "agents.codex.path"),
        (
            "claude",
            "`/nonexistent/bin/claude`",
            "npm install -g @anthropic-ai/claude-code",
            "agents.claude.path",
        ),
    ];
    for (agent, program, hint, key) in cases {
        let name = format!("missing-{agent}");
        w.ok(&["new", "--repo", w.repo_arg(), "--name", &name, "--agent", agent, "--prompt", "hello"]);
        let (code, err) = w.fails(&["iterate", &name]);
        assert_ne!(code, 0);
        let line = one_line(&err);
        assert!(line.contains(&format!("{agent} is not installed")), "{err}");
        assert!(line.contains(program) && line.contains(hint) && line.contains(key), "{err}");
        assert!(!err.contains("not logged in"), "{err}");
        assert_eq!(w.json(&["show", &name])["session"]["status"], "idle");
    }
    assert!(fake_log(&log).is_empty());
    // doctor says the same, and still shows the credential state of what is installed.
    let report = w.json(&["doctor"]);
    let checks = report["checks"].as_array().unwrap();
    let detail = |name: &str| {
        checks.iter().find(|c| c["name"] == name).unwrap()["detail"].as_str().unwrap().to_string()
    };
    let codex = detail("agent codex");
    assert!(codex.contains("not installed (install: npm install -g @openai/codex"), "{codex}");
    assert!(detail("agent amp").contains("not installed (install: npm install -g @ampcode/cli"));
    assert!(detail("agent offline").contains("no credentials needed"));
}

#[test]
fn a_hanging_agent_is_stopped_at_the_timeout_with_its_process_group() {
    let (w, log) = amp_world("amp_hang_with_child");
    w.ok(&["new", "--repo", w.repo_arg(), "--name", "hang", "--agent", "amp", "--prompt", "wait"]);
    let started = Instant::now();
    let out = w.run(&["iterate", "hang", "--timeout", "2s", "--json"]);
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    assert!(!out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["iteration"]["outcome"], "timeout");
    assert_eq!(report["session"]["status"], "error");
    let pid = fake_log(&log)[0]["pid"].as_i64().unwrap();
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "the agent process is gone");
    // No process of its group is left either.
    let group_left = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .any(|stat| {
            stat.rsplit(") ")
                .next()
                .and_then(|rest| rest.split(' ').nth(2))
                .map(|pgrp| pgrp == pid.to_string())
                .unwrap_or(false)
        });
    assert!(!group_left, "a process of the agent's group survived");
}

/// Waits until `list` shows the session running with its agent started; returns the agent's pid.
fn wait_for_agent(w: &World, session: &str) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = w.json(&["show", session]);
        if let Some(pid) = s["session"]["agent_pid"].as_i64() {
            return pid;
        }
        assert!(Instant::now() < deadline, "the agent did not start: {s}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ctrl_c_stops_the_agent_commits_its_work_so_far_and_exits_130() {
    // It writes partial.txt, then works for 30 s before it writes late.txt.
    let w = command_world("echo partial > partial.txt\nsleep 30\necho late > late.txt");
    w.ok(&["new", "--repo", w.repo_arg(), "--name", "stopme", "--agent", "command", "--prompt", "go"]);
    let child = w.spawn(&["iterate", "stopme"]);
    let agent = wait_for_agent(&w, "stopme");
    let wt = PathBuf::from(w.json(&["show", "stopme"])["session"]["worktree_path"].as_str().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !wt.join("partial.txt").exists() {
        assert!(Instant::now() < deadline, "the agent wrote nothing");
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    ctrl_c(child.id());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted: stopping the agent"), "{stderr}");
    assert!(
        stderr.contains("error: interrupted: the agent was stopped; its work so far is committed"),
        "{stderr}"
    );
    // The agent's whole group is gone, and nothing it would have done later happened.
    assert!(
        processes_in_groups(&[agent]).is_empty(),
        "agent processes left: {:?}",
        processes_in_groups(&[agent])
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(!wt.join("late.txt").exists());
    // Its work so far is committed; the session is idle (not an error), the iteration `cancelled`.
    assert_eq!(git(&wt, &["status", "--porcelain"]), "");
    assert_eq!(git(&wt, &["show", "HEAD:partial.txt"]), "partial\n");
    assert!(git(&wt, &["log", "-1", "--format=%s"]).contains("(agent run: cancelled)"));
    let m = w.json(&["metrics", "stopme"]);
    assert_eq!(m["session"]["status"], "idle", "{m}");
    assert_eq!(m["iterations"][0]["outcome"], "cancelled", "{m}");
    // The user stopped it: nobody to notify.
    assert!(!w.dir.path().join("notes.log").exists());
    // The next run works as usual.
    let again = w.run(&["iterate", "stopme", "--timeout", "1s"]);
    assert_eq!(again.status.code(), Some(1), "the timeout stops it this time");
    assert_eq!(w.json(&["metrics", "stopme"])["iterations_count"], 2);
}

#[test]
fn ctrl_c_during_the_test_script_stops_it() {
    let w = command_world("echo done > done.txt");
    w.ok(&[
        "new",
        "--repo",
        w.repo_arg(),
        "--name",
        "tests",
        "--agent",
        "command",
        "--prompt",
        "go",
        "--script",
        "echo started > tests-started; sleep 30",
    ]);
    let child = w.spawn(&["iterate", "tests", "--json"]);
    let wt = PathBuf::from(w.json(&["show", "tests"])["session"]["worktree_path"].as_str().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !wt.join("tests-started").exists() {
        assert!(Instant::now() < deadline, "the test script did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    ctrl_c(child.id());
    let out = child.wait_with_output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["iteration"]["outcome"], "success", "the agent had finished: {report}");
    assert_eq!(report["tests"]["interrupted"], true, "{report}");
    assert!(report["commit"].is_string(), "the agent's work is committed");
}

#[test]
fn failing_agents_and_garbage_lines_are_recorded_without_losing_work() {
    let (w, _log) = amp_world("amp_garbage_lines");
    w.ok(&["new", "--repo", w.repo_arg(), "--name", "garbage", "--agent", "amp", "--prompt", "x"]);
    let out = w.run(&["iterate", "garbage", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["lines_recorded"].as_u64().unwrap() > 3, "{report}");
    let logs = w.ok(&["logs", "garbage", "--raw"]);
    assert!(!logs.is_empty());

    let (w, _log) = amp_world("amp_exit_error");
    w.ok(&["new", "--repo", w.repo_arg(), "--name", "fails", "--agent", "amp", "--prompt", "x"]);
    let out = w.run(&["iterate", "fails", "--json"]);
    assert!(!out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["iteration"]["outcome"], "failed");
    assert_eq!(report["session"]["status"], "error");
    assert!(report["iteration"]["error"].as_str().unwrap().len() > 3);
}

fn yaml_env(env: &[(String, String)]) -> String {
    env.iter().map(|(k, v)| format!("      {k}: \"{v}\"\n")).collect()
}

#[requires(claude)]
#[test]
fn real_claude_code_writes_a_file_that_the_session_commits_with_the_servers_token_counts() {
    let claude = require(Tool::Claude);
    let w = World::new();
    let agent_home = w.dir.path().join("claude-home");
    std::fs::create_dir_all(&agent_home).unwrap();
    let server = ModelServer::start(Script::new(vec![])).unwrap();
    let env = ampsm_testutils::real_cli::claude_offline_env(&server.url(), &agent_home);
    w.write_config(&format!(
        "session:\n  permissions: full\nagents:\n  claude:\n    path: {}\n    env:\n{}",
        claude.display(),
        yaml_env(&env)
    ));
    let s = w.json(&[
        "new",
        "--repo",
        w.repo_arg(),
        "--name",
        "claude-run",
        "--agent",
        "claude",
        "--prompt",
        "Create hello.txt",
    ]);
    let wt = PathBuf::from(s["worktree_path"].as_str().unwrap());
    let script = Script::new(vec![
        Turn::tool_call(
            "Write",
            json!({"file_path": wt.join("hello.txt"), "content": "hello from claude\n"}),
        )
        .with_text("Creating the file.")
        .with_usage(Usage {
            input_tokens: 11,
            output_tokens: 22,
            cache_read_input_tokens: 33,
            cache_creation_input_tokens: 44,
            reasoning_tokens: 0,
        }),
        Turn::text("Created hello.txt.").with_usage(Usage {
            input_tokens: 5,
            output_tokens: 6,
            cache_read_input_tokens: 7,
            cache_creation_input_tokens: 8,
            reasoning_tokens: 0,
        }),
        // The resumed run of the second iteration.
        Turn::tool_call("Write", json!({"file_path": wt.join("second.txt"), "content": "resumed\n"}))
            .with_usage(Usage {
                input_tokens: 100,
                output_tokens: 200,
                cache_read_input_tokens: 300,
                cache_creation_input_tokens: 400,
                reasoning_tokens: 0,
            }),
        Turn::text("Created second.txt.").with_usage(Usage {
            input_tokens: 1,
            output_tokens: 2,
            cache_read_input_tokens: 3,
            cache_creation_input_tokens: 4,
            reasoning_tokens: 0,
        }),
    ]);
    // The first iteration's share of the script.
    let total = Usage {
        input_tokens: 16,
        output_tokens: 28,
        cache_read_input_tokens: 40,
        cache_creation_input_tokens: 52,
        reasoning_tokens: 0,
    };
    server.set_script(script);

    let report = w.json(&["iterate", "claude-run", "--timeout", "120s"]);
    assert_eq!(report["iteration"]["outcome"], "success", "{report}");
    let commit = report["commit"].as_str().expect("a commit");
    assert_eq!(git(&wt, &["show", &format!("{commit}:hello.txt")]), "hello from claude\n");
    let branch = s["branch"].as_str().unwrap();
    assert_eq!(git(&w.repo, &["rev-parse", branch]).trim(), commit);
    let it = report["iteration"]["id"].as_str().unwrap();
    assert_eq!(
        iteration_usage(&w, s["id"].as_str().unwrap(), it),
        (
            total.input_tokens,
            total.output_tokens,
            total.cache_read_input_tokens,
            total.cache_creation_input_tokens
        )
    );
    let tools = w.json(&["tools", "claude-run"]);
    assert!(
        tools.as_array().unwrap().iter().any(|t| t["name"] == "Write" && t["success"] == true),
        "{tools}"
    );
    let thread = report["outcome"]["thread_id"].as_str().unwrap().to_string();

    // The second iteration resumes the thread; its tokens are its own, not the thread's running total.
    let again = w.json(&["iterate", "claude-run", "--prompt", "Create second.txt", "--timeout", "120s"]);
    assert_eq!(again["iteration"]["outcome"], "success", "{again}");
    assert_eq!(again["outcome"]["thread_id"], thread.as_str());
    let commit = again["commit"].as_str().expect("a second commit");
    assert_eq!(git(&wt, &["show", &format!("{commit}:second.txt")]), "resumed\n");
    let it2 = again["iteration"]["id"].as_str().unwrap();
    assert_eq!(iteration_usage(&w, s["id"].as_str().unwrap(), it2), (101, 202, 303, 404));
}

#[requires(codex)]
#[test]
fn real_codex_writes_a_file_that_the_session_commits_with_the_servers_token_counts() {
    let codex = require(Tool::Codex);
    let w = World::new();
    let agent_home = w.dir.path().join("codex-home");
    let codex_home = agent_home.join(".codex");
    let script = Script::new(vec![
        Turn::custom_tool_call(
            "apply_patch",
            "*** Begin Patch\n*** Add File: hello.txt\n+hello from codex\n*** End Patch\n",
        )
        .with_usage(Usage {
            input_tokens: 100,
            output_tokens: 20,
            cache_read_input_tokens: 30,
            cache_creation_input_tokens: 0,
            reasoning_tokens: 5,
        }),
        Turn::text("Added hello.txt.").with_usage(Usage {
            input_tokens: 50,
            output_tokens: 6,
            cache_read_input_tokens: 7,
            cache_creation_input_tokens: 0,
            reasoning_tokens: 1,
        }),
        // The resumed run of the second iteration.
        Turn::custom_tool_call(
            "apply_patch",
            "*** Begin Patch\n*** Add File: second.txt\n+resumed\n*** End Patch\n",
        )
        .with_usage(Usage {
            input_tokens: 1000,
            output_tokens: 40,
            cache_read_input_tokens: 500,
            cache_creation_input_tokens: 0,
            reasoning_tokens: 0,
        }),
        Turn::text("Added second.txt.").with_usage(Usage {
            input_tokens: 10,
            output_tokens: 4,
            cache_read_input_tokens: 5,
            cache_creation_input_tokens: 0,
            reasoning_tokens: 0,
        }),
    ]);
    // The first iteration's share of the script.
    let total = Usage {
        input_tokens: 150,
        output_tokens: 26,
        cache_read_input_tokens: 37,
        cache_creation_input_tokens: 0,
        reasoning_tokens: 6,
    };
    let server = ModelServer::start(script).unwrap();
    let model = ampsm_testutils::real_cli::CODEX_TEST_MODEL;
    ampsm_testutils::real_cli::write_codex_home(&codex_home, &server.openai_base_url(), model).unwrap();
    let env = ampsm_testutils::real_cli::codex_offline_env(&codex_home, &agent_home);
    w.write_config(&format!(
        "session:\n  permissions: full\nagents:\n  codex:\n    path: {}\n    env:\n{}",
        codex.display(),
        yaml_env(&env)
    ));
    let s = w.json(&[
        "new",
        "--repo",
        w.repo_arg(),
        "--name",
        "codex-run",
        "--agent",
        "codex",
        "--model",
        model,
        "--prompt",
        "Add hello.txt",
    ]);
    let wt = PathBuf::from(s["worktree_path"].as_str().unwrap());
    let report = w.json(&["iterate", "codex-run", "--timeout", "120s"]);
    assert_eq!(report["iteration"]["outcome"], "success", "{report}");
    let commit = report["commit"].as_str().expect("a commit");
    assert_eq!(git(&wt, &["show", &format!("{commit}:hello.txt")]), "hello from codex\n");
    let it = report["iteration"]["id"].as_str().unwrap();
    // Codex reports cached tokens inside its input count; the store keeps uncached input and cache reads.
    assert_eq!(
        iteration_usage(&w, s["id"].as_str().unwrap(), it),
        (total.input_tokens, total.output_tokens, total.cache_read_input_tokens, 0)
    );
    let thread = report["outcome"]["thread_id"].as_str().unwrap().to_string();

    // The second iteration resumes the thread; Codex reports the thread's running total, counted once here.
    let again = w.json(&["iterate", "codex-run", "--prompt", "Add second.txt", "--timeout", "120s"]);
    assert_eq!(again["iteration"]["outcome"], "success", "{again}");
    assert_eq!(again["outcome"]["thread_id"], thread.as_str());
    let commit = again["commit"].as_str().expect("a second commit");
    assert_eq!(git(&wt, &["show", &format!("{commit}:second.txt")]), "resumed\n");
    let it2 = again["iteration"]["id"].as_str().unwrap();
    assert_eq!(iteration_usage(&w, s["id"].as_str().unwrap(), it2), (1010, 44, 505, 0));
}

#[test]
fn logs_follow_streams_a_run_from_another_process_and_ends_with_it() {
    let w = World::new();
    for (rel, content) in ampsm_agent::offline::demo_repo_files() {
        let path = w.repo.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    git(&w.repo, &["add", "-A"]);
    git(&w.repo, &["commit", "-q", "-m", "demo files"]);
    w.ok(&[
        "new",
        "--repo",
        w.repo_arg(),
        "--name",
        "follow",
        "--agent",
        "offline",
        "--prompt",
        ampsm_agent::offline::DEMO_PROMPT,
    ]);
    // The follower starts first, on an idle session: it waits for the run, streams it, and ends with it.
    let follower =
        w.cmd().args(["logs", "follow", "--follow"]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let report = w.json(&["iterate", "follow"]);
    assert_eq!(report["iteration"]["outcome"], "success", "{report}");
    let out = follower.wait_with_output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(30));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("init thread=T-"), "{text}");
    assert!(text.contains("tool_use edit_file"), "{text}");
    assert!(text.lines().last().unwrap_or("").contains("result success"), "{text}");
    // Every stored line was delivered once, in order.
    let stored = w.ok(&["logs", "follow", "--json"]).lines().count();
    let events: usize = w
        .ok(&["logs", "follow", "--json"])
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["events"].as_array().unwrap().len())
        .sum();
    assert!(stored > 5);
    assert_eq!(text.lines().count(), events, "{text}");
}

/// Processes whose command line mentions `needle`.
fn processes_with(needle: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(needle))
        .collect()
}

#[requires(amp)]
#[test]
fn real_amp_without_a_key_fails_within_seconds_and_leaves_no_process() {
    let amp = require(Tool::Amp);
    let w = World::new();
    w.write_config(&format!("amp:\n  path: {}\n", amp.display()));
    // A home of its own: no stored Amp login, and any service address points at a closed loopback port.
    w.set_env("AMP_URL", "http://127.0.0.1:9/");
    w.ok(&["new", "--repo", w.repo_arg(), "--name", "real-amp", "--agent", "amp", "--prompt", "hello"]);
    let started = Instant::now();
    let (code, err) = w.fails(&["iterate", "real-amp"]);
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert_ne!(code, 0);
    let line = one_line(&err);
    assert!(line.contains("amp is not logged in") && line.contains("amp login"), "{err}");
    let worktree = w.json(&["show", "real-amp"])["session"]["worktree_path"].as_str().unwrap().to_string();
    assert!(processes_with(&worktree).is_empty(), "no process may be left in the worktree");
    let home = w.dir.path().to_str().unwrap().to_string();
    assert!(processes_with(".ci/npm").iter().all(|p| !p.contains(&home)), "no amp process is left behind");
    // verify-amp finds the real CLI and its version, and sends nothing without a key.
    let out = w.run(&["verify-amp", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["version"].as_str().unwrap().starts_with("0.0."), "{v}");
    assert_eq!(v["auth_check"], "skipped");
}

fn chat(w: &World, session: &str, input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = w.spawn(&["chat", session]);
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn chat_streams_an_interactive_agent_turn_by_turn_and_records_one_chat_iteration() {
    let w = World::new();
    w.ok(&["new", "--repo", w.repo_arg(), "--name", "talk", "--agent", "offline", "--prompt", "unused"]);
    let out = chat(&w, "talk", "first question\nsecond question\n");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let first = text.find("discuss \"first question\"").expect("first answer");
    let second = text.find("discuss \"second question\"").expect("second answer");
    assert!(first < second, "{text}");
    let shown = w.json(&["show", "talk"]);
    assert_eq!(shown["session"]["status"], "idle");
    let logs = w.ok(&["logs", "talk", "--json"]);
    let users: Vec<String> = logs
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .flat_map(|r| r["events"].as_array().unwrap().clone())
        .filter(|e| e["kind"] == "user_text")
        .map(|e| e["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(users, ["first question", "second question"]);
    let usage = w.json(&["usage", "talk"]);
    let rows = usage["usage"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "one chat iteration: {usage}");
    assert_eq!(rows[0]["usage"]["output"], 76, "both turns counted once: {usage}");
}

#[test]
fn chat_with_an_agent_without_an_interactive_protocol_runs_one_turn_per_message() {
    let (w, log) = amp_world("codex");
    let bin = w.dir.path().join("bin");
    let codex = install_fake_agent_as(&bin, "codex");
    w.write_config(&format!("agents:\n  codex:\n    path: {}\n", codex.display()));
    w.set_env("OPENAI_API_KEY", "test-key");
    w.ok(&["new", "--repo", w.repo_arg(), "--name", "turns", "--agent", "codex", "--prompt", "unused"]);
    let out = chat(&w, "turns", "one\ntwo\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let calls = fake_log(&log);
    assert_eq!(calls.len(), 2, "one agent run per message");
    assert_eq!(calls[0]["prompt"], "one");
    assert_eq!(calls[1]["prompt"], "two");
    assert_eq!(calls[1]["continuation"], true, "the second message continues the thread");
}

#[test]
fn ctrl_c_ends_a_chat_of_turns_and_stops_the_turn_in_progress() {
    let w = command_world("echo partial > partial.txt\nsleep 30\necho late > late.txt");
    w.ok(&["new", "--repo", w.repo_arg(), "--name", "talk", "--agent", "command", "--prompt", "unused"]);
    let mut child = w.spawn(&["chat", "talk"]);
    // One message, and the input stays open as in a terminal.
    let mut stdin = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, b"start working\n").unwrap();
    let agent = wait_for_agent(&w, "talk");
    let started = Instant::now();
    ctrl_c(child.id());
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert!(out.status.success(), "Ctrl-C is how a chat ends: {}", String::from_utf8_lossy(&out.stderr));
    assert!(processes_in_groups(&[agent]).is_empty(), "the agent of the turn in progress was stopped");
    let m = w.json(&["metrics", "talk"]);
    assert_eq!(m["iterations_count"], 1, "{m}");
    assert_eq!(m["iterations"][0]["outcome"], "cancelled", "{m}");
    assert_eq!(m["session"]["status"], "idle", "{m}");
}

#[test]
fn secrets_of_the_environment_never_reach_the_database_logs_or_exports() {
    // An agent that dumps its environment, and a test script that prints a token.
    let w = command_world("env; echo \"key is $AMP_API_KEY\" >&2; echo done > done.txt");
    let key = "sgamp_user_live_0123456789abcdef";
    let token = "ghp_abcdefghijklmnopqrstuvwxyz012345";
    w.set_env("AMP_API_KEY", key);
    w.set_env("MY_SERVICE_TOKEN", token);
    w.ok(&[
        "new",
        "--repo",
        w.repo_arg(),
        "--name",
        "leaky",
        "--agent",
        "command",
        "--prompt",
        "go",
        "--script",
        "echo \"token=$MY_SERVICE_TOKEN\"",
    ]);
    let out = w.run(&["iterate", "leaky"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let logs = w.ok(&["logs", "leaky", "--raw"]);
    assert!(logs.contains("AMP_API_KEY=[redacted:AMP_API_KEY]"), "{logs}");
    assert!(logs.contains("key is [redacted:AMP_API_KEY]"), "{logs}");
    assert!(logs.contains("MY_SERVICE_TOKEN=[redacted:MY_SERVICE_TOKEN]"), "{logs}");
    let m = w.json(&["metrics", "leaky"]);
    assert_eq!(m["iterations"][0]["test"], "passed", "{m}");
    let export = w.ok(&["export", "--session", "leaky", "--format", "jsonl"]);
    assert!(export.contains("token=[redacted:MY_SERVICE_TOKEN]"), "the test output is kept, redacted");
    // Nowhere on disk under AMPSM_HOME: the database, its WAL, the logs.
    crate::support::assert_no_file_holds(&w.home(), &[key, token]);
    for secret in [key, token] {
        assert!(!export.contains(secret) && !logs.contains(secret));
    }
}

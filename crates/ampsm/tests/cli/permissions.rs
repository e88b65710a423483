//! Permission policies as a new user meets them: the real Claude Code and Codex CLIs (against the scripted
//! model server) in the DEFAULT configuration (no policy set anywhere) edit, run a command and get their
//! work committed; under `read-only` nothing changes and `iterate` names the denied tools; under `ask` tool
//! calls wait for `approve`/`deny` from other processes, or are denied when nobody answers; an agent that
//! cannot honour a policy says so at `new`; `stop` ends a running agent from another terminal; the old
//! `amp.dangerously_allow_all` is read as `full` with a warning.

use crate::support::{World, command_world, one_line, processes_in_groups};
use ampsm_testutils::model_server::{ModelServer, Script, Turn};
use ampsm_testutils::repo::git;
use ampsm_testutils::{Tool, require, requires};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const CALC: &str = "def add(a, b):\n    return a - b\n";
const FIXED: &str = "def add(a, b):\n    return a + b\n";

/// A world with `calc.py` committed, and no config file at all.
fn calc_world() -> World {
    let w = World::new();
    std::fs::write(w.repo.join("calc.py"), CALC).unwrap();
    git(&w.repo, &["add", "calc.py"]);
    git(&w.repo, &["commit", "-qm", "calc"]);
    w
}

/// Puts the real CLI's folder first on PATH and its offline environment (the server, a key, a throwaway
/// home) in the environment of every command, the way a user who installed it and exported a key has it.
/// `IS_SANDBOX` is left out: only the `full` policy may need it, and then the adapter sets it.
fn use_agent(w: &World, bin: &Path, env: Vec<(String, String)>) {
    let dir = bin.parent().unwrap();
    w.set_env("PATH", &format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default()));
    for (k, v) in env.into_iter().filter(|(k, _)| k != "IS_SANDBOX") {
        w.set_env(&k, &v);
    }
}

/// A world whose `claude` is the real Claude Code CLI talking to a scripted server (the tests that use it
/// carry `#[requires(claude)]`).
fn claude_world() -> (World, ModelServer) {
    let bin = require(Tool::Claude);
    let w = calc_world();
    let agent_home = w.dir.path().join("claude-home");
    std::fs::create_dir_all(&agent_home).unwrap();
    let server = ModelServer::start(Script::new(vec![])).unwrap();
    use_agent(&w, &bin, ampsm_testutils::real_cli::claude_offline_env(&server.url(), &agent_home));
    (w, server)
}

/// A world whose `codex` is the real Codex CLI with a config.toml whose own model provider (`env_key`
/// OPENAI_API_KEY) is the scripted server.
fn codex_world(script: Script) -> (World, ModelServer) {
    let bin = require(Tool::Codex);
    let w = calc_world();
    let agent_home = w.dir.path().join("codex-home");
    let codex_home = agent_home.join(".codex");
    let server = ModelServer::start(script).unwrap();
    let model = ampsm_testutils::real_cli::CODEX_TEST_MODEL;
    ampsm_testutils::real_cli::write_codex_home(&codex_home, &server.openai_base_url(), model).unwrap();
    use_agent(&w, &bin, ampsm_testutils::real_cli::codex_offline_env(&codex_home, &agent_home));
    (w, server)
}

/// `new --repo <repo> --name NAME --agent AGENT` plus `extra`; the session as JSON.
fn new(w: &World, name: &str, agent: &str, extra: &[&str]) -> Value {
    let mut args = vec!["new", "--repo", w.repo_arg(), "--name", name, "--agent", agent];
    args.extend_from_slice(extra);
    w.json(&args)
}

fn worktree(w: &World, session: &str) -> PathBuf {
    PathBuf::from(w.json(&["show", session])["session"]["worktree_path"].as_str().unwrap())
}

/// Edit calc.py, then run a shell command that writes ran.txt, then a final answer.
fn claude_script(wt: &Path) -> Script {
    Script::new(vec![
        Turn::tool_call(
            "Edit",
            json!({"file_path": wt.join("calc.py"), "old_string": "return a - b", "new_string": "return a + b"}),
        )
        .with_text("Fixing add()."),
        Turn::tool_call("Bash", json!({"command": "printf 'ran\\n' > ran.txt && cat calc.py", "description": "test"})),
        Turn::text("Fixed add()."),
    ])
}

fn denied_tools(w: &World, session: &str) -> Vec<String> {
    let tools = w.json(&["tools", session]);
    tools
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["denied"] == true)
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

#[requires(claude)]
#[test]
fn real_claude_with_no_permission_setting_edits_runs_a_command_and_the_commit_holds_the_edit() {
    let (w, server) = claude_world();
    let s = new(&w, "fix", "claude", &["--prompt", "Fix add()"]);
    assert_eq!(s["permissions"], "auto", "{s}");
    let wt = worktree(&w, "fix");
    server.set_script(claude_script(&wt));
    let out = w.run(&["iterate", "fix", "--timeout", "120s", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success(), "{report}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(report["iteration"]["permissions"], "auto");
    assert_eq!(report["outcome"]["denials"], json!([]), "{report}");
    let commit = report["commit"].as_str().expect("a commit");
    assert_eq!(git(&wt, &["show", &format!("{commit}:calc.py")]), FIXED);
    assert_eq!(git(&wt, &["show", &format!("{commit}:ran.txt")]), "ran\n");
    assert_eq!(report["session"]["status"], "idle");
    assert!(denied_tools(&w, "fix").is_empty());
}

#[requires(claude)]
#[test]
fn real_claude_under_read_only_changes_nothing_and_iterate_names_the_denied_tools() {
    let (w, server) = claude_world();
    new(&w, "ro", "claude", &["--prompt", "Fix add()", "--permissions", "read-only"]);
    let wt = worktree(&w, "ro");
    server.set_script(claude_script(&wt));
    let head = git(&wt, &["rev-parse", "HEAD"]);
    let out = w.run(&["iterate", "ro", "--timeout", "120s"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("denied       2: Edit (calc.py), Bash (printf"), "{stdout}");
    assert!(stdout.contains("Bash (printf"), "{stdout}");
    let err = one_line(&stderr);
    assert!(err.contains("2 tool calls were denied under the read-only permission policy"), "{err}");
    // Nothing changed: no commit, a clean worktree, calc.py as it was.
    assert_eq!(git(&wt, &["rev-parse", "HEAD"]), head);
    assert_eq!(git(&wt, &["status", "--porcelain"]), "");
    assert_eq!(std::fs::read_to_string(wt.join("calc.py")).unwrap(), CALC);
    assert_eq!(denied_tools(&w, "ro"), ["Edit", "Bash"]);
    let m = w.json(&["metrics", "ro"]);
    assert_eq!(m["tool_calls_denied"], 2, "{m}");
    assert_eq!(m["iterations"][0]["denials"], 2, "{m}");
    assert_eq!(m["iterations"][0]["permissions"], "read-only", "{m}");
    let m = w.json(&["show", "ro"]);
    assert_eq!(m["session"]["status"], "awaiting-input", "{m}");
    assert!(m["session"]["status_note"].as_str().unwrap().contains("read-only"), "{m}");
}

/// Waits for approval number `seq` of `session` to be pending; returns it.
fn wait_pending(w: &World, session: &str, seq: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = w.json(&["approvals", session]);
        if let Some(a) = list.as_array().unwrap().iter().find(|a| a["seq"] == seq) {
            return a.clone();
        }
        assert!(Instant::now() < deadline, "approval #{seq} never came: {list}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[requires(claude)]
#[test]
fn real_claude_under_ask_waits_for_approve_and_deny_from_other_terminals() {
    let (w, server) = claude_world();
    new(&w, "asky", "claude", &["--prompt", "Fix add()", "--permissions", "ask"]);
    let wt = worktree(&w, "asky");
    server.set_script(claude_script(&wt));
    // A short run timeout: the time spent waiting for the user does not count against it.
    let run = w.spawn(&["iterate", "asky", "--timeout", "6s"]);
    let started = Instant::now();

    let first = wait_pending(&w, "asky", 1);
    assert_eq!(first["tool"], "Edit", "{first}");
    assert_eq!(first["status"], "pending");
    // While it waits the session says so, and nothing was written yet.
    let s = w.json(&["show", "asky"]);
    assert_eq!(s["session"]["status"], "awaiting-input", "{s}");
    assert!(s["session"]["status_note"].as_str().unwrap().contains("waiting for approval #1: Edit"), "{s}");
    assert_eq!(std::fs::read_to_string(wt.join("calc.py")).unwrap(), CALC);
    // Another iterate is refused while this one waits.
    let (code, err) = w.fails(&["iterate", "asky"]);
    assert_eq!(code, 3, "{err}");
    std::thread::sleep(Duration::from_secs(7).saturating_sub(started.elapsed()));
    let ok = w.json(&["approve", "asky"]);
    assert_eq!(ok["status"], "approved", "{ok}");

    let second = wait_pending(&w, "asky", 2);
    assert_eq!(second["tool"], "Bash", "{second}");
    // Answering a number that is already answered says so.
    let (code, err) = w.fails(&["approve", "asky", "1"]);
    assert_eq!(code, 2);
    assert!(one_line(&err).contains("already approved"), "{err}");
    w.ok(&["deny", "asky", "2", "--message", "no shell today"]);

    let out = run.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("denied       1: Bash"), "{stdout}");
    // The approved edit is committed; the denied command never ran.
    assert_eq!(git(&wt, &["show", "HEAD:calc.py"]), FIXED);
    assert!(!wt.join("ran.txt").exists());
    let all = w.json(&["approvals", "asky", "--all"]);
    let statuses: Vec<&str> = all.as_array().unwrap().iter().map(|a| a["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["approved", "denied"], "{all}");
    assert_eq!(all[1]["message"], "no shell today");
    assert_eq!(denied_tools(&w, "asky"), ["Bash"]);
    // The model got the user's reason as the tool's answer.
    assert!(server.requests().iter().any(|r| r.body.contains("no shell today")));
}

#[requires(claude)]
#[test]
fn an_unanswered_request_is_denied_when_it_times_out_and_recorded_so() {
    let (w, server) = claude_world();
    let notes = w.dir.path().join("notes.log");
    w.write_config(&format!(
        "session:\n  ask_timeout: 2s\nnotifications:\n  desktop: false\n  command: 'echo \"$AMPSM_EVENT|$AMPSM_SESSION_NAME|$AMPSM_MESSAGE\" >> {}'\n",
        notes.display()
    ));
    new(&w, "late", "claude", &["--prompt", "Fix add()", "--permissions", "ask"]);
    let wt = worktree(&w, "late");
    server.set_script(Script::new(vec![
        Turn::tool_call("Write", json!({"file_path": wt.join("new.txt"), "content": "x\n"})),
        Turn::text("Could not write."),
    ]));
    let out = w.run(&["iterate", "late", "--timeout", "120s", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!out.status.success());
    assert!(!wt.join("new.txt").exists());
    let all = w.json(&["approvals", "late", "--all"]);
    assert_eq!(all[0]["status"], "timed_out", "{all}");
    assert!(all[0]["message"].as_str().unwrap().contains("nobody answered within 2s"), "{all}");
    assert_eq!(report["outcome"]["denials"][0]["tool"], "Write", "{report}");
    assert_eq!(w.json(&["approvals"]), json!([]));
    // A notification said which session waited, and for what.
    let said = std::fs::read_to_string(&notes).unwrap();
    assert!(said.contains("awaiting-input|late|asks to run Write"), "{said}");
}

/// Adds hello.txt with a patch, runs a shell command that writes shell.txt, answers.
fn codex_script() -> Script {
    Script::new(vec![
        Turn::custom_tool_call(
            "apply_patch",
            "*** Begin Patch\n*** Add File: hello.txt\n+hello from codex\n*** End Patch\n",
        ),
        Turn::tool_call("exec_command", json!({"cmd": "printf 'from the shell\\n' > shell.txt"})),
        Turn::text("Done."),
    ])
}

#[requires(codex)]
#[test]
fn real_codex_with_no_permission_setting_edits_and_runs_a_command_in_its_sandbox() {
    let (w, _server) = codex_world(codex_script());
    let model = ampsm_testutils::real_cli::CODEX_TEST_MODEL;
    new(&w, "cx", "codex", &["--model", model, "--prompt", "Add hello.txt"]);
    let wt = worktree(&w, "cx");
    let out = w.run(&["iterate", "cx", "--timeout", "120s", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success(), "{report}\n{}", String::from_utf8_lossy(&out.stderr));
    let commit = report["commit"].as_str().expect("a commit");
    assert_eq!(git(&wt, &["show", &format!("{commit}:hello.txt")]), "hello from codex\n");
    assert_eq!(git(&wt, &["show", &format!("{commit}:shell.txt")]), "from the shell\n");
    assert_eq!(report["iteration"]["permissions"], "auto");
}

#[requires(codex)]
#[test]
fn real_codex_under_read_only_changes_nothing_and_records_the_refused_patch() {
    let (w, _server) = codex_world(codex_script());
    let model = ampsm_testutils::real_cli::CODEX_TEST_MODEL;
    new(&w, "cxro", "codex", &["--model", model, "--prompt", "Add hello.txt", "--permissions", "read-only"]);
    let wt = worktree(&w, "cxro");
    let out = w.run(&["iterate", "cxro", "--timeout", "120s"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("denied       1: apply_patch"), "{stdout}");
    assert_eq!(git(&wt, &["status", "--porcelain"]), "");
    assert!(!wt.join("hello.txt").exists() && !wt.join("shell.txt").exists());
    assert_eq!(denied_tools(&w, "cxro"), ["apply_patch"]);
}

#[test]
fn an_agent_that_cannot_honour_a_policy_says_so_at_new_and_nothing_is_made() {
    let w = World::new();
    for (agent, policy) in
        [("codex", "ask"), ("amp", "read-only"), ("command", "read-only"), ("offline", "ask")]
    {
        let (code, err) = w.fails(&[
            "new",
            "--repo",
            w.repo_arg(),
            "--name",
            "x",
            "--agent",
            agent,
            "--permissions",
            policy,
        ]);
        assert_eq!(code, 2, "{err}");
        let line = one_line(&err);
        assert!(
            line.contains(&format!("agent {agent} cannot honour the `{policy}` permission policy")),
            "{line}"
        );
    }
    let (code, err) = w.fails(&["new", "--repo", w.repo_arg(), "--name", "x", "--permissions", "yolo"]);
    assert_eq!(code, 2);
    assert!(one_line(&err).contains("--permissions: unknown permission policy \"yolo\""), "{err}");
    assert_eq!(w.json(&["list"]), json!([]));
    assert!(git(&w.repo, &["branch", "--list", "amp/*"]).trim().is_empty());
    // doctor says what each agent does under each policy.
    let doctor = w.run(&["doctor", "--json"]);
    let report: Value = serde_json::from_slice(&doctor.stdout).unwrap();
    let codex = report["permissions"].as_array().unwrap().iter().find(|a| a["agent"] == "codex").unwrap();
    assert_eq!(codex["default"], "auto");
    let ask = codex["policies"].as_array().unwrap().iter().find(|p| p["policy"] == "ask").unwrap();
    assert_eq!(ask["honoured"], false, "{ask}");
}

#[test]
fn the_offline_demo_under_read_only_is_refused_its_edits() {
    let w = World::new();
    for (rel, content) in ampsm_agent::offline::demo_repo_files() {
        let path = w.repo.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    git(&w.repo, &["add", "."]);
    git(&w.repo, &["commit", "-qm", "demo"]);
    w.set_env("AMPSM_OFFLINE_FAST", "1");
    let prompt = ampsm_agent::offline::DEMO_PROMPT;
    new(&w, "demo", "offline", &["--prompt", prompt, "--permissions", "read-only"]);
    let wt = worktree(&w, "demo");
    let out = w.run(&["iterate", "demo", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert_eq!(report["commit"], Value::Null, "{report}");
    assert_eq!(git(&wt, &["status", "--porcelain"]), "");
    let denied: Vec<&str> = report["outcome"]["denials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["tool"].as_str().unwrap())
        .collect();
    assert!(denied.contains(&"edit_file") && denied.contains(&"create_file"), "{report}");
    assert_eq!(report["session"]["status"], "awaiting-input");
}

#[test]
fn the_old_allow_all_key_is_read_as_full_with_a_warning_naming_the_new_key() {
    let w = World::new();
    w.write_config("amp:\n  dangerously_allow_all: true\n");
    let out = w.run(&["new", "--repo", w.repo_arg(), "--name", "old", "--agent", "command", "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning:") && stderr.contains("`amp.dangerously_allow_all` is the old spelling"),
        "{stderr}"
    );
    assert!(stderr.contains("session.permissions"), "{stderr}");
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["permissions"], "full", "{s}");
    // The new key wins over the old one.
    w.write_config("amp:\n  dangerously_allow_all: true\nsession:\n  permissions: auto\n");
    assert_eq!(new(&w, "new", "command", &[])["permissions"], "auto");
}

#[test]
fn stop_from_another_terminal_ends_a_running_agent_within_seconds_with_its_work_committed() {
    // It writes partial.txt, then works for 30 s (with a child that ignores SIGINT) before late.txt.
    let w = command_world(
        "echo partial > partial.txt\n(trap '' INT; sleep 30) &\nsleep 30\necho late > late.txt",
    );
    new(&w, "busy", "command", &["--prompt", "go"]);
    let (code, err) = w.fails(&["stop", "busy"]);
    assert_eq!(code, 2);
    assert!(one_line(&err).contains("is not running (it is idle)"), "{err}");

    let run = w.spawn(&["iterate", "busy"]);
    let wt = worktree(&w, "busy");
    let deadline = Instant::now() + Duration::from_secs(20);
    let agent = loop {
        let s = w.json(&["show", "busy"]);
        if let (Some(pid), true) = (s["session"]["agent_pid"].as_i64(), wt.join("partial.txt").exists()) {
            break pid;
        }
        assert!(Instant::now() < deadline, "the agent did not start: {s}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let started = Instant::now();
    let stopped = w.json(&["stop", "busy"]);
    assert!(started.elapsed() < Duration::from_secs(5), "stop took {:?}", started.elapsed());
    assert_eq!(stopped["session"]["status"], "idle", "{stopped}");
    let out = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr
            .contains("stopped by `amp-sessions stop`: the agent was stopped; its work so far is committed"),
        "{stderr}"
    );
    assert!(processes_in_groups(&[agent]).is_empty(), "left: {:?}", processes_in_groups(&[agent]));
    assert_eq!(git(&wt, &["show", "HEAD:partial.txt"]), "partial\n");
    assert!(!wt.join("late.txt").exists());
    let m = w.json(&["metrics", "busy"]);
    assert_eq!(m["iterations"][0]["outcome"], "cancelled", "{m}");
    assert!(m["iterations"][0]["error"].as_str().unwrap().contains("amp-sessions stop"), "{m}");
    // The user stopped it: nobody is notified.
    assert!(!w.dir.path().join("notes.log").exists());
}

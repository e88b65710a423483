//! Tests of the test utilities: the fake agent against every shipped scenario,
//! fixture repos, the scripted model server over raw HTTP, and the real Claude
//! Code and Codex CLIs driven offline against that server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ampsm_testutils::model_server::ApiKind;
use ampsm_testutils::{
    ModelServer, Script, Tool, Turn, Usage, claude_offline_env, codex_offline_env, fake_agent_path, git,
    init_repo, install_fake_agent_as, require, requires, scenario_path, temp_home, write_codex_home,
};
use serde_json::{Value, json};

#[path = "testutils/kube_double.rs"]
mod kube_double;
#[path = "testutils/slurm.rs"]
mod slurm;

const FAKE: &str = env!("CARGO_BIN_EXE_fake-agent");

// ---------------------------------------------------------------- helpers

fn scenario(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(scenario_path(name)).unwrap()).unwrap()
}

/// Runs the fake agent to completion with a scenario, args, optional stdin.
fn run_fake(
    cwd: &Path,
    scenario_name: &str,
    args: &[&str],
    stdin: Option<&str>,
    env: &[(&str, &str)],
) -> Output {
    let mut cmd = Command::new(FAKE);
    cmd.current_dir(cwd)
        .args(args)
        .env("FAKE_AGENT_SCENARIO", scenario_path(scenario_name))
        .env_remove("AMP_API_KEY")
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        cmd.env(key, value);
    }
    let mut child = cmd.spawn().unwrap();
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(text.as_bytes()).unwrap();
    }
    wait_output(child, Duration::from_secs(30))
}

/// Waits for a child with a deadline, killing it (and failing) on timeout.
fn wait_output(mut child: Child, limit: Duration) -> Output {
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        stdout.read_to_end(&mut buf).unwrap();
        buf
    });
    let err_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        stderr.read_to_end(&mut buf).unwrap();
        buf
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            let _ = child.wait();
            panic!("process did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output { status, stdout: out_thread.join().unwrap(), stderr: err_thread.join().unwrap() }
}

fn json_lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .collect()
}

fn emit_count(scen: &Value, key: &str) -> usize {
    scen[key].as_array().unwrap().iter().filter(|step| step.get("emit").is_some()).count()
}

fn assert_expected_files(repo: &Path, expected: &Value) {
    for (path, content) in expected.as_object().unwrap() {
        let actual = std::fs::read_to_string(repo.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(actual, content.as_str().unwrap(), "content of {path}");
    }
}

fn is_uuid(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn sum_amp_usage(lines: &[Value]) -> Value {
    let mut sum = json!({"input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 0});
    for line in lines.iter().filter(|l| l["type"] == "assistant") {
        for key in ["input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens"]
        {
            sum[key] = json!(sum[key].as_u64().unwrap() + line["message"]["usage"][key].as_u64().unwrap());
        }
    }
    sum
}

fn read_log(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn fixture() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let repo = init_repo(&tmp.path().join("repo"));
    (tmp, repo)
}

// ---------------------------------------------------------------- repo fixtures

#[test]
fn init_repo_makes_one_commit_on_main_with_local_identity() {
    let (_tmp, repo) = fixture();
    assert_eq!(git(&repo, &["rev-parse", "--abbrev-ref", "HEAD"]).trim(), "main");
    assert_eq!(git(&repo, &["rev-list", "--count", "HEAD"]).trim(), "1");
    assert_eq!(git(&repo, &["ls-files"]).trim(), "README.md");
    assert_eq!(git(&repo, &["config", "--local", "user.email"]).trim(), "fixture@example.invalid");
    assert!(git(&repo, &["status", "--porcelain"]).is_empty());
    let home = temp_home();
    assert!(home.path().is_dir());
}

#[test]
#[should_panic(expected = "failed")]
fn git_helper_panics_with_stderr() {
    let (_tmp, repo) = fixture();
    git(&repo, &["checkout", "no-such-branch"]);
}

// ---------------------------------------------------------------- fake agent

#[test]
fn helpers_locate_and_install_the_fake_agent() {
    let path = fake_agent_path();
    assert!(path.is_file(), "{}", path.display());
    let bin_dir = tempfile::tempdir().unwrap();
    let amp = install_fake_agent_as(bin_dir.path(), "amp");
    // Installing twice replaces the first one.
    let amp_again = install_fake_agent_as(bin_dir.path(), "amp");
    assert_eq!(amp, amp_again);
    let path_var = format!("{}:{}", bin_dir.path().display(), std::env::var("PATH").unwrap());
    let out = Command::new("amp").arg("--version").env("PATH", path_var).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("fake-agent"));
}

/// Every vendor scenario, run with the argv the orchestrator would use: the
/// lines come out in order and verbatim (placeholders filled), files are
/// really written, and usage adds up to what the scenario says.
#[test]
fn vendor_scenarios_emit_their_lines_and_edit_files() {
    let cases: &[(&str, &[&str], Option<&str>)] = &[
        (
            "amp_oneshot",
            &[
                "-x",
                "--stream-json",
                "--no-notifications",
                "--no-color",
                "--no-ide",
                "--mode",
                "smart",
                "--dangerously-allow-all",
            ],
            Some("Fix the separability bug\n"),
        ),
        (
            "claude",
            &[
                "-p",
                "--output-format",
                "stream-json",
                "--verbose",
                "--model",
                "sonnet",
                "--dangerously-skip-permissions",
                "Fix the separability bug",
            ],
            None,
        ),
        (
            "codex",
            &[
                "exec",
                "--json",
                "--skip-git-repo-check",
                "-m",
                "gpt-5",
                "--dangerously-bypass-approvals-and-sandbox",
                "-",
            ],
            Some("Fix the separability bug"),
        ),
        (
            "gemini",
            &["-p", "Fix the separability bug", "-o", "stream-json", "-y", "-m", "gemini-2.5-pro"],
            None,
        ),
        (
            "opencode",
            &[
                "run",
                "--format",
                "json",
                "-m",
                "anthropic/claude-sonnet-4-5",
                "Fix",
                "the",
                "separability",
                "bug",
            ],
            None,
        ),
    ];
    for (name, args, stdin) in cases {
        let (_tmp, repo) = fixture();
        let log = repo.parent().unwrap().join("fake.log");
        let out = run_fake(&repo, name, args, *stdin, &[("FAKE_AGENT_LOG", log.to_str().unwrap())]);
        assert!(out.status.success(), "{name}: {:?} {}", out.status, String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout.clone()).unwrap();
        assert!(!text.contains("{{"), "{name}: placeholder left in output");
        let lines = json_lines(&out.stdout);
        let scen = scenario(name);
        assert_eq!(lines.len(), emit_count(&scen, "steps"), "{name}: line count");
        assert_eq!(text.lines().count(), lines.len(), "{name}: only JSON lines expected");
        // Key order is kept as written in the scenario.
        assert!(text.starts_with("{\"type\":"), "{name}: {}", &text[..40]);
        assert_expected_files(&repo, &scen["expected_files"]);

        let entry = &read_log(&log)[0];
        let logged_args: Vec<&str> =
            entry["argv"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
        assert_eq!(&logged_args, args, "{name}: logged argv");
        assert_eq!(entry["prompt"], "Fix the separability bug", "{name}: prompt");
        assert_eq!(entry["cwd"], repo.to_str().unwrap());
        assert_eq!(entry["env_has_amp_key"], false);
        assert_eq!(entry["stdin"], stdin.unwrap_or(""));
        let thread_id = entry["thread_id"].as_str().unwrap();

        match *name {
            "amp_oneshot" => {
                assert!(thread_id.starts_with("T-") && is_uuid(&thread_id[2..]), "{thread_id}");
                assert!(lines.iter().all(|l| l["session_id"] == thread_id));
                assert_eq!(lines[0]["cwd"], repo.to_str().unwrap());
                assert_eq!(lines[1]["message"]["content"][0]["text"], "Fix the separability bug");
                assert_eq!(sum_amp_usage(&lines), scen["expected_usage"]);
                assert_eq!(lines.last().unwrap()["type"], "result");
            }
            "claude" => {
                assert!(is_uuid(thread_id));
                let result = lines.last().unwrap();
                assert_eq!(result["type"], "result");
                for (key, value) in scen["expected_usage"].as_object().unwrap() {
                    assert_eq!(&result["usage"][key], value, "claude usage {key}");
                }
                assert_eq!(result["total_cost_usd"], scen["expected_cost_usd"]);
            }
            "codex" => {
                assert!(is_uuid(thread_id));
                assert_eq!(lines[0], json!({"type": "thread.started", "thread_id": thread_id}));
                assert_eq!(lines.last().unwrap()["usage"], scen["expected_usage"]);
            }
            "gemini" => {
                assert!(is_uuid(thread_id));
                assert_eq!(lines[0]["session_id"], thread_id);
                let stats = &lines.last().unwrap()["stats"];
                assert_eq!(stats["input_tokens"], scen["expected_usage"]["input_tokens"]);
            }
            "opencode" => {
                assert!(thread_id.starts_with("ses_") && thread_id.len() == 30, "{thread_id}");
                assert!(lines.iter().all(|l| l["sessionID"] == thread_id));
                let finishes: Vec<&Value> = lines.iter().filter(|l| l["type"] == "step_finish").collect();
                let input: u64 =
                    finishes.iter().map(|l| l["part"]["tokens"]["input"].as_u64().unwrap()).sum();
                assert_eq!(input, scen["expected_usage"]["input"].as_u64().unwrap());
            }
            _ => unreachable!(),
        }
    }
}

/// Continuations keep the id given on the command line and run
/// `continue_steps`, for every vendor's continuation syntax.
#[test]
fn continuations_reuse_the_given_thread_id() {
    // amp: first run, then `threads continue <id>` with the prompt on stdin.
    let (_tmp, repo) = fixture();
    let first =
        run_fake(&repo, "amp_continue", &["-x", "--stream-json"], Some("Write the first note.\n"), &[]);
    assert!(first.status.success());
    let id = json_lines(&first.stdout)[0]["session_id"].as_str().unwrap().to_owned();
    assert_eq!(std::fs::read_to_string(repo.join("NOTES.md")).unwrap(), "first line\n");
    let second = run_fake(
        &repo,
        "amp_continue",
        &["threads", "continue", &id, "-x", "--stream-json", "--dangerously-allow-all"],
        Some("Add a second line.\n"),
        &[],
    );
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    let lines = json_lines(&second.stdout);
    assert!(lines.iter().all(|l| l["session_id"] == id.as_str()));
    let scen = scenario("amp_continue");
    assert_expected_files(&repo, &scen["expected_files_continue"]);
    // Usage after the last user text message is the continuation's own.
    let last_user_text = lines
        .iter()
        .rposition(|l| l["type"] == "user" && l["message"]["content"][0]["type"] == "text")
        .unwrap();
    assert_eq!(lines[last_user_text]["message"]["content"][0]["text"], "Add a second line.");
    assert_eq!(sum_amp_usage(&lines[last_user_text..]), scen["expected_usage_continue"]);

    // The other vendors.
    let id_uuid = "3f1c2b7a-9d4e-4c1b-8a2f-0e5d6c7b8a90";
    let cases: &[(&str, Vec<&str>, &str, &str)] = &[
        (
            "claude",
            vec!["-p", "--resume", id_uuid, "--output-format", "stream-json", "--verbose", "go on"],
            "session_id",
            id_uuid,
        ),
        (
            "codex",
            vec!["exec", "--json", "--skip-git-repo-check", "-m", "gpt-5", "resume", id_uuid, "go on"],
            "thread_id",
            id_uuid,
        ),
        ("gemini", vec!["-r", id_uuid, "-p", "go on", "-o", "stream-json"], "session_id", id_uuid),
        (
            "opencode",
            vec!["run", "-s", "ses_7f3a9c1e2ffeAbCdEf", "--format", "json", "go on"],
            "sessionID",
            "ses_7f3a9c1e2ffeAbCdEf",
        ),
    ];
    for (name, args, field, want_id) in cases {
        let (_tmp, repo) = fixture();
        let first = run_fake(&repo, name, &["-p", "first"], None, &[]);
        let _ = first; // prepares files for the codex continuation
        let out = run_fake(&repo, name, args, None, &[]);
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let lines = json_lines(&out.stdout);
        assert_eq!(lines.len(), emit_count(&scenario(name), "continue_steps"), "{name}");
        assert_eq!(lines[0][*field], *want_id, "{name}");
    }
}

#[test]
fn amp_without_key_prints_login_prompt_and_hangs() {
    let (_tmp, repo) = fixture();
    let mut child = Command::new(FAKE)
        .current_dir(&repo)
        .args(["-x", "--stream-json", "do it"])
        .env("FAKE_AGENT_SCENARIO", scenario_path("amp_auth_failure"))
        .env_remove("AMP_API_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    assert!(first.starts_with("No API key found. Starting login flow..."), "{first}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none(), "should still be blocked");
    child.kill().unwrap();
    child.wait().unwrap();

    // With a key the same scenario succeeds.
    let out = run_fake(
        &repo,
        "amp_auth_failure",
        &["-x", "--stream-json", "do it"],
        None,
        &[("AMP_API_KEY", "sgamp_test")],
    );
    assert!(out.status.success());
    assert_eq!(json_lines(&out.stdout).last().unwrap()["subtype"], "success");
}

#[test]
fn failure_scenarios_exit_non_zero_with_stderr() {
    let (_tmp, repo) = fixture();
    let cases = [
        ("amp_exit_error", vec!["-x", "--stream-json", "p"], "Couldn't connect to the Amp server"),
        ("amp_error_result", vec!["-x", "--stream-json", "p"], "529 overloaded"),
        ("claude_auth_failure", vec!["-p", "--output-format", "stream-json", "--verbose", "p"], ""),
        ("codex_turn_failed", vec!["exec", "--json", "p"], "stream disconnected"),
    ];
    for (name, args, stderr_has) in cases {
        let out = run_fake(&repo, name, &args, None, &[]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(stderr_has), "{name}");
    }
    let out = run_fake(&repo, "amp_exit_error", &["-x", "p"], None, &[]);
    assert!(out.stdout.is_empty());
    let out = run_fake(&repo, "claude_auth_failure", &["-p", "p"], None, &[]);
    let result = json_lines(&out.stdout).pop().unwrap();
    assert_eq!((result["subtype"].as_str(), result["is_error"].as_bool()), (Some("success"), Some(true)));
}

#[test]
fn garbage_lines_are_mixed_in() {
    let (_tmp, repo) = fixture();
    let out = run_fake(&repo, "amp_garbage_lines", &["-x", "--stream-json", "p"], None, &[]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    let all = text.lines().count();
    let objects: Vec<Value> =
        text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).filter(Value::is_object).collect();
    assert!(all - objects.len() >= 6, "junk lines expected, got {all} lines / {} objects", objects.len());
    assert_eq!(sum_amp_usage(&objects), scenario("amp_garbage_lines")["expected_usage"]);
    assert_eq!(objects.last().unwrap()["type"], "result");
}

#[test]
fn big_line_is_ten_megabytes_of_valid_json() {
    let (_tmp, repo) = fixture();
    let out = run_fake(&repo, "amp_big_line", &["-x", "--stream-json", "p"], None, &[]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let big = text.lines().nth(2).unwrap();
    assert_eq!(big.len() as u64, scenario("amp_big_line")["big_line_bytes"].as_u64().unwrap());
    let value: Value = serde_json::from_str(big).unwrap();
    assert_eq!(value["type"], "assistant");
    assert_eq!(
        text.lines().last().map(|l| serde_json::from_str::<Value>(l).unwrap()["type"].clone()),
        Some(json!("result"))
    );
}

#[test]
fn hang_with_child_dies_with_its_process_group() {
    let (_tmp, repo) = fixture();
    let mut child = Command::new(FAKE)
        .current_dir(&repo)
        .args(["-x", "--stream-json", "p"])
        .env("FAKE_AGENT_SCENARIO", scenario_path("amp_hang_with_child"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let grandchild: u32 =
        line.trim().rsplit(' ').next().unwrap().parse().unwrap_or_else(|_| panic!("{line}"));
    assert!(Path::new(&format!("/proc/{grandchild}")).exists());
    assert!(child.try_wait().unwrap().is_none());
    let status = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status().unwrap();
    assert!(status.success());
    child.wait().unwrap();
    // The grandchild is gone (or at most a zombie awaiting its reaper).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let state = std::fs::read_to_string(format!("/proc/{grandchild}/stat")).unwrap_or_default();
        let alive = state.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with(['Z', 'X']));
        if !alive {
            break;
        }
        assert!(Instant::now() < deadline, "grandchild {grandchild} survived: {state}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn inline_scenario_and_unknown_step_errors() {
    let (_tmp, repo) = fixture();
    let out = Command::new(FAKE)
        .current_dir(&repo)
        .args(["-p", "--output-format", "stream-json", "hi \"there\""])
        .env("FAKE_AGENT_SCENARIO", r#"{"format":"claude","steps":[{"emit":{"z":1,"a":"{{prompt}}","m":[{"y":2,"b":3}]}},{"exit":7}]}"#)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "{\"z\":1,\"a\":\"hi \\\"there\\\"\",\"m\":[{\"y\":2,\"b\":3}]}\n"
    );

    let out = Command::new(FAKE)
        .current_dir(&repo)
        .env("FAKE_AGENT_SCENARIO", r#"{"format":"amp","steps":[{"frobnicate":1}]}"#)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown step"));

    let out = Command::new(FAKE)
        .current_dir(&repo)
        .env_remove("FAKE_AGENT_SCENARIO")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

// ---------------------------------------------------------------- model server over raw HTTP

fn http(server: &ModelServer, method: &str, path: &str, body: &Value) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = body.to_string();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).unwrap().parse().unwrap();
    let body = response.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

fn sse_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let event = block.lines().find_map(|l| l.strip_prefix("event: ")).unwrap().to_owned();
            let data = block.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
            (event, serde_json::from_str(data).unwrap())
        })
        .collect()
}

fn two_turn_script() -> Script {
    Script::new(vec![
        Turn::tool_call("Write", json!({"file_path": "/tmp/x.txt", "content": "x"}))
            .with_text("Writing.")
            .with_usage(Usage {
                input_tokens: 10,
                output_tokens: 20,
                cache_read_input_tokens: 30,
                cache_creation_input_tokens: 40,
                reasoning_tokens: 5,
            }),
        Turn::text("Done.").with_usage(Usage::new(1, 2)),
    ])
}

#[test]
fn server_speaks_anthropic_messages() {
    let server = ModelServer::start(two_turn_script()).unwrap();
    let tools = json!([{"name": "Write", "input_schema": {}}]);
    let first = json!({"model": "claude-x", "stream": true, "tools": tools, "messages": [{"role": "user", "content": "go"}]});
    let (status, body) = http(&server, "POST", "/v1/messages?beta=true", &first);
    assert_eq!(status, 200);
    let events = sse_events(&body);
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));
    assert_eq!(events[0].1["message"]["model"], "claude-x");
    let json_parts: String = events
        .iter()
        .filter(|(_, d)| d["delta"]["type"] == "input_json_delta")
        .map(|(_, d)| d["delta"]["partial_json"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(serde_json::from_str::<Value>(&json_parts).unwrap()["content"], "x");
    let text: String = events
        .iter()
        .filter(|(_, d)| d["delta"]["type"] == "text_delta")
        .map(|(_, d)| d["delta"]["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(text, "Writing.");
    let delta = &events.iter().find(|(n, _)| n == "message_delta").unwrap().1;
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(delta["usage"]["cache_creation_input_tokens"], 40);
    assert_eq!(delta["usage"]["output_tokens"], 20);

    // The follow-up carries one assistant message: turn 1, non-streaming.
    let second = json!({"model": "claude-x", "tools": tools, "messages": [
        {"role": "user", "content": "go"}, {"role": "assistant", "content": []},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}]}]});
    let (status, body) = http(&server, "POST", "/v1/messages", &second);
    assert_eq!(status, 200);
    let message: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(message["content"][0]["text"], "Done.");
    assert_eq!(message["stop_reason"], "end_turn");
    assert_eq!(message["usage"]["input_tokens"], 1);

    // Side call without tools: fixed reply, no turn consumed. Probes answered.
    let (_, body) = http(&server, "POST", "/v1/messages", &json!({"model": "haiku", "messages": []}));
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["content"][0]["text"], "OK");
    assert_eq!(http(&server, "GET", "/", &json!(null)).0, 200);
    assert_eq!(http(&server, "POST", "/v1/unknown", &json!({})).0, 404);

    let requests = server.requests();
    assert_eq!(requests.len(), 5);
    assert_eq!(requests[0].api, ApiKind::Anthropic);
    assert_eq!(requests.iter().map(|r| r.turn).collect::<Vec<_>>(), vec![Some(0), Some(1), None, None, None]);
    assert!(requests[1].body.contains("tool_result"));
    assert_eq!(requests[0].tool_names(), vec!["Write"]);
    assert_eq!(server.scripted_requests().len(), 2);
}

#[test]
fn server_speaks_openai_responses() {
    let script = Script::new(vec![
        Turn::custom_tool_call("apply_patch", "*** Begin Patch\n*** End Patch\n").with_usage(Usage {
            input_tokens: 100,
            output_tokens: 20,
            cache_read_input_tokens: 30,
            cache_creation_input_tokens: 0,
            reasoning_tokens: 5,
        }),
        Turn::tool_call("exec_command", json!({"cmd": "ls"})).with_text("Listing."),
        Turn::text("All done."),
    ]);
    let server = ModelServer::start(script).unwrap();
    let tools =
        json!([{"type": "custom", "name": "apply_patch"}, {"type": "function", "name": "exec_command"}]);
    let mut input =
        vec![json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]})];

    let (status, body) = http(
        &server,
        "POST",
        "/v1/responses",
        &json!({"model": "gpt-x", "stream": true, "tools": tools, "input": input}),
    );
    assert_eq!(status, 200);
    let events = sse_events(&body);
    assert_eq!(events[0].0, "response.created");
    let done = &events.iter().find(|(n, _)| n == "response.output_item.done").unwrap().1["item"];
    assert_eq!(done["type"], "custom_tool_call");
    assert_eq!(done["input"], "*** Begin Patch\n*** End Patch\n");
    let completed = &events.last().unwrap().1;
    assert_eq!(completed["type"], "response.completed");
    assert_eq!(
        completed["response"]["usage"],
        json!({"input_tokens": 130, "input_tokens_details": {"cached_tokens": 30}, "output_tokens": 20,
               "output_tokens_details": {"reasoning_tokens": 5}, "total_tokens": 150})
    );
    input.push(done.clone());
    input.push(json!({"type": "custom_tool_call_output", "call_id": done["call_id"], "output": "ok"}));

    // Turn 1: text then a function call, as two output items.
    let (_, body) =
        http(&server, "POST", "/responses", &json!({"stream": true, "tools": tools, "input": input}));
    let items: Vec<Value> = sse_events(&body)
        .into_iter()
        .filter(|(n, _)| n == "response.output_item.done")
        .map(|(_, d)| d["item"].clone())
        .collect();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["content"][0]["text"], "Listing.");
    assert_eq!(items[1]["type"], "function_call");
    assert_eq!(
        serde_json::from_str::<Value>(items[1]["arguments"].as_str().unwrap()).unwrap(),
        json!({"cmd": "ls"})
    );
    input.extend(items.iter().cloned());
    input.push(json!({"type": "reasoning", "summary": []}));
    input.push(json!({"type": "function_call_output", "call_id": items[1]["call_id"], "output": "a b"}));

    // Turn 2 (the text+call pair counted once), non-streaming.
    let (_, body) = http(&server, "POST", "/v1/responses", &json!({"tools": tools, "input": input}));
    let response: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(response["output"][0]["content"][0]["text"], "All done.");
    assert_eq!(http(&server, "GET", "/v1/models", &json!(null)).0, 200);
    let turns: Vec<Option<usize>> = server.requests().iter().map(|r| r.turn).collect();
    assert_eq!(turns, vec![Some(0), Some(1), Some(2), None]);
}

#[test]
fn server_scripts_errors_and_loads_json() {
    let script: Script = serde_json::from_value(json!({"turns": [
        {"error": {"status": 429, "body": {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}}},
    ]}))
    .unwrap();
    let server = ModelServer::start(script).unwrap();
    let (status, body) =
        http(&server, "POST", "/v1/messages", &json!({"tools": [{"name": "x"}], "messages": []}));
    assert_eq!(status, 429);
    assert!(body.contains("slow down"));
    let url = server.url();
    drop(server);
    // Stopped: nothing listens any more.
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    assert!(TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(300)).is_err());
}

// ---------------------------------------------------------------- real CLIs

fn run_real(mut cmd: Command, limit: Duration) -> Output {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    let child = cmd.spawn().unwrap();
    wait_output(child, limit)
}

#[requires(claude)]
#[test]
fn real_claude_code_writes_a_file_through_the_scripted_server() {
    let claude = require(Tool::Claude);
    let (_tmp, repo) = fixture();
    let home = temp_home();
    let first = Usage {
        input_tokens: 11,
        output_tokens: 22,
        cache_read_input_tokens: 33,
        cache_creation_input_tokens: 44,
        reasoning_tokens: 0,
    };
    let second = Usage {
        input_tokens: 5,
        output_tokens: 6,
        cache_read_input_tokens: 7,
        cache_creation_input_tokens: 8,
        reasoning_tokens: 0,
    };
    let script = Script::new(vec![
        Turn::tool_call(
            "Write",
            json!({"file_path": repo.join("hello.txt"), "content": "hello from the scripted model\n"}),
        )
        .with_text("I'll create the file.")
        .with_usage(first),
        Turn::text("Created hello.txt.").with_usage(second),
    ]);
    let total = script.total_usage();
    let server = ModelServer::start(script).unwrap();

    let mut cmd = Command::new(&claude);
    cmd.current_dir(&repo)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .envs(claude_offline_env(&server.url(), home.path()))
        .args([
            "-p",
            "--output-format",
            "stream-json",
            "--verbose",
            "--dangerously-skip-permissions",
            "Create hello.txt",
        ]);
    let out = run_real(cmd, Duration::from_secs(90));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "claude failed: {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );

    assert_eq!(std::fs::read_to_string(repo.join("hello.txt")).unwrap(), "hello from the scripted model\n");
    let lines = json_lines(&out.stdout);
    let init = lines.iter().find(|l| l["type"] == "system" && l["subtype"] == "init").unwrap();
    assert!(is_uuid(init["session_id"].as_str().unwrap()));
    let result = lines.iter().find(|l| l["type"] == "result").unwrap();
    assert_eq!(result["subtype"], "success");
    assert_eq!(result["is_error"], false);
    assert_eq!(result["result"], "Created hello.txt.");
    assert_eq!(result["usage"]["input_tokens"], total.input_tokens);
    assert_eq!(result["usage"]["output_tokens"], total.output_tokens);
    assert_eq!(result["usage"]["cache_read_input_tokens"], total.cache_read_input_tokens);
    assert_eq!(result["usage"]["cache_creation_input_tokens"], total.cache_creation_input_tokens);

    // The tool result went back to the model in the second scripted request.
    let scripted = server.scripted_requests();
    assert_eq!(scripted.iter().map(|r| r.turn).collect::<Vec<_>>(), vec![Some(0), Some(1)]);
    assert!(scripted[0].tool_names().iter().any(|t| t == "Write"));
    let follow_up = scripted[1].json().unwrap();
    let tool_results: Vec<&Value> = follow_up["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["content"].as_array())
        .flatten()
        .filter(|block| block["type"] == "tool_result")
        .collect();
    assert_eq!(tool_results.len(), 1, "{follow_up}");
    assert_eq!(scripted[1].header("x-api-key"), Some("test-key"));
}

#[requires(codex)]
#[test]
fn real_codex_edits_files_through_the_scripted_server() {
    let codex = require(Tool::Codex);
    let (_tmp, repo) = fixture();
    let home = temp_home();
    let codex_home = home.path().join(".codex");
    let script = Script::new(vec![
        Turn::tool_call("exec_command", json!({"cmd": "printf 'from the shell\\n' > shell.txt"}))
            .with_usage(Usage { input_tokens: 100, output_tokens: 20, cache_read_input_tokens: 30, cache_creation_input_tokens: 0, reasoning_tokens: 5 }),
        Turn::custom_tool_call("apply_patch", "*** Begin Patch\n*** Add File: hello.txt\n+hello from codex\n*** Update File: README.md\n@@\n-A repository made by a test.\n+A repository edited by Codex.\n*** End Patch\n")
            .with_usage(Usage { input_tokens: 60, output_tokens: 15, cache_read_input_tokens: 120, cache_creation_input_tokens: 0, reasoning_tokens: 3 }),
        Turn::text("Added hello.txt and updated README.md.")
            .with_usage(Usage { input_tokens: 50, output_tokens: 6, cache_read_input_tokens: 7, cache_creation_input_tokens: 0, reasoning_tokens: 1 }),
    ]);
    let total = script.total_usage();
    let server = ModelServer::start(script).unwrap();
    write_codex_home(&codex_home, &server.openai_base_url(), ampsm_testutils::real_cli::CODEX_TEST_MODEL)
        .unwrap();

    let mut cmd = Command::new(&codex);
    cmd.current_dir(&repo)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .envs(codex_offline_env(&codex_home, home.path()))
        .args([
            "exec",
            "--json",
            "--skip-git-repo-check",
            "--dangerously-bypass-approvals-and-sandbox",
            "Add hello.txt",
        ]);
    let out = run_real(cmd, Duration::from_secs(90));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "codex failed: {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );

    assert_eq!(std::fs::read_to_string(repo.join("shell.txt")).unwrap(), "from the shell\n");
    assert_eq!(std::fs::read_to_string(repo.join("hello.txt")).unwrap(), "hello from codex\n");
    assert!(std::fs::read_to_string(repo.join("README.md")).unwrap().contains("edited by Codex"));

    let lines = json_lines(&out.stdout);
    assert_eq!(lines[0]["type"], "thread.started");
    assert!(is_uuid(lines[0]["thread_id"].as_str().unwrap()));
    assert!(lines.iter().any(|l| l["type"] == "item.completed" && l["item"]["type"] == "file_change"));
    assert!(lines.iter().any(|l| l["type"] == "item.completed" && l["item"]["type"] == "command_execution"));
    let done = lines.iter().find(|l| l["type"] == "turn.completed").unwrap();
    assert_eq!(done["usage"]["input_tokens"], total.input_tokens + total.cache_read_input_tokens);
    assert_eq!(done["usage"]["cached_input_tokens"], total.cache_read_input_tokens);
    assert_eq!(done["usage"]["output_tokens"], total.output_tokens);
    assert_eq!(done["usage"]["reasoning_output_tokens"], total.reasoning_tokens);

    let scripted = server.scripted_requests();
    assert_eq!(scripted.iter().map(|r| r.turn).collect::<Vec<_>>(), vec![Some(0), Some(1), Some(2)]);
    let tools = scripted[0].tool_names();
    println!("codex offered tools: {tools:?}");
    assert!(
        tools.iter().any(|t| t == "apply_patch") && tools.iter().any(|t| t == "exec_command"),
        "{tools:?}"
    );
    let last = scripted[2].json().unwrap();
    let outputs: Vec<&Value> = last["input"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["type"] == "custom_tool_call_output" || item["type"] == "function_call_output")
        .collect();
    assert_eq!(outputs.len(), 2, "{last}");
    assert_eq!(scripted[0].header("authorization"), Some("Bearer test-key"));
}

#[test]
fn json_input_prompt_and_every_shipped_scenario_is_well_formed() {
    let (_tmp, repo) = fixture();
    let log = repo.parent().unwrap().join("json.log");
    let stdin = "{\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"from json\"}]}}\n";
    let out = run_fake(
        &repo,
        "amp_auth_failure",
        &["-x", "--stream-json", "--stream-json-input"],
        Some(stdin),
        &[("AMP_API_KEY", "k"), ("FAKE_AGENT_LOG", log.to_str().unwrap())],
    );
    assert!(out.status.success());
    assert_eq!(read_log(&log)[0]["prompt"], "from json");
    assert_eq!(read_log(&log)[0]["env_has_amp_key"], true);

    let known = [
        "emit",
        "emit_raw",
        "emit_big",
        "write_file",
        "edit_file",
        "sleep_ms",
        "stderr",
        "exit",
        "hang",
        "require_env",
    ];
    let dir = ampsm_testutils::scenarios_dir();
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|ext| ext != "json") {
            continue;
        }
        count += 1;
        let scen: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert!(["amp", "claude", "codex", "gemini", "opencode"].contains(&scen["format"].as_str().unwrap()));
        assert!(scen["description"].is_string(), "{}", path.display());
        for key in ["steps", "continue_steps"] {
            for step in scen[key].as_array().map(Vec::as_slice).unwrap_or_default() {
                assert!(known.iter().any(|k| step.get(*k).is_some()), "{}: {step}", path.display());
            }
        }
    }
    assert!(count >= 14, "{count}");
}

// ---------------------------------------------------------------- test binaries

/// The `.rs` files under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()) {
        if entry.is_dir() {
            found.extend(rust_files(&entry));
        } else if entry.extension().is_some_and(|x| x == "rs") {
            found.push(entry);
        }
    }
    found
}

/// The files of the modules that `file` declares with `mod name;` (or `#[path = "…"] mod name;`), where
/// rustc looks for them: beside a crate root, `main.rs` or `mod.rs`, else in the folder named after `file`.
fn declared_modules(file: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string(file).unwrap();
    let dir = file.parent().unwrap();
    let stem = file.file_stem().unwrap();
    let owns_dir = file.parent().is_some_and(|d| d.file_name().is_some_and(|n| n == "tests"))
        || stem == "main"
        || stem == "mod";
    let children = if owns_dir { dir.to_path_buf() } else { dir.join(stem) };
    let mut path_attr = None;
    let mut found = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(p) = line.strip_prefix("#[path = \"").and_then(|r| r.strip_suffix("\"]")) {
            path_attr = Some(dir.join(p));
            continue;
        }
        let decl = line.trim_start_matches("pub(crate) ").trim_start_matches("pub ");
        if let Some(name) = decl.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')) {
            found.push(path_attr.take().unwrap_or_else(|| {
                let flat = children.join(format!("{}.rs", name.trim()));
                if flat.is_file() { flat } else { children.join(name.trim()).join("mod.rs") }
            }));
        } else if !line.starts_with("#[") {
            path_attr = None;
        }
    }
    found
}

/// Like jj's test runner: every `.rs` file in a crate's `tests/` folder is a test binary's root (a file
/// right in `tests/`, or `tests/<dir>/main.rs`) or a module that a root reaches with `mod`; a file that
/// nothing declares would never be compiled, and its tests would silently never run.
#[test]
fn every_test_file_is_compiled_into_a_test_binary() {
    let root = ampsm_testutils::workspace_root();
    let mut test_dirs: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path().join("tests"))
        .chain([root.join("bench").join("tests")])
        .filter(|d| d.is_dir())
        .collect();
    test_dirs.sort();
    assert!(test_dirs.len() >= 4, "{test_dirs:?}");
    let mut left_out = Vec::new();
    for tests in &test_dirs {
        let mut todo: Vec<PathBuf> = std::fs::read_dir(tests)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| if p.is_dir() { p.join("main.rs") } else { p })
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "rs"))
            .collect();
        let mut reached = std::collections::HashSet::new();
        while let Some(file) = todo.pop() {
            if reached.insert(file.canonicalize().unwrap_or(file.clone())) {
                todo.extend(declared_modules(&file).into_iter().filter(|p| p.is_file()));
            }
        }
        for file in rust_files(tests) {
            if !reached.contains(&file.canonicalize().unwrap()) {
                left_out.push(file.strip_prefix(&root).unwrap().display().to_string());
            }
        }
    }
    assert!(
        left_out.is_empty(),
        "these test files are in no test binary (declare each with `mod` in its binary's main.rs): {left_out:?}"
    );
}

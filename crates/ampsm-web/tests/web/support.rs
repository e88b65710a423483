//! Shared helpers of the dashboard tests: the real `amp-sessions` binary, a temporary world (AMPSM_HOME,
//! HOME, a git repository, the fake agent standing in for Claude Code), a running dashboard started as
//! `amp-sessions ui --port 0 --no-open --json`, and a small HTTP client over ureq that shows every status.

use ampsm_testutils::repo::init_repo;
use ampsm_testutils::{install_fake_agent_as, scenario_path, workspace_root};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};
use tempfile::TempDir;

/// The `amp-sessions` binary: `AMPSM_BIN`, else the one in this profile's target folder when it is newer
/// than every source file, else built with cargo into `target/web-tests` (a separate folder, so the build
/// does not wait for the lock of the `cargo test` running us).
pub fn binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("AMPSM_BIN") {
            return PathBuf::from(p);
        }
        let exe = std::env::current_exe().unwrap();
        let mut dir = exe.parent().unwrap().to_path_buf();
        if dir.ends_with("deps") {
            dir.pop();
        }
        let candidate = dir.join("amp-sessions");
        let newest = newest_source(&workspace_root().join("crates"));
        if candidate.is_file() && modified(&candidate) >= newest {
            return candidate;
        }
        let target = workspace_root().join("target").join("web-tests");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(workspace_root())
            .args(["build", "--quiet", "-p", "ampsm", "--bin", "amp-sessions", "--target-dir"])
            .arg(&target)
            .status()
            .expect("run cargo build for amp-sessions");
        assert!(status.success(), "building amp-sessions failed");
        target.join("debug").join("amp-sessions")
    })
    .clone()
}

fn modified(p: &Path) -> SystemTime {
    std::fs::metadata(p).and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH)
}

fn newest_source(dir: &Path) -> SystemTime {
    let mut newest = SystemTime::UNIX_EPOCH;
    let Ok(rd) = std::fs::read_dir(dir) else { return newest };
    for e in rd.flatten() {
        let p = e.path();
        let name = e.file_name();
        if p.is_dir() {
            if name != "tests" && name != "target" {
                newest = newest.max(newest_source(&p));
            }
        } else if p.extension().is_some_and(|x| x == "rs" || x == "toml" || x == "sql") {
            newest = newest.max(modified(&p));
        }
    }
    newest
}

/// A temporary world: an AMPSM_HOME, a HOME, and a repository.
pub struct World {
    pub dir: TempDir,
    pub repo: PathBuf,
    pub env: Vec<(String, String)>,
}

impl World {
    pub fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let repo = init_repo(&dir.path().join("repo"));
        World { dir, repo, env: Vec::new() }
    }

    /// A world whose `claude` is the fake agent playing `scenario` (a file path), with notifications off.
    pub fn with_claude(scenario: &Path) -> World {
        let mut w = World::new();
        let claude = install_fake_agent_as(&w.dir.path().join("bin"), "claude");
        std::fs::create_dir_all(w.home()).unwrap();
        std::fs::write(
            w.home().join("config.yaml"),
            format!("agents:\n  claude:\n    path: {}\nnotifications:\n  desktop: false\n", claude.display()),
        )
        .unwrap();
        w.env.push(("FAKE_AGENT_SCENARIO".into(), scenario.display().to_string()));
        w.env.push(("ANTHROPIC_API_KEY".into(), "sk-ant-test".into()));
        w
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("ampsm-home")
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(binary());
        c.env("AMPSM_HOME", self.home())
            .env("HOME", self.dir.path())
            .env_remove("AMPSM_DB_PATH")
            .env_remove("AMP_API_KEY")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("NO_COLOR", "1")
            .current_dir(self.dir.path());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Runs and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "amp-sessions {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let text = self.ok(&all);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }

    pub fn repo_arg(&self) -> &str {
        self.repo.to_str().unwrap()
    }

    /// Waits until the session's status is not `running` (and it has `iterations` iterations).
    pub fn wait_idle(&self, session: &str, iterations: usize) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let m = self.json(&["metrics", session]);
            if m["session"]["status"] != "running"
                && m["iterations_count"].as_u64() == Some(iterations as u64)
            {
                return m;
            }
            assert!(Instant::now() < deadline, "session {session} still running: {m}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The claude_timed scenario with a pause of `pause_ms` after its first assistant message, so that a
/// run stays `running` long enough to watch it; written into the world's folder.
pub fn slow_scenario(dir: &Path, pause_ms: u64) -> PathBuf {
    let mut scen: Value =
        serde_json::from_str(&std::fs::read_to_string(scenario_path("claude_timed")).unwrap()).unwrap();
    let steps = scen["steps"].as_array_mut().unwrap();
    steps.insert(2, serde_json::json!({ "sleep_ms": pause_ms }));
    let path = dir.join("claude_slow.json");
    std::fs::write(&path, serde_json::to_string(&scen).unwrap()).unwrap();
    path
}

/// A dashboard started as the real binary.
pub struct Dashboard {
    pub child: Child,
    pub url: String,
    pub port: u16,
    pub token: String,
}

impl Dashboard {
    pub fn start(w: &World) -> Dashboard {
        let mut child = w
            .cmd()
            .args(["ui", "--port", "0", "--no-open", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let v: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"));
        let url = v["url"].as_str().unwrap().to_string();
        let port = v["port"].as_u64().unwrap() as u16;
        let token = url.split("token=").nth(1).unwrap().to_string();
        assert_eq!(url, format!("http://127.0.0.1:{port}/?token={token}"));
        Dashboard { child, url, port, token }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn cookie(&self) -> String {
        format!("ampsm_token_{}={}", self.port, self.token)
    }

    /// GET with the cookie.
    pub fn get(&self, path: &str) -> Resp {
        send(agent().get(&format!("{}{path}", self.base())).set("Cookie", &self.cookie()), None)
    }

    /// POST a form with the cookie, this origin and the CSRF token (read from the page).
    pub fn post(&self, path: &str, fields: &[(&str, &str)]) -> Resp {
        let csrf = self.csrf();
        let mut all: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        let req = agent()
            .post(&format!("{}{path}", self.base()))
            .set("Cookie", &self.cookie())
            .set("Origin", &self.base());
        send(req, Some(&all))
    }

    /// The CSRF token every form carries.
    pub fn csrf(&self) -> String {
        let page = self.get("/").body;
        let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + "name=\"csrf\" value=\"".len();
        page[at..at + 64].to_string()
    }

    /// Sends SIGINT and waits for the exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        interrupt(&self.child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < deadline, "the dashboard did not stop within 20 s of Ctrl-C");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn interrupt(child: &Child) {
    let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            interrupt(&self.child);
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A response: status, headers we care about, body.
pub struct Resp {
    pub status: u16,
    pub location: Option<String>,
    pub set_cookie: Option<String>,
    pub content_type: Option<String>,
    pub disposition: Option<String>,
    pub body: String,
}

/// Sends without following redirects and without turning 4xx/5xx into errors.
pub fn send(req: ureq::Request, form: Option<&[(&str, &str)]>) -> Resp {
    let result = match form {
        Some(f) => req.send_form(f),
        None => req.call(),
    };
    let resp = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("request failed: {e}"),
    };
    Resp {
        status: resp.status(),
        location: resp.header("location").map(str::to_string),
        set_cookie: resp.header("set-cookie").map(str::to_string),
        content_type: resp.header("content-type").map(str::to_string),
        disposition: resp.header("content-disposition").map(str::to_string),
        body: resp.into_string().unwrap_or_default(),
    }
}

/// A ureq agent that does not follow redirects.
pub fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new().redirects(0).timeout(Duration::from_secs(60)).build()
}

/// The text of the element carrying `data-metric="key"`.
pub fn metric(page: &str, key: &str) -> String {
    let marker = format!("data-metric=\"{key}\">");
    let at = page.find(&marker).unwrap_or_else(|| panic!("no metric {key} on the page")) + marker.len();
    let end = page[at..].find('<').unwrap() + at;
    page[at..end].to_string()
}

/// Puts a session into the state of a run under the `ask` policy that waits for answers: an iteration
/// whose runner is this test process (alive, so nothing repairs it), the session `awaiting-input`, and a
/// pending approval per `(tool, input)`, written straight into the store. Returns the approvals' numbers.
pub fn ask_for_approvals(w: &World, session_id: &str, calls: &[(&str, Value)]) -> Vec<i64> {
    use ampsm_core::{PermissionPolicy, SessionId, SessionStatus};
    let mut store = ampsm_store::Store::open(&w.home().join("sessions.db")).unwrap();
    let sid = SessionId::from_stored(session_id);
    let session = store.get_session(&sid).unwrap();
    let running =
        store.list_iterations(&sid).unwrap().into_iter().find(|it| it.ended_at.is_none()).map(|it| it.id);
    let iteration_id = match running {
        Some(id) => id,
        None => {
            let id = ampsm_core::id::new_id();
            let it = ampsm_store::NewIteration {
                id: id.clone(),
                session_id: sid.clone(),
                kind: "iterate",
                prompt: Some("work, asking first".into()),
                agent: session.agent.clone(),
                model: None,
                thread_id: None,
                runner_pid: i64::from(std::process::id()),
                permissions: Some(PermissionPolicy::Ask),
            };
            store.begin_iteration(&it, "running (test)").unwrap();
            id
        }
    };
    let mut seqs = Vec::new();
    for (tool, input) in calls {
        let a = store
            .insert_approval(&ampsm_store::NewApproval {
                id: ampsm_core::id::new_id(),
                session_id: sid.clone(),
                iteration_id: iteration_id.clone(),
                request_id: ampsm_core::id::new_id(),
                call_id: Some(format!("toolu_{}", ampsm_core::id::new_id())),
                tool: tool.to_string(),
                input: input.to_string(),
                expires_at: ampsm_core::time::now_ms() + 600_000,
            })
            .unwrap();
        let note = format!("waiting for approval #{}: {tool}", a.seq);
        store.set_status(&sid, SessionStatus::AwaitingInput, Some(&note)).unwrap();
        seqs.push(a.seq);
    }
    seqs
}

/// The approvals of a session as `approvals <s> --all --json` prints them.
pub fn approvals_of(w: &World, session: &str) -> Vec<Value> {
    w.json(&["approvals", session, "--all"]).as_array().unwrap().clone()
}

/// Whether any process of the group `pgid` is still there.
pub fn group_alive(pgid: i64) -> bool {
    Command::new("kill")
        .args(["-0", "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

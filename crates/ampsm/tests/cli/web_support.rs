//! Helpers of the dashboard tests (the world is `support::World`, with the fake agent standing in for
//! Claude Code): a running dashboard started as `amp-sessions ui --port 0 --no-open --json`, a small HTTP
//! client over ureq that shows every status, and a session put straight into the state of a run waiting
//! for approvals.

use crate::support::World;
use ampsm_testutils::scenario_path;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

/// Puts a session into the state of a run under the `ask` policy that waits for answers (see
/// [`ampsm_testutils::seed::pending_approvals`]). Returns the approvals' numbers.
pub fn ask_for_approvals(w: &World, session_id: &str, calls: &[(&str, Value)]) -> Vec<i64> {
    let calls: Vec<(&str, String)> = calls.iter().map(|(tool, input)| (*tool, input.to_string())).collect();
    ampsm_testutils::seed::pending_approvals(&w.home().join("sessions.db"), session_id, &calls)
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

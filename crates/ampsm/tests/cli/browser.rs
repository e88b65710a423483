//! A real browser for the dashboard tests: Debian's Chromium driven through chromedriver with plain
//! WebDriver calls (navigate, find, type, click, run a script, wait, take a screenshot). Tests that use it
//! carry `#[requires(chromium)]`.

use ampsm_testutils::Tool;
use base64::Engine as _;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Driver {
    child: Child,
    base: String,
    session: String,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn call(method: &str, url: &str, body: Option<Value>) -> Value {
    let req = ureq::request(method, url).timeout(Duration::from_secs(60));
    let resp = match body {
        Some(b) => req.send_json(b),
        None => req.call(),
    };
    match resp {
        Ok(r) => r.into_json().unwrap(),
        Err(ureq::Error::Status(code, r)) => {
            panic!("WebDriver {method} {url}: {code} {}", r.into_string().unwrap_or_default())
        }
        Err(e) => panic!("WebDriver {method} {url}: {e}"),
    }
}

impl Driver {
    /// Starts chromedriver and a headless Chromium; the tests carry `#[requires(chromium)]`.
    pub fn start() -> Driver {
        ampsm_testutils::require(Tool::Chromium);
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while ureq::get(&format!("{base}/status")).call().is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        }}});
        let v = call("POST", &format!("{base}/session"), Some(caps));
        let session = v["value"]["sessionId"].as_str().expect("a WebDriver session").to_string();
        Driver { child, base, session, _profile: profile }
    }

    pub fn url(&self, tail: &str) -> String {
        format!("{}/session/{}{tail}", self.base, self.session)
    }

    pub fn goto(&self, url: &str) {
        call("POST", &self.url("/url"), Some(json!({ "url": url })));
    }

    pub fn current_url(&self) -> String {
        call("GET", &self.url("/url"), None)["value"].as_str().unwrap().to_string()
    }

    pub fn find(&self, css: &str) -> String {
        let v = call("POST", &self.url("/element"), Some(json!({ "using": "css selector", "value": css })));
        v["value"][ELEMENT].as_str().unwrap_or_else(|| panic!("no element {css}: {v}")).to_string()
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        call("POST", &self.url(&format!("/element/{e}/value")), Some(json!({ "text": text })));
    }

    pub fn click(&self, css: &str) {
        let e = self.find(css);
        call("POST", &self.url(&format!("/element/{e}/click")), Some(json!({})));
    }

    /// The rendered text of the first element matching `css`, read in one script so that a live update
    /// replacing the element between "find" and "read" cannot make it stale; panics when there is none.
    pub fn text(&self, css: &str) -> String {
        let selector = serde_json::to_string(css).unwrap();
        let v = self
            .script(&format!("const e = document.querySelector({selector}); return e ? e.innerText : null;"));
        v.as_str().unwrap_or_else(|| panic!("no element {css} on the page")).trim().to_string()
    }

    pub fn script(&self, js: &str) -> Value {
        call("POST", &self.url("/execute/sync"), Some(json!({ "script": js, "args": [] })))["value"].clone()
    }

    /// Polls `f` until it returns Some, for up to `secs` seconds.
    pub fn wait<T>(&self, secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(v) = f() {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sets the window's size in CSS pixels.
    pub fn window_size(&self, width: u32, height: u32) {
        call("POST", &self.url("/window/rect"), Some(json!({ "width": width, "height": height })));
    }

    /// How long a navigation may take before it fails (a guard against hangs, not a speed check).
    pub fn page_load_timeout(&self, limit: Duration) {
        call("POST", &self.url("/timeouts"), Some(json!({ "pageLoad": limit.as_millis() as u64 })));
    }

    /// Runs a Chrome DevTools Protocol command through chromedriver (e.g. a script for every new page).
    pub fn cdp(&self, cmd: &str, params: Value) -> Value {
        call("POST", &self.url("/goog/cdp/execute"), Some(json!({ "cmd": cmd, "params": params })))
    }

    /// A PNG screenshot of the visible page.
    pub fn screenshot_png(&self) -> Vec<u8> {
        let v = call("GET", &self.url("/screenshot"), None);
        base64::engine::general_purpose::STANDARD.decode(v["value"].as_str().expect("a screenshot")).unwrap()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = ureq::delete(&self.url("")).call();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! The dashboard at scale (issue 13): 1,000 sessions over a few repositories and one session of 100,000
//! agent events (reads returning whole files among them), served by the real release binary
//! (`amp-sessions ui --port 0 --no-open --json`). For each page it prints the time to answer measured from
//! the client on loopback (median and p95 over N requests, and the first request on a fresh server), the
//! page's bytes, and the server's memory (VmHWM, VmRSS from /proc) after the requests, each page on a fresh
//! server so that its memory figure is its own. Then, when Chromium and chromedriver are installed,
//! it opens the conversation page in headless Chromium, appends 20,000 events to the big session through
//! the store while a probe in the page measures how late input is handled (a key event dispatched every
//! 50 ms, timed from when it was due to when its handler ran), and prints the worst and p95 latency and
//! the page's DOM node count. Targets are printed beside the figures; nothing is asserted.
//!
//! Run: `cargo run --release -p ampsm-bench --bin dashboard-bench` (see bench/README.md for the knobs).

use ampsm_bench::{git, median_p95, release_binary, report};
use ampsm_core::{AgentEvent, IterationOutcome, PermissionPolicy, SessionId, SessionStatus, TokenUsage};
use ampsm_store::runs::{EventRecord, IterationEnd, LinePosition, NewIteration, UsageRow};
use ampsm_store::{NewSession, Store};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SESSIONS: usize = 1_000;
const REPOS: usize = 4;
const BIG_EVENTS: usize = 100_000;
const BIG_ITERATIONS: usize = 4;
const BURST_EVENTS: usize = 20_000;
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

fn main() {
    if let Err(e) = run() {
        eprintln!("dashboard-bench: {e}");
        std::process::exit(1);
    }
}

/// A number from the environment, else `default`.
fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn run() -> Result<(), String> {
    let bin = release_binary()?;
    let temp = tempfile::tempdir().map_err(|e| e.to_string())?;
    // BENCH_DIR: seed into this (new) folder and keep it, e.g. to look at the seeded home afterwards.
    let dir = std::env::var_os("BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| temp.path().to_path_buf());
    let home = dir.join("home");
    std::fs::create_dir_all(&home).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let big = seed(&dir, &home)?;
    println!(
        "seeded {SESSIONS} sessions over {REPOS} repositories and one of {BIG_EVENTS} events ({}) in {:.1} s",
        big.id.short(),
        started.elapsed().as_secs_f64()
    );
    let requests = env_num("BENCH_REQUESTS", 20);
    let big_id = big.id.as_str().to_string();
    let pages: Vec<(String, &str, Option<f64>)> = vec![
        ("/".into(), "sessions", Some(20.0)),
        (format!("/s/{big_id}"), "overview (100k events)", Some(100.0)),
        (format!("/s/{big_id}/interactive"), "conversation (100k events)", Some(100.0)),
        (format!("/s/{big_id}/git"), "git (100k events)", None),
        ("/batches".into(), "batches", None),
        ("/bench".into(), "bench", None),
        ("/settings".into(), "settings", None),
    ];
    let only = std::env::var("BENCH_PAGES").unwrap_or_default();
    let pages: Vec<_> = pages
        .into_iter()
        .filter(|(_, label, _)| only.is_empty() || only.split(',').any(|o| label.starts_with(o)))
        .collect();
    println!("\n{requests} requests per page (after 2 warm-ups), each page on a fresh server");
    let mut all_ok = true;
    for (path, label, target_ms) in &pages {
        let server = Server::start(&bin, &home)?;
        // A person opens the dashboard and then a page: the first request comes a second after the start
        // (the server reads the long sessions' error logs in the background meanwhile).
        std::thread::sleep(Duration::from_secs(1));
        let r = measure_page(&server, path, requests);
        let (hwm, rss) = server.memory_mb();
        drop(server);
        let r = r?;
        println!("{label}  GET {path}  status {}  {} bytes", r.status, r.bytes);
        let name = format!("  {label} median");
        match target_ms {
            Some(t) => all_ok &= report(&name, r.median_ms, "ms", *t, true),
            None => println!("{name}: {:.2} ms (no target)", r.median_ms),
        }
        println!("  {label} p95: {:.2} ms over {} requests", r.p95_ms, r.samples);
        println!("  {label} first request, 1 s after the server started: {:.2} ms", r.first_ms);
        if target_ms.is_some() && path != "/" {
            all_ok &= report(&format!("  {label} server peak RSS (VmHWM)"), hwm, "MB", 40.0, true);
        } else {
            println!("  {label} server peak RSS (VmHWM): {hwm:.1} MB (no target)");
        }
        println!("  {label} server RSS after (VmRSS): {rss:.1} MB");
    }
    if std::env::var_os("BENCH_NO_BROWSER").is_some() {
        println!("\nBENCH_NO_BROWSER is set: the tab check is skipped");
    } else if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        println!("\nChromium: the conversation page while {BURST_EVENTS} events arrive");
        all_ok &= browser_burst(&bin, &home, &big)?;
    } else {
        println!(
            "\nChromium or chromedriver is not installed ({CHROMIUM}, {CHROMEDRIVER}): the tab check is skipped"
        );
    }
    println!("\n{}", if all_ok { "every target met" } else { "some targets missed (FAIL above)" });
    Ok(())
}

/// The big session, as seeded.
struct Big {
    id: SessionId,
    name: String,
}

fn new_session(i: usize, repo: &Path, worktree: &Path, agent: &str) -> NewSession {
    let id = SessionId::new_random();
    NewSession {
        name: format!("task-{i}"),
        branch: format!("amp/task-{i}-{}", id.short()),
        worktree_path: worktree.display().to_string(),
        id,
        repo_path: repo.display().to_string(),
        base_branch: "main".into(),
        base_commit: String::new(),
        agent: agent.into(),
        model: Some("smart".into()),
        prompt: Some(format!("Implement feature number {i} with tests and documentation")),
        script: Some("cargo test".into()),
        budget_usd: None,
        batch_item_id: None,
        bench_result_id: None,
        creating_pid: 1,
        permissions: None,
    }
}

/// Seeds `home` with the sessions and the big session's runs; returns the big session.
fn seed(dir: &Path, home: &Path) -> Result<Big, String> {
    let e = |e: ampsm_store::StoreError| e.to_string();
    let mut repos = Vec::new();
    let mut base_commit = String::new();
    for r in 0..REPOS {
        let repo = dir.join(format!("project-{r}"));
        std::fs::create_dir_all(repo.join("src")).map_err(|e| e.to_string())?;
        git(&repo, &["init", "-q", "-b", "main"])?;
        std::fs::write(repo.join("README.md"), format!("# project {r}\n")).map_err(|e| e.to_string())?;
        std::fs::write(repo.join("src/lib.rs"), "pub fn answer() -> u32 {\n    42\n}\n")
            .map_err(|e| e.to_string())?;
        git(&repo, &["add", "-A"])?;
        git(
            &repo,
            &["-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-q", "-m", "init"],
        )?;
        if r == 0 {
            base_commit = ampsm_git::Git::new(&repo)
                .run(&["rev-parse", "HEAD"])
                .map(|o| o.trim().to_string())
                .map_err(|e| e.to_string())?;
        }
        repos.push(repo);
    }
    let mut store = Store::open(&home.join("sessions.db")).map_err(e)?;
    for i in 0..SESSIONS - 1 {
        let repo = &repos[i % REPOS];
        let mut s = new_session(
            i,
            repo,
            &dir.join("worktrees").join(format!("task-{i}")),
            ["amp", "claude", "codex"][i % 3],
        );
        s.base_commit = base_commit.clone();
        store.insert_creating_session(&s).map_err(e)?;
        store.finish_creating(&s.id).map_err(e)?;
    }
    // The big session has a real branch and worktree, so its Git tab and its lines changed are real.
    let repo = repos[0].clone();
    let worktree = dir.join("worktrees").join("big");
    let mut s = new_session(SESSIONS, &repo, &worktree, "claude");
    s.name = "big-session".into();
    s.base_commit = base_commit.clone();
    s.model = Some("claude-sonnet-4-5".into());
    s.permissions = Some(PermissionPolicy::Auto);
    git(&repo, &["worktree", "add", "-q", "-b", &s.branch, &worktree.display().to_string(), "main"])?;
    std::fs::write(
        worktree.join("src/lib.rs"),
        "pub fn answer() -> u32 {\n    41 + 1\n}\n\npub fn more() {}\n",
    )
    .map_err(|e| e.to_string())?;
    git(
        &worktree,
        &["-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-q", "-am", "agent work"],
    )?;
    store.insert_creating_session(&s).map_err(e)?;
    store.finish_creating(&s.id).map_err(e)?;
    let per_iteration = BIG_EVENTS / BIG_ITERATIONS;
    for it in 0..BIG_ITERATIONS {
        let outcome = if it == 1 { IterationOutcome::Failed } else { IterationOutcome::Success };
        append_run(&mut store, &s.id, it, per_iteration, None, outcome)?;
    }
    Ok(Big { id: s.id, name: s.name })
}

/// One run of the big session: an iteration with `lines` stream lines (written in batches, `pause`
/// between them when given), its usage rows, and its end.
fn append_run(
    store: &mut Store,
    session: &SessionId,
    n: usize,
    lines: usize,
    pause: Option<Duration>,
    outcome: IterationOutcome,
) -> Result<(), String> {
    let e = |e: ampsm_store::StoreError| e.to_string();
    let iteration_id = ampsm_core::id::new_id();
    store
        .begin_iteration(
            &NewIteration {
                id: iteration_id.clone(),
                session_id: session.clone(),
                kind: "iterate",
                prompt: Some(format!("Step {n}: refactor the parser, add tests, keep the public API")),
                agent: "claude".into(),
                model: Some("claude-sonnet-4-5".into()),
                thread_id: None,
                runner_pid: std::process::id() as i64,
                permissions: Some(PermissionPolicy::Auto),
            },
            "bench run",
        )
        .map_err(e)?;
    let batch_size = if pause.is_some() { 250 } else { 2_000 };
    let mut batch = Vec::with_capacity(batch_size);
    let base_ts = ampsm_core::time::now_ms();
    for seq in 0..lines {
        let (raw, events) = line(n, seq);
        let at = LinePosition {
            session_id: session.as_str().to_string(),
            iteration_id: iteration_id.clone(),
            seq: seq as i64,
            ts: if pause.is_some() { ampsm_core::time::now_ms() } else { base_ts + seq as i64 * 20 },
            stream: "stdout",
        };
        batch.push(EventRecord::new(at, raw, false, &events));
        if batch.len() == batch_size {
            store.record_events(&batch).map_err(e)?;
            batch.clear();
            if let Some(p) = pause {
                std::thread::sleep(p);
            }
        }
    }
    store.record_events(&batch).map_err(e)?;
    let usage = TokenUsage {
        input: 1_200 + lines as u64,
        output: 40 * lines as u64 / 10,
        cache_read: 300 * lines as u64 / 10,
        cache_write: 20 * lines as u64 / 10,
        reasoning: 0,
    };
    let row = UsageRow {
        iteration_id: Some(iteration_id.clone()),
        model: Some("claude-sonnet-4-5".into()),
        usage,
        cost_usd: Some(0.000_01 * lines as f64),
        cost_source: "agent".into(),
        price_entry: None,
        recorded_at: ampsm_core::time::now_ms(),
    };
    store.insert_usage(session, &iteration_id, &row).map_err(e)?;
    let mut end = IterationEnd::new(outcome);
    end.exit_code = Some(if outcome == IterationOutcome::Success { 0 } else { 1 });
    if outcome != IterationOutcome::Success {
        end.error = Some("the agent exited with code 1".into());
    }
    end.cost_usd = row.cost_usd;
    end.cost_source = Some("agent".into());
    store.finish_iteration(&iteration_id, &end).map_err(e)?;
    store.set_pids(session, None, None).map_err(e)?;
    store.set_status(session, SessionStatus::Idle, Some("run ended")).map_err(e)?;
    Ok(())
}

/// The `seq`-th stream line of run `n`: a realistic mix of assistant text (Markdown), tool calls and their
/// results (shell, read, edit), usage, a few retries and errors.
fn line(n: usize, seq: usize) -> (String, Vec<AgentEvent>) {
    let call = format!("toolu_{n}_{}", seq / 10);
    let ev = match seq % 10 {
        0 | 5 => AgentEvent::AssistantText {
            text: format!(
                "Step {seq}: I looked at `src/parser.rs` and the **tokenizer** keeps the whole input.\n\n\
                 - split `parse_line` in two\n- add a test for empty lines\n\n```rust\nfn parse_line(s: &str) -> Token {{ todo!() }}\n```"
            ),
            delta: false,
        },
        1 => AgentEvent::ToolUse {
            call_id: call.clone(),
            name: "Bash".into(),
            input: json!({ "command": format!("cargo test -p parser case_{seq}"), "description": "run the tests" }),
        },
        2 => AgentEvent::ToolResult {
            call_id: call.clone(),
            ok: !seq.is_multiple_of(7),
            output: format!(
                "running 12 tests\ntest case_{seq} ... ok\n\ntest result: ok. 12 passed; 0 failed\n"
            ),
            exit_code: Some(if !seq.is_multiple_of(7) { 0 } else { 101 }),
            duration_ms: None,
        },
        3 => AgentEvent::Thinking {
            text: "The lexer should not allocate per token; borrow from the input.".into(),
        },
        4 => AgentEvent::Usage {
            model: Some("claude-sonnet-4-5".into()),
            usage: TokenUsage { input: 12, output: 180, cache_read: 3_000, cache_write: 200, reasoning: 0 },
            message_id: Some(format!("msg_{n}_{seq}")),
        },
        6 => AgentEvent::ToolUse {
            call_id: format!("{call}r"),
            name: if seq % 20 == 6 { "Read".into() } else { "Edit".into() },
            input: if seq % 20 == 6 {
                json!({ "file_path": format!("src/module_{}.rs", seq % 50) })
            } else {
                json!({ "file_path": "src/parser.rs", "old_string": "let x = 1;", "new_string": format!("let x = {seq};") })
            },
        },
        7 => AgentEvent::ToolResult {
            call_id: format!("{call}r"),
            ok: true,
            // A read returns the file (about 3 KB, as real reads do: the line overflows its page), an
            // edit a short confirmation.
            output: if seq % 20 == 7 {
                (0..40)
                    .map(|i| {
                        format!("    let field_{i}: Vec<Token> = input.lines().map(parse_line).collect();\n")
                    })
                    .collect()
            } else {
                "The file src/parser.rs has been updated.\n".into()
            },
            exit_code: None,
            duration_ms: Some(3),
        },
        8 if seq % 5_000 == 8 => {
            AgentEvent::Retry { attempt: Some(1), message: "overloaded, retrying in 2 s".into() }
        }
        8 if seq % 9_000 == 18 => AgentEvent::Error { message: "rate limited".into(), fatal: false },
        _ => AgentEvent::TurnEnd { stop_reason: Some("tool_use".into()) },
    };
    let raw = json!({ "type": "bench", "n": n, "seq": seq, "event": serde_json::to_value(&ev).unwrap_or(Value::Null) })
        .to_string();
    (raw, vec![ev])
}

/// A dashboard started as the real binary, with the cookie that opens it.
struct Server {
    child: Child,
    base: String,
    url: String,
    cookie: String,
}

impl Server {
    fn start(bin: &Path, home: &Path) -> Result<Server, String> {
        let mut child = Command::new(bin)
            .args(["ui", "--port", "0", "--no-open", "--json"])
            .env("AMPSM_HOME", home)
            .env_remove("AMPSM_DB_PATH")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let mut first = String::new();
        if let Some(out) = child.stdout.take() {
            BufReader::new(out).read_line(&mut first).map_err(|e| e.to_string())?;
        }
        let v: Value = serde_json::from_str(&first).map_err(|e| format!("ui printed {first:?}: {e}"))?;
        let url = v["url"].as_str().unwrap_or_default().to_string();
        let port = v["port"].as_u64().unwrap_or(0);
        let token = url.split("token=").nth(1).unwrap_or_default().to_string();
        Ok(Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            url,
            cookie: format!("ampsm_token_{port}={token}"),
        })
    }

    /// Peak and current resident memory of the server, in MB (from /proc/<pid>/status).
    fn memory_mb(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let kib = |key: &str| {
            status
                .lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(-1.0)
        };
        (kib("VmHWM:") * 1024.0 / 1e6, kib("VmRSS:") * 1024.0 / 1e6)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one page measured.
struct PageFigures {
    status: u16,
    bytes: usize,
    median_ms: f64,
    p95_ms: f64,
    samples: usize,
    /// The first request on the fresh server (nothing cached yet).
    first_ms: f64,
}

/// GETs `path` 2 + `n` times (at most a minute of measuring, at least 3 requests) over one keep-alive
/// connection; times are from sending the request to the last byte of the body.
fn measure_page(server: &Server, path: &str, n: usize) -> Result<PageFigures, String> {
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(120)).redirects(0).build();
    let url = format!("{}{path}", server.base);
    let mut samples = Vec::new();
    let (mut status, mut bytes, mut first_ms) = (0u16, 0usize, 0.0);
    let begun = Instant::now();
    for i in 0..n + 2 {
        let start = Instant::now();
        let resp = match agent.get(&url).set("Cookie", &server.cookie).call() {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => return Err(format!("GET {path}: {e}")),
        };
        status = resp.status();
        let mut body = Vec::new();
        resp.into_reader().read_to_end(&mut body).map_err(|e| format!("GET {path}: {e}"))?;
        let took = start.elapsed();
        bytes = body.len();
        if i == 0 {
            first_ms = ms(took);
        }
        if i >= 2 {
            samples.push(took);
        }
        if samples.len() >= 3 && begun.elapsed() > Duration::from_secs(60) {
            break;
        }
    }
    let count = samples.len();
    let (median, p95) = median_p95(&mut samples);
    Ok(PageFigures { status, bytes, median_ms: ms(median), p95_ms: ms(p95), samples: count, first_ms })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Plain WebDriver over HTTP: chromedriver and one headless Chromium session.
struct Driver {
    child: Child,
    base: String,
    session: String,
    _profile: tempfile::TempDir,
}

fn wd(method: &str, url: &str, body: Option<Value>) -> Result<Value, String> {
    let req = ureq::request(method, url).timeout(Duration::from_secs(600));
    let resp = match body {
        Some(b) => req.send_json(b),
        None => req.call(),
    };
    match resp {
        Ok(r) => r.into_json().map_err(|e| e.to_string()),
        Err(ureq::Error::Status(code, r)) => {
            Err(format!("WebDriver {method} {url}: {code} {}", r.into_string().unwrap_or_default()))
        }
        Err(e) => Err(format!("WebDriver {method} {url}: {e}")),
    }
}

impl Driver {
    fn start() -> Result<Driver, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start chromedriver: {e}"))?;
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while ureq::get(&format!("{base}/status")).call().is_err() {
            if Instant::now() > deadline {
                return Err("chromedriver did not start".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
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
        let v = wd("POST", &format!("{base}/session"), Some(caps))?;
        let session = v["value"]["sessionId"].as_str().ok_or("no WebDriver session")?.to_string();
        // A frozen tab answers a script late, not never: wait up to 5 minutes before calling it hung.
        let timeouts = json!({ "script": 300_000, "pageLoad": 300_000 });
        wd("POST", &format!("{base}/session/{session}/timeouts"), Some(timeouts))?;
        Ok(Driver { child, base, session, _profile: profile })
    }

    fn url(&self, tail: &str) -> String {
        format!("{}/session/{}{tail}", self.base, self.session)
    }

    fn goto(&self, url: &str) -> Result<(), String> {
        wd("POST", &self.url("/url"), Some(json!({ "url": url }))).map(|_| ())
    }

    fn script(&self, js: &str) -> Result<Value, String> {
        Ok(wd("POST", &self.url("/execute/sync"), Some(json!({ "script": js, "args": [] })))?["value"]
            .clone())
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = ureq::delete(&self.url("")).call();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The input-latency probe: every 50 ms a key event is dispatched on a text field of its own; its handler
/// records how late it ran compared with when it was due (a busy main thread delays it).
const PROBE: &str = r#"
const box = document.createElement('input');
box.setAttribute('aria-label', 'latency probe');
box.style.cssText = 'position:fixed;left:-100px;top:0;width:10px';
document.body.appendChild(box);
window.__lat = [];
let due = performance.now() + 50;
box.addEventListener('keydown', (ev) => { window.__lat.push(performance.now() - ev.detailDue); });
function tick() {
  const ev = new KeyboardEvent('keydown', { key: 'a', bubbles: true });
  ev.detailDue = due;
  box.dispatchEvent(ev);
  due += 50;
  const now = performance.now();
  if (due < now) { due = now + 50; }
  setTimeout(tick, Math.max(0, due - performance.now()));
}
setTimeout(tick, 50);
return true;
"#;

const READ_PROBE: &str = r#"
const l = (window.__lat || []).slice().sort((a, b) => a - b);
const p95 = l.length ? l[Math.min(l.length - 1, Math.ceil(l.length * 0.95) - 1)] : -1;
return { n: l.length, worst: l.length ? l[l.length - 1] : -1, p95: p95,
         nodes: document.getElementsByTagName('*').length, url: location.pathname };
"#;

/// The conversation page in Chromium while 20,000 events are appended to the big session; prints the
/// probe's figures and whether the input-latency target (≤ 200 ms) was met.
fn browser_burst(bin: &Path, home: &Path, big: &Big) -> Result<bool, String> {
    let server = Server::start(bin, home)?;
    let driver = Driver::start()?;
    let path = format!("/s/{}/interactive", big.id.as_str());
    let load = Instant::now();
    driver.goto(&format!("{}{path}?{}", server.base, server.url.split('?').nth(1).unwrap_or_default()))?;
    println!(
        "  page loaded in Chromium in {:.0} ms (navigation, as WebDriver waits for it)",
        ms(load.elapsed())
    );
    driver.script(PROBE)?;
    // Two seconds of the idle page first: the probe's own floor on this machine.
    std::thread::sleep(Duration::from_secs(2));
    let before = driver.script(READ_PROBE)?;
    println!(
        "  idle page for 2 s: input latency worst {:.1} ms, p95 {:.1} ms over {} samples; DOM nodes {}",
        before["worst"].as_f64().unwrap_or(-1.0),
        before["p95"].as_f64().unwrap_or(-1.0),
        before["n"],
        before["nodes"]
    );
    driver.script("window.__lat = []; return true;")?;
    // The burst: a new run whose 20,000 lines are written in batches of 250 every 25 ms.
    let mut store = Store::open(&home.join("sessions.db")).map_err(|e| e.to_string())?;
    let sid = big.id.clone();
    let burst = std::thread::spawn(move || -> Result<Duration, String> {
        let t = Instant::now();
        append_run(
            &mut store,
            &sid,
            BIG_ITERATIONS,
            BURST_EVENTS,
            Some(Duration::from_millis(25)),
            IterationOutcome::Success,
        )?;
        Ok(t.elapsed())
    });
    let took = burst.join().map_err(|_| "the burst thread panicked".to_string())??;
    println!("  {BURST_EVENTS} events appended in {:.1} s", took.as_secs_f64());
    // Let the page catch up: wait until its DOM stops changing for 3 s (at most 5 minutes).
    let settle = Instant::now();
    let mut last = -1i64;
    let mut stable_since = Instant::now();
    loop {
        let v = match driver.script(READ_PROBE) {
            Ok(v) => v,
            Err(e) => {
                println!("  the tab did not answer a script within 5 minutes: {e}");
                report("  input latency worst", 300_000.0, "ms", 200.0, true);
                return Ok(false);
            }
        };
        let nodes = v["nodes"].as_i64().unwrap_or(-1);
        if nodes != last {
            last = nodes;
            stable_since = Instant::now();
        }
        if stable_since.elapsed() > Duration::from_secs(3) || settle.elapsed() > Duration::from_secs(300) {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let v = driver.script(READ_PROBE)?;
    let (hwm, rss) = server.memory_mb();
    println!("  probe samples: {} (one key event due every 50 ms)", v["n"]);
    let worst = report("  input latency worst", v["worst"].as_f64().unwrap_or(-1.0), "ms", 200.0, true);
    println!("  input latency p95: {:.1} ms", v["p95"].as_f64().unwrap_or(-1.0));
    println!("  DOM nodes after the burst: {} (page {})", v["nodes"], v["url"]);
    println!("  server peak RSS (VmHWM) {hwm:.1} MB, after (VmRSS) {rss:.1} MB; session {}", big.name);
    Ok(worst)
}

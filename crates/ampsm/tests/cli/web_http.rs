//! HTTP checks: the token, cookie, Host, Origin and CSRF rules; the new-session form against `list`; the
//! overview against `metrics`; downloads against `export`; the live streams of a running iteration; the
//! git view's actions; batches; settings without secrets; Ctrl-C.

use crate::support::World;
use crate::web_support::{Dashboard, agent, metric, send, slow_scenario};
use ampsm_testutils::scenario_path;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

#[test]
fn token_cookie_host_origin_and_csrf_are_enforced() {
    let w = World::new();
    let d = Dashboard::start(&w);
    let base = d.base();

    // No token, a wrong token, a wrong cookie: 401.
    assert_eq!(send(agent().get(&format!("{base}/")), None).status, 401);
    assert_eq!(send(agent().get(&format!("{base}/?token=00{}", &d.token[2..])), None).status, 401);
    let wrong = format!("ampsm_token_{}=nope", d.port);
    assert_eq!(send(agent().get(&format!("{base}/settings")).set("Cookie", &wrong), None).status, 401);
    assert_eq!(send(agent().get(&format!("{base}/live?topic=sessions")), None).status, 401);

    // The token sets an HttpOnly SameSite=Strict cookie and is dropped from the URL.
    let r = send(agent().get(&d.url), None);
    assert_eq!(r.status, 303);
    assert_eq!(r.location.as_deref(), Some("/"));
    let cookie = r.set_cookie.unwrap();
    assert!(cookie.starts_with(&d.cookie()), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let r = send(agent().get(&format!("{}&x=1", d.url.replace("/?", "/batches?"))), None);
    assert_eq!(r.location.as_deref(), Some("/batches?x=1"));
    assert_eq!(d.get("/").status, 200);

    // Host must be this server (DNS rebinding): 403 even with a valid cookie.
    for host in ["evil.example:80".to_string(), format!("evil.example:{}", d.port), "127.0.0.1".into()] {
        let r = send(agent().get(&format!("{base}/")).set("Cookie", &d.cookie()).set("Host", &host), None);
        assert_eq!(r.status, 403, "Host {host}");
    }
    let r = send(
        agent()
            .get(&format!("{base}/"))
            .set("Cookie", &d.cookie())
            .set("Host", &format!("localhost:{}", d.port)),
        None,
    );
    assert_eq!(r.status, 200);

    // POSTs: a foreign Origin, no Origin or Referer, no CSRF token, a wrong one: 403, and nothing created.
    let csrf = d.csrf();
    let fields = |c: &str| {
        vec![("csrf", c.to_string()), ("repo", w.repo_arg().to_string()), ("name", "nope".to_string())]
    };
    let post = |origin: Option<&str>, referer: Option<&str>, f: Vec<(&str, String)>| {
        let mut req = agent().post(&format!("{base}/sessions")).set("Cookie", &d.cookie());
        if let Some(o) = origin {
            req = req.set("Origin", o);
        }
        if let Some(r) = referer {
            req = req.set("Referer", r);
        }
        let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
        send(req, Some(&f)).status
    };
    assert_eq!(post(Some("http://evil.example"), None, fields(&csrf)), 403);
    assert_eq!(post(Some(&format!("http://127.0.0.1:{}", d.port + 1)), None, fields(&csrf)), 403);
    assert_eq!(post(None, Some("http://evil.example/"), fields(&csrf)), 403);
    assert_eq!(post(None, None, fields(&csrf)), 403);
    let no_csrf: Vec<(&str, String)> = fields(&csrf).into_iter().skip(1).collect();
    assert_eq!(post(Some(base.as_str()), None, no_csrf), 403);
    assert_eq!(post(Some(base.as_str()), None, fields(&"0".repeat(64))), 403);
    // Without the cookie, even with the CSRF token: 401.
    let f: Vec<(&str, String)> = fields(&csrf);
    let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = send(agent().post(&format!("{base}/sessions")).set("Origin", &base), Some(&f));
    assert_eq!(r.status, 401);
    assert_eq!(w.json(&["list"]).as_array().unwrap().len(), 0);

    // Same origin (by Origin, or by Referer alone) with the CSRF token passes.
    assert_eq!(post(None, Some(format!("{base}/").as_str()), fields(&csrf)), 303);
    assert_eq!(w.json(&["list"]).as_array().unwrap().len(), 1);

    // The listener is on loopback only.
    assert!(d.url.starts_with("http://127.0.0.1:"));
    let status = d.stop();
    assert!(status.success(), "exit status after Ctrl-C: {status}");
}

#[test]
fn new_session_form_creates_a_session_and_keeps_values_on_error() {
    let w = World::new();
    let d = Dashboard::start(&w);
    // An engine error: one line on the page, the values kept.
    let missing = w.dir.path().join("not-a-repo");
    let r = d.post(
        "/sessions",
        &[
            ("repo", missing.to_str().unwrap()),
            ("name", "kept-name"),
            ("prompt", "kept prompt text"),
            ("script", "make check"),
        ],
    );
    assert_eq!(r.status, 422);
    let errors: Vec<&str> = r.body.split("<div class=\"err\" role=\"alert\">").skip(1).collect();
    assert_eq!(errors.len(), 1, "{}", r.body);
    let line = &errors[0][..errors[0].find("</div>").unwrap()];
    assert!(line.contains("not a git repository"), "{line}");
    assert!(!line.contains('\n'));
    for kept in ["kept-name", "kept prompt text", "make check", missing.to_str().unwrap()] {
        assert!(r.body.contains(kept), "{kept} not kept");
    }
    // A bad base names the suggestions, also in one line.
    let r = d.post("/sessions", &[("repo", w.repo_arg()), ("name", "x"), ("base", "mian")]);
    assert_eq!(r.status, 422);
    assert!(r.body.contains("base &quot;mian&quot; does not name a branch"), "{}", r.body);
    assert!(r.body.contains("did you mean: main?"));

    let r = d.post(
        "/sessions",
        &[
            ("repo", w.repo_arg()),
            ("name", "from-the-form"),
            ("agent", "offline"),
            ("model", "smart"),
            ("script", "true"),
            ("budget", "2.5"),
            ("prompt", "Do the thing"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let list = w.json(&["list"]);
    let s = &list.as_array().unwrap()[0];
    assert_eq!(s["name"], "from-the-form");
    assert_eq!(s["agent"], "offline");
    assert_eq!(s["model"], "smart");
    assert_eq!(s["script"], "true");
    assert_eq!(s["prompt"], "Do the thing");
    assert_eq!(s["budget_usd"], 2.5);
    let id = s["id"].as_str().unwrap();
    assert_eq!(r.location.unwrap(), format!("/s/{id}?done=created"));
    let page = d.get("/").body;
    assert!(page.contains(&format!("data-session=\"{id}\"")));
    assert!(page.contains("from-the-form"));

    // Uncommitted work makes removal refuse (one line, 409); forced, it is snapshotted and removed.
    let wt = std::path::PathBuf::from(s["worktree_path"].as_str().unwrap());
    std::fs::write(wt.join("draft.txt"), "unsaved\n").unwrap();
    let r = d.post(&format!("/s/{id}/remove"), &[]);
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("uncommitted changes in 1 file"), "{}", r.body);
    assert_eq!(w.json(&["list"]).as_array().unwrap().len(), 1);
    let r = d.post(&format!("/s/{id}/remove"), &[("force", "on")]);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location.as_deref(), Some("/?done=removed"));
    assert_eq!(w.json(&["list"]).as_array().unwrap().len(), 0);
    assert_eq!(w.json(&["show", id])["snapshots"].as_array().unwrap().len(), 1);
}

#[test]
fn a_configured_setup_runs_in_the_background_after_the_form_returns() {
    let w = World::new();
    w.ok(&["config", "set", "session.setup", "sleep 2; echo ready > setup-done.txt"]);
    let d = Dashboard::start(&w);
    let started = Instant::now();
    let r = d.post("/sessions", &[("repo", w.repo_arg()), ("name", "prepared")]);
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(started.elapsed() < Duration::from_secs(2), "the form waited for the setup");
    let s = w.json(&["show", "prepared"]);
    let id = s["session"]["id"].as_str().unwrap();
    assert_eq!(r.location.unwrap(), format!("/s/{id}?done=setup"));
    let page = d.get(&format!("/s/{id}?done=setup")).body;
    assert!(page.contains("its setup command is running"), "{page}");
    let wt = std::path::PathBuf::from(s["session"]["worktree_path"].as_str().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = w.json(&["show", "prepared"]);
        let note = now["session"]["status_note"].as_str().unwrap_or_default().to_string();
        if now["session"]["status"] == "idle" && note.starts_with("setup `sleep 2;") {
            break;
        }
        assert!(Instant::now() < deadline, "the setup did not finish: {now}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(std::fs::read_to_string(wt.join("setup-done.txt")).unwrap(), "ready\n");

    // A setup typed in the form is run instead of the configured one.
    let r =
        d.post("/sessions", &[("repo", w.repo_arg()), ("name", "own"), ("setup", "echo mine > mine.txt")]);
    assert_eq!(r.status, 303, "{}", r.body);
    let wt = std::path::PathBuf::from(w.json(&["show", "own"])["session"]["worktree_path"].as_str().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    // Idle with the setup's note: the setup ran (the session is idle for a moment before it starts, too).
    while !w.json(&["show", "own"])["session"]["status_note"]
        .as_str()
        .is_some_and(|n| n.starts_with("setup `echo mine"))
    {
        assert!(Instant::now() < deadline, "the setup did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(wt.join("mine.txt").exists() && !wt.join("setup-done.txt").exists());
}

fn without_exported_at(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("exported_at");
    }
    v
}

#[test]
fn overview_equals_metrics_and_downloads_equal_exports() {
    let w = World::with_claude(&scenario_path("claude_timed"));
    let d = Dashboard::start(&w);
    let r = d.post(
        "/sessions",
        &[
            ("repo", w.repo_arg()),
            ("name", "measured"),
            ("agent", "claude"),
            ("prompt", "Write notes"),
            ("run", "on"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let id = w.json(&["list"])[0]["id"].as_str().unwrap().to_string();
    assert_eq!(r.location.unwrap(), format!("/s/{id}?done=started"));
    let m = w.wait_idle(&id, 1);
    assert_eq!(m["iterations"][0]["outcome"], "success", "{m}");

    // The JSON behind the overview is what `metrics --json` prints.
    let web: Value = serde_json::from_str(&d.get(&format!("/s/{id}/metrics.json")).body).unwrap();
    assert_eq!(web, w.json(&["metrics", &id]));

    // And the page shows the same numbers.
    let page = d.get(&format!("/s/{id}")).body;
    let t = &m["tokens"];
    assert_eq!(metric(&page, "tokens-input"), t["input"].to_string());
    assert_eq!(metric(&page, "tokens-output"), t["output"].to_string());
    assert_eq!(metric(&page, "tokens-cache-read"), t["cache_read"].to_string());
    assert_eq!(metric(&page, "tokens-cache-write"), t["cache_write"].to_string());
    assert_eq!(metric(&page, "iterations"), "1");
    assert_eq!(metric(&page, "tool-calls"), m["tool_calls"].to_string());
    assert_eq!(metric(&page, "cost"), format!("${:.4}", m["cost"]["usd"].as_f64().unwrap()));
    assert_eq!(metric(&page, "tokens-per-sec"), format!("{:.1}", m["tokens_per_sec"].as_f64().unwrap()));
    assert_eq!(metric(&page, "cost-per-min"), format!("${:.4}", m["cost_per_min"].as_f64().unwrap()));
    let f = &m["files"];
    assert_eq!(
        metric(&page, "files-changed"),
        format!("{} +{} −{}", f["files_changed"], f["lines_added"], f["lines_removed"])
    );
    for tool in m["tools"].as_array().unwrap() {
        assert!(page.contains(&format!(
            "<td>{}</td><td class=\"n\">{}</td>",
            tool["name"].as_str().unwrap(),
            tool["count"]
        )));
    }
    assert!(page.contains("<svg"), "charts");
    for e in w.json(&["timeline", &id])["entries"].as_array().unwrap() {
        let summary = e["summary"]
            .as_str()
            .unwrap()
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;");
        assert!(page.contains(&summary), "timeline entry {summary} missing");
    }

    // Downloads go through the export engine: the same documents as the CLI's.
    let json = d.get(&format!("/export?session={id}&format=json"));
    assert_eq!(json.status, 200);
    assert!(json.disposition.unwrap().contains("attachment"));
    let cli: Value = serde_json::from_str(&w.ok(&["export", "--session", &id, "--format", "json"])).unwrap();
    assert_eq!(without_exported_at(serde_json::from_str(&json.body).unwrap()), without_exported_at(cli));
    let jsonl = d.get(&format!("/export?session={id}&format=jsonl")).body;
    let cli = w.ok(&["export", "--session", &id, "--format", "jsonl"]);
    let lines = |t: &str| -> Vec<Value> {
        t.lines().map(|l| without_exported_at(serde_json::from_str(l).unwrap())).collect()
    };
    assert_eq!(lines(&jsonl), lines(&cli));
    let csv_page = d.get(&format!("/export?session={id}&format=csv")).body;
    let out = w.dir.path().join("csv-out");
    w.ok(&["export", "--session", &id, "--format", "csv", "--out", out.to_str().unwrap()]);
    let mut tables = 0;
    for f in std::fs::read_dir(&out).unwrap() {
        let name = f.unwrap().file_name().to_string_lossy().into_owned();
        let table = name.strip_suffix(".csv").unwrap();
        assert!(csv_page.contains(&format!("table={table}")), "no link for {table}");
        let got = d.get(&format!("/export?session={id}&format=csv&table={table}"));
        assert_eq!(got.status, 200);
        assert!(got.content_type.unwrap().starts_with("text/csv"));
        assert_eq!(got.body, std::fs::read_to_string(out.join(&name)).unwrap(), "{table}");
        tables += 1;
    }
    assert!(tables >= 3);
    assert_eq!(d.get(&format!("/export?session={id}&format=csv&table=nope")).status, 404);
    assert_eq!(d.get(&format!("/export?session={id}&format=xml")).status, 400);
}

/// Reads SSE events (`event`, `data`) from a stream until `stop` says so or the deadline passes.
pub fn read_events(
    reader: impl std::io::Read,
    deadline: Instant,
    mut on_event: impl FnMut(&str, &str) -> bool,
) {
    let mut r = BufReader::new(reader);
    let mut event = String::new();
    let mut data = String::new();
    let mut line = String::new();
    while Instant::now() < deadline {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            if !event.is_empty() && on_event(&event, &data) {
                return;
            }
            event.clear();
            data.clear();
        } else if let Some(v) = l.strip_prefix("event:") {
            event = v.trim().to_string();
        } else if let Some(v) = l.strip_prefix("data:") {
            data.push_str(v.trim_start());
        }
    }
}

#[test]
fn sse_streams_deliver_the_events_of_a_running_iteration() {
    let dir = tempfile::tempdir().unwrap();
    let scen = slow_scenario(dir.path(), 4_000);
    let w = World::with_claude(&scen);
    let d = Dashboard::start(&w);
    let s = w.json(&["new", "--repo", w.repo_arg(), "--name", "live", "--agent", "claude", "--prompt", "Go"]);
    let id = s["id"].as_str().unwrap().to_string();

    // Subscribe before anything runs: the feed and the live topic of the session.
    let feed = agent().get(&format!("{}/s/{id}/feed", d.base())).set("Cookie", &d.cookie()).call().unwrap();
    assert!(feed.content_type().starts_with("text/event-stream"));
    let live = agent()
        .get(&format!("{}/live?topic=session:{id}", d.base()))
        .set("Cookie", &d.cookie())
        .call()
        .unwrap();
    let live_thread = std::thread::spawn(move || {
        let mut changes = 0;
        read_events(live.into_reader(), Instant::now() + Duration::from_secs(60), |ev, _| {
            if ev == "change" {
                changes += 1;
            }
            changes >= 1
        });
        changes
    });

    // Send a message from the Interactive view: one iteration on a background thread of the server.
    let r = d.post(&format!("/s/{id}/message"), &[("prompt", "Write the notes please")]);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location.unwrap(), format!("/s/{id}/interactive?done=sent"));

    let mut seen_while_running = false;
    let mut texts: Vec<String> = Vec::new();
    let w_ref = &w;
    read_events(feed.into_reader(), Instant::now() + Duration::from_secs(60), |ev, data| {
        assert_ne!(ev, "error", "{data}");
        if ev != "line" {
            return false;
        }
        let v: Value = serde_json::from_str(data).unwrap();
        for it in v["items"].as_array().unwrap() {
            texts.push(it["text"].as_str().unwrap().to_string());
        }
        if !seen_while_running && texts.len() == 1 {
            // The first line arrives while the agent still works (it pauses 4 s after it).
            seen_while_running = w_ref.json(&["show", &id])["session"]["status"] == "running";
        }
        // The run's last line: `result success: …`.
        texts.iter().any(|t| t.starts_with("result "))
    });
    assert!(seen_while_running, "the first event did not arrive while the iteration ran: {texts:?}");
    assert!(texts.iter().any(|t| t.contains("Write")), "{texts:?}");
    assert!(texts.iter().any(|t| t.starts_with("tool_result") && t.contains(" ok ")), "{texts:?}");
    assert_eq!(live_thread.join().unwrap(), 1);
    let m = w.wait_idle(&id, 1);
    assert_eq!(m["iterations"][0]["outcome"], "success", "{m}");
    // The page shows what the feed streamed, and the tool calls with their results.
    let page = d.get(&format!("/s/{id}/interactive")).body;
    assert!(page.contains("Tool calls (4)"), "{page}");
    // A second message continues the agent's thread.
    let r = d.post(&format!("/s/{id}/message"), &[("prompt", "And once more")]);
    assert_eq!(r.status, 303);
    let m = w.wait_idle(&id, 2);
    assert_eq!(m["iterations_count"], 2);
    let its = w.json(&["usage", &id]);
    assert!(its["usage"].as_array().unwrap().len() >= 2, "{its}");
}

#[test]
fn git_view_stages_commits_previews_and_merges() {
    let w = World::new();
    let d = Dashboard::start(&w);
    let s = w.json(&["new", "--repo", w.repo_arg(), "--name", "gitty"]);
    let id = s["id"].as_str().unwrap().to_string();
    let wt = std::path::PathBuf::from(s["worktree_path"].as_str().unwrap());
    std::fs::write(wt.join("new.txt"), "hello\n").unwrap();
    let page = d.get(&format!("/s/{id}/git")).body;
    assert!(page.contains("new.txt"), "untracked file listed");

    let r = d.post(&format!("/s/{id}/git/stage"), &[("path", "new.txt")]);
    assert_eq!(r.status, 303, "{}", r.body);
    let st = w.json(&["status", &id]);
    assert_eq!(st["staged"][0]["path"], "new.txt", "{st}");
    let r = d.post(&format!("/s/{id}/git/unstage"), &[("all", "1")]);
    assert_eq!(r.status, 303);
    assert_eq!(w.json(&["status", &id])["staged"].as_array().unwrap().len(), 0);
    d.post(&format!("/s/{id}/git/stage"), &[("all", "1")]);
    let r = d.post(&format!("/s/{id}/git/commit"), &[("message", "Add new.txt")]);
    assert_eq!(r.status, 303, "{}", r.body);
    let log = w.json(&["log", &id]);
    assert_eq!(log[0]["subject"], "Add new.txt", "{log}");
    let page = d.get(&format!("/s/{id}/git")).body;
    assert!(page.contains("+hello"), "the diff shows the added line");

    // An empty commit message: one error line, status 4xx.
    let r = d.post(&format!("/s/{id}/git/commit"), &[("message", " ")]);
    assert!(r.status >= 400 && r.status < 500, "{}", r.status);
    assert!(r.body.contains("the commit message is empty"));

    // Merge: a preview first, nothing changes; then the merge.
    let base_before = ampsm_testutils::git(&w.repo, &["rev-parse", "main"]);
    let r = d.post(&format!("/s/{id}/git/merge-preview"), &[("strategy", "squash")]);
    assert_eq!(r.status, 200);
    assert!(r.body.contains("the merge would go ahead"), "{}", r.body);
    assert!(r.body.contains("id=\"merge-confirm\""));
    assert_eq!(ampsm_testutils::git(&w.repo, &["rev-parse", "main"]), base_before);
    let r = d
        .post(&format!("/s/{id}/git/merge"), &[("strategy", "squash"), ("message", "Squashed from the web")]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Merged gitty into"), "{}", r.body);
    assert_ne!(ampsm_testutils::git(&w.repo, &["rev-parse", "main"]), base_before);
    assert_eq!(
        ampsm_testutils::git(&w.repo, &["log", "-1", "--format=%s", "main"]).trim(),
        "Squashed from the web"
    );

    // Undo restores the last snapshot.
    let r = d.post(&format!("/s/{id}/git/undo"), &[]);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(d.post(&format!("/s/{id}/git/nope"), &[]).status, 404);
}

#[test]
fn batches_start_from_pasted_yaml_show_progress_and_export() {
    let w = World::with_claude(&scenario_path("claude"));
    let d = Dashboard::start(&w);
    let yaml = format!(
        "name: web-batch\nrepos:\n  - path: {}\nitems:\n  - name: one\n    prompt: first\n    agent: claude\n  - name: two\n    prompt: second\n    agent: claude\nconcurrency: 2\n",
        w.repo_arg()
    );
    // A dry run shows the plan and starts nothing.
    let r = d.post("/batches", &[("yaml", &yaml), ("dry_run", "on")]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("id=\"plan\"") && r.body.contains("2 run(s)"), "{}", r.body);
    assert_eq!(w.json(&["batch", "list"]).as_array().unwrap().len(), 0);
    // An unknown field: the YAML error in one line, the text kept.
    let r = d.post("/batches", &[("yaml", "name: x\nrepos: []\nitems: []\nbogus: 1\n")]);
    assert!(r.status >= 400, "{}", r.status);
    assert!(r.body.contains("bogus"), "{}", r.body);

    let r = d.post("/batches", &[("yaml", &yaml)]);
    assert_eq!(r.status, 303, "{}", r.body);
    let loc = r.location.unwrap();
    let id = loc.trim_start_matches("/batches/").split('?').next().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(90);
    let view = loop {
        let v = w.json(&["batch", "status", &id]);
        if v["status"] == "completed" || v["status"] == "failed" {
            break v;
        }
        assert!(Instant::now() < deadline, "batch did not finish: {v}");
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(view["counts"]["passed"], 2, "{view}");
    let page = d.get(&loc).body;
    assert!(page.contains("2/2 done"), "{page}");
    assert!(d.get("/batches").body.contains("web-batch"));
    let got: Value = serde_json::from_str(&d.get(&format!("/export?batch={id}&format=json")).body).unwrap();
    let cli: Value = serde_json::from_str(&w.ok(&["export", "--batch", &id, "--format", "json"])).unwrap();
    assert_eq!(without_exported_at(got), without_exported_at(cli));
}

#[test]
fn settings_show_config_and_doctor_but_no_secrets() {
    let w = World::new();
    std::fs::create_dir_all(w.home()).unwrap();
    std::fs::write(
        w.home().join("config.yaml"),
        "agents:\n  claude:\n    env:\n      ANTHROPIC_API_KEY: sk-ant-very-secret-value\nui:\n  theme: light\n",
    )
    .unwrap();
    let d = Dashboard::start(&w);
    let page = d.get("/settings").body;
    assert!(!page.contains("sk-ant-very-secret-value"), "a secret reached the page");
    assert!(page.contains("agents.claude.env"), "{page}");
    assert!(page.contains("id=\"doctor\"") && page.contains("database"));
    assert!(page.contains("id=\"agents\""));
    assert!(page.contains("#fbf1c7"), "the light theme");
}

#[test]
fn benchmarks_start_show_compare_and_export() {
    let w = World::with_claude(&scenario_path("claude_timed"));
    let d = Dashboard::start(&w);
    let yaml = |name: &str| {
        format!(
            "name: {name}\nagents: [claude]\nproblems:\n  - id: notes\n    repo: {}\n    prompt: Write the notes\n    test: \"test -f NOTES.md\"\n",
            w.repo_arg()
        )
    };
    let r = d.post("/bench", &[("yaml", &yaml("suite-a")), ("dry_run", "on")]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("id=\"plan\"") && r.body.contains("1 result(s)"), "{}", r.body);
    let bad = d.post("/bench", &[("yaml", "name: x\nagents: [gpt]\nproblems: []\n")]);
    assert!(bad.status >= 400, "{}", bad.status);
    assert!(bad.body.contains("unknown agent"), "{}", bad.body);

    let mut ids = Vec::new();
    for name in ["suite-a", "suite-b"] {
        let r = d.post("/bench", &[("yaml", &yaml(name))]);
        assert_eq!(r.status, 303, "{}", r.body);
        let id = r.location.unwrap().trim_start_matches("/bench/").split('?').next().unwrap().to_string();
        let deadline = Instant::now() + Duration::from_secs(90);
        let v = loop {
            let v = w.json(&["bench", "show", &id]);
            if v["status"] != "running" && v["status"] != "queued" {
                break v;
            }
            assert!(Instant::now() < deadline, "bench run did not finish: {v}");
            std::thread::sleep(Duration::from_millis(300));
        };
        assert_eq!(v["status"], "completed", "{v}");
        assert_eq!(v["counts"]["resolved"], 1, "{v}");
        let page = d.get(&format!("/bench/{id}")).body;
        assert!(page.contains("data-rate=\"claude\">100 %"), "{page}");
        let cost = v["summary"][0]["cost_usd"].as_f64().unwrap();
        assert!(page.contains(&format!("${cost:.4}")), "{page}");
        ids.push(id);
    }
    let list = d.get("/bench").body;
    assert!(list.contains("suite-a") && list.contains("suite-b") && list.contains("id=\"compare-form\""));
    let cmp = d.get(&format!("/bench/compare?a={}&b={}", ids[0], ids[1]));
    assert_eq!(cmp.status, 200);
    assert!(
        cmp.body.contains("id=\"bench-compare\"") && cmp.body.contains("<td>claude</td>"),
        "{}",
        cmp.body
    );
    let got: Value =
        serde_json::from_str(&d.get(&format!("/export?bench={}&format=json", ids[0])).body).unwrap();
    let cli: Value =
        serde_json::from_str(&w.ok(&["export", "--bench", &ids[0], "--format", "json"])).unwrap();
    assert_eq!(without_exported_at(got), without_exported_at(cli));
}

#[test]
fn ctrl_c_stops_the_agents_the_dashboard_started_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let scen = slow_scenario(dir.path(), 120_000);
    let w = World::with_claude(&scen);
    let d = Dashboard::start(&w);
    let r = d.post(
        "/sessions",
        &[
            ("repo", w.repo_arg()),
            ("name", "long"),
            ("agent", "claude"),
            ("prompt", "Take your time"),
            ("run", "on"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let id = w.json(&["list"])[0]["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    let agent_pid = loop {
        let s = w.json(&["show", &id]);
        if let Some(pid) = s["session"]["agent_pid"].as_i64() {
            break pid;
        }
        assert!(Instant::now() < deadline, "the agent did not start: {s}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let started = Instant::now();
    let status = d.stop();
    assert!(status.success(), "{status}");
    assert!(started.elapsed() < Duration::from_secs(20));
    let alive =
        std::process::Command::new("kill").args(["-0", &agent_pid.to_string()]).status().unwrap().success();
    assert!(!alive, "the agent (pid {agent_pid}) outlived the dashboard");
    let s = w.json(&["show", &id]);
    assert_eq!(s["session"]["status"], "error", "{s}");
    assert!(s["session"]["status_note"].as_str().unwrap().contains("killed by signal"), "{s}");
}

#[test]
fn git_view_reports_conflicts_per_file_and_rebase_resolves_them() {
    use ampsm_testutils::git;
    let w = World::new();
    std::fs::write(w.repo.join("shared.txt"), "line 1\nline 2\nline 3\n").unwrap();
    git(&w.repo, &["add", "shared.txt"]);
    git(&w.repo, &["commit", "-q", "-m", "shared"]);
    let d = Dashboard::start(&w);
    let s = w.json(&["new", "--repo", w.repo_arg(), "--name", "feat"]);
    let id = s["id"].as_str().unwrap().to_string();
    let wt = std::path::PathBuf::from(s["worktree_path"].as_str().unwrap());
    std::fs::write(wt.join("shared.txt"), "line 1\nsession line 2\nline 3\n").unwrap();
    git(&wt, &["commit", "-q", "-am", "amp: edit shared"]);
    std::fs::write(w.repo.join("shared.txt"), "line 1\nbase line 2\nline 3\n").unwrap();
    git(&w.repo, &["commit", "-q", "-am", "base edit"]);
    let main_before = git(&w.repo, &["rev-parse", "main"]);

    // The preview names the file and offers no merge button; the merge itself is refused with guidance.
    let r = d.post(&format!("/s/{id}/git/merge-preview"), &[("strategy", "squash")]);
    assert_eq!(r.status, 200);
    assert!(r.body.contains("the merge would be refused"), "{}", r.body);
    assert!(r.body.contains("Conflicting files") && r.body.contains("<code>shared.txt</code>"), "{}", r.body);
    assert!(!r.body.contains("id=\"merge-confirm\""));
    let r = d.post(&format!("/s/{id}/git/merge"), &[("strategy", "squash")]);
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.body.contains("would conflict in: shared.txt") && r.body.contains("amp-sessions rebase"),
        "{}",
        r.body
    );
    assert_eq!(git(&w.repo, &["rev-parse", "main"]), main_before);

    // Rebase stops on the conflict: the file, the next steps, and continue/abort on the page.
    let r = d.post(&format!("/s/{id}/git/rebase"), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("The rebase stopped on conflicts in:"), "{}", r.body);
    assert!(r.body.contains("--continue"), "{}", r.body);
    let page = d.get(&format!("/s/{id}/git")).body;
    assert!(page.contains("A rebase is in progress") && page.contains("Continue rebase"), "{page}");
    // Continue refuses while markers remain; resolved and staged, it completes.
    let r = d.post(&format!("/s/{id}/git/rebase-continue"), &[]);
    assert!(r.status >= 400 && r.body.contains("conflict markers are still in: shared.txt"), "{}", r.body);
    std::fs::write(wt.join("shared.txt"), "line 1\nbase and session line 2\nline 3\n").unwrap();
    assert_eq!(d.post(&format!("/s/{id}/git/stage"), &[("path", "shared.txt")]).status, 303);
    let r = d.post(&format!("/s/{id}/git/rebase-continue"), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Rebased onto"), "{}", r.body);
    let r = d.post(&format!("/s/{id}/git/merge-preview"), &[("strategy", "rebase")]);
    assert!(r.body.contains("the merge would go ahead"), "{}", r.body);
    assert_eq!(git(&w.repo, &["rev-parse", "main"]), main_before, "a preview changed main");
}

/// Interrupts (then kills) a dashboard child when a test ends early.
struct Guard(std::process::Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn ui_port_from_config_and_the_browser_opener() {
    let w = World::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    std::fs::create_dir_all(w.home()).unwrap();
    std::fs::write(w.home().join("config.yaml"), format!("ui:\n  port: {port}\n")).unwrap();
    // A stand-in for xdg-open records what it was asked to open.
    let bin = w.dir.path().join("opener");
    std::fs::create_dir_all(&bin).unwrap();
    let log = w.dir.path().join("opened.txt");
    for name in ["xdg-open", "open"] {
        let script = bin.join(name);
        std::fs::write(&script, format!("#!/bin/sh\nprintf '%s\\n' \"$1\" >> {}\n", log.display())).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let mut child = Guard(
        w.cmd()
            .env("PATH", &path)
            .args(["ui", "--json"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["port"], port, "{line}");
    let url = v["url"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&log).unwrap_or_default().trim() != url {
        assert!(Instant::now() < deadline, "the opener was not called with {url}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The port is taken now: an explicit --port fails in one line, the configured one falls back.
    let out = w.run(&["ui", "--port", &port.to_string(), "--no-open"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.trim().lines().count() == 1 && err.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{err}"
    );
    let mut second = Guard(
        w.cmd()
            .args(["ui", "--no-open", "--json"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(second.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_ne!(v["port"], port, "{line}");
    for c in [&mut second, &mut child] {
        let _ = std::process::Command::new("kill").args(["-INT", &c.0.id().to_string()]).status();
        assert!(c.0.wait().unwrap().success());
    }
}

#[test]
fn a_batch_started_in_the_dashboard_can_be_aborted_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let w = World::with_claude(&slow_scenario(dir.path(), 120_000));
    let d = Dashboard::start(&w);
    let yaml = format!(
        "name: to-abort\nrepos:\n  - path: {}\nitems:\n  - name: slow\n    prompt: wait\n    agent: claude\n  - name: queued\n    prompt: wait\n    agent: claude\nconcurrency: 1\n",
        w.repo_arg()
    );
    let r = d.post("/batches", &[("yaml", &yaml)]);
    assert_eq!(r.status, 303, "{}", r.body);
    let id = r.location.unwrap().trim_start_matches("/batches/").split('?').next().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    while w.json(&["batch", "status", &id])["counts"]["running"] != 1 {
        assert!(Instant::now() < deadline, "the batch did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let page = d.get(&format!("/batches/{id}")).body;
    assert!(page.contains("Abort batch"));
    let r = d.post(&format!("/batches/{id}/abort"), &[]);
    assert_eq!(r.status, 303, "{}", r.body);
    let deadline = Instant::now() + Duration::from_secs(30);
    let v = loop {
        let v = w.json(&["batch", "status", &id]);
        if v["status"] == "aborted" && v["counts"]["running"] == 0 {
            break v;
        }
        assert!(Instant::now() < deadline, "the batch was not aborted: {v}");
        std::thread::sleep(Duration::from_millis(100));
    };
    // The queued item never starts; the running one is stopped (its agent killed) and recorded as aborted.
    assert_eq!(v["items"][0]["status"], "aborted", "{v}");
    assert_eq!(v["items"][1]["status"], "aborted", "{v}");
    assert_eq!(v["counts"]["passed"], 0, "{v}");
    assert!(v["items"][0]["session"]["agent_pid"].is_null(), "{v}");
    let page = d.get(&format!("/batches/{id}")).body;
    assert!(!page.contains("Abort batch"), "{page}");
}

/// Waits until `batch status` (or `bench show`) of `id` says `done(view)`.
fn wait_for(w: &World, args: &[&str], what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = w.json(args);
        if done(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn batches_resume_with_a_new_budget_export_their_table_and_clean_from_the_dashboard() {
    let dir = tempfile::tempdir().unwrap();
    let w = World::with_claude(&slow_scenario(dir.path(), 120_000));
    let d = Dashboard::start(&w);
    let yaml = format!(
        "name: to-resume\nrepos:\n  - path: {}\nitems:\n  - name: slow\n    prompt: wait\n    agent: claude\n  - name: queued\n    prompt: wait\n    agent: claude\nconcurrency: 1\n",
        w.repo_arg()
    );
    // The start form's budget is the whole batch's (as `batch start --budget`).
    let r = d.post("/batches", &[("yaml", &yaml), ("budget", "$7.5")]);
    assert_eq!(r.status, 303, "{}", r.body);
    let id = r.location.unwrap().trim_start_matches("/batches/").split('?').next().unwrap().to_string();
    let status = ["batch", "status", id.as_str()];
    let v = wait_for(&w, &status, "the batch did not start", |v| v["counts"]["running"] == 1);
    assert_eq!(v["budget_usd"], 7.5, "{v}");
    assert!(!d.get(&format!("/batches/{id}")).body.contains("Resume batch"));
    w.ok(&["batch", "abort", &id]);
    wait_for(&w, &status, "the batch was not aborted", |v| {
        v["status"] == "aborted" && v["counts"]["running"] == 0
    });
    assert!(d.get(&format!("/batches/{id}")).body.contains("Resume batch"));

    // A bad budget is refused in one line and changes nothing.
    let r = d.post(&format!("/batches/{id}/resume"), &[("budget", "-1")]);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("budget must be a positive amount"), "{}", r.body);
    assert_eq!(w.json(&status)["status"], "aborted");
    // Resume with a new budget (as `batch resume --budget`): the unfinished items run again.
    let r = d.post(&format!("/batches/{id}/resume"), &[("budget", "9")]);
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.location.unwrap().ends_with("?done=resumed"));
    let v = wait_for(&w, &status, "the batch did not resume", |v| v["counts"]["running"] == 1);
    assert_eq!(v["budget_usd"], 9.0, "{v}");
    assert_eq!(v["status"], "running", "{v}");
    let r = d.post(&format!("/batches/{id}/abort"), &[]);
    assert_eq!(r.status, 303, "{}", r.body);
    wait_for(&w, &status, "the batch was not aborted again", |v| {
        v["status"] == "aborted" && v["counts"]["running"] == 0
    });

    // The results table is the one `batch export` writes, in every format.
    for format in ["csv", "json", "jsonl"] {
        let r = d.get(&format!("/batches/{id}/results?format={format}"));
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body, w.ok(&["batch", "export", &id, "--format", format]), "{format}");
    }
    assert_eq!(d.get(&format!("/batches/{id}/results?format=xml")).status, 400);

    // Clean removes the batch's sessions (their unmerged work is snapshotted first).
    let before = w.json(&["list"]).as_array().unwrap().len();
    assert!(before >= 2, "{before}");
    let r = d.post(&format!("/batches/{id}/clean"), &[]);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(w.json(&["list"]).as_array().unwrap().len(), 0);
    assert!(d.get(&format!("/batches/{id}?done=cleaned")).body.contains("Worktrees cleaned"));
}

#[test]
fn bench_runs_resume_with_a_new_budget_from_the_dashboard() {
    let dir = tempfile::tempdir().unwrap();
    let w = World::with_claude(&slow_scenario(dir.path(), 120_000));
    let d = Dashboard::start(&w);
    let yaml = format!(
        "name: slow-suite\nagents: [claude]\nproblems:\n  - id: notes\n    repo: {}\n    prompt: Write the notes\n    test: \"test -f NOTES.md\"\n",
        w.repo_arg()
    );
    let out = dir.path().join("suite-out");
    let r = d.post("/bench", &[("yaml", &yaml), ("budget", "3"), ("out", out.to_str().unwrap())]);
    assert_eq!(r.status, 303, "{}", r.body);
    let id = r.location.unwrap().trim_start_matches("/bench/").split('?').next().unwrap().to_string();
    let show = ["bench", "show", id.as_str()];
    let v = wait_for(&w, &show, "the run did not start", |v| v["counts"]["running"] == 1);
    assert_eq!(v["budget_usd"], 3.0, "{v}");
    assert_eq!(v["out_dir"], out.to_str().unwrap(), "{v}");
    // The run's page updates live: its topic announces the abort below.
    let live = agent()
        .get(&format!("{}/live?topic=bench:{id}", d.base()))
        .set("Cookie", &d.cookie())
        .call()
        .unwrap();
    let live_thread = std::thread::spawn(move || {
        let mut changed = false;
        read_events(live.into_reader(), Instant::now() + Duration::from_secs(30), |ev, _| {
            changed = ev == "change";
            changed
        });
        changed
    });
    let bad = send(agent().get(&format!("{}/live?topic=bench", d.base())).set("Cookie", &d.cookie()), None);
    assert_eq!(bad.status, 400, "{}", bad.body);
    std::thread::sleep(Duration::from_millis(1_000));
    let r = d.post(&format!("/bench/{id}/abort"), &[]);
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(live_thread.join().unwrap(), "no change event on the bench topic");
    let v = wait_for(&w, &show, "the run was not aborted", |v| {
        v["status"] == "aborted" && v["counts"]["running"] == 0
    });
    let page = d.get(&format!("/bench/{id}")).body;
    assert!(page.contains("Resume run"), "{v}\n{page}");
    let r = d.post(&format!("/bench/{id}/resume"), &[("budget", "4")]);
    assert_eq!(r.status, 303, "{}", r.body);
    let v = wait_for(&w, &show, "the run did not resume", |v| v["counts"]["running"] == 1);
    assert_eq!(v["budget_usd"], 4.0, "{v}");
    d.post(&format!("/bench/{id}/abort"), &[]);
    wait_for(&w, &show, "the run was not aborted again", |v| {
        v["status"] == "aborted" && v["counts"]["running"] == 0
    });
}

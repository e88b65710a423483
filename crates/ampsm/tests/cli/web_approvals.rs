//! HTTP checks of the permission features: the approvals inbox and its answers (approve, deny with a
//! message, an answer that lost a race, the security rules on the new POSTs), the live updates when an
//! approval arrives, the Stop button on a real running agent (run by the CLI and by the dashboard), the
//! Permissions select of the New session form, the session's policy and denials, and each agent's
//! policies on the Settings page.

use crate::support::World;
use crate::web_http::read_events;
use crate::web_support::{Dashboard, agent, approvals_of, ask_for_approvals, group_alive, metric, send};
use serde_json::json;
use std::time::{Duration, Instant};

fn new_session(w: &World, name: &str) -> String {
    w.json(&["new", "--repo", w.repo_arg(), "--name", name])["id"].as_str().unwrap().to_string()
}

/// The text of the nav's badge of pending approvals.
fn badge(page: &str) -> String {
    let at = page.find("id=\"nav-approvals\"").expect("the approvals badge");
    let from = page[at..].find('>').unwrap() + at + 1;
    let to = page[from..].find('<').unwrap() + from;
    page[from..to].to_string()
}

/// The one error line of a page.
fn error_line(page: &str) -> String {
    let parts: Vec<&str> = page.split("<div class=\"err\" role=\"alert\">").skip(1).collect();
    assert_eq!(parts.len(), 1, "{page}");
    parts[0][..parts[0].find("</div>").unwrap()].to_string()
}

#[test]
fn the_inbox_lists_pending_tool_calls_and_answers_them() {
    let w = World::new();
    let d = Dashboard::start(&w);
    let asker = new_session(&w, "asker");
    let other = new_session(&w, "other");
    ask_for_approvals(
        &w,
        &asker,
        &[
            ("Bash", json!({ "command": "npm test" })),
            ("Write", json!({ "file_path": "src/lib.rs", "content": "pub fn x() {}\n" })),
        ],
    );
    ask_for_approvals(&w, &other, &[("Bash", json!({ "command": "rm -rf build" }))]);

    // Every page's navigation counts them; the inbox lists them with their input and both answers.
    assert_eq!(badge(&d.get("/").body), "3");
    let r = d.get("/approvals");
    assert_eq!(r.status, 200);
    let page = r.body;
    assert_eq!(badge(&page), "3");
    for text in ["Bash npm test", "Write src/lib.rs", "Bash rm -rf build", "answer within", "asked "] {
        assert!(page.contains(text), "{text} missing: {page}");
    }
    // The input as indented JSON.
    assert!(page.contains("  &quot;file_path&quot;: &quot;src/lib.rs&quot;"), "{page}");
    assert!(page.contains(&format!("href=\"/s/{asker}\"")) && page.contains(">other</a>"));
    assert_eq!(page.matches("class=\"inline approve\"").count(), 3);
    assert_eq!(page.matches("class=\"inline deny\"").count(), 3);
    // Every control has a label: the message field by `for`, the buttons by their text and aria-label.
    let key = format!("{}-2", &asker[..8]);
    assert!(page.contains(&format!("<label for=\"deny-message-{key}\">")), "{page}");
    assert!(page.contains(&format!("id=\"deny-message-{key}\"")));
    assert!(page.contains("aria-label=\"Approve #1 of asker: Bash npm test\""), "{page}");

    // Approve from the inbox: back to it with a notice.
    let r = d.post(&format!("/s/{asker}/approvals/1/approve"), &[("from", "inbox")]);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location.as_deref(), Some("/approvals?done=approved"));
    assert!(d.get("/approvals?done=approved").body.contains("Approved: the agent goes on"));
    let list = approvals_of(&w, "asker");
    assert_eq!(list[0]["status"], "approved", "{list:?}");
    assert_eq!(list[1]["status"], "pending", "{list:?}");

    // Deny with a message from the session page: back to the session.
    let r = d.post(
        &format!("/s/{asker}/approvals/2/deny"),
        &[("from", "session"), ("message", "use the fixtures instead")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location.unwrap(), format!("/s/{asker}?done=denied"));
    let list = approvals_of(&w, "asker");
    assert_eq!(list[1]["status"], "denied", "{list:?}");
    assert_eq!(list[1]["message"], "use the fixtures instead");
    assert_eq!(badge(&d.get("/").body), "1");

    // Answering one already answered: the engine's line, 409, nothing changed.
    let r = d.post(&format!("/s/{asker}/approvals/1/deny"), &[("from", "inbox")]);
    assert_eq!(r.status, 409, "{}", r.body);
    let line = error_line(&r.body);
    assert!(line.contains("approval #1 of session asker") && line.contains("is already approved"), "{line}");
    assert!(r.body.contains("<h1>Approvals</h1>"));
    assert_eq!(approvals_of(&w, "asker")[0]["status"], "approved");

    // The race: the page still offers #1 of `other`, but a terminal answered it first.
    assert!(d.get("/approvals").body.contains("Bash rm -rf build"));
    w.ok(&["deny", "other", "1", "-m", "from the terminal"]);
    let r = d.post(&format!("/s/{other}/approvals/1/approve"), &[("from", "session")]);
    assert_eq!(r.status, 409, "{}", r.body);
    let line = error_line(&r.body);
    assert!(line.contains("is already denied"), "{line}");
    assert!(r.body.contains("id=\"session-status\""), "the session page with the error");
    assert_eq!(approvals_of(&w, "other")[0]["message"], "from the terminal");

    // No such approval, no such action, no such session.
    let r = d.post(&format!("/s/{asker}/approvals/99/approve"), &[]);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(error_line(&r.body).contains("has no approval #99"));
    assert_eq!(d.post(&format!("/s/{asker}/approvals/1/maybe"), &[]).status, 404);
    assert_eq!(d.post("/s/nope/approvals/1/approve", &[]).status, 404);

    // The inbox is empty now; the session page shows the history with the answers.
    let page = d.get("/approvals").body;
    assert!(page.contains("No tool call is waiting for approval."), "{page}");
    assert_eq!(badge(&page), "");
    let page = d.get(&format!("/s/{asker}")).body;
    assert!(page.contains("id=\"approval-history\""), "{page}");
    assert!(page.contains("use the fixtures instead") && page.contains("badge s-approved"), "{page}");
    assert!(!page.contains("id=\"pending-approvals\""));
}

#[test]
fn the_new_posts_need_the_cookie_the_origin_and_the_csrf_token() {
    let w = World::new();
    let d = Dashboard::start(&w);
    let id = new_session(&w, "guarded");
    ask_for_approvals(&w, &id, &[("Bash", json!({ "command": "make deploy" }))]);
    let base = d.base();
    let csrf = d.csrf();
    let post = |path: &str, cookie: bool, origin: Option<&str>, csrf: Option<&str>| {
        let mut req = agent().post(&format!("{base}{path}"));
        if cookie {
            req = req.set("Cookie", &d.cookie());
        }
        if let Some(o) = origin {
            req = req.set("Origin", o);
        }
        let mut fields = vec![("from", "inbox")];
        if let Some(c) = csrf {
            fields.push(("csrf", c));
        }
        send(req, Some(&fields)).status
    };
    for path in
        [format!("/s/{id}/approvals/1/approve"), format!("/s/{id}/approvals/1/deny"), format!("/s/{id}/stop")]
    {
        assert_eq!(post(&path, false, Some(&base), Some(&csrf)), 401, "{path} without the cookie");
        assert_eq!(post(&path, true, Some("http://evil.example"), Some(&csrf)), 403, "{path} cross-site");
        assert_eq!(post(&path, true, None, Some(&csrf)), 403, "{path} without Origin");
        assert_eq!(post(&path, true, Some(&base), None), 403, "{path} without the CSRF token");
        assert_eq!(post(&path, true, Some(&base), Some(&"0".repeat(64))), 403, "{path} with a wrong token");
    }
    assert_eq!(approvals_of(&w, "guarded")[0]["status"], "pending");
    assert_eq!(w.json(&["show", "guarded"])["session"]["status"], "awaiting-input");
    // The inbox itself needs the cookie too.
    assert_eq!(send(agent().get(&format!("{base}/approvals")), None).status, 401);
    assert_eq!(post(&format!("/s/{id}/approvals/1/approve"), true, Some(&base), Some(&csrf)), 303);
    assert_eq!(approvals_of(&w, "guarded")[0]["status"], "approved");
}

#[test]
fn a_new_approval_refreshes_the_live_pages() {
    let w = World::new();
    let d = Dashboard::start(&w);
    let id = new_session(&w, "watched");
    let page = d.get(&format!("/s/{id}")).body;
    assert!(page.contains("<div id=\"session-pending\" data-live>"), "{page}");
    // Subscribe to the session's topic and the inbox's before the request arrives.
    let listen = |topic: String| {
        let live = agent()
            .get(&format!("{}/live?topic={topic}", d.base()))
            .set("Cookie", &d.cookie())
            .call()
            .unwrap();
        std::thread::spawn(move || {
            let mut changed = false;
            read_events(live.into_reader(), Instant::now() + Duration::from_secs(30), |ev, _| {
                changed = ev == "change";
                changed
            });
            changed
        })
    };
    let session_topic = listen(format!("session:{id}"));
    let inbox_topic = listen("approvals".into());
    let list_topic = listen("sessions".into());
    std::thread::sleep(Duration::from_millis(1500));
    ask_for_approvals(&w, &id, &[("Edit", json!({ "file_path": "README.md" }))]);
    assert!(session_topic.join().unwrap(), "no change event on the session's topic");
    assert!(inbox_topic.join().unwrap(), "no change event on the approvals topic");
    assert!(list_topic.join().unwrap(), "no change event on the sessions topic");
    // What the refreshed regions then show: the status, the request with its forms, the badge.
    let page = d.get(&format!("/s/{id}")).body;
    assert!(page.contains("badge s-awaiting-input"), "{page}");
    assert!(page.contains("waiting for approval #1: Edit"), "{page}");
    assert!(page.contains("id=\"pending-approvals\"") && page.contains("Edit README.md"), "{page}");
    assert!(page.contains(&format!("action=\"/s/{id}/approvals/1/approve\"")), "{page}");
    assert!(page.contains("id=\"stop-form\""), "a Stop button while it waits");
    assert_eq!(badge(&page), "1");
    // The interactive view shows it too.
    let page = d.get(&format!("/s/{id}/interactive")).body;
    assert!(page.contains("id=\"pending-approvals\"") && page.contains("Edit README.md"), "{page}");
    // An unknown topic is refused.
    assert_eq!(d.get("/live?topic=nope").status, 400);
}

/// Waits until the session has an agent process; returns its pid (the leader of its process group).
fn wait_for_agent(w: &World, name: &str) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = w.json(&["show", name]);
        if s["session"]["status"] == "running"
            && let Some(pid) = s["session"]["agent_pid"].as_i64()
        {
            return pid;
        }
        assert!(Instant::now() < deadline, "the agent did not start: {s}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Presses Stop and checks that the session ends idle within seconds, its iteration `cancelled`, and no
/// process of the agent's group is left.
fn stop_and_check(w: &World, d: &Dashboard, id: &str, name: &str, iterations: usize) {
    let pgid = wait_for_agent(w, name);
    assert!(group_alive(pgid));
    let page = d.get(&format!("/s/{id}")).body;
    assert!(page.contains("id=\"stop-form\""), "{page}");
    assert!(page.contains(&format!("aria-label=\"Stop the agent of session {name}\"")), "{page}");
    let started = Instant::now();
    let r = d.post(&format!("/s/{id}/stop"), &[]);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location.unwrap(), format!("/s/{id}?done=stopped"));
    assert!(started.elapsed() < Duration::from_secs(10), "the stop took {:?}", started.elapsed());
    let deadline = Instant::now() + Duration::from_secs(5);
    let s = loop {
        let s = w.json(&["show", name]);
        if s["session"]["status"] == "idle" {
            break s;
        }
        assert!(Instant::now() < deadline, "the session did not end idle: {s}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(s["session"]["agent_pid"].is_null() && s["session"]["runner_pid"].is_null(), "{s}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while group_alive(pgid) {
        assert!(Instant::now() < deadline, "a process of the agent's group {pgid} was left");
        std::thread::sleep(Duration::from_millis(50));
    }
    let m = w.json(&["metrics", name]);
    assert_eq!(m["iterations_count"], iterations as u64, "{m}");
    assert_eq!(m["iterations"][iterations - 1]["outcome"], "cancelled", "{m}");
    let page = d.get(&format!("/s/{id}?done=stopped")).body;
    assert!(page.contains("Stopped: the agent"), "{page}");
    assert!(!page.contains("id=\"stop-form\""), "{page}");
    assert!(!page.contains("Last background run"), "a stop is no failure: {page}");
}

#[test]
fn stop_ends_a_running_agent_started_by_the_cli_or_by_the_dashboard() {
    let w = World::new();
    std::fs::create_dir_all(w.home()).unwrap();
    std::fs::write(
        w.home().join("config.yaml"),
        "agents:\n  command:\n    path: /bin/sh\n    args: [\"-c\", \"sleep 30\"]\nnotifications:\n  desktop: false\n",
    )
    .unwrap();
    let d = Dashboard::start(&w);
    let s = w.json(&[
        "new",
        "--repo",
        w.repo_arg(),
        "--name",
        "sleeper",
        "--agent",
        "command",
        "--prompt",
        "nap",
    ]);
    let id = s["id"].as_str().unwrap().to_string();
    // Nothing runs yet: Stop is refused with the engine's line.
    assert!(!d.get(&format!("/s/{id}")).body.contains("id=\"stop-form\""));
    let r = d.post(&format!("/s/{id}/stop"), &[]);
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(error_line(&r.body).contains("is not running"), "{}", r.body);

    // Run by another process (`iterate` in a terminal): the dashboard asks its runner to stop.
    let mut cli = w.cmd().args(["iterate", "sleeper"]).stdout(std::process::Stdio::null()).spawn().unwrap();
    stop_and_check(&w, &d, &id, "sleeper", 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while cli.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "`iterate` did not end after the stop");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Run by the dashboard itself (the message form): its own runner thread stops it.
    let r = d.post(&format!("/s/{id}/message"), &[("prompt", "nap again")]);
    assert_eq!(r.status, 303, "{}", r.body);
    stop_and_check(&w, &d, &id, "sleeper", 2);
    let status = d.stop();
    assert!(status.success(), "{status}");
}

#[test]
fn the_form_chooses_a_policy_and_pages_show_policies_and_denials() {
    let w = World::new();
    let d = Dashboard::start(&w);
    let page = d.get("/").body;
    assert!(page.contains("<label for=\"permissions\">Permissions</label>"), "{page}");
    assert!(page.contains("<select id=\"permissions\" name=\"permissions\""), "{page}");
    assert!(page.contains("default (from config: auto)"), "{page}");
    for p in ["auto", "ask", "read-only", "full"] {
        assert!(page.contains(&format!("<option value=\"{p}\"")), "{p}");
    }
    assert!(page.contains("reads and plans; every write or changing command is denied"), "{page}");

    // A policy the agent cannot honour: the engine's line in the form, the values kept.
    let r = d.post(
        "/sessions",
        &[("repo", w.repo_arg()), ("name", "asks"), ("agent", "offline"), ("permissions", "ask")],
    );
    assert_eq!(r.status, 422, "{}", r.body);
    let line = error_line(&r.body);
    assert!(line.contains("cannot wait for approvals") && line.contains("hint:"), "{line}");
    assert!(r.body.contains("<option value=\"ask\" title="), "{}", r.body);
    assert!(r.body.contains("value=\"asks\""));
    let r = d.post("/sessions", &[("repo", w.repo_arg()), ("name", "asks"), ("permissions", "yolo")]);
    assert_eq!(r.status, 422);
    assert!(error_line(&r.body).contains("unknown permission policy"), "{}", r.body);
    assert_eq!(w.json(&["list"]).as_array().unwrap().len(), 0);

    // Read-only with the offline demo (on the demo's files): its edits and commands are denied, and the
    // pages say so.
    for (path, content) in ampsm_agent::offline::demo_repo_files() {
        let full = w.repo.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
    }
    ampsm_testutils::git(&w.repo, &["add", "-A"]);
    ampsm_testutils::git(&w.repo, &["commit", "-q", "-m", "the demo's files"]);
    let r = d.post(
        "/sessions",
        &[
            ("repo", w.repo_arg()),
            ("name", "reader"),
            ("agent", "offline"),
            ("permissions", "read-only"),
            ("prompt", "Add a greeting"),
            ("run", "on"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let s = w.json(&["show", "reader"]);
    assert_eq!(s["session"]["permissions"], "read-only", "{s}");
    let id = s["session"]["id"].as_str().unwrap().to_string();
    w.wait_idle(&id, 1);
    let tools = w.json(&["tools", "reader"]);
    let denied = tools.to_string().matches("\"denied\":true").count();
    let page = d.get(&format!("/s/{id}")).body;
    assert!(page.contains("data-policy=\"read-only\""), "{page}");
    assert!(page.contains("reads and plans; every write or changing command is denied"));
    assert!(denied > 0, "the read-only demo denied nothing: {tools}");
    assert!(page.contains("id=\"denied-calls\"") && page.contains(">DENIED</span>"), "{page}");
    assert_eq!(metric(&page, "tool-calls-denied"), denied.to_string());
    let iteration = w.json(&["show", "reader"]);
    assert!(page.contains("<td class=\"n denials\"><span class=\"s-denied\">"), "{iteration} {page}");
    let page = d.get(&format!("/s/{id}/interactive")).body;
    assert_eq!(page.matches(">DENIED</span>").count(), denied, "{page}");

    // Settings: each agent's policies, with what they mean.
    let page = d.get("/settings").body;
    assert!(page.contains("id=\"policies\"") && page.contains("id=\"policy-meanings\""), "{page}");
    for agent in ["claude", "codex", "offline", "command"] {
        assert!(page.contains(&format!("<tr data-agent=\"{agent}\">")), "{agent}: {page}");
    }
    assert!(page.contains("the recorded demo cannot wait for approvals"), "{page}");
    assert!(page.contains("not supported") && page.contains("honoured"));
}

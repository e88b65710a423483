//! The dashboard in a real browser (see `browser`). It opens the
//! printed URL, creates a session through the form with "run now", watches its status change without
//! reloading the page (the live updates), and reads the overview and the interactive feed.

use crate::browser::Driver;
use crate::support::World;
use crate::web_support::{Dashboard, ask_for_approvals, slow_scenario};
use ampsm_testutils::requires;
use serde_json::json;

#[requires(chromium)]
#[test]
fn browser_creates_runs_and_watches_a_session_live() {
    let dir = tempfile::tempdir().unwrap();
    let scen = slow_scenario(dir.path(), 4_000);
    let w = World::with_claude(&scen);
    let d = Dashboard::start(&w);
    let b = Driver::start();

    // The printed URL: the token becomes a cookie and leaves the address bar.
    b.goto(&d.url);
    assert_eq!(b.current_url(), format!("{}/", d.base()));
    assert!(b.text("h1").contains("Sessions"));

    // The form (in the New session dialog): repository, name, agent, prompt, "run now".
    b.click("#new-session-button");
    b.type_into("#repo", w.repo_arg());
    b.type_into("#name", "from-chromium");
    b.click("#agent option[value=claude]");
    b.type_into("#prompt", "Write the notes");
    b.click("#run");
    b.click("#new-session button[type=submit]");
    let url = b.wait(30, "the session page", || Some(b.current_url()).filter(|u| u.contains("/s/")));
    let id = w.json(&["list"])[0]["id"].as_str().unwrap().to_string();
    assert!(url.contains(&id), "{url}");

    // The status changes without a reload: a marker set on this page survives until the run is over.
    b.script("window.__ampsm_marker = 42; return 1;");
    b.wait(30, "status running", || Some(()).filter(|_| b.text("#session-status").contains("running")));
    let final_status = b.wait(60, "the run to end", || {
        let t = b.text("#session-status");
        (!t.contains("running") && b.text("[data-metric=iterations]") == "1").then_some(t)
    });
    assert!(!final_status.contains("error"), "{final_status}");
    assert_eq!(
        b.script("return window.__ampsm_marker || 0;"),
        json!(42),
        "the page reloaded instead of updating"
    );

    // The overview shows the numbers of `metrics`.
    let m = w.json(&["metrics", &id]);
    let want_output = m["tokens"]["output"].to_string();
    b.wait(10, "the overview numbers", || {
        Some(()).filter(|_| b.text("[data-metric=tokens-output]") == want_output)
    });
    assert_eq!(b.text("[data-metric=tokens-input]"), m["tokens"]["input"].to_string());
    assert_eq!(b.text("[data-metric=tool-calls]"), m["tool_calls"].to_string());
    assert!(b.text("#tools").contains("Write"));

    // The interactive view lists the agent's events and tool calls.
    b.click("nav.tabs a[href$=interactive]");
    b.wait(10, "the feed", || Some(()).filter(|_| b.text("#feed").contains("Write")));
    assert!(b.text("#feed").contains("Bash"));
}

#[requires(chromium)]
#[test]
fn browser_answers_tool_calls_from_the_approvals_inbox() {
    let w = World::new();
    let d = Dashboard::start(&w);
    let id = w.json(&["new", "--repo", w.repo_arg(), "--name", "asking"])["id"].as_str().unwrap().to_string();
    ask_for_approvals(&w, &id, &[("Bash", json!({ "command": "npm test" }))]);
    let b = Driver::start();
    b.goto(&d.url);
    // The navigation counts the pending request and leads to the inbox.
    assert_eq!(b.text("#nav-approvals"), "1");
    b.click("#nav-approvals-link");
    b.wait(10, "the inbox", || Some(()).filter(|_| b.current_url().ends_with("/approvals")));
    assert!(b.text("#approvals").contains("Bash npm test"));

    // A second request arrives while the page is open: it shows up without a reload.
    b.script("window.__ampsm_marker = 7; return 1;");
    ask_for_approvals(&w, &id, &[("Write", json!({ "file_path": "notes.md", "content": "hi" }))]);
    b.wait(15, "the new request", || Some(()).filter(|_| b.text("#approvals").contains("Write notes.md")));
    b.wait(5, "the badge", || Some(()).filter(|_| b.text("#nav-approvals") == "2"));
    assert_eq!(b.script("return window.__ampsm_marker || 0;"), json!(7), "the page reloaded");

    // Approve #1.
    let key = format!("{}-1", &id[..8]);
    b.click(&format!("[data-approval=\"{key}\"] form.approve button"));
    b.wait(15, "the notice", || Some(()).filter(|_| b.text("main").contains("Approved: the agent goes on")));
    let list = w.json(&["approvals", "asking", "--all"]);
    assert_eq!(list[0]["status"], "approved", "{list}");
    assert_eq!(list[1]["status"], "pending", "{list}");
    assert!(!b.text("#approvals").contains("Bash npm test"));

    // Deny #2 with a message typed into its labelled field.
    let key = format!("{}-2", &id[..8]);
    let label =
        b.script(&format!("return document.querySelector('label[for=\"deny-message-{key}\"]').innerText;"));
    assert_eq!(label, json!("Message for the agent (optional)"));
    b.type_into(&format!("#deny-message-{key}"), "not in this repository");
    b.click(&format!("[data-approval=\"{key}\"] form.deny button"));
    b.wait(15, "the denial", || Some(()).filter(|_| b.text("main").contains("Denied: the agent was told")));
    let list = w.json(&["approvals", "asking", "--all"]);
    assert_eq!(list[1]["status"], "denied", "{list}");
    assert_eq!(list[1]["message"], "not in this repository", "{list}");
    assert!(b.text("#approvals").contains("No tool call is waiting"));
    assert_eq!(b.text("#nav-approvals"), "");
}

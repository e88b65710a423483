//! Accessibility and the page frame in a real Chromium: axe-core (the pinned copy of
//! `.ci/install-axe.sh`) runs on every page of a dashboard with real data, in the dark and the light theme,
//! and finds no serious or critical violation; the theme toggle follows the system and remembers a choice;
//! the skip link, the confirmation dialog of `data-confirm` forms and the shortcut help work from the
//! keyboard. The same run takes the screenshots in `docs/screenshots/` (written there only with
//! `AMPSM_UPDATE_SCREENSHOTS=1`). Browser notifications: the `/notifications` stream, and a page that shows one
//! through a stand-in for the desktop's notification service.

use crate::browser::Driver;
use crate::support::World;
use crate::web_http::read_events;
use crate::web_support::{Dashboard, agent, ask_for_approvals};
use ampsm_testutils::{Tool, requires, scenario_path};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A world with one session that ran once with the stand-in agent (events, tool calls, a commit to
/// review) plus a commit of the user's changing a file, and one session that has not run yet.
fn world_with_work() -> (World, String) {
    let w = World::with_claude(&scenario_path("claude"));
    let s = w.json(&[
        "new",
        "--repo",
        w.repo_arg(),
        "--name",
        "notes",
        "--agent",
        "claude",
        "--prompt",
        "Write the notes file and run the tests.",
    ]);
    let id = s["id"].as_str().unwrap().to_string();
    let run = w.json(&["iterate", "notes"]);
    assert_eq!(run["iteration"]["outcome"], "success", "{run}");
    // A change of the user's own to an existing file, so the review has both sides to show.
    let worktree = std::path::PathBuf::from(s["worktree_path"].as_str().unwrap());
    std::fs::write(
        worktree.join("README.md"),
        "# fixture\n\nA repository made by a test, with notes.\n\n## Validators\n\nSee `django/contrib/auth`.\n",
    )
    .unwrap();
    w.ok(&["stage", "notes", "--all"]);
    w.ok(&["commit", "notes", "-m", "Describe the validators in the README"]);
    w.json(&["new", "--repo", w.repo_arg(), "--name", "fresh", "--agent", "claude"]);
    (w, id)
}

/// Runs axe-core (already loaded in the page) and returns its serious and critical violations, one line
/// each.
fn serious_violations(b: &Driver) -> Vec<String> {
    let v = b.script(
        "return axe.run(document, { resultTypes: ['violations'] }).then(function (r) {
            return r.violations.filter(function (v) { return v.impact === 'serious' || v.impact === 'critical'; })
              .map(function (v) {
                return v.id + ' (' + v.impact + '): ' + v.help + ' at ' +
                  v.nodes.slice(0, 5).map(function (n) { return n.target.join(' ') + ' [' + (n.failureSummary || '').replace(/\\s+/g, ' ') + ']'; }).join('; ');
              });
          });",
    );
    v.as_array()
        .unwrap_or_else(|| panic!("axe did not run: {v}"))
        .iter()
        .map(|l| l.as_str().unwrap_or("").to_string())
        .collect()
}

/// Picks a theme as the toggle does: remembered for the next pages, applied to this one, and named on
/// the toggle.
fn set_theme(b: &Driver, theme: &str) {
    let label = b.script(&format!(
        "window.ampsmSetTheme({t}); return document.getElementById('theme-toggle').textContent;",
        t = json!(theme)
    ));
    assert_eq!(label, json!(format!("Theme: {theme}")));
}

fn screenshots_dir() -> Option<PathBuf> {
    std::env::var_os("AMPSM_UPDATE_SCREENSHOTS")
        .filter(|v| v == "1")
        .map(|_| ampsm_testutils::workspace_root().join("docs/screenshots"))
}

#[requires(chromium, axe)]
#[test]
fn every_page_passes_axe_in_both_themes() {
    let axe_path = Tool::Axe.find_in(&ampsm_testutils::workspace_root()).unwrap();
    let axe = std::fs::read_to_string(axe_path).unwrap();
    let (w, id) = world_with_work();
    let d = Dashboard::start(&w);
    let b = Driver::start();
    b.window_size(1280, 900);
    b.goto(&d.url);
    let pages = [
        ("sessions", "/".to_string()),
        ("overview", format!("/s/{id}")),
        ("conversation", format!("/s/{id}/interactive")),
        ("review", format!("/s/{id}/git")),
        ("review-split", format!("/s/{id}/git?view=split")),
        ("batches", "/batches".to_string()),
        ("benchmarks", "/bench".to_string()),
        ("approvals", "/approvals".to_string()),
        ("settings", "/settings".to_string()),
    ];
    let shots = screenshots_dir();
    let mut found = Vec::new();
    for (name, path) in &pages {
        b.goto(&format!("{}{path}", d.base()));
        // axe once per page; the theme switches in place (what the toggle does) between the two runs.
        b.script(&format!("{axe}\n;return 1;"));
        for theme in ["dark", "light"] {
            set_theme(&b, theme);
            for v in serious_violations(&b) {
                found.push(format!("{theme} {path}: {v}"));
            }
            if let Some(dir) = &shots
                && matches!(*name, "sessions" | "conversation" | "review-split" | "overview")
            {
                // The review's picture starts at the diff.
                b.script(
                    "const d = document.querySelector('#diff-files'); if (d) d.scrollIntoView(); return 1;",
                );
                std::fs::create_dir_all(dir).unwrap();
                std::fs::write(dir.join(format!("{name}-{theme}.png")), b.screenshot_png()).unwrap();
            }
        }
    }
    assert!(found.is_empty(), "axe found serious or critical violations:\n{}", found.join("\n"));
}

#[requires(chromium)]
#[test]
fn theme_follows_the_system_until_the_toggle_picks_one() {
    let (w, _) = world_with_work();
    let d = Dashboard::start(&w);
    let b = Driver::start();
    b.goto(&d.url);
    let bg = |b: &Driver| -> Value { b.script("return getComputedStyle(document.body).backgroundColor;") };
    // Nothing chosen: no data-theme, the system's preference (headless Chromium: light) applies.
    assert_eq!(b.script("return document.documentElement.getAttribute('data-theme');"), Value::Null);
    let system_light =
        b.script("return window.matchMedia('(prefers-color-scheme: light)').matches;") == json!(true);
    let auto_bg = bg(&b);
    assert_eq!(auto_bg == json!("rgb(251, 241, 199)"), system_light, "{auto_bg}");
    assert_eq!(b.text("#theme-toggle"), "Theme: auto");

    // The toggle: auto → light → dark, remembered across pages.
    b.click("#theme-toggle");
    assert_eq!(b.text("#theme-toggle"), "Theme: light");
    assert_eq!(bg(&b), json!("rgb(251, 241, 199)"));
    b.click("#theme-toggle");
    assert_eq!(b.text("#theme-toggle"), "Theme: dark");
    assert_eq!(bg(&b), json!("rgb(40, 40, 40)"));
    b.goto(&format!("{}/batches", d.base()));
    assert_eq!(b.script("return document.documentElement.getAttribute('data-theme');"), json!("dark"));
    assert_eq!(bg(&b), json!("rgb(40, 40, 40)"));
    // The `t` key changes it too.
    b.script(
        "document.body.dispatchEvent(new KeyboardEvent('keydown', {key: 't', bubbles: true})); return 1;",
    );
    assert_eq!(b.text("#theme-toggle"), "Theme: auto");
}

#[requires(chromium)]
#[test]
fn skip_link_shortcuts_and_confirmation_work_from_the_keyboard() {
    let (w, id) = world_with_work();
    let d = Dashboard::start(&w);
    let b = Driver::start();
    b.goto(&d.url);
    // The first Tab stop is the skip link, and it leads to the main landmark.
    assert_eq!(b.script("return document.querySelector('a.skip').getAttribute('href');"), json!("#main"));
    assert_eq!(
        b.script("return document.querySelectorAll('main#main, header nav[aria-label]').length;"),
        json!(2)
    );

    // `?` opens the shortcut help; `g b` goes to Batches.
    let key = |k: &str| {
        b.script(&format!(
            "document.body.dispatchEvent(new KeyboardEvent('keydown', {{key: {}, bubbles: true}})); return 1;",
            json!(k)
        ));
    };
    key("?");
    assert_eq!(b.script("return document.getElementById('help-dialog').open;"), json!(true));
    assert!(b.text("#help-dialog").contains("go to Batches"));
    b.click("#help-close");
    assert_eq!(b.script("return document.getElementById('help-dialog').open;"), json!(false));
    key("g");
    key("b");
    b.wait(10, "the batches page", || Some(()).filter(|_| b.current_url().ends_with("/batches")));

    // A form with data-confirm asks first: Cancel leaves everything as it was, Confirm submits.
    b.goto(&format!("{}/s/{id}", d.base()));
    b.script(
        "var f = document.createElement('form'); f.method = 'post'; f.action = location.pathname + '/budget';
         f.setAttribute('data-confirm', 'Set the budget to 5 USD?'); f.id = 'confirm-probe';
         f.innerHTML = document.querySelector('input[name=csrf]').outerHTML +
           '<input name=\"usd\" value=\"5\" aria-label=\"usd\"><button type=\"submit\" id=\"confirm-probe-go\">go</button>';
         document.querySelector('main').appendChild(f); return 1;",
    );
    b.click("#confirm-probe-go");
    assert_eq!(b.script("return document.getElementById('confirm-dialog').open;"), json!(true));
    assert_eq!(b.text("#confirm-text"), "Set the budget to 5 USD?");
    b.click("#confirm-cancel");
    assert_eq!(b.script("return document.getElementById('confirm-dialog').open;"), json!(false));
    assert_eq!(w.json(&["show", "notes"])["session"]["budget_usd"], Value::Null);
    b.click("#confirm-probe-go");
    b.click("#confirm-ok");
    b.wait(15, "the budget", || {
        Some(()).filter(|_| w.json(&["show", "notes"])["session"]["budget_usd"] == json!(5.0))
    });
}

#[test]
fn notifications_stream_tells_when_a_session_finishes_or_waits_for_approval() {
    let w = World::with_claude(&scenario_path("claude"));
    let d = Dashboard::start(&w);
    let s = w.json(&["new", "--repo", w.repo_arg(), "--name", "told", "--agent", "claude", "--prompt", "Go"]);
    let id = s["id"].as_str().unwrap().to_string();
    let stream =
        agent().get(&format!("{}/notifications", d.base())).set("Cookie", &d.cookie()).call().unwrap();
    assert!(stream.content_type().starts_with("text/event-stream"));
    let reader = std::thread::spawn(move || {
        let mut told: Vec<Value> = Vec::new();
        read_events(stream.into_reader(), Instant::now() + Duration::from_secs(60), |ev, data| {
            assert_eq!(ev, "session", "{data}");
            told.push(serde_json::from_str(data).unwrap());
            told.iter().any(|t| t["status"] == "approval")
        });
        told
    });
    // Give the stream its first look, then finish a run and ask for an approval.
    std::thread::sleep(Duration::from_millis(2000));
    let run = w.json(&["iterate", "told"]);
    assert_eq!(run["iteration"]["outcome"], "success", "{run}");
    std::thread::sleep(Duration::from_millis(2000));
    ask_for_approvals(&w, &id, &[("Bash", json!({ "command": "rm -rf build" }))]);
    let told = reader.join().unwrap();
    let statuses: Vec<&str> = told.iter().map(|t| t["status"].as_str().unwrap()).collect();
    assert!(statuses.contains(&"idle") && statuses.contains(&"approval"), "{told:?}");
    assert!(told.iter().all(|t| t["id"] == id.as_str() && t["name"] == "told"), "{told:?}");
    let approval = told.iter().find(|t| t["status"] == "approval").unwrap();
    assert_eq!(approval["text"], "Tool call #1 is waiting for your approval.");
}

#[requires(chromium)]
#[test]
fn browser_shows_a_notification_when_a_session_finishes_and_the_click_opens_it() {
    let w = World::with_claude(&scenario_path("claude"));
    let d = Dashboard::start(&w);
    let s = w.json(&["new", "--repo", w.repo_arg(), "--name", "ping", "--agent", "claude", "--prompt", "Go"]);
    let id = s["id"].as_str().unwrap().to_string();
    let b = Driver::start();
    // A stand-in for the desktop's notification service, in every page before its scripts run: it records
    // what the page shows and grants permission when asked.
    b.cdp(
        "Page.addScriptToEvaluateOnNewDocument",
        json!({ "source": "window.__shown = JSON.parse(sessionStorage.getItem('shown') || '[]');
            window.Notification = function (title, o) { var n = this; n.title = title; n.body = o.body;
              window.__shown.push({ title: title, body: o.body });
              sessionStorage.setItem('shown', JSON.stringify(window.__shown)); window.__last = n; };
            window.Notification.permission = 'default';
            window.Notification.requestPermission = function () {
              window.Notification.permission = 'granted'; return Promise.resolve('granted'); };" }),
    );
    b.goto(&d.url);
    assert_eq!(b.text("#notify-toggle"), "Notifications: off");
    b.click("#notify-toggle");
    b.wait(5, "notifications on", || Some(()).filter(|_| b.text("#notify-toggle") == "Notifications: on"));
    std::thread::sleep(Duration::from_millis(2000));
    let run = w.json(&["iterate", "ping"]);
    assert_eq!(run["iteration"]["outcome"], "success", "{run}");
    let shown = b.wait(20, "a notification", || {
        let v = b.script("return window.__shown;");
        v.as_array().filter(|a| !a.is_empty()).cloned()
    });
    assert_eq!(shown[0]["title"], "amp-sessions: ping", "{shown:?}");
    assert_eq!(shown[0]["body"], "The agent finished its run.", "{shown:?}");
    // Clicking it opens the session.
    b.script("window.__last.onclick(); return 1;");
    b.wait(10, "the session page", || Some(()).filter(|_| b.current_url().ends_with(&format!("/s/{id}"))));
}

#[requires(chromium)]
#[test]
fn going_from_live_page_to_live_page_never_waits_for_a_connection() {
    // Chromium keeps left pages in its back/forward cache with their live streams open unless the page
    // closes them; at six connections per host the seventh page then hung for about a minute.
    let (w, id) = world_with_work();
    let d = Dashboard::start(&w);
    let b = Driver::start();
    b.goto(&d.url);
    b.page_load_timeout(Duration::from_secs(20));
    let pages = [
        format!("/s/{id}"),
        format!("/s/{id}/interactive"),
        "/batches".to_string(),
        "/bench".to_string(),
        "/approvals".to_string(),
        format!("/s/{id}/interactive"),
        "/".to_string(),
        "/batches".to_string(),
        "/bench".to_string(),
        format!("/s/{id}"),
    ];
    for (i, path) in pages.iter().enumerate() {
        b.goto(&format!("{}{path}?visit={i}", d.base()));
        assert!(b.current_url().contains(&format!("visit={i}")), "{path}");
    }
    // Back: a page restored from the cache reloads itself, so it is live again.
    b.script("history.back(); return 1;");
    b.wait(20, "the previous page", || Some(()).filter(|_| b.current_url().contains("visit=8")));
}

//! The Conversation view (Session → Conversation, `/s/{id}/interactive`): a run of the fake agent shown
//! as an iteration block with Markdown messages and tool cards, hostile Markdown rendered inert, a long
//! seeded session paged with "Load earlier" (the page stays bounded), and, in Chromium, live entries,
//! Send disabled while the agent runs and enabled again when it ends, without a reload.

use crate::browser::Driver;
use crate::support::World;
use crate::web_support::Dashboard;
use ampsm_testutils::{requires, scenario_path};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

const HOSTILE: &str = "<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\">\n\n\
[click me](javascript:window.__pwned=3) <a href=\"javascript:window.__pwned=4\">me too</a>";

/// The claude_timed scenario with Markdown in its first message, a hostile message after it, and a pause
/// of `pause_ms` after that (so a run can be watched).
fn markdown_scenario(dir: &Path, pause_ms: u64) -> PathBuf {
    let mut scen: Value =
        serde_json::from_str(&std::fs::read_to_string(scenario_path("claude_timed")).unwrap()).unwrap();
    let steps = scen["steps"].as_array_mut().unwrap();
    steps[1]["emit"]["message"]["content"][0]["text"] =
        json!("Reading **the README** first.\n\n- one\n- two\n\n```sh\nls -la\n```");
    let mut hostile = steps[1].clone();
    hostile["emit"]["message"]["id"] = json!("msg_hostile");
    hostile["emit"]["message"]["content"][0]["text"] = json!(HOSTILE);
    steps.insert(2, hostile);
    steps.insert(3, json!({ "sleep_ms": pause_ms }));
    let path = dir.join("claude_markdown.json");
    std::fs::write(&path, serde_json::to_string(&scen).unwrap()).unwrap();
    path
}

fn db(w: &World) -> PathBuf {
    w.home().join("sessions.db")
}

/// Number of entries (messages, cards, lines) on a page or fragment.
fn entries(html: &str) -> usize {
    html.matches("class=\"entry ").count()
}

/// The `before` of the page's "Load earlier" link, if it has one.
fn earlier(html: &str) -> Option<i64> {
    let at = html.find("id=\"load-earlier\"")?;
    let tail = &html[at..];
    let v = tail.split("data-before=\"").nth(1)?;
    v[..v.find('"')?].parse().ok()
}

#[test]
fn conversation_shows_markdown_tool_cards_and_renders_hostile_text_inert() {
    let dir = tempfile::tempdir().unwrap();
    let w = World::with_claude(&markdown_scenario(dir.path(), 0));
    let s = w.json(&[
        "new",
        "--repo",
        w.repo_arg(),
        "--name",
        "talk",
        "--agent",
        "claude",
        "--prompt",
        "Go *now*",
    ]);
    let id = s["id"].as_str().unwrap().to_string();
    let r = w.cmd().args(["iterate", "talk"]).output().unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let d = Dashboard::start(&w);
    let page = d.get(&format!("/s/{id}/interactive")).body;

    // The tab is the Conversation; one block for the iteration, with its prompt as Markdown and outcome.
    assert!(page.contains(&format!("href=\"/s/{id}/interactive\" class=\"on\">Conversation</a>")), "{page}");
    assert_eq!(page.matches("<section class=\"iteration\"").count(), 1, "{page}");
    assert!(page.contains("<b>Iteration 1</b>") && page.contains("badge s-success"), "{page}");
    assert!(page.contains("<em>now</em>"), "the prompt as Markdown: {page}");
    // The agent's message as Markdown.
    assert!(page.contains("<strong>the README</strong>"), "{page}");
    assert!(page.contains("<li>one</li>") && page.contains("<pre><code>ls -la"), "{page}");
    // Tool cards: the read's path, the write's new lines, each shell call's command, outcome and output.
    assert_eq!(page.matches("<details class=\"entry tool\"").count(), 4, "{page}");
    assert!(page.contains("Path: <code>") && page.contains("README.md</code>"), "{page}");
    assert!(page.contains("<span class=\"add\">+second note"), "the write's diff: {page}");
    let bash1 = &page[page.find("data-call=\"toolu_t_bash1\"").unwrap()..];
    let bash1 = &bash1[..bash1.find("</details>").unwrap()];
    assert!(bash1.contains("$ false") && bash1.contains("badge s-failed"), "{bash1}");
    assert!(bash1.contains("Exit code 1"), "the failing call's output: {bash1}");
    let bash2 = &page[page.find("data-call=\"toolu_t_bash2\"").unwrap()..];
    let bash2 = &bash2[..bash2.find("</details>").unwrap()];
    assert!(
        bash2.contains("$ true") && bash2.contains("badge s-ok") && bash2.contains(">ok</pre>"),
        "{bash2}"
    );
    assert!(page.contains("Tool calls (4)"), "{page}");
    // The hostile message: no script, no handler, no javascript: link; its text stays.
    assert!(page.contains("me too"), "{page}");
    assert!(!page.contains("window.__pwned = 1</script>"), "{page}");
    assert!(!page.contains("onerror"), "{page}");
    assert!(!page.contains("href=\"javascript"), "{page}");
    assert!(page.contains(">click me</a>"), "the link's text stays: {page}");
    // Send is enabled (nothing runs).
    assert!(page.contains("<button class=\"primary\" id=\"send\" type=\"submit\">Send</button>"), "{page}");
}

#[test]
fn a_long_session_is_paged_and_every_page_stays_bounded() {
    let w = World::new();
    let s = w.json(&["new", "--repo", w.repo_arg(), "--name", "long"]);
    let id = s["id"].as_str().unwrap().to_string();
    // 3,000 lines: messages 0..=999, each with its Bash call and result.
    ampsm_testutils::seed::conversation(&db(&w), &id, 3_000, &[]);
    let d = Dashboard::start(&w);
    let page = d.get(&format!("/s/{id}/interactive")).body;
    assert!(page.contains("message <strong>999</strong>"), "the newest message at the bottom");
    assert!(!page.contains("message <strong>0</strong>"), "the oldest is not on the first page");
    assert!(entries(&page) <= 300, "{} entries on the page", entries(&page));
    assert!(page.contains("Tool calls (1000)"), "the session's count of calls");
    let mut before = earlier(&page).expect("a Load earlier link");
    assert!(
        page.contains(&format!("href=\"/s/{id}/interactive?before={before}\"")),
        "it works without script"
    );

    // Page back to the start with the fragments the script asks for; each page is bounded and older.
    let mut pages = 1;
    let mut seen_first = false;
    loop {
        let r = d.get(&format!("/s/{id}/interactive?before={before}&fragment=1"));
        assert_eq!(r.status, 200);
        assert!(!r.body.contains("<html"), "a fragment, not a page");
        assert!(entries(&r.body) > 0 && entries(&r.body) <= 300, "{}", entries(&r.body));
        seen_first |= r.body.contains("message <strong>0</strong>");
        pages += 1;
        match earlier(&r.body) {
            Some(b) => {
                assert!(b < before, "pages go back");
                before = b;
            }
            None => break,
        }
        assert!(pages < 20, "too many pages");
    }
    assert_eq!(pages, 10, "3,000 lines in pages of 300");
    assert!(seen_first, "the first message is reached");
    // A card whose result is on the next page still shows it (read from the recorded call).
    let first_page = d.get(&format!("/s/{id}/interactive?before={before}")).body;
    assert!(first_page.contains("Back to the latest"), "{first_page}");
}

#[requires(chromium)]
#[test]
fn browser_conversation_pages_streams_and_controls_send() {
    let dir = tempfile::tempdir().unwrap();
    let w = World::with_claude(&markdown_scenario(dir.path(), 4_000));
    let s = w.json(&["new", "--repo", w.repo_arg(), "--name", "live", "--agent", "claude"]);
    let id = s["id"].as_str().unwrap().to_string();
    // An earlier, long iteration: 900 lines (three pages).
    ampsm_testutils::seed::conversation(&db(&w), &id, 900, &[HOSTILE]);
    let d = Dashboard::start(&w);
    let b = Driver::start();
    b.goto(&d.url);
    b.goto(&format!("{}/s/{id}/interactive", d.base()));
    b.script("window.__ampsm_marker = 7; return 1;");
    // The feed's text, laid out or not (entries out of view skip layout: content-visibility).
    let feed =
        || b.script("return document.getElementById('feed').textContent;").as_str().unwrap().to_string();

    // The seeded page: Markdown rendered, the newest at the bottom, "Load earlier" brings older pages in.
    assert!(feed().contains("message 299"), "{}", feed());
    let count = || b.script("return document.querySelectorAll('#feed .entry').length;").as_u64().unwrap();
    let first = count();
    assert!(first <= 300, "{first}");
    b.click("#load-earlier");
    b.wait(10, "the earlier page", || Some(()).filter(|_| count() > first));
    b.click("#load-earlier");
    b.wait(10, "the first page", || Some(()).filter(|_| feed().contains("message 0")));
    assert_eq!(b.script("return document.getElementById('load-earlier') === null;"), json!(true));
    // The hostile message is text: nothing ran, no javascript: link exists.
    assert!(feed().contains("me too"));
    assert_eq!(b.script("return window.__pwned === undefined;"), json!(true));
    assert_eq!(b.script("return document.querySelectorAll('a[href^=\"javascript\"]').length;"), json!(0));

    // Send a message: Send is disabled while the agent runs, entries arrive live, Send comes back.
    b.type_into("#message", "Write the notes");
    b.click("#send");
    b.wait(30, "the run", || Some(()).filter(|_| b.text("#session-status").contains("running")));
    b.script("window.__ampsm_marker = 8; return 1;");
    b.wait(30, "Send disabled", || {
        Some(()).filter(|_| b.script("return document.getElementById('send').disabled;") == json!(true))
    });
    assert!(b.text("#control").contains("the agent is running"));
    b.wait(30, "the live message", || Some(()).filter(|_| feed().contains("the README first")));
    let strong = b.script("return [...document.querySelectorAll('#feed .entry.assistant strong')].map(e => e.textContent).includes('the README');");
    assert_eq!(strong, json!(true), "the live message is Markdown");
    b.wait(60, "the run to end", || Some(()).filter(|_| feed().contains("Wrote NOTES.md.")));
    b.wait(30, "Send enabled", || {
        Some(()).filter(|_| b.script("return document.getElementById('send').disabled;") == json!(false))
    });
    assert_eq!(
        b.script("return window.__ampsm_marker || 0;"),
        json!(8),
        "the page reloaded instead of updating"
    );
    // The live tool cards: open the failing Bash call and read its command and output.
    b.script("document.querySelector('details.tool[data-call=toolu_t_bash1]').scrollIntoView(); return 1;");
    b.click("details.tool[data-call=toolu_t_bash1] summary");
    let card_js = "const c = document.querySelector('details.tool[data-call=toolu_t_bash1]'); return c.open ? c.textContent : '';";
    let card = b.wait(10, "the card open", || {
        b.script(card_js).as_str().filter(|t| !t.is_empty()).map(str::to_string)
    });
    assert!(card.contains("$ false") && card.contains("Exit code 1"), "{card}");
    assert_eq!(b.script("return window.__pwned === undefined;"), json!(true));
    // The iteration's header came in with its outcome.
    b.wait(30, "the outcome", || {
        Some(()).filter(|_| {
            b.script("return document.querySelectorAll('#feed header.it-head .s-success').length;")
                == json!(2)
        })
    });
}

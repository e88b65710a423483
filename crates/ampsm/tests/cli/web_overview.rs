//! The Overview of a session: a cost nobody reported reads "unknown" (never $0.0000), the Remove form
//! asks first, and the iterations, timeline and tool figures of a long session are bounded lists with a
//! count of the rest, while the tool table still counts every call (the dialog tried in Chromium).

use crate::browser::Driver;
use crate::support::World;
use crate::web_support::{Dashboard, metric};
use ampsm_testutils::requires;
use serde_json::json;

#[test]
fn a_long_session_shows_the_latest_entries_and_an_unreported_cost_as_unknown() {
    let w = World::new();
    let s = w.json(&["new", "--repo", w.repo_arg(), "--name", "long"]);
    let id = s["id"].as_str().unwrap().to_string();
    let db = w.home().join("sessions.db");
    // 60 runs of 30 lines each (10 Bash calls with their results), none reporting usage or cost.
    for _ in 0..60 {
        ampsm_testutils::seed::conversation(&db, &id, 30, &[]);
    }
    let m = w.json(&["metrics", &id]);
    assert_eq!(m["tool_calls"], 600, "{m}");
    assert_eq!(m["tools"][0]["count"], 600);
    assert_eq!(m["cost"]["source"], "none");
    let timeline = w.json(&["timeline", &id]);
    let entries = timeline["entries"].as_array().unwrap();
    assert!(entries.len() > 150, "{} timeline entries", entries.len());

    let d = Dashboard::start(&w);
    let page = d.get(&format!("/s/{id}")).body;
    // Nobody reported a cost and no price applies: unknown, not zero.
    assert_eq!(metric(&page, "cost"), "unknown");
    assert_eq!(metric(&page, "cost-per-min"), "unknown");
    assert_eq!(metric(&page, "tool-calls"), "600");
    assert!(page.contains("<td>Bash</td><td class=\"n\">600</td>"), "every call counted in the table");
    // The latest 50 iterations of 60, with a word about the rest.
    assert_eq!(page.matches("data-iteration=").count(), 50);
    assert!(page.contains("data-iteration=\"60\"") && !page.contains("data-iteration=\"10\""));
    assert!(page.contains("The latest 50 of 60"), "{page}");
    assert!(page.contains("Tokens per iteration (latest 50)"), "the chart is bounded as the table");
    // The latest 100 timeline entries, the newest of them shown, and how many are left out.
    let rows = page.split("id=\"timeline\"").nth(1).unwrap().split("</table>").next().unwrap();
    assert_eq!(rows.matches("<tr>").count(), 101, "a header and 100 entries");
    let last = entries.last().unwrap()["summary"].as_str().unwrap().replace('>', "&gt;");
    assert!(rows.contains(&last), "the newest entry {last} is shown");
    assert!(page.contains(&format!("{} earlier entries are not shown", entries.len() - 100)), "{page}");
    // Remove asks first, naming the session (the layout turns data-confirm into a dialog).
    assert!(page.contains("data-confirm=\"Remove session long? "), "{page}");
}

#[test]
#[requires(chromium)]
fn remove_on_the_overview_asks_in_a_dialog_naming_the_session() {
    let w = World::new();
    let s = w.json(&["new", "--repo", w.repo_arg(), "--name", "doomed"]);
    let id = s["id"].as_str().unwrap().to_string();
    ampsm_testutils::seed::conversation(&w.home().join("sessions.db"), &id, 30, &[]);
    let d = Dashboard::start(&w);
    let b = Driver::start();
    b.goto(&d.url);
    b.goto(&format!("{}/s/{id}", d.base()));
    assert_eq!(b.text("[data-metric=cost]"), "unknown");
    let remove = "form[action$='/remove'] button[type=submit]";
    let open = "return document.getElementById('confirm-dialog').open;";
    b.click(remove);
    assert_eq!(b.script(open), json!(true));
    assert!(b.text("#confirm-text").starts_with("Remove session doomed? "), "{}", b.text("#confirm-text"));
    b.click("#confirm-cancel");
    assert_eq!(b.script(open), json!(false));
    assert_eq!(w.json(&["list"]).as_array().unwrap().len(), 1, "Cancel removes nothing");
    b.click(remove);
    b.click("#confirm-ok");
    b.wait(30, "the sessions page after the removal", || {
        Some(()).filter(|_| b.current_url().ends_with("/?done=removed"))
    });
    assert!(w.json(&["list"]).as_array().unwrap().is_empty());
}

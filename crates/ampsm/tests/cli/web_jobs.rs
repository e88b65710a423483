//! Batches and benchmark runs in the dashboard: their pages follow a running job without a reload (item
//! and result statuses, counts, costs) and settle after an abort, in a real Chromium; the list pages follow
//! too; pasted YAML is planned from the text itself (no file left behind) and its errors name "the pasted
//! YAML, line N".

use crate::browser::Driver;
use crate::support::World;
use crate::web_support::{Dashboard, slow_scenario};
use ampsm_testutils::requires;
use serde_json::json;

/// Puts `text` into the form field `css` (a textarea keeps its newlines and indentation as given).
fn fill(b: &Driver, css: &str, text: &str) {
    let (css, text) = (serde_json::to_string(css).unwrap(), serde_json::to_string(text).unwrap());
    b.script(&format!("document.querySelector({css}).value = {text}; return 1;"));
}

fn marker_kept(b: &Driver, value: i64) -> bool {
    b.script("return window.__ampsm_marker || 0;") == json!(value)
}

#[requires(chromium)]
#[test]
fn batch_and_bench_pages_follow_their_runs_and_settle_after_abort_without_reload() {
    let dir = tempfile::tempdir().unwrap();
    let w = World::with_claude(&slow_scenario(dir.path(), 2_500));
    let d = Dashboard::start(&w);
    let b = Driver::start();
    b.goto(&d.url);

    // A batch of three slow items, one at a time, started from the page with pasted YAML.
    b.goto(&format!("{}/batches", d.base()));
    let yaml = format!(
        "name: live-batch\nrepos:\n  - path: {}\nitems:\n  - name: one\n    prompt: wait\n    agent: claude\n  \
         - name: two\n    prompt: wait\n    agent: claude\n  - name: three\n    prompt: wait\n    agent: claude\n\
         concurrency: 1\n",
        w.repo_arg()
    );
    fill(&b, "#yaml", &yaml);
    b.click("#batch-form button[type=submit]");
    let url = b.wait(30, "the batch page", || Some(b.current_url()).filter(|u| u.contains("done=batch")));
    let id = url.split("/batches/").nth(1).unwrap().split('?').next().unwrap().to_string();
    b.script("window.__ampsm_marker = 1; return 1;");
    // The first item finishes and the second starts while the page stays open.
    b.wait(60, "item one passed and item two running", || {
        let items = b.text("#items");
        let rows: Vec<&str> = items.lines().collect();
        let one = rows.iter().find(|r| r.contains("one"))?;
        let two = rows.iter().find(|r| r.contains("two"))?;
        (one.contains("passed") && two.contains("running")).then_some(())
    });
    assert!(b.text("#batch-progress").contains("1/3 done"), "{}", b.text("#batch-progress"));
    // The finished item's cost is on its row, updated live.
    let cost = b.script(
        "return [...document.querySelectorAll('#items tr')].find(r => r.innerText.includes('one')).querySelector('td.cost').innerText;",
    );
    assert!(cost.as_str().unwrap().starts_with('$'), "{cost}");
    assert!(marker_kept(&b, 1), "the batch page reloaded instead of updating");

    // Abort from the page: the status leaves `running` and the counts settle, without a reload.
    b.click("#batch-progress form[action$='/abort'] button");
    b.wait(30, "the notice after abort", || Some(()).filter(|_| b.current_url().contains("done=aborted")));
    b.script("window.__ampsm_marker = 2; return 1;");
    let settled = b.wait(30, "the batch to settle as aborted", || {
        let t = b.text("#batch-progress");
        (t.contains("aborted")
            && !t.contains("Abort batch")
            && t.contains("0 running")
            && t.contains("0 queued"))
        .then_some(t)
    });
    assert!(!settled.lines().next().unwrap().starts_with("running"), "{settled}");
    assert!(settled.contains("Resume batch"), "{settled}");
    let v = w.json(&["batch", "status", &id]);
    assert_eq!(v["status"], "aborted", "{v}");
    assert_eq!(v["counts"]["running"], 0, "{v}");
    assert!(marker_kept(&b, 2), "the batch page reloaded instead of updating");

    // A benchmark run: three repeats of one slow problem, one at a time.
    b.goto(&format!("{}/bench", d.base()));
    let yaml = format!(
        "name: live-bench\nagents: [claude]\nrepeats: 3\nproblems:\n  - id: notes\n    repo: {}\n    \
         prompt: Write the notes\n    test: \"test -f NOTES.md\"\n",
        w.repo_arg()
    );
    fill(&b, "#yaml", &yaml);
    b.click("#bench-form button[type=submit]");
    let url = b.wait(30, "the run page", || Some(b.current_url()).filter(|u| u.contains("done=bench")));
    let run = url.split("/bench/").nth(1).unwrap().split('?').next().unwrap().to_string();
    b.script("window.__ampsm_marker = 3; return 1;");
    b.wait(60, "a result resolved while the next runs", || {
        let t = b.text("#bench-results");
        (t.contains("resolved") && t.contains("running")).then_some(())
    });
    assert!(b.text("#bench-progress").contains("1/3"), "{}", b.text("#bench-progress"));
    assert!(marker_kept(&b, 3), "the run page reloaded instead of updating");

    // The list of runs follows too: an abort from another process shows there without a reload.
    b.goto(&format!("{}/bench", d.base()));
    b.script("window.__ampsm_marker = 4; return 1;");
    assert!(b.text("#bench-runs").contains("running"), "{}", b.text("#bench-runs"));
    w.ok(&["bench", "abort", &run]);
    b.wait(30, "the list to show the abort", || {
        let t = b.text("#bench-runs");
        (t.contains("aborted") && !t.contains("running")).then_some(())
    });
    assert!(marker_kept(&b, 4), "the list of runs reloaded instead of updating");

    // And the run's own page after the abort: aborted, nothing running, no Abort button.
    b.goto(&format!("{}/bench/{run}", d.base()));
    let t = b.text("#bench-progress");
    assert!(t.contains("aborted") && !t.contains("Abort run"), "{t}");
    let v = w.json(&["bench", "show", &run]);
    assert_eq!(v["status"], "aborted", "{v}");
    assert_eq!(v["counts"]["running"], 0, "{v}");
}

#[test]
fn pasted_yaml_is_planned_from_the_text_and_its_errors_name_the_pasted_yaml() {
    let w = World::new();
    let d = Dashboard::start(&w);
    // A YAML error: "the pasted YAML, line N", the text kept in the form.
    let r = d.post("/batches", &[("yaml", "name: x\nrepos: []\nitems: []\nbogus: 1\n")]);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("the pasted YAML, line 4: "), "{}", r.body);
    assert!(r.body.contains("bogus: 1"), "the text is kept: {}", r.body);
    // A relative path has no folder to resolve against in pasted text: refused at its line.
    let yaml = "name: x\nrepos:\n  - path: ./app\nitems:\n  - name: a\n    prompt: p\n";
    let r = d.post("/batches", &[("yaml", yaml)]);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body.contains("the pasted YAML, line 3: repos[0].path: &quot;./app&quot; is a relative path"),
        "{}",
        r.body
    );
    // A repository that is not there: the engine's check points at the line too.
    let yaml = "name: x\nrepos:\n  - path: /nowhere/at/all\nitems:\n  - name: a\n    prompt: p\n";
    let r = d.post("/batches", &[("yaml", yaml)]);
    assert!(r.body.contains("the pasted YAML, line 3"), "{}", r.body);
    let r = d.post("/bench", &[("yaml", "name: x\nagents: [gpt]\nproblems: []\n")]);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("the pasted YAML, line 2"), "{}", r.body);
    assert!(r.body.contains("unknown agent"), "{}", r.body);

    // Good pastes plan and start without a file: nothing is written for them.
    let yaml =
        format!("name: pasted\nrepos:\n  - path: {}\nitems:\n  - name: a\n    prompt: p\n", w.repo_arg());
    let r = d.post("/batches", &[("yaml", &yaml), ("dry_run", "on")]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("1 run(s)"), "{}", r.body);
    let bench = format!(
        "name: pasted\nagents: [claude]\nproblems:\n  - id: p\n    repo: {}\n    prompt: go\n",
        w.repo_arg()
    );
    let r = d.post("/bench", &[("yaml", &bench), ("dry_run", "on")]);
    assert_eq!(r.status, 200, "{}", r.body);
    let r = d.post("/batches", &[("yaml", &yaml)]);
    assert_eq!(r.status, 303, "{}", r.body);
    let id = r.location.unwrap().trim_start_matches("/batches/").split('?').next().unwrap().to_string();
    // Resuming needs no file either: the text is kept with the batch.
    let v = w.json(&["batch", "status", &id]);
    assert!(v["file_path"].is_null(), "{v}");
    for stray in ["web-batches", "web-bench"] {
        assert!(!w.home().join(stray).exists(), "a pasted YAML left {stray}/ behind");
    }
    let yamls: Vec<_> =
        walk(&w.home()).into_iter().filter(|p| p.extension().is_some_and(|e| e == "yaml")).collect();
    assert!(yamls.iter().all(|p| p.file_name().unwrap() == "config.yaml"), "{yamls:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn batch_and_bench_tables_say_unknown_for_an_agent_that_reports_no_cost() {
    let w = crate::support::command_world("printf 'notes\\n' > NOTES.md");
    let d = Dashboard::start(&w);
    let yaml = format!(
        "name: no-cost\nrepos:\n  - path: {}\nitems:\n  - name: one\n    prompt: go\n    agent: command\n",
        w.repo_arg()
    );
    let r = d.post("/batches", &[("yaml", &yaml)]);
    assert_eq!(r.status, 303, "{}", r.body);
    let loc = r.location.unwrap();
    let id = loc.trim_start_matches("/batches/").split('?').next().unwrap().to_string();
    wait_until(|| w.json(&["batch", "status", &id])["counts"]["passed"] == 1);
    let page = d.get(&format!("/batches/{id}")).body;
    assert!(page.contains("<td class=\"n cost\">unknown</td>"), "{page}");
    assert!(page.contains("spent unknown"), "{page}");
    assert!(!page.contains("$0.0000"), "{page}");

    let bench = format!(
        "name: no-cost\nagents: [command]\nproblems:\n  - id: notes\n    repo: {}\n    prompt: go\n    \
         test: \"test -f NOTES.md\"\n",
        w.repo_arg()
    );
    let r = d.post("/bench", &[("yaml", &bench)]);
    assert_eq!(r.status, 303, "{}", r.body);
    let run = r.location.unwrap().trim_start_matches("/bench/").split('?').next().unwrap().to_string();
    wait_until(|| w.json(&["bench", "show", &run])["status"] == "completed");
    let v = w.json(&["bench", "show", &run]);
    assert!(v["results"][0]["cost_usd"].is_null(), "{v}");
    let page = d.get(&format!("/bench/{run}")).body;
    let results = &page[page.find("id=\"bench-results\"").unwrap()..];
    assert!(results.contains(">unknown</td>"), "{results}");
    assert!(!page.contains("$0.0000"), "{page}");
}

fn wait_until(done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

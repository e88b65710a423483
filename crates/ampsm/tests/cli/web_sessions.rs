//! The sessions page and New session, over HTTP and in Chromium: search, filters and paging on 60
//! sessions (each view a link), cost "unknown" for an agent that reports none, the folder browser
//! (folders only, nothing outside the home folder: not `..`, not `/etc`, not through a symlink), the
//! branches endpoint, "run now" with an agent that is not installed (an error, no "running" notice, and
//! the failure in `timeline` after a restart), and the dialog driven as a user would.

use crate::browser::Driver;
use crate::support::{World, command_world};
use crate::web_support::Dashboard;
use ampsm_testutils::{Tool, git, init_repo, requires};
use serde_json::{Value, json};

/// The rows of the sessions table on a page.
fn rows(page: &str) -> usize {
    page.matches("<tr data-session=").count()
}

/// The names shown in the sessions table, in order.
fn names(page: &str) -> Vec<String> {
    page.split("<tr data-session=")
        .skip(1)
        .map(|row| {
            let at = row.find("\">").unwrap() + 2;
            let at = row[at..].find("\">").unwrap() + at + 2;
            row[at..at + row[at..].find('<').unwrap()].to_string()
        })
        .collect()
}

#[test]
fn sessions_page_searches_filters_and_pages_sixty_sessions() {
    let w = World::new();
    let other = init_repo(&w.dir.path().join("other-repo"));
    // 60 sessions: 40 in the world's repo (alpha-*, offline), 20 in another (beta-*, claude); 5 of the
    // betas have a setup that fails (status error); one prompt mentions "refresh tokens".
    for i in 0..40 {
        let name = format!("alpha-{i:02}");
        let prompt = if i == 7 { "Add refresh tokens".to_string() } else { format!("Task {i}") };
        w.ok(&["new", "--repo", w.repo_arg(), "--name", &name, "--agent", "offline", "--prompt", &prompt]);
    }
    for i in 0..20 {
        let name = format!("beta-{i:02}");
        let mut args = vec!["new", "--repo", other.to_str().unwrap(), "--name", &name, "--agent", "claude"];
        if i < 5 {
            args.extend(["--setup", "false"]);
        }
        let _ = w.run(&args);
    }
    assert_eq!(w.json(&["list"]).as_array().unwrap().len(), 60);
    let d = Dashboard::start(&w);

    // Page 1 of 2: 50 rows, newest first; page 2 the last 10; the pager links keep the view.
    let p1 = d.get("/").body;
    assert_eq!(rows(&p1), 50);
    assert!(p1.contains("60 sessions · page 1 of 2"), "{p1}");
    assert_eq!(names(&p1)[0], "beta-19");
    assert!(p1.contains("href=\"/?page=2\""));
    let p2 = d.get("/?page=2").body;
    assert_eq!(rows(&p2), 10);
    assert_eq!(names(&p2).last().unwrap(), "alpha-00");
    assert!(d.get("/?page=abc").status == 200);
    // A page past the last one shows the last one.
    let past = d.get("/?page=99").body;
    assert_eq!(rows(&past), 10);
    assert!(past.contains("page 2 of 2"));

    // Search: by name, by prompt text, by branch; several words must all match.
    let page = d.get("/?q=alpha-1").body;
    assert_eq!(rows(&page), 10, "{:?}", names(&page));
    let page = d.get("/?q=refresh%20tokens").body;
    assert_eq!(names(&page), vec!["alpha-07"]);
    let page = d.get("/?q=amp%2Fbeta-03").body;
    assert_eq!(names(&page), vec!["beta-03"]);
    let page = d.get("/?q=nothing-like-this").body;
    assert_eq!(rows(&page), 0);
    assert!(page.contains("No session matches"));
    // LIKE's wildcards are searched as text.
    assert_eq!(rows(&d.get("/?q=%25").body), 0);

    // Filters: status, repository, agent; combined with search and paging.
    let page = d.get("/?status=error").body;
    assert_eq!(rows(&page), 5, "{:?}", names(&page));
    assert!(names(&page).iter().all(|n| n.starts_with("beta-0")));
    let repo = w.json(&["show", "beta-10"])["session"]["repo_path"].as_str().unwrap().to_string();
    let page = d.get(&format!("/?repo={}", urlencode(&repo))).body;
    assert_eq!(rows(&page), 20);
    assert!(page.contains("20 sessions"));
    let page = d.get("/?agent=offline").body;
    assert_eq!(rows(&page), 40);
    assert!(page.contains("40 sessions") && !page.contains("page 1 of"));
    let page = d.get("/?agent=offline&q=alpha-0&status=idle").body;
    assert_eq!(rows(&page), 10);
    // The filter form shows the view it is on (the live refresh reloads this same URL).
    assert!(page.contains("<option value=\"offline\" selected>offline</option>"), "{page}");
    assert!(page.contains("<option value=\"idle\" selected>idle</option>"));

    // Grouped by repository: a heading per repository, its rows under it.
    let page = d.get("/?group=repo").body;
    assert_eq!(page.matches("<tr class=\"group\">").count(), 2, "{page}");
    assert_eq!(rows(&page), 50);

    // No run yet: cost and +/− say nothing ran, never $0.0000; times are relative, exact in a title.
    assert!(!p1.contains("$0.0000"));
    assert!(p1.contains("<td class=\"n cost\">—</td>"), "{p1}");
    assert!(p1.contains("just now</time>"));
    assert!(p1.contains("<time datetime=\""));
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn cost_is_unknown_for_an_agent_that_reports_none_and_lines_are_counted() {
    let w = command_world("printf 'one\\ntwo\\nthree\\n' > notes.txt");
    let id = w.json(&[
        "new",
        "--repo",
        w.repo_arg(),
        "--name",
        "cmd",
        "--agent",
        "command",
        "--prompt",
        "go",
    ])["id"]
        .as_str()
        .unwrap()
        .to_string();
    w.ok(&["iterate", &id]);
    let d = Dashboard::start(&w);
    let page = d.get("/").body;
    let row = &page[page.find(&format!("data-session=\"{id}\"")).unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains("<td class=\"n cost\">unknown</td>"), "{row}");
    assert!(!row.contains("$0"), "{row}");
    assert!(row.contains("+3"), "{row}");
}

#[test]
fn folder_browser_lists_folders_only_within_home() {
    let w = World::new();
    let home = w.dir.path().canonicalize().unwrap();
    std::fs::create_dir_all(home.join("projects/plain")).unwrap();
    std::fs::write(home.join("a-file.txt"), "not a folder").unwrap();
    std::os::unix::fs::symlink("/etc", home.join("etc-link")).unwrap();
    std::os::unix::fs::symlink(home.join("projects"), home.join("projects-link")).unwrap();
    let d = Dashboard::start(&w);

    // The home folder: its sub-folders, git repositories marked; no files, no hidden folders, no
    // symlink that leads outside.
    let r = d.get("/browse?format=json");
    assert_eq!(r.status, 200, "{}", r.body);
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["path"], home.to_str().unwrap());
    assert_eq!(v["parent"], Value::Null);
    let folders: Vec<(&str, bool)> = v["folders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["git"].as_bool().unwrap()))
        .collect();
    assert!(folders.contains(&("repo", true)), "{folders:?}");
    assert!(folders.contains(&("projects", false)), "{folders:?}");
    assert!(folders.contains(&("projects-link", false)), "a symlink within home is listed: {folders:?}");
    for absent in ["a-file.txt", "etc-link", "ampsm-home"] {
        if absent == "ampsm-home" {
            continue; // a plain folder of the world; listed or not, it is a folder
        }
        assert!(!folders.iter().any(|(n, _)| *n == absent), "{absent} listed: {folders:?}");
    }
    assert!(!folders.iter().any(|(n, _)| n.starts_with('.')));

    // A sub-folder has its parent; the symlink is resolved to where it leads.
    let sub = d.get(&format!("/browse?format=json&path={}", home.join("projects-link").display()));
    let v: Value = serde_json::from_str(&sub.body).unwrap();
    assert_eq!(v["path"], home.join("projects").to_str().unwrap());
    assert_eq!(v["parent"], home.to_str().unwrap());
    assert_eq!(v["folders"][0]["name"], "plain");

    // Refused, each in one line: outside through `..`, /etc, a symlink to /etc, a relative path.
    for bad in [
        format!("{}/..", home.display()),
        "/etc".to_string(),
        home.join("etc-link").display().to_string(),
        "repo".to_string(),
        home.join("a-file.txt").display().to_string(),
    ] {
        let r = d.get(&format!("/browse?format=json&path={}", urlencode(&bad)));
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        let v: Value = serde_json::from_str(&r.body).unwrap();
        let line = v["error"].as_str().unwrap();
        assert!(!line.contains('\n'), "{line}");
        assert!(v["folders"].is_null());
        if bad.starts_with("/etc") || bad.ends_with("etc-link") || bad.ends_with("/..") {
            assert!(line.contains("is outside your home folder"), "{bad}: {line}");
        }
    }

    // Without JavaScript: a page with links into folders and "use this repository".
    let page = d.get("/browse").body;
    assert!(page.contains("use this repository"), "{page}");
    assert!(page.contains(&format!("/?new_repo={}#new", urlencode(home.join("repo").to_str().unwrap()))));
    let r = d.get("/browse?path=/etc");
    assert_eq!(r.status, 400);
    assert!(r.body.contains("is outside your home folder"));
    // "use this repository" opens the form with it, its branches listed.
    let page = d.get(&format!("/?new_repo={}", urlencode(home.join("repo").to_str().unwrap()))).body;
    let details = &page[page.find("<details").unwrap()..];
    let details = &details[..details.find('>').unwrap()];
    assert!(details.contains("new-session") && details.contains(" open"), "{details}");
    assert!(page.contains("<option value=\"main\">main</option>"), "{page}");
}

#[test]
fn branches_endpoint_lists_the_repository_branches() {
    let w = World::new();
    git(&w.repo, &["branch", "feature/login"]);
    let d = Dashboard::start(&w);
    let r = d.get(&format!("/browse/branches?repo={}", urlencode(w.repo_arg())));
    assert_eq!(r.status, 200, "{}", r.body);
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["default_base"], "main");
    let branches: Vec<&str> = v["branches"].as_array().unwrap().iter().map(|b| b.as_str().unwrap()).collect();
    assert!(branches.contains(&"main") && branches.contains(&"feature/login"), "{branches:?}");
    // The same branches `repo-info` lists.
    let info = w.json(&["repo-info", w.repo_arg()]);
    assert_eq!(v["branches"], info["branches"]);

    // Not a repository, outside home, missing: one line each.
    let plain = w.dir.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    for (bad, want) in [
        (plain.display().to_string(), "not a git repository"),
        ("/etc".to_string(), "is outside your home folder"),
        ("".to_string(), "give the repository path"),
    ] {
        let r = d.get(&format!("/browse/branches?repo={}", urlencode(&bad)));
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        let v: Value = serde_json::from_str(&r.body).unwrap();
        assert!(v["error"].as_str().unwrap().contains(want), "{bad}: {v}");
    }
}

#[test]
fn run_now_with_an_agent_that_is_not_installed_shows_the_error_and_records_it() {
    let w = World::new();
    w.write_config("agents:\n  codex:\n    path: /nonexistent/bin/codex\nnotifications:\n  desktop: false\n");
    let d = Dashboard::start(&w);
    // The form offers it as not installed, and does not pick it by default.
    let page = d.get("/").body;
    assert!(page.contains("codex (not installed)"), "{page}");
    assert!(!page.contains("<option value=\"codex\" selected>"));

    let r = d.post(
        "/sessions",
        &[("repo", w.repo_arg()), ("name", "no-codex"), ("agent", "codex"), ("prompt", "Go"), ("run", "on")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let id = w.json(&["list"])[0]["id"].as_str().unwrap().to_string();
    let location = r.location.unwrap();
    assert_eq!(location, format!("/s/{id}"), "no 'started' notice");
    let page = d.get(&location).body;
    assert!(!page.contains("first iteration is running"), "{page}");
    assert!(!page.contains("class=\"note\""), "a green notice: {page}");
    let err = &page[page.find("<div class=\"err\" role=\"alert\">").expect("an error line")..];
    let err = &err[..err.find("</div>").unwrap()];
    assert!(err.contains("not installed"), "{err}");
    // Nothing ran: no iteration, the session idle.
    assert_eq!(w.json(&["show", &id])["session"]["status"], "idle");

    // The failure is the engine's record: in `timeline`, and on the pages after a restart.
    let timeline = w.json(&["timeline", &id]);
    let notes: Vec<String> = timeline["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "note")
        .map(|e| e["summary"].as_str().unwrap().to_string())
        .collect();
    assert!(
        notes.iter().any(|n| n.starts_with("first run failed:") && n.contains("not installed")),
        "{timeline}"
    );
    drop(d);
    let d = Dashboard::start(&w);
    let page = d.get("/").body;
    let row = &page[page.find(&format!("data-session=\"{id}\"")).unwrap()..];
    assert!(row[..row.find("</tr>").unwrap()].contains("not installed"), "{row}");
    let page = d.get(&format!("/s/{id}")).body;
    assert!(page.contains("first run failed:"), "{page}");
}

#[requires(chromium)]
#[test]
fn browser_new_session_dialog_picks_a_repository_and_a_branch() {
    let w = World::new();
    git(&w.repo, &["branch", "feature"]);
    w.ok(&["new", "--repo", w.repo_arg(), "--name", "first", "--agent", "offline"]);
    let d = Dashboard::start(&w);
    let b = Driver::start();
    b.goto(&d.url);

    // The form is in a closed dialog; the button opens it.
    assert_eq!(b.script("return document.getElementById('new-dialog').open;"), Value::Bool(false));
    b.click("#new-session-button");
    b.wait(5, "the dialog", || {
        b.script("return document.getElementById('new-dialog').open;").as_bool().filter(|o| *o)
    });

    // The folder browser marks the repository; "Use" fills the path.
    b.click("#browse-button");
    b.wait(10, "the folder list", || Some(()).filter(|_| b.text("#folder-browser").contains("repo/")));
    // The page with the dialog and the folder browser open has no serious accessibility fault in
    // either theme.
    let violations = axe_violations(&b);
    assert!(violations.is_empty(), "axe: {violations:#?}");
    b.click("#folder-browser li[data-git] button.use");
    let repo_path = w.dir.path().canonicalize().unwrap().join("repo");
    assert_eq!(
        b.script("return document.getElementById('repo').value;"),
        Value::from(repo_path.to_str().unwrap())
    );

    // The known repositories picker fills it too, and the base branches are the repository's.
    b.script("document.getElementById('repo').value=''; return 1;");
    let known = w.json(&["show", "first"])["session"]["repo_path"].as_str().unwrap().to_string();
    b.click(&format!("#known-repo option[value=\"{known}\"]"));
    b.wait(10, "the branches", || Some(()).filter(|_| b.text("#base").contains("feature")));
    assert_eq!(b.script("return document.getElementById('repo').value;"), Value::from(known.as_str()));
    b.click("#base option[value=feature]");
    // The agent chosen by default is an installed one.
    let agent = b.script(
        "var o = document.getElementById('agent').selectedOptions[0]; return [o.value, o.textContent];",
    );
    assert!(!agent[1].as_str().unwrap().contains("not installed"), "{agent}");
    b.type_into("#name", "from-the-dialog");
    b.click("#new-session button[type=submit]");
    b.wait(30, "the session page", || Some(()).filter(|_| b.current_url().contains("/s/")));
    let s = w.json(&["show", "from-the-dialog"]);
    assert_eq!(s["session"]["base_branch"], "feature");
    assert_eq!(s["session"]["agent"], agent[0]);
}

/// Serious or critical axe-core violations of the page as it is, in the dark and the light theme.
fn axe_violations(b: &Driver) -> Vec<String> {
    let axe =
        std::fs::read_to_string(Tool::Axe.find_in(&ampsm_testutils::workspace_root()).unwrap()).unwrap();
    b.script(&format!("{axe}\n;return 1;"));
    let mut found = Vec::new();
    for theme in ["dark", "light"] {
        b.script(&format!(
            "document.documentElement.setAttribute('data-theme', {}); return 1;",
            json!(theme)
        ));
        let v = b.script(
            "return axe.run(document, { resultTypes: ['violations'] }).then(function (r) {
                return r.violations.filter(function (v) { return v.impact === 'serious' || v.impact === 'critical'; })
                  .map(function (v) { return v.id + ': ' + v.nodes.slice(0, 3).map(function (n) {
                    return n.target.join(' '); }).join('; '); });
              });",
        );
        for line in v.as_array().unwrap_or_else(|| panic!("axe did not run: {v}")) {
            found.push(format!("{theme}: {}", line.as_str().unwrap_or_default()));
        }
    }
    found
}

#[test]
fn a_background_run_that_cannot_start_after_its_setup_is_in_the_timeline() {
    // The agent's program exists when the form is posted; the session's setup deletes it, so the first
    // run, started in the background after the setup, fails to start.
    let w = World::new();
    let agent = w.dir.path().join("bin/agent.sh");
    std::fs::create_dir_all(agent.parent().unwrap()).unwrap();
    std::fs::write(&agent, "#!/bin/sh\necho done\n").unwrap();
    std::fs::set_permissions(&agent, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    w.write_config(&format!(
        "agents:\n  command:\n    path: {}\nnotifications:\n  desktop: false\n",
        agent.display()
    ));
    let d = Dashboard::start(&w);
    let setup = format!("rm {}", agent.display());
    let r = d.post(
        "/sessions",
        &[
            ("repo", w.repo_arg()),
            ("name", "vanishing"),
            ("agent", "command"),
            ("prompt", "Go"),
            ("setup", &setup),
            ("run", "on"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let id = w.json(&["list"])[0]["id"].as_str().unwrap().to_string();
    assert_eq!(r.location.unwrap(), format!("/s/{id}?done=setup"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let note = loop {
        let t = w.json(&["timeline", &id]);
        let found = t["entries"].as_array().unwrap().iter().find_map(|e| {
            let s = e["summary"].as_str().unwrap_or_default();
            s.starts_with("run started from the dashboard failed:").then(|| s.to_string())
        });
        if let Some(n) = found {
            break n;
        }
        assert!(std::time::Instant::now() < deadline, "no failure in the timeline: {t}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(note.contains("not installed"), "{note}");
    // Kept after the dashboard is gone.
    d.stop();
    let s = w.json(&["show", &id]);
    assert!(s["session"]["status_note"].as_str().unwrap().contains("not installed"), "{s}");
}

#[test]
fn folder_browser_shows_the_configured_roots_too() {
    let w = World::new();
    let elsewhere = tempfile::tempdir().unwrap();
    let root = elsewhere.path().canonicalize().unwrap();
    init_repo(&root.join("work-repo"));
    w.write_config(&format!("ui:\n  roots: [{}]\n", serde_json::to_string(root.to_str().unwrap()).unwrap()));
    let d = Dashboard::start(&w);
    let r = d.get(&format!("/browse?format=json&path={}", urlencode(root.to_str().unwrap())));
    assert_eq!(r.status, 200, "{}", r.body);
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["folders"][0]["name"], "work-repo");
    assert_eq!(v["folders"][0]["git"], true);
    assert_eq!(v["parent"], Value::Null, "the root's parent is outside");
    assert!(v["roots"].as_array().unwrap().iter().any(|r| r == root.to_str().unwrap()));
    // Its branches can be read; its parent cannot be browsed.
    let r = d.get(&format!("/browse/branches?repo={}", urlencode(root.join("work-repo").to_str().unwrap())));
    assert_eq!(r.status, 200, "{}", r.body);
    let parent = root.parent().unwrap().to_str().unwrap().to_string();
    assert_eq!(d.get(&format!("/browse?format=json&path={}", urlencode(&parent))).status, 400);
}

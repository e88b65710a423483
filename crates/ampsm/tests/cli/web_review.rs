//! Session → Git as a reviewer uses it: the diff with line numbers and syntax highlighting in the unified and
//! side-by-side layouts, the file list with +/− linking to each file, a rename; the hunks of a conflict in
//! the merge preview and in a rebase stopped on it, with the next steps; "merge and push" to a bare remote
//! and a pull request (a stand-in `gh`) through the page; and, in Chromium, the confirmation asked before a
//! squash (cancelling it changes nothing), Collapse/Expand all, and axe on every review view in both themes.

use crate::browser::Driver;
use crate::support::World;
use crate::web_support::Dashboard;
use ampsm_testutils::{Tool, git, requires};
use std::path::PathBuf;

/// A session whose branch renames `old_name.txt`, edits a Rust file and adds a Python one.
fn reviewed_session(w: &World) -> (String, PathBuf) {
    std::fs::write(w.repo.join("old_name.txt"), "one\ntwo\nthree\nfour\nfive\n").unwrap();
    std::fs::write(w.repo.join("lib.rs"), "fn answer() -> u32 {\n    41\n}\n").unwrap();
    git(&w.repo, &["add", "."]);
    git(&w.repo, &["commit", "-q", "-m", "files to review"]);
    let s = w.json(&["new", "--repo", w.repo_arg(), "--name", "rev"]);
    let id = s["id"].as_str().unwrap().to_string();
    let wt = PathBuf::from(s["worktree_path"].as_str().unwrap());
    git(&wt, &["mv", "old_name.txt", "new_name.txt"]);
    std::fs::write(wt.join("lib.rs"), "fn answer() -> u32 {\n    // the real one\n    42\n}\n").unwrap();
    std::fs::write(wt.join("tool.py"), "def main():\n    return \"<ok>\"\n").unwrap();
    git(&wt, &["add", "."]);
    git(&wt, &["commit", "-q", "-m", "amp: review me"]);
    (id, wt)
}

#[test]
fn web_review_diff_has_line_numbers_highlighting_layouts_file_list_and_a_rename() {
    let w = World::new();
    let (id, _wt) = reviewed_session(&w);
    let d = Dashboard::start(&w);
    let page = d.get(&format!("/s/{id}/git")).body;

    // The file list: every file with its +/− and a link to its section.
    let list = between(&page, "id=\"diff-files\"", "</table>");
    assert!(list.contains("old_name.txt → new_name.txt"), "{list}");
    assert!(list.contains("lib.rs") && list.contains("+2") && list.contains("−1"), "{list}");
    assert!(list.contains("tool.py") && list.contains("href=\"#f"), "{list}");

    // Each file is a collapsible section with its own +/−; the rename says so.
    assert_eq!(page.matches("<details class=\"dfile\" open").count(), 3, "{page}");
    let rename = section_of(&page, "new_name.txt");
    assert!(rename.contains("renamed 100%") && rename.contains("No changes to the content."), "{rename}");

    // Line numbers: in lib.rs the new comment is new line 2, and 42 (new line 3) replaced 41 (old line 2).
    let lib = section_of(&page, "lib.rs");
    assert!(lib.contains("<td class=\"ln\"></td><td class=\"ln\">2</td><td class=\"code\">+"), "{lib}");
    assert!(lib.contains("<td class=\"ln\">2</td><td class=\"ln\"></td><td class=\"code\">-"), "{lib}");
    assert!(lib.contains("<tr class=\"hunk\">") && lib.contains("@@ -1,3 +1,4 @@"), "{lib}");
    // Highlighting: Rust keywords, comments and numbers get classes; Python strings too, escaped.
    assert!(lib.contains("<span class=\"hl-k\">fn</span>"), "{lib}");
    assert!(lib.contains("<span class=\"hl-c\">// the real one</span>"), "{lib}");
    assert!(lib.contains("<span class=\"hl-n\">42</span>"), "{lib}");
    let py = section_of(&page, "tool.py");
    assert!(py.contains("class=\"hl-s\"") && py.contains("&lt;ok&gt;") && !py.contains("<ok>"), "{py}");
    assert!(py.contains("added"), "{py}");

    // Side by side: the removed and the added line on one row, old number left, new number right.
    let split = d.get(&format!("/s/{id}/git?view=split")).body;
    assert!(split.contains("<table class=\"d split\">"), "{split}");
    let lib = section_of(&split, "lib.rs");
    assert!(
        lib.contains("<td class=\"ln del\">2</td><td class=\"code del\">-")
            && lib.contains("<td class=\"ln add\">3</td><td class=\"code add\">+"),
        "{lib}"
    );
    let row = lib.split("<tr>").find(|r| r.contains("ln del\">2<")).unwrap();
    assert!(row.contains("ln add\">2<") && row.contains("the real one"), "the pair shares a row: {row}");
    assert!(split.contains("unified</a>"), "a link back to the unified layout");

    // One file only, still in the chosen layout.
    let one = d.get(&format!("/s/{id}/git?view=split&path=tool.py")).body;
    assert_eq!(one.matches("<details class=\"dfile\" open").count(), 1);
    assert!(one.contains("tool.py") && one.contains("<table class=\"d split\">"));
}

#[test]
fn web_review_a_stopped_rebase_shows_the_conflicting_hunks_and_the_next_steps() {
    let w = World::new();
    std::fs::write(w.repo.join("shared.txt"), "line 1\nline 2\nline 3\nline 4\n").unwrap();
    git(&w.repo, &["add", "shared.txt"]);
    git(&w.repo, &["commit", "-q", "-m", "shared"]);
    let s = w.json(&["new", "--repo", w.repo_arg(), "--name", "clash"]);
    let id = s["id"].as_str().unwrap().to_string();
    let wt = PathBuf::from(s["worktree_path"].as_str().unwrap());
    std::fs::write(wt.join("shared.txt"), "line 1\nsession line 2\nline 3\nline 4\n").unwrap();
    git(&wt, &["commit", "-q", "-am", "amp: edit shared"]);
    std::fs::write(w.repo.join("shared.txt"), "line 1\nbase line 2\nline 3\nline 4\n").unwrap();
    git(&w.repo, &["commit", "-q", "-am", "base edit"]);
    let d = Dashboard::start(&w);
    let head = git(&wt, &["rev-parse", "HEAD"]);

    // The merge preview already shows the hunks (read from git's in-memory merge; nothing changes).
    let r = d.post(&format!("/s/{id}/git/merge-preview"), &[("strategy", "squash")]);
    let m = between(&r.body, "id=\"merge-conflicts\"", "</section>");
    assert!(m.contains("ours · <code>main</code>"), "{m}");
    assert!(m.contains("<td class=\"ln\">3</td><td class=\"code ours\">base line 2</td>"), "{m}");
    assert!(m.contains("<td class=\"ln\">5</td><td class=\"code theirs\">session line 2</td>"), "{m}");
    assert!(m.contains("amp-sessions rebase"), "{m}");
    assert_eq!(git(&wt, &["rev-parse", "HEAD"]), head);
    assert!(git(&wt, &["status", "--porcelain"]).is_empty(), "the preview touched the worktree");

    let r = d.post(&format!("/s/{id}/git/rebase"), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let c = between(&r.body, "id=\"conflicts\"", "</section>");
    assert!(c.contains("shared.txt") && c.contains("1 conflict(s)"), "{c}");
    // Both sides with their labels and the file's line numbers (the markers are lines 2, 4 and 6).
    assert!(c.contains("lines 2–6"), "{c}");
    assert!(c.contains("ours · <code>HEAD</code>"), "{c}");
    assert!(c.contains("<td class=\"ln\">3</td><td class=\"code ours\">base line 2</td>"), "{c}");
    assert!(c.contains("<td class=\"ln\">5</td><td class=\"code theirs\">session line 2</td>"), "{c}");
    assert!(c.contains("amp: edit shared"), "the theirs label names the session's commit: {c}");
    assert!(c.contains("<td class=\"ln\">1</td><td class=\"code ctx\"> line 1</td>"), "context: {c}");
    // The steps, and the buttons to finish or give up.
    assert!(
        c.contains("Stage the resolved files") && c.contains("--continue") && c.contains("--abort"),
        "{c}"
    );
    assert!(r.body.contains("Continue rebase") && r.body.contains("Abort rebase"));
    // The page itself shows the same while the rebase is stopped; resolved and continued, it is gone.
    assert!(d.get(&format!("/s/{id}/git")).body.contains("session line 2</td>"));
    std::fs::write(wt.join("shared.txt"), "line 1\nboth line 2\nline 3\nline 4\n").unwrap();
    assert_eq!(d.post(&format!("/s/{id}/git/stage"), &[("path", "shared.txt")]).status, 303);
    let r = d.post(&format!("/s/{id}/git/rebase-continue"), &[]);
    assert!(r.body.contains("Rebased onto"), "{}", r.body);
    assert!(!r.body.contains("id=\"conflicts\""), "{}", r.body);
}

#[test]
fn web_review_merge_and_push_publishes_the_base_to_a_bare_remote() {
    let w = World::new();
    let origin = with_origin(&w);
    let s = w.json(&["new", "--repo", w.repo_arg(), "--name", "pushy"]);
    let id = s["id"].as_str().unwrap().to_string();
    let wt = PathBuf::from(s["worktree_path"].as_str().unwrap());
    std::fs::write(wt.join("pushed.txt"), "to the remote\n").unwrap();
    git(&wt, &["add", "."]);
    git(&wt, &["commit", "-q", "-m", "amp: add pushed.txt"]);
    let d = Dashboard::start(&w);
    let remote_before = git(&origin, &["rev-parse", "main"]);

    // The form offers push and pull request; the preview's button says what will happen and asks first.
    let page = d.get(&format!("/s/{id}/git")).body;
    assert!(
        page.contains("merge and push the base branch") && page.contains("open a pull request"),
        "{page}"
    );
    let r = d.post(&format!("/s/{id}/git/merge-preview"), &[("strategy", "squash"), ("land", "push")]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Merge and push (squash into main)"), "{}", r.body);
    assert!(r.body.contains("data-confirm=\"Merge pushy into main (squash) and push main to its remote?\""));
    assert!(r.body.contains("name=\"land\" value=\"push\""), "{}", r.body);
    assert_eq!(git(&origin, &["rev-parse", "main"]), remote_before, "a preview pushed");

    let r = d.post(&format!("/s/{id}/git/merge"), &[("strategy", "squash"), ("land", "push")]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Pushed <code>main</code> to <code>origin</code>."), "{}", r.body);
    let local = git(&w.repo, &["rev-parse", "main"]);
    assert_ne!(local, remote_before);
    assert_eq!(git(&origin, &["rev-parse", "main"]), local, "the remote has the merge");
    assert!(git(&origin, &["show", "--stat", "main"]).contains("pushed.txt"));

    // An unknown option is one clear line, and nothing happens.
    let r = d.post(&format!("/s/{id}/git/merge-preview"), &[("strategy", "squash"), ("land", "fax")]);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("unknown merge option &quot;fax&quot;"), "{}", r.body);
}

#[test]
fn web_review_pull_request_button_pushes_the_branch_and_shows_the_address() {
    let w = World::new();
    let origin = with_origin(&w);
    // A stand-in for the GitHub CLI: records its arguments and prints an address.
    let bin = w.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = w.dir.path().join("gh.log");
    let gh = bin.join("gh");
    std::fs::write(
        &gh,
        format!("#!/bin/sh\necho \"$@\" > '{}'\necho https://forge.example/acme/app/pull/7\n", log.display()),
    )
    .unwrap();
    std::fs::set_permissions(&gh, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    w.set_env("PATH", &format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()));
    let s = w.json(&["new", "--repo", w.repo_arg(), "--name", "prq"]);
    let id = s["id"].as_str().unwrap().to_string();
    let branch = s["branch"].as_str().unwrap().to_string();
    let wt = PathBuf::from(s["worktree_path"].as_str().unwrap());
    std::fs::write(wt.join("pr.txt"), "for review\n").unwrap();
    git(&wt, &["add", "."]);
    git(&wt, &["commit", "-q", "-m", "amp: add pr.txt"]);
    let main_before = git(&w.repo, &["rev-parse", "main"]);
    let d = Dashboard::start(&w);

    let r = d.post(&format!("/s/{id}/git/merge-preview"), &[("strategy", "squash"), ("land", "pr")]);
    assert!(r.body.contains("Open pull request (against main)"), "{}", r.body);
    let r = d.post(&format!("/s/{id}/git/merge"), &[("strategy", "squash"), ("land", "pr")]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("id=\"pr-result\""), "{}", r.body);
    assert!(r.body.contains("href=\"https://forge.example/acme/app/pull/7\""), "{}", r.body);
    assert!(std::fs::read_to_string(&log).unwrap().contains(&format!("--head {branch}")));
    assert_eq!(
        git(&origin, &["rev-parse", &branch]),
        git(&wt, &["rev-parse", "HEAD"]),
        "the branch was pushed"
    );
    assert_eq!(git(&w.repo, &["rev-parse", "main"]), main_before, "a pull request leaves main alone");
}

/// A bare `origin` that `main` tracks.
fn with_origin(w: &World) -> PathBuf {
    let origin = w.dir.path().join("origin.git");
    git(w.dir.path(), &["clone", "-q", "--bare", w.repo_arg(), origin.to_str().unwrap()]);
    git(&w.repo, &["remote", "add", "origin", origin.to_str().unwrap()]);
    git(&w.repo, &["fetch", "-q", "origin"]);
    git(&w.repo, &["branch", "-q", "--set-upstream-to=origin/main", "main"]);
    origin
}

#[test]
fn web_review_huge_patches_fall_back_to_picking_a_file() {
    let w = World::new();
    let s = w.json(&["new", "--repo", w.repo_arg(), "--name", "huge"]);
    let id = s["id"].as_str().unwrap().to_string();
    let wt = PathBuf::from(s["worktree_path"].as_str().unwrap());
    let big: String = (0..40_000).map(|i| format!("let x{i} = {i};\n")).collect();
    std::fs::write(wt.join("big.js"), &big).unwrap();
    std::fs::write(wt.join("small.txt"), "small\n").unwrap();
    git(&wt, &["add", "."]);
    git(&wt, &["commit", "-q", "-m", "amp: big"]);
    let d = Dashboard::start(&w);
    let page = d.get(&format!("/s/{id}/git")).body;
    assert!(page.contains("id=\"diff-too-big\""), "the whole patch is not rendered");
    assert!(!page.contains("<details class=\"dfile\""), "no file is rendered");
    assert!(
        page.contains("path=small.txt"),
        "each file can be picked: {}",
        between(&page, "diff-files", "</table>")
    );
    // The small file alone renders.
    let one = d.get(&format!("/s/{id}/git?path=small.txt")).body;
    assert!(one.contains("+small"), "{one}");
    // The big file alone is still too large: its first part is shown, plain, and the page says so.
    let big = d.get(&format!("/s/{id}/git?path=big.js")).body;
    assert!(big.contains("id=\"diff-cut\"") && big.contains("are shown; see the rest in the worktree"));
    assert!(big.contains("let x0 = 0;") && !big.contains("let x39999 = 39999;"));
    assert!(!big.contains("class=\"hl-"), "over the highlight budget, the lines are plain");
}

#[requires(chromium)]
#[test]
fn web_review_squash_asks_first_and_cancelling_changes_nothing_then_files_fold() {
    let w = World::new();
    let s = w.json(&["new", "--repo", w.repo_arg(), "--name", "sq"]);
    let id = s["id"].as_str().unwrap().to_string();
    let wt = PathBuf::from(s["worktree_path"].as_str().unwrap());
    for n in 1..=2 {
        std::fs::write(wt.join(format!("f{n}.txt")), "x\n").unwrap();
        git(&wt, &["add", "."]);
        git(&wt, &["commit", "-q", "-m", &format!("amp: f{n}")]);
    }
    let head = git(&wt, &["rev-parse", "HEAD"]);
    let d = Dashboard::start(&w);
    let b = Driver::start();
    b.goto(&d.url);
    b.goto(&format!("{}/s/{id}/git", d.base()));

    // Squash: the dialog asks the form's question; Cancel closes it and the branch is untouched.
    b.click("#squash-form button[type=submit]");
    b.wait(10, "the confirmation dialog", || {
        Some(()).filter(|_| {
            b.script("const d = document.getElementById('confirm-dialog'); return !!(d && d.open);") == true
        })
    });
    assert!(b.text("#confirm-dialog").contains("Squash the session's commits into one?"));
    b.click("#confirm-cancel");
    b.wait(10, "the dialog to close", || {
        Some(()).filter(|_| b.script("return document.getElementById('confirm-dialog').open;") == false)
    });
    assert!(b.current_url().ends_with(&format!("/s/{id}/git")), "{}", b.current_url());
    assert_eq!(git(&wt, &["rev-parse", "HEAD"]), head, "cancelled, yet the branch changed");
    assert_eq!(w.json(&["log", &id]).as_array().unwrap().len(), 2);

    // Confirmed, the squash happens.
    b.click("#squash-form button[type=submit]");
    b.wait(10, "the confirmation dialog", || {
        Some(()).filter(|_| b.script("return document.getElementById('confirm-dialog').open;") == true)
    });
    b.click("#confirm-ok");
    b.wait(20, "the squash", || Some(()).filter(|_| b.current_url().contains("done=squashed")));
    assert_eq!(w.json(&["log", &id]).as_array().unwrap().len(), 1);

    // Collapse all closes every file of the diff, Expand all opens them again.
    let open_files = "return Array.from(document.querySelectorAll('#patch details.dfile')).filter(function (d) { return d.open; }).length;";
    assert_eq!(b.script(open_files), serde_json::json!(2));
    b.click("button[data-fold=close]");
    assert_eq!(b.script(open_files), serde_json::json!(0));
    b.click("button[data-fold=open]");
    assert_eq!(b.script(open_files), serde_json::json!(2));
}

#[requires(chromium, axe)]
#[test]
fn web_review_pages_pass_axe_in_both_themes() {
    let axe =
        std::fs::read_to_string(Tool::Axe.find_in(&ampsm_testutils::workspace_root()).unwrap()).unwrap();
    let w = World::new();
    let (id, wt) = reviewed_session(&w);
    // A conflict with the base too, so the stopped rebase can be checked.
    std::fs::write(w.repo.join("lib.rs"), "fn answer() -> u32 {\n    43\n}\n").unwrap();
    git(&w.repo, &["commit", "-q", "-am", "base edit"]);
    let d = Dashboard::start(&w);
    let b = Driver::start();
    b.window_size(1280, 900);
    b.goto(&d.url);
    let mut found = Vec::new();
    let mut check = |what: &str, path: &str| {
        b.goto(&format!("{}{path}", d.base()));
        b.script(&format!("{axe}\n;return 1;"));
        for theme in ["dark", "light"] {
            b.script(&format!("document.documentElement.setAttribute('data-theme', '{theme}'); return 1;"));
            let v = b.script(
                "return axe.run(document, { resultTypes: ['violations'] }).then(function (r) {
                    return r.violations.filter(function (v) { return v.impact === 'serious' || v.impact === 'critical'; })
                      .map(function (v) { return v.id + ': ' + v.help + ' at ' +
                        v.nodes.slice(0, 3).map(function (n) { return n.target.join(' '); }).join('; '); });
                  });",
            );
            for line in v.as_array().unwrap_or_else(|| panic!("axe did not run: {v}")) {
                found.push(format!("{what} ({theme}): {}", line.as_str().unwrap_or("")));
            }
        }
    };
    check("unified", &format!("/s/{id}/git"));
    check("side by side", &format!("/s/{id}/git?view=split"));
    assert_eq!(d.post(&format!("/s/{id}/git/rebase"), &[]).status, 200);
    assert!(git(&wt, &["status", "--porcelain"]).contains("UU lib.rs"));
    check("conflicts", &format!("/s/{id}/git"));
    assert!(found.is_empty(), "axe found serious or critical violations:\n{}", found.join("\n"));
}

/// The text from the first `start` to the next `end` after it.
fn between<'a>(page: &'a str, start: &str, end: &str) -> &'a str {
    let i = page.find(start).unwrap_or_else(|| panic!("no {start:?} in the page: {page}"));
    let rest = &page[i..];
    &rest[..rest.find(end).map_or(rest.len(), |j| j + end.len())]
}

/// The `<details>` section of the file whose summary names `path`.
fn section_of<'a>(page: &'a str, path: &str) -> &'a str {
    page.split("<details class=\"dfile\"")
        .skip(1)
        .find(|s| s.split("</summary>").next().is_some_and(|h| h.contains(path)))
        .map(|s| &s[..s.find("</details>").unwrap_or(s.len())])
        .unwrap_or_else(|| panic!("no section for {path}"))
}

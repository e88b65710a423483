//! Review and merge: status/diff/log/stage/commit, squash, rebase with conflicts, merge with every strategy
//! whether the base is checked out or not, refusals on a dirty main checkout, a stale base or failing tests,
//! undo after squash and after `rm --force`, export-patch, `--pr`, and clean-environment.
//!
//! The invariants checked throughout: a failed step leaves the base branch and the main checkout exactly as
//! they were, every commit ever made in a session stays reachable from some ref, and a successful merge lands
//! exactly the session's changes.

use crate::support::{World, one_line};
use ampsm_testutils::repo::git;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Everything about the user's checkout that a failed (or a not-checked-out) merge must leave alone.
fn checkout_state(repo: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut state = BTreeMap::new();
    state.insert("index".to_string(), std::fs::read(repo.join(".git/index")).unwrap_or_default());
    for args in [
        &["rev-parse", "HEAD"][..],
        &["symbolic-ref", "-q", "HEAD"],
        &["diff", "--cached", "--binary"],
        &["diff", "--binary"],
        &["stash", "list", "--format=%H %gs"],
        &["ls-files", "-s"],
        &["ls-files", "--others", "--exclude-standard"],
    ] {
        state.insert(
            format!("git {}", args.join(" ")),
            ampsm_testutils::repo::git_soft(repo, args).into_bytes(),
        );
    }
    for (path, bytes) in files(repo) {
        state.insert(format!("file {}", path.display()), bytes);
    }
    state
}

/// All files of a checkout (not .git), with contents.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.file_name().is_some_and(|n| n == ".git") {
                continue;
            }
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.insert(p.strip_prefix(base).unwrap().to_path_buf(), std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn rev(dir: &Path, r: &str) -> String {
    git(dir, &["rev-parse", r]).trim().to_string()
}

fn commit(dir: &Path, file: &str, content: &str, msg: &str) -> String {
    if let Some(parent) = dir.join(file).parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(dir.join(file), content).unwrap();
    git(dir, &["add", "--", file]);
    git(dir, &["commit", "-q", "-m", msg]);
    rev(dir, "HEAD")
}

/// Asserts every commit in `shas` is reachable from some ref of the repository.
fn assert_reachable(repo: &Path, shas: &BTreeSet<String>) {
    for sha in shas {
        let refs = git(repo, &["for-each-ref", "--contains", sha, "--format=%(refname)"]);
        assert!(!refs.trim().is_empty(), "commit {sha} is not reachable from any ref");
    }
}

/// A session with two commits (one agent, one manual) adding `feature/a.txt` and `feature/b.txt`.
struct Scenario {
    w: World,
    id: String,
    wt: PathBuf,
    branch: String,
    seen: BTreeSet<String>,
}

impl Scenario {
    fn new(script: Option<&str>) -> Scenario {
        let w = World::new();
        commit(&w.repo, "shared.txt", "line 1\nline 2\nline 3\n", "add shared");
        let mut args = vec!["new", "--repo", w.repo_arg(), "--name", "feat", "--prompt", "Add the feature"];
        if let Some(s) = script {
            args.extend(["--script", s]);
        }
        let s = w.json(&args);
        let wt = PathBuf::from(s["worktree_path"].as_str().unwrap());
        let mut sc = Scenario {
            id: s["id"].as_str().unwrap().to_string(),
            branch: s["branch"].as_str().unwrap().to_string(),
            wt,
            w,
            seen: BTreeSet::new(),
        };
        let a = commit(&sc.wt, "feature/a.txt", "alpha\n", "amp: add a");
        let b = commit(&sc.wt, "feature/b.txt", "beta\n", "manual: add b");
        sc.seen.extend([a, b]);
        sc
    }

    fn repo(&self) -> &Path {
        &self.w.repo
    }

    /// Record the session branch's current commits as "made in the session".
    fn note(&mut self) {
        let out = git(self.repo(), &["rev-list", &self.branch, "^main"]);
        self.seen.extend(out.lines().map(str::to_string));
    }

    /// Move main with a commit touching `file`, in the main checkout.
    fn move_base(&self, file: &str, content: &str) -> String {
        commit(self.repo(), file, content, "base moved")
    }

    /// Put the main checkout on another branch so `main` is not checked out anywhere.
    fn detach_base(&self) {
        git(self.repo(), &["switch", "-q", "-c", "elsewhere"]);
    }
}

/// The session's changes as a patch between two commits (without `index` lines, which name blobs).
fn change(repo: &Path, from: &str, to: &str) -> String {
    git(repo, &["diff", "--no-color", from, to])
        .lines()
        .filter(|l| !l.starts_with("index "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn each_strategy_lands_exactly_the_session_changes_whether_base_is_checked_out_or_not() {
    for strategy in ["squash", "rebase", "merge"] {
        for checked_out in [true, false] {
            let mut sc = Scenario::new(Some("test -f feature/a.txt"));
            let repo = sc.repo().to_path_buf();
            let fork = rev(&repo, "main");
            let session_head = rev(&sc.wt, "HEAD");
            let expected = change(&repo, &fork, &session_head);
            sc.move_base("other.txt", "unrelated\n");
            if !checked_out {
                sc.detach_base();
                // A dirty checkout of another branch is no obstacle: it is never touched.
                std::fs::write(repo.join("shared.txt"), "user's own edit\n").unwrap();
            }
            let before_checkout = checkout_state(&repo);
            let old_main = rev(&repo, "main");
            let dry = sc.w.json(&["merge", "feat", "--strategy", strategy, "--dry-run"]);
            assert_eq!(dry["would_merge"], true, "{dry}");
            assert_eq!(rev(&repo, "main"), old_main, "dry run moved main");
            assert_eq!(checkout_state(&repo), before_checkout, "dry run touched the checkout");

            let r = sc.w.json(&["merge", "feat", "--strategy", strategy]);
            sc.note();
            let new_main = rev(&repo, "main");
            assert_eq!(r["base_after"], new_main.as_str(), "{r}");
            assert_eq!(r["base_before"], old_main.as_str());
            let label = format!("{strategy}, checked out: {checked_out}");
            // Exactly the session's changes landed on top of the moved base.
            assert_eq!(change(&repo, &old_main, &new_main), expected, "{label}");
            let parents: Vec<String> = git(&repo, &["log", "-1", "--format=%P", &new_main])
                .split_whitespace()
                .map(String::from)
                .collect();
            match strategy {
                "squash" => assert_eq!(parents, std::slice::from_ref(&old_main), "{label}"),
                "merge" => assert_eq!(parents, [old_main.clone(), session_head.clone()], "{label}"),
                _ => {
                    assert_eq!(
                        git(&repo, &["rev-list", "--count", &format!("{old_main}..{new_main}")]).trim(),
                        "2"
                    );
                    assert_eq!(git(&repo, &["rev-list", "--merges", &format!("{old_main}..{new_main}")]), "");
                }
            }
            if checked_out {
                assert_eq!(r["base_update"].as_str().unwrap(), format!("fast-forward in {}", repo.display()));
                assert_eq!(rev(&repo, "HEAD"), new_main);
                assert_eq!(git(&repo, &["status", "--porcelain"]), "", "{label}");
                assert_eq!(std::fs::read_to_string(repo.join("feature/a.txt")).unwrap(), "alpha\n");
            } else {
                assert_eq!(r["base_update"], "ref updated (not checked out)");
                assert_eq!(checkout_state(&repo), before_checkout, "{label}: the user's checkout changed");
            }
            // The session is done, its branch sits at the result, and nothing it made is lost.
            let shown = sc.w.json(&["show", "feat"]);
            assert_eq!(shown["session"]["status"], "done", "{label}");
            assert_eq!(rev(&sc.wt, "HEAD"), new_main, "{label}");
            assert_reachable(&repo, &sc.seen);
            assert!(git(&repo, &["for-each-ref", "--contains", &session_head]).contains("refs/"));
            // Merged work can be removed without --force.
            sc.w.ok(&["rm", "feat"]);
        }
    }
}

#[test]
fn conflicts_refuse_every_strategy_without_changing_anything_then_rebase_resolves_them() {
    let mut sc = Scenario::new(None);
    let repo = sc.repo().to_path_buf();
    commit(&sc.wt, "shared.txt", "line 1\nsession line 2\nline 3\n", "amp: edit shared");
    sc.note();
    sc.move_base("shared.txt", "line 1\nbase line 2\nline 3\n");
    let main_before = rev(&repo, "main");
    let session_before = rev(&sc.wt, "HEAD");
    let state = checkout_state(&repo);

    let dry = sc.w.run(&["merge", "feat", "--dry-run", "--json"]);
    assert!(!dry.status.success());
    let doc: Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(doc["conflicts"], serde_json::json!(["shared.txt"]), "{doc}");
    for strategy in ["squash", "rebase", "merge"] {
        let (code, err) = sc.w.fails(&["merge", "feat", "--strategy", strategy]);
        assert_eq!(code, 3, "{err}");
        let line = one_line(&err);
        assert!(
            line.contains("would conflict in: shared.txt") && line.contains("amp-sessions rebase"),
            "{err}"
        );
        assert_eq!(rev(&repo, "main"), main_before, "{strategy} moved main");
        assert_eq!(checkout_state(&repo), state, "{strategy} touched the checkout");
        assert_eq!(rev(&sc.wt, "HEAD"), session_before, "{strategy} moved the session");
    }

    // Rebase stops on the conflict, reporting the file and the next commands.
    let out = sc.w.run(&["rebase", "feat"]);
    assert_eq!(out.status.code(), Some(3));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("shared.txt") && stdout.contains("rebase") && stdout.contains("--continue"),
        "{stdout}"
    );
    assert!(one_line(&String::from_utf8_lossy(&out.stderr)).contains("--abort"));
    let st = sc.w.json(&["status", "feat"]);
    assert_eq!(st["rebase_in_progress"], true);
    assert_eq!(st["conflicts"], serde_json::json!(["shared.txt"]));
    // Merging in the middle of a rebase is refused; aborting puts everything back.
    let (code, _) = sc.w.fails(&["merge", "feat"]);
    assert_eq!(code, 3);
    let aborted = sc.w.json(&["rebase", "feat", "--abort"]);
    assert_eq!(aborted["outcome"], "aborted");
    assert_eq!(rev(&sc.wt, "HEAD"), session_before);
    assert_eq!(git(&sc.wt, &["status", "--porcelain"]), "");
    assert_eq!(rev(&repo, "main"), main_before);
    assert_eq!(checkout_state(&repo), state);
    assert_reachable(&repo, &sc.seen);

    // Again, resolved this time. --continue refuses while markers remain, and never opens an editor.
    let out = sc.w.run(&["rebase", "feat", "--json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["outcome"], "conflicts");
    assert!(doc["snapshot"]["refname"].as_str().unwrap().contains(&sc.id));
    let (code, err) = sc.w.fails(&["rebase", "feat", "--continue"]);
    assert_eq!(code, 3);
    assert!(one_line(&err).contains("conflict markers are still in: shared.txt"), "{err}");
    std::fs::write(sc.wt.join("shared.txt"), "line 1\nbase and session line 2\nline 3\n").unwrap();
    let done = sc.w.json(&["rebase", "feat", "--continue"]);
    assert_eq!(done["outcome"], "done", "{done}");
    sc.note();
    assert_eq!(git(&sc.wt, &["rev-list", "--count", "main..HEAD"]).trim(), "3");
    assert!(git(&repo, &["merge-base", "--is-ancestor", "main", &sc.branch]).is_empty());
    assert_eq!(checkout_state(&repo), state, "rebasing the session touched the main checkout");

    let head = rev(&sc.wt, "HEAD");
    let expected = change(&repo, &main_before, &head);
    sc.w.json(&["merge", "feat", "--strategy", "squash"]);
    assert_eq!(change(&repo, &main_before, &rev(&repo, "main")), expected);
    assert_eq!(
        std::fs::read_to_string(repo.join("shared.txt")).unwrap(),
        "line 1\nbase and session line 2\nline 3\n"
    );
    assert_reachable(&repo, &sc.seen);
}

#[test]
fn a_dirty_main_checkout_with_the_base_checked_out_refuses_and_changes_nothing() {
    let sc = Scenario::new(None);
    let repo = sc.repo().to_path_buf();
    sc.move_base("other.txt", "unrelated\n");
    // Staged, unstaged, untracked and a stash: all must survive.
    std::fs::write(repo.join("shared.txt"), "stashed\n").unwrap();
    git(&repo, &["stash", "push", "-q"]);
    std::fs::write(repo.join("staged.txt"), "staged\n").unwrap();
    git(&repo, &["add", "staged.txt"]);
    std::fs::write(repo.join("shared.txt"), "unstaged edit\n").unwrap();
    std::fs::write(repo.join("untracked.txt"), "mine\n").unwrap();
    let state = checkout_state(&repo);
    let main_before = rev(&repo, "main");
    let session_before = rev(&sc.wt, "HEAD");
    for strategy in ["squash", "rebase", "merge"] {
        let (code, err) = sc.w.fails(&["merge", "feat", "--strategy", strategy]);
        assert_eq!(code, 3);
        let line = one_line(&err);
        assert!(line.contains("main is checked out in") && line.contains("uncommitted changes"), "{err}");
        assert!(line.contains("nothing was changed"), "{err}");
        assert_eq!(rev(&repo, "main"), main_before);
        assert_eq!(checkout_state(&repo), state, "{strategy} touched a dirty checkout");
        assert_eq!(rev(&sc.wt, "HEAD"), session_before, "{strategy} rewrote the session before refusing");
    }
    let dry = sc.w.run(&["merge", "feat", "--dry-run", "--json"]);
    assert!(!dry.status.success());
    let doc: Value = serde_json::from_slice(&dry.stdout).unwrap();
    let failed: Vec<&str> = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["base checkout clean"]);
    assert_eq!(checkout_state(&repo), state);
}

#[test]
fn failing_or_hanging_tests_and_a_dirty_session_block_the_merge() {
    let sc = Scenario::new(Some("echo 'tests broke' >&2; exit 1"));
    let repo = sc.repo().to_path_buf();
    let state = checkout_state(&repo);
    let main_before = rev(&repo, "main");
    let (code, err) = sc.w.fails(&["merge", "feat"]);
    assert_eq!(code, 3);
    assert!(one_line(&err).contains("test script") && err.contains("tests broke"), "{err}");
    assert_eq!(rev(&repo, "main"), main_before);
    assert_eq!(checkout_state(&repo), state);

    let slow = Scenario::new(Some("sleep 30"));
    let slow_main = rev(slow.repo(), "main");
    let started = std::time::Instant::now();
    let (code, err) = slow.w.fails(&["merge", "feat", "--script-timeout", "1s"]);
    assert_eq!(code, 3);
    assert!(err.contains("timed out"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(rev(slow.repo(), "main"), slow_main);

    let clean = Scenario::new(None);
    std::fs::write(clean.wt.join("loose.txt"), "not committed\n").unwrap();
    let before = rev(clean.repo(), "main");
    let (code, err) = clean.w.fails(&["merge", "feat"]);
    assert_eq!(code, 3);
    assert!(one_line(&err).contains("uncommitted changes (loose.txt)"), "{err}");
    assert_eq!(rev(clean.repo(), "main"), before);
}

#[test]
fn undo_after_squash_brings_back_every_commit() {
    let mut sc = Scenario::new(None);
    commit(&sc.wt, "feature/c.txt", "gamma\n", "amp: add c");
    sc.note();
    std::fs::write(sc.wt.join("feature/a.txt"), "alpha, being edited\n").unwrap();
    let head = rev(&sc.wt, "HEAD");
    let log: Vec<Value> = sc.w.json(&["log", "feat"]).as_array().unwrap().clone();
    assert_eq!(log.len(), 3);
    assert_eq!(log.iter().map(|c| c["agent"] == true).collect::<Vec<_>>(), [true, false, true]);

    // --agent-only: no two agent commits are adjacent, so there is nothing to fold.
    let (code, err) = sc.w.fails(&["squash", "feat", "--agent-only"]);
    assert_eq!(code, 1);
    assert!(one_line(&err).contains("nothing to squash"), "{err}");

    let r = sc.w.json(&["squash", "feat", "-m", "The feature"]);
    assert_eq!(r["squashed"], 3);
    assert_eq!(git(&sc.wt, &["rev-list", "--count", "main..HEAD"]).trim(), "1");
    assert_eq!(git(&sc.wt, &["log", "-1", "--format=%s"]).trim(), "The feature");
    // Same tree, and the uncommitted edit is still there.
    assert_eq!(rev(&sc.wt, "HEAD^{tree}"), rev(&sc.wt, &format!("{head}^{{tree}}")));
    assert_eq!(std::fs::read_to_string(sc.wt.join("feature/a.txt")).unwrap(), "alpha, being edited\n");
    sc.note();
    assert_reachable(sc.repo(), &sc.seen);

    let u = sc.w.json(&["undo", "feat"]);
    assert_eq!(u["recreated"], false);
    assert_eq!(rev(&sc.wt, "HEAD"), head);
    assert_eq!(git(&sc.wt, &["rev-list", "--count", "main..HEAD"]).trim(), "3");
    assert_eq!(std::fs::read_to_string(sc.wt.join("feature/a.txt")).unwrap(), "alpha, being edited\n");
    assert_reachable(sc.repo(), &sc.seen);
    // The squashed state was saved too and can be restored explicitly; plain undo then has nothing left.
    let saved = u["saved_current"]["seq"].as_i64().unwrap();
    sc.w.json(&["undo", "feat", "--snapshot", &saved.to_string()]);
    assert_eq!(git(&sc.wt, &["rev-list", "--count", "main..HEAD"]).trim(), "1");
    let shown = sc.w.json(&["show", "feat"]);
    assert!(shown["snapshots"].as_array().unwrap().len() >= 2);
}

#[test]
fn agent_only_squash_folds_runs_of_agent_commits_and_keeps_mine() {
    let sc = Scenario::new(None);
    commit(&sc.wt, "feature/c.txt", "gamma\n", "amp: add c");
    commit(&sc.wt, "feature/d.txt", "delta\n", "amp: add d");
    let head = rev(&sc.wt, "HEAD");
    let r = sc.w.json(&["squash", "feat", "--agent-only"]);
    assert_eq!(r["squashed"], 2);
    let subjects = git(&sc.wt, &["log", "--reverse", "--format=%s", "main..HEAD"]);
    let subjects: Vec<&str> = subjects.lines().collect();
    assert_eq!(subjects, ["amp: add a", "manual: add b", "amp: 2 agent commits squashed"]);
    assert_eq!(rev(&sc.wt, "HEAD^{tree}"), rev(&sc.wt, &format!("{head}^{{tree}}")));
    // A custom prefix is honoured.
    sc.w.ok(&["config", "set", "git.commit_prefix", "manual:"]);
    let (_, err) = sc.w.fails(&["squash", "feat", "--agent-only"]);
    assert!(err.contains("\"manual:\""), "{err}");
}

#[test]
fn forced_removal_then_undo_recreates_the_worktree_with_uncommitted_work() {
    let mut sc = Scenario::new(None);
    sc.note();
    std::fs::write(sc.wt.join("feature/a.txt"), "alpha edited\n").unwrap();
    std::fs::write(sc.wt.join("new-untracked.txt"), "fresh\n").unwrap();
    let head = rev(&sc.wt, "HEAD");
    sc.w.ok(&["rm", "feat", "--force"]);
    assert!(!sc.wt.exists());
    assert!(ampsm_testutils::repo::git_soft(sc.repo(), &["branch", "--list", &sc.branch]).trim().is_empty());
    assert_reachable(sc.repo(), &sc.seen);

    let u = sc.w.json(&["undo", "feat"]);
    assert_eq!(u["recreated"], true, "{u}");
    assert_eq!(rev(&sc.wt, "HEAD"), head);
    assert_eq!(rev(sc.repo(), &sc.branch), head);
    assert_eq!(std::fs::read_to_string(sc.wt.join("feature/a.txt")).unwrap(), "alpha edited\n");
    assert_eq!(std::fs::read_to_string(sc.wt.join("new-untracked.txt")).unwrap(), "fresh\n");
    let list = sc.w.json(&["list"]);
    assert_eq!(list.as_array().unwrap().len(), 1, "the session is live again");
    assert_eq!(sc.w.json(&["status", "feat"])["ahead"], 2);
    // A second undo has nothing left to restore.
    let (code, err) = sc.w.fails(&["undo", "feat"]);
    assert_eq!(code, 1);
    assert!(one_line(&err).contains("no snapshot left"), "{err}");
}

#[test]
fn rollback_drops_changes_and_undo_restores_them() {
    let sc = Scenario::new(None);
    let head = rev(&sc.wt, "HEAD");
    std::fs::write(sc.wt.join("feature/a.txt"), "scratch\n").unwrap();
    std::fs::write(sc.wt.join("junk.txt"), "junk\n").unwrap();
    sc.w.json(&["rollback", "feat"]);
    assert_eq!(git(&sc.wt, &["status", "--porcelain"]), "");
    assert_eq!(rev(&sc.wt, "HEAD"), head);
    sc.w.json(&["rollback", "feat", "--to", "HEAD~1"]);
    assert_eq!(rev(&sc.wt, "HEAD"), rev(&sc.wt, &format!("{head}~1")));
    sc.w.json(&["undo", "feat"]);
    assert_eq!(rev(&sc.wt, "HEAD"), head);
    sc.w.json(&["undo", "feat"]);
    assert_eq!(std::fs::read_to_string(sc.wt.join("junk.txt")).unwrap(), "junk\n");
    assert_eq!(std::fs::read_to_string(sc.wt.join("feature/a.txt")).unwrap(), "scratch\n");
    let (code, _) = sc.w.fails(&["rollback", "feat", "--to", "no-such-ref"]);
    assert_ne!(code, 0);
}

#[test]
fn status_diff_log_stage_commit_and_export_patch() {
    let sc = Scenario::new(None);
    let repo = sc.repo().to_path_buf();
    std::fs::write(sc.wt.join("feature/a.txt"), "alpha 2\n").unwrap();
    std::fs::write(sc.wt.join("notes.md"), "new\n").unwrap();
    let st = sc.w.json(&["status", "feat"]);
    assert_eq!(st["ahead"], 2);
    assert_eq!(st["unstaged"][0]["path"], "feature/a.txt");
    assert_eq!(st["untracked"], serde_json::json!(["notes.md"]));

    let names = sc.w.ok(&["diff", "feat", "--name-only"]);
    assert_eq!(names.lines().collect::<Vec<_>>(), ["feature/a.txt", "feature/b.txt"]);
    let un = sc.w.json(&["diff", "feat", "--uncommitted", "--stat"]);
    assert_eq!(un["files"][0]["path"], "feature/a.txt");
    assert_eq!(un["untracked"], serde_json::json!(["notes.md"]));
    let only_b = sc.w.ok(&["diff", "feat", "--", "feature/b.txt"]);
    assert!(only_b.contains("+beta") && !only_b.contains("alpha"), "{only_b}");

    let (code, _) = sc.w.fails(&["commit", "feat", "-m", "nothing staged"]);
    assert_eq!(code, 1);
    let staged = sc.w.json(&["stage", "feat", "notes.md"]);
    assert_eq!(staged["staged"][0]["path"], "notes.md");
    let un = sc.w.json(&["unstage", "feat", "--all"]);
    assert!(un["staged"].as_array().unwrap().is_empty());
    let (code, _) = sc.w.fails(&["stage", "feat"]);
    assert_eq!(code, 2);
    sc.w.json(&["stage", "feat", "--all"]);
    let c = sc.w.json(&["commit", "feat", "-m", "manual: notes"]);
    assert_eq!(c["files"].as_array().unwrap().len(), 2);
    assert!(git(&sc.wt, &["log", "-1", "--format=%B"]).contains(&format!("Session: {}", sc.id)));
    assert_eq!(sc.w.json(&["log", "feat"]).as_array().unwrap().len(), 3);

    // The exported patch applies to the base and carries exactly the branch's changes.
    let patch = sc.w.dir.path().join("feat.patch");
    let e = sc.w.json(&["export-patch", "feat", "--out", patch.to_str().unwrap()]);
    assert_eq!(e["commits"], 3);
    git(&repo, &["apply", "--check", patch.to_str().unwrap()]);
    let text = sc.w.ok(&["export-patch", "feat"]);
    assert_eq!(text.as_bytes(), std::fs::read(&patch).unwrap());
    assert!(text.contains("+alpha 2") && text.contains("notes.md"));
    let mbox = sc.w.ok(&["export-patch", "feat", "--commits"]);
    assert_eq!(mbox.matches("\nSubject: ").count() + usize::from(mbox.starts_with("Subject: ")), 3);
}

/// A bare `origin`, a clone with `main` tracking it, and a second clone to move origin.
fn with_remote(w: &World) -> PathBuf {
    let origin = w.dir.path().join("origin.git");
    git(w.dir.path(), &["clone", "-q", "--bare", w.repo_arg(), origin.to_str().unwrap()]);
    git(&w.repo, &["remote", "add", "origin", origin.to_str().unwrap()]);
    git(&w.repo, &["fetch", "-q", "origin"]);
    git(&w.repo, &["branch", "-q", "--set-upstream-to=origin/main", "main"]);
    origin
}

#[test]
fn a_base_behind_its_remote_is_refused_and_push_publishes_the_merge() {
    let sc = Scenario::new(None);
    let repo = sc.repo().to_path_buf();
    let origin = with_remote(&sc.w);
    let other = sc.w.dir.path().join("other-clone");
    git(sc.w.dir.path(), &["clone", "-q", origin.to_str().unwrap(), other.to_str().unwrap()]);
    git(&other, &["config", "user.name", "Other"]);
    git(&other, &["config", "user.email", "o@example.invalid"]);
    commit(&other, "upstream.txt", "from a colleague\n", "colleague work");
    git(&other, &["push", "-q", "origin", "main"]);

    let state = checkout_state(&repo);
    let main_before = rev(&repo, "main");
    let (code, err) = sc.w.fails(&["merge", "feat"]);
    assert_eq!(code, 3);
    assert!(one_line(&err).contains("main is 1 commit(s) behind origin/main"), "{err}");
    assert_eq!(rev(&repo, "main"), main_before);
    assert_eq!(checkout_state(&repo), state);

    // The user updates main; rebase fetches and builds on it; merge --push publishes.
    git(&repo, &["pull", "-q", "--ff-only"]);
    let r = sc.w.json(&["rebase", "feat"]);
    assert_eq!(r["fetched"], "origin");
    assert_eq!(r["outcome"], "done");
    let m = sc.w.json(&["merge", "feat", "--strategy", "rebase", "--push"]);
    assert_eq!(m["pushed"], "origin");
    assert_eq!(git(&origin, &["rev-parse", "main"]).trim(), rev(&repo, "main"));
    assert!(repo.join("upstream.txt").exists() && repo.join("feature/b.txt").exists());
}

#[test]
fn pr_uses_gh_when_installed_and_says_clearly_when_it_is_not() {
    let sc = Scenario::new(None);
    let repo = sc.repo().to_path_buf();
    let origin = with_remote(&sc.w);
    let main_before = rev(&repo, "main");
    let git_dir = PathBuf::from(
        String::from_utf8(
            std::process::Command::new("sh").args(["-c", "command -v git"]).output().unwrap().stdout,
        )
        .unwrap()
        .trim(),
    );
    let bin = sc.w.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(&git_dir, bin.join("git")).unwrap();
    for tool in ["sh", "cat"] {
        let path = String::from_utf8(
            std::process::Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        std::os::unix::fs::symlink(path.trim(), bin.join(tool)).unwrap();
    }
    let out = sc.w.cmd().args(["merge", "feat", "--pr"]).env("PATH", &bin).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(one_line(&err).contains("`gh` is not installed"), "{err}");
    assert_eq!(rev(&repo, "main"), main_before);

    let args_file = sc.w.dir.path().join("gh-args");
    std::fs::write(
        bin.join("gh"),
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done > {}\necho https://example.invalid/pull/7\n",
            args_file.display()
        ),
    )
    .unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(bin.join("gh")).unwrap().permissions(),
        0o755,
    );
    std::fs::set_permissions(bin.join("gh"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // A dirty main checkout is no obstacle to a pull request, and stays as it is.
    std::fs::write(repo.join("shared.txt"), "user's edit\n").unwrap();
    let state = checkout_state(&repo);
    let out = sc.w.cmd().args(["merge", "feat", "--pr", "--json"]).env("PATH", &bin).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["pr_url"], "https://example.invalid/pull/7");
    let args = std::fs::read_to_string(&args_file).unwrap();
    let args: Vec<&str> = args.lines().collect();
    assert_eq!(&args[..6], ["pr", "create", "--base", "main", "--head", sc.branch.as_str()]);
    assert_eq!(git(&origin, &["rev-parse", &sc.branch]).trim(), rev(&sc.wt, "HEAD"));
    assert_eq!(rev(&repo, "main"), main_before, "--pr must not merge locally");
    assert_eq!(checkout_state(&repo), state);
}

#[test]
fn clean_environment_reports_first_and_never_loses_work() {
    let w = World::new();
    let repo = w.repo.clone();
    // A live session that must be left alone.
    let keep = w.json(&["new", "--repo", w.repo_arg(), "--name", "keep"]);
    let keep_wt = PathBuf::from(keep["worktree_path"].as_str().unwrap());
    // A removed session whose branch was kept, with a commit found nowhere else.
    let gone = w.json(&["new", "--repo", w.repo_arg(), "--name", "gone"]);
    let gone_wt = PathBuf::from(gone["worktree_path"].as_str().unwrap());
    let gone_branch = gone["branch"].as_str().unwrap().to_string();
    let lonely = commit(&gone_wt, "lonely.txt", "only here\n", "amp: lonely");
    w.ok(&["rm", "gone", "--force", "--keep-branch"]);
    // A stray worktree under the root with uncommitted work and no session.
    let stray = w.home().join("worktrees").join("repo").join("stray");
    git(&repo, &["worktree", "add", "-q", "-b", "amp/stray", stray.to_str().unwrap(), "main"]);
    std::fs::write(stray.join("precious.txt"), "do not lose me\n").unwrap();
    // A live session whose worktree vanished.
    let vanish = w.json(&["new", "--repo", w.repo_arg(), "--name", "vanish"]);
    let vanish_wt = PathBuf::from(vanish["worktree_path"].as_str().unwrap());
    let vanish_commit = commit(&vanish_wt, "v.txt", "v\n", "amp: v");
    std::fs::remove_dir_all(&vanish_wt).unwrap();
    // A lock file nobody holds.
    let lock = w.home().join("locks").join("repo-0123456789abcdef.lock");
    std::fs::write(&lock, "pid 1 holds the lock\n").unwrap();

    let refs_before = git(&repo, &["for-each-ref"]);
    let dry = w.json(&["clean-environment"]);
    assert_eq!(dry["dry_run"], true);
    let kinds: BTreeSet<&str> =
        dry["items"].as_array().unwrap().iter().map(|i| i["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["orphaned-worktree", "orphaned-branch", "vanished-worktree", "stale-lock"]),
        "{dry}"
    );
    assert!(dry["items"].as_array().unwrap().iter().all(|i| i["done"] == false));
    assert_eq!(git(&repo, &["for-each-ref"]), refs_before, "a dry run changed refs");
    assert!(stray.join("precious.txt").exists() && lock.exists());

    let done = w.json(&["clean-environment", "--yes"]);
    let items = done["items"].as_array().unwrap();
    assert!(items.iter().all(|i| i["done"] == true || i["skipped"].is_string()), "{done}");
    assert!(!stray.exists() && !lock.exists());
    assert!(keep_wt.exists(), "a live session was cleaned");
    assert!(ampsm_testutils::repo::git_soft(&repo, &["branch", "--list", &gone_branch]).trim().is_empty());
    // The stray worktree's uncommitted file and both lonely commits are still reachable from snapshot refs.
    let stray_item = items.iter().find(|i| i["kind"] == "orphaned-worktree").unwrap();
    let snap = stray_item["snapshot"].as_str().unwrap();
    assert_eq!(git(&repo, &["show", &format!("{snap}:precious.txt")]), "do not lose me\n");
    assert_reachable(&repo, &BTreeSet::from([lonely, vanish_commit]));
    let list = w.json(&["list"]);
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["keep"]);
    assert_eq!(w.json(&["clean-environment"])["items"].as_array().unwrap().len(), 0);
}

#[test]
fn an_untracked_file_in_the_way_refuses_the_merge_and_is_kept() {
    let sc = Scenario::new(None);
    let repo = sc.repo().to_path_buf();
    std::fs::create_dir_all(repo.join("feature")).unwrap();
    std::fs::write(repo.join("feature/a.txt"), "the user's own draft\n").unwrap();
    let state = checkout_state(&repo);
    let main_before = rev(&repo, "main");
    for strategy in ["squash", "rebase", "merge"] {
        let (code, err) = sc.w.fails(&["merge", "feat", "--strategy", strategy]);
        assert_eq!(code, 3);
        assert!(one_line(&err).contains("untracked feature/a.txt would be overwritten"), "{err}");
        assert_eq!(rev(&repo, "main"), main_before);
        assert_eq!(checkout_state(&repo), state);
    }
}

#[test]
fn rebase_onto_another_branch_makes_it_the_base_and_merge_updates_it_in_place() {
    let mut sc = Scenario::new(None);
    let repo = sc.repo().to_path_buf();
    git(&repo, &["branch", "develop"]);
    git(&repo, &["switch", "-q", "develop"]);
    commit(&repo, "dev.txt", "develop work\n", "develop work");
    git(&repo, &["switch", "-q", "main"]);
    let state = checkout_state(&repo);
    let r = sc.w.json(&["rebase", "feat", "--onto", "develop"]);
    assert_eq!(r["outcome"], "done");
    sc.note();
    assert_eq!(sc.w.json(&["show", "feat"])["session"]["base_branch"], "develop");
    let develop_before = rev(&repo, "develop");
    let head = rev(&sc.wt, "HEAD");
    let expected = change(&repo, &develop_before, &head);
    let m = sc.w.json(&["merge", "feat", "--strategy", "merge"]);
    assert_eq!(m["base_branch"], "develop");
    assert_eq!(m["base_update"], "ref updated (not checked out)");
    assert_eq!(change(&repo, &develop_before, &rev(&repo, "develop")), expected);
    assert_eq!(checkout_state(&repo), state, "main's checkout changed");
    assert_reachable(&repo, &sc.seen);
}

#[test]
fn a_session_on_a_remote_tracking_base_fetches_before_rebasing() {
    let w = World::new();
    let origin = with_remote(&w);
    let s = w.json(&["new", "--repo", w.repo_arg(), "--name", "remote-based", "--base", "origin/main"]);
    let wt = PathBuf::from(s["worktree_path"].as_str().unwrap());
    commit(&wt, "mine.txt", "mine\n", "amp: mine");
    let other = w.dir.path().join("other-clone");
    git(w.dir.path(), &["clone", "-q", origin.to_str().unwrap(), other.to_str().unwrap()]);
    git(&other, &["config", "user.name", "Other"]);
    git(&other, &["config", "user.email", "o@example.invalid"]);
    let theirs = commit(&other, "theirs.txt", "theirs\n", "colleague work");
    git(&other, &["push", "-q", "origin", "main"]);
    let r = w.json(&["rebase", "remote-based"]);
    assert_eq!(r["fetched"], "origin");
    assert_eq!(r["outcome"], "done", "{r}");
    assert!(git(&wt, &["merge-base", "--is-ancestor", &theirs, "HEAD"]).is_empty());
    assert!(wt.join("theirs.txt").exists() && wt.join("mine.txt").exists());
    // A remote-tracking base cannot be merged into locally.
    let (code, err) = w.fails(&["merge", "remote-based"]);
    assert_eq!(code, 2);
    assert!(one_line(&err).contains("not a local branch"), "{err}");
}

#[test]
fn kill_9_just_before_the_base_moves_leaves_base_and_checkout_alone() {
    let mut sc = Scenario::new(None);
    let repo = sc.repo().to_path_buf();
    sc.move_base("other.txt", "unrelated\n");
    let state = checkout_state(&repo);
    let main_before = rev(&repo, "main");
    let mut child =
        sc.w.cmd()
            .args(["merge", "feat", "--strategy", "rebase"])
            .env("AMPSM_FAULT_PAUSE", "merge:before-base-update")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
    // The fault point prints a marker on stderr; wait for it, then kill -9.
    let mut stderr = child.stderr.take().unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 256];
    while !seen.contains("fault point reached") {
        let n = std::io::Read::read(&mut stderr, &mut buf).unwrap();
        assert!(n > 0, "merge ended before the fault point: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    sc.note();
    assert_eq!(rev(&repo, "main"), main_before);
    assert_eq!(checkout_state(&repo), state);
    assert_reachable(&repo, &sc.seen);
    // The lock died with the process: the merge can simply be run again.
    let m = sc.w.json(&["merge", "feat", "--strategy", "rebase"]);
    assert_eq!(m["base_before"], main_before.as_str());
    assert_eq!(rev(&repo, "main"), rev(&sc.wt, "HEAD"));
    assert_reachable(&repo, &sc.seen);
}

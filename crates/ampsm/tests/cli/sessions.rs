//! Session lifecycle: new, list, show, rm, repo-info, config, repair, crash safety.

use crate::support::{World, one_line};
use ampsm_testutils::repo::git;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Everything about a checkout that `new` and `rm` must not change.
fn checkout_state(repo: &Path) -> Vec<(String, Vec<u8>)> {
    let mut state = vec![("index bytes".to_string(), std::fs::read(repo.join(".git/index")).unwrap())];
    for args in [
        &["rev-parse", "HEAD"][..],
        &["symbolic-ref", "HEAD"],
        &["diff", "--cached", "--binary"],
        &["diff", "--binary"],
        &["stash", "list", "--format=%H %gs"],
        &["ls-files", "-s"],
        &["ls-files", "--others", "--exclude-standard"],
    ] {
        state.push((format!("git {}", args.join(" ")), git(repo, args).into_bytes()));
    }
    for f in ["README.md", "tracked.txt", "staged.txt", "untracked.txt"] {
        state.push((f.to_string(), std::fs::read(repo.join(f)).unwrap_or_default()));
    }
    state
}

#[test]
fn new_and_rm_leave_a_dirty_checkout_with_staged_changes_and_a_stash_untouched() {
    let w = World::new();
    let repo = &w.repo;
    std::fs::write(repo.join("tracked.txt"), "v1\n").unwrap();
    git(repo, &["add", "tracked.txt"]);
    git(repo, &["commit", "-q", "-m", "tracked"]);
    std::fs::write(repo.join("tracked.txt"), "stashed change\n").unwrap();
    git(repo, &["stash", "push", "-q", "-m", "my stash"]);
    std::fs::write(repo.join("staged.txt"), "staged\n").unwrap();
    git(repo, &["add", "staged.txt"]);
    std::fs::write(repo.join("tracked.txt"), "dirty working tree\n").unwrap();
    std::fs::write(repo.join("untracked.txt"), "untracked\n").unwrap();

    let before = checkout_state(repo);
    let s = w.json(&["new", "--repo", w.repo_arg(), "--name", "clean-check", "--prompt", "x"]);
    assert_eq!(checkout_state(repo), before, "new changed the user's checkout");
    let worktree = PathBuf::from(s["worktree_path"].as_str().unwrap());
    assert!(worktree.join("README.md").exists());
    assert!(!worktree.starts_with(repo), "the worktree must live outside the repository");
    // The session's work does not leak into the main checkout.
    std::fs::write(worktree.join("agent.txt"), "agent work\n").unwrap();
    git(&worktree, &["add", "agent.txt"]);
    git(&worktree, &["commit", "-q", "-m", "agent work"]);
    w.ok(&["rm", "clean-check", "--force"]);
    assert_eq!(checkout_state(repo), before, "rm changed the user's checkout");
    assert!(!worktree.exists());
}

#[test]
fn sessions_are_listed_shown_and_resolved_by_prefix_or_name() {
    let w = World::new();
    let a =
        w.json(&["new", "--repo", w.repo_arg(), "--name", "alpha", "--agent", "claude", "--model", "sonnet"]);
    let id = a["id"].as_str().unwrap().to_string();
    assert_eq!(a["status"], "idle");
    assert!(a["branch"].as_str().unwrap().starts_with("amp/alpha-"));
    assert_eq!(
        git(&w.repo, &["rev-parse", a["branch"].as_str().unwrap()]).trim(),
        git(&w.repo, &["rev-parse", "main"]).trim()
    );
    w.ok(&["new", "--repo", w.repo_arg(), "--name", "beta"]);
    let list = w.json(&["list"]);
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["beta", "alpha"]);
    let table = w.ok(&["list"]);
    assert!(table.lines().next().unwrap().starts_with("ID"), "{table}");
    assert!(table.contains("alpha") && table.contains("claude"));
    assert_eq!(w.json(&["show", &id[..8]])["session"]["name"], "alpha");
    assert_eq!(w.json(&["show", "alpha"])["session"]["id"], id.as_str());
    assert_eq!(w.json(&["list", "--status", "idle"]).as_array().unwrap().len(), 2);
    assert_eq!(w.json(&["list", "--status", "running"]).as_array().unwrap().len(), 0);
    assert_eq!(w.json(&["list", "--repo", w.repo_arg()]).as_array().unwrap().len(), 2);
    let info = w.json(&["repo-info", w.repo_arg()]);
    assert_eq!(info["default_branch"], "main");
    assert_eq!(info["sessions"], 2);
    assert_eq!(info["worktrees"], 3);
    let (code, err) = w.fails(&["show", "nope"]);
    assert_eq!(code, 2);
    assert!(one_line(&err).contains("no session matches \"nope\""), "{err}");
}

#[test]
fn bad_input_gets_a_one_line_error_naming_the_problem() {
    let w = World::new();
    let repo = w.repo_arg();
    let (code, err) = w.fails(&["new", "--repo", repo, "--name", "../escape"]);
    assert_eq!(code, 2);
    assert!(one_line(&err).contains("invalid session name \"../escape\""), "{err}");
    let (_, err) = w.fails(&["new", "--repo", repo, "--name", "has space"]);
    assert!(one_line(&err).contains("whitespace"), "{err}");
    let (_, err) = w.fails(&["new", "--repo", repo, "--name", "x", "--base", "mian"]);
    let line = one_line(&err);
    assert!(
        line.contains("base \"mian\" does not name a branch or commit")
            && line.contains("did you mean: main"),
        "{err}"
    );
    let (_, err) = w.fails(&["new", "--repo", w.dir.path().to_str().unwrap(), "--name", "x"]);
    assert!(one_line(&err).contains("not a git repository"), "{err}");
    let (_, err) = w.fails(&["new", "--repo", repo, "--name", "x", "--agent", "gpt"]);
    assert!(one_line(&err).contains("unknown agent \"gpt\""), "{err}");
    w.ok(&["new", "--repo", repo, "--name", "dup"]);
    let (_, err) = w.fails(&["new", "--repo", repo, "--name", "dup"]);
    assert!(one_line(&err).contains("a session named \"dup\" already exists"), "{err}");
    // Nothing half-made was left by the failures.
    assert_eq!(w.json(&["list"]).as_array().unwrap().len(), 1);
    assert_eq!(git(&w.repo, &["branch", "--list"]).lines().count(), 2);
}

#[test]
fn config_errors_name_file_line_and_column_and_unknown_keys_warn() {
    let w = World::new();
    std::fs::create_dir_all(w.home()).unwrap();
    let config = w.home().join("config.yaml");
    std::fs::write(&config, "git:\n  commit_prefix: \"amp:\"\n  default_base_branch: [unclosed\n").unwrap();
    let (code, err) = w.fails(&["list"]);
    assert_eq!(code, 2);
    let line = one_line(&err);
    assert!(line.starts_with(&format!("error: {}:3:", config.display())), "{err}");

    std::fs::write(&config, "notifications:\n  desktop: sometimes\n").unwrap();
    let (_, err) = w.fails(&["list"]);
    assert!(one_line(&err).contains("config.yaml:2:"), "{err}");

    std::fs::write(&config, "git:\n  comit_prefix: \"x\"\n").unwrap();
    let out = w.run(&["list"]);
    assert!(out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("config.yaml:2: unknown config key `git.comit_prefix`"), "{err}");

    std::fs::remove_file(&config).unwrap();
    assert_eq!(w.ok(&["config", "path"]).trim(), config.to_str().unwrap());
    assert_eq!(w.ok(&["config", "get", "amp.timeout"]).trim(), "300s");
    w.ok(&["config", "set", "git.commit_prefix", "wip:"]);
    assert_eq!(w.json(&["config", "get", "git.commit_prefix"])["value"], "wip:");
    let (_, err) = w.fails(&["config", "set", "amp.timeout", "whenever"]);
    assert!(one_line(&err).contains("amp.timeout"), "{err}");
    let (_, err) = w.fails(&["config", "get", "git.prefx"]);
    assert!(one_line(&err).contains("unknown config key \"git.prefx\""), "{err}");
    assert!(w.json(&["config", "list"])["ui.theme"] == "gruvbox");
    // The branch prefix is configurable.
    w.ok(&["config", "set", "git.branch_prefix", "agents/"]);
    let s = w.json(&["new", "--repo", w.repo_arg(), "--name", "pfx"]);
    assert!(s["branch"].as_str().unwrap().starts_with("agents/pfx-"), "{s}");
}

#[test]
fn rm_refuses_unmerged_work_and_force_keeps_a_recoverable_snapshot() {
    let w = World::new();
    let s = w.json(&["new", "--repo", w.repo_arg(), "--name", "work"]);
    let id = s["id"].as_str().unwrap().to_string();
    let wt = PathBuf::from(s["worktree_path"].as_str().unwrap());
    std::fs::write(wt.join("committed.txt"), "c\n").unwrap();
    git(&wt, &["add", "committed.txt"]);
    git(&wt, &["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "agent commit"]);
    let commit = git(&wt, &["rev-parse", "HEAD"]).trim().to_string();
    std::fs::write(wt.join("loose.txt"), "uncommitted\n").unwrap();

    let (code, err) = w.fails(&["rm", "work"]);
    assert_eq!(code, 3);
    let line = one_line(&err);
    assert!(line.contains("1 unmerged commit and uncommitted changes in 1 file"), "{err}");
    assert!(wt.join("loose.txt").exists(), "a refused rm must not touch the worktree");

    let out = w.json(&["rm", "work", "--force"]);
    let refname = out["snapshot"]["refname"].as_str().unwrap().to_string();
    assert!(refname.starts_with(&format!("refs/ampsm/snapshots/{id}/")), "{refname}");
    assert!(!wt.exists());
    // The commit and the uncommitted file are reachable from the snapshot ref.
    assert_eq!(git(&w.repo, &["merge-base", "--is-ancestor", &commit, &refname]), "");
    assert_eq!(git(&w.repo, &["show", &format!("{refname}:loose.txt")]), "uncommitted\n");
    // The removed session is still known, with its snapshot.
    let shown = w.json(&["show", &id]);
    assert!(shown["session"]["removed_at"].is_i64());
    assert_eq!(shown["snapshots"][0]["refname"], refname.as_str());
    assert!(w.json(&["list"]).as_array().unwrap().is_empty());
    assert_eq!(w.json(&["list", "--all"]).as_array().unwrap().len(), 1);
    // A clean, merged session is removed without --force, via the `cleanup` alias.
    w.ok(&["new", "--repo", w.repo_arg(), "--name", "empty"]);
    w.ok(&["cleanup", "empty"]);
}

#[test]
fn kill_9_in_the_middle_of_new_leaves_nothing_to_trip_over() {
    let w = World::new();
    let mut child = w
        .cmd()
        .args(["new", "--repo", w.repo_arg(), "--name", "crashy"])
        .env("AMPSM_FAULT_PAUSE", "new:after-worktree")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the worktree exists and the process sits at the fault point.
    let root = w.home().join("worktrees").join("repo");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let made = std::fs::read_dir(&root).map(|d| d.count() > 0).unwrap_or(false);
        if made {
            std::thread::sleep(std::time::Duration::from_millis(300));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "new never reached the fault point");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let orphan: Vec<PathBuf> = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(orphan.len(), 1);

    // `list` shows nothing half-made, a new session of the same name works, and the orphan is gone.
    assert!(w.json(&["list"]).as_array().unwrap().is_empty());
    assert!(!orphan[0].exists(), "repair at start-up removes the interrupted worktree");
    let s = w.json(&["new", "--repo", w.repo_arg(), "--name", "crashy"]);
    let branches = git(&w.repo, &["branch", "--list", "amp/*"]);
    assert_eq!(branches.lines().count(), 1, "{branches}");
    assert!(branches.contains(s["branch"].as_str().unwrap()));
    w.ok(&["rm", "crashy"]);
    assert_eq!(git(&w.repo, &["worktree", "list", "--porcelain"]).matches("worktree ").count(), 1);
}

#[test]
fn a_database_from_a_newer_version_is_refused_unchanged() {
    let w = World::new();
    w.ok(&["list"]);
    let db = w.home().join("sessions.db");
    {
        let conn = rusqlite_free_set_version(&db);
        assert!(conn);
    }
    let before = std::fs::read(&db).unwrap();
    let (code, err) = w.fails(&["list"]);
    assert_eq!(code, 1);
    assert!(one_line(&err).contains("newer than this amp-sessions understands"), "{err}");
    assert_eq!(std::fs::read(&db).unwrap(), before);
}

/// Sets `PRAGMA user_version = 999` with the sqlite3 shell when present, else through the store's own
/// dependency (rusqlite) via a tiny helper binary is not needed: we patch the header bytes directly.
/// SQLite keeps user_version as a big-endian u32 at byte offset 60 of the file header.
fn rusqlite_free_set_version(db: &Path) -> bool {
    // Make sure the WAL is checkpointed into the main file first: open and close through the binary did that.
    let mut bytes = std::fs::read(db).unwrap();
    bytes[60..64].copy_from_slice(&999u32.to_be_bytes());
    std::fs::write(db, bytes).unwrap();
    let _ = std::fs::remove_file(db.with_extension("db-wal"));
    let _ = std::fs::remove_file(db.with_extension("db-shm"));
    true
}

#[test]
fn every_command_speaks_json() {
    let w = World::new();
    w.json(&["list"]);
    w.json(&["new", "--repo", w.repo_arg(), "--name", "j"]);
    w.json(&["show", "j"]);
    w.json(&["repo-info", w.repo_arg()]);
    w.json(&["config", "list"]);
    w.json(&["config", "path"]);
    w.json(&["repair"]);
    w.json(&["rm", "j"]);
    // Errors too: one JSON object on stderr.
    let out = w.run(&["show", "missing", "--json"]);
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["exit_code"], 2);
}

//! Session lifecycle: new, list, show, rm, repo-info, config, repair, crash safety.

use crate::support::{World, ctrl_c, one_line, processes_in_groups};
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
    let (code, err) = w.fails(&["new", "--repo", w.dir.path().to_str().unwrap(), "--name", "x"]);
    assert!(one_line(&err).contains("not a git repository"), "{err}");
    assert_eq!(code, 2, "bad input");
    let out = w.run(&["iterate", "nosuch"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "nothing is printed before the error");
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
    // Secrets set in the config are hidden in listings and when set; `config get` of the key shows them.
    let set = w.ok(&["config", "set", "agents.claude.env.ANTHROPIC_API_KEY", "sk-ant-listed-000111"]);
    assert!(!set.contains("sk-ant-listed") && set.contains("hidden"), "{set}");
    let list = w.ok(&["config", "list"]);
    assert!(
        !list.contains("sk-ant-listed") && list.contains("agents.claude.env.ANTHROPIC_API_KEY"),
        "{list}"
    );
    assert!(!w.ok(&["config", "list", "--json"]).contains("sk-ant-listed"));
    assert_eq!(
        w.ok(&["config", "get", "agents.claude.env.ANTHROPIC_API_KEY"]).trim(),
        "sk-ant-listed-000111"
    );
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

#[test]
fn a_setup_command_prepares_each_new_worktree_per_repository() {
    let w = World::new();
    let other = ampsm_testutils::repo::init_repo(&w.dir.path().join("other"));
    // .env is ignored in the repository and copied into worktrees of this repository only.
    std::fs::write(w.repo.join(".gitignore"), ".env\nnode_modules/\n").unwrap();
    git(&w.repo, &["add", ".gitignore"]);
    git(&w.repo, &["commit", "-q", "-m", "ignore"]);
    std::fs::write(w.repo.join(".env"), "TOKEN=local\n").unwrap();
    let repo = w.repo.to_str().unwrap();
    w.ok(&["config", "set", "session.setup", "echo global > global.txt"]);
    w.ok(&[
        "config",
        "set",
        &format!("repos.{repo}.setup"),
        "mkdir -p node_modules && cp .env node_modules/seen-env && echo installed",
    ]);
    w.ok(&["config", "set", &format!("repos.{repo}.copy_files"), "[.env]"]);

    // This repository's own setup, after its files were copied; the output goes to a log.
    let s = w.json(&["new", "--repo", repo, "--name", "proj"]);
    let wt = PathBuf::from(s["worktree_path"].as_str().unwrap());
    assert_eq!(std::fs::read_to_string(wt.join("node_modules/seen-env")).unwrap(), "TOKEN=local\n");
    assert!(!wt.join("global.txt").exists(), "the repository's setup replaces the global one");
    assert_eq!(s["status"], "idle", "{s}");
    assert!(s["status_note"].as_str().unwrap().starts_with("setup `mkdir -p node_modules"), "{s}");
    let log = w.home().join("logs").join(format!("setup-{}.log", s["id"].as_str().unwrap()));
    assert!(std::fs::read_to_string(&log).unwrap().contains("installed"));
    assert_eq!(git(&wt, &["status", "--porcelain"]), "", "what it made is ignored");

    // Another repository gets the global setup, and is told what it left for git to commit.
    let out = w.ok(&["new", "--repo", other.to_str().unwrap(), "--name", "plain"]);
    assert!(
        out.lines().any(|l| l.starts_with("setup ") && l.contains(" `echo global > global.txt` passed")),
        "{out}"
    );
    assert!(out.contains("it left 1 file(s) that git does not ignore (global.txt)"), "{out}");
    // A repository named relative to where `config set` runs is stored as the absolute path it means.
    w.ok(&["config", "set", "repos.other.setup", "echo relative > relative.txt"]);
    let stored = w.ok(&["config", "list"]);
    assert!(stored.contains(&format!("repos.{}.setup", other.canonicalize().unwrap().display())), "{stored}");
    let s = w.json(&["new", "--repo", other.to_str().unwrap(), "--name", "plain2"]);
    assert!(PathBuf::from(s["worktree_path"].as_str().unwrap()).join("relative.txt").exists());
    // --setup and --no-setup win over the config.
    let s = w.json(&["new", "--repo", repo, "--name", "own", "--setup", "echo mine > mine.txt"]);
    assert!(PathBuf::from(s["worktree_path"].as_str().unwrap()).join("mine.txt").exists());
    let s = w.json(&["new", "--repo", repo, "--name", "none", "--no-setup"]);
    assert_eq!(
        std::fs::read_dir(s["worktree_path"].as_str().unwrap()).unwrap().count(),
        4,
        ".git, .gitignore, .env, README"
    );
    assert!(s["status_note"].is_null(), "{s}");
    let timeline = w.json(&["timeline", "proj"]);
    assert!(timeline.to_string().contains("running setup"), "{timeline}");

    // doctor says which repos.<path> entries apply to nothing (a typo would otherwise go unnoticed).
    let typo = w.dir.path().join("repo-typo");
    w.ok(&["config", "set", &format!("repos.{}.setup", typo.display()), "true"]);
    let doctor = w.json(&["doctor"]);
    let check = |name: String| {
        doctor["checks"].as_array().unwrap().iter().find(|c| c["name"] == name.as_str()).cloned()
    };
    let ok = check(format!("repos.{repo}")).unwrap();
    assert_eq!(ok["status"], "ok", "{ok}");
    assert!(ok["detail"].as_str().unwrap().starts_with("setup: mkdir -p node_modules"), "{ok}");
    let bad = check(format!("repos.{}", typo.display())).unwrap();
    assert_eq!(bad["status"], "warn", "{bad}");
    assert!(bad["detail"].as_str().unwrap().contains("not a git repository"), "{bad}");
}

#[test]
fn a_failing_or_hanging_setup_keeps_the_session_and_says_where_its_output_is() {
    let w = World::new();
    let (code, err) = w.fails(&[
        "new",
        "--repo",
        w.repo_arg(),
        "--name",
        "broken",
        "--setup",
        "echo step one; echo no such tool >&2; exit 4",
    ]);
    assert_eq!(code, 1, "{err}");
    let line = one_line(&err);
    assert!(line.contains("session broken (") && line.contains("was created, but its setup"), "{line}");
    // Its last lines (stdout and stderr are read side by side, so in either order).
    assert!(line.contains("failed (exit code 4): "), "{line}");
    assert!(line.contains("step one") && line.contains("no such tool"), "{line}");
    assert!(line.contains("amp-sessions rm broken --force"), "{line}");
    let shown = w.json(&["show", "broken"]);
    assert_eq!(shown["session"]["status"], "error", "the session and its worktree stay for a look");
    assert!(Path::new(shown["session"]["worktree_path"].as_str().unwrap()).join(".git").exists());
    let log = line.split("the whole output is in ").nth(1).unwrap().split(". Fix").next().unwrap();
    assert!(std::fs::read_to_string(log).unwrap().contains("no such tool"));
    // Fixed, it runs again with `setup`; the session is ready.
    assert!(line.contains("amp-sessions setup broken"), "{line}");
    let (code, err) = w.fails(&["setup", "broken"]);
    assert_eq!(code, 2, "nothing configured and no --cmd: {err}");
    assert!(one_line(&err).contains("has no setup command to run: pass --cmd CMD"), "{err}");
    let again = w.json(&["setup", "broken", "--cmd", "echo fixed > fixed.txt"]);
    assert_eq!(again["status"], "idle", "{again}");
    assert!(Path::new(again["worktree_path"].as_str().unwrap()).join("fixed.txt").exists());
    let text = w.ok(&["setup", "broken", "--cmd", "true"]);
    assert!(text.starts_with("setup `true` passed in "), "{text}");
    assert!(text.contains("it left 1 file(s) that git does not ignore (fixed.txt)"), "{text}");

    // A setup that hangs is stopped at session.setup_timeout, with its whole process group.
    w.ok(&["config", "set", "session.setup_timeout", "1s"]);
    let marker = w.dir.path().join("child-pid");
    let script = format!("sleep 60 & echo $! > {}; wait", marker.display());
    let started = std::time::Instant::now();
    let (code, err) = w.fails(&["new", "--repo", w.repo_arg(), "--name", "hangs", "--setup", &script]);
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    assert_eq!(code, 1);
    assert!(one_line(&err).contains("failed (timed out after"), "{err}");
    let child: i64 = std::fs::read_to_string(&marker).unwrap().trim().parse().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let alive = std::fs::read_to_string(format!("/proc/{child}/stat")).is_ok_and(|s| !s.contains(") Z "));
    assert!(!alive, "the setup's child process was stopped");
}

#[test]
fn ctrl_c_stops_a_setup_command_with_its_process_group() {
    let w = World::new();
    let marker = w.dir.path().join("setup-started");
    let script = format!("echo $$ > {}; sleep 30", marker.display());
    let child = w.spawn(&["new", "--repo", w.repo_arg(), "--name", "slowsetup", "--setup", &script]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::fs::read_to_string(&marker).map(|t| t.trim().is_empty()).unwrap_or(true) {
        assert!(std::time::Instant::now() < deadline, "the setup did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let group: i64 = std::fs::read_to_string(&marker).unwrap().trim().parse().unwrap();
    ctrl_c(child.id());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("failed (interrupted)"), "{stderr}");
    assert!(processes_in_groups(&[group]).is_empty(), "the setup's group is gone");
    assert_eq!(w.json(&["show", "slowsetup"])["session"]["status"], "error");
}

/// `rm --force` racing an `iterate` that is starting never leaves the removed session `running`: either
/// the run is refused (the session was removed) or it ends and its status is settled.
#[test]
fn rm_force_racing_a_starting_iterate_never_leaves_a_session_running() {
    let w = crate::support::command_world("echo work > work.txt; sleep 1");
    for i in 0..10 {
        let name = format!("race{i}");
        w.ok(&["new", "--repo", w.repo_arg(), "--name", &name, "--agent", "command", "--prompt", "go"]);
        let run = w.spawn(&["iterate", &name]);
        if i % 2 == 1 {
            std::thread::sleep(std::time::Duration::from_millis(30 * i as u64));
        }
        let rm = w.run(&["rm", &name, "--force"]);
        assert!(rm.status.success(), "{}", String::from_utf8_lossy(&rm.stderr));
        let out = run.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // Any command settles what a race left (repair runs at start).
    let all = w.json(&["list", "--all"]);
    for s in all.as_array().unwrap() {
        assert_ne!(s["status"], "running", "{s}");
        assert!(s["removed_at"].is_i64(), "{s}");
    }
}

/// Two `rm --force` of one session at once: one removes it, the other says it was removed (one line, no
/// raw git error).
#[test]
fn two_simultaneous_rm_force_of_one_session_give_one_clear_answer() {
    let w = World::new();
    for i in 0..5 {
        let name = format!("twice{i}");
        w.ok(&["new", "--repo", w.repo_arg(), "--name", &name]);
        let a = w.spawn(&["rm", &name, "--force"]);
        let b = w.spawn(&["rm", &name, "--force"]);
        let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
        assert!(outs.iter().any(|o| o.status.success()), "one of them removes it");
        for o in outs.iter().filter(|o| !o.status.success()) {
            let err = String::from_utf8_lossy(&o.stderr);
            let line = one_line(&err);
            assert!(line.contains("was removed") || line.contains("no session matches"), "{line}");
            assert_eq!(o.status.code(), Some(2), "{err}");
        }
    }
}

//! Integration tests for ampsm-git: real `git` in temporary repositories, no user configuration involved.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ampsm_git::{EntryKind, Git, GitError, MergeOutcome, RebaseOutcome, RepoLock};
use tempfile::TempDir;

/// Environment that keeps the machine's git configuration out of the tests.
const HERMETIC_ENV: [(&str, &str); 3] =
    [("GIT_CONFIG_GLOBAL", "/dev/null"), ("GIT_CONFIG_NOSYSTEM", "1"), ("GIT_OPTIONAL_LOCKS", "0")];

/// Run git directly (not through the crate) and return raw stdout; panics on failure.
fn git_raw(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .envs(HERMETIC_ENV)
        .env("LC_ALL", "C")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Run git directly; trimmed stdout on success, `None` on a non-zero exit.
fn git_maybe(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).current_dir(dir).envs(HERMETIC_ENV).output().expect("git runs");
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Run git directly and return trimmed stdout.
fn git(dir: &Path, args: &[&str]) -> String {
    String::from_utf8_lossy(&git_raw(dir, args)).trim().to_string()
}

/// A crate handle with the same hermetic configuration.
fn handle(dir: &Path) -> Git {
    HERMETIC_ENV.iter().fold(Git::new(dir), |g, (k, v)| g.with_env(k, v))
}

fn write(dir: &Path, rel: &str, content: &str) {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(path, content).expect("write");
}

fn read(dir: &Path, rel: &str) -> String {
    std::fs::read_to_string(dir.join(rel)).expect("read")
}

/// A temporary repository on `main` with one commit, plus a scratch directory for worktrees.
struct Fixture {
    _tmp: TempDir,
    root: PathBuf,
    scratch: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let tmp = TempDir::new().expect("tempdir");
        let base = tmp.path().canonicalize().expect("canonical");
        let root = base.join("repo");
        let scratch = base.join("worktrees");
        std::fs::create_dir_all(&root).expect("mkdir");
        std::fs::create_dir_all(&scratch).expect("mkdir");
        git(&root, &["-c", "init.defaultBranch=main", "init", "-q"]);
        Self::configure(&root);
        write(&root, "README.md", "hello\n");
        write(&root, "shared.txt", "line 1\nline 2\nline 3\n");
        write(&root, "src/lib.rs", "fn a() {}\n");
        git(&root, &["add", "-A"]);
        git(&root, &["commit", "-q", "-m", "initial"]);
        Fixture { _tmp: tmp, root, scratch }
    }

    fn configure(dir: &Path) {
        git(dir, &["config", "user.name", "Test User"]);
        git(dir, &["config", "user.email", "test@example.com"]);
        git(dir, &["config", "commit.gpgsign", "false"]);
    }

    fn git(&self) -> Git {
        handle(&self.root)
    }

    /// A session worktree on a new branch from main.
    fn session(&self, name: &str) -> (PathBuf, Git) {
        let path = self.scratch.join(name);
        self.git().worktree_add(name, &path, "main").expect("worktree add");
        let g = handle(&path);
        (path, g)
    }

    fn commit_file(dir: &Path, rel: &str, content: &str, message: &str) -> String {
        write(dir, rel, content);
        git(dir, &["add", "-A"]);
        git(dir, &["commit", "-q", "-m", message]);
        git(dir, &["rev-parse", "HEAD"])
    }
}

/// Every file under `dir` except `.git`, with its bytes.
fn tree_files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).expect("read_dir") {
            let entry = entry.expect("entry");
            let path = entry.path();
            if entry.file_name() == ".git" {
                continue;
            }
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                let rel = path.strip_prefix(base).expect("prefix").to_path_buf();
                out.insert(rel, std::fs::read(&path).expect("read"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Everything about a checkout that an operation elsewhere must not change.
#[derive(Debug, PartialEq)]
struct CheckoutState {
    head: String,
    head_ref: String,
    cached_diff: String,
    unstaged_diff: String,
    stash_list: String,
    stash_ref: Option<String>,
    index_digest: u64,
    files: BTreeMap<PathBuf, String>,
}

fn checkout_state(dir: &Path, git_dir: &Path) -> CheckoutState {
    CheckoutState {
        head: git(dir, &["rev-parse", "HEAD"]),
        head_ref: git(dir, &["symbolic-ref", "HEAD"]),
        cached_diff: lossy(git_raw(dir, &["diff", "--cached", "--binary"])),
        unstaged_diff: lossy(git_raw(dir, &["diff", "--binary"])),
        stash_list: lossy(git_raw(dir, &["stash", "list"])),
        stash_ref: git_maybe(dir, &["rev-parse", "--verify", "-q", "refs/stash"]),
        index_digest: file_digest(&git_dir.join("index")),
        files: tree_text(dir),
    }
}

fn lossy(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A hash of a file's exact bytes.
fn file_digest(path: &Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    std::fs::read(path).expect("read").hash(&mut hasher);
    hasher.finish()
}

/// [`tree_files`] with contents as (lossy) text, for readable assertion failures.
fn tree_text(dir: &Path) -> BTreeMap<PathBuf, String> {
    tree_files(dir).into_iter().map(|(p, b)| (p, lossy(b))).collect()
}

#[test]
fn git_version_is_recent_enough() {
    let version = ampsm_git::git_version().expect("version");
    assert!(version >= ampsm_git::MIN_GIT_VERSION, "{version:?}");
    ampsm_git::ensure_git_version((2, 0, 0), "tests").expect("2.0 is old enough");
    let err = ampsm_git::ensure_git_version((999, 0, 0), "time travel").expect_err("too new");
    assert!(err.to_string().contains("999.0.0"), "{err}");
}

#[test]
fn worktree_add_leaves_a_dirty_main_checkout_byte_identical() {
    let fx = Fixture::new();
    let root = &fx.root;
    // A stash, then staged changes, unstaged changes and an untracked file.
    write(root, "README.md", "stashed change\n");
    git(root, &["stash", "push", "-q", "-m", "keep me"]);
    write(root, "shared.txt", "line 1\nSTAGED\nline 3\n");
    write(root, "staged-new.txt", "new and staged\n");
    git(root, &["add", "shared.txt", "staged-new.txt"]);
    write(root, "src/lib.rs", "fn a() { /* unstaged */ }\n");
    write(root, "notes/untracked.txt", "untracked\n");

    let before = checkout_state(root, &root.join(".git"));
    assert!(!before.cached_diff.is_empty() && !before.unstaged_diff.is_empty());
    assert!(!before.stash_list.is_empty());

    let wt = fx.scratch.join("session-1");
    fx.git().worktree_add("amp/session-1", &wt, "main").expect("worktree add");

    let after = checkout_state(root, &root.join(".git"));
    assert_eq!(before, after, "the main checkout changed");

    // The new worktree holds main's committed files only, on its own branch, without tracking.
    assert_eq!(read(&wt, "README.md"), "hello\n");
    assert_eq!(read(&wt, "shared.txt"), "line 1\nline 2\nline 3\n");
    assert!(!wt.join("staged-new.txt").exists());
    assert_eq!(git(&wt, &["symbolic-ref", "--short", "HEAD"]), "amp/session-1");
    assert_eq!(git_maybe(&wt, &["config", "--get-regexp", "^branch\\."]), None, "no upstream");
    assert!(fx.git().branch_exists("amp/session-1").expect("exists"));

    let list = fx.git().worktree_list().expect("list");
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].path, *root);
    assert_eq!(list[0].branch.as_deref(), Some("main"));
    assert_eq!(list[1].path, wt);
    assert_eq!(list[1].branch.as_deref(), Some("amp/session-1"));
    assert_eq!(list[1].head.as_deref(), Some(before.head.as_str()));

    // Bad names are refused before git runs.
    let err = fx.git().worktree_add("bad..name", &fx.scratch.join("x"), "main").expect_err("bad branch");
    assert!(matches!(err, GitError::InvalidArgument { .. }), "{err}");
    let err =
        fx.git().worktree_add("ok-name", &fx.scratch.join("y"), "--orphan").expect_err("option-like base");
    assert!(matches!(err, GitError::InvalidArgument { .. }), "{err}");

    // Removing refuses a dirty worktree unless forced; the branch survives until deleted.
    write(&wt, "dirty.txt", "x\n");
    let err = fx.git().worktree_remove(&wt, false).expect_err("dirty");
    assert!(err.to_string().contains("worktree remove"), "{err}");
    fx.git().worktree_remove(&wt, true).expect("forced remove");
    assert!(!wt.exists());
    assert_eq!(fx.git().worktree_list().expect("list").len(), 1);
    fx.git().delete_branch("amp/session-1", true).expect("delete");
    assert!(!fx.git().branch_exists("amp/session-1").expect("exists"));

    // A worktree whose directory vanished is prunable and then pruned.
    let (gone, _) = fx.session("gone");
    std::fs::remove_dir_all(&gone).expect("rm");
    assert!(fx.git().worktree_list().expect("list")[1].prunable);
    fx.git().worktree_prune().expect("prune");
    assert_eq!(fx.git().worktree_list().expect("list").len(), 1);

    assert_eq!(before, checkout_state(root, &root.join(".git")), "the main checkout changed");
}

#[test]
fn repo_root_finds_the_main_checkout() {
    let fx = Fixture::new();
    let (wt, g) = fx.session("s1");
    assert_eq!(ampsm_git::repo_root(&fx.root).expect("root"), fx.root);
    assert_eq!(ampsm_git::repo_root(&fx.root.join("src")).expect("root"), fx.root);
    assert_eq!(ampsm_git::repo_root(&wt.join("src")).expect("root"), fx.root);
    assert!(fx.git().is_main_worktree().expect("main"));
    assert!(!g.is_main_worktree().expect("linked"));

    let outside = TempDir::new().expect("tempdir");
    let err = ampsm_git::repo_root(outside.path()).expect_err("not a repo");
    assert!(matches!(err, GitError::NotARepository { .. }));
    assert_eq!(err.to_string(), format!("not a git repository: {}", outside.path().display()));
    let missing = outside.path().join("missing");
    let err = ampsm_git::repo_root(&missing).expect_err("missing");
    assert_eq!(err.to_string(), format!("not a git repository: {}", missing.display()));
}

#[test]
fn refs_branches_and_suggestions() {
    let fx = Fixture::new();
    let g = fx.git();
    git(&fx.root, &["branch", "feature/login"]);
    git(&fx.root, &["branch", "develop"]);
    assert_eq!(g.head_branch().expect("head").as_deref(), Some("main"));
    assert_eq!(g.default_branch().expect("default"), "main");
    assert_eq!(g.branches().expect("branches"), vec!["develop", "feature/login", "main"]);
    assert!(g.branch_exists("develop").expect("exists"));
    assert!(!g.branch_exists("nope").expect("exists"));

    let head = git(&fx.root, &["rev-parse", "HEAD"]);
    assert_eq!(g.resolve_commit("main").expect("resolve"), Some(head.clone()));
    assert_eq!(g.resolve_commit("nope").expect("resolve"), None);
    assert_eq!(g.resolve_commit("--all").expect("resolve"), None);
    let tree = git(&fx.root, &["rev-parse", "HEAD^{tree}"]);
    assert_eq!(g.resolve_commit(&tree).expect("resolve"), None, "a tree is not a commit");

    let suggestions = g.suggest_refs("mian").expect("suggest");
    assert_eq!(suggestions.first().map(String::as_str), Some("main"));
    let suggestions = g.suggest_refs("feature/logn").expect("suggest");
    assert_eq!(suggestions, vec!["main", "feature/login"]);
    let suggestions = g.suggest_refs("dev").expect("suggest");
    assert_eq!(suggestions, vec!["main", "develop"]);
    let suggestions = g.suggest_refs("zzzzzzzzzz").expect("suggest");
    assert_eq!(suggestions, vec!["main"]);
    let err = g.require_commit("mian").expect_err("missing");
    assert!(err.to_string().contains("did you mean: main"), "{err}");

    assert!(g.check_ref_format_branch("amp/ok-name").expect("check"));
    assert!(!g.check_ref_format_branch("bad..name").expect("check"));
    assert!(!g.check_ref_format_branch("-x").expect("check"));
    assert!(!g.check_ref_format_branch("trailing/").expect("check"));

    // Detached HEAD reports no branch; default falls back to main.
    git(&fx.root, &["checkout", "-q", "--detach"]);
    assert_eq!(g.head_branch().expect("head"), None);
    git(&fx.root, &["branch", "-m", "main", "trunk"]);
    git(&fx.root, &["branch", "-D", "develop"]);
    assert_eq!(g.default_branch().expect("default"), "HEAD");
    git(&fx.root, &["checkout", "-q", "trunk"]);
    assert_eq!(g.default_branch().expect("default"), "trunk");
}

#[test]
fn remotes_push_fetch_and_origin_head() {
    let fx = Fixture::new();
    let remote = fx.scratch.join("remote.git");
    git(&fx.scratch, &["clone", "-q", "--bare", fx.root.to_str().expect("utf8"), "remote.git"]);
    let clone = fx.scratch.join("clone");
    git(&fx.scratch, &["clone", "-q", remote.to_str().expect("utf8"), "clone"]);
    Fixture::configure(&clone);
    let cg = handle(&clone);
    assert_eq!(cg.remotes().expect("remotes"), vec!["origin"]);
    assert_eq!(cg.default_branch().expect("default"), "main");
    git(&clone, &["branch", "-m", "main", "local-main"]);
    assert_eq!(cg.default_branch().expect("default"), "origin/main");
    assert_eq!(cg.remote_branches().expect("remote branches"), vec!["origin/main"]);

    git(&clone, &["checkout", "-q", "-b", "amp/pushed"]);
    Fixture::commit_file(&clone, "p.txt", "p\n", "pushed work");
    cg.push("origin", "amp/pushed").expect("push");
    assert_eq!(git(&remote, &["rev-parse", "amp/pushed"]), git(&clone, &["rev-parse", "HEAD"]));
    // Another clone fetches it.
    git(&fx.root, &["remote", "add", "origin", remote.to_str().expect("utf8")]);
    fx.git().fetch("origin").expect("fetch");
    assert!(fx.git().remote_branches().expect("remote branches").contains(&"origin/amp/pushed".to_string()));
    assert!(fx.git().fetch("--upload-pack=evil").is_err());
}

#[test]
fn status_reports_renames_untracked_unmerged_and_upstream() {
    let fx = Fixture::new();
    let (wt, g) = fx.session("status");
    let status = g.status().expect("status");
    assert!(status.is_clean() && !status.has_uncommitted());
    assert_eq!(status.branch.as_deref(), Some("status"));

    git(&wt, &["mv", "README.md", "GUIDE.md"]);
    write(&wt, "src/lib.rs", "fn a() { changed() }\n");
    write(&wt, "new dir/deep/untracked file.txt", "u\n");
    let status = g.status().expect("status");
    assert!(!status.is_clean() && status.has_uncommitted() && status.has_untracked());
    let renamed = status.entries.iter().find(|e| e.kind == EntryKind::Renamed).expect("rename");
    assert_eq!(renamed.path, "GUIDE.md");
    assert_eq!(renamed.orig_path.as_deref(), Some("README.md"));
    assert_eq!((renamed.index, renamed.worktree), ('R', '.'));
    assert!(renamed.is_staged() && !renamed.is_unstaged());
    let changed = status.entries.iter().find(|e| e.path == "src/lib.rs").expect("changed");
    assert_eq!((changed.kind, changed.index, changed.worktree), (EntryKind::Changed, '.', 'M'));
    assert!(!changed.is_staged() && changed.is_unstaged());
    let untracked = status.entries.iter().find(|e| e.kind == EntryKind::Untracked).expect("untracked");
    assert_eq!(untracked.path, "new dir/deep/untracked file.txt");

    // Untracked only: clean is false but nothing uncommitted to tracked files.
    g.commit_all("everything", &[]).expect("commit").expect("sha");
    write(&wt, "only-untracked.txt", "x\n");
    let status = g.status().expect("status");
    assert!(!status.is_clean() && !status.has_uncommitted());
    std::fs::remove_file(wt.join("only-untracked.txt")).expect("rm");

    // Upstream and ahead/behind.
    git(&wt, &["branch", "--set-upstream-to=main"]);
    let status = g.status().expect("status");
    assert_eq!(status.upstream.as_deref(), Some("main"));
    assert_eq!((status.ahead, status.behind), (1, 0));

    // A merge conflict shows up as unmerged.
    Fixture::commit_file(&fx.root, "shared.txt", "line 1\nMAIN\nline 3\n", "main edit");
    Fixture::commit_file(&wt, "shared.txt", "line 1\nSESSION\nline 3\n", "session edit");
    let out = Command::new("git")
        .args(["merge", "-q", "main"])
        .current_dir(&wt)
        .envs(HERMETIC_ENV)
        .output()
        .expect("merge runs");
    assert!(!out.status.success());
    let status = g.status().expect("status");
    assert_eq!(status.conflicts(), vec!["shared.txt"]);
    let entry = &status.entries[0];
    assert_eq!((entry.kind, entry.index, entry.worktree), (EntryKind::Unmerged, 'U', 'U'));
    assert!(g.merge_in_progress().expect("merge state"));
}

#[test]
fn numstat_name_only_and_log() {
    let fx = Fixture::new();
    let (wt, g) = fx.session("diffs");
    let base = git(&wt, &["rev-parse", "HEAD"]);
    write(&wt, "shared.txt", "line 1\nline two\nline 3\nline 4\n");
    std::fs::write(wt.join("image.bin"), [0u8, 159, 146, 150, 0, 1, 2]).expect("binary");
    let long = (1..=20).map(|i| format!("content line {i}\n")).collect::<String>();
    Fixture::commit_file(&wt, "src/big.rs", &long, "add big");
    git(&wt, &["mv", "src/big.rs", "src/renamed.rs"]);
    write(&wt, "src/renamed.rs", &format!("{long}one more\n"));
    git(&wt, &["add", "-A"]);
    git(&wt, &["commit", "-q", "-m", "rename\n\nwith a body"]);
    let head = git(&wt, &["rev-parse", "HEAD"]);

    let stats = g.diff_numstat(&base, Some(&head)).expect("numstat");
    let by_path = |p: &str| stats.iter().find(|s| s.path == p).expect(p).clone();
    let shared = by_path("shared.txt");
    assert_eq!((shared.added, shared.removed, shared.binary), (Some(2), Some(1), false));
    let image = by_path("image.bin");
    assert!(image.binary && image.added.is_none() && image.removed.is_none());
    assert_eq!(by_path("src/renamed.rs").added, Some(21));

    let between = g.diff_numstat(&format!("{base}~0"), Some("HEAD~1")).expect("numstat");
    assert!(between.iter().all(|s| s.path != "src/renamed.rs"));
    let last = g.diff_numstat("HEAD~1", Some("HEAD")).expect("numstat");
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].path, "src/renamed.rs");
    assert_eq!(last[0].old_path.as_deref(), Some("src/big.rs"));
    assert_eq!((last[0].added, last[0].removed), (Some(1), Some(0)));

    // Working tree (staged + unstaged) against HEAD.
    write(&wt, "README.md", "hello\nworld\n");
    git(&wt, &["add", "README.md"]);
    write(&wt, "src/lib.rs", "");
    let stats = g.diff_numstat("HEAD", None).expect("numstat");
    assert_eq!(stats.len(), 2);
    assert_eq!(g.diff_name_only("HEAD", None).expect("names"), vec!["README.md", "src/lib.rs"]);
    let text = g.diff_text(&["--cached"]).expect("diff");
    assert!(text.contains("+world") && !text.contains("src/lib.rs"), "{text}");

    let commits = g.commits_between(&base, "HEAD").expect("log");
    assert_eq!(commits.len(), 2);
    assert_eq!(commits[0].subject, "add big");
    assert_eq!(commits[0].parents, vec![base.clone()]);
    assert_eq!(commits[1].subject, "rename");
    assert_eq!(commits[1].body, "with a body");
    assert_eq!(commits[1].sha, head);
    assert_eq!(commits[1].author, "Test User");
    assert_eq!(commits[1].email, "test@example.com");
    assert!(commits[1].time > 1_600_000_000);
    assert_eq!(g.count_commits(&format!("{base}..HEAD")).expect("count"), 2);
    assert!(g.is_ancestor(&base, "HEAD").expect("ancestor"));
    assert!(!g.is_ancestor("HEAD", &base).expect("ancestor"));
    assert_eq!(g.merge_base("main", "HEAD").expect("merge-base"), Some(base.clone()));

    let patch = g.diff_patch("main", "HEAD").expect("patch");
    assert!(patch.contains("GIT binary patch") && patch.contains("src/renamed.rs"));
    let mbox = g.format_patch("main", "HEAD").expect("format-patch");
    assert_eq!(mbox.matches("\nSubject: [PATCH").count(), 2, "{mbox}");
}

#[test]
fn commit_with_trailers_and_staging() {
    let fx = Fixture::new();
    let (wt, g) = fx.session("commits");
    assert_eq!(g.commit("nothing", &[], false).expect("commit"), None);

    write(&wt, "a.txt", "a\n");
    write(&wt, "b.txt", "b\n");
    g.stage(&["a.txt", "b.txt"]).expect("stage");
    g.unstage(&["b.txt"]).expect("unstage");
    let staged: Vec<String> = g
        .status()
        .expect("status")
        .entries
        .iter()
        .filter(|e| e.is_staged())
        .map(|e| e.path.clone())
        .collect();
    assert_eq!(staged, vec!["a.txt"]);

    let message = "amp: add a\n\nThe agent's summary; with `quotes` and $(no shell).";
    let trailers = [("Amp-Thread", "T-1234"), ("Session", "sess-42")];
    let sha = g.commit(message, &trailers, false).expect("commit").expect("sha");
    assert_eq!(sha, git(&wt, &["rev-parse", "HEAD"]));
    let body = git(&wt, &["log", "-1", "--format=%B"]);
    assert!(body.starts_with("amp: add a\n\nThe agent's summary; with `quotes` and $(no shell)."));
    assert!(body.ends_with("Amp-Thread: T-1234\nSession: sess-42"), "{body}");
    assert_eq!(git(&wt, &["log", "-1", "--format=%an <%ae>"]), "Test User <test@example.com>");
    assert_eq!(
        git(&wt, &["show", "--name-only", "--format=", "HEAD"]),
        "a.txt",
        "only the staged file is committed"
    );

    // Trailers that would inject lines are refused.
    assert!(g.commit("x", &[("Bad Key", "v")], true).is_err());
    assert!(g.commit("x", &[("Key", "a\nb")], true).is_err());
    assert!(g.commit("   ", &[], true).is_err());

    let empty = g.commit("empty on purpose", &[], true).expect("commit").expect("sha");
    assert_eq!(git(&wt, &["rev-parse", "HEAD^{tree}"]), git(&wt, &["rev-parse", "HEAD~1^{tree}"]));
    assert_ne!(empty, sha);

    std::fs::remove_file(wt.join("README.md")).expect("rm");
    let all = g.commit_all("all of it", &[]).expect("commit").expect("sha");
    let changed = git(&wt, &["show", "--name-status", "--format=", &all]);
    assert_eq!(changed, "D\tREADME.md\nA\tb.txt");
    g.stage_all().expect("stage all");
    assert_eq!(g.commit_all("again", &[]).expect("commit"), None);

    write(&wt, "c.txt", "c\n");
    g.stage_all().expect("stage all");
    g.unstage_all().expect("unstage all");
    assert!(!g.has_staged_changes().expect("staged"));
    assert!(wt.join("c.txt").exists());
}

#[test]
fn commit_falls_back_to_a_neutral_identity_without_writing_config() {
    if std::env::var_os("GIT_AUTHOR_NAME").is_some() || std::env::var_os("GIT_AUTHOR_EMAIL").is_some() {
        return; // the environment already decides the identity
    }
    let fx = Fixture::new();
    let (wt, g) = fx.session("identity");
    git(&fx.root, &["config", "--unset", "user.name"]);
    git(&fx.root, &["config", "--unset", "user.email"]);
    let g = g.with_env("EMAIL", "");
    write(&wt, "x.txt", "x\n");
    g.commit_all("anonymous", &[]).expect("commit").expect("sha");
    assert_eq!(
        git(&wt, &["log", "-1", "--format=%an <%ae>|%cn <%ce>"]),
        "amp-sessions <amp-sessions@localhost>|amp-sessions <amp-sessions@localhost>"
    );
    assert_eq!(g.config_get("user.name").expect("config"), None);
    assert_eq!(g.config_get("user.email").expect("config"), None);
}

#[test]
fn snapshot_captures_uncommitted_and_untracked_work_and_restores_it() {
    let fx = Fixture::new();
    let (wt, g) = fx.session("snap");
    let c1 = Fixture::commit_file(&wt, "work.txt", "committed\n", "agent work");
    // Uncommitted: a staged edit, an unstaged edit, a deletion and untracked files.
    write(&wt, "shared.txt", "line 1\nstaged edit\nline 3\n");
    git(&wt, &["add", "shared.txt"]);
    write(&wt, "work.txt", "committed\nunstaged edit\n");
    std::fs::remove_file(wt.join("README.md")).expect("rm");
    write(&wt, "new/untracked.txt", "brand new\n");
    write(&wt, "scratch.txt", "scratch\n");
    git(&fx.root, &["stash", "list"]);

    let wt_git_dir = PathBuf::from(git(&wt, &["rev-parse", "--path-format=absolute", "--git-dir"]));
    let before = checkout_state(&wt, &wt_git_dir);
    let status_before = g.status().expect("status");

    let snap = g.create_snapshot("sess-1", "before squash").expect("snapshot");
    assert_eq!(snap.n, 1);
    assert_eq!(snap.refname, "refs/ampsm/snapshots/sess-1/1");
    assert!(snap.captured_changes);
    assert_eq!(snap.base, c1);
    assert_eq!(snap.reason.as_deref(), Some("before squash"));
    assert_eq!(git(&wt, &["rev-parse", &snap.refname]), snap.sha);
    assert_eq!(git(&wt, &["rev-parse", &format!("{}^", snap.sha)]), c1);

    // Nothing in the worktree changed, and the stash is untouched.
    assert_eq!(before, checkout_state(&wt, &wt_git_dir), "snapshot modified the worktree");
    assert_eq!(status_before, g.status().expect("status"));
    assert!(git(&wt, &["stash", "list"]).is_empty());

    // The snapshot tree holds the working-tree files, untracked ones included.
    assert_eq!(git(&wt, &["show", &format!("{}:new/untracked.txt", snap.sha)]), "brand new");
    assert_eq!(git(&wt, &["show", &format!("{}:work.txt", snap.sha)]), "committed\nunstaged edit");
    let names = git(&wt, &["ls-tree", "-r", "--name-only", &snap.sha]);
    assert!(!names.lines().any(|l| l == "README.md"), "deletion captured: {names}");

    // Lose everything: reset to main and add junk.
    g.reset_hard("main").expect("reset");
    assert!(wt.join("new/untracked.txt").exists(), "reset --hard keeps untracked files");
    git(&wt, &["clean", "-fdq"]);
    write(&wt, "junk.txt", "junk\n");
    assert!(!wt.join("new/untracked.txt").exists());

    let safety = g.restore_snapshot(&snap).expect("restore");
    assert_eq!(safety.n, 2);
    assert!(safety.captured_changes, "the junk file was captured before restoring");
    assert_eq!(git(&wt, &["rev-parse", "HEAD"]), c1);
    assert_eq!(git(&wt, &["symbolic-ref", "--short", "HEAD"]), "snap");
    assert_eq!(read(&wt, "shared.txt"), "line 1\nstaged edit\nline 3\n");
    assert_eq!(read(&wt, "work.txt"), "committed\nunstaged edit\n");
    assert_eq!(read(&wt, "new/untracked.txt"), "brand new\n");
    assert_eq!(read(&wt, "scratch.txt"), "scratch\n");
    assert!(!wt.join("README.md").exists());
    assert!(!wt.join("junk.txt").exists());
    assert_eq!(before.files, tree_text(&wt));
    // Captured changes come back uncommitted: edits unstaged, new files untracked.
    let status = g.status().expect("status");
    assert!(!g.has_staged_changes().expect("staged"));
    let kind_of = |p: &str| status.entries.iter().find(|e| e.path == p).map(|e| (e.kind, e.worktree));
    assert_eq!(kind_of("work.txt"), Some((EntryKind::Changed, 'M')));
    assert_eq!(kind_of("README.md"), Some((EntryKind::Changed, 'D')));
    assert_eq!(kind_of("new/untracked.txt"), Some((EntryKind::Untracked, '?')));

    // The safety snapshot can undo the restore.
    g.restore_snapshot(&safety).expect("undo the restore");
    assert_eq!(read(&wt, "junk.txt"), "junk\n");
    assert_eq!(git(&wt, &["rev-parse", "HEAD"]), git(&wt, &["rev-parse", "main"]));

    // A clean worktree snapshots HEAD itself.
    g.reset_hard("snap").expect("reset");
    git(&wt, &["clean", "-fdq"]);
    let head = git(&wt, &["rev-parse", "HEAD"]);
    let clean = g.create_snapshot("sess-1", "clean").expect("snapshot");
    assert!(!clean.captured_changes);
    assert_eq!(clean.sha, head);
    assert_eq!(clean.base, head);

    let listed = g.list_snapshots("sess-1").expect("list");
    assert_eq!(listed.iter().map(|s| s.n).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    assert_eq!(listed[0], snap);
    assert_eq!(listed[3], clean);
    assert_eq!(g.last_snapshot("sess-1").expect("last"), Some(clean.clone()));
    assert!(g.list_snapshots("other").expect("list").is_empty());
    // Refs are shared: visible from the main checkout.
    assert_eq!(fx.git().list_snapshots("sess-1").expect("list").len(), 4);

    g.delete_snapshot(&clean).expect("delete");
    assert_eq!(g.list_snapshots("sess-1").expect("list").len(), 3);
    assert!(g.create_snapshot("a/b", "x").is_err());
    assert!(g.create_snapshot("", "x").is_err());

    // Never in the main checkout.
    let err = fx.git().restore_snapshot(&snap).expect_err("main checkout");
    assert!(matches!(err, GitError::MainCheckout { .. }), "{err}");
    let err = fx.git().reset_hard("HEAD").expect_err("main checkout");
    assert!(err.to_string().contains("main checkout"), "{err}");
}

#[test]
fn squash_replaces_session_commits_with_one() {
    let fx = Fixture::new();
    let (wt, g) = fx.session("squash");
    assert_eq!(g.squash("main", "nothing", &[]).expect("squash"), None);

    Fixture::commit_file(&wt, "a.txt", "a\n", "one");
    Fixture::commit_file(&wt, "b.txt", "b\n", "two");
    let last = Fixture::commit_file(&wt, "a.txt", "a2\n", "three");
    let tree = git(&wt, &["rev-parse", "HEAD^{tree}"]);
    write(&wt, "unstaged.txt", "keep me\n");
    // main moves on; squash uses the fork point, not main's tip.
    let fork = git(&fx.root, &["rev-parse", "main"]);
    Fixture::commit_file(&fx.root, "main-only.txt", "m\n", "main moves");

    let sha = g.squash("main", "amp: squashed", &[("Session", "s-1")]).expect("squash").expect("sha");
    assert_ne!(sha, last);
    assert_eq!(git(&wt, &["rev-parse", "HEAD^{tree}"]), tree);
    assert_eq!(git(&wt, &["rev-parse", "HEAD^"]), fork);
    assert_eq!(g.count_commits("main..HEAD").expect("count"), 1);
    assert_eq!(git(&wt, &["log", "-1", "--format=%B"]), "amp: squashed\n\nSession: s-1");
    assert_eq!(read(&wt, "unstaged.txt"), "keep me\n");
    assert!(!git(&wt, &["ls-files"]).contains("unstaged.txt"));

    assert!(fx.git().squash("main", "x", &[]).is_err(), "refused in the main checkout");
}

#[test]
fn rebase_clean_conflicting_abort_and_continue() {
    let fx = Fixture::new();
    let (wt, g) = fx.session("rebase");
    Fixture::commit_file(&wt, "session.txt", "s\n", "session work");
    Fixture::commit_file(&fx.root, "main.txt", "m\n", "main work");
    assert_eq!(g.rebase("main").expect("rebase"), RebaseOutcome::Done);
    assert!(g.is_ancestor("main", "HEAD").expect("ancestor"));
    assert_eq!(g.count_commits("main..HEAD").expect("count"), 1);
    assert!(!g.rebase_in_progress().expect("state"));

    // Conflicting edit to the same line.
    Fixture::commit_file(&wt, "shared.txt", "line 1\nSESSION\nline 3\n", "session edit");
    let before = git(&wt, &["rev-parse", "HEAD"]);
    Fixture::commit_file(&fx.root, "shared.txt", "line 1\nMAIN\nline 3\n", "main edit");
    let outcome = g.rebase("main").expect("rebase");
    assert_eq!(outcome, RebaseOutcome::Conflicts(vec!["shared.txt".to_string()]));
    assert!(g.rebase_in_progress().expect("state"));
    let err = g.rebase("main").expect_err("already rebasing");
    assert!(matches!(err, GitError::OperationInProgress { .. }), "{err}");
    let err = g
        .create_snapshot("s", "during rebase")
        .map(|_| ())
        .and_then(|_| g.restore_snapshot(&g.last_snapshot("s")?.expect("snapshot")).map(|_| ()));
    assert!(matches!(err, Err(GitError::OperationInProgress { .. })), "{err:?}");
    g.rebase_abort().expect("abort");
    assert!(!g.rebase_in_progress().expect("state"));
    assert_eq!(git(&wt, &["rev-parse", "HEAD"]), before);
    assert_eq!(git(&wt, &["symbolic-ref", "--short", "HEAD"]), "rebase");
    assert!(g.status().expect("status").is_clean());

    // Again, resolving and continuing this time.
    assert!(matches!(g.rebase("main").expect("rebase"), RebaseOutcome::Conflicts(_)));
    assert_eq!(
        g.rebase_continue().expect("continue without resolving"),
        RebaseOutcome::Conflicts(vec!["shared.txt".to_string()])
    );
    write(&wt, "shared.txt", "line 1\nRESOLVED\nline 3\n");
    g.stage(&["shared.txt"]).expect("stage");
    assert_eq!(g.rebase_continue().expect("continue"), RebaseOutcome::Done);
    assert!(!g.rebase_in_progress().expect("state"));
    assert_eq!(git(&wt, &["log", "-1", "--format=%s"]), "session edit");
    assert!(g.is_ancestor("main", "HEAD").expect("ancestor"));
    assert_eq!(read(&wt, "shared.txt"), "line 1\nRESOLVED\nline 3\n");
    assert!(g.rebase_continue().is_err(), "nothing to continue");

    // Dirty tracked files: git refuses, nothing changes.
    write(&wt, "session.txt", "dirty\n");
    assert!(g.rebase("main~1").is_err());
    assert_eq!(read(&wt, "session.txt"), "dirty\n");
}

#[test]
fn merge_tree_previews_without_touching_checkouts() {
    let fx = Fixture::new();
    let (wt, g) = fx.session("preview");
    Fixture::commit_file(&wt, "feature.txt", "f\n", "feature");
    Fixture::commit_file(&fx.root, "other.txt", "o\n", "main other");
    let main_before = checkout_state(&fx.root, &fx.root.join(".git"));

    let preview = fx.git().merge_tree("main", "preview").expect("preview");
    assert!(preview.clean && preview.conflicts.is_empty());
    let tree = preview.tree.expect("tree");
    let files = git(&fx.root, &["ls-tree", "--name-only", &tree]);
    assert!(files.contains("feature.txt") && files.contains("other.txt"), "{files}");

    Fixture::commit_file(&wt, "shared.txt", "line 1\nSESSION\nline 3\n", "session edit");
    Fixture::commit_file(&wt, "src/lib.rs", "fn session() {}\n", "session lib");
    Fixture::commit_file(&fx.root, "shared.txt", "line 1\nMAIN\nline 3\n", "main edit");
    Fixture::commit_file(&fx.root, "src/lib.rs", "fn main_side() {}\n", "main lib");
    let main_before = CheckoutState {
        head: git(&fx.root, &["rev-parse", "HEAD"]),
        index_digest: file_digest(&fx.root.join(".git/index")),
        files: tree_text(&fx.root),
        ..main_before
    };
    let preview = g.merge_tree("main", "HEAD").expect("preview");
    assert!(!preview.clean);
    assert_eq!(preview.tree, None);
    assert_eq!(preview.conflicts, vec!["shared.txt", "src/lib.rs"]);
    assert_eq!(main_before, checkout_state(&fx.root, &fx.root.join(".git")));
    assert!(g.status().expect("status").is_clean());
    assert!(g.merge_tree("main", "no-such-branch").is_err());
}

#[test]
fn merges_into_a_clean_checkout_and_abort_on_conflict() {
    let fx = Fixture::new();
    let (wt, _g) = fx.session("merge");
    let session_tip = Fixture::commit_file(&wt, "feature.txt", "f\n", "feature");
    let main = fx.git();

    // Dirty tracked files: refused before git runs.
    write(&fx.root, "README.md", "dirty\n");
    let err = main.merge_ff_only("merge").expect_err("dirty");
    assert!(matches!(err, GitError::Dirty { .. }), "{err}");
    assert!(err.to_string().contains("README.md"), "{err}");
    git(&fx.root, &["checkout", "-q", "--", "README.md"]);

    assert_eq!(main.merge_ff_only("merge").expect("ff"), session_tip);
    assert_eq!(git(&fx.root, &["rev-parse", "main"]), session_tip);

    // A no-ff merge commit with a message.
    Fixture::commit_file(&wt, "more.txt", "m\n", "more");
    Fixture::commit_file(&fx.root, "main.txt", "m\n", "main side");
    let outcome = main.merge_no_ff("merge", "Merge session 'merge'").expect("merge");
    let MergeOutcome::Merged { sha } = outcome else {
        panic!("expected a merge, got {outcome:?}");
    };
    assert_eq!(
        git(&fx.root, &["log", "-1", "--format=%s|%P", &sha]).split('|').next(),
        Some("Merge session 'merge'")
    );
    assert_eq!(git(&fx.root, &["log", "-1", "--format=%P"]).split(' ').count(), 2);

    // Not a fast-forward any more.
    Fixture::commit_file(&wt, "again.txt", "a\n", "again");
    Fixture::commit_file(&fx.root, "again-main.txt", "a\n", "again main");
    assert!(main.merge_ff_only("merge").is_err());

    // Conflicts: aborted, main checkout as before.
    Fixture::commit_file(&wt, "shared.txt", "line 1\nSESSION\nline 3\n", "session edit");
    Fixture::commit_file(&fx.root, "shared.txt", "line 1\nMAIN\nline 3\n", "main edit");
    write(&fx.root, "untracked-in-main.txt", "mine\n");
    let before = checkout_state(&fx.root, &fx.root.join(".git"));
    let outcome = main.merge_no_ff("merge", "conflicting").expect("merge");
    assert_eq!(outcome, MergeOutcome::Conflicts { files: vec!["shared.txt".to_string()] });
    assert!(!main.merge_in_progress().expect("state"));
    let after = checkout_state(&fx.root, &fx.root.join(".git"));
    assert_eq!(
        (&before.head, &before.cached_diff, &before.unstaged_diff, &before.files),
        (&after.head, &after.cached_diff, &after.unstaged_diff, &after.files)
    );
}

#[test]
fn update_ref_is_compare_and_swap() {
    let fx = Fixture::new();
    let g = fx.git();
    let first = git(&fx.root, &["rev-parse", "HEAD"]);
    let second = Fixture::commit_file(&fx.root, "x.txt", "x\n", "second");
    g.update_ref("refs/heads/target", &first, Some("")).expect("create");
    assert!(g.update_ref("refs/heads/target", &first, Some("")).is_err(), "exists already");
    let err = g.update_ref("refs/heads/target", &second, Some(&second)).expect_err("stale expectation");
    assert!(err.to_string().contains("update-ref"), "{err}");
    assert_eq!(git(&fx.root, &["rev-parse", "target"]), first);
    g.update_ref("refs/heads/target", &second, Some(&first)).expect("swap");
    assert_eq!(git(&fx.root, &["rev-parse", "target"]), second);
    assert!(g.delete_ref("refs/heads/target", Some(&first)).is_err());
    g.delete_ref("refs/heads/target", Some(&second)).expect("delete");
    assert!(!g.branch_exists("target").expect("exists"));
}

#[test]
fn errors_name_command_directory_and_stderr() {
    let fx = Fixture::new();
    let err = fx.git().run(&["rev-parse", "--verify", "no-such-ref"]).expect_err("fails");
    let text = err.to_string();
    assert!(text.contains("git rev-parse --verify no-such-ref"), "{text}");
    assert!(text.contains(&fx.root.display().to_string()), "{text}");
    assert!(text.contains("fatal: Needed a single revision"), "{text}");
    assert!(err.stderr().contains("Needed a single revision"));

    let out = fx.git().run_ok(&["merge-base", "--is-ancestor", "HEAD", "HEAD"]).expect("runs");
    assert!(out.success());

    // The environment is fixed: no editor, no prompts, C locale.
    let editor = fx.git().run(&["var", "GIT_EDITOR"]).expect("var");
    assert_eq!(editor.trim(), "true");
    let bad = Git::new(fx.root.join("missing-dir"));
    assert!(matches!(bad.run(&["status"]), Err(GitError::Spawn { .. })));
}

#[test]
fn timeout_kills_git_and_its_children() {
    let fx = Fixture::new();
    let marker = fx.scratch.join("survived");
    let script = format!("!sleep 3; touch '{}'", marker.display());
    let alias = format!("alias.hang={script}");
    let g = fx.git().with_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let err = g.run(&["-c", alias.as_str(), "hang"]).expect_err("times out");
    assert!(matches!(err, GitError::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert!(err.to_string().contains("hang"), "{err}");
    std::thread::sleep(Duration::from_millis(3500));
    assert!(!marker.exists(), "the shell started by git was not killed");
}

#[test]
fn repo_lock_excludes_a_second_holder_until_dropped() {
    let fx = Fixture::new();
    let locks = fx.scratch.join("locks");
    let first = RepoLock::acquire(&locks, &fx.root, Duration::from_secs(1)).expect("first");
    assert!(first.path().starts_with(&locks));

    let started = Instant::now();
    let err = RepoLock::acquire(&locks, &fx.root, Duration::from_millis(200)).expect_err("busy");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(200) && waited < Duration::from_secs(2), "{waited:?}");
    let text = err.to_string();
    assert!(matches!(err, GitError::LockTimeout { .. }));
    assert!(text.contains(&fx.root.display().to_string()), "{text}");
    assert!(text.contains(&format!("pid {}", std::process::id())), "{text}");

    // Another repository is independent.
    let other = fx.scratch.join("other-repo");
    std::fs::create_dir_all(&other).expect("mkdir");
    let _other = RepoLock::acquire(&locks, &other, Duration::from_millis(200)).expect("other repo");

    // A waiter gets the lock once the holder drops it.
    let root = fx.root.clone();
    let locks2 = locks.clone();
    let waiter =
        std::thread::spawn(move || RepoLock::acquire(&locks2, &root, Duration::from_secs(5)).map(|_| ()));
    std::thread::sleep(Duration::from_millis(100));
    drop(first);
    waiter.join().expect("thread").expect("acquired after drop");
    RepoLock::acquire(&locks, &fx.root, Duration::from_millis(200)).expect("free again");
}

#[test]
fn plumbing_builds_commits_without_touching_checkouts() {
    let fx = Fixture::new();
    let (wt, g) = fx.session("plumb");
    let tip = Fixture::commit_file(&wt, "feature.txt", "f\n", "feature");
    let before = checkout_state(&fx.root, &fx.root.join(".git"));
    let main = fx.git();
    let tree = main.tree_of(&tip).expect("tree");
    assert_eq!(tree, git(&fx.root, &["rev-parse", &format!("{tip}^{{tree}}")]));
    let base = git(&fx.root, &["rev-parse", "main"]);
    let made = main.commit_tree(&tree, &[base.as_str()], "squashed\n\nSession: x").expect("commit-tree");
    assert_eq!(git(&fx.root, &["log", "-1", "--format=%P %s", &made]), format!("{base} squashed"));
    assert_eq!(git(&fx.root, &["rev-parse", "main"]), base, "commit-tree moved a ref");
    assert_eq!(before, checkout_state(&fx.root, &fx.root.join(".git")));
    assert!(main.commit_tree(&tree, &["-p"], "x").is_err());

    // Checked out, the commit is kept alive by the worktree's HEAD; once the worktree is gone, only by the
    // branch, until another ref holds it.
    assert_eq!(main.commits_only_on("refs/heads/plumb").expect("count"), 0);
    drop(g);
    main.worktree_remove(&wt, false).expect("remove");
    assert_eq!(main.commits_only_on("refs/heads/plumb").expect("count"), 1);
    main.update_ref("refs/ampsm/snapshots/t/1", &tip, Some("")).expect("ref");
    assert_eq!(main.commits_only_on("refs/heads/plumb").expect("count"), 0);

    assert_eq!(main.upstream_of("main").expect("upstream"), None);
    assert!(!main.is_remote_branch("main").expect("remote?"));
    // A worktree for an existing branch.
    main.worktree_add_existing("plumb", &wt).expect("add existing");
    assert_eq!(git(&wt, &["rev-parse", "HEAD"]), tip);
}

#[test]
fn unused_lock_files_are_removed_and_held_ones_are_not() {
    let fx = Fixture::new();
    let locks = fx.scratch.join("locks");
    let held = RepoLock::acquire(&locks, &fx.root, Duration::from_secs(1)).expect("lock");
    let path = held.path().to_path_buf();
    assert!(RepoLock::is_held(&path));
    assert!(!RepoLock::remove_if_unused(&path).expect("check"));
    assert!(path.exists());
    drop(held);
    assert!(!RepoLock::is_held(&path));
    assert!(RepoLock::remove_if_unused(&path).expect("remove"));
    assert!(!path.exists());
    // Acquiring again recreates the file.
    let again = RepoLock::acquire(&locks, &fx.root, Duration::from_secs(1)).expect("lock again");
    assert!(again.path().exists());
}

#[test]
fn a_binary_diff_leaves_out_paths_and_applies_back_or_is_rejected() {
    let fx = Fixture::new();
    let base = git(&fx.root, &["rev-parse", "HEAD"]);
    write(&fx.root, "shared.txt", "line 1\nline two\nline 3\n");
    write(&fx.root, "tests/hidden.sh", "exit 0\n");
    std::fs::write(fx.root.join("latin1.txt"), [b'c', b'a', b'f', 0xe9, b'\n']).expect("write");
    git(&fx.root, &["add", "-A"]);
    git(&fx.root, &["commit", "-q", "-m", "work"]);
    let head = git(&fx.root, &["rev-parse", "HEAD"]);
    let g = fx.git();
    let patch = g.diff_binary(&base, &head, &["tests/hidden.sh".to_string()]).expect("diff");
    assert!(patch.contains(&0xe9), "file contents that are not UTF-8 stay as they are");
    let text = String::from_utf8_lossy(&patch);
    assert!(text.contains("shared.txt") && !text.contains("hidden.sh"), "{text}");
    assert!(g.diff_binary("-x", &head, &[]).is_err(), "an option-like revision is refused");

    // Back at the base, the patch applies; a patch for other content is rejected and the tree stays clean.
    git(&fx.root, &["reset", "-q", "--hard", &base]);
    let file = fx.scratch.join("model.patch");
    std::fs::write(&file, &patch).expect("write");
    assert_eq!(g.apply_patch_file(&file).expect("apply"), ampsm_git::PatchApply::Applied);
    assert_eq!(read(&fx.root, "shared.txt"), "line 1\nline two\nline 3\n");
    git(&fx.root, &["reset", "-q", "--hard", &base]);
    let bad = fx.scratch.join("bad.patch");
    std::fs::write(
        &bad,
        "diff --git a/nope.txt b/nope.txt\n--- a/nope.txt\n+++ b/nope.txt\n@@ -1 +1 @@\n-x\n+y\n",
    )
    .expect("write");
    match g.apply_patch_file(&bad).expect("apply runs") {
        ampsm_git::PatchApply::Rejected(why) => assert!(why.contains("nope.txt"), "{why}"),
        other => panic!("applied a patch for a missing file: {other:?}"),
    }
    assert_eq!(git(&fx.root, &["status", "--porcelain"]), "");
}

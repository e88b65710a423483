//! Merging a session back into its base branch: `merge <s> [--strategy squash|rebase|merge] [-m MSG]
//! [--dry-run] [--push] [--pr]`.
//!
//! Preflight: the session worktree is clean (untracked files too, since they would silently be left out), no
//! rebase is stopped there, the base is a local branch, the checkout that has the base checked out (if any) has
//! no uncommitted changes, the base is not behind its remote (fetched first), the result would not conflict
//! (`git merge-tree --write-tree`), and the session's test script passes (`sh -c` in the worktree, with a
//! timeout). `--dry-run` runs every check except the script and reports without changing anything.
//!
//! The result commit is built without touching any checkout: squash and merge with `commit-tree` on the tree
//! `merge-tree` computed (parents: base, plus the session head for a merge commit); rebase by replaying the
//! session's commits onto the base in the session's own worktree (after a snapshot; a conflict aborts the
//! replay and restores the branch). Then, under the repository lock, the base moves only if it still points
//! where it did:
//! - base checked out in a worktree (normally the user's main checkout): `git merge --ff-only RESULT` there,
//!   only when that checkout is clean (otherwise nothing at all is changed);
//! - base not checked out anywhere: `git update-ref refs/heads/BASE RESULT OLD` (compare-and-swap).
//!
//! Afterwards the session branch points at the result (the old head stays in the snapshot taken first), the
//! merge is recorded in `merges`, and the session becomes `done`. `--push` pushes the base branch; `--pr`
//! instead pushes the session branch and opens a pull request with `gh`, leaving the local base alone.

use crate::review::label;
use crate::review_error::ReviewError;
use crate::script::{SCRIPT_TIMEOUT, ScriptRun, run_script_with};
use crate::{Engine, EngineError};
use ampsm_core::{MergeResult, SessionStatus};
use ampsm_git::{Git, RebaseOutcome, RepoLock};
use ampsm_store::metrics::NewMerge;
use ampsm_store::{Session, SnapshotRecord};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

/// How the session's work lands on the base.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MergeStrategy {
    /// One new commit on the base with all the session's changes.
    #[default]
    Squash,
    /// The session's commits replayed onto the base, then a fast-forward.
    Rebase,
    /// A merge commit joining the base and the session branch.
    Merge,
}

impl MergeStrategy {
    pub fn as_str(self) -> &'static str {
        match self {
            MergeStrategy::Squash => "squash",
            MergeStrategy::Rebase => "rebase",
            MergeStrategy::Merge => "merge",
        }
    }
}

impl std::str::FromStr for MergeStrategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "squash" => Ok(MergeStrategy::Squash),
            "rebase" => Ok(MergeStrategy::Rebase),
            "merge" => Ok(MergeStrategy::Merge),
            other => Err(format!("unknown merge strategy {other:?} (one of: squash, rebase, merge)")),
        }
    }
}

/// What `merge` is asked to do.
#[derive(Debug, Clone, Default)]
pub struct MergeRequest {
    pub strategy: MergeStrategy,
    pub message: Option<String>,
    pub dry_run: bool,
    pub push: bool,
    pub pr: bool,
    /// Limit for the test script (default 10 minutes).
    pub script_timeout: Option<Duration>,
    /// Ctrl-C of a foreground `merge`: stops the test script (and with it the merge; nothing changes).
    pub interrupt: Option<crate::Interrupt>,
}

/// One preflight check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

/// What `merge` did (or, with `--dry-run`, would do).
#[derive(Debug, Clone, Serialize)]
pub struct MergeReport {
    pub session_id: String,
    pub name: String,
    pub strategy: MergeStrategy,
    pub base_branch: String,
    pub base_before: Option<String>,
    pub base_after: Option<String>,
    pub session_head: Option<String>,
    /// `merged`, `dry-run` or `pull-request`.
    pub result: MergeResult,
    /// With --dry-run: whether the merge would go ahead.
    pub would_merge: bool,
    pub conflicts: Vec<String>,
    pub checks: Vec<Check>,
    /// How the base moved: `fast-forward in PATH` or `ref updated (not checked out)`.
    pub base_update: Option<String>,
    pub commits_landed: u64,
    pub script: Option<ScriptRun>,
    pub snapshot: Option<SnapshotRecord>,
    pub pushed: Option<String>,
    pub pr_url: Option<String>,
    pub merge_id: Option<String>,
    pub notes: Vec<String>,
}

/// Preflight results shared by the real merge and the dry run.
struct Preflight {
    checks: Vec<Check>,
    failure: Option<EngineError>,
}

impl Preflight {
    fn pass(&mut self, name: &'static str, detail: impl Into<String>) {
        self.checks.push(Check { name, ok: true, detail: detail.into() });
    }
    fn fail(&mut self, name: &'static str, detail: impl Into<String>, err: EngineError) {
        self.checks.push(Check { name, ok: false, detail: detail.into() });
        if self.failure.is_none() {
            self.failure = Some(err);
        }
    }
}

impl Engine {
    /// `merge <s>` (see the module docs).
    pub fn merge_session(&mut self, reference: &str, req: &MergeRequest) -> Result<MergeReport, EngineError> {
        let merged = self.merge_session_phases(reference, req);
        if let Err(e) = &merged {
            self.notify_if_conflict(e);
        }
        merged
    }

    /// The phases of [`Engine::merge_session`] (a conflict error is notified by the caller).
    fn merge_session_phases(
        &mut self,
        reference: &str,
        req: &MergeRequest,
    ) -> Result<MergeReport, EngineError> {
        let s = self.live_session(reference)?;
        self.ensure_not_running(&s)?;
        let wt = self.session_worktree(&s)?;
        let repo = Git::new(&s.repo_path);
        let repo_root = PathBuf::from(&s.repo_path);
        let short = s.id.short().to_string();
        let base = s.base_branch.clone();
        let mut report = MergeReport {
            session_id: s.id.to_string(),
            name: s.name.clone(),
            strategy: req.strategy,
            base_branch: base.clone(),
            base_before: None,
            base_after: None,
            session_head: None,
            result: if req.dry_run { MergeResult::DryRun } else { MergeResult::Merged },
            would_merge: false,
            conflicts: vec![],
            checks: vec![],
            base_update: None,
            commits_landed: 0,
            script: None,
            snapshot: None,
            pushed: None,
            pr_url: None,
            merge_id: None,
            notes: vec![],
        };
        let mut pre = Preflight { checks: vec![], failure: None };

        // The session worktree.
        if wt.rebase_in_progress()? || wt.merge_in_progress()? {
            let err = ReviewError::RebaseInProgress {
                session: label(&s),
                short_id: short.clone(),
                operation: "merging",
            };
            return Err(err.into());
        }
        let st = wt.status()?;
        if st.is_clean() {
            pre.pass("session clean", "no uncommitted or untracked files");
        } else {
            let detail = st.summary(5);
            pre.fail(
                "session clean",
                detail.clone(),
                ReviewError::SessionDirty {
                    session: label(&s),
                    short_id: short.clone(),
                    detail,
                    operation: "merging",
                }
                .into(),
            );
        }
        let head = wt.require_commit("HEAD")?;
        report.session_head = Some(head.clone());

        // The base branch.
        if !repo.branch_exists(&base)? {
            return Err(ReviewError::BaseNotBranch { session: label(&s), short_id: short, base }.into());
        }
        let base_ref = format!("refs/heads/{base}");
        let checkout = repo
            .worktree_list()?
            .into_iter()
            .find(|w| !w.bare && w.branch.as_deref() == Some(base.as_str()))
            .map(|w| w.path);
        match &checkout {
            Some(path) if req.pr => pre.pass(
                "base checkout clean",
                format!("not needed: a pull request leaves {base} in {} alone", path.display()),
            ),
            Some(path) => {
                let co = Git::new(path);
                let cst = co.status()?;
                let busy = co.rebase_in_progress()? || co.merge_in_progress()?;
                if cst.has_uncommitted() || busy {
                    let detail =
                        if busy { "a rebase or merge is in progress".into() } else { cst.summary(5) };
                    pre.fail(
                        "base checkout clean",
                        format!("{base} is checked out in {} with uncommitted changes", path.display()),
                        ReviewError::BaseCheckoutDirty {
                            session: label(&s),
                            branch: base.clone(),
                            checkout: path.clone(),
                            detail,
                        }
                        .into(),
                    );
                } else {
                    pre.pass(
                        "base checkout clean",
                        format!("{base} is checked out in {} (clean)", path.display()),
                    );
                }
            }
            None => pre.pass(
                "base checkout clean",
                format!("{base} is not checked out; its ref is updated directly"),
            ),
        }

        // Up to date with the remote.
        let mut warnings = Vec::new();
        match self.fetch_for(&repo, &base, &mut warnings) {
            Ok(Some(remote)) => {
                let up = repo.upstream_of(&base)?.unwrap_or_else(|| format!("{remote}/{base}"));
                let behind = repo.count_commits(&format!("{base}..{up}"))?;
                if behind > 0 {
                    pre.fail(
                        "base up to date",
                        format!("{base} is {behind} commit(s) behind {up}"),
                        ReviewError::BaseBehindRemote {
                            session: label(&s),
                            short_id: short.clone(),
                            branch: base.clone(),
                            upstream: up,
                            behind,
                        }
                        .into(),
                    );
                } else {
                    pre.pass("base up to date", format!("fetched {remote}; {base} has everything of {up}"));
                }
            }
            Ok(None) => pre.pass("base up to date", format!("{base} has no remote to compare with")),
            Err(e) => {
                let detail = e.to_string();
                pre.fail("base up to date", detail, e);
            }
        }

        // The result.
        let base_sha = repo.require_commit(&base_ref)?;
        report.base_before = Some(base_sha.clone());
        if repo.is_ancestor(&head, &base_sha)? {
            return Err(
                ReviewError::NothingToMerge { session: label(&s), branch: s.branch.clone(), base }.into()
            );
        }
        report.commits_landed = repo.count_commits(&format!("{base_sha}..{head}"))?;
        let preview = repo.merge_tree(&base_sha, &head)?;
        if preview.clean {
            pre.pass("no conflicts", format!("git merge-tree: {} merges cleanly into {base}", s.branch));
        } else {
            report.conflicts = preview.conflicts.clone();
            pre.fail(
                "no conflicts",
                format!("conflicts in {}", preview.conflicts.join(", ")),
                ReviewError::MergeConflicts {
                    session: label(&s),
                    short_id: short.clone(),
                    base: base.clone(),
                    files: preview.conflicts.clone(),
                }
                .into(),
            );
        }

        // Untracked files in the base checkout that the merge would have to overwrite.
        if let (Some(path), Some(tree), false) = (&checkout, &preview.tree, req.pr) {
            let co = Git::new(path);
            let untracked: Vec<String> = co
                .status()?
                .entries
                .into_iter()
                .filter(|e| e.kind == ampsm_git::EntryKind::Untracked)
                .map(|e| e.path)
                .collect();
            if !untracked.is_empty() {
                let changed =
                    repo.run(&["diff-tree", "-r", "--name-only", "-z", base_sha.as_str(), tree.as_str()])?;
                let clash: Vec<String> = changed
                    .split('\0')
                    .filter(|p| untracked.iter().any(|u| u == p))
                    .map(str::to_string)
                    .collect();
                if !clash.is_empty() {
                    let detail = format!("untracked {} would be overwritten", clash.join(", "));
                    pre.fail(
                        "base checkout clean",
                        detail.clone(),
                        ReviewError::BaseCheckoutDirty {
                            session: label(&s),
                            branch: base.clone(),
                            checkout: path.clone(),
                            detail,
                        }
                        .into(),
                    );
                }
            }
        }

        // The test script.
        match s.script.as_deref().filter(|sc| !sc.trim().is_empty()) {
            None => pre.pass("tests pass", "the session has no test script"),
            Some(script) if req.dry_run => {
                pre.pass("tests pass", format!("not run in a dry run ({script})"));
            }
            Some(_) if pre.failure.is_some() => {}
            Some(script) => {
                let timeout = req.script_timeout.unwrap_or(SCRIPT_TIMEOUT);
                let stop = || req.interrupt.as_ref().is_some_and(crate::Interrupt::interrupted);
                let _busy = req.interrupt.as_ref().map(crate::Interrupt::busy);
                let worktree = PathBuf::from(&s.worktree_path);
                let run = run_script_with(&worktree, script, timeout, &stop, None, &mut |_| {}).map_err(
                    |source| ReviewError::ScriptSpawn {
                        session: label(&s),
                        script: script.to_string(),
                        source,
                    },
                )?;
                if run.passed() {
                    pre.pass("tests pass", format!("{script}: passed in {} ms", run.duration_ms));
                } else {
                    pre.fail(
                        "tests pass",
                        format!("{script}: {}", run.outcome()),
                        ReviewError::TestsFailed {
                            session: label(&s),
                            outcome: run.outcome(),
                            tail: run.short_tail(),
                        }
                        .into(),
                    );
                }
                report.script = Some(run);
            }
        }
        report.notes.extend(warnings);
        report.checks = pre.checks;

        if req.dry_run {
            report.would_merge = pre.failure.is_none();
            if let Some(tree) = &preview.tree {
                let files =
                    repo.run(&["diff-tree", "-r", "--name-only", "-z", base_sha.as_str(), tree.as_str()])?;
                let n = files.split('\0').filter(|f| !f.is_empty()).count();
                report.notes.push(format!("{n} file(s) would change on {base}"));
            }
            self.record_merge(&s, &report, MergeResult::DryRun, req.message.as_deref())?;
            return Ok(report);
        }
        if let Some(err) = pre.failure {
            let result =
                if report.conflicts.is_empty() { MergeResult::Refused } else { MergeResult::Conflicts };
            self.record_merge(&s, &report, result, req.message.as_deref())?;
            return Err(err);
        }

        if req.pr {
            return self.open_pull_request(&s, &repo, report, req);
        }

        // Build and land the result under the repository lock.
        let _lock = RepoLock::acquire(&self.paths.locks, &repo_root, crate::sessions::LOCK_TIMEOUT)?;
        if repo.resolve_commit(&base_ref)?.as_deref() != Some(base_sha.as_str()) {
            return Err(
                ReviewError::Moved { session: label(&s), what: format!("branch {base}"), base }.into()
            );
        }
        if wt.resolve_commit("HEAD")?.as_deref() != Some(head.as_str()) {
            return Err(ReviewError::Moved {
                session: label(&s),
                what: format!("session branch {}", s.branch),
                base,
            }
            .into());
        }
        let snapshot =
            self.take_snapshot(&s, &format!("merge --strategy {} into {base}", req.strategy.as_str()))?;
        report.snapshot = Some(snapshot);
        let trailer = format!("Session: {}", s.id);
        let result = match req.strategy {
            MergeStrategy::Squash | MergeStrategy::Merge => {
                let tree = preview
                    .tree
                    .clone()
                    .ok_or_else(|| EngineError::Invalid("merge-tree gave no tree".into()))?;
                if tree == repo.tree_of(&base_sha)? {
                    return Err(ReviewError::NothingToMerge {
                        session: label(&s),
                        branch: s.branch.clone(),
                        base,
                    }
                    .into());
                }
                let (message, parents) = if req.strategy == MergeStrategy::Squash {
                    (
                        self.squash_merge_message(
                            &repo,
                            &s,
                            &base_sha,
                            &head,
                            req.message.as_deref(),
                            &trailer,
                        )?,
                        vec![base_sha.as_str()],
                    )
                } else {
                    let m = req
                        .message
                        .clone()
                        .unwrap_or_else(|| format!("Merge session {} ({}) into {base}", s.name, s.branch));
                    (format!("{}\n\n{trailer}", m.trim_end()), vec![base_sha.as_str(), head.as_str()])
                };
                repo.commit_tree(&tree, &parents, &message)?
            }
            MergeStrategy::Rebase => {
                if repo.is_ancestor(&base_sha, &head)? {
                    head.clone()
                } else {
                    match wt.rebase(&base_sha)? {
                        RebaseOutcome::Done => wt.require_commit("HEAD")?,
                        RebaseOutcome::Conflicts(files) => {
                            wt.rebase_abort()?;
                            report.conflicts = files.clone();
                            self.record_merge(&s, &report, MergeResult::Conflicts, req.message.as_deref())?;
                            return Err(ReviewError::ReplayConflicts {
                                session: label(&s),
                                short_id: short,
                                base,
                                files,
                            }
                            .into());
                        }
                    }
                }
            }
        };
        crate::process::fault_point("merge:before-base-update");
        match &checkout {
            Some(path) => {
                let co = Git::new(path);
                if co.resolve_commit("HEAD")?.as_deref() != Some(base_sha.as_str()) {
                    return Err(ReviewError::Moved {
                        session: label(&s),
                        what: format!("branch {base}"),
                        base,
                    }
                    .into());
                }
                if let Err(e) = co.merge_ff_only(&result) {
                    self.record_merge(&s, &report, MergeResult::Failed, req.message.as_deref())?;
                    return Err(match e {
                        ampsm_git::GitError::Dirty { detail, .. } => ReviewError::BaseCheckoutDirty {
                            session: label(&s),
                            branch: base.clone(),
                            checkout: path.clone(),
                            detail,
                        }
                        .into(),
                        other => other.into(),
                    });
                }
                report.base_update = Some(format!("fast-forward in {}", path.display()));
            }
            None => {
                repo.update_ref(&base_ref, &result, Some(&base_sha)).map_err(|_| ReviewError::Moved {
                    session: label(&s),
                    what: format!("branch {base}"),
                    base: base.clone(),
                })?;
                report.base_update = Some("ref updated (not checked out)".into());
            }
        }
        report.base_after = Some(result.clone());
        // The session branch follows the result; its old head stays in the snapshot.
        if wt.require_commit("HEAD")? != result {
            wt.reset_hard(&result)?;
        }
        let kind = req.strategy.as_str();
        let subject = repo.run(&["show", "-s", "--format=%s", result.as_str()])?.trim().to_string();
        self.record_commit(&s, &result, kind, &subject)?;
        if s.status != SessionStatus::Done {
            self.store.set_status(&s.id, SessionStatus::Done, Some(&format!("merged into {base}")))?;
        }
        let merge_id = self.record_merge(&s, &report, MergeResult::Merged, req.message.as_deref())?;
        report.merge_id = Some(merge_id.clone());

        if req.push {
            let remote = self.push_remote(&repo, &base)?;
            let pushed = repo.clone().with_timeout(Duration::from_secs(300)).push(&remote, &base);
            match pushed {
                Ok(()) => {
                    self.store.mark_merge_pushed(&merge_id)?;
                    report.pushed = Some(remote);
                }
                Err(e) => {
                    return Err(ReviewError::PushFailed {
                        session: label(&s),
                        base,
                        remote,
                        reason: e.to_string(),
                    }
                    .into());
                }
            }
        }
        Ok(report)
    }

    /// The message of a squash merge: `-m`, else the single commit's message, else a list of the subjects.
    fn squash_merge_message(
        &self,
        repo: &Git,
        s: &Session,
        base_sha: &str,
        head: &str,
        given: Option<&str>,
        trailer: &str,
    ) -> Result<String, EngineError> {
        if let Some(m) = given.filter(|m| !m.trim().is_empty()) {
            return Ok(format!("{}\n\n{trailer}", m.trim_end()));
        }
        let commits = repo.commits_between(base_sha, head)?;
        if let [only] = commits.as_slice() {
            let body = repo.run(&["show", "-s", "--format=%B", only.sha.as_str()])?;
            if body.contains(trailer) {
                return Ok(body);
            }
            return Ok(format!("{}\n\n{trailer}", body.trim_end()));
        }
        let title =
            s.prompt.as_deref().and_then(|p| p.lines().next()).map(str::trim).filter(|p| !p.is_empty());
        let subject = match title {
            Some(t) => format!("{}: {}", s.name, t.chars().take(60).collect::<String>()),
            None => format!("Session {}: {} commits squashed", s.name, commits.len()),
        };
        let list: Vec<String> = commits.iter().map(|c| format!("- {}", c.subject)).collect();
        Ok(format!("{subject}\n\n{}\n\n{trailer}", list.join("\n")))
    }

    /// The remote to push the base to: its upstream's remote, else `origin`, else the only remote.
    fn push_remote(&self, repo: &Git, base: &str) -> Result<String, EngineError> {
        let remotes = repo.remotes()?;
        if let Some(up) = repo.upstream_of(base)?
            && let Some(r) = remotes.iter().find(|r| up.starts_with(&format!("{r}/")))
        {
            return Ok(r.clone());
        }
        if remotes.iter().any(|r| r == "origin") {
            return Ok("origin".into());
        }
        match remotes.as_slice() {
            [only] => Ok(only.clone()),
            [] => Err(ReviewError::Remote(format!("the repository {} has no remote to push to", repo.dir().display()))
                .into()),
            _ => Err(ReviewError::Remote(format!(
                "the repository has several remotes ({}) and {base} has no upstream; set one with `git branch \
                 --set-upstream-to`",
                remotes.join(", ")
            ))
            .into()),
        }
    }

    /// `merge --pr`: pushes the session branch and opens a pull request against the base with `gh`.
    fn open_pull_request(
        &mut self,
        s: &Session,
        repo: &Git,
        mut report: MergeReport,
        req: &MergeRequest,
    ) -> Result<MergeReport, EngineError> {
        let base = s.base_branch.clone();
        let remote = self.push_remote(repo, &base)?;
        let gh = find_program("gh").ok_or_else(|| ReviewError::PrFailed {
            session: label(s),
            reason: format!(
                "the GitHub CLI `gh` is not installed; install it from https://cli.github.com, or push with \
                 `git push {remote} {}` and open the pull request on your forge. Nothing was merged",
                s.branch
            ),
        })?;
        repo.clone().with_timeout(Duration::from_secs(300)).push(&remote, &s.branch).map_err(|e| {
            ReviewError::PrFailed {
                session: label(s),
                reason: format!("pushing {} to {remote} failed: {e}", s.branch),
            }
        })?;
        report.pushed = Some(remote);
        let title = req
            .message
            .clone()
            .or_else(|| s.prompt.as_deref().and_then(|p| p.lines().next()).map(str::to_string))
            .unwrap_or_else(|| format!("Session {}", s.name));
        let body = format!(
            "Work of amp-sessions session {} ({}), {} commit(s). Preferred strategy: {}.\n\nSession: {}",
            s.name,
            s.branch,
            report.commits_landed,
            req.strategy.as_str(),
            s.id
        );
        let out = std::process::Command::new(gh)
            .args(["pr", "create", "--base", base.as_str(), "--head", s.branch.as_str(), "--title"])
            .arg(&title)
            .arg("--body")
            .arg(&body)
            .current_dir(&s.worktree_path)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| ReviewError::PrFailed {
                session: label(s),
                reason: format!("could not run gh: {e}"),
            })?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr).trim().replace('\n', " ");
            return Err(ReviewError::PrFailed {
                session: label(s),
                reason: format!("gh pr create failed: {err}"),
            }
            .into());
        }
        let url = String::from_utf8_lossy(&out.stdout)
            .lines()
            .rev()
            .find(|l| l.starts_with("http"))
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&out.stdout).trim().to_string());
        report.result = MergeResult::PullRequest;
        report.pr_url = Some(url.clone());
        report.notes.push(format!("{base} was not changed locally; the pull request merges it on the forge"));
        Ok(report)
    }

    /// Records a merge attempt in `merges` and returns its id.
    fn record_merge(
        &mut self,
        s: &Session,
        r: &MergeReport,
        result: MergeResult,
        message: Option<&str>,
    ) -> Result<String, EngineError> {
        Ok(self.store.insert_merge(&NewMerge {
            session: &s.id,
            strategy: r.strategy.as_str(),
            base_branch: &r.base_branch,
            base_before: r.base_before.as_deref(),
            base_after: r.base_after.as_deref(),
            session_head: r.session_head.as_deref(),
            result,
            conflicts: &r.conflicts,
            message,
            pr_url: r.pr_url.as_deref(),
        })?)
    }
}

/// The full path of `name` on PATH, if it is there.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
    })
}

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

use crate::review::error::ReviewError;
use crate::review::label;
use crate::runs::script::{SCRIPT_TIMEOUT, ScriptRun, run_script_with};
use crate::{Engine, EngineError};
use ampsm_core::{MergeResult, SessionStatus};
use ampsm_git::{Git, MergePreview, RebaseOutcome, RepoLock};
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

/// What the phases of a merge share: the session, its worktree and repository, the base branch, the
/// session's head when the merge began, and the checkout that has the base checked out (if any).
struct MergeTarget {
    s: Session,
    wt: Git,
    repo: Git,
    short: String,
    base: String,
    base_ref: String,
    head: String,
    checkout: Option<PathBuf>,
}

impl MergeTarget {
    /// Refuses to go on when the base or the session branch moved since the preflight.
    fn ensure_unmoved(&self, base_sha: &str) -> Result<(), EngineError> {
        let moved =
            |what: String| ReviewError::Moved { session: label(&self.s), what, base: self.base.clone() };
        if self.repo.resolve_commit(&self.base_ref)?.as_deref() != Some(base_sha) {
            return Err(moved(format!("branch {}", self.base)).into());
        }
        if self.wt.resolve_commit("HEAD")?.as_deref() != Some(self.head.as_str()) {
            return Err(moved(format!("session branch {}", self.s.branch)).into());
        }
        Ok(())
    }

    /// The refusal for a base checkout that is not clean (`detail` says how).
    fn base_checkout_dirty(&self, checkout: &std::path::Path, detail: String) -> EngineError {
        ReviewError::BaseCheckoutDirty {
            session: label(&self.s),
            branch: self.base.clone(),
            checkout: checkout.to_path_buf(),
            detail,
        }
        .into()
    }
}

impl MergeReport {
    /// The report of a merge that is about to be checked.
    fn start(t: &MergeTarget, req: &MergeRequest) -> MergeReport {
        MergeReport {
            session_id: t.s.id.to_string(),
            name: t.s.name.clone(),
            strategy: req.strategy,
            base_branch: t.base.clone(),
            base_before: None,
            base_after: None,
            session_head: Some(t.head.clone()),
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

    /// The phases of [`Engine::merge_session`] (a conflict error is notified by the caller): the preflight
    /// checks, then (unless a dry run, a failed check or a pull request) the result built and landed under
    /// the repository lock, the session recorded as merged, and the push.
    fn merge_session_phases(
        &mut self,
        reference: &str,
        req: &MergeRequest,
    ) -> Result<MergeReport, EngineError> {
        let t = self.merge_target(reference)?;
        let mut report = MergeReport::start(&t, req);
        let mut pre = Preflight { checks: vec![], failure: None };
        Self::check_session_clean(&t, &mut pre)?;
        Self::check_base_checkout(&t, req, &mut pre)?;
        let warnings = self.check_base_up_to_date(&t, &mut pre)?;
        let (base_sha, preview) = Self::check_result(&t, &mut report, &mut pre)?;
        Self::check_untracked_clash(&t, req, &base_sha, &preview, &mut pre)?;
        Self::check_tests(&t, req, &mut report, &mut pre)?;
        report.notes.extend(warnings);
        report.checks = std::mem::take(&mut pre.checks);

        if req.dry_run {
            report.would_merge = pre.failure.is_none();
            if let Some(tree) = &preview.tree {
                let n = t.repo.changed_paths(&base_sha, tree)?.len();
                report.notes.push(format!("{n} file(s) would change on {}", t.base));
            }
            self.record_merge(&t.s, &report, MergeResult::DryRun, req.message.as_deref())?;
            return Ok(report);
        }
        if let Some(err) = pre.failure {
            let result =
                if report.conflicts.is_empty() { MergeResult::Refused } else { MergeResult::Conflicts };
            self.record_merge(&t.s, &report, result, req.message.as_deref())?;
            return Err(err);
        }
        if req.pr {
            return self.open_pull_request(&t.s, &t.repo, report, req);
        }

        let repo_root = PathBuf::from(&t.s.repo_path);
        let _lock = RepoLock::acquire(&self.paths.locks, &repo_root, crate::sessions::LOCK_TIMEOUT)?;
        t.ensure_unmoved(&base_sha)?;
        let snapshot =
            self.take_snapshot(&t.s, &format!("merge --strategy {} into {}", req.strategy.as_str(), t.base))?;
        report.snapshot = Some(snapshot);
        let result = self.build_result(&t, req, &base_sha, &preview, &mut report)?;
        crate::process::fault_point("merge:before-base-update");
        self.land_result(&t, req, &base_sha, &result, &mut report)?;
        let merge_id = self.record_merged(&t, req, &result, &mut report)?;
        if req.push {
            self.push_merged(&t, &merge_id, &mut report)?;
        }
        Ok(report)
    }

    /// The session to merge and what the phases share; refuses a session with a rebase or merge stopped in
    /// its worktree, or whose base is not a local branch.
    fn merge_target(&self, reference: &str) -> Result<MergeTarget, EngineError> {
        let s = self.live_session(reference)?;
        self.ensure_not_running(&s)?;
        let wt = self.session_worktree(&s)?;
        let repo = Git::new(&s.repo_path);
        let short = s.id.short().to_string();
        let base = s.base_branch.clone();
        if wt.rebase_in_progress()? || wt.merge_in_progress()? {
            let err =
                ReviewError::RebaseInProgress { session: label(&s), short_id: short, operation: "merging" };
            return Err(err.into());
        }
        let head = wt.require_commit("HEAD")?;
        if !repo.branch_exists(&base)? {
            return Err(ReviewError::BaseNotBranch { session: label(&s), short_id: short, base }.into());
        }
        let checkout = repo
            .worktree_list()?
            .into_iter()
            .find(|w| !w.bare && w.branch.as_deref() == Some(base.as_str()))
            .map(|w| w.path);
        let base_ref = format!("refs/heads/{base}");
        Ok(MergeTarget { s, wt, repo, short, base, base_ref, head, checkout })
    }

    /// The session worktree has no uncommitted or untracked files.
    fn check_session_clean(t: &MergeTarget, pre: &mut Preflight) -> Result<(), EngineError> {
        let st = t.wt.status()?;
        if st.is_clean() {
            pre.pass("session clean", "no uncommitted or untracked files");
        } else {
            let detail = st.summary(5);
            let err = ReviewError::SessionDirty {
                session: label(&t.s),
                short_id: t.short.clone(),
                detail: detail.clone(),
                operation: "merging",
            };
            pre.fail("session clean", detail, err.into());
        }
        Ok(())
    }

    /// The checkout that has the base checked out (if any) has no uncommitted changes and no rebase or
    /// merge stopped in it (not needed for a pull request).
    fn check_base_checkout(
        t: &MergeTarget,
        req: &MergeRequest,
        pre: &mut Preflight,
    ) -> Result<(), EngineError> {
        let base = &t.base;
        match &t.checkout {
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
                    let err = t.base_checkout_dirty(path, detail);
                    let what =
                        format!("{base} is checked out in {} with uncommitted changes", path.display());
                    pre.fail("base checkout clean", what, err);
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
        Ok(())
    }

    /// The base is not behind its remote (fetched first, when it has one). Returns the fetch's warnings.
    fn check_base_up_to_date(
        &self,
        t: &MergeTarget,
        pre: &mut Preflight,
    ) -> Result<Vec<String>, EngineError> {
        let base = &t.base;
        let mut warnings = Vec::new();
        match self.fetch_for(&t.repo, base, &mut warnings) {
            Ok(Some(remote)) => {
                let up = t.repo.upstream_of(base)?.unwrap_or_else(|| format!("{remote}/{base}"));
                let behind = t.repo.count_commits(&format!("{base}..{up}"))?;
                if behind > 0 {
                    let what = format!("{base} is {behind} commit(s) behind {up}");
                    let err = ReviewError::BaseBehindRemote {
                        session: label(&t.s),
                        short_id: t.short.clone(),
                        branch: base.clone(),
                        upstream: up,
                        behind,
                    };
                    pre.fail("base up to date", what, err.into());
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
        Ok(warnings)
    }

    /// What the merge would give: refuses a session with nothing to merge; records the commits it lands and
    /// whether `git merge-tree` finds conflicts. Returns the base commit and the preview.
    fn check_result(
        t: &MergeTarget,
        report: &mut MergeReport,
        pre: &mut Preflight,
    ) -> Result<(String, MergePreview), EngineError> {
        let base_sha = t.repo.require_commit(&t.base_ref)?;
        report.base_before = Some(base_sha.clone());
        if t.repo.is_ancestor(&t.head, &base_sha)? {
            let err = ReviewError::NothingToMerge {
                session: label(&t.s),
                branch: t.s.branch.clone(),
                base: t.base.clone(),
            };
            return Err(err.into());
        }
        report.commits_landed = t.repo.count_commits(&format!("{base_sha}..{}", t.head))?;
        let preview = t.repo.merge_tree(&base_sha, &t.head)?;
        if preview.clean {
            pre.pass(
                "no conflicts",
                format!("git merge-tree: {} merges cleanly into {}", t.s.branch, t.base),
            );
        } else {
            report.conflicts = preview.conflicts.clone();
            let err = ReviewError::MergeConflicts {
                session: label(&t.s),
                short_id: t.short.clone(),
                base: t.base.clone(),
                files: preview.conflicts.clone(),
            };
            pre.fail("no conflicts", format!("conflicts in {}", preview.conflicts.join(", ")), err.into());
        }
        Ok((base_sha, preview))
    }

    /// No untracked file in the base checkout would be overwritten by the merge.
    fn check_untracked_clash(
        t: &MergeTarget,
        req: &MergeRequest,
        base_sha: &str,
        preview: &MergePreview,
        pre: &mut Preflight,
    ) -> Result<(), EngineError> {
        let (Some(path), Some(tree), false) = (&t.checkout, &preview.tree, req.pr) else { return Ok(()) };
        let untracked: Vec<String> = Git::new(path)
            .status()?
            .entries
            .into_iter()
            .filter(|e| e.kind == ampsm_git::EntryKind::Untracked)
            .map(|e| e.path)
            .collect();
        if untracked.is_empty() {
            return Ok(());
        }
        let clash: Vec<String> =
            t.repo.changed_paths(base_sha, tree)?.into_iter().filter(|p| untracked.contains(p)).collect();
        if !clash.is_empty() {
            let detail = format!("untracked {} would be overwritten", clash.join(", "));
            pre.fail("base checkout clean", detail.clone(), t.base_checkout_dirty(path, detail));
        }
        Ok(())
    }

    /// The session's test script passes (not run in a dry run, nor when a check already failed).
    fn check_tests(
        t: &MergeTarget,
        req: &MergeRequest,
        report: &mut MergeReport,
        pre: &mut Preflight,
    ) -> Result<(), EngineError> {
        match t.s.script.as_deref().filter(|sc| !sc.trim().is_empty()) {
            None => pre.pass("tests pass", "the session has no test script"),
            Some(script) if req.dry_run => pre.pass("tests pass", format!("not run in a dry run ({script})")),
            Some(_) if pre.failure.is_some() => {}
            Some(script) => {
                let timeout = req.script_timeout.unwrap_or(SCRIPT_TIMEOUT);
                let stop = || req.interrupt.as_ref().is_some_and(crate::Interrupt::interrupted);
                let _busy = req.interrupt.as_ref().map(crate::Interrupt::busy);
                let worktree = PathBuf::from(&t.s.worktree_path);
                let run = run_script_with(&worktree, script, timeout, &stop, None, &mut |_| {}).map_err(
                    |source| ReviewError::ScriptSpawn {
                        session: label(&t.s),
                        script: script.to_string(),
                        source,
                    },
                )?;
                if run.passed() {
                    pre.pass("tests pass", format!("{script}: passed in {} ms", run.duration_ms));
                } else {
                    let err = ReviewError::TestsFailed {
                        session: label(&t.s),
                        outcome: run.outcome(),
                        tail: run.short_tail(),
                    };
                    pre.fail("tests pass", format!("{script}: {}", run.outcome()), err.into());
                }
                report.script = Some(run);
            }
        }
        Ok(())
    }

    /// The result commit, built without touching any checkout: squash and merge with `commit-tree` on the
    /// previewed tree; rebase by replaying the session's commits onto the base in its own worktree (a
    /// conflict aborts the replay, is recorded and refused).
    fn build_result(
        &mut self,
        t: &MergeTarget,
        req: &MergeRequest,
        base_sha: &str,
        preview: &MergePreview,
        report: &mut MergeReport,
    ) -> Result<String, EngineError> {
        let (s, repo, base) = (&t.s, &t.repo, &t.base);
        let trailer = format!("Session: {}", s.id);
        match req.strategy {
            MergeStrategy::Squash | MergeStrategy::Merge => {
                let tree = preview
                    .tree
                    .clone()
                    .ok_or_else(|| EngineError::Invalid("merge-tree gave no tree".into()))?;
                if tree == repo.tree_of(base_sha)? {
                    let err = ReviewError::NothingToMerge {
                        session: label(s),
                        branch: s.branch.clone(),
                        base: base.clone(),
                    };
                    return Err(err.into());
                }
                let (message, parents) = if req.strategy == MergeStrategy::Squash {
                    let m = self.squash_merge_message(
                        repo,
                        s,
                        base_sha,
                        &t.head,
                        req.message.as_deref(),
                        &trailer,
                    )?;
                    (m, vec![base_sha])
                } else {
                    let m = req
                        .message
                        .clone()
                        .unwrap_or_else(|| format!("Merge session {} ({}) into {base}", s.name, s.branch));
                    (format!("{}\n\n{trailer}", m.trim_end()), vec![base_sha, t.head.as_str()])
                };
                Ok(repo.commit_tree(&tree, &parents, &message)?)
            }
            MergeStrategy::Rebase => {
                if repo.is_ancestor(base_sha, &t.head)? {
                    return Ok(t.head.clone());
                }
                match t.wt.rebase(base_sha)? {
                    RebaseOutcome::Done => Ok(t.wt.require_commit("HEAD")?),
                    RebaseOutcome::Conflicts(files) => {
                        t.wt.rebase_abort()?;
                        report.conflicts = files.clone();
                        self.record_merge(s, report, MergeResult::Conflicts, req.message.as_deref())?;
                        let err = ReviewError::ReplayConflicts {
                            session: label(s),
                            short_id: t.short.clone(),
                            base: base.clone(),
                            files,
                        };
                        Err(err.into())
                    }
                }
            }
        }
    }

    /// Moves the base to `result`, only if it still points at `base_sha`: a fast-forward in the checkout
    /// that has it (only when clean), else a compare-and-swap of its ref.
    fn land_result(
        &mut self,
        t: &MergeTarget,
        req: &MergeRequest,
        base_sha: &str,
        result: &str,
        report: &mut MergeReport,
    ) -> Result<(), EngineError> {
        let (s, base) = (&t.s, &t.base);
        let moved =
            || ReviewError::Moved { session: label(s), what: format!("branch {base}"), base: base.clone() };
        match &t.checkout {
            Some(path) => {
                let co = Git::new(path);
                if co.resolve_commit("HEAD")?.as_deref() != Some(base_sha) {
                    return Err(moved().into());
                }
                if let Err(e) = co.merge_ff_only(result) {
                    self.record_merge(s, report, MergeResult::Failed, req.message.as_deref())?;
                    return Err(match e {
                        ampsm_git::GitError::Dirty { detail, .. } => t.base_checkout_dirty(path, detail),
                        other => other.into(),
                    });
                }
                report.base_update = Some(format!("fast-forward in {}", path.display()));
            }
            None => {
                t.repo.update_ref(&t.base_ref, result, Some(base_sha)).map_err(|_| moved())?;
                report.base_update = Some("ref updated (not checked out)".into());
            }
        }
        report.base_after = Some(result.to_string());
        Ok(())
    }

    /// After the base moved: the session branch follows the result (its old head stays in the snapshot),
    /// the commit and the merge are recorded and the session is `done`. Returns the merge's id.
    fn record_merged(
        &mut self,
        t: &MergeTarget,
        req: &MergeRequest,
        result: &str,
        report: &mut MergeReport,
    ) -> Result<String, EngineError> {
        let s = &t.s;
        if t.wt.require_commit("HEAD")? != result {
            t.wt.reset_hard(result)?;
        }
        let subject = t.repo.run(&["show", "-s", "--format=%s", result])?.trim().to_string();
        self.record_commit(s, result, req.strategy.as_str(), &subject)?;
        if s.status != SessionStatus::Done {
            self.store.set_status(&s.id, SessionStatus::Done, Some(&format!("merged into {}", t.base)))?;
        }
        let merge_id = self.record_merge(s, report, MergeResult::Merged, req.message.as_deref())?;
        report.merge_id = Some(merge_id.clone());
        Ok(merge_id)
    }

    /// `--push`: pushes the base branch to its remote (at most 5 minutes).
    fn push_merged(
        &mut self,
        t: &MergeTarget,
        merge_id: &str,
        report: &mut MergeReport,
    ) -> Result<(), EngineError> {
        let remote = self.push_remote(&t.repo, &t.base)?;
        match t.repo.clone().with_timeout(Duration::from_secs(300)).push(&remote, &t.base) {
            Ok(()) => {
                self.store.mark_merge_pushed(merge_id)?;
                report.pushed = Some(remote);
                Ok(())
            }
            Err(e) => Err(ReviewError::PushFailed {
                session: label(&t.s),
                base: t.base.clone(),
                remote,
                reason: e.to_string(),
            }
            .into()),
        }
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

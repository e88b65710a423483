//! Reviewing a session's work in its worktree: `status`, `diff`, `log`, `stage`/`unstage`, `commit`,
//! `rollback`, `squash` (all commits, or only the agent's), `rebase` with `--continue`/`--abort`, `undo`
//! (including bringing back a session removed with `rm --force`) and `export-patch`.
//! The hunks of a rebase or merge stopped on conflicts are read by [`conflicts`].
//!
//! Every step that rewrites the session branch or drops files (rollback, squash, rebase, undo) first saves a
//! snapshot with [`Engine::take_snapshot`]; none of them ever touches the repository's main checkout.

pub mod conflicts;
pub mod error;
pub mod merge;

use crate::review::error::ReviewError;
use crate::{Engine, EngineError};
use ampsm_core::{RebaseResult, SessionStatus};
use ampsm_git::{CommitInfo, FileStat, Git, RebaseOutcome, RepoLock, StatusEntry};
use ampsm_store::{Session, SnapshotRecord};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Snapshots taken by `undo` itself start with this reason; `undo` skips them when choosing what to restore
/// (so repeated `undo` keeps stepping back), but `undo --snapshot N` can restore them.
pub const UNDO_SAFETY_REASON: &str = "before undo";

/// `name (short id)`, the way messages name a session.
pub(crate) fn label(s: &Session) -> String {
    format!("{} ({})", s.name, s.id.short())
}

/// What `status` reports.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewStatus {
    pub session_id: String,
    pub name: String,
    pub branch: String,
    pub base: String,
    pub worktree: String,
    pub head: Option<String>,
    /// Commits on the session branch that are not on the base.
    pub ahead: u64,
    /// Commits on the base that the session branch does not have (a rebase would bring them in).
    pub behind: u64,
    pub rebase_in_progress: bool,
    pub conflicts: Vec<String>,
    pub staged: Vec<StatusEntry>,
    pub unstaged: Vec<StatusEntry>,
    pub untracked: Vec<String>,
    pub clean: bool,
}

/// What `diff` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DiffMode {
    #[default]
    Patch,
    Stat,
    NameOnly,
}

/// A `diff` request.
#[derive(Debug, Clone, Default)]
pub struct DiffRequest {
    pub mode: DiffMode,
    /// Only what is not committed yet (HEAD against the working tree), instead of the branch against its base.
    pub uncommitted: bool,
    /// Limit to these paths (taken literally).
    pub paths: Vec<String>,
}

/// What `diff` found.
#[derive(Debug, Clone, Serialize)]
pub struct DiffReport {
    /// The commit compared from (the fork point with the base, or HEAD with --uncommitted).
    pub from: String,
    /// `HEAD` or `working tree`.
    pub to: String,
    pub files: Vec<FileStat>,
    /// New files git does not track yet (only with --uncommitted; not part of `patch`).
    pub untracked: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    /// How many paths have uncommitted changes that a branch diff does not show.
    pub uncommitted_not_shown: usize,
}

/// One commit of `log`.
#[derive(Debug, Clone, Serialize)]
pub struct LogEntry {
    #[serde(flatten)]
    pub commit: CommitInfo,
    /// The subject starts with `git.commit_prefix`.
    pub agent: bool,
}

/// What `commit` made.
#[derive(Debug, Clone, Serialize)]
pub struct CommitReport {
    pub sha: String,
    pub subject: String,
    pub files: Vec<FileStat>,
}

/// What `rollback` did.
#[derive(Debug, Clone, Serialize)]
pub struct RollbackReport {
    pub snapshot: SnapshotRecord,
    pub before: String,
    pub head: String,
}

/// What `squash` did.
#[derive(Debug, Clone, Serialize)]
pub struct SquashReport {
    pub snapshot: SnapshotRecord,
    pub before: String,
    pub head: String,
    /// Commits replaced.
    pub squashed: usize,
    /// Commits left as they were (--agent-only keeps non-agent commits).
    pub kept: usize,
    /// Commits the branch has now since the base.
    pub commits_now: usize,
}

/// How a `rebase` (or `--continue`) ended.
#[derive(Debug, Clone, Serialize)]
pub struct RebaseReport {
    pub onto: String,
    pub onto_commit: Option<String>,
    /// The remote fetched first, if any.
    pub fetched: Option<String>,
    /// How it ended.
    pub outcome: RebaseResult,
    pub conflicts: Vec<String>,
    pub head: Option<String>,
    pub snapshot: Option<SnapshotRecord>,
    /// The commands to run next.
    pub next_steps: Vec<String>,
    pub warnings: Vec<String>,
}

/// What `undo` restored.
#[derive(Debug, Clone, Serialize)]
pub struct UndoReport {
    pub restored: SnapshotRecord,
    /// The state just before the undo, saved so it can be restored with `undo --snapshot N`.
    pub saved_current: Option<SnapshotRecord>,
    /// True when the worktree (and branch) had to be recreated because the session was removed.
    pub recreated: bool,
    pub worktree: String,
    pub head: String,
}

/// What `export-patch` produced.
#[derive(Debug, Clone, Serialize)]
pub struct PatchExport {
    pub base: String,
    pub head: String,
    pub commits: usize,
    pub files: Vec<FileStat>,
    /// Paths with uncommitted changes, which the patch does not include.
    pub uncommitted_not_included: Vec<String>,
    #[serde(skip)]
    pub text: String,
}

impl Engine {
    /// A live session by id, prefix or name.
    pub(crate) fn live_session(&self, reference: &str) -> Result<Session, EngineError> {
        Ok(self.store.resolve_session(reference, false)?)
    }

    /// The session's worktree, which must exist.
    pub(crate) fn session_worktree(&self, s: &Session) -> Result<Git, EngineError> {
        let path = PathBuf::from(&s.worktree_path);
        if !path.join(".git").exists() {
            return Err(ReviewError::WorktreeMissing {
                session: label(s),
                short_id: s.id.short().to_string(),
                path,
            }
            .into());
        }
        Ok(Git::new(path))
    }

    /// The revision the session is compared with: its base branch, else the commit it started from.
    pub(crate) fn base_rev(&self, repo: &Git, s: &Session) -> Result<String, EngineError> {
        if !s.base_branch.starts_with('-') && repo.resolve_commit(&s.base_branch)?.is_some() {
            return Ok(s.base_branch.clone());
        }
        if repo.resolve_commit(&s.base_commit)?.is_some() {
            return Ok(s.base_commit.clone());
        }
        Err(ReviewError::BaseMissing { session: label(s), base: s.base_branch.clone() }.into())
    }

    /// Refuses while an agent process works in the session.
    pub(crate) fn ensure_not_running(&self, s: &Session) -> Result<(), EngineError> {
        if s.status == SessionStatus::Running
            && let Some(pid) = s.runner_pid.filter(|p| crate::process::pid_alive(*p))
        {
            return Err(EngineError::Running { session: label(s), pid });
        }
        Ok(())
    }

    /// Refuses while a rebase or merge is stopped in the worktree.
    fn ensure_no_rebase(&self, s: &Session, wt: &Git, operation: &'static str) -> Result<(), EngineError> {
        if wt.rebase_in_progress()? || wt.merge_in_progress()? {
            return Err(ReviewError::RebaseInProgress {
                session: label(s),
                short_id: s.id.short().to_string(),
                operation,
            }
            .into());
        }
        Ok(())
    }

    /// The session and its worktree for an operation that rewrites its history (rollback, squash,
    /// rebase): refused while an agent runs in it or a rebase or merge is stopped there.
    fn session_for_rewrite(
        &self,
        reference: &str,
        operation: &'static str,
    ) -> Result<(Session, Git), EngineError> {
        let s = self.live_session(reference)?;
        self.ensure_not_running(&s)?;
        let wt = self.session_worktree(&s)?;
        self.ensure_no_rebase(&s, &wt, operation)?;
        Ok((s, wt))
    }

    /// Records a commit made by amp-sessions in the `commits` table (ignored when already there).
    pub(crate) fn record_commit(
        &mut self,
        s: &Session,
        sha: &str,
        kind: &str,
        subject: &str,
    ) -> Result<(), EngineError> {
        self.store.insert_commit(&s.id, sha, None, kind, subject)?;
        Ok(())
    }

    /// `status <s>`.
    pub fn review_status(&self, reference: &str) -> Result<ReviewStatus, EngineError> {
        let s = self.live_session(reference)?;
        let wt = self.session_worktree(&s)?;
        let repo = Git::new(&s.repo_path);
        let base = self.base_rev(&repo, &s)?;
        let st = wt.status()?;
        let head = st.head.clone();
        let (ahead, behind) = match &head {
            Some(h) => {
                (wt.count_commits(&format!("{base}..{h}"))?, wt.count_commits(&format!("{h}..{base}"))?)
            }
            None => (0, 0),
        };
        let mut staged = Vec::new();
        let mut unstaged = Vec::new();
        let mut untracked = Vec::new();
        for e in &st.entries {
            match e.kind {
                ampsm_git::EntryKind::Untracked => untracked.push(e.path.clone()),
                ampsm_git::EntryKind::Ignored => {}
                ampsm_git::EntryKind::Unmerged => unstaged.push(e.clone()),
                _ => {
                    if e.is_staged() {
                        staged.push(e.clone());
                    }
                    if e.is_unstaged() {
                        unstaged.push(e.clone());
                    }
                }
            }
        }
        Ok(ReviewStatus {
            session_id: s.id.to_string(),
            name: s.name.clone(),
            branch: s.branch.clone(),
            base,
            worktree: s.worktree_path.clone(),
            head,
            ahead,
            behind,
            rebase_in_progress: wt.rebase_in_progress()?,
            conflicts: st.conflicts().into_iter().map(str::to_string).collect(),
            clean: st.is_clean(),
            staged,
            unstaged,
            untracked,
        })
    }

    /// `diff <s>`: the branch against the point where it left its base, or with `uncommitted` the changes not
    /// committed yet.
    pub fn review_diff(&self, reference: &str, req: &DiffRequest) -> Result<DiffReport, EngineError> {
        let s = self.live_session(reference)?;
        let wt = self.session_worktree(&s)?;
        let repo = Git::new(&s.repo_path);
        let base = self.base_rev(&repo, &s)?;
        let head = wt.require_commit("HEAD")?;
        let st = wt.status()?;
        let pathspecs: Vec<String> = req.paths.iter().map(|p| format!(":(literal){p}")).collect();
        let (from, to) = if req.uncommitted {
            (head.clone(), None)
        } else {
            let fork = wt.merge_base(&base, &head)?.unwrap_or_else(|| base.clone());
            (fork, Some(head.clone()))
        };
        let mut range: Vec<String> = vec![from.clone()];
        range.extend(to.clone());
        let files = numstat(&wt, &range, &pathspecs)?;
        let untracked: Vec<String> = if req.uncommitted {
            st.entries
                .iter()
                .filter(|e| e.kind == ampsm_git::EntryKind::Untracked)
                .filter(|e| req.paths.is_empty() || req.paths.iter().any(|p| path_matches(&e.path, p)))
                .map(|e| e.path.clone())
                .collect()
        } else {
            Vec::new()
        };
        let patch = if req.mode == DiffMode::Patch {
            let mut args: Vec<&str> = vec!["--binary"];
            args.extend(range.iter().map(String::as_str));
            args.push("--");
            args.extend(pathspecs.iter().map(String::as_str));
            Some(wt.diff_text(&args)?)
        } else {
            None
        };
        let uncommitted_not_shown = if req.uncommitted {
            0
        } else {
            st.entries.iter().filter(|e| e.kind != ampsm_git::EntryKind::Ignored).count()
        };
        Ok(DiffReport {
            from,
            to: if req.uncommitted { "working tree".into() } else { "HEAD".into() },
            files,
            untracked,
            patch,
            uncommitted_not_shown,
        })
    }

    /// `log <s>`: the session's commits since its base, oldest first.
    pub fn review_log(&self, reference: &str) -> Result<Vec<LogEntry>, EngineError> {
        let s = self.live_session(reference)?;
        let wt = self.session_worktree(&s)?;
        let repo = Git::new(&s.repo_path);
        let base = self.base_rev(&repo, &s)?;
        let prefix = self.config.git.commit_prefix.clone();
        Ok(wt
            .commits_between(&base, "HEAD")?
            .into_iter()
            .map(|c| LogEntry { agent: is_agent_subject(&c.subject, &prefix), commit: c })
            .collect())
    }

    /// `stage <s> PATH…|--all`.
    pub fn review_stage(
        &self,
        reference: &str,
        paths: &[String],
        all: bool,
    ) -> Result<ReviewStatus, EngineError> {
        self.change_index(reference, paths, all, true)
    }

    /// `unstage <s> PATH…|--all` (files keep their content).
    pub fn review_unstage(
        &self,
        reference: &str,
        paths: &[String],
        all: bool,
    ) -> Result<ReviewStatus, EngineError> {
        self.change_index(reference, paths, all, false)
    }

    /// Stages (`stage`) or unstages the named paths, or every changed path with `all`.
    fn change_index(
        &self,
        reference: &str,
        paths: &[String],
        all: bool,
        stage: bool,
    ) -> Result<ReviewStatus, EngineError> {
        let s = self.live_session(reference)?;
        let wt = self.session_worktree(&s)?;
        check_paths_or_all(paths, all)?;
        match (stage, all) {
            (true, true) => wt.stage_all()?,
            (true, false) => wt.stage(paths)?,
            (false, true) => wt.unstage_all()?,
            (false, false) => wt.unstage(paths)?,
        }
        self.review_status(s.id.as_str())
    }

    /// `commit <s> -m MSG`: commits what is staged, with a `Session:` trailer.
    pub fn review_commit(&mut self, reference: &str, message: &str) -> Result<CommitReport, EngineError> {
        let s = self.live_session(reference)?;
        self.ensure_not_running(&s)?;
        let wt = self.session_worktree(&s)?;
        if message.trim().is_empty() {
            return Err(ReviewError::BadRequest { reason: "the commit message is empty".into() }.into());
        }
        let id = s.id.to_string();
        let sha = wt.commit(message, &[("Session", id.as_str())], false)?.ok_or_else(|| {
            ReviewError::NothingStaged { session: label(&s), short_id: s.id.short().to_string() }
        })?;
        let subject = message.lines().next().unwrap_or("").to_string();
        let kind =
            if is_agent_subject(&subject, &self.config.git.commit_prefix) { "agent" } else { "manual" };
        self.record_commit(&s, &sha, kind, &subject)?;
        let parent = format!("{sha}^");
        let files = if wt.resolve_commit(&parent)?.is_some() {
            wt.diff_numstat(&parent, Some(&sha))?
        } else {
            vec![]
        };
        Ok(CommitReport { sha, subject, files })
    }

    /// `rollback <s> [--to REF]`: snapshot, then put the worktree back to REF (default: the last commit),
    /// dropping uncommitted changes and untracked files. `undo` brings everything back.
    pub fn review_rollback(
        &mut self,
        reference: &str,
        to: Option<&str>,
    ) -> Result<RollbackReport, EngineError> {
        let (s, wt) = self.session_for_rewrite(reference, "a rollback")?;
        let target_name = to.unwrap_or("HEAD");
        let target = wt.require_commit(target_name)?;
        let before = wt.require_commit("HEAD")?;
        let snapshot = self.take_snapshot(&s, &format!("rollback to {target_name}"))?;
        wt.reset_hard(&target)?;
        wt.run(&["clean", "-f", "-d", "--quiet"])?;
        Ok(RollbackReport { snapshot, before, head: target })
    }

    /// `squash <s> [-m MSG] [--agent-only]`.
    ///
    /// Without `agent_only`, every commit since the branch left its base becomes one commit (message `MSG`, or
    /// the single commit's message, or a list of the subjects). With `agent_only`, each run of consecutive agent
    /// commits (subject starting with `git.commit_prefix`) becomes one commit and every other commit is kept as
    /// it is, in order; since a run's result has exactly the tree of its last commit, this can never conflict.
    /// The commits are built with `commit-tree` and the branch is moved with a compare-and-swap; the worktree's
    /// files and index are left as they are (staged and unstaged changes stay uncommitted).
    pub fn review_squash(
        &mut self,
        reference: &str,
        message: Option<&str>,
        agent_only: bool,
    ) -> Result<SquashReport, EngineError> {
        let (s, wt) = self.session_for_rewrite(reference, "a squash")?;
        let repo = Git::new(&s.repo_path);
        let base = self.base_rev(&repo, &s)?;
        let head = wt.require_commit("HEAD")?;
        let fork = wt.merge_base(&base, &head)?.ok_or_else(|| ReviewError::NothingToSquash {
            session: label(&s),
            detail: format!(": it shares no history with {base}"),
        })?;
        let commits = wt.commits_between(&fork, &head)?;
        let prefix = self.config.git.commit_prefix.clone();
        let id = s.id.to_string();
        let trailer = format!("Session: {id}");
        // Groups of commits: (commits, fold them?).
        let groups: Vec<(Vec<CommitInfo>, bool)> = if agent_only {
            let linear = commits.iter().enumerate().all(|(i, c)| {
                c.parents.len() == 1
                    && c.parents[0] == if i == 0 { fork.clone() } else { commits[i - 1].sha.clone() }
            });
            if !linear {
                return Err(ReviewError::NonLinearHistory {
                    session: label(&s),
                    short_id: s.id.short().to_string(),
                    base,
                }
                .into());
            }
            let mut groups: Vec<(Vec<CommitInfo>, bool)> = Vec::new();
            for c in commits.iter().cloned() {
                let agent = is_agent_subject(&c.subject, &prefix);
                match groups.last_mut() {
                    Some((run, true)) if agent => run.push(c),
                    _ => groups.push((vec![c], agent)),
                }
            }
            groups
                .into_iter()
                .map(|(run, agent)| {
                    let fold = agent && run.len() > 1;
                    (run, fold)
                })
                .collect()
        } else {
            vec![(commits.clone(), commits.len() > 1)]
        };
        let squashed: usize = groups.iter().filter(|(_, fold)| *fold).map(|(run, _)| run.len()).sum();
        if squashed == 0 {
            let detail = if commits.is_empty() {
                format!(": it has no commits since {base}")
            } else if agent_only {
                format!(": no two agent commits (subject starting with {prefix:?}) follow each other")
            } else {
                ": it has a single commit".to_string()
            };
            return Err(ReviewError::NothingToSquash { session: label(&s), detail }.into());
        }
        let snapshot = self.take_snapshot(&s, if agent_only { "squash --agent-only" } else { "squash" })?;
        let mut parent = fork.clone();
        let mut new_count = 0;
        for (run, fold) in &groups {
            let Some(last) = run.last() else { continue };
            let text = if *fold {
                squash_message(message, run, &prefix, agent_only, &trailer)
            } else {
                full_message(&wt, &last.sha)?
            };
            let tree = wt.tree_of(&last.sha)?;
            parent = wt.commit_tree(&tree, &[parent.as_str()], &text)?;
            new_count += 1;
            if *fold {
                let subject = text.lines().next().unwrap_or("").to_string();
                self.record_commit(&s, &parent, "squash", &subject)?;
            }
        }
        wt.update_ref(&format!("refs/heads/{}", s.branch), &parent, Some(&head))?;
        Ok(SquashReport {
            snapshot,
            before: head,
            head: parent,
            squashed,
            kept: commits.len() - squashed,
            commits_now: new_count,
        })
    }

    /// `rebase <s> [--onto BRANCH]`: fetches first when the target is a remote-tracking branch or has an
    /// upstream, snapshots, and replays the session's commits onto the target. On conflicts the rebase stays in
    /// progress and the report lists the files and the commands to run next. With `onto`, the session's base
    /// becomes that branch.
    pub fn review_rebase(
        &mut self,
        reference: &str,
        onto: Option<&str>,
    ) -> Result<RebaseReport, EngineError> {
        let (s, wt) = self.session_for_rewrite(reference, "another rebase")?;
        let st = wt.status()?;
        if st.has_uncommitted() {
            return Err(ReviewError::SessionDirty {
                session: label(&s),
                short_id: s.id.short().to_string(),
                detail: st.summary(5),
                operation: "a rebase",
            }
            .into());
        }
        let repo = Git::new(&s.repo_path);
        let target = match onto {
            Some(t) => t.trim().to_string(),
            None => self.base_rev(&repo, &s)?,
        };
        let mut warnings = Vec::new();
        let fetched = self.fetch_for(&repo, &target, &mut warnings)?;
        let onto_commit = repo.require_commit(&target)?;
        let head = wt.require_commit("HEAD")?;
        if onto.is_some() {
            self.set_base(&s, &target, &onto_commit)?;
        }
        let short = s.id.short().to_string();
        if wt.is_ancestor(&onto_commit, &head)? {
            return Ok(RebaseReport {
                onto: target,
                onto_commit: Some(onto_commit),
                fetched,
                outcome: RebaseResult::UpToDate,
                conflicts: vec![],
                head: Some(head),
                snapshot: None,
                next_steps: vec![format!("amp-sessions merge {short}")],
                warnings,
            });
        }
        let snapshot = self.take_snapshot(&s, &format!("rebase onto {target}"))?;
        let outcome = wt.rebase(&onto_commit)?;
        self.rebase_report(&s, &wt, target, Some(onto_commit), fetched, outcome, Some(snapshot), warnings)
    }

    /// `rebase <s> --continue`: stages the conflicted files once no conflict markers are left in them, then
    /// continues (never opening an editor; commit messages are kept).
    pub fn review_rebase_continue(&mut self, reference: &str) -> Result<RebaseReport, EngineError> {
        let s = self.live_session(reference)?;
        let wt = self.session_worktree(&s)?;
        if !wt.rebase_in_progress()? {
            return Err(ReviewError::NoRebaseInProgress {
                session: label(&s),
                short_id: s.id.short().to_string(),
            }
            .into());
        }
        let st = wt.status()?;
        let conflicted: Vec<String> = st.conflicts().into_iter().map(str::to_string).collect();
        let worktree = PathBuf::from(&s.worktree_path);
        let still: Vec<String> =
            conflicted.iter().filter(|f| has_conflict_markers(&worktree.join(f))).cloned().collect();
        if !still.is_empty() {
            return Err(ReviewError::UnresolvedConflicts {
                session: label(&s),
                short_id: s.id.short().to_string(),
                files: still,
            }
            .into());
        }
        if !conflicted.is_empty() {
            wt.stage(&conflicted)?;
        }
        let onto = rebase_onto(&wt).unwrap_or_else(|| s.base_branch.clone());
        let outcome = wt.rebase_continue()?;
        self.rebase_report(&s, &wt, s.base_branch.clone(), Some(onto), None, outcome, None, vec![])
    }

    /// `rebase <s> --abort`: puts the branch back where it was before the rebase.
    pub fn review_rebase_abort(&mut self, reference: &str) -> Result<RebaseReport, EngineError> {
        let s = self.live_session(reference)?;
        let wt = self.session_worktree(&s)?;
        if !wt.rebase_in_progress()? {
            return Err(ReviewError::NoRebaseInProgress {
                session: label(&s),
                short_id: s.id.short().to_string(),
            }
            .into());
        }
        wt.rebase_abort()?;
        Ok(RebaseReport {
            onto: s.base_branch.clone(),
            onto_commit: None,
            fetched: None,
            outcome: RebaseResult::Aborted,
            conflicts: vec![],
            head: wt.resolve_commit("HEAD")?,
            snapshot: None,
            next_steps: vec![],
            warnings: vec![],
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn rebase_report(
        &mut self,
        s: &Session,
        wt: &Git,
        onto: String,
        onto_commit: Option<String>,
        fetched: Option<String>,
        outcome: RebaseOutcome,
        snapshot: Option<SnapshotRecord>,
        warnings: Vec<String>,
    ) -> Result<RebaseReport, EngineError> {
        let short = s.id.short().to_string();
        let (outcome, conflicts, next_steps) = match outcome {
            RebaseOutcome::Done => {
                let head = wt.require_commit("HEAD")?;
                if let Some(c) = &onto_commit {
                    self.set_base_commit(s, c)?;
                }
                self.record_commit(s, &head, "rebase", &format!("rebased onto {onto}"))?;
                (RebaseResult::Done, vec![], vec![format!("amp-sessions merge {short}")])
            }
            RebaseOutcome::Conflicts(files) => {
                self.notify_conflict(s, &files);
                let steps = vec![
                    format!("edit the conflicted files in {}", s.worktree_path),
                    format!("amp-sessions rebase {short} --continue"),
                    format!("amp-sessions rebase {short} --abort   (to give up and restore the branch)"),
                ];
                (RebaseResult::Conflicts, files, steps)
            }
        };
        Ok(RebaseReport {
            onto,
            onto_commit,
            fetched,
            outcome,
            conflicts,
            head: wt.resolve_commit("HEAD")?,
            snapshot,
            next_steps,
            warnings,
        })
    }

    /// Fetches the remote behind `target` when there is one: `target` itself is `remote/branch`, or a local
    /// branch with an upstream. Returns the remote fetched. A local branch behind its upstream gets a warning.
    pub(crate) fn fetch_for(
        &self,
        repo: &Git,
        target: &str,
        warnings: &mut Vec<String>,
    ) -> Result<Option<String>, EngineError> {
        let remotes = repo.remotes()?;
        if remotes.is_empty() {
            return Ok(None);
        }
        let (remote, upstream) = if repo.is_remote_branch(target)? && !repo.branch_exists(target)? {
            let remote = remotes.iter().find(|r| target.starts_with(&format!("{r}/"))).cloned();
            (remote, None)
        } else if repo.branch_exists(target)? {
            match repo.upstream_of(target)? {
                Some(up) => (remotes.iter().find(|r| up.starts_with(&format!("{r}/"))).cloned(), Some(up)),
                None => (None, None),
            }
        } else {
            (None, None)
        };
        let Some(remote) = remote else { return Ok(None) };
        repo.clone().with_timeout(std::time::Duration::from_secs(120)).fetch(&remote).map_err(|e| {
            ReviewError::FetchFailed {
                remote: remote.clone(),
                branch: target.to_string(),
                reason: e.to_string(),
            }
        })?;
        if let Some(up) = upstream {
            let behind = repo.count_commits(&format!("{target}..{up}"))?;
            if behind > 0 {
                warnings.push(format!(
                    "{target} is {behind} commit(s) behind {up}; update it (git pull --ff-only in your checkout) \
                     and rebase again to build on the latest work"
                ));
            }
        }
        Ok(Some(remote))
    }

    /// Records a new base branch and commit for the session.
    fn set_base(&mut self, s: &Session, branch: &str, commit: &str) -> Result<(), EngineError> {
        self.store.set_base(&s.id, Some(branch), commit)?;
        Ok(())
    }

    /// Records the commit the session now builds on (after a finished rebase).
    fn set_base_commit(&mut self, s: &Session, commit: &str) -> Result<(), EngineError> {
        self.store.set_base(&s.id, None, commit)?;
        Ok(())
    }

    /// `undo <s> [--snapshot N]`: restores the most recent snapshot not restored yet (skipping the ones `undo`
    /// itself saved), or snapshot N. The current state is saved first. For a session removed with `rm --force`,
    /// the branch and worktree are recreated from the snapshot and the session becomes live again.
    pub fn review_undo(&mut self, reference: &str, seq: Option<i64>) -> Result<UndoReport, EngineError> {
        let s = self.store.resolve_session(reference, true)?;
        self.ensure_not_running(&s)?;
        let short = s.id.short().to_string();
        let records = self.store.list_snapshots(&s.id)?;
        let chosen = match seq {
            Some(n) => records.iter().find(|r| r.seq == n).cloned().ok_or_else(|| {
                ReviewError::UnknownSnapshot { session: label(&s), short_id: short.clone(), seq: n }
            })?,
            None => records
                .iter()
                .rev()
                .find(|r| r.restored_at.is_none() && !r.reason.starts_with(UNDO_SAFETY_REASON))
                .cloned()
                .ok_or_else(|| ReviewError::NoSnapshot { session: label(&s), short_id: short.clone() })?,
        };
        let repo = Git::new(&s.repo_path);
        let snap = repo
            .list_snapshots(s.id.as_str())?
            .into_iter()
            .find(|g| g.refname == chosen.refname && g.sha == chosen.sha)
            .ok_or_else(|| ReviewError::SnapshotRefGone {
                session: label(&s),
                refname: chosen.refname.clone(),
                repo: s.repo_path.clone(),
            })?;
        let worktree = PathBuf::from(&s.worktree_path);
        let repo_root = PathBuf::from(&s.repo_path);
        let (saved_current, recreated) = if s.removed_at.is_none() && worktree.join(".git").exists() {
            let wt = Git::new(&worktree);
            self.ensure_no_rebase(&s, &wt, "undo")?;
            let saved =
                self.take_snapshot(&s, &format!("{UNDO_SAFETY_REASON} (restoring #{})", chosen.seq))?;
            // Restore by hand (the git helper would save yet another snapshot).
            wt.reset_hard(&snap.base)?;
            wt.run(&["clean", "-f", "-d", "--quiet"])?;
            if snap.captured_changes {
                let source = format!("--source={}", snap.sha);
                wt.run(&["restore", source.as_str(), "--worktree", "--", "."])?;
            }
            (Some(saved), false)
        } else {
            let _lock = RepoLock::acquire(&self.paths.locks, &repo_root, crate::sessions::LOCK_TIMEOUT)?;
            let saved = self.recreate_worktree(&s, &repo, &worktree, &snap)?;
            (saved, true)
        };
        self.store.mark_snapshot_restored(&s.id, chosen.seq)?;
        let head = Git::new(&worktree).require_commit("HEAD")?;
        let restored =
            self.store.list_snapshots(&s.id)?.into_iter().find(|r| r.seq == chosen.seq).unwrap_or(chosen);
        Ok(UndoReport { restored, saved_current, recreated, worktree: s.worktree_path.clone(), head })
    }

    /// Brings back the worktree (and branch) of a removed session or one whose worktree vanished, at the
    /// snapshot's state, and marks the session live again.
    fn recreate_worktree(
        &mut self,
        s: &Session,
        repo: &Git,
        worktree: &Path,
        snap: &ampsm_git::Snapshot,
    ) -> Result<Option<SnapshotRecord>, EngineError> {
        let cannot = |reason: String| -> EngineError {
            ReviewError::CannotRecreate { session: label(s), reason }.into()
        };
        if s.removed_at.is_some() {
            let clash = self.store.live_session_named(&s.repo_path, &s.name)?;
            if let Some(other) = clash {
                return Err(cannot(format!(
                    "another live session is named {:?} ({}); remove or rename it first",
                    s.name,
                    ampsm_core::id::short_id(&other)
                )));
            }
        }
        if worktree.exists() && std::fs::read_dir(worktree).map(|mut d| d.next().is_some()).unwrap_or(true) {
            return Err(cannot(format!(
                "{} exists and is not empty; move it away first",
                worktree.display()
            )));
        }
        repo.worktree_prune()?;
        if let Some(parent) = worktree.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|source| EngineError::Io { path: parent.to_path_buf(), source })?;
        }
        let branch_ref = format!("refs/heads/{}", s.branch);
        let mut saved = None;
        if let Some(current) = repo.resolve_commit(&branch_ref)? {
            if repo.worktree_list()?.iter().any(|w| w.branch.as_deref() == Some(s.branch.as_str())) {
                return Err(cannot(format!("its branch {} is checked out in another worktree", s.branch)));
            }
            if current != snap.base {
                // The branch moved since the snapshot: keep where it is now reachable, then move it.
                saved = Some(self.take_snapshot(s, &format!("{UNDO_SAFETY_REASON}: branch head"))?);
                repo.update_ref(&branch_ref, &snap.base, Some(&current))?;
            }
            repo.worktree_add_existing(&s.branch, worktree)?;
        } else {
            repo.worktree_add(&s.branch, worktree, &snap.base)?;
        }
        if snap.captured_changes {
            let wt = Git::new(worktree);
            let source = format!("--source={}", snap.sha);
            wt.run(&["restore", source.as_str(), "--worktree", "--", "."])?;
        }
        self.store.mark_restored(&s.id)?;
        Ok(saved)
    }

    /// `export-patch <s>`: one patch (for `git apply`) with everything the branch changed since it left its
    /// base, or with `commits` the commits as an mbox (for `git am`).
    pub fn review_export_patch(&self, reference: &str, commits: bool) -> Result<PatchExport, EngineError> {
        let s = self.store.resolve_session(reference, true)?;
        let repo = Git::new(&s.repo_path);
        let base = self.base_rev(&repo, &s)?;
        let head = repo.resolve_commit(&format!("refs/heads/{}", s.branch))?.ok_or_else(|| {
            ReviewError::BadRequest {
                reason: format!("the branch {} of session {} is gone", s.branch, label(&s)),
            }
        })?;
        let fork = repo.merge_base(&base, &head)?.unwrap_or_else(|| base.clone());
        let text = if commits { repo.format_patch(&fork, &head)? } else { repo.diff_patch(&fork, &head)? };
        let worktree = PathBuf::from(&s.worktree_path);
        let uncommitted = if worktree.join(".git").exists() {
            Git::new(&worktree)
                .status()?
                .entries
                .into_iter()
                .filter(|e| e.kind != ampsm_git::EntryKind::Ignored)
                .map(|e| e.path)
                .collect()
        } else {
            Vec::new()
        };
        Ok(PatchExport {
            commits: repo.count_commits(&format!("{fork}..{head}"))? as usize,
            files: repo.diff_numstat(&fork, Some(&head))?,
            base: fork,
            head,
            uncommitted_not_included: uncommitted,
            text,
        })
    }
}

/// True when `subject` starts with the agent commit prefix.
pub fn is_agent_subject(subject: &str, prefix: &str) -> bool {
    !prefix.is_empty() && subject.starts_with(prefix)
}

fn check_paths_or_all(paths: &[String], all: bool) -> Result<(), EngineError> {
    match (paths.is_empty(), all) {
        (true, false) => Err(ReviewError::NoPaths.into()),
        (false, true) => Err(ReviewError::PathsAndAll.into()),
        _ => Ok(()),
    }
}

/// `git diff --numstat` over a range (one or two revisions) limited to pathspecs.
fn numstat(wt: &Git, range: &[String], pathspecs: &[String]) -> Result<Vec<FileStat>, EngineError> {
    let from = &range[0];
    let to = range.get(1).map(String::as_str);
    let all = wt.diff_numstat(from, to)?;
    if pathspecs.is_empty() {
        return Ok(all);
    }
    let mut args: Vec<&str> = vec!["--name-only", "-z", "-M"];
    args.extend(range.iter().map(String::as_str));
    args.push("--");
    args.extend(pathspecs.iter().map(String::as_str));
    let names = wt.diff_text(&args)?;
    let keep: Vec<&str> = names.split('\0').filter(|p| !p.is_empty()).collect();
    Ok(all.into_iter().filter(|f| keep.contains(&f.path.as_str())).collect())
}

/// True when `path` is `wanted` or inside the folder `wanted`.
fn path_matches(path: &str, wanted: &str) -> bool {
    let wanted = wanted.trim_end_matches('/');
    path == wanted || path.starts_with(&format!("{wanted}/"))
}

/// The full message of a commit.
fn full_message(wt: &Git, sha: &str) -> Result<String, EngineError> {
    Ok(wt.run(&["show", "-s", "--format=%B", sha])?)
}

/// The message of a folded run of commits.
fn squash_message(
    given: Option<&str>,
    run: &[CommitInfo],
    prefix: &str,
    agent_only: bool,
    trailer: &str,
) -> String {
    if let Some(m) = given.filter(|m| !m.trim().is_empty()) {
        return format!("{}\n\n{trailer}", m.trim_end());
    }
    let subject = if agent_only {
        format!("{prefix} {} agent commits squashed", run.len())
    } else {
        format!("Squash of {} commits", run.len())
    };
    let list: Vec<String> = run.iter().map(|c| format!("- {}", c.subject)).collect();
    format!("{subject}\n\n{}\n\n{trailer}", list.join("\n"))
}

/// True when the file still holds a conflict marker line.
fn has_conflict_markers(path: &Path) -> bool {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes)
            .lines()
            .any(|l| l.starts_with("<<<<<<< ") || l.starts_with(">>>>>>> ") || l == "======="),
        Err(_) => false,
    }
}

/// The commit a stopped rebase replays onto (`rebase-merge/onto` in the worktree's git dir).
fn rebase_onto(wt: &Git) -> Option<String> {
    let dir = wt.git_dir().ok()?;
    for sub in ["rebase-merge/onto", "rebase-apply/onto"] {
        if let Ok(text) = std::fs::read_to_string(dir.join(sub)) {
            return Some(text.trim().to_string());
        }
    }
    None
}

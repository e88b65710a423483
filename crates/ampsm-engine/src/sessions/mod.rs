//! Session lifecycle: `new` (validated name and base, a worktree outside the repository on a fresh
//! branch, crash-safe in two recorded steps, then the project's setup command), `rm` (refuses to drop
//! work unless forced, and then snapshots first), `show` and `repo-info`; the checks a front end makes
//! before it starts a first run in the background, and the record of such a run's failure ([`list`] has
//! the dashboard's reads: the sessions page, installed agents, the folder browser, a repository's
//! branches).

pub mod cleanup;
pub mod demo;
pub mod list;
pub mod repair;

use crate::process::{fault_point, own_pid, pid_alive, stop_run};
use crate::runs::script::run_script_tagged;
use crate::{Engine, EngineError};
use ampsm_core::{SessionId, SessionStatus, slugify, validate_session_name};
use ampsm_git::{Git, RepoLock};
use ampsm_store::{NewSession, Session, SnapshotRecord, StatusChange};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long to wait for another process's repository lock.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// What `new` asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateSession {
    pub repo: PathBuf,
    pub name: String,
    pub prompt: Option<String>,
    pub base: Option<String>,
    pub agent: Option<String>,
    pub model: Option<String>,
    pub script: Option<String>,
    pub budget_usd: Option<ampsm_core::Money>,
    pub batch_item_id: Option<String>,
    /// The benchmark result the session is made for.
    pub bench_result_id: Option<String>,
    /// The setup command run in the new worktree: `None` takes the configured one (`repos.<path>.setup`,
    /// else `session.setup`), `Some("")` runs none.
    pub setup: Option<String>,
    /// Ctrl-C of a foreground `new`: stops the setup command.
    pub interrupt: Option<crate::Interrupt>,
    /// The permission policy (`new --permissions`); `None` takes the config's default for the agent.
    pub permissions: Option<ampsm_core::PermissionPolicy>,
}

/// A setup command that did not pass: the session exists, in status `error`.
#[derive(Debug)]
pub struct SetupFailure {
    pub session: String,
    pub name: String,
    pub command: String,
    /// "exit code 1", "timed out after 600.0s", "interrupted".
    pub outcome: String,
    /// Its last lines of output, on one line.
    pub tail: String,
    /// Where its whole output is.
    pub log: PathBuf,
    pub worktree: PathBuf,
    /// Whether Ctrl-C stopped it.
    pub interrupted: bool,
}

impl std::fmt::Display for SetupFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "session {} was created, but its setup `{}` failed ({}): {}; the whole output is in {}. Fix it in {}",
            self.session,
            self.command,
            self.outcome,
            self.tail,
            self.log.display(),
            self.worktree.display(),
        )
    }
}

/// What `rm` did.
#[derive(Debug, Clone, Serialize)]
pub struct RemoveOutcome {
    pub session: Session,
    /// The snapshot saved before removing unmerged or uncommitted work.
    pub snapshot: Option<SnapshotRecord>,
    pub worktree_removed: bool,
    pub branch_deleted: bool,
}

/// Everything `show` prints.
#[derive(Debug, Clone, Serialize)]
pub struct SessionDetails {
    pub session: Session,
    pub worktree_exists: bool,
    /// Commits on the session branch that are not on its base.
    pub commits_ahead: Option<u64>,
    /// Paths with uncommitted changes in the worktree.
    pub uncommitted: Vec<String>,
    pub snapshots: Vec<SnapshotRecord>,
    pub status_history: Vec<StatusChange>,
}

/// What `repo-info` prints.
#[derive(Debug, Clone, Serialize)]
pub struct RepoInfo {
    pub root: String,
    pub current_branch: Option<String>,
    pub default_branch: String,
    pub branches: Vec<String>,
    pub remotes: Vec<String>,
    pub clean: bool,
    pub worktrees: usize,
    pub sessions: usize,
    pub git_version: String,
}

impl Engine {
    /// Creates a session: validates, records it as being created, adds the worktree under the repository
    /// lock, then marks it created. On any failure what was made is undone; after a `kill -9`,
    /// [`Engine::repair_quick`] does the same on the next start.
    pub fn create_session(&mut self, req: CreateSession) -> Result<Session, EngineError> {
        self.create_session_pinned(req, None)
    }

    /// [`Engine::create_session`] for work done elsewhere (a batch item run on a cluster node): with
    /// `pinned = (base commit, head commit)` the session records the base commit the work started from
    /// (not where its base branch is now) and its branch starts at the head commit, already in the
    /// repository; no setup runs.
    pub(crate) fn create_session_pinned(
        &mut self,
        req: CreateSession,
        pinned: Option<(&str, &str)>,
    ) -> Result<Session, EngineError> {
        validate_session_name(&req.name)?;
        let agent = req.agent.clone().unwrap_or_else(|| self.config.session.default_agent.clone());
        if !ampsm_core::agents::is_agent_name(&agent) {
            return Err(EngineError::UnknownAgent(agent));
        }
        // An agent that cannot honour the policy says so now, before anything is made or run.
        let permissions = self.policy_for_new(&agent, req.permissions);
        self.check_policy(ampsm_agent::adapter_for(&agent)?.as_ref(), permissions)?;
        if let Some(b) = req.budget_usd
            && !b.is_positive()
        {
            return Err(EngineError::Invalid(format!("budget must be a positive amount in USD, got {b}")));
        }
        let repo_root = ampsm_git::repo_root(&req.repo)?;
        let git = Git::new(&repo_root);
        let base = match &req.base {
            Some(b) => b.trim().to_string(),
            None => self.default_base(&git)?,
        };
        let base_commit = match (base.starts_with('-'), git.resolve_commit(&base)) {
            _ if pinned.is_some() => pinned.map(|p| p.0.to_string()).unwrap_or_default(),
            (false, Ok(Some(sha))) => sha,
            _ if !git.has_commits()? => return Err(EngineError::Invalid(no_commits(&repo_root))),
            _ => {
                return Err(EngineError::BadBase {
                    suggestions: git.suggest_refs(&base).unwrap_or_default(),
                    base,
                    repo: repo_root,
                });
            }
        };
        let id = SessionId::new_random();
        let slug = slugify(&req.name);
        let branch = format!("{}{}-{}", self.config.git.branch_prefix, slug, id.short());
        if !git.check_ref_format_branch(&branch)? {
            return Err(EngineError::Invalid(format!(
                "branch name {branch:?} is not valid for git; check git.branch_prefix in the config"
            )));
        }
        let repo_name = repo_root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let worktree = self
            .config
            .worktree_root(&self.paths)
            .join(slugify(&repo_name))
            .join(format!("{slug}-{}", id.short()));
        if worktree.exists() {
            return Err(EngineError::WorktreeExists(worktree));
        }
        let model = req.model.clone().or_else(|| match agent.as_str() {
            "amp" => self.config.amp.default_model.clone(),
            _ => None,
        });
        let new = NewSession {
            id: id.clone(),
            name: req.name.clone(),
            repo_path: repo_root.to_string_lossy().into_owned(),
            base_branch: base.clone(),
            base_commit: base_commit.clone(),
            branch: branch.clone(),
            worktree_path: worktree.to_string_lossy().into_owned(),
            agent,
            model,
            prompt: req.prompt.clone(),
            script: req.script.clone(),
            budget_usd: req.budget_usd.or(self.config.session.budget_usd.map(ampsm_core::Money::from_usd)),
            batch_item_id: req.batch_item_id.clone(),
            bench_result_id: req.bench_result_id.clone(),
            creating_pid: own_pid(),
            permissions: Some(permissions),
        };
        self.store.insert_creating_session(&new)?;
        let start = pinned.map(|p| p.1).unwrap_or(&base_commit);
        let made = self.add_worktree(&git, &repo_root, &branch, &worktree, start);
        if let Err(e) = made {
            self.undo_creation(&git, &new.id, &branch, &worktree, start);
            return Err(e);
        }
        fault_point("new:after-worktree");
        self.store.finish_creating(&id)?;
        let session = self.store.get_session(&id)?;
        if pinned.is_some() {
            return Ok(session);
        }
        if let Some(command) = self.config.setup_or(req.setup.as_deref(), &repo_root) {
            self.run_setup(&session, &command, req.interrupt.as_ref())?;
        }
        Ok(self.store.get_session(&id)?)
    }

    /// `setup <s>`: runs `command` (else the configured setup of the session's repository) in the
    /// session's worktree again, after a failure was fixed; refused while the session runs. The dashboard
    /// also sets up the sessions it makes (with `setup: Some("")`) through it, in the background.
    pub fn rerun_setup(
        &mut self,
        reference: &str,
        command: Option<&str>,
        interrupt: Option<&crate::Interrupt>,
    ) -> Result<Session, EngineError> {
        let session = self.store.resolve_session(reference, false)?;
        let label = format!("{} ({})", session.name, session.id.short());
        if session.status == SessionStatus::Running
            && let Some(pid) = session.runner_pid.filter(|p| pid_alive(*p))
        {
            return Err(EngineError::Running { session: label, pid });
        }
        let command = match command.map(str::trim).filter(|c| !c.is_empty()) {
            Some(c) => c.to_string(),
            None => self
                .config
                .setup_for(Path::new(&session.repo_path))
                .ok_or_else(|| EngineError::NoSetupCommand { session: label.clone() })?,
        };
        if !Path::new(&session.worktree_path).join(".git").exists() {
            return Err(EngineError::WorktreeGone {
                session: label,
                short_id: session.id.short().to_string(),
                path: session.worktree_path.clone(),
            });
        }
        self.run_setup(&session, &command, interrupt)?;
        Ok(self.store.get_session(&session.id)?)
    }

    /// Runs the setup command of a new session in its worktree (see [`crate::runs::script`]: its own process
    /// group, stdin closed, `session.setup_timeout`, Ctrl-C). The session is `running` meanwhile, with the
    /// command's group recorded as its agent, so `repair` can stop it after a crash. The whole output goes
    /// to `logs/setup-<session id>.log`. A failure leaves the session and its worktree as they are, in
    /// status `error` with a note, and is returned as [`EngineError::SetupFailed`].
    fn run_setup(
        &mut self,
        session: &Session,
        command: &str,
        interrupt: Option<&crate::Interrupt>,
    ) -> Result<(), EngineError> {
        let label = format!("{} ({})", session.name, session.id.short());
        let worktree = PathBuf::from(&session.worktree_path);
        std::fs::create_dir_all(&self.paths.logs)
            .map_err(|source| EngineError::Io { path: self.paths.logs.clone(), source })?;
        let log_path = self.paths.logs.join(format!("setup-{}.log", session.id));
        let mut log = std::fs::File::create(&log_path)
            .map_err(|source| EngineError::Io { path: log_path.clone(), source })?;
        let _ = writeln!(log, "$ {command}");
        // The runner first, then the status (and the other way round at the end): a repair in another
        // process never sees the session running without its runner.
        self.store.set_pids(&session.id, Some(own_pid()), None)?;
        self.store.set_status(
            &session.id,
            SessionStatus::Running,
            Some(&format!("running setup `{command}`")),
        )?;
        let store_path = self.store.path().to_path_buf();
        let id = session.id.clone();
        let mut on_spawn = move |pid: u32| {
            if let Ok(mut s) = ampsm_store::Store::open(&store_path) {
                let _ = s.set_pids(&id, Some(own_pid()), Some(pid as i64));
            }
        };
        let stop = || interrupt.is_some_and(crate::Interrupt::interrupted);
        let _busy = interrupt.map(crate::Interrupt::busy);
        let timeout = self.config.setup_timeout();
        // Its processes carry the run's tag: `repair` stops what left the group too after a crash.
        let tag = crate::process::run_tag(session.id.as_str(), own_pid());
        let ran = run_script_tagged(&worktree, command, timeout, &stop, Some(&mut log), &mut on_spawn, &tag);
        self.store.set_pids(&session.id, Some(own_pid()), None)?;
        let ran = match ran {
            Ok(r) => r,
            Err(source) => {
                let note = format!("setup `{command}` could not start: {source}");
                self.store.set_status(&session.id, SessionStatus::Error, Some(&note))?;
                self.store.set_pids(&session.id, None, None)?;
                return Err(EngineError::Io { path: worktree, source });
            }
        };
        let seconds = ran.duration_ms as f64 / 1000.0;
        if ran.passed() {
            // What it left that git would commit ends up in the agent's first commit: say so.
            let left: Vec<String> = Git::new(&worktree)
                .status()
                .map(|st| st.entries.into_iter().map(|e| e.path).collect())
                .unwrap_or_default();
            let mut note = format!("setup `{command}` passed in {seconds:.1} s");
            if !left.is_empty() {
                let shown: Vec<&str> = left.iter().take(3).map(String::as_str).collect();
                note.push_str(&format!(
                    "; it left {} file(s) that git does not ignore ({}{}), which the agent's first commit will \
                     include unless .gitignore covers them",
                    left.len(),
                    shown.join(", "),
                    if left.len() > 3 { ", …" } else { "" }
                ));
            }
            self.store.set_status(&session.id, SessionStatus::Idle, Some(&note))?;
            self.store.set_pids(&session.id, None, None)?;
            return Ok(());
        }
        let outcome = ran.outcome();
        let note = format!("setup `{command}` failed ({outcome}); output in {}", log_path.display());
        self.store.set_status(&session.id, SessionStatus::Error, Some(&note))?;
        self.store.set_pids(&session.id, None, None)?;
        Err(EngineError::SetupFailed(Box::new(SetupFailure {
            session: label,
            name: session.name.clone(),
            command: command.to_string(),
            outcome,
            tail: ran.short_tail(),
            log: log_path,
            worktree,
            interrupted: ran.interrupted,
        })))
    }

    fn default_base(&self, git: &Git) -> Result<String, EngineError> {
        let configured = &self.config.git.default_base_branch;
        if !configured.is_empty() && git.resolve_commit(configured)?.is_some() {
            return Ok(configured.clone());
        }
        Ok(git.default_branch()?)
    }

    pub(crate) fn add_worktree(
        &self,
        git: &Git,
        repo_root: &Path,
        branch: &str,
        worktree: &Path,
        base_commit: &str,
    ) -> Result<(), EngineError> {
        if let Some(parent) = worktree.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|source| EngineError::Io { path: parent.to_path_buf(), source })?;
        }
        let _lock = RepoLock::acquire(&self.paths.locks, repo_root, LOCK_TIMEOUT)?;
        git.worktree_add(branch, worktree, base_commit)?;
        for file in &self.config.copy_files_for(repo_root) {
            copy_ignored_file(repo_root, worktree, file)?;
        }
        Ok(())
    }

    /// Removes what a failed or crashed creation left: the worktree (only if it still sits at the base
    /// commit with nothing in it), the branch (only if it still points at the base commit) and the row.
    pub(crate) fn undo_creation(
        &mut self,
        git: &Git,
        id: &SessionId,
        branch: &str,
        worktree: &Path,
        base_commit: &str,
    ) {
        if worktree.exists() {
            let wt = Git::new(worktree);
            let pristine = wt.status().map(|s| s.is_clean()).unwrap_or(false)
                && wt.resolve_commit("HEAD").ok().flatten().as_deref() == Some(base_commit);
            if pristine {
                let _ = git.worktree_remove(worktree, true);
            }
        }
        let _ = git.worktree_prune();
        if git.resolve_commit(&format!("refs/heads/{branch}")).ok().flatten().as_deref() == Some(base_commit)
        {
            let _ = git.delete_branch(branch, true);
        }
        let _ = self.store.delete_session_row(id);
    }

    /// Removes a session's worktree and branch. Unmerged commits or uncommitted changes make it refuse
    /// unless `force`, which first saves a snapshot ref so `undo` can bring the work back.
    pub fn remove_session(
        &mut self,
        reference: &str,
        force: bool,
        keep_branch: bool,
    ) -> Result<RemoveOutcome, EngineError> {
        let session = self.store.resolve_session(reference, false)?;
        let label = format!("{} ({})", session.name, session.id.short());
        if session.status == SessionStatus::Running
            && let Some(pid) = session.runner_pid.filter(|p| pid_alive(*p))
        {
            if !force {
                return Err(EngineError::Running { session: label, pid });
            }
            // The whole run: its group, and what left it.
            stop_run(session.id.as_str(), Some(pid), session.agent_pid, Duration::from_secs(2));
        }
        let repo_root = PathBuf::from(&session.repo_path);
        let git = Git::new(&repo_root);
        let worktree = PathBuf::from(&session.worktree_path);
        let what = self.unsaved_work(&git, &session, &worktree)?;
        if !what.is_empty() && !force {
            return Err(EngineError::UnmergedWork {
                session: label,
                short_id: session.id.short().to_string(),
                what: what.join(" and "),
            });
        }
        let _lock = RepoLock::acquire(&self.paths.locks, &repo_root, LOCK_TIMEOUT)?;
        // From here no run may be going on or begin: the session is marked removed first (another `rm`
        // of it may have done that while this one waited for the lock: then that is the answer). A run
        // that started meanwhile is stopped through its runner, which commits what its agent did.
        let mut dead_runner = None;
        for _ in 0..3 {
            let Some(pid) = self.store.claim_for_removal(&session.id, dead_runner)? else { break };
            if !pid_alive(pid) {
                dead_runner = Some(pid);
                continue;
            }
            if !force {
                return Err(EngineError::Running { session: label, pid });
            }
            self.store.request_stop(&session.id)?;
            let deadline = std::time::Instant::now() + Duration::from_secs(15);
            while std::time::Instant::now() < deadline
                && self.store.get_session(&session.id)?.runner_pid == Some(pid)
                && pid_alive(pid)
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            let now = self.store.get_session(&session.id)?;
            stop_run(session.id.as_str(), now.runner_pid, now.agent_pid, Duration::from_secs(2));
        }
        if self.store.get_session(&session.id)?.removed_at.is_none() {
            return Err(EngineError::Invalid(format!(
                "session {label} kept running while it was being removed; nothing was removed, try again"
            )));
        }
        let removal = self.remove_claimed(&session, &git, &worktree, force, keep_branch);
        if removal.is_err() {
            self.store.unmark_removed(&session.id)?;
        }
        let (snapshot, worktree_removed, branch_deleted) = removal?;
        let session = self.store.get_session(&session.id)?;
        Ok(RemoveOutcome { session, snapshot, worktree_removed, branch_deleted })
    }

    /// The git side of `rm`, once the session is claimed: a snapshot of work that is on no other branch
    /// (taken now, after any run ended), then the worktree and the branch.
    fn remove_claimed(
        &mut self,
        session: &Session,
        git: &Git,
        worktree: &Path,
        force: bool,
        keep_branch: bool,
    ) -> Result<(Option<SnapshotRecord>, bool, bool), EngineError> {
        let worktree_exists = worktree.join(".git").exists();
        let what = self.unsaved_work(git, session, worktree)?;
        let snapshot = if what.is_empty() {
            None
        } else {
            Some(self.take_snapshot(session, &format!("rm --force: {}", what.join(", ")))?)
        };
        let mut worktree_removed = false;
        if worktree_exists {
            git.worktree_remove(worktree, force)?;
            worktree_removed = true;
        }
        git.worktree_prune()?;
        let mut branch_deleted = false;
        if !keep_branch && git.branch_exists(&session.branch)? {
            git.delete_branch(&session.branch, true)?;
            branch_deleted = true;
        }
        Ok((snapshot, worktree_removed, branch_deleted))
    }

    /// What removing the session would drop: unmerged commits, uncommitted changes (empty: nothing).
    fn unsaved_work(
        &self,
        git: &Git,
        session: &Session,
        worktree: &Path,
    ) -> Result<Vec<String>, EngineError> {
        let uncommitted =
            if worktree.join(".git").exists() { Git::new(worktree).status()?.entries.len() } else { 0 };
        let unmerged = self.unmerged_commits(git, session)?;
        let mut what = Vec::new();
        if unmerged > 0 {
            what.push(format!("{unmerged} unmerged commit{}", if unmerged == 1 { "" } else { "s" }));
        }
        if uncommitted > 0 {
            what.push(format!(
                "uncommitted changes in {uncommitted} file{}",
                if uncommitted == 1 { "" } else { "s" }
            ));
        }
        Ok(what)
    }

    /// Commits on the session branch that are on no other branch and not on its base.
    fn unmerged_commits(&self, git: &Git, session: &Session) -> Result<u64, EngineError> {
        let head = format!("refs/heads/{}", session.branch);
        if git.resolve_commit(&head)?.is_none() {
            return Ok(0);
        }
        let base = if git.resolve_commit(&session.base_branch)?.is_some() {
            session.base_branch.clone()
        } else {
            session.base_commit.clone()
        };
        Ok(git.count_commits(&format!("{base}..{head}"))?)
    }

    /// Saves a snapshot of the session (its branch head, plus uncommitted files when the worktree exists)
    /// under `refs/ampsm/snapshots/<session id>/<n>` and records it.
    pub fn take_snapshot(&mut self, session: &Session, reason: &str) -> Result<SnapshotRecord, EngineError> {
        let worktree = PathBuf::from(&session.worktree_path);
        let git =
            if worktree.join(".git").exists() { Git::new(&worktree) } else { Git::new(&session.repo_path) };
        let snap = if worktree.join(".git").exists() {
            git.create_snapshot(session.id.as_str(), reason)?
        } else {
            // No worktree: keep the branch head reachable.
            let sha = git.resolve_commit(&format!("refs/heads/{}", session.branch))?.ok_or_else(|| {
                EngineError::Invalid(format!(
                    "session {} has neither a worktree nor a branch",
                    session.id.short()
                ))
            })?;
            let n = git.list_snapshots(session.id.as_str())?.len() as u64 + 1;
            let refname = format!("{}{}/{n}", ampsm_git::SNAPSHOT_REF_PREFIX, session.id.as_str());
            git.update_ref(&refname, &sha, None)?;
            ampsm_git::Snapshot {
                refname,
                n,
                sha: sha.clone(),
                base: sha,
                captured_changes: false,
                reason: Some(reason.to_string()),
            }
        };
        self.store.insert_snapshot(
            &session.id,
            snap.n as i64,
            &snap.refname,
            &snap.sha,
            &session.branch,
            reason,
        )?;
        let records = self.store.list_snapshots(&session.id)?;
        records
            .into_iter()
            .find(|r| r.seq == snap.n as i64)
            .ok_or_else(|| EngineError::Invalid("snapshot was not recorded".into()))
    }

    /// Details for `show`.
    pub fn session_details(&self, reference: &str) -> Result<SessionDetails, EngineError> {
        let session = self.store.resolve_session(reference, true)?;
        let worktree = PathBuf::from(&session.worktree_path);
        let worktree_exists = worktree.join(".git").exists();
        let uncommitted = if worktree_exists {
            Git::new(&worktree).status()?.entries.into_iter().map(|e| e.path).collect()
        } else {
            Vec::new()
        };
        let git = Git::new(&session.repo_path);
        let commits_ahead = if Path::new(&session.repo_path).exists() {
            self.unmerged_commits(&git, &session).ok()
        } else {
            None
        };
        Ok(SessionDetails {
            snapshots: self.store.list_snapshots(&session.id)?,
            status_history: self.store.status_history(&session.id)?,
            session,
            worktree_exists,
            commits_ahead,
            uncommitted,
        })
    }

    /// Facts about a repository for `repo-info`.
    pub fn repo_info(&self, path: &Path) -> Result<RepoInfo, EngineError> {
        let root = ampsm_git::repo_root(path)?;
        let git = Git::new(&root);
        let root_text = root.to_string_lossy().into_owned();
        let (a, b, c) = ampsm_git::git_version()?;
        let sessions = self
            .store
            .list_sessions(&ampsm_store::SessionFilter {
                repo_path: Some(root_text.clone()),
                ..Default::default()
            })?
            .len();
        Ok(RepoInfo {
            current_branch: git.head_branch()?,
            default_branch: git.default_branch()?,
            branches: git.branches()?,
            remotes: git.remotes()?,
            clean: git.status()?.is_clean(),
            worktrees: git.worktree_list()?.len(),
            sessions,
            git_version: format!("{a}.{b}.{c}"),
            root: root_text,
        })
    }
}

impl Engine {
    /// Whether a run of the session could start now, checked without starting it: the checks `iterate`
    /// makes first ([`Engine::preflight`]). A front end that starts the run in the background checks this first, so that it
    /// shows the reason instead of saying the run started.
    pub fn check_can_run(&self, reference: &str) -> Result<(), EngineError> {
        let session = self.store.resolve_session(reference, false)?;
        self.preflight(&session, None, None).map(|_| ())
    }

    /// Records that background work on a session failed (`what`: "first run", "setup"; `line`: the
    /// error) in its status history, where `timeline` and the Overview show it, and as its status note,
    /// so the failure outlives the process that saw it.
    pub fn record_background_failure(
        &mut self,
        session: &SessionId,
        what: &str,
        line: &str,
    ) -> Result<(), EngineError> {
        Ok(self.store.record_failure_note(session, &format!("{what} failed: {line}"))?)
    }
}

/// Copies an ignored file (such as `.env`) named in `git.copy_files` into a new worktree, when it exists.
fn copy_ignored_file(repo_root: &Path, worktree: &Path, rel: &str) -> Result<(), EngineError> {
    let rel_path = Path::new(rel);
    if rel_path.is_absolute() || rel_path.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
        return Err(EngineError::Invalid(format!(
            "git.copy_files: {rel:?} must be a path inside the repository"
        )));
    }
    let from = repo_root.join(rel_path);
    if !from.is_file() {
        return Ok(());
    }
    let to = worktree.join(rel_path);
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir).map_err(|source| EngineError::Io { path: dir.to_path_buf(), source })?;
    }
    std::fs::copy(&from, &to).map_err(|source| EngineError::Io { path: from.clone(), source })?;
    Ok(())
}

/// What to say when a repository has no commits yet (so no base can name one), and how to make one.
pub(crate) fn no_commits(repo: &Path) -> String {
    format!(
        "the repository {} has no commits yet, so a session has nothing to start from; make a first commit \
         there (for example: git -C {} commit --allow-empty -m \"Initial commit\") and try again",
        repo.display(),
        repo.display()
    )
}

/// A session's budget and what it spent, after [`Engine::set_session_budget`].
#[derive(Debug, Clone, Serialize)]
pub struct SessionBudget {
    pub session: Session,
    /// Sum of the known costs of its usage rows.
    pub spent_usd: ampsm_core::Money,
    /// Usage rows with tokens but no known price (not counted in `spent_usd`).
    pub unpriced_rows: i64,
}

/// What [`Engine::set_session_budget`] does with the budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BudgetChange {
    /// Only read it.
    Keep,
    /// Set it to this many USD (must be a positive amount).
    Set(f64),
    /// Remove it.
    Clear,
}

impl Engine {
    /// Sets, clears or only reads the budget of a session, with a note in its history for a change, and
    /// returns it with the session's spend. A budget that is not a positive amount is refused.
    pub fn set_session_budget(
        &mut self,
        reference: &str,
        change: BudgetChange,
    ) -> Result<SessionBudget, EngineError> {
        let s = self.store.resolve_session(reference, false)?;
        match change {
            BudgetChange::Keep => {}
            BudgetChange::Set(v) => {
                let v = ampsm_core::Money::from_usd(v);
                if !v.is_positive() {
                    return Err(crate::reports::metrics_error::MetricsError::BadBudget(v.usd()).into());
                }
                self.store.set_budget(&s.id, Some(v))?;
                self.store.record_note(&s.id, &format!("budget set to {}", v.text()))?;
            }
            BudgetChange::Clear => {
                self.store.set_budget(&s.id, None)?;
                self.store.record_note(&s.id, "budget cleared")?;
            }
        }
        let session = self.store.get_session(&s.id)?;
        let spend = self.store.session_spend(&s.id)?;
        Ok(SessionBudget { session, spent_usd: spend.known_usd, unpriced_rows: spend.unpriced_rows })
    }
}

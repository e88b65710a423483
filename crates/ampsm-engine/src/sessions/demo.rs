//! The demo, the main job for a newcomer: a small project under AMPSM_HOME (made once, a POSIX-shell
//! greeting script with tests), a new session on it that runs the built-in offline agent (a real
//! subprocess replaying a recorded transcript that really edits files), and the session's diff afterwards.
//! Also the entry point of that offline agent's process, so that front ends need not know its crate.

use crate::sessions::CreateSession;
use crate::{Engine, EngineError};
use ampsm_agent::offline;
use ampsm_git::Git;
use ampsm_store::{Session, SessionFilter};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// A demo session, made and not run yet.
#[derive(Debug, Clone)]
pub struct Demo {
    /// The demo project.
    pub repo: PathBuf,
    pub session: Session,
    /// What the agent is asked to do.
    pub prompt: &'static str,
    /// A good second prompt for the same session.
    pub follow_up_prompt: &'static str,
}

impl Engine {
    /// Makes the demo project when it does not exist yet and a new session `demo-N` on it with `agent`
    /// (the offline agent by default), the demo prompt and the project's tests as its script.
    pub fn create_demo(&mut self, agent: Option<String>) -> Result<Demo, EngineError> {
        let repo = self.paths.home.join("demo").join("hello");
        ensure_demo_repo(&repo)?;
        let root = ampsm_git::repo_root(&repo)?.to_string_lossy().into_owned();
        let filter = SessionFilter { repo_path: Some(root), include_removed: true, ..Default::default() };
        let existing = self.store.list_sessions(&filter)?.len();
        let session = self.create_session(CreateSession {
            repo: repo.clone(),
            name: format!("demo-{}", existing + 1),
            prompt: Some(offline::DEMO_PROMPT.to_string()),
            agent: Some(agent.unwrap_or_else(|| "offline".to_string())),
            script: Some(offline::DEMO_TEST_SCRIPT.to_string()),
            ..Default::default()
        })?;
        Ok(Demo {
            repo,
            session,
            prompt: offline::DEMO_PROMPT,
            follow_up_prompt: offline::DEMO_FOLLOW_UP_PROMPT,
        })
    }

    /// What a session changed against its base commit: the `--stat` summary and the patch.
    pub fn session_patch(&self, session: &Session) -> Result<(String, String), EngineError> {
        let git = Git::new(&session.worktree_path);
        let stat = git.diff_text(&["--stat", &session.base_commit, "HEAD"])?;
        let patch = git.diff_text(&[&session.base_commit, "HEAD"])?;
        Ok((stat, patch))
    }
}

/// Creates the demo repository (a tiny POSIX-shell project with tests) when it does not exist yet.
fn ensure_demo_repo(repo: &Path) -> Result<(), EngineError> {
    if repo.join(".git").exists() {
        return Ok(());
    }
    let io = |source| EngineError::Io { path: repo.to_path_buf(), source };
    std::fs::create_dir_all(repo).map_err(io)?;
    for (rel, content) in offline::demo_repo_files() {
        let path = repo.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        std::fs::write(&path, content).map_err(io)?;
    }
    let git = Git::new(repo);
    git.run(&["init", "-q", "-b", "main"])?;
    git.stage_all()?;
    git.commit("Demo project: a greeting script with tests", &[], false)?;
    Ok(())
}

/// Runs the built-in offline agent in this process (its CLI arguments, its stdin and stdout, the
/// worktree it works in); returns its exit code.
pub fn run_offline_agent(args: &[String], stdin: impl Read, stdout: impl Write, cwd: &Path) -> i32 {
    offline::run_offline_agent(args, stdin, stdout, cwd)
}

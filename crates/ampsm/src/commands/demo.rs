//! `demo`: the main job for a newcomer. Makes a demo repository under AMPSM_HOME, creates a session, runs
//! it with the built-in offline agent (a real subprocess replaying a recorded Amp transcript that really
//! edits files), then shows the diff and the metrics.

use super::{CliError, open_engine};
use crate::output;
use ampsm_agent::offline;
use ampsm_engine::{CreateSession, EngineError, IterateRequest};
use ampsm_git::Git;
use std::path::Path;

pub fn run(agent: Option<String>, json: bool) -> Result<(), CliError> {
    let mut engine = open_engine()?;
    let repo = engine.paths.home.join("demo").join("hello");
    ensure_demo_repo(&repo)?;
    let existing = engine
        .store
        .list_sessions(&ampsm_store::SessionFilter {
            repo_path: Some(
                ampsm_git::repo_root(&repo).map_err(EngineError::from)?.to_string_lossy().into_owned(),
            ),
            include_removed: true,
            ..Default::default()
        })?
        .len();
    let name = format!("demo-{}", existing + 1);
    let agent = agent.unwrap_or_else(|| "offline".to_string());
    let session = engine.create_session(CreateSession {
        repo: repo.clone(),
        name: name.clone(),
        prompt: Some(offline::DEMO_PROMPT.to_string()),
        agent: Some(agent.clone()),
        script: Some(offline::DEMO_TEST_SCRIPT.to_string()),
        ..Default::default()
    })?;
    if !json {
        output::heading("amp-sessions demo");
        println!("Demo repository: {}", repo.display());
        println!("Session {name} ({}) on branch {}", session.id.short(), session.branch);
        println!("Worktree: {}", session.worktree_path);
        println!("Agent: {agent}   Prompt: {}", offline::DEMO_PROMPT);
        println!();
    }
    let result = super::agents::run_iteration(
        &mut engine,
        IterateRequest {
            session: session.id.to_string(),
            interrupt: Some(ampsm_engine::Interrupt::install()),
            ..Default::default()
        },
        json,
    );
    if json {
        return result;
    }
    println!();
    output::heading("Diff against the base branch");
    let git = Git::new(&session.worktree_path);
    let diff = git.diff_text(&["--stat", &session.base_commit, "HEAD"]).map_err(EngineError::from)?;
    print!("{diff}");
    let patch = git.diff_text(&[&session.base_commit, "HEAD"]).map_err(EngineError::from)?;
    print!("{patch}");
    println!();
    output::heading("Tool calls");
    super::agents::tools(session.id.as_str(), false)?;
    println!();
    output::heading("Token usage and cost");
    super::agents::usage(session.id.as_str(), false)?;
    println!();
    println!(
        "Next: `amp-sessions show {0}`, `amp-sessions logs {0}`, `amp-sessions iterate {0} --prompt \"{1}\"`,",
        session.id.short(),
        offline::DEMO_FOLLOW_UP_PROMPT
    );
    println!("      `amp-sessions rm {} --force` to clean up.", session.id.short());
    result
}

/// Creates the demo repository (a tiny POSIX-shell project with tests) when it does not exist yet.
fn ensure_demo_repo(repo: &Path) -> Result<(), CliError> {
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
    git.run(&["init", "-q", "-b", "main"]).map_err(EngineError::from)?;
    git.stage_all().map_err(EngineError::from)?;
    git.commit("Demo project: a greeting script with tests", &[], false).map_err(EngineError::from)?;
    Ok(())
}

//! `demo`: the main job for a newcomer. The engine makes a demo repository under AMPSM_HOME and a session
//! on it; this runs it with the built-in offline agent (a real subprocess replaying a recorded Amp
//! transcript that really edits files), then shows the diff and the metrics.

use super::{CliError, open_engine};
use crate::output;
use ampsm_engine::IterateRequest;

pub fn run(agent: Option<String>, json: bool) -> Result<(), CliError> {
    let mut engine = open_engine()?;
    let demo = engine.create_demo(agent)?;
    let session = &demo.session;
    if !json {
        output::heading("amp-sessions demo");
        println!("Demo repository: {}", demo.repo.display());
        println!("Session {} ({}) on branch {}", session.name, session.id.short(), session.branch);
        println!("Worktree: {}", session.worktree_path);
        println!("Agent: {}   Prompt: {}", session.agent, demo.prompt);
        println!();
    }
    let result = super::agents::run_iteration(
        &mut engine,
        IterateRequest {
            session: session.id.to_string(),
            interrupt: Some(ampsm_engine::Interrupt::install(crate::errors::exit_interrupted)),
            ..Default::default()
        },
        json,
    );
    if json {
        return result;
    }
    println!();
    output::heading("Diff against the base branch");
    let (stat, patch) = engine.session_patch(session)?;
    print!("{stat}");
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
        demo.follow_up_prompt
    );
    println!("      `amp-sessions rm {} --force` to clean up.", session.id.short());
    result
}

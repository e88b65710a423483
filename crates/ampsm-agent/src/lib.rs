//! Agent adapters for amp-sessions: for each agent CLI (Amp, Claude Code, Codex, Gemini, OpenCode, any
//! command, and the built-in offline demo) the argv and environment of a run, a credential check that
//! spends nothing, and a stream parser that maps the vendor's lines onto [`ampsm_core::AgentEvent`]s and a
//! [`ampsm_core::RunOutcome`] (tokens counted once, tool calls paired). [`run_agent`] supervises one run in
//! its own process group with a timeout and line-length caps; [`spawn_interactive`] drives a chat.
//!
//! This crate knows nothing of sessions, git or the database: the engine stores what it reports.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ampsm_agent::AgentError> {
//! use ampsm_agent::{RunSpec, adapter_for, run_agent};
//! let adapter = adapter_for("amp")?;
//! let check = adapter.check_credentials(&|k| std::env::var(k).ok(), std::path::Path::new("/home/me"));
//! if !check.ok {
//!     eprintln!("{}", check.message); // how to log in; never the secret
//! }
//! let spec = RunSpec::new("Fix the failing test", "/home/me/.ampsm/worktrees/s1");
//! let report = run_agent(
//!     adapter.as_ref(),
//!     &spec,
//!     None,
//!     &mut |pid| println!("started {pid}"),
//!     &mut |item| println!("{} {:?}", item.seq, item.events),
//! )
//! .await?;
//! println!("{:?} {:?}", report.outcome.thread_id, report.outcome.total_usage());
//! # Ok(())
//! # }
//! ```

pub mod adapter;
pub mod adapters;
pub mod contain;
pub mod error;
pub mod offline;
pub mod parsers;
pub mod process;
pub mod spec;

pub use adapter::{AgentAdapter, Capabilities, ContinueMode, CredentialCheck, PolicySupport, StreamParser};
pub use adapters::adapter_for;
pub use error::AgentError;
pub use process::{
    InteractiveAgent, MessageFormat, RunClock, RunControls, RunReport, StreamItem, run_agent, run_agent_with,
    spawn_interactive,
};
pub use spec::{CommandSpec, DEFAULT_MAX_LINE_BYTES, DEFAULT_TIMEOUT, ExitInfo, RunSpec, StdinMode};

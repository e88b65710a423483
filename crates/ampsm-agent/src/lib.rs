//! Agent adapters for amp-sessions: for each agent CLI (Amp, Claude Code, Codex, Gemini, OpenCode, any
//! command, and the built-in offline demo) the argv and environment of a run, a credential check that
//! spends nothing, and a stream parser that maps the vendor's lines onto [`ampsm_core::AgentEvent`]s and a
//! [`ampsm_core::RunOutcome`] (tokens counted once, tool calls paired). [`run_agent`] supervises one run in
//! its own process group with a timeout and line-length caps; [`spawn_interactive`] drives a chat.
//!
//! This crate knows nothing of sessions, git or the database: the engine stores what it reports.

pub mod adapter;
pub mod adapters;
pub mod error;
pub mod offline;
pub mod parsers;
pub mod process;
pub mod spec;

pub use adapter::{AgentAdapter, Capabilities, ContinueMode, CredentialCheck, StreamParser};
pub use adapters::{AGENT_NAMES, adapter_for};
pub use error::AgentError;
pub use process::{InteractiveAgent, MessageFormat, RunReport, StreamItem, run_agent, spawn_interactive};
pub use spec::{CommandSpec, DEFAULT_MAX_LINE_BYTES, DEFAULT_TIMEOUT, ExitInfo, RunSpec, StdinMode};

//! What the engine reports about sessions, batches and benchmark runs: a session's metrics and timeline
//! ([`metrics`], with its errors in [`metrics_error`]), exports as JSON, JSONL or CSV and the Markdown
//! report ([`export`]), and the change marks of live views ([`watch`]).

pub mod conversation;
pub mod export;
pub mod metrics;
pub mod metrics_error;
pub mod watch;

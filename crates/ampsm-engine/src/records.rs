//! The records the engine hands to front ends: sessions, iterations, stored events, tool calls, usage,
//! approvals, batches and benchmark runs, as the store keeps them. Front ends name these types through
//! the engine (`ampsm_engine::records::Session`) and never open the store themselves; how the rows are
//! read and written stays behind [`crate::Engine`].

/// What an agent's CLI can do (resume a conversation, answer tool calls, …).
pub use ampsm_agent::Capabilities;
/// One line of an agent's output as it was parsed, handed to the observer of a run while it goes on.
pub use ampsm_agent::StreamItem;
/// What kind of change a path of a worktree's status has (a conflict is `Unmerged`).
pub use ampsm_git::EntryKind;
pub use ampsm_store::batches::{Batch, BatchCounts, BatchItem};
pub use ampsm_store::bench::{BenchCounts, BenchResult, BenchRun};
/// How a batch item or benchmark result running on a cluster node is doing.
pub use ampsm_store::cluster::TaskProgress;
pub use ampsm_store::{
    ActivityChange, Approval, ApprovalStatus, Iteration, Session, StoredEvent, ToolCall, UsageRow,
};

//! Domain types of amp-sessions that do no IO: session ids and states, the normalized agent event model,
//! token usage with the price table, and validation of names and durations.
//!
//! Every other crate speaks these types; nothing here touches the disk, git or a process.

pub mod agents;
pub mod duration;
pub mod errorkind;
pub mod event;
pub mod export_format;
pub mod id;
pub mod money;
pub mod names;
pub mod permissions;
pub mod pricing;
pub mod redact;
pub mod status;
pub mod time;

pub use duration::parse_duration;
pub use errorkind::{ErrorKind, Hint};
pub use event::{AgentEvent, EventKind, ModelUsage, RunOutcome, TokenUsage};
pub use export_format::ExportFormat;
pub use id::SessionId;
pub use money::{BUDGET_WARN_SHARE, BudgetLevel, Money};
pub use names::{NameError, slugify, validate_session_name};
pub use permissions::{Denial, PermissionPolicy};
pub use pricing::{CostEstimate, CostSource, ModelPrice, PriceTable, dollars};
pub use redact::Redactor;
pub use status::{
    BatchItemStatus, BatchStatus, BenchResultStatus, BenchRunStatus, Executor, IterationOutcome, JobStatus,
    MergeResult, RebaseResult, SessionStatus, TransitionError,
};

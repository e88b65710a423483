//! Errors of metrics, exports and budgets: each names the session, batch, run or file concerned; what to do
//! next is its [`Hint`]. Carried by [`crate::EngineError::Metrics`].

use ampsm_core::{ErrorKind, Hint};
use std::path::PathBuf;

/// A failed or refused metrics, export or budget step.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("no batch matches {0:?}")]
    BatchNotFound(String),

    #[error("no benchmark run matches {0:?}")]
    BenchNotFound(String),

    #[error("a CSV export writes one file per table, so it needs a folder")]
    CsvNeedsFolder,

    #[error("{} is a file, but a CSV export needs a folder for its files", path.display())]
    OutIsFile { path: PathBuf },

    #[error("cannot write the export to {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },

    #[error(
        "session {session} has spent ${spent:.4} of its {} budget, so the agent was not started",
        ampsm_core::dollars(*.budget)
    )]
    BudgetExhausted { session: String, short_id: String, spent: f64, budget: f64 },

    #[error("session {session} was not started: {reason}")]
    PoolExhausted { session: String, reason: String },

    #[error("a budget must be a positive amount in USD, got {0}")]
    BadBudget(f64),
}

impl MetricsError {
    /// What to do next, when the error has a next step.
    pub fn hint(&self) -> Option<Hint> {
        match self {
            MetricsError::BatchNotFound(_) => Some(Hint::ListBatches),
            MetricsError::BenchNotFound(_) => Some(Hint::ListBenches),
            MetricsError::CsvNeedsFolder | MetricsError::OutIsFile { .. } => Some(Hint::ExportToFolder),
            MetricsError::BudgetExhausted { short_id, .. } => {
                Some(Hint::RaiseOrClearBudget { session: short_id.clone() })
            }
            MetricsError::Write { .. } | MetricsError::PoolExhausted { .. } | MetricsError::BadBudget(_) => {
                None
            }
        }
    }

    /// What kind of failure this is: an unknown batch or run is not found, a wrong export target or budget
    /// is bad input, a stop that protects the user's money is a refusal, a failed write failed.
    pub fn kind(&self) -> ErrorKind {
        match self {
            MetricsError::BatchNotFound(_) | MetricsError::BenchNotFound(_) => ErrorKind::NotFound,
            MetricsError::CsvNeedsFolder | MetricsError::OutIsFile { .. } | MetricsError::BadBudget(_) => {
                ErrorKind::BadInput
            }
            MetricsError::BudgetExhausted { .. } | MetricsError::PoolExhausted { .. } => ErrorKind::Refused,
            MetricsError::Write { .. } => ErrorKind::Failed,
        }
    }
}

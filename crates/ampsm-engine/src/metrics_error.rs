//! Errors of metrics, exports and budgets: each names the session, batch, run or file concerned and says
//! what to do next. Carried by [`crate::EngineError::Metrics`].

use ampsm_core::ErrorKind;
use std::path::PathBuf;

/// A failed or refused metrics, export or budget step.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("no batch matches {0:?}; run `amp-sessions batch list` to see batches")]
    BatchNotFound(String),

    #[error("no benchmark run matches {0:?}; run `amp-sessions bench list` to see runs")]
    BenchNotFound(String),

    #[error(
        "a CSV export writes one file per table, so it needs a folder: pass --out DIR (created when missing)"
    )]
    CsvNeedsFolder,

    #[error("{} is a file, but a CSV export needs a folder for its files: pass --out DIR", path.display())]
    OutIsFile { path: PathBuf },

    #[error("cannot write the export to {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },

    #[error(
        "session {session} has spent ${spent:.4} of its {} budget, so the agent was not started; raise \
         the budget with `amp-sessions budget {short_id} USD` or clear it with `amp-sessions budget {short_id} --clear`",
        ampsm_core::dollars(*.budget)
    )]
    BudgetExhausted { session: String, short_id: String, spent: f64, budget: f64 },

    #[error("session {session} was not started: {reason}")]
    PoolExhausted { session: String, reason: String },

    #[error("a budget must be a positive amount in USD, got {0}")]
    BadBudget(f64),
}

impl MetricsError {
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

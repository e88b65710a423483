//! The results table of a batch, one row per item with its session, tokens, cost, commits and lines
//! changed, in the export conventions of `docs/exports.md`: times as RFC 3339 text in every format; CSV
//! through the export engine's cell rules (RFC 4180, CRLF, long text clipped, formula-looking text marked).
//! `batch export` and the dashboard's batch page both take it from here.

use crate::jobs::batch::ExportRow;
use crate::reports::export::{ExportFormat, csv_text};
use crate::{Engine, EngineError};
use ampsm_core::id::short_id;
use ampsm_core::time::format_ms;
use ampsm_store::batches::{Batch, BatchCounts};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// The CSV/JSONL columns, in order.
const EXPORT_COLUMNS: &[&str] = &[
    "batch_id",
    "batch_name",
    "item_id",
    "seq",
    "item",
    "repo_path",
    "base_branch",
    "agent",
    "model",
    "status",
    "attempts",
    "merged",
    "session_id",
    "session_name",
    "branch",
    "error",
    "started_at",
    "ended_at",
    "duration_ms",
    "sessions",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_usd",
    "commits",
    "lines_added",
    "lines_removed",
];

/// A batch's results table, rendered.
#[derive(Debug, Clone)]
pub struct BatchTable {
    pub batch_id: String,
    pub batch_name: String,
    /// How many items (rows) it has.
    pub rows: usize,
    /// The table in the format asked for.
    pub text: String,
}

impl Engine {
    /// The results table of the batch `reference` names, in `format`.
    pub fn batch_results_table(
        &self,
        reference: &str,
        format: ExportFormat,
    ) -> Result<BatchTable, EngineError> {
        let (batch, rows) = self.batch_export_rows(reference)?;
        let counts = self.store.batch_counts(&batch.id)?;
        let text = render(&batch, &counts, &rows, format)?;
        Ok(BatchTable { batch_id: batch.id, batch_name: batch.name, rows: rows.len(), text })
    }

    /// Writes the results table to `out`: a file, or a folder (one that exists, or a path ending in '/'),
    /// which gets `batch-<name>-<id>.<format>`. Returns the table and the file written.
    pub fn write_batch_results_table(
        &self,
        reference: &str,
        format: ExportFormat,
        out: &Path,
    ) -> Result<(BatchTable, PathBuf), EngineError> {
        let table = self.batch_results_table(reference, format)?;
        let path = if out.is_dir() || out.as_os_str().to_string_lossy().ends_with('/') {
            std::fs::create_dir_all(out)
                .map_err(|source| EngineError::Io { path: out.to_path_buf(), source })?;
            let ext = format.extension();
            out.join(format!(
                "batch-{}-{}.{ext}",
                ampsm_core::slugify(&table.batch_name),
                short_id(&table.batch_id)
            ))
        } else {
            out.to_path_buf()
        };
        std::fs::write(&path, table.text.as_bytes())
            .map_err(|source| EngineError::Io { path: path.clone(), source })?;
        Ok((table, path))
    }
}

/// The table's text (see the module docs).
fn render(
    batch: &Batch,
    counts: &BatchCounts,
    rows: &[ExportRow],
    format: ExportFormat,
) -> Result<String, EngineError> {
    let bad = |e: String| {
        EngineError::Invalid(format!("cannot render the results of batch {}: {e}", short_id(&batch.id)))
    };
    let values: Vec<Value> = rows
        .iter()
        .map(|r| serde_json::to_value(r).map(times_as_text))
        .collect::<Result<_, _>>()
        .map_err(|e| bad(e.to_string()))?;
    let mut out = String::new();
    match format {
        ExportFormat::Json => {
            let batch = serde_json::to_value(batch).map(times_as_text).map_err(|e| bad(e.to_string()))?;
            let doc = json!({"batch": batch, "counts": counts, "items": values});
            out = serde_json::to_string_pretty(&doc).map_err(|e| bad(e.to_string()))?;
            out.push('\n');
        }
        ExportFormat::Jsonl => {
            for v in &values {
                let ordered: serde_json::Map<String, Value> = EXPORT_COLUMNS
                    .iter()
                    .map(|c| (c.to_string(), v.get(*c).cloned().unwrap_or(Value::Null)))
                    .collect();
                out.push_str(&Value::Object(ordered).to_string());
                out.push('\n');
            }
        }
        ExportFormat::Csv => {
            let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
            let io = |e: csv::Error| bad(e.to_string());
            w.write_record(EXPORT_COLUMNS).map_err(io)?;
            for v in &values {
                w.write_record(EXPORT_COLUMNS.iter().map(|c| csv_cell(v.get(*c)))).map_err(io)?;
            }
            let bytes = w.into_inner().map_err(|e| bad(e.to_string()))?;
            out = String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    Ok(out)
}

/// A JSON object with its times (`*_at` columns holding epoch milliseconds) as RFC 3339 text.
fn times_as_text(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        for (k, x) in m.iter_mut() {
            if let (true, Some(ms)) = (ampsm_store::metrics::is_time_column(k), x.as_i64()) {
                *x = Value::String(format_ms(ms));
            }
        }
    }
    v
}

/// One CSV field; absent values are empty, text follows the export engine's cell rules.
fn csv_cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => csv_text(s),
        Some(other) => other.to_string(),
    }
}

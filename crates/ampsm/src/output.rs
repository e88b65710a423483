//! Output helpers: JSON documents, aligned tables (colored only on a terminal), and small formatters.

use ampsm_core::SessionStatus;
use comfy_table::{ContentArrangement, Table, presets};
use owo_colors::OwoColorize;
use serde::Serialize;
use std::io::{IsTerminal, Write};

/// Whether stdout is a terminal and colors are wanted (`NO_COLOR` unset).
pub fn color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Prints one JSON document. The document is built in memory and written at once: stdout is line
/// buffered, and a write per line costs more than building the whole text.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> std::io::Result<()> {
    let mut buf = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    buf.push(b'\n');
    std::io::stdout().lock().write_all(&buf)
}

/// A table with the given header, no borders, aligned columns.
/// `row` as a JSON object with `extra` fields added (e.g. counts and liveness beside a stored row).
pub fn json_with<T: Serialize>(row: &T, extra: Vec<(&str, serde_json::Value)>) -> serde_json::Value {
    let mut v = serde_json::to_value(row).unwrap_or(serde_json::Value::Null);
    if let serde_json::Value::Object(m) = &mut v {
        for (k, x) in extra {
            m.insert(k.to_string(), x);
        }
    }
    v
}

pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(presets::NOTHING);
    t.set_content_arrangement(ContentArrangement::Disabled);
    let header: Vec<String> =
        header.iter().map(|h| if color() { h.bold().to_string() } else { h.to_string() }).collect();
    t.set_header(header);
    t
}

/// Prints a table, trimming the padding at line ends.
pub fn print_table(t: &Table) {
    let text = t.to_string();
    let mut buf = String::with_capacity(text.len());
    for line in text.lines() {
        buf.push_str(line.trim_end().strip_prefix(' ').unwrap_or(line.trim_end()));
        buf.push('\n');
    }
    let _ = std::io::stdout().lock().write_all(buf.as_bytes());
}

/// A session's status, colored on a terminal.
pub fn status_word(status: SessionStatus) -> String {
    let text = status.as_str();
    if !color() {
        return text.to_string();
    }
    match status {
        SessionStatus::Running => text.cyan().to_string(),
        SessionStatus::AwaitingInput => text.yellow().to_string(),
        SessionStatus::Error => text.red().to_string(),
        SessionStatus::Done => text.green().to_string(),
        SessionStatus::Idle => text.to_string(),
    }
}

/// `key: value` lines with aligned keys.
pub fn print_fields(fields: &[(&str, String)]) {
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = std::io::stdout().lock();
    for (k, v) in fields {
        let key = format!("{k:width$}");
        let key = if color() { key.bold().to_string() } else { key };
        let _ = writeln!(out, "{key}  {v}");
    }
}

/// A heading line.
pub fn heading(text: &str) {
    if color() {
        println!("{}", text.bold().underline());
    } else {
        println!("{text}");
    }
}

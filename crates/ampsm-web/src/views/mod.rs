//! The pages, one module per view; each handler asks the engine and renders with maud.

pub mod approvals;
pub mod batches;
pub mod bench;
pub mod browse;
pub mod export;
pub mod git;
pub mod interactive;
pub mod layout;
pub mod session;
pub mod sessions;
pub mod settings;

use crate::error::WebError;
use std::path::PathBuf;

/// What a "start" form's YAML is: a file the user named, or text pasted in the form.
pub enum YamlSource {
    File(PathBuf),
    /// Planned from the text itself (no file is written): errors say "the pasted YAML, line N".
    Pasted(String),
}

/// The YAML a "start" form gives: its file path when given, else the pasted text.
pub fn yaml_source(file: &str, yaml: &str, what: &str) -> Result<YamlSource, WebError> {
    if !file.trim().is_empty() {
        return Ok(YamlSource::File(PathBuf::from(file.trim())));
    }
    if yaml.trim().is_empty() {
        return Err(WebError::BadRequest(format!("give a {what} file path or paste the YAML")));
    }
    Ok(YamlSource::Pasted(yaml.to_string()))
}

/// A budget typed in a form: empty means none; else a positive amount in USD (a leading `$` is fine).
pub fn budget_field(text: &str) -> Result<Option<f64>, WebError> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    match t.trim_start_matches('$').parse::<f64>() {
        Ok(v) if ampsm_core::Money::from_usd(v).is_positive() => Ok(Some(v)),
        _ => Err(WebError::BadRequest(format!("budget must be a positive amount in USD, got {text:?}"))),
    }
}

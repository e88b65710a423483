//! The pages, one module per view; each handler asks the engine and renders with maud.

pub mod approvals;
pub mod batches;
pub mod bench;
pub mod export;
pub mod git;
pub mod interactive;
pub mod layout;
pub mod session;
pub mod sessions;
pub mod settings;

use crate::error::WebError;
use std::path::{Path, PathBuf};

/// The YAML file a "start" form names: its path when given, else the pasted text saved as a new
/// `<dir>/<prefix>-<random>.yaml` (relative paths in it then resolve against `dir`).
pub fn yaml_source(
    file: &str,
    yaml: &str,
    dir: &Path,
    prefix: &str,
    what: &str,
) -> Result<PathBuf, WebError> {
    if !file.trim().is_empty() {
        return Ok(PathBuf::from(file.trim()));
    }
    if yaml.trim().is_empty() {
        return Err(WebError::BadRequest(format!("give a {what} file path or paste the YAML")));
    }
    std::fs::create_dir_all(dir).map_err(|source| WebError::Io { path: dir.to_path_buf(), source })?;
    let p = dir.join(format!("{prefix}-{}.yaml", uuid::Uuid::new_v4().simple()));
    std::fs::write(&p, yaml.as_bytes()).map_err(|source| WebError::Io { path: p.clone(), source })?;
    Ok(p)
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

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
use crate::state::AppState;
use std::path::PathBuf;

/// The digest of the live mark of `topic` now (see [`ampsm_engine::reports::watch::digest`]); `None` when
/// it cannot be read (the page then only misses a change made while it loads). A blocking read: call it
/// from the engine's thread, before reading what the page shows.
pub fn live_mark_now(state: &AppState, topic: &str) -> Option<String> {
    use ampsm_engine::reports::watch::{WatchTopic, Watcher, digest};
    let topic: WatchTopic = topic.parse().ok()?;
    let watcher = Watcher::open(&state.inner.paths).ok()?;
    let mark = watcher.mark(&topic, &|id| state.failure(id)).ok()?;
    Some(digest(&mark))
}

/// The element the live script passes to `/live` (the page's mark), so that a change made between the
/// render and the stream's start is announced.
pub fn live_mark(mark: Option<&str>) -> maud::Markup {
    maud::html! { @if let Some(m) = mark { span #live-mark hidden data-mark=(m) {} } }
}

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

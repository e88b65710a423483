//! The adapters, one per agent, the lookup by name ([`adapter_for`]), and the helpers the credential
//! checks share (environment lookups, the XDG data directory, reading small JSON files).

pub mod amp;
pub mod claude;
pub mod codex;
pub mod command;
pub mod gemini;
pub mod offline;
pub mod opencode;

use crate::adapter::AgentAdapter;
use crate::error::AgentError;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Every agent name [`adapter_for`] knows, in the order shown to users.
pub const AGENT_NAMES: &[&str] = &["amp", "claude", "codex", "gemini", "opencode", "command", "offline"];

/// The adapter for an agent name (`amp`, `claude`, `codex`, `gemini`, `opencode`, `command`, `offline`).
pub fn adapter_for(name: &str) -> Result<Box<dyn AgentAdapter>, AgentError> {
    Ok(match name.trim().to_ascii_lowercase().as_str() {
        "amp" => Box::new(amp::AmpAdapter),
        "claude" | "claude-code" => Box::new(claude::ClaudeAdapter),
        "codex" => Box::new(codex::CodexAdapter),
        "gemini" => Box::new(gemini::GeminiAdapter),
        "opencode" => Box::new(opencode::OpenCodeAdapter),
        "command" => Box::new(command::CommandAdapter),
        "offline" => Box::new(offline::OfflineAdapter),
        _ => {
            return Err(AgentError::UnknownAgent { name: name.to_string(), valid: AGENT_NAMES.join(", ") });
        }
    })
}

/// Arguments longer than this go through stdin instead (Linux caps one argument at 128 KiB).
pub(crate) const MAX_PROMPT_ARG_BYTES: usize = 100 * 1024;

/// The program to run: the override, or the agent's default name (looked up on PATH at spawn).
pub(crate) fn program_or(spec_program: &Option<PathBuf>, default: &str) -> PathBuf {
    match spec_program {
        Some(p) if !p.as_os_str().is_empty() => p.clone(),
        _ => PathBuf::from(default),
    }
}

/// The first of `keys` set to a non-blank value.
pub(crate) fn first_env(env: &dyn Fn(&str) -> Option<String>, keys: &[&'static str]) -> Option<&'static str> {
    keys.iter().copied().find(|k| env(k).is_some_and(|v| !v.trim().is_empty()))
}

/// A directory from an environment variable when it is set to an absolute path, else `fallback`.
pub(crate) fn dir_from_env(env: &dyn Fn(&str) -> Option<String>, key: &str, fallback: PathBuf) -> PathBuf {
    match env(key) {
        Some(v) if Path::new(&v).is_absolute() => PathBuf::from(v),
        _ => fallback,
    }
}

/// `$XDG_DATA_HOME`, or `~/.local/share`.
pub(crate) fn data_home(env: &dyn Fn(&str) -> Option<String>, home: &Path) -> PathBuf {
    dir_from_env(env, "XDG_DATA_HOME", home.join(".local").join("share"))
}

/// A small JSON file's content; `None` when it is missing, too big (over 1 MiB) or not JSON.
pub(crate) fn read_small_json(path: &Path) -> Option<Value> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > 1 << 20 {
        return None;
    }
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Whether a JSON value holds some non-empty credential material (a non-empty object or string).
pub(crate) fn has_material(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.values().any(has_material),
        Value::String(s) => !s.trim().is_empty(),
        Value::Array(a) => a.iter().any(has_material),
        Value::Number(_) | Value::Bool(_) | Value::Null => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_has_an_adapter_that_says_its_name() {
        for name in AGENT_NAMES {
            let a = adapter_for(name).unwrap();
            assert_eq!(a.name(), *name);
        }
    }

    #[test]
    fn unknown_name_lists_the_valid_ones() {
        let err = adapter_for("aider").err().unwrap().to_string();
        assert!(err.contains("`aider`"), "{err}");
        for name in AGENT_NAMES {
            assert!(err.contains(name), "{err}");
        }
    }
}

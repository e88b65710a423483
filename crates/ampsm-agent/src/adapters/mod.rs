//! The adapters, one per agent, the lookup by name in the registry ([`adapter_for`]), finding a program on PATH
//! ([`find_program`]), and the helpers the credential checks share (environment lookups, the XDG data
//! directory, reading small JSON, JSONC and `.env` files).

pub mod amp;
pub mod claude;
pub mod codex;
pub mod command;
pub mod gemini;
pub mod offline;
pub mod opencode;

use crate::adapter::AgentAdapter;
use crate::error::AgentError;
use ampsm_core::agents::{agent_list, find_agent};
use serde_json::Value;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The adapter for an agent of the registry ([`ampsm_core::agents::AGENTS`]), by its name or an alias
/// (any case).
pub fn adapter_for(name: &str) -> Result<Box<dyn AgentAdapter>, AgentError> {
    find_agent(name)
        .and_then(|info| construct(info.name))
        .ok_or_else(|| AgentError::UnknownAgent { name: name.to_string(), valid: agent_list() })
}

/// The adapter of each registered agent, by its registry name: one line per agent.
fn construct(name: &str) -> Option<Box<dyn AgentAdapter>> {
    Some(match name {
        "amp" => Box::new(amp::AmpAdapter),
        "claude" => Box::new(claude::ClaudeAdapter),
        "codex" => Box::new(codex::CodexAdapter),
        "gemini" => Box::new(gemini::GeminiAdapter),
        "opencode" => Box::new(opencode::OpenCodeAdapter),
        "command" => Box::new(command::CommandAdapter),
        "offline" => Box::new(offline::OfflineAdapter),
        _ => return None,
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

/// The program's path: as given when it has a slash (if it is an executable file), else the first
/// executable match in the directories of `path_var` (a `PATH` value).
pub fn find_program(program: &Path, path_var: Option<&OsStr>) -> Option<PathBuf> {
    let executable =
        |p: &Path| p.is_file() && p.metadata().map(|m| m.permissions().mode() & 0o111 != 0).unwrap_or(false);
    if program.as_os_str().is_empty() {
        return None;
    }
    if program.components().count() > 1 {
        return executable(program).then(|| program.to_path_buf());
    }
    std::env::split_paths(path_var?)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
}

/// Whether a switch variable is on: `1`, `true`, `yes` or `on` (any case). `0`, `false` and blanks are off.
pub(crate) fn truthy(value: Option<&str>) -> bool {
    value.is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
}

/// A small file's text (at most 1 MiB); `None` when it is missing, too big or not UTF-8.
pub(crate) fn read_small_text(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > 1 << 20 {
        return None;
    }
    std::fs::read_to_string(path).ok()
}

/// The variables of a `.env` file (`KEY=value`, optional `export `, quotes and `#` comments), or `None`
/// when it cannot be read. The values may be secrets: callers only test them.
pub(crate) fn read_dotenv(path: &Path) -> Option<BTreeMap<String, String>> {
    let text = read_small_text(path)?;
    let mut vars = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        if line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else { continue };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let value = value.trim();
        let value = match value.chars().next() {
            Some(q @ ('"' | '\'')) => value[1..].split(q).next().unwrap_or(""),
            _ => value.split(" #").next().unwrap_or("").trim(),
        };
        vars.insert(key.to_string(), value.to_string());
    }
    Some(vars)
}

/// JSON with comments (`//`, `/* */`) and trailing commas, as JSONC config files allow, made plain JSON.
pub(crate) fn strip_jsonc(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut in_string = false;
    while i < chars.len() {
        let c = chars[i];
        if in_string {
            out.push(c);
            if c == '\\' && i + 1 < chars.len() {
                out.push(chars[i + 1]);
                i += 1;
            } else if c == '"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        match (c, chars.get(i + 1)) {
            ('"', _) => {
                in_string = true;
                out.push(c);
                i += 1;
            }
            ('/', Some('/')) => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            ('/', Some('*')) => {
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    i += 1;
                }
                i += 2;
            }
            (',', _) => {
                // A comma followed only by blanks (or comments) and a closing bracket is dropped.
                let rest: String = chars[i + 1..].iter().collect();
                let next = strip_jsonc_prefix(&rest);
                if !matches!(next.chars().next(), Some('}' | ']')) {
                    out.push(c);
                }
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// `text` without its leading blanks and comments.
fn strip_jsonc_prefix(text: &str) -> &str {
    let mut rest = text.trim_start();
    loop {
        if let Some(r) = rest.strip_prefix("//") {
            rest = r.split_once('\n').map_or("", |(_, after)| after).trim_start();
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.split_once("*/").map_or("", |(_, after)| after).trim_start();
        } else {
            return rest;
        }
    }
}

/// A small JSON or JSONC file's content; `None` when it is missing, too big or not JSON(C).
pub(crate) fn read_small_jsonc(path: &Path) -> Option<Value> {
    let text = read_small_text(path)?;
    serde_json::from_str(&text).ok().or_else(|| serde_json::from_str(&strip_jsonc(&text)).ok())
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
    use ampsm_core::agents::agent_names;

    #[test]
    fn every_name_has_an_adapter_that_says_its_name() {
        for name in agent_names() {
            let a = adapter_for(name).unwrap();
            assert_eq!(a.name(), name);
        }
    }

    #[test]
    fn programs_are_found_on_path_or_at_their_path() {
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("tool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        let path = std::env::join_paths([Path::new("/nonexistent"), dir.path()]).unwrap();
        // Not executable yet.
        assert_eq!(find_program(Path::new("tool"), Some(&path)), None);
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_program(Path::new("tool"), Some(&path)), Some(tool.clone()));
        assert_eq!(find_program(&tool, None), Some(tool.clone()));
        assert_eq!(find_program(&dir.path().join("other"), Some(&path)), None);
        assert_eq!(find_program(Path::new("tool"), None), None);
        assert_eq!(find_program(Path::new(""), Some(&path)), None);
    }

    #[test]
    fn not_installed_names_the_program_the_key_and_the_install_command() {
        let codex = adapter_for("codex").unwrap();
        let mut spec = crate::RunSpec::new("p", "/w");
        spec.program = Some(PathBuf::from("ampsm-no-such-codex"));
        spec.env = vec![("PATH".into(), "/nonexistent".into())];
        let err = codex.locate_program(&spec).unwrap_err().to_string();
        assert!(err.contains("codex is not installed"), "{err}");
        assert!(err.contains("`ampsm-no-such-codex` was not found on PATH"), "{err}");
        assert!(err.contains("npm install -g @openai/codex") && err.contains("agents.codex.path"), "{err}");
        assert!(!err.contains('\n'));
        spec.program = Some(PathBuf::from("/nonexistent/amp"));
        let err = adapter_for("amp").unwrap().locate_program(&spec).unwrap_err().to_string();
        assert!(err.contains("`/nonexistent/amp` does not exist or is not executable"), "{err}");
        assert!(err.contains("@ampcode/cli") && err.contains("amp.path"), "{err}");
        let hints = [
            ("claude", "npm install -g @anthropic-ai/claude-code"),
            ("gemini", "npm install -g @google/gemini-cli"),
            ("opencode", "npm install -g opencode-ai"),
        ];
        for (name, hint) in hints {
            assert!(adapter_for(name).unwrap().install_hint().unwrap().contains(hint), "{name}");
        }
        // `command` needs a program; `offline` is the running executable.
        let command = adapter_for("command").unwrap();
        assert!(command.locate_program(&spec).is_err());
        spec.program = Some(PathBuf::from("sh"));
        spec.env = vec![("PATH".into(), "/bin:/usr/bin".into())];
        assert!(command.locate_program(&spec).is_ok());
        assert!(adapter_for("offline").unwrap().locate_program(&crate::RunSpec::new("p", "/w")).is_ok());
    }

    #[test]
    fn only_amp_refuses_to_run_without_credentials() {
        for name in agent_names() {
            assert_eq!(adapter_for(name).unwrap().credentials_required(), name == "amp", "{name}");
        }
    }

    #[test]
    fn dotenv_and_jsonc_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let env = dir.path().join(".env");
        std::fs::write(&env, "# c\nexport A=\"x y\"\nB = 'q' \nC=plain # note\nD=\nnot a line\n").unwrap();
        let vars = read_dotenv(&env).unwrap();
        assert_eq!(vars["A"], "x y");
        assert_eq!(vars["B"], "q");
        assert_eq!(vars["C"], "plain");
        assert_eq!(vars["D"], "");
        assert_eq!(vars.len(), 4);
        let text = "{\n // c\n \"a\": \"http://x//y\", /* b */ \"l\": [1, 2,],\n}";
        let v: Value = serde_json::from_str(&strip_jsonc(text)).unwrap();
        assert_eq!(v["a"], "http://x//y");
        assert_eq!(v["l"], serde_json::json!([1, 2]));
        assert!(truthy(Some("TRUE")) && truthy(Some("1")) && !truthy(Some("0")) && !truthy(Some("false")));
        assert!(!truthy(None) && !truthy(Some("")));
    }

    #[test]
    fn unknown_name_lists_the_valid_ones() {
        let err = adapter_for("aider").err().unwrap().to_string();
        assert!(err.contains("`aider`"), "{err}");
        for name in agent_names() {
            assert!(err.contains(name), "{err}");
        }
    }
}

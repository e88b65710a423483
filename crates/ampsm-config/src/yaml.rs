//! YAML parsing with one-line errors that name the file, line and column (through serde-saphyr, which
//! also rejects duplicate keys).

use crate::error::ConfigError;
use serde::de::DeserializeOwned;
use std::path::Path;

/// Parses `text` (the content of `path`) into `T`.
pub fn parse<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    serde_saphyr::from_str::<T>(text).map_err(|e| invalid(path, &e))
}

/// Turns a serde-saphyr error into [`ConfigError::Invalid`] without the multi-line snippet.
pub fn invalid(path: &Path, err: &serde_saphyr::Error) -> ConfigError {
    let (line, column) = err.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
    let mut message = err.without_snippet().to_string();
    if line > 0 {
        // The message ends with " at line L, column C"; the position is shown once, in front.
        for suffix in [format!(" at line {line}, column {column}"), format!(" at line {line}")] {
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_string();
                break;
            }
        }
    }
    let message = message.replace(", set DuplicateKeyPolicy in Options if acceptable", "");
    ConfigError::Invalid { path: path.to_path_buf(), line, column, message }
}

/// The 1-based line where the dotted key `dotted` is written, found by a scan that follows indentation
/// (else the first line naming its last segment); 0 when not found. Used to point at unknown keys and
/// at values serde cannot check.
pub fn line_of_key(text: &str, dotted: &str) -> u64 {
    let parts: Vec<&str> = dotted.split('.').collect();
    // The keys enclosing each line, by indentation: a match of the whole dotted path wins.
    let mut open: Vec<(usize, String)> = Vec::new();
    let mut last_segment_line = 0;
    for (i, line) in text.lines().enumerate() {
        let Some(key) = key_of(line) else { continue };
        let indent = line.len() - line.trim_start().len();
        while open.last().is_some_and(|(d, _)| *d >= indent) {
            open.pop();
        }
        open.push((indent, key.to_string()));
        if open.len() == parts.len() && open.iter().zip(&parts).all(|((_, k), p)| k == p) {
            return (i + 1) as u64;
        }
        if last_segment_line == 0 && parts.last() == Some(&key) {
            last_segment_line = (i + 1) as u64;
        }
    }
    last_segment_line
}

/// The key a YAML line starts (`key:` or `- key:`, quoted or not), if any.
fn key_of(line: &str) -> Option<&str> {
    let t = line.trim_start().trim_start_matches("- ");
    if t.starts_with('#') {
        return None;
    }
    let quoted = t.starts_with(['"', '\'']);
    let t = t.trim_start_matches(['"', '\'']);
    let end = t.find(|c: char| c == ':' || (quoted && (c == '"' || c == '\'')))?;
    let key = &t[..end];
    let rest = t[end..].trim_start_matches(['"', '\'']);
    (rest.starts_with(':') && !key.is_empty() && !key.contains(' ')).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct T {
        flag: bool,
    }

    #[test]
    fn errors_are_one_line_with_position() {
        let err = parse::<T>(&PathBuf::from("/x/c.yaml"), "flag: 1\n").unwrap_err().to_string();
        assert_eq!(err, "/x/c.yaml:1:7: invalid boolean");
        let err = parse::<T>(&PathBuf::from("c.yaml"), "flag: {\n").unwrap_err().to_string();
        assert!(err.starts_with("c.yaml:1:7: "), "{err}");
        assert!(!err.contains('\n'));
    }

    #[test]
    fn finds_key_lines() {
        assert_eq!(line_of_key("git:\n  colour: x\n", "git.colour"), 2);
        assert_eq!(line_of_key("git:\n", "nope"), 0);
        let text = "session:\n  budget_usd: 1\n# bench:\nbench:\n  \"budget_usd\": 0\n";
        assert_eq!(line_of_key(text, "bench.budget_usd"), 5);
        assert_eq!(line_of_key(text, "session.budget_usd"), 2);
        assert_eq!(line_of_key("items:\n  - name: a\n    prompt: p\n", "items.prompt"), 3);
    }
}

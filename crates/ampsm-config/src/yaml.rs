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

/// The 1-based line where `key` (the last segment of a dotted path) is written, found by a plain scan;
/// 0 when not found. Used to point at unknown keys.
pub fn line_of_key(text: &str, dotted: &str) -> u64 {
    let last = dotted.rsplit('.').next().unwrap_or(dotted);
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start().trim_start_matches("- ");
        let t = t.trim_start_matches(['"', '\'']);
        if let Some(rest) = t.strip_prefix(last) {
            let rest = rest.trim_start_matches(['"', '\'']);
            if rest.trim_start().starts_with(':') {
                return (i + 1) as u64;
            }
        }
    }
    0
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
    }
}

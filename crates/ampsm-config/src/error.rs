//! Errors of configuration files: each names the file and, where known, the line and column.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists but cannot be read.
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// The file cannot be written.
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    /// YAML syntax or a value of the wrong type, with its position.
    #[error("{}: {message}", place(path, *line, *column))]
    Invalid { path: PathBuf, line: u64, column: u64, message: String },
    /// A key that `config get|set` does not know.
    #[error("unknown config key {key:?}{hint}")]
    UnknownKey { key: String, hint: String },
    /// A value given to `config set` that does not fit the key.
    #[error("invalid value for {key}: {message}")]
    BadValue { key: String, message: String },
    /// The home folder cannot be determined.
    #[error("cannot find the home folder: set AMPSM_HOME or HOME")]
    NoHome,
}

/// The name text with no file goes by in errors and warnings (YAML pasted in the dashboard).
pub const PASTED: &str = "the pasted YAML";

/// Where an error is: `file:line:column` for a file, `the pasted YAML, line N` for pasted text (whose
/// column says little to someone looking at a text box).
pub fn place(path: &Path, line: u64, column: u64) -> String {
    if path == Path::new(PASTED) {
        return match line {
            0 => PASTED.to_string(),
            l => format!("{PASTED}, line {l}"),
        };
    }
    match (line, column) {
        (0, _) => path.display().to_string(),
        (l, 0) => format!("{}:{l}", path.display()),
        (l, c) => format!("{}:{l}:{c}", path.display()),
    }
}

impl ConfigError {
    /// Always [`ampsm_core::ErrorKind::BadInput`]: a configuration problem is the user's to fix, in the
    /// file named or in the environment (an unreadable or unwritable file included).
    pub fn kind(&self) -> ampsm_core::ErrorKind {
        ampsm_core::ErrorKind::BadInput
    }
}

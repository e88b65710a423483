//! Pieces shared by the YAML files a user writes for runs (batch and bench files): durations as written,
//! absolute paths, and positioned errors.

use crate::error::ConfigError;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};
use std::path::{Path, PathBuf};

/// A duration as written: text such as `10m`, or a number of seconds.
#[derive(Debug, Clone)]
pub(crate) struct DurationText(pub(crate) String);

impl<'de> Deserialize<'de> for DurationText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = DurationText;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a duration such as 90s, 10m or 1h30m, or a number of seconds")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationText, E> {
                Ok(DurationText(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DurationText, E> {
                Ok(DurationText(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DurationText, E> {
                Ok(DurationText(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<DurationText, E> {
                Ok(DurationText(format!("{v}s")))
            }
        }
        d.deserialize_any(DurationVisitor)
    }
}

impl DurationText {
    /// The run timeout it means, through the one duration parser (at most
    /// [`ampsm_core::duration::MAX_DURATION`]); zero is refused, as a run that cannot start.
    pub(crate) fn timeout(&self) -> Result<std::time::Duration, String> {
        match ampsm_core::parse_duration(&self.0)? {
            d if d.is_zero() => Err("must be longer than zero".into()),
            d => Ok(d),
        }
    }
}

/// `p` made absolute against the current folder.
pub(crate) fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().map(|d| d.join(p)).unwrap_or_else(|_| p.to_path_buf())
    }
}

/// Reads a run file the user named: its absolute path (anchoring the relative paths inside it) and text.
pub(crate) fn read_spec(path: &Path) -> Result<(PathBuf, String), ConfigError> {
    let file = absolute(path);
    let text =
        std::fs::read_to_string(&file).map_err(|source| ConfigError::Read { path: file.clone(), source })?;
    Ok((file, text))
}

/// An error at a place of a file.
pub(crate) fn invalid(path: &Path, line: u64, column: u64, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { path: path.to_path_buf(), line, column, message: message.into() }
}

/// Why a relative path of pasted YAML is refused.
pub(crate) fn relative_in_pasted(written: &str) -> String {
    format!(
        "{written:?} is a relative path, and pasted YAML has no folder to resolve it against; write an absolute path"
    )
}

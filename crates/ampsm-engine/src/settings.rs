//! The config for the front ends' settings pages: its text to edit with every secret hidden (by key name
//! and by what it looks like, see [`ampsm_config::secrets`]), its keys and values for listings (masked the
//! same way), and saving an edited text: hidden values put back, the same parser and checks as loading
//! (`amp-sessions config`), refused when the file changed since it was read, written atomically.

use crate::{Engine, EngineError};
use ampsm_config::secrets::{self, HIDDEN, mask_config_text, mask_value, unmask};
use ampsm_config::{ConfigError, ConfigWarning};
use serde::Serialize;
use std::hash::{Hash, Hasher};

/// The config file as a settings page shows it for editing.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigText {
    pub path: String,
    /// The file's text with each secret replaced by `«hidden:N»`.
    pub text: String,
    /// How many values are hidden.
    pub hidden: usize,
    /// Names the file's text as read; saving refuses when the file no longer has it.
    pub version: String,
    /// Whether the file exists (else the defaults apply and saving creates it).
    pub exists: bool,
}

/// What saving did.
#[derive(Debug, Clone, Serialize)]
pub struct SavedConfig {
    pub path: String,
    /// Unknown keys and old spellings, as loading reports them (the text was saved).
    pub warnings: Vec<String>,
}

fn version_of(text: &str) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    format!("{:016x}-{}", h.finish(), text.len())
}

impl Engine {
    fn config_file_text(&self) -> Result<(String, bool), EngineError> {
        let path = self.config_path();
        match std::fs::read_to_string(path) {
            Ok(t) => Ok((t, true)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((String::new(), false)),
            Err(source) => Err(ConfigError::Read { path: path.to_path_buf(), source }.into()),
        }
    }

    /// The config file's text with its secrets hidden, to edit (see the module docs).
    pub fn config_text(&self) -> Result<ConfigText, EngineError> {
        let (text, exists) = self.config_file_text()?;
        let masked = mask_config_text(&text);
        Ok(ConfigText {
            path: self.config_path().display().to_string(),
            hidden: masked.secrets.len(),
            text: masked.text,
            version: version_of(&text),
            exists,
        })
    }

    /// Every config key with its effective value as text, secrets hidden: values of secret keys
    /// entirely, the secret-looking parts of the others.
    pub fn config_entries_masked(&self) -> Vec<(String, String)> {
        self.config()
            .list()
            .into_iter()
            .map(|(k, v)| {
                let text = match v {
                    serde_json::Value::Null => String::new(),
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                let shown = if ampsm_config::config::is_secret_key(&k) && !text.is_empty() {
                    HIDDEN.to_string()
                } else {
                    mask_value(&text)
                };
                (k, shown)
            })
            .collect()
    }

    /// Saves an edited config text (from [`Engine::config_text`], `version` as it gave it): hidden
    /// values are put back, the result is checked as `amp-sessions config` loads it, and written
    /// atomically. Nothing is written when a check fails or the file changed since.
    pub fn save_config_text(&self, edited: &str, version: &str) -> Result<SavedConfig, EngineError> {
        let path = self.config_path().to_path_buf();
        let (now, _) = self.config_file_text()?;
        let invalid = |line: u64, message: String| ConfigError::Invalid {
            path: path.clone(),
            line,
            column: 0,
            message,
        };
        if version_of(&now) != version {
            return Err(invalid(
                0,
                "the file changed since this page was loaded (another `config set`?); nothing was written: \
                 reload the page and redo the change"
                    .into(),
            )
            .into());
        }
        let hidden = secrets::mask_config_text(&now).secrets;
        // Browsers send text areas with CRLF line ends.
        let edited = edited.replace("\r\n", "\n");
        let text = unmask(&edited, &hidden).map_err(|(line, m)| invalid(line, m))?;
        let (_, warnings) = ampsm_config::config::save_text(&path, &now, &text)?;
        Ok(SavedConfig {
            path: path.display().to_string(),
            warnings: warnings.iter().map(ConfigWarning::to_string).collect(),
        })
    }
}

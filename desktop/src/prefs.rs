//! What the desktop app remembers between starts, in `desktop.json` beside the database (`$AMPSM_HOME`,
//! else `~/.ampsm`): the last page shown and whether runs go on when the window closes (asked once). The
//! window's size and position are kept by Tauri's window-state plugin. A file that cannot be read is
//! reported in one line naming it, and the app starts with the defaults; nothing in it is lost until the
//! app writes it again.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The remembered settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Prefs {
    /// The dashboard path (with its query) shown last, such as `/s/<id>/git`.
    pub last_path: Option<String>,
    /// `None` until the user answered: runs started from the window keep running when it closes
    /// (`true`), or are stopped the way Ctrl-C stops them (`false`, the default answer).
    pub keep_runs_on_close: Option<bool>,
}

/// Where the prefs of the data under `home` live.
pub fn file_in(home: &Path) -> PathBuf {
    home.join("desktop.json")
}

impl Prefs {
    /// Reads `path`; a missing file gives the defaults, a bad one the defaults and a one-line warning.
    pub fn load(path: &Path) -> (Prefs, Option<String>) {
        match std::fs::read_to_string(path) {
            Ok(text) => match serde_json::from_str::<Prefs>(&text) {
                Ok(p) => (p.checked(), None),
                Err(e) => (
                    Prefs::default(),
                    Some(format!(
                        "{}: line {}, column {}: {e}; starting with the defaults",
                        path.display(),
                        e.line(),
                        e.column()
                    )),
                ),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Prefs::default(), None),
            Err(e) => {
                (Prefs::default(), Some(format!("{}: {e}; starting with the defaults", path.display())))
            }
        }
    }

    /// Writes `path` whole through a temporary file, so that a crash never leaves half of it.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text + "\n")
            .and_then(|_| std::fs::rename(&tmp, path))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// A remembered path is kept only when it is one of the dashboard's own (starts with one `/`).
    fn checked(mut self) -> Prefs {
        if self.last_path.as_deref().is_some_and(|p| !is_dashboard_path(p)) {
            self.last_path = None;
        }
        self
    }
}

/// `/…` but not `//…` (which a browser reads as another host).
pub fn is_dashboard_path(p: &str) -> bool {
    p.starts_with('/') && !p.starts_with("//")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_gives_defaults_and_a_saved_file_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = file_in(dir.path());
        assert_eq!(Prefs::load(&path), (Prefs::default(), None));
        let p = Prefs { last_path: Some("/s/abc/git".into()), keep_runs_on_close: Some(true) };
        p.save(&path).unwrap();
        assert_eq!(Prefs::load(&path), (p, None));
    }

    #[test]
    fn a_bad_file_is_named_with_its_line_and_gives_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = file_in(dir.path());
        std::fs::write(&path, "{\n  \"keep_runs_on_close\": \"maybe\"\n}\n").unwrap();
        let (p, warning) = Prefs::load(&path);
        assert_eq!(p, Prefs::default());
        let w = warning.unwrap();
        assert!(w.contains("desktop.json: line 2"), "{w}");
        // The file is left as it was.
        assert!(std::fs::read_to_string(&path).unwrap().contains("maybe"));
    }

    #[test]
    fn a_path_to_another_host_is_not_restored() {
        let dir = tempfile::tempdir().unwrap();
        let path = file_in(dir.path());
        std::fs::write(&path, r#"{"last_path": "//evil.example/x"}"#).unwrap();
        assert_eq!(Prefs::load(&path).0.last_path, None);
        std::fs::write(&path, r#"{"last_path": "/batches"}"#).unwrap();
        assert_eq!(Prefs::load(&path).0.last_path.as_deref(), Some("/batches"));
    }
}

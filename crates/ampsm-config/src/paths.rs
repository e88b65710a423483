//! The folders and files of amp-sessions: `~/.ampsm/` (or `AMPSM_HOME`), the config file, the database
//! (`AMPSM_DB_PATH` overrides), worktrees, locks and logs.

use crate::error::ConfigError;
use std::path::{Path, PathBuf};

/// Resolved locations. Nothing is created by resolving; [`Paths::ensure_home`] creates the home folder.
#[derive(Debug, Clone)]
pub struct Paths {
    pub home: PathBuf,
    pub config: PathBuf,
    pub db: PathBuf,
    pub default_worktree_root: PathBuf,
    pub locks: PathBuf,
    pub logs: PathBuf,
}

impl Paths {
    /// From the environment: `AMPSM_HOME` (else `$HOME/.ampsm`) and `AMPSM_DB_PATH`.
    pub fn from_env() -> Result<Paths, ConfigError> {
        let home = match std::env::var_os("AMPSM_HOME").filter(|v| !v.is_empty()) {
            Some(h) => absolute(Path::new(&h)),
            None => {
                let user_home =
                    std::env::var_os("HOME").filter(|v| !v.is_empty()).ok_or(ConfigError::NoHome)?;
                PathBuf::from(user_home).join(".ampsm")
            }
        };
        let db = std::env::var_os("AMPSM_DB_PATH").filter(|v| !v.is_empty()).map(|p| absolute(Path::new(&p)));
        Ok(Paths::with_home(home, db))
    }

    /// Locations under `home`, with an optional database path.
    pub fn with_home(home: PathBuf, db: Option<PathBuf>) -> Paths {
        Paths {
            config: home.join("config.yaml"),
            db: db.unwrap_or_else(|| home.join("sessions.db")),
            default_worktree_root: home.join("worktrees"),
            locks: home.join("locks"),
            logs: home.join("logs"),
            home,
        }
    }

    /// Creates the home folder (and its `locks/` and `logs/`) when missing.
    pub fn ensure_home(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.home)?;
        std::fs::create_dir_all(&self.locks)?;
        std::fs::create_dir_all(&self.logs)?;
        Ok(())
    }
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().map(|d| d.join(p)).unwrap_or_else(|_| p.to_path_buf())
    }
}

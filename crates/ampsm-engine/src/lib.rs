//! The engine of amp-sessions: everything the CLI, the dashboard and the batch/bench runners do goes
//! through [`Engine`]. It owns the store, the git work and the agent processes, and keeps the principles:
//! never lose work, never touch the user's checkout, crash-safe, bounded.
//!
//! Its modules follow what it does: [`sessions`] (make, set up, remove, repair, clean), [`runs`] (an
//! agent run with its budget, permissions, approvals, stop and output), [`review`] (diffs, commits,
//! rebase, undo and merge), [`reports`] (metrics, exports, live marks), and [`jobs`] (batches and
//! benchmark runs on one worker pool, their background runners). [`reads`] and [`records`] are what front
//! ends read; [`notify`], [`process`] and [`health`] serve them all.

pub mod error;
pub mod health;
pub mod jobs;
pub mod notify;
pub mod process;
pub mod reads;
pub mod records;
pub mod reports;
pub mod review;
pub mod runs;
pub mod sessions;
pub mod settings;

pub use error::EngineError;
pub use reads::SessionQuery;
pub use runs::interrupt::Interrupt;
pub use runs::iterate::{IterateRequest, IterationReport};
pub use sessions::repair::RepairReport;
pub use sessions::{BudgetChange, CreateSession, RemoveOutcome, RepoInfo, SessionBudget, SessionDetails};

use ampsm_config::{Config, ConfigWarning, Paths};
use ampsm_store::Store;

/// The engine: resolved paths, the loaded config and an open store. Front ends hold one and call its
/// methods; its parts stay inside (the store's connection, the paths of the database and logs).
pub struct Engine {
    pub(crate) paths: Paths,
    pub(crate) config: Config,
    /// Warnings found while loading the config (unknown keys).
    pub(crate) config_warnings: Vec<ConfigWarning>,
    pub(crate) store: Store,
    /// What the start-up repair pass changed.
    pub(crate) startup_repair: RepairReport,
}

impl Engine {
    /// Opens the engine from the environment (`AMPSM_HOME`, `AMPSM_DB_PATH`): loads the config, opens (and
    /// migrates) the store, and reconciles what a crash may have left ([`Engine::repair_quick`]).
    pub fn open() -> Result<Engine, EngineError> {
        let paths = Paths::from_env()?;
        Engine::open_at(paths)
    }

    /// Opens the engine on explicit paths.
    pub fn open_at(paths: Paths) -> Result<Engine, EngineError> {
        let loaded = Config::load(&paths.config)?;
        paths.ensure_home().map_err(|source| EngineError::Io { path: paths.home.clone(), source })?;
        let store = Store::open(&paths.db)?;
        let mut engine = Engine {
            paths,
            config: loaded.config,
            config_warnings: loaded.warnings,
            store,
            startup_repair: RepairReport::default(),
        };
        engine.startup_repair = engine.repair_quick()?;
        Ok(engine)
    }

    /// The loaded config (read only: `config set` writes the file through `ampsm-config`).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Warnings found while loading the config (unknown keys, deprecated settings).
    pub fn config_warnings(&self) -> &[ConfigWarning] {
        &self.config_warnings
    }

    /// The config file this engine read (it may not exist: then the defaults apply).
    pub fn config_path(&self) -> &std::path::Path {
        &self.paths.config
    }

    /// What the start-up repair pass changed when this engine was opened.
    pub fn startup_repair(&self) -> &RepairReport {
        &self.startup_repair
    }
}

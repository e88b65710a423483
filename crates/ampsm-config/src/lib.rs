//! Where amp-sessions keeps its files (`~/.ampsm`, `AMPSM_HOME`, `AMPSM_DB_PATH`) and what `config.yaml`
//! may say: loading with file/line/column errors, warnings for unknown keys, and `get`/`set`/`list` of
//! dotted keys. Batch and benchmark YAML schemas live here too, because they share the error reporting.

pub mod batch;
pub mod bench;
pub mod config;
pub mod error;
pub mod paths;
pub mod secrets;
mod spec;
pub mod yaml;

pub use config::{AgentConfig, Config, ConfigWarning, LoadedConfig};
pub use error::ConfigError;
pub use paths::Paths;

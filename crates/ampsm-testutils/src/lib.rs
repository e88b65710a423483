//! Test utilities for amp-sessions: fixture git repos, a fake agent CLI that
//! speaks each vendor's stream format, a scripted model server for driving the
//! real Claude Code and Codex CLIs offline, the test world of the binary's
//! tests, and the outside tools some tests need (`#[requires(tool)]`).

pub mod agents;
mod http;
pub mod kube_double;
pub mod model_server;
pub mod real_cli;
pub mod repo;
pub mod seed;
pub mod slurm;
pub mod tools;
pub mod world;

pub use agents::{fake_agent_path, install_fake_agent_as, scenario_path, scenarios_dir, workspace_root};
pub use ampsm_test_macros::requires;
pub use model_server::{ModelServer, RecordedRequest, Script, Turn, Usage};
pub use real_cli::{claude_offline_env, codex_config_toml, codex_offline_env, write_codex_home};
pub use repo::{git, init_repo, temp_home};
pub use slurm::SlurmCluster;
pub use tools::{Tool, require};
pub use world::{Program, World, ctrl_c};

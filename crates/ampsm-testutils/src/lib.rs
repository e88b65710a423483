//! Test utilities for amp-sessions: fixture git repos, a fake agent CLI that
//! speaks each vendor's stream format, a scripted model server for driving the
//! real Claude Code and Codex CLIs offline, and helpers to locate those CLIs.

pub mod agents;
pub mod model_server;
pub mod real_cli;
pub mod repo;

pub use agents::{
    ci_python, fake_agent_path, in_ci, install_fake_agent_as, missing_tool, npm_agent_bin, python3_available,
    scenario_path, scenarios_dir, workspace_root,
};
pub use model_server::{ModelServer, RecordedRequest, Script, Turn, Usage};
pub use real_cli::{claude_offline_env, codex_config_toml, codex_offline_env, write_codex_home};
pub use repo::{git, init_repo, temp_home};

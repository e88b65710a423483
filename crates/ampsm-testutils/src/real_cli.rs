//! Environment and config for running the real Claude Code and Codex CLIs
//! offline against a [`ModelServer`](crate::ModelServer).
//!
//! Both CLIs are pointed at the server on 127.0.0.1 and kept away from the
//! network and from the real user's files:
//! - Claude Code: `ANTHROPIC_BASE_URL` = server URL, `ANTHROPIC_API_KEY`, a
//!   temporary `HOME` and `CLAUDE_CONFIG_DIR`, telemetry and nonessential
//!   traffic off, and `IS_SANDBOX=1` so `--dangerously-skip-permissions` is
//!   accepted when running as root.
//! - Codex: a temporary `CODEX_HOME` whose `config.toml` selects a custom
//!   provider `mock` with `base_url` = server URL + `/v1` and
//!   `wire_api = "responses"`, retries off, update checks and analytics off;
//!   the key comes from `OPENAI_API_KEY`.

use std::io;
use std::path::Path;

/// API key value given to the CLIs; the server accepts anything.
pub const TEST_API_KEY: &str = "test-key";

/// Model name put in the Codex config (any name works with the mock provider).
pub const CODEX_TEST_MODEL: &str = "gpt-5.5";

/// Environment for `claude -p --output-format stream-json --verbose
/// --dangerously-skip-permissions` talking to `server_url` (from
/// [`ModelServer::url`](crate::ModelServer::url)), with `home` as its `HOME`.
/// Meant for a command started with `env_clear()` plus `PATH`.
pub fn claude_offline_env(server_url: &str, home: &Path) -> Vec<(String, String)> {
    let home_text = home.to_string_lossy().into_owned();
    let config_dir = home.join(".claude").to_string_lossy().into_owned();
    [
        ("HOME", home_text.as_str()),
        ("CLAUDE_CONFIG_DIR", config_dir.as_str()),
        ("ANTHROPIC_BASE_URL", server_url),
        ("ANTHROPIC_API_KEY", TEST_API_KEY),
        ("IS_SANDBOX", "1"),
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
        ("DISABLE_AUTOUPDATER", "1"),
        ("DISABLE_TELEMETRY", "1"),
        ("DISABLE_ERROR_REPORTING", "1"),
        ("DISABLE_BUG_COMMAND", "1"),
        ("CLAUDE_CODE_DISABLE_TERMINAL_TITLE", "1"),
        ("NO_COLOR", "1"),
    ]
    .iter()
    .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
    .collect()
}

/// The `config.toml` that points Codex at an OpenAI Responses endpoint
/// (`openai_base_url`, e.g. [`ModelServer::openai_base_url`](crate::ModelServer::openai_base_url)).
pub fn codex_config_toml(openai_base_url: &str, model: &str) -> String {
    format!(
        r#"# Written by ampsm-testutils: Codex against a scripted model server on 127.0.0.1.
model = "{model}"
model_provider = "mock"
check_for_update_on_startup = false

[analytics]
enabled = false

[features]
plugins = false
remote_plugin = false
plugin_sharing = false
apps = false
tool_suggest = false
api_key_model_discovery = false
skill_mcp_dependency_install = false

[model_providers.mock]
name = "mock"
base_url = "{openai_base_url}"
wire_api = "responses"
env_key = "OPENAI_API_KEY"
request_max_retries = 0
stream_max_retries = 0
stream_idle_timeout_ms = 30000
supports_websockets = false
"#
    )
}

/// Creates `codex_home` and writes [`codex_config_toml`] into it.
pub fn write_codex_home(codex_home: &Path, openai_base_url: &str, model: &str) -> io::Result<()> {
    std::fs::create_dir_all(codex_home)?;
    std::fs::write(codex_home.join("config.toml"), codex_config_toml(openai_base_url, model))
}

/// Environment for `codex exec --json --skip-git-repo-check` using the config in
/// `codex_home` (see [`write_codex_home`]), with `home` as its `HOME`.
///
/// `TMPDIR` is `home/tmp` (made here), a private temporary folder as on many
/// desktops. A test's `home` lives in the system's temporary folder, and Codex
/// refuses to set up its helper commands (the `apply_patch` it runs inside its
/// Linux sandbox) when `CODEX_HOME` is under `TMPDIR`: where a `bwrap` is on
/// PATH every sandboxed edit then fails, which a user's `~/.codex` never does.
pub fn codex_offline_env(codex_home: &Path, home: &Path) -> Vec<(String, String)> {
    let tmp = home.join("tmp");
    // A failure here shows up as Codex's own error about its temporary folder.
    let _ = std::fs::create_dir_all(&tmp);
    vec![
        ("HOME".to_owned(), home.to_string_lossy().into_owned()),
        ("TMPDIR".to_owned(), tmp.to_string_lossy().into_owned()),
        ("CODEX_HOME".to_owned(), codex_home.to_string_lossy().into_owned()),
        ("OPENAI_API_KEY".to_owned(), TEST_API_KEY.to_owned()),
        ("NO_COLOR".to_owned(), "1".to_owned()),
    ]
}

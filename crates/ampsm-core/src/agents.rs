//! The one registry of agents: for each agent amp-sessions can run, the name the config, the command
//! line and run files use, its display name, the other spellings it accepts, how to install its CLI and
//! the environment variables that hold its credentials. Config validation, the CLI's help, the engine's
//! checks, the dashboard's choices and secret redaction all read this table; `ampsm-agent` pairs each
//! entry with its adapter (and a test there checks that every entry has one).

/// What amp-sessions knows about one agent, apart from how to run it (that is its adapter's job).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentInfo {
    /// The name `--agent`, `session.default_agent` and run files use (`claude`).
    pub name: &'static str,
    /// The product's name, for people (`Claude Code`).
    pub display_name: &'static str,
    /// Other spellings the adapter lookup accepts (`claude-code`); configs and run files use `name`.
    pub aliases: &'static [&'static str],
    /// The command that installs the agent's CLI, when there is a standard one.
    pub install: Option<&'static str>,
    /// Environment variables that hold this agent's credentials (always redacted from records).
    pub credential_env: &'static [&'static str],
}

/// Every agent, in the order shown to users, one line each. Adding an agent: one line here, its adapter
/// and parser in `ampsm-agent` and its line in that crate's `adapters::construct`.
#[rustfmt::skip]
pub const AGENTS: &[AgentInfo] = &[
    AgentInfo { name: "amp", display_name: "Amp", aliases: &[], install: Some("npm install -g @ampcode/cli (or curl -fsSL https://ampcode.com/install.sh | bash)"), credential_env: &["AMP_API_KEY"] },
    AgentInfo { name: "claude", display_name: "Claude Code", aliases: &["claude-code"], install: Some("npm install -g @anthropic-ai/claude-code"), credential_env: &["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"] },
    AgentInfo { name: "codex", display_name: "Codex", aliases: &[], install: Some("npm install -g @openai/codex"), credential_env: &["OPENAI_API_KEY", "CODEX_API_KEY"] },
    AgentInfo { name: "gemini", display_name: "Gemini", aliases: &[], install: Some("npm install -g @google/gemini-cli"), credential_env: &["GEMINI_API_KEY", "GOOGLE_API_KEY"] },
    AgentInfo { name: "opencode", display_name: "OpenCode", aliases: &[], install: Some("npm install -g opencode-ai"), credential_env: &[] },
    AgentInfo { name: "command", display_name: "any command", aliases: &[], install: None, credential_env: &[] },
    AgentInfo { name: "offline", display_name: "the offline demo agent", aliases: &[], install: None, credential_env: &[] },
];

/// Every agent's name, in the order shown to users.
pub fn agent_names() -> impl Iterator<Item = &'static str> {
    AGENTS.iter().map(|a| a.name)
}

/// The names joined for a message: `amp, claude, codex, …`.
pub fn agent_list() -> String {
    agent_names().collect::<Vec<_>>().join(", ")
}

/// The reason a name that is not an agent's is refused: `unknown agent "gpt" (one of: amp, …)`.
pub fn unknown_agent_text(name: &str) -> String {
    format!("unknown agent {name:?} (one of: {})", agent_list())
}

/// Whether `name` is an agent's name exactly as configs and run files must write it.
pub fn is_agent_name(name: &str) -> bool {
    AGENTS.iter().any(|a| a.name == name)
}

/// The agent a name or alias means, ignoring case and surrounding blanks.
pub fn find_agent(name: &str) -> Option<&'static AgentInfo> {
    let wanted = name.trim().to_ascii_lowercase();
    AGENTS.iter().find(|a| a.name == wanted || a.aliases.contains(&wanted.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_lowercase_and_aliases_resolve() {
        let mut all: Vec<&str> =
            AGENTS.iter().flat_map(|a| std::iter::once(a.name).chain(a.aliases.iter().copied())).collect();
        assert!(all.iter().all(|n| *n == n.to_ascii_lowercase()));
        let count = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), count, "a name or alias is used twice");
        assert_eq!(find_agent(" Claude-Code ").map(|a| a.name), Some("claude"));
        assert!(is_agent_name("claude") && !is_agent_name("claude-code") && find_agent("aider").is_none());
        assert!(agent_list().starts_with("amp, claude, codex, gemini, opencode"));
    }
}

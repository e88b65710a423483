//! Permission policies: what an agent may do in its worktree without asking. A session has one, chosen at
//! `new` (`--permissions`) or taken from the config; each agent adapter maps it onto its CLI's own flags
//! and sandbox, or says it cannot honour it.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What an agent may do without asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PermissionPolicy {
    /// The agent edits files in its worktree and runs commands there without asking, inside its own
    /// sandbox where it has one. An ordinary coding task (edit, run the tests) completes unattended.
    #[default]
    Auto,
    /// Tool calls that need approval wait for the user (`approve` / `deny`, the dashboard's inbox); an
    /// unanswered request is denied when it times out.
    Ask,
    /// The agent may read and plan, never write or run commands that change anything.
    ReadOnly,
    /// No guard at all: every tool call runs, outside any sandbox.
    Full,
}

impl PermissionPolicy {
    pub const ALL: [PermissionPolicy; 4] =
        [PermissionPolicy::Auto, PermissionPolicy::Ask, PermissionPolicy::ReadOnly, PermissionPolicy::Full];

    pub fn as_str(self) -> &'static str {
        match self {
            PermissionPolicy::Auto => "auto",
            PermissionPolicy::Ask => "ask",
            PermissionPolicy::ReadOnly => "read-only",
            PermissionPolicy::Full => "full",
        }
    }

    /// One line for users: what the policy lets an agent do.
    pub fn meaning(self) -> &'static str {
        match self {
            PermissionPolicy::Auto => {
                "edits files and runs commands in its worktree without asking, in the agent's own sandbox where it has one"
            }
            PermissionPolicy::Ask => {
                "tool calls that need approval wait for `amp-sessions approve` or `deny`"
            }
            PermissionPolicy::ReadOnly => "reads and plans; every write or changing command is denied",
            PermissionPolicy::Full => "no guard at all: every tool call runs, outside any sandbox",
        }
    }
}

impl fmt::Display for PermissionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PermissionPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase().replace('_', "-");
        PermissionPolicy::ALL
            .into_iter()
            .find(|p| p.as_str() == t || (t == "readonly" && *p == PermissionPolicy::ReadOnly))
            .ok_or_else(|| {
                format!("unknown permission policy {s:?} (expected one of: auto, ask, read-only, full)")
            })
    }
}

/// A tool call the agent was not allowed to make.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Denial {
    /// The tool's name as the agent calls it (`Write`, `Bash`, `apply_patch`).
    pub tool: String,
    /// The tool call it refused, when the agent says.
    pub call_id: Option<String>,
    /// A short description of what was asked (a path, a command), when known.
    pub detail: Option<String>,
    /// Why, in the agent's words or ours.
    pub reason: Option<String>,
}

impl Denial {
    /// `Write (hello.txt)`, or just the tool's name.
    pub fn label(&self) -> String {
        match self.detail.as_deref().filter(|d| !d.is_empty()) {
            Some(d) => {
                let d: String = d.chars().take(80).collect();
                format!("{} ({d})", self.tool)
            }
            None => self.tool.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in PermissionPolicy::ALL {
            assert_eq!(p.as_str().parse::<PermissionPolicy>(), Ok(p));
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
        assert_eq!("read_only".parse::<PermissionPolicy>(), Ok(PermissionPolicy::ReadOnly));
        assert_eq!("Full".parse::<PermissionPolicy>(), Ok(PermissionPolicy::Full));
        let err = "yolo".parse::<PermissionPolicy>().unwrap_err();
        assert!(err.contains("auto, ask, read-only, full"), "{err}");
    }
}

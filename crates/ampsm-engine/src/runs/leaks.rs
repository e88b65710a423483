//! Secrets in an agent's committed change. The event log is redacted as it is recorded, but a file the
//! agent wrote (an `env` dump, a config with a key) goes into its commit as it is: that is the user's
//! work and stays, but the user is told which variable's value is in which file, and a copy of the change
//! that is stored or exported (a benchmark's `model_patch`, `predictions.jsonl`) is redacted.

use ampsm_core::Redactor;

/// A secret value found in a change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Leak {
    /// The variable whose value it is.
    pub variable: String,
    /// The file of the change that holds it.
    pub file: String,
}

/// The secrets of this process's environment (and `extra`) found in a unified diff, per file.
pub fn leaks_in_diff(diff: &str, redactor: &Redactor) -> Vec<Leak> {
    if redactor.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<Leak> = Vec::new();
    for section in diff.split("\ndiff --git ").filter(|s| !s.trim().is_empty()) {
        let header = section.lines().next().unwrap_or("");
        let header = header.strip_prefix("diff --git ").unwrap_or(header);
        // `a/<path> b/<path>`: the new side names the file.
        let file = header.rsplit_once(" b/").map(|(_, b)| b).unwrap_or(header).to_string();
        // Only what the change adds can carry a new secret.
        let added: String = section
            .lines()
            .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
            .map(|l| &l[1..])
            .collect::<Vec<_>>()
            .join("\n");
        for name in redactor.names_in(&added) {
            let leak = Leak { variable: name.to_string(), file: file.clone() };
            if !out.contains(&leak) {
                out.push(leak);
            }
        }
    }
    out
}

/// The redactor of what agents may see: this process's environment and every agent's configured
/// `agents.<name>.env`.
pub fn agents_redactor(config: &ampsm_config::Config) -> Redactor {
    let extra: Vec<(String, String)> =
        config.agents.values().flat_map(|a| a.env.iter().map(|(k, v)| (k.clone(), v.clone()))).collect();
    Redactor::from_environment(&extra)
}

/// One line for the user: `AMP_API_KEY in env.txt, GITHUB_TOKEN in notes.md`.
pub fn describe(leaks: &[Leak]) -> String {
    leaks.iter().map(|l| format!("{} in {}", l.variable, l.file)).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_secrets_are_found_per_file() {
        let r = Redactor::from_vars([("AMP_API_KEY".to_string(), "sgamp_user_0123456789".to_string())]);
        let diff = "diff --git a/env.txt b/env.txt\nnew file mode 100644\n--- /dev/null\n+++ b/env.txt\n\
                    +AMP_API_KEY=sgamp_user_0123456789\n+HOME=/root\n\
                    diff --git a/old.txt b/old.txt\n--- a/old.txt\n+++ b/old.txt\n-sgamp_user_0123456789\n+gone\n";
        let leaks = leaks_in_diff(diff, &r);
        assert_eq!(leaks, [Leak { variable: "AMP_API_KEY".into(), file: "env.txt".into() }]);
        assert_eq!(describe(&leaks), "AMP_API_KEY in env.txt");
        assert!(leaks_in_diff("diff --git a/x b/x\n+plain\n", &r).is_empty());
    }
}

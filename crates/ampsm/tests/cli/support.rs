//! Shared helpers of the binary's tests: the test world of `ampsm-testutils` over `amp-sessions`, and
//! what only these tests use (secret scans, one-line errors, worlds with a real or a command agent, the
//! processes of a group).

use ampsm_testutils::world::Program;

/// The binary under test, as cargo built it for this test binary.
pub struct AmpSessions;

impl Program for AmpSessions {
    const PATH: &'static str = env!("CARGO_BIN_EXE_amp-sessions");
}

/// The test world (`ampsm_testutils::World`) over `amp-sessions`.
pub type World = ampsm_testutils::World<AmpSessions>;

pub use ampsm_testutils::ctrl_c;

/// Asserts that no file under `root` (worktrees left out: they hold the agent's own work) contains any of
/// `secrets`: the database, its WAL, the logs, exports.
pub fn assert_no_file_holds(root: &std::path::Path, secrets: &[&str]) {
    let mut files = vec![root.to_path_buf()];
    while let Some(p) = files.pop() {
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == "worktrees") {
                continue;
            }
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else {
            let bytes = std::fs::read(&p).unwrap();
            for secret in secrets {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "{} holds the secret {secret}",
                    p.display()
                );
            }
        }
    }
}

/// The single non-warning line of `stderr` (asserts there is exactly one), followed by the text of its
/// `hint:` line when the error has one (the CLI prints what to do next on a line of its own).
pub fn one_line(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.starts_with("warning:")).collect();
    match lines.as_slice() {
        [line] => line.to_string(),
        [line, hint] if hint.starts_with("hint: ") => format!("{line} {hint}"),
        _ => panic!("expected a one-line error, got:\n{stderr}"),
    }
}

/// A world whose `claude` is the real Claude Code CLI (installed by `.ci/install-agents.sh`) talking to a
/// scripted model server on 127.0.0.1 (give it its turns with `set_script`); tools run unattended.
/// Tests that use it carry `#[requires(claude)]`.
pub fn real_claude_world() -> (World, ampsm_testutils::ModelServer) {
    let claude = ampsm_testutils::require(ampsm_testutils::Tool::Claude);
    let w = World::new();
    let agent_home = w.dir.path().join("claude-home");
    std::fs::create_dir_all(&agent_home).unwrap();
    let server = ampsm_testutils::ModelServer::start(ampsm_testutils::Script::new(vec![])).unwrap();
    let env = ampsm_testutils::real_cli::claude_offline_env(&server.url(), &agent_home);
    let env_yaml: String = env.iter().map(|(k, v)| format!("      {k}: \"{v}\"\n")).collect();
    w.write_config(&format!(
        "session:\n  permissions: full\nnotifications:\n  desktop: false\nagents:\n  claude:\n    path: {}\n    \
         env:\n{env_yaml}",
        claude.display()
    ));
    (w, server)
}

/// Live (non-zombie) processes whose process group is one of `groups`, read from /proc: pid and stat line.
pub fn processes_in_groups<'a>(groups: impl IntoIterator<Item = &'a i64>) -> Vec<(i64, String)> {
    let groups: std::collections::HashSet<i64> = groups.into_iter().copied().collect();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i64>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // pid (comm) state ppid pgrp …; comm may contain spaces, so split after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let (state, pgrp) = (fields[0], fields[2].parse::<i64>().unwrap_or(0));
        if groups.contains(&pgrp) && state != "Z" {
            found.push((pid, stat.trim().to_string()));
        }
    }
    found
}

/// A world whose `command` agent is `sh -c SCRIPT` (run in the worktree), and whose notifications go to
/// `notes.log` in the world's folder (a line `EVENT|MESSAGE` each).
pub fn command_world(script: &str) -> World {
    let w = World::new();
    w.write_config(&format!(
        "agents:\n  command:\n    path: /bin/sh\n    args: [\"-c\", {}]\nnotifications:\n  desktop: false\n  \
         command: 'echo \"$AMPSM_EVENT|$AMPSM_MESSAGE\" >> {}'\n",
        serde_json::to_string(script).unwrap(),
        w.dir.path().join("notes.log").display()
    ));
    w
}

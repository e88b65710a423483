//! Shared helpers of the CLI tests: a temporary world (AMPSM_HOME, HOME, a repository) and ways to run
//! the real binary in it.

use ampsm_testutils::repo::init_repo;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};
use tempfile::TempDir;

/// A temporary world: an AMPSM_HOME, a HOME, and a repository.
pub struct World {
    pub dir: TempDir,
    pub repo: PathBuf,
    /// Extra environment for every command run in this world.
    pub env: std::cell::RefCell<Vec<(String, String)>>,
}

impl World {
    pub fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let repo = init_repo(&dir.path().join("repo"));
        World { dir, repo, env: Default::default() }
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("ampsm-home")
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_amp-sessions"));
        c.env("AMPSM_HOME", self.home())
            .env("HOME", self.dir.path())
            .env_remove("AMPSM_DB_PATH")
            .env_remove("AMP_API_KEY")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("NO_COLOR", "1")
            .current_dir(self.dir.path());
        for (k, v) in self.env.borrow().iter() {
            c.env(k, v);
        }
        c
    }

    /// Adds `key=value` to the environment of every later command.
    pub fn set_env(&self, key: &str, value: &str) {
        self.env.borrow_mut().push((key.to_string(), value.to_string()));
    }

    /// Writes `text` as the config file.
    pub fn write_config(&self, text: &str) {
        std::fs::create_dir_all(self.home()).unwrap();
        std::fs::write(self.home().join("config.yaml"), text).unwrap();
    }

    /// Starts the program in the background with stdin, stdout and stderr piped (read them with
    /// `wait_with_output`).
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        self.cmd()
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Runs and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "amp-sessions {args:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let text = self.ok(&all);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }

    /// Runs and expects failure; returns (exit code, stderr).
    pub fn fails(&self, args: &[&str]) -> (i32, String) {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "amp-sessions {args:?} should fail:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        (out.status.code().unwrap_or(-1), String::from_utf8(out.stderr).unwrap())
    }

    pub fn repo_arg(&self) -> &str {
        self.repo.to_str().unwrap()
    }
}

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
/// `None` when the CLI is not installed (the test is then skipped; in CI that fails).
pub fn real_claude_world() -> Option<(World, ampsm_testutils::ModelServer)> {
    let claude = ampsm_testutils::npm_agent_bin("claude")?;
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
    Some((w, server))
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

/// Sends SIGINT, as Ctrl-C in the terminal does, to the process `pid`.
pub fn ctrl_c(pid: u32) {
    let ok = std::process::Command::new("kill").args(["-INT", &pid.to_string()]).status().unwrap();
    assert!(ok.success());
}

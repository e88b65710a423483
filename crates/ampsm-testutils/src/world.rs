//! The test world of the binary's tests: a temporary folder holding an AMPSM_HOME, a HOME and a git
//! repository, and a runner over the real program in it (the program is given by the test binary, which
//! alone knows cargo's `CARGO_BIN_EXE_<name>`).
//!
//! Like the rest of this crate these helpers panic on failure: a test wants the loudest early stop.

use crate::repo::init_repo;
use serde_json::Value;
use std::cell::RefCell;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The program a [`World`] runs; a test binary implements it with `env!("CARGO_BIN_EXE_<name>")`.
pub trait Program {
    /// Absolute path of the built program.
    const PATH: &'static str;
}

/// A temporary world: an AMPSM_HOME, a HOME, and a repository, where `P` runs with that environment.
pub struct World<P: Program> {
    pub dir: TempDir,
    pub repo: PathBuf,
    /// Extra environment for every command run in this world.
    env: RefCell<Vec<(String, String)>>,
    program: PhantomData<P>,
}

impl<P: Program> Default for World<P> {
    fn default() -> Self {
        World::new()
    }
}

impl<P: Program> World<P> {
    pub fn new() -> World<P> {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("could not make a temporary folder: {e}"));
        let repo = init_repo(&dir.path().join("repo"));
        World { dir, repo, env: RefCell::default(), program: PhantomData }
    }

    /// A world whose `claude` is the fake agent playing `scenario` (a file path), with notifications off.
    pub fn with_claude(scenario: &Path) -> World<P> {
        let w = World::new();
        let claude = crate::install_fake_agent_as(&w.dir.path().join("bin"), "claude");
        w.write_config(&format!(
            "agents:\n  claude:\n    path: {}\nnotifications:\n  desktop: false\n",
            claude.display()
        ));
        w.set_env("FAKE_AGENT_SCENARIO", &scenario.display().to_string());
        w.set_env("ANTHROPIC_API_KEY", "sk-ant-test");
        w
    }

    /// The world's AMPSM_HOME.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("ampsm-home")
    }

    /// The program, with the world's environment, run from the world's folder.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(P::PATH);
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

    /// Takes `key` out of the environment that [`World::set_env`] gave later commands.
    pub fn remove_env(&self, key: &str) {
        self.env.borrow_mut().retain(|(k, _)| k != key);
    }

    /// Writes `text` as the config file.
    pub fn write_config(&self, text: &str) {
        std::fs::create_dir_all(self.home()).unwrap_or_else(|e| panic!("could not make AMPSM_HOME: {e}"));
        std::fs::write(self.home().join("config.yaml"), text)
            .unwrap_or_else(|e| panic!("could not write config.yaml: {e}"));
    }

    /// Starts the program in the background with stdin, stdout and stderr piped (read them with
    /// `wait_with_output`).
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.cmd()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {}: {e}", P::PATH))
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap_or_else(|e| panic!("could not run {}: {e}", P::PATH))
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
        String::from_utf8(out.stdout)
            .unwrap_or_else(|e| panic!("amp-sessions {args:?} printed no UTF-8: {e}"))
    }

    /// Runs with `--json` added and expects success; returns what it printed, parsed.
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
        let stderr = String::from_utf8(out.stderr)
            .unwrap_or_else(|e| panic!("amp-sessions {args:?} printed no UTF-8 on stderr: {e}"));
        (out.status.code().unwrap_or(-1), stderr)
    }

    /// The repository's path as an argument.
    pub fn repo_arg(&self) -> &str {
        self.repo.to_str().unwrap_or_else(|| panic!("{} is not UTF-8", self.repo.display()))
    }

    /// Waits until the session's status is not `running` (and it has `iterations` iterations).
    pub fn wait_idle(&self, session: &str, iterations: usize) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let m = self.json(&["metrics", session]);
            if m["session"]["status"] != "running"
                && m["iterations_count"].as_u64() == Some(iterations as u64)
            {
                return m;
            }
            assert!(Instant::now() < deadline, "session {session} still running: {m}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Sends SIGINT, as Ctrl-C in the terminal does, to the process `pid`.
pub fn ctrl_c(pid: u32) {
    let sent = Command::new("kill").args(["-INT", &pid.to_string()]).status();
    assert!(sent.is_ok_and(|s| s.success()), "could not send SIGINT to {pid}");
}

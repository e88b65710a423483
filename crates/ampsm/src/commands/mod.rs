//! One module per command noun; [`run`] dispatches. Commands return [`CliError`], rendered by
//! `render::error`.

mod agents;
pub mod batch;
pub mod bench;
mod config;
mod control;
mod demo;
mod health;
pub mod metrics;
pub mod review;
mod sessions;
pub mod ui;

use crate::cli::{Cli, Command};
use ampsm_core::ErrorKind;
use ampsm_engine::{Engine, EngineError};

/// Any failure of a command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("{message}")]
    Usage { message: String },
    /// A failure already described on stdout (e.g. an iteration whose tests failed).
    #[error("{message}")]
    Reported { message: String, kind: ErrorKind },
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

impl CliError {
    /// What kind of failure this is: an engine error's own kind, a usage error is bad input, an output
    /// error failed.
    pub fn kind(&self) -> ErrorKind {
        match self {
            CliError::Engine(e) => e.kind(),
            CliError::Usage { .. } => ErrorKind::BadInput,
            CliError::Reported { kind, .. } => *kind,
            CliError::Output(_) => ErrorKind::Failed,
        }
    }

    /// `(message, hint, exit code)`: the exit code comes from [`CliError::kind`] through
    /// [`crate::errors::exit_code`], the hint is worded by [`crate::errors::hint_text`].
    pub fn parts(&self) -> (String, Option<String>, i32) {
        use crate::errors::{exit_code, hint_text};
        let code = exit_code(self.kind());
        match self {
            CliError::Engine(e) => (e.to_string(), e.hint().as_ref().map(hint_text), code),
            CliError::Usage { message } | CliError::Reported { message, .. } => (message.clone(), None, code),
            CliError::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe => (String::new(), None, 0),
            CliError::Output(e) => (format!("cannot write output: {e}"), None, code),
        }
    }
}

impl From<ampsm_config::ConfigError> for CliError {
    fn from(e: ampsm_config::ConfigError) -> Self {
        CliError::Engine(EngineError::Config(e))
    }
}

/// The duration a flag gives (`--timeout 10m`), through the one duration parser (at most 30d): a bad one
/// is a one-line usage error naming the flag.
pub fn duration_flag(flag: &str, text: &str) -> Result<std::time::Duration, CliError> {
    ampsm_core::parse_duration(text).map_err(|m| CliError::Usage { message: format!("{flag}: {m}") })
}

/// Opens the engine and prints config warnings (unknown keys) to stderr.
pub fn open_engine() -> Result<Engine, CliError> {
    let engine = Engine::open()?;
    for w in engine.config_warnings() {
        eprintln!("warning: {w}");
    }
    Ok(engine)
}

/// Runs one parsed command.
pub fn run(cli: Cli) -> Result<(), CliError> {
    let json = cli.json;
    match cli.command {
        Command::New(a) => sessions::new(a, json),
        Command::List(a) => sessions::list(a, json),
        Command::Show(a) => sessions::show(&a.session, json),
        Command::Rm(a) => sessions::rm(a, json),
        Command::RepoInfo(a) => sessions::repo_info(a, json),
        Command::Config(c) => config::run(c, json),
        Command::Iterate(a) => agents::iterate(&a.session, a.prompt, a.timeout, json),
        Command::Setup(a) => sessions::setup(a, json),
        Command::Stop(a) => control::stop(a, json),
        Command::Approvals(a) => control::approvals(a, json),
        Command::Approve(a) => control::answer(&a.session, a.id, true, None, json),
        Command::Deny(a) => control::answer(&a.session, a.id, false, a.message.as_deref(), json),
        Command::Chat(a) => agents::chat(&a.session, json),
        Command::Logs(a) => agents::logs(&a.session, a.follow, a.raw, json),
        Command::Tools(a) => agents::tools(&a.session, json),
        Command::Usage(a) => agents::usage(&a.session, json),
        Command::Demo(a) => demo::run(a.agent, json),
        Command::Doctor => health::doctor(json),
        Command::VerifyAmp => health::verify_amp(json),
        Command::Repair => sessions::repair(json),
        Command::Batch(c) => batch::run(c, json),
        Command::Bench(c) => bench::run(c, json),
        Command::Ui(a) => ui::run(a, json),
        Command::Review(c) => review::run(c, json),
        Command::Metrics(c) => metrics::run(c, json),
        Command::Completions(a) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(a.shell, &mut cmd, "amp-sessions", &mut std::io::stdout());
            Ok(())
        }
    }
}

/// Entry point of the hidden `__offline-agent` subcommand (the built-in demo agent's process).
pub fn offline_agent(args: &[String]) -> i32 {
    let cwd = match std::env::current_dir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("Error: cannot read the current directory: {e}");
            return 1;
        }
    };
    ampsm_engine::sessions::demo::run_offline_agent(
        args,
        std::io::stdin().lock(),
        std::io::stdout().lock(),
        &cwd,
    )
}

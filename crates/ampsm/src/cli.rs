//! Command-line definitions (clap derive). Flag names follow the CLI contract in PRODUCT.md; validation
//! beyond types happens in the engine.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// The long description of `--help`, naming the agents of the registry that are real products.
fn long_about() -> String {
    let products: Vec<&str> =
        ampsm_core::agents::AGENTS.iter().filter(|a| a.install.is_some()).map(|a| a.display_name).collect();
    format!(
        "amp-sessions turns AI coding-agent runs ({}, any command) into isolated Git branches: one worktree per \
         session, every agent event recorded, tokens, cost, tools and files measured, and a safe path to squash, \
         rebase and merge back.",
        products.join(", ")
    )
}

#[derive(Debug, Parser)]
#[command(
    name = "amp-sessions",
    version,
    about = "Run AI coding agents in isolated, reviewable Git worktrees",
    long_about = long_about(),
    propagate_version = true
)]
pub struct Cli {
    /// Print machine-readable JSON (one document, or JSON lines for streams).
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a session: a new branch in its own worktree outside the repository.
    New(NewArgs),
    /// List sessions, newest first.
    List(ListArgs),
    /// Show one session: settings, git state, snapshots, status history.
    Show(SessionRef),
    /// Remove a session's worktree and branch (refuses unmerged work unless --force).
    #[command(visible_alias = "cleanup")]
    Rm(RmArgs),
    /// Describe a repository: branches, default branch, worktrees, sessions.
    RepoInfo(RepoInfoArgs),
    /// Read and change ~/.ampsm/config.yaml.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run the agent once in a session: commit its changes, run the test script, record everything.
    Iterate(IterateArgs),
    /// Run a session's setup command again (after fixing what made it fail): the configured one, or --cmd.
    Setup(SetupArgs),
    /// Stop the agent running in a session, from any terminal (its work so far is committed).
    Stop(StopArgs),
    /// List the tool calls waiting for approval (the `ask` permission policy): of one session, or all.
    Approvals(ApprovalsArgs),
    /// Approve a tool call a session's agent is waiting on (its number, or the only one pending).
    Approve(ApproveArgs),
    /// Deny a tool call a session's agent is waiting on; --message tells the agent why.
    Deny(DenyArgs),
    /// Talk with the session's agent in the terminal (one message per line), its output streamed live.
    Chat(SessionRef),
    /// Show the agent events recorded for a session.
    Logs(LogsArgs),
    /// List the tool calls of a session with their results and durations.
    Tools(SessionRef),
    /// Show token usage and cost of a session, per iteration and model.
    Usage(SessionRef),
    /// Try amp-sessions on a demo repository with the built-in offline agent (no agent or key needed).
    Demo(DemoArgs),
    /// Check the environment: git, agents and their versions, credentials, database, config, leftovers (orphaned worktrees, stale locks).
    Doctor,
    /// Check Amp: found, version, key present, and a cheap authenticated call (never a billed run).
    VerifyAmp,
    /// Reconcile after a crash: undo interrupted creations, mark orphaned runs (also done at every start).
    Repair,
    /// Print shell completions.
    Completions(CompletionsArgs),
    /// Batch runs from YAML: many prompts × many repositories (start, status, list, abort, resume, export, clean).
    #[command(subcommand)]
    Batch(crate::commands::batch::BatchCommand),
    /// Benchmarks: SWE-bench instances or a custom suite across agents and models (list, show, compare, export, abort).
    #[command(subcommand)]
    Bench(crate::commands::bench::BenchCommand),
    /// The local web dashboard on 127.0.0.1 (a random token in the printed URL; Ctrl-C stops it).
    Ui(crate::commands::ui::UiArgs),
    #[command(flatten)]
    Review(crate::commands::review::ReviewCommand),
    #[command(flatten)]
    Metrics(crate::commands::metrics::MetricsCommand),
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The git repository to work on.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// A name for the session (letters, digits, '-', '_', '.'); unique per repository.
    #[arg(long)]
    pub name: String,
    /// The task for the agent.
    #[arg(long)]
    pub prompt: Option<String>,
    /// Branch or commit to start from (default: git.default_base_branch, else the repository's default).
    #[arg(long)]
    pub base: Option<String>,
    // The help lists the agents of the registry.
    #[arg(long, help = format!("The agent: {}.", ampsm_core::agents::agent_list()))]
    pub agent: Option<String>,
    /// Model (Amp: its --mode; others: --model).
    #[arg(long)]
    pub model: Option<String>,
    /// Test script run in the worktree after each iteration (e.g. "npm test").
    #[arg(long)]
    pub script: Option<String>,
    /// Cost budget in USD: warn at 80 %, stop the agent at 100 %.
    #[arg(long, value_name = "USD", allow_negative_numbers = true)]
    pub budget: Option<f64>,
    /// Setup command run in the new worktree (e.g. "npm ci"; default: repos.<path>.setup, else
    /// session.setup).
    #[arg(long, value_name = "CMD", conflicts_with = "no_setup")]
    pub setup: Option<String>,
    /// Run no setup command, whatever the config says.
    #[arg(long)]
    pub no_setup: bool,
    /// Run the first iteration right away.
    #[arg(long)]
    pub run: bool,
    /// What the agent may do without asking: auto (edit and run commands in its worktree, in its own
    /// sandbox where it has one), ask (tool calls wait for `approve`/`deny`), read-only, full (no guard).
    /// Default: agents.<name>.permissions, else session.permissions, else auto.
    #[arg(long, value_name = "POLICY")]
    pub permissions: Option<String>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Session id, unique id prefix, or name.
    pub session: String,
    /// How long to wait for the run to stop before its processes are killed.
    #[arg(long, value_name = "DUR", default_value = "10s")]
    pub wait: String,
}

#[derive(Debug, Args)]
pub struct ApprovalsArgs {
    /// Only this session (id, unique id prefix, or name).
    pub session: Option<String>,
    /// Every request of the session, answered or not (needs a session).
    #[arg(long, requires = "session")]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// Session id, unique id prefix, or name.
    pub session: String,
    /// The request's number (see `approvals`); may be left out when only one is pending.
    pub id: Option<i64>,
}

#[derive(Debug, Args)]
pub struct DenyArgs {
    /// Session id, unique id prefix, or name.
    pub session: String,
    /// The request's number (see `approvals`); may be left out when only one is pending.
    pub id: Option<i64>,
    /// Why, for the agent (it reads this as the tool's answer).
    #[arg(long, short = 'm')]
    pub message: Option<String>,
}

#[derive(Debug, Args)]
pub struct SetupArgs {
    /// Session id, unique id prefix, or name.
    pub session: String,
    /// The command to run (default: repos.<path>.setup, else session.setup).
    #[arg(long, value_name = "CMD")]
    pub cmd: Option<String>,
}

#[derive(Debug, Args)]
pub struct IterateArgs {
    /// Session id, unique id prefix, or name.
    pub session: String,
    /// The message for the agent (default: the session's prompt).
    #[arg(long)]
    pub prompt: Option<String>,
    /// Stop the agent after this long (e.g. 90s, 10m; default: amp.timeout).
    #[arg(long)]
    pub timeout: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Session id, unique id prefix, or name.
    pub session: String,
    /// Keep printing new events while the session runs.
    #[arg(long, short)]
    pub follow: bool,
    /// Print the raw lines as the agent wrote them.
    #[arg(long)]
    pub raw: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Use this agent instead of the built-in offline one (e.g. amp, claude).
    #[arg(long)]
    pub agent: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only sessions in this status (idle, running, awaiting-input, error, done).
    #[arg(long)]
    pub status: Option<String>,
    /// Only sessions of this repository.
    #[arg(long)]
    pub repo: Option<PathBuf>,
    /// Include removed sessions.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct SessionRef {
    /// Session id, unique id prefix, or name.
    pub session: String,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Session id, unique id prefix, or name.
    pub session: String,
    /// Remove even with unmerged commits or uncommitted changes (a snapshot is saved first).
    #[arg(long)]
    pub force: bool,
    /// Keep the session branch; remove only the worktree.
    #[arg(long)]
    pub keep_branch: bool,
}

#[derive(Debug, Args)]
pub struct RepoInfoArgs {
    /// The repository (default: the current folder).
    #[arg(default_value = ".")]
    pub path: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective value of a key (e.g. git.commit_prefix).
    Get { key: String },
    /// Set a key in the config file (the value is read as YAML: true, 300s, [a, b]).
    Set { key: String, value: String },
    /// List every key with its effective value.
    List,
    /// Print the config file's path.
    Path,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    pub shell: clap_complete::Shell,
}

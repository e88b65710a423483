//! The `amp-sessions` binary: parses the command line and hands each command to its module; errors are
//! rendered in one place ([`render::error`]) with a one-line reason, a hint on its own line and an exit code from the one table in [`errors`].

#![deny(unsafe_code)]

mod cli;
mod commands;
mod errors;
mod output;
mod render;

use clap::Parser;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // The built-in offline agent runs as a subprocess of this same binary.
    if args.get(1).map(String::as_str) == Some("__offline-agent") {
        std::process::exit(commands::offline_agent(&args[2..]));
    }
    quiet_on_closed_stdout();
    let cli = cli::Cli::parse();
    init_logging();
    let json = cli.json;
    let code = match commands::run(cli) {
        Ok(()) => 0,
        Err(e) => render::error(&e, json),
    };
    std::process::exit(code);
}

/// When the reader of stdout goes away (`amp-sessions metrics s | head`), `println!` (and clap_complete's
/// writer) panic with a broken pipe. Output already went where it was asked to, so end quietly with the status of a process stopped by
/// SIGPIPE (141) instead of printing a panic. Live output of running agents never gets here: it writes
/// without `println!` and ignores write errors, so the run and its records finish first.
fn quiet_on_closed_stdout() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if payload.contains("Broken pipe") || payload.contains("BrokenPipe") {
            std::process::exit(errors::EXIT_BROKEN_PIPE);
        }
        default_hook(info);
    }));
}

fn init_logging() {
    let filter = std::env::var("AMPSM_LOG_LEVEL").unwrap_or_else(|_| "warn".into());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

//! `amp-sessions ui [--port N] [--no-open]`: starts the local dashboard (crate `ampsm-web`) and prints its
//! URL with the token (with `--json`, one line `{"url":…,"port":…}`); Ctrl-C stops it.

use super::CliError;
use clap::Args;

#[derive(Debug, Args)]
pub struct UiArgs {
    /// Port on 127.0.0.1 (default: ui.port from the config, else a free one; 0 picks a free one).
    #[arg(long)]
    pub port: Option<u16>,
    /// Do not open a browser.
    #[arg(long)]
    pub no_open: bool,
}

/// Runs the dashboard until Ctrl-C.
pub fn run(a: UiArgs, json: bool) -> Result<(), CliError> {
    let paths = ampsm_config::Paths::from_env()?;
    let opts = ampsm_web::ServeOptions { paths, port: a.port, open_browser: !a.no_open, json };
    ampsm_web::serve(opts).map_err(|e| match e {
        ampsm_web::WebError::Engine(e) => CliError::Engine(e),
        other => CliError::Reported { message: other.line(), kind: other.kind() },
    })
}

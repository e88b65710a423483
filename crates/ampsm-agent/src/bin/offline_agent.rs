//! `ampsm-offline-agent`: the offline demo agent as a standalone program (the main binary runs the same
//! code as `amp-sessions __offline-agent`). Used by this crate's tests; handy to watch the demo stream.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cwd = match std::env::current_dir() {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("Error: cannot read the current directory: {e}");
            return ExitCode::from(1);
        }
    };
    let code = ampsm_agent::offline::run_offline_agent(
        &args,
        std::io::stdin().lock(),
        std::io::stdout().lock(),
        &cwd,
    );
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

//! `amp-sessions-desktop`: starts the desktop app (see the library's docs).

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // The built-in offline agent runs as a subprocess of the running executable: this one, in the app.
    if args.get(1).map(String::as_str) == Some("__offline-agent") {
        let cwd = match std::env::current_dir() {
            Ok(d) => d,
            Err(e) => {
                eprintln!("Error: cannot read the current directory: {e}");
                std::process::exit(1);
            }
        };
        std::process::exit(ampsm_engine::sessions::demo::run_offline_agent(
            &args[2..],
            std::io::stdin().lock(),
            std::io::stdout().lock(),
            &cwd,
        ));
    }
    if let Err(e) = ampsm_desktop::run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

//! The one place errors become text: `error: <reason>` on one line of stderr, then `hint: <what to do
//! next>` on its own line when there is one (or a JSON object with `--json`: `error`, `kind`, `hint`,
//! `exit_code`), and the exit code.

use crate::commands::CliError;

/// Prints `e` and returns the exit code.
pub fn error(e: &CliError, json: bool) -> i32 {
    let (message, hint, code) = e.parts();
    if json {
        let doc = serde_json::json!({
            "error": message,
            "kind": e.kind().as_str(),
            "hint": hint,
            "exit_code": code,
        });
        eprintln!("{doc}");
    } else {
        let message = message.replace('\n', " ");
        match hint {
            Some(h) => eprintln!("error: {message}\nhint: {}", h.replace('\n', " ")),
            None => eprintln!("error: {message}"),
        }
    }
    code
}

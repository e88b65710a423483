//! Agent commands: `iterate` (live output, then a summary), `logs [--follow]`, `tools`, `usage`, and
//! `new --run`.

use super::{CliError, open_engine};
use crate::output::{self, print_json};
use ampsm_core::time::format_ms;
use ampsm_core::{AgentEvent, SessionStatus};
use ampsm_engine::records::StreamItem;
use ampsm_engine::{Engine, IterateRequest, IterationReport};
use std::io::Write;
use std::time::Duration;

/// `iterate <s>`.
pub fn iterate(
    session: &str,
    prompt: Option<String>,
    timeout: Option<String>,
    json: bool,
) -> Result<(), CliError> {
    let timeout = timeout.map(|t| super::duration_flag("--timeout", &t)).transpose()?;
    let mut engine = open_engine()?;
    run_iteration(
        &mut engine,
        IterateRequest { session: session.to_string(), prompt, timeout, ..Default::default() },
        json,
    )
}

/// Runs one iteration with live output (unless `json`) and prints its summary; fails when the agent or
/// the tests failed.
pub fn run_iteration(engine: &mut Engine, mut req: IterateRequest, json: bool) -> Result<(), CliError> {
    let interrupt = req
        .interrupt
        .get_or_insert_with(|| ampsm_engine::Interrupt::install(crate::errors::exit_interrupted))
        .clone();
    let mut live = |item: &StreamItem| {
        if json {
            return;
        }
        let mut out = std::io::stdout().lock();
        for ev in &item.events {
            if let Some(line) = live_line(ev) {
                let _ = writeln!(out, "  {line}");
            }
        }
    };
    // A session that does not exist is said before anything else is printed.
    engine.session(&req.session, false)?;
    if !json {
        println!("Running the agent…");
    }
    let report = engine.iterate(req, &mut live)?;
    if json {
        print_json(&report)?;
    } else {
        print_summary(&report);
    }
    let who = if report.stopped {
        Some("stopped by `amp-sessions stop`")
    } else if interrupt.interrupted() {
        Some("interrupted")
    } else {
        None
    };
    if let Some(who) = who {
        let message = match &report.commit {
            Some(c) => format!(
                "{who}: the agent was stopped; its work so far is committed ({})",
                &c[..c.len().min(12)]
            ),
            None => format!("{who}: the agent was stopped before it changed anything"),
        };
        return Err(CliError::Reported { message, kind: ampsm_core::ErrorKind::Interrupted });
    }
    match report.failure() {
        None => Ok(()),
        Some(message) => Err(CliError::Reported { message, kind: ampsm_core::ErrorKind::Failed }),
    }
}

/// `chat <s>`: messages from stdin (one per line), the agent's output as it arrives.
pub fn chat(session: &str, json: bool) -> Result<(), CliError> {
    use std::io::{BufRead, IsTerminal};
    let mut engine = open_engine()?;
    let interactive_terminal = std::io::stdin().is_terminal() && !json;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if line.trim().is_empty() {
                continue;
            }
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    if interactive_terminal {
        println!(
            "Chatting with the agent of {session}. One message per line; Ctrl-D or Ctrl-C ends the chat."
        );
        print!("you> ");
        let _ = std::io::stdout().flush();
    }
    let mut live = |item: &StreamItem| {
        let mut out = std::io::stdout().lock();
        if json {
            if let Ok(line) = serde_json::to_string(item) {
                let _ = writeln!(out, "{line}");
            }
            return;
        }
        for ev in &item.events {
            if let Some(line) = live_line(ev) {
                let _ = writeln!(out, "  {line}");
            }
            if interactive_terminal && ampsm_engine::runs::chat::ends_turn(ev) {
                let _ = write!(out, "you> ");
                let _ = out.flush();
            }
        }
    };
    let reports = engine.chat(session, rx, &mut live)?;
    if reports.is_empty() {
        if !json {
            println!("No message, nothing to do.");
        }
        return Ok(());
    }
    if !json {
        for r in &reports {
            print_summary(r);
        }
    }
    // Ctrl-C is how a chat ends: a turn it stopped (`cancelled`, its work committed) is not a failure.
    match reports
        .iter()
        .find(|r| !r.passed() && r.iteration.outcome != Some(ampsm_core::IterationOutcome::Cancelled))
    {
        Some(r) => Err(CliError::Reported {
            message: format!(
                "the chat ended with {}: {}",
                r.iteration.outcome.map_or("an error", ampsm_core::IterationOutcome::as_str),
                r.iteration.error.clone().unwrap_or_else(|| "tests failed".into())
            ),
            kind: ampsm_core::ErrorKind::Failed,
        }),
        None => Ok(()),
    }
}

/// One line of live output for an event, or nothing for bookkeeping events.
fn live_line(ev: &AgentEvent) -> Option<String> {
    match ev {
        AgentEvent::Usage { .. } | AgentEvent::TurnEnd { .. } | AgentEvent::UserText { replay: true, .. } => {
            None
        }
        AgentEvent::Output { text, .. } if text.trim().is_empty() => None,
        other => Some(other.summary()),
    }
}

fn print_summary(r: &IterationReport) {
    println!();
    let it = &r.iteration;
    let mut fields = vec![
        ("session", format!("{} ({})", r.session.name, r.session.id.short())),
        ("iteration", it.seq.to_string()),
        ("outcome", it.outcome.map(|o| o.to_string()).unwrap_or_default()),
        ("status", r.session.status.to_string()),
    ];
    if let Some(t) = &r.outcome.thread_id {
        fields.push(("thread", t.clone()));
    }
    if let Some(e) = &it.error {
        fields.push(("error", e.clone()));
    }
    fields.push((
        "commit",
        r.commit.clone().map(|c| c[..12.min(c.len())].to_string()).unwrap_or_else(|| "(no changes)".into()),
    ));
    let added: u64 = r.files.iter().filter_map(|f| f.added).sum();
    let removed: u64 = r.files.iter().filter_map(|f| f.removed).sum();
    fields.push(("files", format!("{} changed, +{added} −{removed}", r.files.len())));
    let total = r.outcome.total_usage();
    fields.push((
        "tokens",
        format!(
            "{} in, {} out, {} cache read, {} cache write",
            total.input, total.output, total.cache_read, total.cache_write
        ),
    ));
    fields.push(("cost", cost_text(it.cost_usd, it.cost_source.as_deref())));
    if let Some(t) = &r.tests {
        fields.push(("tests", format!("{} ({})", if t.passed() { "passed" } else { "FAILED" }, t.outcome())));
    }
    fields.push(("permissions", it.permissions.clone().unwrap_or_else(|| "-".into())));
    let denials = &r.outcome.denials;
    if !denials.is_empty() {
        let labels: Vec<String> = denials.iter().map(ampsm_core::Denial::label).collect();
        fields.push(("denied", format!("{}: {}", denials.len(), labels.join(", "))));
    }
    output::print_fields(&fields);
    if !denials.is_empty() && r.session.status == SessionStatus::AwaitingInput {
        println!(
            "\nNot everything the agent tried was allowed. Rerun with another prompt (`amp-sessions iterate {} \
             --prompt \"…\"`), or make a session with a looser --permissions policy.",
            r.session.id.short()
        );
    } else if r.session.status == SessionStatus::AwaitingInput {
        println!(
            "\nThe agent asked a question: answer with `amp-sessions iterate {} --prompt \"…\"`",
            r.session.id.short()
        );
    }
}

/// `$0.0123 (price table)`, or `unknown` when no price is known.
pub fn cost_text(cost: Option<f64>, source: Option<&str>) -> String {
    match cost {
        Some(c) => format!("${c:.4} ({})", source.unwrap_or("-").replace('_', " ")),
        None => "unknown (no price for this model; set pricing.<model> in the config)".into(),
    }
}

/// `logs <s> [--follow]`: every stored line; with `--follow`, new lines as they are stored, until the run
/// that is going on (or the next one to start) ends.
pub fn logs(session: &str, follow: bool, raw: bool, json: bool) -> Result<(), CliError> {
    let engine = open_engine()?;
    let s = engine.session(session, true)?;
    let mut feed = engine.follow_events(&s.id, true)?;
    loop {
        let rows = feed.next(Duration::from_millis(if follow { 500 } else { 0 }))?;
        let mut out = std::io::stdout().lock();
        for row in &rows {
            if json {
                let line = serde_json::to_string(row).map_err(std::io::Error::other)?;
                writeln!(out, "{line}")?;
            } else if raw {
                writeln!(out, "{}", row.raw)?;
            } else {
                let at = format_ms(row.ts);
                let time = at.get(11..23).unwrap_or(&at);
                for ev in &row.events {
                    writeln!(out, "{time}  {}", ev.summary())?;
                }
            }
        }
        out.flush()?;
        drop(out);
        if rows.is_empty() && (!follow || feed.run_finished()?) {
            return Ok(());
        }
    }
}

/// `tools <s>`.
pub fn tools(session: &str, json: bool) -> Result<(), CliError> {
    let engine = open_engine()?;
    let s = engine.session(session, true)?;
    let calls = engine.tool_calls(&s.id)?;
    if json {
        return Ok(print_json(&calls)?);
    }
    if calls.is_empty() {
        println!("No tool calls recorded for {} yet.", s.name);
        return Ok(());
    }
    let mut t = output::table(&["TOOL", "RESULT", "DURATION", "EXIT", "INPUT"]);
    for c in &calls {
        let result = match c.success {
            _ if c.denied => "DENIED",
            Some(true) => "ok",
            Some(false) => "failed",
            None => "no result",
        };
        let input = c.input.as_ref().map(|i| i.to_string()).unwrap_or_default();
        t.add_row(vec![
            c.name.clone(),
            result.to_string(),
            c.duration_ms.map(|d| format!("{d} ms")).unwrap_or_default(),
            c.exit_code.map(|e| e.to_string()).unwrap_or_default(),
            clip(&input, 70),
        ]);
    }
    output::print_table(&t);
    let denied = calls.iter().filter(|c| c.denied).count();
    if denied > 0 {
        println!("{denied} of {} tool calls were denied (permission policy, sandbox or user).", calls.len());
    }
    Ok(())
}

/// `usage <s>`.
pub fn usage(session: &str, json: bool) -> Result<(), CliError> {
    let engine = open_engine()?;
    let s = engine.session(session, true)?;
    let rows = engine.usage_rows(&s.id)?;
    let iterations = engine.iterations(&s.id)?;
    if json {
        return Ok(print_json(&serde_json::json!({ "session": s.id, "usage": rows }))?);
    }
    if rows.is_empty() {
        println!("No token usage recorded for {} yet.", s.name);
        return Ok(());
    }
    let mut t =
        output::table(&["ITER", "MODEL", "INPUT", "OUTPUT", "CACHE READ", "CACHE WRITE", "COST", "SOURCE"]);
    let mut total = ampsm_core::TokenUsage::default();
    let mut cost = Some(0.0);
    for r in &rows {
        let seq = iterations
            .iter()
            .find(|i| Some(&i.id) == r.iteration_id.as_ref())
            .map(|i| i.seq.to_string())
            .unwrap_or_default();
        total.add(&r.usage);
        cost = match (cost, r.cost_usd) {
            (Some(a), Some(b)) => Some(a + b),
            _ if r.usage.is_zero() => cost,
            _ => None,
        };
        t.add_row(vec![
            seq,
            r.model.clone().unwrap_or_else(|| "(not reported)".into()),
            r.usage.input.to_string(),
            r.usage.output.to_string(),
            r.usage.cache_read.to_string(),
            r.usage.cache_write.to_string(),
            r.cost_usd.map(|c| format!("${c:.4}")).unwrap_or_else(|| "unknown".into()),
            r.price_entry.clone().unwrap_or_else(|| r.cost_source.clone()),
        ]);
    }
    t.add_row(vec![
        "total".into(),
        String::new(),
        total.input.to_string(),
        total.output.to_string(),
        total.cache_read.to_string(),
        total.cache_write.to_string(),
        cost.map(|c| format!("${c:.4}")).unwrap_or_else(|| "unknown".into()),
        String::new(),
    ]);
    output::print_table(&t);
    Ok(())
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    }
}

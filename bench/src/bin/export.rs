//! `export` of one session holding 100,000 agent events, in each format (JSON, JSONL, CSV): wall time,
//! output size and peak RSS of the release binary, against the target of issue 5 (peak RSS under 100 MB).
//! The events are recorded through the store exactly as `iterate` records them (raw line, normalized
//! events, tool calls paired by id), so the export reads what a real session holds. Run:
//! `cargo run --release -p ampsm-bench --bin export-bench`.

use ampsm_bench::{children_peak_rss_kib, release_binary, report};
use ampsm_core::{AgentEvent, SessionId};
use ampsm_store::{EventRecord, LinePosition, NewIteration, NewSession, Store};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

const EVENTS: usize = 100_000;
/// A tool call (use + result lines) every this many lines.
const TOOL_EVERY: usize = 10;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // Each format is measured in a process of its own, so its peak-RSS figure covers that export only.
    let result = if args.get(1).map(String::as_str) == Some("--measure") && args.len() == 5 {
        measure(Path::new(&args[2]), Path::new(&args[3]), &args[4])
    } else {
        run()
    };
    if let Err(e) = result {
        eprintln!("export-bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let bin = release_binary()?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let home = dir.path().join("home");
    let started = Instant::now();
    let id = fill(&home)?;
    println!(
        "recorded {EVENTS} events of session {} in {:.1} s",
        id.short(),
        started.elapsed().as_secs_f64()
    );
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut ok = true;
    for format in ["json", "jsonl", "csv"] {
        let status = Command::new(&me)
            .arg("--measure")
            .arg(&bin)
            .arg(&home)
            .arg(format)
            .status()
            .map_err(|e| format!("cannot start the measuring process: {e}"))?;
        ok &= status.success();
    }
    if ok { Ok(()) } else { Err("a target was missed".into()) }
}

/// Records one session with [`EVENTS`] stream lines.
fn fill(home: &Path) -> Result<SessionId, String> {
    let mut store = Store::open(&home.join("sessions.db")).map_err(|e| e.to_string())?;
    let id = SessionId::new_random();
    store
        .insert_creating_session(&NewSession {
            id: id.clone(),
            name: "export-bench".into(),
            repo_path: home.join("no-repo").display().to_string(),
            base_branch: "main".into(),
            base_commit: "4b825dc642cb6eb9a060e54bf8d69288fbee4904".into(),
            branch: format!("amp/export-bench-{}", id.short()),
            worktree_path: home.join("no-worktree").display().to_string(),
            agent: "claude".into(),
            model: Some("claude-sonnet-4-5".into()),
            prompt: Some("Export benchmark".into()),
            script: None,
            budget_usd: None,
            batch_item_id: None,
            bench_result_id: None,
            creating_pid: 1,
            permissions: None,
        })
        .map_err(|e| e.to_string())?;
    store.finish_creating(&id).map_err(|e| e.to_string())?;
    let iteration = "0123456789abcdef0123456789abcdef".to_string();
    store
        .begin_iteration(
            &NewIteration {
                id: iteration.clone(),
                session_id: id.clone(),
                kind: "iterate",
                prompt: Some("Export benchmark".into()),
                agent: "claude".into(),
                model: Some("claude-sonnet-4-5".into()),
                thread_id: None,
                runner_pid: 1,
                permissions: None,
            },
            "running claude",
        )
        .map_err(|e| e.to_string())?;
    let t0 = 1_760_000_000_000i64;
    let mut batch = Vec::with_capacity(2_000);
    for i in 0..EVENTS {
        let call = format!("toolu_{:06}", i / TOOL_EVERY);
        let (raw, events) = match i % TOOL_EVERY {
            0 => (
                format!(
                    r#"{{"type":"assistant","message":{{"id":"msg_{i}","content":[{{"type":"tool_use","id":"{call}","name":"Bash","input":{{"command":"cargo test -p crate_{i}"}}}}]}}}}"#
                ),
                vec![AgentEvent::ToolUse {
                    call_id: call.clone(),
                    name: "Bash".into(),
                    input: serde_json::json!({ "command": format!("cargo test -p crate_{i}") }),
                }],
            ),
            1 => (
                format!(
                    r#"{{"type":"user","message":{{"content":[{{"type":"tool_result","tool_use_id":"{call}","content":"test result: ok. 42 passed; 0 failed"}}]}}}}"#
                ),
                vec![AgentEvent::ToolResult {
                    call_id: call.clone(),
                    ok: true,
                    output: "test result: ok. 42 passed; 0 failed".into(),
                    exit_code: Some(0),
                    duration_ms: None,
                }],
            ),
            _ => {
                let text = format!(
                    "Line {i}: reading the module, checking the callers, and planning the next edit \
                     so that \"quoted\" text, commas, and new\nlines are exported correctly."
                );
                (
                    serde_json::json!({"type": "assistant", "message": {"id": format!("msg_{i}"),
                        "content": [{"type": "text", "text": text}]}})
                    .to_string(),
                    vec![AgentEvent::AssistantText { text, delta: false }],
                )
            }
        };
        let at = LinePosition {
            session_id: id.to_string(),
            iteration_id: iteration.clone(),
            seq: i as i64,
            ts: t0 + i as i64 * 7,
            stream: "stdout",
        };
        batch.push(EventRecord::new(at, raw, false, &events));
        if batch.len() == 2_000 {
            store.record_events(&batch).map_err(|e| e.to_string())?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        store.record_events(&batch).map_err(|e| e.to_string())?;
    }
    Ok(id)
}

fn measure(bin: &Path, home: &Path, format: &str) -> Result<(), String> {
    let out = home.join(format!("export-{format}"));
    let started = Instant::now();
    let result = Command::new(bin)
        .args(["export", "--format", format, "--out"])
        .arg(&out)
        .arg("--json")
        .env("AMPSM_HOME", home)
        .env_remove("AMPSM_DB_PATH")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let took = started.elapsed();
    if !result.status.success() {
        return Err(format!("export --format {format} failed: {}", String::from_utf8_lossy(&result.stderr)));
    }
    let summary: serde_json::Value = serde_json::from_slice(&result.stdout).map_err(|e| e.to_string())?;
    let events = summary["rows"]["events"].as_u64().unwrap_or(0);
    let bytes: u64 = summary["files"]
        .as_array()
        .map(|files| {
            files
                .iter()
                .filter_map(|f| f.as_str())
                .filter_map(|f| std::fs::metadata(f).ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    let rss_mb = children_peak_rss_kib() as f64 * 1024.0 / 1_000_000.0;
    println!(
        "export --format {format}: {events} events, {:.1} MB written in {:.2} s",
        bytes as f64 / 1_000_000.0,
        took.as_secs_f64()
    );
    let all = report(&format!("{format}: events exported"), events as f64, "events", EVENTS as f64, false);
    let small = report(&format!("{format}: peak RSS"), rss_mb, "MB", 100.0, true);
    if all && small { Ok(()) } else { Err("a target was missed".into()) }
}

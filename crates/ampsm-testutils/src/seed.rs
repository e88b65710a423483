//! State written straight into a test's store, for cases a real run would take long or a real agent to
//! reach: a run under the `ask` policy that waits for answers.

use ampsm_core::{PermissionPolicy, SessionId, SessionStatus};
use ampsm_store::Store;
use std::path::Path;

/// Puts a session into the state of a run under the `ask` policy that waits for answers: an iteration
/// whose runner is this test process (alive, so nothing repairs it), the session `awaiting-input`, and a
/// pending approval per `(tool, JSON input)`, written straight into the store at `db`. Returns the
/// approvals' numbers.
pub fn pending_approvals(db: &Path, session_id: &str, calls: &[(&str, String)]) -> Vec<i64> {
    let mut store = Store::open(db).unwrap_or_else(|e| panic!("seeding the store at {}: {e}", db.display()));
    let sid = SessionId::from_stored(session_id);
    let session =
        store.get_session(&sid).unwrap_or_else(|e| panic!("seeding the store at {}: {e}", db.display()));
    let running = store
        .list_iterations(&sid)
        .unwrap_or_else(|e| panic!("seeding the store at {}: {e}", db.display()))
        .into_iter()
        .find(|it| it.ended_at.is_none())
        .map(|it| it.id);
    let iteration_id = match running {
        Some(id) => id,
        None => {
            let id = ampsm_core::id::new_id();
            let it = ampsm_store::NewIteration {
                id: id.clone(),
                session_id: sid.clone(),
                kind: "iterate",
                prompt: Some("work, asking first".into()),
                agent: session.agent.clone(),
                model: None,
                thread_id: None,
                runner_pid: i64::from(std::process::id()),
                permissions: Some(PermissionPolicy::Ask),
            };
            store
                .begin_iteration(&it, "running (test)")
                .unwrap_or_else(|e| panic!("seeding the store at {}: {e}", db.display()));
            id
        }
    };
    let mut seqs = Vec::new();
    for (tool, input) in calls {
        let a = store
            .insert_approval(&ampsm_store::NewApproval {
                id: ampsm_core::id::new_id(),
                session_id: sid.clone(),
                iteration_id: iteration_id.clone(),
                request_id: ampsm_core::id::new_id(),
                call_id: Some(format!("toolu_{}", ampsm_core::id::new_id())),
                tool: tool.to_string(),
                input: input.clone(),
                expires_at: ampsm_core::time::now_ms() + 600_000,
            })
            .unwrap_or_else(|e| panic!("seeding the store at {}: {e}", db.display()));
        let note = format!("waiting for approval #{}: {tool}", a.seq);
        store
            .set_status(&sid, SessionStatus::AwaitingInput, Some(&note))
            .unwrap_or_else(|e| panic!("seeding the store at {}: {e}", db.display()));
        seqs.push(a.seq);
    }
    seqs
}

/// Writes a finished iteration of `lines` agent lines into the store at `db` (for the views of long
/// sessions): every third line an assistant message `message N` in Markdown, a Bash call `echo N`, and
/// its result `out N`, each line with its own id. `extra` messages (raw Markdown, for example hostile
/// ones) come first. The session ends `idle` as it was. Returns the iteration's id.
pub fn conversation(db: &Path, session_id: &str, lines: usize, extra: &[&str]) -> String {
    use ampsm_core::{AgentEvent, IterationOutcome};
    use ampsm_store::{EventRecord, IterationEnd, LinePosition};
    let fail = |e: ampsm_store::StoreError| -> ! { panic!("seeding the store at {}: {e}", db.display()) };
    let mut store = Store::open(db).unwrap_or_else(|e| fail(e));
    let sid = SessionId::from_stored(session_id);
    let session = store.get_session(&sid).unwrap_or_else(|e| fail(e));
    let iteration_id = ampsm_core::id::new_id();
    let it = ampsm_store::NewIteration {
        id: iteration_id.clone(),
        session_id: sid.clone(),
        kind: "iterate",
        prompt: Some("a long run".into()),
        agent: session.agent.clone(),
        model: None,
        thread_id: None,
        runner_pid: i64::from(std::process::id()),
        permissions: None,
    };
    store.begin_iteration(&it, "running (seeded)").unwrap_or_else(|e| fail(e));
    let start = ampsm_core::time::now_ms();
    let mut events: Vec<AgentEvent> =
        extra.iter().map(|t| AgentEvent::AssistantText { text: t.to_string(), delta: false }).collect();
    for i in 0..lines.saturating_sub(extra.len()) {
        let n = i / 3;
        events.push(match i % 3 {
            0 => AgentEvent::AssistantText { text: format!("message **{n}**"), delta: false },
            1 => AgentEvent::ToolUse {
                call_id: format!("call_{n}"),
                name: "Bash".into(),
                input: serde_json::json!({ "command": format!("echo {n}") }),
            },
            _ => AgentEvent::ToolResult {
                call_id: format!("call_{n}"),
                ok: true,
                output: format!("out {n}"),
                exit_code: Some(0),
                duration_ms: Some(1),
            },
        });
    }
    for (chunk_no, chunk) in events.chunks(5_000).enumerate() {
        let batch: Vec<EventRecord> = chunk
            .iter()
            .enumerate()
            .map(|(k, ev)| {
                let seq = (chunk_no * 5_000 + k) as i64;
                let at = LinePosition {
                    session_id: sid.to_string(),
                    iteration_id: iteration_id.clone(),
                    seq,
                    ts: start + seq,
                    stream: "stdout",
                };
                EventRecord::new(
                    at,
                    serde_json::to_string(ev).unwrap_or_default(),
                    false,
                    std::slice::from_ref(ev),
                )
            })
            .collect();
        store.record_events(&batch).unwrap_or_else(|e| fail(e));
    }
    store
        .finish_iteration(&iteration_id, &IterationEnd::new(IterationOutcome::Success))
        .unwrap_or_else(|e| fail(e));
    store.set_status(&sid, SessionStatus::Idle, Some("seeded")).unwrap_or_else(|e| fail(e));
    iteration_id
}

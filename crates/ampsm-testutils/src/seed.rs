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

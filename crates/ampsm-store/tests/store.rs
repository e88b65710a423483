//! Integration tests of the store on real SQLite files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ampsm_core::{SessionId, SessionStatus};
use ampsm_store::{NewSession, SessionFilter, Store, StoreError};

fn new_session(name: &str, repo: &str) -> NewSession {
    NewSession {
        id: SessionId::new_random(),
        name: name.into(),
        repo_path: repo.into(),
        base_branch: "main".into(),
        base_commit: "0".repeat(40),
        branch: format!("amp/{name}"),
        worktree_path: format!("/wt/{name}"),
        agent: "amp".into(),
        model: None,
        prompt: None,
        script: None,
        budget_usd: None,
        batch_item_id: None,
        bench_result_id: None,
        creating_pid: 1,
        permissions: None,
    }
}

#[test]
fn newer_database_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 99;").unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let err = Store::open(&path).err().expect("must refuse");
    assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
    assert!(err.to_string().contains("newer than this amp-sessions understands"));
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn sessions_resolve_by_id_prefix_and_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("s.db")).unwrap();
    let a = new_session("alpha", "/r1");
    store.insert_creating_session(&a).unwrap();
    // Unfinished creations are invisible.
    assert!(store.list_sessions(&SessionFilter::default()).unwrap().is_empty());
    assert!(store.resolve_session("alpha", false).is_err());
    store.finish_creating(&a.id).unwrap();
    assert_eq!(store.resolve_session("alpha", false).unwrap().id, a.id);
    assert_eq!(store.resolve_session(a.id.short(), false).unwrap().id, a.id);
    assert_eq!(store.resolve_session(a.id.as_str(), false).unwrap().id, a.id);
    assert!(matches!(store.resolve_session("zzz-none", false), Err(StoreError::SessionNotFound(_))));

    // Same name in another repository is allowed but makes the name ambiguous.
    let b = new_session("alpha", "/r2");
    store.insert_creating_session(&b).unwrap();
    store.finish_creating(&b.id).unwrap();
    assert!(matches!(store.resolve_session("alpha", false), Err(StoreError::AmbiguousSession { .. })));
    // Same name in the same repository is refused.
    let dup = new_session("alpha", "/r1");
    assert!(matches!(store.insert_creating_session(&dup), Err(StoreError::DuplicateName { .. })));
    // After removal the name is free again, and the removed row is still there.
    store.mark_removed(&a.id).unwrap();
    store.insert_creating_session(&dup).unwrap();
    assert!(store.resolve_session(a.id.as_str(), true).is_ok());
    assert!(store.resolve_session(a.id.as_str(), false).is_err());
    let filter = SessionFilter { repo_path: Some("/r2".into()), ..Default::default() };
    assert_eq!(store.list_sessions(&filter).unwrap().len(), 1);
}

#[test]
fn status_changes_follow_the_state_machine() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("s.db")).unwrap();
    let s = new_session("st", "/r");
    store.insert_creating_session(&s).unwrap();
    store.finish_creating(&s.id).unwrap();
    store.set_status(&s.id, SessionStatus::Running, Some("iterate")).unwrap();
    let err = store.set_status(&s.id, SessionStatus::Done, None).unwrap_err();
    assert!(err.to_string().contains("cannot go from running to done"), "{err}");
    store.set_status(&s.id, SessionStatus::AwaitingInput, Some("asked")).unwrap();
    let history = store.status_history(&s.id).unwrap();
    let tos: Vec<_> = history.iter().map(|h| h.to.as_str()).collect();
    assert_eq!(tos, ["idle", "running", "awaiting-input"]);
    let filter = SessionFilter { status: Some(SessionStatus::AwaitingInput), ..Default::default() };
    assert_eq!(store.list_sessions(&filter).unwrap().len(), 1);
}

#[test]
fn an_iteration_begins_with_its_row_status_and_runner_pid_in_one_step() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("s.db")).unwrap();
    let s = new_session("it", "/r");
    store.insert_creating_session(&s).unwrap();
    store.finish_creating(&s.id).unwrap();
    let it = ampsm_store::NewIteration {
        id: "i1".into(),
        session_id: s.id.clone(),
        kind: "iterate",
        prompt: Some("go".into()),
        agent: "amp".into(),
        model: None,
        thread_id: None,
        runner_pid: 4242,
        permissions: None,
    };
    assert_eq!(store.begin_iteration(&it, "running amp").unwrap(), 1);
    let got = store.get_session(&s.id).unwrap();
    assert_eq!(got.status, SessionStatus::Running);
    assert_eq!(got.status_note.as_deref(), Some("running amp"));
    assert_eq!(got.runner_pid, Some(4242));
    assert_eq!(store.list_iterations(&s.id).unwrap().len(), 1);
    // An unknown session gets neither an iteration nor a status.
    let ghost = ampsm_store::NewIteration { id: "i2".into(), session_id: SessionId::new_random(), ..it };
    assert!(store.begin_iteration(&ghost, "running amp").is_err());
    let raw = rusqlite::Connection::open(dir.path().join("s.db")).unwrap();
    let n: i64 = raw.query_row("SELECT COUNT(*) FROM iterations", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 1);
}

#[test]
fn agent_events_are_append_only() {
    let dir = tempfile::tempdir().unwrap();
    let _store = Store::open(&dir.path().join("s.db")).unwrap();
    // The trigger guards the table for every connection, not only the store's.
    let conn = rusqlite::Connection::open(dir.path().join("s.db")).unwrap();
    conn.execute_batch(
        "INSERT INTO sessions (id, name, repo_path, base_branch, base_commit, branch, worktree_path, agent, created_at, updated_at)
         VALUES ('s1', 'n', '/r', 'main', 'c', 'b', '/w', 'amp', 0, 0);
         INSERT INTO agent_events (session_id, seq, ts, kind, raw, normalized) VALUES ('s1', 1, 0, 'output', 'x', '[]');",
    )
    .unwrap();
    let err = conn.execute("UPDATE agent_events SET raw = 'y'", []).unwrap_err();
    assert!(err.to_string().contains("append-only"));
}

#[test]
fn the_last_lines_of_a_session_come_oldest_first_and_skip_other_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db")).unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("s.db")).unwrap();
    conn.execute_batch(
        "INSERT INTO sessions (id, name, repo_path, base_branch, base_commit, branch, worktree_path, agent, created_at, updated_at)
         VALUES ('s1', 'a', '/r', 'main', 'c', 'b1', '/w1', 'amp', 0, 0), ('s2', 'b', '/r', 'main', 'c', 'b2', '/w2', 'amp', 0, 0);",
    )
    .unwrap();
    for i in 1..=10 {
        for s in ["s1", "s2"] {
            conn.execute(
                "INSERT INTO agent_events (session_id, seq, ts, kind, raw, normalized) VALUES (?1, ?2, 0, 'output', ?3, '[]')",
                rusqlite::params![s, i, format!("{s}-{i}")],
            )
            .unwrap();
        }
    }
    let s1 = SessionId::from_stored("s1".to_string());
    let last: Vec<String> = store.last_events(&s1, 3).unwrap().into_iter().map(|e| e.raw).collect();
    assert_eq!(last, ["s1-8", "s1-9", "s1-10"]);
    assert_eq!(store.last_events(&s1, 50).unwrap().len(), 10);
}

#[test]
fn commands_opening_a_new_database_at_the_same_moment_all_succeed() {
    // Two commands started together on a fresh home used to fail with "database is locked" while one of
    // them switched the new file to WAL.
    for round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions.db");
        let gate = std::sync::Arc::new(std::sync::Barrier::new(6));
        let opened: Vec<_> = (0..6)
            .map(|_| {
                let (path, gate) = (path.clone(), gate.clone());
                std::thread::spawn(move || {
                    gate.wait();
                    Store::open(&path).map(|s| s.list_sessions(&SessionFilter::default()).unwrap().len())
                })
            })
            .collect();
        for h in opened {
            assert_eq!(h.join().unwrap().unwrap_or_else(|e| panic!("round {round}: {e}")), 0);
        }
    }
}

/// A store with session `s1` (rows written straight with SQL, as the tests above do).
fn store_with_session(dir: &tempfile::TempDir) -> (Store, rusqlite::Connection, SessionId) {
    let store = Store::open(&dir.path().join("s.db")).unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("s.db")).unwrap();
    conn.execute_batch(
        "INSERT INTO sessions (id, name, repo_path, base_branch, base_commit, branch, worktree_path, agent, created_at, updated_at)
         VALUES ('s1', 'a', '/r', 'main', 'c', 'b1', '/w1', 'amp', 0, 0), ('s2', 'b', '/r', 'main', 'c', 'b2', '/w2', 'amp', 0, 0);",
    )
    .unwrap();
    (store, conn, SessionId::from_stored("s1".to_string()))
}

#[test]
fn tool_figures_are_counted_in_sql_with_a_nearest_rank_p95() {
    let dir = tempfile::tempdir().unwrap();
    let (store, conn, s1) = store_with_session(&dir);
    let call = |session: &str, name: &str, success: Option<bool>, duration: Option<i64>, denied: bool| {
        conn.execute(
            "INSERT INTO tool_calls (session_id, call_id, name, started_at, duration_ms, success, denied) \
             VALUES (?1, 'c', ?2, 0, ?3, ?4, ?5)",
            rusqlite::params![session, name, duration, success, denied],
        )
        .unwrap();
    };
    // Bash: 20 results of 1..=20 ms (shuffled), one without a result (its duration does not count), one
    // denied; Read: two calls; another session's calls are not counted.
    for d in [7, 3, 20, 1, 15, 9, 2, 11, 19, 4, 13, 6, 18, 5, 17, 8, 16, 10, 14, 12] {
        call("s1", "Bash", Some(d % 4 != 0), Some(d), false);
    }
    call("s1", "Bash", None, Some(500), false);
    call("s1", "Bash", Some(false), Some(0), true);
    call("s1", "Read", Some(true), Some(3), false);
    call("s1", "Read", Some(true), None, false);
    call("s2", "Bash", Some(true), Some(1_000), false);
    let stats = store.tool_stats(&s1).unwrap();
    assert_eq!(stats.len(), 2);
    let bash = &stats[0];
    assert_eq!((bash.name.as_str(), bash.count), ("Bash", 22));
    assert_eq!((bash.succeeded, bash.failed, bash.no_result, bash.denied), (15, 6, 1, 1));
    // Durations of the 21 calls with a result: 0 and 1..=20; nearest rank of p95 is ceil(0.95 × 21) = 20.
    assert_eq!((bash.durations, bash.duration_sum_ms, bash.max_duration_ms), (21, Some(210), Some(20)));
    assert_eq!(bash.p95_duration_ms, Some(19));
    let read = &stats[1];
    assert_eq!((read.count, read.succeeded, read.durations, read.p95_duration_ms), (2, 2, 1, Some(3)));
    let denied = store.denied_tool_calls(&s1).unwrap();
    assert_eq!(denied.len(), 1);
    assert!(denied[0].denied && denied[0].name == "Bash");
    assert!(store.tool_stats(&SessionId::from_stored("none".to_string())).unwrap().is_empty());
}

#[test]
fn errors_are_counted_once_and_lines_added_later_are_read_on_the_next_call() {
    use ampsm_core::AgentEvent;
    let dir = tempfile::tempdir().unwrap();
    let (store, conn, s1) = store_with_session(&dir);
    let line = |session: &str, seq: i64, events: &[AgentEvent]| {
        conn.execute(
            "INSERT INTO agent_events (session_id, seq, ts, kind, raw, normalized) VALUES (?1, ?2, ?2, 'x', 'raw', ?3)",
            rusqlite::params![session, seq, serde_json::to_string(events).unwrap()],
        )
        .unwrap();
    };
    let text = AgentEvent::AssistantText { text: "working".into(), delta: false };
    let error = |m: &str| AgentEvent::Error { message: m.into(), fatal: false };
    for seq in 0..30 {
        match seq % 10 {
            // An error after the text of the same line counts too (the first event's kind is not enough).
            3 => line("s1", seq, &[text.clone(), error(&format!("e{seq}"))]),
            7 => line("s1", seq, &[AgentEvent::Retry { attempt: Some(1), message: format!("r{seq}") }]),
            _ => line("s1", seq, std::slice::from_ref(&text)),
        }
        line("s2", seq, &[error("other session")]);
    }
    let first = store.error_summary(&s1, 2).unwrap();
    assert_eq!(first.count, 6);
    let messages =
        |v: &[ampsm_store::metrics::ErrorEvent]| v.iter().map(|e| e.message.clone()).collect::<Vec<_>>();
    assert_eq!(messages(&first.first), ["e3", "r7"]);
    assert_eq!(messages(&first.latest), ["e23", "r27"]);
    assert_eq!(first.latest[1].kind, "retry");
    // Lines appended afterwards are found by the next call, on this store and on another one.
    line("s1", 30, &[AgentEvent::Error { message: "fatal one".into(), fatal: true }]);
    line("s1", 31, std::slice::from_ref(&text));
    let next = store.error_summary(&s1, 2).unwrap();
    assert_eq!(next.count, 7);
    assert_eq!(messages(&next.first), ["e3", "r7"]);
    assert_eq!(messages(&next.latest), ["r27", "fatal one"]);
    assert!(next.latest[1].fatal);
    let other = Store::open(&dir.path().join("s.db")).unwrap();
    assert_eq!(other.error_events(&s1, 20).unwrap().0, 7);
    // Asking for more kept errors reads the log again, and finds the same ones.
    let all = store.error_summary(&s1, 20).unwrap();
    assert_eq!((all.count, all.first.len(), all.latest.len()), (7, 7, 7));
    assert_eq!(messages(&all.first), messages(&all.latest));
}

#[test]
fn a_database_put_back_with_fewer_lines_is_read_again_for_its_errors() {
    use ampsm_core::AgentEvent;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let backup = dir.path().join("backup.db");
    {
        let (store, conn, s1) = store_with_session(&dir);
        let error = |seq: i64| {
            let events = [AgentEvent::Error { message: format!("e{seq}"), fatal: false }];
            conn.execute(
                "INSERT INTO agent_events (session_id, seq, ts, kind, raw, normalized) VALUES ('s1', ?1, 0, 'error', 'r', ?2)",
                rusqlite::params![seq, serde_json::to_string(&events).unwrap()],
            )
            .unwrap();
        };
        for seq in 0..3 {
            error(seq);
        }
        conn.execute("VACUUM INTO ?1", [backup.to_str().unwrap()]).unwrap();
        for seq in 3..5 {
            error(seq);
        }
        assert_eq!(store.error_summary(&s1, 20).unwrap().count, 5);
    }
    for tail in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{tail}", path.display()));
    }
    std::fs::copy(&backup, &path).unwrap();
    let store = Store::open(&path).unwrap();
    let summary = store.error_summary(&SessionId::from_stored("s1".to_string()), 20).unwrap();
    assert_eq!(summary.count, 3);
    assert_eq!(summary.latest.last().unwrap().message, "e2");
}

#[test]
fn long_sessions_are_the_ones_with_the_most_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (store, conn, s1) = store_with_session(&dir);
    for (session, lines) in [("s1", 5), ("s2", 3)] {
        for seq in 0..lines {
            conn.execute(
                "INSERT INTO agent_events (session_id, seq, ts, kind, raw, normalized) VALUES (?1, ?2, 0, 'x', 'r', '[]')",
                rusqlite::params![session, seq],
            )
            .unwrap();
        }
    }
    assert_eq!(store.long_sessions(4, 10).unwrap(), std::slice::from_ref(&s1));
    assert_eq!(store.long_sessions(1, 1).unwrap(), [s1]);
    assert_eq!(store.long_sessions(1, 10).unwrap().len(), 2);
    assert!(store.long_sessions(6, 10).unwrap().is_empty());
}

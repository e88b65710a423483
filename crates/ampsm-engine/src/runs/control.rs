//! Control of a run from other processes: a watcher thread beside every agent run, with its own database
//! connection, that
//! - stops the agent when `amp-sessions stop` (or the dashboard's Stop) asked for it, through the run's
//!   cancel channel (the same path as a budget stop or Ctrl-C: its whole process group is stopped and its
//!   work so far committed);
//! - under the `ask` policy, records each permission request of the agent as a pending approval, puts the
//!   session in `awaiting-input` and notifies, then writes the answer (`approve`/`deny` from any terminal or
//!   the dashboard, or a denial once `session.ask_timeout` passed) back to the agent's stdin.
//!
//! The watcher never blocks the agent's reader: requests reach it through a channel, and answers go to the
//! agent through the run's answer channel.

use crate::notify::{Notification, NotifyEvent};
use ampsm_agent::AgentAdapter;
use ampsm_config::config::NotificationsConfig;
use ampsm_core::{SessionId, SessionStatus};
use ampsm_store::{Approval, ApprovalStatus, NewApproval, Store};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

/// How often the watcher looks at the database for answers and stop requests.
const POLL_EVERY: Duration = Duration::from_millis(200);

/// A permission request seen in the agent's stream.
#[derive(Debug, Clone)]
pub(crate) struct PermissionAsk {
    pub(crate) request_id: String,
    pub(crate) call_id: Option<String>,
    pub(crate) tool: String,
    pub(crate) input: serde_json::Value,
}

/// What the watcher needs to know about its run.
pub(crate) struct WatchSpec {
    pub(crate) db: PathBuf,
    pub(crate) session_id: SessionId,
    pub(crate) session_name: String,
    pub(crate) iteration_id: String,
    pub(crate) agent: String,
    pub(crate) ask_timeout: Duration,
    pub(crate) notifications: NotificationsConfig,
    /// The data's home (where a running desktop app registers).
    pub(crate) home: PathBuf,
    /// Stops the agent (its whole process group).
    pub(crate) cancel: tokio::sync::watch::Sender<bool>,
    /// Lines for the agent's stdin (answers to its requests).
    pub(crate) answers: tokio::sync::mpsc::UnboundedSender<String>,
    /// The run's clock, stopped while a request waits (the timeout counts the agent's own time only).
    pub(crate) clock: std::sync::Arc<ampsm_agent::RunClock>,
}

/// What the watcher saw, once the run is over.
#[derive(Debug, Clone, Default)]
pub(crate) struct WatchSummary {
    /// `stop` asked this run to stop (and it was stopped).
    pub(crate) stop_requested: bool,
}

/// The watcher of one run.
pub(crate) struct RunWatch {
    tx: mpsc::Sender<PermissionAsk>,
    thread: std::thread::JoinHandle<WatchSummary>,
}

impl RunWatch {
    pub(crate) fn start(spec: WatchSpec) -> RunWatch {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || watch(spec, rx));
        RunWatch { tx, thread }
    }

    /// A sender for the agent's permission requests (from the line callback).
    pub(crate) fn requests(&self) -> mpsc::Sender<PermissionAsk> {
        self.tx.clone()
    }

    /// Ends the watcher once the run is over: requests still pending are recorded `cancelled`.
    pub(crate) fn finish(self) -> WatchSummary {
        drop(self.tx);
        self.thread.join().unwrap_or_default()
    }
}

/// One request waiting for its answer.
struct Waiting {
    approval: Approval,
    request_id: String,
    input: serde_json::Value,
}

fn watch(spec: WatchSpec, rx: mpsc::Receiver<PermissionAsk>) -> WatchSummary {
    let mut summary = WatchSummary::default();
    // Without a database connection nothing can be answered or stopped from outside; the run goes on.
    let Ok(mut store) = Store::open(&spec.db) else { return summary };
    let adapter = ampsm_agent::adapter_for(&spec.agent).ok();
    let mut waiting: Vec<Waiting> = Vec::new();
    let mut open = true;
    while open || !waiting.is_empty() {
        match rx.recv_timeout(POLL_EVERY) {
            Ok(ask) => {
                if let Some(w) = record_request(&mut store, &spec, ask) {
                    spec.clock.pause();
                    waiting.push(w);
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                if open {
                    open = false;
                    // The run is over: nobody reads answers any more.
                    let _ = store.cancel_pending_approvals(&spec.iteration_id, "the agent run ended first");
                    for _ in waiting.drain(..) {
                        spec.clock.resume();
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if open && !summary.stop_requested && store.stop_requested(&spec.iteration_id).unwrap_or(false) {
            summary.stop_requested = true;
            let _ = spec.cancel.send(true);
        }
        let before = waiting.len();
        waiting.retain(|w| {
            let done = answer_if_decided(&mut store, &spec, adapter.as_deref(), w);
            if done {
                spec.clock.resume();
            }
            !done
        });
        if before > 0 && waiting.is_empty() && open {
            // Every question is answered: the agent works again.
            let _ = store.set_status(&spec.session_id, SessionStatus::Running, Some("approval answered"));
        }
    }
    summary
}

/// Stores a request as a pending approval, puts the session in `awaiting-input` and notifies.
fn record_request(store: &mut Store, spec: &WatchSpec, ask: PermissionAsk) -> Option<Waiting> {
    let expires_at = ampsm_core::time::now_ms()
        .saturating_add(i64::try_from(spec.ask_timeout.as_millis()).unwrap_or(i64::MAX / 2));
    let new = NewApproval {
        id: ampsm_core::id::new_id(),
        session_id: spec.session_id.clone(),
        iteration_id: spec.iteration_id.clone(),
        request_id: ask.request_id.clone(),
        call_id: ask.call_id.clone(),
        tool: ask.tool.clone(),
        input: ask.input.to_string(),
        expires_at,
    };
    let approval = store.insert_approval(&new).ok()?;
    let what = describe(&approval);
    let note = format!(
        "waiting for approval #{}: {what} (`amp-sessions approve {} {}` or `deny`)",
        approval.seq,
        spec.session_id.short(),
        approval.seq
    );
    let _ = store.set_status(&spec.session_id, SessionStatus::AwaitingInput, Some(&note));
    crate::notify::notify(
        &spec.notifications,
        &spec.home,
        &Notification {
            event: NotifyEvent::AwaitingInput,
            subject: crate::notify::Subject::Session,
            session_id: spec.session_id.to_string(),
            session_name: spec.session_name.clone(),
            status: SessionStatus::AwaitingInput.as_str().to_string(),
            message: format!("asks to run {what}"),
        },
    );
    Some(Waiting { approval, request_id: ask.request_id, input: ask.input })
}

/// Sends the answer when the request was answered or timed out; `true` when it is no longer waiting.
fn answer_if_decided(
    store: &mut Store,
    spec: &WatchSpec,
    adapter: Option<&dyn AgentAdapter>,
    w: &Waiting,
) -> bool {
    let Ok(Some(mut now)) = store.approval(&w.approval.id) else { return false };
    if now.status == ApprovalStatus::Pending && ampsm_core::time::now_ms() >= now.expires_at {
        let why = format!(
            "nobody answered within {}; denied",
            ampsm_core::duration::format_duration(spec.ask_timeout)
        );
        match store.settle_approval(&now.id, ApprovalStatus::TimedOut, Some(&why)) {
            Ok(Some(settled)) => now = settled,
            // Answered in the meantime: read it again next time.
            _ => return false,
        }
    }
    let allow = match now.status {
        ApprovalStatus::Pending => return false,
        ApprovalStatus::Approved => true,
        ApprovalStatus::Denied | ApprovalStatus::TimedOut => false,
        ApprovalStatus::Cancelled => return true,
    };
    let message = now.message.clone().unwrap_or_else(|| "denied by the user".to_string());
    if let Some(line) = adapter.and_then(|a| a.permission_answer(&w.request_id, &w.input, allow, &message)) {
        let _ = spec.answers.send(line);
    }
    let note =
        format!("#{} {}: {}", now.seq, if allow { "approved" } else { now.status.as_str() }, describe(&now));
    let _ = store.record_note(&spec.session_id, &note);
    true
}

/// `Write /path/file` or `Bash npm test`: the tool and what it is about.
pub fn describe(a: &Approval) -> String {
    let detail = ampsm_agent::parsers::input_detail(&a.input)
        .map(|d| {
            let one_line = d.replace('\n', " ");
            if one_line.chars().count() > 120 {
                format!(" {}…", one_line.chars().take(119).collect::<String>())
            } else {
                format!(" {one_line}")
            }
        })
        .unwrap_or_default();
    format!("{}{detail}", a.tool)
}

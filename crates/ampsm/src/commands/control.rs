//! Control of running agents from any terminal: `stop`, and the approvals of the `ask` permission policy
//! (`approvals`, `approve`, `deny`).

use super::{CliError, open_engine};
use crate::cli::{ApprovalsArgs, StopArgs};
use crate::output::{print_json, print_table, table};
use ampsm_core::time::{age, now_ms};
use ampsm_engine::records::ApprovalStatus;
use ampsm_engine::runs::permissions::ApprovalView;

/// `stop <s> [--wait DUR]`.
pub fn stop(a: StopArgs, json: bool) -> Result<(), CliError> {
    let wait = super::duration_flag("--wait", &a.wait)?;
    let mut engine = open_engine()?;
    let out = engine.stop_session(&a.session, wait)?;
    if json {
        return Ok(print_json(&out)?);
    }
    println!(
        "Stopped session {} ({}) after {:.1}s: {}; it is now {}",
        out.session.name,
        out.session.id.short(),
        out.waited_ms as f64 / 1000.0,
        out.how,
        out.session.status
    );
    Ok(())
}

/// `approvals [<s>] [--all]`.
pub fn approvals(a: ApprovalsArgs, json: bool) -> Result<(), CliError> {
    let engine = open_engine()?;
    let list: Vec<ApprovalView> = match (&a.session, a.all) {
        (Some(s), true) => {
            let session = engine.session(s, false)?;
            engine.session_approvals(&session)?
        }
        (s, _) => engine.pending_approvals(s.as_deref())?,
    };
    if json {
        return Ok(print_json(&list)?);
    }
    if list.is_empty() {
        println!("No tool call is waiting for approval.");
        return Ok(());
    }
    let mut t = table(&["session", "#", "status", "tool call", "asked", "answer by"]);
    let now = now_ms();
    for v in &list {
        let a = &v.approval;
        let due = if a.status == ApprovalStatus::Pending {
            let left = std::time::Duration::from_millis(u64::try_from(a.expires_at - now).unwrap_or(0));
            format!("within {}", ampsm_core::duration::format_duration(left))
        } else {
            a.message.clone().unwrap_or_default()
        };
        t.add_row(vec![
            v.session_name.clone(),
            a.seq.to_string(),
            a.status.as_str().to_string(),
            v.summary.clone(),
            age(a.created_at, now),
            due,
        ]);
    }
    print_table(&t);
    if list.iter().any(|v| v.approval.status == ApprovalStatus::Pending) {
        println!(
            "Answer with `amp-sessions approve <session> <#>` or `amp-sessions deny <session> <#> [-m WHY]`."
        );
    }
    Ok(())
}

/// `approve <s> [ID]` and `deny <s> [ID] [--message]`.
pub fn answer(
    session: &str,
    id: Option<i64>,
    allow: bool,
    message: Option<&str>,
    json: bool,
) -> Result<(), CliError> {
    let mut engine = open_engine()?;
    let v = engine.answer_approval(session, id, allow, message)?;
    if json {
        return Ok(print_json(&v)?);
    }
    println!(
        "{} #{} of session {}: {}",
        if allow { "Approved" } else { "Denied" },
        v.approval.seq,
        v.session_name,
        v.summary
    );
    Ok(())
}

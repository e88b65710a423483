//! `doctor` and `verify-amp`.

use super::{CliError, open_engine};
use crate::output::{self, print_fields, print_json};

pub fn doctor(json: bool) -> Result<(), CliError> {
    let mut engine = open_engine()?;
    let report = engine.doctor()?;
    let policies = engine.agent_policies();
    if json {
        print_json(&output::json_with(
            &report,
            vec![("permissions", serde_json::to_value(&policies).unwrap_or_default())],
        ))?;
    } else {
        let mut t = output::table(&["CHECK", "STATUS", "DETAIL"]);
        for c in &report.checks {
            t.add_row(vec![c.name.clone(), c.status.to_string(), c.detail.clone()]);
        }
        output::print_table(&t);
        println!();
        let mut t = output::table(&["AGENT", "CONTINUE", "INTERACTIVE", "REPORTS COST"]);
        for a in &report.agents {
            let cap = &a.capabilities;
            t.add_row(vec![
                a.agent.clone(),
                serde_json::to_value(cap.continue_mode)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                if cap.interactive { "yes" } else { "no" }.to_string(),
                if cap.reports_cost { "yes" } else { "no" }.to_string(),
            ]);
        }
        output::print_table(&t);
        println!();
        let mut t = output::table(&["AGENT", "PERMISSIONS", "FROM", "HOW (OR WHY NOT)"]);
        for a in &policies {
            for p in &a.policies {
                let mark = if p.policy == a.default { " (default)" } else { "" };
                t.add_row(vec![
                    a.agent.to_string(),
                    format!("{}{mark}", p.policy),
                    if p.honoured { "yes".to_string() } else { "NOT SUPPORTED".to_string() },
                    p.how.to_string(),
                ]);
            }
        }
        output::print_table(&t);
        println!(
            "The default of new sessions comes from agents.<name>.permissions, else session.permissions, else auto; \
             `new --permissions` chooses per session."
        );
    }
    if report.failed() {
        return Err(CliError::Reported {
            message: "a health check failed (see above)".into(),
            kind: ampsm_core::ErrorKind::Failed,
        });
    }
    Ok(())
}

pub fn verify_amp(json: bool) -> Result<(), CliError> {
    let engine = open_engine()?;
    let v = engine.verify_amp()?;
    if json {
        print_json(&v)?;
    } else {
        print_fields(&[
            ("amp", v.found.clone().unwrap_or_else(|| format!("not found ({})", v.program))),
            ("version", v.version.clone().unwrap_or_else(|| "-".into())),
            (
                "key",
                if v.key_present {
                    format!("present ({})", v.key_source.clone().unwrap_or_default())
                } else {
                    "missing".into()
                },
            ),
            ("auth check", format!("{}: {}", v.auth_check, v.auth_detail)),
        ]);
    }
    if v.ok() {
        Ok(())
    } else {
        let why = if v.found.is_none() {
            "amp is not installed: install it with npm install -g @ampcode/cli, or set amp.path"
        } else if !v.key_present {
            "amp has no key: run `amp login` or set AMP_API_KEY"
        } else {
            "amp's authenticated check failed (see above)"
        };
        Err(CliError::Reported { message: why.into(), kind: ampsm_core::ErrorKind::Failed })
    }
}

//! Session commands: `new`, `list`, `show`, `rm`/`cleanup`, `repo-info`, `repair`.

use super::{CliError, open_engine};
use crate::cli::{ListArgs, NewArgs, RepoInfoArgs, RmArgs, SetupArgs};
use crate::output::{self, print_fields, print_json, status_word};
use ampsm_core::time::{age, format_ms, now_ms};
use ampsm_core::{SessionStatus, dollars};
use ampsm_engine::SessionQuery;
use ampsm_engine::records::Session;
use ampsm_engine::{CreateSession, EngineError};

pub fn new(a: NewArgs, json: bool) -> Result<(), CliError> {
    let mut engine = open_engine()?;
    let run = a.run;
    // Ctrl-C stops a setup command (and the first run) instead of leaving it behind.
    let interrupt = ampsm_engine::Interrupt::install(crate::errors::exit_interrupted);
    let session = engine.create_session(CreateSession {
        repo: a.repo,
        name: a.name,
        prompt: a.prompt,
        base: a.base,
        agent: a.agent,
        model: a.model,
        script: a.script,
        budget_usd: a.budget.map(ampsm_core::Money::from_usd),
        setup: if a.no_setup { Some(String::new()) } else { a.setup },
        interrupt: Some(interrupt.clone()),
        permissions: match a.permissions.as_deref() {
            Some(p) => Some(p.parse().map_err(|e: String| {
                CliError::Engine(EngineError::Invalid(format!("--permissions: {e}")))
            })?),
            None => None,
        },
        ..Default::default()
    })?;
    if run {
        if !json {
            println!(
                "Created session {} ({}) on branch {}",
                session.name,
                session.id.short(),
                session.branch
            );
        }
        let req = ampsm_engine::IterateRequest {
            session: session.id.to_string(),
            interrupt: Some(interrupt),
            ..Default::default()
        };
        return super::agents::run_iteration(&mut engine, req, json);
    }
    if json {
        print_json(&session)?;
    } else {
        println!("Created session {} ({})", session.name, session.id.short());
        let mut fields = vec![
            ("branch", session.branch.clone()),
            ("worktree", session.worktree_path.clone()),
            (
                "base",
                format!(
                    "{} ({})",
                    session.base_branch,
                    &session.base_commit[..12.min(session.base_commit.len())]
                ),
            ),
            ("agent", session.agent.clone()),
            ("permissions", engine.session_policy(&session).to_string()),
        ];
        if let Some(note) = session.status_note.as_deref().filter(|n| n.starts_with("setup ")) {
            fields.push(("setup", note.trim_start_matches("setup ").to_string()));
        }
        print_fields(&fields);
    }
    Ok(())
}

/// `setup <s> [--cmd CMD]`: the setup command again, in the session's worktree.
pub fn setup(a: SetupArgs, json: bool) -> Result<(), CliError> {
    let mut engine = open_engine()?;
    let interrupt = ampsm_engine::Interrupt::install(crate::errors::exit_interrupted);
    let session = engine.rerun_setup(&a.session, a.cmd.as_deref(), Some(&interrupt))?;
    if json {
        return Ok(print_json(&session)?);
    }
    println!("{}", session.status_note.as_deref().unwrap_or("setup passed"));
    Ok(())
}

pub fn list(a: ListArgs, json: bool) -> Result<(), CliError> {
    let engine = open_engine()?;
    let status = match a.status.as_deref() {
        Some(s) => Some(s.parse::<SessionStatus>().map_err(|message| CliError::Usage { message })?),
        None => None,
    };
    let sessions = engine.sessions(&SessionQuery { status, repo: a.repo, include_removed: a.all })?;
    if json {
        return Ok(print_json(&sessions)?);
    }
    if sessions.is_empty() {
        println!("No sessions yet. Create one with: amp-sessions new --repo PATH --name NAME --prompt TEXT");
        return Ok(());
    }
    let now = now_ms();
    let mut t = output::table(&["ID", "NAME", "STATUS", "AGENT", "BRANCH", "REPO", "AGE"]);
    for s in &sessions {
        let status = if s.removed_at.is_some() { "removed".to_string() } else { status_word(s.status) };
        t.add_row(vec![
            s.id.short().to_string(),
            s.name.clone(),
            status,
            s.agent.clone(),
            s.branch.clone(),
            short_repo(&s.repo_path),
            age(s.created_at, now),
        ]);
    }
    output::print_table(&t);
    Ok(())
}

fn short_repo(path: &str) -> String {
    if let Some(home) = std::env::var_os("HOME") {
        let home = home.to_string_lossy();
        if let Some(rest) = path.strip_prefix(home.as_ref()) {
            return format!("~{rest}");
        }
    }
    path.to_string()
}

pub fn show(reference: &str, json: bool) -> Result<(), CliError> {
    let engine = open_engine()?;
    let d = engine.session_details(reference)?;
    if json {
        return Ok(print_json(&d)?);
    }
    let s = &d.session;
    let mut fields = vec![
        ("id", s.id.to_string()),
        ("name", s.name.clone()),
        ("status", status_line(s)),
        ("repo", s.repo_path.clone()),
        ("base", format!("{} ({})", s.base_branch, &s.base_commit[..12.min(s.base_commit.len())])),
        ("branch", s.branch.clone()),
        ("worktree", format!("{}{}", s.worktree_path, if d.worktree_exists { "" } else { "  (missing)" })),
        ("agent", format!("{}{}", s.agent, s.model.as_ref().map(|m| format!(" ({m})")).unwrap_or_default())),
    ];
    if let Some(t) = &s.thread_id {
        fields.push(("thread", t.clone()));
    }
    if let Some(p) = &s.prompt {
        fields.push(("prompt", p.clone()));
    }
    if let Some(sc) = &s.script {
        fields.push(("script", sc.clone()));
    }
    if let Some(b) = s.budget_usd {
        fields.push(("budget", dollars(b)));
    }
    let setup_log = engine.setup_log(&s.id);
    if setup_log.is_file() {
        fields.push(("setup log", setup_log.display().to_string()));
    }
    let policy = engine.session_policy(s);
    fields.push(("permissions", format!("{policy} ({})", policy.meaning())));
    let pending = engine.pending_approvals(Some(s.id.as_str()))?;
    if !pending.is_empty() {
        let list: Vec<String> =
            pending.iter().map(|a| format!("#{} {}", a.approval.seq, a.summary)).collect();
        fields.push(("waiting", format!("{} (`amp-sessions approve|deny {} N`)", list.join(", "), s.name)));
    }
    fields.push(("commits ahead", d.commits_ahead.map(|n| n.to_string()).unwrap_or_else(|| "-".into())));
    fields.push(("uncommitted", format!("{} file(s)", d.uncommitted.len())));
    fields.push(("created", format_ms(s.created_at)));
    if let Some(r) = s.removed_at {
        fields.push(("removed", format_ms(r)));
    }
    print_fields(&fields);
    if !d.snapshots.is_empty() {
        println!();
        output::heading("Snapshots");
        let mut t = output::table(&["#", "REF", "COMMIT", "REASON", "TAKEN", "RESTORED"]);
        for sn in &d.snapshots {
            t.add_row(vec![
                sn.seq.to_string(),
                sn.refname.clone(),
                sn.sha[..12.min(sn.sha.len())].to_string(),
                sn.reason.clone(),
                format_ms(sn.created_at),
                sn.restored_at.map(format_ms).unwrap_or_default(),
            ]);
        }
        output::print_table(&t);
    }
    println!();
    output::heading("Status history");
    let mut t = output::table(&["AT", "FROM", "TO", "REASON"]);
    for h in &d.status_history {
        t.add_row(vec![
            format_ms(h.at),
            h.from.clone().unwrap_or_default(),
            h.to.clone(),
            h.reason.clone().unwrap_or_default(),
        ]);
    }
    output::print_table(&t);
    Ok(())
}

fn status_line(s: &Session) -> String {
    let word = if s.removed_at.is_some() { "removed".to_string() } else { status_word(s.status) };
    match &s.status_note {
        Some(n) => format!("{word} — {n}"),
        None => word,
    }
}

pub fn rm(a: RmArgs, json: bool) -> Result<(), CliError> {
    let mut engine = open_engine()?;
    let out = engine.remove_session(&a.session, a.force, a.keep_branch)?;
    if json {
        return Ok(print_json(&out)?);
    }
    println!("Removed session {} ({})", out.session.name, out.session.id.short());
    if let Some(sn) = &out.snapshot {
        println!(
            "Saved snapshot {} ({}) first; restore it with: amp-sessions undo {}",
            sn.refname,
            &sn.sha[..12.min(sn.sha.len())],
            out.session.id.short()
        );
    }
    if !out.branch_deleted {
        println!("Kept branch {}", out.session.branch);
    }
    Ok(())
}

pub fn repo_info(a: RepoInfoArgs, json: bool) -> Result<(), CliError> {
    let engine = open_engine()?;
    let info = engine.repo_info(&a.path)?;
    if json {
        return Ok(print_json(&info)?);
    }
    print_fields(&[
        ("root", info.root.clone()),
        ("current branch", info.current_branch.clone().unwrap_or_else(|| "(detached)".into())),
        ("default branch", info.default_branch.clone()),
        ("branches", info.branches.join(", ")),
        ("remotes", if info.remotes.is_empty() { "(none)".into() } else { info.remotes.join(", ") }),
        ("working tree", if info.clean { "clean".into() } else { "has uncommitted changes".into() }),
        ("worktrees", info.worktrees.to_string()),
        ("sessions", info.sessions.to_string()),
        ("git", info.git_version.clone()),
    ]);
    Ok(())
}

pub fn repair(json: bool) -> Result<(), CliError> {
    // Opening the engine runs the repair pass; report what it did.
    let engine = open_engine()?;
    let report = engine.startup_repair();
    if json {
        return Ok(print_json(&report)?);
    }
    if report.is_empty() {
        println!("Nothing to repair.");
    }
    for (id, name) in &report.undone_creations {
        println!("Undid the interrupted creation of session {name} ({})", ampsm_core::id::short_id(id));
    }
    for (id, name) in &report.orphaned_runs {
        println!(
            "Session {name} ({}) was running under a process that is gone; marked error",
            ampsm_core::id::short_id(id)
        );
    }
    for job in &report.dead_runners {
        println!("The runner of {job} was gone; ended it as failed (resume runs what did not finish)");
    }
    Ok(())
}

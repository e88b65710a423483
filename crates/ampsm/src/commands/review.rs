//! Review and merge commands: `status`, `diff`, `log`, `stage`, `unstage`, `commit`, `rollback`, `squash`,
//! `rebase` (with `--continue`/`--abort`), `merge`, `undo`, `export-patch` and `clean-environment`. Each
//! prints a short human summary, or one JSON document with `--json`.

use super::{CliError, open_engine};
use crate::output::{self, print_fields, print_json};
use ampsm_core::{MergeResult, RebaseResult};
use ampsm_engine::EngineError;
use ampsm_engine::review::error::ReviewError;
use ampsm_engine::review::merge::{MergeReport, MergeRequest, MergeStrategy};
use ampsm_engine::review::{DiffMode, DiffRequest, RebaseReport, ReviewStatus};
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// Show a session's working state: staged, unstaged and untracked files, commits ahead of and behind its base.
    Status(SessionArg),
    /// Show what the session changed against its base (or, with --uncommitted, what is not committed yet).
    Diff(DiffArgs),
    /// List the session's commits since its base, oldest first (agent commits marked).
    Log(SessionArg),
    /// Stage paths (or everything with --all) in the session worktree.
    Stage(PathsArgs),
    /// Unstage paths (or everything with --all); file contents are kept.
    Unstage(PathsArgs),
    /// Commit what is staged in the session worktree.
    Commit(CommitArgs),
    /// Drop uncommitted changes, or move the branch back to --to REF (a snapshot is saved first; `undo` restores).
    Rollback(RollbackArgs),
    /// Squash the session's commits into one (or, with --agent-only, fold each run of agent commits).
    Squash(SquashArgs),
    /// Rebase the session onto its base (fetching first when it has a remote), or --continue / --abort.
    Rebase(RebaseArgs),
    /// Merge the session into its base branch after preflight checks (see --dry-run).
    Merge(MergeArgs),
    /// Restore the session's last snapshot (also brings back a session removed with `rm --force`).
    Undo(UndoArgs),
    /// Write the session's whole change against its base as a patch.
    ExportPatch(ExportPatchArgs),
    /// Find orphaned worktrees, session branches, vanished sessions and stale locks; remove them with --yes.
    CleanEnvironment(CleanArgs),
}

#[derive(Debug, Args)]
pub struct SessionArg {
    /// Session id, unique id prefix, or name.
    pub session: String,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Session id, unique id prefix, or name.
    pub session: String,
    /// Per-file line counts instead of the patch.
    #[arg(long, conflicts_with = "name_only")]
    pub stat: bool,
    /// Only the names of changed files.
    #[arg(long)]
    pub name_only: bool,
    /// Only changes not committed yet (HEAD against the working tree; untracked files listed).
    #[arg(long)]
    pub uncommitted: bool,
    /// Limit to these paths (after `--`).
    #[arg(last = true)]
    pub paths: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PathsArgs {
    /// Session id, unique id prefix, or name.
    pub session: String,
    /// Paths relative to the top of the worktree (taken literally).
    pub paths: Vec<String>,
    /// Every change, including new and deleted files.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Session id, unique id prefix, or name.
    pub session: String,
    /// The commit message.
    #[arg(short, long)]
    pub message: String,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Session id, unique id prefix, or name.
    pub session: String,
    /// Move the branch to this commit (default: the last commit, dropping uncommitted changes only).
    #[arg(long)]
    pub to: Option<String>,
}

#[derive(Debug, Args)]
pub struct SquashArgs {
    /// Session id, unique id prefix, or name.
    pub session: String,
    /// Message of the squashed commit (default: the list of the squashed subjects).
    #[arg(short, long)]
    pub message: Option<String>,
    /// Only fold agent commits (subject starting with git.commit_prefix): each run of consecutive agent commits
    /// becomes one commit, your own commits stay as they are.
    #[arg(long)]
    pub agent_only: bool,
}

#[derive(Debug, Args)]
pub struct RebaseArgs {
    /// Session id, unique id prefix, or name.
    pub session: String,
    /// Rebase onto this branch instead of the session's base (it becomes the session's base).
    #[arg(long, conflicts_with_all = ["cont", "abort"])]
    pub onto: Option<String>,
    /// Continue a rebase stopped on conflicts, once the files are edited (never opens an editor).
    #[arg(long = "continue", conflicts_with = "abort")]
    pub cont: bool,
    /// Give up a stopped rebase and put the branch back as it was.
    #[arg(long)]
    pub abort: bool,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Session id, unique id prefix, or name.
    pub session: String,
    /// squash (one commit, the default), rebase (replay the commits, then fast-forward) or merge (a merge commit).
    #[arg(long, default_value = "squash")]
    pub strategy: String,
    /// Message of the squash or merge commit.
    #[arg(short, long)]
    pub message: Option<String>,
    /// Check and preview with `git merge-tree` without changing anything (the test script is not run).
    #[arg(long)]
    pub dry_run: bool,
    /// Push the base branch to its remote after merging.
    #[arg(long, conflicts_with = "pr")]
    pub push: bool,
    /// Push the session branch and open a pull request with `gh` instead of merging locally.
    #[arg(long)]
    pub pr: bool,
    /// Limit for the session's test script (e.g. 90s, 10m; default 10m).
    #[arg(long)]
    pub script_timeout: Option<String>,
}

#[derive(Debug, Args)]
pub struct UndoArgs {
    /// Session id, unique id prefix, or name (removed sessions too).
    pub session: String,
    /// Restore this snapshot number instead of the latest one (see `show`).
    #[arg(long)]
    pub snapshot: Option<i64>,
}

#[derive(Debug, Args)]
pub struct ExportPatchArgs {
    /// Session id, unique id prefix, or name.
    pub session: String,
    /// Write to this file instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// One patch per commit (an mbox for `git am`) instead of one combined patch (for `git apply`).
    #[arg(long)]
    pub commits: bool,
}

#[derive(Debug, Args)]
pub struct CleanArgs {
    /// Carry out the cleanup (without it, only report what would be done).
    #[arg(long)]
    pub yes: bool,
}

/// Runs one review command.
pub fn run(cmd: ReviewCommand, json: bool) -> Result<(), CliError> {
    match cmd {
        ReviewCommand::Status(a) => status(&a.session, json),
        ReviewCommand::Diff(a) => diff(a, json),
        ReviewCommand::Log(a) => log(&a.session, json),
        ReviewCommand::Stage(a) => {
            let engine = open_engine()?;
            let st = engine.review_stage(&a.session, &a.paths, a.all)?;
            print_status(&st, json)
        }
        ReviewCommand::Unstage(a) => {
            let engine = open_engine()?;
            let st = engine.review_unstage(&a.session, &a.paths, a.all)?;
            print_status(&st, json)
        }
        ReviewCommand::Commit(a) => {
            let mut engine = open_engine()?;
            let c = engine.review_commit(&a.session, &a.message)?;
            if json {
                return Ok(print_json(&c)?);
            }
            println!("Committed {} {} ({} file(s))", short(&c.sha), c.subject, c.files.len());
            Ok(())
        }
        ReviewCommand::Rollback(a) => {
            let mut engine = open_engine()?;
            let r = engine.review_rollback(&a.session, a.to.as_deref())?;
            if json {
                return Ok(print_json(&r)?);
            }
            println!("Rolled back to {} (was {}).", short(&r.head), short(&r.before));
            println!(
                "Saved snapshot #{} first; bring it back with: amp-sessions undo {}",
                r.snapshot.seq, a.session
            );
            Ok(())
        }
        ReviewCommand::Squash(a) => {
            let mut engine = open_engine()?;
            let r = engine.review_squash(&a.session, a.message.as_deref(), a.agent_only)?;
            if json {
                return Ok(print_json(&r)?);
            }
            println!(
                "Squashed {} commit(s); kept {}; the branch now has {} commit(s) since its base (head {}).",
                r.squashed,
                r.kept,
                r.commits_now,
                short(&r.head)
            );
            println!("Saved snapshot #{} first; undo with: amp-sessions undo {}", r.snapshot.seq, a.session);
            Ok(())
        }
        ReviewCommand::Rebase(a) => rebase(a, json),
        ReviewCommand::Merge(a) => merge(a, json),
        ReviewCommand::Undo(a) => {
            let mut engine = open_engine()?;
            let r = engine.review_undo(&a.session, a.snapshot)?;
            if json {
                return Ok(print_json(&r)?);
            }
            println!(
                "Restored snapshot #{} ({}){}.",
                r.restored.seq,
                r.restored.reason,
                if r.recreated { "; the worktree and branch were recreated" } else { "" }
            );
            print_fields(&[("worktree", r.worktree.clone()), ("head", short(&r.head).to_string())]);
            if let Some(s) = &r.saved_current {
                println!(
                    "The state before this undo is snapshot #{} (amp-sessions undo {} --snapshot {}).",
                    s.seq, a.session, s.seq
                );
            }
            Ok(())
        }
        ReviewCommand::ExportPatch(a) => export_patch(a, json),
        ReviewCommand::CleanEnvironment(a) => clean(a, json),
    }
}

fn short(sha: &str) -> &str {
    &sha[..12.min(sha.len())]
}

fn status(reference: &str, json: bool) -> Result<(), CliError> {
    let engine = open_engine()?;
    let st = engine.review_status(reference)?;
    print_status(&st, json)
}

fn print_status(st: &ReviewStatus, json: bool) -> Result<(), CliError> {
    if json {
        return Ok(print_json(st)?);
    }
    print_fields(&[
        ("session", format!("{} ({})", st.name, &st.session_id[..8.min(st.session_id.len())])),
        ("branch", st.branch.clone()),
        ("base", format!("{} ({} ahead, {} behind)", st.base, st.ahead, st.behind)),
        ("worktree", st.worktree.clone()),
    ]);
    if st.rebase_in_progress {
        println!(
            "A rebase is in progress: edit the conflicted files, then `amp-sessions rebase {} --continue`.",
            st.name
        );
    }
    if st.clean {
        println!("Nothing uncommitted.");
        return Ok(());
    }
    let mut t = output::table(&["STATE", "PATH"]);
    for e in &st.staged {
        t.add_row(vec![format!("staged {}", e.index), e.path.clone()]);
    }
    for e in &st.unstaged {
        let word = if e.kind == ampsm_engine::records::EntryKind::Unmerged {
            "conflict".to_string()
        } else {
            format!("unstaged {}", e.worktree)
        };
        t.add_row(vec![word, e.path.clone()]);
    }
    for p in &st.untracked {
        t.add_row(vec!["untracked".to_string(), p.clone()]);
    }
    output::print_table(&t);
    Ok(())
}

fn diff(a: DiffArgs, json: bool) -> Result<(), CliError> {
    let engine = open_engine()?;
    let mode = if a.stat {
        DiffMode::Stat
    } else if a.name_only {
        DiffMode::NameOnly
    } else {
        DiffMode::Patch
    };
    let d =
        engine.review_diff(&a.session, &DiffRequest { mode, uncommitted: a.uncommitted, paths: a.paths })?;
    if json {
        return Ok(print_json(&d)?);
    }
    let mut out = std::io::stdout().lock();
    match mode {
        DiffMode::Patch => {
            out.write_all(d.patch.as_deref().unwrap_or("").as_bytes())?;
            for p in &d.untracked {
                writeln!(out, "untracked: {p}")?;
            }
        }
        DiffMode::NameOnly => {
            for f in &d.files {
                writeln!(out, "{}", f.path)?;
            }
            for p in &d.untracked {
                writeln!(out, "{p}")?;
            }
        }
        DiffMode::Stat => {
            let (mut add, mut del) = (0, 0);
            for f in &d.files {
                let counts = match (f.added, f.removed) {
                    (Some(a), Some(r)) => {
                        add += a;
                        del += r;
                        format!("+{a} -{r}")
                    }
                    _ => "binary".to_string(),
                };
                let name = match &f.old_path {
                    Some(old) => format!("{old} => {}", f.path),
                    None => f.path.clone(),
                };
                writeln!(out, "{counts:>12}  {name}")?;
            }
            for p in &d.untracked {
                writeln!(out, "{:>12}  {p}", "untracked")?;
            }
            writeln!(out, "{} file(s) changed, +{add} -{del}", d.files.len())?;
        }
    }
    if d.uncommitted_not_shown > 0 {
        eprintln!(
            "note: {} path(s) with uncommitted changes are not included; see them with --uncommitted",
            d.uncommitted_not_shown
        );
    }
    Ok(())
}

fn log(reference: &str, json: bool) -> Result<(), CliError> {
    let engine = open_engine()?;
    let entries = engine.review_log(reference)?;
    if json {
        return Ok(print_json(&entries)?);
    }
    if entries.is_empty() {
        println!("No commits since the base yet.");
        return Ok(());
    }
    let mut t = output::table(&["COMMIT", "BY", "DATE", "SUBJECT"]);
    for e in &entries {
        t.add_row(vec![
            short(&e.commit.sha).to_string(),
            if e.agent { "agent".to_string() } else { e.commit.author.clone() },
            ampsm_core::time::format_ms(e.commit.time * 1000),
            e.commit.subject.clone(),
        ]);
    }
    output::print_table(&t);
    Ok(())
}

fn rebase(a: RebaseArgs, json: bool) -> Result<(), CliError> {
    let mut engine = open_engine()?;
    let r = if a.cont {
        engine.review_rebase_continue(&a.session)?
    } else if a.abort {
        engine.review_rebase_abort(&a.session)?
    } else {
        engine.review_rebase(&a.session, a.onto.as_deref())?
    };
    print_rebase(&r, json)?;
    if r.outcome == RebaseResult::Conflicts {
        let s = engine.session(&a.session, false)?;
        return Err(EngineError::from(ReviewError::RebaseConflicts {
            session: format!("{} ({})", s.name, s.id.short()),
            short_id: s.id.short().to_string(),
            onto: r.onto.clone(),
            files: r.conflicts.clone(),
            worktree: PathBuf::from(&s.worktree_path),
        })
        .into());
    }
    Ok(())
}

fn print_rebase(r: &RebaseReport, json: bool) -> Result<(), CliError> {
    if json {
        return Ok(print_json(r)?);
    }
    if let Some(remote) = &r.fetched {
        println!("Fetched {remote}.");
    }
    for w in &r.warnings {
        println!("warning: {w}");
    }
    match r.outcome {
        RebaseResult::Done => {
            println!("Rebased onto {}; head is now {}.", r.onto, r.head.as_deref().map(short).unwrap_or("-"))
        }
        RebaseResult::UpToDate => println!("Already up to date with {}.", r.onto),
        RebaseResult::Aborted => {
            println!("Rebase aborted; the branch is back at {}.", r.head.as_deref().map(short).unwrap_or("-"))
        }
        RebaseResult::Conflicts => {
            println!("The rebase stopped on conflicts in:");
            for f in &r.conflicts {
                println!("  {f}");
            }
        }
    }
    if let Some(s) = &r.snapshot {
        println!("Snapshot #{} was saved before the rebase.", s.seq);
    }
    if !r.next_steps.is_empty() {
        println!("Next:");
        for step in &r.next_steps {
            println!("  {step}");
        }
    }
    Ok(())
}

fn merge(a: MergeArgs, json: bool) -> Result<(), CliError> {
    let strategy: MergeStrategy = a.strategy.parse().map_err(|message| CliError::Usage { message })?;
    let script_timeout =
        a.script_timeout.as_deref().map(|t| super::duration_flag("--script-timeout", t)).transpose()?;
    let mut engine = open_engine()?;
    let req = MergeRequest {
        strategy,
        message: a.message,
        dry_run: a.dry_run,
        push: a.push,
        pr: a.pr,
        script_timeout,
        interrupt: Some(ampsm_engine::Interrupt::install(crate::errors::exit_interrupted)),
    };
    let r = engine.merge_session(&a.session, &req)?;
    print_merge(&r, json)?;
    if r.result == MergeResult::DryRun && !r.would_merge {
        let failed: Vec<String> =
            r.checks.iter().filter(|c| !c.ok).map(|c| format!("{}: {}", c.name, c.detail)).collect();
        return Err(EngineError::from(ReviewError::BadRequest {
            reason: format!("the merge of {} would not go ahead ({})", r.name, failed.join("; ")),
        })
        .into());
    }
    Ok(())
}

fn print_merge(r: &MergeReport, json: bool) -> Result<(), CliError> {
    if json {
        return Ok(print_json(r)?);
    }
    for c in &r.checks {
        println!("{} {:<20} {}", if c.ok { "ok  " } else { "FAIL" }, c.name, c.detail);
    }
    if !r.conflicts.is_empty() {
        println!("Conflicting files:");
        for f in &r.conflicts {
            println!("  {f}");
        }
    }
    match r.result {
        MergeResult::DryRun => println!(
            "Dry run: {} ({} commit(s), strategy {}). Nothing was changed.",
            if r.would_merge { "the merge would go ahead" } else { "the merge would be refused" },
            r.commits_landed,
            r.strategy.as_str()
        ),
        MergeResult::PullRequest => println!("Opened pull request {}", r.pr_url.as_deref().unwrap_or("")),
        _ => {
            println!(
                "Merged session {} into {} ({}): {} -> {}.",
                r.name,
                r.base_branch,
                r.strategy.as_str(),
                r.base_before.as_deref().map(short).unwrap_or("-"),
                r.base_after.as_deref().map(short).unwrap_or("-")
            );
            if let Some(u) = &r.base_update {
                println!("Base update: {u}");
            }
            if let Some(remote) = &r.pushed {
                println!("Pushed {} to {remote}.", r.base_branch);
            }
        }
    }
    for n in &r.notes {
        println!("note: {n}");
    }
    Ok(())
}

fn export_patch(a: ExportPatchArgs, json: bool) -> Result<(), CliError> {
    let engine = open_engine()?;
    let p = engine.review_export_patch(&a.session, a.commits)?;
    if !p.uncommitted_not_included.is_empty() {
        eprintln!(
            "warning: {} path(s) with uncommitted changes are not in the patch (commit them first)",
            p.uncommitted_not_included.len()
        );
    }
    match &a.out {
        Some(path) => {
            std::fs::write(path, p.text.as_bytes())
                .map_err(|source| EngineError::Io { path: path.clone(), source })?;
            if json {
                let mut doc = serde_json::to_value(&p).map_err(std::io::Error::other)?;
                doc["out"] = serde_json::Value::String(path.display().to_string());
                return Ok(print_json(&doc)?);
            }
            println!(
                "Wrote {} ({} commit(s), {} file(s)) to {}",
                if a.commits { "patches" } else { "a patch" },
                p.commits,
                p.files.len(),
                path.display()
            );
        }
        None if json => {
            let mut doc = serde_json::to_value(&p).map_err(std::io::Error::other)?;
            doc["patch"] = serde_json::Value::String(p.text.clone());
            print_json(&doc)?;
        }
        None => std::io::stdout().lock().write_all(p.text.as_bytes())?,
    }
    Ok(())
}

fn clean(a: CleanArgs, json: bool) -> Result<(), CliError> {
    let mut engine = open_engine()?;
    let r = engine.clean_environment(a.yes)?;
    if json {
        return Ok(print_json(&r)?);
    }
    if r.items.is_empty() {
        println!("Nothing to clean.");
        return Ok(());
    }
    let mut t = output::table(&["KIND", "TARGET", "DETAIL", if r.dry_run { "WOULD" } else { "DONE" }]);
    for i in &r.items {
        let action = match (&i.skipped, i.done) {
            (Some(why), _) => format!("left alone: {why}"),
            (None, true) => format!(
                "{}{}",
                i.action,
                i.snapshot.as_ref().map(|s| format!(" (saved {s})")).unwrap_or_default()
            ),
            (None, false) => i.action.clone(),
        };
        t.add_row(vec![i.kind.to_string(), i.target.clone(), i.detail.clone(), action]);
    }
    output::print_table(&t);
    if r.dry_run {
        println!("Dry run: nothing was changed. Run again with --yes to clean up.");
    }
    Ok(())
}

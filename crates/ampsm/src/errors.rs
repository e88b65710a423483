//! The CLI's side of the error vocabulary: the one table from [`ErrorKind`] to exit codes, and the
//! wording of each [`Hint`] with this binary's commands and flags.
//!
//! | exit code | meaning                                                                    |
//! |-----------|----------------------------------------------------------------------------|
//! | 0         | success                                                                    |
//! | 1         | [`ErrorKind::Failed`]: tried and failed (IO, git, the database, an agent)  |
//! | 2         | [`ErrorKind::BadInput`] and [`ErrorKind::NotFound`]; clap's usage errors   |
//! | 3         | [`ErrorKind::Refused`]: stopped to protect work or money                   |
//! | 130       | [`ErrorKind::Interrupted`]: Ctrl-C                                         |
//! | 141       | stdout was closed by its reader (SIGPIPE), see `main`                      |

use ampsm_core::{ErrorKind, Hint};

/// The exit code of a failure of this kind (the table above).
pub fn exit_code(kind: ErrorKind) -> i32 {
    match kind {
        ErrorKind::Failed => 1,
        ErrorKind::BadInput | ErrorKind::NotFound => 2,
        ErrorKind::Refused => 3,
        ErrorKind::Interrupted => 130,
    }
}

/// The exit code when stdout's reader went away: the status of a process stopped by SIGPIPE.
pub const EXIT_BROKEN_PIPE: i32 = 141;

/// What Ctrl-C (or SIGTERM) does when no agent or script is running: the program ends at once, with the
/// exit code of an interruption, as the signal alone would have ended it. Given to the engine's
/// `Interrupt::install`.
pub fn exit_interrupted() {
    eprintln!("\ninterrupted");
    std::process::exit(exit_code(ErrorKind::Interrupted));
}

/// What to do next, in the words of this CLI (printed on its own line as `hint: …`).
pub fn hint_text(hint: &Hint) -> String {
    match hint {
        Hint::ListSessions => "run `amp-sessions list` to see sessions".into(),
        Hint::ListBatches => "run `amp-sessions batch list` to see batches".into(),
        Hint::ListBenches => "run `amp-sessions bench list` to see bench runs".into(),
        Hint::PassRepo => "pass --repo with the path of a git repository".into(),
        Hint::ChoosePolicy => "choose another policy with --permissions (auto, ask, read-only, full); \
                               `amp-sessions doctor` lists what each agent supports"
            .into(),
        Hint::MergeOrForceRemove { session } => format!(
            "merge or export it first, or use --force (a snapshot is saved first, and `amp-sessions undo \
             {session}` brings it back)"
        ),
        Hint::WaitOrForceStop => "wait for it to finish, or use --force to stop it".into(),
        Hint::Undo { session } => format!("`amp-sessions undo {session}` brings its work back"),
        Hint::RepairOrUndo { session } => {
            format!("run `amp-sessions repair` or `amp-sessions undo {session}`")
        }
        Hint::GivePrompt => "pass --prompt TEXT".into(),
        Hint::IterateInstead => "use `iterate` to run it one prompt at a time".into(),
        Hint::IterateOrOtherPolicy => {
            "use `iterate` (its tool calls wait for `approve`/`deny`), or another policy".into()
        }
        Hint::ListApprovals { session } => format!("run `amp-sessions approvals {session}`"),
        Hint::RerunSetupOrRemove { session } => format!(
            "run it again with `amp-sessions setup {session}`, or remove the session with `amp-sessions rm \
             {session} --force`"
        ),
        Hint::UndoOrForceRemove { session } => format!(
            "bring it back with `amp-sessions undo {session}` or remove the session with `amp-sessions rm \
             {session} --force`"
        ),
        Hint::CommitOrRollback { session } => format!(
            "commit them with `amp-sessions stage {session} --all` and `amp-sessions commit {session} -m MSG`, \
             or drop them with `amp-sessions rollback {session}`"
        ),
        Hint::FinishRebase { session } => format!(
            "finish it with `amp-sessions rebase {session} --continue` or `amp-sessions rebase {session} --abort`"
        ),
        Hint::StartRebase { session } => format!("start one with `amp-sessions rebase {session}`"),
        Hint::ResolveThenContinue { session, worktree } => format!(
            "edit those files in {worktree}, then run `amp-sessions rebase {session} --continue` (or give up \
             with `amp-sessions rebase {session} --abort`)"
        ),
        Hint::ContinueRebase { session } => {
            format!("finish editing them, then run `amp-sessions rebase {session} --continue` again")
        }
        Hint::RebaseThenMerge { session } => format!(
            "bring the session up to date with `amp-sessions rebase {session}`, resolve the conflicts, then \
             merge again"
        ),
        Hint::RebaseOrOtherStrategy { session } => format!(
            "run `amp-sessions rebase {session}` to resolve them commit by commit, or merge with --strategy \
             squash or merge"
        ),
        Hint::UpdateBaseThenRebase { session, branch } => format!(
            "update {branch} (for example `git pull --ff-only` in your checkout), then run `amp-sessions rebase \
             {session}` and merge again"
        ),
        Hint::RebaseOntoBranch { session } => {
            format!("rebase the session onto one with `amp-sessions rebase {session} --onto BRANCH`")
        }
        Hint::PushLater { remote, branch } => {
            format!("run `git push {remote} {branch}` when the remote is reachable")
        }
        Hint::StageFirst { session } => {
            format!("stage files with `amp-sessions stage {session} PATH…` or --all")
        }
        Hint::SquashAll { session } => {
            format!("squash everything with `amp-sessions squash {session}` instead")
        }
        Hint::ShowSnapshots { session } => format!("`amp-sessions show {session}` lists its snapshots"),
        Hint::ExportToFolder => "pass --out DIR (created when missing)".into(),
        Hint::RaiseOrClearBudget { session } => format!(
            "raise the budget with `amp-sessions budget {session} USD` or clear it with `amp-sessions budget \
             {session} --clear`"
        ),
        Hint::FollowOrAbortBatch { batch } => format!(
            "wait for it, follow it with `amp-sessions batch status {batch} --follow`, or stop it with \
             `amp-sessions batch abort {batch}`"
        ),
        Hint::ResumeBatchWithBudget { batch } => {
            format!("resume it with a higher one: `amp-sessions batch resume {batch} --budget USD`")
        }
        Hint::AbortBench { run } => format!("wait for it, or stop it with `amp-sessions bench abort {run}`"),
        Hint::ResumeBenchWithBudget { run } => {
            format!("resume it with a higher one: `amp-sessions bench resume {run} --budget USD`")
        }
        Hint::GiveSetupCommand => "for a session that has no setup command to run: pass --cmd CMD, or set \
                                   repos.<path>.setup or session.setup in the config"
            .into(),
        Hint::GiveEachAgentOnce { agent } => {
            format!("--agent {agent} is given twice: pass each agent (with its model) once")
        }
        // The flags are named after the counts.
        Hint::CountAtLeastOne { count } => format!("pass --{} with 1 or more", count.as_str()),
        Hint::NamePathsOrAll => "name the paths to use, or pass --all".into(),
        Hint::PathsOrAllNotBoth => "give either paths or --all, not both".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exit_code_table() {
        let codes: Vec<(ErrorKind, i32)> = [
            ErrorKind::BadInput,
            ErrorKind::NotFound,
            ErrorKind::Refused,
            ErrorKind::Interrupted,
            ErrorKind::Failed,
        ]
        .into_iter()
        .map(|k| (k, exit_code(k)))
        .collect();
        assert_eq!(
            codes,
            [
                (ErrorKind::BadInput, 2),
                (ErrorKind::NotFound, 2),
                (ErrorKind::Refused, 3),
                (ErrorKind::Interrupted, 130),
                (ErrorKind::Failed, 1)
            ]
        );
    }

    #[test]
    fn hints_name_the_commands_to_run() {
        let text = hint_text(&Hint::RebaseThenMerge { session: "abcd1234".into() });
        assert!(text.contains("`amp-sessions rebase abcd1234`"), "{text}");
        assert!(!hint_text(&Hint::ListSessions).contains('\n'));
        let count = hint_text(&Hint::CountAtLeastOne { count: ampsm_core::errorkind::BenchCount::Repeats });
        assert_eq!(count, "pass --repeats with 1 or more");
    }
}

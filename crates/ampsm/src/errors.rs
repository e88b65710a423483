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
    }
}

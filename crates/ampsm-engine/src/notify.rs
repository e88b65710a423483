//! Notifications when a session completes, waits for input, fails, stops at its budget, or hits a merge
//! conflict, following `notifications.*`:
//!
//! 1. `notifications.desktop: true` and a desktop bus (`DBUS_SESSION_BUS_ADDRESS`, or macOS) with
//!    `notify-send` (or `osascript`) available: a desktop notification.
//! 2. Otherwise, when `notifications.command` is set: that command, run with `sh -c` in its own process
//!    group, with the event in `AMPSM_EVENT`, `AMPSM_SESSION`, `AMPSM_SESSION_NAME`, `AMPSM_STATUS` and
//!    `AMPSM_MESSAGE`.
//! 3. Otherwise, when desktop notifications are on: the terminal bell on stderr (only if it is a terminal).
//!
//! A notification never fails the command that sends it and never hangs it: every process gets a
//! timeout after which its whole group is killed, and errors are only logged.

use ampsm_config::config::NotificationsConfig;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::Serialize;
use std::io::{IsTerminal, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a desktop notifier may take.
pub const DESKTOP_TIMEOUT: Duration = Duration::from_secs(3);
/// How long `notifications.command` may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NotifyEvent {
    Completed,
    AwaitingInput,
    Failed,
    Budget,
    Conflict,
}

impl NotifyEvent {
    /// The word put in `AMPSM_EVENT`.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::Completed => "completed",
            NotifyEvent::AwaitingInput => "awaiting-input",
            NotifyEvent::Failed => "failed",
            NotifyEvent::Budget => "budget",
            NotifyEvent::Conflict => "conflict",
        }
    }

    /// Whether a session's status change tells this event (so a watcher of status changes, such as the
    /// desktop app, sees it without being told).
    pub fn told_by_status(self) -> bool {
        matches!(
            self,
            NotifyEvent::Completed | NotifyEvent::AwaitingInput | NotifyEvent::Failed | NotifyEvent::Budget
        )
    }

    fn title(self) -> &'static str {
        match self {
            NotifyEvent::Completed => "session completed",
            NotifyEvent::AwaitingInput => "session awaits your input",
            NotifyEvent::Failed => "session failed",
            NotifyEvent::Budget => "session stopped at its budget",
            NotifyEvent::Conflict => "merge conflict",
        }
    }
}

/// What a notification is about: where the dashboard (or the desktop app) shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Subject {
    Session,
    Batch,
    Bench,
}

/// One notification.
#[derive(Debug, Clone)]
pub struct Notification {
    pub event: NotifyEvent,
    /// Whether `session_id` names a session, a batch or a benchmark run.
    pub subject: Subject,
    pub session_id: String,
    pub session_name: String,
    pub status: String,
    pub message: String,
}

impl Notification {
    /// The dashboard's page of what this notification is about (`/s/<id>`, `/batches/<id>`, `/bench/<id>`).
    pub fn link(&self) -> String {
        match self.subject {
            Subject::Session => format!("/s/{}", self.session_id),
            Subject::Batch => format!("/batches/{}", self.session_id),
            Subject::Bench => format!("/bench/{}", self.session_id),
        }
    }

    /// The title and body of a desktop notification.
    pub fn desktop_text(&self) -> (String, String) {
        (format!("amp-sessions: {}", self.event.title()), format!("{}: {}", self.session_name, self.message))
    }
}

/// A notifier of the process's own (the desktop app's native notifications): it returns whether it
/// delivered the notification.
pub type DesktopSink = Box<dyn Fn(&Notification) -> bool + Send + Sync>;

static DESKTOP_SINK: std::sync::OnceLock<DesktopSink> = std::sync::OnceLock::new();

/// Makes `sink` deliver this process's desktop notifications (`notifications.desktop`) instead of
/// `notify-send`/`osascript`: the desktop app installs one whose notifications open the session when
/// clicked. Once per process; a second call returns `false` and changes nothing.
pub fn set_desktop_sink(sink: DesktopSink) -> bool {
    DESKTOP_SINK.set(sink).is_ok()
}

/// The end of the status note of a run the user stopped (Stop, `amp-sessions stop`, Ctrl-C): such a run
/// is not news.
pub const STOPPED_NOTE: &str = "the agent was stopped; its work so far is committed";

/// The event a recorded status change of a session tells, if any: a run that ended (`running` to
/// `idle`, unless the user stopped it: its `reason` ends with [`STOPPED_NOTE`]), failed (to `error`) or
/// stopped to wait for the user (to `awaiting-input`).
pub fn status_change_event(from: Option<&str>, to: &str, reason: Option<&str>) -> Option<NotifyEvent> {
    use ampsm_core::SessionStatus;
    let to: SessionStatus = to.parse().ok()?;
    let from: Option<SessionStatus> = from.and_then(|f| f.parse().ok());
    match to {
        _ if from == Some(to) => None,
        SessionStatus::Idle if reason.is_some_and(|r| r.ends_with(STOPPED_NOTE)) => None,
        SessionStatus::Idle if from == Some(SessionStatus::Running) => Some(NotifyEvent::Completed),
        SessionStatus::Error => Some(NotifyEvent::Failed),
        SessionStatus::AwaitingInput => Some(NotifyEvent::AwaitingInput),
        _ => None,
    }
}

/// The file a running desktop app keeps in its home (`desktop.pid`, its process id), so that other
/// processes of that home leave the notifications it tells itself to it.
pub fn desktop_app_file(home: &Path) -> PathBuf {
    home.join("desktop.pid")
}

/// Whether a desktop app other than this process runs for `home` (its `desktop.pid` names a live process
/// that is not a zombie: one that ended and was not reaped yet tells nothing any more).
pub fn desktop_app_running(home: &Path) -> bool {
    let running = |pid: i64| {
        crate::process::pid_alive(pid)
            && match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
                // The state follows the command's name in parentheses.
                Ok(stat) => {
                    stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()) != Some("Z")
                }
                // No /proc (macOS): the signal check alone.
                Err(_) => true,
            }
    };
    std::fs::read_to_string(desktop_app_file(home))
        .ok()
        .and_then(|t| t.trim().parse::<i64>().ok())
        .is_some_and(|pid| pid != crate::process::own_pid() && running(pid))
}

/// How a notification was delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Desktop,
    /// Left to the desktop app running for this home, which follows every session's status changes.
    DesktopApp,
    Command,
    Bell,
    /// Nothing was configured or available (or everything failed; see the log).
    None,
}

/// Sends `n` as the config says (see the module docs); `home` is the data's home, where a running desktop
/// app registers. Never fails and never blocks longer than the timeouts.
pub fn notify(config: &NotificationsConfig, home: &Path, n: &Notification) -> Delivery {
    // The desktop app tells a session's status changes itself, for every process: not twice.
    if config.desktop
        && n.subject == Subject::Session
        && n.event.told_by_status()
        && DESKTOP_SINK.get().is_none()
        && desktop_app_running(home)
    {
        return Delivery::DesktopApp;
    }
    let delivered = |n: &Notification| match DESKTOP_SINK.get() {
        Some(sink) => sink(n),
        None => desktop(n),
    };
    if config.desktop && delivered(n) {
        return Delivery::Desktop;
    }
    if let Some(cmd) = config.command.as_deref().filter(|c| !c.trim().is_empty()) {
        if run_command(cmd, n) {
            return Delivery::Command;
        }
        return Delivery::None;
    }
    if config.desktop && std::io::stderr().is_terminal() {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(b"\x07");
        let _ = err.flush();
        return Delivery::Bell;
    }
    Delivery::None
}

/// The one notification of a whole batch or bench run when it ends: `completed`, `budget` when its budget
/// stopped it, `failed` otherwise. `summary` gets the stop reason, when there is one, in parentheses.
pub(crate) fn notify_run_end(
    engine: &crate::Engine,
    (subject, id): (Subject, &str),
    name: &str,
    status: ampsm_core::JobStatus,
    stop: Option<&str>,
    budget_stop: bool,
    summary: String,
) {
    let event = match status {
        ampsm_core::JobStatus::Completed => NotifyEvent::Completed,
        _ if budget_stop => NotifyEvent::Budget,
        _ => NotifyEvent::Failed,
    };
    let message = match stop {
        Some(reason) => format!("{summary} ({reason})"),
        None => summary,
    };
    let n = Notification {
        event,
        subject,
        session_id: id.to_string(),
        session_name: name.to_string(),
        status: status.to_string(),
        message,
    };
    notify(&engine.config.notifications, &engine.paths.home, &n);
}

/// A desktop notification through `notify-send` (Linux/BSD with a session bus) or `osascript` (macOS).
fn desktop(n: &Notification) -> bool {
    let (title, body) = n.desktop_text();
    if cfg!(target_os = "macos") {
        let Some(osascript) = find_program("osascript") else { return false };
        let script = format!(
            "display notification {} with title {}",
            applescript_text(&body),
            applescript_text(&title)
        );
        let mut cmd = Command::new(osascript);
        cmd.args(["-e", &script]);
        return run_bounded(cmd, DESKTOP_TIMEOUT, "osascript");
    }
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none_or(|v| v.is_empty()) {
        return false;
    }
    let Some(notify_send) = find_program("notify-send") else { return false };
    let mut cmd = Command::new(notify_send);
    cmd.args(["--app-name=amp-sessions", "--", &title, &body]);
    run_bounded(cmd, DESKTOP_TIMEOUT, "notify-send")
}

fn applescript_text(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The user's `notifications.command` with the event in its environment.
fn run_command(command: &str, n: &Notification) -> bool {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .env("AMPSM_EVENT", n.event.as_str())
        .env("AMPSM_SESSION", &n.session_id)
        .env("AMPSM_SESSION_NAME", &n.session_name)
        .env("AMPSM_STATUS", &n.status)
        .env("AMPSM_MESSAGE", &n.message);
    run_bounded(cmd, COMMAND_TIMEOUT, "notifications.command")
}

/// Runs `cmd` in its own process group with no stdin or output, waiting at most `timeout`; on expiry the
/// group is killed. True when it exited 0.
fn run_bounded(mut cmd: Command, timeout: Duration, what: &str) -> bool {
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("notification through {what} could not start: {e}");
            return false;
        }
    };
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                if !status.success() {
                    tracing::warn!("notification through {what} ended with {status}");
                }
                return status.success();
            }
            Ok(None) if started.elapsed() < timeout => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) | Err(_) => {
                tracing::warn!("notification through {what} took longer than {timeout:?}; stopped it");
                if let Ok(pid) = i32::try_from(child.id()) {
                    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                }
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
    })
}

impl crate::Engine {
    /// Sends a `conflict` notification when `err` says a merge or a squash replay stopped on conflicts
    /// ([`crate::Engine::merge_session`] does). A notification never changes the result it is about.
    pub(crate) fn notify_if_conflict(&self, err: &crate::EngineError) {
        use crate::review::error::ReviewError;
        let crate::EngineError::Review(e) = err else { return };
        let (short_id, files) = match e {
            ReviewError::MergeConflicts { short_id, files, .. }
            | ReviewError::ReplayConflicts { short_id, files, .. } => (short_id, files),
            _ => return,
        };
        if let Ok(s) = self.store.resolve_session(short_id, true) {
            self.notify_conflict(&s, files);
        }
    }

    /// Sends a `conflict` notification for a session whose merge or rebase stopped on `files`.
    pub(crate) fn notify_conflict(&self, s: &ampsm_store::Session, files: &[String]) {
        let message = format!("conflicts in {}", files.join(", "));
        self.notify_session(s, NotifyEvent::Conflict, s.status.as_str(), &message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note() -> Notification {
        Notification {
            event: NotifyEvent::Failed,
            subject: Subject::Session,
            session_id: "abc".into(),
            session_name: "demo".into(),
            status: "error".into(),
            message: "it broke".into(),
        }
    }

    #[test]
    fn a_hanging_command_is_stopped_at_its_timeout() {
        let started = Instant::now();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sleep 30 & sleep 30"]);
        assert!(!run_bounded(cmd, Duration::from_millis(300), "test"));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_failing_or_missing_command_never_errors() {
        let home = tempfile::tempdir().unwrap();
        let cfg = NotificationsConfig { desktop: false, command: Some("exit 3".into()) };
        assert_eq!(notify(&cfg, home.path(), &note()), Delivery::None);
        let cfg = NotificationsConfig { desktop: false, command: None };
        assert_eq!(notify(&cfg, home.path(), &note()), Delivery::None);
    }

    #[test]
    fn a_running_desktop_app_of_the_home_is_left_the_status_events() {
        let home = tempfile::tempdir().unwrap();
        // Desktop notifications on, and a command that would record the delivery.
        let out = home.path().join("told");
        let cfg = NotificationsConfig {
            desktop: true,
            command: Some(format!("echo \"$AMPSM_EVENT\" >> {}", out.display())),
        };
        let mut app = Command::new("sleep").arg("30").spawn().unwrap();
        std::fs::write(desktop_app_file(home.path()), app.id().to_string()).unwrap();
        // A run that failed: a status change, which the app tells.
        assert_eq!(notify(&cfg, home.path(), &note()), Delivery::DesktopApp);
        assert!(!out.exists());
        // A merge conflict is no status change: told here as before.
        let conflict = Notification { event: NotifyEvent::Conflict, ..note() };
        assert_ne!(notify(&cfg, home.path(), &conflict), Delivery::DesktopApp);
        // A batch's end is not a session's: told here too.
        let batch = Notification { subject: Subject::Batch, event: NotifyEvent::Completed, ..note() };
        assert_ne!(notify(&cfg, home.path(), &batch), Delivery::DesktopApp);
        // Once the app is gone (its file stays behind), everything is told here again: already while it is
        // a zombie, then reaped.
        app.kill().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert!(!desktop_app_running(home.path()));
        app.wait().unwrap();
        assert_ne!(notify(&cfg, home.path(), &note()), Delivery::DesktopApp);
        // With desktop notifications off, nothing is left to the app.
        let off = NotificationsConfig { desktop: false, command: None };
        let mut app = Command::new("sleep").arg("30").spawn().unwrap();
        std::fs::write(desktop_app_file(home.path()), app.id().to_string()).unwrap();
        assert_eq!(notify(&off, home.path(), &note()), Delivery::None);
        app.kill().unwrap();
        app.wait().unwrap();
    }
}

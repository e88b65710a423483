//! Process supervision: starts an agent in its own process group, feeds stdin, reads stdout and stderr as
//! length-capped lines (each delivered as it arrives, with its parsed events), and enforces the timeout or
//! a cancellation by stopping the whole run (SIGINT, then SIGTERM after 2 s, then SIGKILL after 2 more)
//! until none of its processes is left. The run is its process group *and* every process carrying its tag
//! ([`crate::contain`]): descendants that left the group (`setsid`, daemons) are stopped with it, when the
//! agent exits too, so they can neither outlive the run nor hold it up by keeping its pipes open. Also the
//! interactive variant used for chat.
//!
//! A run whose stdin is a [`StdinMode::Conversation`] (the `ask` policy) keeps stdin open after the prompt:
//! the answers to the agent's permission requests are written there as they come in
//! ([`run_agent_with_answers`]), and stdin is closed once the run's result line arrived. Every
//! [`AgentEvent::PermissionDenied`] of the run also lands in the outcome's `denials`.

use crate::adapter::{AgentAdapter, StreamParser};
use crate::contain;
use crate::error::AgentError;
use crate::parsers::{prefix_at_boundary, suffix_at_boundary};
use crate::spec::{CommandSpec, ExitInfo, RunSpec, StdinMode};
use ampsm_core::event::OutputStream;
use ampsm_core::{AgentEvent, Denial, RunOutcome};
use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::Serialize;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The wait between SIGINT and SIGTERM, and between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

/// How much of stderr is kept for the report.
pub const STDERR_TAIL_BYTES: usize = 64 * 1024;

/// After the agent and its group are gone, how long the pipes may stay open *without data* (held by a
/// descendant that left the group) before reading stops.
const DRAIN_IDLE: Duration = Duration::from_secs(2);

/// The most denials kept in one run's outcome (each is also recorded with its stream line).
const MAX_DENIALS: usize = 1_000;

/// After the agent and its processes are gone, the longest time spent waiting for what is left in the pipes
/// (time spent handing lines to a slow sink does not count, for at most [`DRAIN_LINES`] lines): only a
/// descendant that scrubbed its tag from its environment can hold them open that long.
const DRAIN_MAX: Duration = Duration::from_secs(3);

/// After the agent and its processes are gone, how many lines may extend [`DRAIN_MAX`] by the time their
/// delivery took (more than the pipes and the line channel can hold once no writer is left).
const DRAIN_LINES: u64 = 20_000;

/// How often a stopping run is checked for processes left.
const STOP_POLL: Duration = Duration::from_millis(100);

/// One line of the child's output, as it arrived.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamItem {
    /// Position in the run, over both streams, from 0.
    pub seq: u64,
    /// When the line was read (Unix milliseconds).
    pub ts_ms: i64,
    pub stream: OutputStream,
    /// The line without its newline; cut at the line cap when `truncated`.
    pub raw: String,
    pub truncated: bool,
    /// The normalized events of the line (stderr lines: one `Output` event).
    pub events: Vec<AgentEvent>,
}

/// How a run went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunReport {
    pub outcome: RunOutcome,
    pub exit: ExitInfo,
    pub duration: Duration,
    pub pid: u32,
}

/// Runs one agent turn to the end. `on_spawn` gets the child's pid (also its process-group id) as soon as
/// it started; `on_line` gets every stdout and stderr line as it arrives. The run stops at `spec.timeout`,
/// or when `cancel` turns `true`; either way the whole process group is stopped and waited for.
pub async fn run_agent(
    adapter: &dyn AgentAdapter,
    spec: &RunSpec,
    cancel: Option<watch::Receiver<bool>>,
    on_spawn: &mut (dyn FnMut(u32) + Send),
    on_line: &mut (dyn FnMut(StreamItem) + Send),
) -> Result<RunReport, AgentError> {
    run_agent_with(adapter, spec, cancel, RunControls::default(), on_spawn, on_line).await
}

/// What a caller can do to a run while it goes on, besides cancelling it.
#[derive(Debug, Default)]
pub struct RunControls {
    /// Lines to write on the agent's stdin (the answers to its permission requests, from
    /// [`crate::AgentAdapter::permission_answer`]). They reach the agent only when its stdin is a
    /// [`StdinMode::Conversation`]; otherwise they are dropped.
    pub answers: Option<mpsc::UnboundedReceiver<String>>,
    /// Stops the run's clock while the agent waits for a person (an approval): the timeout counts only
    /// the time it worked.
    pub clock: Option<std::sync::Arc<RunClock>>,
}

/// A run's clock that can be paused (see [`RunControls::clock`]).
#[derive(Debug, Default)]
pub struct RunClock {
    state: std::sync::Mutex<ClockState>,
}

#[derive(Debug, Default)]
struct ClockState {
    /// How many pauses are open (one per request waiting).
    open: usize,
    since: Option<std::time::Instant>,
    total: Duration,
}

impl RunClock {
    /// Stops the clock (nested pauses count once).
    pub fn pause(&self) {
        if let Ok(mut s) = self.state.lock() {
            if s.open == 0 {
                s.since = Some(std::time::Instant::now());
            }
            s.open += 1;
        }
    }

    /// Ends one pause; the clock runs again when none is left.
    pub fn resume(&self) {
        if let Ok(mut s) = self.state.lock()
            && s.open > 0
        {
            s.open -= 1;
            if s.open == 0
                && let Some(since) = s.since.take()
            {
                s.total += since.elapsed();
            }
        }
    }

    /// Whether the clock is stopped now, and how long it has been stopped in all.
    fn paused(&self) -> (bool, Duration) {
        match self.state.lock() {
            Ok(s) => (s.open > 0, s.total + s.since.map(|t| t.elapsed()).unwrap_or_default()),
            Err(_) => (false, Duration::ZERO),
        }
    }
}

/// [`run_agent`] with [`RunControls`]: answers for the agent's stdin, and a clock that waiting for a
/// person does not run down.
pub async fn run_agent_with(
    adapter: &dyn AgentAdapter,
    spec: &RunSpec,
    cancel: Option<watch::Receiver<bool>>,
    controls: RunControls,
    on_spawn: &mut (dyn FnMut(u32) + Send),
    on_line: &mut (dyn FnMut(StreamItem) + Send),
) -> Result<RunReport, AgentError> {
    let RunControls { answers, clock } = controls;
    let cmd = adapter.command(spec)?;
    let mut parser = adapter.parser(spec);
    let started = Instant::now();
    let mut child = Spawned::start(adapter, &cmd, spec)?;
    on_spawn(child.pid);
    match (&cmd.stdin, child.stdin.take()) {
        (StdinMode::Text(text), Some(mut stdin)) => {
            let text = text.clone();
            child.stdin_task = Some(tokio::spawn(async move {
                // The child may exit without reading: a broken pipe is not our error.
                let _ = stdin.write_all(text.as_bytes()).await;
                let _ = stdin.shutdown().await;
            }));
        }
        (StdinMode::Conversation(first), Some(stdin)) => {
            let (tx, rx) = mpsc::unbounded_channel::<String>();
            let _ = tx.send(first.clone());
            if let Some(mut answers) = answers {
                let forward = tx.clone();
                child.answer_task = Some(tokio::spawn(async move {
                    while let Some(line) = answers.recv().await {
                        if forward.send(line).is_err() {
                            break;
                        }
                    }
                }));
            }
            child.conversation = Some(tx);
            child.stdin_task = Some(tokio::spawn(write_conversation(stdin, rx)));
        }
        (_, stdin) => child.stdin = stdin,
    }
    let pid = child.pid;
    // A timeout past what an instant can hold means no practical deadline, never a panic.
    let deadline = started.checked_add(spec.timeout).unwrap_or_else(|| far_after(started));
    child.clock = clock;
    let mut denials = Vec::new();
    let exit =
        supervise(child, parser.as_mut(), Some(deadline), cancel, Sink::Callback(on_line), &mut denials)
            .await;
    let mut outcome = parser.finish(&exit);
    outcome.denials = merge_denials(std::mem::take(&mut outcome.denials), denials);
    // Paths inside the worktree read better relative to it.
    let prefix = format!("{}/", spec.cwd.display());
    for d in &mut outcome.denials {
        if let Some(detail) = &mut d.detail {
            *detail = detail.replace(&prefix, "");
        }
    }
    Ok(RunReport { outcome, exit, duration: started.elapsed(), pid })
}

/// Writes each line of `lines` (a newline added) to the agent's stdin until the channel closes (the run's
/// result arrived, or the run ended), then closes stdin.
async fn write_conversation(mut stdin: ChildStdin, mut lines: mpsc::UnboundedReceiver<String>) {
    while let Some(mut line) = lines.recv().await {
        line.push('\n');
        // The child may exit without reading: a broken pipe is not our error.
        if stdin.write_all(line.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
            return;
        }
    }
    let _ = stdin.shutdown().await;
}

/// The denials a parser put in its outcome, then those seen as events, each tool call once.
fn merge_denials(mut first: Vec<Denial>, seen: Vec<Denial>) -> Vec<Denial> {
    for d in seen {
        let known = first.iter().any(|f| match (&f.call_id, &d.call_id) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        });
        if !known {
            first.push(d);
        }
    }
    first
}

/// A started child with its pipes being read.
struct Spawned {
    child: Child,
    pid: u32,
    stdin: Option<ChildStdin>,
    stdin_task: Option<JoinHandle<()>>,
    /// A conversation's stdin writer: dropped (closing stdin) once the result line arrived.
    conversation: Option<mpsc::UnboundedSender<String>>,
    /// Forwards answers into `conversation`.
    answer_task: Option<JoinHandle<()>>,
    /// Paused while the agent waits for a person: the deadline moves by the time it was paused.
    clock: Option<std::sync::Arc<RunClock>>,
    lines: mpsc::Receiver<PipeMsg>,
    readers: Vec<JoinHandle<()>>,
    guard: GroupGuard,
}

/// The processes of one run: its process group, and whatever carries its tag.
#[derive(Debug, Clone)]
struct RunProcs {
    pgid: i32,
    tag: String,
    /// The tagged processes signalled so far and not seen ended yet (an exiting process no longer shows
    /// its tag a moment before it is gone). Shared by the clones.
    signalled: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<i32>>>,
}

impl RunProcs {
    fn new(pgid: i32, tag: String) -> RunProcs {
        RunProcs { pgid, tag, signalled: Default::default() }
    }

    /// Whether any process of the run is left (a /proc scan: call it at most every few tens of ms).
    fn alive(&self) -> bool {
        if group_alive(self.pgid) || contain::any_tagged(&self.tag) {
            return true;
        }
        match self.signalled.lock() {
            Ok(mut s) => {
                s.retain(|p| !contain::ended(*p));
                !s.is_empty()
            }
            Err(_) => false,
        }
    }

    fn signal(&self, sig: Signal) {
        signal_group(self.pgid, sig);
        let pids = contain::signal_tagged(&self.tag, sig);
        if let Ok(mut s) = self.signalled.lock() {
            s.extend(pids);
        }
    }
}

impl Spawned {
    fn start(adapter: &dyn AgentAdapter, cmd: &CommandSpec, spec: &RunSpec) -> Result<Spawned, AgentError> {
        let agent = adapter.name();
        let tag = spec.run_tag.clone().filter(|t| !t.is_empty()).unwrap_or_else(contain::new_run_tag);
        let mut command = Command::new(&cmd.program);
        command
            .args(&cmd.args)
            .current_dir(&spec.cwd)
            .envs(cmd.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env(contain::RUN_TAG_VAR, &tag)
            .stdin(match cmd.stdin {
                StdinMode::Null => Stdio::null(),
                StdinMode::Text(_) | StdinMode::Interactive | StdinMode::Conversation(_) => Stdio::piped(),
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        let mut child = command.spawn().map_err(|e| spawn_error(adapter, &cmd.program, &spec.cwd, e))?;
        let pid = child.id().ok_or_else(|| AgentError::Io {
            agent,
            program: cmd.program.clone(),
            source: std::io::Error::other("the process ended before its id could be read"),
        })?;
        let guard = GroupGuard { procs: RunProcs::new(pid as i32, tag), armed: true };
        let (tx, rx) = mpsc::channel(256);
        let cap = spec.line_cap();
        // The secrets of the child's environment never reach what is recorded (a `env` tool call).
        let mut env = spec.env.clone();
        env.extend(cmd.env.iter().cloned());
        let redactor = std::sync::Arc::new(ampsm_core::Redactor::from_environment(&env));
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            let r = redactor.clone();
            readers.push(tokio::spawn(read_lines(out, cap, OutputStream::Stdout, tx.clone(), r)));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(tokio::spawn(read_lines(err, cap, OutputStream::Stderr, tx.clone(), redactor)));
        }
        let stdin = child.stdin.take();
        Ok(Spawned {
            child,
            pid,
            stdin,
            stdin_task: None,
            conversation: None,
            answer_task: None,
            clock: None,
            lines: rx,
            readers,
            guard,
        })
    }
}

fn spawn_error(adapter: &dyn AgentAdapter, program: &Path, cwd: &Path, e: std::io::Error) -> AgentError {
    if e.kind() == std::io::ErrorKind::NotFound && cwd.is_dir() {
        AgentError::NotFound {
            agent: adapter.name(),
            program: program.to_path_buf(),
            config_key: adapter.config_key(),
            install: adapter.install_hint(),
        }
    } else {
        AgentError::Spawn {
            agent: adapter.name(),
            program: program.to_path_buf(),
            cwd: cwd.to_path_buf(),
            source: e,
        }
    }
}

/// Kills the whole run if the supervision is dropped before it finished (e.g. its task was aborted).
struct GroupGuard {
    procs: RunProcs,
    armed: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            self.procs.signal(Signal::SIGKILL);
        }
    }
}

/// Whether any process of the group is left.
fn group_alive(pgid: i32) -> bool {
    !matches!(killpg(Pid::from_raw(pgid), None), Err(Errno::ESRCH))
}

fn signal_group(pgid: i32, sig: Signal) {
    let _ = killpg(Pid::from_raw(pgid), sig);
}

/// What the pipe readers send.
enum PipeMsg {
    Line { stream: OutputStream, raw: String, truncated: bool },
    Closed,
}

async fn read_lines(
    pipe: impl AsyncRead + Unpin,
    cap: usize,
    stream: OutputStream,
    tx: mpsc::Sender<PipeMsg>,
    redactor: std::sync::Arc<ampsm_core::Redactor>,
) {
    let mut reader = BufReader::with_capacity(64 * 1024, pipe);
    let mut buf = Vec::new();
    // A read error ends the stream like EOF does.
    while let Ok(Some(truncated)) = read_capped_line(&mut reader, &mut buf, cap).await {
        let raw = redactor.apply(line_to_string(&buf, truncated));
        if tx.send(PipeMsg::Line { stream, raw, truncated }).await.is_err() {
            return;
        }
    }
    let _ = tx.send(PipeMsg::Closed).await;
}

/// Reads one line into `buf` (without its newline), keeping at most `cap` bytes: the rest of a longer line
/// is read and dropped without being buffered. `Ok(None)` at EOF; `Ok(Some(truncated))` otherwise.
pub(crate) async fn read_capped_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    cap: usize,
) -> std::io::Result<Option<bool>> {
    buf.clear();
    let mut truncated = false;
    let mut read_any = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(read_any.then_some(truncated));
        }
        read_any = true;
        let (chunk, consumed, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], i + 1, true),
            None => (available, available.len(), false),
        };
        let room = cap.saturating_sub(buf.len());
        if chunk.len() > room {
            truncated = true;
        }
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        reader.consume(consumed);
        if done {
            return Ok(Some(truncated));
        }
    }
}

/// The bytes of a line as text: a trailing `\r` dropped; when the line was cut, a partial UTF-8 sequence
/// at the cut is dropped too; other invalid bytes become U+FFFD.
fn line_to_string(buf: &[u8], truncated: bool) -> String {
    let mut bytes = buf;
    if !truncated && let Some(stripped) = bytes.strip_suffix(b"\r") {
        bytes = stripped;
    }
    if truncated
        && let Err(e) = std::str::from_utf8(bytes)
        && e.error_len().is_none()
    {
        bytes = &bytes[..e.valid_up_to()];
    }
    String::from_utf8_lossy(bytes).into_owned()
}

/// Where the lines go.
enum Sink<'a> {
    Callback(&'a mut (dyn FnMut(StreamItem) + Send)),
    /// Interactive sessions: a bounded channel (a slow reader slows the agent down, memory stays bounded).
    Channel(mpsc::Sender<StreamItem>),
}

impl Sink<'_> {
    async fn deliver(&mut self, item: StreamItem) {
        match self {
            Sink::Callback(f) => f(item),
            Sink::Channel(tx) => {
                // A dropped receiver only means nobody listens any more.
                let _ = tx.send(item).await;
            }
        }
    }
}

/// What the supervision is doing.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// The agent runs; the timeout and the cancel signal are armed.
    Running,
    /// Stopping the group: `stage` signals sent so far (1 = INT, 2 = TERM, 3 = KILL); `next` is when to
    /// escalate (or give up after KILL).
    Stopping { stage: u8, next: Instant },
    /// The agent exited and its processes are gone; reading what is left in the pipes until they close, or
    /// until they stay silent until `until` (moved on by each line, never past `limit`, which moves on by
    /// the time the first [`DRAIN_LINES`] `lines` took to deliver).
    Draining { until: Instant, limit: Instant, lines: u64 },
}

/// Resolves when `cancel` holds `true`; never resolves without a receiver or once the sender is gone.
async fn cancel_requested(cancel: &mut Option<watch::Receiver<bool>>) {
    let Some(rx) = cancel.as_mut() else { return std::future::pending().await };
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

/// Reads the child's lines until it is gone, enforcing `deadline` and `cancel`.
async fn supervise(
    mut run: Spawned,
    parser: &mut (dyn StreamParser + Send),
    deadline: Option<Instant>,
    mut cancel: Option<watch::Receiver<bool>>,
    mut sink: Sink<'_>,
    denials: &mut Vec<Denial>,
) -> ExitInfo {
    let base_deadline = deadline;
    let mut deadline = deadline;
    let procs = run.guard.procs.clone();
    let mut seq = 0u64;
    let mut stderr_tail = String::new();
    let mut open_pipes = run.readers.len();
    let mut status: Option<ExitStatus> = None;
    let mut phase = Phase::Running;
    let (mut timed_out, mut cancelled) = (false, false);
    let far_future = far_after(Instant::now());
    let draining = || {
        let now = Instant::now();
        Phase::Draining { until: now + DRAIN_IDLE.min(DRAIN_MAX), limit: now + DRAIN_MAX, lines: 0 }
    };

    loop {
        if status.is_some() && open_pipes == 0 {
            break;
        }
        let stop_at = match phase {
            // Checked often: the run may be over long before the next escalation.
            Phase::Stopping { next, .. } => next.min(Instant::now() + STOP_POLL),
            Phase::Draining { until, .. } => until,
            Phase::Running => far_future,
        };
        tokio::select! {
            msg = run.lines.recv(), if open_pipes > 0 => match msg {
                Some(PipeMsg::Line { stream, raw, truncated }) => {
                    let mut events = match stream {
                        OutputStream::Stdout => parser.parse_line(&raw),
                        OutputStream::Stderr => {
                            keep_tail(&mut stderr_tail, &raw);
                            let mut events = vec![AgentEvent::Output { stream, text: raw.clone(), truncated }];
                            events.extend(parser.parse_stderr_line(&raw));
                            events
                        }
                    };
                    for ev in &events {
                        match ev {
                            // The run's answer is in: a conversation's stdin closes, so the agent can end.
                            AgentEvent::Result { .. } => {
                                run.conversation = None;
                                if let Some(task) = run.answer_task.take() {
                                    task.abort();
                                }
                            }
                            AgentEvent::PermissionDenied { call_id, tool, detail, reason } if denials.len() < MAX_DENIALS => {
                                denials.push(Denial {
                                    tool: tool.clone(),
                                    call_id: call_id.clone(),
                                    detail: detail.clone(),
                                    reason: reason.clone(),
                                });
                            }
                            _ => {}
                        }
                    }
                    if truncated {
                        for ev in &mut events {
                            if let AgentEvent::Output { truncated: t, .. } = ev {
                                *t = true;
                            }
                        }
                    }
                    let item = StreamItem { seq, ts_ms: ampsm_core::time::now_ms(), stream, raw, truncated, events };
                    seq += 1;
                    let delivering = Instant::now();
                    sink.deliver(item).await;
                    if let Phase::Draining { until, limit, lines } = &mut phase {
                        // A slow sink does not run the drain down; a writer that outlived the run does.
                        *lines += 1;
                        if *lines <= DRAIN_LINES {
                            *limit += delivering.elapsed();
                        }
                        *until = (Instant::now() + DRAIN_IDLE).min(*limit);
                    }
                }
                Some(PipeMsg::Closed) => open_pipes = open_pipes.saturating_sub(1),
                None => open_pipes = 0,
            },
            st = run.child.wait(), if status.is_none() => {
                status = Some(st.unwrap_or_else(|_| ExitStatus::from_raw(1 << 8)));
                if phase == Phase::Running {
                    // The agent is done. Anything it left behind, in its group or not, is stopped too.
                    phase = if procs.alive() {
                        procs.signal(Signal::SIGINT);
                        Phase::Stopping { stage: 1, next: Instant::now() + STOP_GRACE }
                    } else {
                        draining()
                    };
                }
            },
            _ = tokio::time::sleep_until(deadline.unwrap_or(far_future)),
                if phase == Phase::Running && deadline.is_some() => {
                // Time spent waiting for a person does not count.
                let (paused_now, paused) = run.clock.as_ref().map(|c| c.paused()).unwrap_or_default();
                let due = base_deadline.map(|d| d.checked_add(paused).unwrap_or_else(|| far_after(d)));
                if paused_now {
                    deadline = Some(Instant::now() + Duration::from_millis(250));
                } else if due.is_some_and(|d| d > Instant::now()) {
                    deadline = due;
                } else {
                    timed_out = true;
                    procs.signal(Signal::SIGINT);
                    phase = Phase::Stopping { stage: 1, next: Instant::now() + STOP_GRACE };
                }
            },
            _ = cancel_requested(&mut cancel), if phase == Phase::Running => {
                cancelled = true;
                procs.signal(Signal::SIGINT);
                phase = Phase::Stopping { stage: 1, next: Instant::now() + STOP_GRACE };
            },
            _ = tokio::time::sleep_until(stop_at), if phase != Phase::Running => match phase {
                // Everyone is gone: what is left in the pipes is still read.
                Phase::Stopping { .. } if status.is_some() && !procs.alive() => phase = draining(),
                Phase::Stopping { next, .. } if Instant::now() < next => {}
                Phase::Stopping { stage, .. } if stage < 3 => {
                    procs.signal(if stage == 1 { Signal::SIGTERM } else { Signal::SIGKILL });
                    phase = Phase::Stopping { stage: stage + 1, next: Instant::now() + STOP_GRACE };
                }
                // Something outlived SIGKILL and its grace, or the pipes stayed open and silent: stop
                // waiting for them.
                _ => break,
            },
        }
    }

    // Whatever happened above, no process of the run may be left behind.
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGKILL] {
        if !procs.alive() {
            break;
        }
        procs.signal(sig);
        let until = Instant::now() + STOP_GRACE;
        while procs.alive() && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // A daemon forking while it was killed: its new children carry the tag too.
    if contain::any_tagged(&procs.tag) {
        contain::stop_tagged(&procs.tag, Duration::ZERO);
    }
    if status.is_none() {
        let _ = run.child.start_kill();
        status = tokio::time::timeout(STOP_GRACE, run.child.wait()).await.ok().and_then(Result::ok);
    }
    run.guard.armed = procs.alive();
    for reader in &run.readers {
        reader.abort();
    }
    if let Some(task) = &run.stdin_task {
        task.abort();
    }
    if let Some(task) = &run.answer_task {
        task.abort();
    }
    run.conversation = None;
    drop(run.stdin.take());

    let stderr_tail = suffix_at_boundary(&stderr_tail, STDERR_TAIL_BYTES).to_string();
    let (code, signal) = match status {
        Some(st) => (st.code(), st.signal()),
        None => (None, None),
    };
    ExitInfo { code, signal, timed_out, cancelled, stderr_tail }
}

/// Appends a stderr line to the tail, keeping about the last [`STDERR_TAIL_BYTES`].
fn keep_tail(tail: &mut String, line: &str) {
    tail.push_str(prefix_at_boundary(line, STDERR_TAIL_BYTES));
    tail.push('\n');
    if tail.len() > 2 * STDERR_TAIL_BYTES {
        let keep = suffix_at_boundary(tail, STDERR_TAIL_BYTES).to_string();
        *tail = keep;
    }
}

/// How a user message is written on an interactive agent's stdin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageFormat {
    /// `{"type":"user","message":{"role":"user","content":[{"type":"text","text":…}]}}` (Amp).
    ContentBlocks,
    /// `{"type":"user","message":{"role":"user","content":"…"}}` (Claude Code).
    ContentString,
}

impl MessageFormat {
    /// The JSON line (without newline) carrying `text`.
    pub fn line(self, text: &str) -> String {
        let content = match self {
            MessageFormat::ContentBlocks => serde_json::json!([{"type": "text", "text": text}]),
            MessageFormat::ContentString => serde_json::json!(text),
        };
        serde_json::json!({"type": "user", "message": {"role": "user", "content": content}}).to_string()
    }
}

/// A long-lived agent session fed with user messages (chat). Lines arrive on [`InteractiveAgent::recv`];
/// [`InteractiveAgent::close`] ends it. Dropping it without closing stops its process group.
pub struct InteractiveAgent {
    agent: &'static str,
    program: PathBuf,
    pid: u32,
    format: MessageFormat,
    stdin: Option<ChildStdin>,
    items: mpsc::Receiver<StreamItem>,
    stop: watch::Sender<bool>,
    pump: Option<JoinHandle<(ExitInfo, RunOutcome)>>,
    started: Instant,
}

/// Starts an interactive session. When `spec.prompt` is not blank it is sent as the first message.
/// `spec.timeout` does not apply: the session lives until [`InteractiveAgent::close`] or drop.
pub async fn spawn_interactive(
    adapter: &dyn AgentAdapter,
    spec: &RunSpec,
) -> Result<InteractiveAgent, AgentError> {
    let cmd = adapter.interactive_command(spec)?;
    let mut parser = adapter.interactive_parser(spec);
    let started = Instant::now();
    let mut run = Spawned::start(adapter, &cmd, spec)?;
    let stdin = run.stdin.take();
    let pid = run.pid;
    let (items_tx, items_rx) = mpsc::channel(1024);
    let (stop_tx, stop_rx) = watch::channel(false);
    let pump = tokio::spawn(async move {
        let mut denials = Vec::new();
        let exit =
            supervise(run, parser.as_mut(), None, Some(stop_rx), Sink::Channel(items_tx), &mut denials).await;
        let mut outcome = parser.finish(&exit);
        outcome.denials = merge_denials(std::mem::take(&mut outcome.denials), denials);
        (exit, outcome)
    });
    let mut agent = InteractiveAgent {
        agent: adapter.name(),
        program: cmd.program.clone(),
        pid,
        format: adapter.message_format(),
        stdin,
        items: items_rx,
        stop: stop_tx,
        pump: Some(pump),
        started,
    };
    if !spec.prompt.trim().is_empty() {
        agent.send_user_message(&spec.prompt).await?;
    }
    Ok(agent)
}

impl InteractiveAgent {
    /// The child's pid (also its process-group id).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Writes one user message to the agent's stdin.
    pub async fn send_user_message(&mut self, text: &str) -> Result<(), AgentError> {
        let agent = self.agent;
        let stdin = self.stdin.as_mut().ok_or(AgentError::Closed { agent })?;
        let mut line = self.format.line(text);
        line.push('\n');
        let written = async {
            stdin.write_all(line.as_bytes()).await?;
            stdin.flush().await
        }
        .await;
        match written {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.stdin = None;
                Err(AgentError::Closed { agent })
            }
            Err(source) => Err(AgentError::Io { agent, program: self.program.clone(), source }),
        }
    }

    /// The next line of output; `None` once the agent has ended and everything was read.
    pub async fn recv(&mut self) -> Option<StreamItem> {
        self.items.recv().await
    }

    /// The receiver of output lines, for `select!` loops.
    pub fn items(&mut self) -> &mut mpsc::Receiver<StreamItem> {
        &mut self.items
    }

    /// Ends the session: closes stdin, waits up to `wait` for the agent to finish its turn and exit, then
    /// stops its process group. Lines not yet received are dropped.
    pub async fn close(mut self, wait: Duration) -> Result<RunReport, AgentError> {
        drop(self.stdin.take());
        let Some(mut pump) = self.pump.take() else { return Err(AgentError::Closed { agent: self.agent }) };
        // Keep the pipes flowing while waiting, so a chatty agent cannot block on a full channel.
        let now = Instant::now();
        let deadline = now.checked_add(wait).unwrap_or_else(|| far_after(now));
        let mut items_open = true;
        let finished = loop {
            tokio::select! {
                res = &mut pump => break Some(res),
                item = self.items.recv(), if items_open => items_open = item.is_some(),
                _ = tokio::time::sleep_until(deadline) => break None,
            }
        };
        let result = match finished {
            Some(res) => res,
            None => {
                let _ = self.stop.send(true);
                self.items.close();
                pump.await
            }
        };
        let (exit, outcome) = result.map_err(|e| AgentError::Io {
            agent: self.agent,
            program: self.program.clone(),
            source: std::io::Error::other(format!("the supervision task failed: {e}")),
        })?;
        Ok(RunReport { outcome, exit, duration: self.started.elapsed(), pid: self.pid })
    }
}

impl Drop for InteractiveAgent {
    fn drop(&mut self) {
        if self.pump.is_some() {
            // The supervision task stops the group (INT → TERM → KILL) and ends.
            let _ = self.stop.send(true);
        }
    }
}

impl std::fmt::Debug for InteractiveAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InteractiveAgent").field("agent", &self.agent).field("pid", &self.pid).finish()
    }
}

/// A point about 30 years after `from`: the deadline of "no deadline" (and of a timeout too long for an
/// instant), never past what an instant can hold.
fn far_after(from: Instant) -> Instant {
    tokio::time::Instant::from_std(ampsm_core::duration::deadline_after(
        from.into_std(),
        Duration::from_secs(30 * 365 * 24 * 3600),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Reads every line of `input` through a reader with a tiny buffer, so lines span many chunks.
    fn read_all(input: &[u8], buffer: usize, cap: usize) -> Vec<(Vec<u8>, bool)> {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let mut reader = BufReader::with_capacity(buffer, input);
            let mut buf = Vec::new();
            let mut out = Vec::new();
            while let Some(truncated) = read_capped_line(&mut reader, &mut buf, cap).await.unwrap() {
                out.push((buf.clone(), truncated));
            }
            out
        })
    }

    /// What the capped reader must return: the lines, each cut to `cap` bytes.
    fn reference(input: &[u8], cap: usize) -> Vec<(Vec<u8>, bool)> {
        if input.is_empty() {
            return Vec::new();
        }
        let body = input.strip_suffix(b"\n").unwrap_or(input);
        body.split(|&b| b == b'\n').map(|l| (l[..l.len().min(cap)].to_vec(), l.len() > cap)).collect()
    }

    #[test]
    fn capped_lines_across_chunks() {
        let input = b"short\nthis line is long\n\nlast without newline";
        assert_eq!(
            read_all(input, 3, 8),
            vec![
                (b"short".to_vec(), false),
                (b"this lin".to_vec(), true),
                (Vec::new(), false),
                (b"last wit".to_vec(), true)
            ]
        );
    }

    #[test]
    fn line_text_drops_cr_and_half_characters() {
        assert_eq!(line_to_string(b"abc\r", false), "abc");
        assert_eq!(line_to_string("aé".as_bytes()[..2].as_ref(), true), "a");
        assert_eq!(line_to_string(b"a\xffb", false), "a\u{fffd}b");
    }

    #[test]
    fn stderr_tail_keeps_the_end() {
        let mut tail = String::new();
        for i in 0..20_000 {
            keep_tail(&mut tail, &format!("line {i}"));
        }
        assert!(tail.len() <= 2 * STDERR_TAIL_BYTES + 16);
        assert!(tail.ends_with("line 19999\n"));
        let kept = suffix_at_boundary(&tail, STDERR_TAIL_BYTES);
        assert!(kept.len() <= STDERR_TAIL_BYTES);
    }

    proptest! {
        #[test]
        fn capped_reader_matches_the_reference(
            input in prop::collection::vec(prop_oneof![Just(b'\n'), any::<u8>()], 0..400),
            buffer in 1usize..20,
            cap in 0usize..40,
        ) {
            prop_assert_eq!(read_all(&input, buffer, cap), reference(&input, cap));
        }
    }
}

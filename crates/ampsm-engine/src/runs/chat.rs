//! `chat`: a conversation with the session's agent in the terminal. Agents with an interactive protocol
//! (Amp `--stream-json-input`, Claude Code `--input-format stream-json`, the offline demo) run as one
//! long-lived process fed message by message, its output streamed as it arrives and recorded like any
//! run (one iteration of kind `chat`); the others get one `iterate` per message, continuing their thread.
//! Ctrl-C ends the conversation cleanly: the agent is stopped with its process group, and what it did is
//! recorded and committed. When the messages run out (end of input), the agent finishes its turn first.

use crate::runs::iterate::{IterationReport, PreparedRun, Recorder};
use crate::{Engine, EngineError, IterateRequest};
use ampsm_agent::{RunReport, StreamItem};
use ampsm_core::AgentEvent;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

/// How long the agent gets to finish after the conversation ends.
const CLOSE_WAIT: Duration = Duration::from_secs(20);

/// Whether an event ends the agent's turn (the user may speak).
pub fn ends_turn(ev: &AgentEvent) -> bool {
    matches!(ev, AgentEvent::TurnEnd { .. } | AgentEvent::Result { .. })
}

/// The next message, waiting for it until the input ends or the user interrupts (`None` then).
fn next_message(messages: &mut UnboundedReceiver<String>, interrupt: &crate::Interrupt) -> Option<String> {
    use tokio::sync::mpsc::error::TryRecvError;
    let _busy = interrupt.busy();
    loop {
        if interrupt.interrupted() {
            return None;
        }
        match messages.try_recv() {
            Ok(text) => return Some(text),
            Err(TryRecvError::Empty) => std::thread::sleep(Duration::from_millis(50)),
            Err(TryRecvError::Disconnected) => return None,
        }
    }
}

impl Engine {
    /// Runs a conversation: `messages` are the user's messages (the channel closing ends the chat);
    /// `observer` sees every agent line as it arrives. Returns one report per iteration recorded.
    pub fn chat(
        &mut self,
        session_ref: &str,
        mut messages: UnboundedReceiver<String>,
        observer: &mut (dyn FnMut(&StreamItem) + Send),
    ) -> Result<Vec<IterationReport>, EngineError> {
        let session = self.store.resolve_session(session_ref, false)?;
        let adapter = ampsm_agent::adapter_for(&session.agent)?;
        if !adapter.capabilities().interactive {
            // One turn per message, continuing the agent's thread. Ctrl-C stops the turn in progress (its
            // work is committed) and ends the chat. A chat always waits for a message or runs a turn, so a
            // signal always finds something to stop: there is nothing left to do when idle.
            let interrupt = crate::Interrupt::install(|| {});
            let mut reports = Vec::new();
            while let Some(text) = next_message(&mut messages, &interrupt) {
                let req = IterateRequest {
                    session: session.id.to_string(),
                    prompt: Some(text),
                    interrupt: Some(interrupt.clone()),
                    ..Default::default()
                };
                reports.push(self.iterate(req, observer)?);
                if interrupt.interrupted() {
                    break;
                }
            }
            return Ok(reports);
        }
        let Some(first) = messages.blocking_recv() else { return Ok(Vec::new()) };
        let mut prep = self.prepare_run(session, Some(first), None, None, "chat")?;
        let run = self.converse(&mut prep, &mut messages, observer);
        Ok(vec![self.finish_run(prep, run)?])
    }

    /// The interactive part: the agent process, the messages, the recording.
    fn converse(
        &mut self,
        prep: &mut PreparedRun,
        messages: &mut UnboundedReceiver<String>,
        observer: &mut (dyn FnMut(&StreamItem) + Send),
    ) -> Result<(RunReport, usize), EngineError> {
        let recorder = Recorder::start(self.store.path(), &prep.session, &prep.iteration_id);
        let sink = recorder.sink();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| EngineError::Io { path: PathBuf::from("tokio runtime"), source })?;
        let result: Result<RunReport, EngineError> = runtime.block_on(async {
            // The first message is the spec's prompt: spawn_interactive sends it.
            let mut agent = ampsm_agent::spawn_interactive(prep.adapter.as_ref(), &prep.spec).await?;
            sink.spawned(agent.pid());
            let mut turn_over = false;
            let mut input_open = true;
            let ctrl_c = tokio::signal::ctrl_c();
            tokio::pin!(ctrl_c);
            loop {
                tokio::select! {
                    msg = messages.recv(), if input_open && turn_over => match msg {
                        Some(text) => {
                            turn_over = false;
                            agent.send_user_message(&text).await?;
                        }
                        None => input_open = false,
                    },
                    item = agent.recv() => match item {
                        Some(item) => {
                            turn_over |= item.events.iter().any(ends_turn);
                            observer(&item);
                            sink.line(item);
                        }
                        None => break,
                    },
                    _ = &mut ctrl_c => break,
                    _ = tokio::time::sleep(Duration::from_millis(50)), if !input_open && turn_over => break,
                }
            }
            Ok(agent.close(CLOSE_WAIT).await?)
        });
        drop(sink);
        let written = recorder.finish()?;
        Ok((result?, written))
    }
}

//! The `command` agent's "stream": any program's stdout, each line an `Output` event. Success is exit 0;
//! the final text is the end of stdout.

use super::{compose_error, plain_output, suffix_at_boundary};
use crate::adapter::StreamParser;
use crate::spec::ExitInfo;
use ampsm_core::{AgentEvent, RunOutcome};

/// How much of the end of stdout becomes the final text.
const FINAL_TEXT_BYTES: usize = 4096;

/// Parser for the `command` agent.
#[derive(Debug, Default)]
pub struct CommandParser {
    tail: String,
}

impl CommandParser {
    pub fn new() -> Self {
        Self::default()
    }
}

impl StreamParser for CommandParser {
    fn parse_line(&mut self, line: &str) -> Vec<AgentEvent> {
        self.tail.push_str(line);
        self.tail.push('\n');
        if self.tail.len() > 4 * FINAL_TEXT_BYTES {
            self.tail = suffix_at_boundary(&self.tail, FINAL_TEXT_BYTES).to_string();
        }
        vec![plain_output(line)]
    }

    fn finish(&mut self, exit: &ExitInfo) -> RunOutcome {
        let success = exit.is_clean_success();
        let text = suffix_at_boundary(&self.tail, FINAL_TEXT_BYTES).trim_end();
        RunOutcome {
            success,
            final_text: (!text.trim().is_empty()).then(|| text.to_string()),
            error: (!success).then(|| compose_error("command", exit, None, None)),
            ..Default::default()
        }
    }
}

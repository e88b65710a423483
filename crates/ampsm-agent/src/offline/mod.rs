//! The offline demo agent: a real subprocess that speaks Amp's `--stream-json` format and replays a recorded
//! transcript, so a newcomer with no agent installed (and no key) can try every feature on the demo
//! repository. It really applies the transcript's file edits in its working directory (`edit_file` is an
//! exact string replacement, `create_file` writes the file, `Read` reads it); `Bash` results are replayed,
//! not executed. It never touches the network. With `--read-only` (the `read-only` permission policy) it
//! refuses its own edits and commands, as a real agent's sandbox would, and reports them in the result
//! line's `permission_denials`.
//!
//! The main binary routes its hidden `__offline-agent` subcommand to [`run_offline_agent`].

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

/// The hidden subcommand of the main binary that runs this agent.
pub const OFFLINE_SUBCOMMAND: &str = "__offline-agent";

/// The prompt the demo transcript answers.
pub const DEMO_PROMPT: &str =
    "Add a --shout flag to hello.sh that prints the greeting in upper case, with a test";

/// The follow-up prompt the continuation transcript answers (any prompt gets that transcript).
pub const DEMO_FOLLOW_UP_PROMPT: &str = "Document the --shout flag in the README";

/// The demo repository's test command.
pub const DEMO_TEST_SCRIPT: &str = "sh tests/run.sh";

/// Set to `1` to replay without pauses.
pub const FAST_ENV: &str = "AMPSM_OFFLINE_FAST";

const TRANSCRIPT_FIRST: &str = include_str!("transcript_first.jsonl");
const TRANSCRIPT_CONTINUE: &str = include_str!("transcript_continue.jsonl");

const README: &str = "# hello

A tiny greeting script written in POSIX shell.

## Usage

    sh hello.sh          # Hello, world!
    sh hello.sh Ada      # Hello, Ada!

## Tests

    sh tests/run.sh
";

const HELLO_SH: &str = "#!/bin/sh
# Greets someone: sh hello.sh [name]
name=\"${1:-world}\"
printf 'Hello, %s!\\n' \"$name\"
";

const RUN_SH: &str = "#!/bin/sh
# Runs every tests/*_test.sh from the repository root; exits non-zero if any fails.
cd \"$(dirname \"$0\")/..\" || exit 1
failed=0
for t in tests/*_test.sh; do
  if sh \"$t\"; then
    echo \"ok   $t\"
  else
    echo \"FAIL $t\"
    failed=1
  fi
done
exit $failed
";

const HELLO_TEST_SH: &str = "#!/bin/sh
# hello.sh greets the given name, or the world.
out=$(sh hello.sh Ada)
[ \"$out\" = \"Hello, Ada!\" ] || { echo \"expected 'Hello, Ada!', got '$out'\"; exit 1; }
out=$(sh hello.sh)
[ \"$out\" = \"Hello, world!\" ] || { echo \"expected 'Hello, world!', got '$out'\"; exit 1; }
";

/// The files of the demo repository the transcript edits: `(relative path, content)`. A POSIX-shell
/// project with no other dependency; its tests run with [`DEMO_TEST_SCRIPT`].
pub fn demo_repo_files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("README.md", README),
        ("hello.sh", HELLO_SH),
        ("tests/run.sh", RUN_SH),
        ("tests/hello_test.sh", HELLO_TEST_SH),
    ]
}

/// How the replay is paced.
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    /// The shortest pause before a line.
    pub min: Duration,
    /// The longest pause before a line.
    pub max: Duration,
}

impl Pacing {
    /// 50–150 ms per line, like a (fast) real agent.
    pub const REALISTIC: Pacing = Pacing { min: Duration::from_millis(50), max: Duration::from_millis(150) };
    /// No pauses.
    pub const NONE: Pacing = Pacing { min: Duration::ZERO, max: Duration::ZERO };

    /// [`Pacing::NONE`] when `AMPSM_OFFLINE_FAST=1`, else [`Pacing::REALISTIC`].
    pub fn from_env() -> Pacing {
        match std::env::var(FAST_ENV) {
            Ok(v) if v.trim() == "1" || v.trim().eq_ignore_ascii_case("true") => Pacing::NONE,
            _ => Pacing::REALISTIC,
        }
    }

    fn pause(&self, index: usize) {
        if self.max.is_zero() {
            return;
        }
        let span = self.max.saturating_sub(self.min).as_millis() as u64;
        let jitter = if span == 0 { 0 } else { mix(index as u64 + 0x9e37) % (span + 1) };
        std::thread::sleep(self.min + Duration::from_millis(jitter));
    }
}

/// What the arguments asked for.
#[derive(Debug, Default)]
struct Args {
    continue_thread: Option<String>,
    stream_json: bool,
    stream_json_input: bool,
    version: bool,
    read_only: bool,
}

fn parse_args(args: &[String]) -> Args {
    let mut out = Args::default();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            OFFLINE_SUBCOMMAND | "-x" | "--execute" => {}
            "--version" | "-V" => out.version = true,
            "--read-only" => out.read_only = true,
            "--stream-json" | "--stream-json-thinking" => out.stream_json = true,
            "--stream-json-input" => {
                out.stream_json = true;
                out.stream_json_input = true;
            }
            "threads" | "t" if matches!(args.get(i + 1).map(String::as_str), Some("continue" | "c")) => {
                if let Some(id) = args.get(i + 2).filter(|a| !a.starts_with('-')) {
                    out.continue_thread = Some(id.clone());
                    i += 1;
                }
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Runs the demo agent: reads the prompt from `stdin`, writes Amp stream-json lines to `stdout`, edits
/// files under `cwd`. `args` are the arguments after the program name (a leading `__offline-agent` is
/// skipped): `--stream-json`, `threads continue <T-id>` (replays the follow-up transcript),
/// `--stream-json-input` (a small chat loop), `--version`. Returns the process exit code. Pacing follows
/// `AMPSM_OFFLINE_FAST`.
pub fn run_offline_agent(args: &[String], stdin: impl Read, stdout: impl Write, cwd: &Path) -> i32 {
    run_offline_agent_with(args, stdin, stdout, cwd, Pacing::from_env())
}

/// [`run_offline_agent`] with explicit pacing.
pub fn run_offline_agent_with(
    args: &[String],
    mut stdin: impl Read,
    mut stdout: impl Write,
    cwd: &Path,
    pacing: Pacing,
) -> i32 {
    let args = parse_args(args);
    if args.version {
        let _ = writeln!(stdout, "amp-sessions offline demo agent {}", env!("CARGO_PKG_VERSION"));
        return 0;
    }
    let thread_id = args.continue_thread.clone().unwrap_or_else(new_thread_id);
    if args.stream_json_input {
        return chat_loop(stdin, stdout, cwd, &thread_id, pacing);
    }
    let mut prompt = String::new();
    if let Err(e) = stdin.read_to_string(&mut prompt) {
        eprintln!("Error: could not read the prompt from stdin: {e}");
        return 1;
    }
    let prompt = prompt.trim_end_matches(['\n', '\r']).to_string();
    if prompt.trim().is_empty() {
        eprintln!(
            "Error: User message must be provided through stdin or as argument when using execute mode"
        );
        return 1;
    }
    let transcript = if args.continue_thread.is_some() { TRANSCRIPT_CONTINUE } else { TRANSCRIPT_FIRST };
    let mut replay = Replay {
        cwd: cwd.to_path_buf(),
        thread_id,
        prompt,
        results: Vec::new(),
        failure: None,
        started: Instant::now(),
        read_only: args.read_only,
        denials: Vec::new(),
    };
    let mut final_text = None;
    for (index, template) in transcript.lines().enumerate() {
        let Ok(mut line) = serde_json::from_str::<Value>(template) else { continue };
        replay.fill(&mut line);
        if replay.failure.is_some() && str_at(&line, &["type"]) != Some("user") {
            break;
        }
        match str_at(&line, &["type"]) {
            Some("assistant") => replay.run_tools(&line),
            Some("user") => replay.put_results(&mut line),
            Some("result") => {
                if let Some(obj) = line.as_object_mut() {
                    obj.insert("duration_ms".into(), json!(replay.started.elapsed().as_millis() as u64));
                    if !replay.denials.is_empty() {
                        obj.insert("permission_denials".into(), json!(replay.denials));
                    }
                }
                final_text = str_at(&line, &["result"]).map(str::to_string);
            }
            _ => {}
        }
        pacing.pause(index);
        if args.stream_json && writeln!(stdout, "{line}").and_then(|_| stdout.flush()).is_err() {
            return 1;
        }
    }
    if let Some(failure) = replay.failure.clone() {
        let text = format!(
            "I could not apply my change: {failure}. This recorded demo expects the files of the demo \
             repository (see `demo_repo_files`), unchanged."
        );
        let lines = [
            json!({"type":"assistant","message":{"type":"message","role":"assistant","model":"claude-sonnet-4-5",
                "content":[{"type":"text","text":text}],"stop_reason":"end_turn",
                "usage":{"input_tokens":6,"cache_creation_input_tokens":90,"cache_read_input_tokens":10300,
                    "output_tokens":48}},
                "parent_tool_use_id":null,"session_id":replay.thread_id}),
            json!({"type":"result","subtype":"error_during_execution","duration_ms":replay.started.elapsed().as_millis() as u64,
                "is_error":true,"num_turns":1,"error":format!("offline demo: {failure}"),"session_id":replay.thread_id}),
        ];
        for (i, line) in lines.iter().enumerate() {
            pacing.pause(100 + i);
            if args.stream_json {
                let _ = writeln!(stdout, "{line}").and_then(|_| stdout.flush());
            }
        }
        if !args.stream_json {
            let _ = writeln!(stdout, "{text}");
        }
        eprintln!("Error: offline demo: {failure}");
        return 1;
    }
    if !args.stream_json
        && let Some(text) = final_text
    {
        let _ = writeln!(stdout, "{text}");
    }
    0
}

/// The state of one replay: placeholders, tool results computed so far, the first failure.
struct Replay {
    cwd: PathBuf,
    thread_id: String,
    prompt: String,
    /// `(tool_use_id, content, is_error)` of the tools really run.
    results: Vec<(String, String, bool)>,
    failure: Option<String>,
    started: Instant,
    /// The `read-only` policy: edits and commands are refused.
    read_only: bool,
    /// The refused tool calls, as Claude Code reports them (`tool_name`, `tool_use_id`, `tool_input`).
    denials: Vec<Value>,
}

impl Replay {
    /// Replaces the placeholders of a transcript line.
    fn fill(&self, v: &mut Value) {
        match v {
            Value::String(s) => {
                if s == "{{PROMPT}}" {
                    *s = self.prompt.clone();
                } else if s == "{{FIRST_PROMPT}}" {
                    *s = DEMO_PROMPT.to_string();
                } else if s.contains("{{") {
                    *s = s
                        .replace("{{CWD}}", &self.cwd.display().to_string())
                        .replace("{{THREAD_ID}}", &self.thread_id);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| self.fill(i)),
            Value::Object(map) => map.values_mut().for_each(|i| self.fill(i)),
            _ => {}
        }
    }

    /// Runs the file tools of an assistant line and remembers their results.
    fn run_tools(&mut self, line: &Value) {
        let blocks = line.get("message").and_then(|m| m.get("content")).and_then(Value::as_array);
        for block in blocks.into_iter().flatten() {
            if block.get("type").and_then(Value::as_str) != Some("tool_use") {
                continue;
            }
            let id = block.get("id").and_then(Value::as_str).unwrap_or("").to_string();
            let input = block.get("input").unwrap_or(&Value::Null);
            let name = block.get("name").and_then(Value::as_str).unwrap_or("");
            if self.read_only && matches!(name, "edit_file" | "create_file" | "Bash") {
                self.denials.push(json!({"tool_name": name, "tool_use_id": id, "tool_input": input}));
                let text = format!("Permission denied: the read-only policy does not allow {name}");
                self.results.push((id, text, true));
                continue;
            }
            let outcome = match name {
                "Read" => Some(self.read(input)),
                "edit_file" => Some(self.edit(input)),
                "create_file" => Some(self.create(input)),
                _ => None,
            };
            if let Some(outcome) = outcome {
                let (content, is_error) = match outcome {
                    Ok(text) => (text, false),
                    Err(text) => {
                        if self.failure.is_none() {
                            self.failure = Some(text.clone());
                        }
                        (text, true)
                    }
                };
                self.results.push((id, content, is_error));
            }
        }
    }

    /// Puts the computed results into a user line's `tool_result` blocks.
    fn put_results(&self, line: &mut Value) {
        let blocks = line.get_mut("message").and_then(|m| m.get_mut("content")).and_then(Value::as_array_mut);
        for block in blocks.into_iter().flatten() {
            let id = block.get("tool_use_id").and_then(Value::as_str).unwrap_or("").to_string();
            if let Some((_, content, is_error)) = self.results.iter().find(|(i, _, _)| *i == id)
                && let Some(obj) = block.as_object_mut()
            {
                obj.insert("content".into(), json!(content));
                obj.insert("is_error".into(), json!(is_error));
            }
        }
    }

    /// The path a tool names, if it lies inside the working directory.
    fn resolve(&self, input: &Value) -> Result<(PathBuf, String), String> {
        let raw = input.get("path").and_then(Value::as_str).ok_or("the tool call names no path")?;
        let path = if Path::new(raw).is_absolute() { PathBuf::from(raw) } else { self.cwd.join(raw) };
        let rel =
            path.strip_prefix(&self.cwd).map_err(|_| format!("{raw} is outside the working directory"))?;
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) || rel.as_os_str().is_empty() {
            return Err(format!("{raw} is outside the working directory"));
        }
        Ok((path.clone(), rel.display().to_string()))
    }

    fn read(&self, input: &Value) -> Result<String, String> {
        let (path, rel) = self.resolve(input)?;
        let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {rel}: {e}"))?;
        Ok(text.lines().enumerate().map(|(i, l)| format!("{}: {l}", i + 1)).collect::<Vec<_>>().join("\n"))
    }

    fn edit(&self, input: &Value) -> Result<String, String> {
        let (path, rel) = self.resolve(input)?;
        let old = input.get("old_str").and_then(Value::as_str).unwrap_or("");
        let new = input.get("new_str").and_then(Value::as_str).unwrap_or("");
        let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {rel}: {e}"))?;
        if old.is_empty() || !text.contains(old) {
            return Err(format!("old_str was not found in {rel}; the file was not changed"));
        }
        std::fs::write(&path, text.replacen(old, new, 1)).map_err(|e| format!("cannot write {rel}: {e}"))?;
        Ok(format!("Edited {rel}"))
    }

    fn create(&self, input: &Value) -> Result<String, String> {
        let (path, rel) = self.resolve(input)?;
        let content = input.get("content").and_then(Value::as_str).unwrap_or("");
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create the directory of {rel}: {e}"))?;
        }
        std::fs::write(&path, content).map_err(|e| format!("cannot write {rel}: {e}"))?;
        Ok(format!("Created {rel}"))
    }
}

/// `--stream-json-input`: answers each user message with one canned turn, until stdin closes. Like Amp in
/// this mode, no `result` line is written.
fn chat_loop(stdin: impl Read, mut stdout: impl Write, cwd: &Path, thread_id: &str, pacing: Pacing) -> i32 {
    let init = json!({"type":"system","subtype":"init","cwd":cwd.display().to_string(),"session_id":thread_id,
        "tools":["Bash","create_file","edit_file","Read"],"mcp_servers":[]});
    if writeln!(stdout, "{init}").and_then(|_| stdout.flush()).is_err() {
        return 1;
    }
    let mut turn = 0u64;
    for line in BufReader::new(stdin).lines() {
        let Ok(line) = line else { break };
        let Ok(msg) = serde_json::from_str::<Value>(&line) else { continue };
        if msg.get("type").and_then(Value::as_str) != Some("user") {
            continue;
        }
        let text = match msg.get("message").and_then(|m| m.get("content")) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(blocks)) => blocks
                .iter()
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n"),
            _ => String::new(),
        };
        turn += 1;
        let reply = format!(
            "(offline demo) I am a recorded demo agent, so I cannot really discuss \"{}\". Install Amp or \
             another agent to chat for real.",
            text.chars().take(200).collect::<String>()
        );
        let lines = [
            json!({"type":"user","message":{"role":"user","content":[{"type":"text","text":text}]},
                "parent_tool_use_id":null,"session_id":thread_id}),
            json!({"type":"assistant","message":{"type":"message","role":"assistant","model":"claude-sonnet-4-5",
                "content":[{"type":"text","text":reply}],"stop_reason":"end_turn",
                "usage":{"input_tokens":4,"cache_creation_input_tokens":120,"cache_read_input_tokens":9800 + 150 * turn,
                    "output_tokens":38}},
                "parent_tool_use_id":null,"session_id":thread_id}),
        ];
        for (i, l) in lines.iter().enumerate() {
            pacing.pause(i);
            if writeln!(stdout, "{l}").and_then(|_| stdout.flush()).is_err() {
                return 1;
            }
        }
    }
    0
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for key in path {
        cur = cur.get(key)?;
    }
    cur.as_str()
}

/// splitmix64: spreads bits for ids and jitter.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A fresh thread id shaped like Amp's: `T-` and a UUIDv7-looking value (time first, then noise).
pub fn new_thread_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let millis = now.as_millis() as u64 & 0xffff_ffff_ffff;
    let seed = (now.as_nanos() as u64)
        ^ (u64::from(std::process::id()) << 32)
        ^ COUNTER.fetch_add(1, Ordering::Relaxed);
    let a = mix(seed);
    let b = mix(a ^ 0x5bd1_e995);
    format!(
        "T-{:08x}-{:04x}-7{:03x}-{:04x}-{:012x}",
        millis >> 16,
        millis & 0xffff,
        a & 0xfff,
        0x8000 | ((a >> 12) & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests;

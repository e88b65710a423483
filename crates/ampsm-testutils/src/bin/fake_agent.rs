//! `fake-agent`: a stand-in for the `amp`, `claude`, `codex`, `gemini` and
//! `opencode` CLIs, driven by a scenario file.
//!
//! Scenario: env `FAKE_AGENT_SCENARIO` holds a path to a JSON file (or inline
//! JSON starting with `{`):
//!
//! ```json
//! {"format": "amp|claude|codex|gemini|opencode",
//!  "steps": [ ... ],
//!  "continue_steps": [ ... ]}
//! ```
//!
//! `continue_steps` run instead of `steps` when the command line asks for a
//! continuation (amp `threads continue <id>`, claude `--resume <id>`/`-c`,
//! codex `exec … resume <id>|--last`, gemini `-r <id>`, opencode `-s <id>`/`-c`).
//! Other top-level keys (`description`, `expected_*`) are ignored.
//!
//! Steps, run in order:
//! - `{"emit": {…}}`: prints the object as one compact JSON line, key order as
//!   written, after replacing `{{thread_id}}`, `{{cwd}}` and `{{prompt}}`.
//! - `{"emit_raw": "text"}`: prints the text as one line, as is.
//! - `{"emit_big": N}`: streams one N-byte line, the vendor's assistant text
//!   event padded with `x`.
//! - `{"write_file": {"path", "content"}}`, `{"edit_file": {"path", "old",
//!   "new", "all"?}}`: really change files (relative to the cwd); an edit whose
//!   `old` text is missing fails the run (exit 1).
//! - `{"sleep_ms": N}`, `{"stderr": "text"}`, `{"exit": code}`.
//! - `{"hang": true, "with_child"?: true}`: sleeps forever, after spawning a
//!   `sleep 1000` grandchild if asked (its pid is printed on stderr).
//! - `{"require_env": "VAR", "message"?, "message_stream"?: "stderr",
//!   "else_exit"?: code, "else_hang"?: bool}`: if VAR is unset or empty, prints
//!   the message (stdout by default) and exits (default 1) or hangs.
//!
//! The prompt is the vendor's prompt argument, else stdin (read to EOF when it
//! is not a terminal; with `--input-format stream-json`/`--stream-json-input`
//! the text of the JSON user messages). The thread id is the one given for a
//! continuation, else a fresh one in the vendor's shape. Every flag the real
//! CLIs take is accepted and ignored. Each run appends one JSON line (`argv`,
//! `stdin`, `cwd`, `env_has_amp_key`, `prompt`, `thread_id`, …) to the file
//! named by env `FAKE_AGENT_LOG`, if set. Default exit code: 0.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

/// How long to wait for stdin to reach EOF when the prompt came as an argument.
const STDIN_GRACE: Duration = Duration::from_millis(500);

fn main() {
    let code = match run() {
        Ok(code) => code,
        Err(message) => {
            eprintln!("fake-agent: {message}");
            2
        }
    };
    std::process::exit(code);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Amp,
    Claude,
    Codex,
    Gemini,
    OpenCode,
}

impl Format {
    fn parse(name: &str) -> Result<Format, String> {
        match name {
            "amp" => Ok(Format::Amp),
            "claude" => Ok(Format::Claude),
            "codex" => Ok(Format::Codex),
            "gemini" => Ok(Format::Gemini),
            "opencode" => Ok(Format::OpenCode),
            other => Err(format!("unknown scenario format {other:?}")),
        }
    }

    /// Flags that always take a value (the next argument, or `--flag=value`).
    fn value_flags(self) -> &'static [&'static str] {
        match self {
            Format::Amp => &[
                "-m",
                "--mode",
                "--visibility",
                "--settings-file",
                "--log-level",
                "--log-file",
                "--mcp-config",
                "-l",
                "--label",
                "--title",
                "--toolbox",
                "--features",
            ],
            Format::Claude => &[
                "--output-format",
                "--input-format",
                "--model",
                "--fallback-model",
                "-r",
                "--resume",
                "--session-id",
                "--permission-mode",
                "--allowedTools",
                "--allowed-tools",
                "--disallowedTools",
                "--disallowed-tools",
                "--append-system-prompt",
                "--system-prompt",
                "--max-turns",
                "--max-budget-usd",
                "--settings",
                "--setting-sources",
                "--mcp-config",
                "--add-dir",
                "--effort",
                "--resume-session-at",
                "--permission-prompt-tool",
                "--agents",
                "--betas",
                "--tools",
            ],
            Format::Codex => &[
                "-m",
                "--model",
                "-s",
                "--sandbox",
                "-C",
                "--cd",
                "-c",
                "--config",
                "-p",
                "--profile",
                "--add-dir",
                "-o",
                "--output-last-message",
                "--output-schema",
                "--color",
                "--enable",
                "--disable",
                "-i",
                "--image",
                "--local-provider",
                "-a",
                "--ask-for-approval",
            ],
            Format::Gemini => &[
                "-p",
                "--prompt",
                "-i",
                "--prompt-interactive",
                "-m",
                "--model",
                "-o",
                "--output-format",
                "--approval-mode",
                "--include-directories",
                "-e",
                "--extensions",
                "--allowed-tools",
                "--allowed-mcp-server-names",
                "--telemetry-target",
                "--telemetry-otlp-endpoint",
            ],
            Format::OpenCode => &[
                "-m",
                "--model",
                "-s",
                "--session",
                "--agent",
                "--dir",
                "-f",
                "--file",
                "--format",
                "--title",
                "--port",
                "--variant",
                "--attach",
                "--log-level",
            ],
        }
    }

    /// Flags whose value is optional: taken only if the next argument does not
    /// look like a flag.
    fn optional_value_flags(self) -> &'static [&'static str] {
        match self {
            Format::Amp => &["-x", "--execute"],
            Format::Gemini => &["-r", "--resume"],
            _ => &[],
        }
    }
}

/// What the command line says, as far as the fake cares.
#[derive(Debug, Default)]
struct Invocation {
    /// `Some(id)` for a continuation; the inner `None` means "latest".
    continuation: Option<Option<String>>,
    /// The prompt given as an argument (`-` means read stdin).
    prompt_arg: Option<String>,
}

/// Splits arguments into flags (with values) and positionals.
fn split_args(format: Format, args: &[String]) -> (Vec<(String, Option<String>)>, Vec<String>) {
    let mut flags = Vec::new();
    let mut positionals = Vec::new();
    let mut i = 0;
    let mut only_positionals = false;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if only_positionals || arg == "-" || !arg.starts_with('-') {
            positionals.push(arg.clone());
            continue;
        }
        if arg == "--" {
            only_positionals = true;
            continue;
        }
        if let Some((name, value)) = arg.split_once('=')
            && name.starts_with("--")
        {
            flags.push((name.to_owned(), Some(value.to_owned())));
            continue;
        }
        if format.value_flags().contains(&arg.as_str()) {
            let value = args.get(i).cloned();
            if value.is_some() {
                i += 1;
            }
            flags.push((arg.clone(), value));
        } else if format.optional_value_flags().contains(&arg.as_str()) {
            match args.get(i) {
                Some(next) if !next.starts_with('-') || next == "-" => {
                    flags.push((arg.clone(), Some(next.clone())));
                    i += 1;
                }
                _ => flags.push((arg.clone(), None)),
            }
        } else {
            flags.push((arg.clone(), None));
        }
    }
    (flags, positionals)
}

fn flag_value<'a>(flags: &'a [(String, Option<String>)], names: &[&str]) -> Option<&'a Option<String>> {
    flags.iter().find(|(name, _)| names.contains(&name.as_str())).map(|(_, value)| value)
}

fn has_flag(flags: &[(String, Option<String>)], names: &[&str]) -> bool {
    flag_value(flags, names).is_some()
}

fn parse_invocation(format: Format, args: &[String]) -> Invocation {
    let (flags, positionals) = split_args(format, args);
    let mut inv = Invocation::default();
    match format {
        Format::Amp => {
            let mut rest: &[String] = &positionals;
            let is_threads = rest.first().is_some_and(|p| matches!(p.as_str(), "threads" | "thread" | "t"));
            let is_continue = rest.get(1).is_some_and(|p| matches!(p.as_str(), "continue" | "c"));
            if is_threads && is_continue {
                let id = rest.get(2).filter(|_| !has_flag(&flags, &["--last"])).cloned();
                rest = if id.is_some() { &rest[3..] } else { &rest[2..] };
                inv.continuation = Some(id);
            }
            inv.prompt_arg =
                flag_value(&flags, &["-x", "--execute"]).cloned().flatten().or_else(|| rest.first().cloned());
        }
        Format::Claude => {
            if let Some(id) = flag_value(&flags, &["-r", "--resume"]) {
                inv.continuation = Some(id.clone());
            } else if has_flag(&flags, &["-c", "--continue"]) {
                inv.continuation = Some(None);
            }
            inv.prompt_arg = positionals.first().cloned();
        }
        Format::Codex => {
            let mut rest: &[String] = &positionals;
            if rest.first().is_some_and(|p| p == "exec" || p == "e") {
                rest = &rest[1..];
            }
            if rest.first().is_some_and(|p| p == "resume") {
                rest = &rest[1..];
                if has_flag(&flags, &["--last"]) {
                    inv.continuation = Some(None);
                } else {
                    inv.continuation = Some(rest.first().cloned());
                    rest = rest.get(1..).unwrap_or(&[]);
                }
            }
            inv.prompt_arg = rest.first().cloned();
        }
        Format::Gemini => {
            if let Some(id) = flag_value(&flags, &["-r", "--resume"]) {
                inv.continuation = Some(id.clone());
            }
            inv.prompt_arg = flag_value(&flags, &["-p", "--prompt"])
                .cloned()
                .flatten()
                .or_else(|| positionals.first().cloned());
        }
        Format::OpenCode => {
            let mut rest: &[String] = &positionals;
            if rest.first().is_some_and(|p| p == "run") {
                rest = &rest[1..];
            }
            if let Some(id) = flag_value(&flags, &["-s", "--session"]) {
                inv.continuation = Some(id.clone());
            } else if has_flag(&flags, &["-c", "--continue"]) {
                inv.continuation = Some(None);
            }
            if !rest.is_empty() {
                inv.prompt_arg = Some(rest.join(" "));
            }
        }
    }
    inv
}

/// The scenario's JSON text, from the file named by `FAKE_AGENT_SCENARIO` or
/// inline when the variable's value starts with `{`.
fn load_scenario() -> Result<String, String> {
    let spec = std::env::var("FAKE_AGENT_SCENARIO")
        .map_err(|_| "env FAKE_AGENT_SCENARIO is not set (path to a scenario JSON file)".to_owned())?;
    if spec.trim_start().starts_with('{') {
        return Ok(spec);
    }
    std::fs::read_to_string(&spec).map_err(|err| format!("cannot read scenario {spec}: {err}"))
}

/// The raw JSON text of one field of a step object.
fn raw_field<'a>(raw: &'a RawValue, key: &str) -> Result<&'a str, String> {
    let fields: HashMap<&str, &RawValue> =
        serde_json::from_str(raw.get()).map_err(|err| format!("bad step: {err}"))?;
    fields.get(key).map(|value| value.get()).ok_or_else(|| format!("step has no {key:?}"))
}

/// Removes the whitespace outside string literals, keeping key order and
/// number spelling exactly as written.
fn minify(json_text: &str) -> String {
    let mut out = String::with_capacity(json_text.len());
    let mut in_string = false;
    let mut escaped = false;
    for ch in json_text.chars() {
        if in_string {
            out.push(ch);
            if escaped {
                escaped = false;
            } else if ch == '\\' {
                escaped = true;
            } else if ch == '"' {
                in_string = false;
            }
        } else if ch == '"' {
            in_string = true;
            out.push(ch);
        } else if !ch.is_whitespace() {
            out.push(ch);
        }
    }
    out
}

/// `text` escaped for use inside a JSON string literal (without the quotes).
fn json_escape(text: &str) -> String {
    let quoted = Value::String(text.to_owned()).to_string();
    quoted[1..quoted.len() - 1].to_owned()
}

/// Reads stdin to EOF unless it is a terminal. When the prompt already came as
/// an argument, waits only briefly: a caller that leaves stdin open must not
/// hang the fake.
fn read_stdin(prompt_given: bool) -> String {
    if io::stdin().is_terminal() {
        return String::new();
    }
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new().name("stdin".into()).spawn(move || {
        let mut buf = Vec::new();
        let _ = io::stdin().lock().read_to_end(&mut buf);
        let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
    });
    if spawned.is_err() {
        return String::new();
    }
    if prompt_given {
        rx.recv_timeout(STDIN_GRACE).unwrap_or_default()
    } else {
        rx.recv().unwrap_or_default()
    }
}

/// The text of JSONL user messages (`{"type":"user","message":{"content":…}}`,
/// content a string or a list of text blocks), joined by newlines.
fn prompt_from_json_messages(stdin: &str) -> String {
    let mut texts = Vec::new();
    for line in stdin.lines() {
        let Ok(value) = serde_json::from_str::<Value>(line) else { continue };
        match &value["message"]["content"] {
            Value::String(text) => texts.push(text.clone()),
            Value::Array(blocks) => texts.extend(
                blocks.iter().filter_map(|b| b.get("text").and_then(Value::as_str)).map(str::to_owned),
            ),
            _ => {}
        }
    }
    texts.join("\n")
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    let filled = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).is_ok();
    if !filled {
        // Fall back to a time and pid mix; uniqueness is all that matters here.
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let mut state = nanos ^ (u128::from(std::process::id()) << 64);
        for byte in &mut bytes {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            *byte = (state >> 56) as u8;
        }
    }
    bytes
}

fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn format_uuid(bytes: [u8; 16]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

fn uuid_v4() -> String {
    let mut bytes = random_bytes::<16>();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    format_uuid(bytes)
}

fn uuid_v7() -> String {
    let mut bytes = random_bytes::<16>();
    let millis = now_millis().to_be_bytes();
    bytes[..6].copy_from_slice(&millis[2..8]);
    bytes[6] = (bytes[6] & 0x0f) | 0x70;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    format_uuid(bytes)
}

fn fresh_thread_id(format: Format) -> String {
    match format {
        Format::Amp => format!("T-{}", uuid_v7()),
        Format::Claude | Format::Gemini => uuid_v4(),
        Format::Codex => uuid_v7(),
        Format::OpenCode => {
            const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
            let time_part = format!("{:012x}", now_millis() & 0xffff_ffff_ffff);
            let random: String = random_bytes::<14>()
                .iter()
                .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
                .collect();
            format!("ses_{time_part}{random}")
        }
    }
}

/// The values substituted for `{{thread_id}}`, `{{cwd}}` and `{{prompt}}`.
struct Context {
    thread_id: String,
    cwd: PathBuf,
    prompt: String,
}

impl Context {
    fn substitute(&self, text: &str) -> String {
        if !text.contains("{{") {
            return text.to_owned();
        }
        text.replace("{{thread_id}}", &self.thread_id)
            .replace("{{cwd}}", &self.cwd.to_string_lossy())
            .replace("{{prompt}}", &self.prompt)
    }

    /// Substitutes placeholders inside the string literals of JSON text, each
    /// value escaped for a JSON string so the text stays valid JSON.
    fn substitute_json_text(&self, json_text: &str) -> String {
        if !json_text.contains("{{") {
            return json_text.to_owned();
        }
        json_text
            .replace("{{thread_id}}", &json_escape(&self.thread_id))
            .replace("{{cwd}}", &json_escape(&self.cwd.to_string_lossy()))
            .replace("{{prompt}}", &json_escape(&self.prompt))
    }

    fn resolve(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        if path.is_absolute() { path.to_path_buf() } else { self.cwd.join(path) }
    }
}

fn append_log(args: &[String], stdin: &str, ctx: &Context, inv: &Invocation) {
    let Some(log_path) = std::env::var_os("FAKE_AGENT_LOG") else { return };
    let program = std::env::args().next().unwrap_or_default();
    let record = json!({
        "argv": args,
        "program": program,
        "stdin": stdin,
        "cwd": ctx.cwd.to_string_lossy(),
        "env_has_amp_key": std::env::var("AMP_API_KEY").is_ok_and(|key| !key.is_empty()),
        "prompt": ctx.prompt,
        "thread_id": ctx.thread_id,
        "continuation": inv.continuation.is_some(),
        "pid": std::process::id(),
    });
    // One write of one line, so concurrent invocations do not interleave.
    let line = format!("{record}\n");
    let result = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(err) = result {
        eprintln!("fake-agent: cannot append to FAKE_AGENT_LOG {}: {err}", PathBuf::from(log_path).display());
    }
}

/// What a step asks the run to do next.
enum Flow {
    Continue,
    Exit(i32),
}

fn run() -> Result<i32, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() == 1 && matches!(args[0].as_str(), "--version" | "-v" | "-V") {
        println!("0.0.0-fake (fake-agent)");
        return Ok(0);
    }
    let scenario_text = load_scenario()?;
    let raw_scenario: HashMap<String, Box<RawValue>> = serde_json::from_str(&scenario_text)
        .map_err(|err| format!("scenario must be a JSON object: {err}"))?;
    let scenario: Value =
        serde_json::from_str(&scenario_text).map_err(|err| format!("scenario is not valid JSON: {err}"))?;
    let format = Format::parse(scenario.get("format").and_then(Value::as_str).unwrap_or(""))?;
    let inv = parse_invocation(format, &args);
    let prompt_from_arg = inv.prompt_arg.clone().filter(|p| p != "-");
    let stdin = read_stdin(prompt_from_arg.is_some());
    let json_input = args.iter().any(|a| a == "--stream-json-input")
        || args.windows(2).any(|w| w[0] == "--input-format" && w[1] == "stream-json")
        || args.iter().any(|a| a == "--input-format=stream-json");
    let prompt = match prompt_from_arg {
        Some(prompt) => prompt,
        None if json_input => prompt_from_json_messages(&stdin),
        None => stdin.trim_end_matches(['\r', '\n']).to_owned(),
    };

    let thread_id = match &inv.continuation {
        Some(Some(id)) if id != "latest" && id.parse::<u64>().is_err() => id.clone(),
        _ => fresh_thread_id(format),
    };
    let cwd = std::env::current_dir().map_err(|err| format!("no current directory: {err}"))?;
    let ctx = Context { thread_id, cwd, prompt };
    append_log(&args, &stdin, &ctx, &inv);

    let steps_key = if inv.continuation.is_some() && scenario.get("continue_steps").is_some() {
        "continue_steps"
    } else {
        "steps"
    };
    let steps: Vec<Box<RawValue>> = match raw_scenario.get(steps_key) {
        Some(raw) => {
            serde_json::from_str(raw.get()).map_err(|err| format!("{steps_key} must be an array: {err}"))?
        }
        None => Vec::new(),
    };
    let mut out = io::stdout().lock();
    for step in &steps {
        match run_step(step, format, &ctx, &mut out) {
            Ok(Flow::Continue) => {}
            Ok(Flow::Exit(code)) => {
                let _ = out.flush();
                return Ok(code);
            }
            Err(message) => {
                let _ = out.flush();
                eprintln!("fake-agent: {message}");
                return Ok(1);
            }
        }
    }
    let _ = out.flush();
    Ok(0)
}

fn write_line(out: &mut impl Write, line: &str) -> Result<(), String> {
    out.write_all(line.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .map_err(|err| format!("stdout: {err}"))
}

fn as_i32(value: &Value, default: i32) -> i32 {
    value.as_i64().and_then(|n| i32::try_from(n).ok()).unwrap_or(default)
}

fn run_step(raw: &RawValue, format: Format, ctx: &Context, out: &mut impl Write) -> Result<Flow, String> {
    let step: Value = serde_json::from_str(raw.get()).map_err(|err| format!("bad step: {err}"))?;
    let Some(map) = step.as_object() else { return Err(format!("step is not an object: {step}")) };
    if map.contains_key("emit") {
        write_line(out, &ctx.substitute_json_text(&minify(raw_field(raw, "emit")?)))?;
    } else if let Some(text) = map.get("emit_raw") {
        write_line(out, &ctx.substitute(text.as_str().unwrap_or_default()))?;
    } else if let Some(size) = map.get("emit_big") {
        let size = size.as_u64().ok_or("emit_big wants a byte count")?;
        emit_big(out, format, ctx, size)?;
    } else if let Some(spec) = map.get("write_file") {
        write_file(spec, ctx)?;
    } else if let Some(spec) = map.get("edit_file") {
        edit_file(spec, ctx)?;
    } else if let Some(ms) = map.get("sleep_ms") {
        std::thread::sleep(Duration::from_millis(ms.as_u64().unwrap_or(0)));
    } else if let Some(text) = map.get("stderr") {
        eprintln!("{}", ctx.substitute(text.as_str().unwrap_or_default()));
    } else if let Some(code) = map.get("exit") {
        return Ok(Flow::Exit(as_i32(code, 1)));
    } else if map.get("hang").is_some_and(|v| v.as_bool() != Some(false)) {
        let _ = out.flush();
        let with_child = map.get("with_child").and_then(Value::as_bool).unwrap_or(false);
        hang(with_child);
    } else if let Some(var) = map.get("require_env") {
        let var = var.as_str().unwrap_or_default();
        if std::env::var(var).is_ok_and(|value| !value.is_empty()) {
            return Ok(Flow::Continue);
        }
        if let Some(message) = map.get("message").and_then(Value::as_str) {
            let message = ctx.substitute(message);
            if map.get("message_stream").and_then(Value::as_str) == Some("stderr") {
                eprintln!("{message}");
            } else {
                write_line(out, &message)?;
            }
        }
        if map.get("else_hang").and_then(Value::as_bool).unwrap_or(false) {
            hang(false);
        }
        return Ok(Flow::Exit(map.get("else_exit").map_or(1, |code| as_i32(code, 1))));
    } else {
        return Err(format!("unknown step {step}"));
    }
    Ok(Flow::Continue)
}

fn hang(with_child: bool) -> ! {
    if with_child {
        match Command::new("sleep").arg("1000").stdin(Stdio::null()).spawn() {
            Ok(child) => eprintln!("fake-agent: hanging; child pid {}", child.id()),
            Err(err) => eprintln!("fake-agent: could not spawn child sleep: {err}"),
        }
    }
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn file_spec<'a>(spec: &'a Value, step: &str) -> Result<&'a Map<String, Value>, String> {
    spec.as_object().ok_or_else(|| format!("{step} wants an object"))
}

fn string_field(map: &Map<String, Value>, key: &str, step: &str, ctx: &Context) -> Result<String, String> {
    map.get(key)
        .and_then(Value::as_str)
        .map(|text| ctx.substitute(text))
        .ok_or_else(|| format!("{step} needs {key:?}"))
}

fn write_file(spec: &Value, ctx: &Context) -> Result<(), String> {
    let map = file_spec(spec, "write_file")?;
    let path = ctx.resolve(&string_field(map, "path", "write_file", ctx)?);
    let content = string_field(map, "content", "write_file", ctx)?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|err| format!("write_file: mkdir {}: {err}", parent.display()))?;
    }
    std::fs::write(&path, content).map_err(|err| format!("write_file {}: {err}", path.display()))
}

fn edit_file(spec: &Value, ctx: &Context) -> Result<(), String> {
    let map = file_spec(spec, "edit_file")?;
    let path = ctx.resolve(&string_field(map, "path", "edit_file", ctx)?);
    let old = string_field(map, "old", "edit_file", ctx)?;
    let new = string_field(map, "new", "edit_file", ctx)?;
    let text =
        std::fs::read_to_string(&path).map_err(|err| format!("edit_file {}: {err}", path.display()))?;
    if !text.contains(&old) {
        return Err(format!("edit_file {}: text to replace not found: {old:?}", path.display()));
    }
    let all = map.get("all").and_then(Value::as_bool).unwrap_or(false);
    let edited = if all { text.replace(&old, &new) } else { text.replacen(&old, &new, 1) };
    std::fs::write(&path, edited).map_err(|err| format!("edit_file {}: {err}", path.display()))
}

/// Marker replaced by the padding in the big line's template.
const BIG_MARKER: &str = "@@FAKE_AGENT_BIG_TEXT@@";

/// A one-line event of the vendor's format whose text is `BIG_MARKER`.
fn big_template(format: Format, ctx: &Context) -> Value {
    let tid = ctx.thread_id.as_str();
    match format {
        Format::Amp => json!({
            "type": "assistant",
            "message": {"type": "message", "role": "assistant", "content": [{"type": "text", "text": BIG_MARKER}], "stop_reason": null},
            "parent_tool_use_id": null, "session_id": tid,
        }),
        Format::Claude => json!({
            "type": "assistant",
            "message": {"id": "msg_fakebig", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
                        "content": [{"type": "text", "text": BIG_MARKER}], "stop_reason": null, "stop_sequence": null,
                        "usage": {"input_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 1}},
            "parent_tool_use_id": null, "session_id": tid, "uuid": uuid_v4(),
        }),
        Format::Codex => {
            json!({"type": "item.completed", "item": {"id": "item_big", "type": "agent_message", "text": BIG_MARKER}})
        }
        Format::Gemini => json!({
            "type": "message", "timestamp": "2025-10-14T09:12:20.771Z", "role": "assistant", "content": BIG_MARKER, "delta": true,
        }),
        Format::OpenCode => json!({
            "type": "text", "timestamp": now_millis(), "sessionID": tid,
            "part": {"id": "prt_big", "sessionID": tid, "messageID": "msg_big", "type": "text", "text": BIG_MARKER},
        }),
    }
}

/// Streams one line of `size` bytes (not counting the newline): the vendor's
/// text event padded with `x`, written in chunks so it is never held whole.
fn emit_big(out: &mut impl Write, format: Format, ctx: &Context, size: u64) -> Result<(), String> {
    let template = big_template(format, ctx).to_string();
    let (prefix, suffix) = template.split_once(BIG_MARKER).ok_or("big template lost its marker")?;
    let overhead = (prefix.len() + suffix.len()) as u64;
    let mut remaining = size.saturating_sub(overhead);
    let chunk = [b'x'; 64 * 1024];
    let io_err = |err: io::Error| format!("stdout: {err}");
    out.write_all(prefix.as_bytes()).map_err(io_err)?;
    while remaining > 0 {
        let n = remaining.min(chunk.len() as u64) as usize;
        out.write_all(&chunk[..n]).map_err(io_err)?;
        remaining -= n as u64;
    }
    out.write_all(suffix.as_bytes()).map_err(io_err)?;
    out.write_all(b"\n").map_err(io_err)?;
    out.flush().map_err(io_err)
}

//! A scripted model server on 127.0.0.1 that real agent CLIs can talk to offline.
//!
//! It speaks enough of two wire protocols:
//! - the Anthropic Messages API (`POST …/messages`, streaming SSE or plain JSON),
//!   which Claude Code uses when `ANTHROPIC_BASE_URL` points here;
//! - the OpenAI Responses API (`POST …/responses`, SSE), which Codex uses
//!   through a custom `model_providers` entry with `wire_api = "responses"`.
//!
//! What the "model" answers is a [`Script`]: a list of [`Turn`]s. Which turn a
//! request gets is decided by the conversation it carries, not by arrival
//! order: a request whose history already holds *k* model replies gets turn
//! *k*. Retries of the same request therefore get the same answer, and a
//! resumed session continues where the script left off. Requests that offer no
//! tools (title generation and other side calls) get a short fixed reply and do
//! not consume the script.
//!
//! Every request is recorded ([`ModelServer::requests`]) so tests can check,
//! for example, that a tool result came back to the model.

use std::io::{self, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Token counts a scripted turn reports. One set of numbers is mapped onto
/// both APIs:
/// - Anthropic: `input_tokens`, `output_tokens`, `cache_read_input_tokens`,
///   `cache_creation_input_tokens` as they are.
/// - OpenAI Responses: `input_tokens` is `input_tokens + cache_read_input_tokens`
///   (OpenAI counts cached tokens inside input), `input_tokens_details.cached_tokens`
///   is `cache_read_input_tokens`, `output_tokens` and
///   `output_tokens_details.reasoning_tokens` as they are, `total_tokens` the sum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Usage {
    /// Uncached input tokens.
    pub input_tokens: u64,
    /// Output tokens (for OpenAI: including reasoning tokens).
    pub output_tokens: u64,
    /// Input tokens read from the prompt cache.
    pub cache_read_input_tokens: u64,
    /// Input tokens written to the prompt cache (Anthropic only).
    pub cache_creation_input_tokens: u64,
    /// Reasoning tokens, part of `output_tokens` (OpenAI only).
    pub reasoning_tokens: u64,
}

impl Usage {
    /// Usage with only input and output tokens.
    pub fn new(input_tokens: u64, output_tokens: u64) -> Self {
        Usage { input_tokens, output_tokens, ..Usage::default() }
    }

    /// The Anthropic `usage` object for these numbers.
    pub fn anthropic_json(&self) -> Value {
        json!({
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "output_tokens": self.output_tokens,
            "service_tier": "standard",
        })
    }

    /// The OpenAI Responses `usage` object for these numbers.
    pub fn openai_json(&self) -> Value {
        let input = self.input_tokens + self.cache_read_input_tokens;
        json!({
            "input_tokens": input,
            "input_tokens_details": {"cached_tokens": self.cache_read_input_tokens},
            "output_tokens": self.output_tokens,
            "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
            "total_tokens": input + self.output_tokens,
        })
    }
}

/// A structured tool call (Anthropic `tool_use`, OpenAI `function_call`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Tool name as the agent offers it, e.g. `Write` (Claude Code) or `exec_command` (Codex).
    pub name: String,
    /// Tool input object; sent as `input` (Anthropic) or as JSON text in `arguments` (OpenAI).
    pub input: Value,
}

/// A freeform tool call (OpenAI `custom_tool_call`), e.g. Codex's `apply_patch`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomToolCall {
    /// Tool name, e.g. `apply_patch`.
    pub name: String,
    /// Raw tool input text, e.g. a `*** Begin Patch` … `*** End Patch` block.
    pub input: String,
}

/// An HTTP error answer instead of a model reply (to test retries and failures).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpError {
    /// Status code, e.g. 429 or 500.
    pub status: u16,
    /// JSON body to send.
    #[serde(default)]
    pub body: Value,
}

/// One scripted model reply.
///
/// JSON form: `{"text": "...", "tool_call": {"name": "Write", "input": {...}},
/// "custom_tool_call": {"name": "apply_patch", "input": "..."}, "usage": {...},
/// "delay_ms": 0, "error": {"status": 500, "body": {...}}}`; every field is
/// optional. A turn with a tool call ends with stop reason `tool_use`, one
/// without ends the conversation (`end_turn`). Text comes before the tool call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Turn {
    /// Assistant text.
    pub text: Option<String>,
    /// A structured tool call.
    pub tool_call: Option<ToolCall>,
    /// A freeform tool call (OpenAI only; an Anthropic request gets it as a
    /// `tool_use` with input `{"input": <text>}`).
    pub custom_tool_call: Option<CustomToolCall>,
    /// Token usage reported for this reply.
    pub usage: Usage,
    /// Wait this long before answering.
    pub delay_ms: u64,
    /// Answer with this HTTP error instead of a reply.
    pub error: Option<HttpError>,
}

impl Turn {
    /// A final text reply.
    pub fn text(text: impl Into<String>) -> Self {
        Turn { text: Some(text.into()), ..Turn::default() }
    }

    /// A structured tool call.
    pub fn tool_call(name: impl Into<String>, input: Value) -> Self {
        Turn { tool_call: Some(ToolCall { name: name.into(), input }), ..Turn::default() }
    }

    /// A freeform tool call such as Codex's `apply_patch`.
    pub fn custom_tool_call(name: impl Into<String>, input: impl Into<String>) -> Self {
        Turn {
            custom_tool_call: Some(CustomToolCall { name: name.into(), input: input.into() }),
            ..Turn::default()
        }
    }

    /// An HTTP error answer.
    pub fn http_error(status: u16, body: Value) -> Self {
        Turn { error: Some(HttpError { status, body }), ..Turn::default() }
    }

    /// Sets the usage this turn reports.
    pub fn with_usage(mut self, usage: Usage) -> Self {
        self.usage = usage;
        self
    }

    /// Sets text to send before the tool call.
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    /// Sets a delay before the answer.
    pub fn with_delay_ms(mut self, delay_ms: u64) -> Self {
        self.delay_ms = delay_ms;
        self
    }

    fn has_tool_call(&self) -> bool {
        self.tool_call.is_some() || self.custom_tool_call.is_some()
    }
}

/// What the scripted model answers, turn by turn.
///
/// JSON form: `{"turns": [Turn, ...], "model": "optional model name to report"}`.
/// A request past the end of the script gets a text reply `"(script exhausted)"`
/// with zero usage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Script {
    /// Replies in conversation order.
    pub turns: Vec<Turn>,
    /// Model name to report; defaults to the model the request asked for.
    pub model: Option<String>,
}

impl Script {
    /// A script with these turns.
    pub fn new(turns: Vec<Turn>) -> Self {
        Script { turns, model: None }
    }

    /// Reads a script from a JSON file.
    pub fn from_file(path: &Path) -> io::Result<Self> {
        let text = std::fs::read_to_string(path)?;
        serde_json::from_str(&text).map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))
    }

    /// The sum of the usage of all turns (what an agent should report after
    /// running the whole script once).
    pub fn total_usage(&self) -> Usage {
        self.turns.iter().fold(Usage::default(), |acc, turn| Usage {
            input_tokens: acc.input_tokens + turn.usage.input_tokens,
            output_tokens: acc.output_tokens + turn.usage.output_tokens,
            cache_read_input_tokens: acc.cache_read_input_tokens + turn.usage.cache_read_input_tokens,
            cache_creation_input_tokens: acc.cache_creation_input_tokens
                + turn.usage.cache_creation_input_tokens,
            reasoning_tokens: acc.reasoning_tokens + turn.usage.reasoning_tokens,
        })
    }
}

/// Which protocol a recorded request was answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKind {
    /// Anthropic Messages API.
    Anthropic,
    /// OpenAI Responses API.
    OpenAiResponses,
    /// Anything else (probes, model lists, unknown endpoints).
    Other,
}

/// One request the server received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// Request target including any query string.
    pub path: String,
    /// Headers in arrival order, names lowercased.
    pub headers: Vec<(String, String)>,
    /// Body as text (lossy UTF-8).
    pub body: String,
    /// Protocol it was answered with.
    pub api: ApiKind,
    /// Index of the script turn served, if a scripted reply was sent.
    pub turn: Option<usize>,
}

impl RecordedRequest {
    /// The body parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }

    /// First header value with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(key, _)| *key == name).map(|(_, value)| value.as_str())
    }

    /// Names of the tools the request offered (`tools[].name`; hosted tools
    /// without a name appear as their `type`).
    pub fn tool_names(&self) -> Vec<String> {
        let Some(body) = self.json() else { return Vec::new() };
        let Some(tools) = body.get("tools").and_then(Value::as_array) else { return Vec::new() };
        tools
            .iter()
            .filter_map(|tool| tool.get("name").or_else(|| tool.get("type")).and_then(Value::as_str))
            .map(str::to_owned)
            .collect()
    }
}

struct Shared {
    script: Script,
    requests: Vec<RecordedRequest>,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    match shared.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// A running scripted model server. Stops when dropped.
pub struct ModelServer {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    accept_thread: Option<JoinHandle<()>>,
}

impl ModelServer {
    /// Starts a server on a random port of 127.0.0.1 following `script`.
    pub fn start(script: Script) -> io::Result<ModelServer> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Mutex::new(Shared { script, requests: Vec::new() }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread_shared = Arc::clone(&shared);
        let thread_stop = Arc::clone(&stop);
        let accept_thread = std::thread::Builder::new()
            .name("model-server".into())
            .spawn(move || accept_loop(&listener, &thread_shared, &thread_stop))?;
        Ok(ModelServer { addr, shared, stop, accept_thread: Some(accept_thread) })
    }

    /// Starts a server following the script in a JSON file.
    pub fn start_from_file(path: &Path) -> io::Result<ModelServer> {
        Self::start(Script::from_file(path)?)
    }

    /// `http://127.0.0.1:<port>`: the value for `ANTHROPIC_BASE_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:<port>/v1`: the value for a Codex provider's `base_url`.
    pub fn openai_base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Replaces the script (already recorded requests are kept).
    pub fn set_script(&self, script: Script) {
        lock(&self.shared).script = script;
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared).requests.clone()
    }

    /// The requests that were answered from the script.
    pub fn scripted_requests(&self) -> Vec<RecordedRequest> {
        self.requests().into_iter().filter(|req| req.turn.is_some()).collect()
    }
}

impl Drop for ModelServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept() so the thread sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(handle) = self.accept_thread.take() {
            let _ = handle.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Mutex<Shared>>, stop: &Arc<AtomicBool>) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = conn else { continue };
        let shared = Arc::clone(shared);
        let stop = Arc::clone(stop);
        // Connection threads are detached: a client holding a socket open must
        // not keep Drop from returning.
        let _ = std::thread::Builder::new().name("model-server-conn".into()).spawn(move || {
            let _ = serve_connection(stream, &shared, &stop);
        });
    }
}

use crate::http::{HttpRequest as Request, read_request};

impl Request {
    fn route(&self) -> &str {
        self.target.split('?').next().unwrap_or("").trim_end_matches('/')
    }
}

fn serve_connection(stream: TcpStream, shared: &Mutex<Shared>, stop: &AtomicBool) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    // One request per connection: every answer carries `Connection: close`,
    // which also delimits the SSE bodies.
    if let Some(request) = read_request(&mut reader)?
        && !stop.load(Ordering::SeqCst)
    {
        handle(&request, shared, &mut writer)?;
    }
    writer.flush()?;
    let _ = writer.shutdown(Shutdown::Both);
    Ok(())
}

fn handle(request: &Request, shared: &Mutex<Shared>, out: &mut impl Write) -> io::Result<()> {
    let route = request.route().to_owned();
    let body_text = String::from_utf8_lossy(&request.body).into_owned();
    let body_json: Option<Value> = serde_json::from_str(&body_text).ok();
    let is_post = request.method == "POST";

    let api = if is_post && route.ends_with("/messages") {
        ApiKind::Anthropic
    } else if is_post && route.ends_with("/responses") {
        ApiKind::OpenAiResponses
    } else {
        ApiKind::Other
    };

    // Decide the reply and record the request before answering, so a test that
    // sees the agent exit also sees every request.
    let (turn_index, turn, model) = {
        let mut guard = lock(shared);
        let body = body_json.clone().unwrap_or(Value::Null);
        let requested_model = body.get("model").and_then(Value::as_str).unwrap_or("mock-model").to_owned();
        let model = guard.script.model.clone().unwrap_or(requested_model);
        let (turn_index, turn) = match api {
            ApiKind::Anthropic | ApiKind::OpenAiResponses if offers_tools(&body) => {
                let index = conversation_position(api, &body);
                let turn = guard
                    .script
                    .turns
                    .get(index)
                    .cloned()
                    .unwrap_or_else(|| Turn::text("(script exhausted)"));
                (Some(index), Some(turn))
            }
            ApiKind::Anthropic | ApiKind::OpenAiResponses => (None, Some(Turn::text("OK"))),
            ApiKind::Other => (None, None),
        };
        guard.requests.push(RecordedRequest {
            method: request.method.clone(),
            path: request.target.clone(),
            headers: request.headers.clone(),
            body: body_text,
            api,
            turn: turn_index,
        });
        (turn_index, turn, model)
    };

    let Some(turn) = turn else {
        return answer_other(request, &route, out);
    };
    if turn.delay_ms > 0 {
        std::thread::sleep(Duration::from_millis(turn.delay_ms));
    }
    if let Some(error) = &turn.error {
        return write_json(out, error.status, &error.body);
    }
    let streaming =
        body_json.as_ref().and_then(|b| b.get("stream")).and_then(Value::as_bool).unwrap_or(false);
    let salt = turn_index.unwrap_or(9999);
    match api {
        ApiKind::Anthropic if streaming => anthropic_stream(out, &turn, &model, salt),
        ApiKind::Anthropic => write_json(out, 200, &anthropic_message(&turn, &model, salt)),
        ApiKind::OpenAiResponses if streaming => responses_stream(out, &turn, &model, salt),
        _ => write_json(out, 200, &responses_object(&turn, &model, salt)),
    }
}

fn answer_other(request: &Request, route: &str, out: &mut impl Write) -> io::Result<()> {
    if route.ends_with("/count_tokens") {
        return write_json(out, 200, &json!({"input_tokens": 1}));
    }
    if request.method == "GET" && route.ends_with("/models") {
        return write_json(out, 200, &json!({"object": "list", "data": [], "models": []}));
    }
    if request.method == "GET" || request.method == "HEAD" {
        return write_json(out, 200, &json!({}));
    }
    write_json(
        out,
        404,
        &json!({"type": "error", "error": {"type": "not_found_error", "message": format!("no such endpoint: {route}")}}),
    )
}

/// Whether a model request offers tools: the agent's main loop always does,
/// side calls (titles, summaries) usually do not.
fn offers_tools(body: &Value) -> bool {
    body.get("tools").and_then(Value::as_array).is_some_and(|tools| !tools.is_empty())
}

/// How many model replies the request's history already holds.
fn conversation_position(api: ApiKind, body: &Value) -> usize {
    match api {
        ApiKind::Anthropic => body
            .get("messages")
            .and_then(Value::as_array)
            .map(|messages| {
                messages.iter().filter(|m| m.get("role").and_then(Value::as_str) == Some("assistant")).count()
            })
            .unwrap_or(0),
        ApiKind::OpenAiResponses => {
            body.get("input").and_then(Value::as_array).map(|items| count_model_runs(items)).unwrap_or(0)
        }
        ApiKind::Other => 0,
    }
}

/// Counts runs of consecutive model-produced items: one scripted turn yields
/// one run (an optional assistant message followed by an optional tool call).
/// Reasoning items neither start nor break a run.
fn count_model_runs(items: &[Value]) -> usize {
    let mut runs = 0;
    let mut in_run = false;
    for item in items {
        if item.get("type").and_then(Value::as_str) == Some("reasoning") {
            continue;
        }
        let model_item = is_model_output_item(item);
        if model_item && !in_run {
            runs += 1;
        }
        in_run = model_item;
    }
    runs
}

/// A Responses input item that the model produced.
fn is_model_output_item(item: &Value) -> bool {
    match item.get("type").and_then(Value::as_str) {
        Some("function_call" | "custom_tool_call" | "local_shell_call") => true,
        Some("message") | None => item.get("role").and_then(Value::as_str) == Some("assistant"),
        _ => false,
    }
}

fn write_json(out: &mut impl Write, status: u16, body: &Value) -> io::Result<()> {
    let text = body.to_string();
    write!(
        out,
        "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nrequest-id: req_mock\r\nconnection: close\r\n\r\n{text}",
        reason(status),
        text.len()
    )
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        529 => "Overloaded",
        _ => "Status",
    }
}

fn start_sse(out: &mut impl Write) -> io::Result<()> {
    write!(
        out,
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nrequest-id: req_mock\r\nconnection: close\r\n\r\n"
    )?;
    out.flush()
}

fn sse(out: &mut impl Write, event: &str, data: &Value) -> io::Result<()> {
    write!(out, "event: {event}\ndata: {data}\n\n")?;
    out.flush()
}

static ID_COUNTER: AtomicU64 = AtomicU64::new(1);

fn fresh_id(prefix: &str, salt: usize) -> String {
    let n = ID_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}_mock{salt:04}{n:08}")
}

/// Splits text into a few pieces so deltas really are streamed in parts.
fn pieces(text: &str, parts: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return Vec::new();
    }
    let size = chars.len().div_ceil(parts.max(1));
    chars.chunks(size).map(|chunk| chunk.iter().collect()).collect()
}

/// The tool call of a turn as Anthropic `(name, input)`.
fn anthropic_tool(turn: &Turn) -> Option<(String, Value)> {
    if let Some(call) = &turn.tool_call {
        return Some((call.name.clone(), call.input.clone()));
    }
    turn.custom_tool_call.as_ref().map(|call| (call.name.clone(), json!({"input": call.input})))
}

fn anthropic_message(turn: &Turn, model: &str, salt: usize) -> Value {
    let mut content = Vec::new();
    if let Some(text) = &turn.text {
        content.push(json!({"type": "text", "text": text}));
    }
    if let Some((name, input)) = anthropic_tool(turn) {
        content
            .push(json!({"type": "tool_use", "id": fresh_id("toolu", salt), "name": name, "input": input}));
    }
    json!({
        "id": fresh_id("msg", salt),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": if turn.has_tool_call() { "tool_use" } else { "end_turn" },
        "stop_sequence": null,
        "usage": turn.usage.anthropic_json(),
    })
}

fn anthropic_stream(out: &mut impl Write, turn: &Turn, model: &str, salt: usize) -> io::Result<()> {
    start_sse(out)?;
    let mut start_usage = turn.usage.anthropic_json();
    start_usage["output_tokens"] = json!(0);
    sse(
        out,
        "message_start",
        &json!({"type": "message_start", "message": {
            "id": fresh_id("msg", salt), "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": null, "stop_sequence": null, "usage": start_usage,
        }}),
    )?;
    let mut index = 0;
    if let Some(text) = &turn.text {
        sse(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}),
        )?;
        for piece in pieces(text, 3) {
            sse(
                out,
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}}),
            )?;
        }
        sse(out, "content_block_stop", &json!({"type": "content_block_stop", "index": index}))?;
        index += 1;
    }
    if let Some((name, input)) = anthropic_tool(turn) {
        sse(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": {
                "type": "tool_use", "id": fresh_id("toolu", salt), "name": name, "input": {},
            }}),
        )?;
        for piece in pieces(&input.to_string(), 3) {
            sse(
                out,
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": piece}}),
            )?;
        }
        sse(out, "content_block_stop", &json!({"type": "content_block_stop", "index": index}))?;
    }
    sse(
        out,
        "message_delta",
        &json!({
            "type": "message_delta",
            "delta": {"stop_reason": if turn.has_tool_call() { "tool_use" } else { "end_turn" }, "stop_sequence": null},
            "usage": turn.usage.anthropic_json(),
        }),
    )?;
    sse(out, "message_stop", &json!({"type": "message_stop"}))
}

/// The output item of a turn for the Responses API (one per turn).
fn responses_item(turn: &Turn, salt: usize, done: bool) -> Value {
    let status = if done { "completed" } else { "in_progress" };
    if let Some(call) = &turn.custom_tool_call {
        return json!({
            "type": "custom_tool_call", "id": fresh_id("ctc", salt), "status": status,
            "call_id": fresh_id("call", salt), "name": call.name,
            "input": if done { call.input.as_str() } else { "" },
        });
    }
    if let Some(call) = &turn.tool_call {
        return json!({
            "type": "function_call", "id": fresh_id("fc", salt), "status": status,
            "call_id": fresh_id("call", salt), "name": call.name,
            "arguments": if done { call.input.to_string() } else { String::new() },
        });
    }
    let content = if done {
        json!([{"type": "output_text", "text": turn.text.clone().unwrap_or_default(), "annotations": []}])
    } else {
        json!([])
    };
    json!({"type": "message", "id": fresh_id("msg", salt), "status": status, "role": "assistant", "content": content})
}

fn response_envelope(id: &str, model: &str, status: &str, output: Value, usage: Option<Value>) -> Value {
    json!({
        "id": id, "object": "response", "created_at": 1_700_000_000u64, "status": status,
        "model": model, "output": output, "usage": usage, "error": null, "incomplete_details": null,
    })
}

fn responses_object(turn: &Turn, model: &str, salt: usize) -> Value {
    let item = responses_item(turn, salt, true);
    response_envelope(
        &fresh_id("resp", salt),
        model,
        "completed",
        json!([item]),
        Some(turn.usage.openai_json()),
    )
}

fn responses_stream(out: &mut impl Write, turn: &Turn, model: &str, salt: usize) -> io::Result<()> {
    start_sse(out)?;
    let response_id = fresh_id("resp", salt);
    let mut seq = 0u64;
    let mut event = |out: &mut dyn Write, name: &str, mut data: Value| -> io::Result<()> {
        data["type"] = json!(name);
        data["sequence_number"] = json!(seq);
        seq += 1;
        write!(out, "event: {name}\ndata: {data}\n\n")?;
        out.flush()
    };
    let envelope = response_envelope(&response_id, model, "in_progress", json!([]), None);
    event(out, "response.created", json!({"response": envelope.clone()}))?;
    event(out, "response.in_progress", json!({"response": envelope}))?;

    // A text-plus-tool turn sends the text as its own message item first.
    let mut output = Vec::new();
    let mut items = Vec::new();
    if turn.has_tool_call() {
        if let Some(text) = &turn.text {
            items.push(Turn::text(text.clone()));
        }
        items.push(Turn { text: None, ..turn.clone() });
    } else {
        items.push(turn.clone());
    }
    for (output_index, item_turn) in items.iter().enumerate() {
        let mut added = responses_item(item_turn, salt, false);
        let mut done = responses_item(item_turn, salt, true);
        // Keep the ids of the added and done forms equal.
        done["id"] = added["id"].clone();
        if let Some(call_id) = added.get("call_id").cloned() {
            done["call_id"] = call_id;
        } else {
            added.as_object_mut().map(|obj| obj.remove("call_id"));
        }
        let item_id = added["id"].clone();
        event(out, "response.output_item.added", json!({"output_index": output_index, "item": added}))?;
        if item_turn.has_tool_call() {
            if let Some(call) = &item_turn.tool_call {
                let args = call.input.to_string();
                for piece in pieces(&args, 2) {
                    event(
                        out,
                        "response.function_call_arguments.delta",
                        json!({"item_id": item_id, "output_index": output_index, "delta": piece}),
                    )?;
                }
                event(
                    out,
                    "response.function_call_arguments.done",
                    json!({"item_id": item_id, "output_index": output_index, "arguments": args}),
                )?;
            }
        } else {
            let text = item_turn.text.clone().unwrap_or_default();
            event(
                out,
                "response.content_part.added",
                json!({"item_id": item_id, "output_index": output_index, "content_index": 0,
                       "part": {"type": "output_text", "text": "", "annotations": []}}),
            )?;
            for piece in pieces(&text, 3) {
                event(
                    out,
                    "response.output_text.delta",
                    json!({"item_id": item_id, "output_index": output_index, "content_index": 0, "delta": piece}),
                )?;
            }
            event(
                out,
                "response.output_text.done",
                json!({"item_id": item_id, "output_index": output_index, "content_index": 0, "text": text}),
            )?;
            event(
                out,
                "response.content_part.done",
                json!({"item_id": item_id, "output_index": output_index, "content_index": 0,
                       "part": {"type": "output_text", "text": text, "annotations": []}}),
            )?;
        }
        event(out, "response.output_item.done", json!({"output_index": output_index, "item": done.clone()}))?;
        output.push(done);
    }
    let completed = response_envelope(
        &response_id,
        model,
        "completed",
        Value::Array(output),
        Some(turn.usage.openai_json()),
    );
    event(out, "response.completed", json!({"response": completed}))
}

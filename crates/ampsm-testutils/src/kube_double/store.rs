//! The in-memory object store of the Kubernetes API double: Jobs, Pods and
//! Secrets as JSON, one resource-version counter, the event log that watches
//! read, and the helpers every part shares (label selectors, timestamps,
//! index ranges, `Status` errors).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::ApiRequest;

/// How many watch events are kept; a watch from an older resourceVersion gets
/// `410 Gone` ("too old resource version"), as from a real API server.
const EVENT_LOG_LIMIT: usize = 20_000;

/// `(namespace, name)`.
pub(super) type Key = (String, String);

/// The kinds the double stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Job,
    Pod,
    Secret,
}

impl Kind {
    pub fn api_version(self) -> &'static str {
        match self {
            Kind::Job => "batch/v1",
            Kind::Pod | Kind::Secret => "v1",
        }
    }

    pub fn kind(self) -> &'static str {
        match self {
            Kind::Job => "Job",
            Kind::Pod => "Pod",
            Kind::Secret => "Secret",
        }
    }

    /// Plural resource name, as in URLs and `Status.details.kind`.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Job => "jobs",
            Kind::Pod => "pods",
            Kind::Secret => "secrets",
        }
    }

    /// API group ("" for the core group).
    pub fn group(self) -> &'static str {
        match self {
            Kind::Job => "batch",
            Kind::Pod | Kind::Secret => "",
        }
    }

    /// `jobs.batch` / `pods`, as in error messages.
    pub fn qualified(self) -> String {
        if self.group().is_empty() {
            self.plural().to_owned()
        } else {
            format!("{}.{}", self.plural(), self.group())
        }
    }
}

/// One change, as a watch reports it.
pub(super) struct Event {
    pub rv: u64,
    pub kind: Kind,
    pub namespace: String,
    pub kind_of_change: &'static str,
    pub object: Value,
}

/// The local process behind a pod, and what the double's kubelet knows of it.
#[derive(Default)]
pub(super) struct PodRuntime {
    pub child: Option<Child>,
    /// Process group id (= the pid of the first process).
    pub pgid: Option<i32>,
    pub exit: Option<ExitStatus>,
    /// File holding stdout and stderr.
    pub log_path: Option<PathBuf>,
    pub started_at: Option<String>,
    /// Set when the pod is being deleted: SIGKILL after this instant.
    pub kill_at: Option<Instant>,
    /// The job controller has counted this pod's outcome (the real
    /// controller's tracking finalizer is gone).
    pub counted: bool,
    /// The process never started (start error); nothing to wait for.
    pub never_started: bool,
}

impl PodRuntime {
    pub fn alive(&self) -> bool {
        self.child.is_some() && self.exit.is_none()
    }
}

pub(super) struct PodEntry {
    pub object: Value,
    pub runtime: PodRuntime,
}

/// Controller bookkeeping for one Job (keyed by uid), kept outside the object.
#[derive(Default)]
pub(super) struct JobRuntime {
    pub started: Option<Instant>,
    pub finished: Option<Instant>,
    pub succeeded_indexes: BTreeSet<i64>,
    pub succeeded_pods: i64,
    pub failed_pods: i64,
    /// Failures per completion index.
    pub index_failures: HashMap<i64, i64>,
    /// No new pod for an index before this instant (retry backoff).
    pub retry_after: HashMap<i64, Instant>,
    /// The interim condition (`FailureTarget` / `SuccessCriteriaMet`) once
    /// the Job's outcome is decided: (type, reason, message).
    pub outcome: Option<(&'static str, &'static str, &'static str)>,
    /// Pods created so far (for unique names).
    pub pods_created: u64,
}

pub(super) struct State {
    pub rv: u64,
    pub jobs: BTreeMap<Key, Value>,
    pub pods: BTreeMap<Key, PodEntry>,
    pub secrets: BTreeMap<Key, Value>,
    pub job_runtime: HashMap<String, JobRuntime>,
    pub events: VecDeque<Event>,
    pub requests: Vec<ApiRequest>,
    pub peak_live: usize,
    pub image_env: Vec<(String, String)>,
    pub retry_backoff: Duration,
    pub rng: u64,
    /// Where pod logs and pod home folders go.
    pub scratch: PathBuf,
    pub port: u16,
}

impl State {
    pub fn new(scratch: PathBuf, port: u16) -> State {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15)
            ^ u64::from(std::process::id());
        State {
            rv: 1000,
            jobs: BTreeMap::new(),
            pods: BTreeMap::new(),
            secrets: BTreeMap::new(),
            job_runtime: HashMap::new(),
            events: VecDeque::new(),
            requests: Vec::new(),
            peak_live: 0,
            image_env: Vec::new(),
            retry_backoff: Duration::ZERO,
            rng: seed | 1,
            scratch,
            port,
        }
    }

    /// Oldest resourceVersion a watch may resume from.
    pub fn oldest_rv(&self) -> u64 {
        self.events.front().map(|event| event.rv - 1).unwrap_or(self.rv)
    }

    /// Stamps a new resourceVersion on `object` and logs the event.
    pub fn record(&mut self, kind: Kind, kind_of_change: &'static str, object: &mut Value) {
        self.rv += 1;
        object["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let namespace = str_at(object, "/metadata/namespace").to_owned();
        let mut event_object = object.clone();
        event_object["apiVersion"] = json!(kind.api_version());
        event_object["kind"] = json!(kind.kind());
        self.events.push_back(Event { rv: self.rv, kind, namespace, kind_of_change, object: event_object });
        while self.events.len() > EVENT_LOG_LIMIT {
            self.events.pop_front();
        }
    }

    /// Stores a changed Job (no event when nothing but the version differs).
    pub fn put_job(&mut self, key: &Key, mut job: Value) {
        if let Some(old) = self.jobs.get(key)
            && same_ignoring_version(old, &job)
        {
            return;
        }
        let change = if self.jobs.contains_key(key) { "MODIFIED" } else { "ADDED" };
        self.record(Kind::Job, change, &mut job);
        self.jobs.insert(key.clone(), job);
    }

    pub fn remove_job(&mut self, key: &Key) -> Option<Value> {
        let mut job = self.jobs.remove(key)?;
        self.record(Kind::Job, "DELETED", &mut job);
        Some(job)
    }

    /// Replaces a pod's object (no event when nothing changed).
    pub fn put_pod_object(&mut self, key: &Key, mut object: Value) {
        let Some(old) = self.pods.get(key) else { return };
        if same_ignoring_version(&old.object, &object) {
            return;
        }
        self.record(Kind::Pod, "MODIFIED", &mut object);
        if let Some(entry) = self.pods.get_mut(key) {
            entry.object = object;
        }
    }

    pub fn add_pod(&mut self, key: Key, mut object: Value, runtime: PodRuntime) {
        self.record(Kind::Pod, "ADDED", &mut object);
        self.pods.insert(key, PodEntry { object, runtime });
    }

    pub fn remove_pod(&mut self, key: &Key) -> Option<PodEntry> {
        let mut entry = self.pods.remove(key)?;
        self.record(Kind::Pod, "DELETED", &mut entry.object);
        Some(entry)
    }

    /// Five characters as in generated Kubernetes names (no vowels).
    pub fn random_suffix(&mut self) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        (0..5)
            .map(|_| {
                // xorshift64
                self.rng ^= self.rng << 13;
                self.rng ^= self.rng >> 7;
                self.rng ^= self.rng << 17;
                ALPHABET[(self.rng % ALPHABET.len() as u64) as usize] as char
            })
            .collect()
    }

    /// Pods whose main process has not been reaped yet.
    pub fn live_processes(&self) -> usize {
        self.pods.values().filter(|entry| entry.runtime.alive()).count()
    }

    /// Polls every pod process; records exits and kills what is left of an
    /// exited process's group (a container's processes end with it).
    pub fn reap(&mut self) {
        for entry in self.pods.values_mut() {
            let runtime = &mut entry.runtime;
            if runtime.exit.is_some() {
                continue;
            }
            let Some(child) = runtime.child.as_mut() else { continue };
            if let Ok(Some(status)) = child.try_wait() {
                runtime.exit = Some(status);
                if let Some(pgid) = runtime.pgid {
                    kill_group(pgid, nix::sys::signal::Signal::SIGKILL);
                }
            }
        }
    }
}

fn same_ignoring_version(a: &Value, b: &Value) -> bool {
    let strip = |value: &Value| {
        let mut value = value.clone();
        if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("resourceVersion");
        }
        value
    };
    strip(a) == strip(b)
}

/// Sends `signal` to a process group; errors (group gone) are ignored.
pub(super) fn kill_group(pgid: i32, signal: nix::sys::signal::Signal) {
    if pgid > 1 {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), signal);
    }
}

/// The string at a JSON pointer, or "".
pub(super) fn str_at<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The integer at a JSON pointer.
pub(super) fn int_at(value: &Value, pointer: &str) -> Option<i64> {
    value.pointer(pointer).and_then(Value::as_i64)
}

/// Now, RFC 3339 in UTC with second precision (as `metav1.Time` is written).
pub(super) fn now_rfc3339() -> String {
    let now = jiff::Timestamp::now();
    jiff::Timestamp::from_second(now.as_second()).map(|t| t.to_string()).unwrap_or_else(|_| now.to_string())
}

/// A time `delta` from now, RFC 3339.
pub(super) fn rfc3339_in(delta: Duration) -> String {
    let now = jiff::Timestamp::now().as_second() + delta.as_secs() as i64;
    jiff::Timestamp::from_second(now).map(|t| t.to_string()).unwrap_or_else(|_| now_rfc3339())
}

/// `0-2,5`: sorted indexes with runs of three or more compressed, as in
/// `status.completedIndexes` and `status.failedIndexes`.
pub(super) fn compress_indexes(indexes: &BTreeSet<i64>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut iter = indexes.iter().copied().peekable();
    while let Some(first) = iter.next() {
        let mut last = first;
        while iter.peek() == Some(&(last + 1)) {
            last += 1;
            iter.next();
        }
        match last - first {
            0 => parts.push(first.to_string()),
            1 => {
                parts.push(first.to_string());
                parts.push(last.to_string());
            }
            _ => parts.push(format!("{first}-{last}")),
        }
    }
    parts.join(",")
}

/// A `metav1.Status` failure.
pub(super) struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError { code, reason, message: message.into(), details: None }
    }

    pub fn not_found(kind: Kind, name: &str) -> Self {
        ApiError {
            details: Some(details(kind, name)),
            ..ApiError::new(404, "NotFound", format!("{} \"{name}\" not found", kind.qualified()))
        }
    }

    pub fn already_exists(kind: Kind, name: &str) -> Self {
        ApiError {
            details: Some(details(kind, name)),
            ..ApiError::new(409, "AlreadyExists", format!("{} \"{name}\" already exists", kind.qualified()))
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, "BadRequest", message)
    }

    /// 422 Invalid with one cause per `(field, cause reason, message)`.
    pub fn invalid(kind: Kind, name: &str, causes: &[(String, &'static str, String)]) -> Self {
        let summary: Vec<String> =
            causes.iter().map(|(field, _, message)| format!("{field}: {message}")).collect();
        let summary = if summary.len() == 1 { summary.join("") } else { format!("[{}]", summary.join(", ")) };
        let mut details = details(kind, name);
        details["kind"] = json!(kind.kind());
        details["causes"] = Value::Array(
            causes
                .iter()
                .map(|(field, reason, message)| json!({"reason": reason, "message": message, "field": field}))
                .collect(),
        );
        let group = if kind.group().is_empty() { String::new() } else { format!(".{}", kind.group()) };
        ApiError {
            details: Some(details),
            ..ApiError::new(
                422,
                "Invalid",
                format!("{}{group} \"{name}\" is invalid: {summary}", kind.kind()),
            )
        }
    }

    pub fn to_json(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

fn details(kind: Kind, name: &str) -> Value {
    let mut details = Map::new();
    details.insert("name".into(), json!(name));
    if !kind.group().is_empty() {
        details.insert("group".into(), json!(kind.group()));
    }
    details.insert("kind".into(), json!(kind.plural()));
    Value::Object(details)
}

/// A parsed label selector: every requirement must hold.
pub(super) struct Selector {
    requirements: Vec<Requirement>,
}

enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

impl Selector {
    /// Parses `a=b,c!=d,e in (x,y),f notin (z),g,!h`.
    pub fn parse(text: &str) -> Result<Selector, String> {
        let mut requirements = Vec::new();
        for term in split_terms(text) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            requirements.push(parse_requirement(term)?);
        }
        Ok(Selector { requirements })
    }

    pub fn matches(&self, labels: Option<&Value>) -> bool {
        let get = |key: &str| labels.and_then(|labels| labels.get(key)).and_then(Value::as_str);
        self.requirements.iter().all(|requirement| match requirement {
            Requirement::Equals(key, value) => get(key) == Some(value.as_str()),
            Requirement::NotEquals(key, value) => get(key) != Some(value.as_str()),
            Requirement::In(key, values) => get(key).is_some_and(|v| values.iter().any(|x| x == v)),
            Requirement::NotIn(key, values) => get(key).is_none_or(|v| values.iter().all(|x| x != v)),
            Requirement::Exists(key) => get(key).is_some(),
            Requirement::NotExists(key) => get(key).is_none(),
        })
    }
}

/// Splits on commas outside parentheses.
fn split_terms(text: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, ch) in text.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                terms.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&text[start..]);
    terms
}

fn parse_requirement(term: &str) -> Result<Requirement, String> {
    let invalid = || format!("unable to parse requirement: invalid label selector term {term:?}");
    if let Some(key) = term.strip_prefix('!') {
        return Ok(Requirement::NotExists(checked_key(key.trim()).ok_or_else(invalid)?));
    }
    if let Some((key, value)) = term.split_once("!=") {
        return Ok(Requirement::NotEquals(
            checked_key(key.trim()).ok_or_else(invalid)?,
            value.trim().to_owned(),
        ));
    }
    if let Some((key, value)) = term.split_once("==").or_else(|| term.split_once('=')) {
        return Ok(Requirement::Equals(
            checked_key(key.trim()).ok_or_else(invalid)?,
            value.trim().to_owned(),
        ));
    }
    for (word, negated) in [(" notin ", true), (" in ", false)] {
        if let Some((key, rest)) = term.split_once(word) {
            let key = checked_key(key.trim()).ok_or_else(invalid)?;
            let list = rest.trim().strip_prefix('(').and_then(|r| r.strip_suffix(')')).ok_or_else(invalid)?;
            let values = list.split(',').map(|v| v.trim().to_owned()).collect();
            return Ok(if negated { Requirement::NotIn(key, values) } else { Requirement::In(key, values) });
        }
    }
    Ok(Requirement::Exists(checked_key(term).ok_or_else(invalid)?))
}

fn checked_key(key: &str) -> Option<String> {
    let ok = !key.is_empty()
        && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    ok.then(|| key.to_owned())
}

/// A field selector over `metadata.name`, `metadata.namespace` and (pods)
/// `status.phase` / `spec.nodeName`, with `=`, `==` and `!=`.
pub(super) struct FieldSelector {
    terms: Vec<(String, bool, String)>,
}

impl FieldSelector {
    pub fn parse(text: &str) -> Result<FieldSelector, String> {
        let mut terms = Vec::new();
        for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = term.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                (f, true, v)
            } else {
                return Err(format!("invalid selector: '{term}'; can't understand '{term}'"));
            };
            let field = field.trim();
            if !matches!(field, "metadata.name" | "metadata.namespace" | "status.phase" | "spec.nodeName") {
                return Err(format!("field label not supported: {field}"));
            }
            terms.push((field.to_owned(), equal, value.trim().to_owned()));
        }
        Ok(FieldSelector { terms })
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.terms.iter().all(|(field, equal, value)| {
            let pointer = format!("/{}", field.replace('.', "/"));
            (str_at(object, &pointer) == value) == *equal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_compress_runs_of_three_or_more() {
        let set = |v: &[i64]| v.iter().copied().collect::<BTreeSet<_>>();
        assert_eq!(compress_indexes(&set(&[0, 1, 3])), "0,1,3");
        assert_eq!(compress_indexes(&set(&[0, 1, 2, 5])), "0-2,5");
        assert_eq!(compress_indexes(&set(&[1, 3, 4, 5, 7])), "1,3-5,7");
        assert_eq!(compress_indexes(&set(&[])), "");
    }

    #[test]
    fn selectors_match_labels() {
        let labels = json!({"app": "x", "tier": "web"});
        let sel = |text: &str| Selector::parse(text).map(|s| s.matches(Some(&labels)));
        assert_eq!(sel("app=x"), Ok(true));
        assert_eq!(sel("app==x,tier=web"), Ok(true));
        assert_eq!(sel("app=x,tier=db"), Ok(false));
        assert_eq!(sel("app!=y"), Ok(true));
        assert_eq!(sel("tier in (db, web)"), Ok(true));
        assert_eq!(sel("tier notin (db,web)"), Ok(false));
        assert_eq!(sel("app,!missing"), Ok(true));
        assert_eq!(sel("missing"), Ok(false));
        assert!(sel("a b c").is_err());
    }
}

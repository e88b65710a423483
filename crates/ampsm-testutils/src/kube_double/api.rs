//! The REST side of the Kubernetes API double: routing, discovery, Jobs,
//! Pods (read, delete, logs), Secrets, list/watch, and the validation and
//! defaulting the real API server applies to a Job on create.

use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::controller;
use super::http::{ChunkedWriter, HttpRequest, HttpResponse, read_request, write_response};
use super::store::{ApiError, FieldSelector, Key, Kind, Selector, State, int_at, now_rfc3339, str_at};
use super::{ApiRequest, Shared, lock};

/// Serves one connection: one request, one answer, then close.
pub(super) fn serve_connection(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let Some(request) = read_request(&mut reader)? else { return Ok(()) };
    if shared.stop.load(Ordering::SeqCst) {
        return Ok(());
    }
    {
        let mut st = lock(&shared.state);
        st.requests.push(ApiRequest {
            method: request.method.clone(),
            path: request.target.clone(),
            headers: request.headers.clone(),
            body: request.json(),
            body_text: String::from_utf8_lossy(&request.body).into_owned(),
        });
    }
    let mut stream = stream;
    let answer = route(&request, shared, &mut stream);
    let response = match answer {
        Ok(Answer::Done) => return Ok(()),
        Ok(Answer::Response(response)) => response,
        Err(err) => HttpResponse::json(err.code, &err.to_json()),
    };
    write_response(&mut stream, &response)?;
    let _ = stream.shutdown(std::net::Shutdown::Both);
    Ok(())
}

enum Answer {
    Response(HttpResponse),
    /// A streaming answer was written already.
    Done,
}

fn ok(status: u16, value: Value) -> Result<Answer, ApiError> {
    Ok(Answer::Response(HttpResponse::json(status, &value)))
}

fn query_value<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn flag(query: &[(String, String)], key: &str) -> bool {
    matches!(query_value(query, key), Some("true" | "1"))
}

fn not_found_path() -> ApiError {
    ApiError::new(404, "NotFound", "the server could not find the requested resource")
}

fn method_not_allowed(method: &str) -> ApiError {
    ApiError::new(
        405,
        "MethodNotAllowed",
        format!("the server does not allow this method on the requested resource ({method})"),
    )
}

fn route(request: &HttpRequest, shared: &Shared, stream: &mut TcpStream) -> Result<Answer, ApiError> {
    let path = request.path().to_owned();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let method = request.method.as_str();
    let query = request.query();
    let port = lock(&shared.state).port;
    match (method, segments.as_slice()) {
        ("GET", ["version"]) => ok(200, version()),
        ("GET", ["api"]) => ok(
            200,
            json!({
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": format!("127.0.0.1:{port}")}],
            }),
        ),
        ("GET", ["apis"]) => ok(
            200,
            json!({
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [batch_group()],
            }),
        ),
        ("GET", ["apis", "batch"]) => {
            let mut group = batch_group();
            group["kind"] = json!("APIGroup");
            group["apiVersion"] = json!("v1");
            ok(200, group)
        }
        ("GET", ["api", "v1"]) => ok(200, core_resources()),
        ("GET", ["apis", "batch", "v1"]) => ok(200, batch_resources()),
        ("GET", ["api", "v1", "namespaces", ns]) => ok(
            200,
            json!({
                "kind": "Namespace",
                "apiVersion": "v1",
                "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            }),
        ),
        (_, ["apis", "batch", "v1", "jobs"]) => collection(request, shared, stream, Kind::Job, None, &query),
        (_, ["api", "v1", "pods"]) => collection(request, shared, stream, Kind::Pod, None, &query),
        (_, ["api", "v1", "secrets"]) => collection(request, shared, stream, Kind::Secret, None, &query),
        (_, ["apis", "batch", "v1", "namespaces", ns, "jobs"]) => {
            collection(request, shared, stream, Kind::Job, Some(ns), &query)
        }
        (_, ["api", "v1", "namespaces", ns, "pods"]) => {
            collection(request, shared, stream, Kind::Pod, Some(ns), &query)
        }
        (_, ["api", "v1", "namespaces", ns, "secrets"]) => {
            collection(request, shared, stream, Kind::Secret, Some(ns), &query)
        }
        (_, ["apis", "batch", "v1", "namespaces", ns, "jobs", name]) => {
            item(request, shared, Kind::Job, ns, name, &query)
        }
        ("GET", ["apis", "batch", "v1", "namespaces", ns, "jobs", name, "status"]) => {
            item(request, shared, Kind::Job, ns, name, &query)
        }
        (_, ["api", "v1", "namespaces", ns, "pods", name]) => {
            item(request, shared, Kind::Pod, ns, name, &query)
        }
        ("GET", ["api", "v1", "namespaces", ns, "pods", name, "log"]) => {
            pod_log(shared, stream, ns, name, &query)
        }
        (_, ["api", "v1", "namespaces", ns, "secrets", name]) => {
            item(request, shared, Kind::Secret, ns, name, &query)
        }
        _ => Err(not_found_path()),
    }
}

fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "emulationMajor": "1",
        "emulationMinor": "33",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "32",
        "gitVersion": "v1.33.0-kube-double",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-04-23T00:00:00Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn batch_group() -> Value {
    json!({
        "name": "batch",
        "versions": [{"groupVersion": "batch/v1", "version": "v1"}],
        "preferredVersion": {"groupVersion": "batch/v1", "version": "v1"},
    })
}

fn core_resources() -> Value {
    json!({
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            {"name": "namespaces", "singularName": "namespace", "namespaced": false, "kind": "Namespace",
             "verbs": ["get"], "shortNames": ["ns"]},
            {"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod",
             "verbs": ["delete", "get", "list", "watch"], "shortNames": ["po"], "categories": ["all"]},
            {"name": "pods/log", "singularName": "", "namespaced": true, "kind": "Pod", "verbs": ["get"]},
            {"name": "secrets", "singularName": "secret", "namespaced": true, "kind": "Secret",
             "verbs": ["create", "delete", "get", "list", "watch"]},
        ],
    })
}

fn batch_resources() -> Value {
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": "batch/v1",
        "resources": [
            {"name": "jobs", "singularName": "job", "namespaced": true, "kind": "Job",
             "verbs": ["create", "delete", "get", "list", "patch", "watch"], "categories": ["all"]},
            {"name": "jobs/status", "singularName": "", "namespaced": true, "kind": "Job", "verbs": ["get"]},
        ],
    })
}

/// An object as a GET returns it (with `apiVersion` and `kind`).
fn typed(kind: Kind, object: &Value) -> Value {
    let mut out = Map::new();
    out.insert("kind".into(), json!(kind.kind()));
    out.insert("apiVersion".into(), json!(kind.api_version()));
    if let Some(fields) = object.as_object() {
        for (key, value) in fields {
            out.insert(key.clone(), value.clone());
        }
    }
    Value::Object(out)
}

fn objects<'a>(st: &'a State, kind: Kind) -> Box<dyn Iterator<Item = (&'a Key, &'a Value)> + 'a> {
    match kind {
        Kind::Job => Box::new(st.jobs.iter()),
        Kind::Pod => Box::new(st.pods.iter().map(|(k, e)| (k, &e.object))),
        Kind::Secret => Box::new(st.secrets.iter()),
    }
}

fn get_object(st: &State, kind: Kind, key: &Key) -> Option<Value> {
    match kind {
        Kind::Job => st.jobs.get(key).cloned(),
        Kind::Pod => st.pods.get(key).map(|e| e.object.clone()),
        Kind::Secret => st.secrets.get(key).cloned(),
    }
}

struct Filter {
    labels: Option<Selector>,
    fields: Option<FieldSelector>,
}

impl Filter {
    fn from_query(query: &[(String, String)]) -> Result<Filter, ApiError> {
        let labels = match query_value(query, "labelSelector") {
            Some(text) if !text.is_empty() => Some(Selector::parse(text).map_err(ApiError::bad_request)?),
            _ => None,
        };
        let fields = match query_value(query, "fieldSelector") {
            Some(text) if !text.is_empty() => {
                Some(FieldSelector::parse(text).map_err(ApiError::bad_request)?)
            }
            _ => None,
        };
        Ok(Filter { labels, fields })
    }

    fn matches(&self, namespace: Option<&str>, object: &Value) -> bool {
        namespace.is_none_or(|ns| str_at(object, "/metadata/namespace") == ns)
            && self.labels.as_ref().is_none_or(|s| s.matches(object.pointer("/metadata/labels")))
            && self.fields.as_ref().is_none_or(|s| s.matches(object))
    }
}

fn collection(
    request: &HttpRequest,
    shared: &Shared,
    stream: &mut TcpStream,
    kind: Kind,
    namespace: Option<&str>,
    query: &[(String, String)],
) -> Result<Answer, ApiError> {
    match request.method.as_str() {
        "GET" if flag(query, "watch") => watch(shared, stream, kind, namespace, query),
        "GET" => list(shared, kind, namespace, query),
        "POST" => {
            let Some(namespace) = namespace else { return Err(method_not_allowed("POST")) };
            let body = request.json();
            if !body.is_object() {
                return Err(ApiError::bad_request("the request body is not a JSON object"));
            }
            let dry_run = query_value(query, "dryRun") == Some("All");
            let mut st = lock(&shared.state);
            let created = match kind {
                Kind::Job => create_job(&mut st, namespace, body, dry_run)?,
                Kind::Secret => create_secret(&mut st, namespace, body, dry_run)?,
                Kind::Pod => {
                    return Err(ApiError::new(
                        405,
                        "MethodNotAllowed",
                        "KubeDouble: creating bare Pods is not modelled; create a Job",
                    ));
                }
            };
            drop(st);
            shared.changed.notify_all();
            ok(201, typed(kind, &created))
        }
        other => Err(method_not_allowed(other)),
    }
}

fn list(
    shared: &Shared,
    kind: Kind,
    namespace: Option<&str>,
    query: &[(String, String)],
) -> Result<Answer, ApiError> {
    let filter = Filter::from_query(query)?;
    let limit: Option<usize> = query_value(query, "limit").and_then(|l| l.parse().ok()).filter(|l| *l > 0);
    let offset: usize =
        match query_value(query, "continue") {
            Some(token) if !token.is_empty() => token
                .strip_prefix("kube-double:")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| ApiError::bad_request("continue key is not valid"))?,
            _ => 0,
        };
    let st = lock(&shared.state);
    let matching: Vec<Value> = objects(&st, kind)
        .filter(|(_, object)| filter.matches(namespace, object))
        .map(|(_, o)| o.clone())
        .collect();
    let total = matching.len();
    let end = limit.map_or(total, |l| (offset + l).min(total));
    let items: Vec<Value> = matching.into_iter().skip(offset).take(end.saturating_sub(offset)).collect();
    let mut metadata = json!({"resourceVersion": st.rv.to_string()});
    if end < total {
        metadata["continue"] = json!(format!("kube-double:{end}"));
        metadata["remainingItemCount"] = json!(total - end);
    }
    ok(
        200,
        json!({
            "kind": format!("{}List", kind.kind()),
            "apiVersion": kind.api_version(),
            "metadata": metadata,
            "items": items,
        }),
    )
}

/// `?watch=true`: ADDED/MODIFIED/DELETED events as JSON lines, chunked,
/// until `timeoutSeconds` (default 30 min) or the double stops.
fn watch(
    shared: &Shared,
    stream: &mut TcpStream,
    kind: Kind,
    namespace: Option<&str>,
    query: &[(String, String)],
) -> Result<Answer, ApiError> {
    let filter = Filter::from_query(query)?;
    let timeout = query_value(query, "timeoutSeconds").and_then(|t| t.parse::<u64>().ok()).unwrap_or(1800);
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let since = query_value(query, "resourceVersion").filter(|rv| !rv.is_empty() && *rv != "0");
    let initial_events = flag(query, "sendInitialEvents") || since.is_none();
    let bookmark_after_initial = flag(query, "sendInitialEvents") && flag(query, "allowWatchBookmarks");

    let mut lines: Vec<Value> = Vec::new();
    let mut last;
    {
        let st = lock(&shared.state);
        match since {
            Some(rv) if !flag(query, "sendInitialEvents") => {
                let rv: u64 = rv
                    .parse()
                    .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv}")))?;
                if rv < st.oldest_rv() {
                    lines.push(json!({"type": "ERROR", "object": ApiError::new(
                        410,
                        "Expired",
                        format!("too old resource version: {rv} ({})", st.oldest_rv()),
                    ).to_json()}));
                }
                last = rv;
            }
            _ => {
                last = st.rv;
            }
        }
        if initial_events {
            for (_, object) in objects(&st, kind).filter(|(_, o)| filter.matches(namespace, o)) {
                lines.push(json!({"type": "ADDED", "object": typed(kind, object)}));
            }
            if bookmark_after_initial {
                lines.push(json!({"type": "BOOKMARK", "object": {
                    "kind": kind.kind(),
                    "apiVersion": kind.api_version(),
                    "metadata": {
                        "resourceVersion": st.rv.to_string(),
                        "annotations": {"k8s.io/initial-events-end": "true"},
                    },
                }}));
            }
        }
    }
    let mut writer = ChunkedWriter::start(&mut *stream, "application/json").map_err(|_| not_found_path())?;
    let expired = lines.first().is_some_and(|l| l["type"] == "ERROR");
    let send = |writer: &mut ChunkedWriter<&mut TcpStream>, lines: &mut Vec<Value>| -> io::Result<()> {
        let mut buffer = Vec::new();
        for line in lines.drain(..) {
            serde_json::to_writer(&mut buffer, &line).map_err(io::Error::other)?;
            buffer.push(b'\n');
        }
        writer.chunk(&buffer)
    };
    if send(&mut writer, &mut lines).is_err() || expired {
        let _ = writer.finish();
        return Ok(Answer::Done);
    }
    loop {
        if shared.stop.load(Ordering::SeqCst) || Instant::now() >= deadline {
            break;
        }
        {
            let mut st = lock(&shared.state);
            if st.events.back().is_none_or(|e| e.rv <= last) {
                st = shared
                    .changed
                    .wait_timeout(st, Duration::from_millis(200))
                    .map(|(g, _)| g)
                    .unwrap_or_else(|p| p.into_inner().0);
            }
            let since = last;
            for event in st.events.iter().filter(|e| e.rv > since) {
                last = event.rv;
                if event.kind == kind
                    && namespace.is_none_or(|ns| ns == event.namespace)
                    && filter.matches(None, &event.object)
                {
                    lines.push(json!({"type": event.kind_of_change, "object": event.object}));
                }
            }
        }
        if send(&mut writer, &mut lines).is_err() {
            return Ok(Answer::Done);
        }
    }
    let _ = writer.finish();
    Ok(Answer::Done)
}

fn item(
    request: &HttpRequest,
    shared: &Shared,
    kind: Kind,
    namespace: &str,
    name: &str,
    query: &[(String, String)],
) -> Result<Answer, ApiError> {
    let key: Key = (namespace.to_owned(), name.to_owned());
    match request.method.as_str() {
        "GET" => {
            let st = lock(&shared.state);
            let object = get_object(&st, kind, &key).ok_or_else(|| ApiError::not_found(kind, name))?;
            ok(200, typed(kind, &object))
        }
        "DELETE" => {
            let options = DeleteOptions::from(request, query)?;
            let answer = {
                let mut st = lock(&shared.state);
                delete(&mut st, kind, &key, &options)?
            };
            shared.changed.notify_all();
            Ok(answer)
        }
        "PATCH" if kind == Kind::Job => {
            let content_type = request.header("content-type").unwrap_or("");
            let answer = {
                let mut st = lock(&shared.state);
                patch_job(&mut st, &key, content_type, request.json())?
            };
            shared.changed.notify_all();
            ok(200, answer)
        }
        other => Err(method_not_allowed(other)),
    }
}

/// The parts of `DeleteOptions` the double honours, from the body or query.
struct DeleteOptions {
    propagation: Option<String>,
    grace: Option<u64>,
    dry_run: bool,
    uid: Option<String>,
    resource_version: Option<String>,
}

impl DeleteOptions {
    fn from(request: &HttpRequest, query: &[(String, String)]) -> Result<DeleteOptions, ApiError> {
        let body = request.json();
        let text = |key: &str| body.get(key).and_then(Value::as_str).map(str::to_owned);
        let mut propagation =
            text("propagationPolicy").or_else(|| query_value(query, "propagationPolicy").map(str::to_owned));
        if propagation.is_none() {
            // The older boolean spelling.
            let orphan = body
                .get("orphanDependents")
                .and_then(Value::as_bool)
                .or_else(|| query_value(query, "orphanDependents").map(|v| v == "true"));
            propagation = orphan.map(|o| if o { "Orphan".to_owned() } else { "Background".to_owned() });
        }
        if let Some(policy) = &propagation
            && !matches!(policy.as_str(), "Orphan" | "Background" | "Foreground")
        {
            return Err(ApiError::bad_request(format!(
                "propagationPolicy: Unsupported value: {policy:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
            )));
        }
        let grace = body
            .get("gracePeriodSeconds")
            .and_then(Value::as_u64)
            .or_else(|| query_value(query, "gracePeriodSeconds").and_then(|g| g.parse().ok()));
        let dry_run =
            body.get("dryRun").and_then(Value::as_array).is_some_and(|d| d.iter().any(|x| x == "All"))
                || query_value(query, "dryRun") == Some("All");
        Ok(DeleteOptions {
            propagation,
            grace,
            dry_run,
            uid: body.pointer("/preconditions/uid").and_then(Value::as_str).map(str::to_owned),
            resource_version: body
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }
}

fn success_status(kind: Kind, name: &str, uid: &str) -> Value {
    let mut details = json!({"name": name, "kind": kind.plural(), "uid": uid});
    if !kind.group().is_empty() {
        details["group"] = json!(kind.group());
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

fn delete(st: &mut State, kind: Kind, key: &Key, options: &DeleteOptions) -> Result<Answer, ApiError> {
    let name = key.1.as_str();
    let object = get_object(st, kind, key).ok_or_else(|| ApiError::not_found(kind, name))?;
    let uid = str_at(&object, "/metadata/uid").to_owned();
    if options.uid.as_ref().is_some_and(|want| *want != uid) {
        return Err(ApiError::new(
            409,
            "Conflict",
            format!(
                "Precondition failed: UID in precondition: {}, UID in object meta: {uid}",
                options.uid.as_deref().unwrap_or("")
            ),
        ));
    }
    let rv = str_at(&object, "/metadata/resourceVersion");
    if options.resource_version.as_ref().is_some_and(|want| want != rv) {
        return Err(ApiError::new(
            409,
            "Conflict",
            format!(
                "Precondition failed: ResourceVersion in precondition: {}, ResourceVersion in object meta: {rv}",
                options.resource_version.as_deref().unwrap_or("")
            ),
        ));
    }
    if options.dry_run {
        return ok(200, typed(kind, &object));
    }
    match kind {
        Kind::Secret => {
            if let Some(mut secret) = st.secrets.remove(key) {
                st.record(Kind::Secret, "DELETED", &mut secret);
            }
            ok(200, success_status(kind, name, &uid))
        }
        Kind::Pod => {
            if controller::terminate_pod(st, key, options.grace) {
                ok(200, success_status(kind, name, &uid))
            } else {
                let pod = st.pods.get(key).map(|e| e.object.clone()).unwrap_or(object);
                ok(200, typed(kind, &pod))
            }
        }
        Kind::Job => {
            if object.pointer("/metadata/deletionTimestamp").is_some() {
                return ok(200, typed(kind, &object));
            }
            // batch/v1 Jobs default to orphaning their pods.
            match options.propagation.as_deref().unwrap_or("Orphan") {
                "Foreground" => {
                    controller::start_foreground_deletion(st, key);
                    let job = st.jobs.get(key).cloned().unwrap_or(object);
                    ok(200, typed(kind, &job))
                }
                policy => {
                    st.remove_job(key);
                    st.job_runtime.remove(&uid);
                    let owned: Vec<Key> = st
                        .pods
                        .iter()
                        .filter(|(_, e)| {
                            e.object
                                .pointer("/metadata/ownerReferences")
                                .and_then(Value::as_array)
                                .is_some_and(|owners| owners.iter().any(|o| str_at(o, "/uid") == uid))
                        })
                        .map(|(k, _)| k.clone())
                        .collect();
                    for pod_key in owned {
                        if policy == "Orphan" {
                            let Some(entry) = st.pods.get(&pod_key) else { continue };
                            let mut pod = entry.object.clone();
                            if let Some(meta) = pod["metadata"].as_object_mut() {
                                meta.remove("ownerReferences");
                            }
                            st.put_pod_object(&pod_key, pod);
                        } else {
                            controller::terminate_pod(st, &pod_key, None);
                        }
                    }
                    ok(200, success_status(kind, name, &uid))
                }
            }
        }
    }
}

/// JSON merge patch (RFC 7386).
fn merge_patch(target: &mut Value, patch: &Value) {
    let Some(fields) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    for (key, value) in fields {
        if value.is_null() {
            if let Some(map) = target.as_object_mut() {
                map.remove(key);
            }
        } else {
            merge_patch(&mut target[key.as_str()], value);
        }
    }
}

/// PATCH of a Job: merge patches (strategic merge patches are applied as
/// merge patches), only the fields a real server lets change.
fn patch_job(st: &mut State, key: &Key, content_type: &str, patch: Value) -> Result<Value, ApiError> {
    let name = key.1.as_str();
    let job = st.jobs.get(key).cloned().ok_or_else(|| ApiError::not_found(Kind::Job, name))?;
    if !content_type.contains("merge-patch+json") {
        return Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "KubeDouble: patch type {content_type:?} is not modelled; use a merge or strategic merge patch"
            ),
        ));
    }
    let mut patched = job.clone();
    merge_patch(&mut patched, &patch);
    patched["status"] = job["status"].clone();
    for field in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "generation",
        "ownerReferences",
    ] {
        patched["metadata"][field] = job["metadata"][field].clone();
    }
    if let Some(meta) = patched["metadata"].as_object_mut() {
        meta.retain(|_, v| !v.is_null());
    }
    let mutable = [
        "suspend",
        "parallelism",
        "activeDeadlineSeconds",
        "ttlSecondsAfterFinished",
        "backoffLimit",
        "maxFailedIndexes",
    ];
    let old_spec = job["spec"].as_object().cloned().unwrap_or_default();
    let new_spec = patched["spec"].as_object().cloned().unwrap_or_default();
    let mut causes = Vec::new();
    let all_keys: std::collections::BTreeSet<&String> = old_spec.keys().chain(new_spec.keys()).collect();
    for field in all_keys {
        if !mutable.contains(&field.as_str()) && old_spec.get(field) != new_spec.get(field) {
            causes.push((format!("spec.{field}"), "FieldValueInvalid", "field is immutable".to_owned()));
        }
    }
    if int_at(&patched, "/spec/parallelism").is_some_and(|p| p < 0) {
        causes.push((
            "spec.parallelism".into(),
            "FieldValueInvalid",
            "must be greater than or equal to 0".into(),
        ));
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid(Kind::Job, name, &causes));
    }
    if patched["spec"] != job["spec"] {
        let generation = int_at(&job, "/metadata/generation").unwrap_or(1);
        patched["metadata"]["generation"] = json!(generation + 1);
    }
    st.put_job(key, patched);
    Ok(typed(Kind::Job, st.jobs.get(key).unwrap_or(&job)))
}

fn pod_log(
    shared: &Shared,
    stream: &mut TcpStream,
    namespace: &str,
    name: &str,
    query: &[(String, String)],
) -> Result<Answer, ApiError> {
    let key: Key = (namespace.to_owned(), name.to_owned());
    let path = {
        let st = lock(&shared.state);
        let entry = st.pods.get(&key).ok_or_else(|| ApiError::not_found(Kind::Pod, name))?;
        let container = str_at(&entry.object, "/spec/containers/0/name").to_owned();
        if let Some(asked) = query_value(query, "container")
            && asked != container
        {
            return Err(ApiError::bad_request(format!("container {asked} is not valid for pod {name}")));
        }
        if flag(query, "previous") {
            return Err(ApiError::bad_request(format!(
                "previous terminated container \"{container}\" in pod \"{name}\" not found"
            )));
        }
        let Some(path) = entry.runtime.log_path.clone() else {
            let reason = str_at(&entry.object, "/status/containerStatuses/0/state/waiting/reason");
            let reason = if reason.is_empty() { "ContainerCreating" } else { reason };
            return Err(ApiError::bad_request(format!(
                "container \"{container}\" in pod \"{name}\" is waiting to start: {reason}"
            )));
        };
        path
    };
    let tail: Option<usize> = query_value(query, "tailLines").and_then(|t| t.parse().ok());
    let limit: Option<usize> = query_value(query, "limitBytes").and_then(|t| t.parse().ok());
    let mut text = std::fs::read(&path).unwrap_or_default();
    if let Some(tail) = tail {
        let lines: Vec<&[u8]> = text.split_inclusive(|b| *b == b'\n').collect();
        text = lines[lines.len().saturating_sub(tail)..].concat();
    }
    if let Some(limit) = limit {
        text.truncate(limit);
    }
    if !flag(query, "follow") {
        return Ok(Answer::Response(HttpResponse::text(200, text)));
    }
    // Follow: stream what the process writes until it has exited.
    let mut writer = ChunkedWriter::start(&mut *stream, "text/plain").map_err(|_| not_found_path())?;
    if writer.chunk(&text).is_err() {
        return Ok(Answer::Done);
    }
    let mut offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    loop {
        let running = {
            let mut st = lock(&shared.state);
            st.reap();
            st.pods.get(&key).is_some_and(|e| e.runtime.alive())
        };
        if let Ok(mut file) = std::fs::File::open(&path)
            && file.seek(SeekFrom::Start(offset)).is_ok()
        {
            let mut more = Vec::new();
            if file.read_to_end(&mut more).is_ok() && !more.is_empty() {
                offset += more.len() as u64;
                if writer.chunk(&more).is_err() {
                    return Ok(Answer::Done);
                }
            }
        }
        if !running || shared.stop.load(Ordering::SeqCst) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = writer.finish();
    Ok(Answer::Done)
}

fn create_secret(st: &mut State, namespace: &str, mut body: Value, dry_run: bool) -> Result<Value, ApiError> {
    check_type(&body, Kind::Secret)?;
    let name = object_name(st, &mut body, namespace, Kind::Secret)?;
    let mut data = body.get("data").and_then(Value::as_object).cloned().unwrap_or_default();
    for (key, value) in &data {
        let valid =
            value.as_str().is_some_and(|v| base64::engine::general_purpose::STANDARD.decode(v).is_ok());
        if !valid {
            return Err(ApiError::bad_request(format!(
                "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data for key {key:?}"
            )));
        }
    }
    if let Some(strings) = body.get("stringData").and_then(Value::as_object) {
        for (key, value) in strings {
            let encoded = base64::engine::general_purpose::STANDARD.encode(value.as_str().unwrap_or(""));
            data.insert(key.clone(), json!(encoded));
        }
    }
    let mut secret = json!({
        "metadata": new_metadata(&body, &name, namespace),
        "data": data,
        "type": body.get("type").and_then(Value::as_str).unwrap_or("Opaque"),
    });
    if dry_run {
        return Ok(secret);
    }
    st.record(Kind::Secret, "ADDED", &mut secret);
    st.secrets.insert((namespace.to_owned(), name), secret.clone());
    Ok(secret)
}

fn check_type(body: &Value, kind: Kind) -> Result<(), ApiError> {
    let given_kind = str_at(body, "/kind");
    let given_version = str_at(body, "/apiVersion");
    if (!given_kind.is_empty() && given_kind != kind.kind())
        || (!given_version.is_empty() && given_version != kind.api_version())
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({given_version}) does not match the expected API version ({}) or kind {given_kind:?} is not {}",
            kind.api_version(),
            kind.kind()
        )));
    }
    Ok(())
}

/// The name of a new object (`metadata.name`, or `generateName` plus five
/// characters); checks namespace, name format and uniqueness.
fn object_name(st: &mut State, body: &mut Value, namespace: &str, kind: Kind) -> Result<String, ApiError> {
    let body_namespace = str_at(body, "/metadata/namespace");
    if !body_namespace.is_empty() && body_namespace != namespace {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let mut name = str_at(body, "/metadata/name").to_owned();
    let generate = str_at(body, "/metadata/generateName").to_owned();
    if name.is_empty() && !generate.is_empty() {
        name = format!("{generate}{}", st.random_suffix());
    }
    if name.is_empty() {
        return Err(ApiError::invalid(
            kind,
            "",
            &[(
                "metadata.name".into(),
                "FieldValueRequired",
                "Required value: name or generateName is required".into(),
            )],
        ));
    }
    let max = if kind == Kind::Job { 63 } else { 253 };
    let valid = name.len() <= max
        && name.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (kind != Kind::Job && c == '.')
        })
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !valid {
        return Err(ApiError::invalid(
            kind,
            &name,
            &[(
                "metadata.name".into(),
                "FieldValueInvalid",
                format!(
                    "Invalid value: {name:?}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (at most {max} characters)"
                ),
            )],
        ));
    }
    let key = (namespace.to_owned(), name.clone());
    let exists = match kind {
        Kind::Job => st.jobs.contains_key(&key),
        Kind::Pod => st.pods.contains_key(&key),
        Kind::Secret => st.secrets.contains_key(&key),
    };
    if exists {
        return Err(ApiError::already_exists(kind, &name));
    }
    Ok(name)
}

fn new_metadata(body: &Value, name: &str, namespace: &str) -> Value {
    let mut metadata = body.get("metadata").cloned().unwrap_or_else(|| json!({}));
    if !metadata.is_object() {
        metadata = json!({});
    }
    metadata["name"] = json!(name);
    metadata["namespace"] = json!(namespace);
    metadata["uid"] = json!(uuid::Uuid::new_v4().to_string());
    metadata["creationTimestamp"] = json!(now_rfc3339());
    if let Some(meta) = metadata.as_object_mut() {
        for field in [
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
            "managedFields",
        ] {
            meta.remove(field);
        }
    }
    metadata
}

/// Validation of a Job on create; returns the causes of a 422.
fn validate_job(job: &Value) -> Vec<(String, &'static str, String)> {
    let mut causes: Vec<(String, &'static str, String)> = Vec::new();
    let mut required = |field: &str, detail: &str| {
        let message =
            if detail.is_empty() { "Required value".to_owned() } else { format!("Required value: {detail}") };
        causes.push((field.to_owned(), "FieldValueRequired", message));
    };
    let spec = job.get("spec").cloned().unwrap_or(Value::Null);
    if !spec.is_object() {
        required("spec.template.spec.containers", "");
        return causes;
    }
    let containers =
        spec.pointer("/template/spec/containers").and_then(Value::as_array).cloned().unwrap_or_default();
    if containers.is_empty() {
        required("spec.template.spec.containers", "");
    }
    for (i, container) in containers.iter().enumerate() {
        if str_at(container, "/name").is_empty() {
            required(&format!("spec.template.spec.containers[{i}].name"), "");
        }
        if str_at(container, "/image").is_empty() {
            required(&format!("spec.template.spec.containers[{i}].image"), "");
        }
    }
    let indexed = match str_at(&spec, "/completionMode") {
        "" | "NonIndexed" => false,
        "Indexed" => true,
        other => {
            causes.push((
                "spec.completionMode".into(),
                "FieldValueNotSupported",
                format!("Unsupported value: {other:?}: supported values: \"NonIndexed\", \"Indexed\""),
            ));
            false
        }
    };
    if indexed && spec.get("completions").is_none_or(Value::is_null) {
        causes.push((
            "spec.completions".into(),
            "FieldValueRequired",
            "Required value: when completion mode is Indexed".into(),
        ));
    }
    let restart = str_at(&spec, "/template/spec/restartPolicy");
    let restart = if restart.is_empty() { "Always" } else { restart };
    match restart {
        "Never" => {}
        "OnFailure" => causes.push((
            "spec.template.spec.restartPolicy".into(),
            "FieldValueNotSupported",
            "KubeDouble: restartPolicy \"OnFailure\" is valid in Kubernetes but not modelled by the double; use \"Never\"".into(),
        )),
        other => causes.push((
            "spec.template.spec.restartPolicy".into(),
            "FieldValueNotSupported",
            format!("Unsupported value: {other:?}: supported values: \"OnFailure\", \"Never\""),
        )),
    }
    for field in [
        "parallelism",
        "completions",
        "backoffLimit",
        "backoffLimitPerIndex",
        "maxFailedIndexes",
        "ttlSecondsAfterFinished",
    ] {
        if int_at(&spec, &format!("/{field}")).is_some_and(|v| v < 0) {
            causes.push((
                format!("spec.{field}"),
                "FieldValueInvalid",
                "must be greater than or equal to 0".into(),
            ));
        }
    }
    if int_at(&spec, "/activeDeadlineSeconds").is_some_and(|v| v <= 0) {
        causes.push((
            "spec.activeDeadlineSeconds".into(),
            "FieldValueInvalid",
            "must be greater than 0".into(),
        ));
    }
    if spec.get("backoffLimitPerIndex").is_some_and(|v| !v.is_null()) {
        if !indexed {
            causes.push((
                "spec.backoffLimitPerIndex".into(),
                "FieldValueForbidden",
                "Forbidden: requires indexed completion mode".into(),
            ));
        }
        if restart != "Never" {
            causes.push((
                "spec.backoffLimitPerIndex".into(),
                "FieldValueForbidden",
                "Forbidden: requires restart policy Never".into(),
            ));
        }
    } else if spec.get("maxFailedIndexes").is_some_and(|v| !v.is_null()) {
        causes.push((
            "spec.backoffLimitPerIndex".into(),
            "FieldValueRequired",
            "Required value: when maxFailedIndexes is specified".into(),
        ));
    }
    for (field, what) in [
        ("podFailurePolicy", "podFailurePolicy"),
        ("successPolicy", "successPolicy"),
        ("selector", "a user-given selector"),
        ("managedBy", "managedBy"),
    ] {
        if spec.get(field).is_some_and(|v| !v.is_null()) {
            causes.push((
                format!("spec.{field}"),
                "FieldValueNotSupported",
                format!("KubeDouble: {what} is not modelled by the double"),
            ));
        }
    }
    causes
}

/// Creates a Job the way the API server does: validation, defaulting,
/// generated selector and labels, empty status.
fn create_job(st: &mut State, namespace: &str, mut body: Value, dry_run: bool) -> Result<Value, ApiError> {
    check_type(&body, Kind::Job)?;
    let name = object_name(st, &mut body, namespace, Kind::Job)?;
    let causes = validate_job(&body);
    if !causes.is_empty() {
        return Err(ApiError::invalid(Kind::Job, &name, &causes));
    }
    let mut metadata = new_metadata(&body, &name, namespace);
    metadata["generation"] = json!(1);
    let uid = str_at(&metadata, "/uid").to_owned();
    let mut spec = body["spec"].clone();

    // Defaults (SetDefaults_Job).
    if spec.get("completions").is_none_or(Value::is_null)
        && spec.get("parallelism").is_none_or(Value::is_null)
    {
        spec["completions"] = json!(1);
    }
    if spec.get("parallelism").is_none_or(Value::is_null) {
        spec["parallelism"] = json!(1);
    }
    if spec.get("backoffLimit").is_none_or(Value::is_null) {
        let per_index = spec.get("backoffLimitPerIndex").is_some_and(|v| !v.is_null());
        spec["backoffLimit"] = json!(if per_index { i64::from(i32::MAX) } else { 6 });
    }
    if spec.get("completionMode").is_none_or(Value::is_null) {
        spec["completionMode"] = json!("NonIndexed");
    }
    if spec.get("suspend").is_none_or(Value::is_null) {
        spec["suspend"] = json!(false);
    }
    if spec.get("podReplacementPolicy").is_none_or(Value::is_null) {
        spec["podReplacementPolicy"] = json!("TerminatingOrFailed");
    }
    // Generated selector and the labels that go with it.
    let generated = json!({
        "batch.kubernetes.io/controller-uid": uid,
        "batch.kubernetes.io/job-name": name,
        "controller-uid": uid,
        "job-name": name,
    });
    spec["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
    let template = &mut spec["template"];
    if !template["metadata"].is_object() {
        template["metadata"] = json!({});
    }
    if !template["metadata"]["labels"].is_object() {
        template["metadata"]["labels"] = json!({});
    }
    if let Some(fields) = generated.as_object() {
        for (key, value) in fields {
            template["metadata"]["labels"][key.as_str()] = value.clone();
        }
    }
    let pod_spec = &mut template["spec"];
    for (field, value) in [
        ("terminationGracePeriodSeconds", json!(30)),
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
        ("securityContext", json!({})),
    ] {
        if pod_spec.get(field).is_none_or(Value::is_null) {
            pod_spec[field] = value;
        }
    }
    if let Some(containers) = pod_spec.get_mut("containers").and_then(Value::as_array_mut) {
        for container in containers {
            let image = str_at(container, "/image").to_owned();
            let latest = !image.contains(':') || image.ends_with(":latest");
            for (field, value) in [
                ("imagePullPolicy", json!(if latest { "Always" } else { "IfNotPresent" })),
                ("terminationMessagePath", json!("/dev/termination-log")),
                ("terminationMessagePolicy", json!("File")),
                ("resources", json!({})),
            ] {
                if container.get(field).is_none_or(Value::is_null) {
                    container[field] = value;
                }
            }
        }
    }
    if metadata.get("labels").and_then(Value::as_object).is_none_or(Map::is_empty) {
        metadata["labels"] = spec["template"]["metadata"]["labels"].clone();
    }
    let mut job = json!({"metadata": metadata, "spec": spec, "status": {}});
    if dry_run {
        return Ok(job);
    }
    st.record(Kind::Job, "ADDED", &mut job);
    st.jobs.insert((namespace.to_owned(), name), job.clone());
    Ok(job)
}

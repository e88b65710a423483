//! A **double** of the Kubernetes API server, for tests: no real cluster can
//! run on the machines these tests run on, so a Kubernetes executor is tested
//! against this stand-in instead. It is not Kubernetes; passing against it
//! shows that the executor speaks the API correctly and handles the Job
//! lifecycle, not that it works on a real cluster.
//!
//! [`KubeDouble::start`] serves plain HTTP on `127.0.0.1` (no TLS, no
//! authentication: any bearer token is accepted) and keeps Jobs, Pods and
//! Secrets in memory. A controller thread ticks about every 100 ms and plays
//! the Job controller, the garbage collector, the TTL controller and a
//! kubelet that runs each pod's container **as a local process**, so the
//! worker program a Job starts is exercised end to end.
//! [`KubeDouble::write_kubeconfig`] writes a kubeconfig that kube-rs
//! (`Config::from_custom_kubeconfig`, or `Config::infer` with `KUBECONFIG`
//! set) and kubectl accept; kube-rs needs no TLS feature for it. (kubectl
//! `get` prints only names and ages: the double serves no server-side
//! tables.)
//!
//! # Modelled faithfully
//! - **Jobs** (`batch/v1`): create (validation with `422 Invalid` and field
//!   causes; defaulting of `parallelism`, `completions`, `backoffLimit` (6, or
//!   2147483647 with `backoffLimitPerIndex`), `completionMode`, `suspend`,
//!   `podReplacementPolicy`; generated `selector` and the labels
//!   `batch.kubernetes.io/controller-uid`, `batch.kubernetes.io/job-name`,
//!   `controller-uid`, `job-name` on the template, copied to the Job's own
//!   labels when it has none; `uid`, `creationTimestamp`, `generation`,
//!   `resourceVersion`, `status: {}`; `generateName`; `dryRun=All`), get,
//!   list, watch, merge-patch of the mutable fields (`suspend`,
//!   `parallelism`, `activeDeadlineSeconds`, `ttlSecondsAfterFinished`,
//!   `backoffLimit`, `maxFailedIndexes`; others are immutable → 422), and
//!   delete with `propagationPolicy` from the body or the query:
//!   `Background` (Job gone at once, its pods deleted), `Foreground` (Job
//!   stays with `deletionTimestamp` and the `foregroundDeletion` finalizer
//!   until its pods are gone) and `Orphan` (pods keep running, without owner).
//!   As on a real server, **Jobs default to `Orphan`** when no policy is sent.
//! - **The Job controller**: `Indexed` and `NonIndexed` completion modes,
//!   `completions`, `parallelism` (at most that many pods active), the
//!   per-index retry of `backoffLimitPerIndex` (an index whose failures exceed
//!   it is listed in `failedIndexes` and not retried), `maxFailedIndexes`,
//!   `backoffLimit` (total failures), `activeDeadlineSeconds` (running pods
//!   are killed and counted as failed), `suspend` (pods deleted, `Suspended`
//!   condition; resume resets `startTime`), and `ttlSecondsAfterFinished`
//!   (the finished Job is deleted in the foreground). Status fields as the
//!   real controller writes them: `active`, `succeeded`, `failed` (omitted
//!   when zero), `ready`, `terminating`, `completedIndexes` and
//!   `failedIndexes` (compressed ranges like `0-2,5`), `startTime`,
//!   `completionTime` (success only), `uncountedTerminatedPods: {}`, and the
//!   conditions: first the interim `FailureTarget` / `SuccessCriteriaMet`,
//!   then, once no pod is left running, `Failed` / `Complete` with the same
//!   reason — `BackoffLimitExceeded`, `DeadlineExceeded`,
//!   `MaxFailedIndexesExceeded`, `FailedIndexes` or `CompletionsReached`.
//! - **Pods** (read, list, watch, delete, logs): named `<job>-<index>-<5
//!   chars>` (`<job>-<5 chars>` for NonIndexed), labelled with the template's
//!   labels plus `batch.kubernetes.io/job-completion-index`, annotated with
//!   `batch.kubernetes.io/job-completion-index` (and
//!   `batch.kubernetes.io/job-index-failure-count` with per-index backoff),
//!   owned by the Job (`ownerReferences`, `controller: true`), with
//!   `JOB_COMPLETION_INDEX` added to every container's `env` through the
//!   downward API, as the real controller does. `status.phase` goes
//!   Pending → Running → Succeeded/Failed with `containerStatuses[0].state`
//!   `waiting` / `running` / `terminated {exitCode, reason}` (a process
//!   killed by signal N exits with 128+N, like a container). Deleting a pod
//!   sends SIGTERM to its process group and SIGKILL after the grace period
//!   (`gracePeriodSeconds`, else `terminationGracePeriodSeconds`, default
//!   30); the pod stays visible with `deletionTimestamp` until its process is
//!   gone. Finished pods stay until their Job is deleted, so their logs can
//!   be read; `GET …/pods/{name}/log` returns stdout and stderr so far
//!   (`container`, `tailLines`, `limitBytes`, `follow=true` supported).
//! - **The container process**: the first container's `command` + `args`,
//!   with `$(VAR)` references expanded as Kubernetes does; its own process
//!   group (when the main process exits, what is left of the group is
//!   killed, as a container's processes die with it); stdin empty; working
//!   directory `workingDir` (which must exist), else `/`. The environment is
//!   **not inherited** from the test: it is `PATH` (the test's, standing in
//!   for the image's), `HOSTNAME` (the pod name), `HOME` (a fresh empty
//!   folder per pod), whatever [`KubeDouble::set_image_env`] adds, then the
//!   container's `envFrom` (`secretRef`) and `env`: `value`,
//!   `valueFrom.fieldRef` (downward API), `valueFrom.secretKeyRef` (from
//!   Secrets created through the API). A missing Secret keeps the pod Pending
//!   with `CreateContainerConfigError`, as a kubelet does.
//! - **Secrets**: create (`data` checked as base64, `stringData` folded into
//!   `data`), get, list, delete.
//! - Errors are `Status` objects with real codes and reasons: 404
//!   `NotFound`, 409 `AlreadyExists` (and `Conflict` for failed delete
//!   preconditions), 422 `Invalid` with `details.causes`, 400 `BadRequest`,
//!   405 `MethodNotAllowed`, 410 `Expired` (watch from a resourceVersion
//!   older than the event log).
//! - Lists honour `labelSelector` (`k=v`, `k==v`, `k!=v`, `k in (a,b)`,
//!   `k notin (a)`, `k`, `!k`, comma-joined), `fieldSelector`
//!   (`metadata.name`, `metadata.namespace`, `status.phase`, `spec.nodeName`)
//!   and `limit`/`continue`. Watches (`?watch=true`) stream `ADDED`,
//!   `MODIFIED` and `DELETED` events as JSON lines from a `resourceVersion`
//!   (without one, or with `"0"`, current objects come first as `ADDED`),
//!   honour `timeoutSeconds` and `sendInitialEvents` (with the
//!   `k8s.io/initial-events-end` bookmark); this is what kube-rs's
//!   `Api::watch` and `kube::runtime::watcher` use.
//! - Discovery: `/version` (reports v1.33), `/api`, `/apis`, `/apis/batch`,
//!   `/api/v1`, `/apis/batch/v1`, and `GET /api/v1/namespaces/{ns}` (every
//!   namespace exists).
//!
//! # Not modelled
//! - Images: `image` is required and recorded but nothing is pulled; a
//!   container **must have a `command`** (there is no image entrypoint), else
//!   the pod fails with reason `StartError` and a message saying so. Users,
//!   security contexts, resources and limits, probes, networking and DNS are
//!   ignored; every pod runs as the test's user on `127.0.0.1`.
//! - Volumes: only `hostPath`, and since the process sees the host's file
//!   system, **a volume's `mountPath` must equal its `hostPath.path`** (plus
//!   `subPath`); `hostPath.type` `Directory`/`File`/`…OrCreate` is checked.
//!   Any other volume type fails the pod with `StartError` and a message.
//! - One container per pod; `initContainers` and sidecars fail the pod with
//!   `StartError`. `restartPolicy: OnFailure` is refused at create (422,
//!   message starting with `KubeDouble:`); `podFailurePolicy`,
//!   `successPolicy`, `managedBy` and user-given selectors likewise.
//! - Retry backoff: the real controller waits 10 s, 20 s, 40 s … before
//!   re-creating a failed pod; the double retries on the next tick unless
//!   [`KubeDouble::set_retry_backoff`] sets a base delay.
//! - Pods deleted because their Job was suspended are not counted as failed.
//!   The pod tracking finalizer is not shown; outcomes are counted at once.
//! - No authentication or authorization, no admission, no namespaces as
//!   objects, no ConfigMaps, Services, events or other kinds; creating bare
//!   Pods is refused (405). `PUT`, JSON patch and server-side apply are not
//!   supported (405/415). Watches filter events by the object's labels at
//!   the time of the event (no synthetic `DELETED` when labels stop
//!   matching) and send no periodic bookmarks.
//! - Times are wall-clock seconds (RFC 3339); deadlines and TTLs are measured
//!   with a monotonic clock and checked every tick (~100 ms).

mod api;
mod controller;
mod http;
mod store;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

use store::{State, kill_group};

/// How often the controllers run when nothing wakes them.
const TICK: Duration = Duration::from_millis(100);

/// One request the double received.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    /// HTTP method (`GET`, `POST`, `DELETE`, `PATCH`, …).
    pub method: String,
    /// Path and query as sent, e.g.
    /// `/apis/batch/v1/namespaces/ns/jobs?labelSelector=app%3Dx`.
    pub path: String,
    /// Headers in arrival order, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON (`Value::Null` when empty or not JSON).
    pub body: Value,
    /// The body as text (lossy UTF-8).
    pub body_text: String,
}

impl ApiRequest {
    /// The path without the query string.
    pub fn route(&self) -> &str {
        self.path.split('?').next().unwrap_or("")
    }

    /// A decoded query parameter (the last one when repeated).
    pub fn query(&self, key: &str) -> Option<String> {
        let query = self.path.split_once('?')?.1;
        http::parse_query(query).into_iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// First header value with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(key, _)| *key == name).map(|(_, value)| value.as_str())
    }
}

pub(crate) struct Shared {
    state: Mutex<State>,
    /// Signalled on every change (wakes the controller and watches).
    changed: Condvar,
    stop: AtomicBool,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    match state.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// A running Kubernetes API double (see the module docs for what it models).
/// Dropping it kills every process it started and stops serving.
pub struct KubeDouble {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
    controller_thread: Option<JoinHandle<()>>,
    _scratch: tempfile::TempDir,
}

impl KubeDouble {
    /// Starts the double on a free port of 127.0.0.1, serving on its own
    /// threads. Panics if it cannot bind or create its scratch folder.
    pub fn start() -> KubeDouble {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("KubeDouble: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("KubeDouble: local address");
        let scratch =
            tempfile::Builder::new().prefix("kube-double-").tempdir().expect("KubeDouble: scratch folder");
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(scratch.path().to_owned(), addr.port())),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let accept_shared = Arc::clone(&shared);
        let accept_thread = std::thread::Builder::new()
            .name("kube-double-accept".into())
            .spawn(move || accept_loop(&listener, &accept_shared))
            .expect("KubeDouble: spawn accept thread");
        let controller_shared = Arc::clone(&shared);
        let controller_thread = std::thread::Builder::new()
            .name("kube-double-controller".into())
            .spawn(move || controller_loop(&controller_shared))
            .expect("KubeDouble: spawn controller thread");
        KubeDouble {
            addr,
            shared,
            accept_thread: Some(accept_thread),
            controller_thread: Some(controller_thread),
            _scratch: scratch,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Writes a kubeconfig with one cluster (`server: http://127.0.0.1:PORT`,
    /// plain http), one user with a dummy bearer token, and one context,
    /// made current, whose namespace is `namespace`. Panics on I/O errors.
    pub fn write_kubeconfig(&self, path: &Path, namespace: &str) {
        let quote = |text: &str| serde_json::to_string(text).unwrap_or_default();
        let text = format!(
            "# Kubeconfig for the KubeDouble test double of the Kubernetes API (not a real cluster).\n\
             apiVersion: v1\n\
             kind: Config\n\
             clusters:\n\
             - name: kube-double\n  \
               cluster:\n    \
                 server: {server}\n\
             users:\n\
             - name: kube-double\n  \
               user:\n    \
                 token: kube-double-token\n\
             contexts:\n\
             - name: kube-double\n  \
               context:\n    \
                 cluster: kube-double\n    \
                 user: kube-double\n    \
                 namespace: {namespace}\n\
             current-context: kube-double\n\
             preferences: {{}}\n",
            server = quote(&self.url()),
            namespace = quote(namespace),
        );
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("KubeDouble: kubeconfig folder");
        }
        std::fs::write(path, text).expect("KubeDouble: write kubeconfig");
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<ApiRequest> {
        lock(&self.shared.state).requests.clone()
    }

    /// The current Job objects (with `apiVersion` and `kind`), by namespace
    /// and name.
    pub fn jobs(&self) -> Vec<Value> {
        let st = lock(&self.shared.state);
        st.jobs.values().map(|job| with_type(job, "batch/v1", "Job")).collect()
    }

    /// The current Pod objects (with `apiVersion` and `kind`), by namespace
    /// and name.
    pub fn pods(&self) -> Vec<Value> {
        let st = lock(&self.shared.state);
        st.pods.values().map(|entry| with_type(&entry.object, "v1", "Pod")).collect()
    }

    /// How many pod processes are running now (started and not yet exited).
    pub fn live_processes(&self) -> usize {
        let mut st = lock(&self.shared.state);
        st.reap();
        st.live_processes()
    }

    /// The most pod processes that were running at once (sampled every
    /// controller tick, right after starting pods).
    pub fn peak_live_processes(&self) -> usize {
        lock(&self.shared.state).peak_live
    }

    /// Adds a variable every container gets before its own `env`, as an
    /// image's `ENV` would (e.g. a `PATH` with the agent CLI on it).
    pub fn set_image_env(&self, key: &str, value: &str) {
        let mut st = lock(&self.shared.state);
        st.image_env.retain(|(k, _)| k != key);
        st.image_env.push((key.to_owned(), value.to_owned()));
    }

    /// Base delay before a failed pod is replaced (doubling per failure of
    /// the same index, at most 36× the base). The real controller uses 10 s;
    /// the double's default is no delay.
    pub fn set_retry_backoff(&self, base: Duration) {
        lock(&self.shared.state).retry_backoff = base;
    }
}

fn with_type(object: &Value, api_version: &str, kind: &str) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("apiVersion".into(), Value::from(api_version));
    out.insert("kind".into(), Value::from(kind));
    if let Some(fields) = object.as_object() {
        out.extend(fields.clone());
    }
    Value::Object(out)
}

impl Drop for KubeDouble {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.changed.notify_all();
        if let Some(handle) = self.controller_thread.take() {
            let _ = handle.join();
        }
        {
            let mut st = lock(&self.shared.state);
            for entry in st.pods.values_mut() {
                if let Some(pgid) = entry.runtime.pgid {
                    kill_group(pgid, nix::sys::signal::Signal::SIGKILL);
                }
                if let Some(child) = entry.runtime.child.as_mut() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
        // Wake the blocking accept() so the thread sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(handle) = self.accept_thread.take() {
            let _ = handle.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for conn in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = conn else { continue };
        let shared = Arc::clone(shared);
        // Connection threads are detached; watches and followed logs end
        // when they see the stop flag.
        let _ = std::thread::Builder::new().name("kube-double-conn".into()).spawn(move || {
            let _ = api::serve_connection(stream, &shared);
        });
    }
}

fn controller_loop(shared: &Shared) {
    let mut st = lock(&shared.state);
    while !shared.stop.load(Ordering::SeqCst) {
        controller::tick(&mut st);
        shared.changed.notify_all();
        st = match shared.changed.wait_timeout(st, TICK) {
            Ok((guard, _)) => guard,
            Err(poisoned) => poisoned.into_inner().0,
        };
    }
}

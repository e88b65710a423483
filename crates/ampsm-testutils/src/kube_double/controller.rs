//! What a cluster does between API calls, in one `tick`: the kubelet part
//! (start pods as local processes, watch them exit, kill deleted ones), the
//! garbage collector (pods of deleted Jobs), the Job controller (Indexed and
//! NonIndexed Jobs, per-index backoff, deadlines, suspension, conditions) and
//! the TTL-after-finished controller.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use nix::sys::signal::Signal;
use serde_json::{Map, Value, json};

use super::store::{
    Key, PodRuntime, State, compress_indexes, int_at, kill_group, now_rfc3339, rfc3339_in, str_at,
};

/// The node every pod of the double is "scheduled" on.
pub(super) const NODE_NAME: &str = "kube-double-node";

pub(super) const INDEX_KEY: &str = "batch.kubernetes.io/job-completion-index";
const FAILURE_COUNT_KEY: &str = "batch.kubernetes.io/job-index-failure-count";

/// One pass of every controller.
pub(super) fn tick(st: &mut State) {
    st.reap();
    observe_pods(st);
    collect_garbage(st);
    let keys: Vec<Key> = st.jobs.keys().cloned().collect();
    for key in &keys {
        sync_job(st, key);
    }
    start_pending_pods(st);
    finish_foreground_deletions(st);
    expire_finished_jobs(st);
    let live = st.live_processes();
    st.peak_live = st.peak_live.max(live);
}

/// The uid of the Job that controls a pod, if any.
fn controller_uid(pod: &Value) -> Option<String> {
    pod.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|owner| owner.get("controller").and_then(Value::as_bool) == Some(true))
        .and_then(|owner| owner.get("uid"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn job_key_by_uid(st: &State, uid: &str) -> Option<Key> {
    st.jobs.iter().find(|(_, job)| str_at(job, "/metadata/uid") == uid).map(|(key, _)| key.clone())
}

fn has_condition(job: &Value, kind: &str) -> bool {
    job.pointer("/status/conditions").and_then(Value::as_array).is_some_and(|conditions| {
        conditions.iter().any(|c| str_at(c, "/type") == kind && str_at(c, "/status") == "True")
    })
}

/// Finished: a `Complete` or `Failed` condition is true.
pub(super) fn job_finished(job: &Value) -> bool {
    has_condition(job, "Complete") || has_condition(job, "Failed")
}

/// Whether the Job controller still syncs this Job (so pods it owns must be
/// counted before they may disappear).
fn job_is_live(st: &State, uid: &str) -> bool {
    job_key_by_uid(st, uid)
        .and_then(|key| st.jobs.get(&key))
        .is_some_and(|job| job.pointer("/metadata/deletionTimestamp").is_none() && !job_finished(job))
}

fn phase(pod: &Value) -> &str {
    str_at(pod, "/status/phase")
}

fn is_terminal(pod: &Value) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

fn is_terminating(pod: &Value) -> bool {
    pod.pointer("/metadata/deletionTimestamp").is_some()
}

fn first_container_name(pod: &Value) -> String {
    str_at(pod, "/spec/containers/0/name").to_owned()
}

fn condition(kind: &str, status: &str, reason: Option<&str>, now: &str) -> Value {
    let mut c = json!({"type": kind, "status": status, "lastProbeTime": null, "lastTransitionTime": now});
    if let Some(reason) = reason {
        c["reason"] = json!(reason);
    }
    c
}

/// Marks a pod as being deleted: SIGTERM now, SIGKILL after the grace period
/// (`grace` or the pod's `terminationGracePeriodSeconds`, default 30).
/// Returns whether the pod was removed at once (nothing left to wait for).
pub(super) fn terminate_pod(st: &mut State, key: &Key, grace: Option<u64>) -> bool {
    let Some(entry) = st.pods.get_mut(key) else { return true };
    let grace = grace
        .or_else(|| int_at(&entry.object, "/spec/terminationGracePeriodSeconds").map(|g| g.max(0) as u64))
        .unwrap_or(30);
    let kill_at = Instant::now() + Duration::from_secs(grace);
    if entry.runtime.alive()
        && let Some(pgid) = entry.runtime.pgid
    {
        let earlier = entry.runtime.kill_at.is_none_or(|at| kill_at < at);
        if earlier {
            entry.runtime.kill_at = Some(kill_at);
            kill_group(pgid, if grace == 0 { Signal::SIGKILL } else { Signal::SIGTERM });
        }
    }
    if is_terminating(&entry.object) {
        return false;
    }
    let mut object = entry.object.clone();
    object["metadata"]["deletionTimestamp"] = json!(rfc3339_in(Duration::from_secs(grace)));
    object["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
    st.put_pod_object(key, object);
    if pod_removable(st, key) {
        st.remove_pod(key);
        return true;
    }
    false
}

/// A terminating pod may go once its process is gone and the Job controller
/// has counted it (or has nothing to count).
fn pod_removable(st: &State, key: &Key) -> bool {
    let Some(entry) = st.pods.get(key) else { return false };
    if !is_terminating(&entry.object) || entry.runtime.alive() {
        return false;
    }
    let counted = entry.runtime.counted || !is_terminal(&entry.object);
    counted || controller_uid(&entry.object).is_none_or(|uid| !job_is_live(st, &uid))
}

/// Kubelet: turn exits into pod status, enforce grace periods, remove pods
/// whose deletion is complete.
fn observe_pods(st: &mut State) {
    let now = Instant::now();
    let keys: Vec<Key> = st.pods.keys().cloned().collect();
    for key in keys {
        let Some(entry) = st.pods.get_mut(&key) else { continue };
        if let (Some(kill_at), Some(pgid)) = (entry.runtime.kill_at, entry.runtime.pgid)
            && entry.runtime.alive()
            && kill_at <= now
        {
            kill_group(pgid, Signal::SIGKILL);
        }
        if let Some(exit) = entry.runtime.exit
            && phase(&entry.object) == "Running"
        {
            let code = exit.code().unwrap_or_else(|| 128 + exit.signal().unwrap_or(9));
            let started = entry.runtime.started_at.clone().unwrap_or_else(now_rfc3339);
            let object = terminated_status(&entry.object, code, None, &started);
            st.put_pod_object(&key, object);
        }
        if pod_removable(st, &key) {
            st.remove_pod(&key);
        }
    }
}

/// The pod with its container terminated (`reason` defaults to
/// Completed/Error from the exit code).
fn terminated_status(pod: &Value, code: i32, start_error: Option<&str>, started: &str) -> Value {
    let now = now_rfc3339();
    let mut pod = pod.clone();
    let succeeded = code == 0 && start_error.is_none();
    let reason = match start_error {
        Some(_) => "StartError",
        None if succeeded => "Completed",
        None => "Error",
    };
    let mut terminated = json!({
        "exitCode": code,
        "reason": reason,
        "startedAt": if start_error.is_some() { Value::Null } else { json!(started) },
        "finishedAt": now,
        "containerID": str_at(&pod, "/status/containerStatuses/0/containerID"),
    });
    if let Some(message) = start_error {
        terminated["message"] = json!(message);
    }
    let status = &mut pod["status"];
    status["phase"] = json!(if succeeded { "Succeeded" } else { "Failed" });
    let pod_reason = if succeeded { "PodCompleted" } else { "PodFailed" };
    status["conditions"] = json!([
        condition("PodReadyToStartContainers", "False", None, &now),
        condition("Initialized", "True", Some(pod_reason), &now),
        condition("Ready", "False", Some(pod_reason), &now),
        condition("ContainersReady", "False", Some(pod_reason), &now),
        condition("PodScheduled", "True", None, &now),
    ]);
    let image = str_at(&pod, "/spec/containers/0/image").to_owned();
    let name = first_container_name(&pod);
    pod["status"]["containerStatuses"] = json!([{
        "name": name,
        "image": image,
        "imageID": "",
        "containerID": terminated["containerID"].clone(),
        "ready": false,
        "started": false,
        "restartCount": 0,
        "state": {"terminated": terminated},
        "lastState": {},
    }]);
    pod
}

/// Garbage collector: pods whose controlling Job is gone, or is being
/// deleted in the foreground, are deleted.
fn collect_garbage(st: &mut State) {
    let doomed: Vec<Key> = st
        .pods
        .iter()
        .filter(|(_, entry)| !is_terminating(&entry.object))
        .filter(|(_, entry)| {
            controller_uid(&entry.object).is_some_and(|uid| match job_key_by_uid(st, &uid) {
                None => true,
                Some(key) => {
                    st.jobs.get(&key).is_some_and(|job| job.pointer("/metadata/deletionTimestamp").is_some())
                }
            })
        })
        .map(|(key, _)| key.clone())
        .collect();
    for key in doomed {
        terminate_pod(st, &key, None);
    }
}

/// Jobs deleted in the foreground go once their pods are gone.
fn finish_foreground_deletions(st: &mut State) {
    let deleting: Vec<(Key, String)> = st
        .jobs
        .iter()
        .filter(|(_, job)| job.pointer("/metadata/deletionTimestamp").is_some())
        .map(|(key, job)| (key.clone(), str_at(job, "/metadata/uid").to_owned()))
        .collect();
    for (key, uid) in deleting {
        let has_pods =
            st.pods.values().any(|entry| controller_uid(&entry.object).as_deref() == Some(uid.as_str()));
        if !has_pods {
            st.remove_job(&key);
            st.job_runtime.remove(&uid);
        }
    }
}

/// Starts a foreground deletion of a Job (as the TTL controller and
/// `propagationPolicy: Foreground` do).
pub(super) fn start_foreground_deletion(st: &mut State, key: &Key) {
    let Some(job) = st.jobs.get(key) else { return };
    if job.pointer("/metadata/deletionTimestamp").is_some() {
        return;
    }
    let mut job = job.clone();
    job["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
    job["metadata"]["deletionGracePeriodSeconds"] = json!(0);
    let finalizers = job["metadata"]["finalizers"].as_array().cloned().unwrap_or_default();
    let mut finalizers: Vec<Value> = finalizers.into_iter().filter(|f| f != "foregroundDeletion").collect();
    finalizers.push(json!("foregroundDeletion"));
    job["metadata"]["finalizers"] = Value::Array(finalizers);
    st.put_job(key, job);
}

/// TTL-after-finished: delete finished Jobs whose TTL has run out.
fn expire_finished_jobs(st: &mut State) {
    let now = Instant::now();
    let expired: Vec<Key> = st
        .jobs
        .iter()
        .filter(|(_, job)| {
            let Some(ttl) = int_at(job, "/spec/ttlSecondsAfterFinished") else { return false };
            let uid = str_at(job, "/metadata/uid");
            st.job_runtime
                .get(uid)
                .and_then(|rt| rt.finished)
                .is_some_and(|finished| finished + Duration::from_secs(ttl.max(0) as u64) <= now)
        })
        .map(|(key, _)| key.clone())
        .collect();
    for key in expired {
        start_foreground_deletion(st, &key);
    }
}

/// The parts of a Job spec the controller reads, with API defaults applied.
struct JobSpec {
    indexed: bool,
    completions: Option<i64>,
    parallelism: i64,
    backoff_limit: i64,
    backoff_limit_per_index: Option<i64>,
    max_failed_indexes: Option<i64>,
    active_deadline: Option<i64>,
    suspend: bool,
}

impl JobSpec {
    fn of(job: &Value) -> JobSpec {
        let per_index = int_at(job, "/spec/backoffLimitPerIndex");
        JobSpec {
            indexed: str_at(job, "/spec/completionMode") == "Indexed",
            completions: int_at(job, "/spec/completions"),
            parallelism: int_at(job, "/spec/parallelism").unwrap_or(1),
            backoff_limit: int_at(job, "/spec/backoffLimit").unwrap_or(if per_index.is_some() {
                i64::from(i32::MAX)
            } else {
                6
            }),
            backoff_limit_per_index: per_index,
            max_failed_indexes: int_at(job, "/spec/maxFailedIndexes"),
            active_deadline: int_at(job, "/spec/activeDeadlineSeconds"),
            suspend: job.pointer("/spec/suspend").and_then(Value::as_bool).unwrap_or(false),
        }
    }
}

fn pod_index(pod: &Value) -> Option<i64> {
    pod.pointer("/metadata/annotations")
        .and_then(|a| a.get(INDEX_KEY))
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
}

/// Sets (or flips) a condition of the Job status; keeps its transition time
/// when the status does not change.
fn set_condition(conditions: &mut Vec<Value>, kind: &str, status: &str, reason: &str, message: &str) {
    let now = now_rfc3339();
    if let Some(existing) = conditions.iter_mut().find(|c| str_at(c, "/type") == kind) {
        let same = str_at(existing, "/status") == status
            && str_at(existing, "/reason") == reason
            && str_at(existing, "/message") == message;
        if same {
            return;
        }
        if str_at(existing, "/status") != status {
            existing["status"] = json!(status);
            existing["lastTransitionTime"] = json!(now);
        }
        existing["lastProbeTime"] = json!(now);
        existing["reason"] = json!(reason);
        existing["message"] = json!(message);
        return;
    }
    conditions.push(json!({
        "type": kind,
        "status": status,
        "lastProbeTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }));
}

/// The Job controller for one Job.
fn sync_job(st: &mut State, key: &Key) {
    let Some(job) = st.jobs.get(key).cloned() else { return };
    if job.pointer("/metadata/deletionTimestamp").is_some() || job_finished(&job) {
        return;
    }
    let uid = str_at(&job, "/metadata/uid").to_owned();
    let spec = JobSpec::of(&job);
    let now = Instant::now();
    let backoff_base = st.retry_backoff;

    // Count pods that reached a terminal phase (the real controller does this
    // with a tracking finalizer, then forgets the pod).
    let owned: Vec<Key> = st
        .pods
        .iter()
        .filter(|(_, entry)| controller_uid(&entry.object).as_deref() == Some(uid.as_str()))
        .map(|(key, _)| key.clone())
        .collect();
    {
        let rt = st.job_runtime.entry(uid.clone()).or_default();
        for pod_key in &owned {
            let Some(entry) = st.pods.get_mut(pod_key) else { continue };
            if entry.runtime.counted || !is_terminal(&entry.object) {
                continue;
            }
            entry.runtime.counted = true;
            let index = pod_index(&entry.object);
            if phase(&entry.object) == "Succeeded" {
                match index {
                    Some(i) if spec.indexed => {
                        if spec.completions.is_none_or(|c| i < c) {
                            rt.succeeded_indexes.insert(i);
                        }
                    }
                    _ => rt.succeeded_pods += 1,
                }
            } else {
                rt.failed_pods += 1;
                let slot = if spec.indexed { index.unwrap_or(-1) } else { -1 };
                let failures = rt.index_failures.entry(slot).or_insert(0);
                *failures += 1;
                let exponent = (*failures - 1).clamp(0, 6) as u32;
                let delay = (backoff_base * 2u32.pow(exponent)).min(backoff_base * 36);
                rt.retry_after.insert(slot, now + delay);
            }
        }
    }

    let active: Vec<Key> = owned
        .iter()
        .filter(|k| st.pods.get(*k).is_some_and(|e| !is_terminal(&e.object) && !is_terminating(&e.object)))
        .cloned()
        .collect();

    let rt = st.job_runtime.entry(uid.clone()).or_default();
    let failed_indexes: BTreeSet<i64> = match spec.backoff_limit_per_index {
        Some(limit) if spec.indexed => rt
            .index_failures
            .iter()
            .filter(|(index, failures)| {
                **index >= 0 && **failures > limit && !rt.succeeded_indexes.contains(index)
            })
            .map(|(index, _)| *index)
            .collect(),
        _ => BTreeSet::new(),
    };
    let succeeded = if spec.indexed { rt.succeeded_indexes.len() as i64 } else { rt.succeeded_pods };

    let mut status = job.get("status").cloned().unwrap_or_else(|| json!({}));
    let mut conditions: Vec<Value> = status["conditions"].as_array().cloned().unwrap_or_default();

    if !spec.suspend && rt.started.is_none() {
        rt.started = Some(now);
        status["startTime"] = json!(now_rfc3339());
    }

    // Failure criteria, in the real controller's order.
    if rt.outcome.is_none() {
        let past_deadline = spec.active_deadline.is_some_and(|secs| {
            !spec.suspend
                && rt
                    .started
                    .is_some_and(|t| now.duration_since(t) >= Duration::from_secs(secs.max(0) as u64))
        });
        rt.outcome = if rt.failed_pods > spec.backoff_limit {
            Some(("FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit"))
        } else if past_deadline {
            Some(("FailureTarget", "DeadlineExceeded", "Job was active longer than specified deadline"))
        } else if spec.backoff_limit_per_index.is_some()
            && spec.max_failed_indexes.is_some_and(|max| failed_indexes.len() as i64 > max)
        {
            Some((
                "FailureTarget",
                "MaxFailedIndexesExceeded",
                "Job has exceeded the specified maximal number of failed indexes",
            ))
        } else if spec.backoff_limit_per_index.is_some()
            && !failed_indexes.is_empty()
            && failed_indexes.len() as i64 + succeeded >= spec.completions.unwrap_or(0)
        {
            Some(("FailureTarget", "FailedIndexes", "Job has failed indexes"))
        } else {
            None
        };
    }
    // Success criteria.
    if rt.outcome.is_none() && !spec.suspend && active.is_empty() {
        let complete = match spec.completions {
            Some(completions) => succeeded >= completions,
            None => rt.succeeded_pods > 0,
        };
        if complete {
            rt.outcome = Some((
                "SuccessCriteriaMet",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
            ));
        }
    }

    let mut to_terminate: Vec<(Key, bool)> = Vec::new();
    let mut to_create: Vec<Option<i64>> = Vec::new();
    if let Some((kind, reason, message)) = rt.outcome {
        set_condition(&mut conditions, kind, "True", reason, message);
        // Every pod still running counts as failed when a Job fails.
        to_terminate.extend(active.iter().map(|k| (k.clone(), kind == "FailureTarget")));
    } else if spec.suspend {
        if rt.started.take().is_some() {
            status.as_object_mut().map(|s| s.remove("startTime"));
        }
        set_condition(&mut conditions, "Suspended", "True", "JobSuspended", "Job suspended");
        to_terminate.extend(active.iter().map(|k| (k.clone(), false)));
    } else {
        if has_condition(&job, "Suspended") {
            set_condition(&mut conditions, "Suspended", "False", "JobResumed", "Job resumed");
            rt.started = Some(now);
            status["startTime"] = json!(now_rfc3339());
        }
        // Create pods up to parallelism.
        let slots = (spec.parallelism - active.len() as i64).max(0);
        if spec.indexed {
            let busy: BTreeSet<i64> =
                active.iter().filter_map(|k| st.pods.get(k)).filter_map(|e| pod_index(&e.object)).collect();
            let rt = st.job_runtime.entry(uid.clone()).or_default();
            let wanted = (0..spec.completions.unwrap_or(0))
                .filter(|i| {
                    !rt.succeeded_indexes.contains(i) && !failed_indexes.contains(i) && !busy.contains(i)
                })
                .filter(|i| rt.retry_after.get(i).is_none_or(|at| *at <= now))
                .take(slots as usize);
            to_create.extend(wanted.map(Some));
        } else {
            let rt = st.job_runtime.entry(uid.clone()).or_default();
            let want = match spec.completions {
                Some(completions) => spec.parallelism.min(completions - rt.succeeded_pods),
                None if rt.succeeded_pods > 0 => 0,
                None => spec.parallelism,
            };
            let missing = (want - active.len() as i64).max(0);
            if rt.retry_after.get(&-1).is_none_or(|at| *at <= now) {
                to_create.extend((0..missing).map(|_| None));
            }
        }
    }

    for (pod_key, count_as_failed) in &to_terminate {
        if let Some(entry) = st.pods.get_mut(pod_key)
            && !entry.runtime.counted
        {
            entry.runtime.counted = true;
            if *count_as_failed {
                st.job_runtime.entry(uid.clone()).or_default().failed_pods += 1;
            }
        }
        terminate_pod(st, pod_key, None);
    }
    for index in &to_create {
        create_pod(st, &job, *index);
    }

    // Recount after the changes above.
    let mut active_count = 0;
    let mut ready = 0;
    let mut terminating = 0;
    for entry in st.pods.values() {
        if controller_uid(&entry.object).as_deref() != Some(uid.as_str()) || is_terminal(&entry.object) {
            continue;
        }
        if is_terminating(&entry.object) {
            terminating += 1;
        } else {
            active_count += 1;
            if phase(&entry.object) == "Running" {
                ready += 1;
            }
        }
    }
    let rt = st.job_runtime.entry(uid.clone()).or_default();
    if let Some((kind, reason, message)) = rt.outcome
        && active_count == 0
        && terminating == 0
    {
        let terminal = if kind == "FailureTarget" { "Failed" } else { "Complete" };
        set_condition(&mut conditions, terminal, "True", reason, message);
        if terminal == "Complete" {
            status["completionTime"] = json!(now_rfc3339());
        }
        rt.finished = Some(now);
    }

    let succeeded = if spec.indexed { rt.succeeded_indexes.len() as i64 } else { rt.succeeded_pods };
    let object = status.as_object_mut().map(std::mem::take).unwrap_or_default();
    let mut status = Map::new();
    for (field, value) in object {
        if !matches!(
            field.as_str(),
            "active"
                | "succeeded"
                | "failed"
                | "ready"
                | "terminating"
                | "completedIndexes"
                | "failedIndexes"
                | "conditions"
        ) {
            status.insert(field, value);
        }
    }
    // `active`, `succeeded` and `failed` are omitted when zero, as the API
    // server writes them.
    if active_count > 0 {
        status.insert("active".into(), json!(active_count));
    }
    if succeeded > 0 {
        status.insert("succeeded".into(), json!(succeeded));
    }
    if rt.failed_pods > 0 {
        status.insert("failed".into(), json!(rt.failed_pods));
    }
    status.insert("ready".into(), json!(ready));
    status.insert("terminating".into(), json!(terminating));
    if spec.indexed && !rt.succeeded_indexes.is_empty() {
        status.insert("completedIndexes".into(), json!(compress_indexes(&rt.succeeded_indexes)));
    }
    if spec.indexed && spec.backoff_limit_per_index.is_some() {
        status.insert("failedIndexes".into(), json!(compress_indexes(&failed_indexes)));
    }
    if !conditions.is_empty() {
        status.insert("conditions".into(), Value::Array(conditions));
    }
    status.insert("uncountedTerminatedPods".into(), json!({}));
    let mut job = job;
    job["status"] = Value::Object(status);
    st.put_job(key, job);
}

/// Creates one pod of a Job (Pending; the kubelet part starts it).
fn create_pod(st: &mut State, job: &Value, index: Option<i64>) {
    let job_name = str_at(job, "/metadata/name").to_owned();
    let namespace = str_at(job, "/metadata/namespace").to_owned();
    let job_uid = str_at(job, "/metadata/uid").to_owned();
    let prefix = match index {
        Some(i) => format!("{job_name}-{i}-"),
        None => format!("{job_name}-"),
    };
    let name = loop {
        let candidate = format!("{prefix}{}", st.random_suffix());
        if !st.pods.contains_key(&(namespace.clone(), candidate.clone())) {
            break candidate;
        }
    };
    let template = job.pointer("/spec/template").cloned().unwrap_or_else(|| json!({}));
    let mut labels = template.pointer("/metadata/labels").cloned().unwrap_or_else(|| json!({}));
    let mut annotations = template.pointer("/metadata/annotations").cloned().unwrap_or_else(|| json!({}));
    let mut spec = template.get("spec").cloned().unwrap_or_else(|| json!({}));
    if let Some(i) = index {
        labels[INDEX_KEY] = json!(i.to_string());
        annotations[INDEX_KEY] = json!(i.to_string());
        if job.pointer("/spec/backoffLimitPerIndex").is_some() {
            let rt = st.job_runtime.entry(job_uid.clone()).or_default();
            let failures = rt.index_failures.get(&i).copied().unwrap_or(0);
            annotations[FAILURE_COUNT_KEY] = json!(failures.to_string());
        }
        // The index reaches the containers through the downward API.
        if let Some(containers) = spec.get_mut("containers").and_then(Value::as_array_mut) {
            for container in containers {
                let env = container.as_object_mut().map(|c| c.entry("env").or_insert_with(|| json!([])));
                if let Some(Value::Array(env)) = env
                    && !env.iter().any(|e| str_at(e, "/name") == "JOB_COMPLETION_INDEX")
                {
                    env.push(json!({
                        "name": "JOB_COMPLETION_INDEX",
                        "valueFrom": {"fieldRef": {
                            "apiVersion": "v1",
                            "fieldPath": format!("metadata.annotations['{INDEX_KEY}']"),
                        }},
                    }));
                }
            }
        }
    }
    spec["nodeName"] = json!(NODE_NAME);
    let now = now_rfc3339();
    let pod = json!({
        "metadata": {
            "name": name,
            "generateName": prefix,
            "namespace": namespace,
            "uid": uuid::Uuid::new_v4().to_string(),
            "creationTimestamp": now,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [{
                "apiVersion": "batch/v1",
                "kind": "Job",
                "name": job_name,
                "uid": job_uid,
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": spec,
        "status": {
            "phase": "Pending",
            "conditions": [condition("PodScheduled", "True", None, &now)],
            "qosClass": "BestEffort",
        },
    });
    st.job_runtime.entry(job_uid).or_default().pods_created += 1;
    st.add_pod((namespace, name), pod, PodRuntime::default());
}

/// Why a pod's container cannot start yet or at all.
enum Blocked {
    /// Stays Pending, retried every tick (e.g. a missing Secret):
    /// container waiting with this reason and message.
    Waiting(&'static str, String),
    /// The pod fails: container terminated with StartError, exit code 128.
    Fails(String),
}

/// What a container runs.
struct Launch {
    argv: Vec<String>,
    env: Vec<(String, String)>,
    cwd: PathBuf,
}

/// Kubelet: start the process of every Pending pod.
fn start_pending_pods(st: &mut State) {
    let pending: Vec<Key> = st
        .pods
        .iter()
        .filter(|(_, e)| {
            phase(&e.object) == "Pending"
                && !is_terminating(&e.object)
                && e.runtime.child.is_none()
                && !e.runtime.never_started
        })
        .map(|(k, _)| k.clone())
        .collect();
    for key in pending {
        let Some(entry) = st.pods.get(&key) else { continue };
        let pod = entry.object.clone();
        let log_path = st.scratch.join("logs").join(format!("{}_{}.log", key.0, key.1));
        let home = st.scratch.join("home").join(format!("{}_{}", key.0, key.1));
        match prepare(st, &pod, &home) {
            Err(Blocked::Waiting(reason, message)) => {
                let mut object = pod.clone();
                object["status"]["containerStatuses"] = json!([{
                    "name": first_container_name(&pod),
                    "image": str_at(&pod, "/spec/containers/0/image"),
                    "imageID": "",
                    "ready": false,
                    "started": false,
                    "restartCount": 0,
                    "state": {"waiting": {"reason": reason, "message": message}},
                    "lastState": {},
                }]);
                st.put_pod_object(&key, object);
            }
            Err(Blocked::Fails(message)) => fail_to_start(st, &key, &pod, &log_path, &message),
            Ok(launch) => match spawn(&launch, &log_path, &home) {
                Ok(child) => {
                    let pid = child.id() as i32;
                    let started = now_rfc3339();
                    if let Some(entry) = st.pods.get_mut(&key) {
                        entry.runtime.child = Some(child);
                        entry.runtime.pgid = Some(pid);
                        entry.runtime.log_path = Some(log_path);
                        entry.runtime.started_at = Some(started.clone());
                    }
                    let object = running_status(&pod, pid, &started);
                    st.put_pod_object(&key, object);
                }
                Err(err) => {
                    let program = launch.argv.first().cloned().unwrap_or_default();
                    let message = if err.kind() == std::io::ErrorKind::NotFound {
                        format!(
                            "KubeDouble: exec: {program:?}: executable file not found in $PATH (or workingDir missing)"
                        )
                    } else {
                        format!("KubeDouble: exec: {program:?}: {err}")
                    };
                    fail_to_start(st, &key, &pod, &log_path, &message);
                }
            },
        }
    }
}

fn fail_to_start(st: &mut State, key: &Key, pod: &Value, log_path: &Path, message: &str) {
    let _ = std::fs::create_dir_all(log_path.parent().unwrap_or(Path::new(".")));
    let _ = File::create(log_path);
    if let Some(entry) = st.pods.get_mut(key) {
        entry.runtime.never_started = true;
        entry.runtime.log_path = Some(log_path.to_owned());
    }
    let object = terminated_status(pod, 128, Some(message), "");
    st.put_pod_object(key, object);
}

fn running_status(pod: &Value, pid: i32, started: &str) -> Value {
    let mut pod = pod.clone();
    let status = &mut pod["status"];
    status["phase"] = json!("Running");
    status["hostIP"] = json!("127.0.0.1");
    status["hostIPs"] = json!([{"ip": "127.0.0.1"}]);
    status["podIP"] = json!("127.0.0.1");
    status["podIPs"] = json!([{"ip": "127.0.0.1"}]);
    status["startTime"] = json!(started);
    status["conditions"] = json!([
        condition("PodReadyToStartContainers", "True", None, started),
        condition("Initialized", "True", None, started),
        condition("Ready", "True", None, started),
        condition("ContainersReady", "True", None, started),
        condition("PodScheduled", "True", None, started),
    ]);
    let name = first_container_name(&pod);
    let image = str_at(&pod, "/spec/containers/0/image").to_owned();
    pod["status"]["containerStatuses"] = json!([{
        "name": name,
        "image": image,
        "imageID": "",
        "containerID": format!("kube-double://{pid}"),
        "ready": true,
        "started": true,
        "restartCount": 0,
        "state": {"running": {"startedAt": started}},
        "lastState": {},
    }]);
    pod
}

fn spawn(launch: &Launch, log_path: &Path, home: &Path) -> std::io::Result<std::process::Child> {
    if let Some(dir) = log_path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::create_dir_all(home)?;
    let log = OpenOptions::new().create(true).append(true).open(log_path)?;
    let log_err = log.try_clone()?;
    let (program, args) = launch.argv.split_first().ok_or_else(|| std::io::Error::other("empty command"))?;
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&launch.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err))
        .process_group(0);
    command.spawn()
}

/// Resolves what the pod's container runs, or why it cannot.
fn prepare(st: &State, pod: &Value, home: &Path) -> Result<Launch, Blocked> {
    let namespace = str_at(pod, "/metadata/namespace");
    let containers = pod.pointer("/spec/containers").and_then(Value::as_array).cloned().unwrap_or_default();
    if pod.pointer("/spec/initContainers").and_then(Value::as_array).is_some_and(|c| !c.is_empty()) {
        return Err(Blocked::Fails("KubeDouble: initContainers are not modelled by the double".into()));
    }
    if containers.len() != 1 {
        return Err(Blocked::Fails(format!(
            "KubeDouble: the double runs pods with exactly one container (this pod has {})",
            containers.len()
        )));
    }
    let container = &containers[0];
    let name = str_at(container, "/name");
    let command: Vec<String> = string_list(container.get("command"));
    if command.is_empty() {
        return Err(Blocked::Fails(format!(
            "KubeDouble: container {name:?} has no command; the double runs local processes and has no image entrypoint to fall back on"
        )));
    }

    // Environment: what a container gets from its runtime and image, then the
    // pod spec's envFrom and env (later entries win).
    let mut env: Vec<(String, String)> = Vec::new();
    let path = std::env::var("PATH")
        .unwrap_or_else(|_| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    set_var(&mut env, "PATH", path);
    set_var(&mut env, "HOSTNAME", str_at(pod, "/metadata/name").to_owned());
    set_var(&mut env, "HOME", home.display().to_string());
    for (key, value) in &st.image_env {
        set_var(&mut env, key, value.clone());
    }
    for source in container.get("envFrom").and_then(Value::as_array).into_iter().flatten() {
        let prefix = str_at(source, "/prefix");
        if let Some(secret_ref) = source.get("secretRef") {
            let secret_name = str_at(secret_ref, "/name");
            let optional = secret_ref.get("optional").and_then(Value::as_bool).unwrap_or(false);
            match st.secrets.get(&(namespace.to_owned(), secret_name.to_owned())) {
                Some(secret) => {
                    for (key, value) in secret_data(secret) {
                        set_var(&mut env, &format!("{prefix}{key}"), value);
                    }
                }
                None if optional => {}
                None => {
                    return Err(Blocked::Waiting(
                        "CreateContainerConfigError",
                        format!("secret \"{secret_name}\" not found"),
                    ));
                }
            }
        }
        if let Some(map_ref) = source.get("configMapRef")
            && !map_ref.get("optional").and_then(Value::as_bool).unwrap_or(false)
        {
            return Err(Blocked::Waiting(
                "CreateContainerConfigError",
                format!(
                    "configmap \"{}\" not found (the double holds no ConfigMaps)",
                    str_at(map_ref, "/name")
                ),
            ));
        }
    }
    for var in container.get("env").and_then(Value::as_array).into_iter().flatten() {
        let var_name = str_at(var, "/name").to_owned();
        if let Some(value) = var.get("value").and_then(Value::as_str) {
            let value = expand(value, &env);
            set_var(&mut env, &var_name, value);
        } else if let Some(from) = var.get("valueFrom") {
            if let Some(value) = resolve_value_from(st, pod, namespace, from)? {
                set_var(&mut env, &var_name, value);
            }
        } else {
            set_var(&mut env, &var_name, String::new());
        }
    }

    // Volumes: only hostPath, mounted where it lives on this machine.
    let volumes = pod.pointer("/spec/volumes").and_then(Value::as_array).cloned().unwrap_or_default();
    for mount in container.get("volumeMounts").and_then(Value::as_array).into_iter().flatten() {
        let volume_name = str_at(mount, "/name");
        let mount_path = str_at(mount, "/mountPath");
        let Some(volume) = volumes.iter().find(|v| str_at(v, "/name") == volume_name) else {
            return Err(Blocked::Fails(format!(
                "KubeDouble: volumeMount {volume_name:?} names no volume of the pod"
            )));
        };
        let Some(host_path) = volume.get("hostPath") else {
            let kind = volume
                .as_object()
                .and_then(|v| v.keys().find(|k| *k != "name").cloned())
                .unwrap_or_else(|| "unknown".into());
            return Err(Blocked::Fails(format!(
                "KubeDouble: volume {volume_name:?} is of type {kind}; a local process can only see hostPath volumes mounted at their own path"
            )));
        };
        let mut source = PathBuf::from(str_at(host_path, "/path"));
        let sub_path = str_at(mount, "/subPath");
        if !sub_path.is_empty() {
            source = source.join(sub_path);
        }
        if source != Path::new(mount_path) {
            return Err(Blocked::Fails(format!(
                "KubeDouble: hostPath {} is mounted at {mount_path}; the double runs local processes, so mountPath must equal the host path",
                source.display()
            )));
        }
        let kind = str_at(host_path, "/type");
        let ok = match kind {
            "DirectoryOrCreate" => std::fs::create_dir_all(&source).is_ok(),
            "Directory" => source.is_dir(),
            "FileOrCreate" => {
                source.is_file() || OpenOptions::new().create(true).append(true).open(&source).is_ok()
            }
            "File" => source.is_file(),
            _ => true,
        };
        if !ok {
            return Err(Blocked::Fails(format!(
                "KubeDouble: hostPath {} is not a {kind} on this machine",
                source.display()
            )));
        }
    }

    let cwd = match container.get("workingDir").and_then(Value::as_str) {
        Some(dir) if !dir.is_empty() => {
            if !Path::new(dir).is_dir() {
                return Err(Blocked::Fails(format!(
                    "KubeDouble: workingDir {dir} does not exist on this machine"
                )));
            }
            PathBuf::from(dir)
        }
        _ => PathBuf::from("/"),
    };
    let mut argv: Vec<String> = command.iter().map(|part| expand(part, &env)).collect();
    argv.extend(string_list(container.get("args")).iter().map(|part| expand(part, &env)));
    Ok(Launch { argv, env, cwd })
}

fn resolve_value_from(
    st: &State,
    pod: &Value,
    namespace: &str,
    from: &Value,
) -> Result<Option<String>, Blocked> {
    if let Some(field_ref) = from.get("fieldRef") {
        return Ok(Some(field_value(pod, str_at(field_ref, "/fieldPath"))));
    }
    if let Some(key_ref) = from.get("secretKeyRef") {
        let secret_name = str_at(key_ref, "/name");
        let key = str_at(key_ref, "/key");
        let optional = key_ref.get("optional").and_then(Value::as_bool).unwrap_or(false);
        let found = st.secrets.get(&(namespace.to_owned(), secret_name.to_owned()));
        let Some(secret) = found else {
            if optional {
                return Ok(None);
            }
            return Err(Blocked::Waiting(
                "CreateContainerConfigError",
                format!("secret \"{secret_name}\" not found"),
            ));
        };
        return match secret_data(secret).remove(key) {
            Some(value) => Ok(Some(value)),
            None if optional => Ok(None),
            None => Err(Blocked::Waiting(
                "CreateContainerConfigError",
                format!("couldn't find key {key} in Secret {namespace}/{secret_name}"),
            )),
        };
    }
    if let Some(key_ref) = from.get("configMapKeyRef") {
        if key_ref.get("optional").and_then(Value::as_bool).unwrap_or(false) {
            return Ok(None);
        }
        return Err(Blocked::Waiting(
            "CreateContainerConfigError",
            format!("configmap \"{}\" not found (the double holds no ConfigMaps)", str_at(key_ref, "/name")),
        ));
    }
    Ok(None)
}

/// The downward API: `metadata.name`, `metadata.annotations['k']`, …
fn field_value(pod: &Value, path: &str) -> String {
    let keyed = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix("['").and_then(|r| r.strip_suffix("']")))
            .map(str::to_owned)
    };
    if let Some(key) = keyed("metadata.annotations") {
        return pod
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(&key))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
    }
    if let Some(key) = keyed("metadata.labels") {
        return pod
            .pointer("/metadata/labels")
            .and_then(|a| a.get(&key))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
    }
    match path {
        "metadata.name" => str_at(pod, "/metadata/name").to_owned(),
        "metadata.namespace" => str_at(pod, "/metadata/namespace").to_owned(),
        "metadata.uid" => str_at(pod, "/metadata/uid").to_owned(),
        "spec.nodeName" => NODE_NAME.to_owned(),
        "spec.serviceAccountName" => {
            let account = str_at(pod, "/spec/serviceAccountName");
            if account.is_empty() { "default".into() } else { account.to_owned() }
        }
        "status.hostIP" | "status.podIP" | "status.hostIPs" | "status.podIPs" => "127.0.0.1".to_owned(),
        _ => String::new(),
    }
}

/// A Secret's `data`, base64-decoded (lossy UTF-8).
fn secret_data(secret: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(data) = secret.get("data").and_then(Value::as_object) {
        for (key, value) in data {
            let decoded = value
                .as_str()
                .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
                .unwrap_or_default();
            out.insert(key.clone(), String::from_utf8_lossy(&decoded).into_owned());
        }
    }
    out
}

fn string_list(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

fn set_var(env: &mut Vec<(String, String)>, key: &str, value: String) {
    match env.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value,
        None => env.push((key.to_owned(), value)),
    }
}

/// Kubernetes variable references: `$(NAME)` becomes the value of an
/// earlier variable, `$$` a literal `$`; unknown references stay as written.
pub(super) fn expand(text: &str, env: &[(String, String)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
        {
            let name = &inner[..end];
            match env.iter().find(|(k, _)| k == name) {
                Some((_, value)) => out.push_str(value),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_references_expand_like_kubernetes() {
        let env = vec![("A".to_owned(), "1".to_owned()), ("B".to_owned(), "two".to_owned())];
        assert_eq!(expand("x$(A)y$(B)", &env), "x1ytwo");
        assert_eq!(expand("$$(A) $(MISSING) $HOME", &env), "$(A) $(MISSING) $HOME");
    }
}

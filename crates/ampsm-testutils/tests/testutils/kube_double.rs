//! Tests of `KubeDouble`, the test double of the Kubernetes API server (no
//! real cluster runs here): the real kube-rs client drives it over the
//! kubeconfig it writes, and its pods run as local processes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use ampsm_testutils::kube_double::KubeDouble;
use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{
    Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};

/// A kube-rs client configured only from the double's kubeconfig.
async fn client(double: &KubeDouble, dir: &Path, namespace: &str) -> Client {
    let path = dir.join("kubeconfig");
    double.write_kubeconfig(&path, namespace);
    let kubeconfig = Kubeconfig::read_from(&path).unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.unwrap();
    assert_eq!(config.default_namespace, namespace);
    Client::try_from(config).unwrap()
}

fn job(value: Value) -> Job {
    serde_json::from_value(value).unwrap()
}

/// An Indexed Job running `script` with `sh -c`.
fn indexed_job(name: &str, completions: i32, parallelism: i32, script: &str) -> Value {
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "completionMode": "Indexed",
            "completions": completions,
            "parallelism": parallelism,
            "template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": "busybox:1.36", "command": ["sh", "-c", script]}],
            }},
        },
    })
}

/// Polls the Job until `done` holds (panics after `limit`).
async fn wait_job(jobs: &Api<Job>, name: &str, limit: Duration, done: impl Fn(&Job) -> bool) -> Job {
    let start = Instant::now();
    loop {
        let job = jobs.get(name).await.unwrap();
        if done(&job) {
            return job;
        }
        assert!(start.elapsed() < limit, "job {name} not there after {limit:?}: {:?}", job.status);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn condition<'a>(job: &'a Job, kind: &str) -> Option<&'a k8s_openapi::api::batch::v1::JobCondition> {
    job.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == kind && c.status == "True")
}

fn finished(job: &Job) -> bool {
    condition(job, "Complete").is_some() || condition(job, "Failed").is_some()
}

fn condition_types(job: &Job) -> Vec<String> {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .map(|c| c.type_.clone())
        .collect()
}

/// The pid of a running pod's process (`containerID: kube-double://PID`).
fn pid_of(pod: &Pod) -> i32 {
    let id =
        pod.status.as_ref().unwrap().container_statuses.as_ref().unwrap()[0].container_id.clone().unwrap();
    id.strip_prefix("kube-double://").unwrap().parse().unwrap()
}

fn process_exists(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn api_error(err: kube::Error) -> (u16, String) {
    match err {
        kube::Error::Api(status) => (status.code, status.reason.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn indexed_job_retries_a_failing_index_then_fails_with_failed_indexes() {
    let double = KubeDouble::start();
    let dir = tempfile::tempdir().unwrap();
    let client = client(&double, dir.path(), "batch").await;
    let jobs: Api<Job> = Api::default_namespaced(client.clone());
    let pods: Api<Pod> = Api::default_namespaced(client);

    // The 0.2 s sleep keeps two pods alive together, so the parallelism
    // limit is visible in the peak process count.
    let mut spec = indexed_job(
        "fan",
        4,
        2,
        "echo index $JOB_COMPLETION_INDEX; sleep 0.2; [ $JOB_COMPLETION_INDEX != 2 ]",
    );
    spec["spec"]["backoffLimitPerIndex"] = json!(1);
    let created = jobs.create(&PostParams::default(), &job(spec)).await.unwrap();
    let meta = &created.metadata;
    assert!(meta.uid.is_some() && meta.creation_timestamp.is_some() && meta.resource_version.is_some());
    assert_eq!(
        created.spec.as_ref().unwrap().backoff_limit,
        Some(i32::MAX),
        "defaulted for backoffLimitPerIndex"
    );

    let done = wait_job(&jobs, "fan", Duration::from_secs(10), finished).await;
    let status = done.status.clone().unwrap();
    assert_eq!(
        status.completed_indexes.as_deref(),
        Some("0,1,3"),
        "three indexes, no run of three to compress"
    );
    assert_eq!(status.failed_indexes.as_deref(), Some("2"));
    assert_eq!(status.succeeded, Some(3));
    assert_eq!(status.failed, Some(2), "index 2 ran twice");
    assert_eq!(status.active, None, "zero counts are omitted");
    assert!(status.start_time.is_some());
    assert!(status.completion_time.is_none(), "completionTime is for success only");
    let failed = condition(&done, "Failed").expect("Failed condition");
    assert_eq!(failed.reason.as_deref(), Some("FailedIndexes"));
    assert_eq!(condition(&done, "FailureTarget").unwrap().reason.as_deref(), Some("FailedIndexes"));
    assert_eq!(condition_types(&done), ["FailureTarget", "Failed"]);

    assert_eq!(double.peak_live_processes(), 2, "at most (and at some point exactly) parallelism processes");
    assert_eq!(double.live_processes(), 0);

    // Pods: five (index 2 twice), found by both job-name labels, logs readable.
    for selector in ["batch.kubernetes.io/job-name=fan", "job-name=fan"] {
        let list = pods.list(&ListParams::default().labels(selector)).await.unwrap();
        assert_eq!(list.items.len(), 5, "{selector}");
    }
    let list = pods.list(&ListParams::default().labels("batch.kubernetes.io/job-name=fan")).await.unwrap();
    let mut by_index: Vec<(String, String, i32)> = Vec::new();
    for pod in &list.items {
        let name = pod.metadata.name.clone().unwrap();
        let index =
            pod.metadata.annotations.as_ref().unwrap()["batch.kubernetes.io/job-completion-index"].clone();
        assert_eq!(pod.metadata.labels.as_ref().unwrap()["batch.kubernetes.io/job-completion-index"], index);
        assert!(
            name.starts_with(&format!("fan-{index}-")) && name.len() == format!("fan-{index}-").len() + 5,
            "{name}"
        );
        let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.name.as_str(), owner.controller), ("Job", "fan", Some(true)));
        let status = pod.status.as_ref().unwrap();
        let code = status.container_statuses.as_ref().unwrap()[0]
            .state
            .as_ref()
            .unwrap()
            .terminated
            .as_ref()
            .unwrap()
            .exit_code;
        let phase = status.phase.clone().unwrap();
        assert_eq!(phase, if index == "2" { "Failed" } else { "Succeeded" });
        let log = pods
            .logs(&name, &LogParams { container: Some("main".into()), ..LogParams::default() })
            .await
            .unwrap();
        assert_eq!(log, format!("index {index}\n"));
        by_index.push((index, phase, code));
    }
    by_index.sort();
    let codes: Vec<i32> = by_index.iter().map(|(_, _, code)| *code).collect();
    assert_eq!(codes, [0, 0, 1, 1, 0]);
}

#[tokio::test]
async fn deleting_in_background_kills_the_processes_and_orphan_keeps_them() {
    let double = KubeDouble::start();
    let dir = tempfile::tempdir().unwrap();
    let client = client(&double, dir.path(), "del").await;
    let jobs: Api<Job> = Api::default_namespaced(client.clone());
    let pods: Api<Pod> = Api::default_namespaced(client);

    for name in ["bg", "orphan"] {
        let mut spec = indexed_job(name, 2, 2, "unused");
        spec["spec"]["template"]["spec"]["containers"][0]["command"] = json!(["sleep", "300"]);
        jobs.create(&PostParams::default(), &job(spec)).await.unwrap();
    }
    wait_job(&jobs, "bg", Duration::from_secs(5), |j| j.status.as_ref().and_then(|s| s.ready) == Some(2))
        .await;
    wait_job(&jobs, "orphan", Duration::from_secs(5), |j| j.status.as_ref().and_then(|s| s.ready) == Some(2))
        .await;
    assert_eq!(double.live_processes(), 4);
    let running = |name: &str| {
        let pods = pods.clone();
        let selector = format!("batch.kubernetes.io/job-name={name}");
        async move { pods.list(&ListParams::default().labels(&selector)).await.unwrap().items }
    };
    let bg_pids: Vec<i32> = running("bg").await.iter().map(pid_of).collect();
    let orphan_pids: Vec<i32> = running("orphan").await.iter().map(pid_of).collect();
    assert_eq!(bg_pids.len(), 2);
    assert!(bg_pids.iter().chain(&orphan_pids).all(|pid| process_exists(*pid)));

    let start = Instant::now();
    let answer = jobs.delete("bg", &DeleteParams::background()).await.unwrap();
    assert!(answer.is_right(), "a Status: the Job is gone at once");
    assert_eq!(api_error(jobs.get("bg").await.unwrap_err()), (404, "NotFound".to_owned()));
    while bg_pids.iter().any(|pid| process_exists(*pid)) || !running("bg").await.is_empty() {
        assert!(start.elapsed() < Duration::from_secs(2), "background delete left processes or pods");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(double.live_processes(), 2);

    // No propagationPolicy: batch/v1 Jobs orphan their pods.
    jobs.delete("orphan", &DeleteParams::default()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let left = running("orphan").await;
    assert_eq!(left.len(), 2);
    assert!(left.iter().all(|pod| pod.metadata.owner_references.is_none()));
    assert!(orphan_pids.iter().all(|pid| process_exists(*pid)));
    assert_eq!(double.live_processes(), 2);

    drop(double);
    assert!(orphan_pids.iter().all(|pid| !process_exists(*pid)), "Drop kills every process");
}

#[tokio::test]
async fn active_deadline_fails_the_job_and_kills_its_pods() {
    let double = KubeDouble::start();
    let dir = tempfile::tempdir().unwrap();
    let client = client(&double, dir.path(), "deadline").await;
    let jobs: Api<Job> = Api::default_namespaced(client.clone());
    let pods: Api<Pod> = Api::default_namespaced(client);

    let mut spec = indexed_job("slow", 1, 1, "sleep 300");
    spec["spec"]["activeDeadlineSeconds"] = json!(1);
    spec["spec"]["backoffLimitPerIndex"] = json!(3);
    jobs.create(&PostParams::default(), &job(spec)).await.unwrap();
    let start = Instant::now();
    let done = wait_job(&jobs, "slow", Duration::from_secs(5), finished).await;
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert_eq!(condition(&done, "Failed").unwrap().reason.as_deref(), Some("DeadlineExceeded"));
    assert_eq!(condition_types(&done), ["FailureTarget", "Failed"]);
    let status = done.status.unwrap();
    assert_eq!(status.failed, Some(1), "the killed pod counts as failed");
    assert_eq!(status.failed_indexes.as_deref(), Some(""), "no index used up its retries");
    assert_eq!(double.live_processes(), 0);
    assert!(pods.list(&ListParams::default().labels("job-name=slow")).await.unwrap().items.is_empty());
}

#[tokio::test]
async fn label_selectors_errors_suspend_and_watch() {
    let double = KubeDouble::start();
    let dir = tempfile::tempdir().unwrap();
    let client = client(&double, dir.path(), "sel").await;
    let jobs: Api<Job> = Api::default_namespaced(client.clone());

    for (name, app) in [("alpha", "a"), ("beta", "b")] {
        let mut spec = indexed_job(name, 3, 3, "echo $(JOB_COMPLETION_INDEX)");
        spec["metadata"]["labels"] = json!({"app": app, "team": "t"});
        spec["spec"]["suspend"] = json!(true);
        jobs.create(&PostParams::default(), &job(spec)).await.unwrap();
    }
    let names = |list: kube::core::ObjectList<Job>| {
        list.items.into_iter().map(|j| j.metadata.name.unwrap()).collect::<Vec<_>>()
    };
    let list = |selector: &'static str| {
        let jobs = jobs.clone();
        async move { jobs.list(&ListParams::default().labels(selector)).await.unwrap() }
    };
    assert_eq!(names(list("app=a").await), ["alpha"]);
    assert_eq!(names(list("app=a,team=t").await), ["alpha"]);
    assert_eq!(names(list("team=t").await), ["alpha", "beta"]);
    assert_eq!(names(list("app in (a,b),team").await), ["alpha", "beta"]);
    assert_eq!(names(list("app!=a").await), ["beta"]);
    assert!(names(list("app=c").await).is_empty());
    assert_eq!(
        names(jobs.list(&ListParams::default().fields("metadata.name=beta")).await.unwrap()),
        ["beta"]
    );

    // Errors.
    assert_eq!(api_error(jobs.get("missing").await.unwrap_err()), (404, "NotFound".into()));
    assert_eq!(api_error(jobs.delete("missing", &DeleteParams::background()).await.unwrap_err()).0, 404);
    let again = job(indexed_job("alpha", 1, 1, "true"));
    assert_eq!(
        api_error(jobs.create(&PostParams::default(), &again).await.unwrap_err()),
        (409, "AlreadyExists".into())
    );
    let mut empty = indexed_job("empty", 1, 1, "true");
    empty["spec"]["template"]["spec"]["containers"] = json!([]);
    match jobs.create(&PostParams::default(), &job(empty)).await.unwrap_err() {
        kube::Error::Api(status) => {
            assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
            assert!(
                status.message.contains("spec.template.spec.containers: Required value"),
                "{}",
                status.message
            );
        }
        other => panic!("{other:?}"),
    }
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    assert_eq!(api_error(pods.logs("nope", &LogParams::default()).await.unwrap_err()).0, 404);

    // Suspended: no pods, Suspended condition, no startTime.
    tokio::time::sleep(Duration::from_millis(250)).await;
    let alpha = jobs.get("alpha").await.unwrap();
    assert!(condition(&alpha, "Suspended").is_some());
    assert!(alpha.status.as_ref().unwrap().start_time.is_none());
    assert_eq!(double.pods().len(), 0);

    // Watch alpha from the listed version, resume it, see it complete.
    let version = list("app=a").await.metadata.resource_version.unwrap();
    let stream = jobs.watch(&WatchParams::default().labels("app=a").timeout(10), &version).await.unwrap();
    let mut stream = stream.boxed();
    let resume = json!({"spec": {"suspend": false}});
    jobs.patch("alpha", &PatchParams::default(), &Patch::Merge(&resume)).await.unwrap();
    let mut seen = Vec::new();
    while let Some(event) = stream.try_next().await.unwrap() {
        match event {
            WatchEvent::Modified(job) => {
                assert_eq!(job.metadata.name.as_deref(), Some("alpha"));
                seen.push(condition_types(&job));
                if condition(&job, "Complete").is_some() {
                    let status = job.status.unwrap();
                    assert_eq!(status.completed_indexes.as_deref(), Some("0-2"));
                    assert!(status.completion_time.is_some());
                    assert_eq!(condition(&jobs.get("alpha").await.unwrap(), "Suspended"), None);
                    break;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        seen.last().unwrap().ends_with(&["SuccessCriteriaMet".to_owned(), "Complete".to_owned()]),
        "{seen:?}"
    );
    let logs: Vec<String> = {
        let mut logs = Vec::new();
        for pod in pods.list(&ListParams::default().labels("job-name=alpha")).await.unwrap() {
            logs.push(pods.logs(&pod.metadata.name.unwrap(), &LogParams::default()).await.unwrap());
        }
        logs.sort();
        logs
    };
    assert_eq!(logs, ["0\n", "1\n", "2\n"], "$(JOB_COMPLETION_INDEX) expanded as Kubernetes does");
    // Immutable fields stay immutable.
    let change = json!({"spec": {"completions": 5}});
    assert_eq!(
        api_error(jobs.patch("beta", &PatchParams::default(), &Patch::Merge(&change)).await.unwrap_err()).0,
        422
    );
}

#[tokio::test]
async fn pods_get_env_secrets_host_paths_and_ttl() {
    let double = KubeDouble::start();
    double.set_image_env("FROM_IMAGE", "yes");
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    let client = client(&double, dir.path(), "env").await;
    let jobs: Api<Job> = Api::default_namespaced(client.clone());
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::default_namespaced(client.clone());
    let secret = serde_json::from_value(json!({
        "metadata": {"name": "creds"},
        "stringData": {"token": "s3cret"},
    }))
    .unwrap();
    secrets.create(&PostParams::default(), &secret).await.unwrap();

    let shared_path = shared.display().to_string();
    let script = "echo \"$JOB_COMPLETION_INDEX $TOKEN $GREETING $FROM_IMAGE $(pwd) ${HOME:+home} ${CARGO:-clean}\" > out-$JOB_COMPLETION_INDEX";
    let mut spec = indexed_job("env", 2, 2, script);
    let container = &mut spec["spec"]["template"]["spec"]["containers"][0];
    container["workingDir"] = json!(shared_path);
    container["env"] = json!([
        {"name": "NAME", "value": "world"},
        {"name": "GREETING", "value": "hello-$(NAME)"},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
    ]);
    container["volumeMounts"] = json!([{"name": "work", "mountPath": shared_path}]);
    spec["spec"]["template"]["spec"]["volumes"] =
        json!([{"name": "work", "hostPath": {"path": shared_path, "type": "Directory"}}]);
    spec["spec"]["ttlSecondsAfterFinished"] = json!(0);
    jobs.create(&PostParams::default(), &job(spec)).await.unwrap();

    let start = Instant::now();
    while double.jobs().iter().any(|j| j["metadata"]["name"] == "env") {
        assert!(start.elapsed() < Duration::from_secs(5), "ttlSecondsAfterFinished 0 should delete the Job");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(double.pods().is_empty(), "the TTL deletion takes the pods too");
    for index in 0..2 {
        let out = std::fs::read_to_string(shared.join(format!("out-{index}"))).unwrap();
        assert_eq!(out, format!("{index} s3cret hello-world yes {shared_path} home clean\n"));
    }

    // A container without a command cannot run in the double: the pod fails.
    let mut spec = indexed_job("nocmd", 1, 1, "unused");
    spec["spec"]["template"]["spec"]["containers"][0].as_object_mut().unwrap().remove("command");
    spec["spec"]["backoffLimitPerIndex"] = json!(0);
    jobs.create(&PostParams::default(), &job(spec)).await.unwrap();
    let done = wait_job(&jobs, "nocmd", Duration::from_secs(5), finished).await;
    assert_eq!(condition(&done, "Failed").unwrap().reason.as_deref(), Some("FailedIndexes"));
    let pod = &double.pods()[0];
    let terminated = &pod["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(terminated["reason"], "StartError");
    assert!(terminated["message"].as_str().unwrap().contains("no command"), "{terminated}");
}

#[tokio::test]
async fn max_failed_indexes_and_backoff_limit_end_jobs_early() {
    let double = KubeDouble::start();
    let dir = tempfile::tempdir().unwrap();
    let client = client(&double, dir.path(), "limits").await;
    let jobs: Api<Job> = Api::default_namespaced(client);

    // Index 0 fails at once; with maxFailedIndexes 0 the Job fails and the
    // still-running index 1 is killed (and counted as failed).
    let mut spec = indexed_job("maxed", 2, 2, "[ $JOB_COMPLETION_INDEX = 1 ] && exec sleep 300; exit 3");
    spec["spec"]["backoffLimitPerIndex"] = json!(0);
    spec["spec"]["maxFailedIndexes"] = json!(0);
    jobs.create(&PostParams::default(), &job(spec)).await.unwrap();
    let done = wait_job(&jobs, "maxed", Duration::from_secs(5), finished).await;
    assert_eq!(condition(&done, "Failed").unwrap().reason.as_deref(), Some("MaxFailedIndexesExceeded"));
    let status = done.status.unwrap();
    assert_eq!((status.failed_indexes.as_deref(), status.failed), (Some("0"), Some(2)));
    assert_eq!(double.live_processes(), 0);

    // NonIndexed: backoffLimit counts failures over the whole Job.
    let spec = json!({
        "metadata": {"name": "flaky"},
        "spec": {
            "backoffLimit": 1,
            "template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": "busybox", "command": ["false"]}],
            }},
        },
    });
    let created = jobs.create(&PostParams::default(), &job(spec)).await.unwrap();
    let created_spec = created.spec.unwrap();
    assert_eq!((created_spec.completions, created_spec.parallelism), (Some(1), Some(1)));
    assert_eq!(created_spec.completion_mode.as_deref(), Some("NonIndexed"));
    let done = wait_job(&jobs, "flaky", Duration::from_secs(5), finished).await;
    assert_eq!(condition(&done, "Failed").unwrap().reason.as_deref(), Some("BackoffLimitExceeded"));
    let status = done.status.unwrap();
    assert_eq!((status.failed, status.completed_indexes), (Some(2), None));
    let pods = double.pods();
    let flaky: Vec<&Value> = pods.iter().filter(|p| p["metadata"]["labels"]["job-name"] == "flaky").collect();
    assert_eq!(flaky.len(), 2);
    assert!(flaky.iter().all(|p| p["metadata"]["name"].as_str().unwrap().len() == "flaky-".len() + 5));
}

/// Sends one raw HTTP/1.1 request; returns status code and body.
fn raw(url: &str, method: &str, target: &str, body: Option<&Value>) -> (u16, Value) {
    let addr = url.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(addr).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (code, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[test]
fn plain_http_requests_are_recorded_with_their_shape() {
    let double = KubeDouble::start();
    let url = double.url();
    let (code, version) = raw(&url, "GET", "/version", None);
    assert_eq!((code, version["major"].as_str()), (200, Some("1")));

    let mut spec = indexed_job("raw", 1, 1, "sleep 300");
    spec["metadata"]["labels"] = json!({"app": "raw"});
    let (code, created) = raw(&url, "POST", "/apis/batch/v1/namespaces/ns1/jobs", Some(&spec));
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["kind"], "Job");
    assert_eq!(created["status"], json!({}));
    assert_eq!(created["spec"]["template"]["metadata"]["labels"]["batch.kubernetes.io/job-name"], "raw");
    let (code, status) = raw(&url, "POST", "/apis/batch/v1/namespaces/ns1/jobs", Some(&spec));
    assert_eq!(
        (code, status["kind"].as_str(), status["reason"].as_str()),
        (409, Some("Status"), Some("AlreadyExists"))
    );
    assert_eq!(status["message"], "jobs.batch \"raw\" already exists");

    let (code, listed) = raw(&url, "GET", "/apis/batch/v1/namespaces/ns1/jobs?labelSelector=app%3Draw", None);
    assert_eq!(
        (code, listed["kind"].as_str(), listed["items"].as_array().unwrap().len()),
        (200, Some("JobList"), 1)
    );
    let start = Instant::now();
    while double.live_processes() == 0 {
        assert!(start.elapsed() < Duration::from_secs(3));
        std::thread::sleep(Duration::from_millis(20));
    }
    let (code, deleting) = raw(
        &url,
        "DELETE",
        "/apis/batch/v1/namespaces/ns1/jobs/raw",
        Some(&json!({"propagationPolicy": "Foreground"})),
    );
    assert_eq!(code, 200);
    assert_eq!(deleting["metadata"]["finalizers"], json!(["foregroundDeletion"]));
    assert!(deleting["metadata"]["deletionTimestamp"].is_string());
    while !double.jobs().is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "foreground deletion should finish once the pod is gone"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(double.live_processes(), 0);
    let (code, missing) = raw(&url, "GET", "/api/v1/namespaces/ns1/pods/none/log", None);
    assert_eq!((code, missing["reason"].as_str()), (404, Some("NotFound")));

    let requests = double.requests();
    let shape: Vec<(String, String)> =
        requests.iter().map(|r| (r.method.clone(), r.route().to_owned())).collect();
    assert_eq!(
        shape,
        [
            ("GET", "/version"),
            ("POST", "/apis/batch/v1/namespaces/ns1/jobs"),
            ("POST", "/apis/batch/v1/namespaces/ns1/jobs"),
            ("GET", "/apis/batch/v1/namespaces/ns1/jobs"),
            ("DELETE", "/apis/batch/v1/namespaces/ns1/jobs/raw"),
            ("GET", "/api/v1/namespaces/ns1/pods/none/log"),
        ]
        .map(|(m, p)| (m.to_owned(), p.to_owned()))
    );
    assert_eq!(requests[1].body["spec"]["completionMode"], "Indexed");
    assert_eq!(requests[3].query("labelSelector").as_deref(), Some("app=raw"));
    assert_eq!(requests[4].body["propagationPolicy"], "Foreground");
}

#[tokio::test]
async fn kube_rs_requests_carry_the_token_and_delete_options() {
    let double = KubeDouble::start();
    let dir = tempfile::tempdir().unwrap();
    let client = client(&double, dir.path(), "shape").await;
    let info = client.apiserver_version().await.unwrap();
    assert_eq!(info.minor, "33");
    let jobs: Api<Job> = Api::default_namespaced(client);
    jobs.create(&PostParams::default(), &job(indexed_job("s", 1, 1, "true"))).await.unwrap();
    jobs.delete("s", &DeleteParams::foreground()).await.unwrap();
    let requests = double.requests();
    let post = requests.iter().find(|r| r.method == "POST").unwrap();
    assert_eq!(post.route(), "/apis/batch/v1/namespaces/shape/jobs");
    assert_eq!(post.header("authorization"), Some("Bearer kube-double-token"));
    assert_eq!(post.body["metadata"]["name"], "s");
    let delete = requests.iter().find(|r| r.method == "DELETE").unwrap();
    assert_eq!(delete.route(), "/apis/batch/v1/namespaces/shape/jobs/s");
    assert_eq!(delete.body["propagationPolicy"], "Foreground");
}

#[test]
fn followed_logs_stream_until_the_process_exits() {
    let double = KubeDouble::start();
    let url = double.url();
    let spec = indexed_job("talk", 1, 1, "echo one; sleep 0.5; echo two");
    assert_eq!(raw(&url, "POST", "/apis/batch/v1/namespaces/ns/jobs", Some(&spec)).0, 201);
    let start = Instant::now();
    let pod = loop {
        let pods = double.pods();
        if let Some(pod) = pods.iter().find(|p| p["status"]["phase"] == "Running") {
            break pod["metadata"]["name"].as_str().unwrap().to_owned();
        }
        assert!(start.elapsed() < Duration::from_secs(3), "no running pod");
        std::thread::sleep(Duration::from_millis(20));
    };
    let addr = url.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(stream, "GET /api/v1/namespaces/ns/pods/{pod}/log?follow=true HTTP/1.1\r\nHost: {addr}\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.contains("Transfer-Encoding: chunked"), "{response}");
    let (one, two) = (response.find("one\n").unwrap(), response.find("two\n").unwrap());
    assert!(one < two && response.ends_with("0\r\n\r\n"), "{response}");
    assert!(
        start.elapsed() >= Duration::from_millis(400),
        "the stream ends only when the process has exited"
    );
}

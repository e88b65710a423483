//! The Kubernetes scheduler, through the API server with kube-rs: one Indexed Job per submission.
//!
//! - **Submit**: a `batch/v1` Job with `completionMode: Indexed`, `completions` = the submission's tasks,
//!   `parallelism` = the most at once, `backoffLimitPerIndex: 1` (a pod lost with its node is tried once
//!   more; a worker that wrote a result exits 0, so an item is never retried by Kubernetes),
//!   `activeDeadlineSeconds` from the time limit, `ttlSecondsAfterFinished` (a day, so a restarted
//!   coordinator still finds it), and labels naming the batch and the submission. Each pod runs `sh -c
//!   'exec <program> batch worker <folder> "$JOB_COMPLETION_INDEX"'` in the configured image, with the
//!   shared work folder mounted at the same path (a PersistentVolumeClaim, else a `hostPath`), with
//!   `repository: path` the repositories mounted the same way, the agents' keys from a Secret
//!   (`envFrom`), the repository's credentials from another (`AMPSM_GIT_USERNAME`/`AMPSM_GIT_PASSWORD`,
//!   given to git for the clone only), and the configured service account and resources.
//! - **Phases**: the Job's `completedIndexes` and `failedIndexes`, then its pods (label
//!   `batch.kubernetes.io/job-name`) by their completion index; an index with neither is pending. A Job
//!   that is gone (404) knows no task.
//! - **Cancel**: delete the Job with `propagationPolicy: Background` (its pods and their processes go too;
//!   without a policy batch/v1 would leave the pods running).
//!
//! kube-rs is asynchronous; each call runs on a small runtime of its own, so the rest of the engine stays
//! synchronous.

use super::{Scheduler, SubmitRequest, TaskPhase, parse_index_ranges};
use crate::EngineError;
use ampsm_config::config::KubernetesConfig;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, LogParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How long a finished Job stays for a coordinator that restarts.
const TTL_AFTER_FINISHED: i64 = 24 * 3600;

/// Kubernetes through its API, as the config says.
#[derive(Debug, Clone)]
pub struct Kubernetes {
    config: KubernetesConfig,
    /// The repositories to mount into the pods (`repository: path`).
    repo_paths: Vec<String>,
}

impl Kubernetes {
    pub fn from_config(c: &KubernetesConfig) -> Kubernetes {
        Kubernetes { config: c.clone(), repo_paths: Vec::new() }
    }

    /// The same scheduler, mounting `paths` (the repositories) into its pods.
    pub fn with_repositories(mut self, paths: Vec<String>) -> Kubernetes {
        self.repo_paths = paths;
        self
    }

    /// The Job of a submission, as JSON (the request body).
    pub fn job_manifest(&self, req: &SubmitRequest) -> Result<Value, EngineError> {
        let image = self.config.image.as_deref().filter(|i| !i.trim().is_empty()).ok_or_else(|| {
            EngineError::Invalid(
                "executors.kubernetes.image is not set: the kubernetes executor needs an image with amp-sessions \
                 and the agent CLIs (see docs/cluster.md)"
                    .into(),
            )
        })?;
        let folder = req.layout.root.to_string_lossy().into_owned();
        let program = self.config.program.clone().unwrap_or_else(|| "amp-sessions".into());
        let script = format!(
            "exec {} batch worker {} \"$JOB_COMPLETION_INDEX\"",
            shell_quote(&program),
            shell_quote(&folder)
        );
        let work_dir = req.layout.root.parent().unwrap_or(Path::new("/")).to_string_lossy().into_owned();
        let mut volumes = vec![match &self.config.volume_claim {
            Some(claim) => json!({"name": "work", "persistentVolumeClaim": {"claimName": claim}}),
            None => json!({"name": "work", "hostPath": {"path": work_dir, "type": "DirectoryOrCreate"}}),
        }];
        let mut mounts = vec![json!({"name": "work", "mountPath": work_dir})];
        for (i, repo) in self.repo_paths.iter().enumerate() {
            let name = format!("repo-{i}");
            volumes.push(json!({"name": name, "hostPath": {"path": repo, "type": "Directory"}}));
            mounts.push(json!({"name": name, "mountPath": repo}));
        }
        let mut container = json!({
            "name": "worker",
            "image": image,
            "command": ["sh", "-c", script],
            "volumeMounts": mounts,
        });
        if let Some(secret) = &self.config.secret {
            container["envFrom"] = json!([{"secretRef": {"name": secret}}]);
        }
        // The repository's credentials (`username`, `password` keys), which the worker hands to git for
        // its clone only.
        if let Some(secret) = &self.config.repository_secret {
            let key = |env: &str, key: &str| json!({"name": env, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}});
            container["env"] =
                json!([key("AMPSM_GIT_USERNAME", "username"), key("AMPSM_GIT_PASSWORD", "password")]);
        }
        let mut resources = serde_json::Map::new();
        if let Some(cpu) = &self.config.cpu {
            resources.insert("cpu".into(), json!(cpu));
        }
        if let Some(memory) = &self.config.memory {
            resources.insert("memory".into(), json!(memory));
        }
        if !resources.is_empty() {
            container["resources"] = json!({"requests": resources, "limits": resources});
        }
        let labels = json!({
            "app.kubernetes.io/managed-by": "amp-sessions",
            "amp-sessions/job": req.name,
            "amp-sessions/submission": submission_of(&req.layout.root),
        });
        let mut pod_spec = json!({
            "restartPolicy": "Never",
            "containers": [container],
            "volumes": volumes,
        });
        if let Some(account) = &self.config.service_account {
            pod_spec["serviceAccountName"] = json!(account);
        }
        Ok(json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": job_name(&req.name, &req.layout.root), "labels": labels},
            "spec": {
                "completionMode": "Indexed",
                "completions": req.indexes.len(),
                "parallelism": req.max_concurrent.max(1),
                "backoffLimitPerIndex": 1,
                "activeDeadlineSeconds": req.time_limit.as_secs().max(60),
                "ttlSecondsAfterFinished": TTL_AFTER_FINISHED,
                "template": {"metadata": {"labels": labels}, "spec": pod_spec},
            },
        }))
    }

    /// A client and the namespace, from the kubeconfig the config names (else `$KUBECONFIG`, else
    /// `~/.kube/config`).
    async fn client(&self) -> Result<(Client, String), EngineError> {
        let fail = |what: String| EngineError::Invalid(format!("kubernetes executor: {what}"));
        let path = self
            .config
            .kubeconfig
            .as_ref()
            .map(|p| PathBuf::from(expand_home(p)))
            .or_else(|| std::env::var_os("KUBECONFIG").map(PathBuf::from))
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".kube/config")))
            .ok_or_else(|| {
                fail("no kubeconfig (set executors.kubernetes.kubeconfig or KUBECONFIG)".into())
            })?;
        let kubeconfig = Kubeconfig::read_from(&path)
            .map_err(|e| fail(format!("cannot read the kubeconfig {}: {e}", path.display())))?;
        let options = KubeConfigOptions { context: self.config.context.clone(), ..Default::default() };
        let config = Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| fail(format!("the kubeconfig {}: {e}", path.display())))?;
        let namespace = self.config.namespace.clone().unwrap_or_else(|| config.default_namespace.clone());
        let client = Client::try_from(config).map_err(|e| fail(format!("cannot make a client: {e}")))?;
        Ok((client, namespace))
    }

    fn block_on<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, EngineError>>,
    ) -> Result<T, EngineError> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| EngineError::Invalid(format!("cannot start the kubernetes client's runtime: {e}")))?
            .block_on(f)
    }

    /// The last lines of the pod of task `idx` (for a lost task's note).
    pub fn log_tail(&self, job: &str, idx: i64) -> Option<String> {
        self.block_on(async {
            let (client, ns) = self.client().await?;
            let pods: Api<Pod> = Api::namespaced(client, &ns);
            let list = pods
                .list(&ListParams::default().labels(&format!("batch.kubernetes.io/job-name={job}")))
                .await
                .map_err(api_error)?;
            let Some(name) = list
                .items
                .iter()
                .filter(|p| pod_index(p) == Some(idx))
                .filter_map(|p| p.metadata.name.clone())
                .next_back()
            else {
                return Ok(None);
            };
            let text = pods
                .logs(&name, &LogParams { tail_lines: Some(5), ..Default::default() })
                .await
                .map_err(api_error)?;
            Ok(text.lines().rev().find(|l| !l.trim().is_empty()).map(|l| l.trim().to_string()))
        })
        .ok()
        .flatten()
    }
}

/// The submission id of a submission folder (its name).
fn submission_of(folder: &Path) -> String {
    folder.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// A Job name: the run's name and the submission's first characters, in DNS-1123 form (at most 63).
fn job_name(run: &str, folder: &Path) -> String {
    let sub = submission_of(folder);
    let raw = format!("{run}-{}", &sub[..sub.len().min(8)]).to_ascii_lowercase();
    let cleaned: String =
        raw.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect();
    cleaned.trim_matches('-').chars().take(63).collect()
}

fn expand_home(p: &str) -> String {
    match (p.strip_prefix("~/"), std::env::var("HOME")) {
        (Some(rest), Ok(home)) => format!("{home}/{rest}"),
        _ => p.to_string(),
    }
}

fn api_error(e: kube::Error) -> EngineError {
    EngineError::Invalid(format!("the Kubernetes API refused: {e}"))
}

/// The completion index of a pod.
fn pod_index(p: &Pod) -> Option<i64> {
    let key = "batch.kubernetes.io/job-completion-index";
    p.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .or_else(|| p.metadata.labels.as_ref().and_then(|l| l.get(key)))
        .and_then(|v| v.parse().ok())
}

/// The phase of every index of `job`, from its status and its pods.
pub fn phases_of(job: &Job, pods: &[Pod]) -> BTreeMap<i64, TaskPhase> {
    let mut out = BTreeMap::new();
    let completions = job.spec.as_ref().and_then(|s| s.completions).unwrap_or(0) as i64;
    for i in 0..completions {
        out.insert(i, TaskPhase::Pending);
    }
    // From the pods: a pod still going (a later try) wins over one that ended.
    let mut from_pods: BTreeMap<i64, TaskPhase> = BTreeMap::new();
    for p in pods {
        let Some(i) = pod_index(p) else { continue };
        let phase = match p.status.as_ref().and_then(|s| s.phase.as_deref()) {
            Some("Running") => TaskPhase::Running,
            Some("Succeeded") => TaskPhase::Ended { state: "Succeeded".into(), ok: true },
            Some("Failed") => TaskPhase::Ended { state: "Failed".into(), ok: false },
            _ => TaskPhase::Pending,
        };
        let going = |t: &TaskPhase| !matches!(t, TaskPhase::Ended { .. });
        if from_pods.get(&i).is_none_or(|seen| going(&phase) || !going(seen)) {
            from_pods.insert(i, phase);
        }
    }
    out.extend(from_pods);
    let status = job.status.as_ref();
    for i in
        status.and_then(|s| s.completed_indexes.as_deref()).and_then(parse_index_ranges).unwrap_or_default()
    {
        out.insert(i, TaskPhase::Ended { state: "Succeeded".into(), ok: true });
    }
    for i in status.and_then(|s| s.failed_indexes.as_deref()).and_then(parse_index_ranges).unwrap_or_default()
    {
        out.insert(i, TaskPhase::Ended { state: "Failed".into(), ok: false });
    }
    // A Job that failed as a whole (its deadline) ends the indexes it did not finish.
    let failed = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Failed" && c.status == "True"))
        .map(|c| c.reason.clone().unwrap_or_else(|| "Failed".into()));
    if let Some(reason) = failed {
        for phase in out.values_mut() {
            if !matches!(phase, TaskPhase::Ended { .. }) {
                *phase = TaskPhase::Ended { state: reason.clone(), ok: false };
            }
        }
    }
    out
}

impl Scheduler for Kubernetes {
    fn submit(&self, req: &SubmitRequest) -> Result<String, EngineError> {
        let manifest = self.job_manifest(req)?;
        let job: Job = serde_json::from_value(manifest)
            .map_err(|e| EngineError::Invalid(format!("kubernetes executor: a bad Job manifest: {e}")))?;
        self.block_on(async {
            let (client, ns) = self.client().await?;
            let jobs: Api<Job> = Api::namespaced(client, &ns);
            let made = jobs.create(&PostParams::default(), &job).await.map_err(api_error)?;
            Ok(made.metadata.name.unwrap_or_default())
        })
    }

    fn phases(&self, job: &str) -> Result<BTreeMap<i64, TaskPhase>, EngineError> {
        self.block_on(async {
            let (client, ns) = self.client().await?;
            let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
            let Some(found) = jobs.get_opt(job).await.map_err(api_error)? else { return Ok(BTreeMap::new()) };
            let pods: Api<Pod> = Api::namespaced(client, &ns);
            let list = pods
                .list(&ListParams::default().labels(&format!("batch.kubernetes.io/job-name={job}")))
                .await
                .map_err(api_error)?;
            Ok(phases_of(&found, &list.items))
        })
    }

    fn cancel(&self, job: &str) -> Result<(), EngineError> {
        self.block_on(async {
            let (client, ns) = self.client().await?;
            let jobs: Api<Job> = Api::namespaced(client, &ns);
            match jobs.delete(job, &DeleteParams::background()).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
                Err(e) => Err(api_error(e)),
            }
        })
    }

    fn log_tail(&self, job: &str, idx: i64) -> Option<String> {
        Kubernetes::log_tail(self, job, idx)
    }
}

/// `text` in single quotes for `sh`.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::cluster::Layout;
    use std::time::Duration;

    fn request() -> SubmitRequest {
        SubmitRequest {
            name: "ampsm-1a2b3c4d".into(),
            layout: Layout::new("/shared/w/0123456789abcdef"),
            indexes: vec![0, 1, 2],
            max_concurrent: 2,
            time_limit: Duration::from_secs(1200),
            program: "/usr/bin/amp-sessions".into(),
        }
    }

    #[test]
    fn the_job_is_indexed_bounded_labelled_and_mounts_the_work_folder() {
        let c = KubernetesConfig {
            image: Some("ghcr.io/acme/ampsm:1".into()),
            secret: Some("agent-keys".into()),
            repository_secret: Some("repo-creds".into()),
            memory: Some("4Gi".into()),
            ..Default::default()
        };
        let k = Kubernetes::from_config(&c).with_repositories(vec!["/srv/repo".into()]);
        let m = k.job_manifest(&request()).unwrap();
        assert_eq!(m["metadata"]["name"], "ampsm-1a2b3c4d-01234567");
        let spec = &m["spec"];
        assert_eq!(
            (spec["completionMode"].as_str(), spec["completions"].as_i64()),
            (Some("Indexed"), Some(3))
        );
        assert_eq!(
            (spec["parallelism"].as_i64(), spec["activeDeadlineSeconds"].as_i64()),
            (Some(2), Some(1200))
        );
        assert_eq!(spec["backoffLimitPerIndex"], 1);
        let pod = &spec["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Never");
        let container = &pod["containers"][0];
        assert_eq!(container["image"], "ghcr.io/acme/ampsm:1");
        let script = container["command"][2].as_str().unwrap();
        assert_eq!(
            script,
            "exec 'amp-sessions' batch worker '/shared/w/0123456789abcdef' \"$JOB_COMPLETION_INDEX\""
        );
        assert_eq!(container["envFrom"][0]["secretRef"]["name"], "agent-keys");
        assert_eq!(container["env"][1]["valueFrom"]["secretKeyRef"]["name"], "repo-creds");
        assert_eq!(container["env"][1]["name"], "AMPSM_GIT_PASSWORD");
        assert_eq!(container["resources"]["limits"]["memory"], "4Gi");
        assert_eq!(pod["volumes"][0]["hostPath"]["path"], "/shared/w");
        assert_eq!(container["volumeMounts"][1]["mountPath"], "/srv/repo");
        assert_eq!(spec["template"]["metadata"]["labels"]["amp-sessions/submission"], "0123456789abcdef");
        // The manifest is a valid Job.
        serde_json::from_value::<Job>(m).unwrap();
        // No image: one line that says which setting.
        let err = Kubernetes::from_config(&KubernetesConfig::default()).job_manifest(&request()).unwrap_err();
        assert!(err.to_string().contains("executors.kubernetes.image is not set"), "{err}");
    }

    #[test]
    fn phases_come_from_the_job_status_and_its_pods() {
        let job: Job = serde_json::from_value(json!({
            "metadata": {"name": "j"},
            "spec": {"completions": 4, "template": {"spec": {"containers": []}}},
            "status": {"completedIndexes": "0", "failedIndexes": "3"},
        }))
        .unwrap();
        let pod = |idx: i64, phase: &str| -> Pod {
            serde_json::from_value(json!({
                "metadata": {"annotations": {"batch.kubernetes.io/job-completion-index": idx.to_string()}},
                "status": {"phase": phase},
            }))
            .unwrap()
        };
        let p = phases_of(
            &job,
            &[pod(1, "Failed"), pod(1, "Running"), pod(2, "Failed"), pod(2, "Pending"), pod(3, "Failed")],
        );
        assert_eq!(p[&0], TaskPhase::Ended { state: "Succeeded".into(), ok: true });
        assert_eq!(p[&1], TaskPhase::Running);
        // A retry still pending: the index is not over.
        assert_eq!(p[&2], TaskPhase::Pending);
        assert_eq!(p[&3], TaskPhase::Ended { state: "Failed".into(), ok: false });
    }
}

//! Batches on a cluster, each scenario twice: on a real Slurm cluster (single node, on loopback, started by
//! the test from Debian's packages: see `ampsm_testutils::slurm`) and on the Kubernetes executor against
//! `KubeDouble`, **a double of the Kubernetes API server** (no real one can run here) whose pods run as
//! local processes (see `ampsm_testutils::kube_double`). The same batch run with `--executor local` and
//! on the cluster ends with the same results (status per item, attempts, diffs, tokens); `batch abort`
//! stops the cluster's tasks within 5 s; after a `kill -9` of the coordinator, `resume` takes in what
//! finished meanwhile and runs nothing twice.

use crate::support::World;
use ampsm_testutils::kube_double::KubeDouble;
use ampsm_testutils::repo::{git, init_repo};
use ampsm_testutils::slurm::SlurmCluster;
use ampsm_testutils::{install_fake_agent_as, requires};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// An Amp stand-in that writes `work.txt` with the prompt, reports usage, and sleeps `SLEEP` ms first.
fn amp_scenario(sleep_ms: u64) -> String {
    format!(
        r#"{{"format": "amp", "steps": [
  {{"emit": {{"type": "system", "subtype": "init", "cwd": "{{{{cwd}}}}", "session_id": "{{{{thread_id}}}}", "tools": [], "mcp_servers": []}}}},
  {{"sleep_ms": {sleep_ms}}},
  {{"emit": {{"type": "assistant", "message": {{"id": "m1", "model": "claude-sonnet-4-5", "role": "assistant", "content": [{{"type": "text", "text": "Writing it."}}], "usage": {{"input_tokens": 120, "output_tokens": 30, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}}}}, "session_id": "{{{{thread_id}}}}"}}}},
  {{"write_file": {{"path": "work.txt", "content": "{{{{prompt}}}}\n"}}}},
  {{"emit": {{"type": "result", "subtype": "success", "duration_ms": 100, "is_error": false, "num_turns": 1, "result": "done", "session_id": "{{{{thread_id}}}}"}}}}
]}}"#
    )
}

/// A cluster the tests run batches on.
enum Cluster {
    Slurm(SlurmCluster),
    /// The Kubernetes API double (not Kubernetes), with the namespace the tests use.
    Kube(KubeDouble),
}

impl Cluster {
    fn executor(&self) -> &'static str {
        match self {
            Cluster::Slurm(_) => "slurm",
            Cluster::Kube(_) => "kubernetes",
        }
    }

    /// Points `w` at the cluster, on top of `config`: Slurm's `SLURM_CONF`; for the double a kubeconfig,
    /// the executor's settings (the image is a name only: the double runs this test's binary as the pods'
    /// command), and a Secret with `env`, the agents' environment (pods get nothing else from the test).
    fn configure(&self, w: &World, config: &str, env: &[(&str, &str)]) {
        match self {
            Cluster::Slurm(c) => {
                for (k, v) in c.env() {
                    w.set_env(&k, &v);
                }
                w.write_config(config);
            }
            Cluster::Kube(double) => {
                let kubeconfig = w.dir.path().join("kubeconfig");
                double.write_kubeconfig(&kubeconfig, "ampsm");
                w.write_config(&format!(
                    "{config}executors:\n  kubernetes:\n    kubeconfig: {}\n    image: amp-sessions:test\n    \
                     program: {}\n    repository: path\n    secret: agent-keys\n",
                    kubeconfig.display(),
                    env!("CARGO_BIN_EXE_amp-sessions")
                ));
                let data: serde_json::Map<String, Value> =
                    env.iter().map(|(k, v)| (k.to_string(), Value::from(*v))).collect();
                let secret = serde_json::json!({
                    "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "agent-keys"}, "stringData": data,
                });
                let url = format!("{}/api/v1/namespaces/ampsm/secrets", double.url());
                // The same secret for a second world is already there.
                let _ = ureq::post(&url).send_json(secret);
            }
        }
    }

    /// Tasks still pending or running.
    fn live_tasks(&self) -> usize {
        match self {
            Cluster::Slurm(c) => {
                let out = c.command("squeue").args(["-h", "-r", "-o", "%i %T"]).output().unwrap();
                String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.trim().is_empty()).count()
            }
            Cluster::Kube(double) => double.live_processes(),
        }
    }
}

/// A world with `repos` repositories (`r0`, `r1`, …), `amp` played by the fake agent, and `cluster`
/// configured.
fn world(repos: usize, scenario: &str, cluster: Option<&Cluster>) -> World {
    let w = World::new();
    for i in 0..repos {
        init_repo(&w.dir.path().join(format!("r{i}")));
    }
    let bin = w.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let amp = install_fake_agent_as(&bin, "amp");
    let config = format!("amp:\n  path: {}\n", amp.display());
    let log = agent_log(&w).to_string_lossy().into_owned();
    match cluster {
        Some(c) => c.configure(
            &w,
            &config,
            &[("FAKE_AGENT_SCENARIO", scenario), ("AMP_API_KEY", "sgamp_test_key"), ("FAKE_AGENT_LOG", &log)],
        ),
        None => w.write_config(&config),
    }
    w.set_env("FAKE_AGENT_LOG", &log);
    w.set_env("FAKE_AGENT_SCENARIO", scenario);
    w.set_env("AMP_API_KEY", "sgamp_test_key");
    w
}

/// A batch of `items` items on every repository; items whose number is a multiple of 3 have a script
/// that fails (they fail after one retry), the others pass.
fn batch_yaml(name: &str, repos: usize, items: usize, concurrency: usize) -> String {
    let mut y = format!("name: {name}\nconcurrency: {concurrency}\nrepos:\n");
    for i in 0..repos {
        y.push_str(&format!("  - path: ./r{i}\n"));
    }
    y.push_str("items:\n");
    for i in 0..items {
        y.push_str(&format!("  - name: item{i}\n    prompt: \"change number {i}\"\n"));
        if i % 3 == 0 {
            y.push_str("    script: \"grep -q never work.txt\"\n    retries: 1\n");
        } else {
            y.push_str("    script: \"test -f work.txt\"\n");
        }
    }
    y
}

fn write(w: &World, name: &str, text: &str) -> String {
    let p = w.dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

/// Per item (`item@repo`): status, attempts, the diff of its session against its base, and its tokens.
fn results(w: &World, batch: &str) -> BTreeMap<String, (String, i64, String, i64)> {
    let v = w.json(&["batch", "export", batch, "--format", "json"]);
    let rows = v.as_array().cloned().unwrap_or_else(|| v["items"].as_array().cloned().unwrap());
    let mut out = BTreeMap::new();
    for r in rows {
        let repo = PathBuf::from(r["repo_path"].as_str().unwrap());
        let key = format!("{}@{}", r["item"].as_str().unwrap(), repo.file_name().unwrap().to_string_lossy());
        let diff = match r["branch"].as_str() {
            Some(b) => git(&repo, &["diff", &format!("{}...{b}", r["base_branch"].as_str().unwrap())]),
            None => String::new(),
        };
        let tokens = r["input_tokens"].as_i64().unwrap_or(0) + r["output_tokens"].as_i64().unwrap_or(0);
        out.insert(
            key,
            (r["status"].as_str().unwrap().to_string(), r["attempts"].as_i64().unwrap(), diff, tokens),
        );
    }
    out
}

fn wait_for(w: &World, id: &str, limit: Duration, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let v = w.json(&["batch", "status", id]);
        if done(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {v:#}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The file the fake agents append a line to for each run (`FAKE_AGENT_LOG`), on any node.
fn agent_log(w: &World) -> PathBuf {
    w.dir.path().join("agent-runs.jsonl")
}

/// How many times an agent ran, on the cluster's nodes or here.
fn agent_runs(w: &World) -> usize {
    std::fs::read_to_string(agent_log(w)).map(|t| t.lines().count()).unwrap_or(0)
}

/// What is left in the executor's default work folder (`$AMPSM_HOME/cluster`): submission folders.
fn cluster_folders(w: &World) -> Vec<PathBuf> {
    std::fs::read_dir(w.home().join("cluster")).into_iter().flatten().flatten().map(|e| e.path()).collect()
}

fn same_results_as_local(cluster: &Cluster) {
    let scenario = amp_scenario(300);
    let (local, slurm) = (world(2, &scenario, None), world(2, &scenario, Some(cluster)));
    let mut runs = Vec::new();
    for (w, executor) in [(&local, "local"), (&slurm, cluster.executor())] {
        let file = write(w, "b.yaml", &batch_yaml("same", 2, 6, 4));
        let started = Instant::now();
        let out = w.cmd().args(["batch", "start", "--file", &file, "--executor", executor]).output().unwrap();
        let took = started.elapsed();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let list = w.json(&["batch", "list"]);
        let id = list[0]["id"].as_str().unwrap().to_string();
        eprintln!("{executor}: 12 runs in {took:?}");
        assert_eq!(list[0]["status"], "failed", "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        runs.push((results(w, &id), id));
    }
    let (local_results, _) = &runs[0];
    let (slurm_results, slurm_id) = &runs[1];
    assert_eq!(local_results.len(), 12);
    let passed = local_results.values().filter(|r| r.0 == "passed").count();
    assert_eq!(passed, 8, "{local_results:#?}");
    assert_eq!(local_results, slurm_results, "the same items, statuses, attempts, diffs and tokens");
    // Every attempt is a session here, with its conversation taken in from the node.
    let v = slurm.json(&["batch", "status", slurm_id]);
    let item = v["items"].as_array().unwrap().iter().find(|i| i["status"] == "passed").unwrap();
    let session = item["session"]["id"].as_str().unwrap();
    let logs = slurm.ok(&["logs", session]);
    assert!(logs.contains("Writing it."), "{logs}");
    assert_eq!(cluster.live_tasks(), 0);
    // Every result was taken in: the node's copies (stores, git bundles) and the submission folder are gone.
    assert_eq!(cluster_folders(&slurm), Vec::<PathBuf>::new());
}

fn abort_within_five_seconds(cluster: &Cluster) {
    let scenario = amp_scenario(120_000);
    let w = world(1, &scenario, Some(cluster));
    let file = write(&w, "b.yaml", &batch_yaml("long", 1, 4, 2));
    let started = w.json(&["batch", "start", "--file", &file, "--executor", cluster.executor(), "--detach"]);
    let id = started["id"].as_str().unwrap().to_string();
    wait_for(&w, &id, Duration::from_secs(60), "two items running on the cluster", |v| {
        v["counts"]["running"] == 2
    });
    let shown = w.ok(&["batch", "status", &id]);
    assert!(
        shown.contains(&format!("{}: job ", cluster.executor())),
        "the status names the cluster job: {shown}"
    );
    let t0 = Instant::now();
    w.ok(&["batch", "abort", &id]);
    while cluster.live_tasks() > 0 {
        assert!(t0.elapsed() < Duration::from_secs(5), "cluster tasks still queued 5 s after the abort");
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("the cluster's tasks were gone {:?} after `batch abort`", t0.elapsed());
    let v = wait_for(&w, &id, Duration::from_secs(60), "the batch to end", |v| {
        v["batch"]["status"] == "aborted" || v["status"] == "aborted"
    });
    let statuses: Vec<&str> =
        v["items"].as_array().unwrap().iter().map(|i| i["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["aborted"; 4], "{v:#}");
    // The lost tasks' folder stays (their task files, logs on Slurm), but not the copy of the config;
    // `batch clean` removes it.
    let folders = cluster_folders(&w);
    assert_eq!(folders.len(), 1, "{folders:?}");
    assert!(folders[0].join("tasks").is_dir() && !folders[0].join("config.json").exists());
    let cleaned = w.json(&["batch", "clean", &id]);
    assert_eq!(cleaned["cluster_folders"][0], folders[0].to_string_lossy().as_ref(), "{cleaned}");
    assert_eq!(cluster_folders(&w), Vec::<PathBuf>::new());
}

/// The cluster goes away (its scheduler stopped) while two items run; `batch abort` still ends the batch:
/// the runner cannot cancel or ask anything, waits a grace for the tasks to report, then ends them aborted
/// and exits, instead of waiting forever (it used to, even through SIGTERM).
fn abort_with_the_cluster_gone(cluster: Cluster) {
    let scenario = amp_scenario(120_000);
    let w = world(1, &scenario, Some(&cluster));
    let file = write(&w, "b.yaml", &batch_yaml("orphaned", 1, 2, 2));
    let started = w.json(&["batch", "start", "--file", &file, "--executor", cluster.executor(), "--detach"]);
    let id = started["id"].as_str().unwrap().to_string();
    let runner = started["runner_pid"].as_i64().unwrap();
    wait_for(&w, &id, Duration::from_secs(60), "two items running on the cluster", |v| {
        v["counts"]["running"] == 2
    });
    drop(cluster);
    w.ok(&["batch", "abort", &id]);
    let t0 = Instant::now();
    while ampsm_engine::process::pid_alive(runner) {
        assert!(
            t0.elapsed() < Duration::from_secs(150),
            "the runner is still waiting for a cluster that is gone"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("the runner ended {:?} after the abort", t0.elapsed());
    let v = w.json(&["batch", "status", &id]);
    assert_eq!(v["status"], "aborted", "{v:#}");
    for item in v["items"].as_array().unwrap() {
        assert_eq!(item["status"], "aborted", "{item:#}");
    }
}

fn resume_runs_nothing_twice(cluster: &Cluster) {
    let scenario = amp_scenario(2_500);
    let w = world(1, &scenario, Some(cluster));
    let file = write(
        &w,
        "b.yaml",
        &batch_yaml("restart", 1, 6, 2).replace("grep -q never work.txt", "test -f work.txt"),
    );
    let started = w.json(&["batch", "start", "--file", &file, "--executor", cluster.executor(), "--detach"]);
    let id = started["id"].as_str().unwrap().to_string();
    let runner = started["runner_pid"].as_i64().unwrap();
    wait_for(&w, &id, Duration::from_secs(90), "a first result", |v| {
        v["counts"]["passed"].as_i64() >= Some(1)
    });
    std::process::Command::new("kill").args(["-9", &runner.to_string()]).status().unwrap();
    // The cluster goes on without its coordinator.
    std::thread::sleep(Duration::from_secs(4));
    let out = w.cmd().args(["batch", "resume", &id]).output().unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v = w.json(&["batch", "status", &id]);
    let items = v["items"].as_array().unwrap();
    assert!(items.iter().all(|i| i["status"] == "passed" && i["attempts"] == 1), "{v:#}");
    assert_eq!(agent_runs(&w), 6, "every item ran once on the cluster, none twice");
    assert_eq!(cluster_folders(&w), Vec::<PathBuf>::new(), "both submissions were taken in whole");
}

/// A benchmark world (`bench::bench_world`: claude fixes `shout`, codex does not) with the hidden test
/// patch and the suite at 3 repeats (2 problems × 2 agents × 3 = 12 results), on `cluster` when given.
fn bench_world(cluster: Option<&Cluster>) -> (World, String) {
    use crate::bench::{CLAUDE_FIXES, CODEX_MISSES, HIDDEN_PATCH, SHOUT_BENCH};
    let w = crate::bench::bench_world(CLAUDE_FIXES, CODEX_MISSES);
    crate::bench::write(w.dir.path(), "hidden.patch", HIDDEN_PATCH);
    let file =
        crate::bench::write(w.dir.path(), "bench.yaml", &SHOUT_BENCH.replace("repeats: 1", "repeats: 3"));
    if let Some(c) = cluster {
        let config = std::fs::read_to_string(w.home().join("config.yaml")).unwrap();
        c.configure(&w, &config, &[("ANTHROPIC_API_KEY", "sk-ant-test"), ("OPENAI_API_KEY", "sk-test")]);
    }
    (w, file.to_string_lossy().into_owned())
}

/// Per result (`problem/agent#repeat`): status, resolved, tokens and the model patch.
fn bench_results(view: &Value) -> BTreeMap<String, (String, Value, Value, Value)> {
    view["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let key = format!(
                "{}/{}#{}",
                r["instance_id"].as_str().unwrap(),
                r["label"].as_str().unwrap(),
                r["repeat"]
            );
            let value = (
                r["status"].as_str().unwrap().to_string(),
                r["resolved"].clone(),
                r["total_tokens"].clone(),
                r["model_patch"].clone(),
            );
            (key, value)
        })
        .collect()
}

fn bench_same_as_local(cluster: &Cluster) {
    let (local, local_file) = bench_world(None);
    let (remote, remote_file) = bench_world(Some(cluster));
    let out = local.run(&["bench", "custom", "--config", &local_file, "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let local_view: Value = serde_json::from_slice(&out.stdout).unwrap();
    let started = Instant::now();
    let out = remote.run(&[
        "bench",
        "custom",
        "--config",
        &remote_file,
        "--json",
        "--executor",
        cluster.executor(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    eprintln!("{}: 12 results in {:?}", cluster.executor(), started.elapsed());
    let remote_view: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (a, b) = (bench_results(&local_view), bench_results(&remote_view));
    assert_eq!(a.len(), 12);
    assert_eq!(a.values().filter(|r| r.0 == "resolved").count(), 9, "{a:#?}");
    assert_eq!(a, b, "the same statuses, tests, tokens and patches");
    assert_eq!(remote_view["status"], local_view["status"]);
    // The official predictions file, one line per result, and each result's session here.
    let out_dir = PathBuf::from(remote_view["out_dir"].as_str().unwrap());
    let preds = std::fs::read_to_string(out_dir.join("predictions.jsonl")).unwrap();
    assert_eq!(preds.lines().count(), 12);
    let result = &remote_view["results"][0];
    let logs = remote.ok(&["logs", result["session_id"].as_str().unwrap()]);
    assert!(!logs.trim().is_empty());
    // The dashboard's page of the run says where it ran.
    let d = crate::web_support::Dashboard::start(&remote);
    let page = d.get(&format!("/bench/{}", remote_view["id"].as_str().unwrap())).body;
    assert!(page.contains(&format!("on <span id=\"bench-executor\">{} (job ", cluster.executor())), "{page}");
    assert_eq!(cluster.live_tasks(), 0);
}

/// The real Claude Code CLI as a user has it (on PATH, its key and endpoint exported; here the scripted
/// model server), no permission setting, items on `cluster`: each node's Claude edits through Bash under
/// the default policy, the item's test passes, and its session here holds the edit and the conversation.
fn real_claude_on_a_cluster(cluster: &Cluster) {
    use ampsm_testutils::model_server::{ModelServer, Script, Turn};
    let bin = ampsm_testutils::require(ampsm_testutils::Tool::Claude);
    let w = World::new();
    init_repo(&w.dir.path().join("r0"));
    let server = ModelServer::start(Script::new(vec![
        Turn::tool_call(
            "Bash",
            serde_json::json!({"command": "printf 'from the node\\n' > node.txt", "description": "write"}),
        ),
        Turn::text("Wrote node.txt."),
    ]))
    .unwrap();
    let agent_home = w.dir.path().join("claude-home");
    std::fs::create_dir_all(&agent_home).unwrap();
    let mut env = ampsm_testutils::real_cli::claude_offline_env(&server.url(), &agent_home);
    env.retain(|(k, _)| k != "IS_SANDBOX");
    let path = format!("{}:{}", bin.parent().unwrap().display(), std::env::var("PATH").unwrap_or_default());
    env.push(("PATH".into(), path));
    for (k, v) in &env {
        w.set_env(k, v);
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    cluster.configure(&w, "notifications:\n  desktop: false\n", &env);
    let file = write(
        &w,
        "b.yaml",
        "name: real\nrepos:\n  - path: ./r0\ndefaults:\n  agent: claude\n  model: claude-sonnet-4-5\n  \
         timeout: 120s\nconcurrency: 2\nitems:\n  - {name: one, prompt: Write it, script: 'grep -q node node.txt'}\n  \
         - {name: two, prompt: Write it too, script: 'grep -q node node.txt'}\n",
    );
    let out =
        w.cmd().args(["batch", "start", "--file", &file, "--executor", cluster.executor()]).output().unwrap();
    let v = w.json(&["batch", "status", "real"]);
    assert!(
        out.status.success(),
        "{v:#}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for item in v["items"].as_array().unwrap() {
        assert_eq!(
            (item["status"].as_str(), item["attempts"].as_i64()),
            (Some("passed"), Some(1)),
            "{item:#}"
        );
        let session = item["session"]["id"].as_str().unwrap();
        let shown = w.json(&["show", session]);
        assert_eq!(shown["session"]["permissions"], "auto", "{shown:#}");
        let wt = PathBuf::from(shown["session"]["worktree_path"].as_str().unwrap());
        assert_eq!(git(&wt, &["show", "HEAD:node.txt"]), "from the node\n");
        let logs = w.ok(&["logs", session]);
        assert!(logs.contains("tool_use Bash") && logs.contains("Wrote node.txt."), "{logs}");
    }
    assert_eq!(cluster.live_tasks(), 0);
    assert_eq!(cluster_folders(&w), Vec::<PathBuf>::new());
}

/// A SWE-bench Lite dataset (two instances of a local `octo/demo` clone, the fix in one problem statement,
/// 2 repeats) graded on `cluster` ends as the same run here: per instance and repeat the status, the
/// per-test report, and the official predictions.
fn swe_bench_same_as_local(cluster: &Cluster) {
    use crate::bench::{CLAUDE_ECHOES, CODEX_MISSES, swe_repo, swe_row};
    let mut runs = Vec::new();
    for on in [None, Some(cluster)] {
        let w = crate::bench::bench_world(CLAUDE_ECHOES, CODEX_MISSES);
        let base = swe_repo(&w);
        let data = format!(
            "{}\n{}\n",
            swe_row("octo__demo-1", &base, "Please FIX it"),
            swe_row("octo__demo-2", &base, "Do it")
        );
        let dataset = crate::bench::write(w.dir.path(), "lite.jsonl", &data);
        let mut args = vec![
            "bench".to_string(),
            "swe-bench-lite".into(),
            "--dataset".into(),
            dataset.to_string_lossy().into_owned(),
            "--repos-dir".into(),
            w.dir.path().join("repos").to_string_lossy().into_owned(),
            "--agent".into(),
            "claude".into(),
            "--test-cmd".into(),
            "sh {test}".into(),
            "--repeats".into(),
            "2".into(),
            "--concurrency".into(),
            "2".into(),
            "--json".into(),
        ];
        if let Some(c) = on {
            let config = std::fs::read_to_string(w.home().join("config.yaml")).unwrap();
            c.configure(&w, &config, &[("ANTHROPIC_API_KEY", "sk-ant-test"), ("OPENAI_API_KEY", "sk-test")]);
            args.extend(["--executor".into(), c.executor().into()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = w.run(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let view: Value = serde_json::from_slice(&out.stdout).unwrap();
        let out_dir = PathBuf::from(view["out_dir"].as_str().unwrap());
        let mut rows: Vec<(String, Value, Value, Value, String, Value)> = view["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                // The report names its evaluation log in this run's folder (brought back from the node);
                // compared by name and content.
                let mut report: Value = serde_json::from_str(r["test_report"].as_str().unwrap()).unwrap();
                let log = PathBuf::from(report["log"].as_str().unwrap());
                assert!(log.starts_with(&out_dir), "{} is not in {}", log.display(), out_dir.display());
                // Its lines but the one naming the evaluation's own folder (on the node, or here).
                let text: String = std::fs::read_to_string(&log)
                    .unwrap()
                    .lines()
                    .filter(|l| !l.starts_with("$ export PYTHONPATH="))
                    .map(|l| format!("{l}\n"))
                    .collect();
                report["log"] = Value::from(log.file_name().unwrap().to_string_lossy().as_ref());
                (
                    format!("{}#{}", r["instance_id"].as_str().unwrap(), r["repeat"]),
                    r["status"].clone(),
                    r["resolved"].clone(),
                    report,
                    text,
                    r["total_tokens"].clone(),
                )
            })
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        let preds = std::fs::read_to_string(
            PathBuf::from(view["out_dir"].as_str().unwrap()).join("predictions.jsonl"),
        )
        .unwrap();
        let mut preds: Vec<String> = preds.lines().map(str::to_string).collect();
        preds.sort();
        runs.push((rows, preds, w));
    }
    let (local, remote) = (&runs[0], &runs[1]);
    assert_eq!(local.0.len(), 4);
    let resolved: Vec<&str> = local.0.iter().map(|r| r.1.as_str().unwrap()).collect();
    assert_eq!(resolved, ["resolved", "resolved", "unresolved", "unresolved"], "{:#?}", local.0);
    assert_eq!(local.0, remote.0, "the same statuses, per-test reports, evaluation logs and tokens");
    assert_eq!(local.1.len(), 4);
    assert_eq!(local.1, remote.1, "the same official predictions");
    assert_eq!(cluster_folders(&remote.2), Vec::<PathBuf>::new());
}

fn bench_abort_within_five_seconds(cluster: &Cluster) {
    use crate::bench::{HIDDEN_PATCH, SHOUT_BENCH};
    let slow = r#"{"format": "claude", "steps": [
 {"emit": {"type": "system", "subtype": "init", "cwd": "{{cwd}}", "session_id": "{{thread_id}}", "tools": [], "mcp_servers": [], "model": "claude-sonnet-4-5-20250929"}},
 {"sleep_ms": 120000}
]}"#;
    let w = crate::bench::bench_world(slow, slow);
    crate::bench::write(w.dir.path(), "hidden.patch", HIDDEN_PATCH);
    // The executor from the YAML this time (`executor:`), not from the command line.
    let suite = SHOUT_BENCH.replace("repeats: 1", &format!("repeats: 1\nexecutor: {}", cluster.executor()));
    let file = crate::bench::write(w.dir.path(), "bench.yaml", &suite);
    let config = std::fs::read_to_string(w.home().join("config.yaml")).unwrap();
    cluster.configure(&w, &config, &[("ANTHROPIC_API_KEY", "sk-ant-test"), ("OPENAI_API_KEY", "sk-test")]);
    let file = file.to_string_lossy().into_owned();
    let started = w.json(&["bench", "custom", "--config", &file, "--detach"]);
    let id = started["id"].as_str().unwrap().to_string();
    let runner = started["runner_pid"].as_i64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = w.json(&["bench", "show", &id]);
        // Running, and reporting from their nodes: the agent's first line is recorded there (Claude's start;
        // the Codex stand-in prints the same line, which is not Codex's format).
        let reporting =
            v["results"].as_array().unwrap().iter().filter(|r| r["remote"]["events"].as_i64() >= Some(1));
        if v["counts"]["running"].as_i64() >= Some(2) && reporting.count() >= 2 {
            let page = crate::web_support::Dashboard::start(&w).get(&format!("/bench/{id}")).body;
            assert!(page.contains("1 line, 0 tokens; "), "{page}");
            break;
        }
        assert!(Instant::now() < deadline, "no result running and reporting on the cluster: {v:#}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let t0 = Instant::now();
    w.ok(&["bench", "abort", &id]);
    while cluster.live_tasks() > 0 {
        assert!(t0.elapsed() < Duration::from_secs(5), "cluster tasks still live 5 s after `bench abort`");
        std::thread::sleep(Duration::from_millis(100));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = w.json(&["bench", "show", &id]);
        if v["status"] == "aborted" {
            let statuses: Vec<&str> =
                v["results"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
            assert_eq!(statuses, ["aborted"; 4], "{v:#}");
            break;
        }
        assert!(Instant::now() < deadline, "the run did not end: {v:#}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Its runner ends too (it takes in what the stopped workers still report).
    let t0 = Instant::now();
    while ampsm_engine::process::pid_alive(runner) {
        assert!(t0.elapsed() < Duration::from_secs(60), "the run's runner {runner} is still alive");
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("the runner ended {:?} after the run was aborted", t0.elapsed());
}

fn bench_resume_runs_nothing_twice(cluster: &Cluster) {
    use crate::bench::{HIDDEN_PATCH, SHOUT_BENCH};
    // Each result's agent takes 2.5 s, two at a time.
    let slow_fix = crate::bench::CLAUDE_FIXES.replacen(
        r#" {"write_file": {"path": "greet.sh""#,
        r#" {"sleep_ms": 2500},
 {"write_file": {"path": "greet.sh""#,
        1,
    );
    let w = crate::bench::bench_world(&slow_fix, crate::bench::CODEX_MISSES);
    crate::bench::write(w.dir.path(), "hidden.patch", HIDDEN_PATCH);
    let suite = SHOUT_BENCH.replace("  - codex\n", "").replace("repeats: 1", "repeats: 3");
    let file = crate::bench::write(w.dir.path(), "bench.yaml", &suite);
    // A benchmark's agents get the environment the config gives them (and their keys).
    let log = format!("    env:\n      FAKE_AGENT_LOG: {}\n", agent_log(&w).display());
    let config = std::fs::read_to_string(w.home().join("config.yaml")).unwrap().replace("    env:\n", &log);
    cluster.configure(&w, &config, &[("ANTHROPIC_API_KEY", "sk-ant-test"), ("OPENAI_API_KEY", "sk-test")]);
    let file = file.to_string_lossy().into_owned();
    let started =
        w.json(&["bench", "custom", "--config", &file, "--executor", cluster.executor(), "--detach"]);
    let id = started["id"].as_str().unwrap().to_string();
    let runner = started["runner_pid"].as_i64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    while w.json(&["bench", "show", &id])["counts"]["resolved"].as_i64() < Some(1) {
        assert!(Instant::now() < deadline, "no first result");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::process::Command::new("kill").args(["-9", &runner.to_string()]).status().unwrap();
    // The cluster goes on without its coordinator.
    std::thread::sleep(Duration::from_secs(4));
    let out = w.cmd().args(["bench", "resume", &id]).output().unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v = w.json(&["bench", "show", &id]);
    let statuses: Vec<&str> =
        v["results"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["resolved"; 6], "{v:#}");
    assert_eq!(agent_runs(&w), 6, "every result ran once on the cluster, none twice");
    assert_eq!(cluster_folders(&w), Vec::<PathBuf>::new(), "both submissions were taken in whole");
}

/// A batch pasted into the dashboard with `executor:` runs on the cluster, and its page follows it: the
/// items running on nodes, then their sessions, the executor and the cluster job named.
fn dashboard_follows_a_cluster_batch(cluster: &Cluster) {
    let scenario = amp_scenario(5_000);
    let w = world(1, &scenario, Some(cluster));
    let d = crate::web_support::Dashboard::start(&w);
    let repo = w.dir.path().join("r0");
    let yaml = format!(
        "name: from-the-dashboard\nexecutor: {}\nconcurrency: 2\nrepos:\n  - path: {}\nitems:\n  - name: one\n    \
         prompt: first\n  - name: two\n    prompt: second\n",
        cluster.executor(),
        repo.display()
    );
    let r = d.post("/batches", &[("yaml", &yaml)]);
    assert_eq!(r.status, 303, "{}", r.body);
    let id = r.location.unwrap().trim_start_matches("/batches/").split('?').next().unwrap().to_string();
    // While the agents work on the cluster, the page shows them running, and where.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let page = d.get(&format!("/batches/{id}")).body;
        if page.contains("2 running") {
            assert!(
                page.contains(&format!("on <span id=\"batch-executor\">{} (job ", cluster.executor())),
                "{page}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "the page never showed the items running: {page}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // ... and what each did so far on its node, as its worker reports it: its session there, the lines
    // recorded, its last event (the agent's start, then 5 s of nothing).
    let v = wait_for(&w, &id, Duration::from_secs(30), "both items to report from their nodes", |v| {
        v["items"].as_array().unwrap().iter().all(|i| i["remote"]["events"].as_i64() >= Some(1))
    });
    let host = v["items"][0]["remote"]["host"].as_str().unwrap().to_string();
    for item in v["items"].as_array().unwrap() {
        let r = &item["remote"];
        assert!(r["session"].as_str().unwrap().starts_with(item["item_name"].as_str().unwrap()), "{r}");
        assert!(r["last"].as_str().unwrap().starts_with("init thread="), "{r}");
        assert_eq!(r["attempt"], 1, "{r}");
    }
    let text = w.ok(&["batch", "status", &id]);
    assert!(
        text.contains(&format!(" on {host}")) && text.contains("1 line, 0 tokens; init thread="),
        "{text}"
    );
    let page = d.get(&format!("/batches/{id}")).body;
    assert!(
        page.contains(&format!(" on {host}</span>")) && page.contains("1 line, 0 tokens; init"),
        "{page}"
    );
    let v = wait_for(&w, &id, Duration::from_secs(60), "the batch to end", |v| v["status"] == "completed");
    let page = d.get(&format!("/batches/{id}")).body;
    for item in v["items"].as_array().unwrap() {
        let session = item["session"]["id"].as_str().unwrap();
        assert!(page.contains(&session[..8]), "the item's session is linked: {page}");
    }
    assert_eq!(cluster.live_tasks(), 0);
}

/// A batch budget that the running tasks together reach (each alone stays under it): the coordinator adds
/// up what the workers say they spent so far and cancels what runs.
fn budget_cancels_what_runs(cluster: &Cluster) {
    // Claude Code stand-ins that each cost $0.0615 after their first message and $0.0813 after their
    // second, then keep going for 6 s: two of them together pass the batch's $0.15, one alone does not.
    let w = World::new();
    init_repo(&w.dir.path().join("r0"));
    let claude = install_fake_agent_as(&w.dir.path().join("bin"), "claude");
    let scenario = ampsm_testutils::scenario_path("claude_budget");
    let scenario = scenario.to_str().unwrap();
    let config = format!("agents:\n  claude:\n    path: {}\n", claude.display());
    cluster.configure(
        &w,
        &config,
        &[("FAKE_AGENT_SCENARIO", scenario), ("ANTHROPIC_API_KEY", "sk-ant-test")],
    );
    w.set_env("FAKE_AGENT_SCENARIO", scenario);
    w.set_env("ANTHROPIC_API_KEY", "sk-ant-test");
    let yaml = format!("{}defaults:\n  agent: claude\nbudget: 0.15\n", batch_yaml("money", 1, 4, 2));
    let file = write(&w, "b.yaml", &yaml);
    let started = w.json(&["batch", "start", "--file", &file, "--executor", cluster.executor(), "--detach"]);
    let id = started["id"].as_str().unwrap().to_string();
    wait_for(&w, &id, Duration::from_secs(60), "two items running", |v| v["counts"]["running"] == 2);
    let t0 = Instant::now();
    let v = wait_for(&w, &id, Duration::from_secs(60), "the budget stop", |v| v["status"] == "aborted");
    eprintln!(
        "{}: the batch stopped at its budget {:?} after its items ran",
        cluster.executor(),
        t0.elapsed()
    );
    assert!(v["stop_reason"].as_str().unwrap().contains("budget"), "{v:#}");
    assert!(v["spent_usd"].as_f64().unwrap() >= 0.15, "{v:#}");
    // As locally: the items that ran were stopped, with their work (their sessions are here), and
    // nothing else started.
    for item in v["items"].as_array().unwrap() {
        let (status, error) = (item["status"].as_str().unwrap(), item["error"].as_str().unwrap_or(""));
        if item["attempts"] == 0 {
            assert!(status == "aborted" && error.starts_with("not started"), "{item:#}");
        } else {
            assert!(["aborted", "failed"].contains(&status), "{item:#}");
            assert!(item["session"]["id"].is_string(), "the stopped item's session was taken in: {item:#}");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while cluster.live_tasks() > 0 {
        assert!(Instant::now() < deadline, "tasks still live after the budget stop");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `mergeOnPass` on the cluster: the passing item's branch, fetched from its bundle, is merged into the
/// user's base branch by the coordinator through the normal merge path.
fn merge_on_pass(cluster: &Cluster) {
    let w = world(1, &amp_scenario(100), Some(cluster));
    let yaml = "name: merged\nrepos:\n  - path: ./r0\nitems:\n  - name: only\n    prompt: \"merge me\"\n    \
                script: \"test -f work.txt\"\n    mergeOnPass: true\n";
    let file = write(&w, "b.yaml", yaml);
    let out =
        w.cmd().args(["batch", "start", "--file", &file, "--executor", cluster.executor()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let id = w.json(&["batch", "list"])[0]["id"].as_str().unwrap().to_string();
    let v = w.json(&["batch", "status", &id]);
    assert_eq!(
        (v["items"][0]["status"].as_str(), v["items"][0]["merged"].as_bool()),
        (Some("passed"), Some(true)),
        "{v:#}"
    );
    let repo = w.dir.path().join("r0");
    assert_eq!(git(&repo, &["show", "main:work.txt"]).trim(), "merge me");
}

#[test]
#[requires(slurm)]
fn merge_on_pass_merges_a_slurm_result_into_the_base_branch() {
    merge_on_pass(&Cluster::Slurm(SlurmCluster::start()));
}

#[test]
fn merge_on_pass_merges_a_kubernetes_result_into_the_base_branch_against_the_api_double() {
    merge_on_pass(&Cluster::Kube(KubeDouble::start()));
}

#[test]
#[requires(slurm)]
fn a_batch_budget_cancels_the_slurm_tasks_that_run() {
    budget_cancels_what_runs(&Cluster::Slurm(SlurmCluster::start()));
}

#[test]
fn a_batch_budget_cancels_the_kubernetes_pods_that_run_against_the_api_double() {
    budget_cancels_what_runs(&Cluster::Kube(KubeDouble::start()));
}

#[test]
#[requires(slurm)]
fn the_dashboard_follows_a_batch_on_slurm() {
    dashboard_follows_a_cluster_batch(&Cluster::Slurm(SlurmCluster::start()));
}

#[test]
fn the_dashboard_follows_a_batch_on_kubernetes_against_the_api_double() {
    dashboard_follows_a_cluster_batch(&Cluster::Kube(KubeDouble::start()));
}

#[test]
#[requires(slurm)]
fn bench_resume_after_kill_9_of_the_slurm_coordinator_runs_nothing_twice() {
    bench_resume_runs_nothing_twice(&Cluster::Slurm(SlurmCluster::start()));
}

#[test]
fn bench_resume_after_kill_9_of_the_kubernetes_coordinator_runs_nothing_twice_against_the_api_double() {
    bench_resume_runs_nothing_twice(&Cluster::Kube(KubeDouble::start()));
}

#[test]
#[requires(slurm)]
fn a_benchmark_on_slurm_ends_as_the_same_run_locally() {
    bench_same_as_local(&Cluster::Slurm(SlurmCluster::start()));
}

#[test]
fn a_benchmark_on_kubernetes_ends_as_the_same_run_locally_against_the_api_double() {
    bench_same_as_local(&Cluster::Kube(KubeDouble::start()));
}

#[test]
#[requires(slurm, claude)]
fn the_real_claude_code_runs_batch_items_on_slurm_with_the_default_permissions() {
    real_claude_on_a_cluster(&Cluster::Slurm(SlurmCluster::start()));
}

#[test]
#[requires(slurm)]
fn a_swe_bench_run_on_slurm_grades_as_the_same_run_locally() {
    swe_bench_same_as_local(&Cluster::Slurm(SlurmCluster::start()));
}

#[test]
fn a_swe_bench_run_on_kubernetes_grades_as_the_same_run_locally_against_the_api_double() {
    swe_bench_same_as_local(&Cluster::Kube(KubeDouble::start()));
}

#[test]
#[requires(slurm)]
fn bench_abort_cancels_the_slurm_tasks_within_five_seconds() {
    bench_abort_within_five_seconds(&Cluster::Slurm(SlurmCluster::start()));
}

#[test]
fn bench_abort_deletes_the_kubernetes_job_within_five_seconds_against_the_api_double() {
    bench_abort_within_five_seconds(&Cluster::Kube(KubeDouble::start()));
}

#[test]
#[requires(slurm)]
fn a_batch_on_slurm_ends_as_the_same_batch_run_locally() {
    same_results_as_local(&Cluster::Slurm(SlurmCluster::start()));
}

#[test]
#[requires(slurm)]
fn batch_abort_cancels_the_slurm_tasks_within_five_seconds() {
    abort_within_five_seconds(&Cluster::Slurm(SlurmCluster::start()));
}

#[test]
#[requires(slurm)]
fn batch_abort_ends_the_batch_when_the_slurm_cluster_is_gone() {
    abort_with_the_cluster_gone(Cluster::Slurm(SlurmCluster::start()));
}

#[test]
fn batch_abort_ends_the_batch_when_the_kubernetes_api_is_gone_against_the_api_double() {
    abort_with_the_cluster_gone(Cluster::Kube(KubeDouble::start()));
}

#[test]
#[requires(slurm)]
fn resume_after_kill_9_of_the_slurm_coordinator_runs_nothing_twice() {
    resume_runs_nothing_twice(&Cluster::Slurm(SlurmCluster::start()));
}

#[test]
fn a_batch_on_kubernetes_ends_as_the_same_batch_run_locally_against_the_api_double() {
    same_results_as_local(&Cluster::Kube(KubeDouble::start()));
}

#[test]
fn batch_abort_deletes_the_kubernetes_job_within_five_seconds_against_the_api_double() {
    abort_within_five_seconds(&Cluster::Kube(KubeDouble::start()));
}

#[test]
fn resume_after_kill_9_of_the_kubernetes_coordinator_runs_nothing_twice_against_the_api_double() {
    resume_runs_nothing_twice(&Cluster::Kube(KubeDouble::start()));
}

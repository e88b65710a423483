//! The single-node Slurm cluster of `ampsm_testutils::slurm`, for real: a throttled job array runs to the
//! end, a cancelled one stops at once with its processes, dropping a cluster ends what is left of it, and
//! two clusters run side by side. Not tested here: a time limit (`sbatch -t 1` ends a job only after 60 to
//! 90 s, as Slurm checks limits every 30 s).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use ampsm_testutils::{SlurmCluster, Tool, require, requires};

/// Starts a cluster and says how long it took.
fn start() -> SlurmCluster {
    require(Tool::Slurm);
    let started = Instant::now();
    let cluster = SlurmCluster::start();
    eprintln!(
        "Slurm cluster {} up in {:.1} s ({} CPUs)",
        cluster.name(),
        started.elapsed().as_secs_f64(),
        cluster.cpus()
    );
    cluster
}

/// Runs a Slurm command against the cluster; its stdout, or a panic with its stderr.
fn slurm(cluster: &SlurmCluster, program: &str, args: &[&str]) -> String {
    let out = cluster.command(program).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{program} {args:?} failed: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

/// `sbatch --parsable …`: the job id.
fn sbatch(cluster: &SlurmCluster, args: &[&str]) -> String {
    let mut all = vec!["--parsable"];
    all.extend_from_slice(args);
    let out = slurm(cluster, "sbatch", &all);
    let id = out.trim().split(';').next().unwrap().to_string();
    assert!(id.parse::<u64>().is_ok(), "sbatch printed {out:?}");
    id
}

/// The lines of `squeue -h -j <id> -o '%i %T'` (each array task or pending range, and its state); none once
/// the job ended.
fn queued(cluster: &SlurmCluster, id: &str) -> Vec<String> {
    let out = cluster.command("squeue").args(["-h", "-j", id, "-o", "%i %T"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("Invalid job id") {
        return Vec::new(); // already purged (older than MinJobAge)
    }
    assert!(out.status.success(), "squeue failed: {stderr}");
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect()
}

/// Polls squeue until the job left the queue; the most tasks seen running at once.
fn wait_gone(cluster: &SlurmCluster, id: &str, limit: Duration) -> usize {
    let deadline = Instant::now() + limit;
    let mut most_running = 0;
    loop {
        let lines = queued(cluster, id);
        if lines.is_empty() {
            return most_running;
        }
        most_running = most_running.max(lines.iter().filter(|l| l.ends_with(" RUNNING")).count());
        assert!(Instant::now() < deadline, "job {id} still queued after {limit:?}: {lines:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The job completion log's lines of array job `id`: task id → `JobState`.
fn finished_tasks(cluster: &SlurmCluster, id: &str) -> BTreeMap<u32, String> {
    let text = std::fs::read_to_string(cluster.jobcomp()).unwrap_or_default();
    let field = |line: &str, key: &str| {
        line.split(' ').find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')).map(str::to_string)
    };
    text.lines()
        .filter(|line| field(line, "ArrayJobId").as_deref() == Some(id))
        .map(|line| (field(line, "ArrayTaskId").unwrap().parse().unwrap(), field(line, "JobState").unwrap()))
        .collect()
}

/// Live (not zombie) processes whose environment holds every one of `vars` (`NAME=value`).
fn processes_with(vars: &[&str]) -> Vec<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            alive(*pid) && vars.iter().all(|var| environ.split(|b| *b == 0).any(|v| v == var.as_bytes()))
        })
        .collect()
}

/// Live processes with a file of `dir` open (the cluster's slurmstepd keep slurmd's log open).
fn processes_using(dir: &Path) -> Vec<u32> {
    let me = std::process::id();
    let dir = dir.canonicalize().unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
                fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok()).any(|f| f.starts_with(&dir))
            })
        })
        .collect()
}

/// Whether a process exists and is not a zombie.
fn alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z'))
}

/// The command name of a process (`""` once it is gone).
fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_string()
}

/// The processes of job `id` (an array job's tasks too) of the cluster.
fn job_processes(cluster: &SlurmCluster, id: &str) -> Vec<u32> {
    let name = format!("SLURM_CLUSTER_NAME={}", cluster.name());
    let array = processes_with(&[&name, &format!("SLURM_ARRAY_JOB_ID={id}")]);
    [array, processes_with(&[&name, &format!("SLURM_JOB_ID={id}")])].concat()
}

/// Waits until job `id` has `n` tasks running with their `sleep` started.
fn wait_sleeping(cluster: &SlurmCluster, id: &str, n: usize) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sleeps: Vec<u32> = job_processes(cluster, id)
            .into_iter()
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
            })
            .collect();
        if sleeps.len() >= n {
            return sleeps;
        }
        assert!(Instant::now() < deadline, "{n} tasks of job {id} not sleeping: {:?}", queued(cluster, id));
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[requires(slurm)]
#[test]
fn slurm_cluster_runs_a_throttled_array_cancels_one_and_cleans_up_when_dropped() {
    let cluster = start();
    let dir = cluster.dir().to_path_buf();
    let out = format!("{}/%A_%a.out", dir.display());

    // Four tasks, at most two at a time; each prints its index.
    let id =
        sbatch(&cluster, &["--array=0-3%2", "-o", &out, "--wrap", "echo task $SLURM_ARRAY_TASK_ID; sleep 1"]);
    let started = Instant::now();
    let most_running = wait_gone(&cluster, &id, Duration::from_secs(60));
    eprintln!("array of 4 tasks (2 at a time, 1 s each) done in {:.1} s", started.elapsed().as_secs_f64());
    assert!(most_running <= 2, "{most_running} tasks ran at once despite %2");
    for task in 0..4 {
        assert_eq!(read(&dir.join(format!("{id}_{task}.out"))), format!("task {task}\n"));
    }
    let states = finished_tasks(&cluster, &id);
    assert_eq!(states.keys().copied().collect::<Vec<_>>(), [0, 1, 2, 3], "{states:?}");
    assert!(states.values().all(|s| s == "COMPLETED"), "{states:?}");
    let shown = slurm(&cluster, "scontrol", &["-o", "show", "job", &id]);
    assert_eq!(shown.lines().count(), 4, "finished tasks stay in scontrol (MinJobAge): {shown}");
    let all = slurm(&cluster, "squeue", &["-h", "-t", "all", "-j", &id, "-o", "%T"]);
    assert_eq!(all.lines().collect::<Vec<_>>(), ["COMPLETED"; 4], "and in squeue -t all");

    // A cancelled array ends within 5 s, and its processes with it.
    let id = sbatch(&cluster, &["--array=0-3", "-o", &out, "--wrap", "sleep 300"]);
    let sleeps = wait_sleeping(&cluster, &id, 2.min(cluster.cpus()));
    let cancelled = Instant::now();
    slurm(&cluster, "scancel", &[&id]);
    wait_gone(&cluster, &id, Duration::from_secs(5));
    eprintln!("cancelled array gone from squeue in {:.1} s", cancelled.elapsed().as_secs_f64());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !job_processes(&cluster, &id).is_empty() {
        assert!(Instant::now() < deadline, "the cancelled tasks' processes outlive them: {sleeps:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let shown = slurm(&cluster, "scontrol", &["-o", "show", "job", &id]);
    assert!(shown.lines().all(|l| l.contains("JobState=CANCELLED")), "{shown}");

    // Dropping the cluster stops its daemons and kills its jobs, here one still running.
    let id = sbatch(&cluster, &["-o", &out, "--wrap", "sleep 300"]);
    wait_sleeping(&cluster, &id, 1);
    let cluster_mark = format!("SLURM_CLUSTER_NAME={}", cluster.name());
    let dir_mark = format!("AMPSM_SLURM_DIR={}", dir.display());
    let mut before =
        [processes_with(&[&cluster_mark]), processes_with(&[&dir_mark]), processes_using(&dir)].concat();
    before.sort_unstable();
    before.dedup();
    let names: Vec<String> = before.iter().map(|pid| comm(*pid)).collect();
    for name in ["munged", "slurmctld", "slurmd", "slurmstepd", "sleep"] {
        assert!(names.iter().any(|n| n == name), "no {name} among the cluster's processes: {names:?}");
    }
    let dropped = Instant::now();
    drop(cluster);
    eprintln!("cluster stopped in {:.1} s", dropped.elapsed().as_secs_f64());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: Vec<(u32, String)> =
            before.iter().filter(|pid| alive(**pid)).map(|pid| (*pid, comm(*pid))).collect();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "processes of the dropped cluster are left: {left:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!dir.exists(), "the cluster's folder is removed");
}

#[requires(slurm)]
#[test]
fn two_slurm_clusters_run_side_by_side() {
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(start);
        let b = s.spawn(start);
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_ne!(a.name(), b.name());
    let conf = |c: &SlurmCluster| read(c.conf());
    let port = |c: &SlurmCluster, key: &str| {
        conf(c).lines().find_map(|l| l.strip_prefix(key).map(str::to_string)).unwrap()
    };
    let ports = [
        port(&a, "SlurmctldPort="),
        port(&a, "SlurmdPort="),
        port(&b, "SlurmctldPort="),
        port(&b, "SlurmdPort="),
    ];
    let distinct: std::collections::HashSet<_> = ports.iter().collect();
    assert_eq!(distinct.len(), 4, "{ports:?}");

    let mut jobs = Vec::new();
    for cluster in [&a, &b] {
        let out = format!("{}/%j.out", cluster.dir().display());
        jobs.push(sbatch(cluster, &["-o", &out, "--wrap", "echo $SLURM_CLUSTER_NAME"]));
    }
    for (cluster, id) in [(&a, &jobs[0]), (&b, &jobs[1])] {
        wait_gone(cluster, id, Duration::from_secs(30));
        assert_eq!(read(&cluster.dir().join(format!("{id}.out"))), format!("{}\n", cluster.name()));
        let shown = slurm(cluster, "scontrol", &["-o", "show", "job", id]);
        assert!(shown.contains("JobState=COMPLETED"), "{shown}");
    }
}

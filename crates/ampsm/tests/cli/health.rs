//! `doctor` and `verify-amp`: what they report, and that they never start a billed agent run.

use crate::support::World;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// An `amp` stand-in for the two commands verify-amp may use (`--version`, `usage`); it logs its argv.
fn fake_amp(w: &World) -> (PathBuf, PathBuf) {
    let log = w.dir.path().join("amp-calls.log");
    let path = w.dir.path().join("amp");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\necho \"$*\" >> {}\ncase \"$1\" in\n  --version) echo '0.0.1790142911-test';;\n  usage) echo 'Signed in as dev@example.com'; echo 'Individual credits: $10 remaining';;\n  *) echo 'unexpected call' >&2; exit 9;;\nesac\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    w.write_config(&format!("amp:\n  path: {}\n", path.display()));
    (path, log)
}

fn calls(log: &PathBuf) -> Vec<String> {
    std::fs::read_to_string(log).unwrap_or_default().lines().map(str::to_string).collect()
}

#[test]
fn verify_amp_checks_the_key_without_spending_and_skips_the_call_without_one() {
    let w = World::new();
    let (path, log) = fake_amp(&w);

    let out = w.run(&["verify-amp", "--json"]);
    assert!(!out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["found"], path.to_str().unwrap());
    assert_eq!(v["version"], "0.0.1790142911-test");
    assert_eq!(v["key_present"], false);
    assert_eq!(v["auth_check"], "skipped");
    assert!(String::from_utf8_lossy(&out.stderr).contains("amp login"));
    assert_eq!(calls(&log), ["--version"], "without a key nothing but the version is asked");

    w.set_env("AMP_API_KEY", "sgamp_user_test");
    let v = w.json(&["verify-amp"]);
    assert_eq!(v["key_present"], true);
    assert_eq!(v["key_source"], "AMP_API_KEY");
    assert_eq!(v["auth_check"], "ok");
    assert!(v["auth_detail"].as_str().unwrap().contains("Signed in"));
    let all = calls(&log);
    assert!(all.contains(&"usage".to_string()), "{all:?}");
    assert!(all.iter().all(|c| !c.contains("-x") && !c.contains("execute")), "never an agent run: {all:?}");
    assert!(!w.ok(&["verify-amp"]).contains("sgamp_user_test"), "the key is never printed");
}

#[test]
fn doctor_reports_git_database_agents_and_capabilities() {
    let w = World::new();
    fake_amp(&w);
    let report = w.json(&["doctor"]);
    let checks = report["checks"].as_array().unwrap();
    let check = |name: &str| {
        checks.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no {name} in {checks:?}")).clone()
    };
    assert_eq!(check("git")["status"], "ok");
    assert_eq!(check("database")["status"], "ok");
    let amp = check("agent amp");
    assert!(amp["detail"].as_str().unwrap().contains("0.0.1790142911-test"), "{amp}");
    assert_eq!(amp["status"], "warn", "no key: a warning, not a failure");
    assert_eq!(check("agent offline")["status"], "ok");
    let agents = report["agents"].as_array().unwrap();
    let amp = agents.iter().find(|a| a["agent"] == "amp").unwrap();
    assert_eq!(amp["capabilities"]["continue_mode"], "resume");
    assert_eq!(amp["capabilities"]["reports_cost"], false);
    let human = w.ok(&["doctor"]);
    assert!(human.contains("CHECK") && human.contains("agent amp"), "{human}");
}

#[test]
fn a_reader_that_goes_away_ends_the_output_quietly() {
    // `amp-sessions completions bash | head -1`: the script (about 100 kB) is more than a pipe holds, so the
    // writer meets the closed pipe for sure.
    let w = World::new();
    let mut child = w.spawn(&["completions", "bash"]);
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr, "", "nothing on stderr");
}

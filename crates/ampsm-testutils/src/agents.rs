//! Locating agent binaries for tests: the fake agent built from this crate and
//! its scenario files (the real CLIs are outside tools: see [`crate::tools`]).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::SystemTime;

/// This crate's directory (where `scenarios/` lives).
const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// Binary name of the fake agent.
const FAKE_AGENT_NAME: &str = "fake-agent";

/// The workspace root: the nearest ancestor of this crate holding a
/// `Cargo.toml` with a `[workspace]` table.
pub fn workspace_root() -> PathBuf {
    crate::tools::workspace_root_of(Path::new(MANIFEST_DIR))
}

/// Directory of the shipped scenario files.
pub fn scenarios_dir() -> PathBuf {
    Path::new(MANIFEST_DIR).join("scenarios")
}

/// Path of a shipped scenario file: `scenario_path("amp_oneshot")` gives
/// `…/ampsm-testutils/scenarios/amp_oneshot.json` (the `.json` suffix is
/// optional). Panics if the file does not exist, listing what does.
pub fn scenario_path(name: &str) -> PathBuf {
    let file = if name.ends_with(".json") { name.to_owned() } else { format!("{name}.json") };
    let path = scenarios_dir().join(file);
    if !path.is_file() {
        let mut known: Vec<String> = std::fs::read_dir(scenarios_dir())
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        known.sort();
        panic!("no scenario {name:?} at {}; known: {known:?}", path.display());
    }
    path
}

/// Path of the built `fake-agent` binary.
///
/// Looked up, in order: env `FAKE_AGENT_BIN`; `fake-agent` in the cargo
/// profile directory of the running executable (`target/<profile>/`, also when
/// running from `target/<profile>/deps/`) if it is not older than its source;
/// otherwise it is built with `cargo build -p ampsm-testutils --bin fake-agent`
/// into the separate target dir `target/fake-agent/` (a separate dir so the
/// build does not wait on the lock held by the `cargo test` that runs us).
/// Panics if it cannot be found or built.
pub fn fake_agent_path() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(locate_or_build_fake_agent).clone()
}

fn locate_or_build_fake_agent() -> PathBuf {
    if let Some(path) = std::env::var_os("FAKE_AGENT_BIN").map(PathBuf::from) {
        if path.is_file() {
            return path;
        }
        panic!("FAKE_AGENT_BIN={} does not exist", path.display());
    }
    if let Some(profile_dir) = current_profile_dir() {
        let candidate = profile_dir.join(FAKE_AGENT_NAME);
        if candidate.is_file() && !is_stale(&candidate) {
            return candidate;
        }
    }
    build_fake_agent()
}

/// `target/<profile>` of the running executable.
fn current_profile_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    if dir.file_name().is_some_and(|name| name == "deps") {
        dir.parent().map(Path::to_path_buf)
    } else {
        Some(dir.to_path_buf())
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|meta| meta.modified()).ok()
}

/// Whether the binary is older than the fake agent's sources.
fn is_stale(binary: &Path) -> bool {
    let Some(built) = modified(binary) else { return true };
    let sources =
        [Path::new(MANIFEST_DIR).join("src/bin/fake_agent.rs"), Path::new(MANIFEST_DIR).join("Cargo.toml")];
    sources.iter().filter_map(|source| modified(source)).any(|changed| changed > built)
}

fn build_fake_agent() -> PathBuf {
    let target_dir = workspace_root().join("target").join("fake-agent");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(&cargo)
        .current_dir(workspace_root())
        .args(["build", "--quiet", "-p", "ampsm-testutils", "--bin", FAKE_AGENT_NAME, "--target-dir"])
        .arg(&target_dir)
        .status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => panic!("building {FAKE_AGENT_NAME} failed: {status}"),
        Err(err) => panic!("could not run cargo to build {FAKE_AGENT_NAME}: {err}"),
    }
    let path = target_dir.join("debug").join(FAKE_AGENT_NAME);
    if !path.is_file() {
        panic!("cargo built {FAKE_AGENT_NAME} but {} is missing", path.display());
    }
    path
}

/// Makes the fake agent available as `dir/name` (e.g. `amp`, `claude`) via a
/// symlink, or a copy where symlinks fail, replacing whatever was there.
/// Put `dir` first on `PATH` to make it stand in for the real CLI. Panics on
/// failure.
pub fn install_fake_agent_as(dir: &Path, name: &str) -> PathBuf {
    let source = fake_agent_path();
    if let Err(err) = std::fs::create_dir_all(dir) {
        panic!("could not create {}: {err}", dir.display());
    }
    let target = dir.join(name);
    if std::fs::symlink_metadata(&target).is_ok()
        && let Err(err) = std::fs::remove_file(&target)
    {
        panic!("could not replace {}: {err}", target.display());
    }
    if std::os::unix::fs::symlink(&source, &target).is_err()
        && let Err(err) = std::fs::copy(&source, &target)
    {
        panic!("could not install {} as {}: {err}", source.display(), target.display());
    }
    target
}

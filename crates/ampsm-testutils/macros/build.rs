//! Probes every tool of `../src/tools.rs` and hands the names of the missing ones to the `requires` macro
//! (`AMPSM_MISSING_TOOLS`, comma-separated). With `CI` set nothing counts as missing, so CI runs those
//! tests and they fail. Cargo runs this again when `CI` changes or a tool's files appear or go. Not when
//! `PATH` changes: shells differ in it, and each change would rebuild every test crate; a python3 that
//! left `PATH` since is not ignored but fails its test, loudly.

#[allow(dead_code)]
#[path = "../src/tools.rs"]
mod tools;

use std::path::PathBuf;
use tools::Tool;

fn main() {
    println!("cargo::rerun-if-env-changed=CI");
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = tools::workspace_root_of(&manifest_dir);
    let mut missing = Vec::new();
    for tool in Tool::ALL {
        for path in tool.watched(&root) {
            println!("cargo::rerun-if-changed={}", path.display());
        }
        if tool.find_in(&root).is_none() && !tools::in_ci() {
            missing.push(tool.name());
        }
    }
    println!("cargo::rustc-env=AMPSM_MISSING_TOOLS={}", missing.join(","));
}

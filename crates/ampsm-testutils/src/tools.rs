//! The outside tools some tests need (Chromium, the real agent CLIs, pytest, python3, LibreOffice, the desktop
//! app's X server, bus and WebDriver, Slurm and munge): where each one is looked for and what installs it.
//!
//! One file serves three builds: the build script of `ampsm-test-macros` probes every tool so that
//! `#[requires(tool)]` marks a test ignored (with [`Tool::reason`]) when its tool is missing, the macro
//! itself reads the names and reasons, and the tests find the tools at run time with [`require`]. It uses
//! std only, and paths are looked up from a folder given by the caller (each build has its own manifest
//! folder).

use std::path::{Path, PathBuf};

/// A tool that some tests cannot run without.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    /// Debian's Chromium and its chromedriver (the dashboard's browser tests).
    Chromium,
    /// The real Claude Code CLI, installed by `.ci/install-agents.sh`.
    Claude,
    /// The real Codex CLI, installed by `.ci/install-agents.sh`.
    Codex,
    /// The real Amp CLI, installed by `.ci/install-agents.sh`.
    Amp,
    /// The pinned pytest of `.ci/install-python.sh` (the SWE-bench grading tests).
    Pytest,
    /// `python3` on `PATH` (reads the CSV exports back).
    Python3,
    /// LibreOffice's `soffice` (loads the CSV exports as a spreadsheet).
    Soffice,
    /// The pinned axe-core of `.ci/install-axe.sh` (the dashboard's accessibility checks in Chromium).
    Axe,
    /// What the desktop app's tests run it in: Xvfb, a session bus, dunst (the notification service),
    /// notify-send, xdotool and WebKitGTK's WebDriver, from Debian's packages.
    DesktopSession,
    /// The pinned `tauri-driver` of `.ci/desktop.sh` (the WebDriver server of the desktop app's tests).
    TauriDriver,
    /// Debian's Slurm daemons and CLI and munge, installed by `.ci/install-slurm.sh` (the single-node cluster of
    /// `ampsm_testutils::slurm`).
    Slurm,
}

/// Where a tool is found: files that must all be there, or a program on `PATH`.
enum Place {
    /// Absolute paths.
    Files(&'static [&'static str]),
    /// Paths below the workspace root.
    InWorkspace(&'static [&'static str]),
    /// A program name looked up in `PATH`.
    OnPath(&'static str),
}

impl Tool {
    /// Every tool, in the order the build script reports them.
    pub const ALL: [Tool; 11] = [
        Tool::Chromium,
        Tool::Claude,
        Tool::Codex,
        Tool::Amp,
        Tool::Pytest,
        Tool::Python3,
        Tool::Soffice,
        Tool::Axe,
        Tool::DesktopSession,
        Tool::TauriDriver,
        Tool::Slurm,
    ];

    /// The name used in `#[requires(name)]`.
    pub fn name(self) -> &'static str {
        match self {
            Tool::Chromium => "chromium",
            Tool::Claude => "claude",
            Tool::Codex => "codex",
            Tool::Amp => "amp",
            Tool::Pytest => "pytest",
            Tool::Python3 => "python3",
            Tool::Soffice => "soffice",
            Tool::Axe => "axe",
            Tool::DesktopSession => "desktop_session",
            Tool::TauriDriver => "tauri_driver",
            Tool::Slurm => "slurm",
        }
    }

    /// The tool called `name` in `#[requires(name)]`.
    pub fn from_name(name: &str) -> Option<Tool> {
        Tool::ALL.into_iter().find(|tool| tool.name() == name)
    }

    /// What is missing and how to install it: the reason an ignored test shows.
    pub fn reason(self) -> &'static str {
        match self {
            Tool::Chromium => {
                "Chromium and chromedriver are not installed \
                 (apt-get install chromium chromium-driver; .ci/run does)"
            }
            Tool::Claude => "the real Claude Code CLI is not installed (bash .ci/install-agents.sh)",
            Tool::Codex => "the real Codex CLI is not installed (bash .ci/install-agents.sh)",
            Tool::Amp => "the real Amp CLI is not installed (bash .ci/install-agents.sh)",
            Tool::Pytest => "the pinned pytest is not installed (bash .ci/install-python.sh)",
            Tool::Python3 => "python3 is not on PATH (apt-get install python3)",
            Tool::Soffice => {
                "LibreOffice Calc is not installed (apt-get install libreoffice-calc-nogui; .ci/run does)"
            }
            Tool::Axe => "the pinned axe-core is not installed (bash .ci/install-axe.sh; .ci/run does)",
            Tool::DesktopSession => {
                "Xvfb, dbus-x11, dunst, libnotify-bin, xdotool or webkit2gtk-driver is not installed (bash .ci/desktop.sh \
                 installs them; .ci/run runs it)"
            }
            Tool::TauriDriver => {
                "the pinned tauri-driver is not installed (bash .ci/desktop.sh; .ci/run runs it)"
            }
            Tool::Slurm => {
                "Slurm (slurmctld, slurmd, sbatch, squeue, scontrol, scancel, sinfo) or munge (munged, mungekey) is \
                 not installed (bash .ci/install-slurm.sh; .ci/run runs it), or the tests do not run as root (the \
                 single-node cluster's daemons need it)"
            }
        }
    }

    fn place(self) -> Place {
        match self {
            Tool::Chromium => Place::Files(&["/usr/bin/chromium", "/usr/bin/chromedriver"]),
            Tool::Claude => Place::InWorkspace(&[".ci/npm/node_modules/.bin/claude"]),
            Tool::Codex => Place::InWorkspace(&[".ci/npm/node_modules/.bin/codex"]),
            Tool::Amp => Place::InWorkspace(&[".ci/npm/node_modules/.bin/amp"]),
            Tool::Pytest => Place::InWorkspace(&[".ci/python/bin/pytest"]),
            Tool::Python3 => Place::OnPath("python3"),
            Tool::Soffice => Place::Files(&["/usr/bin/soffice"]),
            Tool::Axe => Place::InWorkspace(&[".ci/web/node_modules/axe-core/axe.min.js"]),
            Tool::DesktopSession => Place::Files(&[
                "/usr/bin/Xvfb",
                "/usr/bin/dbus-launch",
                "/usr/bin/dunst",
                "/usr/bin/dunstctl",
                "/usr/bin/xdotool",
                "/usr/bin/notify-send",
                "/usr/bin/WebKitWebDriver",
            ]),
            Tool::TauriDriver => Place::InWorkspace(&[".ci/desktop/bin/tauri-driver"]),
            Tool::Slurm => Place::Files(&[
                "/usr/sbin/slurmctld",
                "/usr/sbin/slurmd",
                "/usr/sbin/munged",
                "/usr/sbin/mungekey",
                "/usr/bin/sbatch",
                "/usr/bin/squeue",
                "/usr/bin/scontrol",
                "/usr/bin/scancel",
                "/usr/bin/sinfo",
            ]),
        }
    }

    /// The files the tool needs, for a workspace at `root` (for a program on `PATH`: the first match, or
    /// nothing when there is none).
    fn files(self, root: &Path) -> Vec<PathBuf> {
        match self.place() {
            Place::Files(paths) => paths.iter().map(PathBuf::from).collect(),
            Place::InWorkspace(paths) => paths.iter().map(|p| root.join(p)).collect(),
            Place::OnPath(program) => {
                path_dirs().map(|dir| dir.join(program)).find(|p| p.is_file()).into_iter().collect()
            }
        }
    }

    /// The tool's main file (the first it needs) in the workspace at `root`; `None` when any file is
    /// missing.
    pub fn find_in(self, root: &Path) -> Option<PathBuf> {
        if self == Tool::Slurm && !running_as_root() {
            return None;
        }
        let files = self.files(root);
        if files.is_empty() || !files.iter().all(|p| p.is_file()) {
            return None;
        }
        files.into_iter().next()
    }

    /// What a build script watches to notice the tool being installed or removed: each file it needs, or
    /// the nearest folder above a missing one that exists (for a program on `PATH` that is missing: every
    /// folder of `PATH`).
    pub fn watched(self, root: &Path) -> Vec<PathBuf> {
        let files = match self.place() {
            Place::OnPath(_) if self.find_in(root).is_none() => {
                return path_dirs().filter(|d| d.is_dir()).collect();
            }
            _ => self.files(root),
        };
        files
            .into_iter()
            .filter_map(|file| file.ancestors().find(|p| p.exists()).map(Path::to_path_buf))
            .collect()
    }
}

fn path_dirs() -> impl Iterator<Item = PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).collect::<Vec<_>>().into_iter()
}

/// The workspace holding `start`: the nearest folder above it with a `Cargo.toml` that has a `[workspace]`
/// table (falls back to `start` itself).
pub fn workspace_root_of(start: &Path) -> PathBuf {
    start
        .ancestors()
        .find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .is_ok_and(|text| text.lines().any(|line| line.trim() == "[workspace]"))
        })
        .unwrap_or(start)
        .to_path_buf()
}

/// Whether this is a CI run (`CI` set, and not to "", "0" or "false"): then no test is ignored for a
/// missing tool, it runs and fails.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// The tool's main file (for Chromium: `/usr/bin/chromium`) in this workspace. Panics with
/// [`Tool::reason`] when it is missing: a test marked `#[requires(tool)]` gets here only when the build
/// found the tool, in CI, or when run with `--ignored`, and then a missing tool is a failure, never a pass.
pub fn require(tool: Tool) -> PathBuf {
    let root = workspace_root_of(Path::new(env!("CARGO_MANIFEST_DIR")));
    match tool.find_in(&root) {
        Some(path) => path,
        None => panic!("this test needs {}: {}", tool.name(), tool.reason()),
    }
}

/// Whether this process runs as root (its real uid, from `/proc/self/status`).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("Uid:")).map(|v| v.split_whitespace().next() == Some("0"))
        })
        .unwrap_or(false)
}

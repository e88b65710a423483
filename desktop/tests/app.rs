//! The desktop app driven as a user drives it: the real binary (the one `cargo build --release` made, or the
//! installed package's with `AMPSM_DESKTOP_BIN`) in its own X server (Xvfb) with its own session bus and a
//! real notification service (dunst, which prints every notification it gets), through WebDriver
//! (`tauri-driver` in front of WebKitGTK's `WebKitWebDriver`), and real keys sent by `xdotool` for the app
//! menu's shortcuts. Each test has its own home, display, bus and driver.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ampsm_testutils::{Tool, git, init_repo, require, requires};
use serde_json::{Value, json};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The app's binary: `AMPSM_DESKTOP_BIN` (the installed package's, in CI), else this build's.
fn app_binary() -> PathBuf {
    match std::env::var_os("AMPSM_DESKTOP_BIN").filter(|v| !v.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_BIN_EXE_amp-sessions-desktop")),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {secs} s waiting for {what}");
        std::thread::sleep(Duration::from_millis(150));
    }
}

/// A display, a bus and a notification service of the test's own, and the home the app keeps its data in.
struct Desk {
    dir: tempfile::TempDir,
    display: String,
    bus: String,
    xvfb: Child,
    dbus_pid: Option<i32>,
    dunst: Child,
}

impl Desk {
    fn start() -> Desk {
        require(Tool::DesktopSession);
        let dir = tempfile::Builder::new().prefix("ampsm-desktop-").tempdir().unwrap();
        for sub in ["home/.config", "home/.local/share", "home/.cache", "run"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        // Xvfb picks a free display itself and says which (`-displayfd`): tests that chose numbers
        // themselves could pick the same one (a lock file another test's server had not written yet), and
        // then two apps shared a screen and took each other's keys.
        let mut xvfb = Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0", "1400x1000x24", "-nolisten", "tcp"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(xvfb.stdout.take().unwrap()), &mut line)
            .unwrap();
        let n: u32 = line.trim().parse().unwrap_or_else(|_| panic!("Xvfb named no display: {line:?}"));
        let display = format!(":{n}");
        wait_for(20, "Xvfb", || Path::new(&format!("/tmp/.X11-unix/X{n}")).exists().then_some(()));
        // A session bus of the test's own with no service folders: nothing is started on demand, so a
        // notification reaches this test's dunst or fails; never a dunst the bus would start for a first
        // call that came before ours owned the name (on a fresh machine dunst's first start, building the
        // font cache, takes long enough for that).
        let bus_config = dir.path().join("session-bus.conf");
        std::fs::write(
            &bus_config,
            "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n              \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n<busconfig>\n  <type>session</type>\n               <listen>unix:tmpdir=/tmp</listen>\n  <auth>EXTERNAL</auth>\n  <policy context=\"default\">\n                 <allow send_destination=\"*\" eavesdrop=\"true\"/>\n    <allow eavesdrop=\"true\"/>\n                 <allow own=\"*\"/>\n  </policy>\n</busconfig>\n",
        )
        .unwrap();
        let out = Command::new("dbus-launch")
            .arg("--sh-syntax")
            .arg(format!("--config-file={}", bus_config.display()))
            .env("DISPLAY", &display)
            .output()
            .expect("start a session bus");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}=")))
                .map(|v| v.trim_end_matches(';').trim_matches('\'').to_string())
        };
        let bus = field("DBUS_SESSION_BUS_ADDRESS").unwrap_or_else(|| panic!("no bus address in {text}"));
        let dbus_pid = field("DBUS_SESSION_BUS_PID").and_then(|p| p.parse().ok());
        let config = dir.path().join("dunstrc");
        std::fs::write(
            &config,
            "[global]\n    follow = none\n[urgency_low]\n    timeout = 0\n[urgency_normal]\n    timeout = 0\n\
             [urgency_critical]\n    timeout = 0\n",
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("dunst.log")).unwrap();
        let dunst = Command::new("dunst")
            .args(["-print", "-config"])
            .arg(&config)
            .env("DISPLAY", &display)
            .env("DBUS_SESSION_BUS_ADDRESS", &bus)
            .stdout(log)
            .stderr(std::fs::File::create(dir.path().join("dunst.err")).unwrap())
            .spawn()
            .expect("start dunst");
        let desk = Desk { dir, display, bus, xvfb, dbus_pid, dunst };
        // dunst owns the notification name once it answers.
        wait_for(60, "dunst on the bus", || {
            desk.command("dunstctl").arg("is-paused").output().ok().filter(|o| o.status.success()).map(|_| ())
        });
        desk
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn ampsm_home(&self) -> PathBuf {
        self.home().join(".ampsm")
    }

    /// The environment of everything started on this desk (the app inherits it through the drivers).
    fn env(&self) -> Vec<(String, String)> {
        let home = self.home();
        let h = |p: &str| home.join(p).display().to_string();
        vec![
            ("DISPLAY".into(), self.display.clone()),
            ("DBUS_SESSION_BUS_ADDRESS".into(), self.bus.clone()),
            ("HOME".into(), home.display().to_string()),
            ("AMPSM_HOME".into(), self.ampsm_home().display().to_string()),
            ("XDG_CONFIG_HOME".into(), h(".config")),
            ("XDG_DATA_HOME".into(), h(".local/share")),
            ("XDG_CACHE_HOME".into(), h(".cache")),
            ("XDG_RUNTIME_DIR".into(), self.dir.path().join("run").display().to_string()),
            ("NO_AT_BRIDGE".into(), "1".into()),
            ("GIT_AUTHOR_NAME".into(), "Desk User".into()),
            ("GIT_AUTHOR_EMAIL".into(), "desk@example.invalid".into()),
            ("GIT_COMMITTER_NAME".into(), "Desk User".into()),
            ("GIT_COMMITTER_EMAIL".into(), "desk@example.invalid".into()),
        ]
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.envs(self.env());
        c
    }

    /// Everything dunst was asked to show so far.
    fn notifications(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dunst.log")).unwrap_or_default()
    }

    /// The titles of the top-level windows on this display.
    fn window_titles(&self) -> String {
        let out = self.command("xdotool").args(["search", "--onlyvisible", "--name", "."]).output().unwrap();
        let ids = String::from_utf8_lossy(&out.stdout).to_string();
        ids.lines()
            .filter_map(|id| {
                let o = self.command("xdotool").args(["getwindowname", id]).output().ok()?;
                Some(String::from_utf8_lossy(&o.stdout).trim().to_string())
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Whether any window of the app is left on the display, shown or not (none once the app ended).
    fn app_alive(&self) -> bool {
        let out = self.command("xdotool").args(["search", "--name", "^amp-sessions"]).output().unwrap();
        !String::from_utf8_lossy(&out.stdout).trim().is_empty()
    }

    /// Presses `keys` (xdotool's names, such as `ctrl+3`) in the app's main window.
    fn keys(&self, keys: &str) {
        self.keys_in("^amp-sessions($| — )", keys);
    }

    /// Presses `keys` in the first window whose title matches the regular expression `title`.
    fn keys_in(&self, title: &str, keys: &str) {
        let out =
            self.command("xdotool").args(["search", "--onlyvisible", "--name", title]).output().unwrap();
        let ids = String::from_utf8_lossy(&out.stdout).to_string();
        let id = ids
            .lines()
            .next()
            .unwrap_or_else(|| panic!("no app window: {}", self.window_titles()))
            .to_string();
        let ok = self.command("xdotool").args(["windowfocus", &id]).status().unwrap().success();
        assert!(ok, "xdotool could not focus the window");
        std::thread::sleep(Duration::from_millis(300));
        let ok = self.command("xdotool").args(["key", "--clearmodifiers", keys]).status().unwrap().success();
        assert!(ok, "xdotool could not press {keys}");
    }

    /// A git repository with the offline demo agent's files, for sessions to work on.
    fn repo(&self) -> PathBuf {
        let repo = init_repo(&self.dir.path().join("repo"));
        for (path, content) in ampsm_agent::offline::demo_repo_files() {
            let full = repo.join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, content).unwrap();
        }
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-q", "-m", "the demo's files"]);
        repo.canonicalize().unwrap()
    }
}

impl Drop for Desk {
    fn drop(&mut self) {
        let _ = self.dunst.kill();
        let _ = self.dunst.wait();
        if let Some(pid) = self.dbus_pid {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
        // SIGTERM: the server removes its lock file (SIGKILL would leave it behind).
        let _ = Command::new("kill").arg(self.xvfb.id().to_string()).status();
        let _ = self.xvfb.wait();
    }
}

/// `tauri-driver` on a free port, with the desk's environment, its output (and the app's) kept in a file.
struct Driver {
    child: Child,
    base: String,
    log: PathBuf,
    http: ureq::Agent,
}

impl Driver {
    fn start(desk: &Desk, name: &str) -> Driver {
        let driver = require(Tool::TauriDriver);
        let (port, native) = (free_port(), free_port());
        let log = desk.dir.path().join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let child = desk
            .command(driver.to_str().unwrap())
            .args(["--port", &port.to_string(), "--native-port", &native.to_string()])
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start tauri-driver");
        // One connection kept alive for every command: tauri-driver is flaky with one per command.
        let http = ureq::AgentBuilder::new().timeout(Duration::from_secs(60)).max_idle_connections(4).build();
        let base = format!("http://127.0.0.1:{port}");
        wait_for(30, "tauri-driver", || http.get(&format!("{base}/status")).call().ok().map(|_| ()));
        Driver { child, base, log, http }
    }

    fn call(&self, method: &str, url: &str, body: Option<Value>) -> Value {
        let req = self.http.request(method, url);
        let resp = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        match resp {
            Ok(r) => r.into_json().unwrap_or(Value::Null),
            Err(ureq::Error::Status(code, r)) => {
                panic!("WebDriver {method} {url}: {code} {}", r.into_string().unwrap_or_default())
            }
            Err(e) => panic!("WebDriver {method} {url}: {e}"),
        }
    }

    /// Launches the app and opens a WebDriver session on its window.
    fn launch(&self) -> App<'_> {
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "tauri:options": { "application": app_binary().display().to_string() }
        }}});
        let v = self.call("POST", &format!("{}/session", self.base), Some(caps));
        let session =
            v["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {v}")).to_string();
        let app = App { driver: self, session };
        // The window lands on the dashboard, logged in (the token never reaches the address bar).
        wait_for(30, "the dashboard in the window", || {
            let url = app.current_url();
            (url.starts_with("http://127.0.0.1:") && !url.contains("token=") && app.has("nav")).then_some(())
        });
        app
    }

    /// What the driver and the app printed.
    fn output(&self) -> String {
        let mut s = String::new();
        let _ = std::fs::File::open(&self.log).and_then(|mut f| f.read_to_string(&mut s));
        s
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A WebDriver session on the app's window.
struct App<'a> {
    driver: &'a Driver,
    session: String,
}

impl App<'_> {
    fn url(&self, tail: &str) -> String {
        format!("{}/session/{}{tail}", self.driver.base, self.session)
    }

    fn current_url(&self) -> String {
        self.driver.call("GET", &self.url("/url"), None)["value"].as_str().unwrap_or_default().to_string()
    }

    fn path(&self) -> String {
        let url = self.current_url();
        let rest = url.strip_prefix("http://127.0.0.1:").unwrap_or(&url);
        rest.find('/').map(|i| rest[i..].to_string()).unwrap_or_default()
    }

    fn script(&self, js: &str) -> Value {
        self.driver.call("POST", &self.url("/execute/sync"), Some(json!({ "script": js, "args": [] })))["value"]
            .clone()
    }

    fn has(&self, css: &str) -> bool {
        let selector = serde_json::to_string(css).unwrap();
        self.script(&format!("return !!document.querySelector({selector});")).as_bool().unwrap_or(false)
    }

    fn text(&self, css: &str) -> String {
        let selector = serde_json::to_string(css).unwrap();
        let v = self.script(&format!(
            "const e = document.querySelector({selector}); return e ? e.textContent : null;"
        ));
        v.as_str().unwrap_or_default().to_string()
    }

    fn find(&self, css: &str) -> String {
        let v = self.driver.call(
            "POST",
            &self.url("/element"),
            Some(json!({ "using": "css selector", "value": css })),
        );
        v["value"][ELEMENT].as_str().unwrap_or_else(|| panic!("no element {css}: {v}")).to_string()
    }

    fn click(&self, css: &str) {
        let e = self.find(css);
        self.driver.call("POST", &self.url(&format!("/element/{e}/click")), Some(json!({})));
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.driver.call("POST", &self.url(&format!("/element/{e}/clear")), Some(json!({})));
        self.driver.call("POST", &self.url(&format!("/element/{e}/value")), Some(json!({ "text": text })));
    }

    fn goto(&self, path: &str) {
        let base = self.current_url();
        let origin: String = base.split('/').take(3).collect::<Vec<_>>().join("/");
        self.driver.call("POST", &self.url("/url"), Some(json!({ "url": format!("{origin}{path}") })));
    }

    /// Ends the WebDriver session, which closes the app.
    fn close(self) {
        let _ = self.driver.http.delete(&self.url("")).call();
    }
}

/// The id of the session whose page is shown.
fn session_id_of(path: &str) -> String {
    path.strip_prefix("/s/").and_then(|r| r.split(['/', '?']).next()).unwrap_or_default().to_string()
}

/// Creates a session on `repo` through the New session dialog, its first run asked for; returns its id.
fn new_session_from_the_dialog(app: &App, repo: &Path, name: &str, agent: &str) -> String {
    app.goto("/");
    app.click("#new-session-button");
    wait_for(10, "the New session dialog", || {
        app.script("return document.getElementById('new-dialog').open;").as_bool().filter(|o| *o)
    });
    // Inside the app the native folder picker is offered beside the folder browser.
    assert_eq!(app.script("return document.getElementById('pick-folder').hidden;"), Value::Bool(false));
    app.type_into("#repo", repo.to_str().unwrap());
    app.type_into("#name", name);
    app.script(&format!("document.getElementById('agent').value = {}; return 1;", json!(agent)));
    app.type_into("#prompt", "Add a greeting to hello.sh");
    if app.script("return document.getElementById('run').checked;") != Value::Bool(true) {
        app.click("#run");
    }
    app.click("#new-session button[type=submit]");
    wait_for(30, "the new session's page", || Some(session_id_of(&app.path())).filter(|id| !id.is_empty()))
}

#[requires(desktop_session, tauri_driver)]
#[test]
fn the_app_runs_a_session_from_the_dialog_to_the_merge_and_notifies_natively() {
    let desk = Desk::start();
    let repo = desk.repo();
    let driver = Driver::start(&desk, "driver");
    let app = driver.launch();
    assert!(app.text("main").contains("No sessions yet"), "{}", app.text("main"));
    // The page's own browser notifications are off inside the app (the app notifies natively).
    assert_eq!(app.script("return document.getElementById('notify-toggle').hidden;"), Value::Bool(true));

    let id = new_session_from_the_dialog(&app, &repo, "greeting", "offline");

    // The conversation updates live while the offline agent works, and the run ends.
    app.goto(&format!("/s/{id}/interactive"));
    let feed = || app.text("#feed");
    wait_for(60, "the agent's messages in the conversation", || {
        let f = feed();
        (f.contains("hello.sh") && app.text("#session-status").contains("idle")).then_some(())
    });
    assert!(app.has("#feed details.tool"), "no tool card: {}", feed());

    // A native notification told that the run ended, through the desktop's notification service.
    let deadline = Instant::now() + Duration::from_secs(60);
    let told = loop {
        let n = desk.notifications();
        if n.contains("amp-sessions: session completed") {
            break n;
        }
        assert!(Instant::now() < deadline, "no notification; dunst: {n}\napp: {}", driver.output());
        std::thread::sleep(Duration::from_millis(150));
    };
    assert!(told.contains("greeting"), "{told}");

    // Stage and commit a change of the user's own, then merge the session into main.
    let worktree = git(&repo, &["worktree", "list", "--porcelain"])
        .lines()
        .filter_map(|l| l.strip_prefix("worktree "))
        .map(PathBuf::from)
        .find(|p| p.canonicalize().ok() != Some(repo.clone()))
        .expect("the session's worktree");
    std::fs::write(worktree.join("NOTES.md"), "Reviewed in the desktop app.\n").unwrap();
    app.goto(&format!("/s/{id}/git"));
    app.click("form[action$='/git/stage'] input[name=all] ~ button");
    wait_for(20, "the staged file", || app.path().contains("done=").then_some(()));
    app.type_into("form[action$='/git/commit'] input[name=message]", "Add review notes");
    app.click("form[action$='/git/commit'] button");
    wait_for(20, "the commit", || {
        git(&worktree, &["log", "-1", "--format=%s"]).contains("Add review notes").then_some(())
    });
    app.click("#merge-form button[type=submit]");
    wait_for(20, "the merge preview", || app.has("#merge-confirm").then_some(()));
    app.click("#merge-confirm button[type=submit]");
    wait_for(10, "the confirmation", || {
        app.script("var d = document.getElementById('confirm-dialog'); return !!(d && d.open);")
            .as_bool()
            .filter(|o| *o)
    });
    app.click("#confirm-ok");
    wait_for(30, "the merge into main", || {
        git(&repo, &["show", "--stat", "main"]).contains("NOTES.md").then_some(())
    });
    assert!(git(&repo, &["show", "main:hello.sh"]).len() > 10);

    // Clicking the notification brings the window up on that session.
    app.goto("/batches");
    wait_for(10, "the batches page", || (app.path() == "/batches").then_some(()));
    let acted = desk.command("dunstctl").args(["action", "0"]).status().unwrap().success();
    assert!(acted, "dunstctl action failed");
    wait_for(20, "the session's page after the click", || {
        app.path().starts_with(&format!("/s/{id}")).then_some(())
    });

    // The window's title counts running and waiting sessions, like the tray.
    assert!(desk.window_titles().lines().any(|t| t == "amp-sessions"), "{}", desk.window_titles());
    assert!(driver.output().contains("tray: No session running or waiting"), "{}", driver.output());
    app.close();
}

/// Makes the `command` agent (`agents.command.path` in the home's config) a shell script with `body`.
fn command_agent(desk: &Desk, body: &str) {
    let script = desk.dir.path().join("agent.sh");
    std::fs::write(&script, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(desk.ampsm_home()).unwrap();
    std::fs::write(
        desk.ampsm_home().join("config.yaml"),
        format!("agents:\n  command:\n    path: {}\n", script.display()),
    )
    .unwrap();
}

/// A `command` agent that writes a file, says so, and then works for a minute: a run that is still going
/// when the window closes.
fn slow_agent(desk: &Desk) {
    command_agent(desk, "echo 'drafting'\necho 'a draft' > draft.txt\nsleep 60\necho done\n");
}

/// Whether the window's page shows the close question.
fn question_open(app: &App) -> bool {
    app.script("var d = document.getElementById('desktop-close'); return !!(d && d.open);").as_bool()
        == Some(true)
}

fn counts(desk: &Desk) -> ampsm_engine::reports::watch::ActivityCounts {
    let paths = ampsm_config::Paths::with_home(desk.ampsm_home(), None);
    ampsm_engine::reports::watch::Watcher::open(&paths).unwrap().activity_counts().unwrap()
}

fn prefs(desk: &Desk) -> Value {
    serde_json::from_str(&std::fs::read_to_string(desk.ampsm_home().join("desktop.json")).unwrap_or_default())
        .unwrap_or(Value::Null)
}

#[requires(desktop_session, tauri_driver)]
#[test]
fn closing_the_window_during_a_run_asks_once_and_by_default_stops_it_with_its_work_committed() {
    let desk = Desk::start();
    let repo = desk.repo();
    slow_agent(&desk);
    let driver = Driver::start(&desk, "driver");
    let app = driver.launch();
    let id = new_session_from_the_dialog(&app, &repo, "slow", "command");

    // While it runs, the window's title (and the tray) count it.
    wait_for(30, "the running count in the title", || {
        desk.window_titles().lines().any(|t| t == "amp-sessions — 1 running, 0 waiting").then_some(())
    });
    assert_eq!(counts(&desk).running, 1);
    let worktree = git(&repo, &["worktree", "list", "--porcelain"])
        .lines()
        .filter_map(|l| l.strip_prefix("worktree "))
        .map(PathBuf::from)
        .find(|p| p.to_string_lossy().contains("slow-"))
        .expect("the session's worktree");
    wait_for(20, "the agent's draft", || worktree.join("draft.txt").exists().then_some(()));

    // Closing the window (the menu's Ctrl+W) asks what to do with the run; Escape takes the default.
    desk.keys("ctrl+w");
    wait_for(20, "the question", || question_open(&app).then_some(()));
    assert!(
        app.text("#desktop-close").contains("1 agent run is started from this window"),
        "{}",
        app.text("#desktop-close")
    );
    desk.keys("Escape");

    // The run is stopped the way Ctrl-C stops it, its work so far committed, and the app ends.
    wait_for(30, "the app to end", || (!desk.app_alive()).then_some(()));
    assert_eq!(counts(&desk).running, 0, "{}", driver.output());
    let log = git(&worktree, &["log", "--format=%s", "--stat", "-3"]);
    assert!(log.contains("draft.txt"), "the draft was not committed: {log}");
    assert!(driver.output().contains("Stopping 1 agent run"), "{}", driver.output());
    assert_eq!(prefs(&desk)["keep_runs_on_close"], Value::Bool(false), "{}", prefs(&desk));
    // An app that quits takes its registration with it.
    assert!(!desk.ampsm_home().join("desktop.pid").exists());
    assert!(!id.is_empty());
    app.close();

    // Asked once: the next time the answer stands, and the run is stopped without a question.
    let app = driver.launch();
    app.goto(&format!("/s/{id}/interactive"));
    app.type_into("#message", "Go on");
    app.click("#send");
    wait_for(30, "the second run", || (counts(&desk).running == 1).then_some(()));
    desk.keys("ctrl+w");
    wait_for(30, "the app to end", || (!desk.app_alive()).then_some(()));
    assert_eq!(counts(&desk).running, 0);
    app.close();
}

#[requires(desktop_session, tauri_driver)]
#[test]
fn menu_shortcuts_navigate_a_second_launch_wakes_the_first_and_the_last_page_comes_back() {
    let desk = Desk::start();
    let driver = Driver::start(&desk, "driver");
    let app = driver.launch();
    assert_eq!(app.path(), "/");

    // The app menu's shortcuts, pressed as keys in the window.
    desk.keys("ctrl+3");
    wait_for(20, "Batches (Ctrl+3)", || (app.path() == "/batches").then_some(()));
    desk.keys("ctrl+2");
    wait_for(20, "Approvals (Ctrl+2)", || (app.path() == "/approvals").then_some(()));

    // New session's "Choose folder…" opens the native folder picker (the page may call the app's
    // command); cancelling it leaves the field as it was.
    app.goto("/");
    app.click("#new-session-button");
    app.type_into("#repo", "/kept");
    app.click("#pick-folder");
    wait_for(20, "the folder picker", || {
        desk.window_titles().lines().any(|t| t == "Choose the repository").then_some(())
    });
    desk.keys_in("^Choose the repository$", "Escape");
    wait_for(20, "the picker to close", || {
        (!desk.window_titles().lines().any(|t| t == "Choose the repository")).then_some(())
    });
    assert_eq!(app.script("return document.getElementById('repo').value;"), Value::from("/kept"));
    app.goto("/approvals");

    // A second launch exits at once and brings the first one's window up.
    let started = Instant::now();
    let status = desk.command(app_binary().to_str().unwrap()).stdout(Stdio::null()).status().unwrap();
    assert!(status.success(), "{status}");
    assert!(started.elapsed() < Duration::from_secs(20));
    wait_for(10, "the first instance's note", || {
        driver.output().contains("another launch: showing this window").then_some(())
    });
    assert_eq!(desk.window_titles().lines().filter(|t| t.starts_with("amp-sessions")).count(), 1);

    // Started again, the window opens on the page shown last.
    app.close();
    wait_for(20, "the app to end", || (!desk.app_alive()).then_some(()));
    assert_eq!(prefs(&desk)["last_path"], Value::from("/approvals"));
    let app = driver.launch();
    assert_eq!(app.path(), "/approvals");
    app.close();
}

#[requires(desktop_session, tauri_driver)]
#[test]
fn keeping_runs_on_close_hides_the_window_and_the_run_goes_on_until_quit_stops_it() {
    let desk = Desk::start();
    let repo = desk.repo();
    slow_agent(&desk);
    let driver = Driver::start(&desk, "driver");
    let app = driver.launch();
    new_session_from_the_dialog(&app, &repo, "kept", "command");
    wait_for(30, "the run", || (counts(&desk).running == 1).then_some(()));

    // "Keep running": the window hides, the app and the run go on.
    desk.keys("ctrl+w");
    wait_for(20, "the question", || question_open(&app).then_some(()));
    app.click("#desktop-keep");
    wait_for(20, "the window to hide", || {
        (!desk.window_titles().lines().any(|t| t.starts_with("amp-sessions"))).then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    assert!(desk.app_alive());
    assert_eq!(counts(&desk).running, 1, "{}", driver.output());
    assert_eq!(prefs(&desk)["keep_runs_on_close"], Value::Bool(true));

    // Launching the app again shows the hidden window; Quit (Ctrl+Q) stops the run and ends the app.
    let status = desk.command(app_binary().to_str().unwrap()).stdout(Stdio::null()).status().unwrap();
    assert!(status.success());
    wait_for(20, "the window back", || {
        desk.window_titles().lines().any(|t| t.starts_with("amp-sessions")).then_some(())
    });
    desk.keys("ctrl+q");
    let ended = Instant::now();
    while desk.app_alive() {
        assert!(ended.elapsed() < Duration::from_secs(30), "the app did not end: {}", driver.output());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(counts(&desk).running, 0, "{}", driver.output());
    app.close();
}

/// Not a test of its own: `a_run_from_a_terminal_is_told_once_by_the_app` starts this test binary again
/// with only this function, as a terminal running `amp-sessions iterate` would (another process of the
/// same home, with the desk's bus and `notify-send` at hand).
#[test]
#[ignore = "run by a_run_from_a_terminal_is_told_once_by_the_app as the terminal's process"]
fn terminal_process() {
    let repo = PathBuf::from(std::env::var_os("AMPSM_TEST_TERMINAL_REPO").expect("run by another test"));
    let mut engine = ampsm_engine::Engine::open_at(ampsm_config::Paths::from_env().unwrap()).unwrap();
    let s = engine
        .create_session(ampsm_engine::CreateSession {
            repo,
            name: "terminal".into(),
            prompt: Some("Write a note".into()),
            agent: Some("command".into()),
            ..Default::default()
        })
        .unwrap();
    let request = ampsm_engine::IterateRequest { session: s.id.to_string(), ..Default::default() };
    let report = engine.iterate(request, &mut |_| {}).unwrap();
    assert!(report.passed(), "{:?}", report.iteration);
}

#[requires(desktop_session, tauri_driver)]
#[test]
fn a_run_from_a_terminal_is_told_once_by_the_app() {
    let desk = Desk::start();
    let repo = desk.repo();
    command_agent(&desk, "echo 'noting'\necho 'a note' > note.txt\n");
    let driver = Driver::start(&desk, "driver");
    let app = driver.launch();
    // The app registers itself in the home while it runs.
    let pid = std::fs::read_to_string(desk.ampsm_home().join("desktop.pid")).unwrap();
    assert!(pid.trim().parse::<u32>().is_ok(), "{pid}");

    // A terminal of the same home runs a session (its own process, with `notify-send` and the bus).
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "terminal_process", "--ignored", "--nocapture"])
        .envs(desk.env())
        .env("AMPSM_TEST_TERMINAL_REPO", &repo)
        .status()
        .unwrap();
    assert!(status.success(), "the terminal's run failed");

    // The app tells it, once: the terminal left it to the app instead of calling notify-send too.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !desk.notifications().contains("summary: 'amp-sessions: session completed'") {
        assert!(Instant::now() < deadline, "not told: {}\napp: {}", desk.notifications(), driver.output());
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(3));
    let told = desk.notifications();
    assert_eq!(told.matches("summary: 'amp-sessions: session completed'").count(), 1, "{told}");
    assert!(told.contains("appname: 'amp-sessions'"), "{told}");

    // Its click opens the session in the window.
    let acted = desk.command("dunstctl").args(["action", "0"]).status().unwrap().success();
    assert!(acted);
    wait_for(20, "the terminal's session in the window", || app.path().starts_with("/s/").then_some(()));
    assert!(app.text("main").contains("terminal"), "{}", app.text("main"));
    app.close();
    // Once the app is gone (here killed by the driver, so its file stays), terminals notify on their own.
    wait_for(20, "the app to end", || (!desk.app_alive()).then_some(()));
    wait_for(20, "the registration to lapse", || {
        (!ampsm_engine::notify::desktop_app_running(&desk.ampsm_home())).then_some(())
    });
}

//! The app menu (with keyboard shortcuts) and the tray item. The tray shows how many sessions run and how
//! many wait for the user, read from the store every two seconds (so sessions run from a terminal count
//! too); the window's title carries the same counts.

use crate::Ctx;
use ampsm_engine::reports::watch::{ActivityCounts, Watcher};
use std::time::Duration;
use tauri::menu::{CheckMenuItem, Menu, MenuEvent, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::{MouseButton, MouseButtonState, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Manager, Runtime};

/// How often the tray's counts are read.
const COUNT_EVERY: Duration = Duration::from_secs(2);

/// The dashboard pages the Go menu and the tray open, with their ids and shortcuts.
const PAGES: [(&str, &str, &str, &str); 5] = [
    ("go-sessions", "Sessions", "/", "CmdOrCtrl+1"),
    ("go-approvals", "Approvals", "/approvals", "CmdOrCtrl+2"),
    ("go-batches", "Batches", "/batches", "CmdOrCtrl+3"),
    ("go-bench", "Benchmarks", "/bench", "CmdOrCtrl+4"),
    ("go-settings", "Settings", "/settings", "CmdOrCtrl+,"),
];

/// The counts as the tray and the title say them.
pub fn counts_text(c: ActivityCounts) -> String {
    match (c.running, c.waiting) {
        (0, 0) => "No session running or waiting".to_string(),
        (r, w) => format!("{r} running, {w} waiting"),
    }
}

/// The window's title for `c`.
pub fn title(c: ActivityCounts) -> String {
    if c.running + c.waiting == 0 {
        "amp-sessions".to_string()
    } else {
        format!("amp-sessions — {}", counts_text(c))
    }
}

/// Builds the app menu: amp-sessions (about, keep runs, quit), Go (the pages, New session), View
/// (reload, back, forward, shortcuts) and Window (minimize, close).
pub fn app_menu<R: Runtime>(app: &AppHandle<R>, keep_runs: bool) -> tauri::Result<Menu<R>> {
    let keep = CheckMenuItem::with_id(
        app,
        "keep-runs",
        "Keep runs going when the window closes",
        true,
        keep_runs,
        None::<&str>,
    )?;
    let about = PredefinedMenuItem::about(app, Some("About amp-sessions"), None)?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, Some("CmdOrCtrl+Q"))?;
    let sep = || PredefinedMenuItem::separator(app);
    let file = Submenu::with_items(app, "amp-sessions", true, &[&about, &sep()?, &keep, &sep()?, &quit])?;

    let new = MenuItem::with_id(app, "new-session", "New session…", true, Some("CmdOrCtrl+N"))?;
    let pages: Vec<MenuItem<R>> = PAGES
        .iter()
        .map(|(id, label, _, key)| MenuItem::with_id(app, *id, *label, true, Some(*key)))
        .collect::<tauri::Result<_>>()?;
    let mut go_items: Vec<&dyn tauri::menu::IsMenuItem<R>> = vec![&new];
    let sep_go = sep()?;
    go_items.push(&sep_go);
    go_items.extend(pages.iter().map(|p| p as &dyn tauri::menu::IsMenuItem<R>));
    let go = Submenu::with_items(app, "Go", true, &go_items)?;

    let reload = MenuItem::with_id(app, "reload", "Reload", true, Some("CmdOrCtrl+R"))?;
    let back = MenuItem::with_id(app, "back", "Back", true, Some("Alt+Left"))?;
    let forward = MenuItem::with_id(app, "forward", "Forward", true, Some("Alt+Right"))?;
    let keys = MenuItem::with_id(app, "shortcuts", "Keyboard shortcuts", true, Some("F1"))?;
    let view = Submenu::with_items(app, "View", true, &[&reload, &back, &forward, &sep()?, &keys])?;

    let minimize = PredefinedMenuItem::minimize(app, None)?;
    let close = MenuItem::with_id(app, "close-window", "Close window", true, Some("CmdOrCtrl+W"))?;
    let window = Submenu::with_items(app, "Window", true, &[&minimize, &close])?;
    Menu::with_items(app, &[&file, &go, &view, &window])
}

/// What a menu item (of the app menu or the tray) does.
pub fn on_menu<R: Runtime>(app: &AppHandle<R>, event: MenuEvent) {
    let id = event.id().as_ref();
    if let Some((_, _, path, _)) = PAGES.iter().find(|(pid, ..)| *pid == id) {
        crate::open_page(app, path);
        return;
    }
    match id {
        "new-session" => crate::open_page(app, "/#new"),
        "show" => crate::open_page(app, ""),
        "quit" => crate::quit(app),
        "close-window" => crate::close_requested(app),
        "reload" => crate::run_script(app, "location.reload()"),
        "back" => crate::run_script(app, "history.back()"),
        "forward" => crate::run_script(app, "history.forward()"),
        "shortcuts" => crate::run_script(
            app,
            "document.dispatchEvent(new KeyboardEvent('keydown', {key: '?', bubbles: true}))",
        ),
        "keep-runs" => {
            let ctx = app.state::<Ctx>();
            let keep = !ctx.prefs().keep_runs_on_close.unwrap_or(false);
            ctx.update_prefs(|p| p.keep_runs_on_close = Some(keep));
        }
        _ => {}
    }
}

/// Builds the tray item and starts the thread that keeps its counts (and the window title) current.
pub fn tray<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<()> {
    let counts =
        MenuItem::with_id(app, "counts", counts_text(ActivityCounts::default()), false, None::<&str>)?;
    let show = MenuItem::with_id(app, "show", "Show amp-sessions", true, None::<&str>)?;
    let new = MenuItem::with_id(app, "new-session", "New session…", true, None::<&str>)?;
    let approvals = MenuItem::with_id(app, "go-approvals", "Approvals", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
    let sep = PredefinedMenuItem::separator(app)?;
    let sep2 = PredefinedMenuItem::separator(app)?;
    let menu = Menu::with_items(app, &[&counts, &sep, &show, &new, &approvals, &sep2, &quit])?;
    let mut builder = TrayIconBuilder::with_id("main")
        .tooltip("amp-sessions")
        .menu(&menu)
        .show_menu_on_left_click(false)
        .on_menu_event(on_menu)
        .on_tray_icon_event(|tray, event| {
            if let TrayIconEvent::Click {
                button: MouseButton::Left,
                button_state: MouseButtonState::Up,
                ..
            } = event
            {
                crate::open_page(tray.app_handle(), "");
            }
        });
    if let Some(icon) = app.default_window_icon() {
        builder = builder.icon(icon.clone());
    }
    let tray = builder.build(app)?;
    let app = app.clone();
    let paths = app.state::<Ctx>().paths.clone();
    std::thread::spawn(move || {
        let mut shown: Option<ActivityCounts> = None;
        let mut watcher: Option<Watcher> = None;
        loop {
            if watcher.is_none() {
                watcher = Watcher::open(&paths).map_err(|e| eprintln!("warning: tray counts: {e}")).ok();
            }
            let now = watcher.as_ref().and_then(|w| w.activity_counts().ok());
            if let Some(c) = now.filter(|c| shown != Some(*c)) {
                let text = counts_text(c);
                let _ = counts.set_text(&text);
                let _ = tray.set_tooltip(Some(format!("amp-sessions: {text}")));
                if let Some(w) = app.get_webview_window(crate::MAIN) {
                    let _ = w.set_title(&title(c));
                }
                eprintln!("tray: {text}");
                shown = Some(c);
            } else if now.is_none() {
                watcher = None;
            }
            std::thread::sleep(COUNT_EVERY);
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_as_the_tray_and_title_say_them() {
        let c = |running, waiting| ActivityCounts { running, waiting };
        assert_eq!(counts_text(c(0, 0)), "No session running or waiting");
        assert_eq!(counts_text(c(2, 1)), "2 running, 1 waiting");
        assert_eq!(title(c(0, 0)), "amp-sessions");
        assert_eq!(title(c(0, 3)), "amp-sessions — 0 running, 3 waiting");
    }
}

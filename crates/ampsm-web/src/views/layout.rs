//! The page frame shared by every view: head, theme (gruvbox dark or light: `ui.theme` picks the start,
//! `gruvbox` following the system's `prefers-color-scheme`; a toggle in the header changes it for this
//! browser), a skip link and landmarks, navigation, the one-line error or notice box, the confirmation and
//! shortcut-help dialogs with the shared script (assets/app.js), and the small script that refreshes
//! `data-live` regions when the server says something changed (only when `ui.auto_update` is on; pages
//! work without any script).

use crate::state::AppState;
use axum::http::StatusCode;
use axum::response::Html;
use maud::{DOCTYPE, Markup, PreEscaped, html};

/// Which top-level section a page belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Sessions,
    Batches,
    Benchmarks,
    Settings,
    Approvals,
}

/// A page: its title, section, the live topic (if it updates itself) and its body.
pub struct Page<'a> {
    pub title: &'a str,
    pub section: Section,
    pub live: Option<String>,
    pub body: Markup,
}

/// Gruvbox dark, with the text colours lifted where the originals fall under WCAG AA (4.5:1) on `--bg1`.
const DARK: &str = "--bg:#282828;--bg1:#3c3836;--bg2:#504945;--line:#928374;--fg:#ebdbb2;--dim:#b3a593;\
--red:#fc8375;--green:#b8bb26;--yellow:#fabd2f;--blue:#8faea2;--aqua:#8ec07c;--orange:#fe8623;--purple:#d895a7;\
color-scheme:dark";
/// Gruvbox light, with the text colours darkened where the originals fall under WCAG AA on `--bg1`.
const LIGHT: &str = "--bg:#fbf1c7;--bg1:#ebdbb2;--bg2:#d5c4a1;--line:#7c6f64;--fg:#3c3836;--dim:#655b52;\
--red:#9d0006;--green:#625e0b;--yellow:#82550e;--blue:#076678;--aqua:#37674a;--orange:#a53703;--purple:#8f3f71;\
color-scheme:light";

/// The theme variables: dark by default, light when the page (the toggle) says so, or when it says nothing
/// and the system prefers light.
fn theme_css() -> String {
    format!(
        ":root{{{DARK}}}:root[data-theme=light]{{{LIGHT}}}\
         @media (prefers-color-scheme: light){{:root:not([data-theme]){{{LIGHT}}}}}"
    )
}

/// Shared styles (assets/app.css).
const CSS: &str = include_str!("../../assets/app.css");

/// The shared script (assets/app.js): theme toggle, confirmations, shortcuts, notifications.
const APP_JS: &str = include_str!("../../assets/app.js");

/// Runs in `<head>` before the first paint: the theme this browser chose with the toggle, else the
/// configured one (`auto` follows the system). It also closes the page's live streams when the browser
/// leaves it (and reloads it if the browser brings it back from its back/forward cache): a cached page
/// keeps its connections open otherwise, and with six per host (HTTP/1.1) the next page would wait a
/// minute for a free one.
const HEAD_JS: &str = "(function(){var d=document.documentElement,t=null;try{t=localStorage.getItem('ampsm-theme')}\
catch(e){}t=t||d.getAttribute('data-theme-default')||'auto';if(t==='auto')d.removeAttribute('data-theme');\
else d.setAttribute('data-theme',t);var E=window.EventSource;if(!E)return;var open=[];\
function Tracked(u,o){var s=new E(u,o);open.push(s);return s}Tracked.prototype=E.prototype;\
Tracked.CONNECTING=0;Tracked.OPEN=1;Tracked.CLOSED=2;window.EventSource=Tracked;\
addEventListener('pagehide',function(){open.forEach(function(s){s.close()});open=[]});\
addEventListener('pageshow',function(e){if(e.persisted)location.reload()})})();";

/// The theme a page starts with for `ui.theme`: `gruvbox` (the default) follows the system's preference;
/// `dark`, `light` and `gruvbox-light` pin one (the toggle still overrides it in a browser).
fn configured_theme(ui_theme: &str) -> &'static str {
    match ui_theme {
        "light" | "gruvbox-light" => "light",
        "dark" => "dark",
        _ => "auto",
    }
}

/// Refreshes every `[data-live]` element (by id) from a fresh copy of the page when `/live` says the
/// watched topic changed; a region where the user is typing (a focused field with text, such as a
/// denial's message) is left alone until the next change.
const LIVE_JS: &str = "(function(){var t=document.body.getAttribute('data-live');if(!t||!window.EventSource)return;\
var busy=false,again=false;function refresh(){if(busy){again=true;return}busy=true;\
fetch(location.href,{credentials:'same-origin'}).then(function(r){return r.text()}).then(function(text){\
var doc=new DOMParser().parseFromString(text,'text/html');document.querySelectorAll('[data-live]').forEach(function(el){\
var a=document.activeElement;if(a&&el.contains(a)&&a.value)return;var n=doc.getElementById(el.id);if(n)el.replaceWith(n)})}).finally(function(){busy=false;if(again){again=false;refresh()}})}\
var m=document.getElementById('live-mark');\
var es=new EventSource('/live?topic='+encodeURIComponent(t)+(m?'&mark='+encodeURIComponent(m.getAttribute('data-mark')):''));es.addEventListener('change',refresh);})();";

/// Renders a full page.
pub fn page(state: &AppState, p: Page<'_>) -> Html<String> {
    let live = if state.inner.auto_update { p.live } else { None };
    let pending = state.pending_approval_count();
    let nav = |s: Section, href: &str, label: &str| {
        html! { a href=(href) class=[(p.section == s).then_some("on")] { (label) } }
    };
    let markup = html! {
        (DOCTYPE)
        html lang="en" data-theme-default=(configured_theme(&state.inner.theme)) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (p.title) " · amp-sessions" }
                script { (PreEscaped(HEAD_JS)) }
                style { (PreEscaped(theme_css())) (PreEscaped(CSS)) }
            }
            body data-live=[live.as_deref()] {
                a.skip href="#main" { "Skip to content" }
                header {
                    b { "amp-sessions" }
                    nav aria-label="Main" {
                        (nav(Section::Sessions, "/", "Sessions"))
                        (nav(Section::Batches, "/batches", "Batches"))
                        (nav(Section::Benchmarks, "/bench", "Benchmarks"))
                        a href="/approvals" #nav-approvals-link class=[(p.section == Section::Approvals).then_some("on")] {
                            "Approvals" " " (approvals_badge(pending))
                        }
                        (nav(Section::Settings, "/settings", "Settings"))
                    }
                    div.tools {
                        button type="button" #notify-toggle aria-pressed="false" { "Notifications: off" }
                        button type="button" #theme-toggle { "Theme" }
                        button type="button" #help-toggle aria-label="Keyboard shortcuts" { "?" }
                    }
                }
                main #main tabindex="-1" { (p.body) }
                (dialogs())
                script { (PreEscaped(APP_JS)) }
                @if live.is_some() { script { (PreEscaped(LIVE_JS)) } }
            }
        }
    };
    Html(markup.into_string())
}

/// The confirmation dialog (for forms with `data-confirm`) and the keyboard shortcuts' help.
fn dialogs() -> Markup {
    let keys: [(&str, &str); 10] = [
        ("?", "this help"),
        ("g s", "go to Sessions"),
        ("g b", "go to Batches"),
        ("g m", "go to Benchmarks"),
        ("g a", "go to Approvals"),
        ("g c", "go to Settings"),
        ("n", "new session (on Sessions)"),
        ("/", "search (where there is a search box)"),
        ("t", "change the theme (auto, light, dark)"),
        ("Esc", "close a dialog"),
    ];
    html! {
        dialog #confirm-dialog aria-labelledby="confirm-text" {
            p #confirm-text {}
            div.buttons {
                button type="button" #confirm-cancel { "Cancel" }
                button.danger type="button" #confirm-ok { "Confirm" }
            }
        }
        dialog #help-dialog aria-labelledby="help-title" {
            h2 #help-title { "Keyboard shortcuts" }
            table {
                @for (k, what) in keys {
                    tr { td { @for (i, part) in k.split(' ').enumerate() { @if i > 0 { " " } kbd { (part) } } } td { (what) } }
                }
            }
            div.buttons { button type="button" #help-close { "Close" } }
        }
    }
}

/// The count of pending approvals in the navigation (a live region: it follows every page's updates).
fn approvals_badge(pending: usize) -> Markup {
    html! {
        @if pending > 0 {
            span.badge.pending #nav-approvals data-live title={ (pending) " tool call(s) waiting for an answer" } { (pending) }
        } @else {
            span #nav-approvals data-live {}
        }
    }
}

/// The hidden CSRF field every form carries.
pub fn csrf(state: &AppState) -> Markup {
    html! { input type="hidden" name="csrf" value=(state.inner.csrf); }
}

/// A one-line error box.
pub fn error_line(line: Option<&str>) -> Markup {
    html! { @if let Some(l) = line { div.err role="alert" { (l) } } }
}

/// A one-line notice box.
pub fn notice_line(line: Option<&str>) -> Markup {
    html! { @if let Some(l) = line { div.note role="status" { (l) } } }
}

/// " · on slurm (job 12)" for a run on a cluster executor (nothing for a local one); `id` names the span.
pub fn executor_note(executor: ampsm_core::Executor, jobs: &[String], id: &str) -> Markup {
    html! {
        @if executor != ampsm_core::Executor::Local {
            " · on " span id=(id) { (executor.as_str()) @if !jobs.is_empty() { " (job " (jobs.join(", ")) ")" } }
        }
    }
}

/// The Session cell of a batch item or benchmark result running on a cluster node: its session there and
/// the node, what it did so far (its session is made here when its result is taken in).
pub fn remote_cell(p: &ampsm_engine::records::TaskProgress) -> Markup {
    html! {
        span.remote { (p.session.as_deref().unwrap_or("starting")) " on " (p.host) }
        div.dim.remote-note { (p.note(120)) }
    }
}

/// A status word with its color.
pub fn status(word: &str) -> Markup {
    html! { span class={ "badge s-" (word) } { (word) } }
}

/// The page for an error response (no navigation state needed).
pub fn error_page(status: StatusCode, line: &str) -> Html<String> {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (status.as_u16()) " · amp-sessions" }
                script { (PreEscaped(HEAD_JS)) }
                style { (PreEscaped(theme_css())) (PreEscaped(CSS)) }
            }
            body {
                header { b { "amp-sessions" } nav aria-label="Main" { a href="/" { "Sessions" } } }
                main #main {
                    h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
                    div.err role="alert" { (line) }
                }
            }
        }
    };
    Html(markup.into_string())
}

/// A short id for display.
pub fn short(id: &str) -> &str {
    &id[..id.len().min(8)]
}

/// Milliseconds as a person reads them.
pub fn ms_text(ms: i64) -> String {
    if ms < 10_000 { format!("{ms} ms") } else { format!("{:.1} s", ms as f64 / 1000.0) }
}

/// A timestamp (ms since the epoch) as local-free ISO text.
pub fn time_text(ms: i64) -> String {
    ampsm_core::time::format_ms(ms)
}

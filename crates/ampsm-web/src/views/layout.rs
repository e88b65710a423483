//! The page frame shared by every view: head, theme (gruvbox dark or light, from `ui.theme`), navigation,
//! the one-line error or notice box, and the small script that refreshes `data-live` regions when the
//! server says something changed (only when `ui.auto_update` is on; pages work without it).

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

const GRUVBOX: &str = ":root{--bg:#282828;--bg1:#3c3836;--bg2:#504945;--fg:#ebdbb2;--dim:#a89984;--red:#fb4934;\
--green:#b8bb26;--yellow:#fabd2f;--blue:#83a598;--aqua:#8ec07c;--orange:#fe8019;--purple:#d3869b}";
const LIGHT: &str = ":root{--bg:#fbf1c7;--bg1:#ebdbb2;--bg2:#d5c4a1;--fg:#3c3836;--dim:#7c6f64;--red:#9d0006;\
--green:#79740e;--yellow:#b57614;--blue:#076678;--aqua:#427b58;--orange:#af3a03;--purple:#8f3f71}";

const CSS: &str = "*{box-sizing:border-box}body{margin:0;background:var(--bg);color:var(--fg);\
font:14px/1.45 ui-sans-serif,system-ui,sans-serif}a{color:var(--blue)}header{display:flex;gap:1.2em;\
align-items:center;padding:.6em 1.2em;background:var(--bg1)}header b{color:var(--orange)}header a{text-decoration:none}\
header a.on{color:var(--yellow);font-weight:bold}main{padding:1em 1.2em;max-width:1400px}\
table{border-collapse:collapse;margin:.4em 0 1em}th,td{padding:.25em .7em;text-align:left;border-bottom:1px solid var(--bg2);\
vertical-align:top}th{color:var(--dim);font-weight:normal}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}\
input,select,textarea,button{background:var(--bg1);color:var(--fg);border:1px solid var(--bg2);padding:.3em .5em;\
font:inherit;border-radius:3px}button{cursor:pointer;background:var(--bg2)}button.primary{border-color:var(--green)}\
button.danger{border-color:var(--red)}textarea{width:100%;font-family:ui-monospace,monospace}\
form.grid{display:grid;grid-template-columns:max-content minmax(20em,40em);gap:.35em .8em;align-items:center}\
form.inline{display:inline}.err{background:var(--bg1);border-left:4px solid var(--red);padding:.5em .8em;margin:.5em 0}\
.note{background:var(--bg1);border-left:4px solid var(--green);padding:.5em .8em;margin:.5em 0}\
.warn{border-left-color:var(--yellow)}.badge.pending{background:var(--yellow);color:var(--bg)}\
.approval{background:var(--bg1);padding:.5em .8em;margin:.5em 0;border-left:4px solid var(--yellow)}.approval pre{background:var(--bg);max-height:16em}\
.s-denied,.s-timed_out{color:var(--red)}#permissions-help{margin:.3em 0 0;padding-left:1.2em}.s-approved{color:var(--green)}.s-pending{color:var(--yellow)}.badge{display:inline-block;padding:0 .5em;border-radius:8px;background:var(--bg2);font-size:90%}\
.s-running{color:var(--aqua)}.s-error,.s-failed,.s-fail,.s-aborted,.s-timeout{color:var(--red)}.s-done,.s-passed,.s-ok,.s-completed{color:var(--green)}\
.s-awaiting-input,.s-warn,.s-queued{color:var(--yellow)}.dim{color:var(--dim)}.tabs{display:flex;gap:1em;margin:.3em 0 1em;\
border-bottom:1px solid var(--bg2)}.tabs a{padding:.3em 0;text-decoration:none}.tabs a.on{border-bottom:2px solid var(--yellow);\
color:var(--yellow)}pre{background:var(--bg1);padding:.6em;overflow:auto;max-height:40em}.cards{display:flex;flex-wrap:wrap;gap:.8em;\
margin-bottom:1em}.card{background:var(--bg1);padding:.5em .9em;border-radius:4px;min-width:10em}.card .v{font-size:140%}\
.diff .add{color:var(--green)}.diff .del{color:var(--red)}.diff .hunk{color:var(--blue)}.diff .file{color:var(--yellow);font-weight:bold}\
#feed{max-height:38em;overflow:auto;background:var(--bg1);padding:.5em;font-family:ui-monospace,monospace;font-size:13px}\
#feed div{white-space:pre-wrap;border-bottom:1px solid var(--bg2)}svg text{fill:var(--dim);font-size:11px}\
section{margin-bottom:1.5em}h2{font-size:120%;color:var(--orange);margin:1.2em 0 .3em}h1{font-size:150%;margin:.2em 0}";

/// Refreshes every `[data-live]` element (by id) from a fresh copy of the page when `/live` says the
/// watched topic changed; a region where the user is typing (a focused field with text, such as a
/// denial's message) is left alone until the next change.
const LIVE_JS: &str = "(function(){var t=document.body.getAttribute('data-live');if(!t||!window.EventSource)return;\
var busy=false,again=false;function refresh(){if(busy){again=true;return}busy=true;\
fetch(location.href,{credentials:'same-origin'}).then(function(r){return r.text()}).then(function(text){\
var doc=new DOMParser().parseFromString(text,'text/html');document.querySelectorAll('[data-live]').forEach(function(el){\
var a=document.activeElement;if(a&&el.contains(a)&&a.value)return;var n=doc.getElementById(el.id);if(n)el.replaceWith(n)})}).finally(function(){busy=false;if(again){again=false;refresh()}})}\
var es=new EventSource('/live?topic='+encodeURIComponent(t));es.addEventListener('change',refresh);})();";

/// Renders a full page.
pub fn page(state: &AppState, p: Page<'_>) -> Html<String> {
    let theme = if state.inner.theme == "light" { LIGHT } else { GRUVBOX };
    let live = if state.inner.auto_update { p.live } else { None };
    let pending = state.pending_approval_count();
    let nav = |s: Section, href: &str, label: &str| {
        html! { a href=(href) class=[(p.section == s).then_some("on")] { (label) } }
    };
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (p.title) " · amp-sessions" }
                style { (PreEscaped(theme)) (PreEscaped(CSS)) }
            }
            body data-live=[live.as_deref()] {
                header {
                    b { "amp-sessions" }
                    (nav(Section::Sessions, "/", "Sessions"))
                    (nav(Section::Batches, "/batches", "Batches"))
                    (nav(Section::Benchmarks, "/bench", "Benchmarks"))
                    a href="/approvals" #nav-approvals-link class=[(p.section == Section::Approvals).then_some("on")] {
                        "Approvals" " " (approvals_badge(pending))
                    }
                    (nav(Section::Settings, "/settings", "Settings"))
                }
                main { (p.body) }
                @if live.is_some() { script { (PreEscaped(LIVE_JS)) } }
            }
        }
    };
    Html(markup.into_string())
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
                style { (PreEscaped(GRUVBOX)) (PreEscaped(CSS)) }
            }
            body {
                header { b { "amp-sessions" } a href="/" { "Sessions" } }
                main {
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

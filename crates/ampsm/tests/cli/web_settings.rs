//! The Settings page edits the config: secrets hidden by key name and by what they look like (a bearer
//! token inside `notifications.command` too), a form saved unchanged writes back the very same file (never
//! a mask), a bad value is one line naming it and writes nothing, a good edit is what `config` reads next,
//! and an edit made from a page loaded before another change is refused.

use crate::support::World;
use crate::web_support::Dashboard;

const CONFIG: &str = "agents:\n  claude:\n    env:\n      ANTHROPIC_API_KEY: sk-ant-very-secret-value\nnotifications:\n  \
command: 'curl -s -H \"Authorization: Bearer abcdef0123456789SECRETxyz\" https://me:hunter22@hooks.example.com/x'\n\
session:\n  default_agent: claude\nui:\n  theme: light\n";

const SECRETS: &[&str] = &["sk-ant-very-secret-value", "abcdef0123456789SECRETxyz", "hunter22"];

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The config text and version the page's form carries.
fn form_of(page: &str) -> (String, String) {
    let at = page.find("id=\"config-text\"").expect("the config editor");
    let start = page[at..].find('>').unwrap() + at + 1;
    let end = page[start..].find("</textarea>").unwrap() + start;
    let v = page.find("name=\"version\" value=\"").expect("the version field")
        + "name=\"version\" value=\"".len();
    let v_end = page[v..].find('"').unwrap() + v;
    (unescape(&page[start..end]), page[v..v_end].to_string())
}

#[test]
fn settings_edit_the_config_with_secrets_hidden_and_checked_before_saving() {
    let w = World::new();
    std::fs::create_dir_all(w.home()).unwrap();
    let file = w.home().join("config.yaml");
    std::fs::write(&file, CONFIG).unwrap();
    let d = Dashboard::start(&w);

    let page = d.get("/settings").body;
    for s in SECRETS {
        assert!(!page.contains(s), "{s} reached the page");
    }
    assert!(page.contains("<label for=\"config-text\">"), "the editor is labelled");
    let (text, version) = form_of(&page);
    assert!(text.contains("Authorization: Bearer «hidden:"), "{text}");
    assert!(text.contains("https://me:«hidden:"), "{text}");
    assert!(text.contains("theme: light"), "{text}");

    // Saved unchanged: the file is the same, byte for byte (the masks are never written).
    let r = d.post("/settings/config", &[("text", &text), ("version", &version)]);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), CONFIG);

    // A bad value: one line naming its key and line, the text kept, nothing written.
    let bad = text.replace("theme: light", "theme: purple");
    let r = d.post("/settings/config", &[("text", &bad), ("version", &version)]);
    assert_eq!(r.status, 400, "{}", r.body);
    let line = r.body.split("role=\"alert\">").nth(1).unwrap().split('<').next().unwrap().to_string();
    assert!(line.contains("ui.theme") && line.contains(":10"), "{line}");
    assert!(r.body.contains("theme: purple"), "the text is kept");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), CONFIG);
    // A mask that is not one of this file's: refused at its line.
    let r =
        d.post("/settings/config", &[("text", &format!("{text}ui2: «hidden:77»\n")), ("version", &version)]);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("«hidden:…» that this config does not have"), "{}", r.body);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), CONFIG);

    // A good edit (CRLF line ends, as browsers send them): saved, and what `config` reads next.
    let good = text.replace("default_agent: claude", "default_agent: codex").replace('\n', "\r\n");
    let r = d.post("/settings/config", &[("text", &good), ("version", &version)]);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(w.ok(&["config", "get", "session.default_agent"]).trim(), "codex");
    let saved = std::fs::read_to_string(&file).unwrap();
    for s in SECRETS {
        assert!(saved.contains(s), "{s} was lost on save:\n{saved}");
    }
    assert!(!saved.contains("«hidden") && !saved.contains('\r'), "{saved}");
    // The running dashboard reads it at the next request, without a restart.
    let page = d.get("/settings?saved=1").body;
    assert!(page.contains("Config saved"), "{page}");
    assert!(page.contains("<td><code>session.default_agent</code></td><td>codex</td>"), "{page}");

    // The form of a page loaded before that save is stale: refused, nothing written.
    let r = d.post("/settings/config", &[("text", &text), ("version", &version)]);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("changed since this page was loaded"), "{}", r.body);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), saved);
    // The listing masks by shape too.
    let page = d.get("/settings").body;
    for s in SECRETS {
        assert!(!page.contains(s), "{s} reached the page");
    }
}

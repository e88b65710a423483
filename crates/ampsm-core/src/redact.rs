//! Keeping secrets out of what is recorded. An agent that runs `env`, or a test script that prints its
//! configuration, would otherwise put `AMP_API_KEY` and its kind into the database, the logs and every
//! export. A [`Redactor`] knows the values of the secret-looking variables of an environment (the
//! vendors' key and token variables, and any variable whose name has a segment like `KEY`, `TOKEN`,
//! `SECRET` or `PASSWORD`) and replaces each occurrence in a text by `[redacted:NAME]`.
//!
//! A value is looked for in every form the recorded text can hold it in: as it is, JSON-escaped (a `"`,
//! `\` or control character escaped; non-ASCII as is or as `\uXXXX`), and JSON-escaped twice (a tool's
//! JSON output inside a stream line's JSON string, as Amp's `Bash` results are).
//!
//! It does not find secrets it was not told about (a key pasted into a prompt, a password in a file the
//! agent reads): it is a net under the known ones, not a scanner.

/// Variables that hold a credential whatever their name looks like, besides the agents' own
/// ([`crate::agents::AgentInfo::credential_env`]).
const KNOWN: &[&str] = &["GITHUB_TOKEN", "GH_TOKEN"];

/// Name segments (split at `_`) that mark a variable as secret.
const SECRET_SEGMENTS: &[&str] =
    &["KEY", "APIKEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "PASS", "CREDENTIALS", "PAT"];

/// Shorter values are not replaced (they would match ordinary text).
const MIN_SECRET_LEN: usize = 8;

/// The secret values of an environment, and where to replace them.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// (name, form of the value), longest first so that a secret containing another is replaced whole.
    /// Every value is here in each of its encodings (see the module docs).
    secrets: Vec<(String, String)>,
}

/// `s` as it appears inside a JSON string; with `ascii`, non-ASCII characters as `\uXXXX` escapes (as
/// Python's `json.dumps` writes them by default).
fn json_escaped(s: &str, ascii: bool) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if ascii && !c.is_ascii() => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Every form a value can take in recorded text: as it is, JSON-escaped once and twice, with non-ASCII
/// as is or `\u`-escaped.
fn encodings(value: &str) -> Vec<String> {
    let mut forms = vec![value.to_string()];
    for ascii in [false, true] {
        let once = json_escaped(value, ascii);
        let twice = json_escaped(&once, ascii);
        for f in [once, twice] {
            if !forms.contains(&f) {
                forms.push(f);
            }
        }
    }
    forms
}

impl Redactor {
    /// The secrets of this process's environment plus `extra` (what a child is given on top of it).
    pub fn from_environment(extra: &[(String, String)]) -> Redactor {
        let mut vars: Vec<(String, String)> = std::env::vars().collect();
        vars.extend(extra.iter().cloned());
        Redactor::from_vars(vars)
    }

    /// The secrets among `vars`.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Redactor {
        let mut secrets: Vec<(String, String)> = Vec::new();
        for (name, value) in vars {
            let value = value.trim().to_string();
            if value.len() < MIN_SECRET_LEN || !is_secret_name(&name) {
                continue;
            }
            for form in encodings(&value) {
                if !secrets.iter().any(|(_, v)| *v == form) {
                    secrets.push((name.clone(), form));
                }
            }
        }
        secrets.sort_by_key(|s| std::cmp::Reverse(s.1.len()));
        Redactor { secrets }
    }

    /// Whether there is nothing to replace.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// `text` with every known secret value replaced by `[redacted:NAME]`; `None` when it holds none
    /// (the common case, which allocates nothing).
    pub fn redact(&self, text: &str) -> Option<String> {
        let first = self.secrets.iter().position(|(_, v)| text.contains(v.as_str()))?;
        let mut out = text.to_string();
        for (name, value) in &self.secrets[first..] {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), &format!("[redacted:{name}]"));
            }
        }
        Some(out)
    }

    /// [`Redactor::redact`], or `text` itself.
    pub fn apply(&self, text: String) -> String {
        self.redact(&text).unwrap_or(text)
    }

    /// The names of the variables whose values `text` holds (in any form), each once, in order.
    pub fn names_in(&self, text: &str) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for (name, value) in &self.secrets {
            if !names.contains(&name.as_str()) && text.contains(value.as_str()) {
                names.push(name);
            }
        }
        names
    }
}

/// Whether a variable's name says it holds a secret.
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    KNOWN.contains(&upper.as_str())
        || crate::agents::AGENTS.iter().any(|a| a.credential_env.contains(&upper.as_str()))
        || upper.split('_').any(|seg| SECRET_SEGMENTS.contains(&seg))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn secret_values_are_replaced_by_their_name() {
        let r = Redactor::from_vars(vars(&[
            ("AMP_API_KEY", "sgamp_user_0123456789abcdef"),
            ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG"),
            ("DB_PASSWORD", "hunter2hunter2"),
            ("HOME", "/home/someone/long"),
            ("KEYBOARD_LAYOUT", "us-international"),
            ("SHORT_TOKEN", "abc"),
        ]));
        let line = r#"{"output":"AMP_API_KEY=sgamp_user_0123456789abcdef\nAWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG\nHOME=/home/someone/long"}"#;
        let out = r.redact(line).unwrap();
        assert!(out.contains("AMP_API_KEY=[redacted:AMP_API_KEY]"), "{out}");
        assert!(out.contains("=[redacted:AWS_SECRET_ACCESS_KEY]"), "{out}");
        assert!(out.contains("HOME=/home/someone/long"), "not a secret: {out}");
        assert!(!out.contains("sgamp_user") && !out.contains("wJalr"));
        assert_eq!(r.redact("nothing secret here, us-international abc"), None);
        assert_eq!(r.apply("plain".to_string()), "plain");
    }

    #[test]
    fn values_are_found_in_every_encoding_of_the_stored_text() {
        let value = "p\"a\\ss wörd-0123";
        let r = Redactor::from_vars(vars(&[("DB_PASSWORD", value)]));
        // As it is; in a JSON string; in a JSON string inside a JSON string; with \u escapes.
        let plain = format!("DB_PASSWORD={value}");
        let once = serde_json::to_string(&plain).unwrap();
        let twice = serde_json::to_string(&once).unwrap();
        let ascii = "p\\\"a\\\\ss w\\u00f6rd-0123";
        for text in [plain.clone(), once, twice, ascii.to_string()] {
            let out = r.redact(&text).unwrap_or_else(|| panic!("not found in {text}"));
            assert!(out.contains("[redacted:DB_PASSWORD]"), "{out}");
            assert!(!out.contains("rd-0123"), "{out}");
        }
        assert_eq!(r.names_in(&plain), ["DB_PASSWORD"]);
        assert!(r.names_in("nothing").is_empty());
    }

    #[test]
    fn names_that_mark_secrets() {
        for name in ["GITHUB_TOKEN", "my_api_key", "STRIPE_SECRET", "DB_PASSWORD", "NPM_TOKEN", "HF_TOKEN"] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in ["PATH", "HOME", "KEYBOARD", "TOKENIZERS_PARALLELISM", "MONKEY"] {
            assert!(!is_secret_name(name), "{name}");
        }
        // A secret inside a longer one: the longer is replaced whole.
        let r = Redactor::from_vars(vars(&[("A_TOKEN", "abcdefgh"), ("B_TOKEN", "abcdefgh-and-more")]));
        assert_eq!(r.redact("x abcdefgh-and-more y").unwrap(), "x [redacted:B_TOKEN] y");
    }
}

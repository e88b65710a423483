//! Secret values of the config, found by their key's name (see [`crate::config::is_secret_key`]: every
//! value under an `env:` mapping, `*key*`, `*token*`, …) and by what they look like wherever they are
//! (inside `notifications.command` too): API tokens (`sk-…`, `ghp_…`, `github_pat_…`, `xox…-`, `glpat-…`,
//! `AKIA…`), `Bearer …` credentials, long hex or base64 strings, and the password of a URL
//! (`https://user:pw@host`). The config text shown for editing has each one replaced by a placeholder
//! `«hidden:N»`; [`unmask`] puts the real values back before the text is saved, so a form saved unchanged
//! never writes a mask into the file.

use crate::config::is_secret_key;
use std::ops::Range;

/// The config text with its secrets replaced by `«hidden:N»` (N from 1), and the values hidden.
#[derive(Debug, Clone, PartialEq)]
pub struct MaskedText {
    pub text: String,
    pub secrets: Vec<String>,
}

/// How a hidden value is shown in text that can be edited and saved.
pub fn placeholder(n: usize) -> String {
    format!("«hidden:{n}»")
}

/// What a hidden value is shown as where it cannot be edited (listings).
pub const HIDDEN: &str = "•••• (hidden)";

/// The parts of `s` that look like secrets, by their shape alone (byte ranges, in order, not overlapping).
pub fn secret_spans(s: &str) -> Vec<Range<usize>> {
    let mut spans: Vec<Range<usize>> = Vec::new();
    let bytes = s.as_bytes();
    let is_tok = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'+' | b'/' | b'=');
    // `Bearer X` / `Basic X` / `token X`: the credential after the word.
    for word in ["Bearer ", "bearer ", "Basic "] {
        let mut from = 0;
        while let Some(at) = s[from..].find(word) {
            let start = from + at + word.len();
            let end = start + bytes[start..].iter().take_while(|c| is_tok(**c)).count();
            if end - start >= 8 {
                spans.push(start..end);
            }
            from = start;
        }
    }
    // URL passwords: scheme://user:PASSWORD@host.
    let mut from = 0;
    while let Some(at) = s[from..].find("://") {
        let start = from + at + 3;
        let auth_end =
            start + bytes[start..].iter().take_while(|c| !matches!(c, b'/' | b' ' | b'"' | b'\'')).count();
        if let Some(at_sign) = s[start..auth_end].rfind('@')
            && let Some(colon) = s[start..start + at_sign].find(':')
        {
            let (p0, p1) = (start + colon + 1, start + at_sign);
            if p1 > p0 {
                spans.push(p0..p1);
            }
        }
        from = start;
    }
    // Tokens by shape: each run of token characters.
    let mut i = 0;
    while i < bytes.len() {
        if !is_tok(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_tok(bytes[i]) {
            i += 1;
        }
        let word = &s[start..i];
        if looks_like_token(word) {
            spans.push(start..i);
        }
    }
    spans.sort_by_key(|r| (r.start, std::cmp::Reverse(r.end)));
    let mut out: Vec<Range<usize>> = Vec::new();
    for r in spans {
        match out.last_mut() {
            Some(last) if r.start < last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// Whether one word looks like a credential: a vendor prefix with a long tail, or a long random-looking
/// hex or base64 string.
fn looks_like_token(word: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "sk-",
        "sk_",
        "pk_live_",
        "rk_live_",
        "ghp_",
        "gho_",
        "ghu_",
        "ghs_",
        "ghr_",
        "github_pat_",
        "glpat-",
        "xoxb-",
        "xoxp-",
        "xoxa-",
        "xoxs-",
        "xoxr-",
        "AKIA",
        "AIza",
        "hf_",
        "npm_",
    ];
    if PREFIXES.iter().any(|p| word.starts_with(p) && word.len() >= p.len() + 8) {
        return true;
    }
    // A path or a dotted name is not a secret, however long.
    if word.contains('/') && !word.ends_with('=') || word.contains("..") {
        return false;
    }
    let hex = word.len() >= 32 && word.chars().all(|c| c.is_ascii_hexdigit());
    let b64 = word.len() >= 32
        && word.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '-' | '_'))
        && word.chars().any(|c| c.is_ascii_digit())
        && word.chars().any(|c| c.is_ascii_uppercase())
        && word.chars().any(|c| c.is_ascii_lowercase());
    hex || b64
}

/// `s` with every secret-looking part replaced by [`HIDDEN`] (for listings).
pub fn mask_value(s: &str) -> String {
    let mut out = String::new();
    let mut last = 0;
    for r in secret_spans(s) {
        out.push_str(&s[last..r.start]);
        out.push_str(HIDDEN);
        last = r.end;
    }
    out.push_str(&s[last..]);
    out
}

/// Masks config text line by line: the value of a secret key (tracked through indentation, so
/// `agents.claude.env.X` is known as such), list items and block lines under one, and secret-looking
/// parts of every other value.
pub fn mask_config_text(text: &str) -> MaskedText {
    let mut secrets: Vec<String> = Vec::new();
    let mut out = String::new();
    // Open keys: (indentation, key).
    let mut open: Vec<(usize, String)> = Vec::new();
    let mut hide = |value: &str, secrets: &mut Vec<String>| -> String {
        match secrets.iter().position(|s| s == value) {
            Some(i) => placeholder(i + 1),
            None => {
                secrets.push(value.to_string());
                placeholder(secrets.len())
            }
        }
    };
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let indent = line.len() - line.trim_start().len();
        let body = line.trim_start();
        if body.is_empty() || body.starts_with('#') {
            out.push_str(line);
            continue;
        }
        // A list marker belongs to the key above; its item's keys sit deeper.
        let item = body.strip_prefix("- ").map(str::trim_start);
        let content = item.unwrap_or(body);
        let key_end = key_of(content);
        let under_secret = |open: &Vec<(usize, String)>| {
            let path: Vec<&str> = open.iter().filter(|(d, _)| *d < indent).map(|(_, k)| k.as_str()).collect();
            !path.is_empty() && is_secret_key(&path.join("."))
        };
        let value_start = line.len() - content.len();
        match key_end {
            Some((key, after)) => {
                let depth = indent + (body.len() - content.len());
                while open.last().is_some_and(|(d, _)| *d >= depth) {
                    open.pop();
                }
                open.push((depth, key.to_string()));
                let path: Vec<&str> = open.iter().map(|(_, k)| k.as_str()).collect();
                let value_at = value_start + after;
                let (head, value) = line.split_at(value_at);
                out.push_str(head);
                if is_secret_key(&path.join(".")) && !value.trim().is_empty() {
                    out.push_str(&mask_whole(value, &mut secrets, &mut hide));
                } else {
                    out.push_str(&mask_parts(value, &mut secrets, &mut hide));
                }
            }
            None => {
                while open.last().is_some_and(|(d, _)| *d > indent) {
                    open.pop();
                }
                let (head, value) = line.split_at(value_start);
                out.push_str(head);
                if under_secret(&open) {
                    out.push_str(&mask_whole(value, &mut secrets, &mut hide));
                } else {
                    out.push_str(&mask_parts(value, &mut secrets, &mut hide));
                }
            }
        }
    }
    MaskedText { text: out, secrets }
}

type Hide<'a> = dyn FnMut(&str, &mut Vec<String>) -> String + 'a;

/// A whole value hidden (its quotes and a trailing comment kept).
fn mask_whole(value: &str, secrets: &mut Vec<String>, hide: &mut Hide<'_>) -> String {
    let lead = value.len() - value.trim_start().len();
    let v = value.trim();
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            let inner = &v[1..v.len() - 1];
            if inner.is_empty() {
                return value.to_string();
            }
            return format!("{}{q}{}{q}", &value[..lead], hide(inner, secrets));
        }
    }
    if matches!(v, "|" | ">" | "|-" | ">-" | "{}" | "[]" | "null" | "~") {
        return value.to_string();
    }
    format!("{}{}", &value[..lead], hide(v, secrets))
}

/// The secret-looking parts of a value hidden.
fn mask_parts(value: &str, secrets: &mut Vec<String>, hide: &mut Hide<'_>) -> String {
    let mut out = String::new();
    let mut last = 0;
    for r in secret_spans(value) {
        out.push_str(&value[last..r.start]);
        out.push_str(&hide(&value[r.clone()], secrets));
        last = r.end;
    }
    out.push_str(&value[last..]);
    out
}

/// The key of `key: value` or `key:` (plain or quoted), and where its value starts (after the colon).
fn key_of(content: &str) -> Option<(&str, usize)> {
    let (key, rest_at) = if let Some(q) = content.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let close = content[1..].find(q)? + 1;
        (&content[1..close], close + 1)
    } else {
        let colon = content.find(':')?;
        let key = &content[..colon];
        if key.trim().is_empty() {
            return None;
        }
        (key, colon)
    };
    let rest = &content[rest_at..];
    let rest = rest.strip_prefix(':')?;
    if !(rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\t')) {
        return None;
    }
    if key.contains(['{', '[', '"', '#']) {
        return None;
    }
    Some((key.trim(), rest_at + 1))
}

/// `text` with every `«hidden:N»` replaced by the N-th of `secrets`; a placeholder that is not one of
/// them is an error: its line (1-based) and what is wrong.
pub fn unmask(text: &str, secrets: &[String]) -> Result<String, (u64, String)> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("«hidden:") {
        out.push_str(&rest[..at]);
        let tail = &rest[at + "«hidden:".len()..];
        let line = text[..text.len() - rest.len() + at].matches('\n').count() + 1;
        let bad = || {
            let message =
                "a hidden value «hidden:…» that this config does not have; put the value itself there";
            (line as u64, message.to_string())
        };
        let close = tail.find('»').ok_or_else(bad)?;
        let n: usize = tail[..close].parse().map_err(|_| bad())?;
        let value = n.checked_sub(1).and_then(|i| secrets.get(i)).ok_or_else(bad)?;
        out.push_str(value);
        rest = &tail[close + '»'.len_utf8()..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "agents:\n  claude:\n    env:\n      ANTHROPIC_API_KEY: sk-ant-very-secret-value\n      \
OTHER: \"plain\"\nnotifications:\n  command: curl -H \"Authorization: Bearer abcdef0123456789XYZ\" https://me:hunter22@hooks.example.com/x\n\
github:\n  token: ghp_abcdefghijklmnopqrstuvwxyz0123\nui:\n  theme: light\n  port: 7777\nrepos:\n  /home/me/src/app:\n    setup: make\n";

    #[test]
    fn secrets_are_hidden_by_key_and_by_shape_and_come_back_unchanged() {
        let m = mask_config_text(CONFIG);
        for secret in [
            "sk-ant-very-secret-value",
            "abcdef0123456789XYZ",
            "hunter22",
            "ghp_abcdefghijklmnopqrstuvwxyz0123",
            "plain",
        ] {
            assert!(!m.text.contains(secret), "{secret} shown:\n{}", m.text);
        }
        assert!(m.text.contains("curl -H \"Authorization: Bearer «hidden:"), "{}", m.text);
        assert!(m.text.contains("https://me:«hidden:"), "{}", m.text);
        assert!(
            m.text.contains("theme: light")
                && m.text.contains("port: 7777")
                && m.text.contains("/home/me/src/app:")
        );
        assert_eq!(unmask(&m.text, &m.secrets).unwrap(), CONFIG);
        assert_eq!(unmask("a: 1\nb: «hidden:99»\n", &m.secrets).unwrap_err().0, 2);
    }

    #[test]
    fn shapes_that_are_not_secrets_stay() {
        for plain in [
            "npm test",
            "/home/me/some/long/path/to/a/repository/folder",
            "claude-sonnet-4-5",
            "10m",
            "https://example.com/a",
        ] {
            assert_eq!(mask_value(plain), plain);
        }
        assert_eq!(mask_value("xoxb-123456789012-abc"), HIDDEN);
        assert_eq!(mask_value("deadbeefdeadbeefdeadbeefdeadbeef00"), HIDDEN);
    }
}

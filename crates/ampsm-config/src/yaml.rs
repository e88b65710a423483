//! YAML parsing with one-line errors that name the file, line and column (through serde-saphyr, which
//! also rejects duplicate keys).

use crate::error::ConfigError;
use serde::de::DeserializeOwned;
use std::path::Path;

/// Parses `text` (the content of `path`) into `T`.
pub fn parse<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    serde_saphyr::from_str::<T>(text).map_err(|e| match invalid(path, &e) {
        // "missing field `prompt`" says which field, not where: name the mapping it is missing from.
        ConfigError::Invalid { path, line, column, message } if message.starts_with("missing field") => {
            let message = match mapping_path_at(text, line) {
                Some(at) => format!("{at}: {message}"),
                None => message,
            };
            ConfigError::Invalid { path, line, column, message }
        }
        // "invalid u16" says neither which field nor what it wants: say both, and what it got.
        ConfigError::Invalid { path, line, column, message } if line > 0 && wanted(&message).is_some() => {
            let message = explain_bad_value(text, line, &message);
            ConfigError::Invalid { path, line, column, message }
        }
        // "expected sequence start" says neither which field nor what a user should write: say both.
        ConfigError::Invalid { path, line, column, message }
            if line > 0 && shape_wanted(&message).is_some() =>
        {
            let message = explain_bad_shape(text, line, column, &message);
            ConfigError::Invalid { path, line, column, message }
        }
        other => other,
    })
}

/// What a node of the shape serde-saphyr's "expected <event>" wanted must look like.
fn shape_wanted(message: &str) -> Option<&'static str> {
    Some(match message {
        "expected sequence start" => "expected a list ([a, b], or one \"- item\" per line)",
        "expected mapping start" => "expected a mapping (key: value lines, or {key: value})",
        "expected string scalar" | "expected scalar" => "expected a single value (text or a number)",
        _ => return None,
    })
}

/// `field.path: expected …, got …` for a node of the wrong shape starting at `line`:`column` (1-based).
fn explain_bad_shape(text: &str, line: u64, column: u64, message: &str) -> String {
    let expected = shape_wanted(message).unwrap_or(message);
    let raw = text.lines().nth(line as usize - 1).unwrap_or("");
    let split = raw.char_indices().nth(column.saturating_sub(1) as usize).map_or(raw.len(), |(i, _)| i);
    let (before, node) = raw.split_at(split);
    let inside = mapping_path_at(text, line);
    let field_of = |key: &str| match &inside {
        Some(at) => format!("{at}.{key}"),
        None => key.to_string(),
    };
    let (field, got) = if let Some(key) = key_of(before) {
        // The value is on its key's line; inside a [..] there, the item is counted by its commas.
        let value_so_far = before.split_once(':').map_or("", |(_, v)| v).trim_start();
        let field = match value_so_far.strip_prefix('[').and_then(flow_index) {
            Some(index) => format!("{}[{index}]", field_of(key)),
            None => field_of(key),
        };
        (Some(field), describe_node(node))
    } else if node.starts_with('-') {
        // A list in block style starts here: it is the value of the enclosing key (or item).
        let field = inside.map(|p| match p.strip_suffix(']').and_then(|p| p.rsplit_once('[')) {
            Some((owner, _)) => owner.to_string(),
            None => p,
        });
        (field, "a list".to_string())
    } else if key_of(raw).is_some() {
        (inside, "a mapping".to_string())
    } else {
        (inside, describe_node(node))
    };
    match field {
        Some(field) => format!("{field}: {expected}, got {got}"),
        None => format!("{expected}, got {got}"),
    }
}

/// The index of the item that starts after `items` (the text of a `[..]` list so far): its top-level
/// commas; `None` when that is not simple to tell (quotes, or an unbalanced nesting).
fn flow_index(items: &str) -> Option<usize> {
    let (mut depth, mut commas) = (0usize, 0usize);
    for c in items.chars() {
        match c {
            '"' | '\'' => return None,
            '[' | '{' => depth += 1,
            ']' | '}' => depth = depth.checked_sub(1)?,
            ',' if depth == 0 => commas += 1,
            _ => {}
        }
    }
    (depth == 0).then_some(commas)
}

/// A node as written on its line, for "got …": a list, a mapping, or the value itself (shortened).
fn describe_node(node: &str) -> String {
    let node = node.trim();
    if node.starts_with('[') {
        return "a list".into();
    }
    if node.starts_with('{') {
        return "a mapping".into();
    }
    let value = node.split([',', ']', '}']).next().unwrap_or("").trim();
    match value.chars().count() {
        0 => "nothing".into(),
        n if n > 60 => format!("{}…", value.chars().take(60).collect::<String>()),
        _ => value.to_string(),
    }
}

/// What went over one of serde-saphyr's limits, and the limit, in words.
fn budget_message(breach: &serde_saphyr::budget::BudgetBreach) -> String {
    use serde_saphyr::budget::BudgetBreach as B;
    let limits = serde_saphyr::Budget::default();
    let what = match breach {
        B::Nodes { .. } => {
            format!("more than {} YAML values (each list, mapping and scalar counts)", limits.max_nodes)
        }
        B::Events { .. } => format!("more than {} YAML parser events", limits.max_events),
        B::Depth { .. } => format!("lists and mappings nested more than {} deep", limits.max_depth),
        B::Documents { .. } => format!("more than {} YAML documents", limits.max_documents),
        B::Aliases { .. } => format!("more than {} aliases (*name)", limits.max_aliases),
        B::Anchors { .. } => format!("more than {} anchors (&name)", limits.max_anchors),
        B::MergeKeys { .. } => format!("more than {} merge keys (<<)", limits.max_merge_keys),
        B::AliasAnchorRatio { .. } => format!(
            "more than {} times as many aliases (*name) as anchors (&name)",
            limits.alias_anchor_ratio_multiplier
        ),
        B::ScalarBytes { .. } => {
            format!("more than {} MiB of text in values", limits.max_total_scalar_bytes / (1024 * 1024))
        }
        other => format!("over a limit of the YAML reader ({other:?})"),
    };
    format!("the file is too large to read: {what}, the most one file may have; split it into smaller files")
}

/// What a scalar of serde's type name in "invalid <type>" must look like.
fn wanted(message: &str) -> Option<&'static str> {
    Some(match message.strip_prefix("invalid ")? {
        "boolean" => "expected true or false",
        "u8" => "expected a whole number from 0 to 255",
        "u16" => "expected a whole number from 0 to 65535",
        "u32" | "u64" | "usize" => "expected a whole number, 0 or more",
        "i32" | "i64" | "isize" => "expected a whole number",
        "f32" | "f64" => "expected a number",
        _ => return None,
    })
}

/// `field.path: expected …, got VALUE` for a bad scalar on line `line` (1-based).
fn explain_bad_value(text: &str, line: u64, message: &str) -> String {
    let expected = wanted(message).unwrap_or(message);
    let raw = text.lines().nth(line as usize - 1).unwrap_or("");
    let Some(key) = key_of(raw) else { return expected.to_string() };
    let field = match mapping_path_at(text, line) {
        Some(at) => format!("{at}.{key}"),
        None => key.to_string(),
    };
    let got = raw.split_once(':').map(|(_, v)| v.trim()).unwrap_or("");
    format!("{field}: {expected}, got {got}")
}

/// The path (`items[1]`, `problems[0].agent`) of the block mapping that line `line` (1-based) is part of,
/// from the indentation of the lines up to it; `None` for the top level.
pub fn mapping_path_at(text: &str, line: u64) -> Option<String> {
    enum Seg {
        /// A key, its indentation, and how many list items it has had so far.
        Key(String, usize, usize),
        /// A list item's index and the indentation of its dash.
        Item(usize, usize),
    }
    let mut open: Vec<Seg> = Vec::new();
    for raw in text.lines().take(line as usize) {
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = raw.len() - trimmed.len();
        if trimmed == "-" || trimmed.starts_with("- ") {
            // A list item: close deeper entries and earlier items at this indentation.
            while let Some(top) = open.last() {
                match top {
                    Seg::Key(_, d, _) if *d > indent => open.pop(),
                    Seg::Item(_, d) if *d >= indent => open.pop(),
                    _ => break,
                };
            }
            let index = match open.last_mut() {
                Some(Seg::Key(_, _, seen)) => {
                    *seen += 1;
                    *seen - 1
                }
                _ => 0,
            };
            open.push(Seg::Item(index, indent));
            if let Some(key) = key_of(raw) {
                open.push(Seg::Key(key.to_string(), indent + 2, 0));
            }
        } else if let Some(key) = key_of(raw) {
            while open.last().is_some_and(|top| match top {
                Seg::Key(_, d, _) | Seg::Item(_, d) => *d >= indent,
            }) {
                open.pop();
            }
            open.push(Seg::Key(key.to_string(), indent, 0));
        }
    }
    // The last key is a field of the mapping in question, not part of its path.
    if matches!(open.last(), Some(Seg::Key(..))) {
        open.pop();
    }
    let mut path = String::new();
    for seg in &open {
        match seg {
            Seg::Key(k, _, _) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
            }
            Seg::Item(i, _) => path.push_str(&format!("[{i}]")),
        }
    }
    (!path.is_empty()).then_some(path)
}

/// Turns a serde-saphyr error into [`ConfigError::Invalid`] without the multi-line snippet.
pub fn invalid(path: &Path, err: &serde_saphyr::Error) -> ConfigError {
    let (line, column) = err.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
    if let serde_saphyr::Error::Budget { breach, .. } = err.without_snippet() {
        let message = budget_message(breach);
        return ConfigError::Invalid { path: path.to_path_buf(), line, column, message };
    }
    let mut message = err.without_snippet().to_string();
    if line > 0 {
        // The message ends with " at line L, column C"; the position is shown once, in front.
        for suffix in [format!(" at line {line}, column {column}"), format!(" at line {line}")] {
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_string();
                break;
            }
        }
    }
    let message = message.replace(", set DuplicateKeyPolicy in Options if acceptable", "");
    ConfigError::Invalid { path: path.to_path_buf(), line, column, message }
}

/// The 1-based line where the dotted key `dotted` is written, found by a scan that follows indentation
/// (else the first line naming its last segment); 0 when not found. Used to point at unknown keys and
/// at values serde cannot check.
pub fn line_of_key(text: &str, dotted: &str) -> u64 {
    let parts: Vec<&str> = dotted.split('.').collect();
    // The keys enclosing each line, by indentation: a match of the whole dotted path wins.
    let mut open: Vec<(usize, String)> = Vec::new();
    let mut last_segment_line = 0;
    for (i, line) in text.lines().enumerate() {
        let Some(key) = key_of(line) else { continue };
        let indent = line.len() - line.trim_start().len();
        while open.last().is_some_and(|(d, _)| *d >= indent) {
            open.pop();
        }
        open.push((indent, key.to_string()));
        if open.len() == parts.len() && open.iter().zip(&parts).all(|((_, k), p)| k == p) {
            return (i + 1) as u64;
        }
        if last_segment_line == 0 && parts.last() == Some(&key) {
            last_segment_line = (i + 1) as u64;
        }
    }
    last_segment_line
}

/// The key a YAML line starts (`key:` or `- key:`, quoted or not), if any.
fn key_of(line: &str) -> Option<&str> {
    let t = line.trim_start().trim_start_matches("- ");
    if t.starts_with('#') {
        return None;
    }
    let quoted = t.starts_with(['"', '\'']);
    let t = t.trim_start_matches(['"', '\'']);
    let end = t.find(|c: char| c == ':' || (quoted && (c == '"' || c == '\'')))?;
    let key = &t[..end];
    let rest = t[end..].trim_start_matches(['"', '\'']);
    (rest.starts_with(':') && !key.is_empty() && !key.contains(' ')).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct T {
        flag: bool,
    }

    #[test]
    fn errors_are_one_line_with_position() {
        let err = parse::<T>(&PathBuf::from("/x/c.yaml"), "flag: 1\n").unwrap_err().to_string();
        assert_eq!(err, "/x/c.yaml:1:7: flag: expected true or false, got 1");
        let err = parse::<T>(&PathBuf::from("c.yaml"), "flag: {\n").unwrap_err().to_string();
        assert!(err.starts_with("c.yaml:1:7: "), "{err}");
        assert!(!err.contains('\n'));
    }

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Shapes {
        name: String,
        tags: Vec<String>,
        items: Vec<std::collections::BTreeMap<String, String>>,
    }

    #[test]
    fn wrong_shapes_name_the_field_what_it_wants_and_what_it_got() {
        let err = |text: &str| parse::<Shapes>(&PathBuf::from("s.yaml"), text).unwrap_err().to_string();
        let e = err("name: n\ntags: one\nitems: []\n");
        assert_eq!(e, "s.yaml:2:7: tags: expected a list ([a, b], or one \"- item\" per line), got one");
        let e = err("name: [n]\ntags: []\nitems: []\n");
        assert_eq!(e, "s.yaml:1:7: name: expected a single value (text or a number), got a list");
        let e = err("name: n\ntags: []\nitems:\n  - a: b\n  - c\n");
        assert!(e.starts_with("s.yaml:5:5: items[1]: expected a mapping"), "{e}");
        assert!(e.ends_with("got c"), "{e}");
        let e = err("name: n\ntags: []\nitems: [{a: b}, c]\n");
        assert!(e.contains("items[1]: expected a mapping"), "{e}");
    }

    #[test]
    fn over_the_reader_limits_says_the_limit() {
        let mut text = String::from("name: n\nitems: []\ntags:\n");
        for i in 0..260_000 {
            text.push_str(&format!("  - t{i}\n"));
        }
        let e = parse::<Shapes>(&PathBuf::from("s.yaml"), &text).unwrap_err().to_string();
        assert!(e.contains("too large") && e.contains("more than 250000 YAML values"), "{e}");
        assert!(!e.contains("budget breached"), "{e}");
    }

    #[test]
    fn finds_key_lines() {
        assert_eq!(line_of_key("git:\n  colour: x\n", "git.colour"), 2);
        assert_eq!(line_of_key("git:\n", "nope"), 0);
        let text = "session:\n  budget_usd: 1\n# bench:\nbench:\n  \"budget_usd\": 0\n";
        assert_eq!(line_of_key(text, "bench.budget_usd"), 5);
        assert_eq!(line_of_key(text, "session.budget_usd"), 2);
        assert_eq!(line_of_key("items:\n  - name: a\n    prompt: p\n", "items.prompt"), 3);
    }

    #[test]
    fn the_mapping_around_a_line_is_named_by_its_path() {
        let text = "name: x\nitems:\n  - name: a\n    prompt: p\n  - name: b\n    repos:\n      - path: r\n        \
                    base: m\n  - {name: c}\nconcurrency: 2\n";
        assert_eq!(mapping_path_at(text, 1), None);
        assert_eq!(mapping_path_at(text, 4).as_deref(), Some("items[0]"));
        assert_eq!(mapping_path_at(text, 5).as_deref(), Some("items[1]"));
        assert_eq!(mapping_path_at(text, 8).as_deref(), Some("items[1].repos[0]"));
        assert_eq!(mapping_path_at(text, 9).as_deref(), Some("items[2]"));
        assert_eq!(mapping_path_at(text, 10), None);
        // A list at the same indentation as its key.
        assert_eq!(
            mapping_path_at("problems:\n- id: a\n- id: b\n  repo: r\n", 4).as_deref(),
            Some("problems[1]")
        );
    }
}

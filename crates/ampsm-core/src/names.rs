//! Validation of user-chosen names (sessions, batches) and the slug used in branch and folder names.
//! A valid name can never escape a folder (no `/`, `\`, `..`) and never makes a ref git refuses.

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid session name {name:?}: {reason}")]
pub struct NameError {
    pub name: String,
    pub reason: String,
}

/// Longest accepted session name.
pub const MAX_NAME_LEN: usize = 64;

/// Accepts 1–64 characters of letters, digits, `-`, `_`, `.`, starting with a letter or digit, with no
/// `..` and not ending in `.lock` or `.`.
pub fn validate_session_name(name: &str) -> Result<(), NameError> {
    let fail = |reason: String| Err(NameError { name: name.to_string(), reason });
    if name.is_empty() {
        return fail("the name is empty".into());
    }
    if name.chars().count() > MAX_NAME_LEN {
        return fail(format!("longer than {MAX_NAME_LEN} characters"));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))) {
        let shown = match c {
            '/' | '\\' => format!("contains {c:?}: a name cannot be a path"),
            c if c.is_whitespace() => "contains whitespace".to_string(),
            c if c.is_control() => "contains a control character".to_string(),
            c => format!("contains {c:?}"),
        };
        return fail(format!("{shown} (use letters, digits, '-', '_' and '.')"));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return fail("must start with a letter or a digit".into());
    }
    if name.contains("..") {
        return fail("contains '..'".into());
    }
    if name.ends_with(".lock") || name.ends_with('.') {
        return fail("must not end with '.lock' or '.'".into());
    }
    Ok(())
}

/// Lowercase, ASCII alphanumerics and single dashes, at most 40 characters; `session` when nothing is left.
pub fn slugify(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
        if out.len() >= 40 {
            break;
        }
    }
    let trimmed = out.trim_matches('-');
    if trimmed.is_empty() { "session".to_string() } else { trimmed.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for ok in ["jwt-auth", "fix_1", "v2.0-try", "A"] {
            assert!(validate_session_name(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_dangerous_names() {
        for bad in
            ["", "../etc", "a/b", "a\\b", ".hidden", "-flag", "x..y", "name.lock", "a b", "a~1", "a:b", "é"]
        {
            let err = validate_session_name(bad).unwrap_err();
            assert!(err.to_string().contains("invalid session name"), "{bad}");
        }
        assert!(validate_session_name(&"x".repeat(65)).is_err());
    }

    #[test]
    fn slugs() {
        assert_eq!(slugify("JWT Auth!"), "jwt-auth");
        assert_eq!(slugify("__"), "session");
        assert_eq!(slugify("fix_1.2"), "fix-1-2");
    }
}

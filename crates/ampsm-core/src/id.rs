//! Identifiers: sessions, iterations, batches and runs use random 128-bit ids written as 32 lowercase hex
//! characters, so that any unique prefix (8 characters by default) names them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Length of the short form shown in tables and used in branch names.
pub const SHORT_ID_LEN: usize = 8;

/// A session id: 32 lowercase hex characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(String);

impl SessionId {
    /// A fresh random id.
    pub fn new_random() -> Self {
        SessionId(new_id())
    }

    /// Wraps an id read back from the store.
    pub fn from_stored(s: impl Into<String>) -> Self {
        SessionId(s.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first [`SHORT_ID_LEN`] characters.
    pub fn short(&self) -> &str {
        short_id(&self.0)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A fresh random id (32 hex characters) for any table.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The short form of any id.
pub fn short_id(id: &str) -> &str {
    id.get(..SHORT_ID_LEN).unwrap_or(id)
}

/// Whether `s` could be an id or an id prefix (hex only, 4 to 32 characters).
pub fn looks_like_id_prefix(s: &str) -> bool {
    (4..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_hex_and_distinct() {
        let a = SessionId::new_random();
        let b = SessionId::new_random();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 32);
        assert!(looks_like_id_prefix(a.as_str()));
        assert_eq!(a.short().len(), SHORT_ID_LEN);
        assert!(!looks_like_id_prefix("my-session"));
    }
}

//! The pages, one module per view; each handler asks the engine and renders with maud.

pub mod batches;
pub mod bench;
pub mod export;
pub mod git;
pub mod interactive;
pub mod layout;
pub mod session;
pub mod sessions;
pub mod settings;

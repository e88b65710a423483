//! The integration tests of the `amp-sessions` binary (one test binary, one module per area): each test
//! drives the real program on temporary repositories with a temporary AMPSM_HOME, the way a user would;
//! the `web_*` modules do it through the dashboard (`amp-sessions ui`), over HTTP and in a real Chromium.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod agents;
mod bad_input;
mod batch;
mod bench;
mod browser;
mod cluster;
mod containment;
mod health;
mod metrics;
mod permissions;
mod review;
mod secrets;
mod sessions;
mod support;
mod swe;
mod web_a11y;
mod web_approvals;
mod web_browser;
mod web_conversation;
mod web_http;
mod web_jobs;
mod web_overview;
mod web_review;
mod web_sessions;
mod web_settings;
mod web_support;

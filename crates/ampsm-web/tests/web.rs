//! Tests of the dashboard (`amp-sessions ui`), driving the real binary on temporary repositories with a
//! temporary AMPSM_HOME: HTTP checks of the security rules and of every number against the CLI, and a
//! real Chromium through chromedriver for what a user clicks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "web/approvals.rs"]
mod approvals;
#[path = "web/browser.rs"]
mod browser;
#[path = "web/http.rs"]
mod http;
#[path = "web/support.rs"]
mod support;

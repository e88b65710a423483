//! The integration tests of the `amp-sessions` binary (one test binary, one module per area): each test
//! drives the real program on temporary repositories with a temporary AMPSM_HOME, the way a user would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod agents;
mod bad_input;
mod batch;
mod bench;
mod containment;
mod health;
mod metrics;
mod permissions;
mod review;
mod secrets;
mod sessions;
mod support;
mod swe;

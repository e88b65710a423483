//! The integration tests of `ampsm-agent` (one test binary, one module per area): the parsers on recorded
//! lines and under fuzzing, process supervision with real subprocesses, processes that escape the run's
//! group, and each adapter end to end against the fake agent and the real CLIs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod conformance;
mod escapes;
mod fuzz;
mod parsers;
mod process;

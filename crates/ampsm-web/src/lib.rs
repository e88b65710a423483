//! The local web dashboard of amp-sessions (`amp-sessions ui`): server-rendered pages over the engine
//! (sessions, a session's overview / interactive chat / git review, batches, benchmarks, settings and
//! health, the approvals inbox of the `ask` permission policy and Stop of a running agent), live updates by Server-Sent Events, and the security of PRODUCT.md principle 7: loopback
//! only, a random token, Host and Origin checks, CSRF tokens on every change. It holds no logic of its
//! own: every number and every action comes from `ampsm-engine`.

#![deny(unsafe_code)]

pub mod auth;
pub mod charts;
pub mod diff;
pub mod error;
pub mod live;
pub mod markdown;
pub mod notify;
pub mod server;
pub mod state;
pub mod views;

pub use error::WebError;
pub use server::{Embedded, ServeOptions, Unfinished, serve};

//! Settings / doctor: every config key with its effective value (secret-looking values masked, agent
//! environment values never shown), the engine's health checks (`doctor`) and an auth badge per agent.

use crate::error::WebError;
use crate::state::AppState;
use crate::views::layout::{self, Page, Section, status};
use ampsm_core::PermissionPolicy;
use ampsm_engine::health::DoctorReport;
use ampsm_engine::runs::permissions::AgentPolicies;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::html;

use ampsm_config::config::is_secret_key;

/// The config file, its entries, the doctor's report (or its failure), the config warnings and each
/// agent's permission policies.
type Loaded = (String, Vec<(String, String)>, Result<DoctorReport, String>, Vec<String>, Vec<AgentPolicies>);

/// `GET /settings`.
pub async fn page(State(state): State<AppState>) -> Result<Response, WebError> {
    let (config_path, entries, report, warnings, policies): Loaded = state
        .engine(|e| {
            let entries = e
                .config()
                .list()
                .into_iter()
                .map(|(k, v)| {
                    let shown = if is_secret_key(&k) && !v.is_null() {
                        "•••• (hidden)".to_string()
                    } else {
                        match v {
                            serde_json::Value::Null => String::new(),
                            serde_json::Value::String(s) => s,
                            other => other.to_string(),
                        }
                    };
                    (k, shown)
                })
                .collect();
            let warnings = e.config_warnings().iter().map(|w| w.to_string()).collect();
            let report = e.doctor().map_err(|err| WebError::from(err).line());
            Ok((e.config_path().display().to_string(), entries, report, warnings, e.agent_policies()))
        })
        .await?;
    let body = html! {
        h1 { "Settings" }
        @match &report {
            Ok(r) => {
                h2 { "Agents" }
                table #agents {
                    tr { th { "Agent" } th { "Program" } th { "Version" } th { "Auth" } th { "Continue" } th { "Interactive" } th { "Reports cost" } }
                    @for a in &r.agents {
                        tr {
                            td { (a.agent) }
                            td { @if let Some(f) = &a.found { code { (f) } } @else { span.dim { (a.program) " (not found)" } } }
                            td { (a.version.clone().unwrap_or_default()) }
                            td { (status(if a.credentials { "ok" } else { "warn" }))
                                 " " span.dim { (if a.credentials { "credentials present" } else { "no credentials" }) ": " (a.credentials_detail) } }
                            td { (format!("{:?}", a.capabilities.continue_mode).to_lowercase()) }
                            td { (if a.capabilities.interactive { "yes" } else { "no" }) }
                            td { (if a.capabilities.reports_cost { "yes" } else { "no" }) }
                        }
                    }
                }
                h2 { "Health (doctor)" }
                table #doctor {
                    @for c in &r.checks { tr { td { (status(c.status.as_str())) } td { (c.name) } td { (c.detail) } } }
                }
            }
            Err(line) => { div.err { "doctor failed: " (line) } }
        }
        h2 { "Permission policies" }
        ul #policy-meanings {
            @for p in PermissionPolicy::ALL { li { b { (p.as_str()) } ": " (p.meaning()) } }
        }
        table #policies {
            tr {
                th { "Agent" } th { "Default" }
                @for p in PermissionPolicy::ALL { th title=(p.meaning()) { (p.as_str()) } }
            }
            @for a in &policies {
                tr data-agent=(a.agent) {
                    td { (a.agent) }
                    td { b { (a.default.as_str()) } " " span.dim { "(" (a.default_from) ")" } }
                    @for p in &a.policies {
                        td data-policy=(p.policy.as_str()) {
                            @if p.honoured { span.s-ok { "honoured" } } @else { span.s-error { "not supported" } }
                            div.dim { (p.how) }
                        }
                    }
                }
            }
        }
        p.dim { "A new session takes its agent's default unless the New session form (or " code { "new --permissions" } ") names one; "
            "set defaults with " code { "amp-sessions config set agents.<name>.permissions POLICY" } " or " code { "session.permissions" } "." }
        h2 { "Config" }
        p.dim { code { (config_path) } " · change values with " code { "amp-sessions config set KEY VALUE" } }
        @for w in &warnings { div.err.warn { (w) } }
        table #config {
            tr { th { "Key" } th { "Value" } }
            @for (k, v) in &entries { tr { td { code { (k) } } td { (v) } } }
        }
        p.dim { "Theme: " (state.inner.theme) " · live updates: " (if state.inner.auto_update { "on" } else { "off" })
            " · listening on 127.0.0.1:" (state.inner.port) " only" }
    };
    Ok(layout::page(&state, Page { title: "Settings", section: Section::Settings, live: None, body })
        .into_response())
}

//! Settings / doctor: the config file to edit (secrets hidden by key name and by what they look like,
//! checked as `amp-sessions config` loads it before anything is written, saved atomically; the next
//! request uses it), every config key with its effective value (masked the same way), the engine's health
//! checks (`doctor`) and an auth badge per agent.

use crate::error::WebError;
use crate::state::AppState;
use crate::views::layout::{self, Page, Section, status};
use crate::views::layout::{csrf, error_line, notice_line};
use ampsm_core::PermissionPolicy;
use ampsm_engine::health::DoctorReport;
use ampsm_engine::runs::permissions::AgentPolicies;
use ampsm_engine::settings::ConfigText;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

/// The config file to edit, its entries, the doctor's report (or its failure), the config warnings and
/// each agent's permission policies.
type Loaded =
    (ConfigText, Vec<(String, String)>, Result<DoctorReport, String>, Vec<String>, Vec<AgentPolicies>);

/// `?saved=1` after a save.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Saved {
    pub saved: Option<String>,
}

/// The config form: the edited text and the version of the file it started from.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ConfigForm {
    pub text: String,
    pub version: String,
}

/// `GET /settings`.
pub async fn page(State(state): State<AppState>, Query(s): Query<Saved>) -> Result<Response, WebError> {
    let notice =
        s.saved.is_some().then_some("Config saved: every request from now on reads it (ui.port, ui.theme and ui.auto_update apply when the dashboard next starts).");
    render(state, None, None, notice, StatusCode::OK).await
}

/// `POST /settings/config`: checks and saves the edited config (hidden values kept as they are).
pub async fn save(State(state): State<AppState>, Form(f): Form<ConfigForm>) -> Result<Response, WebError> {
    let (text, version) = (f.text.clone(), f.version.clone());
    match state.engine(move |e| Ok(e.save_config_text(&text, &version)?)).await {
        Ok(_) => Ok(Redirect::to("/settings?saved=1#config-edit").into_response()),
        Err(e) => {
            let code = e.status();
            render(state, Some(f), Some(e.line()), None, code).await
        }
    }
}

async fn render(
    state: AppState,
    form: Option<ConfigForm>,
    error: Option<String>,
    notice: Option<&str>,
    code: StatusCode,
) -> Result<Response, WebError> {
    let (config, entries, report, warnings, policies): Loaded = state
        .engine(|e| {
            let entries = e.config_entries_masked();
            let warnings = e.config_warnings().iter().map(|w| w.to_string()).collect();
            let report = e.doctor().map_err(|err| WebError::from(err).line());
            Ok((e.config_text()?, entries, report, warnings, e.agent_policies()))
        })
        .await?;
    let config_path = config.path.clone();
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
        h2 #config-edit { "Config" }
        (notice_line(notice))
        (error_line(error.as_deref()))
        (config_form(&state, &config, form.as_ref()))
        p.dim { code { (config_path) } " · or change one value with " code { "amp-sessions config set KEY VALUE" } }
        @for w in &warnings { div.err.warn { (w) } }
        table #config {
            tr { th { "Key" } th { "Value" } }
            @for (k, v) in &entries { tr { td { code { (k) } } td { (v) } } }
        }
        p.dim { "Theme: " (state.inner.theme) " · live updates: " (if state.inner.auto_update { "on" } else { "off" })
            " · listening on 127.0.0.1:" (state.inner.port) " only" }
    };
    Ok((code, layout::page(&state, Page { title: "Settings", section: Section::Settings, live: None, body }))
        .into_response())
}

/// The editor of the config file: its text with secrets hidden as `«hidden:N»` (saved as they were
/// unless replaced), or the text the user sent when it was refused.
fn config_form(state: &AppState, config: &ConfigText, sent: Option<&ConfigForm>) -> Markup {
    let (text, version) = match sent {
        Some(f) => (f.text.as_str(), f.version.as_str()),
        None => (config.text.as_str(), config.version.as_str()),
    };
    let rows = text.lines().count().clamp(8, 40) + 2;
    html! {
        form method="post" action="/settings/config" #config-form {
            (csrf(state))
            input type="hidden" name="version" value=(version);
            p { label for="config-text" { "config.yaml" }
                @if !config.exists { span.dim { " (no file yet: the defaults apply; saving creates it)" } } }
            textarea #config-text name="text" rows=(rows) spellcheck="false" { (text) }
            p.dim {
                @if config.hidden > 0 { (config.hidden) " secret value(s) are shown as " code { "«hidden:N»" } " and kept as they are when saved; replace one to change it. " }
                "The text is checked as " code { "amp-sessions config" } " reads it before anything is written."
            }
            p { button.primary type="submit" { "Save config" } }
        }
    }
}

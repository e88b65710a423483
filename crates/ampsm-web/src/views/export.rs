//! Downloads through the engine's export (the same code as `amp-sessions export`): JSON and JSONL as one
//! file; CSV, which the engine writes as one file per table, as a page of links to each table's file.

use crate::error::WebError;
use crate::state::AppState;
use crate::views::layout::{self, Page, Section};
use ampsm_engine::reports::export::{ExportFormat, ExportRequest};
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

/// `GET /export?session=…|batch=…|bench=…&format=json|jsonl|csv[&table=…]`.
#[derive(Debug, Deserialize)]
pub struct ExportQuery {
    pub session: Option<String>,
    pub batch: Option<String>,
    pub bench: Option<String>,
    pub format: String,
    /// For CSV: which table's file to download.
    pub table: Option<String>,
}

impl ExportQuery {
    fn request(&self, format: ExportFormat, out: Option<std::path::PathBuf>) -> ExportRequest {
        ExportRequest {
            sessions: self.session.iter().cloned().collect(),
            batch: self.batch.clone(),
            bench: self.bench.clone(),
            format,
            out,
        }
    }

    fn stem(&self) -> String {
        let (kind, id) = match (&self.session, &self.batch, &self.bench) {
            (Some(s), _, _) => ("session", s.as_str()),
            (_, Some(b), _) => ("batch", b.as_str()),
            (_, _, Some(r)) => ("bench", r.as_str()),
            _ => ("all", ""),
        };
        let id: String = id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(12).collect();
        if id.is_empty() { kind.to_string() } else { format!("{kind}-{id}") }
    }

    fn query_text(&self, format: &str, table: Option<&str>) -> String {
        let mut parts = Vec::new();
        for (k, v) in [("session", &self.session), ("batch", &self.batch), ("bench", &self.bench)] {
            if let Some(v) = v {
                parts.push(format!("{k}={}", enc(v)));
            }
        }
        parts.push(format!("format={format}"));
        if let Some(t) = table {
            parts.push(format!("table={}", enc(t)));
        }
        parts.join("&")
    }
}

/// Percent-encodes a query value.
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The export download (see [`ExportQuery`]).
pub async fn export(
    State(state): State<AppState>,
    Query(q): Query<ExportQuery>,
) -> Result<Response, WebError> {
    let format: ExportFormat = q.format.parse().map_err(WebError::BadRequest)?;
    let stem = q.stem();
    match format {
        ExportFormat::Json | ExportFormat::Jsonl => {
            let ext = format.extension();
            let req = q.request(format, None);
            let bytes = state
                .engine(move |e| {
                    let mut buf = Vec::new();
                    e.export(&req, &mut buf)?;
                    Ok(buf)
                })
                .await?;
            Ok(download(bytes, format.content_type(), &format!("{stem}.{ext}")))
        }
        ExportFormat::Csv => {
            let home = state.inner.paths.home.clone();
            let req_dir = home.join("tmp").join(format!("web-export-{}", uuid::Uuid::new_v4().simple()));
            let req = q.request(format, Some(req_dir.clone()));
            let table = q.table.clone();
            let (files, content) = state
                .engine(move |e| {
                    std::fs::create_dir_all(&req_dir)
                        .map_err(|source| WebError::Io { path: req_dir.clone(), source })?;
                    let result = e.export(&req, &mut std::io::sink());
                    let mut names: Vec<String> = std::fs::read_dir(&req_dir)
                        .map(|rd| {
                            rd.filter_map(Result::ok)
                                .filter_map(|f| f.file_name().to_str().map(str::to_string))
                                .filter_map(|n| n.strip_suffix(".csv").map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default();
                    names.sort();
                    let content = match (&result, &table) {
                        (Ok(_), Some(t)) if names.contains(t) => {
                            let path = req_dir.join(format!("{t}.csv"));
                            Some(std::fs::read(&path).map_err(|source| WebError::Io { path, source })?)
                        }
                        _ => None,
                    };
                    let _ = std::fs::remove_dir_all(&req_dir);
                    result?;
                    if let Some(t) = &table
                        && content.is_none()
                    {
                        return Err(WebError::NotFound(format!("no CSV table {t:?} in this export")));
                    }
                    Ok((names, content))
                })
                .await?;
            if let (Some(bytes), Some(t)) = (content, &q.table) {
                return Ok(download(bytes, "text/csv; charset=utf-8", &format!("{stem}-{t}.csv")));
            }
            let body = html! {
                h1 { "CSV export" }
                p.dim { "The export writes one CSV file per table (the layout of " code { "amp-sessions export --format csv" } ")." }
                ul {
                    @for f in &files {
                        li { a href={ "/export?" (q.query_text("csv", Some(f))) } download { (f) ".csv" } }
                    }
                }
            };
            Ok(layout::page(
                &state,
                Page { title: "CSV export", section: Section::Sessions, live: None, body },
            )
            .into_response())
        }
    }
}

pub fn download(bytes: Vec<u8>, ctype: &'static str, filename: &str) -> Response {
    let disposition = format!("attachment; filename=\"{filename}\"");
    ([(header::CONTENT_TYPE, ctype.to_string()), (header::CONTENT_DISPOSITION, disposition)], bytes)
        .into_response()
}

/// Links to every export format for a scope (`session=…`, `batch=…` or `bench=…`).
pub fn links(scope: &str, id: &str) -> maud::Markup {
    let q = format!("{scope}={}", enc(id));
    html! {
        span.exports {
            "Export: "
            a href={ "/export?" (q) "&format=json" } { "JSON" } " · "
            a href={ "/export?" (q) "&format=jsonl" } { "JSONL" } " · "
            a href={ "/export?" (q) "&format=csv" } { "CSV" }
        }
    }
}

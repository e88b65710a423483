//! The guard in front of every route (PRODUCT.md principle 7): the Host header must name this loopback
//! server (against DNS rebinding), the request must carry the random token (in the URL once, then in an
//! HttpOnly SameSite=Strict cookie), and every state-changing request must come from this origin and
//! carry the CSRF token. It also sets headers that keep pages out of frames and caches.

use crate::error::WebError;
use crate::state::AppState;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

/// The largest form body accepted (a pasted batch YAML fits easily).
pub const MAX_FORM_BYTES: usize = 4 * 1024 * 1024;

/// A fresh random secret: 256 bits from two v4 UUIDs (the OS random source), as hex.
pub fn random_secret() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

/// The cookie's name; it includes the port, since cookies are shared by every port of a host.
pub fn cookie_name(port: u16) -> String {
    format!("ampsm_token_{port}")
}

/// Compares secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The middleware (see the module docs).
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match check(&state, req).await {
        Ok(Checked::Pass(req)) => {
            let mut resp = next.run(req).await;
            harden(&mut resp);
            resp
        }
        Ok(Checked::Respond(mut resp)) => {
            harden(&mut resp);
            resp
        }
        Err(e) => {
            let mut resp = e.into_response();
            harden(&mut resp);
            resp
        }
    }
}

enum Checked {
    Pass(Request),
    Respond(Response),
}

async fn check(state: &AppState, req: Request) -> Result<Checked, WebError> {
    let port = state.inner.port;
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    if !allowed_hosts(port).iter().any(|h| h == host) {
        return Err(WebError::Forbidden(format!(
            "the Host header {host:?} is not this dashboard (open http://127.0.0.1:{port}/)"
        )));
    }
    let token = &state.inner.token;
    let from_query = query_param(req.uri().query().unwrap_or(""), "token");
    if let Some(t) = from_query {
        if !same_secret(t, token) {
            return Err(WebError::Unauthorized);
        }
        if req.method() == Method::GET || req.method() == Method::HEAD {
            // Set the cookie and drop the token from the address bar (and from history).
            let rest: Vec<&str> = req
                .uri()
                .query()
                .unwrap_or("")
                .split('&')
                .filter(|p| !p.is_empty() && !p.starts_with("token="))
                .collect();
            let target = if rest.is_empty() {
                req.uri().path().to_string()
            } else {
                format!("{}?{}", req.uri().path(), rest.join("&"))
            };
            let mut resp = Redirect::to(&target).into_response();
            let cookie = format!("{}={token}; HttpOnly; SameSite=Strict; Path=/", cookie_name(port));
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            return Ok(Checked::Respond(resp));
        }
    } else if !cookie_ok(&req, port, token) {
        return Err(WebError::Unauthorized);
    }
    if req.method() == Method::GET || req.method() == Method::HEAD {
        return Ok(Checked::Pass(req));
    }
    check_origin(&req, port)?;
    check_csrf(state, req).await.map(Checked::Pass)
}

/// `127.0.0.1:PORT` and `localhost:PORT`.
pub fn allowed_hosts(port: u16) -> [String; 2] {
    [format!("127.0.0.1:{port}"), format!("localhost:{port}")]
}

fn cookie_ok(req: &Request, port: u16, token: &str) -> bool {
    let name = cookie_name(port);
    req.headers().get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).any(|line| {
        line.split(';')
            .filter_map(|c| c.trim().split_once('='))
            .any(|(k, v)| k == name && same_secret(v, token))
    })
}

fn check_origin(req: &Request, port: u16) -> Result<(), WebError> {
    let origins: Vec<String> = allowed_hosts(port).iter().map(|h| format!("http://{h}")).collect();
    let header_text = |name| req.headers().get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    if let Some(origin) = header_text(header::ORIGIN) {
        if origins.iter().any(|o| o == origin) {
            return Ok(());
        }
        return Err(WebError::Forbidden(format!("a request from another origin ({origin}) was refused")));
    }
    if let Some(referer) = header_text(header::REFERER) {
        if origins.iter().any(|o| referer.strip_prefix(o.as_str()).is_some_and(|r| r.starts_with('/'))) {
            return Ok(());
        }
        return Err(WebError::Forbidden("a request from another page was refused".into()));
    }
    Err(WebError::Forbidden("a change request without Origin or Referer was refused".into()))
}

async fn check_csrf(state: &AppState, req: Request) -> Result<Request, WebError> {
    let csrf = &state.inner.csrf;
    if let Some(v) = req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok()) {
        if same_secret(v, csrf) {
            return Ok(req);
        }
        return Err(WebError::Forbidden("the CSRF token is wrong; reload the page".into()));
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(WebError::Forbidden("a change request without the CSRF token was refused".into()));
    }
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|e| WebError::BadRequest(format!("the form could not be read: {e}")))?;
    let text = String::from_utf8_lossy(&bytes);
    match query_param(&text, "csrf") {
        Some(v) if same_secret(v, csrf) => Ok(Request::from_parts(parts, Body::from(bytes))),
        Some(_) => Err(WebError::Forbidden("the CSRF token is wrong; reload the page".into())),
        None => Err(WebError::Forbidden("a change request without the CSRF token was refused".into())),
    }
}

/// The raw value of `name` in a `a=b&c=d` string (tokens are hex, so no decoding is needed).
fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').filter_map(|p| p.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
}

fn harden(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

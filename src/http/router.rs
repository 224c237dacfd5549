//! The one routing `match`: auth first, then method and path segments to a handler,
//! then the security headers every response carries.

use super::auth_limit::client_ip;
use super::body::Body;
use super::error::ApiError;
use crate::api;
use crate::app::AppState;
use crate::metrics::{Route, METRICS};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH};
use hyper::{Method, Request, Response};
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

pub const MAX_BODY_BYTES: usize = 64 * 1024;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
frame-ancestors 'none'";

/// The service: never returns `Err`, so hyper never drops a connection on our account.
pub async fn handle(
    req: Request<Incoming>,
    state: Arc<AppState>,
    peer: IpAddr,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let route_kind = classify(&path);
    let mut resp = match route(req, &state, peer).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    let h = resp.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    METRICS.request(route_kind, started.elapsed());
    crate::log_debug!(
        "{method} {} -> {} in {} us",
        crate::store::cut_chars(&path, 200),
        resp.status().as_u16(),
        started.elapsed().as_micros()
    );
    Ok(resp)
}

/// The metrics label of a path (a closed set, whatever the client sends).
fn classify(path: &str) -> Route {
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    match segments.as_slice() {
        ["health"] => Route::Health,
        [""] | ["index.html"] => Route::Page,
        ["assets", ..] => Route::Assets,
        ["api", "run"] => Route::StartRun,
        ["api", "stream", _] => Route::Stream,
        ["api", "runs"] => Route::Runs,
        ["api", "runs", _] => Route::RunSnapshot,
        ["api", "runs", _, "cancel"] => Route::Cancel,
        ["api", "agents"] => Route::Agents,
        ["api", "models"] => Route::Models,
        ["api", "providers"] => Route::Providers,
        ["metrics"] => Route::Metrics,
        _ => Route::Other,
    }
}

fn allow(method: &Method, allowed: &[Method], allow_header: &'static str) -> Result<(), ApiError> {
    if allowed.contains(method) {
        Ok(())
    } else {
        Err(ApiError::MethodNotAllowed {
            allow: allow_header,
        })
    }
}

const GET: &[Method] = &[Method::GET, Method::HEAD];
const POST: &[Method] = &[Method::POST];

/// Basic auth, or a bearer key from `MESH_API_KEYS`, with a per-client lockout
/// after repeated failures. Without Basic credentials the server is open (loopback or
/// `MESH_INSECURE_NO_AUTH`): keys add a way in, they never lock the page out.
fn authenticate(req: &Request<Incoming>, state: &AppState, peer: IpAddr) -> Result<(), ApiError> {
    let keys = &state.config.api_keys;
    let Some(creds) = &state.config.credentials else {
        return Ok(());
    };
    let client = client_ip(peer, req.headers(), state.config.trust_proxy);
    if let Some(wait) = state.auth_limiter.locked_out(client) {
        METRICS.auth_lockout();
        return Err(ApiError::TooManyAuthFailures {
            retry_after_secs: wait,
        });
    }
    let header = req.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes);
    if super::auth::check(header, creds) | super::auth::check_bearer(header, keys) {
        state.auth_limiter.record_success(client);
        Ok(())
    } else {
        METRICS.auth_failure();
        // A browser's first request carries no credentials by design; only a
        // wrong attempt counts towards the lockout.
        if header.is_some() {
            state.auth_limiter.record_failure(client);
        }
        Err(ApiError::Unauthorized)
    }
}

async fn route(
    req: Request<Incoming>,
    state: &Arc<AppState>,
    peer: IpAddr,
) -> Result<Response<Body>, ApiError> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(&path).split('/').collect();

    if path == "/health" {
        allow(&method, GET, "GET, HEAD")?;
        return Ok(api::health(state));
    }
    if let Err(e) = authenticate(&req, state, peer) {
        // OpenAI clients read errors only in OpenAI's shape.
        return match segments.first() {
            Some(&"v1") => Ok(api::chat_completions::openai_error(e)),
            _ => Err(e),
        };
    }
    let head = method == Method::HEAD;
    match segments.as_slice() {
        [""] | ["index.html"] => {
            allow(&method, GET, "GET, HEAD")?;
            super::assets::serve("index.html", req.headers(), head)
        }
        ["assets", rest @ ..] => {
            allow(&method, GET, "GET, HEAD")?;
            super::assets::serve(&rest.join("/"), req.headers(), head)
        }
        ["api", "run"] => {
            allow(&method, POST, "POST")?;
            let headers = req.headers().clone();
            let body = read_body(req).await?;
            api::start_run(state, &headers, &body).await
        }
        ["api", "stream", id] => {
            allow(&method, &[Method::GET], "GET")?;
            api::stream(state, id, req.headers(), query.as_deref()).await
        }
        ["api", "runs"] => {
            allow(&method, GET, "GET, HEAD")?;
            api::list_runs(state).await
        }
        ["api", "runs", id] => {
            allow(&method, GET, "GET, HEAD")?;
            api::get_run(state, id).await
        }
        ["api", "runs", id, "cancel"] => {
            allow(&method, POST, "POST")?;
            api::cancel_run(state, id).await
        }
        ["api", "agents"] => {
            allow(&method, GET, "GET, HEAD")?;
            Ok(api::agents(state))
        }
        ["api", "models"] => {
            allow(&method, GET, "GET, HEAD")?;
            api::models(state, query.as_deref()).await
        }
        ["api", "providers"] => {
            allow(&method, GET, "GET, HEAD")?;
            Ok(api::providers(state))
        }
        ["metrics"] => {
            allow(&method, GET, "GET, HEAD")?;
            Ok(api::metrics(state))
        }
        ["v1", "models"] => {
            allow(&method, GET, "GET, HEAD")?;
            Ok(api::chat_completions::models(state))
        }
        ["v1", "chat", "completions"] => {
            allow(&method, POST, "POST")?;
            let headers = req.headers().clone();
            let body = read_body(req)
                .await
                .map_err(api::chat_completions::openai_error);
            Ok(match body {
                Ok(body) => api::chat_completions::completions(state, &headers, &body).await,
                Err(resp) => resp,
            })
        }
        _ => Err(ApiError::NotFound(format!(
            "no route for {}",
            crate::store::cut_chars(&path, 200)
        ))),
    }
}

/// Reads a request body of at most 64 KiB; a larger one is refused before it is read
/// when it announces its length, and as soon as it crosses the limit otherwise.
async fn read_body(req: Request<Incoming>) -> Result<Bytes, ApiError> {
    let announced = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(ApiError::PayloadTooLarge);
    }
    match Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::PayloadTooLarge),
        Err(_) => Err(ApiError::BadRequest {
            message: "the request body could not be read".to_string(),
            field: Some("body".to_string()),
        }),
    }
}

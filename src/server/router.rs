//! The one routing `match`: auth first, then method and path segments to a handler,
//! then the security headers every response carries.

use super::cors;
use crate::api;
use crate::api::state::AppState;
use crate::http::auth_limit::{Throttled, Who};
use crate::http::body::Body;
use crate::http::client_addr::client_ip;
use crate::http::error::ApiError;
use crate::metrics::{Route, METRICS};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, SET_COOKIE};
use hyper::{Method, Request, Response};
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    let v1 = cors::is_v1(&path);
    let cors_origins = &state.listener.cors_origins;
    let preflight = v1
        .then(|| cors::preflight(cors_origins, &method, req.headers()))
        .flatten();
    let origin =
        (v1 && !cors_origins.is_empty()).then(|| cors::listed_origin(cors_origins, req.headers()));
    let mut resp = match preflight {
        Some(resp) => resp,
        None => match route(req, &state, peer).await {
            Ok(r) => r,
            Err(e) => e.into_response(),
        },
    };
    if let Some(origin) = origin {
        cors::allow_origin(&mut resp, origin);
    }
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
        crate::util::cut_chars(&path, 200),
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
const MCP: &[Method] = &[Method::POST, Method::GET, Method::DELETE];

/// Basic auth, a bearer key from `MESH_API_KEYS`, or Basic with a key as the password
/// (how a browser signs in when only keys are set). Any configured credential turns
/// authentication on; with none (loopback, or `MESH_INSECURE_NO_AUTH`) the server is
/// open. Throttling (`auth_limit`) decides first whether the credentials are looked at
/// at all; every refusal is answered at once. A client that signs in without a valid
/// device cookie gets one (`device_cookie`): the `Set-Cookie` value is returned.
fn authenticate(
    req: &Request<Incoming>,
    state: &AppState,
    peer: IpAddr,
) -> Result<Option<HeaderValue>, ApiError> {
    if !state.auth.auth_required() {
        return Ok(None);
    }
    let header = req.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes);
    // A browser's first request carries no credentials by design: no guess, no count.
    if header.is_none() {
        METRICS.auth_failure();
        return Err(ApiError::Unauthorized);
    }
    let device = state.device_cookies.verify(req.headers());
    let who = match device {
        Some(d) => Who::Device(d.id),
        None => Who::Client(client_ip(peer, req.headers(), state.auth.trust_proxy)),
    };
    let throttled = |t: Throttled| {
        METRICS.auth_throttled(t.scope);
        ApiError::TooManyAuthFailures {
            retry_after_secs: t.retry_after_secs,
        }
    };
    state.auth_throttle.admit(who).map_err(throttled)?;
    let auth = &state.auth;
    match crate::http::auth::authenticate(header, auth.credentials.as_ref(), &auth.api_keys) {
        Some(principal) => Ok(match device {
            Some(d) if !d.renew => None,
            _ => state.device_cookies.issue(principal),
        }),
        None => {
            METRICS.auth_failure();
            state.auth_throttle.failed(who).map_err(throttled)?;
            Err(ApiError::Unauthorized)
        }
    }
}

/// Authenticates, routes, and hands the device cookie to a client that signed in.
async fn route(
    req: Request<Incoming>,
    state: &Arc<AppState>,
    peer: IpAddr,
) -> Result<Response<Body>, ApiError> {
    let path = req.uri().path();
    if path == "/health" {
        allow(req.method(), GET, "GET, HEAD")?;
        return Ok(api::health(state));
    }
    // OpenAI clients read errors only in OpenAI's shape: 401s, 404s, 405s, 413s too.
    let error_response = if cors::is_v1(path) {
        api::chat_completions::openai_error
    } else {
        ApiError::into_response
    };
    let set_cookie = match authenticate(&req, state, peer) {
        Ok(cookie) => cookie,
        Err(e) => return Ok(error_response(e)),
    };
    let mut resp = dispatch(req, state, peer)
        .await
        .unwrap_or_else(error_response);
    if let Some(cookie) = set_cookie {
        resp.headers_mut().append(SET_COOKIE, cookie);
    }
    Ok(resp)
}

/// Method and path segments to a handler, for an authenticated request from `peer`.
async fn dispatch(
    req: Request<Incoming>,
    state: &Arc<AppState>,
    peer: IpAddr,
) -> Result<Response<Body>, ApiError> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(&path).split('/').collect();
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
            let body = read_body(req, state.listener.conn_timeout).await?;
            api::start_run(state, &headers, &body).await
        }
        ["api", "stream", id] => {
            allow(&method, &[Method::GET], "GET")?;
            api::stream(state, id, req.headers(), query.as_deref(), peer).await
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
        ["api", "runs", id, "plan"] => {
            allow(&method, POST, "POST")?;
            let headers = req.headers().clone();
            let body = read_body(req, state.listener.conn_timeout).await?;
            api::review::approve_plan(state, &headers, id, &body).await
        }
        ["api", "agents"] => {
            allow(&method, GET, "GET, HEAD")?;
            Ok(api::agents(state))
        }
        ["api", "tools"] => {
            allow(&method, GET, "GET, HEAD")?;
            Ok(api::tools::list(state).await)
        }
        ["api", "models"] => {
            allow(&method, GET, "GET, HEAD")?;
            api::models(state, query.as_deref()).await
        }
        ["api", "providers"] => {
            allow(&method, GET, "GET, HEAD")?;
            Ok(api::providers(state))
        }
        ["api", "config"] => {
            allow(&method, GET, "GET, HEAD")?;
            Ok(api::page_config())
        }
        ["metrics"] => {
            allow(&method, GET, "GET, HEAD")?;
            Ok(api::metrics(state))
        }
        ["v1", "models"] => {
            allow(&method, GET, "GET, HEAD")?;
            Ok(api::chat_completions::models(state))
        }
        ["v1", "models", id @ ..] => {
            allow(&method, GET, "GET, HEAD")?;
            Ok(api::chat_completions::model(state, &id.join("/")))
        }
        ["v1", "chat", "completions"] => {
            allow(&method, POST, "POST")?;
            let headers = req.headers().clone();
            let body = read_body(req, state.listener.conn_timeout)
                .await
                .map_err(api::chat_completions::openai_error);
            Ok(match body {
                Ok(body) => api::chat_completions::completions(state, &headers, &body).await,
                Err(resp) => resp,
            })
        }
        ["mcp"] => {
            // GET is the handler's to refuse (405, no standalone stream), after its Origin check.
            allow(&method, MCP, "POST, DELETE")?;
            let headers = req.headers().clone();
            let host = headers
                .get(hyper::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
                .or_else(|| req.uri().authority().map(|a| a.to_string()));
            let body = if method == Method::POST {
                Some(read_body(req, state.listener.conn_timeout).await?)
            } else {
                None
            };
            Ok(api::mcp::handle(state, &method, &headers, host.as_deref(), body).await)
        }
        _ => Err(ApiError::NotFound(format!(
            "no route for {}",
            crate::util::cut_chars(&path, 200)
        ))),
    }
}

/// Reads a request body of at most 64 KiB; a larger one is refused before it is read
/// when it announces its length, and as soon as it crosses the limit otherwise. The
/// whole body must arrive within `within`: one that stalls holds no task forever.
async fn read_body(req: Request<Incoming>, within: Duration) -> Result<Bytes, ApiError> {
    let announced = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(ApiError::PayloadTooLarge);
    }
    let collected = tokio::time::timeout(
        within,
        Limited::new(req.into_body(), MAX_BODY_BYTES).collect(),
    )
    .await
    .map_err(|_| ApiError::RequestTimeout {
        secs: within.as_secs(),
    })?;
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::PayloadTooLarge),
        Err(_) => Err(ApiError::BadRequest {
            message: "the request body could not be read".to_string(),
            field: Some("body".to_string()),
        }),
    }
}

//! The web page, embedded in the binary: content types, ETags and revalidation.

use crate::http::body::{empty, full, Body};
use crate::http::error::ApiError;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use hyper::{HeaderMap, Response, StatusCode};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "assets/"]
struct Assets;

/// Serves one embedded file. Only exact names of embedded files are served, so a
/// path with `..`, an encoded dot, a backslash or a NUL can only ever be a 404.
pub fn serve(
    name: &str,
    request_headers: &HeaderMap,
    head_only: bool,
) -> Result<Response<Body>, ApiError> {
    if name.is_empty()
        || name.contains("..")
        || name.contains(['\\', '\0', '%'])
        || name.starts_with('/')
    {
        return Err(not_found());
    }
    let file = Assets::get(name).ok_or_else(not_found)?;
    let etag = format!(
        "\"{}\"",
        crate::ids::hex(&file.metadata.sha256_hash()[..12])
    );
    let matches = request_headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut resp = if matches {
        let mut r = Response::new(empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else if head_only {
        Response::new(empty())
    } else {
        Response::new(full(file.data.into_owned()))
    };
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type(name)));
    // Revalidate every time: the files are small and not fingerprinted, and a new
    // binary must never be paired with a stale script.
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(ETAG, v);
    }
    Ok(resp)
}

fn not_found() -> ApiError {
    ApiError::NotFound("no such asset".to_string())
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        "webmanifest" => "application/manifest+json",
        "txt" | "md" => "text/plain; charset=utf-8",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

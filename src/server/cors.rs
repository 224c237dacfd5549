//! CORS for the OpenAI-compatible `/v1` surface, so browser chat front ends can call
//! it: off unless `MESH_CORS_ORIGINS` lists origins; a preflight is answered before
//! authentication (browsers send it without credentials), and only a listed origin is
//! ever named in `Access-Control-Allow-Origin`.

use crate::http::body::{full, Body};
use hyper::header::{
    HeaderMap, HeaderValue, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use hyper::{Method, Response, StatusCode};

/// The methods `/v1` answers.
const ALLOWED_METHODS: &str = "GET, POST, OPTIONS";
/// Always allowed: the bearer key and the JSON body. Other requested headers (the
/// SDKs' `x-stainless-*`, `openai-organization`) are allowed as asked.
const ALWAYS_ALLOWED_HEADERS: [&str; 2] = ["authorization", "content-type"];
/// How long a browser may cache a preflight answer.
const MAX_AGE_SECS: u64 = 600;

/// Whether `path` is on the `/v1` surface.
pub fn is_v1(path: &str) -> bool {
    path == "/v1" || path.starts_with("/v1/")
}

/// The request's `Origin`, when it is one of `allowed`.
pub fn listed_origin(allowed: &[String], headers: &HeaderMap) -> Option<HeaderValue> {
    let origin = headers.get(ORIGIN)?;
    let text = origin.to_str().ok()?;
    allowed
        .iter()
        .any(|a| a.eq_ignore_ascii_case(text))
        .then(|| origin.clone())
}

/// A CORS preflight (`OPTIONS` with `Access-Control-Request-Method`), answered with
/// `204`: with the allowed methods and headers for a listed origin, bare otherwise
/// (the browser then refuses the real request). `None` for any other request.
pub fn preflight(
    allowed: &[String],
    method: &Method,
    headers: &HeaderMap,
) -> Option<Response<Body>> {
    if allowed.is_empty()
        || method != Method::OPTIONS
        || !headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD)
    {
        return None;
    }
    let mut resp = Response::new(full(""));
    *resp.status_mut() = StatusCode::NO_CONTENT;
    let h = resp.headers_mut();
    h.insert(
        VARY,
        HeaderValue::from_static(
            "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
        ),
    );
    let Some(origin) = listed_origin(allowed, headers) else {
        return Some(resp);
    };
    h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(ALLOWED_METHODS),
    );
    if let Ok(value) = HeaderValue::from_str(&allowed_headers(headers).join(", ")) {
        h.insert(ACCESS_CONTROL_ALLOW_HEADERS, value);
    }
    h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from(MAX_AGE_SECS));
    Some(resp)
}

/// Authorization and Content-Type, then each requested header name that is a valid
/// token (lowercased, once).
fn allowed_headers(headers: &HeaderMap) -> Vec<String> {
    let mut names: Vec<String> = ALWAYS_ALLOWED_HEADERS.map(str::to_string).to_vec();
    let requested = headers
        .get(ACCESS_CONTROL_REQUEST_HEADERS)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    for name in requested.split(',').map(|n| n.trim().to_ascii_lowercase()) {
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if token && !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// Marks an actual `/v1` response readable by a listed origin (errors too, so a
/// browser client can show a 401's message).
pub fn allow_origin(resp: &mut Response<Body>, origin: Option<HeaderValue>) {
    let h = resp.headers_mut();
    h.append(VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = origin {
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(
            ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("Retry-After"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn requested_headers_are_allowed_as_tokens_after_the_fixed_two() {
        let h = headers(&[(
            "access-control-request-headers",
            "Authorization, x-stainless-os, bad header, content-type",
        )]);
        assert_eq!(
            allowed_headers(&h),
            ["authorization", "content-type", "x-stainless-os"]
        );
    }

    #[test]
    fn only_a_listed_origin_is_named() {
        let allowed = vec!["https://chat.example".to_string()];
        let ok = headers(&[("origin", "https://chat.example")]);
        assert!(listed_origin(&allowed, &ok).is_some());
        let other = headers(&[("origin", "https://evil.example")]);
        assert!(listed_origin(&allowed, &other).is_none());
        assert!(listed_origin(&allowed, &HeaderMap::new()).is_none());
    }
}

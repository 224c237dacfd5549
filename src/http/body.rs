//! One response body type for every route, with constructors for each kind of answer.

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use std::convert::Infallible;

pub type Body = BoxBody<Bytes, Infallible>;

pub fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into()).boxed()
}

pub fn empty() -> Body {
    Empty::new().boxed()
}

/// A JSON response with the given status.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut resp = Response::new(full(value.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

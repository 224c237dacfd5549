//! Every failure the HTTP API can answer with, as the JSON error body of SPEC §3.

use super::body::{json, Body};
use hyper::header::{HeaderValue, ALLOW, RETRY_AFTER, WWW_AUTHENTICATE};
use hyper::{Response, StatusCode};
use serde_json::json;

#[derive(Debug, Clone)]
pub enum ApiError {
    /// Bad input; `field` names the request field at fault, when there is one.
    BadRequest {
        message: String,
        field: Option<String>,
    },
    Unauthorized,
    NotFound(String),
    MethodNotAllowed {
        allow: &'static str,
    },
    PayloadTooLarge,
    /// The request body stalled: it did not arrive within this many seconds.
    RequestTimeout {
        secs: u64,
    },
    UnsupportedMediaType(String),
    TooManyRuns {
        message: String,
        retry_after_secs: u64,
    },
    /// The run already has as many stream subscribers as it takes.
    TooManySubscribers {
        message: String,
        retry_after_secs: u64,
    },
    /// A failed Basic-auth attempt from a client that failed too often (or while the
    /// server-wide ceiling on failures was reached), answered late.
    TooManyAuthFailures {
        retry_after_secs: u64,
    },
    ShuttingDown,
    /// The run store cannot be reached now (a shared store that is down).
    StoreUnavailable(String),
    Internal(String),
    /// A plan approval for a run that is not paused for review (409).
    NotAwaitingReview(String),
}

impl ApiError {
    pub fn bad_field(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            message: message.into(),
            field: Some(field.to_string()),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRuns { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::TooManySubscribers { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::TooManyAuthFailures { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::StoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::NotAwaitingReview(_) => StatusCode::CONFLICT,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { .. } => "bad_request",
            ApiError::Unauthorized => "unauthorized",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::RequestTimeout { .. } => "request_timeout",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::TooManyRuns { .. } => "too_many_runs",
            ApiError::TooManySubscribers { .. } => "too_many_subscribers",
            ApiError::TooManyAuthFailures { .. } => "too_many_requests",
            ApiError::ShuttingDown => "shutting_down",
            ApiError::StoreUnavailable(_) => "store_unavailable",
            ApiError::Internal(_) => "internal",
            ApiError::NotAwaitingReview(_) => "not_awaiting_review",
        }
    }

    pub fn message(&self) -> String {
        match self {
            ApiError::BadRequest { message, .. } => message.clone(),
            ApiError::Unauthorized => "authentication required".to_string(),
            ApiError::NotFound(what) => what.clone(),
            ApiError::MethodNotAllowed { allow } => format!("method not allowed; allowed: {allow}"),
            ApiError::PayloadTooLarge => "request body is larger than 64 KiB".to_string(),
            ApiError::RequestTimeout { secs } => {
                format!("the request body did not arrive within {secs} s")
            }
            ApiError::UnsupportedMediaType(m) => m.clone(),
            ApiError::TooManyRuns { message, .. }
            | ApiError::TooManySubscribers { message, .. } => message.clone(),
            ApiError::TooManyAuthFailures { retry_after_secs } => {
                format!("too many failed sign-in attempts; try again in {retry_after_secs} s")
            }
            ApiError::ShuttingDown => {
                "the server is shutting down and accepts no new runs".to_string()
            }
            ApiError::StoreUnavailable(m) => format!("the run store is unavailable: {m}"),
            ApiError::Internal(m) | ApiError::NotAwaitingReview(m) => m.clone(),
        }
    }

    pub fn into_response(self) -> Response<Body> {
        let mut error = json!({"code": self.code(), "message": self.message()});
        if let ApiError::BadRequest { field: Some(f), .. } = &self {
            error["field"] = json!(f);
        }
        let mut resp = json(self.status(), &json!({ "error": error }));
        let headers = resp.headers_mut();
        match &self {
            ApiError::Unauthorized => {
                headers.insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"agent-mesh\", charset=\"UTF-8\""),
                );
            }
            ApiError::MethodNotAllowed { allow } => {
                headers.insert(ALLOW, HeaderValue::from_static(allow));
            }
            ApiError::TooManyRuns {
                retry_after_secs, ..
            }
            | ApiError::TooManySubscribers {
                retry_after_secs, ..
            }
            | ApiError::TooManyAuthFailures { retry_after_secs } => {
                headers.insert(RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            ApiError::ShuttingDown | ApiError::StoreUnavailable(_) => {
                headers.insert(RETRY_AFTER, HeaderValue::from(5u64));
            }
            _ => {}
        }
        resp
    }
}

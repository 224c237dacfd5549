//! The request and response toolkit the handlers use: bodies, JSON errors, the event
//! stream, the client's address, Basic auth and its throttling, device cookies and
//! subscriber caps. The server that routes to the handlers sits above `api`, in `server`.

pub mod auth;
pub mod auth_limit;
pub mod body;
pub mod client_addr;
pub mod device_cookie;
pub mod error;
pub mod sse;
pub mod subscriber_limit;

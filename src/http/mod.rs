//! The HTTP side: the serve loop, each connection and its time limits, routing, auth
//! and its throttling, bodies, the event stream and the page.

pub mod assets;
pub mod auth;
pub mod auth_limit;
pub mod body;
pub mod client_addr;
pub mod conn_io;
pub mod connection;
pub mod connection_limit;
pub mod cors;
pub mod device_cookie;
pub mod error;
pub mod idle;
pub mod router;
pub mod server;
pub mod sse;
pub mod stream_stall;
pub mod subscriber_limit;

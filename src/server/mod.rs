//! The HTTP server: the serve loop, each connection and its time limits, the router in
//! front of the `api` handlers, CORS and the embedded page.

pub mod assets;
pub mod conn_io;
pub mod connection;
pub mod connection_limit;
pub mod cors;
pub mod idle;
pub mod listen;
pub mod router;
pub mod stream_stall;

pub use listen::serve;

//! Small helpers several layers use: poison-tolerant locking, character-safe cutting, base64 decoding, reading environment variables, PEM certificate files, provider base URLs, web origins. Imports nothing else of the crate.

pub mod base64;
pub mod env;
pub mod lock;
pub mod origin;
pub mod pem;
pub mod text;
pub mod url;

pub use base64::base64_decode;
pub use lock::lock;
pub use text::{cut_chars, percent_decode};

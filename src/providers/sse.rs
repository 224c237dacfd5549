//! placeholder until the SSE parser lands

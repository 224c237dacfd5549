//! The 2026-07-28 era negotiation: a `server/discover` probe, and what its answer (or
//! refusal) says about the server's era and protocol version.

use super::answer::read_error_body;
use super::{HttpTransport, Session};
use crate::mcp::protocol::{self, classify, Era, Incoming, McpError};
use serde_json::Value;

impl HttpTransport {
    /// A modern `server/discover` first; a 2xx that is not a discover result, or a 4xx
    /// without a modern JSON-RPC error, identifies a legacy server.
    pub(super) async fn negotiate(&self) -> Result<Era, McpError> {
        let id = self.next_id();
        let modern = Session {
            era: Some(Era::Modern {
                version: protocol::MODERN_VERSION.to_string(),
            }),
            ..Session::default()
        };
        let body = protocol::request(
            id,
            "server/discover",
            Some(protocol::with_modern_meta(None, protocol::MODERN_VERSION)),
        );
        let response = self
            .post(&modern, &body, "server/discover", None, &[])
            .await?;
        let status = response.status();
        if status.is_server_error() {
            let text = read_error_body(response.into_body()).await;
            return Err(McpError::Connect(format!("HTTP {status}: {text}")));
        }
        let legacy = Era::Legacy {
            version: protocol::LEGACY_VERSION.to_string(),
        };
        let outcome = if status.is_success() {
            // A legacy server may answer anything here, even an SSE stream; a failure to
            // read it as a discover result only means "legacy".
            match self.read_answer(&modern, response, id).await {
                Ok(result) => Ok(result),
                Err(McpError::Rpc(e)) => Err(e),
                Err(_) => return Ok(legacy),
            }
        } else {
            let text = read_error_body(response.into_body()).await;
            match serde_json::from_str::<Value>(&text)
                .ok()
                .as_ref()
                .and_then(classify)
            {
                Some(Incoming::Response {
                    outcome: Err(e), ..
                }) => Err(e),
                _ => return Ok(legacy),
            }
        };
        match outcome {
            Ok(result) => {
                let supported = protocol::strings(result.get("supportedVersions"));
                Ok(protocol::choose_from_supported(&supported)
                    .filter(Era::is_modern)
                    .unwrap_or(legacy))
            }
            Err(e) if e.code == protocol::UNSUPPORTED_PROTOCOL_VERSION => {
                protocol::choose_from_supported(&e.supported_versions()).ok_or_else(|| {
                    McpError::Protocol(format!(
                        "the server supports none of our protocol versions (it lists {:?})",
                        e.supported_versions()
                    ))
                })
            }
            Err(e) if protocol::is_modern_error(e.code) => Err(McpError::Rpc(e)),
            Err(_) => Ok(legacy),
        }
    }
}

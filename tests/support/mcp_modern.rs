//! A small Streamable HTTP MCP server of the stateless 2026-07-28 revision (hyper on a
//! loopback port): `server/discover`, paged `tools/list`, `tools/call`; it validates the
//! per-request `_meta` and the mirrored headers as the revision requires, rejects
//! `initialize`, and records every request's method and headers.
#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

pub const VERSION: &str = "2026-07-28";

#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct ModernServer {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ModernServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ModernServer {
    pub async fn start() -> ModernServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let record = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let record = record.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(req, record.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        ModernServer { port, seen, task }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    pub fn methods(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.method.clone())
            .collect()
    }
}

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn error(
    id: &Value,
    status: StatusCode,
    code: i64,
    message: &str,
    data: Option<Value>,
) -> Response<Full<Bytes>> {
    let mut e = json!({"code": code, "message": message});
    if let Some(d) = data {
        e["data"] = d;
    }
    reply(status, json!({"jsonrpc": "2.0", "id": id, "error": e}))
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    seen: Arc<Mutex<Vec<Seen>>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() != hyper::Method::POST {
        return Ok(Response::builder()
            .status(405)
            .body(Full::new(Bytes::new()))
            .unwrap());
    }
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let msg: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let method = msg["method"].as_str().unwrap_or("").to_string();
    let id = msg["id"].clone();
    let s = Seen {
        method: method.clone(),
        headers,
    };
    seen.lock().unwrap().push(s.clone());

    let version = s.header("mcp-protocol-version").unwrap_or("");
    let meta_version = msg["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"]
        .as_str()
        .unwrap_or("");
    if version != VERSION || method == "initialize" {
        return Ok(error(
            &id,
            StatusCode::BAD_REQUEST,
            -32022,
            "Unsupported protocol version",
            Some(json!({"supported": [VERSION], "requested": version})),
        ));
    }
    if meta_version != version || s.header("mcp-method") != Some(method.as_str()) {
        return Ok(error(
            &id,
            StatusCode::BAD_REQUEST,
            -32020,
            "Header mismatch",
            None,
        ));
    }
    let result = match method.as_str() {
        "server/discover" => json!({
            "resultType": "complete",
            "supportedVersions": [VERSION],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "modern-test", "version": "1.0.0"},
        }),
        "tools/list" => match msg["params"]["cursor"].as_str() {
            None => json!({
                "resultType": "complete", "ttlMs": 60000, "cacheScope": "private",
                "tools": [{"name": "echo", "description": "Echoes", "inputSchema": {
                    "type": "object",
                    "properties": {"message": {"type": "string"}, "region": {"type": "string", "x-mcp-header": "Region"}},
                    "required": ["message"]}}],
                "nextCursor": "page-2",
            }),
            Some("page-2") => json!({
                "resultType": "complete", "ttlMs": 60000, "cacheScope": "private",
                "tools": [
                    {"name": "add", "description": "Adds", "inputSchema": {"type": "object"}},
                    {"name": "bad-header", "description": "An invalid x-mcp-header: left out",
                     "inputSchema": {"type": "object", "properties": {"n": {"type": "number", "x-mcp-header": "N"}}}}
                ],
            }),
            Some(_) => {
                return Ok(error(
                    &id,
                    StatusCode::BAD_REQUEST,
                    -32602,
                    "bad cursor",
                    None,
                ))
            }
        },
        "tools/call" => {
            let name = msg["params"]["name"].as_str().unwrap_or("");
            if s.header("mcp-name") != Some(name) {
                return Ok(error(
                    &id,
                    StatusCode::BAD_REQUEST,
                    -32020,
                    "Header mismatch: Mcp-Name",
                    None,
                ));
            }
            let args = &msg["params"]["arguments"];
            if let Some(region) = args["region"].as_str() {
                if s.header("mcp-param-region") != Some(region) {
                    return Ok(error(
                        &id,
                        StatusCode::BAD_REQUEST,
                        -32020,
                        "Header mismatch: Mcp-Param-Region",
                        None,
                    ));
                }
            }
            json!({"resultType": "complete", "content": [{"type": "text", "text": format!("modern echo: {}", args["message"].as_str().unwrap_or(""))}]})
        }
        _ => {
            return Ok(error(
                &id,
                StatusCode::NOT_FOUND,
                -32601,
                "Method not found",
                None,
            ))
        }
    };
    Ok(reply(
        StatusCode::OK,
        json!({"jsonrpc": "2.0", "id": id, "result": result}),
    ))
}

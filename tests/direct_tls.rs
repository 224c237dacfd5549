//! Direct HTTPS (`MESH_TLS_CERT`/`MESH_TLS_KEY`): the real binary, a throwaway CA made
//! with rcgen, and a rustls client that trusts only that CA.

#[path = "support/certs.rs"]
mod certs;

use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(20);

struct Pki {
    dir: PathBuf,
    ca: CertificateDer<'static>,
}

/// A CA and a certificate for 127.0.0.1 signed by it, written as PEM files.
fn make_pki(name: &str) -> Pki {
    let certs = certs::localhost_with_ca(&format!("agent-mesh test CA {name}"));
    let dir = std::env::temp_dir().join(format!("mesh-tls-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cert.pem"), &certs.leaf_pem).unwrap();
    std::fs::write(dir.join("key.pem"), &certs.leaf_key_pem).unwrap();
    Pki {
        dir,
        ca: certs.ca_der,
    }
}

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary with a clean environment and waits for `listening on https://ADDR`.
fn start(pki: &Pki, env: &[(&str, &str)]) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_agent-mesh"));
    cmd.env_clear()
        .env("HOME", "/nonexistent-agent-mesh-home")
        .env("MESH_ADDR", "127.0.0.1:0")
        .env("MESH_TLS_CERT", pki.dir.join("cert.pem"))
        .env("MESH_TLS_KEY", pki.dir.join("key.pem"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn agent-mesh");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            // Every line goes to the channel so a failure can show the whole log.
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let addr = loop {
        match rx.recv_timeout(TIMEOUT) {
            Ok(line) => {
                if let Some(i) = line.find("listening on https://") {
                    break line[i + "listening on https://".len()..].trim().to_string();
                }
                assert!(
                    !line.contains("listening on http://"),
                    "TLS files given but it serves plain HTTP: {line}"
                );
                seen.push(line);
            }
            Err(e) => panic!("no `listening on https://` line ({e}); stderr: {seen:?}"),
        }
    };
    Server {
        child,
        addr: addr.parse().expect("a socket address"),
    }
}

struct Reply {
    status: u16,
    head: String,
    body: Vec<u8>,
}

fn https_get(
    addr: SocketAddr,
    ca: &CertificateDer<'static>,
    path: &str,
    auth: Option<&str>,
) -> Reply {
    try_https_get(addr, ca, path, auth).expect("HTTPS request")
}

/// A rustls client for 127.0.0.1 that trusts only `ca` and offers HTTP/1.1.
fn client_connection(ca: &CertificateDer<'static>) -> rustls::ClientConnection {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let name = ServerName::try_from("127.0.0.1").unwrap();
    rustls::ClientConnection::new(Arc::new(config), name).unwrap()
}

/// One HTTP/1.1 request over TLS, trusting only `ca`; the connection closes after it.
fn try_https_get(
    addr: SocketAddr,
    ca: &CertificateDer<'static>,
    path: &str,
    auth: Option<&str>,
) -> std::io::Result<Reply> {
    let conn = client_connection(ca);
    let sock = TcpStream::connect_timeout(&addr, TIMEOUT).unwrap();
    sock.set_read_timeout(Some(TIMEOUT)).unwrap();
    sock.set_write_timeout(Some(TIMEOUT)).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);

    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(auth) = auth {
        request.push_str(&format!("Authorization: {auth}\r\n"));
    }
    request.push_str("\r\n");
    tls.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    match tls.read_to_end(&mut raw) {
        Ok(_) => {}
        // A peer that closes without close_notify still sent the whole response.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e),
    }
    assert_eq!(
        tls.conn.alpn_protocol(),
        Some(&b"http/1.1"[..]),
        "ALPN agreed on HTTP/1.1"
    );

    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut body = raw[split + 4..].to_vec();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Ok(Reply { status, head, body })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size_text = std::str::from_utf8(&data[..line_end]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

fn cleanup(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn serves_health_over_https_with_the_given_certificate() {
    let pki = make_pki("health");
    let server = start(&pki, &[]);
    let reply = https_get(server.addr, &pki.ca, "/health", None);
    assert_eq!(reply.status, 200, "{}", reply.head);
    assert!(
        reply
            .head
            .to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{}",
        reply.head
    );
    let body: serde_json::Value = serde_json::from_slice(&reply.body).expect("JSON body");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["uptime_s"].is_u64());
    assert_eq!(body["active_runs"], 0);
    cleanup(&pki.dir);
}

#[test]
fn a_client_that_does_not_trust_the_certificate_is_refused() {
    let pki = make_pki("untrusted");
    let other = make_pki("other-ca");
    let server = start(&pki, &[]);
    let err = match try_https_get(server.addr, &other.ca, "/health", None) {
        Ok(reply) => panic!(
            "a certificate from an unknown CA was accepted: {}",
            reply.head
        ),
        Err(e) => e,
    };
    assert!(
        err.to_string().contains("UnknownIssuer"),
        "refused for the wrong reason: {err}"
    );
    // The server shrugs the failed handshake off and goes on serving.
    let reply = https_get(server.addr, &pki.ca, "/health", None);
    assert_eq!(reply.status, 200);
    cleanup(&pki.dir);
    cleanup(&other.dir);
}

#[test]
fn basic_auth_guards_the_api_over_https_but_not_health() {
    let pki = make_pki("auth");
    // A non-loopback-style setup: credentials configured, as on a VPS.
    let server = start(&pki, &[("MESH_USER", "alice"), ("MESH_PASS", "s3cret")]);
    assert_eq!(https_get(server.addr, &pki.ca, "/health", None).status, 200);
    let refused = https_get(server.addr, &pki.ca, "/api/agents", None);
    assert_eq!(refused.status, 401);
    assert!(refused
        .head
        .to_ascii_lowercase()
        .contains("www-authenticate: basic"));
    // "alice:s3cret"
    let ok = https_get(
        server.addr,
        &pki.ca,
        "/api/agents",
        Some("Basic YWxpY2U6czNjcmV0"),
    );
    assert_eq!(ok.status, 200, "{}", ok.head);
    let agents: serde_json::Value = serde_json::from_slice(&ok.body).unwrap();
    assert_eq!(agents.as_array().map(Vec::len), Some(5));
    cleanup(&pki.dir);
}

/// Reads until the server closes; panics if it is still open after `within`.
fn assert_closed_within(
    mut read: impl FnMut(&mut [u8]) -> std::io::Result<usize>,
    within: Duration,
) {
    let started = std::time::Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!("connection still open after {:?}", started.elapsed())
            }
            // A reset or a close without close_notify is a close too.
            Err(_) => return,
        }
        assert!(started.elapsed() < within, "still open after {within:?}");
    }
}

#[test]
fn silent_tls_connections_are_closed_before_and_after_the_handshake() {
    let pki = make_pki("silent");
    let server = start(&pki, &[("MESH_CONN_TIMEOUT_SECS", "1")]);
    let within = Duration::from_secs(4);

    // Connects and never starts the handshake.
    let mut raw = TcpStream::connect_timeout(&server.addr, TIMEOUT).unwrap();
    raw.set_read_timeout(Some(within)).unwrap();
    assert_closed_within(|b| raw.read(b), within);

    // Finishes the handshake, then sends nothing.
    let mut conn = client_connection(&pki.ca);
    let mut sock = TcpStream::connect_timeout(&server.addr, TIMEOUT).unwrap();
    sock.set_read_timeout(Some(within)).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).expect("handshake");
    }
    let mut tls = rustls::StreamOwned::new(conn, sock);
    assert_closed_within(|b| tls.read(b), within);

    // The server still serves.
    assert_eq!(https_get(server.addr, &pki.ca, "/health", None).status, 200);
    cleanup(&pki.dir);
}

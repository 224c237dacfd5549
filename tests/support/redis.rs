//! A real `redis-server` for the tests (Debian's package): on a free port, in a
//! temporary directory, killed when dropped. Nothing is saved to disk unless the
//! server is durable (an append-only file synced on every write, as a managed Redis
//! with persistence keeps it), which lets a test crash and restart it mid-run. A TLS
//! server speaks only TLS, with a certificate of a throwaway CA, and wants a password.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
    durable: bool,
    /// The password of a TLS server (`requirepass`).
    tls_password: Option<String>,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        RedisServer::launch(false, None)
    }

    /// A server that keeps every acknowledged write across [`stop`](Self::stop).
    pub fn start_durable() -> RedisServer {
        RedisServer::launch(true, None)
    }

    /// A server speaking only TLS (certificate of `certs`, for 127.0.0.1 and
    /// localhost), that wants `password`.
    pub fn start_tls(certs: &super::certs::TestCerts, password: &str) -> RedisServer {
        RedisServer::launch(false, Some((certs, password)))
    }

    fn launch(durable: bool, tls: Option<(&super::certs::TestCerts, &str)>) -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = std::env::temp_dir().join(format!("mesh-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("redis dir");
        if let Some((certs, _)) = tls {
            for (name, pem) in [
                ("ca.pem", &certs.ca_pem),
                ("cert.pem", &certs.leaf_pem),
                ("key.pem", &certs.leaf_key_pem),
            ] {
                std::fs::write(dir.join(name), pem).expect("write TLS files");
            }
        }
        let mut server = RedisServer {
            child: None,
            port,
            dir,
            durable,
            tls_password: tls.map(|(_, pw)| pw.to_string()),
        };
        server.restart();
        server
    }

    /// The URL of database `db` (each test server may take its own).
    pub fn url(&self, db: u32) -> String {
        format!("redis://127.0.0.1:{}/{db}", self.port)
    }

    /// Kills the server (as a crash would: SIGKILL, nothing saved).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it (again) on the same port and waits until it answers PING.
    pub fn restart(&mut self) {
        self.stop();
        let mut cmd = Command::new("redis-server");
        match &self.tls_password {
            None => cmd.args(["--port", &self.port.to_string()]),
            Some(password) => cmd
                .args(["--port", "0", "--tls-port", &self.port.to_string()])
                .arg("--tls-cert-file")
                .arg(self.dir.join("cert.pem"))
                .arg("--tls-key-file")
                .arg(self.dir.join("key.pem"))
                .arg("--tls-ca-cert-file")
                .arg(self.dir.join("ca.pem"))
                .args(["--tls-auth-clients", "no", "--requirepass", password]),
        };
        let child = cmd
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(if self.durable {
                ["--appendonly", "yes", "--appendfsync", "always"]
            } else {
                ["--appendonly", "no", "--appendfsync", "no"]
            })
            .args(["--databases", "4096"])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server (apt-get install redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers_ping() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends one command over a plain connection and returns the raw reply's first
    /// line (e.g. `CONFIG SET maxmemory 1` → `+OK`).
    pub fn command(&self, args: &[&str]) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect redis");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s.write_all(req.as_bytes()).expect("send to redis");
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while s.read_exact(&mut byte).is_ok() && byte[0] != b'\n' {
            line.push(byte[0]);
        }
        String::from_utf8_lossy(&line).trim_end().to_string()
    }

    fn answers_ping(&self) -> bool {
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
            return false;
        };
        if self.tls_password.is_some() {
            // It listens once it is ready; speaking TLS here is the binary's test.
            return true;
        }
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

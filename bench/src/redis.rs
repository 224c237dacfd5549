//! A real `redis-server` (Debian's package) for the Redis phase: on a free loopback
//! port, in a temporary directory, nothing saved to disk; killed when dropped. The
//! bench talks to it only through agent-mesh (`MESH_REDIS_URL`), apart from the raw
//! RESP `PING` that says it is ready, so no Redis client crate is needed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's `redis-server` package puts the binary; `PATH` is tried first.
const DEBIAN_BIN: &str = "/usr/bin/redis-server";
const READY_WITHIN: Duration = Duration::from_secs(10);

pub struct RedisServer {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts one and waits until it answers `PING`. A missing binary is an error
    /// that names the package to install.
    pub fn start() -> Result<RedisServer, String> {
        let bin = find_bin().ok_or_else(|| {
            "redis-server not found (on PATH or at /usr/bin/redis-server): apt-get install redis-server"
                .to_string()
        })?;
        // The port is free when asked for and taken by redis-server a moment later;
        // another process could take it in between, so a start that fails is retried
        // on a new port.
        let mut last_err = String::new();
        for _ in 0..3 {
            match RedisServer::start_on(&bin, free_port()?) {
                Ok(s) => return Ok(s),
                Err(e) => last_err = e,
            }
        }
        Err(last_err)
    }

    fn start_on(bin: &PathBuf, port: u16) -> Result<RedisServer, String> {
        let dir = std::env::temp_dir().join(format!(
            "agent-mesh-bench-redis-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let log = dir.join("redis.log");
        let child = Command::new(bin)
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            // A benchmark store: no snapshots, no append-only file, nothing on disk.
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        // From here on, Drop kills the process and removes the directory.
        let mut server = RedisServer { child, port, dir };
        let deadline = Instant::now() + READY_WITHIN;
        while !server.answers_ping() {
            if let Ok(Some(status)) = server.child.try_wait() {
                let tail = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = tail.lines().rev().take(3).collect();
                return Err(format!(
                    "redis-server exited ({status}) on port {port}: {}",
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "redis-server did not answer PING on port {port} within {} s",
                    READY_WITHIN.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(server)
    }

    /// The `MESH_REDIS_URL` of database 0.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn answers_ping(&self) -> bool {
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        // An inline command; the answer is the simple string PONG.
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn find_bin() -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("redis-server"))
        .chain(std::iter::once(PathBuf::from(DEBIAN_BIN)))
        .find(|p| p.is_file())
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

//! Connections to Redis: one multiplexed connection for commands, shared by every
//! task of the process and reopened after a failure, and dedicated connections for
//! blocking reads (a blocked `XREAD` would stall every command queued behind it).

use super::url::RedisUrl;
use crate::store::seam::StoreError;
use crate::util::lock;
use redis::aio::MultiplexedConnection;
use redis::io::tcp::TcpSettings;
use redis::{AsyncConnectionConfig, Client, IntoConnectionInfo};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// Managed Redis services are often across a region: generous, but bounded, so a
/// dead server is noticed and requests get a quick 503 instead of hanging.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) struct Connector {
    client: Client,
    url: RedisUrl,
    commands: Mutex<Option<MultiplexedConnection>>,
}

impl Connector {
    /// Builds the client (no connection yet). For `rediss://`, `ca_file` (the
    /// `MESH_REDIS_CA_FILE` PEM) replaces the built-in web PKI roots when given: a
    /// Redis with a certificate of its own CA trusts nothing else. (It is apart from
    /// `MESH_CA_FILE`, whose extra roots for providers must not cut off a managed
    /// Redis with a public certificate.)
    pub fn new(url: &RedisUrl, ca_file: Option<&Path>) -> Result<Connector, String> {
        // Commands of several tasks share one connection and often go out while an
        // earlier one is unanswered: with Nagle's algorithm the second write would
        // wait for that answer's ACK (tens of ms with delayed ACKs across a network).
        let info = url
            .expose()
            .into_connection_info()
            .map_err(|e| url.scrub(&e.to_string()))?
            .set_tcp_settings(TcpSettings::default().set_nodelay(true));
        let client = match ca_file {
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                Client::build_with_tls(
                    info,
                    redis::TlsCertificates {
                        client_tls: None,
                        root_cert: Some(pem),
                    },
                )
            }
            None => Client::open(info),
        }
        .map_err(|e| url.scrub(&e.to_string()))?;
        Ok(Connector {
            client,
            url: url.clone(),
            commands: Mutex::new(None),
        })
    }

    /// The shared command connection, opened if there is none.
    pub async fn commands(&self) -> Result<MultiplexedConnection, StoreError> {
        if let Some(c) = lock(&self.commands).clone() {
            return Ok(c);
        }
        let conn = self.open(RESPONSE_TIMEOUT).await?;
        *lock(&self.commands) = Some(conn.clone());
        Ok(conn)
    }

    /// Forgets the command connection after an I/O error, so the next use reopens it.
    pub fn reset(&self) {
        *lock(&self.commands) = None;
    }

    /// A connection of its own, for blocking reads that may wait up to `block`.
    pub async fn dedicated(&self, block: Duration) -> Result<MultiplexedConnection, StoreError> {
        self.open(block + RESPONSE_TIMEOUT).await
    }

    async fn open(&self, response_timeout: Duration) -> Result<MultiplexedConnection, StoreError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(response_timeout));
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| self.error(&e))
    }

    /// A store error from a client error, with the URL's credentials removed.
    pub fn error(&self, e: &redis::RedisError) -> StoreError {
        StoreError(format!(
            "redis {}: {}",
            self.url,
            self.url.scrub(&e.to_string())
        ))
    }

    /// Connects and sends `PING` (the startup check).
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.commands().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| {
                self.reset();
                self.error(&e)
            })
    }
}

//! The servers of one run store that a shared scenario (tests/scenarios/) talks to.
//!
//! A scenario starts its runs on [`origin`](Instances::origin) (the process that runs
//! their pipelines) and streams, inspects and cancels them through
//! [`viewer`](Instances::viewer). On the memory store both are the one server; on the
//! Redis store they are two instances sharing one database of a real `redis-server`,
//! so every scenario also crosses instances. [`all`](Instances::all) is every
//! instance, for what each of them must answer alike.

use super::redis::RedisServer;
use super::Server;

pub struct Instances {
    pub origin: Server,
    viewer: Option<Server>,
    /// Dropped after the servers (fields drop in order), so no instance outlives its store.
    _redis: Option<RedisServer>,
}

impl Instances {
    /// One server on the in-memory store.
    pub fn memory(env: &[(&str, &str)]) -> Instances {
        Instances {
            origin: Server::start(env),
            viewer: None,
            _redis: None,
        }
    }

    /// Two instances on a fresh `redis-server` of their own (`MESH_REDIS_URL`), both
    /// with `env`.
    pub fn redis(env: &[(&str, &str)]) -> Instances {
        let redis = RedisServer::start();
        let url = redis.url(0);
        let mut env = env.to_vec();
        env.push(("MESH_REDIS_URL", url.as_str()));
        Instances {
            origin: Server::start(&env),
            viewer: Some(Server::start(&env)),
            _redis: Some(redis),
        }
    }

    /// Where runs are watched: another instance when the store is shared.
    pub fn viewer(&self) -> &Server {
        self.viewer.as_ref().unwrap_or(&self.origin)
    }

    /// Every instance on the store, the origin first.
    pub fn all(&self) -> Vec<&Server> {
        std::iter::once(&self.origin)
            .chain(self.viewer.as_ref())
            .collect()
    }
}

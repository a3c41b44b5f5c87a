//! etcd 3.6's v3 discovery (`--discovery-token`, `--discovery-endpoints`, ...), over the
//! v3 API of another cluster:
//!
//! ```text
//!   get   /_etcd/registry/<token>/_config/size        the expected size (> 0)
//!   get   /_etcd/registry/<token>/members/ (prefix)   registrations, by create revision
//!   put   /_etcd/registry/<token>/members/<id>        name=peer-url,...
//!   watch /_etcd/registry/<token>/members/ from R+1   until size registrations
//!   => the first `size` registrations, joined: the initial cluster
//! ```
//!
//! Each request is bounded by `--discovery-request-timeout`; failed requests are retried
//! with etcd's backoff, [`MAX_RETRIES`](crate::error::MAX_RETRIES) times in a row.

use std::path::Path;

use chorus_client::{Client, ConnectOptions, Credentials, GetOptions, TlsOptions, WatchOptions};
use chorus_config::{DiscoveryConfig, InitialCluster};

use crate::error::{Backoff, DiscoveryError, Transient};

const PREFIX: &str = "/_etcd/registry";

/// A registration (etcd's `memberInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Registration {
    key: String,
    value: String,
    create_revision: i64,
}

/// The registrations seen so far, by create revision (etcd's `clusterInfo`).
#[derive(Debug, Default)]
struct Registrations {
    members: Vec<Registration>,
}

impl Registrations {
    /// etcd's `clusterInfo.add`: ignores (with a warning) keys outside the prefix, values
    /// without `=` and repeats.
    fn add(&mut self, prefix: &str, key: &str, value: &str, rev: i64) {
        let (key, value) = (key.trim(), value.trim());
        let problem = if !key.starts_with(prefix) {
            Some("invalid peer registry key")
        } else if !value.contains('=') {
            Some("invalid peer info returned from discovery service")
        } else if self.members.iter().any(|m| m.key == key) {
            Some("found duplicate peer from discovery service")
        } else {
            None
        };
        if let Some(p) = problem {
            tracing::warn!(member_key = key, member_info = value, "{p}");
            return;
        }
        tracing::info!(
            member_key = key,
            member_info = value,
            "found peer from discovery service"
        );
        self.members.push(Registration {
            key: key.to_string(),
            value: value.to_string(),
            create_revision: rev,
        });
        self.members.sort_by_key(|m| m.create_revision);
    }

    /// etcd's `getInitClusterStr`.
    fn init_cluster(&self, size: usize) -> Result<String, DiscoveryError> {
        let joined = self
            .members
            .iter()
            .take(size)
            .map(|m| m.value.as_str())
            .collect::<Vec<_>>()
            .join(",");
        InitialCluster::parse(&joined).map_err(|_| DiscoveryError::InvalidPeerUrl)?;
        Ok(joined)
    }
}

/// One member's v3 discovery session.
pub struct V3Discovery {
    client: Client,
    token: String,
    id: u64,
    request_timeout: std::time::Duration,
    backoff: Backoff,
}

/// etcd's `v3discovery.JoinCluster`.
pub async fn join_cluster(
    cfg: &DiscoveryConfig,
    id: u64,
    config: &str,
) -> Result<String, DiscoveryError> {
    let mut d = V3Discovery::new(cfg, id)?;
    let result = d.join(config).await;
    match &result {
        Ok(c) => tracing::info!(cluster = %c, "discovery joined cluster successfully"),
        Err(e) => tracing::error!(error = %e, "discovery failed to join cluster"),
    }
    result
}

/// The client settings of `--discovery-*` (etcd's `clientv3.NewClientConfig`).
pub fn connect_options(cfg: &DiscoveryConfig) -> Result<ConnectOptions, DiscoveryError> {
    fn file(p: &str) -> Option<&Path> {
        (!p.is_empty()).then(|| Path::new(p))
    }
    let secure = !cfg.cert.is_empty()
        || !cfg.key.is_empty()
        || !cfg.cacert.is_empty()
        || cfg.insecure_skip_tls_verify
        || !cfg.insecure_transport;
    let tls = if secure {
        let mut t = TlsOptions::from_files(file(&cfg.cacert), file(&cfg.cert), file(&cfg.key))
            .map_err(|e| DiscoveryError::Client(chorus_client::Error::Tls(e.to_string())))?;
        t.insecure_skip_verify = cfg.insecure_skip_tls_verify;
        Some(t)
    } else {
        None
    };
    Ok(ConnectOptions {
        dial_timeout: cfg.dial_timeout,
        keep_alive_interval: (!cfg.keepalive_time.is_zero()).then_some(cfg.keepalive_time),
        keep_alive_timeout: cfg.keepalive_timeout,
        tls,
        credentials: credentials(cfg),
        ..ConnectOptions::default()
    })
}

/// `--discovery-user user[:password]`, `--discovery-password`.
fn credentials(cfg: &DiscoveryConfig) -> Option<Credentials> {
    if cfg.user.is_empty() {
        return None;
    }
    match cfg.user.split_once(':') {
        Some((u, p)) if cfg.password.is_empty() => Some(Credentials::new(u, p)),
        _ => Some(Credentials::new(cfg.user.as_str(), cfg.password.as_str())),
    }
}

impl V3Discovery {
    pub fn new(cfg: &DiscoveryConfig, id: u64) -> Result<V3Discovery, DiscoveryError> {
        let client = Client::connect_lazy(&cfg.endpoints, connect_options(cfg)?)?;
        Ok(V3Discovery {
            client,
            token: cfg.token.clone(),
            id,
            request_timeout: cfg.request_timeout,
            backoff: Backoff::default(),
        })
    }

    fn members_prefix(&self) -> String {
        format!("{PREFIX}/{}/members", self.token)
    }

    fn self_key(&self) -> String {
        format!("{}/{:x}", self.members_prefix(), self.id)
    }

    async fn join(&mut self, config: &str) -> Result<String, DiscoveryError> {
        self.check_cluster().await?;
        self.register_self(config).await?;
        let (mut cls, size, rev) = self.check_cluster().await?;
        while cls.members.len() < size {
            self.wait_peers(&mut cls, size, rev).await?;
        }
        cls.init_cluster(size)
    }

    /// One request bounded by `--discovery-request-timeout`.
    async fn bounded<T>(
        &self,
        f: impl std::future::Future<Output = chorus_client::Result<T>>,
    ) -> Result<T, Transient> {
        match tokio::time::timeout(self.request_timeout, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Transient(e.to_string())),
            Err(_) => Err(Transient("context deadline exceeded".into())),
        }
    }

    async fn cluster_size(&self) -> Result<Result<usize, DiscoveryError>, Transient> {
        let key = format!("{PREFIX}/{}/_config/size", self.token);
        let resp = self
            .bounded(self.client.get(key, GetOptions::default()))
            .await?;
        let Some(kv) = resp.kvs.first() else {
            return Ok(Err(DiscoveryError::SizeNotFound));
        };
        let size = std::str::from_utf8(&kv.value)
            .ok()
            .and_then(parse_go_int)
            .filter(|n| *n > 0);
        Ok(size
            .and_then(|n| usize::try_from(n).ok())
            .ok_or(DiscoveryError::BadSizeKey))
    }

    async fn members(&self) -> Result<(Registrations, i64), Transient> {
        let prefix = self.members_prefix();
        let opts = GetOptions {
            prefix: true,
            ..GetOptions::default()
        };
        let resp = self.bounded(self.client.get(prefix.clone(), opts)).await?;
        let mut cls = Registrations::default();
        for kv in &resp.kvs {
            let (k, v) = (
                String::from_utf8_lossy(&kv.key),
                String::from_utf8_lossy(&kv.value),
            );
            cls.add(&prefix, &k, &v, kv.create_revision);
        }
        let rev = resp.header.map_or(0, |h| h.revision);
        Ok((cls, rev))
    }

    /// etcd's `checkCluster` (with `checkClusterRetry`).
    async fn check_cluster(&mut self) -> Result<(Registrations, usize, i64), DiscoveryError> {
        loop {
            let size = match self.cluster_size().await {
                Ok(s) => s?,
                Err(t) => {
                    self.backoff.wait("cluster status check", &t.0).await?;
                    continue;
                }
            };
            let (cls, rev) = match self.members().await {
                Ok(m) => m,
                Err(t) => {
                    self.backoff.wait("cluster status check", &t.0).await?;
                    continue;
                }
            };
            self.backoff.reset();
            let me = self.self_key();
            for (i, m) in cls.members.iter().enumerate() {
                if m.key == me {
                    break;
                }
                if i + 1 >= size {
                    return Err(DiscoveryError::FullCluster);
                }
            }
            return Ok((cls, size, rev));
        }
    }

    /// etcd's `registerSelf` (with `registerSelfRetry`).
    async fn register_self(&mut self, config: &str) -> Result<(), DiscoveryError> {
        let key = self.self_key();
        loop {
            let put = self.client.put(key.clone(), config, Default::default());
            match self.bounded(put).await {
                Ok(_) => {
                    self.backoff.reset();
                    tracing::info!(member_key = %key, member_info = config, "register member itself successfully");
                    return Ok(());
                }
                Err(t) => self.backoff.wait("register member itself", &t.0).await?,
            }
        }
    }

    /// etcd's `waitPeers`: watch the members' prefix from `rev + 1` until `size`
    /// registrations are known. A broken watch is retried (and counted).
    async fn wait_peers(
        &mut self,
        cls: &mut Registrations,
        size: usize,
        rev: i64,
    ) -> Result<(), DiscoveryError> {
        tracing::info!(
            cluster_size = size,
            found_peers = cls.members.len(),
            "waiting for peers from discovery service"
        );
        let prefix = self.members_prefix();
        let opts = WatchOptions {
            prefix: true,
            start_revision: rev + 1,
            ..WatchOptions::default()
        };
        let mut stream = match self.client.watch(prefix.clone(), opts).await {
            Ok(s) => s,
            Err(e) => return self.backoff.wait("waiting for peers", &e.to_string()).await,
        };
        while cls.members.len() < size {
            let events = match stream.message().await {
                Ok(Some(resp)) => resp.events,
                Ok(None) => return self.backoff.wait("waiting for peers", "watch closed").await,
                Err(e) => return self.backoff.wait("waiting for peers", &e.to_string()).await,
            };
            for ev in events.iter().filter_map(|e| e.kv.as_ref()) {
                let (k, v) = (
                    String::from_utf8_lossy(&ev.key),
                    String::from_utf8_lossy(&ev.value),
                );
                cls.add(&prefix, &k, &v, ev.create_revision);
            }
        }
        tracing::info!(
            cluster_size = size,
            found_peers = cls.members.len(),
            "found all needed peers from discovery service"
        );
        Ok(())
    }
}

/// `strconv.ParseInt(v, 10, 0)`: an optional sign, then digits.
fn parse_go_int(v: &str) -> Option<i64> {
    let digits = v.strip_prefix(['+', '-']).unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrations_sorted_and_checked_as_etcd() {
        let p = "/_etcd/registry/t/members";
        let mut c = Registrations::default();
        c.add(p, "/_etcd/registry/t/members/2", "b=http://127.0.0.1:2", 9);
        c.add(p, "/_etcd/registry/t/members/1", "a=http://127.0.0.1:1", 7);
        c.add(p, "/_etcd/registry/t/members/1", "a=http://127.0.0.1:1", 7);
        c.add(p, "/other/3", "c=http://127.0.0.1:3", 8);
        c.add(p, "/_etcd/registry/t/members/4", "no-equals", 8);
        assert_eq!(c.members.len(), 2);
        assert_eq!(
            c.init_cluster(2).unwrap(),
            "a=http://127.0.0.1:1,b=http://127.0.0.1:2"
        );
        assert_eq!(c.init_cluster(1).unwrap(), "a=http://127.0.0.1:1");
        c.add(p, "/_etcd/registry/t/members/5", "c=foo", 10);
        assert_eq!(
            c.init_cluster(3).unwrap_err().to_string(),
            "discovery: invalid peer URL"
        );
    }

    #[test]
    fn sizes_as_go() {
        assert_eq!(parse_go_int("3"), Some(3));
        assert_eq!(parse_go_int("+3"), Some(3));
        assert_eq!(parse_go_int("-3"), Some(-3));
        assert_eq!(parse_go_int("x"), None);
        assert_eq!(parse_go_int(""), None);
    }

    #[test]
    fn credentials_from_user_and_password() {
        let mut cfg = DiscoveryConfig {
            user: "root:pw".into(),
            ..DiscoveryConfig::default()
        };
        let c = credentials(&cfg).unwrap();
        assert_eq!((c.user(), c.password()), ("root", "pw"));
        cfg.password = "other".into();
        cfg.user = "root".into();
        let c = credentials(&cfg).unwrap();
        assert_eq!((c.user(), c.password()), ("root", "other"));
    }
}

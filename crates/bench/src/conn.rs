//! Connections: `--conns` gRPC connections, each a [`Conn`] of its own (one HTTP/2
//! connection), handed to the `--clients` workers round-robin as etcd's tool does
//! (`clients[i] = conns[i % conns]`). Without `--target-leader`, connection i dials
//! endpoint `i % endpoints`; with it, every connection dials the leader's client URLs,
//! found with Maintenance.Status (its `leader` field) and Cluster.MemberList.
//!
//! An endpoint is `host:port`, `http://host:port` or `https://host:port`; `https://`, or
//! no scheme with any TLS flag, means TLS (see [`crate::tls`]).
//!
//! Every connection is made and checked (one Maintenance.Status) before a run starts, so
//! the time to dial is not in the first requests' latencies.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use chorus_api::etcdserverpb::{
    cluster_client::ClusterClient, kv_client::KvClient, lease_client::LeaseClient,
    maintenance_client::MaintenanceClient, watch_client::WatchClient, MemberListRequest,
    StatusRequest, StatusResponse,
};
use chorus_client::{AuthChannel, Credentials, TokenInterceptor, TokenSource};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::tls::{server_name, TlsConnect, TlsFlags};

/// HTTP/2 PING interval on a connection with open calls (etcd's server refuses pings more
/// often than every 5 s) and the wait for its answer: chorus-client's defaults.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(6);
/// Largest response accepted (clientv3's default).
const MAX_DECODING_MESSAGE_SIZE: usize = i32::MAX as usize;

/// The global flags that shape the connections.
#[derive(Debug, Clone)]
pub struct ConnConfig {
    pub endpoints: Vec<String>,
    pub conns: usize,
    pub dial_timeout: Duration,
    pub target_leader: bool,
    pub tls: TlsFlags,
    /// `--user`: each connection logs in on its own, as each of etcd's clients does.
    pub credentials: Option<Credentials>,
}

/// One gRPC connection (an HTTP/2 connection, made on first use) to one endpoint; its
/// calls carry the connection's token when there are credentials.
#[derive(Debug, Clone)]
pub struct Conn {
    channel: AuthChannel,
    /// The same connection without the token, for Authenticate.
    raw: Channel,
    tokens: Option<TokenSource>,
    /// As dialled: `http://host:port` or `https://host:port`.
    endpoint: String,
}

impl Conn {
    fn new(raw: Channel, endpoint: String, credentials: Option<&Credentials>) -> Conn {
        let tokens = credentials.cloned().map(TokenSource::new);
        let channel = match &tokens {
            Some(t) => t.channel(raw.clone()),
            None => InterceptedService::new(raw.clone(), TokenInterceptor::default()),
        };
        Conn {
            channel,
            raw,
            tokens,
            endpoint,
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn kv_client(&self) -> KvClient<AuthChannel> {
        KvClient::new(self.channel.clone()).max_decoding_message_size(MAX_DECODING_MESSAGE_SIZE)
    }

    pub fn watch_client(&self) -> WatchClient<AuthChannel> {
        WatchClient::new(self.channel.clone()).max_decoding_message_size(MAX_DECODING_MESSAGE_SIZE)
    }

    pub fn lease_client(&self) -> LeaseClient<AuthChannel> {
        LeaseClient::new(self.channel.clone())
    }

    pub fn maintenance_client(&self) -> MaintenanceClient<AuthChannel> {
        MaintenanceClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_DECODING_MESSAGE_SIZE)
    }

    pub fn cluster_client(&self) -> ClusterClient<AuthChannel> {
        ClusterClient::new(self.channel.clone())
    }

    /// The number of tokens this connection had so far (`None`: no credentials): read
    /// before a call, given to `refresh_token` after a refused token.
    pub fn token_generation(&self) -> Option<u64> {
        self.tokens.as_ref().map(TokenSource::generation)
    }

    /// A new token after the server refused the one of generation `seen` (one login for
    /// all the workers of the connection).
    pub async fn refresh_token(&self, seen: u64) -> Result<(), chorus_client::Error> {
        match &self.tokens {
            Some(t) => t.refresh(self.raw.clone(), seen).await,
            None => Ok(()),
        }
    }

    /// Logs in (with credentials); a server without authentication is no error.
    async fn authenticate(&self) -> Result<(), chorus_client::Error> {
        let Some(tokens) = &self.tokens else {
            return Ok(());
        };
        match tokens.authenticate(self.raw.clone()).await {
            Err(e) if e.message() == Some(chorus_client::messages::AUTH_NOT_ENABLED) => Ok(()),
            other => other,
        }
    }

    /// Maintenance.Status of this endpoint.
    pub async fn status(&self) -> Result<StatusResponse, tonic::Status> {
        Ok(self
            .maintenance_client()
            .status(StatusRequest {})
            .await?
            .into_inner())
    }
}

/// The connections of one run.
#[derive(Debug, Clone)]
pub struct Conns {
    /// The `--conns` connections.
    pub clients: Vec<Conn>,
    /// Connections asked for on top (`connect(extra)`).
    pub extra: Vec<Conn>,
    /// Endpoints actually dialled (the leader's with `--target-leader`).
    pub endpoints: Vec<String>,
}

impl Conns {
    /// The connection worker `i` uses.
    pub fn for_worker(&self, i: usize) -> &Conn {
        &self.clients[i % self.clients.len()]
    }
}

/// Bound on the check of a fresh connection.
fn check_timeout(dial_timeout: Duration) -> Duration {
    dial_timeout + Duration::from_secs(5)
}

/// `host:port`, `http://host:port`, `https://host:port` -> (TLS?, `host:port`).
fn split_endpoint(endpoint: &str, tls_flags: bool) -> anyhow::Result<(bool, String)> {
    let (tls, rest) = match endpoint.split_once("://") {
        Some(("http", rest)) => (false, rest),
        Some(("https", rest)) => (true, rest),
        Some((scheme, _)) => bail!("endpoint {endpoint}: unsupported scheme {scheme:?}"),
        None => (tls_flags, endpoint),
    };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains('/') {
        bail!("endpoint {endpoint}: expected host:port");
    }
    Ok((tls, rest.to_owned()))
}

impl ConnConfig {
    fn validate(&self) -> anyhow::Result<()> {
        if self.endpoints.is_empty() {
            bail!("no --endpoints given");
        }
        if self.conns == 0 {
            bail!("--conns must be at least 1");
        }
        Ok(())
    }

    /// A connection to `endpoint`, made on first use. `tls` is the client configuration,
    /// built once per run when some endpoint needs it.
    fn dial(
        &self,
        endpoint: &str,
        tls: &mut Option<Arc<rustls::ClientConfig>>,
    ) -> anyhow::Result<Conn> {
        let (use_tls, authority) = split_endpoint(endpoint, self.tls.any())?;
        let ep = Endpoint::from_shared(format!("http://{authority}"))
            .with_context(|| format!("endpoint {endpoint}"))?
            .connect_timeout(self.dial_timeout)
            .keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
            .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
            .tcp_nodelay(true);
        let creds = self.credentials.as_ref();
        if !use_tls {
            let endpoint = format!("http://{authority}");
            return Ok(Conn::new(ep.connect_lazy(), endpoint, creds));
        }
        let config = match tls {
            Some(config) => config.clone(),
            None => tls.insert(self.tls.client_config()?).clone(),
        };
        let origin = format!("https://{authority}");
        let ep = ep.origin(
            origin
                .parse()
                .with_context(|| format!("endpoint {endpoint}"))?,
        );
        let connector = TlsConnect::new(config, server_name(&authority)?);
        Ok(Conn::new(
            ep.connect_with_connector_lazy(connector),
            origin,
            creds,
        ))
    }

    /// The client URLs of the leader.
    pub async fn find_leader(&self) -> anyhow::Result<Vec<String>> {
        let mut tls = None;
        for endpoint in &self.endpoints {
            let conn = self.dial(endpoint, &mut tls)?;
            // Logged in first: with auth on, chorus answers Status and MemberList only
            // to a user.
            let login = tokio::time::timeout(check_timeout(self.dial_timeout), conn.authenticate());
            if !matches!(login.await, Ok(Ok(()))) {
                continue;
            }
            let status = tokio::time::timeout(check_timeout(self.dial_timeout), conn.status())
                .await
                .ok()
                .and_then(Result::ok);
            let Some(status) = status else { continue };
            if status.leader == 0 {
                continue;
            }
            let members = conn
                .cluster_client()
                .member_list(MemberListRequest::default())
                .await
                .with_context(|| format!("member list from {endpoint}"))?
                .into_inner();
            if let Some(m) = members.members.iter().find(|m| m.id == status.leader) {
                if m.client_ur_ls.is_empty() {
                    bail!("the leader {:x} has no client URL", m.id);
                }
                return Ok(m.client_ur_ls.clone());
            }
        }
        bail!("failed to find a leader endpoint")
    }

    /// Makes and checks `self.conns` connections. `extra` more are made for commands that
    /// need their own (watch-latency's put connection); they come last.
    pub async fn connect(&self, extra: usize) -> anyhow::Result<Conns> {
        self.validate()?;
        let leader = if self.target_leader {
            Some(self.find_leader().await?)
        } else {
            None
        };
        let mut tls = None;
        let mut clients = Vec::with_capacity(self.conns + extra);
        for i in 0..self.conns + extra {
            // etcd's tool gives each connection all the leader's URLs; a gRPC channel here
            // has one endpoint, so connection i takes URL i % count.
            let endpoint = match &leader {
                Some(urls) => &urls[i % urls.len()],
                None => &self.endpoints[i % self.endpoints.len()],
            };
            let conn = self
                .dial(endpoint, &mut tls)
                .with_context(|| format!("dial {endpoint}"))?;
            // Log in first: a server with authentication on (chorus) may refuse Status
            // to a caller without a user.
            match tokio::time::timeout(check_timeout(self.dial_timeout), conn.authenticate()).await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => bail!(
                    "dial error: {endpoint}: {}",
                    e.message().map_or_else(|| e.to_string(), str::to_string)
                ),
                Err(_) => bail!("dial error: {endpoint}: no answer to Authenticate in time"),
            }
            match tokio::time::timeout(check_timeout(self.dial_timeout), conn.status()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => bail!("dial error: {endpoint}: {}", describe(&e)),
                Err(_) => bail!("dial error: {endpoint}: no answer in time"),
            }
            clients.push(conn);
        }
        let extra = clients.split_off(self.conns);
        let endpoints = match leader {
            Some(urls) => urls,
            None => self.endpoints.clone(),
        };
        Ok(Conns {
            clients,
            extra,
            endpoints,
        })
    }
}

/// A status's message with the chain of causes (a TLS refusal is several levels down),
/// each cause once.
fn describe(status: &tonic::Status) -> String {
    use std::error::Error as _;
    let text = format!("{:?}: {}", status.code(), status.message());
    chorus_client::with_causes(text, status.source())
}

/// Go's `time.ParseDuration` for the forms people type: `0`, `500ms`, `2s`, `1m30s`,
/// `1.5h`, `10us`/`10µs`, `100ns`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration".into());
    }
    // Nanoseconds.
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("missing unit in duration {text:?}"))?;
        if num_len == 0 {
            return Err(format!("invalid duration {text:?}"));
        }
        let value: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("invalid duration {text:?}"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            unit => return Err(format!("unknown unit {unit:?} in duration {text:?}")),
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    if !(0.0..1.8e19).contains(&total) {
        return Err(format!("duration {text:?} out of range"));
    }
    Ok(Duration::from_nanos(total.round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("10us"), Ok(Duration::from_micros(10)));
        assert_eq!(parse_duration("10µs"), Ok(Duration::from_micros(10)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn endpoints_split_by_scheme_and_flags() {
        let split = |e: &str, flags: bool| split_endpoint(e, flags).unwrap();
        assert_eq!(
            split("127.0.0.1:2379", false),
            (false, "127.0.0.1:2379".into())
        );
        assert_eq!(
            split("127.0.0.1:2379", true),
            (true, "127.0.0.1:2379".into())
        );
        assert_eq!(split("http://h:1/", true), (false, "h:1".into()));
        assert_eq!(split("https://h:1", false), (true, "h:1".into()));
        assert!(split_endpoint("unix://x", false).is_err());
        assert!(split_endpoint("http://h:1/path", false).is_err());
    }
}

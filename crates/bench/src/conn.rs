//! Connections: `--conns` gRPC connections, each a [`Client`] of its own (one HTTP/2
//! connection), handed to the `--clients` workers round-robin as etcd's tool does
//! (`clients[i] = conns[i % conns]`). Without `--target-leader`, connection i dials
//! endpoint `i % endpoints`; with it, every connection dials the leader's client URLs,
//! found with Maintenance.Status (its `leader` field) and Cluster.MemberList.
//!
//! Every connection is made and checked (one Maintenance.Status) before a run starts, so
//! the time to dial is not in the first requests' latencies.

use std::time::Duration;

use anyhow::{bail, Context as _};
use chorus_client::{Client, ConnectOptions};

/// The global flags that shape the connections.
#[derive(Debug, Clone)]
pub struct ConnConfig {
    pub endpoints: Vec<String>,
    pub conns: usize,
    pub dial_timeout: Duration,
    pub target_leader: bool,
    /// Any of `--cacert`, `--cert`, `--key` given.
    pub tls_requested: bool,
}

/// The connections of one run.
#[derive(Debug, Clone)]
pub struct Conns {
    /// The `--conns` connections.
    pub clients: Vec<Client>,
    /// Connections asked for on top (`connect(extra)`).
    pub extra: Vec<Client>,
    /// Endpoints actually dialled (the leader's with `--target-leader`).
    pub endpoints: Vec<String>,
}

impl Conns {
    /// The connection worker `i` uses.
    pub fn for_worker(&self, i: usize) -> &Client {
        &self.clients[i % self.clients.len()]
    }
}

fn connect_options(dial_timeout: Duration) -> ConnectOptions {
    ConnectOptions {
        dial_timeout,
        ..ConnectOptions::default()
    }
}

/// Bound on the check of a fresh connection.
fn check_timeout(dial_timeout: Duration) -> Duration {
    dial_timeout + Duration::from_secs(5)
}

impl ConnConfig {
    fn validate(&self) -> anyhow::Result<()> {
        if self.tls_requested || self.endpoints.iter().any(|e| e.starts_with("https://")) {
            bail!(
                "TLS (--cacert/--cert/--key, https:// endpoints) is not implemented yet: \
                 chorus-bench's client speaks plain-text gRPC only"
            );
        }
        if self.endpoints.is_empty() {
            bail!("no --endpoints given");
        }
        if self.conns == 0 {
            bail!("--conns must be at least 1");
        }
        Ok(())
    }

    /// The client URLs of the leader.
    pub async fn find_leader(&self) -> anyhow::Result<Vec<String>> {
        for endpoint in &self.endpoints {
            let client = Client::connect(&[endpoint], connect_options(self.dial_timeout)).await?;
            let status = tokio::time::timeout(check_timeout(self.dial_timeout), client.status())
                .await
                .ok()
                .and_then(Result::ok);
            let Some(status) = status else { continue };
            if status.leader == 0 {
                continue;
            }
            let members = client
                .member_list()
                .await
                .with_context(|| format!("member list from {endpoint}"))?;
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
        let mut clients = Vec::with_capacity(self.conns + extra);
        for i in 0..self.conns + extra {
            let endpoints: Vec<String> = match &leader {
                Some(urls) => urls.clone(),
                None => vec![self.endpoints[i % self.endpoints.len()].clone()],
            };
            let client = Client::connect(&endpoints, connect_options(self.dial_timeout))
                .await
                .with_context(|| format!("dial {}", endpoints.join(",")))?;
            match tokio::time::timeout(check_timeout(self.dial_timeout), client.status()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => bail!("dial error: {}: {e}", endpoints.join(",")),
                Err(_) => bail!("dial error: {}: no answer in time", endpoints.join(",")),
            }
            clients.push(client);
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

    #[tokio::test]
    async fn tls_is_refused_not_ignored() {
        let cfg = ConnConfig {
            endpoints: vec!["127.0.0.1:1".into()],
            conns: 1,
            dial_timeout: Duration::from_millis(100),
            target_leader: false,
            tls_requested: true,
        };
        let err = cfg.connect(0).await.unwrap_err().to_string();
        assert!(err.contains("not implemented yet"), "{err}");
        let cfg = ConnConfig {
            endpoints: vec!["https://127.0.0.1:1".into()],
            tls_requested: false,
            ..cfg
        };
        let err = cfg.connect(0).await.unwrap_err().to_string();
        assert!(err.contains("not implemented yet"), "{err}");
    }
}

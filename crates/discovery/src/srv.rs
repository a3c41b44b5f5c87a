//! DNS SRV discovery as etcd does it (`client/pkg/srv`, `embed.Config.GetDNSClusterNames`):
//! the initial cluster from `_etcd-server-ssl[-name]._tcp.<domain>` (https) and
//! `_etcd-server[-name]._tcp.<domain>` (http), and client endpoints from
//! `_etcd-client-ssl` / `_etcd-client`.
//!
//! A record whose target resolves to one of this member's advertised peer addresses is
//! this member (named `--name`); the others are named `0`, `1`, ... in the order found
//! (etcd's naming; each member publishes its real name once it runs).

use std::collections::HashMap;

use chorus_config::Url;

use crate::dns::{BadResolver, LookupError, Resolver};

/// Why SRV discovery found nothing, in etcd's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SrvError {
    /// `error querying DNS SRV records for _<service> <cause>`.
    #[error("error querying DNS SRV records for _{service} {cause}")]
    Query { service: String, cause: String },
    /// An advertised peer URL whose host does not resolve.
    #[error("{0}")]
    Resolve(LookupError),
    /// `CHORUS_DNS_RESOLVER` is not `ip:port`.
    #[error(transparent)]
    Resolver(#[from] BadResolver),
    /// Both lookups failed (`errHTTPS; errHTTP`, as multierr joins them).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Both(Vec<SrvError>),
    /// Client endpoints: `dns lookup errors: <https> and <http>`.
    #[error("dns lookup errors: {0} and {1}")]
    Client(LookupError, LookupError),
    /// This member is not among the records (`PeerURLsMapAndToken`).
    #[error("cannot find local etcd member {0:?} in SRV records")]
    NoLocalMember(String),
}

/// etcd's `GetSRVService`: `-ssl` for https, then `-<name>` when a name is given.
pub fn srv_service(service: &str, service_name: &str, scheme: &str) -> String {
    let base = if scheme == "https" {
        format!("{service}-ssl")
    } else {
        service.to_string()
    };
    if service_name.is_empty() {
        base
    } else {
        format!("{base}-{service_name}")
    }
}

/// What SRV discovery is asked (from `--name`, `--discovery-srv`, `--discovery-srv-name`,
/// `--initial-advertise-peer-urls`).
#[derive(Debug, Clone)]
pub struct SrvQuery<'a> {
    pub name: &'a str,
    pub domain: &'a str,
    pub service_name: &'a str,
    pub advertise_peer_urls: &'a [Url],
}

/// etcd's `GetDNSClusterNames`: the `name=scheme://target:port` entries of both record
/// sets (https first) and the errors met; discovery failed only if the list is empty.
pub async fn cluster_names(r: &Resolver, q: &SrvQuery<'_>) -> (Vec<String>, Option<SrvError>) {
    let suffix = if q.service_name.is_empty() {
        String::new()
    } else {
        format!("-{}", q.service_name)
    };
    let ssl = get_cluster(r, "https", &format!("etcd-server-ssl{suffix}"), q).await;
    log_found("https", &format!("etcd-server-ssl{suffix}"), q, &ssl);
    let plain = get_cluster(r, "http", &format!("etcd-server{suffix}"), q).await;
    log_found("http", &format!("etcd-server{suffix}"), q, &plain);
    let mut names = Vec::new();
    let mut errors = Vec::new();
    for r in [ssl, plain] {
        match r {
            Ok(v) => names.extend(v),
            Err(e) => errors.push(e),
        }
    }
    let err = match errors.len() {
        0 => None,
        1 => errors.pop(),
        _ => Some(SrvError::Both(errors)),
    };
    (names, err)
}

/// etcd's line after each lookup.
fn log_found(scheme: &str, service: &str, q: &SrvQuery<'_>, found: &Result<Vec<String>, SrvError>) {
    let (cluster, error) = match found {
        Ok(v) => (v.join(","), String::new()),
        Err(e) => (String::new(), e.to_string()),
    };
    tracing::info!(
        service_scheme = scheme,
        service_name = service,
        server_name = q.name,
        discovery_srv = q.domain,
        found_cluster = %cluster,
        error = %error,
        "get cluster for {service} SRV"
    );
}

/// etcd's `srv.GetCluster` for one record set.
pub async fn get_cluster(
    r: &Resolver,
    scheme: &str,
    service: &str,
    q: &SrvQuery<'_>,
) -> Result<Vec<String>, SrvError> {
    let mut own: HashMap<String, &Url> = HashMap::new();
    for u in q.advertise_peer_urls {
        let addr = r
            .resolve_tcp_addr(&u.host)
            .await
            .map_err(SrvError::Resolve)?;
        own.insert(addr.to_string(), u);
    }
    let query_err = |cause: String| SrvError::Query {
        service: service.to_string(),
        cause,
    };
    let records = r
        .lookup_srv(service, "tcp", q.domain)
        .await
        .map_err(|e| query_err(e.to_string()))?;
    let mut parts = Vec::new();
    let mut last_err = None;
    let mut temp_name = 0;
    for srv in records {
        let host = join_host_port(&srv.target, srv.port);
        let addr = match r.resolve_tcp_addr(&host).await {
            Ok(a) => a,
            Err(e) => {
                last_err = Some(e.to_string());
                continue;
            }
        };
        let mine = own.get(&addr.to_string());
        let name = match mine {
            Some(_) => q.name.to_string(),
            None => {
                temp_name += 1;
                (temp_name - 1).to_string()
            }
        };
        let url_host = join_host_port(srv.target.trim_end_matches('.'), srv.port);
        match mine {
            Some(u) if u.scheme != scheme => {
                last_err = Some(format!(
                    "bootstrap at {scheme}://{url_host} from DNS for {service} has scheme mismatch with expected peer {u}"
                ));
            }
            _ => parts.push(format!("{name}={scheme}://{url_host}")),
        }
    }
    if parts.is_empty() {
        return Err(query_err(last_err.unwrap_or_default()));
    }
    Ok(parts)
}

/// Client endpoints found by SRV (etcd's `srv.SRVClients`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvClients {
    /// `https://target:port` then `http://target:port` (targets keep their final dot).
    pub endpoints: Vec<String>,
}

/// etcd's `srv.GetClient(service, domain, serviceName)`: endpoints from both record sets;
/// an error only when both lookups fail.
pub async fn get_client(
    r: &Resolver,
    service: &str,
    domain: &str,
    service_name: &str,
) -> Result<SrvClients, SrvError> {
    let mut endpoints = Vec::new();
    let mut errors = Vec::new();
    for scheme in ["https", "http"] {
        let name = srv_service(service, service_name, scheme);
        match r.lookup_srv(&name, "tcp", domain).await {
            Ok(records) => endpoints.extend(
                records
                    .iter()
                    .map(|s| format!("{scheme}://{}", join_host_port(&s.target, s.port))),
            ),
            Err(e) => errors.push(e),
        }
    }
    if errors.len() == 2 {
        let http = errors.pop().expect("two errors");
        let https = errors.pop().expect("two errors");
        return Err(SrvError::Client(https, http));
    }
    Ok(SrvClients { endpoints })
}

/// Go's `net.JoinHostPort`.
fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_as_etcd() {
        assert_eq!(srv_service("etcd-client", "", "https"), "etcd-client-ssl");
        assert_eq!(srv_service("etcd-client", "", "http"), "etcd-client");
        assert_eq!(
            srv_service("etcd-client", "a", "https"),
            "etcd-client-ssl-a"
        );
        assert_eq!(srv_service("etcd-client", "a", "http"), "etcd-client-a");
    }

    #[test]
    fn errors_read_as_etcd() {
        let q = |s: &str| SrvError::Query {
            service: s.into(),
            cause: "lookup x on 1.2.3.4:53: no such host".into(),
        };
        let both = SrvError::Both(vec![q("etcd-server-ssl"), q("etcd-server")]);
        assert_eq!(
            both.to_string(),
            "error querying DNS SRV records for _etcd-server-ssl lookup x on 1.2.3.4:53: no such host; error querying DNS SRV records for _etcd-server lookup x on 1.2.3.4:53: no such host"
        );
        assert_eq!(
            SrvError::NoLocalMember("m1".into()).to_string(),
            "cannot find local etcd member \"m1\" in SRV records"
        );
        assert_eq!(join_host_port("::1", 1), "[::1]:1");
    }
}

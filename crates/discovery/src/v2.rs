//! etcd's v2 discovery protocol (`--discovery <url>`), against any v2 keys API (another
//! chorus or etcd cluster, or discovery.etcd.io). The URL's path is the token's directory:
//!
//! ```text
//!   GET  <dir>/_config/size            the expected cluster size (missing: the v2 error as is)
//!   GET  <dir>                         who registered so far (sorted by createdIndex)
//!   PUT  <dir>/<member-id>?prevExist=false  value=name=peer-url,...   (exists: duplicate id)
//!   GET  <dir>?wait=true&recursive=true&waitIndex=N   until size members registered
//!   => the first `size` registrations, joined: the initial cluster
//! ```
//!
//! A member that finds `size` others registered before itself gets `discovery: cluster is
//! full`. Unreachable services are retried with etcd's backoff, [`MAX_RETRIES`] times.
//!
//! [`MAX_RETRIES`]: crate::error::MAX_RETRIES

use std::time::Duration;

use chorus_config::url::query_escape;
use chorus_config::{InitialCluster, Url};
use serde::Deserialize;

use crate::error::{Backoff, DiscoveryError, Transient};
use crate::http::{Endpoint, Response};

/// etcd's v2 client `DefaultRequestTimeout` for each get and create.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A v2 node as the keys API answers it.
#[derive(Debug, Clone, Default, Deserialize)]
struct Node {
    #[serde(default)]
    key: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    nodes: Vec<Node>,
    #[serde(rename = "createdIndex", default)]
    created_index: u64,
    #[serde(rename = "modifiedIndex", default)]
    modified_index: u64,
}

#[derive(Debug, Deserialize)]
struct KeysResponse {
    #[serde(default)]
    node: Node,
}

#[derive(Debug, Deserialize)]
struct KeysError {
    #[serde(rename = "errorCode")]
    code: u64,
    #[serde(default)]
    message: String,
    #[serde(default)]
    cause: String,
    #[serde(default)]
    index: u64,
}

/// What one request can end with.
enum Failure {
    /// Retry after a while (etcd's `client.ClusterError`).
    Transient(Transient),
    /// Give up.
    Fatal(DiscoveryError),
}

impl From<DiscoveryError> for Failure {
    fn from(e: DiscoveryError) -> Self {
        Failure::Fatal(e)
    }
}

/// The keys API answer: the node and `X-Etcd-Index`.
struct Answer {
    node: Node,
    index: u64,
}

/// What `checkCluster` learns.
struct Registered {
    nodes: Vec<Node>,
    size: u64,
    index: u64,
}

/// One member's discovery session (etcd's `discovery` struct).
pub struct V2Discovery {
    endpoint: Endpoint,
    /// The URL's path: the token's directory (`/v2/keys/_etcd/registry/<token>`).
    cluster: String,
    id: u64,
    backoff: Backoff,
}

/// etcd's `JoinCluster`: registers `config` (`name=url,...`) as member `id` under `durl`,
/// waits for the cluster to fill and returns the initial cluster.
pub async fn join_cluster(
    durl: &str,
    proxy: &str,
    id: u64,
    config: &str,
) -> Result<String, DiscoveryError> {
    V2Discovery::new(durl, proxy, id)?.join(config).await
}

impl V2Discovery {
    /// etcd's `newDiscovery`: the URL split into service and token directory.
    pub fn new(durl: &str, proxy: &str, id: u64) -> Result<V2Discovery, DiscoveryError> {
        let u = Url::parse_go(durl).map_err(DiscoveryError::Url)?;
        if u.scheme != "http" && u.scheme != "https" {
            return Err(DiscoveryError::Url(format!(
                "unsupported protocol scheme {:?}",
                u.scheme
            )));
        }
        if u.host.is_empty() {
            return Err(DiscoveryError::Url(format!(
                "no Host in request URL {durl:?}"
            )));
        }
        let authority = with_default_port(&u);
        Ok(V2Discovery {
            endpoint: Endpoint {
                scheme: u.scheme.clone(),
                authority,
                proxy: proxy_authority(proxy)?,
            },
            cluster: clean_path(&u.path),
            id,
            backoff: Backoff::default(),
        })
    }

    fn self_key(&self) -> String {
        format!("{}/{:x}", self.cluster, self.id)
    }

    async fn join(mut self, config: &str) -> Result<String, DiscoveryError> {
        self.check_cluster().await?;
        self.create_self(config).await?;
        let reg = self.check_cluster().await?;
        let size = reg.size;
        let all = self.wait_nodes(reg).await?;
        nodes_to_cluster(&all, size)
    }

    /// etcd's `createSelf`: register, then see the registration on the server.
    async fn create_self(&mut self, config: &str) -> Result<(), DiscoveryError> {
        let key = self.self_key();
        let form = format!("prevExist=false&value={}", query_escape(config));
        let resp = self
            .endpoint
            .send("PUT", &key, Some(form), Some(REQUEST_TIMEOUT))
            .await
            .map_err(DiscoveryError::Url)?;
        let created = match keys_answer(resp) {
            Ok(a) => a.node.created_index,
            Err(Failure::Fatal(e)) if e.is_node_exist() => return Err(DiscoveryError::DuplicateId),
            Err(Failure::Fatal(e)) => return Err(e),
            Err(Failure::Transient(t)) => return Err(DiscoveryError::Url(t.0)),
        };
        let path = format!("{key}?wait=true&waitIndex={created}");
        let resp = self.endpoint.send("GET", &path, None, None).await;
        match resp
            .map_err(|e| Failure::Transient(Transient(e)))
            .and_then(keys_answer)
        {
            Ok(_) => Ok(()),
            Err(Failure::Fatal(e)) => Err(e),
            Err(Failure::Transient(t)) => Err(DiscoveryError::Url(t.0)),
        }
    }

    /// etcd's `checkCluster` with its retries.
    async fn check_cluster(&mut self) -> Result<Registered, DiscoveryError> {
        loop {
            match self.check_cluster_once().await {
                Ok(r) => return Ok(r),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Transient(t)) => {
                    self.backoff.wait("cluster status check", &t.0).await?
                }
            }
        }
    }

    async fn check_cluster_once(&mut self) -> Result<Registered, Failure> {
        let size_key = format!("{}/_config/size", self.cluster);
        let size = match self.get(&size_key).await {
            Ok(a) => parse_size(&a.node.value)?,
            Err(Failure::Fatal(DiscoveryError::Url(e))) if e == INVALID_JSON => {
                return Err(DiscoveryError::BadDiscoveryEndpoint.into())
            }
            Err(e) => return Err(e),
        };
        let dir = self.get(&self.cluster.clone()).await?;
        let mut nodes: Vec<Node> = dir
            .node
            .nodes
            .into_iter()
            .filter(|n| base(&n.key) != "_config")
            .collect();
        nodes.sort_by_key(|n| n.created_index);
        let me = format!("{:x}", self.id);
        for (i, n) in nodes.iter().enumerate() {
            if base(&n.key) == me {
                break;
            }
            if i as u64 >= size.wrapping_sub(1) {
                return Err(DiscoveryError::FullCluster.into());
            }
        }
        Ok(Registered {
            nodes,
            size,
            index: dir.index,
        })
    }

    async fn get(&self, key: &str) -> Result<Answer, Failure> {
        let path = format!("{key}?quorum=false&recursive=false&sorted=false");
        let resp = self
            .endpoint
            .send("GET", &path, None, Some(REQUEST_TIMEOUT))
            .await;
        match resp {
            Err(e) if e == "context deadline exceeded" => Err(DiscoveryError::Url(e).into()),
            Err(e) => Err(Failure::Transient(Transient(e))),
            Ok(r) => keys_answer(r),
        }
    }

    /// etcd's `waitNodes` (and `waitNodesRetry`): watch the directory until `size`
    /// members registered.
    async fn wait_nodes(&mut self, mut reg: Registered) -> Result<Vec<Node>, DiscoveryError> {
        loop {
            match self.wait_nodes_once(&mut reg).await {
                Ok(all) => return Ok(all),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Transient(t)) => {
                    self.backoff.wait("waiting for other nodes", &t.0).await?;
                    reg = self.check_cluster().await?;
                }
            }
        }
    }

    async fn wait_nodes_once(&mut self, reg: &mut Registered) -> Result<Vec<Node>, Failure> {
        let size = reg.size;
        let mut all: Vec<Node> = reg.nodes.iter().take(size as usize).cloned().collect();
        let me = format!("{:x}", self.id);
        for n in &all {
            let who = if base(&n.key) == me { "self" } else { "peer" };
            tracing::info!(peer = %base(&n.key), "found {who} from discovery server");
        }
        let mut after = reg.index;
        while (all.len() as u64) < size {
            tracing::info!(
                found_peers = all.len(),
                needed_peers = size - all.len() as u64,
                "found peers from discovery server; waiting for more"
            );
            let path = format!(
                "{}?wait=true&waitIndex={}&recursive=true",
                self.cluster,
                after + 1
            );
            let resp = self.endpoint.send("GET", &path, None, None).await;
            let answer = resp
                .map_err(|e| Failure::Transient(Transient(e)))
                .and_then(keys_answer)?;
            tracing::info!(peer = %base(&answer.node.key), "found peer from discovery server");
            after = answer.node.modified_index;
            all.push(answer.node);
        }
        tracing::info!(
            found_peers = all.len(),
            "found all needed peers from discovery server"
        );
        Ok(all)
    }
}

/// Go's v2 client's `ErrInvalidJSON`.
const INVALID_JSON: &str =
    "client: response is invalid json. The endpoint is probably not valid etcd cluster endpoint.";

/// A keys API response: the node, a v2 error, or (5xx) a failure worth retrying.
fn keys_answer(resp: Response) -> Result<Answer, Failure> {
    let invalid = || Failure::Fatal(DiscoveryError::Url(INVALID_JSON.to_string()));
    match resp.status {
        200 | 201 => {
            let r: KeysResponse = serde_json::from_slice(&resp.body).map_err(|_| invalid())?;
            Ok(Answer {
                node: r.node,
                index: resp.etcd_index,
            })
        }
        s if s >= 500 => Err(Failure::Transient(Transient(format!(
            "client: etcd member returned {s}"
        )))),
        _ => {
            let e: KeysError = serde_json::from_slice(&resp.body).map_err(|_| invalid())?;
            Err(Failure::Fatal(DiscoveryError::Keys {
                code: e.code,
                message: e.message,
                cause: e.cause,
                index: e.index,
            }))
        }
    }
}

/// For the `fuzz/` crate (feature `fuzzing` only): what discovery takes from a keys API
/// answer with `status` and `body`: the node, the size in its value, and its children
/// joined as the initial cluster of that size. Errors are discarded.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub fn read_keys_answer(status: u16, body: &[u8]) {
    let resp = Response {
        status,
        etcd_index: 0,
        body: bytes::Bytes::copy_from_slice(body),
    };
    if let Ok(answer) = keys_answer(resp) {
        let size = parse_size(&answer.node.value).unwrap_or(0);
        let _ = nodes_to_cluster(&answer.node.nodes, size);
    }
}

/// `strconv.ParseUint(v, 10, 0)`: digits only.
fn parse_size(v: &str) -> Result<u64, DiscoveryError> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DiscoveryError::BadSizeKey);
    }
    v.parse().map_err(|_| DiscoveryError::BadSizeKey)
}

/// etcd's `nodesToCluster`: the registrations joined; each must parse and name a
/// distinct member.
fn nodes_to_cluster(nodes: &[Node], size: u64) -> Result<String, DiscoveryError> {
    let joined = nodes
        .iter()
        .map(|n| n.value.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let m = InitialCluster::parse(&joined).map_err(|_| DiscoveryError::InvalidUrl)?;
    if m.len() as u64 != size {
        return Err(DiscoveryError::DuplicateName);
    }
    Ok(joined)
}

/// etcd's `newProxyFunc`: `host:port` of the proxy, trying `http://` in front of a bare
/// address.
fn proxy_authority(proxy: &str) -> Result<Option<String>, DiscoveryError> {
    if proxy.is_empty() {
        return Ok(None);
    }
    let parsed = match Url::parse_go(proxy) {
        Ok(u) if u.scheme.starts_with("http") => Ok(u),
        first => Url::parse_go(&format!("http://{proxy}")).or(first.and(Err(String::new()))),
    };
    let u = parsed.map_err(|e| DiscoveryError::Proxy(proxy.to_string(), e))?;
    tracing::info!(proxy_url = %proxy, "running proxy with discovery");
    Ok(Some(with_default_port(&u)))
}

fn with_default_port(u: &Url) -> String {
    if !u.port().is_empty() {
        return u.host.clone();
    }
    let port = if u.scheme == "https" { 443 } else { 80 };
    format!("{}:{port}", u.host)
}

/// `path.Join("/", p)`: rooted, no trailing or doubled slashes.
fn clean_path(p: &str) -> String {
    let parts: Vec<&str> = p
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

/// `path.Base`.
fn base(key: &str) -> &str {
    key.trim_end_matches('/').rsplit('/').next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(key: &str, value: &str, created: u64) -> Node {
        Node {
            key: key.into(),
            value: value.into(),
            created_index: created,
            modified_index: created,
            ..Node::default()
        }
    }

    #[test]
    fn registrations_become_the_initial_cluster() {
        let nodes = [
            node("/_etcd/registry/t/1", "a=http://127.0.0.1:1", 5),
            node("/_etcd/registry/t/2", "b=http://127.0.0.1:2", 6),
        ];
        assert_eq!(
            nodes_to_cluster(&nodes, 2).unwrap(),
            "a=http://127.0.0.1:1,b=http://127.0.0.1:2"
        );
        let dup = [
            node("/_etcd/registry/t/1", "a=http://127.0.0.1:1", 5),
            node("/_etcd/registry/t/2", "a=http://127.0.0.1:2", 6),
        ];
        assert_eq!(
            nodes_to_cluster(&dup, 2).unwrap_err().to_string(),
            "discovery: found duplicate name"
        );
        let bad = [node("/_etcd/registry/t/1", "a=foo", 5)];
        assert_eq!(
            nodes_to_cluster(&bad, 1).unwrap_err().to_string(),
            "discovery: invalid URL"
        );
    }

    #[test]
    fn sizes_and_urls_as_etcd() {
        assert_eq!(parse_size("3").unwrap(), 3);
        for bad in ["", "abc", "+3", "-1", "3 "] {
            assert!(
                matches!(parse_size(bad), Err(DiscoveryError::BadSizeKey)),
                "{bad}"
            );
        }
        let d = V2Discovery::new(
            "http://127.0.0.1:2379/v2/keys/_etcd/registry/tok/",
            "",
            0x1f,
        )
        .unwrap();
        assert_eq!(d.cluster, "/v2/keys/_etcd/registry/tok");
        assert_eq!(d.self_key(), "/v2/keys/_etcd/registry/tok/1f");
        assert_eq!(d.endpoint.authority, "127.0.0.1:2379");
        let e = V2Discovery::new("http://[::1", "", 1).err().unwrap();
        assert_eq!(e.to_string(), "parse \"http://[::1\": missing ']' in host");
        let e = V2Discovery::new("foo", "", 1).err().unwrap();
        assert_eq!(e.to_string(), "unsupported protocol scheme \"\"");
        let p = V2Discovery::new("http://h/x", "127.0.0.1:3128", 1).unwrap();
        assert_eq!(p.endpoint.proxy.as_deref(), Some("127.0.0.1:3128"));
        assert_eq!(query_escape("a=http://h:1,b"), "a%3Dhttp%3A%2F%2Fh%3A1%2Cb");
    }

    #[test]
    fn keys_errors_read_as_gos_client() {
        let e = DiscoveryError::Keys {
            code: 100,
            message: "Key not found".into(),
            cause: "/_etcd".into(),
            index: 3,
        };
        assert_eq!(e.to_string(), "100: Key not found (/_etcd) [3]");
    }
}

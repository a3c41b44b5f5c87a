//! etcd's `GetClusterFromRemotePeers` for the v2 proxy: the cluster as the first peer
//! URL that answers sees it (chorus members answer the peer port's `Members` RPC), and
//! the members' client URLs that requests go to.

use std::time::Duration;

use chorus_server::peer::PeerDialer;

/// etcd asks each peer for at most this long.
const ASK_TIMEOUT: Duration = Duration::from_secs(10);

/// The members' peer and client URLs, each sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCluster {
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
}

/// Why no peer told us the cluster.
#[derive(Debug, thiserror::Error)]
#[error("could not retrieve cluster information from the given URLs: {0}")]
pub struct NoClusterInfo(String);

/// Asks the peer URLs in order.
pub async fn from_peers(
    dialer: &PeerDialer,
    peer_urls: &[String],
) -> Result<RemoteCluster, NoClusterInfo> {
    let mut failures = Vec::new();
    for url in peer_urls {
        match dialer.ask_members(url, ASK_TIMEOUT).await {
            Ok(r) => {
                let mut peer_urls: Vec<String> =
                    r.members.iter().flat_map(|m| m.peer_urls.clone()).collect();
                let mut client_urls: Vec<String> = r
                    .members
                    .iter()
                    .flat_map(|m| m.client_urls.clone())
                    .collect();
                peer_urls.sort();
                client_urls.sort();
                return Ok(RemoteCluster {
                    peer_urls,
                    client_urls,
                });
            }
            Err(e) => failures.push(format!("{url}: {e}")),
        }
    }
    Err(NoClusterInfo(failures.join("; ")))
}

//! The initial cluster of a member that has none yet, from `--discovery-srv`,
//! `--discovery` (v2) or `--discovery-endpoints`/`--discovery-token` (v3), as etcd's
//! `PeerURLsMapAndToken` and `bootstrapNewClusterNoWAL` find it:
//!
//! ```text
//!   SRV:    records ─▶ --initial-cluster (this member must be among them)
//!   v2/v3:  --initial-cluster = name=<advertised peer urls>, token = the URL / the token
//!           ─▶ this member's ID ─▶ register and wait ─▶ --initial-cluster = the registrations
//! ```
//!
//! The result is the configuration the rest of the bootstrap reads, unchanged otherwise.

use chorus_config::{Config, DiscoveryFallback, InitialCluster};
use chorus_discovery::srv::{self, SrvError, SrvQuery};
use chorus_discovery::{v2, v3, DiscoveryError, Resolver};

use super::error::StartError;

/// The configuration to bootstrap with, and the peers' TLS server name when it is the
/// `--discovery-srv` domain.
pub struct Discovered {
    pub cfg: Config,
    pub peer_server_name: Option<String>,
}

/// The bootstrap configuration: `cfg` itself unless a discovery flag is set.
pub async fn discover(cfg: &Config) -> Result<Discovered, StartError> {
    if !cfg.discovery_srv.is_empty() {
        return from_srv(cfg).await;
    }
    let v3 = &cfg.discovery_cfg;
    let token = if !cfg.discovery.is_empty() {
        cfg.discovery.clone()
    } else if !v3.endpoints.is_empty() {
        v3.token.clone()
    } else {
        return Ok(unchanged(cfg));
    };
    // etcd's temporary cluster: this member alone, its ID derived from the token.
    let mut own = cfg.clone();
    own.initial_cluster = cfg.initial_cluster_from_name(&cfg.name);
    own.initial_cluster_token = token;
    if !own.is_new_cluster() {
        return Ok(unchanged(&own));
    }
    let registered = join(&own).await.inspect_err(|e| log_failure(&own, e))?;
    let ic = InitialCluster::parse(&registered).map_err(StartError::DiscoveredCluster)?;
    if ic.has_duplicate_url() {
        return Err(StartError::DiscoveredDuplicateUrl(ic.to_string()));
    }
    own.initial_cluster = registered;
    Ok(unchanged(&own))
}

fn unchanged(cfg: &Config) -> Discovered {
    Discovered {
        cfg: cfg.clone(),
        peer_server_name: None,
    }
}

/// Registers this member with the v2 or v3 discovery service and waits for the others.
async fn join(own: &Config) -> Result<String, StartError> {
    let boot = own.bootstrap_cluster()?;
    let registration = own.initial_cluster_map()?.to_string();
    let joined = if !own.discovery.is_empty() {
        tracing::warn!("V2 discovery is deprecated!");
        v2::join_cluster(
            &own.discovery,
            &own.discovery_proxy,
            boot.local_id,
            &registration,
        )
        .await
    } else {
        tracing::info!("Bootstrapping cluster using v3 discovery.");
        v3::join_cluster(&own.discovery_cfg, boot.local_id, &registration).await
    };
    joined.map_err(StartError::Discovery)
}

/// etcd's warnings after a failed discovery (etcdmain), and chorus's about the proxy
/// fallback it does not have.
fn log_failure(cfg: &Config, e: &StartError) {
    let StartError::Discovery(err) = e else {
        return;
    };
    let token = if cfg.discovery.is_empty() {
        &cfg.discovery_cfg.token
    } else {
        &cfg.discovery
    };
    match err {
        DiscoveryError::DuplicateId => {
            tracing::warn!(name = %cfg.name, discovery_token = %token, error = %err, "member has been registered with discovery service");
            tracing::warn!(data_dir = %cfg.data_dir.display(), "but could not find valid cluster configuration");
            tracing::warn!("check data dir if previous bootstrap succeeded");
            tracing::warn!("or use a new discovery token if previous bootstrap failed");
        }
        DiscoveryError::DuplicateName => {
            tracing::warn!(discovery_token = %token, error = %err, "member with duplicated name has already been registered");
            tracing::warn!("cURL the discovery token URL for details");
            tracing::warn!(
                "do not reuse discovery token; generate a new one to bootstrap a cluster"
            );
        }
        _ => {
            if matches!(err, DiscoveryError::FullCluster)
                && !cfg.discovery.is_empty()
                && cfg.discovery_fallback == DiscoveryFallback::Proxy
            {
                tracing::warn!("discovery cluster is full: chorus has no v2 proxy to fall back to (--discovery-fallback=proxy); exiting");
            }
            tracing::warn!(discovery_token = %token, error = %e, "failed to bootstrap; discovery token was already used");
            tracing::warn!(
                "do not reuse discovery token; generate a new one to bootstrap a cluster"
            );
        }
    }
}

/// etcd's DNS case of `PeerURLsMapAndToken`.
async fn from_srv(cfg: &Config) -> Result<Discovered, StartError> {
    let setup = |e: SrvError| StartError::InitialCluster(e.into());
    let resolver = Resolver::from_env().map_err(|e| setup(SrvError::Resolver(e)))?;
    let query = SrvQuery {
        name: &cfg.name,
        domain: &cfg.discovery_srv,
        service_name: &cfg.discovery_srv_name,
        advertise_peer_urls: &cfg.initial_advertise_peer_urls,
    };
    let (names, err) = srv::cluster_names(&resolver, &query).await;
    if let Some(e) = &err {
        tracing::warn!(error = %e, "failed to resolve during SRV discovery");
    }
    if names.is_empty() {
        return Err(setup(
            err.unwrap_or(SrvError::NoLocalMember(cfg.name.clone())),
        ));
    }
    for node in &names {
        tracing::info!(node = %node, "got bootstrap from DNS for etcd-server");
    }
    let joined = names.join(",");
    let ic = InitialCluster::parse(&joined).map_err(StartError::DiscoveredCluster)?;
    if ic.get(&cfg.name).is_none() {
        return Err(setup(SrvError::NoLocalMember(cfg.name.clone())));
    }
    let secure = joined.contains("https://") && cfg.peer_tls.trusted_ca_file.is_empty();
    let mut out = cfg.clone();
    out.initial_cluster = joined;
    Ok(Discovered {
        cfg: out,
        peer_server_name: secure.then(|| cfg.discovery_srv.clone()),
    })
}

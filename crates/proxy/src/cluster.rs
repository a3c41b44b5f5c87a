//! The Cluster service of the proxy and its self-registration (etcd's
//! `grpcproxy/cluster.go` and `register.go`).
//!
//! As etcd's proxy, `MemberList` names proxies, not members, so that clients which sync
//! their endpoints from the member list keep talking to proxies: the proxies registered
//! under `--resolver-prefix`, or this proxy alone (host name, `--advertise-client-url`).
//! Membership changes are forwarded.
//!
//! Registration: a lease of `--resolver-ttl` seconds, kept alive every third of it, and
//! `<prefix>/<advertise-client-url>` = `{"Op":0,"Addr":"<url>","Metadata":"{\"name\":\"<host>\"}"}`
//! under it (etcd 3.4's gRPC naming record). When the lease is lost (member restart,
//! partition) a new one is made, at most once a second; on shutdown it is revoked.

use std::time::Duration;

use chorus_api::etcdserverpb::{
    cluster_client::ClusterClient, cluster_server::Cluster, Member, MemberListRequest,
    MemberListResponse, *,
};
use chorus_client::{GetOptions, PutOptions};
use tonic::{Request, Response, Status};

use crate::forward::forwarding;
use crate::upstream::{forward, Retry, Upstream};
use crate::Shutdown;

/// The Cluster service of the proxy.
pub struct ClusterProxy {
    pub up: Upstream,
    pub advertise: String,
    pub prefix: String,
}

/// This machine's name (etcd's `os.Hostname()`).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The registration record of `addr`.
pub fn registration_value(addr: &str) -> String {
    let meta = serde_json::json!({ "name": hostname() }).to_string();
    serde_json::json!({ "Op": 0, "Addr": addr, "Metadata": meta }).to_string()
}

fn member_from_record(value: &[u8]) -> Option<Member> {
    let v: serde_json::Value = serde_json::from_slice(value).ok()?;
    let addr = v.get("Addr")?.as_str()?.to_string();
    let meta: serde_json::Value = serde_json::from_str(v.get("Metadata")?.as_str()?).ok()?;
    Some(Member {
        name: meta.get("name")?.as_str()?.to_string(),
        client_ur_ls: vec![addr],
        ..Default::default()
    })
}

impl ClusterProxy {
    async fn registered(&self) -> Result<Vec<Member>, Status> {
        let opts = GetOptions {
            prefix: true,
            serializable: true,
            ..Default::default()
        };
        let resp = self
            .up
            .client()
            .get(format!("{}/", self.prefix), opts)
            .await
            .map_err(|e| {
                e.status()
                    .cloned()
                    .unwrap_or_else(|| Status::unavailable(e.to_string()))
            })?;
        Ok(resp
            .kvs
            .iter()
            .filter_map(|kv| member_from_record(&kv.value))
            .collect())
    }
}

forwarding! { impl Cluster for ClusterProxy; ClusterClient; {

    async fn member_list(
        &self,
        request: Request<MemberListRequest>,
    ) -> Result<Response<MemberListResponse>, Status> {
        if self.advertise.is_empty() {
            let (md, _, req) = request.into_parts();
            let resp = self
                .up
                .call(Retry::Read, |ch| {
                    let r = forward(&md, req);
                    async move { ClusterClient::new(ch).max_decoding_message_size(usize::MAX).member_list(r).await }
                })
                .await?;
            return Ok(Response::new(resp));
        }
        if !self.prefix.is_empty() {
            let members = self.registered().await?;
            if !members.is_empty() {
                return Ok(Response::new(MemberListResponse {
                    members,
                    ..Default::default()
                }));
            }
        }
        Ok(Response::new(MemberListResponse {
            members: vec![Member {
                name: hostname(),
                client_ur_ls: vec![self.advertise.clone()],
                ..Default::default()
            }],
            ..Default::default()
        }))
    }
}
    member_add(MemberAddRequest) -> MemberAddResponse, Retry::Write;
    member_remove(MemberRemoveRequest) -> MemberRemoveResponse, Retry::Write;
    member_update(MemberUpdateRequest) -> MemberUpdateResponse, Retry::Write;
    member_promote(MemberPromoteRequest) -> MemberPromoteResponse, Retry::Write;
}

/// Keeps this proxy registered under `prefix` until shutdown, then revokes the lease.
pub async fn register(
    up: Upstream,
    prefix: String,
    addr: String,
    ttl: i64,
    mut shutdown: Shutdown,
) {
    let key = format!("{prefix}/{addr}");
    let value = registration_value(&addr);
    let mut retry = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = retry.tick() => {}
        }
        let lease = match up.client().lease_grant(ttl, 0).await {
            Ok(l) => l.id,
            Err(e) => {
                tracing::warn!("failed to create a session: {e}");
                continue;
            }
        };
        let put = PutOptions {
            lease,
            ..Default::default()
        };
        if let Err(e) = up.client().put(key.clone(), value.clone(), put).await {
            tracing::warn!("failed to register {key}: {e}");
            let _ = up.client().lease_revoke(lease).await;
            continue;
        }
        tracing::info!(addr = %addr, lease_ttl = ttl, "registered session with lease");
        let stopped = tokio::select! {
            _ = shutdown.wait() => true,
            _ = keep_alive(&up, lease, ttl) => false,
        };
        if stopped {
            let _ = up.client().lease_revoke(lease).await;
            return;
        }
        tracing::warn!("session expired; possible network partition or server restart");
        tracing::warn!("creating a new session to rejoin");
    }
}

/// Keeps `lease` alive every `ttl / 3`; returns when it is gone or unreachable for
/// longer than its TTL.
async fn keep_alive(up: &Upstream, lease: i64, ttl: i64) {
    let period = Duration::from_millis((ttl.max(1) as u64) * 1000 / 3);
    let deadline = Duration::from_secs(ttl.max(1) as u64);
    let mut last_ok = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(period).await;
        match up.client().lease_keep_alive(lease).await {
            Ok((_, mut stream)) => match stream.message().await {
                Ok(Some(r)) if r.ttl > 0 => last_ok = tokio::time::Instant::now(),
                Ok(Some(_)) => return,
                _ => {}
            },
            Err(e) => tracing::debug!("registration keep-alive: {e}"),
        }
        if last_ok.elapsed() > deadline {
            return;
        }
    }
}

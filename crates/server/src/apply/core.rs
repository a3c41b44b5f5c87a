//! The core applier (etcd's `applierV3backend`): one dispatch over the replicated
//! requests, each kind a short function over the stores.

use std::sync::Arc;

use chorus_api::etcdserverpb::{
    CompactionRequest, CompactionResponse, LeaseCheckpointRequest, LeaseCheckpointResponse,
    LeaseGrantRequest, LeaseGrantResponse, LeaseRevokeRequest, LeaseRevokeResponse, ResponseHeader,
};
use chorus_api::internalpb::internal_request::Request;
use chorus_api::internalpb::V2Request;
use chorus_storage::mvcc::{RangeEnd, TxnWrite};
use parking_lot::{Mutex, RwLock};

use super::chain::{Apply, Batch, Origin};
use super::error::ApplyError;
use super::result::{Applied, ApplyResult};
use super::{alarm, members, version};
use crate::alarm::Alarms;
use crate::error::EtcdError;
use crate::kv::{self, LeaseChanges};
use crate::lease::{GrantError, Lessor};
use crate::membership::SharedCluster;
use crate::v2::V2Store;

/// The stores the core applier writes besides the backend transaction.
pub struct Core {
    pub lessor: Arc<Mutex<Lessor>>,
    pub cluster: Arc<SharedCluster>,
    pub alarms: Arc<RwLock<Alarms>>,
    pub v2: Arc<RwLock<V2Store>>,
}

fn header(revision: i64) -> Option<ResponseHeader> {
    Some(ResponseHeader {
        revision,
        ..Default::default()
    })
}

impl Apply for Core {
    fn apply(
        &mut self,
        b: &mut Batch<'_, '_, '_>,
        _origin: &Origin<'_>,
        req: Request,
    ) -> Result<ApplyResult, ApplyError> {
        if matches!(req, Request::Put(_)) {
            // Robustness builds only: a mutant that answers a put with success without
            // applying it, to show that the robustness checker catches a lost write.
            fail::fail_point!("applyDropPut", |_| Ok(Ok(Applied::Put(Default::default()))));
        }
        Ok(match req {
            Request::Put(p) => self.kv_write(b, |t, lessor, moved| {
                kv::put(t, &p, lessor, moved).map(Applied::Put)
            }),
            Request::DeleteRange(d) => self.kv_write(b, |t, _, moved| {
                kv::delete_range(t, &d, moved).map(Applied::DeleteRange)
            }),
            Request::Txn(r) => self.kv_write(b, |t, lessor, moved| {
                kv::txn(t, &r, lessor, moved).map(Applied::Txn)
            }),
            Request::LeaseGrant(g) => self.lease_grant(b, g)?,
            Request::LeaseRevoke(r) => self.lease_revoke(b, r)?,
            Request::LeaseCheckpoint(c) => self.lease_checkpoint(b, c)?,
            Request::Compaction(c) => compaction(b, c),
            Request::MemberAttributes(a) => members::set_attributes(b, &self.cluster, &self.v2, a)?,
            Request::MemberPeerUrls(u) => members::update_peer_urls(b, &self.cluster, &self.v2, u)?,
            Request::DowngradeInfoSet(d) => members::set_downgrade(b, &self.cluster, d)?,
            Request::ClusterVersionSet(v) => {
                version::set_cluster_version(b, &self.cluster, &self.v2, v)?
            }
            Request::V2(r) => self.v2(b, &r),
            Request::Alarm(a) => alarm::apply(b, &self.alarms, a)?,
            // Auth requests are answered by the auth layer above; none reach the core.
            other => Err(EtcdError::Unimplemented(format!(
                "{} is not applied by the core applier",
                super::chain::request_kind(&other)
            ))),
        })
    }
}

impl Core {
    /// Runs one etcd transaction (a Put, DeleteRange or Txn) and moves the lease
    /// attachments of the keys it wrote.
    fn kv_write(
        &self,
        b: &mut Batch<'_, '_, '_>,
        op: impl FnOnce(&mut TxnWrite<'_, '_, '_>, &Lessor, &mut LeaseChanges) -> ApplyResult,
    ) -> ApplyResult {
        let mut lessor = self.lessor.lock();
        let mut moved = LeaseChanges::new();
        let result = op(&mut b.kv.txn(), &lessor, &mut moved);
        for (key, lease) in moved {
            lessor.attach(&key, lease);
        }
        result
    }

    fn lease_grant(
        &self,
        b: &mut Batch<'_, '_, '_>,
        g: LeaseGrantRequest,
    ) -> Result<ApplyResult, ApplyError> {
        match self.lessor.lock().grant(b.tx, g.id, g.ttl) {
            Ok(ttl) => Ok(Ok(Applied::LeaseGrant(LeaseGrantResponse {
                header: header(b.kv.rev()),
                id: g.id,
                ttl,
                error: String::new(),
            }))),
            Err(GrantError::Etcd(e)) => Ok(Err(e)),
            Err(GrantError::Backend(e)) => Err(e.into()),
        }
    }

    /// Deletes every key attached to the lease in one revision, then the lease.
    fn lease_revoke(
        &self,
        b: &mut Batch<'_, '_, '_>,
        r: LeaseRevokeRequest,
    ) -> Result<ApplyResult, ApplyError> {
        let mut lessor = self.lessor.lock();
        let Some(keys) = lessor.keys(r.id) else {
            return Ok(Err(EtcdError::LeaseNotFound));
        };
        let mut t = b.kv.txn();
        for k in &keys {
            t.delete_range(k, RangeEnd::Single)?;
        }
        let rev = t.rev();
        lessor.remove(b.tx, r.id)?;
        Ok(Ok(Applied::LeaseRevoke(LeaseRevokeResponse {
            header: header(rev),
        })))
    }

    fn lease_checkpoint(
        &self,
        b: &mut Batch<'_, '_, '_>,
        c: LeaseCheckpointRequest,
    ) -> Result<ApplyResult, ApplyError> {
        let mut lessor = self.lessor.lock();
        for cp in &c.checkpoints {
            lessor.checkpoint(b.tx, cp.id, cp.remaining_ttl)?;
        }
        Ok(Ok(Applied::LeaseCheckpoint(LeaseCheckpointResponse {
            header: header(b.kv.rev()),
        })))
    }

    fn v2(&self, b: &mut Batch<'_, '_, '_>, r: &V2Request) -> ApplyResult {
        b.effects.v2_changed = true;
        Ok(Applied::V2(crate::v2::apply(&mut self.v2.write(), r)))
    }
}

/// Records the compaction in the batch; it runs in the background once committed.
fn compaction(b: &mut Batch<'_, '_, '_>, c: CompactionRequest) -> ApplyResult {
    let cur = b.kv.rev();
    b.kv.store().schedule_compaction(b.tx, c.revision, cur)?;
    b.effects.compactions.push(c.revision);
    Ok(Applied::Compaction(CompactionResponse {
        header: header(cur),
    }))
}

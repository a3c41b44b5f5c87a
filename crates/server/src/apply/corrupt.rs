//! While the CORRUPT alarm is raised the data of some member cannot be trusted: writes
//! are refused everywhere with `etcdserver: corrupt cluster` (etcd's `applierV3Corrupt`)
//! until an operator disarms it; alarm requests still go through.

use std::sync::Arc;

use chorus_api::etcdserverpb::AlarmType;
use chorus_api::internalpb::internal_request::Request;
use parking_lot::RwLock;

use super::chain::{Apply, Batch, Origin};
use super::error::ApplyError;
use super::result::ApplyResult;
use crate::alarm::Alarms;
use crate::error::EtcdError;

pub struct Corrupt<A> {
    alarms: Arc<RwLock<Alarms>>,
    inner: A,
}

impl<A: Apply> Corrupt<A> {
    pub fn new(alarms: Arc<RwLock<Alarms>>, inner: A) -> Self {
        Corrupt { alarms, inner }
    }
}

/// What etcd's corrupt applier refuses.
fn refused(req: &Request) -> bool {
    matches!(
        req,
        Request::Put(_)
            | Request::DeleteRange(_)
            | Request::Txn(_)
            | Request::Compaction(_)
            | Request::LeaseGrant(_)
            | Request::LeaseRevoke(_)
    )
}

impl<A: Apply> Apply for Corrupt<A> {
    fn apply(
        &mut self,
        batch: &mut Batch<'_, '_, '_>,
        origin: &Origin<'_>,
        req: Request,
    ) -> Result<ApplyResult, ApplyError> {
        if refused(&req) && self.alarms.read().is_active(AlarmType::Corrupt) {
            return Ok(Err(EtcdError::Corrupt));
        }
        self.inner.apply(batch, origin, req)
    }
}

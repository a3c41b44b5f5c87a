//! While the NOSPACE alarm is raised, requests that add data are refused (etcd's
//! `applierV3Capped`); everything else, deletes and compactions included, goes through so
//! that an operator can free space.

use std::sync::Arc;

use chorus_api::etcdserverpb::AlarmType;
use chorus_api::internalpb::internal_request::Request;
use parking_lot::RwLock;

use super::chain::{Apply, Batch, Origin};
use super::error::ApplyError;
use super::result::ApplyResult;
use crate::alarm::{Alarms, QuotaCost};
use crate::error::EtcdError;

pub struct Capped<A> {
    alarms: Arc<RwLock<Alarms>>,
    inner: A,
}

impl<A: Apply> Capped<A> {
    pub fn new(alarms: Arc<RwLock<Alarms>>, inner: A) -> Self {
        Capped { alarms, inner }
    }
}

/// Whether a request grows the backend.
fn adds_data(req: &Request) -> bool {
    match req {
        Request::Put(_) | Request::LeaseGrant(_) => true,
        Request::Txn(t) => t.cost() > 0,
        _ => false,
    }
}

impl<A: Apply> Apply for Capped<A> {
    fn apply(
        &mut self,
        batch: &mut Batch<'_, '_, '_>,
        origin: &Origin<'_>,
        req: Request,
    ) -> Result<ApplyResult, ApplyError> {
        if adds_data(&req) && self.alarms.read().is_active(AlarmType::Nospace) {
            return Ok(Err(EtcdError::NoSpace));
        }
        self.inner.apply(batch, origin, req)
    }
}

//! The auth applier (etcd's `authApplierV3`): once auth is enabled, every request is
//! checked against the user in its proposal's header, in log order on every member, so
//! that a permission revoked before a write in the log refuses that write everywhere.
//! Auth requests themselves (users, roles, enable, authenticate) are applied here.

use std::sync::Arc;

use chorus_api::internalpb::internal_request::Request;
use chorus_auth::{AuthInfo, AuthStore};
use parking_lot::Mutex;

use super::chain::{Apply, Batch, Origin};
use super::error::ApplyError;
use super::result::{Applied, ApplyResult};
use crate::error::EtcdError;
use crate::lease::Lessor;

pub struct Guarded<A> {
    auth: Arc<AuthStore>,
    lessor: Arc<Mutex<Lessor>>,
    inner: A,
}

impl<A: Apply> Guarded<A> {
    pub fn new(auth: Arc<AuthStore>, lessor: Arc<Mutex<Lessor>>, inner: A) -> Self {
        Guarded {
            auth,
            lessor,
            inner,
        }
    }

    /// The keys attached to a lease, for etcd's lease rules.
    fn lease_keys(&self, id: i64) -> Option<Vec<Vec<u8>>> {
        if id == 0 {
            return None;
        }
        self.lessor.lock().keys(id)
    }
}

impl<A: Apply> Apply for Guarded<A> {
    fn apply(
        &mut self,
        b: &mut Batch<'_, '_, '_>,
        origin: &Origin<'_>,
        req: Request,
    ) -> Result<ApplyResult, ApplyError> {
        let is_auth = chorus_auth::is_auth_request(&req);
        // With auth off, only auth requests need this layer (the hot path skips it).
        if !is_auth && !self.auth.is_enabled() {
            return self.inner.apply(b, origin, req);
        }
        let ai = AuthInfo::from_header(origin.header);
        let leases = |id: i64| self.lease_keys(id);
        if let Err(e) = self.auth.check_request(&ai, &req, &leases) {
            return Ok(Err(EtcdError::Auth(e)));
        }
        let login = matches!(req, Request::Authenticate(_));
        match self.auth.apply_request(b.tx, &req, origin.index) {
            Some(result) => {
                // Password checks read the committed backend: commit before answering.
                b.effects.auth_changed |= result.is_ok() && !login;
                Ok(result.map(Applied::Auth).map_err(EtcdError::Auth))
            }
            None => self.inner.apply(b, origin, req),
        }
    }
}

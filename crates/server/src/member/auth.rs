//! Auth on the member: who a request is from (a token, or the verified client
//! certificate's common name), the checks etcd makes before proposing or reading, and the
//! Auth service's calls. Changes go through raft; the apply layer checks every request
//! against the user its proposal carries (`apply/auth.rs`).
//!
//! ```text
//!   token ─(simple: wait until its index is applied here)─▶ AuthStore ─▶ AuthInfo
//!   client cert CN (with --client-cert-auth, not through the gateway) ─▶ AuthInfo
//!   UserAdd / ChangePassword: bcrypt on a blocking thread ─▶ propose the hash
//!   Authenticate: ReadIndex ─▶ check the password (blocking) ─▶ propose the token prefix
//!                 ─▶ applied at the revision checked? ─ no ─▶ again ─ yes ─▶ issue token
//! ```

use std::time::Duration;

use chorus_api::etcdserverpb::*;
use chorus_api::internalpb::internal_request::Request;
use chorus_auth::{AuthError, AuthInfo, Authenticated};

use super::credentials::{Credentials, HasHeader};
use super::{Member, Who};
use crate::error::EtcdError;

impl Member {
    /// Who the request is from: `None` without credentials or while auth is off.
    pub async fn caller(&self, creds: Credentials<'_>) -> Result<Option<AuthInfo>, EtcdError> {
        if let Some(token) = creds.token {
            self.wait_token_applied(token).await?;
            return Ok(self.auth.auth_info_from_token(token)?);
        }
        match creds.common_name {
            Some(cn) if self.limits.client_cert_auth && self.auth.is_enabled() => {
                Ok(Some(AuthInfo {
                    username: cn.to_string(),
                    revision: self.auth.revision(),
                }))
            }
            _ => Ok(None),
        }
    }

    /// A simple token is known on a member once the entry that created it is applied
    /// there (etcd's index waiter).
    async fn wait_token_applied(&self, token: &str) -> Result<(), EtcdError> {
        let Some(index) = chorus_auth::simple_token_index(token) else {
            return Ok(());
        };
        let mut applied = self.applied.clone();
        let wait = async { applied.wait_for(|a| *a >= index).await.map(|_| ()) };
        match tokio::time::timeout(self.limits.request_timeout, wait).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(EtcdError::Stopped),
            Err(_) => Err(EtcdError::Auth(AuthError::InvalidAuthToken)),
        }
    }

    /// Any authenticated user (once auth is on): leases, status, alarm lists, the member
    /// list (etcd's requireAuthInfo, GHSA-q8m4-xhhv-38mg).
    pub fn require_auth(&self, who: Who<'_>) -> Result<(), EtcdError> {
        if who.is_none() && self.auth.is_enabled() {
            return Err(AuthError::UserEmpty.into());
        }
        Ok(())
    }

    /// Watching `[key, range_end)` needs read permission on it (an empty key is `"\0"`).
    pub fn check_watch(&self, who: Who<'_>, key: &[u8], range_end: &[u8]) -> Result<(), EtcdError> {
        let key = if key.is_empty() { &[0u8][..] } else { key };
        Ok(self.auth.is_range_permitted(who, key, range_end)?)
    }

    /// Only a user with the root role (once auth is on): maintenance and membership.
    pub fn check_admin(&self, who: Who<'_>) -> Result<(), EtcdError> {
        Ok(self.auth.is_admin_permitted(who)?)
    }

    /// The identity the member's own requests use once auth is on (lease expiry).
    pub fn root_identity(&self) -> Option<AuthInfo> {
        self.auth.is_enabled().then(|| AuthInfo {
            username: chorus_auth::ROOT_USER.to_string(),
            revision: self.auth.revision(),
        })
    }

    pub fn auth_store(&self) -> &chorus_auth::AuthStore {
        &self.auth
    }

    /// Runs CPU-heavy auth work (bcrypt) off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&chorus_auth::AuthStore) -> Result<T, AuthError> + Send + 'static,
    ) -> Result<T, EtcdError> {
        let auth = self.auth.clone();
        tokio::task::spawn_blocking(move || f(&auth))
            .await
            .map_err(|e| EtcdError::Internal(e.to_string()))?
            .map_err(EtcdError::from)
    }

    /// Checks the password, proposes the token prefix, and answers with a token once the
    /// entry applied at the revision the password was checked at (etcd's retry loop).
    pub async fn authenticate(
        &self,
        r: AuthenticateRequest,
    ) -> Result<AuthenticateResponse, EtcdError> {
        self.linearizable_read().await?;
        for _ in 0..AUTHENTICATE_ATTEMPTS {
            let backend = self.kv().backend().clone();
            let req = r.clone();
            let (entry, checked) = self
                .blocking(move |auth| auth.prepare_authenticate(&backend, req))
                .await?;
            let applied: Authenticated =
                self.propose_as(None, Request::Authenticate(entry)).await?;
            if applied.revision != checked {
                tracing::info!("revision when password checked became stale; retrying");
                continue;
            }
            let token = self.auth.issue_token(&applied)?;
            return Ok(AuthenticateResponse {
                header: Some(self.current_header()),
                token,
            });
        }
        Err(EtcdError::Timeout)
    }

    pub async fn user_add(
        &self,
        who: Who<'_>,
        r: AuthUserAddRequest,
    ) -> Result<AuthUserAddResponse, EtcdError> {
        let r = self.blocking(move |auth| auth.prepare_user_add(r)).await?;
        self.auth_call(who, Request::AuthUserAdd(r)).await
    }

    pub async fn user_change_password(
        &self,
        who: Who<'_>,
        r: AuthUserChangePasswordRequest,
    ) -> Result<AuthUserChangePasswordResponse, EtcdError> {
        let r = self
            .blocking(move |auth| auth.prepare_user_change_password(r))
            .await?;
        self.auth_call(who, Request::AuthUserChangePassword(r))
            .await
    }

    /// Any other Auth call: proposed as it is (apply checks the caller and answers).
    pub async fn auth_call<R: crate::apply::Reply + HasHeader>(
        &self,
        who: Who<'_>,
        request: Request,
    ) -> Result<R, EtcdError> {
        let mut resp: R = self.propose_as(who, request).await?;
        *resp.header_mut() = Some(self.current_header());
        Ok(resp)
    }

    /// Every second: expired simple tokens go (and new ones start their clock).
    pub(super) async fn token_loop(self: std::sync::Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        while !self.is_stopping() {
            tick.tick().await;
            self.auth.purge_expired_tokens();
        }
    }
}

/// How often Authenticate proposes again when the auth store changed under it.
const AUTHENTICATE_ATTEMPTS: usize = 8;

//! [`Session`]: a lease kept alive in the background, the liveness behind every recipe.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{RecipeError, Result};
use crate::Client;

/// etcd's default session TTL, seconds (`concurrency.NewSession` without `WithTTL`).
pub const DEFAULT_SESSION_TTL: i64 = 60;

/// A lease with a background task that renews it every TTL/3 (as etcd's client does).
///
/// Keys that recipes create for this session are attached to the lease, so when the
/// process dies or is cut off the server deletes them once the TTL runs out and the
/// others go on. The keep-alive stream is re-opened (over the client's endpoints, so on
/// another member if need be) when it breaks; once the lease is known to be gone, or no
/// renewal got through within a whole TTL, the session is over: [`Session::done`] resolves.
///
/// Dropping a session stops the keep-alives without revoking: its keys live until the
/// TTL runs out. [`Session::close`] revokes the lease, deleting its keys at once.
pub struct Session {
    client: Client,
    lease: i64,
    ttl: i64,
    done: watch::Receiver<bool>,
    keep_alive: JoinHandle<()>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("lease", &format_args!("{:x}", self.lease))
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl Session {
    /// Grants a lease of `ttl` seconds and starts keeping it alive.
    pub async fn new(client: &Client, ttl: i64) -> Result<Session> {
        let granted = client.lease_grant(ttl, 0).await?;
        Ok(Self::from_lease(client, granted.id, granted.ttl.max(1)))
    }

    /// Keeps an existing lease (of `ttl` seconds) alive as a session.
    pub fn from_lease(client: &Client, lease: i64, ttl: i64) -> Session {
        let (set_done, done) = watch::channel(false);
        let keep_alive = tokio::spawn(keep_alive(client.clone(), lease, ttl, set_done));
        Session {
            client: client.clone(),
            lease,
            ttl,
            done,
            keep_alive,
        }
    }

    /// The session's lease ID.
    pub fn lease(&self) -> i64 {
        self.lease
    }

    /// The lease's TTL in seconds.
    pub fn ttl(&self) -> i64 {
        self.ttl
    }

    /// The client the session (and the recipes made from it) talk through.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Resolves once the session is over: the lease expired or was revoked, or it could not
    /// be renewed for a whole TTL, or keep-alives were stopped ([`Session::orphan`]).
    pub async fn done(&self) {
        let mut done = self.done.clone();
        // An error means the keep-alive task is gone, which also ends the session.
        let _ = done.wait_for(|over| *over).await;
    }

    /// Whether [`Session::done`] would resolve now.
    pub fn is_done(&self) -> bool {
        *self.done.borrow() || self.keep_alive.is_finished()
    }

    /// Stops renewing the lease without revoking it (etcd's `Orphan`): the session's keys
    /// go when the TTL runs out, as if this process had died.
    pub fn orphan(&self) {
        self.keep_alive.abort();
    }

    /// Stops renewing and revokes the lease: every key of the session is deleted now.
    pub async fn close(self) -> Result<()> {
        self.keep_alive.abort();
        match self.client.lease_revoke(self.lease).await {
            Ok(_) => Ok(()),
            // Already gone: closing an expired session is not an error.
            Err(e) if e.code() == Some(tonic::Code::NotFound) => Ok(()),
            Err(e) => Err(RecipeError::from(e)),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.keep_alive.abort();
    }
}

/// Renews `lease` every `ttl / 3` until the server says it is gone or no renewal succeeded
/// for `ttl` seconds; then marks the session done.
async fn keep_alive(client: Client, lease: i64, ttl: i64, done: watch::Sender<bool>) {
    let ttl = Duration::from_secs(ttl as u64);
    let period = (ttl / 3).max(Duration::from_millis(500));
    let mut expires = Instant::now() + ttl;
    'reopen: while Instant::now() < expires {
        let Ok((sender, mut answers)) = client.lease_keep_alive(lease).await else {
            // No member reachable right now; try again shortly, until the lease is lost.
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        loop {
            match tokio::time::timeout_at(expires, answers.message()).await {
                Ok(Ok(Some(answer))) if answer.ttl > 0 => {
                    expires = Instant::now() + Duration::from_secs(answer.ttl as u64);
                }
                // The server says the lease no longer exists.
                Ok(Ok(Some(_))) => break 'reopen,
                // Stream broken or ended: open another, maybe on another member.
                Ok(Ok(None)) | Ok(Err(_)) => continue 'reopen,
                // No answer before the lease would have expired.
                Err(_) => break 'reopen,
            }
            tokio::time::sleep(period).await;
            if sender.keep_alive().await.is_err() {
                continue 'reopen;
            }
        }
    }
    let _ = done.send(true);
}

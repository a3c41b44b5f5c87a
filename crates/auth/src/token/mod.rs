//! Token providers (`--auth-token`): etcd's `simple` tokens (state on every member, filled
//! in by apply), `jwt` (stateless, signed), or none.

pub mod jwt;
pub mod options;
pub mod simple;

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::error::{AuthError, AuthOptionsError};
use crate::store::AuthInfo;

pub use jwt::JwtTokens;
pub use options::{JwtOptions, TokenOptions};
pub use simple::{gen_token_prefix, simple_token_index, SimpleTokens};

#[derive(Debug)]
pub enum TokenProvider {
    /// `--auth-token=` (empty): nothing authenticates.
    Nop,
    Simple(SimpleTokens),
    Jwt(JwtTokens),
}

impl std::fmt::Debug for SimpleTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimpleTokens")
            .field("ttl", &self.ttl())
            .field("tokens", &self.len())
            .finish()
    }
}

impl TokenProvider {
    /// Builds the provider `--auth-token` names; `simple_ttl` is `--auth-token-ttl` (a zero
    /// TTL means etcd's 300 s). Reads JWT key files.
    pub fn new(
        opts: &TokenOptions,
        simple_ttl: Duration,
        clock: Arc<dyn Clock>,
    ) -> Result<TokenProvider, AuthOptionsError> {
        Ok(match opts {
            TokenOptions::Nop => TokenProvider::Nop,
            TokenOptions::Simple => {
                tracing::warn!("simple token is not cryptographically signed");
                TokenProvider::Simple(SimpleTokens::new(simple_ttl, clock))
            }
            TokenOptions::Jwt(j) => TokenProvider::Jwt(JwtTokens::new(j, clock)?),
        })
    }

    /// Parses `--auth-token` and builds the provider in one step.
    pub fn from_flag(
        auth_token: &str,
        simple_ttl: Duration,
        clock: Arc<dyn Clock>,
    ) -> Result<TokenProvider, AuthOptionsError> {
        TokenProvider::new(&TokenOptions::parse(auth_token)?, simple_ttl, clock)
    }

    pub(crate) fn enable(&self) {
        if let TokenProvider::Simple(s) = self {
            s.enable();
        }
    }

    pub(crate) fn disable(&self) {
        if let TokenProvider::Simple(s) = self {
            s.disable();
        }
    }

    pub(crate) fn invalidate_user(&self, user: &str) {
        if let TokenProvider::Simple(s) = self {
            s.invalidate_user(user);
        }
    }

    /// The 16 letters a proposer puts in an Authenticate entry (empty unless simple).
    pub fn gen_token_prefix(&self) -> String {
        match self {
            TokenProvider::Simple(_) => gen_token_prefix(),
            _ => String::new(),
        }
    }

    /// The user and revision a token stands for. A simple token's revision is the store's
    /// current one (`current_revision`), as etcd's is.
    pub(crate) fn info(&self, token: &str, current_revision: u64) -> Option<AuthInfo> {
        match self {
            TokenProvider::Nop => None,
            TokenProvider::Simple(s) => {
                simple_token_index(token)?;
                s.user_of(token).map(|username| AuthInfo {
                    username,
                    revision: current_revision,
                })
            }
            TokenProvider::Jwt(j) => j.info(token),
        }
    }

    /// The token a client gets after a successful Authenticate entry was applied.
    pub(crate) fn issue(&self, applied: &crate::Authenticated) -> Result<String, AuthError> {
        match self {
            TokenProvider::Nop => Err(AuthError::AuthFailed),
            TokenProvider::Simple(_) => applied.simple_token.clone().ok_or(AuthError::AuthFailed),
            TokenProvider::Jwt(j) => j.sign(&applied.username, applied.revision),
        }
    }
}

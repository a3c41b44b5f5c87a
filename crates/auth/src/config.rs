//! The auth flags as a plain struct (`--auth-token`, `--auth-token-ttl`, `--bcrypt-cost`),
//! with etcd's defaults; clap and serde stay at the server's edge.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::error::AuthOptionsError;
use crate::password::DEFAULT_BCRYPT_COST;
use crate::store::AuthConfig;
use crate::token::{TokenOptions, TokenProvider};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthOptions {
    /// `--auth-token`: `simple` (default), `jwt,...`, or empty for none.
    pub auth_token: String,
    /// `--auth-token-ttl`: a simple token's life after its last use (default 300 s).
    pub auth_token_ttl: Duration,
    /// `--bcrypt-cost` (default 10; outside 4..=31 the default is used, as etcd does).
    pub bcrypt_cost: u32,
}

impl Default for AuthOptions {
    fn default() -> Self {
        AuthOptions {
            auth_token: "simple".into(),
            auth_token_ttl: Duration::from_secs(300),
            bcrypt_cost: DEFAULT_BCRYPT_COST,
        }
    }
}

impl AuthOptions {
    /// Checks `--auth-token` without reading key files.
    pub fn validate(&self) -> Result<(), AuthOptionsError> {
        TokenOptions::parse(&self.auth_token).map(|_| ())
    }

    /// Builds the store's configuration: parses `--auth-token` and reads its key files.
    pub fn build(&self, clock: Arc<dyn Clock>) -> Result<AuthConfig, AuthOptionsError> {
        let tokens = TokenProvider::from_flag(&self.auth_token, self.auth_token_ttl, clock)?;
        Ok(AuthConfig {
            bcrypt_cost: self.bcrypt_cost,
            tokens,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;

    #[test]
    fn defaults_are_etcds() {
        let o = AuthOptions::default();
        assert_eq!(o.auth_token, "simple");
        assert_eq!(o.auth_token_ttl, Duration::from_secs(300));
        assert_eq!(o.bcrypt_cost, 10);
        assert_eq!(o.validate(), Ok(()));
        let c = o.build(Arc::new(SystemClock::default())).unwrap();
        assert!(matches!(c.tokens, TokenProvider::Simple(_)));
    }

    #[test]
    fn validate_refuses_bad_token_options() {
        let o = AuthOptions {
            auth_token: "jwt,sign-method=nope".into(),
            ..Default::default()
        };
        assert_eq!(
            o.validate().unwrap_err().to_string(),
            "auth: invalid auth options"
        );
    }
}

//! Authentication as etcd's `clientv3` does it: a user name and password in the options,
//! `Auth.Authenticate` for a token, the token as gRPC metadata `token` on every call, and
//! a new token (once per call) when the server says the old one is no good.
//!
//! ```text
//!   Credentials ─ connect ─> Auth.Authenticate (no token sent) ─> TokenState
//!                                                                  │ (token, generation)
//!   every call: TokenInterceptor reads TokenState ─> metadata "token: <token>"
//!   a call refused with `invalid auth token`, `revision of auth store is old` or
//!   `user name is empty` ─> refresh(generation seen by the call) ─> the call once more
//!        (concurrent refusals of the same token share one Authenticate)
//! ```
//!
//! Neither the password nor the token is printed by `Debug` or logged.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use chorus_api::etcdserverpb::auth_client::AuthClient;
use chorus_api::etcdserverpb::AuthenticateRequest;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};

use crate::client::{Client, Retry};
use crate::error::{Error, Result};

/// The gRPC metadata key etcd reads the token from (`rpctypes.TokenFieldNameGRPC`).
pub const TOKEN_METADATA_KEY: &str = "token";

/// etcd's answers that mean "get a new token and try again" (clientv3's
/// `shouldRefreshToken`): the token expired or was revoked, the auth store changed under
/// it, or no token reached the server.
const REFRESH_ON: &[&str] = &[
    crate::messages::INVALID_AUTH_TOKEN,
    crate::messages::AUTH_OLD_REVISION,
    crate::messages::USER_EMPTY,
];

/// A channel whose calls carry the client's current token (if any).
pub type AuthChannel = InterceptedService<Channel, TokenInterceptor>;

/// A user name and password for etcd's `Auth.Authenticate`. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    user: String,
    password: String,
}

impl Credentials {
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            password: password.into(),
        }
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The password (to send it; never print it).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// clientv3 authenticates only when both the user name and the password are set.
    pub(crate) fn usable(&self) -> bool {
        !self.user.is_empty() && !self.password.is_empty()
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The current token, shared by every clone of a [`Client`] and by its raw clients.
#[derive(Default)]
pub(crate) struct TokenState {
    token: RwLock<Option<MetadataValue<Ascii>>>,
    /// Bumped on every change of the token: a call that failed with generation `g`
    /// refreshes only if no one else has since.
    generation: AtomicU64,
    /// One Authenticate at a time.
    refresh: tokio::sync::Mutex<()>,
}

impl TokenState {
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn current(&self) -> Option<MetadataValue<Ascii>> {
        self.token.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, token: Option<MetadataValue<Ascii>>) {
        *self.token.write().unwrap_or_else(|e| e.into_inner()) = token;
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn has_token(&self) -> bool {
        self.token
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }
}

/// Adds metadata `token` to each request (unary or stream) while the client has a token.
/// `TokenInterceptor::default()` never has one (a channel of a client without
/// credentials).
#[derive(Clone, Default)]
pub struct TokenInterceptor {
    state: std::sync::Arc<TokenState>,
}

impl TokenInterceptor {
    pub(crate) fn new(state: std::sync::Arc<TokenState>) -> Self {
        Self { state }
    }
}

impl std::fmt::Debug for TokenInterceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenInterceptor")
            .field("has_token", &self.state.has_token())
            .finish()
    }
}

impl tonic::service::Interceptor for TokenInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(token) = self.state.current() {
            request.metadata_mut().insert(TOKEN_METADATA_KEY, token);
        }
        Ok(request)
    }
}

/// A token for channels the caller dials itself (chorus-bench's connections), kept the
/// way a [`Client`] keeps its own: wrap the channel with [`TokenSource::channel`] so its
/// calls carry the token, get one with [`TokenSource::authenticate`], and after a refused
/// token ([`is_token_refused`]) [`TokenSource::refresh`] it. `Debug` shows no secret.
#[derive(Clone)]
pub struct TokenSource {
    credentials: Credentials,
    state: std::sync::Arc<TokenState>,
}

impl TokenSource {
    pub fn new(credentials: Credentials) -> Self {
        Self {
            credentials,
            state: std::sync::Arc::default(),
        }
    }

    /// `channel`, its calls carrying this source's token.
    pub fn channel(&self, channel: Channel) -> AuthChannel {
        InterceptedService::new(channel, TokenInterceptor::new(self.state.clone()))
    }

    /// The number of tokens had so far: read it before a call, pass it to `refresh`.
    pub fn generation(&self) -> u64 {
        self.state.generation()
    }

    /// `Auth.Authenticate` over `channel` (the raw one: no token is sent); the token is
    /// then used by every channel this source wrapped. On `etcdserver: authentication is
    /// not enabled` calls carry no token (and the error is returned).
    pub async fn authenticate(&self, channel: Channel) -> Result<()> {
        let req = AuthenticateRequest {
            name: self.credentials.user.clone(),
            password: self.credentials.password.clone(),
        };
        match AuthClient::new(channel).authenticate(req).await {
            Ok(resp) => {
                self.state.set(Some(token_value(&resp.into_inner().token)?));
                Ok(())
            }
            Err(status) => {
                if status.message() == crate::messages::AUTH_NOT_ENABLED {
                    self.state.set(None);
                }
                Err(Error::from(status))
            }
        }
    }

    /// A new token, unless another caller got one since generation `seen`.
    pub async fn refresh(&self, channel: Channel, seen: u64) -> Result<()> {
        let _one_at_a_time = self.state.refresh.lock().await;
        if self.state.generation() != seen {
            return Ok(());
        }
        self.authenticate(channel).await
    }
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("credentials", &self.credentials)
            .field("has_token", &self.state.has_token())
            .finish()
    }
}

/// Whether a status asks for a new token (clientv3's `shouldRefreshToken`).
pub fn is_token_refused(status: &Status) -> bool {
    REFRESH_ON.contains(&status.message())
}

/// A token as a metadata value, marked sensitive (never HPACK-indexed, `Debug` hides it).
fn token_value(token: &str) -> Result<MetadataValue<Ascii>> {
    let mut value = MetadataValue::try_from(token).map_err(|_| Error::InvalidToken)?;
    value.set_sensitive(true);
    Ok(value)
}

impl Client {
    /// The user this client authenticates as (`None`: no credentials, or clientv3's
    /// "no authentication" case of an empty user name or password).
    pub fn user(&self) -> Option<&str> {
        self.inner.credentials.as_ref().map(Credentials::user)
    }

    /// Whether the client holds a token now.
    pub fn has_token(&self) -> bool {
        self.inner.tokens.has_token()
    }

    /// Asks for a token now (`Auth.Authenticate`, sent without the old token, failing over
    /// to the next endpoint like a read) and uses it for every later call. Errors are the
    /// server's (`etcdserver: authentication failed, invalid user ID or password`;
    /// `etcdserver: authentication is not enabled`, after which calls carry no token) or
    /// the transport's; [`Error::NoCredentials`] without credentials.
    pub async fn authenticate(&self) -> Result<()> {
        self.with_timeout(self.authenticate_once()).await
    }

    async fn authenticate_once(&self) -> Result<()> {
        let creds = self
            .inner
            .credentials
            .as_ref()
            .ok_or(Error::NoCredentials)?;
        let req = AuthenticateRequest {
            name: creds.user.clone(),
            password: creds.password.clone(),
        };
        let answer = self
            .attempts(Retry::Immutable, |ch| {
                let req = req.clone();
                async move { AuthClient::new(ch).authenticate(req).await }
            })
            .await;
        match answer {
            Ok(resp) => {
                self.inner.tokens.set(Some(token_value(&resp.token)?));
                tracing::debug!(user = %creds.user, "authenticated");
                Ok(())
            }
            Err(e) => {
                if e.message() == Some(crate::messages::AUTH_NOT_ENABLED) {
                    self.inner.tokens.set(None);
                }
                Err(e)
            }
        }
    }

    /// What [`Client::connect`] does with credentials: authenticate, retrying while no
    /// endpoint can be reached, until `limit` passes ([`Error::Timeout`]). A server
    /// without authentication enabled is no error (calls then carry no token), as in
    /// clientv3.
    pub(crate) async fn authenticate_within(&self, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        // Bounded by the deadline; one pass over the endpoints per round.
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.authenticate_once()).await {
                Err(_) => return Err(Error::Timeout(limit)),
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) if e.message() == Some(crate::messages::AUTH_NOT_ENABLED) => {
                    return Ok(())
                }
                Ok(Err(e)) if e.is_transport_error() => {
                    let pause = Duration::from_millis(100).min(left);
                    if pause.is_zero() {
                        return Err(Error::Timeout(limit));
                    }
                    tokio::time::sleep(pause).await;
                }
                Ok(Err(e)) => return Err(e),
            }
        }
    }

    /// Whether `err` asks for a new token (clientv3's `shouldRefreshToken`) and this client
    /// has credentials to get one.
    pub fn is_token_error(&self, err: &Error) -> bool {
        self.inner.credentials.is_some() && err.status().is_some_and(is_token_refused)
    }

    /// Gets a new token unless another call already did since generation `seen` (read
    /// before the failed call was sent).
    pub(crate) async fn refresh_token(&self, seen: u64) -> Result<()> {
        let _one_at_a_time = self.inner.tokens.refresh.lock().await;
        if self.inner.tokens.generation() != seen {
            return Ok(());
        }
        tracing::debug!("the token was refused; authenticating again");
        self.authenticate_once().await
    }

    /// Runs `call` and, if the server refuses the token, gets a new one and runs it once
    /// more (clientv3's retry interceptor). For callers of the raw clients
    /// (`kv_client()`, ...), whose calls carry the token but are not retried by
    /// themselves.
    pub async fn with_token_retry<T, F, Fut>(&self, mut call: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let seen = self.inner.tokens.generation();
        match call().await {
            Err(e) if self.is_token_error(&e) => {
                self.refresh_token(seen).await?;
                call().await
            }
            other => other,
        }
    }

    /// A raw channel wrapped so that its calls carry the token.
    pub(crate) fn authed(&self, channel: Channel) -> AuthChannel {
        InterceptedService::new(channel, TokenInterceptor::new(self.inner.tokens.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::service::Interceptor;

    #[test]
    fn debug_hides_the_password() {
        let c = Credentials::new("root", "s3cret-pw");
        let text = format!("{c:?}");
        assert!(text.contains("root"), "{text}");
        assert!(!text.contains("s3cret-pw"), "{text}");
    }

    #[test]
    fn the_interceptor_adds_the_token_only_when_there_is_one() {
        let state = std::sync::Arc::new(TokenState::default());
        let mut i = TokenInterceptor::new(state.clone());
        let r = i.call(Request::new(())).unwrap();
        assert!(r.metadata().get(TOKEN_METADATA_KEY).is_none());
        state.set(Some(token_value("abcDEF.42").unwrap()));
        let r = i.call(Request::new(())).unwrap();
        assert_eq!(r.metadata().get(TOKEN_METADATA_KEY).unwrap(), "abcDEF.42");
        let shown = format!("{i:?} {:?}", r.metadata());
        assert!(!shown.contains("abcDEF"), "{shown}");
        assert_eq!(state.generation(), 1);
    }

    #[test]
    fn a_token_that_is_no_header_value_is_refused() {
        assert!(matches!(token_value("a\nb"), Err(Error::InvalidToken)));
    }

    #[test]
    fn empty_user_or_password_means_no_authentication() {
        assert!(Credentials::new("u", "p").usable());
        assert!(!Credentials::new("", "p").usable());
        assert!(!Credentials::new("u", "").usable());
    }
}

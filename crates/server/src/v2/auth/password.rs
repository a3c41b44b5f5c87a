//! Passwords of v2 users: bcrypt (etcd 3.4's cost 10, `$2a$`), hashed on the member that
//! proposes the change, never in apply, and checked for every request that carries HTTP
//! basic credentials. Both take ~50-60 ms of CPU, so they run on tokio's blocking pool,
//! at most [`MAX_CONCURRENT_BCRYPT`] at a time (a flood of bad passwords waits its turn
//! instead of taking every core or a thread each).
//!
//! A password verified once for a stored hash is remembered (as an HMAC under a key drawn
//! at start-up, never in clear), so later requests with it skip bcrypt: measured here,
//! bcrypt at cost 10 takes ~60 ms of a core per check, so without this every request with
//! credentials costs that, and two cores serve some thirty of them a second (etcd 3.4 has
//! no such cache). Only successes are remembered, so a wrong password always pays bcrypt
//! in full; a new password is a new hash, so a changed password is never matched from
//! memory; the map holds at most [`MAX_VERIFIED`] hashes.
//!
//! Deliberately stricter than etcd 3.4, whose bcrypt hashes only the first 72 bytes: a
//! longer password is refused when set, and never matches when presented. A user that does
//! not exist costs a bcrypt check all the same, so that the time of a refusal does not tell
//! whether the name exists (etcd answers those at once).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use chorus_auth::{hash_password, verify_password, Password, DEFAULT_BCRYPT_COST};
use parking_lot::Mutex;
use ring::hmac;
use tokio::sync::Semaphore;

use super::error::AuthError;

/// bcrypt runs at once on at most this many blocking threads.
pub const MAX_CONCURRENT_BCRYPT: usize = 4;
/// The longest password bcrypt uses whole.
pub const MAX_PASSWORD_BYTES: usize = 72;
/// Stored hashes with a remembered password, at most.
pub const MAX_VERIFIED: usize = 1024;

pub struct Passwords {
    cost: u32,
    permits: Arc<Semaphore>,
    /// A hash to check unknown users against, so that they cost what known ones do.
    decoy: Arc<OnceLock<String>>,
    /// Stored hash -> HMAC of the password that matched it.
    verified: Mutex<HashMap<String, hmac::Tag>>,
    key: hmac::Key,
}

impl Default for Passwords {
    fn default() -> Self {
        Passwords::new(DEFAULT_BCRYPT_COST)
    }
}

impl Passwords {
    /// bcrypt at `cost` (etcd 3.4: 10; tests use the minimum, 4).
    pub fn new(cost: u32) -> Passwords {
        Passwords {
            cost,
            permits: Arc::new(Semaphore::new(MAX_CONCURRENT_BCRYPT)),
            decoy: Arc::default(),
            verified: Mutex::new(HashMap::new()),
            key: hmac::Key::generate(hmac::HMAC_SHA256, &ring::rand::SystemRandom::new())
                .expect("the system's random source"),
        }
    }

    /// Runs `f` on the blocking pool once a permit is free.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| AuthError::Internal(e.to_string()))
    }

    /// The stored form of `user`'s new `password`.
    pub async fn hash(&self, user: &str, password: &str) -> Result<String, AuthError> {
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(AuthError::PasswordTooLong(user.to_string()));
        }
        let (p, cost) = (Password::new(password), self.cost);
        self.blocking(move || hash_password(&p, cost))
            .await?
            .map_err(|e| AuthError::Internal(e.to_string()))
    }

    /// Whether `password` (raw bytes from the request) matches `stored_hash`; `None` for a
    /// user that does not exist, which is checked against a decoy to take as long.
    pub async fn check(&self, stored_hash: Option<&str>, password: &[u8]) -> bool {
        let usable = password.len() <= MAX_PASSWORD_BYTES;
        let password = std::str::from_utf8(password).ok().filter(|_| usable);
        let known = stored_hash.is_some() && password.is_some();
        if let (Some(h), Some(p)) = (stored_hash, password) {
            let remembered = self.verified.lock().get(h).copied();
            if remembered
                .is_some_and(|tag| hmac::verify(&self.key, p.as_bytes(), tag.as_ref()).is_ok())
            {
                return true;
            }
        }
        let hash = stored_hash.map(str::to_string);
        let p = Password::new(password.unwrap_or_default());
        let (cost, decoy) = (self.cost, self.decoy.clone());
        let matched = self
            .blocking(move || {
                let hash = hash.unwrap_or_else(|| {
                    decoy
                        .get_or_init(|| {
                            hash_password(&Password::new("chorus: no such user"), cost)
                                .unwrap_or_default()
                        })
                        .clone()
                });
                verify_password(&p, hash.as_bytes())
            })
            .await;
        let matched = known && matched.unwrap_or(false);
        if let (true, Some(h), Some(p)) = (matched, stored_hash, password) {
            let mut verified = self.verified.lock();
            if verified.len() >= MAX_VERIFIED {
                verified.clear();
            }
            verified.insert(h.to_string(), hmac::sign(&self.key, p.as_bytes()));
        }
        matched
    }

    /// How many stored hashes have a remembered password (tests).
    pub fn remembered(&self) -> usize {
        self.verified.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_and_checks_off_the_executor() {
        let p = Passwords::new(4);
        let h = p.hash("u", "s3cret").await.unwrap();
        assert!(h.starts_with("$2a$04$"), "{h}");
        assert!(p.check(Some(&h), b"s3cret").await);
        assert!(!p.check(Some(&h), b"s3cre").await);
        assert!(!p.check(None, b"s3cret").await);
        assert!(!p.check(Some(&h), b"s3cret\xff").await);
        assert!(!p.check(Some("not a hash"), b"s3cret").await);
    }

    #[tokio::test]
    async fn remembers_successes_only() {
        let p = Passwords::new(4);
        let h = p.hash("u", "right").await.unwrap();
        assert!(!p.check(Some(&h), b"wrong").await);
        assert_eq!(p.remembered(), 0);
        assert!(p.check(Some(&h), b"right").await);
        assert_eq!(p.remembered(), 1);
        assert!(p.check(Some(&h), b"right").await, "from memory");
        assert!(
            !p.check(Some(&h), b"wrong").await,
            "a wrong password is never remembered"
        );
        let other = p.hash("u", "right").await.unwrap();
        assert!(
            p.check(Some(&other), b"right").await,
            "a new hash is checked anew"
        );
        assert_eq!(p.remembered(), 2);
    }

    #[tokio::test]
    async fn refuses_what_bcrypt_would_cut() {
        let p = Passwords::new(4);
        let long = "a".repeat(MAX_PASSWORD_BYTES + 1);
        assert_eq!(
            p.hash("u", &long).await,
            Err(AuthError::PasswordTooLong("u".into()))
        );
        let h = p.hash("u", &long[..MAX_PASSWORD_BYTES]).await.unwrap();
        assert!(
            p.check(Some(&h), &long.as_bytes()[..MAX_PASSWORD_BYTES])
                .await
        );
        assert!(
            !p.check(Some(&h), long.as_bytes()).await,
            "etcd 3.4 lets this in"
        );
    }
}

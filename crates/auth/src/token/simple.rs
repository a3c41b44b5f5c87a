//! etcd's simple tokens: `<16 random letters>.<raft index>`. The proposer picks the letters
//! ([`gen_token_prefix`]); apply, on every member, joins them with the entry's index and
//! records the token, so any member can resolve it. Expiry is local to each member, as in
//! etcd: a token lives `ttl` (default 300 s) after its last use.
//!
//! Apply reads no clock: a token recorded by apply has no deadline until it is first used
//! or the periodic [`SimpleTokens::purge_expired`] sweep (the server runs it every second,
//! etcd's `simpleTokenTTLResolution`) stamps it with `now + ttl`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rand::Rng as _;

use crate::clock::Clock;

/// etcd's `simpleTokenTTLDefault`.
pub const DEFAULT_SIMPLE_TOKEN_TTL: Duration = Duration::from_secs(300);
const PREFIX_LEN: usize = 16;
const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// 16 letters from the OS's CSPRNG (etcd uses `crypto/rand`).
pub fn gen_token_prefix() -> String {
    let mut rng = rand::rngs::OsRng;
    (0..PREFIX_LEN)
        .map(|_| LETTERS[rng.gen_range(0..LETTERS.len())] as char)
        .collect()
}

/// The raft index a well-formed simple token names: a member must have applied it before
/// the token can be known there (etcd's `indexWaiter`). `None` when the token is not of the
/// `<prefix>.<index>` form.
pub fn simple_token_index(token: &str) -> Option<u64> {
    // Exactly two parts, the second decimal digits only (Go's `ParseUint` takes no sign).
    let (_prefix, index) = token.split_once('.')?;
    if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    index.parse().ok()
}

struct Entry {
    user: String,
    /// `None` until first used or swept (see the module docs).
    expires: Option<Duration>,
}

#[derive(Default)]
struct Inner {
    enabled: bool,
    tokens: HashMap<String, Entry>,
}

pub struct SimpleTokens {
    ttl: Duration,
    clock: Arc<dyn Clock>,
    inner: Mutex<Inner>,
}

impl SimpleTokens {
    /// A zero `ttl` means the default, as etcd's `--auth-token-ttl=0` does.
    pub fn new(ttl: Duration, clock: Arc<dyn Clock>) -> SimpleTokens {
        let ttl = if ttl.is_zero() {
            DEFAULT_SIMPLE_TOKEN_TTL
        } else {
            ttl
        };
        SimpleTokens {
            ttl,
            clock,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn enable(&self) {
        self.inner.lock().enabled = true;
    }

    /// Forgets every token (etcd's `disable`).
    pub fn disable(&self) {
        let mut inner = self.inner.lock();
        inner.enabled = false;
        inner.tokens.clear();
    }

    /// Records `token` for `user` (apply). Ignored while disabled, as etcd's is.
    pub fn assign(&self, user: &str, token: String) {
        let mut inner = self.inner.lock();
        if !inner.enabled {
            return;
        }
        let entry = Entry {
            user: user.to_owned(),
            expires: None,
        };
        tracing::debug!(user_name = user, token = %token, "authenticated a user");
        inner.tokens.insert(token, entry);
    }

    /// The user a live token belongs to, refreshing its TTL (etcd's `info` + `reset`).
    pub fn user_of(&self, token: &str) -> Option<String> {
        let now = self.clock.monotonic();
        let mut inner = self.inner.lock();
        let entry = inner.tokens.get_mut(token)?;
        if entry.expires.is_some_and(|e| now >= e) {
            tracing::info!(user_name = %entry.user, token, "deleted a simple token");
            inner.tokens.remove(token);
            return None;
        }
        entry.expires = Some(now + self.ttl);
        Some(entry.user.clone())
    }

    /// Drops every token of `user` (its password changed or it was deleted).
    pub fn invalidate_user(&self, user: &str) {
        self.inner.lock().tokens.retain(|_, e| e.user != user);
    }

    /// Drops expired tokens and starts the TTL of tokens not yet used; returns how many
    /// were dropped.
    pub fn purge_expired(&self) -> usize {
        let now = self.clock.monotonic();
        let mut inner = self.inner.lock();
        let before = inner.tokens.len();
        inner.tokens.retain(|token, e| match e.expires {
            Some(at) if now >= at => {
                tracing::info!(user_name = %e.user, token = %token, "deleted a simple token");
                false
            }
            Some(_) => true,
            None => {
                e.expires = Some(now + self.ttl);
                true
            }
        });
        before - inner.tokens.len()
    }

    pub fn len(&self) -> usize {
        self.inner.lock().tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn tokens(ttl: u64) -> (Arc<ManualClock>, SimpleTokens) {
        let clock = Arc::new(ManualClock::new(1_700_000_000));
        let t = SimpleTokens::new(Duration::from_secs(ttl), clock.clone());
        t.enable();
        (clock, t)
    }

    #[test]
    fn prefix_is_16_letters() {
        let p = gen_token_prefix();
        assert_eq!(p.len(), 16);
        assert!(p.bytes().all(|b| b.is_ascii_alphabetic()), "{p}");
        assert_ne!(p, gen_token_prefix());
    }

    #[test]
    fn index_of_token() {
        assert_eq!(simple_token_index("abcdefghijklmnop.42"), Some(42));
        assert_eq!(simple_token_index("abc.0"), Some(0));
        assert_eq!(simple_token_index("abc"), None);
        assert_eq!(simple_token_index("abc.4.2"), None);
        assert_eq!(simple_token_index("abc.x"), None);
        assert_eq!(simple_token_index("abc.-1"), None);
        assert_eq!(simple_token_index("abc.+1"), None);
        assert_eq!(simple_token_index("abc."), None);
        assert_eq!(
            simple_token_index("eyJhbGciOiJSUzI1NiJ9.eyJ1c2VyIjoxfQ.sig"),
            None
        );
    }

    #[test]
    fn expires_after_ttl_without_use() {
        let (clock, t) = tokens(300);
        t.assign("alice", "p.5".into());
        assert_eq!(t.purge_expired(), 0); // stamps the deadline: now + 300 s
        clock.advance(Duration::from_secs(299));
        assert_eq!(t.purge_expired(), 0);
        clock.advance(Duration::from_secs(1));
        assert_eq!(t.purge_expired(), 1);
        assert_eq!(t.user_of("p.5"), None);
    }

    #[test]
    fn use_refreshes_the_ttl() {
        let (clock, t) = tokens(10);
        t.assign("alice", "p.5".into());
        assert_eq!(t.user_of("p.5").as_deref(), Some("alice"));
        for _ in 0..5 {
            clock.advance(Duration::from_secs(9));
            assert_eq!(t.user_of("p.5").as_deref(), Some("alice"));
        }
        clock.advance(Duration::from_secs(10));
        assert_eq!(t.user_of("p.5"), None);
        assert!(t.is_empty());
    }

    #[test]
    fn invalidate_and_disable() {
        let (_clock, t) = tokens(300);
        t.assign("alice", "a.1".into());
        t.assign("alice", "b.2".into());
        t.assign("bob", "c.3".into());
        t.invalidate_user("alice");
        assert_eq!(t.user_of("a.1"), None);
        assert_eq!(t.user_of("b.2"), None);
        assert_eq!(t.user_of("c.3").as_deref(), Some("bob"));
        t.disable();
        assert_eq!(t.user_of("c.3"), None);
        t.assign("bob", "d.4".into());
        assert_eq!(t.user_of("d.4"), None, "not recorded while disabled");
    }

    #[test]
    fn zero_ttl_means_default() {
        let t = SimpleTokens::new(Duration::ZERO, Arc::new(ManualClock::new(0)));
        assert_eq!(t.ttl(), DEFAULT_SIMPLE_TOKEN_TTL);
    }
}

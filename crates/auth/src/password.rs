//! Passwords and their bcrypt hashes. A [`Password`] never shows itself: its `Debug`
//! prints `Password(<redacted>)` and it has no `Display`, so it cannot reach a log line, an
//! error or a metric by accident. Hashing and checking are CPU heavy (bcrypt cost 10 is
//! ~50 ms): the server runs them on a blocking thread, before proposing, never in apply.

use base64::Engine as _;

use crate::error::AuthError;

/// etcd's `--bcrypt-cost` default (Go's `bcrypt.DefaultCost`).
pub const DEFAULT_BCRYPT_COST: u32 = 10;
/// The costs bcrypt accepts; etcd falls back to the default outside them.
pub const BCRYPT_COST_RANGE: std::ops::RangeInclusive<u32> = 4..=31;

/// The longest password bcrypt hashes whole.
pub const BCRYPT_MAX_PASSWORD: usize = 72;

/// A plaintext password from a client request.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(s: impl Into<String>) -> Password {
        Password(s.into())
    }

    /// The bytes, for hashing or checking only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl From<String> for Password {
    fn from(s: String) -> Password {
        Password(s)
    }
}

/// The cost etcd uses for a configured `--bcrypt-cost`: the value itself when bcrypt accepts
/// it, else the default (etcd warns and does the same).
pub fn effective_bcrypt_cost(configured: u32) -> u32 {
    if BCRYPT_COST_RANGE.contains(&configured) {
        configured
    } else {
        tracing::warn!(
            given_cost = configured,
            default_cost = DEFAULT_BCRYPT_COST,
            "use default bcrypt cost instead of the invalid given cost"
        );
        DEFAULT_BCRYPT_COST
    }
}

/// Hashes `password` as etcd does (`$2a$` bcrypt, random salt). More than 72 bytes is
/// refused, as Go's bcrypt in current etcd 3.5 releases refuses it (3.5.1 cut silently).
pub fn hash_password(password: &Password, cost: u32) -> Result<String, AuthError> {
    // Go checks the length itself; bcrypt's own non-truncating mode also counts the NUL
    // terminator and so would refuse 72 bytes, which Go accepts (the NUL falls outside the
    // 72 key bytes bcrypt uses, so both hash a 72-byte password alike).
    if password.expose().len() > BCRYPT_MAX_PASSWORD {
        return Err(AuthError::PasswordTooLong);
    }
    let parts = bcrypt::hash_with_result(password.expose(), effective_bcrypt_cost(cost))
        .map_err(|e| AuthError::Hash(e.to_string()))?;
    Ok(parts.format_for_version(bcrypt::Version::TwoA))
}

/// The `hashedPassword` field of a proposal: base64 (standard, padded) of the hash, as
/// etcd 3.5's API layer writes it.
pub fn encode_hashed_password(hash: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(hash.as_bytes())
}

/// Checks `password` against a stored bcrypt hash; the final comparison is constant time
/// (`subtle`, inside the bcrypt crate). A hash that does not parse never matches.
pub fn verify_password(password: &Password, stored_hash: &[u8]) -> bool {
    let Ok(hash) = std::str::from_utf8(stored_hash) else {
        return false;
    };
    bcrypt::verify(password.expose(), hash).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts() {
        let p = Password::new("hunter2");
        assert_eq!(format!("{p:?}"), "Password(<redacted>)");
        assert!(!format!("{:?}", Some(&p)).contains("hunter2"));
    }

    #[test]
    fn hash_then_verify() {
        let p = Password::new("s3cret");
        let h = hash_password(&p, 4).unwrap();
        assert!(h.starts_with("$2a$04$"), "{h}");
        assert!(verify_password(&p, h.as_bytes()));
        assert!(!verify_password(&Password::new("s3cre"), h.as_bytes()));
        assert!(!verify_password(&p, b""));
        assert!(!verify_password(&p, b"\xff\xfe"));
    }

    /// A hash written by etcd 3.5.1 (Go's bcrypt), read from its data dir after
    /// `etcdctl user add gouser --new-user-password='pass word!'`.
    #[test]
    fn verifies_hashes_made_by_etcd() {
        let go = b"$2a$10$qC46rMGdyBGtK3MaYFCIQurZZBw1tlQiuX8v7gOilJGqmcv22rE1.";
        assert!(verify_password(&Password::new("pass word!"), go));
        assert!(!verify_password(&Password::new("pass word"), go));
    }

    #[test]
    fn over_72_bytes_is_refused_as_go_does() {
        let long = Password::new("x".repeat(73));
        assert_eq!(hash_password(&long, 4), Err(AuthError::PasswordTooLong));
        assert!(hash_password(&Password::new("x".repeat(72)), 4).is_ok());
    }

    #[test]
    fn cost_outside_range_falls_back_to_default() {
        assert_eq!(effective_bcrypt_cost(3), DEFAULT_BCRYPT_COST);
        assert_eq!(effective_bcrypt_cost(32), DEFAULT_BCRYPT_COST);
        assert_eq!(effective_bcrypt_cost(4), 4);
        assert_eq!(effective_bcrypt_cost(31), 31);
    }
}

//! Who sent a v2 request, and whether v2 auth lets them: etcd's `hasKeyPrefixAccess`
//! (`/v2/keys`), `hasRootAccess` (`/v2/auth/*`, membership changes) and
//! `hasWriteRootAccess` (`/v2/auth/enable`, `/v2/members`), with etcd's order of lookups,
//! so that a refused request costs the same store reads (and `/v2/stats/store` counts).
//!
//! ```text
//!  auth off ─────────────────────────────────────────────────────────────▶ allowed
//!  Authorization: Basic <name:password> ─▶ user (bcrypt, blocking pool) ─▶ its roles
//!  no Authorization, --client-cert-auth ─▶ the certificate's CN as user ─▶ its roles
//!  no credentials (keys only) ──────────▶ the guest role
//! ```
//!
//! Only the leaf certificate names a user; etcd also tries the common names of the CA
//! certificates in the verified chain.

use axum::http::{header, HeaderMap, Method};

use crate::net::ClientIdentity;
use crate::v2::auth::{AuthStore, User, GUEST_ROLE, ROOT_ROLE};

/// What a request brings to prove who sent it.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    /// The `Authorization` header, when present and not empty (Go's `Header.Get != ""`).
    authorization: Option<Vec<u8>>,
    /// The common name of the verified client certificate (`--client-cert-auth`).
    cert_name: Option<String>,
}

impl Credentials {
    pub fn from_request(headers: &HeaderMap, extensions: &axum::http::Extensions) -> Self {
        Credentials {
            authorization: headers
                .get(header::AUTHORIZATION)
                .map(|v| v.as_bytes().to_vec())
                .filter(|v| !v.is_empty()),
            cert_name: extensions
                .get::<ClientIdentity>()
                .map(|id| id.0.to_string()),
        }
    }

    /// Credentials from an `Authorization` header value alone (tests).
    pub fn basic(authorization: &str) -> Self {
        Credentials {
            authorization: Some(authorization.as_bytes().to_vec()),
            cert_name: None,
        }
    }
}

fn b64_value(c: u8) -> Option<u32> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    } as u32)
}

/// Go's `base64.StdEncoding.DecodeString`: padded; `\r` and `\n` are ignored.
fn decode_base64(s: &[u8]) -> Option<Vec<u8>> {
    let s: Vec<u8> = s
        .iter()
        .copied()
        .filter(|c| !matches!(c, b'\r' | b'\n'))
        .collect();
    if s.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    for (i, quad) in s.chunks(4).enumerate() {
        let last = i + 1 == s.len() / 4;
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut v = 0u32;
        for &c in &quad[..4 - pad] {
            v = v << 6 | b64_value(c)?;
        }
        v <<= 6 * pad as u32;
        out.extend_from_slice(&v.to_be_bytes()[1..4 - pad]);
    }
    Some(out)
}

/// Go's `Request.BasicAuth`: `Basic ` (any case), base64 of `name:password` (split at the
/// first colon).
fn basic_auth(value: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let prefix = value.get(..6)?;
    if !prefix.eq_ignore_ascii_case(b"Basic ") {
        return None;
    }
    let decoded = decode_base64(&value[6..])?;
    let colon = decoded.iter().position(|&c| c == b':')?;
    Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))
}

/// etcd's `userFromBasicAuth`.
async fn user_from_basic_auth(auth: &AuthStore, value: &[u8]) -> Option<User> {
    let Some((name, password)) = basic_auth(value) else {
        tracing::warn!("malformed basic auth encoding");
        return None;
    };
    // Users are named in UTF-8 (their names come from URLs and JSON).
    let name = String::from_utf8(name).ok()?;
    auth.authenticate(&name, &password).await
}

/// etcd's `userFromClientCertificate` (the leaf certificate only).
async fn user_from_client_certificate(auth: &AuthStore, creds: &Credentials) -> Option<User> {
    let name = creds.cert_name.as_deref()?;
    auth.get_user(name).await.ok()
}

/// etcd's `hasRootAccess`: auth is off, or the user has the root role.
pub async fn has_root_access(auth: &AuthStore, creds: &Credentials) -> bool {
    if !auth.auth_enabled().await {
        return true;
    }
    let user = match &creds.authorization {
        None if creds.cert_name.is_some() => user_from_client_certificate(auth, creds).await,
        None => None,
        Some(value) => user_from_basic_auth(auth, value).await,
    };
    match user {
        Some(u) if u.has_role(ROOT_ROLE) => true,
        Some(u) => {
            tracing::warn!(user_name = %u.user, "a user does not have the root role");
            false
        }
        None => false,
    }
}

/// etcd's `hasWriteRootAccess`: reads are open, everything else needs root access.
pub async fn has_write_root_access(auth: &AuthStore, creds: &Credentials, method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD) || has_root_access(auth, creds).await
}

/// etcd's `hasKeyPrefixAccess`: may these credentials read (`GET`, `HEAD`) or write
/// `key` (the request path after `/v2/keys`, as sent) — the whole subtree if `recursive`?
pub async fn has_key_prefix_access(
    auth: &AuthStore,
    creds: &Credentials,
    key: &str,
    recursive: bool,
    method: &Method,
) -> bool {
    if !auth.auth_enabled().await {
        return true;
    }
    let write = !matches!(*method, Method::GET | Method::HEAD);
    let user = match &creds.authorization {
        None => match user_from_client_certificate(auth, creds).await {
            Some(u) => u,
            None => return has_guest_access(auth, key, write).await,
        },
        Some(value) => match user_from_basic_auth(auth, value).await {
            Some(u) => u,
            None => return false,
        },
    };
    for name in user.roles.iter().flatten() {
        let Ok(role) = auth.get_role(name).await else {
            continue;
        };
        let allowed = if recursive {
            role.has_recursive_access(key, write)
        } else {
            role.has_key_access(key, write)
        };
        if allowed {
            return true;
        }
    }
    tracing::warn!(user_name = %user.user, key, "invalid access for user on key");
    false
}

/// etcd's `hasGuestAccess`: the guest role's patterns, never recursive ones.
async fn has_guest_access(auth: &AuthStore, key: &str, write: bool) -> bool {
    let allowed = auth
        .get_role(GUEST_ROLE)
        .await
        .is_ok_and(|role| role.has_key_access(key, write));
    if !allowed {
        tracing::warn!(key, "invalid access for an unauthenticated user on key");
    }
    allowed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_like_go() {
        assert_eq!(decode_base64(b"cm9vdDpyb290cHc=").unwrap(), b"root:rootpw");
        assert_eq!(decode_base64(b"YQ==").unwrap(), b"a");
        assert_eq!(decode_base64(b"YWI=\r\n").unwrap(), b"ab");
        assert_eq!(decode_base64(b"").unwrap(), b"");
        for bad in [
            &b"cm9vdDpyb290cHc"[..],
            b"Y===",
            b"YQ==YQ==",
            b"Y!==",
            b" YQ==",
        ] {
            assert_eq!(decode_base64(bad), None, "{:?}", std::str::from_utf8(bad));
        }
    }

    #[test]
    fn basic_auth_like_go() {
        assert_eq!(
            basic_auth(b"basic cm9vdDpyb290cHc="),
            Some((b"root".to_vec(), b"rootpw".to_vec()))
        );
        // "x:y:p": the name ends at the first colon.
        assert_eq!(
            basic_auth(b"Basic eDp5OnA="),
            Some((b"x".to_vec(), b"y:p".to_vec()))
        );
        assert_eq!(basic_auth(b"Bearer cm9vdDpyb290cHc="), None);
        assert_eq!(basic_auth(b"Basic  cm9vdDpyb290cHc="), None);
        assert_eq!(basic_auth(b"Basic cm9vdA=="), None, "no colon");
        assert_eq!(basic_auth(b"Basic"), None);
    }
}

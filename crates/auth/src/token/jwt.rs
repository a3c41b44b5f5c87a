//! etcd's JWT tokens: claims `username`, `revision` and `exp` (Unix seconds), signed with
//! the member's private key; any member holding the public key (or the shared HMAC secret)
//! verifies them, so a token issued by one member works on every member. A member given
//! only a public key verifies but cannot issue (`auth: token signing attempted with
//! verify-only key`).
//!
//! Signing and verifying go through `jsonwebtoken` on the `aws-lc-rs` backend
//! (docs/adr/0005-auth-crates.md), except ES512, which `jsonwebtoken` lacks (`es512.rs`,
//! on `aws-lc-rs` directly); key files are parsed here so that the PEM forms Go
//! accepts (PKCS#1 and SEC1 as well as PKCS#8) work and the public key can be derived from
//! the private one. `exp` is checked here against the injected clock, and is required: a
//! token without it is refused (etcd's golang-jwt would accept one that never expires).

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::signature::{self as sig, KeyPair as _};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::error::{AuthError, AuthOptionsError};
use crate::store::AuthInfo;
use crate::token::options::JwtOptions;

/// The `sign-method` names etcd (golang-jwt) knows, `none` aside.
const SIGN_METHODS: &[&str] = &[
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
    "ES384", "ES512", "EdDSA",
];

pub(crate) fn is_sign_method(s: &str) -> bool {
    SIGN_METHODS.contains(&s)
}

#[derive(Serialize)]
struct SignClaims<'a> {
    username: &'a str,
    revision: u64,
    exp: u64,
}

/// What verification reads. Go decodes numbers as float64: so do we.
#[derive(Deserialize)]
struct Claims {
    username: String,
    revision: f64,
    exp: f64,
}

mod es512;

enum Keys {
    /// Everything `jsonwebtoken` has.
    Lib {
        alg: Algorithm,
        signer: Option<EncodingKey>,
        verifier: DecodingKey,
    },
    Es512(es512::Es512),
}

pub struct JwtTokens {
    keys: Keys,
    ttl: Duration,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for JwtTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let alg = match &self.keys {
            Keys::Lib { alg, .. } => format!("{alg:?}"),
            Keys::Es512(_) => "ES512".into(),
        };
        f.debug_struct("JwtTokens")
            .field("alg", &alg)
            .field("verify_only", &self.verify_only())
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl JwtTokens {
    /// Reads the key files named in `opts` (an unreadable file is etcd's `invalid auth
    /// options`).
    pub fn new(opts: &JwtOptions, clock: Arc<dyn Clock>) -> Result<JwtTokens, AuthOptionsError> {
        let read = |p: &Option<std::path::PathBuf>| -> Result<Option<Vec<u8>>, AuthOptionsError> {
            p.as_ref()
                .map(|p| {
                    std::fs::read(p).map_err(|e| AuthOptionsError::InvalidAuthOpts {
                        detail: format!("cannot read {}: {e}", p.display()),
                    })
                })
                .transpose()
        };
        let (public, private) = (read(&opts.pub_key)?, read(&opts.priv_key)?);
        JwtTokens::from_keys(
            &opts.sign_method,
            public.as_deref(),
            private.as_deref(),
            opts.ttl,
            clock,
        )
    }

    /// From key file contents: PEM keys, or the raw secret for `HS*`.
    pub fn from_keys(
        sign_method: &str,
        public_pem: Option<&[u8]>,
        private_pem: Option<&[u8]>,
        ttl: Duration,
        clock: Arc<dyn Clock>,
    ) -> Result<JwtTokens, AuthOptionsError> {
        if sign_method == "ES512" {
            let keys = Keys::Es512(es512::Es512::load(public_pem, private_pem)?);
            return Ok(JwtTokens { keys, ttl, clock });
        }
        let alg = algorithm(sign_method)?;
        let (signer, verifier) = match alg {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                let secret = private_pem.ok_or(AuthOptionsError::MissingKey)?;
                if secret.is_empty() {
                    return Err(AuthOptionsError::MissingKey);
                }
                (
                    Some(EncodingKey::from_secret(secret)),
                    DecodingKey::from_secret(secret),
                )
            }
            _ => keys::load(alg, public_pem, private_pem)?,
        };
        let keys = Keys::Lib {
            alg,
            signer,
            verifier,
        };
        Ok(JwtTokens { keys, ttl, clock })
    }

    pub fn verify_only(&self) -> bool {
        match &self.keys {
            Keys::Lib { signer, .. } => signer.is_none(),
            Keys::Es512(k) => k.verify_only(),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A token for `username` as of auth `revision`, valid for the TTL from now.
    pub fn sign(&self, username: &str, revision: u64) -> Result<String, AuthError> {
        let claims = SignClaims {
            username,
            revision,
            exp: self.clock.unix_secs() + self.ttl.as_secs(),
        };
        match &self.keys {
            Keys::Lib { alg, signer, .. } => {
                let key = signer.as_ref().ok_or(AuthError::VerifyOnly)?;
                jsonwebtoken::encode(&Header::new(*alg), &claims, key)
                    .map_err(|e| AuthError::TokenSign(e.to_string()))
            }
            Keys::Es512(k) => k.sign(&claims),
        }
    }

    /// The user and revision a valid, unexpired token carries; `None` for anything else
    /// (bad signature, another algorithm, expired, missing or mistyped claims).
    pub fn info(&self, token: &str) -> Option<AuthInfo> {
        let claims: Claims = match &self.keys {
            Keys::Lib { alg, verifier, .. } => {
                let mut validation = Validation::new(*alg);
                validation.required_spec_claims.clear();
                validation.validate_exp = false; // checked below against the injected clock
                validation.validate_nbf = false;
                validation.validate_aud = false;
                validation.leeway = 0;
                match jsonwebtoken::decode::<Claims>(token, verifier, &validation) {
                    Ok(d) => d.claims,
                    Err(e) => {
                        tracing::warn!(error = %e, "failed to parse a JWT token");
                        return None;
                    }
                }
            }
            Keys::Es512(k) => k.verify(token)?,
        };
        // golang-jwt: valid while now < exp (a NaN exp is never valid).
        let now = self.clock.unix_secs() as f64;
        if claims.exp.partial_cmp(&now) != Some(std::cmp::Ordering::Greater) {
            return None;
        }
        Some(AuthInfo {
            username: claims.username,
            revision: claims.revision as u64,
        })
    }
}

fn algorithm(name: &str) -> Result<Algorithm, AuthOptionsError> {
    use Algorithm::*;
    Ok(match name {
        "HS256" => HS256,
        "HS384" => HS384,
        "HS512" => HS512,
        "RS256" => RS256,
        "RS384" => RS384,
        "RS512" => RS512,
        "PS256" => PS256,
        "PS384" => PS384,
        "PS512" => PS512,
        "ES256" => ES256,
        "ES384" => ES384,
        "EdDSA" => EdDSA,
        _ => {
            return Err(AuthOptionsError::InvalidAuthOpts {
                detail: "invalid auth signature method".into(),
            })
        }
    })
}

/// PEM key files of the RSA, EC and Ed25519 families.
mod keys {
    use super::*;

    type Keys = (Option<EncodingKey>, DecodingKey);

    fn pem(data: &[u8]) -> Result<x509_parser::pem::Pem, AuthOptionsError> {
        x509_parser::pem::parse_x509_pem(data)
            .map(|(_, p)| p)
            .map_err(|_| AuthOptionsError::InvalidKey("Key must be a PEM encoded key".into()))
    }

    fn rejected(what: &str) -> AuthOptionsError {
        AuthOptionsError::InvalidKey(format!("not a valid {what}"))
    }

    pub(super) fn load(
        alg: Algorithm,
        public_pem: Option<&[u8]>,
        private_pem: Option<&[u8]>,
    ) -> Result<Keys, AuthOptionsError> {
        let given_public = public_pem.map(|p| public_key(alg, p)).transpose()?;
        let Some(private_pem) = private_pem else {
            let verifier = given_public.ok_or(AuthOptionsError::MissingKey)?;
            return Ok((None, verifier.1));
        };
        let (signer, derived_public) = private_key(alg, private_pem)?;
        if let Some((given, _)) = &given_public {
            if *given != derived_public {
                return Err(AuthOptionsError::KeyMismatch);
            }
        }
        let verifier = match alg {
            Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_der(&derived_public),
            Algorithm::EdDSA => DecodingKey::from_ed_der(&derived_public),
            _ => DecodingKey::from_rsa_der(&derived_public),
        };
        Ok((Some(signer), verifier))
    }

    /// The signing key and the public key bytes the verifier takes (PKCS#1 for RSA, the
    /// uncompressed point for EC, the 32 raw bytes for Ed25519).
    fn private_key(
        alg: Algorithm,
        data: &[u8],
    ) -> Result<(EncodingKey, Vec<u8>), AuthOptionsError> {
        let p = pem(data)?;
        match alg {
            Algorithm::ES256 | Algorithm::ES384 => {
                let curve = if alg == Algorithm::ES256 {
                    &sig::ECDSA_P256_SHA256_FIXED_SIGNING
                } else {
                    &sig::ECDSA_P384_SHA384_FIXED_SIGNING
                };
                let kp = sig::EcdsaKeyPair::from_private_key_der(curve, &p.contents)
                    .map_err(|_| rejected("EC private key for the sign method's curve"))?;
                let pkcs8 = kp.to_pkcs8v1().map_err(|_| rejected("EC private key"))?;
                let public = kp.public_key().as_ref().to_vec();
                Ok((EncodingKey::from_ec_der(pkcs8.as_ref()), public))
            }
            Algorithm::EdDSA => {
                let kp = sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&p.contents)
                    .map_err(|_| rejected("Ed25519 private key"))?;
                let public = kp.public_key().as_ref().to_vec();
                Ok((EncodingKey::from_ed_der(&p.contents), public))
            }
            _ => {
                let pkcs1 = match p.label.as_str() {
                    "RSA PRIVATE KEY" => p.contents.clone(),
                    _ => pkcs8_inner_key(&p.contents).ok_or_else(|| rejected("RSA private key"))?,
                };
                let kp =
                    sig::RsaKeyPair::from_der(&pkcs1).map_err(|_| rejected("RSA private key"))?;
                let public = kp.public_key().as_ref().to_vec();
                Ok((EncodingKey::from_rsa_der(&pkcs1), public))
            }
        }
    }

    /// The public key bytes (as [`private_key`] gives them) and the verifier.
    fn public_key(alg: Algorithm, data: &[u8]) -> Result<(Vec<u8>, DecodingKey), AuthOptionsError> {
        let bad = |_| rejected("public key for the sign method");
        let key = match alg {
            Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(data).map_err(bad)?,
            Algorithm::EdDSA => DecodingKey::from_ed_pem(data).map_err(bad)?,
            _ => DecodingKey::from_rsa_pem(data).map_err(bad)?,
        };
        let bytes = key.as_bytes().to_vec();
        Ok((bytes, key))
    }

    /// PKCS#8 `PrivateKeyInfo` -> its `privateKey` OCTET STRING (PKCS#1 for RSA).
    fn pkcs8_inner_key(der: &[u8]) -> Option<Vec<u8>> {
        use x509_parser::der_parser::ber::BerObjectContent;
        let (_, obj) = x509_parser::der_parser::parse_der(der).ok()?;
        let BerObjectContent::Sequence(items) = obj.content else {
            return None;
        };
        match &items.get(2)?.content {
            BerObjectContent::OctetString(b) => Some(b.to_vec()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;

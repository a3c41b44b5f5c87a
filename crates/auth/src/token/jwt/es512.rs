//! ES512 (ECDSA P-521 with SHA-512), which etcd 3.5 accepts and `jsonwebtoken` lacks: the
//! compact JWS framing here, the signature from `aws-lc-rs`. Verification is strict: three
//! parts, unpadded base64url, a header whose `alg` is `ES512`, a 132-byte `r || s`.

use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, KeyPair as _};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{AuthError, AuthOptionsError};

/// An uncompressed P-521 point: 0x04, x, y.
const POINT_LEN: usize = 1 + 2 * 66;
const SIGNATURE_LEN: usize = 2 * 66;

pub(super) struct Es512 {
    signer: Option<EcdsaKeyPair>,
    public: Vec<u8>,
}

fn bad(what: &str) -> AuthOptionsError {
    AuthOptionsError::InvalidKey(format!("not a valid {what}"))
}

fn pem_contents(data: &[u8]) -> Result<Vec<u8>, AuthOptionsError> {
    x509_parser::pem::parse_x509_pem(data)
        .map(|(_, p)| p.contents)
        .map_err(|_| AuthOptionsError::InvalidKey("Key must be a PEM encoded key".into()))
}

impl Es512 {
    pub(super) fn load(
        public_pem: Option<&[u8]>,
        private_pem: Option<&[u8]>,
    ) -> Result<Es512, AuthOptionsError> {
        let given = public_pem.map(public_point).transpose()?;
        let signer = private_pem
            .map(|p| {
                let der = pem_contents(p)?;
                EcdsaKeyPair::from_private_key_der(&sig::ECDSA_P521_SHA512_FIXED_SIGNING, &der)
                    .map_err(|_| bad("EC private key for the sign method's curve"))
            })
            .transpose()?;
        let public = match (&signer, given) {
            (Some(kp), Some(g)) if kp.public_key().as_ref() != g.as_slice() => {
                return Err(AuthOptionsError::KeyMismatch)
            }
            (Some(kp), _) => kp.public_key().as_ref().to_vec(),
            (None, Some(g)) => g,
            (None, None) => return Err(AuthOptionsError::MissingKey),
        };
        Ok(Es512 { signer, public })
    }

    pub(super) fn verify_only(&self) -> bool {
        self.signer.is_none()
    }

    pub(super) fn sign(&self, claims: &impl Serialize) -> Result<String, AuthError> {
        let kp = self.signer.as_ref().ok_or(AuthError::VerifyOnly)?;
        let claims = serde_json::to_vec(claims).map_err(|e| AuthError::TokenSign(e.to_string()))?;
        let mut token = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES512","typ":"JWT"}"#);
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(claims));
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let signature = kp
            .sign(&rng, token.as_bytes())
            .map_err(|_| AuthError::TokenSign("ES512 signing failed".into()))?;
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature.as_ref()));
        Ok(token)
    }

    pub(super) fn verify<T: DeserializeOwned>(&self, token: &str) -> Option<T> {
        let (signed, signature) = token.rsplit_once('.')?;
        let (header, payload) = signed.split_once('.')?;
        if payload.contains('.') {
            return None;
        }
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
        if header.get("alg")?.as_str()? != "ES512" {
            return None;
        }
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        if signature.len() != SIGNATURE_LEN {
            return None;
        }
        sig::UnparsedPublicKey::new(&sig::ECDSA_P521_SHA512_FIXED, &self.public)
            .verify(signed.as_bytes(), &signature)
            .ok()?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
    }
}

/// The point of a P-521 SPKI public key PEM.
fn public_point(pem: &[u8]) -> Result<Vec<u8>, AuthOptionsError> {
    use x509_parser::prelude::FromDer;
    let der = pem_contents(pem)?;
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&der)
        .map_err(|_| bad("public key for the sign method"))?;
    let point = spki.subject_public_key.data.to_vec();
    // id-ecPublicKey with secp521r1 (1.3.132.0.35) is the only SPKI with such a point.
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok());
    let p521 = x509_parser::der_parser::oid!(1.3.132 .0 .35);
    if point.len() != POINT_LEN || point[0] != 4 || curve.as_ref() != Some(&p521) {
        return Err(bad("public key for the sign method"));
    }
    Ok(point)
}

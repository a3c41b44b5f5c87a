use base64::Engine as _;

use super::*;
use crate::clock::ManualClock;

const NOW: u64 = 1_800_000_000;

fn key(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn member(
    method: &str,
    public: Option<&str>,
    private: Option<&str>,
) -> (Arc<ManualClock>, JwtTokens) {
    let clock = Arc::new(ManualClock::new(NOW));
    let public = public.map(key);
    let private = private.map(key);
    let t = JwtTokens::from_keys(
        method,
        public.as_deref(),
        private.as_deref(),
        Duration::from_secs(300),
        clock.clone(),
    )
    .unwrap_or_else(|e| panic!("{method}: {e}"));
    (clock, t)
}

const CASES: &[(&str, &str, &str)] = &[
    ("RS256", "rsa.pub", "rsa.key"),
    ("RS384", "rsa.pub", "rsa-pkcs8.key"),
    ("RS512", "rsa.pub", "rsa.key"),
    ("PS256", "rsa.pub", "rsa.key"),
    ("PS512", "rsa.pub", "rsa-pkcs8.key"),
    ("ES256", "ec256.pub", "ec256.key"),
    ("ES256", "ec256.pub", "ec256-pkcs8.key"),
    ("ES384", "ec384.pub", "ec384.key"),
    ("ES512", "ec521.pub", "ec521.key"),
    ("EdDSA", "ed25519.pub", "ed25519.key"),
];

#[test]
fn round_trips_and_a_verify_only_member_accepts_them() {
    for (method, public, private) in CASES {
        let (_, signer) = member(method, Some(public), Some(private));
        let (_, priv_only) = member(method, None, Some(private));
        let (_, verifier) = member(method, Some(public), None);
        assert!(verifier.verify_only());
        let token = signer.sign("alice", 7).unwrap();
        let want = AuthInfo {
            username: "alice".into(),
            revision: 7,
        };
        for m in [&signer, &priv_only, &verifier] {
            assert_eq!(m.info(&token), Some(want.clone()), "{method} {private}");
        }
        assert_eq!(verifier.sign("alice", 7), Err(AuthError::VerifyOnly));
    }
}

#[test]
fn hmac_round_trip() {
    let (_, a) = member("HS256", None, Some("hmac.key"));
    let (_, b) = member("HS256", None, Some("hmac.key"));
    let token = a.sign("root", 3).unwrap();
    assert_eq!(b.info(&token).unwrap().username, "root");
    let (_, other) = member("HS512", None, Some("hmac.key"));
    assert_eq!(other.info(&token), None, "another algorithm");
}

#[test]
fn claims_are_etcds() {
    let (_, t) = member("RS256", Some("rsa.pub"), Some("rsa.key"));
    let token = t.sign("alice", 12).unwrap();
    let payload = token.split('.').nth(1).unwrap();
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(v["username"], "alice");
    assert_eq!(v["revision"], 12);
    assert_eq!(v["exp"], NOW + 300);
}

#[test]
fn expires_at_exp() {
    let (clock, t) = member("ES256", Some("ec256.pub"), Some("ec256.key"));
    let token = t.sign("alice", 1).unwrap();
    clock.advance(Duration::from_secs(299));
    assert!(t.info(&token).is_some());
    clock.advance(Duration::from_secs(1));
    assert_eq!(t.info(&token), None, "now == exp is expired");
}

/// A token with the given header and claims, signed by `signer`'s key as-is.
fn forge(header: &str, claims: &str, signature_of: &str) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let sig = signature_of.rsplit('.').next().unwrap();
    format!("{}.{}.{sig}", b64(header), b64(claims))
}

#[test]
fn refuses_forged_truncated_and_malformed_tokens() {
    let (_, t) = member("RS256", Some("rsa.pub"), Some("rsa.key"));
    let (_, other_key) = member("RS256", Some("rsa2.pub"), Some("rsa2.key"));
    let good = t.sign("alice", 1).unwrap();
    let exp = NOW + 300;
    let mut bad = vec![
        other_key.sign("alice", 1).unwrap(),
        forge(
            r#"{"alg":"RS256","typ":"JWT"}"#,
            &format!(r#"{{"username":"root","revision":1,"exp":{exp}}}"#),
            &good,
        ),
        forge(
            r#"{"alg":"none","typ":"JWT"}"#,
            &format!(r#"{{"username":"root","revision":1,"exp":{exp}}}"#),
            "x.y.",
        ),
        good[..good.len() - 20].to_string(),
        good.rsplit_once('.').unwrap().0.to_string(),
        String::new(),
        "a.b.c".into(),
        format!("{good}.extra"),
    ];
    // Claims the signer never writes: each is refused even when properly signed.
    let enc = EncodingKey::from_rsa_der(&t_private_der());
    for claims in [
        r#"{"username":"root","revision":1}"#.to_string(),
        format!(r#"{{"username":"root","revision":1,"exp":"{}"}}"#, exp),
        format!(r#"{{"username":1,"revision":1,"exp":{exp}}}"#),
        format!(r#"{{"revision":1,"exp":{exp}}}"#),
        format!(r#"{{"username":"root","exp":{exp}}}"#),
    ] {
        let v: serde_json::Value = serde_json::from_str(&claims).unwrap();
        bad.push(jsonwebtoken::encode(&Header::new(Algorithm::RS256), &v, &enc).unwrap());
    }
    for token in &bad {
        assert_eq!(t.info(token), None, "accepted {token}");
    }
    assert!(t.info(&good).is_some());
}

#[test]
fn es512_refuses_forged_and_malformed_tokens() {
    let (_, t) = member("ES512", Some("ec521.pub"), Some("ec521.key"));
    let good = t.sign("alice", 1).unwrap();
    let (head, sig) = good.rsplit_once('.').unwrap();
    let mut sig_bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sig)
        .unwrap();
    sig_bytes[10] ^= 1;
    let flipped = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&sig_bytes);
    let exp = NOW + 300;
    let bad = [
        format!("{head}.{flipped}"),
        forge(
            r#"{"alg":"ES512","typ":"JWT"}"#,
            &format!(r#"{{"username":"root","revision":1,"exp":{exp}}}"#),
            &good,
        ),
        forge(
            r#"{"alg":"ES256","typ":"JWT"}"#,
            &format!(r#"{{"username":"alice","revision":1,"exp":{exp}}}"#),
            &good,
        ),
        format!("{head}.{sig}="),
        format!("{good}.x"),
        good[..good.len() - 3].to_string(),
        head.to_string(),
    ];
    for token in &bad {
        assert_eq!(t.info(token), None, "accepted {token}");
    }
    assert_eq!(t.info(&good).unwrap().username, "alice");
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(NOW));
    let err = JwtTokens::from_keys(
        "ES512",
        Some(&key("ec256.pub")),
        None,
        Duration::ZERO,
        clock.clone(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "auth: invalid key: not a valid public key for the sign method"
    );
    let err = JwtTokens::from_keys(
        "ES512",
        Some(&key("ec521.pub")),
        Some(&key("ec256.key")),
        Duration::ZERO,
        clock,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "auth: invalid key: not a valid EC private key for the sign method's curve"
    );
}

/// HS256 with the RSA public key as the HMAC secret (algorithm confusion) is refused.
#[test]
fn refuses_algorithm_confusion() {
    let (_, t) = member("RS256", Some("rsa.pub"), Some("rsa.key"));
    let claims = serde_json::json!({"username": "root", "revision": 1, "exp": NOW + 300});
    let confused = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(&key("rsa.pub")),
    )
    .unwrap();
    assert_eq!(t.info(&confused), None);
}

fn t_private_der() -> Vec<u8> {
    let pem = key("rsa.key");
    x509_parser::pem::parse_x509_pem(&pem).unwrap().1.contents
}

#[test]
fn key_errors() {
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(NOW));
    let ttl = Duration::from_secs(1);
    let load = |m: &str, public: Option<&str>, private: Option<&str>| {
        let (public, private) = (public.map(key), private.map(key));
        JwtTokens::from_keys(m, public.as_deref(), private.as_deref(), ttl, clock.clone())
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let table: &[(&str, Option<&str>, Option<&str>, &str)] = &[
        ("RS256", None, None, "auth: missing key data"),
        ("HS256", None, None, "auth: missing key data"),
        ("ES256", None, None, "auth: missing key data"),
        (
            "RS256",
            Some("rsa2.pub"),
            Some("rsa.key"),
            "auth: public and private keys don't match",
        ),
        (
            "ES256",
            Some("ec384.pub"),
            Some("ec256.key"),
            "auth: public and private keys don't match",
        ),
        (
            "ES256",
            Some("rsa.pub"),
            None,
            "auth: invalid key: not a valid public key for the sign method",
        ),
        (
            "ES256",
            None,
            Some("ec384.key"),
            "auth: invalid key: not a valid EC private key for the sign method's curve",
        ),
        (
            "RS256",
            None,
            Some("ec256.key"),
            "auth: invalid key: not a valid RSA private key",
        ),
        (
            "EdDSA",
            None,
            Some("rsa.key"),
            "auth: invalid key: not a valid Ed25519 private key",
        ),
        (
            "RS256",
            None,
            Some("README.md"),
            "auth: invalid key: Key must be a PEM encoded key",
        ),
    ];
    for (m, public, private, want) in table {
        assert_eq!(
            load(m, *public, *private),
            Err(want.to_string()),
            "{m} {public:?} {private:?}"
        );
    }
    assert_eq!(load("ES256", Some("ec256.pub"), Some("ec256.key")), Ok(()));
}

//! One permission check on the hot path, in ns: `cargo bench -p chorus-auth --bench
//! perm_check`. A user with 3 roles of 100 permissions each (single keys, prefixes, ranges
//! and from-key forms), merged into its interval lists; checks that hit, that miss, and
//! the root shortcut. Also bcrypt (cost 10) and a JWT verify, for docs/adr/0005.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chorus_api::authpb::{permission::Type as PermType, Permission};
use chorus_api::etcdserverpb::*;
use chorus_api::internalpb::internal_request::Request;
use chorus_auth::token::{JwtTokens, SimpleTokens};
use chorus_auth::*;
use chorus_storage::backend::{Backend, BackendOptions};

fn apply(store: &AuthStore, backend: &Backend, req: Request) {
    let tx = backend.begin_write().unwrap();
    store.apply_request(&tx, &req, 1).unwrap().unwrap();
    tx.commit().unwrap();
}

fn setup(dir: &std::path::Path) -> (AuthStore, Backend) {
    let backend = Backend::open(&dir.join("db"), &BackendOptions::default()).unwrap();
    let clock = Arc::new(ManualClock::new(0));
    let tokens = TokenProvider::Simple(SimpleTokens::new(Duration::ZERO, clock));
    let store = AuthStore::load(
        &backend,
        AuthConfig {
            bcrypt_cost: 4,
            tokens,
        },
    )
    .unwrap();
    for name in ["root", "alice"] {
        let add = AuthUserAddRequest {
            name: name.into(),
            password: "pw".into(),
            ..Default::default()
        };
        apply(
            &store,
            &backend,
            Request::AuthUserAdd(store.prepare_user_add(add).unwrap()),
        );
    }
    let grant = |user: &str, role: &str| AuthUserGrantRoleRequest {
        user: user.into(),
        role: role.into(),
    };
    apply(
        &store,
        &backend,
        Request::AuthUserGrantRole(grant("root", "root")),
    );
    for r in 0..3 {
        let role = format!("role{r}");
        apply(
            &store,
            &backend,
            Request::AuthRoleAdd(AuthRoleAddRequest { name: role.clone() }),
        );
        for i in 0..100 {
            let key = format!("/app{r}/k{i:03}");
            let range_end = match i % 4 {
                0 => String::new(),
                1 => format!("/app{r}/k{i:03}0"),
                2 => format!("/app{r}/k{i:03}/z"),
                _ => String::new(),
            };
            let perm = Permission {
                perm_type: PermType::Readwrite as i32,
                key: key.into(),
                range_end: range_end.into(),
            };
            let req = AuthRoleGrantPermissionRequest {
                name: role.clone(),
                perm: Some(perm),
            };
            apply(&store, &backend, Request::AuthRoleGrantPermission(req));
        }
        apply(
            &store,
            &backend,
            Request::AuthUserGrantRole(grant("alice", &role)),
        );
    }
    apply(&store, &backend, Request::AuthEnable(AuthEnableRequest {}));
    (store, backend)
}

fn time<F: FnMut() -> bool>(name: &str, iterations: u32, mut f: F) {
    let mut hits = 0u32;
    for _ in 0..iterations / 10 {
        hits += u32::from(f()); // warm-up
    }
    let start = Instant::now();
    for _ in 0..iterations {
        hits += u32::from(black_box(f()));
    }
    let ns = start.elapsed().as_nanos() as f64 / f64::from(iterations);
    println!("{name:<48} {ns:>10.1} ns/op   ({hits} allowed)");
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _backend) = setup(dir.path());
    let rev = store.revision();
    let alice = AuthInfo {
        username: "alice".into(),
        revision: rev,
    };
    let root = AuthInfo {
        username: "root".into(),
        revision: rev,
    };
    let n = 2_000_000;
    time("is_range_permitted: single key, allowed", n, || {
        store
            .is_range_permitted(Some(black_box(&alice)), black_box(b"/app1/k050"), b"")
            .is_ok()
    });
    time("is_range_permitted: range, allowed", n, || {
        store
            .is_range_permitted(
                Some(black_box(&alice)),
                black_box(b"/app2/k042/a"),
                b"/app2/k042/b",
            )
            .is_ok()
    });
    time("is_range_permitted: single key, denied", n, || {
        store
            .is_range_permitted(Some(black_box(&alice)), black_box(b"/other/key"), b"")
            .is_ok()
    });
    time("is_put_permitted: allowed", n, || {
        store
            .is_put_permitted(Some(black_box(&alice)), black_box(b"/app0/k001"))
            .is_ok()
    });
    time("is_range_permitted: root shortcut", n, || {
        store
            .is_range_permitted(Some(black_box(&root)), black_box(b"/x"), b"\0")
            .is_ok()
    });
    time("is_admin_permitted: root", n, || {
        store.is_admin_permitted(Some(black_box(&root))).is_ok()
    });
    bcrypt();
    jwt();
}

fn bcrypt() {
    let p = Password::new("correct horse battery staple");
    let start = Instant::now();
    let hash = hash_password(&p, 10).unwrap();
    println!(
        "{:<48} {:>10.1} ms",
        "bcrypt hash, cost 10",
        start.elapsed().as_secs_f64() * 1e3
    );
    let start = Instant::now();
    for _ in 0..5 {
        assert!(verify_password(&p, hash.as_bytes()));
    }
    println!(
        "{:<48} {:>10.1} ms",
        "bcrypt verify, cost 10",
        start.elapsed().as_secs_f64() * 1e3 / 5.0
    );
}

fn jwt() {
    let keys = format!("{}/tests/keys", env!("CARGO_MANIFEST_DIR"));
    let read = |f: &str| std::fs::read(format!("{keys}/{f}")).unwrap();
    for (method, public, private) in [
        ("RS256", "rsa.pub", "rsa.key"),
        ("ES256", "ec256.pub", "ec256.key"),
        ("ES512", "ec521.pub", "ec521.key"),
        ("EdDSA", "ed25519.pub", "ed25519.key"),
        ("HS256", "hmac.key", "hmac.key"),
    ] {
        let clock = Arc::new(SystemClock::default());
        let t = JwtTokens::from_keys(
            method,
            Some(&read(public)),
            Some(&read(private)),
            Duration::from_secs(300),
            clock,
        )
        .unwrap();
        let token = t.sign("alice", 42).unwrap();
        let m = 2_000;
        time(&format!("JWT {method} verify"), m, || {
            t.info(black_box(&token)).is_some()
        });
        time(&format!("JWT {method} sign"), m, || {
            t.sign("alice", 42).is_ok()
        });
    }
}

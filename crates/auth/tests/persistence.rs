//! The auth state lives in the backend: reopening the file, or restoring a member-to-member
//! snapshot dump, gives the same users, roles, permissions, flag and revision.

use std::sync::Arc;
use std::time::Duration;

use chorus_api::authpb::{permission::Type as PermType, Permission};
use chorus_api::etcdserverpb::*;
use chorus_api::internalpb::internal_request::Request;
use chorus_auth::token::SimpleTokens;
use chorus_auth::*;
use chorus_storage::backend::{Backend, BackendOptions};

fn config() -> AuthConfig {
    let clock = Arc::new(ManualClock::new(0));
    AuthConfig {
        bcrypt_cost: 4,
        tokens: TokenProvider::Simple(SimpleTokens::new(Duration::ZERO, clock)),
    }
}

fn apply(store: &AuthStore, backend: &Backend, req: Request) -> AuthResponse {
    let tx = backend.begin_write().unwrap();
    let root = AuthInfo {
        username: "root".into(),
        revision: u64::MAX,
    };
    store.check_request(&root, &req, &NoLeases).unwrap();
    let r = store.apply_request(&tx, &req, 1).unwrap().unwrap();
    tx.commit().unwrap();
    r
}

/// Everything a client could observe, as one value.
fn observe(store: &AuthStore, backend: &Backend) -> String {
    let mut out = format!(
        "enabled={} revision={}\n",
        store.is_enabled(),
        store.revision()
    );
    let AuthResponse::UserList(users) = apply(
        store,
        backend,
        Request::AuthUserList(AuthUserListRequest {}),
    ) else {
        panic!()
    };
    for u in users.users {
        let AuthResponse::UserGet(g) = apply(
            store,
            backend,
            Request::AuthUserGet(AuthUserGetRequest { name: u.clone() }),
        ) else {
            panic!()
        };
        out += &format!("user {u} {:?}\n", g.roles);
    }
    let AuthResponse::RoleList(roles) = apply(
        store,
        backend,
        Request::AuthRoleList(AuthRoleListRequest {}),
    ) else {
        panic!()
    };
    for r in roles.roles {
        let AuthResponse::RoleGet(g) = apply(
            store,
            backend,
            Request::AuthRoleGet(AuthRoleGetRequest { role: r.clone() }),
        ) else {
            panic!()
        };
        out += &format!("role {r} {:?}\n", g.perm);
    }
    let alice = AuthInfo {
        username: "alice".into(),
        revision: store.revision(),
    };
    out += &format!(
        "alice reads k: {:?}\n",
        store.is_range_permitted(Some(&alice), b"k", b"")
    );
    out
}

fn populate(store: &AuthStore, backend: &Backend) {
    let add = |n: &str| {
        store
            .prepare_user_add(AuthUserAddRequest {
                name: n.into(),
                password: "pw".into(),
                ..Default::default()
            })
            .unwrap()
    };
    for req in [
        Request::AuthUserAdd(add("root")),
        Request::AuthUserAdd(add("alice")),
        Request::AuthRoleAdd(AuthRoleAddRequest {
            name: "root".into(),
        }),
        Request::AuthRoleAdd(AuthRoleAddRequest {
            name: "reader".into(),
        }),
        Request::AuthRoleGrantPermission(AuthRoleGrantPermissionRequest {
            name: "reader".into(),
            perm: Some(Permission {
                perm_type: PermType::Read as i32,
                key: "k".into(),
                range_end: vec![],
            }),
        }),
        Request::AuthUserGrantRole(AuthUserGrantRoleRequest {
            user: "root".into(),
            role: "root".into(),
        }),
        Request::AuthUserGrantRole(AuthUserGrantRoleRequest {
            user: "alice".into(),
            role: "reader".into(),
        }),
        Request::AuthEnable(AuthEnableRequest {}),
    ] {
        apply(store, backend, req);
    }
}

#[test]
fn reopen_gives_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let before = {
        let backend = Backend::open(&path, &BackendOptions::default()).unwrap();
        let store = AuthStore::load(&backend, config()).unwrap();
        populate(&store, &backend);
        backend.force_commit().unwrap();
        observe(&store, &backend)
    };
    assert!(before.contains("enabled=true revision=8"), "{before}");
    assert!(before.contains("alice reads k: Ok(())"), "{before}");
    let backend = Backend::open(&path, &BackendOptions::default()).unwrap();
    let store = AuthStore::load(&backend, config()).unwrap();
    assert_eq!(observe(&store, &backend), before);
    // The password survived too.
    let p = Password::new("pw");
    assert_eq!(store.check_password(&backend, "alice", &p), Ok(8));
}

#[test]
fn snapshot_dump_restore_and_recover_keep_auth() {
    let dir = tempfile::tempdir().unwrap();
    let src = Backend::open(&dir.path().join("src"), &BackendOptions::default()).unwrap();
    let leader = AuthStore::load(&src, config()).unwrap();
    populate(&leader, &src);
    let mut dump = Vec::new();
    Backend::dump(&src.begin_read().unwrap(), &mut dump).unwrap();

    // A follower with an empty backend installs the snapshot, then recovers from it.
    let empty = Backend::open(&dir.path().join("old"), &BackendOptions::default()).unwrap();
    let follower = AuthStore::load(&empty, config()).unwrap();
    assert!(!follower.is_enabled());
    let restored = Backend::restore(
        &mut dump.as_slice(),
        &dir.path().join("dst"),
        &BackendOptions::default(),
    )
    .unwrap();
    follower.recover(&restored).unwrap();
    assert_eq!(observe(&follower, &restored), observe(&leader, &src));
}

/// The records are etcd's: names as keys, protobuf `authpb.User`/`Role`, the revision a
/// big-endian u64, the flag one byte.
#[test]
fn records_are_in_etcds_layout() {
    use chorus_storage::backend::{AUTH, AUTH_USERS};
    use prost::Message as _;
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::open(&dir.path().join("db"), &BackendOptions::default()).unwrap();
    let store = AuthStore::load(&backend, config()).unwrap();
    populate(&store, &backend);
    let tx = backend.begin_read().unwrap();
    let auth = tx.open_table(AUTH).unwrap();
    assert_eq!(
        auth.get(&b"authEnabled"[..]).unwrap().unwrap().value(),
        &[1]
    );
    assert_eq!(
        auth.get(&b"authRevision"[..]).unwrap().unwrap().value(),
        &8u64.to_be_bytes()
    );
    let users = tx.open_table(AUTH_USERS).unwrap();
    let alice =
        chorus_api::authpb::User::decode(users.get(&b"alice"[..]).unwrap().unwrap().value())
            .unwrap();
    assert_eq!(alice.roles, vec!["reader".to_string()]);
    assert!(alice.password.starts_with(b"$2a$04$"));
    assert_eq!(alice.options.map(|o| o.no_password), Some(false));
}

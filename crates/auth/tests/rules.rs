//! Every auth rule and message of etcd 3.5, table by table, through the store's API on a
//! real redb backend.

use std::sync::Arc;
use std::time::Duration;

use chorus_api::authpb::{permission::Type as PermType, Permission, UserAddOptions};
use chorus_api::etcdserverpb::*;
use chorus_api::internalpb::internal_request::Request;
use chorus_api::internalpb::RequestHeader;
use chorus_auth::token::SimpleTokens;
use chorus_auth::*;
use chorus_storage::backend::{Backend, BackendOptions};

struct Member {
    store: AuthStore,
    backend: Backend,
    clock: Arc<ManualClock>,
    index: u64,
    _dir: tempfile::TempDir,
}

fn root() -> AuthInfo {
    AuthInfo {
        username: "root".into(),
        revision: u64::MAX,
    }
}

impl Member {
    fn new() -> Member {
        let dir = tempfile::tempdir().unwrap();
        let backend = Backend::open(&dir.path().join("db"), &BackendOptions::default()).unwrap();
        let clock = Arc::new(ManualClock::new(1_800_000_000));
        let tokens =
            TokenProvider::Simple(SimpleTokens::new(Duration::from_secs(300), clock.clone()));
        let store = AuthStore::load(
            &backend,
            AuthConfig {
                bcrypt_cost: 4,
                tokens,
            },
        )
        .unwrap();
        Member {
            store,
            backend,
            clock,
            index: 0,
            _dir: dir,
        }
    }

    /// One entry through the auth applier and the apply function, committed.
    fn apply(&mut self, ai: &AuthInfo, req: Request) -> Result<Option<AuthResponse>, AuthError> {
        self.index += 1;
        let tx = self.backend.begin_write().unwrap();
        let r = self
            .store
            .check_request(ai, &req, &NoLeases)
            .and_then(|()| self.store.apply_request(&tx, &req, self.index).transpose());
        tx.commit().unwrap();
        r
    }

    fn admin(&mut self, req: Request) -> Result<Option<AuthResponse>, AuthError> {
        self.apply(&root(), req)
    }

    fn user_add(&mut self, name: &str, password: &str) -> Result<Option<AuthResponse>, AuthError> {
        let req = self
            .store
            .prepare_user_add(AuthUserAddRequest {
                name: name.into(),
                password: password.into(),
                ..Default::default()
            })
            .unwrap();
        assert!(
            req.password.is_empty(),
            "the plaintext never goes into the log"
        );
        self.admin(Request::AuthUserAdd(req))
    }

    fn role_add(&mut self, name: &str) -> Result<Option<AuthResponse>, AuthError> {
        self.admin(Request::AuthRoleAdd(AuthRoleAddRequest {
            name: name.into(),
        }))
    }

    fn grant_role(&mut self, user: &str, role: &str) -> Result<Option<AuthResponse>, AuthError> {
        self.admin(Request::AuthUserGrantRole(AuthUserGrantRoleRequest {
            user: user.into(),
            role: role.into(),
        }))
    }

    fn grant(
        &mut self,
        role: &str,
        t: PermType,
        key: &str,
        end: &str,
    ) -> Result<Option<AuthResponse>, AuthError> {
        self.admin(Request::AuthRoleGrantPermission(
            AuthRoleGrantPermissionRequest {
                name: role.into(),
                perm: Some(Permission {
                    perm_type: t as i32,
                    key: key.into(),
                    range_end: end.into(),
                }),
            },
        ))
    }

    fn enable(&mut self) -> Result<Option<AuthResponse>, AuthError> {
        self.admin(Request::AuthEnable(AuthEnableRequest {}))
    }

    /// root (with the root role) and auth enabled.
    fn with_root(&mut self) {
        self.user_add("root", "rootpw").unwrap();
        self.role_add("root").unwrap();
        self.grant_role("root", "root").unwrap();
        self.enable().unwrap();
    }

    fn login(&mut self, name: &str, password: &str) -> Result<AuthInfo, AuthError> {
        let req = AuthenticateRequest {
            name: name.into(),
            password: password.into(),
        };
        let (entry, checked) = self.store.prepare_authenticate(&self.backend, req)?;
        let Some(AuthResponse::Authenticate(done)) =
            self.apply(&AuthInfo::default(), Request::Authenticate(entry))?
        else {
            panic!()
        };
        assert_eq!(done.revision, checked);
        let token = self.store.issue_token(&done)?;
        Ok(self.store.auth_info_from_token(&token)?.unwrap())
    }

    fn token(&mut self, name: &str, password: &str) -> String {
        let req = AuthenticateRequest {
            name: name.into(),
            password: password.into(),
        };
        let (entry, _) = self.store.prepare_authenticate(&self.backend, req).unwrap();
        let Some(AuthResponse::Authenticate(done)) = self
            .apply(&AuthInfo::default(), Request::Authenticate(entry))
            .unwrap()
        else {
            panic!()
        };
        self.store.issue_token(&done).unwrap()
    }
}

fn err(r: Result<Option<AuthResponse>, AuthError>) -> String {
    r.map(|_| "ok".to_string())
        .unwrap_or_else(|e| e.to_string())
}

#[test]
fn enable_needs_root_with_the_root_role() {
    let mut m = Member::new();
    assert_eq!(err(m.enable()), "etcdserver: root user does not exist");
    m.user_add("root", "pw").unwrap();
    assert_eq!(
        err(m.enable()),
        "etcdserver: root user does not have root role"
    );
    // The root role may be granted before it exists as a role.
    m.grant_role("root", "root").unwrap();
    assert_eq!(err(m.enable()), "ok");
    assert!(m.store.is_enabled());
    assert_eq!(err(m.enable()), "ok", "enabling twice is a no-op");
}

#[test]
fn user_rules() {
    let mut m = Member::new();
    m.with_root();
    let name = |n: &str| n.to_string();
    let table: Vec<(&str, Request, &str)> = vec![
        (
            "empty name",
            Request::AuthUserAdd(AuthUserAddRequest {
                name: name(""),
                ..Default::default()
            }),
            "etcdserver: user name is empty",
        ),
        (
            "duplicate",
            Request::AuthUserAdd(
                m.store
                    .prepare_user_add(AuthUserAddRequest {
                        name: name("root"),
                        password: name("x"),
                        ..Default::default()
                    })
                    .unwrap(),
            ),
            "etcdserver: user name already exists",
        ),
        (
            "plaintext in the log",
            Request::AuthUserAdd(AuthUserAddRequest {
                name: name("eve"),
                password: name("x"),
                ..Default::default()
            }),
            "auth: password not hashed by the proposing member",
        ),
        (
            "bad hash encoding",
            Request::AuthUserAdd(AuthUserAddRequest {
                name: name("eve"),
                hashed_password: name("!!"),
                ..Default::default()
            }),
            "auth: authentication failed, password was given for no password user",
        ),
        (
            "delete root",
            Request::AuthUserDelete(AuthUserDeleteRequest { name: name("root") }),
            "etcdserver: invalid auth management",
        ),
        (
            "delete missing",
            Request::AuthUserDelete(AuthUserDeleteRequest {
                name: name("nosuch"),
            }),
            "etcdserver: user name not found",
        ),
        (
            "get missing",
            Request::AuthUserGet(AuthUserGetRequest {
                name: name("nosuch"),
            }),
            "etcdserver: user name not found",
        ),
        (
            "passwd missing",
            Request::AuthUserChangePassword(AuthUserChangePasswordRequest {
                name: name("nosuch"),
                ..Default::default()
            }),
            "etcdserver: user name not found",
        ),
        (
            "grant to missing user",
            Request::AuthUserGrantRole(AuthUserGrantRoleRequest {
                user: name("nosuch"),
                role: name("root"),
            }),
            "etcdserver: user name not found",
        ),
        (
            "grant missing role",
            Request::AuthUserGrantRole(AuthUserGrantRoleRequest {
                user: name("root"),
                role: name("nosuch"),
            }),
            "etcdserver: role name not found",
        ),
        (
            "revoke root from root",
            Request::AuthUserRevokeRole(AuthUserRevokeRoleRequest {
                name: name("root"),
                role: name("root"),
            }),
            "etcdserver: invalid auth management",
        ),
        (
            "revoke from missing",
            Request::AuthUserRevokeRole(AuthUserRevokeRoleRequest {
                name: name("nosuch"),
                role: name("r"),
            }),
            "etcdserver: user name not found",
        ),
        (
            "revoke not granted",
            Request::AuthUserRevokeRole(AuthUserRevokeRoleRequest {
                name: name("root"),
                role: name("r"),
            }),
            "etcdserver: role is not granted to the user",
        ),
    ];
    for (what, req, want) in table {
        assert_eq!(err(m.admin(req)), want, "{what}");
    }
}

#[test]
fn role_rules() {
    let mut m = Member::new();
    m.with_root();
    m.role_add("r").unwrap();
    let s = |n: &str| n.to_string();
    let perm = |k: &str, e: &str| {
        Some(Permission {
            perm_type: 0,
            key: k.into(),
            range_end: e.into(),
        })
    };
    let table: Vec<(&str, Request, &str)> = vec![
        (
            "empty name",
            Request::AuthRoleAdd(AuthRoleAddRequest { name: s("") }),
            "etcdserver: role name is empty",
        ),
        (
            "duplicate",
            Request::AuthRoleAdd(AuthRoleAddRequest { name: s("r") }),
            "etcdserver: role name already exists",
        ),
        (
            "delete root",
            Request::AuthRoleDelete(AuthRoleDeleteRequest { role: s("root") }),
            "etcdserver: invalid auth management",
        ),
        (
            "delete missing",
            Request::AuthRoleDelete(AuthRoleDeleteRequest { role: s("nosuch") }),
            "etcdserver: role name not found",
        ),
        (
            "get missing",
            Request::AuthRoleGet(AuthRoleGetRequest { role: s("nosuch") }),
            "etcdserver: role name not found",
        ),
        (
            "no permission",
            Request::AuthRoleGrantPermission(AuthRoleGrantPermissionRequest {
                name: s("r"),
                perm: None,
            }),
            "etcdserver: permission not given",
        ),
        (
            "empty key",
            Request::AuthRoleGrantPermission(AuthRoleGrantPermissionRequest {
                name: s("r"),
                perm: perm("", ""),
            }),
            "etcdserver: invalid auth management",
        ),
        (
            "empty range",
            Request::AuthRoleGrantPermission(AuthRoleGrantPermissionRequest {
                name: s("r"),
                perm: perm("b", "a"),
            }),
            "etcdserver: invalid auth management",
        ),
        (
            "grant to missing",
            Request::AuthRoleGrantPermission(AuthRoleGrantPermissionRequest {
                name: s("nosuch"),
                perm: perm("a", ""),
            }),
            "etcdserver: role name not found",
        ),
        (
            "revoke missing role",
            Request::AuthRoleRevokePermission(AuthRoleRevokePermissionRequest {
                role: s("nosuch"),
                key: "a".into(),
                range_end: vec![],
            }),
            "etcdserver: role name not found",
        ),
        (
            "revoke not granted",
            Request::AuthRoleRevokePermission(AuthRoleRevokePermissionRequest {
                role: s("r"),
                key: "a".into(),
                range_end: vec![],
            }),
            "etcdserver: permission is not granted to the role",
        ),
    ];
    for (what, req, want) in table {
        assert_eq!(err(m.admin(req)), want, "{what}");
    }
}

#[test]
fn grant_updates_in_place_and_keeps_keys_sorted() {
    let mut m = Member::new();
    m.role_add("r").unwrap();
    m.grant("r", PermType::Read, "m", "").unwrap();
    m.grant("r", PermType::Read, "a", "c").unwrap();
    m.grant("r", PermType::Read, "a", "b").unwrap();
    m.grant("r", PermType::Write, "m", "").unwrap();
    let Some(AuthResponse::RoleGet(g)) = m
        .admin(Request::AuthRoleGet(AuthRoleGetRequest {
            role: "r".into(),
        }))
        .unwrap()
    else {
        panic!()
    };
    let got: Vec<(String, String, i32)> = g
        .perm
        .iter()
        .map(|p| {
            (
                String::from_utf8_lossy(&p.key).into(),
                String::from_utf8_lossy(&p.range_end).into(),
                p.perm_type,
            )
        })
        .collect();
    let want = [("a", "c", 0), ("a", "b", 0), ("m", "", 1)];
    assert_eq!(got, want.map(|(k, e, t)| (k.to_string(), e.to_string(), t)));
}

#[test]
fn role_delete_leaves_every_user() {
    let mut m = Member::new();
    m.user_add("a", "pw").unwrap();
    m.user_add("b", "pw").unwrap();
    m.role_add("r").unwrap();
    m.role_add("s").unwrap();
    for (u, r) in [("a", "r"), ("a", "s"), ("b", "r")] {
        m.grant_role(u, r).unwrap();
    }
    m.admin(Request::AuthRoleDelete(AuthRoleDeleteRequest {
        role: "r".into(),
    }))
    .unwrap();
    for (u, want) in [("a", vec!["s".to_string()]), ("b", vec![])] {
        let Some(AuthResponse::UserGet(g)) = m
            .admin(Request::AuthUserGet(AuthUserGetRequest { name: u.into() }))
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(g.roles, want, "{u}");
    }
}

/// etcd 3.5's revision rules: every change bumps it, enabling and no-op grants do not.
#[test]
fn auth_revision() {
    let mut m = Member::new();
    assert_eq!(m.store.revision(), 1, "a new store starts at 1");
    m.user_add("root", "pw").unwrap(); // 2
    m.grant_role("root", "root").unwrap(); // 3
    m.grant_role("root", "root").unwrap(); // no-op
    assert_eq!(m.store.revision(), 3);
    m.enable().unwrap(); // enabling does not bump
    assert_eq!(m.store.revision(), 3);
    m.role_add("r").unwrap(); // 4
    m.grant("r", PermType::Read, "k", "").unwrap(); // 5
    m.admin(Request::AuthDisable(AuthDisableRequest {}))
        .unwrap(); // 6
    assert_eq!(m.store.revision(), 6);
    let Some(AuthResponse::AuthStatus(s)) =
        m.admin(Request::AuthStatus(AuthStatusRequest {})).unwrap()
    else {
        panic!()
    };
    assert_eq!((s.enabled, s.auth_revision), (false, 6));
}

#[test]
fn admin_requests_need_the_root_role() {
    let mut m = Member::new();
    m.with_root();
    m.user_add("alice", "pw").unwrap();
    let alice = m.login("alice", "pw").unwrap();
    let nobody = AuthInfo::default();
    let ghost = AuthInfo {
        username: "ghost".into(),
        revision: u64::MAX,
    };
    let list = || Request::AuthUserList(AuthUserListRequest {});
    assert_eq!(
        err(m.apply(&alice, list())),
        "etcdserver: permission denied"
    );
    assert_eq!(
        err(m.apply(&nobody, list())),
        "etcdserver: user name is empty"
    );
    assert_eq!(
        err(m.apply(&ghost, list())),
        "etcdserver: user name not found"
    );
    assert_eq!(err(m.apply(&root(), list())), "ok");
    // A user reads its own roles and roles it holds; nothing else.
    let get_user = |n: &str| Request::AuthUserGet(AuthUserGetRequest { name: n.into() });
    assert_eq!(err(m.apply(&alice, get_user("alice"))), "ok");
    assert_eq!(
        err(m.apply(&alice, get_user("root"))),
        "etcdserver: permission denied"
    );
    m.role_add("r").unwrap();
    let get_role = || Request::AuthRoleGet(AuthRoleGetRequest { role: "r".into() });
    assert_eq!(
        err(m.apply(&alice, get_role())),
        "etcdserver: permission denied"
    );
    m.grant_role("alice", "r").unwrap();
    let alice = m.login("alice", "pw").unwrap();
    assert_eq!(err(m.apply(&alice, get_role())), "ok");
}

#[test]
fn authenticate_rules() {
    let mut m = Member::new();
    m.user_add("root", "rootpw").unwrap();
    assert_eq!(
        m.login("root", "rootpw").unwrap_err().to_string(),
        "etcdserver: authentication is not enabled"
    );
    m.grant_role("root", "root").unwrap();
    m.enable().unwrap();
    let nopw = AuthUserAddRequest {
        name: "cn".into(),
        options: Some(UserAddOptions { no_password: true }),
        ..Default::default()
    };
    let nopw = m.store.prepare_user_add(nopw).unwrap();
    m.admin(Request::AuthUserAdd(nopw)).unwrap();
    let cases = [
        (
            "root",
            "wrong",
            "etcdserver: authentication failed, invalid user ID or password",
        ),
        (
            "nosuch",
            "x",
            "etcdserver: authentication failed, invalid user ID or password",
        ),
        (
            "cn",
            "x",
            "auth: authentication failed, password was given for no password user",
        ),
    ];
    for (u, p, want) in cases {
        assert_eq!(m.login(u, p).unwrap_err().to_string(), want, "{u}");
    }
    assert_eq!(m.login("root", "rootpw").unwrap().username, "root");
    // In apply, a no-password user cannot get a token even if a proposer asked.
    let entry = chorus_api::internalpb::InternalAuthenticateRequest {
        name: "cn".into(),
        simple_token: "x".into(),
    };
    assert_eq!(
        err(m.apply(&AuthInfo::default(), Request::Authenticate(entry))),
        "etcdserver: authentication failed, invalid user ID or password"
    );
}

#[test]
fn key_permissions_and_the_revision_check() {
    let mut m = Member::new();
    m.with_root();
    m.user_add("alice", "pw").unwrap();
    m.role_add("r").unwrap();
    m.grant("r", PermType::Read, "a", "m").unwrap();
    m.grant("r", PermType::Write, "w/", "w0").unwrap();
    m.grant_role("alice", "r").unwrap();
    let alice = m.login("alice", "pw").unwrap();
    let a = Some(&alice);
    assert_eq!(m.store.is_range_permitted(a, b"b", b""), Ok(()));
    assert_eq!(m.store.is_range_permitted(a, b"a", b"m"), Ok(()));
    assert_eq!(
        m.store.is_range_permitted(a, b"a", b"n"),
        Err(AuthError::PermissionDenied)
    );
    assert_eq!(
        m.store.is_put_permitted(a, b"b"),
        Err(AuthError::PermissionDenied)
    );
    assert_eq!(m.store.is_put_permitted(a, b"w/x"), Ok(()));
    assert_eq!(m.store.is_delete_range_permitted(a, b"w/", b"w0"), Ok(()));
    assert_eq!(
        m.store.is_range_permitted(None, b"b", b""),
        Err(AuthError::UserEmpty)
    );
    assert_eq!(
        m.store.is_range_permitted(Some(&root()), b"zzz", b"\0"),
        Ok(()),
        "root may do anything"
    );
    // Any change makes alice's credentials old.
    m.role_add("other").unwrap();
    assert_eq!(
        m.store.is_range_permitted(a, b"b", b""),
        Err(AuthError::AuthOldRevision)
    );
    assert_eq!(
        m.store.check_revision_unchanged(a),
        Err(AuthError::AuthOldRevision)
    );
    // A simple token resolves to the current revision (as etcd's does).
    let alice = m.login("alice", "pw").unwrap();
    assert_eq!(m.store.is_range_permitted(Some(&alice), b"b", b""), Ok(()));
    // A user not (or no longer) known is denied.
    let ghost = AuthInfo {
        username: "ghost".into(),
        revision: alice.revision,
    };
    assert_eq!(
        m.store.is_range_permitted(Some(&ghost), b"b", b""),
        Err(AuthError::PermissionDenied)
    );
}

#[test]
fn txn_put_delete_and_lease_rules() {
    let mut m = Member::new();
    m.with_root();
    m.user_add("alice", "pw").unwrap();
    m.role_add("r").unwrap();
    m.grant("r", PermType::Readwrite, "a", "").unwrap();
    m.grant("r", PermType::Write, "w", "").unwrap();
    m.grant_role("alice", "r").unwrap();
    let alice = m.login("alice", "pw").unwrap();
    let put = |k: &str, prev_kv: bool, lease: i64| PutRequest {
        key: k.into(),
        prev_kv,
        lease,
        ..Default::default()
    };
    let leases = |id: i64| (id == 7).then(|| vec![b"secret".to_vec()]);
    let check = |req: Request| {
        m.store
            .check_request(&alice, &req, &leases)
            .map_err(|e| e.to_string())
    };
    let denied = Err("etcdserver: permission denied".to_string());
    assert_eq!(check(Request::Put(put("a", true, 0))), Ok(()));
    assert_eq!(check(Request::Put(put("w", false, 0))), Ok(()));
    assert_eq!(
        check(Request::Put(put("w", true, 0))),
        denied,
        "prev_kv needs read"
    );
    assert_eq!(
        check(Request::Put(put("a", false, 7))),
        denied,
        "lease holds a key alice cannot write"
    );
    assert_eq!(
        check(Request::Put(put("a", false, 8))),
        Ok(()),
        "unknown lease"
    );
    assert_eq!(
        check(Request::LeaseRevoke(LeaseRevokeRequest { id: 7 })),
        denied
    );
    let del = |k: &str, prev_kv| DeleteRangeRequest {
        key: k.into(),
        prev_kv,
        ..Default::default()
    };
    assert_eq!(check(Request::DeleteRange(del("w", false))), Ok(()));
    assert_eq!(check(Request::DeleteRange(del("w", true))), denied);
    assert_eq!(
        m.store
            .check_request(&root(), &Request::Put(put("a", false, 7)), &leases),
        Ok(()),
        "admins may use any lease"
    );
}

#[test]
fn txn_checks_compares_and_both_branches() {
    let mut m = Member::new();
    m.with_root();
    m.user_add("alice", "pw").unwrap();
    m.role_add("r").unwrap();
    m.grant("r", PermType::Readwrite, "a", "").unwrap();
    m.grant("r", PermType::Write, "w", "").unwrap();
    m.grant_role("alice", "r").unwrap();
    let alice = m.login("alice", "pw").unwrap();
    let put = |k: &str, prev_kv: bool, lease: i64| PutRequest {
        key: k.into(),
        prev_kv,
        lease,
        ..Default::default()
    };
    let check = |req: Request| {
        m.store
            .check_request(&alice, &req, &NoLeases)
            .map_err(|e| e.to_string())
    };
    let denied = Err("etcdserver: permission denied".to_string());
    let op = |r| RequestOp { request: Some(r) };
    use request_op::Request as Op;
    let inner = TxnRequest {
        success: vec![op(Op::RequestPut(put("b", false, 0)))],
        ..Default::default()
    };
    let txn = TxnRequest {
        compare: vec![Compare {
            key: "a".into(),
            ..Default::default()
        }],
        success: vec![op(Op::RequestRange(RangeRequest {
            key: "a".into(),
            ..Default::default()
        }))],
        failure: vec![op(Op::RequestTxn(inner))],
    };
    assert_eq!(
        check(Request::Txn(txn.clone())),
        denied,
        "a nested put to b"
    );
    let mut ok_txn = txn.clone();
    ok_txn.failure.clear();
    assert_eq!(check(Request::Txn(ok_txn)), Ok(()));
    let bad_compare = TxnRequest {
        compare: vec![Compare {
            key: "w".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    assert_eq!(
        check(Request::Txn(bad_compare)),
        denied,
        "compares need read"
    );
}

#[test]
fn simple_tokens_die_with_their_user_and_with_auth() {
    let mut m = Member::new();
    m.with_root();
    m.user_add("alice", "pw").unwrap();
    let token = m.token("alice", "pw");
    assert_eq!(simple_token_index(&token), Some(m.index));
    assert_eq!(token.split('.').next().unwrap().len(), 16);
    assert_eq!(
        m.store
            .auth_info_from_token(&token)
            .unwrap()
            .unwrap()
            .username,
        "alice"
    );
    assert_eq!(
        m.store
            .auth_info_from_token(&format!("Bearer {token}"))
            .unwrap()
            .unwrap()
            .username,
        "alice"
    );
    assert_eq!(
        m.store.auth_info_from_token("nope.1"),
        Err(AuthError::InvalidAuthToken)
    );
    assert_eq!(
        m.store.auth_info_from_token("nodot"),
        Err(AuthError::InvalidAuthToken)
    );
    // A password change ends the user's tokens.
    let passwd = m
        .store
        .prepare_user_change_password(AuthUserChangePasswordRequest {
            name: "alice".into(),
            password: "pw2".into(),
            ..Default::default()
        })
        .unwrap();
    m.admin(Request::AuthUserChangePassword(passwd)).unwrap();
    assert_eq!(
        m.store.auth_info_from_token(&token),
        Err(AuthError::InvalidAuthToken)
    );
    // So does deleting the user.
    let token = m.token("alice", "pw2");
    m.admin(Request::AuthUserDelete(AuthUserDeleteRequest {
        name: "alice".into(),
    }))
    .unwrap();
    assert_eq!(
        m.store.auth_info_from_token(&token),
        Err(AuthError::InvalidAuthToken)
    );
}

#[test]
fn simple_tokens_expire_and_die_with_auth() {
    let mut m = Member::new();
    m.with_root();
    // Expiry: 300 s after the last use, on this member's clock.
    let token = m.token("root", "rootpw");
    m.clock.advance(Duration::from_secs(299));
    assert!(m.store.auth_info_from_token(&token).is_ok());
    m.clock.advance(Duration::from_secs(300));
    assert_eq!(
        m.store.auth_info_from_token(&token),
        Err(AuthError::InvalidAuthToken)
    );
    // Disabling forgets every token; while disabled, tokens are not looked at.
    let token = m.token("root", "rootpw");
    m.admin(Request::AuthDisable(AuthDisableRequest {}))
        .unwrap();
    assert_eq!(m.store.auth_info_from_token(&token), Ok(None));
    m.enable().unwrap();
    assert_eq!(
        m.store.auth_info_from_token(&token),
        Err(AuthError::InvalidAuthToken)
    );
}

#[test]
fn the_header_carries_the_requester_into_apply() {
    let h = RequestHeader {
        id: 1,
        username: "alice".into(),
        auth_revision: 9,
    };
    assert_eq!(
        AuthInfo::from_header(&h),
        AuthInfo {
            username: "alice".into(),
            revision: 9
        }
    );
}

#[test]
fn a_stale_password_check_is_seen_by_the_proposer() {
    let mut m = Member::new();
    m.with_root();
    m.user_add("alice", "pw").unwrap();
    let req = AuthenticateRequest {
        name: "alice".into(),
        password: "pw".into(),
    };
    let (entry, checked) = m.store.prepare_authenticate(&m.backend, req).unwrap();
    m.role_add("meanwhile").unwrap();
    let Some(AuthResponse::Authenticate(done)) = m
        .apply(&AuthInfo::default(), Request::Authenticate(entry))
        .unwrap()
    else {
        panic!()
    };
    assert_ne!(
        done.revision, checked,
        "the proposer must check the password again"
    );
}

#[test]
fn lease_handler_rules() {
    let mut m = Member::new();
    m.with_root();
    m.user_add("alice", "pw").unwrap();
    m.role_add("r").unwrap();
    m.grant("r", PermType::Read, "ro", "").unwrap();
    m.grant("r", PermType::Readwrite, "rw", "").unwrap();
    m.grant_role("alice", "r").unwrap();
    let alice = m.login("alice", "pw").unwrap();
    let a = Some(&alice);
    let keys = |k: &[&'static str]| k.iter().map(|k| k.as_bytes()).collect::<Vec<&[u8]>>();
    let denied = Err(AuthError::PermissionDenied);
    assert_eq!(m.store.check_lease_renew(a, keys(&["rw"])), Ok(()));
    assert_eq!(m.store.check_lease_renew(a, keys(&["rw", "ro"])), denied);
    assert_eq!(
        m.store.check_lease_time_to_live(a, keys(&["rw", "ro"])),
        Ok(())
    );
    assert_eq!(m.store.check_lease_leases(a, keys(&["ro", "x"])), denied);
    assert_eq!(
        m.store.check_lease_leases(None, keys(&[])),
        Err(AuthError::UserEmpty)
    );
    assert_eq!(
        m.store.check_lease_renew(Some(&root()), keys(&["x"])),
        Ok(())
    );
}

//! Apply is deterministic: members applying the same log entries (encoded as raft carries
//! them) end with byte-identical auth tables, and a simple token issued through one member
//! resolves on every member that applied its entry.

use std::sync::Arc;
use std::time::Duration;

use chorus_api::authpb::{permission::Type as PermType, Permission};
use chorus_api::etcdserverpb::*;
use chorus_api::internalpb::internal_request::Request;
use chorus_api::internalpb::{InternalRequest, RequestHeader};
use chorus_auth::token::SimpleTokens;
use chorus_auth::*;
use chorus_storage::backend::{Backend, BackendOptions, AUTH, AUTH_ROLES, AUTH_USERS};
use prost::Message as _;

struct Member {
    store: AuthStore,
    backend: Backend,
    _dir: tempfile::TempDir,
}

impl Member {
    fn new() -> Member {
        let dir = tempfile::tempdir().unwrap();
        let backend = Backend::open(&dir.path().join("db"), &BackendOptions::default()).unwrap();
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
        Member {
            store,
            backend,
            _dir: dir,
        }
    }

    /// What the apply loop does with one committed entry.
    fn apply_entry(&self, index: u64, data: &[u8]) -> Result<Option<AuthResponse>, AuthError> {
        let entry = InternalRequest::decode(data).unwrap();
        let (header, req) = (entry.header.unwrap(), entry.request.unwrap());
        let tx = self.backend.begin_write().unwrap();
        let r = self
            .store
            .check_request(&AuthInfo::from_header(&header), &req, &NoLeases)
            .and_then(|()| self.store.apply_request(&tx, &req, index).transpose());
        tx.commit().unwrap();
        r
    }

    fn tables(&self) -> Vec<(String, Vec<u8>, Vec<u8>)> {
        use redb::ReadableTable as _;
        let tx = self.backend.begin_read().unwrap();
        let mut out = Vec::new();
        for (name, def) in [("auth", AUTH), ("users", AUTH_USERS), ("roles", AUTH_ROLES)] {
            for item in tx.open_table(def).unwrap().iter().unwrap() {
                let (k, v) = item.unwrap();
                out.push((name.to_string(), k.value().to_vec(), v.value().to_vec()));
            }
        }
        out
    }
}

fn entry(id: u64, who: &AuthInfo, req: Request) -> Vec<u8> {
    InternalRequest {
        header: Some(RequestHeader {
            id,
            username: who.username.clone(),
            auth_revision: who.revision,
        }),
        request: Some(req),
    }
    .encode_to_vec()
}

#[test]
fn members_agree_byte_for_byte_and_share_simple_tokens() {
    let members = [Member::new(), Member::new(), Member::new()];
    let proposer = &members[0];
    let root = AuthInfo {
        username: "root".into(),
        revision: 0,
    };
    let add = |n: &str| {
        let r = AuthUserAddRequest {
            name: n.into(),
            password: "pw".into(),
            ..Default::default()
        };
        Request::AuthUserAdd(proposer.store.prepare_user_add(r).unwrap())
    };
    let mut log = vec![
        entry(1, &AuthInfo::default(), add("root")),
        entry(2, &AuthInfo::default(), add("alice")),
        entry(
            3,
            &AuthInfo::default(),
            Request::AuthRoleAdd(AuthRoleAddRequest {
                name: "root".into(),
            }),
        ),
        entry(
            4,
            &AuthInfo::default(),
            Request::AuthUserGrantRole(AuthUserGrantRoleRequest {
                user: "root".into(),
                role: "root".into(),
            }),
        ),
        entry(
            5,
            &AuthInfo::default(),
            Request::AuthEnable(AuthEnableRequest {}),
        ),
    ];
    let root = AuthInfo {
        revision: 5,
        ..root
    };
    log.push(entry(
        6,
        &root,
        Request::AuthRoleAdd(AuthRoleAddRequest { name: "r".into() }),
    ));
    let perm = Permission {
        perm_type: PermType::Read as i32,
        key: "k".into(),
        range_end: vec![0],
    };
    log.push(entry(
        7,
        &root,
        Request::AuthRoleGrantPermission(AuthRoleGrantPermissionRequest {
            name: "r".into(),
            perm: Some(perm),
        }),
    ));
    log.push(entry(
        8,
        &root,
        Request::AuthUserGrantRole(AuthUserGrantRoleRequest {
            user: "alice".into(),
            role: "r".into(),
        }),
    ));
    for (i, data) in log.iter().enumerate() {
        for m in &members {
            m.apply_entry(i as u64 + 1, data).unwrap();
        }
    }
    // alice authenticates through the proposer: it checks the password and picks the prefix.
    let login = AuthenticateRequest {
        name: "alice".into(),
        password: "pw".into(),
    };
    let (auth_entry, checked) = proposer
        .store
        .prepare_authenticate(&proposer.backend, login)
        .unwrap();
    let data = entry(9, &AuthInfo::default(), Request::Authenticate(auth_entry));
    let mut token = None;
    for m in &members {
        let Some(AuthResponse::Authenticate(done)) = m.apply_entry(9, &data).unwrap() else {
            panic!()
        };
        assert_eq!(done.revision, checked);
        token.get_or_insert(m.store.issue_token(&done).unwrap());
    }
    let token = token.unwrap();
    for m in &members {
        let ai = m.store.auth_info_from_token(&token).unwrap().unwrap();
        assert_eq!(ai.username, "alice");
        assert_eq!(m.store.is_range_permitted(Some(&ai), b"kz", b"\0"), Ok(()));
        assert_eq!(
            m.store.is_range_permitted(Some(&ai), b"a", b""),
            Err(AuthError::PermissionDenied)
        );
    }
    let first = members[0].tables();
    assert!(first.len() > 5);
    for m in &members[1..] {
        assert_eq!(m.tables(), first);
    }
}

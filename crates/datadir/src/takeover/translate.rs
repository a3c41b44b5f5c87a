//! etcd's raft entries as chorus's: same index, same term, the payload translated.
//!
//! ```text
//!  etcd entry                                   chorus entry
//!  normal, empty (a leader's no-op)         ─▶  normal, empty
//!  InternalRaftRequest put|txn|lease_*|...  ─▶  InternalRequest with the same request
//!    header {ID, username, auth_revision}       header {id 0 (nobody waits), username, auth_revision}
//!    authenticate {name, password, token}       authenticate {name, token}
//!    auth_user_add|change_password with a       the same, hashed here with bcrypt (etcd 3.4
//!      plaintext password (etcd 3.4)              hashed in apply; chorus hashes before)
//!    cluster_member_attr_set (3.5+)             member_attributes
//!    cluster_version_set (3.5+)                 cluster_version_set (empty if newer than chorus)
//!    downgrade_info_set (3.5+)                  downgrade_info_set
//!    range, downgrade_version_test (3.6+)       empty (nothing to keep)
//!  v2 Request PUT /0/members/<id>/attributes ─▶ member_attributes
//!  v2 Request PUT /0/version (3.3/3.4)      ─▶  cluster_version_set (empty if newer than chorus)
//!  v2 writes of keys and v2 auth (/1, /2)   ─▶  v2 (the v2 store up to here: v2.rs)
//!  other v2 requests (QGET, other /0 paths) ─▶  empty
//!  ConfChange add|add-learner (member JSON) ─▶  ConfChangeV2, context internalpb.Member
//!  ConfChange remove                        ─▶  ConfChangeV2 remove
//!  ConfChange update (new peer URLs)        ─▶  normal, member_peer_urls
//! ```
//!
//! The translation is a function of the entry alone (bcrypt's salt aside), so every member
//! of a cluster translates the same log the same way and the members stay consistent.

use std::collections::BTreeMap;

use chorus_api::internalpb::internal_request::Request as R;
use chorus_api::internalpb::{
    ClusterVersionSet, DowngradeInfoSet, InternalAuthenticateRequest, InternalRequest, Member,
    MemberAttributes, MemberPeerUrls, RequestHeader,
};
use chorus_etcd_format::entry::{decode_entry, request_kind, ConfChangeContext, EntryPayload};
use chorus_etcd_format::proto::etcdserverpb_raft::{InternalRaftRequest, Request as V2Request};
use chorus_etcd_format::proto::raftpb::{self, ConfChangeType as EtcdChange};
use prost::Message;
use protobuf::Message as _;
use raft::eraftpb::{ConfChangeSingle, ConfChangeType, ConfChangeV2, Entry, EntryType};

use super::TakeoverError;

/// etcd's default `--bcrypt-cost`.
const BCRYPT_COST: u32 = 10;

/// What the translated entries held, by etcd's name for each kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TranslateStats {
    /// Entries translated to a chorus command, by kind.
    pub carried: BTreeMap<String, u64>,
    /// Entries that became empty entries (nothing chorus keeps), by kind.
    pub emptied: BTreeMap<String, u64>,
}

impl TranslateStats {
    fn count(&mut self, kind: impl Into<String>, carried: bool) {
        let map = if carried {
            &mut self.carried
        } else {
            &mut self.emptied
        };
        *map.entry(kind.into()).or_default() += 1;
    }
}

/// Translates one etcd entry.
pub fn translate(e: &raftpb::Entry, stats: &mut TranslateStats) -> Result<Entry, TakeoverError> {
    let payload = decode_entry(e).map_err(|source| TakeoverError::BadEntry {
        index: e.index,
        what: source.to_string(),
    })?;
    match payload {
        EntryPayload::Empty => Ok(normal(e, None)),
        EntryPayload::Request(r) => {
            let kind = request_kind(&r);
            let header = header(r.header.as_ref());
            let request = request(*r, e.index)?;
            stats.count(kind, request.is_some());
            Ok(normal(e, request.map(|r| (header, r))))
        }
        EntryPayload::V2Request(r) => {
            let request = v2_request(&r, e.index)?;
            let kind = format!("v2 {}", String::from_utf8_lossy(v2_prefix(&r.path)));
            stats.count(kind, request.is_some());
            Ok(normal(e, request.map(|r| (RequestHeader::default(), r))))
        }
        EntryPayload::ConfChange { change, context } => {
            let kind =
                EtcdChange::try_from(change.r#type).map_err(|_| TakeoverError::BadEntry {
                    index: e.index,
                    what: format!("unknown conf change type {}", change.r#type),
                })?;
            stats.count(format!("conf change {}", kind.as_str_name()), true);
            Ok(conf_change(e, kind, change.node_id, context))
        }
        EntryPayload::ConfChangeV2(cc) => conf_change_v2(e, cc, stats),
    }
}

/// A normal entry at `e`'s index and term carrying `request` (empty if `None`).
fn normal(e: &raftpb::Entry, request: Option<(RequestHeader, R)>) -> Entry {
    let mut out = Entry::default();
    out.set_entry_type(EntryType::EntryNormal);
    out.index = e.index;
    out.term = e.term;
    if let Some((header, request)) = request {
        let req = InternalRequest {
            header: Some(header),
            request: Some(request),
        };
        out.data = req.encode_to_vec().into();
    }
    out
}

fn header(
    h: Option<&chorus_etcd_format::proto::etcdserverpb_raft::RequestHeader>,
) -> RequestHeader {
    RequestHeader {
        id: 0,
        username: h.map(|h| h.username.clone()).unwrap_or_default(),
        auth_revision: h.map_or(0, |h| h.auth_revision),
    }
}

/// Moves the first set field named in `$field => $variant` pairs into a chorus request.
macro_rules! take_first {
    ($r:ident; $($field:ident => $variant:ident),* $(,)?) => {
        $(if let Some(x) = $r.$field.take() {
            return Ok(Some(R::$variant(x)));
        })*
    };
}

/// The chorus request for an etcd request; `None` for what chorus keeps nothing of.
fn request(mut r: InternalRaftRequest, index: u64) -> Result<Option<R>, TakeoverError> {
    take_first!(r;
        put => Put, delete_range => DeleteRange, txn => Txn, compaction => Compaction,
        lease_grant => LeaseGrant, lease_revoke => LeaseRevoke,
        lease_checkpoint => LeaseCheckpoint, alarm => Alarm,
        auth_enable => AuthEnable, auth_disable => AuthDisable, auth_status => AuthStatus,
        auth_user_delete => AuthUserDelete, auth_user_get => AuthUserGet,
        auth_user_grant_role => AuthUserGrantRole, auth_user_revoke_role => AuthUserRevokeRole,
        auth_user_list => AuthUserList, auth_role_list => AuthRoleList,
        auth_role_add => AuthRoleAdd, auth_role_delete => AuthRoleDelete,
        auth_role_get => AuthRoleGet, auth_role_grant_permission => AuthRoleGrantPermission,
        auth_role_revoke_permission => AuthRoleRevokePermission,
    );
    if let Some(a) = r.authenticate.take() {
        let a = InternalAuthenticateRequest {
            name: a.name,
            simple_token: a.simple_token,
        };
        return Ok(Some(R::Authenticate(a)));
    }
    if let Some(mut u) = r.auth_user_add.take() {
        hash_plain_password(&mut u.password, &mut u.hashed_password, index)?;
        return Ok(Some(R::AuthUserAdd(u)));
    }
    if let Some(mut u) = r.auth_user_change_password.take() {
        hash_plain_password(&mut u.password, &mut u.hashed_password, index)?;
        return Ok(Some(R::AuthUserChangePassword(u)));
    }
    if let Some(a) = r.cluster_member_attr_set.take() {
        let attrs = a.member_attributes.unwrap_or_default();
        return Ok(Some(R::MemberAttributes(MemberAttributes {
            member_id: a.member_id,
            name: attrs.name,
            client_urls: attrs.client_urls,
        })));
    }
    if let Some(v) = r.cluster_version_set.take() {
        return Ok(cluster_version(v.ver));
    }
    if let Some(d) = r.downgrade_info_set.take() {
        return Ok(Some(R::DowngradeInfoSet(DowngradeInfoSet {
            enabled: d.enabled,
            ver: d.ver,
        })));
    }
    let nothing_kept = r.range.is_some() || r.downgrade_version_test.is_some();
    if nothing_kept {
        return Ok(None);
    }
    Err(TakeoverError::UnknownRequest { index })
}

/// etcd 3.4 proposes passwords in plaintext and hashes them in apply; chorus's apply takes
/// only a hash (bcrypt, base64), made here once.
fn hash_plain_password(
    password: &mut String,
    hashed: &mut String,
    index: u64,
) -> Result<(), TakeoverError> {
    if password.is_empty() || !hashed.is_empty() {
        password.clear();
        return Ok(());
    }
    let hash = bcrypt::hash_with_result(password.as_bytes(), BCRYPT_COST)
        .map_err(|e| TakeoverError::BadEntry {
            index,
            what: format!("cannot hash the password of a user request: {e}"),
        })?
        .format_for_version(bcrypt::Version::TwoA);
    use base64::Engine as _;
    *hashed = base64::engine::general_purpose::STANDARD.encode(hash);
    password.clear();
    Ok(())
}

/// The store a v2 path is in: `/0/members/<id>/attributes` → `/0` (cluster), `/1/foo` →
/// `/1` (keys).
fn v2_prefix(path: &[u8]) -> &[u8] {
    let rest = path.get(1..).unwrap_or_default();
    match rest.iter().position(|&c| c == b'/') {
        Some(i) => &path[..=i],
        None => path,
    }
}

/// A cluster version chorus can run at; a newer one is left to the leader to decide anew.
fn cluster_version(ver: String) -> Option<R> {
    crate::cluster_version_supported(&ver)
        .then_some(R::ClusterVersionSet(ClusterVersionSet { ver }))
}

/// A v2 request: member attributes and the cluster version (etcd 3.3/3.4 publish them
/// through the v2 store) as chorus's own requests, writes of v2 keys and v2 auth as v2
/// requests; nothing else.
fn v2_request(r: &V2Request, index: u64) -> Result<Option<R>, TakeoverError> {
    match v2_prefix(&r.path) {
        b"/1" | b"/2" => return Ok(super::v2::write_request(r).map(R::V2)),
        _ if r.path == b"/0/version" && r.method == "PUT" => {
            return Ok(cluster_version(
                String::from_utf8_lossy(&r.val).into_owned(),
            ));
        }
        _ => {}
    }
    let path = String::from_utf8_lossy(&r.path);
    let Some(id) = path
        .strip_prefix("/0/members/")
        .and_then(|p| p.strip_suffix("/attributes"))
    else {
        return Ok(None);
    };
    if r.method != "PUT" {
        return Ok(None);
    }
    #[derive(serde::Deserialize)]
    struct Attributes {
        #[serde(default)]
        name: String,
        #[serde(rename = "clientURLs", default)]
        client_urls: Option<Vec<String>>,
    }
    let bad = |what: String| TakeoverError::BadEntry { index, what };
    let member_id =
        u64::from_str_radix(id, 16).map_err(|_| bad(format!("v2 path {path}: not a member ID")))?;
    let a: Attributes =
        serde_json::from_slice(&r.val).map_err(|e| bad(format!("v2 {path}: {e}")))?;
    Ok(Some(R::MemberAttributes(MemberAttributes {
        member_id,
        name: a.name,
        client_urls: a.client_urls.unwrap_or_default(),
    })))
}

/// A single-step conf change; peer-URL updates are normal entries in chorus.
fn conf_change(
    e: &raftpb::Entry,
    kind: EtcdChange,
    node: u64,
    context: Option<ConfChangeContext>,
) -> Entry {
    let member = context.map(|c| member_of(node, &c));
    let change = match kind {
        EtcdChange::ConfChangeAddNode => ConfChangeType::AddNode,
        EtcdChange::ConfChangeAddLearnerNode => ConfChangeType::AddLearnerNode,
        EtcdChange::ConfChangeRemoveNode => ConfChangeType::RemoveNode,
        EtcdChange::ConfChangeUpdateNode => {
            let urls = MemberPeerUrls {
                member_id: node,
                peer_urls: member.map(|m| m.peer_urls).unwrap_or_default(),
            };
            let header = RequestHeader::default();
            return normal(e, Some((header, R::MemberPeerUrls(urls))));
        }
    };
    conf_entry(e, &[(change, node)], member)
}

fn member_of(node: u64, c: &ConfChangeContext) -> Member {
    Member {
        id: node,
        name: c.member.name.clone(),
        peer_urls: c.member.peer_urls.clone(),
        client_urls: c.member.client_urls.clone(),
        is_learner: c.member.is_learner,
    }
}

/// etcd 3.3–3.7 never propose ConfChangeV2, but raft accepts it: carried as it is, with a
/// member context when it has one.
fn conf_change_v2(
    e: &raftpb::Entry,
    cc: raftpb::ConfChangeV2,
    stats: &mut TranslateStats,
) -> Result<Entry, TakeoverError> {
    let mut changes = Vec::new();
    for c in &cc.changes {
        let change = match EtcdChange::try_from(c.r#type) {
            Ok(EtcdChange::ConfChangeAddNode) => ConfChangeType::AddNode,
            Ok(EtcdChange::ConfChangeAddLearnerNode) => ConfChangeType::AddLearnerNode,
            Ok(EtcdChange::ConfChangeRemoveNode) => ConfChangeType::RemoveNode,
            _ => {
                return Err(TakeoverError::BadEntry {
                    index: e.index,
                    what: format!("ConfChangeV2 with change type {}", c.r#type),
                })
            }
        };
        changes.push((change, c.node_id));
    }
    let context: Option<ConfChangeContext> = serde_json::from_slice(&cc.context).ok();
    let node = changes.first().map_or(0, |c| c.1);
    stats.count("conf change v2", true);
    Ok(conf_entry(
        e,
        &changes,
        context.map(|c| member_of(node, &c)),
    ))
}

fn conf_entry(
    e: &raftpb::Entry,
    changes: &[(ConfChangeType, u64)],
    member: Option<Member>,
) -> Entry {
    let mut cc = ConfChangeV2::default();
    for &(kind, node) in changes {
        let mut single = ConfChangeSingle::default();
        single.set_change_type(kind);
        single.node_id = node;
        cc.changes.push(single);
    }
    cc.context = member.map(|m| m.encode_to_vec()).unwrap_or_default().into();
    let mut out = Entry::default();
    out.set_entry_type(EntryType::EntryConfChangeV2);
    out.index = e.index;
    out.term = e.term;
    out.data = cc.write_to_bytes().expect("encode ConfChangeV2").into();
    out
}

#[cfg(test)]
mod tests {
    use chorus_api::etcdserverpb::{AuthUserAddRequest, PutRequest};
    use chorus_etcd_format::proto::etcdserverpb_raft::RequestHeader as EtcdHeader;

    use super::*;

    fn etcd_entry(t: raftpb::EntryType, data: Vec<u8>) -> raftpb::Entry {
        raftpb::Entry {
            term: 4,
            index: 9,
            r#type: t as i32,
            data,
        }
    }

    fn normal_of(r: InternalRaftRequest) -> raftpb::Entry {
        etcd_entry(raftpb::EntryType::EntryNormal, r.encode_to_vec())
    }

    fn chorus_request(e: &Entry) -> InternalRequest {
        assert_eq!((e.index, e.term), (9, 4));
        assert_eq!(e.get_entry_type(), EntryType::EntryNormal);
        InternalRequest::decode(&e.data[..]).unwrap()
    }

    #[test]
    fn requests_keep_their_payload_and_drop_the_proposal_id() {
        let mut stats = TranslateStats::default();
        let empty = translate(
            &etcd_entry(raftpb::EntryType::EntryNormal, vec![]),
            &mut stats,
        );
        assert!(empty.unwrap().data.is_empty());
        let put = PutRequest {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            ..Default::default()
        };
        let r = InternalRaftRequest {
            header: Some(EtcdHeader {
                id: 77,
                username: "alice".into(),
                auth_revision: 3,
            }),
            put: Some(put.clone()),
            ..Default::default()
        };
        let got = chorus_request(&translate(&normal_of(r), &mut stats).unwrap());
        let h = got.header.unwrap();
        assert_eq!(
            (h.id, h.username.as_str(), h.auth_revision),
            (0, "alice", 3)
        );
        assert_eq!(got.request, Some(R::Put(put)));
        assert_eq!(stats.carried.get("put"), Some(&1));
        // Only a header: a request of an etcd newer than chorus knows.
        let unknown = InternalRaftRequest {
            header: Some(EtcdHeader::default()),
            ..Default::default()
        };
        let err = translate(&normal_of(unknown), &mut stats).unwrap_err();
        assert!(
            matches!(err, TakeoverError::UnknownRequest { index: 9 }),
            "{err}"
        );
    }

    #[test]
    fn a_plaintext_password_is_hashed_once() {
        let r = InternalRaftRequest {
            auth_user_add: Some(AuthUserAddRequest {
                name: "u".into(),
                password: "pw".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let got = translate(&normal_of(r), &mut TranslateStats::default()).unwrap();
        let Some(R::AuthUserAdd(u)) = chorus_request(&got).request else {
            panic!("not a user add")
        };
        assert!(u.password.is_empty());
        use base64::Engine as _;
        let hash = base64::engine::general_purpose::STANDARD
            .decode(&u.hashed_password)
            .unwrap();
        let hash = String::from_utf8(hash).unwrap();
        assert!(hash.starts_with("$2a$10$"), "{hash}");
        assert!(bcrypt::verify("pw", &hash).unwrap());
    }

    #[test]
    fn v2_requests_carry_member_attributes_version_and_v2_writes() {
        let v2 = |method: &str, path: &str, val: &str| {
            let r = V2Request {
                method: method.into(),
                path: path.as_bytes().to_vec(),
                val: val.as_bytes().to_vec(),
                ..Default::default()
            };
            etcd_entry(raftpb::EntryType::EntryNormal, r.encode_to_vec())
        };
        let mut stats = TranslateStats::default();
        let attrs = v2(
            "PUT",
            "/0/members/1a/attributes",
            r#"{"name":"m1","clientURLs":["http://c"]}"#,
        );
        let got = chorus_request(&translate(&attrs, &mut stats).unwrap());
        let want = MemberAttributes {
            member_id: 0x1a,
            name: "m1".into(),
            client_urls: vec!["http://c".into()],
        };
        assert_eq!(got.request, Some(R::MemberAttributes(want)));
        let put = chorus_request(&translate(&v2("PUT", "/1/foo", "bar"), &mut stats).unwrap());
        let Some(R::V2(put)) = put.request else {
            panic!("not a v2 request: {put:?}")
        };
        assert_eq!((put.path.as_str(), put.val.as_str()), ("/1/foo", "bar"));
        let user = chorus_request(&translate(&v2("PUT", "/2/users/u", "{}"), &mut stats).unwrap());
        assert!(matches!(user.request, Some(R::V2(_))), "{user:?}");
        let version = v2("PUT", "/0/version", "3.4.0");
        let got = chorus_request(&translate(&version, &mut stats).unwrap());
        let want = ClusterVersionSet {
            ver: "3.4.0".into(),
        };
        assert_eq!(got.request, Some(R::ClusterVersionSet(want)));
        // A read, another /0 path, and a cluster version newer than chorus: nothing.
        for e in [
            v2("QGET", "/1/foo", ""),
            v2("PUT", "/0/other", "x"),
            v2("PUT", "/0/version", "3.9.0"),
        ] {
            assert!(translate(&e, &mut stats).unwrap().data.is_empty());
        }
        assert_eq!(stats.carried.get("v2 /1"), Some(&1));
        assert_eq!(stats.carried.get("v2 /2"), Some(&1));
        assert_eq!(stats.carried.get("v2 /0"), Some(&2));
        assert_eq!(stats.emptied.get("v2 /1"), Some(&1));
        assert_eq!(stats.emptied.get("v2 /0"), Some(&2));
    }

    #[test]
    fn cluster_version_and_downgrade_requests_are_carried() {
        use chorus_etcd_format::proto::membershippb;
        let mut stats = TranslateStats::default();
        let set = |ver: &str| InternalRaftRequest {
            cluster_version_set: Some(membershippb::ClusterVersionSetRequest { ver: ver.into() }),
            ..Default::default()
        };
        let got = translate(&normal_of(set("3.5.0")), &mut stats).unwrap();
        let want = ClusterVersionSet {
            ver: "3.5.0".into(),
        };
        assert_eq!(
            chorus_request(&got).request,
            Some(R::ClusterVersionSet(want))
        );
        let newer = translate(&normal_of(set("3.6.0")), &mut stats).unwrap();
        assert!(newer.data.is_empty());
        let downgrade = InternalRaftRequest {
            downgrade_info_set: Some(membershippb::DowngradeInfoSetRequest {
                enabled: true,
                ver: "3.4.0".into(),
            }),
            ..Default::default()
        };
        let got = translate(&normal_of(downgrade), &mut stats).unwrap();
        let want = DowngradeInfoSet {
            enabled: true,
            ver: "3.4.0".into(),
        };
        assert_eq!(
            chorus_request(&got).request,
            Some(R::DowngradeInfoSet(want))
        );
    }

    #[test]
    fn conf_changes_become_v2_changes_and_peer_url_updates() {
        let cc = |t: EtcdChange, ctx: &str| {
            let c = raftpb::ConfChange {
                r#type: t as i32,
                node_id: 0x1a,
                context: ctx.as_bytes().to_vec(),
                id: 5,
            };
            etcd_entry(raftpb::EntryType::EntryConfChange, c.encode_to_vec())
        };
        let mut stats = TranslateStats::default();
        let ctx = r#"{"id":26,"peerURLs":["http://p"],"isLearner":true}"#;
        let add = translate(&cc(EtcdChange::ConfChangeAddLearnerNode, ctx), &mut stats).unwrap();
        assert_eq!(add.get_entry_type(), EntryType::EntryConfChangeV2);
        let mut v2 = ConfChangeV2::default();
        v2.merge_from_bytes(&add.data).unwrap();
        assert_eq!(v2.changes.len(), 1);
        assert_eq!(
            v2.changes[0].get_change_type(),
            ConfChangeType::AddLearnerNode
        );
        let member = Member::decode(&v2.context[..]).unwrap();
        assert_eq!((member.id, member.is_learner), (0x1a, true));
        assert_eq!(member.peer_urls, vec!["http://p".to_string()]);
        let update = translate(&cc(EtcdChange::ConfChangeUpdateNode, ctx), &mut stats).unwrap();
        let want = MemberPeerUrls {
            member_id: 0x1a,
            peer_urls: vec!["http://p".into()],
        };
        assert_eq!(
            chorus_request(&update).request,
            Some(R::MemberPeerUrls(want))
        );
        let remove = translate(&cc(EtcdChange::ConfChangeRemoveNode, ""), &mut stats).unwrap();
        let mut v2 = ConfChangeV2::default();
        v2.merge_from_bytes(&remove.data).unwrap();
        assert_eq!(v2.changes[0].get_change_type(), ConfChangeType::RemoveNode);
        assert!(v2.context.is_empty());
    }
}

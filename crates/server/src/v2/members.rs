//! The membership etcd keeps in its v2 store, under `/0` where `/v2/keys` (under `/1`)
//! does not reach it. Each write takes a v2 index, so a member counts indexes as etcd does:
//! after a three-member bootstrap the first user write is index 8 (three raft attributes,
//! three published attributes, the cluster version).
//!
//! ```text
//!   /0/members/<id>/raftAttributes   {"peerURLs":[..]} (+ "isLearner":true)   add: create
//!                                                                    promote, new URLs: update
//!   /0/members/<id>/attributes       {"name":..,"clientURLs":[..]}           publish: set
//!   /0/removed_members/<id>          ""                        remove: delete dir, create
//!   /0/version                       "3.5.0"                           cluster version: set
//! ```
//! `<id>` is the member ID in lower-case hex, as etcd's `types.ID` prints it.

use chorus_api::internalpb::Member;

use super::store::V2Store;

fn member_key(id: u64) -> String {
    format!("/0/members/{id:x}")
}

/// etcd's `RaftAttributes` JSON (`isLearner` only when set).
fn raft_attributes(m: &Member) -> String {
    let urls = serde_json::to_string(&m.peer_urls).expect("strings serialize");
    if m.is_learner {
        format!(r#"{{"peerURLs":{urls},"isLearner":true}}"#)
    } else {
        format!(r#"{{"peerURLs":{urls}}}"#)
    }
}

/// etcd's `Attributes` JSON (both fields `omitempty`).
fn attributes(m: &Member) -> String {
    let mut fields = Vec::new();
    if !m.name.is_empty() {
        fields.push(format!(
            "\"name\":{}",
            serde_json::to_string(&m.name).expect("str")
        ));
    }
    if !m.client_urls.is_empty() {
        let urls = serde_json::to_string(&m.client_urls).expect("strings serialize");
        fields.push(format!("\"clientURLs\":{urls}"));
    }
    format!("{{{}}}", fields.join(","))
}

/// A member added (etcd's `mustSaveMemberToStore`).
pub fn add(store: &mut V2Store, m: &Member) {
    let path = format!("{}/raftAttributes", member_key(m.id));
    log_failure(
        store.create(&path, false, &raft_attributes(m), false, None, 0),
        &path,
    );
}

/// A member's raft attributes changed: promoted, or new peer URLs (`mustUpdateMemberInStore`).
pub fn update(store: &mut V2Store, m: &Member) {
    let path = format!("{}/raftAttributes", member_key(m.id));
    log_failure(
        store.update(&path, &raft_attributes(m), None, false, 0),
        &path,
    );
}

/// A member published its name and client URLs (`mustUpdateMemberAttrInStore`).
pub fn publish(store: &mut V2Store, m: &Member) {
    let path = format!("{}/attributes", member_key(m.id));
    log_failure(
        store.set(&path, false, &attributes(m), None, false, 0),
        &path,
    );
}

/// A member removed (`mustDeleteMemberFromStore`): two indexes.
pub fn remove(store: &mut V2Store, id: u64) {
    let path = member_key(id);
    log_failure(store.delete(&path, true, true, 0), &path);
    let removed = format!("/0/removed_members/{id:x}");
    log_failure(store.create(&removed, false, "", false, None, 0), &removed);
}

/// The cluster version decided (`mustSaveClusterVersionToStore`).
pub fn set_version(store: &mut V2Store, version: &str) {
    log_failure(
        store.set("/0/version", false, version, None, false, 0),
        "/0/version",
    );
}

/// etcd panics when these writes fail; every member applies the same ones in the same
/// order, so a failure means the store was not what raft says it is. Logged, not fatal:
/// the v2 store is a mirror here, the backend holds the membership.
fn log_failure<T>(r: Result<T, super::V2Error>, path: &str) {
    if let Err(e) = r {
        tracing::warn!(path, "failed to mirror the membership in the v2 store: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u64, learner: bool) -> Member {
        Member {
            id,
            name: "m1".into(),
            peer_urls: vec!["http://127.0.0.1:2380".into()],
            client_urls: vec!["http://127.0.0.1:2379".into()],
            is_learner: learner,
        }
    }

    #[test]
    fn writes_take_indexes_as_in_etcd() {
        let mut s = V2Store::new();
        let m = member(0xabc, true);
        add(&mut s, &m);
        publish(&mut s, &m);
        set_version(&mut s, "3.5.0");
        assert_eq!(s.index(), 3);
        update(
            &mut s,
            &Member {
                is_learner: false,
                ..m.clone()
            },
        );
        assert_eq!(s.index(), 4);
        remove(&mut s, m.id);
        assert_eq!(s.index(), 6);
        assert_eq!(s.peek_file("/0/removed_members/abc"), Some(""));
        assert_eq!(s.peek_file("/0/version"), Some("3.5.0"));
    }

    #[test]
    fn json_as_etcd_marshals_it() {
        let m = member(1, true);
        assert_eq!(
            raft_attributes(&m),
            r#"{"peerURLs":["http://127.0.0.1:2380"],"isLearner":true}"#
        );
        assert_eq!(
            attributes(&m),
            r#"{"name":"m1","clientURLs":["http://127.0.0.1:2379"]}"#
        );
        let unnamed = Member {
            name: String::new(),
            client_urls: vec![],
            ..m
        };
        assert_eq!(attributes(&unnamed), "{}");
    }
}

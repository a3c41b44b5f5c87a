//! Typed writer → typed reader round trips.

use chorus_api::authpb::{permission, Permission, Role, User};
use chorus_api::etcdserverpb::{AlarmMember, AlarmType};
use chorus_api::mvccpb::KeyValue;

use super::*;
use crate::proto::leasepb::Lease;

fn kv(key: &str, create: i64, modr: i64, version: i64, value: &str, lease: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        create_revision: create,
        mod_revision: modr,
        version,
        value: value.into(),
        lease,
    }
}

fn sample_revisions() -> Vec<RevisionEntry> {
    let put = |main, k, v, create, version| RevisionEntry {
        revision: Revision { main, sub: 0 },
        tombstone: false,
        kv: kv(k, create, main, version, v, 0),
    };
    vec![
        put(2, "a", "1", 2, 1),
        put(3, "a", "2", 2, 2),
        put(4, "b", "x", 4, 1),
        RevisionEntry {
            revision: Revision { main: 5, sub: 0 },
            tombstone: true,
            kv: KeyValue {
                key: b"a".to_vec(),
                ..Default::default()
            },
        },
        put(6, "c", "y", 6, 1),
    ]
}

#[test]
fn revision_keys_round_trip() {
    let r = Revision {
        main: 0x0102,
        sub: 3,
    };
    let k = r.to_key(false);
    assert_eq!(k.len(), 17);
    assert_eq!(&k[..9], &[0, 0, 0, 0, 0, 0, 1, 2, b'_']);
    assert_eq!(Revision::from_key(&k), Some((r, false)));
    assert_eq!(Revision::from_key(&r.to_key(true)), Some((r, true)));
    assert_eq!(Revision::from_key(b"short"), None);
    let mut bad = r.to_key(true);
    bad[17] = b'x';
    assert_eq!(Revision::from_key(&bad), None);
}

/// One value for every section.
struct Sections {
    alarms: Vec<AlarmMember>,
    auth: AuthInfo,
    cluster: ClusterInfo,
    leases: Vec<Lease>,
    members: Membership,
    meta: MetaInfo,
}

fn sample_sections() -> Sections {
    let alarms = vec![AlarmMember {
        member_id: 7,
        alarm: AlarmType::Nospace as i32,
    }];
    let auth = AuthInfo {
        enabled: Some(true),
        revision: Some(9),
        users: vec![User {
            name: b"root".to_vec(),
            password: b"hash".to_vec(),
            roles: vec!["root".into()],
            options: None,
        }],
        roles: vec![Role {
            name: b"r".to_vec(),
            key_permission: vec![Permission {
                perm_type: permission::Type::Readwrite as i32,
                key: b"a".to_vec(),
                range_end: b"b".to_vec(),
            }],
        }],
    };
    let cluster = ClusterInfo {
        cluster_version: Some("3.5.0".into()),
        downgrade: Some(DowngradeInfo::default()),
    };
    let leases = vec![
        Lease {
            id: 1,
            ttl: 60,
            remaining_ttl: 0,
        },
        Lease {
            id: 0x7fff_0000_0000_0001,
            ttl: 5,
            remaining_ttl: 3,
        },
    ];
    let members = Membership {
        members: vec![
            Member {
                id: 0x10,
                peer_urls: vec!["http://127.0.0.1:2380".into()],
                name: "n".into(),
                ..Default::default()
            },
            Member {
                id: 0xabc,
                peer_urls: vec!["http://x".into()],
                is_learner: true,
                ..Default::default()
            },
        ],
        removed: vec![5],
    };
    let meta = MetaInfo {
        consistent_index: Some(42),
        term: Some(3),
        scheduled_compact_rev: Some(4),
        finished_compact_rev: Some(4),
        conf_state: Some(ConfState {
            voters: vec![0x10],
            ..Default::default()
        }),
        storage_version: None,
        other: Default::default(),
    };
    Sections {
        alarms,
        auth,
        cluster,
        leases,
        members,
        meta,
    }
}

#[test]
fn backend_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let Sections {
        alarms,
        auth,
        cluster,
        leases,
        members,
        meta,
    } = sample_sections();
    let mut w = BackendWriter::create(&path).unwrap();
    w.write_alarms(&alarms).unwrap();
    w.write_auth(&auth).unwrap();
    w.write_cluster(&cluster).unwrap();
    for r in sample_revisions() {
        w.put_revision(&r).unwrap();
    }
    w.write_leases(&leases).unwrap();
    w.write_members(&members).unwrap();
    w.write_meta(&meta).unwrap();
    w.finish().unwrap();

    let b = Backend::open(&path).unwrap();
    assert_eq!(b.db().bucket_names().unwrap().len(), 10);
    assert_eq!(b.alarms().unwrap(), alarms);
    assert_eq!(b.auth().unwrap(), auth);
    assert_eq!(b.cluster().unwrap(), cluster);
    assert_eq!(
        b.revisions()
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap(),
        sample_revisions()
    );
    let from4: Vec<_> = b
        .revisions_from(Revision { main: 4, sub: 0 })
        .unwrap()
        .map(|r| r.unwrap().revision.main)
        .collect();
    assert_eq!(from4, vec![4, 5, 6]);
    assert_eq!(b.leases().unwrap(), leases);
    assert_eq!(b.members().unwrap(), members);
    assert_eq!(b.meta().unwrap(), meta);
    let raw = b.entries(buckets::MEMBERS).unwrap();
    assert_eq!(raw[0].0, b"10");
    assert_eq!(
        raw[0].1,
        br#"{"id":16,"peerURLs":["http://127.0.0.1:2380"],"name":"n"}"#
    );
    assert_eq!(
        raw[1].1,
        br#"{"id":2748,"peerURLs":["http://x"],"isLearner":true}"#
    );
}

#[test]
fn sections_out_of_order_and_revisions_out_of_order_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BackendWriter::create(dir.path().join("db")).unwrap();
    w.write_cluster(&ClusterInfo::default()).unwrap();
    assert!(matches!(
        w.write_auth(&AuthInfo::default()),
        Err(BackendError::Misuse { .. })
    ));
    let revs = sample_revisions();
    w.put_revision(&revs[1]).unwrap();
    assert!(w.put_revision(&revs[0]).is_err());
    w.write_meta(&MetaInfo::default()).unwrap();
    assert!(w.put_revision(&revs[4]).is_err());
}

#[test]
fn empty_writer_creates_every_bucket_and_trailer_appends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    BackendWriter::create(&path).unwrap().finish().unwrap();
    let len = std::fs::metadata(&path).unwrap().len();
    append_sha256_trailer(&path).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), len + 32);
    let b = Backend::open(&path).unwrap();
    assert_eq!(b.db().verify_sha256_trailer().unwrap(), Some(true));
    assert_eq!(b.db().bucket_names().unwrap().len(), 10);
    assert_eq!(b.meta().unwrap(), MetaInfo::default());
    assert_eq!(b.revisions().unwrap().count(), 0);
}

#[test]
fn member_json_from_go_parses() {
    let go = br#"{"id":12345,"peerURLs":null,"name":"x","clientURLs":["http://a"]}"#;
    let m: Member = serde_json::from_slice(go).unwrap();
    assert_eq!(m.peer_urls, Vec::<String>::new());
    assert_eq!(m.client_urls, vec!["http://a".to_string()]);
    let cs: ConfState = serde_json::from_slice(br#"{"voters":[1,2],"auto_leave":false}"#).unwrap();
    assert_eq!(cs.voters, vec![1, 2]);
    assert_eq!(
        serde_json::to_string(&cs).unwrap(),
        r#"{"voters":[1,2],"auto_leave":false}"#
    );
}

#[test]
fn malformed_etcd_values_are_typed_errors() {
    use crate::bbolt::BoltWriter;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut w = BoltWriter::create(&path).unwrap();
    for (bucket, key, value) in [
        (
            buckets::CLUSTER,
            b"downgrade".as_slice(),
            b"{not json".as_slice(),
        ),
        (buckets::KEY, b"short", b""),
        (buckets::LEASE, b"1234", b""),
        (buckets::MEMBERS, b"1", b"[]"),
        (buckets::META, keys::CONSISTENT_INDEX, b"\x01"),
    ] {
        w.begin_bucket(bucket).unwrap();
        w.put(key, value).unwrap();
        w.end_bucket().unwrap();
    }
    w.finish().unwrap();
    let b = Backend::open(&path).unwrap();
    let errors = [
        b.cluster().unwrap_err(),
        b.revisions().unwrap().next().unwrap().unwrap_err(),
        b.leases().unwrap_err(),
        b.members().unwrap_err(),
        b.meta().unwrap_err(),
    ];
    for (e, want) in errors.iter().zip([
        "downgrade",
        "73686f7274",
        "lease",
        "members",
        "consistent_index",
    ]) {
        assert!(e.to_string().contains(want), "{e}");
        assert!(e.to_string().contains("db"), "{e}");
    }
}

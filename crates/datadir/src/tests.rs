//! Export and import against each other, and import against what etcd never writes.

use chorus_api::authpb;
use chorus_api::etcdserverpb::AlarmMember;
use chorus_api::internalpb::{LeaseRecord, Member};
use chorus_api::mvccpb::KeyValue;
use chorus_etcd_format::backend::Backend as EtcdBackend;
use chorus_etcd_format::bbolt::BoltWriter;
use chorus_storage::backend::{self, meta_keys, Backend, BackendOptions};
use chorus_storage::members;
use prost::Message;
use redb::{ReadableTable, TableDefinition};

use crate::export::export_backend;
use crate::import::{import_backend, ImportError};

fn kv(key: &str, create: i64, rev: i64, version: i64, lease: i64) -> Vec<u8> {
    KeyValue {
        key: key.into(),
        create_revision: create,
        mod_revision: rev,
        version,
        value: format!("{key}@{rev}").into(),
        lease,
    }
    .encode_to_vec()
}

fn tombstone(key: &str) -> Vec<u8> {
    KeyValue {
        key: key.into(),
        ..Default::default()
    }
    .encode_to_vec()
}

/// A chorus backend with every kind of record.
fn source(dir: &std::path::Path) -> Backend {
    let b = Backend::open(&dir.join("src"), &BackendOptions::default()).unwrap();
    let tx = b.begin_durable_write().unwrap();
    {
        let mut t = tx.open_table(backend::KV).unwrap();
        t.insert((2, 0), kv("a", 2, 2, 1, 0).as_slice()).unwrap();
        t.insert((3, 0), kv("a", 2, 3, 2, 0).as_slice()).unwrap();
        t.insert((3, 1), kv("b", 3, 3, 1, 0x10).as_slice()).unwrap();
        t.insert((4, 0), tombstone("a").as_slice()).unwrap();
        let mut l = tx.open_table(backend::LEASES).unwrap();
        for (id, ttl, rem) in [(0x10, 600, 0), (0x7fff_0000, 30, 12)] {
            let r = LeaseRecord {
                id,
                ttl,
                remaining_ttl: rem,
            };
            l.insert(id, r.encode_to_vec().as_slice()).unwrap();
        }
        let mut a = tx.open_table(backend::ALARMS).unwrap();
        let alarm = AlarmMember {
            member_id: 7,
            alarm: 1,
        };
        a.insert(alarm.encode_to_vec().as_slice(), [].as_slice())
            .unwrap();
        let mut auth = tx.open_table(backend::AUTH).unwrap();
        auth.insert(b"authEnabled".as_slice(), [1u8].as_slice())
            .unwrap();
        auth.insert(b"authRevision".as_slice(), 9u64.to_be_bytes().as_slice())
            .unwrap();
        let user = authpb::User {
            name: b"root".to_vec(),
            password: b"$2a$10$x".to_vec(),
            roles: vec!["root".into()],
            options: None,
        };
        let mut u = tx.open_table(backend::AUTH_USERS).unwrap();
        u.insert(b"root".as_slice(), user.encode_to_vec().as_slice())
            .unwrap();
        let role = authpb::Role {
            name: b"root".to_vec(),
            key_permission: vec![],
        };
        let mut r = tx.open_table(backend::AUTH_ROLES).unwrap();
        r.insert(b"root".as_slice(), role.encode_to_vec().as_slice())
            .unwrap();
        let mut m = tx.open_table(backend::META).unwrap();
        backend::put_meta_u64(&mut m, meta_keys::CONSISTENT_INDEX, 42).unwrap();
        backend::put_meta_u64(&mut m, meta_keys::TERM, 5).unwrap();
        backend::put_meta_u64(&mut m, meta_keys::SCHEDULED_COMPACT, 3).unwrap();
        backend::put_meta_u64(&mut m, meta_keys::FINISHED_COMPACT, 3).unwrap();
    }
    let member = Member {
        id: 0xabc,
        name: "m0".into(),
        peer_urls: vec!["http://127.0.0.1:2380".into()],
        client_urls: vec!["http://127.0.0.1:2379".into()],
        is_learner: false,
    };
    members::save(&tx, &member).unwrap();
    let downgrade = chorus_api::internalpb::DowngradeInfoSet {
        enabled: true,
        ver: "3.4.0".into(),
    };
    members::set_downgrade(&tx, &downgrade).unwrap();
    tx.commit().unwrap();
    b
}

/// Every record of a table, as bytes.
fn rows<K: redb::Key + 'static>(
    b: &Backend,
    def: TableDefinition<K, &'static [u8]>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let tx = b.begin_read().unwrap();
    let t = tx.open_table(def).unwrap();
    t.iter()
        .unwrap()
        .map(|i| {
            let (k, v) = i.unwrap();
            let key = k.value();
            let bytes = K::as_bytes(&key).as_ref().to_vec();
            (bytes, v.value().to_vec())
        })
        .collect()
}

#[test]
fn export_then_import_keeps_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let bolt = dir.path().join("etcd.db");
    let summary = export_backend(&src.begin_read().unwrap(), &bolt).unwrap();
    assert_eq!(
        (summary.revisions, summary.revision, summary.leases),
        (4, 4, 2)
    );
    let etcd = EtcdBackend::open(&bolt).unwrap();
    assert_eq!(etcd.members().unwrap().members[0].name, "m0");
    let meta = etcd.meta().unwrap();
    assert_eq!((meta.consistent_index, meta.term), (Some(42), Some(5)));
    assert_eq!(meta.conf_state.unwrap().voters, vec![0xabc]);
    let revs: Vec<_> = etcd.revisions().unwrap().map(|r| r.unwrap()).collect();
    assert!(revs[3].tombstone && !revs[2].tombstone);

    let dst = Backend::open(&dir.path().join("dst"), &BackendOptions::default()).unwrap();
    let imported = import_backend(&etcd, &dst).unwrap();
    assert_eq!(imported.revisions, 4);
    assert_eq!(imported.tombstones, 1);
    assert_eq!(imported.current_revision, 4);
    assert_eq!(imported.leases, 2);
    assert!(imported.auth_enabled);
    // The downgrade job goes out in etcd's JSON and comes back; the cluster version is
    // left for the restoring etcd to decide.
    let cluster = etcd.cluster().unwrap();
    assert_eq!(cluster.cluster_version, None);
    let d = cluster.downgrade.unwrap();
    assert_eq!((d.target_version.as_str(), d.enabled), ("3.4.0", true));
    assert_eq!(imported.downgrade_target.as_deref(), Some("3.4.0"));
    assert_eq!(
        members::downgrade(&dst).unwrap(),
        members::downgrade(&src).unwrap()
    );
    assert_eq!(rows(&src, backend::KV), rows(&dst, backend::KV));
    assert_eq!(rows(&src, backend::LEASES), rows(&dst, backend::LEASES));
    assert_eq!(rows(&src, backend::ALARMS), rows(&dst, backend::ALARMS));
    for def in [backend::AUTH, backend::AUTH_USERS, backend::AUTH_ROLES] {
        assert_eq!(rows(&src, def), rows(&dst, def));
    }
    let meta = |b: &Backend, k: &str| {
        let tx = b.begin_read().unwrap();
        let t = tx.open_table(backend::META).unwrap();
        backend::get_meta_u64(&t, k).unwrap()
    };
    for k in [
        meta_keys::CONSISTENT_INDEX,
        meta_keys::TERM,
        meta_keys::SCHEDULED_COMPACT,
        meta_keys::FINISHED_COMPACT,
    ] {
        assert_eq!(meta(&src, k), meta(&dst, k), "{k}");
    }
}

/// A bbolt file with a `key` bucket (and a `lease` bucket) holding exactly `records`.
fn bolt_with(path: &std::path::Path, key: &[(Vec<u8>, Vec<u8>)], lease: &[(Vec<u8>, Vec<u8>)]) {
    let mut w = BoltWriter::create(path).unwrap();
    for (name, items) in [(b"key".as_slice(), key), (b"lease".as_slice(), lease)] {
        w.begin_bucket(name).unwrap();
        for (k, v) in items {
            w.put(k, v).unwrap();
        }
        w.end_bucket().unwrap();
    }
    w.finish().unwrap();
}

fn rev_key(main: i64, sub: i64, t: bool) -> Vec<u8> {
    chorus_etcd_format::backend::Revision { main, sub }.to_key(t)
}

#[test]
fn records_etcd_never_writes_are_refused_with_their_key() {
    let dir = tempfile::tempdir().unwrap();
    let lease = |id: i64, claimed: i64| {
        let l = chorus_etcd_format::proto::leasepb::Lease {
            id: claimed,
            ttl: 5,
            remaining_ttl: 0,
        };
        (id.to_be_bytes().to_vec(), l.encode_to_vec())
    };
    let cases: Vec<(&str, Vec<(Vec<u8>, Vec<u8>)>, Vec<(Vec<u8>, Vec<u8>)>)> = vec![
        (
            "not a revision",
            vec![(b"short".to_vec(), kv("a", 2, 2, 1, 0))],
            vec![],
        ),
        (
            "differs from the record's revision",
            vec![(rev_key(2, 0, false), kv("a", 2, 9, 1, 0))],
            vec![],
        ),
        (
            "not a valid mvccpb.KeyValue",
            vec![(rev_key(2, 0, false), vec![0xff; 3])],
            vec![],
        ),
        (
            "empty key",
            vec![(rev_key(2, 0, false), KeyValue::default().encode_to_vec())],
            vec![],
        ),
        (
            "appears twice",
            vec![
                (rev_key(2, 0, false), kv("a", 2, 2, 1, 0)),
                (rev_key(2, 0, true), tombstone("a")),
            ],
            vec![],
        ),
        (
            "negative",
            vec![(rev_key(-1, 0, false), kv("a", -1, -1, 1, 0))],
            vec![],
        ),
        ("says its ID is", vec![], vec![lease(5, 6)]),
        (
            "expected an 8-byte lease ID",
            vec![],
            vec![(vec![1, 2], vec![])],
        ),
    ];
    for (want, key, leases) in cases {
        let path = dir.path().join("bad.db");
        bolt_with(&path, &key, &leases);
        let etcd = EtcdBackend::open(&path).unwrap();
        let dst_path = dir.path().join(format!("dst-{}", want.len()));
        let dst = Backend::open(&dst_path, &BackendOptions::default()).unwrap();
        let err = import_backend(&etcd, &dst).unwrap_err();
        assert!(
            matches!(err, ImportError::BadRecord { .. }),
            "{want}: {err}"
        );
        assert!(err.to_string().contains(want), "{want}: {err}");
    }
}

#[test]
fn a_large_import_commits_in_chunks_and_counts_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let n = crate::import::CHUNK as i64 * 2 + 7;
    let key: Vec<_> = (2..2 + n)
        .map(|rev| {
            (
                rev_key(rev, 0, false),
                kv(&format!("k{rev}"), rev, rev, 1, 0),
            )
        })
        .collect();
    let path = dir.path().join("big.db");
    bolt_with(&path, &key, &[]);
    let etcd = EtcdBackend::open(&path).unwrap();
    let dst = Backend::open(&dir.path().join("dst"), &BackendOptions::default()).unwrap();
    let s = import_backend(&etcd, &dst).unwrap();
    assert_eq!((s.revisions, s.current_revision), (n as u64, n + 1));
    drop(dst);
    // Durable: a new open finds every record.
    let again = Backend::open(&dir.path().join("dst"), &BackendOptions::default()).unwrap();
    assert_eq!(rows(&again, backend::KV).len(), n as usize);
}

/// A backup in chorus's older dump format (what Maintenance.Snapshot sent before ADR 0007):
/// the dump, zero-padded to a multiple of 512 bytes, then the SHA-256 of all that.
fn chorus_dump_file(src: &Backend, path: &std::path::Path) {
    let mut bytes = Vec::new();
    Backend::dump(&src.begin_read().unwrap(), &mut bytes).unwrap();
    bytes.resize(bytes.len().div_ceil(512) * 512, 0);
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
    bytes.extend_from_slice(digest.as_ref());
    std::fs::write(path, bytes).unwrap();
}

fn restore_config(data_dir: &std::path::Path) -> chorus_config::Config {
    let args = [
        "--name=m0".to_string(),
        format!("--data-dir={}", data_dir.display()),
        "--initial-cluster=m0=http://127.0.0.1:2380".into(),
        "--initial-advertise-peer-urls=http://127.0.0.1:2380".into(),
    ];
    match chorus_config::Config::parse(&args, &[], &mut Vec::new()).unwrap() {
        chorus_config::Command::Run(cfg) => *cfg,
        other => panic!("{other:?}"),
    }
}

#[test]
fn both_formats_are_told_apart_by_content_and_restore() {
    use crate::snapshot::{format_of, restore, status, SnapshotFormat};
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let (dump, etcd) = (dir.path().join("a.backup"), dir.path().join("b.backup"));
    chorus_dump_file(&src, &dump);
    export_backend(&src.begin_read().unwrap(), &etcd).unwrap();
    chorus_etcd_format::backend::append_sha256_trailer(&etcd).unwrap();
    assert_eq!(format_of(&dump).unwrap(), SnapshotFormat::Chorus);
    assert_eq!(format_of(&etcd).unwrap(), SnapshotFormat::Etcd);
    for (file, format) in [
        (&dump, SnapshotFormat::Chorus),
        (&etcd, SnapshotFormat::Etcd),
    ] {
        assert_eq!(status(file).unwrap().revision, 4);
        let data_dir = dir.path().join(format!("{format:?}"));
        assert_eq!(
            restore(file, &restore_config(&data_dir), false).unwrap(),
            format
        );
        let db = Backend::open(&data_dir.join("member/snap/db"), &BackendOptions::default());
        let db = db.unwrap();
        assert_eq!(
            rows(&db, backend::KV),
            rows(&src, backend::KV),
            "{format:?}"
        );
        assert_eq!(
            rows(&db, backend::LEASES),
            rows(&src, backend::LEASES),
            "{format:?}"
        );
        assert_eq!(
            rows(&db, backend::AUTH_USERS),
            rows(&src, backend::AUTH_USERS)
        );
        // The new cluster's membership replaced the old one's.
        let members = members::load(&db).unwrap();
        assert_eq!(members.values().next().unwrap().name, "m0");
    }
}

#[test]
fn an_etcd_cluster_version_is_imported_unless_newer_than_chorus() {
    let dir = tempfile::tempdir().unwrap();
    for (version, kept) in [("3.4.0", true), ("3.5.0", true), ("3.6.0", false)] {
        let bolt = dir.path().join(format!("etcd-{version}.db"));
        let mut w = BoltWriter::create(&bolt).unwrap();
        w.begin_bucket(b"cluster").unwrap();
        w.put(b"clusterVersion", version.as_bytes()).unwrap();
        w.end_bucket().unwrap();
        w.finish().unwrap();
        let dst_path = dir.path().join(format!("dst-{version}"));
        let dst = Backend::open(&dst_path, &BackendOptions::default()).unwrap();
        let etcd = EtcdBackend::open(&bolt).unwrap();
        let s = import_backend(&etcd, &dst).unwrap();
        let stored = members::cluster_version(&dst).unwrap();
        if kept {
            assert_eq!(stored.as_deref(), Some(version));
            assert_eq!(s.cluster_version.as_deref(), Some(version));
        } else {
            assert_eq!(stored, None);
            assert_eq!(s.cluster_version_dropped.as_deref(), Some(version));
        }
    }
}

//! Writes a few small valid inputs per target into `corpus/<target>/seed-*`, produced by the
//! project's own writers, so each fuzzer starts from the formats' happy paths.

use std::path::Path;

use chorus_api::mvccpb::KeyValue;
use chorus_etcd_format::backend::{BackendWriter, MetaInfo, Revision, RevisionEntry};
use chorus_etcd_format::proto::{etcdserverpb_raft, raftpb, snappb, walpb};
use chorus_etcd_format::wal;
use chorus_storage::backend::{self, Backend, BackendOptions};
use chorus_storage::wal::{Wal, WalOptions, WalSnapshot};
use prost::Message;

type Seeds = Vec<(&'static str, Vec<u8>)>;

fn main() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let targets: [(&str, fn() -> Seeds); 7] = [
        ("wal_segment", wal_segment),
        ("backend_restore", backend_restore),
        ("etcd_wal", etcd_wal),
        ("etcd_bbolt", etcd_bbolt),
        ("etcd_snap", etcd_snap),
        ("gateway_json", gateway_json),
        ("config_yaml", config_yaml),
    ];
    for (target, make) in targets {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir).expect("corpus dir");
        for (name, bytes) in make() {
            std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("write seed");
        }
    }
}

/// A chorus WAL segment with its header, a hard state and a snapshot marker, trimmed of its
/// preallocated zeros.
fn wal_segment() -> Seeds {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = WalOptions {
        segment_size: 4096,
        unsafe_no_fsync: true,
        ..Default::default()
    };
    let mut w = Wal::create(dir.path(), b"chorus-meta", opts).expect("create wal");
    w.save(Some(&Default::default()), &[], true).expect("save");
    let snap = WalSnapshot { index: 0, term: 1 };
    w.save_snapshot(snap).expect("snapshot marker");
    drop(w);
    let seg = dir.path().join("0000000000000000-0000000000000000.wal");
    let mut bytes = std::fs::read(seg).expect("read segment");
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    bytes.truncate(end.next_multiple_of(8));
    vec![("segment", bytes)]
}

/// A backend dump with a revision, a meta key, a member and an auth key.
fn backend_restore() -> Seeds {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = Backend::open(&dir.path().join("db"), &BackendOptions::default()).expect("open");
    let tx = b.begin_durable_write().expect("write");
    {
        let mut kv = tx.open_table(backend::KV).expect("kv");
        kv.insert((2, 0), b"kv-record".as_slice()).expect("kv put");
        let mut meta = tx.open_table(backend::META).expect("meta");
        let term = 3u64.to_le_bytes();
        meta.insert(backend::meta_keys::TERM, term.as_slice())
            .expect("meta put");
        let mut members = tx.open_table(backend::MEMBERS).expect("members");
        members.insert(7, b"{}".as_slice()).expect("member put");
        let mut auth = tx.open_table(backend::AUTH).expect("auth");
        auth.insert(b"authEnabled".as_slice(), [1u8].as_slice())
            .expect("auth put");
    }
    tx.commit().expect("commit");
    let mut dump = Vec::new();
    Backend::dump(&b.begin_read().expect("read"), &mut dump).expect("dump");
    vec![("dump", dump)]
}

/// An etcd WAL segment: CRC, metadata, snapshot marker, hard state and one entry.
fn etcd_wal() -> Seeds {
    let meta = etcdserverpb_raft::Metadata {
        node_id: 1,
        cluster_id: 2,
    };
    let entry = raftpb::Entry {
        term: 1,
        index: 1,
        data: b"put".to_vec(),
        ..Default::default()
    };
    let state = raftpb::HardState {
        term: 1,
        vote: 1,
        commit: 1,
    };
    let records = [
        (wal::METADATA_TYPE, meta.encode_to_vec()),
        (
            wal::SNAPSHOT_TYPE,
            walpb::Snapshot::default().encode_to_vec(),
        ),
        (wal::STATE_TYPE, state.encode_to_vec()),
        (wal::ENTRY_TYPE, entry.encode_to_vec()),
    ];
    let mut out = Vec::new();
    let mut crc = 0;
    frame(&mut out, wal::CRC_TYPE, 0, Vec::new());
    for (ty, data) in records {
        crc = crc32c::crc32c_append(crc, &data);
        frame(&mut out, ty, crc, data);
    }
    vec![("segment", out)]
}

fn frame(out: &mut Vec<u8>, ty: i64, crc: u32, data: Vec<u8>) {
    let rec = walpb::Record {
        r#type: ty,
        crc,
        data,
    };
    let bytes = rec.encode_to_vec();
    out.extend_from_slice(&(bytes.len() as i64).to_le_bytes());
    out.extend_from_slice(&bytes);
}

/// An etcd backend with its meta bucket and two revisions.
fn etcd_bbolt() -> Seeds {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let mut w = BackendWriter::create(&path).expect("create db");
    let meta = MetaInfo {
        consistent_index: Some(3),
        term: Some(1),
        ..Default::default()
    };
    for main in 1..3 {
        let kv = KeyValue {
            key: b"foo".to_vec(),
            value: b"bar".to_vec(),
            mod_revision: main,
            ..Default::default()
        };
        let entry = RevisionEntry {
            revision: Revision { main, sub: 0 },
            tombstone: false,
            kv,
        };
        w.put_revision(&entry).expect("revision");
    }
    w.write_meta(&meta).expect("meta");
    w.finish().expect("finish");
    vec![("backend", std::fs::read(path).expect("read db"))]
}

const V2_STORE: &str = r#"{"Root":{"Path":"/","Children":{"0":{"Path":"/0","Children":{"version":{"Path":"/0/version","Value":"3.5.0"}}}}},"CurrentIndex":3,"CurrentVersion":2}"#;

/// A `.snap` file around a v2 store, and the store's JSON alone.
fn etcd_snap() -> Seeds {
    let snap = raftpb::Snapshot {
        data: V2_STORE.as_bytes().to_vec(),
        ..Default::default()
    };
    let data = snap.encode_to_vec();
    let envelope = snappb::Snapshot {
        crc: crc32c::crc32c(&data),
        data,
    };
    vec![
        ("snap", envelope.encode_to_vec()),
        ("store", V2_STORE.as_bytes().to_vec()),
    ]
}

fn gateway_json() -> Seeds {
    let bodies: [(&str, u8, &str); 4] = [
        ("put", 0, r#"{"key":"Zm9v","value":"YmFy","lease":"7"}"#),
        (
            "range",
            1,
            r#"{"key":"Zm9v","range_end":"Zm9w","limit":10}"#,
        ),
        (
            "txn",
            3,
            r#"{"compare":[{"key":"Zm9v","target":"VALUE","value":"YmFy"}],"success":[{"request_put":{"key":"Zm9v","value":"YmF6"}}]}"#,
        ),
        (
            "watch",
            5,
            r#"{"create_request":{"key":"Zm9v","start_revision":2}}"#,
        ),
    ];
    let seed = |(name, which, body): (&'static str, u8, &str)| {
        let mut bytes = vec![which];
        bytes.extend_from_slice(body.as_bytes());
        (name, bytes)
    };
    bodies.into_iter().map(seed).collect()
}

fn config_yaml() -> Seeds {
    let yaml =
        "name: infra1\ndata-dir: /var/lib/chorus\nlisten-client-urls: http://localhost:2379\n\
                initial-cluster: infra1=http://localhost:2380\nsnapshot-count: 10000\n\
                client-transport-security:\n  auto-tls: true\nlog-level: info\n";
    vec![("config", yaml.as_bytes().to_vec())]
}

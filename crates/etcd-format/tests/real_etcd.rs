//! The real etcd is the oracle: each supported version writes data through etcdctl, is
//! stopped, and what this crate reads from its data directory (db, WAL, .snap) and from
//! `snapshot save` files must match what etcdctl reported; a db written by this crate must
//! pass `snapshot status`, `snapshot restore`, and serve the same data from a real etcd.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chorus_api::etcdserverpb::RangeResponse;
use chorus_api::mvccpb::KeyValue;
use chorus_etcd_format::backend::{append_sha256_trailer, rewrite, Backend, RevisionEntry};
use chorus_etcd_format::entry::{decode_entry, request_kind, EntryPayload};
use chorus_etcd_format::snap::{list_snap_files, parse_v2_store, read_snap_file};
use chorus_etcd_format::wal::{read_all, WalDecoder};
use common::{base64_decode, free_port, run_tool, Etcd, EtcdBins};

/// Transactions of [`TXN_OPS`] puts each: enough keys for a three-level `key` tree.
const TXNS: usize = 32;
const TXN_OPS: usize = 128;
const BIG_VALUE_LEN: usize = 50_000;

/// What etcdctl reported about the data written.
struct Observed {
    range: RangeResponse,
    compact_rev: i64,
    /// Lease ID → (granted TTL, attached keys).
    leases: BTreeMap<i64, (i64, Vec<Vec<u8>>)>,
    snapshot: PathBuf,
}

#[test]
fn etcd_3_4() {
    if let Some(bins) = common::etcd34() {
        scenario(Box::leak(Box::new(bins)));
    }
}

#[test]
fn etcd_3_5() {
    if let Some(bins) = common::etcd35() {
        scenario(Box::leak(Box::new(bins)));
    }
}

fn scenario(bins: &'static EtcdBins) {
    let work = tempfile::tempdir().unwrap();
    let data_dir = work.path().join("data");
    let mut etcd = Etcd::start(bins, &data_dir, free_port(), &["--snapshot-count", "20"]);
    let observed = populate(&etcd, work.path());
    etcd.stop();
    let member = member_dir(&data_dir);
    check_backend(bins, &member.join("snap/db"), &observed, &etcd, true);
    check_backend(bins, &observed.snapshot, &observed, &etcd, false);
    check_wal(bins, &member, &observed);
    check_snap_files(&member, &etcd);
    check_writer(bins, &observed, work.path());
}

fn member_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("member")
}

fn populate(e: &Etcd, work: &Path) -> Observed {
    for v in ["v1", "v2", "v3"] {
        e.ctl(&["put", "k1", v]);
    }
    e.ctl(&["put", "k2", "x"]);
    e.ctl(&["del", "k2"]);
    let compact_rev = 3; // k1=v2; k1=v1 (revision 2) goes away
    e.ctl(&["compact", &compact_rev.to_string()]);
    let lease1 = grant(e, 600);
    e.ctl(&["put", "lk1", "a", &format!("--lease={lease1:x}")]);
    e.ctl(&["put", "lk2", "b", &format!("--lease={lease1:x}")]);
    let lease2 = grant(e, 300);
    e.ctl(&["put", "big", &"B".repeat(BIG_VALUE_LEN)]);
    for t in 0..TXNS {
        let ops: String = (0..TXN_OPS)
            .map(|i| format!("put many/{:05} {}\n", t * TXN_OPS + i, "v".repeat(150)))
            .collect();
        e.ctl_stdin(&["txn"], Some(&format!("\n{ops}\n\n")));
    }
    e.ctl(&["del", "many/00000", "many/00010"]);
    for args in [
        &["user", "add", "root:rootpw", "--interactive=false"][..],
        &["role", "add", "root"],
        &["user", "grant-role", "root", "root"],
        &["role", "add", "r1"],
        &["role", "grant-permission", "r1", "readwrite", "foo"],
        &["user", "add", "u1:pw", "--interactive=false"],
        &["user", "grant-role", "u1", "r1"],
    ] {
        e.ctl(args);
    }
    let range: RangeResponse =
        serde_json::from_str(&e.ctl(&["get", "--prefix", "", "-w", "json"])).unwrap();
    let mut leases = BTreeMap::new();
    for id in [lease1, lease2] {
        leases.insert(id, time_to_live(e, id));
    }
    let snapshot = work.join("saved.db");
    e.ctl(&["snapshot", "save", snapshot.to_str().unwrap()]);
    e.ctl(&["auth", "enable"]);
    Observed {
        range,
        compact_rev,
        leases,
        snapshot,
    }
}

fn grant(e: &Etcd, ttl: i64) -> i64 {
    let out = e.ctl(&["lease", "grant", &ttl.to_string()]);
    let hex = out.split_whitespace().nth(1).expect("lease <id> granted");
    i64::from_str_radix(hex, 16).unwrap()
}

fn time_to_live(e: &Etcd, id: i64) -> (i64, Vec<Vec<u8>>) {
    let out = e.ctl(&[
        "lease",
        "timetolive",
        &format!("{id:x}"),
        "--keys",
        "-w",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let keys = v["keys"]
        .as_array()
        .map(|ks| {
            ks.iter()
                .map(|k| base64_decode(k.as_str().unwrap()))
                .collect()
        })
        .unwrap_or_default();
    (v["granted-ttl"].as_i64().unwrap(), keys)
}

/// The live key-values: the latest record of each key, unless a tombstone.
fn current_state(revs: &[RevisionEntry]) -> BTreeMap<Vec<u8>, KeyValue> {
    let mut state = BTreeMap::new();
    for r in revs {
        if r.tombstone {
            state.remove(&r.kv.key);
        } else {
            state.insert(r.kv.key.clone(), r.kv.clone());
        }
    }
    state
}

fn check_backend(bins: &EtcdBins, path: &Path, o: &Observed, e: &Etcd, data_dir: bool) {
    let b = Backend::open(path).unwrap();
    assert_eq!(
        b.db().verify_sha256_trailer().unwrap(),
        if data_dir { None } else { Some(true) }
    );
    let revs: Vec<RevisionEntry> = b.revisions().unwrap().collect::<Result<_, _>>().unwrap();
    let header = o.range.header.as_ref().unwrap();
    assert_eq!(revs.last().unwrap().revision.main, header.revision);
    let state = current_state(&revs);
    let expected: BTreeMap<Vec<u8>, KeyValue> = o
        .range
        .kvs
        .iter()
        .map(|kv| (kv.key.clone(), kv.clone()))
        .collect();
    assert_eq!(state.len(), expected.len());
    assert!(
        state == expected,
        "{}: live keys differ from etcdctl get",
        path.display()
    );
    assert_eq!(state[b"big".as_slice()].value.len(), BIG_VALUE_LEN);
    let shape = b.db().bucket(b"key").unwrap().unwrap().stats().unwrap();
    assert!(
        shape.depth >= 3 && shape.overflow_pages >= 12,
        "{}: key bucket {shape:?}",
        path.display()
    );
    // Compaction removed k1's first version and kept the rest of its history.
    let k1: Vec<i64> = revs
        .iter()
        .filter(|r| r.kv.key == b"k1")
        .map(|r| r.revision.main)
        .collect();
    assert_eq!(k1, vec![3, 4]);
    assert!(revs.iter().any(|r| r.tombstone && r.kv.key == b"k2"));
    assert_eq!(
        revs.iter()
            .filter(|r| r.tombstone && r.kv.key.starts_with(b"many/"))
            .count(),
        10
    );
    check_meta_leases_members(bins, &b, o, e, &state);
    check_auth(&b, data_dir);
    assert!(b.alarms().unwrap().is_empty());
}

fn check_meta_leases_members(
    bins: &EtcdBins,
    b: &Backend,
    o: &Observed,
    e: &Etcd,
    state: &BTreeMap<Vec<u8>, KeyValue>,
) {
    let header = o.range.header.as_ref().unwrap();
    let meta = b.meta().unwrap();
    assert_eq!(meta.finished_compact_rev, Some(o.compact_rev));
    assert_eq!(meta.scheduled_compact_rev, Some(o.compact_rev));
    assert!(meta.consistent_index.unwrap() > 0);
    assert_eq!(meta.term.is_some(), bins.version != "3.4");
    assert_eq!(meta.conf_state.is_some(), bins.version != "3.4");

    let leases = b.leases().unwrap();
    assert_eq!(
        leases.iter().map(|l| l.id).collect::<Vec<_>>(),
        o.leases.keys().copied().collect::<Vec<_>>()
    );
    for l in &leases {
        let (granted, keys) = &o.leases[&l.id];
        assert_eq!(l.ttl, *granted);
        let attached: Vec<Vec<u8>> = state
            .values()
            .filter(|kv| kv.lease == l.id)
            .map(|kv| kv.key.clone())
            .collect();
        let mut keys = keys.clone();
        keys.sort();
        assert_eq!(&attached, &keys);
    }
    let members = b.members().unwrap();
    assert_eq!(members.members.len(), 1);
    assert_eq!(members.members[0].id, header.member_id);
    assert_eq!(members.members[0].peer_urls, vec![e.peer_url.clone()]);
    assert_eq!(members.members[0].name, e.name);
    let cluster = b.cluster().unwrap();
    assert!(
        cluster.cluster_version.unwrap().starts_with(bins.version),
        "cluster version"
    );
}

fn check_auth(b: &Backend, data_dir: bool) {
    let auth = b.auth().unwrap();
    // Auth was enabled after the snapshot was saved.
    assert_eq!(auth.enabled.unwrap_or(false), data_dir);
    let users: BTreeMap<Vec<u8>, Vec<String>> = auth
        .users
        .iter()
        .map(|u| (u.name.clone(), u.roles.clone()))
        .collect();
    assert_eq!(users[b"u1".as_slice()], vec!["r1".to_string()]);
    assert_eq!(users[b"root".as_slice()], vec!["root".to_string()]);
    let r1 = auth.roles.iter().find(|r| r.name == b"r1").unwrap();
    assert_eq!(r1.key_permission.len(), 1);
    assert_eq!(r1.key_permission[0].key, b"foo");
    assert_eq!(r1.key_permission[0].perm_type, 2, "READWRITE");
    assert!(auth.revision.unwrap() > 1);
}

fn check_wal(bins: &EtcdBins, member: &Path, o: &Observed) {
    let wal_dir = member.join("wal");
    let wal = read_all(&wal_dir, None).unwrap();
    let header = o.range.header.as_ref().unwrap();
    let md = wal.metadata.unwrap();
    assert_eq!(
        (md.node_id, md.cluster_id),
        (header.member_id, header.cluster_id)
    );
    assert_eq!(wal.torn_tail, None);
    let mut kinds: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut k1_puts = 0;
    let mut conf_member = None;
    let mut v2_member_paths = 0;
    for e in &wal.entries {
        match decode_entry(e).unwrap() {
            EntryPayload::Request(r) => {
                *kinds.entry(request_kind(&r)).or_default() += 1;
                k1_puts += usize::from(r.put.as_ref().is_some_and(|p| p.key == b"k1"));
                if let Some(c) = &r.compaction {
                    assert_eq!(c.revision, o.compact_rev);
                }
            }
            EntryPayload::V2Request(r) => {
                v2_member_paths += usize::from(r.path.starts_with(b"/0/members/"))
            }
            EntryPayload::ConfChange { context, .. } => conf_member = context.map(|c| c.member),
            EntryPayload::Empty | EntryPayload::ConfChangeV2(_) => {}
        }
    }
    assert_eq!(k1_puts, 3);
    assert_eq!(kinds["txn"], TXNS);
    assert_eq!(kinds["compaction"], 1);
    assert_eq!(kinds["lease_grant"], 2);
    assert_eq!(kinds["delete_range"], 2);
    assert_eq!(kinds["auth_user_add"], 2);
    assert_eq!(kinds["auth_enable"], 1);
    let conf_member = conf_member.expect("a ConfChange adding the member");
    assert_eq!(conf_member.id, header.member_id);
    // A new member publishes its attributes through the v2 store (3.4; 3.5 until the cluster
    // version is 3.5) or with cluster_member_attr_set (3.5+).
    let published = v2_member_paths + kinds.get("cluster_member_attr_set").copied().unwrap_or(0);
    assert!(
        published >= 1,
        "etcd {}: no member publish in {kinds:?}",
        bins.version
    );
    let hs = wal.hard_state.unwrap();
    let db_meta = Backend::open(member.join("snap/db"))
        .unwrap()
        .meta()
        .unwrap();
    assert!(hs.commit >= db_meta.consistent_index.unwrap());
    assert!(wal.entries.last().unwrap().index >= hs.commit);
    check_torn_tail(&wal_dir);
}

/// Cuts the last record of a copy of the WAL in two: reading stops before it, as etcd does.
fn check_torn_tail(wal_dir: &Path) {
    let copy = tempfile::tempdir().unwrap();
    let segments = chorus_etcd_format::wal::list_segments(wal_dir).unwrap();
    for s in &segments {
        std::fs::copy(&s.path, copy.path().join(s.path.file_name().unwrap())).unwrap();
    }
    let last = copy
        .path()
        .join(segments.last().unwrap().path.file_name().unwrap());
    let records = chorus_etcd_format::wal::list_segments(copy.path()).unwrap();
    let offsets: Vec<(PathBuf, u64)> = WalDecoder::new(records)
        .map(|r| r.map(|(p, off, _)| (p, off)).unwrap())
        .collect();
    let (path, last_off) = offsets.last().unwrap().clone();
    assert_eq!(path, last);
    let full = read_all(copy.path(), None).unwrap();
    for cut in [last_off + 3, last_off + 12] {
        let f = std::fs::OpenOptions::new().write(true).open(&last).unwrap();
        f.set_len(cut).unwrap();
        drop(f);
        let torn = read_all(copy.path(), None).unwrap();
        let tail = torn.torn_tail.expect("a torn tail");
        assert_eq!((tail.file, tail.offset), (last.clone(), last_off));
        assert!(torn.entries.len() + 1 >= full.entries.len());
    }
}

fn check_snap_files(member: &Path, e: &Etcd) {
    let snaps = list_snap_files(member.join("snap")).unwrap();
    let newest = snaps.last().expect("--snapshot-count 20 made a .snap file");
    let snap = read_snap_file(&newest.path).unwrap();
    let md = snap.metadata.clone().unwrap();
    assert_eq!((md.index, md.term), (newest.index, newest.term));
    let store = parse_v2_store(&snap.data).unwrap();
    let ms = store.membership().unwrap();
    assert_eq!(ms.members.len(), 1);
    assert_eq!(ms.members[0].peer_urls, vec![e.peer_url.clone()]);
    assert!(store.cluster_version().is_some());
    let wal = read_all(member.join("wal"), Some((md.index, md.term))).unwrap();
    assert_eq!(wal.entries.first().unwrap().index, md.index + 1);
}

/// `snapshot status` as JSON: (hash, revision, totalKey).
fn status(bins: &EtcdBins, path: &Path) -> (u64, i64, u64) {
    let tool = bins.etcdutl.as_ref().unwrap_or(&bins.etcdctl);
    let out = run_tool(
        tool,
        &["snapshot", "status", path.to_str().unwrap(), "-w", "json"],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    if bins.etcdutl.is_some() {
        // etcdctl of 3.5 still reads snapshots too.
        let out = run_tool(
            &bins.etcdctl,
            &["snapshot", "status", path.to_str().unwrap(), "-w", "json"],
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&out).unwrap()["hash"],
            v["hash"]
        );
    }
    (
        v["hash"].as_u64().unwrap(),
        v["revision"].as_i64().unwrap(),
        v["totalKey"].as_u64().unwrap(),
    )
}

fn check_writer(bins: &'static EtcdBins, o: &Observed, work: &Path) {
    let written = work.join("written.db");
    rewrite(&Backend::open(&o.snapshot).unwrap(), &written).unwrap();
    append_sha256_trailer(&written).unwrap();
    // The same buckets, keys and values: the same hash.
    assert_eq!(status(bins, &written), status(bins, &o.snapshot));

    let port = free_port();
    let peer = format!("http://127.0.0.1:{}", port + 1);
    let restored = work.join("restored");
    let tool = bins.etcdutl.as_ref().unwrap_or(&bins.etcdctl);
    run_tool(
        tool,
        &[
            "snapshot",
            "restore",
            written.to_str().unwrap(),
            "--data-dir",
            restored.to_str().unwrap(),
            "--name",
            "m1",
            "--initial-cluster",
            &format!("m1={peer}"),
            "--initial-advertise-peer-urls",
            &peer,
        ],
    );
    let mut e = Etcd::start(bins, &restored, port, &[]);
    let range: RangeResponse =
        serde_json::from_str(&e.ctl(&["get", "--prefix", "", "-w", "json"])).unwrap();
    assert!(
        range.kvs == o.range.kvs,
        "etcd on the restored written db serves other data"
    );
    assert_eq!(
        range.header.unwrap().revision,
        o.range.header.as_ref().unwrap().revision
    );
    let leases: serde_json::Value =
        serde_json::from_str(&e.ctl(&["lease", "list", "-w", "json"])).unwrap();
    let mut ids: Vec<i64> = leases["leases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_i64().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, o.leases.keys().copied().collect::<Vec<_>>());
    let err = e.try_ctl(&["get", "k1", "--rev", "2"]).unwrap_err();
    assert!(err.contains("compacted"), "{err}");
    // It takes writes on top.
    e.ctl(&["put", "after", "restore"]);
    assert!(e.ctl(&["get", "after"]).contains("restore"));
    e.stop();
}

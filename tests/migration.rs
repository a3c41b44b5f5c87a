//! Bringing etcd's data to chorus and back, with the real etcd 3.4.23 and 3.5.1 as oracles.
//! Every command is a block of docs/migration.md, run as written (`fleet::doc_block`).
//!
//! ```text
//!  etcd (populate: versions, a delete, a compaction, leases with keys, users and roles,
//!        auth on, a NOSPACE alarm) ── observe ──┐
//!   ├─ snapshot save → chorusctl snapshot restore → chorus (1 and 3 members) ─ observe ─┤ equal
//!   ├─ stop (or kill -9, WAL ahead of the backend) → chorus on the same data dir ─────┤
//!   └─ make-mirror → chorus: values only (revisions and versions are the destination's)
//!  chorus → snapshot save → etcdutl 3.5 / etcdctl 3.4 snapshot restore → etcd ─ observe ┘
//! ```
//! Observed with the source version's etcdctl as root: `get "" --prefix -w json`
//! (revision, and every key's create/mod revision, version, value and lease), a read of a
//! compacted revision, `lease list` and `lease timetolive --keys` (granted TTL, keys),
//! `user list`, `user get`, `role get`, `alarm list`, and u1's own login.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::fleet::{doc_block, run, Fleet, Ran, Tools};
use common::http::{send, HttpRequest};

const ROOT: &str = "root:rootpw";

fn vars(fleet: &Fleet, i: usize, more: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v = fleet.vars(i);
    v.push(("ETCDCTL_API".into(), "3".into()));
    v.extend(more.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    v
}

/// etcdctl of `t` against `ep` as root (auth may be on or off).
async fn ctl(t: &Tools, ep: &str, args: &[&str]) -> Ran {
    ctl_as(t, ep, Some(ROOT), args).await
}

async fn ctl_as(t: &Tools, ep: &str, user: Option<&str>, args: &[&str]) -> Ran {
    let mut line = format!("etcdctl --endpoints={ep} --command-timeout=20s");
    if let Some(u) = user {
        line += &format!(" --user={u}");
    }
    for a in args {
        line += &format!(" '{a}'");
    }
    let v = vec![("ETCDCTL_API".to_string(), "3".to_string())];
    run(&line, Path::new("/"), &v, &t.path()).await
}

async fn ok(t: &Tools, ep: &str, args: &[&str]) -> String {
    let r = ctl(t, ep, args).await;
    assert_eq!(r.code, 0, "etcdctl {args:?}: {r:?}");
    r.stdout
}

/// Starts member `i` of `fleet` with the `chorus-start` (or `etcd-start`) block and waits
/// until it is healthy.
async fn start(fleet: &mut Fleet, i: usize, block: &str, t: &Tools, append: &str) {
    let command = format!("{} {append}", doc_block(block).trim_end());
    fleet.spawn(i, &command, &[], &t.path());
    fleet.wait_ready(i, &t.etcdctl(), Some(ROOT)).await;
}

/// The lease ID `lease grant` printed.
fn lease_id(out: &str) -> i64 {
    let hex = out.split_whitespace().nth(1).expect("lease <id> granted");
    i64::from_str_radix(hex, 16).unwrap()
}

/// What the tests write to etcd before moving it: versions, a delete, a compaction at
/// revision 3, users and roles, auth on, then (as root, after etcd's last forced backend
/// commit) two leases (one with keys), 40 keys in two transactions, and a NOSPACE alarm.
/// Returns the leases.
async fn populate(t: &Tools, ep: &str) -> Vec<i64> {
    for args in [
        &["put", "a", "1"][..],
        &["put", "a", "2"],
        &["put", "a", "3"],
        &["put", "b", "x"],
        &["del", "b"],
        &["compact", "3"],
        &["put", "c", "y"],
    ] {
        ok(t, ep, args).await;
    }
    add_users(t, ep).await;
    ok(t, ep, &["auth", "enable"]).await;
    let l1 = lease_id(&ok(t, ep, &["lease", "grant", "600"]).await);
    let l2 = lease_id(&ok(t, ep, &["lease", "grant", "300"]).await);
    for k in ["l1", "l2"] {
        ok(t, ep, &["put", k, "leased", &format!("--lease={l1:x}")]).await;
    }
    for txn in 0..2 {
        let ops: String = (0..20)
            .map(|i| format!("put many/{txn}{i:02} {}\\n", "v".repeat(100)))
            .collect();
        let script =
            format!("printf '\\n{ops}\\n\\n' | etcdctl --endpoints={ep} --user={ROOT} txn");
        let r = run(&script, Path::new("/"), &[], &t.path()).await;
        assert_eq!(r.code, 0, "{r:?}");
    }
    raise_alarm(ep).await;
    vec![l1, l2]
}

async fn add_users(t: &Tools, ep: &str) {
    for args in [
        &["user", "add", "root:rootpw", "--interactive=false"][..],
        &["role", "add", "root"],
        &["user", "grant-role", "root", "root"],
        &["role", "add", "r1"],
        &["role", "grant-permission", "r1", "readwrite", "foo"],
        &[
            "role",
            "grant-permission",
            "r1",
            "read",
            "many/",
            "--prefix=true",
        ],
        &["user", "add", "u1:pw1", "--interactive=false"],
        &["user", "grant-role", "u1", "r1"],
    ] {
        ok(t, ep, args).await;
    }
}

/// A NOSPACE alarm for the member at `ep`, as root (etcdctl cannot raise one; the API
/// can).
async fn raise_alarm(ep: &str) {
    use chorus_api::etcdserverpb::{
        alarm_request::AlarmAction, AlarmRequest, AlarmType, AuthenticateRequest,
    };
    let client = chorus_client::Client::connect(&[ep.to_string()], Default::default())
        .await
        .unwrap();
    let auth = AuthenticateRequest {
        name: "root".into(),
        password: "rootpw".into(),
    };
    let token = client.auth_client().authenticate(auth).await.unwrap();
    let token: tonic::metadata::MetadataValue<_> = token.into_inner().token.parse().unwrap();
    let mut status = tonic::Request::new(chorus_api::etcdserverpb::StatusRequest {});
    status.metadata_mut().insert("token", token.clone());
    let status = client.maintenance_client().status(status).await.unwrap();
    let mut req = tonic::Request::new(AlarmRequest {
        action: AlarmAction::Activate as i32,
        member_id: status.into_inner().header.unwrap().member_id,
        alarm: AlarmType::Nospace as i32,
    });
    req.metadata_mut().insert("token", token);
    client.maintenance_client().alarm(req).await.unwrap();
}

/// What a member serves, as the source version's etcdctl shows it.
#[derive(Debug, PartialEq)]
struct Seen {
    revision: i64,
    kvs: serde_json::Value,
    compacted: String,
    leases: BTreeMap<String, (i64, Vec<String>)>,
    users: String,
    user_u1: String,
    role_r1: String,
    alarms: String,
    u1_reads_foo: i32,
}

async fn observe(t: &Tools, ep: &str) -> Seen {
    let all: serde_json::Value =
        serde_json::from_str(&ok(t, ep, &["get", "", "--prefix", "-w", "json"]).await).unwrap();
    let compacted = ctl(t, ep, &["get", "a", "--rev=2"]).await;
    let mut leases = BTreeMap::new();
    for id in ok(t, ep, &["lease", "list"]).await.lines().skip(1) {
        let ttl: serde_json::Value = serde_json::from_str(
            &ok(t, ep, &["lease", "timetolive", id, "--keys", "-w", "json"]).await,
        )
        .unwrap();
        let mut keys: Vec<String> = ttl["keys"]
            .as_array()
            .map(|k| k.iter().map(|k| k.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default();
        keys.sort();
        leases.insert(id.to_owned(), (ttl["granted-ttl"].as_i64().unwrap(), keys));
    }
    let u1 = ctl_as(t, ep, Some("u1:pw1"), &["get", "foo"]).await;
    Seen {
        revision: all["header"]["revision"].as_i64().unwrap(),
        kvs: all["kvs"].clone(),
        compacted: compacted
            .stderr
            .lines()
            .last()
            .unwrap_or_default()
            .to_owned(),
        leases,
        users: ok(t, ep, &["user", "list"]).await,
        user_u1: ok(t, ep, &["user", "get", "u1"]).await,
        role_r1: ok(t, ep, &["role", "get", "r1"]).await,
        alarms: ok(t, ep, &["alarm", "list"]).await,
        u1_reads_foo: u1.code,
    }
}

/// The source's data as etcd served it, checked for what the scenario wrote.
fn check_source(seen: &Seen, leases: &[i64]) {
    assert!(seen.compacted.contains("compacted"), "{seen:?}");
    assert_eq!(seen.kvs.as_array().unwrap().len(), 44, "{seen:?}");
    assert_eq!(seen.leases.len(), leases.len());
    assert!(seen.alarms.contains("NOSPACE"), "{seen:?}");
    assert_eq!(seen.u1_reads_foo, 0);
}

/// Disarms the alarm and writes: the moved member takes writes again.
async fn disarm_and_write(t: &Tools, ep: &str, revision: i64) {
    ok(t, ep, &["alarm", "disarm"]).await;
    ok(t, ep, &["put", "after", "move"]).await;
    let v: serde_json::Value =
        serde_json::from_str(&ok(t, ep, &["get", "after", "-w", "json"]).await).unwrap();
    assert_eq!(v["kvs"][0]["mod_revision"].as_i64(), Some(revision + 1));
}

async fn run_block(block: &str, cwd: &Path, v: &[(String, String)], t: &Tools) -> Ran {
    let r = run(&doc_block(block), cwd, v, &t.path()).await;
    assert_eq!(r.code, 0, "block {block}: {r:?}");
    r
}

/// `snapshot status` of `file` prints the same bytes from chorusctl as from etcd's own
/// tool of `t`'s version (etcdutl 3.5, etcdctl 3.4), in every output format.
async fn same_status(file: &Path, t: &Tools) {
    let oracle = if t.etcdutl { "etcdutl" } else { "etcdctl" };
    let v = vec![("ETCDCTL_API".to_string(), "3".to_string())];
    for w in ["simple", "table", "json", "fields"] {
        let mut outs = Vec::new();
        for tool in ["chorusctl", oracle] {
            let line = format!("{tool} snapshot status '{}' -w {w}", file.display());
            let r = run(&line, Path::new("/"), &v, &t.path()).await;
            assert_eq!(r.code, 0, "{tool}: {r:?}");
            outs.push(r.stdout);
        }
        assert_eq!(
            outs[0], outs[1],
            "snapshot status -w {w}: chorusctl vs {oracle}"
        );
    }
}

/// A populated one-member etcd of version `t`, observed.
async fn etcd_source(t: &Tools, append: &str) -> (Fleet, Seen, Vec<i64>) {
    let mut src = Fleet::new(1);
    start(&mut src, 0, "etcd-start", t, append).await;
    let ep = src.slots[0].client_url();
    let leases = populate(t, &ep).await;
    let seen = observe(t, &ep).await;
    check_source(&seen, &leases);
    (src, seen, leases)
}

/// Path 1: etcd's snapshot, saved and restored with the doc's commands, into a chorus
/// cluster of `members`; chorusctl's status numbers equal etcd's own tool's.
async fn snapshot_restore(t: &Tools, members: usize) -> (Fleet, Seen) {
    let (src, seen, _) = etcd_source(t, "").await;
    let ep = src.slots[0].client_url();
    let work = src.work();
    let v = vars(&src, 0, &[("EP_ETCD", &ep), ("ETCDCTL_USER", ROOT)]);
    let saved = run_block("restore-save", &work, &v, t).await;
    assert!(saved.stdout.contains("TOTAL KEYS"), "{saved:?}");
    same_status(&work.join("etcd-backup.db"), t).await;
    let mut dst = Fleet::new(members);
    for i in 0..members {
        run_block("restore-member", &work, &vars(&dst, i, &[]), t).await;
    }
    for i in 0..members {
        let command = doc_block("chorus-start");
        dst.spawn(i, command.trim_end(), &[], &t.path());
    }
    for i in 0..members {
        dst.wait_ready(i, &t.etcdctl(), Some(ROOT)).await;
    }
    for ep in dst.endpoints() {
        assert_eq!(observe(t, &ep).await, seen, "chorus member {ep}");
    }
    (dst, seen)
}

/// The way back: chorus's snapshot, restored with etcd's own tool of `t`'s version, then
/// etcd started with the doc's commands; etcd serves what chorus served.
async fn back_to_etcd(chorus: &Fleet, t: &Tools, seen: &Seen) {
    let ep = chorus.slots[0].client_url();
    let work = chorus.work();
    let v = vars(chorus, 0, &[("EP_CHORUS", &ep), ("ETCDCTL_USER", ROOT)]);
    run_block("back-save", &work, &v, t).await;
    same_status(&work.join("chorus-backup.db"), t).await;
    let mut back = Fleet::new(1);
    let restore = if t.etcdutl {
        "back-restore-35"
    } else {
        "back-restore-34"
    };
    run_block(restore, &work, &vars(&back, 0, &[]), t).await;
    start(&mut back, 0, "etcd-start", t, "").await;
    let served = observe(t, &back.slots[0].client_url()).await;
    assert_eq!(&served, seen, "etcd {} from chorus's snapshot", t.version);
    disarm_and_write(t, &back.slots[0].client_url(), seen.revision).await;
}

#[tokio::test]
async fn snapshot_restore_from_etcd_3_4_into_one_member_and_back() {
    let Some(t) = Tools::etcd34() else { return };
    let (dst, seen) = snapshot_restore(&t, 1).await;
    back_to_etcd(&dst, &t, &seen).await;
    disarm_and_write(&t, &dst.slots[0].client_url(), seen.revision).await;
}

#[tokio::test]
async fn snapshot_restore_from_etcd_3_5_into_three_members_and_back() {
    let Some(t) = Tools::etcd35() else { return };
    let (dst, seen) = snapshot_restore(&t, 3).await;
    back_to_etcd(&dst, &t, &seen).await;
    disarm_and_write(&t, &dst.slots[2].client_url(), seen.revision).await;
}

/// Path 2 on one member: etcd keeps its backend's commits back (an hour's batch
/// interval), so after kill -9 the WAL holds entries the backend lacks; chorus on the same
/// data dir applies them.
async fn takeover_one(t: &Tools, separate_wal: bool) {
    let hold = "--backend-batch-interval=1h --backend-batch-limit=1000000";
    let wal_dir = |f: &Fleet| f.slots[0].data_dir.with_extension("wal");
    let mut src = Fleet::new(1);
    let wal_flag = if separate_wal {
        format!("--wal-dir={}", wal_dir(&src).display())
    } else {
        String::new()
    };
    start(&mut src, 0, "etcd-start", t, &format!("{hold} {wal_flag}")).await;
    let ep = src.slots[0].client_url();
    let leases = populate(t, &ep).await;
    let seen = observe(t, &ep).await;
    check_source(&seen, &leases);
    src.kill9(0);
    start(&mut src, 0, "chorus-start", t, &wal_flag).await;
    let log = src.log(0);
    let carried = log
        .lines()
        .find(|l| l.contains("WAL entries past the consistent index carried over"))
        .unwrap_or_else(|| panic!("no takeover in the log:\n{log}"));
    assert!(
        !carried.contains("entries=0 "),
        "nothing carried: {carried}"
    );
    eprintln!("etcd {}: {carried}", t.version);
    assert_eq!(
        observe(t, &ep).await,
        seen,
        "chorus after taking over etcd {}",
        t.version
    );
    let data = &src.slots[0].data_dir;
    assert_eq!(count_prefixed(data, "member.etcd-backup-"), 1);
    if separate_wal {
        let wal = wal_dir(&src);
        let name = format!(
            "{}.etcd-backup-",
            wal.file_name().unwrap().to_string_lossy()
        );
        assert_eq!(count_prefixed(wal.parent().unwrap(), &name), 1);
    }
    // A second start is an ordinary chorus restart.
    src.stop(0).await;
    start(&mut src, 0, "chorus-start", t, &wal_flag).await;
    assert_eq!(src.log(0).matches("etcd takeover: done").count(), 1);
    disarm_and_write(t, &ep, seen.revision).await;
}

/// Entries of `dir` whose names start with `prefix`.
fn count_prefixed(dir: &Path, prefix: &str) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().starts_with(prefix)
        })
        .count()
}

#[tokio::test]
async fn takeover_of_an_etcd_3_4_member() {
    let Some(t) = Tools::etcd34() else { return };
    takeover_one(&t, false).await;
}

#[tokio::test]
async fn takeover_of_an_etcd_3_5_member_with_a_separate_wal_dir() {
    let Some(t) = Tools::etcd35() else { return };
    takeover_one(&t, true).await;
}

/// Path 2 on three members: the whole etcd cluster stops, then its members restart as
/// chorus one by one; the first alone has no quorum, the second brings it back. etcd
/// snapshots often, so each member starts from etcd's `.snap` file and the WAL after it.
#[tokio::test]
async fn takeover_of_a_three_member_etcd_3_4_cluster() {
    let Some(t) = Tools::etcd34() else { return };
    let mut fleet = Fleet::new(3);
    for i in 0..3 {
        // Snapshots every 20 entries: chorus starts from etcd's .snap file and WAL.
        let command = format!("{} --snapshot-count=20", doc_block("etcd-start").trim_end());
        fleet.spawn(i, &command, &[], &t.path());
    }
    for i in 0..3 {
        fleet.wait_ready(i, &t.etcdctl(), Some(ROOT)).await;
    }
    let ep = fleet.slots[0].client_url();
    let leases = populate(&t, &ep).await;
    let seen = observe(&t, &ep).await;
    check_source(&seen, &leases);
    for i in 0..3 {
        fleet.stop(i).await;
    }
    let chorus = doc_block("chorus-start");
    fleet.spawn(0, chorus.trim_end(), &[], &t.path());
    wait_for_log(&fleet, 0, "etcd takeover: done").await;
    let log = fleet.log(0);
    let position = log
        .lines()
        .find(|l| l.contains("etcd takeover: raft position"));
    let position = position.expect("the raft position in the log");
    assert!(
        !position.contains(" snapshot=0 "),
        "no .snap file used: {position}"
    );
    let alone = fleet.leader(0, &t.etcdctl(), Some(ROOT)).await;
    assert_eq!(alone, None, "one member of three has no quorum");
    fleet.spawn(1, chorus.trim_end(), &[], &t.path());
    fleet.wait_ready(0, &t.etcdctl(), Some(ROOT)).await;
    fleet.wait_ready(1, &t.etcdctl(), Some(ROOT)).await;
    assert_eq!(observe(&t, &fleet.slots[1].client_url()).await, seen);
    fleet.spawn(2, chorus.trim_end(), &[], &t.path());
    fleet.wait_ready(2, &t.etcdctl(), Some(ROOT)).await;
    assert_eq!(observe(&t, &fleet.slots[2].client_url()).await, seen);
    let members = ok(&t, &ep, &["member", "list"]).await;
    assert_eq!(members.lines().count(), 3, "{members}");
    disarm_and_write(&t, &fleet.slots[2].client_url(), seen.revision).await;
}

/// Polls member `i`'s log (bounded) until it has `text`.
async fn wait_for_log(fleet: &Fleet, i: usize, text: &str) {
    for _ in 0..800 {
        if fleet.log(i).contains(text) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("m{i} never logged {text:?}:\n{}", fleet.log(i));
}

/// Path 3: make-mirror copies current values; revisions and versions are the
/// destination's own (the documented limit).
#[tokio::test]
async fn make_mirror_copies_values_not_revisions() {
    let Some(t) = Tools::etcd34() else { return };
    let mut src = Fleet::new(1);
    start(&mut src, 0, "etcd-start", &t, "").await;
    let mut dst = Fleet::new(1);
    start(&mut dst, 0, "chorus-start", &t, "").await;
    let (from, to) = (src.slots[0].client_url(), dst.slots[0].client_url());
    for (k, v) in [("a", "1"), ("a", "2"), ("b", "x")] {
        ok(&t, &from, &["put", k, v]).await;
    }
    let v = vars(&src, 0, &[("EP_ETCD", &from), ("EP_CHORUS", &to)]);
    let mut mirror = std::process::Command::new("bash");
    mirror
        .arg("-c")
        .arg(format!("exec {}", doc_block("mirror").trim_end()))
        .envs(v)
        .env("PATH", t.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut mirror = mirror.spawn().unwrap();
    ok(&t, &from, &["put", "c", "later"]).await;
    let got = wait_for_keys(&t, &to, 3).await;
    mirror.kill().unwrap();
    mirror.wait().unwrap();
    let src_kvs: serde_json::Value =
        serde_json::from_str(&ok(&t, &from, &["get", "", "--prefix", "-w", "json"]).await).unwrap();
    let values = |v: &serde_json::Value| -> Vec<(String, String)> {
        v["kvs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|kv| {
                (
                    kv["key"].as_str().unwrap().into(),
                    kv["value"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    assert_eq!(values(&got), values(&src_kvs));
    assert_eq!(
        src_kvs["kvs"][0]["version"], 2,
        "a was written twice on etcd"
    );
    assert_eq!(got["kvs"][0]["version"], 1, "the mirror wrote a once");
}

async fn wait_for_keys(t: &Tools, ep: &str, n: usize) -> serde_json::Value {
    for _ in 0..400 {
        let r = ctl_as(t, ep, None, &["get", "", "--prefix", "-w", "json"]).await;
        if r.code == 0 {
            let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
            if v["kvs"].as_array().is_some_and(|a| a.len() == n) {
                return v;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{ep} never had {n} keys");
}

/// A snapshot saved from a chorus member with a few keys (etcd's format since ADR 0007).
async fn chorus_snapshot() -> (Fleet, PathBuf) {
    let path = common::fleet::chorus_path();
    let mut fleet = Fleet::new(1);
    let command = doc_block("chorus-start");
    fleet.spawn(0, command.trim_end(), &[], &path);
    fleet.wait_ready(0, &common::chorusctl_binary(), None).await;
    let ep = fleet.slots[0].client_url();
    let file = fleet.work().join("good.db");
    let script = format!(
        "for i in $(seq 1 50); do chorusctl --endpoints={ep} put k$i v$i >/dev/null; done
         chorusctl --endpoints={ep} snapshot save '{}'",
        file.display()
    );
    let r = run(&script, Path::new("/"), &[], &path).await;
    assert_eq!(r.code, 0, "{r:?}");
    (fleet, file)
}

fn sha256_trailer(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    out.extend_from_slice(ring::digest::digest(&ring::digest::SHA256, data).as_ref());
    out
}

/// bbolt's meta checksum: FNV-1a 64 of the 56 bytes before it.
fn fix_meta_checksum(page: &mut [u8]) {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in &page[16..16 + 56] {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    page[16 + 56..16 + 64].copy_from_slice(&h.to_le_bytes());
}

/// Damaged and hostile variants of a good snapshot: name, bytes, extra restore flags, and
/// the error restore must give.
fn bad_variants(good: &[u8]) -> Vec<(&'static str, Vec<u8>, Vec<&'static str>, &'static str)> {
    let data = &good[..good.len() - 32];
    let mut flipped = good.to_vec();
    flipped[3 * 4096 + 100] ^= 0xff;
    let mut hostile = data.to_vec();
    for meta in [0, 4096] {
        hostile[meta + 32..meta + 40].copy_from_slice(&(1u64 << 40).to_le_bytes());
        fix_meta_checksum(&mut hostile[meta..meta + 4096]);
    }
    let mut garbage: Vec<u8> = (0..65536u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    garbage[16..20].copy_from_slice(&0xED0C_DAEDu32.to_le_bytes());
    let mut zeroed = data.to_vec();
    zeroed[2 * 4096..].fill(0);
    let integrity = "Error: snapshot file integrity check failed.";
    vec![
        (
            "no-trailer",
            data.to_vec(),
            vec![],
            "Error: snapshot missing hash but --skip-hash-check=false",
        ),
        ("bad-trailer", flipped, vec![], "Error: expected sha256 ["),
        ("tiny", b"0123456789".to_vec(), vec![], "Error: seek "),
        (
            "truncated",
            data[..data.len() / 2].to_vec(),
            vec!["--skip-hash-check"],
            integrity,
        ),
        ("hostile-meta", sha256_trailer(&hostile), vec![], integrity),
        ("garbage", sha256_trailer(&garbage), vec![], integrity),
        ("zeroed-pages", sha256_trailer(&zeroed), vec![], integrity),
    ]
}

/// Truncated, corrupt and hostile snapshot files, a file without its digest and one whose
/// digest does not match: restore refuses each with a clear error and writes nothing;
/// status refuses the damaged ones.
#[tokio::test]
async fn bad_snapshot_files_are_refused_and_nothing_is_written() {
    let (fleet, good) = chorus_snapshot().await;
    let path = common::fleet::chorus_path();
    let bytes = std::fs::read(&good).unwrap();
    let work = fleet.work();
    for (name, contents, flags, want) in bad_variants(&bytes) {
        let file = work.join(format!("{name}.db"));
        std::fs::write(&file, &contents).unwrap();
        let data_dir = work.join(format!("{name}.restored"));
        let script = format!(
            "chorusctl snapshot restore '{}' --name m0 --data-dir '{}' \
             --initial-cluster m0=http://127.0.0.1:2380 \
             --initial-advertise-peer-urls http://127.0.0.1:2380 {}",
            file.display(),
            data_dir.display(),
            flags.join(" ")
        );
        let r = run(&script, Path::new("/"), &[], &path).await;
        assert_eq!(r.code, 1, "{name}: {r:?}");
        let last = r.stderr.lines().last().unwrap_or_default();
        assert!(last.starts_with(want), "{name}: {r:?}");
        assert!(
            !data_dir.exists(),
            "{name}: restore left {}",
            data_dir.display()
        );
        let status = format!("chorusctl snapshot status '{}'", file.display());
        let st = run(&status, Path::new("/"), &[], &path).await;
        let readable = name == "no-trailer";
        assert_eq!(st.code == 0, readable, "{name} status: {st:?}");
    }
}

/// Every file under `dir`: path, size and a hash of the contents.
fn tree(dir: &Path) -> BTreeMap<PathBuf, (u64, u64)> {
    use std::hash::{Hash, Hasher};
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let bytes = std::fs::read(&p).unwrap();
            let mut h = std::collections::hash_map::DefaultHasher::new();
            bytes.hash(&mut h);
            out.insert(p, (bytes.len() as u64, h.finish()));
        }
    }
    out
}

/// Starts chorus as member 1 on member 0's data dir and waits for it to refuse; returns
/// the log lines of this attempt.
async fn refused_start(fleet: &mut Fleet, t: &Tools) -> String {
    let before = fleet.log(1).len();
    let data = fleet.slots[0].data_dir.display().to_string();
    let extra = vec![
        ("DATA_DIR".to_string(), data),
        ("NAME".to_string(), "m0".to_string()),
        (
            "INITIAL_CLUSTER".to_string(),
            format!("m0={}", fleet.slots[1].peer_url()),
        ),
    ];
    fleet.spawn(1, doc_block("chorus-start").trim_end(), &extra, &t.path());
    let status = fleet.wait_exit(1).await;
    assert!(
        !status.success(),
        "chorus started on a data dir it must refuse"
    );
    fleet.log(1)[before..].to_owned()
}

/// The takeover refuses, changing nothing: while etcd runs on the directory, when the
/// WAL is damaged before its tail, and when the data dir says it is from etcd 3.8.
#[tokio::test]
async fn takeover_refuses_a_live_etcd_a_damaged_wal_and_a_newer_version() {
    let Some(t) = Tools::etcd34() else { return };
    let mut fleet = Fleet::new(2);
    let alone = vec![(
        "INITIAL_CLUSTER".to_string(),
        format!("m0={}", fleet.slots[0].peer_url()),
    )];
    fleet.spawn(0, doc_block("etcd-start").trim_end(), &alone, &t.path());
    fleet.wait_ready(0, &t.etcdctl(), None).await;
    let ep = fleet.slots[0].client_url();
    ok(&t, &ep, &["put", "damage-me", "DAMAGE-ME-0123456789"]).await;
    for i in 0..30 {
        ok(&t, &ep, &["put", &format!("after/{i}"), "x"]).await;
    }
    let log = refused_start(&mut fleet, &t).await;
    assert!(log.contains("etcd still holds the data dir"), "{log}");
    let data = fleet.slots[0].data_dir.clone();
    assert_eq!(
        count_prefixed(&data, "member."),
        0,
        "the refusal wrote beside etcd's files"
    );
    let leader = fleet.leader(0, &t.etcdctl(), None).await;
    assert!(leader.is_some(), "etcd must keep running");
    fleet.stop(0).await;

    let wal = std::fs::read_dir(data.join("member/wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "wal"))
        .unwrap();
    let original = std::fs::read(&wal).unwrap();
    let at = find(&original, b"DAMAGE-ME-0123456789").expect("the value in the WAL");
    let mut damaged = original.clone();
    damaged[at + 3] ^= 0x01;
    std::fs::write(&wal, &damaged).unwrap();
    let before = tree(&data);
    let log = refused_start(&mut fleet, &t).await;
    assert!(
        log.contains("the WAL is damaged beyond a torn tail"),
        "{log}"
    );
    assert_eq!(tree(&data), before, "the refusal changed etcd's files");
    std::fs::write(&wal, &original).unwrap();

    rewrite_cluster_version(&data.join("member/snap/db"), "3.8.0");
    let before = tree(&data);
    let log = refused_start(&mut fleet, &t).await;
    assert!(
        log.contains("3.8.0 recorded in the backend's cluster/clusterVersion"),
        "{log}"
    );
    assert!(log.contains("3.3 to 3.7"), "{log}");
    assert_eq!(tree(&data), before, "the refusal changed etcd's files");
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Rewrites an etcd backend with another cluster version (as a newer etcd would record).
fn rewrite_cluster_version(db: &Path, version: &str) {
    use chorus_etcd_format::backend::{Backend, BackendWriter, ClusterInfo};
    let src = Backend::open(db).unwrap();
    let tmp = db.with_extension("rewritten");
    let mut w = BackendWriter::create(&tmp).unwrap();
    w.write_alarms(&src.alarms().unwrap()).unwrap();
    w.write_auth(&src.auth().unwrap()).unwrap();
    let cluster = ClusterInfo {
        cluster_version: Some(version.into()),
        downgrade: None,
    };
    w.write_cluster(&cluster).unwrap();
    for r in src.revisions().unwrap() {
        w.put_revision(&r.unwrap()).unwrap();
    }
    w.write_leases(&src.leases().unwrap()).unwrap();
    w.write_members(&src.members().unwrap()).unwrap();
    w.write_meta(&src.meta().unwrap()).unwrap();
    w.finish().unwrap();
    drop(src);
    std::fs::rename(&tmp, db).unwrap();
}

/// The last line a command printed to stderr.
fn last_error(r: &Ran) -> String {
    r.stderr.lines().last().unwrap_or_default().to_owned()
}

/// chorusctl's refusals of a file without its digest, with a digest that does not match,
/// and of a file shorter than a digest are etcd's, word for word: etcdutl 3.5.1's and
/// etcdctl 3.4.23's on the same files.
#[tokio::test]
async fn restore_refusals_are_etcds_words() {
    let (Some(t35), Some(t34)) = (Tools::etcd35(), Tools::etcd34()) else {
        return;
    };
    let (fleet, good) = chorus_snapshot().await;
    let bytes = std::fs::read(&good).unwrap();
    let work = fleet.work();
    let tools = [
        ("chorusctl", common::fleet::chorus_path()),
        ("etcdutl", t35.path()),
        ("etcdctl", t34.path()),
    ];
    for (name, contents, _, _) in bad_variants(&bytes) {
        if !["no-trailer", "bad-trailer", "tiny"].contains(&name) {
            continue;
        }
        let file = work.join(format!("{name}.db"));
        std::fs::write(&file, &contents).unwrap();
        let mut errors = Vec::new();
        for (tool, path) in &tools {
            let data_dir = work.join(format!("{name}-{tool}.restored"));
            let script = format!(
                "ETCDCTL_API=3 {tool} snapshot restore '{}' --data-dir '{}'",
                file.display(),
                data_dir.display()
            );
            let r = run(&script, Path::new("/"), &[], path).await;
            assert_eq!(r.code, 1, "{tool} {name}: {r:?}");
            errors.push(last_error(&r));
        }
        assert_eq!(errors[0], errors[1], "{name}: chorusctl vs etcdutl");
        assert_eq!(errors[0], errors[2], "{name}: chorusctl vs etcdctl");
    }
}

/// v2 writes of every kind, before and after the `.snap` etcd takes every 10 entries.
async fn write_v2(addr: &str) {
    let mut writes: Vec<(&str, String, String)> = (0..12)
        .map(|i| ("PUT", format!("/v2/keys/early/k{i}"), format!("value=v{i}")))
        .collect();
    let later = [
        ("PUT", "/v2/keys/dir/a", "value=1"),
        ("PUT", "/v2/keys/dir/ttl", "value=2&ttl=100000"),
        ("POST", "/v2/keys/queue", "value=j1"),
        ("POST", "/v2/keys/queue", "value=j2"),
        ("PUT", "/v2/keys/cas", "value=x"),
        ("PUT", "/v2/keys/cas?prevValue=x", "value=y"),
        ("PUT", "/v2/keys/empty", "dir=true"),
        ("DELETE", "/v2/keys/early/k0", ""),
        ("DELETE", "/v2/keys/dir/a", ""),
    ];
    writes.extend(later.map(|(m, p, f)| (m, p.to_string(), f.to_string())));
    for (method, path, form) in writes {
        let r = send(addr, &HttpRequest::new(method, &path).form(&form)).await;
        assert!(r.status < 300, "{method} {path} {form}: {r:?}");
    }
}

/// The whole v2 key space as a client lists it, `ttl` (which counts down) left out.
async fn v2_listing(addr: &str) -> serde_json::Value {
    fn strip_ttl(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(o) => {
                o.remove("ttl");
                o.values_mut().for_each(strip_ttl);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip_ttl),
            _ => {}
        }
    }
    let r = send(
        addr,
        &HttpRequest::new("GET", "/v2/keys/?recursive=true&sorted=true"),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    let mut v = r.json()["node"].clone();
    strip_ttl(&mut v);
    v
}

/// Path 2 with etcd's v2 store (`--enable-v2`): chorus serves the same v2 keys, with
/// their indexes and expirations. `kill`: etcd is killed with its backend commits held
/// back (the v2 writes after the `.snap` file are carried as raft entries); otherwise it
/// stops cleanly (they are replayed into the store at the takeover).
async fn takeover_v2(t: &Tools, kill: bool) {
    let hold = "--backend-batch-interval=1h --backend-batch-limit=1000000";
    let flags = format!(
        "--enable-v2 --snapshot-count=10 {}",
        if kill { hold } else { "" }
    );
    let mut src = Fleet::new(1);
    start(&mut src, 0, "etcd-start", t, &flags).await;
    let url = src.slots[0].client_url();
    let addr = url.trim_start_matches("http://").to_string();
    write_v2(&addr).await;
    let seen = v2_listing(&addr).await;
    assert_eq!(seen["nodes"].as_array().map(Vec::len), Some(5), "{seen}");
    if kill {
        src.kill9(0);
    } else {
        src.stop(0).await;
    }
    start(&mut src, 0, "chorus-start", t, "--enable-v2").await;
    let log = src.log(0);
    let position = log
        .lines()
        .find(|l| l.contains("etcd takeover: raft position"));
    let position = position.expect("the raft position in the log");
    assert!(
        !position.contains(" snapshot=0 "),
        "no .snap file: {position}"
    );
    let carried = log.lines().find(|l| l.contains("v2 store carried over"));
    eprintln!(
        "etcd {} (kill {kill}): {}",
        t.version,
        carried.expect("no v2 line")
    );
    assert_eq!(
        v2_listing(&addr).await,
        seen,
        "chorus after taking over etcd {}",
        t.version
    );
    // The index goes on from etcd's.
    let after = send(
        &addr,
        &HttpRequest::new("PUT", "/v2/keys/after").form("value=z"),
    )
    .await;
    let node = &after.json()["node"];
    let newest = seen["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["modifiedIndex"].as_u64().unwrap());
    assert!(
        node["createdIndex"].as_u64().unwrap() > newest.max().unwrap(),
        "{after:?}"
    );
}

#[tokio::test]
async fn takeover_carries_the_v2_store_of_a_killed_etcd_3_4() {
    let Some(t) = Tools::etcd34() else { return };
    takeover_v2(&t, true).await;
}

#[tokio::test]
async fn takeover_carries_the_v2_store_of_a_stopped_etcd_3_5() {
    let Some(t) = Tools::etcd35() else { return };
    takeover_v2(&t, false).await;
}

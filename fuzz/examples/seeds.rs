//! Writes a few small valid inputs per target into `corpus/<target>/seed-*`, produced by the
//! project's own writers, so each fuzzer starts from the formats' happy paths.

use std::path::Path;

use chorus_api::etcdserverpb::PutRequest;
use chorus_api::internalpb::{internal_request, InternalRequest, Member, RequestHeader};
use chorus_api::mvccpb::KeyValue;
use chorus_api::peerpb::{MembersResponse, RaftBatch, SnapshotChunk};
use chorus_datadir::WalMetadata;
use chorus_etcd_format::backend::{BackendWriter, MetaInfo, Revision, RevisionEntry};
use chorus_etcd_format::proto::{etcdserverpb_raft, raftpb, snappb, walpb};
use chorus_etcd_format::wal;
use chorus_storage::backend::{self, Backend, BackendOptions};
use chorus_storage::snap::Snapshotter;
use chorus_storage::wal::{Wal, WalOptions, WalSnapshot};
use hickory_proto::op::{Edns, Message as DnsMessage, MessageType, Query};
use hickory_proto::rr::{rdata, Name, RData, Record, RecordType};
use prost::Message;
use protobuf::Message as _;
use raft::eraftpb::{
    ConfChange, ConfChangeSingle, ConfChangeType, ConfChangeV2, ConfState, Entry, EntryType,
    MessageType as RaftMessageType, Snapshot as RaftSnapshot,
};

type Seeds = Vec<(&'static str, Vec<u8>)>;

fn main() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let targets: [(&str, fn() -> Seeds); 13] = [
        ("wal_segment", wal_segment),
        ("backend_restore", backend_restore),
        ("etcd_wal", etcd_wal),
        ("etcd_bbolt", etcd_bbolt),
        ("etcd_snap", etcd_snap),
        ("gateway_json", gateway_json),
        ("config_yaml", config_yaml),
        ("hpack", hpack),
        ("v2_request", v2_request),
        ("peer_message", peer_message),
        ("dns", dns),
        ("datadir_files", datadir_files),
        ("snapshot_status", snapshot_status),
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

/// Selector byte first, as the multi-case targets read their input.
fn case(name: &'static str, selector: u8, bytes: &[u8]) -> (&'static str, Vec<u8>) {
    let mut out = vec![selector];
    out.extend_from_slice(bytes);
    (name, out)
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn http2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// RFC 7541's C.4 requests (Huffman, one connection) for the decoder; for the stream,
/// grpc-go's connection start and two requests whose `:authority` is etcdctl's URL.
fn hpack() -> Seeds {
    let mut blocks = vec![64u8]; // a 4096-byte table
    for block in [
        "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
        "8286 84be 5886 a8eb 1064 9cbf",
        "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
    ] {
        let block = hex(block);
        blocks.extend_from_slice(&(block.len() as u16).to_be_bytes());
        blocks.extend_from_slice(&block);
    }
    let authority = b"http://127.0.0.1:2379";
    // :method POST, :scheme http, :path /, then :authority with incremental indexing.
    let mut first = vec![0x83, 0x86, 0x84, 0x41, authority.len() as u8];
    first.extend_from_slice(authority);
    let mut stream = vec![16, 64]; // reads of 17 bytes, a 4096-byte table
    stream.extend_from_slice(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    stream.extend(http2_frame(0x4, 0, 0, &[0, 4, 0, 0x40, 0, 0]));
    stream.extend(http2_frame(0x8, 0, 0, &[0, 0x0e, 0xff, 0x01]));
    stream.extend(http2_frame(0x1, 0x4, 1, &first));
    stream.extend(http2_frame(0x0, 0x1, 1, b"\0\0\0\0\0"));
    stream.extend(http2_frame(0x1, 0x5, 3, &[0x83, 0x86, 0x84, 0xbe]));
    vec![case("decoder", 0, &blocks), case("stream", 1, &stream)]
}

fn v2_request() -> Seeds {
    vec![
        case("query", 0, b"a=1&b=x+y&a=2&&c"),
        case(
            "form",
            0,
            b"prevExist=false&value=bar%20baz&ttl=5&prevIndex=3&dir=T",
        ),
        case("bad-escape", 0, b"x=%zz&y=1;z"),
        case("path", 1, b"/v2/keys/foo%20bar/%E2%82%AC"),
        case(
            "media-type",
            1,
            b"APPLICATION/X-WWW-FORM-URLENCODED; charset=utf-8",
        ),
        case(
            "user",
            2,
            br#"{"user":"root","password":"pw","roles":["root",null],"grant":["r"]}"#,
        ),
        case(
            "role",
            2,
            br#"{"role":"r","permissions":{"kv":{"read":["/a/*"],"write":["/b"]}},"revoke":null}"#,
        ),
        case("string", 2, br#""a\"\u00e9\ud83d\ude00\ud800x" trailing"#),
    ]
}

/// A `Raft.Stream` batch with an append of a put, a conf change and a conf change v2;
/// a `Raft.Snapshot` first chunk; a `Raft.Members` answer; a heartbeat alone.
fn peer_message() -> Seeds {
    let member = Member {
        id: 7,
        name: "infra2".into(),
        peer_urls: vec!["http://127.0.0.1:2380".into()],
        client_urls: vec!["http://127.0.0.1:2379".into()],
        is_learner: false,
    };
    let put = InternalRequest {
        header: Some(RequestHeader {
            id: 1,
            ..Default::default()
        }),
        request: Some(internal_request::Request::Put(PutRequest {
            key: b"foo".to_vec(),
            value: b"bar".to_vec(),
            ..Default::default()
        })),
    };
    let cc = ConfChange {
        change_type: ConfChangeType::AddNode,
        node_id: 7,
        context: member.encode_to_vec().into(),
        ..Default::default()
    };
    let mut cc2 = ConfChangeV2::default();
    cc2.mut_changes().push(ConfChangeSingle {
        change_type: ConfChangeType::AddLearnerNode,
        node_id: 8,
        ..Default::default()
    });
    cc2.context = member.encode_to_vec().into();
    let entries = [
        (EntryType::EntryNormal, put.encode_to_vec()),
        (EntryType::EntryConfChange, cc.write_to_bytes().expect("cc")),
        (
            EntryType::EntryConfChangeV2,
            cc2.write_to_bytes().expect("cc2"),
        ),
    ];
    let mut append = raft::eraftpb::Message::default();
    append.set_msg_type(RaftMessageType::MsgAppend);
    (append.to, append.from, append.term, append.index) = (2, 1, 3, 4);
    for (i, (ty, data)) in entries.into_iter().enumerate() {
        let mut e = Entry::default();
        e.set_entry_type(ty);
        (e.term, e.index, e.data) = (3, 5 + i as u64, data.into());
        append.mut_entries().push(e);
    }
    let batch = RaftBatch {
        cluster_id: 9,
        from: 1,
        to: 2,
        messages: vec![append.write_to_bytes().expect("append")],
    };
    let mut snap = raft::eraftpb::Message::default();
    snap.set_msg_type(RaftMessageType::MsgSnapshot);
    let meta = snap.mut_snapshot().mut_metadata();
    (meta.index, meta.term) = (10, 3);
    meta.mut_conf_state().voters = vec![1, 2, 3];
    let chunk = SnapshotChunk {
        cluster_id: 9,
        from: 1,
        to: 2,
        message: snap.write_to_bytes().expect("snap"),
        data: b"dump".to_vec(),
    };
    let members = MembersResponse {
        cluster_id: 9,
        members: vec![member],
        removed: vec![3],
        cluster_version: "3.5.0".into(),
    };
    let mut heartbeat = raft::eraftpb::Message::default();
    heartbeat.set_msg_type(RaftMessageType::MsgHeartbeat);
    (heartbeat.to, heartbeat.from, heartbeat.commit) = (2, 1, 4);
    vec![
        case("stream", 0, &batch.encode_to_vec()),
        case("snapshot", 1, &chunk.encode_to_vec()),
        case("members", 2, &members.encode_to_vec()),
        case(
            "heartbeat",
            3,
            &heartbeat.write_to_bytes().expect("heartbeat"),
        ),
    ]
}

/// The DNS server's tests' records and questions; a resolver's SRV and A answer; the
/// discovery service's answers.
fn dns() -> Seeds {
    let records = [
        r#"local/chorus/web/x1 {"host":"10.0.0.1","port":8080,"priority":10,"weight":10,"ttl":30,"text":"hello"}"#,
        r#"local/chorus/web/x2 {"host":"10.0.0.2","port":8081}"#,
        r#"local/chorus/bad {not json"#,
        r#"arpa/in-addr/10/0/0/1 {"host":"x1.web.chorus.local"}"#,
        r#"local/chorus/alias {"host":"web.chorus.local"}"#,
        r#"local/chorus/v6 {"host":"::1","priority":0,"weight":0}"#,
    ]
    .join("\n");
    let questions = [
        ("a", "web.chorus.local.", RecordType::A, false),
        ("srv", "web.chorus.local.", RecordType::SRV, true),
        ("txt", "x1.web.chorus.local.", RecordType::TXT, false),
        ("ptr", "1.0.0.10.in-addr.arpa.", RecordType::PTR, false),
        ("wildcard", "*.web.chorus.local.", RecordType::A, true),
        ("alias", "alias.chorus.local.", RecordType::A, false),
        ("aaaa", "v6.chorus.local.", RecordType::AAAA, false),
        ("refused", "example.com.", RecordType::A, false),
    ];
    let mut seeds: Seeds = questions
        .into_iter()
        .map(|(name, qname, qtype, edns)| {
            let mut m = DnsMessage::new();
            m.set_id(7)
                .add_query(Query::query(Name::from_ascii(qname).expect("name"), qtype));
            if edns {
                m.set_edns(Edns::new());
            }
            let packet = m.to_vec().expect("query");
            let mut bytes = vec![u8::from(name == "txt")];
            bytes.extend_from_slice(&(packet.len() as u16).to_be_bytes());
            bytes.extend_from_slice(&packet);
            bytes.extend_from_slice(records.as_bytes());
            case(name, 0, &bytes)
        })
        .collect();
    let target = Name::from_ascii("infra0.example.com.").expect("name");
    let mut answer = DnsMessage::new();
    answer
        .set_id(0x1234)
        .set_message_type(MessageType::Response);
    let srv_name = Name::from_ascii("_etcd-server._tcp.example.com.").expect("name");
    answer.add_query(Query::query(srv_name.clone(), RecordType::SRV));
    for (prio, weight, port) in [(10, 5, 2380), (0, 1, 2381)] {
        let srv = rdata::SRV::new(prio, weight, port, target.clone());
        answer.add_answer(Record::from_rdata(srv_name.clone(), 30, RData::SRV(srv)));
    }
    let a = rdata::A::new(10, 0, 0, 1);
    answer.add_answer(Record::from_rdata(target, 30, RData::A(a)));
    let mut reply = 0x1234u16.to_be_bytes().to_vec();
    reply.extend_from_slice(&answer.to_vec().expect("answer"));
    seeds.push(case("resolver-reply", 1, &reply));
    let dir = r#"{"action":"get","node":{"key":"/_etcd/registry/t","dir":true,"nodes":[{"key":"/_etcd/registry/t/1","value":"infra0=http://10.0.0.1:2380","createdIndex":5,"modifiedIndex":5}],"createdIndex":4}}"#;
    seeds.push(case("keys-dir", 2, &[&[0u8][..], dir.as_bytes()].concat()));
    let size = r#"{"action":"get","node":{"key":"/_etcd/registry/t/_config/size","value":"1"}}"#;
    seeds.push(case(
        "keys-size",
        2,
        &[&[0u8][..], size.as_bytes()].concat(),
    ));
    let missing = r#"{"errorCode":100,"message":"Key not found","cause":"/t","index":3}"#;
    seeds.push(case(
        "keys-error",
        2,
        &[&[4u8][..], missing.as_bytes()].concat(),
    ));
    seeds
}

/// The WAL metadata record and a snapshot file, both as chorus writes them.
fn datadir_files() -> Seeds {
    let conf = ConfState {
        voters: vec![1, 2, 3],
        learners: vec![4],
        ..Default::default()
    };
    let meta = WalMetadata {
        member_id: 7,
        cluster_id: 9,
        conf_state: conf.clone(),
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut snap = RaftSnapshot::default();
    let m = snap.mut_metadata();
    (m.index, m.term) = (1, 1);
    m.set_conf_state(conf);
    snap.data = b"snapshot data".to_vec().into();
    Snapshotter::new(dir.path())
        .save(&snap)
        .expect("save snapshot");
    let file = dir.path().join("0000000000000001-0000000000000001.snap");
    let file = std::fs::read(file).expect("read snapshot");
    vec![
        case("metadata", 0, &meta.encode()),
        case("snap", 1, &file),
        case("snap-fix-crc", 3, &file),
    ]
}

/// A chorus dump and an etcd backend, without the padding and hash the target adds.
fn snapshot_status() -> Seeds {
    let dump = backend_restore().remove(0).1;
    let db = etcd_bbolt().remove(0).1;
    vec![("dump", dump), ("etcd-db", db)]
}

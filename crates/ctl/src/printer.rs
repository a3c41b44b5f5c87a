//! etcdctl's five output formats (`-w simple|json|protobuf|fields|table`), one method per
//! response type, written the way etcdctl 3.4's printers write them (Go's `encoding/json`
//! on etcd's gogo structs and clientv3's wrappers, `%q`, tablewriter).

use std::io::Write;

use chorus_api::authpb::{permission::Type as PermType, Permission};
use chorus_api::etcdserverpb::{
    response_op::Response, AlarmMember, AlarmResponse, AuthRoleGetResponse, AuthRoleListResponse,
    AuthUserGetResponse, AuthUserListResponse, DeleteRangeResponse, HashKvResponse,
    LeaseGrantResponse, LeaseKeepAliveResponse, LeaseLeasesResponse, LeaseRevokeResponse,
    LeaseTimeToLiveResponse, Member, MemberAddResponse, MemberListResponse, PutResponse,
    RangeResponse, ResponseHeader, StatusResponse, TxnResponse, WatchResponse,
};
use chorus_api::mvccpb::{event::EventType, Event, KeyValue};
use prost::Message;

use crate::exit::{self, ExitCode};
use crate::gofmt::{base64, humanize_bytes, json_str, quote, quote_bytes};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Simple,
    Json,
    Protobuf,
    Fields,
    Table,
}

/// The printer chosen by `-w` and `--hex`.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    pub format: Format,
    pub hex: bool,
    pub value_only: bool,
}

/// `endpoint health`'s result for one endpoint.
#[derive(Debug, Clone)]
pub struct EpHealth {
    pub ep: String,
    pub health: bool,
    pub took: String,
    pub error: String,
}

fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
}

fn out_bytes(bytes: &[u8]) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(bytes);
    let _ = stdout.flush();
}

// ------------------------------------------------------------------------------------
// Go's encoding/json on etcd's structs.

/// A JSON object under construction; the `*_ne` methods leave out zero values
/// (`omitempty`).
struct Obj {
    buf: String,
    first: bool,
}

impl Obj {
    fn new() -> Obj {
        Obj {
            buf: "{".to_owned(),
            first: true,
        }
    }

    fn raw(mut self, key: &str, value: &str) -> Obj {
        if !self.first {
            self.buf.push(',');
        }
        self.first = false;
        self.buf += &json_str(key);
        self.buf.push(':');
        self.buf += value;
        self
    }

    fn num_ne<T: PartialEq + Default + std::fmt::Display>(self, key: &str, v: T) -> Obj {
        if v == T::default() {
            self
        } else {
            self.raw(key, &v.to_string())
        }
    }

    fn bool_ne(self, key: &str, v: bool) -> Obj {
        if v {
            self.raw(key, "true")
        } else {
            self
        }
    }

    fn bytes_ne(self, key: &str, v: &[u8]) -> Obj {
        if v.is_empty() {
            self
        } else {
            self.raw(key, &format!("\"{}\"", base64(v)))
        }
    }

    fn str_ne(self, key: &str, v: &str) -> Obj {
        if v.is_empty() {
            self
        } else {
            self.raw(key, &json_str(v))
        }
    }

    fn opt(self, key: &str, v: Option<String>) -> Obj {
        match v {
            Some(v) => self.raw(key, &v),
            None => self,
        }
    }

    fn list_ne(self, key: &str, items: Vec<String>) -> Obj {
        if items.is_empty() {
            self
        } else {
            self.raw(key, &format!("[{}]", items.join(",")))
        }
    }

    /// Fields of an embedded `*pb.ResponseHeader` (clientv3's lease responses).
    fn header_fields(self, h: Option<&ResponseHeader>) -> Obj {
        match h {
            Some(h) => self
                .num_ne("cluster_id", h.cluster_id)
                .num_ne("member_id", h.member_id)
                .num_ne("revision", h.revision)
                .num_ne("raft_term", h.raft_term),
            None => self,
        }
    }

    fn end(mut self) -> String {
        self.buf.push('}');
        self.buf
    }
}

fn j_header(h: &ResponseHeader) -> String {
    Obj::new().header_fields(Some(h)).end()
}

fn j_kv(kv: &KeyValue) -> String {
    Obj::new()
        .bytes_ne("key", &kv.key)
        .num_ne("create_revision", kv.create_revision)
        .num_ne("mod_revision", kv.mod_revision)
        .num_ne("version", kv.version)
        .bytes_ne("value", &kv.value)
        .num_ne("lease", kv.lease)
        .end()
}

fn j_range(r: &RangeResponse) -> String {
    Obj::new()
        .opt("header", r.header.as_ref().map(j_header))
        .list_ne("kvs", r.kvs.iter().map(j_kv).collect())
        .bool_ne("more", r.more)
        .num_ne("count", r.count)
        .end()
}

fn j_put(r: &PutResponse) -> String {
    Obj::new()
        .opt("header", r.header.as_ref().map(j_header))
        .opt("prev_kv", r.prev_kv.as_ref().map(j_kv))
        .end()
}

fn j_del(r: &DeleteRangeResponse) -> String {
    Obj::new()
        .opt("header", r.header.as_ref().map(j_header))
        .num_ne("deleted", r.deleted)
        .list_ne("prev_kvs", r.prev_kvs.iter().map(j_kv).collect())
        .end()
}

fn j_txn(r: &TxnResponse) -> String {
    let responses = r
        .responses
        .iter()
        .map(|op| {
            let inner = match &op.response {
                Some(Response::ResponseRange(r)) => {
                    Obj::new().raw("ResponseRange", &j_range(r)).end()
                }
                Some(Response::ResponsePut(r)) => Obj::new().raw("ResponsePut", &j_put(r)).end(),
                Some(Response::ResponseDeleteRange(r)) => {
                    Obj::new().raw("ResponseDeleteRange", &j_del(r)).end()
                }
                Some(Response::ResponseTxn(r)) => Obj::new().raw("ResponseTxn", &j_txn(r)).end(),
                None => "null".to_owned(),
            };
            Obj::new().raw("Response", &inner).end()
        })
        .collect();
    Obj::new()
        .opt("header", r.header.as_ref().map(j_header))
        .bool_ne("succeeded", r.succeeded)
        .list_ne("responses", responses)
        .end()
}

fn j_event(e: &Event) -> String {
    Obj::new()
        .num_ne("type", e.r#type)
        .opt("kv", e.kv.as_ref().map(j_kv))
        .opt("prev_kv", e.prev_kv.as_ref().map(j_kv))
        .end()
}

fn j_member(m: &Member) -> String {
    let urls = |u: &[String]| {
        format!(
            "[{}]",
            u.iter().map(|s| json_str(s)).collect::<Vec<_>>().join(",")
        )
    };
    let mut o = Obj::new().num_ne("ID", m.id).str_ne("name", &m.name);
    if !m.peer_ur_ls.is_empty() {
        o = o.raw("peerURLs", &urls(&m.peer_ur_ls));
    }
    if !m.client_ur_ls.is_empty() {
        o = o.raw("clientURLs", &urls(&m.client_ur_ls));
    }
    o.bool_ne("isLearner", m.is_learner).end()
}

fn j_members(header: Option<&ResponseHeader>, members: &[Member]) -> Obj {
    Obj::new()
        .opt("header", header.map(j_header))
        .list_ne("members", members.iter().map(j_member).collect())
}

fn j_status(s: &StatusResponse) -> String {
    let errors = s.errors.iter().map(|e| json_str(e)).collect();
    Obj::new()
        .opt("header", s.header.as_ref().map(j_header))
        .str_ne("version", &s.version)
        .num_ne("dbSize", s.db_size)
        .num_ne("leader", s.leader)
        .num_ne("raftIndex", s.raft_index)
        .num_ne("raftTerm", s.raft_term)
        .num_ne("raftAppliedIndex", s.raft_applied_index)
        .list_ne("errors", errors)
        .num_ne("dbSizeInUse", s.db_size_in_use)
        .bool_ne("isLearner", s.is_learner)
        .end()
}

fn j_hashkv(h: &HashKvResponse) -> String {
    Obj::new()
        .opt("header", h.header.as_ref().map(j_header))
        .num_ne("hash", h.hash)
        .num_ne("compact_revision", h.compact_revision)
        .end()
}

fn j_strings(key: &str, header: Option<&ResponseHeader>, items: &[String]) -> String {
    Obj::new()
        .opt("header", header.map(j_header))
        .list_ne(key, items.iter().map(|s| json_str(s)).collect())
        .end()
}

fn j_perm(p: &Permission) -> String {
    Obj::new()
        .num_ne("permType", p.perm_type)
        .bytes_ne("key", &p.key)
        .bytes_ne("range_end", &p.range_end)
        .end()
}

/// `{"header":{...}}` of any response that has only a header.
pub fn j_header_only(h: Option<&ResponseHeader>) -> String {
    Obj::new().opt("header", h.map(j_header)).end()
}

// ------------------------------------------------------------------------------------
// Simple and fields helpers.

fn hex_escaped(b: &[u8]) -> String {
    b.iter().map(|x| format!("\\x{x:02x}")).collect()
}

fn lossy(b: &[u8]) -> String {
    // Go writes the bytes of a string as they are.
    String::from_utf8_lossy(b).into_owned()
}

fn event_type(t: i32) -> &'static str {
    match EventType::try_from(t) {
        Ok(EventType::Delete) => "DELETE",
        _ => "PUT",
    }
}

fn perm_type(t: i32) -> &'static str {
    match PermType::try_from(t) {
        Ok(PermType::Write) => "WRITE",
        Ok(PermType::Readwrite) => "READWRITE",
        _ => "READ",
    }
}

fn alarm_name(a: i32) -> &'static str {
    match a {
        1 => "NOSPACE",
        2 => "CORRUPT",
        _ => "NONE",
    }
}

/// clientv3.GetPrefixRangeEnd.
fn prefix_end(key: &[u8]) -> Vec<u8> {
    let mut end = key.to_vec();
    for i in (0..end.len()).rev() {
        if end[i] < 0xff {
            end[i] += 1;
            end.truncate(i + 1);
            return end;
        }
    }
    vec![0]
}

/// tablewriter with etcdctl's settings: borders, upper-case centred headers, cells aligned
/// right.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let header: Vec<String> = header.iter().map(|h| h.to_uppercase()).collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let border: String = {
        let mut s = "+".to_owned();
        for w in &widths {
            s += &"-".repeat(w + 2);
            s += "+";
        }
        s + "\n"
    };
    let mut text = border.clone();
    text += "|";
    for (h, w) in header.iter().zip(&widths) {
        let gap = w - h.chars().count();
        let left = gap / 2;
        text += &format!(" {}{}{} |", " ".repeat(left), h, " ".repeat(gap - left));
    }
    text += "\n";
    text += &border;
    for row in rows {
        text += "|";
        for (cell, w) in row.iter().zip(&widths) {
            text += &format!(" {}{} |", " ".repeat(w - cell.chars().count()), cell);
        }
        text += "\n";
    }
    text += &border;
    text
}

fn member_rows(members: &[Member]) -> Vec<Vec<String>> {
    members
        .iter()
        .map(|m| {
            vec![
                format!("{:x}", m.id),
                if m.name.is_empty() {
                    "unstarted"
                } else {
                    "started"
                }
                .to_owned(),
                m.name.clone(),
                m.peer_ur_ls.join(","),
                m.client_ur_ls.join(","),
                m.is_learner.to_string(),
            ]
        })
        .collect()
}

const MEMBER_HDR: [&str; 6] = [
    "ID",
    "Status",
    "Name",
    "Peer Addrs",
    "Client Addrs",
    "Is Learner",
];

fn status_rows(list: &[(String, StatusResponse)]) -> Vec<Vec<String>> {
    list.iter()
        .map(|(ep, s)| {
            let id = s.header.as_ref().map_or(0, |h| h.member_id);
            vec![
                ep.clone(),
                format!("{id:x}"),
                s.version.clone(),
                humanize_bytes(s.db_size as u64),
                (s.leader == id).to_string(),
                s.is_learner.to_string(),
                s.raft_term.to_string(),
                s.raft_index.to_string(),
                s.raft_applied_index.to_string(),
                s.errors.join(", "),
            ]
        })
        .collect()
}

const STATUS_HDR: [&str; 10] = [
    "endpoint",
    "ID",
    "version",
    "db size",
    "is leader",
    "is learner",
    "raft term",
    "raft index",
    "raft applied index",
    "errors",
];

impl Printer {
    fn unsupported(&self) -> ! {
        let name = match self.format {
            Format::Simple => "simple",
            Format::Json => "json",
            Format::Protobuf => "protobuf",
            Format::Fields => "fields",
            Format::Table => "table",
        };
        exit::fail(
            ExitCode::BadFeature,
            &format!("{name} not supported as output format"),
        )
    }

    fn pb<M: Message>(&self, m: &M) {
        out_bytes(&m.encode_to_vec());
    }

    fn print_kv(&self, kv: &KeyValue) {
        let (k, v) = if self.hex {
            (hex_escaped(&kv.key), hex_escaped(&kv.value))
        } else {
            (lossy(&kv.key), lossy(&kv.value))
        };
        let mut s = String::new();
        if !self.value_only {
            s += &k;
            s.push('\n');
        }
        s += &v;
        s.push('\n');
        out_raw(&kv.key, &kv.value, self.hex, self.value_only, &s);
    }

    fn f_hdr(h: Option<&ResponseHeader>) -> String {
        let d = ResponseHeader::default();
        let h = h.unwrap_or(&d);
        format!(
            "\"ClusterID\" : {}\n\"MemberID\" : {}\n\"Revision\" : {}\n\"RaftTerm\" : {}\n",
            h.cluster_id, h.member_id, h.revision, h.raft_term
        )
    }

    fn f_kv(pfx: &str, kv: &KeyValue) -> String {
        format!(
            "\"{pfx}Key\" : {}\n\"{pfx}CreateRevision\" : {}\n\"{pfx}ModRevision\" : {}\n\"{pfx}Version\" : {}\n\"{pfx}Value\" : {}\n\"{pfx}Lease\" : {}\n",
            quote_bytes(&kv.key),
            kv.create_revision,
            kv.mod_revision,
            kv.version,
            quote_bytes(&kv.value),
            kv.lease
        )
    }

    // ---- KV

    pub fn get(&self, r: &RangeResponse) {
        match self.format {
            Format::Simple => r.kvs.iter().for_each(|kv| self.print_kv(kv)),
            Format::Json => out(&(j_range(r) + "\n")),
            Format::Protobuf => self.pb(r),
            Format::Fields => out(&Self::f_get(r)),
            Format::Table => self.unsupported(),
        }
    }

    fn f_get(r: &RangeResponse) -> String {
        let mut s = Self::f_hdr(r.header.as_ref());
        for kv in &r.kvs {
            s += &Self::f_kv("", kv);
        }
        s += &format!("\"More\" : {}\n\"Count\" : {}\n", r.more, r.count);
        s
    }

    pub fn put(&self, r: &PutResponse) {
        match self.format {
            Format::Simple => {
                out("OK\n");
                if let Some(kv) = &r.prev_kv {
                    self.print_kv(kv);
                }
            }
            Format::Json => out(&(j_put(r) + "\n")),
            Format::Protobuf => self.pb(r),
            Format::Fields => out(&Self::f_put(r)),
            Format::Table => self.unsupported(),
        }
    }

    fn f_put(r: &PutResponse) -> String {
        let mut s = Self::f_hdr(r.header.as_ref());
        if let Some(kv) = &r.prev_kv {
            s += &Self::f_kv("Prev", kv);
        }
        s
    }

    pub fn del(&self, r: &DeleteRangeResponse) {
        match self.format {
            Format::Simple => {
                out(&format!("{}\n", r.deleted));
                r.prev_kvs.iter().for_each(|kv| self.print_kv(kv));
            }
            Format::Json => out(&(j_del(r) + "\n")),
            Format::Protobuf => self.pb(r),
            Format::Fields => out(&Self::f_del(r)),
            Format::Table => self.unsupported(),
        }
    }

    fn f_del(r: &DeleteRangeResponse) -> String {
        let mut s = Self::f_hdr(r.header.as_ref());
        s += &format!("\"Deleted\" : {}\n", r.deleted);
        for kv in &r.prev_kvs {
            s += &Self::f_kv("Prev", kv);
        }
        s
    }

    pub fn txn(&self, r: &TxnResponse) {
        match self.format {
            Format::Simple => {
                out(if r.succeeded {
                    "SUCCESS\n"
                } else {
                    "FAILURE\n"
                });
                for op in &r.responses {
                    out("\n");
                    match &op.response {
                        Some(Response::ResponseDeleteRange(d)) => self.del(d),
                        Some(Response::ResponsePut(p)) => self.put(p),
                        Some(Response::ResponseRange(g)) => self.get(g),
                        _ => out(&format!("unexpected response {op:?}\n")),
                    }
                }
            }
            Format::Json => out(&(j_txn(r) + "\n")),
            Format::Protobuf => self.pb(r),
            Format::Fields => {
                let mut s = Self::f_hdr(r.header.as_ref());
                s += &format!("\"Succeeded\" : {}\n", r.succeeded);
                for op in &r.responses {
                    match &op.response {
                        Some(Response::ResponseDeleteRange(d)) => s += &Self::f_del(d),
                        Some(Response::ResponsePut(p)) => s += &Self::f_put(p),
                        Some(Response::ResponseRange(g)) => s += &Self::f_get(g),
                        other => s += &format!("\"Unknown\" : {}\n", quote(&format!("{other:?}"))),
                    }
                }
                out(&s);
            }
            Format::Table => self.unsupported(),
        }
    }

    /// One watch response (clientv3.WatchResponse: no watch ID, no cancel reason).
    pub fn watch(&self, r: &WatchResponse) {
        match self.format {
            Format::Simple => {
                for e in &r.events {
                    out(&format!("{}\n", event_type(e.r#type)));
                    if let Some(kv) = &e.prev_kv {
                        self.print_kv(kv);
                    }
                    self.print_kv(e.kv.as_ref().unwrap_or(&KeyValue::default()));
                }
            }
            Format::Json => {
                let d = ResponseHeader::default();
                let events = if r.events.is_empty() && !r.canceled {
                    "null".to_owned()
                } else if r.events.is_empty() {
                    "[]".to_owned()
                } else {
                    format!(
                        "[{}]",
                        r.events.iter().map(j_event).collect::<Vec<_>>().join(",")
                    )
                };
                let s = Obj::new()
                    .raw("Header", &j_header(r.header.as_ref().unwrap_or(&d)))
                    .raw("Events", &events)
                    .raw("CompactRevision", &r.compact_revision.to_string())
                    .raw("Canceled", &r.canceled.to_string())
                    .raw("Created", &r.created.to_string())
                    .end();
                out(&(s + "\n"));
            }
            Format::Protobuf => {
                let wr = WatchResponse {
                    header: Some(r.header.unwrap_or_default()),
                    events: r.events.clone(),
                    compact_revision: r.compact_revision,
                    canceled: r.canceled,
                    created: r.created,
                    ..Default::default()
                };
                self.pb(&wr);
            }
            Format::Fields => {
                let mut s = Self::f_hdr(r.header.as_ref());
                for e in &r.events {
                    s += &format!("\"Type\" : {}\n", event_type(e.r#type));
                    if let Some(kv) = &e.prev_kv {
                        s += &Self::f_kv("Prev", kv);
                    }
                    s += &Self::f_kv("", e.kv.as_ref().unwrap_or(&KeyValue::default()));
                }
                out(&s);
            }
            Format::Table => self.unsupported(),
        }
    }

    // ---- Lease

    pub fn grant(&self, r: &LeaseGrantResponse) {
        match self.format {
            Format::Simple => out(&format!(
                "lease {:016x} granted with TTL({}s)\n",
                r.id, r.ttl
            )),
            Format::Json => out(&(Obj::new()
                .header_fields(r.header.as_ref())
                .raw("ID", &r.id.to_string())
                .raw("TTL", &r.ttl.to_string())
                .raw("Error", &json_str(&r.error))
                .end()
                + "\n")),
            // clientv3's response embeds *ResponseHeader, whose Marshal is what runs.
            Format::Protobuf => self.pb(&r.header.unwrap_or_default()),
            Format::Fields => out(&format!(
                "{}\"ID\" : {}\n\"TTL\" : {}\n",
                Self::f_hdr(r.header.as_ref()),
                r.id,
                r.ttl
            )),
            Format::Table => self.unsupported(),
        }
    }

    pub fn revoke(&self, id: i64, r: &LeaseRevokeResponse) {
        match self.format {
            Format::Simple => out(&format!("lease {id:016x} revoked\n")),
            Format::Json => out(&(j_header_only(r.header.as_ref()) + "\n")),
            Format::Protobuf => self.pb(r),
            Format::Fields => out(&Self::f_hdr(r.header.as_ref())),
            Format::Table => self.unsupported(),
        }
    }

    pub fn keep_alive(&self, r: &LeaseKeepAliveResponse) {
        match self.format {
            Format::Simple => out(&format!(
                "lease {:016x} keepalived with TTL({})\n",
                r.id, r.ttl
            )),
            Format::Json => out(&(Obj::new()
                .header_fields(r.header.as_ref())
                .raw("ID", &r.id.to_string())
                .raw("TTL", &r.ttl.to_string())
                .end()
                + "\n")),
            Format::Protobuf => self.pb(&r.header.unwrap_or_default()),
            Format::Fields => out(&format!(
                "{}\"ID\" : {}\n\"TTL\" : {}\n",
                Self::f_hdr(r.header.as_ref()),
                r.id,
                r.ttl
            )),
            Format::Table => self.unsupported(),
        }
    }

    pub fn time_to_live(&self, r: &LeaseTimeToLiveResponse, keys: bool) {
        match self.format {
            Format::Simple => {
                if r.granted_ttl == 0 && r.ttl == -1 {
                    out(&format!("lease {:016x} already expired\n", r.id));
                    return;
                }
                let mut txt = format!(
                    "lease {:016x} granted with TTL({}s), remaining({}s)",
                    r.id, r.granted_ttl, r.ttl
                );
                if keys {
                    let ks: Vec<String> = r.keys.iter().map(|k| lossy(k)).collect();
                    txt += &format!(", attached keys([{}])", ks.join(" "));
                }
                out(&(txt + "\n"));
            }
            Format::Json => {
                let keys = if r.keys.is_empty() {
                    "null".to_owned()
                } else {
                    format!(
                        "[{}]",
                        r.keys
                            .iter()
                            .map(|k| format!("\"{}\"", base64(k)))
                            .collect::<Vec<_>>()
                            .join(",")
                    )
                };
                out(&(Obj::new()
                    .header_fields(r.header.as_ref())
                    .raw("id", &r.id.to_string())
                    .raw("ttl", &r.ttl.to_string())
                    .raw("granted-ttl", &r.granted_ttl.to_string())
                    .raw("keys", &keys)
                    .end()
                    + "\n"));
            }
            Format::Protobuf => self.pb(&r.header.unwrap_or_default()),
            Format::Fields => {
                let mut s = Self::f_hdr(r.header.as_ref());
                s += &format!(
                    "\"ID\" : {}\n\"TTL\" : {}\n\"GrantedTTL\" : {}\n",
                    r.id, r.ttl, r.granted_ttl
                );
                for k in &r.keys {
                    s += &format!("\"Key\" : {}\n", quote_bytes(k));
                }
                out(&s);
            }
            Format::Table => self.unsupported(),
        }
    }

    pub fn leases(&self, r: &LeaseLeasesResponse) {
        match self.format {
            Format::Simple => {
                let mut s = format!("found {} leases\n", r.leases.len());
                for l in &r.leases {
                    s += &format!("{:016x}\n", l.id);
                }
                out(&s);
            }
            Format::Json => {
                let leases: Vec<String> = r
                    .leases
                    .iter()
                    .map(|l| format!("{{\"id\":{}}}", l.id))
                    .collect();
                out(&(Obj::new()
                    .header_fields(r.header.as_ref())
                    .raw("leases", &format!("[{}]", leases.join(",")))
                    .end()
                    + "\n"));
            }
            Format::Protobuf => self.pb(&r.header.unwrap_or_default()),
            Format::Fields => {
                let mut s = Self::f_hdr(r.header.as_ref());
                for l in &r.leases {
                    s += &format!("\"ID\" : {}\n", l.id);
                }
                out(&s);
            }
            Format::Table => self.unsupported(),
        }
    }

    // ---- Cluster

    pub fn member_list(&self, r: &MemberListResponse) {
        match self.format {
            Format::Simple => {
                for row in member_rows(&r.members) {
                    out(&(row.join(", ") + "\n"));
                }
            }
            Format::Json => out(&(j_members(r.header.as_ref(), &r.members).end() + "\n")),
            Format::Protobuf => self.pb(r),
            Format::Fields => {
                let mut s = Self::f_hdr(r.header.as_ref());
                for m in &r.members {
                    s += &format!("\"ID\" : {}\n\"Name\" : {}\n", m.id, quote(&m.name));
                    for u in &m.peer_ur_ls {
                        s += &format!("\"PeerURL\" : {}\n", quote(u));
                    }
                    for u in &m.client_ur_ls {
                        s += &format!("\"ClientURL\" : {}\n", quote(u));
                    }
                    s += &format!("\"IsLearner\" : {}\n\n", m.is_learner);
                }
                out(&s);
            }
            Format::Table => out(&table(&MEMBER_HDR, &member_rows(&r.members))),
        }
    }

    pub fn member_add(&self, r: &MemberAddResponse) {
        let cluster = r.header.as_ref().map_or(0, |h| h.cluster_id);
        let id = r.member.as_ref().map_or(0, |m| m.id);
        match self.format {
            Format::Simple => out(&format!("Member {id:16x} added to cluster {cluster:16x}\n")),
            Format::Json => out(&(j_members(r.header.as_ref(), &[])
                .opt("member", r.member.as_ref().map(j_member))
                .list_ne("members", r.members.iter().map(j_member).collect())
                .end()
                + "\n")),
            Format::Protobuf => self.pb(r),
            _ => self.unsupported(),
        }
    }

    /// Remove, update and promote: `verb` is `removed from`, `updated in`, `promoted in`.
    pub fn member_changed(
        &self,
        verb: &str,
        id: u64,
        header: Option<&ResponseHeader>,
        members: &[Member],
        encoded: Vec<u8>,
    ) {
        let cluster = header.map_or(0, |h| h.cluster_id);
        match self.format {
            Format::Simple => out(&format!("Member {id:16x} {verb} cluster {cluster:16x}\n")),
            Format::Json => out(&(j_members(header, members).end() + "\n")),
            Format::Protobuf => out_bytes(&encoded),
            _ => self.unsupported(),
        }
    }

    pub fn endpoint_health(&self, list: &[EpHealth]) {
        match self.format {
            Format::Simple => {
                for h in list {
                    if h.error.is_empty() {
                        eprintln!(
                            "{} is healthy: successfully committed proposal: took = {}",
                            h.ep, h.took
                        );
                    } else {
                        eprintln!(
                            "{} is unhealthy: failed to commit proposal: {}",
                            h.ep, h.error
                        );
                    }
                }
            }
            Format::Json => {
                let items: Vec<String> = list
                    .iter()
                    .map(|h| {
                        Obj::new()
                            .raw("endpoint", &json_str(&h.ep))
                            .raw("health", &h.health.to_string())
                            .raw("took", &json_str(&h.took))
                            .str_ne("error", &h.error)
                            .end()
                    })
                    .collect();
                out(&format!("[{}]\n", items.join(",")));
            }
            Format::Fields => {
                let mut s = String::new();
                for h in list {
                    s += &format!(
                        "\"Endpoint\" : {}\n\"Health\" : {}\n\"Took\" : {}\n\"Error\" : {}\n\n",
                        quote(&h.ep),
                        h.health,
                        h.took,
                        h.error
                    );
                }
                out(&s);
            }
            Format::Table => {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|h| {
                        vec![
                            h.ep.clone(),
                            h.health.to_string(),
                            h.took.clone(),
                            h.error.clone(),
                        ]
                    })
                    .collect();
                out(&table(&["endpoint", "health", "took", "error"], &rows));
            }
            Format::Protobuf => self.unsupported(),
        }
    }

    pub fn endpoint_status(&self, list: &[(String, StatusResponse)]) {
        match self.format {
            Format::Simple => {
                for row in status_rows(list) {
                    out(&(row.join(", ") + "\n"));
                }
            }
            Format::Json => {
                let items: Vec<String> = list
                    .iter()
                    .map(|(ep, s)| {
                        Obj::new()
                            .raw("Endpoint", &json_str(ep))
                            .raw("Status", &j_status(s))
                            .end()
                    })
                    .collect();
                out(&format!("[{}]\n", items.join(",")));
            }
            Format::Fields => {
                let mut s = String::new();
                for (ep, st) in list {
                    s += &Self::f_hdr(st.header.as_ref());
                    s += &format!(
                        "\"Version\" : {}\n\"DBSize\" : {}\n\"Leader\" : {}\n\"IsLearner\" : {}\n\"RaftIndex\" : {}\n\"RaftTerm\" : {}\n\"RaftAppliedIndex\" : {}\n\"Errors\" : [{}]\n\"Endpoint\" : {}\n\n",
                        quote(&st.version),
                        st.db_size,
                        st.leader,
                        st.is_learner,
                        st.raft_index,
                        st.raft_term,
                        st.raft_applied_index,
                        st.errors.join(" "),
                        quote(ep)
                    );
                }
                out(&s);
            }
            Format::Table => out(&table(&STATUS_HDR, &status_rows(list))),
            Format::Protobuf => self.unsupported(),
        }
    }

    /// `snapshot status`: hash, revision, total keys, total size.
    pub fn db_status(&self, hash: u32, revision: i64, total_key: u64, total_size: u64) {
        match self.format {
            Format::Simple => out(&format!(
                "{hash:x}, {revision}, {total_key}, {}\n",
                crate::gofmt::humanize_bytes(total_size)
            )),
            Format::Json => out(&format!(
                "{{\"hash\":{hash},\"revision\":{revision},\"totalKey\":{total_key},\"totalSize\":{total_size}}}\n"
            )),
            Format::Fields => out(&format!(
                "\"Hash\" : {hash}\n\"Revision\" : {revision}\n\"Keys\" : {total_key}\n\"Size\" : {total_size}\n"
            )),
            Format::Table => out(&table(
                &["hash", "revision", "total keys", "total size"],
                &[vec![
                    format!("{hash:x}"),
                    revision.to_string(),
                    total_key.to_string(),
                    crate::gofmt::humanize_bytes(total_size),
                ]],
            )),
            Format::Protobuf => self.unsupported(),
        }
    }

    pub fn endpoint_hashkv(&self, list: &[(String, HashKvResponse)]) {
        match self.format {
            Format::Simple => {
                for (ep, h) in list {
                    out(&format!("{ep}, {}\n", h.hash));
                }
            }
            Format::Json => {
                let items: Vec<String> = list
                    .iter()
                    .map(|(ep, h)| {
                        Obj::new()
                            .raw("Endpoint", &json_str(ep))
                            .raw("HashKV", &j_hashkv(h))
                            .end()
                    })
                    .collect();
                out(&format!("[{}]\n", items.join(",")));
            }
            Format::Fields => {
                let mut s = String::new();
                for (ep, h) in list {
                    s += &Self::f_hdr(h.header.as_ref());
                    s += &format!("\"Endpoint\" : {}\n\"Hash\" : {}\n\n", quote(ep), h.hash);
                }
                out(&s);
            }
            Format::Table => {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|(ep, h)| vec![ep.clone(), h.hash.to_string()])
                    .collect();
                out(&table(&["endpoint", "hash"], &rows));
            }
            Format::Protobuf => self.unsupported(),
        }
    }

    pub fn alarm(&self, r: &AlarmResponse) {
        match self.format {
            Format::Simple => {
                for a in &r.alarms {
                    out(&format!("{}\n", alarm_text(a)));
                }
            }
            Format::Json => out(&(Obj::new()
                .opt("header", r.header.as_ref().map(j_header))
                .list_ne(
                    "alarms",
                    r.alarms
                        .iter()
                        .map(|a| {
                            Obj::new()
                                .num_ne("memberID", a.member_id)
                                .num_ne("alarm", a.alarm)
                                .end()
                        })
                        .collect(),
                )
                .end()
                + "\n")),
            Format::Protobuf => self.pb(r),
            Format::Fields => {
                let mut s = Self::f_hdr(r.header.as_ref());
                for a in &r.alarms {
                    s += &format!(
                        "\"MemberID\" : {}\n\"AlarmType\" : {}\n\n",
                        a.member_id,
                        alarm_name(a.alarm)
                    );
                }
                out(&s);
            }
            Format::Table => self.unsupported(),
        }
    }

    pub fn move_leader(
        &self,
        leader: u64,
        target: u64,
        header: Option<&ResponseHeader>,
        encoded: Vec<u8>,
    ) {
        match self.format {
            Format::Simple => out(&format!(
                "Leadership transferred from {leader:x} to {target:x}\n"
            )),
            Format::Json => out(&(j_header_only(header) + "\n")),
            Format::Protobuf => out_bytes(&encoded),
            _ => self.unsupported(),
        }
    }

    // ---- Auth

    /// Responses with only a header; `simple` is what the simple printer writes.
    pub fn header_only(
        &self,
        simple: &str,
        header: Option<&ResponseHeader>,
        encoded: Vec<u8>,
        fields_ok: bool,
    ) {
        match self.format {
            Format::Simple => out(simple),
            Format::Json => out(&(j_header_only(header) + "\n")),
            Format::Protobuf => out_bytes(&encoded),
            Format::Fields if fields_ok => out(&Self::f_hdr(header)),
            _ => self.unsupported(),
        }
    }

    pub fn role_get(&self, role: &str, r: &AuthRoleGetResponse) {
        match self.format {
            Format::Simple => {
                let mut s = format!("Role {role}\nKV Read:\n");
                let range = |p: &Permission| {
                    let mut t = String::new();
                    if p.range_end != b"\0" {
                        t += &format!("\t[{}, {})", lossy(&p.key), lossy(&p.range_end));
                    } else {
                        t += &format!("\t[{}, <open ended>", lossy(&p.key));
                    }
                    if prefix_end(&p.key) == p.range_end {
                        t += &format!(" (prefix {})", lossy(&p.key));
                    }
                    t + "\n"
                };
                let list = |s: &mut String, want: [PermType; 2]| {
                    for p in &r.perm {
                        let t = PermType::try_from(p.perm_type).unwrap_or(PermType::Read);
                        if want.contains(&t) {
                            if p.range_end.is_empty() {
                                *s += &format!("\t{}\n", lossy(&p.key));
                            } else {
                                *s += &range(p);
                            }
                        }
                    }
                };
                list(&mut s, [PermType::Read, PermType::Readwrite]);
                s += "KV Write:\n";
                list(&mut s, [PermType::Write, PermType::Readwrite]);
                out(&s);
            }
            Format::Json => out(&(Obj::new()
                .opt("header", r.header.as_ref().map(j_header))
                .list_ne("perm", r.perm.iter().map(j_perm).collect())
                .end()
                + "\n")),
            Format::Protobuf => self.pb(r),
            Format::Fields => {
                let mut s = Self::f_hdr(r.header.as_ref());
                for p in &r.perm {
                    s += &format!(
                        "\"PermType\" :  {}\n\"Key\" : {}\n\"RangeEnd\" : {}\n",
                        perm_type(p.perm_type),
                        quote_bytes(&p.key),
                        quote_bytes(&p.range_end)
                    );
                }
                out(&s);
            }
            Format::Table => self.unsupported(),
        }
    }

    pub fn role_list(&self, r: &AuthRoleListResponse) {
        match self.format {
            Format::Simple => r.roles.iter().for_each(|x| out(&format!("{x}\n"))),
            Format::Json => out(&(j_strings("roles", r.header.as_ref(), &r.roles) + "\n")),
            Format::Protobuf => self.pb(r),
            Format::Fields => {
                let mut s = Self::f_hdr(r.header.as_ref());
                s += "\"Roles\" :";
                for x in &r.roles {
                    s += &format!(" {}", quote(x));
                }
                out(&(s + "\n"));
            }
            Format::Table => self.unsupported(),
        }
    }

    pub fn user_get(&self, name: &str, r: &AuthUserGetResponse) {
        match self.format {
            Format::Simple => {
                let mut s = format!("User: {name}\nRoles:");
                for x in &r.roles {
                    s += &format!(" {x}");
                }
                out(&(s + "\n"));
            }
            Format::Json => out(&(j_strings("roles", r.header.as_ref(), &r.roles) + "\n")),
            Format::Protobuf => self.pb(r),
            _ => self.unsupported(),
        }
    }

    pub fn user_list(&self, r: &AuthUserListResponse) {
        match self.format {
            Format::Simple => r.users.iter().for_each(|x| out(&format!("{x}\n"))),
            Format::Json => out(&(j_strings("users", r.header.as_ref(), &r.users) + "\n")),
            Format::Protobuf => self.pb(r),
            _ => self.unsupported(),
        }
    }
}

fn alarm_text(a: &AlarmMember) -> String {
    // gogo's String() of the message: the compact text format.
    let mut s = String::new();
    if a.member_id != 0 {
        s += &format!("memberID:{} ", a.member_id);
    }
    if a.alarm != 0 {
        s += &format!("alarm:{} ", alarm_name(a.alarm));
    }
    s
}

/// Writes a key/value pair; with raw bytes when they are not UTF-8 (Go prints bytes).
fn out_raw(key: &[u8], value: &[u8], hex: bool, value_only: bool, text: &str) {
    if hex || (std::str::from_utf8(key).is_ok() && std::str::from_utf8(value).is_ok()) {
        out(text);
        return;
    }
    let mut bytes = Vec::new();
    if !value_only {
        bytes.extend_from_slice(key);
        bytes.push(b'\n');
    }
    bytes.extend_from_slice(value);
    bytes.push(b'\n');
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(&bytes);
}

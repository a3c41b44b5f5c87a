//! Writing an etcd backend from typed values: a fresh bbolt file with etcd's buckets, which
//! etcd accepts as its `member/snap/db` or (with [`append_sha256_trailer`]) as a snapshot file
//! for `etcdctl snapshot restore`.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use chorus_api::etcdserverpb::AlarmMember;
use prost::Message;

use super::error::BackendError;
use super::types::{member_key, AuthInfo, ClusterInfo, Membership, MetaInfo, RevisionEntry};
use super::{buckets, keys};
use crate::bbolt::{BoltWriter, WriteSummary};
use crate::proto::leasepb::Lease;

/// Every bucket etcd creates, in bbolt's (byte) order, which is the order they are written.
const SECTIONS: [&[u8]; 10] = [
    buckets::ALARM,
    buckets::AUTH,
    buckets::AUTH_ROLES,
    buckets::AUTH_USERS,
    buckets::CLUSTER,
    buckets::KEY,
    buckets::LEASE,
    buckets::MEMBERS,
    buckets::MEMBERS_REMOVED,
    buckets::META,
];

/// Writes an etcd backend. Sections go in bucket order — alarms, auth, cluster, revisions
/// (streamed, in revision order), leases, members, meta — and any may be skipped (its buckets
/// are created empty, as etcd creates them).
pub struct BackendWriter {
    bolt: BoltWriter,
    path: PathBuf,
    /// Index into [`SECTIONS`] of the next bucket to create.
    next: usize,
    /// Whether the `key` bucket is open for [`put_revision`](Self::put_revision).
    key_open: bool,
}

impl BackendWriter {
    /// Creates (or truncates) `path`.
    pub fn create(path: impl AsRef<Path>) -> Result<BackendWriter, BackendError> {
        let path = path.as_ref().to_path_buf();
        Ok(BackendWriter {
            bolt: BoltWriter::create(&path)?,
            path,
            next: 0,
            key_open: false,
        })
    }

    /// The `alarm` bucket.
    pub fn write_alarms(&mut self, alarms: &[AlarmMember]) -> Result<(), BackendError> {
        let items = alarms
            .iter()
            .map(|a| (a.encode_to_vec(), Vec::new()))
            .collect();
        self.write_bucket(buckets::ALARM, items)
    }

    /// The `auth`, `authRoles` and `authUsers` buckets.
    pub fn write_auth(&mut self, auth: &AuthInfo) -> Result<(), BackendError> {
        let mut flags = BTreeMap::new();
        if let Some(enabled) = auth.enabled {
            flags.insert(keys::AUTH_ENABLED.to_vec(), vec![u8::from(enabled)]);
        }
        if let Some(rev) = auth.revision {
            flags.insert(keys::AUTH_REVISION.to_vec(), rev.to_be_bytes().to_vec());
        }
        self.write_bucket(buckets::AUTH, flags)?;
        let roles = auth
            .roles
            .iter()
            .map(|r| (r.name.clone(), r.encode_to_vec()))
            .collect();
        self.write_bucket(buckets::AUTH_ROLES, roles)?;
        let users = auth
            .users
            .iter()
            .map(|u| (u.name.clone(), u.encode_to_vec()))
            .collect();
        self.write_bucket(buckets::AUTH_USERS, users)
    }

    /// The `cluster` bucket.
    pub fn write_cluster(&mut self, cluster: &ClusterInfo) -> Result<(), BackendError> {
        let mut items = BTreeMap::new();
        if let Some(v) = &cluster.cluster_version {
            items.insert(keys::CLUSTER_VERSION.to_vec(), v.as_bytes().to_vec());
        }
        if let Some(d) = &cluster.downgrade {
            items.insert(
                keys::DOWNGRADE.to_vec(),
                serde_json::to_vec(d).expect("JSON of a struct"),
            );
        }
        self.write_bucket(buckets::CLUSTER, items)
    }

    /// Appends one record to the `key` bucket; records must come in increasing revision order.
    pub fn put_revision(&mut self, entry: &RevisionEntry) -> Result<(), BackendError> {
        if !self.key_open {
            self.advance_to(buckets::KEY)?;
            self.bolt.begin_bucket(buckets::KEY)?;
            self.key_open = true;
        }
        let key = entry.revision.to_key(entry.tombstone);
        Ok(self.bolt.put(&key, &entry.kv.encode_to_vec())?)
    }

    /// The `lease` bucket.
    pub fn write_leases(&mut self, leases: &[Lease]) -> Result<(), BackendError> {
        let items = leases
            .iter()
            .map(|l| (l.id.to_be_bytes().to_vec(), l.encode_to_vec()))
            .collect();
        self.write_bucket(buckets::LEASE, items)
    }

    /// The `members` and `members_removed` buckets.
    pub fn write_members(&mut self, m: &Membership) -> Result<(), BackendError> {
        let members = m
            .members
            .iter()
            .map(|mem| {
                (
                    member_key(mem.id),
                    serde_json::to_vec(mem).expect("JSON of a struct"),
                )
            })
            .collect();
        self.write_bucket(buckets::MEMBERS, members)?;
        let removed = m
            .removed
            .iter()
            .map(|id| (member_key(*id), b"removed".to_vec()))
            .collect();
        self.write_bucket(buckets::MEMBERS_REMOVED, removed)
    }

    /// The `meta` bucket.
    pub fn write_meta(&mut self, meta: &MetaInfo) -> Result<(), BackendError> {
        let mut items = meta.other.clone();
        let mut put = |k: &[u8], v: Vec<u8>| items.insert(k.to_vec(), v);
        if let Some(ci) = meta.consistent_index {
            put(keys::CONSISTENT_INDEX, ci.to_be_bytes().to_vec());
        }
        if let Some(term) = meta.term {
            put(keys::TERM, term.to_be_bytes().to_vec());
        }
        let rev = |main: i64| super::types::Revision { main, sub: 0 }.to_key(false);
        if let Some(r) = meta.scheduled_compact_rev {
            put(keys::SCHEDULED_COMPACT_REV, rev(r));
        }
        if let Some(r) = meta.finished_compact_rev {
            put(keys::FINISHED_COMPACT_REV, rev(r));
        }
        if let Some(cs) = &meta.conf_state {
            put(
                keys::CONF_STATE,
                serde_json::to_vec(cs).expect("JSON of a struct"),
            );
        }
        if let Some(v) = &meta.storage_version {
            put(keys::STORAGE_VERSION, v.as_bytes().to_vec());
        }
        self.write_bucket(buckets::META, items)
    }

    /// Creates the buckets not written yet, empty, and completes the file.
    pub fn finish(mut self) -> Result<WriteSummary, BackendError> {
        self.advance_to(b"\xff")?;
        Ok(self.bolt.finish()?)
    }

    /// Writes a whole bucket (after creating any skipped ones).
    fn write_bucket(
        &mut self,
        name: &'static [u8],
        items: BTreeMap<Vec<u8>, Vec<u8>>,
    ) -> Result<(), BackendError> {
        self.advance_to(name)?;
        self.next += 1;
        self.bolt.begin_bucket(name)?;
        for (k, v) in &items {
            self.bolt.put(k, v)?;
        }
        Ok(self.bolt.end_bucket()?)
    }

    /// Closes the `key` bucket if open and creates, empty, every bucket before `name`.
    fn advance_to(&mut self, name: &[u8]) -> Result<(), BackendError> {
        if self.key_open && name != buckets::KEY {
            self.bolt.end_bucket()?;
            self.key_open = false;
            self.next += 1;
        }
        if self.next > 0 && SECTIONS[self.next - 1] >= name {
            let what = format!(
                "bucket {:?} written after {:?}: sections must come in bucket order",
                String::from_utf8_lossy(name),
                String::from_utf8_lossy(SECTIONS[self.next - 1])
            );
            return Err(BackendError::Misuse {
                file: self.path.clone(),
                what,
            });
        }
        while self.next < SECTIONS.len() && SECTIONS[self.next] < name {
            self.bolt.begin_bucket(SECTIONS[self.next])?;
            self.bolt.end_bucket()?;
            self.next += 1;
        }
        Ok(())
    }
}

/// Appends etcd's snapshot trailer, the SHA-256 of the file's content, turning a backend file
/// into what `etcdctl snapshot save` writes (which `snapshot restore` checks).
pub fn append_sha256_trailer(path: impl AsRef<Path>) -> Result<[u8; 32], BackendError> {
    use sha2::Digest as _;
    let path = path.as_ref();
    let io = |op, source| BackendError::Io {
        file: path.to_path_buf(),
        op,
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .open(path)
        .map_err(|e| io("open", e))?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| io("read", e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let sum: [u8; 32] = hasher.finalize().into();
    file.write_all(&sum).map_err(|e| io("append", e))?;
    file.sync_all().map_err(|e| io("fsync", e))?;
    Ok(sum)
}

/// Copies every section of `src` into a fresh, compact backend at `dst` through the typed
/// reader and writer (revisions streamed). Keys of `meta` that are not known are kept; other
/// unknown keys and buckets are dropped.
pub fn rewrite(src: &super::Backend, dst: impl AsRef<Path>) -> Result<WriteSummary, BackendError> {
    let mut w = BackendWriter::create(dst)?;
    w.write_alarms(&src.alarms()?)?;
    w.write_auth(&src.auth()?)?;
    w.write_cluster(&src.cluster()?)?;
    for r in src.revisions()? {
        w.put_revision(&r?)?;
    }
    w.write_leases(&src.leases()?)?;
    w.write_members(&src.members()?)?;
    w.write_meta(&src.meta()?)?;
    w.finish()
}

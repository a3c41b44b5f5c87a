//! Reading an etcd backend (a `member/snap/db` file or a snapshot file) as typed values.

use std::path::Path;

use chorus_api::authpb;
use chorus_api::etcdserverpb::AlarmMember;
use chorus_api::mvccpb::KeyValue;
use prost::Message;

use super::error::{hex, show_key, BackendError};
use super::types::{
    AuthInfo, ClusterInfo, ConfState, DowngradeInfo, Member, Membership, MetaInfo, Revision,
    RevisionEntry,
};
use super::{buckets, keys};
use crate::bbolt::{Bucket, Cursor, Db};
use crate::proto::leasepb::Lease;

/// An etcd backend opened for reading. Buckets that are absent (older etcd versions lack
/// some) read as empty.
pub struct Backend {
    db: Db,
}

impl Backend {
    /// Opens `path` (a `db` file or an `etcdctl snapshot save` file).
    pub fn open(path: impl AsRef<Path>) -> Result<Backend, BackendError> {
        Ok(Backend {
            db: Db::open(path)?,
        })
    }

    /// Wraps an open bbolt file.
    pub fn from_db(db: Db) -> Backend {
        Backend { db }
    }

    /// The bbolt file.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Every record of the `key` bucket, in revision order.
    pub fn revisions(&self) -> Result<Revisions<'_>, BackendError> {
        self.revisions_from(Revision::default())
    }

    /// Records of the `key` bucket from revision `start` on.
    pub fn revisions_from(&self, start: Revision) -> Result<Revisions<'_>, BackendError> {
        let cursor = self
            .db
            .bucket(buckets::KEY)?
            .map(|b| b.iter_from(&start.to_key(false)));
        Ok(Revisions {
            db: &self.db,
            cursor,
        })
    }

    /// The `meta` bucket.
    pub fn meta(&self) -> Result<MetaInfo, BackendError> {
        let mut m = MetaInfo::default();
        for (k, v) in self.entries(buckets::META)? {
            let bucket = "meta";
            match k.as_slice() {
                keys::CONSISTENT_INDEX => m.consistent_index = Some(self.be_u64(bucket, &k, &v)?),
                keys::TERM => m.term = Some(self.be_u64(bucket, &k, &v)?),
                keys::SCHEDULED_COMPACT_REV => {
                    m.scheduled_compact_rev = Some(self.rev_main(&k, &v)?)
                }
                keys::FINISHED_COMPACT_REV => m.finished_compact_rev = Some(self.rev_main(&k, &v)?),
                keys::CONF_STATE => {
                    m.conf_state =
                        Some(self.json::<ConfState>(bucket, &k, &v, "raftpb.ConfState")?)
                }
                keys::STORAGE_VERSION => m.storage_version = Some(self.text(bucket, &k, &v)?),
                _ => {
                    m.other.insert(k, v);
                }
            }
        }
        Ok(m)
    }

    /// The `lease` bucket, by lease ID.
    pub fn leases(&self) -> Result<Vec<Lease>, BackendError> {
        let mut leases = Vec::new();
        for (k, v) in self.entries(buckets::LEASE)? {
            if k.len() != 8 {
                return Err(self.bad_value(
                    "lease",
                    &k,
                    format!("key of {} bytes, expected an 8-byte lease ID", k.len()),
                ));
            }
            leases.push(self.decode::<Lease>("lease", &k, &v, "leasepb.Lease")?);
        }
        Ok(leases)
    }

    /// The `members` and `members_removed` buckets.
    pub fn members(&self) -> Result<Membership, BackendError> {
        let mut ms = Membership::default();
        for (k, v) in self.entries(buckets::MEMBERS)? {
            ms.members
                .push(self.json::<Member>("members", &k, &v, "membership.Member")?);
        }
        for (k, _) in self.entries(buckets::MEMBERS_REMOVED)? {
            let id = std::str::from_utf8(&k)
                .ok()
                .and_then(|s| u64::from_str_radix(s, 16).ok());
            let id = id.ok_or_else(|| {
                self.bad_value("members_removed", &k, "key is not a hex member ID".into())
            })?;
            ms.removed.push(id);
        }
        ms.members.sort_by_key(|m| m.id);
        ms.removed.sort_unstable();
        Ok(ms)
    }

    /// The `cluster` bucket.
    pub fn cluster(&self) -> Result<ClusterInfo, BackendError> {
        let mut c = ClusterInfo::default();
        for (k, v) in self.entries(buckets::CLUSTER)? {
            match k.as_slice() {
                keys::CLUSTER_VERSION => c.cluster_version = Some(self.text("cluster", &k, &v)?),
                keys::DOWNGRADE => {
                    c.downgrade =
                        Some(self.json::<DowngradeInfo>("cluster", &k, &v, "DowngradeInfo")?)
                }
                _ => {}
            }
        }
        Ok(c)
    }

    /// The `auth`, `authUsers` and `authRoles` buckets.
    pub fn auth(&self) -> Result<AuthInfo, BackendError> {
        let mut a = AuthInfo::default();
        for (k, v) in self.entries(buckets::AUTH)? {
            match k.as_slice() {
                keys::AUTH_ENABLED => a.enabled = Some(v.as_slice() == [1]),
                keys::AUTH_REVISION => a.revision = Some(self.be_u64("auth", &k, &v)?),
                _ => {}
            }
        }
        for (k, v) in self.entries(buckets::AUTH_USERS)? {
            a.users
                .push(self.decode::<authpb::User>("authUsers", &k, &v, "authpb.User")?);
        }
        for (k, v) in self.entries(buckets::AUTH_ROLES)? {
            a.roles
                .push(self.decode::<authpb::Role>("authRoles", &k, &v, "authpb.Role")?);
        }
        Ok(a)
    }

    /// The `alarm` bucket.
    pub fn alarms(&self) -> Result<Vec<AlarmMember>, BackendError> {
        let mut alarms = Vec::new();
        for (k, _) in self.entries(buckets::ALARM)? {
            alarms.push(self.decode::<AlarmMember>("alarm", &k, &k, "etcdserverpb.AlarmMember")?);
        }
        Ok(alarms)
    }

    /// The plain key/values of a top-level bucket (empty if the bucket is absent).
    pub fn entries(&self, bucket: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>, BackendError> {
        let Some(b): Option<Bucket<'_>> = self.db.bucket(bucket)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for e in b.iter() {
            let e = e?;
            if !e.is_bucket {
                out.push((e.key, e.value));
            }
        }
        Ok(out)
    }

    fn decode<M: Message + Default>(
        &self,
        bucket: &'static str,
        k: &[u8],
        v: &[u8],
        message: &'static str,
    ) -> Result<M, BackendError> {
        M::decode(v).map_err(|source| BackendError::Protobuf {
            file: self.db.path().to_path_buf(),
            bucket,
            key: show_key(k),
            message,
            source,
        })
    }

    fn json<T: serde::de::DeserializeOwned>(
        &self,
        bucket: &'static str,
        k: &[u8],
        v: &[u8],
        what: &'static str,
    ) -> Result<T, BackendError> {
        serde_json::from_slice(v).map_err(|source| BackendError::Json {
            file: self.db.path().to_path_buf(),
            bucket,
            key: show_key(k),
            what,
            source,
        })
    }

    fn be_u64(&self, bucket: &'static str, k: &[u8], v: &[u8]) -> Result<u64, BackendError> {
        let b: [u8; 8] = v.try_into().map_err(|_| {
            self.bad_value(
                bucket,
                k,
                format!("{} bytes, expected an 8-byte big-endian integer", v.len()),
            )
        })?;
        Ok(u64::from_be_bytes(b))
    }

    fn rev_main(&self, k: &[u8], v: &[u8]) -> Result<i64, BackendError> {
        match Revision::from_key(v) {
            Some((rev, false)) => Ok(rev.main),
            _ => Err(self.bad_value("meta", k, format!("value {} is not a revision", hex(v)))),
        }
    }

    fn text(&self, bucket: &'static str, k: &[u8], v: &[u8]) -> Result<String, BackendError> {
        String::from_utf8(v.to_vec())
            .map_err(|_| self.bad_value(bucket, k, "value is not UTF-8".into()))
    }

    fn bad_value(&self, bucket: &'static str, k: &[u8], what: String) -> BackendError {
        BackendError::BadValue {
            file: self.db.path().to_path_buf(),
            bucket,
            key: show_key(k),
            what,
        }
    }
}

/// Iterator over the `key` bucket's records in revision order; ends after an error.
pub struct Revisions<'a> {
    db: &'a Db,
    cursor: Option<Cursor<'a>>,
}

impl Revisions<'_> {
    fn decode(&self, key: &[u8], value: &[u8]) -> Result<RevisionEntry, BackendError> {
        let file = self.db.path().to_path_buf();
        let (revision, tombstone) =
            Revision::from_key(key).ok_or_else(|| BackendError::BadRevisionKey {
                file: file.clone(),
                key: hex(key),
            })?;
        let kv = KeyValue::decode(value).map_err(|source| BackendError::Protobuf {
            file,
            bucket: "key",
            key: hex(key),
            message: "mvccpb.KeyValue",
            source,
        })?;
        Ok(RevisionEntry {
            revision,
            tombstone,
            kv,
        })
    }
}

impl Iterator for Revisions<'_> {
    type Item = Result<RevisionEntry, BackendError>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = match self.cursor.as_mut()?.next()? {
            Ok(e) => self.decode(&e.key, &e.value),
            Err(e) => Err(e.into()),
        };
        if item.is_err() {
            self.cursor = None;
        }
        Some(item)
    }
}

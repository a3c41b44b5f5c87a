//! Alarms (etcd's AlarmStore) and the backend quota that raises NOSPACE.
//!
//! An alarm is replicated state: activating or deactivating one goes through raft and is
//! stored in the backend's `alarm` table. While a NOSPACE alarm is active, apply refuses
//! writes that add data (etcd's "capped" applier).

use std::collections::BTreeSet;

use chorus_api::etcdserverpb::{
    request_op, AlarmMember, AlarmType, LeaseGrantRequest, PutRequest, TxnRequest,
};
use chorus_storage::backend::{Backend, BackendError, ALARMS};
use prost::Message as _;
use redb::ReadableTable;

/// Active alarms, ordered by (alarm type, member).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Alarms(BTreeSet<(i32, u64)>);

impl Alarms {
    pub fn load(backend: &Backend) -> Result<Alarms, BackendError> {
        let tx = backend.begin_read()?;
        let table = tx.open_table(ALARMS)?;
        let mut set = BTreeSet::new();
        for item in table.iter()? {
            let (k, _) = item?;
            let m = AlarmMember::decode(k.value()).map_err(|e| BackendError::Corrupt {
                what: format!("alarm: {e}"),
            })?;
            set.insert((m.alarm, m.member_id));
        }
        Ok(Alarms(set))
    }

    /// Every active alarm of `kind`, or all of them for `AlarmType::None`.
    pub fn get(&self, kind: i32) -> Vec<AlarmMember> {
        self.0
            .iter()
            .filter(|(a, _)| kind == AlarmType::None as i32 || *a == kind)
            .map(|&(alarm, member_id)| AlarmMember { member_id, alarm })
            .collect()
    }

    pub fn is_active(&self, kind: AlarmType) -> bool {
        self.0.iter().any(|(a, _)| *a == kind as i32)
    }

    /// Activates in the apply transaction; returns the alarm (new or already active).
    pub fn activate(
        &mut self,
        tx: &redb::WriteTransaction,
        m: AlarmMember,
    ) -> Result<AlarmMember, BackendError> {
        if self.0.insert((m.alarm, m.member_id)) {
            tx.open_table(ALARMS)?
                .insert(m.encode_to_vec().as_slice(), [].as_slice())?;
        }
        Ok(m)
    }

    /// Deactivates in the apply transaction; returns the alarm if it was active.
    pub fn deactivate(
        &mut self,
        tx: &redb::WriteTransaction,
        m: AlarmMember,
    ) -> Result<Option<AlarmMember>, BackendError> {
        if !self.0.remove(&(m.alarm, m.member_id)) {
            return Ok(None);
        }
        tx.open_table(ALARMS)?
            .remove(m.encode_to_vec().as_slice())?;
        Ok(Some(m))
    }

    /// Status's `errors`: etcd's "memberID:<id> alarm:<NAME> " strings.
    pub fn status_errors(&self) -> Vec<String> {
        self.get(AlarmType::None as i32)
            .iter()
            .map(|m| {
                let name = AlarmType::try_from(m.alarm).map_or("UNKNOWN", |a| a.as_str_name());
                format!("memberID:{} alarm:{} ", m.member_id, name)
            })
            .collect()
    }
}

/// Bytes etcd counts for a key-value beyond its key and value.
const KV_OVERHEAD: u64 = 256;
const LEASE_OVERHEAD: u64 = 64;

/// What a write will add to the backend, as etcd's backendQuota estimates it.
pub trait QuotaCost {
    fn cost(&self) -> u64;
}

impl QuotaCost for PutRequest {
    fn cost(&self) -> u64 {
        KV_OVERHEAD + self.key.len() as u64 + self.value.len() as u64
    }
}

impl QuotaCost for TxnRequest {
    fn cost(&self) -> u64 {
        let branch = |ops: &[chorus_api::etcdserverpb::RequestOp]| -> u64 {
            ops.iter()
                .map(|op| match &op.request {
                    Some(request_op::Request::RequestPut(p)) => p.cost(),
                    _ => 0,
                })
                .sum()
        };
        branch(&self.success).max(branch(&self.failure))
    }
}

impl QuotaCost for LeaseGrantRequest {
    fn cost(&self) -> u64 {
        LEASE_OVERHEAD
    }
}

/// Whether a write of `cost` bytes fits: etcd's `size + cost < quota`; free writes always do.
pub fn fits(db_size: u64, cost: u64, quota: Option<u64>) -> bool {
    match quota {
        _ if cost == 0 => true,
        None => true,
        Some(q) => db_size + cost < q,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_follow_etcd() {
        let p = PutRequest {
            key: b"abc".to_vec(),
            value: vec![0; 10],
            ..Default::default()
        };
        assert_eq!(p.cost(), 269);
        let op = |p: &PutRequest| chorus_api::etcdserverpb::RequestOp {
            request: Some(request_op::Request::RequestPut(p.clone())),
        };
        let t = TxnRequest {
            success: vec![op(&p)],
            failure: vec![op(&p), op(&p)],
            ..Default::default()
        };
        assert_eq!(t.cost(), 538);
        assert!(fits(100, 0, Some(10)));
        assert!(!fits(100, 1, Some(101)));
        assert!(fits(100, 1, Some(102)));
        assert!(fits(u64::MAX / 2, 1, None));
    }

    #[test]
    fn alarms_persist_and_report() {
        let dir = tempfile::tempdir().unwrap();
        let backend = Backend::open(&dir.path().join("db"), &Default::default()).unwrap();
        let mut alarms = Alarms::load(&backend).unwrap();
        let nospace = AlarmMember {
            member_id: 7,
            alarm: AlarmType::Nospace as i32,
        };
        let tx = backend.begin_write().unwrap();
        alarms.activate(&tx, nospace).unwrap();
        alarms.activate(&tx, nospace).unwrap();
        tx.commit().unwrap();
        assert!(alarms.is_active(AlarmType::Nospace));
        assert_eq!(
            alarms.status_errors(),
            vec!["memberID:7 alarm:NOSPACE ".to_string()]
        );
        assert_eq!(Alarms::load(&backend).unwrap(), alarms);
        let tx = backend.begin_write().unwrap();
        assert_eq!(alarms.deactivate(&tx, nospace).unwrap(), Some(nospace));
        assert_eq!(alarms.deactivate(&tx, nospace).unwrap(), None);
        tx.commit().unwrap();
        assert!(Alarms::load(&backend)
            .unwrap()
            .get(AlarmType::None as i32)
            .is_empty());
    }
}

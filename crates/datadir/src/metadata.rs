//! The WAL's metadata record: which member and cluster the log belongs to, and the
//! configuration the cluster was bootstrapped with (the raft log starts with it in force).

use protobuf::Message as _;
use raft::eraftpb::ConfState;

#[derive(Clone, Debug, PartialEq)]
pub struct WalMetadata {
    pub member_id: u64,
    pub cluster_id: u64,
    pub conf_state: ConfState,
}

impl WalMetadata {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(64);
        v.extend_from_slice(&self.member_id.to_be_bytes());
        v.extend_from_slice(&self.cluster_id.to_be_bytes());
        v.extend_from_slice(&self.conf_state.write_to_bytes().expect("encode conf state"));
        v
    }

    /// None: not a chorus member record.
    pub fn decode(b: &[u8]) -> Option<WalMetadata> {
        let member_id = u64::from_be_bytes(b.get(..8)?.try_into().ok()?);
        let cluster_id = u64::from_be_bytes(b.get(8..16)?.try_into().ok()?);
        let conf_state = ConfState::parse_from_bytes(b.get(16..)?).ok()?;
        Some(WalMetadata {
            member_id,
            cluster_id,
            conf_state,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let m = WalMetadata {
            member_id: 7,
            cluster_id: 9,
            conf_state: ConfState {
                voters: vec![1, 2, 3],
                ..Default::default()
            },
        };
        assert_eq!(WalMetadata::decode(&m.encode()), Some(m));
        assert_eq!(WalMetadata::decode(b"short"), None);
        assert_eq!(WalMetadata::decode(&[0xff; 40]), None);
    }
}

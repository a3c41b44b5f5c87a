//! etcd clients mark streams that must not outlive the leader with `hasleader: true`
//! (clientv3's WithRequireLeader).

use crate::member::Member;

/// Such a call fails at once when there is no leader.
pub fn require_leader(
    member: &Member,
    md: &tonic::metadata::MetadataMap,
) -> Result<(), tonic::Status> {
    let required = md.get("hasleader").is_some_and(|v| v == "true");
    if required && member.leader() == raft::INVALID_ID {
        return Err(crate::error::EtcdError::NoLeader.into());
    }
    Ok(())
}

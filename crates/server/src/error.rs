//! Errors a client can see, with etcd's exact gRPC codes and messages (clients match on
//! the text), converted to `tonic::Status` here and nowhere else.

use chorus_storage::mvcc::MvccError;
use tonic::{Code, Status};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EtcdError {
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    #[error("etcdserver: key not found")]
    KeyNotFound,
    #[error("etcdserver: value is provided")]
    ValueProvided,
    #[error("etcdserver: lease is provided")]
    LeaseProvided,
    #[error("etcdserver: too many operations in txn request")]
    TooManyOps,
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    #[error("etcdserver: invalid sort option")]
    InvalidSortOption,
    #[error("etcdserver: mvcc: required revision has been compacted")]
    Compacted,
    #[error("etcdserver: mvcc: required revision is a future revision")]
    FutureRev,
    #[error("etcdserver: mvcc: database space exceeded")]
    NoSpace,
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    #[error("etcdserver: lease already exists")]
    LeaseExist,
    #[error("etcdserver: too large lease TTL")]
    LeaseTtlTooLarge,
    #[error("etcdserver: member ID already exist")]
    MemberExist,
    #[error("etcdserver: Peer URLs already exists")]
    PeerUrlExist,
    #[error("etcdserver: member not found")]
    MemberNotFound,
    #[error("etcdserver: given member URLs are invalid")]
    MemberBadUrls,
    #[error("etcdserver: request is too large")]
    RequestTooLarge,
    #[error("etcdserver: too many requests")]
    TooManyRequests,
    #[error("etcdserver: no leader")]
    NoLeader,
    #[error("etcdserver: not leader")]
    NotLeader,
    #[error("etcdserver: leader changed")]
    LeaderChanged,
    #[error("etcdserver: server stopped")]
    Stopped,
    #[error("etcdserver: request timed out")]
    Timeout,
    #[error("etcdserver: request timed out, possibly due to previous leader failure")]
    TimeoutDueToLeaderFail,
    #[error("etcdserver: request timed out, waiting for the applied index took too long")]
    TimeoutWaitAppliedIndex,
    #[error("etcdserver: unhealthy cluster")]
    Unhealthy,
    #[error("etcdserver: corrupt cluster")]
    Corrupt,
    #[error("etcdserver: bad leader transferee")]
    BadLeaderTransferee,
    #[error("etcdserver: request timed out, leader transfer took too long")]
    TimeoutLeaderTransfer,
    #[error("etcdserver: can only promote a learner member")]
    MemberNotLearner,
    #[error("etcdserver: can only promote a learner member which is in sync with leader")]
    LearnerNotReady,
    #[error("etcdserver: too many learner members in cluster")]
    TooManyLearners,
    #[error("etcdserver: re-configuration failed due to not enough started members")]
    NotEnoughStartedMembers,
    #[error("etcdserver: rpc not supported for learner")]
    NotSupportedForLearner,
    #[error("etcdserver: wrong downgrade target version format")]
    WrongDowngradeVersionFormat,
    #[error("etcdserver: invalid downgrade target version")]
    InvalidDowngradeTargetVersion,
    #[error("etcdserver: cluster has a downgrade job in progress")]
    DowngradeInProcess,
    #[error("etcdserver: no inflight downgrade job")]
    NoInflightDowngrade,
    /// The leader has not decided the cluster version yet.
    #[error("etcdserver: cluster version not found during downgrade")]
    ClusterVersionUnavailable,
    /// A Downgrade action etcd does not know (gRPC `Unknown`, as etcd's `togRPCError`
    /// leaves it).
    #[error("etcdserver: unknown method")]
    UnknownMethod,
    /// raft refused a proposal (no leader); the proposer waits for a leader and retries,
    /// so clients do not see it.
    #[error("raft proposal dropped")]
    ProposalDropped,
    /// Another member could not be reached (forwarding to the leader): retried.
    #[error("{0}")]
    Unavailable(String),
    /// A request this member cannot serve (gRPC `Unimplemented`).
    #[error("{0}")]
    Unimplemented(String),
    /// A failure of this member (backend I/O, a bug): reported as gRPC `Unknown`/`Internal`.
    #[error("{0}")]
    Internal(String),
    /// Auth refused the request (etcd's messages and codes, from `chorus-auth`).
    #[error(transparent)]
    Auth(#[from] chorus_auth::AuthError),
}

impl EtcdError {
    pub fn code(&self) -> Code {
        use EtcdError::*;
        match self {
            EmptyKey
            | KeyNotFound
            | ValueProvided
            | LeaseProvided
            | TooManyOps
            | DuplicateKey
            | InvalidSortOption
            | WrongDowngradeVersionFormat
            | InvalidDowngradeTargetVersion
            | MemberBadUrls
            | RequestTooLarge => Code::InvalidArgument,
            Compacted | FutureRev | LeaseTtlTooLarge => Code::OutOfRange,
            NoSpace | TooManyRequests => Code::ResourceExhausted,
            LeaseNotFound | MemberNotFound => Code::NotFound,
            LeaseExist
            | MemberExist
            | PeerUrlExist
            | NotLeader
            | BadLeaderTransferee
            | MemberNotLearner
            | LearnerNotReady
            | TooManyLearners
            | NotEnoughStartedMembers
            | DowngradeInProcess
            | NoInflightDowngrade => Code::FailedPrecondition,
            NoLeader
            | LeaderChanged
            | Stopped
            | Timeout
            | TimeoutDueToLeaderFail
            | TimeoutWaitAppliedIndex
            | TimeoutLeaderTransfer
            | NotSupportedForLearner
            | Unhealthy
            | ClusterVersionUnavailable
            | Unavailable(_) => Code::Unavailable,
            Corrupt => Code::DataLoss,
            Internal(_) | ProposalDropped | UnknownMethod => Code::Unknown,
            Unimplemented(_) => Code::Unimplemented,
            Auth(e) => e.code(),
        }
    }
}

impl EtcdError {
    /// The error another member answered with (a forwarded request), recognised by its
    /// message; anything else is reported as unavailable with the peer's message.
    pub fn from_status(s: &Status) -> EtcdError {
        use EtcdError::*;
        let known = [
            MemberNotFound,
            MemberNotLearner,
            LearnerNotReady,
            NotLeader,
            NoLeader,
            Stopped,
            Timeout,
            TimeoutDueToLeaderFail,
            LeaderChanged,
            Compacted,
            FutureRev,
        ];
        known
            .into_iter()
            .find(|e| e.to_string() == s.message())
            .unwrap_or_else(|| Unavailable(s.message().to_string()))
    }
}

impl From<EtcdError> for Status {
    fn from(e: EtcdError) -> Status {
        Status::new(e.code(), e.to_string())
    }
}

impl From<MvccError> for EtcdError {
    fn from(e: MvccError) -> Self {
        match e {
            MvccError::Compacted => EtcdError::Compacted,
            MvccError::FutureRev => EtcdError::FutureRev,
            MvccError::Backend(b) => EtcdError::Internal(b.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_match_etcd() {
        let s = Status::from(EtcdError::Compacted);
        assert_eq!(s.code(), Code::OutOfRange);
        assert_eq!(
            s.message(),
            "etcdserver: mvcc: required revision has been compacted"
        );
        let s = Status::from(EtcdError::LeaseNotFound);
        assert_eq!(
            (s.code(), s.message()),
            (Code::NotFound, "etcdserver: requested lease not found")
        );
        let s = Status::from(EtcdError::DuplicateKey);
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(Status::from(EtcdError::Timeout).code(), Code::Unavailable);
    }
}

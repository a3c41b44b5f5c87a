//! Why a v2 auth operation was refused: etcd's `v2auth.Error`s, word for word (clients
//! print the message), each with etcd's HTTP status; and the store or raft failures
//! underneath, which etcd passes through.

use http::StatusCode;

use crate::v2::error::{ecode, V2Error};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("auth: User {0} does not exist.")]
    UserNotFound(String),
    /// The same, as etcd's delete says it (no full stop).
    #[error("auth: User {0} does not exist")]
    UserToDeleteNotFound(String),
    #[error("auth: User {0} already exists.")]
    UserExists(String),
    #[error("auth: Cannot create user {0} with an empty password")]
    EmptyPassword(String),
    /// chorus refuses what bcrypt would cut (etcd 3.4 hashes the first 72 bytes only).
    #[error("auth: Password of user {0} is longer than 72 bytes")]
    PasswordTooLong(String),
    #[error("auth: User not updated. Use grant/revoke/password to update the user.")]
    UserNotUpdated,
    #[error("auth: Granting duplicate role {role} for user {user}")]
    DuplicateRole { role: String, user: String },
    #[error("auth: Revoking ungranted role {role} for user {user}")]
    UngrantedRole { role: String, user: String },
    #[error("auth: Cannot delete root user while auth is enabled.")]
    RootUserInUse,
    #[error("auth: Role {0} does not exist.")]
    RoleNotFound(String),
    /// The same, as etcd's delete says it.
    #[error("auth: Role {0} doesn't exist.")]
    RoleToDeleteNotFound(String),
    #[error("auth: Role {0} already exists.")]
    RoleExists(String),
    #[error("auth: Cannot modify role {0}: is root role.")]
    RootRoleReadOnly(String),
    #[error("auth: Role not updated. Use grant/revoke to update the role.")]
    RoleNotUpdated,
    #[error("auth: Granting duplicate read permission {0}")]
    DuplicateRead(String),
    #[error("auth: Granting duplicate write permission {0}")]
    DuplicateWrite(String),
    #[error("auth: already enabled")]
    AlreadyEnabled,
    #[error("auth: already disabled")]
    AlreadyDisabled,
    #[error("auth: No root user available, please create one")]
    NoRootUser,
    /// A stored user, role or flag that is not etcd's JSON (etcd: its JSON error, a 500).
    #[error("auth: stored {0} is not valid JSON")]
    Corrupt(String),
    /// Hashing or checking a password failed (etcd: a 500).
    #[error("auth: {0}")]
    Internal(String),
    /// The store or raft refused or failed the request underneath.
    #[error(transparent)]
    Store(#[from] V2Error),
}

impl AuthError {
    /// etcd's status for the error (the store's own for [`AuthError::Store`]; 500 when raft
    /// failed, which etcd reports as "Internal Server Error").
    pub fn status(&self) -> StatusCode {
        use AuthError::*;
        match self {
            UserNotFound(_)
            | UserToDeleteNotFound(_)
            | RoleNotFound(_)
            | RoleToDeleteNotFound(_) => StatusCode::NOT_FOUND,
            UserExists(_)
            | DuplicateRole { .. }
            | UngrantedRole { .. }
            | RoleExists(_)
            | DuplicateRead(_)
            | DuplicateWrite(_)
            | AlreadyEnabled
            | AlreadyDisabled
            | NoRootUser => StatusCode::CONFLICT,
            EmptyPassword(_) | PasswordTooLong(_) | UserNotUpdated | RoleNotUpdated => {
                StatusCode::BAD_REQUEST
            }
            RootUserInUse | RootRoleReadOnly(_) => StatusCode::FORBIDDEN,
            Corrupt(_) | Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Store(e) if is_raft_failure(e) => StatusCode::INTERNAL_SERVER_ERROR,
            Store(e) => e.status(),
        }
    }
}

/// A proposal or quorum read that failed outside the store (timeout, no leader, stopped):
/// etcd's v2 auth answers those with a plain 500.
pub fn is_raft_failure(e: &V2Error) -> bool {
    matches!(e.code, ecode::RAFT_INTERNAL | ecode::LEADER_ELECT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_statuses_are_etcds() {
        let cases = [
            (
                AuthError::UserNotFound("a".into()),
                404,
                "auth: User a does not exist.",
            ),
            (
                AuthError::UserToDeleteNotFound("a".into()),
                404,
                "auth: User a does not exist",
            ),
            (
                AuthError::RoleToDeleteNotFound("r".into()),
                404,
                "auth: Role r doesn't exist.",
            ),
            (
                AuthError::DuplicateRole {
                    role: "r".into(),
                    user: "u".into(),
                },
                409,
                "auth: Granting duplicate role r for user u",
            ),
            (
                AuthError::RootUserInUse,
                403,
                "auth: Cannot delete root user while auth is enabled.",
            ),
            (
                AuthError::NoRootUser,
                409,
                "auth: No root user available, please create one",
            ),
            (
                AuthError::Store(V2Error::raft_internal("etcdserver: request timed out")),
                500,
                "Raft Internal Error (etcdserver: request timed out)",
            ),
            (
                AuthError::Store(V2Error::new(ecode::NOT_DIR, "/2/users", 9)),
                400,
                "Not a directory (/2/users)",
            ),
        ];
        for (e, status, msg) in cases {
            assert_eq!((e.status().as_u16(), e.to_string().as_str()), (status, msg));
        }
    }
}

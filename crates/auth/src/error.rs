//! Errors of the auth layer, with etcd's exact client-visible messages and gRPC codes
//! (etcd `api/v3rpc/rpctypes/error.go` and `server/etcdserver/api/v3rpc/util.go`).
//!
//! The `Display` text is what the client sees as the status message; [`AuthError::code`]
//! is the status code. The server converts an `AuthError` to a `tonic::Status` in one place:
//! `Status::new(e.code(), e.to_string())`. No variant carries a password or a token.

use tonic::Code;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("etcdserver: root user does not exist")]
    RootUserNotExist,
    #[error("etcdserver: root user does not have root role")]
    RootRoleNotExist,
    #[error("etcdserver: user name already exists")]
    UserAlreadyExist,
    #[error("etcdserver: user name is empty")]
    UserEmpty,
    #[error("etcdserver: user name not found")]
    UserNotFound,
    #[error("etcdserver: role name already exists")]
    RoleAlreadyExist,
    #[error("etcdserver: role name not found")]
    RoleNotFound,
    #[error("etcdserver: role name is empty")]
    RoleEmpty,
    #[error("etcdserver: authentication failed, invalid user ID or password")]
    AuthFailed,
    #[error("etcdserver: permission not given")]
    PermissionNotGiven,
    #[error("etcdserver: permission denied")]
    PermissionDenied,
    #[error("etcdserver: role is not granted to the user")]
    RoleNotGranted,
    #[error("etcdserver: permission is not granted to the role")]
    PermissionNotGranted,
    #[error("etcdserver: authentication is not enabled")]
    AuthNotEnabled,
    #[error("etcdserver: invalid auth token")]
    InvalidAuthToken,
    #[error("etcdserver: invalid auth management")]
    InvalidAuthMgmt,
    #[error("etcdserver: revision of auth store is old")]
    AuthOldRevision,
    /// A password was given for a user added with `--no-password`. etcd 3.5 has no gRPC
    /// mapping for it, so it reaches the client as `Unknown` with the auth package's text.
    #[error("auth: authentication failed, password was given for no password user")]
    NoPasswordUser,
    /// Authenticate on a member whose JWT provider has only a public key.
    #[error("auth: token signing attempted with verify-only key")]
    VerifyOnly,
    /// Signing a JWT failed (etcd passes the signer's error through as `Unknown`).
    #[error("auth: failed to sign a token: {0}")]
    TokenSign(String),
    /// The proposer did not hash the password (see `prepare_user_add`); never from a
    /// correct chorus member.
    #[error("auth: password not hashed by the proposing member")]
    PasswordNotHashed,
    /// Go's bcrypt refuses passwords over 72 bytes (etcd passes its error through).
    #[error("bcrypt: password length exceeds 72 bytes")]
    PasswordTooLong,
    /// bcrypt refused to hash (only for costs outside 4..=31, which configuration rules out).
    #[error("auth: cannot hash password: {0}")]
    Hash(String),
    /// The backend failed or holds a record that does not decode.
    #[error("auth: {0}")]
    Backend(String),
}

impl AuthError {
    /// The gRPC status code etcd answers this error with.
    pub fn code(&self) -> Code {
        use AuthError::*;
        match self {
            RootUserNotExist | RootRoleNotExist | UserAlreadyExist | UserNotFound
            | RoleAlreadyExist | RoleNotFound | RoleNotGranted | PermissionNotGranted
            | AuthNotEnabled => Code::FailedPrecondition,
            UserEmpty | RoleEmpty | AuthFailed | PermissionNotGiven | InvalidAuthMgmt
            | AuthOldRevision => Code::InvalidArgument,
            PermissionDenied => Code::PermissionDenied,
            InvalidAuthToken => Code::Unauthenticated,
            NoPasswordUser | VerifyOnly | TokenSign(_) | PasswordTooLong | Hash(_) => Code::Unknown,
            PasswordNotHashed | Backend(_) => Code::Internal,
        }
    }
}

impl From<chorus_storage::backend::BackendError> for AuthError {
    fn from(e: chorus_storage::backend::BackendError) -> Self {
        AuthError::Backend(e.to_string())
    }
}

macro_rules! backend_error_from {
    ($($t:ty),*) => {$(
        impl From<$t> for AuthError {
            fn from(e: $t) -> Self {
                AuthError::Backend(format!("backend: {e}"))
            }
        }
    )*};
}
backend_error_from!(
    redb::TableError,
    redb::StorageError,
    redb::TransactionError,
    redb::CommitError
);

/// Errors of `--auth-token` and its key files, with etcd's texts (etcd `server/auth`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthOptionsError {
    /// Malformed option list, unknown token type, a JWT option that does not parse
    /// (`ttl`, unreadable key file). etcd logs the detail and returns this text.
    #[error("auth: invalid auth options")]
    InvalidAuthOpts { detail: String },
    #[error("auth: invalid auth signature method")]
    InvalidAuthMethod,
    #[error("auth: missing key data")]
    MissingKey,
    #[error("auth: public and private keys don't match")]
    KeyMismatch,
    /// A key file that is not a PEM key of the sign method's family.
    #[error("auth: invalid key: {0}")]
    InvalidKey(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every client-visible message and code, as etcd 3.5's rpctypes has them.
    #[test]
    fn messages_and_codes_are_etcds() {
        use AuthError::*;
        let table: &[(AuthError, &str, Code)] = &[
            (
                RootUserNotExist,
                "etcdserver: root user does not exist",
                Code::FailedPrecondition,
            ),
            (
                RootRoleNotExist,
                "etcdserver: root user does not have root role",
                Code::FailedPrecondition,
            ),
            (
                UserAlreadyExist,
                "etcdserver: user name already exists",
                Code::FailedPrecondition,
            ),
            (
                UserEmpty,
                "etcdserver: user name is empty",
                Code::InvalidArgument,
            ),
            (
                UserNotFound,
                "etcdserver: user name not found",
                Code::FailedPrecondition,
            ),
            (
                RoleAlreadyExist,
                "etcdserver: role name already exists",
                Code::FailedPrecondition,
            ),
            (
                RoleNotFound,
                "etcdserver: role name not found",
                Code::FailedPrecondition,
            ),
            (
                RoleEmpty,
                "etcdserver: role name is empty",
                Code::InvalidArgument,
            ),
            (
                AuthFailed,
                "etcdserver: authentication failed, invalid user ID or password",
                Code::InvalidArgument,
            ),
            (
                PermissionNotGiven,
                "etcdserver: permission not given",
                Code::InvalidArgument,
            ),
            (
                PermissionDenied,
                "etcdserver: permission denied",
                Code::PermissionDenied,
            ),
            (
                RoleNotGranted,
                "etcdserver: role is not granted to the user",
                Code::FailedPrecondition,
            ),
            (
                PermissionNotGranted,
                "etcdserver: permission is not granted to the role",
                Code::FailedPrecondition,
            ),
            (
                AuthNotEnabled,
                "etcdserver: authentication is not enabled",
                Code::FailedPrecondition,
            ),
            (
                InvalidAuthToken,
                "etcdserver: invalid auth token",
                Code::Unauthenticated,
            ),
            (
                InvalidAuthMgmt,
                "etcdserver: invalid auth management",
                Code::InvalidArgument,
            ),
            (
                AuthOldRevision,
                "etcdserver: revision of auth store is old",
                Code::InvalidArgument,
            ),
            (
                NoPasswordUser,
                "auth: authentication failed, password was given for no password user",
                Code::Unknown,
            ),
            (
                VerifyOnly,
                "auth: token signing attempted with verify-only key",
                Code::Unknown,
            ),
        ];
        for (e, msg, code) in table {
            assert_eq!(e.to_string(), *msg);
            assert_eq!(e.code(), *code, "{msg}");
        }
    }
}

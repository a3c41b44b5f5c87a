//! Request-side auth types the adapters fill in: where credentials come from, and the
//! responses whose header the member fills.

use chorus_api::etcdserverpb::*;

/// Where a request's credentials come from. (Its `Debug` never shows the token.)
#[derive(Clone, Copy, Default)]
pub struct Credentials<'a> {
    /// The `token` (or `authorization`) gRPC metadata, or the gateway's `Authorization`.
    pub token: Option<&'a str>,
    /// The verified client certificate's common name (never for gateway requests).
    pub common_name: Option<&'a str>,
}

impl std::fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("token", &self.token.map(|_| "<redacted>"))
            .field("common_name", &self.common_name)
            .finish()
    }
}

/// A response with a header the member fills.
pub trait HasHeader {
    fn header_mut(&mut self) -> &mut Option<ResponseHeader>;
}

macro_rules! has_header {
    ($($t:ty),* $(,)?) => {
        $(impl HasHeader for $t {
            fn header_mut(&mut self) -> &mut Option<ResponseHeader> {
                &mut self.header
            }
        })*
    };
}

has_header!(
    AuthEnableResponse,
    AuthDisableResponse,
    AuthStatusResponse,
    AuthUserAddResponse,
    AuthUserDeleteResponse,
    AuthUserChangePasswordResponse,
    AuthUserGrantRoleResponse,
    AuthUserGetResponse,
    AuthUserRevokeRoleResponse,
    AuthUserListResponse,
    AuthRoleAddResponse,
    AuthRoleGrantPermissionResponse,
    AuthRoleGetResponse,
    AuthRoleRevokePermissionResponse,
    AuthRoleDeleteResponse,
    AuthRoleListResponse,
);

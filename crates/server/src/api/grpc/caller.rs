//! Who a gRPC request is from: the `token` metadata (or `authorization`, as grpc-gateway
//! forwards it), else the client certificate's common name the connection was verified
//! with (see `member/auth.rs` for the rules).

use chorus_auth::AuthInfo;
use tonic::{Request, Status};

use crate::member::{Credentials, Member};
use crate::net::ClientIdentity;

/// The credentials a request carries.
pub fn credentials<T>(req: &Request<T>) -> Credentials<'_> {
    let md = req.metadata();
    let token = md
        .get("token")
        .or_else(|| md.get("authorization"))
        .and_then(|v| v.to_str().ok());
    let common_name = req.extensions().get::<ClientIdentity>().map(|c| &*c.0);
    Credentials { token, common_name }
}

/// The requester, or etcd's error for a bad token.
pub async fn who<T>(member: &Member, req: &Request<T>) -> Result<Option<AuthInfo>, Status> {
    Ok(member.caller(credentials(req)).await?)
}

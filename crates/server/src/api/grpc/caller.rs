//! Who a gRPC request is from: the `token` metadata (or `authorization`, as grpc-gateway
//! forwards it), else the client certificate's common name the connection was verified
//! with (see `member/auth.rs` for the rules).

use chorus_auth::AuthInfo;
use http::HeaderName;
use tonic::{Request, Status};

use crate::member::{Credentials, Member};
use crate::net::ClientIdentity;

/// The credentials a request carries.
pub fn credentials<T>(req: &Request<T>) -> Credentials<'_> {
    // Looked up by prebuilt names: a `&str` key is parsed again on every request.
    const TOKEN: HeaderName = HeaderName::from_static("token");
    let headers: &http::HeaderMap = req.metadata().as_ref();
    let token = headers
        .get(TOKEN)
        .or_else(|| headers.get(http::header::AUTHORIZATION))
        .and_then(|v| v.to_str().ok());
    let common_name = req.extensions().get::<ClientIdentity>().map(|c| &*c.0);
    Credentials { token, common_name }
}

/// The requester, or etcd's error for a bad token.
pub async fn who<T>(member: &Member, req: &Request<T>) -> Result<Option<AuthInfo>, Status> {
    Ok(member.caller(credentials(req)).await?)
}

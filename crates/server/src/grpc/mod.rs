//! The v3 gRPC services, one file per etcd service. Each handler validates, proposes or
//! reads, and shapes the response; the logic lives in `apply` and `storage`.

pub mod cluster;
pub mod election;
pub mod kv;
pub mod lease;
pub mod lock;
pub mod maintenance;
pub mod watch;

use std::sync::Arc;

use tonic::service::Routes;

use crate::server::Server;

/// The client-port gRPC services.
pub fn routes(server: &Arc<Server>) -> Routes {
    let max = server.limits.max_request_bytes + GRPC_OVERHEAD_BYTES;
    Routes::new(
        kv::service(server.clone())
            .max_decoding_message_size(max)
            .max_encoding_message_size(usize::MAX),
    )
    .add_service(
        maintenance::service(server.clone())
            .max_decoding_message_size(max)
            .max_encoding_message_size(usize::MAX),
    )
    .add_service(
        lease::service(server.clone())
            .max_decoding_message_size(max)
            .max_encoding_message_size(usize::MAX),
    )
    .add_service(
        watch::service(server.clone())
            .max_decoding_message_size(max)
            .max_encoding_message_size(usize::MAX),
    )
    .add_service(
        lock::service(server.clone())
            .max_decoding_message_size(max)
            .max_encoding_message_size(usize::MAX),
    )
    .add_service(
        election::service(server.clone())
            .max_decoding_message_size(max)
            .max_encoding_message_size(usize::MAX),
    )
    .add_service(
        cluster::service(server.clone())
            .max_decoding_message_size(max)
            .max_encoding_message_size(usize::MAX),
    )
}

/// etcd accepts gRPC messages this much larger than `--max-request-bytes` (the request
/// itself is then checked against the limit when proposed).
pub const GRPC_OVERHEAD_BYTES: usize = 512 * 1024;

/// etcd clients mark streams that must not outlive the leader with `hasleader: true`
/// (clientv3's WithRequireLeader); such a call fails at once when there is no leader.
pub fn require_leader(
    server: &Server,
    md: &tonic::metadata::MetadataMap,
) -> Result<(), tonic::Status> {
    let required = md.get("hasleader").is_some_and(|v| v == "true");
    if required && server.status.leader() == raft::INVALID_ID {
        return Err(crate::error::EtcdError::NoLeader.into());
    }
    Ok(())
}

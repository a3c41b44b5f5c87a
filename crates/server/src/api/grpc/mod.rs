//! The v3 gRPC services, one file per etcd service. Each handler validates, proposes or
//! reads, and shapes the response; the logic lives in `apply` and `storage`.

pub mod auth;
pub mod caller;
pub mod cluster;
pub mod concurrency;
pub mod election;
pub mod health;
pub mod kv;
pub mod leader;
pub mod lease;
pub mod lock;
pub mod maintenance;
pub(crate) mod metrics;
mod stream_failures;
mod streamed;
pub mod watch;

use std::sync::Arc;

use tonic::service::Routes;

use crate::member::Member;
use health::HealthNotifier;

/// The client-port gRPC services of one gRPC server (etcd: one per client listener),
/// with its health service.
pub fn routes(member: &Arc<Member>, health: &HealthNotifier) -> Routes {
    let max = member.limits.max_request_bytes + GRPC_OVERHEAD_BYTES;
    Routes::new(kv::service(member.clone(), max))
        .add_service(
            maintenance::service(member.clone(), health.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(usize::MAX),
        )
        .add_service(
            lease::service(member.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(usize::MAX),
        )
        .add_service(
            auth::service(member.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(usize::MAX),
        )
        .add_service(
            watch::service(member.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(usize::MAX),
        )
        .add_service(
            lock::service(member.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(usize::MAX),
        )
        .add_service(
            election::service(member.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(usize::MAX),
        )
        .add_service(
            cluster::service(member.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(usize::MAX),
        )
        .add_service(health.service())
}

/// etcd accepts gRPC messages this much larger than `--max-request-bytes` (the request
/// itself is then checked against the limit when proposed).
pub const GRPC_OVERHEAD_BYTES: usize = 512 * 1024;

//! etcd's v3 wire protocol and chorus's own peer protocol, compiled from `proto/` at build
//! time. Package, message and field names and numbers are etcd's, because clients call
//! exactly those; no logic lives here.

/// `mvccpb`: KeyValue and Event.
pub mod mvccpb {
    tonic::include_proto!("mvccpb");
}

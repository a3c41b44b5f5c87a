//! etcd's v3 wire protocol and chorus's own peer protocol, compiled from `proto/` at build
//! time. Package, message and field names and numbers are etcd's, because clients call
//! exactly those; no logic lives here.
//!
//! Every package is a module at the crate root, because generated code refers to other
//! packages as `super::<package>::...`.
//!
//! Besides the protobuf encoding, every etcd message implements serde `Serialize` and
//! `Deserialize` in the JSON dialect of etcd's grpc-gateway (`/v3/*`): proto field names
//! (`create_revision`, `TTL`), 64-bit integers as strings, bytes as base64, enums by name,
//! default values omitted; on input, lowerCamelCase names are accepted too and unknown fields
//! are ignored.

pub mod codec;

/// `mvccpb`: KeyValue and Event.
pub mod mvccpb {
    tonic::include_proto!("mvccpb");
    include!(concat!(env!("OUT_DIR"), "/mvccpb.serde.rs"));
}

/// `authpb`: users, roles and permissions.
pub mod authpb {
    tonic::include_proto!("authpb");
    include!(concat!(env!("OUT_DIR"), "/authpb.serde.rs"));
}

/// `etcdserverpb`: the KV, Watch, Lease, Cluster, Maintenance and Auth services.
pub mod etcdserverpb {
    tonic::include_proto!("etcdserverpb");
    include!(concat!(env!("OUT_DIR"), "/etcdserverpb.serde.rs"));
}

/// `v3lockpb`: the Lock service.
pub mod v3lockpb {
    tonic::include_proto!("v3lockpb");
    include!(concat!(env!("OUT_DIR"), "/v3lockpb.serde.rs"));
}

/// `v3electionpb`: the Election service.
pub mod v3electionpb {
    tonic::include_proto!("v3electionpb");
    include!(concat!(env!("OUT_DIR"), "/v3electionpb.serde.rs"));
}

/// `internalpb`: chorus's replicated commands (raft entry data). Not a client API.
pub mod internalpb {
    tonic::include_proto!("internalpb");
}

/// `peerpb`: the member-to-member raft transport.
pub mod peerpb {
    tonic::include_proto!("peerpb");
}

mod redact;

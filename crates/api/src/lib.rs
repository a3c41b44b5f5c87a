//! etcd's v3 wire protocol and chorus's own peer protocol, compiled from `proto/` at build
//! time. Package, message and field names and numbers are etcd's, because clients call
//! exactly those; no logic lives here.
//!
//! Every package is a module at the crate root, because generated code refers to other
//! packages as `super::<package>::...`.

/// `mvccpb`: KeyValue and Event.
pub mod mvccpb {
    tonic::include_proto!("mvccpb");
}

/// `authpb`: users, roles and permissions.
pub mod authpb {
    tonic::include_proto!("authpb");
}

/// `etcdserverpb`: the KV, Watch, Lease, Cluster, Maintenance and Auth services.
pub mod etcdserverpb {
    tonic::include_proto!("etcdserverpb");
}

/// `v3lockpb`: the Lock service.
pub mod v3lockpb {
    tonic::include_proto!("v3lockpb");
}

/// `v3electionpb`: the Election service.
pub mod v3electionpb {
    tonic::include_proto!("v3electionpb");
}

/// `internalpb`: chorus's replicated commands (raft entry data). Not a client API.
pub mod internalpb {
    tonic::include_proto!("internalpb");
}

/// `peerpb`: the member-to-member raft transport.
pub mod peerpb {
    tonic::include_proto!("peerpb");
}

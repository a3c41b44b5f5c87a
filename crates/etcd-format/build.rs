//! Compiles this crate's `.proto` files (etcd's WAL, snap, raft, lease, membership and raft
//! entry messages) with protox (pure Rust, no system protoc) into prost messages. The client-facing
//! `etcdserverpb`, `mvccpb` and `authpb` messages they refer to are chorus-api's, read from
//! `../api/proto` for their descriptors and mapped with `extern_path`.

use std::path::PathBuf;

/// Our `.proto` files, relative to `proto/`.
const FILES: &[&str] = &[
    "raftpb/raft.proto",
    "walpb/record.proto",
    "snappb/snap.proto",
    "leasepb/lease.proto",
    "membershippb/membership.proto",
    "etcdserverpb_raft/raft_internal.proto",
];

fn main() {
    let ours = PathBuf::from("proto");
    let api = PathBuf::from("../api/proto");
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-changed=../api/proto");
    let files: Vec<PathBuf> = FILES.iter().map(|f| ours.join(f)).collect();
    let mut compiler = protox::Compiler::new([&ours, &api]).expect("protox include paths");
    compiler.include_imports(true);
    compiler.open_files(&files).expect("compile .proto files");
    let fds = compiler.file_descriptor_set();
    prost_build::Config::new()
        .extern_path(".etcdserverpb", "::chorus_api::etcdserverpb")
        .extern_path(".mvccpb", "::chorus_api::mvccpb")
        .extern_path(".authpb", "::chorus_api::authpb")
        .compile_fds(fds)
        .expect("generate Rust from .proto");
}

//! Compiles every `.proto` under `proto/` with protox (pure Rust, no system protoc) and
//! generates prost messages plus tonic clients and servers, and, for etcd's packages, serde
//! impls (pbjson) that speak the JSON of etcd's grpc-gateway (`/v3/*`).

use std::path::{Path, PathBuf};

use prost::Message as _;

/// Packages that get serde impls: the ones etcd's JSON gateway exposes.
const JSON_PACKAGES: &[&str] = &[
    ".mvccpb",
    ".authpb",
    ".etcdserverpb",
    ".v3lockpb",
    ".v3electionpb",
];

/// Messages whose `Debug` must not show their secrets.
const REDACTED: &[&str] = &[
    ".etcdserverpb.AuthenticateRequest",
    ".etcdserverpb.AuthenticateResponse",
    ".etcdserverpb.AuthUserAddRequest",
    ".etcdserverpb.AuthUserChangePasswordRequest",
    ".internalpb.InternalAuthenticateRequest",
];

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|x| x == "proto") {
            out.push(path);
        }
    }
}

fn main() {
    let root = PathBuf::from("proto");
    let mut files = Vec::new();
    collect(&root, &mut files);
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(&files, [&root]).expect("compile .proto files");
    let encoded_fds = fds.encode_to_vec();
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // prost's codec with 1 KiB buffers instead of 8 KiB (src/codec.rs).
        .codec_path("crate::codec::Codec")
        // Messages that carry a password or a token get a redacting Debug (src/redact.rs).
        .skip_debug(REDACTED)
        .compile_fds(fds)
        .expect("generate Rust from .proto");
    // The gateway (grpc-gateway v1 with its default JSONPb{OrigName: true}) writes proto field
    // names, 64-bit integers as strings, bytes as base64, enums by name, and no default values;
    // it reads either field-name spelling and skips unknown fields.
    pbjson_build::Builder::new()
        .register_descriptors(&encoded_fds)
        .expect("register descriptors with pbjson")
        .preserve_proto_field_names()
        .ignore_unknown_fields()
        .build(JSON_PACKAGES)
        .expect("generate serde impls");
}

//! Compiles every `.proto` under `proto/` with protox (pure Rust, no system protoc) and
//! generates prost messages plus tonic clients and servers.

use std::path::{Path, PathBuf};

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
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)
        .expect("generate Rust from .proto");
}

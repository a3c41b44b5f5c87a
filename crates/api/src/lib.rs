//! etcd's v3 wire protocol compiled to Rust (in progress).

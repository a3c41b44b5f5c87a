//! Every end-to-end test file of `tests/` in one test binary (`cargo test --test suite`):
//! the server, chorusctl and the harness are linked once instead of once per file, and
//! the test threads take tests from every file at once (most tests wait on child
//! processes, so files no longer run one after another). `cargo test --test suite
//! metrics::` runs one file's tests.

mod common;

mod auth;
mod chorusctl;
mod chorusctl_auth;
mod cluster;
mod cluster_version;
mod corruption;
mod dashboard;
mod discovery;
mod disk_faults;
mod distributed_tracing;
mod etcdctl;
mod force_new_cluster;
mod gateway;
mod harness;
mod kubeadm;
mod lease;
mod listeners;
mod logging;
mod maintenance;
mod membership;
mod metrics;
mod migration;
mod pprof;
mod prometheus;
mod proxy;
mod quota;
mod range_body;
mod range_stream;
mod recipes;
mod tls;
mod tuning_flags;
mod v2;
mod v2_auth;
mod v2_deprecation;
mod v2_proxy;
mod v2v3;
mod watch;

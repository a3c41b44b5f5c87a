//! Serves the v2 API over an in-process store (no raft) on 127.0.0.1, for comparing its
//! answers with etcd's by hand: `cargo run -p chorus-server --example v2_local -- 23791`.
//! The member and cluster IDs are those of `etcd --name n1` with peer URL
//! http://127.0.0.1:23800, and the store starts at index 3 like a fresh etcd's.

use std::sync::Arc;

use chorus_server::api::v2::local::LocalBackend;
use chorus_server::api::v2::{router, MemberInfo, V2Backend};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(23791);
    let backend = Arc::new(LocalBackend::new(
        0x48276a8f75b6a87,
        MemberInfo {
            id: 0x2e1259d415f2a040,
            name: "n1".into(),
            peer_urls: vec!["http://127.0.0.1:23800".into()],
            client_urls: vec![format!("http://127.0.0.1:{port}")],
        },
    ));
    backend.bootstrap_like_etcd();
    let expiry = backend.clone();
    // The leader's SYNC ticker, as etcd runs it.
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
        loop {
            tick.tick().await;
            if expiry.store().read().has_ttl_keys() {
                expiry.expire_now();
            }
        }
    });
    let app = router(backend, None).fallback(|| async {
        (
            axum::http::StatusCode::NOT_FOUND,
            [("content-type", "text/plain; charset=utf-8")],
            "404 page not found\n",
        )
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await
}

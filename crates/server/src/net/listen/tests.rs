use super::*;

fn urls(s: &str) -> Vec<Url> {
    chorus_config::parse_url_csv(s).unwrap()
}

#[test]
fn http_and_https_of_one_address_share_a_listener() {
    let got = group_client_urls(
        &urls("http://127.0.0.1:2379,https://127.0.0.1:2379,https://127.0.0.1:2381"),
        &[],
    )
    .unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].addr, "127.0.0.1:2379");
    assert!(got[0].secure && got[0].insecure);
    assert_eq!(got[0].traffic, Traffic::Both);
    assert!(got[1].secure && !got[1].insecure);
}

#[test]
fn split_lists_serve_grpc_and_http_apart() {
    let got = group_client_urls(
        &urls("http://127.0.0.1:2379"),
        &urls("http://127.0.0.1:2380,unix://localhost:1"),
    )
    .unwrap();
    let traffic: Vec<(&str, Traffic)> = got.iter().map(|c| (c.addr.as_str(), c.traffic)).collect();
    assert_eq!(
        traffic,
        [
            ("127.0.0.1:2379", Traffic::GrpcOnly),
            ("127.0.0.1:2380", Traffic::HttpOnly),
            ("localhost:1", Traffic::HttpOnly),
        ]
    );
    let e = group_client_urls(
        &urls("http://127.0.0.1:2379"),
        &urls("https://127.0.0.1:2379"),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot bind both --client-listen-urls and --client-listen-http-urls on the same url https://127.0.0.1:2379"
    );
}

#[test]
fn errors_read_as_go_writes_them() {
    let e = io::Error::from_raw_os_error(libc::EADDRINUSE);
    assert_eq!(go_errno(&e), "address already in use");
    let e = BindError::Listen {
        network: "tcp",
        addr: "127.0.0.1:2379".into(),
        op: "bind",
        source: io::Error::from_raw_os_error(libc::EADDRINUSE),
    };
    assert_eq!(
        e.to_string(),
        "listen tcp 127.0.0.1:2379: bind: address already in use"
    );
}

#[tokio::test]
async fn a_busy_port_fails_unless_both_reuse_it() {
    let url = |port: u16| Url::parse_etcd(&format!("http://127.0.0.1:{port}")).unwrap();
    let first = Listener::bind(&url(0), SocketOptions::default())
        .await
        .unwrap();
    let port = first.local_addr().unwrap().port();
    let e = Listener::bind(&url(port), SocketOptions::default())
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("listen tcp 127.0.0.1:{port}: bind: address already in use")
    );
    let reuse = SocketOptions {
        reuse_port: true,
        reuse_address: true,
    };
    let a = Listener::bind(&url(0), reuse).await.unwrap();
    let port = a.local_addr().unwrap().port();
    let b = Listener::bind(&url(port), reuse).await.unwrap();
    assert_eq!(b.local_addr().unwrap().port(), port);
}

#[tokio::test]
async fn a_unix_socket_is_a_file_named_by_host_and_port() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("localhost:2379");
    // A stale file from a killed member is replaced, as etcd does.
    std::fs::write(&path, b"stale").unwrap();
    let url = Url::parse_etcd(&format!("unix://{}", "localhost:2379")).unwrap();
    assert_eq!(unix_path(&url), "localhost:2379");
    let listener = bind_unix(path.to_str().unwrap()).unwrap();
    let client = tokio::spawn({
        let path = path.clone();
        async move { UnixStream::connect(path).await.unwrap() }
    });
    let (_stream, peer) = listener.accept().await.unwrap();
    assert_eq!(peer, "");
    drop(client.await.unwrap());
    drop(listener);
    assert!(!path.exists(), "the socket file outlived its listener");
}

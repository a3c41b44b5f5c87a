//! systemd's readiness protocol (`Type=notify`): datagrams like `READY=1` sent to the unix
//! socket named by `$NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace).
//! Without the variable this does nothing, as outside systemd.

use std::os::unix::net::UnixDatagram;

/// Sends one state line (`READY=1`, `STOPPING=1`, `STATUS=...`) to the service manager.
/// Returns whether a manager was told.
pub fn notify(state: &str) -> std::io::Result<bool> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let socket = UnixDatagram::unbound()?;
    let bytes = path.as_encoded_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        socket.send_to_addr(state.as_bytes(), &addr)?;
    } else {
        socket.send_to(state.as_bytes(), std::path::Path::new(&path))?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_to_the_socket_named_by_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let listener = UnixDatagram::bind(&path).unwrap();
        // The variable is process-wide; this is the only test in the crate that sets it.
        std::env::set_var("NOTIFY_SOCKET", &path);
        assert!(notify("READY=1").unwrap());
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        std::env::remove_var("NOTIFY_SOCKET");
        assert!(!notify("READY=1").unwrap());
    }
}

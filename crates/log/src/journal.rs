//! `--log-outputs=systemd/journal`: etcd's `journalWriter` over go-systemd's
//! `journal.Send`. Each zap JSON line goes to journald's native socket as one datagram:
//!
//! ```text
//! PRIORITY=6\n
//! MESSAGE\n <u64 little-endian length> <the JSON line, with its \n> \n
//! PACKAGE=server\n               the caller's directory
//! SYSLOG_IDENTIFIER=chorus\n     basename of argv[0]
//! ```
//!
//! (A value holding `\n` takes the length-prefixed form; the line always ends with one.)
//! A datagram too large for the socket goes as a file descriptor (`SCM_RIGHTS`) of an
//! unlinked file in `/dev/shm`; any other failure writes the line to stderr instead.

use std::io::Write as _;
use std::os::fd::AsRawFd as _;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

/// journald's native protocol socket.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// The journal could not be reached at start-up (etcd's message).
#[derive(Debug, thiserror::Error)]
#[error("can't find journal (dial unixgram {path}: connect: {})", go_errno(.source))]
pub struct JournalUnavailable {
    pub path: String,
    pub source: std::io::Error,
}

/// Go's text for an errno (`no such file or directory`), from the C library's.
pub(crate) fn go_errno(e: &std::io::Error) -> String {
    let Some(code) = e.raw_os_error() else {
        return e.to_string();
    };
    // SAFETY: strerror returns a pointer to a NUL-terminated static or thread-local string.
    let text = unsafe { std::ffi::CStr::from_ptr(libc::strerror(code)) }
        .to_string_lossy()
        .into_owned();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

/// A writer to journald.
#[derive(Debug)]
pub struct JournalSink {
    socket: UnixDatagram,
    path: PathBuf,
    identifier: String,
}

/// Appends one journal field (go-systemd's `appendVariable`).
pub fn append_field(out: &mut Vec<u8>, name: &str, value: &str) {
    if value.contains('\n') {
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
        out.extend_from_slice(value.as_bytes());
        out.push(b'\n');
    } else {
        out.extend_from_slice(name.as_bytes());
        out.push(b'=');
        out.extend_from_slice(value.as_bytes());
        out.push(b'\n');
    }
}

/// The datagram for one line.
pub fn datagram(priority: u8, line: &str, package: &str, identifier: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len() + 96);
    append_field(&mut out, "PRIORITY", &priority.to_string());
    append_field(&mut out, "MESSAGE", line);
    append_field(&mut out, "PACKAGE", package);
    append_field(&mut out, "SYSLOG_IDENTIFIER", identifier);
    out
}

impl JournalSink {
    /// Checks that `path` accepts datagrams (etcd's `DialJournal`) and opens a socket.
    pub fn connect(path: impl AsRef<Path>) -> Result<JournalSink, JournalUnavailable> {
        let path = path.as_ref();
        let unavailable = |source| JournalUnavailable {
            path: path.display().to_string(),
            source,
        };
        UnixDatagram::unbound()
            .and_then(|probe| probe.connect(path))
            .map_err(unavailable)?;
        let socket = UnixDatagram::unbound().map_err(unavailable)?;
        let identifier = std::env::args_os()
            .next()
            .map(|a| {
                let p = PathBuf::from(a);
                p.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        Ok(JournalSink {
            socket,
            path: path.to_path_buf(),
            identifier,
        })
    }

    /// Sends one line; stderr gets it if journald does not.
    pub fn write(&self, priority: u8, line: &str, package: &str) {
        let data = datagram(priority, line, package, &self.identifier);
        let sent = match self.socket.send_to(&data, &self.path) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMSGSIZE | libc::ENOBUFS)) => {
                self.send_as_file(&data)
            }
            other => other.map(drop),
        };
        if sent.is_err() {
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
    }

    /// The datagram in an unlinked file in `/dev/shm`, passed as a descriptor.
    fn send_as_file(&self, data: &[u8]) -> std::io::Result<()> {
        let name = format!(
            "/dev/shm/journal.{}.{:x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        );
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&name)?;
        std::fs::remove_file(&name)?;
        file.write_all(data)?;
        send_fd(&self.socket, &self.path, file.as_raw_fd())
    }
}

/// `sendmsg` of an empty payload with `fd` as `SCM_RIGHTS` to `path`.
fn send_fd(socket: &UnixDatagram, path: &Path, fd: i32) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt as _;
    // SAFETY: every structure is zeroed plain data, filled within its size; the pointers
    // handed to sendmsg point into locals that outlive the call.
    unsafe {
        let mut addr: libc::sockaddr_un = std::mem::zeroed();
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let bytes = path.as_os_str().as_bytes();
        if bytes.len() >= addr.sun_path.len() {
            return Err(std::io::Error::from_raw_os_error(libc::ENAMETOOLONG));
        }
        for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
            *dst = *src as libc::c_char;
        }
        let space = libc::CMSG_SPACE(std::mem::size_of::<i32>() as u32) as usize;
        let mut control = vec![0u8; space];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_name = (&mut addr as *mut libc::sockaddr_un).cast();
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<i32>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<i32>(), fd);
        if libc::sendmsg(socket.as_raw_fd(), &msg, 0) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_socket_fails_with_etcds_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("socket");
        let err = JournalSink::connect(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "can't find journal (dial unixgram {}: connect: no such file or directory)",
                path.display()
            )
        );
    }

    #[test]
    fn fields_without_newlines_are_name_equals_value() {
        let mut out = Vec::new();
        append_field(&mut out, "PRIORITY", "6");
        assert_eq!(out, b"PRIORITY=6\n");
    }

    #[test]
    fn each_line_is_one_native_protocol_datagram() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("socket");
        let journald = UnixDatagram::bind(&path).unwrap();
        let sink = JournalSink::connect(&path).unwrap();
        let line = "{\"level\":\"warn\",\"msg\":\"x\"}\n";
        sink.write(4, line, "server");
        let mut buf = vec![0u8; 4096];
        let n = journald.recv(&mut buf).unwrap();
        let mut want = b"PRIORITY=4\nMESSAGE\n".to_vec();
        want.extend_from_slice(&(line.len() as u64).to_le_bytes());
        want.extend_from_slice(line.as_bytes());
        want.extend_from_slice(b"\nPACKAGE=server\nSYSLOG_IDENTIFIER=");
        want.extend_from_slice(sink.identifier.as_bytes());
        want.push(b'\n');
        assert_eq!(&buf[..n], &want[..]);
        assert!(!sink.identifier.is_empty() && !sink.identifier.contains('/'));
    }

    #[test]
    fn an_oversized_line_goes_as_a_descriptor() {
        use std::os::unix::net::UnixDatagram as D;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("socket");
        let journald = D::bind(&path).unwrap();
        let sink = JournalSink::connect(&path).unwrap();
        let line = format!("{}\n", "x".repeat(1 << 20));
        sink.write(6, &line, "server");
        let fd = recv_fd(&journald);
        // SAFETY: the descriptor was just received and is owned here.
        let mut file = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        let mut data = Vec::new();
        std::io::Seek::rewind(&mut file).unwrap();
        std::io::Read::read_to_end(&mut file, &mut data).unwrap();
        assert_eq!(data, datagram(6, &line, "server", &sink.identifier));
    }

    fn recv_fd(socket: &UnixDatagram) -> i32 {
        // SAFETY: buffers are locals sized for one descriptor.
        unsafe {
            let space = libc::CMSG_SPACE(std::mem::size_of::<i32>() as u32) as usize;
            let mut control = vec![0u8; space];
            let mut byte = [0u8; 1];
            let mut iov = libc::iovec {
                iov_base: byte.as_mut_ptr().cast(),
                iov_len: 1,
            };
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = space as _;
            assert!(libc::recvmsg(socket.as_raw_fd(), &mut msg, 0) >= 0);
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            assert!(!cmsg.is_null());
            assert_eq!((*cmsg).cmsg_type, libc::SCM_RIGHTS);
            std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<i32>())
        }
    }
}

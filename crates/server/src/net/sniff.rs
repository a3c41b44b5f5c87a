//! Telling TLS from plain text on one port (etcd's `cmux`, when `http://` and `https://`
//! client URLs share a host:port): the first byte of a TLS connection is a handshake
//! record (22); HTTP/1 request lines and the HTTP/2 preface start with a letter.
//! The bytes read to decide are replayed in front of the stream.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// The TLS record type of a handshake message (a ClientHello comes first).
const TLS_HANDSHAKE: u8 = 0x16;

/// Reads the first byte of `io`; returns whether it starts a TLS handshake and the
/// stream with that byte put back. `None` when the peer closed without a byte.
pub async fn sniff_tls<I>(mut io: I) -> io::Result<Option<(bool, Prefixed<I>)>>
where
    I: AsyncRead + Unpin,
{
    let mut first = [0u8; 1];
    if io.read(&mut first).await? == 0 {
        return Ok(None);
    }
    let tls = first[0] == TLS_HANDSHAKE;
    Ok(Some((tls, Prefixed::new(first.to_vec(), io))))
}

/// A stream with bytes already read from it put back in front.
#[derive(Debug)]
pub struct Prefixed<I> {
    prefix: Vec<u8>,
    pos: usize,
    inner: I,
}

impl<I> Prefixed<I> {
    pub fn new(prefix: Vec<u8>, inner: I) -> Self {
        Prefixed {
            prefix,
            pos: 0,
            inner,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Prefixed<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pos < this.prefix.len() {
            let rest = &this.prefix[this.pos..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.pos += n;
            if this.pos == this.prefix.len() {
                this.prefix = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Prefixed<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_client_hello_is_tls_and_its_bytes_are_replayed() {
        let (mut client, server) = tokio::io::duplex(64);
        client.write_all(&[0x16, 3, 1, 0, 5]).await.unwrap();
        let (tls, mut s) = sniff_tls(server).await.unwrap().unwrap();
        assert!(tls);
        let mut got = [0u8; 5];
        s.read_exact(&mut got).await.unwrap();
        assert_eq!(got, [0x16, 3, 1, 0, 5]);
    }

    #[tokio::test]
    async fn http1_and_the_http2_preface_are_plain() {
        for first in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        ] {
            let (mut client, server) = tokio::io::duplex(64);
            client.write_all(first).await.unwrap();
            drop(client);
            let (tls, mut s) = sniff_tls(server).await.unwrap().unwrap();
            assert!(!tls);
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, first);
        }
    }

    #[tokio::test]
    async fn a_peer_that_closes_at_once_is_nothing() {
        let (client, server) = tokio::io::duplex(64);
        drop(client);
        assert!(sniff_tls(server).await.unwrap().is_none());
    }
}

//! The HTTP/2 `:authority` fix under the client listener (crates/server/src/net/authority.rs)
//! and the HPACK subset it decodes client header blocks with (net/hpack.rs). Both files
//! depend on std, tokio's I/O traits and `http` only, so they are compiled here as they are
//! (`#[path]`) and the fuzz build does not build the server.
//!
//! Input: a selector byte, then the case's bytes.
//! * decoder: a table size, then header blocks of one connection (u16 BE length each).
//!   Contract: no panic; the fields of every decoded block, re-encoded as the literals the
//!   fix sends h2 (`encode_literal`), decode to the same fields with a decoder that has
//!   no dynamic table.
//! * stream: the bytes a client sends, read through `AuthorityFix` in reads of a size
//!   from the input. Contract: no panic; what h2 reads does not depend on how the client's
//!   bytes were split into reads (all at once gives the same bytes); a connection that
//!   does not start with the HTTP/2 preface passes through unchanged; no header block h2
//!   reads is larger than the input or `MAX_DECODED_LIST` (re-encoding does not expand
//!   references to the dynamic table without bound).
#![no_main]

#[allow(dead_code)]
#[rustfmt::skip] // formatted with the server, whose file it is
#[path = "../../crates/server/src/net/hpack.rs"]
mod hpack;

#[allow(dead_code)]
#[rustfmt::skip] // formatted with the server, whose file it is
#[path = "../../crates/server/src/net/authority.rs"]
mod authority;

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncRead, ReadBuf};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    if which & 1 == 0 {
        decoder(rest);
    } else {
        stream(rest);
    }
});

type Fields = Vec<(Vec<u8>, Vec<u8>)>;

fn decoder(data: &[u8]) {
    let Some((&size, mut rest)) = data.split_first() else {
        return;
    };
    let mut connection = hpack::Decoder::new(usize::from(size) * 64);
    while let Some((block, tail)) = next_block(rest) {
        rest = tail;
        let mut fields = Fields::new();
        let decoded = connection.decode(block, |n, v| fields.push((n.to_vec(), v.to_vec())));
        if decoded.is_err() {
            return;
        }
        let mut literals = Vec::new();
        for (name, value) in &fields {
            hpack::encode_literal(name, value, &mut literals);
        }
        let mut again = Fields::new();
        hpack::Decoder::new(0)
            .decode(&literals, |n, v| again.push((n.to_vec(), v.to_vec())))
            .expect("re-encoded literals decode");
        assert_eq!(again, fields, "literal re-encoding round trip");
    }
}

/// A u16 BE length and that many bytes (fewer at the end of the input).
fn next_block(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = data.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_be_bytes(*len)).min(rest.len());
    Some(rest.split_at(len))
}

fn stream(data: &[u8]) {
    let Some((&[read_size, table], input)) = data.split_first_chunk::<2>() else {
        return;
    };
    let table = usize::from(table) * 64;
    // Reads of 1 to 256 bytes for the split run; the whole input at once for the other.
    let step = usize::from(read_size) + 1;
    let split = run(
        input.chunks(step).map(<[u8]>::to_vec).collect(),
        table,
        step,
    );
    let whole = run(vec![input.to_vec()], table, input.len().max(1) + 1);
    assert_eq!(
        split, whole,
        "the output depends on how the input was split"
    );
    if !input.starts_with(PREFACE) {
        assert_eq!(
            whole, input,
            "a connection that is not HTTP/2 passes through"
        );
    }
    let bound = input.len().max(authority::MAX_DECODED_LIST + 5);
    let largest = largest_header_block(&whole);
    assert!(largest <= bound, "a header block of {largest} bytes");
}

/// The most payload (HEADERS and its CONTINUATIONs) of any header block in `out`.
fn largest_header_block(out: &[u8]) -> usize {
    let Some(mut rest) = out.strip_prefix(PREFACE) else {
        return 0;
    };
    let (mut largest, mut block) = (0, 0);
    while let Some((head, tail)) = rest.split_first_chunk::<9>() {
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let len = len.min(tail.len());
        if matches!(head[3], 0x1 | 0x9) {
            block += len;
            largest = largest.max(block);
            if head[4] & 0x4 != 0 {
                block = 0;
            }
        }
        rest = &tail[len..];
    }
    largest
}

/// What h2 reads through `AuthorityFix` from a client that sends `chunks`, one per read,
/// with h2 reading `read_size` bytes at a time.
fn run(chunks: Vec<Vec<u8>>, table: usize, read_size: usize) -> Vec<u8> {
    let mut fix = authority::AuthorityFix::with_header_table_size(Chunks(chunks.into()), table);
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::new();
    let mut buf = vec![0u8; read_size];
    loop {
        let mut read = ReadBuf::new(&mut buf);
        match Pin::new(&mut fix).poll_read(&mut cx, &mut read) {
            Poll::Ready(Ok(())) if read.filled().is_empty() => return out,
            Poll::Ready(Ok(())) => out.extend_from_slice(read.filled()),
            Poll::Ready(Err(e)) => panic!("in-memory read failed: {e}"),
            Poll::Pending => panic!("pending on an in-memory reader"),
        }
    }
}

/// A client whose reads return one chunk each, then end of stream.
struct Chunks(VecDeque<Vec<u8>>);

impl AsyncRead for Chunks {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(mut chunk) = self.0.pop_front() {
            let n = chunk.len().min(buf.remaining());
            buf.put_slice(&chunk[..n]);
            if n < chunk.len() {
                self.0.push_front(chunk.split_off(n));
            }
        }
        Poll::Ready(Ok(()))
    }
}

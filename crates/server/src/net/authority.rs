//! Accepts etcdctl's URL-shaped HTTP/2 `:authority` by rewriting it before h2 sees it.
//!
//! etcdctl 3.4's `endpoint health|status|hashkv` dial each endpoint as the gRPC target
//! `passthrough:///http://127.0.0.1:2379`, and grpc-go then sends the target's remainder,
//! `http://127.0.0.1:2379`, as `:authority`. Go's server takes any string there; h2 parses
//! it as a URI authority, fails, and resets the stream with PROTOCOL_ERROR. h2 has no hook
//! for this, so the fix sits under it, on the connection's read side:
//!
//! ```text
//!  client ──bytes──▶ AuthorityFix ──bytes──▶ hyper/h2 ──▶ tonic, axum
//!                     │ 1. not the HTTP/2 preface (curl, /health): pass through
//!                     │ 2. HTTP/2: forward every frame, hold the first header block,
//!                     │    HPACK-decode it (our decoder mirrors the client's table)
//!                     │    ├ :authority fine ──▶ release it unchanged; pass through
//!                     │    └ :authority is a URL ──▶ transcode from here on:
//!                     │        each header block: decode (mirror) ──▶ `host:port`
//!                     │        ──▶ re-encode as literals without indexing ──▶ HEADERS
//!                     ▼ writes: straight through, always
//! ```
//!
//! Re-encoding is what makes a rewrite safe: HPACK is stateful, and a client's later blocks
//! may refer to entries that the rewritten one added. Literal fields without indexing never
//! touch h2's dynamic table, so h2's table stays empty and consistent while ours follows
//! the client's; frames other than HEADERS/CONTINUATION are forwarded byte for byte. A
//! connection whose first block is fine (every client but this one) costs one decode and
//! then nothing: the wrapper drops its state and reads go straight to the socket.
//!
//! Anything malformed (bad HPACK, an interleaved frame inside a header block, a block
//! over [`MAX_HELD`], a decoded list over [`MAX_DECODED_LIST`]) ends the fixing: the bytes
//! held so far and everything after go to h2 unchanged, so h2 reports the protocol error
//! itself.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::hpack;

/// The HTTP/2 connection preface (RFC 7540 §3.5).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADER_LEN: usize = 9;

const TYPE_HEADERS: u8 = 0x1;
const TYPE_CONTINUATION: u8 = 0x9;
const FLAG_END_STREAM: u8 = 0x1;
const FLAG_END_HEADERS: u8 = 0x4;
const FLAG_PADDED: u8 = 0x8;
const FLAG_PRIORITY: u8 = 0x20;

/// The largest frame payload we emit: SETTINGS_MAX_FRAME_SIZE's initial value, which every
/// HTTP/2 endpoint accepts (hyper keeps it).
const MAX_FRAME_PAYLOAD: usize = 16_384;

/// The most a header block (its frames as received) may hold before we give up fixing.
pub(crate) const MAX_HELD: usize = 1 << 20;

/// The largest decoded header list (RFC 7540 §6.5.2 size: names, values and 32 octets a
/// field) the fix re-encodes: four times the SETTINGS_MAX_HEADER_LIST_SIZE hyper
/// advertises (16 KiB), whose h2 refuses bigger lists anyway. Without a bound, a block of
/// one-octet references to a 4 KiB dynamic entry would expand 4,000-fold.
pub(crate) const MAX_DECODED_LIST: usize = 64 << 10;

/// HPACK's SETTINGS_HEADER_TABLE_SIZE as hyper's server leaves it (the protocol default):
/// the largest dynamic table a client's encoder may use.
pub(crate) const DEFAULT_HEADER_TABLE_SIZE: usize = 4096;

/// How much to read from the socket at once while fixing.
const READ_CHUNK: usize = 16 * 1024;

/// A client connection whose reads rewrite a URL-shaped `:authority` (see the module doc).
/// Writes pass straight through.
pub struct AuthorityFix<S> {
    inner: S,
    /// `None` once the connection is known not to need fixing: reads go to `inner`.
    fix: Option<Box<Fixer>>,
}

impl<S> AuthorityFix<S> {
    pub fn new(inner: S) -> Self {
        Self::with_header_table_size(inner, DEFAULT_HEADER_TABLE_SIZE)
    }

    /// For a server that advertises a SETTINGS_HEADER_TABLE_SIZE other than 4096.
    pub fn with_header_table_size(inner: S, header_table_size: usize) -> Self {
        AuthorityFix {
            inner,
            fix: Some(Box::new(Fixer::new(header_table_size))),
        }
    }

    /// Whether reads still go through the fixer (false: plain pass-through).
    #[cfg(test)]
    fn is_fixing(&self) -> bool {
        self.fix.is_some()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for AuthorityFix<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(fix) = this.fix.as_mut() else {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        };
        loop {
            if fix.has_output() {
                fix.drain_into(buf);
                if fix.is_done() {
                    this.fix = None;
                }
                return Poll::Ready(Ok(()));
            }
            if fix.is_done() {
                this.fix = None;
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            if buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            // On the stack: the fixer copies what it is fed, and an idle connection then
            // holds no read buffer (a heap one cost each idle connection 16 KiB).
            let mut chunk = [std::mem::MaybeUninit::<u8>::uninit(); READ_CHUNK];
            let mut read = ReadBuf::uninit(&mut chunk);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            match read.filled() {
                [] => fix.finish(),
                input => fix.feed(input),
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AuthorityFix<S> {
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

/// Where the byte stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Matching the preface; this many bytes matched so far (all forwarded).
    Preface(usize),
    /// Reading a frame header into `Fixer::head`.
    FrameHeader,
    /// Forwarding this many more payload bytes of a frame that is not part of a block.
    Forward(usize),
    /// Holding this many more payload bytes of a HEADERS or CONTINUATION frame.
    Hold(usize),
    /// Done fixing: everything passes through.
    PassThrough,
}

/// A header block being held: its frames exactly as received, and what re-encoding needs.
#[derive(Default)]
struct Block {
    stream_id: u32,
    end_stream: bool,
    /// The HEADERS frame's priority fields (stream dependency and weight), if flagged.
    priority: Option<[u8; 5]>,
    /// The frames as received, headers included.
    raw: Vec<u8>,
    /// Where the frame being held starts in `raw`.
    frame_start: usize,
    /// The header block fragments, concatenated.
    fragment: Vec<u8>,
}

/// The sans-I/O part: bytes in (`feed`, `finish`), bytes for h2 out (`out`).
struct Fixer {
    state: State,
    /// True once the first block had a URL authority: every block is re-encoded.
    transcoding: bool,
    head: [u8; FRAME_HEADER_LEN],
    head_len: usize,
    /// A header block in progress, if any.
    block: Option<Block>,
    decoder: hpack::Decoder,
    /// Scratch for re-encoding one block.
    encoded: Vec<u8>,
    /// Bytes ready for h2, from `out_pos` on.
    out: Vec<u8>,
    out_pos: usize,
}

impl Fixer {
    fn new(header_table_size: usize) -> Fixer {
        Fixer {
            state: State::Preface(0),
            transcoding: false,
            head: [0; FRAME_HEADER_LEN],
            head_len: 0,
            block: None,
            decoder: hpack::Decoder::new(header_table_size),
            encoded: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
        }
    }

    fn has_output(&self) -> bool {
        self.out_pos < self.out.len()
    }

    /// Passing through with nothing left to deliver: the fixer can be dropped.
    fn is_done(&self) -> bool {
        self.state == State::PassThrough && !self.has_output()
    }

    fn drain_into(&mut self, buf: &mut ReadBuf<'_>) {
        let n = buf.remaining().min(self.out.len() - self.out_pos);
        buf.put_slice(&self.out[self.out_pos..self.out_pos + n]);
        self.out_pos += n;
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        }
    }

    /// Takes bytes read from the client.
    fn feed(&mut self, mut input: &[u8]) {
        while !input.is_empty() {
            match self.state {
                State::PassThrough => {
                    self.out.extend_from_slice(input);
                    return;
                }
                State::Preface(matched) => {
                    let n = input.len().min(PREFACE.len() - matched);
                    if input[..n] != PREFACE[matched..matched + n] {
                        self.state = State::PassThrough;
                        continue;
                    }
                    self.out.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    self.state = if matched + n == PREFACE.len() {
                        State::FrameHeader
                    } else {
                        State::Preface(matched + n)
                    };
                }
                State::FrameHeader => {
                    let n = input.len().min(FRAME_HEADER_LEN - self.head_len);
                    self.head[self.head_len..self.head_len + n].copy_from_slice(&input[..n]);
                    self.head_len += n;
                    input = &input[n..];
                    if self.head_len == FRAME_HEADER_LEN {
                        self.head_len = 0;
                        self.on_frame_header();
                    }
                }
                State::Forward(remaining) => {
                    let n = input.len().min(remaining);
                    self.out.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    self.state = if n == remaining {
                        State::FrameHeader
                    } else {
                        State::Forward(remaining - n)
                    };
                }
                State::Hold(remaining) => {
                    let n = input.len().min(remaining);
                    if let Some(block) = self.block.as_mut() {
                        block.raw.extend_from_slice(&input[..n]);
                    }
                    input = &input[n..];
                    if n == remaining {
                        self.on_held_frame();
                    } else {
                        self.state = State::Hold(remaining - n);
                    }
                }
            }
        }
    }

    /// The client closed its side: whatever is held goes to h2 as it came.
    fn finish(&mut self) {
        self.give_up();
    }

    /// Stops fixing: releases the held bytes unchanged and passes everything through.
    fn give_up(&mut self) {
        if let Some(block) = self.block.take() {
            self.out.extend_from_slice(&block.raw);
        }
        self.out.extend_from_slice(&self.head[..self.head_len]);
        self.head_len = 0;
        self.state = State::PassThrough;
    }

    fn on_frame_header(&mut self) {
        let head = self.head;
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let (kind, flags) = (head[3], head[4]);
        let stream_id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let held = self.block.as_ref().map_or(0, |b| b.raw.len());
        match (&mut self.block, kind) {
            (None, TYPE_HEADERS) if len <= MAX_HELD => {
                self.block = Some(Block {
                    stream_id,
                    end_stream: flags & FLAG_END_STREAM != 0,
                    ..Block::default()
                });
            }
            (Some(block), TYPE_CONTINUATION)
                if block.stream_id == stream_id && held + FRAME_HEADER_LEN + len <= MAX_HELD =>
            {
                block.frame_start = block.raw.len();
            }
            (None, TYPE_CONTINUATION) | (None, TYPE_HEADERS) | (Some(_), _) => {
                // A stray CONTINUATION, a frame inside a block, or too much to hold: a
                // protocol error (or abuse) that h2 should see and report as it is.
                self.head_len = FRAME_HEADER_LEN;
                self.give_up();
                return;
            }
            (None, _) => {
                self.out.extend_from_slice(&head);
                self.state = if len == 0 {
                    State::FrameHeader
                } else {
                    State::Forward(len)
                };
                return;
            }
        }
        let block = self.block.as_mut().expect("a block is held");
        block.raw.extend_from_slice(&head);
        self.state = State::Hold(len);
        if len == 0 {
            self.on_held_frame();
        }
    }

    /// A HEADERS or CONTINUATION frame is complete in `block.raw`.
    fn on_held_frame(&mut self) {
        let Some(block) = self.block.as_mut() else {
            self.give_up();
            return;
        };
        let frame = &block.raw[block.frame_start..];
        let (kind, flags) = (frame[3], frame[4]);
        let mut payload = &frame[FRAME_HEADER_LEN..];
        if kind == TYPE_HEADERS {
            let mut pad = 0;
            if flags & FLAG_PADDED != 0 {
                let Some((&n, rest)) = payload.split_first() else {
                    return self.give_up();
                };
                pad = usize::from(n);
                payload = rest;
            }
            if flags & FLAG_PRIORITY != 0 {
                let Some((priority, rest)) = payload.split_first_chunk::<5>() else {
                    return self.give_up();
                };
                block.priority = Some(*priority);
                payload = rest;
            }
            let Some(len) = payload.len().checked_sub(pad) else {
                return self.give_up();
            };
            payload = &payload[..len];
        }
        block.fragment.extend_from_slice(payload);
        if flags & FLAG_END_HEADERS != 0 {
            self.on_block();
        } else {
            self.state = State::FrameHeader;
        }
    }

    /// A whole header block is held: decode it and decide.
    fn on_block(&mut self) {
        let Some(block) = self.block.take() else {
            return;
        };
        self.encoded.clear();
        let mut rewrote = false;
        let mut list_size = 0usize;
        let encoded = &mut self.encoded;
        let decoded = self.decoder.decode(&block.fragment, |name, value| {
            list_size = list_size.saturating_add(name.len() + value.len() + 32);
            if list_size > MAX_DECODED_LIST {
                return;
            }
            if name == b":authority" {
                if let Some(host_port) = url_authority(value) {
                    rewrote = true;
                    return hpack::encode_literal(name, host_port, encoded);
                }
            }
            hpack::encode_literal(name, value, encoded);
        });
        if decoded.is_err() || list_size > MAX_DECODED_LIST {
            self.block = Some(block);
            return self.give_up();
        }
        if !self.transcoding && !rewrote {
            // The common case: the authority is fine, so the client's bytes are too.
            self.out.extend_from_slice(&block.raw);
            self.state = State::PassThrough;
            return;
        }
        self.transcoding = true;
        write_header_frames(&block, &self.encoded, &mut self.out);
        self.state = State::FrameHeader;
    }
}

/// Writes `encoded` as one HEADERS frame, or HEADERS plus CONTINUATION frames when it does
/// not fit in one; END_STREAM and the priority fields as received, no padding.
fn write_header_frames(block: &Block, encoded: &[u8], out: &mut Vec<u8>) {
    let mut rest = encoded;
    let mut first = true;
    loop {
        let prefix = if first { block.priority.as_ref() } else { None };
        let room = MAX_FRAME_PAYLOAD - prefix.map_or(0, |p| p.len());
        let (chunk, tail) = rest.split_at(rest.len().min(room));
        let mut flags = 0;
        if first && block.end_stream {
            flags |= FLAG_END_STREAM;
        }
        if prefix.is_some() {
            flags |= FLAG_PRIORITY;
        }
        if tail.is_empty() {
            flags |= FLAG_END_HEADERS;
        }
        let kind = if first {
            TYPE_HEADERS
        } else {
            TYPE_CONTINUATION
        };
        let len = (chunk.len() + prefix.map_or(0, |p| p.len())) as u32;
        out.extend_from_slice(&len.to_be_bytes()[1..]);
        out.extend_from_slice(&[kind, flags]);
        out.extend_from_slice(&block.stream_id.to_be_bytes());
        if let Some(priority) = prefix {
            out.extend_from_slice(priority);
        }
        out.extend_from_slice(chunk);
        if tail.is_empty() {
            return;
        }
        rest = tail;
        first = false;
    }
}

/// For an `:authority` that h2 would reject but that is a URL with a valid authority
/// (`http://127.0.0.1:2379`, `https://user@host:2379/path`), that authority. `None` when
/// the value is fine as it is, or hopeless.
fn url_authority(value: &[u8]) -> Option<&[u8]> {
    if http::uri::Authority::try_from(value).is_ok() {
        return None;
    }
    let sep = value.windows(3).position(|w| w == b"://")?;
    let scheme = &value[..sep];
    if scheme.is_empty()
        || !scheme
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        return None;
    }
    let rest = &value[sep + 3..];
    let end = rest
        .iter()
        .position(|b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let mut authority = &rest[..end];
    if let Some(at) = authority.iter().rposition(|&b| b == b'@') {
        authority = &authority[at + 1..];
    }
    let valid = !authority.is_empty() && http::uri::Authority::try_from(authority).is_ok();
    valid.then_some(authority)
}

#[cfg(test)]
mod tests;

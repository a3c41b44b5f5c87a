//! The HPACK (RFC 7541) subset that [`super::authority`] needs: a decoder that mirrors a
//! client's encoder (static table, dynamic table with eviction and size updates, Huffman
//! strings) and a stateless encoder that writes only literal fields without indexing.
//!
//! The encoder's output never touches the receiving decoder's dynamic table, which is what
//! lets the authority fix re-encode some header blocks while h2 decodes all of them.

use std::borrow::Cow;
use std::collections::VecDeque;

/// Why a header block could not be decoded. The caller only needs "it is broken": h2 will
/// see the same bytes and report the precise error to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// The block ends inside an integer or a string.
    Truncated,
    /// An integer longer than any that HPACK permits here.
    IntegerOverflow,
    /// An index beyond the static and dynamic tables.
    BadIndex,
    /// A Huffman string with an EOS symbol, an over-long code or bad padding.
    Huffman,
    /// A dynamic table size update above the negotiated limit, or after a field.
    SizeUpdate,
}

/// Each entry costs its name and value plus 32 octets of overhead (RFC 7541 §4.1).
const ENTRY_OVERHEAD: usize = 32;

/// A header block decoder whose dynamic table mirrors the peer's encoder.
pub(crate) struct Decoder {
    /// Newest entry first, so dynamic index `62 + i` is `table[i]`.
    table: VecDeque<(Box<[u8]>, Box<[u8]>)>,
    size: usize,
    /// The current maximum, as last set by a size update.
    max_size: usize,
    /// The most a size update may ask for: our SETTINGS_HEADER_TABLE_SIZE.
    limit: usize,
}

impl Decoder {
    /// A decoder for a connection whose SETTINGS_HEADER_TABLE_SIZE is `limit` (the peer's
    /// encoder starts at that size, RFC 7540 §6.5.2; 4096 unless the server changed it).
    pub(crate) fn new(limit: usize) -> Decoder {
        Decoder {
            table: VecDeque::new(),
            size: 0,
            max_size: limit,
            limit,
        }
    }

    /// Decodes one complete header block, calling `field(name, value)` for each field in
    /// order. On error the dynamic table may be partly updated; the connection is broken
    /// anyway.
    pub(crate) fn decode(
        &mut self,
        mut block: &[u8],
        mut field: impl FnMut(&[u8], &[u8]),
    ) -> Result<(), DecodeError> {
        let mut seen_field = false;
        while let Some(&first) = block.first() {
            if first & 0x80 != 0 {
                // Indexed field (§6.1).
                let (index, rest) = decode_integer(block, 7)?;
                block = rest;
                let (name, value) = self.entry(index)?;
                field(name, value);
            } else if first & 0x40 != 0 {
                // Literal with incremental indexing (§6.2.1).
                let (name, value, rest) = self.decode_literal(block, 6)?;
                block = rest;
                field(&name, &value);
                self.insert(name.into_owned().into(), value.into_owned().into());
            } else if first & 0x20 != 0 {
                // Dynamic table size update (§6.3): only before the first field (§4.2).
                if seen_field {
                    return Err(DecodeError::SizeUpdate);
                }
                let (size, rest) = decode_integer(block, 5)?;
                block = rest;
                if size > self.limit {
                    return Err(DecodeError::SizeUpdate);
                }
                self.max_size = size;
                self.evict_to(size);
                continue;
            } else {
                // Literal without indexing (0000) or never indexed (0001) (§6.2.2, §6.2.3).
                let (name, value, rest) = self.decode_literal(block, 4)?;
                block = rest;
                field(&name, &value);
            }
            seen_field = true;
        }
        Ok(())
    }

    /// The field at `index` in the combined static and dynamic index space (§2.3.3).
    fn entry(&self, index: usize) -> Result<(&[u8], &[u8]), DecodeError> {
        match index {
            0 => Err(DecodeError::BadIndex),
            1..=STATIC_LEN => {
                let (name, value) = STATIC_TABLE[index - 1];
                Ok((name.as_bytes(), value.as_bytes()))
            }
            _ => self
                .table
                .get(index - STATIC_LEN - 1)
                .map(|(name, value)| (&name[..], &value[..]))
                .ok_or(DecodeError::BadIndex),
        }
    }

    /// A literal field whose name index has a `prefix`-bit prefix; returns name, value and
    /// the rest of the block.
    fn decode_literal<'n, 's: 'n, 'b: 'n>(
        &'s self,
        block: &'b [u8],
        prefix: u8,
    ) -> Result<(Cow<'n, [u8]>, Cow<'b, [u8]>, &'b [u8]), DecodeError> {
        let (index, rest) = decode_integer(block, prefix)?;
        let (name, rest) = if index == 0 {
            decode_string(rest)?
        } else {
            (Cow::Borrowed(self.entry(index)?.0), rest)
        };
        let (value, rest) = decode_string(rest)?;
        Ok((name, value, rest))
    }

    /// Adds an entry, evicting the oldest ones to make room (§4.4).
    fn insert(&mut self, name: Box<[u8]>, value: Box<[u8]>) {
        let size = name.len() + value.len() + ENTRY_OVERHEAD;
        if size > self.max_size {
            // An entry larger than the table empties it and is not added.
            self.table.clear();
            self.size = 0;
            return;
        }
        self.evict_to(self.max_size - size);
        self.size += size;
        self.table.push_front((name, value));
    }

    fn evict_to(&mut self, target: usize) {
        while self.size > target {
            let Some((name, value)) = self.table.pop_back() else {
                break;
            };
            self.size -= name.len() + value.len() + ENTRY_OVERHEAD;
        }
    }
}

/// Appends a literal header field without indexing, with a literal name (§6.2.2), plain
/// (non-Huffman) strings. It never touches the receiver's dynamic table.
pub(crate) fn encode_literal(name: &[u8], value: &[u8], out: &mut Vec<u8>) {
    out.push(0);
    encode_string(name, out);
    encode_string(value, out);
}

fn encode_string(s: &[u8], out: &mut Vec<u8>) {
    encode_integer(s.len(), 7, 0, out);
    out.extend_from_slice(s);
}

/// Appends `value` with an N-bit prefix (§5.1); `high` holds the bits above the prefix.
fn encode_integer(mut value: usize, prefix: u8, high: u8, out: &mut Vec<u8>) {
    let max = (1usize << prefix) - 1;
    if value < max {
        out.push(high | value as u8);
        return;
    }
    out.push(high | max as u8);
    value -= max;
    while value >= 0x80 {
        out.push(0x80 | (value & 0x7f) as u8);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads an integer with an N-bit prefix (§5.1). Values are capped well above anything a
/// table index, size or string length on a 16 KiB-frame connection can need.
fn decode_integer(buf: &[u8], prefix: u8) -> Result<(usize, &[u8]), DecodeError> {
    let (&first, mut rest) = buf.split_first().ok_or(DecodeError::Truncated)?;
    let max = (1usize << prefix) - 1;
    let mut value = usize::from(first) & max;
    if value < max {
        return Ok((value, rest));
    }
    // At most four continuation octets: 7 + 4 * 7 bits, comfortably inside a u32.
    for shift in [0, 7, 14, 21] {
        let (&byte, tail) = rest.split_first().ok_or(DecodeError::Truncated)?;
        rest = tail;
        value += usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok((value, rest));
        }
    }
    Err(DecodeError::IntegerOverflow)
}

/// Reads a string literal (§5.2), Huffman-decoding it if its H bit is set.
fn decode_string(buf: &[u8]) -> Result<(Cow<'_, [u8]>, &[u8]), DecodeError> {
    let huffman = buf.first().is_some_and(|b| b & 0x80 != 0);
    let (len, rest) = decode_integer(buf, 7)?;
    if len > rest.len() {
        return Err(DecodeError::Truncated);
    }
    let (raw, rest) = rest.split_at(len);
    if huffman {
        Ok((Cow::Owned(huffman_decode(raw)?), rest))
    } else {
        Ok((Cow::Borrowed(raw), rest))
    }
}

/// RFC 7541 Appendix B: the code length of each symbol, 0..=255 and EOS (256). The code is
/// canonical (codes of one length are consecutive, in symbol order, and each length
/// continues from the last), so the lengths alone define it.
const HUFFMAN_LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, //
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, //
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, //
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, //
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, //
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, //
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, //
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, //
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, //
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, //
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, //
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, //
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, //
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, //
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, //
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, //
    30,
];

const EOS: u16 = 256;
const MAX_CODE_LEN: usize = 30;

/// The canonical decoding tables (as in zlib's `puff`): how many codes have each length,
/// and the symbols sorted by (length, symbol).
struct Canonical {
    count: [u16; MAX_CODE_LEN + 1],
    symbols: [u16; 257],
}

const CANONICAL: Canonical = {
    let mut count = [0u16; MAX_CODE_LEN + 1];
    let mut s = 0;
    while s < 257 {
        count[HUFFMAN_LENGTHS[s] as usize] += 1;
        s += 1;
    }
    let mut offset = [0u16; MAX_CODE_LEN + 2];
    let mut len = 1;
    while len <= MAX_CODE_LEN {
        offset[len + 1] = offset[len] + count[len];
        len += 1;
    }
    let mut symbols = [0u16; 257];
    let mut s = 0;
    while s < 257 {
        let len = HUFFMAN_LENGTHS[s] as usize;
        symbols[offset[len] as usize] = s as u16;
        offset[len] += 1;
        s += 1;
    }
    Canonical { count, symbols }
};

/// For every 8-bit window, the symbol whose code (of at most 8 bits) starts it, and that
/// code's length; length 0 means "longer than 8 bits, decode bit by bit". The common
/// characters of header values have 5- to 8-bit codes.
const FAST: [(u8, u8); 256] = {
    let mut fast = [(0u8, 0u8); 256];
    let mut code = 0u32;
    let mut index = 0;
    let mut len = 1;
    while len <= 8 {
        let mut i = 0;
        while i < CANONICAL.count[len] {
            let symbol = CANONICAL.symbols[index] as u8;
            let first = (code << (8 - len)) as usize;
            let mut j = 0;
            while j < 1 << (8 - len) {
                fast[first + j] = (symbol, len as u8);
                j += 1;
            }
            code += 1;
            index += 1;
            i += 1;
        }
        code <<= 1;
        len += 1;
    }
    fast
};

/// Decodes one symbol from the top `nbits` bits of `bits`, bit by bit. `None` when those
/// bits are a proper prefix of a code (the input ends inside a symbol, or it is padding).
fn decode_symbol(bits: u64, nbits: u32) -> Option<(u16, u32)> {
    let (mut code, mut first, mut index) = (0u32, 0u32, 0usize);
    for len in 1..=(MAX_CODE_LEN as u32).min(nbits) {
        code |= ((bits >> (nbits - len)) & 1) as u32;
        let count = u32::from(CANONICAL.count[len as usize]);
        if code < first + count {
            return Some((CANONICAL.symbols[index + (code - first) as usize], len));
        }
        index += count as usize;
        first = (first + count) << 1;
        code <<= 1;
    }
    None
}

/// Decodes a Huffman-coded string (§5.2). At most 7 bits of padding, all ones (the EOS
/// code's most significant bits); an EOS symbol is an error.
fn huffman_decode(src: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::with_capacity(src.len() + src.len() / 2);
    // Unconsumed bits, right-aligned in `bits`; refilled a byte at a time to > 56 bits.
    let (mut bits, mut nbits) = (0u64, 0u32);
    let mut input = src.iter();
    loop {
        while nbits <= 56 {
            let Some(&byte) = input.next() else { break };
            bits = (bits << 8) | u64::from(byte);
            nbits += 8;
        }
        if nbits == 0 {
            return Ok(out);
        }
        if nbits >= 8 {
            let (symbol, len) = FAST[((bits >> (nbits - 8)) & 0xff) as usize];
            if len != 0 {
                out.push(symbol);
                nbits -= u32::from(len);
                bits &= (1u64 << nbits) - 1;
                continue;
            }
        }
        match decode_symbol(bits, nbits) {
            Some((EOS, _)) => return Err(DecodeError::Huffman),
            Some((symbol, len)) => {
                out.push(symbol as u8);
                nbits -= len;
                bits &= (1u64 << nbits) - 1;
            }
            // Refilling stops only when the input is exhausted or > 56 bits are buffered,
            // and every code is at most 30 bits: so this is the end, and must be padding.
            None if nbits <= 7 && bits == (1u64 << nbits) - 1 => return Ok(out),
            None => return Err(DecodeError::Huffman),
        }
    }
}

const STATIC_LEN: usize = 61;

/// RFC 7541 Appendix A.
const STATIC_TABLE: [(&str, &str); STATIC_LEN] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// Test helpers shared with `authority`'s tests: a client-side encoder with incremental
/// indexing and Huffman strings, so tests can build what a real client sends.
#[cfg(test)]
pub(crate) mod test_encoder {
    use super::{encode_integer, CANONICAL, HUFFMAN_LENGTHS, MAX_CODE_LEN};

    /// The canonical codes, computed from the lengths.
    pub(crate) fn huffman_codes() -> [u32; 257] {
        let mut codes = [0u32; 257];
        let mut code = 0u32;
        let mut index = 0;
        for len in 1..=MAX_CODE_LEN {
            for _ in 0..CANONICAL.count[len] {
                codes[CANONICAL.symbols[index] as usize] = code;
                code += 1;
                index += 1;
            }
            code <<= 1;
        }
        codes
    }

    pub(crate) fn huffman_encode(s: &[u8]) -> Vec<u8> {
        let codes = huffman_codes();
        let (mut out, mut bits, mut nbits) = (Vec::new(), 0u64, 0u32);
        for &b in s {
            let len = u32::from(HUFFMAN_LENGTHS[b as usize]);
            bits = (bits << len) | u64::from(codes[b as usize]);
            nbits += len;
            while nbits >= 8 {
                out.push((bits >> (nbits - 8)) as u8);
                nbits -= 8;
            }
            bits &= (1u64 << nbits) - 1;
        }
        if nbits > 0 {
            let pad = 8 - nbits;
            out.push(((bits << pad) | ((1 << pad) - 1)) as u8);
        }
        out
    }

    /// How a test client represents one field.
    #[derive(Clone, Copy)]
    pub(crate) enum Repr<'a> {
        /// `(index)`: an indexed field.
        Indexed(usize),
        /// Literal with incremental indexing, literal name; `huffman` codes both strings.
        Incremental(&'a str, &'a str, bool),
        /// Literal with incremental indexing, name from the table at the index.
        IncrementalNamed(usize, &'a str, bool),
        /// Literal without indexing, name from the table at the index.
        WithoutIndexingNamed(usize, &'a str, bool),
        /// Literal never indexed, literal name.
        NeverIndexed(&'a str, &'a str, bool),
        /// A dynamic table size update.
        SizeUpdate(usize),
    }

    pub(crate) fn string(s: &str, huffman: bool, out: &mut Vec<u8>) {
        if huffman {
            let coded = huffman_encode(s.as_bytes());
            encode_integer(coded.len(), 7, 0x80, out);
            out.extend_from_slice(&coded);
        } else {
            encode_integer(s.len(), 7, 0, out);
            out.extend_from_slice(s.as_bytes());
        }
    }

    pub(crate) fn encode(fields: &[Repr<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        for field in fields {
            match *field {
                Repr::Indexed(i) => encode_integer(i, 7, 0x80, &mut out),
                Repr::Incremental(n, v, h) => {
                    out.push(0x40);
                    string(n, h, &mut out);
                    string(v, h, &mut out);
                }
                Repr::IncrementalNamed(i, v, h) => {
                    encode_integer(i, 6, 0x40, &mut out);
                    string(v, h, &mut out);
                }
                Repr::WithoutIndexingNamed(i, v, h) => {
                    encode_integer(i, 4, 0, &mut out);
                    string(v, h, &mut out);
                }
                Repr::NeverIndexed(n, v, h) => {
                    out.push(0x10);
                    string(n, h, &mut out);
                    string(v, h, &mut out);
                }
                Repr::SizeUpdate(size) => encode_integer(size, 5, 0x20, &mut out),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::test_encoder::{encode, huffman_codes, huffman_encode, Repr};
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn decode_all(
        decoder: &mut Decoder,
        block: &[u8],
    ) -> Result<Vec<(String, String)>, DecodeError> {
        let mut fields = Vec::new();
        decoder.decode(block, |n, v| {
            fields.push((
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            ))
        })?;
        Ok(fields)
    }

    fn pairs(fields: &[(&str, &str)]) -> Vec<(String, String)> {
        fields
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn table(decoder: &Decoder) -> Vec<(String, String)> {
        decoder
            .table
            .iter()
            .map(|(n, v)| {
                (
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn huffman_codes_match_rfc_7541_appendix_b() {
        let codes = huffman_codes();
        // A few rows of Appendix B, one per code length family.
        assert_eq!(
            (codes[b'0' as usize], HUFFMAN_LENGTHS[b'0' as usize]),
            (0x0, 5)
        );
        assert_eq!(
            (codes[b't' as usize], HUFFMAN_LENGTHS[b't' as usize]),
            (0x9, 5)
        );
        assert_eq!(
            (codes[b' ' as usize], HUFFMAN_LENGTHS[b' ' as usize]),
            (0x14, 6)
        );
        assert_eq!(
            (codes[b'A' as usize], HUFFMAN_LENGTHS[b'A' as usize]),
            (0x21, 6)
        );
        assert_eq!(
            (codes[b':' as usize], HUFFMAN_LENGTHS[b':' as usize]),
            (0x5c, 7)
        );
        assert_eq!(
            (codes[b'X' as usize], HUFFMAN_LENGTHS[b'X' as usize]),
            (0xfc, 8)
        );
        assert_eq!(
            (codes[b'!' as usize], HUFFMAN_LENGTHS[b'!' as usize]),
            (0x3f8, 10)
        );
        assert_eq!(
            (codes[b'<' as usize], HUFFMAN_LENGTHS[b'<' as usize]),
            (0x7ffc, 15)
        );
        assert_eq!((codes[0], HUFFMAN_LENGTHS[0]), (0x1ff8, 13));
        assert_eq!((codes[255], HUFFMAN_LENGTHS[255]), (0x3ffffee, 26));
        assert_eq!((codes[256], HUFFMAN_LENGTHS[256]), (0x3fffffff, 30));
        // A complete prefix code: the Kraft sum is exactly 1.
        let kraft: f64 = HUFFMAN_LENGTHS.iter().map(|&l| 0.5f64.powi(l.into())).sum();
        assert_eq!(kraft, 1.0);
    }

    #[test]
    fn huffman_round_trips_every_byte() {
        let all: Vec<u8> = (0..=255u8).collect();
        assert_eq!(huffman_decode(&huffman_encode(&all)).unwrap(), all);
        for b in 0..=255u8 {
            for n in 1..4 {
                let s = vec![b; n];
                assert_eq!(huffman_decode(&huffman_encode(&s)).unwrap(), s, "{b} x{n}");
            }
        }
        assert_eq!(huffman_decode(&[]).unwrap(), b"");
    }

    #[test]
    fn huffman_rejects_bad_padding_and_eos() {
        // "0" is 00000: padded with ones it decodes, with zeros (or a mix) it does not.
        assert_eq!(huffman_decode(&[0b0000_0111]).unwrap(), b"0");
        assert_eq!(huffman_decode(&[0b0000_0000]), Err(DecodeError::Huffman));
        assert_eq!(huffman_decode(&[0b0000_0110]), Err(DecodeError::Huffman));
        // A whole byte of padding is too much (more than 7 bits).
        assert_eq!(
            huffman_decode(&[0b0000_0111, 0xff]),
            Err(DecodeError::Huffman)
        );
        // The EOS code itself (30 ones), padded.
        assert_eq!(
            huffman_decode(&[0xff, 0xff, 0xff, 0xff]),
            Err(DecodeError::Huffman)
        );
    }

    /// RFC 7541 C.3: requests without Huffman coding, one connection.
    #[test]
    fn rfc_7541_c3_requests_without_huffman() {
        let mut d = Decoder::new(4096);
        let got = decode_all(
            &mut d,
            &hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"),
        )
        .unwrap();
        assert_eq!(
            got,
            pairs(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
            ])
        );
        let got = decode_all(&mut d, &hex("8286 84be 5808 6e6f 2d63 6163 6865")).unwrap();
        assert_eq!(got[3], (":authority".into(), "www.example.com".into()));
        assert_eq!(got[4], ("cache-control".into(), "no-cache".into()));
        let got = decode_all(
            &mut d,
            &hex("8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65"),
        )
        .unwrap();
        assert_eq!(
            got,
            pairs(&[
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/index.html"),
                (":authority", "www.example.com"),
                ("custom-key", "custom-value"),
            ])
        );
        assert_eq!(d.size, 164);
    }

    /// RFC 7541 C.4: the same requests with Huffman coding.
    #[test]
    fn rfc_7541_c4_requests_with_huffman() {
        let mut d = Decoder::new(4096);
        let got = decode_all(&mut d, &hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff")).unwrap();
        assert_eq!(got[3], (":authority".into(), "www.example.com".into()));
        let got = decode_all(&mut d, &hex("8286 84be 5886 a8eb 1064 9cbf")).unwrap();
        assert_eq!(got[4], ("cache-control".into(), "no-cache".into()));
        let got = decode_all(
            &mut d,
            &hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"),
        )
        .unwrap();
        assert_eq!(got[4], ("custom-key".into(), "custom-value".into()));
        assert_eq!(
            table(&d),
            pairs(&[
                ("custom-key", "custom-value"),
                ("cache-control", "no-cache"),
                (":authority", "www.example.com"),
            ])
        );
    }

    /// RFC 7541 C.6: responses with Huffman coding and a 256-octet table, so entries are
    /// evicted.
    #[test]
    fn rfc_7541_c6_responses_with_eviction() {
        let mut d = Decoder::new(256);
        decode_all(
            &mut d,
            &hex(
                "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 \
                 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
            ),
        )
        .unwrap();
        assert_eq!(d.size, 222);
        let got = decode_all(&mut d, &hex("4883 640e ffc1 c0bf")).unwrap();
        assert_eq!(got[0], (":status".into(), "307".into()));
        assert_eq!(d.size, 222);
        let got = decode_all(
            &mut d,
            &hex(
                "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab \
                 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f \
                 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
            ),
        )
        .unwrap();
        assert_eq!(
            got,
            pairs(&[
                (":status", "200"),
                ("cache-control", "private"),
                ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
                ("location", "https://www.example.com"),
                ("content-encoding", "gzip"),
                (
                    "set-cookie",
                    "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"
                ),
            ])
        );
        assert_eq!(d.size, 215);
        assert_eq!(d.table.len(), 3);
    }

    #[test]
    fn size_updates_are_bounded_and_evict() {
        let mut d = Decoder::new(4096);
        let block = encode(&[
            Repr::Incremental("a", "b", false),
            Repr::Incremental("c", "d", true),
        ]);
        decode_all(&mut d, &block).unwrap();
        assert_eq!(d.table.len(), 2);
        // Shrink to one entry's worth, then to zero, then back up.
        decode_all(&mut d, &encode(&[Repr::SizeUpdate(40), Repr::Indexed(62)])).unwrap();
        assert_eq!(table(&d), pairs(&[("c", "d")]));
        decode_all(
            &mut d,
            &encode(&[
                Repr::SizeUpdate(0),
                Repr::SizeUpdate(4096),
                Repr::Indexed(2),
            ]),
        )
        .unwrap();
        assert!(d.table.is_empty());
        assert_eq!(
            decode_all(&mut d, &encode(&[Repr::SizeUpdate(4097)])),
            Err(DecodeError::SizeUpdate)
        );
        assert_eq!(
            decode_all(&mut d, &encode(&[Repr::Indexed(2), Repr::SizeUpdate(100)])),
            Err(DecodeError::SizeUpdate)
        );
        assert_eq!(
            decode_all(&mut d, &encode(&[Repr::Indexed(62)])),
            Err(DecodeError::BadIndex)
        );
        assert_eq!(decode_all(&mut d, &[0x80]), Err(DecodeError::BadIndex));
    }

    #[test]
    fn an_entry_larger_than_the_table_empties_it() {
        let mut d = Decoder::new(64);
        decode_all(&mut d, &encode(&[Repr::Incremental("a", "b", false)])).unwrap();
        let big = "x".repeat(40);
        decode_all(&mut d, &encode(&[Repr::Incremental("k", &big, false)])).unwrap();
        assert!(d.table.is_empty());
        assert_eq!(d.size, 0);
    }

    #[test]
    fn literal_encoding_round_trips_without_touching_the_table() {
        let long = "v".repeat(300);
        let mut block = Vec::new();
        for (n, v) in [
            (":authority", "127.0.0.1:1234"),
            ("x-long", long.as_str()),
            ("e", ""),
        ] {
            encode_literal(n.as_bytes(), v.as_bytes(), &mut block);
        }
        let mut d = Decoder::new(4096);
        let got = decode_all(&mut d, &block).unwrap();
        assert_eq!(
            got,
            pairs(&[
                (":authority", "127.0.0.1:1234"),
                ("x-long", &long),
                ("e", "")
            ])
        );
        assert!(d.table.is_empty());
    }

    #[test]
    fn truncated_and_oversized_input_is_an_error() {
        let mut d = Decoder::new(4096);
        let block = encode(&[Repr::NeverIndexed("name", "value", true)]);
        for cut in 1..block.len() {
            assert!(decode_all(&mut d, &block[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(
            decode_all(&mut d, &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
            Err(DecodeError::IntegerOverflow)
        );
        assert_eq!(
            decode_all(&mut d, &[0x00, 0x7f, 0x80]),
            Err(DecodeError::Truncated)
        );
    }

    #[test]
    fn garbage_never_panics() {
        // A small deterministic xorshift: every block of random bytes decodes or errors.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut d = Decoder::new(4096);
        for _ in 0..20_000 {
            let len = (next() % 64) as usize;
            let block: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let _ = d.decode(&block, |_, _| {});
            assert!(d.size <= d.max_size && d.max_size <= 4096);
        }
    }
}

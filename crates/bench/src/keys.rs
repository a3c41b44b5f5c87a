//! Keys and values, as etcd's benchmark makes them: a key is `key_size` zero bytes with the
//! key's index written at the front as Go's `binary.PutVarint` (zig-zag, then base-128
//! little-endian), so `put --key-space-size 1` writes one key over and over and
//! `--key-space-size N` spreads over N distinct keys. Values are random bytes drawn once.

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

/// Bytes Go's `binary.PutVarint(x)` writes.
pub fn varint_len(x: i64) -> usize {
    let mut ux = zigzag(x);
    let mut n = 1;
    while ux >= 0x80 {
        ux >>= 7;
        n += 1;
    }
    n
}

fn zigzag(x: i64) -> u64 {
    let ux = (x as u64) << 1;
    if x < 0 {
        !ux
    } else {
        ux
    }
}

/// Go's `binary.PutVarint`: writes `x` at the front of `buf`, returns the bytes written.
/// Panics if `buf` is too short (callers check with [`varint_len`] up front).
pub fn put_varint(buf: &mut [u8], x: i64) -> usize {
    let mut ux = zigzag(x);
    let mut i = 0;
    while ux >= 0x80 {
        buf[i] = (ux as u8) | 0x80;
        ux >>= 7;
        i += 1;
    }
    buf[i] = ux as u8;
    i + 1
}

/// The key of index `index`: `size` bytes, the varint of `index` first, zeros after.
pub fn encode_key(size: usize, index: u64) -> Vec<u8> {
    let mut key = vec![0u8; size];
    put_varint(&mut key, index as i64);
    key
}

/// `n` random bytes (a value, or etcd's random watch-latency key).
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes
}

/// Picks key indexes in `0..space`: `i % space` for request i (sequential), or uniformly
/// at random. Each worker forks its own generator, so there is no shared state.
#[derive(Debug)]
pub struct KeyGen {
    size: usize,
    space: u64,
    sequential: bool,
    rng: StdRng,
}

impl KeyGen {
    /// Refuses a key space of 0 and keys too short for the largest index's varint (etcd's
    /// tool would panic there).
    pub fn new(size: usize, space: u64, sequential: bool) -> anyhow::Result<KeyGen> {
        if space == 0 {
            anyhow::bail!("expected positive --key-space-size, got 0");
        }
        let largest = i64::try_from(space - 1)
            .map_err(|_| anyhow::anyhow!("--key-space-size {space} is too large"))?;
        let need = varint_len(largest);
        if size < need {
            anyhow::bail!(
                "--key-size {size} is too small for --key-space-size {space}: \
                 keys need at least {need} bytes"
            );
        }
        Ok(KeyGen {
            size,
            space,
            sequential,
            rng: StdRng::from_entropy(),
        })
    }

    /// An independent generator with the same settings (its own random stream).
    pub fn fork(&self) -> KeyGen {
        KeyGen {
            size: self.size,
            space: self.space,
            sequential: self.sequential,
            rng: StdRng::from_entropy(),
        }
    }

    /// Same, but deterministic (tests).
    pub fn with_seed(mut self, seed: u64) -> KeyGen {
        self.rng = StdRng::seed_from_u64(seed);
        self
    }

    /// The key index for request `i`.
    #[inline]
    pub fn index(&mut self, i: u64) -> u64 {
        if self.sequential {
            i % self.space
        } else {
            self.rng.gen_range(0..self.space)
        }
    }

    /// The key for request `i`.
    #[inline]
    pub fn key(&mut self, i: u64) -> Vec<u8> {
        let index = self.index(i);
        encode_key(self.size, index)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn varint_matches_go() {
        // Values from Go's encoding/binary: PutVarint(buf, x).
        let cases: &[(i64, &[u8])] = &[
            (0, &[0x00]),
            (1, &[0x02]),
            (-1, &[0x01]),
            (63, &[0x7e]),
            (64, &[0x80, 0x01]),
            (300, &[0xd8, 0x04]),
            (999_999, &[0xfe, 0x88, 0x7a]),
        ];
        for (x, want) in cases {
            let mut buf = [0u8; 10];
            let n = put_varint(&mut buf, *x);
            assert_eq!(&buf[..n], *want, "PutVarint({x})");
            assert_eq!(varint_len(*x), want.len());
        }
        assert_eq!(varint_len(i64::MAX), 10);
    }

    #[test]
    fn keys_are_fixed_size_varint_then_zeros() {
        assert_eq!(encode_key(8, 0), vec![0; 8]);
        assert_eq!(encode_key(8, 64), vec![0x80, 0x01, 0, 0, 0, 0, 0, 0]);
        assert_eq!(encode_key(3, 5), vec![10, 0, 0]);
    }

    #[test]
    fn sequential_keys_cycle_the_key_space() {
        let mut g = KeyGen::new(8, 5, true).unwrap();
        let idx: Vec<u64> = (0..12).map(|i| g.index(i)).collect();
        assert_eq!(idx, [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]);
        assert_eq!(g.key(7), encode_key(8, 2));
        // Default key space of 1: always the same key, sequential or not.
        let mut one = KeyGen::new(8, 1, false).unwrap();
        assert!((0..100).all(|i| one.key(i) == vec![0; 8]));
    }

    #[test]
    fn random_keys_stay_in_the_key_space_and_cover_it() {
        let mut g = KeyGen::new(8, 100, false).unwrap().with_seed(7);
        let mut seen = HashSet::new();
        for i in 0..10_000 {
            let k = g.index(i);
            assert!(k < 100);
            seen.insert(k);
        }
        assert_eq!(seen.len(), 100, "10k uniform draws cover 100 keys");
        // Not the sequential pattern.
        let first: Vec<u64> = (0..10).map(|i| g.index(i)).collect();
        assert_ne!(first, (0..10).collect::<Vec<_>>());
        // Forks draw independently.
        let mut a = g.fork().with_seed(1);
        let mut b = g.fork().with_seed(2);
        let a: Vec<u64> = (0..20).map(|i| a.index(i)).collect();
        let b: Vec<u64> = (0..20).map(|i| b.index(i)).collect();
        assert_ne!(a, b);
    }

    #[test]
    fn key_generator_validates_sizes() {
        assert!(KeyGen::new(8, 0, false).is_err());
        // 64 keys: largest index 63 fits one byte; 65 keys need two.
        assert!(KeyGen::new(1, 64, true).is_ok());
        assert!(KeyGen::new(1, 65, true).is_err());
        assert!(KeyGen::new(2, 65, true).is_ok());
    }

    #[test]
    fn random_values_have_the_size() {
        assert_eq!(random_bytes(0).len(), 0);
        let v = random_bytes(1024);
        assert_eq!(v.len(), 1024);
        assert!(v.iter().any(|&b| b != 0));
    }
}

//! The sampling allocator: a [`GlobalAlloc`] around another (mimalloc in chorus) that,
//! once [`start`] has run, records about one allocation per [`MEAN_INTERVAL`] bytes
//! allocated, as Go's `runtime.MemProfileRate` does: each thread counts its allocated bytes
//! down from a random, exponentially distributed interval, and the allocation that crosses
//! zero is sampled with its call stack. Until then every allocation and free costs one
//! relaxed atomic load more than the inner allocator's.
//!
//! A sampled allocation stays in the live table until it is freed; frees look the pointer
//! up only when a counting filter over the pointer's bits says it may be there. The
//! sampler's own allocations (the tables) go straight to the inner allocator: a
//! thread-local flag turns sampling off while the sampler runs, and the stack is captured
//! into a fixed array, without allocating.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::Mutex;

/// Go's default `MemProfileRate`, and jemalloc's `lg_prof_sample:19`.
pub const MEAN_INTERVAL: u64 = 512 * 1024;
/// Deepest stack recorded (Go records 32 frames; tokio tasks nest deeper).
const MAX_FRAMES: usize = 64;
const FILTER_BITS: u32 = 16;

static ACTIVE: AtomicBool = AtomicBool::new(false);
/// Per pointer hash, how many live samples have it (a counting Bloom filter).
static FILTER: [AtomicU16; 1 << FILTER_BITS] = [const { AtomicU16::new(0) }; 1 << FILTER_BITS];
static TABLES: Mutex<Option<Tables>> = Mutex::new(None);

/// Wraps the allocator `A` with heap sampling; see the module doc.
pub struct Sampled<A>(pub A);

/// Starts sampling (for the life of the process).
pub fn start() {
    ACTIVE.store(true, Ordering::Relaxed);
}

/// Whether [`start`] has run.
pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

struct ThreadState {
    /// Bytes left before the next sample.
    countdown: Cell<i64>,
    /// xorshift state; 0 until the thread's first allocation while sampling.
    rng: Cell<u64>,
    /// Set while the sampler runs on this thread: its own allocations are not sampled.
    busy: Cell<bool>,
}

thread_local! {
    static THREAD: ThreadState = const {
        ThreadState { countdown: Cell::new(0), rng: Cell::new(0), busy: Cell::new(false) }
    };
}

/// One call stack's allocations since sampling started (sampled counts, unscaled).
#[derive(Debug, Clone, Default)]
pub struct StackRecord {
    /// Return addresses, innermost first.
    pub ips: Box<[usize]>,
    pub allocs: u64,
    pub alloc_bytes: u64,
    pub inuse: u64,
    pub inuse_bytes: u64,
}

#[derive(Default)]
struct Tables {
    /// Live sampled allocation → (index in `stacks`, size).
    live: HashMap<usize, (usize, usize)>,
    by_ips: HashMap<Box<[usize]>, usize>,
    stacks: Vec<StackRecord>,
}

unsafe impl<A: GlobalAlloc> GlobalAlloc for Sampled<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // The flag first: with sampling off this is a load, a branch and a tail call.
        if !ACTIVE.load(Ordering::Relaxed) {
            return unsafe { self.0.alloc(layout) };
        }
        let p = unsafe { self.0.alloc(layout) };
        if !p.is_null() {
            on_alloc(p, layout.size());
        }
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // The flag first: with sampling off this is a load, a branch and a tail call.
        if !ACTIVE.load(Ordering::Relaxed) {
            return unsafe { self.0.alloc_zeroed(layout) };
        }
        let p = unsafe { self.0.alloc_zeroed(layout) };
        if !p.is_null() {
            on_alloc(p, layout.size());
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        // Before the inner free: once freed, another thread may get the address back.
        if ACTIVE.load(Ordering::Relaxed) {
            on_free(p);
        }
        unsafe { self.0.dealloc(p, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !ACTIVE.load(Ordering::Relaxed) {
            return unsafe { self.0.realloc(p, layout, new_size) };
        }
        // A failed realloc leaves the old block alive but unrecorded: a sample lost, no more.
        on_free(p);
        let q = unsafe { self.0.realloc(p, layout, new_size) };
        if !q.is_null() {
            on_alloc(q, new_size);
        }
        q
    }
}

/// Out of line: the allocator's path with sampling off stays a load and a branch.
#[inline(never)]
fn on_alloc(p: *mut u8, size: usize) {
    THREAD.with(|t| {
        if t.busy.get() {
            return;
        }
        let left = t.countdown.get() - size as i64;
        if left > 0 {
            t.countdown.set(left);
            return;
        }
        t.busy.set(true);
        let first = t.rng.get() == 0;
        if first {
            t.rng.set(seed(t));
        }
        t.countdown.set(next_interval(&t.rng));
        if !first {
            record(p as usize, size);
        }
        t.busy.set(false);
    });
}

#[inline(never)]
fn on_free(p: *mut u8) {
    if FILTER[slot(p as usize)].load(Ordering::Relaxed) == 0 {
        return;
    }
    THREAD.with(|t| {
        // The sampler's own frees: never of a sampled block.
        if t.busy.get() {
            return;
        }
        t.busy.set(true);
        let mut tables = TABLES.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tables) = tables.as_mut() {
            tables.remove(p as usize);
        }
        drop(tables);
        t.busy.set(false);
    });
}

fn record(p: usize, size: usize) {
    let mut ips = [0usize; MAX_FRAMES];
    let mut n = 0;
    // SAFETY: trace_unsynchronized walks this thread's stack with libgcc's unwinder; the
    // closure only writes into `ips`. Unsynchronized: backtrace's lock would allocate.
    unsafe {
        backtrace::trace_unsynchronized(|frame| {
            ips[n] = frame.ip() as usize;
            n += 1;
            n < MAX_FRAMES
        });
    }
    let mut tables = TABLES.lock().unwrap_or_else(|e| e.into_inner());
    tables
        .get_or_insert_with(Tables::default)
        .add(p, size, &ips[..n]);
}

impl Tables {
    fn add(&mut self, p: usize, size: usize, ips: &[usize]) {
        let index = match self.by_ips.get(ips) {
            Some(i) => *i,
            None => {
                self.stacks.push(StackRecord {
                    ips: ips.into(),
                    ..StackRecord::default()
                });
                self.by_ips.insert(ips.into(), self.stacks.len() - 1);
                self.stacks.len() - 1
            }
        };
        let s = &mut self.stacks[index];
        s.allocs += 1;
        s.alloc_bytes += size as u64;
        s.inuse += 1;
        s.inuse_bytes += size as u64;
        if let Some((old, old_size)) = self.live.insert(p, (index, size)) {
            // A block freed while its record was missed (a failed realloc): replaced.
            let s = &mut self.stacks[old];
            s.inuse -= 1;
            s.inuse_bytes -= old_size as u64;
        } else {
            FILTER[slot(p)].fetch_add(1, Ordering::Relaxed);
        }
    }

    fn remove(&mut self, p: usize) {
        if let Some((index, size)) = self.live.remove(&p) {
            FILTER[slot(p)].fetch_sub(1, Ordering::Relaxed);
            let s = &mut self.stacks[index];
            s.inuse -= 1;
            s.inuse_bytes -= size as u64;
        }
    }
}

/// Every stack sampled so far, with its counts: `None` before [`start`].
pub fn snapshot() -> Option<Vec<StackRecord>> {
    if !active() {
        return None;
    }
    // Busy while the lock is held: the copy's allocations are not sampled (sampling them
    // would take the lock again).
    THREAD.with(|t| {
        let was = t.busy.replace(true);
        let copy = TABLES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|tables| tables.stacks.clone())
            .unwrap_or_default();
        t.busy.set(was);
        Some(copy)
    })
}

fn slot(p: usize) -> usize {
    // Fibonacci hashing of the address without its alignment bits.
    (((p as u64) >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (u64::BITS - FILTER_BITS)) as usize
}

fn seed(t: &ThreadState) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    (t as *const ThreadState as u64 ^ nanos.rotate_left(32)) | 1
}

/// An exponentially distributed interval with mean [`MEAN_INTERVAL`] (xorshift64*).
fn next_interval(rng: &Cell<u64>) -> i64 {
    let mut x = rng.get();
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng.set(x);
    let bits = x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11; // 53 random bits
    let u = (bits as f64 + 1.0) / (1u64 << 53) as f64; // in (0, 1]
    (-u.ln() * MEAN_INTERVAL as f64) as i64 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_average_the_mean() {
        let rng = Cell::new(0x1234_5678_9abc_def1);
        let n = 20_000;
        let sum: i64 = (0..n).map(|_| next_interval(&rng)).sum();
        let mean = sum as f64 / n as f64;
        let want = MEAN_INTERVAL as f64;
        assert!((mean - want).abs() < want * 0.05, "mean {mean}");
    }

    #[test]
    fn tables_count_live_and_total_per_stack() {
        let mut t = Tables::default();
        t.add(0x1000, 100, &[1, 2]);
        t.add(0x2000, 50, &[1, 2]);
        t.add(0x3000, 7, &[3]);
        assert_ne!(FILTER[slot(0x1000)].load(Ordering::Relaxed), 0);
        t.remove(0x1000);
        t.remove(0x9999_0000); // not sampled: nothing happens
        let s = &t.stacks[0];
        assert_eq!(
            (s.allocs, s.alloc_bytes, s.inuse, s.inuse_bytes),
            (2, 150, 1, 50)
        );
        assert_eq!(t.stacks[1].inuse_bytes, 7);
        t.remove(0x2000);
        t.remove(0x3000);
        assert!(t.live.is_empty());
    }
}

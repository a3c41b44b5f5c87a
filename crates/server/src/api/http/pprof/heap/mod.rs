//! `heap` and `allocs`: Go's heap profile from the sampling allocator (sampler.rs). Both
//! carry Go's four values per stack (`alloc_objects`, `alloc_space` since start-up,
//! `inuse_objects`, `inuse_space` live now), scaled up from the samples as Go scales
//! them; `heap` shows `inuse_space` by default and `allocs` `alloc_space`, as in Go.

pub mod sampler;

use axum::http::StatusCode;

use super::encode::{Frame, ProfileBuilder};
pub use sampler::{start, Sampled, StackRecord, MEAN_INTERVAL};

/// Go's sample types of a heap profile, in Go's order.
const SAMPLE_TYPES: [(&str, &str); 4] = [
    ("alloc_objects", "count"),
    ("alloc_space", "bytes"),
    ("inuse_objects", "count"),
    ("inuse_space", "bytes"),
];

/// Which of Go's two views of the same samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// `heap`: live memory (`inuse_space`).
    Heap,
    /// `allocs`: everything allocated since start-up (`alloc_space`).
    Allocs,
}

/// Why no heap profile could be written.
#[derive(Debug, thiserror::Error)]
pub enum HeapError {
    #[error(
        "heap sampling is off: chorus samples its allocations when started with \
         --enable-pprof (or --log-level=debug)"
    )]
    Off,
    #[error("Could not write the heap profile: {0}")]
    Encode(#[from] std::io::Error),
}

impl HeapError {
    pub fn status(&self) -> StatusCode {
        match self {
            HeapError::Off => StatusCode::NOT_IMPLEMENTED,
            HeapError::Encode(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The gzipped profile (symbolizing reads the binary's debug info: call it off the
/// runtime's workers).
pub fn profile(view: View) -> Result<Vec<u8>, HeapError> {
    let stacks = sampler::snapshot().ok_or(HeapError::Off)?;
    let mut b = ProfileBuilder::new(&SAMPLE_TYPES, ("space", "bytes"), MEAN_INTERVAL as i64);
    if view == View::Allocs {
        b.default_sample_type("alloc_space");
    }
    let mut symbols = Symbolizer::default();
    for s in &stacks {
        let frames = symbols.stack(&s.ips);
        b.add(&frames, scaled(s), &[]);
    }
    Ok(b.finish()?)
}

/// Go's `scaleHeapSample`: a sample of average size `s` stands for `1 / (1 - e^(-s/rate))`
/// allocations, so the values estimate the whole heap, not the sampled part.
fn scaled(s: &StackRecord) -> Vec<i64> {
    let scale = |count: u64, bytes: u64| -> (i64, i64) {
        if count == 0 {
            return (0, 0);
        }
        let avg = bytes as f64 / count as f64;
        let factor = 1.0 / (1.0 - (-avg / MEAN_INTERVAL as f64).exp());
        (
            (count as f64 * factor) as i64,
            (bytes as f64 * factor) as i64,
        )
    };
    let (allocs, alloc_bytes) = scale(s.allocs, s.alloc_bytes);
    let (inuse, inuse_bytes) = scale(s.inuse, s.inuse_bytes);
    vec![allocs, alloc_bytes, inuse, inuse_bytes]
}

/// Return addresses to frames, each address resolved once.
#[derive(Default)]
struct Symbolizer {
    cache: std::collections::HashMap<usize, Vec<Frame>>,
}

impl Symbolizer {
    /// The caller's stack, innermost first, without the allocator's own frames.
    fn stack(&mut self, ips: &[usize]) -> Vec<Frame> {
        let mut frames = Vec::new();
        for ip in ips {
            frames.extend_from_slice(self.resolve(*ip));
        }
        // Through the allocator shim when it has a frame of its own, else the leading
        // run of the sampler's, the unwinder's and the allocator's frames.
        let cut = frames
            .iter()
            .position(|f| is_shim(&f.function))
            .map(|i| i + 1)
            .unwrap_or_else(|| {
                frames
                    .iter()
                    .take_while(|f| is_allocator(&f.function))
                    .count()
            });
        frames[cut.min(frames.len())..].to_vec()
    }

    fn resolve(&mut self, ip: usize) -> &[Frame] {
        self.cache.entry(ip).or_insert_with(|| {
            let mut frames = Vec::new();
            backtrace::resolve(ip as *mut std::ffi::c_void, |sym| {
                frames.push(Frame {
                    function: sym
                        .name()
                        .map_or_else(|| format!("{ip:#x}"), |n| format!("{n:#}")),
                    file: sym
                        .filename()
                        .map_or_else(String::new, |p| p.display().to_string()),
                    line: sym.lineno().unwrap_or(0),
                });
            });
            if frames.is_empty() {
                frames.push(Frame {
                    function: format!("{ip:#x}"),
                    file: String::new(),
                    line: 0,
                });
            }
            frames
        })
    }
}

/// The global allocator shims (`__rust_alloc` and kin): the code that allocated is below.
fn is_shim(function: &str) -> bool {
    function.contains("__rust_alloc") || function.contains("__rust_realloc")
}

/// The frames above the code that allocated: the unwinder, the sampler, mimalloc.
fn is_allocator(function: &str) -> bool {
    is_shim(function)
        || function.contains("pprof::heap::sampler")
        || function.starts_with("backtrace::")
        || function.starts_with("mi_")
        || function.starts_with("_Unwind_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_scaled_as_go_scales_them() {
        // One sampled 512 KiB block stands for 1 / (1 - 1/e) ≈ 1.58 blocks.
        let s = StackRecord {
            allocs: 1,
            alloc_bytes: MEAN_INTERVAL,
            inuse: 0,
            inuse_bytes: 0,
            ..StackRecord::default()
        };
        let v = scaled(&s);
        assert_eq!(v[0], 1);
        assert_eq!(v[1], 829_411, "{v:?}"); // 524288 / (1 - e^-1)
        assert_eq!(&v[2..], &[0, 0]);
        // Small blocks are rarely sampled: each stands for about rate / size of them.
        let small = StackRecord {
            inuse: 1,
            inuse_bytes: 64,
            ..StackRecord::default()
        };
        let v = scaled(&small);
        assert!((8190..=8194).contains(&v[2]), "{v:?}");
    }

    fn named(names: &[&str]) -> Vec<Frame> {
        names
            .iter()
            .map(|n| Frame {
                function: n.to_string(),
                file: String::new(),
                line: 0,
            })
            .collect()
    }

    fn cut(names: &[&str]) -> Vec<String> {
        let frames = named(names);
        let mut s = Symbolizer::default();
        for (i, f) in frames.iter().enumerate() {
            s.cache.insert(i, vec![f.clone()]);
        }
        let ips: Vec<usize> = (0..frames.len()).collect();
        s.stack(&ips).into_iter().map(|f| f.function).collect()
    }

    #[test]
    fn allocator_frames_are_cut_from_the_top() {
        let sampler = "chorus_server::api::http::pprof::heap::sampler::record";
        // Through the shim, even when the caller's stack holds backtrace frames too.
        assert_eq!(
            cut(&[
                "backtrace::trace_unsynchronized",
                sampler,
                "__rustc::__rust_alloc",
                "alloc::raw_vec::RawVec<T,A>::grow_one",
                "backtrace::symbolize::resolve",
                "main",
            ]),
            [
                "alloc::raw_vec::RawVec<T,A>::grow_one",
                "backtrace::symbolize::resolve",
                "main"
            ]
        );
        // The shim inlined: the leading run.
        assert_eq!(
            cut(&[
                "backtrace::trace_unsynchronized",
                sampler,
                "mi_malloc",
                "f",
                "main"
            ]),
            ["f", "main"]
        );
    }
}

//! Symbolized stacks into pprof's `Profile` protobuf (pprof-rs's generated types), gzipped
//! as Go writes it. One location per frame, keyed by function, file and line, without
//! addresses or mappings: `go tool pprof` reads such a profile without the binary, as it
//! reads the CPU profiles pprof-rs writes.

use std::collections::HashMap;
use std::io::Write as _;

use pprof::protos::{self, Message as _};

/// One symbolized frame of a stack.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Frame {
    pub function: String,
    pub file: String,
    pub line: u32,
}

/// A sample's string label (`pprof -tags` lists them).
pub struct Label<'a> {
    pub key: &'a str,
    pub value: String,
}

/// Accumulates samples; [`ProfileBuilder::finish`] encodes them.
#[derive(Default)]
pub struct ProfileBuilder {
    strings: Vec<String>,
    string_ids: HashMap<String, i64>,
    functions: HashMap<(i64, i64), u64>,
    locations: HashMap<Frame, u64>,
    profile: protos::Profile,
}

impl ProfileBuilder {
    /// `sample_types` are (type, unit) pairs, one value each per sample, as in Go's
    /// profiles (`("inuse_space", "bytes")`); `period` is the sampling period in the
    /// unit of `period_type`.
    pub fn new(sample_types: &[(&str, &str)], period_type: (&str, &str), period: i64) -> Self {
        let mut b = ProfileBuilder::default();
        b.string(""); // index 0 is the empty string, as the format requires
        b.profile.sample_type = sample_types
            .iter()
            .map(|(ty, unit)| b.value_type(ty, unit))
            .collect();
        b.profile.period_type = Some(b.value_type(period_type.0, period_type.1));
        b.profile.period = period;
        b.profile.time_nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        b
    }

    /// The sample type `go tool pprof` shows unless told otherwise (else the last).
    pub fn default_sample_type(&mut self, ty: &str) {
        self.profile.default_sample_type = self.string(ty);
    }

    /// A sample whose stack is `frames`, innermost first.
    pub fn add(&mut self, frames: &[Frame], values: Vec<i64>, labels: &[Label<'_>]) {
        let location_id = frames.iter().map(|f| self.location(f)).collect();
        let label = labels
            .iter()
            .map(|l| protos::Label {
                key: self.string(l.key),
                str: self.string(&l.value),
                ..protos::Label::default()
            })
            .collect();
        self.profile.sample.push(protos::Sample {
            location_id,
            value: values,
            label,
        });
    }

    /// The gzipped protobuf.
    pub fn finish(mut self) -> std::io::Result<Vec<u8>> {
        self.profile.string_table = self.strings;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&self.profile.encode_to_vec())?;
        gz.finish()
    }

    fn value_type(&mut self, ty: &str, unit: &str) -> protos::ValueType {
        protos::ValueType {
            ty: self.string(ty),
            unit: self.string(unit),
        }
    }

    fn string(&mut self, s: &str) -> i64 {
        if let Some(id) = self.string_ids.get(s) {
            return *id;
        }
        let id = self.strings.len() as i64;
        self.strings.push(s.to_string());
        self.string_ids.insert(s.to_string(), id);
        id
    }

    fn location(&mut self, frame: &Frame) -> u64 {
        if let Some(id) = self.locations.get(frame) {
            return *id;
        }
        let function_id = self.function(&frame.function, &frame.file);
        let id = self.profile.location.len() as u64 + 1;
        self.profile.location.push(protos::Location {
            id,
            line: vec![protos::Line {
                function_id,
                line: i64::from(frame.line),
            }],
            ..protos::Location::default()
        });
        self.locations.insert(frame.clone(), id);
        id
    }

    fn function(&mut self, name: &str, file: &str) -> u64 {
        let key = (self.string(name), self.string(file));
        if let Some(id) = self.functions.get(&key) {
            return *id;
        }
        let id = self.profile.function.len() as u64 + 1;
        self.profile.function.push(protos::Function {
            id,
            name: key.0,
            system_name: key.0,
            filename: key.1,
            ..protos::Function::default()
        });
        self.functions.insert(key, id);
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    fn frame(f: &str, line: u32) -> Frame {
        Frame {
            function: f.into(),
            file: "src/x.rs".into(),
            line,
        }
    }

    #[test]
    fn shares_strings_functions_and_locations_between_samples() {
        let mut b = ProfileBuilder::new(&[("goroutine", "count")], ("goroutine", "count"), 1);
        let label = [Label {
            key: "task",
            value: "7".into(),
        }];
        b.add(&[frame("leaf", 3), frame("root", 9)], vec![1], &label);
        b.add(&[frame("leaf", 4), frame("root", 9)], vec![2], &[]);
        let gz = b.finish().unwrap();
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut raw)
            .unwrap();
        let p = protos::Profile::decode(&raw[..]).unwrap();
        assert_eq!(p.string_table[0], "");
        assert_eq!(p.function.len(), 2, "leaf and root, once each");
        assert_eq!(p.location.len(), 3, "leaf:3, leaf:4, root:9");
        assert_eq!(p.sample[0].location_id, vec![1, 2]);
        assert_eq!(p.sample[1].location_id, vec![3, 2]);
        assert_eq!(p.sample[1].value, vec![2]);
        let s = |i: i64| p.string_table[i as usize].as_str();
        assert_eq!(s(p.sample[0].label[0].key), "task");
        assert_eq!(s(p.sample[0].label[0].str), "7");
        assert_eq!(s(p.sample_type[0].ty), "goroutine");
        assert_eq!(s(p.function[0].name), "leaf");
    }
}

//! Rebuilding the key index from the backend at start-up, on two threads.
//!
//! ```text
//!   calling thread: KV table in revision order ── each record's key and revisions
//!                   (the value is skipped, never copied) ── chunks ──┐
//!   index thread:   TreeIndex::restore, lease of each live key  ◄────┘
//! ```
//! At 1,000,000 keys the rebuild was most of a start-up after `kill -9`: every record was
//! decoded whole (its value copied and freed) and put in the index on one thread.

use std::collections::HashMap;
use std::sync::mpsc;

use prost::encoding::{decode_varint, WireType};
use redb::ReadableTable;

use super::index::IndexKey;
use super::{MvccError, Result, Revision, TreeIndex};
use crate::backend::BackendError;

/// Records handed from the reading thread to the index thread at a time.
const CHUNK: usize = 4096;
/// Chunks in flight: the reader runs at most this far ahead of the index.
const CHUNKS_IN_FLIGHT: usize = 4;

/// What the index needs of one stored `mvccpb.KeyValue`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct RecordMeta {
    pub key: IndexKey,
    pub create_revision: i64,
    pub mod_revision: i64,
    pub version: i64,
    pub lease: i64,
}

/// Decodes a stored `mvccpb.KeyValue` but its value (fields: 1 key, 2 create_revision,
/// 3 mod_revision, 4 version, 5 value, 6 lease). Malformed input is an error, as prost's
/// full decode would give.
pub(super) fn decode_meta(mut buf: &[u8]) -> std::result::Result<RecordMeta, String> {
    let mut m = RecordMeta::default();
    while !buf.is_empty() {
        let tag = decode_varint(&mut buf).map_err(|e| e.to_string())?;
        let wire = WireType::try_from(tag & 7).map_err(|e| e.to_string())?;
        match (tag >> 3, wire) {
            (1, WireType::LengthDelimited) => m.key = IndexKey::from_slice(take(&mut buf)?),
            (5, WireType::LengthDelimited) => {
                take(&mut buf)?;
            }
            (2..=4 | 6, WireType::Varint) => {
                let v = decode_varint(&mut buf).map_err(|e| e.to_string())? as i64;
                match tag >> 3 {
                    2 => m.create_revision = v,
                    3 => m.mod_revision = v,
                    4 => m.version = v,
                    _ => m.lease = v,
                }
            }
            (_, WireType::Varint) => {
                decode_varint(&mut buf).map_err(|e| e.to_string())?;
            }
            (_, WireType::LengthDelimited) => {
                take(&mut buf)?;
            }
            (_, WireType::SixtyFourBit) => skip(&mut buf, 8)?,
            (_, WireType::ThirtyTwoBit) => skip(&mut buf, 4)?,
            (field, wire) => return Err(format!("field {field}: unexpected {wire:?}")),
        }
    }
    Ok(m)
}

fn take<'a>(buf: &mut &'a [u8]) -> std::result::Result<&'a [u8], String> {
    let len = decode_varint(buf).map_err(|e| e.to_string())? as usize;
    if len > buf.len() {
        return Err("buffer underflow".into());
    }
    let (field, rest) = buf.split_at(len);
    *buf = rest;
    Ok(field)
}

fn skip(buf: &mut &[u8], n: usize) -> std::result::Result<(), String> {
    *buf = buf.get(n..).ok_or("buffer underflow")?;
    Ok(())
}

/// The index, the lease of every live key, and the newest main revision stored (1 when
/// none is).
pub(super) struct Rebuilt {
    pub index: TreeIndex,
    pub key_leases: HashMap<Vec<u8>, i64>,
    pub current: i64,
}

/// Reads every record of the KV table in revision order and builds the index from them.
pub(super) fn rebuild(kv: &impl ReadableTable<(i64, i64), &'static [u8]>) -> Result<Rebuilt> {
    let (tx, rx) = mpsc::sync_channel::<Vec<(Revision, RecordMeta)>>(CHUNKS_IN_FLIGHT);
    std::thread::scope(|s| {
        let builder = std::thread::Builder::new()
            .name("index-rebuild".into())
            .spawn_scoped(s, move || build(rx))
            .expect("spawn the index rebuild thread");
        let read = read(kv, tx);
        let (index, key_leases) = builder.join().expect("the index rebuild thread panicked");
        Ok(Rebuilt {
            index,
            key_leases,
            current: read?,
        })
    })
}

/// Sends the table's records in chunks; the newest main revision.
fn read(
    kv: &impl ReadableTable<(i64, i64), &'static [u8]>,
    tx: mpsc::SyncSender<Vec<(Revision, RecordMeta)>>,
) -> Result<i64> {
    let mut current = 1;
    let mut chunk = Vec::with_capacity(CHUNK);
    for item in kv.iter()? {
        let (k, v) = item?;
        let (main, sub) = k.value();
        let meta = decode_meta(v.value()).map_err(|e| {
            MvccError::Backend(BackendError::Corrupt {
                what: format!("key-value record: {e}"),
            })
        })?;
        chunk.push((Revision::new(main, sub), meta));
        current = main;
        if chunk.len() == CHUNK {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
            // A closed channel means the builder is gone: its panic is reported by join.
            if tx.send(full).is_err() {
                break;
            }
        }
    }
    let _ = tx.send(chunk);
    Ok(current)
}

fn build(rx: mpsc::Receiver<Vec<(Revision, RecordMeta)>>) -> (TreeIndex, HashMap<Vec<u8>, i64>) {
    let mut index = TreeIndex::default();
    let mut key_leases: HashMap<Vec<u8>, i64> = HashMap::new();
    for chunk in rx {
        for (rev, m) in chunk {
            let tombstone = m.mod_revision == 0;
            if m.lease != 0 && !tombstone {
                key_leases.insert(m.key.to_vec(), m.lease);
            } else if !key_leases.is_empty() {
                key_leases.remove(&*m.key);
            }
            index.restore(m.key, rev, m.create_revision, m.version, tombstone);
        }
    }
    (index, key_leases)
}

#[cfg(test)]
mod tests {
    use chorus_api::mvccpb::KeyValue;
    use prost::Message;

    use super::*;

    fn meta_of(kv: &KeyValue) -> RecordMeta {
        RecordMeta {
            key: kv.key.clone().into(),
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
            lease: kv.lease,
        }
    }

    #[test]
    fn reads_what_a_full_decode_reads_but_the_value() {
        let cases = [
            KeyValue::default(),
            KeyValue {
                key: b"k".to_vec(),
                create_revision: 2,
                mod_revision: 9,
                version: 4,
                value: vec![7; 300],
                lease: 0x7fff_0000_0001,
            },
            // A tombstone: key and mod_revision 0; negative numbers are 10-byte varints.
            KeyValue {
                key: vec![0, 255],
                create_revision: -1,
                ..Default::default()
            },
        ];
        for kv in cases {
            assert_eq!(decode_meta(&kv.encode_to_vec()).unwrap(), meta_of(&kv));
        }
    }

    #[test]
    fn skips_unknown_fields_and_refuses_damage() {
        let kv = KeyValue {
            key: b"key".to_vec(),
            mod_revision: 5,
            value: b"value".to_vec(),
            ..Default::default()
        };
        let mut bytes = kv.encode_to_vec();
        // Field 9 as bytes, field 10 as fixed64, field 11 as fixed32: a newer writer's.
        bytes.extend_from_slice(&[
            0x4a, 2, 1, 2, 0x51, 0, 0, 0, 0, 0, 0, 0, 0, 0x5d, 0, 0, 0, 0,
        ]);
        assert_eq!(decode_meta(&bytes).unwrap(), meta_of(&kv));
        let whole = kv.encode_to_vec();
        for cut in 1..whole.len() {
            let partial = &whole[..cut];
            assert_eq!(
                decode_meta(partial).is_err(),
                KeyValue::decode(partial).is_err(),
                "cut at {cut}"
            );
        }
        // A start-group wire type, which no KeyValue carries.
        assert!(decode_meta(&[0x0b]).is_err());
    }
}

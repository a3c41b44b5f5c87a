//! The in-memory copy of `/skydns/`: a consistent snapshot (one read at revision R),
//! then a watch from R + 1 that applies every put and delete, so a record whose lease is
//! revoked or expires disappears with the delete event. A broken watch (member gone,
//! history compacted) is followed by a fresh snapshot. Values that are not SkyDNS JSON
//! are skipped with a log line. At most [`MAX_RECORDS`] records are kept.

use std::collections::BTreeMap;
use std::time::Duration;

use chorus_client::{Client, GetOptions, WatchOptions};
use tokio::sync::watch;

use crate::record::Service;

/// Records held at most; keys past this are skipped with a log line.
pub const MAX_RECORDS: usize = 1_000_000;

#[derive(Debug, Default)]
struct State {
    records: BTreeMap<String, Service>,
    revision: i64,
    synced: bool,
}

/// The records, shared by the query handlers (read lock) and the sync task.
#[derive(Debug, Default)]
pub struct Index {
    state: parking_lot::RwLock<State>,
}

impl Index {
    /// Whether a snapshot has been loaded (before that, queries get SERVFAIL).
    pub fn synced(&self) -> bool {
        self.state.read().synced
    }

    /// The revision the index reflects (the SOA serial).
    pub fn revision(&self) -> i64 {
        self.state.read().revision
    }

    /// Every record whose key is `path` or below `path/` (the subtree); the exact key
    /// alone when `exact`. CoreDNS reads `path/` first and falls back to `path`.
    pub fn lookup(&self, path: &str, exact: bool) -> Vec<Service> {
        let s = self.state.read();
        if !exact {
            let dir = format!("{path}/");
            let below: Vec<Service> = s
                .records
                .range(dir.clone()..)
                .take_while(|(k, _)| k.starts_with(&dir))
                .map(|(_, v)| v.clone())
                .collect();
            if !below.is_empty() {
                return below;
            }
        }
        s.records.get(path).cloned().into_iter().collect()
    }

    /// Applies a put of `key` (malformed values remove the key and are logged).
    pub fn put(&self, key: &str, value: &[u8], lease: i64, revision: i64) {
        let parsed = Service::parse(key, value, lease);
        let mut s = self.state.write();
        s.revision = s.revision.max(revision);
        match parsed {
            Ok(service) => {
                if s.records.len() >= MAX_RECORDS && !s.records.contains_key(key) {
                    tracing::warn!(
                        key,
                        "DNS index full ({MAX_RECORDS} records); record skipped"
                    );
                    return;
                }
                s.records.insert(key.to_string(), service);
            }
            Err(e) => {
                tracing::warn!(key, "skipping a SkyDNS value that is not valid JSON: {e}");
                s.records.remove(key);
            }
        }
    }

    pub fn delete(&self, key: &str, revision: i64) {
        let mut s = self.state.write();
        s.revision = s.revision.max(revision);
        s.records.remove(key);
    }

    /// Replaces everything with a snapshot taken at `revision`.
    fn load(&self, records: BTreeMap<String, Service>, revision: i64) {
        let mut s = self.state.write();
        s.records = records;
        s.revision = revision;
        s.synced = true;
    }

    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn mark_synced_for_tests(&self) {
        self.state.write().synced = true;
    }

    pub fn len(&self) -> usize {
        self.state.read().records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Keeps `index` equal to the cluster's `prefix` subtree until shutdown.
pub async fn sync(
    index: &Index,
    client: &Client,
    prefix: &str,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        tokio::select! {
            _ = crate::stopped(&mut shutdown) => return,
            result = sync_once(index, client, prefix) => {
                if let Err(e) = result {
                    tracing::warn!("DNS index: {e}; taking a new snapshot");
                }
            }
        }
        tokio::select! {
            _ = crate::stopped(&mut shutdown) => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// One snapshot and the watch after it; returns when the watch breaks.
async fn sync_once(index: &Index, client: &Client, prefix: &str) -> chorus_client::Result<()> {
    let dir = format!("{}/", prefix.trim_end_matches('/'));
    let snapshot = client
        .get(
            dir.clone(),
            GetOptions {
                prefix: true,
                ..Default::default()
            },
        )
        .await?;
    let revision = snapshot.header.as_ref().map_or(0, |h| h.revision);
    let mut records = BTreeMap::new();
    for kv in snapshot.kvs.iter().take(MAX_RECORDS) {
        let key = lossy(&kv.key);
        match Service::parse(&key, &kv.value, kv.lease) {
            Ok(s) => {
                records.insert(key, s);
            }
            Err(e) => tracing::warn!(key, "skipping a SkyDNS value that is not valid JSON: {e}"),
        }
    }
    index.load(records, revision);
    let opts = WatchOptions {
        prefix: true,
        start_revision: revision + 1,
        ..Default::default()
    };
    let mut stream = client.watch(dir, opts).await?;
    while let Some(resp) = stream.message().await? {
        if resp.canceled {
            return Err(chorus_client::Error::WatchCanceled {
                reason: resp.cancel_reason,
                compact_revision: resp.compact_revision,
            });
        }
        for ev in &resp.events {
            let Some(kv) = ev.kv.as_ref() else { continue };
            let key = lossy(&kv.key);
            if ev.r#type == chorus_client::mvccpb::event::EventType::Delete as i32 {
                index.delete(&key, kv.mod_revision);
            } else {
                index.put(&key, &kv.value, kv.lease, kv.mod_revision);
            }
        }
    }
    Err(chorus_client::Error::StreamClosed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtree_then_exact() {
        let ix = Index::default();
        ix.put(
            "/skydns/local/chorus/web/x1",
            br#"{"host":"10.0.0.1"}"#,
            0,
            2,
        );
        ix.put(
            "/skydns/local/chorus/web/x2",
            br#"{"host":"10.0.0.2"}"#,
            0,
            3,
        );
        ix.put(
            "/skydns/local/chorus/webby",
            br#"{"host":"10.0.0.3"}"#,
            0,
            4,
        );
        assert_eq!(ix.lookup("/skydns/local/chorus/web", false).len(), 2);
        assert_eq!(ix.lookup("/skydns/local/chorus/webby", false).len(), 1);
        assert!(ix.lookup("/skydns/local/chorus/we", false).is_empty());
        ix.put("/skydns/local/chorus/web/x2", b"{broken", 0, 5);
        assert_eq!(ix.lookup("/skydns/local/chorus/web", false).len(), 1);
        ix.delete("/skydns/local/chorus/web/x1", 6);
        assert!(ix.lookup("/skydns/local/chorus/web", false).is_empty());
        assert_eq!(ix.revision(), 6);
    }
}

//! etcd's v2v3 watcher: a v3 watch on the whole prefix, each revision turned back into
//! the v2 event its write made (the action key names the action, the longest other key
//! is the node), filtered by the watched path.

use std::collections::VecDeque;

use chorus_api::mvccpb::Event as V3Event;

use super::layout::v2_rev;
use super::store::{event, V3Store};
use crate::api::grpc::concurrency::{prefix_end, LocalWatch};
use crate::v2::{ecode, Action, Event, V2Error};

/// A v2 watch over the v3 keyspace; dropping it cancels the v3 watch.
pub struct V3Watcher {
    watch: LocalWatch,
    member: std::sync::Arc<crate::member::Member>,
    layout: super::layout::Layout,
    prefix: String,
    recursive: bool,
    start_index: u64,
    ready: VecDeque<Event>,
}

fn action(name: &[u8]) -> Option<Action> {
    let all = [
        Action::Get,
        Action::Create,
        Action::Set,
        Action::Update,
        Action::Delete,
        Action::CompareAndSwap,
        Action::CompareAndDelete,
        Action::Expire,
    ];
    all.into_iter().find(|a| a.as_str().as_bytes() == name)
}

impl V3Store {
    /// etcd's v2v3 `Watch`: note that `since_index` is used as a v3 revision, unconverted,
    /// as etcd does.
    pub fn watch(
        &self,
        prefix: &str,
        recursive: bool,
        since_index: u64,
    ) -> Result<V3Watcher, V2Error> {
        let key = self.layout.pfx.as_bytes();
        let start_rev = self.member.watch_hub().rev();
        let watch = LocalWatch::new(&self.member, None, key, prefix_end(key), since_index as i64)
            .map_err(|_| V2Error::new(ecode::RAFT_INTERNAL, prefix, 0))?;
        Ok(V3Watcher {
            watch,
            member: self.member.clone(),
            layout: self.layout.clone(),
            prefix: prefix.to_string(),
            recursive,
            start_index: v2_rev(start_rev),
            ready: VecDeque::new(),
        })
    }
}

impl V3Watcher {
    /// The index the watch started at (`X-Etcd-Index`).
    pub fn start_index(&self) -> u64 {
        self.start_index
    }

    /// The next v2 event under the watched path; `None` once the v3 watch ended.
    pub async fn recv(&mut self) -> Option<Event> {
        loop {
            if let Some(ev) = self.ready.pop_front() {
                return Some(ev);
            }
            let (rev, mut events) = self.watch.next().await.ok()?;
            crate::api::grpc::watch::fill_prev_kvs(&self.member.kv(), &mut events);
            for group in events.chunk_by(|a, b| mod_rev(a) == mod_rev(b)) {
                if let Some(ev) = self.v2_event(group, rev).filter(|e| self.wanted(e)) {
                    self.ready.push_back(ev);
                }
            }
        }
    }

    /// etcd's `mkV2Events` for the events of one revision.
    fn v2_event(&self, group: &[V3Event], header_rev: i64) -> Option<Event> {
        let act_key = self.layout.action_key();
        let mut act = None;
        let mut node: Option<&V3Event> = None;
        for ev in group {
            let kv = ev.kv.as_ref()?;
            if kv.key == act_key.as_bytes() {
                act = Some(kv);
            } else if node.is_none_or(|n| n.kv.as_ref().is_some_and(|k| k.key.len() < kv.key.len()))
            {
                node = Some(ev);
            }
        }
        let (act, node) = (action(&act?.value)?, node?);
        let v2_node = node.kv.as_ref().map(|kv| self.layout.node(kv));
        let prev = node.prev_kv.as_ref().map(|kv| self.layout.node(kv));
        Some(event(act, v2_node, prev, header_rev))
    }

    /// etcd's filter: the watched key itself, or (recursive) anything under it that is
    /// not hidden below the watched path.
    fn wanted(&self, ev: &Event) -> bool {
        let Some(k) = ev.node.as_ref().map(|n| n.key.as_str()) else {
            return false;
        };
        if !self.recursive {
            return k == self.prefix;
        }
        match k.strip_prefix(self.prefix.as_str()) {
            Some(rest) => !format!("/{rest}").contains("/_"),
            None => false,
        }
    }
}

fn mod_rev(e: &V3Event) -> i64 {
    e.kv.as_ref().map_or(0, |kv| kv.mod_revision)
}

//! The reference event history and the watch guarantees.
//!
//! Reference watchers watch the whole key space from revision 1 and resume at the last
//! delivered revision + 1 after every broken stream. Their events, merged (they must agree
//! wherever they overlap), give every revision's events: the reference. It must be gapless
//! (every revision after 1 has events) and replay to the final read. Every watcher is then
//! checked against it:
//!
//! * ordered: revisions strictly increase from one revision's events to the next;
//! * unique and atomic: a revision's events arrive once, together in one response, and are
//!   exactly the reference's events of that revision in the watched range;
//! * reliable: no revision with events in the range is skipped between the session's start
//!   and the last delivered revision;
//! * resumable: a session started at last + 1 delivers exactly the rest (each session is
//!   checked from its own start revision);
//! * progress: a progress notification at P comes only after every event up to P.

use std::collections::{BTreeMap, BTreeSet};

use crate::history::{Event, KeyRange, Kv, Watcher};

/// Every revision's events, as the reference watchers saw them.
#[derive(Debug, Default, Clone)]
pub struct Reference {
    pub revisions: BTreeMap<i64, Vec<Event>>,
    /// Per key: (revision, the key-value from then on; None once deleted).
    per_key: BTreeMap<String, Vec<(i64, Option<Kv>)>>,
    /// The last revision the reference covers.
    pub last: i64,
    /// First revision the reference covers completely (2 when watched from the start).
    pub first: i64,
}

/// The revision an event belongs to (a delete event's key-value carries it as
/// mod_revision, as etcd sends it).
pub fn event_revision(e: &Event) -> i64 {
    e.kv.mod_revision
}

impl Reference {
    /// Merges the reference watchers' events. Violations: watchers that disagree, a gap
    /// in the revisions, a revision whose events are not all alike.
    pub fn build(watchers: &[Watcher]) -> (Reference, Vec<String>) {
        let mut violations = Vec::new();
        let mut revisions: BTreeMap<i64, Vec<Event>> = BTreeMap::new();
        let mut last = 1;
        for w in watchers.iter().filter(|w| w.reference) {
            let mut mine: BTreeMap<i64, Vec<Event>> = BTreeMap::new();
            for s in &w.sessions {
                for r in &s.responses {
                    for e in &r.events {
                        mine.entry(event_revision(e)).or_default().push(e.clone());
                    }
                    if r.progress_notify {
                        last = last.max(r.revision);
                    }
                }
            }
            for (rev, events) in mine {
                last = last.max(rev);
                match revisions.get(&rev) {
                    Some(theirs) if *theirs != events => violations.push(format!(
                        "reference watchers disagree at revision {rev}: {theirs:?} vs {events:?} (watcher {})",
                        w.id
                    )),
                    Some(_) => {}
                    None => {
                        revisions.insert(rev, events);
                    }
                }
            }
        }
        // Progress notifications and events are all we know; a revision with no events up
        // to `last` is a gap (every revision after 1 is made by a write with events).
        let mut expected = 2;
        for &rev in revisions.keys() {
            if rev != expected {
                violations.push(format!(
                    "reference history has no events for revisions {expected}..{rev}"
                ));
            }
            expected = rev + 1;
        }
        if expected <= last {
            violations.push(format!(
                "reference history has no events for revisions {expected}..={last}"
            ));
        }
        let mut per_key: BTreeMap<String, Vec<(i64, Option<Kv>)>> = BTreeMap::new();
        for (&rev, events) in &revisions {
            for e in events {
                per_key
                    .entry(e.kv.key.clone())
                    .or_default()
                    .push((rev, (!e.delete).then(|| e.kv.clone())));
            }
        }
        (
            Reference {
                revisions,
                per_key,
                last,
                first: 2,
            },
            violations,
        )
    }

    /// The key-values in `range` at revision `rev`.
    pub fn at(&self, rev: i64, range: &KeyRange) -> Vec<Kv> {
        let keys: Box<dyn Iterator<Item = (&String, &Vec<(i64, Option<Kv>)>)>> = match &range.end {
            None => Box::new(self.per_key.get_key_value(&range.key).into_iter()),
            Some(end) => Box::new(self.per_key.range::<str, _>((
                std::ops::Bound::Included(range.key.as_str()),
                std::ops::Bound::Excluded(end.as_str()),
            ))),
        };
        keys.filter_map(|(_, versions)| {
            let i = versions.partition_point(|(r, _)| *r <= rev);
            (i > 0).then(|| versions[i - 1].1.clone()).flatten()
        })
        .collect()
    }

    /// Where (revision) a put of `value` happened, for every such put.
    pub fn put_revisions(&self) -> BTreeMap<&str, Vec<(i64, &str)>> {
        let mut out: BTreeMap<&str, Vec<(i64, &str)>> = BTreeMap::new();
        for (&rev, events) in &self.revisions {
            for e in events.iter().filter(|e| !e.delete) {
                out.entry(e.kv.value.as_str())
                    .or_default()
                    .push((rev, e.kv.key.as_str()));
            }
        }
        out
    }

    fn events_in(&self, rev: i64, range: &KeyRange) -> Vec<&Event> {
        self.revisions
            .get(&rev)
            .map(|evs| evs.iter().filter(|e| range.contains(&e.kv.key)).collect())
            .unwrap_or_default()
    }

    /// Revisions in `[from, to]` with events in `range`.
    fn revisions_in(&self, from: i64, to: i64, range: &KeyRange) -> Vec<i64> {
        if from > to {
            return Vec::new();
        }
        self.revisions
            .range(from..=to)
            .filter(|(_, evs)| evs.iter().any(|e| range.contains(&e.kv.key)))
            .map(|(&r, _)| r)
            .collect()
    }
}

/// Counts of what a watcher check looked at.
#[derive(Debug, Default, Clone, Copy)]
pub struct WatchStats {
    pub events: usize,
    pub progress_notifications: usize,
    pub sessions: usize,
}

/// Checks one watcher against the reference. Revisions past `reference.last` cannot be
/// checked and are skipped.
///
/// `compactions`: the revisions compactions were asked for. Compacting at R drops the
/// tombstones at R (etcd keeps each key's newest revision up to R unless it is a delete),
/// so a session that starts at a compacted R gets R's puts but not its deletes, in etcd
/// 3.4 as in chorus.
pub fn check_watcher(
    w: &Watcher,
    reference: &Reference,
    compactions: &BTreeSet<i64>,
    stats: &mut WatchStats,
) -> Vec<String> {
    let mut violations = Vec::new();
    let mut v = |msg: String| violations.push(format!("watcher {} ({:?}): {msg}", w.id, w.range));
    let mut previous_end: Option<i64> = None;
    for (si, s) in w.sessions.iter().enumerate() {
        stats.sessions += 1;
        let start = if s.start_revision > 0 {
            s.start_revision
        } else {
            s.created_revision + 1
        };
        if let Some(end) = previous_end {
            if s.start_revision > 0 && s.start_revision != end {
                v(format!(
                    "session {si} resumed at {} instead of {end} (last delivered + 1)",
                    s.start_revision
                ));
            }
        }
        let mut next = start.max(reference.first);
        let compacted_start = compactions.contains(&start);
        // The start revision may be missing altogether if all it has here are tombstones.
        let tombstones_at_start = compacted_start && {
            let evs = reference.events_in(start, &w.range);
            !evs.is_empty() && evs.iter().all(|e| e.delete)
        };
        let missed_in = |from: i64, to: i64| {
            let mut m = reference.revisions_in(from, to, &w.range);
            if tombstones_at_start {
                m.retain(|&r| r != start);
            }
            m
        };
        let mut last_event_rev = 0;
        for (ri, r) in s.responses.iter().enumerate() {
            if r.canceled {
                if r.compact_revision > 0 {
                    if r.compact_revision <= start {
                        v(format!(
                            "session {si} canceled as compacted at {} though it started at {start}",
                            r.compact_revision
                        ));
                    }
                    next = next.max(r.compact_revision);
                }
                continue;
            }
            if r.events.is_empty() {
                if r.progress_notify {
                    stats.progress_notifications += 1;
                    let p = r.revision;
                    if p < last_event_rev {
                        v(format!(
                            "session {si}: progress notification at {p} after an event at {last_event_rev}"
                        ));
                    }
                    let upto = p.min(reference.last);
                    let missed = missed_in(next, upto);
                    if !missed.is_empty() {
                        v(format!(
                            "session {si}: progress notification at {p} (response {ri}) before events of revisions {missed:?}"
                        ));
                    }
                    next = next.max(p + 1);
                }
                continue;
            }
            // Group the response's events by revision, in order.
            let mut groups: Vec<(i64, Vec<&Event>)> = Vec::new();
            for e in &r.events {
                stats.events += 1;
                let rev = event_revision(e);
                match groups.last_mut() {
                    Some((g, evs)) if *g == rev => evs.push(e),
                    Some((g, _)) if *g > rev => {
                        v(format!(
                            "session {si}: events out of order in response {ri}: {rev} after {g}"
                        ));
                        groups.push((rev, vec![e]));
                    }
                    _ => groups.push((rev, vec![e])),
                }
            }
            for (rev, events) in groups {
                if rev <= last_event_rev {
                    v(format!(
                        "session {si}: revision {rev} delivered again or out of order after {last_event_rev} (response {ri})"
                    ));
                    continue;
                }
                if rev < start {
                    v(format!(
                        "session {si}: event at {rev} before the start revision {start}"
                    ));
                }
                last_event_rev = rev;
                if !w.range.contains(&events[0].kv.key)
                    || events.iter().any(|e| !w.range.contains(&e.kv.key))
                {
                    v(format!(
                        "session {si}: event outside the watched range at {rev}"
                    ));
                }
                if rev > reference.last {
                    next = rev + 1;
                    continue;
                }
                let missed = missed_in(next, rev - 1);
                if !missed.is_empty() {
                    v(format!(
                        "session {si}: skipped the events of revisions {missed:?} before {rev}"
                    ));
                }
                let mut expected = reference.events_in(rev, &w.range);
                if rev == start && compacted_start && expected != events {
                    expected.retain(|e| !e.delete);
                }
                if expected != events {
                    v(format!(
                        "session {si}: revision {rev} delivered as {events:?}, the reference has {expected:?}"
                    ));
                }
                next = rev + 1;
            }
        }
        previous_end = Some(next);
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{WatchResponse, WatchSession};

    fn put(key: &str, value: &str, rev: i64) -> Event {
        Event {
            delete: false,
            kv: Kv {
                key: key.into(),
                value: value.into(),
                create_revision: rev,
                mod_revision: rev,
                version: 1,
                lease: 0,
            },
        }
    }

    fn resp(events: Vec<Event>) -> WatchResponse {
        let revision = events.last().map_or(0, |e| e.kv.mod_revision);
        WatchResponse {
            time: 0,
            revision,
            events,
            progress_notify: false,
            canceled: false,
            compact_revision: 0,
        }
    }

    fn progress(rev: i64) -> WatchResponse {
        WatchResponse {
            progress_notify: true,
            revision: rev,
            ..resp(Vec::new())
        }
    }

    fn watcher(
        id: usize,
        range: KeyRange,
        reference: bool,
        sessions: Vec<(i64, Vec<WatchResponse>)>,
    ) -> Watcher {
        Watcher {
            id,
            range,
            reference,
            sessions: sessions
                .into_iter()
                .map(|(start, responses)| WatchSession {
                    member: 0,
                    start_revision: start,
                    created_revision: 1,
                    responses,
                    ended_by: None,
                })
                .collect(),
        }
    }

    fn reference() -> Watcher {
        watcher(
            0,
            KeyRange::prefix("k"),
            true,
            vec![
                (
                    1,
                    vec![
                        resp(vec![put("ka", "1", 2)]),
                        resp(vec![put("kb", "2", 3), put("ka", "3", 3)]),
                    ],
                ),
                (4, vec![resp(vec![put("kb", "4", 4)])]),
            ],
        )
    }

    #[test]
    fn good_watchers_pass() {
        let (r, errs) = Reference::build(&[reference()]);
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(r.last, 4);
        let w = watcher(
            1,
            KeyRange::single("kb"),
            false,
            vec![
                (3, vec![resp(vec![put("kb", "2", 3)]), progress(3)]),
                (4, vec![resp(vec![put("kb", "4", 4)])]),
            ],
        );
        let mut stats = WatchStats::default();
        assert!(check_watcher(&w, &r, &BTreeSet::new(), &mut stats).is_empty());
        assert_eq!(r.at(3, &KeyRange::prefix("k")).len(), 2);
        assert_eq!(r.at(2, &KeyRange::single("kb")), vec![]);
    }

    #[test]
    fn reference_gap_is_reported() {
        let w = watcher(
            0,
            KeyRange::prefix("k"),
            true,
            vec![(
                1,
                vec![resp(vec![put("ka", "1", 2)]), resp(vec![put("ka", "1", 4)])],
            )],
        );
        let (_, errs) = Reference::build(&[w]);
        assert!(
            errs.iter()
                .any(|e| e.contains("no events for revisions 3..4")),
            "{errs:?}"
        );
    }

    #[test]
    fn unreliable_split_duplicated_and_early_progress_are_rejected() {
        let (r, _) = Reference::build(&[reference()]);
        let mut stats = WatchStats::default();
        // Skips revision 3.
        let w = watcher(
            1,
            KeyRange::prefix("k"),
            false,
            vec![(
                2,
                vec![resp(vec![put("ka", "1", 2)]), resp(vec![put("kb", "4", 4)])],
            )],
        );
        assert!(!check_watcher(&w, &r, &BTreeSet::new(), &mut stats).is_empty());
        // Revision 3 split over two responses (not atomic).
        let w = watcher(
            1,
            KeyRange::prefix("k"),
            false,
            vec![(
                3,
                vec![resp(vec![put("kb", "2", 3)]), resp(vec![put("ka", "3", 3)])],
            )],
        );
        assert!(!check_watcher(&w, &r, &BTreeSet::new(), &mut stats).is_empty());
        // Revision 2 twice.
        let w = watcher(
            1,
            KeyRange::prefix("k"),
            false,
            vec![(
                2,
                vec![resp(vec![put("ka", "1", 2)]), resp(vec![put("ka", "1", 2)])],
            )],
        );
        assert!(!check_watcher(&w, &r, &BTreeSet::new(), &mut stats).is_empty());
        // Progress at 3 before revision 3's events.
        let w = watcher(
            1,
            KeyRange::prefix("k"),
            false,
            vec![(2, vec![resp(vec![put("ka", "1", 2)]), progress(3)])],
        );
        assert!(!check_watcher(&w, &r, &BTreeSet::new(), &mut stats).is_empty());
        // Resumed at the wrong revision: the next session must start at 3.
        let w = watcher(
            1,
            KeyRange::prefix("k"),
            false,
            vec![(2, vec![resp(vec![put("ka", "1", 2)])]), (4, vec![])],
        );
        assert!(!check_watcher(&w, &r, &BTreeSet::new(), &mut stats).is_empty());
        // A wrong value.
        let w = watcher(
            1,
            KeyRange::single("ka"),
            false,
            vec![(2, vec![resp(vec![put("ka", "9", 2)])])],
        );
        assert!(!check_watcher(&w, &r, &BTreeSet::new(), &mut stats).is_empty());
    }

    #[test]
    fn a_session_from_a_compacted_revision_may_miss_its_tombstones_only() {
        let del = |key: &str, rev: i64| Event {
            delete: true,
            ..put(key, "", rev)
        };
        let reference = watcher(
            0,
            KeyRange::prefix("k"),
            true,
            vec![(
                1,
                vec![
                    resp(vec![put("ka", "1", 2)]),
                    resp(vec![del("ka", 3)]),
                    resp(vec![put("kb", "2", 4)]),
                ],
            )],
        );
        let (r, errs) = Reference::build(&[reference]);
        assert!(errs.is_empty(), "{errs:?}");
        let from_3 = watcher(
            1,
            KeyRange::prefix("k"),
            false,
            vec![(3, vec![resp(vec![put("kb", "2", 4)])])],
        );
        let mut stats = WatchStats::default();
        // Revision 3 (a delete) compacted: its tombstone is gone, as in etcd.
        let compacted: BTreeSet<i64> = [3].into();
        assert!(check_watcher(&from_3, &r, &compacted, &mut stats).is_empty());
        // Not compacted: the delete must be delivered.
        assert!(!check_watcher(&from_3, &r, &BTreeSet::new(), &mut stats).is_empty());
        // A put at the compacted start revision is kept and must be delivered.
        let from_2 = watcher(
            1,
            KeyRange::prefix("k"),
            false,
            vec![(2, vec![resp(vec![put("kb", "2", 4)])])],
        );
        let compacted: BTreeSet<i64> = [2].into();
        assert!(!check_watcher(&from_2, &r, &compacted, &mut stats).is_empty());
        // A session from a compacted revision without events in the range that delivers
        // nothing is resumed at the same revision.
        let nothing = watcher(
            1,
            KeyRange::single("kb"),
            false,
            vec![(3, vec![]), (3, vec![resp(vec![put("kb", "2", 4)])])],
        );
        let compacted: BTreeSet<i64> = [3].into();
        let errs = check_watcher(&nothing, &r, &compacted, &mut stats);
        assert!(errs.is_empty(), "{errs:?}");
    }

    #[test]
    fn disagreeing_reference_watchers_are_rejected() {
        let a = reference();
        let mut b = reference();
        b.id = 1;
        b.sessions[1].responses[0].events[0].kv.value = "other".into();
        let (_, errs) = Reference::build(&[a, b]);
        assert!(errs.iter().any(|e| e.contains("disagree")), "{errs:?}");
    }
}

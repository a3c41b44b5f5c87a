//! The v2 store against etcd 3.4's `v2store` semantics: every error path, TTLs with explicit
//! times, in-order keys, CAS/CAD, hidden keys, the event history and watchers, snapshots,
//! and `apply` of replicated requests.

use chorus_server::v2::{apply, ecode, sync_request, Action, Event, Method, V2Request, V2Store};

const SEC: i64 = 1_000_000_000;
/// 2026-11-25T11:30:26Z, unix nanoseconds.
const T0: i64 = 1_795_606_226 * SEC;

fn k(key: &str) -> String {
    format!("/1{key}")
}

fn json(e: &Event) -> String {
    e.to_json("/1")
}

fn set(s: &mut V2Store, key: &str, value: &str) -> Event {
    s.set(&k(key), false, value, None, false, T0).expect("set")
}

fn err_code<T: std::fmt::Debug>(r: Result<T, chorus_server::v2::V2Error>) -> (u32, String, u64) {
    let e = r.expect_err("an error");
    (e.code, e.cause, e.index)
}

#[test]
fn set_get_and_replace() {
    let mut s = V2Store::new();
    let e = set(&mut s, "/message", "Hello world");
    assert!(e.is_created());
    assert_eq!(e.etcd_index, 1);
    assert_eq!(
        json(&e),
        r#"{"action":"set","node":{"key":"/message","value":"Hello world","modifiedIndex":1,"createdIndex":1}}"#
    );
    let e = set(&mut s, "/message", "Hello etcd");
    assert!(!e.is_created());
    assert_eq!(
        json(&e),
        r#"{"action":"set","node":{"key":"/message","value":"Hello etcd","modifiedIndex":2,"createdIndex":2},"prevNode":{"key":"/message","value":"Hello world","modifiedIndex":1,"createdIndex":1}}"#
    );
    let g = s.get(&k("/message"), false, false, T0).unwrap();
    assert_eq!(g.action, Action::Get);
    assert_eq!(g.etcd_index, 2);
    assert_eq!(
        json(&g),
        r#"{"action":"get","node":{"key":"/message","value":"Hello etcd","modifiedIndex":2,"createdIndex":2}}"#
    );
    assert_eq!(s.index(), 2);
}

#[test]
fn error_paths_have_etcd_codes_causes_and_indexes() {
    let mut s = V2Store::new();
    set(&mut s, "/a/b", "x");
    s.set(&k("/dir"), true, "", None, false, T0).unwrap();
    // 100: missing key, named by the first missing path element.
    assert_eq!(
        err_code(s.get(&k("/nope/deeper"), false, false, T0)),
        (100, k("/nope"), 2)
    );
    // 104: a file on the way.
    assert_eq!(
        err_code(s.get(&k("/a/b/c"), false, false, T0)),
        (104, k("/a/b"), 2)
    );
    assert_eq!(
        err_code(s.set(&k("/a/b/c/d"), false, "x", None, false, T0)),
        (104, k("/a/b"), 2)
    );
    assert_eq!(
        err_code(s.create(&k("/a/b"), false, "y", true, None, T0)),
        (104, k("/a/b"), 2)
    );
    // 102: a directory where a file is needed.
    assert_eq!(
        err_code(s.set(&k("/a"), false, "x", None, false, T0)),
        (102, k("/a"), 2)
    );
    assert_eq!(
        err_code(s.set(&k("/dir"), true, "", None, false, T0)),
        (102, k("/dir"), 2)
    );
    assert_eq!(
        err_code(s.compare_and_swap(&k("/a"), "x", 0, "y", None, false, T0)),
        (102, k("/a"), 2)
    );
    assert_eq!(
        err_code(s.compare_and_delete(&k("/a"), "", 5, T0)),
        (102, k("/a"), 2)
    );
    assert_eq!(
        err_code(s.update(&k("/dir"), "v", None, false, T0)),
        (102, k("/dir"), 2)
    );
    assert_eq!(
        err_code(s.delete(&k("/a"), false, false, T0)),
        (102, k("/a"), 2)
    );
    // 108: a non-empty directory without recursive.
    assert_eq!(
        err_code(s.delete(&k("/a"), true, false, T0)),
        (108, k("/a"), 2)
    );
    // 105: create over an existing node.
    assert_eq!(
        err_code(s.create(&k("/a/b"), false, "x", false, None, T0)),
        (105, k("/a/b"), 2)
    );
    assert_eq!(
        err_code(s.create(&k("/dir"), true, "", false, None, T0)),
        (105, k("/dir"), 2)
    );
    // 107: the roots are read-only, whatever the operation.
    for root in ["/", "/1", "/0", "/1/"] {
        assert_eq!(
            err_code(s.set(root, false, "x", None, false, T0)),
            (107, "/".into(), 2)
        );
        assert_eq!(
            err_code(s.delete(root, true, true, T0)),
            (107, "/".into(), 2)
        );
        assert_eq!(
            err_code(s.update(root, "", None, false, T0)),
            (107, "/".into(), 2)
        );
        assert_eq!(
            err_code(s.compare_and_swap(root, "x", 0, "y", None, false, T0)),
            (107, "/".into(), 2)
        );
    }
    // etcd checks no read-only root on compare-and-delete: the root is a directory.
    assert_eq!(
        err_code(s.compare_and_delete("/1", "x", 0, T0)),
        (102, "/1".into(), 2)
    );
    // 100 from update/CAS/CAD/delete of a missing key.
    assert_eq!(
        err_code(s.update(&k("/zz"), "v", None, false, T0)).0,
        ecode::KEY_NOT_FOUND
    );
    assert_eq!(
        err_code(s.compare_and_swap(&k("/zz"), "v", 0, "w", None, false, T0)).0,
        100
    );
    assert_eq!(err_code(s.compare_and_delete(&k("/zz"), "v", 0, T0)).0, 100);
    assert_eq!(err_code(s.delete(&k("/zz"), false, false, T0)).0, 100);
    // Refresh of a missing key is 100 too (set refuses to create on refresh).
    assert_eq!(
        err_code(s.set(&k("/zz"), false, "", Some(T0 + SEC), true, T0)).0,
        100
    );
    // Nothing was half-applied.
    assert_eq!(s.index(), 2);
    assert_eq!(
        json(&s.get("/1", true, true, T0).unwrap()),
        r#"{"action":"get","node":{"dir":true,"nodes":[{"key":"/a","dir":true,"nodes":[{"key":"/a/b","value":"x","modifiedIndex":1,"createdIndex":1}],"modifiedIndex":1,"createdIndex":1},{"key":"/dir","dir":true,"modifiedIndex":2,"createdIndex":2}]}}"#
    );
}

#[test]
fn compare_and_swap_and_delete() {
    let mut s = V2Store::new();
    set(&mut s, "/foo", "one"); // 1
    let fail = |r| err_code(r);
    assert_eq!(
        fail(s.compare_and_swap(&k("/foo"), "two", 0, "x", None, false, T0)),
        (101, "[two != one]".into(), 1)
    );
    assert_eq!(
        fail(s.compare_and_swap(&k("/foo"), "", 7, "x", None, false, T0)),
        (101, "[7 != 1]".into(), 1)
    );
    assert_eq!(
        fail(s.compare_and_swap(&k("/foo"), "two", 7, "x", None, false, T0)),
        (101, "[two != one] [7 != 1]".into(), 1)
    );
    let e = s
        .compare_and_swap(&k("/foo"), "one", 1, "two", None, false, T0)
        .unwrap();
    assert_eq!(
        json(&e),
        r#"{"action":"compareAndSwap","node":{"key":"/foo","value":"two","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/foo","value":"one","modifiedIndex":1,"createdIndex":1}}"#
    );
    assert_eq!(
        fail(s.compare_and_delete(&k("/foo"), "one", 0, T0)),
        (101, "[one != two]".into(), 2)
    );
    assert_eq!(
        fail(s.compare_and_delete(&k("/foo"), "", 1, T0)),
        (101, "[1 != 2]".into(), 2)
    );
    let e = s.compare_and_delete(&k("/foo"), "two", 2, T0).unwrap();
    assert_eq!(
        json(&e),
        r#"{"action":"compareAndDelete","node":{"key":"/foo","modifiedIndex":3,"createdIndex":1},"prevNode":{"key":"/foo","value":"two","modifiedIndex":2,"createdIndex":1}}"#
    );
    assert_eq!(err_code(s.get(&k("/foo"), false, false, T0)).0, 100);
    // A refreshing CAS keeps the value and only moves the expiration.
    set(&mut s, "/lock", "owner"); // 4
    let e = s
        .compare_and_swap(&k("/lock"), "owner", 0, "", Some(T0 + 10 * SEC), true, T0)
        .unwrap();
    assert!(e.refresh);
    assert_eq!(e.node.as_ref().unwrap().value.as_deref(), Some("owner"));
    assert_eq!(e.node.as_ref().unwrap().ttl, 10);
}

#[test]
fn in_order_keys_are_zero_padded_indexes() {
    let mut s = V2Store::new();
    let a = s
        .create(&k("/queue"), false, "Job1", true, None, T0)
        .unwrap();
    let b = s
        .create(&k("/queue"), false, "Job2", true, None, T0)
        .unwrap();
    assert_eq!(
        a.node.as_ref().unwrap().key,
        "/1/queue/00000000000000000001"
    );
    assert_eq!(
        b.node.as_ref().unwrap().key,
        "/1/queue/00000000000000000002"
    );
    assert!(a.is_created());
    // The directory appeared with the first item, at its index.
    assert_eq!(
        json(&s.get(&k("/queue"), true, true, T0).unwrap()),
        r#"{"action":"get","node":{"key":"/queue","dir":true,"nodes":[{"key":"/queue/00000000000000000001","value":"Job1","modifiedIndex":1,"createdIndex":1},{"key":"/queue/00000000000000000002","value":"Job2","modifiedIndex":2,"createdIndex":2}],"modifiedIndex":1,"createdIndex":1}}"#
    );
    // In-order directories too, and the name follows the index across other writes.
    set(&mut s, "/other", "x"); // 3
    let d = s.create(&k("/queue"), true, "", true, None, T0).unwrap();
    assert_eq!(
        json(&d),
        r#"{"action":"create","node":{"key":"/queue/00000000000000000004","dir":true,"modifiedIndex":4,"createdIndex":4}}"#
    );
}

#[test]
fn listings_hide_underscore_names_and_sort() {
    let mut s = V2Store::new();
    set(&mut s, "/d/zeta", "z");
    set(&mut s, "/d/_hidden", "h");
    set(&mut s, "/d/alpha", "a");
    set(&mut s, "/d/sub/leaf", "l");
    set(&mut s, "/d/sub/_leaf", "l");
    let listing = json(&s.get(&k("/d"), false, true, T0).unwrap());
    assert_eq!(
        listing,
        r#"{"action":"get","node":{"key":"/d","dir":true,"nodes":[{"key":"/d/alpha","value":"a","modifiedIndex":3,"createdIndex":3},{"key":"/d/sub","dir":true,"modifiedIndex":4,"createdIndex":4},{"key":"/d/zeta","value":"z","modifiedIndex":1,"createdIndex":1}],"modifiedIndex":1,"createdIndex":1}}"#
    );
    let recursive = json(&s.get(&k("/d"), true, true, T0).unwrap());
    assert!(recursive.contains(r#"{"key":"/d/sub","dir":true,"nodes":[{"key":"/d/sub/leaf","value":"l","modifiedIndex":4,"createdIndex":4}],"modifiedIndex":4,"createdIndex":4}"#));
    assert!(!recursive.contains("_"));
    // A hidden node is readable by name.
    assert_eq!(
        s.get(&k("/d/_hidden"), false, false, T0)
            .unwrap()
            .node
            .unwrap()
            .value
            .as_deref(),
        Some("h")
    );
}

#[test]
fn deletes_of_files_and_directories() {
    let mut s = V2Store::new();
    s.set(&k("/empty"), true, "", None, false, T0).unwrap(); // 1
    set(&mut s, "/tree/a/b", "1"); // 2
    set(&mut s, "/tree/c", "2"); // 3
    let e = s.delete(&k("/empty"), true, false, T0).unwrap();
    assert_eq!(
        json(&e),
        r#"{"action":"delete","node":{"key":"/empty","dir":true,"modifiedIndex":4,"createdIndex":1},"prevNode":{"key":"/empty","dir":true,"modifiedIndex":1,"createdIndex":1}}"#
    );
    // recursive implies dir.
    let e = s.delete(&k("/tree"), false, true, T0).unwrap();
    assert_eq!(e.etcd_index, 5);
    assert_eq!(err_code(s.get(&k("/tree/a/b"), false, false, T0)).0, 100);
    assert_eq!(s.index(), 5);
}

#[test]
fn ttls_expire_at_explicit_times() {
    let mut s = V2Store::new();
    let e = s
        .set(&k("/foo"), false, "bar", Some(T0 + 5 * SEC), false, T0)
        .unwrap();
    assert_eq!(
        json(&e),
        r#"{"action":"set","node":{"key":"/foo","value":"bar","expiration":"2026-11-25T11:30:31Z","ttl":5,"modifiedIndex":1,"createdIndex":1}}"#
    );
    // The ttl shown is the time left, rounded up.
    let g = s.get(&k("/foo"), false, false, T0 + 1_500_000_000).unwrap();
    assert_eq!(g.node.unwrap().ttl, 4);
    assert!(s.has_ttl_keys());
    assert!(s.delete_expired_keys(T0 + 5 * SEC - 1).is_empty());
    let expired = s.delete_expired_keys(T0 + 5 * SEC);
    assert_eq!(expired.len(), 1);
    assert_eq!(
        json(&expired[0]),
        r#"{"action":"expire","node":{"key":"/foo","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/foo","value":"bar","expiration":"2026-11-25T11:30:31Z","modifiedIndex":1,"createdIndex":1}}"#
    );
    assert!(!s.has_ttl_keys());
    assert_eq!(err_code(s.get(&k("/foo"), false, false, T0)).0, 100);

    // Soonest first, one index each; a directory takes its children with it.
    s.set(&k("/d"), true, "", Some(T0 + 2 * SEC), false, T0)
        .unwrap(); // 3
    s.set(&k("/d/child"), false, "c", Some(T0 + 9 * SEC), false, T0)
        .unwrap(); // 4
    s.set(&k("/late"), false, "l", Some(T0 + 3 * SEC), false, T0)
        .unwrap(); // 5
    let expired = s.delete_expired_keys(T0 + 10 * SEC);
    let keys: Vec<_> = expired
        .iter()
        .map(|e| (e.node.as_ref().unwrap().key.clone(), e.etcd_index))
        .collect();
    assert_eq!(keys, vec![(k("/d"), 6), (k("/late"), 7)]);
    assert!(expired[0].node.as_ref().unwrap().dir);
    assert!(!s.has_ttl_keys());

    // `ttl=` (no expiration) on update makes a key permanent; pre-2000 expirations on
    // create mean permanent too.
    s.set(&k("/t"), false, "v", Some(T0 + SEC), false, T0)
        .unwrap();
    let e = s.update(&k("/t"), "", None, false, T0).unwrap();
    assert_eq!(e.node.as_ref().unwrap().expiration, None);
    assert!(!s.has_ttl_keys());
    let e = s.set(&k("/old"), false, "v", Some(1), false, T0).unwrap();
    assert_eq!(e.node.unwrap().expiration, None);
    assert!(!s.has_ttl_keys());
}

#[test]
fn refresh_keeps_value_and_is_not_announced() {
    let mut s = V2Store::new();
    s.set(&k("/svc"), false, "10.0.0.1", Some(T0 + 2 * SEC), false, T0)
        .unwrap(); // 1
    let mut w = s.watch(&k("/svc"), false, true, 0).unwrap();
    let e = s
        .update(&k("/svc"), "", Some(T0 + 30 * SEC), true, T0)
        .unwrap(); // 2
    assert_eq!(e.action, Action::Update);
    assert_eq!(e.node.as_ref().unwrap().value.as_deref(), Some("10.0.0.1"));
    assert_eq!(e.node.as_ref().unwrap().ttl, 30);
    // set with refresh replaces the node (new createdIndex), keeping the value.
    let e = s
        .set(&k("/svc"), false, "", Some(T0 + 30 * SEC), true, T0)
        .unwrap(); // 3
    assert_eq!(e.node.as_ref().unwrap().created_index, 3);
    assert_eq!(e.node.as_ref().unwrap().value.as_deref(), Some("10.0.0.1"));
    assert!(w.try_recv().is_none(), "refreshes do not reach watchers");
    // The refresh survived the old deadline.
    assert!(s.delete_expired_keys(T0 + 3 * SEC).is_empty());
    set(&mut s, "/svc", "10.0.0.2"); // 4
    assert_eq!(w.try_recv().unwrap().index(), 4);
    // History scans skip refreshes.
    let mut w = s.watch(&k("/svc"), false, false, 2).unwrap();
    assert_eq!(w.try_recv().unwrap().index(), 4);
}

#[test]
fn update_of_a_directory_keeps_its_modified_index() {
    // etcd's node.Write fails on directories, so an update changes only the TTL.
    let mut s = V2Store::new();
    s.set(&k("/d"), true, "", None, false, T0).unwrap(); // 1
    let e = s
        .update(&k("/d"), "", Some(T0 + 100 * SEC), false, T0)
        .unwrap(); // 2
    assert_eq!(
        json(&e),
        r#"{"action":"update","node":{"key":"/d","dir":true,"expiration":"2026-11-25T11:32:06Z","ttl":100,"modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/d","dir":true,"modifiedIndex":1,"createdIndex":1}}"#
    );
    let g = s.get(&k("/d"), false, false, T0).unwrap();
    assert_eq!(g.node.unwrap().modified_index, 1);
}

#[test]
fn history_keeps_1000_events_then_answers_401() {
    let mut s = V2Store::new();
    for i in 0..1005 {
        set(&mut s, "/load", &i.to_string());
    }
    // Events 6..=1005 remain.
    let e = s.watch(&k("/load"), false, false, 5).err().unwrap();
    assert_eq!(e.code, ecode::EVENT_INDEX_CLEARED);
    assert_eq!(e.status(), http::StatusCode::BAD_REQUEST);
    assert_eq!(
        e.to_json(),
        r#"{"errorCode":401,"message":"The event in requested index is outdated and cleared","cause":"the requested history has been cleared [6/5]","index":1005}"#
    );
    let mut w = s.watch(&k("/load"), false, false, 6).unwrap();
    let ev = w.try_recv().unwrap();
    assert_eq!(ev.index(), 6);
    assert_eq!(ev.etcd_index, 1005);
    assert_eq!(w.start_index(), 1005);
    // In the future: registered, nothing yet.
    let mut w = s.watch(&k("/load"), false, false, 2000).unwrap();
    assert!(w.try_recv().is_none());
    assert_eq!(s.watcher_count(), 1);
}

#[test]
fn watchers_see_what_etcd_watchers_see() {
    let mut s = V2Store::new();
    set(&mut s, "/cfg/a", "0"); // 1
    let mut plain = s.watch(&k("/cfg"), false, false, 0).unwrap();
    let mut rec = s.watch(&k("/cfg"), true, false, 0).unwrap();
    let mut stream = s.watch(&k("/cfg"), true, true, 0).unwrap();
    let mut leaf = s.watch(&k("/cfg/a"), false, false, 0).unwrap();
    assert_eq!(s.watcher_count(), 4);

    set(&mut s, "/cfg/_hidden", "h"); // 2: hidden from watchers above it
    set(&mut s, "/cfg/b", "1"); // 3
    assert!(
        plain.try_recv().is_none(),
        "a child change does not reach a plain watcher"
    );
    assert_eq!(rec.try_recv().unwrap().index(), 3);
    assert_eq!(stream.try_recv().unwrap().index(), 3);
    // One-shot watchers are gone after firing; the stream stays.
    assert_eq!(s.watcher_count(), 3);

    // Deleting the directory reaches every watcher under it, recursive or not.
    s.delete(&k("/cfg"), true, true, T0).unwrap(); // 4
    let e = plain.try_recv().unwrap();
    assert_eq!((e.action, e.index()), (Action::Delete, 4));
    assert_eq!(leaf.try_recv().unwrap().index(), 4);
    // etcd tells a stream watcher on the directory twice: once as a deleted path and once
    // as an ancestor of the event's key.
    assert_eq!(stream.try_recv().unwrap().index(), 4);
    assert_eq!(stream.try_recv().unwrap().index(), 4);
    assert!(stream.try_recv().is_none());
    assert_eq!(s.watcher_count(), 1);
    drop(stream);
    assert_eq!(s.watcher_count(), 0);

    // A watcher on a hidden key itself does see it.
    let mut hidden = s.watch(&k("/x/_h"), false, false, 0).unwrap();
    set(&mut s, "/x/_h", "v"); // 5
    assert_eq!(hidden.try_recv().unwrap().index(), 5);
}

#[test]
fn expire_events_reach_watchers() {
    let mut s = V2Store::new();
    s.set(
        &k("/svc/n1"),
        false,
        "10.0.0.1",
        Some(T0 + 2 * SEC),
        false,
        T0,
    )
    .unwrap(); // 1
    let mut w = s.watch(&k("/svc"), true, false, 0).unwrap();
    let mut exact = s.watch(&k("/svc/n1"), false, false, 0).unwrap();
    s.delete_expired_keys(T0 + 3 * SEC);
    let e = w.try_recv().unwrap();
    assert_eq!(
        e.to_json("/1"),
        r#"{"action":"expire","node":{"key":"/svc/n1","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/svc/n1","value":"10.0.0.1","expiration":"2026-11-25T11:30:28Z","ttl":-1,"modifiedIndex":1,"createdIndex":1}}"#
    );
    assert_eq!(exact.try_recv().unwrap().action, Action::Expire);
    // And the history has it for late watchers.
    let mut late = s.watch(&k("/svc/n1"), false, false, 2).unwrap();
    assert_eq!(late.try_recv().unwrap().action, Action::Expire);
}

#[tokio::test]
async fn a_slow_watcher_is_dropped_after_100_events() {
    let mut s = V2Store::new();
    let mut w = s.watch(&k("/q"), true, true, 0).unwrap();
    for i in 0..101 {
        set(&mut s, &format!("/q/{i}"), "v");
    }
    assert_eq!(s.watcher_count(), 0);
    let mut got = 0;
    while w.recv().await.is_some() {
        got += 1;
    }
    assert_eq!(got, 100, "the buffered events, then the end");
}

#[test]
fn save_and_recover_round_trip() {
    let mut s = V2Store::new();
    set(&mut s, "/a/b", "1");
    s.set(&k("/ttl"), false, "t", Some(T0 + 5 * SEC), false, T0)
        .unwrap();
    s.create(&k("/q"), false, "job", true, None, T0).unwrap();
    set(&mut s, "/a/_h", "hidden");
    s.delete(&k("/a/b"), false, false, T0).unwrap();
    let data = s.save();

    let mut r = V2Store::new();
    let mut w = r.watch(&k("/a"), true, false, 0).unwrap();
    r.recover(&data).unwrap();
    assert_eq!(r.index(), s.index());
    for key in [
        "/",
        "/1",
        "/0",
        "/1/a",
        "/1/ttl",
        "/1/q/00000000000000000003",
        "/1/a/_h",
    ] {
        assert_eq!(
            r.get(key, true, true, T0).map(|e| json(&e)),
            s.get(key, true, true, T0).map(|e| json(&e)),
            "{key}"
        );
    }
    assert_eq!(r.save(), data, "the encoding is stable");
    // The TTL index was rebuilt.
    assert!(r.has_ttl_keys());
    assert_eq!(r.delete_expired_keys(T0 + 5 * SEC).len(), 1);
    // The history came along.
    let mut h = r.watch(&k("/a/b"), false, false, 1).unwrap();
    assert_eq!(h.try_recv().unwrap().index(), 1);
    // Watchers registered before recovery stay.
    set(&mut r, "/a/c", "new");
    assert_eq!(w.try_recv().unwrap().node.as_ref().unwrap().key, k("/a/c"));

    assert!(r.recover(b"not json").is_err());
    assert_eq!(
        r.index(),
        s.index() + 2,
        "a failed recovery changes nothing"
    );
}

#[test]
fn deep_trees_do_not_recurse() {
    let mut s = V2Store::new();
    let deep: String = "/d".repeat(5_000);
    set(&mut s, &format!("{deep}/leaf"), "v");
    let listing = s.get("/1", true, false, T0).unwrap();
    assert!(json(&listing).ends_with("}]}}"));
    drop(listing);
    let data = s.save();
    let mut r = V2Store::new();
    r.recover(&data).unwrap();
    r.delete(&k("/d"), true, true, T0).unwrap();
    assert_eq!(
        err_code(r.get(&k(&format!("{deep}/leaf")), false, false, T0)).1,
        k("/d")
    );
}

fn req(method: Method, path: &str) -> V2Request {
    V2Request {
        method: method as i32,
        path: k(path),
        time: T0,
        ..Default::default()
    }
}

#[test]
fn apply_dispatches_like_etcd_apply_v2() {
    let mut s = V2Store::new();
    let put = |val: &str| V2Request {
        val: val.into(),
        ..req(Method::Put, "/lock")
    };
    let action = |s: &mut V2Store, r: &V2Request| apply(s, r).map(|e| e.unwrap().action);
    // prevExist=false: create.
    let r = V2Request {
        prev_exist: Some(false),
        expiration: T0 + 10 * SEC,
        ..put("owner1")
    };
    assert_eq!(action(&mut s, &r), Ok(Action::Create));
    assert_eq!(action(&mut s, &r).unwrap_err().code, ecode::NODE_EXIST);
    // prevExist=true: update; with a condition: compareAndSwap.
    let r = V2Request {
        prev_exist: Some(true),
        ..put("owner1")
    };
    assert_eq!(action(&mut s, &r), Ok(Action::Update));
    let r = V2Request {
        prev_exist: Some(true),
        prev_value: "owner1".into(),
        ..put("owner2")
    };
    assert_eq!(action(&mut s, &r), Ok(Action::CompareAndSwap));
    let r = V2Request {
        prev_index: 3,
        ..put("owner3")
    };
    assert_eq!(action(&mut s, &r), Ok(Action::CompareAndSwap));
    assert_eq!(action(&mut s, &put("plain")), Ok(Action::Set));
    // DELETE with a condition is compareAndDelete.
    let r = V2Request {
        prev_value: "nope".into(),
        ..req(Method::Delete, "/lock")
    };
    assert_eq!(action(&mut s, &r).unwrap_err().code, ecode::TEST_FAILED);
    let r = V2Request {
        prev_value: "plain".into(),
        ..req(Method::Delete, "/lock")
    };
    assert_eq!(action(&mut s, &r), Ok(Action::CompareAndDelete));
    // POST: in-order create; QGET: get.
    let r = V2Request {
        val: "job".into(),
        ..req(Method::Post, "/queue")
    };
    let e = apply(&mut s, &r).unwrap().unwrap();
    assert_eq!(e.node.unwrap().key, "/1/queue/00000000000000000007");
    let r = V2Request {
        recursive: true,
        ..req(Method::Qget, "/queue")
    };
    assert_eq!(action(&mut s, &r), Ok(Action::Get));
    let r = V2Request {
        dir: true,
        recursive: true,
        ..req(Method::Delete, "/queue")
    };
    assert_eq!(action(&mut s, &r), Ok(Action::Delete));
    // SYNC expires by the proposer's time and has no single result.
    let r = V2Request {
        expiration: T0 + SEC,
        ..put("short")
    };
    apply(&mut s, &r).unwrap();
    let sync = V2Request {
        time: T0 + SEC,
        ..sync_request(std::time::SystemTime::UNIX_EPOCH)
    };
    assert_eq!(apply(&mut s, &sync), Ok(None));
    assert!(!s.has_ttl_keys());
    assert_eq!(
        apply(&mut s, &V2Request::default()).unwrap_err().code,
        ecode::RAFT_INTERNAL
    );
}

/// etcd 3.4 counts some refusals as successes in `/v2/stats/store` (its deferred counter
/// reads an `err` those returns never set); chorus's counters read the same.
#[test]
fn stats_count_refusals_as_etcd_does() {
    let mut s = V2Store::new();
    set(&mut s, "/f", "one");
    s.set(&k("/dir"), true, "", None, false, T0).unwrap();
    let before: serde_json::Value = serde_json::from_str(&s.stats_json()).unwrap();
    // Counted as successes by etcd.
    err_code(s.update(&k(""), "x", None, false, T0));
    err_code(s.update(&k("/dir"), "x", None, false, T0));
    err_code(s.delete(&k(""), true, false, T0));
    err_code(s.compare_and_swap(&k(""), "x", 0, "y", None, false, T0));
    err_code(s.compare_and_delete(&k("/dir"), "x", 0, T0));
    err_code(s.compare_and_delete(&k("/f"), "wrong", 0, T0));
    // Counted as failures.
    err_code(s.update(&k("/none"), "x", None, false, T0));
    err_code(s.delete(&k("/dir"), false, false, T0));
    err_code(s.compare_and_swap(&k("/f"), "wrong", 0, "y", None, false, T0));
    err_code(s.compare_and_swap(&k("/dir"), "x", 0, "y", None, false, T0));
    err_code(s.compare_and_delete(&k("/none"), "x", 0, T0));
    let after: serde_json::Value = serde_json::from_str(&s.stats_json()).unwrap();
    let delta = |name: &str| after[name].as_i64().unwrap() - before[name].as_i64().unwrap();
    let got: Vec<(&str, i64)> = [
        "updateSuccess",
        "updateFail",
        "deleteSuccess",
        "deleteFail",
        "compareAndSwapSuccess",
        "compareAndSwapFail",
        "compareAndDeleteSuccess",
        "compareAndDeleteFail",
    ]
    .into_iter()
    .map(|name| (name, delta(name)))
    .collect();
    assert_eq!(
        got,
        [
            ("updateSuccess", 2),
            ("updateFail", 1),
            ("deleteSuccess", 1),
            ("deleteFail", 1),
            ("compareAndSwapSuccess", 1),
            ("compareAndSwapFail", 2),
            ("compareAndDeleteSuccess", 2),
            ("compareAndDeleteFail", 1),
        ]
    );
}

//! The client crate's coordination recipes (`chorus_client::recipes`) against a 3-member
//! chorus cluster, each with many concurrent clients spread over the members: mutual
//! exclusion and fencing tokens, readers-writer exclusion, elections and observers,
//! barriers, FIFO, priority and condition-gated queues; and the recipe mutex against the
//! real `etcdctl lock` on the same name.
//!
//! Exclusion is checked twice: in the store (a counter read-modify-written without a
//! compare-and-swap loses increments unless the lock excludes) and in this process (a
//! flag set inside the critical section). Queue order is checked by revisions: sorted by
//! the revision of the delete that took them, items must come in create-revision order.
//! `CHORUS_TEST_SERVER=etcd` runs the same tests against the real etcd.

use crate::common;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chorus_client::recipes::{
    Barrier, DoubleBarrier, Election, GatedQueue, Mutex, PriorityQueue, Queue, QueueItem,
    RecipeError, RwMutex, Session,
};
use chorus_client::{Client, ConnectOptions, GetOptions, Op, PutOptions, Txn};
use common::{Cluster, Etcdctl, ServerKind};
use tokio::task::JoinSet;

/// Bound on any one test's waiting.
const DEADLINE: Duration = Duration::from_secs(60);

async fn cluster() -> Cluster {
    let kind = ServerKind::from_env();
    if kind == ServerKind::Etcd {
        assert!(common::require_etcd(), "CHORUS_TEST_SERVER=etcd needs etcd");
    }
    Cluster::start(kind, 3).await
}

/// Client number `i`: every endpoint, starting with member `i % 3`, so that concurrent
/// clients are spread over the members (and still fail over).
async fn client(cluster: &Cluster, i: usize) -> Client {
    let mut endpoints = cluster.endpoints();
    let first = i % endpoints.len();
    endpoints.rotate_left(first);
    Client::connect(&endpoints, ConnectOptions::default())
        .await
        .expect("client")
}

async fn session(cluster: &Cluster, i: usize, ttl: i64) -> Session {
    Session::new(&client(cluster, i).await, ttl)
        .await
        .expect("session")
}

/// Runs every task of `set` to completion within the deadline, returning their results.
async fn join_all<T: 'static>(mut set: JoinSet<T>) -> Vec<T> {
    let mut out = Vec::new();
    let all = async {
        while let Some(r) = set.join_next().await {
            out.push(r.expect("task panicked"));
        }
    };
    tokio::time::timeout(DEADLINE, all)
        .await
        .expect("tasks did not finish within the deadline");
    out
}

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: not within {DEADLINE:?}"))
}

async fn read_i64(c: &Client, key: &str) -> i64 {
    let resp = c.get(key, GetOptions::default()).await.unwrap();
    resp.kvs
        .first()
        .map(|kv| String::from_utf8_lossy(&kv.value).parse().unwrap())
        .unwrap_or(0)
}

async fn count(c: &Client, prefix: &str) -> i64 {
    let opts = GetOptions {
        prefix: true,
        count_only: true,
        ..Default::default()
    };
    c.get(prefix, opts).await.unwrap().count
}

/// Polls (bounded) until `prefix` holds `n` keys.
async fn wait_keys(c: &Client, prefix: &str, n: i64) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while count(c, prefix).await != n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{prefix}: never {n} keys"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mutex_excludes_and_fencing_tokens_grow() {
    const TASKS: usize = 12;
    const ROUNDS: i64 = 5;
    let cluster = cluster().await;
    let inside = Arc::new(AtomicBool::new(false));
    let mut set = JoinSet::new();
    for i in 0..TASKS {
        let s = session(&cluster, i, 10).await;
        let inside = inside.clone();
        set.spawn(async move {
            let c = s.client().clone();
            let mut m = Mutex::new(&s, "/locks/counter");
            let mut holds = Vec::new();
            for _ in 0..ROUNDS {
                let token = m.lock().await.unwrap();
                assert_eq!(token, m.fencing_token());
                assert!(!inside.swap(true, Ordering::SeqCst), "two holders at once");
                // Read-modify-write without a compare: only the lock keeps it exact.
                let n = read_i64(&c, "/counter").await;
                c.put("/counter", (n + 1).to_string(), PutOptions::default())
                    .await
                    .unwrap();
                holds.push((n, token));
                inside.store(false, Ordering::SeqCst);
                m.unlock().await.unwrap();
            }
            s.close().await.unwrap();
            holds
        });
    }
    let mut holds: Vec<(i64, i64)> = join_all(set).await.into_iter().flatten().collect();
    let c = cluster.client().await;
    assert_eq!(read_i64(&c, "/counter").await, TASKS as i64 * ROUNDS);
    // In holder order (the counter value each one saw), tokens strictly increase.
    holds.sort();
    let seen: Vec<i64> = holds.iter().map(|h| h.0).collect();
    assert_eq!(seen, (0..TASKS as i64 * ROUNDS).collect::<Vec<_>>());
    for w in holds.windows(2) {
        assert!(w[0].1 < w[1].1, "fencing tokens not increasing: {w:?}");
    }
    assert_eq!(count(&c, "/locks/counter/").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mutex_passes_on_when_the_holders_lease_expires_and_fencing_rejects_the_old_holder() {
    let cluster = cluster().await;
    let a = session(&cluster, 0, 2).await;
    let b = session(&cluster, 1, 10).await;
    let mut ma = Mutex::new(&a, "lk");
    let mut mb = Mutex::new(&b, "lk");
    let ta = ma.lock().await.unwrap();
    assert!(matches!(mb.try_lock().await, Err(RecipeError::Locked)));
    let waiter = tokio::spawn(async move {
        let token = mb.lock().await.unwrap();
        (mb, token)
    });
    // `a` stalls: its keep-alives stop, as in a long pause or a partition.
    a.orphan();
    within("session a ends", a.done()).await;
    let (mb, tb) = within("b takes over", waiter).await.unwrap();
    assert!(tb > ta, "token {tb} of the new holder not above {ta}");
    // `a` still "holds" in its own view; a write guarded by ownership is refused...
    let c = cluster.client().await;
    let stale = Txn::new().when([ma.is_owner()]).and_then([Op::put(
        "/fenced",
        "a",
        &PutOptions::default(),
    )]);
    assert!(!c.txn(stale).await.unwrap().succeeded);
    // ...and the new holder's is accepted.
    let fresh = Txn::new().when([mb.is_owner()]).and_then([Op::put(
        "/fenced",
        "b",
        &PutOptions::default(),
    )]);
    assert!(c.txn(fresh).await.unwrap().succeeded);
    // And a lock call of `a` after its session died fails rather than "succeeds".
    assert!(ma.lock().await.is_err());
    assert_eq!(count(&c, "lk/").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rwmutex_never_lets_a_writer_in_with_readers_or_writers() {
    const WRITERS: usize = 4;
    const READERS: usize = 8;
    const ROUNDS: usize = 4;
    let cluster = cluster().await;
    let readers = Arc::new(AtomicI64::new(0));
    let writer = Arc::new(AtomicBool::new(false));
    let max_readers = Arc::new(AtomicI64::new(0));
    let mut set = JoinSet::new();
    for i in 0..WRITERS + READERS {
        let s = session(&cluster, i, 10).await;
        let (readers, writer, max_readers) = (readers.clone(), writer.clone(), max_readers.clone());
        set.spawn(async move {
            let c = s.client().clone();
            let mut rw = RwMutex::new(&s, "/rw");
            for _ in 0..ROUNDS {
                if i < WRITERS {
                    rw.write_lock().await.unwrap();
                    assert!(!writer.swap(true, Ordering::SeqCst), "two writers");
                    assert_eq!(readers.load(Ordering::SeqCst), 0, "writer with readers");
                    let n = read_i64(&c, "/rw-counter").await;
                    c.put("/rw-counter", (n + 1).to_string(), PutOptions::default())
                        .await
                        .unwrap();
                    writer.store(false, Ordering::SeqCst);
                } else {
                    rw.read_lock().await.unwrap();
                    let now = readers.fetch_add(1, Ordering::SeqCst) + 1;
                    max_readers.fetch_max(now, Ordering::SeqCst);
                    assert!(!writer.load(Ordering::SeqCst), "reader with a writer");
                    read_i64(&c, "/rw-counter").await;
                    assert!(!writer.load(Ordering::SeqCst), "reader with a writer");
                    readers.fetch_sub(1, Ordering::SeqCst);
                }
                rw.unlock().await.unwrap();
            }
            s.close().await.unwrap();
        });
    }
    join_all(set).await;
    let c = cluster.client().await;
    assert_eq!(read_i64(&c, "/rw-counter").await, (WRITERS * ROUNDS) as i64);
    assert_eq!(count(&c, "/rw/").await, 0);
    eprintln!(
        "at most {} readers at once",
        max_readers.load(Ordering::SeqCst)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn election_one_leader_at_a_time_and_observers_see_every_leader_in_order() {
    const CANDIDATES: usize = 8;
    const OBSERVERS: usize = 3;
    let cluster = cluster().await;
    // Observers, one per member, each reporting leader values as they see them.
    let (seen_tx, seen_rx) = tokio::sync::watch::channel(HashMap::<Vec<u8>, usize>::new());
    let seen_tx = Arc::new(seen_tx);
    let mut observers = JoinSet::new();
    for i in 0..OBSERVERS {
        let c = client(&cluster, i).await;
        let seen_tx = seen_tx.clone();
        // Subscribed before any candidate starts: the first leader cannot be missed.
        let mut observe = Election::observe(&c, "/election");
        observers.spawn(async move {
            let mut order: Vec<Vec<u8>> = Vec::new();
            while order.len() < CANDIDATES {
                let kv = observe.next().await.expect("observe ended").unwrap();
                if order.last() != Some(&kv.value) {
                    order.push(kv.value.clone());
                    seen_tx.send_modify(|m| *m.entry(kv.value).or_default() += 1);
                }
            }
            order
        });
    }
    let leading = Arc::new(AtomicBool::new(false));
    let terms = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut candidates = JoinSet::new();
    for i in 0..CANDIDATES {
        let s = session(&cluster, i, 10).await;
        let (leading, terms, mut seen_rx) = (leading.clone(), terms.clone(), seen_rx.clone());
        candidates.spawn(async move {
            let value = format!("candidate-{i}").into_bytes();
            let mut e = Election::new(&s, "/election");
            let rev = e.campaign(value.clone()).await.unwrap();
            assert!(!leading.swap(true, Ordering::SeqCst), "two leaders at once");
            let leader = Election::leader(s.client(), "/election")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                (leader.value.clone(), leader.create_revision),
                (value.clone(), rev)
            );
            terms.lock().unwrap().push((rev, value.clone()));
            // Lead until every observer has seen this leader.
            seen_rx
                .wait_for(|m| m.get(&value).copied().unwrap_or(0) >= OBSERVERS)
                .await
                .unwrap();
            leading.store(false, Ordering::SeqCst);
            e.resign().await.unwrap();
            assert!(matches!(
                e.proclaim("late").await,
                Err(RecipeError::NotLeader)
            ));
            s.close().await.unwrap();
        });
    }
    join_all(candidates).await;
    let mut terms = terms.lock().unwrap().clone();
    terms.sort();
    let order: Vec<Vec<u8>> = terms.into_iter().map(|t| t.1).collect();
    for observed in join_all(observers).await {
        assert_eq!(observed, order, "an observer saw leaders out of order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn election_replaces_a_leader_whose_session_dies_and_observers_follow_proclaims() {
    let cluster = cluster().await;
    let c = cluster.client().await;
    let mut observe = Election::observe(&c, "svc");
    let a = session(&cluster, 0, 2).await;
    let b = session(&cluster, 1, 10).await;
    let mut ea = Election::new(&a, "svc");
    ea.campaign("a").await.unwrap();
    ea.proclaim("a2").await.unwrap();
    let mut eb = Election::new(&b, "svc");
    let waiting = tokio::spawn(async move {
        eb.campaign("b").await.unwrap();
        eb
    });
    wait_keys(&c, "svc/", 2).await;
    assert!(!waiting.is_finished(), "b leads while a's session lives");
    a.orphan();
    let eb = within("b elected", waiting).await.unwrap();
    let leader = Election::leader(&c, "svc").await.unwrap().unwrap();
    assert_eq!(leader.value, b"b");
    assert!(matches!(
        ea.proclaim("a3").await,
        Err(RecipeError::NotLeader)
    ));
    eb.proclaim("b2").await.unwrap();
    let mut values = Vec::new();
    while values.last().map(Vec::as_slice) != Some(b"b2".as_slice()) {
        let kv = within("observe", observe.next()).await.unwrap().unwrap();
        values.push(kv.value);
    }
    values.dedup();
    assert_eq!(values, [&b"a"[..], b"a2", b"b", b"b2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn barrier_releases_every_waiter_only_at_release() {
    const WAITERS: usize = 9;
    let cluster = cluster().await;
    let c = cluster.client().await;
    let barrier = Barrier::new(&c, "/barrier");
    barrier.wait().await.unwrap(); // not raised: returns at once
    barrier.hold().await.unwrap();
    let mut set = JoinSet::new();
    for i in 0..WAITERS {
        let c = client(&cluster, i).await;
        set.spawn(async move {
            Barrier::new(&c, "/barrier").wait().await.unwrap();
            // A linearizable read after the wait: its revision is at least the release's.
            let after = c.get("/barrier", GetOptions::default()).await.unwrap();
            assert!(after.kvs.is_empty());
            after.header.unwrap().revision
        });
    }
    // Let the waiters get going with some traffic of our own, then release.
    for i in 0..20 {
        c.put(format!("/noise/{i}"), "x", PutOptions::default())
            .await
            .unwrap();
    }
    let release = c
        .delete("/barrier", Default::default())
        .await
        .unwrap()
        .header
        .unwrap()
        .revision;
    for revision in join_all(set).await {
        assert!(
            revision >= release,
            "a waiter passed at {revision}, release at {release}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn double_barrier_enters_and_leaves_together() {
    const N: usize = 6;
    let cluster = cluster().await;
    let entering = Arc::new(AtomicUsize::new(0));
    let leaving = Arc::new(AtomicUsize::new(0));
    let mut set = JoinSet::new();
    for i in 0..N {
        let s = session(&cluster, i, 10).await;
        let (entering, leaving) = (entering.clone(), leaving.clone());
        set.spawn(async move {
            let mut b = DoubleBarrier::new(&s, "/double", N);
            entering.fetch_add(1, Ordering::SeqCst);
            b.enter().await.unwrap();
            assert_eq!(
                entering.load(Ordering::SeqCst),
                N,
                "entered before all arrived"
            );
            leaving.fetch_add(1, Ordering::SeqCst);
            b.leave().await.unwrap();
            assert_eq!(leaving.load(Ordering::SeqCst), N, "left before all left");
        });
    }
    join_all(set).await;
}

/// The queues, for one consumer loop over all of them.
trait Dequeue: Send + Sync + 'static {
    fn take(&self) -> impl std::future::Future<Output = QueueItem> + Send;
}

impl Dequeue for Queue {
    async fn take(&self) -> QueueItem {
        self.dequeue().await.unwrap()
    }
}

impl Dequeue for PriorityQueue {
    async fn take(&self) -> QueueItem {
        self.dequeue().await.unwrap()
    }
}

impl Dequeue for GatedQueue {
    async fn take(&self) -> QueueItem {
        self.dequeue().await.unwrap()
    }
}

/// One consumer task per queue handle; together they make exactly `items` dequeues
/// (each claims one before it calls), and report the running total on `taken`.
fn consumers<Q: Dequeue>(
    queues: Vec<Q>,
    items: usize,
    taken: Arc<tokio::sync::watch::Sender<usize>>,
) -> JoinSet<Vec<QueueItem>> {
    let claims = Arc::new(AtomicUsize::new(0));
    let mut set = JoinSet::new();
    for q in queues {
        let (claims, taken) = (claims.clone(), taken.clone());
        set.spawn(async move {
            let mut mine = Vec::new();
            while claims.fetch_add(1, Ordering::SeqCst) < items {
                mine.push(q.take().await);
                taken.send_modify(|n| *n += 1);
            }
            mine
        });
    }
    set
}

/// Checks a queue's history: every value taken exactly once, and in the order of the
/// deletes that took them, create revisions strictly increase.
fn check_fifo(mut taken: Vec<QueueItem>, expected: &BTreeSet<Vec<u8>>) -> Vec<QueueItem> {
    let values: Vec<Vec<u8>> = taken.iter().map(|t| t.value.clone()).collect();
    let unique: BTreeSet<Vec<u8>> = values.iter().cloned().collect();
    assert_eq!(unique.len(), values.len(), "an item was taken twice");
    assert_eq!(&unique, expected, "items lost or invented");
    taken.sort_by_key(|t| t.revision);
    for w in taken.windows(2) {
        assert!(
            w[0].create_revision < w[1].create_revision,
            "out of order: {:?} then {:?}",
            w[0],
            w[1]
        );
    }
    taken
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifo_queue_keeps_order_and_loses_or_duplicates_nothing() {
    const PRODUCERS: usize = 4;
    const ITEMS: usize = 25;
    const CONSUMERS: usize = 6;
    let cluster = cluster().await;
    let mut queues = Vec::new();
    for i in 0..CONSUMERS {
        queues.push(Queue::new(&client(&cluster, i).await, "/queue/jobs"));
    }
    let (taken, _) = tokio::sync::watch::channel(0);
    let consumers = consumers(queues, PRODUCERS * ITEMS, Arc::new(taken));
    let mut producers = JoinSet::new();
    for p in 0..PRODUCERS {
        let q = Queue::new(&client(&cluster, p + 1).await, "/queue/jobs");
        producers.spawn(async move {
            for n in 0..ITEMS {
                q.enqueue(format!("p{p}-{n:03}")).await.unwrap();
            }
        });
    }
    join_all(producers).await;
    let taken: Vec<QueueItem> = join_all(consumers).await.into_iter().flatten().collect();
    let expected = (0..PRODUCERS)
        .flat_map(|p| (0..ITEMS).map(move |n| format!("p{p}-{n:03}").into_bytes()))
        .collect();
    let taken = check_fifo(taken, &expected);
    // Each producer's items came out in the order it put them in.
    for p in 0..PRODUCERS {
        let mine: Vec<String> = taken
            .iter()
            .map(|t| String::from_utf8(t.value.clone()).unwrap())
            .filter(|v| v.starts_with(&format!("p{p}-")))
            .collect();
        let mut sorted = mine.clone();
        sorted.sort();
        assert_eq!(mine, sorted);
    }
    let q = Queue::new(&cluster.client().await, "/queue/jobs");
    assert_eq!(q.len().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn priority_queue_serves_lower_numbers_first_fifo_within_one() {
    const ITEMS: usize = 30;
    const CONSUMERS: usize = 5;
    let cluster = cluster().await;
    let q = PriorityQueue::new(&cluster.client().await, "/pq");
    let mut priority_of = HashMap::new();
    for n in 0..ITEMS {
        let priority = (n * 7 % 5) as u16;
        let value = format!("item-{n:02}").into_bytes();
        q.enqueue(&value, priority).await.unwrap();
        priority_of.insert(value, priority);
    }
    let mut queues = Vec::new();
    for i in 0..CONSUMERS {
        queues.push(PriorityQueue::new(&client(&cluster, i).await, "/pq"));
    }
    let (taken, _) = tokio::sync::watch::channel(0);
    let consumers = consumers(queues, ITEMS, Arc::new(taken));
    let mut taken: Vec<QueueItem> = join_all(consumers).await.into_iter().flatten().collect();
    assert_eq!(taken.len(), ITEMS);
    let unique: BTreeSet<_> = taken.iter().map(|t| t.value.clone()).collect();
    assert_eq!(unique.len(), ITEMS, "an item was taken twice");
    taken.sort_by_key(|t| t.revision);
    let order: Vec<(u16, i64)> = taken
        .iter()
        .map(|t| (priority_of[&t.value], t.create_revision))
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "not in (priority, arrival) order");
    assert_eq!(q.len().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gated_queue_takes_nothing_while_the_condition_is_off() {
    const ITEMS: usize = 24;
    const CONSUMERS: usize = 4;
    let cluster = cluster().await;
    let c = cluster.client().await;
    let gate = GatedQueue::new(&c, "/queue/work", "/queue/condition", "go");
    let closed_at = gate.close().await.unwrap();
    let (taken_tx, mut taken_rx) = tokio::sync::watch::channel(0usize);
    let mut queues = Vec::new();
    for i in 0..CONSUMERS {
        let c = client(&cluster, i).await;
        queues.push(GatedQueue::new(&c, "/queue/work", "/queue/condition", "go"));
    }
    let consumers = consumers(queues, ITEMS, Arc::new(taken_tx));
    let mut expected = BTreeSet::new();
    for n in 0..ITEMS {
        let value = format!("job-{n:02}");
        gate.enqueue(&value).await.unwrap();
        expected.insert(value.into_bytes());
    }
    // A "stop" value is not the open value either.
    c.put("/queue/condition", "stop", PutOptions::default())
        .await
        .unwrap();
    assert_eq!(
        gate.len().await.unwrap(),
        ITEMS,
        "taken while the gate was closed"
    );
    let open1 = gate.open().await.unwrap();
    within("a third taken", taken_rx.wait_for(|n| *n >= ITEMS / 3))
        .await
        .unwrap();
    let close1 = gate.close().await.unwrap();
    let left = gate.len().await.unwrap();
    assert!(
        left > 0,
        "all taken before the gate closed again; nothing left to test"
    );
    // More traffic while closed, then reopen.
    for i in 0..10 {
        c.put(format!("/noise/{i}"), "x", PutOptions::default())
            .await
            .unwrap();
    }
    let open2 = gate.open().await.unwrap();
    let taken: Vec<QueueItem> = join_all(consumers).await.into_iter().flatten().collect();
    for item in &taken {
        let r = item.revision;
        assert!(
            (open1 < r && r < close1) || r > open2,
            "{item:?} taken at {r} outside the open windows ({open1}, {close1}) and > {open2} (closed at {closed_at})"
        );
    }
    check_fifo(taken, &expected);
}

/// The recipe mutex and the real `etcdctl lock` (Go's concurrency.Mutex) on one name
/// exclude each other: same keys `name/<lease hex>`, same order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recipe_mutex_and_etcdctl_lock_exclude_each_other() {
    if !common::require_etcdctl() {
        return;
    }
    let cluster = cluster().await;
    let c = cluster.client().await;
    let endpoints = cluster.endpoints();

    // 1. The recipe holds; `etcdctl lock` runs its command only after the unlock.
    let s = session(&cluster, 0, 10).await;
    let mut m = Mutex::new(&s, "shared");
    let token = m.lock().await.unwrap();
    let etcdctl_path = common::etcdctl_binary().unwrap();
    let inner = format!(
        "{} --endpoints={} put marker \"$ETCD_LOCK_KEY $ETCD_LOCK_REV\"",
        etcdctl_path.display(),
        endpoints.join(",")
    );
    let etcdctl = Etcdctl::v3(&endpoints)
        .args(["lock", "shared", "--", "sh", "-c", &inner])
        .timeout(DEADLINE)
        .spawn()
        .await;
    wait_keys(&c, "shared/", 2).await;
    assert_eq!(
        count(&c, "marker").await,
        0,
        "etcdctl ran while the recipe held"
    );
    let unlocked = c
        .delete(m.key().to_vec(), Default::default())
        .await
        .unwrap()
        .header
        .unwrap()
        .revision;
    let mut etcdctl = etcdctl;
    etcdctl
        .wait_for(DEADLINE, |out| out.contains("OK"))
        .await
        .expect("etcdctl lock ran its command");
    let out = etcdctl.stop().await;
    let marker = c.get("marker", GetOptions::default()).await.unwrap();
    let kv = &marker.kvs[0];
    assert!(kv.mod_revision > unlocked, "{out:?}");
    let value = String::from_utf8_lossy(&kv.value).into_owned();
    let (key, rev) = value.split_once(' ').unwrap();
    assert!(key.starts_with("shared/"), "ETCD_LOCK_KEY {key}");
    assert!(
        rev.parse::<i64>().unwrap() > token,
        "ETCD_LOCK_REV {rev} <= {token}"
    );
    wait_keys(&c, "shared/", 0).await;

    // 2. `etcdctl lock` holds (and is then killed); the recipe gets the lock only when
    //    etcdctl's session has expired and its key is gone.
    let mut holder = Etcdctl::v3(&endpoints)
        .args(["lock", "--ttl=2", "shared"])
        .timeout(DEADLINE)
        .spawn()
        .await;
    let printed = holder
        .wait_for(DEADLINE, |out| out.contains("shared/"))
        .await
        .expect("etcdctl lock acquired");
    let their_key = printed.lines().next().unwrap().trim().to_owned();
    let theirs = c
        .get(their_key.clone(), GetOptions::default())
        .await
        .unwrap();
    let their_rev = theirs.kvs[0].create_revision;
    let waiter = tokio::spawn(async move {
        let token = m.lock().await.unwrap();
        (m, token)
    });
    wait_keys(&c, "shared/", 2).await;
    assert!(
        !waiter.is_finished(),
        "the recipe locked while etcdctl held"
    );
    holder.stop().await; // SIGKILL: no unlock, the lease must expire
    let (_m, token) = within("recipe lock after etcdctl died", waiter)
        .await
        .unwrap();
    assert!(token > their_rev);
    let gone = c.get(their_key, GetOptions::default()).await.unwrap();
    assert!(
        gone.kvs.is_empty(),
        "recipe locked while etcdctl's key exists"
    );
}

/// The recipes and the server's Lock and Election services share keys: a recipe lock
/// holds off `Lock.Lock` on the same name, and `Election.Leader` reports a recipe leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recipes_and_the_lock_and_election_services_agree() {
    use chorus_api::v3electionpb::LeaderRequest;
    use chorus_api::v3lockpb::{LockRequest, UnlockRequest};

    let cluster = cluster().await;
    let c = cluster.client().await;
    let s = session(&cluster, 0, 10).await;
    let mut m = Mutex::new(&s, "svc-lock");
    let token = m.lock().await.unwrap();
    let other = c.lease_grant(10, 0).await.unwrap().id;
    let mut service = client(&cluster, 1).await.lock_client();
    let waiting = tokio::spawn(async move {
        let req = LockRequest {
            name: b"svc-lock".to_vec(),
            lease: other,
        };
        service.lock(req).await.unwrap().into_inner()
    });
    wait_keys(&c, "svc-lock/", 2).await;
    assert!(
        !waiting.is_finished(),
        "Lock.Lock returned while the recipe held"
    );
    m.unlock().await.unwrap();
    let locked = within("Lock.Lock after the unlock", waiting).await.unwrap();
    let theirs = c
        .get(locked.key.clone(), GetOptions::default())
        .await
        .unwrap();
    assert!(theirs.kvs[0].create_revision > token);
    c.lock_client()
        .unlock(UnlockRequest { key: locked.key })
        .await
        .unwrap();

    let mut e = Election::new(&s, "svc-election");
    let rev = e.campaign("recipe-leader").await.unwrap();
    let leader = c
        .election_client()
        .leader(LeaderRequest {
            name: b"svc-election".to_vec(),
        })
        .await
        .unwrap()
        .into_inner()
        .kv
        .unwrap();
    assert_eq!(
        (leader.value, leader.create_revision),
        (b"recipe-leader".to_vec(), rev)
    );
}

/// The ```sh blocks of docs/recipes.md, in order.
fn guide_blocks() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/recipes.md");
    let guide = std::fs::read_to_string(path).expect("docs/recipes.md");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in guide.lines() {
        match (&mut current, line) {
            (None, "```sh") => current = Some(String::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(block), line) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// Runs every ```sh block of the guide under `sh -eu` against a fresh 3-member cluster
/// with the v2 API on, with `etcdctl` on the PATH being `etcdctl` (the real one, or
/// chorusctl through a symlink). Each block runs in its own process group, which is killed
/// afterwards, so a block that fails cannot leave a background `watch` or `elect` behind.
async fn run_guide(etcdctl: &std::path::Path) {
    let blocks = guide_blocks();
    assert!(
        blocks.len() >= 15,
        "only {} sh blocks in the guide",
        blocks.len()
    );
    let shim = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(etcdctl, shim.path().join("etcdctl")).unwrap();
    let path = format!(
        "{}:{}",
        shim.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let options = common::ClusterOptions {
        extra_args: vec!["--enable-v2=true".into()],
        ..Default::default()
    };
    let cluster = Cluster::start_with(ServerKind::from_env(), 3, options).await;
    let endpoints = cluster.endpoints();
    for (i, block) in blocks.iter().enumerate() {
        let mut cmd = tokio::process::Command::new("sh");
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("ETCDCTL_") {
                cmd.env_remove(name);
            }
        }
        cmd.args(["-eu", "-c", block])
            .env("PATH", &path)
            .env("ETCDCTL_API", "3")
            .env("ETCDCTL_ENDPOINTS", endpoints.join(","))
            .env("URL", &endpoints[0])
            .stdin(std::process::Stdio::null())
            .process_group(0)
            .kill_on_drop(true);
        let child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let group = child.id().unwrap() as i32;
        let out = tokio::time::timeout(DEADLINE, child.wait_with_output()).await;
        // SAFETY: kill(2) on the process group this test created for the block.
        unsafe { libc::kill(-group, libc::SIGKILL) };
        let out = out.unwrap_or_else(|_| panic!("guide block {i} ran over {DEADLINE:?}:\n{block}"));
        let out = out.unwrap();
        assert!(
            out.status.success(),
            "guide block {i} failed ({}) with {}:\n{block}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            etcdctl.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn guide_commands_run_with_etcdctl() {
    if !common::require_etcdctl() {
        return;
    }
    run_guide(&common::etcdctl_binary().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn guide_commands_run_with_chorusctl() {
    run_guide(&common::chorusctl_binary()).await;
}

/// A session's first keep-alive, sent through a follower right after the grant that
/// follower acknowledged, must find the lease on the leader (whose apply may lag behind the
/// follower's): a TTL of 0 there ends the session at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keep_alive_through_a_follower_right_after_the_grant_finds_the_lease() {
    const ROUNDS: usize = 60;
    let cluster = cluster().await;
    let leader = cluster.leader().await;
    let mut set = JoinSet::new();
    // Write traffic keeps the apply queues busy, so that appliers drift apart.
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = JoinSet::new();
    for i in 0..8 {
        let c = client(&cluster, i).await;
        let stop = stop.clone();
        load.spawn(async move {
            let value = vec![b'x'; 64 * 1024];
            for n in 0..2000 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let key = format!("/load/{i}/{}", n % 16);
                c.put(key, value.clone(), PutOptions::default())
                    .await
                    .unwrap();
            }
        });
    }
    for i in (0..cluster.len()).filter(|&i| i != leader) {
        let follower = cluster.member_client(i).await;
        set.spawn(async move {
            for _ in 0..ROUNDS {
                let lease = follower.lease_grant(30, 0).await.unwrap().id;
                let (_sender, mut answers) = follower.lease_keep_alive(lease).await.unwrap();
                let first = answers.message().await.unwrap().expect("an answer");
                assert!(
                    first.ttl > 0,
                    "lease {lease:x} not found right after its grant"
                );
                follower.lease_revoke(lease).await.unwrap();
            }
        });
    }
    join_all(set).await;
    stop.store(true, Ordering::SeqCst);
    join_all(load).await;
}

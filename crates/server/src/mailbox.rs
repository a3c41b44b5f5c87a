//! A multi-producer, single-consumer queue for the raft and apply threads that parks the
//! consumer without spinning. (crossbeam's channels spin and `sched_yield` before they
//! park; on a two-core machine that steals the CPU the request handlers need.) The
//! consumer takes everything queued at once, which is what the group-commit loops want.
//!
//! A mailbox may have a capacity: producers that can wait (client proposals, messages
//! from peers) use [`Sender::send_when_room`] and are held back while the queue is full;
//! control messages from the threads themselves use [`Sender::send`], which never waits
//! (a thread blocking on its own queue would deadlock).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

struct Shared<T> {
    queue: Mutex<VecDeque<T>>,
    ready: Condvar,
    senders: AtomicUsize,
    /// Queue length at which `send_when_room` waits.
    capacity: usize,
    /// Signalled when a full queue was drained.
    room: tokio::sync::Notify,
}

pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

/// The receiver is gone: the value comes back.
#[derive(Debug, PartialEq, Eq)]
pub struct SendError<T>(pub T);

#[derive(Debug, PartialEq, Eq)]
pub enum RecvError {
    /// Nothing arrived before the deadline.
    Timeout,
    /// Every sender is gone and the queue is empty.
    Disconnected,
}

/// An unbounded mailbox.
pub fn mailbox<T>() -> (Sender<T>, Receiver<T>) {
    bounded(usize::MAX)
}

/// A mailbox whose `send_when_room` producers wait while `capacity` values are queued.
pub fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(VecDeque::new()),
        ready: Condvar::new(),
        senders: AtomicUsize::new(1),
        capacity,
        room: tokio::sync::Notify::new(),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            let _guard = self.shared.queue.lock();
            self.shared.ready.notify_all();
        }
    }
}

impl<T> Sender<T> {
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        // The receiver holds one reference; with only senders left nobody will read.
        if Arc::strong_count(&self.shared) == self.shared.senders.load(Ordering::Acquire) {
            return Err(SendError(value));
        }
        let mut q = self.shared.queue.lock();
        q.push_back(value);
        let was_empty = q.len() == 1;
        drop(q);
        if was_empty {
            self.shared.ready.notify_one();
        }
        Ok(())
    }
}

impl<T> Sender<T> {
    /// Sends once the queue has room (backpressure for producers that can wait).
    pub async fn send_when_room(&self, value: T) -> Result<(), SendError<T>> {
        loop {
            let room = self.shared.room.notified();
            tokio::pin!(room);
            // Registered before the check, so a drain in between is not missed.
            room.as_mut().enable();
            if self.shared.queue.lock().len() < self.shared.capacity {
                return self.send(value);
            }
            room.await;
        }
    }
}

impl<T> Shared<T> {
    /// Wakes producers waiting for room if the queue was full before a drain.
    fn drained(&self, was_full: bool) {
        if was_full {
            self.room.notify_waiters();
        }
    }
}

impl<T> Receiver<T> {
    /// Moves everything queued into `out`, waiting until something is queued or the
    /// deadline (if any) passes.
    pub fn recv_all(&self, out: &mut Vec<T>, deadline: Option<Instant>) -> Result<(), RecvError> {
        let mut q = self.shared.queue.lock();
        loop {
            if !q.is_empty() {
                let was_full = q.len() >= self.shared.capacity;
                out.extend(q.drain(..));
                drop(q);
                self.shared.drained(was_full);
                return Ok(());
            }
            if self.shared.senders.load(Ordering::Acquire) == 0 {
                return Err(RecvError::Disconnected);
            }
            match deadline {
                Some(d) => {
                    if self.shared.ready.wait_until(&mut q, d).timed_out() && q.is_empty() {
                        return Err(RecvError::Timeout);
                    }
                }
                None => self.shared.ready.wait(&mut q),
            }
        }
    }

    /// One value, waiting without a deadline.
    pub fn recv(&self) -> Result<T, RecvError> {
        let mut q = self.shared.queue.lock();
        loop {
            let was_full = q.len() >= self.shared.capacity;
            if let Some(v) = q.pop_front() {
                drop(q);
                self.shared.drained(was_full);
                return Ok(v);
            }
            if self.shared.senders.load(Ordering::Acquire) == 0 {
                return Err(RecvError::Disconnected);
            }
            self.shared.ready.wait(&mut q);
        }
    }

    /// One value if one is queued.
    pub fn try_recv(&self) -> Option<T> {
        let mut q = self.shared.queue.lock();
        let was_full = q.len() >= self.shared.capacity;
        let v = q.pop_front();
        drop(q);
        self.shared.drained(was_full && v.is_some());
        v
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn delivers_in_order_and_in_bulk() {
        let (tx, rx) = mailbox();
        for i in 0..5 {
            tx.send(i).unwrap();
        }
        let mut out = Vec::new();
        rx.recv_all(&mut out, None).unwrap();
        assert_eq!(out, vec![0, 1, 2, 3, 4]);
        let deadline = Instant::now() + Duration::from_millis(10);
        assert_eq!(
            rx.recv_all(&mut out, Some(deadline)),
            Err(RecvError::Timeout)
        );
    }

    #[test]
    fn wakes_a_parked_receiver_and_reports_disconnection() {
        let (tx, rx) = mailbox::<u32>();
        let tx2 = tx.clone();
        let t = std::thread::spawn(move || {
            let first = rx.recv();
            let second = rx.recv();
            (first, second)
        });
        tx2.send(7).unwrap();
        drop(tx);
        drop(tx2);
        let (first, second) = t.join().unwrap();
        assert_eq!(first, Ok(7));
        assert_eq!(second, Err(RecvError::Disconnected));
    }

    #[tokio::test]
    async fn a_full_mailbox_holds_waiting_producers_back_until_drained() {
        let (tx, rx) = bounded::<u32>(2);
        tx.send_when_room(1).await.unwrap();
        tx.send_when_room(2).await.unwrap();
        let tx2 = tx.clone();
        let waiting = tokio::spawn(async move { tx2.send_when_room(3).await });
        // Control messages still go in while the queue is full.
        tx.send(4).unwrap();
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "a producer went past a full queue");
        let mut out = Vec::new();
        rx.recv_all(&mut out, None).unwrap();
        assert_eq!(out, vec![1, 2, 4]);
        waiting.await.unwrap().unwrap();
        rx.recv_all(&mut out, None).unwrap();
        assert_eq!(out, vec![1, 2, 4, 3]);
    }

    #[test]
    fn send_fails_once_the_receiver_is_gone() {
        let (tx, rx) = mailbox::<u32>();
        drop(rx);
        assert_eq!(tx.send(1), Err(SendError(1)));
    }
}

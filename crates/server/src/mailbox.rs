//! A multi-producer, single-consumer queue for the raft and apply threads that parks the
//! consumer without spinning. (crossbeam's channels spin and `sched_yield` before they
//! park; on a two-core machine that steals the CPU the request handlers need.) The
//! consumer takes everything queued at once, which is what the group-commit loops want.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

struct Shared<T> {
    queue: Mutex<VecDeque<T>>,
    ready: Condvar,
    senders: AtomicUsize,
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

pub fn mailbox<T>() -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(VecDeque::new()),
        ready: Condvar::new(),
        senders: AtomicUsize::new(1),
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

impl<T> Receiver<T> {
    /// Moves everything queued into `out`, waiting until something is queued or the
    /// deadline (if any) passes.
    pub fn recv_all(&self, out: &mut Vec<T>, deadline: Option<Instant>) -> Result<(), RecvError> {
        let mut q = self.shared.queue.lock();
        loop {
            if !q.is_empty() {
                out.extend(q.drain(..));
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
            if let Some(v) = q.pop_front() {
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
        self.shared.queue.lock().pop_front()
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

    #[test]
    fn send_fails_once_the_receiver_is_gone() {
        let (tx, rx) = mailbox::<u32>();
        drop(rx);
        assert_eq!(tx.send(1), Err(SendError(1)));
    }
}

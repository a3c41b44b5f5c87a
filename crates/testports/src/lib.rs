//! Ports for test servers on 127.0.0.1, chosen at run time below 32768.
//!
//! The kernel hands out ephemeral ports (outgoing connections, binds to port 0) from
//! 32768 up, so a port taken from that range by binding port 0 and releasing it may be
//! reused by any outgoing connection before the test server binds it. Ports below the
//! range are only ever taken by someone binding them on purpose.

use std::net::{TcpListener, UdpSocket};
use std::sync::atomic::{AtomicU16, Ordering};

/// First port handed out (leaves the well-known and common service ports alone).
const LOW: u16 = 20_000;
/// One past the last port handed out (the ephemeral range starts at 32768).
const HIGH: u16 = 32_000;

static NEXT: AtomicU16 = AtomicU16::new(0);

/// `n` distinct ports below 32768 that were free for both TCP and UDP on 127.0.0.1 when
/// checked. Never the same port twice in one process (until the range wraps); test
/// processes running at once start at different places in the range.
///
/// Race: another process may bind a port between the check and the test server's own
/// bind; the server then fails to start and says so in its log.
pub fn free_ports(n: usize) -> Vec<u16> {
    if NEXT.load(Ordering::Relaxed) == 0 {
        let seed = LOW + (std::process::id() % 600) as u16 * 20;
        let _ = NEXT.compare_exchange(0, seed, Ordering::Relaxed, Ordering::Relaxed);
    }
    let mut out = Vec::with_capacity(n);
    // Bounded: at most one pass over the range.
    for _ in LOW..HIGH {
        if out.len() == n {
            break;
        }
        let mut port = NEXT.fetch_add(1, Ordering::Relaxed);
        if port >= HIGH {
            NEXT.store(LOW + 1, Ordering::Relaxed);
            port = LOW;
        }
        let tcp = TcpListener::bind(("127.0.0.1", port));
        let udp = UdpSocket::bind(("127.0.0.1", port));
        if tcp.is_ok() && udp.is_ok() {
            out.push(port);
        }
    }
    assert_eq!(out.len(), n, "no {n} free ports below 32768 on 127.0.0.1");
    out
}

/// One port as [`free_ports`] chooses them.
pub fn free_port() -> u16 {
    free_ports(1)[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_below_the_ephemeral_range_and_bindable() {
        let ports = free_ports(50);
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 50);
        for p in ports {
            assert!((LOW..HIGH).contains(&p), "{p}");
            TcpListener::bind(("127.0.0.1", p)).expect("still free");
        }
    }
}

//! The fault proxy on the peer links: every member advertises a proxy port as its peer
//! URL, so every member-to-member byte passes here.
//!
//! ```text
//!   member i ──dial──► proxy port of j ──► real peer port of j
//!                      │  source = the member whose process owns the dialing socket
//!                      │  (/proc/net/tcp inode → /proc/<pid>/fd), so each direction of
//!                      │  each member pair has its own fault settings:
//!                      │    bytes i→j: LinkFault(i, j)     bytes j→i: LinkFault(j, i)
//!                      └─ blackhole (bytes read and discarded; the connection is reset
//!                         once the link heals, never resumed past the gap), delay +
//!                         jitter (order kept),
//!                         drop (with probability p per chunk the connection is reset,
//!                         losing what was in flight: raft messages are dropped, not
//!                         corrupted)
//! ```
//!
//! Member IDs derive from peer URLs, so a member must be known by one set of URLs to all;
//! telling the source apart at the proxy (rather than one proxy port per directed link)
//! keeps that true.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Faults on the bytes from one member to another.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LinkFault {
    pub blackhole: bool,
    pub delay: Duration,
    pub jitter: Duration,
    /// Probability, per chunk read, that the connection is reset.
    pub drop: f64,
}

impl LinkFault {
    fn worst(self, other: LinkFault) -> LinkFault {
        LinkFault {
            blackhole: self.blackhole || other.blackhole,
            delay: self.delay.max(other.delay),
            jitter: self.jitter.max(other.jitter),
            drop: self.drop.max(other.drop),
        }
    }
}

/// A copy of the proxy's counters, for a summary.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct ProxyCounts {
    pub connections: usize,
    pub unknown_sources: usize,
    pub chunks_blackholed: usize,
    pub chunks_delayed: usize,
    pub resets: usize,
}

#[derive(Debug, Default)]
pub struct ProxyStats {
    pub connections: AtomicUsize,
    /// Connections whose dialing member could not be told (the worst fault of any link
    /// into the destination applies to them).
    pub unknown_sources: AtomicUsize,
    pub chunks_blackholed: AtomicUsize,
    pub chunks_delayed: AtomicUsize,
    pub resets: AtomicUsize,
}

struct Shared {
    faults: Mutex<HashMap<(usize, usize), LinkFault>>,
    pids: Mutex<Vec<Option<u32>>>,
    stats: ProxyStats,
    members: usize,
}

impl Shared {
    /// The fault on bytes from `from` to `to`; an unknown end takes the worst.
    fn fault(&self, from: Option<usize>, to: Option<usize>) -> LinkFault {
        let faults = self.faults.lock().expect("faults");
        let get = |f: usize, t: usize| faults.get(&(f, t)).copied().unwrap_or_default();
        match (from, to) {
            (Some(f), Some(t)) => get(f, t),
            (None, Some(t)) => {
                (0..self.members).fold(LinkFault::default(), |a, f| a.worst(get(f, t)))
            }
            (Some(f), None) => {
                (0..self.members).fold(LinkFault::default(), |a, t| a.worst(get(f, t)))
            }
            (None, None) => LinkFault::default(),
        }
    }
}

/// One listener per member (its advertised peer port), forwarding to its real peer port.
pub struct Proxy {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
}

impl Proxy {
    /// `listeners[j]` forwards to `127.0.0.1:real_ports[j]`.
    pub fn start(listeners: Vec<std::net::TcpListener>, real_ports: Vec<u16>) -> Proxy {
        let shared = Arc::new(Shared {
            faults: Mutex::new(HashMap::new()),
            pids: Mutex::new(vec![None; real_ports.len()]),
            stats: ProxyStats::default(),
            members: real_ports.len(),
        });
        let (stop, stopped) = watch::channel(false);
        for (j, (listener, real)) in listeners.into_iter().zip(real_ports).enumerate() {
            listener.set_nonblocking(true).expect("nonblocking");
            let listener = TcpListener::from_std(listener).expect("proxy listener");
            tokio::spawn(accept_loop(
                j,
                listener,
                real,
                shared.clone(),
                stopped.clone(),
            ));
        }
        Proxy { shared, stop }
    }

    pub fn set_pid(&self, member: usize, pid: Option<u32>) {
        self.shared.pids.lock().expect("pids")[member] = pid;
    }

    pub fn set(&self, from: usize, to: usize, fault: LinkFault) {
        self.shared
            .faults
            .lock()
            .expect("faults")
            .insert((from, to), fault);
    }

    /// Applies `fault` to every link into and out of `member`.
    pub fn isolate(&self, member: usize, fault: LinkFault) {
        for other in (0..self.shared.members).filter(|&o| o != member) {
            self.set(member, other, fault);
            self.set(other, member, fault);
        }
    }

    pub fn heal(&self) {
        self.shared.faults.lock().expect("faults").clear();
    }

    pub fn stats(&self) -> &ProxyStats {
        &self.shared.stats
    }

    pub fn counts(&self) -> ProxyCounts {
        let s = &self.shared.stats;
        ProxyCounts {
            connections: s.connections.load(Ordering::Relaxed),
            unknown_sources: s.unknown_sources.load(Ordering::Relaxed),
            chunks_blackholed: s.chunks_blackholed.load(Ordering::Relaxed),
            chunks_delayed: s.chunks_delayed.load(Ordering::Relaxed),
            resets: s.resets.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn accept_loop(
    to: usize,
    listener: TcpListener,
    real: u16,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => return,
            a = listener.accept() => a,
        };
        let (inbound, peer) = match accepted {
            Ok(a) => a,
            Err(_) => {
                // Out of descriptors or similar: back off rather than spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        shared.stats.connections.fetch_add(1, Ordering::Relaxed);
        let shared = shared.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let pids = shared.pids.lock().expect("pids").clone();
            let from = source_member(peer, port, &pids);
            if from.is_none() {
                shared.stats.unknown_sources.fetch_add(1, Ordering::Relaxed);
            }
            let Ok(outbound) = TcpStream::connect(("127.0.0.1", real)).await else {
                return;
            };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            let (in_r, in_w) = inbound.into_split();
            let (out_r, out_w) = outbound.into_split();
            let up = pump(in_r, out_w, from, Some(to), shared.clone());
            let down = pump(out_r, in_w, Some(to), from, shared.clone());
            let mut stop = stop;
            // When either direction ends (EOF, error, or a drop), the connection goes.
            tokio::select! {
                _ = up => {}
                _ = down => {}
                _ = stop.changed() => {}
            }
        });
    }
}

/// Copies bytes one way through the link's faults. Returns when the source ends, a write
/// fails, or a drop resets the connection.
async fn pump(
    mut r: tokio::net::tcp::OwnedReadHalf,
    mut w: tokio::net::tcp::OwnedWriteHalf,
    from: Option<usize>,
    to: Option<usize>,
    shared: Arc<Shared>,
) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(1024);
    let writer = async move {
        while let Some((at, buf)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if w.write_all(&buf).await.is_err() {
                return;
            }
        }
        let _ = w.shutdown().await;
    };
    let reader = async {
        let mut buf = vec![0u8; 64 * 1024];
        let mut last = Instant::now();
        // A connection that lost bytes to a blackhole never forwards again: TCP does not
        // resume a stream past a gap, and going on would hand the peer the middle of a
        // message (etcd's peer stream has no framing check and panics on it).
        let mut gap = false;
        loop {
            let n = match r.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => n,
            };
            let f = shared.fault(from, to);
            if f.blackhole {
                shared
                    .stats
                    .chunks_blackholed
                    .fetch_add(1, Ordering::Relaxed);
                gap = true;
                continue;
            }
            if gap {
                shared.stats.resets.fetch_add(1, Ordering::Relaxed);
                return true;
            }
            let (reset, jitter) = {
                let mut rng = rand::thread_rng();
                let reset = f.drop > 0.0 && rng.gen_bool(f.drop.min(1.0));
                let jitter = if f.jitter.is_zero() {
                    Duration::ZERO
                } else {
                    rng.gen_range(Duration::ZERO..=2 * f.jitter)
                };
                (reset, jitter)
            };
            if reset {
                shared.stats.resets.fetch_add(1, Ordering::Relaxed);
                return true;
            }
            let mut at = Instant::now();
            if !f.delay.is_zero() || !f.jitter.is_zero() {
                shared.stats.chunks_delayed.fetch_add(1, Ordering::Relaxed);
                at += (f.delay + jitter).saturating_sub(f.jitter);
            }
            // Keep the byte order: never before the previous chunk.
            at = at.max(last);
            last = at;
            if tx.send((at, buf[..n].to_vec())).await.is_err() {
                return false;
            }
        }
    };
    tokio::pin!(writer);
    tokio::select! {
        reset = reader => {
            if !reset {
                // Flush what is queued (bounded by the delays), then close.
                let _ = tokio::time::timeout(Duration::from_secs(5), &mut writer).await;
            }
        }
        _ = &mut writer => {}
    }
}

/// Which member's process owns the socket that connected from `peer` to our `port`.
fn source_member(peer: SocketAddr, port: u16, pids: &[Option<u32>]) -> Option<usize> {
    let inode = socket_inode(peer.port(), port)?;
    let needle = format!("socket:[{inode}]");
    for (m, pid) in pids.iter().enumerate() {
        let Some(pid) = pid else { continue };
        let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in dir.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == needle.as_str()) {
                return Some(m);
            }
        }
    }
    None
}

/// The inode of the TCP socket with local port `local` and remote port `remote` on
/// 127.0.0.1 (from /proc/net/tcp).
fn socket_inode(local: u16, remote: u16) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let want_local = format!("0100007F:{local:04X}");
    let want_remote = format!("0100007F:{remote:04X}");
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        (f.len() > 9 && f[1] == want_local && f[2] == want_remote)
            .then(|| f[9].parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn forwards_identifies_and_blackholes() {
        let backend =
            std::net::TcpListener::bind(("127.0.0.1", chorus_testports::free_port())).unwrap();
        let real = backend.local_addr().unwrap().port();
        let front =
            std::net::TcpListener::bind(("127.0.0.1", chorus_testports::free_port())).unwrap();
        let port = front.local_addr().unwrap().port();
        let unused =
            std::net::TcpListener::bind(("127.0.0.1", chorus_testports::free_port())).unwrap();
        let proxy = Proxy::start(vec![front, unused], vec![real, 1]);
        // Our own process plays member 1 dialing member 0's proxy.
        proxy.set_pid(1, Some(std::process::id()));
        backend.set_nonblocking(true).unwrap();
        let backend = TcpListener::from_std(backend).unwrap();
        let mut client = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let (mut server, _) = backend.accept().await.unwrap();
        client.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        server.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        assert_eq!(proxy.stats().unknown_sources.load(Ordering::Relaxed), 0);
        // Blackhole 1 -> 0: bytes vanish; the other direction still flows.
        proxy.set(
            1,
            0,
            LinkFault {
                blackhole: true,
                ..Default::default()
            },
        );
        client.write_all(b"lost").await.unwrap();
        server.write_all(b"back").await.unwrap();
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"back");
        let got = tokio::time::timeout(Duration::from_millis(200), server.read(&mut buf)).await;
        assert!(got.is_err(), "blackholed bytes arrived");
        assert!(proxy.stats().chunks_blackholed.load(Ordering::Relaxed) >= 1);
        // Healed: the connection that lost bytes is reset, never resumed past the gap.
        proxy.set(1, 0, LinkFault::default());
        client.write_all(b"next").await.unwrap();
        let n = tokio::time::timeout(Duration::from_secs(2), server.read(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0);
        assert_eq!(n, 0, "a connection with a gap was resumed");
        // A new connection flows.
        let mut client = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let (mut server, _) = backend.accept().await.unwrap();
        client.write_all(b"pong").await.unwrap();
        server.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"pong");
        // Delay: arrives, later.
        proxy.set(
            1,
            0,
            LinkFault {
                delay: Duration::from_millis(150),
                ..Default::default()
            },
        );
        let t = Instant::now();
        client.write_all(b"slow").await.unwrap();
        server.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"slow");
        assert!(t.elapsed() >= Duration::from_millis(140));
        // Drop with certainty: the connection is reset.
        proxy.set(
            1,
            0,
            LinkFault {
                drop: 1.0,
                ..Default::default()
            },
        );
        client.write_all(b"gone").await.unwrap();
        let n = tokio::time::timeout(Duration::from_secs(2), server.read(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0);
        assert_eq!(n, 0, "connection not reset");
    }
}

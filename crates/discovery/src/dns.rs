//! A small stub resolver for what discovery needs: SRV records and a host's address, asked
//! of the system's name servers (`/etc/resolv.conf`, as Go's resolver) or, when
//! `CHORUS_DNS_RESOLVER=host:port` is set, of that server only (a test and operations hook:
//! a chorus member's `--dns-listen-addr` on a high port, for example).
//!
//! ```text
//!   lookup_srv(service, "tcp", domain) ── _service._tcp.domain. SRV ─┐
//!   resolve_tcp_addr("host:port") ── IP literal ── as is             │  UDP query (no EDNS,
//!                                 └─ name: A (then AAAA) ────────────┤  512-byte answers),
//!                                    then the system's getaddrinfo   │  TCP when truncated;
//!                                                                    ▼  `attempts` x `timeout`
//!                                          errors worded as Go's: lookup NAME on SERVER: no such host
//! ```
//!
//! Wire format from `hickory-proto` (docs/adr/0008-dns.md), as the DNS server uses.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// The environment variable that points every lookup at one DNS server (`host:port`).
pub const RESOLVER_ENV: &str = "CHORUS_DNS_RESOLVER";
/// Go's defaults (`resolv.conf` `options timeout:5 attempts:2`).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_ATTEMPTS: usize = 2;
/// Largest answer read over UDP or TCP.
const MAX_ANSWER: usize = 65_535;

/// A failed lookup, worded as Go's `net.DNSError`: `lookup NAME on SERVER: REASON`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("lookup {name}{}: {reason}", on(.server))]
pub struct LookupError {
    pub name: String,
    /// The server asked (`ip:port`), when one was.
    pub server: Option<String>,
    pub reason: String,
}

fn on(server: &Option<String>) -> String {
    server
        .as_ref()
        .map(|s| format!(" on {s}"))
        .unwrap_or_default()
}

/// `CHORUS_DNS_RESOLVER` that is not `ip:port`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{RESOLVER_ENV}={given:?} must be \"ip:port\" ({reason})")]
pub struct BadResolver {
    pub given: String,
    pub reason: String,
}

/// One SRV record (Go's `net.SRV`): the target keeps its trailing dot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    pub target: String,
    pub port: u16,
    pub priority: u16,
    pub weight: u16,
}

/// Where lookups go.
#[derive(Debug, Clone)]
pub struct Resolver {
    servers: Vec<SocketAddr>,
    /// Set by [`RESOLVER_ENV`]: host names are asked of it before the system's resolver.
    custom: bool,
    timeout: Duration,
    attempts: usize,
}

impl Resolver {
    /// `CHORUS_DNS_RESOLVER` if set, else the name servers of `/etc/resolv.conf`.
    pub fn from_env() -> Result<Resolver, BadResolver> {
        match std::env::var(RESOLVER_ENV) {
            Ok(v) if !v.trim().is_empty() => Resolver::at(v.trim()),
            _ => Ok(Resolver::system()),
        }
    }

    /// Every lookup asks `addr` (`ip:port`).
    pub fn at(addr: &str) -> Result<Resolver, BadResolver> {
        let server = addr.parse::<SocketAddr>().map_err(|e| BadResolver {
            given: addr.to_string(),
            reason: e.to_string(),
        })?;
        Ok(Resolver {
            servers: vec![server],
            custom: true,
            timeout: DEFAULT_TIMEOUT,
            attempts: DEFAULT_ATTEMPTS,
        })
    }

    /// The name servers of `/etc/resolv.conf` (Go's default `127.0.0.1:53` and `[::1]:53`
    /// when it names none).
    pub fn system() -> Resolver {
        let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        Resolver::from_resolv_conf(&text)
    }

    fn from_resolv_conf(text: &str) -> Resolver {
        let mut r = Resolver {
            servers: Vec::new(),
            custom: false,
            timeout: DEFAULT_TIMEOUT,
            attempts: DEFAULT_ATTEMPTS,
        };
        for line in text.lines() {
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    if let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) {
                        r.servers.push(SocketAddr::new(ip, 53));
                    }
                }
                Some("options") => r.options(words),
                _ => {}
            }
        }
        r.servers.truncate(3);
        if r.servers.is_empty() {
            r.servers = vec![
                "127.0.0.1:53".parse().expect("addr"),
                "[::1]:53".parse().expect("addr"),
            ];
        }
        r
    }

    fn options<'a>(&mut self, words: impl Iterator<Item = &'a str>) {
        for w in words {
            if let Some(n) = w
                .strip_prefix("timeout:")
                .and_then(|n| n.parse::<u64>().ok())
            {
                self.timeout = Duration::from_secs(n.clamp(1, 30));
            }
            if let Some(n) = w
                .strip_prefix("attempts:")
                .and_then(|n| n.parse::<usize>().ok())
            {
                self.attempts = n.clamp(1, 5);
            }
        }
    }

    /// Go's `net.LookupSRV(service, proto, name)`: `_service._proto.name`, sorted by
    /// priority, then weight (Go shuffles equal priorities by weight; this keeps the
    /// server's order there).
    pub async fn lookup_srv(
        &self,
        service: &str,
        proto: &str,
        domain: &str,
    ) -> Result<Vec<Srv>, LookupError> {
        let name = format!("_{service}._{proto}.{domain}");
        let (answer, server) = self.query(&name, RecordType::SRV).await?;
        let out = srv_records(&answer);
        if out.is_empty() {
            return Err(lookup_error(&name, server, "no such host"));
        }
        Ok(out)
    }

    /// Go's `net.ResolveTCPAddr("tcp", hostport)`: an IP literal as is, a name to its
    /// first IPv4 address (else the first address), as `ip:port`.
    pub async fn resolve_tcp_addr(&self, hostport: &str) -> Result<SocketAddr, LookupError> {
        let (host, port) = split_host_port(hostport).map_err(|reason| LookupError {
            name: hostport.to_string(),
            server: None,
            reason,
        })?;
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, port));
        }
        if self.custom {
            if let Some(ip) = self.lookup_ip(host).await {
                return Ok(SocketAddr::new(ip, port));
            }
        }
        // getaddrinfo does not take the final dot of an SRV target (`localhost.`).
        system_lookup(host.strip_suffix('.').unwrap_or(host), port).await
    }

    /// The first A (else AAAA) address of `host` from our servers, if any.
    async fn lookup_ip(&self, host: &str) -> Option<IpAddr> {
        for rtype in [RecordType::A, RecordType::AAAA] {
            let Ok((answer, _)) = self.query(host, rtype).await else {
                continue;
            };
            let ip = first_address(&answer);
            if ip.is_some() {
                return ip;
            }
        }
        None
    }

    /// Asks each server in turn, `attempts` rounds; the last error if none answers.
    async fn query(
        &self,
        name: &str,
        rtype: RecordType,
    ) -> Result<(Message, SocketAddr), LookupError> {
        let fqdn = Name::from_ascii(name)
            .map(|mut n| {
                n.set_fqdn(true);
                n
            })
            .map_err(|_| LookupError {
                name: name.to_string(),
                server: None,
                reason: "no such host".to_string(),
            })?;
        let mut last = None;
        for _ in 0..self.attempts {
            for server in &self.servers {
                match self.exchange(*server, &fqdn, rtype).await {
                    // Go: NXDOMAIN is "no such host", any other failure "server misbehaving".
                    Ok(m)
                        if !matches!(
                            m.response_code(),
                            ResponseCode::NoError | ResponseCode::NXDomain
                        ) =>
                    {
                        last = Some(lookup_error(name, *server, "server misbehaving"));
                    }
                    Ok(m) => return Ok((m, *server)),
                    Err(reason) => last = Some(lookup_error(name, *server, &reason)),
                }
            }
        }
        Err(last.unwrap_or_else(|| lookup_error(name, self.servers[0], "no such host")))
    }

    /// One query to one server: UDP, then TCP when the answer is truncated.
    async fn exchange(
        &self,
        server: SocketAddr,
        name: &Name,
        rtype: RecordType,
    ) -> Result<Message, String> {
        let id: u16 = rand_id();
        let mut q = Message::new();
        q.set_id(id)
            .set_message_type(MessageType::Query)
            .set_op_code(OpCode::Query)
            .set_recursion_desired(true)
            .add_query(Query::query(name.clone(), rtype));
        let packet = q.to_vec().map_err(|e| e.to_string())?;
        let udp = tokio::time::timeout(self.timeout, udp_exchange(server, &packet, id));
        let answer = udp.await.map_err(|_| "i/o timeout".to_string())??;
        if !answer.truncated() {
            return Ok(answer);
        }
        let tcp = tokio::time::timeout(self.timeout, tcp_exchange(server, &packet, id));
        tcp.await.map_err(|_| "i/o timeout".to_string())?
    }
}

/// The SRV records of an answer, sorted by priority, then weight.
fn srv_records(answer: &Message) -> Vec<Srv> {
    let mut out: Vec<Srv> = answer
        .answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::SRV(s) => Some(Srv {
                target: s.target().to_ascii(),
                port: s.port(),
                priority: s.priority(),
                weight: s.weight(),
            }),
            _ => None,
        })
        .collect();
    out.sort_by_key(|s| (s.priority, s.weight));
    out
}

/// The first A or AAAA address of an answer.
fn first_address(answer: &Message) -> Option<IpAddr> {
    answer.answers().iter().find_map(|r| match r.data() {
        RData::A(a) => Some(IpAddr::V4(a.0)),
        RData::AAAA(a) => Some(IpAddr::V6(a.0)),
        _ => None,
    })
}

/// A UDP datagram that is the answer to query `id`; others (or garbage) are skipped, as
/// Go's resolver does.
fn reply_to(datagram: &[u8], id: u16) -> Option<Message> {
    let m = Message::from_vec(datagram).ok()?;
    (m.id() == id && m.message_type() == MessageType::Response).then_some(m)
}

/// For the `fuzz/` crate (feature `fuzzing` only): what a lookup takes from a server's
/// UDP `datagram` answering query `id`: its SRV records and first address.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub fn read_answer(datagram: &[u8], id: u16) -> Option<(Vec<Srv>, Option<IpAddr>)> {
    let m = reply_to(datagram, id)?;
    Some((srv_records(&m), first_address(&m)))
}

/// A Go-worded error for `name` from `server`.
fn lookup_error(name: &str, server: SocketAddr, reason: &str) -> LookupError {
    LookupError {
        name: name.to_string(),
        server: Some(server.to_string()),
        reason: reason.to_string(),
    }
}

fn rand_id() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish() as u16
}

async fn udp_exchange(server: SocketAddr, packet: &[u8], id: u16) -> Result<Message, String> {
    let local: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().expect("addr")
    } else {
        "[::]:0".parse().expect("addr")
    };
    let sock = UdpSocket::bind(local).await.map_err(|e| e.to_string())?;
    sock.connect(server).await.map_err(|e| e.to_string())?;
    sock.send(packet)
        .await
        .map_err(|e| io_reason(&sock, server, e))?;
    let mut buf = vec![0u8; MAX_ANSWER];
    loop {
        let n = sock
            .recv(&mut buf)
            .await
            .map_err(|e| io_reason(&sock, server, e))?;
        if let Some(m) = reply_to(&buf[..n], id) {
            return Ok(m);
        }
    }
}

/// Go's wording of a failed read: `read udp LOCAL->SERVER: read: connection refused`.
fn io_reason(sock: &UdpSocket, server: SocketAddr, e: std::io::Error) -> String {
    let local = sock.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let text = e.to_string();
    let short = text
        .split(" (os error")
        .next()
        .unwrap_or(&text)
        .to_lowercase();
    format!("read udp {local}->{server}: read: {short}")
}

async fn tcp_exchange(server: SocketAddr, packet: &[u8], id: u16) -> Result<Message, String> {
    let mut tcp = TcpStream::connect(server)
        .await
        .map_err(|e| e.to_string())?;
    let len = u16::try_from(packet.len()).map_err(|e| e.to_string())?;
    tcp.write_all(&len.to_be_bytes())
        .await
        .map_err(|e| e.to_string())?;
    tcp.write_all(packet).await.map_err(|e| e.to_string())?;
    let n = tcp.read_u16().await.map_err(|e| e.to_string())? as usize;
    let mut buf = vec![0u8; n];
    tcp.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
    let m = Message::from_vec(&buf).map_err(|e| e.to_string())?;
    if m.id() != id {
        return Err("server misbehaving".to_string());
    }
    Ok(m)
}

/// The system's resolver (getaddrinfo: `/etc/hosts`, then DNS).
async fn system_lookup(host: &str, port: u16) -> Result<SocketAddr, LookupError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| LookupError {
            name: host.to_string(),
            server: None,
            reason: "no such host".to_string(),
        })?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| LookupError {
            name: host.to_string(),
            server: None,
            reason: "no such host".to_string(),
        })
}

/// Go's `net.SplitHostPort` plus a numeric port.
pub fn split_host_port(hostport: &str) -> Result<(&str, u16), String> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (h, p) = rest
            .split_once(']')
            .ok_or_else(|| format!("address {hostport}: missing ']' in address"))?;
        (h, p.strip_prefix(':').unwrap_or(""))
    } else {
        hostport
            .rsplit_once(':')
            .ok_or_else(|| format!("address {hostport}: missing port in address"))?
    };
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("address {hostport}: invalid port"))?;
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_servers_and_options() {
        let r = Resolver::from_resolv_conf(
            "# comment\nnameserver 10.0.0.1\nnameserver ::1\nsearch x\noptions timeout:1 attempts:3\n",
        );
        assert_eq!(r.servers.len(), 2);
        assert_eq!(r.servers[0].to_string(), "10.0.0.1:53");
        assert_eq!(r.timeout, Duration::from_secs(1));
        assert_eq!(r.attempts, 3);
        assert_eq!(Resolver::from_resolv_conf("").servers.len(), 2);
    }

    #[test]
    fn lookup_errors_read_as_go() {
        let e = lookup_error("_x._tcp.a", "10.0.0.1:53".parse().unwrap(), "no such host");
        assert_eq!(
            e.to_string(),
            "lookup _x._tcp.a on 10.0.0.1:53: no such host"
        );
        assert!(Resolver::at("localhost").is_err());
    }

    #[test]
    fn host_port_split() {
        assert_eq!(split_host_port("a.b:2380").unwrap(), ("a.b", 2380));
        assert_eq!(split_host_port("[::1]:1").unwrap(), ("::1", 1));
        assert!(split_host_port("a.b").is_err());
    }
}

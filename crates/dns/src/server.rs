//! The DNS transport: UDP datagrams and TCP's 2-byte length frames, each query parsed,
//! answered from the [`Index`] and encoded. Bounds: UDP answers fit the client's size
//! (512 bytes, or its EDNS size up to [`MAX_UDP_PAYLOAD`]) or are truncated with TC set;
//! at most [`MAX_TCP_CONNECTIONS`] TCP connections, each closed after
//! [`TCP_IDLE`] without a query.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{watch, Semaphore};

use crate::answer::{answer, Zones};
use crate::index::{sync, Index};
use crate::{DnsConfig, DnsError};

/// The largest UDP answer we send (the DNS flag day's 1232 bytes).
pub const MAX_UDP_PAYLOAD: u16 = 1232;
/// Classic DNS's UDP limit without EDNS.
const PLAIN_UDP: usize = 512;
pub const MAX_TCP_CONNECTIONS: usize = 1024;
pub const TCP_IDLE: Duration = Duration::from_secs(10);

/// A bound DNS server (UDP and TCP on the same address).
pub struct DnsServer {
    config: DnsConfig,
    udp: UdpSocket,
    tcp: TcpListener,
}

/// How a query was carried.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Transport {
    Udp,
    Tcp,
}

struct Handler {
    index: Index,
    zones: Zones,
}

impl DnsServer {
    pub async fn bind(config: DnsConfig) -> Result<DnsServer, DnsError> {
        let bind_err = |source| DnsError::Bind {
            addr: config.listen,
            source,
        };
        let udp = UdpSocket::bind(config.listen).await.map_err(bind_err)?;
        let addr = udp.local_addr().map_err(bind_err)?;
        let tcp = TcpListener::bind(addr).await.map_err(bind_err)?;
        Ok(DnsServer { config, udp, tcp })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.udp.local_addr().unwrap_or(self.config.listen)
    }

    /// Serves until `shutdown` turns true; the index follows the cluster meanwhile.
    pub async fn run(
        self,
        client: chorus_client::Client,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(), DnsError> {
        let handler = Arc::new(Handler {
            index: Index::default(),
            zones: Zones {
                zone: self.config.zone.clone(),
                prefix: self.config.prefix.clone(),
            },
        });
        let prefix = self.config.prefix.clone();
        let syncer = {
            let (h, rx) = (handler.clone(), shutdown.clone());
            tokio::spawn(async move { sync(&h.index, &client, &prefix, rx).await })
        };
        let udp = tokio::spawn(serve_udp(self.udp, handler.clone(), shutdown.clone()));
        let tcp = tokio::spawn(serve_tcp(self.tcp, handler, shutdown));
        let _ = tokio::join!(syncer, udp, tcp);
        Ok(())
    }
}

async fn serve_udp(socket: UdpSocket, handler: Arc<Handler>, mut shutdown: watch::Receiver<bool>) {
    let mut buf = vec![0u8; 65_535];
    loop {
        let (n, peer) = tokio::select! {
            _ = crate::stopped(&mut shutdown) => return,
            r = socket.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!("DNS UDP receive: {e}");
                    continue;
                }
            },
        };
        if let Some(reply) = handler.handle(&buf[..n], Transport::Udp) {
            let _ = socket.send_to(&reply, peer).await;
        }
    }
}

async fn serve_tcp(
    listener: TcpListener,
    handler: Arc<Handler>,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_TCP_CONNECTIONS));
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let slot = tokio::select! {
            _ = crate::stopped(&mut shutdown) => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            s = slots.clone().acquire_owned() => s.expect("never closed"),
        };
        let stream = tokio::select! {
            _ = crate::stopped(&mut shutdown) => break,
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::debug!("DNS TCP accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let handler = handler.clone();
        conns.spawn(async move {
            let _slot = slot;
            serve_tcp_conn(stream, &handler).await;
        });
    }
    conns.shutdown().await;
}

/// Queries in 2-byte length frames until the client closes or idles.
async fn serve_tcp_conn(mut stream: TcpStream, handler: &Handler) {
    let mut buf = Vec::new();
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        buf.resize(usize::from(u16::from_be_bytes(len)), 0);
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut buf)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let Some(reply) = handler.handle(&buf, Transport::Tcp) else {
            return;
        };
        let Ok(n) = u16::try_from(reply.len()) else {
            return;
        };
        let mut framed = Vec::with_capacity(reply.len() + 2);
        framed.extend_from_slice(&n.to_be_bytes());
        framed.extend_from_slice(&reply);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
}

impl Handler {
    /// The reply to one packet; `None` drops it (too short to answer, or not a query).
    fn handle(&self, packet: &[u8], transport: Transport) -> Option<Vec<u8>> {
        if packet.len() < 12 || packet[2] & 0x80 != 0 {
            return None;
        }
        let id = u16::from_be_bytes([packet[0], packet[1]]);
        let opcode = OpCode::from_u8((packet[2] >> 3) & 0x0f);
        let request = match Message::from_vec(packet) {
            Ok(m) => m,
            Err(_) => return encode(&Message::error_msg(id, opcode, ResponseCode::FormErr)),
        };
        if request.op_code() != OpCode::Query {
            return encode(&Message::error_msg(
                id,
                request.op_code(),
                ResponseCode::NotImp,
            ));
        }
        if request.queries().len() != 1 {
            return encode(&Message::error_msg(
                id,
                OpCode::Query,
                ResponseCode::FormErr,
            ));
        }
        let mut reply = self.reply(&request);
        let limit = match (transport, request.extensions()) {
            (Transport::Tcp, _) => usize::from(u16::MAX),
            (Transport::Udp, Some(edns)) => {
                usize::from(edns.max_payload().clamp(512, MAX_UDP_PAYLOAD))
            }
            (Transport::Udp, None) => PLAIN_UDP,
        };
        let bytes = reply.to_vec().ok()?;
        if bytes.len() <= limit {
            return Some(bytes);
        }
        // Too large for UDP: the question alone, TC set; the client retries over TCP.
        reply.take_answers();
        reply.take_additionals();
        reply.take_name_servers();
        reply.set_truncated(true);
        reply.to_vec().ok()
    }

    fn reply(&self, request: &Message) -> Message {
        let query = request.queries()[0].clone();
        let result = answer(&self.index, &self.zones, query.name(), query.query_type());
        let mut reply = Message::new();
        reply
            .set_id(request.id())
            .set_message_type(MessageType::Response)
            .set_op_code(OpCode::Query)
            .set_authoritative(result.rcode != Some(ResponseCode::Refused))
            .set_recursion_desired(request.recursion_desired())
            .set_recursion_available(false)
            .set_response_code(result.rcode.unwrap_or(ResponseCode::NoError))
            .add_query(query);
        reply.add_answers(result.answers);
        reply.add_additionals(result.additionals);
        reply.add_name_servers(result.authority);
        if request.extensions().is_some() {
            let mut edns = Edns::new();
            edns.set_max_payload(MAX_UDP_PAYLOAD);
            reply.set_edns(edns);
        }
        reply
    }
}

fn encode(m: &Message) -> Option<Vec<u8>> {
    m.to_vec().ok()
}

/// For the `fuzz/` crate (feature `fuzzing` only): the server's packet handling without
/// its sockets.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    use super::{Handler, Index, Transport, Zones};

    /// A synced index for `zones` and the handler that answers from it.
    pub struct Responder(Handler);

    impl Responder {
        pub fn new(zones: Zones) -> Responder {
            let index = Index::default();
            index.mark_synced_for_tests();
            Responder(Handler { index, zones })
        }

        pub fn index(&self) -> &Index {
            &self.0.index
        }

        /// The reply to one query packet as the UDP or TCP server sends it (`None`: dropped).
        pub fn reply(&self, packet: &[u8], tcp: bool) -> Option<Vec<u8>> {
            let transport = if tcp { Transport::Tcp } else { Transport::Udp };
            self.0.handle(packet, transport)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::{Name, RData, RecordType};

    fn handler() -> Handler {
        let h = Handler {
            index: Index::default(),
            zones: Zones {
                zone: Name::from_ascii("chorus.local.").unwrap(),
                prefix: "/skydns".into(),
            },
        };
        h.index.put(
            "/skydns/local/chorus/web/x1",
            br#"{"host":"10.0.0.1","port":8080,"priority":10,"weight":10,"ttl":30,"text":"hello"}"#,
            0,
            2,
        );
        h.index.put(
            "/skydns/local/chorus/web/x2",
            br#"{"host":"10.0.0.2","port":8081}"#,
            0,
            3,
        );
        h.index.put("/skydns/local/chorus/bad", b"{not json", 0, 4);
        h.index.put(
            "/skydns/arpa/in-addr/10/0/0/1",
            br#"{"host":"x1.web.chorus.local"}"#,
            0,
            5,
        );
        h.index.put(
            "/skydns/local/chorus/alias",
            br#"{"host":"web.chorus.local"}"#,
            0,
            6,
        );
        // What `sync` does after its snapshot.
        h.index.delete("/nothing", 6);
        h
    }

    fn ask(h: &Handler, name: &str, t: RecordType, transport: Transport) -> Message {
        let mut m = Message::new();
        m.set_id(7)
            .add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        let reply = h.handle(&m.to_vec().unwrap(), transport).expect("a reply");
        Message::from_vec(&reply).unwrap()
    }

    #[test]
    fn answers_like_coredns() {
        let h = handler();
        h.index.mark_synced_for_tests();
        let a = ask(&h, "web.chorus.local.", RecordType::A, Transport::Udp);
        assert_eq!(a.response_code(), ResponseCode::NoError);
        assert_eq!(a.answers().len(), 2);
        let srv = ask(&h, "web.chorus.local.", RecordType::SRV, Transport::Udp);
        assert_eq!(srv.answers().len(), 2);
        assert_eq!(srv.additionals().len(), 2);
        let txt = ask(&h, "x1.web.chorus.local.", RecordType::TXT, Transport::Udp);
        assert!(matches!(txt.answers()[0].data(), RData::TXT(_)));
        let nx = ask(&h, "nope.chorus.local.", RecordType::A, Transport::Udp);
        assert_eq!(nx.response_code(), ResponseCode::NXDomain);
        assert_eq!(nx.name_servers().len(), 1, "SOA in authority");
        let nodata = ask(&h, "x2.web.chorus.local.", RecordType::AAAA, Transport::Udp);
        assert_eq!(nodata.response_code(), ResponseCode::NoError);
        assert!(nodata.answers().is_empty());
        let ptr = ask(
            &h,
            "1.0.0.10.in-addr.arpa.",
            RecordType::PTR,
            Transport::Udp,
        );
        assert_eq!(ptr.answers().len(), 1);
        let refused = ask(&h, "example.com.", RecordType::A, Transport::Udp);
        assert_eq!(refused.response_code(), ResponseCode::Refused);
        let wild = ask(&h, "*.web.chorus.local.", RecordType::A, Transport::Udp);
        assert_eq!(wild.answers().len(), 2);
        let alias = ask(&h, "alias.chorus.local.", RecordType::A, Transport::Udp);
        assert_eq!(alias.answers().len(), 3, "CNAME then the two addresses");
    }

    /// Found for fuzz/fuzz_targets/dns.rs (which reproduces it): the SRV answer sums the
    /// weights of each priority; two records whose weights add past i64::MAX overflowed
    /// the sum (a panic where overflow is checked, as in debug builds).
    #[test]
    fn srv_weights_whose_sum_overflows() {
        let h = handler();
        h.index.mark_synced_for_tests();
        for i in 1..=2 {
            let value = format!(
                r#"{{"host":"10.2.0.{i}","port":{i},"weight":{}}}"#,
                i64::MAX
            );
            let key = format!("/skydns/local/chorus/heavy/x{i}");
            h.index.put(&key, value.as_bytes(), 0, 20 + i);
        }
        let srv = ask(&h, "heavy.chorus.local.", RecordType::SRV, Transport::Tcp);
        assert_eq!(srv.response_code(), ResponseCode::NoError);
        assert_eq!(srv.answers().len(), 2);
    }

    #[test]
    fn malformed_and_oversized() {
        let h = handler();
        h.index.mark_synced_for_tests();
        assert!(h.handle(b"short", Transport::Udp).is_none());
        let mut garbage = vec![0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0];
        garbage.extend_from_slice(&[0xff; 20]);
        let reply = Message::from_vec(&h.handle(&garbage, Transport::Udp).unwrap()).unwrap();
        assert_eq!(reply.id(), 0x1234);
        assert_eq!(reply.response_code(), ResponseCode::FormErr);
        for i in 0..40 {
            h.index.put(
                &format!("/skydns/local/chorus/big/x{i}"),
                format!(r#"{{"host":"10.1.0.{i}","text":"{}"}}"#, "t".repeat(200)).as_bytes(),
                0,
                10 + i,
            );
        }
        let udp = ask(&h, "big.chorus.local.", RecordType::TXT, Transport::Udp);
        assert!(udp.truncated());
        assert!(udp.answers().is_empty());
        let tcp = ask(&h, "big.chorus.local.", RecordType::TXT, Transport::Tcp);
        assert!(!tcp.truncated());
        assert_eq!(tcp.answers().len(), 40);
    }
}

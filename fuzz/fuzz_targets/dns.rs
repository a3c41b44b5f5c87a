//! DNS: the queries chorus's DNS server answers (`chorus-dns`: packet parsing, the answer
//! built from SkyDNS records, encoding and UDP truncation) and what discovery reads from
//! answers (`chorus-discovery`: the SRV records and addresses of a resolver's reply, and
//! the v2 discovery service's keys API answers). Entry points behind the crates' `fuzzing`
//! features.
//!
//! Input: a selector byte, then the case's bytes. Contracts beyond no panic:
//! * server (flags byte: bit 0 TCP; u16 BE packet length; packet; then SkyDNS records, one
//!   per line, `<key under /skydns/> <JSON value>`): a reply is a DNS response with the
//!   query's ID, and over UDP it fits 512 bytes, or the query's EDNS size up to 1232;
//! * resolver reply (u16 BE query ID, then the datagram): SRV records come sorted by
//!   priority, then weight;
//! * keys API answer (status selector, then the JSON body).
#![no_main]

use chorus_dns::answer::Zones;
use chorus_dns::server::fuzzing::Responder;
use chorus_dns::server::MAX_UDP_PAYLOAD;
use hickory_proto::op::{Message, MessageType};
use hickory_proto::rr::Name;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => server(rest),
        1 => resolver_reply(rest),
        _ => keys_answer(rest),
    }
});

fn server(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Some((len, rest)) = rest.split_first_chunk::<2>() else {
        return;
    };
    let (packet, records) = rest.split_at(usize::from(u16::from_be_bytes(*len)).min(rest.len()));
    let responder = Responder::new(Zones {
        zone: Name::from_ascii("chorus.local.").expect("zone"),
        prefix: "/skydns".into(),
    });
    for (revision, line) in records.split(|&b| b == b'\n').enumerate() {
        let (key, value) = match line.iter().position(|&b| b == b' ') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, &b""[..]),
        };
        let key = format!("/skydns/{}", String::from_utf8_lossy(key));
        responder.index().put(&key, value, 0, revision as i64 + 1);
    }
    let tcp = flags & 1 != 0;
    let Some(reply) = responder.reply(packet, tcp) else {
        return;
    };
    let parsed = Message::from_vec(&reply).expect("the reply parses");
    assert_eq!(parsed.message_type(), MessageType::Response);
    assert_eq!(parsed.id(), u16::from_be_bytes([packet[0], packet[1]]));
    if !tcp {
        let limit = match Message::from_vec(packet)
            .ok()
            .and_then(|q| q.extensions().clone())
        {
            Some(edns) => edns.max_payload().clamp(512, MAX_UDP_PAYLOAD),
            None => 512,
        };
        assert!(
            reply.len() <= usize::from(limit),
            "{} > {limit}",
            reply.len()
        );
    }
}

fn resolver_reply(data: &[u8]) {
    let Some((id, datagram)) = data.split_first_chunk::<2>() else {
        return;
    };
    if let Some((srvs, _)) = chorus_discovery::dns::read_answer(datagram, u16::from_be_bytes(*id)) {
        let keys: Vec<_> = srvs.iter().map(|s| (s.priority, s.weight)).collect();
        assert!(keys.is_sorted(), "SRV records out of order: {keys:?}");
    }
}

fn keys_answer(data: &[u8]) {
    let Some((&status, body)) = data.split_first() else {
        return;
    };
    let status = [200, 201, 400, 403, 404, 412, 500, 503][usize::from(status % 8)];
    chorus_discovery::v2::read_keys_answer(status, body);
}

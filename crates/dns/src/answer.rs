//! Questions to answers, as CoreDNS's etcd plugin (`plugin/backend_lookup.go`) builds
//! them from the records of a name's subtree:
//!
//! | type | from each record |
//! | --- | --- |
//! | A / AAAA | `host` an address of that family; a name: CNAME (followed inside the zone) |
//! | SRV | priority, weight (shared out per priority as CoreDNS does), port, target: `host` when a name, else the key as a name with its address in the additional section |
//! | TXT | `text` (split in 255-byte strings) |
//! | PTR | exact key under `arpa/in-addr` or `arpa/ip6`, `host` a name |
//! | SOA | synthesized at the zone apex |
//!
//! A name without any record is NXDOMAIN, a name with records but none of the type is
//! NODATA (NOERROR, empty answer); both carry the zone's SOA in the authority section.

use std::net::IpAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::index::Index;
use crate::record::{domain, group, path, path_with_wildcard, split255, HostType, Service};

/// CNAME chains followed at most (CoreDNS's `maxCnameChainLength`).
const MAX_CNAME_CHAIN: usize = 10;
/// TTL of the synthesized SOA.
const SOA_TTL: u32 = 30;

/// The sections of an answer.
#[derive(Debug, Default)]
pub struct Answer {
    pub rcode: Option<ResponseCode>,
    pub answers: Vec<Record>,
    pub additionals: Vec<Record>,
    pub authority: Vec<Record>,
}

/// What the server answers for.
pub struct Zones {
    /// The SkyDNS zone, e.g. `skydns.local.`.
    pub zone: Name,
    /// `/skydns`.
    pub prefix: String,
}

impl Zones {
    fn reverse(&self) -> [Name; 2] {
        [
            Name::from_ascii("in-addr.arpa.").expect("valid name"),
            Name::from_ascii("ip6.arpa.").expect("valid name"),
        ]
    }

    /// The zone `name` is in, if any.
    fn zone_of(&self, name: &Name) -> Option<Name> {
        if self.zone.zone_of(name) {
            return Some(self.zone.clone());
        }
        self.reverse().into_iter().find(|z| z.zone_of(name))
    }

    fn soa(&self, zone: &Name, serial: i64) -> Record {
        let ns = Name::from_ascii("ns.dns.")
            .and_then(|n| n.append_domain(zone))
            .unwrap_or_else(|_| zone.clone());
        let mbox = Name::from_ascii("hostmaster.")
            .and_then(|n| n.append_domain(zone))
            .unwrap_or_else(|_| zone.clone());
        let soa = SOA::new(ns, mbox, serial.max(1) as u32, 7200, 1800, 86400, SOA_TTL);
        Record::from_rdata(zone.clone(), SOA_TTL, RData::SOA(soa))
    }
}

fn fqdn(host: &str) -> Option<Name> {
    let mut n = Name::from_ascii(host).ok()?;
    n.set_fqdn(true);
    Some(n)
}

/// The records for `name` (CoreDNS's `Records` + `Group`): `None` when no key matches.
fn services(ix: &Index, zones: &Zones, name: &Name, exact: bool) -> Option<Vec<Service>> {
    let text = name.to_lowercase().to_ascii();
    let (p, star) = path_with_wildcard(&text, &zones.prefix);
    let found = ix.lookup(&p, exact);
    if found.is_empty() {
        return None;
    }
    let segments: Vec<String> = path(&text, &zones.prefix)
        .split('/')
        .map(str::to_string)
        .collect();
    let matching: Vec<Service> = found
        .into_iter()
        .filter(|s| !star || wildcard_match(&s.key, &segments))
        .collect();
    if matching.is_empty() {
        return None;
    }
    Some(group(matching))
}

fn wildcard_match(key: &str, segments: &[String]) -> bool {
    let parts: Vec<&str> = key.split('/').collect();
    segments.iter().enumerate().all(|(i, seg)| {
        parts
            .get(i)
            .is_some_and(|p| seg == "*" || seg == "any" || p == seg)
    })
}

/// Answers one question.
pub fn answer(ix: &Index, zones: &Zones, qname: &Name, qtype: RecordType) -> Answer {
    let Some(zone) = zones.zone_of(qname) else {
        return Answer {
            rcode: Some(ResponseCode::Refused),
            ..Default::default()
        };
    };
    if !ix.synced() {
        return Answer {
            rcode: Some(ResponseCode::ServFail),
            ..Default::default()
        };
    }
    let mut out = Answer::default();
    let at_apex = qname.to_lowercase() == zone.to_lowercase();
    let exists = match qtype {
        RecordType::SOA if at_apex => {
            out.answers.push(zones.soa(&zone, ix.revision()));
            true
        }
        RecordType::A | RecordType::AAAA => {
            let mut chain = Vec::new();
            let found = address(ix, zones, &zone, qname, qtype, at_apex, &mut chain);
            out.answers = chain;
            found
        }
        RecordType::SRV => srv(ix, zones, &zone, qname, &mut out),
        RecordType::TXT => match services(ix, zones, qname, false) {
            None => false,
            Some(sx) => {
                for s in sx.iter().filter(|s| !s.text.is_empty()) {
                    let txt = TXT::new(split255(&s.text));
                    out.answers
                        .push(Record::from_rdata(qname.clone(), s.ttl, RData::TXT(txt)));
                }
                true
            }
        },
        RecordType::PTR => match services(ix, zones, qname, true) {
            None => false,
            Some(sx) => {
                for s in &sx {
                    if let (HostType::Name(_), Some(target)) = (s.host_type(), fqdn(&s.host)) {
                        out.answers.push(Record::from_rdata(
                            qname.clone(),
                            s.ttl,
                            RData::PTR(PTR(target)),
                        ));
                    }
                }
                true
            }
        },
        _ => services(ix, zones, qname, false).is_some() || at_apex,
    };
    if !exists && !at_apex {
        out.rcode = Some(ResponseCode::NXDomain);
    }
    if out.answers.is_empty() {
        out.authority.push(zones.soa(&zone, ix.revision()));
    }
    out
}

/// A or AAAA records of `name` into `chain` (CNAMEs first); whether the name exists.
fn address(
    ix: &Index,
    zones: &Zones,
    zone: &Name,
    name: &Name,
    qtype: RecordType,
    at_apex: bool,
    chain: &mut Vec<Record>,
) -> bool {
    // The zone's own address lives under dns/apex (CoreDNS's `checkForApex`).
    let apex = if at_apex {
        Name::from_ascii("apex.dns.")
            .and_then(|n| n.append_domain(zone))
            .ok()
            .and_then(|n| services(ix, zones, &n, false))
    } else {
        None
    };
    let Some(sx) = apex.or_else(|| services(ix, zones, name, false)) else {
        return false;
    };
    let mut seen = std::collections::HashSet::new();
    for s in &sx {
        let rdata = match s.host_type() {
            HostType::Ip(IpAddr::V4(ip)) if qtype == RecordType::A => RData::A(A(ip)),
            HostType::Ip(IpAddr::V6(ip)) if qtype == RecordType::AAAA => RData::AAAA(AAAA(ip)),
            HostType::Name(_) => {
                cname(ix, zones, zone, name, qtype, s, chain);
                continue;
            }
            _ => continue,
        };
        if seen.insert(s.host.clone()) {
            chain.push(Record::from_rdata(name.clone(), s.ttl, rdata));
        }
    }
    true
}

/// A CNAME to `s.host`, followed while it stays in the zone (bounded, no loops).
fn cname(
    ix: &Index,
    zones: &Zones,
    zone: &Name,
    name: &Name,
    qtype: RecordType,
    s: &Service,
    chain: &mut Vec<Record>,
) {
    let Some(target) = fqdn(&s.host) else { return };
    if target.to_lowercase() == name.to_lowercase() || chain.len() > MAX_CNAME_CHAIN {
        return;
    }
    let record = Record::from_rdata(name.clone(), s.ttl, RData::CNAME(CNAME(target.clone())));
    if chain.contains(&record) {
        return;
    }
    chain.push(record);
    if zone.zone_of(&target) {
        address(ix, zones, zone, &target, qtype, false, chain);
    }
}

/// SRV records of `name` with their addresses as additionals; whether the name exists.
fn srv(ix: &Index, zones: &Zones, zone: &Name, name: &Name, out: &mut Answer) -> bool {
    let Some(sx) = services(ix, zones, name, false) else {
        return false;
    };
    let mut per_priority = std::collections::HashMap::<i64, i64>::new();
    for s in &sx {
        let w = if s.weight == 0 { 100 } else { s.weight };
        // Wrapping, as Go's int in CoreDNS: record weights are any JSON integers.
        let sum = per_priority.entry(s.priority).or_default();
        *sum = sum.wrapping_add(w);
    }
    let mut seen = std::collections::HashSet::new();
    for s in &sx {
        if s.port == -1 {
            continue;
        }
        let total = per_priority[&s.priority].max(1) as f64;
        let share = 100.0 / total
            * if s.weight == 0 {
                100.0
            } else {
                s.weight as f64
            };
        let weight = (share.floor() as u16).max(1);
        let (target, addr) = match s.host_type() {
            HostType::Ip(ip) => (Name::from_ascii(domain(&s.key)).ok(), Some(ip)),
            HostType::Name(h) => (fqdn(&strip_labels(&h, s.targetstrip)), None),
            HostType::None => (None, None),
        };
        let Some(target) = target else { continue };
        let rdata = SRV::new(s.priority16(), weight, s.port16(), target.clone());
        out.answers
            .push(Record::from_rdata(name.clone(), s.ttl, RData::SRV(rdata)));
        match addr {
            Some(IpAddr::V4(ip)) if seen.insert(target.clone()) => out
                .additionals
                .push(Record::from_rdata(target, s.ttl, RData::A(A(ip)))),
            Some(IpAddr::V6(ip)) if seen.insert(target.clone()) => out
                .additionals
                .push(Record::from_rdata(target, s.ttl, RData::AAAA(AAAA(ip)))),
            None if zone.zone_of(&target) && seen.insert(target.clone()) => {
                let mut chain = Vec::new();
                address(ix, zones, zone, &target, RecordType::A, false, &mut chain);
                out.additionals.extend(chain);
            }
            _ => {}
        }
    }
    true
}

/// CoreDNS's `targetStrip`: drops the first `n` labels (keeps the name if too few).
fn strip_labels(host: &str, n: i64) -> String {
    if n <= 0 {
        return host.to_string();
    }
    let labels: Vec<&str> = host.trim_end_matches('.').split('.').collect();
    if (n as usize) >= labels.len() {
        return host.to_string();
    }
    labels[n as usize..].join(".")
}

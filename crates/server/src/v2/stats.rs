//! `/v2/stats/self` and `/v2/stats/leader` bodies (etcd's `v2stats`): plain structs the
//! server fills, rendered with etcd's field names, order and number formats.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::format::{go_duration, push_json_str, rfc3339_nano};

/// etcd's raft states as `/v2/stats/self` names them.
pub fn raft_state_name(state: raft::StateRole) -> &'static str {
    match state {
        raft::StateRole::Follower => "StateFollower",
        raft::StateRole::Candidate => "StateCandidate",
        raft::StateRole::Leader => "StateLeader",
        raft::StateRole::PreCandidate => "StatePreCandidate",
    }
}

/// This member's view (etcd's `ServerStats`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SelfStats {
    pub name: String,
    /// Member ID, hex.
    pub id: String,
    /// `StateLeader`, `StateFollower`, ... (see [`raft_state_name`]).
    pub state: String,
    /// When the member started, unix nanoseconds.
    pub start_time: i64,
    /// The leader's ID, hex.
    pub leader: String,
    /// How long that member has been leader, nanoseconds.
    pub leader_uptime: i64,
    /// When this member last saw the leader change, unix nanoseconds.
    pub leader_start_time: i64,
    pub recv_append_request_cnt: u64,
    pub recv_pkg_rate: f64,
    pub recv_bandwidth_rate: f64,
    pub send_append_request_cnt: u64,
    pub send_pkg_rate: f64,
    pub send_bandwidth_rate: f64,
}

impl SelfStats {
    pub fn to_json(&self) -> String {
        let mut o = String::with_capacity(256);
        o.push_str("{\"name\":");
        push_json_str(&mut o, &self.name);
        o.push_str(",\"id\":");
        push_json_str(&mut o, &self.id);
        o.push_str(",\"state\":");
        push_json_str(&mut o, &self.state);
        o.push_str(&format!(
            ",\"startTime\":\"{}\",\"leaderInfo\":{{\"leader\":",
            rfc3339_nano(self.start_time)
        ));
        push_json_str(&mut o, &self.leader);
        o.push_str(&format!(
            ",\"uptime\":\"{}\",\"startTime\":\"{}\"}}",
            go_duration(self.leader_uptime),
            rfc3339_nano(self.leader_start_time)
        ));
        o.push_str(&format!(
            ",\"recvAppendRequestCnt\":{}",
            self.recv_append_request_cnt
        ));
        push_rate(&mut o, "recvPkgRate", self.recv_pkg_rate);
        push_rate(&mut o, "recvBandwidthRate", self.recv_bandwidth_rate);
        o.push_str(&format!(
            ",\"sendAppendRequestCnt\":{}",
            self.send_append_request_cnt
        ));
        push_rate(&mut o, "sendPkgRate", self.send_pkg_rate);
        push_rate(&mut o, "sendBandwidthRate", self.send_bandwidth_rate);
        o.push('}');
        o
    }
}

fn push_rate(o: &mut String, name: &str, v: f64) {
    // `omitempty`: a zero rate is left out.
    if v != 0.0 {
        o.push_str(&format!(",\"{name}\":{}", go_float(v)));
    }
}

/// A float64 as Go's `encoding/json` writes it.
pub fn go_float(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-6..1e21).contains(&a) {
        let s = format!("{v:e}");
        match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
            _ => s,
        }
    } else {
        format!("{v}")
    }
}

/// The append requests (raft `MsgAppend`) a member sent and received, as etcd's
/// `ServerStats` counts them: the transport counts each one it hands to a peer's stream,
/// the peer service each one it receives; rates over the last 200 of each.
#[derive(Debug, Default)]
pub struct AppendTraffic {
    inner: Mutex<Traffic>,
}

#[derive(Debug, Default)]
struct Traffic {
    sent: u64,
    received: u64,
    send_queue: RateQueue,
    recv_queue: RateQueue,
}

/// What `/v2/stats/self` shows of the traffic.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TrafficStats {
    pub send_append_request_cnt: u64,
    pub send_pkg_rate: f64,
    pub send_bandwidth_rate: f64,
    pub recv_append_request_cnt: u64,
    pub recv_pkg_rate: f64,
    pub recv_bandwidth_rate: f64,
}

impl AppendTraffic {
    /// An append request of `size` bytes handed to a peer.
    pub fn sent(&self, size: usize) {
        let mut t = self.inner.lock();
        t.sent += 1;
        t.send_queue.insert(Instant::now(), size);
    }

    /// An append request of `size` bytes received from the leader.
    pub fn received(&self, size: usize) {
        let mut t = self.inner.lock();
        t.received += 1;
        t.recv_queue.insert(Instant::now(), size);
    }

    pub fn stats(&self) -> TrafficStats {
        let now = Instant::now();
        let mut t = self.inner.lock();
        let (send_pkg_rate, send_bandwidth_rate) = t.send_queue.rate(now);
        let (recv_pkg_rate, recv_bandwidth_rate) = t.recv_queue.rate(now);
        TrafficStats {
            send_append_request_cnt: t.sent,
            send_pkg_rate,
            send_bandwidth_rate,
            recv_append_request_cnt: t.received,
            recv_pkg_rate,
            recv_bandwidth_rate,
        }
    }
}

/// etcd's `statsQueue`: the last 200 requests (time, size).
#[derive(Debug, Default)]
struct RateQueue {
    items: VecDeque<(Instant, usize)>,
    bytes: usize,
}

impl RateQueue {
    const CAPACITY: usize = 200;

    fn insert(&mut self, at: Instant, size: usize) {
        if self.items.len() == Self::CAPACITY {
            if let Some((_, old)) = self.items.pop_front() {
                self.bytes -= old;
            }
        }
        self.items.push_back((at, size));
        self.bytes += size;
    }

    /// Requests and bytes per second between the first and the last request held; none
    /// once the last one is more than a second old (etcd then empties the queue). A
    /// single request (no time between first and last) has no rate either (etcd's
    /// division gives +Inf there, which its JSON encoder then refuses).
    fn rate(&mut self, now: Instant) -> (f64, f64) {
        let (Some(&(first, _)), Some(&(last, _))) = (self.items.front(), self.items.back()) else {
            return (0.0, 0.0);
        };
        if now.saturating_duration_since(last) > Duration::from_secs(1) {
            self.items.clear();
            self.bytes = 0;
            return (0.0, 0.0);
        }
        let span = last.duration_since(first).as_secs_f64();
        if span == 0.0 {
            return (0.0, 0.0);
        }
        (self.items.len() as f64 / span, self.bytes as f64 / span)
    }
}

/// Latency to one follower, milliseconds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LatencyStats {
    pub current: f64,
    pub average: f64,
    pub standard_deviation: f64,
    pub minimum: f64,
    pub maximum: f64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct FollowerStats {
    pub latency: LatencyStats,
    pub fail: u64,
    pub success: u64,
}

impl FollowerStats {
    /// A follower nothing was measured for, as etcd creates it when it adds the peer: its
    /// minimum latency starts at 2^63. etcd measures latency and counts only messages it
    /// posts through its HTTP pipeline (before the streams are up, and snapshots);
    /// chorus sends everything over the stream, so these stay as created.
    pub fn unmeasured() -> FollowerStats {
        FollowerStats {
            latency: LatencyStats {
                minimum: (1u64 << 63) as f64,
                ..LatencyStats::default()
            },
            ..FollowerStats::default()
        }
    }
}

/// The leader's view of its followers (etcd's `LeaderStats`); only the leader has one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LeaderStats {
    /// The leader's ID, hex.
    pub leader: String,
    /// By follower ID, hex.
    pub followers: BTreeMap<String, FollowerStats>,
}

impl LeaderStats {
    pub fn to_json(&self) -> String {
        let mut o = String::from("{\"leader\":");
        push_json_str(&mut o, &self.leader);
        o.push_str(",\"followers\":{");
        for (i, (id, f)) in self.followers.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            push_json_str(&mut o, id);
            let l = &f.latency;
            o.push_str(&format!(
                ":{{\"latency\":{{\"current\":{},\"average\":{},\"standardDeviation\":{},\"minimum\":{},\"maximum\":{}}},\"counts\":{{\"fail\":{},\"success\":{}}}}}",
                go_float(l.current),
                go_float(l.average),
                go_float(l.standard_deviation),
                go_float(l.minimum),
                go_float(l.maximum),
                f.fail,
                f.success
            ));
        }
        o.push_str("}}");
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_format_like_go() {
        assert_eq!(go_float(0.0), "0");
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(9.223372036854776e18), "9223372036854776000");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(1e-7), "1e-7");
    }

    #[test]
    fn rates_over_the_queue_like_etcd() {
        let t0 = Instant::now();
        let mut q = RateQueue::default();
        assert_eq!(q.rate(t0), (0.0, 0.0));
        q.insert(t0, 100);
        assert_eq!(q.rate(t0), (0.0, 0.0), "one request has no rate");
        q.insert(t0 + Duration::from_millis(500), 300);
        // 2 requests and 400 bytes over half a second.
        assert_eq!(q.rate(t0 + Duration::from_millis(600)), (4.0, 800.0));
        // The last one more than a second old: no rate, and the queue is emptied.
        assert_eq!(q.rate(t0 + Duration::from_millis(1600)), (0.0, 0.0));
        assert!(q.items.is_empty());
        for i in 0..250u64 {
            q.insert(t0 + Duration::from_millis(2000 + i), 10);
        }
        assert_eq!(
            (q.items.len(), q.bytes),
            (200, 2000),
            "the last 200 are kept"
        );
    }

    #[test]
    fn unmeasured_follower_renders_like_etcd() {
        let mut followers = BTreeMap::new();
        followers.insert("7e3a8f741dea6788".to_string(), FollowerStats::unmeasured());
        let l = LeaderStats {
            leader: "2e1259d415f2a040".into(),
            followers,
        };
        assert_eq!(
            l.to_json(),
            r#"{"leader":"2e1259d415f2a040","followers":{"7e3a8f741dea6788":{"latency":{"current":0,"average":0,"standardDeviation":0,"minimum":9223372036854776000,"maximum":0},"counts":{"fail":0,"success":0}}}}"#
        );
    }

    #[test]
    fn self_stats_render_like_etcd() {
        // Recorded from etcd 3.4.23 (`/v2/stats/self` of a single-member cluster).
        let s = SelfStats {
            name: "n1".into(),
            id: "2e1259d415f2a040".into(),
            state: "StateLeader".into(),
            start_time: 1_795_606_214_856_339_038,
            leader: "2e1259d415f2a040".into(),
            leader_uptime: 56_619_931_237,
            leader_start_time: 1_795_606_215_659_148_804,
            ..Default::default()
        };
        assert_eq!(
            s.to_json(),
            r#"{"name":"n1","id":"2e1259d415f2a040","state":"StateLeader","startTime":"2026-11-25T11:30:14.856339038Z","leaderInfo":{"leader":"2e1259d415f2a040","uptime":"56.619931237s","startTime":"2026-11-25T11:30:15.659148804Z"},"recvAppendRequestCnt":0,"sendAppendRequestCnt":0}"#
        );
        let l = LeaderStats {
            leader: "2e1259d415f2a040".into(),
            followers: BTreeMap::new(),
        };
        assert_eq!(
            l.to_json(),
            r#"{"leader":"2e1259d415f2a040","followers":{}}"#
        );
    }
}

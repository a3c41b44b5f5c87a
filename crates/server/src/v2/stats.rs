//! `/v2/stats/self` and `/v2/stats/leader` bodies (etcd's `v2stats`): plain structs the
//! server fills, rendered with etcd's field names, order and number formats.

use std::collections::BTreeMap;

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

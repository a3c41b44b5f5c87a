//! etcd's contention detector (`contention.TimeoutDetector`) on the leader's heartbeats:
//! heartbeats to a follower are due every heartbeat interval; one sent more than twice
//! that after the previous one means the raft loop was held up (a slow disk, most often),
//! and etcd warns "leader failed to send out heartbeat on time" and counts
//! `etcd_server_heartbeat_send_failures_total`. The gaps restart when leadership changes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use raft::eraftpb::{Message, MessageType};

pub struct HeartbeatDetector {
    interval: Duration,
    last: HashMap<u64, Instant>,
}

impl HeartbeatDetector {
    pub fn new(interval: Duration) -> HeartbeatDetector {
        HeartbeatDetector {
            interval,
            last: HashMap::new(),
        }
    }

    /// Forgets every follower's last heartbeat (a new term of leadership).
    pub fn reset(&mut self) {
        self.last.clear();
    }

    /// Records a heartbeat to `to` sent at `now`; how much later than twice the interval
    /// it came after the previous one, if it did.
    pub fn observe(&mut self, to: u64, now: Instant) -> Option<Duration> {
        let expected = 2 * self.interval;
        let previous = self.last.insert(to, now)?;
        now.saturating_duration_since(previous)
            .checked_sub(expected)
            .filter(|d| !d.is_zero())
    }

    /// Observes the heartbeats among `msgs` (sent now) and warns as etcd does for each
    /// late one.
    pub fn check(&mut self, msgs: &[Message]) {
        let mut clock = None;
        for m in msgs
            .iter()
            .filter(|m| m.get_msg_type() == MessageType::MsgHeartbeat)
        {
            // The clock is read only when a heartbeat goes out (most sends carry none).
            let now = *clock.get_or_insert_with(Instant::now);
            if let Some(exceeded) = self.observe(m.to, now) {
                tracing::warn!(
                    to = %format!("{:x}", m.to),
                    heartbeat_interval = %chorus_log::GoDuration(self.interval),
                    expected_duration = %chorus_log::GoDuration(2 * self.interval),
                    exceeded_duration = %chorus_log::GoDuration(exceeded),
                    "leader failed to send out heartbeat on time; took too long, leader is overloaded likely from slow disk"
                );
                chorus_metrics::HEARTBEAT_SEND_FAILURES.inc();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heartbeat_later_than_twice_the_interval_is_late_by_the_excess() {
        let mut d = HeartbeatDetector::new(Duration::from_millis(100));
        let t0 = Instant::now();
        assert_eq!(
            d.observe(2, t0),
            None,
            "the first heartbeat has nothing to be late for"
        );
        assert_eq!(d.observe(2, t0 + Duration::from_millis(200)), None);
        assert_eq!(
            d.observe(2, t0 + Duration::from_millis(450)),
            Some(Duration::from_millis(50))
        );
        // Per follower, and forgotten on reset.
        assert_eq!(d.observe(3, t0 + Duration::from_millis(450)), None);
        d.reset();
        assert_eq!(d.observe(2, t0 + Duration::from_secs(10)), None);
    }
}

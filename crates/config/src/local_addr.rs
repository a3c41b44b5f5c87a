//! The `SetMemberLocalAddr` gate (etcd 3.6's `Config.InferLocalAddr`): peers are dialed
//! from the first IP address among `--initial-advertise-peer-urls` that is neither
//! loopback nor unspecified, so that a member with several addresses talks to its peers
//! from the one it advertises.

use std::net::IpAddr;

use super::config::Config;

impl Config {
    /// The local address to dial peers from: `None` when the gate is off, or when no
    /// advertised peer URL names a suitable IP (hostnames are not resolved, as in etcd).
    pub fn member_local_addr(&self) -> Option<IpAddr> {
        if !self.feature_gates.set_member_local_addr {
            return None;
        }
        self.initial_advertise_peer_urls.iter().find_map(|u| {
            let ip: IpAddr = u.hostname().parse().ok()?;
            (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::url::Url;

    fn config(gate: bool, urls: &[&str]) -> Config {
        let mut c = Config::default();
        c.feature_gates.set_member_local_addr = gate;
        c.initial_advertise_peer_urls = urls.iter().map(|u| Url::parse_etcd(u).unwrap()).collect();
        c
    }

    #[test]
    fn the_first_advertised_ip_that_is_not_loopback() {
        let urls = [
            "http://127.0.0.1:2380",
            "http://0.0.0.0:2380",
            "http://example.com:2380",
            "http://10.0.0.7:2380",
            "http://10.0.0.8:2380",
        ];
        assert_eq!(
            config(true, &urls).member_local_addr(),
            Some("10.0.0.7".parse().unwrap())
        );
        assert_eq!(config(false, &urls).member_local_addr(), None);
        assert_eq!(config(true, &urls[..3]).member_local_addr(), None);
        let v6 = config(true, &["http://[::1]:2380", "https://[fd00::2]:2380"]);
        assert_eq!(v6.member_local_addr(), Some("fd00::2".parse().unwrap()));
    }
}

//! etcd's `netutil.GetDefaultHost`: the machine's address on the default route.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};

/// The address etcd would advertise instead of `0.0.0.0` (the preferred
/// source address of the IPv4 default route). Errors use etcd's wording.
///
/// etcd asks the kernel over netlink; chorus reads `/proc/net/route` and lets
/// the kernel pick the source address by connecting a UDP socket to the
/// default gateway (no packet is sent).
pub fn detect_default_host() -> Result<String, String> {
    let routes = std::fs::read_to_string("/proc/net/route")
        .map_err(|_| "could not find default route".to_string())?;
    let gateway = default_gateway(&routes).ok_or("could not find default route")?;
    let target = if gateway.is_unspecified() {
        Ipv4Addr::new(192, 0, 2, 1) // TEST-NET-1: routed via the default route
    } else {
        gateway
    };
    let sock =
        UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).map_err(|e| e.to_string())?;
    sock.connect(SocketAddrV4::new(target, 9))
        .map_err(|_| "could not find default host".to_string())?;
    let local = sock.local_addr().map_err(|e| e.to_string())?;
    if local.ip().is_unspecified() || local.ip().is_loopback() {
        return Err("could not find default host".to_string());
    }
    Ok(local.ip().to_string())
}

/// Gateway of the main-table default route in `/proc/net/route` format.
fn default_gateway(routes: &str) -> Option<Ipv4Addr> {
    for line in routes.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 8 {
            continue;
        }
        // Destination and Mask are 0: the default route.
        if cols[1] == "00000000" && cols[7] == "00000000" {
            let gw = u32::from_str_radix(cols[2], 16).ok()?;
            // /proc/net/route prints the network-order address as a native u32.
            return Some(Ipv4Addr::from(gw.to_ne_bytes()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_net_route() {
        let t =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                 eth0\t0000FEA9\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
                 eth0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n";
        assert_eq!(default_gateway(t), Some(Ipv4Addr::new(192, 168, 1, 1)));
        assert_eq!(default_gateway("Iface\n"), None);
    }
}

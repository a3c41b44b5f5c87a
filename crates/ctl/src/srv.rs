//! etcdctl's `--discovery-srv` (`endpointsFromFlagValue`): client endpoints from the
//! `_etcd-client-ssl[-name]._tcp` and `_etcd-client[-name]._tcp` SRV records of a domain,
//! asked of the system's resolver (or `CHORUS_DNS_RESOLVER=ip:port`).

use chorus_discovery::{srv, Resolver};

/// The discovered endpoints; `http://` ones are dropped (with etcdctl's note) unless
/// `insecure` (`--insecure-discovery`, default true). An empty list means "use
/// `--endpoints`". `Err`: etcdctl's text (`dns lookup errors: ... and ...`).
pub async fn endpoints(
    domain: &str,
    service_name: &str,
    insecure: bool,
) -> Result<Vec<String>, String> {
    let resolver = Resolver::from_env().map_err(|e| e.to_string())?;
    let found = srv::get_client(&resolver, "etcd-client", domain, service_name)
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for ep in found.endpoints {
        if !insecure && ep.starts_with("http://") {
            eprintln!(
                "ignoring discovered insecure endpoint {}",
                crate::gofmt::quote(&ep)
            );
            continue;
        }
        out.push(without_final_dot(&ep));
    }
    Ok(out)
}

/// `https://host.:port` -> `https://host:port`: Go dials an SRV target's absolute name
/// as is; the system resolver chorusctl dials through does not take the final dot.
fn without_final_dot(endpoint: &str) -> String {
    match endpoint.rsplit_once(':') {
        Some((head, port)) => format!("{}:{port}", head.strip_suffix('.').unwrap_or(head)),
        None => endpoint.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn final_dots_dropped() {
        assert_eq!(super::without_final_dot("http://a.b.:1"), "http://a.b:1");
        assert_eq!(
            super::without_final_dot("https://[::1]:2"),
            "https://[::1]:2"
        );
    }
}

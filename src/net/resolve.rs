//! Name resolution with errors that say which name failed.

use std::net::SocketAddr;

use crate::endpoint::{Host, HostPort};
use crate::error::{Error, ErrorKind, Result};

/// The interface index of a zone: a number as it is, a name through SIOCGIFINDEX.
fn zone_index(zone: &str) -> std::result::Result<u32, String> {
    if let Ok(n) = zone.parse::<u32>() {
        return Ok(n);
    }
    #[cfg(target_os = "linux")]
    {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        rustix::net::netdevice::name_to_index(&probe, zone)
            .map_err(|_| format!("this machine has no interface called {zone} (see `ip link`)"))
    }
    #[cfg(not(target_os = "linux"))]
    Err(format!(
        "give the zone of {zone} as the interface's number here"
    ))
}

/// Every address `hp` stands for. An empty host resolves to the dual-stack wildcard `[::]`.
///
/// # Errors
/// [`ErrorKind::NotResolved`] when the name has no address.
pub async fn resolve(hp: &HostPort) -> Result<Vec<SocketAddr>> {
    match &hp.host {
        Host::Ip(ip) => Ok(vec![SocketAddr::new(*ip, hp.port)]),
        Host::Scoped(ip, zone) => {
            let scope = zone_index(zone).map_err(|why| {
                Error::new(
                    ErrorKind::NotResolved,
                    format!("cannot use the zone '%{zone}' of {ip}"),
                    why,
                )
            })?;
            Ok(vec![SocketAddr::V6(std::net::SocketAddrV6::new(
                *ip, hp.port, 0, scope,
            ))])
        }
        Host::Any => Ok(vec![SocketAddr::new(
            std::net::Ipv6Addr::UNSPECIFIED.into(),
            hp.port,
        )]),
        Host::Name(name) => {
            let not_resolved = |why: String| {
                Error::new(
                    ErrorKind::NotResolved,
                    format!("cannot resolve '{name}'"),
                    why,
                )
            };
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), hp.port))
                .await
                .map_err(|e| {
                    let text = e.to_string();
                    let why = text
                        .strip_prefix("failed to lookup address information: ")
                        .unwrap_or(&text)
                        .to_lowercase();
                    not_resolved(why)
                })?
                .collect();
            if addrs.is_empty() {
                return Err(not_resolved("the name has no address".into()));
            }
            Ok(addrs)
        }
    }
}

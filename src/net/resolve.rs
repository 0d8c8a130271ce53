//! Name resolution with errors that say which name failed.

use std::net::SocketAddr;

use crate::endpoint::{Host, HostPort};
use crate::error::{Error, ErrorKind, Result};

/// Every address `hp` stands for. An empty host resolves to the dual-stack wildcard `[::]`.
///
/// # Errors
/// [`ErrorKind::NotResolved`] when the name has no address.
pub async fn resolve(hp: &HostPort) -> Result<Vec<SocketAddr>> {
    match &hp.host {
        Host::Ip(ip) => Ok(vec![SocketAddr::new(*ip, hp.port)]),
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

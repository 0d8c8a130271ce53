//! Where a proxy's clients may go, and getting there: the rules are checked on every
//! address a name resolves to, so a name cannot smuggle a denied address through.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpStream;

use crate::server::Access;

/// How long a proxy tries to reach one target address.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// `--allow-target`/`--deny-target`, and the default about this machine's own addresses.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    /// The rules given.
    pub rules: Access,
    /// This machine's addresses (all interfaces), read once at start.
    pub own: Vec<IpAddr>,
}

impl Targets {
    /// The rules, with this machine's addresses looked up now.
    pub fn new(rules: Access) -> Targets {
        Targets {
            rules,
            own: own_addresses(),
        }
    }
}

/// This machine's addresses, every interface (Windows: none known; loopback rules still
/// hold).
fn own_addresses() -> Vec<IpAddr> {
    #[cfg(not(unix))]
    return Vec::new();
    #[cfg(unix)]
    nix::ifaddrs::getifaddrs()
        .map(|addrs| {
            addrs
                .filter_map(|a| a.address)
                .filter_map(|s| {
                    s.as_sockaddr_in()
                        .map(|v4| IpAddr::V4(v4.ip()))
                        .or_else(|| s.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Targets {
    /// Whether a client of a proxy bound to `listener` may go to `ip`. Allow rules, when
    /// given, say where; otherwise everywhere but this machine itself, unless the proxy
    /// listens on loopback only (then its clients are on this machine already). Deny always
    /// wins.
    pub fn permits(&self, ip: IpAddr, listener: Option<IpAddr>) -> bool {
        let ip = ip.to_canonical();
        if self.rules.denies(ip) {
            return false;
        }
        if self.rules.has_allow() {
            return self.rules.permits_ip(ip);
        }
        let local_proxy = listener.is_some_and(|l| l.to_canonical().is_loopback());
        local_proxy || !(ip.is_loopback() || ip.is_unspecified() || self.own.contains(&ip))
    }
}

/// Why a target could not be reached, in the terms the proxy protocols answer with.
#[derive(Debug)]
pub enum Failure {
    /// The rules forbid every address it has.
    Denied,
    /// The name has no address.
    NotResolved,
    /// Refused (RST).
    Refused,
    /// No route.
    Unreachable,
    /// No answer in time.
    TimedOut,
    /// Anything else.
    Other(io::Error),
}

impl Failure {
    /// In words, for logs.
    pub fn describe(&self) -> String {
        match self {
            Failure::Denied => "not allowed by the target rules".into(),
            Failure::NotResolved => "the name does not resolve".into(),
            Failure::Refused => "connection refused".into(),
            Failure::Unreachable => "unreachable".into(),
            Failure::TimedOut => "timed out".into(),
            Failure::Other(e) => crate::error::describe_io(e),
        }
    }
}

/// The permitted addresses of `host:port` (a name is resolved here).
///
/// # Errors
/// [`Failure::NotResolved`], or [`Failure::Denied`] when the rules leave none.
pub async fn resolve(
    host: &str,
    port: u16,
    targets: &Targets,
    listener: Option<IpAddr>,
) -> Result<Vec<SocketAddr>, Failure> {
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| Failure::NotResolved)?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(Failure::NotResolved);
    }
    let permitted: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|a| targets.permits(a.ip(), listener))
        .collect();
    if permitted.is_empty() {
        return Err(Failure::Denied);
    }
    Ok(permitted)
}

/// A TCP connection to the first permitted address of `host:port` that answers.
///
/// # Errors
/// A [`Failure`] for the proxy to answer with.
pub async fn connect(
    host: &str,
    port: u16,
    targets: &Targets,
    listener: Option<IpAddr>,
) -> Result<TcpStream, Failure> {
    let mut last = Failure::NotResolved;
    for addr in resolve(host, port, targets, listener).await? {
        match crate::net::connect_addr(addr, &crate::net::Local::default(), Some(CONNECT_TIMEOUT))
            .await
        {
            Ok(s) => return Ok(s),
            Err(e) => {
                last = match e.kind() {
                    io::ErrorKind::ConnectionRefused => Failure::Refused,
                    io::ErrorKind::TimedOut => Failure::TimedOut,
                    io::ErrorKind::NetworkUnreachable | io::ErrorKind::HostUnreachable => {
                        Failure::Unreachable
                    }
                    _ => Failure::Other(e),
                }
            }
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_addresses_are_off_limits_unless_the_proxy_is_local() {
        let t = Targets::new(Access::default());
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let out: IpAddr = "192.0.2.7".parse().unwrap();
        assert!(!t.permits(lo, Some("0.0.0.0".parse().unwrap())));
        assert!(t.permits(lo, Some(lo)));
        assert!(t.permits(out, Some("0.0.0.0".parse().unwrap())));
        let rules =
            Access::parse_flags(&["10.0.0.0/8".into()], &["10.9.0.0/16".into()], ("a", "d"))
                .unwrap();
        let t = Targets::new(rules);
        assert!(t.permits("10.1.2.3".parse().unwrap(), Some(lo)));
        assert!(!t.permits("10.9.2.3".parse().unwrap(), Some(lo)));
        assert!(!t.permits(out, Some(lo)));
        // IPv4-mapped IPv6 is the IPv4 address.
        assert!(!t.permits("::ffff:10.9.0.1".parse().unwrap(), Some(lo)));
    }
}

//! The base of the socket layer, used by every other file of it: an address family, where
//! to send from ([`Local`]), who is on the other side ([`Peer`]), the sizes every buffer
//! and head is held to, and Unix socket addresses.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::endpoint::UnixAddr;
use crate::error::{Error, ErrorKind};

/// The largest datagram sockit sends or receives (the largest UDP payload over IPv6
/// jumbograms aside): every datagram buffer has this size.
pub const MAX_DATAGRAM: usize = 65_535;

/// The largest UDP payload over IPv4 (65,535 less the IP and UDP headers).
pub const MAX_UDP_PAYLOAD: usize = 65_507;

/// The most an HTTP head may take (a WebSocket upgrade, a proxy request): 431 beyond.
pub const HEADER_LIMIT: usize = 16 * 1024;

/// An IP family, for `-4`/`-6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IPv4 only (`-4`).
    V4,
    /// IPv6 only (`-6`).
    V6,
}

/// Where a client's socket comes from: `-s ADDR`, `-p PORT`, `-4`/`-6` (netcat's options).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Local {
    /// `-s/--source`: bind to this address before connecting.
    pub source: Option<IpAddr>,
    /// `-p/--source-port`: bind to this port before connecting.
    pub port: Option<u16>,
    /// `-4`/`-6`: use only addresses of this family.
    pub family: Option<Family>,
    /// `--iface ADDR`: the interface (by one of its addresses; IPv4 for IPv4 groups) a
    /// multicast group is joined on or sent through.
    pub iface: Option<IpAddr>,
    /// `--ttl N`: hops a multicast datagram may take (default 1: this network only).
    pub ttl: Option<u32>,
    /// `--broadcast`: allow sending to a broadcast address (SO_BROADCAST).
    pub broadcast: bool,
}

impl Local {
    /// The resolved addresses this client may try, in order: of the family asked for, and
    /// of the source address's family.
    pub(crate) fn usable(&self, addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
        let family = self.family.or(match self.source {
            Some(IpAddr::V4(_)) => Some(Family::V4),
            Some(IpAddr::V6(_)) => Some(Family::V6),
            None => None,
        });
        addrs
            .into_iter()
            .filter(|a| match family {
                Some(Family::V4) => a.is_ipv4(),
                Some(Family::V6) => a.is_ipv6(),
                None => true,
            })
            .collect()
    }

    /// The address to bind before connecting to `remote`, when one was asked for.
    pub(crate) fn bind_for(&self, remote: SocketAddr) -> Option<SocketAddr> {
        if self.source.is_none() && self.port.is_none() {
            return None;
        }
        let ip = self.source.unwrap_or(if remote.is_ipv4() {
            IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
        });
        Some(SocketAddr::new(ip, self.port.unwrap_or(0)))
    }

    /// Why no address was left to try, for the error.
    /// The kind of error when the family rules left no address: the family's, when one
    /// was asked for.
    pub(crate) fn none_left_kind(&self) -> crate::error::ErrorKind {
        if self.family.is_some() || self.source.is_some() {
            crate::error::ErrorKind::WrongFamily
        } else {
            crate::error::ErrorKind::NotResolved
        }
    }

    pub(crate) fn none_left(&self) -> String {
        match (self.family, self.source) {
            (Some(Family::V4), _) => "it has no IPv4 address, and -4 asks for one".into(),
            (Some(Family::V6), _) => "it has no IPv6 address, and -6 asks for one".into(),
            (None, Some(s)) => format!("it has no address of the family of -s {s}"),
            (None, None) => "no address to try".into(),
        }
    }
}

/// Who is on the other side of a connection or sent a datagram.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Peer {
    /// An IP peer (IPv4-mapped IPv6 addresses are shown and matched as IPv4).
    Ip(SocketAddr),
    /// A Unix-domain peer; `None` when it did not bind a name.
    Unix(Option<UnixAddr>),
}

impl Peer {
    /// The address and port, for an IP peer.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self {
            Peer::Ip(a) => Some(*a),
            Peer::Unix(_) => None,
        }
    }

    /// The peer's IP address with IPv4-mapped IPv6 turned back into IPv4, for access rules.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Peer::Ip(a) => Some(a.ip().to_canonical()),
            Peer::Unix(_) => None,
        }
    }

    pub(crate) fn from_ip(addr: SocketAddr) -> Peer {
        Peer::Ip(SocketAddr::new(addr.ip().to_canonical(), addr.port()))
    }

    #[cfg(not(unix))]
    pub(crate) fn from_unix(addr: &super::unix::SocketAddr) -> Peer {
        match *addr {}
    }

    #[cfg(unix)]
    pub(crate) fn from_unix(addr: &super::unix::SocketAddr) -> Peer {
        if let Some(p) = addr.as_pathname() {
            return Peer::Unix(Some(UnixAddr::Path(p.to_path_buf())));
        }
        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt;
            let std_addr: std::os::unix::net::SocketAddr = addr.clone().into();
            if let Some(name) = std_addr.as_abstract_name() {
                let name = String::from_utf8_lossy(name).into_owned();
                return Peer::Unix(Some(UnixAddr::Abstract(name)));
            }
        }
        Peer::Unix(None)
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Ip(a) => write!(f, "{a}"),
            Peer::Unix(Some(a)) => write!(f, "unix:{a}"),
            Peer::Unix(None) => f.write_str("unix:(unnamed)"),
        }
    }
}

/// Unix connect errors: a missing file means nobody listens, not "no such file".
pub(crate) fn unix_error(what: String, e: &std::io::Error) -> Error {
    match e.kind() {
        std::io::ErrorKind::NotFound => Error::new(
            ErrorKind::ConnectionRefused,
            what,
            "no socket file there (no such file or directory)",
        ),
        _ => Error::io(what, e),
    }
}

/// The `socket2` address of a Unix endpoint (abstract names start with a NUL byte).
pub(crate) fn unix_sockaddr(addr: &UnixAddr) -> std::io::Result<socket2::SockAddr> {
    match addr {
        UnixAddr::Path(p) => socket2::SockAddr::unix(p),
        #[cfg(target_os = "linux")]
        UnixAddr::Abstract(name) => {
            let mut bytes = Vec::with_capacity(name.len() + 1);
            bytes.push(0u8);
            bytes.extend_from_slice(name.as_bytes());
            use std::os::unix::ffi::OsStrExt;
            socket2::SockAddr::unix(std::ffi::OsStr::from_bytes(&bytes))
        }
        #[cfg(not(target_os = "linux"))]
        UnixAddr::Abstract(_) => Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "abstract socket names (unix:@NAME) are Linux's; give a path",
        )),
    }
}

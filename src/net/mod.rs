//! Sockets of every kind behind three small types: [`Stream`] (tcp, unix), [`Listener`] and
//! [`Datagram`] (udp, unixgram), plus [`Peer`] to name who is on the other side.
//!
//! The commands never match on transports themselves; they get one of these from
//! [`connect`]/[`bind`] and work with bytes. Socket options that std lacks (dual-stack,
//! SO_REUSEADDR before bind, SO_LINGER) go through socket2 so no `unsafe` is needed.

mod datagram;
mod holder;
mod listener;
mod resolve;
mod stream;

pub use datagram::{bind_datagram, connect_datagram, Datagram};
pub use listener::{bind, Listener};
pub use resolve::resolve;
pub use stream::{connect, Stream};

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::endpoint::UnixAddr;

/// Who is on the other side of a connection or sent a datagram.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Peer {
    /// An IP peer (IPv4-mapped IPv6 addresses are shown and matched as IPv4).
    Ip(SocketAddr),
    /// A Unix-domain peer; `None` when it did not bind a name.
    Unix(Option<UnixAddr>),
}

impl Peer {
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

    pub(crate) fn from_unix(addr: &tokio::net::unix::SocketAddr) -> Peer {
        use std::os::linux::net::SocketAddrExt;
        if let Some(p) = addr.as_pathname() {
            return Peer::Unix(Some(UnixAddr::Path(p.to_path_buf())));
        }
        let std_addr: std::os::unix::net::SocketAddr = addr.clone().into();
        match std_addr.as_abstract_name() {
            Some(name) => Peer::Unix(Some(UnixAddr::Abstract(
                String::from_utf8_lossy(name).into_owned(),
            ))),
            None => Peer::Unix(None),
        }
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

/// The `socket2` address of a Unix endpoint (abstract names start with a NUL byte).
pub(crate) fn unix_sockaddr(addr: &UnixAddr) -> std::io::Result<socket2::SockAddr> {
    match addr {
        UnixAddr::Path(p) => socket2::SockAddr::unix(p),
        UnixAddr::Abstract(name) => {
            let mut bytes = Vec::with_capacity(name.len() + 1);
            bytes.push(0u8);
            bytes.extend_from_slice(name.as_bytes());
            use std::os::unix::ffi::OsStrExt;
            socket2::SockAddr::unix(std::ffi::OsStr::from_bytes(&bytes))
        }
    }
}

//! Sockets of every kind behind a few small types: [`Stream`] (tcp, unix, TLS over tcp),
//! [`Listener`], [`Datagram`] (udp, unixgram), [`Bound`] (either kind of server socket),
//! and [`Peer`] to name who is on the other side.
//!
//! The commands never match on transports themselves: they dial through [`Dialer`] (the
//! one dial, every layer applied) and bind through [`bind`]/[`bind_datagram`]/[`Bound::bind`],
//! and work with bytes. Layers over a stream live here, each in its own module ([`proxy`],
//! [`tls`], [`ws`]); QUIC, a socket kind with its TLS inside, in [`quic`].
//! Socket options that std lacks (dual-stack, SO_REUSEADDR before bind, SO_LINGER) go
//! through socket2 so no `unsafe` is needed; what every TCP connection gets once it is up
//! (dialed or accepted) is set in one place, `tuning`.

mod base;
mod bound;
mod datagram;
mod dial;
pub mod explain;
mod holder;
mod listener;
pub mod proxy;
pub mod proxy_header;
pub mod quic;
mod resolve;
mod stream;
pub mod tls;
mod tuning;
mod unix;
#[cfg(not(unix))]
mod unix_none;
pub mod ws;

pub use base::{Family, Local, Peer, HEADER_LIMIT, MAX_DATAGRAM, MAX_UDP_PAYLOAD};
pub use bound::Bound;
pub use datagram::{
    bind_datagram, bind_datagram_on, connect_datagram, connect_datagram_from, Datagram,
};
pub(crate) use dial::connect_addr;
pub use dial::{dial, DialOptions, Dialer};
pub use listener::{bind, Listener};
pub use resolve::resolve;
pub use stream::Stream;

//! sockit: one fast, safe tool and library for socket communication.
//!
//! Everything the classic socket tutorial teaches (a TCP client and server, an interactive
//! chat, UDP clients and servers, a time server) and what people need right after it:
//! `connect`, `listen`, `chat`, `serve` and `relay` over TCP, UDP, Unix sockets, TLS and
//! WebSocket, IPv4 and IPv6.
//!
//! # Layout
//! A run's types, from the command line down: an [`Endpoint`] (parsed once at the edge) and
//! plain options become a [`net::Dialer`] (client side) or a [`server::Admission`] over a
//! [`net::Bound`] socket (server side); either yields a [`net::Stream`] with every layer
//! applied (a proxy hop, TLS, WebSocket), which a command turns into a conversation.
//!
//! - [`endpoint`]: `tcp://host:port` and friends, `FromStr`/`Display`.
//! - [`net`]: sockets of every kind and their layers. [`net::Dialer`] is the one dial every
//!   command connects through; [`net::bind`], [`net::bind_datagram`] and [`net::Bound`] bind;
//!   [`net::tls`] is TLS as a layer over TCP (client and server in their own files),
//!   [`net::proxy`] the proxy hop, [`net::ws`] WebSocket framing as a byte stream.
//! - [`server`]: the one admission of every server: access rules ([`server::access`]),
//!   `--max-conns`, accept back-off, the layers' handshakes under `--handshake-timeout`, a
//!   task per client; and the datagram gate.
//! - [`pump`]: bytes both ways between two streams, with half-close and byte counts; its
//!   `splice` (internal) is the zero-copy path for plain sockets and pipes, and
//!   [`pump::join`] joins two connections (relay, the proxy servers) by the one rule for
//!   when the plain path may be taken ([`pump::Options::is_plain`]).
//! - [`dump`]: `-x`, every chunk of a conversation as `xxd` shows it; [`capture`]:
//!   `--pcap`, the same chunks as the packets Wireshark shows.
//! - [`lines`]: lines out of a byte stream (partial lines, CRLF, `[PEER] ` prefixes).
//! - [`progress`]: `--progress`, bytes, rate, percent and ETA on stderr.
//! - [`stdio`]: stdin and stdout on their own threads, as async byte streams;
//!   [`terminal`]: a person at the terminal: line editing, and `--raw` (the local terminal
//!   as a remote one's keyboard).
//! - [`session`]: one conversation between stdio and a peer (stream or datagram), shared by
//!   `connect` and `listen`.
//! - The commands, each taking an already bound socket or a dialer and a shutdown token, so
//!   tests and examples drive them in-process: [`connect`] (and its `-z` port check,
//!   [`scan`]), [`listen`], [`relay`],
//!   [`chat`] (the transport-free [`chat::Room`], its commands and adapters), [`services`]
//!   (echo, discard, chargen, daytime with strftime, time, sntp), [`bench`](mod@bench) (the load
//!   generator, checking every byte).
//! - [`tunnel`]: reaching a port behind NAT: the gateway (`serve tunnel=`) and `expose`,
//!   their control protocol, secret and port reservations.
//! - [`exec`]: `--exec`/`--sh-exec`, a program in place of stdio: its process group,
//!   the UCSPI environment, a stream through the pump, a child per datagram peer.
//! - [`error`]: the one error type, with a kind, a hint and the underlying cause.
//! - `cli`, `app` and `main.rs` (binary only): arguments in, exit status out; `app` has
//!   a file per command that turns its flags into the options above and runs it.
//!
//! # Example
//! ```no_run
//! # async fn demo() -> sockit::error::Result<()> {
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! let endpoint: sockit::Endpoint = "tcp://127.0.0.1:8898".parse()?;
//! let (mut stream, _peer) = sockit::net::dial(&endpoint, &Default::default()).await?;
//! stream.write_all(b"hello!").await.ok();
//! let mut reply = Vec::new();
//! stream.read_to_end(&mut reply).await.ok();
//! # Ok(()) }
//! ```

/// Reads and writes for a type that cannot exist (a stand-in where the system lacks the
/// thing: Unix sockets, pseudo-terminals on Windows), so code that matches on kinds needs
/// no conditions.
#[cfg(not(unix))]
macro_rules! never_io {
    ($t:ty) => {
        impl tokio::io::AsyncRead for $t {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
                _: &mut tokio::io::ReadBuf<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                match *self.get_mut() {}
            }
        }

        impl tokio::io::AsyncWrite for $t {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
                _: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                match *self.get_mut() {}
            }
            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                match *self.get_mut() {}
            }
            fn poll_shutdown(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                match *self.get_mut() {}
            }
        }
    };
}

pub mod bench;
pub mod capture;
pub mod chat;
pub mod connect;
pub mod dump;
pub mod endpoint;
pub mod error;
pub mod exec;
pub mod lines;
pub mod listen;
pub mod net;
pub mod progress;
pub mod pump;
pub mod relay;
pub mod scan;
pub mod server;
pub mod services;
pub mod session;
pub mod stdio;
pub mod terminal;
pub mod tunnel;

pub use endpoint::Endpoint;
pub use error::{Error, ErrorKind};

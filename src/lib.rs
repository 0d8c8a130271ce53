//! sockit: one fast, safe tool and library for socket communication.
//!
//! Everything the classic socket tutorial teaches (a TCP client and server, an interactive
//! chat, UDP clients and servers, a time server) and what people need right after it:
//! `connect`, `listen`, `chat`, `serve` and `relay` over TCP, UDP, Unix sockets and TLS,
//! IPv4 and IPv6.
//!
//! # Layout
//! - [`endpoint`]: `tcp://host:port` and friends, parsed once at the edge.
//! - [`net`]: connecting and binding every kind of socket; [`net::Stream`],
//!   [`net::Listener`], [`net::Datagram`], [`net::Peer`].
//! - [`pump`]: bytes both ways between two streams, with half-close and byte counts.
//! - [`stdio`]: stdin and stdout on their own threads, as async byte streams.
//! - `splice` (internal): the zero-copy path for bulk transfers between pipes and a socket.
//! - [`accept`]: the accept loop every stream server shares (rules, limit, back-off).
//! - [`access`]: `--allow`/`--deny` CIDR rules and the connection limit.
//! - [`connect`] and [`listen`]: the two netcat-style commands; each takes an already
//!   connected or bound socket and a shutdown token, so tests and examples can drive them.
//! - [`relay`]: `relay`'s stream pairs and per-client datagram sockets.
//! - [`tls`]: `tls://` on top of any TCP stream: rustls, self-signed certificates and
//!   fingerprints, `--ca`/`--pin`/`--insecure` trust.
//! - [`chat`]: the chat room ([`chat::Room`]) and its tcp/udp/unix adapters.
//! - [`services`]: `serve`'s echo, discard, chargen, daytime (with strftime), time, sntp.
//! - [`bench`]: the load generator behind `sockit bench`, checking every byte.
//! - [`error`]: the one error type, with a hint for each kind.
//! - `cli` and `main.rs` (binary only): arguments in, exit status out.
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

pub mod bench;
pub mod chat;
pub mod connect;
pub mod endpoint;
pub mod error;
pub mod lines;
pub mod listen;
pub mod net;
pub mod pump;
pub mod relay;
pub mod server;
pub mod services;
pub mod session;
mod splice;
pub mod stdio;

pub use endpoint::Endpoint;
pub use error::{Error, ErrorKind};

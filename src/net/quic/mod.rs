//! QUIC (`quic://`): a socket kind of its own, with TLS 1.3 inside, carried by quinn on the
//! same rustls (ring) stack as `tls://`. Each conversation is one bidirectional QUIC stream
//! ([`QuicStream`]), so every command takes it where it takes a TCP stream: the one dial
//! reaches it through `client`, the one admission through `server`'s listener.
//!
//! What QUIC changes for a byte pump, and where it is handled:
//! - a half-close is the stream's FIN (`finish`); the other direction keeps flowing;
//! - closing a connection early drops what the peer has not acknowledged (quinn#1924), so a
//!   stream that ends is *settled* in the background (wait for the acknowledgement, then
//!   close), and the process waits for the settling at exit ([`settle`]);
//! - a server validates client addresses with Retry before any handshake state, on top of
//!   QUIC's 3x anti-amplification limit, so a forged source cannot make it a reflector.

pub(crate) mod client;
mod config;
pub(crate) mod server;
mod stream;

pub use config::DEFAULT_ALPN;
pub use stream::{settle, QuicStream, SETTLE_LIMIT};

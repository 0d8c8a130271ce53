//! Reaching a port behind NAT, what bore, frp, chisel and rathole do, with sockit's trust
//! model: a gateway on a reachable machine (`serve tunnel=tls://...`, [`gateway`]) and a
//! client beside the private service (`expose LOCAL --via ...`, [`expose`]).
//!
//! - Everything between them is TLS, dialed and admitted by the same layers as every other
//!   command (pins, CAs, mutual TLS, `--handshake-timeout`).
//! - The client proves a shared secret by challenge and response ([`secret`]), or a client
//!   certificate does.
//! - One control connection per client ([`frame`]: length-prefixed frames with a version),
//!   pinged both ways; one data connection per visitor (no multiplexer: a slow visitor
//!   holds up nobody, and each pair takes the relay's path), UDP visitors' datagrams
//!   framed over theirs ([`datagrams`]).
//! - [`ports`]: who holds which public port, and the reservation that lets a client that
//!   vanished get its port back.
//!
//! docs/tunnels.md describes the protocol byte by byte.

pub mod datagrams;
pub mod expose;
pub mod frame;
pub mod gateway;
pub mod lane;
pub mod ports;
pub mod secret;

pub use expose::Expose;
pub use frame::{DEAD_AFTER, PING_EVERY};
pub use gateway::Gateway;
pub use secret::Secret;

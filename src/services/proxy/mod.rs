//! The proxy services of `serve`: `socks5` (RFC 1928, CONNECT and UDP ASSOCIATE) and
//! `http-proxy` (HTTP CONNECT). Both check credentials (`--proxy-user`) and target rules
//! (`--allow-target`/`--deny-target`, evaluated on resolved addresses), negotiate under the
//! handshake deadline, and then join client and target as `relay` does ([`crate::pump::join`]).

pub mod http;
pub mod socks5;
pub mod targets;

pub use targets::Targets;

use crate::net::proxy::Credentials;
use crate::net::{Peer, Stream};

/// Who may use a proxy service and where they may go.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// `--proxy-user USER:PASS` (repeatable); empty: no authentication.
    pub users: Vec<Credentials>,
    /// Where clients may go.
    pub targets: Targets,
}

/// A granted tunnel, until both directions end.
pub(crate) async fn tunnel(service: &'static str, client: Stream, target: Stream, peer: &Peer) {
    let started = std::time::Instant::now();
    let r = crate::pump::join(client, target, &crate::pump::Options::default()).await;
    let duration_ms = started.elapsed().as_millis() as u64;
    match r {
        Ok(j) => {
            tracing::info!(service, %peer, bytes_up = j.up, bytes_down = j.down, duration_ms, end = j.end, "tunnel closed")
        }
        Err(e) => {
            tracing::info!(service, %peer, error = %crate::error::describe_io(&e), duration_ms, "tunnel failed")
        }
    }
}

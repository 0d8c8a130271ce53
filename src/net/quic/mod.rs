//! QUIC (`quic://`): a socket kind of its own, with TLS 1.3 inside, carried by quinn on the
//! same rustls (ring) stack as `tls://`. Each conversation is one bidirectional QUIC stream
//! ([`QuicStream`]), so every command takes it where it takes a TCP stream: the one dial
//! reaches it through [`client`], the one admission through [`server`]'s listener.
//!
//! What QUIC changes for a byte pump, and where it is handled:
//! - a half-close is the stream's FIN (`finish`); the other direction keeps flowing;
//! - closing a connection early drops what the peer has not acknowledged (quinn#1924), so a
//!   stream that ends is *settled* in the background (wait for the acknowledgement, then
//!   close), and the process waits for the settling at exit ([`settle`]);
//! - a server validates client addresses with Retry before any handshake state, on top of
//!   QUIC's 3x anti-amplification limit, so a forged source cannot make it a reflector.

pub(crate) mod client;
pub(crate) mod server;
mod stream;

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use tokio_util::task::TaskTracker;

pub use stream::QuicStream;

/// The application protocol (ALPN) QUIC offers and accepts when `--alpn` gives none: QUIC
/// requires one.
pub const DEFAULT_ALPN: &str = "sockit";

/// A connection silent this long is dead (pings keep a quiet one alive).
const IDLE: Duration = Duration::from_secs(30);
/// How often a quiet connection is pinged.
const KEEP_ALIVE: Duration = Duration::from_secs(10);
/// The longest a stream that ended waits for the peer to acknowledge its data.
pub const SETTLE_LIMIT: Duration = Duration::from_secs(10);

/// The streams settling in the background, waited for at exit.
static SETTLING: LazyLock<TaskTracker> = LazyLock::new(TaskTracker::new);

/// Waits until every QUIC stream that ended has been acknowledged by its peer and its
/// connection closed cleanly, at most `limit`: call before the process exits.
pub async fn settle(limit: Duration) {
    SETTLING.close();
    let _ = tokio::time::timeout(limit, SETTLING.wait()).await;
}

/// The transport settings every connection gets.
fn transport() -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.max_idle_timeout(quinn::IdleTimeout::try_from(IDLE).ok())
        .keep_alive_interval(Some(KEEP_ALIVE));
    Arc::new(t)
}

/// The ALPN list as rustls wants it: `--alpn`'s, or [`DEFAULT_ALPN`].
fn alpn_or_default(given: &[Vec<u8>]) -> Vec<Vec<u8>> {
    if given.is_empty() {
        vec![DEFAULT_ALPN.as_bytes().to_vec()]
    } else {
        given.to_vec()
    }
}

/// A list of protocols as people read it: `sockit, h3`.
fn alpn_words(list: &[Vec<u8>]) -> String {
    list.iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect::<Vec<_>>()
        .join(", ")
}

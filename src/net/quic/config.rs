//! What every QUIC connection and endpoint is given: the transport's timers and the
//! application protocols.

use std::sync::Arc;
use std::time::Duration;

/// The application protocol (ALPN) QUIC offers and accepts when `--alpn` gives none: QUIC
/// requires one.
pub const DEFAULT_ALPN: &str = "sockit";

/// A connection silent this long is dead (pings keep a quiet one alive).
const IDLE: Duration = Duration::from_secs(30);
/// How often a quiet connection is pinged.
const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// The transport settings every connection gets.
pub(super) fn transport() -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.max_idle_timeout(quinn::IdleTimeout::try_from(IDLE).ok())
        .keep_alive_interval(Some(KEEP_ALIVE));
    Arc::new(t)
}

/// The ALPN list as rustls wants it: `--alpn`'s, or [`DEFAULT_ALPN`].
pub(super) fn alpn_or_default(given: &[Vec<u8>]) -> Vec<Vec<u8>> {
    if given.is_empty() {
        vec![DEFAULT_ALPN.as_bytes().to_vec()]
    } else {
        given.to_vec()
    }
}

/// A list of protocols as people read it: `sockit, h3`.
pub(super) fn alpn_words(list: &[Vec<u8>]) -> String {
    list.iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect::<Vec<_>>()
        .join(", ")
}

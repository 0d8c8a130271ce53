//! `sockit connect`: stdin to a peer, the peer to stdout.
//!
//! The command only: the peer is reached through the one dial ([`crate::net::Dialer`], every
//! layer applied) and the conversation is a [`crate::session`], the same one
//! `listen` has with its first client.

use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::net::Dialer;
use crate::session::{self, Source};
use crate::stdio::Output;

pub use crate::session::DATAGRAM_IDLE;

/// Connects to the dialer's endpoint and relays until the conversation ends.
///
/// # Errors
/// Connecting (refused, unresolved, timed out, TLS refused) or a conversation that failed
/// (reset).
pub async fn run(
    dialer: &Dialer,
    source: Source,
    output: Output,
    opts: &session::Options,
    shutdown: CancellationToken,
) -> Result<()> {
    if dialer.endpoint().is_stream() {
        let (stream, peer) = tokio::select! {
            r = dialer.dial() => r?,
            () = shutdown.cancelled() => return Ok(()),
        };
        tracing::info!(%peer, "connected");
        // The session ends itself at the signal (a program ends its group), so that what
        // arrived is written out and --progress says its totals.
        let opts = session::Options {
            stop: Some(shutdown),
            ..opts.clone()
        };
        session::stream(stream, &peer, source.into_input(), &output, &opts).await
    } else {
        let (sock, peer) = dialer.dial_datagram().await?;
        tracing::info!(%peer, local = %sock.local_endpoint(), "datagram socket ready");
        tokio::select! {
            r = session::datagram(&sock, &peer, source, &output, opts) => r,
            () = shutdown.cancelled(), if opts.exec.is_none() => Ok(()),
        }
    }
}

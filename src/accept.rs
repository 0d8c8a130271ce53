//! The accept loop every stream server shares: access rules, the connection limit, and a
//! back-off when `accept` fails (EMFILE), so each server only says what to do with a client.

use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;

use crate::access::{Access, ConnLimit};
use crate::net::{Listener, Peer, Stream};

/// Accepts clients for ever, handing each admitted one to `admit` with its limit permit
/// (hold it for the client's lifetime). Refusals are logged with `label` (a service name,
/// or empty). Callers end it by dropping the future, typically in a `select!` on shutdown.
pub async fn run<F>(
    listener: &Listener,
    access: &Access,
    limit: &ConnLimit,
    label: &str,
    mut admit: F,
) where
    F: FnMut(Stream, Peer, Option<OwnedSemaphorePermit>),
{
    let mut backoff = Duration::from_millis(10);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => {
                backoff = Duration::from_millis(10);
                c
            }
            Err(e) => {
                // Out of descriptors and the like: wait for clients to leave.
                tracing::warn!(service = label, error = %e, "accept failed; backing off");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        if !access.permits(&peer) {
            tracing::warn!(service = label, %peer, "refused: not allowed by --allow/--deny");
            continue;
        }
        let Ok(permit) = limit.try_acquire() else {
            tracing::warn!(service = label, %peer, "refused: connection limit reached (--max-conns)");
            continue;
        };
        admit(stream, peer, permit);
    }
}

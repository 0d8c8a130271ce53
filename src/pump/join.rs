//! Two connections joined both ways until both directions end: what `relay` does with each
//! client and its target, and what the proxy servers do once a tunnel is granted. Plain
//! sockets on both sides go through kernel pipes (splice) for bulk and a page on the stack
//! for small reads (`splice::relay`), holding no buffer while idle; a layer (TLS),
//! an idle timeout, `-x` or `--explain` takes the buffered pump.

use std::io;

use super::copy as pump;
use crate::net::Stream;

/// Bytes each way and which side ended first.
#[derive(Debug, Clone, Copy)]
pub struct Joined {
    /// From the first stream (the client) to the second (the target).
    pub up: u64,
    /// From the target back to the client.
    pub down: u64,
    /// How it ended, for logs.
    pub end: &'static str,
}

/// Joins `client` and `target` under `opts` (idle timeout, `-x`, `--explain`).
///
/// # Errors
/// The first failure of either direction (a reset).
pub async fn join(client: Stream, target: Stream, opts: &pump::Options) -> io::Result<Joined> {
    let plain =
        opts.is_plain() && !client.is_layered() && !target.is_layered() && super::splice::SOCKETS;
    if plain {
        let (up, down, client_first) = super::splice::relay(&client, &target).await?;
        let end = if client_first {
            "client closed first"
        } else {
            "target closed first"
        };
        return Ok(Joined { up, down, end });
    }
    let r = pump::pump(client, target, opts).await?;
    Ok(Joined {
        up: r.sent,
        down: r.received,
        end: r.end.as_str(),
    })
}

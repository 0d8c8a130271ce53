//! A lane: a data connection between expose and the gateway that carries one visitor at a
//! time, and then the next one. Never two at once (no multiplexer: a slow visitor holds up
//! nobody), but no TLS handshake per visitor either: a lane is opened once and kept while
//! both sides want it.
//!
//! While a visitor is on a lane, each direction's bytes travel as chunks, a 4-byte
//! big-endian length then the bytes; a length of 0 ends that direction (the half-close),
//! [`RETIRE`] ends it too and says its sender will close the lane after this visitor. When
//! both directions have ended and neither side retired it, the lane is free for the next
//! visitor, whom the gateway names on it with a `Visitor` frame. Any failure (a reset, a
//! cut, an idle timeout) closes the lane, which the other side reads as the end of both
//! directions.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::net::Stream;
use crate::pump::Activity;

/// The end of a direction, from a side that will close the lane after this visitor.
pub const RETIRE: u32 = u32::MAX;
/// The largest chunk either side sends; a larger length is not sockit's lane.
pub const MAX_CHUNK: usize = 256 * 1024;
/// A visitor's first buffer each way: what an idle visitor holds. It grows (x4 per read
/// that fills it) up to [`MAX_CHUNK`] for a visitor that streams.
const FIRST_BUFFER: usize = 4 * 1024;

/// What a visitor's passage left.
#[derive(Debug, Clone, Copy)]
pub struct Passage {
    /// Bytes from the local side (the visitor at the gateway, LOCAL at expose) onto the lane.
    pub sent: u64,
    /// Bytes from the lane to the local side.
    pub received: u64,
    /// Both directions ended cleanly and neither side retired the lane: it may carry the
    /// next visitor.
    pub reusable: bool,
}

/// Carries one visitor between `local` (a socket) and `lane` until both directions end,
/// either fails, or nothing moves for `idle`. `keep` says whether this side wants the lane
/// afterwards.
///
/// # Errors
/// The first failure either way (the lane is then not reusable, and the caller closes it).
pub async fn carry<L>(
    local: L,
    lane: &mut Stream,
    keep: bool,
    idle: Option<Duration>,
) -> io::Result<Passage>
where
    L: AsyncRead + AsyncWrite + Unpin,
{
    let activity = Activity::new();
    let (mut local_r, mut local_w) = tokio::io::split(local);
    let (mut lane_r, mut lane_w) = tokio::io::split(lane);
    let out = async {
        let mut buf = vec![0u8; 4 + FIRST_BUFFER];
        let mut sent = 0u64;
        loop {
            let n = local_r.read(&mut buf[4..]).await?;
            if n == 0 {
                let end = if keep { 0 } else { RETIRE };
                lane_w.write_all(&end.to_be_bytes()).await?;
                lane_w.flush().await?;
                return Ok::<u64, io::Error>(sent);
            }
            activity.touch();
            buf[..4].copy_from_slice(&(n as u32).to_be_bytes());
            lane_w.write_all(&buf[..4 + n]).await?;
            lane_w.flush().await?;
            sent += n as u64;
            if n == buf.len() - 4 && buf.len() - 4 < MAX_CHUNK {
                buf = vec![0u8; 4 + ((buf.len() - 4) * 4).min(MAX_CHUNK)];
            }
        }
    };
    let back = async {
        let mut buf = Vec::new();
        let mut received = 0u64;
        loop {
            let len = lane_r.read_u32().await?;
            if len == 0 || len == RETIRE {
                local_w.shutdown().await?;
                return Ok::<(u64, bool), io::Error>((received, len == 0));
            }
            let len = len as usize;
            if len > MAX_CHUNK {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "a lane chunk larger than 256 KiB: not sockit's tunnel",
                ));
            }
            if buf.len() < len {
                buf.resize(len.max(FIRST_BUFFER), 0);
            }
            lane_r.read_exact(&mut buf[..len]).await?;
            activity.touch();
            local_w.write_all(&buf[..len]).await?;
            received += len as u64;
        }
    };
    let both = async { tokio::try_join!(out, back) };
    let (sent, (received, theirs)) = match idle {
        None => both.await?,
        Some(_) => tokio::select! {
            r = both => r?,
            () = activity.idle(idle) => {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "idle timeout"));
            }
        },
    };
    Ok(Passage {
        sent,
        received,
        reusable: keep && theirs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two lanes' ends, as a TCP pair on loopback.
    async fn lane_pair() -> (Stream, Stream) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = tokio::net::TcpStream::connect(l.local_addr().unwrap());
        let (a, b) = tokio::join!(a, l.accept());
        (Stream::Tcp(a.unwrap()), Stream::Tcp(b.unwrap().0))
    }

    #[tokio::test]
    async fn two_visitors_in_turn_on_one_lane_with_half_closes() {
        let (mut gw, mut ex) = lane_pair().await;
        for round in 0..2u8 {
            let (visitor, mut visitor_far) = tokio::io::duplex(1 << 16);
            let (local, mut local_far) = tokio::io::duplex(1 << 16);
            let big = vec![round; 300_000];
            let sent = big.clone();
            let gw_side = carry(visitor, &mut gw, true, None);
            let ex_side = carry(local, &mut ex, true, None);
            let people = async {
                // The visitor sends and half-closes; LOCAL reads it all, answers, closes.
                visitor_far.write_all(&sent).await.unwrap();
                visitor_far.shutdown().await.unwrap();
                let mut got = Vec::new();
                local_far.read_to_end(&mut got).await.unwrap();
                assert_eq!(got, sent);
                local_far.write_all(b"answer").await.unwrap();
                local_far.shutdown().await.unwrap();
                let mut answer = Vec::new();
                visitor_far.read_to_end(&mut answer).await.unwrap();
                assert_eq!(answer, b"answer");
            };
            let (g, e, ()) = tokio::join!(gw_side, ex_side, people);
            let (g, e) = (g.unwrap(), e.unwrap());
            assert!(g.reusable && e.reusable, "round {round}");
            assert_eq!((g.sent, g.received), (big.len() as u64, 6));
            assert_eq!((e.sent, e.received), (6, big.len() as u64));
        }
    }

    #[tokio::test]
    async fn a_side_that_retires_the_lane_makes_it_single_use_for_both() {
        let (mut gw, mut ex) = lane_pair().await;
        let (visitor, mut visitor_far) = tokio::io::duplex(1024);
        let (local, mut local_far) = tokio::io::duplex(1024);
        visitor_far.shutdown().await.unwrap();
        local_far.shutdown().await.unwrap();
        let (g, e) = tokio::join!(
            carry(visitor, &mut gw, true, None),
            carry(local, &mut ex, false, None)
        );
        assert!(!g.unwrap().reusable && !e.unwrap().reusable);
    }

    #[tokio::test]
    async fn a_lane_that_closes_mid_visitor_is_an_error_not_an_end() {
        let (mut gw, ex) = lane_pair().await;
        let (visitor, _visitor_far) = tokio::io::duplex(1024);
        drop(ex);
        assert!(carry(visitor, &mut gw, true, None).await.is_err());
    }
}

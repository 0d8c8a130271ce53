//! `sockit chat`: one room on any number of endpoints (tcp, tls, udp, unix, unixgram),
//! joined with any line client.
//!
//! - [`room`]: the transport-free room ([`Room`]): members, nicks, commands, fan-out.
//! - [`text`]: what may reach a screen (escapes and controls removed) and what a nick may be.
//! - [`framing`]: lines with a hard length cap, and the per-member rate.
//! - `mailbox`: delivery, one shared log read by every member at its own pace.
//! - `stream` and `datagram`: the transports, thin adapters around the room.
//!
//! ```no_run
//! # async fn demo() -> sockit::error::Result<()> {
//! use sockit::chat::{self, Room, RoomConfig};
//! let room = Room::new(RoomConfig::default());
//! let bound = chat::bind(&["tcp://127.0.0.1:8898".parse()?]).await?;
//! chat::run(room, bound, chat::Config::default(), tokio_util::sync::CancellationToken::new()).await
//! # }
//! ```

mod datagram;
pub mod framing;
mod mailbox;
pub mod room;
mod stream;
pub mod text;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use mailbox::Mailbox;
pub use room::{Backlog, Flow, JoinError, Joined, MemberId, Outcome, Room, RoomConfig};

use crate::access::{Access, ConnLimit};
use crate::endpoint::Endpoint;
use crate::error::Result;
use crate::net::{self, Datagram, Listener};

/// How one member is read: the same for every transport.
#[derive(Debug, Clone)]
pub struct MemberOptions {
    /// `--max-line`: longer lines are refused with `! `.
    pub max_line: usize,
    /// `--rate`: lines per second after a burst; 0 for no limit.
    pub rate: u32,
    /// Lines let through at once before the rate applies.
    pub burst: u32,
    /// `--idle-timeout`: datagram members only (default 10 minutes); a stream member stays
    /// while its connection does.
    pub idle_timeout: Option<Duration>,
}

impl Default for MemberOptions {
    fn default() -> Self {
        MemberOptions {
            max_line: 4096,
            rate: 10,
            burst: 20,
            idle_timeout: None,
        }
    }
}

/// Everything `chat` takes besides the room and its sockets.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Per-member reading rules.
    pub member: MemberOptions,
    /// `--allow`/`--deny`.
    pub access: Access,
    /// `--max-conns`: stream connections at once.
    pub max_conns: Option<usize>,
    /// TLS for the `tls://` endpoints.
    pub tls: Option<crate::tls::Server>,
}

/// A bound chat endpoint.
#[derive(Debug)]
pub enum Bound {
    /// tcp or unix.
    Stream(Listener),
    /// udp or unixgram.
    Datagram(Datagram),
}

impl Bound {
    /// The readiness line: `chat listening on tcp://127.0.0.1:8898`.
    pub fn readiness(&self) -> String {
        let local = match self {
            Bound::Stream(l) => l.local_endpoint(),
            Bound::Datagram(d) => d.local_endpoint(),
        };
        format!("chat listening on {local}")
    }
}

/// Binds every endpoint before any is served, so a bad one fails the start, not later.
///
/// # Errors
/// The first endpoint that cannot be bound, as [`net::bind`] words it.
pub async fn bind(endpoints: &[Endpoint]) -> Result<Vec<Bound>> {
    let mut bound = Vec::with_capacity(endpoints.len());
    for e in endpoints {
        bound.push(if e.is_stream() {
            Bound::Stream(net::bind(e).await?)
        } else {
            Bound::Datagram(net::bind_datagram(e).await?)
        });
    }
    Ok(bound)
}

/// How long members get to receive the shutdown notice.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(2);

/// Serves the room on every bound endpoint until `shutdown`; then every member gets
/// `* server shutting down`, queues are flushed (briefly), and Unix socket files removed.
///
/// # Errors
/// None yet at run time: per-client failures are logged, not returned.
pub async fn run(
    room: Arc<Room>,
    bound: Vec<Bound>,
    cfg: Config,
    shutdown: CancellationToken,
) -> Result<()> {
    let tracker = TaskTracker::new();
    let limit = ConnLimit::new(cfg.max_conns);
    let mut serving = tokio::task::JoinSet::new();
    for b in bound {
        match b {
            Bound::Stream(listener) => {
                let tls = match listener.local_endpoint() {
                    Endpoint::Tls(_) => cfg.tls.clone(),
                    _ => None,
                };
                let (room, tracker, cfg, limit) =
                    (room.clone(), tracker.clone(), cfg.clone(), limit.clone());
                serving.spawn(async move {
                    let admit = |stream, peer: net::Peer, permit| {
                        let (room, opts, tls) = (room.clone(), cfg.member.clone(), tls.clone());
                        tracker.spawn(async move {
                            let Some(stream) =
                                crate::tls::accept(tls.as_ref(), stream, &peer).await
                            else {
                                return;
                            };
                            stream::serve(room, stream, peer, opts).await;
                            drop(permit);
                        });
                    };
                    crate::accept::run(&listener, &cfg.access, &limit, "chat", admit).await;
                });
            }
            Bound::Datagram(sock) => {
                let fut = datagram::serve(
                    room.clone(),
                    sock,
                    cfg.member.clone(),
                    cfg.access.clone(),
                    tracker.clone(),
                );
                serving.spawn(fut);
            }
        }
    }
    shutdown.cancelled().await;
    serving.shutdown().await;
    tracing::info!(members = room.len(), "shutting down the room");
    room.close("* server shutting down");
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_FLUSH, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("some members did not take the shutdown notice in time");
    }
    Ok(())
}

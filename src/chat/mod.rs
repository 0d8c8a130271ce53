//! `sockit chat`: one room on any number of endpoints (tcp, tls, udp, unix, unixgram, ws,
//! wss, and http for a browser), joined with any line client.
//!
//! - [`room`]: the transport-free room ([`Room`]): members, nicks, commands, fan-out.
//! - [`command`]: what a line means (text or a slash command), parsed into an enum.
//! - [`text`]: what may reach a screen (escapes and controls removed) and what a nick may be.
//! - [`framing`]: lines with a hard length cap, and the per-member rate.
//! - `mailbox`: delivery, one shared log read by every member at its own pace.
//! - `stream` and `datagram`: the transports, thin adapters around the room (a WebSocket
//!   member is a stream member: its text messages are lines).
//! - [`web`]: the page of `http://` endpoints.
//!
//! ```no_run
//! # async fn demo() -> sockit::error::Result<()> {
//! use sockit::chat::{self, Room, RoomConfig};
//! let room = Room::new(RoomConfig::default());
//! let endpoint = "tcp://127.0.0.1:8898".parse()?;
//! let bound = sockit::net::Bound::bind_all(&[&endpoint]).await?;
//! let admission = sockit::server::Admission::default();
//! chat::run(room, bound, admission, chat::Config::default(), tokio_util::sync::CancellationToken::new()).await
//! # }
//! ```

pub mod bus;
pub mod command;
mod datagram;
pub mod framing;
mod mailbox;
pub mod room;
mod stream;
pub mod text;
pub mod web;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use framing::MemberOptions;
pub use mailbox::Mailbox;
pub use room::{Backlog, Flow, JoinError, Joined, MemberId, Outcome, Room, RoomConfig};

use crate::error::Result;
use crate::net::{self, Bound};
use crate::server::Admission;

/// Everything `chat` takes besides the room, its sockets and its admission.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Per-member reading rules.
    pub member: MemberOptions,
    /// `--bus`: the room spans every node on this bus.
    pub bus: Option<bus::Bus>,
}

/// The readiness line of a chat endpoint: `chat listening on tcp://127.0.0.1:8898`.
pub fn readiness(bound: &Bound) -> String {
    format!("chat listening on {}", bound.local_endpoint())
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
    admission: Admission,
    cfg: Config,
    shutdown: CancellationToken,
) -> Result<()> {
    let tracker = admission.tasks().clone();
    let mut serving = tokio::task::JoinSet::new();
    let bus_stop = CancellationToken::new();
    let bus = cfg
        .bus
        .clone()
        .map(|b| tokio::spawn(b.run(room.clone(), bus_stop.clone())));
    for b in bound {
        let (room, admission, opts) = (room.clone(), admission.clone(), cfg.member.clone());
        match b {
            Bound::Stream(listener) => {
                let page = matches!(listener.local_endpoint(), crate::Endpoint::Http(_));
                serving.spawn(async move {
                    let handler = move |stream, peer: net::Peer| {
                        stream::serve(room.clone(), stream, peer, opts.clone(), page)
                    };
                    admission.serve(&listener, "chat", handler).await;
                });
            }
            Bound::Datagram(sock) => {
                serving.spawn(async move { datagram::serve(room, sock, opts, &admission).await });
            }
        }
    }
    shutdown.cancelled().await;
    serving.shutdown().await;
    if let Some(task) = bus {
        // The other nodes hear this one go (`* NICK left (node stopped)`).
        bus_stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
    }
    tracing::info!(members = room.len(), "shutting down the room");
    room.close("*** server shutting down");
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_FLUSH, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("some members did not take the shutdown notice in time");
    }
    Ok(())
}

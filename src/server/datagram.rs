//! Datagram admission: the gate every datagram server receives through.

use super::Admission;
use crate::net::{Datagram, Peer};

/// What the gate lets through.
#[derive(Debug)]
pub enum Incoming {
    /// `n` bytes in the buffer from this permitted peer.
    Datagram(usize, Peer),
    /// These peers answered an earlier datagram with ICMP port unreachable (on a socket
    /// that [`Datagram::watch_unreachable`]s): they are gone.
    Unreachable(Vec<Peer>),
}

impl Admission {
    /// The next datagram from a permitted peer, into `buf`. Receive errors (an ICMP port
    /// unreachable for an earlier answer: that peer left) and refused peers are logged with
    /// `label` and skipped. Cancel-safe: a datagram is either returned or still queued.
    pub async fn receive(&self, sock: &Datagram, buf: &mut [u8], label: &str) -> (usize, Peer) {
        loop {
            if let Incoming::Datagram(n, peer) = self.receive_or_unreachable(sock, buf, label).await
            {
                return (n, peer);
            }
        }
    }

    /// As [`Admission::receive`], but peers reported unreachable are returned too, for
    /// servers that keep members (chat drops them at once).
    pub async fn receive_or_unreachable(
        &self,
        sock: &Datagram,
        buf: &mut [u8],
        label: &str,
    ) -> Incoming {
        loop {
            match sock.recv_from(buf).await {
                Ok((n, peer)) if self.limits.access.permits(&peer) => {
                    return Incoming::Datagram(n, peer)
                }
                Ok((_, peer)) => {
                    tracing::debug!(service = label, %peer, "refused: not allowed by --allow/--deny");
                }
                Err(e) => {
                    let gone = sock.take_unreachable();
                    if !gone.is_empty() {
                        return Incoming::Unreachable(gone);
                    }
                    tracing::debug!(service = label, error = %crate::error::describe_io(&e), "receive failed");
                }
            }
        }
    }
}

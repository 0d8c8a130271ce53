//! Datagram admission: the gate every datagram server receives through.

use super::Admission;
use crate::net::{Datagram, Peer};

impl Admission {
    /// The next datagram from a permitted peer, into `buf`. Receive errors (an ICMP port
    /// unreachable for an earlier answer: that peer left) and refused peers are logged with
    /// `label` and skipped. Cancel-safe: a datagram is either returned or still queued.
    pub async fn receive(&self, sock: &Datagram, buf: &mut [u8], label: &str) -> (usize, Peer) {
        loop {
            match sock.recv_from(buf).await {
                Ok((n, peer)) if self.limits.access.permits(&peer) => return (n, peer),
                Ok((_, peer)) => {
                    tracing::debug!(service = label, %peer, "refused: not allowed by --allow/--deny");
                }
                Err(e) => {
                    tracing::debug!(service = label, error = %crate::error::describe_io(&e), "receive failed");
                }
            }
        }
    }
}

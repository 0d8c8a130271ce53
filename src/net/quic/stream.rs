//! One QUIC conversation: a bidirectional stream as one duplex for the pump.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use std::sync::LazyLock;
use std::time::Duration;

use tokio_util::task::TaskTracker;

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

/// A bidirectional QUIC stream, with what ending it needs.
pub struct QuicStream {
    inner: Option<Inner>,
    local: Option<SocketAddr>,
    /// The UDP socket's descriptor (a duplicate), for what asks a stream for one.
    // Read only by `AsFd` (Unix: the zero-copy and pcap paths ask for the socket).
    #[cfg_attr(not(unix), allow(dead_code))]
    fd: Arc<socket2::Socket>,
}

struct Inner {
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    conn: quinn::Connection,
    /// A client's own endpoint: the connection is closed, and the endpoint waited for,
    /// once the stream has settled.
    owned: Option<quinn::Endpoint>,
}

impl std::fmt::Debug for QuicStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuicStream")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

impl QuicStream {
    pub(super) fn new(
        (send, recv): (quinn::SendStream, quinn::RecvStream),
        conn: quinn::Connection,
        owned: Option<quinn::Endpoint>,
        local: Option<SocketAddr>,
        fd: Arc<socket2::Socket>,
    ) -> QuicStream {
        QuicStream {
            inner: Some(Inner {
                send,
                recv,
                conn,
                owned,
            }),
            local,
            fd,
        }
    }

    /// Our address on the connection.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local
    }

    /// The peer's certificate (mutual TLS on a server), DER.
    pub fn peer_certificate(&self) -> Option<Vec<u8>> {
        let identity = self.inner.as_ref()?.conn.peer_identity()?;
        let certs = identity
            .downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
            .ok()?;
        certs.first().map(|c| c.as_ref().to_vec())
    }

    fn inner(&mut self) -> io::Result<&mut Inner> {
        self.inner
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "the QUIC stream ended"))
    }
}

#[cfg(unix)]
impl std::os::fd::AsFd for QuicStream {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsyncRead for QuicStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.inner() {
            Ok(i) => Pin::new(&mut i.recv).poll_read(cx, buf).map_err(in_words),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for QuicStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.inner() {
            Ok(i) => {
                tokio::io::AsyncWrite::poll_write(Pin::new(&mut i.send), cx, buf).map_err(in_words)
            }
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// The half-close: the stream's FIN; what the peer sends still arrives.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.inner() {
            Ok(i) => {
                tokio::io::AsyncWrite::poll_shutdown(Pin::new(&mut i.send), cx).map_err(in_words)
            }
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

/// quinn's errors for people: the peer's reset is a reset, a lost connection says why.
fn in_words(e: io::Error) -> io::Error {
    let kind = e.kind();
    let inner = e.get_ref().map(ToString::to_string).unwrap_or_default();
    let why = if inner.contains("reset by peer") {
        "the peer reset the QUIC stream".to_string()
    } else if inner.contains("timed out") {
        "the QUIC connection timed out: the peer is gone".to_string()
    } else if inner.contains("closed by peer") || inner.contains("aborted by peer") {
        format!("the peer closed the QUIC connection ({inner})")
    } else {
        return e;
    };
    io::Error::new(kind, why)
}

impl Drop for QuicStream {
    /// Settles the stream in the background: finished (if the pump did not), then the
    /// peer's acknowledgement awaited, then a client's connection closed cleanly.
    fn drop(&mut self) {
        let Some(mut inner) = self.inner.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        SETTLING.spawn_on(
            async move {
                let _ = inner.send.finish();
                let _ = tokio::time::timeout(SETTLE_LIMIT, inner.send.stopped()).await;
                tracing::debug!(
                    mtu = inner.conn.stats().path.current_mtu,
                    "QUIC stream settled"
                );
                if let Some(endpoint) = inner.owned.take() {
                    inner.conn.close(0u32.into(), b"done");
                    let _ = tokio::time::timeout(
                        std::time::Duration::from_secs(1),
                        endpoint.wait_idle(),
                    )
                    .await;
                }
            },
            &runtime,
        );
    }
}

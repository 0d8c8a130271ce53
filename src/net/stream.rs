//! A connected byte stream of any kind and layer: tcp, unix, TLS over tcp, WebSocket over
//! either of those, and a QUIC stream.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::unix::UnixStream;

use super::{quic, tls, ws};

/// A connected byte stream of any kind sockit speaks.
#[derive(Debug)]
pub enum Stream {
    /// TCP.
    Tcp(TcpStream),
    /// Unix stream socket.
    Unix(UnixStream),
    /// TLS over TCP, either side ([`super::tls`]). Byte-level tricks (splice, reading without
    /// a buffer) see only ciphertext here, so they refuse it; it reads and writes through
    /// `AsyncRead`/`AsyncWrite`.
    Tls(Box<tls::TlsStream>),
    /// WebSocket over TCP or TLS ([`super::ws`]): bytes in messages, so as for TLS only
    /// the buffered paths apply.
    Ws(Box<ws::WsStream<Stream>>),
    /// One bidirectional QUIC stream ([`super::quic`]): its own kind, encrypted inside, so
    /// as for TLS only the buffered paths apply.
    Quic(Box<quic::QuicStream>),
}

fn not_for_layers() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "not available on a TLS or WebSocket stream (its socket carries records or frames)",
    )
}

impl Stream {
    /// True for a stream with a layer over its socket (TLS, WebSocket), where only the
    /// buffered paths apply: splice and reads without a buffer would see the layer's
    /// records, not the bytes.
    pub fn is_layered(&self) -> bool {
        matches!(self, Stream::Tls(_) | Stream::Ws(_) | Stream::Quic(_))
    }

    /// The kind as UCSPI's `PROTO` names it (`TCP`, `TLS`, `UNIX`; a WebSocket says what
    /// it runs on), for `--exec` children.
    pub fn proto(&self) -> &'static str {
        match self {
            Stream::Tcp(_) => "TCP",
            Stream::Unix(_) => "UNIX",
            Stream::Tls(_) => "TLS",
            Stream::Quic(_) => "QUIC",
            Stream::Ws(s) => s.transport().proto(),
        }
    }

    /// Our own address on an IP connection (the address the peer reached).
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        match self {
            Stream::Tcp(s) => s.local_addr().ok(),
            Stream::Tls(s) => s.get_ref().0.local_addr().ok(),
            Stream::Ws(s) => s.transport().local_addr(),
            Stream::Quic(s) => s.local_addr(),
            Stream::Unix(_) => None,
        }
    }

    /// Sets SO_LINGER to zero so that closing sends a reset (RST) instead of FIN: for tests and
    /// for dropping abusive peers without leaving TIME_WAIT behind.
    ///
    /// # Errors
    /// When the socket option cannot be set.
    pub fn set_reset_on_close(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => socket2::SockRef::from(s).set_linger(Some(Duration::ZERO)),
            Stream::Tls(s) => {
                socket2::SockRef::from(s.get_ref().0).set_linger(Some(Duration::ZERO))
            }
            Stream::Ws(s) => s.transport().set_reset_on_close(),
            Stream::Unix(_) | Stream::Quic(_) => Ok(()),
        }
    }
}

impl Stream {
    /// Waits until a read would not block. With [`Stream::try_read`] this lets a server read
    /// through a shared reference and hold no buffer while a client is idle.
    ///
    /// # Errors
    /// As the socket's readiness.
    pub async fn readable(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.readable().await,
            Stream::Unix(s) => s.readable().await,
            Stream::Tls(_) | Stream::Ws(_) | Stream::Quic(_) => Err(not_for_layers()),
        }
    }

    /// Waits for any of `interest`, and says what is ready (a peer's EOF shows as
    /// read-closed even while unread bytes are still ahead of it).
    ///
    /// # Errors
    /// As the socket's readiness.
    pub async fn ready(&self, interest: tokio::io::Interest) -> io::Result<tokio::io::Ready> {
        match self {
            Stream::Tcp(s) => s.ready(interest).await,
            Stream::Unix(s) => s.ready(interest).await,
            Stream::Tls(_) | Stream::Ws(_) | Stream::Quic(_) => Err(not_for_layers()),
        }
    }

    /// Reads what is there without waiting (`WouldBlock` when nothing is).
    ///
    /// # Errors
    /// As `recv(2)`.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.try_read(buf),
            Stream::Unix(s) => s.try_read(buf),
            Stream::Tls(_) | Stream::Ws(_) | Stream::Quic(_) => Err(not_for_layers()),
        }
    }

    /// Waits until a write would not block.
    ///
    /// # Errors
    /// As the socket's readiness.
    pub async fn writable(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.writable().await,
            Stream::Unix(s) => s.writable().await,
            Stream::Tls(_) | Stream::Ws(_) | Stream::Quic(_) => Err(not_for_layers()),
        }
    }

    /// Runs a non-blocking system call on the socket, clearing tokio's readiness when it says
    /// `WouldBlock` (how splice(2) and friends join the reactor).
    ///
    /// # Errors
    /// Whatever `f` returns.
    pub fn try_io<R>(
        &self,
        interest: tokio::io::Interest,
        f: impl FnOnce() -> io::Result<R>,
    ) -> io::Result<R> {
        match self {
            Stream::Tcp(s) => s.try_io(interest, f),
            Stream::Unix(s) => s.try_io(interest, f),
            Stream::Tls(_) | Stream::Ws(_) | Stream::Quic(_) => Err(not_for_layers()),
        }
    }

    /// Writes all of `data` through a shared reference, so one task can read and write.
    ///
    /// # Errors
    /// As `send(2)`: a reset or a closed peer.
    pub async fn write_all_shared(&self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            self.writable().await?;
            match self.send_now(data) {
                Ok(n) => data = &data[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// One send that never waits, whatever the socket's blocking mode: a program that was
    /// given the socket as its stdin (`--exec`) holds it in blocking mode.
    fn send_now(&self, data: &[u8]) -> io::Result<usize> {
        #[cfg(unix)]
        return self.try_io(tokio::io::Interest::WRITABLE, || {
            use rustix::net::SendFlags;
            Ok(rustix::net::send(
                self,
                data,
                SendFlags::DONTWAIT | SendFlags::NOSIGNAL,
            )?)
        });
        #[cfg(not(unix))]
        match self {
            Stream::Tcp(s) => s.try_write(data),
            Stream::Unix(s) => s.try_write(data),
            Stream::Tls(_) | Stream::Ws(_) | Stream::Quic(_) => Err(not_for_layers()),
        }
    }
}

#[cfg(unix)]
impl std::os::fd::AsFd for Stream {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
            Stream::Tls(s) => s.get_ref().0.as_fd(),
            Stream::Ws(s) => s.transport().as_fd(),
            Stream::Quic(s) => s.as_fd(),
        }
    }
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            Stream::Tcp($s) => {
                let $s = Pin::new($s);
                $e
            }
            Stream::Unix($s) => {
                let $s = Pin::new($s);
                $e
            }
            Stream::Tls($s) => {
                let $s = Pin::new($s.as_mut());
                $e
            }
            Stream::Ws($s) => {
                let $s = Pin::new($s.as_mut());
                $e
            }
            Stream::Quic($s) => {
                let $s = Pin::new($s.as_mut());
                $e
            }
        }
    };
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let tls = matches!(*self, Stream::Tls(_));
        match delegate!(self, s => s.poll_read(cx, buf)) {
            // Many TLS peers (python's ssl among them) close without close_notify. Like
            // ncat and socat, take it as the end of the stream, but say so in the log.
            Poll::Ready(Err(e)) if tls && e.kind() == io::ErrorKind::UnexpectedEof => {
                tracing::info!("TLS peer closed without close_notify (taken as the end)");
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) if tls => Poll::Ready(Err(tls::in_words(e))),
            other => other,
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write(cx, buf)).map_err(tls::in_words)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_flush(cx)).map_err(tls::in_words)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_shutdown(cx)).map_err(tls::in_words)
    }
}

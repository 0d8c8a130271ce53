//! Unix-domain sockets from a socket2 socket, as tokio's types; on systems without them
//! (Windows) `unix_none` stands in and every constructor refuses in words.

use std::io;

use socket2::Socket;

#[cfg(unix)]
pub(crate) use tokio::net::{unix::SocketAddr, UnixDatagram, UnixListener, UnixStream};

#[cfg(not(unix))]
pub(crate) use super::unix_none::{SocketAddr, UnixDatagram, UnixListener, UnixStream};

/// Why there are no Unix sockets here (Windows), in words with a way out.
pub(crate) fn unsupported() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "Unix sockets are not available on this system; use tcp://127.0.0.1:PORT",
    )
}

/// A listening socket as a tokio listener.
pub(crate) fn listener(sock: Socket) -> io::Result<UnixListener> {
    #[cfg(unix)]
    return UnixListener::from_std(sock.into());
    #[cfg(not(unix))]
    {
        drop(sock);
        Err(unsupported())
    }
}

/// A datagram socket as tokio's.
pub(crate) fn datagram(sock: Socket) -> io::Result<UnixDatagram> {
    #[cfg(unix)]
    return UnixDatagram::from_std(sock.into());
    #[cfg(not(unix))]
    {
        drop(sock);
        Err(unsupported())
    }
}

/// A connected stream socket as tokio's.
pub(crate) fn stream(sock: Socket) -> io::Result<UnixStream> {
    #[cfg(unix)]
    return UnixStream::from_std(sock.into());
    #[cfg(not(unix))]
    {
        drop(sock);
        Err(unsupported())
    }
}

//! UDP through a tunnel: one visitor address's datagrams as 2-byte-length frames over its
//! data connection, both ways, until `--idle-timeout` passes without one. Both ends (the
//! gateway's public socket, expose's socket to LOCAL) run the same loop.

use std::future::Future;
use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::net::{Stream, MAX_DATAGRAM};
use crate::pump::Activity;

/// Writes one datagram as a frame (a datagram too long for a frame is cut, as a UDP socket
/// would refuse it anyway).
///
/// # Errors
/// Any write error.
pub async fn write<W: AsyncWrite + Unpin>(w: &mut W, datagram: &[u8]) -> io::Result<()> {
    let d = &datagram[..datagram.len().min(usize::from(u16::MAX))];
    let mut frame = Vec::with_capacity(2 + d.len());
    frame.extend_from_slice(&(d.len() as u16).to_be_bytes());
    frame.extend_from_slice(d);
    w.write_all(&frame).await?;
    w.flush().await
}

/// Reads one datagram into `buf` (at least 65,535 bytes); `None` at the end.
///
/// # Errors
/// A connection that ends inside a frame, any read error.
pub async fn read<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> io::Result<Option<usize>> {
    let mut len = [0u8; 2];
    if r.read(&mut len[..1]).await? == 0 {
        return Ok(None);
    }
    r.read_exact(&mut len[1..]).await?;
    let n = usize::from(u16::from_be_bytes(len));
    r.read_exact(&mut buf[..n]).await?;
    Ok(Some(n))
}

/// Where datagrams for the data connection come from (the public socket's queue for one
/// visitor, the socket to LOCAL).
pub trait Source {
    /// The next datagram, into `buf`; its length.
    fn next(&mut self, buf: &mut [u8]) -> impl Future<Output = io::Result<usize>> + Send;
}

/// Where datagrams from the data connection go (the visitor, LOCAL).
pub trait Sink {
    /// Sends one datagram.
    fn put(&self, datagram: &[u8]) -> impl Future<Output = io::Result<()>> + Send;
}

/// Carries datagrams between `data` (framed) and a socket, until the data connection ends,
/// either side fails, or nothing moves for `idle`.
///
/// # Errors
/// The first failure either way.
pub async fn carry(
    data: Stream,
    idle: Duration,
    mut source: impl Source,
    sink: impl Sink,
) -> io::Result<()> {
    let activity = Activity::new();
    let (mut rd, mut wr) = tokio::io::split(data);
    let inbound = async {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        while let Some(n) = read(&mut rd, &mut buf).await? {
            activity.touch();
            sink.put(&buf[..n]).await?;
        }
        Ok::<(), io::Error>(())
    };
    let outbound = async {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            let n = source.next(&mut buf).await?;
            activity.touch();
            write(&mut wr, &buf[..n]).await?;
        }
    };
    let r = tokio::select! {
        r = inbound => r,
        r = outbound => r,
        () = activity.idle(Some(idle)) => Ok(()),
    };
    // The other end sees the end of the data connection and forgets this visitor too.
    let mut data = rd.unsplit(wr);
    let _ = tokio::time::timeout(Duration::from_secs(1), data.shutdown()).await;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn datagrams_keep_their_bounds_empty_ones_too() {
        let (mut a, mut b) = tokio::io::duplex(1 << 17);
        for d in [&b"one"[..], b"", &[7u8; 65_535][..]] {
            write(&mut a, d).await.unwrap();
        }
        drop(a);
        let mut buf = vec![0u8; 65_535];
        assert_eq!(read(&mut b, &mut buf).await.unwrap(), Some(3));
        assert_eq!(&buf[..3], b"one");
        assert_eq!(read(&mut b, &mut buf).await.unwrap(), Some(0));
        assert_eq!(read(&mut b, &mut buf).await.unwrap(), Some(65_535));
        assert_eq!(read(&mut b, &mut buf).await.unwrap(), None);
    }
}

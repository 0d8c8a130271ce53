//! An HTTP head (request or reply line and headers) read off a TCP stream without taking
//! one byte of what follows it: the proxy protocols hand the stream over right after the
//! head, and bytes a peer sent early (a server that speaks first, a pipelined client)
//! belong to the tunnel. Data is peeked, and only bytes known to be head are consumed.

use std::io;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Why a head could not be read.
#[derive(Debug)]
pub enum HeadError {
    /// The socket failed.
    Io(io::Error),
    /// Longer than the limit without ending.
    TooLarge,
    /// The peer closed before the head ended.
    Closed,
}

impl From<io::Error> for HeadError {
    fn from(e: io::Error) -> Self {
        HeadError::Io(e)
    }
}

/// Reads up to and including the blank line that ends a head (`\r\n\r\n`, or `\n\n` from
/// lenient peers), at most `limit` bytes.
///
/// # Errors
/// [`HeadError`]: a failed socket, a head over `limit`, or an early close.
pub async fn read(tcp: &mut TcpStream, limit: usize) -> Result<Vec<u8>, HeadError> {
    let mut head = Vec::new();
    let mut buf = vec![0u8; 4096];
    loop {
        let n = tcp.peek(&mut buf).await?;
        if n == 0 {
            return Err(HeadError::Closed);
        }
        // The end may straddle what was consumed already and what is peeked now.
        let keep = head.len().min(3);
        let mut window = head[head.len() - keep..].to_vec();
        window.extend_from_slice(&buf[..n]);
        let take = match end_of_head(&window) {
            Some(end) => end - keep,
            None => n,
        };
        if head.len() + take > limit {
            return Err(HeadError::TooLarge);
        }
        let start = head.len();
        head.resize(start + take, 0);
        tcp.read_exact(&mut head[start..]).await?;
        if end_of_head(&window).is_some() {
            return Ok(head);
        }
    }
}

/// Where the head ends in `data` (just after its blank line).
fn end_of_head(data: &[u8]) -> Option<usize> {
    let crlf = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4);
    let lf = data.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_head_is_read_and_what_follows_is_left() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let writer = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            // Split so the end of the head straddles two reads.
            s.write_all(b"HTTP/1.1 200 OK\r\nX: y\r").await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            s.write_all(b"\n\r\nSSH-2.0-greeting\r\n").await.unwrap();
        });
        let mut c = TcpStream::connect(addr).await.unwrap();
        let head = read(&mut c, 1024).await.unwrap();
        assert_eq!(head, b"HTTP/1.1 200 OK\r\nX: y\r\n\r\n");
        let mut rest = Vec::new();
        writer.await.unwrap();
        c.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"SSH-2.0-greeting\r\n");
    }

    #[test]
    fn the_end_is_found() {
        assert_eq!(end_of_head(b"a\r\n\r\nb"), Some(5));
        assert_eq!(end_of_head(b"a\n\nb"), Some(3));
        assert_eq!(end_of_head(b"a\r\n"), None);
    }
}

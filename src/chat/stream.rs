//! A stream member (tcp, unix, tls): lines read from the socket go into the room, the
//! member's mailbox is written back, each side on its own so neither waits for the other.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::framing::MemberOptions;
use super::framing::{too_long, Framer, Pace};
use super::room::{Flow, MemberId, Room};
use crate::net::Peer;

/// Bytes read at a time by a member that talks like a person: all an idle member holds.
const READ_BUF: usize = 1024;
/// A member that fills every read (a paste, a bot, a benchmark) reads up to this much at
/// once, so its lines reach the others in fewer, larger batches.
const READ_MAX: usize = 64 * 1024;
/// The most one write sends: a batch of queued lines.
const WRITE_BATCH: usize = 64 * 1024;
/// How long a line without a newline may wait for the rest: then it counts as a line, so
/// clients that send a message without one (the tutorial's own) still chat.
const PARTIAL_QUIET: Duration = Duration::from_millis(300);
/// How long a leaving member's last lines (the goodbye, the shutdown notice) may take.
const FLUSH: Duration = Duration::from_secs(2);

/// Serves one stream member from joining to leaving; `page` for the web page's WebSocket,
/// which gets the room as data ([`super::web::for_page`]).
pub async fn serve<S>(room: Arc<Room>, stream: S, peer: Peer, opts: MemberOptions, page: bool)
where
    S: AsyncRead + AsyncWrite + Send + Unpin,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let joined = match room.join() {
        Ok(j) => j,
        Err(e) => {
            tracing::warn!(%peer, "refused: {e}");
            let _ = tokio::time::timeout(FLUSH, async {
                let _ = wr.write_all(format!("! {e}\n").as_bytes()).await;
                let _ = wr.shutdown().await;
            })
            .await;
            return;
        }
    };
    let (id, nick, mut mailbox) = (joined.id, joined.nick, joined.mailbox);
    tracing::debug!(%peer, %nick, "stream member joined");
    let kick = mailbox.kicked_token();
    let writer = async {
        while let Some(batch) = mailbox.next(WRITE_BATCH).await {
            if page {
                wr.write_all(&super::web::for_page(&room, id, &batch))
                    .await?;
            } else {
                wr.write_all(&batch).await?;
            }
        }
        wr.shutdown().await
    };
    tokio::pin!(writer);
    let reader = read(&mut rd, &room, id, &opts);
    tokio::select! {
        end = reader => {
            if let Some(reason) = end {
                room.leave(id, &reason);
            }
            // Let the goodbye out, but never wait long for a peer that does not read.
            tokio::select! {
                _ = tokio::time::timeout(FLUSH, &mut writer) => {}
                () = kick.cancelled() => {}
            }
        }
        r = &mut writer => {
            if let Err(e) = r {
                room.leave(id, reason(&e));
            }
        }
        () = kick.cancelled() => {}
    }
    tracing::debug!(%peer, %nick, "stream member done");
}

/// Reads until the member leaves; `Some(reason)` when the room still has to be told.
async fn read<R: AsyncRead + Unpin>(
    rd: &mut R,
    room: &Room,
    id: MemberId,
    opts: &MemberOptions,
) -> Option<String> {
    let mut framer = Framer::new(opts.max_line);
    let mut pace = Pace::new(opts.rate, opts.burst);
    let mut read_size = READ_BUF;
    loop {
        let partial = framer.pending() > 0;
        // Stream members may idle for ever (people do in chat rooms); only a pending
        // partial line has a clock.
        let space = read_size;
        let read = rd.read_buf(framer.buffer(space));
        let n = if partial {
            tokio::time::timeout(PARTIAL_QUIET, read).await
        } else {
            Ok(read.await)
        };
        // Set once the stream has ended: why, for the others' `left` line.
        let end = match n {
            Ok(Ok(n)) if n >= space => {
                // A full read means more is coming (a paste, a bot): read big from now on,
                // and take what is already waiting before the lines go to the room, so a
                // burst reaches the others as one batch (each batch wakes every writer).
                read_size = READ_MAX;
                match read_waiting(rd, &mut framer, READ_MAX.saturating_sub(n)).await {
                    Ok(true) => Some("connection closed"),
                    Ok(false) => None,
                    Err(e) => Some(reason(&e)),
                }
            }
            Ok(Ok(n)) => {
                read_size = READ_BUF;
                (n == 0).then_some("connection closed")
            }
            Ok(Err(e)) => return Some(reason(&e).into()),
            Err(_) => {
                if let Some(line) = framer.finish() {
                    if !give(room, id, [&line[..]]).await {
                        return None;
                    }
                }
                continue;
            }
        };
        let frames = framer.take();
        for _ in 0..frames.too_long {
            room.error(id, &too_long(opts.max_line));
        }
        let mut batch: Vec<&[u8]> = Vec::new();
        for l in frames.lines(opts.max_line) {
            let Ok(l) = l else {
                room.error(id, &too_long(opts.max_line));
                continue;
            };
            while let Some(wait) = pace.take() {
                // Over the rate: hand over what was allowed, then stop reading a while.
                if !batch.is_empty() && !give(room, id, batch.drain(..)).await {
                    return None;
                }
                tokio::time::sleep(wait).await;
            }
            batch.push(l);
        }
        if !batch.is_empty() && !give(room, id, batch).await {
            return None;
        }
        if let Some(end) = end {
            if let Some(last) = framer.finish() {
                if !give(room, id, [&last[..]]).await {
                    return None;
                }
            }
            return Some(end.into());
        }
    }
}

/// Reads, without waiting, what has already arrived until about `max` more bytes are in
/// (a read takes what the buffer has room for); true at the end of the stream. A read that
/// would wait is dropped at once: a pending read holds no bytes, so nothing is lost.
async fn read_waiting<R: AsyncRead + Unpin>(
    rd: &mut R,
    framer: &mut Framer,
    max: usize,
) -> io::Result<bool> {
    let mut got = 0;
    while got < max {
        match rd.read_buf(framer.buffer(max - got)).now_or_never() {
            Some(Ok(0)) => return Ok(true),
            Some(Ok(n)) => got += n,
            Some(Err(e)) => return Err(e),
            None => break,
        }
    }
    Ok(false)
}

/// Hands lines to the room and, if they left readers behind, pauses this member's reads
/// until they catch up; false once the member is no longer in the room.
async fn give<'a>(room: &Room, id: MemberId, lines: impl IntoIterator<Item = &'a [u8]>) -> bool {
    let out = room.input(id, lines);
    if !out.backlog.is_empty() {
        room.settle(out.backlog).await;
    }
    out.flow == Flow::Stay
}

fn reason(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => "connection reset",
        io::ErrorKind::TimedOut => "timed out",
        _ => "connection failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn what_has_arrived_is_taken_without_waiting_and_an_end_is_seen() {
        let (mut near, mut far) = tokio::io::duplex(1 << 16);
        far.write_all(&[b'x'; 5000]).await.unwrap();
        let mut framer = Framer::new(1 << 16);
        // Everything that is there, and no wait for more.
        assert!(!read_waiting(&mut near, &mut framer, 1 << 16).await.unwrap());
        assert_eq!(framer.pending(), 5000);
        far.write_all(&[b'y'; 3000]).await.unwrap();
        drop(far);
        assert!(read_waiting(&mut near, &mut framer, 1 << 16).await.unwrap());
        assert_eq!(framer.pending(), 8000);
    }
}

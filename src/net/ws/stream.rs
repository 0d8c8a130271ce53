//! An upgraded WebSocket as a byte stream. Reads give the payloads of the messages that
//! arrive (pings answered on the way, fragments reassembled by tungstenite), a text message
//! as a line (a newline after it), a binary one as it is; writes become messages as the
//! [`Framing`] says.
//!
//! WebSocket has no half-close: after a Close only the Close answer may follow, so what the
//! other side still had to send is lost (python's websockets drops the echo it was about to
//! send when the Close comes right after the message). Two sockits agree on one in the
//! upgrade ([`HALF_CLOSE`]): an empty binary message ends one direction, and the Close goes
//! out once both have ended. With any other peer a shutdown is the end of our direction
//! only when [`Options::linger`] says so: reading goes on until the peer closes or has been
//! quiet that long, and then our Close (1000) goes out, as a datagram session waits for
//! replies. Without it the Close goes out at the shutdown. A second shutdown sends the
//! Close at once: the conversation is over.
//!
//! A message that breaks the rules (over `--max-message`, a text one that is not UTF-8, a
//! protocol error) is answered with the Close code RFC 6455 gives it (1009, 1007, 1002)
//! before the read reports it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures_util::{Sink, Stream as _};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::error::{Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use super::{Framing, Options};

/// A WebSocket connection, either side, read and written as bytes.
pub struct WsStream<S> {
    ws: WebSocketStream<S>,
    framing: Framing,
    max_message: usize,
    /// Payload received and not read yet.
    unread: Bytes,
    /// A newline is owed after `unread` (a text message under [`Framing::Lines`]).
    newline: bool,
    /// [`Framing::Lines`]: what was written after the last newline.
    line: Vec<u8>,
    /// Bytes of a write already handed to the socket's buffer while its flush waits: the
    /// retried write reports them instead of sending them again.
    inflight: Option<usize>,
    /// Our Close went out (at a shutdown or a broken rule).
    close_sent: bool,
    /// The peer's Close arrived, or the connection ended.
    peer_closed: bool,
    /// Both sides speak [`HALF_CLOSE`].
    half_close: bool,
    /// [`HALF_CLOSE`]: our end-of-stream message went out.
    eof_sent: bool,
    /// [`HALF_CLOSE`]: the peer's end-of-stream message arrived.
    peer_eof: bool,
    /// A rule the peer broke: the Close code to answer with, and what the read reports.
    failing: Option<(CloseCode, String)>,
    /// A failure the next read reports (after the bytes that came before it).
    error: Option<io::Error>,
    ping: Option<tokio::time::Interval>,
    /// [`Options::linger`]: how long a quiet peer is waited for after our shutdown.
    linger: Option<std::time::Duration>,
    /// Our direction ended without a Close (a peer without [`HALF_CLOSE`], under linger).
    shut: bool,
    /// Under linger: when our Close goes out (and, once it has, when we stop waiting for
    /// the answer); pushed back by every message that arrives.
    lingering: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S: std::fmt::Debug + AsyncRead + AsyncWrite + Unpin> std::fmt::Debug for WsStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsStream")
            .field("framing", &self.framing)
            .field("transport", self.ws.get_ref())
            .finish()
    }
}

/// How long a peer that broke a rule may go on sending after our Close.
const DISCARD_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The upgrade header by which two sockits agree that an empty binary message is a
/// half-close (asked by the client, echoed by the server).
pub const HALF_CLOSE: &str = "Sockit-Half-Close";

impl<S: AsyncRead + AsyncWrite + Unpin> WsStream<S> {
    pub(super) fn new(ws: WebSocketStream<S>, opts: &Options, half_close: bool) -> WsStream<S> {
        let ping = opts.ping.filter(|p| !p.is_zero()).map(|p| {
            let mut iv = tokio::time::interval_at(tokio::time::Instant::now() + p, p);
            iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            iv
        });
        WsStream {
            ws,
            framing: opts.framing,
            max_message: opts.max_message.max(1),
            unread: Bytes::new(),
            newline: false,
            line: Vec::new(),
            inflight: None,
            close_sent: false,
            peer_closed: false,
            half_close,
            eof_sent: false,
            peer_eof: false,
            failing: None,
            error: None,
            ping,
            linger: opts.linger,
            shut: false,
            lingering: None,
        }
    }

    /// The connection the WebSocket runs on (TCP or TLS).
    pub fn transport(&self) -> &S {
        self.ws.get_ref()
    }

    /// `echo` over WebSocket: every message back as it came, text as text and binary as
    /// binary, until the peer closes. `on_message` hears each one's size.
    ///
    /// # Errors
    /// The connection failing; a broken rule is answered with its Close code first.
    pub async fn mirror(&mut self, mut on_message: impl FnMut(usize)) -> io::Result<()> {
        use futures_util::{SinkExt, StreamExt};
        while let Some(m) = self.ws.next().await {
            match m {
                Ok(m @ (Message::Text(_) | Message::Binary(_))) => {
                    on_message(m.len());
                    self.ws.send(m).await.map_err(in_words)?;
                }
                Ok(Message::Close(_)) => break,
                Ok(_) => {}
                Err(e) => {
                    return match rule_broken(&e, self.max_message) {
                        Some((code, why)) => {
                            let _ = self.ws.send(close(code)).await;
                            self.discard_until_closed().await;
                            Err(io::Error::new(io::ErrorKind::InvalidData, why))
                        }
                        None => Err(in_words(e)),
                    }
                }
            }
        }
        // Our Close answer goes out with the flush.
        let _ = self.ws.flush().await;
        Ok(())
    }

    /// After our Close for a broken rule, what the peer is still sending (the rest of a
    /// message too big to take) is read and dropped until it closes, for a bounded time:
    /// closing a socket with unread bytes sends a reset, and the reset would destroy our
    /// Close before the peer reads it.
    async fn discard_until_closed(&mut self) {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 16 * 1024];
        let socket = self.ws.get_mut();
        let _ = tokio::time::timeout(DISCARD_LIMIT, async {
            while let Ok(n) = socket.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
    }

    fn ws(&mut self) -> Pin<&mut WebSocketStream<S>> {
        Pin::new(&mut self.ws)
    }

    /// Our Close with `code`, queued once and flushed; failures are the end anyway.
    fn poll_close_with(&mut self, cx: &mut Context<'_>, code: CloseCode) -> Poll<()> {
        if !self.close_sent && !self.peer_closed {
            if ready!(self.ws().poll_ready(cx)).is_err() {
                return Poll::Ready(());
            }
            let _ = self.ws().start_send(close(code));
            self.close_sent = true;
        }
        let _ = ready!(self.ws().poll_flush(cx));
        Poll::Ready(())
    }

    /// Sends a ping when `--ping`'s time has come; a busy socket skips that one.
    fn poll_ping(&mut self, cx: &mut Context<'_>) {
        let Some(iv) = self.ping.as_mut() else { return };
        let mut due = false;
        while iv.poll_tick(cx).is_ready() {
            due = true;
        }
        if due && !self.close_sent && !self.peer_closed {
            if let Poll::Ready(Ok(())) = self.ws().poll_ready(cx) {
                let _ = self.ws().start_send(Message::Ping(Bytes::new()));
                let _ = self.ws().poll_flush(cx);
            }
        }
    }

    /// Under [`Framing::Lines`], every complete line of what was written (`input` after the
    /// partial `line` of earlier writes) as a message, the rest kept for later (or sent too
    /// when `all`, at the end). The lines of one write share one copy of it.
    fn send_lines(&mut self, input: &[u8], all: bool) -> io::Result<()> {
        let mut rest = input;
        if !self.line.is_empty() {
            match rest.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.line.extend_from_slice(&rest[..i]);
                    rest = &rest[i + 1..];
                    let l = std::mem::take(&mut self.line);
                    self.send_line(Bytes::from(l))?;
                }
                None => {
                    self.line.extend_from_slice(rest);
                    rest = &[];
                }
            }
        }
        if !rest.is_empty() {
            let whole = Bytes::copy_from_slice(rest);
            let mut at = 0;
            while let Some(i) = whole[at..].iter().position(|&b| b == b'\n') {
                self.send_line(whole.slice(at..at + i))?;
                at += i + 1;
            }
            self.line.extend_from_slice(&whole[at..]);
        }
        if self.line.len() >= self.max_message || (all && !self.line.is_empty()) {
            // Not a line (yet): its bytes as they are.
            let l = std::mem::take(&mut self.line);
            self.send_raw(&Bytes::from(l))?;
        }
        Ok(())
    }

    /// One complete line (`l`, without its newline) as a text message; a line that is not
    /// UTF-8 or does not fit one message goes as binary, newline included, so the receiver
    /// writes the same bytes either way.
    fn send_line(&mut self, l: Bytes) -> io::Result<()> {
        if l.len() <= self.max_message {
            if let Ok(t) = Utf8Bytes::try_from(l.clone()) {
                return self.ws().start_send(Message::Text(t)).map_err(in_words);
            }
        }
        let mut raw = Vec::with_capacity(l.len() + 1);
        raw.extend_from_slice(&l);
        raw.push(b'\n');
        self.send_raw(&Bytes::from(raw))
    }

    /// Bytes as binary messages, in pieces when longer than a message may be.
    fn send_raw(&mut self, b: &Bytes) -> io::Result<()> {
        let mut at = 0;
        while at < b.len() {
            let end = (at + self.max_message).min(b.len());
            self.ws()
                .start_send(Message::Binary(b.slice(at..end)))
                .map_err(in_words)?;
            at = end;
        }
        Ok(())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        // As many messages as are there and fit: a room's lines come one message each, and
        // one read per line (and another for its newline) would cost a wake-up each.
        let start = buf.filled().len();
        loop {
            if !me.unread.is_empty() {
                let n = buf.remaining().min(me.unread.len());
                buf.put_slice(&me.unread.split_to(n));
            }
            if me.unread.is_empty() && me.newline && buf.remaining() > 0 {
                buf.put_slice(b"\n");
                me.newline = false;
            }
            let got = buf.filled().len() > start;
            if buf.remaining() == 0 || !me.unread.is_empty() || me.newline {
                return Poll::Ready(Ok(()));
            }
            let ended = me.failing.is_some() || me.peer_closed || me.peer_eof || me.error.is_some();
            if got && ended {
                // What arrived before the end is read first.
                return Poll::Ready(Ok(()));
            }
            if let Some(e) = me.error.take() {
                return Poll::Ready(Err(e));
            }
            if let Some((code, _)) = &me.failing {
                let code = *code;
                ready!(me.poll_close_with(cx, code));
                let why = me.failing.take().map(|f| f.1).unwrap_or_default();
                me.peer_closed = true;
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, why)));
            }
            if me.peer_closed {
                // Our answer to their Close (tungstenite queued it) goes out, then the end.
                let _ = ready!(me.ws().poll_flush(cx));
                return Poll::Ready(Ok(()));
            }
            if me.peer_eof {
                // Both directions are over once ours is too: then the Close is ours to send.
                if me.eof_sent {
                    ready!(me.poll_close_with(cx, CloseCode::Normal));
                }
                return Poll::Ready(Ok(()));
            }
            me.poll_ping(cx);
            if let Some(t) = me.lingering.as_mut() {
                if t.as_mut().poll(cx).is_ready() {
                    if me.close_sent {
                        // Our Close has had its time: the peer will not answer it.
                        me.lingering = None;
                        me.peer_closed = true;
                        continue;
                    }
                    tracing::debug!(
                        "the WebSocket peer went quiet after our end of input: closing"
                    );
                    let quiet = me.linger.unwrap_or_default();
                    t.as_mut().reset(tokio::time::Instant::now() + quiet);
                    ready!(me.poll_close_with(cx, CloseCode::Normal));
                }
            }
            let next = match me.ws().poll_next(cx) {
                Poll::Ready(m) => m,
                Poll::Pending if got => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            };
            if matches!(next, Some(Ok(Message::Text(_) | Message::Binary(_)))) {
                // An answer (not a ping): the peer is not quiet yet.
                if let (Some(t), Some(quiet), false) =
                    (me.lingering.as_mut(), me.linger, me.close_sent)
                {
                    t.as_mut().reset(tokio::time::Instant::now() + quiet);
                }
            }
            match next {
                None => me.peer_closed = true,
                Some(Ok(Message::Text(t))) => {
                    me.unread = t.into();
                    me.newline = true;
                }
                Some(Ok(Message::Binary(b))) if b.is_empty() && me.half_close => {
                    me.peer_eof = true;
                }
                Some(Ok(Message::Binary(b))) => me.unread = b,
                Some(Ok(Message::Close(frame))) => {
                    match &frame {
                        Some(f) if f.code != CloseCode::Normal => {
                            tracing::info!(code = u16::from(f.code), reason = %f.reason, "the peer closed the WebSocket");
                        }
                        _ => tracing::debug!("the peer closed the WebSocket"),
                    }
                    me.peer_closed = true;
                }
                Some(Ok(_)) => {}
                Some(Err(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake))) => {
                    // As TLS without close_notify: the end, said in the log.
                    tracing::info!("WebSocket peer closed the connection without a Close");
                    me.peer_closed = true;
                }
                Some(Err(e)) => match rule_broken(&e, me.max_message) {
                    Some(f) => me.failing = Some(f),
                    None => {
                        me.peer_closed = true;
                        me.error = Some(in_words(e));
                    }
                },
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        if let Some(n) = me.inflight {
            ready!(me.ws().poll_flush(cx)).map_err(in_words)?;
            me.inflight = None;
            return Poll::Ready(Ok(n));
        }
        if me.close_sent || me.peer_closed || me.eof_sent || me.shut {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the WebSocket is closed",
            )));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        ready!(me.ws().poll_ready(cx)).map_err(in_words)?;
        match me.framing {
            Framing::Binary => {
                for chunk in buf.chunks(me.max_message) {
                    let m = Message::Binary(Bytes::copy_from_slice(chunk));
                    me.ws().start_send(m).map_err(in_words)?;
                }
            }
            Framing::Lines => me.send_lines(buf, false)?,
        }
        match me.ws().poll_flush(cx) {
            Poll::Ready(r) => Poll::Ready(r.map(|()| buf.len()).map_err(in_words)),
            Poll::Pending => {
                me.inflight = Some(buf.len());
                Poll::Pending
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().ws().poll_flush(cx).map_err(in_words)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if (me.shut || me.eof_sent) && !me.close_sent && !me.peer_closed {
            // Shut down again: the conversation is over, whatever the peer still sends.
            me.lingering = None;
            ready!(me.poll_close_with(cx, CloseCode::Normal));
            return Poll::Ready(Ok(()));
        }
        if !me.close_sent && !me.peer_closed && !me.eof_sent {
            ready!(me.ws().poll_ready(cx)).map_err(in_words)?;
            if !me.line.is_empty() {
                me.send_lines(&[], true)?;
            }
            if me.half_close && !me.peer_eof {
                // The peer may still be sending: only our direction ends now.
                me.ws()
                    .start_send(Message::Binary(Bytes::new()))
                    .map_err(in_words)?;
                me.eof_sent = true;
            } else if let (Some(quiet), false) = (me.linger, me.peer_eof) {
                // No half-close to send: the reader waits for the answer, then closes.
                me.shut = true;
                me.lingering = Some(Box::pin(tokio::time::sleep(quiet)));
            } else {
                me.ws()
                    .start_send(close(CloseCode::Normal))
                    .map_err(in_words)?;
                me.close_sent = true;
            }
        }
        match ready!(me.ws().poll_flush(cx)) {
            Ok(()) | Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(in_words(e))),
        }
    }
}

fn close(code: CloseCode) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: "".into(),
    }))
}

/// The Close code for a rule the peer broke, and the words for it; `None` for failures
/// that are not the peer's message (the socket, a closed connection).
fn rule_broken(e: &WsError, max: usize) -> Option<(CloseCode, String)> {
    match e {
        WsError::Capacity(_) => Some((
            CloseCode::Size,
            format!(
                "a WebSocket message over {max} bytes arrived (--max-message): closed with 1009"
            ),
        )),
        WsError::Utf8(_) => Some((
            CloseCode::Invalid,
            "a WebSocket text message was not valid UTF-8: closed with 1007".into(),
        )),
        WsError::Protocol(p) => Some((
            CloseCode::Protocol,
            format!("the WebSocket peer broke the protocol ({p}): closed with 1002"),
        )),
        _ => None,
    }
}

/// tungstenite's errors as the I/O errors the commands report.
pub(super) fn in_words(e: WsError) -> io::Error {
    match e {
        WsError::Io(e) => e,
        WsError::ConnectionClosed | WsError::AlreadyClosed => {
            io::Error::new(io::ErrorKind::BrokenPipe, "the WebSocket is closed")
        }
        other => io::Error::other(other.to_string()),
    }
}

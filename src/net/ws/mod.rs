//! The WebSocket layer (`ws://`, `wss://`, and chat's `http://`): the outermost layer of the
//! stack, over TCP or TLS, on both sides of it.
//!
//! - [`client`]: the upgrade request a dial sends (`--header`, `--origin`) and its answer.
//! - [`server`]: the upgrade a server's admission accepts (the path, 404 elsewhere, the
//!   16 KiB header limit, chat's page at `/`).
//! - `stream`: [`WsStream`], the upgraded connection as a byte stream, so every command
//!   (the pump, `--exec`, `-x`, relay, bench, chat) takes it as it takes TCP; the message
//!   boundaries it keeps are the [`Framing`]'s business.
//!
//! The framing is tungstenite's (through tokio-tungstenite, which sits on any
//! `AsyncRead + AsyncWrite` and so on sockit's own TLS); the handshakes are ours, because
//! the SPEC's rules for them (header limit, paths, the page) are ours, and because
//! tungstenite's handshake reader refuses a head that arrives in many small pieces (a slow
//! link looks like an attack to it). permessage-deflate
//! is neither offered nor accepted.

pub mod client;
pub mod server;
mod stream;
#[cfg(test)]
mod tests;

use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::net::base::HEADER_LIMIT;

pub use stream::{WsStream, HALF_CLOSE};

/// The largest message taken unless `--max-message` says (the SPEC's 16 MiB).
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// tungstenite's read buffer per connection unless [`Options::read_buffer`] says. Its
/// default (128 KiB) is zero-filled on every read (a cost per request) and held by every
/// idle member; 4 KiB keeps requests cheap (rr over ws 1.07x websocat's `mirror:`, against
/// 0.91x at 16 KiB in the same conditions) and a thousand chat members within 4 MiB.
pub const READ_BUFFER: usize = 4 * 1024;

/// The read buffer of a tunnel (relay, bench stream): one read per 64 KiB message, 25% more
/// throughput than 16 KiB.
pub const TUNNEL_READ_BUFFER: usize = 64 * 1024;

/// How the bytes of a command map onto messages. Either way a text message read is a
/// line (its payload and a newline) and a binary message is its payload as it is, so two
/// sockits in any mix of framings pass bytes exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Framing {
    /// For people and line protocols (connect, listen, chat): each complete line written
    /// that is UTF-8 is one text message without its newline; anything else (a line that
    /// is not UTF-8, an unfinished last line, a line longer than a message) goes as
    /// binary messages with its bytes as they are, newline included.
    #[default]
    Lines,
    /// For tunnels and benchmarks (relay, bench, `--binary`): each write is one binary
    /// message, as websockify sends.
    Binary,
}

/// The WebSocket options of a command, as plain values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// How bytes become messages.
    pub framing: Framing,
    /// `--ping SECS`: a ping after this long, again and again, so an idle connection
    /// survives proxies and NATs that forget quiet ones.
    pub ping: Option<Duration>,
    /// `--max-message BYTES`: a bigger message (or frame) is refused with Close 1009.
    pub max_message: usize,
    /// `--header 'Name: value'` (clients): extra headers of the upgrade request.
    pub headers: Vec<(String, String)>,
    /// `--origin` (clients): the `Origin` header, for servers that check it.
    pub origin: Option<String>,
    /// tungstenite's read buffer ([`READ_BUFFER`], or [`TUNNEL_READ_BUFFER`] for bulk).
    pub read_buffer: usize,
    /// What a shutdown means to a peer that has no half-close (any peer but sockit).
    /// `None`: the end of the conversation, so the Close goes out at once (chat, serve).
    /// `Some(quiet)`: the end of our direction only (connect, listen, relay), so what the
    /// peer still sends is read until it closes or has been quiet this long, and only then
    /// our Close goes out: a Close right after the last message would drop its answer.
    pub linger: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            framing: Framing::default(),
            ping: None,
            max_message: MAX_MESSAGE,
            headers: Vec::new(),
            origin: None,
            read_buffer: READ_BUFFER,
            linger: None,
        }
    }
}

impl Options {
    /// tungstenite's configuration for these options.
    fn config(&self) -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
        tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(self.read_buffer.max(1024))
            .max_message_size(Some(self.max_message))
            .max_frame_size(Some(self.max_message))
    }
}

/// Reads an HTTP head (a request or a reply) in whatever pieces it comes, at most
/// [`HEADER_LIMIT`]; what came after it (frames sent early) is returned too, for
/// tungstenite. Ours, not tungstenite's handshake reader, which takes a head that arrives a
/// few bytes at a time for an attack and gives up. `Err(Some(why))` for a head over the limit, `Err(None)` when the client
/// left or failed first.
pub(super) async fn read_head<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<(Vec<u8>, Vec<u8>), Option<&'static str>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = stream.read(&mut chunk).await.map_err(|_| None)?;
        if n == 0 {
            return Err(None);
        }
        let from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf[from..].windows(4).position(|w| w == b"\r\n\r\n") {
            let end = from + i + 4;
            if end > HEADER_LIMIT {
                return Err(Some("headers over 16 KiB"));
            }
            let rest = buf.split_off(end);
            return Ok((buf, rest));
        }
        if buf.len() > HEADER_LIMIT {
            return Err(Some("headers over 16 KiB"));
        }
    }
}

/// Checks `--origin`: a value a header can hold (no line breaks to smuggle headers in).
///
/// # Errors
/// In words.
pub fn check_origin(s: &str) -> Result<String, String> {
    use tokio_tungstenite::tungstenite::http::HeaderValue;
    if HeaderValue::from_str(s).is_err() || s.is_empty() {
        return Err(format!(
            "'{s}' cannot be an Origin header: write it as http://host"
        ));
    }
    Ok(s.to_string())
}

/// Parses `--header 'Name: value'`.
///
/// # Errors
/// Without a colon, or with a name or value HTTP does not allow, in words.
pub fn parse_header(s: &str) -> Result<(String, String), String> {
    let Some((name, value)) = s.split_once(':') else {
        return Err(format!("'{s}' is not a header: write it as 'Name: value'"));
    };
    let (name, value) = (name.trim(), value.trim());
    use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
    if HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Err(format!("'{name}' is not a header name"));
    }
    if HeaderValue::from_str(value).is_err() {
        return Err(format!(
            "the value of {name} holds characters a header cannot"
        ));
    }
    Ok((name.to_string(), value.to_string()))
}

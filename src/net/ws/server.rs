//! The server's upgrade, run by the admission inside the handshake deadline: the request
//! head (at most [`crate::net::HEADER_LIMIT`], 431 beyond), the path (404 elsewhere), the
//! WebSocket headers (426 without them), then the 101. Chat's `http://` endpoint serves
//! its page at `/` from the same port.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

use super::{Options, WsStream};
use crate::net::{Stream, HEADER_LIMIT};

/// What a server answers on a WebSocket endpoint.
#[derive(Debug, Clone)]
pub struct Upgrade {
    /// Where upgrades are accepted (the endpoint's path).
    pub path: String,
    /// A page served at `/` (chat's web page), if any.
    pub page: Option<&'static str>,
    /// The options of every connection upgraded.
    pub opts: Options,
}

/// Why a client did not become a WebSocket: the status it was answered with (none when it
/// left or broke off first) and why, for the log.
#[derive(Debug)]
pub struct Refused {
    /// The HTTP status sent, if one was.
    pub status: Option<u16>,
    /// In words.
    pub why: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(s) => write!(f, "answered {s}: {}", self.why),
            None => f.write_str(&self.why),
        }
    }
}

/// Takes a client through the upgrade. A request for the page is answered and counts as
/// refused (`status: Some(200)`): the connection is done.
///
/// # Errors
/// [`Refused`], after the answer went out.
pub async fn accept(mut stream: Stream, up: &Upgrade) -> Result<WsStream, Refused> {
    let (head, rest) = match read_head(&mut stream).await {
        Ok(h) => h,
        Err(Some(too_big)) => return answer(stream, 431, too_big, &[]).await,
        Err(None) => return Err(quiet("closed before its request ended")),
    };
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        Err(httparse::Error::TooManyHeaders) => {
            return answer(stream, 431, "more than 64 headers", &[]).await
        }
        _ => return answer(stream, 400, "not an HTTP request", &[]).await,
    }
    let (method, target) = (req.method.unwrap_or(""), req.path.unwrap_or(""));
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
    };
    let has_token = |name: &str, token: &str| {
        header(name).is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    let path = target.split('?').next().unwrap_or("");
    if path != up.path.split('?').next().unwrap_or("") {
        if let (Some(page), "/", "GET") = (up.page, path, method) {
            return page_answer(stream, page).await;
        }
        return answer(stream, 404, "no WebSocket at this path", &[]).await;
    }
    if method != "GET" {
        return answer(
            stream,
            405,
            "a WebSocket upgrade is a GET",
            &[("Allow", "GET")],
        )
        .await;
    }
    if !has_token("upgrade", "websocket") || !has_token("connection", "upgrade") {
        return answer(
            stream,
            426,
            "this is a WebSocket endpoint: connect with a WebSocket client",
            &[("Upgrade", "websocket"), ("Connection", "Upgrade")],
        )
        .await;
    }
    if header("sec-websocket-version").as_deref().map(str::trim) != Some("13") {
        return answer(
            stream,
            426,
            "only WebSocket version 13 is spoken",
            &[("Sec-WebSocket-Version", "13")],
        )
        .await;
    }
    let Some(key) = header("sec-websocket-key") else {
        return answer(stream, 400, "no Sec-WebSocket-Key", &[]).await;
    };
    // noVNC (and websockify's other clients) offer `binary`; it is what relay carries.
    let protocol = has_token("sec-websocket-protocol", "binary").then_some("binary");
    let mut reply = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
        derive_accept_key(key.trim().as_bytes())
    );
    if let Some(p) = protocol {
        reply.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
    }
    let half_close = header(super::HALF_CLOSE).is_some();
    if half_close {
        reply.push_str(&format!("{}: 1\r\n", super::HALF_CLOSE));
    }
    reply.push_str("\r\n");
    if let Err(e) = stream.write_all(reply.as_bytes()).await {
        return Err(quiet(&crate::error::describe_io(&e)));
    }
    let ws =
        WebSocketStream::from_partially_read(stream, rest, Role::Server, Some(up.opts.config()))
            .await;
    Ok(WsStream::new(ws, &up.opts, half_close))
}

fn quiet(why: &str) -> Refused {
    Refused {
        status: None,
        why: why.into(),
    }
}

/// Reads the request head; what came after it (frames sent early) is returned too, for
/// tungstenite. `Err(Some(why))` for a head over the limit, `Err(None)` when the client
/// left or failed first.
async fn read_head(stream: &mut Stream) -> Result<(Vec<u8>, Vec<u8>), Option<&'static str>> {
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

async fn answer(
    mut stream: Stream,
    status: u16,
    why: &str,
    extra: &[(&str, &str)],
) -> Result<WsStream, Refused> {
    let reason = match status {
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    };
    let body = format!("{status} {reason}: {why}\n");
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head.push_str(&body);
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.shutdown().await;
    Err(Refused {
        status: Some(status),
        why: why.into(),
    })
}

/// The CSP source of the page's one inline script, by its SHA-256: that script runs and
/// nothing else does, not even an inline handler in markup that got in somehow.
fn script_hash(page: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let script = page
        .split_once("<script>")
        .and_then(|(_, s)| s.split_once("</script>"))
        .map_or("", |(s, _)| s);
    let digest = sha2::Sha256::digest(script.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The page, with headers that keep it to itself: no script but its own (by hash), no framing by
/// other sites, no guessing of types.
async fn page_answer(mut stream: Stream, page: &str) -> Result<WsStream, Refused> {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\nContent-Security-Policy: default-src 'none'; script-src {}; style-src 'unsafe-inline'; connect-src 'self' ws: wss:; img-src data:; base-uri 'none'; form-action 'none'\r\nConnection: close\r\n\r\n",
        page.len(),
        script_hash(page)
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(page.as_bytes()).await;
    let _ = stream.shutdown().await;
    Err(Refused {
        status: Some(200),
        why: "the page".into(),
    })
}

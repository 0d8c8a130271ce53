//! The server's upgrade, run by the admission inside the handshake deadline: the request
//! head (at most [`crate::net::HEADER_LIMIT`], 431 beyond), the path (404 elsewhere), the
//! WebSocket headers (426 without them), then the 101. Chat's `http://` endpoint serves
//! its page at `/` from the same port.

use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

use super::{Options, WsStream};

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

/// What a request head gets: the upgrade, the page, or a refusal.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Switch to WebSocket: the 101 to send, and whether the client speaks
    /// [`super::HALF_CLOSE`].
    Upgrade {
        /// The whole 101 response head.
        reply: String,
        /// Both sides are sockit: an empty binary message is a half-close.
        half_close: bool,
    },
    /// Serve the page (`GET`), or only its head (`HEAD`: `body` false).
    Page {
        /// The page itself follows the head.
        body: bool,
    },
    /// Answer with this status, extra headers, and why (for the body and the log).
    Refuse(u16, Vec<(&'static str, &'static str)>, &'static str),
}

/// Decides what a complete request head gets at this endpoint (no I/O: the fuzz target
/// takes it bytes as they come).
pub fn decide(head: &[u8], up: &Upgrade) -> Decision {
    let refuse = |status, why| Decision::Refuse(status, Vec::new(), why);
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Err(httparse::Error::TooManyHeaders) => return refuse(431, "more than 64 headers"),
        _ => return refuse(400, "not an HTTP request"),
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
        if let (Some(_), "/") = (up.page, path) {
            return match method {
                "GET" => Decision::Page { body: true },
                "HEAD" => Decision::Page { body: false },
                _ => Decision::Refuse(
                    405,
                    vec![("Allow", "GET, HEAD")],
                    "the page answers GET and HEAD",
                ),
            };
        }
        return refuse(404, "no WebSocket at this path");
    }
    if method != "GET" {
        return Decision::Refuse(405, vec![("Allow", "GET")], "a WebSocket upgrade is a GET");
    }
    if !has_token("upgrade", "websocket") || !has_token("connection", "upgrade") {
        return Decision::Refuse(
            426,
            vec![("Upgrade", "websocket"), ("Connection", "Upgrade")],
            "this is a WebSocket endpoint: connect with a WebSocket client",
        );
    }
    if header("sec-websocket-version").as_deref().map(str::trim) != Some("13") {
        return Decision::Refuse(
            426,
            vec![("Sec-WebSocket-Version", "13")],
            "only WebSocket version 13 is spoken",
        );
    }
    let Some(key) = header("sec-websocket-key").filter(|k| !k.trim().is_empty()) else {
        return refuse(400, "no Sec-WebSocket-Key");
    };
    let mut reply = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
        derive_accept_key(key.trim().as_bytes())
    );
    // noVNC (and websockify's other clients) offer `binary`; it is what relay carries.
    if has_token("sec-websocket-protocol", "binary") {
        reply.push_str("Sec-WebSocket-Protocol: binary\r\n");
    }
    let half_close = header(super::HALF_CLOSE).is_some();
    if half_close {
        reply.push_str(&format!("{}: 1\r\n", super::HALF_CLOSE));
    }
    reply.push_str("\r\n");
    Decision::Upgrade { reply, half_close }
}

/// Takes a client through the upgrade. A request for the page is answered and counts as
/// refused (`status: Some(200)`): the connection is done.
///
/// # Errors
/// [`Refused`], after the answer went out.
pub async fn accept<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
    up: &Upgrade,
) -> Result<WsStream<S>, Refused> {
    let (head, rest) = match super::read_head(&mut stream).await {
        Ok(h) => h,
        Err(Some(too_big)) => return answer(stream, 431, too_big, &[]).await,
        Err(None) => return Err(quiet("closed before its request ended")),
    };
    let (reply, half_close) = match decide(&head, up) {
        Decision::Upgrade { reply, half_close } => (reply, half_close),
        Decision::Page { body } => {
            return page_answer(stream, up.page.unwrap_or_default(), body).await
        }
        Decision::Refuse(status, extra, why) => return answer(stream, status, why, &extra).await,
    };
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

async fn answer<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
    status: u16,
    why: &str,
    extra: &[(&str, &str)],
) -> Result<WsStream<S>, Refused> {
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
async fn page_answer<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
    page: &str,
    body: bool,
) -> Result<WsStream<S>, Refused> {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\nContent-Security-Policy: default-src 'none'; script-src {}; style-src 'unsafe-inline'; connect-src 'self' ws: wss:; img-src data:; base-uri 'none'; form-action 'none'\r\nConnection: close\r\n\r\n",
        page.len(),
        script_hash(page)
    );
    let _ = stream.write_all(head.as_bytes()).await;
    if body {
        let _ = stream.write_all(page.as_bytes()).await;
    }
    let _ = stream.shutdown().await;
    Err(Refused {
        status: Some(200),
        why: "the page".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(page: bool) -> Upgrade {
        Upgrade {
            path: "/ws".into(),
            page: page.then_some("<p>page</p>"),
            opts: super::super::Options::default(),
        }
    }

    fn status(d: &Decision) -> u16 {
        match d {
            Decision::Upgrade { .. } => 101,
            Decision::Page { .. } => 200,
            Decision::Refuse(s, _, _) => *s,
        }
    }

    const UPGRADE: &str = "GET /ws?x=1 HTTP/1.1\r\nHost: h\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: base64, binary\r\n\r\n";

    #[test]
    fn an_upgrade_at_the_path_is_accepted_with_rfc_6455s_key() {
        let Decision::Upgrade { reply, half_close } = decide(UPGRADE.as_bytes(), &up(false)) else {
            panic!("not upgraded");
        };
        assert!(reply.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(reply.contains("Sec-WebSocket-Protocol: binary\r\n"));
        assert!(!half_close);
    }

    #[test]
    fn everything_else_gets_its_status() {
        let u = up(true);
        assert_eq!(status(&decide(b"GET / HTTP/1.1\r\n\r\n", &u)), 200);
        assert_eq!(
            decide(b"HEAD / HTTP/1.1\r\n\r\n", &u),
            Decision::Page { body: false }
        );
        assert_eq!(status(&decide(b"POST / HTTP/1.1\r\n\r\n", &u)), 405);
        assert_eq!(status(&decide(b"GET / HTTP/1.1\r\n\r\n", &up(false))), 404);
        assert_eq!(status(&decide(b"GET /x HTTP/1.1\r\n\r\n", &u)), 404);
        assert_eq!(status(&decide(b"POST /ws HTTP/1.1\r\n\r\n", &u)), 405);
        assert_eq!(status(&decide(b"GET /ws HTTP/1.1\r\n\r\n", &u)), 426);
        let v12 = UPGRADE.replace("Version: 13", "Version: 12");
        assert_eq!(status(&decide(v12.as_bytes(), &u)), 426);
        let nokey = UPGRADE.replace("Sec-WebSocket-Key", "X-Key");
        assert_eq!(status(&decide(nokey.as_bytes(), &u)), 400);
        assert_eq!(status(&decide(b"\x16\x03\x01garbage\r\n\r\n", &u)), 400);
        let many: String = (0..70).map(|i| format!("X-{i}: y\r\n")).collect();
        let many = format!("GET /ws HTTP/1.1\r\n{many}\r\n");
        assert_eq!(status(&decide(many.as_bytes(), &u)), 431);
    }
}

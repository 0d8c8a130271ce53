//! The client's upgrade: a GET with the WebSocket headers (and `--header`, `--origin`) over
//! the connection the dial made (TCP or TLS, maybe through a proxy), then the 101 checked
//! (its accept key) before tungstenite takes the socket.

use std::net::IpAddr;

use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

use super::{Options, WsStream};
use crate::endpoint::{Host, WsAddr};
use crate::error::{Error, ErrorKind, Result};

/// Upgrades `stream` to a WebSocket at `addr`. The dial bounds it with the handshake
/// deadline.
///
/// # Errors
/// The server's answer when it is not a 101 (`answered 404 Not Found`), a 101 that does not
/// prove it read our key, or the failure, in words, naming the endpoint (`what`).
pub async fn upgrade<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
    addr: &WsAddr,
    opts: &Options,
    what: &str,
) -> Result<WsStream<S>> {
    let bad = |why: String| Error::new(ErrorKind::Ws, what, why);
    let host = match &addr.hp.host {
        // The zone is this machine's business, not the server's.
        Host::Scoped(ip, _) => format!("[{ip}]:{}", addr.hp.port),
        Host::Ip(IpAddr::V6(ip)) => format!("[{ip}]:{}", addr.hp.port),
        _ => addr.hp.to_string(),
    };
    let key = generate_key();
    let mut request = format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{}: 1\r\n",
        addr.path,
        super::HALF_CLOSE
    );
    if let Some(origin) = &opts.origin {
        request.push_str(&format!("Origin: {origin}\r\n"));
    }
    for (name, value) in &opts.headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| Error::io(what, &e))?;
    let (head, rest) = match super::read_head(&mut stream).await {
        Ok(h) => h,
        Err(Some(why)) => return Err(bad(format!("the server's answer has {why}"))),
        Err(None) => {
            return Err(bad(
                "the server closed the connection instead of answering the upgrade".into(),
            ))
        }
    };
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    if !matches!(response.parse(&head), Ok(httparse::Status::Complete(_))) {
        return Err(bad("the server's answer is not HTTP".into()));
    }
    let code = response.code.unwrap_or(0);
    if code != 101 {
        let hint = match code {
            404 => format!(" (is {} the right path?)", addr.path),
            _ => String::new(),
        };
        return Err(bad(format!(
            "the server answered {code} {} instead of switching to WebSocket{hint}",
            response.reason.unwrap_or("")
        )));
    }
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
    };
    if header("sec-websocket-accept") != Some(derive_accept_key(key.as_bytes())) {
        return Err(bad(
            "the server's 101 does not carry the accept key for our request: not a WebSocket server"
                .into(),
        ));
    }
    let half_close = header(super::HALF_CLOSE).is_some();
    tracing::debug!(half_close, "WebSocket upgrade done");
    let ws =
        WebSocketStream::from_partially_read(stream, rest, Role::Client, Some(opts.config())).await;
    Ok(WsStream::new(ws, opts, half_close))
}

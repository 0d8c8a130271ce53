//! The client's upgrade: a GET with the WebSocket headers (and `--header`, `--origin`) over
//! the connection the dial made (TCP or TLS, maybe through a proxy), then the 101.

use std::net::IpAddr;

use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::Error as WsError;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};

use super::{Options, WsStream};
use crate::endpoint::{Host, WsAddr};
use crate::error::{Error, ErrorKind, Result};
use crate::net::Stream;

/// Upgrades `stream` to a WebSocket at `addr` (`secure` for `wss://`, which only names the
/// scheme here: TLS is already in `stream`). Bounded by the dial's handshake deadline.
///
/// # Errors
/// The server's answer when it is not a 101 (`answered 404 Not Found`), or the failure, in
/// words, naming the endpoint.
pub async fn upgrade(
    stream: Stream,
    addr: &WsAddr,
    secure: bool,
    opts: &Options,
    what: &str,
) -> Result<WsStream> {
    let host = match &addr.hp.host {
        // The zone is this machine's business, not the server's.
        Host::Scoped(ip, _) => format!("[{ip}]:{}", addr.hp.port),
        Host::Ip(IpAddr::V6(ip)) => format!("[{ip}]:{}", addr.hp.port),
        _ => addr.hp.to_string(),
    };
    let scheme = if secure { "wss" } else { "ws" };
    let url = format!("{scheme}://{host}{}", addr.path);
    let bad = |why: String| Error::new(ErrorKind::Ws, what, why);
    let mut request = url
        .into_client_request()
        .map_err(|e| bad(format!("cannot make the upgrade request: {e}")))?;
    let headers = request.headers_mut();
    if let Some(origin) = &opts.origin {
        let v = HeaderValue::from_str(origin).map_err(|_| bad("bad --origin".into()))?;
        headers.insert("Origin", v);
    }
    headers.insert(super::HALF_CLOSE, HeaderValue::from_static("1"));
    for (name, value) in &opts.headers {
        let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) else {
            return Err(bad(format!("bad --header '{name}: {value}'")));
        };
        headers.append(n, v);
    }
    match tokio_tungstenite::client_async_with_config(request, stream, Some(opts.config())).await {
        Ok((ws, response)) => {
            let half_close = response.headers().contains_key(super::HALF_CLOSE);
            tracing::debug!(status = %response.status(), half_close, "WebSocket upgrade done");
            Ok(WsStream::new(ws, opts, half_close))
        }
        Err(WsError::Http(response)) => {
            let status = response.status();
            let hint = match status.as_u16() {
                404 => format!(" (is {} the right path?)", addr.path),
                _ => String::new(),
            };
            Err(bad(format!(
                "the server answered {} {} instead of switching to WebSocket{hint}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            )))
        }
        Err(WsError::Io(e)) => Err(Error::io(what, &e)),
        Err(e) => Err(bad(format!("the WebSocket upgrade failed: {e}"))),
    }
}

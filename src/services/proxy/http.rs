//! `serve http-proxy=ENDPOINT`: an HTTP CONNECT proxy (what curl `-p -x`, git, ssh's
//! ProxyCommand and browsers use for https). Other methods get 501; `--proxy-user` asks for
//! Basic credentials (407 with `Proxy-Authenticate`); the request head is limited to 16 KiB
//! (431) and must arrive within the handshake deadline (408).

use std::net::IpAddr;
use std::time::Duration;

use base64::Engine as _;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::targets::{self, Failure};
use super::Config;
use crate::net::proxy::head::{self, HeadError};
use crate::net::{Peer, Stream};

use crate::net::HEADER_LIMIT as HEAD_LIMIT;

/// One client: its CONNECT request, then the tunnel.
/// `listening_on` as for [`super::socks5::client`].
pub async fn client(
    stream: Stream,
    peer: Peer,
    cfg: &Config,
    deadline: Duration,
    listening_on: Option<IpAddr>,
) {
    let Stream::Tcp(mut tcp) = stream else {
        tracing::warn!(service = "http-proxy", %peer, "only plain TCP clients are served");
        return;
    };
    let listener = listening_on;
    let target = match tokio::time::timeout(deadline, request(&mut tcp, cfg)).await {
        Ok(Ok(t)) => t,
        Ok(Err((status, why))) => {
            tracing::info!(service = "http-proxy", %peer, %status, why, "refused");
            let _ = refuse(&mut tcp, status).await;
            return;
        }
        Err(_) => {
            tracing::info!(service = "http-proxy", %peer, "no request within the deadline (--handshake-timeout)");
            let _ = refuse(&mut tcp, "408 Request Timeout").await;
            return;
        }
    };
    let (host, port) = target;
    let upstream = match targets::connect(&host, port, &cfg.targets, listener).await {
        Ok(s) => s,
        Err(f) => {
            let status = match f {
                Failure::Denied => "403 Forbidden",
                Failure::TimedOut => "504 Gateway Timeout",
                _ => "502 Bad Gateway",
            };
            tracing::info!(service = "http-proxy", %peer, target = %format!("{host}:{port}"), why = %f.describe(), "refused");
            let _ = refuse(&mut tcp, status).await;
            return;
        }
    };
    if tcp
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .is_err()
    {
        return;
    }
    tracing::info!(service = "http-proxy", %peer, target = %format!("{host}:{port}"), "tunnel open");
    super::tunnel("http-proxy", Stream::Tcp(tcp), Stream::Tcp(upstream), &peer).await;
}

/// Reads and checks the request: the target, or the status to refuse with and why.
async fn request(
    tcp: &mut TcpStream,
    cfg: &Config,
) -> Result<(String, u16), (&'static str, &'static str)> {
    let head = head::read(tcp, HEAD_LIMIT).await.map_err(|e| match e {
        HeadError::TooLarge => ("431 Request Header Fields Too Large", "headers over 16 KiB"),
        HeadError::Io(_) | HeadError::Closed => {
            ("400 Bad Request", "the client closed mid-request")
        }
    })?;
    parse_request(&head, cfg)
}

/// A request head checked: the CONNECT target, or the status to refuse with and why.
///
/// # Errors
/// The status line and the reason: not HTTP/1 (400), not CONNECT (501), credentials missing
/// or wrong (407), a target that is not HOST:PORT (400).
pub fn parse_request(
    head: &[u8],
    cfg: &Config,
) -> Result<(String, u16), (&'static str, &'static str)> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
    let first = lines.next().unwrap_or_default();
    let mut parts = first.split(' ');
    let (method, target, version) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    if !version.starts_with("HTTP/1.") {
        return Err(("400 Bad Request", "not an HTTP/1 request"));
    }
    if !method.eq_ignore_ascii_case("CONNECT") {
        return Err(("501 Not Implemented", "a method other than CONNECT"));
    }
    if !cfg.users.is_empty() {
        let given = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("proxy-authorization"))
            .map(|(_, v)| v.trim().to_string());
        let ok = given
            .as_deref()
            .and_then(basic)
            .is_some_and(|(u, p)| cfg.users.iter().any(|c| c.user == u && c.pass == p));
        if !ok {
            return Err((
                "407 Proxy Authentication Required",
                "no or wrong credentials",
            ));
        }
    }
    authority(target).ok_or(("400 Bad Request", "the CONNECT target is not HOST:PORT"))
}

/// `Basic BASE64(user:pass)`.
fn basic(value: &str) -> Option<(String, String)> {
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// `host:port` or `[v6]:port`.
fn authority(target: &str) -> Option<(String, u16)> {
    let (host, port) = target.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let (host, bracketed) = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(h) => (h, true),
        None => (host, false),
    };
    // An IPv6 address goes in brackets; bare, `::1:22` could be read two ways.
    if host.is_empty() || (host.contains(':') && (!bracketed || host.parse::<IpAddr>().is_err())) {
        return None;
    }
    Some((host.to_string(), port))
}

async fn refuse(tcp: &mut TcpStream, status: &str) -> std::io::Result<()> {
    let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: 0\r\n");
    if status.starts_with("407") {
        out.push_str("Proxy-Authenticate: Basic realm=\"sockit\"\r\n");
    }
    out.push_str("\r\n");
    tcp.write_all(out.as_bytes()).await?;
    tcp.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_credentials_parse() {
        assert_eq!(
            authority("example.org:443"),
            Some(("example.org".into(), 443))
        );
        assert_eq!(authority("[::1]:22"), Some(("::1".into(), 22)));
        assert_eq!(authority("::1:22"), None);
        assert_eq!(authority("host"), None);
        assert_eq!(
            basic("Basic YWxpY2U6czNjcmV0"),
            Some(("alice".into(), "s3cret".into()))
        );
        assert_eq!(basic("Bearer x"), None);
    }
}

//! The client side of a proxy hop: over the connection the one dial made to the proxy, ask
//! it for the target, and hand back the tunnel as a plain TCP stream (so splice and TLS
//! work on it as on any other).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::{head, Kind, Proxy};
use crate::endpoint::{Host, HostPort};
use crate::error::{Error, ErrorKind, Result};
use crate::net::base::Local;
use crate::net::resolve::resolve;

/// HTTP headers of a CONNECT reply larger than this are refused (the SPEC's header limit).
const HEAD_LIMIT: usize = 16 * 1024;

/// Turns `tcp`, a connection the one dial made to the proxy, into a tunnel to `target`:
/// the negotiation, within `handshake_timeout`.
///
/// # Errors
/// The proxy's refusal in words (the SOCKS reply, the HTTP status line), a stalled
/// negotiation; never the credentials.
pub(crate) async fn through(
    proxy: &Proxy,
    target: &HostPort,
    tcp: TcpStream,
    local: &Local,
    handshake_timeout: Duration,
) -> Result<TcpStream> {
    let what = || format!("cannot connect to {target} through {proxy}");
    let negotiate = negotiate(proxy, target, tcp, local);
    match tokio::time::timeout(handshake_timeout, negotiate).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(why)) => Err(Error::new(ErrorKind::ProxyRefused, what(), why)),
        Err(_) => Err(Error::new(
            ErrorKind::ProxyTimedOut,
            what(),
            format!(
                "the proxy did not finish its negotiation within {} s (--handshake-timeout)",
                handshake_timeout.as_secs_f64()
            ),
        )),
    }
}

/// Asks the proxy for `target`; the error is the reason in words.
async fn negotiate(
    proxy: &Proxy,
    target: &HostPort,
    tcp: TcpStream,
    local: &Local,
) -> std::result::Result<TcpStream, String> {
    let name = proxy.kind.name();
    let refused = |e: tokio_socks::Error| match e {
        tokio_socks::Error::Io(e) => format!(
            "the {name} proxy closed the negotiation ({})",
            crate::error::describe_io(&e)
        ),
        tokio_socks::Error::PasswordAuthFailure(_) => {
            format!("the {name} proxy refused the user name and password")
        }
        tokio_socks::Error::NoAcceptableAuthMethods => format!(
            "the {name} proxy accepts none of our ways to log in (give USER:PASS@ in --proxy?)"
        ),
        other => format!(
            "the {name} proxy refused: {}",
            lower_first(&other.to_string())
        ),
    };
    match proxy.kind {
        Kind::Socks5 | Kind::Socks5h => {
            let s = match (&proxy.auth, socks_target(proxy.kind, target, local).await?) {
                (Some(a), t) => {
                    tokio_socks::tcp::Socks5Stream::connect_with_password_and_socket(
                        tcp, t, &a.user, &a.pass,
                    )
                    .await
                }
                (None, t) => tokio_socks::tcp::Socks5Stream::connect_with_socket(tcp, t).await,
            };
            s.map(|s| s.into_inner()).map_err(refused)
        }
        Kind::Socks4 | Kind::Socks4a => {
            let s = match (&proxy.auth, socks_target(proxy.kind, target, local).await?) {
                (Some(a), t) => {
                    tokio_socks::tcp::socks4::Socks4Stream::connect_with_userid_and_socket(
                        tcp, t, &a.user,
                    )
                    .await
                }
                (None, t) => {
                    tokio_socks::tcp::socks4::Socks4Stream::connect_with_socket(tcp, t).await
                }
            };
            s.map(|s| s.into_inner()).map_err(refused)
        }
        Kind::Http => http_connect(proxy, target, tcp).await,
    }
}

/// The target as the proxy is told it: a numeric address as an address; a name as a name
/// where the proxy resolves (socks5h, socks4a), resolved here otherwise.
async fn socks_target(
    kind: Kind,
    target: &HostPort,
    local: &Local,
) -> std::result::Result<tokio_socks::TargetAddr<'static>, String> {
    use tokio_socks::TargetAddr;
    let ip = match &target.host {
        Host::Ip(ip) => Some(*ip),
        Host::Scoped(ip, _) => Some(std::net::IpAddr::V6(*ip)),
        Host::Any => return Err("the target names no host".into()),
        Host::Name(_) => None,
    };
    if let Some(ip) = ip {
        if matches!(kind, Kind::Socks4 | Kind::Socks4a) && ip.is_ipv6() {
            return Err("SOCKS4 carries IPv4 targets only; use socks5://".into());
        }
        return Ok(TargetAddr::Ip(SocketAddr::new(ip, target.port)));
    }
    let Host::Name(name) = &target.host else {
        return Err("the target names no host".into());
    };
    if matches!(kind, Kind::Socks5h | Kind::Socks4a) {
        return Ok(TargetAddr::Domain(name.clone().into(), target.port));
    }
    let addrs = local.usable(resolve(target).await.map_err(|e| e.to_string())?);
    let addr = addrs
        .into_iter()
        .find(|a| kind == Kind::Socks5 || a.is_ipv4())
        .ok_or_else(|| format!("{name} has no address this proxy can carry"))?;
    Ok(TargetAddr::Ip(addr))
}

/// HTTP CONNECT: the request, then the reply's head read to its end and not one byte more.
async fn http_connect(
    proxy: &Proxy,
    target: &HostPort,
    mut tcp: TcpStream,
) -> std::result::Result<TcpStream, String> {
    let authority = target.to_string();
    let mut req = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(a) = &proxy.auth {
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", a.user, a.pass));
        req.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
    }
    req.push_str("\r\n");
    let closed = |e: io::Error| {
        format!(
            "the HTTP proxy closed the request ({})",
            crate::error::describe_io(&e)
        )
    };
    tcp.write_all(req.as_bytes()).await.map_err(closed)?;
    let head = head::read(&mut tcp, HEAD_LIMIT)
        .await
        .map_err(|e| match e {
            head::HeadError::Io(e) => closed(e),
            head::HeadError::TooLarge => {
                "the HTTP proxy's reply headers are larger than 16 KiB".into()
            }
            head::HeadError::Closed => {
                "the HTTP proxy closed the connection without an answer".into()
            }
        })?;
    reply(&head).map(|()| tcp)
}

/// An HTTP proxy's reply head: a 2xx opens the tunnel (whatever Content-Length says);
/// anything else is refused with its status line in words.
///
/// # Errors
/// The refusal in words.
pub fn reply(head: &[u8]) -> std::result::Result<(), String> {
    let text = String::from_utf8_lossy(head);
    let status_line = text.lines().next().unwrap_or_default().trim().to_string();
    let mut parts = status_line.splitn(3, ' ');
    let (version, code) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return Err(format!(
            "the HTTP proxy answered something other than HTTP: {}",
            shorten(&status_line)
        ));
    }
    if code.starts_with('2') {
        // A 2xx CONNECT reply has no body, whatever Content-Length says: the tunnel starts here.
        return Ok(());
    }
    let reason = status_line.split_once(' ').map_or("", |(_, r)| r);
    Err(format!("the HTTP proxy answered {}", shorten(reason)))
}

fn shorten(s: &str) -> String {
    let s: String = s.chars().filter(|c| !c.is_control()).take(120).collect();
    s
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

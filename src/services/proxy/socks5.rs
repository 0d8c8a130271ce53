//! `serve socks5=ENDPOINT`: a SOCKS5 server (RFC 1928) with CONNECT and UDP ASSOCIATE, no
//! authentication or user name and password (RFC 1929); SOCKS4 and 4a CONNECT too (curl
//! `--socks4a`), while no `--proxy-user` is asked (SOCKS4 has no password). Negotiation runs
//! under the handshake deadline; a CONNECT tunnel then goes the way `relay` goes (splice).

use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UdpSocket;

use super::targets::{self, Failure};
use super::Config;
use crate::net::{Peer, Stream};

const VERSION: u8 = 5;
const NO_AUTH: u8 = 0x00;
const USER_PASS: u8 = 0x02;
const NO_METHOD: u8 = 0xff;

/// Reply codes (RFC 1928 section 6).
mod reply {
    pub const OK: u8 = 0;
    pub const FAILURE: u8 = 1;
    pub const NOT_ALLOWED: u8 = 2;
    pub const NET_UNREACHABLE: u8 = 3;
    pub const HOST_UNREACHABLE: u8 = 4;
    pub const REFUSED: u8 = 5;
    pub const COMMAND_NOT_SUPPORTED: u8 = 7;
    pub const ADDRESS_NOT_SUPPORTED: u8 = 8;
}

/// Targets a UDP association remembers answering for (the replies it lets back).
const UDP_TARGETS: usize = 1024;

/// What the client asked for.
enum Request {
    Connect(String, u16, Version),
    Associate(Option<SocketAddr>),
}

/// Which protocol the client speaks: the replies differ.
#[derive(Clone, Copy)]
enum Version {
    V5,
    V4,
}

/// One SOCKS5 client: negotiation under `deadline`, then its tunnel or its association.
///
/// `listening_on` is the address the proxy is bound to (its target rules' default depends on
/// whether that is loopback).
pub async fn client(
    mut stream: Stream,
    peer: Peer,
    cfg: &Config,
    deadline: Duration,
    listening_on: Option<IpAddr>,
) {
    let listener = listening_on;
    let here = stream.local_addr().map(|a| a.ip());
    let request = match tokio::time::timeout(deadline, negotiate(&mut stream, cfg)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::info!(service = "socks5", %peer, error = %crate::error::describe_io(&e), "negotiation failed");
            return;
        }
        Err(_) => {
            tracing::info!(service = "socks5", %peer, "negotiation did not finish in time (--handshake-timeout)");
            return;
        }
    };
    match request {
        Request::Connect(host, port, version) => {
            let upstream = match targets::connect(&host, port, &cfg.targets, listener).await {
                Ok(s) => s,
                Err(f) => {
                    tracing::info!(service = "socks5", %peer, target = %format!("{host}:{port}"), why = %f.describe(), "refused");
                    let _ = match version {
                        Version::V5 => answer(&mut stream, code(&f), None).await,
                        Version::V4 => answer4(&mut stream, false).await,
                    };
                    return;
                }
            };
            let bound = upstream.local_addr().ok();
            let sent = match version {
                Version::V5 => answer(&mut stream, reply::OK, bound).await,
                Version::V4 => answer4(&mut stream, true).await,
            };
            if sent.is_err() {
                return;
            }
            tracing::info!(service = "socks5", %peer, target = %format!("{host}:{port}"), "tunnel open");
            super::tunnel("socks5", stream, Stream::Tcp(upstream), &peer).await;
        }
        Request::Associate(from) => associate(stream, peer, from, (here, listener), cfg).await,
    }
}

/// What negotiation `input` (a client's first bytes) comes to, in words: for fuzzing and
/// tests, which drive the parser without a socket.
///
/// # Errors
/// The reason the negotiation is refused.
pub async fn negotiation(input: &[u8], cfg: &Config) -> io::Result<String> {
    let mut s = tokio::io::join(input, tokio::io::sink());
    Ok(match negotiate(&mut s, cfg).await? {
        Request::Connect(host, port, Version::V5) => format!("CONNECT {host}:{port}"),
        Request::Connect(host, port, Version::V4) => format!("SOCKS4 CONNECT {host}:{port}"),
        Request::Associate(from) => format!("UDP ASSOCIATE from {from:?}"),
    })
}

/// A client's UDP datagram, split into its target and its data (`None` when malformed).
pub fn udp_request(d: &[u8]) -> Option<((String, u16), &[u8])> {
    parse_udp(d)
}

fn code(f: &Failure) -> u8 {
    match f {
        Failure::Denied => reply::NOT_ALLOWED,
        Failure::NotResolved | Failure::TimedOut => reply::HOST_UNREACHABLE,
        Failure::Unreachable => reply::NET_UNREACHABLE,
        Failure::Refused => reply::REFUSED,
        Failure::Other(_) => reply::FAILURE,
    }
}

/// Method selection, authentication, and the request.
async fn negotiate<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    cfg: &Config,
) -> io::Result<Request> {
    let mut hello = [0u8; 2];
    s.read_exact(&mut hello).await?;
    if hello[0] == 4 {
        return negotiate4(s, hello[1], cfg).await;
    }
    if hello[0] != VERSION {
        return Err(protocol("not SOCKS (the version byte is neither 5 nor 4)"));
    }
    let mut methods = vec![0u8; usize::from(hello[1])];
    s.read_exact(&mut methods).await?;
    let users = &cfg.users;
    let want = if users.is_empty() { NO_AUTH } else { USER_PASS };
    if !methods.contains(&want) {
        s.write_all(&[VERSION, NO_METHOD]).await?;
        return Err(protocol(if want == USER_PASS {
            "the client offers no user name and password, and --proxy-user asks for one"
        } else {
            "the client offers no method without authentication"
        }));
    }
    s.write_all(&[VERSION, want]).await?;
    if want == USER_PASS {
        let mut ver_len = [0u8; 2];
        s.read_exact(&mut ver_len).await?;
        let mut user = vec![0u8; usize::from(ver_len[1])];
        s.read_exact(&mut user).await?;
        let mut plen = [0u8; 1];
        s.read_exact(&mut plen).await?;
        let mut pass = vec![0u8; usize::from(plen[0])];
        s.read_exact(&mut pass).await?;
        let ok = users
            .iter()
            .any(|c| c.user.as_bytes() == user.as_slice() && c.pass.as_bytes() == pass.as_slice());
        s.write_all(&[1, if ok { 0 } else { 1 }]).await?;
        if !ok {
            return Err(protocol("wrong user name or password"));
        }
    }
    let mut head = [0u8; 4];
    s.read_exact(&mut head).await?;
    if head[0] != VERSION {
        return Err(protocol("the request's version byte is not 5"));
    }
    let (host, port) = match read_address(s, head[3]).await {
        Ok(a) => a,
        Err(e) => {
            let _ = answer(s, reply::ADDRESS_NOT_SUPPORTED, None).await;
            return Err(e);
        }
    };
    match head[1] {
        1 => Ok(Request::Connect(host, port, Version::V5)),
        3 => {
            let ip: Option<IpAddr> = host.parse().ok();
            let from = ip
                .filter(|ip| !ip.is_unspecified())
                .map(|ip| SocketAddr::new(ip, port));
            Ok(Request::Associate(from))
        }
        _ => {
            answer(s, reply::COMMAND_NOT_SUPPORTED, None).await?;
            Err(protocol("a command other than CONNECT and UDP ASSOCIATE"))
        }
    }
}

/// A SOCKS4 or 4a request (after its version byte and command): PORT, IP, USERID, and with
/// IP 0.0.0.x a name (4a).
async fn negotiate4<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    cmd: u8,
    cfg: &Config,
) -> io::Result<Request> {
    let mut fixed = [0u8; 6];
    s.read_exact(&mut fixed).await?;
    let port = u16::from_be_bytes([fixed[0], fixed[1]]);
    let ip = Ipv4Addr::new(fixed[2], fixed[3], fixed[4], fixed[5]);
    let _user = read_nul_terminated(s).await?;
    let host = if fixed[2..5] == [0, 0, 0] && fixed[5] != 0 {
        String::from_utf8(read_nul_terminated(s).await?)
            .map_err(|_| protocol("the target's name is not text"))?
    } else {
        ip.to_string()
    };
    if !cfg.users.is_empty() {
        answer4(s, false).await?;
        return Err(protocol(
            "SOCKS4 carries no password, and --proxy-user asks for one",
        ));
    }
    if cmd != 1 {
        answer4(s, false).await?;
        return Err(protocol("a SOCKS4 command other than CONNECT"));
    }
    Ok(Request::Connect(host, port, Version::V4))
}

async fn read_nul_terminated<S: AsyncRead + Unpin>(s: &mut S) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await?;
        if b[0] == 0 {
            return Ok(out);
        }
        if out.len() >= 255 {
            return Err(protocol("a SOCKS4 field longer than 255 bytes"));
        }
        out.push(b[0]);
    }
}

/// A SOCKS4 reply: granted (0x5A) or rejected (0x5B).
async fn answer4<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, granted: bool) -> io::Result<()> {
    s.write_all(&[0, if granted { 0x5a } else { 0x5b }, 0, 0, 0, 0, 0, 0])
        .await?;
    s.flush().await
}

/// DST.ADDR and DST.PORT of a request; a name stays a name (resolved under the rules).
async fn read_address<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    atyp: u8,
) -> io::Result<(String, u16)> {
    let host = match atyp {
        1 => {
            let mut a = [0u8; 4];
            s.read_exact(&mut a).await?;
            Ipv4Addr::from(a).to_string()
        }
        4 => {
            let mut a = [0u8; 16];
            s.read_exact(&mut a).await?;
            Ipv6Addr::from(a).to_string()
        }
        3 => {
            let mut len = [0u8; 1];
            s.read_exact(&mut len).await?;
            let mut name = vec![0u8; usize::from(len[0])];
            s.read_exact(&mut name).await?;
            String::from_utf8(name).map_err(|_| protocol("the target's name is not text"))?
        }
        _ => return Err(protocol("an unknown address type")),
    };
    let mut port = [0u8; 2];
    s.read_exact(&mut port).await?;
    Ok((host, u16::from_be_bytes(port)))
}

/// A reply with `code` and the bound address (zeros when there is none).
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    code: u8,
    bound: Option<SocketAddr>,
) -> io::Result<()> {
    let mut out = vec![VERSION, code, 0];
    put_address(
        &mut out,
        bound.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
    );
    s.write_all(&out).await?;
    s.flush().await
}

fn put_address(out: &mut Vec<u8>, a: SocketAddr) {
    match a.ip().to_canonical() {
        IpAddr::V4(v4) => {
            out.push(1);
            out.extend_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            out.push(4);
            out.extend_from_slice(&v6.octets());
        }
    }
    out.extend_from_slice(&a.port().to_be_bytes());
}

fn protocol(why: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

/// UDP ASSOCIATE: a socket of its own, relaying for this client only (from the address it
/// named, or from its TCP peer's address), and only answers from targets it wrote to; it
/// ends with the TCP connection.
async fn associate(
    mut stream: Stream,
    peer: Peer,
    from: Option<SocketAddr>,
    (here, listener): (Option<IpAddr>, Option<IpAddr>),
    cfg: &Config,
) {
    // The relay is reached where the client reached us.
    let bind_ip = here.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let sock = match UdpSocket::bind(SocketAddr::new(bind_ip, 0)).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(service = "socks5", %peer, error = %crate::error::describe_io(&e), "cannot open a UDP relay");
            let _ = answer(&mut stream, reply::FAILURE, None).await;
            return;
        }
    };
    let bound = sock.local_addr().ok();
    if answer(&mut stream, reply::OK, bound).await.is_err() {
        return;
    }
    let client_ip = from.map(|a| a.ip()).or_else(|| peer.ip());
    let mut client: Option<SocketAddr> = from.filter(|a| a.port() != 0);
    let mut sent_to: HashSet<SocketAddr> = HashSet::new();
    tracing::info!(service = "socks5", %peer, relay = ?bound, "UDP association open");
    let mut buf = vec![0u8; crate::net::MAX_DATAGRAM];
    let mut tcp_byte = [0u8; 64];
    loop {
        tokio::select! {
            r = stream.read(&mut tcp_byte) => {
                // The association lives as long as its TCP connection (anything sent on it is
                // ignored).
                if matches!(r, Ok(0) | Err(_)) {
                    break;
                }
            }
            r = sock.recv_from(&mut buf) => {
                let Ok((n, src)) = r else { continue };
                let src = SocketAddr::new(src.ip().to_canonical(), src.port());
                let from_client = match client {
                    Some(c) => c == src,
                    None => Some(src.ip()) == client_ip.map(|i| i.to_canonical()),
                };
                if from_client {
                    client.get_or_insert(src);
                    let Some((target, data)) = parse_udp(&buf[..n]) else { continue };
                    let Ok(addrs) = targets::resolve(&target.0, target.1, &cfg.targets, listener).await else {
                        tracing::debug!(service = "socks5", %peer, "UDP datagram to a refused target dropped");
                        continue;
                    };
                    let to = addrs[0];
                    if sent_to.len() < UDP_TARGETS || sent_to.contains(&to) {
                        sent_to.insert(to);
                        let _ = sock.send_to(data, to).await;
                    }
                } else if let (Some(c), true) = (client, sent_to.contains(&src)) {
                    let mut out = vec![0, 0, 0];
                    put_address(&mut out, src);
                    out.extend_from_slice(&buf[..n]);
                    let _ = sock.send_to(&out, c).await;
                }
            }
        }
    }
    tracing::info!(service = "socks5", %peer, "UDP association closed");
}

/// A client's UDP request: RSV RSV FRAG ATYP DST.ADDR DST.PORT DATA (fragments dropped).
fn parse_udp(d: &[u8]) -> Option<((String, u16), &[u8])> {
    if d.len() < 4 || d[2] != 0 {
        return None;
    }
    let (host, rest) = match d[3] {
        1 if d.len() >= 10 => (Ipv4Addr::new(d[4], d[5], d[6], d[7]).to_string(), &d[8..]),
        4 if d.len() >= 22 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&d[4..20]);
            (Ipv6Addr::from(a).to_string(), &d[20..])
        }
        3 if d.len() >= 5 => {
            let len = usize::from(d[4]);
            let name = d.get(5..5 + len)?;
            (String::from_utf8(name.to_vec()).ok()?, &d[5 + len..])
        }
        _ => return None,
    };
    let port = u16::from_be_bytes([*rest.first()?, *rest.get(1)?]);
    Some(((host, port), &rest[2..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn negotiations_parse_without_a_socket() {
        let cfg = Config::default();
        let v5 = [5, 1, 0, 5, 1, 0, 1, 1, 2, 3, 4, 0, 80];
        assert_eq!(negotiation(&v5, &cfg).await.unwrap(), "CONNECT 1.2.3.4:80");
        let v4a = [4, 1, 0, 80, 0, 0, 0, 1, b'u', 0, b'h', b'o', b's', b't', 0];
        assert_eq!(
            negotiation(&v4a, &cfg).await.unwrap(),
            "SOCKS4 CONNECT host:80"
        );
        // Cut short, or another version: refused, never a panic.
        assert!(negotiation(&v5[..7], &cfg).await.is_err());
        assert!(negotiation(b"GET / HTTP/1.1\r\n", &cfg).await.is_err());
    }

    #[test]
    fn udp_requests_parse() {
        let d = [0, 0, 0, 1, 127, 0, 0, 1, 0x1f, 0x90, b'h', b'i'];
        let ((h, p), data) = parse_udp(&d).unwrap();
        assert_eq!((h.as_str(), p, data), ("127.0.0.1", 8080, &b"hi"[..]));
        let d = [0, 0, 0, 3, 4, b'h', b'o', b's', b't', 0, 53, b'x'];
        let ((h, p), data) = parse_udp(&d).unwrap();
        assert_eq!((h.as_str(), p, data), ("host", 53, &b"x"[..]));
        // Fragments and truncated headers are dropped.
        assert!(parse_udp(&[0, 0, 1, 1, 127, 0, 0, 1, 0, 1]).is_none());
        assert!(parse_udp(&[0, 0, 0, 3, 9, b'a']).is_none());
    }
}

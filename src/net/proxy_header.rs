//! HAProxy's PROXY protocol (v1 text, v2 binary): the header a proxy puts before a
//! connection's first byte to say whose connection it is. [`parse`] is a pure function of
//! the bytes so far (fuzzed like the SOCKS and HTTP parsers); [`read`] takes a header off a
//! TCP connection without taking a byte more (it peeks, then reads exactly the header), and
//! [`encode`] makes one for `relay --send-proxy`.
//!
//! The two versions are told apart by their signatures; nothing is guessed: bytes that are
//! neither are not a header, and such a connection is refused by the caller.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::AsyncReadExt;

/// v2's signature: twelve bytes no text protocol starts with.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// v1's start.
const V1_PREFIX: &[u8] = b"PROXY ";
/// The longest v1 line, CRLF included (the spec's 107).
const V1_MAX: usize = 107;
/// The longest v2 header: the fixed 16 bytes and the largest length field.
pub const V2_MAX: usize = 16 + u16::MAX as usize;

/// Which version to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// The text line, `PROXY TCP4 ...`.
    V1,
    /// The binary header.
    V2,
}

impl std::str::FromStr for Version {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "v1" | "1" => Ok(Version::V1),
            "v2" | "2" => Ok(Version::V2),
            _ => Err(format!(
                "'{s}' is not a PROXY protocol version; give v1 or v2"
            )),
        }
    }
}

/// A complete header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Its length in bytes: the stream's own bytes start after it.
    pub len: usize,
    /// The client's address, and the address it reached; `None` for a proxy's own
    /// connection (v2 LOCAL, v1 UNKNOWN) or an address family other than IP.
    pub addrs: Option<(SocketAddr, SocketAddr)>,
}

/// What the bytes so far are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parse {
    /// A header, complete.
    Done(Header),
    /// The start of a header: more bytes are needed.
    Incomplete,
    /// Not a header (why, in words).
    Invalid(&'static str),
}

/// Reads `buf` (the first bytes of a connection) as a PROXY protocol header.
pub fn parse(buf: &[u8]) -> Parse {
    let n = buf.len().min(V2_SIGNATURE.len());
    if buf[..n] == V2_SIGNATURE[..n] {
        return if n < V2_SIGNATURE.len() {
            Parse::Incomplete
        } else {
            parse_v2(buf)
        };
    }
    let n = buf.len().min(V1_PREFIX.len());
    if buf[..n] == V1_PREFIX[..n] {
        return if n < V1_PREFIX.len() {
            Parse::Incomplete
        } else {
            parse_v1(buf)
        };
    }
    Parse::Invalid("the connection does not start with a PROXY protocol header")
}

fn parse_v1(buf: &[u8]) -> Parse {
    let Some(end) = buf.windows(2).take(V1_MAX - 1).position(|w| w == b"\r\n") else {
        return if buf.len() >= V1_MAX {
            Parse::Invalid("a PROXY v1 line longer than 107 bytes")
        } else {
            Parse::Incomplete
        };
    };
    let len = end + 2;
    let Ok(line) = std::str::from_utf8(&buf[V1_PREFIX.len()..end]) else {
        return Parse::Invalid("a PROXY v1 line that is not text");
    };
    let words: Vec<&str> = line.split(' ').collect();
    match words.as_slice() {
        ["UNKNOWN", ..] => Parse::Done(Header { len, addrs: None }),
        [family @ ("TCP4" | "TCP6"), src, dst, sport, dport] => {
            let v6 = *family == "TCP6";
            let ip = |s: &str| -> Option<IpAddr> {
                let ip: IpAddr = s.parse().ok()?;
                (ip.is_ipv6() == v6).then_some(ip)
            };
            let port = |s: &str| -> Option<u16> {
                // No sign, no leading zeros (the spec's form), 0 to 65535.
                if s.is_empty()
                    || (s.len() > 1 && s.starts_with('0'))
                    || !s.bytes().all(|b| b.is_ascii_digit())
                {
                    return None;
                }
                s.parse().ok()
            };
            match (ip(src), ip(dst), port(sport), port(dport)) {
                (Some(s), Some(d), Some(sp), Some(dp)) => Parse::Done(Header {
                    len,
                    addrs: Some((SocketAddr::new(s, sp), SocketAddr::new(d, dp))),
                }),
                _ => Parse::Invalid("a PROXY v1 line with a malformed address or port"),
            }
        }
        _ => Parse::Invalid("a PROXY v1 line of an unknown form"),
    }
}

fn parse_v2(buf: &[u8]) -> Parse {
    if buf.len() < 16 {
        return Parse::Incomplete;
    }
    let (version, command) = (buf[12] >> 4, buf[12] & 0x0f);
    if version != 2 {
        return Parse::Invalid("a PROXY v2 header of another version");
    }
    let len = 16 + usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if buf.len() < len {
        return Parse::Incomplete;
    }
    let body = &buf[16..len];
    let addrs = match (command, buf[13]) {
        // LOCAL: the proxy's own connection (a health check): no client address.
        (0, _) => None,
        // PROXY over TCP (or UDP) and IPv4.
        (1, 0x11 | 0x12) if body.len() >= 12 => {
            let ip = |o: usize| {
                IpAddr::V4(Ipv4Addr::new(
                    body[o],
                    body[o + 1],
                    body[o + 2],
                    body[o + 3],
                ))
            };
            let port = |o: usize| u16::from_be_bytes([body[o], body[o + 1]]);
            Some((
                SocketAddr::new(ip(0), port(8)),
                SocketAddr::new(ip(4), port(10)),
            ))
        }
        (1, 0x21 | 0x22) if body.len() >= 36 => {
            let ip = |o: usize| {
                let mut a = [0u8; 16];
                a.copy_from_slice(&body[o..o + 16]);
                IpAddr::V6(Ipv6Addr::from(a))
            };
            let port = |o: usize| u16::from_be_bytes([body[o], body[o + 1]]);
            Some((
                SocketAddr::new(ip(0), port(32)),
                SocketAddr::new(ip(16), port(34)),
            ))
        }
        // UNSPEC or UNIX: a connection, but no IP address to take.
        (1, 0x00 | 0x31 | 0x32) => None,
        (1, 0x11 | 0x12 | 0x21 | 0x22) => {
            return Parse::Invalid("a PROXY v2 header too short for its addresses")
        }
        (1, _) => return Parse::Invalid("a PROXY v2 header of an unknown address family"),
        _ => return Parse::Invalid("a PROXY v2 header with an unknown command"),
    };
    Parse::Done(Header { len, addrs })
}

/// A header saying that `client` reached `reached`. Addresses of different families are
/// both written as IPv6 (an IPv4 one mapped), as a dual-stack socket sees them.
pub fn encode(version: Version, client: SocketAddr, reached: SocketAddr) -> Vec<u8> {
    let (mut src, mut dst) = (canonical(client), canonical(reached));
    if src.is_ipv4() != dst.is_ipv4() {
        src = mapped(src);
        dst = mapped(dst);
    }
    match version {
        Version::V1 => {
            let family = if src.is_ipv4() { "TCP4" } else { "TCP6" };
            format!(
                "PROXY {family} {} {} {} {}\r\n",
                src.ip(),
                dst.ip(),
                src.port(),
                dst.port()
            )
            .into_bytes()
        }
        Version::V2 => {
            let mut out = V2_SIGNATURE.to_vec();
            out.push(0x21); // version 2, PROXY
            match (src.ip(), dst.ip()) {
                (IpAddr::V4(s), IpAddr::V4(d)) => {
                    out.push(0x11);
                    out.extend_from_slice(&12u16.to_be_bytes());
                    out.extend_from_slice(&s.octets());
                    out.extend_from_slice(&d.octets());
                }
                (s, d) => {
                    out.push(0x21);
                    out.extend_from_slice(&36u16.to_be_bytes());
                    out.extend_from_slice(&v6(s).octets());
                    out.extend_from_slice(&v6(d).octets());
                }
            }
            out.extend_from_slice(&src.port().to_be_bytes());
            out.extend_from_slice(&dst.port().to_be_bytes());
            out
        }
    }
}

/// The header for a connection whose client has no IP address (a Unix socket): "not a
/// client's connection", which receivers take as the proxy's own.
pub fn encode_unknown(version: Version) -> Vec<u8> {
    match version {
        Version::V1 => b"PROXY UNKNOWN\r\n".to_vec(),
        Version::V2 => {
            let mut out = V2_SIGNATURE.to_vec();
            out.extend_from_slice(&[0x20, 0x00, 0x00, 0x00]);
            out
        }
    }
}

fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

fn v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

fn mapped(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(IpAddr::V6(v6(a.ip())), a.port())
}

/// Takes the header off `stream` within `deadline`, reading exactly its bytes and not one
/// more, so what follows is the stream's: 8 bytes tell the version; v2 says its length at
/// 16; a v1 line is read to its CRLF. A header split across packets is waited for.
///
/// # Errors
/// Not a header (with why), a connection closed or silent before the header was whole.
pub async fn read<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    deadline: Duration,
) -> io::Result<Header> {
    let work = async {
        let mut buf: Vec<u8> = Vec::with_capacity(64);
        let mut want = 8;
        loop {
            // Exactly up to `want`: never a byte of the stream behind the header.
            while buf.len() < want {
                let have = buf.len();
                buf.resize(want, 0);
                let n = stream.read(&mut buf[have..]).await?;
                buf.truncate(have + n);
                if let Parse::Invalid(why) = parse(&buf) {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, why));
                }
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "closed before its PROXY protocol header was complete",
                    ));
                }
            }
            want = match parse(&buf) {
                Parse::Done(h) => return Ok(h),
                Parse::Invalid(why) => return Err(io::Error::new(io::ErrorKind::InvalidData, why)),
                // v2: the fixed part, then the length it gives.
                Parse::Incomplete if buf.starts_with(V2_SIGNATURE) && buf.len() >= 16 => {
                    16 + usize::from(u16::from_be_bytes([buf[14], buf[15]]))
                }
                Parse::Incomplete if buf.starts_with(&V2_SIGNATURE[..8]) => 16,
                // v1: up to the CRLF, a byte at a time.
                Parse::Incomplete => buf.len() + 1,
            };
        }
    };
    tokio::time::timeout(deadline, work)
        .await
        .unwrap_or_else(|_| {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no complete PROXY protocol header within the deadline (--handshake-timeout)",
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(h: &Parse) -> Option<(SocketAddr, SocketAddr)> {
        match h {
            Parse::Done(h) => h.addrs,
            other => panic!("not a header: {other:?}"),
        }
    }

    #[test]
    fn v1_lines_of_every_form() {
        let line = b"PROXY TCP4 192.0.2.7 198.51.100.1 51234 8898\r\nhello";
        let p = parse(line);
        assert_eq!(
            addrs(&p),
            Some((
                "192.0.2.7:51234".parse().unwrap(),
                "198.51.100.1:8898".parse().unwrap()
            ))
        );
        assert!(matches!(p, Parse::Done(Header { len: 46, .. })));
        let p = parse(b"PROXY TCP6 2001:db8::1 ::1 1 65535\r\n");
        assert_eq!(addrs(&p).unwrap().0, "[2001:db8::1]:1".parse().unwrap());
        assert_eq!(addrs(&parse(b"PROXY UNKNOWN\r\n")), None);
        assert_eq!(parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2"), Parse::Incomplete);
        assert_eq!(parse(b"PRO"), Parse::Incomplete);
        for bad in [
            &b"PROXY TCP4 1.2.3.4 ::1 1 2\r\n"[..],
            b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",
            b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
            b"GET / HTTP/1.1\r\n",
            b"hello\n",
        ] {
            assert!(
                matches!(parse(bad), Parse::Invalid(_)),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let long = [b"PROXY TCP4 ".as_slice(), &[b'1'; 120]].concat();
        assert!(matches!(parse(&long), Parse::Invalid(_)));
    }

    #[test]
    fn v2_headers_round_trip_and_local_has_no_address() {
        for (c, r) in [
            ("192.0.2.7:51234", "198.51.100.1:8898"),
            ("[2001:db8::7]:1", "[::1]:2"),
            ("192.0.2.7:3", "[::1]:4"),
        ] {
            let (c, r): (SocketAddr, SocketAddr) = (c.parse().unwrap(), r.parse().unwrap());
            for v in [Version::V1, Version::V2] {
                let mut bytes = encode(v, c, r);
                let len = bytes.len();
                bytes.extend_from_slice(b"after");
                let got = addrs(&parse(&bytes)).unwrap();
                assert_eq!(got.0.port(), c.port());
                assert_eq!(got.0.ip().to_canonical(), c.ip().to_canonical());
                assert_eq!(got.1.ip().to_canonical(), r.ip().to_canonical());
                assert!(matches!(parse(&bytes), Parse::Done(Header { len: l, .. }) if l == len));
                // Every prefix is the start of a header, never a verdict.
                for cut in 0..len {
                    assert_eq!(
                        parse(&bytes[..cut]),
                        Parse::Incomplete,
                        "{v:?} cut at {cut}"
                    );
                }
            }
        }
        assert_eq!(addrs(&parse(&encode_unknown(Version::V2))), None);
        assert_eq!(addrs(&parse(&encode_unknown(Version::V1))), None);
        let mut bad = encode(
            Version::V2,
            "1.2.3.4:1".parse().unwrap(),
            "5.6.7.8:2".parse().unwrap(),
        );
        bad[12] = 0x31;
        assert!(matches!(parse(&bad), Parse::Invalid(_)));
    }

    #[tokio::test]
    async fn read_takes_the_header_and_not_a_byte_more() {
        use tokio::io::AsyncWriteExt;
        for v in [Version::V1, Version::V2] {
            let (mut a, mut b) = tokio::io::duplex(64);
            let header = encode(
                v,
                "192.0.2.7:51234".parse().unwrap(),
                "127.0.0.1:80".parse().unwrap(),
            );
            let writer = tokio::spawn(async move {
                // Split across writes, with the stream's bytes right behind.
                for piece in header.chunks(5) {
                    a.write_all(piece).await.unwrap();
                    tokio::task::yield_now().await;
                }
                a.write_all(b"GET /").await.unwrap();
            });
            let h = read(&mut b, Duration::from_secs(5)).await.unwrap();
            assert_eq!(h.addrs.unwrap().0, "192.0.2.7:51234".parse().unwrap());
            let mut rest = [0u8; 5];
            b.read_exact(&mut rest).await.unwrap();
            assert_eq!(&rest, b"GET /");
            writer.await.unwrap();
        }
        let (mut a, mut b) = tokio::io::duplex(64);
        tokio::io::AsyncWriteExt::write_all(&mut a, b"SSH-2.0-x\r\n")
            .await
            .unwrap();
        let e = read(&mut b, Duration::from_secs(5)).await.unwrap_err();
        assert!(
            e.to_string()
                .contains("does not start with a PROXY protocol header"),
            "{e}"
        );
    }
}

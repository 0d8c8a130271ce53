//! The control protocol's frames: what the gateway and `expose` say to each other, as pure
//! functions of bytes (fuzzed, like the SOCKS, HTTP and PROXY protocol parsers).
//!
//! A frame is a 4-byte big-endian length, then that many bytes: a type byte and its body.
//! The first frame of every connection names the protocol and its version (`Hello` opens a
//! control connection, `Join` a data connection), so a stray client (a browser, a scanner)
//! or a future version is told apart at once (`Offer` and `Join` open data connections, the
//! lanes of [`super::lane`]). docs/tunnels.md has the whole exchange.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Both sides send a ping this often on the control connection.
pub const PING_EVERY: Duration = Duration::from_secs(5);
/// A side that has heard nothing for this long takes the other for dead.
pub const DEAD_AFTER: Duration = Duration::from_secs(15);
/// The version of the control protocol this build speaks.
pub const VERSION: u8 = 1;
/// What the first frame of a connection starts with.
const MAGIC: &[u8; 6] = b"SOCKIT";
/// The largest frame either side accepts: every frame is small (a refusal's sentence is
/// the longest), so a peer cannot make the other hold much.
pub const MAX_FRAME: usize = 4 * 1024;
/// Length of the gateway's nonce and of the HMAC-SHA256 proof.
pub const NONCE_LEN: usize = 32;

/// What a client's session and its visitors are known by: issued by the gateway at
/// registration, presented by each data connection and by a reconnecting client.
pub type Token = [u8; 16];

/// What kind of public port a client asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A TCP port; each visitor gets its own data connection.
    Tcp,
    /// A UDP port; each visitor address gets its own data connection, datagrams framed.
    Udp,
}

impl Kind {
    /// The scheme of its public address.
    pub fn scheme(self) -> &'static str {
        match self {
            Kind::Tcp => "tcp",
            Kind::Udp => "udp",
        }
    }
}

/// One message of the control protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Client, first on a control connection.
    Hello {
        /// The client's protocol version.
        version: u8,
    },
    /// Gateway: prove the secret over this nonce.
    Challenge {
        /// Fresh random bytes for this connection.
        nonce: [u8; NONCE_LEN],
    },
    /// Client: the proof, and the port it wants.
    Register {
        /// HMAC-SHA256(secret, nonce); absent when a client certificate is the proof.
        proof: Option<[u8; NONCE_LEN]>,
        /// TCP or UDP.
        kind: Kind,
        /// The public port asked for; 0: any free one in the gateway's range.
        port: u16,
        /// The token of an earlier registration, to get its reserved port back.
        token: Option<Token>,
    },
    /// Gateway: the public port is open.
    Registered {
        /// Its number.
        port: u16,
        /// This session's token.
        token: Token,
        /// The gateway's `--tunnel-host` when it names one address, else empty.
        host: String,
    },
    /// Gateway: no port, and why (one sentence).
    Refused {
        /// The reason, for the client's error line.
        reason: String,
    },
    /// Gateway: somebody reached the public port; open a data connection for them.
    Visitor {
        /// The visitor's number in this session, for `Join`.
        id: u64,
        /// Where the visitor came from.
        from: SocketAddr,
        /// The public address it reached.
        to: SocketAddr,
    },
    /// Either side, every few seconds: still here.
    Ping,
    /// Client: leaving on purpose; close the port, keep nothing reserved.
    Bye,
    /// Client, first on a spare data connection: keep it for the next visitor, whom the
    /// gateway then names on it with a `Visitor` frame.
    Offer {
        /// The client's protocol version.
        version: u8,
        /// The session's token.
        token: Token,
    },
    /// Client, first on a data connection: this connection is for that visitor.
    Join {
        /// The client's protocol version.
        version: u8,
        /// The session's token.
        token: Token,
        /// The visitor's number.
        id: u64,
    },
}

/// Why bytes are not a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadFrame(pub &'static str);

impl std::fmt::Display for BadFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl Frame {
    /// The frame as it goes on the wire, length first.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(64);
        match self {
            Frame::Hello { version } => {
                body.push(1);
                body.extend_from_slice(MAGIC);
                body.push(*version);
            }
            Frame::Challenge { nonce } => {
                body.push(2);
                body.extend_from_slice(nonce);
            }
            Frame::Register {
                proof,
                kind,
                port,
                token,
            } => {
                body.push(3);
                body.push(match kind {
                    Kind::Tcp => 1,
                    Kind::Udp => 2,
                });
                body.extend_from_slice(&port.to_be_bytes());
                body.push(u8::from(proof.is_some()) | (u8::from(token.is_some()) << 1));
                if let Some(p) = proof {
                    body.extend_from_slice(p);
                }
                if let Some(t) = token {
                    body.extend_from_slice(t);
                }
            }
            Frame::Registered { port, token, host } => {
                body.push(4);
                body.extend_from_slice(&port.to_be_bytes());
                body.extend_from_slice(token);
                body.extend_from_slice(host.as_bytes());
            }
            Frame::Refused { reason } => {
                body.push(5);
                body.extend_from_slice(reason.as_bytes());
            }
            Frame::Visitor { id, from, to } => {
                body.push(6);
                body.extend_from_slice(&id.to_be_bytes());
                put_addr(&mut body, from);
                put_addr(&mut body, to);
            }
            Frame::Ping => body.push(7),
            Frame::Bye => body.push(8),
            Frame::Offer { version, token } => {
                body.push(10);
                body.extend_from_slice(MAGIC);
                body.push(*version);
                body.extend_from_slice(token);
            }
            Frame::Join { version, token, id } => {
                body.push(9);
                body.extend_from_slice(MAGIC);
                body.push(*version);
                body.extend_from_slice(token);
                body.extend_from_slice(&id.to_be_bytes());
            }
        }
        // Text fields are cut so the frame stays within MAX_FRAME.
        body.truncate(MAX_FRAME);
        let mut out = Vec::with_capacity(4 + body.len());
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// A frame's body (after the length).
    ///
    /// # Errors
    /// An unknown type, a wrong length, an unknown magic, bad text.
    pub fn decode(body: &[u8]) -> Result<Frame, BadFrame> {
        if body.len() > MAX_FRAME {
            return Err(BadFrame("a frame longer than 4 KiB"));
        }
        let (&kind, rest) = body.split_first().ok_or(BadFrame("an empty frame"))?;
        let mut r = Reader(rest);
        let frame = match kind {
            1 => {
                r.magic()?;
                Frame::Hello { version: r.u8()? }
            }
            2 => Frame::Challenge { nonce: r.array()? },
            3 => {
                let kind = match r.u8()? {
                    1 => Kind::Tcp,
                    2 => Kind::Udp,
                    _ => return Err(BadFrame("an unknown port kind")),
                };
                let port = r.u16()?;
                let flags = r.u8()?;
                if flags & !3 != 0 {
                    return Err(BadFrame("unknown registration flags"));
                }
                let proof = if flags & 1 != 0 {
                    Some(r.array()?)
                } else {
                    None
                };
                let token = if flags & 2 != 0 {
                    Some(r.array()?)
                } else {
                    None
                };
                Frame::Register {
                    proof,
                    kind,
                    port,
                    token,
                }
            }
            4 => Frame::Registered {
                port: r.u16()?,
                token: r.array()?,
                host: r.text()?,
            },
            5 => Frame::Refused { reason: r.text()? },
            6 => Frame::Visitor {
                id: r.u64()?,
                from: r.addr()?,
                to: r.addr()?,
            },
            7 => Frame::Ping,
            8 => Frame::Bye,
            9 => {
                r.magic()?;
                Frame::Join {
                    version: r.u8()?,
                    token: r.array()?,
                    id: r.u64()?,
                }
            }
            10 => {
                r.magic()?;
                Frame::Offer {
                    version: r.u8()?,
                    token: r.array()?,
                }
            }
            _ => return Err(BadFrame("an unknown frame type")),
        };
        if !r.0.is_empty() {
            return Err(BadFrame("bytes after the frame's fields"));
        }
        Ok(frame)
    }
}

fn put_addr(out: &mut Vec<u8>, a: &SocketAddr) {
    match a.ip().to_canonical() {
        IpAddr::V4(ip) => {
            out.push(4);
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.push(6);
            out.extend_from_slice(&ip.octets());
        }
    }
    out.extend_from_slice(&a.port().to_be_bytes());
}

/// Fields taken off the front of a body, each failing on too few bytes.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], BadFrame> {
        if self.0.len() < n {
            return Err(BadFrame("a frame cut short"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], BadFrame> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, BadFrame> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, BadFrame> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, BadFrame> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn magic(&mut self) -> Result<(), BadFrame> {
        if self.take(MAGIC.len())? != MAGIC {
            return Err(BadFrame("not sockit's tunnel protocol"));
        }
        Ok(())
    }

    fn text(&mut self) -> Result<String, BadFrame> {
        let all = std::mem::take(&mut self.0);
        String::from_utf8(all.to_vec()).map_err(|_| BadFrame("text that is not UTF-8"))
    }

    fn addr(&mut self) -> Result<SocketAddr, BadFrame> {
        let ip = match self.u8()? {
            4 => IpAddr::V4(Ipv4Addr::from(self.array::<4>()?)),
            6 => IpAddr::V6(Ipv6Addr::from(self.array::<16>()?)),
            _ => return Err(BadFrame("an unknown address family")),
        };
        // An IPv4-mapped address is the IPv4 one, as it is encoded.
        Ok(SocketAddr::new(ip.to_canonical(), self.u16()?))
    }
}

/// Reads one frame; `None` when the peer closed before its first byte.
///
/// # Errors
/// A frame longer than [`MAX_FRAME`] or malformed (`InvalidData`), a connection that ends
/// inside a frame, any read error.
pub async fn read<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Option<Frame>> {
    let mut len = [0u8; 4];
    // The first byte alone tells a clean end from a cut frame.
    if r.read(&mut len[..1]).await? == 0 {
        return Ok(None);
    }
    r.read_exact(&mut len[1..]).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "a control frame longer than 4 KiB: not sockit's tunnel protocol",
        ));
    }
    // Exactly the frame: what follows a data connection's Join belongs to the visitor.
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    Frame::decode(&body)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.0))
}

/// The next frame on a control connection that is not a ping, or why the other side is
/// taken for gone: it closed, failed, or said nothing for [`DEAD_AFTER`].
///
/// # Errors
/// The reason, in words for a log line.
pub async fn next_on_control<R: AsyncRead + Unpin>(r: &mut R) -> Result<Frame, String> {
    loop {
        match tokio::time::timeout(DEAD_AFTER, read(r)).await {
            Ok(Ok(Some(Frame::Ping))) => {}
            Ok(Ok(Some(f))) => return Ok(f),
            Ok(Ok(None)) => return Err("its connection closed".into()),
            Ok(Err(e)) => return Err(crate::error::describe_io(&e)),
            Err(_) => return Err(format!("nothing heard for {} s", DEAD_AFTER.as_secs())),
        }
    }
}

/// Writes one frame and flushes it (TLS holds what is not flushed).
///
/// # Errors
/// Any write error.
pub async fn write<W: AsyncWrite + Unpin>(w: &mut W, frame: &Frame) -> io::Result<()> {
    w.write_all(&frame.encode()).await?;
    w.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(f: Frame) {
        let bytes = f.encode();
        let len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
        assert_eq!(len, bytes.len() - 4);
        assert_eq!(Frame::decode(&bytes[4..]), Ok(f));
    }

    #[test]
    fn every_frame_comes_back_as_it_went() {
        let addr: SocketAddr = "192.0.2.7:4321".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:20001".parse().unwrap();
        round_trip(Frame::Hello { version: VERSION });
        round_trip(Frame::Challenge { nonce: [7; 32] });
        for (proof, token) in [
            (None, None),
            (Some([1; 32]), None),
            (Some([1; 32]), Some([2; 16])),
            (None, Some([3; 16])),
        ] {
            round_trip(Frame::Register {
                proof,
                kind: Kind::Udp,
                port: 20001,
                token,
            });
        }
        round_trip(Frame::Registered {
            port: 1,
            token: [9; 16],
            host: "gw.example".into(),
        });
        round_trip(Frame::Refused {
            reason: "port 20001 is held by another client".into(),
        });
        round_trip(Frame::Visitor {
            id: u64::MAX,
            from: addr,
            to: v6,
        });
        round_trip(Frame::Ping);
        round_trip(Frame::Bye);
        round_trip(Frame::Offer {
            version: VERSION,
            token: [6; 16],
        });
        round_trip(Frame::Join {
            version: VERSION,
            token: [5; 16],
            id: 42,
        });
    }

    #[test]
    fn bad_bytes_are_refused_in_words() {
        assert_eq!(Frame::decode(&[]), Err(BadFrame("an empty frame")));
        assert_eq!(
            Frame::decode(b"\x01GET / HTTP/1.1"),
            Err(BadFrame("not sockit's tunnel protocol"))
        );
        assert_eq!(
            Frame::decode(&[2, 1, 2]),
            Err(BadFrame("a frame cut short"))
        );
        assert_eq!(
            Frame::decode(&[7, 0]),
            Err(BadFrame("bytes after the frame's fields"))
        );
        assert_eq!(
            Frame::decode(&[200]),
            Err(BadFrame("an unknown frame type"))
        );
        assert_eq!(
            Frame::decode(&[3, 1, 0, 0, 4]),
            Err(BadFrame("unknown registration flags"))
        );
    }

    #[tokio::test]
    async fn a_frame_split_across_reads_is_read_whole_and_nothing_after_it() {
        let join = Frame::Join {
            version: VERSION,
            token: [5; 16],
            id: 3,
        }
        .encode();
        let (mut a, mut b) = tokio::io::duplex(64);
        let mut wire = join.clone();
        wire.extend_from_slice(b"visitor bytes");
        tokio::spawn(async move {
            for chunk in wire.chunks(5) {
                a.write_all(chunk).await.unwrap();
            }
        });
        let f = read(&mut b).await.unwrap().unwrap();
        assert!(matches!(f, Frame::Join { id: 3, .. }));
        let mut rest = [0u8; 13];
        b.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"visitor bytes");
    }

    #[tokio::test]
    async fn a_huge_length_is_refused_before_any_allocation() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        let e = read(&mut b).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }
}

//! Endpoints as users write them (`tcp://host:port`, `udp://[::1]:9`, `unix:@name`), parsed once
//! at the edge so the rest of sockit deals in typed addresses.
//!
//! Parsing never guesses: anything malformed is refused with what is wrong and a correct
//! example, because a silently misread address is the worst kind of network bug.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::{Error, ErrorKind};

/// The longest path a `sockaddr_un` holds on Linux (108 bytes with the terminating NUL).
const UNIX_PATH_MAX: usize = 107;

/// Where to connect or listen: a transport and an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// TCP, written `tcp://HOST:PORT` or bare `HOST:PORT`.
    Tcp(HostPort),
    /// UDP, written `udp://HOST:PORT`.
    Udp(HostPort),
    /// TLS over TCP, written `tls://HOST:PORT`.
    Tls(HostPort),
    /// QUIC over UDP (TLS 1.3 inside), written `quic://HOST:PORT`: a stream kind, one
    /// bidirectional QUIC stream per conversation.
    Quic(HostPort),
    /// Unix stream socket, written `unix:PATH` or `unix:@NAME`.
    Unix(UnixAddr),
    /// Unix datagram socket, written `unixgram:PATH` or `unixgram:@NAME`.
    UnixGram(UnixAddr),
    /// WebSocket over TCP, written `ws://HOST:PORT/PATH`.
    Ws(WsAddr),
    /// WebSocket over TLS, written `wss://HOST:PORT/PATH`.
    Wss(WsAddr),
    /// `chat` only: a web page at `/` and the room's WebSocket at `/ws`, written
    /// `http://HOST:PORT`.
    Http(HostPort),
}

/// Where a WebSocket lives: a host, a port and the path of the upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsAddr {
    /// The host and port of the TCP part.
    pub hp: HostPort,
    /// The request path (with its query, if any); `/` when none was written.
    pub path: String,
}

/// A host and a port, as in `tcp://HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// The host part.
    pub host: Host,
    /// The port; 0 asks the system for any free port when listening.
    pub port: u16,
}

/// The host part of an IP endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A literal address.
    Ip(IpAddr),
    /// A link-local IPv6 address with its zone, `[fe80::1%eth0]` (an interface name or index).
    Scoped(Ipv6Addr, String),
    /// A name to resolve (`localhost`, `example.org`).
    Name(String),
    /// Empty host: every interface, IPv4 and IPv6 (listening only).
    Any,
}

/// The address of a Unix-domain socket.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UnixAddr {
    /// A file-system path.
    Path(PathBuf),
    /// A name in Linux's abstract namespace (no file; written with a leading `@`).
    Abstract(String),
}

impl Endpoint {
    /// True for the kinds that carry a byte stream (tcp, tls, quic, unix, ws, wss, http).
    pub fn is_stream(&self) -> bool {
        !matches!(self, Endpoint::Udp(_) | Endpoint::UnixGram(_))
    }

    /// True for endpoints with a TLS layer over TCP (`tls://`, `wss://`).
    pub fn is_tls(&self) -> bool {
        matches!(self, Endpoint::Tls(_) | Endpoint::Wss(_))
    }

    /// True for endpoints whose peers are trusted through TLS certificates: the TLS layer's
    /// (`tls://`, `wss://`) and QUIC's, which has TLS 1.3 inside.
    pub fn uses_tls(&self) -> bool {
        self.is_tls() || matches!(self, Endpoint::Quic(_))
    }

    /// True for endpoints with a WebSocket layer (`ws://`, `wss://`, and chat's `http://`).
    pub fn is_ws(&self) -> bool {
        matches!(self, Endpoint::Ws(_) | Endpoint::Wss(_) | Endpoint::Http(_))
    }

    /// The path a WebSocket upgrade goes to: as written for `ws://`/`wss://`, `/ws` for
    /// chat's `http://`.
    pub fn ws_path(&self) -> Option<&str> {
        match self {
            Endpoint::Ws(a) | Endpoint::Wss(a) => Some(&a.path),
            Endpoint::Http(_) => Some("/ws"),
            _ => None,
        }
    }

    /// The host and port of an IP endpoint (the TCP or UDP part of any layer).
    pub fn host_port(&self) -> Option<&HostPort> {
        match self {
            Endpoint::Tcp(hp)
            | Endpoint::Udp(hp)
            | Endpoint::Tls(hp)
            | Endpoint::Quic(hp)
            | Endpoint::Http(hp) => Some(hp),
            Endpoint::Ws(a) | Endpoint::Wss(a) => Some(&a.hp),
            Endpoint::Unix(_) | Endpoint::UnixGram(_) => None,
        }
    }

    /// The scheme as written in endpoints, without `://` or `:`.
    pub fn scheme(&self) -> &'static str {
        match self {
            Endpoint::Tcp(_) => "tcp",
            Endpoint::Udp(_) => "udp",
            Endpoint::Tls(_) => "tls",
            Endpoint::Quic(_) => "quic",
            Endpoint::Unix(_) => "unix",
            Endpoint::UnixGram(_) => "unixgram",
            Endpoint::Ws(_) => "ws",
            Endpoint::Wss(_) => "wss",
            Endpoint::Http(_) => "http",
        }
    }

    /// The endpoint of the same kind at a concrete socket address (for readiness lines).
    pub fn with_addr(&self, addr: std::net::SocketAddr) -> Endpoint {
        let hp = HostPort {
            host: Host::Ip(addr.ip()),
            port: addr.port(),
        };
        match self {
            Endpoint::Udp(_) => Endpoint::Udp(hp),
            Endpoint::Tls(_) => Endpoint::Tls(hp),
            Endpoint::Quic(_) => Endpoint::Quic(hp),
            Endpoint::Http(_) => Endpoint::Http(hp),
            Endpoint::Ws(a) => Endpoint::Ws(WsAddr {
                hp,
                path: a.path.clone(),
            }),
            Endpoint::Wss(a) => Endpoint::Wss(WsAddr {
                hp,
                path: a.path.clone(),
            }),
            _ => Endpoint::Tcp(hp),
        }
    }
}

impl fmt::Display for Host {
    /// As written in an endpoint: IPv6 in brackets, `*` for every interface.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
            Host::Scoped(ip, zone) => write!(f, "[{ip}%{zone}]"),
            Host::Name(n) => f.write_str(n),
            Host::Any => f.write_str("*"),
        }
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}:{}", self.port),
            Host::Scoped(ip, zone) => write!(f, "[{ip}%{zone}]:{}", self.port),
            Host::Name(n) => write!(f, "{n}:{}", self.port),
            Host::Any => write!(f, ":{}", self.port),
        }
    }
}

impl fmt::Display for UnixAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnixAddr::Path(p) => write!(f, "{}", p.display()),
            UnixAddr::Abstract(n) => write!(f, "@{n}"),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp(hp)
            | Endpoint::Udp(hp)
            | Endpoint::Tls(hp)
            | Endpoint::Quic(hp)
            | Endpoint::Http(hp) => write!(f, "{}://{hp}", self.scheme()),
            Endpoint::Ws(a) | Endpoint::Wss(a) => {
                write!(f, "{}://{}{}", self.scheme(), a.hp, a.path)
            }
            // A path that starts with `//` is written `unix:////x`: parsing reads a leading
            // `//` as the URL spelling (`unix:///tmp/x`), so it must survive the round trip.
            Endpoint::Unix(UnixAddr::Path(p)) | Endpoint::UnixGram(UnixAddr::Path(p))
                if p.to_string_lossy().starts_with("//") =>
            {
                write!(f, "{}://{}", self.scheme(), p.display())
            }
            Endpoint::Unix(a) | Endpoint::UnixGram(a) => write!(f, "{}:{a}", self.scheme()),
        }
    }
}

impl FromStr for Endpoint {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |why: String, example: &str| {
            Error::new(
                ErrorKind::BadEndpoint {
                    example: example.to_string(),
                },
                format!("bad endpoint '{s}'"),
                why,
            )
        };
        if s.is_empty() {
            return Err(bad("it is empty".into(), "tcp://127.0.0.1:8898"));
        }
        if let Some(rest) = s.strip_prefix("unixgram:") {
            return parse_unix(rest, s, "unixgram").map(Endpoint::UnixGram);
        }
        if let Some(rest) = s.strip_prefix("unix:") {
            return parse_unix(rest, s, "unix").map(Endpoint::Unix);
        }
        let (scheme, rest) = match s.split_once("://") {
            Some((scheme, rest)) => (scheme, rest),
            None => {
                // `tcp:127.0.0.1:7007`: a scheme with one colon, not a host.
                if let Some((scheme, _)) = s.split_once(':') {
                    let lower = scheme.to_ascii_lowercase();
                    if ["tcp", "udp", "tls", "ssl", "ws", "wss", "http"].contains(&lower.as_str()) {
                        return Err(bad(
                            format!("write the scheme with '://' ({lower}://...)"),
                            &format!("{lower}://127.0.0.1:8898"),
                        ));
                    }
                }
                ("tcp", s)
            }
        };
        let lower = scheme.to_ascii_lowercase();
        if lower == "ws" || lower == "wss" {
            let example = format!("{lower}://127.0.0.1:8898/chat");
            let (hp, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, "/"),
            };
            let hp = parse_host_port(hp).map_err(|why| bad(why, &example))?;
            let path = check_path(path).map_err(|why| bad(why, &example))?;
            let addr = WsAddr { hp, path };
            return Ok(if lower == "ws" {
                Endpoint::Ws(addr)
            } else {
                Endpoint::Wss(addr)
            });
        }
        let make: fn(HostPort) -> Endpoint = match lower.as_str() {
            "tcp" => Endpoint::Tcp,
            "udp" => Endpoint::Udp,
            "tls" | "ssl" => Endpoint::Tls,
            "quic" => Endpoint::Quic,
            "http" => {
                if let Some(i) = rest.find('/') {
                    if &rest[i..] != "/" {
                        return Err(bad(
                            "http:// is chat's web page: the page is at / and its WebSocket at /ws, so it takes no path".into(),
                            "http://127.0.0.1:8080",
                        ));
                    }
                }
                Endpoint::Http
            }
            "unix" | "unixgram" => {
                return Err(bad(
                    format!("{scheme} endpoints are written without '//'"),
                    &format!("{scheme}:/tmp/sockit.sock"),
                ))
            }
            _ => {
                return Err(bad(
                    format!("unknown scheme '{scheme}'"),
                    "tcp://127.0.0.1:8898",
                ))
            }
        };
        let example = format!("{lower}://127.0.0.1:8898");
        let rest = if lower == "http" {
            rest.strip_suffix('/').unwrap_or(rest)
        } else {
            rest
        };
        parse_host_port(rest)
            .map(make)
            .map_err(|why| bad(why, &example))
    }
}

/// The longest request path a WebSocket endpoint takes (far below any server's limit).
const MAX_PATH: usize = 2048;

/// A WebSocket path as it goes on the request line: printable ASCII without spaces
/// (anything else percent-encoded), so what is sent is exactly what was written.
fn check_path(path: &str) -> Result<String, String> {
    if path.len() > MAX_PATH {
        return Err(format!("the path is longer than {MAX_PATH} bytes"));
    }
    if let Some(c) = path.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!(
            "the path holds {c:?}: write spaces and other characters percent-encoded (%20)"
        ));
    }
    if path.contains('#') {
        return Err("a WebSocket path has no '#fragment'".into());
    }
    Ok(path.to_string())
}

pub(crate) fn parse_host_port(s: &str) -> Result<HostPort, String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return Err("unbalanced '[': an IPv6 address goes inside [ ]".into());
        };
        let (addr, zone) = match inside.split_once('%') {
            Some((a, z)) => (a, Some(z)),
            None => (inside, None),
        };
        let ip: Ipv6Addr = addr
            .parse()
            .map_err(|_| format!("'{addr}' is not an IPv6 address"))?;
        let Some(port) = after.strip_prefix(':') else {
            return Err("missing port after the ']'".into());
        };
        let host = match zone {
            None => Host::Ip(IpAddr::V6(ip)),
            Some(z)
                if !z.is_empty()
                    && z.len() < 16
                    && z.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b)) =>
            {
                Host::Scoped(ip, z.to_string())
            }
            Some(z) => {
                return Err(format!(
                    "'{z}' is not an interface name or index (as in [fe80::1%eth0])"
                ))
            }
        };
        (host, port)
    } else {
        if s.contains(']') {
            return Err("unbalanced ']': an IPv6 address goes inside [ ]".into());
        }
        let Some((host, port)) = s.rsplit_once(':') else {
            return Err("missing port (HOST:PORT)".into());
        };
        if host.contains(':') {
            return Err("an IPv6 address must be written in brackets, as [::1]:8898".into());
        }
        (parse_host(host)?, port)
    };
    if port.is_empty() {
        return Err("missing port (HOST:PORT)".into());
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("port '{port}' is not a number"));
    }
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("port {port} is out of range (0-65535)"))?;
    Ok(HostPort { host, port })
}

fn parse_host(host: &str) -> Result<Host, String> {
    if host.is_empty() || host == "*" {
        return Ok(Host::Any);
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(Host::Ip(ip));
    }
    // `1.2.3`, `127.1`, `0x7f.1`, `2130706433`: the resolver would read these the old
    // inet_aton way (1.2.3 is 1.2.0.3). A name's last label is never all digits, so such a
    // host is a mistyped address: refused, never guessed.
    let last = host.rsplit('.').next().unwrap_or(host);
    let numeric = |l: &str| {
        !l.is_empty()
            && (l.bytes().all(|b| b.is_ascii_digit())
                || l.strip_prefix("0x")
                    .or_else(|| l.strip_prefix("0X"))
                    .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit())))
    };
    if numeric(last) {
        return Err(format!(
            "'{host}' is not an IPv4 address: write all four numbers in decimal, as 127.0.0.1"
        ));
    }
    let valid = host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if valid {
        Ok(Host::Name(host.to_string()))
    } else {
        Err(format!("'{host}' is not a valid host name or address"))
    }
}

fn parse_unix(rest: &str, whole: &str, scheme: &str) -> Result<UnixAddr, Error> {
    let bad = |why: &str| {
        Error::new(
            ErrorKind::BadEndpoint {
                example: format!("{scheme}:/tmp/sockit.sock"),
            },
            format!("bad endpoint '{whole}'"),
            why.to_string(),
        )
    };
    // Accept the URL-like spelling `unix:///tmp/x` as well as `unix:/tmp/x`.
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    if rest.contains('\0') {
        return Err(bad("a socket path cannot contain a NUL byte"));
    }
    if let Some(name) = rest.strip_prefix('@') {
        if name.is_empty() {
            return Err(bad("the abstract name after '@' is empty"));
        }
        if name.len() > UNIX_PATH_MAX - 1 {
            return Err(bad("the abstract name is longer than 106 bytes"));
        }
        return Ok(UnixAddr::Abstract(name.to_string()));
    }
    if rest.is_empty() {
        return Err(bad("the socket path is empty"));
    }
    if rest.len() > UNIX_PATH_MAX {
        return Err(bad("the socket path is longer than 107 bytes"));
    }
    if rest.ends_with('/') {
        return Err(bad("the socket path names a directory"));
    }
    Ok(UnixAddr::Path(PathBuf::from(rest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Endpoint {
        s.parse()
            .unwrap_or_else(|e| panic!("{s} should parse: {e}"))
    }

    fn err(s: &str) -> String {
        match s.parse::<Endpoint>() {
            Ok(e) => panic!("{s} should be refused, got {e:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn round_trips() {
        for s in [
            "tcp://127.0.0.1:8898",
            "udp://[::1]:9000",
            "tls://example.org:443",
            "tcp://:8898",
            "unix:/tmp/chat.sock",
            "unix:@chat",
            "unixgram:/tmp/dg.sock",
            "tcp://localhost:0",
            "ws://127.0.0.1:6080/",
            "ws://[::1]:80/chat?room=a",
            "wss://example.org:443/ssh",
            "http://127.0.0.1:8080",
        ] {
            assert_eq!(ok(s).to_string(), s);
        }
    }

    #[test]
    fn a_path_that_starts_with_two_slashes_survives_the_round_trip() {
        // Found by the endpoint fuzzer.
        let e = ok("unix:////x/y");
        assert_eq!(e.to_string(), "unix:////x/y");
        assert_eq!(ok(&e.to_string()), e);
        assert_eq!(ok("unix:///tmp/x").to_string(), "unix:/tmp/x");
    }

    #[test]
    fn zone_ids_are_kept() {
        assert_eq!(
            ok("tcp://[fe80::1%eth0]:22").to_string(),
            "tcp://[fe80::1%eth0]:22"
        );
        assert_eq!(
            ok("udp://[fe80::1%2]:53").to_string(),
            "udp://[fe80::1%2]:53"
        );
        assert!(err("tcp://[fe80::1%]:22").contains("interface name"));
        assert!(err("tcp://[fe80::1%a/b]:22").contains("interface name"));
    }

    #[test]
    fn numeric_looking_hosts_are_never_guessed() {
        for s in [
            "tcp://1.2.3:80",
            "tcp://127.1:80",
            "tcp://0x7f.1:80",
            "tcp://2130706433:80",
            "tcp://1.2.3.4.5:80",
        ] {
            let e = err(s);
            assert!(
                e.contains("is not an IPv4 address") && e.contains("127.0.0.1"),
                "{s}: {e}"
            );
        }
        assert!(ok("tcp://host1.example:80")
            .to_string()
            .contains("host1.example"));
    }

    #[test]
    fn a_scheme_with_one_colon_is_named() {
        let e = err("tcp:127.0.0.1:7007");
        assert!(e.contains("'://'"), "{e}");
        assert!(!e.contains("brackets"), "{e}");
    }

    #[test]
    fn bare_host_port_is_tcp() {
        assert_eq!(ok("127.0.0.1:80").to_string(), "tcp://127.0.0.1:80");
        assert_eq!(ok("[::1]:80").to_string(), "tcp://[::1]:80");
        assert_eq!(ok(":80"), ok("tcp://:80"));
    }

    #[test]
    fn kinds() {
        assert!(ok("unix:x").is_stream());
        assert!(!ok("unixgram:x").is_stream());
        assert!(!ok("udp://h:1").is_stream());
        assert_eq!(ok("unix:///tmp/a"), ok("unix:/tmp/a"));
        assert_eq!(ok("TCP://h:1").scheme(), "tcp");
    }

    #[test]
    fn malformed_endpoints_say_what_is_wrong() {
        assert!(err("tcp://host").contains("missing port"));
        assert!(err("tcp://host:").contains("missing port"));
        assert!(err("tcp://host:70000").contains("out of range"));
        assert!(err("tcp://host:http").contains("not a number"));
        assert!(err("ftp://host:21").contains("unknown scheme 'ftp'"));
        assert!(err("tcp://[::1:80").contains("unbalanced '['"));
        assert!(err("tcp://::1]:80").contains("unbalanced ']'"));
        assert!(err("tcp://::1:80").contains("brackets"));
        assert!(err("tcp://[zz]:80").contains("not an IPv6 address"));
        assert!(err("tcp://bad host:80").contains("not a valid host"));
        assert!(err("unix:").contains("empty"));
        assert!(err("unix:@").contains("empty"));
        assert!(err(&format!("unix:/{}", "a".repeat(200))).contains("longer"));
        assert!(err("unix://").contains("empty"));
        assert!(err("").contains("empty"));
    }

    #[test]
    fn websocket_endpoints() {
        assert_eq!(ok("ws://h:1").to_string(), "ws://h:1/");
        assert_eq!(ok("ws://h:1").ws_path(), Some("/"));
        assert_eq!(ok("http://h:1/").ws_path(), Some("/ws"));
        assert!(ok("wss://h:1/x").is_tls());
        assert!(ok("wss://h:1/x").is_ws() && ok("ws://h:1/x").is_stream());
        assert!(!ok("ws://h:1/x").is_tls());
        assert!(err("ws://h:1/a b").contains("percent-encoded"));
        assert!(err("ws://h:1/a#b").contains("fragment"));
        assert!(err("ws://h/x").contains("missing port"));
        assert!(err("http://h:1/chat").contains("no path"));
        assert!(err("ws:h:1").contains("'://'"));
    }

    #[test]
    fn errors_carry_an_example() {
        let e = "udp://h".parse::<Endpoint>().unwrap_err();
        assert!(e.hint().unwrap().contains("udp://127.0.0.1:8898"));
    }
}

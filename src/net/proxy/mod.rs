//! A proxy hop as a layer of the one dial (`--proxy URL`): the TCP connection goes to the
//! proxy, the proxy is asked for the target, and every later layer (TLS) runs inside the
//! tunnel. SOCKS5 (names resolved here, or by the proxy with `socks5h`), SOCKS4 and 4a
//! through tokio-socks; HTTP CONNECT here (`client.rs`), its reply read with [`head`] so that
//! not one byte after it is taken from the tunnel.
//!
//! Credentials never leave this module in words: [`Proxy`]'s `Display` and `Debug` leave
//! them out, so logs and errors can name the proxy freely.

mod client;
pub mod head;

use std::fmt;
use std::str::FromStr;

pub use client::reply;
pub(crate) use client::through;

use crate::endpoint::{Host, HostPort};
use crate::error::{Error, ErrorKind, Result};

/// The proxy protocols `--proxy` speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SOCKS5, target names resolved here.
    Socks5,
    /// SOCKS5, target names sent to the proxy to resolve.
    Socks5h,
    /// SOCKS4: IPv4 targets, resolved here.
    Socks4,
    /// SOCKS4a: names sent to the proxy.
    Socks4a,
    /// HTTP CONNECT.
    Http,
}

impl Kind {
    fn scheme(self) -> &'static str {
        match self {
            Kind::Socks5 => "socks5",
            Kind::Socks5h => "socks5h",
            Kind::Socks4 => "socks4",
            Kind::Socks4a => "socks4a",
            Kind::Http => "http",
        }
    }

    /// The protocol's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Socks5 | Kind::Socks5h => "SOCKS5",
            Kind::Socks4 | Kind::Socks4a => "SOCKS4",
            Kind::Http => "HTTP",
        }
    }
}

/// A user name and password for the proxy; never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user.
    pub user: String,
    /// The password.
    pub pass: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials(hidden)")
    }
}

/// `--proxy URL`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    /// The protocol.
    pub kind: Kind,
    /// Where the proxy listens.
    pub addr: HostPort,
    /// `USER:PASS@` from the URL.
    pub auth: Option<Credentials>,
}

impl fmt::Display for Proxy {
    /// The URL without its credentials: safe for logs and errors.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.kind.scheme(), self.addr)
    }
}

impl FromStr for Proxy {
    type Err = Error;

    fn from_str(s: &str) -> Result<Proxy> {
        let bad = |why: &str| {
            // The URL may hold a password: the error shows only its scheme.
            let scheme = s.split_once("://").map_or("", |(sc, _)| sc);
            Error::new(
                ErrorKind::BadArgument,
                format!("bad --proxy '{scheme}://...'"),
                format!("{why}; write e.g. socks5h://127.0.0.1:1080, socks5://user:pass@proxy:1080 or http://proxy:3128"),
            )
        };
        let (scheme, rest) = s.split_once("://").ok_or_else(|| bad("it has no scheme"))?;
        let kind = match scheme.to_ascii_lowercase().as_str() {
            "socks5" => Kind::Socks5,
            "socks5h" => Kind::Socks5h,
            "socks4" => Kind::Socks4,
            "socks4a" => Kind::Socks4a,
            "http" => Kind::Http,
            _ => {
                return Err(bad(
                    "the schemes are socks5, socks5h, socks4, socks4a and http",
                ))
            }
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') {
            // The authority ends at the first '/': anything after it would be a path, which
            // a proxy URL does not have (and a '/' cannot hide inside USER:PASS unescaped).
            return Err(bad(
                "a proxy URL has no path; percent-encode a '/' in USER:PASS as %2F",
            ));
        }
        let (auth, hostport) = match rest.rsplit_once('@') {
            Some((userinfo, hp)) => {
                let (user, pass) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                let (user, pass) = (percent_decode(user), percent_decode(pass));
                if user.is_empty() {
                    return Err(bad("the user name before '@' is empty"));
                }
                (Some(Credentials { user, pass }), hp)
            }
            None => (None, rest),
        };
        let default_port = if kind == Kind::Http { 3128 } else { 1080 };
        let with_port = if has_port(hostport) {
            hostport.to_string()
        } else {
            format!("{hostport}:{default_port}")
        };
        let addr = crate::endpoint::parse_host_port(&with_port)
            .map_err(|_| bad("its HOST:PORT is not valid"))?;
        if matches!(addr.host, Host::Any) {
            return Err(bad("it names no host"));
        }
        Ok(Proxy { kind, addr, auth })
    }
}

/// Whether `hp` (`host`, `host:port`, `[v6]`, `[v6]:port`) ends in a port.
fn has_port(hp: &str) -> bool {
    match hp.rsplit_once(':') {
        Some((h, p)) => {
            !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (!h.contains(':') || h.ends_with(']'))
        }
        None => false,
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls_parse_and_never_show_credentials() {
        let p: Proxy = "socks5h://alice:s%40cret@127.0.0.1:1080".parse().unwrap();
        assert_eq!(p.kind, Kind::Socks5h);
        assert_eq!(p.auth.as_ref().unwrap().pass, "s@cret");
        assert_eq!(p.to_string(), "socks5h://127.0.0.1:1080");
        assert!(!format!("{p:?}").contains("cret"));
        let p: Proxy = "http://proxy.example".parse().unwrap();
        assert_eq!(p.to_string(), "http://proxy.example:3128");
        let p: Proxy = "socks4a://[::1]".parse().unwrap();
        assert_eq!(p.to_string(), "socks4a://[::1]:1080");
        // Found by the proxy URL fuzzer: a '/' before the '@' is not part of USER:PASS.
        assert!("socks5://h0/h0:/rr@rr".parse::<Proxy>().is_err());
        let p: Proxy = "socks5://u:a%2Fb@h:1".parse().unwrap();
        assert_eq!(p.auth.unwrap().pass, "a/b");
        let e = "ftp://u:topsecret@x:1"
            .parse::<Proxy>()
            .unwrap_err()
            .to_string();
        assert!(!e.contains("topsecret"), "{e}");
        assert!(e.contains("socks5h"), "{e}");
    }
}

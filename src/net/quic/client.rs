//! The client side of QUIC: the TLS trust of `tls://` (pins, CAs, client certificates,
//! `--sni`, key logs) with QUIC's ALPN, and one connection per dial with one stream.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::config::{alpn_or_default, alpn_words, transport};
use super::QuicStream;
use crate::endpoint::HostPort;
use crate::error::{Error, ErrorKind, Result};
use crate::net::base::{Local, Peer};
use crate::net::resolve::resolve;
use crate::net::tls;

/// A ready QUIC client: built once per command from its TLS options.
#[derive(Clone)]
pub(crate) struct QuicClient {
    config: quinn::ClientConfig,
    tls: tls::Client,
    alpn: String,
}

impl std::fmt::Debug for QuicClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuicClient")
            .field("alpn", &self.alpn)
            .finish()
    }
}

impl QuicClient {
    /// QUIC over `tls`'s trust, offering `--alpn`'s protocols (or `sockit`).
    ///
    /// # Errors
    /// A TLS configuration QUIC cannot use (it needs TLS 1.3).
    pub(crate) fn new(tls: &tls::Client) -> Result<QuicClient> {
        let mut rustls = (**tls.config()).clone();
        rustls.alpn_protocols = alpn_or_default(&rustls.alpn_protocols);
        let alpn = alpn_words(&rustls.alpn_protocols);
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(Arc::new(rustls))
            .map_err(|e| Error::new(ErrorKind::Tls, "cannot set up QUIC", e.to_string()))?;
        let mut config = quinn::ClientConfig::new(Arc::new(crypto));
        config.transport_config(transport());
        Ok(QuicClient {
            config,
            tls: tls.clone(),
            alpn,
        })
    }

    /// One QUIC connection to `hp` (each address it resolves to in turn, until one
    /// answers), and its one stream. `endpoint` names it in errors.
    ///
    /// # Errors
    /// No answer within `deadline` (said as such: UDP may be blocked), a certificate not
    /// trusted, no ALPN protocol in common, a socket the system refuses.
    pub(crate) async fn connect(
        &self,
        hp: &HostPort,
        local: &Local,
        deadline: Duration,
        endpoint: &str,
    ) -> Result<(QuicStream, Peer)> {
        let name = self.tls.name_for(&hp.host);
        self.tls.server_name(&hp.host)?;
        let addrs = local.usable(resolve(hp).await?);
        let what = || format!("cannot connect to {endpoint}");
        let Some(&addr) = addrs.first() else {
            return Err(Error::new(
                local.none_left_kind(),
                what(),
                local.none_left(),
            ));
        };
        let bind = local.bind_for(addr).unwrap_or_else(|| {
            let any: std::net::IpAddr = if addr.is_ipv4() {
                std::net::Ipv4Addr::UNSPECIFIED.into()
            } else {
                std::net::Ipv6Addr::UNSPECIFIED.into()
            };
            SocketAddr::new(any, 0)
        });
        let socket = std::net::UdpSocket::bind(bind).map_err(|e| Error::io(what(), &e))?;
        let fd = Arc::new(socket2::Socket::from(
            socket.try_clone().map_err(|e| Error::io(what(), &e))?,
        ));
        let quic = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            None,
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(|e| Error::io(what(), &e))?;
        let connecting = quic
            .connect_with(self.config.clone(), addr, &name)
            .map_err(|e| Error::new(ErrorKind::BadArgument, what(), e.to_string()))?;
        let failed = format!("QUIC handshake with {endpoint} failed");
        let conn = match tokio::time::timeout(deadline, connecting).await {
            Err(_) => {
                return Err(Error::new(
                    ErrorKind::QuicTimedOut,
                    format!("no QUIC answer from {hp} in {} s", deadline.as_secs_f64()),
                    "is a QUIC server there? UDP may be blocked on the way",
                ))
            }
            Ok(Err(e)) => return Err(self.handshake_error(failed, &e)),
            Ok(Ok(conn)) => conn,
        };
        let local_addr = quic.local_addr().ok().map(|a| {
            let ip = conn
                .local_ip()
                .filter(|ip| !ip.is_unspecified())
                .or_else(|| route_source(&bind, addr))
                .unwrap_or(a.ip());
            SocketAddr::new(ip, a.port())
        });
        let pair = conn
            .open_bi()
            .await
            .map_err(|e| Error::io(what(), &std::io::Error::other(e)))?;
        let peer = Peer::from_ip(conn.remote_address());
        Ok((
            QuicStream::new(pair, conn, Some(quic), local_addr, fd),
            peer,
        ))
    }

    /// Why a QUIC handshake failed, in words, with what to do.
    fn handshake_error(&self, what: String, e: &quinn::ConnectionError) -> Error {
        let no_alpn = quinn::TransportErrorCode::crypto(0x78);
        let (code, reason) = match e {
            quinn::ConnectionError::TransportError(t) => (Some(t.code), t.reason.clone()),
            quinn::ConnectionError::ConnectionClosed(c) => (
                Some(c.error_code),
                String::from_utf8_lossy(&c.reason).into_owned(),
            ),
            other => (None, other.to_string()),
        };
        let lower = reason.to_ascii_lowercase();
        let why = if code == Some(no_alpn) || lower.contains("application protocol") {
            format!(
                "the server accepts none of the application protocols offered ({}); offer its protocol with --alpn",
                self.alpn
            )
        } else if lower.contains("unknownissuer") || lower.contains("unknown issuer") {
            "the certificate is self-signed or from an unknown CA; trust it with --pin SHA256 (the fingerprint the server printed) or --ca FILE".to_string()
        } else if lower.contains("not valid for name") || lower.contains("notvalidforname") {
            "the certificate is for another name; give that name with --sni NAME, or use --pin"
                .to_string()
        } else if lower.contains("pinned") {
            reason
                .rsplit("invalid peer certificate: ")
                .next()
                .unwrap_or(&reason)
                .to_string()
        } else if reason.is_empty() {
            e.to_string()
        } else {
            reason
        };
        Error::new(ErrorKind::Tls, what, why)
    }
}

/// The source address the system picks for `remote` from `bind` (a wildcard socket does not
/// know its address until it sends): asked of a UDP socket connected for the purpose, as a
/// capture and `--exec`'s TCPLOCALIP need the real one.
fn route_source(bind: &SocketAddr, remote: SocketAddr) -> Option<std::net::IpAddr> {
    let probe = std::net::UdpSocket::bind(SocketAddr::new(bind.ip(), 0)).ok()?;
    probe.connect(remote).ok()?;
    Some(probe.local_addr().ok()?.ip())
}

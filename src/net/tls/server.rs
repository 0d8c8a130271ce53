//! The server side of TLS: the certificate presented (given or made at start), an optional
//! client CA for mutual TLS, and the handshake.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::PrivateKeyDer;
use tokio::net::TcpStream;

use super::{
    bad_file, ca_roots, fingerprint, key_mismatch, provider, read_certs, read_key, TlsStream,
};
use crate::error::{Error, ErrorKind, Result};

/// What a TLS server presents.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// `--cert`: PEM certificate chain.
    pub cert: Option<PathBuf>,
    /// `--key`: PEM private key.
    pub key: Option<PathBuf>,
    /// `--client-ca`: require a client certificate issued by this CA (PEM).
    pub client_ca: Option<PathBuf>,
    /// `--alpn`: the application protocols accepted (none for TLS unless given; QUIC
    /// accepts `sockit` when none is given).
    pub alpn: Vec<String>,
}

/// A ready TLS server side: the acceptor and the fingerprint of its certificate.
#[derive(Clone)]
pub struct Server {
    acceptor: tokio_rustls::TlsAcceptor,
    config: Arc<rustls::ServerConfig>,
    /// SHA-256 of the certificate presented (clients can `--pin` it).
    pub fingerprint: String,
    /// True when the certificate was made at start.
    pub self_signed: bool,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

impl Server {
    /// Loads `--cert/--key`, or makes a self-signed certificate for `names` (host names and
    /// addresses the server answers as).
    ///
    /// # Errors
    /// Unreadable or mismatched certificate and key files, with the file named.
    pub fn new(opts: &ServerOptions, names: &[String]) -> Result<Server> {
        let (certs, key, self_signed) = match (&opts.cert, &opts.key) {
            (Some(cert), Some(key)) => (read_certs(cert)?, read_key(key)?, false),
            (None, None) => {
                let mut names = names.to_vec();
                names.push("localhost".into());
                let made = rcgen::generate_simple_self_signed(names).map_err(|e| {
                    Error::new(
                        ErrorKind::Tls,
                        "cannot make a self-signed certificate",
                        e.to_string(),
                    )
                })?;
                let key =
                    PrivateKeyDer::try_from(made.signing_key.serialize_der()).map_err(|e| {
                        Error::new(
                            ErrorKind::Tls,
                            "cannot use the generated key",
                            e.to_string(),
                        )
                    })?;
                (vec![made.cert.der().clone()], key, true)
            }
            _ => {
                return Err(Error::new(
                    ErrorKind::Config,
                    "--cert and --key go together",
                    "give both PEM files, or neither for a self-signed certificate",
                ))
            }
        };
        let fingerprint = fingerprint(&certs[0]);
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::new(ErrorKind::Tls, "cannot set up TLS", e.to_string()))?;
        let builder = match &opts.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(ca_roots(ca)?),
                    provider(),
                )
                .build()
                .map_err(|e| bad_file(format!("cannot use {} as a CA", ca.display()), e))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(certs, key)
            .map_err(|e| key_mismatch("certificate", &e))?;
        // SSLKEYLOGFILE, as for clients.
        config.key_log = Arc::new(rustls::KeyLogFile::new());
        config.alpn_protocols = opts.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        let config = Arc::new(config);
        Ok(Server {
            acceptor: tokio_rustls::TlsAcceptor::from(config.clone()),
            config,
            fingerprint,
            self_signed,
        })
    }

    /// The rustls configuration, for a layer that runs TLS itself (QUIC).
    pub(crate) fn config(&self) -> &Arc<rustls::ServerConfig> {
        &self.config
    }

    /// The server half of a handshake, bounded by `deadline` (a client that stalls in it
    /// holds nothing but its socket until then).
    ///
    /// # Errors
    /// A failed or stalled handshake.
    pub async fn handshake(&self, tcp: TcpStream, deadline: Duration) -> io::Result<TlsStream> {
        let s = tokio::time::timeout(deadline, self.acceptor.accept(tcp))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        Ok(tokio_rustls::TlsStream::Server(s))
    }
}

/// The hosts a server's certificate is for, from its endpoints: those of the `tls://`,
/// `wss://` and `quic://` ones (an empty host adds none); `None` when no endpoint is TLS.
pub fn names_for(endpoints: &[&crate::Endpoint]) -> Option<Vec<String>> {
    use crate::endpoint::Host;
    let hosts: Vec<&Host> = endpoints
        .iter()
        .filter_map(|e| match e {
            crate::Endpoint::Tls(hp) | crate::Endpoint::Quic(hp) => Some(&hp.host),
            crate::Endpoint::Wss(a) => Some(&a.hp.host),
            _ => None,
        })
        .collect();
    if hosts.is_empty() {
        return None;
    }
    Some(
        hosts
            .iter()
            .filter_map(|h| match h {
                Host::Ip(ip) => Some(ip.to_string()),
                Host::Scoped(ip, _) => Some(ip.to_string()),
                Host::Name(n) => Some(n.clone()),
                Host::Any => None,
            })
            .collect(),
    )
}

impl Server {
    /// The line a server says at start, so clients can pin what it presents.
    pub fn fingerprint_line(&self) -> String {
        let kind = if self.self_signed {
            "self-signed certificate"
        } else {
            "certificate"
        };
        format!(
            "tls {kind}, SHA-256 fingerprint {} (clients: --pin {})",
            self.fingerprint, self.fingerprint
        )
    }
}

/// The certificate a TLS client presented (mutual TLS), if any.
pub fn client_certificate(s: &TlsStream) -> Option<&[u8]> {
    s.get_ref()
        .1
        .peer_certificates()?
        .first()
        .map(|c| c.as_ref())
}

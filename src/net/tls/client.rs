//! The client side of TLS: which servers to trust, and the handshake.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;

use super::{
    certificate_problem, explain, fingerprint, key_mismatch, parse_pin, provider, read_certs,
    read_key, roots_of, TlsStream,
};
use crate::endpoint::Host;
use crate::error::{Error, ErrorKind, Result};

/// How a TLS client decides to trust a server.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// `--ca`: trust certificates issued by this CA (PEM) instead of the system's roots; a
    /// self-signed server certificate kept in this file is trusted too (as curl does).
    pub ca: Option<PathBuf>,
    /// `--pin`: trust exactly the certificate with this SHA-256 fingerprint.
    pub pin: Option<String>,
    /// `--insecure`: trust anything.
    pub insecure: bool,
    /// `--client-cert`: PEM certificate chain to present (mutual TLS).
    pub cert: Option<PathBuf>,
    /// `--client-key`: PEM private key of `cert`.
    pub key: Option<PathBuf>,
    /// `--alpn`: the application protocols offered, in order (none for TLS unless given;
    /// QUIC offers `sockit` when none is given).
    pub alpn: Vec<String>,
    /// `--sni`: the server name sent and verified, instead of the endpoint's host.
    pub sni: Option<String>,
}

impl ClientOptions {
    /// True when any TLS client option was given (so a plain endpoint can say they are unused).
    pub fn is_set(&self) -> bool {
        self.ca.is_some()
            || self.pin.is_some()
            || self.insecure
            || self.cert.is_some()
            || self.sni.is_some()
            || !self.alpn.is_empty()
    }
}

/// A ready TLS client side, built once and shared by every connection a command opens.
#[derive(Clone)]
pub struct Client {
    connector: tokio_rustls::TlsConnector,
    config: Arc<rustls::ClientConfig>,
    trust: &'static str,
    sni: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("trust", &self.trust)
            .finish()
    }
}

/// Whom a client trusts.
#[derive(Debug)]
enum Trust {
    /// `--insecure` (`None`) or `--pin`: only the end certificate is looked at, or nothing.
    Pinned(Option<[u8; 32]>),
    /// The system's roots or `--ca FILE`: the web PKI rules, plus what curl and
    /// `openssl s_client -CAfile` accept: a server certificate that is itself in the CA file
    /// (`openssl req -x509` makes such certificates with CA:TRUE, which webpki refuses as an
    /// end entity); its name and dates are still checked.
    WebPki {
        /// `None` when there is no root at all (a machine without CA certificates): then
        /// every issuer is unknown.
        webpki: Option<Arc<WebPkiServerVerifier>>,
        listed: Vec<CertificateDer<'static>>,
    },
}

/// The one verifier of every client. Whatever the trust, the handshake signatures are
/// checked, so the peer must hold the certificate's key. An unknown issuer is reported with
/// the certificate's fingerprint, so it can be pinned at once.
#[derive(Debug)]
struct Verifier {
    trust: Trust,
    provider: Arc<CryptoProvider>,
}

/// Name and dates of a certificate trusted because the CA file holds it.
fn check_listed(
    end_entity: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> std::result::Result<(), rustls::Error> {
    let bad = |e| rustls::Error::InvalidCertificate(e);
    let cert = webpki::EndEntityCert::try_from(end_entity)
        .map_err(|_| bad(CertificateError::BadEncoding))?;
    cert.verify_is_valid_for_subject_name(server_name)
        .map_err(|_| bad(CertificateError::NotValidForName))?;
    let (_, parsed) = x509_parser::parse_x509_certificate(end_entity.as_ref())
        .map_err(|_| bad(CertificateError::BadEncoding))?;
    let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let validity = parsed.validity();
    if now < validity.not_before.timestamp() {
        return Err(bad(CertificateError::NotValidYet));
    }
    if now > validity.not_after.timestamp() {
        return Err(bad(CertificateError::Expired));
    }
    Ok(())
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let verdict = match &self.trust {
            Trust::Pinned(None) => Ok(ServerCertVerified::assertion()),
            Trust::Pinned(Some(pin)) => {
                if Sha256::digest(end_entity.as_ref()).as_slice() == pin {
                    Ok(ServerCertVerified::assertion())
                } else {
                    Err(rustls::Error::General(format!(
                        "the certificate's fingerprint is {}, not the pinned one",
                        fingerprint(end_entity.as_ref())
                    )))
                }
            }
            Trust::WebPki { listed, .. }
                if listed.iter().any(|c| c.as_ref() == end_entity.as_ref()) =>
            {
                check_listed(end_entity, server_name, now).map(|()| ServerCertVerified::assertion())
            }
            Trust::WebPki {
                webpki: Some(w), ..
            } => w.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now),
            Trust::WebPki { webpki: None, .. } => Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            )),
        };
        verdict.map_err(|e| match e {
            rustls::Error::InvalidCertificate(c) if is_unknown_issuer(&c) => {
                let fp = fingerprint(end_entity.as_ref());
                rustls::Error::General(format!(
                    "the certificate is self-signed or from an unknown CA (SHA-256 {fp}); \
                     trust it with --pin {fp} or --ca FILE"
                ))
            }
            other => other,
        })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// An issuer nobody here trusts: unknown, or a self-signed CA certificate presented as the
/// server's own (webpki names that `CaUsedAsEndEntity`).
fn is_unknown_issuer(c: &CertificateError) -> bool {
    match c {
        CertificateError::UnknownIssuer => true,
        CertificateError::Other(o) => o.to_string().contains("CaUsedAsEndEntity"),
        _ => false,
    }
}

fn setup_error(e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Tls, "cannot set up TLS", e.to_string())
}

impl Client {
    /// Builds the trust `opts` asks for (the system's roots by default).
    ///
    /// # Errors
    /// A bad `--pin`, an unreadable `--ca`, or no usable system roots.
    pub fn new(opts: &ClientOptions) -> Result<Client> {
        let provider = provider();
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(setup_error)?;
        let (trust, name) = if opts.insecure || opts.pin.is_some() {
            let pin = match &opts.pin {
                Some(p) => Some(parse_pin(p).ok_or_else(|| {
                    Error::new(
                        ErrorKind::BadArgument,
                        format!("bad --pin '{p}'"),
                        "give the SHA-256 fingerprint the server printed, e.g. AB:CD:...:EF (64 hex digits)",
                    )
                })?),
                None => None,
            };
            let name = if pin.is_some() { "pinned" } else { "insecure" };
            (Trust::Pinned(pin), name)
        } else {
            let (roots, listed, name) = match &opts.ca {
                Some(ca) => {
                    // Read once: the file is both the trust store and the list of
                    // certificates trusted as they are.
                    let listed = read_certs(ca)?;
                    (roots_of(ca, listed.clone())?, listed, "ca")
                }
                None => {
                    let mut roots = RootCertStore::empty();
                    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
                    (roots, Vec::new(), "system roots")
                }
            };
            let webpki = if roots.is_empty() {
                None
            } else {
                Some(
                    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .build()
                        .map_err(setup_error)?,
                )
            };
            (Trust::WebPki { webpki, listed }, name)
        };
        // Only --insecure weakens anything, and it is said out loud where it is chosen.
        let config = builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Verifier { trust, provider }));
        let trust = name;
        let mut config = match (&opts.cert, &opts.key) {
            (Some(cert), Some(key)) => config
                .with_client_auth_cert(read_certs(cert)?, read_key(key)?)
                .map_err(|e| key_mismatch("client certificate", &e))?,
            (None, None) => config.with_no_client_auth(),
            _ => {
                return Err(Error::new(
                    ErrorKind::Config,
                    "--client-cert and --client-key go together",
                    "give both PEM files",
                ))
            }
        };
        // SSLKEYLOGFILE (NSS key log format), so a capture of the real wire can be
        // decrypted; rustls writes nothing when it is not set.
        config.key_log = Arc::new(rustls::KeyLogFile::new());
        config.alpn_protocols = opts.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        let config = Arc::new(config);
        Ok(Client {
            connector: tokio_rustls::TlsConnector::from(config.clone()),
            config,
            trust,
            sni: opts.sni.clone(),
        })
    }

    /// The rustls configuration, for a layer that runs TLS itself (QUIC).
    pub(crate) fn config(&self) -> &Arc<rustls::ClientConfig> {
        &self.config
    }

    /// The name sent (SNI) and verified for `host`: `--sni` when given, else the host (an
    /// address as written; `localhost` for an empty host).
    pub(crate) fn name_for(&self, host: &Host) -> String {
        match (&self.sni, host) {
            (Some(sni), _) => sni.clone(),
            (None, Host::Ip(ip)) => ip.to_string(),
            (None, Host::Scoped(ip, _)) => ip.to_string(),
            (None, Host::Name(n)) => n.clone(),
            (None, Host::Any) => "localhost".to_string(),
        }
    }

    /// [`Client::name_for`] as rustls takes it.
    ///
    /// # Errors
    /// A name rustls cannot use.
    pub(crate) fn server_name(&self, host: &Host) -> Result<ServerName<'static>> {
        let name = self.name_for(host);
        ServerName::try_from(name.clone()).map_err(|_| {
            Error::new(
                ErrorKind::BadArgument,
                format!("cannot use '{name}' as a TLS server name"),
                "use a host name or an IP address (--sni NAME)",
            )
        })
    }

    /// True when nothing is verified (`--insecure`).
    pub fn is_insecure(&self) -> bool {
        self.trust == "insecure"
    }

    /// The client half of a handshake with `host` (its name is sent as SNI and checked
    /// against the certificate), bounded by `deadline`. `endpoint` names the connection in
    /// errors (`tls://host:443`).
    ///
    /// # Errors
    /// A verification failure worded for people (self-signed, expired, wrong name), with a
    /// hint to `--pin` or `--ca`; a stalled or failed handshake.
    pub async fn handshake(
        &self,
        host: &Host,
        tcp: TcpStream,
        deadline: Duration,
        endpoint: &str,
    ) -> Result<TlsStream> {
        let server_name = self.server_name(host)?;
        let what = format!("TLS handshake with {endpoint} failed");
        let s = tokio::time::timeout(deadline, self.connector.connect(server_name, tcp))
            .await
            .map_err(|_| {
                Error::new(
                    ErrorKind::TlsTimedOut,
                    what.clone(),
                    format!("no answer in {} s", deadline.as_secs_f64()),
                )
            })?
            .map_err(|e| handshake_error(what, &e))?;
        Ok(tokio_rustls::TlsStream::Client(s))
    }
}

/// One line that names why a handshake failed, and what to do about it.
pub(crate) fn handshake_error(what: String, e: &std::io::Error) -> Error {
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    let hint = "trust it with --pin SHA256 (the fingerprint the server printed) or --ca FILE";
    let why = match inner {
        Some(rustls::Error::InvalidCertificate(c)) => match c {
            CertificateError::UnknownIssuer => {
                format!("the certificate is self-signed or from an unknown CA; {hint}")
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "the certificate is for another name; connect with the name it was issued for, or use --pin".to_string()
            }
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => certificate_problem(c),
            other => format!("{}; {hint}", certificate_problem(other)),
        },
        Some(rustls::Error::General(msg)) => msg.clone(),
        Some(other) => explain(other),
        None => crate::error::describe_io(e),
    };
    Error::new(ErrorKind::Tls, what, why).with_source(std::io::Error::new(e.kind(), e.to_string()))
}

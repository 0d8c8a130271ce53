//! TLS for `tls://` endpoints: rustls with the ring provider, through tokio-rustls.
//!
//! A server without `--cert/--key` makes a self-signed certificate at start and prints its
//! SHA-256 fingerprint, so a client can trust exactly that certificate with `--pin` (what
//! ncat cannot do). A client verifies against the system's roots by default; `--ca` trusts a
//! private CA, `--pin` one certificate, `--insecure` nothing at all (and says so). A failed
//! verification is one line naming the cause. Handshakes and `close_notify` have deadlines,
//! so a stalled peer holds only its own task. Mutual TLS: a server with `--client-ca`
//! admits only clients whose certificate that CA issued; a client presents one with
//! `--client-cert/--client-key`.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;

use crate::endpoint::{Endpoint, Host, HostPort};
use crate::error::{Error, ErrorKind, Result};
use crate::net::{self, Peer, Stream};

/// How long a TLS handshake may take before the peer is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TLS connection over TCP, either side.
pub type TlsStream = tokio_rustls::TlsStream<TcpStream>;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The SHA-256 fingerprint of a certificate, as `AB:CD:...` (what `--pin` takes).
pub fn fingerprint(cert: &[u8]) -> String {
    let digest = Sha256::digest(cert);
    let mut out = String::with_capacity(95);
    for (i, b) in digest.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{b:02X}");
    }
    out
}

/// A `--pin` value as 32 bytes: hex with or without colons, any case, `sha256:` allowed.
fn parse_pin(pin: &str) -> Option<[u8; 32]> {
    let hex: String = pin
        .trim()
        .trim_start_matches("sha256:")
        .trim_start_matches("SHA256:")
        .chars()
        .filter(|c| *c != ':')
        .collect();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// What a TLS server presents.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// `--cert`: PEM certificate chain.
    pub cert: Option<PathBuf>,
    /// `--key`: PEM private key.
    pub key: Option<PathBuf>,
    /// `--client-ca`: require a client certificate issued by this CA (PEM).
    pub client_ca: Option<PathBuf>,
}

/// A ready TLS server side: the acceptor and the fingerprint of its certificate.
#[derive(Clone)]
pub struct Server {
    acceptor: tokio_rustls::TlsAcceptor,
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

fn bad_file(what: String, why: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::BadArgument, what, why.to_string())
}

/// A certificate (`what`) and key that rustls refused together.
fn key_mismatch(what: &str, e: &rustls::Error) -> Error {
    Error::new(
        ErrorKind::BadArgument,
        format!("cannot use that {what} and key"),
        format!("{e} (does the key belong to the certificate?)"),
    )
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| {
        bad_file(
            format!("cannot read a private key from {}", path.display()),
            e,
        )
    })
}

/// The certificates of a CA file (`--ca`, `--client-ca`) as a trust store.
fn ca_roots(ca: &Path) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(read_certs(ca)?);
    if added == 0 {
        return Err(bad_file(
            format!("cannot use {} as a CA", ca.display()),
            "no usable certificate in it",
        ));
    }
    Ok(roots)
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let what = format!("cannot read certificates from {}", path.display());
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad_file(what.clone(), e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad_file(what.clone(), e))?;
    if certs.is_empty() {
        return Err(bad_file(what, "no PEM certificate in it"));
    }
    Ok(certs)
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
                        ErrorKind::Io,
                        "cannot make a self-signed certificate",
                        e.to_string(),
                    )
                })?;
                let key =
                    PrivateKeyDer::try_from(made.signing_key.serialize_der()).map_err(|e| {
                        Error::new(ErrorKind::Io, "cannot use the generated key", e.to_string())
                    })?;
                (vec![made.cert.der().clone()], key, true)
            }
            _ => {
                return Err(Error::new(
                    ErrorKind::BadArgument,
                    "--cert and --key go together",
                    "give both PEM files, or neither for a self-signed certificate",
                ))
            }
        };
        let fingerprint = fingerprint(&certs[0]);
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::new(ErrorKind::Io, "cannot set up TLS", e.to_string()))?;
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
        let config = builder
            .with_single_cert(certs, key)
            .map_err(|e| key_mismatch("certificate", &e))?;
        Ok(Server {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            fingerprint,
            self_signed,
        })
    }

    /// The server half of a handshake, bounded by [`HANDSHAKE_TIMEOUT`].
    ///
    /// # Errors
    /// A failed or stalled handshake.
    pub async fn accept(&self, tcp: TcpStream) -> io::Result<TlsStream> {
        let s = tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(tcp))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        Ok(tokio_rustls::TlsStream::Server(s))
    }
}

impl Server {
    /// Wraps an accepted TCP stream in TLS (the handshake, bounded); other kinds pass.
    ///
    /// # Errors
    /// A failed or stalled handshake.
    pub async fn wrap(&self, stream: Stream) -> io::Result<Stream> {
        match stream {
            Stream::Tcp(tcp) => Ok(Stream::Tls(Box::new(self.accept(tcp).await?))),
            other => Ok(other),
        }
    }
}

/// An accepted client, in TLS when `tls` is given (plain otherwise); `None`, logged, when
/// its handshake fails: every server drops such a client and goes on.
pub async fn accept(tls: Option<&Server>, stream: Stream, peer: &Peer) -> Option<Stream> {
    let Some(tls) = tls else { return Some(stream) };
    // Boxed: the handshake's large state machine would otherwise sit in every client task,
    // plain ones included, for the task's whole life.
    match Box::pin(tls.wrap(stream)).await {
        Ok(s) => {
            if let Some(cert) = client_certificate(&s) {
                tracing::info!(%peer, client_cert = %fingerprint(cert), "TLS client certificate accepted");
            }
            Some(s)
        }
        Err(e) => {
            let error = crate::error::describe_io(&e);
            tracing::warn!(%peer, %error, "TLS handshake failed");
            None
        }
    }
}

/// The certificate a TLS client presented (mutual TLS), if any.
fn client_certificate(s: &Stream) -> Option<&[u8]> {
    match s {
        Stream::Tls(t) => t
            .get_ref()
            .1
            .peer_certificates()?
            .first()
            .map(|c| c.as_ref()),
        _ => None,
    }
}

/// Connects to a `tls://HOST:PORT`: TCP (every address tried), then the handshake.
///
/// # Errors
/// As [`net::connect`], then as [`Client::connect`].
pub async fn connect(
    hp: &HostPort,
    timeout: Option<Duration>,
    client: &Client,
) -> Result<(Stream, Peer)> {
    let (stream, peer) = net::connect(&Endpoint::Tcp(hp.clone()), timeout).await?;
    let Stream::Tcp(tcp) = stream else {
        return Err(Error::new(
            ErrorKind::Io,
            "cannot start TLS",
            "not a TCP connection",
        ));
    };
    let tls = client.connect(&hp.host, tcp).await?;
    Ok((Stream::Tls(Box::new(tls)), peer))
}

/// How a TLS client decides to trust a server.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// `--ca`: trust certificates issued by this CA (PEM) instead of the system's roots.
    pub ca: Option<PathBuf>,
    /// `--pin`: trust exactly the certificate with this SHA-256 fingerprint.
    pub pin: Option<String>,
    /// `--insecure`: trust anything.
    pub insecure: bool,
    /// `--client-cert`: PEM certificate chain to present (mutual TLS).
    pub cert: Option<PathBuf>,
    /// `--client-key`: PEM private key of `cert`.
    pub key: Option<PathBuf>,
}

/// A ready TLS client side.
#[derive(Clone)]
pub struct Client {
    connector: tokio_rustls::TlsConnector,
    trust: &'static str,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("trust", &self.trust)
            .finish()
    }
}

/// `--pin` and `--insecure`: a verifier that looks only at the end certificate (or nothing),
/// but still checks the handshake signatures, so the peer must hold the key.
#[derive(Debug)]
struct Pinned {
    pin: Option<[u8; 32]>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self.pin {
            None => Ok(ServerCertVerified::assertion()),
            Some(pin) if Sha256::digest(end_entity.as_ref()).as_slice() == pin => {
                Ok(ServerCertVerified::assertion())
            }
            Some(_) => Err(rustls::Error::General(format!(
                "the certificate's fingerprint is {}, not the pinned one",
                fingerprint(end_entity.as_ref())
            ))),
        }
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

impl Client {
    /// Builds the trust `opts` asks for (the system's roots by default).
    ///
    /// # Errors
    /// A bad `--pin`, an unreadable `--ca`, or no usable system roots.
    pub fn new(opts: &ClientOptions) -> Result<Client> {
        let provider = provider();
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::new(ErrorKind::Io, "cannot set up TLS", e.to_string()))?;
        let (config, trust) = if opts.insecure || opts.pin.is_some() {
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
            let verifier = Arc::new(Pinned { pin, provider });
            let builder = builder
                .dangerous()
                .with_custom_certificate_verifier(verifier);
            (builder, if pin.is_some() { "pinned" } else { "insecure" })
        } else {
            let (roots, trust) = match &opts.ca {
                Some(ca) => (ca_roots(ca)?, "ca"),
                None => {
                    let mut roots = RootCertStore::empty();
                    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
                    (roots, "system roots")
                }
            };
            (builder.with_root_certificates(roots), trust)
        };
        let config = match (&opts.cert, &opts.key) {
            (Some(cert), Some(key)) => config
                .with_client_auth_cert(read_certs(cert)?, read_key(key)?)
                .map_err(|e| key_mismatch("client certificate", &e))?,
            (None, None) => config.with_no_client_auth(),
            _ => {
                return Err(Error::new(
                    ErrorKind::BadArgument,
                    "--client-cert and --client-key go together",
                    "give both PEM files",
                ))
            }
        };
        Ok(Client {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            trust,
        })
    }

    /// True when nothing is verified (`--insecure`).
    pub fn is_insecure(&self) -> bool {
        self.trust == "insecure"
    }

    /// The client half of a handshake with `host` (its name is sent as SNI and checked
    /// against the certificate), bounded by [`HANDSHAKE_TIMEOUT`].
    ///
    /// # Errors
    /// A verification failure worded for people (self-signed, expired, wrong name), with a
    /// hint to `--pin` or `--ca`; a stalled or failed handshake.
    pub async fn connect(&self, host: &Host, tcp: TcpStream) -> Result<TlsStream> {
        let name = match host {
            Host::Ip(ip) => ip.to_string(),
            Host::Name(n) => n.clone(),
            Host::Any => "localhost".to_string(),
        };
        let server_name = ServerName::try_from(name.clone()).map_err(|_| {
            Error::new(
                ErrorKind::BadArgument,
                format!("cannot use '{name}' as a TLS server name"),
                "use a host name or an IP address",
            )
        })?;
        let what = format!("TLS handshake with {name} failed");
        let s = tokio::time::timeout(HANDSHAKE_TIMEOUT, self.connector.connect(server_name, tcp))
            .await
            .map_err(|_| Error::new(ErrorKind::TimedOut, what.clone(), "no answer in time"))?
            .map_err(|e| handshake_error(what, &e))?;
        Ok(tokio_rustls::TlsStream::Client(s))
    }
}

/// One line that names why a handshake failed, and what to do about it.
fn handshake_error(what: String, e: &io::Error) -> Error {
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    let hint = "trust it with --pin SHA256 (the fingerprint the server printed) or --ca FILE";
    let why = match inner {
        Some(rustls::Error::InvalidCertificate(c)) => match c {
            CertificateError::UnknownIssuer => {
                format!("the certificate is self-signed or from an unknown CA; {hint}")
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the certificate has expired".to_string()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "the certificate is not valid yet (is the clock right?)".to_string()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "the certificate is for another name; connect with the name it was issued for, or use --pin".to_string()
            }
            other => format!("bad certificate ({other:?}); {hint}"),
        },
        Some(rustls::Error::General(msg)) => msg.clone(),
        Some(other) => explain(other),
        None => crate::error::describe_io(e),
    };
    Error::new(ErrorKind::Io, what, why)
}

/// A rustls error in words, for the failures mutual TLS adds. With TLS 1.3 a client learns
/// that its certificate was refused only at its first read, so these reach the people who
/// read transfer errors as well as handshake logs.
pub(crate) fn explain(e: &rustls::Error) -> String {
    use rustls::AlertDescription as A;
    match e {
        rustls::Error::AlertReceived(A::CertificateRequired) => {
            "the server requires a client certificate; give --client-cert FILE --client-key FILE"
                .to_string()
        }
        rustls::Error::AlertReceived(A::UnknownCA | A::BadCertificate | A::CertificateUnknown) => {
            format!("the peer refused our certificate ({e}); use one issued by a CA it trusts")
        }
        rustls::Error::NoCertificatesPresented => {
            "the client presented no certificate, and --client-ca requires one".to_string()
        }
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "the peer's certificate is self-signed or from an unknown CA".to_string()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_parse_in_every_usual_spelling() {
        let fp = fingerprint(b"hello");
        let bytes = parse_pin(&fp).unwrap();
        assert_eq!(parse_pin(&fp.replace(':', "").to_lowercase()), Some(bytes));
        assert_eq!(parse_pin(&format!("sha256:{fp}")), Some(bytes));
        assert_eq!(parse_pin("AB:CD"), None);
        assert_eq!(fp.len(), 95);
    }

    /// Writes `tests/certs/`: a test CA, a server certificate for `localhost` only (so
    /// `127.0.0.1` shows the wrong-name failure), an expired one, and client certificates
    /// (one from the CA, one self-signed) for mutual TLS. Committed; rerun with
    /// `cargo test --lib regenerate_test_certificates -- --ignored` to replace them.
    #[test]
    #[ignore = "rewrites the committed test certificates"]
    fn regenerate_test_certificates() {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/certs");
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, text: String| std::fs::write(dir.join(name), text).unwrap();

        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "sockit test CA");
        ca.not_before = rcgen::date_time_ymd(2020, 1, 1);
        ca.not_after = rcgen::date_time_ymd(2099, 12, 31);
        write("ca.pem", ca.self_signed(&ca_key).unwrap().pem());
        let issuer = Issuer::new(ca, &ca_key);

        for (name, not_after) in [("localhost", (2099, 12, 31)), ("expired", (2021, 1, 1))] {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
            write(
                &format!("{name}.pem"),
                params.signed_by(&key, &issuer).unwrap().pem(),
            );
            write(&format!("{name}.key"), key.serialize_pem());
        }

        // Client certificates for mutual TLS: one from the test CA, one self-signed stranger.
        let client_params = || {
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.distinguished_name
                .push(rcgen::DnType::CommonName, "sockit test client");
            p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(2099, 12, 31);
            p
        };
        let key = KeyPair::generate().unwrap();
        write(
            "client.pem",
            client_params().signed_by(&key, &issuer).unwrap().pem(),
        );
        write("client.key", key.serialize_pem());
        let key = KeyPair::generate().unwrap();
        write(
            "stranger.pem",
            client_params().self_signed(&key).unwrap().pem(),
        );
        write("stranger.key", key.serialize_pem());
    }
}

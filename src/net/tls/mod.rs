//! TLS for `tls://` endpoints, a layer over a TCP stream: rustls with the ring provider,
//! through tokio-rustls.
//!
//! A server without `--cert/--key` makes a self-signed certificate at start and prints its
//! SHA-256 fingerprint, so a client can trust exactly that certificate with `--pin` (what
//! ncat cannot do). A client verifies against the system's roots by default; `--ca` trusts a
//! private CA (or a self-signed certificate kept in that file, as curl does), `--pin` one
//! certificate, `--insecure` nothing at all (and says so). A failed verification is one line
//! naming the cause. Mutual TLS: a server with `--client-ca` admits only clients whose
//! certificate that CA issued; a client presents one with `--client-cert/--client-key`.
//!
//! - `client`: [`Client`], the trust a client asked for, and the client handshake.
//! - `server`: [`Server`], the certificate a server presents, and the server handshake.
//!
//! Nothing above [`crate::net`] does a handshake: the dial and the server admission call
//! these.

mod client;
mod server;

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{CertificateError, RootCertStore};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;

use crate::error::{Error, ErrorKind, Result};

pub use client::{Client, ClientOptions};
pub use server::{client_certificate, names_for, Server, ServerOptions};

/// How long a TLS handshake may take unless `--handshake-timeout` says otherwise.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TLS connection over TCP, either side.
pub type TlsStream = tokio_rustls::TlsStream<TcpStream>;

/// The handshake's outcome in a few words (`TLSv1_3, TLS13_AES_256_GCM_SHA384`), for
/// `--explain`.
pub fn summary(s: &TlsStream) -> String {
    let state = s.get_ref().1;
    let version = state
        .protocol_version()
        .map(|v| format!("{v:?}"))
        .unwrap_or_default();
    let suite = state
        .negotiated_cipher_suite()
        .map(|c| format!("{:?}", c.suite()))
        .unwrap_or_default();
    format!("{}, {suite}", version.replace("TLSv1_", "TLSv1."))
}

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

fn bad_file(what: String, why: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Config, what, why.to_string())
}

/// A certificate (`what`) and key that rustls refused together.
fn key_mismatch(what: &str, e: &rustls::Error) -> Error {
    let why = match e {
        rustls::Error::InconsistentKeys(_) => {
            "the key does not belong to the certificate".to_string()
        }
        other => format!(
            "{} (does the key belong to the certificate?)",
            explain(other)
        ),
    };
    Error::new(
        ErrorKind::Config,
        format!("cannot use that {what} and key"),
        why,
    )
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| {
        bad_file(
            format!("cannot read a private key from {}", path.display()),
            pem_why(&e, "no PEM private key in it"),
        )
    })
}

/// Why a PEM file could not be read, in words (`no such file or directory`, never
/// `I/O error: No such file or directory (os error 2)`).
fn pem_why(e: &rustls::pki_types::pem::Error, none: &str) -> String {
    use rustls::pki_types::pem::Error as Pem;
    match e {
        Pem::Io(io) => crate::error::describe_io(io),
        Pem::NoItemsFound => none.to_string(),
        other => format!("it is not valid PEM ({other})"),
    }
}

/// The certificates of a CA file (`--ca`, `--client-ca`) as a trust store.
fn ca_roots(ca: &Path) -> Result<RootCertStore> {
    roots_of(ca, read_certs(ca)?)
}

/// `certs`, read from the CA file `ca`, as a trust store.
fn roots_of(ca: &Path, certs: Vec<CertificateDer<'static>>) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
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
    let none = "no PEM certificate in it";
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad_file(what.clone(), pem_why(&e, none)))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad_file(what.clone(), pem_why(&e, none)))?;
    if certs.is_empty() {
        return Err(bad_file(what, "no PEM certificate in it"));
    }
    Ok(certs)
}

/// A rustls error in words, for the failures mutual TLS adds. With TLS 1.3 a client learns
/// that its certificate was refused only at its first read, so these reach the people who
/// read transfer errors as well as handshake logs.
pub fn explain(e: &rustls::Error) -> String {
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
        rustls::Error::InvalidCertificate(c) => certificate_problem(c),
        // What a mix of TLS and plain ends up as, in words that say what it most likely is.
        rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => {
            "the peer does not speak TLS: it sent something else (plain text?); for a plain port use tcp:// instead of tls://".to_string()
        }
        rustls::Error::InappropriateHandshakeMessage {
            got_type: rustls::HandshakeType::ClientHello,
            ..
        } => "the peer sent our own TLS greeting back (an echo or another plain service): this port is not a TLS server; try tcp://".to_string(),
        rustls::Error::AlertReceived(A::HandshakeFailure) => {
            "the peer refused the TLS handshake (no TLS version, cipher or ALPN in common, or it is not the TLS server you meant)".to_string()
        }
        other => other.to_string(),
    }
}

/// An I/O error from a TLS stream with the rustls error inside put in words, so nothing
/// above `net` needs to know rustls (other errors pass unchanged).
pub(crate) fn in_words(e: std::io::Error) -> std::io::Error {
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(r) => std::io::Error::new(e.kind(), explain(r)),
        None => e,
    }
}

/// A certificate refusal in words (never the Debug form of a webpki error).
pub(crate) fn certificate_problem(c: &CertificateError) -> String {
    match c {
        CertificateError::UnknownIssuer => {
            "the certificate is self-signed or from an unknown CA".to_string()
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "the certificate has expired".to_string()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "the certificate is not valid yet (is the clock right?)".to_string()
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "the certificate is for another name".to_string()
        }
        CertificateError::Revoked => "the certificate has been revoked".to_string(),
        CertificateError::BadSignature => "the certificate's signature is wrong".to_string(),
        CertificateError::BadEncoding => "the certificate cannot be parsed".to_string(),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "the certificate is not meant for this use (extended key usage)".to_string()
        }
        CertificateError::Other(o) => {
            let text = o.to_string();
            if text.contains("CaUsedAsEndEntity") {
                "the certificate is a CA certificate used as a server certificate".to_string()
            } else {
                format!(
                    "the certificate was refused ({})",
                    text.trim_matches(|c: char| !c.is_alphanumeric())
                )
            }
        }
        _ => "the certificate was refused".to_string(),
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

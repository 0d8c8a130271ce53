//! The shared secret of a gateway and its clients, and the challenge that proves it without
//! sending it: the gateway sends a fresh nonce, the client answers HMAC-SHA256(secret,
//! nonce), the gateway checks it in constant time.
//!
//! The secret comes from a file or the environment, never from the command line, which
//! every user of the machine can read in `ps` and /proc/PID/cmdline.

use std::path::Path;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use super::frame::NONCE_LEN;
use crate::error::{Error, ErrorKind, Result};

/// The environment variable a secret may come from.
pub const ENV: &str = "SOCKIT_SECRET";

/// A shared secret; its `Debug` form never shows it.
#[derive(Clone)]
pub struct Secret(hmac::Key);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// A secret of these bytes.
    ///
    /// # Errors
    /// An empty secret, which would prove nothing.
    pub fn new(bytes: &[u8]) -> Result<Secret> {
        if bytes.is_empty() {
            return Err(Error::new(
                ErrorKind::Config,
                "the tunnel secret is empty",
                "put a long random string in the file, e.g. `openssl rand -hex 32 > secret`",
            ));
        }
        Ok(Secret(hmac::Key::new(hmac::HMAC_SHA256, bytes)))
    }

    /// `--secret-file FILE` (one trailing newline is not part of it), else `SOCKIT_SECRET`,
    /// else none.
    ///
    /// # Errors
    /// An unreadable or empty file, an empty variable.
    pub fn load(file: Option<&Path>) -> Result<Option<Secret>> {
        let bytes = match file {
            Some(path) => std::fs::read(path).map_err(|e| {
                Error::io(format!("cannot read --secret-file {}", path.display()), &e)
            })?,
            None => match std::env::var_os(ENV) {
                Some(v) => v.into_encoded_bytes(),
                None => return Ok(None),
            },
        };
        let trimmed = bytes
            .strip_suffix(b"\r\n")
            .or_else(|| bytes.strip_suffix(b"\n"))
            .unwrap_or(&bytes);
        Secret::new(trimmed).map(Some)
    }

    /// The answer to the gateway's `nonce`.
    pub fn proof(&self, nonce: &[u8; NONCE_LEN]) -> [u8; NONCE_LEN] {
        let tag = hmac::sign(&self.0, &signed(nonce));
        let mut out = [0u8; NONCE_LEN];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Whether `proof` answers `nonce` (in constant time).
    pub fn verify(&self, nonce: &[u8; NONCE_LEN], proof: &[u8; NONCE_LEN]) -> bool {
        hmac::verify(&self.0, &signed(nonce), proof).is_ok()
    }
}

/// What is signed: the protocol's name, so a proof is good for nothing else.
fn signed(nonce: &[u8; NONCE_LEN]) -> Vec<u8> {
    let mut m = b"sockit tunnel v1 ".to_vec();
    m.extend_from_slice(nonce);
    m
}

/// `N` random bytes from the operating system (nonces, tokens).
pub fn random<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // The system's generator does not fail on Linux once booted; if it ever did, a
    // nonce of zeros would only make the proof replayable, and tokens are checked anyway.
    if SystemRandom::new().fill(&mut out).is_err() {
        tracing::error!("the system's random generator failed");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proof_holds_for_the_same_secret_and_nonce_only() {
        let s = Secret::new(b"correct horse").unwrap();
        let other = Secret::new(b"battery staple").unwrap();
        let nonce = random::<NONCE_LEN>();
        let p = s.proof(&nonce);
        assert!(s.verify(&nonce, &p));
        assert!(!other.verify(&nonce, &p));
        assert!(!s.verify(&random::<NONCE_LEN>(), &p));
        assert_ne!(random::<16>(), random::<16>());
    }

    #[test]
    fn a_file_loses_one_trailing_newline_and_an_empty_one_is_refused() {
        let dir = std::env::temp_dir().join(format!("sockit-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("s");
        std::fs::write(&f, "abc\n").unwrap();
        let from_file = Secret::load(Some(&f)).unwrap().unwrap();
        let n = [1u8; NONCE_LEN];
        assert!(Secret::new(b"abc")
            .unwrap()
            .verify(&n, &from_file.proof(&n)));
        std::fs::write(&f, "\n").unwrap();
        let e = Secret::load(Some(&f)).unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
        assert_eq!(format!("{from_file:?}"), "Secret(..)");
        std::fs::remove_dir_all(&dir).ok();
    }
}

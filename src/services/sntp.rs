//! SNTP server mode (RFC 4330 / RFC 5905): answer client-mode requests with the system clock,
//! so a LAN can take its time from sockit (`rdate -n`, `ntpdate -q`).

use super::clock::ntp_now;

/// Options a LAN administrator may want to set.
#[derive(Debug, Clone)]
pub struct Options {
    /// Stratum to announce; an unsynchronised local clock is conventionally 10.
    pub stratum: u8,
    /// Reference identifier, up to 4 ASCII characters ("LOCL" for the local clock).
    pub refid: [u8; 4],
}

impl Options {
    /// `--refid`: 1 to 4 ASCII characters, padded with zero bytes as RFC 5905 has it.
    ///
    /// # Errors
    /// Empty, longer than 4, or not ASCII, in words.
    pub fn refid(s: &str) -> crate::error::Result<[u8; 4]> {
        let b = s.as_bytes();
        if b.is_empty() || b.len() > 4 || !s.is_ascii() {
            return Err(crate::error::Error::new(
                crate::error::ErrorKind::BadArgument,
                format!("bad --refid '{s}'"),
                "use 1 to 4 ASCII characters, such as LOCL or GPS",
            ));
        }
        let mut id = [0u8; 4];
        id[..b.len()].copy_from_slice(b);
        Ok(id)
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            stratum: 10,
            refid: *b"LOCL",
        }
    }
}

/// The answer to one request received at NTP time `received`, or `None` for anything that is
/// not a well-formed client-mode (3) request of version 1 to 4, which is ignored.
pub fn answer(request: &[u8], received: u64, opts: &Options) -> Option<[u8; 48]> {
    if request.len() < 48 {
        return None;
    }
    let version = (request[0] >> 3) & 0x7;
    let mode = request[0] & 0x7;
    if mode != 3 || !(1..=4).contains(&version) {
        return None;
    }
    let mut r = [0u8; 48];
    r[0] = (version << 3) | 4; // leap indicator 0, the client's version, mode 4 (server)
    r[1] = opts.stratum;
    r[2] = request[2].clamp(4, 17); // poll interval: echo the client's, within sane bounds
    r[3] = (-20i8) as u8; // precision about one microsecond
                          // Root delay 0; root dispersion 10 ms (16.16 fixed point): honest for a local clock.
    r[8..12].copy_from_slice(&655u32.to_be_bytes());
    r[12..16].copy_from_slice(&opts.refid);
    // Reference time: when the clock was last set; we vouch for "now".
    r[16..24].copy_from_slice(&received.to_be_bytes());
    // Origin: the client's transmit timestamp, so it can match and time the exchange.
    r[24..32].copy_from_slice(&request[40..48]);
    r[32..40].copy_from_slice(&received.to_be_bytes());
    r[40..48].copy_from_slice(&ntp_now().to_be_bytes());
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(version: u8, mode: u8) -> [u8; 48] {
        let mut q = [0u8; 48];
        q[0] = (version << 3) | mode;
        q[40..48].copy_from_slice(&0x1122_3344_5566_7788u64.to_be_bytes());
        q
    }

    #[test]
    fn answers_clients_with_their_origin() {
        let a = answer(&request(4, 3), ntp_now(), &Options::default()).unwrap();
        assert_eq!(a[0], (4 << 3) | 4);
        assert_eq!(a[1], 10);
        assert_eq!(&a[12..16], b"LOCL");
        assert_eq!(&a[24..32], &0x1122_3344_5566_7788u64.to_be_bytes());
        let rx = u64::from_be_bytes(a[32..40].try_into().unwrap());
        let tx = u64::from_be_bytes(a[40..48].try_into().unwrap());
        assert!(tx >= rx);
    }

    #[test]
    fn ignores_everything_else() {
        let o = Options::default();
        assert!(answer(&request(4, 4), 0, &o).is_none()); // a server's packet
        assert!(answer(&request(0, 3), 0, &o).is_none());
        assert!(answer(&[0x23; 10], 0, &o).is_none());
    }
}

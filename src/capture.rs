//! `--pcap FILE`: a session as a packet capture that Wireshark and tshark open, so a learner
//! sees each layer's header around their own bytes.
//!
//! The capture is written, not sniffed: what the application exchanged becomes IP packets
//! (classic pcap, raw IP link type) between the real addresses and ports. A TCP flow starts
//! with the handshake (SYN, SYN-ACK, ACK), its segments carry sequence and acknowledgement
//! numbers that count the bytes, and it ends with a FIN from each side or an RST, as it
//! happened; datagrams are UDP packets. For TLS and WebSocket the capture holds the
//! plaintext between the same ports. Every record is written whole with one write and no
//! buffer in between, so a killed process leaves a file that reads up to its last record;
//! a capture that cannot be written (a full disk) ends with one warning, never the session.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

/// Raw IP: each record starts with the IPv4 or IPv6 header (LINKTYPE_RAW).
const LINKTYPE_RAW: u32 = 101;
/// The most payload one synthesized segment carries: what fits an IPv4 packet's 16-bit
/// total length with both 20-byte headers.
pub const MAX_SEGMENT: usize = 65_495;
/// TCP flags.
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

/// The capture file, shared by every flow of a run.
pub struct Capture {
    out: Mutex<std::fs::File>,
    path: String,
    failed: AtomicBool,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Capture({})", self.path)
    }
}

impl Capture {
    /// Creates (or truncates) `path` and writes the pcap global header.
    ///
    /// # Errors
    /// A path that cannot be created or written, in words.
    pub fn create(path: &str) -> crate::error::Result<Arc<Capture>> {
        let what = || format!("cannot write the capture to {path}");
        let mut f = std::fs::File::create(path).map_err(|e| crate::Error::io(what(), &e))?;
        let mut head = Vec::with_capacity(24);
        head.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        head.extend_from_slice(&2u16.to_le_bytes());
        head.extend_from_slice(&4u16.to_le_bytes());
        head.extend_from_slice(&0i32.to_le_bytes());
        head.extend_from_slice(&0u32.to_le_bytes());
        head.extend_from_slice(&262_144u32.to_le_bytes());
        head.extend_from_slice(&LINKTYPE_RAW.to_le_bytes());
        f.write_all(&head)
            .map_err(|e| crate::Error::io(what(), &e))?;
        Ok(Arc::new(Capture {
            out: Mutex::new(f),
            path: path.to_string(),
            failed: AtomicBool::new(false),
        }))
    }

    /// One IP packet (`proto`'s header `head`, its checksum filled in here, then
    /// `payload`) as one record, timestamped now and written with one write: the payload
    /// is copied once, into the record.
    fn packet(
        &self,
        (src, dst): (SocketAddr, SocketAddr),
        proto: u8,
        mut head: Vec<u8>,
        payload: &[u8],
    ) {
        if self.failed.load(Ordering::Relaxed) {
            return;
        }
        let at = if proto == 6 { 16 } else { 6 };
        let sum = transport_checksum(src.ip(), dst.ip(), proto, &head, payload);
        // UDP sends a computed 0 as all ones (0 means "no checksum" there).
        let sum = if proto == 17 && sum == 0 { 0xffff } else { sum };
        head[at..at + 2].copy_from_slice(&sum.to_be_bytes());
        let ip = ip_header(src.ip(), dst.ip(), proto, head.len() + payload.len());
        let len = ip.len() + head.len() + payload.len();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut rec = Vec::with_capacity(16 + ip.len() + head.len());
        rec.extend_from_slice(
            &u32::try_from(now.as_secs())
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
        rec.extend_from_slice(&now.subsec_micros().to_le_bytes());
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        rec.extend_from_slice(&len.to_le_bytes());
        rec.extend_from_slice(&len.to_le_bytes());
        rec.extend_from_slice(&ip);
        rec.extend_from_slice(&head);
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = write_both(&mut out, &rec, payload) {
            if !self.failed.swap(true, Ordering::Relaxed) {
                crate::error::note(format_args!(
                    "cannot write the capture to {}: {}; the session goes on without it",
                    self.path,
                    crate::error::describe_io(&e)
                ));
            }
        }
    }

    /// A TCP flow between `client` (who sent the SYN) and `server`; the handshake is
    /// written now.
    pub fn tcp(self: &Arc<Self>, client: SocketAddr, server: SocketAddr) -> TcpFlow {
        let flow = TcpFlow {
            cap: self.clone(),
            ends: [client, server],
            state: Mutex::new(TcpState {
                next: [1_000, 5_000],
                finished: [false, false],
            }),
        };
        flow.handshake();
        flow
    }

    /// A UDP datagram from `from` to `to` as one packet.
    pub fn udp(&self, from: SocketAddr, to: SocketAddr, data: &[u8]) {
        let data = &data[..data.len().min(crate::net::MAX_UDP_PAYLOAD)];
        let mut head = Vec::with_capacity(8);
        head.extend_from_slice(&from.port().to_be_bytes());
        head.extend_from_slice(&to.port().to_be_bytes());
        head.extend_from_slice(
            &u16::try_from(8 + data.len())
                .unwrap_or(u16::MAX)
                .to_be_bytes(),
        );
        head.extend_from_slice(&[0, 0]);
        self.packet((from, to), 17, head, data);
    }
}

/// `head` then `payload` with one `writev` (the payload is not copied), the rest written
/// out if the system took less.
fn write_both(out: &mut std::fs::File, head: &[u8], payload: &[u8]) -> std::io::Result<()> {
    let n = out.write_vectored(&[std::io::IoSlice::new(head), std::io::IoSlice::new(payload)])?;
    if n < head.len() {
        out.write_all(&head[n..])?;
        out.write_all(payload)
    } else {
        out.write_all(&payload[n - head.len()..])
    }
}

/// Which end of a TCP flow a packet comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The one that connected (sent the SYN).
    Client,
    /// The one that accepted.
    Server,
}

impl End {
    fn index(self) -> usize {
        match self {
            End::Client => 0,
            End::Server => 1,
        }
    }
}

#[derive(Debug)]
struct TcpState {
    /// The next sequence number of each end (client, server).
    next: [u32; 2],
    /// Each end's FIN or an RST was written.
    finished: [bool; 2],
}

/// One TCP connection in the capture: sequence numbers that count the bytes each way.
#[derive(Debug)]
pub struct TcpFlow {
    cap: Arc<Capture>,
    /// Client, server.
    ends: [SocketAddr; 2],
    state: Mutex<TcpState>,
}

impl TcpFlow {
    fn lock(&self) -> std::sync::MutexGuard<'_, TcpState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn handshake(&self) {
        let mut st = self.lock();
        let (c, s) = (st.next[0], st.next[1]);
        self.segment(End::Client, c, 0, SYN, &[]);
        self.segment(End::Server, s, c.wrapping_add(1), SYN | ACK, &[]);
        st.next = [c.wrapping_add(1), s.wrapping_add(1)];
        self.segment(End::Client, st.next[0], st.next[1], ACK, &[]);
    }

    /// Bytes `from` one end, as segments of at most [`MAX_SEGMENT`].
    pub fn data(&self, from: End, data: &[u8]) {
        let mut st = self.lock();
        let (i, o) = (from.index(), 1 - from.index());
        for piece in data.chunks(MAX_SEGMENT) {
            self.segment(from, st.next[i], st.next[o], PSH | ACK, piece);
            st.next[i] = st.next[i].wrapping_add(piece.len() as u32);
        }
    }

    /// `from` ended its direction (FIN), once.
    pub fn fin(&self, from: End) {
        let mut st = self.lock();
        let (i, o) = (from.index(), 1 - from.index());
        if st.finished[i] {
            return;
        }
        st.finished[i] = true;
        self.segment(from, st.next[i], st.next[o], FIN | ACK, &[]);
        st.next[i] = st.next[i].wrapping_add(1);
    }

    /// `from` reset the connection: nothing more either way.
    pub fn rst(&self, from: End) {
        let mut st = self.lock();
        if st.finished == [true, true] {
            return;
        }
        st.finished = [true, true];
        let i = from.index();
        self.segment(from, st.next[i], 0, RST, &[]);
    }

    fn segment(&self, from: End, seq: u32, ack: u32, flags: u8, payload: &[u8]) {
        let (src, dst) = match from {
            End::Client => (self.ends[0], self.ends[1]),
            End::Server => (self.ends[1], self.ends[0]),
        };
        let mut head = Vec::with_capacity(20);
        head.extend_from_slice(&src.port().to_be_bytes());
        head.extend_from_slice(&dst.port().to_be_bytes());
        head.extend_from_slice(&seq.to_be_bytes());
        head.extend_from_slice(&ack.to_be_bytes());
        head.push(5 << 4);
        head.push(flags);
        head.extend_from_slice(&65_535u16.to_be_bytes());
        head.extend_from_slice(&[0, 0, 0, 0]);
        self.cap.packet((src, dst), 6, head, payload);
    }
}

/// The IP header (v4 or v6 by the addresses; a v4 address towards a v6 one is written as
/// its IPv4-mapped form) of a packet whose transport part is `seg_len` bytes.
fn ip_header(src: IpAddr, dst: IpAddr, proto: u8, seg_len: usize) -> Vec<u8> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = u16::try_from(20 + seg_len).unwrap_or(u16::MAX);
            let mut p = Vec::with_capacity(20);
            p.extend_from_slice(&[0x45, 0]);
            p.extend_from_slice(&total.to_be_bytes());
            p.extend_from_slice(&[0, 0, 0x40, 0]); // id 0, don't fragment
            p.extend_from_slice(&[64, proto, 0, 0]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            let sum = checksum(&[&p[..20]]);
            p[10..12].copy_from_slice(&sum.to_be_bytes());
            p
        }
        _ => {
            let mut p = Vec::with_capacity(40);
            p.extend_from_slice(&[0x60, 0, 0, 0]);
            p.extend_from_slice(&u16::try_from(seg_len).unwrap_or(u16::MAX).to_be_bytes());
            p.extend_from_slice(&[proto, 64]);
            p.extend_from_slice(&v6(src).octets());
            p.extend_from_slice(&v6(dst).octets());
            p
        }
    }
}

fn v6(ip: IpAddr) -> std::net::Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// The TCP or UDP checksum: the pseudo-header of the IP version, then the segment's header
/// (even in length) and its payload.
fn transport_checksum(src: IpAddr, dst: IpAddr, proto: u8, head: &[u8], payload: &[u8]) -> u16 {
    let len = head.len() + payload.len();
    let mut pseudo = Vec::with_capacity(40);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&[0, proto]);
            pseudo.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
        }
        _ => {
            pseudo.extend_from_slice(&v6(src).octets());
            pseudo.extend_from_slice(&v6(dst).octets());
            pseudo.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
            pseudo.extend_from_slice(&[0, 0, 0, proto]);
        }
    }
    checksum(&[&pseudo, head, payload])
}

/// The Internet checksum (RFC 1071) of the concatenated parts (each part but the last of
/// even length).
fn checksum(parts: &[&[u8]]) -> u16 {
    // 32-bit words summed into 64 bits (no carry can be lost below 2^32 words) and folded
    // at the end: the same one's complement sum as 16-bit words; a loop the compiler turns
    // into vector instructions.
    let mut sum: u64 = 0;
    for part in parts {
        let mut words = part.chunks_exact(4);
        sum += (&mut words)
            .map(|w| u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]])))
            .sum::<u64>();
        // The rest, as 16-bit words (a lone last byte is the high half of one).
        let mut pairs = words.remainder().chunks_exact(2);
        for p in &mut pairs {
            sum += u64::from(u16::from_be_bytes([p[0], p[1]]));
        }
        if let [last] = pairs.remainder() {
            sum += u64::from(*last) << 8;
        }
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wide sum against the plain 16-bit one of RFC 1071, over odd and even lengths.
    #[test]
    fn the_wide_sum_is_the_16_bit_sum() {
        let slow = |data: &[u8]| {
            let mut sum: u32 = 0;
            for c in data.chunks(2) {
                sum += u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0));
            }
            while sum >> 16 != 0 {
                sum = (sum & 0xffff) + (sum >> 16);
            }
            !(sum as u16)
        };
        let data: Vec<u8> = (0..1000u32)
            .map(|i| (i * 7919 % 251) as u8 | 0x80)
            .collect();
        for len in [0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 999, 1000] {
            assert_eq!(checksum(&[&data[..len]]), slow(&data[..len]), "{len}");
        }
        assert_eq!(checksum(&[&data[..12], &data[12..100]]), slow(&data[..100]));
    }

    #[test]
    fn checksums_verify_to_zero() {
        // A header with its checksum in place sums to all ones: the complement is 0.
        let p = ip_header(
            "127.0.0.1".parse().unwrap(),
            "127.0.0.2".parse().unwrap(),
            6,
            20,
        );
        assert_eq!(checksum(&[&p[..20]]), 0);
        // RFC 1071's example.
        assert_eq!(
            checksum(&[&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]]),
            !0xddf2
        );
    }
}

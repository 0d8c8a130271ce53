//! `-x/--hex-dump FILE`: every chunk in both directions, as `xxd` shows bytes; and the
//! same chunks into `--pcap FILE` ([`crate::capture`]) as packets.
//!
//! Each chunk gets a header (direction, time, peer, length, offset counted per direction)
//! and `xxd`-style lines of 16 bytes: offset, hex in pairs, printable ASCII. One sink is
//! shared by every connection of a run (a line is never split between two connections);
//! each connection has its own [`Traffic`] with its own offsets.

use std::fmt::Write as _;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::capture::{End, TcpFlow};

/// Which way a chunk went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `>`: sent to the peer (relay: client to target).
    Sent,
    /// `<`: received from the peer (relay: target to client).
    Received,
}

/// Where dumps go: a hex dump (a file, or stderr for `-`), a packet capture, or both.
pub struct Sink {
    out: Option<Mutex<Box<dyn Write + Send>>>,
    /// `--pcap`: the same traffic as packets.
    pcap: Option<Arc<crate::capture::Capture>>,
    /// What `-x` named, for the one warning when it cannot be written.
    path: String,
    /// The warning was given: the dump is lost from here on, the session goes on.
    failed: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sink")
    }
}

impl Sink {
    /// `-x FILE` (created or truncated), `-x -` for stderr.
    ///
    /// # Errors
    /// A file that cannot be created.
    pub fn open(path: &str) -> crate::error::Result<Arc<Sink>> {
        Ok(Arc::new(Sink::build(Some(path), None)?))
    }

    /// `-x FILE` and `--pcap FILE`, either or both; `None` when neither is asked for.
    ///
    /// # Errors
    /// A file that cannot be created, in words.
    pub fn for_run(
        hex: Option<&str>,
        pcap: Option<&str>,
    ) -> crate::error::Result<Option<Arc<Sink>>> {
        if hex.is_none() && pcap.is_none() {
            return Ok(None);
        }
        let pcap = pcap.map(crate::capture::Capture::create).transpose()?;
        Ok(Some(Arc::new(Sink::build(hex, pcap)?)))
    }

    fn build(
        hex: Option<&str>,
        pcap: Option<Arc<crate::capture::Capture>>,
    ) -> crate::error::Result<Sink> {
        let out = hex
            .map(|path| -> crate::error::Result<Box<dyn Write + Send>> {
                if path == "-" {
                    return Ok(Box::new(std::io::stderr()));
                }
                let f = std::fs::File::create(path).map_err(|e| {
                    crate::Error::io(format!("cannot write the hex dump to {path}"), &e)
                })?;
                Ok(Box::new(std::io::BufWriter::new(f)))
            })
            .transpose()?;
        Ok(Sink {
            out: out.map(Mutex::new),
            pcap,
            path: hex.unwrap_or_default().to_string(),
            failed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Traffic of one stream conversation between `local` and `remote` (`accepted`: the
    /// remote connected to us); packets too when capturing and both addresses are IP.
    pub fn stream(
        self: &Arc<Self>,
        peer: impl std::fmt::Display,
        local: Option<SocketAddr>,
        remote: Option<SocketAddr>,
        accepted: bool,
    ) -> Traffic {
        let mut t = self.traffic(peer);
        if let (Some(cap), Some(l), Some(r)) = (&self.pcap, local, remote) {
            t.wire = Some(if accepted {
                Wire::Tcp(cap.tcp(r, l), End::Server)
            } else {
                Wire::Tcp(cap.tcp(l, r), End::Client)
            });
        }
        t
    }

    /// Traffic of one datagram conversation between `local` and `remote`.
    pub fn datagrams(
        self: &Arc<Self>,
        peer: impl std::fmt::Display,
        local: Option<SocketAddr>,
        remote: Option<SocketAddr>,
    ) -> Traffic {
        let mut t = self.traffic(peer);
        if let (Some(cap), Some(l), Some(r)) = (&self.pcap, local, remote) {
            t.wire = Some(Wire::Udp(cap.clone(), l, r));
        }
        t
    }

    /// Traffic of a relay pair: the client's leg (client to the relay's address) and the
    /// target's leg (the relay's own address to the target); "sent" is client to target.
    pub fn relay(
        self: &Arc<Self>,
        peer: impl std::fmt::Display,
        client_leg: (Option<SocketAddr>, Option<SocketAddr>),
        target_leg: (Option<SocketAddr>, Option<SocketAddr>),
    ) -> Traffic {
        let mut t = self.traffic(peer);
        if let (Some(cap), (Some(c), Some(r)), (Some(l), Some(tg))) =
            (&self.pcap, client_leg, target_leg)
        {
            t.wire = Some(Wire::Relay(cap.tcp(c, r), cap.tcp(l, tg)));
        }
        t
    }

    /// Traffic of one connection with `peer`, dumped here.
    pub fn traffic(self: &Arc<Self>, peer: impl std::fmt::Display) -> Traffic {
        Traffic {
            sink: self.clone(),
            peer: peer.to_string(),
            offsets: [AtomicU64::new(0), AtomicU64::new(0)],
            wire: None,
        }
    }

    fn write(&self, text: &str) {
        use std::sync::atomic::Ordering;
        if self.failed.load(Ordering::Relaxed) {
            return;
        }
        let Some(out) = &self.out else { return };
        let mut out = out.lock().unwrap_or_else(PoisonError::into_inner);
        // A dump that cannot be written costs the dump, never the transfer: said once.
        let r = out.write_all(text.as_bytes()).and_then(|()| out.flush());
        if let Err(e) = r {
            if !self.failed.swap(true, Ordering::Relaxed) && self.path != "-" {
                crate::error::note(format_args!(
                    "cannot write the hex dump to {}: {}; the session goes on without it",
                    self.path,
                    crate::error::describe_io(&e)
                ));
            }
        }
    }
}

/// How a conversation's chunks become packets in the capture.
#[derive(Debug)]
enum Wire {
    /// A TCP flow, and which end "sent" is.
    Tcp(TcpFlow, End),
    /// UDP between our address and the peer's.
    Udp(Arc<crate::capture::Capture>, SocketAddr, SocketAddr),
    /// A relay's two legs: the client's, and ours to the target.
    Relay(TcpFlow, TcpFlow),
}

/// One connection's traffic on its way to a [`Sink`].
#[derive(Debug)]
pub struct Traffic {
    sink: Arc<Sink>,
    peer: String,
    offsets: [AtomicU64; 2],
    wire: Option<Wire>,
}

impl Traffic {
    /// The direction `dir` ended (its sender's FIN), as the capture shows it.
    pub fn ended(&self, dir: Direction) {
        match &self.wire {
            Some(Wire::Tcp(flow, sent_from)) => flow.fin(from(dir, *sent_from)),
            Some(Wire::Relay(client, target)) => {
                let end = from(dir, End::Client);
                // The relay passes the FIN on: first the leg it came in on.
                let (first, second) = match dir {
                    Direction::Sent => (client, target),
                    Direction::Received => (target, client),
                };
                first.fin(end);
                second.fin(end);
            }
            _ => {}
        }
    }

    /// The connection was reset (by the peer, as far as we can tell).
    pub fn reset(&self) {
        match &self.wire {
            Some(Wire::Tcp(flow, sent_from)) => flow.rst(from(Direction::Received, *sent_from)),
            Some(Wire::Relay(client, target)) => {
                target.rst(End::Server);
                client.rst(End::Server);
            }
            _ => {}
        }
    }

    /// Dumps one chunk that went `dir`.
    pub fn record(&self, dir: Direction, data: &[u8]) {
        match &self.wire {
            Some(Wire::Tcp(flow, sent_from)) => flow.data(from(dir, *sent_from), data),
            Some(Wire::Udp(cap, local, remote)) => match dir {
                Direction::Sent => cap.udp(*local, *remote, data),
                Direction::Received => cap.udp(*remote, *local, data),
            },
            Some(Wire::Relay(client, target)) => {
                let end = from(dir, End::Client);
                client.data(end, data);
                target.data(end, data);
            }
            None => {}
        }
        if data.is_empty() || self.sink.out.is_none() {
            return;
        }
        let (arrow, slot) = match dir {
            Direction::Sent => ('>', 0),
            Direction::Received => ('<', 1),
        };
        let at = self.offsets[slot].fetch_add(data.len() as u64, Ordering::Relaxed);
        let time = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ");
        let mut text = format!(
            "{arrow} {time} {} {} bytes at offset {at}\n",
            self.peer,
            data.len()
        );
        text.push_str(&xxd(at, data));
        self.sink.write(&text);
    }
}

/// The end a chunk going `dir` comes from, when "sent" comes from `sent_from`.
fn from(dir: Direction, sent_from: End) -> End {
    match (dir, sent_from) {
        (Direction::Sent, e) => e,
        (Direction::Received, End::Client) => End::Server,
        (Direction::Received, End::Server) => End::Client,
    }
}

/// `xxd`'s layout: `00000010: 6865 6c6c 6f0a                           hello.`
pub fn xxd(start: u64, data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() * 4 + 64);
    for (i, line) in data.chunks(16).enumerate() {
        let _ = write!(out, "{:08x}: ", start + (i * 16) as u64);
        for col in 0..16 {
            match line.get(col) {
                Some(b) => {
                    let _ = write!(out, "{b:02x}");
                }
                None => out.push_str("  "),
            }
            if col % 2 == 1 {
                out.push(' ');
            }
        }
        out.push(' ');
        out.extend(line.iter().map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        }));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_look_like_xxd() {
        assert_eq!(
            xxd(0, b"hello\n"),
            "00000000: 6865 6c6c 6f0a                           hello.\n"
        );
        let two = xxd(16, &[b'a'; 17]);
        assert!(two
            .starts_with("00000010: 6161 6161 6161 6161 6161 6161 6161 6161  aaaaaaaaaaaaaaaa\n"));
        assert!(two.ends_with("00000020: 61                                       a\n"));
    }
}

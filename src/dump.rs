//! `-x/--hex-dump FILE`: every chunk in both directions, as `xxd` shows bytes.
//!
//! Each chunk gets a header (direction, time, peer, length, offset counted per direction)
//! and `xxd`-style lines of 16 bytes: offset, hex in pairs, printable ASCII. One sink is
//! shared by every connection of a run (a line is never split between two connections);
//! each connection has its own [`Traffic`] with its own offsets.

use std::fmt::Write as _;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Which way a chunk went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `>`: sent to the peer (relay: client to target).
    Sent,
    /// `<`: received from the peer (relay: target to client).
    Received,
}

/// Where dumps go: a file, or stderr for `-`.
pub struct Sink {
    out: Mutex<Box<dyn Write + Send>>,
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
        let out: Box<dyn Write + Send> = if path == "-" {
            Box::new(std::io::stderr())
        } else {
            let f = std::fs::File::create(path).map_err(|e| {
                crate::Error::io(format!("cannot write the hex dump to {path}"), &e)
            })?;
            Box::new(std::io::BufWriter::new(f))
        };
        Ok(Arc::new(Sink {
            out: Mutex::new(out),
            path: path.to_string(),
            failed: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// Traffic of one connection with `peer`, dumped here.
    pub fn traffic(self: &Arc<Self>, peer: impl std::fmt::Display) -> Traffic {
        Traffic {
            sink: self.clone(),
            peer: peer.to_string(),
            offsets: [AtomicU64::new(0), AtomicU64::new(0)],
        }
    }

    fn write(&self, text: &str) {
        use std::sync::atomic::Ordering;
        if self.failed.load(Ordering::Relaxed) {
            return;
        }
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
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

/// One connection's traffic on its way to a [`Sink`].
#[derive(Debug)]
pub struct Traffic {
    sink: Arc<Sink>,
    peer: String,
    offsets: [AtomicU64; 2],
}

impl Traffic {
    /// Dumps one chunk that went `dir`.
    pub fn record(&self, dir: Direction, data: &[u8]) {
        if data.is_empty() {
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

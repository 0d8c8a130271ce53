//! `sockit bench`: a load generator against any endpoint, which checks every byte it gets
//! back. Modes: `stream` (throughput), `rr` (request/response latency, open-loop with
//! `--rate`), `connect` (connection rate, or `--hold` many idle ones), `fanout` (line rooms
//! such as `sockit chat` or `ncat --chat`). Loss, corruption and errors are counted and make
//! the run fail; every run ends by its deadline.

mod connect;
mod datagram;
mod fanout;
mod job;
pub mod pattern;
mod rr;
mod run;
pub mod stats;
mod stream;

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{json, Value};

pub use run::run;
pub use stats::Latency;

use crate::net::Dialer;

/// What a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Bytes per second, verified (or written only, with `sink`).
    Stream,
    /// Request/response round trips and their latency.
    Rr,
    /// Connections per second, or how many can be held open.
    Connect,
    /// One sender, many receivers of numbered lines.
    Fanout,
}

impl Mode {
    /// The message size of a run against `endpoint`: `asked` (`--size`), or the mode's
    /// default (64 KiB writes for a stream, 1 KiB datagrams, 64-byte requests).
    ///
    /// # Errors
    /// Zero bytes, or a UDP size no datagram can hold (in every mode: a stream of datagrams
    /// that cannot be sent is no benchmark).
    pub fn size(
        self,
        asked: Option<usize>,
        endpoint: &crate::Endpoint,
    ) -> crate::error::Result<usize> {
        use crate::error::{Error, ErrorKind};
        let size = asked.unwrap_or(match (self, endpoint.is_stream()) {
            (Mode::Stream, true) => 65_536,
            (Mode::Stream, false) => 1024,
            _ => 64,
        });
        if size == 0 {
            return Err(Error::new(
                ErrorKind::BadArgument,
                "bad --size 0",
                "use at least 1 byte",
            ));
        }
        if matches!(endpoint, crate::Endpoint::Udp(_)) && size > crate::net::MAX_UDP_PAYLOAD {
            return Err(Error::new(
                ErrorKind::BadArgument,
                format!("bad --size {size} for {endpoint}"),
                "a UDP datagram holds at most 65,507 bytes; use a smaller --size, or a stream (tcp://)",
            ));
        }
        Ok(size)
    }

    /// The name as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Stream => "stream",
            Mode::Rr => "rr",
            Mode::Connect => "connect",
            Mode::Fanout => "fanout",
        }
    }
}

/// A run's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The target, through the one dial (TLS, and every later layer, included).
    pub target: Dialer,
    /// What to measure.
    pub mode: Mode,
    /// Concurrent connections (fanout: receivers).
    pub conns: usize,
    /// The run ends by then at the latest.
    pub duration: Duration,
    /// Stop after this many operations in all (fanout: lines sent).
    pub count: Option<u64>,
    /// Bytes per request or per write.
    pub size: usize,
    /// Open-loop requests per second over all connections (rr, fanout).
    pub rate: Option<f64>,
    /// stream: write only, verify nothing (for discard and other sinks).
    pub sink: bool,
    /// connect: hold this many connections open until the end instead of cycling.
    pub hold: Option<usize>,
    /// How long one answer may take before it counts as lost.
    pub timeout: Duration,
    /// Show the live progress line on stderr.
    pub progress: bool,
    /// fanout: the sender joins here instead of at the target (another node of a room that
    /// spans several, `--send-to`).
    pub sender: Option<Dialer>,
    /// fanout: receivers are spread over the target and these (`--receivers-also`), in turn.
    pub receivers_also: Vec<Dialer>,
}

/// What a run measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The mode's name.
    pub mode: &'static str,
    /// The target, as written.
    pub endpoint: String,
    /// Connections asked for.
    pub conns: usize,
    /// Time measured.
    pub elapsed: Duration,
    /// Operations: requests, connections, deliveries; for stream, writes.
    pub ops: u64,
    /// Bytes verified (stream, rr) or written (sink).
    pub bytes: u64,
    /// Failures: refused connections, resets, corrupted bytes.
    pub errors: u64,
    /// Answers or lines that never arrived.
    pub lost: u64,
    /// Lines delivered twice (fanout).
    pub duplicated: u64,
    /// Lines delivered out of order (fanout).
    pub reordered: u64,
    /// Connections held open at the end (connect --hold).
    pub held: u64,
    /// Latency of rr requests.
    pub latency: Option<Latency>,
    /// `--rate`: the pacer's own lateness in µs (mean, max), reported apart from latency.
    pub pacer_late_us: Option<(u64, u64)>,
    /// The first error seen, for the message.
    pub first_error: Option<String>,
}

impl Report {
    /// True when nothing was lost, corrupted, duplicated or reordered and nothing failed.
    pub fn is_clean(&self) -> bool {
        self.errors == 0 && self.lost == 0 && self.duplicated == 0 && self.reordered == 0
    }

    fn per_sec(&self, n: u64) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            n as f64 / s
        } else {
            0.0
        }
    }

    /// Every figure as one JSON object.
    pub fn to_json(&self) -> Value {
        json!({
            "mode": self.mode, "endpoint": self.endpoint, "conns": self.conns,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "ops": self.ops, "ops_per_s": self.per_sec(self.ops),
            "bytes": self.bytes, "mib_per_s": self.per_sec(self.bytes) / 1_048_576.0,
            "errors": self.errors, "lost": self.lost, "duplicated": self.duplicated,
            "reordered": self.reordered, "held": self.held,
            "latency": self.latency.map(Latency::to_json),
            "pacer_late_us": self.pacer_late_us.map(|(mean, max)| json!({"mean": mean, "max": max})),
            "first_error": self.first_error, "ok": self.is_clean(),
        })
    }

    /// A short table for people.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "{} {} with {} connection(s), {:.2} s",
            self.mode,
            self.endpoint,
            self.conns,
            self.elapsed.as_secs_f64()
        );
        let what = match self.mode {
            "rr" => "requests",
            "connect" => "connections",
            "fanout" => "deliveries",
            _ => "writes",
        };
        let _ = writeln!(
            t,
            "  {what:<12} {:>12} {:>14.0}/s",
            self.ops,
            self.per_sec(self.ops)
        );
        if self.bytes > 0 {
            let _ = writeln!(
                t,
                "  {:<12} {:>12} {:>12.1} MiB/s",
                "bytes",
                self.bytes,
                self.per_sec(self.bytes) / 1_048_576.0
            );
        }
        if let Some(l) = self.latency {
            let _ = writeln!(
                t,
                "  latency µs   p50 {} p90 {} p99 {} p99.9 {} max {}",
                l.p50, l.p90, l.p99, l.p999, l.max
            );
        }
        if let Some((mean, max)) = self.pacer_late_us {
            let _ = writeln!(
                t,
                "  pacer late µs mean {mean} max {max} (the generator's timer, not in latency)"
            );
        }
        if self.held > 0 {
            let _ = writeln!(t, "  {:<12} {:>12}", "held open", self.held);
        }
        let _ = writeln!(
            t,
            "  errors {}  lost {}  duplicated {}  reordered {}",
            self.errors, self.lost, self.duplicated, self.reordered
        );
        if let Some(e) = &self.first_error {
            let _ = writeln!(t, "  first error: {e}");
        }
        t
    }
}

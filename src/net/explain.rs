//! `--explain`: the socket calls the tutorial teaches, printed on stderr as they happen and
//! written as the tutorial's Python would write them (`sk.bind(('127.0.0.1', 8898))`), so a
//! reader of the tutorial recognises every step of a real run.
//!
//! It is a process-wide switch, like the log level: the socket code calls [`say`] (or a
//! [`Conn`]'s methods) unconditionally, and nothing is formatted unless `--explain` is on.
//! Each connection gets the name a Python program would give it: `sk` for the socket a
//! client connects, `conn`, `conn2`, ... for those a server accepts.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use super::base::Peer;

static ON: AtomicBool = AtomicBool::new(false);
static ACCEPTED: AtomicU64 = AtomicU64::new(0);
static DIALED: AtomicU64 = AtomicU64::new(0);
/// A server socket exists: sockets this process connects are then `up`, `up2`, ... (a
/// relay's connections to its target), since `sk` is the server's.
static SERVING: AtomicBool = AtomicBool::new(false);
/// The name each connection got when it was made, by peer, until its conversation asks.
static NAMES: Mutex<Option<HashMap<String, String>>> = Mutex::new(None);

/// How much of the data a `recv`/`send` line shows.
const PREVIEW: usize = 40;
/// The buffer size the lines show for `recv` (what the pump reads at most).
pub const RECV_SIZE: usize = 65536;

/// Turns explaining on for the rest of the run.
pub fn enable() {
    ON.store(true, Ordering::Relaxed);
}

/// Whether `--explain` is on.
pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Prints one call (made by `line`, called only when explaining).
pub fn say(line: impl FnOnce() -> String) {
    if on() {
        use std::io::Write;
        let mut text = line();
        text.push('\n');
        // One write, so a line is never split by another thread's or a signal's timing.
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }
}

/// A call and what came of it, the outcome as a comment lined up after the call.
pub fn call(code: &str, outcome: &str) -> String {
    if outcome.is_empty() {
        code.to_string()
    } else {
        format!("{code:<44} # {outcome}")
    }
}

/// An address as Python's `socket` takes it: `('127.0.0.1', 8898)`, `('::1', 8898, 0, 0)`.
pub fn addr(a: &SocketAddr) -> String {
    match a {
        SocketAddr::V4(v4) => format!("('{}', {})", v4.ip(), v4.port()),
        SocketAddr::V6(v6) => format!(
            "('{}', {}, {}, {})",
            v6.ip(),
            v6.port(),
            v6.flowinfo(),
            v6.scope_id()
        ),
    }
}

/// A peer as Python shows `addr`: an address tuple, or a Unix path as a string.
pub fn peer(p: &Peer) -> String {
    match p {
        Peer::Ip(a) => addr(a),
        Peer::Unix(Some(a)) => format!("'{a}'"),
        Peer::Unix(None) => "''".into(),
    }
}

/// An error as Python raises it: `ConnectionRefusedError: [Errno 111] Connection refused`.
pub fn error(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    let class = match e.kind() {
        K::ConnectionRefused => "ConnectionRefusedError",
        K::ConnectionReset => "ConnectionResetError",
        K::ConnectionAborted => "ConnectionAbortedError",
        K::BrokenPipe => "BrokenPipeError",
        K::TimedOut => "TimeoutError",
        K::PermissionDenied => "PermissionError",
        K::NotFound => "FileNotFoundError",
        _ => "OSError",
    };
    match e.raw_os_error() {
        Some(n) => {
            let text = e.to_string();
            let text = text.split(" (os error").next().unwrap_or(&text).to_string();
            format!("{class}: [Errno {n}] {text}")
        }
        None => format!("{class}: {e}"),
    }
}

/// `socket.AF_INET`, `socket.AF_INET6` or `socket.AF_UNIX`, for `socket.socket(...)`.
pub fn family(a: Option<&SocketAddr>) -> &'static str {
    match a {
        Some(SocketAddr::V4(_)) => "socket.AF_INET",
        Some(SocketAddr::V6(_)) => "socket.AF_INET6",
        None => "socket.AF_UNIX",
    }
}

/// `socket.SOCK_STREAM` or `socket.SOCK_DGRAM`.
pub fn kind(stream: bool) -> &'static str {
    if stream {
        "socket.SOCK_STREAM"
    } else {
        "socket.SOCK_DGRAM"
    }
}

/// Bytes as Python's `repr` writes them (`b'hi\n'`), cut after a short preview.
pub fn bytes(data: &[u8]) -> String {
    let mut out = String::from("b'");
    for &b in data.iter().take(PREVIEW) {
        match b {
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b'\\' => out.push_str("\\\\"),
            b'\'' => out.push_str("\\'"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('\'');
    if data.len() > PREVIEW {
        out.push_str("...");
    }
    out
}

/// A listening socket was made (`sk`): later client sockets get names of their own.
pub fn serving() {
    SERVING.store(true, Ordering::Relaxed);
}

/// The name for a socket this process is about to connect: `sk` for a client, `up`,
/// `up2`, ... for a server's connections onward.
pub fn dial_name() -> String {
    if !on() || !SERVING.load(Ordering::Relaxed) {
        return "sk".into();
    }
    match DIALED.fetch_add(1, Ordering::Relaxed) + 1 {
        1 => "up".into(),
        n => format!("up{n}"),
    }
}

/// A server accepted `peer`: prints `conn, addr = sk.accept()` and names the connection.
pub fn accepted(p: &Peer) {
    if !on() {
        return;
    }
    let n = ACCEPTED.fetch_add(1, Ordering::Relaxed) + 1;
    let (conn, a) = if n == 1 {
        ("conn".to_string(), "addr".to_string())
    } else {
        (format!("conn{n}"), format!("addr{n}"))
    };
    say(|| {
        call(
            &format!("{conn}, {a} = sk.accept()"),
            &format!("{a} = {}", peer(p)),
        )
    });
    name(p, conn);
}

/// A client's socket, named `as_name`, is connected to `p`.
pub fn connected(p: &Peer, as_name: String) {
    if on() {
        name(p, as_name);
    }
}

/// The name the connection with `p` got (`conn` when it has none).
pub fn name_of(p: &Peer) -> String {
    NAMES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .and_then(|n| n.get(&p.to_string()).cloned())
        .unwrap_or_else(|| "conn".into())
}

fn name(p: &Peer, name: String) {
    let mut names = NAMES.lock().unwrap_or_else(PoisonError::into_inner);
    names
        .get_or_insert_with(HashMap::new)
        .insert(p.to_string(), name);
}

/// The calls of one connection: what it receives and sends, its shutdown and its close.
#[derive(Debug)]
pub struct Conn {
    name: String,
}

impl Conn {
    /// The connection with `p`, under the name it got when made; `None` unless explaining.
    pub fn of(p: &Peer) -> Option<std::sync::Arc<Conn>> {
        if !on() {
            return None;
        }
        let name = NAMES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
            .and_then(|n| n.remove(&p.to_string()))
            .unwrap_or_else(|| "conn".into());
        Some(std::sync::Arc::new(Conn { name }))
    }

    /// The connection's name in the transcript (`sk`, `conn`, `conn2`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `recv` returned `data` (empty: the peer's EOF).
    pub fn recv(&self, data: &[u8]) {
        say(|| {
            let code = format!("data = {}.recv({RECV_SIZE})", self.name);
            if data.is_empty() {
                call(&code, "b'': the peer shut down its side (EOF)")
            } else {
                call(&code, &format!("{} bytes: {}", data.len(), bytes(data)))
            }
        });
    }

    /// `sendall(data)` is about to run.
    pub fn send(&self, data: &[u8]) {
        say(|| {
            call(
                &format!("{}.sendall({})", self.name, bytes(data)),
                &format!("{} bytes", data.len()),
            )
        });
    }

    /// Our side is done sending.
    pub fn shutdown(&self) {
        say(|| {
            call(
                &format!("{}.shutdown(socket.SHUT_WR)", self.name),
                "we send no more",
            )
        });
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        say(|| format!("{}.close()", self.name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_shown_as_python_shows_them() {
        assert_eq!(bytes(b"hi\n"), "b'hi\\n'");
        assert_eq!(bytes(b"it's \\ \x00\xff"), "b'it\\'s \\\\ \\x00\\xff'");
        assert_eq!(bytes(&[b'a'; 50]), format!("b'{}'...", "a".repeat(40)));
    }

    #[test]
    fn addresses_are_python_tuples() {
        assert_eq!(
            addr(&"127.0.0.1:8898".parse().unwrap()),
            "('127.0.0.1', 8898)"
        );
        assert_eq!(addr(&"[::1]:8898".parse().unwrap()), "('::1', 8898, 0, 0)");
    }
}

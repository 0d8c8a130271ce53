//! The one error type of sockit, and the hints that turn an error into a next step.
//!
//! Every error a user can see is one line, `WHAT: WHY`, built here so the wording stays
//! consistent; [`Error::hint`] maps each kind to what the user can do about it. Kinds are
//! matched by the binary (a closed stdout is a quiet exit, not a failure), so they are public.

use std::fmt;
use std::io;

/// What went wrong, coarse enough to choose a hint and an exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An endpoint could not be parsed; carries a correct example.
    BadEndpoint {
        /// A well-formed endpoint close to what the user meant.
        example: String,
    },
    /// A command-line value other than an endpoint was malformed (a CIDR, a number).
    BadArgument,
    /// `connect -z`'s HOST:PORTS could not be parsed.
    BadPortCheck,
    /// The host has addresses, but none of the family `-4`/`-6` (or `-s`) asks for.
    WrongFamily,
    /// The address is taken; carries the process holding it when `/proc` tells.
    AddrInUse {
        /// `name (pid N)` of the process that holds the port, when known.
        holder: Option<String>,
    },
    /// A Unix socket path has a live listener behind it.
    UnixInUse,
    /// A path exists but is not a socket, so sockit refuses to replace it.
    NotASocket,
    /// Windows refused a port (WSAEACCES, 10013): reserved by the system or blocked.
    PortBlocked,
    /// Binding a port below 1024 without the privilege to do so.
    PrivilegedPort,
    /// The operating system refused access (a Unix socket path, a read-only directory).
    PermissionDenied,
    /// Nothing listens at the other end.
    ConnectionRefused,
    /// A host name did not resolve to any address.
    NotResolved,
    /// A connection or handshake took longer than allowed.
    TimedOut,
    /// The peer reset the connection (RST).
    Reset,
    /// stdout was closed by its reader (`| head`): the end of the job, not a failure.
    StdoutClosed,
    /// A feature that this build does not provide yet.
    Unsupported,
    /// A TLS handshake or certificate check failed.
    Tls,
    /// A TLS handshake did not finish in time (`--handshake-timeout`, not `-w`).
    TlsTimedOut,
    /// A QUIC handshake got no answer in time: nothing there, or UDP blocked.
    QuicTimedOut,
    /// A WebSocket upgrade was refused or failed (a wrong path, not a WebSocket server).
    Ws,
    /// A configuration file (certificate, key, CA) or option combination was unusable.
    Config,
    /// A proxy (`--proxy`) refused to open the tunnel, or could not be used.
    ProxyRefused,
    /// The proxy itself (`--proxy`) could not be reached: refused, timed out, unroutable.
    ProxyUnreachable,
    /// A proxy's negotiation did not finish in time (`--handshake-timeout`).
    ProxyTimedOut,
    /// A tunnel gateway refused to register us (a wrong secret, a port another client holds).
    TunnelRefused,
    /// `connect -z` found no open port: exit status 1, nothing to print (netcat's rule).
    NothingOpen,
    /// Any other I/O failure.
    Io,
}

/// A datagram too long for the socket (EMSGSIZE; WSAEMSGSIZE on Windows).
pub(crate) fn is_message_too_long(e: &io::Error) -> bool {
    #[cfg(unix)]
    return e.raw_os_error() == Some(rustix::io::Errno::MSGSIZE.raw_os_error());
    #[cfg(not(unix))]
    return e.raw_os_error() == Some(10040);
}

/// An error with a sentence for people: `what` failed, `why`, and a kind for the hint; the
/// underlying error, when there is one, stays reachable through `source()`. Its `Debug`
/// form is the sentence too, so `fn main() -> Result<(), sockit::Error>` (the examples)
/// prints words, not a struct.
pub struct Error {
    kind: ErrorKind,
    what: String,
    why: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds an error from its parts; `what` is the action, `why` the reason.
    pub fn new(kind: ErrorKind, what: impl Into<String>, why: impl Into<String>) -> Self {
        Error {
            kind,
            what: what.into(),
            why: why.into(),
            source: None,
        }
    }

    /// Keeps `source` as the cause (`std::error::Error::source`); the message is unchanged.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Wraps an I/O error from doing `what`, classifying it so the right hint follows.
    pub fn io(what: impl Into<String>, err: &io::Error) -> Self {
        let kind = match err.kind() {
            io::ErrorKind::AddrInUse => ErrorKind::AddrInUse { holder: None },
            io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
            io::ErrorKind::ConnectionRefused => ErrorKind::ConnectionRefused,
            io::ErrorKind::TimedOut => ErrorKind::TimedOut,
            io::ErrorKind::ConnectionReset => ErrorKind::Reset,
            io::ErrorKind::BrokenPipe if is_stdout_closed(err) => ErrorKind::StdoutClosed,
            _ => ErrorKind::Io,
        };
        Error::new(kind, what, describe_io(err)).with_source(copy_io(err))
    }

    /// stdout's reader went away: the one way writing our output fails, and a quiet exit 0.
    pub fn stdout_closed() -> Self {
        Error::io("cannot write stdout", &stdout_closed())
    }

    /// Why it failed, without the action (for a caller that names the action itself).
    pub fn why(&self) -> &str {
        &self.why
    }

    /// The kind, for callers that react differently to different failures.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// Replaces the kind (used when the context knows better than the errno).
    pub fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }

    /// A next step for the user, when there is a useful one.
    pub fn hint(&self) -> Option<String> {
        match &self.kind {
            ErrorKind::BadEndpoint { example } => Some(format!(
                "write endpoints like {example} (schemes: tcp:// udp:// tls:// quic:// unix: unixgram: ws:// wss://)"
            )),
            ErrorKind::AddrInUse { holder: Some(h) } => Some(format!(
                "{h} holds it; stop it, or choose another port (port 0 picks a free one)"
            )),
            ErrorKind::BadPortCheck => Some(
                "write HOST:PORTS, such as 127.0.0.1:22 or 127.0.0.1:20-25,80 (udp://HOST:PORTS for UDP)"
                    .into(),
            ),
            ErrorKind::WrongFamily => Some(
                "drop -4/-6, or give a host of that family (127.0.0.1 is IPv4, [::1] is IPv6)"
                    .into(),
            ),
            ErrorKind::AddrInUse { holder: None } => Some(
                "another program holds it; choose another port (port 0 picks a free one)".into(),
            ),
            ErrorKind::UnixInUse => {
                Some("another server listens there; stop it or choose another path".into())
            }
            ErrorKind::NotASocket => {
                Some("choose another path; sockit only replaces stale socket files".into())
            }
            ErrorKind::PortBlocked => Some(
                "try another port (port 0 picks a free one); `netsh interface ipv4 show excludedportrange protocol=tcp` lists the reserved ones".into(),
            ),
            ErrorKind::PrivilegedPort => Some(
                "ports below 1024 need root or CAP_NET_BIND_SERVICE; use a port above 1023".into(),
            ),
            ErrorKind::PermissionDenied => {
                Some("check the permissions of the path or run as a user allowed to use it".into())
            }
            ErrorKind::ConnectionRefused => Some(
                "is a server listening there? start one with `sockit listen` on that endpoint"
                    .into(),
            ),
            ErrorKind::NotResolved => {
                Some("check the spelling of the host name, or use an IP address".into())
            }
            ErrorKind::TimedOut => Some(
                "the host may be down or filtered; raise the limit with -w/--connect-timeout"
                    .into(),
            ),
            ErrorKind::Unsupported => Some("see `sockit --help` for what this build does".into()),
            ErrorKind::ProxyRefused => Some(
                "check --proxy (its scheme, USER:PASS@) and which targets the proxy allows".into(),
            ),
            ErrorKind::ProxyUnreachable => Some(
                "is a proxy running there? check the HOST:PORT of --proxy (-w bounds the wait)"
                    .into(),
            ),
            ErrorKind::ProxyTimedOut => Some(
                "is it that kind of proxy? raise the limit with --handshake-timeout SECS".into(),
            ),
            ErrorKind::Ws => Some(
                "check the path (ws://HOST:PORT/PATH) and that the server speaks WebSocket there"
                    .into(),
            ),
            ErrorKind::TunnelRefused if self.why.contains("secret") => Some(
                "give both sides the same secret: --secret-file FILE or the SOCKIT_SECRET variable".into(),
            ),
            ErrorKind::TunnelRefused if self.why.contains("version") => {
                Some("run the same sockit version on the gateway and here".into())
            }
            ErrorKind::TunnelRefused => Some(
                "leave --port out to take any free port of the gateway's range, or ask for another".into(),
            ),
            ErrorKind::TlsTimedOut => {
                Some("is it a TLS server? raise the limit with --handshake-timeout SECS".into())
            }
            ErrorKind::QuicTimedOut => {
                Some("raise the limit with --handshake-timeout SECS if the path is slow".into())
            }
            _ => None,
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")?;
        if let Some(hint) = self.hint() {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.why)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// An owned copy of an I/O error (they are not `Clone`): the errno when there is one.
fn copy_io(err: &io::Error) -> io::Error {
    match err.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(err.kind(), err.to_string()),
    }
}

/// Carried inside an `io::Error` when our own stdin or stdout failed (a directory on
/// stdin, a full disk on stdout), so the failure is reported as theirs and not as the
/// connection's ("connection ... failed: is a directory" would send a user the wrong way).
#[derive(Debug)]
pub(crate) struct StdioFailed {
    /// `cannot read stdin` or `cannot write stdout`.
    pub(crate) what: &'static str,
    /// The reason in words.
    pub(crate) why: String,
}

impl fmt::Display for StdioFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.why)
    }
}

impl std::error::Error for StdioFailed {}

/// Marks `e` as a failure of our own stdin or stdout (`what` says which).
pub(crate) fn stdio_failed(what: &'static str, e: &io::Error) -> io::Error {
    io::Error::new(
        e.kind(),
        StdioFailed {
            what,
            why: describe_io(e),
        },
    )
}

impl Error {
    /// The error for a conversation that ended with `e`: our stdio's failure said as such,
    /// anything else as the connection's (`connection with PEER failed: ...`).
    pub fn conversation(peer: impl fmt::Display, e: &io::Error) -> Error {
        match e.get_ref().and_then(|i| i.downcast_ref::<StdioFailed>()) {
            Some(f) => Error::new(ErrorKind::Io, f.what, f.why.clone()),
            None => Error::io(format!("connection with {peer} failed"), e),
        }
    }
}

/// Marker carried inside an `io::Error` when stdout's reader went away.
#[derive(Debug)]
pub(crate) struct StdoutClosed;

impl fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stdout was closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// An `io::Error` meaning "our stdout was closed by its reader".
/// A warning for the person at the terminal, as one plain line on stderr (`sockit: ...`,
/// the shape of an error line), shown unless `-q` turned warnings off. A stderr that
/// cannot take it costs the line, never the run.
pub fn note(line: impl std::fmt::Display) {
    use std::io::Write;
    if tracing::enabled!(tracing::Level::WARN) {
        let _ = writeln!(std::io::stderr().lock(), "sockit: {line}");
    }
}

pub(crate) fn stdout_closed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, StdoutClosed)
}

fn is_stdout_closed(err: &io::Error) -> bool {
    err.get_ref().is_some_and(|e| e.is::<StdoutClosed>())
}

/// Lower-case, errno-free wording of an I/O error ("connection refused", not
/// "Connection refused (os error 111)").
pub fn describe_io(err: &io::Error) -> String {
    if err.raw_os_error().is_none() {
        if let Some(inner) = err.get_ref() {
            // Layers (TLS in `net`) put their errors in words before they get here.
            return inner.to_string();
        }
    }
    let text = match err.kind() {
        io::ErrorKind::AddrInUse => "address already in use".to_string(),
        io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        io::ErrorKind::ConnectionReset => "connection reset by peer".to_string(),
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        io::ErrorKind::TimedOut => "timed out".to_string(),
        io::ErrorKind::NotFound => "no such file or directory".to_string(),
        io::ErrorKind::AddrNotAvailable => "address not available on this machine".to_string(),
        _ => {
            let s = err.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_read_like_sentences() {
        let e = Error::io(
            "cannot connect to tcp://127.0.0.1:1",
            &io::Error::from(io::ErrorKind::ConnectionRefused),
        );
        assert_eq!(
            e.to_string(),
            "cannot connect to tcp://127.0.0.1:1: connection refused"
        );
        assert_eq!(e.kind(), &ErrorKind::ConnectionRefused);
        assert!(e.hint().is_some_and(|h| h.contains("sockit listen")));
    }

    #[test]
    fn os_errors_lose_their_errno_suffix() {
        let e = io::Error::from_raw_os_error(libc_enotdir());
        assert_eq!(describe_io(&e), "not a directory");
    }

    fn libc_enotdir() -> i32 {
        20
    }

    #[test]
    fn the_debug_form_is_the_sentence() {
        let e = Error::io(
            "cannot connect to tcp://127.0.0.1:1",
            &io::Error::from(io::ErrorKind::ConnectionRefused),
        );
        let debug = format!("{e:?}");
        assert!(
            debug.starts_with("cannot connect to tcp://127.0.0.1:1: connection refused\nhint: "),
            "{debug}"
        );
        assert!(!debug.contains("kind"), "{debug}");
        assert!(std::error::Error::source(&e).is_some(), "the cause is kept");
    }

    #[test]
    fn stdout_closed_is_recognised() {
        let e = Error::io("writing stdout", &stdout_closed());
        assert_eq!(e.kind(), &ErrorKind::StdoutClosed);
    }
}

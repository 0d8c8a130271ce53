//! The one server admission: every server command (listen, listen -k, relay, chat, serve)
//! takes its clients through an [`Admission`], built once from the command line's limits.
//!
//! - stream servers: [`Admission::serve`] owns the accept loop: access rules, `--max-conns`,
//!   a back-off when `accept` fails (EMFILE), the task per client, and inside that task the
//!   layers' handshakes (TLS, then the WebSocket upgrade) under `--handshake-timeout`, so a
//!   stalled client holds only its own socket. The command says only what to do with a
//!   ready client.
//! - datagram servers: [`Admission::receive`] is the gate, a receive that lets through only
//!   datagrams from permitted peers.
//! - `access`: the CIDR rules and the connection limit themselves.

pub mod access;
mod datagram;
mod stream;

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use access::{Access, ConnLimit};
pub use datagram::Incoming;

use crate::net::{tls, ws};

/// How long open connections may finish after SIGTERM or Ctrl-C, unless `--drain` says.
pub const DRAIN: Duration = Duration::from_secs(10);

/// Who may come in and how many at once: the common server options, as plain values.
#[derive(Debug, Clone)]
pub struct Limits {
    /// `--allow`/`--deny`.
    pub access: Access,
    /// `--accept-proxy`: the proxies whose PROXY protocol headers are taken (`--proxy-from`);
    /// every stream connection must come from one and start with a header.
    pub proxied: Option<Access>,
    /// `--max-conns`: stream clients (or datagram peers) at once.
    pub max_conns: Option<usize>,
    /// `--idle-timeout`: a client quiet this long is closed (each command says how).
    pub idle_timeout: Option<Duration>,
    /// `--handshake-timeout`: the deadline of every layer's handshake (TLS, proxy
    /// negotiation).
    pub handshake_timeout: Duration,
    /// `--drain`: how long open connections may go on after shutdown begins.
    pub drain: Duration,
    /// Fires when the drain is over (its time is up, or a second Ctrl-C): what is still
    /// open is cut. The command line's signal watcher owns it.
    pub cut: CancellationToken,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            access: Access::default(),
            proxied: None,
            max_conns: None,
            idle_timeout: None,
            handshake_timeout: tls::HANDSHAKE_TIMEOUT,
            drain: DRAIN,
            cut: CancellationToken::new(),
        }
    }
}

/// The admission of one server process: shared by every endpoint it serves, so
/// `--max-conns` counts clients over all of them.
#[derive(Debug, Clone)]
pub struct Admission {
    limits: Limits,
    conns: ConnLimit,
    tls: Option<tls::Server>,
    ws: ws::Options,
    page: Option<&'static str>,
    tasks: TaskTracker,
}

impl Admission {
    /// Admission under `limits`, with `tls` for the `tls://` endpoints it serves.
    pub fn new(limits: Limits, tls: Option<tls::Server>) -> Admission {
        Admission {
            conns: ConnLimit::new(limits.max_conns),
            limits,
            tls,
            ws: ws::Options::default(),
            page: None,
            tasks: TaskTracker::new(),
        }
    }

    /// The options of the WebSocket connections it upgrades (`ws://`, `wss://`).
    #[must_use]
    pub fn with_ws(mut self, opts: ws::Options) -> Admission {
        self.ws = opts;
        self
    }

    /// A page to serve at `/` of its `http://` endpoints (chat's), whose WebSocket is
    /// at `/ws`.
    #[must_use]
    pub fn with_page(mut self, page: &'static str) -> Admission {
        self.page = Some(page);
        self
    }

    /// The limits it was built from (idle timeout, peer limit for datagram servers).
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The client tasks it started: a server waits on them at shutdown (chat's farewell).
    pub fn tasks(&self) -> &TaskTracker {
        &self.tasks
    }

    /// Shutdown has begun and the caller accepts nobody new: the open connections get to
    /// finish, until they all have or the drain is over ([`Limits::cut`]). Returns whether
    /// every one finished.
    pub async fn drain(&self) -> bool {
        self.tasks.close();
        if self.tasks.is_empty() {
            return true;
        }
        if self.limits.cut.is_cancelled() {
            // Cut already (a second signal, or nothing left to serve for): no drain.
            return false;
        }
        tracing::warn!(
            open = self.tasks.len(),
            drain_s = self.limits.drain.as_secs_f64(),
            "letting open connections finish (Ctrl-C again to stop now)"
        );
        tokio::select! {
            () = self.tasks.wait() => true,
            () = self.limits.cut.cancelled() => {
                tracing::warn!(open = self.tasks.len(), "drain over: cutting what is still open");
                false
            }
        }
    }
}

impl Default for Admission {
    fn default() -> Self {
        Admission::new(Limits::default(), None)
    }
}

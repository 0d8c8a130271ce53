//! `sockit relay LISTEN TARGET`: each client gets its own connection to TARGET.
//!
//! Streams are joined by the [`pump`](crate::pump), so half-close passes through in both
//! directions and either side failing ends the pair. Datagrams get one upstream socket per
//! client address (so answers find their way back), forgotten after an idle timeout.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::access::{Access, ConnLimit};
use crate::endpoint::Endpoint;
use crate::error::Result;
use crate::net::{self, Datagram, Listener, Peer, Stream};
use crate::pump::{self, Activity};

/// How long a datagram client's upstream socket lives without traffic, unless told otherwise.
pub const DATAGRAM_IDLE: Duration = Duration::from_secs(60);

/// Options of `relay`.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Who may use the relay.
    pub access: Access,
    /// At most this many clients at once.
    pub max_conns: Option<usize>,
    /// End a pair (or forget a datagram client) after this long without traffic.
    pub idle_timeout: Option<Duration>,
    /// Bound on each connection attempt to the target.
    pub connect_timeout: Option<Duration>,
    /// TLS termination: clients of a `tls://` LISTEN handshake with this.
    pub server_tls: Option<crate::tls::Server>,
    /// TLS origination: how a `tls://` TARGET is trusted.
    pub client_tls: Option<crate::tls::Client>,
}

/// Relays every stream client of `listener` to its own connection to `target`.
///
/// # Errors
/// None today: a failed client or target is logged and the relay goes on.
pub async fn run_stream(
    listener: Listener,
    target: Endpoint,
    cfg: &Config,
    shutdown: CancellationToken,
) -> Result<()> {
    let limit = ConnLimit::new(cfg.max_conns);
    let target = Arc::new(target);
    let admit = |client: Stream, peer: Peer, permit| {
        let (target, cfg) = (target.clone(), cfg.clone());
        tokio::spawn(async move {
            let Some(client) = crate::tls::accept(cfg.server_tls.as_ref(), client, &peer).await
            else {
                return;
            };
            pair(client, &peer, &target, &cfg).await;
            drop(permit);
        });
    };
    tokio::select! {
        () = crate::accept::run(&listener, &cfg.access, &limit, "", admit) => Ok(()),
        () = shutdown.cancelled() => Ok(()),
    }
}

/// One client joined to its own connection to `target`, until both directions end.
async fn pair(client: Stream, peer: &Peer, target: &Endpoint, cfg: &Config) {
    let started = std::time::Instant::now();
    let connected = match (target, &cfg.client_tls) {
        (Endpoint::Tls(hp), Some(tls)) => crate::tls::connect(hp, cfg.connect_timeout, tls).await,
        _ => net::connect(target, cfg.connect_timeout).await,
    };
    let upstream = match connected {
        Ok((s, _)) => s,
        Err(e) => {
            tracing::warn!(%peer, "closing the client: {e}");
            return;
        }
    };
    let duration_ms = || started.elapsed().as_millis() as u64;
    if cfg.idle_timeout.is_none() && !client.is_tls() && !upstream.is_tls() {
        // Plain sockets both sides: bytes go through kernel pipes, never through our memory.
        match crate::splice::relay(&client, &upstream).await {
            Ok((up, down, client_first)) => tracing::info!(%peer, %target, bytes_up = up,
                bytes_down = down, duration_ms = duration_ms(),
                end = if client_first { "client closed first" } else { "target closed first" },
                "pair closed"),
            Err(e) => tracing::info!(%peer, %target, error = %e, duration_ms = duration_ms(),
                "pair failed"),
        }
        return;
    }
    let opts = pump::Options {
        idle_timeout: cfg.idle_timeout,
        ..pump::Options::default()
    };
    match pump::pump(client, upstream, &opts).await {
        Ok(r) => tracing::info!(%peer, %target, bytes_up = r.sent, bytes_down = r.received,
            duration_ms = duration_ms(), end = ?r.end, "pair closed"),
        Err(e) => tracing::info!(%peer, %target, error = %e, duration_ms = duration_ms(),
            "pair failed"),
    }
}

struct Upstream {
    sock: Datagram,
    activity: Activity,
}

/// Relays datagrams from every client of `sock` through a socket of its own to `target`.
///
/// # Errors
/// None today: failures are logged and the relay goes on.
pub async fn run_datagram(
    sock: Datagram,
    target: Endpoint,
    cfg: &Config,
    shutdown: CancellationToken,
) -> Result<()> {
    let sock = Arc::new(sock);
    let idle = cfg.idle_timeout.unwrap_or(DATAGRAM_IDLE);
    let clients: Arc<Mutex<HashMap<Peer, Arc<Upstream>>>> = Arc::default();
    let mut buf = vec![0u8; 65_535];
    loop {
        let (n, peer) = tokio::select! {
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!(error = %e, "receive failed");
                    continue;
                }
            },
            () = shutdown.cancelled() => return Ok(()),
        };
        if !cfg.access.permits(&peer) {
            tracing::warn!(%peer, "refused: not allowed by --allow/--deny");
            continue;
        }
        let known = clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&peer)
            .cloned();
        let up = match known {
            Some(up) => up,
            None => {
                let count = clients.lock().unwrap_or_else(PoisonError::into_inner).len();
                if cfg.max_conns.is_some_and(|m| count >= m) {
                    tracing::warn!(%peer, "refused: client limit reached (--max-conns)");
                    continue;
                }
                let up = match net::connect_datagram(&target).await {
                    Ok((s, _)) => Arc::new(Upstream {
                        sock: s,
                        activity: Activity::new(),
                    }),
                    Err(e) => {
                        tracing::warn!(%peer, "dropping a datagram: {e}");
                        continue;
                    }
                };
                tracing::info!(%peer, target = %target, "new datagram client");
                clients
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(peer.clone(), up.clone());
                tokio::spawn(answer_back(
                    up.clone(),
                    sock.clone(),
                    peer.clone(),
                    clients.clone(),
                    idle,
                    shutdown.clone(),
                ));
                up
            }
        };
        up.activity.touch();
        if let Err(e) = up.sock.send(&buf[..n]).await {
            tracing::debug!(%peer, error = %e, "send to the target failed");
        }
    }
}

/// Carries the target's answers back to one client until it has been idle for `idle`.
async fn answer_back(
    up: Arc<Upstream>,
    sock: Arc<Datagram>,
    peer: Peer,
    clients: Arc<Mutex<HashMap<Peer, Arc<Upstream>>>>,
    idle: Duration,
    shutdown: CancellationToken,
) {
    let mut buf = vec![0u8; 65_535];
    loop {
        tokio::select! {
            r = up.sock.recv(&mut buf) => match r {
                Ok(n) => {
                    up.activity.touch();
                    if let Err(e) = sock.send_to(&buf[..n], &peer).await {
                        tracing::debug!(%peer, error = %e, "answer not delivered");
                    }
                }
                Err(e) => tracing::debug!(%peer, error = %e, "target did not answer"),
            },
            () = up.activity.idle(Some(idle)) => break,
            () = shutdown.cancelled() => break,
        }
    }
    clients
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&peer);
    tracing::info!(%peer, "datagram client forgotten (idle)");
}

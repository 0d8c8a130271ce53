//! `sockit relay LISTEN TARGET`: each client gets its own connection to TARGET.
//!
//! Streams are joined by the [`crate::pump`], so half-close passes through in both
//! directions and either side failing ends the pair. Datagrams get one upstream socket per
//! client address (so answers find their way back), forgotten after an idle timeout.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::net::{Datagram, Dialer, Listener, Peer, Stream, MAX_DATAGRAM};
use crate::pump::{self, Activity};
use crate::server::Admission;

/// How long a datagram client's upstream socket lives without traffic, unless told otherwise.
pub const DATAGRAM_IDLE: Duration = Duration::from_secs(60);

/// Checks that `from` and `to` can be relayed: both streams or both datagrams.
///
/// # Errors
/// A stream to a datagram kind (or back), with the kinds that go together.
pub fn check_kinds(from: &crate::Endpoint, to: &crate::Endpoint) -> Result<()> {
    if from.is_stream() != to.is_stream() {
        return Err(crate::error::Error::new(
            crate::error::ErrorKind::BadArgument,
            format!("cannot relay {from} to {to}"),
            "both sides must be streams (tcp, tls, unix, ws, wss) or both datagrams (udp, unixgram)",
        ));
    }
    Ok(())
}

/// Where stream clients go: the one dial (TLS origination, a proxy hop), and whether each
/// connection starts with a PROXY protocol header naming the client (`--send-proxy`).
#[derive(Debug)]
pub struct Target {
    /// The dial to TARGET.
    pub dialer: Dialer,
    /// `--send-proxy v1|v2`.
    pub send_proxy: Option<crate::net::proxy_header::Version>,
}

impl From<Dialer> for Target {
    /// The dial alone, no header.
    fn from(dialer: Dialer) -> Target {
        Target {
            dialer,
            send_proxy: None,
        }
    }
}

/// Relays every stream client of `listener` (admitted by `admission`: rules, limit, TLS
/// termination) to its own connection through `target` (the one dial: TLS origination).
///
/// # Errors
/// None today: a failed client or target is logged and the relay goes on.
pub async fn run_stream(
    listener: Listener,
    admission: &Admission,
    target: Target,
    dump: Option<Arc<crate::dump::Sink>>,
    shutdown: CancellationToken,
) -> Result<()> {
    let target = Arc::new(target);
    let idle = admission.limits().idle_timeout;
    let handler = move |client: Stream, peer: Peer| {
        let target = target.clone();
        let dump = dump.clone();
        async move { pair(client, &peer, &target, idle, dump).await }
    };
    // The pairs in flight finish at shutdown (or the drain ends them).
    admission
        .run(listener, "relay", handler, shutdown.cancelled())
        .await;
    Ok(())
}

/// One client joined to its own connection to `target`, until both directions end.
async fn pair(
    client: Stream,
    peer: &Peer,
    target: &Target,
    idle: Option<Duration>,
    dump: Option<Arc<crate::dump::Sink>>,
) {
    let started = std::time::Instant::now();
    let dialer = &target.dialer;
    let header = target.send_proxy.map(|v| {
        use crate::net::proxy_header::{encode, encode_unknown};
        match (peer.socket_addr(), client.local_addr()) {
            (Some(c), Some(reached)) => encode(v, c, reached),
            _ => encode_unknown(v),
        }
    });
    let target = dialer.endpoint();
    let (upstream, upstream_peer) = match dialer
        .dial_with_preface(header.as_deref().unwrap_or_default())
        .await
    {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%peer, "closing the client: {e}");
            return;
        }
    };
    let duration_ms = || started.elapsed().as_millis() as u64;
    let dump = dump.map(|s| {
        Arc::new(s.relay(
            peer,
            (peer.socket_addr(), client.local_addr()),
            (upstream.local_addr(), upstream_peer.socket_addr()),
        ))
    });
    let opts = pump::Options {
        // The client and the target, named as --explain named them when they were made.
        explain: crate::net::explain::Conn::of(&upstream_peer),
        explain_local: crate::net::explain::Conn::of(peer),
        idle_timeout: idle,
        dump,
        ..pump::Options::default()
    };
    match crate::pump::join(client, upstream, &opts).await {
        Ok(r) => tracing::info!(%peer, %target, bytes_up = r.up, bytes_down = r.down,
            duration_ms = duration_ms(), end = r.end, "pair closed"),
        Err(e) => {
            tracing::info!(%peer, %target, error = %crate::error::describe_io(&e), duration_ms = duration_ms(),
            "pair failed")
        }
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
    admission: &Admission,
    target: Dialer,
    shutdown: CancellationToken,
) -> Result<()> {
    let sock = Arc::new(sock);
    let idle = admission.limits().idle_timeout.unwrap_or(DATAGRAM_IDLE);
    let max_clients = admission.limits().max_conns;
    let clients: Arc<Mutex<HashMap<Peer, Arc<Upstream>>>> = Arc::default();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, peer) = tokio::select! {
            r = admission.receive(&sock, &mut buf, "relay") => r,
            () = shutdown.cancelled() => return Ok(()),
        };
        let known = clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&peer)
            .cloned();
        let up = match known {
            Some(up) => up,
            None => {
                let count = clients.lock().unwrap_or_else(PoisonError::into_inner).len();
                if max_clients.is_some_and(|m| count >= m) {
                    tracing::warn!(%peer, "refused: client limit reached (--max-conns)");
                    continue;
                }
                let up = match target.dial_datagram().await {
                    Ok((s, _)) => Arc::new(Upstream {
                        sock: s,
                        activity: Activity::new(),
                    }),
                    Err(e) => {
                        tracing::warn!(%peer, "dropping a datagram: {e}");
                        continue;
                    }
                };
                tracing::info!(%peer, target = %target.endpoint(), "new datagram client");
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
            tracing::debug!(%peer, error = %crate::error::describe_io(&e), "send to the target failed");
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
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        tokio::select! {
            r = up.sock.recv(&mut buf) => match r {
                Ok(n) => {
                    up.activity.touch();
                    if let Err(e) = sock.send_to(&buf[..n], &peer).await {
                        tracing::debug!(%peer, error = %crate::error::describe_io(&e), "answer not delivered");
                    }
                }
                Err(e) => tracing::debug!(%peer, error = %crate::error::describe_io(&e), "target did not answer"),
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

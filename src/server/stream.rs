//! Stream admission: the accept loop and the layers a client passes before a command sees it.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use super::Admission;
use crate::endpoint::Endpoint;
use crate::net::{ws, Listener, Peer, Stream};

impl Admission {
    /// A stream server's whole life, as a hickory-dns transport's `run` owns it: serve the
    /// clients of `listener` with `handler` until `stop` resolves, then close the listener
    /// at once (nobody new gets in) and let the clients in flight finish within the drain.
    /// Returns whether every one finished before the drain was over (when not, the cut has
    /// ended them and the caller may give their tasks a moment to wind down).
    pub async fn run<H, F>(
        &self,
        listener: Listener,
        label: &'static str,
        handler: H,
        stop: impl Future<Output = ()>,
    ) -> bool
    where
        H: Fn(Stream, Peer) -> F + Send + Sync + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        tokio::select! {
            () = self.serve(&listener, label, handler) => {}
            () = stop => {}
        }
        drop(listener);
        self.drain().await
    }

    /// Accepts clients of `listener` for ever; each admitted one gets its own task, passes
    /// the layers (the TLS handshake, bounded) there, and is handed to `handler` ready to
    /// talk. A client refused (rules, limit) or failing its handshake is logged with
    /// `label` (the command or service) and costs nobody else anything. Callers end it
    /// by dropping the future, typically in a `select!` on shutdown.
    pub async fn serve<H, F>(&self, listener: &Listener, label: &'static str, handler: H)
    where
        H: Fn(Stream, Peer) -> F + Send + Sync + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        if !self.start(listener, label) {
            return;
        }
        let handler = Arc::new(handler);
        let layers = Arc::new(self.layers_for(listener));
        let mut backoff = Backoff::default();
        let mut refused = Refusals::default();
        loop {
            let (stream, peer) = tokio::select! {
                next = self.next_permitted(listener, label, &mut backoff) => next,
                () = refused.due(), if refused.pending > 0 => {
                    refused.report(label);
                    continue;
                }
            };
            let Ok(permit) = self.conns.try_acquire() else {
                refused.refuse(label, &peer);
                continue;
            };
            let (handler, layers) = (handler.clone(), layers.clone());
            self.tasks.spawn(async move {
                // Boxed: the handshake's large state machine would otherwise sit in every
                // client task, plain ones included, for the task's whole life.
                if let Some((stream, peer)) = Box::pin(layers.pass(stream, peer, label)).await {
                    handler(stream, peer).await;
                }
                drop(permit);
            });
        }
    }

    /// The first admitted client of `listener` that passes the layers, for servers of one
    /// conversation (`listen` without `-k`): a refused client or a failed handshake (a
    /// scanner, a client that does not trust us) is not the conversation.
    ///
    /// # Errors
    /// None today: accept failures are retried after a pause.
    pub async fn accept_one(&self, listener: &Listener) -> io::Result<(Stream, Peer)> {
        if !self.start(listener, "listen") {
            return Err(io::Error::other("the QUIC listener cannot start"));
        }
        let layers = self.layers_for(listener);
        let mut backoff = Backoff::default();
        loop {
            let (stream, peer) = self.next_permitted(listener, "listen", &mut backoff).await;
            if let Some(admitted) = layers.pass(stream, peer, "listen").await {
                return Ok(admitted);
            }
        }
    }

    /// The next client the access rules let in. A failed accept (out of descriptors and
    /// the like) is said, since it drops a client, and waited out with a growing pause so
    /// clients can leave; refused peers are logged.
    async fn next_permitted(
        &self,
        listener: &Listener,
        label: &str,
        backoff: &mut Backoff,
    ) -> (Stream, Peer) {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    backoff.reset();
                    // Behind a proxy the rules are for the client the header names; the
                    // connection itself must come from a proxy we take headers from.
                    match &self.limits.proxied {
                        Some(from) if from.permits(&peer) => return (stream, peer),
                        Some(_) => tracing::warn!(service = label, %peer,
                            "refused: PROXY protocol headers are taken only from --proxy-from (default loopback)"),
                        None if self.limits.access.permits(&peer) => return (stream, peer),
                        None => {
                            tracing::warn!(service = label, %peer, "refused: not allowed by --allow/--deny")
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(service = label, error = %crate::error::describe_io(&e),
                        "cannot accept a client; backing off");
                    backoff.wait().await;
                }
            }
        }
    }

    /// Starts a listener that accepts only once it has the admission's TLS and rules
    /// (QUIC: its handshake is its own, done before a stream reaches us). False, said, when
    /// it cannot start.
    fn start(&self, listener: &Listener, label: &str) -> bool {
        let access = self.limits.access.clone();
        let admit = Arc::new(move |peer: &Peer| access.permits(peer));
        match listener.start(self.tls.as_ref(), self.limits.handshake_timeout, admit) {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(service = label, "{e}");
                false
            }
        }
    }

    /// The layers a client of `listener` passes: TLS for `tls://` and `wss://`, the
    /// upgrade for `ws://`, `wss://` and `http://`.
    fn layers_for(&self, listener: &Listener) -> Layers {
        let endpoint = listener.local_endpoint();
        Layers {
            proxied: self
                .limits
                .proxied
                .as_ref()
                .map(|_| self.limits.access.clone()),
            tls: self.tls.clone().filter(|_| endpoint.is_tls()),
            ws: endpoint.ws_path().map(|path| ws::server::Upgrade {
                path: path.to_string(),
                page: self.page.filter(|_| matches!(endpoint, Endpoint::Http(_))),
                opts: self.ws.clone(),
            }),
            deadline: self.limits.handshake_timeout,
        }
    }
}

/// `--max-conns` refusals, said once and then counted: a flood of clients past the limit
/// makes one line every [`REFUSALS_EVERY`], not one per client.
#[derive(Debug, Default)]
struct Refusals {
    /// Refused since the last line.
    pending: u64,
    /// When the last line was written.
    said: Option<std::time::Instant>,
}

/// How often a count of refused clients is written while they keep coming.
const REFUSALS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

impl Refusals {
    fn refuse(&mut self, label: &str, peer: &Peer) {
        match self.said {
            Some(at) if at.elapsed() < REFUSALS_EVERY => self.pending += 1,
            _ => {
                tracing::warn!(service = label, %peer, "refused: connection limit reached (--max-conns); further refusals are counted");
                self.said = Some(std::time::Instant::now());
            }
        }
    }

    /// When the count is due.
    async fn due(&self) {
        let at = self.said.unwrap_or_else(std::time::Instant::now) + REFUSALS_EVERY;
        tokio::time::sleep_until(at.into()).await;
    }

    fn report(&mut self, label: &str) {
        tracing::warn!(
            service = label,
            refused = self.pending,
            "refused {} more clients in {} s: connection limit reached (--max-conns)",
            self.pending,
            REFUSALS_EVERY.as_secs()
        );
        self.pending = 0;
        self.said = Some(std::time::Instant::now());
    }
}

/// The layers of one listener's clients, all within one deadline.
struct Layers {
    /// `--accept-proxy`: a PROXY protocol header comes first, and these rules judge the
    /// client it names.
    proxied: Option<crate::server::Access>,
    tls: Option<crate::net::tls::Server>,
    ws: Option<ws::server::Upgrade>,
    deadline: Duration,
}

impl Layers {
    /// A client through every layer, within one deadline: the PROXY protocol header first
    /// under `--accept-proxy` (its client is the peer from then on), then TLS and the
    /// upgrade. `None`, logged, when one refuses it or the deadline passes first.
    async fn pass(&self, stream: Stream, peer: Peer, label: &str) -> Option<(Stream, Peer)> {
        let started = tokio::time::Instant::now();
        let (stream, peer) = match &self.proxied {
            Some(access) => unwrap_proxy(stream, peer, access, self.deadline, label).await?,
            None => (stream, peer),
        };
        let stream = self.through(stream, &peer, label, started).await?;
        Some((stream, peer))
    }

    /// The layers over the stream itself (TLS, then the upgrade), in what is left of the
    /// deadline that began at `started`.
    async fn through(
        &self,
        stream: Stream,
        peer: &Peer,
        label: &str,
        started: tokio::time::Instant,
    ) -> Option<Stream> {
        let left = self.deadline.saturating_sub(started.elapsed());
        let stream = tls_layer(self.tls.clone(), stream, peer, left, label).await?;
        let Some(up) = &self.ws else {
            return Some(stream);
        };
        let left = self.deadline.saturating_sub(started.elapsed());
        let r = tokio::time::timeout(left, ws::server::accept(stream, up)).await;
        crate::net::explain::say(|| {
            let conn = crate::net::explain::name_of(peer);
            let code = format!("{conn} = websocket.accept({conn}, path='{}')", up.path);
            match &r {
                Ok(Ok(_)) => crate::net::explain::call(
                    &code,
                    "101 Switching Protocols: WebSocket frames from now on",
                ),
                Ok(Err(e)) => crate::net::explain::call(&code, &e.to_string()),
                Err(_) => crate::net::explain::call(&code, "no request within the deadline"),
            }
        });
        match r {
            Ok(Ok(ws)) => Some(Stream::Ws(Box::new(ws))),
            Ok(Err(e)) if e.status == Some(200) => {
                tracing::debug!(service = label, %peer, "served the page");
                None
            }
            Ok(Err(e)) => {
                tracing::info!(service = label, %peer, "WebSocket upgrade refused: {e}");
                None
            }
            Err(_) => {
                tracing::info!(service = label, %peer,
                    "no WebSocket upgrade within the deadline (--handshake-timeout)");
                None
            }
        }
    }
}

/// A connection from a proxy (`--accept-proxy`): its PROXY protocol header read within
/// `deadline`, and the client it names as the peer, under the access rules. `None`, logged,
/// for a connection without a whole header or a client the rules refuse. A header without
/// a client address (a proxy's health check) leaves the proxy as the peer.
async fn unwrap_proxy(
    mut stream: Stream,
    peer: Peer,
    access: &crate::server::Access,
    deadline: Duration,
    label: &str,
) -> Option<(Stream, Peer)> {
    match crate::net::proxy_header::read(&mut stream, deadline).await {
        Ok(header) => {
            let client = header.addrs.map_or(peer.clone(), |(c, _)| Peer::from_ip(c));
            tracing::debug!(service = label, proxy = %peer, %client, "PROXY protocol header");
            if access.permits(&client) {
                Some((stream, client))
            } else {
                tracing::warn!(service = label, peer = %client, proxy = %peer, "refused: not allowed by --allow/--deny");
                None
            }
        }
        Err(e) => {
            tracing::warn!(service = label, proxy = %peer, "closed: {e} (--accept-proxy)");
            None
        }
    }
}

/// The pause after a failed accept: 10 ms, doubling up to 1 s, reset by a success.
struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Backoff(Duration::from_millis(10))
    }
}

impl Backoff {
    fn reset(&mut self) {
        *self = Backoff::default();
    }

    async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(Duration::from_secs(1));
    }
}

/// A client through TLS when its endpoint has it; `None`, logged, when the handshake fails.
async fn tls_layer(
    tls: Option<crate::net::tls::Server>,
    stream: Stream,
    peer: &Peer,
    deadline: Duration,
    label: &str,
) -> Option<Stream> {
    let Some(tls) = tls else { return Some(stream) };
    let Stream::Tcp(tcp) = stream else {
        return Some(stream);
    };
    let r = tls.handshake(tcp, deadline).await;
    crate::net::explain::say(|| {
        let conn = crate::net::explain::name_of(peer);
        let code = format!("{conn} = ctx.wrap_socket({conn}, server_side=True)");
        match &r {
            Ok(s) => crate::net::explain::call(
                &code,
                &format!("TLS handshake done: {}", crate::net::tls::summary(s)),
            ),
            Err(e) => crate::net::explain::call(
                &code,
                &format!("ssl.SSLError: {}", crate::error::describe_io(e)),
            ),
        }
    });
    match r {
        Ok(s) => {
            if let Some(cert) = crate::net::tls::client_certificate(&s) {
                tracing::info!(%peer, client_cert = %crate::net::tls::fingerprint(cert),
                    "TLS client certificate accepted");
            }
            Some(Stream::Tls(Box::new(s)))
        }
        Err(e) => {
            let error = crate::error::describe_io(&crate::net::tls::in_words(e));
            tracing::warn!(service = label, %peer, %error, "TLS handshake failed");
            None
        }
    }
}

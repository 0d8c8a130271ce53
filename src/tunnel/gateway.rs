//! The gateway, `serve tunnel=tls://...`: clients register here over TLS and get a public
//! port; each visitor of that port waits until its client opens a data connection for it,
//! then the two are joined as relay joins a pair.
//!
//! Every connection to the tunnel endpoint passes the server admission first (access rules,
//! `--max-conns`, the TLS handshake, and `--client-ca` when given); its first frame then
//! says what it is: `Hello` opens a control session, `Offer` a spare lane, `Join` the data
//! connection of a visitor announced on the control connection.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::datagrams::{self, Sink, Source};
use super::frame::{self, Frame, Kind, Token, NONCE_LEN, PING_EVERY, VERSION};
use super::lane;
use super::ports::{Holder, Ports, Session};
use super::secret::{random, Secret};
use crate::endpoint::{Endpoint, Host, HostPort};
use crate::net::{self, Datagram, Listener, Peer, Stream};
use crate::server::Admission;

/// How a gateway runs: plain values from the command line.
#[derive(Debug, Clone)]
pub struct Gateway {
    /// `--tunnel-ports A-B`.
    pub ports: (u16, u16),
    /// `--tunnel-host`: where public ports are bound ([`Host::Any`]: every interface).
    pub host: Host,
    /// The shared secret clients prove; `None` when a client certificate is the proof
    /// (`--client-ca`, checked by the TLS layer of the admission).
    pub secret: Option<Secret>,
}

/// Datagrams queued for a UDP visitor whose data connection is not there yet (or slow).
const UDP_QUEUE: usize = 64;

/// Runs the gateway on `listener` (a `tls://` endpoint) until `shutdown`; public ports are
/// admitted by the same `admission`, so `--allow/--deny` and `--max-conns` count visitors
/// too, and the drain lets their transfers finish.
pub async fn serve(
    listener: Listener,
    admission: Admission,
    gateway: Gateway,
    shutdown: CancellationToken,
) {
    let shared = Arc::new(Shared {
        ports: Ports::new(gateway.ports.0, gateway.ports.1),
        gateway,
        admission: admission.clone(),
        shutdown: shutdown.clone(),
    });
    let handler = move |stream, peer| {
        let shared = shared.clone();
        async move { shared.connection(stream, peer).await }
    };
    admission
        .run(listener, "tunnel", handler, shutdown.cancelled())
        .await;
}

struct Shared {
    gateway: Gateway,
    ports: Ports,
    admission: Admission,
    shutdown: CancellationToken,
}

/// How a control session ended.
enum End {
    /// The client said goodbye.
    Bye,
    /// The client is gone or silent: its port is reserved for it.
    Dead(String),
    /// The same client registered again on a new connection.
    Replaced,
    /// The gateway is stopping.
    Shutdown,
}

impl Shared {
    fn deadline(&self) -> Duration {
        self.admission.limits().handshake_timeout
    }

    /// A connection to the tunnel endpoint, past TLS: its first frame says what it is.
    async fn connection(&self, mut stream: Stream, peer: Peer) {
        let first = tokio::time::timeout(self.deadline(), frame::read(&mut stream)).await;
        match first {
            Ok(Ok(Some(Frame::Hello { version }))) if version == VERSION => {
                self.control(stream, peer).await;
            }
            Ok(Ok(Some(Frame::Join { version, token, id }))) if version == VERSION => {
                self.join(stream, &peer, &token, id)
            }
            Ok(Ok(Some(Frame::Offer { version, token }))) if version == VERSION => {
                self.offer(stream, &peer, &token);
            }
            Ok(Ok(Some(
                Frame::Hello { version }
                | Frame::Join { version, .. }
                | Frame::Offer { version, .. },
            ))) => {
                let reason = format!(
                    "this gateway speaks version {VERSION} of the tunnel protocol and the client {version}: run the same sockit on both sides"
                );
                refuse(&mut stream, &peer, &reason).await;
            }
            Ok(Ok(Some(other))) => {
                tracing::warn!(service = "tunnel", %peer, "closed: a {other:?} frame cannot open a connection");
            }
            Ok(Ok(None)) => tracing::debug!(service = "tunnel", %peer, "closed before a word"),
            Ok(Err(e)) => {
                tracing::warn!(service = "tunnel", %peer, "closed: {}", crate::error::describe_io(&e));
            }
            Err(_) => tracing::warn!(service = "tunnel", %peer,
                "closed: no tunnel greeting within {} s (--handshake-timeout)", self.deadline().as_secs_f64()),
        }
    }

    /// A data connection: handed to the visitor waiting for it.
    fn join(&self, stream: Stream, peer: &Peer, token: &Token, id: u64) {
        match self.ports.session(token) {
            Some(session) if session.deliver(id, stream) => {}
            _ => tracing::debug!(service = "tunnel", %peer, id,
                "closed: a data connection for a visitor nobody waits for (gone, or timed out)"),
        }
    }

    /// A spare data connection, kept for the client's next visitor.
    fn offer(&self, stream: Stream, peer: &Peer, token: &Token) {
        match self.ports.session(token) {
            Some(session) if session.offer(stream) => {}
            Some(_) => {
                tracing::debug!(service = "tunnel", %peer, "closed: a spare data connection beyond the limit")
            }
            None => {
                tracing::debug!(service = "tunnel", %peer, "closed: a spare data connection for no session")
            }
        }
    }

    /// A control session: the challenge, the port, then pings and visitors until the
    /// client leaves, dies or is replaced.
    async fn control(&self, mut stream: Stream, peer: Peer) {
        let nonce = random::<NONCE_LEN>();
        if let Err(e) = frame::write(&mut stream, &Frame::Challenge { nonce }).await {
            tracing::debug!(service = "tunnel", %peer, error = %crate::error::describe_io(&e), "closed during the challenge");
            return;
        }
        let (proof, kind, asked, token) = match tokio::time::timeout(
            self.deadline(),
            frame::read(&mut stream),
        )
        .await
        {
            Ok(Ok(Some(Frame::Register {
                proof,
                kind,
                port,
                token,
            }))) => (proof, kind, port, token),
            Ok(Ok(_)) | Ok(Err(_)) => {
                tracing::warn!(service = "tunnel", %peer, "closed: no registration after the challenge");
                return;
            }
            Err(_) => {
                tracing::warn!(service = "tunnel", %peer, "closed: no registration within --handshake-timeout");
                return;
            }
        };
        if let Some(secret) = &self.gateway.secret {
            let proven = proof.is_some_and(|p| secret.verify(&nonce, &p));
            if !proven {
                let reason = if proof.is_some() {
                    "the secret does not match"
                } else {
                    "this gateway needs the secret"
                };
                refuse(&mut stream, &peer, reason).await;
                return;
            }
        }
        let session = Arc::new(Session::default());
        let mine: Token = random();
        let stop = CancellationToken::new();
        let (port, public) = match self
            .open(kind, asked, token.as_ref(), &mine, &stop, &session)
            .await
        {
            Ok(opened) => opened,
            Err(reason) => {
                refuse(&mut stream, &peer, &reason).await;
                return;
            }
        };
        let host = match &self.gateway.host {
            Host::Any => String::new(),
            h => h.to_string(),
        };
        let registered = Frame::Registered {
            port,
            token: mine,
            host,
        };
        if frame::write(&mut stream, &registered).await.is_err() {
            self.ports.release(kind, port, &mine, false);
            return;
        }
        tracing::info!(service = "tunnel", %peer, port, kind = kind.scheme(), "client registered: public port open");
        let end = self.session(stream, public, &session, &stop).await;
        let reserve = matches!(end, End::Dead(_));
        self.ports.release(kind, port, &mine, reserve);
        match end {
            End::Bye => {
                tracing::info!(service = "tunnel", %peer, port, "client left: public port closed")
            }
            End::Dead(why) => tracing::warn!(service = "tunnel", %peer, port,
                "client lost ({why}): public port closed, reserved for it for {} s", super::ports::RESERVED_FOR.as_secs()),
            End::Replaced => {
                tracing::info!(service = "tunnel", %peer, port, "client reconnected on a new connection")
            }
            End::Shutdown => {}
        }
    }

    /// The public port for a registration: claimed, then bound (a port some other program
    /// holds is skipped when any port will do).
    async fn open(
        &self,
        kind: Kind,
        asked: u16,
        token: Option<&Token>,
        mine: &Token,
        stop: &CancellationToken,
        session: &Arc<Session>,
    ) -> Result<(u16, net::Bound), String> {
        let mut tried = HashSet::new();
        loop {
            let holder = Holder {
                token: *mine,
                stop: stop.clone(),
                session: session.clone(),
            };
            let claimed = self.ports.claim(kind, asked, token, holder, &tried)?;
            let endpoint = public_endpoint(kind, &self.gateway.host, claimed.port);
            // A replaced session closes its listener as it ends: give it a moment.
            let tries = if claimed.replaced { 20 } else { 1 };
            let mut bound = net::Bound::bind(&endpoint).await;
            for _ in 1..tries {
                if bound.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                bound = net::Bound::bind(&endpoint).await;
            }
            match bound {
                Ok(b) => return Ok((claimed.port, b)),
                Err(e) => {
                    self.ports.release(kind, claimed.port, mine, false);
                    if asked != 0 || tried.len() >= 64 {
                        return Err(format!(
                            "cannot open port {} on the gateway: {}",
                            claimed.port,
                            e.why()
                        ));
                    }
                    tried.insert(claimed.port);
                }
            }
        }
    }

    /// A registered client's life: pings both ways, visitors announced, until it ends.
    async fn session(
        &self,
        stream: Stream,
        public: net::Bound,
        session: &Arc<Session>,
        stop: &CancellationToken,
    ) -> End {
        let (mut rd, mut wr) = tokio::io::split(stream);
        let (announce, mut announcements) = mpsc::channel::<Frame>(256);
        let reader = async {
            match frame::next_on_control(&mut rd).await {
                Ok(Frame::Bye) => End::Bye,
                Ok(other) => End::Dead(format!("it sent {other:?} out of turn")),
                Err(why) => End::Dead(why),
            }
        };
        let writer = async {
            let mut tick = tokio::time::interval(PING_EVERY);
            loop {
                let f = tokio::select! {
                    f = announcements.recv() => f.unwrap_or(Frame::Ping),
                    _ = tick.tick() => {
                        session.sweep(super::ports::SPARE_MAX_AGE);
                        Frame::Ping
                    }
                };
                if let Err(e) = frame::write(&mut wr, &f).await {
                    return End::Dead(crate::error::describe_io(&e));
                }
            }
        };
        // The public port's life is this select's: it closes the moment the session ends.
        let visitors = self.visitors(public, session, announce);
        tokio::select! {
            e = reader => e,
            e = writer => e,
            () = visitors => End::Dead("its public port failed".into()),
            () = stop.cancelled() => End::Replaced,
            () = self.shutdown.cancelled() => End::Shutdown,
        }
    }

    /// Serves the public port: each visitor announced to the client and joined to the data
    /// connection it opens.
    async fn visitors(
        &self,
        public: net::Bound,
        session: &Arc<Session>,
        announce: mpsc::Sender<Frame>,
    ) {
        let deadline = self.deadline();
        let idle = self.admission.limits().idle_timeout;
        match public {
            net::Bound::Stream(listener) => {
                let session = session.clone();
                let handler = move |visitor: Stream, peer: Peer| {
                    let (session, announce) = (session.clone(), announce.clone());
                    async move { tcp_visitor(visitor, peer, &session, &announce, deadline, idle).await }
                };
                self.admission.serve(&listener, "tunnel", handler).await;
            }
            net::Bound::Datagram(sock) => {
                // Datagram visitors have nothing in flight: they end with the session.
                let ended = CancellationToken::new();
                let _guard = ended.clone().drop_guard();
                let idle = idle.unwrap_or(crate::relay::DATAGRAM_IDLE);
                self.udp_visitors(sock, session, &announce, deadline, idle, &ended)
                    .await;
            }
        }
    }

    async fn udp_visitors(
        &self,
        sock: Datagram,
        session: &Arc<Session>,
        announce: &mpsc::Sender<Frame>,
        deadline: Duration,
        idle: Duration,
        ended: &CancellationToken,
    ) {
        let sock = Arc::new(sock);
        let max = self.admission.limits().max_conns;
        let mut queues: HashMap<Peer, mpsc::Sender<Bytes>> = HashMap::new();
        let mut buf = vec![0u8; net::MAX_DATAGRAM];
        loop {
            let (n, peer) = self.admission.receive(&sock, &mut buf, "tunnel").await;
            let d = Bytes::copy_from_slice(&buf[..n]);
            if let Some(q) = queues.get(&peer).filter(|q| !q.is_closed()) {
                // A full queue drops the datagram, as a full socket buffer would.
                let _ = q.try_send(d);
                continue;
            }
            queues.retain(|_, q| !q.is_closed());
            if max.is_some_and(|m| queues.len() >= m) {
                tracing::warn!(service = "tunnel", %peer, "refused: visitor limit reached (--max-conns)");
                continue;
            }
            let (Some(from), Some(to)) = (peer.socket_addr(), sock.local_addr()) else {
                continue;
            };
            let (tx, rx) = mpsc::channel(UDP_QUEUE);
            let _ = tx.try_send(d);
            queues.insert(peer.clone(), tx);
            let (sock, session, ended) = (sock.clone(), session.clone(), ended.clone());
            let announce = announce.clone();
            tokio::spawn(async move {
                let data = data_for(&session, &announce, (from, to), deadline, &peer);
                let Some(data) = data.await else {
                    return;
                };
                let sink = ToVisitor {
                    sock,
                    peer: peer.clone(),
                };
                tokio::select! {
                    r = datagrams::carry(data, idle, Queue(rx), sink) => {
                        if let Err(e) = r {
                            tracing::debug!(service = "tunnel", %peer, error = %crate::error::describe_io(&e), "datagram visitor ended");
                        }
                    }
                    () = ended.cancelled() => {}
                }
            });
        }
    }
}

/// Where a public port is bound.
fn public_endpoint(kind: Kind, host: &Host, port: u16) -> Endpoint {
    let hp = HostPort {
        host: host.clone(),
        port,
    };
    match kind {
        Kind::Tcp => Endpoint::Tcp(hp),
        Kind::Udp => Endpoint::Udp(hp),
    }
}

/// Refuses a client in one line on both sides.
async fn refuse(stream: &mut Stream, peer: &Peer, reason: &str) {
    tracing::warn!(service = "tunnel", %peer, "client refused: {reason}");
    let f = Frame::Refused {
        reason: reason.to_string(),
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        frame::write(stream, &f).await?;
        tokio::io::AsyncWriteExt::shutdown(stream).await
    })
    .await;
}

/// A data connection for a new visitor: a spare one the client opened ahead (the visitor is
/// named on it), or else one asked for on the control connection, waited for at most
/// `deadline`.
async fn data_for(
    session: &Session,
    announce: &mpsc::Sender<Frame>,
    (from, to): (SocketAddr, SocketAddr),
    deadline: Duration,
    peer: &Peer,
) -> Option<Stream> {
    while let Some(mut spare) = session.spare() {
        let named = Frame::Visitor { id: 0, from, to };
        // A spare that fails here was lost meanwhile: the next one, or the control path.
        if frame::write(&mut spare, &named).await.is_ok() {
            return Some(spare);
        }
    }
    let (id, data) = session.expect();
    if announce
        .send(Frame::Visitor { id, from, to })
        .await
        .is_err()
    {
        session.forget(id);
        return None;
    }
    match tokio::time::timeout(deadline, data).await {
        Ok(Ok(s)) => Some(s),
        Ok(Err(_)) => None,
        Err(_) => {
            session.forget(id);
            tracing::warn!(service = "tunnel", %peer,
                "visitor closed: its client opened no data connection within {} s (--handshake-timeout)", deadline.as_secs_f64());
            None
        }
    }
}

/// A TCP visitor: given a lane, carried on it, and the lane kept for the next one.
async fn tcp_visitor(
    visitor: Stream,
    peer: Peer,
    session: &Session,
    announce: &mpsc::Sender<Frame>,
    deadline: Duration,
    idle: Option<Duration>,
) {
    let (Some(from), Some(to)) = (peer.socket_addr(), visitor.local_addr()) else {
        return;
    };
    let Some(mut lane) = data_for(session, announce, (from, to), deadline, &peer).await else {
        return;
    };
    let started = std::time::Instant::now();
    let duration_ms = || started.elapsed().as_millis() as u64;
    match lane::carry(visitor, &mut lane, true, idle).await {
        Ok(p) => {
            tracing::info!(service = "tunnel", %peer, bytes_in = p.sent, bytes_out = p.received,
                duration_ms = duration_ms(), "visitor closed");
            // The lane carries the next visitor (a client over its limit of spares closes).
            if p.reusable {
                session.offer(lane);
            }
        }
        Err(e) => tracing::info!(service = "tunnel", %peer, error = %crate::error::describe_io(&e),
            duration_ms = duration_ms(), "visitor failed"),
    }
}

/// One UDP visitor's queue of datagrams from the public socket.
struct Queue(mpsc::Receiver<Bytes>);

impl Source for Queue {
    async fn next(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.0.recv().await {
            Some(d) => {
                let n = d.len().min(buf.len());
                buf[..n].copy_from_slice(&d[..n]);
                Ok(n)
            }
            None => std::future::pending().await,
        }
    }
}

/// Answers to one UDP visitor, from the public socket.
struct ToVisitor {
    sock: Arc<Datagram>,
    peer: Peer,
}

impl Sink for ToVisitor {
    async fn put(&self, datagram: &[u8]) -> io::Result<()> {
        self.sock.send_to(datagram, &self.peer).await.map(|_| ())
    }
}

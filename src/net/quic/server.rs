//! The server side of QUIC: one UDP socket, many connections, and every bidirectional
//! stream a client opens handed to the admission as one conversation.
//!
//! The socket is bound with the other listeners (so the readiness line and bind errors are
//! the same), and serving starts once the admission gives it its TLS server
//! ([`QuicListener::start`]). Before any handshake state, a client's address must be
//! proven with a Retry round trip (quinn's address validation tokens), and the access rules
//! are applied; a handshake gets the admission's deadline.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;

use super::config::{alpn_or_default, alpn_words, transport};
use super::QuicStream;
use crate::error::{Error, ErrorKind, Result};
use crate::net::base::Peer;
use crate::net::tls;

/// Conversations accepted but not yet taken by the admission.
const BACKLOG: usize = 128;

/// Whether a peer may connect at all (the admission's access rules).
pub(crate) type Admit = Arc<dyn Fn(&Peer) -> bool + Send + Sync>;

/// A bound QUIC endpoint that accepts once started.
pub(crate) struct QuicListener {
    endpoint: quinn::Endpoint,
    fd: Arc<socket2::Socket>,
    rx: tokio::sync::Mutex<mpsc::Receiver<(QuicStream, Peer)>>,
    tx: Mutex<Option<mpsc::Sender<(QuicStream, Peer)>>>,
    task: Mutex<Option<tokio::task::AbortHandle>>,
}

impl std::fmt::Debug for QuicListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuicListener").finish_non_exhaustive()
    }
}

impl QuicListener {
    /// A QUIC endpoint on the bound UDP socket `socket`, accepting nothing yet.
    ///
    /// # Errors
    /// The socket cannot be registered with the runtime.
    pub(crate) fn new(socket: std::net::UdpSocket) -> io::Result<QuicListener> {
        let fd = Arc::new(socket2::Socket::from(socket.try_clone()?));
        let endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            None,
            socket,
            Arc::new(quinn::TokioRuntime),
        )?;
        let (tx, rx) = mpsc::channel(BACKLOG);
        Ok(QuicListener {
            endpoint,
            fd,
            rx: tokio::sync::Mutex::new(rx),
            tx: Mutex::new(Some(tx)),
            task: Mutex::new(None),
        })
    }

    /// Starts accepting with `tls`'s certificate (and client CA), `--alpn`'s protocols (or
    /// `sockit`), each handshake within `deadline`, peers that `admit` lets in. Once only;
    /// later calls do nothing.
    ///
    /// # Errors
    /// A TLS configuration QUIC cannot use.
    pub(crate) fn start(&self, tls: &tls::Server, deadline: Duration, admit: Admit) -> Result<()> {
        let Some(tx) = self
            .tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return Ok(());
        };
        let mut rustls = (**tls.config()).clone();
        rustls.alpn_protocols = alpn_or_default(&rustls.alpn_protocols);
        let alpn = alpn_words(&rustls.alpn_protocols);
        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(Arc::new(rustls))
            .map_err(|e| Error::new(ErrorKind::Tls, "cannot set up QUIC", e.to_string()))?;
        let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        config.transport_config(transport());
        self.endpoint.set_server_config(Some(config));
        let endpoint = self.endpoint.clone();
        let fd = self.fd.clone();
        let task = tokio::spawn(accept_loop(endpoint, fd, tx, deadline, admit, alpn));
        *self.task.lock().unwrap_or_else(PoisonError::into_inner) = Some(task.abort_handle());
        Ok(())
    }

    /// The next conversation: a stream a client opened on a connection that passed.
    ///
    /// # Errors
    /// The listener was never started, or stopped.
    pub(crate) async fn accept(&self) -> io::Result<(QuicStream, Peer)> {
        self.rx.lock().await.recv().await.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotConnected,
                "the QUIC listener is not serving",
            )
        })
    }
}

impl Drop for QuicListener {
    /// Nobody new gets in; conversations in flight keep their connections.
    fn drop(&mut self) {
        if let Some(task) = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
        self.endpoint.set_server_config(None);
    }
}

/// Takes every connection attempt: the address proven (Retry), the access rules, then the
/// handshake and the connection's streams in a task of its own.
async fn accept_loop(
    endpoint: quinn::Endpoint,
    fd: Arc<socket2::Socket>,
    tx: mpsc::Sender<(QuicStream, Peer)>,
    deadline: Duration,
    admit: Admit,
    alpn: String,
) {
    while let Some(incoming) = endpoint.accept().await {
        let peer = Peer::from_ip(incoming.remote_address());
        if !admit(&peer) {
            tracing::warn!(%peer, "refused: not allowed by --allow/--deny");
            incoming.refuse();
            continue;
        }
        if !incoming.remote_address_validated() {
            // The client must echo a token sent to its address: a forged source never
            // sees it, so it gets no handshake and no amplified answer.
            if let Err(e) = incoming.retry() {
                tracing::debug!(%peer, error = %e, "cannot ask for address validation");
            }
            continue;
        }
        let (tx, fd, alpn) = (tx.clone(), fd.clone(), alpn.clone());
        let port = endpoint.local_addr().map_or(0, |a| a.port());
        tokio::spawn(async move {
            let Some(conn) = handshake(incoming, deadline, &peer, &alpn).await else {
                return;
            };
            let local = endpoint_addr(&conn, port);
            tracing::debug!(%peer, "QUIC connection up");
            while let Ok(pair) = conn.accept_bi().await {
                let stream = QuicStream::new(pair, conn.clone(), None, local, fd.clone());
                if tx.send((stream, peer.clone())).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// Our address on `conn`: the address the client reached, with the socket's port.
fn endpoint_addr(conn: &quinn::Connection, port: u16) -> Option<std::net::SocketAddr> {
    Some(std::net::SocketAddr::new(
        conn.local_ip()?.to_canonical(),
        port,
    ))
}

/// The server half of a handshake within `deadline`; a failure is logged and costs only
/// this client.
async fn handshake(
    incoming: quinn::Incoming,
    deadline: Duration,
    peer: &Peer,
    alpn: &str,
) -> Option<quinn::Connection> {
    let connecting = match incoming.accept() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(%peer, error = %e, "QUIC handshake failed");
            return None;
        }
    };
    match tokio::time::timeout(deadline, connecting).await {
        Ok(Ok(conn)) => Some(conn),
        Ok(Err(e)) => {
            let text = e.to_string();
            if text.contains("error 120") || text.contains("known protocol") {
                tracing::warn!(%peer, "QUIC handshake failed: the client offered none of the application protocols accepted here ({alpn}; --alpn)");
            } else {
                tracing::warn!(%peer, error = %text, "QUIC handshake failed");
            }
            None
        }
        Err(_) => {
            tracing::warn!(%peer, "QUIC handshake failed: not done within the deadline (--handshake-timeout)");
            None
        }
    }
}

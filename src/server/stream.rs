//! Stream admission: the accept loop and the layers a client passes before a command sees it.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use super::Admission;
use crate::net::{Listener, Peer, Stream};

impl Admission {
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
        let handler = Arc::new(handler);
        let tls = self.tls_for(listener);
        let deadline = self.limits.handshake_timeout;
        let mut backoff = Backoff::default();
        loop {
            let (stream, peer) = self.next_permitted(listener, label, &mut backoff).await;
            let Ok(permit) = self.conns.try_acquire() else {
                tracing::warn!(service = label, %peer, "refused: connection limit reached (--max-conns)");
                continue;
            };
            let (handler, tls) = (handler.clone(), tls.clone());
            self.tasks.spawn(async move {
                // Boxed: the handshake's large state machine would otherwise sit in every
                // client task, plain ones included, for the task's whole life.
                if let Some(stream) = Box::pin(layers(tls, stream, &peer, deadline, label)).await {
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
        let (tls, deadline) = (self.tls_for(listener), self.limits.handshake_timeout);
        let mut backoff = Backoff::default();
        loop {
            let (stream, peer) = self.next_permitted(listener, "listen", &mut backoff).await;
            if let Some(s) = layers(tls.clone(), stream, &peer, deadline, "listen").await {
                return Ok((s, peer));
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
                    if self.limits.access.permits(&peer) {
                        return (stream, peer);
                    }
                    tracing::warn!(service = label, %peer, "refused: not allowed by --allow/--deny");
                }
                Err(e) => {
                    tracing::warn!(service = label, error = %crate::error::describe_io(&e),
                        "cannot accept a client; backing off");
                    backoff.wait().await;
                }
            }
        }
    }

    fn tls_for(&self, listener: &Listener) -> Option<crate::net::tls::Server> {
        if listener.local_endpoint().is_tls() {
            self.tls.clone()
        } else {
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

/// A client through the layers its endpoint has; `None`, logged, when a handshake fails.
async fn layers(
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

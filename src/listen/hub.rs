//! `listen -k` over streams: many clients at once, stdin to all of them, their lines to
//! stdout (or, with `--broker`, to each other).
//!
//! Each client has a bounded queue; a client whose queue is full is dropped rather than
//! allowed to stall stdin or the other clients. Broadcast chunks are `Bytes`, so one
//! allocation is shared by every queue.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Config;
use crate::error::{Error, Result};
use crate::lines::{prefixed, Crlf, Lines, PARTIAL_QUIET};
use crate::net::{Listener, Peer, Stream};
use crate::pump::Activity;
use crate::server::Admission;
use crate::stdio::{Input, Output};

/// How long a `--broker` receiver may take nothing before it is dropped (`--idle-timeout`
/// replaces it).
const BROKER_STALL: Duration = Duration::from_secs(10);
/// Chunks queued for one client before it counts as too slow.
const QUEUE: usize = 256;
/// Read buffer of a TLS client (plain clients read into the worker thread's scratch buffer).
const READ_BUF: usize = 8 * 1024;
/// Scratch buffer per worker thread for plain clients: one read takes up to this much.
const SCRATCH: usize = 64 * 1024;

thread_local! {
    /// Where plain clients' reads land before the bytes are copied out at their exact size.
    /// `try_read` never waits, so nothing else can use the buffer between read and copy;
    /// per-read buffers were freed again at once but left the heap fragmented, ~3 KiB per
    /// client that had sent anything.
    static SCRATCH_BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; SCRATCH]);
}
/// The longest line kept whole on stdout; longer ones are passed on in pieces.
const MAX_LINE: usize = 64 * 1024;
/// How long a TLS client gets to take our close_notify before the socket is closed anyway.
const FINISH_TIMEOUT: Duration = Duration::from_secs(2);

struct Client {
    tx: mpsc::Sender<Bytes>,
    kick: CancellationToken,
    peer: Peer,
}

/// The connected clients, shared by the accept loop, the stdin task and every client task.
#[derive(Default)]
struct Hub {
    clients: Mutex<HashMap<u64, Client>>,
    /// The client whose unfinished line stdout ends with: another client's bytes start on
    /// a new line, so the lines of different clients never run together.
    open_line: tokio::sync::Mutex<Option<u64>>,
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Client>> {
        self.clients.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A broker client's chunk for every other client: the sender waits for each queue to
    /// have room (so it is slowed to the pace of its readers, as chat does), and only a
    /// receiver that takes nothing for `stall` is dropped.
    async fn relay(&self, data: &Bytes, from: u64, stall: Duration) {
        let receivers: Vec<(u64, mpsc::Sender<Bytes>)> = self
            .lock()
            .iter()
            .filter(|(id, _)| **id != from)
            .map(|(id, c)| (*id, c.tx.clone()))
            .collect();
        for (id, tx) in receivers {
            match tokio::time::timeout(stall, tx.send(data.clone())).await {
                Ok(Ok(())) => {}
                // It left meanwhile.
                Ok(Err(_)) => {
                    self.lock().remove(&id);
                }
                Err(_) => {
                    if let Some(c) = self.lock().remove(&id) {
                        tracing::warn!(peer = %c.peer, stall_s = stall.as_secs_f64(),
                            "client took nothing for the whole stall limit; dropping it");
                        c.kick.cancel();
                    }
                }
            }
        }
    }

    /// stdin's `data` for every client; drops clients that cannot keep up (stdin waits for
    /// nobody, as the README says; `--broker` lines go through [`Hub::relay`] instead).
    fn broadcast(&self, data: &Bytes) {
        let mut clients = self.lock();
        clients.retain(|_, c| match c.tx.try_send(data.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(peer = %c.peer, "client too slow: its queue is full, dropping it");
                c.kick.cancel();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
    }
}

pub(super) async fn run(
    listener: Listener,
    admission: &Admission,
    input: Input,
    output: Output,
    cfg: &Config,
    shutdown: CancellationToken,
) -> Result<()> {
    let hub = Arc::new(Hub::default());
    let next_id = Arc::new(AtomicU64::new(0));
    let stdin_task = tokio::spawn(distribute_stdin(input, hub.clone(), cfg.crlf));
    let (broker, show_peer, dump) = (cfg.broker, cfg.show_peer, cfg.dump.clone());
    let idle = admission.limits().idle_timeout;
    let (handler_hub, handler_output, handler_shutdown) =
        (hub.clone(), output.clone(), admission.limits().cut.clone());
    let handler = move |stream: Stream, peer: Peer| {
        let (hub, output, shutdown) = (
            handler_hub.clone(),
            handler_output.clone(),
            handler_shutdown.clone(),
        );
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(QUEUE);
        // Clients are cut when the drain is over, not when shutdown begins.
        let kick = shutdown.child_token();
        hub.lock().insert(
            id,
            Client {
                tx,
                kick: kick.clone(),
                peer: peer.clone(),
            },
        );
        let session = Session {
            id,
            dump: dump
                .as_ref()
                .map(|s| s.stream(&peer, stream.local_addr(), peer.socket_addr(), true)),
            explain: crate::net::explain::Conn::of(&peer),
            peer,
            hub,
            output,
            broker,
            show_peer,
            idle,
        };
        session.serve(stream, rx, kick)
    };
    // Serving stops at shutdown, or when stdout's reader is gone: then there is nothing to
    // drain for, and the cut ends every client at once.
    let stdout_gone = std::sync::atomic::AtomicBool::new(false);
    let cut = admission.limits().cut.clone();
    let stdin = stdin_task.abort_handle();
    let stop = async {
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = output.closed() => {
                stdout_gone.store(true, Ordering::Relaxed);
                cut.cancel();
            }
        }
        stdin.abort();
    };
    // Conversations in flight go on until the drain is over; then every client's session
    // (a child of the cut) ends: let them flush the lines they hold.
    let tasks = admission.tasks().clone();
    if !admission.run(listener, "listen", handler, stop).await
        && tokio::time::timeout(FINISH_TIMEOUT, tasks.wait())
            .await
            .is_err()
    {
        tracing::warn!("some clients did not finish in time");
    }
    if stdout_gone.load(Ordering::Relaxed) {
        return Err(Error::stdout_closed());
    }
    Ok(())
}

/// stdin goes to every client; its end closes nobody (a server runs fine with `< /dev/null`).
async fn distribute_stdin(mut input: Input, hub: Arc<Hub>, crlf: bool) {
    let mut crlf = crlf.then(Crlf::default);
    while let Some(chunk) = input.next_chunk().await {
        match chunk {
            Ok(data) => {
                let data = match crlf.as_mut() {
                    Some(c) => c.convert(&data),
                    None => data,
                };
                hub.broadcast(&data);
            }
            Err(e) => {
                tracing::warn!(error = %crate::error::describe_io(&e), "cannot read stdin; clients stay connected");
                return;
            }
        }
    }
    tracing::debug!("stdin ended; clients stay connected");
}

struct Session {
    id: u64,
    /// `-x`: this client's traffic, dumped.
    dump: Option<crate::dump::Traffic>,
    /// `--explain`: this client's socket calls.
    explain: Option<Arc<crate::net::explain::Conn>>,
    peer: Peer,
    hub: Arc<Hub>,
    output: Output,
    broker: bool,
    show_peer: bool,
    idle: Option<Duration>,
}

/// Reading a client in chunks. A plain socket is read through a shared reference into the
/// thread's scratch buffer, and only what arrived is kept (idle clients hold no buffer); TLS
/// needs its own read half and a buffer per read.
trait ChunkRead {
    async fn read_chunk(&mut self) -> io::Result<Vec<u8>>;
}

/// Writing to a client, through the shared socket or TLS's write half.
trait ChunkWrite {
    async fn write_chunk(&mut self, data: &[u8]) -> io::Result<()>;

    /// Ends the conversation politely: TLS sends its close_notify (a plain socket's FIN
    /// comes with the close).
    async fn finish(&mut self) {}
}

impl ChunkRead for &Stream {
    async fn read_chunk(&mut self) -> io::Result<Vec<u8>> {
        loop {
            self.readable().await?;
            let read =
                SCRATCH_BUF.with_borrow_mut(|buf| self.try_read(buf).map(|n| buf[..n].to_vec()));
            match read {
                Ok(chunk) => return Ok(chunk),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl ChunkWrite for &Stream {
    async fn write_chunk(&mut self, data: &[u8]) -> io::Result<()> {
        self.write_all_shared(data).await
    }
}

impl ChunkRead for ReadHalf<Stream> {
    async fn read_chunk(&mut self) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; READ_BUF];
        let n = self.read(&mut buf).await?;
        buf.truncate(n);
        Ok(buf)
    }
}

impl ChunkWrite for WriteHalf<Stream> {
    async fn write_chunk(&mut self, data: &[u8]) -> io::Result<()> {
        self.write_all(data).await?;
        self.flush().await
    }

    async fn finish(&mut self) {
        let _ = tokio::time::timeout(FINISH_TIMEOUT, self.shutdown()).await;
    }
}

impl Session {
    async fn serve(self, stream: Stream, rx: mpsc::Receiver<Bytes>, kick: CancellationToken) {
        if stream.is_layered() {
            let (rd, wr) = tokio::io::split(stream);
            self.converse(rd, wr, rx, kick).await;
        } else {
            self.converse(&stream, &stream, rx, kick).await;
        }
    }

    async fn converse(
        self,
        mut rd: impl ChunkRead,
        mut wr: impl ChunkWrite,
        mut rx: mpsc::Receiver<Bytes>,
        kick: CancellationToken,
    ) {
        let started = std::time::Instant::now();
        tracing::info!(peer = %self.peer, "connection accepted");
        let activity = Activity::new();
        let bytes_in = AtomicU64::new(0);
        let bytes_out = AtomicU64::new(0);
        let writer = async {
            while let Some(chunk) = rx.recv().await {
                if let Some(d) = &self.dump {
                    d.record(crate::dump::Direction::Sent, &chunk);
                }
                if let Some(c) = &self.explain {
                    c.send(&chunk);
                }
                wr.write_chunk(&chunk).await?;
                bytes_out.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                activity.touch();
            }
            Ok::<_, io::Error>(())
        };
        // Outside the reader, so a line the client has begun is still there to flush when
        // the conversation is cut (shutdown, idle timeout).
        let mut lines = Lines::new(MAX_LINE);
        let reader = async {
            loop {
                let buf = if lines.pending() > 0 {
                    // A line begun and not ended (a prompt, a program that sends no
                    // newline, binary data) goes on once the client has been quiet.
                    tokio::select! {
                        r = rd.read_chunk() => r?,
                        () = tokio::time::sleep(PARTIAL_QUIET) => {
                            if let Some(rest) = lines.finish() {
                                self.deliver(vec![rest]).await?;
                            }
                            continue;
                        }
                    }
                } else {
                    rd.read_chunk().await?
                };
                let n = buf.len();
                if let Some(d) = &self.dump {
                    d.record(crate::dump::Direction::Received, &buf);
                }
                if let Some(c) = &self.explain {
                    c.recv(&buf);
                }
                activity.touch();
                bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                lines.push(&buf[..n]);
                let complete = lines.drain(n == 0);
                if !complete.is_empty() {
                    self.deliver(complete).await?;
                }
                if n == 0 {
                    return Ok::<_, io::Error>("eof");
                }
            }
        };
        let end: std::result::Result<&str, io::Error> = tokio::select! {
            r = reader => r,
            r = writer => r.map(|()| "dropped"),
            () = activity.idle(self.idle) => Ok("idle timeout"),
            () = kick.cancelled() => Ok("dropped (too slow, or shutting down)"),
        };
        self.hub.lock().remove(&self.id);
        if let Some(rest) = lines.finish() {
            // What the client sent is never lost, even when it did not end its line.
            let _ = self.deliver(vec![rest]).await;
        }
        if let Some(d) = &self.dump {
            match &end {
                Ok("eof") => d.ended(crate::dump::Direction::Received),
                Err(_) => d.reset(),
                _ => {}
            }
        }
        if matches!(end, Ok("eof" | "idle timeout")) {
            if let Some(c) = &self.explain {
                c.shutdown();
            }
            wr.finish().await;
            if let Some(d) = &self.dump {
                d.ended(crate::dump::Direction::Sent);
            }
        }
        let duration_ms = started.elapsed().as_millis() as u64;
        let (bytes_in, bytes_out) = (
            bytes_in.load(Ordering::Relaxed),
            bytes_out.load(Ordering::Relaxed),
        );
        match end {
            Ok(why) => tracing::info!(peer = %self.peer, bytes_in, bytes_out, duration_ms,
                end = why, "connection closed"),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => tracing::warn!(
                peer = %self.peer, bytes_in, bytes_out, duration_ms,
                "connection reset by peer"),
            Err(e) => tracing::warn!(peer = %self.peer, bytes_in, bytes_out, duration_ms,
                error = %crate::error::describe_io(&e), "connection failed"),
        }
    }

    /// Lines from this client (the last may be unfinished) go to stdout, or to the other
    /// clients as a broker. On stdout a client's unfinished line is continued by that
    /// client only: another client's bytes start on a new line (with `--show-peer` every
    /// piece is a marked line of its own).
    async fn deliver(&self, lines: Vec<Bytes>) -> io::Result<()> {
        let name = self.show_peer.then(|| self.peer.to_string());
        let chunk = prefixed(name.as_deref(), &lines);
        if self.broker {
            let stall = self.idle.unwrap_or(BROKER_STALL);
            self.hub.relay(&chunk, self.id, stall).await;
            return Ok(());
        }
        let mut open = self.hub.open_line.lock().await;
        let chunk = match *open {
            Some(other) if other != self.id => {
                let mut c = Vec::with_capacity(chunk.len() + 1);
                c.push(b'\n');
                c.extend_from_slice(&chunk);
                Bytes::from(c)
            }
            _ => chunk,
        };
        *open = (!chunk.ends_with(b"\n")).then_some(self.id);
        self.output.write(chunk).await
    }
}

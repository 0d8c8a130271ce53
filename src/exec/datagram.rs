//! Datagram peers through a program: each datagram received is one line on the child's
//! stdin, each line the child writes is one datagram back to its peer. `listen -k` gives
//! every peer address its own child ([`serve`]), ended after the idle timeout.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::child::{self, describe};
use super::program::{Exec, Origin, Program, STOP_WAIT};
use crate::dump::{Direction, Traffic};
use crate::error::{Error, Result};
use crate::lines::{datagram_line, PARTIAL_QUIET};
use crate::lines::{trim_newline, Lines};
use crate::net::{Datagram, Peer, MAX_DATAGRAM};
use crate::pump::Activity;
use crate::server::Admission;

/// How long a quiet peer keeps its child under `listen -k` without `--idle-timeout`.
pub const PEER_IDLE: Duration = Duration::from_secs(60);
/// Datagrams queued for one child before more are dropped (UDP may drop; memory may not grow).
const QUEUE: usize = 256;

/// One child for the peer of a connected socket (`connect udp://... --exec`, `listen` without
/// `-k`), with `first` (the datagram that made the peer known) as its first line.
///
/// # Errors
/// The program could not be started, or the socket failed.
pub async fn conversation(
    exec: &Exec,
    sock: &Datagram,
    peer: &Peer,
    first: Option<Bytes>,
    idle: Option<Duration>,
    dump: Option<&Traffic>,
) -> Result<()> {
    let (tx, rx) = mpsc::channel(QUEUE);
    if let Some(f) = first {
        let _ = tx.try_send(f);
    }
    let origin = Origin {
        proto: sock.proto(),
        peer: peer.clone(),
        local: sock.local_addr(),
    };
    let receive = async {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            let n = sock
                .recv(&mut buf)
                .await
                .map_err(|e| Error::io(format!("no conversation with {peer}"), &e))?;
            if tx.try_send(Bytes::copy_from_slice(&buf[..n])).is_err() {
                tracing::debug!(%peer, "the program is behind; datagram dropped");
            }
        }
    };
    let send = |data: Bytes| async move { sock.send(&data).await.map(drop) };
    tokio::select! {
        r = converse(&exec.program, &origin, rx, send, idle, dump, &exec.stop) => r,
        r = receive => r,
    }
}

/// `listen -k --exec` over datagrams: a child per peer address (at most `--max-conns`), fed
/// that peer's datagrams and answering it, ended after the idle timeout. Runs until `stop`,
/// then ends every child.
pub async fn serve(
    exec: Exec,
    sock: Datagram,
    admission: &Admission,
    dump: Option<Arc<crate::dump::Sink>>,
) {
    type Children = Mutex<HashMap<Peer, mpsc::Sender<Bytes>>>;
    let sock = Arc::new(sock);
    let children: Arc<Children> = Arc::default();
    let idle = Some(admission.limits().idle_timeout.unwrap_or(PEER_IDLE));
    let max = admission.limits().max_conns;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, peer) = tokio::select! {
            r = admission.receive(&sock, &mut buf, "listen") => r,
            () = exec.stop.cancelled() => break,
        };
        let data = Bytes::copy_from_slice(&buf[..n]);
        let mut map = children.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tx) = map.get(&peer) {
            match tx.try_send(data.clone()) {
                Ok(()) => continue,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::debug!(%peer, "the program is behind; datagram dropped");
                    continue;
                }
                // Its child is ending: this datagram starts a new one.
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    map.remove(&peer);
                }
            }
        }
        if max.is_some_and(|m| map.len() >= m) {
            tracing::warn!(%peer, "refused: peer limit reached (--max-conns)");
            continue;
        }
        start(
            &exec,
            &sock,
            &children,
            &mut map,
            peer,
            data,
            idle,
            dump.as_ref(),
            admission,
        );
    }
    // Every child hears `stop` and ends its group; wait for them (bounded by their grace).
    admission.tasks().close();
    let _ = tokio::time::timeout(STOP_WAIT, admission.tasks().wait()).await;

    #[allow(clippy::too_many_arguments)]
    fn start(
        exec: &Exec,
        sock: &Arc<Datagram>,
        children: &Arc<Children>,
        map: &mut HashMap<Peer, mpsc::Sender<Bytes>>,
        peer: Peer,
        first: Bytes,
        idle: Option<Duration>,
        dump: Option<&Arc<crate::dump::Sink>>,
        admission: &Admission,
    ) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let _ = tx.try_send(first);
        map.insert(peer.clone(), tx.clone());
        tracing::info!(%peer, "new peer");
        let origin = Origin {
            proto: sock.proto(),
            peer: peer.clone(),
            local: sock.local_addr(),
        };
        let (exec, sock, children) = (exec.clone(), sock.clone(), children.clone());
        let traffic = dump.map(|s| s.datagrams(&peer, sock.local_addr(), peer.socket_addr()));
        admission.tasks().spawn(async move {
            let to = peer.clone();
            let send = |data: Bytes| {
                let (sock, to) = (sock.clone(), to.clone());
                async move { sock.send_to(&data, &to).await.map(drop) }
            };
            if let Err(e) = converse(
                &exec.program,
                &origin,
                rx,
                send,
                idle,
                traffic.as_ref(),
                &exec.stop,
            )
            .await
            {
                tracing::warn!(%peer, "{e}");
            }
            let mut map = children.lock().unwrap_or_else(PoisonError::into_inner);
            if map.get(&peer).is_some_and(|t| t.same_channel(&tx)) {
                map.remove(&peer);
            }
        });
    }
}

/// One child's life: `inbox` datagrams in as lines, its lines out through `send`, until
/// its output ends (it exited, or closed stdout), nothing moved for `idle`, or `stop`.
async fn converse<S, F>(
    program: &Program,
    origin: &Origin,
    mut inbox: mpsc::Receiver<Bytes>,
    send: S,
    idle: Option<Duration>,
    dump: Option<&Traffic>,
    stop: &CancellationToken,
) -> Result<()>
where
    S: Fn(Bytes) -> F,
    F: Future<Output = io::Result<()>>,
{
    let peer = &origin.peer;
    let (mut running, io) = child::spawn(program, origin, child::Input::Piped)
        .map_err(|e| Error::io(format!("cannot start '{program}' for {peer}"), &e))?;
    tracing::info!(%peer, pid = running.id(), %program, "program started");
    let (mut out, mut input) = tokio::io::split(io);
    let activity = Activity::new();
    // The peer's datagrams to the program: apart from its answers, so a program that
    // writes before it reads never waits on us.
    let feed = async {
        while let Some(d) = inbox.recv().await {
            if let Some(t) = dump {
                t.record(Direction::Received, &d);
            }
            input.write_all(&datagram_line(&d)).await?;
            activity.touch();
        }
        input.shutdown().await
    };
    let answer = async {
        let mut lines = Lines::new(MAX_DATAGRAM);
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            let read = out.read(&mut buf);
            let n = if lines.pending() > 0 {
                match tokio::time::timeout(PARTIAL_QUIET, read).await {
                    Ok(r) => r?,
                    // A line begun and not ended goes out after a quiet moment, as stdin's do.
                    Err(_) => {
                        if let Some(l) = lines.finish() {
                            send_one(&send, dump, l).await?;
                        }
                        continue;
                    }
                }
            } else {
                read.await?
            };
            lines.push(&buf[..n]);
            for line in lines.drain(n == 0) {
                send_one(&send, dump, Bytes::copy_from_slice(trim_newline(&line))).await?;
                activity.touch();
            }
            if n == 0 {
                return Ok::<(), io::Error>(());
            }
        }
    };
    tokio::pin!(feed, answer);
    let mut feeding = true;
    let mut watching = true;
    let result = loop {
        tokio::select! {
            r = &mut answer => break r.map(|()| "program's output ended"),
            r = &mut feed, if feeding => {
                feeding = false;
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %crate::error::describe_io(&e), "cannot write to the program");
                }
            }
            () = running.exited(), if watching => watching = false,
            () = activity.idle(idle) => break Ok("idle timeout"),
            () = stop.cancelled() => break Ok("shutdown"),
        }
    };
    let status = running.end().await;
    match result {
        Ok(end) => {
            tracing::info!(%peer, end, status = %describe(status), "program ended");
            Ok(())
        }
        Err(e) => Err(Error::io(format!("no conversation with {peer}"), &e)),
    }
}

async fn send_one<S, F>(send: &S, dump: Option<&Traffic>, data: Bytes) -> io::Result<()>
where
    S: Fn(Bytes) -> F,
    F: Future<Output = io::Result<()>>,
{
    if let Some(t) = dump {
        t.record(Direction::Sent, &data);
    }
    send(data).await
}

//! The services over stream sockets: one task per client, nothing buffered beyond one read.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::{chargen, clock, Config, Service};
use crate::net::{Listener, Peer, Stream};
use crate::pump::Activity;
use crate::server::Admission;

/// First read buffer of echo and discard clients: what a client that talks in small
/// requests (or sent one line and went quiet) holds for its whole life.
const BUF: usize = 2 * 1024;
/// A client whose reads fill the buffer is streaming: its buffer grows (x4 per full read)
/// up to this, so bulk transfers take few syscalls.
const BUF_MAX: usize = 64 * 1024;

pub(super) async fn serve(
    service: Service,
    listener: Listener,
    admission: Admission,
    cfg: Config,
    shutdown: CancellationToken,
) {
    let (utc, idle) = (cfg.utc, admission.limits().idle_timeout);
    if matches!(service, Service::Socks5 | Service::HttpProxy) {
        let proxy = std::sync::Arc::new(cfg.proxy);
        let deadline = admission.limits().handshake_timeout;
        // The address it is bound to (none: every interface, not loopback).
        let on = match listener.local_endpoint() {
            crate::endpoint::Endpoint::Tcp(hp) => match hp.host {
                crate::endpoint::Host::Ip(ip) => Some(ip),
                _ => None,
            },
            _ => None,
        };
        let handler = move |stream, peer| {
            let proxy = proxy.clone();
            async move {
                match service {
                    Service::Socks5 => {
                        super::proxy::socks5::client(stream, peer, &proxy, deadline, on).await
                    }
                    _ => super::proxy::http::client(stream, peer, &proxy, deadline, on).await,
                }
            }
        };
        // Tunnels in flight finish first (or the drain ends them).
        admission
            .run(listener, service.name(), handler, shutdown.cancelled())
            .await;
        return;
    }
    // No per-client shutdown watch on the hot path: when serving stops, the runtime that
    // owns these tasks ends them.
    let handler = move |stream, peer| client(service, stream, peer, utc, idle);
    admission
        .run(listener, service.name(), handler, shutdown.cancelled())
        .await;
}

async fn client(
    service: Service,
    mut stream: Stream,
    peer: Peer,
    utc: bool,
    idle: Option<Duration>,
) {
    let started = std::time::Instant::now();
    let activity = Activity::new();
    let (bytes_in, bytes_out) = (AtomicU64::new(0), AtomicU64::new(0));
    let work = talk(service, &mut stream, utc, &activity, &bytes_in, &bytes_out);
    let end = match idle {
        None => work.await.map(|()| "eof"),
        Some(_) => tokio::select! {
            r = work => r.map(|()| "eof"),
            () = activity.idle(idle) => Ok("idle timeout"),
        },
    };
    let (bytes_in, bytes_out) = (
        bytes_in.load(Ordering::Relaxed),
        bytes_out.load(Ordering::Relaxed),
    );
    let duration_ms = started.elapsed().as_millis() as u64;
    match end {
        Ok(why) => {
            tracing::info!(%service, %peer, bytes_in, bytes_out, duration_ms, end = why, "closed")
        }
        Err(e) => {
            tracing::info!(%service, %peer, bytes_in, bytes_out, duration_ms, error = %crate::error::describe_io(&e), "closed")
        }
    }
}

async fn talk(
    service: Service,
    stream: &mut Stream,
    utc: bool,
    activity: &Activity,
    bytes_in: &AtomicU64,
    bytes_out: &AtomicU64,
) -> io::Result<()> {
    match service {
        // Over WebSocket, echo keeps each message whole and of its kind (SPEC).
        Service::Echo if matches!(stream, Stream::Ws(_)) => {
            let Stream::Ws(ws) = stream else {
                return Ok(());
            };
            ws.mirror(|n| {
                activity.touch();
                bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                bytes_out.fetch_add(n as u64, Ordering::Relaxed);
            })
            .await
        }
        Service::Echo | Service::Discard => {
            let (mut buf, mut n) = first_read(stream).await?;
            loop {
                if n == 0 {
                    return stream.shutdown().await;
                }
                activity.touch();
                bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                if service == Service::Echo {
                    stream.write_all(&buf[..n]).await?;
                    bytes_out.fetch_add(n as u64, Ordering::Relaxed);
                }
                if n == buf.len() && n < BUF_MAX {
                    buf = vec![0u8; (n * 4).min(BUF_MAX)];
                }
                n = stream.read(&mut buf).await?;
            }
        }
        // Boxed: the largest state machine stays off every echo client's task.
        Service::Chargen => Box::pin(chargen(stream, activity, bytes_out)).await,
        Service::Daytime => send_and_close(stream, clock::daytime(utc).as_bytes(), bytes_out).await,
        Service::Time => send_and_close(stream, &clock::rfc868_now(), bytes_out).await,
        // Refused when parsing the binding (sntp), served by `proxy` (the proxies).
        Service::Sntp | Service::Socks5 | Service::HttpProxy | Service::Tunnel => Ok(()),
    }
}

/// Waits for the client's first bytes without holding a buffer, so an idle client costs only
/// its task. `readable` alone is not enough: tokio marks an accepted socket readable before
/// anything has arrived, and the buffer would be held through the wait that follows.
/// (TLS keeps its own buffers and has no buffer-less wait: it reads as usual.)
async fn first_read(stream: &mut Stream) -> io::Result<(Vec<u8>, usize)> {
    if stream.is_layered() {
        let mut buf = vec![0u8; BUF];
        let n = stream.read(&mut buf).await?;
        return Ok((buf, n));
    }
    loop {
        stream.readable().await?;
        let mut buf = vec![0u8; BUF];
        match stream.try_read(&mut buf) {
            Ok(n) => return Ok((buf, n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

/// RFC 864 over a stream: rotating lines until the client goes away.
async fn chargen(
    stream: &mut Stream,
    activity: &Activity,
    bytes_out: &AtomicU64,
) -> io::Result<()> {
    // Writes wait for the client: one that stops reading costs only its socket buffer.
    let (mut r, mut w) = tokio::io::split(stream);
    let cycle = chargen::cycle();
    let write = async {
        loop {
            w.write_all(&cycle).await?;
            bytes_out.fetch_add(cycle.len() as u64, Ordering::Relaxed);
            activity.touch();
        }
    };
    let drain = async {
        let mut buf = [0u8; 512];
        while r.read(&mut buf).await? > 0 {}
        // A half-close is not the end (RFC 864: until the user closes); the next write
        // fails once the client has really gone.
        std::future::pending::<io::Result<()>>().await
    };
    tokio::select! {
        r = write => r,
        r = drain => r,
    }
}

async fn send_and_close(stream: &mut Stream, data: &[u8], bytes_out: &AtomicU64) -> io::Result<()> {
    stream.write_all(data).await?;
    bytes_out.fetch_add(data.len() as u64, Ordering::Relaxed);
    stream.shutdown().await
}

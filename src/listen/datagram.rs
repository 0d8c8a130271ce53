//! `listen -k` over datagrams: print what every peer sends, answer the one that wrote last
//! (the tutorial's QQ-style server), or with `--broker` pass each datagram to every other
//! recent peer.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Config;
use crate::error::{Error, Result};
use crate::lines::{prefixed, trim_newline, Lines};
use crate::net::{Datagram, Peer, MAX_DATAGRAM};
use crate::server::Admission;
use crate::session::datagram_line;
use crate::stdio::{Input, Output};

/// How long a quiet peer stays on the broker's list without `--idle-timeout`.
const PEER_IDLE: Duration = Duration::from_secs(600);

pub(super) async fn run(
    sock: Datagram,
    admission: &Admission,
    mut input: Input,
    output: Output,
    cfg: &Config,
    shutdown: CancellationToken,
) -> Result<()> {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut peers: HashMap<Peer, Instant> = HashMap::new();
    let mut last: Option<Peer> = None;
    let mut stdin_open = true;
    let mut lines = Lines::new(MAX_DATAGRAM);
    let idle = admission.limits().idle_timeout.unwrap_or(PEER_IDLE);
    let max_peers = admission.limits().max_conns;
    // `-x` and `--pcap`: each peer's datagrams, both ways.
    let mut traffic: HashMap<Peer, crate::dump::Traffic> = HashMap::new();
    let local = sock.local_addr();
    let mut record = |peer: &Peer, dir: crate::dump::Direction, data: &[u8]| {
        if let Some(sink) = &cfg.dump {
            traffic
                .entry(peer.clone())
                .or_insert_with(|| sink.datagrams(peer, local, peer.socket_addr()))
                .record(dir, data);
        }
    };
    loop {
        tokio::select! {
            (n, peer) = admission.receive(&sock, &mut buf, "listen") => {
                let now = Instant::now();
                peers.retain(|_, seen| now.duration_since(*seen) < idle);
                if !peers.contains_key(&peer) {
                    if max_peers.is_some_and(|m| peers.len() >= m) {
                        tracing::warn!(%peer, "refused: peer limit reached (--max-conns)");
                        continue;
                    }
                    tracing::info!(%peer, "new peer");
                }
                peers.insert(peer.clone(), now);
                record(&peer, crate::dump::Direction::Received, &buf[..n]);
                let name = cfg.show_peer.then(|| peer.to_string());
                let chunk = prefixed(name.as_deref(), &[datagram_line(&buf[..n])]);
                if cfg.broker {
                    for p in peers.keys().filter(|p| **p != peer) {
                        record(p, crate::dump::Direction::Sent, &chunk);
                        if let Err(e) = sock.send_to(&chunk, p).await {
                            tracing::debug!(peer = %p, error = %crate::error::describe_io(&e), "send failed");
                        }
                    }
                } else {
                    output.write(chunk).await.map_err(|_| Error::stdout_closed())?;
                }
                last = Some(peer);
            }
            chunk = input.next_chunk(), if stdin_open => {
                match chunk {
                    Some(Ok(data)) => lines.push(&data),
                    Some(Err(e)) => {
                        tracing::warn!(error = %crate::error::describe_io(&e), "cannot read stdin; serving on");
                        stdin_open = false;
                    }
                    None => stdin_open = false,
                }
                for line in lines.drain(!stdin_open) {
                    let line = trim_newline(&line);
                    let targets: Vec<&Peer> = if cfg.broker { peers.keys().collect() } else { last.iter().collect() };
                    if targets.is_empty() {
                        tracing::warn!("no peer has written yet; input line dropped");
                    }
                    for p in targets {
                        record(p, crate::dump::Direction::Sent, line);
                        if let Err(e) = sock.send_to(line, p).await {
                            tracing::warn!(peer = %p, error = %crate::error::describe_io(&e), "send failed");
                        }
                    }
                }
            }
            () = shutdown.cancelled() => return Ok(()),
            () = output.closed() => return Err(Error::stdout_closed()),
        }
    }
}

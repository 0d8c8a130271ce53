//! `sockit listen`: wait for clients and talk to them.
//!
//! Without `-k` one conversation is served exactly as `connect` would (the listener is
//! closed once the client arrives). With `-k` the `hub` serves stream clients
//! concurrently and the `datagram` loop answers whoever wrote last, as the tutorial's
//! QQ-style server does. Entry points take an already bound socket and a shutdown token.

mod datagram;
mod hub;

use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::net::{Datagram, Listener, MAX_DATAGRAM};
use crate::server::Admission;
use crate::session::{self, datagram_line, Source};
use crate::stdio::{Input, Output};

/// Options of `listen`.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Serve many clients and keep running (`-k`).
    pub keep_open: bool,
    /// Pass what any client sends to all the others (`--broker`).
    pub broker: bool,
    /// Prefix each received line with `[PEER] ` (`--show-peer`).
    pub show_peer: bool,
    /// Send LF as CRLF.
    pub crlf: bool,
    /// `-x`: every chunk with every client dumped here.
    pub dump: Option<std::sync::Arc<crate::dump::Sink>>,
    /// `--progress` for the one conversation (without `-k`).
    pub progress: bool,
    /// `--exec`/`--sh-exec`: a program per client instead of stdio.
    pub exec: Option<crate::exec::Exec>,
}

/// Serves stream clients on `listener`, admitted by `admission` (rules, limit, TLS).
///
/// # Errors
/// A failed single conversation (reset), or stdout closed by its reader.
pub async fn run_stream(
    listener: Listener,
    admission: &Admission,
    input: Input,
    output: Output,
    cfg: &Config,
    shutdown: CancellationToken,
) -> Result<()> {
    if let (Some(exec), true) = (&cfg.exec, cfg.keep_open) {
        return serve_programs(listener, admission, exec, &output, cfg, &shutdown).await;
    }
    if cfg.keep_open || cfg.broker {
        return hub::run(listener, admission, input, output, cfg, shutdown).await;
    }
    let (stream, peer) = tokio::select! {
        r = admission.accept_one(&listener) => r.map_err(|e| Error::io("cannot accept", &e))?,
        () = shutdown.cancelled() => return Ok(()),
    };
    drop(listener);
    tracing::info!(%peer, "connection accepted");
    let opts = session::Options {
        idle_timeout: admission.limits().idle_timeout,
        crlf: cfg.crlf,
        dump: cfg.dump.clone(),
        progress: cfg.progress,
        exec: cfg.exec.clone(),
        accepted: true,
        // One conversation is not drained: it ends at the signal (a program ends itself).
        stop: Some(shutdown),
        ..session::Options::default()
    };
    session::stream(stream, &peer, input, &output, &opts).await
}

/// `listen -k --exec`: a program per admitted client (at most `--max-conns` at once, as the
/// admission counts them) until shutdown, when every program's group is ended.
async fn serve_programs(
    listener: Listener,
    admission: &Admission,
    exec: &crate::exec::Exec,
    output: &Output,
    cfg: &Config,
    shutdown: &CancellationToken,
) -> Result<()> {
    // Each client is the conversation `listen` has with its one client, a program in place
    // of stdio: the session builds the pump's options (idle timeout, CRLF, -x, --explain).
    let opts = session::Options {
        idle_timeout: admission.limits().idle_timeout,
        crlf: cfg.crlf,
        dump: cfg.dump.clone(),
        exec: Some(exec.clone()),
        accepted: true,
        ..session::Options::default()
    };
    let output = output.clone();
    let handler = move |stream, peer: crate::net::Peer| {
        let (opts, output) = (opts.clone(), output.clone());
        async move {
            let nothing = Input::from_bytes(bytes::Bytes::new());
            if let Err(e) = session::stream(stream, &peer, nothing, &output, &opts).await {
                tracing::warn!(%peer, "{e}");
            }
        }
    };
    // Programs in flight finish; at the drain's end each hears `exec.stop` and ends its
    // group: wait for that too, bounded.
    if !admission
        .run(listener, "listen", handler, shutdown.cancelled())
        .await
    {
        let _ = tokio::time::timeout(crate::exec::STOP_WAIT, admission.tasks().wait()).await;
    }
    Ok(())
}

/// Serves datagram peers on `sock`, received through `admission`'s gate.
///
/// # Errors
/// Reading stdin, or stdout closed by its reader.
pub async fn run_datagram(
    sock: Datagram,
    admission: &Admission,
    input: Input,
    output: Output,
    cfg: &Config,
    shutdown: CancellationToken,
) -> Result<()> {
    if let (Some(exec), true) = (&cfg.exec, cfg.keep_open) {
        crate::exec::datagram::serve(exec.clone(), sock, admission, cfg.dump.clone()).await;
        return Ok(());
    }
    if cfg.keep_open || cfg.broker {
        return datagram::run(sock, admission, input, output, cfg, shutdown).await;
    }
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let (n, peer) = tokio::select! {
        r = admission.receive(&sock, &mut buf, "listen") => r,
        () = shutdown.cancelled() => return Ok(()),
    };
    tracing::info!(%peer, "first datagram");
    if let Some(exec) = &cfg.exec {
        sock.connect(&peer)
            .await
            .map_err(|e| Error::io(format!("cannot answer {peer}"), &e))?;
        let dump = cfg
            .dump
            .as_ref()
            .map(|s| s.datagrams(&peer, sock.local_addr(), peer.socket_addr()));
        let first = bytes::Bytes::copy_from_slice(&buf[..n]);
        return crate::exec::datagram::conversation(
            exec,
            &sock,
            &peer,
            Some(first),
            admission.limits().idle_timeout,
            dump.as_ref(),
        )
        .await;
    }
    output
        .write(datagram_line(&buf[..n]))
        .await
        .map_err(|_| Error::stdout_closed())?;
    sock.connect(&peer)
        .await
        .map_err(|e| Error::io(format!("cannot answer {peer}"), &e))?;
    let opts = session::Options {
        idle_timeout: admission.limits().idle_timeout,
        crlf: cfg.crlf,
        dump: cfg.dump.clone(),
        ..session::Options::default()
    };
    tokio::select! {
        r = session::datagram(&sock, &peer, Source::Lines(input), &output, &opts) => r,
        () = shutdown.cancelled() => Ok(()),
    }
}

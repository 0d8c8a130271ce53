//! Signals: Ctrl-C, SIGTERM and SIGHUP end a run the same way; which one did (the exit
//! status is 128 + it); and the cut, the drain's end.

use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// The signal that interrupted the run (0: none): the exit status is 128 + it.
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// The number of the signal that ended the run, if one did.
pub fn interrupted_by() -> Option<u8> {
    match SIGNAL.load(Ordering::Relaxed) {
        0 => None,
        n => u8::try_from(n).ok(),
    }
}

/// The end of the drain, fired by the signal watcher: process-wide, as signals are.
static CUT: std::sync::OnceLock<CancellationToken> = std::sync::OnceLock::new();

pub(super) fn cut() -> CancellationToken {
    CUT.get_or_init(CancellationToken::new).clone()
}

/// Makes `token` the cut (the watcher fires it), before anything asks for [`cut`].
pub(super) fn set_cut(token: CancellationToken) {
    let _ = CUT.set(token);
}

/// Ctrl-C, SIGTERM and SIGHUP all stop the run the same way: stop accepting, tell chat
/// members, flush, remove Unix socket files (SIGHUP's default would leave the files behind
/// and the members without a word). A server's open connections then get `drain` to finish
/// (`cut` fires at its end); a second signal cuts them at once.
#[cfg(unix)]
pub(super) async fn watch_signals(
    shutdown: CancellationToken,
    cut: CancellationToken,
    drain: Option<Duration>,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let (term, hup) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(t), Ok(h)) => (t, h),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM and SIGHUP");
            return;
        }
    };
    let (mut term, mut hup) = (term, hup);
    let signo = tokio::select! {
        _ = tokio::signal::ctrl_c() => rustix::process::Signal::INT,
        _ = term.recv() => rustix::process::Signal::TERM,
        _ = hup.recv() => rustix::process::Signal::HUP,
    };
    SIGNAL.store(signo.as_raw(), Ordering::Relaxed);
    shutdown.cancel();
    tracing::info!("signal received; shutting down");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("second signal: cutting open connections"),
        _ = term.recv() => tracing::info!("second signal: cutting open connections"),
        _ = hup.recv() => {}
        () = tokio::time::sleep(drain.unwrap_or_default()) => {}
    }
    cut.cancel();
}

/// Windows has Ctrl-C (and Ctrl-Break) for a console program, no SIGTERM or SIGHUP: Ctrl-C
/// ends a run as SIGINT does on Unix (exit status 130), and a second one cuts the drain.
#[cfg(not(unix))]
pub(super) async fn watch_signals(
    shutdown: CancellationToken,
    cut: CancellationToken,
    drain: Option<Duration>,
) {
    /// SIGINT's number, for the exit status (128 + 2), as on Unix.
    const INT: i32 = 2;
    if let Err(e) = tokio::signal::ctrl_c().await {
        tracing::warn!(error = %e, "cannot watch Ctrl-C");
        return;
    }
    SIGNAL.store(INT, Ordering::Relaxed);
    shutdown.cancel();
    tracing::info!("Ctrl-C received; shutting down");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("second Ctrl-C: cutting open connections"),
        () = tokio::time::sleep(drain.unwrap_or_default()) => {}
    }
    cut.cancel();
}

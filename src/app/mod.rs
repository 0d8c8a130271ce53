//! From parsed arguments to a running command: the runtime, stdio, signals, readiness line.

mod bench;
mod chat;
mod connect;
mod console;
mod generated;
mod listen;
mod options;
mod relay;
mod serve;

pub use console::{init_logging, say};

use std::time::Duration;

use sockit::error::{Error, ErrorKind, Result};
use sockit::stdio::Output;
use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, Command};

/// Servers hold a descriptor per client: lift the soft open-file limit to the hard one (as
/// Go programs do), so `listen -k` or `chat` do not stop at 1,024 clients on a default system.
fn raise_open_file_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::debug!(error = %e, "cannot raise the open-file limit");
        }
    }
}

/// The signal that interrupted the run (0: none): the exit status is 128 + it.
static SIGNAL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// The number of the signal that ended the run, if one did.
pub fn interrupted_by() -> Option<u8> {
    match SIGNAL.load(std::sync::atomic::Ordering::Relaxed) {
        0 => None,
        n => u8::try_from(n).ok(),
    }
}

/// `--raw`: the terminal into raw mode, and stdin until `Ctrl-]`, which ends the
/// conversation as a signal would (but exits 0).
fn raw_stdin(shutdown: &CancellationToken) -> Result<sockit::stdio::Input> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return Err(Error::new(
            ErrorKind::BadArgument,
            "--raw needs a terminal",
            "stdout is not one; run it in a terminal, or drop --raw for pipes and files",
        ));
    }
    sockit::terminal::enter_raw()?;
    say("sockit: raw mode: every key goes to the peer; Ctrl-] leaves");
    Ok(sockit::stdio::Input::stdin_until(
        sockit::terminal::ESCAPE,
        shutdown.clone(),
    ))
}

/// The end of the drain, fired by the signal watcher: process-wide, as signals are.
static CUT: std::sync::OnceLock<CancellationToken> = std::sync::OnceLock::new();

pub(super) fn cut() -> CancellationToken {
    CUT.get_or_init(CancellationToken::new).clone()
}

/// Runs the command to its end; stdout is flushed before this returns.
pub fn run(cli: Cli) -> Result<()> {
    raise_open_file_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start the runtime", &e))?;
    let (output, stdout_thread) = Output::stdout();
    let result = runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let cut = CancellationToken::new();
        let drain = match &cli.command {
            Command::Listen(a) => Some(a.limits.drain),
            Command::Relay(a) => Some(a.limits.drain),
            Command::Serve(a) => Some(a.limits.drain),
            Command::Chat(a) => Some(a.limits.drain),
            _ => None,
        };
        tokio::spawn(watch_signals(shutdown.clone(), cut.clone(), drain));
        let _ = CUT.set(cut);
        let quiet = cli.quiet;
        match cli.command {
            Command::Connect(args) => connect::run(args, output, shutdown).await,
            Command::Listen(args) => listen::run(args, output, quiet, shutdown).await,
            Command::Chat(args) => chat::run(args, quiet, shutdown).await,
            Command::Serve(args) => serve::run(args, quiet, shutdown).await,
            Command::Bench(args) => bench::run(args, output, quiet, shutdown).await,
            Command::Relay(args) => relay::run(args, quiet, shutdown).await,
            Command::Completions { shell } => {
                generated::print_generated(&output, generated::completions(shell)).await
            }
            Command::Man { command, dir } => match dir {
                Some(dir) => generated::write_man_pages(&dir),
                None => {
                    generated::print_generated(&output, generated::man_page(command.as_deref())?)
                        .await
                }
            },
        }
    });
    // Client tasks still hold stdout handles; ending the runtime drops them.
    runtime.shutdown_timeout(Duration::from_millis(200));
    // Whatever ended the run (the peer, an error, a signal, Ctrl-]), a raw terminal is put back.
    sockit::terminal::restore();
    match (stdout_thread.finish(), result) {
        // Output that could not be written is lost data: say so, whatever else happened.
        (Some(e), Ok(())) => Err(Error::io("cannot write stdout", &e)),
        (Some(e), Err(r)) if *r.kind() == ErrorKind::StdoutClosed => {
            Err(Error::io("cannot write stdout", &e))
        }
        (_, result) => result,
    }
}

/// Ctrl-C, SIGTERM and SIGHUP all stop the run the same way: stop accepting, tell chat
/// members, flush, remove Unix socket files (SIGHUP's default would leave the files behind
/// and the members without a word). A server's open connections then get `drain` to finish
/// (`cut` fires at its end); a second signal cuts them at once.
async fn watch_signals(
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
    SIGNAL.store(signo.as_raw(), std::sync::atomic::Ordering::Relaxed);
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

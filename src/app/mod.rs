//! From parsed arguments to a running command: the runtime, stdio, signals, readiness line.

mod bench;
mod chat;
mod connect;
mod console;
mod expose;
mod generated;
mod listen;
mod options;
mod relay;
mod serve;
mod signals;

pub use console::{init_logging, say};
pub use signals::interrupted_by;

use std::time::Duration;

use sockit::error::{Error, ErrorKind, Result};
use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, Command};

/// Servers hold a descriptor per client: lift the soft open-file limit to the hard one (as
/// Go programs do), so `listen -k` or `chat` do not stop at 1,024 clients on a default system.
#[cfg(not(unix))]
fn raise_open_file_limit() {}

/// Servers hold a descriptor per client (see above).
#[cfg(unix)]
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

/// True for a command that holds one conversation: it runs on one worker thread, as its
/// work is one sequence anyway and a second worker only adds hand-offs between threads
/// (for QUIC, whose stack runs in user space, bulk transfer gains half again; measured in
/// bench/quic.sh). stdin and stdout keep their own threads.
fn one_conversation(command: &Command) -> bool {
    match command {
        Command::Connect(a) => !a.zero_io,
        Command::Listen(a) => !a.keep_open && !a.broker,
        Command::Bench(a) => a.conns == 1,
        _ => false,
    }
}

/// Runs the command to its end; stdout is flushed before this returns.
pub fn run(cli: Cli) -> Result<()> {
    raise_open_file_limit();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if one_conversation(&cli.command) {
        runtime.worker_threads(1);
    }
    let runtime = runtime
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start the runtime", &e))?;
    let (input, output, stdout_thread) = console::stdio(&cli.command, runtime.handle());
    // The command runs as a task on a worker, not on this thread in `block_on`: a server's
    // accept loop there would wake this thread for every connection and hand each new
    // connection's task over to a worker thread, two thread switches per connection that a
    // worker accepting itself does not pay (it runs the new task next, on the same thread).
    let command = runtime.spawn(async move {
        let shutdown = CancellationToken::new();
        let cut = CancellationToken::new();
        let drain = match &cli.command {
            Command::Listen(a) => Some(a.limits.drain),
            Command::Relay(a) => Some(a.limits.drain),
            Command::Serve(a) => Some(a.limits.drain),
            Command::Chat(a) => Some(a.limits.drain),
            Command::Expose(a) => Some(a.drain),
            _ => None,
        };
        tokio::spawn(signals::watch_signals(shutdown.clone(), cut.clone(), drain));
        signals::set_cut(cut);
        let quiet = cli.quiet;
        let result = match cli.command {
            Command::Connect(args) => connect::run(args, input, output, shutdown).await,
            Command::Listen(args) => listen::run(args, input, output, quiet, shutdown).await,
            Command::Chat(args) => chat::run(args, quiet, shutdown).await,
            Command::Serve(args) => serve::run(args, quiet, shutdown).await,
            Command::Bench(args) => bench::run(args, output, quiet, shutdown).await,
            Command::Relay(args) => relay::run(args, quiet, shutdown).await,
            Command::Expose(args) => expose::run(args, quiet, shutdown).await,
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
        };
        // QUIC streams that ended are still being acknowledged: leaving now would drop
        // their last bytes (a QUIC connection has no kernel to finish it).
        sockit::net::quic::settle(sockit::net::quic::SETTLE_LIMIT).await;
        result
    });
    let result = match runtime.block_on(command) {
        Ok(result) => result,
        // A panic is a bug: let it end the program as it would have on this thread.
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(Error::io(
            "the command's task was cancelled",
            &std::io::Error::other(e),
        )),
    };
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

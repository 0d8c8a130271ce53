//! The console: one plain line to stderr (`say`), the logs, which never stop a run, stdio
//! (edited when a person types at a terminal), and the terminal's raw mode for `--raw`.

use std::io::IsTerminal;

use sockit::error::{Error, ErrorKind, Result};
use sockit::stdio::{Input, Output, StdoutThread};
use sockit::terminal::EditOptions;
use tokio_util::sync::CancellationToken;

use crate::cli::Command;

/// Writes one line to stderr. A stderr that cannot take it (`2>/dev/full`, a closed pipe)
/// costs the line, never the run: eprintln! would panic there.
pub fn say(line: impl std::fmt::Display) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// stderr for logs, where a failed write is dropped: a log line must never stop the task
/// that logs it (the signal watcher among them).
struct LossyStderr;

impl std::io::Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// Logs go to stderr (stdout is data): warnings by default, -v info, -vv debug.
pub fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("sockit={level},{level}")));
    let _ = tracing_subscriber::fmt()
        .with_writer(|| LossyStderr)
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// `--raw`: the terminal into raw mode, and stdin until `Ctrl-]`, which ends the
/// conversation as a signal would (but exits 0).
pub(super) fn raw_stdin(shutdown: &CancellationToken) -> Result<sockit::stdio::Input> {
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

/// stdin and stdout for the run: edited lines when a person types the conversation's input
/// at a terminal (connect, listen's one conversation), else the plain byte streams that
/// pipes and files need byte-exact.
pub(super) fn stdio(
    command: &Command,
    runtime: &tokio::runtime::Handle,
) -> (Input, Output, StdoutThread) {
    if let Some(opts) = editing(command) {
        match sockit::terminal::edit(&opts, runtime) {
            Ok(edited) => return edited,
            Err(e) => tracing::debug!(error = %e, "reading the terminal unedited"),
        }
    }
    let (output, thread) = Output::stdout();
    (Input::stdin(), output, thread)
}

/// The editor's options when stdin and stdout are both terminals and the command reads
/// lines from stdin for one conversation.
fn editing(command: &Command) -> Option<EditOptions> {
    let (edit, elsewhere) = match command {
        Command::Connect(a) => (
            &a.edit,
            a.raw
                || a.send.is_some()
                || a.zero_io
                || a.recv_only
                || a.exec.exec.is_some()
                || a.exec.sh_exec.is_some(),
        ),
        Command::Listen(a) => (
            &a.edit,
            a.raw || a.keep_open || a.broker || a.exec.exec.is_some() || a.exec.sh_exec.is_some(),
        ),
        _ => return None,
    };
    let at_terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    (!edit.no_edit && !elsewhere && at_terminal).then(|| EditOptions {
        history: edit.history.clone(),
    })
}

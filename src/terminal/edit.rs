//! Line editing at a terminal, as a shell edits: rustyline reads the line being typed (cursor
//! keys, Home/End, Ctrl-A/E/W/U/K, history, Ctrl-R), and what the peer sends is printed above
//! that line through rustyline's external printer, so incoming text never breaks into what is
//! typed (the tutorial's interactive chat, and what `rlwrap nc` is used for).
//!
//! Two threads, each blocking where a terminal blocks: the editor's, which turns every Enter
//! into a line of input (Ctrl-D on an empty line is the end of input, Ctrl-C is SIGINT, as
//! the key would be without editing), and the printer's, which takes the session's output.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::{Config, Editor, ExternalPrinter};
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use super::modes::{remember, EDITING};
use crate::error::{Error, ErrorKind, Result};
use crate::stdio::{Input, Output, StdoutThread};

/// How long the end of a line (text without its newline) may wait for the rest before it is
/// shown as it is: a peer's prompt (`服务端>>`) shows at once, a line split across two reads
/// stays one line.
const PARTIAL_WAIT: Duration = Duration::from_millis(100);
/// Lines of history kept (in memory, and in the `--history` file).
const HISTORY_SIZE: usize = 1000;

/// What the editor keeps across sessions.
#[derive(Debug, Clone, Default)]
pub struct EditOptions {
    /// `--history FILE`: loaded at start, every line appended as it is sent.
    pub history: Option<PathBuf>,
}

/// Starts editing the terminal's input: the typed lines as an [`Input`], and an [`Output`]
/// that prints above the line being typed, with the thread to wait for at exit. `handle` is
/// the runtime's, for the printer thread's timed waits.
///
/// # Errors
/// The terminal cannot be edited (not a terminal, or one rustyline does not support): the
/// caller falls back to plain stdio.
pub fn start(opts: &EditOptions, handle: &Handle) -> Result<(Input, Output, StdoutThread)> {
    let cannot = |e: &dyn std::fmt::Display| {
        Error::new(
            ErrorKind::BadArgument,
            "cannot edit lines at this terminal",
            format!("{e}; --no-edit reads it as a plain pipe"),
        )
    };
    if remember().is_none() {
        return Err(cannot(&"stdin is not a terminal"));
    }
    let config = Config::builder()
        .max_history_size(HISTORY_SIZE)
        .and_then(|c| c.history_ignore_dups(true))
        .map_err(|e| cannot(&e))?
        .auto_add_history(true)
        .build();
    let mut editor: Editor<(), FileHistory> =
        Editor::with_config(config).map_err(|e| cannot(&e))?;
    if let Some(path) = &opts.history {
        match editor.load_history(path) {
            Ok(()) => {}
            Err(ReadlineError::Io(e)) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot read the history; starting without it")
            }
        }
    }
    let printer = editor.create_external_printer().map_err(|e| cannot(&e))?;
    let (line_tx, line_rx) = mpsc::channel(4);
    let (begun_tx, begun) = std::sync::mpsc::channel();
    let history = opts.history.clone();
    std::thread::Builder::new()
        .name("sockit-editor".into())
        .spawn(move || {
            // The terminal is taken once the conversation reads its input, not before.
            if begun.recv().is_ok() {
                read_lines(editor, &line_tx, history);
            }
        })
        .map_err(|e| cannot(&e))?;
    let (output, chunks) = Output::channel(16);
    let handle = handle.clone();
    let printing = std::thread::Builder::new()
        .name("sockit-printer".into())
        .spawn(move || print(chunks, printer, &handle))
        .map_err(|e| cannot(&e))?;
    Ok((
        Input::typed(line_rx, begun_tx),
        output,
        StdoutThread::from_thread(printing),
    ))
}

/// The editor's thread: one line of input per Enter, until Ctrl-D on an empty line (the end
/// of input) or Ctrl-C (SIGINT to sockit, which ends the session as the key would).
fn read_lines(
    mut editor: Editor<(), FileHistory>,
    tx: &mpsc::Sender<io::Result<Bytes>>,
    history: Option<PathBuf>,
) {
    let mut history_failed = false;
    loop {
        EDITING.store(true, Ordering::SeqCst);
        let read = editor.readline("");
        EDITING.store(false, Ordering::SeqCst);
        match read {
            Ok(line) => {
                if let (Some(path), false) = (&history, history_failed) {
                    if let Err(e) = editor.append_history(path) {
                        tracing::warn!(file = %path.display(), error = %e, "cannot write the history");
                        history_failed = true;
                    }
                }
                let mut bytes = BytesMut::from(line.as_bytes());
                bytes.extend_from_slice(b"\n");
                if tx.blocking_send(Ok(bytes.freeze())).is_err() {
                    return;
                }
            }
            Err(ReadlineError::Eof) => return,
            Err(ReadlineError::Interrupted) => {
                interrupt();
                // The input stays open: the signal, not an end of input, ends the session.
                let _keep = tx.clone();
                loop {
                    std::thread::park();
                }
            }
            Err(e) => {
                let e = io::Error::other(e.to_string());
                let _ = tx.blocking_send(Err(crate::error::stdio_failed(
                    "cannot read the terminal",
                    &e,
                )));
                return;
            }
        }
    }
}

/// The printer's thread: the session's output above the line being typed, whole lines as
/// they complete, and the end of a line once [`PARTIAL_WAIT`] passed without the rest.
fn print(
    mut chunks: mpsc::Receiver<Bytes>,
    mut printer: impl ExternalPrinter,
    handle: &Handle,
) -> Option<io::Error> {
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let next = if pending.is_empty() {
            handle.block_on(chunks.recv())
        } else {
            // The timer is made inside the runtime's context, which block_on enters.
            match handle.block_on(async { tokio::time::timeout(PARTIAL_WAIT, chunks.recv()).await })
            {
                Ok(next) => next,
                Err(_) => Some(Bytes::new()),
            }
        };
        let ended = next.is_none();
        let waited = next.as_ref().is_some_and(Bytes::is_empty);
        if let Some(chunk) = next {
            pending.extend_from_slice(&chunk);
        }
        let upto = if ended || waited {
            pending.len()
        } else {
            memchr::memrchr(b'\n', &pending).map_or(0, |at| at + 1)
        };
        if upto > 0 {
            let text = String::from_utf8_lossy(&pending[..upto]).into_owned();
            pending.drain(..upto);
            if let Err(e) = printer.print(text) {
                return Some(io::Error::other(e.to_string()));
            }
        }
        if ended {
            return None;
        }
    }
}

/// Ctrl-C at the editor: the same as Ctrl-C without it, SIGINT to ourselves (the signal
/// watcher ends the run and exits 130); where there are no signals (Windows), the exit
/// itself, with the console as it was.
fn interrupt() {
    #[cfg(unix)]
    let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::INT);
    #[cfg(not(unix))]
    {
        super::modes::restore();
        std::process::exit(130);
    }
}

//! The terminal's modes as sockit found them, and the one way back to them.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

#[cfg(unix)]
use rustix::termios::{self, OptionalActions};

/// A terminal's modes: termios on Unix; on Windows the console keeps its own, and the line
/// editor puts them back itself.
#[cfg(unix)]
pub(super) type Modes = rustix::termios::Termios;
#[cfg(not(unix))]
pub(super) type Modes = ();

/// The modes stdin's terminal had before sockit changed them.
static SAVED: Mutex<Option<Modes>> = Mutex::new(None);
/// True while the editor holds a line on the screen that was not sent.
pub(super) static EDITING: AtomicBool = AtomicBool::new(false);

/// Saves the terminal's modes, to be put back by [`restore`]; `None` when stdin is not a
/// terminal.
#[cfg(unix)]
pub(super) fn remember() -> Option<Modes> {
    let modes = termios::tcgetattr(std::io::stdin()).ok()?;
    *SAVED.lock().unwrap_or_else(PoisonError::into_inner) = Some(modes.clone());
    Some(modes)
}

/// Whether stdin is a terminal (the console keeps its own modes).
#[cfg(not(unix))]
pub(super) fn remember() -> Option<Modes> {
    std::io::IsTerminal::is_terminal(&std::io::stdin()).then_some(())
}

/// Puts back the modes sockit found; nothing when it changed none. A line the editor still
/// shows, typed but never sent, is cleared, so the shell's prompt starts a clean line.
pub fn restore() {
    let saved = SAVED.lock().unwrap_or_else(PoisonError::into_inner).take();
    #[cfg(unix)]
    if let Some(t) = saved {
        let _ = termios::tcsetattr(std::io::stdin(), OptionalActions::Now, &t);
    }
    #[cfg(not(unix))]
    let _ = saved;
    if EDITING.swap(false, Ordering::SeqCst) {
        let mut out = std::io::stdout().lock();
        // The editor's bracketed-paste mode off again, and its line cleared.
        let _ = out.write_all(b"\x1b[?2004l\r\x1b[K");
        let _ = out.flush();
    }
}

//! The local terminal, when a person sits at it: the line editor (what arrives is printed
//! above the line being typed) and `--raw` (every key goes to a remote terminal).
//!
//! Both change the terminal's modes, so both save them here first; [`restore`] puts them
//! back and is safe to call any number of times, from any path (the end of the run, an
//! error, a signal, a thread still blocked in the editor): nothing ever leaves the user's
//! terminal raw.

mod edit;
mod raw;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use rustix::termios::{self, OptionalActions, Termios};

pub use edit::{start as edit, EditOptions};
pub use raw::{enter_raw, ESCAPE};

/// The modes stdin's terminal had before sockit changed them.
static SAVED: Mutex<Option<Termios>> = Mutex::new(None);
/// True while the editor holds a line on the screen that was not sent.
static EDITING: AtomicBool = AtomicBool::new(false);

/// Saves the terminal's modes, to be put back by [`restore`]; `None` when stdin is not a
/// terminal.
fn remember() -> Option<Termios> {
    let modes = termios::tcgetattr(std::io::stdin()).ok()?;
    *SAVED.lock().unwrap_or_else(PoisonError::into_inner) = Some(modes.clone());
    Some(modes)
}

/// Puts back the modes sockit found; nothing when it changed none. A line the editor still
/// shows, typed but never sent, is cleared, so the shell's prompt starts a clean line.
pub fn restore() {
    let saved = SAVED.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(t) = saved {
        let _ = termios::tcsetattr(std::io::stdin(), OptionalActions::Now, &t);
    }
    if EDITING.swap(false, Ordering::SeqCst) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(b"\r\x1b[K");
        let _ = out.flush();
    }
}

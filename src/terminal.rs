//! `--raw`: the local terminal as a remote terminal's keyboard. Keys go to the peer as bytes
//! (Ctrl-C, Ctrl-Z, Tab, the arrows), nothing is echoed or edited here, and `Ctrl-]` leaves,
//! as telnet's escape does. The terminal's modes are saved once and put back at every exit
//! ([`restore`] is safe to call any number of times, from any path: the end of the run, an
//! error, a signal), so nothing ever leaves the user's terminal raw.

use std::sync::{Mutex, PoisonError};

use rustix::termios::{self, OptionalActions, OutputModes, Termios};

use crate::error::{Error, ErrorKind, Result};

/// The byte `Ctrl-]` sends: the key that leaves a raw session.
pub const ESCAPE: u8 = 0x1d;

/// The modes stdin's terminal had before raw mode, while it is raw.
static SAVED: Mutex<Option<Termios>> = Mutex::new(None);

/// Puts the terminal on stdin into raw mode, keeping output processing (a peer's `\n` still
/// starts a new line here).
///
/// # Errors
/// stdin is not a terminal (with the hint to drop `--raw`), or the terminal refuses.
pub fn enter_raw() -> Result<()> {
    let stdin = std::io::stdin();
    let original = termios::tcgetattr(&stdin).map_err(|_| {
        Error::new(
            ErrorKind::BadArgument,
            "--raw needs a terminal",
            "stdin is not one; run it in a terminal, or drop --raw for pipes and files",
        )
    })?;
    let mut raw = original.clone();
    raw.make_raw();
    raw.output_modes |= OutputModes::OPOST | OutputModes::ONLCR;
    *SAVED.lock().unwrap_or_else(PoisonError::into_inner) = Some(original);
    termios::tcsetattr(&stdin, OptionalActions::Now, &raw).map_err(|e| {
        restore();
        Error::io("cannot put the terminal into raw mode", &e.into())
    })
}

/// Puts back the modes [`enter_raw`] found; nothing when the terminal is not raw.
pub fn restore() {
    let saved = SAVED.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(t) = saved {
        let _ = termios::tcsetattr(std::io::stdin(), OptionalActions::Now, &t);
    }
}

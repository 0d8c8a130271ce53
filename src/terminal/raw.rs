//! `--raw`: the local terminal as a remote terminal's keyboard. Keys go to the peer as bytes
//! (Ctrl-C, Ctrl-Z, Tab, the arrows), nothing is echoed or edited here, and `Ctrl-]` leaves,
//! as telnet's escape does. The modes are saved first and put back by [`super::modes::restore`].

use crate::error::{Error, ErrorKind, Result};

/// The byte `Ctrl-]` sends: the key that leaves a raw session.
pub const ESCAPE: u8 = 0x1d;

/// Raw mode needs termios: refused here (Windows).
///
/// # Errors
/// Always, with the way out.
#[cfg(not(unix))]
pub fn enter_raw() -> Result<()> {
    Err(Error::new(
        ErrorKind::Unsupported,
        "--raw is not available on this system",
        "it needs a Unix terminal; use sockit from WSL or a Linux machine for a remote shell",
    ))
}

/// Puts the terminal on stdin into raw mode, keeping output processing (a peer's `\n` still
/// starts a new line here).
///
/// # Errors
/// stdin is not a terminal (with the hint to drop `--raw`), or the terminal refuses.
#[cfg(unix)]
pub fn enter_raw() -> Result<()> {
    use super::modes::{remember, restore};
    use rustix::termios::{self, OptionalActions, OutputModes};
    let stdin = std::io::stdin();
    let original = remember().ok_or_else(|| {
        Error::new(
            ErrorKind::BadArgument,
            "--raw needs a terminal",
            "stdin is not one; run it in a terminal, or drop --raw for pipes and files",
        )
    })?;
    let mut raw = original.clone();
    raw.make_raw();
    raw.output_modes |= OutputModes::OPOST | OutputModes::ONLCR;
    termios::tcsetattr(&stdin, OptionalActions::Now, &raw).map_err(|e| {
        restore();
        Error::io("cannot put the terminal into raw mode", &e.into())
    })
}

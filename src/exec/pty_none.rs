//! Where there are no pseudo-terminals sockit can make (Windows; ConPTY would need a crate
//! with unsafe code of its own): `--pty` is refused in words, and the names the stream path
//! uses exist, as types that cannot.

use std::io;

use super::child::Running;
use super::program::{Origin, Program, Terminal};

/// Refused: no pseudo-terminals here.
///
/// # Errors
/// Always, in words.
pub fn spawn(
    _program: &Program,
    _origin: &Origin,
    _terminal: &Terminal,
) -> io::Result<(Running, PtyIo)> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "--pty needs a Unix system (pseudo-terminals); drop --pty for pipes",
    ))
}

/// A program's terminal: none can exist here.
pub enum PtyIo {}

never_io!(PtyIo);
